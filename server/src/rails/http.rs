//! The one place that turns HTTP outcomes into [`RailError`]s, and builds the
//! shared reqwest client. Error messages carry the rail's trace id (Ramp
//! `x-trace-id`, QBO `intuit_tid`, Plaid `request_id`) and never a token.

use super::RailError;
use app::ssr::metrics::Metrics;
use std::time::{Duration, Instant};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A rail call's whole budget unless configured (`ROWCOL_RAIL_TIMEOUT_MS`).
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(30);

/// The reqwest client every adapter shares: 10 s connect (at most the
/// total), `total` for the whole call. A call cut by the timeout is
/// transient and its outcome unknown.
pub fn build_client(total: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT.min(total))
        .timeout(total)
        .build()
        .expect("reqwest client with static config")
}

/// The shared client as the adapters hold it: every answer (status or none,
/// and how long it took) is counted per rail for `/metrics`.
#[derive(Clone)]
pub struct RailHttp {
    client: reqwest::Client,
    metrics: Metrics,
}

impl RailHttp {
    pub fn new(client: reqwest::Client, metrics: Metrics) -> Self {
        RailHttp { client, metrics }
    }

    /// [`execute`], counted.
    pub async fn execute(
        &self,
        rail: &str,
        trace_header: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<RailResponse, RailError> {
        let started = Instant::now();
        let out = execute(rail, trace_header, req).await;
        self.metrics
            .rail_answered(rail, out.as_ref().ok().map(|r| r.status), started.elapsed());
        out
    }
}

/// Requests are built on the shared client as on any reqwest client.
impl std::ops::Deref for RailHttp {
    type Target = reqwest::Client;
    fn deref(&self) -> &reqwest::Client {
        &self.client
    }
}

/// A response read in full, with the bits error classification needs.
#[derive(Debug)]
pub struct RailResponse {
    pub status: u16,
    /// The rail's per-request trace id header, when the rail sends one.
    pub trace_id: Option<String>,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

impl RailResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Parse the body as JSON, or a Permanent error naming the trace id.
    pub fn json(&self, rail: &str) -> Result<serde_json::Value, RailError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            RailError::Permanent(format!(
                "{rail}: unparseable body ({e}){}",
                trace_suffix(self.trace_id.as_deref())
            ))
        })
    }
}

/// Send a request and read the whole body. Transport failures (timeout,
/// connection refused, reset) are Transient.
pub async fn execute(
    rail: &str,
    trace_header: &str,
    req: reqwest::RequestBuilder,
) -> Result<RailResponse, RailError> {
    let resp = req.send().await.map_err(|e| transport_error(rail, &e))?;
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let trace_id = header(trace_header);
    let retry_after = header("retry-after").as_deref().and_then(parse_retry_after);
    let body = resp
        .bytes()
        .await
        .map_err(|e| transport_error(rail, &e))?
        .to_vec();
    Ok(RailResponse {
        status,
        trace_id,
        retry_after,
        body,
    })
}

/// A reqwest error (no response) as a RailError. The URL is left out: some
/// rails carry identifiers in it, and tokens must never appear anywhere.
pub fn transport_error(rail: &str, e: &reqwest::Error) -> RailError {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection error"
    } else if e.is_decode() || e.is_body() {
        "body error"
    } else {
        "request error"
    };
    RailError::Transient(format!("{rail}: {kind}: {}", text_without_url(e)))
}

/// reqwest's `Display` includes the URL; leave it out.
fn text_without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    text
}

/// `Retry-After` as delta-seconds (HTTP-dates are rare on these rails and
/// are ignored).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn trace_suffix(trace_id: Option<&str>) -> String {
    match trace_id {
        Some(t) => format!(" (trace {t})"),
        None => String::new(),
    }
}

/// Classify a non-2xx status. `detail` is the rail's own message (already
/// free of secrets).
pub fn classify_status(
    rail: &str,
    status: u16,
    retry_after: Option<Duration>,
    trace_id: Option<&str>,
    detail: &str,
) -> RailError {
    let msg = format!("{rail} {status}: {detail}{}", trace_suffix(trace_id));
    match status {
        401 | 403 => RailError::Unauthorized(msg),
        404 => RailError::NotFound(msg),
        429 => RailError::RateLimited { retry_after },
        500..=599 => RailError::Transient(msg),
        _ => RailError::Rejected(msg),
    }
}

