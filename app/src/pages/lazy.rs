//! Each page as a lazily loaded route: built with `cargo leptos build
//! --split` (scripts/build.sh, both profiles) every page's code is a chunk
//! of its own, fetched when a person first opens that page, so the bundle
//! loaded up front holds only what every page shares (issue #17 §6).
//! A build without `--split` does not hydrate: its bundle imports a
//! placeholder module that only the splitter replaces.
//!
//! A page loads its own data (its resources are created in its view), so
//! `data()` holds nothing: the server renders each page whole
//! (`SsrMode::Async`), and in the browser the page's chunk is preloaded by
//! the HTML the server sent.

use leptos::prelude::*;
use leptos_router::{lazy_route, LazyRoute};

macro_rules! lazy_page {
    ($(#[$doc:meta])* $route:ident => $page:path) => {
        $(#[$doc])*
        pub struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> AnyView {
                untrack(|| $page().into_any())
            }
        }
    };
}

lazy_page!(LoginRoute => super::login::LoginPage);
lazy_page!(PortfolioRoute => super::portfolio::PortfolioPage);
lazy_page!(ApprovalsRoute => super::approvals::ApprovalsPage);
lazy_page!(WaitingRoute => super::waiting::WaitingPage);
lazy_page!(ClientRoute => super::client::ClientPage);
lazy_page!(PaymentRoute => super::payment::PaymentPage);
lazy_page!(HygieneRoute => super::hygiene::HygienePage);
lazy_page!(AuditRoute => super::audit::AuditPage);
lazy_page!(ConnectionsRoute => super::connections::ConnectionsPage);
lazy_page!(SandboxFaultsRoute => super::sandbox_faults::SandboxFaultsPage);
lazy_page!(UsersRoute => super::users::UsersPage);
lazy_page!(WelcomeRoute => super::welcome::WelcomePage);
lazy_page!(AccountRoute => super::account::AccountPage);
lazy_page!(UpdatesRoute => super::updates::UpdatesPage);
