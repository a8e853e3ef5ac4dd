//! The Reporting API: report types (data available up to the start of the
//! sandbox day), report runs (`pending`, then `succeeded` on the first read
//! a sandbox second or more later, with `result` a File) and the files'
//! CSV, amounts in decimal major units.

use super::call::{Call, Res};
use super::data::AccountData;
use super::error::StripeError;
use super::list::page;
use axum::http::StatusCode;
use chrono::DateTime;
use serde_json::{json, Value};

pub(crate) const TYPES: [&str; 3] = [
    "balance_change_from_activity.itemized.3",
    "payouts.itemized.3",
    "payout_reconciliation.itemized.5",
];

const BALANCE_COLUMNS: &[&str] = &[
    "balance_transaction_id",
    "created_utc",
    "created",
    "available_on_utc",
    "available_on",
    "currency",
    "gross",
    "fee",
    "net",
    "reporting_category",
    "source_id",
    "description",
    "customer_facing_amount",
    "customer_facing_currency",
    "automatic_payout_id",
    "automatic_payout_effective_at_utc",
    "automatic_payout_effective_at",
    "customer_id",
    "customer_email",
    "customer_name",
    "customer_description",
    "charge_id",
    "payment_intent_id",
    "charge_created_utc",
    "charge_created",
    "invoice_id",
    "invoice_number",
    "payment_method_type",
    "card_brand",
    "card_funding",
    "card_country",
];

const PAYOUT_COLUMNS: &[&str] = &[
    "payout_id",
    "effective_at_utc",
    "effective_at",
    "currency",
    "gross",
    "fee",
    "net",
    "reporting_category",
    "balance_transaction_id",
    "description",
    "payout_expected_arrival_date",
    "payout_status",
    "payout_reversed_at_utc",
    "payout_reversed_at",
    "payout_type",
    "payout_description",
    "payout_destination_id",
];

const RECON_COLUMNS: &[&str] = &[
    "automatic_payout_id",
    "automatic_payout_effective_at_utc",
    "automatic_payout_effective_at",
    "balance_transaction_id",
    "created_utc",
    "created",
    "available_on_utc",
    "available_on",
    "currency",
    "gross",
    "fee",
    "net",
    "reporting_category",
    "source_id",
    "description",
    "customer_id",
    "customer_email",
    "customer_name",
    "customer_description",
    "charge_id",
    "payment_intent_id",
    "invoice_id",
    "invoice_number",
    "trace_id",
    "trace_id_status",
];

fn day_start(ts: i64) -> i64 {
    ts - ts.rem_euclid(86_400)
}

/// The earliest activity of the account (report data starts there).
fn data_start(c: &Call) -> i64 {
    c.acct
        .balance_transactions
        .iter()
        .filter_map(|t| t["created"].as_i64())
        .min()
        .map(day_start)
        .unwrap_or(day_start(c.ts()))
}

pub(crate) fn report_type(c: &mut Call) -> Res {
    c.allow(&[])?;
    let id = c.id().to_owned();
    if !TYPES.contains(&id.as_str()) {
        return Err(StripeError::no_such("report type", &id, "id"));
    }
    Ok(json!({
        "id": id, "object": "reporting.report_type",
        "data_available_start": data_start(c), "data_available_end": day_start(c.ts()),
        "default_columns": columns_of(&id), "livemode": false, "name": id, "updated": day_start(c.ts()), "version": 1,
    }))
}

fn columns_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "payouts.itemized.3" => PAYOUT_COLUMNS,
        "payout_reconciliation.itemized.5" => RECON_COLUMNS,
        _ => BALANCE_COLUMNS,
    }
}

