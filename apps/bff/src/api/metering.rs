//! Metering: a tenant's sites, meters and their readings, consumption,
//! usage events and the billable metrics that add them up, and the
//! external sources readings are pulled from. Every route is gated by the
//! tenant's `metering` feature.
//!
//! Usage events are idempotent by their own ids (a batch sent again is
//! reported as duplicates), and a readings import by its readings (the same
//! reading again is a duplicate), so neither keeps an `Idempotency-Key`
//! record; the other changes honour the header.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use portico_kernel::{MeterId, MeterSourceId, MetricId, SiteId};
use portico_metering::{
    EventBatch, Granularity, MeterChanges, MeterDraft, MetricDraft, ReadingBatch, ReadingSource,
    ReadingsImport, Replacement, SiteDraft, SourceDraft,
};
use portico_store::{MeterFilter, MetricKey};
use serde::{Deserialize, Serialize};

use crate::auth::{MeteringClose, MeteringIngest, MeteringRead, MeteringWrite, Require};
use crate::db::Db;
use crate::envelope;
use crate::error::ApiError;
use crate::json::Json;
#[allow(unused_imports)] // the OpenAPI attributes name these
use crate::openapi::{
    ConsumptionEnvelope, ErrorEnvelope, IngestReportEnvelope, MeterEnvelope, MeterPageEnvelope,
    MeterSourceEnvelope, MeterSourceListEnvelope, MetricEnvelope, MetricListEnvelope, ReadingPageEnvelope,
    ReadingsAddedEnvelope, ReplacedEnvelope, SiteEnvelope, SitePageEnvelope, UsageClosedEnvelope,
    UsageFigureEnvelope,
};
use crate::server::MeteringRules;

