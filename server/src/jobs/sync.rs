//! Observe: pull a client's open bills (QBO), Ramp bill-pay setup, bank
//! balance and transactions (Plaid) into RowCol's staging tables.

use super::JobError;
use crate::connections::{rail_auth, with_auth};
use crate::rails::{RailAuth, RailError};
use crate::services::Services;
use app::model::Rail;
use app::ssr::job_kinds::{Job, SYNC_EVERY};
use app::ssr::store::bank::{self, BankTxn};
use app::ssr::store::bills::{self, LedgerBill};
use app::ssr::store::connections::{self, VendorMapping};
use app::ssr::store::{clients, commit, job_queue, StoreError};

/// Re-read every source of one client. Each source is read on its own: a
/// bank that needs re-authorising does not stop the ledger's bills from
/// being read (the stale bank data shows as `stale`, and the hygiene tray
/// asks for the login once). Any other failure retries the job after the
/// other sources were read.
pub async fn run(st: &Services, client_id: &str) -> Result<(), JobError> {
    let firm = firm_of(st, client_id).await?;
    let mut first_error: Option<JobError> = None;
    let mut keep = |r: Result<(), JobError>| match r {
        // A rail that needs the person (or was never connected) is shown
        // on the Connections page and in the hygiene tray; retrying the
        // sync cannot fix it, and the other rails were read.
        Err(e) if is_waiting_for_a_person(&e) => {
            tracing::info!(client = client_id, error = %e, "sync step skipped");
        }
        Err(e) => {
            tracing::warn!(client = client_id, error = %e, "sync step failed");
            first_error.get_or_insert(e);
        }
        Ok(()) => {}
    };
    keep(sync_bills(st, &firm, client_id).await);
    keep(
        async {
            let setup = with_auth(st, client_id, Rail::Ramp, |auth| async move {
                st.rails.bill_pay.bill_pay_setup(&auth).await
            })
            .await?;
            store_ramp_setup(st, client_id, &setup).await
        }
        .await,
    );
    match refresh_balance(st, client_id).await {
        Ok(()) => keep(sync_transactions(st, client_id).await),
        // Filed once in the hygiene tray; the schedule tries again later.
        Err(RefreshError::LoginRequired) => {}
        Err(RefreshError::Job(e)) => keep(Err(e)),
    }
    first_error.map_or(Ok(()), Err)
}

/// Re-read only the client's QBO bills (a QBO webhook named its realm). A
/// QBO connection that needs the person is skipped as in [`run`].
pub async fn run_ledger(st: &Services, client_id: &str) -> Result<(), JobError> {
    let firm = firm_of(st, client_id).await?;
    match sync_bills(st, &firm, client_id).await {
        Err(e) if is_waiting_for_a_person(&e) => {
            tracing::info!(client = client_id, error = %e, "ledger sync skipped");
            Ok(())
        }
        other => other,
    }
}

/// The client's firm, or a fatal error if the client is gone.
async fn firm_of(st: &Services, client_id: &str) -> Result<String, JobError> {
    let mut conn = st.db.acquire().await?;
    clients::firm_of(&mut conn, client_id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => JobError::fatal("not_found", "client vanished"),
            other => other.into(),
        })
}

fn is_waiting_for_a_person(e: &JobError) -> bool {
    let code = match e {
        JobError::Retry { code, .. } | JobError::Fatal { code, .. } => *code,
    };
    matches!(code, "needs_reconnect" | "disconnected" | "not_connected")
}

/// Enqueue a re-read of every client whose last one started a sync
/// interval ago (the sweep calls this; so does the sandbox clock after a
/// jump, so the console shows the new day's data).
pub async fn schedule_due(st: &Services) -> Result<usize, StoreError> {
    let now = st.clock.now();
    let before =
        now - chrono::Duration::from_std(SYNC_EVERY).unwrap_or(chrono::Duration::minutes(10));
    let due = {
        let mut conn = st.db.acquire().await?;
        clients::due_for_sync(&mut conn, before).await?
    };
    let mut tx = st.db.begin().await?;
    for client_id in &due {
        clients::mark_sync_started(&mut tx, client_id, now).await?;
        job_queue::enqueue(
            &mut tx,
            &Job::SyncClient {
                client_id: client_id.clone(),
            },
            now,
            now,
        )
        .await?;
    }
    commit(tx).await?;
    Ok(due.len())
}

