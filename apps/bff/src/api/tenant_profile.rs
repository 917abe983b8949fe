//! A tenant's settings, configuration, feature flags and branding.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;
use portico_kernel::{FileKey, TenantId};
use portico_tenancy::logo::{LOGO_MAX_BYTES, LogoError};
use portico_tenancy::{SetFeatures, SettingsView, TenancyError, UpdateBranding, UpdateSettings};

use crate::auth::{
    Permission, PlatformTenantsRead, PlatformTenantsWrite, Require, TenantsRead, TenantsWrite,
};
use crate::cache_sync::Invalidations;
use crate::db::Db;
use crate::envelope;
use crate::error::ApiError;
use crate::json::Json;
#[allow(unused_imports)] // the OpenAPI attributes name these
use crate::openapi::{BrandingEnvelope, ConfigEnvelope, ErrorEnvelope, SettingsEnvelope};
use crate::server::Files;

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{id}/settings",
    tag = "tenants",
    params(
        ("id" = String, Path, format = Uuid, description = "The tenant's id."),
        ("X-Tenant-ID" = Option<String>, Header, format = Uuid, description = "Platform staff: the tenant to act on."),
    ),
    responses(
        (status = 200, description = "The settings in force, and which of them the tenant set itself.", body = SettingsEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The token lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such tenant for this caller.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tenants:read"]))
)]
/// Reads a tenant's settings.
pub async fn settings(
    auth: Require<TenantsRead>,
    store: Db,
    id: web::Path<TenantId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let config = store.tenant_config(&auth.on_tenant(id, PlatformTenantsRead::NAME), id).await?;
    Ok(envelope::ok(SettingsView::from(config)))
}

