//! `/hygiene`: the tray of things to fix. Each item says what happened in
//! plain words, with the codes and raw evidence one click away, and offers
//! exactly the actions the server accepts from this person (the same pure
//! rules decide both). Filters are a plain GET form, so every view is a
//! link; closed items stay visible under *resolved* and *dismissed* with
//! who closed them, how and when.

use crate::api::hygiene::{get_hygiene, ActOnHygiene};
use crate::api::payments::StopPayment;
use crate::components::layout::{loaded, use_session};
use crate::domain::custody::PaymentState;
use crate::domain::tray::{headline, reason_label, ItemStatus, TrayAction};
use crate::model::{ClientId, HygieneItemView, ReasonCode, Role, Severity, TrayView};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn HygienePage() -> impl IntoView {
    let session = use_session();
    let query = use_query_map();
    let act = ServerAction::<ActOnHygiene>::new();
    let stop = ServerAction::<StopPayment>::new();
    let q = move |k: &str| query.read().get(k).unwrap_or_default();
    let data = Resource::new(
        move || {
            (
                [q("client"), q("severity"), q("reason"), q("state")],
                session.advance.version().get(),
                act.version().get(),
                stop.version().get(),
            )
        },
        |([client, severity, reason, state], _, _, _)| get_hygiene(client, severity, reason, state),
    );
    let can_act = move || session.role() >= Role::Advisor;
    let outcome = move || match (act.value().get(), stop.value().get()) {
        (Some(Err(e)), _) | (_, Some(Err(e))) => Some(("notice bad", e.to_string())),
        (Some(Ok(m)), _) | (_, Some(Ok(m))) => Some(("notice", m)),
        _ => None,
    };
    view! {
        <Title text="Hygiene tray · RowCol" />
        <h1>"Hygiene tray"</h1>
        {move || {
            outcome()
                .map(|(class, msg)| {
                    view! { <p class=class role="status" data-testid="hygiene-outcome">{msg}</p> }
                })
        }}
        {loaded(
            data,
            move |tray: TrayView| {
                let more = tray.more;
                let state = q("state");
                view! {
                    <Filters clients=tray.clients.clone() />
                    {if tray.items.is_empty() {
                        view! {
                            <p class="empty" data-testid="tray-empty">
                                {if state.is_empty() || state == "open" {
                                    "Nothing needs attention."
                                } else {
                                    "No items match."
                                }}
                            </p>
                        }
                            .into_any()
                    } else {
                        view! {
                            <ul class="tray" aria-label="Hygiene items">
                                {tray
                                    .items
                                    .into_iter()
                                    .map(|h| view! { <Item h=h act=act stop=stop can_act=can_act() /> })
                                    .collect_view()}
                            </ul>
                        }
                            .into_any()
                    }}
                    {more
                        .then(|| {
                            view! {
                                <p class="notice">
                                    "Showing the newest 200 items. Narrow the filters to see older ones."
                                </p>
                            }
                        })}
                }
                    .into_any()
            },
        )}
    }
}

