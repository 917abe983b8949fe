//! Usage events: what a SaaS operator's customers did, sent in batches and
//! counted once per client id, and the rule that closes usage once it is billed.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use portico_kernel::ValidationErrors;
use serde_json::{Map, Value};

use crate::MeteringError;
use crate::metric::{is_decimal_text, numeric};
use portico_kernel::text::plain_text;

/// Most events in one batch.
pub const MAX_BATCH_EVENTS: usize = 1_000;
/// Most properties on one event.
pub const MAX_PROPERTIES: usize = 32;
/// How far after its receipt an event may be dated (clients' clocks drift);
/// an event dated later would count in a period that has not begun.
pub const MAX_EVENT_SKEW: Duration = Duration::minutes(5);
/// Most bytes of an event's properties written as JSON.
pub const MAX_PROPERTIES_BYTES: usize = 4 * 1024;

/// One thing a subject did that a billable metric may count.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct UsageEvent {
    /// The client's id: an event is counted once per tenant and id.
    pub id: String,
    /// Who did it (the operator's customer key).
    pub subject: String,
    /// The code of the metric it counts towards.
    pub metric_code: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Whatever the client attached (`{"tokens": 812, "model": "large"}`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub properties: Map<String, Value>,
}

/// A usage event as a client sends it (an item of `POST /api/v1/metering/events`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "evt_01J9Z3", "subject": "customer-42", "metricCode": "llm.tokens",
    "at": "2026-03-01T12:00:00Z", "properties": {"tokens": 812, "model": "large"}
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewUsageEvent {
    /// The client's id, 1 to 128 visible ASCII characters (no spaces): sending
    /// the same id again is reported as a duplicate and counted once.
    #[garde(length(min = 1, max = 128), custom(visible_ascii))]
    pub id: String,
    /// Who did it, 1 to 256 characters, not blank, no control characters.
    #[garde(length(chars, min = 1, max = 256), custom(plain_text))]
    pub subject: String,
    /// The metric's code: a lower-case letter, then up to 63 of `a-z 0-9 _ . -`.
    #[garde(pattern(r"^[a-z][a-z0-9_.-]{0,63}$"))]
    pub metric_code: String,
    /// When it happened; the time it is received when absent.
    #[serde(default)]
    #[garde(skip)]
    pub at: Option<DateTime<Utc>>,
    /// At most 32 properties, at most 4 KiB as JSON.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    #[serde(default)]
    #[garde(custom(within_limits))]
    pub properties: Map<String, Value>,
}

fn visible_ascii(value: &str, _: &()) -> garde::Result {
    if value.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(garde::Error::new("only visible ASCII characters (no spaces)"))
    }
}

fn within_limits(properties: &Map<String, Value>, _: &()) -> garde::Result {
    if properties.len() > MAX_PROPERTIES {
        return Err(garde::Error::new(format!("at most {MAX_PROPERTIES} properties")));
    }
    let bytes = serde_json::to_vec(properties).map_err(|_| garde::Error::new("not valid JSON"))?;
    if bytes.len() > MAX_PROPERTIES_BYTES {
        return Err(garde::Error::new(format!("at most {MAX_PROPERTIES_BYTES} bytes as JSON")));
    }
    // PostgreSQL's jsonb cannot hold a NUL character: refused here, not as a failed batch.
    if properties.iter().any(|(key, value)| key.contains('\0') || holds_nul(value)) {
        return Err(garde::Error::new("must not contain NUL characters"));
    }
    // A number no decimal holds would count in SQL's figures and not in `aggregate`'s.
    if let Some((key, _)) =
        properties.iter().find(|(_, value)| looks_numeric(value) && numeric(value).is_none())
    {
        return Err(garde::Error::new(format!("{key} is a number beyond 28 significant digits")));
    }
    Ok(())
}

/// Whether a value reads as a number to the aggregations: a JSON number, or decimal digits.
fn looks_numeric(value: &Value) -> bool {
    match value {
        Value::Number(_) => true,
        Value::String(text) => is_decimal_text(text),
        _ => false,
    }
}

/// Whether a JSON value holds a NUL character in any string or key, at any depth.
pub(crate) fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(key, value)| key.contains('\0') || holds_nul(value)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

impl NewUsageEvent {
    /// The event, checked; `now` (the time it is received) stands in for a missing `at`.
    pub fn validated(self, now: DateTime<Utc>) -> Result<UsageEvent, MeteringError> {
        garde::Validate::validate(&self).map_err(|report| MeteringError::Invalid(report.into()))?;
        if self.is_future(now) {
            return Err(MeteringError::Invalid(ValidationErrors::field("at", future_message())));
        }
        Ok(self.into_event(now))
    }

