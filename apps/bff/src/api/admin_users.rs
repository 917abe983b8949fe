//! The platform's own staff ("admin users"): the people of the platform
//! tenant, with the platform's built-in roles. Administrators invite them,
//! choose their role, reset their password or second factor by email (never
//! seeing either), see their sessions and activity, and remove them.

use actix_web::{HttpResponse, web};
use portico_kernel::{MembershipId, PLATFORM_TENANT_ID, SessionId, TenantContext};
use portico_store::AuditFilter;
use portico_tenancy::people::InvitationLink;
use portico_tenancy::people::{person_name, person_phone};
use portico_tenancy::permissions::{CATALOGUE, Permission};
use portico_tenancy::{
    Email, IdentityError, MembershipKind, MfaAction, NewPerson, PersonFilter, Role, RoleChoice,
};
use serde::{Deserialize, Serialize};

use crate::api::auth::{RESET_LIFETIME, link_email, security_notice};
use crate::api::people::{ActivityQuery, PeopleQuery, UpdatePerson, resend_invitation};
use crate::auth::{Auth, PlatformAdminUsersRead, PlatformAdminUsersWrite, Require, holds};
use crate::db::Db;
use crate::envelope;
use crate::error::ApiError;
use crate::json::Json;
#[allow(unused_imports)] // the OpenAPI attributes name these
use crate::openapi::{
    AcceptedEnvelope, AdminPermissionsEnvelope, AuditPageEnvelope, ErrorEnvelope, PeopleAnalyticsEnvelope,
    PersonEnvelope, PersonPageEnvelope, StaffSessionsEnvelope,
};

/// The context on the platform tenant (staff may have named another with `X-Tenant-ID`).
fn staff(auth: &Auth) -> TenantContext {
    TenantContext { tenant_id: PLATFORM_TENANT_ID, ..auth.ctx.clone() }
}

/// Someone to invite to the platform's staff.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"email": "ops@portico.example", "name": "Olga Ops", "role": "PLATFORM_SUPPORT"}))]
pub struct InviteAdmin {
    /// Their address; an existing account is reused.
    pub email: String,
    /// Their name, for a new account.
    pub name: String,
    /// Their phone number, for a new account.
    #[serde(default)]
    pub phone: Option<String>,
    /// A platform role (default `PLATFORM_SUPPORT`: read-only).
    #[serde(default)]
    pub role: Option<Role>,
}

/// `PUT /api/v1/admin-users/{id}/permissions`: the platform role that carries them.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"role": "PLATFORM_ADMIN"}))]
pub struct SetAdminPermissions {
    /// A platform role.
    pub role: Role,
}

/// `POST /api/v1/admin-users/{id}/toggle-mfa`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"action": "REQUIRE"}))]
pub struct ToggleMfa {
    /// Require a second factor, waive the requirement, or reset it.
    pub action: MfaAction,
}

/// A platform role and what it carries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"role": "PLATFORM_SUPPORT", "permissions": ["platform:tenants:read", "tenants:read"]}))]
pub struct StaffRole {
    /// The role.
    pub role: Role,
    /// Its permissions.
    pub permissions: &'static [&'static str],
}

/// What the platform's staff may be given.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "permissions": [{"name": "platform:tenants:read", "description": "List and read every tenant.", "platform": true}],
    "roles": [{"role": "PLATFORM_SUPPORT", "permissions": ["platform:tenants:read"]}]
}))]
pub struct AdminPermissions {
    /// The whole catalogue.
    pub permissions: Vec<&'static Permission>,
    /// The platform roles (a staff member holds one).
    pub roles: Vec<StaffRole>,
}

fn platform_role(role: Role) -> Result<Role, ApiError> {
    if role.is_platform() { Ok(role) } else { Err(IdentityError::RoleNotAllowed.into()) }
}

