//! Server functions, one file per resource. Each has a stable endpoint under
//! `/api/…` (documented in the README) so scripts and tests can call them.

pub mod approvals;
pub mod audit;
pub mod auth;
pub mod clients;
pub mod connections;
pub mod decide;
pub mod fields;
pub mod hygiene;
pub mod notify;
pub mod payments;
pub mod policy;
pub mod sandbox;
pub mod users;
