//! Everything that can go wrong in the metering domain, each with a stable code.

use chrono::{DateTime, Utc};
use portico_kernel::csv::ImportReport;
use portico_kernel::{DomainError, ErrorKind, InfraError, ValidationErrors};
use rust_decimal::Decimal;

/// One reading of a batch that was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "index": 3, "code": "metering.reading_below_previous",
    "reason": "the reading 4700 is below the previous 4711.25 and no rollover explains it"
})))]
#[serde(rename_all = "camelCase")]
pub struct RefusedReading {
    /// Its place in the batch, from 0.
    pub index: usize,
    /// The stable code of the refusal (`metering.reading_in_future`, ...).
    pub code: &'static str,
    /// Why, for people.
    pub reason: String,
}

/// A failed metering operation.
#[derive(Debug, thiserror::Error)]
pub enum MeteringError {
    /// The command's fields break the rules; each failing field is named.
    #[error("invalid request: {0}")]
    Invalid(ValidationErrors),
    /// No such site in the caller's tenant.
    #[error("site not found")]
    SiteNotFound,
    /// The move would make a site its own ancestor.
    #[error("a site cannot be placed below itself")]
    SiteCycle,
    /// The site still has sites or meters below it.
    #[error("the site has sites or meters below it")]
    SiteInUse,
    /// No such meter in the caller's tenant.
    #[error("meter not found")]
    MeterNotFound,
    /// The meter is not active at that time (before its start, after its replacement).
    #[error("the meter is not active at {0}")]
    MeterInactive(DateTime<Utc>),
    /// The meter was replaced already.
    #[error("the meter was replaced already")]
    MeterReplaced,
    /// A reading dated after now (beyond the allowed clock skew).
    #[error("a reading cannot be in the future ({0})")]
    ReadingInFuture(DateTime<Utc>),
    /// A register reading below the previous one that no rollover explains.
    #[error("the reading {value} is below the previous {previous} and no rollover explains it")]
    ReadingBelowPrevious {
        /// The previous reading's value.
        previous: Decimal,
        /// The refused value.
        value: Decimal,
    },
    /// Readings of a batch were refused (and none of the batch was stored).
    #[error("{} readings of the batch were refused", .0.len())]
    ReadingsRefused(Vec<RefusedReading>),
    /// Lines of an import file were refused (and nothing was stored).
    #[error("{} lines of the file cannot be imported", .0.error_count)]
    ImportRefused(ImportReport),
    /// The meter has another value at that instant.
    #[error("the meter has another reading at {0}")]
    ReadingConflict(DateTime<Utc>),
    /// The meter has readings, so it cannot be deleted (replace it instead).
    #[error("the meter has readings")]
    MeterInUse,
    /// The tenant has as many meter data sources as it may.
    #[error("a tenant configures at most {0} meter data sources")]
    TooManySources(u64),
    /// No such meter data source in the caller's tenant.
    #[error("meter data source not found")]
    SourceNotFound,
    /// The meter's readings do not reach over the period asked for.
    #[error("the readings do not cover {from} to {to}")]
    NotCovered {
        /// Start of the period.
        from: DateTime<Utc>,
        /// End of the period.
        to: DateTime<Utc>,
    },
    /// A period whose end is not after its start, or too long.
    #[error("the period is not valid: {0}")]
    InvalidPeriod(&'static str),
    /// Every event of a batch falls in a period already closed for usage, past its grace.
    #[error("usage through {closed_through} is closed")]
    UsageClosed {
        /// The instant before which usage is closed.
        closed_through: DateTime<Utc>,
        /// The ids of the events refused.
        events: Vec<String>,
    },
    /// A figure beyond what a decimal holds (about 7.9e28).
    #[error("the figure is too large to compute")]
    FigureTooLarge,
    /// No such billable metric in the caller's tenant.
    #[error("metric not found")]
    MetricNotFound,
    /// Another metric of the tenant has this code.
    #[error("a metric with code `{0}` exists")]
    MetricCodeTaken(String),
    /// The store failed; details go to the logs, not the caller.
    #[error(transparent)]
    Store(#[from] InfraError),
}

impl DomainError for MeteringError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_)
            | Self::ReadingInFuture(_)
            | Self::ReadingBelowPrevious { .. }
            | Self::InvalidPeriod(_)
            | Self::MeterInactive(_)
            | Self::UsageClosed { .. }
            | Self::ReadingsRefused(_)
            | Self::FigureTooLarge
            | Self::ImportRefused(_) => ErrorKind::Validation,
            Self::SiteNotFound | Self::MeterNotFound | Self::MetricNotFound | Self::SourceNotFound => {
                ErrorKind::NotFound
            }
            Self::SiteCycle
            | Self::SiteInUse
            | Self::MeterReplaced
            | Self::ReadingConflict(_)
            | Self::TooManySources(_)
            | Self::MeterInUse
            | Self::MetricCodeTaken(_)
            | Self::NotCovered { .. } => ErrorKind::Conflict,
            Self::Store(infra) => infra.kind(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "metering.invalid",
            Self::SiteNotFound => "metering.site_not_found",
            Self::SiteCycle => "metering.site_cycle",
            Self::SiteInUse => "metering.site_in_use",
            Self::MeterNotFound => "metering.meter_not_found",
            Self::MeterInactive(_) => "metering.meter_inactive",
            Self::MeterReplaced => "metering.meter_replaced",
            Self::ReadingInFuture(_) => "metering.reading_in_future",
            Self::ReadingConflict(_) => "metering.reading_conflict",
            Self::ReadingsRefused(_) => "metering.readings_refused",
            Self::ImportRefused(_) => "import.invalid_rows",
            Self::MeterInUse => "metering.meter_in_use",
            Self::SourceNotFound => "metering.source_not_found",
            Self::TooManySources(_) => "metering.too_many_sources",
            Self::ReadingBelowPrevious { .. } => "metering.reading_below_previous",
            Self::NotCovered { .. } => "metering.not_covered",
            Self::InvalidPeriod(_) => "metering.invalid_period",
            Self::UsageClosed { .. } => "metering.usage_closed",
            Self::MetricNotFound => "metering.metric_not_found",
            Self::FigureTooLarge => "metering.figure_too_large",
            Self::MetricCodeTaken(_) => "metering.metric_code_taken",
            Self::Store(infra) if infra.kind() == ErrorKind::Unavailable => "store.unavailable",
            Self::Store(_) => "internal",
        }
    }
}
