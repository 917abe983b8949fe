//! Onboarding: the platform's staff complete a tenant they created, a
//! business signs itself up, and anyone may read the industry catalogue.

use actix_web::{HttpRequest, HttpResponse, web};
use portico_kernel::TenantId;
use portico_tenancy::{Catalogue, Email, OnboardTenant, SignUp, TenantStore};

use crate::api::people::accept_link;
use crate::auth::{Permission, PlatformTenantsWrite, Require};
use crate::cache_sync::Invalidations;
use crate::client::origin;
use crate::db::Db;
use crate::envelope;
use crate::error::ApiError;
use crate::json::Json;
#[allow(unused_imports)] // the OpenAPI attributes name these
use crate::openapi::{CatalogueEnvelope, ErrorEnvelope, OnboardingEnvelope};
use crate::request_id::of as request_id;
use crate::server::Links;

/// Drops control characters from a name put into an email.
fn printable(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).collect()
}

#[utoipa::path(
    post,
    path = "/api/v1/tenants/{id}/onboarding",
    tag = "tenants",
    params(
        ("id" = String, Path, format = Uuid, description = "The tenant's id."),
        ("X-Tenant-ID" = Option<String>, Header, format = Uuid,
            description = "Platform staff: the tenant to act on (must match the path)."),
    ),
    request_body = OnboardTenant,
    responses(
        (status = 201, description = "Onboarded: the owner is invited (a single-use link valid for 7 days is emailed), \
            the settings, features and welcome credits of the industry apply, a trial tenant's trial end is set. \
            Sent again with the same details, the same answer and nothing new.", body = OnboardingEnvelope),
        (status = 400, description = "The body is not JSON (`request.malformed_json`).", body = ErrorEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "The caller is not platform staff holding the permission, or the tenant is the \
            platform's (`tenancy.platform_tenant_protected`).", body = ErrorEnvelope),
        (status = 404, description = "No such tenant.", body = ErrorEnvelope),
        (status = 409, description = "Onboarded already with other details (`tenancy.already_onboarded`), the tenant \
            is out of service (`tenancy.not_in_service`), the owner is a member or invited already \
            (`people.already_member`, `invitations.already_invited`), or the platform's stock cannot cover the \
            welcome credits (`tenancy.welcome_credits_unavailable`).", body = ErrorEnvelope),
        (status = 422, description = "An unknown key (`request.invalid_body`, naming it), invalid fields (`tenancy.invalid_onboarding`, `tenancy.invalid_settings`) or \
            an unknown industry (`tenancy.unknown_industry`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:tenants:write"]))
)]
/// Completes the onboarding of a tenant the platform created (platform staff).
pub async fn onboard(
    auth: Require<PlatformTenantsWrite>,
    store: Db,
    links: web::Data<Links>,
    invalidations: Invalidations,
    id: web::Path<TenantId>,
    body: Json<OnboardTenant>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    auth.platform()?;
    let ctx = auth.on_tenant(id, PlatformTenantsWrite::NAME);
    let command = body.into_inner().validated()?;
    let email = Email::parse(&command.owner.email)?;
    let tenant = store.get(&ctx, id).await?;
    let name = printable(&tenant.name);
    let link = accept_link(
        &links,
        &email,
        &format!("You are invited to run {name} on Portico"),
        &format!(
            "{name} is ready on Portico, and you are its owner. Follow this link within 7 days to set your \
             password and sign in:"
        ),
    )?;
    let onboarding = store.onboard(&ctx, id, command, link).await?;
    invalidations.tag(super::tenants::tag(id, id));
    Ok(envelope::created(onboarding))
}

#[utoipa::path(
    post,
    path = "/api/v1/onboarding",
    tag = "public",
    request_body = SignUp,
    responses(
        (status = 202, description = "Signed up: the tenant is in trial and its owner must confirm the address — a \
            single-use link valid for 7 days is emailed, which also sets the password and grants the welcome \
            credits. Sent again with the same details, the same answer, nothing new, and (until the owner confirms) \
            a new link. A sign-up never confirmed is closed a week after its last link expired.", body = OnboardingEnvelope),
        (status = 400, description = "The body is not JSON (`request.malformed_json`).", body = ErrorEnvelope),
        (status = 409, description = "The slug is taken (`tenancy.slug_taken`).", body = ErrorEnvelope),
        (status = 422, description = "An unknown key (`request.invalid_body`, naming it), invalid fields (`tenancy.invalid_onboarding`) or an unknown industry \
            (`tenancy.unknown_industry`).", body = ErrorEnvelope),
    ),
    security(())
)]
/// A business signs itself up (public; rate limited per client address).
pub async fn sign_up(
    req: HttpRequest,
    store: Db,
    links: web::Data<Links>,
    body: Json<SignUp>,
) -> Result<HttpResponse, ApiError> {
    let command = body.into_inner().validated()?;
    let email = Email::parse(&command.owner.email)?;
    let name = printable(&command.name);
    let link = accept_link(
        &links,
        &email,
        &format!("Confirm your address to start {name} on Portico"),
        &format!(
            "Welcome to Portico. Follow this link within 7 days to confirm your address, set your password and \
             start using {name}:"
        ),
    )?;
    let onboarding = store.sign_up(command, link, &request_id(&req), &origin(&req)).await?;
    Ok(envelope::accepted(onboarding))
}

#[utoipa::path(
    get,
    path = "/api/v1/industries",
    tag = "public",
    responses(
        (status = 200, description = "The feature flags and the industry profiles a tenant can follow, with their \
            defaults.", body = CatalogueEnvelope),
    ),
    security(())
)]
/// The industry catalogue (public: sign-up forms show it).
pub async fn industries() -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(Catalogue::builtin()?))
}
