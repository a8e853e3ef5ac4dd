//! Crash recovery (issue #7): the real `rowcol` binary, SIGKILLed at
//! seeded-random moments while approvals, double submits, clock advances,
//! injected rail faults and the background worker are in flight, restarted
//! on the same database every time; at the end the world is settled and the
//! invariants are checked through the rails' own APIs (the simulated Ramp's
//! bill list, Plaid's transactions, the sandbox's state, RowCol's audit API
//! and `rowcol verify-audit`) and RowCol's database.
//!
//! * `CRASH_KILLS=N` kills per engine (default 10); `CRASH_SEED=n` replays a
//!   schedule (default: a fresh seed per run, printed); `CRASH_ENGINE=
//!   sqlite|postgres|both` (default both).
//! * `ROWCOL_CRASH_BIN=/path/to/rowcol` runs another build (CI: the release
//!   binary); default: the debug binary cargo built for this test.
//!   `CRASH_SITE_ROOT` is the site it serves (its own build's); without it a
//!   stub site carrying the binary's build stamp is written (`serve` refuses
//!   a site of another build; pages are not what this test is about).
//! * PostgreSQL: a fresh database `rowcol_t_<uuid>` on `ROWCOL_TEST_PG_URL`
//!   (default `postgres://postgres@127.0.0.1:5432/postgres`).
//!
//! A seed fixes the schedule (what each request stream does and when each
//! kill lands, in milliseconds after the traffic starts), not the machine's
//! interleaving: a replay re-runs the same schedule, which is how a failure
//! is chased. The command: `make crash KILLS=50` (scripts/crash.sh).
//!
//! Leases: a job claimed by a killed process keeps its lease (2 minutes on
//! the sandbox clock, `rowcol::jobs::runner::LEASE`) and is taken over
//! after that. The harness does not wait for it in real time: clock advances
//! (which every round makes, and the end phase makes by days) expire it, as
//! time passing would. A lease further in the future than one lease length,
//! checked after every restart, is a violation: the clock went backwards
//! across the restart. (That is how this test found the sandbox moving its
//! clock before the world at the new time was saved: see
//! `an_advance_moves_the_clock_only_once_the_world_is_saved`.)

#[path = "api/support.rs"]
#[allow(dead_code)] // the shared harness: this target uses only its database helpers
mod support;

#[path = "api/process.rs"]
#[allow(dead_code)] // this target starts its processes itself; it shares the site helpers
mod process;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use process::{build_stamp, scrub_env, stub_site};
use sandbox::world::Prng;
use serde_json::{json, Value};
use support::Engine;

/// `base64("crash-recovery-test-key-32-bytes")`: every start seals and
/// opens with the same key, so the stored rail tokens stay readable.
const KEY: &str = "Y3Jhc2gtcmVjb3ZlcnktdGVzdC1rZXktMzItYnl0ZXM=";
const WEBHOOK_SECRET: &str = "whsec_crash_recovery";
/// The simulated Plaid's secret (sandbox mode takes the configured one), so
/// the harness can read the bank through Plaid's own API.
const PLAID_SECRET: &str = "plaid_secret_crash_recovery";
const PLAID_CLIENT_ID: &str = "rowcol-sandbox";
const ADVISOR: &str = "advisor@northwind.test";
const ADMIN: &str = "admin@northwind.test";
/// `rowcol::jobs::runner::LEASE`, in milliseconds.
const LEASE_MS: i64 = 120_000;

fn engine_name(e: Engine) -> &'static str {
    match e {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "postgres",
    }
}

/// The workspace root (cargo runs tests from the package's directory).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn absolute(p: &str) -> PathBuf {
    let p = PathBuf::from(p);
    if p.is_absolute() {
        p
    } else {
        workspace_root().join(p)
    }
}

struct Settings {
    kills: u32,
    seed: u64,
    seed_given: bool,
    engines: Vec<Engine>,
    bin: PathBuf,
    site: Option<PathBuf>,
}

fn settings() -> Settings {
    let kills = std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let given = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let seed = given.unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time");
        // Short enough to type in a replay command.
        (t.as_nanos() as u64 ^ u64::from(std::process::id())) % 1_000_000
    });
    let engines = match std::env::var("CRASH_ENGINE").as_deref() {
        Ok("sqlite") => vec![Engine::Sqlite],
        Ok("postgres") | Ok("pg") => vec![Engine::Postgres],
        Ok("both") | Ok("") | Err(_) => vec![Engine::Sqlite, Engine::Postgres],
        Ok(other) => panic!("CRASH_ENGINE must be sqlite, postgres or both, not {other}"),
    };
    let over = std::env::var("ROWCOL_CRASH_BIN")
        .ok()
        .filter(|s| !s.is_empty());
    let bin = over
        .as_deref()
        .map(absolute)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_rowcol")));
    let site = std::env::var("CRASH_SITE_ROOT")
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| absolute(&s));
    Settings {
        kills,
        seed,
        seed_given: given.is_some(),
        engines,
        bin,
        site,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(300))
        .build()
        .expect("client")
}

/// What the request streams did (merged over the run).
#[derive(Default, Debug)]
struct Stats {
    kills: u32,
    kills_at_start: u32,
    restarts: u32,
    approvals_ok: u32,
    approvals_refused: u32,
    /// Refusals by status (409 already approved, 422 guardrail, 503 bank).
    refused: BTreeMap<u16, u32>,
    /// Retries of failed releases answered 200.
    retries_ok: u32,
    /// Second approvals answered 200.
    seconds_ok: u32,
    requests_cut: u32,
    double_submits: u32,
    advances: u32,
    faults: u32,
    /// Which requests were in flight when a kill cut them.
    cut_at: BTreeMap<&'static str, u32>,
    /// Payment ids RowCol answered 200 for: each must exist at the end.
    acknowledged: Vec<String>,
    violations: Vec<String>,
}

impl Stats {
    fn add(&mut self, o: Stats) {
        self.approvals_ok += o.approvals_ok;
        self.approvals_refused += o.approvals_refused;
        self.retries_ok += o.retries_ok;
        self.seconds_ok += o.seconds_ok;
        for (k, n) in o.refused {
            *self.refused.entry(k).or_default() += n;
        }
        self.requests_cut += o.requests_cut;
        self.double_submits += o.double_submits;
        self.advances += o.advances;
        self.faults += o.faults;
        for (k, n) in o.cut_at {
            *self.cut_at.entry(k).or_default() += n;
        }
        self.acknowledged.extend(o.acknowledged);
        self.violations.extend(o.violations);
    }
}

