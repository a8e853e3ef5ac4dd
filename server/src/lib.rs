//! The RowCol server: rail adapters, sandbox simulators, webhooks, jobs.

pub mod cli;
pub mod config;
pub mod connections;
pub mod jobs;
pub mod ports;
pub mod rails;
pub mod routes;
pub mod sandbox;
pub mod seed;
pub mod services;
pub mod site;
pub mod startup;
pub mod state;
pub mod webhooks;
