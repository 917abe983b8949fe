//! The `/api/v1` routes.
//!
//! [`ROUTES`] is the one list of routes and of what each guarantees
//! (idempotency, rate limit class): `configure` registers exactly these
//! (each resource answering 405 to other methods), and a test checks the
//! list against the OpenAPI document in both directions.

pub mod admin_users;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod credits;
pub mod crm_activities;
pub mod crm_contacts;
pub mod crm_sales;
pub mod crm_transfer;
pub mod dev;
pub mod jobs;
pub mod memberships;
pub mod metering;
pub mod onboarding;
pub mod people;
pub mod public;
pub mod rbac;
pub mod tenant_profile;
pub mod tenant_views;
pub mod tenants;
pub mod tickets;

use std::sync::LazyLock;

use actix_web::{HttpRequest, Route, middleware, web};
use portico_kernel::{ErrorKind, PageRequest};

use crate::error::ApiError;

use crate::{error, features, idempotency, openapi, rate_limit};

/// How a route treats the `Idempotency-Key` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Not a mutation, or no authenticated principal to scope a key by: the header is ignored.
    Exempt,
    /// A retried request with the same key is answered from the first run.
    Optional,
    /// As `Optional`, and a request without a key is refused (routes that move money or credits).
    Required,
}

/// Which rate limit applies to a route (the limits are in `config/`, `[rate_limit]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateClass {
    /// Routes anyone may call: limited per client address.
    Public,
    /// Authenticated reads: limited per principal and per tenant.
    Read,
    /// Authenticated changes: limited per principal and per tenant, more tightly.
    Write,
    /// Usage and reading ingestion (machines sending batches): limited per
    /// principal and per tenant, more loosely than changes.
    Ingest,
    /// Sign-in and token refresh: limited per client address, tightly (guessing passwords).
    Auth,
}

/// A route and the guarantees it declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    /// `GET`, `POST`, ...
    pub method: &'static str,
    /// The path template (`/api/v1/tenants/{id}`).
    pub path: &'static str,
    /// `Idempotency-Key` handling.
    pub idempotency: Idempotency,
    /// Its rate limit.
    pub rate: RateClass,
    /// The feature a tenant must have for the route (`None`: every tenant may call it).
    pub feature: Option<&'static str>,
}

impl RouteSpec {
    /// The route, answering 403 `tenancy.feature_disabled` to tenants without `feature`.
    pub(crate) const fn gated(self, feature: &'static str) -> Self {
        Self { feature: Some(feature), ..self }
    }
}

/// A public read.
pub(crate) const fn public(path: &'static str) -> RouteSpec {
    RouteSpec {
        method: "GET",
        path,
        idempotency: Idempotency::Exempt,
        rate: RateClass::Public,
        feature: None,
    }
}

/// An authenticated read.
pub(crate) const fn read(path: &'static str) -> RouteSpec {
    RouteSpec { method: "GET", path, idempotency: Idempotency::Exempt, rate: RateClass::Read, feature: None }
}

/// An authenticated change that honours `Idempotency-Key`.
pub(crate) const fn write(method: &'static str, path: &'static str) -> RouteSpec {
    RouteSpec { method, path, idempotency: Idempotency::Optional, rate: RateClass::Write, feature: None }
}

/// A sign-in route: no principal yet, limited per client address.
pub(crate) const fn sign_in(path: &'static str) -> RouteSpec {
    RouteSpec { method: "POST", path, idempotency: Idempotency::Exempt, rate: RateClass::Auth, feature: None }
}

/// An authenticated change whose answer carries a secret shown once (a new
/// key, an authenticator's secret, tokens): not kept for replay, so
/// `Idempotency-Key` is ignored.
pub(crate) const fn secret_write(path: &'static str) -> RouteSpec {
    RouteSpec {
        method: "POST",
        path,
        idempotency: Idempotency::Exempt,
        rate: RateClass::Write,
        feature: None,
    }
}

/// A bulk transfer (CSV streamed in or out): too large to keep for replay,
/// so `Idempotency-Key` is ignored. An import sent again is refused row by
/// row (`import.already_member`): nothing is written twice.
pub(crate) const fn bulk(path: &'static str) -> RouteSpec {
    RouteSpec {
        method: "POST",
        path,
        idempotency: Idempotency::Exempt,
        rate: RateClass::Write,
        feature: None,
    }
}

