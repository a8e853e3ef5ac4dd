//! Events: `GET /v1/events` (`type=` with a trailing `*` wildcard,
//! `types[]`, `created[...]`) and `GET /v1/events/{id}`.

use super::call::{Call, Res};
use super::data::AccountData;
use super::error::StripeError;
use super::list::page;

pub(crate) fn retrieve(c: &mut Call) -> Res {
    c.allow(&[])?;
    AccountData::find(&c.acct.events, c.id())
        .cloned()
        .ok_or_else(|| StripeError::no_such("event", c.id(), "id"))
}

pub(crate) fn list(c: &mut Call) -> Res {
    c.allow(&[
        "limit",
        "starting_after",
        "ending_before",
        "created",
        "type",
        "types",
        "delivery_success",
    ])?;
    let kind = c.str("type")?;
    let types: Option<Vec<String>> = c.params.get("types").and_then(|t| t.as_array()).map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    });
    let matches = |t: &str| match &kind {
        None => true,
        Some(k) => match k.strip_suffix('*') {
            Some(prefix) => t.starts_with(prefix),
            None => t == k,
        },
    };
    let items = c
        .acct
        .events
        .iter()
        .filter(|e| matches(e["type"].as_str().unwrap_or("")))
        .filter(|e| {
            types
                .as_ref()
                .is_none_or(|ts| ts.iter().any(|t| e["type"] == t.as_str()))
        })
        .collect();
    page(c, items, "/v1/events")
}
