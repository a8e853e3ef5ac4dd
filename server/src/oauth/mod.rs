//! OAuth 2.0 with the rails: the providers' endpoints and the token
//! requests (exchange, refresh, revoke). The flows that use them are in
//! `crate::connect`.

pub mod providers;
pub mod tokens;
