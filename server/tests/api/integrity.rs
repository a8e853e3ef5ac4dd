//! Issue #6 — tests for this capability, each run on SQLite and PostgreSQL.
//! Integrity: fenced job leases and their renewal, one bank transaction per
//! payment, removed transactions marked (evidence following pending →
//! posted), the audit chain verified in one snapshot and incrementally, and
//! audit notes appended to QBO's `PrivateNote`.

use super::support::{Engine, TestApp, PASSWORD};
use app::model::FirmId;
use app::ssr::job_kinds::Job;
use app::ssr::store::job_queue::{self, Attempt, AttemptEnd, Claimed};
use app::ssr::store::{audit, bank, commit, payments, StoreError};
use chrono::Duration;
use reqwest::Method;
use rowcol::jobs::runner::{self, Outcome, LEASE};
use serde_json::Value;

both_engines!(
    a_finish_counts_only_for_the_worker_holding_the_lease,
    a_sandbox_advance_waits_for_the_job_that_is_running,
    a_renewed_lease_keeps_a_long_job_from_being_taken_over,
    one_bank_transaction_evidences_at_most_one_payment,
    pending_to_posted_keeps_a_verified_payment_verified_on_the_posted_txn,
    a_removed_bank_transaction_sends_its_payment_back_to_waiting,
    a_sync_page_failing_on_a_mutation_restarts_the_update,
    a_concurrent_append_never_shows_a_false_break,
    the_audit_checkpoint_advances_and_tampering_after_it_is_caught,
    verify_audit_re_hashes_everything_and_names_the_first_break,
    a_log_rewritten_and_re_hashed_end_to_end_is_caught_by_the_signed_checkpoint,
    the_audit_note_is_appended_to_the_private_note_once,
    sign_ins_sign_outs_and_failed_sign_ins_are_audited,
    the_audit_log_exports_as_csv_and_json_with_filters,
);

async fn firm(app: &TestApp) -> FirmId {
    let id: String = sqlx::query_scalar("select firm_id from firm limit 1")
        .fetch_one(&app.state.app.db.pool)
        .await
        .unwrap();
    FirmId::parse(&id).unwrap()
}

async fn any_client(app: &TestApp) -> String {
    sqlx::query_scalar("select client_id from client order by name limit 1")
        .fetch_one(&app.state.app.db.pool)
        .await
        .unwrap()
}

/// Enqueue `job` due now; its id.
async fn enqueue_now(app: &TestApp, job: &Job) -> String {
    let st = &app.state.services;
    let now = st.clock.now();
    let mut tx = st.db.begin().await.unwrap();
    job_queue::enqueue(&mut tx, job, now, now).await.unwrap();
    commit(tx).await.unwrap();
    sqlx::query_scalar(
        "select job_id from job where state = 'queued' order by created_at desc limit 1",
    )
    .fetch_one(&st.db.pool)
    .await
    .unwrap()
}

/// Claim as a worker would, until the claim is `job_id` (other due jobs
/// are left leased). `None` when it cannot be claimed now.
async fn claim_job(app: &TestApp, job_id: &str) -> Option<Claimed> {
    let st = &app.state.services;
    for _ in 0..100 {
        let now = st.clock.now();
        let c = job_queue::claim(&st.db, now, now + LEASE).await.unwrap()?;
        if c.job_id == job_id {
            return Some(c);
        }
    }
    None
}

async fn job_state(app: &TestApp, job_id: &str) -> String {
    sqlx::query_scalar("select state from job where job_id = $1")
        .bind(job_id)
        .fetch_one(&app.state.app.db.pool)
        .await
        .unwrap()
}

async fn attempt_outcomes(app: &TestApp, job_id: &str) -> Vec<(i64, String)> {
    sqlx::query_as("select attempt, outcome from job_attempt where job_id = $1 order by attempt")
        .bind(job_id)
        .fetch_all(&app.state.app.db.pool)
        .await
        .unwrap()
}

/// Found by server/tests/crash/: a release was running (its Ramp create
/// in flight) when the sandbox clock jumped a day; its lease, measured on
/// that clock, expired at once, the advance's own drain claimed the job
/// again, got a refusal from Ramp and failed the payment, and the first
/// attempt's create then landed: a failed payment with a Ramp bill, paid
/// later. An advance must wait for the running job (the runner holds the
/// clock from claim to finish), so its lease cannot expire meanwhile.
async fn a_sandbox_advance_waits_for_the_job_that_is_running(e: Engine) {
    let app = TestApp::spawn(e).await;
    let st = &app.state.services;
    let client_id = any_client(&app).await;
    let job_id = enqueue_now(&app, &Job::SyncClient { client_id }).await;

    // Worker A claims and runs, holding the clock as the runner does.
    let running = app.sandbox().hold_clock().await;
    let a = claim_job(&app, &job_id).await.expect("A claims");
    let before = st.clock.offset_secs();
    let sb = app.sandbox().clone();
    let advance = tokio::spawn(async move { sb.advance(Duration::days(1)).await });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        !advance.is_finished(),
        "the clock jumped under a running job"
    );
    assert_eq!(st.clock.offset_secs(), before);
    assert!(
        claim_job(&app, &job_id).await.is_none(),
        "a second worker claimed the running job"
    );

    // A finishes; then the day passes.
    assert_eq!(runner::run_claimed(st, &a).await.unwrap(), Outcome::Done);
    drop(running);
    advance.await.unwrap().unwrap();
    assert_eq!(st.clock.offset_secs(), before + 86_400);
    assert_eq!(
        attempt_outcomes(&app, &job_id).await,
        [(a.attempts, "ok".into())]
    );
}

