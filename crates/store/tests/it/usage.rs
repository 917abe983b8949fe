//! Usage events against real PostgreSQL: each event stored once per
//! `(tenant, event id)` (in a batch, across batches, racing retries), the
//! closed-through grace, and SQL aggregations equal to the pure definition.

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, TimeDelta, TimeZone, Utc};
use portico_kernel::{FixedClock, MetricId};
use portico_metering::{
    Aggregation, BillableMetric, PropertyFilter, UsageEvent, aggregate, aggregate_by_subject,
};
use portico_testkit::TestDb;
use rust_decimal::Decimal;
use serde_json::json;

use crate::support::{connect, count, member_of, tenant};

fn t(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
}

fn event(
    id: &str,
    subject: &str,
    code: &str,
    at: DateTime<Utc>,
    properties: serde_json::Value,
) -> UsageEvent {
    let serde_json::Value::Object(properties) = properties else { panic!("an object") };
    UsageEvent { id: id.into(), subject: subject.into(), metric_code: code.into(), at, properties }
}

fn metric(aggregation: Aggregation, filters: Vec<PropertyFilter>) -> BillableMetric {
    BillableMetric {
        id: MetricId::new(),
        code: "llm.tokens".into(),
        name: "Tokens".into(),
        aggregation,
        filters,
        created_at: t(1, 0),
    }
}

#[tokio::test]
async fn each_event_is_stored_once_and_repeats_are_reported() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await.id;
    let ctx = member_of(acme);
    let batch = vec![
        event("e-1", "cust-1", "api.calls", t(1, 1), json!({})),
        event("e-2", "cust-1", "api.calls", t(1, 2), json!({})),
        event("e-1", "cust-1", "api.calls", t(1, 3), json!({"again": true})),
    ];
    let first = store.ingest_usage(&ctx, batch, TimeDelta::hours(1)).await.unwrap();
    assert_eq!((first.accepted, first.duplicates.as_slice()), (2, ["e-1".to_owned()].as_slice()));
    let again = vec![
        event("e-2", "cust-1", "api.calls", t(1, 2), json!({})),
        event("e-3", "cust-1", "api.calls", t(1, 4), json!({})),
    ];
    let second = store.ingest_usage(&ctx, again, TimeDelta::hours(1)).await.unwrap();
    assert_eq!((second.accepted, second.duplicates.as_slice()), (1, ["e-2".to_owned()].as_slice()));
    let mut conn = connect(&db.urls.platform).await;
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM usage_events").await, 3);
    let kept = "SELECT count(*) AS n FROM usage_events WHERE event_id = 'e-1' AND NOT properties ? 'again'";
    assert_eq!(count(&mut conn, kept).await, 1, "the first of a repeated id is kept");
}

#[tokio::test]
async fn a_retry_racing_the_original_is_counted_once() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await.id;
    let ctx = member_of(acme);
    let batch: Vec<UsageEvent> =
        (0..500).map(|n| event(&format!("e-{n}"), "cust-1", "api.calls", t(1, 1), json!({"n": n}))).collect();
    let (a, b) = tokio::join!(
        store.ingest_usage(&ctx, batch.clone(), TimeDelta::hours(1)),
        store.ingest_usage(&ctx, batch.clone(), TimeDelta::hours(1)),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.accepted + b.accepted, 500, "{a:?} {b:?}");
    assert_eq!(a.duplicates.len() + b.duplicates.len(), 500);
    let mut conn = connect(&db.urls.platform).await;
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM usage_events").await, 500);
}

