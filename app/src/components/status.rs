use crate::domain::custody::PaymentState;
use crate::model::GuardrailStatus;
use leptos::prelude::*;

#[component]
pub fn GuardrailBadge(status: GuardrailStatus) -> impl IntoView {
    let class = match status {
        GuardrailStatus::Ok => "badge ok",
        GuardrailStatus::AtRisk => "badge warn",
        GuardrailStatus::Breach => "badge bad",
        GuardrailStatus::NoData => "badge muted",
        GuardrailStatus::Stale => "badge stale",
        GuardrailStatus::Untrusted => "badge bad",
    };
    view! { <span class=class>{status.label()}</span> }
}

#[component]
pub fn PaymentBadge(state: PaymentState, flagged: bool) -> impl IntoView {
    let class = if flagged {
        "badge bad"
    } else {
        match state {
            PaymentState::Verified => "badge ok",
            PaymentState::Failed | PaymentState::Rejected | PaymentState::Cancelled => "badge bad",
            _ => "badge info",
        }
    };
    view! {
        <span class=class data-testid="payment-state">
            {state.as_str()}
        </span>
        {flagged.then(|| view! { <span class="badge bad">"flagged"</span> })}
    }
}
