use crate::error::AppError;
use crate::model::{ApproveOutcome, BatchAnswer};
use leptos::prelude::*;

/// Approve a selection of one client's open bills, judged by every rule
/// (`ssr::decide`) with fresh data. If a rule refuses, nothing is approved
/// and the reason is returned as an error (422 a guardrail, 409 a rail to
/// reconnect, 503 stale cash). Otherwise each bill becomes a payment —
/// `approved` with its release job, or `awaiting_second_approval` under
/// dual control — in one transaction.
#[server(endpoint = "approve_bills")]
pub async fn approve_bills(
    client_id: String,
    #[server(default)] bill_ids: Vec<String>,
) -> Result<ApproveOutcome, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::approve(client_id, bill_ids).await)
}

/// Approve a selection across the portfolio: per client all or nothing,
/// idempotent by `batch_key` (the same key answers the same, however often
/// it is sent). `override_reason` (admins only, 10 characters or more)
/// overrides the buffer and possible-duplicate rules; never dual control.
#[server(endpoint = "approve_batch")]
pub async fn approve_batch(
    batch_key: String,
    #[server(default)] bill_ids: Vec<String>,
    #[server(default)] override_reason: Option<String>,
) -> Result<BatchAnswer, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::batch(batch_key, bill_ids, override_reason).await)
}

/// The stored answer of a batch the signed-in user submitted (the results
/// page after a plain form post).
#[server(endpoint = "batch_result")]
pub async fn batch_result(batch_key: String) -> Result<BatchAnswer, AppError> {
    use crate::ssr::auth::respond;
    respond(ssr::result(batch_key).await)
}

/// The second approval of a payment waiting for it: another person, fresh
/// cash, every rule again.
#[server(endpoint = "approve_second")]
pub async fn approve_second(payment_id: String) -> Result<String, AppError> {
    use crate::ssr::auth::{current_user, respond};
    respond(
        async {
            let user = current_user().await?;
            crate::ssr::decide::approve_second(&user, &payment_id).await
        }
        .await,
    )
}

