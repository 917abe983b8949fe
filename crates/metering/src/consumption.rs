//! Consumption between two instants at one place, from the readings of its
//! succession of meters, in total or in calendar buckets of the tenant's
//! time zone.
//!
//! A register's value between two readings is linearly interpolated, so a
//! period may start and end anywhere. Interpolation divides, so every
//! quantity is rounded to [`CONSUMPTION_DECIMALS`] places at the end (half
//! to even, `Decimal::round_dp`); each bucket is rounded on its own.

use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use crate::reading::{register_increment, too_large};
use crate::{Meter, MeteringError, Reading, ReadingMode};

/// Decimal places of a computed consumption.
pub const CONSUMPTION_DECIMALS: u32 = 6;

/// The most buckets one call computes (a little over ten years of days).
const MAX_BUCKETS: usize = 4_000;

/// One meter of a place with its readings (in any order; rejected ones are
/// skipped).
#[derive(Debug, Clone, Copy)]
pub struct MeterReadings<'a> {
    /// The meter.
    pub meter: &'a Meter,
    /// Its readings.
    pub readings: &'a [Reading],
}

/// The calendar unit of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// A local calendar day (23 or 25 hours on a daylight-saving change).
    Day,
    /// A local calendar month.
    Month,
}

/// The consumption of one local day or month, clipped to the period asked for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    /// Where it starts: the local midnight, or the period's start.
    pub start: DateTime<Utc>,
    /// Where it ends: the next local midnight, or the period's end.
    pub end: DateTime<Utc>,
    /// The local day (for a month: its first day).
    pub local_date: NaiveDate,
    /// What was used from `start` to `end`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "24.5"))]
    pub quantity: Decimal,
}

/// What the place used from `from` to `to`, over `meters`: the succession of
/// meters at one place (each replacing the one before).
///
/// Each meter counts only within its active period; time outside every
/// meter's period counts as nothing used.
///
/// - A register counts the increase of its interpolated value from
///   `max(from, active_from)` to `min(to, active_until)`, reading to reading,
///   so a rollover between two readings counts. Its start reading is a
///   reading at `active_from` (a reading at that instant wins over it). Both
///   instants need a reading at or before and one at or after, or the result
///   is [`MeteringError::NotCovered`]; only a replaced meter's register stays
///   at its last reading up to its end (what was used after that reading is
///   not known, so it is not counted).
/// - An interval meter counts the values whose interval ends in `(from, to]`:
///   a reading exactly at `from` ends an interval before the period. It has
///   no coverage to check (an event meter reads nothing when nothing happens).
pub fn consumption(
    meters: &[MeterReadings<'_>],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Decimal, MeteringError> {
    check_period(from, to)?;
    total(&prepare(meters), from, to)
}

/// What the place used in each local day or month of `tz` that overlaps
/// `from` to `to`, in time order, each computed as [`consumption`] over its
/// part of the period.
pub fn consumption_by(
    granularity: Granularity,
    tz: Tz,
    meters: &[MeterReadings<'_>],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Bucket>, MeteringError> {
    check_period(from, to)?;
    let local = from.with_timezone(&tz).date_naive();
    let mut date = match granularity {
        Granularity::Day => local,
        Granularity::Month => local.with_day(1).ok_or_else(beyond_calendar)?,
    };
    // The boundaries first: a period too long fails before any work.
    let mut bounds = Vec::new();
    loop {
        let next = match granularity {
            Granularity::Day => date.succ_opt(),
            Granularity::Month => date.checked_add_months(Months::new(1)),
        }
        .ok_or_else(beyond_calendar)?;
        let (start, end) = (local_start(tz, date)?, local_start(tz, next)?);
        bounds.push((date, start.max(from), end.min(to)));
        if end >= to {
            break;
        }
        if bounds.len() >= MAX_BUCKETS {
            return Err(MeteringError::InvalidPeriod("too many buckets for one request"));
        }
        date = next;
    }
    let series = prepare(meters);
    bounds
        .into_iter()
        .map(|(local_date, start, end)| {
            Ok(Bucket { start, end, local_date, quantity: total(&series, start, end)? })
        })
        .collect()
}

/// A meter's counting readings, sorted.
struct Series<'a> {
    meter: &'a Meter,
    points: Vec<(DateTime<Utc>, Decimal)>,
}

fn prepare<'a>(meters: &[MeterReadings<'a>]) -> Vec<Series<'a>> {
    meters
        .iter()
        .map(|&MeterReadings { meter, readings }| {
            let counted = readings.iter().filter(|r| r.status.counts()).map(|r| (r.at, r.value));
            let points = match meter.mode {
                // Intervals may share an instant (events): all of them count.
                ReadingMode::Interval => {
                    let mut points: Vec<_> = counted.collect();
                    points.sort_by_key(|&(at, _)| at);
                    points
                }
                ReadingMode::Register { .. } => {
                    let in_service = |at: DateTime<Utc>| {
                        at >= meter.active_from && meter.active_until.is_none_or(|until| at <= until)
                    };
                    let mut all: Vec<_> = meter
                        .start_reading
                        .map(|value| (meter.active_from, value))
                        .into_iter()
                        .chain(counted.filter(|&(at, _)| in_service(at)))
                        .collect();
                    // Stable: of readings at one instant the later in the
                    // list wins, and any reading wins over the start reading.
                    all.sort_by_key(|&(at, _)| at);
                    let mut points: Vec<(DateTime<Utc>, Decimal)> = Vec::with_capacity(all.len());
                    for point in all {
                        match points.last_mut() {
                            Some(last) if last.0 == point.0 => *last = point,
                            _ => points.push(point),
                        }
                    }
                    points
                }
            };
            Series { meter, points }
        })
        .collect()
}

