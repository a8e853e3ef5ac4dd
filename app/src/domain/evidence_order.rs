//! Evidence that arrives out of order, explained where it shows: each rail
//! reports on its own schedule (an ACH debit leaves the bank, and Ramp's
//! accounting sync writes the QuickBooks BillPayment, days before Ramp
//! marks the bill paid), so a payment's page says so in words instead of
//! leaving a reader to wonder why the bank "knew" first. Pure.

use crate::domain::custody::{PaymentState, CHAIN};
use chrono::{DateTime, NaiveDate, Utc};

/// What happened at a step, as the middle of a sentence (every subject is
/// a proper name, so it reads after "before" as well).
fn said(state: PaymentState) -> &'static str {
    match state {
        PaymentState::Approved => "RowCol recorded the approval",
        PaymentState::Released => "RowCol sent the bill to Ramp",
        PaymentState::Paid => "Ramp marked the bill paid",
        PaymentState::Recorded => "QuickBooks recorded the payment",
        PaymentState::Verified => "RowCol verified it across the rails",
        _ => "a step was recorded",
    }
}

fn days(n: i64) -> String {
    if n == 1 {
        "1 day".into()
    } else {
        format!("{n} days")
    }
}

/// Sentences for a payment whose evidence came out of order. `steps` are
/// its custody steps (state, when RowCol recorded it); `bank_debit_on` the
/// date of the bank transaction matched to it, if any.
pub fn notes(
    steps: &[(PaymentState, DateTime<Utc>)],
    bank_debit_on: Option<NaiveDate>,
) -> Vec<String> {
    let at = |s: PaymentState| steps.iter().find(|(st, _)| *st == s).map(|(_, t)| *t);
    let mut out = Vec::new();
    if let Some(debit) = bank_debit_on {
        match at(PaymentState::Paid) {
            Some(paid) if paid.date_naive() > debit => out.push(format!(
                "The bank showed this debit on {debit}, {} before Ramp marked the bill paid ({}). \
                 An ACH debit leaves the bank before Ramp reports the payment; RowCol kept the \
                 debit as evidence and matched it once Ramp did.",
                days((paid.date_naive() - debit).num_days()),
                paid.date_naive()
            )),
            Some(_) => {}
            None if at(PaymentState::Released).is_some() => out.push(format!(
                "The bank showed this debit on {debit}, but Ramp has not marked the bill paid \
                 yet. An ACH debit leaves the bank before Ramp reports the payment; RowCol keeps \
                 the debit as evidence and verifies once Ramp does."
            )),
            None => {}
        }
    }
    // A step of the chain recorded before the one it follows.
    for pair in CHAIN.windows(2) {
        let (before, after) = (pair[0], pair[1]);
        if let (Some(a), Some(b)) = (at(before), at(after)) {
            if b < a && after != PaymentState::Verified {
                out.push(format!(
                    "{} ({}) before {} ({}): each rail reports on its own schedule.",
                    said(after),
                    b.format("%Y-%m-%d %H:%M UTC"),
                    said(before),
                    a.format("%Y-%m-%d %H:%M UTC"),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, day, hour, 0, 0).unwrap()
    }

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2027, 3, day).unwrap()
    }

    #[test]
    fn a_debit_seen_days_before_ramp_paid_says_so() {
        let steps = [
            (PaymentState::Approved, t(1, 9)),
            (PaymentState::Released, t(1, 9)),
            (PaymentState::Paid, t(5, 12)),
            (PaymentState::Recorded, t(5, 12)),
            (PaymentState::Verified, t(5, 13)),
        ];
        let n = notes(&steps, Some(d(3)));
        assert_eq!(n.len(), 1, "{n:?}");
        assert!(
            n[0].starts_with("The bank showed this debit on 2027-03-03, 2 days before Ramp marked the bill paid (2027-03-05)."),
            "{}",
            n[0]
        );
    }

    #[test]
    fn a_debit_before_ramp_has_said_anything_is_explained_too() {
        let steps = [
            (PaymentState::Approved, t(1, 9)),
            (PaymentState::Released, t(1, 9)),
        ];
        let n = notes(&steps, Some(d(3)));
        assert_eq!(n.len(), 1);
        assert!(
            n[0].contains("Ramp has not marked the bill paid yet"),
            "{}",
            n[0]
        );
    }

    #[test]
    fn in_order_evidence_needs_no_explanation() {
        let steps = [
            (PaymentState::Approved, t(1, 9)),
            (PaymentState::Released, t(1, 9)),
            (PaymentState::Paid, t(3, 12)),
            (PaymentState::Recorded, t(3, 13)),
            (PaymentState::Verified, t(4, 8)),
        ];
        assert!(notes(&steps, Some(d(3))).is_empty());
        assert!(notes(&steps, None).is_empty());
    }

    #[test]
    fn the_ledger_recording_before_ramp_paid_is_explained() {
        let steps = [
            (PaymentState::Approved, t(1, 9)),
            (PaymentState::Released, t(1, 9)),
            (PaymentState::Paid, t(5, 12)),
            (PaymentState::Recorded, t(4, 10)),
        ];
        let n = notes(&steps, None);
        assert_eq!(
            n,
            vec!["QuickBooks recorded the payment (2027-03-04 10:00 UTC) before Ramp marked the bill paid (2027-03-05 12:00 UTC): each rail reports on its own schedule.".to_owned()]
        );
    }
}