pub(crate) fn create_run(c: &mut Call) -> Res {
    c.allow(&["report_type", "parameters"])?;
    let kind = c.req_str("report_type")?;
    if !TYPES.contains(&kind.as_str()) {
        return Err(StripeError::invalid(
            &format!("No such report type: {kind}"),
            Some("report_type"),
        ));
    }
    let p = c
        .params
        .get("parameters")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let num = |k: &str| -> Result<Option<i64>, StripeError> {
        match p.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .and_then(|s| s.parse().ok())
                .map(Some)
                .ok_or_else(|| {
                    StripeError::invalid(
                        &format!("Invalid parameters[{k}]: must be an integer"),
                        Some(&format!("parameters[{k}]")),
                    )
                }),
        }
    };
    let (start, end) = (num("interval_start")?, num("interval_end")?);
    let (avail_start, avail_end) = (data_start(c), day_start(c.ts()));
    let start = start.unwrap_or(avail_start);
    let end = end.unwrap_or(avail_end);
    if end > avail_end {
        return Err(StripeError::invalid(
            &format!("parameters[interval_end] must be at or before the report type's data_available_end ({avail_end})."),
            Some("parameters[interval_end]"),
        ));
    }
    if start < avail_start || start >= end {
        return Err(StripeError::invalid(
            &format!("parameters[interval_start] must be at or after data_available_start ({avail_start}) and before interval_end."),
            Some("parameters[interval_start]"),
        ));
    }
    let columns: Vec<String> = match p.get("columns") {
        None => columns_of(&kind).iter().map(|s| (*s).to_owned()).collect(),
        Some(Value::Array(a)) => {
            let mut out = vec![];
            for v in a {
                let col = v.as_str().unwrap_or("");
                if !columns_of(&kind).contains(&col) {
                    return Err(StripeError::invalid(
                        &format!("Invalid column: {col}"),
                        Some("parameters[columns]"),
                    ));
                }
                out.push(col.to_owned());
            }
            out
        }
        Some(_) => {
            return Err(StripeError::invalid(
                "parameters[columns] must be an array",
                Some("parameters[columns]"),
            ))
        }
    };
    let id = c.acct.id("frr_");
    let run = json!({
        "id": id, "object": "reporting.report_run", "created": c.ts(), "error": null, "livemode": false,
        "parameters": {"interval_start": start, "interval_end": end, "columns": columns, "timezone": "Etc/UTC"},
        "report_type": kind, "result": null, "status": "pending", "succeeded_at": null,
    });
    c.acct.report_runs.push(run.clone());
    Ok(run)
}

/// Finish the runs created at least a second before now.
pub(crate) fn finish_due(acct: &mut AccountData, now: i64, base: &str) {
    let due: Vec<usize> = acct
        .report_runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r["status"] == "pending" && r["created"].as_i64().unwrap_or(now) < now)
        .map(|(i, _)| i)
        .collect();
    for i in due {
        let run = acct.report_runs[i].clone();
        let csv = render(acct, &run);
        let fid = acct.id("file_");
        let file = json!({
            "id": fid, "object": "file", "created": now, "expires_at": now + 90 * 86_400,
            "filename": format!("{fid}.csv"), "links": null, "purpose": "finance_report_run",
            "size": csv.len(), "title": format!("{} {}", run["report_type"].as_str().unwrap_or(""), run["id"].as_str().unwrap_or("")),
            "type": "csv", "url": format!("{base}/stripe/files/v1/files/{fid}/contents"),
        });
        acct.file_contents.insert(fid.clone(), csv);
        acct.files.push(file.clone());
        let before = acct.report_runs[i].clone();
        acct.report_runs[i]["status"] = json!("succeeded");
        acct.report_runs[i]["succeeded_at"] = json!(now);
        acct.report_runs[i]["result"] = file;
        let after = acct.report_runs[i].clone();
        acct.event("reporting.report_run.succeeded", &after, Some(&before), now);
    }
}

pub(crate) fn retrieve_run(c: &mut Call) -> Res {
    c.allow(&[])?;
    let (now, base) = (c.ts(), c.base.clone());
    finish_due(c.acct, now, &base);
    AccountData::find(&c.acct.report_runs, c.id())
        .cloned()
        .ok_or_else(|| StripeError::no_such("report run", c.id(), "id"))
}

