//! External meter data sources: their configuration, the sweep that queues
//! a pull for each one due (across tenants), and the recording of a pull:
//! its readings and its cursor in one transaction.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Bool, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_kernel::{
    AuditEntry, InfraError, MeterId, MeterSourceId, NewJob, PlatformContext, TenantContext, TenantId,
};
use portico_metering::{InService, MeterSource, MeteringError, ReadingRules, SourceDraft, in_service_at};

use crate::error::Failure;
use crate::meters::{Counted, OnRefusal, ReadingsAdded, add_checked, audit_readings, successions, text_of};
use crate::{Store, audit, jobs};

type SourceFailure = Failure<MeteringError>;

fn resolve(failure: SourceFailure) -> MeteringError {
    failure.resolve(|_| None)
}

fn corrupt(what: impl std::fmt::Display) -> SourceFailure {
    Failure::Infra(InfraError::internal(format!("stored meter source does not read: {what}")))
}

#[derive(QueryableByName)]
struct SourceRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<Text>)]
    base_url: Option<String>,
    #[diesel(sql_type = Integer)]
    every_minutes: i32,
    #[diesel(sql_type = Jsonb)]
    meters: serde_json::Value,
    #[diesel(sql_type = Nullable<Text>)]
    cursor: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    next_pull_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_pulled_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

const SOURCE_COLUMNS: &str = "id, kind, name, base_url, every_minutes, meters, cursor, next_pull_at, \
                              last_pulled_at, last_error, created_at";

impl SourceRow {
    fn into_source(self) -> Result<MeterSource, SourceFailure> {
        Ok(MeterSource {
            id: MeterSourceId::from_uuid(self.id),
            kind: serde_json::from_value(serde_json::Value::String(self.kind)).map_err(corrupt)?,
            name: self.name,
            base_url: self.base_url,
            every_minutes: u32::try_from(self.every_minutes).map_err(corrupt)?,
            meters: serde_json::from_value(self.meters).map_err(corrupt)?,
            cursor: self.cursor,
            next_pull_at: self.next_pull_at,
            last_pulled_at: self.last_pulled_at,
            last_error: self.last_error,
            created_at: self.created_at,
        })
    }
}

async fn load_source(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    id: MeterSourceId,
    lock: bool,
) -> Result<MeterSource, SourceFailure> {
    let row: Option<SourceRow> = diesel::sql_query(format!(
        "SELECT {SOURCE_COLUMNS} FROM meter_sources WHERE tenant_id = $1 AND id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(id.into_uuid())
    .get_result(conn)
    .await
    .optional()?;
    row.ok_or(Failure::Domain(MeteringError::SourceNotFound))?.into_source()
}

/// The most sources one tenant configures (each is pulled at most every 5 minutes).
const MAX_SOURCES: i64 = 20;

/// Pulls one configured source (a job in the source's tenant).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullSource {
    /// The source.
    pub source_id: MeterSourceId,
}

impl portico_kernel::JobKind for PullSource {
    const KIND: &'static str = "metering.pull_source";
}

/// What a pull brought, ready to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullOutcome {
    /// The source answered: its readings (for the meters it names) and its next cursor.
    Pulled {
        /// The cursor the pull started from.
        from: Option<String>,
        /// The readings, each of one of the tenant's meters.
        readings: Vec<portico_metering::Reading>,
        /// Where the next pull starts.
        cursor: Option<String>,
    },
    /// The source failed; the message is kept on the source for people to see.
    Failed(String),
}

