//! `/approvals`: every open bill across the portfolio in one table — the
//! advisor's home. Filters are a plain GET form; the selection is a form
//! posted to `approve_batch` (per client all or nothing, idempotent by the
//! batch key in the form). With JavaScript on, the what-if per client and
//! the total leaving follow the selection, the keyboard selects, and the
//! button asks for confirmation; with it off, the form posts and the
//! results page is this page with `?batch=<key>`.

use crate::api::approvals::{batch_result, ApproveBatch};
use crate::api::decide::get_approvals;
use crate::components::layout::{loaded, use_session};
use crate::domain::guardrails::{evaluate_liquidity, LiquidityInput, LiquidityVerdict};
use crate::model::{ApprovalClient, ApprovalsPage, BatchAnswer, BillId, ClientId, Money, Role};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use std::collections::{BTreeMap, HashSet};

/// A rule's reason code in plain words.
pub fn rule_label(code: &str) -> &'static str {
    match code {
        "overdue" => "overdue",
        "second_approval_required" => "needs 2 approvers",
        "possible_duplicate" => "possible duplicate",
        "new_vendor" => "new vendor",
        "currency_mismatch" => "other currency",
        "buffer" => "breaks the buffer",
        "stale_data" => "stale bank data",
        "connection_unhealthy" => "rail to reconnect",
        "ledger_mismatch" => "ledger changed",
        _ => "rule",
    }
}

fn rule_class(code: &str) -> &'static str {
    match code {
        "overdue" | "second_approval_required" | "new_vendor" => "badge warn",
        "possible_duplicate" | "currency_mismatch" => "badge bad",
        _ => "badge info",
    }
}

#[component]
pub fn ApprovalsPage() -> impl IntoView {
    let query = use_query_map();
    let session = use_session();
    let approve = ServerAction::<ApproveBatch>::new();
    let q = move |k: &str| query.read().get(k).filter(|v| !v.is_empty());
    let data = Resource::new(
        move || {
            (
                [
                    q("client_id"),
                    q("vendor"),
                    q("due_within_days"),
                    q("min_amount"),
                    q("max_amount"),
                    q("rule"),
                    q("sort"),
                    q("desc"),
                    q("page"),
                    q("per_page"),
                ],
                approve.version().get(),
                session.advance.version().get(),
            )
        },
        |([client, vendor, due, min, max, rule, sort, desc, page, per_page], _, _)| {
            get_approvals(
                client, vendor, due, min, max, rule, sort, desc, page, per_page,
            )
        },
    );
    // The results of a plain form post (JavaScript off): the stored answer.
    let posted = Resource::new(
        move || q("batch"),
        |key| async move {
            match key {
                Some(k) => batch_result(k).await.map(Some),
                None => Ok(None),
            }
        },
    );
    let role = move || session.role();
    view! {
        <Title text="Approvals · RowCol" />
        <h1>"Approvals"</h1>
        <p class="muted">
            "Every open bill across your clients. Tick bills (or press "
            <kbd>"s"</kbd>
            " for each client's suggested batch), check each client's what-if, then approve. "
            <a href="/approvals/waiting">"Bills waiting for a second approver"</a>
        </p>
        <FilterForm />
        {loaded(
            data,
            move |page| {
                let answer = match approve.value().get() {
                    Some(Ok(a)) => Some(a),
                    _ => posted.get().and_then(|r| r.ok()).flatten(),
                };
                let error = match approve.value().get() {
                    Some(Err(e)) => Some(e.to_string()),
                    _ => None,
                };
                let picked = q("pick").as_deref() == Some("suggested");
                let role = role();
                view! {
                    {answer.map(|a| view! { <BatchResult answer=a /> })}
                    {error.map(|e| view! { <p class="error" role="alert" data-testid="batch-error">{e}</p> })}
                    <ApprovalsTable page approve role picked />
                }
                    .into_any()
            },
        )}
    }
}