/// A raw file upload or its removal: the body is the file, too large to
/// keep for replay, so `Idempotency-Key` is ignored. Both are idempotent by
/// effect: the same upload again leaves the same logo, a second removal
/// answers 404.
const fn upload(method: &'static str, path: &'static str) -> RouteSpec {
    RouteSpec { method, path, idempotency: Idempotency::Exempt, rate: RateClass::Write, feature: None }
}

/// A batch of usage events or readings sent by machines: limited as
/// ingestion, not as changes. Events are idempotent by their own ids, so
/// `Idempotency-Key` is ignored.
const fn ingest(path: &'static str) -> RouteSpec {
    RouteSpec {
        method: "POST",
        path,
        idempotency: Idempotency::Exempt,
        rate: RateClass::Ingest,
        feature: None,
    }
}

/// A change that moves credits (or money): a request without an
/// `Idempotency-Key` is refused, and the key is the operation's reference.
const fn money(path: &'static str) -> RouteSpec {
    RouteSpec {
        method: "POST",
        path,
        idempotency: Idempotency::Required,
        rate: RateClass::Write,
        feature: None,
    }
}

/// A list's page from its `page` and `limit` query parameters (1 and
/// [`PageRequest::DEFAULT_LIMIT`] when absent); out of range is 422 `request.invalid_page`.
pub(crate) fn page_request(page: Option<u32>, limit: Option<u32>) -> Result<PageRequest, ApiError> {
    PageRequest::new(page.unwrap_or(1), limit.unwrap_or(PageRequest::DEFAULT_LIMIT))
        .map_err(|e| ApiError::new(ErrorKind::Validation, "request.invalid_page", e.to_string()))
}

/// The largest CSV file an import takes, in bytes.
pub const IMPORT_MAX_BYTES: usize = 32 * 1024 * 1024;

/// Streams a CSV upload into `feed` chunk by chunk, never holding the file:
/// 415 `import.not_csv` unless sent as `text/csv`, 413 `import.too_large`
/// past [`IMPORT_MAX_BYTES`].
pub(crate) async fn stream_csv(
    req: &HttpRequest,
    payload: &mut web::Payload,
    mut feed: impl FnMut(&[u8]),
) -> Result<(), ApiError> {
    people::require_csv(req)?;
    let mut read = 0usize;
    while let Some(chunk) = futures_util::StreamExt::next(payload).await {
        let chunk = chunk.map_err(|_| {
            ApiError::new(ErrorKind::Validation, "request.unreadable_body", "The body could not be read.")
        })?;
        read += chunk.len();
        if read > IMPORT_MAX_BYTES {
            return Err(ApiError::with_status(
                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                "import.too_large",
                "An import takes at most 32 MiB.",
            ));
        }
        feed(&chunk);
    }
    Ok(())
}

/// Every `/api/v1` route with its guarantees: [`CORE_ROUTES`], then each
/// area's own list (an area module declares its routes, its handlers and
/// its part of the OpenAPI document together).
pub static ROUTES: LazyLock<Vec<RouteSpec>> = LazyLock::new(|| {
    [
        &CORE_ROUTES[..],
        crm_contacts::ROUTES,
        crm_sales::ROUTES,
        crm_activities::ROUTES,
        crm_transfer::ROUTES,
        tickets::ROUTES,
    ]
    .concat()
});

/// The areas' parts of the OpenAPI document, merged into it.
pub(crate) fn documents() -> Vec<utoipa::openapi::OpenApi> {
    use utoipa::OpenApi;
    vec![
        crm_contacts::Doc::openapi(),
        crm_sales::Doc::openapi(),
        crm_activities::Doc::openapi(),
        crm_transfer::Doc::openapi(),
        tickets::Doc::openapi(),
    ]
}

