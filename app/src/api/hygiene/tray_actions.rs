//! The hygiene tray's fixing actions, server side. Every action is checked
//! against [`crate::domain::tray::actions`] for the item as it stands now
//! and the person asking (the page shows exactly those), runs in one
//! transaction guarded on the item still being open, and is audited.

use crate::domain::custody::PaymentState;
use crate::domain::tray::{actions, ItemFacts, ItemStatus, TrayAction};
use crate::error::AppError;
use crate::model::{ClientId, ReasonCode, Role, Severity, TrayFilter, TrayView};
use crate::ssr::auth::{current_user, state, CurrentUser};
use crate::ssr::job_kinds::Job;
use crate::ssr::store::audit::{self, Entry};
use crate::ssr::store::hygiene::{self, Closed, ClosedBy, OpenItem};
use crate::ssr::store::{commit, inbox, job_queue, payments, read_models, tray_view};
use serde_json::json;

/// The shortest note accepted when closing an item by hand: enough for an
/// auditor to read why.
pub const MIN_NOTE_CHARS: usize = 5;

pub async fn tray(filter: TrayFilter) -> Result<TrayView, AppError> {
    let user = current_user().await?;
    check_filter(&filter)?;
    let st = state()?;
    let mut conn = st.db.read().await?;
    let viewer = tray_view::Viewer {
        role: user.role,
        email: &user.email,
    };
    let (items, more) = tray_view::items(&mut conn, &user.firm_id, &filter, &viewer).await?;
    let clients = read_models::client_names(&mut conn, &user.firm_id).await?;
    Ok(TrayView {
        items,
        more,
        clients,
    })
}

/// A filter names real values or nothing: a typo is an error, not an
/// empty tray that looks like good news.
fn check_filter(f: &TrayFilter) -> Result<(), AppError> {
    if !f.client.is_empty() && ClientId::parse(&f.client).is_err() {
        return Err(AppError::Validation("That client id is not valid.".into()));
    }
    if !f.severity.is_empty() && Severity::parse(&f.severity).is_none() {
        return Err(AppError::Validation(format!(
            "Unknown severity \u{201c}{}\u{201d}.",
            f.severity
        )));
    }
    if !f.reason.is_empty() && ReasonCode::parse(&f.reason).is_none() {
        return Err(AppError::Validation(format!(
            "Unknown reason \u{201c}{}\u{201d}.",
            f.reason
        )));
    }
    if !f.state.is_empty() && f.state != "all" && ItemStatus::parse(&f.state).is_none() {
        return Err(AppError::Validation(
            "State must be open, resolved, dismissed or all.".into(),
        ));
    }
    Ok(())
}

pub async fn act(hygiene_id: String, action: String, note: String) -> Result<String, AppError> {
    let user = current_user().await?;
    let action = TrayAction::parse(&action)
        .ok_or_else(|| AppError::Validation(format!("Unknown action \u{201c}{action}\u{201d}.")))?;
    user.require(action.min_role())?;
    let st = state()?;
    let (item, reason, payment_state) = {
        let mut conn = st.db.acquire().await?;
        let item = hygiene::open_item(&mut conn, &user.firm_id, &hygiene_id).await?;
        let reason = ReasonCode::parse(&item.reason_code).ok_or(AppError::Internal)?;
        let payment_state = match &item.payment_id {
            Some(pid) => Some(payments::require(&mut conn, pid).await?.state()?),
            None => None,
        };
        (item, reason, payment_state)
    };
    let facts = ItemFacts {
        reason,
        status: ItemStatus::Open,
        payment_state,
        has_job: item.job_id.is_some(),
        raised_by_viewer: item.opened_by.as_deref() == Some(user.email.as_str()),
    };
    if !actions(&facts, user.role).contains(&action) {
        return Err(refusal(action, &facts));
    }
    let note = note.trim();
    if action.needs_note() && note.chars().count() < MIN_NOTE_CHARS {
        return Err(AppError::Validation(format!(
            "Write a note of at least {MIN_NOTE_CHARS} characters: an auditor will read why."
        )));
    }
    match action {
        TrayAction::Recheck => recheck(&user, &item).await,
        TrayAction::Resolve => close_by_hand(&user, &item, reason, Closed::Resolved, note).await,
        TrayAction::Dismiss => close_by_hand(&user, &item, reason, Closed::Dismissed, note).await,
        TrayAction::Acknowledge => acknowledge(&user, &item, note).await,
        TrayAction::Replay => replay(&user, &item).await,
        TrayAction::CancelOnRamp => {
            let pid = item.payment_id.as_deref().ok_or(AppError::Internal)?;
            crate::ssr::stop::stop_payment(&user, pid, note).await
        }
        TrayAction::RetryPayment
        | TrayAction::ApproveNewVersion
        | TrayAction::RetryRelease
        | TrayAction::ConfirmBankChange => super::ssr::retry(hygiene_id).await.map(|o| o.message),
        TrayAction::Reconnect => Err(AppError::Validation(
            "Reconnect the rail on the Connections page.".into(),
        )),
    }
}

/// Why an action the tray does not offer was refused, in words.
fn refusal(action: TrayAction, item: &ItemFacts) -> AppError {
    let paid = matches!(
        item.payment_state,
        Some(PaymentState::Paid | PaymentState::Recorded | PaymentState::Verified)
    );
    match action {
        TrayAction::CancelOnRamp if paid => AppError::Conflict(
            "Ramp has already paid this bill, so it can no longer be cancelled there. Ask the \
             vendor to refund one payment, void the extra one in QuickBooks, then resolve this \
             item with a note."
                .into(),
        ),
        TrayAction::Acknowledge if item.raised_by_viewer => {
            AppError::Denied("Another admin must acknowledge your own override.".into())
        }
        _ => AppError::Conflict(format!(
            "\u{201c}{}\u{201d} is not possible for this item now.",
            action.label()
        )),
    }
}

