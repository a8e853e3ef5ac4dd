//! RowCol's shared crate: wire models, pure domain calculators, server
//! functions, and the Leptos UI.

pub mod model;
#[cfg(feature = "ssr")]
pub mod ssr;
