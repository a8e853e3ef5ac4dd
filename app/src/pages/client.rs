use crate::api::approvals::ApproveBills;
use crate::api::clients::get_client;
use crate::components::layout::{loaded, use_session};
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
    let publish = ServerAction::<crate::api::policy::SetClientPolicy>::new();
    let id = move || params.read().get("id").unwrap_or_default();
    let data = Resource::new(
        move || {
            (
                id(),
                approve.version().get(),
                session.advance.version().get(),
                publish.version().get(),
            )
        },
        |(id, _, _, _)| get_client(id),
    );
    let role = move || session.role();
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
        {loaded(
            data,
            move |detail| {
                view! { <ClientView detail approve publish selected role=role() /> }.into_any()
            },
        )}
    }
}

#[component]
fn ClientView(
    detail: ClientDetail,
    approve: ServerAction<ApproveBills>,
    publish: ServerAction<crate::api::policy::SetClientPolicy>,
    selected: RwSignal<HashSet<BillId>>,
    role: crate::model::Role,
) -> impl IntoView {
    let query = use_query_map();
    // Viewers change nothing: they see the bills and the numbers, no
    // approval controls.
    let can_approve = role >= crate::model::Role::Advisor;
    let confirming = RwSignal::new(false);
    // Effects run only in the browser: the disabled button and its reason
    // exist once the page is interactive, so a JavaScript-off form still
    // posts (and the server judges it).
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    Effect::new(move |_| {
        if approve.value().get().is_some() {
            confirming.set(false);
        }
    });
    let s = detail.summary.clone();
    let currency = s.cash.daily_burn.currency.clone();
    let amounts: Vec<(BillId, i64)> = detail
        .bills
        .iter()
        .map(|b| (b.bill_id.clone(), b.amount.minor))
        .collect();
    let amounts_for_verdict = amounts.clone();

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
        let total: i64 = amounts_for_verdict
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

    let untrusted_reason = s.connection_issue.clone();
    let selected_total = {
        let amounts = amounts.clone();
        move || {
            let chosen = selected.get();
            let n = amounts.iter().filter(|(id, _)| chosen.contains(id)).count();
            let total: i64 = amounts
                .iter()
                .filter(|(id, _)| chosen.contains(id))
                .map(|(_, a)| *a)
                .sum();
            (n, Money::new(total, currency.clone()))
        }
    };
    let blocked = {
        let selected_total = selected_total.clone();
        Memo::new(move |_| {
            let (n, _) = selected_total();
            if n == 0 {
                return Some("Select at least one bill.".to_owned());
            }
            match verdict.get() {
                Some(v) if v.pass => None,
                Some(v) => Some(format!(
                    "{} An admin may override it on the Approvals page, with a reason.",
                    v.reason()
                )),
                None => Some(match &untrusted_reason {
                    Some(why) => format!("Approvals are paused: {why}."),
                    None => "The bank data is missing or too old: refresh it first.".to_owned(),
                }),
            }
        })
    };
    let client_name = s.name.clone();
    let confirm_text = {
        let selected_total = selected_total.clone();
        move || {
            let (n, total) = selected_total();
            format!(
                "Approve {n} bill{} totalling {total} for {client_name}?",
                if n == 1 { "" } else { "s" }
            )
        }
    };
    let currency = s.cash.daily_burn.currency.clone();
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
    let client_id_for_policy = client_id.clone();
    let refresh_action = format!("/connections/{client_id}/sync?back=client");
    let refreshed = query.with_untracked(|q| q.get("synced").is_some());
    let policy = detail.policy.clone();
    use crate::domain::projection::Outflow;
    let today = detail.today;
    let projection = projection_of(&detail);
    let due_by_bill: Vec<(BillId, Outflow)> = detail
        .bills
        .iter()
        .map(|b| {
            (
                b.bill_id.clone(),
                Outflow {
                    on: b.due_date.max(today),
                    amount_minor: b.amount.minor,
                },
            )
        })
        .collect();
    let selected_outflows = Signal::derive(move || {
        let chosen = selected.get();
        due_by_bill
            .iter()
            .filter(|(id, _)| chosen.contains(id))
            .map(|(_, o)| *o)
            .collect::<Vec<_>>()
    });
    let bills_as_of = when(s.cash.bills_as_of);

    view! {
        <h1>{s.name.clone()} " " <GuardrailBadge status=s.status /></h1>
        <CashFacts s=s.clone() />
        {breach_notice(&s, &detail.bills)}
        {refreshed
            .then(|| {
                view! {
                    <p class="notice" data-testid="refresh-started">
                        "A refresh was started: RowCol reads this client's rails again now. Reload in a minute to see the new figures."
                    </p>
                }
            })}
        {judged_on_stale
            .then(|| {
                view! {
                    <div class="notice bad" data-testid="stale-notice">
                        <p>
                            "Stale data — refresh. The bank balance or history is older than this client's policy allows; approvals are refused until it is read again."
                        </p>
                        {can_approve
                            .then(|| {
                                view! {
                                    <form method="post" action=refresh_action.clone() class="inline">
                                        <button type="submit" data-testid="refresh-client">"Refresh now"</button>
                                    </form>
                                }
                            })}
                    </div>
                }
            })}

        <h2>"Cash projection"</h2>
        {projection.map(|p| view! { <crate::components::chart::CashChart p selected=selected_outflows /> })}
        <h2>"Open bills"</h2>
        <p class="muted" data-testid="bills-as-of">{format!("Ledger bills as of {bills_as_of}")}</p>
        <ActionForm action=approve>
            <input type="hidden" name="client_id" value=client_id />
            <div class="table-wrap" role="region" aria-label="Open bills" tabindex="0"><table class="grid">
                <thead>
                    <tr>
                        {can_approve.then(|| view! { <th scope="col"><span class="sr-only">"Select"</span></th> })}
                        <th>"Vendor"</th>
                        <th>"Invoice"</th>
                        <th>"Due"</th>
                        <th class="num">"Amount"</th>
                    </tr>
                </thead>
                <BillRows bills=detail.bills selected can_approve />
            </table></div>
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
                {can_approve.then(|| view! {
                    <button
                        type="submit"
                        class="primary"
                        data-testid="approve"
                        disabled=move || hydrated.get() && blocked.get().is_some()
                        on:click=move |ev| {
                            if !confirming.get_untracked() {
                                ev.prevent_default();
                                if blocked.get_untracked().is_none() {
                                    confirming.set(true);
                                }
                            }
                        }
                    >
                        "Approve selected…"
                    </button>
                    {move || {
                        hydrated
                            .get()
                            .then(|| blocked.get())
                            .flatten()
                            .map(|why| view! { <span class="muted" data-testid="approve-blocked">{why}</span> })
                    }}
                })}
            </div>
            {move || {
                (can_approve && confirming.get())
                    .then(|| {
                        let text = confirm_text.clone();
                        view! {
                            <div class="confirm" role="alertdialog" aria-labelledby="confirm-title" data-testid="confirm">
                                <p id="confirm-title"><strong>{text}</strong></p>
                                <p class="muted">"RowCol releases each bill to Ramp; bills at or over the dual-control threshold wait for a second approver."</p>
                                <button type="submit" class="primary" data-testid="confirm-approve">"Confirm approval"</button>
                                <button type="button" data-testid="cancel-approve" on:click=move |_| confirming.set(false)>"Cancel"</button>
                            </div>
                        }
                    })
            }}
        </ActionForm>
        {move || result().map(|m| view! { <p class="success" role="status" data-testid="approve-result">{m}</p> })}
        {move || error().map(|e| view! { <p class="error" role="alert" data-testid="approve-error">{e}</p> })}
        <p class="muted">{format!("Amounts in {}.", currency.as_str())}</p>

        <crate::components::policy::PolicyPanel
            p=policy
            client_id=client_id_for_policy
            currency=currency.clone()
            role
            publish
        />
        <h2>"Payments"</h2>
        <PaymentsTable payments=detail.payments />
    }
}

