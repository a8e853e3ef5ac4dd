//! Reusable pieces of the console.

pub mod layout;
pub mod policy;
pub mod status;
