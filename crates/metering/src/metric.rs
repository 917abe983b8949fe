//! Billable metrics: how a tenant's usage events add up to a quantity per
//! subject and period. [`aggregate`] is the one definition of each
//! aggregation; the store's SQL is tested against it.
//!
//! The rules, precisely (the SQL must agree):
//! - An event counts when its metric code is the metric's, its subject is the
//!   one asked for (if any), every filter matches, and `from <= at < to`
//!   (a time-weighted sum also takes the last level set before `from`).
//! - A property is numeric when it is a JSON number, or a string of the form
//!   `-?[0-9]+(\.[0-9]+)?`, that fits a `Decimal` exactly. Sum, max, latest and
//!   time-weighted sum skip events whose property is missing or not numeric
//!   (so a non-numeric level leaves the previous level in force).
//! - JSON values are equal (in filters and unique counts) as PostgreSQL's
//!   `jsonb` compares them: numbers by value (`1` = `1.0`), never equal to
//!   strings (`1` ≠ `"1"`), objects whatever their key order. `null` counts
//!   as missing in a unique count.
//! - Nothing to count gives 0.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use portico_kernel::{MetricId, ValidationErrors};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Number, Value};

use crate::{MeteringError, UsageEvent};
use portico_kernel::text::plain_text;

/// Most filters on one metric.
pub const MAX_FILTERS: usize = 10;
/// Decimal places of a time-weighted sum.
pub const TIME_WEIGHTED_DP: u32 = 6;

/// How a metric adds up its events.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Aggregation {
    /// The number of events. (A struct variant with no fields, so that
    /// `deny_unknown_fields` refuses a stray `property`.)
    Count {},
    /// The sum of a numeric property.
    Sum {
        /// The property added up.
        #[garde(length(chars, min = 1, max = 128), custom(plain_text))]
        property: String,
    },
    /// The greatest value of a numeric property.
    Max {
        /// The property compared.
        #[garde(length(chars, min = 1, max = 128), custom(plain_text))]
        property: String,
    },
    /// The number of distinct values of a property (of any JSON type).
    UniqueCount {
        /// The property whose values are counted.
        #[garde(length(chars, min = 1, max = 128), custom(plain_text))]
        property: String,
    },
    /// The numeric property of the last event (latest `at`, then greatest id).
    Latest {
        /// The property read.
        #[garde(length(chars, min = 1, max = 128), custom(plain_text))]
        property: String,
    },
    /// A level (seats, storage) that holds from its event until the subject's
    /// next one, times the hours it held within the period: unit × hours.
    TimeWeightedSum {
        /// The property holding the level.
        #[garde(length(chars, min = 1, max = 128), custom(plain_text))]
        property: String,
    },
}

impl Aggregation {
    /// The property it reads; none for a count.
    #[must_use]
    pub fn property(&self) -> Option<&str> {
        match self {
            Self::Count {} => None,
            Self::Sum { property }
            | Self::Max { property }
            | Self::UniqueCount { property }
            | Self::Latest { property }
            | Self::TimeWeightedSum { property } => Some(property),
        }
    }
}

/// Keeps the events whose `property` equals one of `values`; an event
/// without the property never matches.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PropertyFilter {
    /// The property compared.
    #[garde(length(chars, min = 1, max = 128), custom(plain_text))]
    pub property: String,
    /// 1 to 100 values, any of which matches.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    #[garde(length(min = 1, max = 100), custom(values_rules))]
    pub values: Vec<Value>,
}

fn values_rules(values: &[Value], _: &()) -> garde::Result {
    // PostgreSQL's jsonb cannot hold a NUL character.
    if values.iter().any(crate::usage::holds_nul) {
        return Err(garde::Error::new("must not contain NUL characters"));
    }
    Ok(())
}

/// A tenant's billable metric.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct BillableMetric {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: MetricId,
    /// The code events name it by, unique in the tenant.
    pub code: String,
    /// Its name for people.
    pub name: String,
    /// How its events add up.
    pub aggregation: Aggregation,
    /// Filters every counted event matches.
    pub filters: Vec<PropertyFilter>,
    /// When it was defined.
    pub created_at: DateTime<Utc>,
}

