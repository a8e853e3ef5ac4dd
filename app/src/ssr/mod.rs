//! Server-only code: state, database access, authentication, audit, jobs.

pub mod clock;
