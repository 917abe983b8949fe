//! Meters: what is measured, how it reads, and the succession of physical
//! meters at one place (a replacement closes one and starts the next).

use chrono::{DateTime, Utc};
use portico_kernel::{MeterId, SiteId, ValidationErrors};
use rust_decimal::Decimal;

use crate::MeteringError;
use portico_kernel::text::{plain_text, plain_text_opt};

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
    #[serde(rename_all = "camelCase")]
    Site {
        /// The site.
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
        site_id: SiteId,
    },
    /// On a subject the tenant names.
    #[serde(rename_all = "camelCase")]
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
            return Err(MeteringError::Invalid(ValidationErrors::field(
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

/// Which meter of several was in service at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InService<'m> {
    /// One meter.
    One(&'m Meter),
    /// None of them.
    None,
    /// Several at once (the same serial number at different places).
    Several,
}

/// The one of `meters` in service at `at` (from its start up to and
/// including its end). At a replacement's instant, where one closes and its
/// successor starts, the closing one: a reading then is its closing reading.
#[must_use]
pub fn in_service_at<'m>(meters: impl IntoIterator<Item = &'m Meter>, at: DateTime<Utc>) -> InService<'m> {
    let serving: Vec<&Meter> = meters
        .into_iter()
        .filter(|m| m.active_from <= at && m.active_until.is_none_or(|until| at <= until))
        .collect();
    match serving.as_slice() {
        [] => InService::None,
        [one] => InService::One(one),
        several => {
            let closing: Vec<&&Meter> = several.iter().filter(|m| m.active_until == Some(at)).collect();
            let successors = several.iter().filter(|m| m.active_from == at).count();
            match closing.as_slice() {
                [old] if successors + 1 == several.len() => InService::One(old),
                _ => InService::Several,
            }
        }
    }
}

/// Installs a meter (`POST /api/v1/metering/meters`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "place": {"type": "site", "siteId": "01937a8e-5f2c-7d40-9a1e-3b5c7d9e1f20"},
    "kind": "electricity", "unit": "kWh", "mode": {"mode": "register", "digits": 6},
    "serialNumber": "1ESY1160512345", "activeFrom": "2026-01-01T00:00:00Z", "startReading": "1000.5"
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeterDraft {
    /// Where it is.
    #[garde(custom(place_rules))]
    pub place: MeterPlace,
    /// What it measures.
    #[garde(skip)]
    pub kind: MeterKind,
    /// The unit of its values, 1 to 32 characters (`kWh`, `m3`).
    #[garde(length(chars, min = 1, max = 32), custom(plain_text))]
    pub unit: String,
    /// How its values read; a register's `digits` are 1 to 18.
    #[garde(custom(mode_rules))]
    pub mode: ReadingMode,
    /// The serial number printed on it, 1 to 64 characters.
    #[serde(default)]
    #[garde(length(chars, min = 1, max = 64), custom(plain_text_opt))]
    pub serial_number: Option<String>,
    /// When it started measuring; now when absent.
    #[serde(default)]
    #[garde(skip)]
    pub active_from: Option<DateTime<Utc>>,
    /// A register's value when it started, as a decimal string (default 0);
    /// an interval meter has none.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default)]
    #[garde(skip)]
    pub start_reading: Option<Decimal>,
}

fn place_rules(place: &MeterPlace, _: &()) -> garde::Result {
    match place {
        MeterPlace::Site { .. } => Ok(()),
        MeterPlace::Subject { subject } if subject.is_empty() || subject.chars().count() > 256 => {
            Err(garde::Error::new("the subject must have 1 to 256 characters"))
        }
        MeterPlace::Subject { subject } => plain_text(subject, &()),
    }
}

fn mode_rules(mode: &ReadingMode, _: &()) -> garde::Result {
    match mode {
        ReadingMode::Register { digits: Some(digits) } if !(1..=18).contains(digits) => {
            Err(garde::Error::new("a register has 1 to 18 digits"))
        }
        _ => Ok(()),
    }
}

/// The ways a start reading can be wrong for `mode`.
fn check_start(mode: ReadingMode, start_reading: Option<Decimal>) -> Result<(), MeteringError> {
    let Some(start) = start_reading else { return Ok(()) };
    let field = "startReading";
    match mode {
        ReadingMode::Interval => Err(MeteringError::Invalid(ValidationErrors::field(
            field,
            "an interval meter has no start reading",
        ))),
        _ if start < Decimal::ZERO => {
            Err(MeteringError::Invalid(ValidationErrors::field(field, "must not be negative")))
        }
        _ if mode.rollover_at().is_some_and(|limit| start >= limit) => {
            Err(MeteringError::Invalid(ValidationErrors::field(field, "must fit in the register's digits")))
        }
        _ => Ok(()),
    }
}

impl MeterDraft {
    /// The meter `id` as the draft describes it, checked; `now` stands in
    /// for a missing start, which may not lie in the future.
    pub fn validated(self, id: MeterId, now: DateTime<Utc>) -> Result<Meter, MeteringError> {
        garde::Validate::validate(&self).map_err(|report| MeteringError::Invalid(report.into()))?;
        let active_from = chrono::SubsecRound::trunc_subsecs(self.active_from.unwrap_or(now), 6);
        if active_from > now {
            return Err(MeteringError::Invalid(ValidationErrors::field(
                "activeFrom",
                "must not be in the future",
            )));
        }
        // A register without a stated start starts at zero, so its first reading counts.
        let start_reading = match self.mode {
            ReadingMode::Register { .. } => Some(self.start_reading.unwrap_or(Decimal::ZERO)),
            ReadingMode::Interval => self.start_reading,
        };
        check_start(self.mode, start_reading)?;
        Ok(Meter {
            id,
            place: self.place,
            kind: self.kind,
            unit: self.unit,
            mode: self.mode,
            serial_number: self.serial_number,
            active_from,
            active_until: None,
            start_reading,
            replaces: None,
        })
    }
}

/// Changes what may change of a meter without touching its readings
/// (`PUT /api/v1/metering/meters/{id}`): where it is and its serial number.
/// What it measures, its unit and its mode stay; a different meter is a
/// replacement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "place": {"type": "subject", "subject": "customer-42"}, "serialNumber": "1ESY1160512345"
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeterChanges {
    /// Where it is.
    #[garde(custom(place_rules))]
    pub place: MeterPlace,
    /// The serial number printed on it, 1 to 64 characters; none removes it.
    #[serde(default)]
    #[garde(length(chars, min = 1, max = 64), custom(plain_text_opt))]
    pub serial_number: Option<String>,
}

impl MeterChanges {
    /// `meter` with the changes, checked.
    pub fn apply(self, meter: &Meter) -> Result<Meter, MeteringError> {
        garde::Validate::validate(&self).map_err(|report| MeteringError::Invalid(report.into()))?;
        Ok(Meter { place: self.place, serial_number: self.serial_number, ..meter.clone() })
    }
}

/// Replaces a meter by a new one at an instant
/// (`POST /api/v1/metering/meters/{id}/replace`): the old meter's closing
/// reading, if given, is stored with the replacement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "at": "2026-06-30T09:15:00Z", "closingReading": "4711.2", "serialNumber": "1ESY1160599999",
    "startReading": "0"
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Replacement {
    /// When the new meter took over.
    #[garde(skip)]
    pub at: DateTime<Utc>,
    /// The old register's value at `at`, as a decimal string.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default)]
    #[garde(skip)]
    pub closing_reading: Option<Decimal>,
    /// The new meter's serial number, 1 to 64 characters.
    #[serde(default)]
    #[garde(length(chars, min = 1, max = 64), custom(plain_text_opt))]
    pub serial_number: Option<String>,
    /// The new register's value at `at`, as a decimal string (registers need it).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default)]
    #[garde(skip)]
    pub start_reading: Option<Decimal>,
}

impl Replacement {
    /// The old meter closed and its successor `new_id`, checked; the
    /// instant may not lie in the future.
    pub fn apply(
        &self,
        meter: &Meter,
        new_id: MeterId,
        now: DateTime<Utc>,
    ) -> Result<(Meter, Meter), MeteringError> {
        garde::Validate::validate(self).map_err(|report| MeteringError::Invalid(report.into()))?;
        let at = chrono::SubsecRound::trunc_subsecs(self.at, 6);
        if at > now {
            return Err(MeteringError::Invalid(ValidationErrors::field("at", "must not be in the future")));
        }
        check_start(meter.mode, self.start_reading)?;
        if self.closing_reading.is_some() && meter.mode == ReadingMode::Interval {
            return Err(MeteringError::Invalid(ValidationErrors::field(
                "closingReading",
                "an interval meter has no closing reading",
            )));
        }
        meter.replace(new_id, self.serial_number.clone(), at, self.start_reading)
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

    fn draft(mode: serde_json::Value, start: Option<&str>) -> MeterDraft {
        serde_json::from_value(serde_json::json!({
            "place": {"type": "subject", "subject": "customer-42"},
            "kind": "electricity", "unit": "kWh", "mode": mode, "startReading": start
        }))
        .unwrap()
    }

    fn field_of(result: Result<impl std::fmt::Debug, MeteringError>) -> Vec<String> {
        match result {
            Err(MeteringError::Invalid(errors)) => errors.fields().into_iter().map(str::to_owned).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_new_register_starts_at_zero_unless_told_and_within_its_digits() {
        let register = serde_json::json!({"mode": "register", "digits": 5});
        let meter = draft(register.clone(), None).validated(MeterId::new(), at(2)).unwrap();
        assert_eq!((meter.start_reading, meter.active_from), (Some(Decimal::ZERO), at(2)));
        let meter = draft(register.clone(), Some("99999.9")).validated(MeterId::new(), at(2)).unwrap();
        assert_eq!(meter.start_reading, Some("99999.9".parse().unwrap()));
        assert_eq!(
            field_of(draft(register.clone(), Some("100000")).validated(MeterId::new(), at(2))),
            ["startReading"]
        );
        assert_eq!(field_of(draft(register, Some("-1")).validated(MeterId::new(), at(2))), ["startReading"]);
        let interval = serde_json::json!({"mode": "interval"});
        assert_eq!(
            draft(interval.clone(), None).validated(MeterId::new(), at(2)).unwrap().start_reading,
            None
        );
        assert_eq!(field_of(draft(interval, Some("1")).validated(MeterId::new(), at(2))), ["startReading"]);
        let too_many = serde_json::json!({"mode": "register", "digits": 19});
        assert_eq!(field_of(draft(too_many, None).validated(MeterId::new(), at(2))), ["mode"]);
    }

    #[test]
    fn a_meter_cannot_start_in_the_future_or_on_a_blank_subject() {
        let mut future = draft(serde_json::json!({"mode": "interval"}), None);
        future.active_from = Some(at(3));
        assert_eq!(field_of(future.validated(MeterId::new(), at(2))), ["activeFrom"]);
        let mut blank = draft(serde_json::json!({"mode": "interval"}), None);
        blank.place = MeterPlace::Subject { subject: "  ".into() };
        assert_eq!(field_of(blank.validated(MeterId::new(), at(2))), ["place"]);
    }

    #[test]
    fn a_replacement_is_checked_before_the_meter_is_replaced() {
        let old = meter();
        let replacement = |at_day: u32, closing: Option<i64>, start: Option<i64>| Replacement {
            at: at(at_day),
            closing_reading: closing.map(Decimal::from),
            serial_number: Some("E-2".into()),
            start_reading: start.map(Decimal::from),
        };
        let (closed, new) = replacement(10, Some(1500), Some(0)).apply(&old, MeterId::new(), at(20)).unwrap();
        assert_eq!((closed.active_until, new.serial_number.as_deref()), (Some(at(10)), Some("E-2")));
        assert_eq!(field_of(replacement(21, None, Some(0)).apply(&old, MeterId::new(), at(20))), ["at"]);
        assert_eq!(
            field_of(replacement(10, None, Some(-5)).apply(&old, MeterId::new(), at(20))),
            ["startReading"]
        );
        let interval = Meter { mode: ReadingMode::Interval, start_reading: None, ..meter() };
        assert_eq!(
            field_of(replacement(10, Some(1), None).apply(&interval, MeterId::new(), at(20))),
            ["closingReading"]
        );
    }

    #[test]
    fn a_place_reads_and_writes_as_the_api_documents_it() {
        let site = SiteId::new();
        let place: MeterPlace =
            serde_json::from_value(serde_json::json!({"type": "site", "siteId": site})).unwrap();
        assert_eq!(place, MeterPlace::Site { site_id: site });
        assert_eq!(
            serde_json::to_value(&place).unwrap(),
            serde_json::json!({"type": "site", "siteId": site})
        );
        let subject = serde_json::json!({"type": "subject", "subject": "customer-42"});
        assert_eq!(
            serde_json::from_value::<MeterPlace>(subject).unwrap(),
            MeterPlace::Subject { subject: "customer-42".into() }
        );
    }
}
