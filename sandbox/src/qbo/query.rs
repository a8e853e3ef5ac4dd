//! The QBO query language: `SELECT * | count(*) | <field>, … FROM
//! <entity>`, `WHERE` conditions joined by `AND` (`=`, `<`, `>`, `<=`, `>=`,
//! `IN (...)`, `LIKE` with `%`; there is no `!=`, `OR` or `NOT`),
//! `ORDERBY`, `STARTPOSITION` and `MAXRESULTS`; parsed, then evaluated over
//! rendered entities.

mod lex;
mod value;

use super::render::entity_name;
use lex::{tokenize, Tok};
use serde_json::Value;
use std::cmp::Ordering;
use value::{compare, field, like, text_of};

#[derive(Debug, PartialEq)]
enum Op {
    Cmp(&'static str, String),
    In(Vec<String>),
    Like(String),
}

#[derive(Debug, PartialEq)]
struct Cond {
    field: String,
    op: Op,
}

#[derive(Debug, PartialEq)]
pub(super) struct ParsedQuery {
    pub(super) count: bool,
    /// A projection (`SELECT Id, DisplayName …`); `None` for `*`.
    fields: Option<Vec<String>>,
    pub(super) entity: &'static str,
    conds: Vec<Cond>,
    order: Vec<(String, bool)>,
    pub(super) start: usize,
    max: usize,
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn kw(&mut self, kw: &str) -> Result<(), String> {
        if self.is_kw(kw) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected {kw}"))
        }
    }
    fn sym(&mut self, s: &str) -> Result<(), String> {
        match self.next() {
            Some(Tok::Sym(x)) if x == s => Ok(()),
            _ => Err(format!("expected '{s}'")),
        }
    }
    fn word(&mut self, what: &str) -> Result<String, String> {
        match self.next() {
            Some(Tok::Word(w)) => Ok(w),
            _ => Err(format!("expected {what}")),
        }
    }
    fn literal(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            // Unquoted numbers and booleans are tolerated.
            Some(Tok::Word(w)) => Ok(w),
            _ => Err("expected a value".into()),
        }
    }
    fn number(&mut self, what: &str) -> Result<usize, String> {
        let w = self.word(what)?;
        w.parse().map_err(|_| format!("{what} must be a number"))
    }
}

pub(super) fn parse_query(q: &str) -> Result<ParsedQuery, String> {
    let mut p = Parser {
        toks: tokenize(q)?,
        pos: 0,
    };
    p.kw("SELECT")?;
    let mut fields = None;
    let count = if p.is_kw("count") {
        p.pos += 1;
        p.sym("(")?;
        p.sym("*")?;
        p.sym(")")?;
        true
    } else if matches!(p.peek(), Some(Tok::Sym("*"))) {
        p.pos += 1;
        false
    } else {
        let mut list = vec![p.word("* or a field name")?];
        while matches!(p.peek(), Some(Tok::Sym(","))) {
            p.pos += 1;
            list.push(p.word("a field name")?);
        }
        fields = Some(list);
        false
    };
    p.kw("FROM")?;
    let ent = p.word("an entity")?;
    let entity = entity_name(&ent).ok_or_else(|| format!("unsupported entity {ent}"))?;
    let mut q = ParsedQuery {
        count,
        fields,
        entity,
        conds: vec![],
        order: vec![],
        start: 1,
        max: 100,
    };
    if p.is_kw("WHERE") {
        p.pos += 1;
        loop {
            let field = p.word("a field name")?;
            let op = if p.is_kw("IN") {
                p.pos += 1;
                p.sym("(")?;
                let mut vals = vec![p.literal()?];
                while matches!(p.peek(), Some(Tok::Sym(","))) {
                    p.pos += 1;
                    vals.push(p.literal()?);
                }
                p.sym(")")?;
                Op::In(vals)
            } else if p.is_kw("LIKE") {
                p.pos += 1;
                Op::Like(p.literal()?)
            } else {
                match p.next() {
                    Some(Tok::Sym(s)) if matches!(s, "=" | "<" | ">" | "<=" | ">=") => {
                        Op::Cmp(s, p.literal()?)
                    }
                    _ => return Err(format!("expected an operator after {field}")),
                }
            };
            q.conds.push(Cond { field, op });
            if p.is_kw("AND") {
                p.pos += 1;
            } else {
                break;
            }
        }
    }
    if p.is_kw("ORDERBY") || p.is_kw("ORDER") {
        if p.is_kw("ORDER") {
            p.pos += 1;
            p.kw("BY")?;
        } else {
            p.pos += 1;
        }
        loop {
            let f = p.word("a field to order by")?;
            let desc = if p.is_kw("DESC") {
                p.pos += 1;
                true
            } else {
                if p.is_kw("ASC") {
                    p.pos += 1;
                }
                false
            };
            q.order.push((f, desc));
            if matches!(p.peek(), Some(Tok::Sym(","))) {
                p.pos += 1;
            } else {
                break;
            }
        }
    }
    if p.is_kw("STARTPOSITION") {
        p.pos += 1;
        q.start = p.number("STARTPOSITION")?.max(1);
    }
    if p.is_kw("MAXRESULTS") {
        p.pos += 1;
        q.max = p.number("MAXRESULTS")?.clamp(1, 1000);
    }
    if let Some(t) = p.peek() {
        return Err(format!("unexpected token {t:?}"));
    }
    Ok(q)
}