/// Defines or redefines a billable metric (`POST`/`PUT /api/v1/metering/metrics`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "code": "llm.tokens", "name": "Tokens (large model)",
    "aggregation": {"type": "sum", "property": "tokens"},
    "filters": [{"property": "model", "values": ["large"]}]
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricDraft {
    /// A lower-case letter, then up to 63 of `a-z 0-9 _ . -`.
    #[garde(pattern(r"^[a-z][a-z0-9_.-]{0,63}$"))]
    pub code: String,
    /// 1 to 200 characters, not blank, no control characters.
    #[garde(length(chars, min = 1, max = 200), custom(plain_text))]
    pub name: String,
    /// How its events add up.
    #[garde(dive)]
    pub aggregation: Aggregation,
    /// Up to 10 filters, all of which an event must match.
    #[serde(default)]
    #[garde(length(max = MAX_FILTERS), dive)]
    pub filters: Vec<PropertyFilter>,
}

impl MetricDraft {
    /// The metric it defines, checked, as `id` defined at `created_at`.
    pub fn validated(self, id: MetricId, created_at: DateTime<Utc>) -> Result<BillableMetric, MeteringError> {
        garde::Validate::validate(&self).map_err(|report| MeteringError::Invalid(report.into()))?;
        Ok(BillableMetric {
            id,
            code: self.code,
            name: self.name,
            aggregation: self.aggregation,
            filters: self.filters,
            created_at,
        })
    }
}

/// The metric's quantity over `[from, to)`, for one subject or (`None`) all
/// of them, from `events` of any metric and subject (the others are ignored).
/// A time-weighted sum over all subjects is the sum of each subject's
/// rounded figure, so it equals the sum of [`aggregate_by_subject`].
pub fn aggregate(
    metric: &BillableMetric,
    events: &[UsageEvent],
    subject: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Decimal, MeteringError> {
    check_period(from, to)?;
    let filters = Filters::of(metric);
    let counted: Vec<&UsageEvent> =
        events.iter().filter(|e| subject.is_none_or(|s| e.subject == s) && filters.keep(metric, e)).collect();
    Ok(figure(&metric.aggregation, &counted, from, to)?.unwrap_or_default())
}

/// The metric's quantity over `[from, to)` per subject (`groupBy=subject`):
/// each subject with at least one event that counts (for a time-weighted sum,
/// one holding a level within the period), and no other.
pub fn aggregate_by_subject(
    metric: &BillableMetric,
    events: &[UsageEvent],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<BTreeMap<String, Decimal>, MeteringError> {
    check_period(from, to)?;
    let filters = Filters::of(metric);
    let counted = events.iter().filter(|e| filters.keep(metric, e));
    let mut figures = BTreeMap::new();
    for (subject, series) in by_subject(counted) {
        if let Some(figure) = figure(&metric.aggregation, &series, from, to)? {
            figures.insert(subject.to_owned(), figure);
        }
    }
    Ok(figures)
}

fn check_period(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), MeteringError> {
    if from >= to { Err(MeteringError::InvalidPeriod("the end must be after the start")) } else { Ok(()) }
}

/// The metric's filters, their values compared as `jsonb` compares them.
struct Filters<'m>(Vec<(&'m str, BTreeSet<JsonKey>)>);

impl<'m> Filters<'m> {
    fn of(metric: &'m BillableMetric) -> Self {
        Self(
            metric
                .filters
                .iter()
                .map(|f| (f.property.as_str(), f.values.iter().map(JsonKey::of).collect()))
                .collect(),
        )
    }

    /// Whether the event is of the metric and matches every filter (its time aside).
    fn keep(&self, metric: &BillableMetric, event: &UsageEvent) -> bool {
        event.metric_code == metric.code
            && self.0.iter().all(|(property, values)| {
                event.properties.get(*property).is_some_and(|value| values.contains(&JsonKey::of(value)))
            })
    }
}

fn by_subject<'e>(
    events: impl IntoIterator<Item = &'e UsageEvent>,
) -> BTreeMap<&'e str, Vec<&'e UsageEvent>> {
    let mut groups: BTreeMap<&str, Vec<&UsageEvent>> = BTreeMap::new();
    for event in events {
        groups.entry(event.subject.as_str()).or_default().push(event);
    }
    groups
}

