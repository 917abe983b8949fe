//! Feature gates: a route that belongs to a feature (as [`crate::api::ROUTES`]
//! declares it) answers 403 `tenancy.feature_disabled` to a tenant that does
//! not have the feature, before its handler runs.
//!
//! The tenant is the one the request acts on (its token's, or the
//! `X-Tenant-ID` of the platform's staff); the platform tenant has every
//! feature. Its effective configuration is
//! read through the cache with the tenant's own tag, so a change of its
//! settings, features or industry drops it at once on this instance and,
//! through the tables' triggers, on every other.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError, web};
use portico_kernel::{PLATFORM_TENANT_ID, TenantId};
use portico_store::Store;
use portico_tenancy::TenancyError;

use crate::api;
use crate::auth::Auth;
use crate::cache::{Cache, CacheKey, TtlClass};
use crate::error::ApiError;

/// Middleware: refuses a gated route to a tenant without its feature.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let feature = req
        .match_pattern()
        .and_then(|pattern| api::spec(req.method().as_str(), &pattern))
        .and_then(|route| route.feature);
    // Without an authenticated principal the handler answers 401 (or 403) itself.
    // The platform tenant has every feature: its staff's platform-wide views
    // (every tenant's plans, analytics) run in its scope.
    if let (Some(feature), Ok(auth)) = (feature, Auth::resolve(req.request()))
        && auth.ctx.tenant_id != PLATFORM_TENANT_ID
        && let Err(error) = check(&req, auth.ctx.tenant_id, feature).await
    {
        return Ok(req.into_response(error.error_response()));
    }
    next.call(req).await.map(ServiceResponse::map_into_boxed_body)
}

/// Whether `tenant` has `feature`: `Ok`, or the refusal.
async fn check(req: &ServiceRequest, tenant: TenantId, feature: &'static str) -> Result<(), ApiError> {
    let (Some(store), Some(cache)) = (req.app_data::<web::Data<Store>>(), req.app_data::<web::Data<Cache>>())
    else {
        return Err(ApiError::new(
            portico_kernel::ErrorKind::Internal,
            "internal",
            "Features are not configured.",
        ));
    };
    let key = CacheKey::new(crate::api::tenants::tag(tenant, tenant)).variant("features");
    let (bytes, _) = cache
        .get_or_load(&key, TtlClass::Tenant, || async {
            let config = store.config_of(tenant).await.map_err(ApiError::from)?;
            let enabled: Vec<&String> =
                config.features.iter().filter(|(_, state)| state.enabled).map(|(key, _)| key).collect();
            crate::envelope::to_bytes(&enabled)
        })
        .await?;
    let enabled: Vec<String> = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::from(TenancyError::Store(portico_kernel::InfraError::internal(e))))?;
    if enabled.iter().any(|key| key == feature) {
        Ok(())
    } else {
        Err(TenancyError::FeatureDisabled(feature.to_owned()).into())
    }
}
