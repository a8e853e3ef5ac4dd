//! `GET /metrics` in the Prometheus text format, behind a bearer token from
//! `ROWCOL_METRICS_TOKEN`: unset, the route answers 404 as if it were not
//! there; a missing or wrong token gets 401. And the timing of every webhook
//! answer, which the scrape reports per rail.

use crate::router_state::ServerState;
use app::ssr::metrics::{Labels, Metrics};
use app::ssr::store::ops_metrics::{self, OpsSnapshot};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;

pub async fn scrape(State(st): State<ServerState>, headers: HeaderMap) -> Response {
    let Some(token) = st.metrics_token.as_deref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !presented.is_some_and(|p| crate::security::constant_time_eq(p.as_bytes(), token.as_bytes()))
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a bearer token is required",
        )
            .into_response();
    }
    let metrics = &st.app.metrics;
    // The database's part is best effort: a scrape during an outage still
    // answers with what this process counted (and says the read failed).
    let read = async {
        let mut conn = st.app.db.read().await?;
        ops_metrics::snapshot(&mut conn, st.app.clock.now()).await
    };
    match read.await {
        Ok(s) => {
            publish(metrics, &s);
            metrics.set_gauge(
                "rowcol_database_up",
                "1 when the scrape could read the database.",
                vec![(vec![], 1.0)],
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: could not read the database");
            metrics.set_gauge(
                "rowcol_database_up",
                "1 when the scrape could read the database.",
                vec![(vec![], 0.0)],
            );
        }
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

fn publish(m: &Metrics, s: &OpsSnapshot) {
    let secs = |ms: i64| ms as f64 / 1000.0;
    m.set_gauge(
        "rowcol_jobs",
        "Jobs per kind and state (queued, done, dead).",
        s.jobs
            .iter()
            .map(|(k, st, n)| (labels(&[("kind", k), ("state", st)]), *n as f64))
            .collect(),
    );
    m.set_gauge(
        "rowcol_job_queue_depth",
        "Queued jobs whose time has come.",
        vec![(vec![], s.due as f64)],
    );
    m.set_gauge(
        "rowcol_job_oldest_due_seconds",
        "How long the oldest due job has waited (0 when none is due).",
        vec![(vec![], s.oldest_due_wait_ms.map_or(0.0, secs))],
    );
    m.set_gauge(
        "rowcol_webhook_inbox",
        "Stored webhook deliveries per rail and status (received, processed, dead).",
        s.inbox
            .iter()
            .map(|(r, st, n)| (labels(&[("rail", r), ("status", st)]), *n as f64))
            .collect(),
    );
    m.set_gauge(
        "rowcol_payments",
        "Payments per state.",
        s.payments
            .iter()
            .map(|(st, n)| (labels(&[("state", st)]), *n as f64))
            .collect(),
    );
    m.set_gauge(
        "rowcol_hygiene_items_open",
        "Open hygiene items per reason (discrepancies found by verification among them).",
        s.hygiene_open
            .iter()
            .map(|(r, n)| (labels(&[("reason", r)]), *n as f64))
            .collect(),
    );
    m.set_gauge(
        "rowcol_sync_lag_seconds",
        "Per rail, now minus the last success of its least recently synced active connection.",
        s.sync_lag_ms
            .iter()
            .filter_map(|(r, lag)| lag.map(|l| (labels(&[("rail", r)]), secs(l))))
            .collect(),
    );
}

fn labels(pairs: &[(&'static str, &String)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).clone())).collect()
}

/// Around `/webhooks/{rail}`: how long each answer took, and its status.
pub async fn time_webhook(State(st): State<ServerState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let rail = req
        .uri()
        .path()
        .trim_start_matches("/webhooks/")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let res = next.run(req).await;
    st.app
        .metrics
        .webhook_answered(&rail, res.status().as_u16(), started.elapsed());
    res
}
