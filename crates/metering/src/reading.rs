//! Readings: a meter's values over time, and the checks a new one passes
//! before it is stored (future, service period, register order and
//! rollover, spikes).

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use portico_kernel::{MeterId, ReadingId, ValidationErrors};
use rust_decimal::Decimal;

use crate::{Meter, MeteringError, ReadingMode};

/// Where a reading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReadingSource {
    /// Typed in by a person.
    Manual,
    /// From an imported file.
    Import,
    /// Pulled from an external system (a charge point's controller, a utility's portal).
    Integration,
}

/// Whether a reading counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ReadingStatus {
    /// Read from the meter; counts.
    Valid,
    /// Estimated (no one could read the meter); counts like a valid one.
    Estimated,
    /// Kept for the record only; never counts.
    Rejected {
        /// Why it was rejected.
        reason: String,
    },
}

impl ReadingStatus {
    /// Whether readings of this status take part in consumption.
    pub(crate) fn counts(&self) -> bool {
        matches!(self, Self::Valid | Self::Estimated)
    }
}

/// A meter's value at an instant: the register's value for a register
/// meter, the quantity of the interval ending then for an interval meter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Reading {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: ReadingId,
    /// The meter it was read from.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub meter_id: MeterId,
    /// When it was read (for an interval meter: the end of the interval).
    pub at: DateTime<Utc>,
    /// The value.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "12345.6"))]
    pub value: Decimal,
    /// Where it came from.
    pub source: ReadingSource,
    /// Whether it counts.
    pub status: ReadingStatus,
    /// Why it deserves a second look although it was accepted
    /// (`spike: 12.5x the trailing average`).
    pub flagged: Option<String>,
}

/// The tenant's thresholds for checking readings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadingRules {
    /// How far after now a reading may be dated (clocks of devices drift).
    pub future_skew: TimeDelta,
    /// A consumption more than this many times the trailing average is flagged.
    pub spike_factor: Decimal,
}

impl Default for ReadingRules {
    fn default() -> Self {
        Self { future_skew: TimeDelta::minutes(5), spike_factor: Decimal::TEN }
    }
}

/// What checking an accepted reading found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The status to store it with. A refused reading is an error instead,
    /// which the caller may keep as [`ReadingStatus::Rejected`] with its message.
    pub status: ReadingStatus,
    /// Why it deserves a second look (a spike), if it does.
    pub flagged: Option<String>,
    /// What was used since the previous reading (a register's increase, or
    /// an interval's value); none for a register's first reading without a
    /// start reading.
    pub consumption_since_previous: Option<Decimal>,
    /// Whether the register went past its highest value and started again at zero.
    pub rolled_over: bool,
}

/// Checks a candidate reading `(at, value)` of `meter` before it is stored.
///
/// `previous` is the meter's latest counting reading before the candidate (a
/// rejected one, or another meter's, is ignored); a register without one is
/// compared with its start reading. `next` is its earliest counting reading
/// after the candidate, when one is back-filled: the register must go on from
/// the candidate to it as well. `trailing` holds recent consumptions per
/// interval, for the spike rule.
///
/// A register may be read from its start up to and including its end (the
/// closing reading at a replacement); an interval's value covers the time
/// before `at`, so an interval meter is read after its start up to and
/// including its end.
pub fn check_reading(
    meter: &Meter,
    previous: Option<&Reading>,
    next: Option<&Reading>,
    trailing: &[Decimal],
    candidate: (DateTime<Utc>, Decimal),
    now: DateTime<Utc>,
    rules: &ReadingRules,
) -> Result<Checked, MeteringError> {
    let (at, value) = candidate;
    // A limit past the end of the calendar puts nothing in the future.
    if now.checked_add_signed(rules.future_skew).is_some_and(|limit| at > limit) {
        return Err(MeteringError::ReadingInFuture(at));
    }
    if !in_service(meter, at) {
        return Err(MeteringError::MeterInactive(at));
    }
    if value < Decimal::ZERO {
        return Err(invalid("value", "must not be negative"));
    }
    let (consumption, rolled_over) = match meter.mode {
        ReadingMode::Interval => (Some(value), false),
        ReadingMode::Register { digits } => {
            if let Some(limit) = meter.mode.rollover_at()
                && value >= limit
            {
                let digits = digits.unwrap_or_default();
                return Err(invalid(
                    "value",
                    format!("must be below {limit}: the register has {digits} digits"),
                ));
            }
            let previous = previous.filter(|p| p.meter_id == meter.id && p.status.counts());
            let baseline = match (previous, meter.start_reading) {
                (Some(previous), _) => {
                    if at <= previous.at {
                        return Err(invalid("at", "must be after the previous reading"));
                    }
                    Some(previous.value)
                }
                (None, start) => start,
            };
            if let Some(next) = next.filter(|n| n.meter_id == meter.id && n.status.counts()) {
                if next.at <= at {
                    return Err(invalid("at", "must be before the next reading"));
                }
                register_increment(meter.mode, value, next.value)?;
            }
            match baseline {
                Some(baseline) => {
                    let (used, rolled_over) = register_increment(meter.mode, baseline, value)?;
                    (Some(used), rolled_over)
                }
                None => (None, false),
            }
        }
    };
    let flagged = consumption.and_then(|used| spike(used, trailing, rules.spike_factor));
    Ok(Checked {
        status: ReadingStatus::Valid,
        flagged,
        consumption_since_previous: consumption,
        rolled_over,
    })
}

