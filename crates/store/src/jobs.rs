//! The job queue on the `jobs` table.
//!
//! Enqueue happens inside the transaction of the change that causes the job
//! ([`enqueue_in`]), so a rolled-back change leaves no job; `pg_notify` wakes
//! idle workers when that transaction commits. Workers claim due jobs (and
//! jobs whose worker's lease ran out) with `FOR UPDATE SKIP LOCKED` on the
//! platform pool, so two workers never take the same job, and report each
//! outcome; a report from a worker whose lease was taken over changes nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Jsonb, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::StreamExt;
use portico_kernel::{
    InfraError, JobId, NewJob, PLATFORM_TENANT_ID, PlatformContext, TenantContext, TenantId,
};

use crate::error::{Failure, infra};
use crate::{Store, StoreError};

/// The channel `pg_notify` wakes workers on.
pub const JOBS_CHANNEL: &str = "portico_jobs";

/// A job a worker has claimed; its lease is held until the worker reports.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct ClaimedJob {
    #[diesel(sql_type = SqlUuid)]
    tenant_id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    /// Its kind (`email.send`).
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// Its payload.
    #[diesel(sql_type = Jsonb)]
    pub payload: serde_json::Value,
    /// This try's number, from 1.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    /// Tries before the job is dead.
    #[diesel(sql_type = Integer)]
    pub max_attempts: i32,
}

impl ClaimedJob {
    /// The tenant whose scope the handler runs in.
    #[must_use]
    pub fn tenant(&self) -> TenantId {
        TenantId::from_uuid(self.tenant_id)
    }

    /// The job's id.
    #[must_use]
    pub fn id(&self) -> JobId {
        JobId::from_uuid(self.id)
    }
}

/// What became of a failed try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Queued again, due at this time.
    Retrying(DateTime<Utc>),
    /// Out of attempts: dead, with its last error.
    Dead,
    /// Another worker holds the job now (this worker's lease ran out).
    Superseded,
}

