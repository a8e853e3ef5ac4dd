//! `/approvals/waiting`: payments approved once and waiting for a second,
//! different person. Advisors and admins approve or reject them here
//! (plain form posts, so it works with JavaScript off); the first approver
//! sees no approve button on their own.

use crate::api::approvals::{ApproveSecond, RejectPayment};
use crate::api::decide::get_waiting;
use crate::components::layout::{loaded, use_session};
use crate::model::{Role, WaitingPayment};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn WaitingPage() -> impl IntoView {
    let session = use_session();
    let second = ServerAction::<ApproveSecond>::new();
    let reject = ServerAction::<RejectPayment>::new();
    let data = Resource::new(
        move || {
            (
                second.version().get(),
                reject.version().get(),
                session.advance.version().get(),
            )
        },
        |_| get_waiting(),
    );
    let role = move || session.role();
    let message = move || match (second.value().get(), reject.value().get()) {
        (Some(Ok(m)), _) | (_, Some(Ok(m))) => Some(Ok(m)),
        (Some(Err(e)), _) | (_, Some(Err(e))) => Some(Err(e.to_string())),
        _ => None,
    };
    view! {
        <Title text="Waiting for a second approver · RowCol" />
        <h1>"Waiting for a second approver"</h1>
        <p class="muted">
            "Each of these was approved once and needs a second, different person before RowCol releases it. Its cash already counts as committed. "
            <a href="/approvals">"Back to approvals"</a>
        </p>
        {move || {
            message()
                .map(|m| match m {
                    Ok(text) => view! { <p class="success" role="status" data-testid="waiting-result">{text}</p> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert" data-testid="waiting-error">{e}</p> }.into_any(),
                })
        }}
        {loaded(
            data,
            move |r| {
                match r {
                    rows if rows.is_empty() => {
                        view! { <p class="empty" data-testid="waiting-empty">"Nothing is waiting."</p> }.into_any()
                    }
                    rows => view! { <WaitingTable rows second reject role=role() /> }.into_any(),
                }
            },
        )}
    }
}

#[component]
fn WaitingTable(
    rows: Vec<WaitingPayment>,
    second: ServerAction<ApproveSecond>,
    reject: ServerAction<RejectPayment>,
    role: Role,
) -> impl IntoView {
    let can_decide = role >= Role::Advisor;
    view! {
        <div class="table-wrap" role="region" aria-label="Payments waiting for a second approver" tabindex="0">
            <table class="grid" data-testid="waiting-table">
                <thead>
                    <tr>
                        <th scope="col">"Client"</th>
                        <th scope="col">"Vendor"</th>
                        <th scope="col" class="num">"Amount"</th>
                        <th scope="col">"First approved by"</th>
                        <th scope="col">"Why it waits"</th>
                        {can_decide.then(|| view! { <th scope="col">"Decide"</th> })}
                    </tr>
                </thead>
                <tbody>
                    {rows
                        .into_iter()
                        .map(|w| {
                            let pid = w.payment_id.to_string();
                            let pid2 = pid.clone();
                            let pid_row = pid.clone();
                            let label = format!("Reason for rejecting {} {}", w.vendor_name, w.amount);
                            view! {
                                <tr data-testid="waiting-row" data-payment=pid_row>
                                    <td><a href=format!("/clients/{}", w.client_id)>{w.client_name.clone()}</a></td>
                                    <td>
                                        <a href=format!("/payments/{}", w.payment_id)>{w.vendor_name.clone()}</a>
                                        " " {w.doc_number.clone().unwrap_or_default()}
                                    </td>
                                    <td class="num">{w.amount.to_string()}</td>
                                    <td>
                                        {w.first_approver.clone()}
                                        <div class="muted">{w.first_approved_at.format("%Y-%m-%d %H:%M UTC").to_string()}</div>
                                    </td>
                                    <td>{w.why.join(" ")}</td>
                                    {can_decide.then(|| view! {
                                        <td class="actions">
                                            {if w.mine {
                                                view! { <p class="muted" data-testid="own-approval">"You approved this first; someone else must approve it."</p> }.into_any()
                                            } else {
                                                view! {
                                                    <ActionForm action=second attr:class="inline">
                                                        <input type="hidden" name="payment_id" value=pid />
                                                        <button type="submit" class="primary" data-testid="approve-second">"Approve (second)"</button>
                                                    </ActionForm>
                                                }.into_any()
                                            }}
                                            <ActionForm action=reject attr:class="inline">
                                                <input type="hidden" name="payment_id" value=pid2 />
                                                <input type="text" name="reason" required=true placeholder="Reason" aria-label=label data-testid="reject-reason" />
                                                <button type="submit" data-testid="reject">"Reject"</button>
                                            </ActionForm>
                                        </td>
                                    })}
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}
