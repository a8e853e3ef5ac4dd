//! The RowCol server: rail adapters, sandbox simulators, webhooks, jobs.

pub mod cli;
pub mod config;
pub mod connections;
pub mod firms;
pub mod glue;
pub mod hygiene;
pub mod jobs;
pub mod rails;
pub mod routes;
pub mod sandbox;
pub mod seed;
pub mod site;
pub mod startup;
pub mod webhooks;
