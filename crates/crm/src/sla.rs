//! Service-level targets for support tickets: how soon each priority gets a
//! first response and a resolution, counted in calendar time or in the
//! tenant's business hours, and the clock arithmetic behind due times.
//!
//! Business hours take a fixed offset from UTC rather than a named time
//! zone: the crate stays free of a time-zone database, and the arithmetic
//! stays exact and testable. A tenant in a zone with daylight saving sets
//! the offset in force (or the bff fills it in from the tenant's zone); due
//! times already computed keep the offset they were computed with.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc, Weekday};
use portico_kernel::ValidationErrors;
use serde::{Deserialize, Serialize};

use crate::CrmError;
use crate::ticket::TicketPriority;

/// The longest target a policy may set: 365 days, in minutes.
pub const MAX_TARGET_MINUTES: u32 = 365 * 24 * 60;

/// How soon tickets of one priority are answered and resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"firstResponseMinutes": 60, "resolutionMinutes": 240})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlaTargets {
    /// Minutes until the first public reply by an agent is due, 1 to 525,600.
    #[garde(range(min = 1, max = MAX_TARGET_MINUTES))]
    pub first_response_minutes: u32,
    /// Minutes until the ticket is due to be resolved, 1 to 525,600 and no
    /// fewer than the first response's.
    #[garde(range(min = 1, max = MAX_TARGET_MINUTES))]
    pub resolution_minutes: u32,
}

impl SlaTargets {
    /// Targets of `first_response` and `resolution` hours.
    #[must_use]
    pub const fn hours(first_response: u32, resolution: u32) -> Self {
        Self { first_response_minutes: first_response * 60, resolution_minutes: resolution * 60 }
    }

    /// The first-response target as a duration.
    #[must_use]
    pub fn first_response(&self) -> TimeDelta {
        TimeDelta::minutes(i64::from(self.first_response_minutes))
    }

    /// The resolution target as a duration.
    #[must_use]
    pub fn resolution(&self) -> TimeDelta {
        TimeDelta::minutes(i64::from(self.resolution_minutes))
    }
}

/// When the tenant's support works: the same local hours on each of some
/// weekdays, at a fixed offset from UTC. Windows end the day they start
/// (no night shifts across midnight).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "utcOffsetMinutes": 60, "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri"], "opens": "09:00", "closes": "18:00"
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BusinessHours {
    /// The local time's offset from UTC in minutes, -720 (UTC-12) to 840 (UTC+14).
    #[garde(range(min = -720, max = 840))]
    pub utc_offset_minutes: i32,
    /// The days support works, each at most once (`Mon` ... `Sun`).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    #[garde(length(min = 1, max = 7), custom(distinct_days))]
    pub weekdays: Vec<Weekday>,
    /// Local opening time (`09:00`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "09:00"))]
    #[garde(skip)]
    pub opens: NaiveTime,
    /// Local closing time, after the opening time (`18:00`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "18:00"))]
    #[garde(custom(after_opening(self.opens)))]
    pub closes: NaiveTime,
}

fn distinct_days(days: &[Weekday], _: &()) -> garde::Result {
    let mut seen = [false; 7];
    for day in days {
        let slot = &mut seen[day.num_days_from_monday() as usize];
        if *slot {
            return Err(garde::Error::new(format!("{day} is listed twice")));
        }
        *slot = true;
    }
    Ok(())
}

fn after_opening(opens: NaiveTime) -> impl FnOnce(&NaiveTime, &()) -> garde::Result {
    move |closes, _| {
        if !whole_minute(opens) || !whole_minute(*closes) {
            Err(garde::Error::new("opening hours are given in whole minutes"))
        } else if *closes - opens < TimeDelta::minutes(MIN_OPENING_MINUTES) {
            Err(garde::Error::new(format!(
                "must be at least {MIN_OPENING_MINUTES} minutes after the opening time"
            )))
        } else {
            Ok(())
        }
    }
}

/// The shortest working day a policy may have.
const MIN_OPENING_MINUTES: i64 = 15;

fn whole_minute(time: NaiveTime) -> bool {
    chrono::Timelike::second(&time) == 0 && chrono::Timelike::nanosecond(&time) == 0
}

/// How many whole weeks of `weekly` working time lie strictly before
/// `left` runs out (an end exactly at a week's end stays in its window).
fn whole_weeks_before(left: TimeDelta, weekly: TimeDelta) -> Option<i64> {
    let (left, weekly) = (left.num_seconds(), weekly.num_seconds());
    if weekly <= 0 || left <= weekly {
        return Some(0);
    }
    // Seconds are exact here: working days are whole minutes.
    Some((left - 1) / weekly)
}