pub(crate) fn list_runs(c: &mut Call) -> Res {
    c.allow(&["limit", "starting_after", "ending_before", "created"])?;
    let (now, base) = (c.ts(), c.base.clone());
    finish_due(c.acct, now, &base);
    let items = c.acct.report_runs.iter().collect();
    page(c, items, "/v1/reporting/report_runs")
}

pub(crate) fn retrieve_file(c: &mut Call) -> Res {
    c.allow(&[])?;
    AccountData::find(&c.acct.files, c.id())
        .cloned()
        .ok_or_else(|| StripeError::no_such("file", c.id(), "id"))
}

/// The CSV of a file, or 404.
pub(crate) fn contents(acct: &AccountData, id: &str) -> Result<String, StripeError> {
    acct.file_contents.get(id).cloned().ok_or_else(|| {
        let mut e = StripeError::no_such("file", id, "id");
        e.status = StatusCode::NOT_FOUND;
        e
    })
}

pub(super) fn money(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", minor.abs() / 100, minor.abs() % 100)
}

fn utc(ts: Option<i64>) -> String {
    ts.and_then(|t| DateTime::from_timestamp(t, 0))
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

pub(super) fn cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

pub(super) fn s(v: &Value) -> String {
    match v {
        Value::String(x) => x.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The fields of one balance transaction row (balance and reconciliation).
fn txn_fields(acct: &AccountData, t: &Value, col: &str) -> String {
    let tid = t["id"].as_str().unwrap_or("");
    let charge = t["source"]
        .as_str()
        .and_then(|src| AccountData::find(&acct.charges, src));
    let pi = charge.and_then(|ch| ch["payment_intent"].as_str());
    let invoice = pi
        .and_then(|p| acct.invoice_of_pi.get(p))
        .and_then(|i| AccountData::find(&acct.invoices, i));
    let customer = charge
        .and_then(|ch| ch["customer"].as_str())
        .and_then(|cu| AccountData::find(&acct.customers, cu));
    let payout = acct
        .payout_of
        .get(tid)
        .and_then(|p| AccountData::find(&acct.payouts, p));
    match col {
        "balance_transaction_id" => tid.to_owned(),
        "created_utc" | "created" => utc(t["created"].as_i64()),
        "available_on_utc" | "available_on" => utc(t["available_on"].as_i64()),
        "currency" | "customer_facing_currency" => s(&t["currency"]),
        "gross" | "customer_facing_amount" => money(t["amount"].as_i64().unwrap_or(0)),
        "fee" => money(t["fee"].as_i64().unwrap_or(0)),
        "net" => money(t["net"].as_i64().unwrap_or(0)),
        "reporting_category" => s(&t["reporting_category"]),
        "source_id" => s(&t["source"]),
        "description" => s(&t["description"]),
        "automatic_payout_id" => payout.map(|p| s(&p["id"])).unwrap_or_default(),
        "automatic_payout_effective_at_utc" | "automatic_payout_effective_at" => payout
            .map(|p| utc(p["arrival_date"].as_i64()))
            .unwrap_or_default(),
        "customer_id" => customer.map(|x| s(&x["id"])).unwrap_or_default(),
        "customer_email" => customer.map(|x| s(&x["email"])).unwrap_or_default(),
        "customer_name" => customer.map(|x| s(&x["name"])).unwrap_or_default(),
        "customer_description" => customer.map(|x| s(&x["description"])).unwrap_or_default(),
        "charge_id" => charge.map(|x| s(&x["id"])).unwrap_or_default(),
        "payment_intent_id" => pi.unwrap_or("").to_owned(),
        "charge_created_utc" | "charge_created" => charge
            .map(|x| utc(x["created"].as_i64()))
            .unwrap_or_default(),
        "invoice_id" => invoice.map(|x| s(&x["id"])).unwrap_or_default(),
        "invoice_number" => invoice.map(|x| s(&x["number"])).unwrap_or_default(),
        "payment_method_type" => charge.map(|_| "card".to_owned()).unwrap_or_default(),
        "card_brand" => charge
            .map(|x| s(&x["payment_method_details"]["card"]["brand"]))
            .unwrap_or_default(),
        "card_funding" => charge
            .map(|x| s(&x["payment_method_details"]["card"]["funding"]))
            .unwrap_or_default(),
        "card_country" => charge
            .map(|x| s(&x["payment_method_details"]["card"]["country"]))
            .unwrap_or_default(),
        "trace_id" => payout
            .map(|p| s(&p["trace_id"]["value"]))
            .unwrap_or_default(),
        "trace_id_status" => payout
            .map(|p| s(&p["trace_id"]["status"]))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn payout_fields(acct: &AccountData, p: &Value, col: &str) -> String {
    let txn = p["balance_transaction"]
        .as_str()
        .and_then(|t| AccountData::find(&acct.balance_transactions, t));
    match col {
        "payout_id" => s(&p["id"]),
        "effective_at_utc" | "effective_at" => utc(p["arrival_date"].as_i64()),
        "currency" => s(&p["currency"]),
        // The payout report shows the amount paid out as a positive gross.
        "gross" | "net" => money(p["amount"].as_i64().unwrap_or(0)),
        "fee" => money(0),
        "reporting_category" => "payout".into(),
        "balance_transaction_id" => txn.map(|t| s(&t["id"])).unwrap_or_default(),
        "description" | "payout_description" => s(&p["description"]),
        "payout_expected_arrival_date" => utc(p["arrival_date"].as_i64())
            .get(..10)
            .unwrap_or("")
            .to_owned(),
        "payout_status" => s(&p["status"]),
        "payout_type" => s(&p["type"]),
        "payout_destination_id" => s(&p["destination"]),
        _ => String::new(),
    }
}

/// The CSV of a run: a header of its columns, one row per item in the
/// interval (oldest first).
pub(crate) fn render(acct: &AccountData, run: &Value) -> String {
    let start = run["parameters"]["interval_start"].as_i64().unwrap_or(0);
    let end = run["parameters"]["interval_end"].as_i64().unwrap_or(0);
    let cols: Vec<String> = run["parameters"]["columns"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let within = |t: Option<i64>| t.is_some_and(|t| t >= start && t < end);
    let mut rows: Vec<(i64, Vec<String>)> = vec![];
    match run["report_type"].as_str().unwrap_or("") {
        "payouts.itemized.3" => {
            for p in &acct.payouts {
                let at = p["arrival_date"].as_i64();
                if p["status"] == "paid" && within(at) {
                    rows.push((
                        at.unwrap_or(0),
                        cols.iter().map(|c| payout_fields(acct, p, c)).collect(),
                    ));
                }
            }
        }
        "payout_reconciliation.itemized.5" => {
            for t in &acct.balance_transactions {
                let Some(po) = acct.payout_of.get(t["id"].as_str().unwrap_or("")) else {
                    continue;
                };
                let Some(p) = AccountData::find(&acct.payouts, po) else {
                    continue;
                };
                if t["type"] != "payout"
                    && p["status"] == "paid"
                    && within(p["arrival_date"].as_i64())
                {
                    rows.push((
                        t["created"].as_i64().unwrap_or(0),
                        cols.iter().map(|c| txn_fields(acct, t, c)).collect(),
                    ));
                }
            }
        }
        _ => {
            for t in &acct.balance_transactions {
                let at = t["available_on"].as_i64();
                if within(at) {
                    rows.push((
                        t["created"].as_i64().unwrap_or(0),
                        cols.iter().map(|c| txn_fields(acct, t, c)).collect(),
                    ));
                }
            }
        }
    }
    rows.sort_by_key(|(t, _)| *t);
    let mut out = cols.join(",");
    out.push('\n');
    for (_, r) in rows {
        out.push_str(&r.iter().map(|x| cell(x)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}
