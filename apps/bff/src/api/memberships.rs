//! A tenant's people: their roles.

use actix_web::{HttpResponse, web};
use portico_kernel::{MembershipId, RoleId};
use portico_tenancy::{Role, RoleChoice};
use serde::{Deserialize, Serialize};

use crate::auth::{MembershipsWrite, Require, holds};
use crate::db::Db;
use crate::envelope;
use crate::error::ApiError;
use crate::json::Json;
#[allow(unused_imports)] // the OpenAPI attributes name these
use crate::openapi::{ErrorEnvelope, RoleChangedEnvelope};

/// `PUT /api/v1/memberships/{id}/role`: a built-in `role`, or a custom `roleId`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"role": "ADMIN"}))]
pub struct ChangeRole {
    /// A built-in role.
    #[serde(default)]
    pub role: Option<Role>,
    /// One of the tenant's custom roles.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub role_id: Option<RoleId>,
}

/// A membership's role after a change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f", "role": "ADMIN", "roleId": null, "permissions": ["tenants:read"]}))]
pub struct RoleChanged {
    /// The membership.
    #[schema(value_type = String, format = Uuid)]
    pub id: MembershipId,
    /// Its role now.
    pub role: Role,
    /// Its custom role, if any.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub role_id: Option<RoleId>,
    /// What it may do from the person's next token refresh.
    pub permissions: Vec<String>,
}

#[utoipa::path(
    put,
    path = "/api/v1/memberships/{id}/role",
    tag = "rbac",
    params(("id" = String, Path, format = Uuid, description = "The membership's id.")),
    request_body = ChangeRole,
    responses(
        (status = 200, description = "The new role; it applies from the person's next token refresh.", body = RoleChangedEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or does not hold every permission the role carries (`rbac.permission_not_held`).", body = ErrorEnvelope),
        (status = 404, description = "No such membership (`memberships.not_found`) or custom role (`roles.not_found`) in this tenant, another tenant's included.", body = ErrorEnvelope),
        (status = 409, description = "It would leave the tenant without an owner (`memberships.last_owner`).", body = ErrorEnvelope),
        (status = 422, description = "A platform role outside the platform tenant (`memberships.role_not_allowed`), neither or both of `role` and `roleId` (`roles.invalid`), or an unknown role.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["memberships:write"]))
)]
/// Changes the role of one of the tenant's people.
pub async fn change_role(
    auth: Require<MembershipsWrite>,
    store: Db,
    id: web::Path<MembershipId>,
    body: Json<ChangeRole>,
) -> Result<HttpResponse, ApiError> {
    let (id, body) = (id.into_inner(), body.into_inner());
    let choice = RoleChoice::from_request(body.role, body.role_id)?;
    let (role, custom) = store.change_role(&auth.ctx, id, choice, holds(&auth.ctx)).await?;
    let permissions = match &custom {
        Some(custom) => portico_tenancy::roles::grantable(&custom.permissions),
        None => role.permissions().iter().map(|p| (*p).to_owned()).collect(),
    };
    Ok(envelope::ok(RoleChanged { id, role, role_id: custom.map(|c| c.id), permissions }))
}
