//! The hygiene tray's rules: what each kind of item means in plain words,
//! and which fixing actions a person in a given role may take on it. Pure,
//! so the page shows exactly the buttons the server then accepts: the
//! server refuses any action this does not list for the item and the user.

use crate::domain::custody::PaymentState;
use crate::model::{ReasonCode, Role};
use serde::{Deserialize, Serialize};

/// Where an item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemStatus {
    Open,
    /// Fixed: by a person's action or note, or it cleared itself.
    Resolved,
    /// Seen and deliberately left alone.
    Dismissed,
}

impl ItemStatus {
    pub const ALL: [ItemStatus; 3] = [
        ItemStatus::Open,
        ItemStatus::Resolved,
        ItemStatus::Dismissed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Open => "open",
            ItemStatus::Resolved => "resolved",
            ItemStatus::Dismissed => "dismissed",
        }
    }

    pub fn parse(s: &str) -> Option<ItemStatus> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A fixing action on an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrayAction {
    /// Read the ledger and the bank again now.
    Recheck,
    /// Close the item with a written note.
    Resolve,
    /// Archive the duplicate on Ramp before it pays.
    CancelOnRamp,
    /// Approve the bill as the ledger now has it (every rule applies).
    ApproveNewVersion,
    /// A new payment for the bill: fresh rules, a new `remote_id`.
    RetryPayment,
    /// Run an unconfirmed release again (it looks before it creates).
    RetryRelease,
    /// The vendor's new bank account was confirmed with the vendor.
    ConfirmBankChange,
    /// One more attempt of the job that gave up.
    Replay,
    /// Another admin has reviewed an override.
    Acknowledge,
    /// Renew the rail's connection (on the Connections page).
    Reconnect,
    /// Seen and deliberately left alone.
    Dismiss,
}

impl TrayAction {
    pub const ALL: [TrayAction; 11] = [
        TrayAction::Recheck,
        TrayAction::Resolve,
        TrayAction::CancelOnRamp,
        TrayAction::ApproveNewVersion,
        TrayAction::RetryPayment,
        TrayAction::RetryRelease,
        TrayAction::ConfirmBankChange,
        TrayAction::Replay,
        TrayAction::Acknowledge,
        TrayAction::Reconnect,
        TrayAction::Dismiss,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TrayAction::Recheck => "recheck",
            TrayAction::Resolve => "resolve",
            TrayAction::CancelOnRamp => "cancel_on_ramp",
            TrayAction::ApproveNewVersion => "approve_new_version",
            TrayAction::RetryPayment => "retry_payment",
            TrayAction::RetryRelease => "retry_release",
            TrayAction::ConfirmBankChange => "confirm_bank_change",
            TrayAction::Replay => "replay",
            TrayAction::Acknowledge => "acknowledge",
            TrayAction::Reconnect => "reconnect",
            TrayAction::Dismiss => "dismiss",
        }
    }

    pub fn parse(s: &str) -> Option<TrayAction> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The button's words.
    pub fn label(self) -> &'static str {
        match self {
            TrayAction::Recheck => "Re-check now",
            TrayAction::Resolve => "Resolve with a note",
            TrayAction::CancelOnRamp => "Cancel the duplicate on Ramp",
            TrayAction::ApproveNewVersion => "Approve the new version",
            TrayAction::RetryPayment => "Retry the payment (fresh check)",
            TrayAction::RetryRelease => "Retry the release",
            TrayAction::ConfirmBankChange => "Confirmed with the vendor: release",
            TrayAction::Replay => "Replay",
            TrayAction::Acknowledge => "Acknowledge",
            TrayAction::Reconnect => "Reconnect",
            TrayAction::Dismiss => "Dismiss",
        }
    }

    /// Whether the action needs a written note (an auditor reads why).
    pub fn needs_note(self) -> bool {
        matches!(self, TrayAction::Resolve | TrayAction::CancelOnRamp)
    }

    /// The least role that may take it.
    pub fn min_role(self) -> Role {
        match self {
            TrayAction::Acknowledge | TrayAction::Reconnect => Role::Admin,
            _ => Role::Advisor,
        }
    }
}

