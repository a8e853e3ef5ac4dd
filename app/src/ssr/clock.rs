//! The clock every part of RowCol reads "now" from: its own small crate,
//! so the rail simulators share it without depending on the app.

pub use ::clock::Clock;
