//! The Sandbox page (`/simulator`): every fault the simulated rails can
//! inject, grouped by rail, with its current value, a line saying what it
//! does, and a form to set or clear it. Admins only, simulators only: the
//! server functions refuse anyone else (and say so when RowCol runs on live
//! rails). Each form is a plain post, so it works without JavaScript.

use crate::api::sandbox::{get_faults, SetFault};
use crate::components::layout::{loaded, use_session};
use crate::model::{FaultKind, FaultRow};
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn SandboxFaultsPage() -> impl IntoView {
    let session = use_session();
    let set = ServerAction::<SetFault>::new();
    let data = Resource::new(
        move || (set.version().get(), session.advance.version().get()),
        |_| get_faults(),
    );
    let error = move || match set.value().get() {
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    view! {
        <Title text="Sandbox faults · RowCol" />
        <h1>"Sandbox faults"</h1>
        <p class="notice">
            "Faults make the simulated rails misbehave the way the real ones can. Counted faults are used up as they fire. The same document is at "
            <code>"GET/POST /sandbox/control/faults"</code> "."
        </p>
        {move || error().map(|e| view! { <p class="error" role="alert" data-testid="fault-error">{e}</p> })}
        {loaded(
            data,
            move |v| {
                let items = v.plaid_items.clone();
                let mut groups: Vec<(String, Vec<FaultRow>)> = Vec::new();
                for f in v.faults {
                    match groups.iter_mut().find(|(g, _)| *g == f.group) {
                        Some((_, rows)) => rows.push(f),
                        None => groups.push((f.group.clone(), vec![f])),
                    }
                }
                groups
                    .into_iter()
                    .map(|(group, rows)| {
                        let items = items.clone();
                        view! {
                            <section class="fault-group">
                                <h2>{group}</h2>
                                <table class="faults">
                                    <tbody>
                                        {rows
                                            .into_iter()
                                            .map(|f| view! { <FaultLine f set items=items.clone() /> })
                                            .collect_view()}
                                    </tbody>
                                </table>
                            </section>
                        }
                    })
                    .collect_view()
                    .into_any()
            },
        )}
    }
}

#[component]
fn FaultLine(
    f: FaultRow,
    set: ServerAction<SetFault>,
    items: Vec<(String, String)>,
) -> impl IntoView {
    let key = f.key.clone();
    let set_id = format!("fault-set-{key}");
    let clear_id = format!("fault-clear-{key}");
    let clear_key = key.clone();
    let testid = format!("fault-{}", f.key);
    let status = if f.set { "set" } else { "off" };
    let input = match f.kind {
        FaultKind::Switch => view! {
            <select name="value" aria-label=f.key.clone()>
                <option value="on" selected=f.set>"on"</option>
                <option value="off" selected=!f.set>"off"</option>
            </select>
        }
        .into_any(),
        FaultKind::Count => view! {
            <input type="number" name="value" min="0" value=f.value.clone() aria-label=f.key.clone() />
        }
        .into_any(),
        _ => {
            let list = format!("list-{}", f.key);
            let hint = match f.kind {
                FaultKind::Statuses => "e.g. 503, 429",
                FaultKind::ItemIds => "Plaid item ids, comma separated",
                FaultKind::ReturnCodes => "e.g. R01, R02",
                FaultKind::OptionalDays => "0–5, empty for none",
                _ => "e.g. ramp:503, qbo:0:GET",
            };
            view! {
                <input type="text" name="value" value=f.value.clone() placeholder=hint aria-label=f.key.clone()
                    list=(f.kind == FaultKind::ItemIds).then(|| list.clone()) />
                {(f.kind == FaultKind::ItemIds)
                    .then(|| {
                        view! {
                            <datalist id=list>
                                {items
                                    .into_iter()
                                    .map(|(name, item)| view! { <option value=item>{name}</option> })
                                    .collect_view()}
                            </datalist>
                        }
                    })}
            }
            .into_any()
        }
    };
    view! {
        <tr data-testid=testid data-state=status>
            <td>
                <code>{f.key.clone()}</code>
                <div class="muted">{f.explain}</div>
            </td>
            <td class="fault-value" data-testid=format!("fault-value-{}", f.key)>
                {if f.set { f.value.clone() } else { "off".into() }}
            </td>
            <td>
                <ActionForm action=set attr:class="inline">
                    <input type="hidden" name="key" value=key />
                    {input}
                    <button type="submit" data-testid=set_id>"Set"</button>
                </ActionForm>
                {f.set
                    .then(|| {
                        view! {
                            <ActionForm action=set attr:class="inline">
                                <input type="hidden" name="key" value=clear_key />
                                <input type="hidden" name="value" value="" />
                                <button type="submit" class="link" data-testid=clear_id>
                                    "Clear"
                                </button>
                            </ActionForm>
                        }
                    })}
            </td>
        </tr>
    }
}
