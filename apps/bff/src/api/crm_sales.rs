//! CRM sales: leads and their conversion, pipelines and their stages,
//! deals and their moves with their stage history, and the sales figures.
//! Every route is gated by the tenant's `crm` feature; reads need
//! `crm:read`, changes `crm:write`, and every change honours
//! `Idempotency-Key` and leaves one audit row (`crm.lead.*`,
//! `crm.pipeline.*`, `crm.stage.*`, `crm.deal.*`).

use actix_web::{HttpResponse, Route, web};
use chrono::{DateTime, NaiveDate, Utc};
use portico_crm::{
    ChangeLeadStatus, ConvertLead, CrmAnalytics, Deal, DealChanges, DealDraft, Lead, LeadDraft, LeadSource,
    LeadStatus, MoveDeal, NewStage, Pipeline, PipelineDraft, RenamePipeline, ReorderStages, StageChange,
    StageChanges, StageKind,
};
use portico_kernel::{CompanyId, ContactId, Currency, DealId, LeadId, PipelineId, StageId, UserId};
use portico_store::{DealFilter, DealSort, LeadConversion, LeadFilter, LeadSort};
use serde::Deserialize;

use crate::api::RouteSpec;
#[allow(unused_imports)] // the route list names both
use crate::api::{read, write};
use crate::auth::{CrmRead, CrmWrite, Require};
use crate::db::Db;
use crate::envelope;
use crate::error::ApiError;
use crate::json::Json;
use crate::openapi::ErrorEnvelope;

crate::openapi::envelopes! {
    /// `{"success": true, "data": Lead}`.
    LeadEnvelope => Lead;
    /// `{"success": true, "data": LeadConversion}`.
    LeadConversionEnvelope => LeadConversion;
    /// `{"success": true, "data": [Pipeline]}`.
    PipelineListEnvelope => Vec<Pipeline>;
    /// `{"success": true, "data": Pipeline}`.
    PipelineEnvelope => Pipeline;
    /// `{"success": true, "data": Deal}`.
    DealEnvelope => Deal;
    /// `{"success": true, "data": [StageChange]}`.
    StageChangeListEnvelope => Vec<StageChange>;
    /// `{"success": true, "data": CrmAnalytics}`.
    CrmAnalyticsEnvelope => CrmAnalytics;
}

crate::openapi::page_envelopes! {
    /// `{"success": true, "data": [Lead], "meta": PageMeta}`.
    LeadPageEnvelope => Lead;
    /// `{"success": true, "data": [Deal], "meta": PageMeta}`.
    DealPageEnvelope => Deal;
}

/// Which leads to list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeadQuery {
    /// 1-based page (default 1).
    #[serde(default)]
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only leads with this status.
    #[serde(default)]
    pub status: Option<LeadStatus>,
    /// Only leads this user owns.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub owner_id: Option<UserId>,
    /// Only leads with this tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// Only leads from this source.
    #[serde(default)]
    pub source: Option<LeadSource>,
    /// Only leads created at or after this instant (RFC 3339).
    #[serde(default)]
    pub created_from: Option<DateTime<Utc>>,
    /// Only leads created before this instant (RFC 3339).
    #[serde(default)]
    pub created_to: Option<DateTime<Utc>>,
    /// Search: every word must start a word of the lead's name, email or company name.
    #[serde(default)]
    pub q: Option<String>,
    /// `createdAt`, `-createdAt` (default), `name` or `-name`.
    #[serde(default)]
    #[param(value_type = Option<String>, example = "-createdAt")]
    pub sort: Option<LeadSort>,
}

impl LeadQuery {
    fn filter(self) -> LeadFilter {
        LeadFilter {
            status: self.status,
            owner_id: self.owner_id,
            tag: self.tag,
            source: self.source,
            created_from: self.created_from,
            created_to: self.created_to,
            q: self.q,
            sort: self.sort.unwrap_or_default(),
        }
    }
}

