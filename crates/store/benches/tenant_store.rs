//! Load driver for the tenant store: throughput and latency of tenant-scoped
//! transactions (BEGIN, set_config, query, COMMIT) against real PostgreSQL.
//! `just bench` runs it; each scenario is bounded in operations.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use portico_kernel::PlatformContext;
use portico_store::{PoolConfig, Store};
use portico_tenancy::{CreateTenant, TenantStore, TenantTransition};
use portico_testkit::TestDb;
use support::{member, scenario};

const OPERATIONS: usize = 20_000;
/// Tenants the bench creates; toggles run in even rounds over them so each
/// scenario leaves every tenant active.
const TENANTS: usize = 64;
const TOGGLES: usize = TENANTS * 80;

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