/// The filters: a GET form, so every view is a link.
#[component]
fn FilterForm() -> impl IntoView {
    let query = use_query_map();
    let v = move |k: &str| query.read_untracked().get(k).unwrap_or_default();
    let rule = v("rule");
    let sort = v("sort");
    view! {
        <form method="get" action="/approvals" class="filters" data-testid="filters">
            <label>
                "Vendor" <input type="search" name="vendor" value=v("vendor") />
            </label>
            <label>
                "Due within (days)"
                <input type="number" name="due_within_days" min="0" max="3650" value=v("due_within_days") />
            </label>
            <label>
                "Amount from" <input type="text" inputmode="decimal" name="min_amount" value=v("min_amount") size="8" />
            </label>
            <label>
                "to" <input type="text" inputmode="decimal" name="max_amount" value=v("max_amount") size="8" />
            </label>
            <label>
                "Rule"
                <select name="rule">
                    <option value="" selected=rule.is_empty()>"any"</option>
                    <option value="overdue" selected=rule == "overdue">"overdue"</option>
                    <option value="second_approval_required" selected=rule == "second_approval_required">
                        "needs 2 approvers"
                    </option>
                </select>
            </label>
            <label>
                "Sort"
                <select name="sort">
                    <option value="due" selected=sort.is_empty() || sort == "due">"due date"</option>
                    <option value="amount" selected=sort == "amount">"amount"</option>
                    <option value="client" selected=sort == "client">"client"</option>
                    <option value="vendor" selected=sort == "vendor">"vendor"</option>
                </select>
            </label>
            <label>
                <input type="checkbox" name="desc" value="1" checked=!v("desc").is_empty() />
                " descending"
            </label>
            <input type="hidden" name="client_id" value=v("client_id") />
            <button type="submit">"Filter"</button>
            <a href="/approvals">"Clear"</a>
        </form>
    }
}

/// One client's what-if for the current selection.
#[derive(Clone, PartialEq)]
struct WhatIf {
    name: String,
    count: usize,
    selected: Money,
    verdict: Result<LiquidityVerdict, String>,
}

fn what_if(client: &ApprovalClient, selected: i64, count: usize) -> WhatIf {
    let cur = client.daily_burn.currency.clone();
    let verdict = match (&client.available, &client.unavailable) {
        (Some(available), None) => evaluate_liquidity(&LiquidityInput {
            available: available.clone(),
            approved_unpaid: client.approved_unpaid.clone(),
            selected: Money::new(selected, cur.clone()),
            daily_burn: client.daily_burn.clone(),
            buffer_days: client.buffer_days,
        })
        .map_err(|e| e.to_string()),
        (_, Some(why)) => Err(why.clone()),
        (None, None) => Err("no bank balance read yet".into()),
    };
    WhatIf {
        name: client.name.clone(),
        count,
        selected: Money::new(selected, cur),
        verdict,
    }
}