    /// Whether it is dated more than [`MAX_EVENT_SKEW`] after `now`.
    fn is_future(&self, now: DateTime<Utc>) -> bool {
        self.at.is_some_and(|at| now.checked_add_signed(MAX_EVENT_SKEW).is_some_and(|limit| at > limit))
    }

    fn into_event(self, now: DateTime<Utc>) -> UsageEvent {
        UsageEvent {
            id: self.id,
            subject: self.subject,
            metric_code: self.metric_code,
            // Kept to the microsecond, as the database keeps it, so a window's edge
            // falls on the same side here and in SQL.
            at: chrono::SubsecRound::trunc_subsecs(self.at.unwrap_or(now), 6),
            properties: self.properties,
        }
    }
}

/// A batch of usage events (the body of `POST /api/v1/metering/events`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"events": [
    {"id": "evt_01J9Z3", "subject": "customer-42", "metricCode": "llm.tokens",
     "at": "2026-03-01T12:00:00Z", "properties": {"tokens": 812, "model": "large"}},
    {"id": "evt_01J9Z4", "subject": "customer-7", "metricCode": "api.calls", "properties": {}}
]})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventBatch {
    /// Up to 1,000 events.
    #[garde(length(max = MAX_BATCH_EVENTS), dive)]
    pub events: Vec<NewUsageEvent>,
}

impl EventBatch {
    /// The batch's events, checked, in the order sent; `now` stands in for a
    /// missing `at`. One bad event refuses the whole batch, naming each bad
    /// field by its place (`events[3].metricCode`).
    pub fn validated(self, now: DateTime<Utc>) -> Result<Vec<UsageEvent>, MeteringError> {
        // Counted before anything else so an oversized batch costs no per-event work.
        if self.events.len() > MAX_BATCH_EVENTS {
            return Err(MeteringError::Invalid(ValidationErrors::field(
                "events",
                format!("at most {MAX_BATCH_EVENTS} events in one batch"),
            )));
        }
        garde::Validate::validate(&self).map_err(|report| MeteringError::Invalid(report.into()))?;
        let future: Vec<_> = self
            .events
            .iter()
            .enumerate()
            .filter(|(_, event)| event.is_future(now))
            .map(|(index, _)| portico_kernel::FieldError {
                field: format!("events[{index}].at"),
                message: future_message(),
            })
            .collect();
        if !future.is_empty() {
            return Err(MeteringError::Invalid(ValidationErrors(future)));
        }
        Ok(self.events.into_iter().map(|event| event.into_event(now)).collect())
    }
}

/// What ingesting a batch did: events stored, ids seen before (in the batch
/// or stored earlier; nothing added), and events refused because their usage
/// is closed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct IngestReport {
    /// Events stored now.
    pub accepted: u64,
    /// Ids already stored, or repeated in the batch, in the order they came.
    pub duplicates: Vec<String>,
    /// Ids refused: their time is in usage closed past its grace (`metering.usage_closed`).
    pub closed: Vec<String>,
}

fn future_message() -> String {
    format!("must not be more than {} minutes after now", MAX_EVENT_SKEW.num_minutes())
}

/// Splits a batch into the first event of each id and the ids repeated after
/// it, in the order they came (an id sent three times is listed twice).
#[must_use]
pub fn dedupe_in_batch(events: Vec<UsageEvent>) -> (Vec<UsageEvent>, Vec<String>) {
    let mut seen = HashSet::with_capacity(events.len());
    let mut kept = Vec::with_capacity(events.len());
    let mut duplicates = Vec::new();
    for event in events {
        if seen.contains(event.id.as_str()) {
            duplicates.push(event.id);
        } else {
            seen.insert(event.id.clone());
            kept.push(event);
        }
    }
    (kept, duplicates)
}

