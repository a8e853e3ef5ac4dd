//! Change Data Capture: `GET /cdc?entities=A,B&changedSince=<date-time>`.
//! Every object of the listed entities changed at or after `changedSince`
//! (at most 30 days back), deleted ones shortened to `{Id, status:
//! "Deleted", MetaData}`; at most 1,000 objects in all.

use super::render::{entity_name, render_all};
use super::{authed, validation, Now};
use crate::sim_state::QboRealm;
use crate::Sandbox;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Objects in one CDC answer, across all entities.
const CDC_CAP: usize = 1_000;
const LOOKBACK_DAYS: i64 = 30;

/// `changedSince` as an instant: a date-time with offset, or a date
/// (midnight in the company's zone).
fn since(text: &str, now: Now) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let midnight = d.and_hms_opt(0, 0, 0)?.and_utc();
    let offset = super::tz::offset_at(now.zone, midnight).local_minus_utc();
    Some(midnight - Duration::seconds(i64::from(offset)))
}

fn last_updated(v: &Value) -> Option<DateTime<Utc>> {
    v.pointer("/MetaData/LastUpdatedTime")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn deleted(realm: &QboRealm, entity: &str, from: DateTime<Utc>, now: Now) -> Vec<Value> {
    realm
        .deleted
        .iter()
        .filter(|d| d.entity == entity && d.deleted >= from)
        .map(|d| {
            let t = Now { at: d.deleted, ..now }.text();
            json!({"Id": d.id, "status": "Deleted", "domain": "QBO", "MetaData": {"LastUpdatedTime": t}})
        })
        .collect()
}

pub(super) async fn cdc(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path(realm): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (st, ci, now) = match authed(&sb, &headers, &realm, &q).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let missing = |what: &str| {
        validation(
            "2020",
            "Required param missing, need to supply the required value for the API",
            &format!("Required parameter {what} is missing in the request"),
            now,
        )
    };
    let Some(list) = q.get("entities").filter(|s| !s.trim().is_empty()) else {
        return missing("entities");
    };
    let Some(text) = q.get("changedSince").filter(|s| !s.trim().is_empty()) else {
        return missing("changedSince");
    };
    let Some(from) = since(text.trim(), now) else {
        return validation(
            "2010",
            "Request has invalid or unsupported property",
            &format!("changedSince {text} is not a date-time"),
            now,
        );
    };
    if from < now.at - Duration::days(LOOKBACK_DAYS) {
        return validation(
            "2010",
            "Request has invalid or unsupported property",
            &format!("Operation cdc with changedSince date {text} which is older than fixed days is not supported."),
            now,
        );
    }
    let mut names = vec![];
    for e in list.split(',').map(str::trim) {
        // CompanyInfo is read only and not tracked by CDC.
        match entity_name(e).filter(|n| *n != "CompanyInfo") {
            Some(n) if !names.contains(&n) => names.push(n),
            Some(_) => {}
            None => {
                return validation(
                    "2010",
                    "Request has invalid or unsupported property",
                    &format!("Entity {e} is not supported by CDC"),
                    now,
                )
            }
        }
    }
    let c = &st.clients[ci];
    let mut left = CDC_CAP;
    let mut responses = vec![];
    for name in names {
        let mut rows: Vec<Value> = render_all(c, name)
            .into_iter()
            .filter(|v| last_updated(v).is_some_and(|t| t >= from))
            .collect();
        rows.extend(deleted(&c.qbo, name, from, now));
        rows.sort_by_key(last_updated);
        rows.truncate(left);
        left -= rows.len();
        if rows.is_empty() {
            responses.push(json!({}));
            continue;
        }
        let n = rows.len();
        responses.push(json!({name: rows, "startPosition": 1, "maxResults": n, "totalCount": n}));
    }
    Json(json!({"CDCResponse": [{"QueryResponse": responses}], "time": now.text()})).into_response()
}
