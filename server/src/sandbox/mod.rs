//! Sandbox simulators.
