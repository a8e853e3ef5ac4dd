//! The data layer: the only code in RowCol that speaks SQL (besides the
//! migrations). One module per aggregate, each the single writer of its
//! tables:
//!
//! | module | tables it writes |
//! | --- | --- |
//! | `firms` | firm (audit head via `audit`) |
//! | `users` | app_user, recovery_code |
//! | `user_links` | user_link |
//! | `clients` | client, client_policy |
//! | `connections` | rail_connection, vendor_map |
//! | `connect_flows` | connect_flow |
//! | `bills` | staged_bill |
//! | `bank` | cash_snapshot, bank_txn |
//! | `payments` | payment, custody_event |
//! | `approvals` | approval, approval_batch_client |
//! | `job_queue` | job, job_attempt |
//! | `inbox` | webhook_inbox, security_event |
//! | `login_throttle` | login_failure |
//! | `hygiene` | hygiene_item |
//! | `audit` | audit_entry, audit_checkpoint, firm.audit_seq/audit_head |
//! | `sandbox_state` | sandbox_state |
//!
//! `read_models`, `tray_view` and `decisions` only read (the console's summaries, the
//! approvals table). `client_revision` is written by triggers alone (see
//! `revision_cache`). Functions take a
//! connection or the caller's transaction and return [`StoreError`]; what a
//! browser sees is decided at the server function's edge (`AppError`).

pub mod approvals;
pub mod audit;
pub mod bank;
pub mod bills;
pub mod clients;
pub mod connect_flows;
pub mod connections;
pub mod db;
pub mod decisions;
pub mod firms;
pub mod hygiene;
pub mod inbox;
pub mod job_queue;
pub mod login_throttle;
pub mod notify;
pub mod ops_metrics;
pub mod payments;
pub mod read_models;
pub mod revision_cache;
pub mod sandbox_state;
pub mod tray_view;
pub mod user_links;
pub mod users;

pub use db::{commit, from_ms, to_ms, Backend, Db, Tx};

use chrono::NaiveDate;

/// What the data layer can fail with, by meaning.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for is not there (or not in the caller's firm).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule or a state guard refused the write: someone else
    /// got there first. The caller's transaction must not commit.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// A stored value does not parse (a bug or a hand edit).
    #[error("unreadable stored value: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

pub(crate) fn parse_date(s: &str) -> StoreResult<NaiveDate> {
    s.parse().map_err(|_| corrupt(format!("date {s:?}")))
}

pub(crate) fn parse_id<T: std::str::FromStr>(s: &str) -> StoreResult<T> {
    s.parse().map_err(|_| corrupt(format!("id {s:?}")))
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// SQL text for `state in (...)` over a set of states, built from the
/// domain's own predicates so the rule lives in one place.
pub(crate) fn state_list(states: impl Iterator<Item = &'static str>) -> String {
    states
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ")
}
