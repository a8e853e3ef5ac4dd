//! Wire types shared by the browser and the server.

pub mod decide;
pub mod faults;
pub mod ids;
pub mod kinds;
pub mod money;
pub mod views;

pub use decide::*;
pub use faults::*;
pub use ids::*;
pub use kinds::*;
pub use money::*;
pub use views::*;
