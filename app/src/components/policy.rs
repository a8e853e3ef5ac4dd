//! A client's approval policy on its page: every role reads it; admins edit
//! it (a new version on each publish), previewing first what it would
//! change among the open bills.

use crate::api::policy::{preview_client_policy, SetClientPolicy};
use crate::domain::rules::Policy;
use crate::model::{Currency, Money, Role};
use leptos::prelude::*;

fn age(secs: i64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{} day(s)", s / 86_400),
        s if s % 3_600 == 0 => format!("{} hour(s)", s / 3_600),
        s if s % 60 == 0 => format!("{} minute(s)", s / 60),
        s => format!("{s} seconds"),
    }
}

/// The policy comes with the client's data (no resource of its own: a
/// resource nested in the page's would hydrate out of order); publishing
/// refetches the page.
#[component]
pub fn PolicyPanel(
    p: Policy,
    client_id: String,
    currency: Currency,
    role: Role,
    publish: ServerAction<SetClientPolicy>,
) -> impl IntoView {
    view! {
        <section class="policy" data-testid="policy">
            <h2>"Approval policy"</h2>
            <PolicyFacts p=p.clone() currency=currency.clone() />
            {(role >= Role::Admin)
                .then(|| view! { <PolicyForm p client_id currency publish /> })}
        </section>
    }
}

#[component]
fn PolicyFacts(p: Policy, currency: Currency) -> impl IntoView {
    view! {
        <dl class="refs" data-testid="policy-facts">
            <dt>"Version"</dt>
            <dd data-testid="policy-version">{p.version}</dd>
            <dt>"Liquidity buffer"</dt>
            <dd>{format!("{} days of burn", p.buffer_days)}</dd>
            <dt>"Bank balance at most"</dt>
            <dd>{format!("{} old", age(p.cash_max_age_secs))}</dd>
            <dt>"Bank history at most"</dt>
            <dd>{format!("{} old", age(p.bank_history_max_age_secs))}</dd>
            <dt>"Two approvers from"</dt>
            <dd>{Money::new(p.dual_control_threshold_minor, currency).to_string()}</dd>
            <dt>"Duplicate window"</dt>
            <dd>{format!("{} days (same vendor, same amount)", p.duplicate_window_days)}</dd>
            <dt>"New vendor"</dt>
            <dd>
                {if p.new_vendor_second_approver {
                    "needs a second approver"
                } else {
                    "shown and audited"
                }}
            </dd>
        </dl>
    }
}

#[component]
fn PolicyForm(
    p: Policy,
    client_id: String,
    currency: Currency,
    publish: ServerAction<SetClientPolicy>,
) -> impl IntoView {
    let threshold = Money::new(p.dual_control_threshold_minor, currency).to_decimal_string();
    let buffer = RwSignal::new(p.buffer_days.to_string());
    let cash_age = RwSignal::new(p.cash_max_age_secs.to_string());
    let history_age = RwSignal::new(p.bank_history_max_age_secs.to_string());
    let dual = RwSignal::new(threshold);
    let window = RwSignal::new(p.duplicate_window_days.to_string());
    let new_vendor = RwSignal::new(p.new_vendor_second_approver);
    let cid = client_id.clone();
    let preview = Action::new(move |_: &()| {
        let cid = cid.clone();
        let (b, c, h, d, w, n) = (
            buffer.get_untracked(),
            cash_age.get_untracked(),
            history_age.get_untracked(),
            dual.get_untracked(),
            window.get_untracked(),
            new_vendor.get_untracked(),
        );
        async move {
            preview_client_policy(
                cid,
                Some(b),
                Some(c),
                Some(h),
                None,
                Some(d),
                Some(w),
                Some(n.to_string()),
                None,
            )
            .await
        }
    });
    let field =
        |label: &'static str, name: &'static str, sig: RwSignal<String>, hint: &'static str| {
            view! {
                <label>
                    {label}
                    <input
                        type="text"
                        name=name
                        prop:value=move || sig.get()
                        on:input=move |ev| sig.set(event_target_value(&ev))
                        aria-describedby=format!("{name}-hint")
                    />
                    <span class="muted" id=format!("{name}-hint")>{hint}</span>
                </label>
            }
        };
    view! {
        <details class="policy-edit">
            <summary data-testid="policy-edit">"Change the policy (admins)"</summary>
            <ActionForm action=publish attr:data-testid="policy-form">
                <input type="hidden" name="client_id" value=client_id />
                <input type="hidden" name="expected_version" value=p.version.to_string() />
                {field("Buffer (days)", "buffer_days", buffer, "0 to 365")}
                {field("Bank balance max age (seconds)", "cash_max_age_secs", cash_age, "60 to 604800")}
                {field("Bank history max age (seconds)", "bank_history_max_age_secs", history_age, "60 to 604800")}
                {field("Two approvers from (amount)", "dual_control_threshold", dual, "e.g. 10000.00")}
                {field("Duplicate window (days)", "duplicate_window_days", window, "0 to 90")}
                <label>
                    "A first payment to a vendor"
                    <select
                        name="new_vendor_second_approver"
                        on:change=move |ev| new_vendor.set(event_target_value(&ev) == "true")
                    >
                        <option value="false" selected=!p.new_vendor_second_approver>"is shown and audited"</option>
                        <option value="true" selected=p.new_vendor_second_approver>"needs a second approver"</option>
                    </select>
                </label>
                <button type="button" data-testid="policy-preview" on:click=move |_| { preview.dispatch(()); }>
                    "Preview what changes"
                </button>
                <button type="submit" class="primary" data-testid="policy-publish">
                    "Publish as a new version"
                </button>
            </ActionForm>
            {move || {
                preview
                    .value()
                    .get()
                    .map(|r| match r {
                        Ok(changes) if changes.is_empty() => {
                            view! { <p class="muted" data-testid="policy-changes">"No open bill would change."</p> }.into_any()
                        }
                        Ok(changes) => {
                            view! {
                                <ul data-testid="policy-changes">
                                    {changes
                                        .into_iter()
                                        .map(|c| view! {
                                            <li>{format!("{} {}: {} → {}", c.vendor_name, c.amount, c.before, c.after)}</li>
                                        })
                                        .collect_view()}
                                </ul>
                            }
                                .into_any()
                        }
                        Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                    })
            }}
            {move || {
                publish
                    .value()
                    .get()
                    .map(|r| match r {
                        Ok(p) => view! { <p class="success" role="status" data-testid="policy-result">{format!("Published version {}.", p.version)}</p> }.into_any(),
                        Err(e) => view! { <p class="error" role="alert" data-testid="policy-error">{e.to_string()}</p> }.into_any(),
                    })
            }}
        </details>
    }
}