/// A page of a list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PageQuery {
    /// 1-based page (default 1).
    #[serde(default)]
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/api/v1/metering/sites",
    tag = "metering",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of the tenant's sites, by name.", body = SitePageEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 422, description = "A bad page or limit (`request.invalid_page`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:read"]))
)]
/// Lists the tenant's sites.
pub async fn sites(
    auth: Require<MeteringRead>,
    store: Db,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = crate::api::page_request(query.page, query.limit)?;
    Ok(envelope::page(&store.sites(&auth.ctx, page).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/metering/sites",
    tag = "metering",
    request_body = SiteDraft,
    responses(
        (status = 201, description = "The site.", body = SiteEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 422, description = "A bad field, a parent that is not the tenant's, a taken `externalRef` (`metering.invalid`, each field named).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:write"]))
)]
/// Creates a site.
pub async fn create_site(
    auth: Require<MeteringWrite>,
    store: Db,
    body: Json<SiteDraft>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::created(store.create_site(&auth.ctx, body.into_inner()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/metering/sites/{id}",
    tag = "metering",
    params(("id" = String, Path, format = Uuid, description = "The site's id.")),
    responses(
        (status = 200, description = "The site.", body = SiteEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 404, description = "No such site in this tenant (`metering.site_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:read"]))
)]
/// One site.
pub async fn site(
    auth: Require<MeteringRead>,
    store: Db,
    id: web::Path<SiteId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.site(&auth.ctx, id.into_inner()).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/metering/sites/{id}",
    tag = "metering",
    params(("id" = String, Path, format = Uuid, description = "The site's id.")),
    request_body = SiteDraft,
    responses(
        (status = 200, description = "The site as changed (every field is replaced; moving it is a change of `parentId`).", body = SiteEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 404, description = "No such site in this tenant (`metering.site_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The move would put the site below itself (`metering.site_cycle`).", body = ErrorEnvelope),
        (status = 422, description = "A bad field (`metering.invalid`, each field named).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:write"]))
)]
/// Changes a site.
pub async fn update_site(
    auth: Require<MeteringWrite>,
    store: Db,
    id: web::Path<SiteId>,
    body: Json<SiteDraft>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.update_site(&auth.ctx, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/metering/sites/{id}",
    tag = "metering",
    params(("id" = String, Path, format = Uuid, description = "The site's id.")),
    responses(
        (status = 204, description = "The site is gone."),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 404, description = "No such site in this tenant (`metering.site_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "Sites or meters are below it (`metering.site_in_use`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:write"]))
)]
/// Deletes a site with nothing below it.
pub async fn delete_site(
    auth: Require<MeteringWrite>,
    store: Db,
    id: web::Path<SiteId>,
) -> Result<HttpResponse, ApiError> {
    store.delete_site(&auth.ctx, id.into_inner()).await?;
    Ok(envelope::no_content())
}

/// Which meters to list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeterQuery {
    /// 1-based page (default 1).
    #[serde(default)]
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only the meters on this site.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub site_id: Option<SiteId>,
    /// Only the meters on this subject.
    #[serde(default)]
    pub subject: Option<String>,
    /// Only those in service (`true`) or replaced and removed (`false`).
    #[serde(default)]
    pub active: Option<bool>,
}

#[utoipa::path(
    get,
    path = "/api/v1/metering/meters",
    tag = "metering",
    params(MeterQuery),
    responses(
        (status = 200, description = "A page of the tenant's meters, newest first.", body = MeterPageEnvelope),
        (status = 400, description = "A malformed filter (`request.invalid_query`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 422, description = "A bad page or limit (`request.invalid_page`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:read"]))
)]
/// Lists the tenant's meters.
pub async fn meters(
    auth: Require<MeteringRead>,
    store: Db,
    query: web::Query<MeterQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = crate::api::page_request(query.page, query.limit)?;
    let query = query.into_inner();
    let filter = MeterFilter { site_id: query.site_id, subject: query.subject, active: query.active };
    Ok(envelope::page(&store.meters(&auth.ctx, filter, page).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/metering/meters",
    tag = "metering",
    request_body = MeterDraft,
    responses(
        (status = 201, description = "The meter, in service from `activeFrom`.", body = MeterEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 422, description = "A bad field, a site that is not the tenant's (`metering.invalid`, each field named).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:write"]))
)]
/// Installs a meter.
pub async fn create_meter(
    auth: Require<MeteringWrite>,
    store: Db,
    body: Json<MeterDraft>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::created(store.install_meter(&auth.ctx, body.into_inner()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/metering/meters/{id}",
    tag = "metering",
    params(("id" = String, Path, format = Uuid, description = "The meter's id.")),
    responses(
        (status = 200, description = "The meter.", body = MeterEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 404, description = "No such meter in this tenant (`metering.meter_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:read"]))
)]
/// One meter.
pub async fn meter(
    auth: Require<MeteringRead>,
    store: Db,
    id: web::Path<MeterId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.meter(&auth.ctx, id.into_inner()).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/metering/meters/{id}",
    tag = "metering",
    params(("id" = String, Path, format = Uuid, description = "The meter's id.")),
    request_body = MeterChanges,
    responses(
        (status = 200, description = "The meter as changed.", body = MeterEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 404, description = "No such meter in this tenant (`metering.meter_not_found`).", body = ErrorEnvelope),
        (status = 422, description = "A bad field (`metering.invalid`, each field named).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:write"]))
)]
/// Moves a meter or changes its serial number.
pub async fn update_meter(
    auth: Require<MeteringWrite>,
    store: Db,
    id: web::Path<MeterId>,
    body: Json<MeterChanges>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.update_meter(&auth.ctx, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/metering/meters/{id}",
    tag = "metering",
    params(("id" = String, Path, format = Uuid, description = "The meter's id.")),
    responses(
        (status = 204, description = "The meter is gone."),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 404, description = "No such meter in this tenant (`metering.meter_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "It has readings or is part of a replacement (`metering.meter_in_use`): replace it instead.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:write"]))
)]
/// Deletes a meter installed by mistake.
pub async fn delete_meter(
    auth: Require<MeteringWrite>,
    store: Db,
    id: web::Path<MeterId>,
) -> Result<HttpResponse, ApiError> {
    store.delete_meter(&auth.ctx, id.into_inner()).await?;
    Ok(envelope::no_content())
}

#[utoipa::path(
    post,
    path = "/api/v1/metering/meters/{id}/replace",
    tag = "metering",
    params(("id" = String, Path, format = Uuid, description = "The meter's id.")),
    request_body = Replacement,
    responses(
        (status = 201, description = "The old meter closed at `at` (with its closing reading) and its successor.", body = ReplacedEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 404, description = "No such meter in this tenant (`metering.meter_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "It was replaced already (`metering.meter_replaced`), or it has another reading at `at` than the closing one given (`metering.reading_conflict`).", body = ErrorEnvelope),
        (status = 422, description = "A bad field, a time in the future or not after the meter's start, readings after it, a closing reading its register refuses (`metering.invalid`, `metering.meter_inactive`, `metering.reading_below_previous`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:write"]))
)]
/// Replaces a meter by a new one.
pub async fn replace_meter(
    auth: Require<MeteringWrite>,
    store: Db,
    rules: web::Data<MeteringRules>,
    id: web::Path<MeterId>,
    body: Json<Replacement>,
) -> Result<HttpResponse, ApiError> {
    let replaced = store.replace_meter(&auth.ctx, id.into_inner(), body.into_inner(), rules.readings).await?;
    Ok(envelope::created(replaced))
}