/// Which deals to list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DealQuery {
    /// 1-based page (default 1).
    #[serde(default)]
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only the deals on this pipeline.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub pipeline_id: Option<PipelineId>,
    /// Only the deals in this stage.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub stage_id: Option<StageId>,
    /// Only `open`, `won` or `lost` deals.
    #[serde(default)]
    pub status: Option<StageKind>,
    /// Only the deals this user owns.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub owner_id: Option<UserId>,
    /// Only the deals with this contact.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub contact_id: Option<ContactId>,
    /// Only the deals with this company.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub company_id: Option<CompanyId>,
    /// Only the deals expected to close on or after this day.
    #[serde(default)]
    pub close_from: Option<NaiveDate>,
    /// Only the deals expected to close on or before this day.
    #[serde(default)]
    pub close_to: Option<NaiveDate>,
    /// Only the deals created at or after this instant (RFC 3339).
    #[serde(default)]
    pub created_from: Option<DateTime<Utc>>,
    /// Only the deals created before this instant (RFC 3339).
    #[serde(default)]
    pub created_to: Option<DateTime<Utc>>,
    /// `createdAt`, `-createdAt` (default), `value`, `-value` or `expectedCloseDate`.
    #[serde(default)]
    #[param(value_type = Option<String>, example = "-value")]
    pub sort: Option<DealSort>,
}

impl DealQuery {
    fn filter(self) -> DealFilter {
        DealFilter {
            pipeline_id: self.pipeline_id,
            stage_id: self.stage_id,
            status: self.status,
            owner_id: self.owner_id,
            contact_id: self.contact_id,
            company_id: self.company_id,
            close_from: self.close_from,
            close_to: self.close_to,
            created_from: self.created_from,
            created_to: self.created_to,
            sort: self.sort.unwrap_or_default(),
        }
    }
}

/// Where a removed stage's deals go.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoveStageQuery {
    /// An open stage of the same pipeline; required when the stage holds deals.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub move_deals_to: Option<StageId>,
}

/// Which figures.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalyticsQuery {
    /// One pipeline (default: every pipeline of the tenant).
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub pipeline_id: Option<PipelineId>,
    /// The currency of the values, an ISO 4217 code (default: the tenant's); deals in others are counted apart.
    #[serde(default)]
    #[param(value_type = Option<String>, example = "EUR")]
    pub currency: Option<Currency>,
}

