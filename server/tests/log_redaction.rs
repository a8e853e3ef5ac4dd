//! Issue #8: callback query strings never reach the logs; issue #18: what a
//! caller types into the sign-in form reaches them only escaped and short. The real
//! application (sandbox rails, SQLite) logs at debug level into a buffer
//! while OAuth and Plaid callbacks carrying a code, a `state` and a public
//! token arrive; the request span must carry the path and nothing of the
//! query. Its own test binary: the capturing subscriber is process-global.

use app::ssr::crypto::Sealer;
use rowcol::config::Config;
use rowcol::startup::Application;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log buffer")).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_codes_and_states_never_reach_the_log() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let tmp = tempfile::tempdir().expect("tempdir");
    let mut config = Config::defaults();
    config.sandbox_clients = sandbox::world::TEST_CLIENTS;
    config.sandbox_living = false;
    config.database_url = format!("sqlite://{}/rowcol.db", tmp.path().display());
    config.encryption_key = Some(Sealer::generate_key());
    config.demo_password = Some("log-test-demo-password".into());
    config.data_dir = tmp.path().display().to_string();
    config.worker = false;
    config.sandbox_start = Some(chrono::NaiveDate::from_ymd_opt(2026, 11, 28).expect("date"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let app = Application::build(config, listener).await.expect("build");
    let base = format!("http://{}", app.addr);
    let app_db = app.state.services.db.clone();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(app.run(rx));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    // Values no other part of the run could produce.
    let code = "AB11secretcode7c3f9e2d";
    let state = "st8secretstate4a1b6d0e";
    let public_token = "public-sandbox-secret5e9d2c7a";
    let realm = "9130357992211234";
    let urls = [
        format!("{base}/connect/qbo/callback?code={code}&state={state}&realmId={realm}"),
        format!("{base}/connect/ramp/callback?code={code}&state={state}"),
        format!("{base}/connect/stripe/callback?code={code}&state={state}"),
        format!("{base}/connect/plaid/callback?public_token={public_token}&state={state}"),
        // An unknown path takes the fallback (the app's not-found page).
        format!("{base}/nowhere?code={code}&access_token={public_token}"),
    ];
    for url in &urls {
        let res = http.get(url).send().await.expect("request");
        let _ = res.text().await;
    }
    // Issue #18 §4: what a caller types into the sign-in form is logged
    // escaped and cut short. A newline must not start a line of its own
    // (a forged entry), and 200 KB must not become a 200 KB line.
    let forged = "INFO rowcol: payment approved by admin@northwind.test";
    let long = format!("{}@example.test", "m".repeat(200 * 1024));
    for email in [format!("mallory@evil.test\n{forged}"), long] {
        let res = http
            .post(format!("{base}/api/login"))
            .form(&[("email", email.as_str()), ("password", "wrong-password")])
            .send()
            .await
            .expect("sign in");
        assert_eq!(res.status().as_u16(), 401);
    }
    // Issue #17: a connect that fails on RowCol's side says so in the
    // log, with the cause (the person sees only "Something went wrong").
    // The flows' table is gone, so the flow cannot be stored.
    let admin = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let res = admin
        .post(format!("{base}/api/login"))
        .form(&[
            ("email", "admin@northwind.test"),
            ("password", "log-test-demo-password"),
        ])
        .send()
        .await
        .expect("sign in");
    assert!(res.status().as_u16() < 400, "the admin signs in");
    {
        let mut conn = app_db.acquire().await.expect("a connection");
        sqlx::query("drop table connect_flow")
            .execute(&mut *conn)
            .await
            .expect("drop the flows' table");
    }
    let res = admin
        .post(format!("{base}/connect/qbo/start"))
        .form(&[("client_id", "")])
        .send()
        .await
        .expect("start a connect");
    assert_eq!(res.status().as_u16(), 500);
    let page = res.text().await.unwrap_or_default();
    assert!(
        page.contains("Something went wrong") && !page.contains("connect_flow"),
        "the person sees plain words, not the cause: {page}"
    );
    let _ = stop.send(true);
    let _ = server.await;

    let text = log.text();
    // The capture works and the request spans are there, with their paths.
    for path in [
        "/connect/qbo/callback",
        "/connect/ramp/callback",
        "/connect/stripe/callback",
        "/connect/plaid/callback",
        "/nowhere",
    ] {
        assert!(
            text.contains(path),
            "the debug log has no request span for {path}: the capture does not see the trace layer"
        );
    }
    for (what, secret) in [
        ("authorization code", code),
        ("state", state),
        ("public token", public_token),
    ] {
        assert!(
            !text.contains(secret),
            "the {what} of a callback reached the log:\n{}",
            text.lines()
                .filter(|l| l.contains(secret))
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert!(
        !text.contains("callback?"),
        "a query string reached the log"
    );
    assert!(
        text.contains("mallory@evil.test"),
        "the refused sign-in is logged"
    );
    assert!(
        !text.lines().any(|l| l.starts_with(forged)),
        "a newline in an email forged a log line"
    );
    let failed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("connect failed"))
        .collect();
    assert!(
        failed
            .iter()
            .any(|l| l.contains("storing the flow") && l.contains("connect_flow")),
        "the failed connect's cause is not in the log: {failed:?}"
    );
    // The 200 KB email appears cut to its first characters, wherever it
    // is logged.
    let longest = text
        .lines()
        .filter(|l| l.contains("mmmmmmmmmm"))
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(
        (1..1024).contains(&longest),
        "the long email's longest log line is {longest} bytes (0: not logged at all)"
    );
}