#[utoipa::path(
    get,
    path = "/api/v1/admin-users",
    tag = "admin-users",
    params(PeopleQuery),
    responses(
        (status = 200, description = "A page of the platform's staff, newest first.", body = PersonPageEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
        (status = 422, description = "A bad page, limit or filter.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:admin_users:read"]))
)]
/// Lists the platform's staff.
pub async fn list(
    auth: Require<PlatformAdminUsersRead>,
    store: Db,
    query: web::Query<PeopleQuery>,
) -> Result<HttpResponse, ApiError> {
    if query.tenant_id.is_some() {
        return Err(ApiError::new(
            portico_kernel::ErrorKind::Validation,
            "request.invalid_query",
            "The platform's staff belong to the platform tenant.",
        ));
    }
    let filter: PersonFilter = query.filter()?;
    Ok(envelope::page(&store.people(&staff(&auth), &filter, query.page()?).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/admin-users",
    tag = "admin-users",
    request_body = InviteAdmin,
    responses(
        (status = 201, description = "Invited (status `INVITED`): a single-use link valid for 7 days is emailed.", body = PersonEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission, or the role carries what the caller lacks (`rbac.permission_not_held`).", body = ErrorEnvelope),
        (status = 409, description = "Already staff (`people.already_member`) or invited (`invitations.already_invited`).", body = ErrorEnvelope),
        (status = 422, description = "A bad address or name, or not a platform role (`memberships.role_not_allowed`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:admin_users:write"]))
)]
/// Invites someone to the platform's staff.
pub async fn create(
    auth: Require<PlatformAdminUsersWrite>,
    store: Db,
    links: web::Data<crate::server::Links>,
    body: Json<InviteAdmin>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let role = platform_role(body.role.unwrap_or(Role::PlatformSupport))?;
    let ctx = staff(&auth);
    let new = NewPerson {
        email: Email::parse(&body.email)?,
        name: person_name(&body.name)?,
        phone: person_phone(body.phone.as_deref())?,
        kind: MembershipKind::Admin,
        role: RoleChoice::BuiltIn(role),
    };
    let link = crate::api::people::invitation_link(&store, &links, &ctx, &new.email).await?;
    Ok(envelope::created(store.invite(&ctx, new, Some(link), holds(&ctx)).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/admin-users/{id}",
    tag = "admin-users",
    params(("id" = String, Path, format = Uuid, description = "The staff member's membership id.")),
    responses(
        (status = 200, description = "The staff member.", body = PersonEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such staff member (`memberships.not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:admin_users:read"]))
)]
/// Reads a staff member.
pub async fn get(
    auth: Require<PlatformAdminUsersRead>,
    store: Db,
    id: web::Path<MembershipId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.person(&staff(&auth), id.into_inner()).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/admin-users/{id}",
    tag = "admin-users",
    params(("id" = String, Path, format = Uuid, description = "The staff member's membership id.")),
    request_body = UpdatePerson,
    responses(
        (status = 200, description = "The staff member as changed.", body = PersonEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such staff member (`memberships.not_found`).", body = ErrorEnvelope),
        (status = 409, description = "Name or phone of someone who has set up their account (`people.profile_locked`).", body = ErrorEnvelope),
        (status = 422, description = "A bad name, phone or kind.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:admin_users:write"]))
)]
/// Changes a staff member (name and phone only before they accept).
pub async fn update(
    auth: Require<PlatformAdminUsersWrite>,
    store: Db,
    id: web::Path<MembershipId>,
    body: Json<UpdatePerson>,
) -> Result<HttpResponse, ApiError> {
    let changes = body.into_inner().into_changes()?;
    Ok(envelope::ok(store.update_person(&staff(&auth), id.into_inner(), changes).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/admin-users/{id}",
    tag = "admin-users",
    params(("id" = String, Path, format = Uuid, description = "The staff member's membership id.")),
    responses(
        (status = 204, description = "No longer staff; their sessions on the platform tenant have ended."),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such staff member (`memberships.not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The last platform owner (`memberships.last_owner`), or oneself (`people.own_membership`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:admin_users:write"]))
)]
/// Removes someone from the platform's staff.
pub async fn remove(
    auth: Require<PlatformAdminUsersWrite>,
    store: Db,
    id: web::Path<MembershipId>,
) -> Result<HttpResponse, ApiError> {
    let ctx = staff(&auth);
    store.remove_person(&ctx, id.into_inner(), holds(&ctx)).await?;
    Ok(envelope::no_content())
}

#[utoipa::path(
    get,
    path = "/api/v1/admin-users/analytics",
    tag = "admin-users",
    responses(
        (status = 200, description = "Counts of the platform's staff by role and status, MFA and recent sign-ins.", body = PeopleAnalyticsEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:admin_users:read"]))
)]
/// Counts of the platform's staff.
pub async fn analytics(auth: Require<PlatformAdminUsersRead>, store: Db) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.people_analytics(&staff(&auth)).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/admin-users/permissions",
    tag = "admin-users",
    responses(
        (status = 200, description = "The permission catalogue and the platform roles that bundle it.", body = AdminPermissionsEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:admin_users:read"]))
)]
/// What the platform's staff may be given.
pub async fn permissions(_auth: Require<PlatformAdminUsersRead>) -> Result<HttpResponse, ApiError> {
    let roles = Role::ALL
        .iter()
        .filter(|role| role.is_platform())
        .map(|&role| StaffRole { role, permissions: role.permissions() })
        .collect();
    Ok(envelope::ok(AdminPermissions { permissions: CATALOGUE.iter().collect(), roles }))
}

#[utoipa::path(
    put,
    path = "/api/v1/admin-users/{id}/permissions",
    tag = "admin-users",
    params(("id" = String, Path, format = Uuid, description = "The staff member's membership id.")),
    request_body = SetAdminPermissions,
    responses(
        (status = 200, description = "The staff member with the role; it applies from their next token refresh.", body = PersonEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission, or the role carries what the caller lacks (`rbac.permission_not_held`).", body = ErrorEnvelope),
        (status = 404, description = "No such staff member (`memberships.not_found`).", body = ErrorEnvelope),
        (status = 409, description = "It would leave the platform without an owner (`memberships.last_owner`).", body = ErrorEnvelope),
        (status = 422, description = "Not a platform role (`memberships.role_not_allowed`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:admin_users:write"]))
)]
/// Sets a staff member's platform role (the permissions it carries).
pub async fn set_permissions(
    auth: Require<PlatformAdminUsersWrite>,
    store: Db,
    id: web::Path<MembershipId>,
    body: Json<SetAdminPermissions>,
) -> Result<HttpResponse, ApiError> {
    let role = platform_role(body.into_inner().role)?;
    let (ctx, id) = (staff(&auth), id.into_inner());
    store.change_role(&ctx, id, RoleChoice::BuiltIn(role), holds(&ctx)).await?;
    Ok(envelope::ok(store.person(&ctx, id).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/admin-users/{id}/activity",
    tag = "admin-users",
    params(("id" = String, Path, format = Uuid, description = "The staff member's membership id."), ActivityQuery),
    responses(
        (status = 200, description = "What the staff member did, in every tenant's audit trail, newest first.", body = AuditPageEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such staff member (`memberships.not_found`).", body = ErrorEnvelope),
        (status = 422, description = "A bad page or limit.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:admin_users:read"]))
)]
/// A staff member's activity across tenants.
pub async fn activity(
    auth: Require<PlatformAdminUsersRead>,
    store: Db,
    id: web::Path<MembershipId>,
    query: web::Query<ActivityQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let person = store.person(&staff(&auth), id.into_inner()).await?;
    let filter = AuditFilter { actor_id: Some(person.user_id.into_uuid()), ..AuditFilter::default() };
    let rows = store
        .platform_audit_trail(&auth.platform()?, None, &filter, page)
        .await
        .map_err(|e| ApiError::infra(&e))?;
    Ok(envelope::page(&rows))
}

#[utoipa::path(
    post,
    path = "/api/v1/admin-users/{id}/invite",
    tag = "admin-users",
    params(("id" = String, Path, format = Uuid, description = "The invited staff member's membership id.")),
    responses(
        (status = 200, description = "A new invitation link (valid for 7 days) is emailed; earlier links stop working.", body = PersonEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such invitation (`invitations.not_found`).", body = ErrorEnvelope),
        (status = 409, description = "They have accepted already (`people.already_member`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:admin_users:write"]))
)]
/// Sends a staff member's invitation again.
pub async fn invite(
    auth: Require<PlatformAdminUsersWrite>,
    store: Db,
    links: web::Data<crate::server::Links>,
    id: web::Path<MembershipId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(resend_invitation(&store, &links, &staff(&auth), id.into_inner()).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/admin-users/{id}/reset-password",
    tag = "admin-users",
    params(("id" = String, Path, format = Uuid, description = "The staff member's membership id.")),
    responses(
        (status = 202, description = "A link to choose a new password (valid for 30 minutes) is emailed to them; nobody else sees it.", body = AcceptedEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such staff member (`memberships.not_found`).", body = ErrorEnvelope),
        (status = 409, description = "Still invited: resend the invitation (`invitations.already_invited`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:admin_users:write"]))
)]
/// Emails a staff member a password-reset link.
pub async fn reset_password(
    auth: Require<PlatformAdminUsersWrite>,
    store: Db,
    links: web::Data<crate::server::Links>,
    id: web::Path<MembershipId>,
) -> Result<HttpResponse, ApiError> {
    let (ctx, id) = (staff(&auth), id.into_inner());
    let person = store.person(&ctx, id).await?;
    let token = portico_tenancy::mfa::random_hex::<32>()?;
    let message = link_email(
        &links,
        &person.email,
        "Choose a new password",
        "An administrator asked for your Portico password to be reset. Follow this link within 30 minutes to choose a new one:",
        "reset-password",
        &token,
    );
    let link = InvitationLink { token, lifetime: RESET_LIFETIME, message };
    store.send_password_reset(&ctx, id, link, holds(&ctx)).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "success": true, "data": {"message": "A link to choose a new password is on its way to them."}
    })))
}

