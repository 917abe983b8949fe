//! The store: two connection pools and the transactions every port method runs in.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::Text;
use diesel_async::pooled_connection::deadpool::{Hook, HookError, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use portico_kernel::{Clock, InfraError, SystemClock, TenantId};

use crate::error::{Failure, infra, pool_infra};
use crate::idempotency::UnitInner;
use crate::{DatabaseUrls, StoreError, migrations};

/// A boxed, sendable future: what the work of a transaction returns.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Sizes and time limits of the two pools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Connections as `portico_app` (request code).
    pub app_max_size: usize,
    /// Connections as `portico_platform` (cross-tenant work).
    pub platform_max_size: usize,
    /// How long a caller waits for a free connection before failing as unavailable.
    pub wait_timeout: Duration,
    /// How long opening a new connection may take.
    pub create_timeout: Duration,
    /// How long checking a returned connection may take.
    pub recycle_timeout: Duration,
    /// Connections older than this are closed instead of reused, so server
    /// memory is returned and fail-overs are picked up.
    pub max_lifetime: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            app_max_size: 16,
            platform_max_size: 4,
            wait_timeout: Duration::from_secs(5),
            create_timeout: Duration::from_secs(5),
            recycle_timeout: Duration::from_secs(5),
            max_lifetime: Duration::from_secs(30 * 60),
        }
    }
}

/// What a pool is doing right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections open.
    pub size: usize,
    /// Open connections not handed out.
    pub idle: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

/// PostgreSQL behind every store port of every domain.
///
/// Request code runs on the `portico_app` pool, each transaction scoped to
/// one tenant with `set_config('app.tenant_id', …, true)`, so row-level
/// security backs up every query's own tenant filter. The `portico_platform`
/// pool serves only methods that take a `PlatformContext`.
#[derive(Clone)]
pub struct Store {
    app: Pool<AsyncPgConnection>,
    platform: Pool<AsyncPgConnection>,
    /// For connections outside the pools (LISTEN).
    pub(crate) platform_url: String,
    clock: Arc<dyn Clock>,
    /// The request transaction every method joins, when bound with [`Store::within`].
    pub(crate) unit: Option<Arc<UnitInner>>,
}

/// Which pool a transaction runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolKind {
    /// `portico_app`: row-level security applies.
    App,
    /// `portico_platform`: every tenant visible.
    Platform,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("app", &self.app.status())
            .field("platform", &self.platform.status())
            .finish()
    }
}

impl Store {
    /// Builds both pools and opens one connection on each, so a wrong URL or
    /// password fails at start-up rather than at the first request.
    pub async fn connect(urls: &DatabaseUrls, config: &PoolConfig) -> Result<Self, StoreError> {
        let store = Self {
            app: build_pool(&urls.app, config.app_max_size, config)?,
            platform: build_pool(&urls.platform, config.platform_max_size, config)?,
            platform_url: urls.platform.clone(),
            clock: Arc::new(SystemClock),
            unit: None,
        };
        drop(store.app.get().await.map_err(|e| StoreError::Pool(format!("portico_app: {e}")))?);
        drop(store.platform.get().await.map_err(|e| StoreError::Pool(format!("portico_platform: {e}")))?);
        Ok(store)
    }