/// Read the ledger and the bank again now: the payment's verification runs
/// at once (a queued one is brought forward). If the evidence now agrees
/// the flag clears itself and the tray says so.
async fn recheck(user: &CurrentUser, item: &OpenItem) -> Result<String, AppError> {
    let pid = item.payment_id.as_deref().ok_or(AppError::Internal)?;
    let st = state()?;
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    job_queue::run_now(
        &mut tx,
        &Job::VerifyPayment {
            payment_id: pid.to_owned(),
        },
        now,
    )
    .await?;
    audit::record(
        &mut tx,
        &user.firm_id,
        now,
        Entry {
            actor: &user.email,
            action: "hygiene.rechecked",
            subject: &item.hygiene_id,
            detail: json!({ "reason_code": item.reason_code, "payment_id": pid }),
        },
    )
    .await?;
    commit(tx).await?;
    Ok(
        "Re-checking now: RowCol reads QuickBooks and the bank again. If they agree, this item \
        clears itself; if not, it stays open with what was found."
            .into(),
    )
}

/// Resolve with a note, or dismiss: the item closes with who and why, and
/// the payment's flag for it clears.
async fn close_by_hand(
    user: &CurrentUser,
    item: &OpenItem,
    reason: ReasonCode,
    how: Closed,
    note: &str,
) -> Result<String, AppError> {
    let st = state()?;
    let now = st.clock.now();
    let closed = ClosedBy {
        by: &user.email,
        note,
    };
    let mut tx = st.db.begin().await?;
    hygiene::close(&mut tx, &user.firm_id, &item.hygiene_id, how, now, closed).await?;
    if let Some(pid) = &item.payment_id {
        payments::settle_flag(&mut tx, pid, reason, now, closed).await?;
    }
    audit::record(
        &mut tx,
        &user.firm_id,
        now,
        Entry {
            actor: &user.email,
            action: match how {
                Closed::Resolved => "hygiene.resolved",
                Closed::Dismissed => "hygiene.dismissed",
            },
            subject: &item.hygiene_id,
            detail: json!({
                "reason_code": item.reason_code,
                "payment_id": item.payment_id,
                "client_id": item.client_id,
                "detail": item.detail,
                "note": note,
            }),
        },
    )
    .await?;
    commit(tx).await?;
    Ok(match how {
        Closed::Resolved => "Resolved. It stays in the tray under Resolved, with your note.",
        Closed::Dismissed => "Dismissed. It stays in the tray under Dismissed.",
    }
    .into())
}

/// Another admin has reviewed an override: the review item closes.
async fn acknowledge(user: &CurrentUser, item: &OpenItem, note: &str) -> Result<String, AppError> {
    user.require(Role::Admin)?;
    let st = state()?;
    let now = st.clock.now();
    let note = if note.is_empty() {
        "Reviewed and acknowledged."
    } else {
        note
    };
    let mut tx = st.db.begin().await?;
    hygiene::close(
        &mut tx,
        &user.firm_id,
        &item.hygiene_id,
        Closed::Resolved,
        now,
        ClosedBy {
            by: &user.email,
            note,
        },
    )
    .await?;
    audit::record(
        &mut tx,
        &user.firm_id,
        now,
        Entry {
            actor: &user.email,
            action: "override.acknowledged",
            subject: &item.hygiene_id,
            detail: json!({
                "client_id": item.client_id,
                "overridden_by": item.opened_by,
                "override": item.detail,
                "note": note,
            }),
        },
    )
    .await?;
    commit(tx).await?;
    Ok("Acknowledged: the override is reviewed.".into())
}

/// One more attempt of the job that gave up. The item closes (replayed);
/// if the attempt fails too, a new item shows every attempt.
async fn replay(user: &CurrentUser, item: &OpenItem) -> Result<String, AppError> {
    let job_id = item.job_id.as_deref().ok_or(AppError::Internal)?;
    let st = state()?;
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    hygiene::close(
        &mut tx,
        &user.firm_id,
        &item.hygiene_id,
        Closed::Resolved,
        now,
        ClosedBy {
            by: &user.email,
            note: "Replayed: one more attempt of the same job.",
        },
    )
    .await?;
    let Some(payload) = job_queue::replay_dead(&mut tx, job_id, now).await? else {
        return Err(AppError::Conflict(
            "This job is running again already (replayed by someone else?).".into(),
        ));
    };
    let job = serde_json::from_str::<Job>(&payload).ok();
    // A webhook's processing gave up with its event marked dead: the event
    // is pending again, or the replay would skip it.
    if let Some(Job::ProcessWebhook { inbox_id }) = &job {
        inbox::revive(&mut tx, inbox_id).await?;
    }
    audit::record(
        &mut tx,
        &user.firm_id,
        now,
        Entry {
            actor: &user.email,
            action: "job.replayed",
            subject: job_id,
            detail: json!({
                "hygiene_id": item.hygiene_id,
                "kind": job.as_ref().map(|j| j.kind().as_str()),
                "client_id": item.client_id,
                "payment_id": item.payment_id,
            }),
        },
    )
    .await?;
    commit(tx).await?;
    Ok(
        "Replaying: the job runs again now. If it fails again, a new item lists every attempt."
            .into(),
    )
}