/// The aggregation of the metric's matching `events` over `[from, to)`; none
/// when no event counts.
fn figure(
    aggregation: &Aggregation,
    events: &[&UsageEvent],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Option<Decimal>, MeteringError> {
    let window: Vec<&UsageEvent> = events.iter().copied().filter(|e| from <= e.at && e.at < to).collect();
    let numbers = |property: &str| numeric_values(&window, property);
    Ok(match aggregation {
        Aggregation::Count {} => Some(Decimal::from(window.len())).filter(|n| !n.is_zero()),
        Aggregation::Sum { property } => {
            let mut sum = None;
            for (_, n) in numbers(property) {
                sum = Some(add(sum.unwrap_or_default(), n, property)?);
            }
            sum
        }
        Aggregation::Max { property } => numbers(property).into_iter().map(|(_, n)| n).max(),
        Aggregation::UniqueCount { property } => {
            let distinct: BTreeSet<JsonKey> = window
                .iter()
                .filter_map(|e| e.properties.get(property.as_str()))
                .filter(|value| !value.is_null())
                .map(JsonKey::of)
                .collect();
            Some(Decimal::from(distinct.len())).filter(|n| !n.is_zero())
        }
        Aggregation::Latest { property } => {
            numbers(property).into_iter().max_by(|(a, _), (b, _)| latest_first(a, b)).map(|(_, n)| n)
        }
        Aggregation::TimeWeightedSum { property } => {
            // Each subject's levels are its own; each subject's figure is rounded,
            // so the total is the sum of the `groupBy=subject` figures.
            let mut total = None;
            for series in by_subject(events.iter().copied()).into_values() {
                if let Some(figure) = time_weighted(&series, property, from, to)? {
                    total = Some(add(total.unwrap_or_default(), figure, property)?);
                }
            }
            total
        }
    })
}

/// The events whose `property` is numeric, with its value.
fn numeric_values<'e>(events: &[&'e UsageEvent], property: &str) -> Vec<(&'e UsageEvent, Decimal)> {
    events.iter().filter_map(|e| e.properties.get(property).and_then(numeric).map(|n| (*e, n))).collect()
}

/// Orders events by time, then id (byte order, SQL's `COLLATE "C"`).
fn latest_first(a: &UsageEvent, b: &UsageEvent) -> Ordering {
    a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id))
}

/// One subject's level × hours over `[from, to)`, rounded; none when it holds
/// no level within the period.
fn time_weighted(
    events: &[&UsageEvent],
    property: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Option<Decimal>, MeteringError> {
    let mut levels = numeric_values(events, property);
    levels.retain(|(e, _)| e.at < to);
    levels.sort_by(|(a, _), (b, _)| latest_first(a, b));
    // Of the levels set before the period, only the last one is still in force at `from`.
    let first_inside = levels.partition_point(|(e, _)| e.at < from);
    let held = levels.get(first_inside.saturating_sub(1)..).unwrap_or_default();
    if held.is_empty() {
        return Ok(None);
    }
    let mut level_seconds = Decimal::ZERO;
    for (index, (event, level)) in held.iter().enumerate() {
        let start = event.at.max(from);
        let end = held.get(index + 1).map_or(to, |(next, _)| next.at);
        let product = level.checked_mul(seconds(end - start)).ok_or_else(|| too_large(property))?;
        level_seconds = add(level_seconds, product, property)?;
    }
    // Half away from zero, as PostgreSQL's round(numeric, 6).
    let hours = level_seconds / Decimal::from(3600);
    Ok(Some(hours.round_dp_with_strategy(TIME_WEIGHTED_DP, RoundingStrategy::MidpointAwayFromZero)))
}

/// A non-negative span in seconds, to the nanosecond.
fn seconds(span: TimeDelta) -> Decimal {
    Decimal::from(span.num_seconds()) + Decimal::new(i64::from(span.subsec_nanos()), 9)
}

fn add(total: Decimal, n: Decimal, property: &str) -> Result<Decimal, MeteringError> {
    total.checked_add(n).ok_or_else(|| too_large(property))
}

// No variant says "out of range" yet; the property is what made the figure too large.
fn too_large(property: &str) -> MeteringError {
    MeteringError::Invalid(ValidationErrors::field(property, "the total is too large to compute"))
}

/// The property as a number, if it is one (see the module's rules).
pub(crate) fn numeric(value: &Value) -> Option<Decimal> {
    match value {
        Value::Number(number) => number_value(number),
        Value::String(text) if is_decimal_text(text) => Decimal::from_str_exact(text).ok(),
        _ => None,
    }
}

fn number_value(number: &Number) -> Option<Decimal> {
    if let Some(n) = number.as_i64() {
        return Some(Decimal::from(n));
    }
    if let Some(n) = number.as_u64() {
        return Some(Decimal::from(n));
    }
    // A fraction: its shortest decimal form (`0.1`, `1e-7`), not the binary float.
    let text = number.to_string();
    Decimal::from_str_exact(&text).or_else(|_| Decimal::from_scientific(&text)).ok()
}

/// `-?[0-9]+(\.[0-9]+)?`
pub(crate) fn is_decimal_text(text: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    match unsigned.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(unsigned),
    }
}

