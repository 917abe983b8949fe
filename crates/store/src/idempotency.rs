//! Idempotency keys: a retried mutation is answered with the response of its
//! first run instead of running twice.
//!
//! A request claims its key in a short transaction of its own: a row in
//! `in_progress` with a lock token and a lease. The request's effect then
//! runs in one open transaction (a [`Unit`]; every store method the handler
//! calls joins it), and [`Unit::commit`] completes the row with the response
//! in that same transaction. So the effect and the record of its response
//! commit together or not at all: a crash after the commit replays, a crash
//! before it leaves a claim that produced nothing and is taken over once its
//! lease runs out.

use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::{Bytea, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, TransactionManager};
use portico_kernel::{InfraError, TenantId};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::Store;
use crate::error::{Failure, infra, pool_infra};
use crate::store::{BoxFuture, PoolKind};

/// Whose key it is: keys are unique per tenant and principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyScope {
    /// The tenant the request acts on.
    pub tenant: TenantId,
    /// The user or API key that sent it.
    pub principal: uuid::Uuid,
    /// The client's `Idempotency-Key`.
    pub key: String,
}

/// What identifies "the same request": method, path and a hash of the body.
#[must_use]
pub fn fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b"\n");
    hasher.update(path_and_query.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A response as stored for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// The HTTP status.
    pub status: u16,
    /// Its `Content-Type`, if it had a body.
    pub content_type: Option<String>,
    /// The body, byte for byte.
    pub body: Vec<u8>,
}

/// How long a claim and its record last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyTimes {
    /// How long a claim holds its key before another request may take it
    /// over: longer than any request runs.
    pub lease: Duration,
    /// How long a completed response is kept for replay.
    pub retention: Duration,
}

impl Default for IdempotencyTimes {
    fn default() -> Self {
        Self { lease: Duration::from_secs(60), retention: Duration::from_secs(24 * 60 * 60) }
    }
}

/// The outcome of claiming a key.
#[derive(Debug)]
pub enum Claim {
    /// The key is this request's: run it through [`Store::within`] and
    /// finish with [`Unit::commit`] or [`Unit::abandon`].
    Fresh(Unit),
    /// The same request completed before: answer with its response.
    Replay(StoredResponse),
    /// The key was used for another request.
    KeyReused,
    /// The same request is running right now.
    InProgress,
    /// The tenant acted on does not exist, so no key can be kept for it.
    UnknownTenant,
}

/// How a [`Unit`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The effect and the response committed together.
    Committed,
    /// The claim's lease ran out and another request took the key over: this
    /// request's effect was rolled back.
    Superseded,
}

/// One request's open transaction and its claimed key.
#[derive(Clone)]
pub struct Unit {
    inner: Arc<UnitInner>,
}

pub(crate) struct UnitInner {
    store: Store,
    scope: IdempotencyScope,
    token: uuid::Uuid,
    conn: Mutex<UnitConn>,
}

/// The unit's connection: none until the first statement, then one open
/// transaction on one pool, then closed.
enum UnitConn {
    Unopened,
    Open(PoolKind, Box<Object<AsyncPgConnection>>),
    Closed,
}

impl std::fmt::Debug for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unit").field("tenant", &self.inner.scope.tenant).finish_non_exhaustive()
    }
}

#[derive(QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = Text)]
    fingerprint: String,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    lock_token: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<SmallInt>)]
    response_status: Option<i16>,
    #[diesel(sql_type = Nullable<Text>)]
    response_content_type: Option<String>,
    #[diesel(sql_type = Nullable<Bytea>)]
    response_body: Option<Vec<u8>>,
}

