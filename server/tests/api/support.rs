//! Test harness: the real application on 127.0.0.1:0 against a fresh
//! database (a SQLite file, or a new PostgreSQL database), with the sandbox
//! rails reached over real HTTP. The worker is off; tests drain the job queue
//! themselves so nothing depends on timing.

use app::ssr::crypto::Sealer;
use rowcol::config::Config;
use rowcol::router_state::ServerState;
use rowcol::startup::Application;
use serde_json::Value;
use tokio::net::TcpListener;

pub const PASSWORD: &str = "test-demo-password";

/// The configuration every test starts from: the sandbox's first 24
/// clients, in a world that changes only as the test makes it.
pub fn test_config() -> Config {
    let mut c = Config::defaults();
    c.sandbox_clients = sandbox::world::TEST_CLIENTS;
    c.sandbox_living = false;
    c
}

/// The sandbox's first day in every test: `ROWCOL_SANDBOX_START` when set
/// (scripts/test.sh runs the suite on two different dates), else a fixed
/// date. Never today's: the demo world is a function of this date.
pub fn sandbox_start() -> chrono::NaiveDate {
    std::env::var("ROWCOL_SANDBOX_START")
        .ok()
        .map(|s| s.parse().expect("ROWCOL_SANDBOX_START must be YYYY-MM-DD"))
        .unwrap_or_else(|| chrono::NaiveDate::from_ymd_opt(2026, 11, 28).expect("date"))
}

#[derive(Clone, Copy, Debug)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// How long one test may run before it counts as hung. The slowest test
/// takes well under a minute on a loaded 2-core machine; a hang would
/// otherwise hold CI until its deadline and print nothing useful.
const HANG_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

/// Run a test body; if it is still running after [`HANG_AFTER`], print what
/// PostgreSQL's sessions are doing and waiting on (a lock wait between two
/// of the app's own connections is invisible to PostgreSQL's deadlock
/// detector) and end the test process with a failure. A std thread, not a
/// tokio timer: it fires even if every runtime worker is blocked.
pub async fn watchdog<F: std::future::Future<Output = ()>>(name: &str, engine: Engine, body: F) {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let label = format!("{engine:?}::{name}");
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(HANG_AFTER) {
            eprintln!("\n*** {label} still running after {HANG_AFTER:?}: hung");
            if let Engine::Postgres = engine {
                eprintln!("{}", postgres_activity());
            }
            eprintln!("*** ending the test process");
            std::process::exit(101);
        }
    });
    body.await;
    let _ = done_tx.send(());
}

/// Every session on the test databases and the locks not granted, for the
/// watchdog's report (its own runtime: the test's may be stuck).
fn postgres_activity() -> String {
    let run = || -> Result<String, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let admin = std::env::var("ROWCOL_TEST_PG_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let pool = sqlx::PgPool::connect(&admin).await.map_err(|e| e.to_string())?;
            let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
                "select coalesce(datname, ''), pid::text, coalesce(state, ''), \
                        coalesce(wait_event_type || ':' || wait_event, ''), left(coalesce(query, ''), 300) \
                 from pg_stat_activity where datname like 'rowcol_t_%' order by datname, pid",
            )
            .fetch_all(&pool)
            .await
            .map_err(|e| e.to_string())?;
            let waits: Vec<(String, String, String)> = sqlx::query_as(
                "select pid::text, locktype, mode from pg_locks where not granted",
            )
            .fetch_all(&pool)
            .await
            .map_err(|e| e.to_string())?;
            let mut out = String::from("PostgreSQL sessions on test databases (db pid state wait query):\n");
            for (d, p, st, w, q) in rows {
                out.push_str(&format!("  {d} {p} {st} {w} {q}\n"));
            }
            out.push_str("locks not granted (pid type mode):\n");
            for (p, t, m) in waits {
                out.push_str(&format!("  {p} {t} {m}\n"));
            }
            Ok(out)
        })
    };
    run().unwrap_or_else(|e| format!("(could not read pg_stat_activity: {e})"))
}

pub struct TestApp {
    pub base: String,
    pub state: ServerState,
    pub http: reqwest::Client,
    pub database_url: String,
    pub key: String,
    /// What this instance was started with (a restart starts with it again).
    pub config: Config,
    _tmp: tempfile::TempDir,
    shutdown: tokio::sync::watch::Sender<bool>,
}