#[utoipa::path(
    put,
    path = "/api/v1/tenants/{id}/settings",
    tag = "tenants",
    params(
        ("id" = String, Path, format = Uuid, description = "The tenant's id."),
        ("X-Tenant-ID" = Option<String>, Header, format = Uuid, description = "Platform staff: the tenant to act on."),
    ),
    request_body = UpdateSettings,
    responses(
        (status = 200, description = "The settings now in force: the values given replace the tenant's own, and \
            every value left out follows the industry profile.", body = SettingsEnvelope),
        (status = 400, description = "The body is not JSON (`request.malformed_json`).", body = ErrorEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The token lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such tenant for this caller.", body = ErrorEnvelope),
        (status = 422, description = "An unknown key (`request.invalid_body`, naming it), or invalid values, each named in `details.fields` (`tenancy.invalid_settings`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tenants:write"]))
)]
/// Replaces a tenant's own settings.
pub async fn update_settings(
    auth: Require<TenantsWrite>,
    store: Db,
    invalidations: Invalidations,
    id: web::Path<TenantId>,
    body: Json<UpdateSettings>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let ctx = auth.on_tenant(id, PlatformTenantsWrite::NAME);
    let config = store.update_settings(&ctx, id, body.into_inner()).await?;
    invalidations.tag(super::tenants::tag(id, id));
    Ok(envelope::ok(SettingsView::from(config)))
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{id}/config",
    tag = "tenants",
    params(
        ("id" = String, Path, format = Uuid, description = "The tenant's id."),
        ("X-Tenant-ID" = Option<String>, Header, format = Uuid, description = "Platform staff: the tenant to act on."),
    ),
    responses(
        (status = 200, description = "The effective configuration: the industry profile's defaults with the \
            tenant's own settings and feature overrides laid over them.", body = ConfigEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The token lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such tenant for this caller.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tenants:read"]))
)]
/// Reads a tenant's effective configuration.
pub async fn config(
    auth: Require<TenantsRead>,
    store: Db,
    id: web::Path<TenantId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    Ok(envelope::ok(store.tenant_config(&auth.on_tenant(id, PlatformTenantsRead::NAME), id).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/tenants/{id}/features",
    tag = "tenants",
    params(
        ("id" = String, Path, format = Uuid, description = "The tenant's id."),
        ("X-Tenant-ID" = Option<String>, Header, format = Uuid, description = "Platform staff: the tenant to act on."),
    ),
    request_body = SetFeatures,
    responses(
        (status = 200, description = "The configuration after the change: `true`/`false` set an override, `null` \
            removes it (the profile's default applies again).", body = ConfigEnvelope),
        (status = 400, description = "The body is not JSON (`request.malformed_json`).", body = ErrorEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The caller is not platform staff holding the permission, or the tenant is the \
            platform's, which has every feature (`tenancy.platform_tenant_protected`).", body = ErrorEnvelope),
        (status = 404, description = "No such tenant.", body = ErrorEnvelope),
        (status = 422, description = "A feature the catalogue does not know (`tenancy.unknown_feature`); nothing changed.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:tenants:write"]))
)]
/// Sets or removes a tenant's feature overrides (platform staff).
pub async fn set_features(
    auth: Require<PlatformTenantsWrite>,
    store: Db,
    invalidations: Invalidations,
    id: web::Path<TenantId>,
    body: Json<SetFeatures>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    auth.platform()?;
    let config =
        store.set_features(&auth.on_tenant(id, PlatformTenantsWrite::NAME), id, body.into_inner()).await?;
    invalidations.tag(super::tenants::tag(id, id));
    Ok(envelope::ok(config))
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{id}/branding",
    tag = "tenants",
    params(
        ("id" = String, Path, format = Uuid, description = "The tenant's id."),
        ("X-Tenant-ID" = Option<String>, Header, format = Uuid, description = "Platform staff: the tenant to act on."),
    ),
    responses(
        (status = 200, description = "The branding (fields absent when never set).", body = BrandingEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The token lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such tenant for this caller.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tenants:read"]))
)]
/// Reads a tenant's branding.
pub async fn branding(
    auth: Require<TenantsRead>,
    store: Db,
    id: web::Path<TenantId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    Ok(envelope::ok(store.branding(&auth.on_tenant(id, PlatformTenantsRead::NAME), id).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/tenants/{id}/branding",
    tag = "tenants",
    params(
        ("id" = String, Path, format = Uuid, description = "The tenant's id."),
        ("X-Tenant-ID" = Option<String>, Header, format = Uuid, description = "Platform staff: the tenant to act on."),
    ),
    request_body = UpdateBranding,
    responses(
        (status = 200, description = "The branding now (colours in lower case; the logo unchanged).", body = BrandingEnvelope),
        (status = 400, description = "The body is not JSON (`request.malformed_json`).", body = ErrorEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The token lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such tenant for this caller.", body = ErrorEnvelope),
        (status = 409, description = "Another tenant uses the custom domain (`tenancy.domain_taken`).", body = ErrorEnvelope),
        (status = 422, description = "An unknown key (`request.invalid_body`, naming it), or invalid values, each named in `details.fields` (`tenancy.invalid_branding`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tenants:write"]))
)]
/// Replaces a tenant's branding (the logo has its own route).
pub async fn update_branding(
    auth: Require<TenantsWrite>,
    store: Db,
    id: web::Path<TenantId>,
    body: Json<UpdateBranding>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let ctx = auth.on_tenant(id, PlatformTenantsWrite::NAME);
    Ok(envelope::ok(store.update_branding(&ctx, id, body.into_inner()).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/tenants/{id}/branding/logo",
    tag = "tenants",
    params(
        ("id" = String, Path, format = Uuid, description = "The tenant's id."),
        ("X-Tenant-ID" = Option<String>, Header, format = Uuid, description = "Platform staff: the tenant to act on."),
        ("Content-Type" = String, Header, description = "`image/png`, `image/jpeg` or `image/svg+xml`."),
    ),
    request_body(description = "The image itself (at most 512 KiB, at most 4096 pixels a side). \
        The content must be what the Content-Type says; an SVG must be static: no scripts, event handlers, \
        external references or foreign content.",
        content((Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/svg+xml"))),
    responses(
        (status = 200, description = "The branding with the new logo; the old one is deleted.", body = BrandingEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The token lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such tenant for this caller.", body = ErrorEnvelope),
        (status = 413, description = "Over 512 KiB (`tenancy.logo_too_large`).", body = ErrorEnvelope),
        (status = 422, description = "Refused: `tenancy.logo_empty`, `tenancy.logo_unsupported_type`, \
            `tenancy.logo_content_mismatch` (e.g. a text file sent as PNG), `tenancy.logo_malformed`, \
            `tenancy.logo_unsafe_svg`.", body = ErrorEnvelope),
        (status = 503, description = "The file store is unavailable.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tenants:write"]))
)]
/// Uploads a tenant's logo.
pub async fn upload_logo(
    auth: Require<TenantsWrite>,
    store: Db,
    files: web::Data<Files>,
    req: HttpRequest,
    id: web::Path<TenantId>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let ctx = auth.on_tenant(id, PlatformTenantsWrite::NAME);
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // Read at most one byte past the limit, so a large upload is refused without being kept.
    let mut bytes = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::with_status(
                actix_web::http::StatusCode::BAD_REQUEST,
                "request.malformed_body",
                "The upload broke off or could not be read.",
            )
        })?;
        bytes.extend_from_slice(&chunk);
        if bytes.len() > LOGO_MAX_BYTES {
            return Err(too_large(bytes.len()));
        }
    }
    let branding =
        store.upload_logo(&ctx, id, files.0.as_ref(), &bytes, &content_type).await.map_err(|error| {
            match error {
                TenancyError::Logo(LogoError::TooLarge { size, .. }) => too_large(size),
                other => other.into(),
            }
        })?;
    Ok(envelope::ok(branding))
}

#[utoipa::path(
    delete,
    path = "/api/v1/tenants/{id}/branding/logo",
    tag = "tenants",
    params(
        ("id" = String, Path, format = Uuid, description = "The tenant's id."),
        ("X-Tenant-ID" = Option<String>, Header, format = Uuid, description = "Platform staff: the tenant to act on."),
    ),
    responses(
        (status = 200, description = "The branding without a logo; the file is deleted.", body = BrandingEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The token lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such tenant for this caller, or no logo (`tenancy.logo_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tenants:write"]))
)]
/// Removes a tenant's logo.
pub async fn remove_logo(
    auth: Require<TenantsWrite>,
    store: Db,
    files: web::Data<Files>,
    id: web::Path<TenantId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let ctx = auth.on_tenant(id, PlatformTenantsWrite::NAME);
    Ok(envelope::ok(store.delete_logo(&ctx, id, files.0.as_ref()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/tenants/{id}/branding/logo",
    tag = "tenants",
    params(
        ("id" = String, Path, format = Uuid, description = "The tenant's id."),
        ("X-Tenant-ID" = Option<String>, Header, format = Uuid, description = "Platform staff: the tenant to act on."),
    ),
    responses(
        (status = 200, description = "The logo's bytes, with its media type.",
            content((Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/svg+xml"))),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The token lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such tenant for this caller, or no logo (`tenancy.logo_not_found`).", body = ErrorEnvelope),
        (status = 503, description = "The file store is unavailable.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["tenants:read"]))
)]
/// Downloads a tenant's logo.
pub async fn logo(
    auth: Require<TenantsRead>,
    store: Db,
    files: web::Data<Files>,
    id: web::Path<TenantId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let (key, content_type) = store.logo(&auth.on_tenant(id, PlatformTenantsRead::NAME), id).await?;
    serve_logo(&files, &key, content_type).await
}

/// The logo stored under `key`, as an image answer that cannot run anything.
pub(crate) async fn serve_logo(
    files: &Files,
    key: &FileKey,
    content_type: String,
) -> Result<HttpResponse, ApiError> {
    let Some(file) = files.0.get(key).await.map_err(file_error)? else {
        tracing::warn!(%key, "a recorded logo is missing from the file store");
        return Err(TenancyError::LogoNotFound.into());
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "private, max-age=300"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // An SVG opened directly is a document: it may draw, never run or load anything.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        ))
        .body(file.bytes))
}

fn too_large(size: usize) -> ApiError {
    ApiError::with_status(
        actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
        "tenancy.logo_too_large",
        format!("A logo is at most {LOGO_MAX_BYTES} bytes; this one has at least {size}."),
    )
}

fn file_error(error: portico_kernel::FileError) -> ApiError {
    tracing::error!(%error, "file store");
    ApiError::from(TenancyError::Store(portico_kernel::InfraError::unavailable(error)))
}
