//! The payment chain of custody:
//! `(awaiting_second_approval →) approved → released → paid → recorded →
//! verified`, plus terminal
//! `rejected`, `failed`, `cancelled`. Transitions are monotone: a late or
//! duplicate event never moves a payment backwards, and an early one (paid
//! before released) moves it forward.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    Staged,
    /// Approved by one person; a second must approve before it is released
    /// (dual control). Its cash already counts as committed.
    AwaitingSecondApproval,
    Approved,
    Released,
    Paid,
    Recorded,
    Verified,
    Rejected,
    Failed,
    Cancelled,
}

/// The happy path, in order, as the custody view lists it.
pub const CHAIN: [PaymentState; 5] = [
    PaymentState::Approved,
    PaymentState::Released,
    PaymentState::Paid,
    PaymentState::Recorded,
    PaymentState::Verified,
];

/// Every state, in declaration order.
pub const ALL_STATES: [PaymentState; 10] = [
    PaymentState::Staged,
    PaymentState::AwaitingSecondApproval,
    PaymentState::Approved,
    PaymentState::Released,
    PaymentState::Paid,
    PaymentState::Recorded,
    PaymentState::Verified,
    PaymentState::Rejected,
    PaymentState::Failed,
    PaymentState::Cancelled,
];

impl PaymentState {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentState::Staged => "staged",
            PaymentState::AwaitingSecondApproval => "awaiting_second_approval",
            PaymentState::Approved => "approved",
            PaymentState::Released => "released",
            PaymentState::Paid => "paid",
            PaymentState::Recorded => "recorded",
            PaymentState::Verified => "verified",
            PaymentState::Rejected => "rejected",
            PaymentState::Failed => "failed",
            PaymentState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ALL_STATES.into_iter().find(|st| st.as_str() == s)
    }

    /// Position on the happy path; terminal failure states have none.
    fn rank(self) -> Option<u8> {
        match self {
            PaymentState::Staged => Some(0),
            PaymentState::AwaitingSecondApproval => Some(1),
            PaymentState::Approved => Some(2),
            PaymentState::Released => Some(3),
            PaymentState::Paid => Some(4),
            PaymentState::Recorded => Some(5),
            PaymentState::Verified => Some(6),
            _ => None,
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            PaymentState::Verified
                | PaymentState::Rejected
                | PaymentState::Failed
                | PaymentState::Cancelled
        )
    }

    /// Whether this payment may hold committed cash: money promised that
    /// counts against the buffer until the held bank balance shows its debit
    /// (the read model checks the debit). Everything short of a dead end:
    /// even a verified payment's debit may have appeared after the balance
    /// RowCol holds was read.
    pub fn may_hold_committed_cash(self) -> bool {
        matches!(
            self,
            PaymentState::AwaitingSecondApproval
                | PaymentState::Approved
                | PaymentState::Released
                | PaymentState::Paid
                | PaymentState::Recorded
                | PaymentState::Verified
        )
    }

    /// Over without moving money: the bill can be approved again.
    pub fn is_dead(self) -> bool {
        matches!(
            self,
            PaymentState::Rejected | PaymentState::Failed | PaymentState::Cancelled
        )
    }
}

/// What to do with evidence that a payment reached `next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Move the payment's current state to `next`.
    Advance,
    /// Record the step in the chain but keep the (further) current state:
    /// late evidence for an earlier step.
    RecordOnly,
    /// Nothing to do: the payment is terminal in a way this cannot change.
    Refuse,
}

/// `returned`: the evidence is the bank sending the money back (an ACH
/// return), the one failure that can come after the money moved — even
/// after verification, as the debit that verified it is undone. It fails
/// only a payment whose money may have left: `paid`, `recorded`,
/// `verified`, or `released` (an ACH debit leaves the bank days before
/// Ramp marks the bill paid; the caller holds the bank's evidence of it).
pub fn transition(current: PaymentState, next: PaymentState, returned: bool) -> Transition {
    if returned {
        return match (current, next) {
            (
                PaymentState::Released
                | PaymentState::Paid
                | PaymentState::Recorded
                | PaymentState::Verified,
                PaymentState::Failed,
            ) => Transition::Advance,
            _ => Transition::Refuse,
        };
    }
    match (current.rank(), next.rank()) {
        (Some(c), Some(n)) if n > c => Transition::Advance,
        (Some(_), Some(_)) => Transition::RecordOnly,
        // A payment on the path can fail or be cancelled until it is verified.
        (Some(_), None) if current != PaymentState::Verified => Transition::Advance,
        _ => Transition::Refuse,
    }
}

#[cfg(test)]
mod tests {
    use super::PaymentState::*;
    use super::*;

    #[test]
    fn moves_forward_and_skips_ahead() {
        assert_eq!(transition(Approved, Released, false), Transition::Advance);
        assert_eq!(transition(Approved, Paid, false), Transition::Advance);
        assert_eq!(transition(Recorded, Verified, false), Transition::Advance);
    }

    #[test]
    fn never_moves_backwards_or_repeats() {
        assert_eq!(transition(Paid, Released, false), Transition::RecordOnly);
        assert_eq!(transition(Paid, Paid, false), Transition::RecordOnly);
        assert_eq!(transition(Verified, Paid, false), Transition::RecordOnly);
    }

    #[test]
    fn failure_ends_the_path_but_not_after_verification() {
        assert_eq!(transition(Released, Failed, false), Transition::Advance);
        assert_eq!(transition(Verified, Failed, false), Transition::Refuse);
        assert_eq!(transition(Failed, Paid, false), Transition::Refuse);
    }

    #[test]
    fn a_bank_return_fails_a_payment_whose_money_left_even_verified() {
        for s in [Released, Paid, Recorded, Verified] {
            assert_eq!(transition(s, Failed, true), Transition::Advance, "{s:?}");
        }
        for s in [Approved, Failed, Cancelled, Rejected] {
            assert_eq!(transition(s, Failed, true), Transition::Refuse, "{s:?}");
        }
        assert_eq!(transition(Verified, Paid, true), Transition::Refuse);
    }

    #[test]
    fn cash_stays_committed_until_a_dead_end() {
        for s in ALL_STATES {
            if s == Staged {
                continue;
            }
            assert_ne!(s.may_hold_committed_cash(), s.is_dead(), "{s:?}");
        }
        assert!(Paid.may_hold_committed_cash());
        assert!(Failed.is_dead() && Cancelled.is_dead());
    }

    #[test]
    fn a_waiting_payment_is_approved_or_rejected_and_holds_cash() {
        assert_eq!(
            transition(AwaitingSecondApproval, Approved, false),
            Transition::Advance
        );
        assert_eq!(
            transition(AwaitingSecondApproval, Rejected, false),
            Transition::Advance
        );
        assert_eq!(
            transition(Approved, AwaitingSecondApproval, false),
            Transition::RecordOnly
        );
        assert!(AwaitingSecondApproval.may_hold_committed_cash());
        assert!(!AwaitingSecondApproval.is_terminal());
        assert_eq!(
            PaymentState::parse("awaiting_second_approval"),
            Some(AwaitingSecondApproval)
        );
    }

    #[test]
    fn names_round_trip() {
        for s in CHAIN {
            assert_eq!(PaymentState::parse(s.as_str()), Some(s));
        }
        assert_eq!(PaymentState::parse("bogus"), None);
    }
}
