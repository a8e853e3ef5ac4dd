//! Claims due jobs and runs them. Retry delays are data; every attempt is a
//! row in `job_attempt`. A claim is a lease: a worker that dies mid-job
//! leaves a lease that expires, and the job is claimed again (every job is
//! idempotent: releases carry `remote_id`, custody steps are unique).

use super::JobError;
use crate::services::Services;
use app::domain::custody::PaymentState;
use app::model::{CustodyOwner, Rail, ReasonCode, Severity};
use app::ssr::job_kinds::{retry_delay, Job, JobKind};
use app::ssr::store::job_queue::{self, Attempt, AttemptEnd, Claimed};
use app::ssr::store::payments::{Step, StepOutcome};
use app::ssr::store::{clients, commit, connections, hygiene, inbox, payments, StoreError, Tx};
use chrono::{DateTime, Duration, Utc};
use std::time::Duration as StdDuration;

/// Lease length. A running job renews it every [`RENEW_EVERY`], so a job
/// may take longer than this; only a dead (or stuck) worker lets it expire.
pub const LEASE: Duration = Duration::seconds(120);
/// How often a running job's lease is renewed: a third of the lease, so two
/// renewals can fail (a slow database) before the lease runs out.
const RENEW_EVERY: StdDuration = StdDuration::from_secs(40);

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Retrying,
    Dead,
    Empty,
    /// The lease expired and another worker claimed the job meanwhile: this
    /// attempt's result was discarded (the other worker's counts).
    LostLease,
}

async fn execute(st: &Services, job: &Job) -> Result<(), JobError> {
    match job {
        Job::ReleasePayment { payment_id } => super::release::run(st, payment_id).await,
        Job::ProcessWebhook { inbox_id } => super::inbox::run(st, inbox_id).await,
        Job::VerifyPayment { payment_id } => super::verify::run(st, payment_id).await,
        Job::SyncClient { client_id } => super::sync::run(st, client_id).await,
        Job::SyncLedger { client_id } => super::sync::run_ledger(st, client_id).await,
        Job::AnnotateLedger { payment_id } => super::annotate::run(st, payment_id).await,
        Job::SubscribeRampWebhooks { client_id } => super::subscriptions::run(st, client_id).await,
        Job::NotifyItem { hygiene_id } => super::notify::run_item(st, hygiene_id).await,
        Job::Deliver { notification_id } => super::notify::run_deliver(st, notification_id).await,
    }
}

/// Run `work` while renewing the lease of claim `c` every [`RENEW_EVERY`].
/// The renewals run beside the job (polled concurrently, never in between
/// its steps), so a job holding the only SQLite connection cannot deadlock
/// them. A lost lease stops the renewals but not the job: its work is
/// idempotent, and its finish will be refused.
async fn with_renewed_lease(
    st: &Services,
    c: &Claimed,
    work: impl std::future::Future<Output = Result<(), JobError>>,
) -> Result<(), JobError> {
    let renewals = async {
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            let now = st.clock.now();
            match job_queue::renew(&st.db, c, now, now + LEASE).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(job = %c.job_id, attempt = c.attempts, "lease lost; the attempt's result will be discarded");
                    return;
                }
                Err(e) => tracing::warn!(job = %c.job_id, error = %e, "lease renewal failed"),
            }
        }
    };
    tokio::pin!(work);
    tokio::select! {
        r = &mut work => return r,
        () = renewals => {}
    }
    work.await
}

/// Claim and run one due job.
///
/// Sandbox: the clock may not jump from the claim to the finish (see
/// `sandbox::Sandbox::hold_clock`), or an advance would expire the lease
/// of the job running here and let another worker run it too.
pub async fn run_once(st: &Services) -> Result<Outcome, StoreError> {
    run_once_retries_due_by(st, None).await
}