/// Which job a request stream has.
#[derive(Clone, Copy)]
enum Stream {
    /// Approvals, double submits, reads.
    Approver,
    /// Clock advances, fault injection, now and then an approval.
    World,
}

struct Run {
    engine: Engine,
    bin: PathBuf,
    site: PathBuf,
    tmp: tempfile::TempDir,
    db_url: String,
    log: PathBuf,
    child: Option<Arc<Mutex<Child>>>,
    base: String,
    http: reqwest::Client,
    /// The firm's admin: another person than the advisor, who completes
    /// payments waiting for a second approval (issue #16).
    admin: reqwest::Client,
    clients: Vec<String>,
    stats: Stats,
}

impl Run {
    /// Start the binary on the run's database, on a free port (its output
    /// appended to the run's log); not waiting for it.
    fn spawn(&mut self) -> Arc<Mutex<Child>> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("addr").port()
        };
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve");
        scrub_env(&mut cmd);
        cmd.env("ROWCOL_ADDR", &addr)
            .env("LEPTOS_SITE_ADDR", &addr)
            .env("LEPTOS_SITE_ROOT", &self.site)
            .env("DATABASE_URL", &self.db_url)
            .env("ROWCOL_RAILS", "sandbox")
            .env("ROWCOL_DEMO_PASSWORD", support::PASSWORD)
            .env("ROWCOL_ENCRYPTION_KEY", KEY)
            .env("ROWCOL_RAMP_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("ROWCOL_PLAID_SECRET", PLAID_SECRET)
            .env("ROWCOL_SANDBOX_START", support::sandbox_start().to_string())
            .env(
                "ROWCOL_SANDBOX_CLIENTS",
                sandbox::world::TEST_CLIENTS.to_string(),
            )
            .env("ROWCOL_SANDBOX_LIVING", "false")
            .env("ROWCOL_WORKER", "true")
            .env("ROWCOL_DATA_DIR", self.tmp.path())
            .env(
                "RUST_LOG",
                std::env::var("CRASH_RUST_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.bin.display()));
        self.base = format!("http://{addr}");
        let child = Arc::new(Mutex::new(child));
        self.child = Some(child.clone());
        child
    }

    /// Wait until `/readyz` answers 200. Err: the process exited first, or
    /// 120 s passed.
    async fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let probe = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        loop {
            if let Ok(r) = probe.get(format!("{}/readyz", self.base)).send().await {
                if r.status().as_u16() == 200 {
                    return Ok(());
                }
            }
            if let Some(c) = &self.child {
                if let Ok(Some(status)) = c.lock().expect("child").try_wait() {
                    return Err(format!("the server exited at start ({status})"));
                }
            }
            if Instant::now() > deadline {
                return Err("the server was not ready after 120 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Start and wait for readiness; a start that loses its port to another
    /// process (between our probe and its bind) is retried.
    async fn start(&mut self) {
        for _ in 0..5 {
            self.spawn();
            match self.wait_ready().await {
                Ok(()) => {
                    self.stats.restarts += 1;
                    return;
                }
                Err(e) => {
                    let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                    let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join("\n");
                    if tail.contains("Address already in use") {
                        continue;
                    }
                    panic!(
                        "[{}] restart failed after {} kills: {e}\n{}",
                        engine_name(self.engine),
                        self.stats.kills,
                        log_tail(&self.log, 60)
                    );
                }
            }
        }
        panic!("could not find a free port five times");
    }

    fn kill(&mut self) {
        if let Some(c) = self.child.take() {
            let mut c = c.lock().expect("child");
            let _ = c.kill(); // SIGKILL on Unix
            let _ = c.wait();
        }
    }

    /// Start the binary and SIGKILL it 5–400 ms later, ready or not.
    async fn kill_starting(&mut self, rng: &mut Prng) {
        let child = self.spawn();
        let after = Duration::from_millis(rng.between(5, 400));
        tokio::time::sleep(after).await;
        {
            let mut c = child.lock().expect("child");
            let _ = c.kill();
            let _ = c.wait();
        }
        self.child = None;
        self.stats.kills += 1;
        self.stats.kills_at_start += 1;
    }

    async fn sign_in(&mut self) {
        self.http = client();
        self.admin = client();
        'who: for (http, email) in [(&self.http, ADVISOR), (&self.admin, ADMIN)] {
            for _ in 0..20 {
                if let Ok(r) = http
                    .post(format!("{}/api/login", self.base))
                    .form(&[("email", email), ("password", support::PASSWORD)])
                    .send()
                    .await
                {
                    let s = r.status().as_u16();
                    if s == 200 || s == 302 {
                        continue 'who;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            panic!("could not sign in {email}\n{}", log_tail(&self.log, 40));
        }
    }

    /// Payments waiting for a second approver (ids, oldest first).
    async fn waiting(&self) -> Result<Vec<String>, String> {
        let list = post_json(
            &self.admin,
            &format!("{}/api/approvals/waiting", self.base),
            &[],
        )
        .await?;
        Ok(list
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|w| w["payment_id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The second approval of a waiting payment, by the admin (now and
    /// then twice at once: at most one may be answered 200); the advisor
    /// who approved first trying it is refused.
    async fn second(&self, rng: &mut Prng, s: &mut Stats) -> Result<(), String> {
        let ids = self.waiting().await?;
        if ids.is_empty() {
            return Ok(());
        }
        let pid = ids[rng.below(ids.len() as u64) as usize].clone();
        let url = format!("{}/api/approve_second", self.base);
        let form = [("payment_id", pid.as_str())];
        let status = |r: Result<reqwest::Response, reqwest::Error>| {
            r.map(|r| r.status().as_u16()).map_err(|e| e.to_string())
        };
        if rng.below(4) == 0 {
            let own = status(self.http.post(&url).form(&form).send().await)?;
            if own < 400 {
                s.violations
                    .push(format!("the first approver approved {pid} again ({own})"));
            }
        }
        let answers = if rng.below(3) == 0 {
            s.double_submits += 1;
            let (a, b) = tokio::join!(
                self.admin.post(&url).form(&form).send(),
                self.admin.post(&url).form(&form).send()
            );
            vec![status(a)?, status(b)?]
        } else {
            vec![status(self.admin.post(&url).form(&form).send().await)?]
        };
        let ok = answers.iter().filter(|a| **a == 200).count();
        if ok > 1 {
            s.violations.push(format!(
                "the second approval of {pid} was answered 200 twice"
            ));
        }
        s.seconds_ok += ok as u32;
        Ok(())
    }

    /// Before the end: every payment still waiting is approved by the
    /// admin or, when the rules now refuse it, rejected by the advisor.
    async fn decide_all_waiting(&mut self) {
        let ids = self
            .waiting()
            .await
            .unwrap_or_else(|e| panic!("waiting list: {e}\n{}", log_tail(&self.log, 40)));
        for pid in ids {
            let second = self
                .admin
                .post(format!("{}/api/approve_second", self.base))
                .form(&[("payment_id", pid.as_str())])
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string());
            if second == Ok(200) {
                self.stats.seconds_ok += 1;
                continue;
            }
            let rejected = self
                .http
                .post(format!("{}/api/reject_payment", self.base))
                .form(&[
                    ("payment_id", pid.as_str()),
                    ("reason", "not approved in time"),
                ])
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string());
            assert_eq!(
                rejected,
                Ok(200),
                "rejecting {pid} after {second:?}\n{}",
                log_tail(&self.log, 40)
            );
        }
    }

    async fn load_clients(&mut self) {
        let body = post_json(&self.http, &format!("{}/api/portfolio", self.base), &[])
            .await
            .expect("portfolio");
        let mut ids: Vec<String> = body
            .as_array()
            .expect("portfolio array")
            .iter()
            .filter_map(|c| c["client_id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        assert!(!ids.is_empty(), "no clients in the demo firm");
        self.clients = ids;
    }

    /// One round: traffic from two streams until the kill `after` the start.
    async fn round(&mut self, rng: &mut Prng, after: Duration, kills: u32) {
        let child = self.child.clone().expect("running");
        let killed = Arc::new(AtomicBool::new(false));
        let timer = {
            let killed = killed.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let mut c = child.lock().expect("child");
                let _ = c.kill();
                killed.store(true, Ordering::SeqCst);
            })
        };
        // Approvals per round: the demo firm's cash approves ~110 bills in
        // all (then the guardrail refuses), spread over the whole run.
        let most = (200 / u64::from(kills.max(1))).max(3);
        let budget = AtomicI64::new(rng.between(1, most) as i64);
        let (a, b) = tokio::join!(
            self.stream(
                Stream::Approver,
                Prng::new(rng.next_u64()),
                &killed,
                &budget
            ),
            self.stream(Stream::World, Prng::new(rng.next_u64()), &killed, &budget),
        );
        timer.await.expect("kill timer");
        self.stats.add(a);
        self.stats.add(b);
        self.stats.kills += 1;
        self.kill();
    }

    /// Requests until the process is killed.
    async fn stream(
        &self,
        kind: Stream,
        mut rng: Prng,
        killed: &AtomicBool,
        budget: &AtomicI64,
    ) -> Stats {
        let mut s = Stats::default();
        while !killed.load(Ordering::SeqCst) {
            let roll = rng.below(100);
            let (op, r) = match (kind, roll) {
                (Stream::Approver, 0..=79) | (Stream::World, 0..=14)
                    if budget.fetch_sub(1, Ordering::SeqCst) > 0 =>
                {
                    // Spread over the round, so kills land among them.
                    tokio::time::sleep(Duration::from_millis(rng.between(0, 600))).await;
                    ("approve", self.approve(&mut rng, &mut s).await)
                }
                (Stream::Approver, 0..=79) | (Stream::World, 0..=14) => (
                    "portfolio",
                    post_json(&self.http, &format!("{}/api/portfolio", self.base), &[])
                        .await
                        .map(drop),
                ),
                (Stream::Approver, 80..=89) => ("retry", self.retry(&mut rng, &mut s).await),
                (Stream::Approver, _) => ("second", self.second(&mut rng, &mut s).await),
                (Stream::World, 15..=64) => ("advance", self.advance(&mut rng, &mut s).await),
                (Stream::World, _) => ("faults", self.fault(&mut rng, &mut s).await),
            };
            if r.is_err() {
                s.requests_cut += 1;
                *s.cut_at.entry(op).or_default() += 1;
                if !killed.load(Ordering::SeqCst) {
                    // An error before the kill: not a crash artefact.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        s
    }

    /// Approve one or two open bills of a seeded client; now and then the
    /// same form twice at once (a double submit).
    async fn approve(&self, rng: &mut Prng, s: &mut Stats) -> Result<(), String> {
        let cid = self.clients[rng.below(self.clients.len() as u64) as usize].clone();
        let detail = post_json(
            &self.http,
            &format!("{}/api/client", self.base),
            &[("client_id", cid.as_str())],
        )
        .await?;
        let mut bills: Vec<String> = detail["bills"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|b| b["bill_id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if bills.is_empty() {
            return Ok(());
        }
        bills.sort();
        let n = 1 + rng.below(2) as usize;
        let mut pick = Vec::new();
        for _ in 0..n.min(bills.len()) {
            let b = bills.remove(rng.below(bills.len() as u64) as usize);
            pick.push(b);
        }
        let mut form = vec![("client_id", cid.as_str())];
        for b in &pick {
            form.push(("bill_ids[]", b.as_str()));
        }
        let url = format!("{}/api/approve_bills", self.base);
        let answers = if rng.below(4) == 0 {
            s.double_submits += 1;
            let (a, b) = tokio::join!(
                approve_call(&self.http, &url, &form),
                approve_call(&self.http, &url, &form)
            );
            vec![a, b]
        } else {
            vec![approve_call(&self.http, &url, &form).await]
        };
        let mut ok = 0;
        let mut cut = None;
        for a in answers {
            match a {
                Ok(Ok(ids)) => {
                    ok += 1;
                    s.approvals_ok += 1;
                    s.acknowledged.extend(ids);
                }
                Ok(Err(status)) => {
                    s.approvals_refused += 1;
                    *s.refused.entry(status).or_default() += 1;
                }
                Err(e) => cut = Some(e),
            }
        }
        if ok > 1 {
            s.violations.push(format!(
                "a double submit of {pick:?} was approved twice (both answered 200)"
            ));
        }
        match cut {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The hygiene tray's Retry on a failed (or unconfirmed) release, now
    /// and then pressed twice at once.
    async fn retry(&self, rng: &mut Prng, s: &mut Stats) -> Result<(), String> {
        let items = post_json(&self.http, &format!("{}/api/hygiene", self.base), &[]).await?;
        let mut ids: Vec<String> = items
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|i| {
                        matches!(
                            i["reason_code"].as_str(),
                            Some("release_failed" | "release_unconfirmed")
                        )
                    })
                    .filter_map(|i| i["hygiene_id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if ids.is_empty() {
            return Ok(());
        }
        ids.sort();
        let id = ids[rng.below(ids.len() as u64) as usize].clone();
        let url = format!("{}/api/retry_payment", self.base);
        let form = [("hygiene_id", id.as_str())];
        let answers = if rng.below(3) == 0 {
            s.double_submits += 1;
            let (a, b) = tokio::join!(
                approve_call(&self.http, &url, &form),
                approve_call(&self.http, &url, &form)
            );
            vec![a, b]
        } else {
            vec![approve_call(&self.http, &url, &form).await]
        };
        let mut ok = 0;
        let mut cut = None;
        for a in answers {
            match a {
                Ok(Ok(ids)) => {
                    ok += 1;
                    s.retries_ok += 1;
                    s.acknowledged.extend(ids);
                }
                Ok(Err(status)) => {
                    s.approvals_refused += 1;
                    *s.refused.entry(status).or_default() += 1;
                }
                Err(e) => cut = Some(e),
            }
        }
        if ok > 1 {
            s.violations.push(format!(
                "hygiene item {id} was retried twice (both answered 200)"
            ));
        }
        cut.map_or(Ok(()), Err)
    }

    async fn advance(&self, rng: &mut Prng, s: &mut Stats) -> Result<(), String> {
        let days = rng.between(1, 3);
        let r = if rng.below(5) < 3 {
            // The console's button: advance, then settle RowCol's queue.
            let d = days.to_string();
            post_json(
                &self.http,
                &format!("{}/api/sandbox/advance", self.base),
                &[("days", d.as_str())],
            )
            .await
        } else {
            // The scripting control: the worker settles on its own.
            control_post(
                &self.http,
                &format!("{}/sandbox/control/advance", self.base),
                &json!({ "days": days }),
            )
            .await
        };
        if r.is_ok() {
            s.advances += 1;
        }
        r.map(drop)
    }

    async fn fault(&self, rng: &mut Prng, s: &mut Stats) -> Result<(), String> {
        let url = format!("{}/sandbox/control/faults", self.base);
        let mut f: sandbox::Faults = serde_json::from_value(get_json(&self.http, &url).await?)
            .map_err(|e| format!("faults: {e}"))?;
        match rng.below(12) {
            0 => f.ramp_create_fail_next.push(500),
            1 => f.ramp_create_fail_next.push(503),
            2 => f.ramp_create_fail_next.push(429),
            // Ramp refuses: the payment fails (and must hold no Ramp bill).
            3 => f.ramp_create_fail_next.push(400),
            4 | 5 => f.ramp_create_lose_response_next += 1,
            6 => f.ramp_list_lag_secs = rng.between(30, 600) as u32,
            7 => f.webhook_duplicate = true,
            8 => f.webhook_drop_next += 1,
            // QBO records the payment off by 1.00: flagged amount_mismatch.
            9 => f.qbo_amount_mismatch_next += 1,
            // heal the standing ones
            _ => {
                f.ramp_list_lag_secs = 0;
                f.webhook_duplicate = false;
            }
        }
        control_post(&self.http, &url, &serde_json::to_value(&f).expect("faults")).await?;
        s.faults += 1;
        Ok(())
    }
}

/// A server function call; the JSON answer of a 2xx, else an error.
async fn post_json(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<Value, String> {
    let r = http
        .post(url)
        .header("accept", "application/json")
        .form(form)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = r.status().as_u16();
    let text = r.text().await.map_err(|e| format!("{url}: {e}"))?;
    if !(200..300).contains(&status) {
        return Err(format!("{url}: {status} {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("{url}: {e}: {text}"))
}

/// An approval: `Ok(Ok(payment ids))` when approved, `Ok(Err(status))` when
/// refused with an answer (409 already approved, 422 guardrail, 503 stale
/// bank…), `Err` when the request was cut.
async fn approve_call(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<Result<Vec<String>, u16>, String> {
    let r = http
        .post(url)
        .header("accept", "application/json")
        .form(form)
        .send()
        .await
        .map_err(|e| format!("approve: {e}"))?;
    let status = r.status().as_u16();
    let text = r.text().await.map_err(|e| format!("approve: {e}"))?;
    if status == 200 || status == 302 {
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let ids = v["payments"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Ok(ids))
    } else if status >= 500 && status != 503 {
        Err(format!("approve: {status} {text}"))
    } else {
        Ok(Err(status))
    }
}

/// One page of Ramp's bill list; waits out its rate limit (429), which
/// RowCol's own worker may be using up at the same moment.
async fn ramp_page(http: &reqwest::Client, url: &str, token: &str) -> Value {
    for _ in 0..30 {
        let r = http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("ramp list");
        let status = r.status().as_u16();
        let text = r.text().await.expect("ramp list body");
        match status {
            200 => return serde_json::from_str(&text).expect("ramp json"),
            429 => tokio::time::sleep(Duration::from_secs(1)).await,
            _ => panic!("Ramp's bill list answered {status}: {text}"),
        }
    }
    panic!("Ramp's bill list stayed rate limited for 30 s");
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let r = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = r.status().as_u16();
    let text = r.text().await.map_err(|e| format!("{url}: {e}"))?;
    if status != 200 {
        return Err(format!("{url}: {status} {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("{url}: {e}"))
}

/// A JSON POST to a sandbox control or a rail API.
async fn control_post(http: &reqwest::Client, url: &str, body: &Value) -> Result<Value, String> {
    let r = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = r.status().as_u16();
    let text = r.text().await.map_err(|e| format!("{url}: {e}"))?;
    if status != 200 {
        return Err(format!("{url}: {status} {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("{url}: {e}"))
}

fn log_tail(path: &Path, n: usize) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let from = lines.len().saturating_sub(n);
    format!(
        "----- last {n} lines of {} -----\n{}",
        path.display(),
        lines[from..].join("\n")
    )
}

fn rank(state: &str) -> Option<u8> {
    match state {
        "staged" => Some(0),
        "approved" => Some(1),
        "released" => Some(2),
        "paid" => Some(3),
        "recorded" => Some(4),
        "verified" => Some(5),
        _ => None,
    }
}

/// payment_id, bill_id, state, amount_minor, flag_reason, ramp_bill_id,
/// plaid_txn_id.
type PaymentRow = (
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// A Ramp bill as Ramp's list API shows it.
struct RampBill {
    id: String,
    remote_id: Option<String>,
    status: String,
    amount: i64,
}

/// What the end phase found.
struct Report {
    states: BTreeMap<String, usize>,
    flagged: BTreeMap<String, usize>,
    ramp_bills: usize,
    ramp_paid: usize,
    jobs: BTreeMap<String, i64>,
    claims_cut: i64,
    today: String,
    /// The simulated Ramp's webhooks per status, as its state reports them.
    webhooks: Value,
    /// RowCol's webhook inbox per status.
    inbox: BTreeMap<String, i64>,
}

impl Run {
    /// Faults off; the clock on until every payment's arrival date is 10
    /// days behind (its bank window, 5 business days, is over), at least
    /// 15 days; then wait until no job is due.
    ///
    /// The rails' wall-clock rate limits go off too: RowCol does not yet pace
    /// its QBO calls per realm (an open issue), so during the settle's burst
    /// of advances QBO's throttle could push a verification an hour past
    /// the moment this waits for (seen: a payment left `paid`, its verify
    /// job queued "rate limited" for 13:00 with the clock at noon).
    async fn settle(&mut self) -> String {
        control_post(
            &self.http,
            &format!("{}/sandbox/control/faults", self.base),
            &json!({"qbo_throttle_off": true, "rate_limits_off": true}),
        )
        .await
        .expect("faults off");
        self.decide_all_waiting().await;
        let db = app::ssr::store::Db::connect(&self.db_url)
            .await
            .expect("database");
        let last: Option<String> =
            sqlx::query_scalar("select max(payment_arrival_date) from payment")
                .fetch_one(&db.pool)
                .await
                .expect("arrival dates");
        db.pool.close().await;
        let last = last.and_then(|d| d.parse::<chrono::NaiveDate>().ok());
        let mut today = String::new();
        for i in 0..60 {
            let done = match (today.parse::<chrono::NaiveDate>(), last) {
                (Ok(t), Some(l)) => t > l + chrono::Duration::days(10),
                (Ok(_), None) => true,
                _ => false,
            };
            if i >= 5 && done {
                break;
            }
            let v = post_json(
                &self.http,
                &format!("{}/api/sandbox/advance", self.base),
                &[("days", "3")],
            )
            .await
            .unwrap_or_else(|e| panic!("final advance: {e}\n{}", log_tail(&self.log, 40)));
            today = v["today"].as_str().unwrap_or_default().to_owned();
        }
        // The worker finishes what is due.
        let db = app::ssr::store::Db::connect(&self.db_url)
            .await
            .expect("database");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let now = self.sandbox_now_ms().await;
            let due: i64 = sqlx::query_scalar(
                "select count(*) from job where state = 'queued' and run_at <= $1",
            )
            .bind(now)
            .fetch_one(&db.pool)
            .await
            .expect("due jobs");
            if due == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{due} jobs still due after 120 s\n{}",
                log_tail(&self.log, 40)
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        db.pool.close().await;
        today
    }

    /// Jobs leased further ahead than one lease length: after a restart,
    /// a lease taken on a clock the restarted process no longer has (the
    /// sandbox clock went back), which would hold the job for that long.
    async fn far_leases(&self, pool: &sqlx::AnyPool) -> Vec<String> {
        let now_ms = self.sandbox_now_ms().await;
        let far: Vec<(String, String, i64)> = sqlx::query_as(
            "select job_id, kind, lease_until from job
             where state = 'queued' and lease_until is not null and lease_until > $1",
        )
        // A minute's slack: the running process may claim a job (now +
        // one lease) between the read of "now" and this query.
        .bind(now_ms + LEASE_MS + 60_000)
        .fetch_all(pool)
        .await
        .expect("leases");
        far.into_iter()
            .map(|(id, kind, until)| {
                format!(
                    "after restart {}: job {id} ({kind}) leased until {} s from now, \
                     longer than a lease (the clock went back?)",
                    self.stats.restarts,
                    (until - now_ms) / 1000
                )
            })
            .collect()
    }

    /// After a restart: no job is held by a lease from the future.
    async fn check_leases(&mut self) {
        let db = app::ssr::store::Db::connect(&self.db_url)
            .await
            .expect("database");
        let far = self.far_leases(&db.pool).await;
        db.pool.close().await;
        self.stats.violations.extend(far);
    }

    async fn sandbox_now_ms(&self) -> i64 {
        let st = get_json(&self.http, &format!("{}/sandbox/control/state", self.base))
            .await
            .expect("sandbox state");
        let now: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(st["now"].clone()).expect("now");
        now.timestamp_millis()
    }

    /// Every invariant, through the rails' APIs (server running) and then
    /// RowCol's database and `rowcol verify-audit` (server stopped).
    async fn check(&mut self, today: String) -> Report {
        let mut v: Vec<String> = Vec::new();
        let db = app::ssr::store::Db::connect(&self.db_url)
            .await
            .expect("database");
        let pool = &db.pool;
        let sealer = app::ssr::crypto::Sealer::from_base64_key(KEY).expect("key");

        // --- Ramp, through its list API (every business, every page).
        let conns: Vec<(String, String, String, String)> = sqlx::query_as(
            "select connection_id, rail, external_id, token_sealed from rail_connection
             where rail in ('ramp', 'plaid') order by client_id, rail",
        )
        .fetch_all(pool)
        .await
        .expect("connections");
        let mut ramp: Vec<RampBill> = Vec::new();
        let mut plaid_txns: HashMap<String, (i64, bool)> = HashMap::new();
        for (connection_id, rail, _, sealed) in &conns {
            let token = sealer
                .open(sealed, connection_id)
                .expect("token opens with the key");
            if rail == "ramp" {
                let mut url = Some(format!(
                    "{}/sandbox/ramp/developer/v1/bills?page_size=100",
                    self.base
                ));
                while let Some(u) = url.take() {
                    let page = ramp_page(&self.http, &u, &token).await;
                    for b in page["data"].as_array().expect("ramp data") {
                        ramp.push(RampBill {
                            id: b["id"].as_str().expect("id").to_owned(),
                            remote_id: b["remote_id"].as_str().map(str::to_owned),
                            status: b["status"].as_str().unwrap_or_default().to_owned(),
                            amount: b["amount"]["amount"].as_i64().unwrap_or(-1),
                        });
                    }
                    url = page["page"]["next"].as_str().map(str::to_owned);
                }
            } else {
                // Plaid: the whole transaction history, from the start.
                let mut cursor = String::new();
                loop {
                    let page = control_post(
                        &self.http,
                        &format!("{}/sandbox/plaid/transactions/sync", self.base),
                        &json!({"client_id": PLAID_CLIENT_ID, "secret": PLAID_SECRET,
                                "access_token": token, "cursor": cursor, "count": 500}),
                    )
                    .await
                    .expect("plaid transactions/sync");
                    for t in page["added"].as_array().expect("added") {
                        let cents = (t["amount"].as_f64().expect("amount") * 100.0).round() as i64;
                        plaid_txns.insert(
                            t["transaction_id"].as_str().expect("id").to_owned(),
                            (cents, false),
                        );
                    }
                    for t in page["removed"].as_array().expect("removed") {
                        if let Some(e) = t["transaction_id"]
                            .as_str()
                            .and_then(|id| plaid_txns.get_mut(id))
                        {
                            e.1 = true;
                        }
                    }
                    cursor = page["next_cursor"].as_str().unwrap_or_default().to_owned();
                    if !page["has_more"].as_bool().unwrap_or(false) {
                        break;
                    }
                }
            }
        }
        // The sandbox's own counts agree with what the list API showed.
        let st = get_json(&self.http, &format!("{}/sandbox/control/state", self.base))
            .await
            .expect("sandbox state");
        let listed_open = ramp.iter().filter(|b| b.status == "OPEN").count() as i64;
        let listed_paid = ramp.iter().filter(|b| b.status == "PAID").count() as i64;
        if st["ramp_bills"]["OPEN"].as_i64() != Some(listed_open)
            || st["ramp_bills"]["PAID"].as_i64() != Some(listed_paid)
        {
            v.push(format!(
                "Ramp's list shows {listed_open} open / {listed_paid} paid bills, \
                 the sandbox state {}",
                st["ramp_bills"]
            ));
        }
        // The audit chain, through RowCol's API (full re-hash).
        match post_json(
            &self.http,
            &format!("{}/api/audit", self.base),
            &[("full", "true")],
        )
        .await
        {
            Ok(a) if a["chain"]["ok"] == json!(true) => {}
            Ok(a) => v.push(format!("/api/audit: chain not ok: {}", a["chain"])),
            Err(e) => v.push(format!("/api/audit failed: {e}")),
        }
        v.extend(self.far_leases(pool).await);

        // The server stops; the rest reads the database at rest.
        self.kill();

        // --- RowCol's payments against the rails.
        let payments: Vec<PaymentRow> = sqlx::query_as(
            "select payment_id, bill_id, state, amount_minor, flag_reason, ramp_bill_id,
                        plaid_txn_id
                 from payment order by payment_id",
        )
        .fetch_all(pool)
        .await
        .expect("payments");
        let known: HashSet<&str> = payments.iter().map(|p| p.0.as_str()).collect();
        let mut by_remote: HashMap<&str, Vec<&RampBill>> = HashMap::new();
        for b in &ramp {
            if let Some(r) = b.remote_id.as_deref() {
                by_remote.entry(r).or_default().push(b);
            }
        }
        for (r, bills) in &by_remote {
            if bills.len() > 1 {
                let ids: Vec<&str> = bills.iter().map(|b| b.id.as_str()).collect();
                v.push(format!(
                    "{} Ramp bills carry remote_id {r}: {ids:?}",
                    bills.len()
                ));
            }
            if r.starts_with("pay_") && !known.contains(r) {
                v.push(format!("Ramp bill for unknown payment {r}"));
            }
        }
        // One vendor bill is released at most once, over all its payments.
        let mut per_bill: HashMap<&str, usize> = HashMap::new();
        for (pid, bill, ..) in &payments {
            *per_bill.entry(bill.as_str()).or_default() +=
                by_remote.get(pid.as_str()).map_or(0, Vec::len);
        }
        for (bill, n) in per_bill {
            if n > 1 {
                v.push(format!("bill {bill} has {n} Ramp bills over its payments"));
            }
        }
        let custody: Vec<(String, String, String)> =
            sqlx::query_as("select payment_id, state, evidence from custody_event")
                .fetch_all(pool)
                .await
                .expect("custody");
        let mut steps: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
        for (pid, state, evidence) in &custody {
            steps
                .entry(pid.as_str())
                .or_default()
                .push((state.as_str(), evidence.as_str()));
        }
        // Audit order of the custody steps.
        let audit: Vec<(String, String, i64)> = sqlx::query_as(
            "select subject, action, seq from audit_entry
             where action like 'payment.%' order by firm_id, seq",
        )
        .fetch_all(pool)
        .await
        .expect("audit");
        let mut audit_of: HashMap<&str, Vec<&str>> = HashMap::new();
        for (subject, action, _) in &audit {
            audit_of
                .entry(subject.as_str())
                .or_default()
                .push(action.trim_start_matches("payment."));
        }
        let mut report = Report {
            states: BTreeMap::new(),
            flagged: BTreeMap::new(),
            ramp_bills: by_remote.len(),
            ramp_paid: ramp
                .iter()
                .filter(|b| b.remote_id.is_some() && b.status == "PAID")
                .count(),
            jobs: BTreeMap::new(),
            claims_cut: 0,
            today,
            webhooks: st["webhooks"].clone(),
            inbox: BTreeMap::new(),
        };
        for (pid, _bill, state, amount, flag, ramp_bill, txn) in &payments {
            *report.states.entry(state.clone()).or_default() += 1;
            if let Some(f) = flag {
                *report.flagged.entry(f.clone()).or_default() += 1;
            }
            let rb = by_remote.get(pid.as_str()).and_then(|b| b.first());
            let my_steps = steps.get(pid.as_str()).cloned().unwrap_or_default();
            // Settled, or flagged with a reason.
            let settled = matches!(
                state.as_str(),
                "verified" | "failed" | "cancelled" | "rejected"
            );
            if !settled && flag.is_none() {
                v.push(format!("payment {pid} ended {state}, unflagged"));
            }
            match rank(state) {
                Some(r) => {
                    // The state is its furthest custody step: nothing went back.
                    let furthest = my_steps.iter().filter_map(|(s, _)| rank(s)).max();
                    if furthest != Some(r) {
                        v.push(format!(
                            "payment {pid} is {state} but its custody chain reaches {furthest:?}"
                        ));
                    }
                }
                None => {
                    // A dead end says why, and nothing moved after it.
                    match my_steps.iter().find(|(s, _)| *s == state.as_str()) {
                        Some((_, ev)) if !ev.trim().is_empty() => {}
                        _ => v.push(format!("payment {pid} is {state} without a custody reason")),
                    }
                    let order = audit_of.get(pid.as_str()).cloned().unwrap_or_default();
                    if let Some(at) = order.iter().position(|a| *a == state.as_str()) {
                        if let Some(later) = order[at + 1..].iter().find(|a| rank(a).is_some()) {
                            v.push(format!("payment {pid}: custody step {later} after {state}"));
                        }
                    }
                    if let Some(b) = rb {
                        v.push(format!(
                            "payment {pid} is {state} but Ramp holds bill {} ({}) for it",
                            b.id, b.status
                        ));
                    }
                }
            }
            // Paid or beyond: Ramp paid exactly that bill, for that amount.
            if rank(state).is_some_and(|r| r >= 3) {
                match rb {
                    Some(b) if b.status == "PAID" && b.amount == *amount => {}
                    Some(b) => v.push(format!(
                        "payment {pid} is {state} ({amount}) but its Ramp bill {} is {} ({})",
                        b.id, b.status, b.amount
                    )),
                    None => v.push(format!("payment {pid} is {state} with no Ramp bill")),
                }
            }
            if let (Some(b), Some(mine)) = (rb, ramp_bill) {
                if &b.id != mine {
                    v.push(format!(
                        "payment {pid} points at Ramp bill {mine}, Ramp's bill for it is {}",
                        b.id
                    ));
                }
            }
            if let Some(b) = rb {
                if b.status == "PAID" && rank(state).is_some_and(|r| r < 3) && flag.is_none() {
                    v.push(format!(
                        "Ramp paid {} for payment {pid}, RowCol still says {state}",
                        b.id
                    ));
                }
            }
            // Bank evidence: a real Plaid transaction of the same amount.
            if let Some(t) = txn {
                match plaid_txns.get(t) {
                    Some((cents, removed)) => {
                        if *cents != *amount {
                            v.push(format!(
                                "payment {pid} ({amount}) evidenced by Plaid {t} of {cents}"
                            ));
                        }
                        if *removed && flag.is_none() {
                            v.push(format!(
                                "payment {pid} evidenced by removed Plaid {t}, unflagged"
                            ));
                        }
                    }
                    None => v.push(format!("payment {pid}: Plaid has no transaction {t}")),
                }
            }
        }
        // One bank transaction evidences at most one payment.
        let mut evidence: HashMap<&str, usize> = HashMap::new();
        for p in &payments {
            if let Some(t) = p.6.as_deref() {
                *evidence.entry(t).or_default() += 1;
            }
        }
        for (t, n) in evidence {
            if n > 1 {
                v.push(format!("bank transaction {t} evidences {n} payments"));
            }
        }
        // Every approval RowCol acknowledged survived the kills.
        for pid in &self.stats.acknowledged {
            if !known.contains(pid.as_str()) {
                v.push(format!(
                    "approval {pid} was answered 200 but is not in the database"
                ));
            }
        }
        // Jobs: per state; claims a kill cut short (a claim with no attempt
        // row) that another claim later took over.
        let jobs: Vec<(String, i64)> =
            sqlx::query_as("select state, count(*) from job group by state order by state")
                .fetch_all(pool)
                .await
                .expect("jobs");
        report.jobs = jobs.into_iter().collect();
        let cut: Option<i64> = sqlx::query_scalar(
            "select cast(sum(j.attempts - (select count(*) from job_attempt a
                                           where a.job_id = j.job_id)) as bigint)
             from job j",
        )
        .fetch_one(pool)
        .await
        .expect("cut claims");
        report.claims_cut = cut.unwrap_or(0);
        // A replayed job files no second item for the same payment.
        let twice: Vec<(String, String, i64)> = sqlx::query_as(
            "select payment_id, reason_code, count(*) from hygiene_item
             where payment_id is not null and status = 'open'
             group by payment_id, reason_code having count(*) > 1",
        )
        .fetch_all(pool)
        .await
        .expect("hygiene");
        for (pid, reason, n) in twice {
            v.push(format!("payment {pid} has {n} open {reason} hygiene items"));
        }
        // Every webhook stored was processed (its job commits with it).
        let inbox: Vec<(String, i64)> = sqlx::query_as(
            "select status, count(*) from webhook_inbox group by status order by status",
        )
        .fetch_all(pool)
        .await
        .expect("inbox");
        report.inbox = inbox.into_iter().collect();
        if let Some(n) = report.inbox.get("received") {
            v.push(format!("{n} stored webhooks never processed"));
        }
        // A processing that gave up is marked dead; a crash must cause none.
        if let Some(n) = report.inbox.get("dead") {
            v.push(format!("{n} stored webhooks dead-lettered"));
        }
        db.pool.close().await;

        // The audit chain, re-hashed by the binary's own command.
        let mut cmd = Command::new(&self.bin);
        scrub_env(&mut cmd);
        let out = cmd
            .arg("verify-audit")
            .env("DATABASE_URL", &self.db_url)
            .env("ROWCOL_ENCRYPTION_KEY", KEY)
            .env("ROWCOL_DATA_DIR", self.tmp.path())
            .output()
            .expect("rowcol verify-audit");
        if !out.status.success() {
            v.push(format!(
                "rowcol verify-audit: {} {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        self.stats.violations.extend(v);
        report
    }
}

/// One engine: `kills` rounds of traffic cut by SIGKILL, then the end.
async fn run_engine(engine: Engine, s: &Settings, site: &Path) -> (Stats, Report, String) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db_url = support::database_url(engine, tmp.path()).await;
    let log = tmp.path().join("server.log");
    let mut run = Run {
        engine,
        bin: s.bin.clone(),
        site: site.to_path_buf(),
        db_url,
        log,
        tmp,
        child: None,
        base: String::new(),
        http: client(),
        admin: client(),
        clients: Vec::new(),
        stats: Stats::default(),
    };
    // The engine's own stream of choices, the same for a given seed.
    let mut rng = Prng::new(s.seed ^ ((engine_name(engine).len() as u64) << 56));
    let mut left = s.kills;
    if left > 0 && rng.below(2) == 0 {
        // The very first start killed: a fresh database half migrated, the
        // demo world generated but perhaps not seeded.
        run.kill_starting(&mut rng).await;
        left -= 1;
    }
    run.start().await;
    run.sign_in().await;
    run.load_clients().await;
    for _ in 0..left {
        if rng.below(6) == 0 {
            // Killed while starting: migrations, seeding, the sandbox's load.
            run.kill();
            run.kill_starting(&mut rng).await;
            run.start().await;
            run.check_leases().await;
            run.sign_in().await;
            continue;
        }
        // Most rounds start with time moving (uncut, through the scripting
        // control, which does not wait for RowCol's queue): Ramp pays what
        // is due and sends its webhooks, so the kill lands among webhook
        // processing, verification and annotation as well as releases.
        if rng.below(3) < 2 {
            let days = rng.between(1, 3);
            if control_post(
                &run.http,
                &format!("{}/sandbox/control/advance", run.base),
                &json!({ "days": days }),
            )
            .await
            .is_ok()
            {
                run.stats.advances += 1;
            }
        }
        let after = Duration::from_millis(rng.between(50, 1500));
        run.round(&mut rng, after, s.kills).await;
        run.start().await;
        run.check_leases().await;
        run.sign_in().await;
    }
    let today = run.settle().await;
    let report = run.check(today).await;
    let where_ = if run.stats.violations.is_empty() {
        if let Engine::Postgres = engine {
            drop_pg_database(&run.db_url).await;
        }
        String::new()
    } else {
        let kept = run.tmp.keep();
        format!(
            "database {} and server log {}/server.log kept",
            run.db_url,
            kept.display()
        )
    };
    let stats = std::mem::take(&mut run.stats);
    (stats, report, where_)
}

async fn drop_pg_database(url: &str) {
    let Some((base, name)) = url.rsplit_once('/') else {
        return;
    };
    let admin = std::env::var("ROWCOL_TEST_PG_URL").unwrap_or_else(|_| format!("{base}/postgres"));
    if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
        let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
            .execute(&pool)
            .await;
    }
}

fn print_summary(
    engine: Engine,
    seed: u64,
    kills: u32,
    st: &Stats,
    r: &Report,
    secs: u64,
) -> String {
    let mut o = String::new();
    let name = engine_name(engine);
    let _ = writeln!(o, "crash [{name}] seed {seed}: {secs} s");
    let _ = writeln!(
        o,
        "  kills: {} ({} during start-up), restarts: {}",
        st.kills, st.kills_at_start, st.restarts
    );
    let _ = writeln!(
        o,
        "  approvals: {} answered 200, second approvals {}, retries of failed releases {} ({} \
         payments), {} refused {:?}, {} double submits; advances: {}; faults injected: {}",
        st.approvals_ok,
        st.seconds_ok,
        st.retries_ok,
        st.acknowledged.len(),
        st.approvals_refused,
        st.refused,
        st.double_submits,
        st.advances,
        st.faults,
    );
    let _ = writeln!(
        o,
        "  requests that failed, nearly all cut by a kill: {} {:?}",
        st.requests_cut, st.cut_at
    );
    let total: usize = r.states.values().sum();
    let _ = writeln!(
        o,
        "  payments: {total} by final state {:?}; flagged {:?}; sandbox day {}",
        r.states, r.flagged, r.today
    );
    let _ = writeln!(
        o,
        "  Ramp: bills for {} payments ({} paid); jobs {:?}; \
         claims cut by a kill and taken over: {}",
        r.ramp_bills, r.ramp_paid, r.jobs, r.claims_cut
    );
    let _ = writeln!(
        o,
        "  webhooks: Ramp's {}; RowCol's inbox {:?}",
        r.webhooks, r.inbox
    );
    let _ = writeln!(o, "  violations: {}", st.violations.len());
    for v in &st.violations {
        let _ = writeln!(o, "    {v}");
    }
    if !st.violations.is_empty() {
        // The same binary: `make crash` takes the release one when built.
        let bin = std::env::var("ROWCOL_CRASH_BIN")
            .map(|b| format!("ROWCOL_CRASH_BIN={b} "))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "  replay: make crash KILLS={kills} SEED={seed} ENGINE={name}\n  \
             (or {bin}CRASH_KILLS={kills} CRASH_SEED={seed} CRASH_ENGINE={name} \
             cargo test -p app -p sandbox -p server --features app/ssr --test crash -- \
             --ignored --nocapture)"
        );
    }
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "kills and restarts the real binary for minutes: make crash (KILLS=N), or make test's release step"]
async fn crash_recovery() {
    let s = settings();
    assert!(
        s.bin.exists(),
        "{} not found (ROWCOL_CRASH_BIN)",
        s.bin.display()
    );
    // A copy: the shared target directory's binary may be rebuilt (another
    // worktree, another cargo command) while this test runs.
    let work = tempfile::tempdir().expect("tempdir");
    let bin = work.path().join("rowcol");
    std::fs::copy(&s.bin, &bin).unwrap_or_else(|e| panic!("copying {}: {e}", s.bin.display()));
    let site = match &s.site {
        Some(p) => {
            assert!(
                p.join("pkg/rowcol.wasm").exists(),
                "CRASH_SITE_ROOT={}: no pkg/rowcol.wasm there (build that profile's site)",
                p.display()
            );
            p.clone()
        }
        None => stub_site(work.path(), &build_stamp(&bin, work.path())),
    };
    println!(
        "crash: {} kills per engine, seed {}{}, binary {}, site {}",
        s.kills,
        s.seed,
        if s.seed_given { " (given)" } else { "" },
        s.bin.display(),
        site.display()
    );
    let s = Settings { bin, ..s };
    let mut failed = String::new();
    let mut violations = 0;
    for &engine in &s.engines {
        let t0 = Instant::now();
        let (stats, report, kept) = run_engine(engine, &s, &site).await;
        let secs = t0.elapsed().as_secs();
        let text = print_summary(engine, s.seed, s.kills, &stats, &report, secs);
        print!("{text}");
        if !stats.violations.is_empty() {
            violations += stats.violations.len();
            failed.push_str(&text);
            let _ = writeln!(failed, "  {kept}");
        }
    }
    println!("crash: seed {}, violations: {violations}", s.seed);
    assert_eq!(violations, 0, "\n{failed}");
}
