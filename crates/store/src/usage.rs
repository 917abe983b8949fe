//! Usage events: ingestion idempotent per `(tenant, event id)`, the tenant's
//! usage closing instant, and billable metrics' aggregations computed in SQL
//! over the indexed events (never by loading them into the process). The
//! SQL follows `portico_metering::aggregate`, the one definition, and the
//! tests compare the two.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use diesel::sql_types::{Array, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_kernel::{AuditEntry, InfraError, MetricId, TenantContext};
use portico_metering::{
    Aggregation, BillableMetric, IngestReport, MeteringError, MetricDraft, UsageEvent, accepts,
    dedupe_in_batch,
};
use rust_decimal::Decimal;

use crate::error::{Failure, is_unique_violation};
use crate::{Store, audit};

type UsageFailure = Failure<MeteringError>;

fn resolve(failure: UsageFailure) -> MeteringError {
    failure.resolve(|_| None)
}

/// [`resolve`] for a change that writes metric `code`, which another metric may have.
fn resolve_code(code: String) -> impl FnOnce(UsageFailure) -> MeteringError {
    move |failure| {
        failure.resolve(|error| {
            is_unique_violation(error, "billable_metrics_tenant_id_code_key")
                .then_some(MeteringError::MetricCodeTaken(code))
        })
    }
}

/// The tenant's usage closing instant, if it closed any.
async fn closed_through(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
) -> Result<Option<DateTime<Utc>>, UsageFailure> {
    #[derive(QueryableByName)]
    struct Closed {
        #[diesel(sql_type = Nullable<Timestamptz>)]
        closed_through: Option<DateTime<Utc>>,
    }
    // Shared with every other ingestion, exclusive to a close: a close waits for the
    // batches that read the old instant, and later batches read the new one.
    let closed: Closed = diesel::sql_query(format!(
        "SELECT c.closed_through FROM pg_advisory_xact_lock_shared({CLOSE_LOCK}) \
         LEFT JOIN usage_closures c ON c.tenant_id = $1"
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .get_result(conn)
    .await?;
    Ok(closed.closed_through)
}

/// The tenant's lock between ingesting usage and closing it (`$1`: the tenant).
const CLOSE_LOCK: &str = "hashtextextended('usage_closure:' || $1::text, 0)";

/// The numeric value of property `$n` of an event, as `portico_metering::aggregate`
/// reads it: a JSON number, or a string of decimal digits.
fn number_of(param: usize) -> String {
    // `usage_number` (migration 18) is the one SQL definition, inlined by the planner.
    format!("usage_number(properties -> ${param})")
}

/// The events of one metric that count: its code, the subject if given, and
/// every filter matched (JSON equality; an event without the property never
/// matches). Without filters the filter test is left out (`$6` then folds
/// away at planning), so no per-row subquery runs.
fn counted(filtered: bool) -> String {
    let filters = if filtered {
        "NOT EXISTS (SELECT 1 FROM jsonb_array_elements($6::jsonb) f \
                     WHERE NOT coalesce(properties -> (f ->> 'property') IN \
                                        (SELECT jsonb_array_elements(f -> 'values')), false))"
    } else {
        "$6::jsonb IS NOT NULL"
    };
    format!("tenant_id = $1 AND metric_code = $2 AND ($5::text IS NULL OR subject = $5) AND {filters}")
}

/// How a metric is named in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricKey {
    /// By its id.
    Id(MetricId),
    /// By its code (`llm.tokens`).
    Code(String),
}

#[derive(QueryableByName)]
struct MetricRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    code: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Jsonb)]
    aggregation: serde_json::Value,
    #[diesel(sql_type = Jsonb)]
    filters: serde_json::Value,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

const METRIC_COLUMNS: &str = "id, code, name, aggregation, filters, created_at";

