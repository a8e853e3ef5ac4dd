use crate::api::clients::get_portfolio;
use crate::components::layout::{loaded, use_session};
use crate::components::status::GuardrailBadge;
use crate::model::{ClientSummary, Currency, GuardrailStatus, Money};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn PortfolioPage() -> impl IntoView {
    let session = use_session();
    let data = Resource::new(move || session.advance.version().get(), |_| get_portfolio());
    view! {
        <Title text="Portfolio · RowCol" />
        <h1>"Portfolio"</h1>
        {loaded(
            data,
            move |rows| {
                view! { <PortfolioTable rows /> }.into_any()
            },
        )}
    }
}

/// Sort keys of the portfolio (`?sort=…&desc=1`, links in the headers so
/// they work without JavaScript too).
fn sort_rows(rows: &mut [ClientSummary], key: &str, desc: bool) {
    let rank = |s: GuardrailStatus| match s {
        GuardrailStatus::Untrusted => 0,
        GuardrailStatus::Breach => 1,
        GuardrailStatus::Stale => 2,
        GuardrailStatus::AtRisk => 3,
        GuardrailStatus::NoData => 4,
        GuardrailStatus::Ok => 5,
    };
    match key {
        "cash" => rows.sort_by_key(|c| c.cash.available.as_ref().map(|m| m.minor)),
        "burn" => rows.sort_by_key(|c| c.cash.daily_burn.minor),
        "runway" => rows.sort_by_key(|c| c.runway_days.unwrap_or(i64::MAX)),
        "due" => rows.sort_by_key(|c| c.due_soon_total.minor),
        "committed" => rows.sort_by_key(|c| c.cash.approved_unpaid.minor),
        "status" => rows.sort_by_key(|c| rank(c.status)),
        // Most to do first, by default.
        "attention" => rows.sort_by_key(|c| std::cmp::Reverse(c.attention())),
        _ => rows.sort_by(|a, b| a.name.cmp(&b.name)),
    }
    if desc {
        rows.reverse();
    }
}

fn status_key(s: GuardrailStatus) -> &'static str {
    match s {
        GuardrailStatus::Ok => "ok",
        GuardrailStatus::AtRisk => "at_risk",
        GuardrailStatus::Breach => "breach",
        GuardrailStatus::NoData => "no_data",
        GuardrailStatus::Stale => "stale",
        GuardrailStatus::Untrusted => "untrusted",
    }
}

