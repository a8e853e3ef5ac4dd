//! `/audit`: the firm's audit log as sentences, newest first, a page at a
//! time, filtered by client, actor, action and dates (a plain GET form, so
//! every view is a link). Each entry's raw record and hash are one click
//! away; the download links export exactly the filtered range.

use crate::api::audit::get_audit;
use crate::components::layout::{loaded, use_session};
use crate::domain::audit_words::KNOWN_ACTIONS;
use crate::model::{ActorKind, AuditPage, ChainStatus};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// The query keys the page passes on (filters and paging).
const KEYS: [&str; 5] = ["client_id", "actor", "action", "from", "to"];

/// `s` as one query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let session = use_session();
    let query = use_query_map();
    let q = move |k: &str| query.read().get(k).unwrap_or_default();
    let data = Resource::new(
        move || {
            (
                session.advance.version().get(),
                [
                    q("client_id"),
                    q("actor"),
                    q("action"),
                    q("from"),
                    q("to"),
                    q("before"),
                ],
                !q("full").is_empty(),
            )
        },
        |(_, [client_id, actor, action, from, to, before], full)| {
            get_audit(Some(full), client_id, actor, action, from, to, before)
        },
    );
    // The filters as a query string, for the export and the next page.
    let filters = move || {
        let q = query.read();
        KEYS.iter()
            .filter_map(|k| {
                q.get(k)
                    .filter(|v| !v.is_empty())
                    .map(|v| format!("{k}={}", enc(&v)))
            })
            .collect::<Vec<_>>()
    };
    let export = move |format: &str| {
        let mut parts = vec![format!("format={format}")];
        parts.extend(filters());
        // The export names its actor kind separately from one actor.
        let q = query.read();
        if let Some(kind) = q.get("actor").and_then(|a| ActorKind::parse(&a)) {
            parts.retain(|p| !p.starts_with("actor="));
            parts.push(format!("actor_kind={}", kind.as_str()));
        }
        format!("/audit/export?{}", parts.join("&"))
    };
    view! {
        <Title text="Audit log · RowCol" />
        <h1>"Audit log"</h1>
        {loaded(
            data,
            move |page: AuditPage| {
                let older = page.older.map(|b| {
                    let mut parts = filters();
                    parts.push(format!("before={b}"));
                    format!("/audit?{}", parts.join("&"))
                });
                let newest = {
                    let parts = filters();
                    if parts.is_empty() { "/audit".to_owned() } else { format!("/audit?{}", parts.join("&")) }
                };
                let paged = !q("before").is_empty();
                view! {
                    <Chain chain=page.chain.clone() />
                    <Filters page=page.clone() />
                    // Plain links (rel=external: the router leaves downloads
                    // alone), so they work with JavaScript off too.
                    <p>
                        "Download these entries, oldest first: "
                        <a href=export("csv") download="audit.csv" rel="external" data-testid="export-csv">
                            "CSV"
                        </a>
                        " · "
                        <a href=export("json") download="audit.json" rel="external" data-testid="export-json">
                            "JSON"
                        </a>
                        " · "
                        <a href="/audit/checkpoint" download="audit-checkpoint.json" rel="external" data-testid="checkpoint">
                            "a signed checkpoint"
                        </a>
                        " (keep it: "
                        <code>"rowcol verify-audit --checkpoint FILE"</code>
                        " proves the log was not rewritten since)"
                    </p>
                    {if page.entries.is_empty() {
                        view! { <p class="empty" data-testid="audit-empty">"No entries match."</p> }.into_any()
                    } else {
                        view! {
                            <ol class="audit" aria-label="Audit entries">
                                {page
                                    .entries
                                    .into_iter()
                                    .map(|e| {
                                        view! {
                                            <li id=format!("entry-{}", e.seq) data-testid="audit-row" data-seq=e.seq>
                                                <p class="sentence">{e.sentence}</p>
                                                <p class="meta">
                                                    {format!("#{} · {} UTC · ", e.seq, e.at.format("%Y-%m-%d %H:%M:%S"))}
                                                    <span class="kind">{e.actor_kind}</span>
                                                </p>
                                                <details class="why">
                                                    <summary>"Raw entry"</summary>
                                                    <dl class="raw">
                                                        <dt>"Actor"</dt>
                                                        <dd class="mono">{e.actor}</dd>
                                                        <dt>"Action"</dt>
                                                        <dd><code>{e.action}</code></dd>
                                                        <dt>"Subject"</dt>
                                                        <dd class="mono">{e.subject}</dd>
                                                        <dt>"Detail"</dt>
                                                        <dd class="mono detail">{e.detail}</dd>
                                                        <dt>"Hash"</dt>
                                                        <dd class="mono">{e.hash}</dd>
                                                    </dl>
                                                </details>
                                            </li>
                                        }
                                    })
                                    .collect_view()}
                            </ol>
                        }
                            .into_any()
                    }}
                    <nav class="pager" aria-label="Pages">
                        {paged.then(|| view! { <a href=newest.clone() data-testid="audit-newest">"Newest"</a> })}
                        {older.map(|href| view! { <a href=href data-testid="audit-older">"Older entries"</a> })}
                    </nav>
                }
                    .into_any()
            },
        )}
    }
}

