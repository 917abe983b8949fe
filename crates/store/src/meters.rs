//! Sites, meters and readings: the tree of places, the meters on them and
//! their succession, readings checked by `portico_metering::check_series`
//! under a lock of their meter, and consumption computed by the domain from
//! the readings around a period.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_kernel::{AuditEntry, InfraError, MeterId, Page, PageRequest, ReadingId, SiteId, TenantContext};
use portico_metering::{
    Bucket, Granularity, ImportedReading, InService, Meter, MeterChanges, MeterDraft, MeterPlace,
    MeterReadings, MeterRef, MeteringError, Reading, ReadingMode, ReadingRules, ReadingSource, ReadingStatus,
    RefusedReading, Replacement, Site, SiteDraft, Verdict, candidate, check_parent, check_series,
    consumption, consumption_by, meter_by_serial,
};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::error::{Failure, is_foreign_key_violation, is_unique_violation};
use crate::{Store, audit};

type MeteringFailure = Failure<MeteringError>;

fn resolve(failure: MeteringFailure) -> MeteringError {
    failure.resolve(|error| {
        is_unique_violation(error, "metering_sites_external_ref_key").then(|| {
            MeteringError::Invalid(portico_kernel::ValidationErrors::field(
                "externalRef",
                "another site of the tenant has this reference",
            ))
        })
    })
}

fn corrupt(what: impl std::fmt::Display) -> MeteringFailure {
    Failure::Infra(InfraError::internal(format!("stored metering data does not read: {what}")))
}

/// A unit enum (`kind`, `source`) as its stored text.
pub(crate) fn text_of(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        _ => String::new(),
    }
}

/// A unit enum from its stored text.
fn enum_of<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, MeteringFailure> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(corrupt)
}

fn decimal_of(text: &str) -> Result<Decimal, MeteringFailure> {
    text.parse().map_err(corrupt)
}

/// A page's `LIMIT` and `OFFSET`.
pub(crate) fn bounds(page: PageRequest) -> (i64, i64) {
    (i64::from(page.limit()), i64::try_from(page.offset()).unwrap_or(i64::MAX))
}

#[derive(QueryableByName)]
pub(crate) struct Counted {
    #[diesel(sql_type = BigInt)]
    pub(crate) total: i64,
}

impl Counted {
    /// The count (never negative).
    pub(crate) fn count(&self) -> u64 {
        u64::try_from(self.total).unwrap_or_default()
    }
}

#[derive(QueryableByName)]
struct SiteRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    parent_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<Text>)]
    external_ref: Option<String>,
}

impl SiteRow {
    fn into_site(self) -> Result<Site, MeteringFailure> {
        Ok(Site {
            id: SiteId::from_uuid(self.id),
            parent_id: self.parent_id.map(SiteId::from_uuid),
            kind: enum_of(&self.kind)?,
            name: self.name,
            external_ref: self.external_ref,
        })
    }
}

const SITE_COLUMNS: &str = "id, parent_id, kind, name, external_ref";

