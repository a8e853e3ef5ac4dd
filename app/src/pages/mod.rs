//! One module per route.

pub mod account;
pub mod approvals;
pub mod audit;
pub mod client;
pub mod connections;
pub mod hygiene;
pub mod lazy;
pub mod login;
pub mod payment;
pub mod portfolio;
pub mod sandbox_faults;
pub mod updates;
pub mod users;
pub mod waiting;
pub mod welcome;
