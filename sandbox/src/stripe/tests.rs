//! Unit tests of the Stripe simulator's pieces that need no server.

use super::activity;
use super::call::Call;
use super::data::{previous_attributes, AccountData};
use super::payments::fee;
use super::{invoices, list, payments, reporting};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

fn call<'a>(acct: &'a mut AccountData, params: Value, ids: &[&str]) -> Call<'a> {
    Call {
        acct,
        now: Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap(),
        ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        params,
        base: "http://sb".into(),
    }
}

#[test]
fn fee_is_2_9_percent_plus_30_cents() {
    assert_eq!(fee(10_000), 320);
    assert_eq!(fee(1_000), 59);
    assert_eq!(fee(50), 31);
}

#[test]
fn previous_attributes_hold_the_old_values_of_changed_fields() {
    let b = json!({"status": "open", "amount_paid": 0, "status_transitions": {"paid_at": null, "finalized_at": 1}});
    let a = json!({"status": "paid", "amount_paid": 5, "status_transitions": {"paid_at": 9, "finalized_at": 1}});
    assert_eq!(
        previous_attributes(&b, &a),
        json!({"status": "open", "amount_paid": 0, "status_transitions": {"paid_at": null}})
    );
}

/// One page of the account's customers for `params`.
fn customers_page(acct: &AccountData, params: Value) -> Result<Value, super::error::StripeError> {
    let mut copy = acct.clone();
    let c = call(&mut copy, params, &[]);
    list::page(&c, c.acct.customers.iter().collect(), "/v1/customers")
}

