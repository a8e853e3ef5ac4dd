//! Form fields parsed at the edge, each error naming its field.

use crate::model::{Currency, Money};

/// A whole number in `min..=max`, or an error naming `field`.
pub fn parse_int(field: &str, value: &str, min: i64, max: i64) -> Result<i64, String> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| format!("{field}: a whole number from {min} to {max}"))
}

/// A decimal amount in `currency` (e.g. `1,250.00`), as minor units, not
/// negative.
pub fn parse_amount(field: &str, value: &str, currency: &Currency) -> Result<i64, String> {
    let cleaned: String = value.trim().chars().filter(|c| *c != ',').collect();
    Money::parse_decimal(&cleaned, currency.clone())
        .ok()
        .map(|m| m.minor)
        .filter(|m| *m >= 0)
        .ok_or_else(|| format!("{field}: an amount like 1250.00, not negative"))
}

/// A yes/no field as a checkbox or a script sends it.
pub fn parse_bool(field: &str, value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Ok(true),
        "0" | "false" | "off" | "no" => Ok(false),
        _ => Err(format!("{field}: true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse_or_name_themselves() {
        assert_eq!(parse_int("page", " 3 ", 1, 10), Ok(3));
        assert!(parse_int("page", "0", 1, 10)
            .unwrap_err()
            .starts_with("page:"));
        assert!(parse_int("page", "x", 1, 10).is_err());
        let usd = Currency::usd();
        assert_eq!(parse_amount("min_amount", "1,250.50", &usd), Ok(125_050));
        assert!(parse_amount("min_amount", "-1", &usd).is_err());
        assert_eq!(parse_bool("new_vendor_second_approver", "on"), Ok(true));
        assert!(parse_bool("x", "maybe").is_err());
    }
}
