//! The Plaid API's own behaviour: the shape of what it answers, cached and
//! live balances, rate limits, and how a bank feed changes under sync.

use super::{decode_cursor, encode_cursor};
use crate::testkit::{start, Kit};
use chrono::Duration;
use serde_json::{json, Value};

#[test]
fn cursors_round_trip_and_reject_garbage() {
    assert_eq!(decode_cursor(&encode_cursor(42)), Some(42));
    assert_eq!(decode_cursor("bm9wZQ=="), None);
    assert_eq!(decode_cursor("!!"), None);
}

async fn token(k: &Kit, ci: usize) -> String {
    k.sb.state().await.clients[ci].plaid.access_token.clone()
}

fn code(v: &Value) -> &str {
    v["error_code"].as_str().unwrap_or("")
}

/// Every field plaid-python's `Transaction` model requires (nullable ones
/// included: a missing key fails it, a null does not).
const TXN_REQUIRED: [&str; 17] = [
    "account_id",
    "amount",
    "iso_currency_code",
    "unofficial_currency_code",
    "date",
    "pending",
    "transaction_id",
    "authorized_date",
    "authorized_datetime",
    "datetime",
    "payment_channel",
    "transaction_code",
    "location",
    "name",
    "payment_meta",
    "pending_transaction_id",
    "account_owner",
];

#[tokio::test]
async fn sync_pages_carry_every_required_field() {
    let k = start(String::new()).await;
    let t = token(&k, 0).await;
    let (s, p1) = k
        .plaid("/transactions/sync", json!({"access_token": t, "count": 3}))
        .await;
    assert_eq!(s, 200, "{p1}");
    assert_eq!(p1["added"].as_array().unwrap().len(), 3);
    assert_eq!(p1["has_more"], true);
    for txn in p1["added"].as_array().unwrap() {
        for f in TXN_REQUIRED {
            assert!(txn.get(f).is_some(), "transaction lacks {f}: {txn}");
        }
        let channel = txn["payment_channel"].as_str().unwrap();
        assert!(["online", "in store", "other"].contains(&channel));
    }
    for f in [
        "balances",
        "mask",
        "name",
        "official_name",
        "type",
        "subtype",
    ] {
        assert!(p1["accounts"][0].get(f).is_some(), "account lacks {f}");
    }
    let (_, p2) = k
        .plaid(
            "/transactions/sync",
            json!({"access_token": t, "count": 3, "cursor": p1["next_cursor"]}),
        )
        .await;
    assert_ne!(
        p2["added"][0]["transaction_id"],
        p1["added"][0]["transaction_id"]
    );
}

async fn set_available(k: &Kit, ci: usize, cents: i64) {
    let mut st = k.sb.inner.state.lock().await;
    st.clients[ci].plaid.account.available_cents = cents;
}

#[tokio::test]
async fn accounts_get_is_cached_and_balance_get_is_live() {
    let k = start(String::new()).await;
    let t = token(&k, 0).await;
    let (_, cached) = k.plaid("/accounts/get", json!({"access_token": t})).await;
    let before = cached["accounts"][0]["balances"]["available"].clone();
    set_available(&k, 0, 123_456).await;
    let (_, cached) = k.plaid("/accounts/get", json!({"access_token": t})).await;
    assert_eq!(cached["accounts"][0]["balances"]["available"], before);
    assert!(cached["accounts"][0]["balances"]["last_updated_datetime"].is_string());
    let (s, live) = k
        .plaid("/accounts/balance/get", json!({"access_token": t}))
        .await;
    assert_eq!(s, 200, "{live}");
    assert_eq!(live["accounts"][0]["balances"]["available"], json!(1234.56));
    // The live read refreshed the cache.
    let (_, cached) = k.plaid("/accounts/get", json!({"access_token": t})).await;
    assert_eq!(
        cached["accounts"][0]["balances"]["available"],
        json!(1234.56)
    );
    // And Plaid's own daily update does too.
    set_available(&k, 0, 99_00).await;
    k.sb.advance(Duration::days(2)).await.unwrap();
    let (_, cached) = k.plaid("/accounts/get", json!({"access_token": t})).await;
    let live = k.sb.state().await.clients[0].plaid.account.available_cents;
    let shown = cached["accounts"][0]["balances"]["available"]
        .as_f64()
        .unwrap();
    assert_eq!((shown * 100.0).round() as i64, live);
}