/// One open bill in the approvals table: its checkbox (shift-click ticks
/// the range from the last one touched), client, vendor, invoice, due date,
/// amount and the rules that apply, with why.
#[component]
fn OpenBillRow(
    r: crate::model::ApprovalRow,
    i: usize,
    order: Vec<BillId>,
    selected: RwSignal<HashSet<BillId>>,
    last_index: RwSignal<Option<usize>>,
    can_approve: bool,
) -> impl IntoView {
    let id = r.bill_id.clone();
    let id_checked = r.bill_id.clone();
    let label = format!(
        "Select {} {} for {}, due {}",
        r.vendor_name, r.amount, r.client_name, r.due_date
    );
    let href = format!("/clients/{}", r.client_id);
    view! {
        <tr
            data-testid="approval-row"
            data-suggested=r.suggested.to_string()
            data-client=r.client_id.to_string()
            data-amount-minor=r.amount.minor.to_string()
            class:overdue=r.overdue
        >
            {can_approve.then(|| view! {
                <td>
                    <input
                        type="checkbox"
                        name="bill_ids[]"
                        value=r.bill_id.to_string()
                        data-row=i.to_string()
                        aria-label=label
                        prop:checked=move || selected.read().contains(&id_checked)
                        on:focus=move |_| last_index.set(Some(i))
                        on:click=move |ev| {
                            let on = event_target_checked(&ev);
                            let prev = last_index.get_untracked();
                            let range: Vec<BillId> = match prev {
                                Some(p) if ev.shift_key() && p != i => {
                                    let (a, b) = if p < i { (p, i) } else { (i, p) };
                                    order[a..=b.min(order.len() - 1)].to_vec()
                                }
                                _ => vec![id.clone()],
                            };
                            last_index.set(Some(i));
                            selected.update(|s| {
                                for b in range {
                                    if on { s.insert(b); } else { s.remove(&b); }
                                }
                            });
                        }
                    />
                </td>
            })}
            <td><a href=href>{r.client_name.clone()}</a></td>
            <td>{r.vendor_name.clone()}</td>
            <td>{r.doc_number.clone().unwrap_or_default()}</td>
            <td>
                {r.due_date.to_string()}
            </td>
            <td class="num">{r.amount.to_string()}</td>
            <td>
                {r.suggested.then(|| view! { <span class="badge ok">"suggested"</span> })}
                {r
                    .rules
                    .iter()
                    .zip(r.rule_messages.iter())
                    .map(|(code, msg)| {
                        view! {
                            <span class=rule_class(code) title=msg.clone() data-rule=code.clone()>
                                {rule_label(code)}
                            </span>
                        }
                    })
                    .collect_view()}
                <details class="why">
                    <summary>"why"</summary>
                    <ul>
                        {r.rule_messages.iter().map(|m| view! { <li>{m.clone()}</li> }).collect_view()}
                        {r.rules.is_empty().then(|| view! { <li>"No rule applies beyond the buffer."</li> })}
                    </ul>
                </details>
            </td>
        </tr>
    }
}

