//! Support tickets: their comments, assignment, status and SLA due times. Every route is gated by the tenant's `crm` feature.
//!
//! Tickets are numbered per tenant (1, 2, 3, ...) and due by the tenant's
//! SLA policy (`/api/v1/tickets/sla-policy`, the default policy until one is
//! set; setting it is a tenant-wide change and takes `tenants:write`, not
//! `tickets:write`). Pending and resolved stop a ticket's clocks; an agent's first
//! public comment is its first response. A comment by the ticket's
//! requesting user is the requester's, who never sees internal comments.

use actix_web::{HttpResponse, Route, web};
use portico_crm::{
    Assign, ChangeStatus, NewComment, SlaPolicy, TicketChanges, TicketDraft, TicketPriority, TicketStatus,
};
use portico_kernel::{ContactId, TicketId, UserId};
use portico_store::{TicketFilter, TicketOrder};
use serde::Deserialize;

use crate::api::{RouteSpec, read, write};
use crate::auth::{Require, TenantsWrite, TicketsRead, TicketsWrite};
use crate::db::Db;
use crate::envelope;
use crate::error::ApiError;
use crate::json::Json;
use crate::openapi::{ErrorEnvelope, envelopes, page_envelopes};

/// This area's routes, with their guarantees.
pub(crate) const ROUTES: &[RouteSpec] = &[
    read("/api/v1/tickets").gated("crm"),
    write("POST", "/api/v1/tickets").gated("crm"),
    // Before `{id}`: a resource matches by path first.
    read("/api/v1/tickets/sla-policy").gated("crm"),
    write("PUT", "/api/v1/tickets/sla-policy").gated("crm"),
    read("/api/v1/tickets/{id}").gated("crm"),
    write("PUT", "/api/v1/tickets/{id}").gated("crm"),
    write("DELETE", "/api/v1/tickets/{id}").gated("crm"),
    read("/api/v1/tickets/{id}/comments").gated("crm"),
    write("POST", "/api/v1/tickets/{id}/comments").gated("crm"),
    write("POST", "/api/v1/tickets/{id}/assign").gated("crm"),
    write("POST", "/api/v1/tickets/{id}/status").gated("crm"),
];

/// The handler of one of [`ROUTES`].
pub(crate) fn handler(method: &str, path: &str) -> Option<Route> {
    Some(match (method, path) {
        ("GET", "/api/v1/tickets") => web::get().to(list),
        ("POST", "/api/v1/tickets") => web::post().to(create),
        ("GET", "/api/v1/tickets/sla-policy") => web::get().to(sla_policy),
        ("PUT", "/api/v1/tickets/sla-policy") => web::put().to(set_sla_policy),
        ("GET", "/api/v1/tickets/{id}") => web::get().to(get),
        ("PUT", "/api/v1/tickets/{id}") => web::put().to(update),
        ("DELETE", "/api/v1/tickets/{id}") => web::delete().to(delete),
        ("GET", "/api/v1/tickets/{id}/comments") => web::get().to(comments),
        ("POST", "/api/v1/tickets/{id}/comments") => web::post().to(comment),
        ("POST", "/api/v1/tickets/{id}/assign") => web::post().to(assign),
        ("POST", "/api/v1/tickets/{id}/status") => web::post().to(change_status),
        _ => return None,
    })
}

envelopes! {
    /// `{"success": true, "data": Ticket}`.
    TicketEnvelope => portico_crm::Ticket;
    /// `{"success": true, "data": Comment}`.
    CommentEnvelope => portico_crm::Comment;
    /// `{"success": true, "data": SlaPolicy}`.
    SlaPolicyEnvelope => portico_crm::SlaPolicy;
}

page_envelopes! {
    /// `{"success": true, "data": [Ticket], "meta": PageMeta}`.
    TicketPageEnvelope => portico_crm::Ticket;
    /// `{"success": true, "data": [Comment], "meta": PageMeta}`.
    CommentPageEnvelope => portico_crm::Comment;
}

/// This area's part of the OpenAPI document.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    paths(list, create, sla_policy, set_sla_policy, get, update, delete, comments, comment, assign, change_status),
    components(schemas(
        portico_crm::Ticket, portico_crm::TicketDraft, portico_crm::TicketChanges, portico_crm::Requester,
        portico_crm::TicketPriority, portico_crm::TicketStatus, portico_crm::Comment, portico_crm::CommentAuthor,
        portico_crm::NewComment, portico_crm::Assign, portico_crm::ChangeStatus, portico_crm::SlaPolicy,
        portico_crm::SlaTargets, portico_crm::BusinessHours, TicketSort, TicketEnvelope, CommentEnvelope,
        SlaPolicyEnvelope, TicketPageEnvelope, CommentPageEnvelope,
    )),
    tags((name = "tickets", description = "Support tickets: comments, assignment, status and service-level due times."))
)]
pub(crate) struct Doc;

