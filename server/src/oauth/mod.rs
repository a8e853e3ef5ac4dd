//! Connecting a client's rails: the authorization-code flows (QBO, Ramp,
//! Stripe) and Plaid Link, token refresh, disconnect.

pub mod flow;
pub mod providers;
pub mod tokens;
