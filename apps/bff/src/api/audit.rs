//! The audit trail: a tenant's own, and the platform's view of all.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use portico_kernel::{ErrorKind, PageRequest, TenantId};
use portico_store::AuditFilter;
use serde::Deserialize;

use crate::auth::{AuditRead, PlatformAuditRead, Require};
use crate::db::Db;
use crate::envelope;
use crate::error::ApiError;
#[allow(unused_imports)] // the OpenAPI attributes name these
use crate::openapi::{AuditPageEnvelope, ErrorEnvelope};

/// Filters and page of an audit query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditQuery {
    /// 1-based page (default 1).
    #[serde(default)]
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only this actor (a user's or API key's id).
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub actor_id: Option<uuid::Uuid>,
    /// Only this action (`tenant.suspend`).
    #[serde(default)]
    pub action: Option<String>,
    /// Only this kind of resource (`tenant`).
    #[serde(default)]
    pub resource_type: Option<String>,
    /// Only this resource.
    #[serde(default)]
    pub resource_id: Option<String>,
    /// From this time on (RFC 3339, inclusive).
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// Before this time (RFC 3339).
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
    /// Platform view only: only this tenant's trail.
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub tenant_id: Option<TenantId>,
}

impl AuditQuery {
    fn parts(&self) -> Result<(AuditFilter, PageRequest), ApiError> {
        let page = crate::api::page_request(self.page, self.limit)?;
        let filter = AuditFilter {
            actor_id: self.actor_id,
            action: self.action.clone(),
            resource_type: self.resource_type.clone(),
            resource_id: self.resource_id.clone(),
            from: self.from,
            to: self.to,
        };
        Ok((filter, page))
    }
}

/// The caller's tenant's audit trail, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of the tenant's audit trail, newest first.", body = AuditPageEnvelope),
        (status = 400, description = "A malformed filter.", body = ErrorEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The token lacks the permission.", body = ErrorEnvelope),
        (status = 422, description = "A bad page or limit.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["audit:read"]))
)]
pub async fn trail(
    auth: Require<AuditRead>,
    store: Db,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    if query.tenant_id.is_some() {
        return Err(ApiError::new(
            ErrorKind::Validation,
            "request.invalid_query",
            "tenantId is for the platform view.",
        ));
    }
    let (filter, page) = query.parts()?;
    let rows = store.audit_trail(&auth.ctx, &filter, page).await.map_err(|e| ApiError::infra(&e))?;
    Ok(envelope::page(&rows))
}

/// Every tenant's audit trail together (platform staff), newest first.
#[utoipa::path(
    get,
    path = "/api/v1/admin/audit",
    tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of all audit trails, newest first.", body = AuditPageEnvelope),
        (status = 400, description = "A malformed filter.", body = ErrorEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
        (status = 422, description = "A bad page or limit.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:audit:read"]))
)]
pub async fn platform_trail(
    auth: Require<PlatformAuditRead>,
    store: Db,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let platform = auth
        .ctx
        .platform()
        .map_err(|e| ApiError::new(ErrorKind::Forbidden, "auth.permission_denied", e.to_string()))?;
    let (filter, page) = query.parts()?;
    let rows = store
        .platform_audit_trail(&platform, query.tenant_id, &filter, page)
        .await
        .map_err(|e| ApiError::infra(&e))?;
    Ok(envelope::page(&rows))
}
