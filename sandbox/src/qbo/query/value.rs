//! How a rendered field compares with a query literal: fields by dotted
//! path, exact decimals, RFC 3339 instants, case-insensitive text, and
//! `LIKE` patterns with `%`.

use crate::wire::decimal_text;
use chrono::DateTime;
use serde_json::Value;
use std::cmp::Ordering;

/// A field by (dotted, case-insensitive) path; `*Ref` objects compare by `value`.
pub(super) fn field<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in path.split('.') {
        cur = cur
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(part))
            .map(|(_, v)| v)?;
    }
    match cur {
        Value::Object(o) => o.get("value"),
        other => Some(other),
    }
}

/// An exact decimal, scaled by 10^6, for numeric comparison.
fn dec_key(s: &str) -> Option<i128> {
    let s = s.trim();
    let (neg, d) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let (w, f) = d.split_once('.').unwrap_or((d, ""));
    if w.is_empty()
        || f.len() > 6
        || !w.bytes().all(|b| b.is_ascii_digit())
        || !f.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut n: i128 = w.parse().ok()?;
    n = n.checked_mul(1_000_000)?;
    let frac: i128 = if f.is_empty() {
        0
    } else {
        format!("{f:0<6}").parse().ok()?
    };
    let v = n.checked_add(frac)?;
    Some(if neg { -v } else { v })
}

pub(super) fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(_) => decimal_text(v).unwrap_or_default(),
        other => other.to_string(),
    }
}

pub(super) fn compare(field: &Value, lit: &str) -> Ordering {
    let f = text_of(field);
    if let (Some(a), Some(b)) = (dec_key(&f), dec_key(lit)) {
        return a.cmp(&b);
    }
    if let (Ok(a), Ok(b)) = (
        DateTime::parse_from_rfc3339(&f),
        DateTime::parse_from_rfc3339(lit),
    ) {
        return a.cmp(&b);
    }
    if f.eq_ignore_ascii_case(lit) {
        return Ordering::Equal;
    }
    f.to_lowercase().cmp(&lit.to_lowercase())
}

pub(super) fn like(text: &str, pat: &str) -> bool {
    let (t, p) = (text.to_lowercase(), pat.to_lowercase());
    let parts: Vec<&str> = p.split('%').collect();
    if parts.len() == 1 {
        return t == p;
    }
    let mut rest = t.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compares_numbers_dates_and_text() {
        assert_eq!(compare(&json!(1234.5), "0"), Ordering::Greater);
        assert_eq!(compare(&json!("10"), "9"), Ordering::Greater);
        assert_eq!(
            compare(
                &json!("2026-01-02T00:00:00.000-07:00"),
                "2026-01-02T07:00:00Z"
            ),
            Ordering::Equal
        );
        assert!(like("Sysco Foods", "sys%"));
        assert!(like("Sysco Foods", "%FOOD%"));
        assert!(!like("Sysco Foods", "%bar%"));
    }
}