async fn load_site(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    id: SiteId,
) -> Result<Site, MeteringFailure> {
    let row: Option<SiteRow> = diesel::sql_query(format!(
        "SELECT {SITE_COLUMNS} FROM metering_sites WHERE tenant_id = $1 AND id = $2"
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(id.into_uuid())
    .get_result(conn)
    .await
    .optional()?;
    row.ok_or(Failure::Domain(MeteringError::SiteNotFound))?.into_site()
}

/// Refuses a parent or a place that is not a site of the tenant, naming the field.
async fn check_site_exists(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    id: SiteId,
    field: &str,
) -> Result<(), MeteringFailure> {
    match load_site(conn, ctx, id).await {
        Err(Failure::Domain(MeteringError::SiteNotFound)) => Err(Failure::Domain(MeteringError::Invalid(
            portico_kernel::ValidationErrors::field(field, "no such site in this tenant"),
        ))),
        other => other.map(|_| ()),
    }
}

#[derive(QueryableByName)]
struct MeterRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    site_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    subject: Option<String>,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    unit: String,
    #[diesel(sql_type = Text)]
    mode: String,
    #[diesel(sql_type = Nullable<SmallInt>)]
    digits: Option<i16>,
    #[diesel(sql_type = Nullable<Text>)]
    serial_number: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    active_from: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    active_until: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    start_reading: Option<String>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    replaces: Option<uuid::Uuid>,
}

const METER_COLUMNS: &str = "id, site_id, subject, kind, unit, mode, digits, serial_number, active_from, \
                             active_until, start_reading::text AS start_reading, replaces";

impl MeterRow {
    fn into_meter(self) -> Result<Meter, MeteringFailure> {
        let place = match (self.site_id, self.subject) {
            (Some(site_id), None) => MeterPlace::Site { site_id: SiteId::from_uuid(site_id) },
            (None, Some(subject)) => MeterPlace::Subject { subject },
            _ => return Err(corrupt("a meter on both or neither of a site and a subject")),
        };
        let mode = match self.mode.as_str() {
            "register" => {
                ReadingMode::Register { digits: self.digits.map(u8::try_from).transpose().map_err(corrupt)? }
            }
            "interval" => ReadingMode::Interval,
            other => return Err(corrupt(format!("reading mode {other}"))),
        };
        Ok(Meter {
            id: MeterId::from_uuid(self.id),
            place,
            kind: enum_of(&self.kind)?,
            unit: self.unit,
            mode,
            serial_number: self.serial_number,
            active_from: self.active_from,
            active_until: self.active_until,
            start_reading: self.start_reading.as_deref().map(decimal_of).transpose()?,
            replaces: self.replaces.map(MeterId::from_uuid),
        })
    }
}

async fn load_meter(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    id: MeterId,
    lock: bool,
) -> Result<Meter, MeteringFailure> {
    let row: Option<MeterRow> = diesel::sql_query(format!(
        "SELECT {METER_COLUMNS} FROM meters WHERE tenant_id = $1 AND id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(id.into_uuid())
    .get_result(conn)
    .await
    .optional()?;
    row.ok_or(Failure::Domain(MeteringError::MeterNotFound))?.into_meter()
}

async fn insert_meter(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    meter: &Meter,
    now: DateTime<Utc>,
) -> Result<(), MeteringFailure> {
    let (site_id, subject) = match &meter.place {
        MeterPlace::Site { site_id } => (Some(site_id.into_uuid()), None),
        MeterPlace::Subject { subject } => (None, Some(subject.as_str())),
    };
    let (mode, digits) = match meter.mode {
        ReadingMode::Register { digits } => ("register", digits.map(i16::from)),
        ReadingMode::Interval => ("interval", None),
    };
    diesel::sql_query(
        "INSERT INTO meters (tenant_id, id, site_id, subject, kind, unit, mode, digits, serial_number, \
             active_from, active_until, start_reading, replaces, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::numeric, $13, $14, $14)",
    )
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(meter.id.into_uuid())
    .bind::<Nullable<SqlUuid>, _>(site_id)
    .bind::<Nullable<Text>, _>(subject)
    .bind::<Text, _>(text_of(&meter.kind))
    .bind::<Text, _>(&meter.unit)
    .bind::<Text, _>(mode)
    .bind::<Nullable<SmallInt>, _>(digits)
    .bind::<Nullable<Text>, _>(meter.serial_number.as_deref())
    .bind::<Timestamptz, _>(meter.active_from)
    .bind::<Nullable<Timestamptz>, _>(meter.active_until)
    .bind::<Nullable<Text>, _>(meter.start_reading.map(|d| d.to_string()))
    .bind::<Nullable<SqlUuid>, _>(meter.replaces.map(MeterId::into_uuid))
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Each of `roots` with the meters that replaced it since, one after the
/// other (the root first).
pub(crate) async fn successions(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    roots: &[MeterId],
) -> Result<HashMap<MeterId, Vec<Meter>>, MeteringFailure> {
    #[derive(QueryableByName)]
    struct Rooted {
        #[diesel(sql_type = SqlUuid)]
        root: uuid::Uuid,
        #[diesel(embed)]
        meter: MeterRow,
    }
    let ids: Vec<uuid::Uuid> = roots.iter().map(|m| m.into_uuid()).collect();
    let rows: Vec<Rooted> = diesel::sql_query(format!(
        "WITH RECURSIVE chain AS ( \
             SELECT id AS root, m.* FROM meters m WHERE tenant_id = $1 AND id = ANY($2) \
             UNION ALL \
             SELECT c.root, m.* FROM meters m JOIN chain c ON m.tenant_id = c.tenant_id AND m.replaces = c.id) \
         SELECT root, {METER_COLUMNS} FROM chain ORDER BY root, active_from"
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<Array<SqlUuid>, _>(&ids)
    .load(conn)
    .await?;
    let mut chains: HashMap<MeterId, Vec<Meter>> = HashMap::new();
    for row in rows {
        chains.entry(MeterId::from_uuid(row.root)).or_default().push(row.meter.into_meter()?);
    }
    Ok(chains)
}

#[derive(QueryableByName)]
struct ReadingRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    meter_id: uuid::Uuid,
    #[diesel(sql_type = Timestamptz)]
    at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    value: String,
    #[diesel(sql_type = Text)]
    source: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    flagged: Option<String>,
}

const READING_COLUMNS: &str = "id, meter_id, at, value::text AS value, source, status, reason, flagged";

impl ReadingRow {
    fn into_reading(self) -> Result<Reading, MeteringFailure> {
        let status = match (self.status.as_str(), self.reason) {
            ("valid", _) => ReadingStatus::Valid,
            ("estimated", _) => ReadingStatus::Estimated,
            ("rejected", Some(reason)) => ReadingStatus::Rejected { reason },
            (other, _) => return Err(corrupt(format!("reading status {other}"))),
        };
        Ok(Reading {
            id: ReadingId::from_uuid(self.id),
            meter_id: MeterId::from_uuid(self.meter_id),
            at: self.at,
            value: decimal_of(&self.value)?,
            source: enum_of(&self.source)?,
            status,
            flagged: self.flagged,
        })
    }
}

/// The readings of `meter` that a check of candidates between `from` and
/// `to` needs: all in that span, and the counting ones just around it
/// (enough for the spike rule's trailing consumptions).
async fn readings_around(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    meter: MeterId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Reading>, MeteringFailure> {
    let around = portico_metering::TRAILING_READINGS + 1;
    let rows: Vec<ReadingRow> = diesel::sql_query(format!(
        "(SELECT {READING_COLUMNS} FROM meter_readings \
          WHERE tenant_id = $1 AND meter_id = $2 AND at >= $3 AND at <= $4) \
         UNION ALL \
         (SELECT {READING_COLUMNS} FROM meter_readings \
          WHERE tenant_id = $1 AND meter_id = $2 AND at < $3 AND status <> 'rejected' ORDER BY at DESC LIMIT {around}) \
         UNION ALL \
         (SELECT {READING_COLUMNS} FROM meter_readings \
          WHERE tenant_id = $1 AND meter_id = $2 AND at > $4 AND status <> 'rejected' ORDER BY at LIMIT 1)"
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<SqlUuid, _>(meter.into_uuid())
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .load(conn)
    .await?;
    rows.into_iter().map(ReadingRow::into_reading).collect()
}

/// Stores readings (already checked) in one statement.
async fn insert_readings(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    readings: &[Reading],
    now: DateTime<Utc>,
) -> Result<(), MeteringFailure> {
    if readings.is_empty() {
        return Ok(());
    }
    let ids: Vec<uuid::Uuid> = readings.iter().map(|r| r.id.into_uuid()).collect();
    let meters: Vec<uuid::Uuid> = readings.iter().map(|r| r.meter_id.into_uuid()).collect();
    let times: Vec<DateTime<Utc>> = readings.iter().map(|r| r.at).collect();
    let values: Vec<String> = readings.iter().map(|r| r.value.to_string()).collect();
    let sources: Vec<String> = readings.iter().map(|r| text_of(&r.source)).collect();
    let (statuses, reasons): (Vec<&str>, Vec<Option<&str>>) = readings
        .iter()
        .map(|r| match &r.status {
            ReadingStatus::Valid => ("valid", None),
            ReadingStatus::Estimated => ("estimated", None),
            ReadingStatus::Rejected { reason } => ("rejected", Some(reason.as_str())),
        })
        .unzip();
    let flags: Vec<Option<&str>> = readings.iter().map(|r| r.flagged.as_deref()).collect();
    diesel::sql_query(
        "INSERT INTO meter_readings (tenant_id, id, meter_id, at, value, source, status, reason, flagged, created_at) \
         SELECT $1, r.id, r.meter_id, r.at, r.value::numeric, r.source, r.status, r.reason, r.flagged, $10 \
         FROM unnest($2::uuid[], $3::uuid[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[]) \
              AS r (id, meter_id, at, value, source, status, reason, flagged)",
    )
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<Array<SqlUuid>, _>(&ids)
    .bind::<Array<SqlUuid>, _>(&meters)
    .bind::<Array<Timestamptz>, _>(&times)
    .bind::<Array<Text>, _>(&values)
    .bind::<Array<Text>, _>(&sources)
    .bind::<Array<Text>, _>(&statuses)
    .bind::<Array<Nullable<Text>>, _>(&reasons)
    .bind::<Array<Nullable<Text>>, _>(&flags)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// What a batch of readings did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "accepted": 95, "duplicates": 4, "rejected": 0,
    "flagged": [{"index": 17, "flag": "spike: 12.5x the trailing average"}]
})))]
#[serde(rename_all = "camelCase")]
pub struct ReadingsAdded {
    /// Readings stored now.
    pub accepted: u64,
    /// Readings the meters had already (same instant and value): nothing stored.
    pub duplicates: u64,
    /// Readings refused but kept as rejected, with their reason (only from a meter
    /// data source, whose readings are never dropped; a person's batch is refused
    /// instead). One whose instant the meter has a reading for already is counted
    /// but not kept: a meter has one reading per instant.
    pub rejected: u64,
    /// Accepted readings that deserve a second look, by their place in the batch
    /// (for an import, their line).
    pub flagged: Vec<FlaggedReading>,
}

/// An accepted reading that was flagged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FlaggedReading {
    /// Its place in the batch from 0 (for an import: its line).
    pub index: u64,
    /// Why (`spike: 12.5x the trailing average`).
    pub flag: String,
}

/// How refused readings are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnRefusal {
    /// Refuse the whole batch (a person or a client sent it and can fix it).
    RefuseBatch,
    /// Keep them as rejected with the reason (an external source: nothing is lost).
    KeepRejected,
}

/// Checks and stores `candidates` (each already holding its meter), locking
/// each meter in id order so concurrent batches of one meter run one after
/// the other. Candidates of a meter not in the tenant are refused.
pub(crate) async fn add_checked(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    candidates: Vec<Reading>,
    rules: &ReadingRules,
    now: DateTime<Utc>,
    on_refusal: OnRefusal,
) -> Result<(ReadingsAdded, BTreeMap<MeterId, u64>), MeteringFailure> {
    let mut by_meter: BTreeMap<MeterId, Vec<usize>> = BTreeMap::new();
    for (index, reading) in candidates.iter().enumerate() {
        by_meter.entry(reading.meter_id).or_default().push(index);
    }
    let mut added = ReadingsAdded::default();
    let mut refused = Vec::new();
    let mut stored = Vec::new();
    let mut per_meter = BTreeMap::new();
    for (meter_id, indexes) in by_meter {
        let meter = match load_meter(conn, ctx, meter_id, true).await {
            Ok(meter) => meter,
            // A source's map may name a meter deleted since: its values are dropped and
            // counted, or every later pull would fail the same way.
            Err(Failure::Domain(MeteringError::MeterNotFound)) if on_refusal == OnRefusal::KeepRejected => {
                added.rejected += indexes.len() as u64;
                continue;
            }
            Err(Failure::Domain(error @ MeteringError::MeterNotFound)) => {
                for &index in &indexes {
                    refused.push(RefusedReading {
                        index,
                        code: portico_kernel::DomainError::code(&error),
                        reason: error.to_string(),
                    });
                }
                continue;
            }
            Err(other) => return Err(other),
        };
        let batch: Vec<Reading> = indexes.iter().filter_map(|&i| candidates.get(i).cloned()).collect();
        let (Some(first), Some(last)) = (batch.iter().map(|r| r.at).min(), batch.iter().map(|r| r.at).max())
        else {
            continue;
        };
        let known = readings_around(conn, ctx, meter_id, first, last).await?;
        let verdicts = check_series(&meter, &known, &batch, now, rules);
        // A meter has one reading per instant: a refused reading is kept only
        // at an instant no stored, accepted or already kept reading holds.
        let mut taken: HashSet<DateTime<Utc>> = known.iter().map(|r| r.at).collect();
        taken.extend(
            batch.iter().zip(&verdicts).filter(|(_, v)| matches!(v, Verdict::Accepted(_))).map(|(r, _)| r.at),
        );
        let mut accepted_here = 0;
        for ((index, mut reading), verdict) in indexes.iter().copied().zip(batch).zip(verdicts) {
            match verdict {
                Verdict::Accepted(checked) => {
                    reading.status = checked.status;
                    if let Some(flag) = &checked.flagged {
                        added.flagged.push(FlaggedReading { index: index as u64, flag: flag.clone() });
                    }
                    reading.flagged = checked.flagged;
                    added.accepted += 1;
                    accepted_here += 1;
                    stored.push(reading);
                }
                Verdict::Duplicate => added.duplicates += 1,
                Verdict::Refused(error) => match on_refusal {
                    OnRefusal::RefuseBatch => refused.push(RefusedReading {
                        index,
                        code: portico_kernel::DomainError::code(&error),
                        reason: error.to_string(),
                    }),
                    OnRefusal::KeepRejected => {
                        added.rejected += 1;
                        if taken.insert(reading.at) {
                            reading.status = ReadingStatus::Rejected { reason: error.to_string() };
                            accepted_here += 1;
                            stored.push(reading);
                        }
                    }
                },
            }
        }
        if accepted_here > 0 {
            per_meter.insert(meter_id, accepted_here);
        }
    }
    if !refused.is_empty() {
        refused.sort_by_key(|r| r.index);
        return Err(Failure::Domain(MeteringError::ReadingsRefused(refused)));
    }
    added.flagged.sort_by_key(|f| f.index);
    insert_readings(conn, ctx, &stored, now).await?;
    Ok((added, per_meter))
}

/// One audit row per meter that got readings.
pub(crate) async fn audit_readings(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    per_meter: &BTreeMap<MeterId, u64>,
    source: ReadingSource,
    now: DateTime<Utc>,
) -> Result<(), MeteringFailure> {
    for (meter, count) in per_meter {
        let entry = AuditEntry {
            action: "metering.readings.add",
            resource_type: "meter",
            resource_id: meter.to_string(),
            changes: serde_json::json!({ "readings": { "after": count }, "source": { "after": text_of(&source) } }),
        };
        audit::record(conn, ctx.tenant_id, ctx.into(), &entry, now).await?;
    }
    Ok(())
}

/// Which meters a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeterFilter {
    /// Only those on this site.
    pub site_id: Option<SiteId>,
    /// Only those on this subject.
    pub subject: Option<String>,
    /// Only those in service now (not replaced or removed).
    pub active: Option<bool>,
}

/// A replacement as it was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Replaced {
    /// The old meter, closed.
    pub closed: Meter,
    /// The new meter.
    pub successor: Meter,
    /// The old meter's closing reading, when one was given.
    pub closing_reading: Option<Reading>,
}

