//! The worker against real PostgreSQL: handlers run once per job in their
//! tenant's scope, failures retry and die, two workers share the queue, and
//! shutdown drains or releases.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use portico_kernel::{Actor, JobKind, NewJob, PlatformContext, RequestId, TenantContext, TenantId};
use portico_store::Store;
use portico_tenancy::TenantStore;
use portico_testkit::TestDb;
use portico_worker::{HandlerError, Registry, Worker, WorkerConfig};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Count {
    n: u32,
}

impl JobKind for Count {
    const KIND: &'static str = "test.count";
    const MAX_ATTEMPTS: i32 = 3;
}

/// How often each payload ran, and in which tenant and as whom.
type Effects = Arc<Mutex<HashMap<u32, Vec<(TenantId, Actor)>>>>;

fn config() -> WorkerConfig {
    WorkerConfig {
        concurrency: 4,
        lease: Duration::from_secs(30),
        poll_interval: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(5),
        retry_base: Duration::from_millis(20),
        retry_cap: Duration::from_millis(80),
    }
}

fn counting(effects: &Effects) -> Registry {
    let effects = effects.clone();
    Registry::new().on(move |job: Count, ctx| {
        let effects = effects.clone();
        async move {
            effects
                .lock()
                .unwrap()
                .entry(job.n)
                .or_default()
                .push((ctx.ctx.tenant_id, ctx.ctx.actor.clone()));
            Ok(())
        }
    })
}

async fn tenant(store: &Store, slug: &str) -> TenantId {
    let command = serde_json::from_value(serde_json::json!({
        "name": slug, "slug": slug, "contactEmail": format!("ops@{slug}.example")
    }))
    .unwrap();
    store.create(&PlatformContext::system("test"), command).await.unwrap().id
}

fn as_tenant(tenant: TenantId) -> TenantContext {
    TenantContext {
        tenant_id: tenant,
        actor: Actor::system("test"),
        permissions: Default::default(),
        request_id: RequestId::generate(),
        origin: portico_kernel::Origin::default(),
    }
}

async fn jobs_in(db: &TestDb, state: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = AsyncPgConnection::establish(&db.urls.platform).await.unwrap();
    diesel::sql_query(format!("SELECT count(*) AS n FROM jobs WHERE state = '{state}'"))
        .get_result::<N>(&mut conn)
        .await
        .unwrap()
        .n
}