/// How many of a meter's latest consumptions the spike rule averages.
pub const TRAILING_READINGS: usize = 5;

/// Most readings in one batch.
pub const MAX_BATCH_READINGS: usize = 1_000;

/// A reading as a client sends it (an item of `POST /api/v1/metering/readings`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "meterId": "01937a8e-6a10-7c3e-8f55-0a1b2c3d4e5f", "at": "2026-03-01T08:00:00Z", "value": "4711.25"
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewReading {
    /// The meter read.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub meter_id: MeterId,
    /// When it was read (for an interval meter: the end of the interval).
    pub at: DateTime<Utc>,
    /// The value, as a decimal string.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub value: Decimal,
    /// Whether the value is an estimate (no one could read the meter).
    #[serde(default)]
    pub estimated: bool,
}

/// A batch of readings (the body of `POST /api/v1/metering/readings`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"readings": [
    {"meterId": "01937a8e-6a10-7c3e-8f55-0a1b2c3d4e5f", "at": "2026-03-01T08:00:00Z", "value": "4711.25"},
    {"meterId": "01937a8e-6a10-7c3e-8f55-0a1b2c3d4e5f", "at": "2026-04-01T08:00:00Z", "value": "4890", "estimated": true}
]})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadingBatch {
    /// 1 to 1,000 readings, of any meters, in any order.
    pub readings: Vec<NewReading>,
}

impl ReadingBatch {
    /// The batch's readings, as `source` sent them, each with a fresh id and
    /// its time kept to the microsecond (as the database keeps it).
    pub fn validated(self, source: ReadingSource) -> Result<Vec<Reading>, MeteringError> {
        if self.readings.is_empty() || self.readings.len() > MAX_BATCH_READINGS {
            return Err(invalid("readings", format!("1 to {MAX_BATCH_READINGS} readings in one batch")));
        }
        Ok(self
            .readings
            .into_iter()
            .map(|new| candidate(new.meter_id, new.at, new.value, new.estimated, source))
            .collect())
    }
}

/// A reading to be checked: a fresh id, the time kept to the microsecond.
#[must_use]
pub fn candidate(
    meter_id: MeterId,
    at: DateTime<Utc>,
    value: Decimal,
    estimated: bool,
    source: ReadingSource,
) -> Reading {
    Reading {
        id: ReadingId::new(),
        meter_id,
        at: chrono::SubsecRound::trunc_subsecs(at, 6),
        value,
        source,
        status: if estimated { ReadingStatus::Estimated } else { ReadingStatus::Valid },
        flagged: None,
    }
}

/// What became of a candidate reading.
#[derive(Debug)]
pub enum Verdict {
    /// Taken: stored with `status` and `flagged` as checked.
    Accepted(Checked),
    /// The meter has this very reading already (same instant and value): nothing to store.
    Duplicate,
    /// Refused, and why.
    Refused(MeteringError),
}