/// Which readings to list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadingQuery {
    /// 1-based page (default 1).
    #[serde(default)]
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
    /// From this time on (RFC 3339, inclusive).
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// Before this time (RFC 3339).
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
}

#[utoipa::path(
    get,
    path = "/api/v1/metering/meters/{id}/readings",
    tag = "metering",
    params(("id" = String, Path, format = Uuid, description = "The meter's id."), ReadingQuery),
    responses(
        (status = 200, description = "A page of the meter's readings (rejected ones too, with their reason), oldest first.", body = ReadingPageEnvelope),
        (status = 400, description = "A time that is not RFC 3339 (`request.invalid_query`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 404, description = "No such meter in this tenant (`metering.meter_not_found`).", body = ErrorEnvelope),
        (status = 422, description = "A bad page or limit (`request.invalid_page`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:read"]))
)]
/// Lists a meter's readings.
pub async fn readings(
    auth: Require<MeteringRead>,
    store: Db,
    id: web::Path<MeterId>,
    query: web::Query<ReadingQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = crate::api::page_request(query.page, query.limit)?;
    Ok(envelope::page(&store.readings(&auth.ctx, id.into_inner(), query.from, query.to, page).await?))
}

/// The period of a consumption.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsumptionQuery {
    /// Start of the period (RFC 3339).
    pub from: DateTime<Utc>,
    /// End of the period (RFC 3339).
    pub to: DateTime<Utc>,
    /// Also per local `day` or `month` of the tenant's time zone.
    #[serde(default)]
    pub granularity: Option<Granularity>,
}