/// Classify a failed response by status, with the given detail text.
pub fn error_for(rail: &str, resp: &RailResponse, detail: &str) -> RailError {
    classify_status(
        rail,
        resp.status,
        resp.retry_after,
        resp.trace_id.as_deref(),
        detail,
    )
}

/// Plaid classifies by `error_type`/`error_code`, not by HTTP status.
pub fn plaid_error(status: u16, body: &serde_json::Value) -> RailError {
    let s = |k: &str| body.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let (error_type, error_code) = (s("error_type"), s("error_code"));
    let request_id = body.get("request_id").and_then(|v| v.as_str());
    let msg = format!(
        "plaid {status} {error_type}/{error_code}: {}{}",
        s("error_message"),
        trace_suffix(request_id)
    );
    match (error_type, error_code) {
        (_, "ITEM_LOGIN_REQUIRED") => RailError::LoginRequired(msg),
        ("RATE_LIMIT_EXCEEDED", _) | (_, "RATE_LIMIT_EXCEEDED") => {
            RailError::RateLimited { retry_after: None }
        }
        (_, "INVALID_ACCESS_TOKEN" | "INVALID_API_KEYS" | "UNAUTHORIZED_ENVIRONMENT") => {
            RailError::Unauthorized(msg)
        }
        // Data changed between pages of a /transactions/sync update: the
        // caller restarts the update (see `plaid::is_sync_mutation`).
        (_, "PRODUCT_NOT_READY" | super::plaid::SYNC_MUTATION)
        | ("API_ERROR" | "INSTITUTION_ERROR", _) => RailError::Transient(msg),
        ("", "") => classify_status("plaid", status, None, request_id, "no error body"),
        _ => match status {
            429 => RailError::RateLimited { retry_after: None },
            500..=599 => RailError::Transient(msg),
            _ => RailError::Rejected(msg),
        },
    }
}

/// A JSON number or decimal string as exact text, for `Money::parse_decimal`.
/// serde_json keeps the shortest round-trip text of a number, so `12.34`
/// stays `"12.34"`; no arithmetic ever happens on a float.
pub fn decimal_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Number(n) => Some(normalise_number_text(&n.to_string())),
        serde_json::Value::String(s) => Some(s.trim().to_owned()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_classify_by_meaning() {
        let c = |s| classify_status("ramp", s, None, Some("t1"), "x");
        assert!(matches!(c(401), RailError::Unauthorized(_)));
        assert!(matches!(c(403), RailError::Unauthorized(_)));
        assert!(matches!(c(404), RailError::NotFound(_)));
        assert!(matches!(c(503), RailError::Transient(_)));
        assert!(matches!(c(422), RailError::Rejected(_)));
        let rl = classify_status("ramp", 429, parse_retry_after(" 7 "), None, "");
        assert!(matches!(rl, RailError::RateLimited { retry_after: Some(d) } if d.as_secs() == 7));
        assert!(c(500).to_string().contains("trace t1"));
    }

    #[test]
    fn plaid_codes_win_over_status() {
        let body = serde_json::json!({"error_type":"ITEM_ERROR","error_code":"ITEM_LOGIN_REQUIRED","error_message":"m","request_id":"r1"});
        let e = plaid_error(400, &body);
        assert!(matches!(e, RailError::LoginRequired(ref m) if m.contains("r1")));
        let body = serde_json::json!({"error_type":"RATE_LIMIT_EXCEEDED","error_code":"ACCOUNTS_BALANCE_GET_LIMIT"});
        assert!(matches!(
            plaid_error(429, &body),
            RailError::RateLimited { .. }
        ));
        let body =
            serde_json::json!({"error_type":"INVALID_INPUT","error_code":"INVALID_ACCESS_TOKEN"});
        assert!(matches!(
            plaid_error(400, &body),
            RailError::Unauthorized(_)
        ));
    }

    #[test]
    fn decimal_text_is_exact() {
        let v: serde_json::Value =
            serde_json::from_str("[12.34, 100.0, 7, \"5.10\", 1e3]").unwrap();
        // serde_json keeps 1e3 as the float 1000.0, whose text is "1000.0".
        let got: Vec<_> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| decimal_text(x).unwrap())
            .collect();
        assert_eq!(got, ["12.34", "100.0", "7", "5.10", "1000.0"]);
    }
}
