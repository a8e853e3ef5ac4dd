//! Ramp bills over HTTP: every field of the `Bill` schema, the list's
//! filters and `page.next`, PATCH, archive, and the payment methods.

use crate::testkit::{start, Kit};
use reqwest::Method;
use serde_json::{json, Value};

async fn kit() -> (Kit, String, Value) {
    let k = start(String::new()).await;
    let world = k.sb.world().await;
    let token = world.clients[0].ramp_access_token.expose().to_owned();
    let (s, ents) = k.ramp(Method::GET, "/entities", &token, None).await;
    assert_eq!(s, 200, "{ents}");
    (k, token, ents["data"][0].clone())
}

/// A create body for the first vendor, paying by `method` with `details`.
async fn create_body(k: &Kit, token: &str, entity: &Value, method: &str, details: Value) -> Value {
    let (s, vendors) = k.ramp(Method::GET, "/vendors", token, None).await;
    assert_eq!(s, 200);
    let v = &vendors["data"][0];
    let mut details = details;
    if method == "ACH" {
        let (_, accts) = k
            .ramp(
                Method::GET,
                &format!("/vendors/{}/accounts", v["id"].as_str().unwrap()),
                token,
                None,
            )
            .await;
        details["vendor_account_id"] = accts["data"][0]["id"].clone();
        details["source_bank_account_id"] = entity["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["usage_type"] == "BILL_PAY_BANK_ACCOUNT")
            .unwrap()["bank_account_id"]
            .clone();
    }
    json!({
        "due_at": "2026-12-15", "issued_at": "2026-11-20", "entity_id": entity["id"],
        "invoice_currency": "USD", "invoice_number": "INV-77", "payment_method": method,
        "vendor_id": v["id"], "vendor_contact_id": v["contacts"][0],
        "line_items": [{"amount": "120.50", "memo": "Service"}],
        "payment_details": details,
    })
}

#[tokio::test]
async fn a_created_bill_has_every_field_of_the_schema_and_can_be_patched_and_archived() {
    let (k, t, entity) = kit().await;
    let body = create_body(
        &k,
        &t,
        &entity,
        "ACH",
        json!({"payment_arrival_date": "2026-12-15"}),
    )
    .await;
    let (s, bill) = k.ramp(Method::POST, "/bills", &t, Some(body)).await;
    assert_eq!(s, 201, "{bill}");
    for f in [
        "accounting_date",
        "accounting_field_selections",
        "bill_owner",
        "fx_conversion_rate",
        "inventory_line_items",
        "invoice_urls",
        "archived_at",
        "posting_date",
        "deep_link_url",
    ] {
        assert!(bill.get(f).is_some(), "missing {f}: {bill}");
    }
    assert_eq!(bill["amount"]["amount"], 12_050);
    assert!(bill["bill_owner"]["id"].is_string());
    let id = bill["id"].as_str().unwrap().to_owned();

    // PATCH: changes what it names; refuses what Ramp does not let change.
    let (s, v) = k
        .ramp(
            Method::PATCH,
            &format!("/bills/{id}"),
            &t,
            Some(json!({"memo": "edited", "line_items": [{"amount": "99.00"}]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["memo"], "edited");
    assert_eq!(v["amount"]["amount"], 9_900);
    let (s, v) = k
        .ramp(
            Method::PATCH,
            &format!("/bills/{id}"),
            &t,
            Some(json!({"status": "PAID"})),
        )
        .await;
    assert_eq!(s, 400, "{v}");

    // DELETE archives (204); the bill stays readable, is never paid, and
    // cannot be archived twice.
    let (s, _) = k
        .ramp(Method::DELETE, &format!("/bills/{id}"), &t, None)
        .await;
    assert_eq!(s, 204);
    let (s, v) = k.ramp(Method::GET, &format!("/bills/{id}"), &t, None).await;
    assert_eq!(s, 200);
    assert!(v["archived_at"].is_string(), "{v}");
    let (s, _) = k
        .ramp(Method::DELETE, &format!("/bills/{id}"), &t, None)
        .await;
    assert_eq!(s, 400);
    k.sb.advance(chrono::Duration::days(30)).await.unwrap();
    let (_, v) = k.ramp(Method::GET, &format!("/bills/{id}"), &t, None).await;
    assert_eq!(v["status"], "OPEN", "an archived bill was paid: {v}");
    let (_, listed) = k
        .ramp(Method::GET, "/bills?is_archived=true", &t, None)
        .await;
    assert!(listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b["id"] == json!(id)));
}

#[tokio::test]
async fn paid_manually_is_paid_at_once_and_other_methods_are_refused_with_400() {
    let (k, t, entity) = kit().await;
    let body = create_body(
        &k,
        &t,
        &entity,
        "PAID_MANUALLY",
        json!({"manual_payment_method": "CHECK", "payment_date": "2026-11-27"}),
    )
    .await;
    let (s, bill) = k.ramp(Method::POST, "/bills", &t, Some(body)).await;
    assert_eq!(s, 201, "{bill}");
    assert_eq!(bill["status"], "PAID");
    assert_eq!(bill["payment"]["payment_method"], "PAID_MANUALLY");
    assert_eq!(
        bill["payment"]["details"]["schema_type"],
        "ManualPaymentDetailsSchema"
    );
    let id = bill["id"].as_str().unwrap();
    let (s, _) = k
        .ramp(Method::DELETE, &format!("/bills/{id}"), &t, None)
        .await;
    assert_eq!(s, 400, "a paid bill was archived");

    for (method, details) in [
        ("CHECK", json!({"payment_arrival_date": "2026-12-15"})),
        ("CARD", json!({"spend_limit_id": "nope"})),
        ("BITCOIN", json!({})),
        (
            "PAID_MANUALLY",
            json!({"manual_payment_method": "BARTER", "payment_date": "2026-11-27"}),
        ),
    ] {
        let body = create_body(&k, &t, &entity, method, details).await;
        let (s, v) = k.ramp(Method::POST, "/bills", &t, Some(body)).await;
        assert_eq!(s, 400, "{method}: {v}");
        assert_eq!(v["error_v2"]["error_code"], "DEVELOPER_7000");
    }
}

#[tokio::test]
async fn list_filters_apply_unknown_ones_are_refused_and_next_uses_the_configured_base() {
    let (k, t, entity) = kit().await;
    for n in 0..3 {
        let mut body = create_body(
            &k,
            &t,
            &entity,
            "ACH",
            json!({"payment_arrival_date": "2026-12-15"}),
        )
        .await;
        body["line_items"] = json!([{"amount": format!("{}.00", 100 * (n + 1))}]);
        let (s, v) = k.ramp(Method::POST, "/bills", &t, Some(body)).await;
        assert_eq!(s, 201, "{v}");
    }
    let (s, v) = k
        .ramp(
            Method::GET,
            "/bills?min_amount=150&max_amount=300.00&payment_status=OPEN",
            &t,
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let amounts: Vec<i64> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["amount"]["amount"].as_i64().unwrap())
        .filter(|a| [10_000, 20_000, 30_000].contains(a))
        .collect();
    assert_eq!(amounts.len(), 2, "{v}");
    assert!(amounts.iter().all(|a| *a >= 15_000 && *a <= 30_000));

    let (s, v) = k.ramp(Method::GET, "/bills?remote_id=x", &t, None).await;
    assert_eq!(s, 400, "an undocumented filter was ignored: {v}");

    // A request through another Host name still gets next pages on the
    // configured base, with the filters kept.
    let r = k
        .http
        .get(format!(
            "{}/ramp/developer/v1/bills?page_size=2&payment_status=OPEN",
            k.base
        ))
        .bearer_auth(&t)
        .header("host", "proxy.internal")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let next = v["page"]["next"].as_str().expect("a next page").to_owned();
    assert!(next.starts_with(&k.base), "{next}");
    assert!(next.contains("payment_status=OPEN"), "{next}");
}