impl Store {
    /// The tenant's meter data sources, by name.
    pub async fn meter_sources(&self, ctx: &TenantContext) -> Result<Vec<MeterSource>, MeteringError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let rows: Vec<SourceRow> = diesel::sql_query(format!(
                    "SELECT {SOURCE_COLUMNS} FROM meter_sources WHERE tenant_id = $1 ORDER BY name, id"
                ))
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .load(conn)
                .await?;
                rows.into_iter().map(SourceRow::into_source).collect()
            })
        })
        .await
        .map_err(resolve)
    }

    /// One meter data source of the tenant.
    pub async fn meter_source(
        &self,
        ctx: &TenantContext,
        id: MeterSourceId,
    ) -> Result<MeterSource, MeteringError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move { load_source(conn, &ctx, id, false).await })
        })
        .await
        .map_err(resolve)
    }

    /// Configures a meter data source; it is first pulled at the next sweep.
    pub async fn create_meter_source(
        &self,
        ctx: &TenantContext,
        draft: SourceDraft,
    ) -> Result<MeterSource, MeteringError> {
        let (ctx, now) = (ctx.clone(), self.now());
        let source = draft.validated(MeterSourceId::new(), now)?;
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                #[derive(QueryableByName)]
                struct Known {
                    #[diesel(sql_type = SqlUuid)]
                    id: uuid::Uuid,
                }
                let configured: Counted =
                    diesel::sql_query("SELECT count(*) AS total FROM meter_sources WHERE tenant_id = $1")
                        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                        .get_result(conn)
                        .await?;
                if configured.total >= MAX_SOURCES {
                    return Err(Failure::Domain(MeteringError::TooManySources(MAX_SOURCES.unsigned_abs())));
                }
                let named: Vec<uuid::Uuid> = source.meters.values().map(|m| m.into_uuid()).collect();
                let known: Vec<Known> =
                    diesel::sql_query("SELECT id FROM meters WHERE tenant_id = $1 AND id = ANY($2)")
                        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                        .bind::<Array<SqlUuid>, _>(&named)
                        .load(conn)
                        .await?;
                if let Some((name, _)) =
                    source.meters.iter().find(|(_, meter)| !known.iter().any(|k| k.id == meter.into_uuid()))
                {
                    return Err(Failure::Domain(MeteringError::Invalid(
                        portico_kernel::ValidationErrors::field(
                            format!("meters.{name}"),
                            "no such meter in this tenant",
                        ),
                    )));
                }
                let meters = serde_json::to_value(&source.meters)
                    .map_err(|e| Failure::Infra(InfraError::internal(e)))?;
                diesel::sql_query(
                    "INSERT INTO meter_sources (tenant_id, id, kind, name, base_url, every_minutes, meters, \
                         next_pull_at, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8)",
                )
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<SqlUuid, _>(source.id.into_uuid())
                .bind::<Text, _>(text_of(&source.kind))
                .bind::<Text, _>(&source.name)
                .bind::<Nullable<Text>, _>(source.base_url.as_deref())
                .bind::<Integer, _>(i32::try_from(source.every_minutes).unwrap_or(1440))
                .bind::<Jsonb, _>(meters)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                let entry = AuditEntry::between(
                    "metering.source.create",
                    "meter_source",
                    source.id,
                    None,
                    Some(&source),
                );
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(source)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Removes a meter data source (the readings it brought stay).
    pub async fn delete_meter_source(
        &self,
        ctx: &TenantContext,
        id: MeterSourceId,
    ) -> Result<(), MeteringError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_source(conn, &ctx, id, true).await?;
                diesel::sql_query("DELETE FROM meter_sources WHERE tenant_id = $1 AND id = $2")
                    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                    .bind::<SqlUuid, _>(id.into_uuid())
                    .execute(conn)
                    .await?;
                let entry =
                    AuditEntry::between("metering.source.delete", "meter_source", id, Some(&before), None);
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }

    /// Queues a `metering.pull_source` job in its tenant for each source due
    /// (at most `limit`) of a tenant in service (active or on trial, not
    /// deleted), and moves each one's next pull on by its interval: several
    /// sweeps at once queue each pull once. Returns how many were queued.
    pub async fn queue_due_pulls(&self, _ctx: &PlatformContext, limit: i64) -> Result<u64, InfraError> {
        let now = self.now();
        self.as_platform(move |conn| {
            Box::pin(async move {
                #[derive(QueryableByName)]
                struct Due {
                    #[diesel(sql_type = SqlUuid)]
                    tenant_id: uuid::Uuid,
                    #[diesel(sql_type = SqlUuid)]
                    id: uuid::Uuid,
                    #[diesel(sql_type = Timestamptz)]
                    due_at: DateTime<Utc>,
                }
                let due: Vec<Due> = diesel::sql_query(
                    "WITH due AS ( \
                         SELECT s.tenant_id, s.id, s.next_pull_at FROM meter_sources s \
                         JOIN tenants t ON t.id = s.tenant_id AND t.status IN ('active', 'trial') AND t.deleted_at IS NULL \
                         WHERE s.next_pull_at <= $1 \
                         ORDER BY s.next_pull_at LIMIT $2 FOR UPDATE OF s SKIP LOCKED) \
                     UPDATE meter_sources s \
                        SET next_pull_at = $1 + make_interval(mins => s.every_minutes) \
                       FROM due WHERE s.tenant_id = due.tenant_id AND s.id = due.id \
                     RETURNING s.tenant_id, s.id, due.next_pull_at AS due_at",
                )
                .bind::<Timestamptz, _>(now)
                .bind::<diesel::sql_types::BigInt, _>(limit)
                .load(conn)
                .await?;
                let mut queued = 0;
                for source in due {
                    let job = NewJob::of(&PullSource { source_id: MeterSourceId::from_uuid(source.id) })
                        .map_err(|e| Failure::Infra(InfraError::internal(e)))?
                        .unique(format!(
                            "metering.pull_source:{}:{}",
                            source.id,
                            source.due_at.timestamp_micros()
                        ));
                    if jobs::enqueue_in(conn, TenantId::from_uuid(source.tenant_id), &job, now)
                        .await?
                        .is_some()
                    {
                        queued += 1;
                    }
                }
                Ok(queued)
            })
        })
        .await
        .map_err(Failure::into_infra)
    }

    /// The source as a pull needs it: its kind, address, meters and cursor.
    pub async fn source_for_pull(
        &self,
        ctx: &TenantContext,
        id: MeterSourceId,
    ) -> Result<MeterSource, MeteringError> {
        self.meter_source(ctx, id).await
    }

    /// Records a pull in one transaction: its readings checked and stored
    /// (a refused one kept as rejected with its reason) and the cursor moved
    /// on; or, for a failed pull, the error kept on the source and the
    /// cursor left where it was. Values of a meter deleted since the source
    /// was configured cannot be kept: they are counted as rejected and the
    /// stale name is kept on the source as its error, the pull otherwise
    /// recorded as a success.
    pub async fn record_pull(
        &self,
        ctx: &TenantContext,
        id: MeterSourceId,
        outcome: PullOutcome,
        rules: ReadingRules,
    ) -> Result<ReadingsAdded, MeteringError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let source = load_source(conn, &ctx, id, true).await?;
                // A pull that started from another cursor than the source's now (one that
                // overlapped it finished first) stores its readings but moves nothing back.
                let (added, pulled, cursor, error) = match outcome {
                    PullOutcome::Pulled { from, readings, cursor } => {
                        let cursor = if from == source.cursor { cursor } else { None };
                        // Left in, such a reading would refuse the whole batch, so the pull
                        // would fail and be retried for ever without a word on the source.
                        let (readings, gone) = without_deleted_meters(conn, &ctx, &source, readings).await?;
                        let readings = to_meters_in_service(conn, &ctx, readings).await?;
                        let (mut added, per_meter) =
                            add_checked(conn, &ctx, readings, &rules, now, OnRefusal::KeepRejected).await?;
                        audit_readings(conn, &ctx, &per_meter, portico_metering::ReadingSource::Integration, now)
                            .await?;
                        added.rejected += gone.dropped;
                        (added, true, cursor, gone.message())
                    }
                    PullOutcome::Failed(message) => (ReadingsAdded::default(), false, None, Some(message)),
                };
                diesel::sql_query(
                    "UPDATE meter_sources SET cursor = CASE WHEN $6 THEN coalesce($3, cursor) ELSE cursor END, \
                         last_pulled_at = CASE WHEN $6 THEN $5 ELSE last_pulled_at END, \
                         last_error = $4, updated_at = $5 \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<Nullable<Text>, _>(cursor)
                .bind::<Nullable<Text>, _>(error.map(|e| e.chars().take(500).collect::<String>()))
                .bind::<Timestamptz, _>(now)
                .bind::<Bool, _>(pulled)
                .execute(conn)
                .await?;
                Ok(added)
            })
        })
        .await
        .map_err(resolve)
    }
}

