//! The schema's migrations, embedded in the binary and run as the owner role.

use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::sql_types::BigInt;
use diesel::{Connection, RunQueryDsl};
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::StoreError;

/// Every migration under the workspace's `migrations/` directory.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// A digest of the migrations' text: changes whenever any migration does.
pub const MIGRATIONS_DIGEST: &str = env!("PORTICO_MIGRATIONS_DIGEST");

/// Advisory-lock key serialising migration runs on one database ("portico" + 1).
const MIGRATION_LOCK: i64 = 0x706f_7274_6963_6f01;

type SyncConnection = AsyncConnectionWrapper<AsyncPgConnection>;

/// Applies pending migrations as the owner role and returns the versions it
/// applied. Two processes starting together take turns on an advisory lock;
/// the second finds nothing left to do.
pub async fn run_migrations(owner_url: &str) -> Result<Vec<String>, StoreError> {
    with_locked_connection(owner_url, |conn| {
        let applied =
            conn.run_pending_migrations(MIGRATIONS).map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(applied.into_iter().map(|version| version.to_string()).collect())
    })
    .await
}

/// Reverts every applied migration, newest first (for the migration tests
/// and for resetting a development database).
pub async fn revert_all_migrations(owner_url: &str) -> Result<Vec<String>, StoreError> {
    with_locked_connection(owner_url, |conn| {
        let reverted =
            conn.revert_all_migrations(MIGRATIONS).map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(reverted.into_iter().map(|version| version.to_string()).collect())
    })
    .await
}

/// Applies the oldest pending migration and returns its version (`None`
/// when none is pending): for tests that step through migrations one by one.
pub async fn run_next_migration(owner_url: &str) -> Result<Option<String>, StoreError> {
    with_locked_connection(owner_url, |conn| {
        let pending =
            conn.pending_migrations(MIGRATIONS).map_err(|e| StoreError::Migration(e.to_string()))?;
        let Some(next) = pending.iter().min_by_key(|m| m.name().version().to_string()) else {
            return Ok(None);
        };
        let version = conn.run_migration(next).map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(Some(version.to_string()))
    })
    .await
}

/// Reverts the newest applied migration and returns its version.
pub async fn revert_last_migration(owner_url: &str) -> Result<String, StoreError> {
    with_locked_connection(owner_url, |conn| {
        let version =
            conn.revert_last_migration(MIGRATIONS).map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(version.to_string())
    })
    .await
}

/// The versions of the embedded migrations, oldest first.
pub fn embedded_versions() -> Result<Vec<String>, StoreError> {
    let migrations =
        MigrationSource::<Pg>::migrations(&MIGRATIONS).map_err(|e| StoreError::Migration(e.to_string()))?;
    let mut versions: Vec<String> = migrations.iter().map(|m| m.name().version().to_string()).collect();
    versions.sort();
    Ok(versions)
}

/// Diesel's migration harness is synchronous: it runs on a blocking thread
/// through the async connection wrapper (which works on any runtime flavour,
/// unlike `AsyncMigrationHarness`).
async fn with_locked_connection<T: Send + 'static>(
    url: &str,
    work: impl FnOnce(&mut SyncConnection) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = <SyncConnection as Connection>::establish(&url)?;
        diesel::sql_query("SELECT pg_advisory_lock($1)")
            .bind::<BigInt, _>(MIGRATION_LOCK)
            .execute(&mut conn)?;
        let result = work(&mut conn);
        diesel::sql_query("SELECT pg_advisory_unlock($1)")
            .bind::<BigInt, _>(MIGRATION_LOCK)
            .execute(&mut conn)?;
        result
    })
    .await
    .map_err(|e| StoreError::Migration(format!("migration task failed: {e}")))?
}