/// How long after a full read of the ledger the reads stay incremental
/// (CDC); then one full read catches up whatever CDC could miss.
const FULL_READ_EVERY: chrono::Duration = chrono::Duration::hours(24);
/// How far before the last read a CDC read starts: the ledger's clock and
/// ours differ a little, and a change seen twice is harmless (upserts).
const CDC_OVERLAP: chrono::Duration = chrono::Duration::minutes(5);

/// Where an incremental read of the ledger starts, if it can be one: after
/// a full read in the last [`FULL_READ_EVERY`] (which keeps it well inside
/// CDC's 30 days).
fn cdc_since(
    last_read: Option<i64>,
    last_full: Option<i64>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let full = app::ssr::store::from_ms(last_full?);
    let read = app::ssr::store::from_ms(last_read?);
    (now - full < FULL_READ_EVERY && read >= full).then(|| read - CDC_OVERLAP)
}

/// Read the client's bills from QBO: what changed since the last read
/// (CDC) when it can, else every open bill (issue #19 §1: after one change
/// in a realm, the next read there is one request, not the whole list).
async fn sync_bills(st: &Services, firm: &str, client_id: &str) -> Result<(), JobError> {
    // Stamped with when the read began: a change during it is read again
    // next time rather than missed.
    let started = st.clock.now();
    let (last_read, last_full) = {
        let mut conn = st.db.acquire().await?;
        connections::sync_marks(&mut conn, client_id, Rail::Qbo).await?
    };
    if let Some(since) = cdc_since(last_read, last_full, started) {
        let changes = with_auth(st, client_id, Rail::Qbo, |auth| async move {
            st.rails.ledger.changed_bills(&auth, since).await
        })
        .await;
        match changes {
            Ok(ch) if ch.complete => {
                let mut tx = st.db.begin().await?;
                for b in &ch.bills {
                    if b.balance.minor > 0 {
                        bills::upsert_open(&mut tx, firm, client_id, &staged(b), started).await?;
                    } else {
                        bills::close_one(&mut tx, client_id, &b.id, started).await?;
                    }
                }
                for id in &ch.deleted {
                    bills::close_one(&mut tx, client_id, id, started).await?;
                }
                connections::mark_synced(&mut tx, client_id, Rail::Qbo, started).await?;
                commit(tx).await?;
                return paid_elsewhere_while_on_ramp(st, client_id).await;
            }
            // Capped at 1,000 objects: read in full.
            Ok(_) => {}
            Err(e) => {
                let e = JobError::from(e);
                if is_waiting_for_a_person(&e) {
                    return Err(e);
                }
                tracing::info!(client = client_id, error = %e, "CDC read failed; reading the ledger in full");
            }
        }
    }
    let open = with_auth(st, client_id, Rail::Qbo, |auth| async move {
        st.rails.ledger.open_bills(&auth).await
    })
    .await?;
    let now = st.clock.now();
    let mut tx = st.db.begin().await?;
    for b in &open {
        bills::upsert_open(&mut tx, firm, client_id, &staged(b), now).await?;
    }
    // Bills QBO no longer lists as open were paid or voided in the ledger.
    bills::close_unlisted(&mut tx, client_id, now).await?;
    connections::mark_full_synced(&mut tx, client_id, Rail::Qbo, started).await?;
    commit(tx).await?;
    paid_elsewhere_while_on_ramp(st, client_id).await
}