impl BusinessHours {
    /// Monday to Friday, 09:00 to 18:00 at `utc_offset_minutes`.
    #[must_use]
    pub fn weekdays_nine_to_six(utc_offset_minutes: i32) -> Self {
        Self {
            utc_offset_minutes,
            weekdays: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri],
            opens: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or(NaiveTime::MIN),
            closes: NaiveTime::from_hms_opt(18, 0, 0).unwrap_or(NaiveTime::MIN),
        }
    }

    /// The offset as a duration added to UTC to get local time.
    fn offset(&self) -> TimeDelta {
        TimeDelta::minutes(i64::from(self.utc_offset_minutes))
    }

    fn local(&self, at: DateTime<Utc>) -> Option<NaiveDateTime> {
        at.naive_utc().checked_add_signed(self.offset())
    }

    fn utc(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        local.checked_sub_signed(self.offset()).map(|naive| naive.and_utc())
    }

    /// The working window of a local date, if support works that day.
    fn window(&self, date: NaiveDate) -> Option<(NaiveDateTime, NaiveDateTime)> {
        (self.weekdays.contains(&date.weekday()) && self.closes > self.opens)
            .then(|| (date.and_time(self.opens), date.and_time(self.closes)))
    }

    /// The working time in one week (every week has the same).
    fn weekly(&self) -> TimeDelta {
        let per_day = if self.closes > self.opens { self.closes - self.opens } else { TimeDelta::zero() };
        let days = distinct_count(&self.weekdays);
        per_day * days
    }

    /// The instant `work` of working time after `start`: the clock only runs
    /// inside the windows. `None` when the hours have no working time at all
    /// or the instant is beyond the calendar.
    fn add(&self, start: DateTime<Utc>, work: TimeDelta) -> Option<DateTime<Utc>> {
        if work <= TimeDelta::zero() {
            return Some(start);
        }
        let weekly = self.weekly();
        if weekly <= TimeDelta::zero() {
            return None;
        }
        let mut cursor = self.local(start)?;
        let mut left = work;
        let mut skipped_weeks = false;
        // The start's day, then (after skipping whole weeks) at most a week's days.
        for _ in 0..=8 {
            if let Some((open, close)) = self.window(cursor.date()) {
                let begin = cursor.max(open);
                if begin < close {
                    let available = close - begin;
                    if left <= available {
                        return self.utc(begin.checked_add_signed(left)?);
                    }
                    left -= available;
                }
            }
            cursor = cursor.date().succ_opt()?.and_time(NaiveTime::MIN);
            if !skipped_weeks {
                // From a midnight, every seven days hold exactly one week's working time;
                // skipping only while more than a week is left keeps an exact end in its window.
                skipped_weeks = true;
                // All whole weeks in one step (never a loop a short week could stretch).
                let weeks = whole_weeks_before(left, weekly)?;
                if weeks > 0 {
                    cursor = cursor.checked_add_signed(TimeDelta::weeks(weeks))?;
                    left -= weekly.checked_mul(i32::try_from(weeks).ok()?)?;
                }
            }
        }
        None
    }

    /// The working time between `from` and `to` (zero when `to` is not after `from`).
    fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> TimeDelta {
        let (Some(from), Some(to)) = (self.local(from), self.local(to)) else { return to - from };
        let mut total = TimeDelta::zero();
        let mut day = from.date();
        while day <= to.date() {
            if let Some((open, close)) = self.window(day) {
                let (begin, end) = (open.max(from), close.min(to));
                if begin < end {
                    total += end - begin;
                }
            }
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
        total
    }
}

fn distinct_count(days: &[Weekday]) -> i32 {
    let mut seen = [false; 7];
    for day in days {
        seen[day.num_days_from_monday() as usize] = true;
    }
    seen.iter().map(|&s| i32::from(s)).sum()
}

