//! The server-rendered outcome page of a connect flow (no script needed).

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A refusal or outcome page with a link back to Connections.
pub fn page(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{t} · RowCol</title><link rel=\"stylesheet\" href=\"/pkg/rowcol.css\"></head>\
         <body><main class=\"page connect-result\"><h1>{t}</h1><p class=\"message\" role=\"alert\">{m}</p>\
         <p><a href=\"/connections\">Back to Connections</a></p></main></body></html>",
        t = escape(title),
        m = escape(message)
    );
    (status, Html(body)).into_response()
}
