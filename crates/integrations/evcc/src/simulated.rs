//! A charge point that is not there, for development: its meter register
//! grows at a fixed power from an instant on, read off the clock, so the same
//! instant always gives the same value and no network is needed.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use portico_kernel::Clock;
use portico_metering::{MeterDataSource, PullFuture, Pulled, PulledReading};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::cursor;
use crate::settings::SettingsError;

/// The most a simulated charger may draw: beyond any charge point (10 MW),
/// and small enough that no register it produces can overflow a `Decimal`.
pub(crate) const MAX_POWER_KW: u32 = 10_000;
/// Milliseconds in an hour: the register is in kWh, the power in kW.
const MS_PER_HOUR: i64 = 3_600_000;
/// Decimals of the register: Wh, like a real charge meter read through evcc.
const REGISTER_DECIMALS: u32 = 3;

/// A simulated charge point: one meter whose register (kWh) reads 0 at
/// `since` and grows by `power_kw` every hour after; before `since` it gives
/// no reading. Cursors work as [`EvccSource`](crate::EvccSource)'s do.
#[derive(Clone)]
pub struct SimulatedCharger {
    meter: String,
    clock: Arc<dyn Clock>,
    since: DateTime<Utc>,
    power_kw: Decimal,
}

impl fmt::Debug for SimulatedCharger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatedCharger")
            .field("meter", &self.meter)
            .field("since", &self.since)
            .field("power_kw", &self.power_kw)
            .finish_non_exhaustive()
    }
}

impl SimulatedCharger {
    /// A charger whose meter is called `meter` (trimmed, not empty), charging
    /// at `power_kw` (0 to 10,000 kW) from `since` on, as `clock` tells the time.
    pub fn new(
        meter: impl Into<String>,
        clock: Arc<dyn Clock>,
        since: DateTime<Utc>,
        power_kw: Decimal,
    ) -> Result<Self, SettingsError> {
        let meter = meter.into().trim().to_owned();
        if meter.is_empty() {
            return Err(SettingsError::MeterName);
        }
        if power_kw < Decimal::ZERO || power_kw > Decimal::from(MAX_POWER_KW) {
            return Err(SettingsError::Power);
        }
        Ok(Self { meter, clock, since, power_kw })
    }

    /// The register (kWh, to the Wh) at `at`; `None` before `since`.
    #[must_use]
    pub fn register_at(&self, at: DateTime<Utc>) -> Option<Decimal> {
        let elapsed_ms = (at - self.since).num_milliseconds();
        if elapsed_ms < 0 {
            return None;
        }
        // At most i64::MAX ms times 10,000 kW: far inside a Decimal, so these never fail.
        let kwh =
            Decimal::from(elapsed_ms).checked_mul(self.power_kw)?.checked_div(Decimal::from(MS_PER_HOUR))?;
        Some(kwh.round_dp_with_strategy(REGISTER_DECIMALS, RoundingStrategy::MidpointNearestEven).normalize())
    }
}

impl MeterDataSource for SimulatedCharger {
    fn pull<'a>(&'a self, cursor: Option<&'a str>) -> PullFuture<'a> {
        Box::pin(async move {
            let now = self.clock.now();
            if cursor::caught_up(cursor, now)? {
                return Ok(Pulled { readings: Vec::new(), cursor: cursor.map(str::to_owned) });
            }
            let readings = self
                .register_at(now)
                .map(|value| PulledReading { external_meter: self.meter.clone(), at: now, value })
                .into_iter()
                .collect();
            Ok(Pulled { readings, cursor: Some(cursor::at(now)) })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::str::FromStr;
    use std::task::{Context, Poll, Waker};

    use chrono::{TimeDelta, TimeZone};
    use portico_kernel::FixedClock;
    use portico_metering::SourceError;

    use super::*;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn since() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 7, 0, 0).unwrap()
    }

    fn charger(clock: &Arc<FixedClock>, power_kw: &str) -> SimulatedCharger {
        SimulatedCharger::new("Simulated wallbox", clock.clone(), since(), dec(power_kw)).unwrap()
    }

    /// The simulated charger never waits, so its future is ready at the first poll.
    fn now_or_never<T>(future: impl Future<Output = T>) -> T {
        match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(value) => value,
            Poll::Pending => panic!("the simulated charger should never wait"),
        }
    }

