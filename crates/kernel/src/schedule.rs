//! Recurring schedules: a cron expression in a time zone (UTC or a tenant's),
//! and the rule for firing: one job per slot, and after downtime one job for
//! all the missed slots together, not one per slot.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Not a cron expression (`m h dom mon dow`, optional leading seconds).
    #[error("`{0}` is not a cron expression")]
    Expression(String),
    /// Not an IANA time zone name (`Europe/Berlin`, `UTC`).
    #[error("`{0}` is not a time zone")]
    Zone(String),
}

/// When something recurs: `0 9 * * MON-FRI` in `Europe/Berlin`.
#[derive(Clone)]
pub struct Recurrence {
    expression: String,
    cron: croner::Cron,
    zone: chrono_tz::Tz,
}

impl fmt::Debug for Recurrence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recurrence({} in {})", self.expression, self.zone)
    }
}

impl Recurrence {
    /// Parses `expression` (5 fields, or 6 with seconds first) in `zone`.
    pub fn parse(expression: &str, zone: &str) -> Result<Self, ScheduleError> {
        let cron = croner::Cron::from_str(expression)
            .map_err(|_| ScheduleError::Expression(expression.chars().take(100).collect()))?;
        let zone = zone
            .parse::<chrono_tz::Tz>()
            .map_err(|_| ScheduleError::Zone(zone.chars().take(64).collect()))?;
        Ok(Self { expression: expression.trim().to_owned(), cron, zone })
    }

    /// The expression as given.
    #[must_use]
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone's name.
    #[must_use]
    pub fn zone(&self) -> &str {
        self.zone.name()
    }

    /// The first slot strictly after `after`.
    #[must_use]
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.zone);
        self.cron.find_next_occurrence(&local, false).ok().map(|next| next.with_timezone(&Utc))
    }

    /// Firing a schedule that was due at `due`, at `now`: the slot the job
    /// stands for (the latest one at or before `now`, so a catch-up after
    /// downtime is one job) and the next time it is due (after `now`).
    #[must_use]
    pub fn fire(&self, due: DateTime<Utc>, now: DateTime<Utc>) -> Firing {
        let local = now.with_timezone(&self.zone);
        let latest = self.cron.find_previous_occurrence(&local, true).ok().map(|t| t.with_timezone(&Utc));
        let slot = latest.filter(|slot| *slot >= due).unwrap_or(due);
        Firing { slot, next: self.next_after(now) }
    }
}

/// A named recurring job of one tenant: each firing enqueues `job` (with a
/// fresh id) for the slot it stands for.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    /// Unique within the tenant (`prune-jobs`): 1 to 63 of `a-z 0-9 _ . -`.
    pub name: String,
    /// When.
    pub recurrence: Recurrence,
    /// What.
    pub job: crate::NewJob,
}

/// One firing of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Firing {
    /// The slot this firing stands for (part of the job's unique key).
    pub slot: DateTime<Utc>,
    /// When the schedule is due next; `None` if it never recurs.
    pub next: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn bad_expressions_and_zones_are_refused() {
        assert!(matches!(Recurrence::parse("every day", "UTC"), Err(ScheduleError::Expression(_))));
        assert!(matches!(Recurrence::parse("61 * * * *", "UTC"), Err(ScheduleError::Expression(_))));
        assert!(matches!(Recurrence::parse("0 3 * * *", "Mars/Olympus"), Err(ScheduleError::Zone(_))));
        assert_eq!(Recurrence::parse("30 3 * * *", "UTC").unwrap().expression(), "30 3 * * *");
    }

    #[test]
    fn the_next_slot_is_strictly_after() {
        let daily = Recurrence::parse("30 3 * * *", "UTC").unwrap();
        assert_eq!(daily.next_after(utc(2026, 11, 23, 3, 0)), Some(utc(2026, 11, 23, 3, 30)));
        assert_eq!(daily.next_after(utc(2026, 11, 23, 3, 30)), Some(utc(2026, 11, 24, 3, 30)));
    }

    #[test]
    fn local_time_follows_daylight_saving() {
        // 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer;
        // the clocks went forward on 2026-03-29.
        let morning = Recurrence::parse("0 9 * * *", "Europe/Berlin").unwrap();
        assert_eq!(morning.next_after(utc(2026, 3, 28, 9, 0)), Some(utc(2026, 3, 29, 7, 0)));
        assert_eq!(morning.next_after(utc(2026, 3, 27, 9, 0)), Some(utc(2026, 3, 28, 8, 0)));
        assert_eq!(morning.zone(), "Europe/Berlin");
    }

    #[test]
    fn an_on_time_firing_stands_for_its_own_slot() {
        let hourly = Recurrence::parse("0 * * * *", "UTC").unwrap();
        let due = utc(2026, 11, 23, 10, 0);
        let firing = hourly.fire(due, due + chrono::TimeDelta::seconds(3));
        assert_eq!(firing, Firing { slot: due, next: Some(utc(2026, 11, 23, 11, 0)) });
    }

    #[test]
    fn a_catch_up_after_downtime_is_one_firing_for_the_latest_slot() {
        let hourly = Recurrence::parse("0 * * * *", "UTC").unwrap();
        let due = utc(2026, 11, 23, 10, 0);
        let back_up = utc(2026, 11, 23, 15, 20); // five slots were missed
        let firing = hourly.fire(due, back_up);
        assert_eq!(firing, Firing { slot: utc(2026, 11, 23, 15, 0), next: Some(utc(2026, 11, 23, 16, 0)) });
    }
}
