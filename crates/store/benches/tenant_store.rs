//! Load driver for the tenant store: throughput and latency of tenant-scoped
//! transactions (BEGIN, set_config, query, COMMIT) against real PostgreSQL.
//! `just bench` runs it; each scenario is bounded in operations.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use portico_kernel::{Actor, PlatformContext, RequestId, TenantContext, UserId};
use portico_store::{PoolConfig, Store};
use portico_tenancy::{CreateTenant, TenantStore, TenantTransition};
use portico_testkit::TestDb;

const OPERATIONS: usize = 20_000;
/// Tenants the bench creates; toggles run in even rounds over them so each
/// scenario leaves every tenant active.
const TENANTS: usize = 64;
const TOGGLES: usize = TENANTS * 80;

fn member(tenant: portico_kernel::TenantId) -> TenantContext {
    TenantContext {
        tenant_id: tenant,
        actor: Actor::User { user_id: UserId::new(), tenant_id: tenant },
        permissions: Default::default(),
        request_id: RequestId::generate(),
        origin: portico_kernel::Origin::default(),
    }
}

/// Runs `operations` calls of `op(worker, n)` (n counts each worker's calls)
/// on `concurrency` workers and prints throughput and latency percentiles.
async fn scenario<F, Fut>(name: &str, concurrency: usize, operations: usize, op: F)
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let op = op.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(operations / concurrency);
            for n in 0..operations / concurrency {
                let t = Instant::now();
                op(worker, n).await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{name:<44} c={concurrency:<3} {:>8.0} ops/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() {
    let db = TestDb::new().await;
    let config = PoolConfig { app_max_size: 16, platform_max_size: 4, ..PoolConfig::default() };
    let store = Arc::new(Store::connect(&db.urls, &config).await.unwrap());
    let mut tenants = Vec::new();
    for i in 0..TENANTS {
        let command: CreateTenant = serde_json::from_value(serde_json::json!({
            "name": format!("Bench {i}"), "slug": format!("bench-{i}"), "contactEmail": "ops@bench.example"
        }))
        .unwrap();
        tenants.push(store.create(&PlatformContext::system("bench"), command).await.unwrap().id);
    }
    let tenants = Arc::new(tenants);

    for concurrency in [1, 16] {
        let (store, tenants) = (store.clone(), tenants.clone());
        scenario("get (scoped read transaction)", concurrency, OPERATIONS, move |worker, n| {
            let (store, tenant) = (store.clone(), tenants[(worker + n * concurrency) % tenants.len()]);
            async move {
                store.get(&member(tenant), tenant).await.unwrap();
            }
        })
        .await;
    }
    for concurrency in [1, 16] {
        let (store, tenants) = (store.clone(), tenants.clone());
        // Each worker owns its own tenants and toggles them suspend/activate:
        // a locked row, an update and an audit row per call.
        scenario("transition (locked update + audit row)", concurrency, TOGGLES, move |worker, n| {
            let owned = tenants.len() / concurrency;
            let (store, tenant) = (store.clone(), tenants[worker + concurrency * (n % owned)]);
            let suspend = (n / owned) % 2 == 0;
            let action = if suspend { TenantTransition::Suspend } else { TenantTransition::Activate };
            async move {
                store.transition(&member(tenant), tenant, action).await.unwrap();
            }
        })
        .await;
    }
}