/// `readings` each given to the meter in service at its time: the one the
/// source names, or one that replaced it since (a source keeps naming the
/// meter it was set up with; a replacement takes its place).
async fn to_meters_in_service(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    mut readings: Vec<portico_metering::Reading>,
) -> Result<Vec<portico_metering::Reading>, SourceFailure> {
    let mut named: Vec<MeterId> = readings.iter().map(|r| r.meter_id).collect();
    named.sort_unstable();
    named.dedup();
    let chains = successions(conn, ctx, &named).await?;
    for reading in &mut readings {
        let chain = chains.get(&reading.meter_id).map_or(&[][..], Vec::as_slice);
        if let InService::One(meter) = in_service_at(chain, reading.at) {
            reading.meter_id = meter.id;
        }
    }
    Ok(readings)
}

/// The readings of a pull whose meters were deleted since the source named them.
#[derive(Debug, Default)]
struct DeletedMeters {
    /// The source's names of those meters.
    names: Vec<String>,
    /// Readings left out.
    dropped: u64,
}

impl DeletedMeters {
    /// What to show on the source, if anything was left out.
    fn message(&self) -> Option<String> {
        (!self.names.is_empty()).then(|| {
            format!(
                "no meter of this tenant for {}: the meter was deleted, its values are not kept",
                self.names.join(", ")
            )
        })
    }
}

/// `readings` without those of meters the tenant no longer has (a meter
/// without readings may be deleted while a source still names it).
async fn without_deleted_meters(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    source: &MeterSource,
    readings: Vec<portico_metering::Reading>,
) -> Result<(Vec<portico_metering::Reading>, DeletedMeters), SourceFailure> {
    #[derive(QueryableByName)]
    struct Known {
        #[diesel(sql_type = SqlUuid)]
        id: uuid::Uuid,
    }
    let named: Vec<uuid::Uuid> = readings.iter().map(|r| r.meter_id.into_uuid()).collect();
    let known: HashSet<uuid::Uuid> =
        diesel::sql_query("SELECT id FROM meters WHERE tenant_id = $1 AND id = ANY($2)")
            .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
            .bind::<Array<SqlUuid>, _>(&named)
            .load::<Known>(conn)
            .await?
            .into_iter()
            .map(|k| k.id)
            .collect();
    let (kept, dropped): (Vec<_>, Vec<_>) =
        readings.into_iter().partition(|r| known.contains(&r.meter_id.into_uuid()));
    let names = source
        .meters
        .iter()
        .filter(|(_, meter)| dropped.iter().any(|r| r.meter_id == **meter))
        .map(|(name, _)| name.clone())
        .collect();
    Ok((kept, DeletedMeters { names, dropped: dropped.len() as u64 }))
}
