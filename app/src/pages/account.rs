//! `/account`: one's own password.

use crate::api::users::ChangePassword;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn AccountPage() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let outcome = move || match change.value().get() {
        Some(Err(e)) => Some(("error", e.to_string())),
        Some(Ok(m)) => Some(("notice", m)),
        None => None,
    };
    view! {
        <Title text="Your account · RowCol" />
        <section class="card narrow">
            <h1>"Change your password"</h1>
            <ActionForm action=change>
                <label>
                    "Current password"
                    <input type="password" name="current" required=true autocomplete="current-password" data-testid="current-password" />
                </label>
                <label>
                    "New password (at least 12 characters)"
                    <input type="password" name="new_password" required=true minlength="12" autocomplete="new-password" data-testid="new-password" />
                </label>
                <button type="submit" class="primary" data-testid="change-password">"Change password"</button>
            </ActionForm>
            {move || outcome().map(|(class, m)| view! { <p class=class role="status" data-testid="account-outcome">{m}</p> })}
        </section>
    }
}