async fn a_finish_counts_only_for_the_worker_holding_the_lease(e: Engine) {
    let app = TestApp::spawn(e).await;
    let st = &app.state.services;
    let client_id = any_client(&app).await;
    let item: String = sqlx::query_scalar(
        "select external_id from rail_connection where client_id = $1 and rail = 'plaid'",
    )
    .bind(&client_id)
    .fetch_one(&st.db.pool)
    .await
    .unwrap();
    let job_id = enqueue_now(
        &app,
        &Job::SyncClient {
            client_id: client_id.clone(),
        },
    )
    .await;

    // Worker A claims, then stalls past its lease; worker B takes the job.
    let a = claim_job(&app, &job_id).await.expect("A claims");
    st.clock.advance(LEASE + Duration::seconds(1));
    let b = claim_job(&app, &job_id)
        .await
        .expect("B claims the expired lease");
    assert_ne!(a.attempts, b.attempts);

    // A's attempt dies (the bank login fails): its finish would dead-letter
    // the job into the hygiene tray. It no longer holds the lease, so
    // nothing of it commits.
    app.inject(|f| f.plaid_login_required = vec![item.clone()])
        .await;
    assert_eq!(
        runner::run_claimed(st, &a).await.unwrap(),
        Outcome::LostLease
    );
    assert_eq!(job_state(&app, &job_id).await, "queued");
    assert_eq!(
        app.count("select count(*) from hygiene_item where reason_code = 'job_dead_lettered'")
            .await,
        0
    );

    // B's attempt succeeds and counts.
    app.inject(|f| f.plaid_login_required.clear()).await;
    assert_eq!(runner::run_claimed(st, &b).await.unwrap(), Outcome::Done);
    assert_eq!(job_state(&app, &job_id).await, "done");
    assert_eq!(
        attempt_outcomes(&app, &job_id).await,
        [(a.attempts, "lost_lease".into()), (b.attempts, "ok".into())]
    );

    // And the store refuses a stale finish outright, in any transaction.
    let mut tx = st.db.begin().await.unwrap();
    let now = st.clock.now();
    let stale = job_queue::finish(
        &mut tx,
        &a,
        &Attempt {
            started: now,
            finished: now,
            end: AttemptEnd::Done,
            error_code: None,
            error: None,
        },
    )
    .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
}

async fn a_renewed_lease_keeps_a_long_job_from_being_taken_over(e: Engine) {
    let app = TestApp::spawn(e).await;
    let st = &app.state.services;
    let client_id = any_client(&app).await;
    let job_id = enqueue_now(&app, &Job::SyncClient { client_id }).await;
    let a = claim_job(&app, &job_id).await.expect("A claims");

    // A long job renews before its lease runs out ...
    st.clock.advance(LEASE - Duration::seconds(20));
    let now = st.clock.now();
    assert!(job_queue::renew(&st.db, &a, now, now + LEASE)
        .await
        .unwrap());
    // ... so past the original lease nobody can take it.
    st.clock.advance(Duration::seconds(40));
    assert!(claim_job(&app, &job_id).await.is_none());

    // Once A stops renewing, the lease expires and B takes over; A's next
    // renewal is refused (fenced), B's is not.
    st.clock.advance(LEASE);
    let b = claim_job(&app, &job_id).await.expect("B claims");
    let now = st.clock.now();
    assert!(!job_queue::renew(&st.db, &a, now, now + LEASE)
        .await
        .unwrap());
    assert!(job_queue::renew(&st.db, &b, now, now + LEASE)
        .await
        .unwrap());
}