#[component]
fn PortfolioTable(rows: Vec<ClientSummary>) -> impl IntoView {
    let query = use_query_map();
    let q = query.read_untracked();
    let key = q.get("sort").unwrap_or_else(|| "attention".into());
    let desc = q.get("desc").is_some_and(|d| d == "1");
    let status = q.get("status").unwrap_or_default();
    drop(q);
    let mut rows: Vec<ClientSummary> = rows
        .into_iter()
        .filter(|c| status.is_empty() || status_key(c.status) == status)
        .collect();
    sort_rows(&mut rows, &key, desc);
    let head = |label: &'static str, k: &'static str, num: bool| {
        let next_desc = key == k && !desc;
        let href = format!(
            "/?sort={k}{}{}",
            if next_desc { "&desc=1" } else { "" },
            if status.is_empty() {
                String::new()
            } else {
                format!("&status={status}")
            }
        );
        let sorted = (key == k).then_some(if desc { "descending" } else { "ascending" });
        view! {
            <th class:num=num aria-sort=sorted.unwrap_or("none")>
                <a href=href>{label}</a>
            </th>
        }
    };
    // Totals over the rows shown, per currency.
    let mut totals: std::collections::BTreeMap<String, (i64, i64, i64)> = Default::default();
    for c in &rows {
        let t = totals
            .entry(c.cash.daily_burn.currency.as_str().to_owned())
            .or_default();
        t.0 += c.cash.available.as_ref().map_or(0, |m| m.minor);
        t.1 += c.due_soon_total.minor;
        t.2 += c.cash.approved_unpaid.minor;
    }
    let money = |cur: &str, v: i64| {
        Money::new(v, Currency::parse(cur).unwrap_or_else(|_| Currency::usd())).to_string()
    };
    let total_cells = |i: usize| {
        totals
            .iter()
            .map(|(cur, t)| money(cur, [t.0, t.1, t.2][i]))
            .collect::<Vec<_>>()
            .join(" + ")
    };
    let n = rows.len();
    let attention_total: u32 = rows.iter().map(|c| c.attention()).sum();
    view! {
        <form method="get" action="/" class="filters">
            <label>
                "Status"
                <select name="status">
                    <option value="" selected=status.is_empty()>"all"</option>
                    <option value="breach" selected=status == "breach">"breach"</option>
                    <option value="at_risk" selected=status == "at_risk">"at risk"</option>
                    <option value="untrusted" selected=status == "untrusted">"untrusted"</option>
                    <option value="stale" selected=status == "stale">"stale"</option>
                    <option value="ok" selected=status == "ok">"OK"</option>
                </select>
            </label>
            <input type="hidden" name="sort" value=key.clone() />
            <button type="submit">"Filter"</button>
        </form>
        <details class="legend">
            <summary>"What the status words mean"</summary>
            <dl class="refs">
                <dt>"OK"</dt>
                <dd>"Cash after what is already committed stays above the buffer (buffer days × daily burn), even after paying every bill due in the next 14 days."</dd>
                <dt>"At risk"</dt>
                <dd>"Above the buffer today, but paying every bill due in 14 days would take it under."</dd>
                <dt>"Breach"</dt>
                <dd>"Already under the buffer: new approvals are refused unless an admin overrides with a reason."</dd>
                <dt>"Stale data"</dt>
                <dd>"The bank balance or history is older than the client's policy allows; nothing is judged on it until it is read again."</dd>
                <dt>"Untrusted"</dt>
                <dd>"A rail needs reconnecting; nothing is approved until it is fixed."</dd>
            </dl>
        </details>
        <div class="table-wrap" role="region" aria-label="Clients" tabindex="0">
        <table class="grid" data-testid="portfolio">
            <thead>
                <tr>
                    {head("Client", "name", false)}
                    {head("Needs attention", "attention", true)}
                    {head("Available cash", "cash", true)}
                    <th>"As of"</th>
                    {head("Daily burn", "burn", true)}
                    {head("Runway", "runway", true)}
                    {head("Due in 14 days", "due", true)}
                    {head("Approved, unpaid", "committed", true)}
                    {head("Guardrail", "status", false)}
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
                        let attention = c.attention();
                        let why_attention = format!(
                            "{} due in 14 days, {} waiting for a second approver, {} open hygiene item(s){}",
                            c.due_soon_count,
                            c.waiting_count,
                            c.open_hygiene,
                            if c.connection_issue.is_some() { ", a connection to fix" } else { "" }
                        );
                        let reason = c.status_reason();
                        view! {
                            <tr data-testid="client-row" data-status=status_key(c.status)>
                                <td>
                                    <a href=href>{c.name.clone()}</a>
                                </td>
                                <td class="num" title=why_attention.clone() data-testid="attention">
                                    {attention.to_string()}
                                    <span class="sr-only">{format!(" ({why_attention})")}</span>
                                </td>
                                <td class="num">{cash}</td>
                                <td class="muted">{as_of}</td>
                                <td class="num">{c.cash.daily_burn.to_string()}</td>
                                <td class="num">{runway}</td>
                                <td class="num">{due}</td>
                                <td class="num">{c.cash.approved_unpaid.to_string()}</td>
                                <td>
                                    <GuardrailBadge status=c.status />
                                    <div class="muted small" data-testid="status-reason">{reason}</div>
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
            <tfoot>
                <tr data-testid="portfolio-totals">
                    <th scope="row">{format!("{n} client{}", if n == 1 { "" } else { "s" })}</th>
                    <td class="num">{attention_total.to_string()}</td>
                    <td class="num">{total_cells(0)}</td>
                    <td></td>
                    <td></td>
                    <td></td>
                    <td class="num">{total_cells(1)}</td>
                    <td class="num">{total_cells(2)}</td>
                    <td></td>
                </tr>
            </tfoot>
        </table>
        </div>
    }
}