/// The hash chain's state; a break names the first broken entry and links to it.
#[component]
fn Chain(chain: ChainStatus) -> impl IntoView {
    if chain.ok {
        view! {
            <p data-testid="chain-status">
                <span class="badge ok">{format!("Chain verified: {} entries", chain.entries)}</span>
                " "
                <a href="/audit?full=1" data-testid="verify-fully">"Verify fully"</a>
            </p>
        }
        .into_any()
    } else {
        let at = chain.broken_at.unwrap_or_default();
        view! {
            <p data-testid="chain-status">
                <a class="badge bad" href=format!("/audit?before={}#entry-{at}", at + 1)>
                    {format!(
                        "Chain BROKEN at entry {at}{}",
                        chain.problem.as_deref().map(|p| format!(": {p}")).unwrap_or_default(),
                    )}
                </a>
            </p>
        }
        .into_any()
    }
}

/// The filters: a GET form.
#[component]
fn Filters(page: AuditPage) -> impl IntoView {
    let query = use_query_map();
    let v = move |k: &str| query.read_untracked().get(k).unwrap_or_default();
    let (client, actor) = (v("client_id"), v("actor"));
    let kinds = [
        ("user", "people"),
        ("rail", "the rails (Ramp, QuickBooks, Plaid, Stripe)"),
        ("sync", "RowCol's sync"),
        ("system", "RowCol itself"),
    ];
    view! {
        <form method="get" action="/audit" class="filters" data-testid="audit-filters">
            <label>
                "Client"
                <select name="client_id">
                    <option value="" selected=client.is_empty()>"all clients"</option>
                    {page
                        .clients
                        .into_iter()
                        .map(|(id, name)| {
                            let sel = client == id.as_str();
                            view! { <option value=id.to_string() selected=sel>{name}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <label>
                "Actor"
                <select name="actor" data-testid="audit-actor">
                    <option value="" selected=actor.is_empty()>"anyone"</option>
                    {kinds
                        .into_iter()
                        .map(|(k, words)| view! { <option value=k selected=actor == k>{words}</option> })
                        .collect_view()}
                    {page
                        .people
                        .into_iter()
                        .map(|p| {
                            let sel = actor == p;
                            view! { <option value=p.clone() selected=sel>{p.clone()}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <label>
                "Action"
                <input type="text" name="action" list="audit-actions" value=v("action") data-testid="audit-action" />
                <datalist id="audit-actions">
                    {KNOWN_ACTIONS.iter().map(|a| view! { <option value=*a></option> }).collect_view()}
                </datalist>
            </label>
            <label>"From" <input type="date" name="from" value=v("from") data-testid="audit-from" /></label>
            <label>"To" <input type="date" name="to" value=v("to") data-testid="audit-to" /></label>
            <button type="submit" data-testid="audit-filter">"Filter"</button>
            <a href="/audit">"Clear"</a>
        </form>
    }
}
