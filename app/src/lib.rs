#![recursion_limit = "512"]
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
use leptos_router::SsrMode;
use leptos_router::{path, Lazy};
use pages::lazy;

/// This build's stamp (see `build.rs`): rendered into every page, embedded
/// in the wasm bundle, and compared by both sides.
pub const BUILD_STAMP: &str = env!("ROWCOL_BUILD_STAMP");

/// The `<meta name=…>` that carries the server's build stamp to the browser.
pub const BUILD_STAMP_META: &str = "rowcol-build";

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name=BUILD_STAMP_META content=BUILD_STAMP />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
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
    // Pages render in SsrMode::Async: the whole page is sent once its data
    // has loaded, so it works with JavaScript off (out-of-order streaming
    // needs a script to swap the resolved parts in).
    view! {
        <Stylesheet id="leptos" href="/pkg/rowcol.css" />
        <Title text="RowCol" />
        <Router>
            <Console />
        </Router>
    }
}

/// Everything inside the router. The session's actions are created here,
/// not above the router, because the router is what exposes a failed
/// JavaScript-off form post's error (in the URL) to the actions.
#[component]
fn Console() -> impl IntoView {
    components::layout::provide_session();
    view! {
            <components::layout::Header />
            <main class="page">
                <Routes fallback=|| view! { <p class="empty">"Page not found."</p> }>
                    <Route path=path!("/login") view={Lazy::<lazy::LoginRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/") view={Lazy::<lazy::PortfolioRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/approvals") view={Lazy::<lazy::ApprovalsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/approvals/waiting") view={Lazy::<lazy::WaitingRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/clients/:id") view={Lazy::<lazy::ClientRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/payments/:id") view={Lazy::<lazy::PaymentRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/hygiene") view={Lazy::<lazy::HygieneRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/audit") view={Lazy::<lazy::AuditRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/connections") view={Lazy::<lazy::ConnectionsRoute>::new()} ssr=SsrMode::Async />
                    // Not under /sandbox: that is the simulators' own mount.
                    <Route path=path!("/simulator") view={Lazy::<lazy::SandboxFaultsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/users") view={Lazy::<lazy::UsersRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/welcome") view={Lazy::<lazy::WelcomeRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/account") view={Lazy::<lazy::AccountRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/updates") view={Lazy::<lazy::UpdatesRoute>::new()} ssr=SsrMode::Async />
                </Routes>
            </main>
    }
}
