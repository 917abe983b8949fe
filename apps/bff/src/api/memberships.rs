//! A tenant's people: their roles.

use actix_web::{HttpResponse, web};
use portico_kernel::MembershipId;
use portico_tenancy::Role;
use serde::{Deserialize, Serialize};

use crate::auth::{MembershipsWrite, Require};
use crate::db::Db;
use crate::envelope;
use crate::error::ApiError;
use crate::json::Json;
#[allow(unused_imports)] // the OpenAPI attributes name these
use crate::openapi::{ErrorEnvelope, RoleChangedEnvelope};

/// `PUT /api/v1/memberships/{id}/role`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"role": "ADMIN"}))]
pub struct ChangeRole {
    /// The new role.
    pub role: Role,
}

/// A membership's role after a change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f", "role": "ADMIN"}))]
pub struct RoleChanged {
    /// The membership.
    #[schema(value_type = String, format = Uuid)]
    pub id: MembershipId,
    /// Its role now.
    pub role: Role,
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
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such membership in this tenant (another tenant's included).", body = ErrorEnvelope),
        (status = 409, description = "It would leave the tenant without an owner (`memberships.last_owner`).", body = ErrorEnvelope),
        (status = 422, description = "A platform role outside the platform tenant (`memberships.role_not_allowed`), or an unknown role.", body = ErrorEnvelope),
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
    let id = id.into_inner();
    let role = store.change_role(&auth.ctx, id, body.into_inner().role).await?;
    Ok(envelope::ok(RoleChanged { id, role }))
}