impl MetricRow {
    fn into_metric(self) -> Result<BillableMetric, UsageFailure> {
        let corrupt =
            |e: serde_json::Error| Failure::Infra(InfraError::internal(format!("stored metric: {e}")));
        Ok(BillableMetric {
            id: MetricId::from_uuid(self.id),
            code: self.code,
            name: self.name,
            aggregation: serde_json::from_value(self.aggregation).map_err(corrupt)?,
            filters: serde_json::from_value(self.filters).map_err(corrupt)?,
            created_at: self.created_at,
        })
    }
}

fn json_of(value: &impl serde::Serialize) -> Result<serde_json::Value, UsageFailure> {
    serde_json::to_value(value).map_err(|e| Failure::Infra(InfraError::internal(e)))
}

async fn load_metric(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    key: &MetricKey,
    lock: bool,
) -> Result<BillableMetric, UsageFailure> {
    if matches!(key, MetricKey::Code(code) if code.contains('\0')) {
        // No code holds a NUL (PostgreSQL would refuse the text itself).
        return Err(Failure::Domain(MeteringError::MetricNotFound));
    }
    let (by, id, code) = match key {
        MetricKey::Id(id) => ("id = $2", Some(id.into_uuid()), None),
        MetricKey::Code(code) => ("code = $3", None, Some(code.as_str())),
    };
    let row: Option<MetricRow> = diesel::sql_query(format!(
        "SELECT {METRIC_COLUMNS} FROM billable_metrics WHERE tenant_id = $1 AND {by}{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
    .bind::<Nullable<SqlUuid>, _>(id)
    .bind::<Nullable<Text>, _>(code)
    .get_result(conn)
    .await
    .optional()?;
    row.ok_or(Failure::Domain(MeteringError::MetricNotFound))?.into_metric()
}

/// The whole UTC hours `[first, last)` within `[from, to)`, which rollups
/// answer for; both `to` when there is none, so the events answer for all.
fn whole_hours(from: DateTime<Utc>, to: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let hour = chrono::TimeDelta::hours(1);
    let floor = |t: DateTime<Utc>| chrono::DurationRound::duration_trunc(t, hour).ok();
    // Instants chrono cannot cut to the hour (outside 1677 to 2262) are left to the events.
    let (Some(from_hour), Some(last)) = (floor(from), floor(to)) else { return (to, to) };
    let first = if from_hour == from { from } else { from_hour + hour };
    if first < last { (first, last) } else { (to, to) }
}

/// The SQL of one aggregation over the counted events of `[$3, $4)`: rows
/// of `(subject, figure)`, one in all (subject null) or, `grouped`, one per
/// subject. A figure is null where nothing counts (a sum of no numbers).
fn figure_sql(aggregation: &Aggregation, filtered: bool, grouped: bool) -> String {
    let counts = counted(filtered);
    let window = "at >= $3 AND at < $4";
    let n = number_of(7);
    let (subject, group) = if grouped { ("subject", " GROUP BY subject") } else { ("NULL::text", "") };
    let simple = |figure: &str, extra: &str| {
        format!(
            "SELECT {subject} AS subject, {figure}::text AS figure FROM usage_events \
             WHERE {counts} AND {window}{extra}{group}"
        )
    };
    // Whole hours from the rollups ($8 to $9), the edges from the events.
    let rolled = |figure: &str, rolled_part: &str, edge_part: &str| {
        format!(
            "SELECT {subject} AS subject, {figure}(n)::text AS figure FROM ( \
                 SELECT subject, {rolled_part} AS n FROM usage_rollups \
                 WHERE tenant_id = $1 AND metric_code = $2 AND hour >= $8 AND hour < $9 \
                   AND ($5::text IS NULL OR subject = $5) \
                 UNION ALL \
                 SELECT subject, {edge_part} AS n FROM usage_events \
                 WHERE {counts} AND ((at >= $3 AND at < $8) OR (at >= $9 AND at < $4))) parts{group}"
        )
    };
    match aggregation {
        Aggregation::Count {} if !filtered => rolled("sum", "events", "1"),
        Aggregation::Sum { .. } if !filtered => rolled("sum", "(sums ->> $7)::numeric", &n),
        Aggregation::Max { .. } if !filtered => rolled("max", "(maxes ->> $7)::numeric", &n),
        Aggregation::Count {} => simple("count(*)", ""),
        Aggregation::Sum { .. } => simple(&format!("sum({n})"), ""),
        Aggregation::Max { .. } => simple(&format!("max({n})"), ""),
        // The distinct values first (a hash aggregate, which may run in parallel), then
        // counted: `count(DISTINCT ...)` would sort every value. Never rolled up: distinct
        // values cannot be added across hours.
        Aggregation::UniqueCount { .. } => {
            let key = if grouped { "subject, " } else { "" };
            format!(
                "SELECT {subject} AS subject, count(*)::text AS figure FROM ( \
                     SELECT DISTINCT {key}properties -> $7 FROM usage_events \
                     WHERE {counts} AND {window} \
                       AND properties -> $7 IS NOT NULL AND properties -> $7 <> 'null'::jsonb) distinct_values{group}"
            )
        }
        Aggregation::Latest { .. } if grouped => format!(
            "SELECT DISTINCT ON (subject) subject, {n}::text AS figure FROM usage_events \
             WHERE {counts} AND {window} AND {n} IS NOT NULL \
             ORDER BY subject, at DESC, event_id COLLATE \"C\" DESC"
        ),
        Aggregation::Latest { .. } => format!(
            "SELECT NULL::text AS subject, {n}::text AS figure FROM usage_events \
             WHERE {counts} AND {window} AND {n} IS NOT NULL \
             ORDER BY at DESC, event_id COLLATE \"C\" DESC LIMIT 1"
        ),
        // Each subject's levels, the one in force at `from` carried in (ordered before any
        // event at `from` itself); a level holds until the subject's next one, or `to`.
        Aggregation::TimeWeightedSum { .. } => {
            let outer = if grouped {
                "SELECT subject, figure::text AS figure FROM per_subject"
            } else {
                "SELECT NULL::text AS subject, sum(figure)::text AS figure FROM per_subject"
            };
            format!(
                "WITH levels AS ( \
                     SELECT subject, at, event_id, {n} AS level FROM usage_events \
                     WHERE {counts} AND at < $4 AND {n} IS NOT NULL), \
                 held AS ( \
                     (SELECT DISTINCT ON (subject) subject, $3::timestamptz AS at, 0 AS ord, event_id, level \
                      FROM levels WHERE at < $3 ORDER BY subject, at DESC, event_id COLLATE \"C\" DESC) \
                     UNION ALL \
                     SELECT subject, at, 1 AS ord, event_id, level FROM levels WHERE at >= $3), \
                 spans AS ( \
                     SELECT subject, level, extract(epoch FROM lead(at, 1, $4::timestamptz) \
                         OVER (PARTITION BY subject ORDER BY at, ord, event_id COLLATE \"C\") - at) AS seconds \
                     FROM held), \
                 per_subject AS ( \
                     SELECT subject, round(sum(level * seconds) / 3600, 6) AS figure FROM spans GROUP BY subject) \
                 {outer}"
            )
        }
    }
}

/// A billable metric's figure over a period (`GET /api/v1/metering/usage`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "metric": "llm.tokens", "subject": null, "from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z",
    "value": "1284000", "bySubject": {"customer-42": "812000", "customer-7": "472000"}
})))]
#[serde(rename_all = "camelCase")]
pub struct UsageFigure {
    /// The metric's code.
    pub metric: String,
    /// The subject asked about, if one was.
    pub subject: Option<String>,
    /// Start of the period.
    pub from: DateTime<Utc>,
    /// End of the period.
    pub to: DateTime<Utc>,
    /// The figure, as a decimal string (0 when nothing counts).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub value: Decimal,
    /// Each subject's figure, when asked for (subjects with nothing that counts are left out).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, String>>))]
    pub by_subject: Option<BTreeMap<String, Decimal>>,
}