/// The routes of the platform's first areas, handled in [`handler`].
const CORE_ROUTES: [RouteSpec; 144] = [
    public("/api/v1/openapi.json"),
    public("/api/v1/public/tenant"),
    public("/api/v1/public/tenant/logo"),
    read("/api/v1/tenants"),
    write("POST", "/api/v1/tenants"),
    read("/api/v1/tenants/{id}"),
    write("PUT", "/api/v1/tenants/{id}"),
    write("DELETE", "/api/v1/tenants/{id}"),
    write("POST", "/api/v1/tenants/{id}/suspend"),
    write("POST", "/api/v1/tenants/{id}/activate"),
    write("POST", "/api/v1/tenants/{id}/onboarding"),
    read("/api/v1/tenants/{id}/settings"),
    write("PUT", "/api/v1/tenants/{id}/settings"),
    read("/api/v1/tenants/{id}/config"),
    write("PUT", "/api/v1/tenants/{id}/features"),
    read("/api/v1/tenants/{id}/branding"),
    write("PUT", "/api/v1/tenants/{id}/branding"),
    read("/api/v1/tenants/{id}/branding/logo"),
    upload("PUT", "/api/v1/tenants/{id}/branding/logo"),
    upload("DELETE", "/api/v1/tenants/{id}/branding/logo"),
    read("/api/v1/tenants/{id}/users"),
    read("/api/v1/tenants/{id}/analytics"),
    read("/api/v1/admin/tenants/overview"),
    sign_in("/api/v1/onboarding"),
    public("/api/v1/industries"),
    read("/api/v1/admin/jobs"),
    write("POST", "/api/v1/admin/jobs/{id}/retry"),
    public("/api/v1/dev/mailbox"),
    read("/api/v1/audit"),
    read("/api/v1/admin/audit"),
    sign_in("/api/v1/auth/login"),
    RouteSpec {
        method: "POST",
        path: "/api/v1/auth/refresh",
        idempotency: Idempotency::Exempt,
        rate: RateClass::Public,
        feature: None,
    },
    write("POST", "/api/v1/auth/logout"),
    read("/api/v1/auth/me"),
    read("/api/v1/auth/sessions"),
    write("DELETE", "/api/v1/auth/sessions/{id}"),
    sign_in("/api/v1/auth/forgot-password"),
    sign_in("/api/v1/auth/reset-password"),
    write("POST", "/api/v1/auth/send-verification"),
    sign_in("/api/v1/auth/verify-email"),
    secret_write("/api/v1/auth/switch-tenant"),
    secret_write("/api/v1/auth/mfa/setup"),
    sign_in("/api/v1/auth/mfa/verify"),
    write("POST", "/api/v1/auth/mfa/disable"),
    read("/api/v1/api-keys"),
    secret_write("/api/v1/api-keys"),
    read("/api/v1/rbac/permissions"),
    write("PUT", "/api/v1/memberships/{id}/role"),
    write("DELETE", "/api/v1/api-keys/{id}"),
    read("/api/v1/rbac/roles"),
    write("POST", "/api/v1/rbac/roles"),
    read("/api/v1/rbac/roles/{id}"),
    write("PUT", "/api/v1/rbac/roles/{id}"),
    write("DELETE", "/api/v1/rbac/roles/{id}"),
    read("/api/v1/invitations"),
    write("POST", "/api/v1/invitations"),
    // Before `{id}`: a resource matches by path first.
    sign_in("/api/v1/invitations/accept"),
    write("POST", "/api/v1/invitations/{id}/resend"),
    write("DELETE", "/api/v1/invitations/{id}"),
    read("/api/v1/platform-users"),
    write("POST", "/api/v1/platform-users"),
    read("/api/v1/platform-users/analytics"),
    bulk("/api/v1/platform-users/bulk-import"),
    bulk("/api/v1/platform-users/bulk-export"),
    read("/api/v1/platform-users/owners"),
    read("/api/v1/platform-users/owners/{id}"),
    read("/api/v1/platform-users/students"),
    read("/api/v1/platform-users/students/{id}"),
    read("/api/v1/platform-users/parents"),
    read("/api/v1/platform-users/parents/{id}"),
    read("/api/v1/platform-users/staff"),
    read("/api/v1/platform-users/staff/{id}"),
    read("/api/v1/platform-users/{id}"),
    write("PUT", "/api/v1/platform-users/{id}"),
    write("DELETE", "/api/v1/platform-users/{id}"),
    write("POST", "/api/v1/platform-users/{id}/activate"),
    write("POST", "/api/v1/platform-users/{id}/deactivate"),
    read("/api/v1/platform-users/{id}/activity"),
    read("/api/v1/admin-users"),
    write("POST", "/api/v1/admin-users"),
    read("/api/v1/admin-users/analytics"),
    read("/api/v1/admin-users/permissions"),
    read("/api/v1/admin-users/{id}"),
    write("PUT", "/api/v1/admin-users/{id}"),
    write("DELETE", "/api/v1/admin-users/{id}"),
    write("PUT", "/api/v1/admin-users/{id}/permissions"),
    read("/api/v1/admin-users/{id}/activity"),
    write("POST", "/api/v1/admin-users/{id}/invite"),
    write("POST", "/api/v1/admin-users/{id}/reset-password"),
    write("POST", "/api/v1/admin-users/{id}/toggle-mfa"),
    read("/api/v1/admin-users/{id}/sessions"),
    write("DELETE", "/api/v1/admin-users/{id}/sessions/{sessionId}"),
    // A tenant without the credits feature cannot use its wallets; the platform's own work on
    // stock, catalogue and plans (platform permissions only) is not a tenant's feature.
    read("/api/v1/credits/dashboard").gated("credits"),
    read("/api/v1/credits/master-wallet"),
    money("/api/v1/credits/master-wallet/top-up"),
    read("/api/v1/credits/wallets").gated("credits"),
    read("/api/v1/credits/wallets/{id}").gated("credits"),
    write("PUT", "/api/v1/credits/wallets/{id}").gated("credits"),
    money("/api/v1/credits/wallets/{id}/add").gated("credits"),
    money("/api/v1/credits/wallets/{id}/adjust"),
    read("/api/v1/credits/packages").gated("credits"),
    write("POST", "/api/v1/credits/packages"),
    read("/api/v1/credits/packages/{id}").gated("credits"),
    write("PUT", "/api/v1/credits/packages/{id}"),
    money("/api/v1/credits/packages/{id}/purchase").gated("credits"),
    read("/api/v1/credits/custom-plans").gated("credits"),
    write("POST", "/api/v1/credits/custom-plans"),
    read("/api/v1/credits/custom-plans/{id}").gated("credits"),
    write("PUT", "/api/v1/credits/custom-plans/{id}"),
    read("/api/v1/credits/transactions").gated("credits"),
    read("/api/v1/credits/analytics").gated("credits"),
    read("/api/v1/credits/pricing").gated("credits"),
    write("PUT", "/api/v1/credits/pricing"),
    money("/api/v1/credits/debits").gated("credits"),
    money("/api/v1/credits/reservations").gated("credits"),
    read("/api/v1/credits/reservations/{id}").gated("credits"),
    money("/api/v1/credits/reservations/{id}/capture").gated("credits"),
    money("/api/v1/credits/reservations/{id}/release").gated("credits"),
    read("/api/v1/metering/sites").gated("metering"),
    write("POST", "/api/v1/metering/sites").gated("metering"),
    read("/api/v1/metering/sites/{id}").gated("metering"),
    write("PUT", "/api/v1/metering/sites/{id}").gated("metering"),
    write("DELETE", "/api/v1/metering/sites/{id}").gated("metering"),
    read("/api/v1/metering/meters").gated("metering"),
    write("POST", "/api/v1/metering/meters").gated("metering"),
    read("/api/v1/metering/meters/{id}").gated("metering"),
    write("PUT", "/api/v1/metering/meters/{id}").gated("metering"),
    write("DELETE", "/api/v1/metering/meters/{id}").gated("metering"),
    write("POST", "/api/v1/metering/meters/{id}/replace").gated("metering"),
    read("/api/v1/metering/meters/{id}/readings").gated("metering"),
    read("/api/v1/metering/meters/{id}/consumption").gated("metering"),
    // Readings change registers' history: a retried batch is answered from its first run.
    RouteSpec { rate: RateClass::Ingest, ..write("POST", "/api/v1/metering/readings") }.gated("metering"),
    RouteSpec { rate: RateClass::Ingest, ..bulk("/api/v1/metering/readings/import") }.gated("metering"),
    ingest("/api/v1/metering/events").gated("metering"),
    read("/api/v1/metering/usage").gated("metering"),
    write("POST", "/api/v1/metering/usage/close").gated("metering"),
    read("/api/v1/metering/metrics").gated("metering"),
    write("POST", "/api/v1/metering/metrics").gated("metering"),
    read("/api/v1/metering/metrics/{id}").gated("metering"),
    write("PUT", "/api/v1/metering/metrics/{id}").gated("metering"),
    write("DELETE", "/api/v1/metering/metrics/{id}").gated("metering"),
    read("/api/v1/metering/sources").gated("metering"),
    write("POST", "/api/v1/metering/sources").gated("metering"),
    write("DELETE", "/api/v1/metering/sources/{id}").gated("metering"),
];

