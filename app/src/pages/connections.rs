//! Connections: per client, per rail, its health, what it is connected to,
//! who connected it and when, token expiry, last sync and last error.
//! Admins get the buttons; they are plain form posts (they leave for the
//! provider and come back), so they work with or without JavaScript.

use crate::api::connections::get_connections;
use crate::components::layout::loaded;
use crate::model::{ConnectionHealth, Rail, RailConnectionView};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "—".into())
}

/// What the query string says just happened (after a redirect back).
fn flash(q: &leptos_router::params::ParamsMap) -> Option<String> {
    let rail = |k: &str| {
        q.get(k)
            .and_then(|r| Rail::parse(&r))
            .map(Rail::display_name)
    };
    if let Some(r) = rail("connected") {
        return Some(format!("Connected {r}."));
    }
    if let Some(r) = rail("disconnected") {
        return Some(format!(
            "Disconnected {r}: RowCol's access was revoked and its tokens forgotten."
        ));
    }
    if rail("repaired").is_some() {
        return Some("The bank login was renewed.".into());
    }
    q.get("synced")
        .map(|_| "A sync was started; results appear within a minute.".into())
}

#[component]
pub fn ConnectionsPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| get_connections());
    let query = use_query_map();
    view! {
        <Title text="Connections · RowCol" />
        <h1>"Connections"</h1>
        {move || query.with(flash).map(|m| view! { <p class="notice" data-testid="connections-flash">{m}</p> })}
        {loaded(
            data,
            move |v| {
                let manage = v.can_manage;
                view! {
                    {manage
                        .then(|| {
                            view! {
                                <section class="add-client">
                                    <form method="post" action="/connect/qbo/start">
                                        <input type="hidden" name="client_id" value="" />
                                        <button type="submit" data-testid="add-client-qbo">
                                            "Add a client from QuickBooks"
                                        </button>
                                    </form>
                                </section>
                            }
                        })}
                    {(!manage)
                        .then(|| {
                            view! {
                                <p class="notice">
                                    "Only an admin of your firm can connect or disconnect rails."
                                </p>
                            }
                        })}
                    {v
                        .clients
                        .into_iter()
                        .map(|c| {
                            let cid = c.client_id.to_string();
                            let sync_action = format!("/connections/{cid}/sync");
                            let broken = c
                                .rails
                                .iter()
                                .any(|r| r.health == ConnectionHealth::NeedsReconnect);
                            view! {
                                <section
                                    class="client-connections"
                                    data-testid="client-connections"
                                    data-client=c.name.clone()
                                    data-broken=broken.to_string()
                                >
                                    <h2>
                                        <a href=format!("/clients/{cid}")>{c.name.clone()}</a>
                                    </h2>
                                    <div class="table-wrap" role="region" aria-label="Rail connections" tabindex="0"><table class="grid">
                                        <thead>
                                            <tr>
                                                <th>"Rail"</th>
                                                <th>"Status"</th>
                                                <th>"Account"</th>
                                                <th>"Connected"</th>
                                                <th>"Token expires"</th>
                                                <th>"Last sync"</th>
                                                <th>"Last error"</th>
                                                <th></th>
                                            </tr>
                                        </thead>
                                        <tbody>
                                            {c
                                                .rails
                                                .into_iter()
                                                .map(|r| view! { <RailRow r client_id=cid.clone() manage /> })
                                                .collect_view()}
                                        </tbody>
                                    </table></div>
                                    {manage
                                        .then(|| {
                                            view! {
                                                <form method="post" action=sync_action class="inline">
                                                    <button type="submit" class="link">"Sync now"</button>
                                                </form>
                                            }
                                        })}
                                </section>
                            }
                        })
                        .collect_view()}
                }
                    .into_any()
            },
        )}
    }
}

#[component]
fn RailRow(r: RailConnectionView, client_id: String, manage: bool) -> impl IntoView {
    let rail = r.rail;
    let start = format!("/connect/{}/start", rail.as_str());
    let disconnect = format!("/connections/{client_id}/{}/disconnect", rail.as_str());
    let label = match (rail, r.health) {
        (Rail::Plaid, ConnectionHealth::NeedsReconnect) => "Repair login",
        (_, ConnectionHealth::Never) => "Connect",
        _ => "Reconnect",
    };
    let connected = matches!(
        r.health,
        ConnectionHealth::Connected | ConnectionHealth::NeedsReconnect
    );
    let who = match (&r.connected_by, r.connected_at) {
        (Some(b), t) => format!("{b}, {}", when(t)),
        (None, Some(t)) => when(Some(t)),
        _ => "—".into(),
    };
    let stripe_key = (manage && rail == Rail::Stripe && r.health != ConnectionHealth::Connected)
        .then(|| {
            view! {
                <form method="post" action="/connect/stripe/key" class="inline paste-key">
                    <input type="hidden" name="client_id" value=client_id.clone() />
                    <input
                        type="password"
                        name="key"
                        placeholder="rk_live_… restricted key"
                        autocomplete="off"
                        aria-label="Stripe restricted key"
                    />
                    <button type="submit" class="link">"Use key"</button>
                </form>
            }
        });
    view! {
        <tr data-testid="rail-row" data-rail=rail.as_str() data-health=format!("{:?}", r.health).to_lowercase()>
            <td>{rail.display_name()}</td>
            <td>
                <span class=format!("badge conn-{:?}", r.health).to_lowercase()>{r.health.label()}</span>
                {r.warning.map(|w| view! { <div class="warn">{w}</div> })}
                {r
                    .webhook_status
                    .map(|w| view! { <div class="muted">{format!("webhooks: {}", w.replace('_', " "))}</div> })}
            </td>
            <td>{r.account_name.unwrap_or_else(|| "—".into())}</td>
            <td>{who}</td>
            <td>{when(r.access_expires_at)}</td>
            <td>{when(r.last_sync_at)}</td>
            <td class="error">
                {r.last_error.map(|e| format!("{e} ({})", when(r.last_error_at)))}
            </td>
            <td class="actions">
                {manage
                    .then(|| {
                        view! {
                            <form method="post" action=start class="inline">
                                <input type="hidden" name="client_id" value=client_id.clone() />
                                <button type="submit" data-testid=format!("connect-{}", rail.as_str())>
                                    {label}
                                </button>
                            </form>
                            {connected
                                .then(|| {
                                    view! {
                                        <form method="post" action=disconnect.clone() class="inline">
                                            <button type="submit" class="link danger">"Disconnect"</button>
                                        </form>
                                    }
                                })}
                            {stripe_key}
                        }
                    })}
            </td>
        </tr>
    }
}