/// Rows one statement of the sweep deletes at most.
const PRUNE_BATCH: i64 = 5_000;

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Claims `scope`'s key for a request with `fingerprint`, or says why not.
    /// A completed record past its retention, and a claim past its lease,
    /// count as free.
    pub async fn claim_idempotency_key(
        &self,
        scope: &IdempotencyScope,
        fingerprint: &str,
        times: IdempotencyTimes,
    ) -> Result<Claim, InfraError> {
        let token = uuid::Uuid::now_v7();
        let now = self.now();
        let (scope_copy, fingerprint) = (scope.clone(), fingerprint.to_owned());
        let row = self
            .base()
            .in_tenant(scope.tenant, move |conn| {
                Box::pin(async move {
                    // No row back: the key is held by a live record, read as it stands.
                    let row: Option<KeyRow> = diesel::sql_query(
                        "INSERT INTO idempotency_keys AS k \
                             (tenant_id, principal_id, key, fingerprint, state, lock_token, locked_until, \
                              created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, 'in_progress', $5, \
                                 $6 + make_interval(secs => $7::double precision / 1000), $6, \
                                 $6 + make_interval(secs => $8::double precision / 1000)) \
                         ON CONFLICT (tenant_id, principal_id, key) DO UPDATE SET \
                             fingerprint = EXCLUDED.fingerprint, state = 'in_progress', \
                             lock_token = EXCLUDED.lock_token, locked_until = EXCLUDED.locked_until, \
                             response_status = NULL, response_content_type = NULL, response_body = NULL, \
                             created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at \
                         WHERE k.expires_at <= $6 OR (k.state = 'in_progress' AND k.locked_until <= $6) \
                         RETURNING fingerprint, state, lock_token, response_status, response_content_type, \
                                   response_body",
                    )
                    .bind::<SqlUuid, _>(scope_copy.tenant.into_uuid())
                    .bind::<SqlUuid, _>(scope_copy.principal)
                    .bind::<Text, _>(&scope_copy.key)
                    .bind::<Text, _>(&fingerprint)
                    .bind::<SqlUuid, _>(token)
                    .bind::<Timestamptz, _>(now)
                    .bind::<diesel::sql_types::BigInt, _>(millis(times.lease))
                    .bind::<diesel::sql_types::BigInt, _>(millis(times.retention))
                    .get_result(conn)
                    .await
                    .optional()?;
                    let row = match row {
                        Some(row) => Some(row),
                        // None here: the holder released the key between the two
                        // statements; answered as in progress, a retry claims it.
                        None => diesel::sql_query(
                            "SELECT fingerprint, state, lock_token, response_status, response_content_type, \
                                    response_body \
                             FROM idempotency_keys WHERE tenant_id = $1 AND principal_id = $2 AND key = $3",
                        )
                        .bind::<SqlUuid, _>(scope_copy.tenant.into_uuid())
                        .bind::<SqlUuid, _>(scope_copy.principal)
                        .bind::<Text, _>(&scope_copy.key)
                        .get_result(conn)
                        .await
                        .optional()?,
                    };
                    Ok::<_, Failure<InfraError>>((row, fingerprint))
                })
            })
            .await;
        let (row, fingerprint) = match row {
            Ok((Some(row), fingerprint)) => (row, fingerprint),
            Ok((None, _)) => return Ok(Claim::InProgress),
            Err(Failure::Db(error)) if crate::error::is_foreign_key_violation(&error) => {
                return Ok(Claim::UnknownTenant);
            }
            Err(failure) => return Err(failure.into_infra()),
        };
        Ok(if row.lock_token == Some(token) {
            Claim::Fresh(Unit {
                inner: Arc::new(UnitInner {
                    store: self.base(),
                    scope: scope.clone(),
                    token,
                    conn: Mutex::new(UnitConn::Unopened),
                }),
            })
        } else if row.fingerprint != fingerprint {
            Claim::KeyReused
        } else if row.state == "completed" {
            Claim::Replay(StoredResponse {
                status: row.response_status.and_then(|s| u16::try_from(s).ok()).unwrap_or(500),
                content_type: row.response_content_type,
                body: row.response_body.unwrap_or_default(),
            })
        } else {
            Claim::InProgress
        })
    }

    /// This store with every transaction joining `unit`'s.
    #[must_use]
    pub fn within(&self, unit: &Unit) -> Self {
        self.bound_to(Arc::clone(&unit.inner))
    }

    /// Deletes records past their retention (and claims abandoned that long
    /// ago); returns how many.
    pub async fn prune_idempotency_keys(&self) -> Result<usize, InfraError> {
        let now = self.now();
        // One transaction per batch, so a large backlog never holds one huge transaction's locks.
        let mut deleted = 0;
        loop {
            let batch = self
                .as_platform(move |conn| {
                    Box::pin(async move {
                        Ok(diesel::sql_query(
                            "DELETE FROM idempotency_keys WHERE ctid IN \
                             (SELECT ctid FROM idempotency_keys WHERE expires_at <= $1 LIMIT $2)",
                        )
                        .bind::<Timestamptz, _>(now)
                        .bind::<diesel::sql_types::BigInt, _>(PRUNE_BATCH)
                        .execute(conn)
                        .await?)
                    })
                })
                .await
                .map_err(Failure::into_infra)?;
            deleted += batch;
            if i64::try_from(batch).unwrap_or(i64::MAX) < PRUNE_BATCH {
                return Ok(deleted);
            }
        }
    }
}

