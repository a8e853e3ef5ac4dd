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

#[path = "../api/support.rs"]
#[allow(dead_code)] // the shared harness: this target uses only its database helpers
mod support;

#[path = "../api/process.rs"]
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

mod instance;
mod invariants;
mod traffic;

use instance::*;
use invariants::*;
use traffic::*;

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
