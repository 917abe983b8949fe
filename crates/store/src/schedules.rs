//! Recurring schedules on the `schedules` table.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use portico_kernel::{InfraError, JobId, NewJob, Recurrence, ScheduleSpec, TenantId};

use crate::Store;
use crate::error::Failure;
use crate::jobs::enqueue_in;

impl Store {
    /// Creates or replaces the schedule `spec.name` of `tenant`. Its next
    /// firing is recomputed only when the expression or the zone changed, so
    /// re-registering a schedule at every start never skips or repeats a slot.
    pub async fn upsert_schedule(&self, tenant: TenantId, spec: ScheduleSpec) -> Result<(), InfraError> {
        let now = self.now();
        let next = spec.recurrence.next_after(now);
        self.in_tenant(tenant, move |conn| {
            Box::pin(async move {
                diesel::sql_query(
                    "INSERT INTO schedules (tenant_id, id, name, cron, time_zone, job_kind, payload, max_attempts, \
                                            next_run_at, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
                     ON CONFLICT (tenant_id, name) DO UPDATE SET \
                        next_run_at = CASE WHEN schedules.cron <> EXCLUDED.cron OR schedules.time_zone <> EXCLUDED.time_zone \
                                             OR schedules.next_run_at IS NULL \
                                           THEN EXCLUDED.next_run_at ELSE schedules.next_run_at END, \
                        enabled = true, \
                        cron = EXCLUDED.cron, time_zone = EXCLUDED.time_zone, job_kind = EXCLUDED.job_kind, \
                        payload = EXCLUDED.payload, max_attempts = EXCLUDED.max_attempts, updated_at = EXCLUDED.updated_at",
                )
                .bind::<SqlUuid, _>(tenant.into_uuid())
                .bind::<SqlUuid, _>(uuid::Uuid::now_v7())
                .bind::<Text, _>(&spec.name)
                .bind::<Text, _>(spec.recurrence.expression())
                .bind::<Text, _>(spec.recurrence.zone())
                .bind::<Text, _>(spec.job.kind.as_ref())
                .bind::<Jsonb, _>(&spec.job.payload)
                .bind::<Integer, _>(spec.job.max_attempts)
                .bind::<Nullable<Timestamptz>, _>(next)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                Ok(())
            })
        })
        .await
        .map_err(Failure::into_infra)
    }

    /// Fires every due schedule once (at most `limit`): enqueues its job for
    /// the slot it stands for (one job for a catch-up after downtime) and
    /// moves its next firing past now. Several workers may call this at once:
    /// each schedule row is taken by one of them (`SKIP LOCKED`), and the job's
    /// unique key (schedule and slot) keeps a slot from being enqueued twice.
    /// Returns the jobs enqueued.
    pub async fn fire_due_schedules(&self, limit: i64) -> Result<Vec<JobId>, InfraError> {
        #[derive(QueryableByName)]
        struct Due {
            #[diesel(sql_type = SqlUuid)]
            tenant_id: uuid::Uuid,
            #[diesel(sql_type = SqlUuid)]
            id: uuid::Uuid,
            #[diesel(sql_type = Text)]
            name: String,
            #[diesel(sql_type = Text)]
            cron: String,
            #[diesel(sql_type = Text)]
            time_zone: String,
            #[diesel(sql_type = Text)]
            job_kind: String,
            #[diesel(sql_type = Jsonb)]
            payload: serde_json::Value,
            #[diesel(sql_type = Integer)]
            max_attempts: i32,
            #[diesel(sql_type = Timestamptz)]
            next_run_at: DateTime<Utc>,
        }
        let now = self.now();
        self.as_platform(move |conn| {
            Box::pin(async move {
                let due: Vec<Due> = diesel::sql_query(
                    "SELECT tenant_id, id, name, cron, time_zone, job_kind, payload, max_attempts, next_run_at \
                     FROM schedules WHERE enabled AND next_run_at <= $1 \
                     ORDER BY next_run_at LIMIT $2 FOR UPDATE SKIP LOCKED",
                )
                .bind::<Timestamptz, _>(now)
                .bind::<diesel::sql_types::BigInt, _>(limit)
                .load(conn)
                .await?;
                let mut enqueued = Vec::new();
                for schedule in due {
                    let (next, job) = match Recurrence::parse(&schedule.cron, &schedule.time_zone) {
                        Ok(recurrence) => {
                            let firing = recurrence.fire(schedule.next_run_at, now);
                            let job = NewJob {
                                id: JobId::new(),
                                kind: schedule.job_kind.clone().into(),
                                payload: schedule.payload.clone(),
                                priority: 0,
                                run_at: Some(now),
                                unique_key: Some(format!("schedule:{}:{}", schedule.name, firing.slot.to_rfc3339())),
                                max_attempts: schedule.max_attempts,
                            };
                            (firing.next, Some(job))
                        }
                        Err(error) => {
                            tracing::warn!(schedule = %schedule.name, %error, "schedule cannot be read; disabled");
                            (None, None)
                        }
                    };
                    // Each firing in a savepoint: a schedule whose job cannot be
                    // enqueued is disabled instead of blocking every other one.
                    let mut next = next;
                    if let Some(job) = job {
                        let tenant = TenantId::from_uuid(schedule.tenant_id);
                        let fired = conn
                            .transaction::<_, diesel::result::Error, _>(async |conn| enqueue_in(conn, tenant, &job, now).await)
                            .await;
                        match fired {
                            Ok(Some(id)) => enqueued.push(id),
                            Ok(None) => {}
                            Err(error) => {
                                tracing::warn!(schedule = %schedule.name, error = %crate::error::infra(error), "schedule cannot enqueue; disabled");
                                next = None;
                            }
                        }
                    }
                    diesel::sql_query(
                        "UPDATE schedules SET next_run_at = $3, last_fired_at = $4, updated_at = $4, \
                                enabled = enabled AND $3 IS NOT NULL \
                         WHERE tenant_id = $1 AND id = $2",
                    )
                    .bind::<SqlUuid, _>(schedule.tenant_id)
                    .bind::<SqlUuid, _>(schedule.id)
                    .bind::<Nullable<Timestamptz>, _>(next)
                    .bind::<Timestamptz, _>(now)
                    .execute(conn)
                    .await?;
                }
                Ok(enqueued)
            })
        })
        .await
        .map_err(Failure::into_infra)
    }
}
