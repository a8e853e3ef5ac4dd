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
    // The page the person asked for before being asked to sign in.
    let (next, welcome) = leptos_router::hooks::use_query_map().with_untracked(|q| {
        (
            q.get("next").unwrap_or_default(),
            q.get("welcome").is_some(),
        )
    });
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
            {welcome
                .then(|| {
                    view! {
                        <p class="notice" role="status" data-testid="welcome-done">
                            "Done: sign in with your email and the password you chose."
                        </p>
                    }
                })}
            <ActionForm action=login>
                <label>
                    "Email" <input type="email" name="email" autocomplete="username" required />
                </label>
                <label>
                    "Password"
                    <input type="password" name="password" autocomplete="current-password" required />
                </label>
                <label>
                    "Authenticator code (only if you use two-step sign-in)"
                    <input
                        type="text"
                        name="code"
                        inputmode="numeric"
                        autocomplete="one-time-code"
                        data-testid="login-code"
                    />
                </label>
                <input type="hidden" name="next" value=next />
                <button type="submit" class="primary">"Sign in"</button>
            </ActionForm>
            {move || {
                error().map(|e| view! { <p class="error" role="alert" data-testid="login-error">{e}</p> })
            }}
        </section>
    }
}