/// The order of a ticket list, named after the field it sorts by (`-` for descending).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub enum TicketSort {
    /// The newest first (the default).
    #[default]
    #[serde(rename = "-createdAt")]
    CreatedAtDesc,
    /// The oldest first.
    #[serde(rename = "createdAt")]
    CreatedAt,
    /// The soonest first response due time first.
    #[serde(rename = "firstResponseDue")]
    FirstResponseDue,
    /// The soonest resolution due time first.
    #[serde(rename = "resolutionDue")]
    ResolutionDue,
}

/// Which tickets to list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TicketQuery {
    /// 1-based page (default 1).
    #[serde(default)]
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only tickets in this status.
    #[serde(default)]
    #[param(value_type = Option<TicketStatus>)]
    pub status: Option<TicketStatus>,
    /// Only tickets of this priority.
    #[serde(default)]
    #[param(value_type = Option<TicketPriority>)]
    pub priority: Option<TicketPriority>,
    /// Only tickets assigned to this user.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub assignee_id: Option<UserId>,
    /// Only tickets asked by this contact.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub requester_contact_id: Option<ContactId>,
    /// Only tickets that miss a service-level target now (`true`), or miss none (`false`).
    #[serde(default)]
    pub breached: Option<bool>,
    /// `-createdAt` (default, newest first), `createdAt`, `firstResponseDue` or `resolutionDue`
    /// (the soonest due first).
    #[serde(default)]
    #[param(value_type = Option<TicketSort>, example = "resolutionDue")]
    pub sort: Option<TicketSort>,
}

#[utoipa::path(
    get,
    path = "/api/v1/tickets",
    tag = "tickets",
    params(TicketQuery),
    responses(
        (status = 200, description = "A page of the tenant's tickets.", body = TicketPageEnvelope),
        (status = 400, description = "A malformed filter or an unknown sort (`request.invalid_query`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature (`tenancy.feature_disabled`).", body = ErrorEnvelope),
        (status = 422, description = "A bad page or limit (`request.invalid_page`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tickets:read"]))
)]
/// Lists the tenant's tickets.
pub async fn list(
    auth: Require<TicketsRead>,
    store: Db,
    query: web::Query<TicketQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = crate::api::page_request(query.page, query.limit)?;
    let query = query.into_inner();
    let filter = TicketFilter {
        status: query.status,
        priority: query.priority,
        assignee_id: query.assignee_id,
        requester_contact_id: query.requester_contact_id,
        breached: query.breached,
    };
    let order = match query.sort.unwrap_or_default() {
        TicketSort::CreatedAtDesc => TicketOrder::CreatedAtDesc,
        TicketSort::CreatedAt => TicketOrder::CreatedAt,
        TicketSort::FirstResponseDue => TicketOrder::FirstResponseDue,
        TicketSort::ResolutionDue => TicketOrder::ResolutionDue,
    };
    Ok(envelope::page(&store.tickets(&auth.ctx, filter, order, page).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/tickets",
    tag = "tickets",
    request_body = TicketDraft,
    responses(
        (status = 201, description = "The ticket, open, numbered next in the tenant, its due times from the tenant's SLA policy.", body = TicketEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 422, description = "A bad field, a requester who is neither a contact nor a member of the tenant (`requester.contactId`, `requester.userId`), an assignee who is not a member (`crm.invalid`, each field named).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tickets:write"]))
)]
/// Opens a ticket.
pub async fn create(
    auth: Require<TicketsWrite>,
    store: Db,
    body: Json<TicketDraft>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::created(store.open_ticket(&auth.ctx, body.into_inner()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/tickets/sla-policy",
    tag = "tickets",
    responses(
        (status = 200, description = "The tenant's SLA policy (the default one until the tenant sets its own).", body = SlaPolicyEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tickets:read"]))
)]
/// The tenant's SLA policy.
pub async fn sla_policy(auth: Require<TicketsRead>, store: Db) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.sla_policy(&auth.ctx).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/tickets/sla-policy",
    tag = "tickets",
    request_body = SlaPolicy,
    responses(
        (status = 200, description = "The policy, for tickets opened from now on (due times already set stay).", body = SlaPolicyEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission (a tenant-wide setting: `tenants:write`, which `tickets:write` does not give), or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 422, description = "A target out of range, a first response due after the resolution, bad business hours (`crm.invalid`, each field named).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tenants:write"]))
)]
/// Sets the tenant's SLA policy (a tenant-wide setting: `tenants:write`).
pub async fn set_sla_policy(
    auth: Require<TenantsWrite>,
    store: Db,
    body: Json<SlaPolicy>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.set_sla_policy(&auth.ctx, body.into_inner()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/tickets/{id}",
    tag = "tickets",
    params(("id" = String, Path, format = Uuid, description = "The ticket's id.")),
    responses(
        (status = 200, description = "The ticket.", body = TicketEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "No such ticket in this tenant (`crm.ticket_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tickets:read"]))
)]
/// One ticket.
pub async fn get(
    auth: Require<TicketsRead>,
    store: Db,
    id: web::Path<TicketId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.ticket(&auth.ctx, id.into_inner()).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/tickets/{id}",
    tag = "tickets",
    params(("id" = String, Path, format = Uuid, description = "The ticket's id.")),
    request_body = TicketChanges,
    responses(
        (status = 200, description = "The ticket as changed; a new priority moves its due times (its targets from the creation time, plus the time its clocks were stopped).", body = TicketEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "No such ticket in this tenant (`crm.ticket_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The ticket is closed (`crm.ticket_closed`).", body = ErrorEnvelope),
        (status = 422, description = "A bad field (`crm.invalid`, each field named).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tickets:write"]))
)]
/// Changes a ticket's subject, description and priority.
pub async fn update(
    auth: Require<TicketsWrite>,
    store: Db,
    id: web::Path<TicketId>,
    body: Json<TicketChanges>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.revise_ticket(&auth.ctx, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/tickets/{id}",
    tag = "tickets",
    params(("id" = String, Path, format = Uuid, description = "The ticket's id.")),
    responses(
        (status = 204, description = "The ticket and its comments are gone, in one transaction (its audit rows stay)."),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "No such ticket in this tenant (`crm.ticket_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tickets:write"]))
)]
/// Deletes a ticket and its comments.
pub async fn delete(
    auth: Require<TicketsWrite>,
    store: Db,
    id: web::Path<TicketId>,
) -> Result<HttpResponse, ApiError> {
    store.delete_ticket(&auth.ctx, id.into_inner()).await?;
    Ok(envelope::no_content())
}