#[utoipa::path(
    post,
    path = "/api/v1/admin-users/{id}/toggle-mfa",
    tag = "admin-users",
    params(("id" = String, Path, format = Uuid, description = "The staff member's membership id.")),
    request_body = ToggleMfa,
    responses(
        (status = 200, description = "The staff member: `REQUIRE` leaves their tokens without permissions until they set up a second factor (and refresh); `RESET` forgets their authenticator (they are told by email). No secret is ever shown.", body = PersonEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such staff member (`memberships.not_found`).", body = ErrorEnvelope),
        (status = 422, description = "An unknown action.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:admin_users:write"]))
)]
/// Requires, waives or resets a staff member's second factor.
pub async fn toggle_mfa(
    auth: Require<PlatformAdminUsersWrite>,
    store: Db,
    links: web::Data<crate::server::Links>,
    id: web::Path<MembershipId>,
    body: Json<ToggleMfa>,
) -> Result<HttpResponse, ApiError> {
    let ctx = staff(&auth);
    let notice = security_notice(
        &links,
        "Your second factor was reset",
        "An administrator reset the second factor of your Portico account: set up a new one at your next sign-in.",
    );
    let person =
        store.set_person_mfa(&ctx, id.into_inner(), body.into_inner().action, notice, holds(&ctx)).await?;
    Ok(envelope::ok(person))
}