/// Reject a payment waiting for its second approval, with a reason.
#[server(endpoint = "reject_payment")]
pub async fn reject_payment(
    payment_id: String,
    #[server(default)] reason: String,
) -> Result<String, AppError> {
    use crate::ssr::auth::{current_user, respond};
    respond(
        async {
            let user = current_user().await?;
            crate::ssr::decide::reject(&user, &payment_id, &reason).await
        }
        .await,
    )
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use crate::error::AppError;
    use crate::model::*;
    use crate::ssr::auth::{current_user, state};
    use crate::ssr::decide::{
        check_override, decide_client, decide_prepared, non_blank, prepare, Prep, Request,
        MAX_BILLS,
    };
    use crate::ssr::store::decisions;
    use futures::future::{BoxFuture, FutureExt};
    use futures::StreamExt;

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

    /// One client's approval for a signed-in advisor, as `approve_bills`
    /// has always answered it: a refusal is an error. `resolves` closes a
    /// hygiene item in the same transaction (a retry of a failed payment).
    pub async fn approve_as(
        user: &crate::ssr::auth::CurrentUser,
        client: &ClientId,
        bills: Vec<BillId>,
        resolves: Option<&str>,
    ) -> Result<ApproveOutcome, AppError> {
        let answer = decide_client(
            user,
            Request {
                client,
                bills,
                override_reason: None,
                resolves,
                batch_key: None,
            },
        )
        .await?;
        if let Some(r) = answer.refused.first() {
            return Err(match r.reason_code.as_str() {
                "stale_data" => AppError::CashUnavailable(answer.message),
                "connection_unhealthy" => AppError::Conflict(answer.message),
                "buffer" => AppError::Guardrail(answer.message),
                code => AppError::Guardrail(format!("{code}: {}", answer.message)),
            });
        }
        Ok(ApproveOutcome {
            payments: answer
                .approved
                .iter()
                .chain(&answer.awaiting_second_approval)
                .map(|b| b.payment_id.clone())
                .collect(),
            message: answer.message,
        })
    }

    /// The most bills one batch may hold (over all its clients).
    pub const MAX_BATCH_BILLS: usize = 2_000;
    /// How many clients' rails a batch reads at once: each client has its
    /// own bank and QuickBooks company, so this is the batch's own pace,
    /// well inside any one rail's limits.
    const PARALLEL_READS: usize = 8;

    fn check_key(batch_key: &str) -> Result<&str, AppError> {
        let key = batch_key.trim();
        if key.is_empty()
            || key.len() > 100
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(AppError::Validation(
                "batch_key: 1 to 100 letters, digits, '-' or '_'.".into(),
            ));
        }
        Ok(key)
    }

    pub async fn batch(
        batch_key: String,
        bill_ids: Vec<String>,
        override_reason: Option<String>,
    ) -> Result<BatchAnswer, AppError> {
        let user = current_user().await?;
        user.require(Role::Advisor)?;
        let override_reason = non_blank(&override_reason);
        check_override(&user, override_reason)?;
        let key = check_key(&batch_key)?;
        let mut bills: Vec<BillId> = bill_ids
            .iter()
            .map(|b| BillId::parse(b).map_err(|e| AppError::Validation(e.to_string())))
            .collect::<Result<_, _>>()?;
        bills.sort();
        bills.dedup();
        if bills.len() > MAX_BATCH_BILLS {
            return Err(AppError::Validation(format!(
                "Approve at most {MAX_BATCH_BILLS} bills in one batch."
            )));
        }
        let st = state()?;
        let groups = {
            let mut conn = st.db.acquire().await?;
            decisions::bills_by_client(&mut conn, &user.firm_id, &bills).await?
        };
        let found: usize = groups.iter().map(|(_, _, b)| b.len()).sum();
        if found != bills.len() {
            return Err(AppError::NotFound);
        }
        if groups.is_empty() {
            // Nothing selected: the answer of an earlier submit of this key,
            // or a plain "select something".
            let stored = result(key.to_owned()).await?;
            if !stored.clients.is_empty() {
                return Ok(stored);
            }
            return Err(AppError::Validation(
                "Select at least one bill to approve.".into(),
            ));
        }
        if groups.iter().any(|(_, _, ids)| ids.len() > MAX_BILLS) {
            return Err(AppError::Validation(format!(
                "Approve at most {MAX_BILLS} bills of one client at once."
            )));
        }
        let requests: Vec<Request<'_>> = groups
            .iter()
            .map(|(client, _, ids)| Request {
                client,
                bills: ids.clone(),
                override_reason,
                resolves: None,
                batch_key: Some(key),
            })
            .collect();
        // The rails are read for several clients at once (each its own
        // bank and QuickBooks company); the decisions are then taken one
        // client after another, each in its own lock and transaction.
        // (Boxed: the stream then holds no closure over borrowed requests,
        // which the server function's `Send` future could not name.)
        let reads: Vec<BoxFuture<'_, Result<Prep, AppError>>> = requests
            .iter()
            .map(|req| prepare(&user, req).boxed())
            .collect();
        let prepared: Vec<Result<Prep, AppError>> = futures::stream::iter(reads)
            .buffered(PARALLEL_READS)
            .collect()
            .await;
        let mut clients = Vec::with_capacity(groups.len());
        for ((req, (client, name, ids)), prep) in requests.iter().zip(&groups).zip(prepared) {
            let answer = match prep {
                Ok(Prep::Answered(a)) => Ok(a),
                Ok(Prep::Ready(p)) => decide_prepared(&user, req, p).await,
                Err(e) => Err(e),
            };
            // A client whose selection could not even be judged (a bill
            // approved meanwhile by someone else, gone from the ledger) is
            // refused with the reason; the other clients go on.
            clients.push(match answer {
                Ok(a) => a,
                Err(e @ (AppError::Conflict(_) | AppError::NotFound)) => {
                    not_judged(client, name, ids, &e)
                }
                Err(e) => return Err(e),
            });
        }
        leptos_axum::redirect(&format!("/approvals?batch={key}"));
        Ok(BatchAnswer {
            batch_key: key.to_owned(),
            clients,
        })
    }

    /// A client's part of a batch refused as a whole because it could not
    /// be judged (`NotFound`: a bill no longer open; `Conflict`: decided
    /// meanwhile).
    fn not_judged(
        client: &ClientId,
        name: &str,
        ids: &[BillId],
        e: &AppError,
    ) -> ClientBatchAnswer {
        let (code, message) = match e {
            AppError::NotFound => (
                "not_open",
                "A selected bill is no longer open (paid or removed in QuickBooks).".to_owned(),
            ),
            other => ("already_decided", other.to_string()),
        };
        ClientBatchAnswer {
            client_id: client.clone(),
            client_name: name.to_owned(),
            approved: vec![],
            awaiting_second_approval: vec![],
            refused: ids
                .iter()
                .map(|b| Refusal {
                    bill_id: b.clone(),
                    reason_code: code.into(),
                    message: message.clone(),
                })
                .collect(),
            message,
        }
    }

    pub async fn result(batch_key: String) -> Result<BatchAnswer, AppError> {
        let user = current_user().await?;
        let key = check_key(&batch_key)?;
        let st = state()?;
        let mut conn = st.db.acquire().await?;
        let clients = decisions::batch_answers(&mut conn, &user.firm_id, &user.user_id, key)
            .await?
            .into_iter()
            .map(|a| {
                serde_json::from_str::<ClientBatchAnswer>(&a).map_err(|e| {
                    tracing::error!(error = %e, "stored batch answer does not parse");
                    AppError::Internal
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BatchAnswer {
            batch_key: key.to_owned(),
            clients,
        })
    }
}
