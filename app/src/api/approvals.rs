use crate::error::AppError;
use crate::model::ApproveOutcome;
use leptos::prelude::*;

/// Approve a selection of one client's open bills. The liquidity guardrail is
/// re-checked with a fresh balance; if the selection as a whole would break
/// the buffer, nothing is approved and the reason is returned. Otherwise each
/// bill becomes a payment in state `approved`, with its custody step, audit
/// entry and release job, all in one transaction.
#[server(endpoint = "approve_bills")]
pub async fn approve_bills(
    client_id: String,
    #[server(default)] bill_ids: Vec<String>,
) -> Result<ApproveOutcome, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::approve(client_id, bill_ids).await)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use crate::domain::calendar::payment_arrival_date;
    use crate::domain::custody::PaymentState;
    use crate::domain::guardrails::{evaluate_liquidity, LiquidityInput};
    use crate::error::AppError;
    use crate::model::*;
    use crate::ssr::auth::{current_user, state};
    use crate::ssr::jobs::Job;
    use crate::ssr::ports::PortError;
    use crate::ssr::store::audit::{self, Entry};
    use crate::ssr::store::payments::{self, NewPayment, Step};
    use crate::ssr::store::read_models::client_summaries;
    use crate::ssr::store::{bills, clients, commit, from_ms, jobs};
    use serde_json::json;

    pub async fn approve(
        client_id: String,
        bill_ids: Vec<String>,
    ) -> Result<ApproveOutcome, AppError> {
        let user = current_user().await?;
        user.require(Role::Advisor)?;
        let st = state()?;
        let client = ClientId::parse(&client_id).map_err(|_| AppError::NotFound)?;
        let mut bills: Vec<BillId> = bill_ids
            .iter()
            .map(|b| BillId::parse(b).map_err(|e| AppError::Validation(e.to_string())))
            .collect::<Result<_, _>>()?;
        bills.sort();
        bills.dedup();
        if bills.is_empty() {
            return Err(AppError::Validation(
                "Select at least one bill to approve.".into(),
            ));
        }
        if bills.len() > 200 {
            return Err(AppError::Validation(
                "Approve at most 200 bills at once.".into(),
            ));
        }

        // The client must belong to the caller's firm. (The connection goes
        // back to the pool before the refresh below, which needs one.)
        let policy = {
            let mut conn = st.db.acquire().await?;
            clients::approval_policy(&mut conn, &user.firm_id, &client).await?
        };

        // Fresh cash: refresh the bank balance when it is older than policy.
        let now = st.clock.now();
        let stale = policy
            .cash_as_of
            .is_none_or(|t| (now - from_ms(t)).num_seconds() > policy.cash_max_age_secs);
        if stale {
            st.cash.refresh_cash(&client).await.map_err(|e| match e {
                PortError::LoginRequired => AppError::CashUnavailable(
                    "the bank connection needs to be re-authorised (see the hygiene tray)".into(),
                ),
                PortError::Unavailable(m) => AppError::CashUnavailable(m),
            })?;
        }

        let today = st.clock.today();
        let mut tx = st.db.begin().await?;
        // Two concurrent approvals for one client are checked one after the
        // other against each other's commitments.
        clients::lock_for_approval(&mut tx, &client).await?;
        let selected = bills::open_for_approval(&mut tx, &user.firm_id, &client, &bills).await?;
        if selected.len() != bills.len() {
            return Err(AppError::NotFound);
        }
        if selected.iter().any(|b| b.payments > 0) {
            return Err(AppError::Conflict(
                "A selected bill is already approved.".into(),
            ));
        }

        // Re-read the cash position inside the lock (includes any payment a
        // concurrent approval just committed).
        let summary = client_summaries(&mut tx, &user.firm_id, today, Some(&client))
            .await?
            .into_iter()
            .next()
            .ok_or(AppError::NotFound)?;
        let currency = summary.cash.daily_burn.currency.clone();
        let available = summary.cash.available.clone().ok_or_else(|| {
            AppError::CashUnavailable("no bank balance has been read for this client yet".into())
        })?;
        let total: i64 = selected.iter().map(|b| b.balance_minor).sum();
        let verdict = evaluate_liquidity(&LiquidityInput {
            available,
            approved_unpaid: summary.cash.approved_unpaid.clone(),
            selected: Money::new(total, currency.clone()),
            daily_burn: summary.cash.daily_burn.clone(),
            buffer_days: summary.cash.buffer_days,
        })?;
        if !verdict.pass {
            audit::record(
                &mut tx,
                &user.firm_id,
                now,
                Entry {
                    actor: &user.email,
                    action: "approval.blocked",
                    subject: client.as_str(),
                    detail: json!({
                        "client": policy.name,
                        "bills": bills.iter().map(|b| b.as_str()).collect::<Vec<_>>(),
                        "rule": "liquidity_buffer",
                        "cash_after_minor": verdict.cash_after.minor,
                        "required_buffer_minor": verdict.required_buffer.minor,
                        "currency": currency.as_str(),
                    }),
                },
            )
            .await?;
            commit(tx).await?;
            return Err(AppError::Guardrail(verdict.reason()));
        }

        let mut created = Vec::with_capacity(selected.len());
        for b in &selected {
            let pid = PaymentId::generate();
            let arrival = payment_arrival_date(b.due()?, today);
            let amount = Money::new(b.balance_minor, currency.clone());
            payments::create_approved(
                &mut tx,
                NewPayment {
                    payment_id: &pid,
                    firm_id: &user.firm_id,
                    client_id: &client,
                    bill_id: &b.bill_id,
                    amount: &amount,
                    arrival,
                    approved_by: &user.user_id,
                },
                Step {
                    to: PaymentState::Approved,
                    owner: CustodyOwner::RowCol,
                    actor: &user.email,
                    evidence: format!(
                        "liquidity buffer passed: cash after {} ≥ required {}",
                        verdict.cash_after, verdict.required_buffer
                    ),
                    at: now,
                    audit_detail: Some(json!({
                        "client": policy.name,
                        "bill_id": b.bill_id,
                        "vendor": b.vendor_name,
                        "doc_number": b.doc_number,
                        "amount_minor": b.balance_minor,
                        "currency": currency.as_str(),
                        "payment_arrival_date": arrival.to_string(),
                        "cash_after_minor": verdict.cash_after.minor,
                        "required_buffer_minor": verdict.required_buffer.minor,
                    })),
                },
            )
            .await?;
            jobs::enqueue(
                &mut tx,
                &Job::ReleasePayment {
                    payment_id: pid.to_string(),
                },
                now,
                now,
            )
            .await?;
            created.push(pid);
        }
        commit(tx).await?;

        let message = format!(
            "Approved {} bill{} for {} ({}). Cash after: {}; buffer {}.",
            created.len(),
            if created.len() == 1 { "" } else { "s" },
            policy.name,
            Money::new(total, currency),
            verdict.cash_after,
            verdict.required_buffer
        );
        leptos_axum::redirect(&format!("/clients/{}?approved={}", client, created.len()));
        Ok(ApproveOutcome {
            payments: created,
            message,
        })
    }
}