/// A tenant's service levels (`PUT /api/v1/tickets/sla-policy`): targets per
/// priority, in calendar time unless business hours are given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "low": {"firstResponseMinutes": 1440, "resolutionMinutes": 10080},
    "normal": {"firstResponseMinutes": 480, "resolutionMinutes": 4320},
    "high": {"firstResponseMinutes": 240, "resolutionMinutes": 1440},
    "urgent": {"firstResponseMinutes": 60, "resolutionMinutes": 240},
    "businessHours": {
        "utcOffsetMinutes": 60, "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri"],
        "opens": "09:00", "closes": "18:00"
    }
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlaPolicy {
    /// Targets of low-priority tickets.
    #[garde(dive)]
    pub low: SlaTargets,
    /// Targets of normal-priority tickets.
    #[garde(dive)]
    pub normal: SlaTargets,
    /// Targets of high-priority tickets.
    #[garde(dive)]
    pub high: SlaTargets,
    /// Targets of urgent tickets.
    #[garde(dive)]
    pub urgent: SlaTargets,
    /// When the clocks run; round the clock when absent.
    #[serde(default)]
    #[garde(dive)]
    pub business_hours: Option<BusinessHours>,
}

impl Default for SlaPolicy {
    /// Calendar time: urgent 1 h / 4 h, high 4 h / 1 day, normal 8 h / 3 days, low 1 day / 7 days.
    fn default() -> Self {
        Self {
            low: SlaTargets::hours(24, 7 * 24),
            normal: SlaTargets::hours(8, 3 * 24),
            high: SlaTargets::hours(4, 24),
            urgent: SlaTargets::hours(1, 4),
            business_hours: None,
        }
    }
}

impl SlaPolicy {
    /// The policy, checked: each priority's first response is due no later than its resolution.
    pub fn validated(self) -> Result<Self, CrmError> {
        garde::Validate::validate(&self).map_err(|report| CrmError::Invalid(report.into()))?;
        for priority in TicketPriority::ALL {
            let targets = self.targets(priority);
            if targets.first_response_minutes > targets.resolution_minutes {
                return Err(CrmError::Invalid(ValidationErrors::field(
                    format!("{priority}.firstResponseMinutes"),
                    "must not exceed the resolution target",
                )));
            }
        }
        Ok(self)
    }

    /// The targets of `priority`.
    #[must_use]
    pub const fn targets(&self, priority: TicketPriority) -> SlaTargets {
        match priority {
            TicketPriority::Low => self.low,
            TicketPriority::Normal => self.normal,
            TicketPriority::High => self.high,
            TicketPriority::Urgent => self.urgent,
        }
    }
}

