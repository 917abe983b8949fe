//! Recurring schedules: one job per slot however many firers, one job for a
//! catch-up after downtime, and stable re-registration.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use portico_kernel::{FixedClock, JobKind, NewJob, Recurrence, ScheduleSpec};
use portico_store::Store;
use portico_testkit::TestDb;
use serde::{Deserialize, Serialize};

use crate::support::{connect, lines, tenant};

#[derive(Serialize, Deserialize)]
struct Report {
    kind: String,
}

impl JobKind for Report {
    const KIND: &'static str = "test.report";
}

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, h, m, 0).unwrap()
}

fn hourly(name: &str) -> ScheduleSpec {
    ScheduleSpec {
        name: name.to_owned(),
        recurrence: Recurrence::parse("0 * * * *", "UTC").unwrap(),
        job: NewJob::of(&Report { kind: "daily".into() }).unwrap(),
    }
}

async fn keys(db: &TestDb) -> Vec<String> {
    let mut conn = connect(&db.urls.platform).await;
    lines(&mut conn, "SELECT tenant_id::text || ' ' || unique_key AS line FROM jobs ORDER BY unique_key")
        .await
}

async fn store_at(db: &TestDb, time: DateTime<Utc>) -> (Store, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::at(time));
    (db.store().await.with_clock(clock.clone()), clock)
}

#[tokio::test]
async fn a_slot_fires_once_however_many_workers_fire_together() {
    let db = TestDb::new().await;
    let (store, clock) = store_at(&db, at(9, 30)).await;
    let acme = tenant(&store, "acme").await;
    store.upsert_schedule(acme.id, hourly("hourly-report")).await.unwrap();
    assert!(store.fire_due_schedules(10).await.unwrap().is_empty(), "not due before 10:00");

    clock.set(at(10, 0) + chrono::TimeDelta::seconds(2));
    let other_worker = store.clone();
    let (first, second) = tokio::join!(store.fire_due_schedules(10), other_worker.fire_due_schedules(10));
    assert_eq!(first.unwrap().len() + second.unwrap().len(), 1);
    assert!(store.fire_due_schedules(10).await.unwrap().is_empty(), "the slot is done");
    assert_eq!(
        keys(&db).await,
        vec![format!("{} schedule:hourly-report:2026-11-23T10:00:00+00:00", acme.id)]
    );

    clock.set(at(11, 0));
    assert_eq!(store.fire_due_schedules(10).await.unwrap().len(), 1, "the next slot fires");
}

#[tokio::test]
async fn a_catch_up_after_downtime_fires_once() {
    let db = TestDb::new().await;
    let (store, clock) = store_at(&db, at(9, 30)).await;
    let acme = tenant(&store, "acme").await;
    store.upsert_schedule(acme.id, hourly("hourly-report")).await.unwrap();

    clock.set(at(15, 20)); // 10:00 to 15:00 were missed
    assert_eq!(store.fire_due_schedules(10).await.unwrap().len(), 1);
    assert_eq!(
        keys(&db).await,
        vec![format!("{} schedule:hourly-report:2026-11-23T15:00:00+00:00", acme.id)]
    );
    assert!(store.fire_due_schedules(10).await.unwrap().is_empty());
    clock.set(at(16, 0));
    assert_eq!(store.fire_due_schedules(10).await.unwrap().len(), 1, "then on schedule again");
}

#[tokio::test]
async fn registering_again_keeps_the_next_firing_and_a_new_expression_moves_it() {
    let db = TestDb::new().await;
    let (store, clock) = store_at(&db, at(9, 30)).await;
    let acme = tenant(&store, "acme").await;
    store.upsert_schedule(acme.id, hourly("report")).await.unwrap();
    clock.set(at(10, 5)); // due since 10:00, not yet fired
    store.upsert_schedule(acme.id, hourly("report")).await.unwrap();
    assert_eq!(store.fire_due_schedules(10).await.unwrap().len(), 1, "re-registering did not skip the slot");

    let mut daily = hourly("report");
    daily.recurrence = Recurrence::parse("0 3 * * *", "Europe/Berlin").unwrap();
    store.upsert_schedule(acme.id, daily).await.unwrap();
    let mut conn = connect(&db.urls.platform).await;
    let next = lines(
        &mut conn,
        "SELECT to_char(next_run_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS line FROM schedules",
    )
    .await;
    assert_eq!(next, vec!["2026-11-24 02:00".to_owned()], "03:00 in Berlin is 02:00 UTC in winter");
}

#[tokio::test]
async fn a_schedule_that_cannot_enqueue_is_disabled_and_the_others_still_fire() {
    use diesel_async::SimpleAsyncConnection;
    let db = TestDb::new().await;
    let (store, clock) = store_at(&db, at(9, 30)).await;
    let acme = tenant(&store, "acme").await;
    let mut broken = hourly("broken");
    broken.job.kind = "test.refused".into();
    store.upsert_schedule(acme.id, broken).await.unwrap();
    store.upsert_schedule(acme.id, hourly("healthy")).await.unwrap();
    // The queue refuses this kind, as a schema change or a bad row would.
    let mut owner = connect(&db.urls.owner).await;
    owner
        .batch_execute("ALTER TABLE jobs ADD CONSTRAINT test_refuse CHECK (kind <> 'test.refused')")
        .await
        .unwrap();

    clock.set(at(10, 0));
    assert_eq!(store.fire_due_schedules(10).await.unwrap().len(), 1, "the healthy schedule fired");
    let mut platform = connect(&db.urls.platform).await;
    let states =
        lines(&mut platform, "SELECT name || ' ' || enabled AS line FROM schedules ORDER BY name").await;
    assert_eq!(states, vec!["broken false", "healthy true"]);

    owner.batch_execute("ALTER TABLE jobs DROP CONSTRAINT test_refuse").await.unwrap();
    let mut fixed = hourly("broken");
    fixed.job.kind = "test.refused".into();
    store.upsert_schedule(acme.id, fixed).await.unwrap();
    clock.set(at(11, 0));
    assert_eq!(store.fire_due_schedules(10).await.unwrap().len(), 2, "registered again, it is back");
}
