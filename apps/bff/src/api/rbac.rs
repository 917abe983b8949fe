//! Roles and permissions: the catalogue a role is made from.

use actix_web::HttpResponse;
use portico_tenancy::permissions::{CATALOGUE, Permission};

use crate::auth::{Require, RolesRead};
use crate::envelope;
use crate::error::ApiError;
#[allow(unused_imports)] // the OpenAPI attributes name these
use crate::openapi::{ErrorEnvelope, PermissionListEnvelope};

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
