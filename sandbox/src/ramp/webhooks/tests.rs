//! Ramp webhook subscriptions over HTTP, with a local receiver.

use crate::engine::sign_ramp_webhook;
use crate::testkit::{receiver, start, start_with, Kit, Received, HOOK_SECRET};
use crate::MemoryStore;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;

/// Both signature headers carry the hex HMAC of the body under `secret`.
fn signed_with(r: &Received, secret: &str) -> bool {
    let want = sign_ramp_webhook(secret.as_bytes(), r.body.as_bytes());
    ["x-ramp-webhook-signature", "x-ramp-signature"]
        .iter()
        .all(|h| r.headers.get(*h).and_then(|v| v.to_str().ok()) == Some(want.as_str()))
}

fn body(r: &Received) -> Value {
    serde_json::from_str(&r.body).unwrap()
}

async fn subscribe(k: &Kit, token: &str, url: &str) -> Value {
    let (s, v) = k
        .ramp(
            Method::POST,
            "/webhooks",
            token,
            Some(json!({"endpoint_url": url, "event_types": ["bills.paid"],
                        "additional_headers": {"X-Tenant": "firm-1"}})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v
}

#[tokio::test]
async fn subscription_handshake_then_events_signed_with_its_own_secret() {
    let rx = receiver().await;
    let k = start(format!("{}/hooks/seeded", rx.base)).await;
    let world = k.sb.world().await;
    let c = &world.clients[0];
    let token = c.ramp_access_token.expose();
    assert!(!c.ramp_webhook_subscription_id.is_empty());
    assert_eq!(c.ramp_webhook_secret.expose(), HOOK_SECRET);

    let sub = subscribe(&k, token, &format!("{}/hooks/mine", rx.base)).await;
    assert_eq!(sub["status"], "pending_verification");
    assert_eq!(sub["business_id"], json!(c.ramp_business_id));
    assert_eq!(sub["event_types"], json!(["bills.paid"]));
    let id = sub["id"].as_str().unwrap().to_owned();
    let secret = sub["secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 32);
    assert_ne!(secret, HOOK_SECRET);

    // The verification event arrives at the new endpoint only.
    assert_eq!(k.sb.deliver_pending_webhooks().await, 1);
    let got = rx.at("/hooks/mine");
    assert_eq!(got.len(), 1);
    assert!(rx.at("/hooks/seeded").is_empty());
    assert!(signed_with(&got[0], &secret));
    assert!(!signed_with(&got[0], HOOK_SECRET));
    assert_eq!(
        got[0].headers.get("x-tenant").and_then(|v| v.to_str().ok()),
        Some("firm-1")
    );
    let ev = body(&got[0]);
    assert_eq!(ev["type"], "webhooks.verification");
    assert_eq!(ev["business_id"], json!(c.ramp_business_id));
    assert_eq!(ev["object"]["id"], json!(id));
    let challenge = ev["challenge"].as_str().unwrap().to_owned();

    // Not active until verified: a paid bill reaches only the seeded one.
    k.due_bill(0).await;
    k.sb.advance(chrono::Duration::days(1)).await.unwrap();
    assert_eq!(rx.at("/hooks/seeded").len(), 1);
    assert_eq!(rx.at("/hooks/mine").len(), 1);

    let (s, v) = k
        .ramp(
            Method::POST,
            &format!("/webhooks/{id}/verify"),
            token,
            Some(json!({"challenge": "wrong"})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (_, v) = k
        .ramp(Method::GET, &format!("/webhooks/{id}"), token, None)
        .await;
    assert_eq!(v["status"], "pending_verification");
    assert!(
        v.get("secret").is_none(),
        "the secret is shown at creation only"
    );
    // Another business cannot see or verify it.
    let other = world.clients[1].ramp_access_token.expose();
    let (s, _) = k
        .ramp(
            Method::POST,
            &format!("/webhooks/{id}/verify"),
            other,
            Some(json!({"challenge": challenge})),
        )
        .await;
    assert_eq!(s, 404);
    let (s, v) = k
        .ramp(
            Method::POST,
            &format!("/webhooks/{id}/verify"),
            token,
            Some(json!({"challenge": challenge})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "active");

    // Now a paid bill goes to both, each signed with its own secret.
    let bill = k.due_bill(0).await;
    k.sb.advance(chrono::Duration::days(1)).await.unwrap();
    let mine = rx.at("/hooks/mine");
    assert_eq!(mine.len(), 2);
    let ev = body(&mine[1]);
    assert_eq!(ev["type"], "bills.paid");
    assert_eq!(ev["object"]["id"], json!(bill));
    assert!(signed_with(&mine[1], &secret));
    let seeded = rx.at("/hooks/seeded");
    assert_eq!(seeded.len(), 2);
    assert!(signed_with(&seeded[1], HOOK_SECRET));
    assert_eq!(body(&seeded[1])["object"]["id"], json!(bill));

    // The list has both; a deleted one gets nothing more.
    let (s, v) = k.ramp(Method::GET, "/webhooks", token, None).await;
    assert_eq!(s, 200);
    assert_eq!(v["data"].as_array().unwrap().len(), 2, "{v}");
    let (s, _) = k
        .ramp(Method::DELETE, &format!("/webhooks/{id}"), token, None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = k
        .ramp(Method::GET, &format!("/webhooks/{id}"), token, None)
        .await;
    assert_eq!(s, 404);
    k.due_bill(0).await;
    k.sb.advance(chrono::Duration::days(1)).await.unwrap();
    assert_eq!(rx.at("/hooks/mine").len(), 2);
    assert_eq!(rx.at("/hooks/seeded").len(), 3);
}

#[tokio::test]
async fn a_deleted_subscription_gets_nothing_already_queued() {
    let rx = receiver().await;
    let k = start(format!("{}/hooks/seeded", rx.base)).await;
    let token = k.sb.world().await.clients[0].ramp_access_token.clone();
    let sub = subscribe(&k, token.expose(), &format!("{}/hooks/gone", rx.base)).await;
    let id = sub["id"].as_str().unwrap();
    let (s, _) = k
        .ramp(
            Method::DELETE,
            &format!("/webhooks/{id}"),
            token.expose(),
            None,
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(k.sb.deliver_pending_webhooks().await, 0);
    assert!(rx.at("/hooks/gone").is_empty());
    let st = k.sb.state().await;
    assert!(st
        .webhooks
        .iter()
        .all(|w| w.status == crate::sim_state::WebhookStatus::Failed));
}

#[tokio::test]
async fn webhook_faults_apply_per_delivery() {
    let rx = receiver().await;
    let k = start(format!("{}/hooks/seeded", rx.base)).await;
    let c = k.sb.world().await.clients[0].clone();
    let sub = subscribe(
        &k,
        c.ramp_access_token.expose(),
        &format!("{}/hooks/mine", rx.base),
    )
    .await;
    k.sb.deliver_pending_webhooks().await;
    let challenge = body(&rx.at("/hooks/mine")[0])["challenge"].clone();
    let (s, _) = k
        .ramp(
            Method::POST,
            &format!("/webhooks/{}/verify", sub["id"].as_str().unwrap()),
            c.ramp_access_token.expose(),
            Some(json!({"challenge": challenge})),
        )
        .await;
    assert_eq!(s, 200);
    let mut f = k.sb.faults().await;
    f.webhook_drop_next = 1;
    f.webhook_duplicate = true;
    k.sb.set_faults(f).await;
    k.due_bill(0).await;
    k.sb.advance(chrono::Duration::days(1)).await.unwrap();
    let (mine, seeded) = (rx.at("/hooks/mine").len() - 1, rx.at("/hooks/seeded").len());
    // One of the two deliveries was dropped; the other came twice.
    assert_eq!(mine + seeded, 2, "mine {mine}, seeded {seeded}");
    assert!(mine == 0 || seeded == 0);
    assert_eq!(k.sb.faults().await.webhook_drop_next, 0);
}

#[tokio::test]
async fn create_validates_and_needs_a_business_token() {
    let k = start(String::new()).await;
    let token = k.sb.world().await.clients[0].ramp_access_token.clone();
    let t = token.expose();
    let (s, _) = k
        .ramp(Method::POST, "/webhooks", "nope", Some(json!({})))
        .await;
    assert_eq!(s, 401);
    let (s, v) = k
        .ramp(
            Method::POST,
            "/webhooks",
            t,
            Some(json!({"event_types": ["bills.paid"]})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error_v2"]["additional_info"]["endpoint_url"].is_array());
    for bad in [
        json!({"endpoint_url": "not a url", "event_types": ["bills.paid"]}),
        json!({"endpoint_url": "https://x.test/h", "event_types": []}),
        json!({"endpoint_url": "https://x.test/h", "event_types": ["bills.exploded"]}),
        json!({"endpoint_url": "https://x.test/h", "event_types": ["webhooks.verification"]}),
        json!({"endpoint_url": "https://x.test/h", "event_types": ["bills.paid"],
               "additional_headers": {"a":"1","b":"2","c":"3","d":"4","e":"5","f":"6"}}),
    ] {
        let (s, v) = k
            .ramp(Method::POST, "/webhooks", t, Some(bad.clone()))
            .await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    // With no endpoint configured, the world's own deliveries stay queued.
    k.due_bill(0).await;
    k.sb.advance(chrono::Duration::days(1)).await.unwrap();
    let st = k.sb.state().await;
    assert_eq!(st.webhooks.len(), 1);
    assert!(st.webhooks[0].status == crate::sim_state::WebhookStatus::Pending);
}

#[tokio::test]
async fn a_world_saved_before_subscriptions_gets_them_at_load() {
    let rx = receiver().await;
    let store = Arc::new(MemoryStore::new());
    let k = start_with(store.clone(), format!("{}/hooks/seeded", rx.base)).await;
    let mut doc = store.snapshot().unwrap();
    let obj = doc.as_object_mut().unwrap();
    obj.remove("ramp_webhook_subs");
    obj.remove("plaid_link");
    drop(k);
    let old = Arc::new(MemoryStore::holding(&doc));
    let k = start_with(old, format!("{}/hooks/seeded", rx.base)).await;
    let w = k.sb.world().await;
    assert!(w
        .clients
        .iter()
        .all(|c| !c.ramp_webhook_subscription_id.is_empty()));
    k.due_bill(2).await;
    k.sb.advance(chrono::Duration::days(1)).await.unwrap();
    let got = rx.at("/hooks/seeded");
    assert_eq!(got.len(), 1);
    assert!(signed_with(&got[0], HOOK_SECRET));
    assert_eq!(
        body(&got[0])["business_id"],
        json!(w.clients[2].ramp_business_id)
    );
}
