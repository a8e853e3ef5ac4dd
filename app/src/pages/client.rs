use crate::api::approvals::ApproveBills;
use crate::api::clients::get_client;
use crate::components::layout::{use_session, LoadError};
use crate::components::status::{GuardrailBadge, PaymentBadge};
use crate::domain::guardrails::{evaluate_liquidity, LiquidityInput};
use crate::model::{BillId, ClientDetail, Money};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};
use std::collections::HashSet;

#[component]
pub fn ClientPage() -> impl IntoView {
    let params = use_params_map();
    let session = use_session();
    let approve = ServerAction::<ApproveBills>::new();
    let id = move || params.read().get("id").unwrap_or_default();
    let data = Resource::new(
        move || {
            (
                id(),
                approve.version().get(),
                session.advance.version().get(),
            )
        },
        |(id, _, _)| get_client(id),
    );
    // The selection outlives a refetch, so a refused approval leaves the
    // advisor's ticks in place to adjust; a successful one clears them.
    let selected = RwSignal::new(HashSet::<BillId>::new());
    Effect::new(move |_| {
        if let Some(Ok(_)) = approve.value().get() {
            selected.set(HashSet::new());
        }
    });
    view! {
        <Title text="Client · RowCol" />
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                data.get()
                    .map(|r| match r {
                        Ok(detail) => view! { <ClientView detail approve selected /> }.into_any(),
                        Err(e) => view! { <LoadError error=e /> }.into_any(),
                    })
            }}
        </Transition>
    }
}

