//! The job queue: transactional enqueue, exactly-once claims, retries with
//! growing delays, dead jobs, leases taken back from dead workers.

use std::collections::HashSet;
use std::time::Duration;

use diesel_async::SimpleAsyncConnection;
use portico_kernel::{JobKind, NewJob, PlatformContext};
use portico_store::{FailOutcome, Store, enqueue_in};
use portico_testkit::TestDb;
use serde::{Deserialize, Serialize};

use crate::support::{connect, count, member_of, scope, tenant};

#[derive(Serialize, Deserialize)]
struct Touch {
    n: u32,
}

impl JobKind for Touch {
    const KIND: &'static str = "test.touch";
    const MAX_ATTEMPTS: i32 = 3;
}

fn job(n: u32) -> NewJob {
    NewJob::of(&Touch { n }).unwrap()
}

async fn jobs_in(db: &TestDb, state: &str) -> i64 {
    count(
        &mut connect(&db.urls.platform).await,
        &format!("SELECT count(*) AS n FROM jobs WHERE state = '{state}'"),
    )
    .await
}

#[tokio::test]
async fn a_job_of_a_rolled_back_transaction_never_exists() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    let mut conn = connect(&db.urls.app).await;

    conn.batch_execute("BEGIN").await.unwrap();
    scope(&mut conn, acme.id).await;
    assert!(enqueue_in(&mut conn, acme.id, &job(1), chrono::Utc::now()).await.unwrap().is_some());
    conn.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(store.claim_jobs(10, Duration::from_secs(30)).await.unwrap(), vec![]);
    assert_eq!(jobs_in(&db, "queued").await, 0);

    conn.batch_execute("BEGIN").await.unwrap();
    scope(&mut conn, acme.id).await;
    let id = enqueue_in(&mut conn, acme.id, &job(2), chrono::Utc::now()).await.unwrap().unwrap();
    conn.batch_execute("COMMIT").await.unwrap();
    let claimed = store.claim_jobs(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        claimed.iter().map(|j| (j.id(), j.tenant(), j.attempts)).collect::<Vec<_>>(),
        vec![(id, acme.id, 1)]
    );
}

#[tokio::test]
async fn two_workers_over_a_thousand_jobs_run_each_exactly_once() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    let mut conn = connect(&db.urls.app).await;
    conn.batch_execute("BEGIN").await.unwrap();
    scope(&mut conn, acme.id).await;
    for n in 0..1000 {
        enqueue_in(&mut conn, acme.id, &job(n), chrono::Utc::now()).await.unwrap().unwrap();
    }
    conn.batch_execute("COMMIT").await.unwrap();

    async fn work(store: Store) -> Vec<u32> {
        let mut ran = Vec::new();
        loop {
            let batch = store.claim_jobs(7, Duration::from_secs(60)).await.unwrap();
            if batch.is_empty() {
                return ran;
            }
            for claimed in batch {
                ran.push(serde_json::from_value::<Touch>(claimed.payload.clone()).unwrap().n);
                assert!(store.complete_job(&claimed).await.unwrap());
            }
        }
    }
    let (first, second) = tokio::join!(tokio::spawn(work(store.clone())), tokio::spawn(work(store.clone())));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert!(
        !first.is_empty() && !second.is_empty(),
        "both workers took part: {} / {}",
        first.len(),
        second.len()
    );
    let all: HashSet<u32> = first.iter().chain(&second).copied().collect();
    assert_eq!(first.len() + second.len(), 1000, "no job ran twice");
    assert_eq!(all.len(), 1000, "every job ran");
    assert_eq!(jobs_in(&db, "succeeded").await, 1000);
}