/// A place's consumption over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "meterId": "01937a8e-6a10-7c3e-8f55-0a1b2c3d4e5f", "unit": "kWh",
    "from": "2026-03-01T00:00:00+01:00", "to": "2026-03-03T00:00:00+01:00", "timeZone": "Europe/Berlin",
    "total": "24.5",
    "buckets": [
        {"start": "2026-02-28T23:00:00Z", "end": "2026-03-01T23:00:00Z", "localDate": "2026-03-01", "quantity": "12.25"},
        {"start": "2026-03-01T23:00:00Z", "end": "2026-03-02T23:00:00Z", "localDate": "2026-03-02", "quantity": "12.25"}
    ]
})))]
#[serde(rename_all = "camelCase")]
pub struct Consumption {
    /// The meter asked about (its predecessors and successors count too).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub meter_id: MeterId,
    /// The unit of the quantities.
    pub unit: String,
    /// Start of the period.
    pub from: DateTime<Utc>,
    /// End of the period.
    pub to: DateTime<Utc>,
    /// The tenant's time zone, which days and months follow.
    pub time_zone: String,
    /// What was used over the whole period, as a decimal string.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub total: Decimal,
    /// Per local day or month, when a granularity was asked for.
    pub buckets: Option<Vec<Bucket>>,
}