/// [`run_once`], where a job attempted before runs only if its retry time is
/// at or before `retries_due_by` (when given).
async fn run_once_retries_due_by(
    st: &Services,
    retries_due_by: Option<DateTime<Utc>>,
) -> Result<Outcome, StoreError> {
    let _no_jump = match &st.sandbox {
        Some(sb) => Some(sb.hold_clock().await),
        None => None,
    };
    let now = st.clock.now();
    let due_by = retries_due_by.map_or(now, |d| d.min(now));
    let Some(c) = job_queue::claim_retries_due_by(&st.db, now, due_by, now + LEASE).await? else {
        return Ok(Outcome::Empty);
    };
    run_claimed(st, &c).await
}

/// Run a job this worker has claimed and record how it ended, if the claim
/// still holds its lease.
pub async fn run_claimed(st: &Services, claim: &Claimed) -> Result<Outcome, StoreError> {
    let c = claim.clone();
    let started = st.clock.now();
    let job = serde_json::from_str::<Job>(&c.payload);
    let result = match &job {
        Ok(job) => with_renewed_lease(st, &c, execute(st, job)).await,
        Err(e) => Err(JobError::fatal("bad_payload", e.to_string())),
    };
    let finished = st.clock.now();
    let schedule =
        JobKind::parse(&c.kind).map_or(app::ssr::job_kinds::RETRY_SCHEDULE, JobKind::schedule);
    let (outcome, end, code, error) = match &result {
        Ok(()) => (Outcome::Done, AttemptEnd::Done, None, None),
        Err(JobError::Retry {
            code,
            message,
            after,
        }) => match retry_delay(schedule, c.attempts, *after) {
            Some(d) => (
                Outcome::Retrying,
                AttemptEnd::Retry(
                    finished + Duration::from_std(d).unwrap_or(Duration::seconds(60)),
                ),
                Some(*code),
                Some(message.clone()),
            ),
            None => (
                Outcome::Dead,
                AttemptEnd::Dead,
                Some(*code),
                Some(message.clone()),
            ),
        },
        Err(JobError::Fatal { code, message }) => (
            Outcome::Dead,
            AttemptEnd::Dead,
            Some(*code),
            Some(message.clone()),
        ),
    };
    if let Some(e) = &error {
        tracing::warn!(job = %c.job_id, attempt = c.attempts, error = %e, outcome = ?outcome, "job attempt failed");
    }
    let mut tx = st.db.begin().await?;
    let fenced = job_queue::finish(
        &mut tx,
        &c,
        &Attempt {
            started,
            finished,
            end,
            error_code: code,
            error: error.as_deref(),
        },
    )
    .await;
    if let Err(StoreError::Conflict(_)) = fenced {
        // Another worker holds the job now: nothing of this finish commits
        // (no state change, no dead letter); its own finish decides.
        drop(tx);
        job_queue::record_lost_lease(&st.db, &c, started, finished).await?;
        tracing::warn!(job = %c.job_id, attempt = c.attempts, "finish refused: lease lost");
        st.metrics.job_attempt(&c.kind, "lost_lease");
        return Ok(Outcome::LostLease);
    }
    fenced?;
    if outcome == Outcome::Dead {
        dead_letter(
            &mut tx,
            &c,
            job.ok().as_ref(),
            error.as_deref().unwrap_or(""),
            finished,
        )
        .await?;
    }
    commit(tx).await?;
    st.metrics.job_attempt(
        &c.kind,
        match outcome {
            Outcome::Retrying => "retry",
            Outcome::Dead => "dead",
            _ => "done",
        },
    );
    Ok(outcome)
}

