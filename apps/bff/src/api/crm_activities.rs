//! CRM activities (calls, emails, meetings, notes, tasks) and the timeline of a record. Every route is gated by the tenant's `crm` feature.
//!
//! An activity links only to the tenant's own leads, contacts, companies and
//! deals, and a task's assignee is a member of the tenant (422 `crm.invalid`
//! naming the field otherwise). The timeline of a record merges its
//! activities, its changes from the audit trail and the messages sent to it,
//! newest first, in pages.

use actix_web::{HttpResponse, Route, web};
use chrono::NaiveDate;
use portico_crm::{ActivityDraft, ActivityKind, RecordRef};
use portico_kernel::{ActivityId, CompanyId, ContactId, DealId, ErrorKind, LeadId, UserId};
use portico_store::ActivityFilter;
use serde::Deserialize;

use crate::api::{RouteSpec, read, write};
use crate::auth::{CrmRead, CrmWrite, Require};
use crate::db::Db;
use crate::envelope;
use crate::error::ApiError;
use crate::json::Json;
use crate::openapi::{ErrorEnvelope, envelopes, page_envelopes};

/// This area's routes, with their guarantees.
pub(crate) const ROUTES: &[RouteSpec] = &[
    read("/api/v1/crm/activities").gated("crm"),
    write("POST", "/api/v1/crm/activities").gated("crm"),
    read("/api/v1/crm/activities/{id}").gated("crm"),
    write("PUT", "/api/v1/crm/activities/{id}").gated("crm"),
    write("DELETE", "/api/v1/crm/activities/{id}").gated("crm"),
    write("POST", "/api/v1/crm/activities/{id}/complete").gated("crm"),
    write("POST", "/api/v1/crm/activities/{id}/reopen").gated("crm"),
    read("/api/v1/crm/{type}/{id}/timeline").gated("crm"),
];

/// The handler of one of [`ROUTES`].
pub(crate) fn handler(method: &str, path: &str) -> Option<Route> {
    Some(match (method, path) {
        ("GET", "/api/v1/crm/activities") => web::get().to(list),
        ("POST", "/api/v1/crm/activities") => web::post().to(create),
        ("GET", "/api/v1/crm/activities/{id}") => web::get().to(get),
        ("PUT", "/api/v1/crm/activities/{id}") => web::put().to(update),
        ("DELETE", "/api/v1/crm/activities/{id}") => web::delete().to(delete),
        ("POST", "/api/v1/crm/activities/{id}/complete") => web::post().to(complete),
        ("POST", "/api/v1/crm/activities/{id}/reopen") => web::post().to(reopen),
        ("GET", "/api/v1/crm/{type}/{id}/timeline") => web::get().to(record_timeline),
        _ => return None,
    })
}

envelopes! {
    /// `{"success": true, "data": Activity}`.
    ActivityEnvelope => portico_crm::Activity;
}

page_envelopes! {
    /// `{"success": true, "data": [Activity], "meta": PageMeta}`.
    ActivityPageEnvelope => portico_crm::Activity;
    /// `{"success": true, "data": [TimelineEntry], "meta": PageMeta}`.
    TimelinePageEnvelope => portico_crm::TimelineEntry;
}

/// This area's part of the OpenAPI document.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    paths(list, create, get, update, delete, complete, reopen, record_timeline),
    components(schemas(
        portico_crm::Activity, portico_crm::ActivityDetail, portico_crm::ActivityKind, portico_crm::ActivityLinks,
        portico_crm::ActivityDraft, portico_crm::TimelineEntry, portico_crm::RecordChange,
        portico_crm::TimelineMessage, ActivityEnvelope, ActivityPageEnvelope, TimelinePageEnvelope,
    )),
    tags((name = "crm-activities", description = "Calls, emails, meetings, notes and tasks on the CRM's records, and each record's timeline."))
)]
pub(crate) struct Doc;