/// A bill RowCol has sent to Ramp, and Ramp has not paid yet, that the
/// ledger now shows paid by a BillPayment Ramp did not write (a bookkeeper
/// paid it by hand): Ramp will pay it a second time on its date unless
/// someone cancels it there. Flagged now, while the duplicate can still be
/// archived on Ramp, rather than found by verification after both paid.
/// (A bill closed by Ramp's own BillPayment is Ramp paying: its webhook
/// says so. A bill deleted outright is the release's and verification's.)
async fn paid_elsewhere_while_on_ramp(st: &Services, client_id: &str) -> Result<(), JobError> {
    let candidates = {
        let mut conn = st.db.acquire().await?;
        app::ssr::store::payments::released_with_closed_bill(&mut conn, client_id).await?
    };
    if candidates.is_empty() {
        return Ok(());
    }
    let qbo = rail_auth(st, client_id, Rail::Qbo).await?;
    for (payment_id, qbo_bill_id) in candidates {
        let found = match st
            .rails
            .ledger
            .bill_payments_for_bill(&qbo, &qbo_bill_id)
            .await
        {
            Ok(p) => p,
            Err(RailError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let now = st.clock.now();
        let mut tx = st.db.begin().await?;
        let p = app::ssr::store::payments::require(&mut tx, &payment_id).await?;
        let Some(ramp_bill_id) = p.ramp_bill_id.as_deref() else {
            continue;
        };
        let Some(other) = found
            .iter()
            .find(|bp| !super::verify::written_by_ramp(bp, ramp_bill_id))
        else {
            continue;
        };
        app::ssr::store::payments::flag(
            &mut tx,
            &payment_id,
            app::model::ReasonCode::DuplicatePayment,
            app::model::Severity::Critical,
            &format!(
                "Bill {qbo_bill_id} is about to be paid twice: QuickBooks has BillPayment {} of {} \
                 on {} that Ramp did not write, and Ramp bill {ramp_bill_id} is still scheduled to \
                 pay {} on {}. Cancel it on Ramp before then, or resolve with a note if the \
                 QuickBooks entry is a mistake.",
                other.id,
                other.amount_for_bill,
                other.txn_date,
                p.amount()?,
                p.payment_arrival_date,
            ),
            now,
        )
        .await?;
        commit(tx).await?;
    }
    Ok(())
}

/// A bill as the ledger reports it, in the shape the staging table stores.
pub(crate) fn staged(b: &crate::rails::LedgerBill) -> LedgerBill<'_> {
    LedgerBill {
        qbo_bill_id: &b.id,
        qbo_vendor_id: &b.vendor_id,
        vendor_name: &b.vendor_name,
        doc_number: b.doc_number.as_deref(),
        amount_minor: b.total.minor,
        balance_minor: b.balance.minor,
        currency: b.balance.currency.as_str(),
        txn_date: b.txn_date,
        due_date: b.due_date,
    }
}

pub async fn sync_ramp_setup(
    st: &Services,
    client_id: &str,
    auth: &RailAuth,
) -> Result<(), JobError> {
    let setup = st.rails.bill_pay.bill_pay_setup(auth).await?;
    store_ramp_setup(st, client_id, &setup).await
}

async fn store_ramp_setup(
    st: &Services,
    client_id: &str,
    setup: &crate::rails::RampSetup,
) -> Result<(), JobError> {
    let mut tx = st.db.begin().await?;
    connections::set_ramp_setup(
        &mut tx,
        client_id,
        &setup.entity_id,
        &setup.source_bank_account_id,
        st.clock.now(),
    )
    .await?;
    for v in &setup.vendors {
        let Some(qbo_id) = &v.accounting_vendor_remote_id else {
            continue;
        };
        connections::upsert_vendor(
            &mut tx,
            client_id,
            &VendorMapping {
                qbo_vendor_id: qbo_id,
                ramp_vendor_id: &v.id,
                ramp_contact_id: v.contact_id.as_deref(),
                ramp_vendor_account_id: v.vendor_account_id.as_deref(),
                name: &v.name,
            },
        )
        .await?;
    }
    commit(tx).await?;
    Ok(())
}

/// Read the live balance and store it as the client's cash snapshot.
pub async fn refresh_balance(st: &Services, client_id: &str) -> Result<(), RefreshError> {
    let auth = rail_auth(st, client_id, Rail::Plaid)
        .await
        .map_err(JobError::from)?;
    let bal = match st.rails.cash.balance(&auth).await {
        Ok(b) => b,
        Err(RailError::LoginRequired(m)) => {
            reconnect_needed(st, client_id, &m).await?;
            return Err(RefreshError::LoginRequired);
        }
        // The item was removed or its token revoked at Plaid: nothing to
        // refresh; the person must link the bank again.
        Err(RailError::Unauthorized(m)) => {
            let e = crate::connections::refresh_now(st, client_id, Rail::Plaid, &m)
                .await
                .err()
                .map(JobError::from)
                .unwrap_or_else(|| JobError::retry("unauthorized", m));
            return Err(RefreshError::Job(e));
        }
        Err(e) => return Err(RefreshError::Job(e.into())),
    };
    // Answering again means the login works (repaired in Link, or by the
    // bank): the connection is healthy.
    crate::connections::mark_repaired(st, client_id, Rail::Plaid)
        .await
        .map_err(JobError::from)?;
    let mut conn = st.db.acquire().await.map_err(JobError::from)?;
    bank::save_balance(
        &mut conn,
        client_id,
        &bal.account_id,
        &bal.available,
        &bal.current,
        st.clock.now(),
    )
    .await
    .map_err(JobError::from)?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("the bank connection needs to be re-authorised")]
    LoginRequired,
    #[error(transparent)]
    Job(#[from] JobError),
}

impl From<RefreshError> for JobError {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::LoginRequired => {
                JobError::fatal("login_required", "Plaid item needs re-authorisation")
            }
            RefreshError::Job(j) => j,
        }
    }
}

