use crate::api::clients::get_portfolio;
use crate::components::layout::{use_session, LoadError};
use crate::components::status::GuardrailBadge;
use crate::model::ClientSummary;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn PortfolioPage() -> impl IntoView {
    let session = use_session();
    let data = Resource::new(move || session.advance.version().get(), |_| get_portfolio());
    view! {
        <Title text="Portfolio · RowCol" />
        <h1>"Portfolio"</h1>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || {
                data.get()
                    .map(|r| match r {
                        Ok(rows) => view! { <PortfolioTable rows /> }.into_any(),
                        Err(e) => view! { <LoadError error=e /> }.into_any(),
                    })
            }}
        </Transition>
    }
}

#[component]
fn PortfolioTable(rows: Vec<ClientSummary>) -> impl IntoView {
    view! {
        <table class="grid" data-testid="portfolio">
            <thead>
                <tr>
                    <th>"Client"</th>
                    <th class="num">"Available cash"</th>
                    <th>"As of"</th>
                    <th class="num">"Daily burn"</th>
                    <th class="num">"Runway"</th>
                    <th class="num">"Due in 14 days"</th>
                    <th class="num">"Approved, unpaid"</th>
                    <th>"Guardrail"</th>
                </tr>
            </thead>
            <tbody>
                {rows
                    .into_iter()
                    .map(|c| {
                        let href = format!("/clients/{}", c.client_id);
                        let cash = c.cash.available.as_ref().map(|m| m.to_string()).unwrap_or_else(|| "—".into());
                        let as_of = c
                            .cash
                            .as_of
                            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                            .unwrap_or_else(|| "never".into());
                        let runway = c.runway_days.map(|d| format!("{d} days")).unwrap_or_else(|| "∞".into());
                        let due = format!("{} · {}", c.due_soon_count, c.due_soon_total);
                        view! {
                            <tr data-testid="client-row">
                                <td>
                                    <a href=href>{c.name.clone()}</a>
                                </td>
                                <td class="num">{cash}</td>
                                <td class="muted">{as_of}</td>
                                <td class="num">{c.cash.daily_burn.to_string()}</td>
                                <td class="num">{runway}</td>
                                <td class="num">{due}</td>
                                <td class="num">{c.cash.approved_unpaid.to_string()}</td>
                                <td>
                                    <GuardrailBadge status=c.status />
                                    {c
                                        .connection_issue
                                        .clone()
                                        .map(|i| {
                                            view! {
                                                <div class="warn" data-testid="connection-issue">
                                                    <a href="/connections">{i}</a>
                                                </div>
                                            }
                                        })}
                                </td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