/// `metric`'s figure in all (for `subject`, if given).
async fn total(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    metric: &BillableMetric,
    subject: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Decimal, UsageFailure> {
    let figures = figures(conn, ctx, metric, subject, from, to, false).await?;
    Ok(figures.into_iter().next().map(|(_, figure)| figure).unwrap_or_default())
}

/// `metric`'s figure per subject with one (only `subject`'s, if given).
async fn per_subject(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    metric: &BillableMetric,
    subject: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<BTreeMap<String, Decimal>, UsageFailure> {
    let figures = figures(conn, ctx, metric, subject, from, to, true).await?;
    Ok(figures.into_iter().filter_map(|(subject, figure)| Some((subject?, figure))).collect())
}

/// The figures of one aggregation: one row in all (`grouped` false), or one
/// per subject with a figure. The period is taken to the microsecond, as
/// event times are kept.
async fn figures(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    metric: &BillableMetric,
    subject: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    grouped: bool,
) -> Result<Vec<(Option<String>, Decimal)>, UsageFailure> {
    let (from, to) = (from.trunc_subsecs(6), to.trunc_subsecs(6));
    if from >= to {
        return Err(Failure::Domain(MeteringError::InvalidPeriod("the end must be after the start")));
    }
    if subject.is_some_and(|s| s.contains('\0')) {
        return Ok(Vec::new());
    }
    let filters = json_of(&metric.filters)?;
    let sql = figure_sql(&metric.aggregation, !metric.filters.is_empty(), grouped);
    let (first_hour, last_hour) = whole_hours(from, to);
    #[derive(QueryableByName)]
    struct Figure {
        #[diesel(sql_type = Nullable<Text>)]
        subject: Option<String>,
        #[diesel(sql_type = Nullable<Text>)]
        figure: Option<String>,
    }
    let rows: Vec<Figure> = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
        .bind::<Text, _>(&metric.code)
        .bind::<Timestamptz, _>(from)
        .bind::<Timestamptz, _>(to)
        .bind::<Nullable<Text>, _>(subject)
        .bind::<Jsonb, _>(filters)
        .bind::<Nullable<Text>, _>(metric.aggregation.property())
        .bind::<Timestamptz, _>(first_hour)
        .bind::<Timestamptz, _>(last_hour)
        .load(conn)
        .await?;
    rows.into_iter()
        .filter_map(|row| Some((row.subject, row.figure?)))
        .map(|(subject, text)| match text.parse::<Decimal>() {
            Ok(figure) => Ok((subject, figure.normalize())),
            // Numbers are refused beyond Decimal's range when they come in; a sum of
            // many can still outgrow it.
            Err(_) => Err(Failure::Domain(MeteringError::FigureTooLarge)),
        })
        .collect()
}

impl Store {
    /// Ingests a batch of usage events of the context's tenant: the first of
    /// each id in the batch is stored once; an id stored before (even by a
    /// retry racing this one) is reported as a duplicate and adds nothing;
    /// an event for usage the tenant closed more than `grace` ago is refused.
    pub async fn ingest_usage(
        &self,
        ctx: &TenantContext,
        events: Vec<UsageEvent>,
        grace: Duration,
    ) -> Result<IngestReport, MeteringError> {
        let (events, mut duplicates) = dedupe_in_batch(events);
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let closed = closed_through(conn, &ctx).await?;
                let (kept, closed_out): (Vec<UsageEvent>, Vec<UsageEvent>) =
                    events.into_iter().partition(|event| accepts(event.at, closed, grace, now));
                #[derive(QueryableByName)]
                struct Stored {
                    #[diesel(sql_type = Text)]
                    event_id: String,
                }
                let ids: Vec<&str> = kept.iter().map(|e| e.id.as_str()).collect();
                let codes: Vec<&str> = kept.iter().map(|e| e.metric_code.as_str()).collect();
                let subjects: Vec<&str> = kept.iter().map(|e| e.subject.as_str()).collect();
                let times: Vec<DateTime<Utc>> = kept.iter().map(|e| e.at).collect();
                let properties: Vec<serde_json::Value> =
                    kept.iter().map(|e| serde_json::Value::Object(e.properties.clone())).collect();
                // The events in id order, so two batches racing over the same ids wait on
                // each other in one order (never a deadlock). A trigger adds them to their
                // hours' rollups in the same statement.
                let stored: Vec<Stored> = diesel::sql_query(
                    "INSERT INTO usage_events (tenant_id, event_id, metric_code, subject, at, properties, received_at) \
                     SELECT $1, e.id, e.code, e.subject, e.at, e.properties, $7 \
                     FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::jsonb[]) \
                          AS e (id, code, subject, at, properties) \
                     ORDER BY e.id COLLATE \"C\" \
                     ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING event_id",
                )
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<Array<Text>, _>(&ids)
                .bind::<Array<Text>, _>(&codes)
                .bind::<Array<Text>, _>(&subjects)
                .bind::<Array<Timestamptz>, _>(&times)
                .bind::<Array<Jsonb>, _>(&properties)
                .bind::<Timestamptz, _>(now)
                .load(conn)
                .await?;
                let fresh: std::collections::HashSet<&str> = stored.iter().map(|s| s.event_id.as_str()).collect();
                let mut report = IngestReport::default();
                for id in &ids {
                    if fresh.contains(id) {
                        report.accepted += 1;
                    } else {
                        duplicates.push((*id).to_owned());
                    }
                }
                // A closed event stored before (a batch sent again after the period closed)
                // is a duplicate: it was counted, and nothing is refused.
                let closed_ids: Vec<&str> = closed_out.iter().map(|e| e.id.as_str()).collect();
                let seen: std::collections::HashSet<String> = if closed_ids.is_empty() {
                    std::collections::HashSet::new()
                } else {
                    diesel::sql_query(
                        "SELECT event_id FROM usage_events WHERE tenant_id = $1 AND event_id = ANY($2)",
                    )
                    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                    .bind::<Array<Text>, _>(&closed_ids)
                    .load::<Stored>(conn)
                    .await?
                    .into_iter()
                    .map(|s| s.event_id)
                    .collect()
                };
                for event in closed_out {
                    if seen.contains(&event.id) {
                        duplicates.push(event.id);
                    } else {
                        report.closed.push(event.id);
                    }
                }
                report.duplicates = duplicates;
                // Nothing stored, nothing seen before: the whole batch is late.
                if let Some(closed_through) = closed
                    && report.accepted == 0
                    && report.duplicates.is_empty()
                    && !report.closed.is_empty()
                {
                    return Err(Failure::Domain(MeteringError::UsageClosed { closed_through, events: report.closed }));
                }
                // One row per batch that stored events (not per event: the events are their own record).
                if report.accepted > 0 {
                    let entry = AuditEntry {
                        action: "metering.events.ingest",
                        resource_type: "usage_events",
                        resource_id: ctx.tenant_id.to_string(),
                        changes: serde_json::json!({
                            "accepted": { "after": report.accepted },
                            "duplicates": { "after": report.duplicates.len() },
                            "closed": { "after": report.closed.len() },
                        }),
                    };
                    audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                }
                Ok(report)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Closes the context's tenant's usage through `through` (billing will
    /// do this; an admin route does it now). It only moves forward.
    pub async fn close_usage(
        &self,
        ctx: &TenantContext,
        through: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, MeteringError> {
        let (ctx, now) = (ctx.clone(), self.now());
        if through > now {
            return Err(MeteringError::InvalidPeriod("usage cannot be closed in the future"));
        }
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                #[derive(QueryableByName)]
                struct Closed {
                    #[diesel(sql_type = Timestamptz)]
                    closed_through: DateTime<Utc>,
                }
                diesel::sql_query(format!("SELECT pg_advisory_xact_lock({CLOSE_LOCK})"))
                    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                    .execute(conn)
                    .await?;
                let closed: Closed = diesel::sql_query(
                    "INSERT INTO usage_closures (tenant_id, closed_through, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (tenant_id) DO UPDATE \
                         SET closed_through = greatest(usage_closures.closed_through, EXCLUDED.closed_through), \
                             updated_at = EXCLUDED.updated_at \
                     RETURNING closed_through",
                )
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<Timestamptz, _>(through)
                .bind::<Timestamptz, _>(now)
                .get_result(conn)
                .await?;
                let entry = AuditEntry {
                    action: "metering.usage.close",
                    resource_type: "usage_closure",
                    resource_id: ctx.tenant_id.to_string(),
                    changes: serde_json::json!({ "closedThrough": { "after": closed.closed_through } }),
                };
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(closed.closed_through)
            })
        })
        .await
        .map_err(resolve)
    }

    /// `metric`'s figure over `[from, to)` for the context's tenant (and
    /// `subject`, if given), computed in SQL as `portico_metering::aggregate`
    /// defines it.
    pub async fn aggregate_usage(
        &self,
        ctx: &TenantContext,
        metric: &BillableMetric,
        subject: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Decimal, MeteringError> {
        let (ctx, metric, subject) = (ctx.clone(), metric.clone(), subject.map(str::to_owned));
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move { total(conn, &ctx, &metric, subject.as_deref(), from, to).await })
        })
        .await
        .map_err(resolve)
    }

    /// `metric`'s figure over `[from, to)` per subject (`groupBy=subject`),
    /// computed in SQL as `portico_metering::aggregate_by_subject` defines it:
    /// each subject with something that counts, and no other.
    pub async fn aggregate_usage_by_subject(
        &self,
        ctx: &TenantContext,
        metric: &BillableMetric,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<BTreeMap<String, Decimal>, MeteringError> {
        let (ctx, metric) = (ctx.clone(), metric.clone());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move { per_subject(conn, &ctx, &metric, None, from, to).await })
        })
        .await
        .map_err(resolve)
    }

    /// The figure of the metric with code `metric` over `[from, to)` (for one
    /// subject, if given) and, `by_subject`, each subject's (only that one's
    /// when a subject is given): `GET /api/v1/metering/usage`, in one
    /// transaction.
    pub async fn usage_figure(
        &self,
        ctx: &TenantContext,
        metric: String,
        subject: Option<String>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        by_subject: bool,
    ) -> Result<UsageFigure, MeteringError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let metric = load_metric(conn, &ctx, &MetricKey::Code(metric), false).await?;
                let value = total(conn, &ctx, &metric, subject.as_deref(), from, to).await?;
                let by_subject = match by_subject {
                    true => Some(per_subject(conn, &ctx, &metric, subject.as_deref(), from, to).await?),
                    false => None,
                };
                Ok(UsageFigure { metric: metric.code, subject, from, to, value, by_subject })
            })
        })
        .await
        .map_err(resolve)
    }

    /// The tenant's billable metrics, by code.
    pub async fn metrics(&self, ctx: &TenantContext) -> Result<Vec<BillableMetric>, MeteringError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let rows: Vec<MetricRow> = diesel::sql_query(format!(
                    "SELECT {METRIC_COLUMNS} FROM billable_metrics WHERE tenant_id = $1 ORDER BY code"
                ))
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .load(conn)
                .await?;
                rows.into_iter().map(MetricRow::into_metric).collect()
            })
        })
        .await
        .map_err(resolve)
    }

    /// One billable metric of the tenant, by id or (`by_code`) by code.
    pub async fn metric(&self, ctx: &TenantContext, key: MetricKey) -> Result<BillableMetric, MeteringError> {
        let ctx = ctx.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move { load_metric(conn, &ctx, &key, false).await })
        })
        .await
        .map_err(resolve)
    }

    /// Defines a billable metric.
    pub async fn define_metric(
        &self,
        ctx: &TenantContext,
        draft: MetricDraft,
    ) -> Result<BillableMetric, MeteringError> {
        let (ctx, now) = (ctx.clone(), self.now());
        let metric = draft.validated(MetricId::new(), now)?;
        let code = metric.code.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                diesel::sql_query(
                    "INSERT INTO billable_metrics (tenant_id, id, code, name, aggregation, filters, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                )
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<SqlUuid, _>(metric.id.into_uuid())
                .bind::<Text, _>(&metric.code)
                .bind::<Text, _>(&metric.name)
                .bind::<Jsonb, _>(json_of(&metric.aggregation)?)
                .bind::<Jsonb, _>(json_of(&metric.filters)?)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                let entry = AuditEntry::between("metering.metric.create", "billable_metric", metric.id, None, Some(&metric));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(metric)
            })
        })
        .await
        .map_err(resolve_code(code))
    }

    /// Redefines a billable metric: its figures are computed anew from the
    /// events, so a change applies to every period asked about afterwards.
    pub async fn redefine_metric(
        &self,
        ctx: &TenantContext,
        id: MetricId,
        draft: MetricDraft,
    ) -> Result<BillableMetric, MeteringError> {
        let (ctx, now) = (ctx.clone(), self.now());
        let code = draft.code.clone();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_metric(conn, &ctx, &MetricKey::Id(id), true).await?;
                let after = draft.validated(id, before.created_at).map_err(Failure::Domain)?;
                diesel::sql_query(
                    "UPDATE billable_metrics SET code = $3, name = $4, aggregation = $5, filters = $6, updated_at = $7 \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<Text, _>(&after.code)
                .bind::<Text, _>(&after.name)
                .bind::<Jsonb, _>(json_of(&after.aggregation)?)
                .bind::<Jsonb, _>(json_of(&after.filters)?)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                let entry =
                    AuditEntry::between("metering.metric.update", "billable_metric", id, Some(&before), Some(&after));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(after)
            })
        })
        .await
        .map_err(resolve_code(code))
    }

    /// Deletes a billable metric (its events stay).
    pub async fn delete_metric(&self, ctx: &TenantContext, id: MetricId) -> Result<(), MeteringError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_metric(conn, &ctx, &MetricKey::Id(id), true).await?;
                diesel::sql_query("DELETE FROM billable_metrics WHERE tenant_id = $1 AND id = $2")
                    .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                    .bind::<SqlUuid, _>(id.into_uuid())
                    .execute(conn)
                    .await?;
                let entry =
                    AuditEntry::between("metering.metric.delete", "billable_metric", id, Some(&before), None);
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn whole_hours_are_the_hours_inside_a_period_and_none_at_the_calendars_edges() {
        let at = |h, m| Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap();
        assert_eq!(whole_hours(at(1, 0), at(5, 0)), (at(1, 0), at(5, 0)));
        assert_eq!(whole_hours(at(1, 30), at(5, 10)), (at(2, 0), at(5, 0)));
        assert_eq!(whole_hours(at(1, 10), at(1, 50)), (at(1, 50), at(1, 50)), "none: the events answer");
        // Outside what chrono cuts to the hour (before 1677): the events answer for all of it.
        let early = Utc.with_ymd_and_hms(1600, 1, 1, 0, 40, 0).unwrap();
        let later = Utc.with_ymd_and_hms(1600, 1, 1, 2, 0, 0).unwrap();
        assert_eq!(whole_hours(early, later), (later, later));
    }
}
