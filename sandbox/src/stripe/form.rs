//! Stripe's form encoding with bracket nesting (`metadata[k]=v`,
//! `expand[]=x`, `lines[0][amount]=5`), for bodies and query strings, read
//! into a JSON tree of strings: objects, arrays (from `[]` or from keys that
//! are all indexes) and string leaves.

use serde_json::{Map, Value};

/// Parse `a=1&b[c]=2` into `{"a": "1", "b": {"c": "2"}}`. `None` if the
/// text is not form encoding or a key is malformed (unbalanced brackets, a
/// key both a leaf and a parent).
pub(crate) fn parse(raw: &[u8]) -> Option<Value> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(raw).ok()?;
    let mut root = Value::Object(Map::new());
    for (k, v) in pairs {
        let path = segments(&k)?;
        insert(&mut root, &path, v)?;
    }
    Some(arrays(root))
}

/// `a[b][]` → `["a", "b", ""]`.
fn segments(key: &str) -> Option<Vec<String>> {
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if head.is_empty() {
        return None;
    }
    let mut out = vec![head.to_owned()];
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let close = inner.find(']')?;
        out.push(inner[..close].to_owned());
        rest = &inner[close + 1..];
    }
    Some(out)
}

fn insert(node: &mut Value, path: &[String], v: String) -> Option<()> {
    let (first, rest) = path.split_first()?;
    if first.is_empty() {
        // `[]`: append to an array.
        let Value::Array(a) = node else { return None };
        if rest.is_empty() {
            a.push(Value::String(v));
            return Some(());
        }
        a.push(Value::Object(Map::new()));
        let last = a.last_mut()?;
        return insert(last, rest, v);
    }
    let Value::Object(o) = node else { return None };
    if rest.is_empty() {
        if o.contains_key(first) {
            return None;
        }
        o.insert(first.clone(), Value::String(v));
        return Some(());
    }
    let child = o.entry(first.clone()).or_insert_with(|| {
        if rest[0].is_empty() {
            Value::Array(vec![])
        } else {
            Value::Object(Map::new())
        }
    });
    insert(child, rest, v)
}

/// Objects whose keys are all indexes become arrays, in index order.
fn arrays(v: Value) -> Value {
    match v {
        Value::Object(o) => {
            let indexed = !o.is_empty() && o.keys().all(|k| k.parse::<usize>().is_ok());
            let mut items: Vec<(String, Value)> =
                o.into_iter().map(|(k, v)| (k, arrays(v))).collect();
            if indexed {
                items.sort_by_key(|(k, _)| k.parse::<usize>().unwrap_or(usize::MAX));
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(items.into_iter().collect())
            }
        }
        Value::Array(a) => Value::Array(a.into_iter().map(arrays).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn brackets_nest_into_objects_and_arrays() {
        let v = parse(
            b"customer=cus_1&metadata[order]=42&expand[]=a&expand[]=b&lines[1][amount]=7&lines[0][amount]=5&lines[0][description]=x%20y",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({
                "customer": "cus_1",
                "metadata": {"order": "42"},
                "expand": ["a", "b"],
                "lines": [{"amount": "5", "description": "x y"}, {"amount": "7"}],
            })
        );
    }

    #[test]
    fn malformed_keys_are_refused() {
        assert!(parse(b"a[b=1").is_none());
        assert!(parse(b"a=1&a[b]=2").is_none());
        assert!(parse(b"a=1&a=2").is_none());
        assert_eq!(parse(b"").unwrap(), json!({}));
    }
}
