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

/// Whether a rail wants a person: broken, disconnected, or its consent
/// running out.
fn needs_attention(r: &RailConnectionView) -> bool {
    matches!(
        r.health,
        ConnectionHealth::NeedsReconnect | ConnectionHealth::Disconnected
    ) || r.warning.is_some()
}

#[component]
pub fn ConnectionsPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| get_connections());
    let query = use_query_map();
    let only_attention = move || query.with(|q| q.get("attention").is_some_and(|v| !v.is_empty()));
    view! {
        <Title text="Connections · RowCol" />
        <h1>"Connections"</h1>
        {move || query.with(flash).map(|m| view! { <p class="notice" data-testid="connections-flash">{m}</p> })}
        {loaded(
            data,
            move |v| {
                let manage = v.can_manage;
                let refresh = v.can_refresh;
                let attention = only_attention();
                let wanting = v
                    .clients
                    .iter()
                    .filter(|c| c.rails.iter().any(needs_attention))
                    .count();
                let total = v.clients.len();
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
                    <p class="filters" data-testid="attention-summary">
                        {if wanting == 0 {
                            format!("All {total} clients' connections are healthy.")
                        } else {
                            format!("{wanting} of {total} clients need attention.")
                        }}
                        " "
                        {if attention {
                            view! { <a href="/connections" data-testid="show-all">"Show all clients"</a> }.into_any()
                        } else {
                            view! {
                                <a href="/connections?attention=1" data-testid="show-attention">
                                    "Show only those needing attention"
                                </a>
                            }
                                .into_any()
                        }}
                    </p>
                    {v
                        .clients
                        .into_iter()
                        .filter(|c| !attention || c.rails.iter().any(needs_attention))
                        .map(|c| {
                            let cid = c.client_id.to_string();
                            let sync_action = format!("/connections/{cid}/sync");
                            let broken = c
                                .rails
                                .iter()
                                .any(|r| r.health == ConnectionHealth::NeedsReconnect);
                            let client_name = c.name.clone();
                            view! {
                                <section
                                    id=format!("client-{cid}")
                                    class="client-connections"
                                    data-testid="client-connections"
                                    data-client=c.name.clone()
                                    data-broken=broken.to_string()
                                >
                                    <h2>
                                        <a href=format!("/clients/{cid}")>{c.name.clone()}</a>
                                    </h2>
                                    <div class="table-wrap" role="region" aria-label=format!("Rail connections of {}", c.name) tabindex="0"><table class="grid">
                                        <thead>
                                            <tr>
                                                <th>"Rail"</th>
                                                <th>"Status"</th>
                                                <th>"Account"</th>
                                                <th>"Connected"</th>
                                                <th>"Token expires"</th>
                                                <th>"Last sync"</th>
                                                <th></th>
                                            </tr>
                                        </thead>
                                        <tbody>
                                            {c
                                                .rails
                                                .into_iter()
                                                .map(|r| {
                                                    view! { <RailRow r client_id=cid.clone() client_name=client_name.clone() manage /> }
                                                })
                                                .collect_view()}
                                        </tbody>
                                    </table></div>
                                    {refresh
                                        .then(|| {
                                            view! {
                                                <form method="post" action=sync_action class="inline">
                                                    <button type="submit" class="link" data-testid="refresh">
                                                        {if manage { "Sync now" } else { "Refresh" }}
                                                    </button>
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
fn RailRow(
    r: RailConnectionView,
    client_id: String,
    client_name: String,
    manage: bool,
) -> impl IntoView {
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
    // An error is news only until a sync succeeds after it.
    let error = r.last_error.clone().filter(|_| {
        r.health != ConnectionHealth::Connected
            || match (r.last_error_at, r.last_sync_at) {
                (Some(e), Some(s)) => e > s,
                _ => true,
            }
    });
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
                <span class=r.health.badge_class()>{r.health.label()}</span>
                {r.warning.map(|w| view! { <div class="warn">{w}</div> })}
                {error
                    .map(|e| {
                        view! {
                            <div class="error" data-testid="last-error">
                                {format!("Last error ({}): {e}", when(r.last_error_at))}
                            </div>
                        }
                    })}
                {r
                    .webhook_status
                    .map(|w| view! { <div class="muted">{format!("webhooks: {}", w.replace('_', " "))}</div> })}
            </td>
            <td>{r.account_name.unwrap_or_else(|| "—".into())}</td>
            <td>{who}</td>
            <td>{when(r.access_expires_at)}</td>
            <td>{when(r.last_sync_at)}</td>
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
                                    // A disconnect revokes RowCol's access at the
                                    // provider: asked once more, without JavaScript too.
                                    view! {
                                        <details class="confirm">
                                            <summary class="danger" data-testid=format!("disconnect-{}", rail.as_str())>
                                                "Disconnect…"
                                            </summary>
                                            <p>
                                                {format!(
                                                    "RowCol's access to {} for {} is revoked and its tokens forgotten; payments for this client stop until it is connected again.",
                                                    rail.display_name(),
                                                    client_name,
                                                )}
                                            </p>
                                            <form method="post" action=disconnect.clone() class="inline">
                                                <button type="submit" class="danger" data-testid=format!("confirm-disconnect-{}", rail.as_str())>
                                                    {format!("Disconnect {}", rail.display_name())}
                                                </button>
                                            </form>
                                        </details>
                                    }
                                })}
                            {stripe_key}
                        }
                    })}
            </td>
        </tr>
    }
}
