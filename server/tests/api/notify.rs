//! Issue #18 §5: notifications. A critical tray item reaches each person
//! who asked, by email (a real SMTP conversation with a local receiver)
//! and by a Slack-compatible webhook, once per item, person and channel;
//! a refused send is retried on its schedule, a send cut off mid-way is
//! never repeated; the digest lists what changed since the person last
//! looked; invitations are emailed. Both engines.

use super::support::{Engine, TestApp};
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

both_engines!(
    a_failed_payment_reaches_each_person_once_and_shows_in_their_digest,
    refused_sends_are_retried_and_a_send_cut_off_is_never_repeated,
);

const ADMIN: &str = "admin@northwind.test";
const ADVISOR: &str = "advisor@northwind.test";
const VIEWER: &str = "viewer@northwind.test";

/// Every message a local SMTP receiver accepted: (recipient, whole data).
#[derive(Clone, Default)]
struct Inbox(Arc<Mutex<Vec<(String, String)>>>);

impl Inbox {
    fn to(&self, who: &str) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(rcpt, _)| rcpt.contains(who))
            // Undo quoted-printable's soft line breaks and escaped `=`.
            .map(|(_, data)| data.replace("=\n", "").replace("=3D", "="))
            .collect()
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// A minimal SMTP receiver on a free port (what a mail relay answers to
/// lettre's plain-text conversation).
async fn smtp_receiver() -> (u16, Inbox) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let inbox = Inbox::default();
    let kept = inbox.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let inbox = kept.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 test receiver\r\n").await;
                let (mut rcpt, mut data, mut in_data) = (String::new(), String::new(), false);
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data {
                        if line == "." {
                            in_data = false;
                            inbox
                                .0
                                .lock()
                                .unwrap()
                                .push((std::mem::take(&mut rcpt), std::mem::take(&mut data)));
                            let _ = w.write_all(b"250 queued\r\n").await;
                        } else {
                            data.push_str(&line);
                            data.push('\n');
                        }
                        continue;
                    }
                    let verb = line.to_ascii_uppercase();
                    let reply: &[u8] = if verb.starts_with("EHLO") || verb.starts_with("HELO") {
                        b"250 test receiver\r\n"
                    } else if verb.starts_with("RCPT") {
                        rcpt.push_str(&line);
                        b"250 ok\r\n"
                    } else if verb.starts_with("DATA") {
                        in_data = true;
                        b"354 go on\r\n"
                    } else if verb.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    let _ = w.write_all(reply).await;
                }
            });
        }
    });
    (port, inbox)
}

/// A Slack-compatible webhook receiver: answers the queued statuses first
/// (then 200) and keeps every body it was sent.
#[derive(Clone, Default)]
struct Hook {
    answers: Arc<Mutex<VecDeque<u16>>>,
    posts: Arc<Mutex<Vec<Value>>>,
}

impl Hook {
    fn posts(&self) -> Vec<Value> {
        self.posts.lock().unwrap().clone()
    }
}

async fn webhook_receiver() -> (String, Hook) {
    async fn receive(State(h): State<Hook>, body: axum::Json<Value>) -> StatusCode {
        h.posts.lock().unwrap().push(body.0);
        let status = h.answers.lock().unwrap().pop_front().unwrap_or(200);
        StatusCode::from_u16(status).unwrap()
    }
    let hook = Hook::default();
    let app = axum::Router::new()
        .route("/hook/T000/B000/secretpart", axum::routing::post(receive))
        .with_state(hook.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (
        format!("http://127.0.0.1:{port}/hook/T000/B000/secretpart"),
        hook,
    )
}

async fn spawn_with_mail(e: Engine, smtp_port: u16) -> TestApp {
    TestApp::spawn_with(e, |c| {
        c.sandbox_unconnected = 0;
        c.smtp_url = Some(format!("smtp://127.0.0.1:{smtp_port}"));
        c.mail_from = "RowCol <rowcol@northwind.test>".into();
    })
    .await
}

/// The signed-in person's choices: email for every topic but duplicates,
/// the webhook for failed payments at `url`.
async fn choose(app: &TestApp, url: &str) -> (u16, Value) {
    app.call(
        "notify/save",
        &[
            ("email_payment_failed", "on"),
            ("email_payment_returned", "on"),
            ("email_connection_broken", "on"),
            ("webhook_payment_failed", "on"),
            ("webhook_url", url),
        ],
    )
    .await
}

/// Ramp refuses the next create for good: the payment fails and the tray
/// gets a `release_failed` item, a critical one.
async fn fail_a_payment(app: &TestApp) -> String {
    app.inject(|f| f.ramp_create_fail_next = vec![400]).await;
    app.login(ADVISOR).await;
    let pid = app.approve_small_bill("Alder Creek Dental").await;
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "failed");
    pid
}

