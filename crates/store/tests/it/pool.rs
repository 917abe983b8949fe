//! The pools: a connection the server killed is replaced, not handed out again
//! (`Fast` recycling relies on diesel-async noticing the closed client).

use portico_kernel::{DomainError, ErrorKind};
use portico_store::{PoolConfig, Store};
use portico_tenancy::TenantStore;
use portico_testkit::TestDb;

use crate::support::{connect, count, member_of, tenant};

#[tokio::test]
async fn a_connection_killed_by_the_server_is_discarded_and_replaced() {
    let db = TestDb::new().await;
    let config = PoolConfig { app_max_size: 1, platform_max_size: 1, ..PoolConfig::default() };
    let store = Store::connect(&db.urls, &config).await.unwrap();
    let acme = tenant(&store, "acme").await;
    let ctx = member_of(acme.id);
    store.get(&ctx, acme.id).await.unwrap();

    // As a fail-over or an operator would: end every portico_app session of this database.
    let mut admin = connect(db.admin_url()).await;
    let killed = count(
        &mut admin,
        &format!(
            "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
             WHERE datname = '{}' AND usename = 'portico_app'",
            db.name()
        ),
    )
    .await;
    assert_eq!(killed, 1, "the pool's single app connection");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    match store.get(&ctx, acme.id).await {
        Ok(_) => {}
        Err(error) => assert_eq!(error.kind(), ErrorKind::Unavailable, "{error:?}"),
    }
    assert_eq!(
        store.get(&ctx, acme.id).await.unwrap().id,
        acme.id,
        "the next request gets a fresh connection"
    );
    assert!(store.migrations_current().await.unwrap());
}
