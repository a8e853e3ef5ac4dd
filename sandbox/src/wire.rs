//! Wire helpers the simulators share: the bearer token of a request, and
//! decimal amounts (integer cents out as JSON numbers, decimal text back in
//! as exact integer minor units).

use axum::http::HeaderMap;
use serde_json::Value;

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive),
/// as both the Ramp and QBO simulators require one.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// Integer cents as plain decimal text in major units: `"1234.56"`,
/// `"-0.07"`, `"12.00"`.
fn cents_text(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// A decimal amount (integer cents) as a JSON number, for QBO and Plaid whose
/// wire format is decimal major units. JSON has one number type, so the value
/// passes through an f64 at this wire edge only; serde_json prints the
/// shortest text that round-trips, so 1234.56 goes out as `1234.56` exactly,
/// and no arithmetic ever happens on it.
pub(crate) fn decimal_number(cents: i64) -> Value {
    cents_text(cents)
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// The text of a decimal amount as it came over the wire: a JSON number's
/// own text (never through arithmetic) or a string, trimmed.
pub(crate) fn decimal_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(normalise_number_text(&n.to_string())),
        Value::String(s) => Some(s.trim().to_owned()),
        _ => None,
    }
}

/// `100.0` → `100.0`, `1e3` → `1000`; exponents are rare but legal JSON.
fn normalise_number_text(t: &str) -> String {
    if let Some((mant, exp)) = t.split_once(['e', 'E']) {
        if let (Ok(exp), false) = (exp.parse::<i32>(), mant.contains('.')) {
            if (0..=15).contains(&exp) {
                return format!("{mant}{}", "0".repeat(exp as usize));
            }
        }
    }
    t.to_owned()
}

/// A currency code as the simulators accept it: trimmed, upper-cased, and
/// three ASCII letters; `None` otherwise.
pub(crate) fn currency_code(code: &str) -> Option<String> {
    let up = code.trim().to_ascii_uppercase();
    (up.len() == 3 && up.bytes().all(|b| b.is_ascii_uppercase())).then_some(up)
}

/// Minor units per major unit of a currency: 0 for JPY and KRW, 2 otherwise.
pub(crate) fn minor_exponent(code: &str) -> u32 {
    match code {
        "JPY" | "KRW" => 0,
        _ => 2,
    }
}

/// Parse decimal major-unit text such as `"1234.5"` or `"-0.07"` into integer
/// minor units exactly, never through a float. `None` when the text is not a
/// plain decimal, has more fraction digits than `exponent`, or overflows.
pub(crate) fn parse_minor(text: &str, exponent: u32) -> Option<i64> {
    let t = text.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let exp = exponent as usize;
    if whole.is_empty() && frac.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > exp
    {
        return None;
    }
    let mut minor: i64 = 0;
    for b in whole.bytes().chain(frac.bytes()) {
        minor = minor.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    for _ in frac.len()..exp {
        minor = minor.checked_mul(10)?;
    }
    Some(if neg { -minor } else { minor })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn amounts_go_out_as_exact_decimal_numbers() {
        let num = |c| decimal_number(c).to_string();
        assert_eq!(num(123456), "1234.56");
        assert_eq!(num(10), "0.1");
        assert_eq!(num(7), "0.07");
        assert_eq!(num(0), "0.0");
        assert_eq!(num(987_654_321), "9876543.21");
    }

    #[test]
    fn whole_amounts_keep_a_decimal_point() {
        let num = |c| decimal_number(c).to_string();
        assert_eq!(num(100), "1.0");
        assert_eq!(num(250_000), "2500.0");
        assert_eq!(num(-100), "-1.0");
    }

    #[test]
    fn negative_amounts_keep_their_sign() {
        let num = |c| decimal_number(c).to_string();
        assert_eq!(num(-123456), "-1234.56");
        assert_eq!(num(-5), "-0.05");
        assert_eq!(num(-10), "-0.1");
        assert!(decimal_number(-42).is_f64());
    }

    #[test]
    fn cents_text_is_exact_at_the_extremes() {
        assert_eq!(cents_text(i64::MAX), "92233720368547758.07");
        assert_eq!(cents_text(i64::MIN), "-92233720368547758.08");
        assert_eq!(cents_text(-1), "-0.01");
    }

    #[test]
    fn decimal_text_is_exact() {
        let v: Value = serde_json::from_str("[12.34, 100.0, 7, \"5.10\", 1e3, \" 2.5 \"]").unwrap();
        // serde_json keeps 1e3 as the float 1000.0, whose text is "1000.0".
        let got: Vec<_> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| decimal_text(x).unwrap())
            .collect();
        assert_eq!(got, ["12.34", "100.0", "7", "5.10", "1000.0", "2.5"]);
        assert_eq!(decimal_text(&Value::Null), None);
        assert_eq!(normalise_number_text("5e2"), "500");
    }

    #[test]
    fn decimal_text_parses_to_exact_minor_units() {
        assert_eq!(parse_minor("1234.56", 2), Some(123456));
        assert_eq!(parse_minor("1234.5", 2), Some(123450));
        assert_eq!(parse_minor("7", 2), Some(700));
        assert_eq!(parse_minor(" -0.07 ", 2), Some(-7));
        assert_eq!(parse_minor(".5", 2), Some(50));
        assert_eq!(parse_minor("5.", 2), Some(500));
        assert_eq!(parse_minor("1200", 0), Some(1200));
        for bad in ["", "-", ".", "1.234", "1,000", "+1", "1e3", "1.2.3", "abc"] {
            assert_eq!(parse_minor(bad, 2), None, "{bad}");
        }
        assert_eq!(parse_minor("1.5", 0), None);
        assert_eq!(parse_minor("92233720368547758.08", 2), None);
    }

    #[test]
    fn currency_codes_are_normalised() {
        assert_eq!(currency_code(" usd ").as_deref(), Some("USD"));
        assert_eq!(currency_code("US"), None);
        assert_eq!(currency_code("U5D"), None);
        assert_eq!(minor_exponent("JPY"), 0);
        assert_eq!(minor_exponent("USD"), 2);
    }

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert("authorization", HeaderValue::from_static(v));
            h
        };
        assert_eq!(bearer_token(&with("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&with("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(&with("Basic abc")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
