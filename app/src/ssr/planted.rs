//! Deliberately planted bugs, for proving the simulation catches them
//! (issue #7). Compiled in only with the `planted-bugs` feature, a test
//! build; even then each bug is off unless `ROWCOL_PLANTED_BUG` names it.
//! In every other build [`active`] is `false` and the branches it guards
//! are compiled out.

/// The bugs that can be planted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// The release does not look for a Ramp bill with its `remote_id`
    /// before creating one again after an unanswered create.
    NoRemoteIdLookup,
    /// Nothing checks a payment's current state: the release job acts on a
    /// payment that is no longer approved, and a payment moves to any step
    /// asked for (no transition check, no compare-and-set).
    NoStateGuard,
    /// A job's finish is not fenced on the claim that holds its lease.
    NoLeaseFencing,
    /// Approvals skip the connection-health check: a client whose rail
    /// needs reconnecting (a revoked grant, a bank needing its login) is
    /// approved for as if every rail were healthy.
    NoConnectionCheck,
    /// Verification records a payment on any BillPayment of its bill, not
    /// only the one Ramp's accounting sync wrote for it: a bill the
    /// bookkeeper also paid by hand verifies instead of being flagged as
    /// paid twice.
    VerifyAnyBillPayment,
}

impl Bug {
    pub const ALL: [Bug; 5] = [
        Bug::NoRemoteIdLookup,
        Bug::NoStateGuard,
        Bug::NoLeaseFencing,
        Bug::NoConnectionCheck,
        Bug::VerifyAnyBillPayment,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Bug::NoRemoteIdLookup => "no_remote_id_lookup",
            Bug::NoStateGuard => "no_state_guard",
            Bug::NoLeaseFencing => "no_lease_fencing",
            Bug::NoConnectionCheck => "no_connection_check",
            Bug::VerifyAnyBillPayment => "verify_any_bill_payment",
        }
    }
}

/// [`Bug::NoStateGuard`]'s payment update: the state changes whatever it
/// is now. (It still reads `$4`: PostgreSQL refuses an unused parameter.)
/// Kept here, not beside the real statement, so the one guarded statement
/// stays the only one in the data layer (server/tests/architecture.rs).
pub const UNGUARDED_STATE_UPDATE: &str =
    "update payment set state = $1, updated_at = $2 where payment_id = $3 and $4 is not null";

/// Is `bug` planted in this process?
#[cfg(feature = "planted-bugs")]
pub fn active(bug: Bug) -> bool {
    std::env::var("ROWCOL_PLANTED_BUG").is_ok_and(|v| v == bug.name())
}

/// Is `bug` planted in this process? Never, in this build.
#[cfg(not(feature = "planted-bugs"))]
#[inline(always)]
pub const fn active(_bug: Bug) -> bool {
    false
}
