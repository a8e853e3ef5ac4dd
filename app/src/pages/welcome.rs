//! `/welcome?token=…`: a one-time link from an admin. An invitation asks
//! for a name and a password; a reset for a new password. Then on to sign
//! in. Nothing here needs a session.

use crate::api::users::{get_link, AcceptLink};
use crate::components::layout::loaded;
use crate::model::LinkInfo;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn WelcomePage() -> impl IntoView {
    let accept = ServerAction::<AcceptLink>::new();
    let token = use_query_map().with_untracked(|q| q.get("token").unwrap_or_default());
    let data = Resource::new(move || token.clone(), get_link);
    let token =
        StoredValue::new(use_query_map().with_untracked(|q| q.get("token").unwrap_or_default()));
    let error = move || match accept.value().get() {
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    view! {
        <Title text="Welcome · RowCol" />
        <section class="card narrow">
            {loaded(
                data,
                move |l: LinkInfo| {
                    let invite = l.purpose == "invite";
                    view! {
                        <h1>{if invite { "Join your firm on RowCol" } else { "Choose a new password" }}</h1>
                        <p>
                            {if invite {
                                format!(
                                    "{} invites {} as {}.",
                                    l.firm_name,
                                    l.email,
                                    l.role.map(|r| r.as_str()).unwrap_or("a member"),
                                )
                            } else {
                                format!("A new password for {} at {}.", l.email, l.firm_name)
                            }}
                        </p>
                        <ActionForm action=accept>
                            <input type="hidden" name="token" value=token.get_value() />
                            {invite
                                .then(|| {
                                    view! {
                                        <label>
                                            "Your name" <input type="text" name="name" required=true autocomplete="name" data-testid="welcome-name" />
                                        </label>
                                    }
                                })}
                            <label>
                                "Password (at least 12 characters)"
                                <input type="password" name="password" required=true minlength="12" autocomplete="new-password" data-testid="welcome-password" />
                            </label>
                            <button type="submit" class="primary" data-testid="welcome-submit">
                                {if invite { "Create my account" } else { "Set the password" }}
                            </button>
                        </ActionForm>
                    }
                        .into_any()
                },
            )}
            {move || error().map(|e| view! { <p class="error" role="alert" data-testid="welcome-error">{e}</p> })}
        </section>
    }
}
