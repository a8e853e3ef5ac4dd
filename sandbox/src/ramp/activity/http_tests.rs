//! Ramp's seeded read-only lists over HTTP: draft bills, card transactions
//! (with the `state` rule for declined ones) and transfers.

use crate::ramp::vendors::http_tests::{drop_scope, follow};
use crate::testkit::{start, Kit};
use reqwest::Method;
use serde_json::Value;

async fn kit() -> (Kit, String) {
    let k = start(String::new()).await;
    let world = k.sb.world().await;
    let token = world.clients[0].ramp_access_token.expose().to_owned();
    (k, token)
}

fn data(v: &Value) -> &Vec<Value> {
    v["data"].as_array().unwrap()
}

/// Page through `path` two at a time; every item once, in id order.
async fn walk(k: &Kit, path: &str, t: &str) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let (s, mut page) = k
        .ramp(Method::GET, &format!("{path}{sep}page_size=2"), t, None)
        .await;
    assert_eq!(s, 200, "{page}");
    let mut all = data(&page).clone();
    while let Some(next) = page["page"]["next"].as_str().map(str::to_owned) {
        assert!(next.starts_with("http"), "{next}");
        let (s, p) = follow(k, &next, t).await;
        assert_eq!(s, 200, "{p}");
        all.extend(data(&p).iter().cloned());
        page = p;
    }
    let ids: Vec<&str> = all.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    all
}

#[tokio::test]
async fn drafts_list_read_and_answer_404_401_403_400() {
    let (k, t) = kit().await;
    let all = walk(&k, "/bills/drafts", &t).await;
    assert_eq!(all.len(), 3);
    let d = &all[1];
    assert!(d["amount"]["amount"].is_i64(), "{d}");
    let (s, one) = k
        .ramp(
            Method::GET,
            &format!("/bills/drafts/{}", d["id"].as_str().unwrap()),
            &t,
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(one, *d);
    // The same seed draws the same drafts.
    assert_eq!(walk(&k, "/bills/drafts", &t).await, all);
    let (s, _) = k.ramp(Method::GET, "/bills/drafts/nope", &t, None).await;
    assert_eq!(s, 404);
    let (s, _) = k
        .ramp(Method::GET, "/bills/drafts", "ramp_tok_x", None)
        .await;
    assert_eq!(s, 401);
    let (s, e) = k
        .ramp(Method::GET, "/bills/drafts?status=OPEN", &t, None)
        .await;
    assert_eq!(s, 400, "{e}");
    drop_scope(&k, &t, "bills:read").await;
    let (s, _) = k.ramp(Method::GET, "/bills/drafts", &t, None).await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn transactions_leave_declined_out_unless_asked_and_filter() {
    let (k, t) = kit().await;
    let every = walk(&k, "/transactions?state=ALL", &t).await;
    assert_eq!(every.len(), 25);
    let default = walk(&k, "/transactions", &t).await;
    let declined = walk(&k, "/transactions?state=DECLINED", &t).await;
    assert!(default.iter().all(|x| x["state"] != "DECLINED"));
    assert!(declined.iter().all(|x| x["state"] == "DECLINED"));
    assert_eq!(default.len() + declined.len(), 25);
    let cleared = walk(&k, "/transactions?state=CLEARED", &t).await;
    assert!(!cleared.is_empty() && cleared.iter().all(|x| x["state"] == "CLEARED"));

    // The documented fields: legacy decimal amount and the CurrencyAmount.
    let x = &cleared[0];
    let minor = x["original_transaction_amount"]["amount"].as_i64().unwrap();
    assert_eq!(x["amount"].as_f64().unwrap(), minor as f64 / 100.0, "{x}");
    for f in [
        "currency_code",
        "merchant_name",
        "settlement_date",
        "user_transaction_time",
    ] {
        assert!(!x[f].is_null(), "{f}: {x}");
    }

    // Date filters cut the list on the transaction time.
    let mut times: Vec<&str> = every
        .iter()
        .map(|x| x["user_transaction_time"].as_str().unwrap())
        .collect();
    times.sort();
    let mid = times[12];
    let after = walk(&k, &format!("/transactions?state=ALL&from_date={mid}"), &t).await;
    assert_eq!(after.len(), 13);
    let before = walk(&k, &format!("/transactions?state=ALL&to_date={mid}"), &t).await;
    assert_eq!(before.len(), 13);
    let synced = walk(&k, "/transactions?sync_status=SYNCED", &t).await;
    assert!(synced.iter().all(|x| x["sync_status"] == "SYNCED"));

    let id = x["id"].as_str().unwrap();
    let (s, one) = k
        .ramp(Method::GET, &format!("/transactions/{id}"), &t, None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(one, *x);
    let (s, _) = k.ramp(Method::GET, "/transactions/nope", &t, None).await;
    assert_eq!(s, 404);
    let (s, _) = k
        .ramp(Method::GET, "/transactions", "ramp_tok_x", None)
        .await;
    assert_eq!(s, 401);
    for bad in ["state=SETTLED", "from_date=yesterday", "merchant=Uber"] {
        let (s, e) = k
            .ramp(Method::GET, &format!("/transactions?{bad}"), &t, None)
            .await;
        assert_eq!(s, 400, "{bad}: {e}");
    }
    drop_scope(&k, &t, "transactions:read").await;
    let (s, _) = k.ramp(Method::GET, "/transactions", &t, None).await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn transfers_page_with_documented_statuses() {
    let (k, t) = kit().await;
    let all = walk(&k, "/transfers", &t).await;
    assert_eq!(all.len(), 6);
    const STATUSES: [&str; 14] = [
        "ACH_CONFIRMED",
        "CANCELED",
        "COMPLETED",
        "ERROR",
        "INITIATED",
        "NOT_ACKED",
        "NOT_ENOUGH_FUNDS",
        "PROCESSING_BY_ODFI",
        "REJECTED_BY_ODFI",
        "RETURNED_BY_RDFI",
        "SUBMITTED_TO_FED",
        "SUBMITTED_TO_RDFI",
        "UNNECESSARY",
        "UPLOADED",
    ];
    assert!(all.iter().all(
        |x| STATUSES.contains(&x["status"].as_str().unwrap()) && x["amount"]["amount"].is_i64()
    ));
    let (s, _) = k.ramp(Method::GET, "/transfers", "ramp_tok_x", None).await;
    assert_eq!(s, 401);
    let (s, _) = k
        .ramp(Method::GET, "/transfers?status=COMPLETED", &t, None)
        .await;
    assert_eq!(s, 400);
    let (s, _) = k
        .ramp(Method::GET, "/transfers?page_size=101", &t, None)
        .await;
    assert_eq!(s, 422);
    drop_scope(&k, &t, "transfers:read").await;
    let (s, _) = k.ramp(Method::GET, "/transfers", &t, None).await;
    assert_eq!(s, 403);
}
