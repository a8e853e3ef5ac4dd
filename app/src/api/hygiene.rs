use crate::error::AppError;
use crate::model::TrayView;
use leptos::prelude::*;

/// The firm's hygiene items the filter selects (open ones by default),
/// newest first, each with the actions the signed-in person may take.
#[server(endpoint = "hygiene")]
pub async fn get_hygiene(
    #[server(default)] client: String,
    #[server(default)] severity: String,
    #[server(default)] reason: String,
    #[server(default)] state: String,
) -> Result<TrayView, AppError> {
    use crate::ssr::auth::respond;
    respond(
        ssr::tray(crate::model::TrayFilter {
            client,
            severity,
            reason,
            state,
        })
        .await,
    )
}

/// Take a fixing action on a hygiene item (`action` is one of
/// [`crate::domain::tray::TrayAction`]'s names; `note` is required to
/// resolve or cancel). Refused unless the tray lists the action for this
/// item and person right now. Audited. Answers what happened, in words.
#[server(endpoint = "hygiene/act")]
pub async fn act_on_hygiene(
    hygiene_id: String,
    action: String,
    #[server(default)] note: String,
) -> Result<String, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::act(hygiene_id, action, note).await)
}

/// Retry a failed payment from its hygiene item: a new payment for the same
/// bill, with a new `remote_id`, after a fresh guardrail check — the same
/// approval an advisor makes on the client page. The item closes in the
/// approval's transaction, so a second retry is refused.
#[server(endpoint = "retry_payment")]
pub async fn retry_payment(hygiene_id: String) -> Result<crate::model::ApproveOutcome, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::retry(hygiene_id).await)
}

/// Dismiss a hygiene item: seen, and deliberately left alone. Audited.
#[server(endpoint = "dismiss_hygiene")]
pub async fn dismiss_hygiene(hygiene_id: String) -> Result<(), AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::dismiss(hygiene_id).await)
}

#[cfg(feature = "ssr")]
mod tray_actions;

