//! Closed sets RowCol's internals and wire types share: rails, custody
//! owners, hygiene severities and reason codes. Each is stored and sent as
//! the same snake_case (or display) text it always was, so the database
//! columns and the JSON fields keep their values; only the code is typed.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Declares a closed set with its stored text, `as_str`, `parse`, `ALL`,
/// `Display` and serde as that text.
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// The outside systems RowCol connects a client to.
    Rail {
        Qbo = "qbo",
        Ramp = "ramp",
        Plaid = "plaid",
        Stripe = "stripe",
    }
);

impl Rail {
    /// The name a person knows the rail by.
    pub fn display_name(self) -> &'static str {
        match self {
            Rail::Qbo => "QuickBooks Online",
            Rail::Ramp => "Ramp",
            Rail::Plaid => "the bank (Plaid)",
            Rail::Stripe => "Stripe",
        }
    }

    /// The rails an approval depends on: the ledger, bill pay, the bank.
    pub const FOR_APPROVAL: &'static [Rail] = &[Rail::Qbo, Rail::Ramp, Rail::Plaid];
}

text_enum!(
    /// Which system owns the truth of a custody step.
    CustodyOwner {
        RowCol = "RowCol",
        Ramp = "Ramp",
        Qbo = "QBO",
        Plaid = "Plaid",
    }
);

text_enum!(
    /// How urgent a hygiene item is.
    Severity {
        Critical = "critical",
        High = "high",
        Medium = "medium",
    }
);

text_enum!(
    /// Why a hygiene item was filed.
    ReasonCode {
        /// The ledger records another amount than was paid.
        AmountMismatch = "amount_mismatch",
        /// More than one ledger payment links the bill.
        DuplicatePayment = "duplicate_payment",
        /// The ledger has not recorded the payment within its window.
        QboSyncMissing = "qbo_sync_missing",
        /// The bank has not shown the money leaving within its window.
        CashNotSeen = "cash_not_seen",
        /// Background work gave up after its retry schedule.
        JobDeadLettered = "job_dead_lettered",
        /// A rail connection needs the user to sign in again.
        RailReauthNeeded = "rail_reauth_needed",
        /// Ramp refused the payment, or its release gave up: the payment
        /// failed and holds no cash; retry (fresh check) or dismiss.
        ReleaseFailed = "release_failed",
        /// The release gave up while a create it sent may have reached Ramp:
        /// the payment stays approved (its cash committed) so it cannot be
        /// paid twice; retry runs the release again, which looks first.
        ReleaseUnconfirmed = "release_unconfirmed",
        /// Right before release, the ledger showed the bill paid, deleted,
        /// or with another vendor or amount: the payment was cancelled.
        BillChangedInLedger = "bill_changed_in_ledger",
        /// Right before release, Ramp showed another bank account for the
        /// vendor than the one accepted: the payment is held (approved, its
        /// cash committed, nothing sent) until someone confirms the change.
        VendorBankChanged = "vendor_bank_changed",
        /// The bank sent a paid ACH debit back (an R-code return): the
        /// payment failed after the money left, the bill is unpaid again,
        /// and the BillPayment Ramp synced to the ledger is now wrong.
        AchReturned = "ach_returned",
        /// An admin overrode a refusing approval rule (the buffer, a
        /// possible duplicate) with a written reason: another admin
        /// acknowledges it.
        OverrideReview = "override_review",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_round_trips_and_is_the_json() {
        for r in Rail::ALL {
            assert_eq!(Rail::parse(r.as_str()), Some(*r));
            assert_eq!(
                serde_json::to_string(r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        for o in CustodyOwner::ALL {
            assert_eq!(CustodyOwner::parse(o.as_str()), Some(*o));
        }
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()), Some(*s));
        }
        for c in ReasonCode::ALL {
            assert_eq!(ReasonCode::parse(c.as_str()), Some(*c));
        }
        assert_eq!(CustodyOwner::Qbo.to_string(), "QBO");
        assert_eq!(Rail::parse("bogus"), None);
    }
}
