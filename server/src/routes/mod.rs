pub mod health;
pub mod server_fns;
