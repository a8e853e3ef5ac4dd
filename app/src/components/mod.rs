//! Reusable pieces of the console.

pub mod chart;
pub mod layout;
pub mod policy;
pub mod status;