#[tokio::test]
async fn a_failing_job_is_retried_later_each_time_and_then_dead() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    store.enqueue(&member_of(acme.id), job(7)).await.unwrap().unwrap();
    let mut platform = connect(&db.urls.platform).await;

    let mut delays = Vec::new();
    for attempt in 1..=3 {
        let claimed = store.claim_jobs(1, Duration::from_secs(30)).await.unwrap().pop().unwrap();
        assert_eq!(claimed.attempts, attempt);
        let retry_in =
            portico_kernel::retry_delay(attempt, Duration::from_secs(10), Duration::from_secs(3600), 0.5);
        let outcome = store
            .fail_job(&claimed, &format!("try {attempt} failed for bob@acme.example"), Some(retry_in))
            .await
            .unwrap();
        match outcome {
            FailOutcome::Retrying(at) => {
                delays.push((at - chrono::Utc::now()).num_seconds());
                assert!(
                    store.claim_jobs(1, Duration::from_secs(30)).await.unwrap().is_empty(),
                    "not due yet"
                );
                // Let the time pass.
                platform.batch_execute("UPDATE jobs SET run_at = now()").await.unwrap();
            }
            FailOutcome::Dead => assert_eq!(attempt, 3, "dead only after the last attempt"),
            FailOutcome::Superseded => panic!("nobody else holds it"),
        }
    }
    assert_eq!(delays.len(), 2);
    assert!(delays[1] > delays[0] && delays[0] >= 6, "growing delays: {delays:?}");
    assert_eq!(jobs_in(&db, "dead").await, 1);
    let error = crate::support::lines(&mut platform, "SELECT last_error AS line FROM jobs").await;
    assert_eq!(error, vec!["try 3 failed for b***@acme.example".to_owned()], "last error kept, PII masked");
    assert!(store.claim_jobs(1, Duration::from_secs(30)).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_lease_that_runs_out_hands_the_job_to_another_worker() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    store.enqueue(&member_of(acme.id), job(1)).await.unwrap();

    let lost = store.claim_jobs(1, Duration::from_millis(500)).await.unwrap().pop().unwrap();
    assert!(store.claim_jobs(1, Duration::from_secs(30)).await.unwrap().is_empty(), "leased");
    tokio::time::sleep(Duration::from_millis(900)).await;
    let again = store.claim_jobs(1, Duration::from_secs(30)).await.unwrap().pop().unwrap();
    assert_eq!((again.id(), again.attempts), (lost.id(), 2));
    assert!(!store.complete_job(&lost).await.unwrap(), "the first worker's report changes nothing");
    assert_eq!(store.fail_job(&lost, "late", Some(Duration::ZERO)).await.unwrap(), FailOutcome::Superseded);
    assert!(store.complete_job(&again).await.unwrap());
    assert_eq!(jobs_in(&db, "succeeded").await, 1);
}

#[tokio::test]
async fn a_job_out_of_attempts_whose_worker_died_is_dead() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    let mut once = job(1);
    once.max_attempts = 1;
    store.enqueue(&member_of(acme.id), once).await.unwrap();
    store.claim_jobs(1, Duration::from_millis(20)).await.unwrap().pop().unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(store.claim_jobs(1, Duration::from_secs(30)).await.unwrap().is_empty());
    assert_eq!(jobs_in(&db, "dead").await, 1);
}

#[tokio::test]
async fn a_unique_key_admits_one_pending_job_per_tenant() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    let globex = tenant(&store, "globex").await;
    let ctx = member_of(acme.id);
    assert!(store.enqueue(&ctx, job(1).unique("nightly")).await.unwrap().is_some());
    assert!(store.enqueue(&ctx, job(2).unique("nightly")).await.unwrap().is_none(), "already pending");
    assert!(
        store.enqueue(&member_of(globex.id), job(3).unique("nightly")).await.unwrap().is_some(),
        "other tenant"
    );
    for claimed in store.claim_jobs(10, Duration::from_secs(30)).await.unwrap() {
        store.complete_job(&claimed).await.unwrap();
    }
    assert!(store.enqueue(&ctx, job(4).unique("nightly")).await.unwrap().is_some(), "free again once done");
}