/// The filters: client, severity, reason and state (open by default).
#[component]
fn Filters(clients: Vec<(ClientId, String)>) -> impl IntoView {
    let query = use_query_map();
    let v = move |k: &str| query.read_untracked().get(k).unwrap_or_default();
    let (client, severity, reason, state) = (v("client"), v("severity"), v("reason"), v("state"));
    view! {
        <form method="get" action="/hygiene" class="filters" data-testid="tray-filters">
            <label>
                "Client"
                <select name="client">
                    <option value="" selected=client.is_empty()>"all clients"</option>
                    {clients
                        .into_iter()
                        .map(|(id, name)| {
                            let sel = client == id.as_str();
                            view! { <option value=id.to_string() selected=sel>{name}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <label>
                "Severity"
                <select name="severity">
                    <option value="" selected=severity.is_empty()>"any"</option>
                    {Severity::ALL
                        .iter()
                        .map(|s| {
                            view! {
                                <option value=s.as_str() selected=severity == s.as_str()>{s.as_str()}</option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            <label>
                "Reason"
                <select name="reason">
                    <option value="" selected=reason.is_empty()>"any"</option>
                    {ReasonCode::ALL
                        .iter()
                        .map(|r| {
                            view! {
                                <option value=r.as_str() selected=reason == r.as_str()>{reason_label(*r)}</option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            <label>
                "State"
                <select name="state" data-testid="tray-state">
                    <option value="open" selected=state.is_empty() || state == "open">"open"</option>
                    <option value="resolved" selected=state == "resolved">"resolved"</option>
                    <option value="dismissed" selected=state == "dismissed">"dismissed"</option>
                    <option value="all" selected=state == "all">"all"</option>
                </select>
            </label>
            <button type="submit" data-testid="tray-filter">"Filter"</button>
            <a href="/hygiene">"Clear"</a>
        </form>
    }
}

fn severity_class(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "badge bad",
        Severity::High => "badge warn",
        _ => "badge info",
    }
}

/// Who closed an item, in words.
fn closed_line(h: &HygieneItemView) -> Option<String> {
    let at = h
        .closed_at
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    let note = h
        .close_note
        .as_deref()
        .map(|n| format!(": \u{201c}{n}\u{201d}"))
        .unwrap_or_default();
    match (h.status, h.closed_by.as_deref()) {
        (ItemStatus::Open, _) => None,
        (_, Some("rowcol")) => Some(format!("Cleared itself on {at}{note}")),
        (ItemStatus::Resolved, Some(by)) => Some(format!("Resolved by {by} on {at}{note}")),
        (ItemStatus::Dismissed, Some(by)) => Some(format!("Dismissed by {by} on {at}{note}")),
        (ItemStatus::Resolved, None) => Some(format!("Resolved on {at}")),
        (ItemStatus::Dismissed, None) => Some(format!("Dismissed on {at}")),
    }
}

#[component]
fn Item(
    h: HygieneItemView,
    act: ServerAction<ActOnHygiene>,
    stop: ServerAction<StopPayment>,
    can_act: bool,
) -> impl IntoView {
    let hid = h.hygiene_id.to_string();
    let closed = closed_line(&h);
    // Until Ramp pays, a payment can still be stopped (unless the item's
    // own action already does that: cancelling a duplicate on Ramp).
    let stoppable = can_act
        && h.status == ItemStatus::Open
        && !h.actions.contains(&TrayAction::CancelOnRamp)
        && matches!(
            h.payment_state,
            Some(PaymentState::Approved | PaymentState::Released)
        );
    let stop_pid = h
        .payment_id
        .as_ref()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let attempts = h.attempts.clone();
    let client_link = h.client_id.as_ref().map(|c| format!("/clients/{c}"));
    let reconnect_href = h.client_id.as_ref().map_or_else(
        || "/connections".to_owned(),
        |c| format!("/connections#client-{c}"),
    );
    view! {
        <li class=format!("tray-item {}", h.status.as_str()) data-testid="hygiene-row" data-status=h.status.as_str()>
            <p class="headline">
                <span class=severity_class(h.severity)>{h.severity.as_str()}</span>
                " "
                <strong>{headline(h.reason_code)}</strong>
            </p>
            <p class="meta">
                {match (client_link, h.client_name.clone()) {
                    (Some(href), Some(name)) => view! { <a href=href>{name}</a> }.into_any(),
                    _ => view! { <span>"Firm-wide"</span> }.into_any(),
                }}
                {h.payment_summary.clone().map(|s| view! { " · " <span>{s}</span> })}
                {h
                    .payment_id
                    .clone()
                    .map(|p| view! { " · " <a href=format!("/payments/{p}")>"payment details"</a> })}
                " · opened " {h.created_at.format("%Y-%m-%d %H:%M UTC").to_string()}
            </p>
            {closed.map(|c| view! { <p class="closed" data-testid="closed-line">{c}</p> })}
            {(!attempts.is_empty())
                .then(|| {
                    view! {
                        <details class="why">
                            <summary>{format!("Attempts ({})", attempts.len())}</summary>
                            <ol data-testid="attempts">
                                {attempts
                                    .into_iter()
                                    .map(|a| {
                                        view! {
                                            <li>
                                                {format!(
                                                    "#{} {} · {}{}",
                                                    a.attempt,
                                                    a.at.format("%Y-%m-%d %H:%M:%S"),
                                                    a.outcome,
                                                    a.error.map(|e| format!(": {e}")).unwrap_or_default(),
                                                )}
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ol>
                        </details>
                    }
                })}
            <details class="why">
                <summary>"Evidence and codes"</summary>
                <p class="evidence">{h.detail.clone()}</p>
                <p class="evidence">
                    "Reason code " <code>{h.reason_code.as_str()}</code> " · item " <code>{hid.clone()}</code>
                </p>
            </details>
            <div class="actions">
                {h
                    .actions
                    .iter()
                    .map(|a| match a {
                        TrayAction::Reconnect => {
                            view! {
                                <a href=reconnect_href.clone() class="button" data-testid="reconnect">
                                    {a.label()}
                                </a>
                            }
                                .into_any()
                        }
                        a => view! { <ActionButton hid=hid.clone() action=*a act=act /> }.into_any(),
                    })
                    .collect_view()}
                {stoppable
                    .then(|| {
                        let label = format!("Reason for stopping payment {stop_pid}");
                        view! {
                            <ActionForm action=stop attr:class="inline">
                                <input type="hidden" name="payment_id" value=stop_pid.clone() />
                                <input type="text" name="reason" required=true minlength="5" placeholder="Reason" aria-label=label data-testid="tray-stop-reason" />
                                <button type="submit" class="danger" data-testid="tray-stop">"Stop payment"</button>
                            </ActionForm>
                        }
                    })}
            </div>
        </li>
    }
}

/// One action's form: the item, the action, and a note where one is needed.
#[component]
fn ActionButton(hid: String, action: TrayAction, act: ServerAction<ActOnHygiene>) -> impl IntoView {
    // The test ids the earlier tray had stay: `retry` for every retry-like
    // action, `dismiss` for dismiss.
    let testid = match action {
        TrayAction::RetryPayment
        | TrayAction::RetryRelease
        | TrayAction::ConfirmBankChange
        | TrayAction::ApproveNewVersion => "retry",
        a => a.as_str(),
    };
    let class = match action {
        TrayAction::CancelOnRamp => "danger",
        TrayAction::Dismiss => "secondary",
        _ => "",
    };
    let note = action.needs_note().then(|| {
        let label = format!("Note for: {}", action.label());
        view! {
            <input type="text" name="note" required=true minlength="5" placeholder="Note (why)" aria-label=label data-testid=format!("{}-note", action.as_str()) />
        }
    });
    view! {
        <ActionForm action=act attr:class="inline">
            <input type="hidden" name="hygiene_id" value=hid />
            <input type="hidden" name="action" value=action.as_str() />
            {note}
            <button type="submit" class=class data-testid=testid>{action.label()}</button>
        </ActionForm>
    }
}
