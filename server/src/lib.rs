//! The RowCol server: rail adapters, sandbox simulators, webhooks, jobs.

pub mod rails;
pub mod sandbox;
