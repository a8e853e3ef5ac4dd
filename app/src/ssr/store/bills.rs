//! Bills staged from the ledger (`staged_bill`): what QBO lists as open,
//! refreshed by each sync, and what an approval selects.

use super::db::{to_ms, Tx};
use super::{parse_date, StoreResult};
use crate::model::{BillId, ClientId, FirmId};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::AnyConnection;

/// An open bill as the ledger lists it.
pub struct LedgerBill<'a> {
    pub qbo_bill_id: &'a str,
    pub qbo_vendor_id: &'a str,
    pub vendor_name: &'a str,
    pub doc_number: Option<&'a str>,
    pub amount_minor: i64,
    pub balance_minor: i64,
    pub currency: &'a str,
    pub txn_date: NaiveDate,
    pub due_date: NaiveDate,
}

/// Insert or refresh one open bill of a client.
pub async fn upsert_open(
    tx: &mut Tx<'_>,
    firm_id: &str,
    client_id: &str,
    b: &LedgerBill<'_>,
    synced_at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "insert into staged_bill (bill_id, firm_id, client_id, qbo_bill_id, qbo_vendor_id, vendor_name,
            doc_number, amount_minor, balance_minor, currency, txn_date, due_date, status, synced_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'open', $13)
         on conflict (client_id, qbo_bill_id) do update set
            qbo_vendor_id = excluded.qbo_vendor_id, vendor_name = excluded.vendor_name,
            doc_number = excluded.doc_number, amount_minor = excluded.amount_minor,
            balance_minor = excluded.balance_minor, currency = excluded.currency,
            txn_date = excluded.txn_date, due_date = excluded.due_date,
            status = 'open', synced_at = excluded.synced_at",
    )
    .bind(BillId::generate().as_str())
    .bind(firm_id)
    .bind(client_id)
    .bind(b.qbo_bill_id)
    .bind(b.qbo_vendor_id)
    .bind(b.vendor_name)
    .bind(b.doc_number)
    .bind(b.amount_minor)
    .bind(b.balance_minor)
    .bind(b.currency)
    .bind(b.txn_date.to_string())
    .bind(b.due_date.to_string())
    .bind(to_ms(synced_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The ledger shows one bill paid or deleted (a release re-read it): close
/// it without waiting for the next sync.
pub async fn close_one(
    tx: &mut Tx<'_>,
    client_id: &str,
    qbo_bill_id: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "update staged_bill set status = 'closed', synced_at = $1
         where client_id = $2 and qbo_bill_id = $3 and status = 'open'",
    )
    .bind(to_ms(at))
    .bind(client_id)
    .bind(qbo_bill_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Bills the ledger no longer lists as open (paid or voided there) are
/// closed: everything of the client's not refreshed by this sync.
pub async fn close_unlisted(
    tx: &mut Tx<'_>,
    client_id: &str,
    synced_at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "update staged_bill set status = 'closed', synced_at = $1
         where client_id = $2 and status = 'open' and synced_at < $1",
    )
    .bind(to_ms(synced_at))
    .bind(client_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A bill an approval selected.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SelectedBill {
    pub bill_id: String,
    pub qbo_bill_id: String,
    pub amount_minor: i64,
    pub balance_minor: i64,
    pub currency: String,
    pub due_date: String,
    pub txn_date: String,
    pub qbo_vendor_id: String,
    pub vendor_name: String,
    pub doc_number: Option<String>,
    /// How many live payments the bill already has (0 or 1); one that ended
    /// without paying (cancelled, failed, rejected) no longer holds it.
    pub payments: i64,
}

impl SelectedBill {
    pub fn due(&self) -> StoreResult<NaiveDate> {
        parse_date(&self.due_date)
    }

    /// What the approval rules judge of it.
    pub fn facts(&self) -> StoreResult<crate::domain::rules::BillFacts> {
        Ok(crate::domain::rules::BillFacts {
            bill_id: self.bill_id.clone(),
            vendor_id: self.qbo_vendor_id.clone(),
            vendor_name: self.vendor_name.clone(),
            doc_number: self.doc_number.clone(),
            amount_minor: self.balance_minor,
            currency: self.currency.clone(),
            txn_date: parse_date(&self.txn_date)?,
            due_date: self.due()?,
        })
    }
}

/// The open bills among `bills` of the firm's client, read in the
/// approval's transaction.
pub async fn open_for_approval(
    conn: &mut AnyConnection,
    firm: &FirmId,
    client: &ClientId,
    bills: &[BillId],
) -> StoreResult<Vec<SelectedBill>> {
    if bills.is_empty() {
        return Ok(vec![]);
    }
    let placeholders: Vec<String> = (0..bills.len()).map(|i| format!("${}", i + 3)).collect();
    let sql = format!(
        "select b.bill_id, b.qbo_bill_id, b.amount_minor, b.balance_minor, b.currency, b.due_date,
                b.txn_date, b.qbo_vendor_id,
                b.vendor_name, b.doc_number,
                (select count(*) from payment p where p.bill_id = b.bill_id
                   and p.state not in ({})) as payments
         from staged_bill b
         where b.firm_id = $1 and b.client_id = $2 and b.status = 'open' and b.bill_id in ({})",
        super::read_models::dead_states(),
        placeholders.join(", ")
    );
    let mut q = sqlx::query_as::<_, SelectedBill>(&sql)
        .bind(firm.as_str())
        .bind(client.as_str());
    for b in bills {
        q = q.bind(b.as_str());
    }
    Ok(q.fetch_all(conn).await?)
}

/// What the release and verify jobs need of a payment's bill.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BillOfPayment {
    pub qbo_bill_id: String,
    pub qbo_vendor_id: String,
    pub vendor_name: String,
    pub doc_number: Option<String>,
    pub txn_date: String,
    pub due_date: String,
}

impl BillOfPayment {
    pub fn issued(&self) -> StoreResult<NaiveDate> {
        parse_date(&self.txn_date)
    }

    pub fn due(&self) -> StoreResult<NaiveDate> {
        parse_date(&self.due_date)
    }
}

pub async fn of_payment(conn: &mut AnyConnection, payment_id: &str) -> StoreResult<BillOfPayment> {
    sqlx::query_as(
        "select b.qbo_bill_id, b.qbo_vendor_id, b.vendor_name, b.doc_number, b.txn_date, b.due_date
         from payment p join staged_bill b on b.bill_id = p.bill_id where p.payment_id = $1",
    )
    .bind(payment_id)
    .fetch_optional(conn)
    .await?
    .ok_or(super::StoreError::NotFound)
}

/// Every bill of the client the ledger ever listed (open or closed: paid
/// ones included), for the duplicate rule.
pub async fn all_of_client(
    conn: &mut AnyConnection,
    client: &ClientId,
) -> StoreResult<Vec<crate::domain::rules::OtherBill>> {
    let rows: Vec<(String, String, Option<String>, i64, String)> = sqlx::query_as(
        "select bill_id, qbo_vendor_id, doc_number, amount_minor, txn_date
         from staged_bill where client_id = $1",
    )
    .bind(client.as_str())
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(bill_id, vendor_id, doc_number, amount_minor, txn_date)| {
            Ok(crate::domain::rules::OtherBill {
                bill_id,
                vendor_id,
                doc_number,
                amount_minor,
                txn_date: parse_date(&txn_date)?,
            })
        })
        .collect()
}

/// The vendors the client has paid before: a bill the ledger shows paid
/// (closed), or a RowCol payment that has not ended without paying. Any
/// other vendor's bill is a first payment.
pub async fn known_vendors(
    conn: &mut AnyConnection,
    client: &ClientId,
) -> StoreResult<std::collections::HashSet<String>> {
    let rows: Vec<String> = sqlx::query_scalar(&format!(
        "select distinct b.qbo_vendor_id from staged_bill b
         where b.client_id = $1
           and (b.status = 'closed'
                or exists (select 1 from payment p where p.bill_id = b.bill_id
                           and p.state not in ({})))",
        super::read_models::dead_states()
    ))
    .bind(client.as_str())
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().collect())
}
