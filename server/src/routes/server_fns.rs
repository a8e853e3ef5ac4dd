//! The edge of the server functions (`/api/*`): what reaches them is a form
//! of a reasonable size, and what a malformed one gets back is a plain 4xx.
//!
//! Leptos answers any error raised before a server function runs (a missing
//! field, `bill_ids` sent as a string, bytes that are not UTF-8) with 500,
//! which also logs an ERROR per request: anyone, signed in or not, could fill
//! the log and page the on-call person. Here:
//!
//! * a body over [`BODY_LIMIT`] is refused with 413 before it is read whole;
//! * a `POST` with a body that is not `application/x-www-form-urlencoded` (the
//!   only encoding RowCol's server functions take) is refused with 415 (an
//!   empty one, for a function without fields, needs no content type);
//! * an error answer whose [`AppError`] says what kind it is gets that kind's
//!   status (a request that could not be read: 400), never a blanket 500.

use app::error::AppError;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The largest form a server function takes. The largest real one, a batch
/// of 500 bills, is about 20 KB.
pub const BODY_LIMIT: usize = 256 * 1024;

/// Error bodies are small JSON; anything larger is not one to rewrite.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

fn refuse(status: StatusCode, message: &str) -> Response {
    // The same shape as any other server-function error, so the browser's
    // client decodes it as one.
    let body = serde_json::to_string(&AppError::Validation(message.to_owned()))
        .unwrap_or_else(|_| "{}".into());
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The layer (`axum::middleware::from_fn`), on `/api/*` only.
pub async fn edge(req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return too_large();
    }
    let bytes: Bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return too_large(),
    };
    // An empty POST (a server function without fields, as curl or a script
    // sends it) has nothing to encode, so any or no content type will do.
    if parts.method == Method::POST && !bytes.is_empty() && !is_form(&parts.headers) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send the fields as a form (application/x-www-form-urlencoded).",
        );
    }
    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if res.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return res;
    }
    with_the_errors_status(res).await
}

fn is_form(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

fn too_large() -> Response {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        "The request is too large (at most 256 KB).",
    )
}

/// A 500 whose body is an [`AppError`] of another kind takes that kind's
/// status; a real internal error stays 500.
async fn with_the_errors_status(res: Response) -> Response {
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, ERROR_BODY_LIMIT).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "").into_response();
    };
    if let Ok(e) = serde_json::from_slice::<AppError>(&bytes) {
        if let Ok(status) = StatusCode::from_u16(e.status()) {
            parts.status = status;
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}