#[component]
fn ClientView(
    detail: ClientDetail,
    approve: ServerAction<ApproveBills>,
    selected: RwSignal<HashSet<BillId>>,
) -> impl IntoView {
    let query = use_query_map();
    let s = detail.summary.clone();
    let currency = s.cash.daily_burn.currency.clone();
    let amounts: Vec<(BillId, i64)> = detail
        .bills
        .iter()
        .map(|b| (b.bill_id.clone(), b.amount.minor))
        .collect();

    // The verdict is recomputed in the browser with the same pure function the
    // server uses when it re-checks the approval.
    let cash = s.cash.clone();
    // Never a PASS on data older than the policy allows: the server would
    // refuse the approval anyway.
    let judged_on_stale = matches!(
        s.status,
        crate::model::GuardrailStatus::Stale | crate::model::GuardrailStatus::Untrusted
    );
    let verdict = Memo::new(move |_| {
        if judged_on_stale {
            return None;
        }
        let chosen = selected.get();
        let total: i64 = amounts
            .iter()
            .filter(|(id, _)| chosen.contains(id))
            .map(|(_, a)| *a)
            .sum();
        cash.available.clone().and_then(|available| {
            evaluate_liquidity(&LiquidityInput {
                available,
                approved_unpaid: cash.approved_unpaid.clone(),
                selected: Money::new(total, cash.daily_burn.currency.clone()),
                daily_burn: cash.daily_burn.clone(),
                buffer_days: cash.buffer_days,
            })
            .ok()
        })
    });

    let result = move || match approve.value().get() {
        Some(Ok(outcome)) => Some(outcome.message),
        Some(Err(_)) => None,
        None => query
            .read()
            .get("approved")
            .map(|n| format!("Approved {n} bill(s); releasing on Ramp.")),
    };
    let error = move || match approve.value().get() {
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    let client_id = s.client_id.to_string();
    let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| "never".into())
    };
    let as_of = when(s.cash.as_of);
    let history_as_of = when(s.cash.bank_history_as_of);
    let bills_as_of = when(s.cash.bills_as_of);

    view! {
        <h1>{s.name.clone()} " " <GuardrailBadge status=s.status /></h1>
        <section class="facts">
            <div>
                <span class="label">"Available cash"</span>
                <strong>{s.cash.available.as_ref().map(|m| m.to_string()).unwrap_or_else(|| "—".into())}</strong>
                <span class="muted">{format!("as of {as_of}")}</span>
            </div>
            <div>
                <span class="label">"Daily burn"</span>
                <strong>{s.cash.daily_burn.to_string()}</strong>
                <span class="muted" data-testid="history-as-of">
                    {format!("bank history as of {history_as_of}")}
                </span>
            </div>
            <div>
                <span class="label">"Runway"</span>
                <strong>{s.runway_days.map(|d| format!("{d} days")).unwrap_or_else(|| "∞".into())}</strong>
            </div>
            <div>
                <span class="label">"Committed, not yet out of the balance"</span>
                <strong>{s.cash.approved_unpaid.to_string()}</strong>
            </div>
        </section>
        {judged_on_stale
            .then(|| {
                view! {
                    <p class="notice bad" data-testid="stale-notice">
                        "Stale data — refresh. The bank balance or history is older than this client's policy allows; approvals are refused until it is read again."
                    </p>
                }
            })}

        <h2>"Open bills"</h2>
        <p class="muted" data-testid="bills-as-of">{format!("Ledger bills as of {bills_as_of}")}</p>
        <ActionForm action=approve>
            <input type="hidden" name="client_id" value=client_id />
            <table class="grid">
                <thead>
                    <tr>
                        <th></th>
                        <th>"Vendor"</th>
                        <th>"Invoice"</th>
                        <th>"Due"</th>
                        <th class="num">"Amount"</th>
                    </tr>
                </thead>
                <tbody>
                    {detail
                        .bills
                        .into_iter()
                        .map(|b| {
                            let id = b.bill_id.clone();
                            let id_for_check = b.bill_id.clone();
                            view! {
                                <tr
                                    data-testid="bill-row"
                                    data-amount-minor=b.amount.minor.to_string()
                                    class:overdue=b.overdue
                                >
                                    <td>
                                        <input
                                            type="checkbox"
                                            name="bill_ids[]"
                                            value=b.bill_id.to_string()
                                            prop:checked=move || selected.read().contains(&id_for_check)
                                            on:change=move |ev| {
                                                let on = event_target_checked(&ev);
                                                let id = id.clone();
                                                selected
                                                    .update(|s| {
                                                        if on {
                                                            s.insert(id);
                                                        } else {
                                                            s.remove(&id);
                                                        }
                                                    });
                                            }
                                        />
                                    </td>
                                    <td>{b.vendor_name}</td>
                                    <td>{b.doc_number.unwrap_or_default()}</td>
                                    <td>
                                        {b.due_date.to_string()}
                                        {b.overdue.then(|| view! { <span class="badge bad">"overdue"</span> })}
                                    </td>
                                    <td class="num">{b.amount.to_string()}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
            <div class="verdict-bar">
                {move || match verdict.get() {
                    Some(v) => {
                        view! {
                            <span
                                class=if v.pass { "badge ok" } else { "badge bad" }
                                data-testid="guardrail-verdict"
                            >
                                {if v.pass { "PASS" } else { "FAIL" }}
                            </span>
                            <span>"Cash after: " <strong data-testid="cash-after">{v.cash_after.to_string()}</strong></span>
                            <span>
                                {format!("Required {}-day buffer: ", s.cash.buffer_days)}
                                <strong data-testid="required-buffer">{v.required_buffer.to_string()}</strong>
                            </span>
                            <span>
                                "Runway: "
                                {v.runway_before_days.map(|d| d.to_string()).unwrap_or_else(|| "∞".into())}
                                " → "
                                {v.runway_after_days.map(|d| d.to_string()).unwrap_or_else(|| "∞".into())}
                                " days"
                            </span>
                        }
                            .into_any()
                    }
                    None => {
                        view! {
                            <span class="badge muted" data-testid="guardrail-verdict">
                                {if judged_on_stale { "STALE DATA — REFRESH" } else { "NO CASH DATA" }}
                            </span>
                        }
                            .into_any()
                    }
                }}
                <button type="submit" class="primary" data-testid="approve">
                    "Approve selected"
                </button>
            </div>
        </ActionForm>
        {move || result().map(|m| view! { <p class="success" role="status" data-testid="approve-result">{m}</p> })}
        {move || error().map(|e| view! { <p class="error" role="alert" data-testid="approve-error">{e}</p> })}
        <p class="muted">{format!("Amounts in {}.", currency.as_str())}</p>

        <h2>"Payments"</h2>
        <table class="grid">
            <thead>
                <tr>
                    <th>"Vendor"</th>
                    <th>"Invoice"</th>
                    <th class="num">"Amount"</th>
                    <th>"Arrives"</th>
                    <th>"State"</th>
                </tr>
            </thead>
            <tbody>
                {detail
                    .payments
                    .into_iter()
                    .map(|p| {
                        view! {
                            <tr data-testid="payment-row">
                                <td>
                                    <a href=format!("/payments/{}", p.payment_id)>{p.vendor_name}</a>
                                </td>
                                <td>{p.doc_number.unwrap_or_default()}</td>
                                <td class="num">{p.amount.to_string()}</td>
                                <td>{p.payment_arrival_date.to_string()}</td>
                                <td>
                                    <PaymentBadge state=p.state flagged=p.flag_reason.is_some() />
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
