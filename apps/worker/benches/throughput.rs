//! Load driver: jobs per second through enqueue -> claim -> run -> complete
//! with a no-op handler, for one and for two workers (default settings, 4
//! jobs at once each) on one PostgreSQL. `just bench` runs it; it is bounded
//! in jobs and in time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use portico_kernel::{JobKind, NewJob, PLATFORM_TENANT_ID};
use portico_store::{PoolConfig, Store, enqueue_in};
use portico_testkit::TestDb;
use portico_worker::{Registry, Worker, WorkerConfig};
use serde::{Deserialize, Serialize};

const JOBS: usize = 4000;

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

#[tokio::main]
async fn main() {
    let db = TestDb::new().await;
    let config = PoolConfig { app_max_size: 16, platform_max_size: 16, ..PoolConfig::default() };
    let store = Store::connect(&db.urls, &config).await.unwrap();
    let mut owner = AsyncPgConnection::establish(&db.urls.owner).await.unwrap();

    for workers in [1, 2] {
        owner.batch_execute("DELETE FROM jobs").await.unwrap();
        // Enqueue in one scoped transaction, as a use case would.
        let mut app = AsyncPgConnection::establish(&db.urls.app).await.unwrap();
        app.batch_execute(&format!(
            "BEGIN; SELECT set_config('app.tenant_id', '{PLATFORM_TENANT_ID}', true)"
        ))
        .await
        .unwrap();
        let enqueue_started = Instant::now();
        for _ in 0..JOBS {
            enqueue_in(&mut app, PLATFORM_TENANT_ID, &NewJob::of(&Noop).unwrap(), chrono::Utc::now())
                .await
                .unwrap();
        }
        app.batch_execute("COMMIT").await.unwrap();
        let enqueue_rate = JOBS as f64 / enqueue_started.elapsed().as_secs_f64();

        let (stop, stopped) = tokio::sync::watch::channel(false);
        let started = Instant::now();
        let mut running = Vec::new();
        for _ in 0..workers {
            let registry = Registry::new().on(|_: Noop, _| async { Ok(()) });
            let worker = Worker::new(store.clone(), registry, WorkerConfig::default());
            let mut stopped = stopped.clone();
            running.push(tokio::spawn(worker.run(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })));
        }
        let deadline = started + Duration::from_secs(300);
        while succeeded(&mut owner).await < JOBS as i64 {
            assert!(Instant::now() < deadline, "the bench did not finish in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let elapsed = started.elapsed();
        stop.send(true).unwrap();
        for worker in running {
            worker.await.unwrap();
        }
        println!(
            "workers={workers} jobs={JOBS}: {:>6.0} jobs/s claimed, run and completed ({:.2} s); enqueue {:>6.0} jobs/s",
            JOBS as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64(),
            enqueue_rate
        );
    }
}
