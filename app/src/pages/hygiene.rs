use crate::api::hygiene::get_hygiene;
use crate::components::layout::{use_session, LoadError};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn HygienePage() -> impl IntoView {
    let session = use_session();
    let data = Resource::new(move || session.advance.version().get(), |_| get_hygiene());
    view! {
        <Title text="Hygiene tray · RowCol" />
        <h1>"Hygiene tray"</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                data.get()
                    .map(|r| match r {
                        Ok(items) if items.is_empty() => {
                            view! { <p class="empty">"Nothing needs attention."</p> }.into_any()
                        }
                        Ok(items) => {
                            view! {
                                <table class="grid">
                                    <thead>
                                        <tr>
                                            <th>"Opened"</th>
                                            <th>"Client"</th>
                                            <th>"Severity"</th>
                                            <th>"Reason"</th>
                                            <th>"Detail"</th>
                                            <th>"Payment"</th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {items
                                            .into_iter()
                                            .map(|h| {
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
                                                    </tr>
                                                }
                                            })
                                            .collect_view()}
                                    </tbody>
                                </table>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <LoadError error=e /> }.into_any(),
                    })
            }}
        </Transition>
    }
}
