//! Wire types shared by the browser and the server.

pub mod ids;
pub mod money;

pub use ids::*;
pub use money::*;