/// A dead job goes to the hygiene tray of the firm it concerns. A release
/// that gives up is a failed payment: it moves to `failed` (so it holds no
/// cash and its bill can be approved again) in the same transaction, and the
/// item offers retry and dismiss.
async fn dead_letter(
    tx: &mut Tx<'_>,
    c: &Claimed,
    job: Option<&Job>,
    error: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    let mut still_approved = false;
    let mut create_outstanding = false;
    let (firm, client, payment) = match job {
        Some(Job::ReleasePayment { payment_id })
        | Some(Job::VerifyPayment { payment_id })
        | Some(Job::AnnotateLedger { payment_id }) => match payments::get(tx, payment_id).await? {
            Some(p) => {
                still_approved = p.state()? == PaymentState::Approved;
                create_outstanding = payments::create_attempted_at(tx, payment_id)
                    .await?
                    .is_some();
                (p.firm_id, Some(p.client_id), Some(payment_id.clone()))
            }
            None => return Ok(()),
        },
        Some(Job::SyncClient { client_id }) | Some(Job::SyncLedger { client_id }) => {
            match clients::firm_of(tx, client_id).await {
                // Re-reads repeat on a schedule: one open item per client says
                // they keep failing, not one per interval.
                Ok(_)
                    if hygiene::client_has_open(tx, client_id, ReasonCode::JobDeadLettered)
                        .await? =>
                {
                    return Ok(())
                }
                Ok(firm) => (firm, Some(client_id.clone()), None),
                Err(StoreError::NotFound) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Some(Job::ProcessWebhook { inbox_id }) => {
            return dead_webhook(tx, inbox_id, &c.job_id, c.attempts, error, at).await;
        }
        // A message whose retries ran out says so on its person's account
        // page; it is not another tray item (the item it tells of is one).
        Some(Job::Deliver { notification_id }) => {
            use app::ssr::store::notify::{settle, Settle};
            return settle(tx, notification_id, Settle::Failed, Some(error)).await;
        }
        _ => return Ok(()),
    };
    let kind = job.map(|j| j.kind().as_str()).unwrap_or("unknown");
    let mut reason = ReasonCode::JobDeadLettered;
    let mut detail = format!("{kind} gave up after {} attempts: {error}", c.attempts);
    // Only a payment the release never got out of `approved` failed here; a
    // payment released (or further) meanwhile is not failed, just a dead job
    // worth a look.
    //
    // But a release that gave up after sending a create whose answer never
    // came may have made a Ramp bill: failing it would free the bill for a
    // second payment. It stays approved, its cash committed, and the item
    // says so; retrying runs the release again (which looks before it
    // creates).
    if let (Some(Job::ReleasePayment { .. }), Some(p), true, true) =
        (job, &payment, still_approved, create_outstanding)
    {
        reason = ReasonCode::ReleaseUnconfirmed;
        detail = format!(
            "Payment {p}: the release to Ramp gave up after {} attempts ({error}) after sending a \
             create whose outcome is unknown. It stays approved so it cannot be paid twice; \
             check Ramp for a bill with remote_id {p}, then retry (it looks before it creates).",
            c.attempts
        );
    } else if let (Some(Job::ReleasePayment { payment_id }), Some(p), true) =
        (job, &payment, still_approved)
    {
        let failed = payments::record_step(
            tx,
            payment_id,
            Step {
                to: PaymentState::Failed,
                owner: CustodyOwner::RowCol,
                actor: "rowcol:release",
                evidence: format!("release gave up after {} attempts: {error}", c.attempts),
                at,
                audit_detail: Some(serde_json::json!({
                    "attempts": c.attempts,
                    "error": error,
                })),
            },
        )
        .await;
        match failed {
            Ok(StepOutcome::Advanced) => {
                reason = ReasonCode::ReleaseFailed;
                detail = format!(
                    "Payment {p} failed: the release to Ramp gave up after {} attempt{} ({error}). \
                     It holds no cash; retry it (after a fresh guardrail check) or dismiss.",
                    c.attempts,
                    if c.attempts == 1 { "" } else { "s" }
                );
            }
            Ok(_) => {}
            // A lost race leaves a custody row written in this transaction:
            // it must not commit (the job is claimed again later).
            Err(e) => return Err(e),
        }
    }
    hygiene::file(
        tx,
        hygiene::NewItem {
            firm_id: &firm,
            client_id: client.as_deref(),
            payment_id: payment.as_deref(),
            severity: Severity::High,
            reason_code: reason,
            detail: &detail,
            at,
            job_id: Some(&c.job_id),
            opened_by: None,
        },
    )
    .await?;
    Ok(())
}

/// A webhook whose processing gave up: `dead` in the inbox, and an item in
/// the tray of each client connected to the account the event names (one
/// open item per client, as for re-reads that keep failing). An event that
/// names no connected account stays dead in the inbox, counted by /metrics.
async fn dead_webhook(
    tx: &mut Tx<'_>,
    inbox_id: &str,
    job_id: &str,
    attempts: i64,
    error: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    inbox::mark_dead(tx, inbox_id).await?;
    let Some(event) = inbox::get(tx, inbox_id).await? else {
        return Ok(());
    };
    let Some(rail) = Rail::parse(&event.rail) else {
        return Ok(());
    };
    let body: serde_json::Value = serde_json::from_str(&event.body).unwrap_or_default();
    let field = |name: &str| {
        body.get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .into_iter()
            .collect::<Vec<_>>()
    };
    let accounts = match rail {
        Rail::Ramp => field("business_id"),
        Rail::Plaid => field("item_id"),
        Rail::Stripe => field("account"),
        Rail::Qbo => crate::webhooks::qbo::realms_of(&body),
    };
    let detail = format!(
        "A notice from {} ({}) could not be processed after {attempts} attempt{}: {error}. \
         It is kept in the inbox as dead (event {}).",
        rail.display_name(),
        event.event_type,
        if attempts == 1 { "" } else { "s" },
        event.event_id,
    );
    for account in accounts {
        for client in connections::clients_for_account(tx, rail, &account).await? {
            if hygiene::client_has_open(tx, &client, ReasonCode::JobDeadLettered).await? {
                continue;
            }
            let firm = clients::firm_of(tx, &client).await?;
            hygiene::file(
                tx,
                hygiene::NewItem {
                    firm_id: &firm,
                    client_id: Some(&client),
                    payment_id: None,
                    severity: Severity::High,
                    reason_code: ReasonCode::JobDeadLettered,
                    detail: &detail,
                    at,
                    job_id: Some(job_id),
                    opened_by: None,
                },
            )
            .await?;
        }
    }
    Ok(())
}

/// Run every job that is due now, until none is left (tests and the sandbox
/// use this to settle the world deterministically). Bounded, so a job that
/// keeps re-queueing itself for "now" cannot spin forever. A retry this
/// drain schedules (5 s or more ahead) waits for the next one: whether it
/// ran here would otherwise depend on how long the other jobs took.
pub async fn drain(st: &Services) -> Result<usize, StoreError> {
    let started = st.clock.now();
    let mut n = 0;
    while n < 10_000 {
        match run_once_retries_due_by(st, Some(started)).await? {
            Outcome::Empty => break,
            _ => n += 1,
        }
    }
    Ok(n)
}

/// How often the worker sweeps for what webhooks missed.
const SWEEP_EVERY: StdDuration = StdDuration::from_secs(30);

/// Periodic work besides the queue: enqueue the re-reads that are due, poll
/// Ramp for released payments whose webhook never came, and (sandbox) let
/// the simulated Ramp redeliver webhooks that failed earlier.
pub async fn sweep(st: &Services) {
    if let Some(sb) = &st.sandbox {
        sb.deliver_pending_webhooks().await;
    }
    if let Err(e) = super::sync::schedule_due(st).await {
        tracing::warn!(error = %e, "scheduling re-reads failed");
    }
    if let Err(e) = super::inbox::reconcile_released(st).await {
        tracing::warn!(error = %e, "reconciler sweep failed");
    }
    if let Err(e) = super::inbox::reconcile_paid(st).await {
        tracing::warn!(error = %e, "return sweep failed");
    }
    crate::connections::refresh_due(st).await;
}

/// The worker loop: run due jobs, sleep briefly when idle or until woken
/// (a webhook just landed), sweep now and then, stop on shutdown.
pub async fn run_forever(st: Services, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut last_sweep = tokio::time::Instant::now();
    loop {
        if *shutdown.borrow() {
            break;
        }
        if last_sweep.elapsed() >= SWEEP_EVERY {
            sweep(&st).await;
            last_sweep = tokio::time::Instant::now();
        }
        match run_once(&st).await {
            Ok(Outcome::Empty) => {
                tokio::select! {
                    _ = st.runner_wake.notified() => {}
                    _ = tokio::time::sleep(StdDuration::from_millis(250)) => {}
                    _ = shutdown.changed() => {}
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "job runner database error");
                tokio::time::sleep(StdDuration::from_secs(1)).await;
            }
        }
    }
}
