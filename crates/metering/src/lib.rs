//! Portico's metering domain: where meters are ([`Site`]), what they
//! measure ([`Meter`]), their readings and how readings are checked, the
//! consumption between two instants, and usage events with the billable
//! metrics that add them up ([`aggregate`] is the one definition of each
//! aggregation), and the [`MeterDataSource`] port external readings come
//! through. Pure functions and types only: the store crate persists them,
//! and other Rust services use them as a plain library.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use portico_kernel::{MeterId, ReadingId, SiteId};
//! use portico_metering::{
//!     Meter, MeterKind, MeterPlace, MeterReadings, Reading, ReadingMode, ReadingSource, ReadingStatus,
//!     consumption,
//! };
//! use rust_decimal::Decimal;
//!
//! let day = |d| Utc.with_ymd_and_hms(2026, 1, d, 0, 0, 0).unwrap();
//! let meter = Meter {
//!     id: MeterId::new(),
//!     place: MeterPlace::Site { site_id: SiteId::new() },
//!     kind: MeterKind::Electricity,
//!     unit: "kWh".into(),
//!     mode: ReadingMode::Register { digits: Some(6) },
//!     serial_number: None,
//!     active_from: day(1),
//!     active_until: None,
//!     start_reading: Some(Decimal::from(1000)),
//!     replaces: None,
//! };
//! let read = |at, value: i64| Reading {
//!     id: ReadingId::new(),
//!     meter_id: meter.id,
//!     at,
//!     value: Decimal::from(value),
//!     source: ReadingSource::Manual,
//!     status: ReadingStatus::Valid,
//!     flagged: None,
//! };
//! let readings = [read(day(11), 1100)];
//! // 10 kWh a day between the readings: 3 January to 8 January is 50 kWh.
//! let used = consumption(&[MeterReadings { meter: &meter, readings: &readings }], day(3), day(8)).unwrap();
//! assert_eq!(used, Decimal::from(50));
//! ```

mod consumption;
mod error;
mod import;
mod meter;
mod metric;
mod reading;
mod site;
mod source;
mod usage;

pub use consumption::{
    Bucket, CONSUMPTION_DECIMALS, Granularity, MeterReadings, consumption, consumption_by,
};
pub use error::{MeteringError, RefusedReading};
pub use import::{ImportedReading, MAX_IMPORT_ROWS, MeterRef, ReadingsImport, meter_by_serial};
pub use meter::{
    InService, Meter, MeterChanges, MeterDraft, MeterKind, MeterPlace, ReadingMode, Replacement,
    in_service_at,
};
pub use metric::{
    Aggregation, BillableMetric, MAX_FILTERS, MetricDraft, PropertyFilter, TIME_WEIGHTED_DP, aggregate,
    aggregate_by_subject,
};
pub use reading::{
    Checked, MAX_BATCH_READINGS, NewReading, Reading, ReadingBatch, ReadingRules, ReadingSource,
    ReadingStatus, TRAILING_READINGS, Verdict, candidate, check_reading, check_series,
};
pub use site::{Site, SiteDraft, SiteKind, check_parent};
pub use source::{
    MeterDataSource, MeterSource, PullFuture, Pulled, PulledReading, SourceDraft, SourceError, SourceKind,
    readings_of_pull,
};
pub use usage::{
    EventBatch, IngestReport, MAX_BATCH_EVENTS, MAX_EVENT_SKEW, MAX_PROPERTIES, MAX_PROPERTIES_BYTES,
    NewUsageEvent, UsageEvent, accepts, dedupe_in_batch,
};
