//! Plaid Link end to end over HTTP: the pages a browser walks through, the
//! token endpoints, update mode, item removal.

use crate::testkit::{start, Kit, REDIRECT};
use serde_json::{json, Value};

fn create_body() -> Value {
    json!({
        "client_name": "RowCol", "language": "en", "country_codes": ["US"],
        "user": {"client_user_id": "firm-1-client-2"}, "products": ["transactions"],
        "webhook": "http://app.test/webhooks/plaid",
        "hosted_link": {"completion_redirect_uri": REDIRECT},
    })
}

/// A hosted link token: (link_token, hosted_link_url).
async fn hosted(k: &Kit, body: Value) -> (String, String) {
    let (s, v) = k.plaid("/link/token/create", body).await;
    assert_eq!(s, 200, "{v}");
    (
        v["link_token"].as_str().unwrap().to_owned(),
        v["hosted_link_url"].as_str().unwrap().to_owned(),
    )
}

fn code(v: &Value) -> &str {
    v["error_code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn link_token_create_validates_in_plaids_format() {
    let k = start(String::new()).await;
    let (s, v) = k
        .plaid("/link/token/create", json!({"language": "en"}))
        .await;
    assert_eq!(s, 400);
    assert_eq!(v["error_type"], "INVALID_REQUEST");
    assert_eq!(code(&v), "MISSING_FIELDS");
    let msg = v["error_message"].as_str().unwrap();
    for f in ["client_name", "country_codes", "user", "products"] {
        assert!(msg.contains(f), "{msg}");
    }
    assert!(v["request_id"].is_string());

    for (field, bad) in [
        ("language", json!("xx")),
        ("country_codes", json!([])),
        ("country_codes", json!(["ZZ"])),
        ("products", json!(["balance"])),
        ("user", json!({"client_user_id": ""})),
        ("webhook", json!("not a url")),
        ("redirect_uri", json!("http://elsewhere.test/cb")),
        (
            "hosted_link",
            json!({"completion_redirect_uri": "http://app.test/connect/plaid/callback/"}),
        ),
    ] {
        let mut b = create_body();
        b[field] = bad;
        let (s, v) = k.plaid("/link/token/create", b).await;
        assert_eq!((s, code(&v)), (400, "INVALID_FIELD"), "{field}: {v}");
    }

    // Wrong keys.
    let r = k
        .http
        .post(format!("{}/plaid/link/token/create", k.base))
        .json(&json!({"client_id": "x", "secret": "y"}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(code(&v), "INVALID_API_KEYS");

    // Without hosted_link: no hosted URL; 4 h lifetime.
    let mut b = create_body();
    b.as_object_mut().unwrap().remove("hosted_link");
    let (s, v) = k.plaid("/link/token/create", b).await;
    assert_eq!(s, 200);
    assert!(v["link_token"]
        .as_str()
        .unwrap()
        .starts_with("link-sandbox-"));
    assert!(v.get("hosted_link_url").is_none());
    let exp = chrono::DateTime::parse_from_rfc3339(v["expiration"].as_str().unwrap()).unwrap();
    let left = exp.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(left > chrono::Duration::minutes(235) && left <= chrono::Duration::hours(4));
}

#[tokio::test]
async fn full_link_flow_issues_a_working_access_token_once() {
    let k = start(String::new()).await;
    let world = k.sb.world().await;
    let (link_token, url) = hosted(&k, create_body()).await;
    assert!(
        url.starts_with(&format!("{}/plaid-link/hl/", k.base)),
        "{url}"
    );

    // Before anything happens, the token has no finished session.
    let (_, v) = k
        .plaid("/link/token/get", json!({"link_token": link_token}))
        .await;
    assert_eq!(v["link_sessions"], json!([]));
    assert_eq!(v["metadata"]["client_name"], "RowCol");

    // Institution.
    let (s, _, html) = k.get_page(&url).await;
    assert_eq!(s, 200);
    assert!(html.contains("<select name=\"institution\""), "{html}");
    assert!(html.contains("First Platypus Bank"));
    let (s, _, html) = k
        .post_form(&url, &[("institution", "ins_nope"), ("action", "continue")])
        .await;
    assert_eq!(s, 400, "an unlisted institution is refused: {html}");
    let (s, _, html) = k
        .post_form(
            &url,
            &[("institution", "ins_109508"), ("action", "continue")],
        )
        .await;
    assert_eq!(s, 200);
    assert!(
        html.contains("name=\"password\" type=\"password\""),
        "{html}"
    );

    // Credentials: wrong, then right.
    let (s, _, html) = k
        .post_form(
            &url,
            &[
                ("username", "user_good"),
                ("password", "pass_bad"),
                ("action", "continue"),
            ],
        )
        .await;
    assert_eq!(s, 200);
    assert!(html.contains("The credentials were not correct"), "{html}");
    assert!(!html.contains("<select name=\"account\""));
    let (s, _, html) = k
        .post_form(
            &url,
            &[
                ("username", "user_good"),
                ("password", "pass_good"),
                ("action", "continue"),
            ],
        )
        .await;
    assert_eq!(s, 200);
    assert!(html.contains("<select name=\"account\""), "{html}");
    let target = &world.clients[1];
    let st = k.sb.state().await;
    let acct = st.clients[1].plaid.account.clone();
    let label = format!("{} — {} ••{}", target.name, acct.name, acct.mask);
    assert!(html.contains(&label), "{html}");

    // Account → back to the app.
    let (s, loc, _) = k
        .post_form(
            &url,
            &[("account", &acct.account_id), ("action", "continue")],
        )
        .await;
    assert_eq!(s, 303);
    assert_eq!(loc.as_deref(), Some(REDIRECT));
    // The page is spent.
    let (s, _, html) = k.get_page(&url).await;
    assert_eq!(s, 200);
    assert!(html.contains("You may close this window"));

    let (_, v) = k
        .plaid("/link/token/get", json!({"link_token": link_token}))
        .await;
    let sess = &v["link_sessions"][0];
    assert!(sess["finished_at"].is_string(), "{v}");
    assert!(sess["exit"].is_null());
    let add = &sess["results"]["item_add_results"][0];
    assert_eq!(add["institution"]["institution_id"], "ins_109508");
    assert_eq!(add["accounts"][0]["id"], json!(acct.account_id));
    assert_eq!(add["accounts"][0]["mask"], json!(acct.mask));
    let public = add["public_token"].as_str().unwrap().to_owned();
    assert!(public.starts_with("public-sandbox-"));

    let (s, v) = k
        .plaid(
            "/item/public_token/exchange",
            json!({"public_token": public}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["item_id"],
        json!(target.plaid_item_id),
        "the same login is the same item"
    );
    let access = v["access_token"].as_str().unwrap().to_owned();
    assert!(access.starts_with("access-sandbox-"));
    assert_ne!(access, target.plaid_access_token.expose());

    let (s, v) = k
        .plaid("/accounts/get", json!({"access_token": access}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["accounts"][0]["account_id"], json!(acct.account_id));
    assert_eq!(v["item"]["webhook"], "http://app.test/webhooks/plaid");
    // The seeded token still works too.
    let (s, _) = k
        .plaid(
            "/accounts/get",
            json!({"access_token": target.plaid_access_token.expose()}),
        )
        .await;
    assert_eq!(s, 200);

    // Single use.
    let (s, v) = k
        .plaid(
            "/item/public_token/exchange",
            json!({"public_token": public}),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "INVALID_PUBLIC_TOKEN"));
    let (s, v) = k
        .plaid(
            "/item/public_token/exchange",
            json!({"public_token": "public-sandbox-00000000-0000-0000-0000-000000000000"}),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "INVALID_PUBLIC_TOKEN"));
    let (s, v) = k
        .plaid(
            "/accounts/get",
            json!({"access_token": "access-sandbox-nope"}),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "INVALID_ACCESS_TOKEN"));
}

#[tokio::test]
async fn a_public_token_expires_after_30_minutes() {
    let k = start(String::new()).await;
    let (s, v) = k
        .plaid(
            "/sandbox/public_token/create",
            json!({"institution_id": "ins_109508", "initial_products": ["transactions"]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let public = v["public_token"].as_str().unwrap().to_owned();
    {
        let mut st = k.sb.inner.state.lock().await;
        let p = st
            .plaid_link
            .public_tokens
            .iter_mut()
            .find(|p| p.public_token == public)
            .unwrap();
        p.created_at -= chrono::Duration::minutes(30);
    }
    let (s, v) = k
        .plaid(
            "/item/public_token/exchange",
            json!({"public_token": public}),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "INVALID_PUBLIC_TOKEN"));
    assert!(v["error_message"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn sandbox_public_token_create_gives_the_first_login_at_the_bank() {
    let k = start(String::new()).await;
    let world = k.sb.world().await;
    let (s, v) = k
        .plaid(
            "/sandbox/public_token/create",
            json!({"institution_id": "ins_109508", "initial_products": ["transactions"],
                   "options": {"webhook": "http://app.test/hook"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = k
        .plaid(
            "/item/public_token/exchange",
            json!({"public_token": v["public_token"]}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["item_id"], json!(world.clients[0].plaid_item_id));
    let (_, item) = k
        .plaid("/item/get", json!({"access_token": v["access_token"]}))
        .await;
    assert_eq!(item["item"]["webhook"], "http://app.test/hook");

    let (s, v) = k
        .plaid(
            "/sandbox/public_token/create",
            json!({"institution_id": "ins_109508", "initial_products": ["transactions"],
                   "options": {"override_password": "pass_bad"}}),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "INVALID_CREDENTIALS"));
    let (s, v) = k
        .plaid(
            "/sandbox/public_token/create",
            json!({"institution_id": "ins_1", "initial_products": ["transactions"]}),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "INVALID_INSTITUTION"));
    let (s, v) = k
        .plaid(
            "/sandbox/public_token/create",
            json!({"institution_id": "ins_109508"}),
        )
        .await;
    assert_eq!((s, code(&v)), (400, "MISSING_FIELDS"));
}

#[tokio::test]
async fn exit_ends_the_session_without_a_token() {
    let k = start(String::new()).await;
    let (link_token, url) = hosted(&k, create_body()).await;
    k.get_page(&url).await;
    k.post_form(
        &url,
        &[("institution", "ins_109508"), ("action", "continue")],
    )
    .await;
    let (s, loc, _) = k.post_form(&url, &[("action", "exit")]).await;
    assert_eq!(s, 303);
    assert_eq!(loc.as_deref(), Some(REDIRECT));
    let (_, v) = k
        .plaid("/link/token/get", json!({"link_token": link_token}))
        .await;
    let sess = &v["link_sessions"][0];
    assert!(sess["results"].is_null(), "{v}");
    assert_eq!(sess["exit"]["metadata"]["status"], "requires_credentials");
    assert_eq!(
        sess["exit"]["metadata"]["institution"]["institution_id"],
        "ins_109508"
    );
    assert!(sess["finished_at"].is_string());
    // Nothing more can be done on it.
    let (s, _, html) = k
        .post_form(
            &url,
            &[
                ("username", "user_good"),
                ("password", "pass_good"),
                ("action", "continue"),
            ],
        )
        .await;
    assert_eq!(s, 200);
    assert!(html.contains("You may close this window"));
    assert!(k.sb.state().await.plaid_link.public_tokens.is_empty());

    // Without a completion redirect, the end is a closing page.
    let mut b = create_body();
    b["hosted_link"] = json!({});
    let (_, url) = hosted(&k, b).await;
    let (s, loc, html) = k.post_form(&url, &[("action", "exit")]).await;
    assert_eq!((s, loc), (200, None));
    assert!(html.contains("You may close this window"));
}

#[tokio::test]
async fn an_expired_link_token_shows_an_error_page() {
    let k = start(String::new()).await;
    let (_, url) = hosted(&k, create_body()).await;
    {
        let mut st = k.sb.inner.state.lock().await;
        let t = st.plaid_link.link_tokens.last_mut().unwrap();
        t.expiration = chrono::Utc::now() - chrono::Duration::seconds(1);
    }
    let (s, _, html) = k.get_page(&url).await;
    assert_eq!(s, 400);
    assert!(html.contains("expired"));
    let (s, _, _) = k
        .post_form(
            &url,
            &[("institution", "ins_109508"), ("action", "continue")],
        )
        .await;
    assert_eq!(s, 400);
    let (s, _, _) = k.get_page(&format!("{}/plaid-link/hl/nope", k.base)).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn update_mode_repairs_item_login_required() {
    let k = start(String::new()).await;
    let c = k.sb.world().await.clients[0].clone();
    let token = c.plaid_access_token.expose().to_owned();
    // Both ways an item can need a login: the fault and reset_login.
    let mut f = k.sb.faults().await;
    f.plaid_login_required = vec![c.plaid_item_id.clone()];
    k.sb.set_faults(f).await;
    let (s, _) = k
        .plaid("/sandbox/item/reset_login", json!({"access_token": token}))
        .await;
    assert_eq!(s, 200);
    let (s, v) = k
        .plaid("/accounts/get", json!({"access_token": token}))
        .await;
    assert_eq!((s, code(&v)), (400, "ITEM_LOGIN_REQUIRED"));

    let mut b = create_body();
    b.as_object_mut().unwrap().remove("products");
    b["access_token"] = json!(token);
    let (s, v) = k.plaid("/link/token/create", b).await;
    assert_eq!(s, 200, "{v}");
    let exp = chrono::DateTime::parse_from_rfc3339(v["expiration"].as_str().unwrap()).unwrap();
    assert!(exp.with_timezone(&chrono::Utc) - chrono::Utc::now() <= chrono::Duration::minutes(30));
    let url = v["hosted_link_url"].as_str().unwrap().to_owned();

    // Straight to the credentials: no institution or account pick.
    let (s, _, html) = k.get_page(&url).await;
    assert_eq!(s, 200);
    assert!(html.contains("name=\"password\""), "{html}");
    assert!(!html.contains("name=\"institution\""));
    let (_, _, html) = k
        .post_form(
            &url,
            &[
                ("username", "user_good"),
                ("password", "nope"),
                ("action", "continue"),
            ],
        )
        .await;
    assert!(html.contains("The credentials were not correct"));
    let (s, _) = k
        .plaid("/accounts/get", json!({"access_token": token}))
        .await;
    assert_eq!(s, 400, "still broken after a wrong password");
    let (s, loc, _) = k
        .post_form(
            &url,
            &[
                ("username", "user_good"),
                ("password", "pass_good"),
                ("action", "continue"),
            ],
        )
        .await;
    assert_eq!((s, loc.as_deref()), (303, Some(REDIRECT)));

    let (s, v) = k
        .plaid("/accounts/get", json!({"access_token": token}))
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = k.plaid("/item/get", json!({"access_token": token})).await;
    assert!(v["item"]["error"].is_null(), "{v}");
    assert!(k.sb.faults().await.plaid_login_required.is_empty());

    // An unknown access token cannot start update mode.
    let mut b = create_body();
    b.as_object_mut().unwrap().remove("products");
    b["access_token"] = json!("access-sandbox-nope");
    let (s, v) = k.plaid("/link/token/create", b).await;
    assert_eq!((s, code(&v)), (400, "INVALID_ACCESS_TOKEN"));
}

#[tokio::test]
async fn item_remove_kills_every_token_of_the_item() {
    let k = start(String::new()).await;
    let c = k.sb.world().await.clients[0].clone();
    let seeded = c.plaid_access_token.expose().to_owned();
    let (_, v) = k
        .plaid(
            "/sandbox/public_token/create",
            json!({"institution_id": "ins_109508", "initial_products": ["transactions"]}),
        )
        .await;
    let (_, v) = k
        .plaid(
            "/item/public_token/exchange",
            json!({"public_token": v["public_token"]}),
        )
        .await;
    let issued = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(v["item_id"], json!(c.plaid_item_id));

    let (s, v) = k
        .plaid("/item/remove", json!({"access_token": issued}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["request_id"].is_string());
    for t in [&seeded, &issued] {
        for path in [
            "/accounts/get",
            "/item/get",
            "/transactions/sync",
            "/item/remove",
        ] {
            let (s, v) = k.plaid(path, json!({"access_token": t})).await;
            assert_eq!((s, code(&v)), (400, "ITEM_NOT_FOUND"), "{path}");
        }
    }
    // Another client's item is untouched.
    let other = k.sb.world().await.clients[1].clone();
    let (s, _) = k
        .plaid(
            "/accounts/get",
            json!({"access_token": other.plaid_access_token.expose()}),
        )
        .await;
    assert_eq!(s, 200);

    // Linking the bank again makes a new item.
    let (_, v) = k
        .plaid(
            "/sandbox/public_token/create",
            json!({"institution_id": "ins_109508", "initial_products": ["transactions"]}),
        )
        .await;
    let (s, v) = k
        .plaid(
            "/item/public_token/exchange",
            json!({"public_token": v["public_token"]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_ne!(v["item_id"], json!(c.plaid_item_id));
    let (s, _) = k
        .plaid("/accounts/get", json!({"access_token": v["access_token"]}))
        .await;
    assert_eq!(s, 200);
    let (s, _) = k
        .plaid("/accounts/get", json!({"access_token": issued}))
        .await;
    assert_eq!(s, 400, "the old item's tokens stay dead");

    // The new item's transactions are not ready until its initial pull
    // is done; its balance is.
    let fresh = v["access_token"].clone();
    let (s, e) = k
        .plaid("/transactions/sync", json!({"access_token": fresh}))
        .await;
    assert_eq!((s, code(&e)), (400, "PRODUCT_NOT_READY"), "{e}");
    assert_eq!(e["error_type"], "ITEM_ERROR");
    k.sb.advance(chrono::Duration::seconds(super::INITIAL_PULL_SECS))
        .await
        .unwrap();
    let (s, page) = k
        .plaid("/transactions/sync", json!({"access_token": fresh}))
        .await;
    assert_eq!(s, 200, "{page}");
    assert!(!page["added"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn link_pages_are_outside_the_plaid_fault_layer() {
    let k = start(String::new()).await;
    let (_, url) = hosted(&k, create_body()).await;
    let mut f = k.sb.faults().await;
    f.rail_fail_next = vec![crate::RailFault::any(crate::SimRail::Plaid, 500)];
    k.sb.set_faults(f).await;
    let (s, _, _) = k.get_page(&url).await;
    assert_eq!(s, 200);
    assert_eq!(
        k.sb.faults().await.rail_fail_next.len(),
        1,
        "the page did not consume the API's fault"
    );
}
