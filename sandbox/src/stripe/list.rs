//! List endpoints: `{object: "list", url, has_more, data}`, newest first,
//! `limit` 1–100 (default 10), `starting_after` / `ending_before` cursors
//! and `created[gt|gte|lt|lte]` (or `created=<ts>`).

use super::call::{invalid_value, Call, Res};
use super::error::StripeError;
use serde_json::{json, Value};

/// Does `v`'s `field` (Unix seconds) pass the `field[...]` filter of the call?
pub(crate) fn time_filter(c: &Call, field: &str, v: &Value) -> Result<bool, StripeError> {
    let Some(f) = c.params.get(field) else {
        return Ok(true);
    };
    let t = v[field].as_i64().unwrap_or(0);
    let num = |s: &Value| -> Result<i64, StripeError> {
        s.as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid_value(field, "an integer or a hash of gt/gte/lt/lte"))
    };
    match f {
        Value::String(_) => Ok(t == num(f)?),
        Value::Object(o) => {
            for (op, bound) in o {
                let b = num(bound)?;
                let ok = match op.as_str() {
                    "gt" => t > b,
                    "gte" => t >= b,
                    "lt" => t < b,
                    "lte" => t <= b,
                    _ => {
                        return Err(StripeError::invalid(
                            &format!("Received unknown parameter: {field}[{op}]"),
                            Some(&format!("{field}[{op}]")),
                        ))
                    }
                };
                if !ok {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        _ => Err(invalid_value(field, "an integer or a hash")),
    }
}

/// One page of `items` (in creation order; filtered already except for
/// `created`), newest first.
pub(crate) fn page(c: &Call, items: Vec<&Value>, url: &str) -> Res {
    let limit = match c.int("limit")? {
        None => 10,
        Some(n) if (1..=100).contains(&n) => n as usize,
        Some(_) => {
            return Err(StripeError::invalid(
                "Invalid limit: must be between 1 and 100",
                Some("limit"),
            ))
        }
    };
    let mut all: Vec<(usize, &Value)> = vec![];
    for (i, v) in items.into_iter().enumerate() {
        if time_filter(c, "created", v)? {
            all.push((i, v));
        }
    }
    // Newest first; ties in creation order reversed.
    all.sort_by(|a, b| {
        b.1["created"]
            .as_i64()
            .cmp(&a.1["created"].as_i64())
            .then(b.0.cmp(&a.0))
    });
    let all: Vec<&Value> = all.into_iter().map(|(_, v)| v).collect();
    let after = c.str("starting_after")?;
    let before = c.str("ending_before")?;
    if after.is_some() && before.is_some() {
        return Err(StripeError::invalid(
            "You may only specify one of these parameters: ending_before, starting_after.",
            None,
        ));
    }
    let pos = |id: &str, param: &str| {
        all.iter().position(|v| v["id"] == id).ok_or_else(|| {
            StripeError::invalid(
                &format!("Invalid {param} id: there is no object '{id}' in this list"),
                Some(param),
            )
        })
    };
    let (data, has_more): (Vec<&Value>, bool) = if let Some(a) = after {
        let p = pos(&a, "starting_after")?;
        let rest = &all[p + 1..];
        (
            rest.iter().take(limit).copied().collect(),
            rest.len() > limit,
        )
    } else if let Some(b) = before {
        // The `limit` items just before (newer than) the cursor.
        let p = pos(&b, "ending_before")?;
        let from = p.saturating_sub(limit);
        (all[from..p].to_vec(), from > 0)
    } else {
        (all.iter().take(limit).copied().collect(), all.len() > limit)
    };
    Ok(json!({"object": "list", "url": url, "has_more": has_more, "data": data}))
}
