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
    use crate::domain::guardrails::{evaluate_liquidity, LiquidityInput};
    use crate::error::AppError;
    use crate::model::*;
    use crate::ssr::audit::{self, Entry};
    use crate::ssr::auth::{current_user, state};
    use crate::ssr::db::{from_ms, to_ms};
    use crate::ssr::jobs::{enqueue, Job};
    use crate::ssr::ports::PortError;
    use crate::ssr::queries::client_summaries;
    use chrono::NaiveDate;
    use serde_json::json;
    use sqlx::Row;

    struct SelectedBill {
        bill_id: String,
        amount_minor: i64,
        due: NaiveDate,
        vendor: String,
        doc: Option<String>,
    }

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

        // The client must belong to the caller's firm.
        let crow = sqlx::query(
            "select c.name, c.cash_max_age_secs, s.as_of from client c
             left join cash_snapshot s on s.client_id = c.client_id
             where c.firm_id = $1 and c.client_id = $2",
        )
        .bind(user.firm_id.as_str())
        .bind(client.as_str())
        .fetch_optional(&st.db.pool)
        .await?
        .ok_or(AppError::NotFound)?;
        let client_name: String = crow.try_get("name")?;
        let max_age: i64 = crow.try_get("cash_max_age_secs")?;
        let as_of: Option<i64> = crow.try_get("as_of")?;

        // Fresh cash: refresh the bank balance when it is older than policy.
        let now = st.clock.now();
        let stale = as_of.is_none_or(|t| (now - from_ms(t)).num_seconds() > max_age);
        if stale {
            st.cash.refresh_cash(&client).await.map_err(|e| match e {
                PortError::LoginRequired => AppError::CashUnavailable(
                    "the bank connection needs to be re-authorised (see the hygiene tray)".into(),
                ),
                PortError::Unavailable(m) => AppError::CashUnavailable(m),
            })?;
        }

        let today = st.clock.today();
        let mut tx = st.db.pool.begin().await?;
        // Take the client's write lock first (a no-op update), so two
        // concurrent approvals for one client are checked one after the other
        // against each other's commitments.
        sqlx::query("update client set buffer_days = buffer_days where client_id = $1")
            .bind(client.as_str())
            .execute(&mut *tx)
            .await?;

        let placeholders: Vec<String> = (0..bills.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "select b.bill_id, b.balance_minor, b.due_date, b.vendor_name, b.doc_number,
                    (select count(*) from payment p where p.bill_id = b.bill_id) as paid
             from staged_bill b
             where b.firm_id = $1 and b.client_id = $2 and b.status = 'open' and b.bill_id in ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(&sql)
            .bind(user.firm_id.as_str())
            .bind(client.as_str());
        for b in &bills {
            q = q.bind(b.as_str());
        }
        let rows = q.fetch_all(&mut *tx).await?;
        if rows.len() != bills.len() {
            return Err(AppError::NotFound);
        }
        let mut selected = Vec::with_capacity(rows.len());
        for r in &rows {
            if r.try_get::<i64, _>("paid")? > 0 {
                return Err(AppError::Conflict(
                    "A selected bill is already approved.".into(),
                ));
            }
            selected.push(SelectedBill {
                bill_id: r.try_get("bill_id")?,
                amount_minor: r.try_get("balance_minor")?,
                due: r
                    .try_get::<String, _>("due_date")?
                    .parse()
                    .map_err(|_| AppError::Internal)?,
                vendor: r.try_get("vendor_name")?,
                doc: r.try_get("doc_number")?,
            });
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
        let total: i64 = selected.iter().map(|b| b.amount_minor).sum();
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
                        "client": client_name,
                        "bills": bills.iter().map(|b| b.as_str()).collect::<Vec<_>>(),
                        "rule": "liquidity_buffer",
                        "cash_after_minor": verdict.cash_after.minor,
                        "required_buffer_minor": verdict.required_buffer.minor,
                        "currency": currency.as_str(),
                    }),
                },
            )
            .await?;
            tx.commit().await?;
            return Err(AppError::Guardrail(verdict.reason()));
        }

        let mut created = Vec::with_capacity(selected.len());
        for b in &selected {
            let pid = PaymentId::generate();
            let arrival = payment_arrival_date(b.due, today);
            let inserted = sqlx::query(
                "insert into payment (payment_id, firm_id, client_id, bill_id, amount_minor, currency,
                    state, payment_arrival_date, approved_by, created_at, updated_at)
                 values ($1, $2, $3, $4, $5, $6, 'approved', $7, $8, $9, $9)",
            )
            .bind(pid.as_str())
            .bind(user.firm_id.as_str())
            .bind(client.as_str())
            .bind(&b.bill_id)
            .bind(b.amount_minor)
            .bind(currency.as_str())
            .bind(arrival.to_string())
            .bind(user.user_id.as_str())
            .bind(to_ms(now))
            .execute(&mut *tx)
            .await;
            if let Err(sqlx::Error::Database(db)) = &inserted {
                if db.is_unique_violation() {
                    return Err(AppError::Conflict(
                        "A selected bill is already approved.".into(),
                    ));
                }
            }
            inserted?;
            let evidence = format!(
                "liquidity buffer passed: cash after {} ≥ required {}",
                verdict.cash_after, verdict.required_buffer
            );
            sqlx::query(
                "insert into custody_event (payment_id, state, owner, actor, evidence, at)
                 values ($1, 'approved', 'RowCol', $2, $3, $4)",
            )
            .bind(pid.as_str())
            .bind(&user.email)
            .bind(&evidence)
            .bind(to_ms(now))
            .execute(&mut *tx)
            .await?;
            audit::record(
                &mut tx,
                &user.firm_id,
                now,
                Entry {
                    actor: &user.email,
                    action: "payment.approved",
                    subject: pid.as_str(),
                    detail: json!({
                        "client": client_name,
                        "bill_id": b.bill_id,
                        "vendor": b.vendor,
                        "doc_number": b.doc,
                        "amount_minor": b.amount_minor,
                        "currency": currency.as_str(),
                        "payment_arrival_date": arrival.to_string(),
                        "cash_after_minor": verdict.cash_after.minor,
                        "required_buffer_minor": verdict.required_buffer.minor,
                    }),
                },
            )
            .await?;
            enqueue(
                &mut tx,
                &Job::ReleasePayment {
                    payment_id: pid.to_string(),
                },
                now,
                Some(&format!("release:{pid}")),
            )
            .await?;
            created.push(pid);
        }
        tx.commit().await?;

        let message = format!(
            "Approved {} bill{} for {} ({}). Cash after: {}; buffer {}.",
            created.len(),
            if created.len() == 1 { "" } else { "s" },
            client_name,
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
