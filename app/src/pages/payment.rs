use crate::api::payments::{get_payment, StopPayment};
use crate::components::layout::{loaded, use_session};
use crate::components::status::PaymentBadge;
use crate::domain::custody::PaymentState;
use crate::domain::custody::CHAIN;
use crate::model::{PaymentDetail, Role};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn PaymentPage() -> impl IntoView {
    let params = use_params_map();
    let session = use_session();
    let stop = ServerAction::<StopPayment>::new();
    let data = Resource::new(
        move || {
            (
                params.read().get("id").unwrap_or_default(),
                session.advance.version().get(),
                stop.version().get(),
            )
        },
        |(id, _, _)| get_payment(id),
    );
    let role = move || session.role();
    view! {
        <Title text="Payment · RowCol" />
        {loaded(
            data,
            move |p| {
                view! { <PaymentView p stop role=role() /> }.into_any()
            },
        )}
    }
}

#[component]
fn PaymentView(p: PaymentDetail, stop: ServerAction<StopPayment>, role: Role) -> impl IntoView {
    let s = p.summary;
    // Until Ramp pays, an approved payment can be stopped (issue #16);
    // viewers see no control they cannot use.
    let stoppable =
        role >= Role::Advisor && matches!(s.state, PaymentState::Approved | PaymentState::Released);
    let pid = s.payment_id.to_string();
    let reached: Vec<_> = p.steps.iter().map(|st| st.state).collect();
    let pending: Vec<_> = CHAIN
        .iter()
        .copied()
        .filter(|c| !reached.contains(c))
        .collect();
    view! {
        <h1>
            {format!("{} · {}", s.vendor_name, s.amount)} " "
            <PaymentBadge state=s.state flagged=s.flag_reason.is_some() />
        </h1>
        <p>
            <a href=format!("/clients/{}", s.client_id)>{s.client_name.clone()}</a>
            {format!(
                " · invoice {} · arrives {}",
                s.doc_number.clone().unwrap_or_default(),
                s.payment_arrival_date,
            )}
        </p>
        {s.flag_reason.clone().map(|r| view! { <p class="error" role="alert">{format!("Discrepancy: {r}")}</p> })}
        <h2>"Approvals"</h2>
        <ul class="approvals" data-testid="approvals">
            {p
                .approvals
                .iter()
                .map(|a| {
                    view! {
                        <li data-testid="approval">
                            <strong>{if a.step == "second" { "Second approval" } else { "Approved" }}</strong>
                            {format!(
                                " by {} on {} (policy version {})",
                                a.approver,
                                a.at.format("%Y-%m-%d %H:%M UTC"),
                                a.policy_version
                            )}
                            {a.override_reason.clone().map(|r| view! {
                                <div class="notice bad">{format!("Overridden — reason: {r}")}</div>
                            })}
                        </li>
                    }
                })
                .collect_view()}
        </ul>
        {move || {
            stop.value()
                .get()
                .map(|r| match r {
                    Ok(text) => view! { <p class="success" role="status" data-testid="stop-result">{text}</p> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert" data-testid="stop-error">{e.to_string()}</p> }.into_any(),
                })
        }}
        {stoppable.then(|| view! {
            <section class="stop" aria-labelledby="stop-h">
                <h2 id="stop-h">"Stop this payment"</h2>
                <p class="muted">
                    {if s.state == PaymentState::Released {
                        "Ramp holds this bill but has not paid it. Stopping asks Ramp to archive it first; if Ramp has already sent the money, nothing changes and you are told so."
                    } else {
                        "Nothing has been sent to Ramp yet. Stopping cancels it here."
                    }}
                    " Its cash is no longer committed and the bill can be decided again."
                </p>
                <ActionForm action=stop attr:class="inline">
                    <input type="hidden" name="payment_id" value=pid />
                    <label for="stop-reason">"Reason"</label>
                    <input id="stop-reason" type="text" name="reason" required=true minlength="5" placeholder="e.g. client went into breach" data-testid="stop-reason" />
                    <button type="submit" class="danger" data-testid="stop-payment">"Stop payment"</button>
                </ActionForm>
            </section>
        })}
        {(s.state == PaymentState::AwaitingSecondApproval).then(|| view! {
            <p class="notice" data-testid="awaiting-notice">
                "Waiting for a second, different person to approve it. "
                <a href="/approvals/waiting">"Decide on the waiting list"</a>
            </p>
        })}
        {(!p.order_notes.is_empty()).then(|| view! {
            <div class="notice info" role="note" data-testid="order-notes">
                {p.order_notes.iter().map(|n| view! { <p>{n.clone()}</p> }).collect_view()}
            </div>
        })}
        <h2>"Chain of custody"</h2>
        <ol class="custody">
            {p
                .steps
                .into_iter()
                .map(|st| {
                    view! {
                        <li data-testid="custody-step" data-state=st.state.as_str() class="done">
                            <strong>{st.state.as_str()}</strong>
                            <span class="owner">{format!("owner: {}", st.owner)}</span>
                            <span>{format!("by {}", st.actor)}</span>
                            <span class="evidence">{st.evidence}</span>
                            <time>{st.at.format("%Y-%m-%d %H:%M:%S UTC").to_string()}</time>
                        </li>
                    }
                })
                .collect_view()}
            {pending
                .into_iter()
                .map(|st| view! { <li class="pending">{format!("{} — waiting", st.as_str())}</li> })
                .collect_view()}
        </ol>
        <dl class="refs">
            <dt>"Ramp bill"</dt>
            <dd class="mono">{p.ramp_bill_id.unwrap_or_else(|| "—".into())}</dd>
            <dt>"QBO BillPayment"</dt>
            <dd class="mono">{p.qbo_bill_payment_id.unwrap_or_else(|| "—".into())}</dd>
            <dt>"Plaid transaction"</dt>
            <dd class="mono">{p.plaid_txn_id.unwrap_or_else(|| "—".into())}</dd>
        </dl>
    }
}
