//! The liquidity-buffer guardrail:
//! `cash_after = available − approved_not_yet_paid − selected` must stay
//! `≥ buffer_days × daily_burn`.

use super::runway::runway_days;
use crate::model::{Money, MoneyError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiquidityInput {
    pub available: Money,
    pub approved_unpaid: Money,
    pub selected: Money,
    pub daily_burn: Money,
    pub buffer_days: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiquidityVerdict {
    pub cash_after: Money,
    pub required_buffer: Money,
    /// `cash_after − required_buffer`; negative when failing.
    pub headroom: Money,
    pub runway_before_days: Option<i64>,
    pub runway_after_days: Option<i64>,
    pub pass: bool,
}

impl LiquidityVerdict {
    /// A sentence an advisor can act on.
    pub fn reason(&self) -> String {
        if self.pass {
            format!(
                "Cash after {} stays above the required buffer of {}.",
                self.cash_after, self.required_buffer
            )
        } else {
            format!(
                "Cash after approval would be {}, below the required buffer of {} (short by {}).",
                self.cash_after,
                self.required_buffer,
                Money::new(-self.headroom.minor, self.headroom.currency.clone())
            )
        }
    }
}

pub fn evaluate_liquidity(input: &LiquidityInput) -> Result<LiquidityVerdict, MoneyError> {
    let before = input.available.checked_sub(&input.approved_unpaid)?;
    let cash_after = before.checked_sub(&input.selected)?;
    let required = input
        .daily_burn
        .minor
        .checked_mul(i64::from(input.buffer_days))
        .ok_or(MoneyError::Overflow)?;
    let required_buffer = Money::new(required, input.daily_burn.currency.clone());
    let headroom = cash_after.checked_sub(&required_buffer)?;
    Ok(LiquidityVerdict {
        pass: headroom.minor >= 0,
        runway_before_days: runway_days(before.minor, input.daily_burn.minor),
        runway_after_days: runway_days(cash_after.minor, input.daily_burn.minor),
        cash_after,
        required_buffer,
        headroom,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(available: i64, unpaid: i64, selected: i64, burn: i64) -> LiquidityInput {
        LiquidityInput {
            available: Money::usd(available),
            approved_unpaid: Money::usd(unpaid),
            selected: Money::usd(selected),
            daily_burn: Money::usd(burn),
            buffer_days: 14,
        }
    }

    #[test]
    fn passes_exactly_at_the_buffer() {
        // 14 × 1,000 = 14,000 required; 20,000 − 1,000 − 5,000 = 14,000.
        let v = evaluate_liquidity(&input(20_000, 1_000, 5_000, 1_000)).unwrap();
        assert!(v.pass);
        assert_eq!(v.cash_after.minor, 14_000);
        assert_eq!(v.required_buffer.minor, 14_000);
        assert_eq!(v.headroom.minor, 0);
        assert_eq!(v.runway_after_days, Some(14));
    }

    #[test]
    fn fails_one_cent_below_and_says_by_how_much() {
        let v = evaluate_liquidity(&input(20_000, 1_000, 5_001, 1_000)).unwrap();
        assert!(!v.pass);
        assert_eq!(v.headroom.minor, -1);
        assert!(v.reason().contains("short by $0.01"), "{}", v.reason());
    }

    #[test]
    fn approved_unpaid_counts_against_cash() {
        let v = evaluate_liquidity(&input(20_000, 10_000, 0, 1_000)).unwrap();
        assert!(!v.pass);
        assert_eq!(v.runway_before_days, Some(10));
    }

    #[test]
    fn refuses_mixed_currencies() {
        let mut i = input(1, 0, 0, 0);
        i.selected = Money::new(1, crate::model::Currency::parse("EUR").unwrap());
        assert!(evaluate_liquidity(&i).is_err());
    }
}
