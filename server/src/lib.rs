//! The RowCol server: rail adapters, webhooks, jobs, and the wiring of the
//! sandbox simulators (the `sandbox` crate) in sandbox mode.

pub mod audit_checkpoint;
pub mod cli;
pub mod config;
pub mod connect;
pub mod connections;
pub mod jobs;
pub mod keys;
pub mod notify;
pub mod oauth;
pub mod ports;
pub mod rails;
pub mod router_state;
pub mod routes;
pub mod security;
pub mod seed;
pub mod services;
pub mod site;
pub mod startup;
pub mod webhooks;
