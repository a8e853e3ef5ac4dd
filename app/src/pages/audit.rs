use crate::api::audit::get_audit;
use crate::components::layout::{loaded, use_session};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn AuditPage() -> impl IntoView {
    let session = use_session();
    let data = Resource::new(move || session.advance.version().get(), |_| get_audit(None));
    view! {
        <Title text="Audit log · RowCol" />
        <h1>"Audit log"</h1>
        // Plain links (rel=external: the router leaves downloads alone), so
        // they work with JavaScript off too.
        <p>
            "Download the whole log, oldest first: "
            <a href="/audit/export?format=csv" download="audit.csv" rel="external" data-testid="export-csv">
                "CSV"
            </a>
            " · "
            <a href="/audit/export?format=json" download="audit.json" rel="external" data-testid="export-json">
                "JSON"
            </a>
        </p>
        {loaded(
            data,
            move |page| {
                let chain = if page.chain.ok {
                    view! {
                        <p class="badge ok" data-testid="chain-status">
                            {format!("Chain verified: {} entries", page.chain.entries)}
                        </p>
                    }
                        .into_any()
                } else {
                    view! {
                        <p class="badge bad" data-testid="chain-status">
                            {format!(
                                "Chain BROKEN at entry {}{}",
                                page.chain.broken_at.unwrap_or_default(),
                                page
                                    .chain
                                    .problem
                                    .as_deref()
                                    .map(|p| format!(": {p}"))
                                    .unwrap_or_default(),
                            )}
                        </p>
                    }
                        .into_any()
                };
                view! {
                    {chain}
                    <div class="table-wrap" role="region" aria-label="Audit log" tabindex="0"><table class="grid">
                        <thead>
                            <tr>
                                <th>"#"</th>
                                <th>"Time (UTC)"</th>
                                <th>"Actor"</th>
                                <th>"Action"</th>
                                <th>"Subject"</th>
                                <th>"Detail"</th>
                                <th>"Hash"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {page
                                .entries
                                .into_iter()
                                .map(|e| {
                                    view! {
                                        <tr data-testid="audit-row">
                                            <td>{e.seq}</td>
                                            <td>{e.at.format("%Y-%m-%d %H:%M:%S").to_string()}</td>
                                            <td>{e.actor}</td>
                                            <td>
                                                <code>{e.action}</code>
                                            </td>
                                            <td class="mono">{e.subject}</td>
                                            <td class="detail">{e.detail}</td>
                                            <td class="mono" title=e.hash.clone()>
                                                {e.hash.chars().take(12).collect::<String>()}
                                            </td>
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody>
                    </table></div>
                }
                    .into_any()
            },
        )}
    }
}
