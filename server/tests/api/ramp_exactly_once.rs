//! Issue #6 — tests for this capability, each run on SQLite and PostgreSQL.

#[allow(unused_imports)]
use super::support::{Engine, TestApp};

both_engines!();