/// Waits (bounded) until `n` jobs are in `state`.
async fn until(db: &TestDb, state: &str, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while jobs_in(db, state).await < n {
        assert!(Instant::now() < deadline, "timed out waiting for {n} {state} jobs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_run_once_per_job_in_the_jobs_tenant_as_the_system() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let (acme, globex) = (tenant(&store, "acme").await, tenant(&store, "globex").await);
    for n in 0..20 {
        let owner = if n % 2 == 0 { acme } else { globex };
        store.enqueue(&as_tenant(owner), NewJob::of(&Count { n }).unwrap()).await.unwrap();
    }
    let effects = Effects::default();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(Worker::new(store.clone(), counting(&effects), config()).run(async {
        let _ = stopped.await;
    }));
    until(&db, "succeeded", 20).await;
    stop.send(()).unwrap();
    worker.await.unwrap();

    let effects = effects.lock().unwrap();
    assert_eq!(effects.len(), 20);
    for (n, runs) in effects.iter() {
        assert_eq!(runs.len(), 1, "job {n} ran once");
        let expected = if n % 2 == 0 { acme } else { globex };
        assert_eq!(runs[0].0, expected, "in its own tenant's scope");
        assert_eq!(runs[0].1, Actor::system("job:test.count"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_over_a_thousand_jobs_run_each_exactly_once() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    for n in 0..1000 {
        store.enqueue(&as_tenant(acme), NewJob::of(&Count { n }).unwrap()).await.unwrap();
    }
    let effects = Effects::default();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    let who: Arc<Mutex<HashMap<u32, usize>>> = Arc::default();
    for id in 0..2 {
        let mut stopped = stopped.clone();
        let (effects, who) = (effects.clone(), who.clone());
        let registry = Registry::new().on(move |job: Count, ctx| {
            let (effects, who) = (effects.clone(), who.clone());
            async move {
                effects
                    .lock()
                    .unwrap()
                    .entry(job.n)
                    .or_default()
                    .push((ctx.ctx.tenant_id, ctx.ctx.actor.clone()));
                *who.lock().unwrap().entry(id).or_default() += 1;
                Ok(())
            }
        });
        let worker = Worker::new(store.clone(), registry, config());
        workers.push(tokio::spawn(worker.run(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        })));
    }
    until(&db, "succeeded", 1000).await;
    stop.send(true).unwrap();
    for worker in workers {
        worker.await.unwrap();
    }
    let effects = effects.lock().unwrap();
    assert_eq!(effects.len(), 1000, "every job ran");
    assert!(effects.values().all(|runs| runs.len() == 1), "no job ran twice");
    let who = who.lock().unwrap();
    assert_eq!(who.len(), 2, "both workers took part: {who:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handler_is_retried_later_each_time_then_dead() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    store.enqueue(&as_tenant(acme), NewJob::of(&Count { n: 1 }).unwrap()).await.unwrap();
    let tries = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let recorded = tries.clone();
    let registry = Registry::new().on(move |_: Count, _| {
        let recorded = recorded.clone();
        async move {
            recorded.lock().unwrap().push(Instant::now());
            Err(HandlerError::new("the provider said no"))
        }
    });
    // Delays: after try 1 between 200 and 400 ms, after try 2 between 400 and 800 ms.
    let slow_retries = WorkerConfig {
        poll_interval: Duration::from_millis(20),
        retry_base: Duration::from_millis(400),
        retry_cap: Duration::from_secs(10),
        ..config()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(Worker::new(store.clone(), registry, slow_retries).run(async {
        let _ = stopped.await;
    }));
    until(&db, "dead", 1).await;
    stop.send(()).unwrap();
    worker.await.unwrap();
    let tries = tries.lock().unwrap();
    assert_eq!(tries.len(), 3, "MAX_ATTEMPTS tries");
    let (first, second) = (tries[1] - tries[0], tries[2] - tries[1]);
    assert!(first >= Duration::from_millis(200), "first delay {first:?}");
    assert!(second >= Duration::from_millis(400), "second delay {second:?} grew");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_failed_try_not_a_stuck_job() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    store.enqueue(&as_tenant(acme), NewJob::of(&Count { n: 1 }).unwrap()).await.unwrap();
    let registry = Registry::new().on(|job: Count, _| async move {
        assert!(job.n > 1, "a bug in a handler");
        Ok(())
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(Worker::new(store.clone(), registry, config()).run(async {
        let _ = stopped.await;
    }));
    until(&db, "dead", 1).await;
    stop.send(()).unwrap();
    worker.await.unwrap();
    assert_eq!(jobs_in(&db, "running").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_longer_than_its_lease_still_runs_once_with_two_workers() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    store.enqueue(&as_tenant(acme), NewJob::of(&Count { n: 1 }).unwrap()).await.unwrap();
    let runs = Arc::new(Mutex::new(0));
    let short_lease =
        WorkerConfig { lease: Duration::from_secs(1), poll_interval: Duration::from_millis(50), ..config() };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for _ in 0..2 {
        let runs = runs.clone();
        let registry = Registry::new().on(move |_: Count, _| {
            let runs = runs.clone();
            async move {
                *runs.lock().unwrap() += 1;
                tokio::time::sleep(Duration::from_millis(3000)).await; // three leases long
                Ok(())
            }
        });
        let mut stopped = stopped.clone();
        workers.push(tokio::spawn(Worker::new(store.clone(), registry, short_lease.clone()).run(
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            },
        )));
    }
    until(&db, "succeeded", 1).await;
    stop.send(true).unwrap();
    for worker in workers {
        worker.await.unwrap();
    }
    assert_eq!(*runs.lock().unwrap(), 1, "the lease was renewed, nobody took the job over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_is_woken_by_a_new_job() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    let effects = Effects::default();
    let slow_polling = WorkerConfig { poll_interval: Duration::from_secs(60), ..config() };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(Worker::new(store.clone(), counting(&effects), slow_polling).run(async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(300)).await; // the worker is idle, listening
    let started = Instant::now();
    store.enqueue(&as_tenant(acme), NewJob::of(&Count { n: 1 }).unwrap()).await.unwrap();
    until(&db, "succeeded", 1).await;
    assert!(started.elapsed() < Duration::from_secs(10), "NOTIFY woke it long before the 60 s poll");
    stop.send(()).unwrap();
    worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_quick_jobs_finish_and_releases_slow_ones() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    store.enqueue(&as_tenant(acme), NewJob::of(&Count { n: 1 }).unwrap()).await.unwrap();
    store.enqueue(&as_tenant(acme), NewJob::of(&Count { n: 2 }).unwrap()).await.unwrap();
    let started = Arc::new(tokio::sync::Semaphore::new(0));
    let signal = started.clone();
    let registry = Registry::new().on(move |job: Count, _| {
        let signal = signal.clone();
        async move {
            signal.add_permits(1);
            let pause = if job.n == 1 { Duration::from_millis(100) } else { Duration::from_secs(600) };
            tokio::time::sleep(pause).await;
            Ok(())
        }
    });
    let quick_grace = WorkerConfig { shutdown_grace: Duration::from_millis(1500), ..config() };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(Worker::new(store.clone(), registry, quick_grace).run(async {
        let _ = stopped.await;
    }));
    let _both_running = started.acquire_many(2).await.unwrap();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), worker).await.unwrap().unwrap();
    assert_eq!(jobs_in(&db, "succeeded").await, 1, "the quick job finished within the grace period");
    assert_eq!(jobs_in(&db, "queued").await, 1, "the slow one was released for another worker");
    assert_eq!(jobs_in(&db, "running").await, 0);
    let again = store.claim_jobs(1, Duration::from_secs(30)).await.unwrap().pop().unwrap();
    assert_eq!(again.attempts, 1, "the interrupted try did not count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_schedule_fires_once_with_two_workers_running() {
    let db = TestDb::new().await;
    // Time as the database sees it, so the fired job is due for the claim.
    let now = chrono::Utc::now();
    let clock = Arc::new(portico_kernel::FixedClock::at(now - chrono::TimeDelta::minutes(2)));
    let store = db.store().await.with_clock(clock.clone());
    let acme = tenant(&store, "acme").await;
    let spec = portico_kernel::ScheduleSpec {
        name: "counting".into(),
        recurrence: portico_kernel::Recurrence::parse("* * * * *", "UTC").unwrap(),
        job: NewJob::of(&Count { n: 42 }).unwrap(),
    };
    store.upsert_schedule(acme, spec).await.unwrap();
    clock.set(now);

    let effects = Effects::default();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for _ in 0..2 {
        let mut stopped = stopped.clone();
        let worker = Worker::new(store.clone(), counting(&effects), config());
        workers.push(tokio::spawn(worker.run(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        })));
    }
    until(&db, "succeeded", 1).await;
    tokio::time::sleep(Duration::from_millis(600)).await; // several more rounds of both workers
    stop.send(true).unwrap();
    for worker in workers {
        worker.await.unwrap();
    }
    assert_eq!(effects.lock().unwrap().get(&42).map(Vec::len), Some(1), "one run for the slot");
    assert_eq!(jobs_in(&db, "succeeded").await + jobs_in(&db, "queued").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_is_dead_at_once() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let acme = tenant(&store, "acme").await;
    store.enqueue(&as_tenant(acme), NewJob::of(&Count { n: 1 }).unwrap()).await.unwrap();
    let tries = Arc::new(Mutex::new(0));
    let counted = tries.clone();
    let registry = Registry::new().on(move |_: Count, _| {
        let counted = counted.clone();
        async move {
            *counted.lock().unwrap() += 1;
            Err(HandlerError::permanent("550 no such mailbox"))
        }
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(Worker::new(store.clone(), registry, config()).run(async {
        let _ = stopped.await;
    }));
    until(&db, "dead", 1).await;
    stop.send(()).unwrap();
    worker.await.unwrap();
    assert_eq!(*tries.lock().unwrap(), 1, "no retries for a permanent failure");
}
