//! The tenants API: the platform manages tenants; a tenant's people read
//! (and its admins edit) their own tenant only.

use crate::db::Db;
use actix_web::{HttpResponse, web};
use portico_kernel::TenantId;
use portico_tenancy::{
    CreateTenant, TenantFilter, TenantStatus, TenantStore, TenantTransition, UpdateTenant,
};
use serde::Deserialize;

use crate::auth::{
    Permission, PlatformTenantsRead, PlatformTenantsWrite, Require, TenantsRead, TenantsWrite,
};
use crate::cache::{Cache, CacheKey, Tag, TtlClass};
use crate::cache_sync::Invalidations;
use crate::envelope;
use crate::error::ApiError;
use crate::json::Json;
#[allow(unused_imports)] // the OpenAPI attributes name these
use crate::openapi::{ErrorEnvelope, TenantEnvelope, TenantPageEnvelope};

/// Query of `GET /api/v1/tenants`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    /// 1-based page (default 1).
    #[serde(default)]
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only tenants in this status.
    #[serde(default)]
    pub status: Option<TenantStatus>,
    /// Only tenants whose name or slug contains this text.
    #[serde(default)]
    pub search: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants",
    tag = "tenants",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of tenants, newest first.", body = TenantPageEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The token lacks the permission, or names another tenant.", body = ErrorEnvelope),
        (status = 422, description = "A bad page or limit.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:tenants:read"]))
)]
/// Lists every live tenant, newest first (platform staff).
pub async fn list(
    auth: Require<PlatformTenantsRead>,
    store: Db,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = crate::api::page_request(query.page, query.limit)?;
    let filter = TenantFilter { status: query.status, search: query.search.clone() };
    let tenants = store.list(&auth.platform()?, &filter, page).await?;
    Ok(envelope::page(&tenants))
}

#[utoipa::path(
    post,
    path = "/api/v1/tenants",
    tag = "tenants",
    request_body = CreateTenant,
    responses(
        (status = 201, description = "The new tenant (in TRIAL unless asked ACTIVE).", body = TenantEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The token lacks the permission, or names another tenant.", body = ErrorEnvelope),
        (status = 409, description = "The slug is taken (`tenancy.slug_taken`).", body = ErrorEnvelope),
        (status = 400, description = "The body is not JSON (`request.malformed_json`).", body = ErrorEnvelope),
        (status = 413, description = "The body is over 1 MiB.", body = ErrorEnvelope),
        (status = 415, description = "The body is not `application/json`.", body = ErrorEnvelope),
        (status = 422, description = "Invalid fields, each named in `details.fields`.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:tenants:write"]))
)]
/// Creates a tenant (platform staff).
pub async fn create(
    auth: Require<PlatformTenantsWrite>,
    store: Db,
    body: Json<CreateTenant>,
) -> Result<HttpResponse, ApiError> {
    let tenant = store.create(&auth.platform()?, body.into_inner()).await?;
    Ok(envelope::created(tenant))
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{id}",
    tag = "tenants",
    params(
        ("id" = String, Path, format = Uuid, description = "The tenant's id."),
        ("X-Tenant-ID" = Option<String>, Header, format = Uuid,
            description = "Platform staff: the tenant to act on (must match the path)."),
    ),
    responses(
        (status = 200, description = "The tenant.", body = TenantEnvelope,
            headers(("X-Cache" = String, description = "`HIT`: served from this instance's cache; `MISS`: read from the database."))),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The token lacks the permission, or names another tenant.", body = ErrorEnvelope),
        (status = 404, description = "No such tenant for this caller (another tenant's id included).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tenants:read"]))
)]
/// Reads one's own tenant, or any for platform staff. Cached (`X-Cache`):
/// the permission check comes first, the key is the tenant's.
pub async fn get(
    auth: Require<TenantsRead>,
    store: Db,
    cache: web::Data<Cache>,
    id: web::Path<TenantId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let ctx = auth.on_tenant(id, PlatformTenantsRead::NAME);
    let key = CacheKey::new(tag(ctx.tenant_id, id));
    let (data, lookup) = cache
        .get_or_load(&key, TtlClass::Tenant, || async {
            let tenant = store.get(&ctx, id).await?;
            envelope::to_bytes(&tenant)
        })
        .await?;
    Ok(envelope::cached(&data, lookup))
}

/// The cache tag of tenant `id` as seen from `scope` (the same tenant, or
/// nothing is found and nothing cached).
pub(crate) fn tag(scope: TenantId, id: TenantId) -> Tag {
    Tag { tenant: scope.into_uuid(), resource: "tenant".to_owned(), id: id.to_string() }
}

