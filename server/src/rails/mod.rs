//! Rail adapters.