/// Checks `candidates` of `meter` against its `known` readings (any order,
/// any status), as [`check_reading`] does one by one in time order: each
/// accepted candidate is known to the next. A candidate at the instant of a
/// known reading (or an earlier candidate) is a [`Verdict::Duplicate`] when
/// the value is the same and refused (`metering.reading_conflict`)
/// otherwise. The verdicts come in the order of `candidates`.
#[must_use]
pub fn check_series(
    meter: &Meter,
    known: &[Reading],
    candidates: &[Reading],
    now: DateTime<Utc>,
    rules: &ReadingRules,
) -> Vec<Verdict> {
    // By instant: finding a candidate's neighbours and inserting it cost a
    // logarithm, so a file of 100,000 readings of one meter checks in n log n.
    let mut series: BTreeMap<DateTime<Utc>, &Reading> = known.iter().map(|r| (r.at, r)).collect();
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by_key(|&i| candidates.get(i).map(|c| c.at));
    let mut verdicts: Vec<Option<Verdict>> = candidates.iter().map(|_| None).collect();
    for index in order {
        let Some(candidate) = candidates.get(index) else { continue };
        let verdict = match series.get(&candidate.at) {
            Some(same) if same.value == candidate.value => Verdict::Duplicate,
            Some(_) => Verdict::Refused(MeteringError::ReadingConflict(candidate.at)),
            None => {
                let mut before =
                    series.range(..candidate.at).rev().map(|(_, r)| *r).filter(|r| r.status.counts());
                let previous = before.next();
                let next = series.range(candidate.at..).map(|(_, r)| *r).find(|r| r.status.counts());
                let trailing = trailing(meter, previous.into_iter().chain(before));
                match check_reading(
                    meter,
                    previous,
                    next,
                    &trailing,
                    (candidate.at, candidate.value),
                    now,
                    rules,
                ) {
                    Ok(mut checked) => {
                        checked.status = candidate.status.clone();
                        series.insert(candidate.at, candidate);
                        Verdict::Accepted(checked)
                    }
                    Err(error) => Verdict::Refused(error),
                }
            }
        };
        if let Some(slot) = verdicts.get_mut(index) {
            *slot = Some(verdict);
        }
    }
    verdicts.into_iter().map(|v| v.unwrap_or(Verdict::Duplicate)).collect()
}

/// The latest [`TRAILING_READINGS`] consumptions before a candidate, oldest
/// first, from the counting readings before it given latest first: a
/// register's increases, an interval meter's values.
fn trailing<'r>(meter: &Meter, latest_first: impl Iterator<Item = &'r Reading>) -> Vec<Decimal> {
    let recent: Vec<&Reading> = latest_first.take(TRAILING_READINGS + 1).collect();
    let mut used: Vec<Decimal> = match meter.mode {
        ReadingMode::Interval => recent.iter().take(TRAILING_READINGS).map(|r| r.value).collect(),
        ReadingMode::Register { .. } => recent
            .windows(2)
            .filter_map(|pair| match pair {
                [later, earlier] => {
                    register_increment(meter.mode, earlier.value, later.value).ok().map(|(used, _)| used)
                }
                _ => None,
            })
            .collect(),
    };
    used.reverse();
    used
}

/// What a register counted from `previous` to `value`, and whether it rolled
/// over on the way: a lower value is a rollover only when the register has
/// digits, both values fit in them, and the use it implies is under half the
/// register's range (a register does not go round unnoticed; a small drop is
/// a misreading, not a year of use).
pub(crate) fn register_increment(
    mode: ReadingMode,
    previous: Decimal,
    value: Decimal,
) -> Result<(Decimal, bool), MeteringError> {
    if value >= previous {
        return value.checked_sub(previous).map(|used| (used, false)).ok_or_else(too_large);
    }
    match mode.rollover_at() {
        // Both below the limit (at most 10^18), so neither sum can overflow.
        Some(limit)
            if value < limit && previous < limit && limit - previous + value < limit / Decimal::TWO =>
        {
            Ok((limit - previous + value, true))
        }
        _ => Err(MeteringError::ReadingBelowPrevious { previous, value }),
    }
}

/// The error for values too large for a `Decimal` to add up (near 7.9e28):
/// not a meter's reading, so the request's values are at fault.
pub(crate) fn too_large() -> MeteringError {
    invalid("value", "is too large to compute with")
}

