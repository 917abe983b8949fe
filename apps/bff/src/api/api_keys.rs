//! A tenant's API keys: created with a subset of the creator's permissions,
//! shown once, listed without their secret, revoked.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use portico_kernel::{ApiKeyId, ErrorKind};
use portico_store::{ApiKey, NewApiKey};
use portico_tenancy::IdentityError;
use serde::{Deserialize, Serialize};

use crate::auth::{ApiKeysManage, Require};
use crate::db::Db;
use crate::envelope;
use crate::error::ApiError;
use crate::json::Json;
#[allow(unused_imports)] // the OpenAPI attributes name these
use crate::openapi::{ApiKeyCreatedEnvelope, ApiKeyListEnvelope, ErrorEnvelope};

/// `POST /api/v1/api-keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "invoicing service", "permissions": ["tenants:read"], "expiresAt": null}))]
pub struct CreateApiKey {
    /// What the key is for (1 to 100 characters).
    pub name: String,
    /// What it may do: each must be a permission the creator holds in this tenant.
    pub permissions: Vec<String>,
    /// When it stops working (none: until revoked).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A new key, with its secret: shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyCreated {
    /// The key as stored (without the secret).
    #[serde(flatten)]
    pub key: ApiKey,
    /// The whole key, for `Authorization: Bearer`: copy it now, it is not shown again.
    pub secret: String,
}

#[utoipa::path(
    get,
    path = "/api/v1/api-keys",
    tag = "api-keys",
    responses(
        (status = 200, description = "The tenant's live keys, newest first, without secrets.", body = ApiKeyListEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["api_keys:manage"]))
)]
/// Lists the tenant's API keys.
pub async fn list(auth: Require<ApiKeysManage>, store: Db) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.api_keys(&auth.ctx).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/api-keys",
    tag = "api-keys",
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "The key, with its secret shown once.", body = ApiKeyCreatedEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, acts on another tenant, or is itself an API key.", body = ErrorEnvelope),
        (status = 422, description = "A bad name or expiry, a `platform:` permission, or a permission the caller does not hold (`api_keys.permission_not_held`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["api_keys:manage"]))
)]
/// Creates an API key of the caller's tenant.
pub async fn create(
    auth: Require<ApiKeysManage>,
    store: Db,
    body: Json<CreateApiKey>,
) -> Result<HttpResponse, ApiError> {
    let CreateApiKey { name, mut permissions, expires_at } = body.into_inner();
    let name = name.trim().to_owned();
    if !(1..=100).contains(&name.chars().count()) {
        return Err(field("name", "use 1 to 100 characters"));
    }
    if expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(field("expiresAt", "must be in the future"));
    }
    auth.person()?; // keys are made by people, not by other keys
    if let Some(platform) = permissions.iter().find(|p| p.starts_with("platform:")) {
        return Err(field(
            "permissions",
            &format!("`{platform}`: platform permissions are not given to API keys"),
        ));
    }
    if auth.ctx.is_cross_tenant() {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "api_keys.own_tenant_only",
            "API keys are made by the tenant's own people.",
        ));
    }
    permissions.sort();
    permissions.dedup();
    if let Some(missing) = permissions.iter().find(|p| !auth.ctx.has(p)) {
        return Err(IdentityError::PermissionNotHeld(missing.clone()).into());
    }
    let secret = crate::api_keys::generate()?;
    let key = store
        .create_api_key(&auth.ctx, NewApiKey { name, key: secret.clone(), permissions, expires_at })
        .await?;
    Ok(envelope::created(ApiKeyCreated { key, secret }))
}

fn field(name: &str, message: &str) -> ApiError {
    ApiError::invalid("api_keys.invalid_key", &portico_kernel::ValidationErrors::field(name, message))
}

#[utoipa::path(
    delete,
    path = "/api/v1/api-keys/{id}",
    tag = "api-keys",
    params(("id" = String, Path, format = Uuid, description = "The key's id.")),
    responses(
        (status = 204, description = "Revoked: the key no longer works."),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such live key in this tenant (another tenant's included).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["api_keys:manage"]))
)]
/// Revokes an API key.
pub async fn revoke(
    auth: Require<ApiKeysManage>,
    store: Db,
    id: web::Path<ApiKeyId>,
) -> Result<HttpResponse, ApiError> {
    store.revoke_api_key(&auth.ctx, id.into_inner()).await?;
    Ok(envelope::no_content())
}