#[utoipa::path(
    get,
    path = "/api/v1/crm/leads",
    tag = "crm-sales",
    params(LeadQuery),
    responses(
        (status = 200, description = "A page of the tenant's leads, filtered and sorted (newest first by default).", body = LeadPageEnvelope),
        (status = 400, description = "A malformed filter (`request.invalid_query`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:read`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 422, description = "A bad page or limit (`request.invalid_page`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:read"]))
)]
/// Lists the tenant's leads: filters by status, owner, tag, source, creation time, and `q` (every word a prefix of a word of the name, email or company name).
pub async fn leads(
    auth: Require<CrmRead>,
    store: Db,
    query: web::Query<LeadQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = crate::api::page_request(query.page, query.limit)?;
    Ok(envelope::page(&store.leads(&auth.ctx, query.filter(), page).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/crm/leads",
    tag = "crm-sales",
    request_body = LeadDraft,
    responses(
        (status = 201, description = "The lead, status `new`; email and phone normalised.", body = LeadEnvelope),
        (status = 400, description = "A body that is not the JSON described (`request.invalid_json`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:write`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 422, description = "A bad field, a phone or email that does not read, an owner who is no member (`crm.invalid`, each field named).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Creates a lead.
pub async fn create_lead(
    auth: Require<CrmWrite>,
    store: Db,
    body: Json<LeadDraft>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::created(store.create_lead(&auth.ctx, body.into_inner()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/crm/leads/{id}",
    tag = "crm-sales",
    params(("id" = String, Path, format = Uuid, description = "The lead's id.")),
    responses(
        (status = 200, description = "The lead.", body = LeadEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:read`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 404, description = "No such lead in this tenant (`crm.lead_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:read"]))
)]
/// One lead.
pub async fn lead(
    auth: Require<CrmRead>,
    store: Db,
    id: web::Path<LeadId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.lead(&auth.ctx, id.into_inner()).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/crm/leads/{id}",
    tag = "crm-sales",
    params(("id" = String, Path, format = Uuid, description = "The lead's id.")),
    request_body = LeadDraft,
    responses(
        (status = 200, description = "The lead with every field replaced (its status is kept).", body = LeadEnvelope),
        (status = 400, description = "A body that is not the JSON described (`request.invalid_json`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:write`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 404, description = "No such lead in this tenant (`crm.lead_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The lead was converted and changes no more (`crm.lead_converted`).", body = ErrorEnvelope),
        (status = 422, description = "A bad field (`crm.invalid`, each field named).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Changes a lead's details.
pub async fn update_lead(
    auth: Require<CrmWrite>,
    store: Db,
    id: web::Path<LeadId>,
    body: Json<LeadDraft>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.update_lead(&auth.ctx, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/crm/leads/{id}",
    tag = "crm-sales",
    params(("id" = String, Path, format = Uuid, description = "The lead's id.")),
    responses(
        (status = 204, description = "The lead is gone, with the activities about it alone; an activity that also names another record stays, no longer linked to the lead."),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:write`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 404, description = "No such lead in this tenant (`crm.lead_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Deletes a lead.
pub async fn delete_lead(
    auth: Require<CrmWrite>,
    store: Db,
    id: web::Path<LeadId>,
) -> Result<HttpResponse, ApiError> {
    store.delete_lead(&auth.ctx, id.into_inner()).await?;
    Ok(envelope::no_content())
}

#[utoipa::path(
    post,
    path = "/api/v1/crm/leads/{id}/status",
    tag = "crm-sales",
    params(("id" = String, Path, format = Uuid, description = "The lead's id.")),
    request_body = ChangeLeadStatus,
    responses(
        (status = 200, description = "The lead in its new status.", body = LeadEnvelope),
        (status = 400, description = "A body that is not the JSON described (`request.invalid_json`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:write`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 404, description = "No such lead in this tenant (`crm.lead_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The status machine does not allow the move (`crm.lead_transition`), or the lead is converted (`crm.lead_converted`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Moves a lead to another status (new → contacted/qualified/unqualified, ...; `converted` only by converting).
pub async fn change_lead_status(
    auth: Require<CrmWrite>,
    store: Db,
    id: web::Path<LeadId>,
    body: Json<ChangeLeadStatus>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.change_lead_status(&auth.ctx, id.into_inner(), body.into_inner().status).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/crm/leads/{id}/convert",
    tag = "crm-sales",
    params(("id" = String, Path, format = Uuid, description = "The lead's id.")),
    request_body = ConvertLead,
    responses(
        (status = 200, description = "The lead, converted, and the contact, company and deal made or linked.", body = LeadConversionEnvelope),
        (status = 400, description = "A body that is not the JSON described (`request.invalid_json`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:write`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 404, description = "No such lead in this tenant (`crm.lead_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The lead was converted already (`crm.lead_converted`) or is not qualified (`crm.lead_not_qualified`).", body = ErrorEnvelope),
        (status = 422, description = "A named contact, company or pipeline that is not the tenant's, a stage not in the pipeline, a deal without a value (`crm.invalid`, `crm.stage_not_in_pipeline`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Converts a qualified lead in one step: links the contact with its email (or makes one), the company with its email's domain or its name (or makes one), optionally makes a deal, and marks the lead converted.
pub async fn convert_lead(
    auth: Require<CrmWrite>,
    store: Db,
    id: web::Path<LeadId>,
    body: Json<ConvertLead>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.convert_lead(&auth.ctx, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/crm/pipelines",
    tag = "crm-sales",
    responses(
        (status = 200, description = "The tenant's pipelines, oldest first, each with its stages in order; none until one is created (`POST /api/v1/crm/pipelines` without `stages` makes one with the default sales stages). Reading creates nothing.", body = PipelineListEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:read`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:read"]))
)]
/// Lists the tenant's pipelines.
pub async fn pipelines(auth: Require<CrmRead>, store: Db) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.pipelines(&auth.ctx).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/crm/pipelines",
    tag = "crm-sales",
    request_body = PipelineDraft,
    responses(
        (status = 201, description = "The pipeline (with the default sales stages unless it lists its own).", body = PipelineEnvelope),
        (status = 400, description = "A body that is not the JSON described (`request.invalid_json`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:write`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 409, description = "Another pipeline has this name (`crm.pipeline_name_taken`).", body = ErrorEnvelope),
        (status = 422, description = "A bad name or stage list: at least one open stage, one won, one lost, open first, names unique (`crm.invalid`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Creates a pipeline.
pub async fn create_pipeline(
    auth: Require<CrmWrite>,
    store: Db,
    body: Json<PipelineDraft>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::created(store.create_pipeline(&auth.ctx, body.into_inner()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/crm/pipelines/{id}",
    tag = "crm-sales",
    params(("id" = String, Path, format = Uuid, description = "The pipeline's id.")),
    responses(
        (status = 200, description = "The pipeline with its stages.", body = PipelineEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:read`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 404, description = "No such pipeline in this tenant (`crm.pipeline_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:read"]))
)]
/// One pipeline.
pub async fn pipeline(
    auth: Require<CrmRead>,
    store: Db,
    id: web::Path<PipelineId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.pipeline(&auth.ctx, id.into_inner()).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/crm/pipelines/{id}",
    tag = "crm-sales",
    params(("id" = String, Path, format = Uuid, description = "The pipeline's id.")),
    request_body = RenamePipeline,
    responses(
        (status = 200, description = "The pipeline, renamed.", body = PipelineEnvelope),
        (status = 400, description = "A body that is not the JSON described (`request.invalid_json`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:write`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 404, description = "No such pipeline in this tenant (`crm.pipeline_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "Another pipeline has this name (`crm.pipeline_name_taken`).", body = ErrorEnvelope),
        (status = 422, description = "A bad name (`crm.invalid`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Renames a pipeline.
pub async fn rename_pipeline(
    auth: Require<CrmWrite>,
    store: Db,
    id: web::Path<PipelineId>,
    body: Json<RenamePipeline>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.rename_pipeline(&auth.ctx, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/crm/pipelines/{id}",
    tag = "crm-sales",
    params(("id" = String, Path, format = Uuid, description = "The pipeline's id.")),
    responses(
        (status = 204, description = "The pipeline and its stages are gone."),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:write`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 404, description = "No such pipeline in this tenant (`crm.pipeline_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The pipeline holds deals (`crm.pipeline_has_deals`; the message says how many): move or delete them first.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Deletes a pipeline without deals.
pub async fn delete_pipeline(
    auth: Require<CrmWrite>,
    store: Db,
    id: web::Path<PipelineId>,
) -> Result<HttpResponse, ApiError> {
    store.delete_pipeline(&auth.ctx, id.into_inner()).await?;
    Ok(envelope::no_content())
}

#[utoipa::path(
    post,
    path = "/api/v1/crm/pipelines/{id}/stages",
    tag = "crm-sales",
    params(("id" = String, Path, format = Uuid, description = "The pipeline's id.")),
    request_body = NewStage,
    responses(
        (status = 200, description = "The pipeline with the new open stage.", body = PipelineEnvelope),
        (status = 400, description = "A body that is not the JSON described (`request.invalid_json`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:write`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 404, description = "No such pipeline in this tenant (`crm.pipeline_not_found`).", body = ErrorEnvelope),
        (status = 422, description = "A bad name or probability, a name taken in the pipeline, a position after the won and lost stages, more than 30 stages (`crm.invalid`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Adds an open stage to a pipeline.
pub async fn add_stage(
    auth: Require<CrmWrite>,
    store: Db,
    id: web::Path<PipelineId>,
    body: Json<NewStage>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.add_stage(&auth.ctx, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/crm/pipelines/{id}/stages/reorder",
    tag = "crm-sales",
    params(("id" = String, Path, format = Uuid, description = "The pipeline's id.")),
    request_body = ReorderStages,
    responses(
        (status = 200, description = "The pipeline with its stages in the new order.", body = PipelineEnvelope),
        (status = 400, description = "A body that is not the JSON described (`request.invalid_json`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:write`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 404, description = "No such pipeline in this tenant (`crm.pipeline_not_found`).", body = ErrorEnvelope),
        (status = 422, description = "Not every stage exactly once, or an open stage after a closed one (`crm.invalid`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Puts a pipeline's stages in a new order (the deals stay in their stages).
pub async fn reorder_stages(
    auth: Require<CrmWrite>,
    store: Db,
    id: web::Path<PipelineId>,
    body: Json<ReorderStages>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.reorder_stages(&auth.ctx, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/crm/pipelines/{id}/stages/{stageId}",
    tag = "crm-sales",
    params(("id" = String, Path, format = Uuid, description = "The pipeline's id."), ("stageId" = String, Path, format = Uuid, description = "The stage's id.")),
    request_body = StageChanges,
    responses(
        (status = 200, description = "The pipeline with the stage changed.", body = PipelineEnvelope),
        (status = 400, description = "A body that is not the JSON described (`request.invalid_json`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:write`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 404, description = "No such pipeline (`crm.pipeline_not_found`) or stage in it (`crm.stage_not_found`).", body = ErrorEnvelope),
        (status = 422, description = "A bad or taken name, a probability other than 100 for won or 0 for lost (`crm.invalid`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Renames a stage or changes its default probability.
pub async fn update_stage(
    auth: Require<CrmWrite>,
    store: Db,
    path: web::Path<(PipelineId, StageId)>,
    body: Json<StageChanges>,
) -> Result<HttpResponse, ApiError> {
    let (id, stage) = path.into_inner();
    Ok(envelope::ok(store.update_stage(&auth.ctx, id, stage, body.into_inner()).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/crm/pipelines/{id}/stages/{stageId}",
    tag = "crm-sales",
    params(
        ("id" = String, Path, format = Uuid, description = "The pipeline's id."),
        ("stageId" = String, Path, format = Uuid, description = "The stage's id."),
        RemoveStageQuery,
    ),
    responses(
        (status = 200, description = "The pipeline without the stage; its deals, if any, moved to `moveDealsTo` with the move in each one's history.", body = PipelineEnvelope),
        (status = 400, description = "A malformed filter (`request.invalid_query`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:write`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 404, description = "No such pipeline (`crm.pipeline_not_found`) or stage in it (`crm.stage_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The stage holds deals and no `moveDealsTo` was given (`crm.stage_has_deals`, `details.deals`), or it is the won, the lost or the last open stage (`crm.stage_required`).", body = ErrorEnvelope),
        (status = 422, description = "`moveDealsTo` is not an open stage of this pipeline (`crm.stage_not_in_pipeline`, `crm.invalid`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Removes an open stage, moving its deals to another stage of the pipeline in the same transaction.
pub async fn remove_stage(
    auth: Require<CrmWrite>,
    store: Db,
    path: web::Path<(PipelineId, StageId)>,
    query: web::Query<RemoveStageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (id, stage) = path.into_inner();
    Ok(envelope::ok(store.remove_stage(&auth.ctx, id, stage, query.move_deals_to).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/crm/deals",
    tag = "crm-sales",
    params(DealQuery),
    responses(
        (status = 200, description = "A page of the tenant's deals, filtered and sorted (newest first by default).", body = DealPageEnvelope),
        (status = 400, description = "A malformed filter (`request.invalid_query`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:read`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 422, description = "A bad page or limit (`request.invalid_page`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:read"]))
)]
/// Lists the tenant's deals: filters by pipeline, stage, status, owner, contact, company, expected close date and creation time.
pub async fn deals(
    auth: Require<CrmRead>,
    store: Db,
    query: web::Query<DealQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = crate::api::page_request(query.page, query.limit)?;
    Ok(envelope::page(&store.deals(&auth.ctx, query.filter(), page).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/crm/deals",
    tag = "crm-sales",
    request_body = DealDraft,
    responses(
        (status = 201, description = "The deal, open, in the stage named or the pipeline's first; owned by the caller unless `ownerId` names a member.", body = DealEnvelope),
        (status = 400, description = "A body that is not the JSON described (`request.invalid_json`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:write`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 422, description = "A bad field; a pipeline, contact or company that is not the tenant's; an owner who is no member; a stage not in the pipeline or not open (`crm.invalid`, `crm.stage_not_in_pipeline`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Creates a deal.
pub async fn create_deal(
    auth: Require<CrmWrite>,
    store: Db,
    body: Json<DealDraft>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::created(store.create_deal(&auth.ctx, body.into_inner()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/crm/deals/{id}",
    tag = "crm-sales",
    params(("id" = String, Path, format = Uuid, description = "The deal's id.")),
    responses(
        (status = 200, description = "The deal.", body = DealEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:read`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 404, description = "No such deal in this tenant (`crm.deal_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:read"]))
)]
/// One deal.
pub async fn deal(
    auth: Require<CrmRead>,
    store: Db,
    id: web::Path<DealId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.deal(&auth.ctx, id.into_inner()).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/crm/deals/{id}",
    tag = "crm-sales",
    params(("id" = String, Path, format = Uuid, description = "The deal's id.")),
    request_body = DealChanges,
    responses(
        (status = 200, description = "The deal with its details replaced (its stage is changed by a move).", body = DealEnvelope),
        (status = 400, description = "A body that is not the JSON described (`request.invalid_json`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:write`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 404, description = "No such deal in this tenant (`crm.deal_not_found`).", body = ErrorEnvelope),
        (status = 422, description = "A bad field; a contact or company that is not the tenant's; an owner who is no member; a probability on a closed deal (`crm.invalid`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Changes a deal's details.
pub async fn update_deal(
    auth: Require<CrmWrite>,
    store: Db,
    id: web::Path<DealId>,
    body: Json<DealChanges>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.update_deal(&auth.ctx, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/crm/deals/{id}",
    tag = "crm-sales",
    params(("id" = String, Path, format = Uuid, description = "The deal's id.")),
    responses(
        (status = 204, description = "The deal and its stage history are gone, with the activities about it alone; an activity that also names another record stays, no longer linked to the deal."),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:write`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 404, description = "No such deal in this tenant (`crm.deal_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Deletes a deal.
pub async fn delete_deal(
    auth: Require<CrmWrite>,
    store: Db,
    id: web::Path<DealId>,
) -> Result<HttpResponse, ApiError> {
    store.delete_deal(&auth.ctx, id.into_inner()).await?;
    Ok(envelope::no_content())
}

#[utoipa::path(
    get,
    path = "/api/v1/crm/deals/{id}/history",
    tag = "crm-sales",
    params(("id" = String, Path, format = Uuid, description = "The deal's id.")),
    responses(
        (status = 200, description = "The deal's moves between stages, oldest first: from, to, when, by whom, why.", body = StageChangeListEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:read`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 404, description = "No such deal in this tenant (`crm.deal_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:read"]))
)]
/// A deal's stage history.
pub async fn deal_history(
    auth: Require<CrmRead>,
    store: Db,
    id: web::Path<DealId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.deal_history(&auth.ctx, id.into_inner()).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/crm/deals/{id}/move",
    tag = "crm-sales",
    params(("id" = String, Path, format = Uuid, description = "The deal's id.")),
    request_body = MoveDeal,
    responses(
        (status = 200, description = "The deal in its new stage (won or lost closes it, an open stage reopens it); the move is in its history.", body = DealEnvelope),
        (status = 400, description = "A body that is not the JSON described (`request.invalid_json`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:write`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 404, description = "No such deal in this tenant (`crm.deal_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The deal is already in that stage (`crm.deal_already_in_stage`).", body = ErrorEnvelope),
        (status = 422, description = "A stage not in the pipeline (`crm.stage_not_in_pipeline`), a lost stage without a reason (`crm.lost_reason_required`), a pipeline that is not the tenant's or a bad field (`crm.invalid`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Moves a deal to another stage, or another pipeline's stage.
pub async fn move_deal(
    auth: Require<CrmWrite>,
    store: Db,
    id: web::Path<DealId>,
    body: Json<MoveDeal>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.move_deal(&auth.ctx, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/crm/analytics",
    tag = "crm-sales",
    params(AnalyticsQuery),
    responses(
        (status = 200, description = "Per pipeline and stage: deals, value and weighted value in the currency asked (others apart); win rate, average days to close, conversion lead → deal → won. `leadToDeal` is the share of all the tenant's leads whose conversion made a deal that still exists; with `pipelineId`, only deals on that pipeline count as made, while the leads counted are still all the tenant's (leads belong to no pipeline). `dealToWon` and the win rate count the deals of `pipelineId` if given, else all. A tenant without pipelines gets no pipeline summaries (a read creates none).", body = CrmAnalyticsEnvelope),
        (status = 400, description = "A malformed filter, a currency that is not an ISO 4217 code included (`request.invalid_query`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks `crm:read`, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 404, description = "`pipelineId` names no pipeline of this tenant (`crm.pipeline_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:read"]))
)]
/// The tenant's sales figures.
pub async fn analytics(
    auth: Require<CrmRead>,
    store: Db,
    query: web::Query<AnalyticsQuery>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.crm_analytics(&auth.ctx, query.pipeline_id, query.currency).await?))
}

/// This area's routes, with their guarantees. `stages/reorder` comes
/// before `stages/{stageId}`: the first path that matches is the one served.
pub(crate) const ROUTES: &[RouteSpec] = &[
    read("/api/v1/crm/leads").gated("crm"),
    write("POST", "/api/v1/crm/leads").gated("crm"),
    read("/api/v1/crm/leads/{id}").gated("crm"),
    write("PUT", "/api/v1/crm/leads/{id}").gated("crm"),
    write("DELETE", "/api/v1/crm/leads/{id}").gated("crm"),
    write("POST", "/api/v1/crm/leads/{id}/status").gated("crm"),
    write("POST", "/api/v1/crm/leads/{id}/convert").gated("crm"),
    read("/api/v1/crm/pipelines").gated("crm"),
    write("POST", "/api/v1/crm/pipelines").gated("crm"),
    read("/api/v1/crm/pipelines/{id}").gated("crm"),
    write("PUT", "/api/v1/crm/pipelines/{id}").gated("crm"),
    write("DELETE", "/api/v1/crm/pipelines/{id}").gated("crm"),
    write("POST", "/api/v1/crm/pipelines/{id}/stages").gated("crm"),
    write("POST", "/api/v1/crm/pipelines/{id}/stages/reorder").gated("crm"),
    write("PUT", "/api/v1/crm/pipelines/{id}/stages/{stageId}").gated("crm"),
    write("DELETE", "/api/v1/crm/pipelines/{id}/stages/{stageId}").gated("crm"),
    read("/api/v1/crm/deals").gated("crm"),
    write("POST", "/api/v1/crm/deals").gated("crm"),
    read("/api/v1/crm/deals/{id}").gated("crm"),
    write("PUT", "/api/v1/crm/deals/{id}").gated("crm"),
    write("DELETE", "/api/v1/crm/deals/{id}").gated("crm"),
    read("/api/v1/crm/deals/{id}/history").gated("crm"),
    write("POST", "/api/v1/crm/deals/{id}/move").gated("crm"),
    read("/api/v1/crm/analytics").gated("crm"),
];

/// The handler of one of [`ROUTES`].
pub(crate) fn handler(method: &str, path: &str) -> Option<Route> {
    Some(match (method, path) {
        ("GET", "/api/v1/crm/leads") => web::get().to(leads),
        ("POST", "/api/v1/crm/leads") => web::post().to(create_lead),
        ("GET", "/api/v1/crm/leads/{id}") => web::get().to(lead),
        ("PUT", "/api/v1/crm/leads/{id}") => web::put().to(update_lead),
        ("DELETE", "/api/v1/crm/leads/{id}") => web::delete().to(delete_lead),
        ("POST", "/api/v1/crm/leads/{id}/status") => web::post().to(change_lead_status),
        ("POST", "/api/v1/crm/leads/{id}/convert") => web::post().to(convert_lead),
        ("GET", "/api/v1/crm/pipelines") => web::get().to(pipelines),
        ("POST", "/api/v1/crm/pipelines") => web::post().to(create_pipeline),
        ("GET", "/api/v1/crm/pipelines/{id}") => web::get().to(pipeline),
        ("PUT", "/api/v1/crm/pipelines/{id}") => web::put().to(rename_pipeline),
        ("DELETE", "/api/v1/crm/pipelines/{id}") => web::delete().to(delete_pipeline),
        ("POST", "/api/v1/crm/pipelines/{id}/stages") => web::post().to(add_stage),
        ("POST", "/api/v1/crm/pipelines/{id}/stages/reorder") => web::post().to(reorder_stages),
        ("PUT", "/api/v1/crm/pipelines/{id}/stages/{stageId}") => web::put().to(update_stage),
        ("DELETE", "/api/v1/crm/pipelines/{id}/stages/{stageId}") => web::delete().to(remove_stage),
        ("GET", "/api/v1/crm/deals") => web::get().to(deals),
        ("POST", "/api/v1/crm/deals") => web::post().to(create_deal),
        ("GET", "/api/v1/crm/deals/{id}") => web::get().to(deal),
        ("PUT", "/api/v1/crm/deals/{id}") => web::put().to(update_deal),
        ("DELETE", "/api/v1/crm/deals/{id}") => web::delete().to(delete_deal),
        ("GET", "/api/v1/crm/deals/{id}/history") => web::get().to(deal_history),
        ("POST", "/api/v1/crm/deals/{id}/move") => web::post().to(move_deal),
        ("GET", "/api/v1/crm/analytics") => web::get().to(analytics),
        _ => return None,
    })
}

/// This area's part of the OpenAPI document.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    paths(leads, create_lead, lead, update_lead, delete_lead, change_lead_status, convert_lead, pipelines, create_pipeline, pipeline, rename_pipeline, delete_pipeline, add_stage, reorder_stages, update_stage, remove_stage, deals, create_deal, deal, update_deal, delete_deal, deal_history, move_deal, analytics),
    components(schemas(
        Lead, LeadDraft, LeadSource, LeadStatus, ChangeLeadStatus, ConvertLead, portico_crm::DealFromLead,
        LeadConversion, Pipeline, portico_crm::Stage, StageKind, PipelineDraft, portico_crm::StageDraft,
        RenamePipeline, NewStage, StageChanges, ReorderStages, Deal, portico_crm::DealStatus, DealDraft,
        DealChanges, MoveDeal, StageChange, CrmAnalytics, portico_crm::PipelineSummary, portico_crm::StageSummary,
        portico_crm::CurrencyTotal, portico_crm::ConversionRates, LeadSort, DealSort,
        LeadEnvelope, LeadPageEnvelope, LeadConversionEnvelope, PipelineListEnvelope, PipelineEnvelope,
        DealEnvelope, DealPageEnvelope, StageChangeListEnvelope, CrmAnalyticsEnvelope, ErrorEnvelope
    )),
    tags((name = "crm-sales", description = "Leads and their conversion, pipelines and stages, deals and their moves, sales figures."))
)]
pub(crate) struct Doc;