/// Whether `meter` can be read at `at` (see [`check_reading`]).
fn in_service(meter: &Meter, at: DateTime<Utc>) -> bool {
    let after_start = match meter.mode {
        ReadingMode::Register { .. } => at >= meter.active_from,
        ReadingMode::Interval => at > meter.active_from,
    };
    after_start && meter.active_until.is_none_or(|until| at <= until)
}

/// The flag for `used` when it exceeds `factor` times the average of
/// `trailing`; no flag without a positive average to compare with.
fn spike(used: Decimal, trailing: &[Decimal], factor: Decimal) -> Option<String> {
    if trailing.is_empty() {
        return None;
    }
    let count = Decimal::from(trailing.len());
    // Summing first keeps the average exact where it can be; only values
    // beyond Decimal's range are divided first (each share is at most the
    // largest value, so that sum cannot overflow).
    let sum = trailing.iter().try_fold(Decimal::ZERO, |sum, v| sum.checked_add(*v));
    let average = match sum {
        Some(sum) => sum / count,
        None => trailing.iter().fold(Decimal::ZERO, |sum, v| sum + *v / count),
    };
    if average <= Decimal::ZERO {
        return None;
    }
    // A threshold beyond Decimal's range is one no consumption exceeds.
    let threshold = factor.checked_mul(average)?;
    if used <= threshold {
        return None;
    }
    Some(match used.checked_div(average) {
        Some(ratio) => format!("spike: {}x the trailing average", ratio.round_dp(1).normalize()),
        None => format!("spike: over {factor}x the trailing average"),
    })
}

