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
    use crate::ssr::store::{bills, clients, commit, connections, from_ms, hygiene, jobs};
    use serde_json::json;

    pub async fn approve(
        client_id: String,
        bill_ids: Vec<String>,
    ) -> Result<ApproveOutcome, AppError> {
        let user = current_user().await?;
        user.require(Role::Advisor)?;
        let client = ClientId::parse(&client_id).map_err(|_| AppError::NotFound)?;
        let bills: Vec<BillId> = bill_ids
            .iter()
            .map(|b| BillId::parse(b).map_err(|e| AppError::Validation(e.to_string())))
            .collect::<Result<_, _>>()?;
        let outcome = approve_as(&user, &client, bills, None).await?;
        leptos_axum::redirect(&format!(
            "/clients/{}?approved={}",
            client,
            outcome.payments.len()
        ));
        Ok(outcome)
    }

    /// Bring the client's bank data within policy before judging on it:
    /// re-read the balance and the transactions when they are older than
    /// the policy allows. Failing to is not fatal here; the freshness check
    /// inside the approval refuses if the data is still stale.
    async fn refresh_if_stale(
        st: &crate::ssr::state::AppState,
        client: &ClientId,
        policy: &clients::ApprovalPolicy,
    ) -> Result<(), AppError> {
        let now = st.clock.now();
        let too_old = |as_of: Option<i64>, max: i64| {
            as_of.is_none_or(|t| (now - from_ms(t)).num_seconds() > max)
        };
        let to_error = |e: PortError| match e {
            PortError::LoginRequired => AppError::CashUnavailable(
                "the bank connection needs to be re-authorised (see the hygiene tray)".into(),
            ),
            PortError::Unavailable(m) => AppError::CashUnavailable(m),
        };
        if too_old(policy.cash_as_of, policy.cash_max_age_secs) {
            st.cash.refresh_cash(client).await.map_err(to_error)?;
        }
        if too_old(policy.history_as_of, policy.bank_history_max_age_secs) {
            st.cash
                .refresh_bank_history(client)
                .await
                .map_err(to_error)?;
        }
        Ok(())
    }

    /// The approval itself, for a signed-in advisor: fresh data, one
    /// currency, the liquidity guardrail, then each bill becomes an approved
    /// payment with its release job — one transaction. `resolves` closes a
    /// hygiene item in the same transaction (a retry of a failed payment),
    /// so a retry happens exactly once.
    pub async fn approve_as(
        user: &crate::ssr::auth::CurrentUser,
        client: &ClientId,
        mut bills: Vec<BillId>,
        resolves: Option<&str>,
    ) -> Result<ApproveOutcome, AppError> {
        user.require(Role::Advisor)?;
        let st = state()?;
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
            clients::approval_policy(&mut conn, &user.firm_id, client).await?
        };
        refresh_if_stale(&st, client, &policy).await?;

        let now = st.clock.now();
        let today = st.clock.today();
        let mut tx = st.db.begin().await?;
        // Two concurrent approvals for one client are checked one after the
        // other against each other's commitments.
        clients::lock_for_approval(&mut tx, client).await?;
        let selected = bills::open_for_approval(&mut tx, &user.firm_id, client, &bills).await?;
        if selected.len() != bills.len() {
            return Err(AppError::NotFound);
        }
        if selected.iter().any(|b| b.payments > 0) {
            return Err(AppError::Conflict(
                "A selected bill is already approved.".into(),
            ));
        }
        // A rail that needs reconnecting (or was never connected) cannot be
        // trusted: its data may be stale and its writes will not go through.
        let health = connections::rail_health(&mut tx, client.as_str()).await?;
        let issue = crate::ssr::store::read_models::connection_issue(&health)
            .filter(|_| !crate::ssr::planted::active(crate::ssr::planted::Bug::NoConnectionCheck));
        if let Some(issue) = issue {
            audit_blocked(
                &mut tx,
                user,
                &policy.name,
                client,
                &bills,
                json!({ "rule": "connection_unhealthy", "why": issue }),
                now,
            )
            .await?;
            commit(tx).await?;
            return Err(AppError::Conflict(format!(
                "Approvals for {} are paused: {issue}. An admin can fix it on the Connections page.",
                policy.name
            )));
        }
        // Re-read the cash position inside the lock (includes any payment a
        // concurrent approval just committed).
        let summary = client_summaries(&mut tx, &user.firm_id, now, today, Some(client))
            .await?
            .into_iter()
            .next()
            .ok_or(AppError::NotFound)?;
        let currency = summary.cash.daily_burn.currency.clone();
        let available = summary.cash.available.clone().ok_or_else(|| {
            AppError::CashUnavailable("no bank balance has been read for this client yet".into())
        })?;
        let freshness = summary.cash.freshness(now);
        if !freshness.is_fresh() {
            return Err(AppError::CashUnavailable(format!(
                "stale data, nothing was approved: {}",
                freshness.describe()
            )));
        }

        // One currency: the client's bank account's. A bill in another
        // currency cannot be judged against this balance (nor paid from it).
        if let Some(b) = selected.iter().find(|b| b.currency != currency.as_str()) {
            audit_blocked(
                &mut tx,
                user,
                &policy.name,
                client,
                &bills,
                json!({
                    "rule": "currency_mismatch",
                    "bill_id": b.bill_id,
                    "bill_currency": b.currency,
                    "currency": currency.as_str(),
                }),
                now,
            )
            .await?;
            commit(tx).await?;
            return Err(AppError::Guardrail(format!(
                "currency_mismatch: bill {} is in {}, {}'s bank account is in {}.",
                b.doc_number.as_deref().unwrap_or(&b.bill_id),
                b.currency,
                policy.name,
                currency.as_str()
            )));
        }
        let total = selected.iter().try_fold(0i64, |acc, b| {
            acc.checked_add(b.balance_minor)
                .ok_or_else(|| AppError::Validation("The selection's total is too large.".into()))
        })?;
        let verdict = evaluate_liquidity(&LiquidityInput {
            available,
            approved_unpaid: summary.cash.approved_unpaid.clone(),
            selected: Money::new(total, currency.clone()),
            daily_burn: summary.cash.daily_burn.clone(),
            buffer_days: summary.cash.buffer_days,
        })?;
        if !verdict.pass {
            audit_blocked(
                &mut tx,
                user,
                &policy.name,
                client,
                &bills,
                json!({
                    "rule": "liquidity_buffer",
                    "cash_after_minor": verdict.cash_after.minor,
                    "required_buffer_minor": verdict.required_buffer.minor,
                    "currency": currency.as_str(),
                }),
                now,
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
                    client_id: client,
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
        if let Some(hygiene_id) = resolves {
            hygiene::close(
                &mut tx,
                &user.firm_id,
                hygiene_id,
                hygiene::Closed::Resolved,
                now,
            )
            .await?;
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
        Ok(ApproveOutcome {
            payments: created,
            message,
        })
    }

    /// A refused approval is evidence too: who tried what, and which rule
    /// said no.
    async fn audit_blocked(
        tx: &mut crate::ssr::store::Tx<'_>,
        user: &crate::ssr::auth::CurrentUser,
        client_name: &str,
        client: &ClientId,
        bills: &[BillId],
        why: serde_json::Value,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), AppError> {
        let mut detail = json!({
            "client": client_name,
            "bills": bills.iter().map(|b| b.as_str()).collect::<Vec<_>>(),
        });
        if let (Some(d), Some(w)) = (detail.as_object_mut(), why.as_object()) {
            d.extend(w.clone());
        }
        audit::record(
            tx,
            &user.firm_id,
            now,
            Entry {
                actor: &user.email,
                action: "approval.blocked",
                subject: client.as_str(),
                detail,
            },
        )
        .await?;
        Ok(())
    }
}