async fn one_bank_transaction_evidences_at_most_one_payment(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    // Two approved payments of the same amount for one client.
    let (cid, _) = app.small_bill("Alder Creek Dental").await;
    let bills = app.bills_by_amount(&cid).await;
    let (status, body) = app.approve(&cid, &[&bills[0].1, &bills[1].1]).await;
    assert!(status == 200 || status == 302, "{status} {body}");
    let pool = &app.state.app.db.pool;
    let ids: Vec<String> = sqlx::query_scalar(
        "select payment_id from payment where client_id = $1 order by amount_minor",
    )
    .bind(&cid)
    .fetch_all(pool)
    .await
    .unwrap();
    let amount = bills[0].0;
    sqlx::query("update payment set amount_minor = $1 where payment_id = $2")
        .bind(amount)
        .bind(&ids[1])
        .execute(pool)
        .await
        .unwrap();

    // One matching bank debit.
    let st = &app.state.services;
    let today = st.clock.today();
    let mut tx = st.db.begin().await.unwrap();
    bank::upsert_txn(
        &mut tx,
        &cid,
        &bank::BankTxn {
            txn_id: "txn_single_debit",
            account_id: "acct",
            amount: &app::model::Money::new(amount, app::model::Currency::parse("USD").unwrap()),
            date: today,
            name: "RAMP BILLPAY",
            pending: false,
            pending_transaction_id: None,
            seen_at: st.clock.now(),
        },
    )
    .await
    .unwrap();
    commit(tx).await.unwrap();

    // Both verifications look before either claims (the race): both see it.
    let mut found = Vec::new();
    for id in &ids {
        let mut conn = st.db.acquire().await.unwrap();
        let t = bank::find_payment_evidence(&mut conn, &cid, amount, today, id)
            .await
            .unwrap()
            .expect("a candidate");
        found.push(t.txn_id);
    }
    assert_eq!(found, ["txn_single_debit", "txn_single_debit"]);
    // The first claim wins; the second is a conflict (the job retries).
    let mut tx = st.db.begin().await.unwrap();
    payments::set_bank_evidence(&mut tx, &ids[0], &found[0])
        .await
        .unwrap();
    commit(tx).await.unwrap();
    let mut tx = st.db.begin().await.unwrap();
    let second = payments::set_bank_evidence(&mut tx, &ids[1], &found[1]).await;
    assert!(matches!(second, Err(StoreError::Conflict(_))), "{second:?}");
    drop(tx);
    assert_eq!(
        app.count("select count(*) from payment where plaid_txn_id = 'txn_single_debit'")
            .await,
        1
    );
    // And the loser's next look finds nothing to claim.
    let mut conn = st.db.acquire().await.unwrap();
    let again = bank::find_payment_evidence(&mut conn, &cid, amount, today, &ids[1])
        .await
        .unwrap();
    assert!(again.is_none());
}

/// Approve Alder Creek's smallest bill with bank debits shown pending first,
/// and move the world to its arrival date: paid, recorded and verified by
/// the pending debit. Its payment id. The debit leaves on the arrival date
/// (no ACH lead), so it is still pending that day.
async fn verified_by_a_pending_debit(app: &TestApp) -> String {
    app.inject(|f| {
        f.plaid_debits_pending_first = true;
        f.ramp_ach_lead_days = Some(0);
    })
    .await;
    app.login("advisor@northwind.test").await;
    let pid = app.approve_small_bill("Alder Creek Dental").await;
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "released");
    let arrival: String =
        sqlx::query_scalar("select payment_arrival_date from payment where payment_id = $1")
            .bind(&pid)
            .fetch_one(&app.state.app.db.pool)
            .await
            .unwrap();
    let arrival: chrono::NaiveDate = arrival.parse().unwrap();
    let days = (arrival - app.state.services.clock.today()).num_days();
    // Arrive exactly on the arrival date: the debit is pending today.
    app.state
        .services
        .sandbox
        .as_ref()
        .unwrap()
        .advance(Duration::days(days))
        .await
        .unwrap();
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "verified");
    pid
}

async fn evidence_of(app: &TestApp, pid: &str) -> (Option<String>, Option<String>) {
    sqlx::query_as("select plaid_txn_id, flag_reason from payment where payment_id = $1")
        .bind(pid)
        .fetch_one(&app.state.app.db.pool)
        .await
        .unwrap()
}

async fn txn_row(app: &TestApp, txn_id: &str) -> (i64, Option<i64>, Option<String>) {
    sqlx::query_as(
        "select pending, removed_at, pending_transaction_id from bank_txn where txn_id = $1",
    )
    .bind(txn_id)
    .fetch_one(&app.state.app.db.pool)
    .await
    .unwrap()
}

async fn next_day_and_sync(app: &TestApp, pid: &str) {
    let st = &app.state.services;
    st.sandbox
        .as_ref()
        .unwrap()
        .advance(Duration::days(1))
        .await
        .unwrap();
    let client_id: String =
        sqlx::query_scalar("select client_id from payment where payment_id = $1")
            .bind(pid)
            .fetch_one(&st.db.pool)
            .await
            .unwrap();
    rowcol::jobs::sync::sync_transactions(st, &client_id)
        .await
        .unwrap();
}

