//! Views of tenants for the admin portal: a tenant's people and analytics,
//! and the platform's overview of every tenant.

use actix_web::{HttpResponse, web};
use portico_kernel::TenantId;

use crate::api::people::PeopleQuery;
use crate::auth::{PeopleRead, Permission, PlatformPeopleRead, PlatformTenantsRead, Require};
use crate::db::Db;
use crate::envelope;
use crate::error::ApiError;
#[allow(unused_imports)] // the OpenAPI attributes name these
use crate::openapi::{ErrorEnvelope, PersonPageEnvelope, TenantAnalyticsEnvelope, TenantsOverviewEnvelope};

/// Query of `GET /api/v1/tenants/{id}/users`: `PeopleQuery` without `tenantId` (the path names it).
fn people_query(query: &PeopleQuery) -> Result<(), ApiError> {
    if query.tenant_id.is_some() {
        return Err(ApiError::new(
            portico_kernel::ErrorKind::Validation,
            "request.invalid_query",
            "The path names the tenant: leave out tenantId.",
        ));
    }
    Ok(())
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{id}/users",
    tag = "tenants",
    params(
        ("id" = String, Path, format = Uuid, description = "The tenant's id."),
        ("X-Tenant-ID" = Option<String>, Header, format = Uuid, description = "Platform staff: the tenant to act on."),
        PeopleQuery,
    ),
    responses(
        (status = 200, description = "A page of the tenant's memberships with their people, newest first.", body = PersonPageEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The token lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such tenant for this caller.", body = ErrorEnvelope),
        (status = 422, description = "A bad page, limit or filter.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["people:read"]))
)]
/// Lists a tenant's people (its memberships).
pub async fn users(
    auth: Require<PeopleRead>,
    store: Db,
    id: web::Path<TenantId>,
    query: web::Query<PeopleQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    people_query(&query)?;
    let ctx = auth.on_tenant(id, PlatformPeopleRead::NAME);
    if ctx.tenant_id != id {
        return Err(portico_tenancy::TenancyError::NotFound.into());
    }
    let page = store.people(&ctx, &query.filter()?, query.page()?).await?;
    Ok(envelope::page(&page))
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{id}/analytics",
    tag = "tenants",
    params(
        ("id" = String, Path, format = Uuid, description = "The tenant's id."),
        ("X-Tenant-ID" = Option<String>, Header, format = Uuid, description = "Platform staff: the tenant to act on."),
    ),
    responses(
        (status = 200, description = "Members by kind and status, active sessions, sign-ups per week (12 weeks), \
            credits per channel with the last 30 days' consumption.", body = TenantAnalyticsEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The token lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such tenant for this caller.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["people:read"]))
)]
/// A tenant at a glance.
pub async fn analytics(
    auth: Require<PeopleRead>,
    store: Db,
    id: web::Path<TenantId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    Ok(envelope::ok(store.tenant_analytics(&auth.on_tenant(id, PlatformPeopleRead::NAME), id).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/admin/tenants/overview",
    tag = "tenants",
    responses(
        (status = 200, description = "Every live tenant at a glance: counts by status and industry, new tenants per \
            week (12 weeks), trials ending in the next 14 days.", body = TenantsOverviewEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The caller is not platform staff holding the permission.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:tenants:read"]))
)]
/// The platform's overview of its tenants (platform staff).
pub async fn overview(auth: Require<PlatformTenantsRead>, store: Db) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.tenants_overview(&auth.platform()?).await?))
}
