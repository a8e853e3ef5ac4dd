//! Issue #18 §3: people managed in the console. Invitations by one-time
//! link (72 hours; used once; another firm's admin reaches none of ours),
//! roles, deactivation that ends a live session at once, the last-admin
//! rule, password changes and resets, each audited. Both engines.

use super::support::{Engine, TestApp, PASSWORD};
use serde_json::Value;

both_engines!(
    an_invitation_link_works_once_within_72_hours_for_its_firm_only,
    deactivation_ends_a_live_session_and_the_firm_keeps_an_admin,
    two_step_sign_in_is_enrolled_and_each_code_works_once,
    live_admins_and_the_firms_approvers_must_use_two_step_sign_in,
);

const ADMIN: &str = "admin@northwind.test";
const ADVISOR: &str = "advisor@northwind.test";
const VIEWER: &str = "viewer@northwind.test";

/// A browser of its own: its own cookies.
struct Browser {
    http: reqwest::Client,
    base: String,
}

impl Browser {
    async fn call(&self, endpoint: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let res = self
            .http
            .post(format!("{}/api/{endpoint}", self.base))
            .form(form)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// A browser signed in as `email` (or not at all).
async fn browser(app: &TestApp, email: Option<(&str, &str)>) -> Browser {
    let b = Browser {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        base: app.base.clone(),
    };
    if let Some((email, password)) = email {
        let (status, body) = b
            .call("login", &[("email", email), ("password", password)])
            .await;
        assert!(
            status == 200 || status == 302,
            "login {email}: {status} {body}"
        );
    }
    b
}

fn token_of(issued: &Value) -> String {
    issued["path"]
        .as_str()
        .and_then(|p| p.strip_prefix("/welcome?token="))
        .expect("a welcome link")
        .to_owned()
}

async fn user_id(app: &TestApp, email: &str) -> String {
    sqlx::query_scalar("select user_id from app_user where email = $1")
        .bind(email)
        .fetch_one(&app.state.app.db.pool)
        .await
        .expect("a user")
}

async fn an_invitation_link_works_once_within_72_hours_for_its_firm_only(e: Engine) {
    let app = TestApp::spawn(e).await;
    let admin = browser(&app, Some((ADMIN, PASSWORD))).await;
    let advisor = browser(&app, Some((ADVISOR, PASSWORD))).await;

    // Only admins invite.
    let (status, _) = advisor
        .call(
            "users/invite",
            &[("email", "new@northwind.test"), ("role", "advisor")],
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = admin
        .call(
            "users/invite",
            &[("email", "not an email"), ("role", "advisor")],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = admin
        .call("users/invite", &[("email", ADVISOR), ("role", "advisor")])
        .await;
    assert_eq!(status, 409, "an existing account: {body}");
    let (status, issued) = admin
        .call(
            "users/invite",
            &[("email", "New@Northwind.test"), ("role", "advisor")],
        )
        .await;
    assert_eq!(status, 200, "{issued}");
    let token = token_of(&issued);
    assert_eq!(
        app.count(&format!(
            "select count(*) from user_link where token_hash = '{token}'"
        ))
        .await,
        0,
        "only the token's hash is stored"
    );

    // The person opens the link, with no session.
    let stranger = browser(&app, None).await;
    let (status, info) = stranger.call("users/link", &[("token", &token)]).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["email"], "new@northwind.test");
    assert_eq!(info["role"], "advisor");
    let (status, body) = stranger
        .call(
            "users/accept",
            &[
                ("token", &token),
                ("name", "Nia New"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let password = "a-long-enough-password";
    let (status, body) = stranger
        .call(
            "users/accept",
            &[
                ("token", &token),
                ("name", "Nia New"),
                ("password", password),
            ],
        )
        .await;
    assert!(status == 200 || status == 302, "{status} {body}");
    let (status, body) = stranger
        .call(
            "users/accept",
            &[("token", &token), ("name", "Again"), ("password", password)],
        )
        .await;
    assert_eq!(status, 409, "used once: {body}");
    let newcomer = browser(&app, Some(("new@northwind.test", password))).await;
    let (status, me) = newcomer.call("me", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(me["role"], "advisor", "{me}");

    // A link not used within 72 hours is refused.
    let (_, late) = admin
        .call(
            "users/invite",
            &[("email", "late@northwind.test"), ("role", "viewer")],
        )
        .await;
    app.advance_secs(73 * 3600);
    let (status, body) = stranger
        .call(
            "users/accept",
            &[
                ("token", &token_of(&late)),
                ("name", "Late"),
                ("password", password),
            ],
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("expired"), "{body}");
    let (status, _) = stranger.call("users/link", &[("token", "nonsense")]).await;
    assert_eq!(status, 404);

    // Another firm's admin reaches none of this firm's people.
    rowcol::cli::run(rowcol::config::Cli {
        command: Some(rowcol::config::Command::CreateFirm {
            name: "Second Firm LLP".into(),
            admin_email: "admin@second.test".into(),
            admin_password: PASSWORD.into(),
        }),
        config: app.config.clone(),
    })
    .await
    .expect("create-firm");
    let other = browser(&app, Some(("admin@second.test", PASSWORD))).await;
    let advisor_id = user_id(&app, ADVISOR).await;
    for (endpoint, form) in [
        (
            "users/role",
            vec![("user_id", advisor_id.as_str()), ("role", "viewer")],
        ),
        ("users/deactivate", vec![("user_id", advisor_id.as_str())]),
        ("users/reset_link", vec![("user_id", advisor_id.as_str())]),
    ] {
        let (status, _) = other.call(endpoint, &form).await;
        assert_eq!(status, 404, "{endpoint}");
    }
    let (_, theirs) = other.call("users", &[]).await;
    assert_eq!(
        theirs["users"].as_array().map(Vec::len),
        Some(1),
        "{theirs}"
    );
    assert_eq!(
        app.count(
            "select count(*) from audit_entry where action in ('user.invited', 'user.joined')"
        )
        .await,
        3
    );
}

async fn deactivation_ends_a_live_session_and_the_firm_keeps_an_admin(e: Engine) {
    let app = TestApp::spawn(e).await;
    let admin = browser(&app, Some((ADMIN, PASSWORD))).await;
    let advisor = browser(&app, Some((ADVISOR, PASSWORD))).await;
    let viewer = browser(&app, Some((VIEWER, PASSWORD))).await;
    let (status, _) = viewer.call("users", &[]).await;
    assert_eq!(status, 403, "people are for admins");

    // A live session ends at its next request.
    let (status, _) = advisor.call("portfolio", &[]).await;
    assert_eq!(status, 200);
    let advisor_id = user_id(&app, ADVISOR).await;
    let (status, body) = admin
        .call("users/deactivate", &[("user_id", &advisor_id)])
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = advisor.call("portfolio", &[]).await;
    assert_eq!(status, 401, "signed out at once");
    let (status, _) = advisor
        .call("login", &[("email", ADVISOR), ("password", PASSWORD)])
        .await;
    assert_eq!(status, 401, "and cannot sign in again");

    // The last admin can be neither demoted nor deactivated.
    let admin_id = user_id(&app, ADMIN).await;
    let (status, body) = admin
        .call("users/role", &[("user_id", &admin_id), ("role", "advisor")])
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("admin"), "{body}");
    let (status, _) = admin
        .call("users/deactivate", &[("user_id", &admin_id)])
        .await;
    assert_eq!(status, 409);
    // With a second admin, the first may step down.
    let viewer_id = user_id(&app, VIEWER).await;
    let (status, _) = admin
        .call("users/role", &[("user_id", &viewer_id), ("role", "admin")])
        .await;
    assert_eq!(status, 200);
    let (status, body) = admin
        .call("users/role", &[("user_id", &admin_id), ("role", "advisor")])
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = admin.call("users", &[]).await;
    assert_eq!(status, 403, "an advisor now, at once");
    let detail: String = sqlx::query_scalar(
        "select detail from audit_entry where action = 'user.role_changed' and subject = $1",
    )
    .bind(ADMIN)
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap();
    assert!(
        detail.contains(r#""old":"admin""#) && detail.contains(r#""new":"advisor""#),
        "{detail}"
    );

    // Passwords: one's own (the current one first), and a reset link.
    let (status, _) = admin
        .call(
            "users/password",
            &[
                ("current", "wrong-password"),
                ("new_password", "another-long-password"),
            ],
        )
        .await;
    assert_eq!(status, 400);
    let (status, body) = admin
        .call(
            "users/password",
            &[
                ("current", PASSWORD),
                ("new_password", "another-long-password"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    browser(&app, Some((ADMIN, "another-long-password"))).await;
    let new_admin = browser(&app, Some((VIEWER, PASSWORD))).await;
    let (status, issued) = new_admin
        .call("users/reset_link", &[("user_id", &admin_id)])
        .await;
    assert_eq!(status, 200, "{issued}");
    let stranger = browser(&app, None).await;
    let (status, body) = stranger
        .call(
            "users/accept",
            &[
                ("token", &token_of(&issued)),
                ("password", "reset-to-this-one"),
            ],
        )
        .await;
    assert!(status == 200 || status == 302, "{status} {body}");
    browser(&app, Some((ADMIN, "reset-to-this-one"))).await;
    for action in [
        "user.deactivated",
        "user.password_changed",
        "user.password_reset",
    ] {
        assert_eq!(
            app.count(&format!(
                "select count(*) from audit_entry where action = '{action}'"
            ))
            .await,
            1,
            "{action}"
        );
    }
}

/// Turn on two-step sign-in for the browser's person: the key, then a
/// code. Returns the key (base32) and the recovery codes.
async fn enrol(b: &Browser, email: &str) -> (String, Vec<String>) {
    use app::ssr::totp::{code_for, now_secs};
    let (status, started) = b.call("totp/start", &[]).await;
    assert_eq!(status, 200, "{started}");
    assert!(started["qr_svg"].as_str().unwrap().contains("<svg"));
    let key = started["secret_base32"].as_str().unwrap().to_owned();
    let later = code_for(&key, email, now_secs() + 3600).unwrap();
    let (status, _) = b.call("totp/confirm", &[("code", &later)]).await;
    assert_eq!(status, 400, "a code of another time");
    let now = code_for(&key, email, now_secs()).unwrap();
    let (status, codes) = b.call("totp/confirm", &[("code", &now)]).await;
    assert_eq!(status, 200, "{codes}");
    let codes: Vec<String> = serde_json::from_value(codes).unwrap();
    (key, codes)
}

async fn sign_in(app: &TestApp, email: &str, code: &str) -> (u16, Value, Browser) {
    let b = browser(app, None).await;
    let (status, body) = b
        .call(
            "login",
            &[("email", email), ("password", PASSWORD), ("code", code)],
        )
        .await;
    (status, body, b)
}

async fn two_step_sign_in_is_enrolled_and_each_code_works_once(e: Engine) {
    use app::ssr::totp::{code_for, now_secs};
    let app = TestApp::spawn(e).await;
    // Off for the demo firm: a password signs in.
    let advisor = browser(&app, Some((ADVISOR, PASSWORD))).await;
    let (key, codes) = enrol(&advisor, ADVISOR).await;
    assert_eq!(codes.len(), 10);
    let stored: String = sqlx::query_scalar("select totp_secret from app_user where email = $1")
        .bind(ADVISOR)
        .fetch_one(&app.state.app.db.pool)
        .await
        .unwrap();
    assert!(!stored.contains(&key), "the key is sealed at rest");

    // The password alone is not enough now, and is not counted as a failure.
    let (status, body, _) = sign_in(&app, ADVISOR, "").await;
    assert_eq!(status, 401, "{body}");
    assert!(body.to_string().contains("6-digit"), "{body}");
    assert_eq!(app.count("select count(*) from login_failure").await, 0);
    let (status, _, _) = sign_in(&app, ADVISOR, "123 456").await;
    assert_eq!(status, 401);
    assert_eq!(
        app.count("select count(*) from login_failure").await,
        1,
        "a wrong code is"
    );
    // The next step's code (the enrolment used this one) signs in, once.
    let next = code_for(&key, ADVISOR, now_secs() + 30).unwrap();
    let (status, body, b) = sign_in(&app, ADVISOR, &next).await;
    assert!(status == 200 || status == 302, "{status} {body}");
    let (status, _) = b.call("portfolio", &[]).await;
    assert_eq!(status, 200);
    let (status, body, _) = sign_in(&app, ADVISOR, &next).await;
    assert_eq!(status, 401, "a replayed code: {body}");
    // A recovery code, once.
    let (status, body, _) = sign_in(&app, ADVISOR, &codes[0].to_uppercase()).await;
    assert!(status == 200 || status == 302, "{status} {body}");
    let (status, _, _) = sign_in(&app, ADVISOR, &codes[0]).await;
    assert_eq!(status, 401, "a recovery code works once");
    assert_eq!(
        app.count("select count(*) from audit_entry where action = 'user.totp_enabled'")
            .await,
        1
    );

    // A lost phone: an admin turns it off for them (not the advisor, not
    // for the admin's own, not twice); the password signs in again and the
    // recovery codes are gone.
    let (status, _) = b
        .call(
            "users/totp_reset",
            &[("user_id", &user_id(&app, ADVISOR).await)],
        )
        .await;
    assert_eq!(status, 403, "advisors cannot");
    let admin = browser(&app, Some((ADMIN, PASSWORD))).await;
    let (status, body) = admin
        .call(
            "users/totp_reset",
            &[("user_id", &user_id(&app, ADMIN).await)],
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = admin
        .call(
            "users/totp_reset",
            &[("user_id", &user_id(&app, ADVISOR).await)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = admin
        .call(
            "users/totp_reset",
            &[("user_id", &user_id(&app, ADVISOR).await)],
        )
        .await;
    assert_eq!(status, 409, "off already");
    let (status, body, _) = sign_in(&app, ADVISOR, "").await;
    assert!(status == 200 || status == 302, "{status} {body}");
    assert_eq!(
        app.count(&format!(
            "select count(*) from recovery_code where user_id = '{}'",
            user_id(&app, ADVISOR).await
        ))
        .await,
        0
    );
    assert_eq!(
        app.count("select count(*) from audit_entry where action = 'user.totp_reset'")
            .await,
        1
    );
}

async fn live_admins_and_the_firms_approvers_must_use_two_step_sign_in(e: Engine) {
    // The demo firm: the admin asks approvers for the second factor.
    let app = TestApp::spawn(e).await;
    let admin = browser(&app, Some((ADMIN, PASSWORD))).await;
    app.login(ADMIN).await;
    let (cid, bill) = app.small_bill("Alder Creek Dental").await;
    let (status, body) = admin.call("users/totp_for_approvers", &[("on", "1")]).await;
    assert_eq!(status, 200, "{body}");
    let advisor = browser(&app, Some((ADVISOR, PASSWORD))).await;
    let approve = [("client_id", cid.as_str()), ("bill_ids[]", bill.as_str())];
    let (status, body) = advisor.call("approve_bills", &approve).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("two-step"), "{body}");
    assert_eq!(app.count("select count(*) from payment").await, 0);
    enrol(&advisor, ADVISOR).await;
    let (status, body) = advisor.call("approve_bills", &approve).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        app.count(
            "select count(*) from audit_entry where action = 'firm.totp_for_approvers_changed'"
        )
        .await,
        1
    );

    // Live mode: an admin does nothing before turning it on.
    let live = TestApp::spawn_live(e, "owner@live.test").await;
    let owner = browser(&live, Some(("owner@live.test", PASSWORD))).await;
    let (status, body) = owner.call("portfolio", &[]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("two-step"), "{body}");
    let (status, _) = owner.call("me", &[]).await;
    assert_eq!(status, 200, "who they are, to show the way");
    enrol(&owner, "owner@live.test").await;
    let (status, body) = owner.call("portfolio", &[]).await;
    assert_eq!(status, 200, "{body}");
}