impl Unit {
    /// Completes the key with `response` and commits it together with the
    /// request's effect. If the claim was taken over meanwhile, the effect is
    /// rolled back instead.
    pub async fn commit(self, response: &StoredResponse) -> Result<Completion, InfraError> {
        let inner = &self.inner;
        let mut slot = inner.conn.lock().await;
        // A request that wrote nothing still records its response, on the app pool.
        let mut conn = match std::mem::replace(&mut *slot, UnitConn::Closed) {
            UnitConn::Open(_, conn) => *conn,
            UnitConn::Unopened => {
                let mut conn = inner.store.pool(PoolKind::App).get().await.map_err(pool_infra)?;
                begin(&mut conn).await?;
                conn
            }
            UnitConn::Closed => return Err(closed()),
        };
        let completed = complete(&mut conn, inner, response).await;
        match completed {
            Ok(1) => {
                finish(&mut conn, true).await?;
                Ok(Completion::Committed)
            }
            Ok(_) => {
                finish(&mut conn, false).await?;
                Ok(Completion::Superseded)
            }
            Err(error) => {
                // Closed rather than returned to the pool: the server aborts
                // the transaction (and frees its locks) at once.
                discard(conn);
                Err(infra(error))
            }
        }
    }

    /// Rolls the request's effect back and frees the key (a failed request
    /// does not pin it).
    pub async fn abandon(self) -> Result<(), InfraError> {
        let inner = &self.inner;
        {
            let mut slot = inner.conn.lock().await;
            if let UnitConn::Open(_, mut conn) = std::mem::replace(&mut *slot, UnitConn::Closed)
                && let Err(error) = finish(&mut conn, false).await
            {
                discard(*conn);
                return Err(error);
            }
        }
        release(&inner.store, inner.scope.clone(), inner.token).await
    }
}