/// The client's cash at a glance: balance, burn, runway, commitments.
#[component]
fn CashFacts(s: crate::model::ClientSummary) -> impl IntoView {
    let as_of = when(s.cash.as_of);
    let history_as_of = when(s.cash.bank_history_as_of);
    view! {
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
    }
}

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "never".into())
}

/// The open bills, each with its checkbox for those who may approve.
#[component]
fn BillRows(
    bills: Vec<crate::model::BillView>,
    selected: RwSignal<HashSet<BillId>>,
    can_approve: bool,
) -> impl IntoView {
    view! {
        <tbody>
            {bills
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
                            {can_approve.then(|| view! {
                            <td>
                                <input
                                    type="checkbox"
                                    name="bill_ids[]"
                                    aria-label=format!("Select {} {}", b.vendor_name, b.amount)
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
                            })}
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
    }
}

/// The client's payments, each linked to its chain of custody.
#[component]
fn PaymentsTable(payments: Vec<crate::model::PaymentSummary>) -> impl IntoView {
    view! {
        <div class="table-wrap" role="region" aria-label="Payments" tabindex="0"><table class="grid">
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
                {payments
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
        </table></div>
    }
}

/// The projection: the held balance less committed payments on their
/// arrival dates, and the ticked bills on their due dates (today when
/// overdue), redrawn as the ticks change.
fn projection_of(detail: &ClientDetail) -> Option<crate::components::chart::Projection> {
    use crate::domain::projection::Outflow;
    let s = &detail.summary;
    let today = detail.today;
    s.cash
        .available
        .clone()
        .map(|available| crate::components::chart::Projection {
            today,
            days: 60,
            available,
            committed: detail
                .payments
                .iter()
                .filter(|p| {
                    use crate::domain::custody::PaymentState as P;
                    matches!(
                        p.state,
                        P::AwaitingSecondApproval
                            | P::Approved
                            | P::Released
                            | P::Paid
                            | P::Recorded
                    )
                })
                .map(|p| Outflow {
                    on: p.payment_arrival_date,
                    amount_minor: p.amount.minor,
                })
                .collect(),
            bills_due: detail
                .bills
                .iter()
                .map(|b| Outflow {
                    on: b.due_date,
                    amount_minor: b.amount.minor,
                })
                .collect(),
            buffer_minor: s
                .cash
                .daily_burn
                .minor
                .saturating_mul(i64::from(s.cash.buffer_days)),
        })
}

/// A client below its buffer is not a dead end: say why, with the numbers,
/// which bills are overdue, and what can be done.
fn breach_notice(
    s: &crate::model::ClientSummary,
    bills: &[crate::model::BillView],
) -> Option<impl IntoView> {
    if s.status != crate::model::GuardrailStatus::Breach {
        return None;
    }
    let available = s.cash.available.clone()?;
    let cur = available.currency.clone();
    let after = available.minor.checked_sub(s.cash.approved_unpaid.minor)?;
    let required = s
        .cash
        .daily_burn
        .minor
        .checked_mul(i64::from(s.cash.buffer_days))?;
    let overdue: Vec<String> = bills
        .iter()
        .filter(|b| b.overdue)
        .map(|b| format!("{} {} (due {})", b.vendor_name, b.amount, b.due_date))
        .collect();
    Some(view! {
        <div class="notice bad" data-testid="breach-notice" role="note">
            <p>
                <strong>"Below its buffer. "</strong>
                {format!(
                    "Cash {} minus {} already committed leaves {}, under the {}-day buffer of {} (short by {}).",
                    available,
                    s.cash.approved_unpaid,
                    Money::new(after, cur.clone()),
                    s.cash.buffer_days,
                    Money::new(required, cur.clone()),
                    Money::new(required - after, cur),
                )}
            </p>
            {(!overdue.is_empty()).then(|| view! { <p>{format!("Overdue: {}.", overdue.join("; "))}</p> })}
            <p>
                "What can be done: an admin may override the buffer with a written reason on the "
                <a href="/approvals">"Approvals"</a>
                " page; approve a smaller selection; or wait for expected cash to land in the bank."
            </p>
        </div>
    })
}