/// Whether an event at `at`, received at `now`, is still taken, given the
/// tenant's usage closed through `closed_through` with a `grace` period.
///
/// Usage is closed for every instant strictly before `closed_through` (the
/// end of the last billed period, exclusive like every period here, so an
/// event at exactly `closed_through` belongs to the open period). An event in
/// the closed part is still taken until `closed_through + grace` inclusive,
/// and refused once `now` is later. Nothing is closed without `closed_through`.
#[must_use]
pub fn accepts(
    at: DateTime<Utc>,
    closed_through: Option<DateTime<Utc>>,
    grace: Duration,
    now: DateTime<Utc>,
) -> bool {
    let Some(closed_through) = closed_through else { return true };
    // A grace too long to add to a date never ends.
    at >= closed_through || closed_through.checked_add_signed(grace).is_none_or(|deadline| now <= deadline)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    #[test]
    fn nul_characters_in_properties_are_refused_and_times_keep_microseconds() {
        let event = |properties: serde_json::Value| {
            serde_json::from_value::<NewUsageEvent>(serde_json::json!({
                "id": "e-1", "subject": "acme", "metricCode": "api.calls",
                "at": "2026-03-01T23:59:59.9999996Z", "properties": properties
            }))
            .unwrap()
        };
        let now = chrono::Utc::now();
        for bad in [
            serde_json::json!({"k": "a\u{0}b"}),
            serde_json::json!({"k\u{0}": 1}),
            serde_json::json!({"k": [{"deep": "\u{0}"}]}),
        ] {
            let refused = event(bad.clone()).validated(now);
            assert!(matches!(&refused, Err(MeteringError::Invalid(_))), "{bad}: {refused:?}");
        }
        let kept = event(serde_json::json!({"k": "fine"})).validated(now).unwrap();
        assert_eq!(kept.at.to_rfc3339(), "2026-03-01T23:59:59.999999+00:00");
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn new_event(id: &str) -> NewUsageEvent {
        NewUsageEvent {
            id: id.into(),
            subject: "customer-42".into(),
            metric_code: "llm.tokens".into(),
            at: None,
            properties: Map::new(),
        }
    }

    fn fields_of(result: Result<impl std::fmt::Debug, MeteringError>) -> Vec<String> {
        match result {
            Err(MeteringError::Invalid(errors)) => errors.fields().into_iter().map(str::to_owned).collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn an_event_without_a_time_happens_when_received() {
        let event = new_event("evt-1").validated(now()).unwrap();
        assert_eq!(event.at, now());
        let earlier = Utc.with_ymd_and_hms(2026, 2, 28, 23, 0, 0).unwrap();
        let event = NewUsageEvent { at: Some(earlier), ..new_event("evt-1") }.validated(now()).unwrap();
        assert_eq!(event.at, earlier);
    }

    #[test]
    fn an_event_reads_from_camel_case_json_and_refuses_unknown_fields() {
        let body = json!({"id": "evt-1", "subject": "c", "metricCode": "calls", "properties": {"n": 1}});
        let event: NewUsageEvent = serde_json::from_value(body.clone()).unwrap();
        assert_eq!((event.metric_code.as_str(), event.at), ("calls", None));
        let mut unknown = body;
        unknown["timestamp"] = json!("2026-03-01T00:00:00Z");
        assert!(serde_json::from_value::<NewUsageEvent>(unknown).is_err());
        assert!(serde_json::from_value::<EventBatch>(json!({"events": [], "dryRun": true})).is_err());
    }

    #[test]
    fn a_bad_id_is_refused_naming_it() {
        for id in ["", "has space", "tab\t", "é", &"x".repeat(129)] {
            assert_eq!(fields_of(new_event(id).validated(now())), ["id"], "{id:?}");
        }
        assert!(new_event(&"x".repeat(128)).validated(now()).is_ok());
        assert!(new_event("!~").validated(now()).is_ok(), "punctuation is visible ASCII");
    }

    #[test]
    fn a_bad_subject_is_refused_naming_it() {
        for subject in [String::new(), "  ".into(), "a\0b".into(), "ü".repeat(257)] {
            let event = NewUsageEvent { subject: subject.clone(), ..new_event("evt-1") };
            assert_eq!(fields_of(event.validated(now())), ["subject"], "{subject:?}");
        }
        // 256 characters (512 bytes) is the limit in characters.
        assert!(NewUsageEvent { subject: "ü".repeat(256), ..new_event("evt-1") }.validated(now()).is_ok());
    }

    #[test]
    fn a_bad_metric_code_is_refused_naming_it() {
        let too_long = format!("a{}", "b".repeat(64));
        for code in ["", "Tokens", "1tokens", "_tokens", "to kens", "tokens!", too_long.as_str()] {
            let event = NewUsageEvent { metric_code: code.into(), ..new_event("evt-1") };
            assert_eq!(fields_of(event.validated(now())), ["metricCode"], "{code:?}");
        }
        for code in ["a", "llm.tokens", "api-calls_v2", &format!("a{}", "b".repeat(63))] {
            assert!(
                NewUsageEvent { metric_code: code.into(), ..new_event("evt-1") }.validated(now()).is_ok()
            );
        }
    }

    #[test]
    fn too_many_or_too_large_properties_are_refused_naming_them() {
        let many = |n: usize| (0..n).map(|i| (format!("p{i}"), json!(i))).collect::<Map<_, _>>();
        assert!(NewUsageEvent { properties: many(32), ..new_event("e") }.validated(now()).is_ok());
        let event = NewUsageEvent { properties: many(33), ..new_event("e") };
        assert_eq!(fields_of(event.validated(now())), ["properties"]);
        // {"k":"…"} is 8 bytes around the text: 4,088 characters make exactly 4 KiB.
        let sized = |n: usize| Map::from_iter([("k".to_owned(), json!("x".repeat(n)))]);
        assert!(NewUsageEvent { properties: sized(4088), ..new_event("e") }.validated(now()).is_ok());
        let event = NewUsageEvent { properties: sized(4089), ..new_event("e") };
        assert_eq!(fields_of(event.validated(now())), ["properties"]);
    }

    #[test]
    fn a_batch_of_more_than_a_thousand_events_is_refused() {
        let batch = |n: usize| EventBatch { events: (0..n).map(|i| new_event(&format!("e{i}"))).collect() };
        assert_eq!(batch(1000).validated(now()).unwrap().len(), 1000);
        assert_eq!(fields_of(batch(1001).validated(now())), ["events"]);
    }

    #[test]
    fn a_bad_event_refuses_its_batch_naming_its_place() {
        let bad = NewUsageEvent { metric_code: "Bad".into(), ..new_event("e2") };
        let batch = EventBatch { events: vec![new_event("e1"), bad, new_event("")] };
        let mut fields = fields_of(batch.validated(now()));
        fields.sort();
        assert_eq!(fields, ["events[1].metricCode", "events[2].id"]);
    }

    #[test]
    fn duplicates_in_a_batch_are_reported_in_order_and_the_first_is_kept() {
        let event = |id: &str, n: u32| UsageEvent {
            properties: Map::from_iter([("n".to_owned(), json!(n))]),
            ..new_event(id).validated(now()).unwrap()
        };
        let events =
            vec![event("a", 1), event("b", 2), event("a", 3), event("c", 4), event("b", 5), event("a", 6)];
        let (kept, duplicates) = dedupe_in_batch(events);
        let kept: Vec<_> = kept.iter().map(|e| (e.id.as_str(), e.properties["n"].clone())).collect();
        assert_eq!(kept, [("a", json!(1)), ("b", json!(2)), ("c", json!(4))]);
        assert_eq!(duplicates, ["a", "b", "a"]);
    }

    #[test]
    fn nothing_is_closed_without_a_closed_through_instant() {
        let long_ago = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
        assert!(accepts(long_ago, None, Duration::zero(), now()));
    }

    #[test]
    fn an_event_at_or_after_closed_through_is_taken_however_late() {
        let closed = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let much_later = closed + Duration::days(400);
        assert!(accepts(closed, Some(closed), Duration::hours(1), much_later), "the end is exclusive");
        assert!(!accepts(closed - Duration::nanoseconds(1), Some(closed), Duration::hours(1), much_later));
    }

    #[test]
    fn a_closed_period_takes_late_events_until_its_grace_ends() {
        let closed = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let late = closed - Duration::minutes(5);
        let grace = Duration::hours(1);
        assert!(accepts(late, Some(closed), grace, closed + grace), "the last instant of grace");
        assert!(!accepts(late, Some(closed), grace, closed + grace + Duration::nanoseconds(1)));
        assert!(accepts(late, Some(closed), Duration::zero(), closed), "no grace: only until the close");
        assert!(!accepts(late, Some(closed), Duration::zero(), closed + Duration::nanoseconds(1)));
        assert!(accepts(late, Some(closed), Duration::MAX, closed + Duration::days(10_000)), "endless grace");
    }

    #[test]
    fn an_event_dated_beyond_the_skew_is_refused_by_its_place() {
        let now = now();
        let at = |minutes| Some(now + Duration::minutes(minutes));
        let mut batch = EventBatch { events: vec![new_event("a"), new_event("b"), new_event("c")] };
        batch.events[0].at = at(5);
        batch.events[2].at = at(6);
        assert_eq!(fields_of(batch.clone().validated(now)), ["events[2].at"]);
        batch.events[2].at = at(-600);
        assert!(batch.validated(now).is_ok(), "five minutes ahead, and the past, are taken");
        let mut one = new_event("d");
        one.at = at(60);
        assert_eq!(fields_of(one.validated(now)), ["at"]);
    }

    #[test]
    fn a_number_beyond_a_decimal_is_refused() {
        let with = |properties: serde_json::Value| {
            let mut event = new_event("n");
            event.properties = properties.as_object().unwrap().clone();
            event.validated(now())
        };
        assert_eq!(fields_of(with(json!({"tokens": 1e300}))), ["properties"]);
        assert_eq!(fields_of(with(json!({"tokens": "123456789012345678901234567890"}))), ["properties"]);
        assert!(
            with(
                json!({"tokens": "12345678901234567890.5", "note": "1e300", "big": 18446744073709551615_u64})
            )
            .is_ok()
        );
    }
}
