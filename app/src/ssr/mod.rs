//! Server-only code: state, database access, authentication, audit, jobs.

pub mod audit;
pub mod auth;
pub mod clock;
pub mod crypto;
pub mod db;
pub mod jobs;
pub mod ports;
pub mod queries;
pub mod state;