    /// The same store telling time by `clock` (tests, replays).
    #[must_use]
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        Self { clock, ..self }
    }

    /// This store, not bound to any request transaction.
    pub(crate) fn base(&self) -> Self {
        Self { unit: None, ..self.clone() }
    }

    /// This store with every transaction joining `unit`.
    pub(crate) fn bound_to(&self, unit: Arc<UnitInner>) -> Self {
        Self { unit: Some(unit), ..self.clone() }
    }

    /// The pool of `kind`.
    pub(crate) fn pool(&self, kind: PoolKind) -> &Pool<AsyncPgConnection> {
        match kind {
            PoolKind::App => &self.app,
            PoolKind::Platform => &self.platform,
        }
    }

    /// Now, at the precision PostgreSQL stores (microseconds), so what a
    /// method returns equals what a later read returns.
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        now_of(&*self.clock)
    }

    /// The clock, for work that must read the time later than its start
    /// (after waiting for a lock), and for callers whose times must agree
    /// with the store's (readings pulled from a source).
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// The state of the `portico_app` and `portico_platform` pools.
    #[must_use]
    pub fn pool_status(&self) -> (PoolStatus, PoolStatus) {
        let status = |pool: &Pool<AsyncPgConnection>| {
            let s = pool.status();
            PoolStatus { size: s.size, idle: s.available, waiting: s.waiting }
        };
        (status(&self.app), status(&self.platform))
    }

    /// Readiness: the database answers `portico_app` and every embedded
    /// migration is applied. `Ok(false)` is a schema that is behind (or not
    /// there at all); `Err` is a database that cannot be reached.
    pub async fn migrations_current(&self) -> Result<bool, InfraError> {
        #[derive(diesel::QueryableByName)]
        struct Applied {
            #[diesel(sql_type = Text)]
            version: String,
        }
        #[derive(diesel::QueryableByName)]
        struct Readable {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            readable: bool,
        }
        let expected = migrations::embedded_versions().map_err(InfraError::internal)?;
        let mut conn = self.app.get().await.map_err(pool_infra)?;
        // Before the first migration the table does not exist (or is not yet granted).
        let table: Readable = diesel::sql_query(
            "SELECT coalesce(has_table_privilege(to_regclass('public.__diesel_schema_migrations'), 'SELECT'), false) \
             AS readable",
        )
        .get_result(&mut conn)
        .await
        .map_err(infra)?;
        if !table.readable {
            return Ok(false);
        }
        let applied: Vec<Applied> = diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load(&mut conn)
            .await
            .map_err(infra)?;
        Ok(expected.iter().all(|version| applied.iter().any(|a| &a.version == version)))
    }

    /// Runs `work` in one transaction on the app pool, scoped to `tenant`:
    /// row-level security shows and accepts only that tenant's rows. The
    /// scope is transaction-local, so the pooled connection keeps nothing.
    /// A store bound to a request's unit runs `work` inside that instead.
    pub(crate) async fn in_tenant<R, E, F>(&self, tenant: TenantId, work: F) -> Result<R, Failure<E>>
    where
        R: Send,
        E: Send,
        F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, Result<R, Failure<E>>> + Send,
    {
        if let Some(unit) = &self.unit {
            return unit.run(PoolKind::App, Some(tenant), work).await;
        }
        let mut conn = self.app.get().await.map_err(|e| Failure::Infra(pool_infra(e)))?;
        conn.transaction(async move |conn| {
            diesel::sql_query("SELECT set_config('app.tenant_id', $1, true)")
                .bind::<Text, _>(tenant.to_string())
                .execute(conn)
                .await?;
            work(conn).await
        })
        .await
    }

    /// Runs `work` in one transaction on the app pool with no tenant scope:
    /// no tenant-owned row is visible. For the few lookups that must happen
    /// before a tenant is known, through definer functions that reveal an id.
    pub(crate) async fn in_unscoped<R, E, F>(&self, work: F) -> Result<R, Failure<E>>
    where
        R: Send,
        E: Send,
        F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, Result<R, Failure<E>>> + Send,
    {
        if let Some(unit) = &self.unit {
            return unit.run(PoolKind::App, None, work).await;
        }
        let mut conn = self.app.get().await.map_err(|e| Failure::Infra(pool_infra(e)))?;
        conn.transaction(async move |conn| work(conn).await).await
    }

    /// Runs `work` in one transaction on the platform pool (every tenant visible).
    pub(crate) async fn as_platform<R, E, F>(&self, work: F) -> Result<R, Failure<E>>
    where
        R: Send,
        E: Send,
        F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, Result<R, Failure<E>>> + Send,
    {
        if let Some(unit) = &self.unit {
            return unit.run(PoolKind::Platform, None, work).await;
        }
        let mut conn = self.platform.get().await.map_err(|e| Failure::Infra(pool_infra(e)))?;
        conn.transaction(async move |conn| work(conn).await).await
    }
}

fn build_pool(
    url: &str,
    max_size: usize,
    config: &PoolConfig,
) -> Result<Pool<AsyncPgConnection>, StoreError> {
    // `Fast` recycling skips a `SELECT 1` per checkout. A returned connection
    // is still discarded when it is left in a transaction (a cancelled
    // request) or its server side is gone (diesel-async checks both).
    let mut manager_config = ManagerConfig::default();
    manager_config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, manager_config);
    let max_lifetime = config.max_lifetime;
    Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(config.wait_timeout))
        .create_timeout(Some(config.create_timeout))
        .recycle_timeout(Some(config.recycle_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .pre_recycle(Hook::sync_fn(move |_, metrics| {
            if metrics.age() > max_lifetime {
                Err(HookError::Message("connection reached its maximum lifetime".into()))
            } else {
                Ok(())
            }
        }))
        .build()
        .map_err(|e| StoreError::Pool(e.to_string()))
}

/// `clock`'s time at the precision PostgreSQL stores (microseconds), for
/// work that reads the time inside a transaction (after waiting for a lock).
pub(crate) fn now_of(clock: &dyn Clock) -> chrono::DateTime<chrono::Utc> {
    chrono::SubsecRound::trunc_subsecs(clock.now(), 6)
}