/// Enqueues `job` for `tenant` on `conn`, inside the caller's transaction
/// (which must be scoped to `tenant`). Returns `None` when a job with the
/// same unique key is already pending in that tenant.
pub async fn enqueue_in(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    job: &NewJob,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Option<JobId>> {
    #[derive(QueryableByName)]
    struct Inserted {
        #[diesel(sql_type = SqlUuid)]
        id: uuid::Uuid,
    }
    let inserted: Vec<Inserted> = diesel::sql_query(
        "INSERT INTO jobs (tenant_id, id, kind, payload, state, priority, run_at, max_attempts, unique_key, \
                           created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $9) \
         ON CONFLICT (tenant_id, unique_key) WHERE unique_key IS NOT NULL AND state IN ('queued', 'running') \
         DO NOTHING RETURNING id",
    )
    .bind::<SqlUuid, _>(tenant.into_uuid())
    .bind::<SqlUuid, _>(job.id.into_uuid())
    .bind::<Text, _>(job.kind.as_ref())
    .bind::<Jsonb, _>(&job.payload)
    .bind::<SmallInt, _>(job.priority)
    .bind::<Timestamptz, _>(job.run_at.unwrap_or(now))
    .bind::<Integer, _>(job.max_attempts)
    .bind::<Nullable<Text>, _>(job.unique_key.as_deref())
    .bind::<Timestamptz, _>(now)
    .load(conn)
    .await?;
    let Some(row) = inserted.into_iter().next() else { return Ok(None) };
    // Delivered when (and only if) the transaction commits.
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<Text, _>(JOBS_CHANNEL)
        .bind::<Text, _>(job.kind.as_ref())
        .execute(conn)
        .await?;
    Ok(Some(JobId::from_uuid(row.id)))
}

fn resolve(failure: Failure<InfraError>) -> InfraError {
    failure.resolve(|_| None)
}

impl Store {
    /// Enqueues `job` in the context's tenant, in a transaction of its own.
    pub async fn enqueue(&self, ctx: &TenantContext, job: NewJob) -> Result<Option<JobId>, InfraError> {
        self.enqueue_for(ctx.tenant_id, job).await
    }

    /// Enqueues a job of the platform's own (sweeps, cleanups) in the platform tenant.
    pub async fn enqueue_platform(
        &self,
        _ctx: &PlatformContext,
        job: NewJob,
    ) -> Result<Option<JobId>, InfraError> {
        self.enqueue_for(PLATFORM_TENANT_ID, job).await
    }

    async fn enqueue_for(&self, tenant: TenantId, job: NewJob) -> Result<Option<JobId>, InfraError> {
        let now = self.now();
        self.in_tenant(tenant, move |conn| {
            Box::pin(async move { Ok(enqueue_in(conn, tenant, &job, now).await?) })
        })
        .await
        .map_err(resolve)
    }

    /// Claims up to `limit` due jobs for `lease`: queued jobs whose time has
    /// come, highest priority first, and running jobs whose lease expired
    /// (their worker died). A job out of attempts whose lease expired is
    /// dead instead. Database time decides, so workers' clocks do not matter.
    pub async fn claim_jobs(&self, limit: i64, lease: Duration) -> Result<Vec<ClaimedJob>, InfraError> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        self.as_platform(move |conn| {
            Box::pin(async move {
                diesel::sql_query(
                    "UPDATE jobs SET state = 'dead', lease_expires_at = NULL, finished_at = now(), updated_at = now(), \
                            last_error = coalesce(last_error || '; ', '') || 'the worker running it stopped answering' \
                     WHERE state = 'running' AND lease_expires_at < now() AND attempts >= max_attempts",
                )
                .execute(conn)
                .await?;
                let claimed: Vec<ClaimedJob> = diesel::sql_query(
                    "UPDATE jobs j SET state = 'running', attempts = j.attempts + 1, updated_at = now(), \
                            lease_expires_at = now() + make_interval(secs => $2::double precision / 1000) \
                     FROM (SELECT tenant_id, id FROM jobs \
                            WHERE (state = 'queued' AND run_at <= now()) \
                               OR (state = 'running' AND lease_expires_at < now()) \
                            ORDER BY priority DESC, run_at \
                            LIMIT $1 FOR UPDATE SKIP LOCKED) due \
                     WHERE j.tenant_id = due.tenant_id AND j.id = due.id \
                     RETURNING j.tenant_id, j.id, j.kind, j.payload, j.attempts, j.max_attempts",
                )
                .bind::<BigInt, _>(limit)
                .bind::<BigInt, _>(lease_ms)
                .load(conn)
                .await?;
                Ok(claimed)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Records success. `false` when another worker has taken the job over.
    pub async fn complete_job(&self, job: &ClaimedJob) -> Result<bool, InfraError> {
        let (tenant, id, attempts) = (job.tenant_id, job.id, job.attempts);
        self.as_platform(move |conn| {
            Box::pin(async move {
                let updated = diesel::sql_query(
                    "UPDATE jobs SET state = 'succeeded', lease_expires_at = NULL, finished_at = now(), updated_at = now() \
                     WHERE tenant_id = $1 AND id = $2 AND state = 'running' AND attempts = $3",
                )
                .bind::<SqlUuid, _>(tenant)
                .bind::<SqlUuid, _>(id)
                .bind::<Integer, _>(attempts)
                .execute(conn)
                .await?;
                Ok(updated == 1)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Records a failed try: queued again after `retry_in`, or dead when out of attempts.
    pub async fn fail_job(
        &self,
        job: &ClaimedJob,
        error: &str,
        retry_in: Duration,
    ) -> Result<FailOutcome, InfraError> {
        #[derive(QueryableByName)]
        struct Outcome {
            #[diesel(sql_type = Text)]
            state: String,
            #[diesel(sql_type = Timestamptz)]
            run_at: DateTime<Utc>,
        }
        let (tenant, id, attempts) = (job.tenant_id, job.id, job.attempts);
        let error: String = portico_kernel::redact::text(error).chars().take(2000).collect();
        let delay_ms = i64::try_from(retry_in.as_millis()).unwrap_or(i64::MAX);
        let outcome: Option<Outcome> = self
            .as_platform(move |conn| {
                Box::pin(async move {
                    let rows: Vec<Outcome> = diesel::sql_query(
                        "UPDATE jobs SET last_error = $4, lease_expires_at = NULL, updated_at = now(), \
                                state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END, \
                                finished_at = CASE WHEN attempts >= max_attempts THEN now() END, \
                                run_at = CASE WHEN attempts >= max_attempts THEN run_at \
                                              ELSE now() + make_interval(secs => $5::double precision / 1000) END \
                         WHERE tenant_id = $1 AND id = $2 AND state = 'running' AND attempts = $3 \
                         RETURNING state, run_at",
                    )
                    .bind::<SqlUuid, _>(tenant)
                    .bind::<SqlUuid, _>(id)
                    .bind::<Integer, _>(attempts)
                    .bind::<Text, _>(error)
                    .bind::<BigInt, _>(delay_ms)
                    .load(conn)
                    .await?;
                    Ok(rows.into_iter().next())
                })
            })
            .await
            .map_err(resolve)?;
        Ok(match outcome {
            None => FailOutcome::Superseded,
            Some(row) if row.state == "dead" => FailOutcome::Dead,
            Some(row) => FailOutcome::Retrying(row.run_at),
        })
    }

    /// Gives a claimed job back untried (a worker shutting down): queued
    /// again at once, and the try does not count.
    pub async fn release_job(&self, job: &ClaimedJob) -> Result<bool, InfraError> {
        let (tenant, id, attempts) = (job.tenant_id, job.id, job.attempts);
        self.as_platform(move |conn| {
            Box::pin(async move {
                let updated = diesel::sql_query(
                    "UPDATE jobs SET state = 'queued', attempts = attempts - 1, lease_expires_at = NULL, updated_at = now() \
                     WHERE tenant_id = $1 AND id = $2 AND state = 'running' AND attempts = $3",
                )
                .bind::<SqlUuid, _>(tenant)
                .bind::<SqlUuid, _>(id)
                .bind::<Integer, _>(attempts)
                .execute(conn)
                .await?;
                Ok(updated == 1)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Deletes succeeded jobs finished more than `succeeded_for` ago and dead
    /// ones finished more than `dead_for` ago (kept longer, to be looked at).
    /// Returns how many were deleted.
    pub async fn prune_jobs(&self, succeeded_for: Duration, dead_for: Duration) -> Result<usize, InfraError> {
        let (succeeded_ms, dead_ms) = (
            i64::try_from(succeeded_for.as_millis()).unwrap_or(i64::MAX),
            i64::try_from(dead_for.as_millis()).unwrap_or(i64::MAX),
        );
        self.as_platform(move |conn| {
            Box::pin(async move {
                Ok(diesel::sql_query(
                    "DELETE FROM jobs WHERE \
                        (state = 'succeeded' AND finished_at < now() - make_interval(secs => $1::double precision / 1000)) \
                     OR (state = 'dead' AND finished_at < now() - make_interval(secs => $2::double precision / 1000))",
                )
                .bind::<BigInt, _>(succeeded_ms)
                .bind::<BigInt, _>(dead_ms)
                .execute(conn)
                .await?)
            })
        })
        .await
        .map_err(resolve)
    }

    /// A connection listening for enqueued jobs (outside the pools).
    pub async fn job_notifications(&self) -> Result<JobNotifications, StoreError> {
        let mut conn = AsyncPgConnection::establish(&self.platform_url).await?;
        conn.batch_execute(&format!("LISTEN {JOBS_CHANNEL}")).await?;
        Ok(JobNotifications { conn })
    }
}

/// Wakes an idle worker when a job is enqueued (on commit).
pub struct JobNotifications {
    conn: AsyncPgConnection,
}

impl std::fmt::Debug for JobNotifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobNotifications")
    }
}

impl JobNotifications {
    /// The next notification's job kind; `None` when the connection is gone.
    pub async fn next(&mut self) -> Option<String> {
        let stream = self.conn.notifications_stream();
        let mut stream = std::pin::pin!(stream);
        match stream.next().await {
            Some(Ok(notification)) => Some(notification.payload),
            Some(Err(error)) => {
                tracing::warn!(error = %infra(error), "job notifications failed");
                None
            }
            None => None,
        }
    }
}