    #[test]
    fn the_register_grows_with_the_power_over_time() {
        let clock = Arc::new(FixedClock::at(since()));
        let wallbox = charger(&clock, "11");
        assert_eq!(wallbox.register_at(since()), Some(Decimal::ZERO));
        assert_eq!(wallbox.register_at(since() + TimeDelta::minutes(30)), Some(dec("5.5")));
        assert_eq!(wallbox.register_at(since() + TimeDelta::hours(24)), Some(dec("264")));
        // One second at 11 kW is 3.0555... Wh, kept to the Wh.
        assert_eq!(wallbox.register_at(since() + TimeDelta::seconds(1)), Some(dec("0.003")));
    }

    #[test]
    fn the_same_instant_always_gives_the_same_value() {
        let clock = Arc::new(FixedClock::at(since()));
        let at = since() + TimeDelta::milliseconds(123_456_789);
        assert_eq!(charger(&clock, "7.4").register_at(at), charger(&clock, "7.4").register_at(at));
    }

    #[test]
    fn there_is_no_reading_before_the_charger_starts() {
        let clock = Arc::new(FixedClock::at(since() - TimeDelta::seconds(1)));
        let wallbox = charger(&clock, "11");
        assert_eq!(wallbox.register_at(since() - TimeDelta::milliseconds(1)), None);
        let pulled = now_or_never(wallbox.pull(None)).unwrap();
        assert!(pulled.readings.is_empty());
        assert_eq!(pulled.cursor.as_deref(), Some("2026-01-05T06:59:59Z"));
    }

    #[test]
    fn a_pull_reads_the_register_at_the_clocks_time() {
        let clock = Arc::new(FixedClock::at(since() + TimeDelta::hours(2)));
        let wallbox = charger(&clock, "11");
        let pulled = now_or_never(wallbox.pull(None)).unwrap();
        assert_eq!(
            pulled.readings,
            vec![PulledReading {
                external_meter: "Simulated wallbox".to_owned(),
                at: since() + TimeDelta::hours(2),
                value: dec("22"),
            }]
        );
        assert_eq!(pulled.cursor.as_deref(), Some("2026-01-05T09:00:00Z"));
    }

    #[test]
    fn the_next_pull_reads_only_once_time_has_passed() {
        let clock = Arc::new(FixedClock::at(since() + TimeDelta::hours(1)));
        let wallbox = charger(&clock, "3.7");
        let first = now_or_never(wallbox.pull(None)).unwrap();
        let again = now_or_never(wallbox.pull(first.cursor.as_deref())).unwrap();
        assert!(again.readings.is_empty());
        assert_eq!(again.cursor, first.cursor);

        clock.advance(TimeDelta::minutes(15));
        let later = now_or_never(wallbox.pull(first.cursor.as_deref())).unwrap();
        assert_eq!(later.readings.len(), 1);
        assert_eq!(later.readings[0].value, dec("4.625"));
    }

    #[test]
    fn an_unreadable_cursor_is_unexpected() {
        let clock = Arc::new(FixedClock::at(since()));
        let result = now_or_never(charger(&clock, "11").pull(Some("not a time")));
        assert!(matches!(result, Err(SourceError::Unexpected(_))));
    }

    #[test]
    fn settings_that_cannot_work_are_refused() {
        let clock: Arc<dyn Clock> = Arc::new(FixedClock::at(since()));
        let new = |meter: &str, power: &str| SimulatedCharger::new(meter, clock.clone(), since(), dec(power));
        assert_eq!(new("  ", "11").unwrap_err(), SettingsError::MeterName);
        assert_eq!(new("Wallbox", "-0.1").unwrap_err(), SettingsError::Power);
        assert_eq!(new("Wallbox", "10000.001").unwrap_err(), SettingsError::Power);
        assert!(new("Wallbox", "0").is_ok());
        assert!(new("Wallbox", "10000").is_ok());
    }
}