async fn pending_to_posted_keeps_a_verified_payment_verified_on_the_posted_txn(e: Engine) {
    let app = TestApp::spawn(e).await;
    let pid = verified_by_a_pending_debit(&app).await;
    let (pending_id, _) = evidence_of(&app, &pid).await;
    let pending_id = pending_id.expect("evidence");
    assert_eq!(
        txn_row(&app, &pending_id).await.0,
        1,
        "evidence is the pending debit"
    );

    // The debit posts: Plaid adds the posted txn (pending_transaction_id)
    // and removes the pending one.
    next_day_and_sync(&app, &pid).await;
    assert_eq!(app.payment_state(&pid).await, "verified");
    let (evidence, flag) = evidence_of(&app, &pid).await;
    let posted = evidence.expect("evidence followed");
    assert_ne!(posted, pending_id);
    assert_eq!(
        txn_row(&app, &posted).await,
        (0, None, Some(pending_id.clone()))
    );
    assert_eq!(flag, None);
    // The pending one is marked removed, not deleted.
    assert!(txn_row(&app, &pending_id).await.1.is_some());
    let mut conn = app.state.services.db.acquire().await.unwrap();
    assert!(bank::debit_reflected(&mut conn, &pid).await.unwrap());
    drop(conn);
    // Nothing for the hygiene tray, and verification is settled.
    app.drain().await;
    assert_eq!(
        app.count("select count(*) from hygiene_item where status = 'open' and reason_code = 'cash_not_seen'")
            .await,
        0
    );
}

async fn a_removed_bank_transaction_sends_its_payment_back_to_waiting(e: Engine) {
    let app = TestApp::spawn(e).await;
    let pid = verified_by_a_pending_debit(&app).await;
    let (pending_id, _) = evidence_of(&app, &pid).await;
    let pending_id = pending_id.expect("evidence");

    // The pending debit falls off without posting.
    app.inject(|f| f.plaid_drop_pending_next = 1).await;
    next_day_and_sync(&app, &pid).await;

    // Custody only moves forward: still `verified`, but without evidence,
    // flagged, not counted as debited, and its verification queued again.
    assert_eq!(app.payment_state(&pid).await, "verified");
    let (evidence, flag) = evidence_of(&app, &pid).await;
    assert_eq!(evidence, None);
    assert_eq!(flag.as_deref(), Some("cash_not_seen"));
    assert!(txn_row(&app, &pending_id).await.1.is_some(), "marked, kept");
    let mut conn = app.state.services.db.acquire().await.unwrap();
    assert!(!bank::debit_reflected(&mut conn, &pid).await.unwrap());
    drop(conn);
    assert_eq!(
        app.count(&format!(
            "select count(*) from job where state = 'queued' and dedupe_key = 'verify:{pid}'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "select count(*) from hygiene_item where status = 'open' and reason_code = 'cash_not_seen' and payment_id = '{pid}'"
        ))
        .await,
        1
    );
    // The re-verification finds no other debit: it keeps waiting.
    app.drain().await;
    assert_eq!(evidence_of(&app, &pid).await.0, None);
}

/// Plaid: a `/transactions/sync` page that fails with
/// TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION means the update restarts
/// from the cursor it began at; the job does that instead of failing.
async fn a_sync_page_failing_on_a_mutation_restarts_the_update(e: Engine) {
    let app = TestApp::spawn(e).await;
    let st = &app.state.services;
    let client_id = any_client(&app).await;
    rowcol::jobs::sync::sync_transactions(st, &client_id)
        .await
        .unwrap();
    // New banking since: the next update has pages to fetch.
    let sandbox = st.sandbox.as_ref().unwrap();
    sandbox.advance(Duration::days(3)).await.unwrap();
    app.inject(|f| f.plaid_sync_mutation_next = 1).await;
    rowcol::jobs::sync::sync_transactions(st, &client_id)
        .await
        .unwrap();
    assert_eq!(
        sandbox.faults().await.plaid_sync_mutation_next,
        0,
        "the fault fired"
    );
}

async fn a_concurrent_append_never_shows_a_false_break(e: Engine) {
    let app = TestApp::spawn(e).await;
    let firm = firm(&app).await;
    let db = app.state.services.db.clone();
    let appender = {
        let db = db.clone();
        let firm = firm.clone();
        tokio::spawn(async move {
            for i in 0..150 {
                let mut tx = db.begin().await.unwrap();
                audit::record(
                    &mut tx,
                    &firm,
                    chrono::Utc::now(),
                    audit::Entry {
                        actor: "test",
                        action: "test.append",
                        subject: "race",
                        detail: serde_json::json!({ "i": i }),
                    },
                )
                .await
                .unwrap();
                commit(tx).await.unwrap();
            }
        })
    };
    let mut views = 0;
    while !appender.is_finished() {
        for full in [false, true] {
            let status = if full {
                audit::verify_chain_full(&db.pool, &firm).await.unwrap()
            } else {
                audit::verify_chain(&db.pool, &firm).await.unwrap()
            };
            assert!(status.ok, "false break while appending: {status:?}");
            views += 1;
        }
    }
    appender.await.unwrap();
    assert!(views > 0);
    assert!(audit::verify_chain_full(&db.pool, &firm).await.unwrap().ok);
}

