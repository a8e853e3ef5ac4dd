//! Pure calculators: no I/O, callable from server functions and from the
//! browser alike.

pub mod audit_words;
pub mod calendar;
pub mod custody;
pub mod evidence_order;
pub mod freshness;
pub mod guardrails;
pub mod matching;
pub mod notify;
pub mod projection;
pub mod rules;
pub mod runway;
pub mod tray;
