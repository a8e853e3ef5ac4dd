//! RowCol's shared crate: wire models, pure domain calculators, server
//! functions, and the Leptos UI.

pub mod api;
pub mod components;
pub mod domain;
pub mod error;
pub mod model;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    components::layout::provide_session();
    // Playwright's proof that the wasm really hydrated.
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(body) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.body())
        {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Stylesheet id="leptos" href="/pkg/rowcol.css" />
        <Title text="RowCol" />
        <Router>
            <components::layout::Header />
            <main class="page">
                <Routes fallback=|| view! { <p class="empty">"Page not found."</p> }>
                    <Route path=path!("/login") view=pages::login::LoginPage />
                    <Route path=path!("/") view=pages::portfolio::PortfolioPage />
                    <Route path=path!("/clients/:id") view=pages::client::ClientPage />
                    <Route path=path!("/payments/:id") view=pages::payment::PaymentPage />
                    <Route path=path!("/hygiene") view=pages::hygiene::HygienePage />
                    <Route path=path!("/audit") view=pages::audit::AuditPage />
                </Routes>
            </main>
        </Router>
    }
}
