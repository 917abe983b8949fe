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
    InfraError, JobError, JobId, NewJob, PLATFORM_TENANT_ID, PlatformContext, TenantContext, TenantId,
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

/// Jobs of one kind in one state.
#[derive(Debug, Clone, PartialEq, QueryableByName, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobCount {
    /// The kind.
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// `queued`, `running`, `succeeded` or `dead`.
    #[diesel(sql_type = Text)]
    pub state: String,
    /// How many.
    #[diesel(sql_type = BigInt)]
    pub jobs: i64,
    /// Of those, how many failed at least once.
    #[diesel(sql_type = BigInt)]
    pub with_errors: i64,
    /// Seconds the longest-waiting due job has waited (queued only).
    #[diesel(sql_type = diesel::sql_types::Double)]
    pub oldest_due_secs: f64,
}

/// Recent time from due to done, by kind.
#[derive(Debug, Clone, PartialEq, QueryableByName, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobLatency {
    /// The kind.
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// Jobs finished in the last five minutes.
    #[diesel(sql_type = BigInt)]
    pub finished: i64,
    /// Their average seconds from due to done.
    #[diesel(sql_type = diesel::sql_types::Double)]
    pub average_secs: f64,
}

/// A dead job, for an operator to look at.
#[derive(Debug, Clone, PartialEq, QueryableByName, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DeadJob {
    /// Its id.
    #[diesel(sql_type = SqlUuid)]
    pub id: uuid::Uuid,
    /// Its tenant.
    #[diesel(sql_type = SqlUuid)]
    pub tenant_id: uuid::Uuid,
    /// Its kind.
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// Tries made.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    /// The last error (PII masked when stored).
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
    /// When it died.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub finished_at: Option<DateTime<Utc>>,
}