/// A JSON value as `jsonb` equality sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum JsonKey {
    Null,
    Bool(bool),
    Number(Decimal),
    /// A number no `Decimal` holds (`1e300`), by its text.
    HugeNumber(String),
    Text(String),
    Array(Vec<JsonKey>),
    Object(BTreeMap<String, JsonKey>),
}

impl JsonKey {
    fn of(value: &Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(b) => Self::Bool(*b),
            // Decimal compares by value: 1 and 1.0 are one key.
            Value::Number(n) => number_value(n).map_or_else(|| Self::HugeNumber(n.to_string()), Self::Number),
            Value::String(s) => Self::Text(s.clone()),
            Value::Array(items) => Self::Array(items.iter().map(Self::of).collect()),
            Value::Object(map) => Self::Object(map.iter().map(|(k, v)| (k.clone(), Self::of(v))).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::{Map, json};

    use super::*;

    fn t(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, hour, minute, 0).unwrap()
    }

    fn event(id: &str, subject: &str, at: DateTime<Utc>, properties: Value) -> UsageEvent {
        let Value::Object(properties) = properties else { panic!("properties must be an object") };
        UsageEvent {
            id: id.into(),
            subject: subject.into(),
            metric_code: "llm.tokens".into(),
            at,
            properties,
        }
    }

    fn metric(aggregation: Aggregation, filters: Vec<PropertyFilter>) -> BillableMetric {
        BillableMetric {
            id: MetricId::new(),
            code: "llm.tokens".into(),
            name: "Tokens".into(),
            aggregation,
            filters,
            created_at: t(1, 0, 0),
        }
    }

    fn large_only() -> Vec<PropertyFilter> {
        vec![PropertyFilter { property: "model".into(), values: vec![json!("large")] }]
    }

    fn tokens() -> String {
        "tokens".into()
    }

    /// The period is 1 March, 00:00 to 24:00. Of acme's events, e1, e2, e4
    /// and e9 count; e3 is filtered out, e6 and e7 fall outside the period,
    /// e8 is another metric; e4's tokens are not a number and e9 has no user.
    fn events() -> Vec<UsageEvent> {
        let other_metric = UsageEvent {
            metric_code: "api.calls".into(),
            ..event("e8", "acme", t(1, 1, 30), json!({"tokens": 50, "model": "large", "user": "u5"}))
        };
        vec![
            event("e1", "acme", t(1, 1, 0), json!({"tokens": 10, "model": "large", "user": "u1"})),
            event("e2", "acme", t(1, 2, 0), json!({"tokens": "2.5", "model": "large", "user": "u2"})),
            event("e3", "acme", t(1, 3, 0), json!({"tokens": 7, "model": "small", "user": "u3"})),
            event("e4", "acme", t(1, 7, 0), json!({"tokens": "lots", "model": "large", "user": "u1"})),
            event("e5", "globex", t(1, 5, 0), json!({"tokens": 100, "model": "large", "user": "u9"})),
            event("e6", "acme", t(2, 0, 0), json!({"tokens": 1000, "model": "large", "user": "u6"})),
            event(
                "e7",
                "acme",
                Utc.with_ymd_and_hms(2026, 2, 28, 23, 0, 0).unwrap(),
                json!({"tokens": 500, "model": "large", "user": "u7"}),
            ),
            other_metric,
            event("e9", "acme", t(1, 6, 0), json!({"tokens": 4, "model": "large"})),
            event("e10", "initech", t(1, 8, 0), json!({"tokens": 3, "model": "small", "user": "u8"})),
        ]
    }

    fn figure(aggregation: Aggregation, subject: Option<&str>) -> Decimal {
        aggregate(&metric(aggregation, large_only()), &events(), subject, t(1, 0, 0), t(2, 0, 0)).unwrap()
    }

    fn dec(text: &str) -> Decimal {
        Decimal::from_str_exact(text).unwrap()
    }

    #[test]
    fn count_counts_the_matching_events_in_the_period() {
        // acme: e1, e2, e4, e9; all subjects: and globex's e5.
        assert_eq!(figure(Aggregation::Count {}, Some("acme")), dec("4"));
        assert_eq!(figure(Aggregation::Count {}, None), dec("5"));
    }

    #[test]
    fn sum_adds_numbers_and_numeric_strings_and_skips_the_rest() {
        // acme: 10 + "2.5" + 4 = 16.5 (e4's "lots" skipped); all: + 100 = 116.5.
        assert_eq!(figure(Aggregation::Sum { property: tokens() }, Some("acme")), dec("16.5"));
        assert_eq!(figure(Aggregation::Sum { property: tokens() }, None), dec("116.5"));
    }

    #[test]
    fn max_takes_the_greatest_number() {
        // acme: max(10, 2.5, 4) = 10, not e7's 500 (before) or e6's 1000 (at the end); all: 100.
        assert_eq!(figure(Aggregation::Max { property: tokens() }, Some("acme")), dec("10"));
        assert_eq!(figure(Aggregation::Max { property: tokens() }, None), dec("100"));
    }

    #[test]
    fn unique_count_counts_distinct_values_and_skips_missing_ones() {
        // acme: u1 (e1, e4), u2; e9 has none, e3's u3 is filtered out: 2. All: and u9: 3.
        let unique = || Aggregation::UniqueCount { property: "user".into() };
        assert_eq!(figure(unique(), Some("acme")), dec("2"));
        assert_eq!(figure(unique(), None), dec("3"));
    }

    #[test]
    fn latest_takes_the_last_numeric_value() {
        // acme's last event in the period is e4 (07:00), not a number: e9's 4 (06:00).
        assert_eq!(figure(Aggregation::Latest { property: tokens() }, Some("acme")), dec("4"));
        // globex's e5 (05:00, 100) is earlier than e9.
        assert_eq!(figure(Aggregation::Latest { property: tokens() }, None), dec("4"));
        assert_eq!(figure(Aggregation::Latest { property: tokens() }, Some("globex")), dec("100"));
    }

    #[test]
    fn time_weighted_sum_carries_a_level_set_before_the_period_in() {
        // acme: e7's 500 holds 00:00-01:00 = 500; 10 × 1 h (01-02) = 10;
        // 2.5 × 4 h (02-06; e4 is no number, e3 filtered) = 10; 4 × 18 h (06-24) = 72.
        // 500 + 10 + 10 + 72 = 592. globex: 100 × 19 h (05-24) = 1900. All: 2492.
        let weighted = || Aggregation::TimeWeightedSum { property: tokens() };
        assert_eq!(figure(weighted(), Some("acme")), dec("592"));
        assert_eq!(figure(weighted(), Some("globex")), dec("1900"));
        assert_eq!(figure(weighted(), None), dec("2492"));
    }

    #[test]
    fn time_weighted_sum_weighs_each_level_by_the_hours_it_held() {
        // 10 from 00:00, 4 from 06:00; over 03:00-09:00: 10 × 3 + 4 × 3 = 42.
        let seats = |id, at, n: u32| event(id, "acme", at, json!({"seats": n}));
        let events = [seats("a", t(1, 0, 0), 10), seats("b", t(1, 6, 0), 4)];
        let metric = metric(Aggregation::TimeWeightedSum { property: "seats".into() }, vec![]);
        assert_eq!(aggregate(&metric, &events, None, t(1, 3, 0), t(1, 9, 0)).unwrap(), dec("42"));
        // A level set a day before with no event in the period: 3 × 6 h = 18.
        let events = [seats("a", t(1, 0, 0), 3)];
        assert_eq!(aggregate(&metric, &events, None, t(2, 3, 0), t(2, 9, 0)).unwrap(), dec("18"));
        // Only the last level before the period counts: 5 replaced 7, 5 × 2 h = 10.
        let events = [seats("a", t(1, 0, 0), 7), seats("b", t(1, 1, 0), 5)];
        assert_eq!(aggregate(&metric, &events, None, t(1, 2, 0), t(1, 4, 0)).unwrap(), dec("10"));
        // A level first set after the period is nothing.
        let events = [seats("a", t(1, 10, 0), 7)];
        assert_eq!(aggregate(&metric, &events, None, t(1, 2, 0), t(1, 4, 0)).unwrap(), Decimal::ZERO);
    }

    #[test]
    fn time_weighted_sum_rounds_to_six_places_half_away_from_zero() {
        let level = |id, at, n: u32| event(id, "acme", at, json!({"seats": n}));
        let metric = metric(Aggregation::TimeWeightedSum { property: "seats".into() }, vec![]);
        // 1 × 20 min = 0.3333…: 0.333333.
        let events = [level("a", t(1, 0, 0), 1)];
        assert_eq!(aggregate(&metric, &events, None, t(1, 0, 0), t(1, 0, 20)).unwrap(), dec("0.333333"));
        // 1 × 1.8 ms = 0.0000005 h: up to 0.000001 (banker's rounding would give 0).
        let to = t(1, 0, 0) + TimeDelta::microseconds(1800);
        assert_eq!(aggregate(&metric, &events, None, t(1, 0, 0), to).unwrap(), dec("0.000001"));
    }

    #[test]
    fn unique_count_tells_numbers_from_strings() {
        // 1 and 1.0 are one number; "1" is a string, another value; "a" twice
        // is one; null is skipped: 1, "1", "a", true, {"k": 1} = 5.
        let plans = [
            json!(1),
            json!("1"),
            json!(1.0),
            json!("a"),
            json!("a"),
            json!(null),
            json!(true),
            json!({"k": 1}),
            json!({"k": 1.0}),
        ];
        let events: Vec<_> = plans
            .into_iter()
            .enumerate()
            .map(|(i, plan)| event(&format!("e{i}"), "acme", t(1, 1, 0), json!({"plan": plan})))
            .collect();
        let metric = metric(Aggregation::UniqueCount { property: "plan".into() }, vec![]);
        assert_eq!(aggregate(&metric, &events, None, t(1, 0, 0), t(2, 0, 0)).unwrap(), dec("5"));
    }

    #[test]
    fn latest_breaks_a_tie_in_time_by_the_greatest_id() {
        let events = [
            event("b", "acme", t(1, 1, 0), json!({"tokens": 5})),
            event("a", "acme", t(1, 1, 0), json!({"tokens": 9})),
        ];
        let metric = metric(Aggregation::Latest { property: tokens() }, vec![]);
        assert_eq!(aggregate(&metric, &events, None, t(1, 0, 0), t(2, 0, 0)).unwrap(), dec("5"));
    }

    #[test]
    fn every_filter_must_match_and_numbers_match_by_value() {
        let events = [
            event("e1", "acme", t(1, 1, 0), json!({"tokens": 1, "model": "large", "tier": 1})),
            event("e2", "acme", t(1, 1, 0), json!({"tokens": 2, "model": "large", "tier": 1.0})),
            event("e3", "acme", t(1, 1, 0), json!({"tokens": 4, "model": "large", "tier": "1"})),
            event("e4", "acme", t(1, 1, 0), json!({"tokens": 8, "model": "small", "tier": 1})),
            event("e5", "acme", t(1, 1, 0), json!({"tokens": 16, "model": "large"})),
        ];
        let filters = vec![
            PropertyFilter { property: "model".into(), values: vec![json!("large"), json!("medium")] },
            PropertyFilter { property: "tier".into(), values: vec![json!(1)] },
        ];
        // e1 and e2 (1 = 1.0); e3's "1" is a string, e4 is small, e5 has no tier: 1 + 2 = 3.
        let metric = metric(Aggregation::Sum { property: tokens() }, filters);
        assert_eq!(aggregate(&metric, &events, None, t(1, 0, 0), t(2, 0, 0)).unwrap(), dec("3"));
    }

    #[test]
    fn nothing_to_count_is_zero_for_every_aggregation() {
        let property = tokens;
        for aggregation in [
            Aggregation::Count {},
            Aggregation::Sum { property: property() },
            Aggregation::Max { property: property() },
            Aggregation::UniqueCount { property: property() },
            Aggregation::Latest { property: property() },
            Aggregation::TimeWeightedSum { property: property() },
        ] {
            assert_eq!(figure(aggregation.clone(), Some("nobody")), Decimal::ZERO, "{aggregation:?}");
        }
    }

    #[test]
    fn numeric_values_are_numbers_or_plain_decimal_strings() {
        for (value, expected) in [
            (json!(3), Some("3")),
            (json!(-2.25), Some("-2.25")),
            (json!(0.1), Some("0.1")),
            (json!(1e-7), Some("0.0000001")),
            (json!(u64::MAX), Some("18446744073709551615")),
            (json!("12.50"), Some("12.50")),
            (json!("-7"), Some("-7")),
        ] {
            assert_eq!(numeric(&value), expected.map(dec), "{value}");
        }
        for value in [
            json!("1e3"),
            json!("+1"),
            json!(" 1"),
            json!("1."),
            json!(".5"),
            json!("1_000"),
            json!(true),
            json!(null),
            json!([1]),
            json!(1e300),
        ] {
            assert_eq!(numeric(&value), None, "{value}");
        }
    }

    #[test]
    fn a_total_too_large_for_a_decimal_is_refused() {
        let huge = "70000000000000000000000000000";
        let events = [
            event("a", "acme", t(1, 1, 0), json!({"tokens": huge})),
            event("b", "acme", t(1, 2, 0), json!({"tokens": huge})),
        ];
        let metric = metric(Aggregation::Sum { property: tokens() }, vec![]);
        let result = aggregate(&metric, &events, None, t(1, 0, 0), t(2, 0, 0));
        assert!(matches!(result, Err(MeteringError::Invalid(errors)) if errors.fields() == ["tokens"]));
    }

    #[test]
    fn a_period_must_end_after_it_starts() {
        let metric = metric(Aggregation::Count {}, vec![]);
        for (from, to) in [(t(1, 0, 0), t(1, 0, 0)), (t(2, 0, 0), t(1, 0, 0))] {
            assert!(matches!(
                aggregate(&metric, &events(), None, from, to),
                Err(MeteringError::InvalidPeriod(_))
            ));
            assert!(matches!(
                aggregate_by_subject(&metric, &events(), from, to),
                Err(MeteringError::InvalidPeriod(_))
            ));
        }
    }

    #[test]
    fn grouping_by_subject_gives_each_counted_subject_its_figure() {
        let by_subject = |aggregation| {
            aggregate_by_subject(&metric(aggregation, large_only()), &events(), t(1, 0, 0), t(2, 0, 0))
                .unwrap()
        };
        // initech's only event is filtered out: it has no figure.
        let expected = |acme: &str, globex: &str| {
            BTreeMap::from([("acme".to_owned(), dec(acme)), ("globex".to_owned(), dec(globex))])
        };
        assert_eq!(by_subject(Aggregation::Count {}), expected("4", "1"));
        assert_eq!(by_subject(Aggregation::Sum { property: tokens() }), expected("16.5", "100"));
        assert_eq!(by_subject(Aggregation::UniqueCount { property: "user".into() }), expected("2", "1"));
        assert_eq!(by_subject(Aggregation::TimeWeightedSum { property: tokens() }), expected("592", "1900"));
    }

    #[test]
    fn a_subject_holding_a_level_from_before_the_period_is_grouped() {
        let events = [event("a", "acme", t(1, 0, 0), json!({"seats": 2}))];
        let metric = metric(Aggregation::TimeWeightedSum { property: "seats".into() }, vec![]);
        // 2 × 24 h on 2 March.
        let figures = aggregate_by_subject(&metric, &events, t(2, 0, 0), t(3, 0, 0)).unwrap();
        assert_eq!(figures, BTreeMap::from([("acme".to_owned(), dec("48"))]));
    }

    #[test]
    fn a_draft_reads_from_json_and_becomes_a_metric() {
        let draft: MetricDraft = serde_json::from_value(json!({
            "code": "llm.tokens", "name": "Seats",
            "aggregation": {"type": "time_weighted_sum", "property": "seats"},
            "filters": [{"property": "model", "values": ["large", 1]}]
        }))
        .unwrap();
        let id = MetricId::new();
        let metric = draft.validated(id, t(1, 0, 0)).unwrap();
        assert_eq!(metric.aggregation, Aggregation::TimeWeightedSum { property: "seats".into() });
        assert_eq!((metric.id, metric.filters[0].values.len()), (id, 2));
        let stray = serde_json::from_value::<MetricDraft>(
            json!({"code": "calls", "name": "Calls", "aggregation": {"type": "count", "property": "x"}}),
        );
        assert!(stray.is_err(), "a count has no property: {stray:?}");
        let count: MetricDraft = serde_json::from_value(
            json!({"code": "calls", "name": "Calls", "aggregation": {"type": "count"}}),
        )
        .unwrap();
        assert_eq!((count.aggregation, count.filters), (Aggregation::Count {}, vec![]));
        for bad in [
            json!({"code": "calls", "name": "Calls", "aggregation": {"type": "median", "property": "n"}}),
            json!({"code": "calls", "name": "Calls", "aggregation": {"type": "sum"}}),
            json!({"code": "calls", "name": "Calls", "aggregation": {"type": "count"}, "unit": "x"}),
        ] {
            assert!(serde_json::from_value::<MetricDraft>(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bad_draft_is_refused_naming_each_field() {
        let draft = || MetricDraft {
            code: "llm.tokens".into(),
            name: "Tokens".into(),
            aggregation: Aggregation::Sum { property: tokens() },
            filters: large_only(),
        };
        let fields = |draft: MetricDraft| match draft.validated(MetricId::new(), t(1, 0, 0)) {
            Err(MeteringError::Invalid(errors)) => {
                errors.fields().into_iter().map(str::to_owned).collect::<Vec<_>>()
            }
            other => panic!("expected a validation error, got {other:?}"),
        };
        assert!(draft().validated(MetricId::new(), t(1, 0, 0)).is_ok());
        assert_eq!(fields(MetricDraft { code: "LLM".into(), ..draft() }), ["code"]);
        assert_eq!(fields(MetricDraft { name: " ".into(), ..draft() }), ["name"]);
        assert_eq!(fields(MetricDraft { name: String::new(), ..draft() }), ["name"]);
        assert_eq!(
            fields(MetricDraft { aggregation: Aggregation::Max { property: String::new() }, ..draft() }),
            ["aggregation.property"]
        );
        let filter = PropertyFilter { property: "model".into(), values: vec![json!("large")] };
        assert!(
            MetricDraft { filters: vec![filter.clone(); 10], ..draft() }
                .validated(MetricId::new(), t(1, 0, 0))
                .is_ok()
        );
        assert_eq!(fields(MetricDraft { filters: vec![filter; 11], ..draft() }), ["filters"]);
        let no_values = PropertyFilter { property: "model".into(), values: vec![] };
        assert_eq!(fields(MetricDraft { filters: vec![no_values], ..draft() }), ["filters[0].values"]);
    }

    #[test]
    fn objects_are_equal_whatever_their_key_order() {
        let a: Map<String, Value> = serde_json::from_str(r#"{"x": 1, "y": 2}"#).unwrap();
        let b: Map<String, Value> = serde_json::from_str(r#"{"y": 2, "x": 1.0}"#).unwrap();
        assert_eq!(JsonKey::of(&Value::Object(a)), JsonKey::of(&Value::Object(b)));
    }

    #[test]
    fn nul_characters_in_a_metric_are_refused_by_field() {
        let draft = |aggregation: Value, filters: Value| {
            serde_json::from_value::<MetricDraft>(json!({
                "code": "api.calls", "name": "Calls", "aggregation": aggregation, "filters": filters
            }))
            .unwrap()
            .validated(MetricId::new(), Utc::now())
        };
        let refused = draft(json!({"type": "sum", "property": "ms\u{0}"}), json!([]));
        assert!(matches!(refused, Err(MeteringError::Invalid(_))), "{refused:?}");
        let refused = draft(json!({"type": "count"}), json!([{"property": "model", "values": ["a\u{0}"]}]));
        assert!(matches!(refused, Err(MeteringError::Invalid(_))), "{refused:?}");
        assert!(draft(json!({"type": "count"}), json!([{"property": "model", "values": ["large"]}])).is_ok());
    }
}
