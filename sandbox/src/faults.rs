//! Injected rail failures ([`Faults::rail_fail_next`](crate::Faults)): a
//! layer in front of each simulated rail's API that, when a failure is
//! queued for that rail, answers it in the rail's own error format without
//! running the handler (so nothing is applied), or hangs past the caller's
//! timeout.

use crate::{RailFault, Sandbox, SimRail};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// Put the fault layer in front of `router` (a rail's routes).
pub(crate) fn layer(router: Router<Sandbox>, sb: &Sandbox, rail: SimRail) -> Router<Sandbox> {
    router.layer(from_fn_with_state((sb.clone(), rail), inject))
}

async fn inject(
    State((sb, rail)): State<(Sandbox, SimRail)>,
    req: Request,
    next: Next,
) -> Response {
    let (fault, hang_ms) = {
        let mut st = sb.inner.state.lock().await;
        let (method, path) = (req.method().as_str(), req.uri().path());
        let Some(i) = st
            .faults
            .rail_fail_next
            .iter()
            .position(|f| f.matches(rail, method, path))
        else {
            drop(st);
            return next.run(req).await;
        };
        let fault: RailFault = st.faults.rail_fail_next.remove(i);
        let hang = match st.faults.rail_hang_ms {
            0 => 2_000,
            ms => ms,
        };
        sb.persist_logged(&st).await;
        (fault, hang)
    };
    if fault.status == 0 {
        // Never answered in time: the caller's timeout decides. The lock is
        // not held while waiting.
        tokio::time::sleep(std::time::Duration::from_millis(u64::from(hang_ms))).await;
        return StatusCode::GATEWAY_TIMEOUT.into_response();
    }
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let now = sb.inner.clock.now();
    match rail {
        SimRail::Qbo => crate::qbo::injected(status, now),
        SimRail::Ramp => crate::ramp::injected(status),
        SimRail::Plaid => crate::plaid::injected(status),
        SimRail::Stripe => crate::stripe::injected(status),
    }
}