impl Drop for UnitInner {
    /// A unit dropped unfinished (the client went away and its request was
    /// cancelled): its transaction is discarded with its connection, which
    /// never commits, so the claim can be released at once rather than
    /// holding the key until its lease runs out.
    fn drop(&mut self) {
        match std::mem::replace(self.conn.get_mut(), UnitConn::Closed) {
            UnitConn::Closed => return,
            UnitConn::Unopened => {}
            // Closed rather than returned to the pool with its transaction
            // open: the server aborts it and frees its locks at once.
            UnitConn::Open(_, conn) => discard(*conn),
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (store, scope, token) = (self.store.clone(), self.scope.clone(), self.token);
        runtime.spawn(async move {
            if let Err(error) = release(&store, scope, token).await {
                tracing::warn!(%error, "an abandoned idempotency claim was not released; its lease frees it");
            }
        });
    }
}

/// Deletes the claim of `token` (only while it is still that claim, in progress).
async fn release(store: &Store, scope: IdempotencyScope, token: uuid::Uuid) -> Result<(), InfraError> {
    store
        .in_tenant(scope.tenant, move |conn| {
            Box::pin(async move {
                diesel::sql_query(
                    "DELETE FROM idempotency_keys \
                     WHERE tenant_id = $1 AND principal_id = $2 AND key = $3 AND lock_token = $4 \
                       AND state = 'in_progress'",
                )
                .bind::<SqlUuid, _>(scope.tenant.into_uuid())
                .bind::<SqlUuid, _>(scope.principal)
                .bind::<Text, _>(&scope.key)
                .bind::<SqlUuid, _>(token)
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .await
        .map_err(Failure::into_infra)
}

impl UnitInner {
    /// Runs `work` inside the unit's transaction (in a savepoint, so a failed
    /// step leaves the rest intact), opening it on `kind`'s pool first; a
    /// unit stays on the pool it opened on. `tenant` scopes row-level
    /// security for this step (`None`: no tenant).
    pub(crate) async fn run<R, E, F>(
        &self,
        kind: PoolKind,
        tenant: Option<TenantId>,
        work: F,
    ) -> Result<R, Failure<E>>
    where
        R: Send,
        E: Send,
        F: for<'c> FnOnce(&'c mut AsyncPgConnection) -> BoxFuture<'c, Result<R, Failure<E>>> + Send,
    {
        let mut slot = self.conn.lock().await;
        if matches!(*slot, UnitConn::Unopened) {
            let mut conn = self.store.pool(kind).get().await.map_err(|e| Failure::Infra(pool_infra(e)))?;
            begin(&mut conn).await.map_err(Failure::Infra)?;
            *slot = UnitConn::Open(kind, Box::new(conn));
        }
        let conn = match &mut *slot {
            UnitConn::Open(open_kind, conn) if *open_kind == kind => conn,
            UnitConn::Open(..) => {
                return Err(Failure::Infra(InfraError::internal(
                    "one request's transaction cannot span the app and the platform pool",
                )));
            }
            UnitConn::Unopened | UnitConn::Closed => return Err(Failure::Infra(closed())),
        };
        let scope = tenant.map_or_else(String::new, |t| t.to_string());
        conn.transaction(async move |conn| {
            diesel::sql_query("SELECT set_config('app.tenant_id', $1, true)")
                .bind::<Text, _>(scope)
                .execute(conn)
                .await?;
            work(conn).await
        })
        .await
    }
}

/// Takes a connection out of its pool and closes it.
fn discard(conn: Object<AsyncPgConnection>) {
    drop(Object::take(conn));
}

fn closed() -> InfraError {
    InfraError::internal("the request's transaction has already ended")
}

async fn begin(conn: &mut AsyncPgConnection) -> Result<(), InfraError> {
    <AsyncPgConnection as AsyncConnection>::TransactionManager::begin_transaction(conn).await.map_err(infra)
}

/// Commits (`true`) or rolls back the unit's transaction.
async fn finish(conn: &mut AsyncPgConnection, commit: bool) -> Result<(), InfraError> {
    type Manager = <AsyncPgConnection as AsyncConnection>::TransactionManager;
    if commit { Manager::commit_transaction(conn).await } else { Manager::rollback_transaction(conn).await }
        .map_err(infra)
}

/// Completes the claimed row with the response; the number of rows changed
/// (0 when the claim was taken over).
async fn complete(
    conn: &mut AsyncPgConnection,
    inner: &UnitInner,
    response: &StoredResponse,
) -> diesel::QueryResult<usize> {
    let scope = &inner.scope;
    diesel::sql_query("SELECT set_config('app.tenant_id', $1, true)")
        .bind::<Text, _>(scope.tenant.to_string())
        .execute(conn)
        .await?;
    diesel::sql_query(
        "UPDATE idempotency_keys SET state = 'completed', lock_token = NULL, locked_until = NULL, \
                response_status = $5, response_content_type = $6, response_body = $7 \
         WHERE tenant_id = $1 AND principal_id = $2 AND key = $3 AND lock_token = $4 AND state = 'in_progress'",
    )
    .bind::<SqlUuid, _>(scope.tenant.into_uuid())
    .bind::<SqlUuid, _>(scope.principal)
    .bind::<Text, _>(&scope.key)
    .bind::<SqlUuid, _>(inner.token)
    .bind::<SmallInt, _>(i16::try_from(response.status).unwrap_or(500))
    .bind::<Nullable<Text>, _>(response.content_type.as_deref())
    .bind::<Bytea, _>(&response.body)
    .execute(conn)
    .await
}