async fn a_failed_payment_reaches_each_person_once_and_shows_in_their_digest(e: Engine) {
    let (smtp, inbox) = smtp_receiver().await;
    let (url, hook) = webhook_receiver().await;
    let app = spawn_with_mail(e, smtp).await;

    // The advisor's choices; an address that is not https (and not a
    // loopback one, in a sandbox) is refused, saying why.
    app.login(ADVISOR).await;
    let (status, body) = choose(&app, "http://hooks.example.test/x").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("https://"), "{body}");
    let (status, body) = choose(&app, &url).await;
    assert!(status == 200 || status == 302, "{status} {body}");
    let (status, settings) = app.call("notify/settings", &[]).await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["webhook_set"], true, "{settings}");
    // The address is the webhook's secret: never sent back, never stored
    // in the clear, and the audit entry says only that one was set.
    assert!(!settings.to_string().contains("secretpart"), "{settings}");
    assert_eq!(
        app.count("select count(*) from notify_setting where webhook_sealed like '%secretpart%'")
            .await,
        0
    );
    assert_eq!(
        app.count(
            "select count(*) from audit_entry where action = 'user.notifications_changed'
             and detail not like '%secretpart%' and detail like '%\"set\"%'"
        )
        .await,
        1
    );

    let pid = fail_a_payment(&app).await;
    app.drain().await;

    // The admin and the advisor act on payments: email by default (the
    // advisor also by webhook). The viewer has not opted in.
    let to_admin = inbox.to(ADMIN);
    let to_advisor = inbox.to(ADVISOR);
    assert_eq!(to_admin.len(), 1, "{to_admin:?}");
    assert_eq!(to_advisor.len(), 1, "{to_advisor:?}");
    assert!(inbox.to(VIEWER).is_empty());
    let mail = &to_advisor[0];
    assert!(
        mail.contains("Subject: RowCol: Alder Creek Dental: payment not sent"),
        "{mail}"
    );
    assert!(
        mail.contains("Alder Creek Dental: A payment could not be sent to Ramp. No money moved."),
        "{mail}"
    );
    assert!(mail.contains("The payment: $"), "{mail}");
    // Plain words: the rail's codes stay in the tray.
    assert!(!mail.contains("DEVELOPER_FAULT"), "{mail}");
    assert!(mail.contains("/hygiene?client=cli_"), "{mail}");
    let posts = hook.posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(
        posts[0]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Alder Creek Dental: A payment could not be sent")),
        "{posts:?}"
    );
    assert_eq!(
        app.count("select count(*) from notification where state = 'sent'")
            .await,
        3
    );

    // The same item told again (a replayed job, a second worker): nothing
    // more is stored or sent.
    let hid: String = {
        let (_, tray) = app.call("hygiene", &[("reason", "release_failed")]).await;
        tray["items"][0]["hygiene_id"].as_str().unwrap().to_owned()
    };
    rowcol::jobs::notify::run_item(&app.state.services, &hid)
        .await
        .expect("fan out again");
    app.drain().await;
    assert_eq!(app.count("select count(*) from notification").await, 3);
    assert_eq!(inbox.len(), 2);
    assert_eq!(hook.posts().len(), 1);

    // The digest lists it for the advisor until they mark it seen.
    let (status, digest) = app.call("digest", &[]).await;
    assert_eq!(status, 200, "{digest}");
    let urgent = digest["urgent"].as_array().expect("urgent");
    assert!(
        urgent.iter().any(|i| i["payment_id"] == pid.as_str()
            && i["reason_code"] == "release_failed"
            && i["client_name"] == "Alder Creek Dental"),
        "{digest}"
    );
    let (status, _) = app.call("digest/seen", &[]).await;
    assert!(status == 200 || status == 302);
    app.advance_secs(1);
    let (_, digest) = app.call("digest", &[]).await;
    assert_eq!(digest["urgent"], Value::Array(vec![]), "{digest}");
    assert_eq!(digest["first_look"], false);
    // Another person's digest is their own: the admin still sees it.
    app.login(ADMIN).await;
    let (_, digest) = app.call("digest", &[]).await;
    assert!(
        digest["urgent"].as_array().is_some_and(|u| !u.is_empty()),
        "{digest}"
    );

    // An invitation is emailed with its one-time link, which works; the
    // stored message is sealed (the link is a secret).
    let (status, issued) = app
        .call(
            "users/invite",
            &[("email", "newcomer@northwind.test"), ("role", "advisor")],
        )
        .await;
    assert_eq!(status, 200, "{issued}");
    assert!(
        issued["message"].as_str().unwrap().contains("emailed"),
        "{issued}"
    );
    app.drain().await;
    let invite = inbox.to("newcomer@northwind.test");
    assert_eq!(invite.len(), 1, "{invite:?}");
    let token = invite[0]
        .split("token=")
        .nth(1)
        .map(|t| {
            t.chars()
                .take_while(|c| c.is_ascii_hexdigit())
                .collect::<String>()
        })
        .expect("a link in the email");
    assert_eq!(token.len(), 64, "{}", invite[0]);
    assert_eq!(
        app.count(&format!(
            "select count(*) from notification where message_sealed like '%{token}%'"
        ))
        .await,
        0
    );
    let (status, link) = app.call("users/link", &[("token", &token)]).await;
    assert_eq!(status, 200, "{link}");
    assert_eq!(link["email"], "newcomer@northwind.test");
}

