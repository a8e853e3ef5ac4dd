//! Wire types shared by the browser and the server.

pub mod faults;
pub mod ids;
pub mod kinds;
pub mod money;
pub mod views;

pub use faults::*;
pub use ids::*;
pub use kinds::*;
pub use money::*;
pub use views::*;
