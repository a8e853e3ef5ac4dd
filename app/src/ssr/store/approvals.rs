//! Who approved what (`approval`), and the answers of batch approvals by
//! their key (`approval_batch_client`).
//!
//! One `approval` row per person and payment: the primary key is what makes
//! "nobody approves one payment twice" hold even under concurrent requests.

use super::db::{from_ms, to_ms, Tx};
use super::{is_unique_violation, StoreError, StoreResult};
use crate::model::{ClientId, FirmId, UserId};
use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

/// First or second approval of a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    First,
    Second,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::First => "first",
            Step::Second => "second",
        }
    }
}

pub struct NewApproval<'a> {
    pub payment_id: &'a str,
    pub user_id: &'a UserId,
    pub firm_id: &'a FirmId,
    pub step: Step,
    pub policy_version: i64,
    /// The rules evaluated and what each said.
    pub rules: serde_json::Value,
    pub override_reason: Option<&'a str>,
    pub at: DateTime<Utc>,
}

/// Record one approval. The same person approving the same payment again,
/// or a second "second approval", is a `Conflict`.
pub async fn record(tx: &mut Tx<'_>, a: NewApproval<'_>) -> StoreResult<()> {
    let res = sqlx::query(
        "insert into approval (payment_id, user_id, firm_id, step, policy_version, rules,
            override_reason, at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(a.payment_id)
    .bind(a.user_id.as_str())
    .bind(a.firm_id.as_str())
    .bind(a.step.as_str())
    .bind(a.policy_version)
    .bind(a.rules.to_string())
    .bind(a.override_reason)
    .bind(to_ms(a.at))
    .execute(&mut **tx)
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(
            "this payment already has that approval, and nobody approves a payment twice",
        )),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

/// One approval as the payment page shows it.
#[derive(Debug, Clone)]
pub struct ApprovalRow {
    pub step: String,
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub policy_version: i64,
    pub rules: String,
    pub override_reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// A payment's approvals, first first.
pub async fn of_payment(
    conn: &mut AnyConnection,
    payment_id: &str,
) -> StoreResult<Vec<ApprovalRow>> {
    type Raw = (
        String,
        String,
        String,
        String,
        i64,
        String,
        Option<String>,
        i64,
    );
    let rows: Vec<Raw> = sqlx::query_as(
        "select a.step, a.user_id, u.email, u.name, a.policy_version, a.rules,
                a.override_reason, a.at
         from approval a join app_user u on u.user_id = a.user_id
         where a.payment_id = $1 order by a.at, a.step",
    )
    .bind(payment_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(step, user_id, email, name, policy_version, rules, override_reason, at)| {
                ApprovalRow {
                    step,
                    user_id,
                    email,
                    name,
                    policy_version,
                    rules,
                    override_reason,
                    at: from_ms(at),
                }
            },
        )
        .collect())
}

/// The stored answer of a batch for one client, and who submitted it.
pub async fn batch_answer(
    conn: &mut AnyConnection,
    firm: &FirmId,
    batch_key: &str,
    client: &ClientId,
) -> StoreResult<Option<(String, String)>> {
    Ok(sqlx::query_as(
        "select user_id, answer from approval_batch_client
         where firm_id = $1 and batch_key = $2 and client_id = $3",
    )
    .bind(firm.as_str())
    .bind(batch_key)
    .bind(client.as_str())
    .fetch_optional(conn)
    .await?)
}

/// Keep a client's answer to a batch, in the transaction that decided it:
/// the decision and its answer commit together or not at all.
pub async fn store_batch_answer(
    tx: &mut Tx<'_>,
    firm: &FirmId,
    batch_key: &str,
    client: &ClientId,
    user: &UserId,
    answer: &serde_json::Value,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let res = sqlx::query(
        "insert into approval_batch_client (firm_id, batch_key, client_id, user_id, answer, created_at)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(firm.as_str())
    .bind(batch_key)
    .bind(client.as_str())
    .bind(user.as_str())
    .bind(answer.to_string())
    .bind(to_ms(at))
    .execute(&mut **tx)
    .await;
    match res {
        Err(e) if is_unique_violation(&e) => {
            Err(StoreError::Conflict("this batch was answered concurrently"))
        }
        other => other.map(|_| ()).map_err(Into::into),
    }
}