#[test]
fn lists_page_newest_first_with_cursors() {
    let mut acct = AccountData::default();
    for i in 0..5 {
        acct.customers
            .push(json!({"id": format!("cus_{i}"), "created": 100 + i}));
    }
    let ids = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let p1 = customers_page(&acct, json!({"limit": "2"})).unwrap();
    assert_eq!(ids(&p1), ["cus_4", "cus_3"]);
    assert_eq!(p1["has_more"], true);
    assert_eq!(p1["url"], "/v1/customers");
    let p3 = customers_page(&acct, json!({"limit": "2", "starting_after": "cus_2"})).unwrap();
    assert_eq!(ids(&p3), ["cus_1", "cus_0"]);
    assert_eq!(p3["has_more"], false);
    let back = customers_page(&acct, json!({"limit": "2", "ending_before": "cus_1"})).unwrap();
    assert_eq!(ids(&back), ["cus_3", "cus_2"]);
    assert_eq!(back["has_more"], true);
    let f = customers_page(&acct, json!({"created": {"gte": "102", "lt": "104"}})).unwrap();
    assert_eq!(ids(&f), ["cus_3", "cus_2"]);
    assert_eq!(
        customers_page(&acct, json!({})).unwrap()["data"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert!(customers_page(&acct, json!({"limit": "101"})).is_err());
    assert!(customers_page(&acct, json!({"limit": "0"})).is_err());
    assert!(customers_page(&acct, json!({"starting_after": "cus_9"})).is_err());
}

#[test]
fn an_invoice_goes_draft_open_paid_with_a_charge_and_a_balance_transaction() {
    let mut acct = AccountData {
        invoice_prefix: "TEST".into(),
        ..Default::default()
    };
    acct.customers
        .push(json!({"id": "cus_a", "email": "a@x.test", "name": "A", "created": 1}));
    let inv = invoices::create(&mut call(
        &mut acct,
        json!({"customer": "cus_a", "collection_method": "send_invoice", "days_until_due": "30"}),
        &[],
    ))
    .unwrap();
    let id = inv["id"].as_str().unwrap().to_owned();
    invoices::create_item(&mut call(
        &mut acct,
        json!({"customer": "cus_a", "amount": "10000", "invoice": id}),
        &[],
    ))
    .unwrap();
    let open = invoices::finalize(&mut call(&mut acct, json!({}), &[&id])).unwrap();
    assert_eq!(open["status"], "open");
    assert_eq!(open["number"], "TEST-0001");
    assert_eq!(open["amount_remaining"], 10_000);
    assert_eq!(
        open["due_date"].as_i64().unwrap(),
        open["status_transitions"]["finalized_at"].as_i64().unwrap() + 30 * 86_400
    );
    let declined = invoices::pay(&mut call(
        &mut acct,
        json!({"payment_method": "pm_card_chargeDeclined"}),
        &[&id],
    ))
    .unwrap_err();
    assert_eq!(declined.status.as_u16(), 402);
    assert_eq!(declined.decline_code.as_deref(), Some("generic_decline"));
    let paid = invoices::pay(&mut call(
        &mut acct,
        json!({"payment_method": "pm_card_visa"}),
        &[&id],
    ))
    .unwrap();
    assert_eq!(
        (
            paid["status"].as_str(),
            paid["amount_paid"].as_i64(),
            paid["amount_remaining"].as_i64()
        ),
        (Some("paid"), Some(10_000), Some(0))
    );
    let txn = acct.balance_transactions.last().unwrap();
    assert_eq!(
        (
            txn["amount"].as_i64(),
            txn["fee"].as_i64(),
            txn["net"].as_i64()
        ),
        (Some(10_000), Some(320), Some(9_680))
    );
    assert_eq!(txn["reporting_category"], "charge");
    let ev = acct
        .events
        .iter()
        .find(|e| e["type"] == "invoice.paid")
        .unwrap();
    assert_eq!(ev["data"]["previous_attributes"]["status"], "open");
    // Paid is final: no void.
    assert!(invoices::void(&mut call(&mut acct, json!({}), &[&id])).is_err());
    assert!(payments::fee(0) > 0);
}

#[test]
fn the_seeded_world_is_deterministic_and_pays_out() {
    let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
    let mut a = crate::world::generate_sized(now, 7, 2);
    crate::oauth::ensure(&mut a, now);
    let mut b = a.clone();
    activity::ensure(&mut a, now);
    activity::ensure(&mut b, now);
    assert_eq!(
        serde_json::to_value(&a.stripe).unwrap(),
        serde_json::to_value(&b.stripe).unwrap()
    );
    for acct in a.stripe.accounts.values() {
        assert!(!acct.customers.is_empty());
        assert!(acct.invoices.iter().any(|i| i["status"] == "paid"));
        assert!(acct.payouts.iter().any(|p| p["status"] == "paid"));
        // A payout's transactions add up to it.
        let po = acct.payouts.iter().find(|p| p["status"] == "paid").unwrap();
        let po_id = po["id"].as_str().unwrap();
        let sum: i64 = acct
            .balance_transactions
            .iter()
            .filter(|t| {
                t["type"] != "payout"
                    && acct
                        .payout_of
                        .get(t["id"].as_str().unwrap())
                        .map(String::as_str)
                        == Some(po_id)
            })
            .map(|t| t["net"].as_i64().unwrap())
            .sum();
        assert_eq!(sum, po["amount"].as_i64().unwrap());
    }
    // Time moves: a later advance makes more payouts and pays more invoices.
    let before: usize = a.stripe.accounts.values().map(|x| x.payouts.len()).sum();
    activity::advance(&mut a.stripe, now + chrono::Duration::days(20));
    let after: usize = a.stripe.accounts.values().map(|x| x.payouts.len()).sum();
    assert!(after > before);
    for acct in a.stripe.accounts.values() {
        assert!(acct
            .payouts
            .iter()
            .filter(|p| p["created"].as_i64().unwrap() < now.timestamp())
            .all(|p| p["status"] == "paid"));
    }
}

#[test]
fn reports_render_decimal_major_units() {
    let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
    let mut st = crate::world::generate_sized(now, 7, 2);
    crate::oauth::ensure(&mut st, now);
    activity::ensure(&mut st, now);
    let acct = st.stripe.accounts.values().next().unwrap();
    let run = json!({"report_type": "balance_change_from_activity.itemized.3",
        "parameters": {"interval_start": 0, "interval_end": now.timestamp(), "columns": ["balance_transaction_id", "gross", "fee", "net"]}});
    let csv = reporting::render(acct, &run);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("balance_transaction_id,gross,fee,net"));
    let t = acct
        .balance_transactions
        .iter()
        .find(|t| t["type"] == "charge")
        .unwrap();
    let row = csv
        .lines()
        .find(|l| l.starts_with(t["id"].as_str().unwrap()))
        .unwrap();
    let amount = t["amount"].as_i64().unwrap();
    assert!(
        row.contains(&format!(",{}.{:02},", amount / 100, amount % 100)),
        "{row}"
    );
}

/// Stripe's data is made on first use and saved as its own part (the
/// simulation's 4x slowdown came from re-saving it with every other
/// change), and it survives a restart.
#[tokio::test]
async fn stripe_data_is_made_on_first_use_saved_apart_and_kept_across_a_restart() {
    use crate::{MemoryStore, SimStore, STRIPE_PART};
    use std::sync::Arc;
    let store = Arc::new(MemoryStore::new());
    let k = crate::testkit::start_with(store.clone(), String::new()).await;
    assert!(
        store.load_part(STRIPE_PART).await.unwrap().is_none(),
        "nobody has called Stripe yet: nothing made, nothing saved"
    );
    let key = k.sb.inner.state.lock().await.oauth.stripe_accounts[0]
        .restricted_key
        .clone();
    let r = k
        .http
        .post(format!("{}/stripe/v1/customers", k.base))
        .bearer_auth(&key)
        .form(&[("name", "Persisted Co")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The seeded history came with the first call.
    let listed: Value = k
        .http
        .get(format!("{}/stripe/v1/invoices?limit=3", k.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(3));
    assert!(store.snapshot().unwrap().get("stripe").is_none());
    let part = store.load_part(STRIPE_PART).await.unwrap().unwrap();
    assert!(part.to_string().contains(&id));
    // Another process on the same store still has the customer.
    let k2 = crate::testkit::start_with(store.clone(), String::new()).await;
    let r = k2
        .http
        .get(format!("{}/stripe/v1/customers/{id}", k2.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "Persisted Co");
}

/// One CSV line's cells (quotes as `unified_payments` writes them).
fn csv_cells(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match (ch, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(String::new()),
            (c, _) => out.last_mut().unwrap().push(c),
        }
    }
    out
}

#[test]
fn the_unified_payments_export_has_a_row_per_charge_with_its_fee() {
    let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
    let mut w = crate::world::generate_sized(now, 7, 2);
    crate::oauth::ensure(&mut w, now);
    activity::ensure(&mut w, now);
    let acct = w.stripe.accounts.values().next().expect("an account");
    assert!(!acct.charges.is_empty());
    let csv = super::unified_payments::unified_payments_csv(acct);
    let mut lines = csv.lines();
    let header = csv_cells(lines.next().unwrap());
    assert_eq!(
        header[..23],
        super::unified_payments::COLUMNS.map(String::from)
    );
    let rows: Vec<Vec<String>> = lines.map(csv_cells).collect();
    assert_eq!(rows.len(), acct.charges.len());
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for ch in &acct.charges {
        let id = ch["id"].as_str().unwrap();
        let row = rows.iter().find(|r| r[0] == id).expect("the charge's row");
        assert_eq!(row.len(), header.len());
        let amount = ch["amount"].as_i64().unwrap();
        assert_eq!(
            row[col("Amount")],
            format!("{}.{:02}", amount / 100, amount % 100)
        );
        if ch["status"] == "succeeded" {
            assert_eq!(row[col("Status")], "Paid");
            // The fee is the one its balance transaction carries.
            let txn = acct
                .balance_transactions
                .iter()
                .find(|t| t["source"] == id)
                .expect("its balance transaction");
            let f = txn["fee"].as_i64().unwrap();
            assert_eq!(row[col("Fee")], format!("{}.{:02}", f / 100, f % 100));
        } else {
            assert_eq!(row[col("Status")], "Failed");
        }
    }
    // Newest first.
    let created: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    let mut sorted = created.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(created, sorted);
}
