//! The RowCol server: rail adapters, webhooks, jobs, and the wiring of the
//! sandbox simulators (the `sandbox` crate) in sandbox mode.

pub mod cli;
pub mod config;
pub mod connections;
pub mod firms;
pub mod glue;
pub mod hygiene;
pub mod jobs;
pub mod rails;
pub mod routes;
pub mod seed;
pub mod site;
pub mod startup;
pub mod webhooks;
