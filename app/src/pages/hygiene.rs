use crate::api::hygiene::{get_hygiene, DismissHygiene, RetryPayment};
use crate::api::payments::StopPayment;
use crate::components::layout::{loaded, use_session};
use crate::domain::custody::PaymentState;
use crate::model::{ReasonCode, Role};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn HygienePage() -> impl IntoView {
    let session = use_session();
    let retry = ServerAction::<RetryPayment>::new();
    let dismiss = ServerAction::<DismissHygiene>::new();
    let stop = ServerAction::<StopPayment>::new();
    let data = Resource::new(
        move || {
            (
                session.advance.version().get(),
                retry.version().get(),
                dismiss.version().get(),
                stop.version().get(),
            )
        },
        |_| get_hygiene(),
    );
    // Only the controls this role may use are shown: the server refuses a
    // viewer's retry, dismiss and stop, and only admins reconnect rails.
    let can_act = move || session.role() >= Role::Advisor;
    let can_reconnect = move || session.role() >= Role::Admin;
    let outcome = move || match (
        retry.value().get(),
        dismiss.value().get(),
        stop.value().get(),
    ) {
        (Some(Err(e)), _, _) | (_, Some(Err(e)), _) | (_, _, Some(Err(e))) => {
            Some(("notice bad", e.to_string()))
        }
        (_, _, Some(Ok(m))) => Some(("notice", m)),
        (Some(Ok(o)), _, _) => Some(("notice", o.message)),
        _ => None,
    };
    view! {
        <Title text="Hygiene tray · RowCol" />
        <h1>"Hygiene tray"</h1>
        {move || {
            outcome()
                .map(|(class, msg)| view! { <p class=class data-testid="hygiene-outcome">{msg}</p> })
        }}
        {loaded(
            data,
            move |r| {
                match r {
                    items if items.is_empty() => {
                        view! { <p class="empty">"Nothing needs attention."</p> }.into_any()
                    }
                    items => {
                        view! {
                            <div class="table-wrap" role="region" aria-label="Hygiene items" tabindex="0"><table class="grid">
                                <thead>
                                    <tr>
                                        <th>"Opened"</th>
                                        <th>"Client"</th>
                                        <th>"Severity"</th>
                                        <th>"Reason"</th>
                                        <th>"Detail"</th>
                                        <th>"Payment"</th>
                                        <th></th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {items
                                        .into_iter()
                                        .map(|h| {
                                            let hid = h.hygiene_id.to_string();
                                            // A rail waiting for its owner: the fix is on
                                            // the Connections page (admins reconnect).
                                            let reconnect = can_reconnect()
                                                && h.reason_code == ReasonCode::RailReauthNeeded;
                                            let retryable = can_act() && matches!(
                                                h.reason_code,
                                                ReasonCode::ReleaseFailed
                                                    | ReasonCode::ReleaseUnconfirmed
                                                    | ReasonCode::VendorBankChanged
                                            ) && h.payment_id.is_some();
                                            let confirm = h.reason_code == ReasonCode::VendorBankChanged;
                                            // Until Ramp pays, the payment can still be stopped.
                                            let stoppable = can_act()
                                                && matches!(
                                                    h.payment_state,
                                                    Some(PaymentState::Approved | PaymentState::Released)
                                                );
                                            let stop_pid = h.payment_id.as_ref().map(|p| p.to_string()).unwrap_or_default();
                                            view! {
                                                <tr data-testid="hygiene-row">
                                                    <td>{h.created_at.format("%Y-%m-%d %H:%M").to_string()}</td>
                                                    <td>{h.client_name.unwrap_or_default()}</td>
                                                    <td>
                                                        <span class=format!("badge sev-{}", h.severity)>{h.severity.as_str()}</span>
                                                    </td>
                                                    <td>{h.reason_code.as_str()}</td>
                                                    <td>{h.detail}</td>
                                                    <td>
                                                        {h
                                                            .payment_id
                                                            .map(|p| {
                                                                view! { <a href=format!("/payments/{p}")>"open"</a> }
                                                            })}
                                                    </td>
                                                    <td class="actions">
                                                        {reconnect
                                                            .then(|| {
                                                                view! {
                                                                    <a href="/connections" class="button" data-testid="reconnect">
                                                                        "Reconnect"
                                                                    </a>
                                                                }
                                                            })}
                                                        {retryable
                                                            .then(|| {
                                                                let hid = hid.clone();
                                                                view! {
                                                                    <ActionForm action=retry>
                                                                        <input type="hidden" name="hygiene_id" value=hid />
                                                                        <button type="submit" data-testid="retry">
                                                                            {if confirm {
                                                                                "Confirmed with the vendor: release"
                                                                            } else {
                                                                                "Retry (fresh check)"
                                                                            }}
                                                                        </button>
                                                                    </ActionForm>
                                                                }
                                                            })}
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
                                                        {can_act()
                                                            .then(|| {
                                                                view! {
                                                                    <ActionForm action=dismiss>
                                                                        <input type="hidden" name="hygiene_id" value=hid />
                                                                        <button type="submit" class="secondary" data-testid="dismiss">
                                                                            "Dismiss"
                                                                        </button>
                                                                    </ActionForm>
                                                                }
                                                            })}
                                                    </td>
                                                </tr>
                                            }
                                        })
                                        .collect_view()}
                                </tbody>
                            </table></div>
                        }
                            .into_any()
                    }
                }
            },
        )}
    }
}
