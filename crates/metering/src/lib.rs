//! Portico's metering domain: where meters are ([`Site`]), what they
//! measure ([`Meter`]), their readings and how readings are checked, the
//! consumption between two instants, and usage events with the billable
//! metrics that add them up. Pure functions and types only: the store
//! crate persists them, and other Rust services use them as a plain library.

mod error;
mod meter;
mod site;

pub use error::MeteringError;
pub use meter::{Meter, MeterKind, MeterPlace, ReadingMode};
pub use site::{Site, SiteKind, check_parent};