/// What the item is about, as a bookkeeper would say it.
pub fn headline(reason: ReasonCode) -> &'static str {
    match reason {
        ReasonCode::AmountMismatch => {
            "QuickBooks recorded a different amount for this payment than Ramp paid."
        }
        ReasonCode::DuplicatePayment => "This bill may be paid twice.",
        ReasonCode::QboSyncMissing => {
            "Ramp paid this bill, but QuickBooks has not recorded the payment yet."
        }
        ReasonCode::CashNotSeen => {
            "Ramp paid this bill, but the money has not left the bank account yet."
        }
        ReasonCode::JobDeadLettered => "Background work kept failing and has stopped trying.",
        ReasonCode::RailReauthNeeded => {
            "A connection needs its owner to sign in again before RowCol can read or pay."
        }
        ReasonCode::ReleaseFailed => "A payment could not be sent to Ramp. No money moved.",
        ReasonCode::ReleaseUnconfirmed => {
            "RowCol could not confirm that a payment reached Ramp. It is held so it cannot go twice."
        }
        ReasonCode::BillChangedInLedger => {
            "The bill changed in QuickBooks after it was approved, so its payment was stopped."
        }
        ReasonCode::VendorBankChanged => {
            "The vendor's bank account changed on Ramp. The payment is held until someone confirms it."
        }
        ReasonCode::AchReturned => "The bank sent a payment back. The bill is unpaid again.",
        ReasonCode::OverrideReview => {
            "An admin approved past a guardrail. Another admin should review it."
        }
    }
}

/// A few words for the reason, for filters and lists.
pub fn reason_label(reason: ReasonCode) -> &'static str {
    match reason {
        ReasonCode::AmountMismatch => "amount differs in QuickBooks",
        ReasonCode::DuplicatePayment => "paid twice",
        ReasonCode::QboSyncMissing => "not in QuickBooks yet",
        ReasonCode::CashNotSeen => "not seen at the bank yet",
        ReasonCode::JobDeadLettered => "background work stopped",
        ReasonCode::RailReauthNeeded => "connection to renew",
        ReasonCode::ReleaseFailed => "payment not sent",
        ReasonCode::ReleaseUnconfirmed => "payment unconfirmed",
        ReasonCode::BillChangedInLedger => "bill changed in QuickBooks",
        ReasonCode::VendorBankChanged => "vendor bank account changed",
        ReasonCode::AchReturned => "payment returned by the bank",
        ReasonCode::OverrideReview => "override to review",
    }
}

/// The facts about an item that decide its actions.
#[derive(Debug, Clone, Copy)]
pub struct ItemFacts {
    pub reason: ReasonCode,
    pub status: ItemStatus,
    /// The payment's state now, when the item concerns one.
    pub payment_state: Option<PaymentState>,
    /// Whether the item names the job that gave up.
    pub has_job: bool,
    /// Whether the person looking raised the item (their own override).
    pub raised_by_viewer: bool,
}