#[tokio::test]
async fn events_for_closed_usage_are_refused_once_the_grace_is_over() {
    let db = TestDb::new().await;
    let clock = Arc::new(FixedClock::at(t(10, 0)));
    let store = db.store().await.with_clock(clock.clone());
    let acme = tenant(&store, "acme").await.id;
    let ctx = member_of(acme);
    assert!(store.close_usage(&ctx, t(11, 0)).await.is_err(), "not in the future");
    assert_eq!(store.close_usage(&ctx, t(10, 0)).await.unwrap(), t(10, 0));
    assert_eq!(store.close_usage(&ctx, t(9, 0)).await.unwrap(), t(10, 0), "it only moves forward");
    let grace = TimeDelta::hours(2);
    // One hour after the close: late events for the closed period still come in.
    clock.set(t(10, 1));
    let late =
        store.ingest_usage(&ctx, vec![event("late", "c", "api.calls", t(9, 23), json!({}))], grace).await;
    assert_eq!(late.unwrap().accepted, 1);
    // Three hours after: refused, and named; events after the close still come in.
    clock.set(t(10, 3));
    let batch = vec![
        event("too-late", "c", "api.calls", t(9, 23), json!({})),
        event("current", "c", "api.calls", t(10, 2), json!({})),
    ];
    let report = store.ingest_usage(&ctx, batch, grace).await.unwrap();
    assert_eq!((report.accepted, report.closed.as_slice()), (1, ["too-late".to_owned()].as_slice()));
    let mut conn = connect(&db.urls.platform).await;
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM usage_events WHERE event_id = 'too-late'").await,
        0
    );
    // The late event sent again after the grace: it was counted, so it is a duplicate, not refused.
    let again = vec![event("late", "c", "api.calls", t(9, 23), json!({}))];
    let report = store.ingest_usage(&ctx, again, grace).await.unwrap();
    assert_eq!((report.accepted, report.duplicates, report.closed), (0, vec!["late".to_owned()], vec![]));
}

/// One set of events exercising every rule: subjects, a filter, numbers as
/// numbers and as strings, a non-numeric value, events outside the window,
/// a level carried in from before it, and a tie in time.
fn events() -> Vec<UsageEvent> {
    let code = "llm.tokens";
    vec![
        event("a0", "acme", code, t(1, 0), json!({"tokens": 7, "model": "large", "seats": 3})),
        event("a1", "acme", code, t(2, 0), json!({"tokens": 10, "model": "large", "user": "u1", "seats": 5})),
        event(
            "a2",
            "acme",
            code,
            t(2, 6),
            json!({"tokens": "2.5", "model": "large", "user": "u2", "seats": 2}),
        ),
        event("a3", "acme", code, t(2, 6), json!({"tokens": 4, "model": "large", "user": "u1", "seats": 4})),
        event("a4", "acme", code, t(2, 9), json!({"tokens": "many", "model": "large", "user": 1})),
        event(
            "a5",
            "acme",
            code,
            t(2, 10),
            json!({"tokens": 100, "model": "small", "user": "1", "seats": 9}),
        ),
        event("a6", "acme", code, t(3, 0), json!({"tokens": 1, "model": "large"})),
        event(
            "g1",
            "globex",
            code,
            t(2, 1),
            json!({"tokens": 50, "model": "large", "user": "u9", "seats": 1}),
        ),
        event("x1", "acme", "other.metric", t(2, 1), json!({"tokens": 1000, "model": "large"})),
    ]
}