#[utoipa::path(
    put,
    path = "/api/v1/tenants/{id}",
    tag = "tenants",
    params(
        ("id" = String, Path, format = Uuid, description = "The tenant's id."),
        ("X-Tenant-ID" = Option<String>, Header, format = Uuid,
            description = "Platform staff: the tenant to act on (must match the path)."),
    ),
    request_body = UpdateTenant,
    responses(
        (status = 200, description = "The updated tenant.", body = TenantEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The token lacks the permission, or names another tenant; or a tenant's own people change its industry (`tenancy.industry_locked`: only the platform's staff do).", body = ErrorEnvelope),
        (status = 400, description = "The body is not JSON (`request.malformed_json`).", body = ErrorEnvelope),
        (status = 404, description = "No such tenant for this caller.", body = ErrorEnvelope),
        (status = 413, description = "The body is over 1 MiB.", body = ErrorEnvelope),
        (status = 415, description = "The body is not `application/json`.", body = ErrorEnvelope),
        (status = 422, description = "Invalid fields, each named in `details.fields`.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tenants:write"]))
)]
/// Replaces a tenant's editable fields.
pub async fn update(
    auth: Require<TenantsWrite>,
    store: Db,
    invalidations: Invalidations,
    id: web::Path<TenantId>,
    body: Json<UpdateTenant>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let tenant = store.update(&auth.on_tenant(id, PlatformTenantsWrite::NAME), id, body.into_inner()).await?;
    invalidations.tag(tag(id, id));
    Ok(envelope::ok(tenant))
}

#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{id}",
    tag = "tenants",
    params(
        ("id" = String, Path, format = Uuid, description = "The tenant's id."),
        ("X-Tenant-ID" = Option<String>, Header, format = Uuid,
            description = "Platform staff: the tenant to act on (must match the path)."),
    ),
    responses(
        (status = 204, description = "Deleted: hidden from then on, its row and audit trail kept."),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The token lacks the permission, or names another tenant.", body = ErrorEnvelope),
        (status = 404, description = "No such tenant.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:tenants:write"]))
)]
/// Soft-deletes a tenant (platform staff).
pub async fn delete(
    auth: Require<PlatformTenantsWrite>,
    store: Db,
    invalidations: Invalidations,
    id: web::Path<TenantId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    store.delete(&auth.on_tenant(id, PlatformTenantsWrite::NAME), id).await?;
    invalidations.tag(tag(id, id));
    Ok(envelope::no_content())
}

#[utoipa::path(
    post,
    path = "/api/v1/tenants/{id}/suspend",
    tag = "tenants",
    params(
        ("id" = String, Path, format = Uuid, description = "The tenant's id."),
        ("X-Tenant-ID" = Option<String>, Header, format = Uuid,
            description = "Platform staff: the tenant to act on (must match the path)."),
    ),
    responses(
        (status = 200, description = "The tenant, now suspended.", body = TenantEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The token lacks the permission, or names another tenant.", body = ErrorEnvelope),
        (status = 404, description = "No such tenant.", body = ErrorEnvelope),
        (status = 409, description = "Not allowed from the current status (`tenancy.invalid_transition`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:tenants:write"]))
)]
/// Suspends a tenant (platform staff).
pub async fn suspend(
    auth: Require<PlatformTenantsWrite>,
    store: Db,
    invalidations: Invalidations,
    id: web::Path<TenantId>,
) -> Result<HttpResponse, ApiError> {
    transition(&auth, &store, &invalidations, id.into_inner(), TenantTransition::Suspend).await
}

#[utoipa::path(
    post,
    path = "/api/v1/tenants/{id}/activate",
    tag = "tenants",
    params(
        ("id" = String, Path, format = Uuid, description = "The tenant's id."),
        ("X-Tenant-ID" = Option<String>, Header, format = Uuid,
            description = "Platform staff: the tenant to act on (must match the path)."),
    ),
    responses(
        (status = 200, description = "The tenant, now active.", body = TenantEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The token lacks the permission, or names another tenant.", body = ErrorEnvelope),
        (status = 404, description = "No such tenant.", body = ErrorEnvelope),
        (status = 409, description = "Not allowed from the current status (`tenancy.invalid_transition`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:tenants:write"]))
)]
/// Activates a tenant (platform staff).
pub async fn activate(
    auth: Require<PlatformTenantsWrite>,
    store: Db,
    invalidations: Invalidations,
    id: web::Path<TenantId>,
) -> Result<HttpResponse, ApiError> {
    transition(&auth, &store, &invalidations, id.into_inner(), TenantTransition::Activate).await
}

async fn transition(
    auth: &Require<PlatformTenantsWrite>,
    store: &Db,
    invalidations: &Invalidations,
    id: TenantId,
    action: TenantTransition,
) -> Result<HttpResponse, ApiError> {
    let tenant = store.transition(&auth.on_tenant(id, PlatformTenantsWrite::NAME), id, action).await?;
    invalidations.tag(tag(id, id));
    Ok(envelope::ok(tenant))
}