/// The sum over the meters, rounded; `from < to`.
fn total(series: &[Series<'_>], from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Decimal, MeteringError> {
    let mut sum = Decimal::ZERO;
    for Series { meter, points } in series {
        let start = from.max(meter.active_from);
        let end = meter.active_until.map_or(to, |until| to.min(until));
        if start >= end {
            continue;
        }
        let used = match meter.mode {
            ReadingMode::Register { .. } => {
                let closed = meter.active_until.is_some();
                register_used(meter.mode, points, closed, start, end)
                    .ok_or(MeteringError::NotCovered { from, to })??
            }
            ReadingMode::Interval => interval_used(points, start, end)?,
        };
        sum = sum.checked_add(used).ok_or_else(too_large)?;
    }
    Ok(sum.round_dp(CONSUMPTION_DECIMALS).normalize())
}

/// What a register counted from `start` to `end` (`start < end`), or none
/// when its readings do not reach over both.
fn register_used(
    mode: ReadingMode,
    points: &[(DateTime<Utc>, Decimal)],
    closed: bool,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Option<Result<Decimal, MeteringError>> {
    let first = points.partition_point(|&(at, _)| at <= start).checked_sub(1)?;
    let mut end = end;
    let mut last = points.partition_point(|&(at, _)| at < end);
    if last == points.len() {
        // A replaced meter's last reading closes it.
        let &(final_at, _) = points.last()?;
        if !closed {
            return None;
        }
        if final_at <= start {
            return Some(Ok(Decimal::ZERO));
        }
        end = final_at;
        last = points.len() - 1;
    }
    // Now points[first] <= start < end <= points[last]: count each step
    // between readings by the share of it inside the period.
    let mut used = Decimal::ZERO;
    for pair in points.get(first..=last)?.windows(2) {
        let [(t0, v0), (t1, v1)] = pair else { continue };
        let step = match register_increment(mode, *v0, *v1) {
            Ok((step, _)) => step,
            Err(error) => return Some(Err(error)),
        };
        let (inside_from, inside_to) = ((*t0).max(start), (*t1).min(end));
        let part = if (inside_from, inside_to) == (*t0, *t1) {
            Some(step)
        } else {
            share(step, inside_to - inside_from, *t1 - *t0)
        };
        match part.and_then(|part| used.checked_add(part)) {
            Some(sum) => used = sum,
            None => return Some(Err(too_large())),
        }
    }
    Some(Ok(used))
}

/// The sum of the intervals ending in `(start, end]`.
fn interval_used(
    points: &[(DateTime<Utc>, Decimal)],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Decimal, MeteringError> {
    let first = points.partition_point(|&(at, _)| at <= start);
    let last = points.partition_point(|&(at, _)| at <= end);
    points
        .get(first..last)
        .unwrap_or_default()
        .iter()
        .try_fold(Decimal::ZERO, |sum, &(_, value)| sum.checked_add(value))
        .ok_or_else(too_large)
}

/// `amount * part / whole`, multiplying first to stay exact where Decimal's
/// range allows; `whole` is positive.
fn share(amount: Decimal, part: TimeDelta, whole: TimeDelta) -> Option<Decimal> {
    let (part, whole) = (nanoseconds(part)?, nanoseconds(whole)?);
    amount
        .checked_mul(part)
        .and_then(|product| product.checked_div(whole))
        .or_else(|| part.checked_div(whole).and_then(|fraction| amount.checked_mul(fraction)))
}

fn nanoseconds(delta: TimeDelta) -> Option<Decimal> {
    let nanos = i128::from(delta.num_seconds()) * 1_000_000_000 + i128::from(delta.subsec_nanos());
    Decimal::try_from_i128_with_scale(nanos, 0).ok()
}

/// The first instant of `date` in `tz`: its midnight, or where a
/// daylight-saving gap over midnight ends (the day then starts at 01:00).
fn local_start(tz: Tz, date: NaiveDate) -> Result<DateTime<Utc>, MeteringError> {
    let midnight = date.and_time(NaiveTime::MIN);
    if let Some(start) = tz.from_local_datetime(&midnight).earliest() {
        return Ok(start.with_timezone(&Utc));
    }
    // Midnight falls in the gap: the day starts at the change, which is
    // midnight on the clock that was in force before it.
    let before = midnight.checked_sub_signed(TimeDelta::days(1)).ok_or_else(beyond_calendar)?;
    let offset = tz.offset_from_utc_datetime(&before).fix().local_minus_utc();
    let start =
        midnight.checked_sub_signed(TimeDelta::seconds(i64::from(offset))).ok_or_else(beyond_calendar)?;
    Ok(start.and_utc())
}

fn check_period(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), MeteringError> {
    if from >= to {
        return Err(MeteringError::InvalidPeriod("the end must be after the start"));
    }
    // Years 1 to 9999: every time zone's local dates exist, and the database keeps them.
    let calendar = |t: DateTime<Utc>| (1..=9999).contains(&chrono::Datelike::year(&t));
    if !calendar(from) || !calendar(to) {
        return Err(beyond_calendar());
    }
    Ok(())
}

fn beyond_calendar() -> MeteringError {
    MeteringError::InvalidPeriod("beyond the calendar")
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use portico_kernel::{MeterId, ReadingId, SiteId};

    use super::*;
    use crate::{MeterKind, MeterPlace, ReadingSource, ReadingStatus};

    fn utc(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    fn jan(day: u32, hour: u32) -> DateTime<Utc> {
        utc(2026, 1, day, hour)
    }

    fn dec(value: i64) -> Decimal {
        Decimal::from(value)
    }

    fn register(digits: Option<u8>, active_from: DateTime<Utc>) -> Meter {
        Meter {
            id: MeterId::new(),
            place: MeterPlace::Site { site_id: SiteId::new() },
            kind: MeterKind::Electricity,
            unit: "kWh".into(),
            mode: ReadingMode::Register { digits },
            serial_number: None,
            active_from,
            active_until: None,
            start_reading: None,
            replaces: None,
        }
    }

    fn readings(meter: &Meter, values: &[(DateTime<Utc>, i64)]) -> Vec<Reading> {
        values
            .iter()
            .map(|&(at, value)| Reading {
                id: ReadingId::new(),
                meter_id: meter.id,
                at,
                value: dec(value),
                source: ReadingSource::Import,
                status: ReadingStatus::Valid,
                flagged: None,
            })
            .collect()
    }

    /// A register read 1 Jan 00:00 = 1000 and 11 Jan 00:00 = 1100: 10 a day.
    fn ten_a_day() -> (Meter, Vec<Reading>) {
        let meter = register(None, jan(1, 0));
        let readings = readings(&meter, &[(jan(1, 0), 1000), (jan(11, 0), 1100)]);
        (meter, readings)
    }

    #[test]
    fn a_register_is_interpolated_at_the_period_boundaries() {
        let (meter, readings) = ten_a_day();
        let place = [MeterReadings { meter: &meter, readings: &readings }];
        // 3 Jan 00:00 is 2 days in: 1020; 8 Jan 12:00 is 7.5 days in: 1075; 1075 - 1020 = 55.
        assert_eq!(consumption(&place, jan(3, 0), jan(8, 12)).unwrap(), dec(55));
        // Exact at the readings: 1100 - 1000.
        assert_eq!(consumption(&place, jan(1, 0), jan(11, 0)).unwrap(), dec(100));
    }

    #[test]
    fn a_share_that_does_not_divide_evenly_is_rounded_to_six_places() {
        let (meter, readings) = ten_a_day();
        let place = [MeterReadings { meter: &meter, readings: &readings }];
        // 8 hours of 10 a day: 10 / 3 = 3.333333...
        assert_eq!(consumption(&place, jan(2, 0), jan(2, 8)).unwrap(), Decimal::new(3_333_333, 6));
    }

    #[test]
    fn rejected_readings_do_not_count() {
        let (meter, mut readings) = ten_a_day();
        let rejected = Reading {
            at: jan(6, 0),
            value: dec(5),
            status: ReadingStatus::Rejected { reason: "typo".into() },
            ..readings[0].clone()
        };
        readings.push(rejected);
        let place = [MeterReadings { meter: &meter, readings: &readings }];
        // Still 1000 -> 1100; with the rejected 5 counted it would fail as a fall.
        assert_eq!(consumption(&place, jan(1, 0), jan(11, 0)).unwrap(), dec(100));
    }

    #[test]
    fn readings_in_any_order_are_sorted() {
        let meter = register(None, jan(1, 0));
        let readings = readings(&meter, &[(jan(11, 0), 1100), (jan(1, 0), 1000), (jan(6, 0), 1080)]);
        let place = [MeterReadings { meter: &meter, readings: &readings }];
        // 1 -> 6 Jan: 80 over 5 days, 16 a day; 6 -> 11 Jan: 20 over 5 days, 4 a day.
        // 5 Jan -> 7 Jan: 16 + 4 = 20.
        assert_eq!(consumption(&place, jan(5, 0), jan(7, 0)).unwrap(), dec(20));
    }

    /// The old meter read 1 Jan = 1000 and 6 Jan = 1050 (its final reading
    /// at the replacement); the new one starts at 0 on 6 Jan and reads 50 on
    /// 11 Jan.
    fn replaced() -> (Meter, Vec<Reading>, Meter, Vec<Reading>) {
        let old = Meter { start_reading: Some(dec(1000)), ..register(None, jan(1, 0)) };
        let (old, new) = old.replace(MeterId::new(), None, jan(6, 0), Some(Decimal::ZERO)).unwrap();
        let old_readings = readings(&old, &[(jan(6, 0), 1050)]);
        let new_readings = readings(&new, &[(jan(11, 0), 50)]);
        (old, old_readings, new, new_readings)
    }

    #[test]
    fn consumption_runs_across_a_meter_replacement() {
        let (old, old_readings, new, new_readings) = replaced();
        let place = [
            MeterReadings { meter: &old, readings: &old_readings },
            MeterReadings { meter: &new, readings: &new_readings },
        ];
        // (1050 - 1000) + (50 - 0) = 100.
        assert_eq!(consumption(&place, jan(1, 0), jan(11, 0)).unwrap(), dec(100));
        // Old: 10 a day, 3 -> 6 Jan = 30; new: 10 a day, 6 -> 8 Jan = 20; 50.
        assert_eq!(consumption(&place, jan(3, 0), jan(8, 0)).unwrap(), dec(50));
    }

    #[test]
    fn a_replaced_meter_stops_counting_at_its_last_reading() {
        let (old, _, new, new_readings) = replaced();
        // Last read on 5 Jan at 1040; nothing at the replacement on 6 Jan.
        let old_readings = readings(&old, &[(jan(5, 0), 1040)]);
        let place = [
            MeterReadings { meter: &old, readings: &old_readings },
            MeterReadings { meter: &new, readings: &new_readings },
        ];
        // (1040 - 1000) + (50 - 0) = 90: what the old meter counted after 5 Jan is unknown.
        assert_eq!(consumption(&place, jan(1, 0), jan(11, 0)).unwrap(), dec(90));
        // Only the new meter's 10 a day from 6 Jan to 8 Jan.
        assert_eq!(consumption(&place, jan(5, 12), jan(8, 0)).unwrap(), dec(20));
    }

    #[test]
    fn a_rollover_between_readings_counts() {
        let meter = register(Some(4), jan(1, 0));
        let readings = readings(&meter, &[(jan(1, 0), 9990), (jan(2, 0), 20), (jan(3, 0), 40)]);
        let place = [MeterReadings { meter: &meter, readings: &readings }];
        // 10_000 - 9990 + 20 = 30, then 40 - 20 = 20: 50 (not 40 - 9990).
        assert_eq!(consumption(&place, jan(1, 0), jan(3, 0)).unwrap(), dec(50));
        // Half of the rolled-over day: 15, and the next day's 20: 35.
        assert_eq!(consumption(&place, jan(1, 12), jan(3, 0)).unwrap(), dec(35));
    }

    #[test]
    fn a_fall_no_rollover_explains_is_an_error() {
        let meter = register(None, jan(1, 0));
        let readings = readings(&meter, &[(jan(1, 0), 9990), (jan(2, 0), 20)]);
        let place = [MeterReadings { meter: &meter, readings: &readings }];
        assert!(matches!(
            consumption(&place, jan(1, 0), jan(2, 0)),
            Err(MeteringError::ReadingBelowPrevious { .. })
        ));
    }

    #[test]
    fn a_period_the_readings_do_not_reach_over_is_not_covered() {
        // In service since 1 Dec without a start reading; first read 1 Jan.
        let meter = register(None, utc(2025, 12, 1, 0));
        let readings = readings(&meter, &[(jan(1, 0), 1000), (jan(11, 0), 1100)]);
        let place = [MeterReadings { meter: &meter, readings: &readings }];
        let (from, to) = (utc(2025, 12, 31, 0), jan(5, 0));
        assert!(matches!(
            consumption(&place, from, to),
            Err(MeteringError::NotCovered { from: f, to: t }) if (f, t) == (from, to)
        ));
        // Past the last reading of a meter still in service.
        assert!(matches!(consumption(&place, jan(10, 0), jan(12, 0)), Err(MeteringError::NotCovered { .. })));
    }

    #[test]
    fn a_period_must_end_after_it_starts() {
        let (meter, readings) = ten_a_day();
        let place = [MeterReadings { meter: &meter, readings: &readings }];
        assert!(matches!(consumption(&place, jan(3, 0), jan(3, 0)), Err(MeteringError::InvalidPeriod(_))));
        assert!(matches!(
            consumption_by(Granularity::Day, Tz::UTC, &place, jan(4, 0), jan(3, 0)),
            Err(MeteringError::InvalidPeriod(_))
        ));
    }

    #[test]
    fn an_interval_meter_sums_the_intervals_ending_in_the_period() {
        let meter = Meter { mode: ReadingMode::Interval, ..register(None, jan(1, 0)) };
        let readings = readings(&meter, &[(jan(1, 1), 2), (jan(1, 2), 3), (jan(1, 3), 5), (jan(1, 4), 7)]);
        let place = [MeterReadings { meter: &meter, readings: &readings }];
        // (01:00, 03:00]: the interval ending at 01:00 lies before it; 3 + 5 = 8.
        assert_eq!(consumption(&place, jan(1, 1), jan(1, 3)).unwrap(), dec(8));
    }

    fn berlin_hourly(from: DateTime<Utc>, hours: i64) -> (Meter, Vec<Reading>) {
        let meter = register(None, from);
        let readings = readings(&meter, &[(from, 0), (from + TimeDelta::hours(hours), hours)]);
        (meter, readings)
    }

    fn quantities(buckets: &[Bucket]) -> Vec<(NaiveDate, Decimal)> {
        buckets.iter().map(|b| (b.local_date, b.quantity)).collect()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn the_spring_change_makes_a_23_hour_day() {
        // 28 Mar 00:00 CET = 27 Mar 23:00Z to 31 Mar 00:00 CEST = 30 Mar 22:00Z:
        // 71 hours, 1 an hour.
        let (from, to) = (utc(2026, 3, 27, 23), utc(2026, 3, 30, 22));
        let (meter, readings) = berlin_hourly(from, 71);
        let place = [MeterReadings { meter: &meter, readings: &readings }];
        let buckets = consumption_by(Granularity::Day, chrono_tz::Europe::Berlin, &place, from, to).unwrap();
        // 28 Mar: 23:00Z -> 23:00Z = 24; 29 Mar: 23:00Z -> 22:00Z = 23; 30 Mar: 22:00Z -> 22:00Z = 24.
        assert_eq!(
            quantities(&buckets),
            [(date(2026, 3, 28), dec(24)), (date(2026, 3, 29), dec(23)), (date(2026, 3, 30), dec(24))]
        );
        assert_eq!((buckets[1].start, buckets[1].end), (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22)));
    }

    #[test]
    fn the_autumn_change_makes_a_25_hour_day() {
        // 24 Oct 00:00 CEST = 23 Oct 22:00Z to 27 Oct 00:00 CET = 26 Oct 23:00Z:
        // 73 hours, 1 an hour.
        let (from, to) = (utc(2026, 10, 23, 22), utc(2026, 10, 26, 23));
        let (meter, readings) = berlin_hourly(from, 73);
        let place = [MeterReadings { meter: &meter, readings: &readings }];
        let buckets = consumption_by(Granularity::Day, chrono_tz::Europe::Berlin, &place, from, to).unwrap();
        // 24 Oct: 22:00Z -> 22:00Z = 24; 25 Oct: 22:00Z -> 23:00Z = 25; 26 Oct: 23:00Z -> 23:00Z = 24.
        assert_eq!(
            quantities(&buckets),
            [(date(2026, 10, 24), dec(24)), (date(2026, 10, 25), dec(25)), (date(2026, 10, 26), dec(24))]
        );
    }

    #[test]
    fn month_buckets_split_at_the_local_month_boundary_and_clip_to_the_period() {
        // 1 an hour from 1 Jan 00:00Z to 1 Mar 00:00Z (59 days, 1416 hours).
        let (meter, readings) = berlin_hourly(utc(2026, 1, 1, 0), 1416);
        let place = [MeterReadings { meter: &meter, readings: &readings }];
        let (from, to) = (utc(2026, 1, 15, 0), utc(2026, 2, 10, 0));
        let buckets =
            consumption_by(Granularity::Month, chrono_tz::Europe::Berlin, &place, from, to).unwrap();
        // February starts in Berlin at 31 Jan 23:00Z.
        // January: 15 Jan 00:00Z -> 31 Jan 23:00Z = 16 days 23 hours = 407.
        // February: 31 Jan 23:00Z -> 10 Feb 00:00Z = 9 days 1 hour = 217.
        assert_eq!(quantities(&buckets), [(date(2026, 1, 1), dec(407)), (date(2026, 2, 1), dec(217))]);
        let bounds: Vec<_> = buckets.iter().map(|b| (b.start, b.end)).collect();
        assert_eq!(bounds, [(from, utc(2026, 1, 31, 23)), (utc(2026, 1, 31, 23), to)]);
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_starts_at_the_change() {
        // Chile moves its clocks from 00:00 -04 to 01:00 -03 on 6 Sep 2026:
        // that day starts at 04:00Z and, ending at 7 Sep 00:00 -03 = 03:00Z, lasts 23 hours.
        let tz = chrono_tz::America::Santiago;
        assert_eq!(local_start(tz, date(2026, 9, 6)).unwrap(), utc(2026, 9, 6, 4));
        assert_eq!(local_start(tz, date(2026, 9, 7)).unwrap(), utc(2026, 9, 7, 3));
    }

    #[test]
    fn too_many_buckets_are_refused() {
        let (meter, readings) = ten_a_day();
        let place = [MeterReadings { meter: &meter, readings: &readings }];
        assert!(matches!(
            consumption_by(Granularity::Day, Tz::UTC, &place, jan(1, 0), utc(2040, 1, 1, 0)),
            Err(MeteringError::InvalidPeriod(_))
        ));
    }

    #[test]
    fn periods_beyond_the_calendar_are_refused_not_panicked_on() {
        let (meter, readings) = ten_a_day();
        let place = [MeterReadings { meter: &meter, readings: &readings }];
        let far = DateTime::<Utc>::MAX_UTC - TimeDelta::hours(1);
        for tz in [chrono_tz::Asia::Tokyo, chrono_tz::America::New_York] {
            let late = consumption_by(Granularity::Day, tz, &place, far, DateTime::<Utc>::MAX_UTC);
            assert!(matches!(late, Err(MeteringError::InvalidPeriod(_))), "{late:?}");
            let early = consumption_by(Granularity::Month, tz, &place, DateTime::<Utc>::MIN_UTC, jan(1, 0));
            assert!(matches!(early, Err(MeteringError::InvalidPeriod(_))), "{early:?}");
        }
    }
}
