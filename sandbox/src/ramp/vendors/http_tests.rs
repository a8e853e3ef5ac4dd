//! Ramp vendors over HTTP: every field of the `Vendor` schema, get, the
//! list to its second page, create/patch/delete, accounts and contacts,
//! and the 401/403/404/400 answers.

use crate::testkit::{start, Kit};
use reqwest::Method;
use serde_json::{json, Value};

async fn kit() -> (Kit, String) {
    let k = start(String::new()).await;
    let world = k.sb.world().await;
    let token = world.clients[0].ramp_access_token.expose().to_owned();
    (k, token)
}

/// GET a full `page.next` URL with the token.
pub(crate) async fn follow(k: &Kit, url: &str, token: &str) -> (u16, Value) {
    let r = k.http.get(url).bearer_auth(token).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Take `scope` away from the token's grant.
pub(crate) async fn drop_scope(k: &Kit, token: &str, scope: &str) {
    let mut st = k.sb.inner.state.lock().await;
    let g = st
        .oauth
        .grants
        .iter_mut()
        .find(|g| g.access.iter().any(|a| a.token == token))
        .unwrap();
    g.scope = g
        .scope
        .split(' ')
        .filter(|s| *s != scope)
        .collect::<Vec<_>>()
        .join(" ");
}

async fn owner_id(k: &Kit) -> String {
    let st = k.sb.inner.state.lock().await;
    super::bill_owner_id(&st.clients[0])
}

fn create_body(owner: &str) -> Value {
    json!({
        "name": "Northwind Supply", "country": "US", "state": "VA", "vendor_owner_id": owner,
        "business_vendor_contacts": {"email": "ar@northwind.example", "first_name": "Nia"},
    })
}

#[tokio::test]
async fn vendors_render_every_field_and_read_one_by_one() {
    let (k, t) = kit().await;
    let (s, list) = k.ramp(Method::GET, "/vendors", &t, None).await;
    assert_eq!(s, 200, "{list}");
    let v = &list["data"][0];
    for f in [
        "id",
        "name",
        "name_legal",
        "is_active",
        "is_deletable",
        "country",
        "state",
        "address",
        "tax_address",
        "contacts",
        "vendor_owner_id",
        "vendor_type",
        "accounting_vendor_remote_id",
        "billing_frequency",
        "federal_tax_classification",
        "merchant_id",
        "sk_category_id",
        "sk_category_name",
        "total_spend_all_time",
        "total_spend_last_30_days",
        "total_spend_last_365_days",
        "total_spend_ytd",
        "created_at",
    ] {
        assert!(v.get(f).is_some(), "missing {f}: {v}");
    }
    assert_eq!(v["is_deletable"], false, "a ledger vendor: {v}");
    assert!(v["accounting_vendor_remote_id"].is_string());
    let id = v["id"].as_str().unwrap();
    let (s, one) = k
        .ramp(Method::GET, &format!("/vendors/{id}"), &t, None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(one, *v);

    // Its account and contact, by list and by id.
    let (_, accts) = k
        .ramp(Method::GET, &format!("/vendors/{id}/accounts"), &t, None)
        .await;
    let acct = accts["data"][0]["id"].as_str().unwrap();
    let (s, a) = k
        .ramp(
            Method::GET,
            &format!("/vendors/{id}/accounts/{acct}"),
            &t,
            None,
        )
        .await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["payment_method"], "ACH");
    let (s, contacts) = k
        .ramp(Method::GET, &format!("/vendors/{id}/contacts"), &t, None)
        .await;
    assert_eq!(s, 200, "{contacts}");
    assert_eq!(contacts["data"][0]["id"], v["contacts"][0]);
    let cid = v["contacts"][0].as_str().unwrap();
    let (s, c) = k
        .ramp(
            Method::GET,
            &format!("/vendors/{id}/contacts/{cid}"),
            &t,
            None,
        )
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["id"], v["contacts"][0]);

    // Unknown ids are 404s at every level.
    for path in [
        "/vendors/nope".to_owned(),
        format!("/vendors/{id}/accounts/nope"),
        format!("/vendors/{id}/contacts/nope"),
        "/vendors/nope/contacts".to_owned(),
    ] {
        let (s, e) = k.ramp(Method::GET, &path, &t, None).await;
        assert_eq!(s, 404, "{path}: {e}");
        assert_eq!(e["error_v2"]["error_code"], "DEVELOPER_0404");
    }
}

