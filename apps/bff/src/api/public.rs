//! Routes for pages shown before sign-in (branding, sign-in forms): the
//! tenant comes from `X-Tenant-Slug` or the first label of the host name.

use std::future::{Ready, ready};

use crate::db::Db;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use portico_kernel::ErrorKind;
use portico_tenancy::TenantStore;

use crate::envelope;
use crate::error::ApiError;
#[allow(unused_imports)] // the OpenAPI attributes name these
use crate::openapi::{ErrorEnvelope, PublicTenantEnvelope};

/// The header naming the tenant of a public page.
pub const SLUG_HEADER: &str = "x-tenant-slug";

/// The slug a public request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSlug(pub String);

impl TenantSlug {
    /// `X-Tenant-Slug`, else the first label of the `Host` name if it has
    /// three or more labels (`acme.portico.example` -> `acme`); IP addresses
    /// and `localhost` name no tenant.
    fn from_request(req: &HttpRequest) -> Result<Self, ApiError> {
        if let Some(value) = req.headers().get(SLUG_HEADER) {
            let slug = value.to_str().map(str::trim).unwrap_or_default();
            return Ok(Self(slug.to_ascii_lowercase()));
        }
        // The Host header itself: forwarded headers are not trusted (no
        // trusted-proxy setting exists yet), so clients cannot pick a tenant with them.
        let host = req
            .headers()
            .get(actix_web::http::header::HOST)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()))
            .unwrap_or_default();
        slug_of_host(&host).map(Self).ok_or_else(|| {
            ApiError::new(
                ErrorKind::Validation,
                "request.missing_tenant_slug",
                "Name the tenant with X-Tenant-Slug or call through its own host name.",
            )
        })
    }
}

/// The tenant label of a host name, if it has one.
fn slug_of_host(host: &str) -> Option<String> {
    let name = host
        .rsplit_once(':')
        .map_or(host, |(name, port)| if port.parse::<u16>().is_ok() { name } else { host });
    let labels: Vec<&str> = name.split('.').collect();
    let is_ip = name.parse::<std::net::IpAddr>().is_ok() || name.starts_with('[');
    (!is_ip && labels.len() >= 3 && !labels[0].is_empty()).then(|| labels[0].to_ascii_lowercase())
}

impl FromRequest for TenantSlug {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::from_request(req))
    }
}

/// `GET /api/v1/public/tenant`: the public face of the tenant a page is for.
#[utoipa::path(
    get,
    path = "/api/v1/public/tenant",
    tag = "public",
    params(("X-Tenant-Slug" = Option<String>, Header, description = "The tenant's slug; else the host's first label.")),
    responses(
        (status = 200, description = "The tenant's public face.", body = PublicTenantEnvelope),
        (status = 404, description = "No tenant in service has this slug.", body = ErrorEnvelope),
        (status = 422, description = "Neither header nor host names a tenant.", body = ErrorEnvelope),
    ),
    security(())
)]
pub async fn tenant(slug: TenantSlug, store: Db) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.find_public(&slug.0).await?))
}

/// `GET /api/v1/public/tenant/logo`: the logo of the tenant a page is for.
#[utoipa::path(
    get,
    path = "/api/v1/public/tenant/logo",
    tag = "public",
    params(("X-Tenant-Slug" = Option<String>, Header, description = "The tenant's slug; else the host's first label.")),
    responses(
        (status = 200, description = "The logo's bytes, with its media type.",
            content((Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/svg+xml"))),
        (status = 404, description = "No tenant in service has this slug, or it has no logo (`tenancy.logo_not_found`).", body = ErrorEnvelope),
        (status = 422, description = "Neither header nor host names a tenant.", body = ErrorEnvelope),
        (status = 503, description = "The file store is unavailable.", body = ErrorEnvelope),
    ),
    security(())
)]
pub async fn logo(
    slug: TenantSlug,
    store: Db,
    files: actix_web::web::Data<crate::server::Files>,
) -> Result<HttpResponse, ApiError> {
    let (key, content_type) = store.public_logo(&slug.0).await?;
    let mut response = super::tenant_profile::serve_logo(&files, &key, content_type).await?;
    // One address, a logo per tenant: a cache must key on what names the tenant.
    response.headers_mut().insert(
        actix_web::http::header::VARY,
        actix_web::http::header::HeaderValue::from_static("X-Tenant-Slug, Host"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::slug_of_host;

    #[test]
    fn the_first_label_of_a_tenant_host_is_its_slug() {
        assert_eq!(slug_of_host("acme.portico.example"), Some("acme".into()));
        assert_eq!(slug_of_host("Acme.portico.example:8443"), Some("acme".into()));
        assert_eq!(slug_of_host("portico.example"), None);
        assert_eq!(slug_of_host("localhost:8080"), None);
        assert_eq!(slug_of_host("127.0.0.1:8080"), None);
        assert_eq!(slug_of_host("[::1]:8080"), None);
    }
}
