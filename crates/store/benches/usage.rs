//! Load driver for usage events through the store: ingestion in batches of
//! 1,000 (one statement each), then one aggregation over 1,000,000 events of
//! one tenant and metric, with a second tenant of equal size in the table.
//! `just bench` runs it. Client and PostgreSQL share this machine's cores.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Shared with the other benches; this one uses only `member`.
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use portico_kernel::{MetricId, PlatformContext, TenantContext};
use portico_metering::{Aggregation, BillableMetric, UsageEvent};
use portico_store::{PoolConfig, Store};
use portico_tenancy::{CreateTenant, TenantStore};
use portico_testkit::TestDb;
use support::member;

/// Events per tenant.
const EVENTS: usize = 1_000_000;
/// Events per batch, as the HTTP route takes them.
const BATCH: usize = 1_000;
/// Batches in flight at once.
const CONCURRENCY: usize = 4;

async fn tenant(store: &Store, slug: &str) -> TenantContext {
    let command: CreateTenant = serde_json::from_value(serde_json::json!({
        "name": slug, "slug": slug, "contactEmail": "ops@bench.example"
    }))
    .unwrap();
    member(store.create(&PlatformContext::system("bench"), command).await.unwrap().id)
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// Batch `b` of a tenant: 1,000 events a second apart, 100 subjects, a token count and a model.
fn batch(b: usize) -> Vec<UsageEvent> {
    (0..BATCH)
        .map(|i| {
            let n = b * BATCH + i;
            let serde_json::Value::Object(properties) =
                serde_json::json!({"tokens": n % 1000, "model": if n.is_multiple_of(3) { "large" } else { "small" }})
            else {
                unreachable!()
            };
            UsageEvent {
                id: format!("evt-{n}"),
                subject: format!("customer-{}", n % 100),
                metric_code: "llm.tokens".into(),
                at: start() + TimeDelta::seconds(i64::try_from(n).unwrap()),
                properties,
            }
        })
        .collect()
}

/// Ingests `EVENTS` events for `ctx` with `CONCURRENCY` batches in flight; events per second.
async fn ingest(store: &Arc<Store>, ctx: &TenantContext) -> f64 {
    let started = Instant::now();
    let batches = EVENTS / BATCH;
    let mut workers = Vec::new();
    for worker in 0..CONCURRENCY {
        let (store, ctx) = (store.clone(), ctx.clone());
        workers.push(tokio::spawn(async move {
            for b in (worker..batches).step_by(CONCURRENCY) {
                let report = store.ingest_usage(&ctx, batch(b), TimeDelta::hours(1)).await.unwrap();
                assert_eq!(report.accepted, BATCH as u64);
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    EVENTS as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let db = TestDb::new().await;
    let config = PoolConfig { app_max_size: 8, platform_max_size: 2, ..PoolConfig::default() };
    let store = Arc::new(Store::connect(&db.urls, &config).await.unwrap());
    let (acme, globex) = (tenant(&store, "acme").await, tenant(&store, "globex").await);
    println!("usage events through the store (2 cores shared by driver and PostgreSQL):");
    for ctx in [&acme, &globex] {
        let rate = ingest(&store, ctx).await;
        println!(
            "ingest {EVENTS} events in batches of {BATCH}, {CONCURRENCY} at once   {rate:>8.0} events/s"
        );
    }
    let whole = (start(), start() + TimeDelta::days(30));
    aggregations(&store, &acme, whole, "as loaded").await;
    // What autovacuum does in time: the visibility map lets count use the index alone.
    let mut owner =
        <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&db.urls.owner)
            .await
            .unwrap();
    diesel_async::SimpleAsyncConnection::batch_execute(&mut owner, "VACUUM ANALYZE usage_events")
        .await
        .unwrap();
    aggregations(&store, &acme, whole, "after VACUUM ANALYZE").await;
}

async fn aggregations(
    store: &Store,
    acme: &TenantContext,
    whole: (DateTime<Utc>, DateTime<Utc>),
    when: &str,
) {
    println!("{when}:");
    for (name, aggregation) in [
        ("count", Aggregation::Count {}),
        ("sum", Aggregation::Sum { property: "tokens".into() }),
        ("unique_count", Aggregation::UniqueCount { property: "model".into() }),
        ("latest", Aggregation::Latest { property: "tokens".into() }),
    ] {
        let metric = BillableMetric {
            id: MetricId::new(),
            code: "llm.tokens".into(),
            name: name.into(),
            aggregation,
            filters: Vec::new(),
            created_at: start(),
        };
        let mut times = Vec::new();
        let mut figure = rust_decimal::Decimal::ZERO;
        for _ in 0..5 {
            let t = Instant::now();
            figure = store.aggregate_usage(acme, &metric, None, whole.0, whole.1).await.unwrap();
            times.push(t.elapsed());
        }
        times.sort_unstable();
        println!(
            "aggregate {name:<13} over {EVENTS} events of one tenant: median {:>8.1} ms (min {:.1} ms) = {figure}",
            times[2].as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
        );
    }
}
