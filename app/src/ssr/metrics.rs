//! RowCol's own measurements, served by `GET /metrics` in the Prometheus
//! text format (series named `rowcol_…`).
//!
//! One recorder per application, injected like the rest of the state rather
//! than installed as the `metrics` crate's global recorder: tests run several
//! applications in one process and each must count only its own. Counters
//! and histograms are recorded where things happen; what the database already
//! knows (jobs, payments, sync ages) is read when scraped, as gauges.

use metrics::{with_local_recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Seconds: from half a millisecond (a webhook acknowledged) to a minute (a
/// job's processing behind a slow rail).
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// A gauge's labels, as (name, value) pairs.
pub type Labels = Vec<(&'static str, String)>;

#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Every label set each scraped gauge has had: one that is no longer in
    /// the database reads 0 rather than its last value.
    seen: Mutex<HashMap<&'static str, HashSet<Labels>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .expect("static, non-empty buckets")
            .build_recorder();
        let handle = recorder.handle();
        let m = Self(Arc::new(Inner {
            recorder,
            handle,
            seen: Mutex::new(HashMap::new()),
        }));
        m.describe();
        m
    }

    fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        with_local_recorder(&self.0.recorder, f)
    }

    fn describe(&self) {
        self.with(|| {
            metrics::describe_histogram!(
                "rowcol_webhook_ack_seconds",
                Unit::Seconds,
                "Time from a webhook's request to RowCol's answer, per rail."
            );
            metrics::describe_counter!(
                "rowcol_webhook_requests_total",
                "Webhook deliveries answered, per rail and HTTP status."
            );
            metrics::describe_histogram!(
                "rowcol_webhook_processed_seconds",
                Unit::Seconds,
                "Time from a webhook's receipt to the end of its processing, per rail."
            );
            metrics::describe_counter!(
                "rowcol_job_attempts_total",
                "Job attempts, per kind and outcome (done, retry, dead, lost_lease)."
            );
            metrics::describe_counter!(
                "rowcol_job_retries_total",
                "Job attempts that will be retried."
            );
            metrics::describe_counter!(
                "rowcol_job_dead_letters_total",
                "Jobs that gave up (dead-lettered), per kind."
            );
            metrics::describe_counter!(
                "rowcol_rail_requests_total",
                "Requests to the rails, per rail and HTTP status (transport_error: no answer)."
            );
            metrics::describe_histogram!(
                "rowcol_rail_request_seconds",
                Unit::Seconds,
                "Time a rail took to answer, per rail."
            );
            metrics::describe_counter!(
                "rowcol_rail_rate_limited_total",
                "429 answers from the rails, per rail."
            );
            metrics::describe_counter!(
                "rowcol_sign_in_failures_total",
                "Sign-ins refused for a wrong password or an unknown email."
            );
        });
    }

    /// A webhook delivery was answered.
    pub fn webhook_answered(&self, rail: &str, status: u16, took: Duration) {
        let rail = rail.to_owned();
        self.with(|| {
            metrics::histogram!("rowcol_webhook_ack_seconds", "rail" => rail.clone())
                .record(took.as_secs_f64());
            metrics::counter!("rowcol_webhook_requests_total", "rail" => rail, "status" => status.to_string())
                .increment(1);
        });
    }

    /// A stored webhook's processing finished, `took` after it was received.
    pub fn webhook_processed(&self, rail: &str, took: Duration) {
        let rail = rail.to_owned();
        self.with(|| {
            metrics::histogram!("rowcol_webhook_processed_seconds", "rail" => rail)
                .record(took.as_secs_f64());
        });
    }

    /// A job attempt ended (`outcome`: done, retry, dead, lost_lease).
    pub fn job_attempt(&self, kind: &str, outcome: &'static str) {
        let kind = kind.to_owned();
        self.with(|| {
            metrics::counter!("rowcol_job_attempts_total", "kind" => kind.clone(), "outcome" => outcome)
                .increment(1);
            match outcome {
                "retry" => metrics::counter!("rowcol_job_retries_total", "kind" => kind).increment(1),
                "dead" => {
                    metrics::counter!("rowcol_job_dead_letters_total", "kind" => kind).increment(1)
                }
                _ => {}
            }
        });
    }

    /// A rail answered with `status` (None: no answer, a transport error).
    pub fn rail_answered(&self, rail: &str, status: Option<u16>, took: Duration) {
        let rail = rail.to_owned();
        let status = status.map_or_else(|| "transport_error".to_owned(), |s| s.to_string());
        self.with(|| {
            if status == "429" {
                metrics::counter!("rowcol_rail_rate_limited_total", "rail" => rail.clone())
                    .increment(1);
            }
            metrics::histogram!("rowcol_rail_request_seconds", "rail" => rail.clone())
                .record(took.as_secs_f64());
            metrics::counter!("rowcol_rail_requests_total", "rail" => rail, "status" => status)
                .increment(1);
        });
    }

    pub fn sign_in_failed(&self) {
        self.with(|| metrics::counter!("rowcol_sign_in_failures_total").increment(1));
    }

    /// Set a gauge read from the database: every row's value, and 0 for each
    /// label set it had before that is gone now.
    pub fn set_gauge(&self, name: &'static str, help: &'static str, rows: Vec<(Labels, f64)>) {
        let mut seen = self.0.seen.lock().unwrap_or_else(|p| p.into_inner());
        let known = seen.entry(name).or_default();
        let now: HashSet<Labels> = rows.iter().map(|(l, _)| l.clone()).collect();
        self.with(|| {
            metrics::describe_gauge!(name, help);
            for gone in known.difference(&now) {
                metrics::gauge!(name, gone).set(0.0);
            }
            for (labels, value) in &rows {
                metrics::gauge!(name, labels).set(*value);
            }
        });
        known.extend(now);
    }

    /// The text format, for the scrape.
    pub fn render(&self) -> String {
        self.0.handle.run_upkeep();
        self.0.handle.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gauge_row_that_disappears_reads_zero() {
        let m = Metrics::new();
        m.set_gauge(
            "rowcol_test_jobs",
            "t",
            vec![(vec![("state", "queued".into())], 3.0)],
        );
        m.set_gauge(
            "rowcol_test_jobs",
            "t",
            vec![(vec![("state", "done".into())], 1.0)],
        );
        let text = m.render();
        assert!(
            text.contains("rowcol_test_jobs{state=\"queued\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("rowcol_test_jobs{state=\"done\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn two_recorders_count_apart() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.sign_in_failed();
        a.sign_in_failed();
        b.sign_in_failed();
        assert!(a.render().contains("rowcol_sign_in_failures_total 2"));
        assert!(b.render().contains("rowcol_sign_in_failures_total 1"));
        a.rail_answered("qbo", Some(429), Duration::from_millis(3));
        let text = a.render();
        assert!(
            text.contains("rowcol_rail_rate_limited_total{rail=\"qbo\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("rowcol_rail_requests_total{rail=\"qbo\",status=\"429\"} 1"),
            "{text}"
        );
    }
}