/// Append `n` entries to the firm's chain.
async fn append(app: &TestApp, firm: &FirmId, n: usize) {
    let db = &app.state.services.db;
    for i in 0..n {
        let mut tx = db.begin().await.unwrap();
        audit::record(
            &mut tx,
            firm,
            app.state.services.clock.now(),
            audit::Entry {
                actor: "test",
                action: "test.append",
                subject: "checkpoint",
                detail: serde_json::json!({ "i": i }),
            },
        )
        .await
        .unwrap();
        commit(tx).await.unwrap();
    }
}

/// Edit an audit entry behind the application's back (the append-only
/// triggers are lifted for the edit, as an attacker with the database
/// owner's rights could).
async fn tamper(app: &TestApp, e: Engine, seq: i64) {
    behind_the_back(
        app,
        e,
        "update audit_entry set detail = '{\"tampered\":true}' where seq = $1",
        seq,
    )
    .await;
}

/// Run `edit` (binding `seq`) on audit_entry with the append-only triggers
/// lifted.
async fn behind_the_back(app: &TestApp, e: Engine, edit: &str, seq: i64) {
    let pool = &app.state.app.db.pool;
    let mut conn = pool.acquire().await.unwrap();
    match e {
        Engine::Postgres => {
            sqlx::query("alter table audit_entry disable trigger audit_entry_no_update")
                .execute(&mut *conn)
                .await
                .unwrap();
            sqlx::query(edit)
                .bind(seq)
                .execute(&mut *conn)
                .await
                .unwrap();
            sqlx::query("alter table audit_entry enable trigger audit_entry_no_update")
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        Engine::Sqlite => {
            let ddl: Vec<String> = sqlx::query_scalar(
                "select sql from sqlite_master where type = 'trigger' and tbl_name = 'audit_entry'",
            )
            .fetch_all(&mut *conn)
            .await
            .unwrap();
            let names: Vec<String> = sqlx::query_scalar(
                "select name from sqlite_master where type = 'trigger' and tbl_name = 'audit_entry'",
            )
            .fetch_all(&mut *conn)
            .await
            .unwrap();
            for n in &names {
                sqlx::query(&format!("drop trigger {n}"))
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            }
            sqlx::query(edit)
                .bind(seq)
                .execute(&mut *conn)
                .await
                .unwrap();
            for d in &ddl {
                sqlx::query(d).execute(&mut *conn).await.unwrap();
            }
        }
    }
}

async fn the_audit_checkpoint_advances_and_tampering_after_it_is_caught(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("admin@northwind.test").await;
    let firm = firm(&app).await;
    let pool = &app.state.app.db.pool;

    // A first view verifies the chain and checkpoints its head.
    let (status, page) = app.call("audit", &[]).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["chain"]["ok"], true);
    let head: i64 = sqlx::query_scalar("select audit_seq from firm where firm_id = $1")
        .bind(firm.as_str())
        .fetch_one(pool)
        .await
        .unwrap();
    let (cp, _) = audit::checkpoint(pool, &firm)
        .await
        .unwrap()
        .expect("checkpoint");
    assert_eq!(cp, head);

    // New entries; the next view re-hashes only those and advances.
    append(&app, &firm, 3).await;
    let (_, page) = app.call("audit", &[]).await;
    assert_eq!(page["chain"]["ok"], true);
    let (cp2, _) = audit::checkpoint(pool, &firm).await.unwrap().unwrap();
    assert!(cp2 > cp, "checkpoint advanced {cp} → {cp2}");

    // Entries after the checkpoint, one of them tampered with: caught, and
    // the checkpoint does not move past the break.
    append(&app, &firm, 3).await;
    tamper(&app, e, cp2 + 1).await;
    let (_, page) = app.call("audit", &[]).await;
    assert_eq!(page["chain"]["ok"], false, "{}", page["chain"]);
    assert_eq!(page["chain"]["broken_at"], cp2 + 1);
    assert_eq!(
        audit::checkpoint(pool, &firm).await.unwrap().unwrap().0,
        cp2
    );
    // Still reported on the next view.
    let (_, page) = app.call("audit", &[]).await;
    assert_eq!(page["chain"]["ok"], false);

    // An entry at or before the checkpoint is not re-hashed incrementally;
    // the full verification (the page's `full` option) still finds it.
    tamper(&app, e, 1).await;
    let (_, page) = app.call("audit", &[("full", "true")]).await;
    assert_eq!(page["chain"]["ok"], false);
    assert_eq!(page["chain"]["broken_at"], 1);
}

