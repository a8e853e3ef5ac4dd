//! `POST /control/ramp/ach_return` (sandbox control, JSON): a paid ACH
//! bill's debit comes back from the vendor's bank today with a NACHA
//! return code, as [`crate::Faults::ramp_ach_return_next`] does on its own
//! schedule (see `engine::return_ach` for what the rails show).

use crate::control::{error, unless_json};
use crate::Sandbox;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Return {
    business_id: String,
    bill_id: String,
    /// `R01`, `R02`, …: an `R` and two digits.
    reason: String,
}

fn is_return_code(s: &str) -> bool {
    s.len() == 3 && s.starts_with('R') && s[1..].bytes().all(|b| b.is_ascii_digit())
}

pub(crate) async fn control(
    State(sb): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = unless_json(&headers) {
        return r;
    }
    let Ok(r) = serde_json::from_slice::<Return>(&body) else {
        return error(
            "body must be JSON like {\"business_id\": \"…\", \"bill_id\": \"…\", \"reason\": \"R01\"}",
        );
    };
    if !is_return_code(&r.reason) {
        return error("reason must be a NACHA return code like R01");
    }
    let today = sb.inner.clock.today();
    let mut st = sb.inner.state.lock().await;
    let Some((ci, amount)) = st.clients.iter().enumerate().find_map(|(ci, cl)| {
        (cl.ramp.business_id == r.business_id)
            .then(|| cl.ramp.bills.iter().find(|b| b.id == r.bill_id))
            .flatten()
            .map(|b| (ci, b.amount_cents))
    }) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such bill in that business"})),
        )
            .into_response();
    };
    let Some(txn) = crate::engine::return_ach(&mut st, ci, &r.bill_id, &r.reason, today) else {
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": "only a PAID ACH bill not yet returned can be returned"})),
        )
            .into_response();
    };
    crate::plaid_webhooks::note_new_transactions(&mut st, ci, sb.inner.clock.now());
    sb.persist_logged(&st).await;
    Json(json!({
        "bill_id": r.bill_id, "reason": r.reason,
        "amount_cents": amount, "transaction_id": txn,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use crate::sim_state::RampStatus;
    use crate::testkit::start;
    use crate::Faults;
    use serde_json::{json, Value};

    fn bill(st: &crate::sim_state::SimState, ci: usize, id: &str) -> crate::sim_state::RampBillRec {
        st.clients[ci]
            .ramp
            .bills
            .iter()
            .find(|b| b.id == id)
            .unwrap()
            .clone()
    }

    #[tokio::test]
    async fn an_injected_return_comes_back_days_later_as_a_bank_credit_and_an_open_bill() {
        let k = start(String::new()).await;
        k.sb.set_faults(Faults {
            ramp_ach_return_next: vec!["R01".into()],
            ..Faults::default()
        })
        .await;
        let id = k.due_bill(0).await;
        k.sb.advance(chrono::Duration::days(1)).await.unwrap();
        let st = k.sb.state().await;
        let paid = bill(&st, 0, &id);
        assert!(paid.status == RampStatus::Paid && paid.paid_at.is_some());
        assert!(st.faults.ramp_ach_return_next.is_empty(), "consumed");
        let due = st.ach_returns_due[0].due;
        let lag = (due - paid.payment_arrival_date).num_days();
        assert!((2..=6).contains(&lag), "2–4 business days, got {lag} days");
        let paid_events = |st: &crate::sim_state::SimState| {
            st.webhooks
                .iter()
                .filter(|w| w.body.contains("bills.paid") && w.body.contains(&id))
                .count()
        };
        assert_eq!(paid_events(&st), 1);

        k.sb.advance(chrono::Duration::days(8)).await.unwrap();
        let st = k.sb.state().await;
        let b = bill(&st, 0, &id);
        assert!(b.status == RampStatus::Open, "OPEN again");
        assert!(b.paid_at.is_none());
        assert_eq!(b.ach_return.as_deref(), Some("R01"));
        let credit = st.clients[0]
            .plaid
            .txns
            .iter()
            .find(|t| t.name.starts_with("ACH RETURN R01 INSUFFICIENT FUNDS"))
            .expect("the bank shows the return");
        assert_eq!(credit.amount_cents, -b.amount_cents, "money in is negative");
        assert_eq!(credit.date, due);
        // No webhook about it, and the engine does not pay it again.
        assert_eq!(paid_events(&st), 1);
        let debits = |st: &crate::sim_state::SimState| {
            st.clients[0]
                .plaid
                .txns
                .iter()
                .filter(|t| t.name.starts_with("RAMP BILLPAY") && t.amount_cents == b.amount_cents)
                .count()
        };
        let before = debits(&st);
        k.sb.advance(chrono::Duration::days(3)).await.unwrap();
        let st = k.sb.state().await;
        assert!(bill(&st, 0, &id).status == RampStatus::Open);
        assert_eq!(debits(&st), before);
    }

    async fn post(k: &crate::testkit::Kit, body: Value) -> (u16, Value) {
        let r = k
            .http
            .post(format!("{}/control/ramp/ach_return", k.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn the_control_route_returns_a_paid_ach_bill_at_once() {
        let k = start(String::new()).await;
        let id = k.due_bill(1).await;
        let business = k.sb.state().await.clients[1].ramp.business_id.clone();
        let body = json!({"business_id": business, "bill_id": id, "reason": "R02"});
        // Not paid yet.
        assert_eq!(post(&k, body.clone()).await.0, 409);
        k.sb.advance(chrono::Duration::days(1)).await.unwrap();
        let before = k.sb.state().await.clients[1].plaid.account.clone();
        let (s, v) = post(&k, body.clone()).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["reason"], "R02");
        let st = k.sb.state().await;
        let b = bill(&st, 1, &id);
        assert!(b.status == RampStatus::Open && b.paid_at.is_none());
        let after = &st.clients[1].plaid.account;
        assert_eq!(
            after.available_cents - before.available_cents,
            b.amount_cents
        );
        assert_eq!(after.current_cents - before.current_cents, b.amount_cents);
        let t = st.clients[1].plaid.txns.last().unwrap();
        assert!(
            t.name.starts_with("ACH RETURN R02 ACCOUNT CLOSED"),
            "{}",
            t.name
        );
        // Once only; a bad code or an unknown bill is refused.
        assert_eq!(post(&k, body).await.0, 409);
        let bad = json!({"business_id": business, "bill_id": id, "reason": "X1"});
        assert_eq!(post(&k, bad).await.0, 400);
        let unknown = json!({"business_id": business, "bill_id": "nope", "reason": "R01"});
        assert_eq!(post(&k, unknown).await.0, 404);
        let other = json!({"business_id": "other", "bill_id": id, "reason": "R01"});
        assert_eq!(post(&k, other).await.0, 404);
    }
}