#[tokio::test]
async fn balance_get_is_limited_to_five_a_minute_per_item() {
    let k = start(String::new()).await;
    let (a, b) = (token(&k, 0).await, token(&k, 1).await);
    for _ in 0..5 {
        let (s, v) = k
            .plaid("/accounts/balance/get", json!({"access_token": a}))
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let (s, v) = k
        .plaid("/accounts/balance/get", json!({"access_token": a}))
        .await;
    assert_eq!(s, 429);
    assert_eq!(v["error_type"], "RATE_LIMIT_EXCEEDED");
    assert_eq!(code(&v), "ACCOUNTS_BALANCE_GET_LIMIT");
    assert!(v["request_id"].is_string());
    // Another Item and another endpoint are not affected.
    let (s, _) = k
        .plaid("/accounts/balance/get", json!({"access_token": b}))
        .await;
    assert_eq!(s, 200);
    let (s, _) = k.plaid("/accounts/get", json!({"access_token": a})).await;
    assert_eq!(s, 200);
    // A minute later the Item may read again.
    k.sb.advance(Duration::seconds(61)).await.unwrap();
    let (s, _) = k
        .plaid("/accounts/balance/get", json!({"access_token": a}))
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn pending_card_purchases_are_modified_then_posted() {
    let k = start(String::new()).await;
    let t = token(&k, 0).await;
    let mut cursor = Value::Null;
    loop {
        let (_, p) = k
            .plaid(
                "/transactions/sync",
                json!({"access_token": t, "cursor": cursor}),
            )
            .await;
        cursor = p["next_cursor"].clone();
        if p["has_more"] == false {
            break;
        }
    }
    k.sb.advance(Duration::days(21)).await.unwrap();
    let (s, p) = k
        .plaid(
            "/transactions/sync",
            json!({"access_token": t, "cursor": cursor, "count": 500}),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    let list = |k: &str| p[k].as_array().unwrap().clone();
    let (added, modified, removed) = (list("added"), list("modified"), list("removed"));
    let pending: Vec<&Value> = added.iter().filter(|t| t["pending"] == true).collect();
    assert!(!pending.is_empty(), "three weeks with no pending purchase");
    assert!(!modified.is_empty(), "three weeks with no modified one");
    for m in &modified {
        assert!(pending
            .iter()
            .any(|p| p["transaction_id"] == m["transaction_id"]));
    }
    // Each pending one was removed and replaced by its posted form.
    for p in &pending {
        let id = &p["transaction_id"];
        assert!(removed.iter().any(|r| r["transaction_id"] == *id));
        let posted = added
            .iter()
            .find(|a| a["pending_transaction_id"] == *id)
            .expect("a posted form");
        assert_eq!(posted["pending"], false);
        assert_eq!(posted["authorized_date"], p["date"]);
        assert_eq!(posted["amount"], p["amount"]);
    }
    // The same seed makes the same feed.
    let again = start(String::new()).await;
    again.sb.advance(Duration::days(21)).await.unwrap();
    let feed = |st: crate::sim_state::SimState| -> Vec<(bool, bool, i64)> {
        st.clients[0]
            .plaid
            .txns
            .iter()
            .map(|t| (t.pending, t.modification, t.amount_cents))
            .collect()
    };
    assert_eq!(feed(k.sb.state().await), feed(again.sb.state().await));
}

#[tokio::test]
async fn a_mutation_during_pagination_fails_the_page() {
    let k = start(String::new()).await;
    let t = token(&k, 0).await;
    let mut f = k.sb.faults().await;
    f.plaid_sync_mutation_next = 1;
    k.sb.set_faults(f).await;
    // The first page (no cursor) is not a continuation.
    let (s, p1) = k
        .plaid("/transactions/sync", json!({"access_token": t, "count": 2}))
        .await;
    assert_eq!(s, 200);
    let next = json!({"access_token": t, "count": 2, "cursor": p1["next_cursor"]});
    let (s, v) = k.plaid("/transactions/sync", next.clone()).await;
    assert_eq!(
        (s, code(&v)),
        (400, "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION")
    );
    assert_eq!(v["error_type"], "TRANSACTIONS_ERROR");
    let (s, _) = k.plaid("/transactions/sync", next).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn transactions_refresh_answers_a_request_id() {
    let k = start(String::new()).await;
    let t = token(&k, 0).await;
    let (s, v) = k
        .plaid("/transactions/refresh", json!({"access_token": t}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["request_id"].is_string());
    let (s, v) = k
        .plaid(
            "/transactions/refresh",
            json!({"access_token": "access-sandbox-x"}),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "INVALID_ACCESS_TOKEN"));
}
