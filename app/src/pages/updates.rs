//! `/updates`: each person's digest: what changed since they last looked
//! (payments that failed, came back or may go twice; other flags; broken
//! connections; payments waiting for a second approver), in plain words,
//! each linking to where it is fixed. *Mark all as seen* moves their
//! "since" to now (a plain form post, so it works with JavaScript off).

use crate::api::notify::{get_digest, MarkDigestSeen};
use crate::components::layout::loaded;
use crate::model::{DigestItem, DigestView};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn UpdatesPage() -> impl IntoView {
    let seen = ServerAction::<MarkDigestSeen>::new();
    let data = Resource::new(move || seen.version().get(), |_| get_digest());
    view! {
        <Title text="Updates · RowCol" />
        <h1>"Updates"</h1>
        {loaded(data, move |d| view! { <Digest d seen /> }.into_any())}
    }
}

#[component]
fn Digest(d: DigestView, seen: ServerAction<MarkDigestSeen>) -> impl IntoView {
    let since = d.since.format("%Y-%m-%d %H:%M UTC").to_string();
    let intro = if d.first_look {
        format!("What changed in the last week (since {since}).")
    } else {
        format!("What changed since you last marked these as seen ({since}).")
    };
    let nothing =
        d.urgent.is_empty() && d.flagged.is_empty() && d.broken.is_empty() && d.waiting == 0;
    view! {
        <p class="muted" data-testid="digest-since">{intro}</p>
        {nothing.then(|| view! { <p class="empty" data-testid="digest-empty">"Nothing new. All quiet."</p> })}
        {(!d.urgent.is_empty()).then(|| view! {
            <section class="card" aria-labelledby="digest-urgent">
                <h2 id="digest-urgent">"Payments that need you"</h2>
                <Items items=d.urgent.clone() testid="digest-urgent" />
            </section>
        })}
        {(!d.broken.is_empty()).then(|| view! {
            <section class="card" aria-labelledby="digest-broken">
                <h2 id="digest-broken">"Connections to renew"</h2>
                <p class="muted">"RowCol cannot read or pay for these clients on these rails until their owner signs in again."</p>
                <ul data-testid="digest-broken">
                    {d.broken.iter().map(|b| view! {
                        <li>
                            <a href=format!("/connections#client-{}", b.client_id)>{b.client_name.clone()}</a>
                            ": " {rail_name(&b.rail)}
                        </li>
                    }).collect_view()}
                </ul>
            </section>
        })}
        {(d.waiting > 0).then(|| view! {
            <section class="card" aria-labelledby="digest-waiting">
                <h2 id="digest-waiting">"Waiting for a second approver"</h2>
                <p data-testid="digest-waiting">
                    {format!("{} payment{} approved once and waiting for someone else. ", d.waiting, if d.waiting == 1 { " is" } else { "s are" })}
                    <a href="/approvals/waiting">"Review them"</a>
                </p>
            </section>
        })}
        {(!d.flagged.is_empty()).then(|| view! {
            <section class="card" aria-labelledby="digest-flagged">
                <h2 id="digest-flagged">"Flagged for a look"</h2>
                <Items items=d.flagged.clone() testid="digest-flagged" />
            </section>
        })}
        {d.more.then(|| view! { <p class="muted">"More changed than is listed here: " <a href="/hygiene?state=all">"see the whole tray"</a> "."</p> })}
        <p class="muted" data-testid="digest-open-now">
            {format!("{} item{} open in the tray now. ", d.open_now, if d.open_now == 1 { " is" } else { "s are" })}
            <a href="/hygiene">"Open the tray"</a>
        </p>
        <ActionForm action=seen>
            <button type="submit" class="primary" data-testid="digest-seen">"Mark all as seen"</button>
        </ActionForm>
        <p class="muted">
            "Choose what also reaches you by email or a chat webhook on "
            <a href="/account#notifications">"your account"</a> "."
        </p>
    }
}

#[component]
fn Items(items: Vec<DigestItem>, testid: &'static str) -> impl IntoView {
    view! {
        <ul class="digest" data-testid=testid>
            {items.into_iter().map(|i| {
                let client = i.client_name.clone().unwrap_or_else(|| "The firm".into());
                let href = match &i.client_id {
                    Some(c) => format!("/hygiene?client={c}&state=all"),
                    None => "/hygiene?state=all".into(),
                };
                let state = match i.status.as_str() {
                    "open" => "open",
                    "dismissed" => "dismissed since",
                    _ => "resolved since",
                };
                view! {
                    <li data-testid="digest-item" data-reason=i.reason_code.as_str()>
                        <strong>{client}</strong> ": " {i.headline.clone()} " "
                        <span class=format!("badge {}", if i.status == "open" { "warn" } else { "ok" })>{state}</span>
                        <div class="muted">
                            {i.at.format("%Y-%m-%d %H:%M UTC").to_string()} " · "
                            <a href=href>"In the tray"</a>
                            {i.payment_id.clone().map(|p| view! { " · " <a href=format!("/payments/{p}")>"The payment"</a> })}
                        </div>
                    </li>
                }
            }).collect_view()}
        </ul>
    }
}

fn rail_name(rail: &str) -> &'static str {
    match rail {
        "qbo" => "QuickBooks Online",
        "ramp" => "Ramp",
        "plaid" => "the bank (Plaid)",
        "stripe" => "Stripe",
        _ => "a rail",
    }
}