#[tokio::test]
async fn sql_aggregations_equal_the_pure_definition() {
    let db = TestDb::new().await;
    let store = db.store().await.with_clock(Arc::new(FixedClock::at(Utc::now().trunc_subsecs(6))));
    let acme = tenant(&store, "acme").await.id;
    let ctx = member_of(acme);
    let events = events();
    store.ingest_usage(&ctx, events.clone(), TimeDelta::hours(1)).await.unwrap();
    let large = vec![PropertyFilter { property: "model".into(), values: vec![json!("large")] }];
    let aggregations = [
        Aggregation::Count {},
        Aggregation::Sum { property: "tokens".into() },
        Aggregation::Max { property: "tokens".into() },
        Aggregation::UniqueCount { property: "user".into() },
        Aggregation::Latest { property: "tokens".into() },
        Aggregation::TimeWeightedSum { property: "seats".into() },
    ];
    // A whole day (every hour from the rollups), periods that start or end inside an hour
    // (rollups in the middle, events at the edges), and one inside a single hour (events only).
    let minutes = |m| TimeDelta::minutes(m);
    let windows = [
        (t(2, 0), t(3, 0)),
        (t(2, 1), t(2, 9) + minutes(30)),
        (t(2, 0) + TimeDelta::microseconds(1), t(2, 10) + TimeDelta::microseconds(1)),
        (t(2, 5) + minutes(45), t(2, 6) + minutes(1)),
        (t(2, 6) + minutes(1), t(2, 6) + minutes(59)),
    ];
    let mut compared = 0;
    for (from, to) in windows {
        for aggregation in &aggregations {
            for filters in [Vec::new(), large.clone()] {
                let metric = metric(aggregation.clone(), filters.clone());
                for subject in [None, Some("acme"), Some("globex"), Some("nobody")] {
                    let expected = aggregate(&metric, &events, subject, from, to).unwrap();
                    let got = store.aggregate_usage(&ctx, &metric, subject, from, to).await.unwrap();
                    let case =
                        format!("{aggregation:?} filters={filters:?} subject={subject:?} {from}..{to}");
                    assert_eq!(got, expected, "{case}");
                    compared += 1;
                }
                let expected = aggregate_by_subject(&metric, &events, from, to).unwrap();
                let got = store.aggregate_usage_by_subject(&ctx, &metric, from, to).await.unwrap();
                assert_eq!(got, expected, "by subject: {aggregation:?} filters={filters:?} {from}..{to}");
                compared += 1;
            }
        }
    }
    let (from, to) = (t(2, 0), t(3, 0));
    assert_eq!(compared, 300);
    // Spot checks worked by hand (acme, no filter, 2 March):
    let sum = metric(Aggregation::Sum { property: "tokens".into() }, Vec::new());
    // 10 + 2.5 + 4 + 100 ("many" is no number; a0 and a6 are outside the window).
    assert_eq!(
        store.aggregate_usage(&ctx, &sum, Some("acme"), from, to).await.unwrap(),
        Decimal::new(1165, 1)
    );
    let seats = metric(Aggregation::TimeWeightedSum { property: "seats".into() }, Vec::new());
    // 5 for 6 h (00-06), the tie at 06:00 leaves a3's 4 (id after a2) for 4 h (06-10; a4 has no seats),
    // then 9 for 14 h (10-24): 30 + 16 + 126 = 172.
    assert_eq!(
        store.aggregate_usage(&ctx, &seats, Some("acme"), from, to).await.unwrap(),
        Decimal::from(172)
    );

    // Another tenant with the same metric sees none of it.
    let globex = tenant(&store, "globex").await.id;
    let other = member_of(globex);
    let count = metric(Aggregation::Count {}, Vec::new());
    assert_eq!(store.aggregate_usage(&other, &count, None, from, to).await.unwrap(), Decimal::ZERO);
}

