//! Load driver: jobs per second end to end (enqueue -> claim -> run ->
//! complete) with a no-op handler, for one and for two workers. A producer
//! enqueues in transactions of 50 while the workers run; the time runs from
//! the first enqueue to the last completion. Each worker runs like a
//! `portico worker` process: its own thread, a current-thread runtime, its
//! own pools (platform pool = concurrency + 2), default settings otherwise.
//! `just bench` runs it; it is bounded in jobs and in time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use portico_kernel::{JobKind, NewJob, PLATFORM_TENANT_ID};
use portico_store::{PoolConfig, Store, enqueue_in};
use portico_testkit::TestDb;
use portico_worker::{Registry, Worker, WorkerConfig};
use serde::{Deserialize, Serialize};

const JOBS: usize = 4000;
const PER_TRANSACTION: usize = 50;

#[derive(Serialize, Deserialize)]
struct Noop;

impl JobKind for Noop {
    const KIND: &'static str = "bench.noop";
}

async fn succeeded(conn: &mut AsyncPgConnection) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT count(*) AS n FROM jobs WHERE state = 'succeeded'")
        .get_result::<N>(conn)
        .await
        .unwrap()
        .n
}

/// A worker on a thread of its own until `stop` turns true.
fn spawn_worker(
    urls: portico_store::DatabaseUrls,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let config = WorkerConfig::default();
            let pools = PoolConfig { platform_max_size: config.concurrency + 2, ..PoolConfig::default() };
            let store = Store::connect(&urls, &pools).await.unwrap();
            let registry = Registry::new().on(|_: Noop, _| async { Ok(()) });
            let mut stop = stop;
            Worker::new(store, registry, config)
                .run(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
        });
    })
}

#[tokio::main]
async fn main() {
    let db = TestDb::new().await;
    let mut owner = AsyncPgConnection::establish(&db.urls.owner).await.unwrap();

    for workers in [1, 2] {
        owner.batch_execute("DELETE FROM jobs").await.unwrap();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let threads: Vec<_> = (0..workers).map(|_| spawn_worker(db.urls.clone(), stopped.clone())).collect();
        tokio::time::sleep(Duration::from_millis(500)).await; // connected and idle

        let started = Instant::now();
        let mut app = AsyncPgConnection::establish(&db.urls.app).await.unwrap();
        for _ in 0..JOBS / PER_TRANSACTION {
            app.batch_execute(&format!(
                "BEGIN; SELECT set_config('app.tenant_id', '{PLATFORM_TENANT_ID}', true)"
            ))
            .await
            .unwrap();
            for _ in 0..PER_TRANSACTION {
                enqueue_in(&mut app, PLATFORM_TENANT_ID, &NewJob::of(&Noop).unwrap(), chrono::Utc::now())
                    .await
                    .unwrap();
            }
            app.batch_execute("COMMIT").await.unwrap();
        }
        let enqueued = started.elapsed();
        let deadline = started + Duration::from_secs(300);
        while succeeded(&mut owner).await < JOBS as i64 {
            assert!(Instant::now() < deadline, "the bench did not finish in time");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let elapsed = started.elapsed();
        stop.send(true).unwrap();
        for thread in threads {
            thread.join().unwrap();
        }
        println!(
            "workers={workers} jobs={JOBS}: {:>5.0} jobs/s end to end ({:.2} s; enqueueing alone took {:.2} s)",
            JOBS as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64(),
            enqueued.as_secs_f64(),
        );
    }
}