#[tokio::test]
async fn the_vendor_list_pages_with_a_full_next_url_and_refuses_unknown_parameters() {
    let (k, t) = kit().await;
    let (_, all) = k
        .ramp(Method::GET, "/vendors?page_size=100", &t, None)
        .await;
    let n = all["data"].as_array().unwrap().len();
    assert!(n >= 2, "{all}");
    // Make sure there is a second page of two.
    let owner = owner_id(&k).await;
    let (s, _) = k
        .ramp(Method::POST, "/vendors", &t, Some(create_body(&owner)))
        .await;
    assert_eq!(s, 200);
    let (_, first) = k.ramp(Method::GET, "/vendors?page_size=2", &t, None).await;
    let next = first["page"]["next"].as_str().unwrap().to_owned();
    assert!(
        next.starts_with("http") && next.contains("/ramp/developer/v1/vendors?"),
        "{next}"
    );
    let (s, second) = follow(&k, &next, &t).await;
    assert_eq!(s, 200, "{second}");
    let ids: Vec<&Value> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["data"].as_array().unwrap())
        .map(|v| &v["id"])
        .collect();
    assert_eq!(ids.len(), 2 + second["data"].as_array().unwrap().len());
    assert!(first["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| second["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| a["id"] != b["id"])));

    let (s, e) = k.ramp(Method::GET, "/vendors?nmae=x", &t, None).await;
    assert_eq!(s, 400, "{e}");
    assert!(e["error"]["nmae"].is_array(), "{e}");
    let (s, _) = k.ramp(Method::GET, "/vendors?page_size=1", &t, None).await;
    assert_eq!(s, 422);
}

#[tokio::test]
async fn a_created_vendor_is_approved_patchable_and_deletable_until_billed() {
    let (k, t) = kit().await;
    let owner = owner_id(&k).await;
    let (s, v) = k
        .ramp(Method::POST, "/vendors", &t, Some(create_body(&owner)))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name"], "Northwind Supply");
    assert_eq!(v["state"], "VA");
    assert_eq!(v["vendor_owner_id"], json!(owner));
    assert_eq!(v["is_deletable"], true);
    assert_eq!(v["total_spend_all_time"]["amount"], 0);
    let id = v["id"].as_str().unwrap().to_owned();
    // No bank account until the vendor gives one; its contact is the one given.
    let (_, accts) = k
        .ramp(Method::GET, &format!("/vendors/{id}/accounts"), &t, None)
        .await;
    assert_eq!(accts["data"], json!([]));
    let (_, cs) = k
        .ramp(Method::GET, &format!("/vendors/{id}/contacts"), &t, None)
        .await;
    assert_eq!(cs["data"][0]["email"], "ar@northwind.example");

    let (s, p) = k
        .ramp(
            Method::PATCH,
            &format!("/vendors/{id}"),
            &t,
            Some(json!({"name": "Northwind Supply Co"})),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["name"], "Northwind Supply Co");
    let (s, _) = k
        .ramp(
            Method::PATCH,
            &format!("/vendors/{id}"),
            &t,
            Some(json!({"is_deletable": false})),
        )
        .await;
    assert_eq!(s, 400);

    let (s, _) = k
        .ramp(Method::DELETE, &format!("/vendors/{id}"), &t, None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = k
        .ramp(Method::GET, &format!("/vendors/{id}"), &t, None)
        .await;
    assert_eq!(s, 404);

    // A ledger vendor is not deletable.
    let (_, list) = k.ramp(Method::GET, "/vendors", &t, None).await;
    let seeded = list["data"][0]["id"].as_str().unwrap();
    let (s, e) = k
        .ramp(Method::DELETE, &format!("/vendors/{seeded}"), &t, None)
        .await;
    assert_eq!(s, 400, "{e}");
}

#[tokio::test]
async fn a_create_without_what_ramp_requires_is_refused() {
    let (k, t) = kit().await;
    let owner = owner_id(&k).await;
    let full = create_body(&owner);
    for (drop, field) in [
        ("country", "country"),
        ("vendor_owner_id", "vendor_owner_id"),
        ("business_vendor_contacts", "business_vendor_contacts"),
        ("name", "name"),
    ] {
        let mut b = full.clone();
        b.as_object_mut().unwrap().remove(drop);
        let (s, e) = k.ramp(Method::POST, "/vendors", &t, Some(b)).await;
        assert_eq!(s, 400, "{drop}: {e}");
        assert!(e["error"][field].is_array(), "{drop}: {e}");
    }
    let mut b = full.clone();
    b["vendor_owner_id"] = json!("00000000-0000-4000-8000-000000000000");
    let (s, _) = k.ramp(Method::POST, "/vendors", &t, Some(b)).await;
    assert_eq!(s, 400);
    let mut b = full.clone();
    b["business_vendor_contacts"] = json!({"first_name": "No email"});
    let (s, _) = k.ramp(Method::POST, "/vendors", &t, Some(b)).await;
    assert_eq!(s, 400);
    let mut b = full;
    b["country"] = json!("usa");
    let (s, _) = k.ramp(Method::POST, "/vendors", &t, Some(b)).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn vendors_need_a_token_and_the_vendor_scopes() {
    let (k, t) = kit().await;
    let (s, e) = k
        .ramp(Method::GET, "/vendors", "ramp_tok_bogus", None)
        .await;
    assert_eq!(s, 401, "{e}");
    let owner = owner_id(&k).await;
    drop_scope(&k, &t, "vendors:write").await;
    let (s, e) = k
        .ramp(Method::POST, "/vendors", &t, Some(create_body(&owner)))
        .await;
    assert_eq!(s, 403, "{e}");
    let (s, _) = k.ramp(Method::GET, "/vendors", &t, None).await;
    assert_eq!(s, 200, "reading needs only vendors:read");
    drop_scope(&k, &t, "vendors:read").await;
    let (s, _) = k.ramp(Method::GET, "/vendors", &t, None).await;
    assert_eq!(s, 403);
}
