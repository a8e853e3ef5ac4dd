//! Inbound webhooks: verify the raw bytes → persist → 2xx → process later.

pub mod plaid;
pub mod ramp;
pub mod refusals;