pub async fn database_url(engine: Engine, tmp: &std::path::Path) -> String {
    match engine {
        Engine::Sqlite => format!("sqlite://{}/rowcol.db", tmp.display()),
        Engine::Postgres => {
            let admin = std::env::var("ROWCOL_TEST_PG_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let name = format!("rowcol_t_{}", uuid::Uuid::new_v4().simple());
            let pool = sqlx::PgPool::connect(&admin)
                .await
                .expect("PostgreSQL must be reachable for the PostgreSQL half of the suite (see scripts/ensure-postgres.sh)");
            sqlx::query(&format!("create database {name}"))
                .execute(&pool)
                .await
                .expect("create test database");
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b.to_owned())
                .unwrap_or(admin);
            format!("{base}/{name}")
        }
    }
}

impl TestApp {
    /// Sandbox mode with every demo company connected (the tests name
    /// clients from the whole world).
    pub async fn spawn(engine: Engine) -> TestApp {
        Self::spawn_with(engine, |c| c.sandbox_unconnected = 0).await
    }

    /// Live mode (`ROWCOL_RAILS=live`): no simulators, no demo data. The
    /// firm is created first through the `rowcol create-firm` command.
    pub async fn spawn_live(engine: Engine, admin_email: &str) -> TestApp {
        let tmp = tempfile::tempdir().expect("tempdir");
        let url = database_url(engine, tmp.path()).await;
        let key = Sealer::generate_key();
        let mut config = test_config();
        config.rails = rowcol::config::RailsMode::Live;
        config.ramp_webhook_secret = Some("whsec_live_test".into());
        config.qbo_webhook_verifier = Some("qbo_verifier_live_test".into());
        config.database_url = url.clone();
        config.encryption_key = Some(key.clone());
        rowcol::cli::run(rowcol::config::Cli {
            command: Some(rowcol::config::Command::CreateFirm {
                name: "Live Firm LLP".into(),
                admin_email: admin_email.into(),
                admin_password: PASSWORD.into(),
            }),
            config: config.clone(),
        })
        .await
        .expect("create-firm");
        Self::start(url, key, tmp, config).await
    }

    async fn start(url: String, key: String, tmp: tempfile::TempDir, base: Config) -> TestApp {
        let mut config = base;
        config.database_url = url.clone();
        config.demo_password = Some(PASSWORD.into());
        config.encryption_key = Some(key.clone());
        config.worker = false;
        config.data_dir = tmp.path().display().to_string();
        config.sandbox_start = Some(sandbox_start());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let app = Application::build(config.clone(), listener)
            .await
            .expect("build app");
        let base = format!("http://{}", app.addr);
        let state = app.state.clone();
        let (tx, rx) = tokio::sync::watch::channel(false);

        tokio::spawn(app.run(rx));
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let t = TestApp {
            base,
            state,
            http,
            database_url: url,
            key,
            config,
            _tmp: tmp,
            shutdown: tx,
        };
        // QBO's throttle counts on the wall clock: whether a test's burst
        // meets it would depend on the machine's speed (a flake seen in
        // `the_audit_note_is_appended_to_the_private_note_once`); so do the
        // other rails' limits. The sandbox's own tests and the contract
        // tests cover them.
        if let Some(sb) = t.state.services.sandbox.as_ref() {
            let mut f = sb.faults().await;
            f.qbo_throttle_off = true;
            f.rate_limits_off = true;
            sb.set_faults(f).await;
        }
        t.drain().await;
        t
    }

    /// Stop this instance and start a fresh process-equivalent on the same
    /// database (simulates a crash and restart).
    pub async fn restart(self) -> TestApp {
        let _ = self.shutdown.send(true);
        let TestApp {
            database_url,
            key,
            config,
            _tmp,
            ..
        } = self;
        Self::start(database_url, key, _tmp, config).await
    }

    /// Forget the cookies: the next calls come from a new browser.
    pub fn new_session(&mut self) {
        self.http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
    }

    pub async fn drain(&self) -> usize {
        rowcol::jobs::runner::drain(&self.state.services)
            .await
            .expect("drain jobs")
    }