impl Store {
    /// The tenant's sites, by name.
    pub async fn sites(&self, ctx: &TenantContext, page: PageRequest) -> Result<Page<Site>, MeteringError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let (limit, offset) = bounds(page);
                let rows: Vec<SiteRow> = diesel::sql_query(format!(
                    "SELECT {SITE_COLUMNS} FROM metering_sites WHERE tenant_id = $1 ORDER BY name, id LIMIT $2 OFFSET $3"
                ))
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<BigInt, _>(limit)
                .bind::<BigInt, _>(offset)
                .load(conn)
                .await?;
                let total: Counted =
                    diesel::sql_query("SELECT count(*) AS total FROM metering_sites WHERE tenant_id = $1")
                        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                        .get_result(conn)
                        .await?;
                let sites = rows.into_iter().map(SiteRow::into_site).collect::<Result<_, _>>()?;
                Ok(Page::new(sites, page, total.count()))
            })
        })
        .await
        .map_err(resolve)
    }

    /// One site of the tenant.
    pub async fn site(&self, ctx: &TenantContext, id: SiteId) -> Result<Site, MeteringError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| Box::pin(async move { load_site(conn, &ctx, id).await }))
            .await
            .map_err(resolve)
    }

    /// Creates a site.
    pub async fn create_site(&self, ctx: &TenantContext, draft: SiteDraft) -> Result<Site, MeteringError> {
        let site = draft.validated(SiteId::new())?;
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                if let Some(parent) = site.parent_id {
                    check_site_exists(conn, &ctx, parent, "parentId").await?;
                }
                diesel::sql_query(
                    "INSERT INTO metering_sites (tenant_id, id, parent_id, kind, name, external_ref, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<SqlUuid, _>(site.id.into_uuid())
                .bind::<Nullable<SqlUuid>, _>(site.parent_id.map(SiteId::into_uuid))
                .bind::<Text, _>(text_of(&site.kind))
                .bind::<Text, _>(&site.name)
                .bind::<Nullable<Text>, _>(site.external_ref.as_deref())
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                let entry = AuditEntry::between("metering.site.create", "site", site.id, None, Some(&site));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(site)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Changes a site (every field; moving it keeps the tree a tree).
    pub async fn update_site(
        &self,
        ctx: &TenantContext,
        id: SiteId,
        draft: SiteDraft,
    ) -> Result<Site, MeteringError> {
        let site = draft.validated(id)?;
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                // The tree is locked whole for a move, so two moves cannot make a cycle together.
                #[derive(QueryableByName)]
                struct Edge {
                    #[diesel(sql_type = SqlUuid)]
                    id: uuid::Uuid,
                    #[diesel(sql_type = Nullable<SqlUuid>)]
                    parent_id: Option<uuid::Uuid>,
                }
                let edges: Vec<Edge> =
                    diesel::sql_query("SELECT id, parent_id FROM metering_sites WHERE tenant_id = $1 FOR UPDATE")
                        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                        .load(conn)
                        .await?;
                let parents: HashMap<SiteId, Option<SiteId>> = edges
                    .into_iter()
                    .map(|e| (SiteId::from_uuid(e.id), e.parent_id.map(SiteId::from_uuid)))
                    .collect();
                if !parents.contains_key(&id) {
                    return Err(Failure::Domain(MeteringError::SiteNotFound));
                }
                if let Some(parent) = site.parent_id
                    && !parents.contains_key(&parent)
                {
                    check_site_exists(conn, &ctx, parent, "parentId").await?;
                }
                check_parent(id, site.parent_id, |s| parents.get(&s).copied().flatten()).map_err(Failure::Domain)?;
                let before = load_site(conn, &ctx, id).await?;
                diesel::sql_query(
                    "UPDATE metering_sites SET parent_id = $3, kind = $4, name = $5, external_ref = $6, updated_at = $7 \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<Nullable<SqlUuid>, _>(site.parent_id.map(SiteId::into_uuid))
                .bind::<Text, _>(text_of(&site.kind))
                .bind::<Text, _>(&site.name)
                .bind::<Nullable<Text>, _>(site.external_ref.as_deref())
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                let entry = AuditEntry::between("metering.site.update", "site", id, Some(&before), Some(&site));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(site)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Deletes a site with nothing below it (no sites, no meters).
    pub async fn delete_site(&self, ctx: &TenantContext, id: SiteId) -> Result<(), MeteringError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                // The tree's lock, as a move takes it: a deletion and a move below the site
                // run one after the other (never a deadlock on the parent's key).
                diesel::sql_query("SELECT id FROM metering_sites WHERE tenant_id = $1 FOR UPDATE")
                    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                    .execute(conn)
                    .await?;
                let before = load_site(conn, &ctx, id).await?;
                let deleted =
                    diesel::sql_query("DELETE FROM metering_sites WHERE tenant_id = $1 AND id = $2")
                        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                        .bind::<SqlUuid, _>(id.into_uuid())
                        .execute(conn)
                        .await;
                match deleted {
                    Err(error) if is_foreign_key_violation(&error) => {
                        return Err(Failure::Domain(MeteringError::SiteInUse));
                    }
                    other => other?,
                };
                let entry = AuditEntry::between("metering.site.delete", "site", id, Some(&before), None);
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }

    /// The tenant's meters, newest first.
    pub async fn meters(
        &self,
        ctx: &TenantContext,
        filter: MeterFilter,
        page: PageRequest,
    ) -> Result<Page<Meter>, MeteringError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let (limit, offset) = bounds(page);
                let filters = "tenant_id = $1 AND ($2::uuid IS NULL OR site_id = $2) \
                               AND ($3::text IS NULL OR subject = $3) \
                               AND ($4::boolean IS NULL OR (active_until IS NULL) = $4)";
                let rows: Vec<MeterRow> = diesel::sql_query(format!(
                    "SELECT {METER_COLUMNS} FROM meters WHERE {filters} ORDER BY id DESC LIMIT $5 OFFSET $6"
                ))
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<Nullable<SqlUuid>, _>(filter.site_id.map(SiteId::into_uuid))
                .bind::<Nullable<Text>, _>(filter.subject.as_deref())
                .bind::<Nullable<diesel::sql_types::Bool>, _>(filter.active)
                .bind::<BigInt, _>(limit)
                .bind::<BigInt, _>(offset)
                .load(conn)
                .await?;
                let total: Counted =
                    diesel::sql_query(format!("SELECT count(*) AS total FROM meters WHERE {filters}"))
                        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                        .bind::<Nullable<SqlUuid>, _>(filter.site_id.map(SiteId::into_uuid))
                        .bind::<Nullable<Text>, _>(filter.subject.as_deref())
                        .bind::<Nullable<diesel::sql_types::Bool>, _>(filter.active)
                        .get_result(conn)
                        .await?;
                let meters = rows.into_iter().map(MeterRow::into_meter).collect::<Result<_, _>>()?;
                Ok(Page::new(meters, page, total.count()))
            })
        })
        .await
        .map_err(resolve)
    }

    /// One meter of the tenant.
    pub async fn meter(&self, ctx: &TenantContext, id: MeterId) -> Result<Meter, MeteringError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move { load_meter(conn, &ctx, id, false).await })
        })
        .await
        .map_err(resolve)
    }

    /// Installs a meter.
    pub async fn install_meter(
        &self,
        ctx: &TenantContext,
        draft: MeterDraft,
    ) -> Result<Meter, MeteringError> {
        let (ctx, now) = (ctx.clone(), self.now());
        let meter = draft.validated(MeterId::new(), now)?;
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                if let MeterPlace::Site { site_id } = meter.place {
                    check_site_exists(conn, &ctx, site_id, "place.siteId").await?;
                }
                insert_meter(conn, &ctx, &meter, now).await?;
                let entry =
                    AuditEntry::between("metering.meter.create", "meter", meter.id, None, Some(&meter));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(meter)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Changes a meter's place or serial number.
    pub async fn update_meter(
        &self,
        ctx: &TenantContext,
        id: MeterId,
        changes: MeterChanges,
    ) -> Result<Meter, MeteringError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_meter(conn, &ctx, id, true).await?;
                let after = changes.apply(&before).map_err(Failure::Domain)?;
                let (site_id, subject) = match &after.place {
                    MeterPlace::Site { site_id } => {
                        check_site_exists(conn, &ctx, *site_id, "place.siteId").await?;
                        (Some(site_id.into_uuid()), None)
                    }
                    MeterPlace::Subject { subject } => (None, Some(subject.clone())),
                };
                diesel::sql_query(
                    "UPDATE meters SET site_id = $3, subject = $4, serial_number = $5, updated_at = $6 \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<Nullable<SqlUuid>, _>(site_id)
                .bind::<Nullable<Text>, _>(subject)
                .bind::<Nullable<Text>, _>(after.serial_number.as_deref())
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                let entry =
                    AuditEntry::between("metering.meter.update", "meter", id, Some(&before), Some(&after));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(after)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Deletes a meter installed by mistake: one without readings, not part
    /// of a replacement (a meter with history is replaced instead).
    pub async fn delete_meter(&self, ctx: &TenantContext, id: MeterId) -> Result<(), MeteringError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_meter(conn, &ctx, id, true).await?;
                if before.replaces.is_some() {
                    return Err(Failure::Domain(MeteringError::MeterInUse));
                }
                let deleted = diesel::sql_query("DELETE FROM meters WHERE tenant_id = $1 AND id = $2")
                    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                    .bind::<SqlUuid, _>(id.into_uuid())
                    .execute(conn)
                    .await;
                match deleted {
                    // Its readings, or a successor, name it.
                    Err(error) if is_foreign_key_violation(&error) => {
                        return Err(Failure::Domain(MeteringError::MeterInUse));
                    }
                    other => other?,
                };
                let entry = AuditEntry::between("metering.meter.delete", "meter", id, Some(&before), None);
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }

    /// Replaces a meter: its closing reading (if given) is checked and
    /// stored, the meter is closed, and its successor starts, in one
    /// transaction.
    pub async fn replace_meter(
        &self,
        ctx: &TenantContext,
        id: MeterId,
        replacement: Replacement,
        rules: ReadingRules,
    ) -> Result<Replaced, MeteringError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_meter(conn, &ctx, id, true).await?;
                let (closed, successor) =
                    replacement.apply(&before, MeterId::new(), now).map_err(Failure::Domain)?;
                let closing_reading = match replacement.closing_reading {
                    Some(value) => {
                        let reading = candidate(
                            id,
                            closed.active_until.unwrap_or(now),
                            value,
                            false,
                            ReadingSource::Manual,
                        );
                        let known = readings_around(conn, &ctx, id, reading.at, reading.at).await?;
                        // Checked against the meter still open; no reading may follow it.
                        if known
                            .iter()
                            .any(|r| r.at > reading.at && !matches!(r.status, ReadingStatus::Rejected { .. }))
                        {
                            return Err(Failure::Domain(MeteringError::Invalid(
                                portico_kernel::ValidationErrors::field(
                                    "at",
                                    "the meter has readings after it",
                                ),
                            )));
                        }
                        match check_series(&before, &known, std::slice::from_ref(&reading), now, &rules).pop()
                        {
                            Some(Verdict::Accepted(checked)) => {
                                let reading = Reading { flagged: checked.flagged, ..reading };
                                insert_readings(conn, &ctx, std::slice::from_ref(&reading), now).await?;
                                Some(reading)
                            }
                            Some(Verdict::Duplicate) => None,
                            Some(Verdict::Refused(error)) => return Err(Failure::Domain(error)),
                            None => None,
                        }
                    }
                    None => {
                        let later: Counted = diesel::sql_query(
                            "SELECT count(*) AS total FROM meter_readings \
                             WHERE tenant_id = $1 AND meter_id = $2 AND at > $3 AND status <> 'rejected'",
                        )
                        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                        .bind::<SqlUuid, _>(id.into_uuid())
                        .bind::<Timestamptz, _>(closed.active_until.unwrap_or(now))
                        .get_result(conn)
                        .await?;
                        if later.total > 0 {
                            return Err(Failure::Domain(MeteringError::Invalid(
                                portico_kernel::ValidationErrors::field(
                                    "at",
                                    "the meter has readings after it",
                                ),
                            )));
                        }
                        None
                    }
                };
                diesel::sql_query(
                    "UPDATE meters SET active_until = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
                )
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<Nullable<Timestamptz>, _>(closed.active_until)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                insert_meter(conn, &ctx, &successor, now).await?;
                let entry = AuditEntry {
                    action: "metering.meter.replace",
                    resource_type: "meter",
                    resource_id: id.to_string(),
                    changes: serde_json::json!({
                        "activeUntil": { "before": null, "after": closed.active_until },
                        "successor": { "after": successor.id },
                        "closingReading": { "after": closing_reading.as_ref().map(|r| r.value.to_string()) },
                    }),
                };
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(Replaced { closed, successor, closing_reading })
            })
        })
        .await
        .map_err(resolve)
    }

    /// A meter's readings in `[from, to)` (every status), oldest first.
    pub async fn readings(
        &self,
        ctx: &TenantContext,
        meter: MeterId,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        page: PageRequest,
    ) -> Result<Page<Reading>, MeteringError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                load_meter(conn, &ctx, meter, false).await?;
                let (limit, offset) = bounds(page);
                let filters = "tenant_id = $1 AND meter_id = $2 AND ($3::timestamptz IS NULL OR at >= $3) \
                               AND ($4::timestamptz IS NULL OR at < $4)";
                let rows: Vec<ReadingRow> = diesel::sql_query(format!(
                    "SELECT {READING_COLUMNS} FROM meter_readings WHERE {filters} ORDER BY at LIMIT $5 OFFSET $6"
                ))
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<SqlUuid, _>(meter.into_uuid())
                .bind::<Nullable<Timestamptz>, _>(from)
                .bind::<Nullable<Timestamptz>, _>(to)
                .bind::<BigInt, _>(limit)
                .bind::<BigInt, _>(offset)
                .load(conn)
                .await?;
                let total: Counted =
                    diesel::sql_query(format!("SELECT count(*) AS total FROM meter_readings WHERE {filters}"))
                        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                        .bind::<SqlUuid, _>(meter.into_uuid())
                        .bind::<Nullable<Timestamptz>, _>(from)
                        .bind::<Nullable<Timestamptz>, _>(to)
                        .get_result(conn)
                        .await?;
                let readings = rows.into_iter().map(ReadingRow::into_reading).collect::<Result<_, _>>()?;
                Ok(Page::new(readings, page, total.count()))
            })
        })
        .await
        .map_err(resolve)
    }

    /// Adds a batch of readings of any of the tenant's meters, all or
    /// nothing: each is checked in its meter's time order
    /// (`portico_metering::check_series`); a reading the meter has already
    /// counts as a duplicate; any refused reading refuses the batch, each
    /// named by its place.
    pub async fn add_readings(
        &self,
        ctx: &TenantContext,
        readings: Vec<Reading>,
        rules: ReadingRules,
    ) -> Result<ReadingsAdded, MeteringError> {
        let (ctx, now) = (ctx.clone(), self.now());
        let source = readings.as_slice().first().map_or(ReadingSource::Manual, |r| r.source);
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let (added, per_meter) =
                    add_checked(conn, &ctx, readings, &rules, now, OnRefusal::RefuseBatch).await?;
                audit_readings(conn, &ctx, &per_meter, source, now).await?;
                Ok(added)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Imports the rows of a readings file, all or nothing, as
    /// [`Store::add_readings`] does; a row's meter is named by id or by
    /// serial number (the meter with that number in service at the
    /// reading's time). Refusals are reported by line; `flagged` names lines.
    pub async fn import_readings(
        &self,
        ctx: &TenantContext,
        rows: Vec<ImportedReading>,
        rules: ReadingRules,
    ) -> Result<ReadingsAdded, MeteringError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let mut serials: Vec<&str> = rows
                    .iter()
                    .filter_map(|r| match &r.meter {
                        MeterRef::SerialNumber(serial) => Some(serial.as_str()),
                        MeterRef::Id(_) => None,
                    })
                    .collect();
                serials.sort_unstable();
                serials.dedup();
                let numbered: Vec<MeterRow> = diesel::sql_query(format!(
                    "SELECT {METER_COLUMNS} FROM meters WHERE tenant_id = $1 AND serial_number = ANY($2)"
                ))
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<Array<Text>, _>(&serials)
                .load(conn)
                .await?;
                let numbered: Vec<Meter> =
                    numbered.into_iter().map(MeterRow::into_meter).collect::<Result<_, _>>()?;
                let mut report =
                    portico_kernel::csv::ImportReport { rows: rows.len() as u64, ..Default::default() };
                let mut candidates = Vec::with_capacity(rows.len());
                let mut lines = Vec::with_capacity(rows.len());
                for row in &rows {
                    let meter_id = match &row.meter {
                        MeterRef::Id(id) => Ok(*id),
                        MeterRef::SerialNumber(serial) => match meter_by_serial(&numbered, serial, row.at) {
                            InService::One(meter) => Ok(meter.id),
                            InService::None => Err((
                                "import.unknown_meter",
                                "no meter of this tenant has that serial number at that time",
                            )),
                            InService::Several => Err((
                                "import.ambiguous_meter",
                                "several meters in service at that time have that serial number; name it by meterId",
                            )),
                        },
                    };
                    match meter_id {
                        Ok(meter_id) => {
                            candidates.push(candidate(
                                meter_id,
                                row.at,
                                row.value,
                                row.estimated,
                                ReadingSource::Import,
                            ));
                            lines.push(row.line);
                        }
                        Err((code, reason)) => report.add(row.line, code, reason.to_owned()),
                    }
                }
                let checked = add_checked(conn, &ctx, candidates, &rules, now, OnRefusal::RefuseBatch).await;
                let line_of = |index: usize| lines.get(index).copied().unwrap_or_default();
                match checked {
                    Ok((mut added, per_meter)) if report.error_count == 0 => {
                        for flagged in &mut added.flagged {
                            flagged.index = usize::try_from(flagged.index).map(line_of).unwrap_or_default();
                        }
                        audit_readings(conn, &ctx, &per_meter, ReadingSource::Import, now).await?;
                        Ok(added)
                    }
                    Ok(_) => Err(Failure::Domain(MeteringError::ImportRefused(sorted(report)))),
                    Err(Failure::Domain(MeteringError::ReadingsRefused(refused))) => {
                        for refusal in refused {
                            report.add(line_of(refusal.index), refusal.code, refusal.reason);
                        }
                        Err(Failure::Domain(MeteringError::ImportRefused(sorted(report))))
                    }
                    Err(other) => Err(other),
                }
            })
        })
        .await
        .map_err(resolve)
    }

    /// Stores readings pulled from an external source: the same checks,
    /// but a refused reading is kept as rejected with its reason, so
    /// nothing the source sent is lost.
    pub async fn add_pulled_readings(
        &self,
        ctx: &TenantContext,
        readings: Vec<Reading>,
        rules: ReadingRules,
    ) -> Result<ReadingsAdded, MeteringError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let (added, per_meter) =
                    add_checked(conn, &ctx, readings, &rules, now, OnRefusal::KeepRejected).await?;
                audit_readings(conn, &ctx, &per_meter, ReadingSource::Integration, now).await?;
                Ok(added)
            })
        })
        .await
        .map_err(resolve)
    }

    /// What the place of `meter` used from `from` to `to` (across the
    /// meters it replaced and that replaced it), in total and, with a
    /// granularity, per local day or month of the tenant's time zone.
    pub async fn consumption(
        &self,
        ctx: &TenantContext,
        meter: MeterId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        granularity: Option<Granularity>,
    ) -> Result<Consumption, MeteringError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let asked = load_meter(conn, &ctx, meter, false).await?;
                let chain: Vec<MeterRow> = diesel::sql_query(format!(
                    "WITH RECURSIVE back AS ( \
                         SELECT * FROM meters WHERE tenant_id = $1 AND id = $2 \
                         UNION SELECT m.* FROM meters m JOIN back b ON m.tenant_id = b.tenant_id AND m.id = b.replaces), \
                     ahead AS ( \
                         SELECT * FROM meters WHERE tenant_id = $1 AND id = $2 \
                         UNION SELECT m.* FROM meters m JOIN ahead a ON m.tenant_id = a.tenant_id AND m.replaces = a.id) \
                     SELECT {METER_COLUMNS} FROM (SELECT * FROM back UNION SELECT * FROM ahead) chain \
                     ORDER BY active_from"
                ))
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<SqlUuid, _>(meter.into_uuid())
                .load(conn)
                .await?;
                let chain: Vec<Meter> = chain.into_iter().map(MeterRow::into_meter).collect::<Result<_, _>>()?;
                let ids: Vec<uuid::Uuid> = chain.iter().map(|m| m.id.into_uuid()).collect();
                let rows: Vec<ReadingRow> = diesel::sql_query(format!(
                    "SELECT r.* FROM unnest($2::uuid[]) AS m (id), LATERAL ( \
                         (SELECT {READING_COLUMNS} FROM meter_readings \
                          WHERE tenant_id = $1 AND meter_id = m.id AND status <> 'rejected' AND at >= $3 AND at <= $4) \
                         UNION ALL \
                         (SELECT {READING_COLUMNS} FROM meter_readings \
                          WHERE tenant_id = $1 AND meter_id = m.id AND status <> 'rejected' AND at < $3 ORDER BY at DESC LIMIT 1) \
                         UNION ALL \
                         (SELECT {READING_COLUMNS} FROM meter_readings \
                          WHERE tenant_id = $1 AND meter_id = m.id AND status <> 'rejected' AND at > $4 ORDER BY at LIMIT 1)) r"
                ))
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<Array<SqlUuid>, _>(&ids)
                .bind::<Timestamptz, _>(from)
                .bind::<Timestamptz, _>(to)
                .load(conn)
                .await?;
                let mut readings: HashMap<MeterId, Vec<Reading>> = HashMap::new();
                for row in rows {
                    let reading = row.into_reading()?;
                    readings.entry(reading.meter_id).or_default().push(reading);
                }
                let series: Vec<MeterReadings<'_>> = chain
                    .iter()
                    .map(|m| MeterReadings { meter: m, readings: readings.get(&m.id).map_or(&[][..], Vec::as_slice) })
                    .collect();
                let config = crate::tenant_profile::load_profile(conn, ctx.tenant_id, false)
                    .await
                    .map_err(|f| f.map_domain(|e| MeteringError::Store(InfraError::internal(e.to_string()))))?
                    .effective()
                    .map_err(|e| Failure::Domain(MeteringError::Store(InfraError::internal(e.to_string()))))?;
                let time_zone = config.settings.time_zone;
                let total = consumption(&series, from, to).map_err(Failure::Domain)?;
                let buckets = match granularity {
                    Some(granularity) => {
                        let tz: chrono_tz::Tz = time_zone.parse().map_err(corrupt)?;
                        Some(consumption_by(granularity, tz, &series, from, to).map_err(Failure::Domain)?)
                    }
                    None => None,
                };
                Ok(Consumption { meter_id: meter, unit: asked.unit, from, to, time_zone, total, buckets })
            })
        })
        .await
        .map_err(resolve)
    }
}

/// The report's errors in line order (unknown meters are found before the checks).
fn sorted(mut report: portico_kernel::csv::ImportReport) -> portico_kernel::csv::ImportReport {
    report.errors.sort_by_key(|e| e.line);
    report
}
