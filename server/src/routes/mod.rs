pub mod audit_export;
pub mod health;
pub mod metrics;
pub mod server_fns;
