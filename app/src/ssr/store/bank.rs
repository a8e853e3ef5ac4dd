//! What the bank shows (`cash_snapshot`, `bank_txn`): the latest balance per
//! client and the transactions synced from Plaid.

use super::db::{to_ms, Tx};
use super::StoreResult;
use crate::model::Money;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::AnyConnection;

/// Store a freshly read balance as the client's cash snapshot.
pub async fn save_balance(
    conn: &mut AnyConnection,
    client_id: &str,
    account_id: &str,
    available: &Money,
    current: &Money,
    as_of: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "insert into cash_snapshot (client_id, account_id, available_minor, current_minor, currency, as_of)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (client_id) do update set account_id = excluded.account_id,
            available_minor = excluded.available_minor, current_minor = excluded.current_minor,
            currency = excluded.currency, as_of = excluded.as_of",
    )
    .bind(client_id)
    .bind(account_id)
    .bind(available.minor)
    .bind(current.minor)
    .bind(available.currency.as_str())
    .bind(to_ms(as_of))
    .execute(conn)
    .await?;
    Ok(())
}

/// A bank transaction as Plaid reports it (positive = money out).
pub struct BankTxn<'a> {
    pub txn_id: &'a str,
    pub account_id: &'a str,
    pub amount: &'a Money,
    pub date: NaiveDate,
    pub name: &'a str,
    pub pending: bool,
    /// On a posted transaction: the pending one it replaces.
    pub pending_transaction_id: Option<&'a str>,
    /// When RowCol stored it (kept from the first time it was seen).
    pub seen_at: DateTime<Utc>,
}

/// Insert or update a transaction (added or modified on Plaid).
pub async fn upsert_txn(tx: &mut Tx<'_>, client_id: &str, t: &BankTxn<'_>) -> StoreResult<()> {
    sqlx::query(
        "insert into bank_txn (client_id, txn_id, account_id, amount_minor, currency, txn_date, name, pending,
            pending_transaction_id, seen_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         on conflict (client_id, txn_id) do update set amount_minor = excluded.amount_minor,
            txn_date = excluded.txn_date, name = excluded.name, pending = excluded.pending,
            pending_transaction_id = excluded.pending_transaction_id",
    )
    .bind(client_id)
    .bind(t.txn_id)
    .bind(t.account_id)
    .bind(t.amount.minor)
    .bind(t.amount.currency.as_str())
    .bind(t.date.to_string())
    .bind(t.name)
    .bind(i64::from(t.pending))
    .bind(t.pending_transaction_id)
    .bind(to_ms(t.seen_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Plaid removed a transaction: it is marked, never deleted, so what it
/// evidenced stays inspectable. Removed transactions count nowhere (burn,
/// outflow, matching).
pub async fn mark_removed(
    tx: &mut Tx<'_>,
    client_id: &str,
    txn_id: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "update bank_txn set removed_at = $1 where client_id = $2 and txn_id = $3 and removed_at is null",
    )
    .bind(to_ms(at))
    .bind(client_id)
    .bind(txn_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The live (not removed) posted transaction that replaces pending
/// transaction `pending_txn_id`, if the bank has sent it.
pub async fn replacement_of(
    conn: &mut AnyConnection,
    client_id: &str,
    pending_txn_id: &str,
) -> StoreResult<Option<String>> {
    Ok(sqlx::query_scalar(
        "select txn_id from bank_txn
         where client_id = $1 and pending_transaction_id = $2 and removed_at is null
         order by txn_date, txn_id limit 1",
    )
    .bind(client_id)
    .bind(pending_txn_id)
    .fetch_optional(conn)
    .await?)
}

/// Is the bank debit of payment `payment_id` reflected in what the bank
/// shows? True when a live (not removed) transaction, pending or posted,
/// evidences it; evidence follows a pending transaction to its posted one.
pub async fn debit_reflected(conn: &mut AnyConnection, payment_id: &str) -> StoreResult<bool> {
    let n: i64 = sqlx::query_scalar(
        "select count(*) from payment p
         join bank_txn t on t.client_id = p.client_id and t.txn_id = p.plaid_txn_id
         where p.payment_id = $1 and t.removed_at is null",
    )
    .bind(payment_id)
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}

/// A transaction that may evidence a payment.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MatchingTxn {
    pub txn_id: String,
    pub txn_date: String,
    pub name: String,
}

/// The live (not removed) transaction of exactly `amount_minor` in the bank
/// window around `paid` (see [`crate::domain::matching`]) nearest that date,
/// not already evidencing another payment than `payment_id`. Only a
/// candidate: the claim itself is `payments::set_bank_evidence`, unique per
/// transaction.
pub async fn find_payment_evidence(
    conn: &mut AnyConnection,
    client_id: &str,
    amount_minor: i64,
    paid: NaiveDate,
    payment_id: &str,
) -> StoreResult<Option<MatchingTxn>> {
    let (from, to) = crate::domain::matching::bank_window(paid);
    let found: Vec<MatchingTxn> = sqlx::query_as(
        "select t.txn_id, t.txn_date, t.name from bank_txn t
         where t.client_id = $1 and t.amount_minor = $2 and t.txn_date >= $3 and t.txn_date <= $4
           and t.removed_at is null
           and not exists (select 1 from payment p where p.plaid_txn_id = t.txn_id and p.payment_id <> $5)
         order by t.txn_date, t.txn_id",
    )
    .bind(client_id)
    .bind(amount_minor)
    .bind(from.to_string())
    .bind(to.to_string())
    .bind(payment_id)
    .fetch_all(&mut *conn)
    .await?;
    let dates = found
        .iter()
        .map(|t| super::parse_date(&t.txn_date))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(crate::domain::matching::nearest_to_paid(&dates, paid).map(|i| found[i].clone()))
}

/// A live transaction no payment holds as evidence.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UnclaimedTxn {
    pub txn_id: String,
    pub txn_date: String,
    pub amount_minor: i64,
}

/// The client's live transactions dated `from..=to` that evidence no
/// payment, in date order: one read for all of a client's waiting payments
/// (matched in memory by [`crate::domain::matching::assign`]).
pub async fn unclaimed_between(
    conn: &mut AnyConnection,
    client_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> StoreResult<Vec<UnclaimedTxn>> {
    Ok(sqlx::query_as(
        "select t.txn_id, t.txn_date, t.amount_minor from bank_txn t
         where t.client_id = $1 and t.txn_date >= $2 and t.txn_date <= $3
           and t.removed_at is null
           and not exists (select 1 from payment p where p.plaid_txn_id = t.txn_id)
         order by t.txn_date, t.txn_id",
    )
    .bind(client_id)
    .bind(from.to_string())
    .bind(to.to_string())
    .fetch_all(conn)
    .await?)
}
