//! External meter data sources (a charge point's controller, a utility's
//! portal): the port an integration crate implements, so readings arrive
//! without anyone typing them in.

use std::future::Future;
use std::pin::Pin;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use portico_kernel::{MeterId, MeterSourceId, ValidationErrors};
use rust_decimal::Decimal;

use crate::{MeteringError, Reading, ReadingSource, candidate};
use portico_kernel::text::plain_text;

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

/// The readings a pull's values stand for: each value of a name `meters`
/// maps to one of the tenant's meters, as a candidate of an integration;
/// values of other names are ignored, and counted.
#[must_use]
pub fn readings_of_pull(
    meters: &BTreeMap<String, MeterId>,
    pulled: Vec<PulledReading>,
) -> (Vec<Reading>, usize) {
    let mut ignored = 0;
    let readings = pulled
        .into_iter()
        .filter_map(|p| match meters.get(&p.external_meter) {
            Some(meter) => Some(candidate(*meter, p.at, p.value, false, ReadingSource::Integration)),
            None => {
                ignored += 1;
                None
            }
        })
        .collect();
    (readings, ignored)
}

/// The kinds of source Portico can pull from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// An evcc charge controller, asked for its state at `baseUrl`.
    Evcc,
    /// A simulated charger for development and demos: its one charge point
    /// charges steadily from the source's creation.
    Simulated,
}

/// A tenant's configured source: what it is, how often it is pulled, the
/// meters its names stand for, and how its last pull went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01937a8e-7b20-7c3e-8f55-0a1b2c3d4e5f", "kind": "evcc", "name": "Garage chargers",
    "baseUrl": "http://evcc.local:7070", "everyMinutes": 15,
    "meters": {"Carport": "01937a8e-6a10-7c3e-8f55-0a1b2c3d4e5f"},
    "nextPullAt": "2026-03-01T08:15:00Z", "lastPulledAt": "2026-03-01T08:00:00Z", "lastError": null,
    "createdAt": "2026-02-01T10:00:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct MeterSource {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: MeterSourceId,
    /// What it is.
    pub kind: SourceKind,
    /// Its name for people.
    pub name: String,
    /// Where it answers (evcc).
    pub base_url: Option<String>,
    /// Minutes between pulls.
    pub every_minutes: u32,
    /// The source's meter names and the tenant's meters they stand for; a
    /// name not listed is ignored.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub meters: BTreeMap<String, MeterId>,
    /// Where the next pull starts (the source's own cursor).
    #[serde(skip)]
    pub cursor: Option<String>,
    /// When it is pulled next.
    pub next_pull_at: DateTime<Utc>,
    /// When it was last pulled successfully.
    pub last_pulled_at: Option<DateTime<Utc>>,
    /// Why the last pull failed, if it did.
    pub last_error: Option<String>,
    /// When it was configured.
    pub created_at: DateTime<Utc>,
}

/// Configures a source (`POST /api/v1/metering/sources`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "kind": "evcc", "name": "Garage chargers", "baseUrl": "http://evcc.local:7070", "everyMinutes": 15,
    "meters": {"Carport": "01937a8e-6a10-7c3e-8f55-0a1b2c3d4e5f"}
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceDraft {
    /// What it is.
    #[garde(skip)]
    pub kind: SourceKind,
    /// 1 to 200 characters.
    #[garde(length(chars, min = 1, max = 200), custom(plain_text))]
    pub name: String,
    /// evcc's address (`http://evcc.local:7070`): http or https, no
    /// credentials, query or fragment. Only for `evcc`.
    #[serde(default)]
    #[garde(length(max = 2000))]
    pub base_url: Option<String>,
    /// Minutes between pulls, 5 to 1440 (default 15).
    #[serde(default = "default_every")]
    #[garde(range(min = 5, max = 1440))]
    pub every_minutes: u32,
    /// Up to 100 of the source's meter names (1 to 128 characters) and the
    /// tenant's meters they stand for.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    #[serde(default)]
    #[garde(length(max = 100), custom(names_rules))]
    pub meters: BTreeMap<String, MeterId>,
}

const fn default_every() -> u32 {
    15
}

fn names_rules(meters: &BTreeMap<String, MeterId>, _: &()) -> garde::Result {
    for name in meters.keys() {
        if name.is_empty() || name.chars().count() > 128 {
            return Err(garde::Error::new("each meter name has 1 to 128 characters"));
        }
        plain_text(name, &())?;
    }
    Ok(())
}

impl SourceDraft {
    /// The source `id` it configures, checked, first pulled at `now`.
    pub fn validated(self, id: MeterSourceId, now: DateTime<Utc>) -> Result<MeterSource, MeteringError> {
        garde::Validate::validate(&self).map_err(|report| MeteringError::Invalid(report.into()))?;
        let base_url = match (self.kind, self.base_url) {
            (SourceKind::Evcc, Some(url)) => Some(check_base_url(&url)?),
            (SourceKind::Evcc, None) => return Err(invalid_url("evcc needs its address")),
            (SourceKind::Simulated, None) => None,
            (SourceKind::Simulated, Some(_)) => return Err(invalid_url("a simulated source has no address")),
        };
        Ok(MeterSource {
            id,
            kind: self.kind,
            name: self.name,
            base_url,
            every_minutes: self.every_minutes,
            meters: self.meters,
            cursor: None,
            next_pull_at: now,
            last_pulled_at: None,
            last_error: None,
            created_at: now,
        })
    }
}

fn invalid_url(message: &str) -> MeteringError {
    MeteringError::Invalid(ValidationErrors::field("baseUrl", message))
}

/// An http(s) address with a host and no credentials, query or fragment
/// (checked by hand: the domain takes no URL crate).
fn check_base_url(url: &str) -> Result<String, MeteringError> {
    let url = url.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| invalid_url("must start with http:// or https://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || rest.contains(['?', '#', '@', ' ']) || url.chars().any(char::is_control) {
        return Err(invalid_url("must name a host, with no credentials, query or fragment"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(kind: SourceKind, url: Option<&str>) -> SourceDraft {
        SourceDraft {
            kind,
            name: "Garage".into(),
            base_url: url.map(str::to_owned),
            every_minutes: 15,
            meters: BTreeMap::new(),
        }
    }

    #[test]
    fn an_evcc_source_needs_a_plain_http_address_and_a_simulated_one_none() {
        let now = chrono::Utc::now();
        let ok =
            draft(SourceKind::Evcc, Some("http://evcc.local:7070/")).validated(MeterSourceId::new(), now);
        assert_eq!(ok.unwrap().base_url.as_deref(), Some("http://evcc.local:7070"));
        for bad in
            [None, Some("ftp://evcc"), Some("http://user:pw@evcc"), Some("http://evcc?x=1"), Some("http://")]
        {
            let refused = draft(SourceKind::Evcc, bad).validated(MeterSourceId::new(), now);
            assert!(matches!(refused, Err(MeteringError::Invalid(_))), "{bad:?}");
        }
        assert!(draft(SourceKind::Simulated, None).validated(MeterSourceId::new(), now).is_ok());
        assert!(draft(SourceKind::Simulated, Some("http://x")).validated(MeterSourceId::new(), now).is_err());
    }
}