/// Routes whose JSON bodies may be larger than the default limit: batches
/// of up to 1,000 events or readings.
const LARGE_BODIES: [&str; 2] = ["/api/v1/metering/events", "/api/v1/metering/readings"];

/// The body limit of [`LARGE_BODIES`].
pub const LARGE_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// The declaration of `method` on `path` (a template), if listed.
#[must_use]
pub fn spec(method: &str, path: &str) -> Option<&'static RouteSpec> {
    ROUTES.iter().find(|route| route.method == method && route.path == path)
}

/// The handler of a listed route.
fn handler(method: &str, path: &str) -> Route {
    match (method, path) {
        ("GET", "/api/v1/openapi.json") => web::get().to(openapi::document),
        ("GET", "/api/v1/public/tenant") => web::get().to(public::tenant),
        ("GET", "/api/v1/public/tenant/logo") => web::get().to(public::logo),
        ("GET", "/api/v1/tenants") => web::get().to(tenants::list),
        ("POST", "/api/v1/tenants") => web::post().to(tenants::create),
        ("GET", "/api/v1/tenants/{id}") => web::get().to(tenants::get),
        ("PUT", "/api/v1/tenants/{id}") => web::put().to(tenants::update),
        ("DELETE", "/api/v1/tenants/{id}") => web::delete().to(tenants::delete),
        ("POST", "/api/v1/tenants/{id}/suspend") => web::post().to(tenants::suspend),
        ("POST", "/api/v1/tenants/{id}/activate") => web::post().to(tenants::activate),
        ("POST", "/api/v1/tenants/{id}/onboarding") => web::post().to(onboarding::onboard),
        ("GET", "/api/v1/tenants/{id}/settings") => web::get().to(tenant_profile::settings),
        ("PUT", "/api/v1/tenants/{id}/settings") => web::put().to(tenant_profile::update_settings),
        ("GET", "/api/v1/tenants/{id}/config") => web::get().to(tenant_profile::config),
        ("PUT", "/api/v1/tenants/{id}/features") => web::put().to(tenant_profile::set_features),
        ("GET", "/api/v1/tenants/{id}/branding") => web::get().to(tenant_profile::branding),
        ("PUT", "/api/v1/tenants/{id}/branding") => web::put().to(tenant_profile::update_branding),
        ("GET", "/api/v1/tenants/{id}/branding/logo") => web::get().to(tenant_profile::logo),
        ("PUT", "/api/v1/tenants/{id}/branding/logo") => web::put().to(tenant_profile::upload_logo),
        ("DELETE", "/api/v1/tenants/{id}/branding/logo") => web::delete().to(tenant_profile::remove_logo),
        ("GET", "/api/v1/tenants/{id}/users") => web::get().to(tenant_views::users),
        ("GET", "/api/v1/tenants/{id}/analytics") => web::get().to(tenant_views::analytics),
        ("GET", "/api/v1/admin/tenants/overview") => web::get().to(tenant_views::overview),
        ("POST", "/api/v1/onboarding") => web::post().to(onboarding::sign_up),
        ("GET", "/api/v1/industries") => web::get().to(onboarding::industries),
        ("GET", "/api/v1/admin/jobs") => web::get().to(jobs::overview),
        ("POST", "/api/v1/admin/jobs/{id}/retry") => web::post().to(jobs::retry),
        ("GET", "/api/v1/dev/mailbox") => web::get().to(dev::mailbox),
        ("GET", "/api/v1/audit") => web::get().to(audit::trail),
        ("GET", "/api/v1/admin/audit") => web::get().to(audit::platform_trail),
        ("POST", "/api/v1/auth/login") => web::post().to(auth::login),
        ("POST", "/api/v1/auth/refresh") => web::post().to(auth::refresh),
        ("POST", "/api/v1/auth/logout") => web::post().to(auth::logout),
        ("GET", "/api/v1/auth/me") => web::get().to(auth::me),
        ("GET", "/api/v1/auth/sessions") => web::get().to(auth::sessions),
        ("DELETE", "/api/v1/auth/sessions/{id}") => web::delete().to(auth::end_session),
        ("POST", "/api/v1/auth/forgot-password") => web::post().to(auth::forgot_password),
        ("POST", "/api/v1/auth/reset-password") => web::post().to(auth::reset_password),
        ("POST", "/api/v1/auth/send-verification") => web::post().to(auth::send_verification),
        ("POST", "/api/v1/auth/verify-email") => web::post().to(auth::verify_email),
        ("POST", "/api/v1/auth/switch-tenant") => web::post().to(auth::switch_tenant),
        ("POST", "/api/v1/auth/mfa/setup") => web::post().to(auth::mfa_setup),
        ("POST", "/api/v1/auth/mfa/verify") => web::post().to(auth::mfa_verify),
        ("POST", "/api/v1/auth/mfa/disable") => web::post().to(auth::mfa_disable),
        ("GET", "/api/v1/api-keys") => web::get().to(api_keys::list),
        ("GET", "/api/v1/rbac/permissions") => web::get().to(rbac::permissions),
        ("PUT", "/api/v1/memberships/{id}/role") => web::put().to(memberships::change_role),
        ("POST", "/api/v1/api-keys") => web::post().to(api_keys::create),
        ("DELETE", "/api/v1/api-keys/{id}") => web::delete().to(api_keys::revoke),
        ("GET", "/api/v1/rbac/roles") => web::get().to(rbac::roles),
        ("POST", "/api/v1/rbac/roles") => web::post().to(rbac::create_role),
        ("GET", "/api/v1/rbac/roles/{id}") => web::get().to(rbac::role),
        ("PUT", "/api/v1/rbac/roles/{id}") => web::put().to(rbac::update_role),
        ("DELETE", "/api/v1/rbac/roles/{id}") => web::delete().to(rbac::delete_role),
        ("GET", "/api/v1/invitations") => web::get().to(people::invitations),
        ("POST", "/api/v1/invitations") => web::post().to(people::invite),
        ("POST", "/api/v1/invitations/{id}/resend") => web::post().to(people::resend),
        ("DELETE", "/api/v1/invitations/{id}") => web::delete().to(people::revoke),
        ("POST", "/api/v1/invitations/accept") => web::post().to(people::accept),
        ("GET", "/api/v1/platform-users") => web::get().to(people::list),
        ("POST", "/api/v1/platform-users") => web::post().to(people::create),
        ("GET", "/api/v1/platform-users/analytics") => web::get().to(people::analytics),
        ("POST", "/api/v1/platform-users/bulk-import") => web::post().to(people::bulk_import),
        ("POST", "/api/v1/platform-users/bulk-export") => web::post().to(people::bulk_export),
        ("GET", "/api/v1/platform-users/owners") => web::get().to(people::owners),
        ("GET", "/api/v1/platform-users/owners/{id}") => web::get().to(people::owner),
        ("GET", "/api/v1/platform-users/students") => web::get().to(people::students),
        ("GET", "/api/v1/platform-users/students/{id}") => web::get().to(people::student),
        ("GET", "/api/v1/platform-users/parents") => web::get().to(people::parents),
        ("GET", "/api/v1/platform-users/parents/{id}") => web::get().to(people::parent),
        ("GET", "/api/v1/platform-users/staff") => web::get().to(people::staff),
        ("GET", "/api/v1/platform-users/staff/{id}") => web::get().to(people::staff_member),
        ("GET", "/api/v1/platform-users/{id}") => web::get().to(people::get),
        ("PUT", "/api/v1/platform-users/{id}") => web::put().to(people::update),
        ("DELETE", "/api/v1/platform-users/{id}") => web::delete().to(people::remove),
        ("POST", "/api/v1/platform-users/{id}/activate") => web::post().to(people::activate),
        ("POST", "/api/v1/platform-users/{id}/deactivate") => web::post().to(people::deactivate),
        ("GET", "/api/v1/platform-users/{id}/activity") => web::get().to(people::activity),
        ("GET", "/api/v1/admin-users") => web::get().to(admin_users::list),
        ("POST", "/api/v1/admin-users") => web::post().to(admin_users::create),
        ("GET", "/api/v1/admin-users/analytics") => web::get().to(admin_users::analytics),
        ("GET", "/api/v1/admin-users/permissions") => web::get().to(admin_users::permissions),
        ("GET", "/api/v1/admin-users/{id}") => web::get().to(admin_users::get),
        ("PUT", "/api/v1/admin-users/{id}") => web::put().to(admin_users::update),
        ("DELETE", "/api/v1/admin-users/{id}") => web::delete().to(admin_users::remove),
        ("PUT", "/api/v1/admin-users/{id}/permissions") => web::put().to(admin_users::set_permissions),
        ("GET", "/api/v1/admin-users/{id}/activity") => web::get().to(admin_users::activity),
        ("POST", "/api/v1/admin-users/{id}/invite") => web::post().to(admin_users::invite),
        ("POST", "/api/v1/admin-users/{id}/reset-password") => web::post().to(admin_users::reset_password),
        ("POST", "/api/v1/admin-users/{id}/toggle-mfa") => web::post().to(admin_users::toggle_mfa),
        ("GET", "/api/v1/admin-users/{id}/sessions") => web::get().to(admin_users::sessions),
        ("DELETE", "/api/v1/admin-users/{id}/sessions/{sessionId}") => {
            web::delete().to(admin_users::end_session)
        }
        ("GET", "/api/v1/credits/dashboard") => web::get().to(credits::dashboard),
        ("GET", "/api/v1/credits/master-wallet") => web::get().to(credits::master_wallet),
        ("POST", "/api/v1/credits/master-wallet/top-up") => web::post().to(credits::top_up),
        ("GET", "/api/v1/credits/wallets") => web::get().to(credits::wallets),
        ("GET", "/api/v1/credits/wallets/{id}") => web::get().to(credits::wallet),
        ("PUT", "/api/v1/credits/wallets/{id}") => web::put().to(credits::update_wallet),
        ("POST", "/api/v1/credits/wallets/{id}/add") => web::post().to(credits::add),
        ("POST", "/api/v1/credits/wallets/{id}/adjust") => web::post().to(credits::adjust),
        ("GET", "/api/v1/credits/packages") => web::get().to(credits::packages),
        ("POST", "/api/v1/credits/packages") => web::post().to(credits::create_package),
        ("GET", "/api/v1/credits/packages/{id}") => web::get().to(credits::package),
        ("PUT", "/api/v1/credits/packages/{id}") => web::put().to(credits::update_package),
        ("POST", "/api/v1/credits/packages/{id}/purchase") => web::post().to(credits::purchase),
        ("GET", "/api/v1/credits/custom-plans") => web::get().to(credits::custom_plans),
        ("POST", "/api/v1/credits/custom-plans") => web::post().to(credits::create_plan),
        ("GET", "/api/v1/credits/custom-plans/{id}") => web::get().to(credits::custom_plan),
        ("PUT", "/api/v1/credits/custom-plans/{id}") => web::put().to(credits::update_plan),
        ("GET", "/api/v1/credits/transactions") => web::get().to(credits::transactions),
        ("GET", "/api/v1/credits/analytics") => web::get().to(credits::analytics),
        ("GET", "/api/v1/credits/pricing") => web::get().to(credits::pricing),
        ("PUT", "/api/v1/credits/pricing") => web::put().to(credits::set_pricing),
        ("POST", "/api/v1/credits/debits") => web::post().to(credits::debit),
        ("POST", "/api/v1/credits/reservations") => web::post().to(credits::reserve),
        ("GET", "/api/v1/credits/reservations/{id}") => web::get().to(credits::reservation),
        ("POST", "/api/v1/credits/reservations/{id}/capture") => web::post().to(credits::capture),
        ("POST", "/api/v1/credits/reservations/{id}/release") => web::post().to(credits::release),
        ("GET", "/api/v1/metering/sites") => web::get().to(metering::sites),
        ("POST", "/api/v1/metering/sites") => web::post().to(metering::create_site),
        ("GET", "/api/v1/metering/sites/{id}") => web::get().to(metering::site),
        ("PUT", "/api/v1/metering/sites/{id}") => web::put().to(metering::update_site),
        ("DELETE", "/api/v1/metering/sites/{id}") => web::delete().to(metering::delete_site),
        ("GET", "/api/v1/metering/meters") => web::get().to(metering::meters),
        ("POST", "/api/v1/metering/meters") => web::post().to(metering::create_meter),
        ("GET", "/api/v1/metering/meters/{id}") => web::get().to(metering::meter),
        ("PUT", "/api/v1/metering/meters/{id}") => web::put().to(metering::update_meter),
        ("DELETE", "/api/v1/metering/meters/{id}") => web::delete().to(metering::delete_meter),
        ("POST", "/api/v1/metering/meters/{id}/replace") => web::post().to(metering::replace_meter),
        ("GET", "/api/v1/metering/meters/{id}/readings") => web::get().to(metering::readings),
        ("GET", "/api/v1/metering/meters/{id}/consumption") => web::get().to(metering::consumption),
        ("POST", "/api/v1/metering/readings") => web::post().to(metering::add_readings),
        ("POST", "/api/v1/metering/readings/import") => web::post().to(metering::import_readings),
        ("POST", "/api/v1/metering/events") => web::post().to(metering::ingest_events),
        ("GET", "/api/v1/metering/usage") => web::get().to(metering::usage),
        ("POST", "/api/v1/metering/usage/close") => web::post().to(metering::close_usage),
        ("GET", "/api/v1/metering/metrics") => web::get().to(metering::metrics),
        ("POST", "/api/v1/metering/metrics") => web::post().to(metering::create_metric),
        ("GET", "/api/v1/metering/metrics/{id}") => web::get().to(metering::metric),
        ("PUT", "/api/v1/metering/metrics/{id}") => web::put().to(metering::update_metric),
        ("DELETE", "/api/v1/metering/metrics/{id}") => web::delete().to(metering::delete_metric),
        ("GET", "/api/v1/metering/sources") => web::get().to(metering::sources),
        ("POST", "/api/v1/metering/sources") => web::post().to(metering::create_source),
        ("DELETE", "/api/v1/metering/sources/{id}") => web::delete().to(metering::delete_source),
        _ => crm_contacts::handler(method, path)
            .or_else(|| crm_sales::handler(method, path))
            .or_else(|| crm_activities::handler(method, path))
            .or_else(|| crm_transfer::handler(method, path))
            .or_else(|| tickets::handler(method, path))
            // A listed route without a handler answers 404, which the route test reports.
            .unwrap_or_else(|| web::route().to(error::not_found)),
    }
}