/// The state of the queue.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "counts": [{"kind": "jobs.prune", "state": "queued", "jobs": 1, "withErrors": 0, "oldestDueSecs": 12.5}],
    "latency": [{"kind": "jobs.prune", "finished": 3, "averageSecs": 0.8}],
    "dead": [{"id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f", "tenantId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e60",
              "kind": "email.send", "attempts": 5, "lastError": "smtp: 550 mailbox unavailable",
              "finishedAt": "2026-11-23T09:00:00Z"}]
})))]
#[serde(rename_all = "camelCase")]
pub struct JobOverview {
    /// Jobs by kind and state.
    pub counts: Vec<JobCount>,
    /// Recent latency by kind.
    pub latency: Vec<JobLatency>,
    /// The 50 most recent dead jobs.
    pub dead: Vec<DeadJob>,
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
        .map_err(Failure::into_infra)
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
        .map_err(Failure::into_infra)
    }

    /// Records success. `false` when another worker has taken the job over.
    pub async fn complete_job(&self, job: &ClaimedJob) -> Result<bool, InfraError> {
        self.update_claimed(
            job,
            "state = 'succeeded', lease_expires_at = NULL, finished_at = now(), updated_at = now()",
            0,
        )
        .await
    }

    /// Records a failed try: queued again after `retry_in`, or dead when out
    /// of attempts or when `retry_in` is `None` (retrying cannot help).
    pub async fn fail_job(
        &self,
        job: &ClaimedJob,
        error: &str,
        retry_in: Option<Duration>,
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
        let give_up = retry_in.is_none();
        let delay_ms = retry_in.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let outcome: Option<Outcome> = self
            .as_platform(move |conn| {
                Box::pin(async move {
                    let rows: Vec<Outcome> = diesel::sql_query(
                        "UPDATE jobs SET last_error = $4, lease_expires_at = NULL, updated_at = now(), \
                                state = CASE WHEN $6 OR attempts >= max_attempts THEN 'dead' ELSE 'queued' END, \
                                finished_at = CASE WHEN $6 OR attempts >= max_attempts THEN now() END, \
                                run_at = CASE WHEN $6 OR attempts >= max_attempts THEN run_at \
                                              ELSE now() + make_interval(secs => $5::double precision / 1000) END \
                         WHERE tenant_id = $1 AND id = $2 AND state = 'running' AND attempts = $3 \
                         RETURNING state, run_at",
                    )
                    .bind::<SqlUuid, _>(tenant)
                    .bind::<SqlUuid, _>(id)
                    .bind::<Integer, _>(attempts)
                    .bind::<Text, _>(error)
                    .bind::<BigInt, _>(delay_ms)
                    .bind::<diesel::sql_types::Bool, _>(give_up)
                    .load(conn)
                    .await?;
                    Ok(rows.into_iter().next())
                })
            })
            .await
            .map_err(Failure::into_infra)?;
        Ok(match outcome {
            None => FailOutcome::Superseded,
            Some(row) if row.state == "dead" => FailOutcome::Dead,
            Some(row) => FailOutcome::Retrying(row.run_at),
        })
    }

    /// Extends the lease of a job still being run by this worker. `false`
    /// when the job is no longer this worker's.
    pub async fn extend_lease(&self, job: &ClaimedJob, lease: Duration) -> Result<bool, InfraError> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        self.update_claimed(
            job,
            "lease_expires_at = now() + make_interval(secs => $4::double precision / 1000)",
            lease_ms,
        )
        .await
    }

    /// Gives a claimed job back untried (a worker shutting down): queued
    /// again at once, and the try does not count.
    pub async fn release_job(&self, job: &ClaimedJob) -> Result<bool, InfraError> {
        self.update_claimed(
            job,
            "state = 'queued', attempts = attempts - 1, lease_expires_at = NULL, updated_at = now()",
            0,
        )
        .await
    }

    /// `UPDATE jobs SET <set>` on `job` if it is still this worker's try
    /// (running, same attempt); `$4` is `param` for `set` to use (always
    /// referenced, so its type is known when `set` does not use it). `false`
    /// when another worker holds the job now.
    async fn update_claimed(
        &self,
        job: &ClaimedJob,
        set: &'static str,
        param: i64,
    ) -> Result<bool, InfraError> {
        let (tenant, id, attempts) = (job.tenant_id, job.id, job.attempts);
        self.as_platform(move |conn| {
            Box::pin(async move {
                let updated = diesel::sql_query(format!(
                    "UPDATE jobs SET {set} WHERE tenant_id = $1 AND id = $2 AND state = 'running' AND attempts = $3 \
                     AND $4::bigint IS NOT NULL"
                ))
                .bind::<SqlUuid, _>(tenant)
                .bind::<SqlUuid, _>(id)
                .bind::<Integer, _>(attempts)
                .bind::<BigInt, _>(param)
                .execute(conn)
                .await?;
                Ok(updated == 1)
            })
        })
        .await
        .map_err(Failure::into_infra)
    }

    /// The queue across all tenants: counts, latency and recent dead jobs.
    pub async fn job_overview(&self, _ctx: &PlatformContext) -> Result<JobOverview, InfraError> {
        self.as_platform(move |conn| {
            Box::pin(async move {
                let counts: Vec<JobCount> = diesel::sql_query(
                    "SELECT kind, state, count(*)::bigint AS jobs, \
                            count(*) FILTER (WHERE last_error IS NOT NULL)::bigint AS with_errors, \
                            coalesce(extract(epoch FROM now() - min(run_at) FILTER (WHERE state = 'queued' AND run_at <= now())), 0)::float8 \
                              AS oldest_due_secs \
                     FROM jobs GROUP BY kind, state ORDER BY kind, state",
                )
                .load(conn)
                .await?;
                let latency: Vec<JobLatency> = diesel::sql_query(
                    "SELECT kind, count(*)::bigint AS finished, \
                            avg(extract(epoch FROM finished_at - run_at))::float8 AS average_secs \
                     FROM jobs WHERE state = 'succeeded' AND finished_at > now() - interval '5 minutes' \
                     GROUP BY kind ORDER BY kind",
                )
                .load(conn)
                .await?;
                let dead: Vec<DeadJob> = diesel::sql_query(
                    "SELECT id, tenant_id, kind, attempts, last_error, finished_at FROM jobs \
                     WHERE state = 'dead' ORDER BY finished_at DESC NULLS LAST LIMIT 50",
                )
                .load(conn)
                .await?;
                Ok(JobOverview { counts, latency, dead })
            })
        })
        .await
        .map_err(Failure::into_infra)
    }

    /// Queues a dead job again with fresh attempts, audited as `job.retry`
    /// in the job's tenant.
    pub async fn retry_job(&self, ctx: &PlatformContext, id: JobId) -> Result<(), JobError> {
        #[derive(QueryableByName)]
        struct Found {
            #[diesel(sql_type = SqlUuid)]
            tenant_id: uuid::Uuid,
            #[diesel(sql_type = Text)]
            state: String,
        }
        let ctx = ctx.clone();
        let now = self.now();
        self.as_platform(move |conn| {
            Box::pin(async move {
                let found: Vec<Found> = diesel::sql_query("SELECT tenant_id, state FROM jobs WHERE id = $1 FOR UPDATE")
                    .bind::<SqlUuid, _>(id.into_uuid())
                    .load(conn)
                    .await?;
                let found = found.into_iter().next().ok_or(Failure::Domain(JobError::NotFound))?;
                if found.state != "dead" {
                    return Err(Failure::Domain(JobError::NotDead(found.state)));
                }
                diesel::sql_query(
                    "UPDATE jobs SET state = 'queued', attempts = 0, run_at = now(), finished_at = NULL, updated_at = now() \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind::<SqlUuid, _>(found.tenant_id)
                .bind::<SqlUuid, _>(id.into_uuid())
                .execute(conn)
                .await?;
                diesel::sql_query("SELECT pg_notify($1, 'retry')").bind::<Text, _>(JOBS_CHANNEL).execute(conn).await?;
                let entry = portico_kernel::AuditEntry {
                    action: "job.retry",
                    resource_type: "job",
                    resource_id: id.to_string(),
                    changes: serde_json::json!({"state": {"before": "dead", "after": "queued"}}),
                };
                let tenant = TenantId::from_uuid(found.tenant_id);
                crate::audit::record(conn, tenant, (&ctx).into(), &entry, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(|failure| {
            failure.resolve(|error| {
                crate::error::is_unique_violation(error, "jobs_pending_unique_key").then_some(JobError::DuplicatePending)
            })
        })
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
        .map_err(Failure::into_infra)
    }

    /// A connection listening for enqueued jobs (outside the pools).
    pub async fn job_notifications(&self) -> Result<JobNotifications, StoreError> {
        self.listen(JOBS_CHANNEL).await
    }

    /// A dedicated connection (outside the pools) listening on `channel`.
    pub async fn listen(&self, channel: &'static str) -> Result<Notifications, StoreError> {
        let mut conn = AsyncPgConnection::establish(&self.platform_url).await?;
        conn.batch_execute(&format!("LISTEN {channel}")).await?;
        Ok(Notifications { conn, channel })
    }
}

/// Wakes an idle worker when a job is enqueued (on commit).
pub type JobNotifications = Notifications;

/// The notifications of one channel, on a connection of their own.
pub struct Notifications {
    conn: AsyncPgConnection,
    channel: &'static str,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifications").field("channel", &self.channel).finish()
    }
}

impl Notifications {
    /// Whether the connection still answers: one round trip within `timeout`.
    /// A listener that has heard nothing for a while asks, because a
    /// half-open connection would otherwise wait forever in silence.
    pub async fn ping(&mut self, timeout: std::time::Duration) -> bool {
        matches!(tokio::time::timeout(timeout, self.conn.batch_execute("SELECT 1")).await, Ok(Ok(())))
    }

    /// The next notification's payload; `None` when the connection is gone.
    pub async fn next(&mut self) -> Option<String> {
        let stream = self.conn.notifications_stream();
        let mut stream = std::pin::pin!(stream);
        match stream.next().await {
            Some(Ok(notification)) => Some(notification.payload),
            Some(Err(error)) => {
                tracing::warn!(channel = self.channel, error = %infra(error), "notifications failed");
                None
            }
            None => None,
        }
    }
}