/// The rollups as the events say they should be: per metric, hour, subject,
/// the count and each property's numeric sum and maximum, as text to compare.
const ROLLUPS_NOW: &str = "SELECT count(*) AS n FROM usage_rollups";
const ROLLUPS_DIFFER: &str = "WITH kept AS ( \
         SELECT metric_code, hour, subject, events, sums::text AS sums, maxes::text AS maxes FROM usage_rollups), \
     recomputed AS ( \
         SELECT h.metric_code, h.hour, h.subject, h.events, coalesce(n.sums, '{}')::text AS sums, \
                coalesce(n.maxes, '{}')::text AS maxes \
         FROM (SELECT metric_code, date_trunc('hour', at, 'UTC') AS hour, subject, count(*) AS events \
               FROM usage_events GROUP BY 1, 2, 3) h \
         LEFT JOIN (SELECT metric_code, hour, subject, jsonb_object_agg(key, total) AS sums, \
                           jsonb_object_agg(key, top) AS maxes \
                    FROM (SELECT e.metric_code, date_trunc('hour', e.at, 'UTC') AS hour, e.subject, p.key, \
                                 sum(usage_number(p.value)) AS total, max(usage_number(p.value)) AS top \
                          FROM usage_events e CROSS JOIN LATERAL jsonb_each(e.properties) p \
                          WHERE usage_number(p.value) IS NOT NULL GROUP BY 1, 2, 3, 4) k \
                    GROUP BY 1, 2, 3) n USING (metric_code, hour, subject)) \
     SELECT count(*) AS n FROM ((TABLE kept EXCEPT TABLE recomputed) UNION ALL (TABLE recomputed EXCEPT TABLE kept)) d";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_built_batch_by_batch_and_by_racing_batches_equal_the_events() {
    let db = TestDb::new().await;
    let store = db.store().await.with_clock(Arc::new(FixedClock::at(Utc::now().trunc_subsecs(6))));
    let acme = tenant(&store, "acme").await.id;
    let ctx = member_of(acme);
    let grace = TimeDelta::hours(1);
    // One event a batch: every hour's rollup is added to, key by key, by later batches.
    let mut events = events();
    for event in &events {
        store.ingest_usage(&ctx, vec![event.clone()], grace).await.unwrap();
    }
    // Two batches racing over the same hours and subjects, half of their ids shared.
    let racing = |from: usize| -> Vec<UsageEvent> {
        (from..from + 200)
            .map(|n| {
                let at = t(2, 6) + TimeDelta::seconds(i64::try_from(n).unwrap() * 37);
                let subject = if n % 2 == 0 { "acme" } else { "globex" };
                event(
                    &format!("r{n}"),
                    subject,
                    "llm.tokens",
                    at,
                    json!({"tokens": n % 17, "model": "large"}),
                )
            })
            .collect()
    };
    let (left, right) = (racing(0), racing(100));
    let (a, b) = (store.clone(), store.clone());
    let (ctx_a, ctx_b) = (ctx.clone(), ctx.clone());
    let (left_batch, right_batch) = (left.clone(), right.clone());
    let first = tokio::spawn(async move { a.ingest_usage(&ctx_a, left_batch, grace).await });
    let second = tokio::spawn(async move { b.ingest_usage(&ctx_b, right_batch, grace).await });
    let (first, second) = (first.await.unwrap().unwrap(), second.await.unwrap().unwrap());
    assert_eq!(first.accepted + second.accepted, 300, "each of the 300 ids once");
    events.extend(left);
    events.extend(right.into_iter().skip(100));

    let mut conn = connect(&db.urls.platform).await;
    assert!(count(&mut conn, ROLLUPS_NOW).await > 0);
    assert_eq!(count(&mut conn, ROLLUPS_DIFFER).await, 0, "the rollups are the events'");
    let windows = [(t(2, 0), t(3, 0)), (t(2, 6) + TimeDelta::minutes(10), t(2, 8) + TimeDelta::seconds(1))];
    for (from, to) in windows {
        for aggregation in [
            Aggregation::Count {},
            Aggregation::Sum { property: "tokens".into() },
            Aggregation::Max { property: "tokens".into() },
        ] {
            let metric = metric(aggregation, Vec::new());
            for subject in [None, Some("acme"), Some("globex")] {
                let expected = aggregate(&metric, &events, subject, from, to).unwrap();
                let got = store.aggregate_usage(&ctx, &metric, subject, from, to).await.unwrap();
                assert_eq!(got, expected, "{:?} {subject:?} {from}..{to}", metric.aggregation);
            }
        }
    }
}

#[tokio::test]
async fn a_sum_beyond_a_decimal_is_refused_as_too_large_not_failed() {
    let db = TestDb::new().await;
    let store = db.store().await.with_clock(Arc::new(FixedClock::at(Utc::now().trunc_subsecs(6))));
    let ctx = member_of(tenant(&store, "acme").await.id);
    // Each fits a decimal (28 digits); ten of them do not.
    let big = "9000000000000000000000000000";
    let events: Vec<UsageEvent> = (0..10)
        .map(|n| event(&format!("b{n}"), "acme", "llm.tokens", t(2, 1), json!({ "tokens": big })))
        .collect();
    store.ingest_usage(&ctx, events, TimeDelta::hours(1)).await.unwrap();
    let sum = metric(Aggregation::Sum { property: "tokens".into() }, Vec::new());
    let figure = store.aggregate_usage(&ctx, &sum, None, t(2, 0), t(3, 0)).await;
    assert!(matches!(figure, Err(portico_metering::MeteringError::FigureTooLarge)), "{figure:?}");
    let max = metric(Aggregation::Max { property: "tokens".into() }, Vec::new());
    assert_eq!(
        store.aggregate_usage(&ctx, &max, None, t(2, 0), t(3, 0)).await.unwrap(),
        big.parse().unwrap()
    );
}
