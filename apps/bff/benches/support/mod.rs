//! What the load drivers share: a database with the production pools, one
//! tenant, and a token for it.

use portico_bff::auth::TokenKeys;
use portico_kernel::{PlatformContext, UserId};
use portico_store::Store;
use portico_tenancy::{CreateTenant, Tenant, TenantStore};
use portico_testkit::TestDb;

/// The key the drivers' tokens are signed with.
pub const SECRET: &[u8] = b"bench-secret-0123456789abcdef-0123456789";

/// A fresh database, its store with the production default pools (the test
/// harness's are small), and the tenant `bench`.
pub async fn bench_tenant() -> (TestDb, Store, Tenant) {
    let db = TestDb::new().await;
    let store = Store::connect(&db.urls, &portico_store::PoolConfig::default()).await.unwrap();
    let command = CreateTenant {
        name: "Bench".into(),
        slug: "bench".into(),
        contact_email: "ops@bench.example".into(),
        phone: None,
        industry: None,
        metadata: None,
        status: None,
    };
    let tenant = store.create(&PlatformContext::system("bench"), command).await.unwrap();
    (db, store, tenant)
}

/// A token of an owner of `tenant` holding `permissions`, for an hour.
pub fn owner_token(tenant: &Tenant, permissions: &[&str]) -> String {
    TokenKeys::new(SECRET)
        .mint(UserId::new(), "owner@bench.example", "owner", tenant.id, permissions, 3600)
        .unwrap()
}