#[utoipa::path(
    get,
    path = "/api/v1/admin-users/{id}/sessions",
    tag = "admin-users",
    params(("id" = String, Path, format = Uuid, description = "The staff member's membership id.")),
    responses(
        (status = 200, description = "Their live sessions, newest first.", body = StaffSessionsEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such staff member (`memberships.not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:admin_users:read"]))
)]
/// A staff member's live sessions.
pub async fn sessions(
    auth: Require<PlatformAdminUsersRead>,
    store: Db,
    id: web::Path<MembershipId>,
) -> Result<HttpResponse, ApiError> {
    let person = store.person(&staff(&auth), id.into_inner()).await?;
    Ok(envelope::ok(store.sessions_of(person.user_id).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/admin-users/{id}/sessions/{sessionId}",
    tag = "admin-users",
    params(
        ("id" = String, Path, format = Uuid, description = "The staff member's membership id."),
        ("sessionId" = String, Path, format = Uuid, description = "One of their sessions."),
    ),
    responses(
        (status = 204, description = "The session has ended: its tokens stop working at once."),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such staff member (`memberships.not_found`) or live session of theirs (`auth.session_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:admin_users:write"]))
)]
/// Ends one of a staff member's sessions.
pub async fn end_session(
    auth: Require<PlatformAdminUsersWrite>,
    store: Db,
    path: web::Path<(MembershipId, SessionId)>,
) -> Result<HttpResponse, ApiError> {
    let (id, session) = path.into_inner();
    let ctx = staff(&auth);
    store.end_person_session(&ctx, id, session, holds(&ctx)).await?;
    Ok(envelope::no_content())
}