async fn the_audit_note_is_appended_to_the_private_note_once(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    let pid = app.approve_small_bill("Alder Creek Dental").await;
    app.drain().await;
    let (status, _) = app.call("sandbox/advance", &[("days", "40")]).await;
    assert_eq!(status, 200);
    app.drain().await;
    assert_eq!(app.payment_state(&pid).await, "verified");

    let note = || async {
        let st = &app.state.services;
        let (client_id, bill_payment): (String, String) = sqlx::query_as(
            "select client_id, qbo_bill_payment_id from payment where payment_id = $1",
        )
        .bind(&pid)
        .fetch_one(&st.db.pool)
        .await
        .unwrap();
        let qbo_bill: String = sqlx::query_scalar(
            "select b.qbo_bill_id from staged_bill b join payment p on p.bill_id = b.bill_id where p.payment_id = $1",
        )
        .bind(&pid)
        .fetch_one(&st.db.pool)
        .await
        .unwrap();
        let auth = rowcol::connections::rail_auth(st, &client_id, app::model::Rail::Qbo)
            .await
            .unwrap();
        let pays = st
            .rails
            .ledger
            .bill_payments_for_bill(&auth, &qbo_bill)
            .await
            .unwrap();
        let p = pays.iter().find(|p| p.id == bill_payment).unwrap();
        p.private_note.clone().unwrap_or_default()
    };
    let first = note().await;
    // Ramp's own note (written by its accounting sync) is kept ...
    assert!(first.starts_with("Ramp bill "), "{first}");
    // ... and RowCol's is appended after it.
    let marker = format!("RowCol payment {pid}:");
    assert_eq!(first.matches(&marker).count(), 1, "{first}");

    // The job runs again (a retry after a lost response): not appended twice.
    enqueue_now(
        &app,
        &Job::AnnotateLedger {
            payment_id: pid.clone(),
        },
    )
    .await;
    app.drain().await;
    assert_eq!(note().await, first);
}

/// `rowcol verify-audit`, as an operator runs it.
async fn verify_audit(app: &TestApp, incremental: bool) -> anyhow::Result<()> {
    verify_audit_against(app, incremental, None).await
}

async fn verify_audit_against(
    app: &TestApp,
    incremental: bool,
    checkpoint: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    rowcol::cli::run(rowcol::config::Cli {
        command: Some(rowcol::config::Command::VerifyAudit {
            incremental,
            checkpoint: checkpoint.map(std::path::Path::to_path_buf),
        }),
        config: app.config.clone(),
    })
    .await
}

/// The hash RowCol gives an entry (as an attacker who read the source
/// would compute it).
fn rehash(
    firm: &str,
    seq: i64,
    at: i64,
    r: &(String, String, String, String),
    prev: &str,
) -> String {
    use sha2::{Digest, Sha256};
    #[derive(serde::Serialize)]
    struct Canonical<'a> {
        firm_id: &'a str,
        seq: i64,
        at: i64,
        actor: &'a str,
        action: &'a str,
        subject: &'a str,
        detail: &'a str,
        prev_hash: &'a str,
    }
    let c = Canonical {
        firm_id: firm,
        seq,
        at,
        actor: &r.0,
        action: &r.1,
        subject: &r.2,
        detail: &r.3,
        prev_hash: prev,
    };
    hex::encode(Sha256::digest(serde_json::to_vec(&c).unwrap()))
}