/// The instant `target` of clock time after `start`: calendar time without
/// `hours`, otherwise working time inside them (a start outside the hours
/// waits for the next opening). Hours with no working time at all count as
/// calendar time; an instant beyond the calendar is the calendar's end.
#[must_use]
pub fn due_at(start: DateTime<Utc>, target: TimeDelta, hours: Option<&BusinessHours>) -> DateTime<Utc> {
    hours
        .and_then(|hours| hours.add(start, target))
        .or_else(|| start.checked_add_signed(target))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The clock time between `from` and `to`: calendar time without `hours`,
/// otherwise the working time inside them; zero when `to` is not after `from`.
#[must_use]
pub fn clock_time(from: DateTime<Utc>, to: DateTime<Utc>, hours: Option<&BusinessHours>) -> TimeDelta {
    if to <= from {
        return TimeDelta::zero();
    }
    match hours {
        Some(hours) if hours.weekly() > TimeDelta::zero() => hours.between(from, to),
        _ => to - from,
    }
}

/// A due time after its clock was stopped at `stopped_at` and started again
/// at `resumed_at`: whatever clock time was left when it stopped is left
/// again from `resumed_at`, so time stopped does not count. A due time
/// already past when the clock stopped stays as it was: a breach is kept.
#[must_use]
pub fn resumed_due(
    due: DateTime<Utc>,
    stopped_at: DateTime<Utc>,
    resumed_at: DateTime<Utc>,
    hours: Option<&BusinessHours>,
) -> DateTime<Utc> {
    if due <= stopped_at {
        return due;
    }
    due_at(resumed_at.max(stopped_at), clock_time(stopped_at, due, hours), hours)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// A UTC instant in November 2026 (the 2nd is a Monday, the 6th a Friday).
    fn nov(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, minute, 0).unwrap()
    }

    fn office() -> BusinessHours {
        BusinessHours::weekdays_nine_to_six(0)
    }

    #[test]
    fn the_calendar_dates_used_in_these_tests_fall_on_the_expected_weekdays() {
        assert_eq!(nov(2, 0, 0).weekday(), Weekday::Mon);
        assert_eq!(nov(6, 0, 0).weekday(), Weekday::Fri);
    }

    #[test]
    fn without_business_hours_the_target_is_plain_calendar_time() {
        // Friday 17:30 + 4 h = Friday 21:30.
        assert_eq!(due_at(nov(6, 17, 30), TimeDelta::hours(4), None), nov(6, 21, 30));
    }

    #[test]
    fn a_ticket_opened_friday_1730_with_a_four_hour_target_is_due_monday_1230() {
        // 30 minutes on Friday (17:30-18:00), the weekend is closed, 3 h 30 on Monday from 09:00.
        assert_eq!(due_at(nov(6, 17, 30), TimeDelta::hours(4), Some(&office())), nov(9, 12, 30));
    }

    #[test]
    fn a_ticket_opened_before_opening_waits_for_the_opening() {
        // Tuesday 07:00, 1 h -> Tuesday 10:00; Saturday 11:00, 1 h -> Monday 10:00.
        assert_eq!(due_at(nov(3, 7, 0), TimeDelta::hours(1), Some(&office())), nov(3, 10, 0));
        assert_eq!(due_at(nov(7, 11, 0), TimeDelta::hours(1), Some(&office())), nov(9, 10, 0));
    }

    #[test]
    fn a_target_that_ends_exactly_at_closing_is_due_at_closing_not_next_morning() {
        // Monday 09:00 + 9 h = Monday 18:00.
        assert_eq!(due_at(nov(2, 9, 0), TimeDelta::hours(9), Some(&office())), nov(2, 18, 0));
    }

    #[test]
    fn a_target_longer_than_a_week_skips_whole_weeks() {
        // A week holds 5 x 9 h = 45 h. Monday 10:00 + 50 h: 8 h left Monday, then 42 h is
        // Tue-Fri (36 h) and 6 h of the next Monday: Monday 9 Nov 15:00.
        assert_eq!(due_at(nov(2, 10, 0), TimeDelta::hours(50), Some(&office())), nov(9, 15, 0));
        // Monday 09:00 + 90 h: exactly two weeks, due the second Friday at 18:00.
        assert_eq!(due_at(nov(2, 9, 0), TimeDelta::hours(90), Some(&office())), nov(13, 18, 0));
        // Monday 09:00 + 91 h: one hour into Monday 16 Nov.
        assert_eq!(due_at(nov(2, 9, 0), TimeDelta::hours(91), Some(&office())), nov(16, 10, 0));
    }

    #[test]
    fn business_hours_are_local_to_their_utc_offset() {
        // UTC+02:00, 09:00-18:00 local is 07:00-16:00 UTC. Friday 15:30 UTC (17:30 local)
        // + 4 h: 30 min on Friday, 3 h 30 on Monday from 07:00 UTC = Monday 10:30 UTC.
        let hours = BusinessHours::weekdays_nine_to_six(120);
        assert_eq!(due_at(nov(6, 15, 30), TimeDelta::hours(4), Some(&hours)), nov(9, 10, 30));
        // UTC-05:00: Friday 22:00 UTC is 17:00 local; 2 h -> 1 h Friday, 1 h Monday -> 15:00 UTC.
        let hours = BusinessHours::weekdays_nine_to_six(-300);
        assert_eq!(due_at(nov(6, 22, 0), TimeDelta::hours(2), Some(&hours)), nov(9, 15, 0));
    }

    #[test]
    fn clock_time_counts_only_working_time() {
        // Friday 17:30 to Monday 12:30 is 30 min + 3 h 30 of work.
        assert_eq!(clock_time(nov(6, 17, 30), nov(9, 12, 30), Some(&office())), TimeDelta::hours(4));
        assert_eq!(clock_time(nov(6, 17, 30), nov(9, 12, 30), None), TimeDelta::minutes(67 * 60));
        assert_eq!(clock_time(nov(9, 12, 30), nov(6, 17, 30), None), TimeDelta::zero());
        // A whole weekend is no working time at all.
        assert_eq!(clock_time(nov(7, 0, 0), nov(9, 0, 0), Some(&office())), TimeDelta::zero());
    }

    #[test]
    fn a_resumed_clock_keeps_the_time_that_was_left() {
        // Calendar: due 14:00, stopped 11:00 (3 h left), resumed 16:00 -> due 19:00.
        assert_eq!(resumed_due(nov(2, 14, 0), nov(2, 11, 0), nov(2, 16, 0), None), nov(2, 19, 0));
        // Business hours: due Monday 12:30, stopped Friday 17:30 (4 h left),
        // resumed Tuesday 10:00 -> Tuesday 14:00.
        assert_eq!(
            resumed_due(nov(9, 12, 30), nov(6, 17, 30), nov(10, 10, 0), Some(&office())),
            nov(10, 14, 0)
        );
    }

    #[test]
    fn a_due_time_already_missed_when_the_clock_stopped_stays_missed() {
        assert_eq!(resumed_due(nov(2, 10, 0), nov(2, 11, 0), nov(3, 9, 0), None), nov(2, 10, 0));
    }

    #[test]
    fn the_default_policy_is_calendar_time_with_shorter_targets_for_higher_priorities() {
        let policy = SlaPolicy::default().validated().unwrap();
        assert!(policy.business_hours.is_none());
        assert_eq!(policy.targets(TicketPriority::Urgent).first_response(), TimeDelta::hours(1));
        assert_eq!(policy.targets(TicketPriority::Urgent).resolution(), TimeDelta::hours(4));
        assert_eq!(policy.targets(TicketPriority::High).resolution(), TimeDelta::hours(24));
        assert_eq!(policy.targets(TicketPriority::Normal).first_response(), TimeDelta::hours(8));
        assert_eq!(policy.targets(TicketPriority::Low).resolution(), TimeDelta::days(7));
    }

    #[test]
    fn a_policy_whose_first_response_exceeds_its_resolution_is_refused() {
        let policy = SlaPolicy { high: SlaTargets::hours(5, 4), ..SlaPolicy::default() };
        let Err(CrmError::Invalid(errors)) = policy.validated() else {
            panic!("expected a validation error")
        };
        assert_eq!(errors.fields(), vec!["high.firstResponseMinutes"]);
    }

    #[test]
    fn business_hours_need_distinct_days_and_closing_after_opening() {
        let mut hours = office();
        hours.weekdays.push(Weekday::Mon);
        hours.closes = hours.opens;
        hours.utc_offset_minutes = 900;
        let policy = SlaPolicy { business_hours: Some(hours), ..SlaPolicy::default() };
        let Err(CrmError::Invalid(errors)) = policy.validated() else {
            panic!("expected a validation error")
        };
        let mut fields = errors.fields();
        fields.sort_unstable();
        assert_eq!(
            fields,
            vec!["businessHours.closes", "businessHours.utcOffsetMinutes", "businessHours.weekdays"]
        );
        let none = BusinessHours { weekdays: vec![], ..office() };
        assert!(SlaPolicy { business_hours: Some(none), ..SlaPolicy::default() }.validated().is_err());
    }

    #[test]
    fn opening_hours_are_whole_minutes_and_at_least_a_quarter_of_an_hour() {
        let refused = |closes: &str| {
            let hours = BusinessHours { closes: closes.parse().unwrap(), ..office() };
            SlaPolicy { business_hours: Some(hours), ..SlaPolicy::default() }.validated().is_err()
        };
        // A working week of a nanosecond would make every due time a walk of billions of weeks.
        assert!(refused("09:00:00.000000001") && refused("09:10") && refused("12:00:30"));
        assert!(!refused("09:15"));
    }

    #[test]
    fn a_target_of_many_weeks_is_due_after_as_many_working_weeks() {
        // 45 working hours a week: 450 hours is ten weeks, ending on the tenth Friday at 18:00.
        let hours = office();
        assert_eq!(
            due_at(nov(2, 9, 0), TimeDelta::hours(450), Some(&hours)),
            nov(2, 9, 0) + TimeDelta::days(67) + TimeDelta::hours(9)
        );
    }

    #[test]
    fn hours_without_any_working_time_fall_back_to_calendar_time() {
        let closed = BusinessHours { weekdays: vec![], ..office() };
        assert_eq!(due_at(nov(2, 9, 0), TimeDelta::hours(1), Some(&closed)), nov(2, 10, 0));
        assert_eq!(clock_time(nov(2, 9, 0), nov(2, 10, 0), Some(&closed)), TimeDelta::hours(1));
    }

    #[test]
    fn a_policy_reads_from_json_with_short_local_times() {
        let json = r#"{
            "low": {"firstResponseMinutes": 1440, "resolutionMinutes": 10080},
            "normal": {"firstResponseMinutes": 480, "resolutionMinutes": 4320},
            "high": {"firstResponseMinutes": 240, "resolutionMinutes": 1440},
            "urgent": {"firstResponseMinutes": 60, "resolutionMinutes": 240},
            "businessHours": {"utcOffsetMinutes": 0, "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri"],
                              "opens": "09:00", "closes": "18:00"}
        }"#;
        let policy: SlaPolicy = serde_json::from_str(json).unwrap();
        assert_eq!(
            policy.validated().unwrap(),
            SlaPolicy { business_hours: Some(office()), ..SlaPolicy::default() }
        );
    }
}