#[utoipa::path(
    get,
    path = "/api/v1/metering/meters/{id}/consumption",
    tag = "metering",
    params(("id" = String, Path, format = Uuid, description = "The meter's id."), ConsumptionQuery),
    responses(
        (status = 200, description = "What the meter's place used from `from` to `to`, across the meters it replaced and that replaced it, interpolated at the edges; with a granularity, per local day or month (a daylight-saving day has 23 or 25 hours).", body = ConsumptionEnvelope),
        (status = 400, description = "A missing or malformed `from`, `to` or `granularity` (`request.invalid_query`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 404, description = "No such meter in this tenant (`metering.meter_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The readings do not reach over the period (`metering.not_covered`).", body = ErrorEnvelope),
        (status = 422, description = "`to` not after `from`, or too many buckets (`metering.invalid_period`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:read"]))
)]
/// A meter's consumption over a period.
pub async fn consumption(
    auth: Require<MeteringRead>,
    store: Db,
    id: web::Path<MeterId>,
    query: web::Query<ConsumptionQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let consumption =
        store.consumption(&auth.ctx, id.into_inner(), query.from, query.to, query.granularity).await?;
    Ok(envelope::ok(consumption))
}

#[utoipa::path(
    post,
    path = "/api/v1/metering/readings",
    tag = "metering",
    request_body = ReadingBatch,
    responses(
        (status = 200, description = "What the batch did: readings stored, duplicates (the meter had the same reading), and those flagged as spikes.", body = ReadingsAddedEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 413, description = "A body over 8 MiB (`request.too_large`).", body = ErrorEnvelope),
        (status = 422, description = "Nothing was stored: an empty or oversized batch (`metering.invalid`), or refused readings (`metering.readings_refused`; `details.readings` names each by `index` with its code: `metering.meter_not_found`, `metering.reading_in_future`, `metering.reading_below_previous`, `metering.reading_conflict`, `metering.meter_inactive`, ...).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:ingest"]))
)]
/// Adds a batch of readings, all or nothing.
pub async fn add_readings(
    auth: Require<MeteringIngest>,
    store: Db,
    rules: web::Data<MeteringRules>,
    body: Json<ReadingBatch>,
) -> Result<HttpResponse, ApiError> {
    let readings = body.into_inner().validated(ReadingSource::Manual)?;
    Ok(envelope::ok(store.add_readings(&auth.ctx, readings, rules.readings).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/metering/readings/import",
    tag = "metering",
    request_body(content = String, content_type = "text/csv", description = "UTF-8 CSV with a header line: `at` (RFC 3339 with offset), `value` (a decimal with a point), the meter as `meterId` or `serialNumber` (the meter with that number in service at `at`), and optionally `estimated` (`true`/`false`). Up to 100,000 rows and 32 MiB.", example = "serialNumber,at,value\r\n1ESY1160512345,2026-03-01T08:00:00+01:00,4711.25\r\n"),
    responses(
        (status = 200, description = "Every row stored or already there; `flagged` names lines.", body = ReadingsAddedEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 413, description = "Larger than 32 MiB (`import.too_large`).", body = ErrorEnvelope),
        (status = 415, description = "Not sent as `text/csv` (`import.not_csv`).", body = ErrorEnvelope),
        (status = 422, description = "Nothing was written (`import.invalid_rows`): `details` is the report, every bad row with its line and code (`import.invalid_time`, `import.unknown_meter`, `metering.reading_below_previous`, ...).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:ingest"]))
)]
/// Imports readings from CSV, all or nothing.
pub async fn import_readings(
    req: HttpRequest,
    auth: Require<MeteringIngest>,
    store: Db,
    rules: web::Data<MeteringRules>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let mut import = ReadingsImport::new();
    crate::api::stream_csv(&req, &mut payload, |chunk| import.feed(chunk)).await?;
    let rows = import.finish().map_err(portico_metering::MeteringError::ImportRefused)?;
    Ok(envelope::ok(store.import_readings(&auth.ctx, rows, rules.readings).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/metering/events",
    tag = "metering",
    request_body = EventBatch,
    responses(
        (status = 200, description = "What the batch did: events stored, ids seen before (in the batch or earlier; counted once), and events refused because their period is closed past its grace (`closed`).", body = IngestReportEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 413, description = "A body over 8 MiB (`request.too_large`).", body = ErrorEnvelope),
        (status = 422, description = "Nothing was stored: a bad event (`metering.invalid`, each field named as `events[3].metricCode`), or every event falls in closed usage past its grace (`metering.usage_closed`; `details.closed` lists them, `details.closedThrough` the instant). An event dated over 5 minutes ahead, or a number beyond 28 significant digits, is a bad event.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:ingest"]))
)]
/// Ingests a batch of up to 1,000 usage events.
pub async fn ingest_events(
    auth: Require<MeteringIngest>,
    store: Db,
    rules: web::Data<MeteringRules>,
    body: Json<EventBatch>,
) -> Result<HttpResponse, ApiError> {
    let now = chrono::SubsecRound::trunc_subsecs(store.clock().now(), 6);
    let events = body.into_inner().validated(now)?;
    let report = store.ingest_usage(&auth.ctx, events, rules.usage_grace).await?;
    Ok(envelope::ok(report))
}

/// The figure asked for.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsageQuery {
    /// The billable metric's code.
    pub metric: String,
    /// Only this subject's events.
    #[serde(default)]
    pub subject: Option<String>,
    /// Start of the period (RFC 3339, inclusive).
    pub from: DateTime<Utc>,
    /// End of the period (RFC 3339, exclusive).
    pub to: DateTime<Utc>,
    /// `subject`: the figure of each subject as well.
    #[serde(default)]
    pub group_by: Option<GroupBy>,
}

/// How a usage figure is broken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum GroupBy {
    /// Per subject.
    Subject,
}

#[utoipa::path(
    get,
    path = "/api/v1/metering/usage",
    tag = "metering",
    params(UsageQuery),
    responses(
        (status = 200, description = "The metric's figure over `[from, to)`, computed in the database (a count, sum or max without filters from hourly rollups and the period's edges), and per subject with `groupBy=subject` (only the subject asked for, if one is).", body = UsageFigureEnvelope),
        (status = 400, description = "A missing or malformed parameter (`request.invalid_query`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 404, description = "No metric with that code in this tenant (`metering.metric_not_found`).", body = ErrorEnvelope),
        (status = 422, description = "`to` not after `from` (`metering.invalid_period`), or a sum beyond 28 significant digits (`metering.figure_too_large`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:read"]))
)]
/// A billable metric's usage over a period.
pub async fn usage(
    auth: Require<MeteringRead>,
    store: Db,
    query: web::Query<UsageQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let by_subject = query.group_by == Some(GroupBy::Subject);
    let figure =
        store.usage_figure(&auth.ctx, query.metric, query.subject, query.from, query.to, by_subject).await?;
    Ok(envelope::ok(figure))
}

/// Closes usage through an instant.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"through": "2026-03-01T00:00:00Z"}))]
pub struct CloseUsage {
    /// Usage before this instant is closed (not in the future; it only moves forward).
    pub through: DateTime<Utc>,
}

/// The tenant's usage closing instant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"closedThrough": "2026-03-01T00:00:00Z", "graceHours": 72}))]
pub struct UsageClosed {
    /// Usage before this instant is closed.
    pub closed_through: DateTime<Utc>,
    /// Hours after which late events for it are refused.
    pub grace_hours: i64,
}

#[utoipa::path(
    post,
    path = "/api/v1/metering/usage/close",
    tag = "metering",
    request_body = CloseUsage,
    responses(
        (status = 200, description = "The closing instant now in force (a later one already set stays).", body = UsageClosedEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 422, description = "An instant in the future (`metering.invalid_period`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:close"]))
)]
/// Closes the tenant's usage through an instant (billing will do this itself).
pub async fn close_usage(
    auth: Require<MeteringClose>,
    store: Db,
    rules: web::Data<MeteringRules>,
    body: Json<CloseUsage>,
) -> Result<HttpResponse, ApiError> {
    let closed_through = store.close_usage(&auth.ctx, body.into_inner().through).await?;
    Ok(envelope::ok(UsageClosed { closed_through, grace_hours: rules.usage_grace.num_hours() }))
}

#[utoipa::path(
    get,
    path = "/api/v1/metering/metrics",
    tag = "metering",
    responses(
        (status = 200, description = "The tenant's billable metrics, by code.", body = MetricListEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:read"]))
)]
/// Lists the billable metrics.
pub async fn metrics(auth: Require<MeteringRead>, store: Db) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.metrics(&auth.ctx).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/metering/metrics",
    tag = "metering",
    request_body = MetricDraft,
    responses(
        (status = 201, description = "The metric.", body = MetricEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 409, description = "Another metric has the code (`metering.metric_code_taken`).", body = ErrorEnvelope),
        (status = 422, description = "A bad field (`metering.invalid`, or `request.invalid_body` for an unknown aggregation or a stray field).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:write"]))
)]
/// Defines a billable metric.
pub async fn create_metric(
    auth: Require<MeteringWrite>,
    store: Db,
    body: Json<MetricDraft>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::created(store.define_metric(&auth.ctx, body.into_inner()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/metering/metrics/{id}",
    tag = "metering",
    params(("id" = String, Path, format = Uuid, description = "The metric's id.")),
    responses(
        (status = 200, description = "The metric.", body = MetricEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 404, description = "No such metric in this tenant (`metering.metric_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:read"]))
)]
/// One billable metric.
pub async fn metric(
    auth: Require<MeteringRead>,
    store: Db,
    id: web::Path<MetricId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.metric(&auth.ctx, MetricKey::Id(id.into_inner())).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/metering/metrics/{id}",
    tag = "metering",
    params(("id" = String, Path, format = Uuid, description = "The metric's id.")),
    request_body = MetricDraft,
    responses(
        (status = 200, description = "The metric as redefined; figures asked for afterwards follow the new definition.", body = MetricEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 404, description = "No such metric in this tenant (`metering.metric_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "Another metric has the code (`metering.metric_code_taken`).", body = ErrorEnvelope),
        (status = 422, description = "A bad field (`metering.invalid`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:write"]))
)]
/// Redefines a billable metric.
pub async fn update_metric(
    auth: Require<MeteringWrite>,
    store: Db,
    id: web::Path<MetricId>,
    body: Json<MetricDraft>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.redefine_metric(&auth.ctx, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/metering/metrics/{id}",
    tag = "metering",
    params(("id" = String, Path, format = Uuid, description = "The metric's id.")),
    responses(
        (status = 204, description = "The metric is gone; its events stay."),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 404, description = "No such metric in this tenant (`metering.metric_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:write"]))
)]
/// Deletes a billable metric.
pub async fn delete_metric(
    auth: Require<MeteringWrite>,
    store: Db,
    id: web::Path<MetricId>,
) -> Result<HttpResponse, ApiError> {
    store.delete_metric(&auth.ctx, id.into_inner()).await?;
    Ok(envelope::no_content())
}