/// Issue #18 §2: someone with the database rewrites entry 2 and re-hashes
/// every entry after it, the firm's head and the verification checkpoint:
/// the chain is consistent again and a full re-hash passes. The signed
/// checkpoint an auditor took before (CLI and `GET /audit/checkpoint`)
/// still catches it.
async fn a_log_rewritten_and_re_hashed_end_to_end_is_caught_by_the_signed_checkpoint(e: Engine) {
    let app = TestApp::spawn(e).await;
    let firm = firm(&app).await;
    append(&app, &firm, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkpoint.json");
    rowcol::cli::run(rowcol::config::Cli {
        command: Some(rowcol::config::Command::AuditCheckpoint {
            out: Some(file.clone()),
        }),
        config: app.config.clone(),
    })
    .await
    .expect("signed");
    verify_audit_against(&app, false, Some(&file))
        .await
        .expect("the checkpoint holds for the log it was taken of");
    // Any role may take one over HTTP; it names this firm's head.
    app.login("viewer@northwind.test").await;
    let res = app
        .http
        .get(format!("{}/audit/checkpoint", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let web: Value = res.json().await.unwrap();
    let head: i64 = sqlx::query_scalar("select audit_seq from firm where firm_id = $1")
        .bind(firm.as_str())
        .fetch_one(&app.state.app.db.pool)
        .await
        .unwrap();
    assert_eq!(web["checkpoints"][0]["seq"], head);
    assert_eq!(web["checkpoints"][0]["firm_id"], firm.as_str());

    // The rewrite: entry 2's detail, then every hash from there on.
    let rows: Vec<(i64, i64, String, String, String, String, String)> = sqlx::query_as(
        "select seq, at, actor, action, subject, detail, prev_hash from audit_entry
         where firm_id = $1 order by seq",
    )
    .bind(firm.as_str())
    .fetch_all(&app.state.app.db.pool)
    .await
    .unwrap();
    let mut prev = rows[1].6.clone();
    for (seq, at, actor, action, subject, detail, _) in rows.into_iter().skip(1) {
        let detail = if seq == 2 {
            r#"{"rewritten":true}"#.to_owned()
        } else {
            detail
        };
        let hash = rehash(
            firm.as_str(),
            seq,
            at,
            &(actor, action, subject, detail.clone()),
            &prev,
        );
        behind_the_back(
            &app,
            e,
            &format!(
                "update audit_entry set detail = '{}', prev_hash = '{prev}', hash = '{hash}'
                 where firm_id = '{}' and seq = $1",
                detail.replace('\'', "''"),
                firm.as_str()
            ),
            seq,
        )
        .await;
        prev = hash;
    }
    for sql in [
        "update firm set audit_head = $1 where firm_id = $2",
        "update audit_checkpoint set hash = $1 where firm_id = $2",
    ] {
        sqlx::query(sql)
            .bind(&prev)
            .bind(firm.as_str())
            .execute(&app.state.app.db.pool)
            .await
            .unwrap();
    }
    verify_audit(&app, false)
        .await
        .expect("re-hashed end to end, the chain alone holds");
    let said = format!(
        "{:#}",
        verify_audit_against(&app, false, Some(&file))
            .await
            .expect_err("the signed checkpoint catches the rewrite")
    );
    let signed: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let at = signed["checkpoints"][0]["seq"].as_i64().expect("a seq");
    assert!(said.contains(&format!("BROKEN at entry {at}")), "{said}");
    assert!(said.contains("rewritten"), "{said}");

    // A checkpoint file edited to match is refused by its signature.
    let mut forged: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    forged["checkpoints"][0]["head"] = Value::String(prev.clone());
    std::fs::write(&file, forged.to_string()).unwrap();
    let said = format!(
        "{:#}",
        verify_audit_against(&app, false, Some(&file))
            .await
            .expect_err("an edited checkpoint")
    );
    assert!(said.contains("signature"), "{said}");
}

/// Issue #18 §2, reproduced: after any earlier verification (which moves
/// the checkpoint, kept in the very database it is meant to distrust),
/// `rowcol verify-audit` printed ok for an edited old entry and for a
/// deleted newest one. It re-hashes every entry from the first now, checks
/// the firm's stored head, and names the first broken entry and what broke.
async fn verify_audit_re_hashes_everything_and_names_the_first_break(e: Engine) {
    let app = TestApp::spawn(e).await;
    app.login("admin@northwind.test").await;
    let first_firm = firm(&app).await;
    append(&app, &first_firm, 3).await;
    let (_, page) = app.call("audit", &[]).await;
    assert_eq!(page["chain"]["ok"], true, "{page}");
    verify_audit(&app, false).await.expect("an intact log");

    tamper(&app, e, 2).await;
    let err = verify_audit(&app, false).await.expect_err("entry 2 edited");
    let said = format!("{err:#}");
    assert!(said.contains("entry 2"), "{said}");
    assert!(said.contains("contents"), "{said}");
    // The fast path is opt-in and says what it skips.
    verify_audit(&app, true)
        .await
        .expect("the incremental check starts after the checkpoint");

    // Another firm's database: its newest entry deleted after a
    // verification.
    let app = TestApp::spawn(e).await;
    let second_firm = firm(&app).await;
    append(&app, &second_firm, 2).await;
    verify_audit(&app, false).await.expect("an intact log");
    let head: i64 = sqlx::query_scalar("select audit_seq from firm where firm_id = $1")
        .bind(second_firm.as_str())
        .fetch_one(&app.state.app.db.pool)
        .await
        .unwrap();
    behind_the_back(&app, e, "delete from audit_entry where seq = $1", head).await;
    let said = format!(
        "{:#}",
        verify_audit(&app, false)
            .await
            .expect_err("newest entry deleted")
    );
    assert!(said.contains(&format!("entry {head}")), "{said}");
    assert!(said.contains("missing"), "{said}");
}

/// Issue #18 §2: sign-ins, sign-outs and failed sign-ins are entries in the
/// firm's audit log, with the address they came from and never a password.
async fn sign_ins_sign_outs_and_failed_sign_ins_are_audited(e: Engine) {
    let app = TestApp::spawn(e).await;
    let email = "advisor@northwind.test";
    let (status, _) = app
        .call(
            "login",
            &[("email", email), ("password", "not-the-password")],
        )
        .await;
    assert_eq!(status, 401);
    // An email that is nobody's belongs to no firm's log.
    let (status, _) = app
        .call(
            "login",
            &[("email", "nobody@northwind.test"), ("password", "x")],
        )
        .await;
    assert_eq!(status, 401);
    app.login(email).await;
    let (status, body) = app.call("logout", &[]).await;
    assert!(status < 400, "{status} {body}");
    let entries: Vec<(String, String, String)> = sqlx::query_as(
        "select action, actor, detail from audit_entry
         where action like 'auth.%' order by seq",
    )
    .fetch_all(&app.state.app.db.pool)
    .await
    .expect("audit");
    let actions: Vec<&str> = entries.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        ["auth.sign_in_failed", "auth.signed_in", "auth.signed_out"],
        "{entries:?}"
    );
    for (_, actor, detail) in &entries {
        assert_eq!(actor, email);
        assert!(detail.contains("client_addr"), "{detail}");
        assert!(
            !detail.contains("not-the-password") && !detail.contains(PASSWORD),
            "{detail}"
        );
    }
    assert!(!entries.iter().any(|(_, a, _)| a.contains("nobody")));
}

/// What every exported entry carries, in the CSV's column order.
const EXPORT_FIELDS: [&str; 9] = [
    "seq",
    "at",
    "actor_kind",
    "actor",
    "action",
    "subject",
    "detail",
    "prev_hash",
    "hash",
];

/// Issue #18 §2 (pinned): `GET /audit/export?format=csv|json` with its
/// filters, for any signed-in role, the firm's entries only, linked so the
/// chain can be followed in the file.
async fn the_audit_log_exports_as_csv_and_json_with_filters(e: Engine) {
    let mut app = TestApp::spawn(e).await;
    app.login("advisor@northwind.test").await;
    let cid = app.client_id("Alder Creek Dental").await;
    let payment = app.approve_small_bill("Alder Creek Dental").await;
    app.drain().await;
    app.new_session();
    let (status, _, text) = app.send(Method::GET, "/audit/export", &[], None).await;
    assert_eq!(status, 401, "{text}");
    app.login("viewer@northwind.test").await;
    let firm = firm(&app).await;
    // An entry about something else that names the client in its detail
    // (as a dismissed tray item's does).
    let mut tx = app.state.app.db.begin().await.expect("tx");
    audit::record(
        &mut tx,
        &firm,
        app.state.app.clock.now(),
        audit::Entry {
            actor: "rowcol",
            action: "test.names_the_client",
            subject: "hyg_elsewhere",
            detail: serde_json::json!({ "client_id": cid }),
        },
    )
    .await
    .expect("append");
    commit(tx).await.expect("commit");
    let all = app
        .count(&format!(
            "select count(*) from audit_entry where firm_id = '{}'",
            firm.as_str()
        ))
        .await;

    let get = |query: String| {
        let app = &app;
        async move {
            app.send(Method::GET, &format!("/audit/export?{query}"), &[], None)
                .await
        }
    };
    let csv_rows = |text: &str| -> Vec<csv::StringRecord> {
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = r
            .headers()
            .expect("header")
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(header, EXPORT_FIELDS);
        r.records().map(|x| x.expect("a CSV record")).collect()
    };

    let (status, headers, text) = get("format=csv".into()).await;
    assert_eq!(status, 200, "{text}");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let rows = csv_rows(&text);
    assert_eq!(rows.len() as i64, all);
    // Oldest first, each linked to the one before: the chain is in the file.
    for pair in rows.windows(2) {
        assert_eq!(
            pair[1][7], pair[0][8],
            "entry {} links to {}",
            &pair[1][0], &pair[0][0]
        );
        assert!(pair[1][0].parse::<i64>().unwrap() > pair[0][0].parse::<i64>().unwrap());
    }

    let (status, _, text) = get("format=json".into()).await;
    assert_eq!(status, 200);
    let entries: Vec<Value> = serde_json::from_str(&text).expect("a JSON array");
    assert_eq!(entries.len() as i64, all);
    for key in EXPORT_FIELDS {
        assert!(entries.iter().all(|e| !e[key].is_null()), "{key}");
    }

    // Filters.
    let (_, _, text) = get("format=json&action=payment.approved".into()).await;
    let approved: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(!approved.is_empty());
    assert!(approved.iter().all(|e| e["action"] == "payment.approved"));
    let (_, _, text) = get("format=json&actor_kind=user".into()).await;
    let by_users: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(!by_users.is_empty() && (by_users.len() as i64) < all);
    assert!(by_users
        .iter()
        .all(|e| e["actor_kind"] == "user" && e["actor"].as_str().unwrap().contains('@')));
    let (_, _, text) = get(format!("format=json&client_id={cid}")).await;
    let of_client: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(
        of_client.iter().any(|e| e["subject"] == payment.as_str()),
        "{text}"
    );
    assert!(
        of_client
            .iter()
            .any(|e| e["action"] == "test.names_the_client"),
        "{text}"
    );
    assert!((of_client.len() as i64) < all);
    let (_, _, text) = get("format=csv&to=2000-01-01".into()).await;
    assert!(csv_rows(&text).is_empty());

    // A bad query is refused in words.
    let (status, _, text) = get("format=xml".into()).await;
    assert_eq!(status, 400);
    assert!(text.contains("csv or json"), "{text}");
    let (status, _, text) = get("from=yesterday".into()).await;
    assert_eq!(status, 400);
    assert!(text.contains("from must be a date"), "{text}");
}
