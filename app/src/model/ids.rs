//! Prefixed, typed identifiers. A `BillId` can never be passed where a
//! `ClientId` is expected, and a malformed id is refused at the edge.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an id string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind} id")]
pub struct IdParseError {
    pub kind: &'static str,
    pub value: String,
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh random id (server side only: needs a random source).
            #[cfg(feature = "ssr")]
            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, uuid::Uuid::new_v4().simple()))
            }

            /// Parse an id received from outside (URL, form, JSON).
            pub fn parse(value: &str) -> Result<Self, IdParseError> {
                let ok = value
                    .strip_prefix($prefix)
                    .and_then(|rest| rest.strip_prefix('_'))
                    .is_some_and(|rest| {
                        !rest.is_empty()
                            && rest.len() <= 64
                            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    });
                if ok {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(IdParseError { kind: stringify!($name), value: value.chars().take(80).collect() })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdParseError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

id_type!(
    /// An accounting firm: the tenant boundary.
    FirmId, "firm");
id_type!(
    /// A person who signs in.
    UserId, "usr");
id_type!(
    /// One of the firm's client businesses.
    ClientId, "cli");
id_type!(
    /// A vendor bill staged from the client's ledger.
    BillId, "bill");
id_type!(
    /// A RowCol payment: one approved bill on its way through the rails.
    PaymentId, "pay");
id_type!(
    /// An entry in the hygiene tray.
    HygieneId, "hyg");
id_type!(
    /// One connection of a client to a rail; sealed tokens are bound to it.
    ConnectionId, "conn");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_its_own_prefix_only() {
        assert!(ClientId::parse("cli_abc123").is_ok());
        assert!(ClientId::parse("bill_abc123").is_err());
        assert!(ClientId::parse("cli_").is_err());
        assert!(ClientId::parse("cli_a b").is_err());
        assert!(ClientId::parse("cliabc").is_err());
    }

    #[test]
    fn serde_refuses_a_wrong_prefix() {
        let ok: Result<BillId, _> = serde_json::from_str("\"bill_x1\"");
        assert!(ok.is_ok());
        let bad: Result<BillId, _> = serde_json::from_str("\"pay_x1\"");
        assert!(bad.is_err());
    }
}
