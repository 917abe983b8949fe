//! Usage events: ingestion idempotent per `(tenant, event id)`, the tenant's
//! usage closing instant, and billable metrics' aggregations computed in SQL
//! over the indexed events (never by loading them into the process). The
//! SQL follows `portico_metering::aggregate`, the one definition, and the
//! tests compare the two.

use chrono::{DateTime, Duration, Utc};
use diesel::sql_types::{Array, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_kernel::{InfraError, TenantContext};
use portico_metering::{
    Aggregation, BillableMetric, IngestReport, MeteringError, UsageEvent, accepts, dedupe_in_batch,
};
use rust_decimal::Decimal;

use crate::Store;
use crate::error::Failure;

type UsageFailure = Failure<MeteringError>;

fn resolve(failure: UsageFailure) -> MeteringError {
    failure.resolve(|_| None)
}

/// The tenant's usage closing instant, if it closed any.
async fn closed_through(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
) -> Result<Option<DateTime<Utc>>, UsageFailure> {
    #[derive(QueryableByName)]
    struct Closed {
        #[diesel(sql_type = Timestamptz)]
        closed_through: DateTime<Utc>,
    }
    let closed: Option<Closed> =
        diesel::sql_query("SELECT closed_through FROM usage_closures WHERE tenant_id = $1")
            .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
            .get_result(conn)
            .await
            .optional()?;
    Ok(closed.map(|c| c.closed_through))
}

/// The numeric value of property `$n` of an event, as `portico_metering::aggregate`
/// reads it: a JSON number, or a string of decimal digits.
fn number_of(param: usize) -> String {
    format!(
        "(CASE jsonb_typeof(properties -> ${param}) \
            WHEN 'number' THEN (properties ->> ${param})::numeric \
            WHEN 'string' THEN CASE WHEN (properties ->> ${param}) ~ '^-?[0-9]+(\\.[0-9]+)?$' \
                                    THEN (properties ->> ${param})::numeric END END)"
    )
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
                let stored: Vec<Stored> = diesel::sql_query(
                    "INSERT INTO usage_events (tenant_id, event_id, metric_code, subject, at, properties, received_at) \
                     SELECT $1, e.id, e.code, e.subject, e.at, e.properties, $7 \
                     FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::jsonb[]) \
                          AS e (id, code, subject, at, properties) \
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
                report.duplicates = duplicates;
                report.closed = closed_out.into_iter().map(|e| e.id).collect();
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
        if from >= to {
            return Err(MeteringError::InvalidPeriod("the end must be after the start"));
        }
        let filters = serde_json::to_value(&metric.filters)
            .map_err(|e| MeteringError::Store(InfraError::internal(e)))?;
        let window = "at >= $3 AND at < $4";
        let counts = counted(!metric.filters.is_empty());
        let sql = match &metric.aggregation {
            Aggregation::Count {} => {
                format!("SELECT count(*)::text AS figure FROM usage_events WHERE {counts} AND {window}")
            }
            Aggregation::Sum { .. } => {
                format!(
                    "SELECT sum({n})::text AS figure FROM usage_events WHERE {counts} AND {window}",
                    n = number_of(7)
                )
            }
            Aggregation::Max { .. } => {
                format!(
                    "SELECT max({n})::text AS figure FROM usage_events WHERE {counts} AND {window}",
                    n = number_of(7)
                )
            }
            Aggregation::UniqueCount { .. } => format!(
                "SELECT count(DISTINCT properties -> $7)::text AS figure FROM usage_events \
                 WHERE {counts} AND {window} AND properties -> $7 IS NOT NULL AND properties -> $7 <> 'null'::jsonb"
            ),
            Aggregation::Latest { .. } => format!(
                "SELECT {n}::text AS figure FROM usage_events WHERE {counts} AND {window} AND {n} IS NOT NULL \
                 ORDER BY at DESC, event_id COLLATE \"C\" DESC LIMIT 1",
                n = number_of(7)
            ),
            // Each subject's levels, the one in force at `from` carried in (ordered before any
            // event at `from` itself); a level holds until the subject's next one, or `to`.
            Aggregation::TimeWeightedSum { .. } => format!(
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
                     FROM held) \
                 SELECT sum(figure)::text AS figure FROM ( \
                     SELECT round(sum(level * seconds) / 3600, 6) AS figure FROM spans GROUP BY subject) per_subject",
                n = number_of(7)
            ),
        };
        #[derive(QueryableByName)]
        struct Figure {
            #[diesel(sql_type = Nullable<Text>)]
            figure: Option<String>,
        }
        let (ctx, code) = (ctx.clone(), metric.code.clone());
        let (subject, property) =
            (subject.map(str::to_owned), metric.aggregation.property().map(str::to_owned));
        let figure = self
            .in_tenant(ctx.tenant_id, move |conn| {
                Box::pin(async move {
                    let figure: Option<Figure> = diesel::sql_query(sql)
                        .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                        .bind::<Text, _>(code)
                        .bind::<Timestamptz, _>(from)
                        .bind::<Timestamptz, _>(to)
                        .bind::<Nullable<Text>, _>(subject)
                        .bind::<Jsonb, _>(filters)
                        .bind::<Nullable<Text>, _>(property)
                        .get_result(conn)
                        .await
                        .optional()?;
                    Ok(figure.and_then(|f| f.figure))
                })
            })
            .await
            .map_err(resolve)?;
        match figure {
            None => Ok(Decimal::ZERO),
            Some(text) => text
                .parse::<Decimal>()
                .map(|d| d.normalize())
                .map_err(|e| MeteringError::Store(InfraError::internal(format!("aggregate {text}: {e}")))),
        }
    }
}