async fn refused_sends_are_retried_and_a_send_cut_off_is_never_repeated(e: Engine) {
    let (smtp, inbox) = smtp_receiver().await;
    let (url, hook) = webhook_receiver().await;
    let app = spawn_with_mail(e, smtp).await;
    app.login(ADVISOR).await;
    let (status, body) = choose(&app, &url).await;
    assert!(status == 200 || status == 302, "{status} {body}");

    // The webhook is down (503) at first: the post is retried on its
    // schedule and arrives once; each attempt is a row.
    hook.answers.lock().unwrap().extend([503, 503]);
    fail_a_payment(&app).await;
    app.drain().await;
    assert_eq!(
        app.count(
            "select count(*) from notification where channel = 'webhook' and state = 'queued'"
        )
        .await,
        1,
        "waiting for its retry"
    );
    for _ in 0..3 {
        app.advance_secs(120);
        app.drain().await;
    }
    assert_eq!(
        app.count("select count(*) from notification where channel = 'webhook' and state = 'sent' and attempts = 3")
            .await,
        1
    );
    let bodies = hook.posts();
    assert_eq!(bodies.len(), 3, "two refused, one accepted");
    assert_eq!(
        app.count(
            "select count(*) from job_attempt a join job j on j.job_id = a.job_id
             where j.kind = 'deliver' and a.outcome <> 'ok'"
        )
        .await,
        2
    );
    assert!(inbox.len() >= 2, "the emails went at once");

    // An attempt that died while sending (the row left `sending`): the
    // next attempt does not send again; the message becomes `uncertain`
    // and the person's account page says so.
    let services = &app.state.services;
    let advisor: String = sqlx::query_scalar("select user_id from app_user where email = $1")
        .bind(ADVISOR)
        .fetch_one(&services.db.pool)
        .await
        .unwrap();
    let firm: String = sqlx::query_scalar("select firm_id from app_user where email = $1")
        .bind(ADVISOR)
        .fetch_one(&services.db.pool)
        .await
        .unwrap();
    let mut tx = services.db.begin().await.unwrap();
    let message = app::domain::notify::Message {
        subject: "s".into(),
        text: "cut off".into(),
    };
    app::ssr::notices::queue(
        &mut tx,
        &services.sealer,
        app::ssr::notices::Queue {
            firm_id: &firm,
            subject_key: "item:cut-off",
            recipient: &advisor,
            user_id: Some(&advisor),
            channel: app::domain::notify::Channel::Webhook,
            to_address: None,
            message: &message,
            at: services.clock.now(),
        },
    )
    .await
    .unwrap();
    app::ssr::store::commit(tx).await.unwrap();
    sqlx::query(
        "update notification set state = 'sending', attempts = 1 where subject_key = 'item:cut-off'",
    )
    .execute(&services.db.pool)
    .await
    .unwrap();
    app.drain().await;
    assert_eq!(hook.posts().len(), bodies.len(), "not sent again");
    assert_eq!(
        app.count("select count(*) from notification where subject_key = 'item:cut-off' and state = 'uncertain'")
            .await,
        1
    );
    let (_, settings) = app.call("notify/settings", &[]).await;
    assert!(
        settings["recent"]
            .as_array()
            .is_some_and(|r| r.iter().any(|n| n["state"] == "uncertain")),
        "{settings}"
    );

    // A webhook that is gone (404) is not retried.
    hook.answers.lock().unwrap().push_back(404);
    app.inject(|f| f.ramp_create_fail_next = vec![400]).await;
    app.approve_small_bill("Alder Creek Dental").await;
    app.drain().await;
    app.advance_secs(3600);
    app.drain().await;
    assert_eq!(
        app.count(
            "select count(*) from notification where channel = 'webhook' and state = 'failed'"
        )
        .await,
        1
    );
    assert_eq!(
        hook.posts().len(),
        bodies.len() + 1,
        "one refused post, no retry"
    );
}
