//! The cursor of a source that keeps no history: the instant of the last
//! pull, in RFC 3339. Nothing that happened at or before it can be new.

use chrono::{DateTime, SecondsFormat, Utc};
use portico_metering::SourceError;

/// The cursor for a pull at `at`: every sub-second digit kept, so it reads back exactly.
pub(crate) fn at(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Whether a pull at `now` has nothing to add after `cursor`: the cursor is at or after `now`.
pub(crate) fn caught_up(cursor: Option<&str>, now: DateTime<Utc>) -> Result<bool, SourceError> {
    let Some(cursor) = cursor else {
        return Ok(false);
    };
    let last = DateTime::parse_from_rfc3339(cursor)
        .map_err(|_| SourceError::Unexpected("the cursor is not an RFC 3339 instant".to_owned()))?;
    Ok(last >= now)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn instant() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 0).unwrap() + chrono::TimeDelta::microseconds(123_456)
    }

    #[test]
    fn a_cursor_reads_back_as_the_same_instant() {
        let cursor = at(instant());
        assert_eq!(cursor, "2026-03-29T01:30:00.123456Z");
        assert_eq!(DateTime::parse_from_rfc3339(&cursor).unwrap(), instant());
    }

    #[test]
    fn no_cursor_is_never_caught_up() {
        assert_eq!(caught_up(None, instant()), Ok(false));
    }

    #[test]
    fn a_cursor_at_or_after_now_is_caught_up_and_one_before_is_not() {
        let now = instant();
        assert_eq!(caught_up(Some(&at(now)), now), Ok(true));
        assert_eq!(caught_up(Some(&at(now + chrono::TimeDelta::seconds(1))), now), Ok(true));
        assert_eq!(caught_up(Some(&at(now - chrono::TimeDelta::microseconds(1))), now), Ok(false));
        // Another offset naming the same instant is the same instant.
        assert_eq!(caught_up(Some("2026-03-29T03:30:00.123456+02:00"), now), Ok(true));
    }

    #[test]
    fn a_cursor_that_is_not_an_instant_is_unexpected() {
        assert!(matches!(caught_up(Some("yesterday"), instant()), Err(SourceError::Unexpected(_))));
    }
}
