//! One API call as the resource code sees it: the account's data, the
//! sandbox time, the path ids and the parsed parameters, with typed
//! accessors that answer Stripe's parameter errors.

use super::data::AccountData;
use super::error::StripeError;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub(crate) struct Call<'a> {
    pub acct: &'a mut AccountData,
    pub now: DateTime<Utc>,
    /// Path parameters, in order (`/v1/invoices/{id}/pay` → `[id]`).
    pub ids: Vec<String>,
    pub params: Value,
    /// The sandbox mount (absolute), for file URLs.
    pub base: String,
}

pub(crate) type Res = Result<Value, StripeError>;

impl Call<'_> {
    pub fn ts(&self) -> i64 {
        self.now.timestamp()
    }

    pub fn id(&self) -> &str {
        self.ids.first().map(String::as_str).unwrap_or("")
    }

    /// Refuse parameters the endpoint does not take, as Stripe does.
    pub fn allow(&self, known: &[&str]) -> Result<(), StripeError> {
        if let Some(o) = self.params.as_object() {
            for k in o.keys() {
                if !known.contains(&k.as_str()) && k != "expand" {
                    return Err(StripeError::invalid(
                        &format!("Received unknown parameter: {k}"),
                        Some(k),
                    )
                    .with_code("parameter_unknown"));
                }
            }
        }
        Ok(())
    }

    pub fn str(&self, k: &str) -> Result<Option<String>, StripeError> {
        match self.params.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid_value(k, "a string")),
        }
    }

    pub fn req_str(&self, k: &str) -> Result<String, StripeError> {
        self.str(k)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| StripeError::missing(k))
    }

    pub fn int(&self, k: &str) -> Result<Option<i64>, StripeError> {
        match self.str(k)? {
            None => Ok(None),
            Some(s) => s
                .parse::<i64>()
                .map(Some)
                .map_err(|_| invalid_value(k, "an integer")),
        }
    }

    pub fn bool(&self, k: &str) -> Result<Option<bool>, StripeError> {
        match self.str(k)?.as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(invalid_value(k, "a boolean")),
        }
    }

    /// `metadata[...]`: up to 50 keys of ≤ 40 characters, values ≤ 500.
    pub fn metadata(&self) -> Result<Option<Map<String, Value>>, StripeError> {
        match self.params.get("metadata") {
            None => Ok(None),
            // `metadata=` (empty) clears it.
            Some(Value::String(s)) if s.is_empty() => Ok(Some(Map::new())),
            Some(Value::Object(o)) => {
                if o.len() > 50 {
                    return Err(StripeError::invalid(
                        "Invalid metadata: metadata cannot have more than 50 keys",
                        Some("metadata"),
                    ));
                }
                for (k, v) in o {
                    let ok = k.chars().count() <= 40
                        && v.as_str().is_some_and(|s| s.chars().count() <= 500);
                    if !ok {
                        return Err(StripeError::invalid(
                            &format!("Invalid metadata[{k}]: keys are at most 40 characters and values strings of at most 500"),
                            Some(&format!("metadata[{k}]")),
                        ));
                    }
                }
                Ok(Some(o.clone()))
            }
            Some(_) => Err(invalid_value("metadata", "an object")),
        }
    }

    pub fn currency(&self) -> Result<Option<String>, StripeError> {
        match self.str("currency")? {
            None => Ok(None),
            Some(c) if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_alphabetic()) => {
                Ok(Some(c.to_ascii_lowercase()))
            }
            Some(c) => Err(StripeError::invalid(
                &format!("Invalid currency: {c}. Stripe currently supports these currencies: usd, eur, gbp, cad, …"),
                Some("currency"),
            )),
        }
    }
}

pub(crate) fn invalid_value(k: &str, what: &str) -> StripeError {
    StripeError::invalid(&format!("Invalid {k}: must be {what}"), Some(k))
}

/// Merge new metadata into old: an empty value deletes a key.
pub(crate) fn merge_metadata(old: &mut Value, new: Map<String, Value>) {
    if new.is_empty() {
        *old = Value::Object(Map::new());
        return;
    }
    if !old.is_object() {
        *old = Value::Object(Map::new());
    }
    if let Some(o) = old.as_object_mut() {
        for (k, v) in new {
            if v.as_str() == Some("") {
                o.remove(&k);
            } else {
                o.insert(k, v);
            }
        }
    }
}
