use crate::api::auth::Login;
use crate::components::layout::use_session;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn LoginPage() -> impl IntoView {
    // Created inside the route so a JavaScript-off failure (carried back in
    // the URL) reaches it.
    let login = ServerAction::<Login>::new();
    let session = use_session();
    Effect::new(move |_| {
        if let Some(Ok(())) = login.value().get() {
            session.user.refetch();
        }
    });
    let error = move || match login.value().get() {
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    view! {
        <Title text="Sign in · RowCol" />
        <section class="card narrow">
            <h1>"Sign in"</h1>
            <ActionForm action=login>
                <label>
                    "Email" <input type="email" name="email" autocomplete="username" required />
                </label>
                <label>
                    "Password"
                    <input type="password" name="password" autocomplete="current-password" required />
                </label>
                <button type="submit" class="primary">"Sign in"</button>
            </ActionForm>
            {move || {
                error().map(|e| view! { <p class="error" role="alert" data-testid="login-error">{e}</p> })
            }}
        </section>
    }
}
