//! External meter data sources (a charge point's controller, a utility's
//! portal): the port an integration crate implements, so readings arrive
//! without anyone typing them in.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

/// A reading as a source reports it, for the meter the source calls `external_meter`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PulledReading {
    /// The source's name for the meter (a charge point's id).
    pub external_meter: String,
    /// When the value was read.
    pub at: DateTime<Utc>,
    /// The register's value.
    pub value: Decimal,
}

/// What one pull brought: the readings since the cursor, and the cursor to
/// pass next time (opaque to everyone but the source).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pulled {
    /// The new readings, oldest first.
    pub readings: Vec<PulledReading>,
    /// Where the next pull starts.
    pub cursor: Option<String>,
}

/// Why a pull failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The source could not be reached or answered with an error; worth a retry.
    #[error("meter data source unavailable: {0}")]
    Unavailable(String),
    /// The source answered something this integration cannot read; a retry will not help.
    #[error("meter data source answered unexpectedly: {0}")]
    Unexpected(String),
}

/// A future of a pull.
pub type PullFuture<'a> = Pin<Box<dyn Future<Output = Result<Pulled, SourceError>> + Send + 'a>>;

/// Pulls readings from an external system since a cursor.
pub trait MeterDataSource: Send + Sync {
    /// The readings since `cursor` (all it keeps when `None`).
    fn pull<'a>(&'a self, cursor: Option<&'a str>) -> PullFuture<'a>;
}
