//! Server-only code: state, authentication, the data layer (`store`, the
//! only place with SQL), jobs as data, crypto and the ports the server
//! implements.

pub mod app_state;
pub mod audit_filter;
pub mod auth;
pub mod clock;
pub mod crypto;
pub mod decide;
pub mod job_kinds;
pub mod metrics;
pub mod notices;
pub mod planted;
pub mod ports;
pub mod sign_in;
pub mod stop;
pub mod store;
pub mod totp;