    /// A server function call as a script would make it: a form POST.
    pub async fn call(&self, endpoint: &str, form: &[(&str, &str)]) -> (u16, Value) {
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

    pub async fn login(&self, email: &str) {
        let (status, body) = self
            .call("login", &[("email", email), ("password", PASSWORD)])
            .await;
        assert!(
            status == 302 || status == 200,
            "login failed: {status} {body}"
        );
    }

    pub async fn client_id(&self, name: &str) -> String {
        let (status, body) = self.call("portfolio", &[]).await;
        assert_eq!(status, 200, "{body}");
        body.as_array()
            .expect("array")
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no client {name}"))["client_id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    pub async fn client(&self, id: &str) -> Value {
        let (status, body) = self.call("client", &[("client_id", id)]).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// A client's id and its smallest open bill (picked by amount, not by
    /// position: the order of bills depends on the sandbox's dates).
    pub async fn small_bill(&self, client: &str) -> (String, String) {
        let cid = self.client_id(client).await;
        let detail = self.client(&cid).await;
        let bill = detail["bills"]
            .as_array()
            .expect("bills")
            .iter()
            .min_by_key(|b| b["amount"]["minor"].as_i64().expect("amount"))
            .expect("an open bill")["bill_id"]
            .as_str()
            .expect("bill id")
            .to_owned();
        (cid, bill)
    }

    /// A client's open bills, smallest first: (amount in minor units, id).
    pub async fn bills_by_amount(&self, client_id: &str) -> Vec<(i64, String)> {
        let detail = self.client(client_id).await;
        let mut bills: Vec<(i64, String)> = detail["bills"]
            .as_array()
            .expect("bills")
            .iter()
            .map(|b| {
                (
                    b["amount"]["minor"].as_i64().expect("amount"),
                    b["bill_id"].as_str().expect("bill id").to_owned(),
                )
            })
            .collect();
        bills.sort();
        bills
    }

    /// The calls RowCol made to `rail` (`qbo`, `ramp`, …) so far, whatever
    /// they answered, from the app's own metrics.
    pub fn rail_calls(&self, rail: &str) -> u64 {
        let prefix = format!("rowcol_rail_requests_total{{rail=\"{rail}\",");
        self.state
            .app
            .metrics
            .render()
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Change the sandbox's fault injection.
    pub async fn inject(&self, change: impl FnOnce(&mut sandbox::Faults)) {
        let sandbox = self.state.services.sandbox.as_ref().expect("sandbox mode");
        let mut faults = sandbox.faults().await;
        change(&mut faults);
        sandbox.set_faults(faults).await;
    }

    /// Approve a client's smallest open bill (it must succeed); its payment id.
    pub async fn approve_small_bill(&self, client: &str) -> String {
        let (cid, bill) = self.small_bill(client).await;
        let (status, body) = self.approve(&cid, &[&bill]).await;
        assert!(status == 200 || status == 302, "approve: {status} {body}");
        sqlx::query_scalar("select payment_id from payment where bill_id = $1")
            .bind(&bill)
            .fetch_one(&self.state.app.db.pool)
            .await
            .expect("payment")
    }

    pub async fn approve(&self, client_id: &str, bills: &[&str]) -> (u16, Value) {
        let mut form = vec![("client_id", client_id)];
        for b in bills {
            form.push(("bill_ids[]", b));
        }
        self.call("approve_bills", &form).await
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.state.app.db.pool)
            .await
            .expect(sql)
    }

    /// Everything the sandbox saved, opened: its document and each part
    /// (one row each in `sandbox_state`), as a restart would load them.
    /// Every row must be sealed: none holds `plaintext` as it is.
    pub async fn saved_world(&self, plaintext: &str) -> String {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "select sandbox_id, state from sandbox_state \
             where sandbox_id = 'rails' or sandbox_id like 'rails.%' order by sandbox_id",
        )
        .fetch_all(&self.state.app.db.pool)
        .await
        .expect("sandbox_state");
        assert!(rows.len() > 1, "the world is saved as a document and parts");
        let mut world = String::new();
        for (id, sealed) in rows {
            assert!(!sealed.contains(plaintext), "{id} is sealed at rest");
            let aad = match id.strip_prefix("rails.") {
                Some(part) => rowcol::keys::sandbox_part_aad(part),
                None => rowcol::keys::SANDBOX_STATE_AAD.to_owned(),
            };
            world.push_str(&self.state.app.sealer.open(&sealed, &aad).expect("opens"));
        }
        world
    }

    pub async fn payment_state(&self, payment_id: &str) -> String {
        sqlx::query_scalar("select state from payment where payment_id = $1")
            .bind(payment_id)
            .fetch_one(&self.state.app.db.pool)
            .await
            .expect("payment")
    }

    pub fn webhook_secret(&self) -> String {
        self.state.ramp_webhook_secret.to_string()
    }

    pub async fn post_webhook(&self, body: &str, signature: Option<&str>) -> (u16, String) {
        let mut req = self
            .http
            .post(format!("{}/webhooks/ramp", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(sig) = signature {
            req = req.header("X-Ramp-Webhook-Signature", sig);
        }
        let res = req.send().await.expect("webhook");
        (res.status().as_u16(), res.text().await.unwrap_or_default())
    }
}

pub fn sign(secret: &str, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

// ---- release protocol helpers (issue #6: exactly once, ledger re-check)

impl TestApp {
    pub fn sandbox(&self) -> &sandbox::Sandbox {
        self.state.services.sandbox.as_ref().expect("sandbox mode")
    }

    /// The QBO realm and QBO bill id a payment pays.
    pub async fn ledger_bill_of(&self, payment_id: &str) -> (String, String) {
        sqlx::query_as(
            "select c.external_id, b.qbo_bill_id from payment p
             join staged_bill b on b.bill_id = p.bill_id
             join rail_connection c on c.client_id = p.client_id and c.rail = 'qbo'
             where p.payment_id = $1",
        )
        .bind(payment_id)
        .fetch_one(&self.state.app.db.pool)
        .await
        .expect("ledger bill of payment")
    }

    /// Ids of the simulated Ramp's bills whose `remote_id` is `remote_id`.
    pub async fn ramp_bills_with_remote_id(&self, remote_id: &str) -> Vec<String> {
        self.sandbox()
            .state()
            .await
            .clients
            .iter()
            .flat_map(|c| c.ramp.bills.iter())
            .filter(|b| b.remote_id.as_deref() == Some(remote_id))
            .map(|b| b.id.clone())
            .collect()
    }

    /// Days from the sandbox's today to the payment's planned arrival date
    /// (when Ramp credits the vendor and marks the bill paid).
    pub async fn days_to_arrival(&self, payment_id: &str) -> i64 {
        let arrival: String =
            sqlx::query_scalar("select payment_arrival_date from payment where payment_id = $1")
                .bind(payment_id)
                .fetch_one(&self.state.app.db.pool)
                .await
                .expect("payment");
        let arrival: chrono::NaiveDate = arrival.parse().expect("arrival date");
        (arrival - self.state.services.clock.today()).num_days()
    }

    /// Move RowCol's and the sandbox's shared clock (no Ramp payment dates
    /// are reached by the few minutes the release tests use).
    pub fn advance_secs(&self, secs: i64) {
        self.state
            .app
            .clock
            .advance(chrono::Duration::seconds(secs));
    }
}

// --- issue #6, abuse refused (server/tests/api/abuse.rs)

impl TestApp {
    /// Sandbox mode with a changed configuration (trusted proxies, …).
    pub async fn spawn_with(engine: Engine, change: impl FnOnce(&mut Config)) -> TestApp {
        let tmp = tempfile::tempdir().expect("tempdir");
        let url = database_url(engine, tmp.path()).await;
        let key = Sealer::generate_key();
        let mut config = test_config();
        change(&mut config);
        Self::start(url, key, tmp, config).await
    }

    /// Any request, with extra headers: status, response headers and text.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<reqwest::Body>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        (status, headers, res.text().await.unwrap_or_default())
    }

    /// A server-function call (form POST) with extra headers.
    pub async fn call_with(
        &self,
        endpoint: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let body = serde_urlencoded_form(form);
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        let (status, headers, text) = self
            .send(
                reqwest::Method::POST,
                &format!("/api/{endpoint}"),
                &all,
                Some(body.into()),
            )
            .await;
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// `a=1&b=2`, percent-encoded as a browser form would be.
fn serde_urlencoded_form(form: &[(&str, &str)]) -> String {
    form.iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