#[tokio::test]
async fn released_jobs_are_queued_again_without_using_an_attempt() {
    let db = TestDb::new().await;
    let store = db.store().await;
    store.enqueue_platform(&PlatformContext::system("test"), job(1)).await.unwrap();
    let claimed = store.claim_jobs(1, Duration::from_secs(30)).await.unwrap().pop().unwrap();
    assert_eq!(claimed.tenant(), portico_kernel::PLATFORM_TENANT_ID);
    assert!(store.release_job(&claimed).await.unwrap());
    let again = store.claim_jobs(1, Duration::from_secs(30)).await.unwrap().pop().unwrap();
    assert_eq!((again.id(), again.attempts), (claimed.id(), 1));
}

#[tokio::test]
async fn idle_workers_hear_of_committed_jobs_only() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    let mut listener = store.job_notifications().await.unwrap();
    let mut conn = connect(&db.urls.app).await;
    conn.batch_execute("BEGIN").await.unwrap();
    scope(&mut conn, acme.id).await;
    enqueue_in(&mut conn, acme.id, &job(1), chrono::Utc::now()).await.unwrap();
    conn.batch_execute("ROLLBACK").await.unwrap();
    store.enqueue(&member_of(acme.id), job(2)).await.unwrap();
    let heard = tokio::time::timeout(Duration::from_secs(5), listener.next()).await.unwrap();
    assert_eq!(heard.as_deref(), Some("test.touch"));
    let more = tokio::time::timeout(Duration::from_millis(300), listener.next()).await;
    assert!(more.is_err(), "the rolled-back job woke nobody");
}

#[tokio::test]
async fn pruning_deletes_finished_jobs_past_their_retention_only() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    for n in 0..4 {
        store.enqueue(&member_of(acme.id), job(n)).await.unwrap();
    }
    let mut platform = connect(&db.urls.platform).await;
    platform
        .batch_execute(
            "UPDATE jobs SET state = 'succeeded', finished_at = now() - interval '10 days' WHERE payload->>'n' = '0'; \
             UPDATE jobs SET state = 'succeeded', finished_at = now() - interval '1 day' WHERE payload->>'n' = '1'; \
             UPDATE jobs SET state = 'dead', finished_at = now() - interval '10 days' WHERE payload->>'n' = '2'",
        )
        .await
        .unwrap();
    let day = Duration::from_secs(86_400);
    assert_eq!(store.prune_jobs(day * 7, day * 30).await.unwrap(), 1, "only the old succeeded job");
    let left =
        crate::support::lines(&mut platform, "SELECT payload->>'n' AS line FROM jobs ORDER BY 1").await;
    assert_eq!(left, vec!["1", "2", "3"]);
}

#[tokio::test]
async fn retrying_a_dead_job_while_its_key_is_pending_again_is_a_conflict() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    let mut once = job(1).unique("nightly");
    once.max_attempts = 1;
    let dead = store.enqueue(&member_of(acme.id), once).await.unwrap().unwrap();
    let claimed = store.claim_jobs(1, Duration::from_secs(30)).await.unwrap().pop().unwrap();
    store.fail_job(&claimed, "boom", None).await.unwrap();
    store.enqueue(&member_of(acme.id), job(2).unique("nightly")).await.unwrap().unwrap();
    let error = store.retry_job(&PlatformContext::system("test"), dead).await.unwrap_err();
    assert!(matches!(error, portico_kernel::JobError::DuplicatePending), "{error:?}");
}

#[tokio::test]
async fn a_worker_keeps_its_job_by_extending_the_lease() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    store.enqueue(&member_of(acme.id), job(1)).await.unwrap();
    // Margins wide enough for a loaded machine: renewals every 0.6 s of a 1 s lease.
    let lease = Duration::from_secs(1);
    let mine = store.claim_jobs(1, lease).await.unwrap().pop().unwrap();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(store.extend_lease(&mine, lease).await.unwrap());
        assert!(store.claim_jobs(1, Duration::from_secs(30)).await.unwrap().is_empty(), "still mine");
    }
    assert!(store.complete_job(&mine).await.unwrap());
    assert!(!store.extend_lease(&mine, Duration::from_secs(1)).await.unwrap(), "a finished job has no lease");
}