#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use crate::api::approvals::ssr::approve_as;
    use crate::domain::custody::PaymentState;
    use crate::error::AppError;
    use crate::model::{ApproveOutcome, BillId, ClientId, PaymentId, ReasonCode, Role};
    use crate::ssr::auth::{current_user, state};
    use crate::ssr::job_kinds::Job;
    use crate::ssr::store::audit::{self, Entry};
    use crate::ssr::store::hygiene::{self, Closed};
    use crate::ssr::store::{bills, commit, job_queue, payments};
    use serde_json::json;

    pub async fn retry(hygiene_id: String) -> Result<ApproveOutcome, AppError> {
        let user = current_user().await?;
        user.require(Role::Advisor)?;
        let st = state()?;
        let (client, bill) = {
            let mut conn = st.db.acquire().await?;
            let item = hygiene::open_item(&mut conn, &user.firm_id, &hygiene_id).await?;
            let reason = ReasonCode::parse(&item.reason_code);
            let retryable = matches!(
                reason,
                Some(
                    ReasonCode::ReleaseFailed
                        | ReasonCode::ReleaseUnconfirmed
                        | ReasonCode::VendorBankChanged
                        | ReasonCode::AchReturned
                        | ReasonCode::BillChangedInLedger
                )
            );
            let (Some(pid), true) = (item.payment_id.as_deref(), retryable) else {
                return Err(AppError::Validation(
                    "Only a failed, returned, stopped or held payment can be retried.".into(),
                ));
            };
            let p = payments::require(&mut conn, pid).await?;
            if p.firm_id != user.firm_id.as_str() {
                return Err(AppError::NotFound);
            }
            if reason == Some(ReasonCode::ReleaseUnconfirmed) {
                drop(conn);
                return release_again(&user, &hygiene_id, &p).await;
            }
            if reason == Some(ReasonCode::VendorBankChanged) {
                drop(conn);
                return confirm_bank_change(&user, &item.detail, &p).await;
            }
            // A new payment replaces one that holds no cash: failed (the
            // release gave up, or the bank returned it) or stopped because
            // the bill changed in the ledger.
            let replaceable = match reason {
                Some(ReasonCode::BillChangedInLedger) => {
                    matches!(p.state()?, PaymentState::Cancelled | PaymentState::Failed)
                }
                _ => p.state()? == PaymentState::Failed,
            };
            if !replaceable {
                return Err(AppError::Conflict(
                    "This payment has not failed or been stopped; there is nothing to retry."
                        .into(),
                ));
            }
            let client = ClientId::parse(&p.client_id)
                .map_err(|e| AppError::internal("a stored id does not parse", e))?;
            let bill = BillId::parse(&p.bill_id)
                .map_err(|e| AppError::internal("a stored id does not parse", e))?;
            // The bill may have been paid or deleted in QuickBooks since:
            // then there is nothing to pay, and the advisor must be told so.
            let open = bills::open_for_approval(
                &mut conn,
                &user.firm_id,
                &client,
                std::slice::from_ref(&bill),
            )
            .await?;
            if open.is_empty() {
                return Err(AppError::Conflict(
                    if reason == Some(ReasonCode::AchReturned) {
                        "QuickBooks still shows this bill paid (by the BillPayment Ramp synced \
                         before the money came back): void that BillPayment in QuickBooks \
                         first, then retry. Nothing was paid."
                    } else {
                        "This payment's bill is no longer open in QuickBooks (paid or deleted \
                         there): there is nothing to retry. Dismiss this item."
                    }
                    .into(),
                ));
            }
            (client, bill)
        };
        approve_as(&user, &client, vec![bill], Some(&hygiene_id)).await
    }

    /// An unconfirmed release runs again under its own `remote_id`: the
    /// release looks for an earlier Ramp bill before it creates, so this
    /// cannot pay twice. The item closes in the same transaction.
    async fn release_again(
        user: &crate::ssr::auth::CurrentUser,
        hygiene_id: &str,
        p: &payments::PaymentRow,
    ) -> Result<ApproveOutcome, AppError> {
        if p.state()? != PaymentState::Approved {
            return Err(AppError::Conflict(
                "This payment is no longer waiting for its release.".into(),
            ));
        }
        let st = state()?;
        let now = st.clock.now();
        let mut tx = st.db.begin().await?;
        hygiene::close(
            &mut tx,
            &user.firm_id,
            hygiene_id,
            Closed::Resolved,
            now,
            hygiene::ClosedBy {
                by: &user.email,
                note: "Release retried: it looks for an earlier Ramp bill before it creates one.",
            },
        )
        .await?;
        job_queue::enqueue(
            &mut tx,
            &Job::ReleasePayment {
                payment_id: p.payment_id.clone(),
            },
            now,
            now,
        )
        .await?;
        audit::record(
            &mut tx,
            &user.firm_id,
            now,
            Entry {
                actor: &user.email,
                action: "payment.release_retried",
                subject: &p.payment_id,
                detail: json!({ "hygiene_id": hygiene_id }),
            },
        )
        .await?;
        commit(tx).await?;
        Ok(ApproveOutcome {
            payments: vec![PaymentId::parse(&p.payment_id).map_err(|e| AppError::internal("a stored id does not parse", e))?],
            message: format!(
                "Release of payment {} queued again; it looks for an earlier Ramp bill before creating one.",
                p.payment_id
            ),
        })
    }

    /// The advisor confirmed the vendor's new bank account with the vendor:
    /// it becomes the accepted one, and every payment to that vendor held
    /// for it is released again (each item resolves with its flag). Only
    /// the account this item named can be confirmed: if Ramp has shown yet
    /// another since, nothing changes and the advisor is told.
    async fn confirm_bank_change(
        user: &crate::ssr::auth::CurrentUser,
        detail: &str,
        p: &payments::PaymentRow,
    ) -> Result<ApproveOutcome, AppError> {
        use crate::ssr::store::connections;
        if p.state()? != PaymentState::Approved {
            return Err(AppError::Conflict(
                "This payment is no longer waiting for its release.".into(),
            ));
        }
        let st = state()?;
        let now = st.clock.now();
        let (vendor, seen, held) = {
            let mut conn = st.db.acquire().await?;
            let bill = bills::of_payment(&mut conn, &p.payment_id).await?;
            let payee = connections::ramp_payee(&mut conn, &p.client_id, &bill.qbo_vendor_id)
                .await?
                .ok_or(AppError::NotFound)?;
            let seen =
                connections::vendor_account_seen(&mut conn, &p.client_id, &payee.ramp_vendor_id)
                    .await?;
            let held = payments::flagged_for_vendor(
                &mut conn,
                &p.client_id,
                &bill.qbo_vendor_id,
                ReasonCode::VendorBankChanged,
            )
            .await?;
            (payee.ramp_vendor_id, seen, held)
        };
        // The item names the account the advisor was shown; confirm that
        // one only. If Ramp shows another now (changed again, or back to
        // the accepted one), nothing is confirmed: the held releases run
        // again, and each either goes out (back to the accepted account) or
        // is held anew by an item naming the current account.
        let seen = seen.filter(|s| detail.contains(&format!("now: {s})")));
        let mut tx = st.db.begin().await?;
        if let Some(seen) = &seen {
            connections::confirm_vendor_account(&mut tx, &p.client_id, &vendor, seen).await?;
        }
        let mut released = Vec::new();
        for pid in &held {
            payments::settle_flag(
                &mut tx,
                pid,
                ReasonCode::VendorBankChanged,
                now,
                hygiene::ClosedBy {
                    by: &user.email,
                    note: if seen.is_some() {
                        "Confirmed the vendor's new bank account with the vendor; release queued."
                    } else {
                        "Checked again: Ramp shows another account than this item named."
                    },
                },
            )
            .await?;
            job_queue::enqueue(
                &mut tx,
                &Job::ReleasePayment {
                    payment_id: pid.clone(),
                },
                now,
                now,
            )
            .await?;
            released.push(
                PaymentId::parse(pid)
                    .map_err(|e| AppError::internal("a stored id does not parse", e))?,
            );
        }
        audit::record(
            &mut tx,
            &user.firm_id,
            now,
            Entry {
                actor: &user.email,
                action: if seen.is_some() {
                    "vendor.bank_account_confirmed"
                } else {
                    "vendor.bank_account_rechecked"
                },
                subject: &vendor,
                detail: json!({
                    "client_id": p.client_id,
                    "account": seen,
                    "payments_released": held,
                }),
            },
        )
        .await?;
        commit(tx).await?;
        let n = released.len();
        let plural = if n == 1 { "" } else { "s" };
        Ok(ApproveOutcome {
            message: match seen {
                Some(_) => format!(
                    "The vendor's new bank account is confirmed; {n} held payment{plural} queued \
                     for release."
                ),
                None => format!(
                    "Ramp now shows another bank account for this vendor than this item named: \
                     nothing was confirmed. {n} held payment{plural} checked again; a new item \
                     names the current account if it is still not the accepted one."
                ),
            },
            payments: released,
        })
    }

    pub async fn dismiss(hygiene_id: String) -> Result<(), AppError> {
        super::tray_actions::act(hygiene_id, "dismiss".into(), String::new())
            .await
            .map(|_| ())
    }

    pub async fn act(hygiene_id: String, action: String, note: String) -> Result<String, AppError> {
        super::tray_actions::act(hygiene_id, action, note).await
    }

    pub async fn tray(
        filter: crate::model::TrayFilter,
    ) -> Result<crate::model::TrayView, AppError> {
        super::tray_actions::tray(filter).await
    }
}