impl From<StoreError> for RefreshError {
    fn from(e: StoreError) -> Self {
        RefreshError::Job(e.into())
    }
}

/// The bank needs its login: the connection is marked so (approvals for
/// the client stop) and the hygiene tray asks for the login, once.
async fn reconnect_needed(st: &Services, client_id: &str, detail: &str) -> Result<(), JobError> {
    let creds = {
        let mut conn = st.db.acquire().await?;
        connections::sealed_credentials(&mut conn, client_id, Rail::Plaid).await?
    };
    let Some(creds) = creds else { return Ok(()) };
    crate::connections::mark_needs_reconnect(
        st,
        client_id,
        Rail::Plaid,
        &creds,
        &format!("the bank login must be renewed through Link ({detail})"),
    )
    .await?;
    Ok(())
}

/// Page through Plaid's transactions/sync from the stored cursor.
pub async fn sync_transactions(st: &Services, client_id: &str) -> Result<(), JobError> {
    let auth = rail_auth(st, client_id, Rail::Plaid).await?;
    let mut cursor = {
        let mut conn = st.db.acquire().await?;
        connections::plaid_cursor(&mut conn, client_id).await?
    };
    let start = cursor.clone();
    let mut restarts = 0;
    for _ in 0..1000 {
        let page = match st
            .rails
            .cash
            .transactions_sync(&auth, cursor.as_deref())
            .await
        {
            Ok(p) => p,
            // Plaid: data changed between pages; restart the update from
            // the cursor it began at (every page's writes are idempotent).
            Err(e) if crate::rails::plaid::is_sync_mutation(&e) && restarts < 3 => {
                restarts += 1;
                cursor = start.clone();
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let mut tx = st.db.begin().await?;
        for t in page.added.iter().chain(page.modified.iter()) {
            bank::upsert_txn(
                &mut tx,
                client_id,
                &BankTxn {
                    txn_id: &t.id,
                    account_id: &t.account_id,
                    amount: &t.amount,
                    date: t.date,
                    name: &t.name,
                    pending: t.pending,
                    pending_transaction_id: t.pending_transaction_id.as_deref(),
                    seen_at: st.clock.now(),
                },
            )
            .await?;
            super::evidence::follow_posted(
                &mut tx,
                client_id,
                &t.id,
                t.pending_transaction_id.as_deref(),
            )
            .await?;
        }
        // Removed transactions are marked, not deleted (see `evidence`).
        let now = st.clock.now();
        // Money back in (negative in Plaid's sign) named as an ACH return.
        for t in page
            .added
            .iter()
            .filter(|t| t.amount.minor < 0 && !t.pending)
        {
            super::evidence::ach_return(
                &mut tx,
                client_id,
                &t.id,
                &t.name,
                -t.amount.minor,
                t.date,
                now,
            )
            .await?;
        }
        for id in &page.removed {
            super::evidence::removed(&mut tx, client_id, id, now).await?;
        }
        // The cursor and the page it covers commit together.
        connections::set_plaid_cursor(&mut tx, client_id, &page.next_cursor).await?;
        if !page.has_more {
            // The history is complete up to now.
            connections::mark_synced(&mut tx, client_id, Rail::Plaid, st.clock.now()).await?;
        }
        commit(tx).await?;
        cursor = Some(page.next_cursor);
        if !page.has_more {
            break;
        }
    }
    super::evidence::attach_early(st, client_id).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn reads_are_incremental_for_a_day_after_a_full_one() {
        let t = |h: u32| chrono::Utc.with_ymd_and_hms(2027, 3, 1, h, 0, 0).unwrap();
        let ms = |h: u32| app::ssr::store::to_ms(t(h));
        // Never read in full: a full read.
        assert_eq!(cdc_since(Some(ms(1)), None, t(2)), None);
        // A full read at 1, an incremental one at 5: the next starts at 5
        // less the overlap.
        assert_eq!(
            cdc_since(Some(ms(5)), Some(ms(1)), t(6)),
            Some(t(5) - CDC_OVERLAP)
        );
        // A day after the full read: full again.
        let next_day = t(1) + chrono::Duration::hours(24);
        assert_eq!(cdc_since(Some(ms(5)), Some(ms(1)), next_day), None);
    }
}
