//! Roles and permissions: the catalogue, the built-in roles and the
//! tenant's own (custom) roles made from it.

use actix_web::{HttpResponse, web};
use portico_kernel::RoleId;
use portico_tenancy::permissions::{CATALOGUE, Permission};
use portico_tenancy::{CustomRole, Role, RoleDraft};
use serde::Serialize;

use crate::api::people::customer;
use crate::auth::{Require, RolesRead, RolesWrite, holds};
use crate::db::Db;
use crate::envelope;
use crate::error::ApiError;
use crate::json::Json;
#[allow(unused_imports)] // the OpenAPI attributes name these
use crate::openapi::{CustomRoleEnvelope, ErrorEnvelope, PermissionListEnvelope, RoleListEnvelope};

#[utoipa::path(
    get,
    path = "/api/v1/rbac/permissions",
    tag = "rbac",
    responses(
        (status = 200, description = "Every permission with its description; platform permissions only for the platform's staff.", body = PermissionListEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["roles:read"]))
)]
/// The permission catalogue.
pub async fn permissions(auth: Require<RolesRead>) -> Result<HttpResponse, ApiError> {
    let staff = auth.ctx.platform().is_ok();
    let visible: Vec<&Permission> = CATALOGUE.iter().filter(|p| staff || !p.platform).collect();
    Ok(envelope::ok(visible))
}

/// A built-in role and what it may do.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"role": "STAFF", "permissions": ["roles:read", "tenants:read"], "platform": false}))]
pub struct BuiltInRole {
    /// The role.
    pub role: Role,
    /// Its permissions.
    pub permissions: &'static [&'static str],
    /// Held only in the platform tenant.
    pub platform: bool,
}

/// The roles a tenant's people can hold.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "builtIn": [{"role": "STAFF", "permissions": ["roles:read", "tenants:read"], "platform": false}],
    "custom": [{"id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f", "name": "Front desk", "description": "Reads people.",
                "permissions": ["people:read"], "members": 3, "createdAt": "2026-11-23T09:00:00Z",
                "updatedAt": "2026-11-23T09:00:00Z"}]
}))]
pub struct RoleList {
    /// The built-in roles (platform ones only for the platform's staff).
    pub built_in: Vec<BuiltInRole>,
    /// The tenant's own roles, by name.
    pub custom: Vec<CustomRole>,
}

#[utoipa::path(
    get,
    path = "/api/v1/rbac/roles",
    tag = "rbac",
    responses(
        (status = 200, description = "The built-in roles and the tenant's custom roles.", body = RoleListEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["roles:read"]))
)]
/// Lists the roles.
pub async fn roles(auth: Require<RolesRead>, store: Db) -> Result<HttpResponse, ApiError> {
    let staff = auth.ctx.platform().is_ok();
    let built_in = Role::ALL
        .iter()
        .filter(|role| **role != Role::Custom && (staff || !role.is_platform()))
        .map(|&role| BuiltInRole { role, permissions: role.permissions(), platform: role.is_platform() })
        .collect();
    let custom = store.custom_roles(&auth.ctx).await?;
    Ok(envelope::ok(RoleList { built_in, custom }))
}

#[utoipa::path(
    post,
    path = "/api/v1/rbac/roles",
    tag = "rbac",
    request_body = RoleDraft,
    responses(
        (status = 201, description = "The new role.", body = CustomRoleEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, does not hold a permission it would grant (`rbac.permission_not_held`), or acts on the platform tenant, whose staff hold platform roles only (`people.platform_staff`).", body = ErrorEnvelope),
        (status = 409, description = "Another role has this name (`roles.name_taken`).", body = ErrorEnvelope),
        (status = 422, description = "A bad name or description (`roles.invalid`), an unknown permission (`rbac.unknown_permission`) or a platform one (`rbac.platform_permission`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["roles:write"]))
)]
/// Creates a custom role from permissions the caller holds.
pub async fn create_role(
    auth: Require<RolesWrite>,
    store: Db,
    body: Json<RoleDraft>,
) -> Result<HttpResponse, ApiError> {
    let ctx = customer(&auth.ctx)?;
    let draft = body.into_inner().validate(holds(ctx))?;
    Ok(envelope::created(store.create_role(ctx, draft).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/rbac/roles/{id}",
    tag = "rbac",
    params(("id" = String, Path, format = Uuid, description = "The role's id.")),
    responses(
        (status = 200, description = "The role.", body = CustomRoleEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such role in this tenant (`roles.not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["roles:read"]))
)]
/// Reads a custom role.
pub async fn role(
    auth: Require<RolesRead>,
    store: Db,
    id: web::Path<RoleId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.custom_role(&auth.ctx, id.into_inner()).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/rbac/roles/{id}",
    tag = "rbac",
    params(("id" = String, Path, format = Uuid, description = "The role's id.")),
    request_body = RoleDraft,
    responses(
        (status = 200, description = "The role as changed; its holders get the new permissions from their next token refresh.", body = CustomRoleEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or does not hold a permission it would grant (`rbac.permission_not_held`).", body = ErrorEnvelope),
        (status = 404, description = "No such role in this tenant (`roles.not_found`).", body = ErrorEnvelope),
        (status = 409, description = "Another role has this name (`roles.name_taken`).", body = ErrorEnvelope),
        (status = 422, description = "A bad name or description, an unknown or a platform permission.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["roles:write"]))
)]
/// Replaces a custom role's name, description and permissions.
pub async fn update_role(
    auth: Require<RolesWrite>,
    store: Db,
    id: web::Path<RoleId>,
    body: Json<RoleDraft>,
) -> Result<HttpResponse, ApiError> {
    let ctx = customer(&auth.ctx)?;
    let draft = body.into_inner().validate(holds(ctx))?;
    Ok(envelope::ok(store.update_role(ctx, id.into_inner(), draft).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/rbac/roles/{id}",
    tag = "rbac",
    params(("id" = String, Path, format = Uuid, description = "The role's id.")),
    responses(
        (status = 204, description = "The role is gone."),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such role in this tenant (`roles.not_found`).", body = ErrorEnvelope),
        (status = 409, description = "People still hold it (`roles.in_use`): give them another role first.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["roles:write"]))
)]
/// Deletes a custom role nobody holds.
pub async fn delete_role(
    auth: Require<RolesWrite>,
    store: Db,
    id: web::Path<RoleId>,
) -> Result<HttpResponse, ApiError> {
    store.delete_role(customer(&auth.ctx)?, id.into_inner()).await?;
    Ok(envelope::no_content())
}
