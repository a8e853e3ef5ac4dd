//! `POST /{entity}`: create (no `Id`), full update (`Id` + the current
//! `SyncToken`; fields left out are cleared), sparse update (`"sparse":
//! true`; the fields sent replace the stored ones, `Line` whole),
//! `?operation=delete`, and void (`?operation=void` for invoices,
//! `?operation=update&include=void` for payments and bill payments). A
//! stale SyncToken is 5010. A `requestid` seen before gets the stored
//! answer again, and nothing is applied twice.

use super::render::{entity_name, render_all};
use super::{authed, not_found, validation, vbox, writes, Now};
use super::{names, sales};
use crate::sim_state::SimClient;
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;

type Saver = fn(&mut SimClient, Option<&str>, &Value, Now) -> Result<String, Box<Response>>;

fn saver(entity: &str) -> Option<Saver> {
    Some(match entity {
        "Bill" => writes::save_bill,
        "BillPayment" => writes::save_bill_payment,
        "Vendor" => names::save_vendor,
        "Customer" => names::save_customer,
        "Account" => names::save_account,
        "Invoice" => sales::save_invoice,
        "Payment" => sales::save_payment,
        _ => return None,
    })
}

fn render_one(c: &SimClient, entity: &str, id: &str) -> Option<Value> {
    render_all(c, entity)
        .into_iter()
        .find(|v| v.get("Id").and_then(Value::as_str) == Some(id))
}

/// The object the body names by `Id`, checked against its `SyncToken`.
fn current(
    c: &SimClient,
    entity: &str,
    v: &Value,
    now: Now,
) -> Result<(String, Value), Box<Response>> {
    let id = match v.get("Id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(vbox("2020", "Required param missing", "Id", now)),
    };
    let cur = render_one(c, entity, &id).ok_or_else(|| not_found(entity, &id, now))?;
    let token = match v.get("SyncToken") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err(vbox("2020", "Required param missing", "SyncToken", now)),
    };
    if cur.get("SyncToken").and_then(Value::as_str) != Some(token.as_str()) {
        return Err(vbox(
            "5010",
            "Stale Object Error",
            "Stale Object Error : You and sandbox were working on this at the same time. sandbox finished before you did, so your work was not saved.",
            now,
        ));
    }
    Ok((id, cur))
}

/// A sparse update: the fields sent (top level) over the stored object.
fn merged(mut cur: Value, v: &Value) -> Value {
    if let (Some(o), Some(sent)) = (cur.as_object_mut(), v.as_object()) {
        for (k, x) in sent {
            o.insert(k.clone(), x.clone());
        }
    }
    cur
}

enum Op {
    Save,
    Delete,
    Void,
}

fn unsupported(what: &str, now: Now) -> Box<Response> {
    vbox("500", "Unsupported Operation", what, now)
}

/// Apply one write; the answer's entity object.
fn apply(
    c: &mut SimClient,
    entity: &'static str,
    op: Op,
    v: &Value,
    now: Now,
) -> Result<Value, Box<Response>> {
    match op {
        Op::Save => {
            let save = saver(entity).ok_or_else(|| {
                unsupported(
                    &format!("Operation create is not supported for {entity}"),
                    now,
                )
            })?;
            let id = if v.get("Id").is_some() {
                let (id, cur) = current(c, entity, v, now)?;
                let sparse = v.get("sparse").and_then(Value::as_bool) == Some(true);
                let body = if sparse { merged(cur, v) } else { v.clone() };
                save(c, Some(&id), &body, now)?
            } else {
                save(c, None, v, now)?
            };
            render_one(c, entity, &id).ok_or_else(|| not_found(entity, &id, now))
        }
        Op::Delete => {
            let (id, _) = current(c, entity, v, now)?;
            let realm = &mut c.qbo;
            match entity {
                "BillPayment" => writes::delete_bill_payment(realm, &id, now),
                "Bill" => writes::delete_bill(realm, &id, now)?,
                "Payment" => sales::delete_payment(realm, &id, now),
                "Invoice" => sales::delete_invoice(realm, &id, now)?,
                _ => {
                    return Err(unsupported(
                        &format!(
                            "Operation delete is not supported for {entity}; make it inactive"
                        ),
                        now,
                    ))
                }
            }
            Ok(json!({"status": "Deleted", "domain": "QBO", "Id": id}))
        }
        Op::Void => {
            let (id, _) = current(c, entity, v, now)?;
            let realm = &mut c.qbo;
            match entity {
                "BillPayment" => writes::void_bill_payment(realm, &id, now),
                "Payment" => sales::void_payment(realm, &id, now),
                "Invoice" => sales::void_invoice(realm, &id, now)?,
                _ => {
                    return Err(unsupported(
                        &format!("Operation void is not supported for {entity}"),
                        now,
                    ))
                }
            }
            render_one(c, entity, &id).ok_or_else(|| not_found(entity, &id, now))
        }
    }
}

pub(super) async fn entity_post(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    Path((realm, entity)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let (mut st, ci, now) = match authed(&sb, &headers, &realm, &q).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(name) = entity_name(&entity).filter(|n| *n != "CompanyInfo") else {
        return validation(
            "500",
            "Unsupported Operation",
            &format!("Writing {entity} is not supported"),
            now,
        );
    };
    let request_id = q.get("requestid").filter(|r| !r.is_empty()).cloned();
    if let Some(rid) = &request_id {
        if let Some((status, stored)) = sb.inner.qbo.reply(&realm, rid) {
            return (status, Json(stored)).into_response();
        }
    }
    let op = match (
        q.get("operation").map(String::as_str),
        q.get("include").map(String::as_str),
    ) {
        (None | Some("create" | "update"), None) => Op::Save,
        (Some("delete"), None) => Op::Delete,
        (Some("void"), None) if name == "Invoice" => Op::Void,
        (Some("update"), Some("void")) if matches!(name, "Payment" | "BillPayment") => Op::Void,
        (o, i) => {
            return validation(
                "500",
                "Unsupported Operation",
                &format!(
                    "operation={} include={} is not supported for {name}",
                    o.unwrap_or(""),
                    i.unwrap_or("")
                ),
                now,
            )
        }
    };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return validation(
            "2010",
            "Request has invalid or unsupported property",
            "body is not JSON",
            now,
        );
    };
    if !v.is_object() {
        return validation(
            "2010",
            "Request has invalid or unsupported property",
            "body must be a JSON object",
            now,
        );
    }
    let out = match apply(&mut st.clients[ci], name, op, &v, now) {
        Ok(out) => out,
        Err(r) => return *r,
    };
    let answer = json!({ name: out, "time": now.text() });
    if let Some(rid) = &request_id {
        sb.inner
            .qbo
            .remember(&realm, rid, StatusCode::OK, answer.clone());
    }
    // Injected: the write is applied, its answer lost.
    let lose = st.faults.qbo_write_lose_response_next > 0;
    if lose {
        st.faults.qbo_write_lose_response_next -= 1;
    }
    sb.persist_logged(&st).await;
    if lose {
        return super::injected(StatusCode::INTERNAL_SERVER_ERROR, now.at);
    }
    Json(answer).into_response()
}