#[component]
fn ApprovalsTable(
    page: ApprovalsPage,
    approve: ServerAction<ApproveBatch>,
    role: Role,
    picked: bool,
) -> impl IntoView {
    let can_approve = role >= Role::Advisor;
    let can_override = role >= Role::Admin;
    let rows = page.rows.clone();
    let initial: HashSet<BillId> = if picked {
        rows.iter()
            .filter(|r| r.suggested)
            .map(|r| r.bill_id.clone())
            .collect()
    } else {
        HashSet::new()
    };
    let selected = RwSignal::new(initial);
    let last_index = RwSignal::new(None::<usize>);
    let confirming = RwSignal::new(false);
    let override_reason = RwSignal::new(String::new());
    // Effects run only in the browser: the button's disabled state and the
    // reason beside it exist only once the page is interactive, so a
    // JavaScript-off form still posts (and the server judges it).
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    Effect::new(move |_| {
        if let Some(Ok(_)) = approve.value().get() {
            selected.set(HashSet::new());
            confirming.set(false);
        }
    });

    let amounts: Vec<(BillId, ClientId, i64)> = rows
        .iter()
        .map(|r| (r.bill_id.clone(), r.client_id.clone(), r.amount.minor))
        .collect();
    let clients = page.clients.clone();
    let what_ifs = Memo::new(move |_| {
        let chosen = selected.get();
        let mut per: BTreeMap<String, (i64, usize)> = BTreeMap::new();
        for (b, c, a) in &amounts {
            if chosen.contains(b) {
                let e = per.entry(c.to_string()).or_insert((0, 0));
                e.0 += a;
                e.1 += 1;
            }
        }
        clients
            .iter()
            .filter_map(|c| {
                per.get(c.client_id.as_str())
                    .map(|(sum, n)| what_if(c, *sum, *n))
            })
            .collect::<Vec<_>>()
    });
    let total = Memo::new(move |_| {
        what_ifs
            .get()
            .iter()
            .fold(BTreeMap::<String, i64>::new(), |mut m, w| {
                *m.entry(w.selected.currency.as_str().to_owned())
                    .or_default() += w.selected.minor;
                m
            })
    });
    let blocked = Memo::new(move |_| {
        let w = what_ifs.get();
        if w.is_empty() {
            return Some("Select at least one bill.".to_owned());
        }
        let overriding = override_reason.get().trim().chars().count() >= 10;
        w.iter().find_map(|x| match &x.verdict {
            Err(why) => Some(format!("{}: {why}.", x.name)),
            Ok(v) if !v.pass && !overriding => {
                Some(format!("{} would break its buffer: {}", x.name, v.reason()))
            }
            _ => None,
        })
    });
    let summary_line = move || {
        let w = what_ifs.get();
        let n: usize = w.iter().map(|x| x.count).sum();
        let totals: Vec<String> = total
            .get()
            .into_iter()
            .map(|(cur, minor)| {
                Money::new(
                    minor,
                    crate::model::Currency::parse(&cur)
                        .unwrap_or_else(|_| crate::model::Currency::usd()),
                )
                .to_string()
            })
            .collect();
        let names: Vec<String> = w.iter().map(|x| x.name.clone()).collect();
        format!(
            "{n} bill{} · {} leaving · {}",
            if n == 1 { "" } else { "s" },
            if totals.is_empty() {
                "nothing".into()
            } else {
                totals.join(" + ")
            },
            if names.is_empty() {
                "no client".into()
            } else {
                names.join(", ")
            }
        )
    };
    let suggested_ids: Vec<BillId> = rows
        .iter()
        .filter(|r| r.suggested)
        .map(|r| r.bill_id.clone())
        .collect();
    let select_suggested = {
        let ids = suggested_ids.clone();
        move || selected.set(ids.iter().cloned().collect())
    };
    let order: Vec<BillId> = rows.iter().map(|r| r.bill_id.clone()).collect();
    let on_key = {
        let select_suggested = select_suggested.clone();
        move |ev: leptos::ev::KeyboardEvent| {
            if !can_approve {
                return;
            }
            let target_is_text = ev
                .target()
                .and_then(|t| {
                    use leptos::wasm_bindgen::JsCast;
                    t.dyn_into::<leptos::web_sys::Element>().ok()
                })
                .map(|el| {
                    let tag = el.tag_name().to_ascii_lowercase();
                    tag == "textarea"
                        || tag == "select"
                        || (tag == "input"
                            && el.get_attribute("type").as_deref() != Some("checkbox"))
                })
                .unwrap_or(false);
            if target_is_text || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
                return;
            }
            let focus_row = |i: usize| {
                use leptos::wasm_bindgen::JsCast;
                if let Some(el) = document()
                    .query_selector(&format!("input[data-row='{i}']"))
                    .ok()
                    .flatten()
                    .and_then(|e| e.dyn_into::<leptos::web_sys::HtmlElement>().ok())
                {
                    let _ = el.focus();
                }
            };
            let current = last_index.get_untracked();
            match ev.key().as_str() {
                "j" | "ArrowDown" => {
                    ev.prevent_default();
                    let next = current.map_or(0, |i| i + 1);
                    last_index.set(Some(next));
                    focus_row(next);
                }
                "k" | "ArrowUp" => {
                    ev.prevent_default();
                    let prev = current.map_or(0, |i: usize| i.saturating_sub(1));
                    last_index.set(Some(prev));
                    focus_row(prev);
                }
                "s" => {
                    ev.prevent_default();
                    select_suggested();
                }
                "a" => {
                    ev.prevent_default();
                    if blocked.get_untracked().is_none() {
                        confirming.set(true);
                    }
                }
                "Escape" => confirming.set(false),
                _ => {}
            }
        }
    };

    let count = page.rows.len();
    let total_rows = page.total;
    let page_no = page.page;
    let per_page = page.per_page;
    let batch_key = page.batch_key.clone();
    view! {
        <p class="muted" data-testid="approvals-count">
            {format!(
                "{} open bill{} match; showing {}–{}.",
                total_rows,
                if total_rows == 1 { "" } else { "s" },
                if count == 0 { 0 } else { (page_no as u64 - 1) * per_page as u64 + 1 },
                (page_no as u64 - 1) * per_page as u64 + count as u64,
            )}
            {can_approve.then(|| view! {
                " Keys: "
                <kbd>"j"</kbd>"/"<kbd>"k"</kbd>" move, "
                <kbd>"space"</kbd>" ticks (shift-click ticks a range), "
                <kbd>"s"</kbd>" suggested batch, "
                <kbd>"a"</kbd>" approve."
            })}
        </p>
        <ActionForm action=approve attr:class="approvals" attr:data-testid="approvals-form">
            <input type="hidden" name="batch_key" value=batch_key />
            <div class="table-wrap" role="region" aria-label="Open bills across the portfolio" tabindex="0" on:keydown=on_key>
                <table class="grid" data-testid="approvals-table">
                    <thead>
                        <tr>
                            {can_approve.then(|| view! { <th scope="col"><span class="sr-only">"Select"</span></th> })}
                            <th scope="col">"Client"</th>
                            <th scope="col">"Vendor"</th>
                            <th scope="col">"Invoice"</th>
                            <th scope="col">"Due"</th>
                            <th scope="col" class="num">"Amount"</th>
                            <th scope="col">"Rules"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {rows
                            .into_iter()
                            .enumerate()
                            .map(|(i, r)| {
                                view! {
                                    <OpenBillRow r i order=order.clone() selected last_index can_approve />
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
            <Pager total=total_rows page=page_no per_page />
            {can_approve.then(|| {
                let select_suggested = select_suggested.clone();
                view! {
                    <section class="decide" aria-label="What this selection does">
                        <h2>"What-if"</h2>
                        <p data-testid="selection-summary" role="status">{summary_line}</p>
                        <ul class="whatifs" data-testid="what-ifs">
                            {move || {
                                what_ifs
                                    .get()
                                    .into_iter()
                                    .map(|w| {
                                        let (class, text) = match &w.verdict {
                                            Ok(v) => (
                                                if v.pass { "badge ok" } else { "badge bad" },
                                                format!(
                                                    "{} bill{} {} · cash after {} · required buffer {} · runway {} → {} days",
                                                    w.count,
                                                    if w.count == 1 { "" } else { "s" },
                                                    w.selected,
                                                    v.cash_after,
                                                    v.required_buffer,
                                                    v.runway_before_days.map(|d| d.to_string()).unwrap_or_else(|| "∞".into()),
                                                    v.runway_after_days.map(|d| d.to_string()).unwrap_or_else(|| "∞".into()),
                                                ),
                                            ),
                                            Err(why) => ("badge muted", format!("cannot be judged: {why}")),
                                        };
                                        let verdict = match &w.verdict {
                                            Ok(v) if v.pass => "PASS",
                                            Ok(_) => "FAIL",
                                            Err(_) => "NO DATA",
                                        };
                                        view! {
                                            <li data-testid="what-if">
                                                <strong>{w.name.clone()}</strong> " "
                                                <span class=class>{verdict}</span> " "
                                                <span>{text}</span>
                                            </li>
                                        }
                                    })
                                    .collect_view()
                            }}
                        </ul>
                        <div class="verdict-bar">
                            <button type="button" data-testid="select-suggested" on:click=move |_| select_suggested()>
                                "Select suggested batch"
                            </button>
                            <a href="/approvals?pick=suggested" class="nojs-only">"Tick the suggested batch"</a>
                            {can_override.then(|| view! {
                                <label class="override">
                                    "Override reason (admins; at least 10 characters, only for the buffer and possible duplicates)"
                                    <textarea
                                        name="override_reason"
                                        rows="2"
                                        data-testid="override-reason"
                                        prop:value=move || override_reason.get()
                                        on:input=move |ev| override_reason.set(event_target_value(&ev))
                                    ></textarea>
                                </label>
                            })}
                            <button
                                type="submit"
                                class="primary"
                                data-testid="approve-batch"
                                disabled=move || hydrated.get() && blocked.get().is_some()
                                on:click=move |ev| {
                                    if !confirming.get_untracked() {
                                        ev.prevent_default();
                                        if blocked.get_untracked().is_none() {
                                            confirming.set(true);
                                        }
                                    }
                                }
                            >
                                "Approve selected…"
                            </button>
                            {move || {
                                (hydrated.get())
                                    .then(|| blocked.get())
                                    .flatten()
                                    .map(|why| view! { <span class="muted" data-testid="approve-blocked">{why}</span> })
                            }}
                        </div>
                        {move || {
                            confirming
                                .get()
                                .then(|| {
                                    view! {
                                        <div class="confirm" role="alertdialog" aria-labelledby="confirm-title" data-testid="confirm">
                                            <p id="confirm-title">
                                                <strong>{move || format!("Approve {}?", summary_line())}</strong>
                                            </p>
                                            <p class="muted">"Money leaves each client's account once Ramp pays. Bills needing a second approver wait for one."</p>
                                            <button type="submit" class="primary" data-testid="confirm-approve" autofocus=true>
                                                "Confirm approval"
                                            </button>
                                            <button type="button" data-testid="cancel-approve" on:click=move |_| confirming.set(false)>
                                                "Cancel"
                                            </button>
                                        </div>
                                    }
                                })
                        }}
                    </section>
                }
            })}
        </ActionForm>
    }
}

/// Previous / next page links that keep the filters.
#[component]
fn Pager(total: u64, page: u32, per_page: u32) -> impl IntoView {
    let query = use_query_map();
    let link = move |to: u32| {
        let q = query.read_untracked();
        let mut parts: Vec<String> = [
            "client_id",
            "vendor",
            "due_within_days",
            "min_amount",
            "max_amount",
            "rule",
            "sort",
            "desc",
        ]
        .iter()
        .filter_map(|k| {
            q.get(k)
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", urlencode(&v)))
        })
        .collect();
        parts.push(format!("page={to}"));
        format!("/approvals?{}", parts.join("&"))
    };
    let pages = total.div_ceil(u64::from(per_page.max(1))).max(1);
    view! {
        <nav class="pager" aria-label="Pages">
            {(page > 1).then(|| view! { <a href=link(page - 1)>"← Previous"</a> })}
            <span>{format!("Page {page} of {pages}")}</span>
            {(u64::from(page) < pages).then(|| view! { <a href=link(page + 1)>"Next →"</a> })}
        </nav>
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What a batch did, per client.
#[component]
pub fn BatchResult(answer: BatchAnswer) -> impl IntoView {
    view! {
        <section class="results" data-testid="batch-result" role="status">
            <h2>"Result"</h2>
            <ul>
                {answer
                    .clients
                    .into_iter()
                    .map(|c| {
                        let ok = c.refused.is_empty();
                        view! {
                            <li data-testid="batch-client" data-client=c.client_id.to_string() class:refused=!ok>
                                <strong>{c.client_name.clone()}</strong> " "
                                <span class=if ok { "badge ok" } else { "badge bad" }>
                                    {if ok { "approved" } else { "refused" }}
                                </span>
                                " " {c.message.clone()}
                                {(!c.awaiting_second_approval.is_empty()).then(|| view! {
                                    " " <a href="/approvals/waiting" data-testid="waiting-link">
                                        {format!("{} waiting for a second approver", c.awaiting_second_approval.len())}
                                    </a>
                                })}
                                {(!ok).then(|| view! {
                                    <ul>
                                        {c.refused.iter().map(|r| view! {
                                            <li data-rule=r.reason_code.clone()>
                                                {r.message.clone()} " " <code>{r.reason_code.clone()}</code>
                                            </li>
                                        }).collect_view()}
                                    </ul>
                                })}
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        </section>
    }
}