fn invalid(field: &str, message: impl Into<String>) -> MeteringError {
    MeteringError::Invalid(ValidationErrors::field(field, message))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use portico_kernel::SiteId;

    use super::*;
    use crate::{MeterKind, MeterPlace};

    fn day(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0).unwrap()
    }

    fn dec(value: i64) -> Decimal {
        Decimal::from(value)
    }

    fn register(digits: Option<u8>) -> Meter {
        Meter {
            id: MeterId::new(),
            place: MeterPlace::Site { site_id: SiteId::new() },
            kind: MeterKind::Water,
            unit: "m3".into(),
            mode: ReadingMode::Register { digits },
            serial_number: None,
            active_from: day(1),
            active_until: None,
            start_reading: None,
            replaces: None,
        }
    }

    fn interval() -> Meter {
        Meter { mode: ReadingMode::Interval, ..register(None) }
    }

    fn reading(meter: &Meter, at: DateTime<Utc>, value: i64) -> Reading {
        Reading {
            id: ReadingId::new(),
            meter_id: meter.id,
            at,
            value: dec(value),
            source: ReadingSource::Manual,
            status: ReadingStatus::Valid,
            flagged: None,
        }
    }

    /// Checks `value` read on day 10 after `previous` read on day 9, now being day 20.
    fn check(
        meter: &Meter,
        previous: Option<i64>,
        trailing: &[Decimal],
        value: i64,
    ) -> Result<Checked, MeteringError> {
        let previous = previous.map(|v| reading(meter, day(9), v));
        check_reading(
            meter,
            previous.as_ref(),
            None,
            trailing,
            (day(10), dec(value)),
            day(20),
            &ReadingRules::default(),
        )
    }

    fn field_of(result: Result<Checked, MeteringError>) -> Vec<String> {
        match result {
            Err(MeteringError::Invalid(errors)) => errors.fields().into_iter().map(String::from).collect(),
            other => vec![format!("not a field error: {other:?}")],
        }
    }

    #[test]
    fn a_register_rolls_over_when_its_digits_allow() {
        // 5 digits roll over at 100_000: 100_000 - 99_990 + 15 = 25.
        let checked = check(&register(Some(5)), Some(99_990), &[], 15).unwrap();
        assert_eq!(checked.consumption_since_previous, Some(dec(25)));
        assert!(checked.rolled_over);
        assert_eq!((checked.status, checked.flagged), (ReadingStatus::Valid, None));
    }

    #[test]
    fn a_lower_register_value_without_digits_is_refused() {
        assert!(matches!(
            check(&register(None), Some(99_990), &[], 15),
            Err(MeteringError::ReadingBelowPrevious { previous, value }) if previous == dec(99_990) && value == dec(15)
        ));
    }

    #[test]
    fn a_lower_register_value_is_refused_even_with_digits_when_the_previous_does_not_fit_them() {
        // 4 digits: 12_000 cannot have been shown, so going to 15 is no rollover.
        assert!(matches!(
            check(&register(Some(4)), Some(12_000), &[], 15),
            Err(MeteringError::ReadingBelowPrevious { .. })
        ));
    }

    #[test]
    fn a_value_beyond_the_registers_digits_is_refused() {
        assert_eq!(field_of(check(&register(Some(5)), Some(99_990), &[], 100_000)), ["value"]);
        // The highest value the register shows is fine: 99_999 - 99_990 = 9.
        let checked = check(&register(Some(5)), Some(99_990), &[], 99_999).unwrap();
        assert_eq!(checked.consumption_since_previous, Some(dec(9)));
        assert!(!checked.rolled_over);
    }

    #[test]
    fn a_register_counts_from_the_previous_reading_or_else_its_start_reading() {
        // 1_250 - 1_200 = 50 from the previous reading.
        let checked = check(&register(None), Some(1_200), &[], 1_250).unwrap();
        assert_eq!(checked.consumption_since_previous, Some(dec(50)));
        // 1_250 - 1_000 = 250 from the start reading.
        let started = Meter { start_reading: Some(dec(1_000)), ..register(None) };
        assert_eq!(check(&started, None, &[], 1_250).unwrap().consumption_since_previous, Some(dec(250)));
        // Nothing to count from.
        assert_eq!(check(&register(None), None, &[], 1_250).unwrap().consumption_since_previous, None);
    }

    #[test]
    fn a_rejected_previous_reading_is_not_counted_from() {
        let meter = Meter { start_reading: Some(dec(1_000)), ..register(None) };
        let rejected = Reading {
            status: ReadingStatus::Rejected { reason: "typo".into() },
            ..reading(&meter, day(9), 5_000)
        };
        let checked = check_reading(
            &meter,
            Some(&rejected),
            None,
            &[],
            (day(10), dec(1_250)),
            day(20),
            &ReadingRules::default(),
        )
        .unwrap();
        // Counted from the start reading: 1_250 - 1_000 = 250, not refused as below 5_000.
        assert_eq!(checked.consumption_since_previous, Some(dec(250)));
    }

    #[test]
    fn a_small_drop_is_no_rollover_even_with_digits() {
        // 6 digits: 1_000 -> 999 would mean 999_999 used, more than half the register's range.
        let meter = register(Some(6));
        let result = check(&meter, Some(1_000), &[], 999);
        assert!(matches!(result, Err(MeteringError::ReadingBelowPrevious { .. })), "{result:?}");
        // 999_990 -> 15 is 25 used: a rollover.
        let rolled = check(&meter, Some(999_990), &[], 15).unwrap();
        assert_eq!((rolled.consumption_since_previous, rolled.rolled_over), (Some(dec(25)), true));
    }

    #[test]
    fn a_back_filled_reading_must_fit_before_the_next() {
        let meter = register(None);
        let (previous, next) = (reading(&meter, day(5), 1_000), reading(&meter, day(12), 1_100));
        let rules = ReadingRules::default();
        let fits =
            check_reading(&meter, Some(&previous), Some(&next), &[], (day(10), dec(1_050)), day(20), &rules);
        assert_eq!(fits.unwrap().consumption_since_previous, Some(dec(50)));
        // 1_200 on day 10 would make the register fall to 1_100 on day 12.
        let over =
            check_reading(&meter, Some(&previous), Some(&next), &[], (day(10), dec(1_200)), day(20), &rules);
        assert!(matches!(over, Err(MeteringError::ReadingBelowPrevious { .. })), "{over:?}");
        let same_instant =
            check_reading(&meter, Some(&previous), Some(&next), &[], (day(12), dec(1_050)), day(20), &rules);
        assert_eq!(field_of(same_instant), ["at"]);
    }

    #[test]
    fn a_register_reading_not_after_the_previous_is_refused() {
        let meter = register(None);
        let previous = reading(&meter, day(10), 1_200);
        let result = check_reading(
            &meter,
            Some(&previous),
            None,
            &[],
            (day(10), dec(1_250)),
            day(20),
            &ReadingRules::default(),
        );
        assert_eq!(field_of(result), ["at"]);
    }

    #[test]
    fn a_reading_in_the_future_beyond_the_skew_is_refused() {
        let meter = register(None);
        let now = day(10);
        let rules = ReadingRules::default();
        let late = now + TimeDelta::minutes(6);
        assert!(matches!(
            check_reading(&meter, None, None, &[], (late, dec(1)), now, &rules),
            Err(MeteringError::ReadingInFuture(at)) if at == late
        ));
        // Within the 5 minutes of skew a device's clock may be ahead.
        assert!(
            check_reading(&meter, None, None, &[], (now + TimeDelta::minutes(4), dec(1)), now, &rules)
                .is_ok()
        );
    }

    #[test]
    fn a_reading_outside_the_meters_service_is_refused() {
        let meter = Meter { active_from: day(5), active_until: Some(day(15)), ..register(None) };
        let rules = ReadingRules::default();
        let at = |at| check_reading(&meter, None, None, &[], (at, dec(1)), day(20), &rules);
        assert!(matches!(at(day(4)), Err(MeteringError::MeterInactive(t)) if t == day(4)));
        assert!(matches!(at(day(16)), Err(MeteringError::MeterInactive(_))));
        // The closing reading at the end belongs to the meter, as does one at its start.
        assert!(at(day(15)).is_ok() && at(day(5)).is_ok());
    }

    #[test]
    fn an_interval_is_read_after_its_meters_start_up_to_its_end() {
        let meter = Meter { active_from: day(5), active_until: Some(day(15)), ..interval() };
        let rules = ReadingRules::default();
        let at = |at| check_reading(&meter, None, None, &[], (at, dec(1)), day(20), &rules);
        // An interval ending at the start lies before the meter.
        assert!(matches!(at(day(5)), Err(MeteringError::MeterInactive(_))));
        assert!(at(day(15)).is_ok());
    }

    #[test]
    fn a_negative_value_is_refused() {
        assert_eq!(field_of(check(&register(None), Some(10), &[], -1)), ["value"]);
        assert_eq!(field_of(check(&interval(), None, &[], -1)), ["value"]);
    }

    #[test]
    fn a_spike_is_flagged_not_refused() {
        let trailing = [dec(10), dec(12), dec(8)];
        // Average (10 + 12 + 8) / 3 = 10, times 10 = 100: 1_150 - 1_000 = 150 is 15x.
        let checked = check(&register(None), Some(1_000), &trailing, 1_150).unwrap();
        assert_eq!(checked.flagged.as_deref(), Some("spike: 15x the trailing average"));
        assert_eq!(checked.consumption_since_previous, Some(dec(150)));
        // 1_090 - 1_000 = 90 is under 100.
        assert_eq!(check(&register(None), Some(1_000), &trailing, 1_090).unwrap().flagged, None);
        // 100 is exactly 10x: not more than the factor.
        assert_eq!(check(&register(None), Some(1_000), &trailing, 1_100).unwrap().flagged, None);
    }

    #[test]
    fn a_spike_needs_a_positive_trailing_average() {
        assert_eq!(check(&register(None), Some(1_000), &[], 1_150).unwrap().flagged, None);
        assert_eq!(check(&register(None), Some(1_000), &[Decimal::ZERO; 3], 1_150).unwrap().flagged, None);
    }

    #[test]
    fn an_interval_value_is_its_own_consumption() {
        // The previous reading plays no part: 7 is the interval's quantity.
        let checked = check(&interval(), Some(1_000), &[], 7).unwrap();
        assert_eq!(checked.consumption_since_previous, Some(dec(7)));
        assert!(!checked.rolled_over);
        // Average (2 + 3) / 2 = 2.5, times 10 = 25: 30 is 12x.
        let flagged = check(&interval(), None, &[dec(2), dec(3)], 30).unwrap().flagged;
        assert_eq!(flagged.as_deref(), Some("spike: 12x the trailing average"));
    }

    fn verdicts(meter: &Meter, known: &[Reading], candidates: &[Reading]) -> Vec<String> {
        check_series(meter, known, candidates, day(28), &ReadingRules::default())
            .into_iter()
            .map(|verdict| match verdict {
                Verdict::Accepted(checked) => format!(
                    "ok {} {:?}{}",
                    checked.consumption_since_previous.map(|c| c.to_string()).unwrap_or_default(),
                    checked.status,
                    checked.flagged.map(|f| format!(" {f}")).unwrap_or_default()
                ),
                Verdict::Duplicate => "duplicate".into(),
                Verdict::Refused(error) => portico_kernel::DomainError::code(&error).to_owned(),
            })
            .collect()
    }

    #[test]
    fn a_series_is_checked_in_time_order_whatever_order_it_came_in() {
        let meter = Meter { start_reading: Some(dec(100)), ..register(Some(4)) };
        let known = [reading(&meter, day(2), 110)];
        // Sent newest first: day 4 is checked after day 3, which it follows.
        let candidates = [reading(&meter, day(4), 130), reading(&meter, day(3), 120)];
        assert_eq!(verdicts(&meter, &known, &candidates), ["ok 10 Valid", "ok 10 Valid"]);
        // Day 3 below day 2's value: refused, and day 4 then counts from day 2.
        let candidates = [reading(&meter, day(4), 130), reading(&meter, day(3), 105)];
        assert_eq!(verdicts(&meter, &known, &candidates), ["ok 20 Valid", "metering.reading_below_previous"]);
    }

    #[test]
    fn the_same_reading_again_is_a_duplicate_and_another_value_then_a_conflict() {
        let meter = register(None);
        let known = [reading(&meter, day(2), 110)];
        let candidates = [
            reading(&meter, day(2), 110),
            reading(&meter, day(2), 111),
            reading(&meter, day(3), 115),
            reading(&meter, day(3), 115),
            reading(&meter, day(3), 116),
        ];
        assert_eq!(
            verdicts(&meter, &known, &candidates),
            [
                "duplicate",
                "metering.reading_conflict",
                "ok 5 Valid",
                "duplicate",
                "metering.reading_conflict"
            ]
        );
    }

    #[test]
    fn a_series_flags_a_spike_against_the_trailing_consumptions_and_keeps_estimates() {
        let meter = interval();
        let known: Vec<Reading> = (2..=6).map(|d| reading(&meter, day(d), 10)).collect();
        let mut estimate = reading(&meter, day(7), 12);
        estimate.status = ReadingStatus::Estimated;
        let candidates = [estimate, reading(&meter, day(8), 500)];
        assert_eq!(
            verdicts(&meter, &known, &candidates),
            ["ok 12 Estimated", "ok 500 Valid spike: 48.1x the trailing average"]
        );
        // Only the latest five consumptions count: 10, 10, 10, 12 and 10 average 10.4.
        assert_eq!(trailing(&meter, known.iter().rev()).len(), TRAILING_READINGS);
    }

    #[test]
    fn a_register_series_averages_its_increases() {
        let meter = Meter { start_reading: Some(dec(0)), ..register(Some(3)) };
        let known: Vec<Reading> = [(2, 900), (3, 950), (4, 990), (5, 30)]
            .iter()
            .map(|&(d, v)| reading(&meter, day(d), v))
            .collect();
        // 50, 40, and 40 across the rollover: a trailing average of 43.3.
        assert_eq!(trailing(&meter, known.iter().rev()), [dec(50), dec(40), dec(40)]);
        let candidates = [reading(&meter, day(6), 480)];
        assert_eq!(verdicts(&meter, &known, &candidates), ["ok 450 Valid spike: 10.4x the trailing average"]);
    }

    #[test]
    fn a_batch_holds_one_to_a_thousand_readings_kept_to_the_microsecond() {
        let new = |at: &str| NewReading {
            meter_id: MeterId::new(),
            at: at.parse().unwrap(),
            value: dec(1),
            estimated: false,
        };
        let batch = ReadingBatch { readings: vec![new("2026-01-02T03:04:05.1234567Z")] };
        let readings = batch.validated(ReadingSource::Import).unwrap();
        assert_eq!(readings[0].at.to_rfc3339(), "2026-01-02T03:04:05.123456+00:00");
        assert_eq!((readings[0].source, &readings[0].status), (ReadingSource::Import, &ReadingStatus::Valid));
        for size in [0, MAX_BATCH_READINGS + 1] {
            let batch = ReadingBatch { readings: vec![new("2026-01-02T00:00:00Z"); size] };
            assert!(
                matches!(batch.validated(ReadingSource::Manual), Err(MeteringError::Invalid(_))),
                "{size}"
            );
        }
    }
}