fn matches(v: &Value, c: &Cond) -> bool {
    let Some(f) = field(v, &c.field) else {
        return false;
    };
    match &c.op {
        Op::Cmp(op, lit) => {
            let o = compare(f, lit);
            match *op {
                "=" => o == Ordering::Equal,
                "<" => o == Ordering::Less,
                ">" => o == Ordering::Greater,
                "<=" => o != Ordering::Greater,
                _ => o != Ordering::Less,
            }
        }
        Op::In(vals) => vals.iter().any(|l| compare(f, l) == Ordering::Equal),
        Op::Like(p) => like(&text_of(f), p),
    }
}

impl ParsedQuery {
    /// The rows matching every condition of the WHERE clause.
    pub(super) fn filter(&self, rows: Vec<Value>) -> Vec<Value> {
        rows.into_iter()
            .filter(|v| self.conds.iter().all(|cnd| matches(v, cnd)))
            .collect()
    }

    /// Sort (by `Id` unless ORDERBY says otherwise) and cut out the page
    /// STARTPOSITION (1-based) .. + MAXRESULTS.
    pub(super) fn page(&self, mut rows: Vec<Value>) -> Vec<Value> {
        let by_id = [("Id".to_owned(), false)];
        let order = if self.order.is_empty() {
            &by_id[..]
        } else {
            &self.order[..]
        };
        rows.sort_by(|a, b| {
            for (f, desc) in order {
                let o = match (field(a, f), field(b, f)) {
                    (Some(x), Some(y)) => compare(x, &text_of(y)),
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (None, None) => Ordering::Equal,
                };
                let o = if *desc { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
        rows.into_iter()
            .skip(self.start - 1)
            .take(self.max)
            .map(|v| self.project(v))
            .collect()
    }

    /// Keep only the selected fields (by their top-level name) of a row.
    fn project(&self, v: Value) -> Value {
        let (Some(fields), Value::Object(o)) = (&self.fields, &v) else {
            return v;
        };
        let kept: serde_json::Map<String, Value> = o
            .iter()
            .filter(|(k, _)| {
                fields.iter().any(|f| {
                    f.split('.')
                        .next()
                        .is_some_and(|top| top.eq_ignore_ascii_case(k))
                })
            })
            .map(|(k, x)| (k.clone(), x.clone()))
            .collect();
        Value::Object(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_supported_grammar() {
        let q = parse_query("select * from bill where Balance > '0' AND VendorRef IN ('1','2') and DocNumber LIKE 'INV%' ORDERBY DueDate DESC, Id STARTPOSITION 3 MAXRESULTS 5000").unwrap();
        assert_eq!(q.entity, "Bill");
        assert_eq!(q.conds.len(), 3);
        assert_eq!(
            q.order,
            vec![("DueDate".to_owned(), true), ("Id".to_owned(), false)]
        );
        assert_eq!((q.start, q.max), (3, 1000));
        assert!(parse_query("SELECT count(*) FROM Vendor").unwrap().count);
        assert!(parse_query("SELECT * FROM Nope").is_err());
        assert!(parse_query("SELECT * FROM Bill WHERE").is_err());
        assert!(parse_query("SELEKT * FROM Bill").is_err());
        assert!(parse_query("SELECT * FROM Bill WHERE Id = 'x").is_err());
        // QBO has no `!=` and no OR.
        assert!(parse_query("SELECT * FROM Bill WHERE Id != '1'").is_err());
        assert!(parse_query("SELECT * FROM Bill WHERE Id = '1' OR Id = '2'").is_err());
    }

    #[test]
    fn projects_the_selected_fields() {
        let q = parse_query("select Id, DisplayName from Vendor where Active = true").unwrap();
        let row =
            serde_json::json!({"Id": "1", "DisplayName": "A", "Active": true, "SyncToken": "0"});
        let page = q.page(q.filter(vec![row]));
        assert_eq!(
            page,
            vec![serde_json::json!({"Id": "1", "DisplayName": "A"})]
        );
        assert!(parse_query("select Id, from Vendor").is_err());
    }
}
