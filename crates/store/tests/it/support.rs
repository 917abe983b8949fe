//! Small builders and raw-SQL helpers shared by the store tests.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use portico_kernel::{
    Actor, PLATFORM_TENANT_ID, PlatformContext, RequestId, TenantContext, TenantId, UserId,
};
use portico_store::Store;
use portico_tenancy::{CreateTenant, Tenant, TenantStore};

/// The platform acting for a test.
pub fn platform() -> PlatformContext {
    PlatformContext::system("test")
}

/// A user of `tenant` acting on it.
pub fn member_of(tenant: TenantId) -> TenantContext {
    TenantContext {
        tenant_id: tenant,
        actor: Actor::User { user_id: UserId::new(), tenant_id: tenant },
        permissions: ["tenants:read", "tenants:write"].into_iter().map(String::from).collect(),
        request_id: RequestId::generate(),
        origin: portico_kernel::Origin::default(),
    }
}

/// Platform staff acting on `tenant` (as through `X-Tenant-ID`).
pub fn staff_on(tenant: TenantId) -> TenantContext {
    TenantContext {
        tenant_id: tenant,
        actor: Actor::User { user_id: UserId::new(), tenant_id: PLATFORM_TENANT_ID },
        permissions: ["platform:tenants:write"].into_iter().map(String::from).collect(),
        request_id: RequestId::generate(),
        origin: portico_kernel::Origin::default(),
    }
}

/// A valid create command for `slug`.
pub fn command(slug: &str) -> CreateTenant {
    serde_json::from_value(serde_json::json!({
        "name": format!("Tenant {slug}"),
        "slug": slug,
        "contactEmail": format!("ops@{slug}.example"),
    }))
    .unwrap()
}

/// Creates a tenant through the store.
pub async fn tenant(store: &Store, slug: &str) -> Tenant {
    store.create(&platform(), command(slug)).await.unwrap()
}

/// A fresh connection to `url`.
pub async fn connect(url: &str) -> AsyncPgConnection {
    AsyncPgConnection::establish(url).await.unwrap()
}

/// Scopes the current transaction of `conn` to `tenant`, as the store does.
pub async fn scope(conn: &mut AsyncPgConnection, tenant: TenantId) {
    diesel::sql_query("SELECT set_config('app.tenant_id', $1, true)")
        .bind::<Text, _>(tenant.to_string())
        .execute(conn)
        .await
        .unwrap();
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The single number `sql` selects as `n`.
pub async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(conn).await.unwrap().n
}

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

/// Every `line` that `sql` selects, in order.
pub async fn lines(conn: &mut AsyncPgConnection, sql: &str) -> Vec<String> {
    diesel::sql_query(sql).load::<Line>(conn).await.unwrap().into_iter().map(|l| l.line).collect()
}

/// Runs `sql` and returns the database's error message (the test expects one).
pub async fn error_of(conn: &mut AsyncPgConnection, sql: &str) -> String {
    match conn.batch_execute(sql).await {
        Ok(()) => panic!("expected `{sql}` to fail"),
        Err(e) => e.to_string(),
    }
}