/// Registers every route of [`ROUTES`], each behind its rate limit and
/// idempotency handling (both read the route's declaration).
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut paths: Vec<&str> = Vec::new();
    for route in ROUTES.iter() {
        if !paths.contains(&route.path) {
            paths.push(route.path);
        }
    }
    // A resource matches by path before method: `/crm/contacts/import` must be
    // registered before `/crm/contacts/{id}`, or the latter answers its POST
    // with 405. Fewer parameters first (stable, so declaration order otherwise).
    paths.sort_by_key(|path| path.matches('{').count());
    for path in paths {
        let declared: Vec<&'static RouteSpec> = ROUTES.iter().filter(|r| r.path == path).collect();
        let mut resource = web::resource(path);
        if LARGE_BODIES.contains(&path) {
            resource = resource
                .app_data(web::PayloadConfig::new(LARGE_BODY_LIMIT))
                .app_data(crate::json::BodyLimit(LARGE_BODY_LIMIT));
        }
        for route in &declared {
            resource = resource.route(handler(route.method, path));
        }
        let allowed: Vec<&'static str> = declared.iter().map(|r| r.method).collect();
        let refuse = move || {
            let allowed = allowed.clone();
            async move { error::method_not_allowed(&allowed) }
        };
        cfg.service(
            resource
                .default_service(web::to(refuse))
                .wrap(middleware::from_fn(idempotency::middleware))
                .wrap(middleware::from_fn(features::middleware))
                .wrap(middleware::from_fn(rate_limit::middleware)),
        );
    }
}

#[cfg(test)]
mod tests {
    /// Under an `Idempotency-Key` only the request-bound `Db` joins the
    /// request's transaction: a handler taking the plain store from the app
    /// data would commit its effect apart from the stored response.
    #[test]
    fn handlers_take_the_request_bound_store() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api");
        let needle = ["Data<", "Store>"].concat();
        let mut read = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let source = std::fs::read_to_string(&path).unwrap();
            assert!(!source.contains(&needle), "{} takes the plain store; take Db", path.display());
            read += 1;
        }
        assert!(read >= 6, "the handlers were read");
    }
}