/// The actions `role` may take on the item now. Closed items have none.
pub fn actions(item: &ItemFacts, role: Role) -> Vec<TrayAction> {
    use TrayAction as A;
    if item.status != ItemStatus::Open {
        return vec![];
    }
    let paid_out = matches!(
        item.payment_state,
        Some(PaymentState::Paid | PaymentState::Recorded | PaymentState::Verified)
    );
    let on_its_way = matches!(
        item.payment_state,
        Some(PaymentState::Approved | PaymentState::Released)
    );
    let dead = matches!(
        item.payment_state,
        Some(PaymentState::Failed | PaymentState::Cancelled)
    );
    let mut all = match item.reason {
        ReasonCode::AmountMismatch | ReasonCode::QboSyncMissing | ReasonCode::CashNotSeen => {
            let mut v = vec![];
            if paid_out {
                v.push(A::Recheck);
            }
            v.push(A::Resolve);
            v
        }
        ReasonCode::DuplicatePayment => {
            let mut v = vec![];
            if on_its_way {
                v.push(A::CancelOnRamp);
            }
            v.push(A::Resolve);
            v
        }
        ReasonCode::BillChangedInLedger if dead => vec![A::ApproveNewVersion, A::Dismiss],
        // Deleted in QuickBooks after the money left: a person records it.
        ReasonCode::BillChangedInLedger => vec![A::Resolve],
        ReasonCode::AchReturned if dead => vec![A::RetryPayment, A::Resolve],
        ReasonCode::AchReturned => vec![A::Resolve],
        ReasonCode::ReleaseFailed if dead => vec![A::RetryPayment, A::Dismiss],
        ReasonCode::ReleaseUnconfirmed if on_its_way => vec![A::RetryRelease, A::Dismiss],
        ReasonCode::VendorBankChanged if on_its_way => vec![A::ConfirmBankChange, A::Dismiss],
        ReasonCode::ReleaseFailed
        | ReasonCode::ReleaseUnconfirmed
        | ReasonCode::VendorBankChanged => {
            vec![A::Dismiss]
        }
        ReasonCode::JobDeadLettered if item.has_job => vec![A::Replay, A::Dismiss],
        ReasonCode::JobDeadLettered => vec![A::Dismiss],
        ReasonCode::RailReauthNeeded => vec![A::Reconnect],
        ReasonCode::OverrideReview if item.raised_by_viewer => vec![],
        ReasonCode::OverrideReview => vec![A::Acknowledge],
    };
    all.retain(|a| role >= a.min_role());
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(reason: ReasonCode, state: Option<PaymentState>) -> ItemFacts {
        ItemFacts {
            reason,
            status: ItemStatus::Open,
            payment_state: state,
            has_job: false,
            raised_by_viewer: false,
        }
    }

    #[test]
    fn every_reason_has_a_way_out_for_an_admin_and_none_for_a_viewer() {
        for r in ReasonCode::ALL {
            for s in [
                None,
                Some(PaymentState::Approved),
                Some(PaymentState::Paid),
                Some(PaymentState::Failed),
            ] {
                let item = open(*r, s);
                assert!(!actions(&item, Role::Admin).is_empty(), "{r:?} {s:?}");
                assert!(actions(&item, Role::Viewer).is_empty(), "{r:?} {s:?}");
                let closed = ItemFacts {
                    status: ItemStatus::Resolved,
                    ..item
                };
                assert!(actions(&closed, Role::Admin).is_empty());
            }
            assert!(!headline(*r).contains('_'), "plain words: {r:?}");
        }
    }

    #[test]
    fn the_duplicate_can_be_cancelled_only_until_ramp_pays() {
        let on_ramp = open(ReasonCode::DuplicatePayment, Some(PaymentState::Released));
        assert_eq!(
            actions(&on_ramp, Role::Advisor),
            vec![TrayAction::CancelOnRamp, TrayAction::Resolve]
        );
        let paid = open(ReasonCode::DuplicatePayment, Some(PaymentState::Paid));
        assert_eq!(actions(&paid, Role::Advisor), vec![TrayAction::Resolve]);
    }

    #[test]
    fn an_override_is_acknowledged_by_another_admin_only() {
        let mine = ItemFacts {
            raised_by_viewer: true,
            ..open(ReasonCode::OverrideReview, None)
        };
        assert!(actions(&mine, Role::Admin).is_empty());
        let theirs = open(ReasonCode::OverrideReview, None);
        assert_eq!(actions(&theirs, Role::Admin), vec![TrayAction::Acknowledge]);
        assert!(actions(&theirs, Role::Advisor).is_empty());
    }

    #[test]
    fn a_dead_job_is_replayed_only_when_the_item_names_it() {
        let named = ItemFacts {
            has_job: true,
            ..open(ReasonCode::JobDeadLettered, None)
        };
        assert_eq!(
            actions(&named, Role::Advisor),
            vec![TrayAction::Replay, TrayAction::Dismiss]
        );
        let unnamed = open(ReasonCode::JobDeadLettered, None);
        assert_eq!(actions(&unnamed, Role::Advisor), vec![TrayAction::Dismiss]);
    }

    #[test]
    fn actions_round_trip_as_text() {
        for a in TrayAction::ALL {
            assert_eq!(TrayAction::parse(a.as_str()), Some(a));
        }
        for s in ItemStatus::ALL {
            assert_eq!(ItemStatus::parse(s.as_str()), Some(s));
        }
    }
}
