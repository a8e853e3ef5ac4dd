//! Stripe's error envelope: `{"error": {type, code, message, param,
//! decline_code, doc_url, …}}` with the HTTP status the libraries map to
//! their error classes (400/404 invalid request, 401 authentication, 402
//! card, 403 permission, 429 rate limit).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// Boxed: errors travel in every `Result` of the resource code.
#[derive(Debug, Clone)]
pub(crate) struct StripeError(Box<ErrorFields>);

#[derive(Debug, Clone)]
pub(crate) struct ErrorFields {
    pub status: StatusCode,
    pub kind: String,
    pub code: Option<String>,
    pub message: String,
    pub param: Option<String>,
    pub decline_code: Option<String>,
    /// More fields of the error object (`charge`, `payment_intent`, …).
    pub extra: Map<String, Value>,
}

impl std::ops::Deref for StripeError {
    type Target = ErrorFields;
    fn deref(&self) -> &ErrorFields {
        &self.0
    }
}

impl std::ops::DerefMut for StripeError {
    fn deref_mut(&mut self) -> &mut ErrorFields {
        &mut self.0
    }
}

impl StripeError {
    pub fn new(status: StatusCode, kind: &str, message: &str) -> StripeError {
        StripeError(Box::new(ErrorFields {
            status,
            kind: kind.into(),
            code: None,
            message: message.into(),
            param: None,
            decline_code: None,
            extra: Map::new(),
        }))
    }

    /// 400 `invalid_request_error`, about `param` if given.
    pub fn invalid(message: &str, param: Option<&str>) -> StripeError {
        let mut e = StripeError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message);
        e.param = param.map(str::to_owned);
        e
    }

    /// 400 `parameter_missing`.
    pub fn missing(param: &str) -> StripeError {
        let mut e = StripeError::invalid(&format!("Missing required param: {param}."), Some(param));
        e.code = Some("parameter_missing".into());
        e
    }

    /// 404 `resource_missing`: "No such customer: 'cus_…'".
    pub fn no_such(what: &str, id: &str, param: &str) -> StripeError {
        let mut e = StripeError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &format!("No such {what}: '{id}'"),
        );
        e.code = Some("resource_missing".into());
        e.param = Some(param.into());
        e
    }

    /// A state the object is not in (e.g. finalizing an open invoice).
    pub fn state(message: &str) -> StripeError {
        let mut e = StripeError::invalid(message, None);
        e.code = Some("invoice_not_editable".into());
        e
    }

    pub fn with_code(mut self, code: &str) -> StripeError {
        self.code = Some(code.into());
        self
    }

    pub fn body(&self) -> Value {
        let mut o = Map::new();
        o.insert("type".into(), json!(self.kind));
        o.insert("message".into(), json!(self.message));
        if let Some(c) = &self.code {
            o.insert("code".into(), json!(c));
            o.insert(
                "doc_url".into(),
                json!(format!(
                    "https://stripe.com/docs/error-codes/{}",
                    c.replace('_', "-")
                )),
            );
        }
        if let Some(p) = &self.param {
            o.insert("param".into(), json!(p));
        }
        if let Some(d) = &self.decline_code {
            o.insert("decline_code".into(), json!(d));
        }
        for (k, v) in &self.extra {
            o.insert(k.clone(), v.clone());
        }
        json!({"error": o})
    }

    pub fn response(&self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}
