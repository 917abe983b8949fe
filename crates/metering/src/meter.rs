//! Meters: what is measured, how it reads, and the succession of physical
//! meters at one place (a replacement closes one and starts the next).

use chrono::{DateTime, Utc};
use portico_kernel::{MeterId, SiteId};
use rust_decimal::Decimal;

use crate::MeteringError;

/// What a meter measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MeterKind {
    /// Electricity (kWh).
    Electricity,
    /// Water (m³).
    Water,
    /// Heat (kWh, MWh).
    Heat,
    /// Gas (m³, kWh).
    Gas,
    /// Energy charged at an EV charge point (kWh).
    EvCharging,
    /// Calls to an API (a SaaS operator's usage).
    ApiCalls,
    /// Anything else, named by its unit.
    Custom,
}

/// How a meter's values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ReadingMode {
    /// A cumulative register (a counter that only goes up). With `digits`,
    /// it rolls over to 0 after `10^digits - 1`.
    Register {
        /// Digits before the decimal point, if the register rolls over.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        digits: Option<u8>,
    },
    /// Each value is a quantity used in its own interval or event.
    Interval,
}

impl ReadingMode {
    /// The value after which a register rolls over to zero (`10^digits`), if it does.
    #[must_use]
    pub fn rollover_at(self) -> Option<Decimal> {
        match self {
            Self::Register { digits: Some(digits) } if digits > 0 && digits <= 18 => {
                Some(Decimal::from(10_u64.pow(u32::from(digits))))
            }
            _ => None,
        }
    }
}

/// Where a meter is: on a site, or on a free subject key (a customer id of
/// a SaaS operator).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum MeterPlace {
    /// On a site of the tenant.
    Site {
        /// The site.
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
        site_id: SiteId,
    },
    /// On a subject the tenant names.
    Subject {
        /// The subject key.
        subject: String,
    },
}

/// A meter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Meter {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: MeterId,
    /// Where it is.
    pub place: MeterPlace,
    /// What it measures.
    pub kind: MeterKind,
    /// The unit of its values (`kWh`, `m3`).
    pub unit: String,
    /// How its values read.
    pub mode: ReadingMode,
    /// The serial number printed on it.
    pub serial_number: Option<String>,
    /// When it started measuring.
    pub active_from: DateTime<Utc>,
    /// When it stopped (replaced or removed); open while in service.
    pub active_until: Option<DateTime<Utc>>,
    /// Its register's value when it started (registers only), as a decimal string.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "1000.5"))]
    pub start_reading: Option<Decimal>,
    /// The meter it replaced, if any.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub replaces: Option<MeterId>,
}

impl Meter {
    /// Whether the meter measures at `at` (from its start, up to but not
    /// including its end).
    #[must_use]
    pub fn active_at(&self, at: DateTime<Utc>) -> bool {
        at >= self.active_from && self.active_until.is_none_or(|until| at < until)
    }

    /// The replacement of this meter at `at`: this one closed then, and its
    /// successor (`new_id`, `serial_number`) starting then at `start_reading`,
    /// in the same place, measuring the same thing.
    pub fn replace(
        &self,
        new_id: MeterId,
        serial_number: Option<String>,
        at: DateTime<Utc>,
        start_reading: Option<Decimal>,
    ) -> Result<(Self, Self), MeteringError> {
        if self.active_until.is_some() {
            return Err(MeteringError::MeterReplaced);
        }
        if at <= self.active_from {
            return Err(MeteringError::MeterInactive(at));
        }
        if matches!(self.mode, ReadingMode::Register { .. }) && start_reading.is_none() {
            // Without it, no consumption of the new register could ever be computed.
            return Err(MeteringError::Invalid(portico_kernel::ValidationErrors::field(
                "startReading",
                "a replacing register needs its start reading",
            )));
        }
        let closed = Self { active_until: Some(at), ..self.clone() };
        let successor = Self {
            id: new_id,
            serial_number,
            active_from: at,
            active_until: None,
            start_reading,
            replaces: Some(self.id),
            ..self.clone()
        };
        Ok((closed, successor))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0).unwrap()
    }

    fn meter() -> Meter {
        Meter {
            id: MeterId::new(),
            place: MeterPlace::Site { site_id: SiteId::new() },
            kind: MeterKind::Electricity,
            unit: "kWh".into(),
            mode: ReadingMode::Register { digits: Some(6) },
            serial_number: Some("E-1".into()),
            active_from: at(1),
            active_until: None,
            start_reading: Some(Decimal::from(1000)),
            replaces: None,
        }
    }

    #[test]
    fn a_replacement_closes_the_old_meter_and_starts_the_new_one_then() {
        let old = meter();
        let (closed, new) =
            old.replace(MeterId::new(), Some("E-2".into()), at(10), Some(Decimal::ZERO)).unwrap();
        assert_eq!(closed.active_until, Some(at(10)));
        assert!(closed.active_at(at(9)) && !closed.active_at(at(10)));
        assert_eq!(
            (new.active_from, new.replaces, new.start_reading),
            (at(10), Some(old.id), Some(Decimal::ZERO))
        );
        assert!(new.active_at(at(10)) && !new.active_at(at(9)));
        assert_eq!((new.kind, &new.place, new.mode), (old.kind, &old.place, old.mode));
        assert!(matches!(
            closed.replace(MeterId::new(), None, at(11), None),
            Err(MeteringError::MeterReplaced)
        ));
        assert!(matches!(
            old.replace(MeterId::new(), None, at(1), None),
            Err(MeteringError::MeterInactive(_))
        ));
        let no_start = old.replace(MeterId::new(), None, at(10), None);
        assert!(matches!(no_start, Err(MeteringError::Invalid(_))), "{no_start:?}");
    }

    #[test]
    fn a_register_rolls_over_at_ten_to_its_digits() {
        assert_eq!(ReadingMode::Register { digits: Some(5) }.rollover_at(), Some(Decimal::from(100_000)));
        assert_eq!(ReadingMode::Register { digits: None }.rollover_at(), None);
        assert_eq!(ReadingMode::Interval.rollover_at(), None);
    }
}