#[utoipa::path(
    get,
    path = "/api/v1/metering/sources",
    tag = "metering",
    responses(
        (status = 200, description = "The tenant's meter data sources, with when each was last pulled and how.", body = MeterSourceListEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:read"]))
)]
/// Lists the meter data sources.
pub async fn sources(auth: Require<MeteringRead>, store: Db) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.meter_sources(&auth.ctx).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/metering/sources",
    tag = "metering",
    request_body = SourceDraft,
    responses(
        (status = 201, description = "The source; it is pulled at the next sweep (each minute), then every `everyMinutes`.", body = MeterSourceEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 422, description = "A bad field: an address that is not plain http(s) or (unless the platform allows it) a loopback, private or link-local one, a meter that is not the tenant's, an interval under 5 minutes (`metering.invalid`, each field named).", body = ErrorEnvelope),
        (status = 409, description = "The tenant has 20 sources already (`metering.too_many_sources`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:write"]))
)]
/// Configures a meter data source.
pub async fn create_source(
    auth: Require<MeteringWrite>,
    store: Db,
    rules: web::Data<MeteringRules>,
    body: Json<SourceDraft>,
) -> Result<HttpResponse, ApiError> {
    let draft = body.into_inner();
    // Addresses written as private ones are refused at once; names are checked at each pull.
    if !rules.allow_private_sources
        && let Some(address) = draft.base_url.as_deref()
        && crate::jobs::names_private_host(address)
    {
        let fields = portico_kernel::ValidationErrors::field(
            "baseUrl",
            "must not be a loopback, private or link-local address",
        );
        return Err(ApiError::invalid("metering.invalid", &fields));
    }
    Ok(envelope::created(store.create_meter_source(&auth.ctx, draft).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/metering/sources/{id}",
    tag = "metering",
    params(("id" = String, Path, format = Uuid, description = "The source's id.")),
    responses(
        (status = 204, description = "The source is gone; the readings it brought stay."),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the metering feature.", body = ErrorEnvelope),
        (status = 404, description = "No such source in this tenant (`metering.source_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["metering:write"]))
)]
/// Removes a meter data source.
pub async fn delete_source(
    auth: Require<MeteringWrite>,
    store: Db,
    id: web::Path<MeterSourceId>,
) -> Result<HttpResponse, ApiError> {
    store.delete_meter_source(&auth.ctx, id.into_inner()).await?;
    Ok(envelope::no_content())
}