/// Which activities to list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivityQuery {
    /// 1-based page (default 1).
    #[serde(default)]
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only those about this lead.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub lead_id: Option<LeadId>,
    /// Only those about this contact.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub contact_id: Option<ContactId>,
    /// Only those about this company.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub company_id: Option<CompanyId>,
    /// Only those about this deal.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub deal_id: Option<DealId>,
    /// Only this kind (`call`, `email`, `meeting`, `note`, `task`).
    #[serde(default)]
    #[param(value_type = Option<ActivityKind>)]
    pub kind: Option<ActivityKind>,
    /// Only tasks assigned to this user.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub assignee_id: Option<UserId>,
    /// Only tasks not done (`true`) or done (`false`).
    #[serde(default)]
    pub open: Option<bool>,
    /// Only tasks due on or after this day (`2026-11-01`).
    #[serde(default)]
    pub due_from: Option<NaiveDate>,
    /// Only tasks due on or before this day.
    #[serde(default)]
    pub due_to: Option<NaiveDate>,
}

#[utoipa::path(
    get,
    path = "/api/v1/crm/activities",
    tag = "crm-activities",
    params(ActivityQuery),
    responses(
        (status = 200, description = "A page of the tenant's activities, newest first (by when they happened).", body = ActivityPageEnvelope),
        (status = 400, description = "A malformed filter (`request.invalid_query`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 422, description = "A bad page or limit (`request.invalid_page`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:read"]))
)]
/// Lists the tenant's activities.
pub async fn list(
    auth: Require<CrmRead>,
    store: Db,
    query: web::Query<ActivityQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = crate::api::page_request(query.page, query.limit)?;
    let query = query.into_inner();
    let filter = ActivityFilter {
        lead_id: query.lead_id,
        contact_id: query.contact_id,
        company_id: query.company_id,
        deal_id: query.deal_id,
        kind: query.kind,
        assignee_id: query.assignee_id,
        open: query.open,
        due_from: query.due_from,
        due_to: query.due_to,
    };
    Ok(envelope::page(&store.activities(&auth.ctx, filter, page).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/crm/activities",
    tag = "crm-activities",
    request_body = ActivityDraft,
    responses(
        (status = 201, description = "The activity, logged by the caller (a task is assigned to the caller unless `assigneeId` says otherwise).", body = ActivityEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 422, description = "A bad field, no link, a link to a record that is not the tenant's (`links.contactId`, ...), an assignee who is not a member, or a caller that is not a person (`crm.invalid`, each field named).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Logs an activity.
pub async fn create(
    auth: Require<CrmWrite>,
    store: Db,
    body: Json<ActivityDraft>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::created(store.log_activity(&auth.ctx, body.into_inner()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/crm/activities/{id}",
    tag = "crm-activities",
    params(("id" = String, Path, format = Uuid, description = "The activity's id.")),
    responses(
        (status = 200, description = "The activity.", body = ActivityEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "No such activity in this tenant (`crm.activity_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:read"]))
)]
/// One activity.
pub async fn get(
    auth: Require<CrmRead>,
    store: Db,
    id: web::Path<ActivityId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.activity(&auth.ctx, id.into_inner()).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/crm/activities/{id}",
    tag = "crm-activities",
    params(("id" = String, Path, format = Uuid, description = "The activity's id.")),
    request_body = ActivityDraft,
    responses(
        (status = 200, description = "The activity as described now (a task keeps whether it is done).", body = ActivityEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "No such activity in this tenant (`crm.activity_not_found`).", body = ErrorEnvelope),
        (status = 422, description = "A bad field, a link to a record that is not the tenant's, an assignee who is not a member (`crm.invalid`, each field named).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Changes an activity.
pub async fn update(
    auth: Require<CrmWrite>,
    store: Db,
    id: web::Path<ActivityId>,
    body: Json<ActivityDraft>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.revise_activity(&auth.ctx, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/crm/activities/{id}",
    tag = "crm-activities",
    params(("id" = String, Path, format = Uuid, description = "The activity's id.")),
    responses(
        (status = 204, description = "The activity is gone (its audit rows stay)."),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "No such activity in this tenant (`crm.activity_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Deletes an activity.
pub async fn delete(
    auth: Require<CrmWrite>,
    store: Db,
    id: web::Path<ActivityId>,
) -> Result<HttpResponse, ApiError> {
    store.delete_activity(&auth.ctx, id.into_inner()).await?;
    Ok(envelope::no_content())
}

#[utoipa::path(
    post,
    path = "/api/v1/crm/activities/{id}/complete",
    tag = "crm-activities",
    params(("id" = String, Path, format = Uuid, description = "The task's id.")),
    responses(
        (status = 200, description = "The task, done now (`doneAt`).", body = ActivityEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "No such activity in this tenant (`crm.activity_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "Not a task (`crm.not_a_task`), or done already (`crm.task_already_done`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Marks a task done.
pub async fn complete(
    auth: Require<CrmWrite>,
    store: Db,
    id: web::Path<ActivityId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.complete_task(&auth.ctx, id.into_inner()).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/crm/activities/{id}/reopen",
    tag = "crm-activities",
    params(("id" = String, Path, format = Uuid, description = "The task's id.")),
    responses(
        (status = 200, description = "The task, not done any more.", body = ActivityEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "No such activity in this tenant (`crm.activity_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "Not a task (`crm.not_a_task`), or not done (`crm.task_not_done`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:write"]))
)]
/// Marks a done task not done.
pub async fn reopen(
    auth: Require<CrmWrite>,
    store: Db,
    id: web::Path<ActivityId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.reopen_task(&auth.ctx, id.into_inner()).await?))
}

/// A page of a timeline.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TimelineQuery {
    /// 1-based page (default 1).
    #[serde(default)]
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// The record a timeline path names, or 404 `crm.unknown_record_type`.
fn record_of(kind: &str, id: uuid::Uuid) -> Result<RecordRef, ApiError> {
    Ok(match kind {
        "leads" => RecordRef::Lead(LeadId::from_uuid(id)),
        "contacts" => RecordRef::Contact(ContactId::from_uuid(id)),
        "companies" => RecordRef::Company(CompanyId::from_uuid(id)),
        "deals" => RecordRef::Deal(DealId::from_uuid(id)),
        _ => {
            return Err(ApiError::new(
                ErrorKind::NotFound,
                "crm.unknown_record_type",
                "Timelines are kept for leads, contacts, companies and deals.",
            ));
        }
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/crm/{type}/{id}/timeline",
    tag = "crm-activities",
    params(
        ("type" = String, Path, description = "`leads`, `contacts`, `companies` or `deals`."),
        ("id" = String, Path, format = Uuid, description = "The record's id."),
        TimelineQuery,
    ),
    responses(
        (status = 200, description = "A page of the record's timeline, newest first: its activities (`type: activity`), its changes from the audit trail (`type: change`) and the messages sent to it (`type: message`; none until messaging exists). At one instant activities come first, then messages, then changes.", body = TimelinePageEnvelope),
        (status = 400, description = "A malformed id (`request.invalid_path`) or page (`request.invalid_query`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "No such record in this tenant (`crm.lead_not_found`, `crm.contact_not_found`, `crm.company_not_found`, `crm.deal_not_found`), or a type that has no timeline (`crm.unknown_record_type`).", body = ErrorEnvelope),
        (status = 422, description = "A bad page or limit (`request.invalid_page`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["crm:read"]))
)]
/// The timeline of a lead, contact, company or deal.
pub async fn record_timeline(
    auth: Require<CrmRead>,
    store: Db,
    path: web::Path<(String, uuid::Uuid)>,
    query: web::Query<TimelineQuery>,
) -> Result<HttpResponse, ApiError> {
    let (kind, id) = path.into_inner();
    let record = record_of(&kind, id)?;
    let page = crate::api::page_request(query.page, query.limit)?;
    Ok(envelope::page(&store.timeline(&auth.ctx, record, page).await?))
}