/// A page of a ticket's comments.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommentQuery {
    /// 1-based page (default 1).
    #[serde(default)]
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/api/v1/tickets/{id}/comments",
    tag = "tickets",
    params(("id" = String, Path, format = Uuid, description = "The ticket's id."), CommentQuery),
    responses(
        (status = 200, description = "A page of the ticket's comments, oldest first; the ticket's requesting user sees only the public ones.", body = CommentPageEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "No such ticket in this tenant (`crm.ticket_not_found`).", body = ErrorEnvelope),
        (status = 422, description = "A bad page or limit (`request.invalid_page`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tickets:read"]))
)]
/// A ticket's comments.
pub async fn comments(
    auth: Require<TicketsRead>,
    store: Db,
    id: web::Path<TicketId>,
    query: web::Query<CommentQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = crate::api::page_request(query.page, query.limit)?;
    Ok(envelope::page(&store.ticket_comments(&auth.ctx, id.into_inner(), page).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/comments",
    tag = "tickets",
    params(("id" = String, Path, format = Uuid, description = "The ticket's id.")),
    request_body = NewComment,
    responses(
        (status = 201, description = "The comment: the requester's when the caller is the ticket's requesting user (a public one reopens a pending or resolved ticket), an agent's otherwise (the first public one is the ticket's first response).", body = CommentEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "No such ticket in this tenant (`crm.ticket_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The ticket is closed (`crm.ticket_closed`).", body = ErrorEnvelope),
        (status = 422, description = "A bad body, an internal comment by the requester, a caller that is not a person (`crm.invalid`, each field named).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tickets:write"]))
)]
/// Comments on a ticket.
pub async fn comment(
    auth: Require<TicketsWrite>,
    store: Db,
    id: web::Path<TicketId>,
    body: Json<NewComment>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::created(store.comment_on_ticket(&auth.ctx, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/assign",
    tag = "tickets",
    params(("id" = String, Path, format = Uuid, description = "The ticket's id.")),
    request_body = Assign,
    responses(
        (status = 200, description = "The ticket, assigned (or unassigned for `null`).", body = TicketEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "No such ticket in this tenant (`crm.ticket_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The ticket is closed (`crm.ticket_closed`).", body = ErrorEnvelope),
        (status = 422, description = "An assignee who is not a member of the tenant (`crm.invalid`, field `assignee`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tickets:write"]))
)]
/// Assigns a ticket.
pub async fn assign(
    auth: Require<TicketsWrite>,
    store: Db,
    id: web::Path<TicketId>,
    body: Json<Assign>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.assign_ticket(&auth.ctx, id.into_inner(), body.into_inner()).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/tickets/{id}/status",
    tag = "tickets",
    params(("id" = String, Path, format = Uuid, description = "The ticket's id.")),
    request_body = ChangeStatus,
    responses(
        (status = 200, description = "The ticket in its new status: pending and resolved stop its clocks, open starts them again with the time that was left.", body = TicketEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or the tenant the crm feature.", body = ErrorEnvelope),
        (status = 404, description = "No such ticket in this tenant (`crm.ticket_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The ticket is closed (`crm.ticket_closed`), or its status cannot move there (`crm.ticket_transition`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tickets:write"]))
)]
/// Moves a ticket to another status.
pub async fn change_status(
    auth: Require<TicketsWrite>,
    store: Db,
    id: web::Path<TicketId>,
    body: Json<ChangeStatus>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.change_ticket_status(&auth.ctx, id.into_inner(), body.into_inner()).await?))
}
