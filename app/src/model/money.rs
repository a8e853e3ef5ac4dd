//! Money is an integer count of minor units with its currency. Never a float.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An ISO 4217 currency code, upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    pub fn usd() -> Self {
        Currency("USD".into())
    }

    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let up = code.trim().to_ascii_uppercase();
        if up.len() == 3 && up.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Currency(up))
        } else {
            Err(MoneyError::BadCurrency(code.chars().take(10).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Minor units per major unit. Every currency RowCol handles today uses 2.
    pub fn exponent(&self) -> u32 {
        match self.0.as_str() {
            "JPY" | "KRW" => 0,
            _ => 2,
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Currency::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("`{0}` is not a currency code")]
    BadCurrency(String),
    #[error("`{0}` is not an amount")]
    BadAmount(String),
    #[error("amounts in {0} and {1} cannot be combined")]
    CurrencyMismatch(String, String),
    #[error("amount overflow")]
    Overflow,
}

/// An amount of money: integer minor units (cents) and a currency.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    pub fn usd(minor: i64) -> Self {
        Money::new(minor, Currency::usd())
    }

    pub fn zero(currency: Currency) -> Self {
        Money::new(0, currency)
    }

    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency.clone()))
    }

    pub fn checked_sub(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency.clone()))
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(
                self.currency.as_str().into(),
                other.currency.as_str().into(),
            ))
        }
    }

    /// Parse a decimal major-unit string such as `"1234.5"` or `"-0.07"` exactly
    /// (rails such as QBO and Plaid speak decimals; we never go through a float).
    pub fn parse_decimal(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        let bad = || MoneyError::BadAmount(text.chars().take(40).collect());
        let t = text.trim();
        let (neg, digits) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let (whole, frac) = match digits.split_once('.') {
            Some((w, f)) => (w, f),
            None => (digits, ""),
        };
        let exp = currency.exponent() as usize;
        if whole.is_empty() && frac.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || frac.len() > exp
        {
            return Err(bad());
        }
        let mut minor: i64 = 0;
        for b in whole.bytes().chain(frac.bytes()) {
            minor = minor
                .checked_mul(10)
                .and_then(|m| m.checked_add(i64::from(b - b'0')))
                .ok_or(MoneyError::Overflow)?;
        }
        for _ in frac.len()..exp {
            minor = minor.checked_mul(10).ok_or(MoneyError::Overflow)?;
        }
        Ok(Money::new(if neg { -minor } else { minor }, currency))
    }

    /// The amount as a plain decimal string in major units (`"1234.50"`), for
    /// rails whose wire format is decimal.
    pub fn to_decimal_string(&self) -> String {
        let exp = self.currency.exponent();
        if exp == 0 {
            return self.minor.to_string();
        }
        let div = 10i64.pow(exp);
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        format!(
            "{sign}{}.{:0width$}",
            abs / div as u64,
            abs % div as u64,
            width = exp as usize
        )
    }
}

impl fmt::Display for Money {
    /// `$1,234.56` for USD, `1,234.56 EUR` otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exp = self.currency.exponent();
        let div = 10u64.pow(exp);
        let abs = self.minor.unsigned_abs();
        let whole = (abs / div).to_string();
        let mut grouped = String::new();
        for (i, ch) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        let sign = if self.minor < 0 { "-" } else { "" };
        let frac = if exp > 0 {
            format!(".{:0width$}", abs % div, width = exp as usize)
        } else {
            String::new()
        };
        if self.currency.as_str() == "USD" {
            write!(f, "{sign}${grouped}{frac}")
        } else {
            write!(f, "{sign}{grouped}{frac} {}", self.currency.as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimals_exactly() {
        let usd = Currency::usd();
        assert_eq!(
            Money::parse_decimal("1234.5", usd.clone()).unwrap().minor,
            123450
        );
        assert_eq!(Money::parse_decimal("0.07", usd.clone()).unwrap().minor, 7);
        assert_eq!(
            Money::parse_decimal("-12", usd.clone()).unwrap().minor,
            -1200
        );
        assert_eq!(
            Money::parse_decimal("19.99", usd.clone()).unwrap().minor,
            1999
        );
        assert!(Money::parse_decimal("1.234", usd.clone()).is_err());
        assert!(Money::parse_decimal("abc", usd.clone()).is_err());
        assert!(Money::parse_decimal("", usd.clone()).is_err());
        assert!(Money::parse_decimal("1e5", usd).is_err());
    }

    #[test]
    fn formats_and_round_trips() {
        let m = Money::usd(123456789);
        assert_eq!(m.to_string(), "$1,234,567.89");
        assert_eq!(m.to_decimal_string(), "1234567.89");
        assert_eq!(Money::usd(-5).to_string(), "-$0.05");
        assert_eq!(Money::usd(-5).to_decimal_string(), "-0.05");
        let back = Money::parse_decimal(&m.to_decimal_string(), Currency::usd()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn refuses_mixed_currencies() {
        let eur = Money::new(100, Currency::parse("eur").unwrap());
        assert!(Money::usd(1).checked_add(&eur).is_err());
    }
}
