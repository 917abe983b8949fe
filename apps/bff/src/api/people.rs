//! A tenant's people ("platform users": owners, staff, students, parents)
//! and their invitations: listed, invited, changed, deactivated, removed,
//! imported and exported. A tenant's administrators see their tenant's;
//! the platform's staff see every tenant's, filtered by `tenantId`.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use portico_kernel::{ErrorKind, MembershipId, PageRequest, RoleId, TenantContext, TenantId};
use portico_store::AuditFilter;
use portico_tenancy::people::{InvitationLink, PersonChanges};
use portico_tenancy::people::{default_role, person_name, person_phone};
use portico_tenancy::people_import::{ImportParser, export_header, export_record};
use portico_tenancy::{
    Email, IdentityError, MembershipKind, MembershipStatus, NewPerson, Person, PersonFilter, Role,
    RoleChoice, TenantStore as _,
};
use serde::{Deserialize, Deserializer, Serialize};

use crate::api::auth::{hashing, link_email};
use crate::auth::{AuditRead, PeopleRead, PeopleWrite, Require, holds};
use crate::client::origin;
use crate::db::Db;
use crate::envelope;
use crate::error::ApiError;
use crate::json::Json;
#[allow(unused_imports)] // the OpenAPI attributes name these
use crate::openapi::{
    AuditPageEnvelope, ErrorEnvelope, ImportSummaryEnvelope, InvitationAcceptedEnvelope,
    PeopleAnalyticsEnvelope, PersonEnvelope, PersonPageEnvelope,
};
use crate::request_id::of as request_id;

/// How long an invitation's link works.
pub const INVITATION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// People per query while an export streams.
const EXPORT_BATCH: u32 = 1_000;

/// Someone to invite.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"email": "sam@acme.example", "name": "Sam Doe", "kind": "STAFF", "role": "STAFF"}))]
pub struct Invite {
    /// Their address; an existing account is reused (its name and phone stay theirs).
    pub email: String,
    /// Their name, for a new account (1 to 200 characters).
    pub name: String,
    /// Their phone number, for a new account.
    #[serde(default)]
    pub phone: Option<String>,
    /// What they will be to the tenant (default `STAFF`).
    #[serde(default)]
    pub kind: Option<MembershipKind>,
    /// A built-in role (default: the kind's: owner, admin, staff, else viewer).
    #[serde(default)]
    pub role: Option<Role>,
    /// Or one of the tenant's custom roles.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub role_id: Option<RoleId>,
}

impl Invite {
    fn into_new_person(self) -> Result<NewPerson, ApiError> {
        let kind = self.kind.unwrap_or(MembershipKind::Staff);
        let role = match (self.role, self.role_id) {
            (None, None) => RoleChoice::BuiltIn(default_role(kind)),
            (role, role_id) => RoleChoice::from_request(role, role_id)?,
        };
        Ok(NewPerson {
            email: Email::parse(&self.email)?,
            name: person_name(&self.name)?,
            phone: person_phone(self.phone.as_deref())?,
            kind,
            role,
        })
    }
}

/// Changes to a person: absent fields stay; `"phone": null` clears it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"kind": "PARENT"}))]
pub struct UpdatePerson {
    /// A new name (only while they have not accepted: afterwards it is theirs).
    #[serde(default)]
    pub name: Option<String>,
    /// A new phone number or `null` (only while they have not accepted).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    /// What they are to the tenant.
    #[serde(default)]
    pub kind: Option<MembershipKind>,
}

impl UpdatePerson {
    /// The checked changes.
    pub(crate) fn into_changes(self) -> Result<PersonChanges, ApiError> {
        Ok(PersonChanges {
            name: self.name.as_deref().map(person_name).transpose()?,
            phone: self.phone.map(|phone| person_phone(phone.as_deref())).transpose()?,
            kind: self.kind,
        })
    }
}

/// A field that is present (even `null`) is `Some`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// Accepting an invitation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"token": "5f0c3c1e9b0d4f7a8e2b6c4d1a3f5e7b9c0d2e4f6a8b0c1d3e5f7a9b1c3d5e7f", "password": "a long passphrase"}))]
pub struct AcceptInvitation {
    /// The token of the emailed link.
    pub token: String,
    /// The password of a new account (required then; ignored for an existing account).
    #[serde(default)]
    pub password: Option<String>,
}

/// An accepted invitation: sign in next.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"tenantId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e61", "newAccount": true}))]
pub struct InvitationAccepted {
    /// The tenant joined (name it at sign-in).
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    /// Whether the account was set up by accepting.
    pub new_account: bool,
}

/// Filters and page of a people list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeopleQuery {
    /// 1-based page (default 1).
    #[serde(default)]
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only this kind.
    #[serde(default)]
    pub kind: Option<MembershipKind>,
    /// Only this membership status.
    #[serde(default)]
    pub status: Option<MembershipStatus>,
    /// Only this built-in role (`CUSTOM`: any custom role).
    #[serde(default)]
    pub role: Option<Role>,
    /// Only whose email or name contains this.
    #[serde(default)]
    pub search: Option<String>,
    /// Platform staff only: this tenant's people (default: every tenant's).
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub tenant_id: Option<TenantId>,
}

impl PeopleQuery {
    pub(crate) fn page(&self) -> Result<PageRequest, ApiError> {
        crate::api::page_request(self.page, self.limit)
    }

    pub(crate) fn filter(&self) -> Result<PersonFilter, ApiError> {
        let search = self.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
        if search.is_some_and(|s| s.chars().count() > 100) {
            return Err(ApiError::new(
                ErrorKind::Validation,
                "request.invalid_query",
                "search is at most 100 characters.",
            ));
        }
        Ok(PersonFilter {
            kind: self.kind,
            status: self.status,
            role: self.role,
            search: search.map(str::to_owned),
        })
    }
}

/// The platform-wide view, when platform staff holding
/// `platform:people:read` ask on their own tenant (no `X-Tenant-ID`).
fn platform_view(auth: &crate::auth::Auth) -> Option<portico_kernel::PlatformContext> {
    auth.platform_view("platform:people:read")
}

/// The context, if it is a customer tenant's: the platform's staff are
/// managed under `/api/v1/admin-users` (staff name a customer tenant with
/// `X-Tenant-ID` to manage its people).
pub(crate) fn customer(ctx: &TenantContext) -> Result<&TenantContext, ApiError> {
    if ctx.tenant_id == portico_kernel::PLATFORM_TENANT_ID {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            "people.platform_staff",
            "This is for a customer tenant's people: the platform's staff are managed under /api/v1/admin-users \
             (name a tenant with X-Tenant-ID).",
        ));
    }
    Ok(ctx)
}

fn tenant_only() -> ApiError {
    ApiError::new(ErrorKind::Validation, "request.invalid_query", "tenantId is for the platform's staff.")
}

/// The invitation email and its link's token.
pub(crate) async fn invitation_link(
    store: &Db,
    links: &crate::server::Links,
    ctx: &TenantContext,
    email: &Email,
) -> Result<InvitationLink, ApiError> {
    let tenant = store.get(ctx, ctx.tenant_id).await?;
    let name = tenant.name.chars().filter(|c| !c.is_control()).collect::<String>();
    let subject = format!("You are invited to {name}");
    let intro =
        format!("You are invited to join {name} on Portico. Follow this link within 7 days to accept:");
    accept_link(links, email, &subject, &intro)
}

/// An email with a new single-use link to accept a membership (valid 7 days).
pub(crate) fn accept_link(
    links: &crate::server::Links,
    email: &Email,
    subject: &str,
    intro: &str,
) -> Result<InvitationLink, ApiError> {
    let token = portico_tenancy::mfa::random_hex::<32>()?;
    let message = link_email(links, email, subject, intro, "accept-invitation", &token);
    Ok(InvitationLink { token, lifetime: INVITATION_LIFETIME, message })
}

/// Invites `body` to the context's tenant and sends the link.
pub(crate) async fn invite_person(
    store: &Db,
    links: &crate::server::Links,
    ctx: &TenantContext,
    body: Invite,
) -> Result<Person, ApiError> {
    let new = body.into_new_person()?;
    let link = invitation_link(store, links, ctx, &new.email).await?;
    Ok(store.invite(ctx, new, Some(link), holds(ctx)).await?)
}

/// Sends the invitation of membership `id` again.
pub(crate) async fn resend_invitation(
    store: &Db,
    links: &crate::server::Links,
    ctx: &TenantContext,
    id: MembershipId,
) -> Result<Person, ApiError> {
    let person = match store.person(ctx, id).await {
        Err(IdentityError::MembershipNotFound) => return Err(IdentityError::InvitationNotFound.into()),
        other => other?,
    };
    let link = invitation_link(store, links, ctx, &person.email).await?;
    Ok(store.send_invitation(ctx, id, link).await?)
}

#[utoipa::path(
    get,
    path = "/api/v1/invitations",
    tag = "people",
    params(PeopleQuery),
    responses(
        (status = 200, description = "The tenant's open invitations (invited people), newest first.", body = PersonPageEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 422, description = "A bad page, limit or filter.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["people:read"]))
)]
/// Lists the tenant's open invitations.
pub async fn invitations(
    auth: Require<PeopleRead>,
    store: Db,
    query: web::Query<PeopleQuery>,
) -> Result<HttpResponse, ApiError> {
    if query.tenant_id.is_some() {
        return Err(tenant_only());
    }
    let filter = PersonFilter { status: Some(MembershipStatus::Invited), ..query.filter()? };
    Ok(envelope::page(&store.people(customer(&auth.ctx)?, &filter, query.page()?).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/invitations",
    tag = "people",
    request_body = Invite,
    responses(
        (status = 201, description = "Invited: the person (status `INVITED`) and the invitation; a single-use link valid for 7 days is emailed.", body = PersonEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or does not hold a permission the role carries (`rbac.permission_not_held`).", body = ErrorEnvelope),
        (status = 404, description = "No such custom role in this tenant (`roles.not_found`).", body = ErrorEnvelope),
        (status = 409, description = "Already a member (`people.already_member`) or invited (`invitations.already_invited`: resend instead).", body = ErrorEnvelope),
        (status = 422, description = "A bad address, name, phone or role.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["people:write"]))
)]
/// Invites someone to the tenant.
pub async fn invite(
    auth: Require<PeopleWrite>,
    store: Db,
    links: web::Data<crate::server::Links>,
    body: Json<Invite>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::created(invite_person(&store, &links, customer(&auth.ctx)?, body.into_inner()).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/invitations/{id}/resend",
    tag = "people",
    params(("id" = String, Path, format = Uuid, description = "The invited membership's id.")),
    responses(
        (status = 200, description = "A new link (valid for 7 days) is emailed; earlier links stop working.", body = PersonEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such invitation in this tenant (`invitations.not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The person has accepted already (`people.already_member`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["people:write"]))
)]
/// Sends an invitation again (or for the first time, after an import).
pub async fn resend(
    auth: Require<PeopleWrite>,
    store: Db,
    links: web::Data<crate::server::Links>,
    id: web::Path<MembershipId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(resend_invitation(&store, &links, customer(&auth.ctx)?, id.into_inner()).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/invitations/{id}",
    tag = "people",
    params(("id" = String, Path, format = Uuid, description = "The invited membership's id.")),
    responses(
        (status = 204, description = "Revoked: the invited membership is gone and its link stops working."),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No open invitation with this id in this tenant (`invitations.not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["people:write"]))
)]
/// Revokes an invitation.
pub async fn revoke(
    auth: Require<PeopleWrite>,
    store: Db,
    id: web::Path<MembershipId>,
) -> Result<HttpResponse, ApiError> {
    store.revoke_invitation(customer(&auth.ctx)?, id.into_inner()).await?;
    Ok(envelope::no_content())
}

#[utoipa::path(
    post,
    path = "/api/v1/invitations/accept",
    tag = "people",
    request_body = AcceptInvitation,
    responses(
        (status = 200, description = "Accepted: the membership is in force and the address confirmed; sign in next.", body = InvitationAcceptedEnvelope),
        (status = 422, description = "The link is unknown, accepted, revoked or expired (`invitations.invalid`, the same for each), a new account has no password (`invitations.password_required`), or it is not acceptable (`auth.weak_password`).", body = ErrorEnvelope),
    ),
    security(())
)]
/// Accepts an invitation with its emailed token.
pub async fn accept(
    req: HttpRequest,
    store: Db,
    body: Json<AcceptInvitation>,
) -> Result<HttpResponse, ApiError> {
    let AcceptInvitation { token, password } = body.into_inner();
    let hash = match password {
        Some(secret) => {
            portico_tenancy::password::check_policy(&secret)?;
            Some(hashing(move || portico_tenancy::password::hash(&secret)).await??)
        }
        None => None,
    };
    let accepted = store.accept_invitation(&token, hash, &request_id(&req), &origin(&req)).await?;
    Ok(envelope::ok(InvitationAccepted { tenant_id: accepted.tenant, new_account: accepted.new_account }))
}

#[utoipa::path(
    get,
    path = "/api/v1/platform-users",
    tag = "people",
    params(PeopleQuery),
    responses(
        (status = 200, description = "A page of people, newest first: the tenant's; for the platform's staff, every tenant's (or `tenantId`'s).", body = PersonPageEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 422, description = "A bad page, limit or filter, or `tenantId` from a tenant's user.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["people:read"]))
)]
/// Lists people.
pub async fn list(
    auth: Require<PeopleRead>,
    store: Db,
    query: web::Query<PeopleQuery>,
) -> Result<HttpResponse, ApiError> {
    list_of(&auth, &store, &query, None).await
}

async fn list_of(
    auth: &Require<PeopleRead>,
    store: &Db,
    query: &PeopleQuery,
    kind: Option<MembershipKind>,
) -> Result<HttpResponse, ApiError> {
    let mut filter = query.filter()?;
    if kind.is_some() {
        if query.kind.is_some_and(|asked| Some(asked) != kind) {
            return Err(ApiError::new(
                ErrorKind::Validation,
                "request.invalid_query",
                "This view has its own kind.",
            ));
        }
        filter.kind = kind;
    }
    let page = query.page()?;
    match platform_view(auth) {
        Some(platform) => {
            Ok(envelope::page(&store.platform_people(&platform, query.tenant_id, &filter, page).await?))
        }
        None if query.tenant_id.is_some() => Err(tenant_only()),
        None => Ok(envelope::page(&store.people(customer(&auth.ctx)?, &filter, page).await?)),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/platform-users",
    tag = "people",
    request_body = Invite,
    responses(
        (status = 201, description = "The person, invited (status `INVITED`): a single-use link valid for 7 days is emailed.", body = PersonEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or does not hold a permission the role carries (`rbac.permission_not_held`).", body = ErrorEnvelope),
        (status = 404, description = "No such custom role in this tenant (`roles.not_found`).", body = ErrorEnvelope),
        (status = 409, description = "Already a member (`people.already_member`) or invited (`invitations.already_invited`).", body = ErrorEnvelope),
        (status = 422, description = "A bad address, name, phone or role.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["people:write"]))
)]
/// Adds a person to the tenant (by invitation: nobody sets another's password).
pub async fn create(
    auth: Require<PeopleWrite>,
    store: Db,
    links: web::Data<crate::server::Links>,
    body: Json<Invite>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::created(invite_person(&store, &links, customer(&auth.ctx)?, body.into_inner()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/platform-users/{id}",
    tag = "people",
    params(("id" = String, Path, format = Uuid, description = "The person's membership id.")),
    responses(
        (status = 200, description = "The person.", body = PersonEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such person in this tenant (`memberships.not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["people:read"]))
)]
/// Reads a person.
pub async fn get(
    auth: Require<PeopleRead>,
    store: Db,
    id: web::Path<MembershipId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.person(customer(&auth.ctx)?, id.into_inner()).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/platform-users/{id}",
    tag = "people",
    params(("id" = String, Path, format = Uuid, description = "The person's membership id.")),
    request_body = UpdatePerson,
    responses(
        (status = 200, description = "The person as changed.", body = PersonEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such person in this tenant (`memberships.not_found`).", body = ErrorEnvelope),
        (status = 409, description = "Name or phone of a person who has set up their account (`people.profile_locked`).", body = ErrorEnvelope),
        (status = 422, description = "A bad name, phone or kind.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["people:write"]))
)]
/// Changes a person's kind (and, before they accept, name and phone).
pub async fn update(
    auth: Require<PeopleWrite>,
    store: Db,
    id: web::Path<MembershipId>,
    body: Json<UpdatePerson>,
) -> Result<HttpResponse, ApiError> {
    let changes = body.into_inner().into_changes()?;
    Ok(envelope::ok(store.update_person(customer(&auth.ctx)?, id.into_inner(), changes).await?))
}

#[utoipa::path(
    delete,
    path = "/api/v1/platform-users/{id}",
    tag = "people",
    params(("id" = String, Path, format = Uuid, description = "The person's membership id.")),
    responses(
        (status = 204, description = "Removed from the tenant (their account stays); their sessions here have ended."),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such person in this tenant (`memberships.not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The last owner (`memberships.last_owner`), or oneself (`people.own_membership`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["people:write"]))
)]
/// Removes a person from the tenant.
pub async fn remove(
    auth: Require<PeopleWrite>,
    store: Db,
    id: web::Path<MembershipId>,
) -> Result<HttpResponse, ApiError> {
    store.remove_person(customer(&auth.ctx)?, id.into_inner(), holds(&auth.ctx)).await?;
    Ok(envelope::no_content())
}

#[utoipa::path(
    post,
    path = "/api/v1/platform-users/{id}/activate",
    tag = "people",
    params(("id" = String, Path, format = Uuid, description = "The person's membership id.")),
    responses(
        (status = 200, description = "Active again in this tenant (already active: unchanged).", body = PersonEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such person in this tenant (`memberships.not_found`).", body = ErrorEnvelope),
        (status = 409, description = "Still invited (`invitations.already_invited`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["people:write"]))
)]
/// Reactivates a person in the tenant.
pub async fn activate(
    auth: Require<PeopleWrite>,
    store: Db,
    id: web::Path<MembershipId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(
        store.set_person_active(customer(&auth.ctx)?, id.into_inner(), true, holds(&auth.ctx)).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/platform-users/{id}/deactivate",
    tag = "people",
    params(("id" = String, Path, format = Uuid, description = "The person's membership id.")),
    responses(
        (status = 200, description = "Deactivated in this tenant only: their sessions here ended at once and their refresh tokens for it stop working.", body = PersonEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such person in this tenant (`memberships.not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The last owner (`memberships.last_owner`), oneself (`people.own_membership`), or still invited.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["people:write"]))
)]
/// Deactivates a person in the tenant.
pub async fn deactivate(
    auth: Require<PeopleWrite>,
    store: Db,
    id: web::Path<MembershipId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(
        store.set_person_active(customer(&auth.ctx)?, id.into_inner(), false, holds(&auth.ctx)).await?,
    ))
}

/// Page of an activity list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivityQuery {
    /// 1-based page (default 1).
    #[serde(default)]
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
}

impl ActivityQuery {
    pub(crate) fn page(&self) -> Result<PageRequest, ApiError> {
        crate::api::page_request(self.page, self.limit)
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/platform-users/{id}/activity",
    tag = "people",
    params(("id" = String, Path, format = Uuid, description = "The person's membership id."), ActivityQuery),
    responses(
        (status = 200, description = "What the person did in this tenant, from its audit trail (with addresses and user agents, hence `audit:read`), newest first.", body = AuditPageEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such person in this tenant (`memberships.not_found`).", body = ErrorEnvelope),
        (status = 422, description = "A bad page or limit.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["audit:read"]))
)]
/// A person's activity in the tenant.
pub async fn activity(
    auth: Require<AuditRead>,
    store: Db,
    id: web::Path<MembershipId>,
    query: web::Query<ActivityQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let person = store.person(customer(&auth.ctx)?, id.into_inner()).await?;
    let filter = AuditFilter { actor_id: Some(person.user_id.into_uuid()), ..AuditFilter::default() };
    let rows = store.audit_trail(&auth.ctx, &filter, page).await.map_err(|e| ApiError::infra(&e))?;
    Ok(envelope::page(&rows))
}

/// Tenant filter of the analytics.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalyticsQuery {
    /// Platform staff only: this tenant's (default: every tenant's).
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub tenant_id: Option<TenantId>,
}

#[utoipa::path(
    get,
    path = "/api/v1/platform-users/analytics",
    tag = "people",
    params(AnalyticsQuery),
    responses(
        (status = 200, description = "Counts of the tenant's people (the platform's staff: every tenant's, or `tenantId`'s).", body = PeopleAnalyticsEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 422, description = "`tenantId` from a tenant's user.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["people:read"]))
)]
/// Counts of people by kind, status and role, and recent activity.
pub async fn analytics(
    auth: Require<PeopleRead>,
    store: Db,
    query: web::Query<AnalyticsQuery>,
) -> Result<HttpResponse, ApiError> {
    match platform_view(&auth) {
        Some(platform) => {
            Ok(envelope::ok(store.platform_people_analytics(&platform, query.tenant_id).await?))
        }
        None if query.tenant_id.is_some() => Err(tenant_only()),
        None => Ok(envelope::ok(store.people_analytics(&auth.ctx).await?)),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/platform-users/bulk-import",
    tag = "people",
    request_body(content = String, content_type = "text/csv", description = "UTF-8 CSV with a header line: `email` and `name` required; `phone`, `kind` (default `staff`) and `role` (a built-in tenant role; default: the kind's) optional; `status` and `createdAt` (columns of an export) are ignored. Up to 100,000 rows and 32 MiB.", example = "email,name,phone,kind,role\r\nsam@acme.example,Sam Doe,+49 30 1234567,student,\r\n"),
    responses(
        (status = 201, description = "Every row imported: each person invited (send their links with `/invitations/{id}/resend`).", body = ImportSummaryEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or does not hold a permission a row's role carries (`rbac.permission_not_held`).", body = ErrorEnvelope),
        (status = 413, description = "Larger than 32 MiB (`import.too_large`).", body = ErrorEnvelope),
        (status = 422, description = "Nothing was written (`import.invalid_rows`): `details` is the report, every bad row with its line and reason (the first 1,000; `errorCount` counts all).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["people:write"]))
)]
/// Imports people from CSV, all or nothing.
pub async fn bulk_import(
    req: HttpRequest,
    auth: Require<PeopleWrite>,
    store: Db,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let ctx = customer(&auth.ctx)?;
    let mut parser = ImportParser::new();
    crate::api::stream_csv(&req, &mut payload, |chunk| parser.feed(chunk)).await?;
    let rows = parser.finish().map_err(invalid_rows)?;
    match store.import_people(ctx, rows, holds(ctx)).await {
        Ok(summary) => Ok(envelope::created(summary)),
        Err(portico_tenancy::people_import::ImportRefused::Rows(report)) => Err(invalid_rows(report)),
        Err(portico_tenancy::people_import::ImportRefused::Identity(error)) => Err(error.into()),
    }
}

/// Refuses an import not sent as `text/csv` (415 `import.not_csv`).
pub(crate) fn require_csv(req: &HttpRequest) -> Result<(), ApiError> {
    let csv = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("text/csv"))
        });
    if csv {
        Ok(())
    } else {
        Err(ApiError::with_status(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "import.not_csv",
            "Send the file as Content-Type: text/csv.",
        ))
    }
}

fn invalid_rows(report: portico_tenancy::people_import::ImportReport) -> ApiError {
    let message = format!("{} rows cannot be imported; nothing was written.", report.error_count);
    ApiError::new(ErrorKind::Validation, "import.invalid_rows", message)
        .details(serde_json::to_value(&report).unwrap_or_default())
}

/// Which people to export.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"kind": "STUDENT", "status": "ACTIVE"}))]
pub struct ExportFilter {
    /// Only this kind.
    #[serde(default)]
    pub kind: Option<MembershipKind>,
    /// Only this membership status.
    #[serde(default)]
    pub status: Option<MembershipStatus>,
    /// Only this built-in role.
    #[serde(default)]
    pub role: Option<Role>,
    /// Only whose email or name contains this.
    #[serde(default)]
    pub search: Option<String>,
    /// Platform staff only: this tenant's people (default: every customer tenant's).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub tenant_id: Option<TenantId>,
}

/// Whose people an export reads.
#[derive(Clone)]
enum ExportScope {
    Tenant(TenantContext),
    Platform(portico_kernel::PlatformContext, Option<TenantId>),
}

#[utoipa::path(
    post,
    path = "/api/v1/platform-users/bulk-export",
    tag = "people",
    request_body = ExportFilter,
    responses(
        (status = 200, description = "The filtered list as CSV (`email,name,phone,kind,role,status,createdAt`), streamed newest first; fields that a spreadsheet would run as a formula start with `'`.", content_type = "text/csv", body = String),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 422, description = "A bad filter.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["people:write"]))
)]
/// Exports the tenant's people as CSV (audited: it carries personal data).
pub async fn bulk_export(
    auth: Require<PeopleWrite>,
    store: Db,
    body: Json<ExportFilter>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let query = PeopleQuery {
        kind: body.kind,
        status: body.status,
        role: body.role,
        search: body.search,
        ..PeopleQuery::default()
    };
    let filter = query.filter()?;
    let scope = match platform_view(&auth) {
        Some(platform) => ExportScope::Platform(platform, body.tenant_id),
        None if body.tenant_id.is_some() => return Err(tenant_only()),
        None => ExportScope::Tenant(customer(&auth.ctx)?.clone()),
    };
    store.note_export(&auth.ctx, body.tenant_id, &filter).await?;
    let first = web::Bytes::from(export_header());
    let batches = futures_util::stream::unfold(Some(None), move |cursor| {
        let (store, scope, filter) = (store.clone(), scope.clone(), filter.clone());
        async move {
            let cursor = cursor?;
            let batch = match &scope {
                ExportScope::Tenant(ctx) => store.people_batch(ctx, &filter, cursor, EXPORT_BATCH).await,
                ExportScope::Platform(platform, tenant) => {
                    store.platform_people_batch(platform, *tenant, &filter, cursor, EXPORT_BATCH).await
                }
            };
            match batch {
                Ok(people) => {
                    let next = (people.len() == EXPORT_BATCH as usize)
                        .then(|| people.last().map(|p| (p.created_at, p.id)));
                    let csv: String = people.iter().map(export_line).collect();
                    Some((Ok::<_, actix_web::Error>(web::Bytes::from(csv)), next))
                }
                Err(error) => {
                    // The status is sent already: the stream is cut short, which the client sees.
                    tracing::error!(%error, "an export stopped");
                    Some((Err(actix_web::error::ErrorInternalServerError("export failed")), None))
                }
            }
        }
    });
    let body = futures_util::stream::once(async move { Ok(first) }).chain(batches);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", "attachment; filename=\"people.csv\""))
        .streaming(body))
}

fn export_line(person: &Person) -> String {
    let role = match (&person.role_name, person.role) {
        (Some(name), Role::Custom) => name.clone(),
        (_, role) => role.as_str().to_owned(),
    };
    let created: DateTime<Utc> = person.created_at;
    export_record(&[
        person.email.as_str(),
        &person.name,
        person.phone.as_deref().unwrap_or(""),
        person.kind.as_str(),
        &role,
        person.status.as_str(),
        &created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    ])
}

/// The kind views: `/platform-users/{kinds}` and `/platform-users/{kinds}/{id}`.
macro_rules! kind_views {
    ($($list:ident, $one:ident, $kind:ident, $list_path:literal, $one_path:literal, $what:literal;)*) => {$(
        #[utoipa::path(
            get,
            path = $list_path,
            tag = "people",
            params(PeopleQuery),
            responses(
                (status = 200, description = concat!("A page of the ", $what, ", newest first (the platform's staff: every tenant's, or `tenantId`'s)."), body = PersonPageEnvelope),
                (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
                (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
                (status = 422, description = "A bad page, limit or filter.", body = ErrorEnvelope),
            ),
            security(("bearer" = ["people:read"]))
        )]
        #[doc = concat!("Lists the ", $what, ".")]
        pub async fn $list(
            auth: Require<PeopleRead>,
            store: Db,
            query: web::Query<PeopleQuery>,
        ) -> Result<HttpResponse, ApiError> {
            list_of(&auth, &store, &query, Some(MembershipKind::$kind)).await
        }

        #[utoipa::path(
            get,
            path = $one_path,
            tag = "people",
            params(("id" = String, Path, format = Uuid, description = "The person's membership id.")),
            responses(
                (status = 200, description = "The person.", body = PersonEnvelope),
                (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
                (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
                (status = 404, description = concat!("None of the tenant's ", $what, " has this id (`memberships.not_found`)."), body = ErrorEnvelope),
            ),
            security(("bearer" = ["people:read"]))
        )]
        #[doc = concat!("Reads one of the ", $what, ".")]
        pub async fn $one(
            auth: Require<PeopleRead>,
            store: Db,
            id: web::Path<MembershipId>,
        ) -> Result<HttpResponse, ApiError> {
            let person = store.person(&auth.ctx, id.into_inner()).await?;
            if person.kind != MembershipKind::$kind {
                return Err(IdentityError::MembershipNotFound.into());
            }
            Ok(envelope::ok(person))
        }
    )*};
}

kind_views! {
    owners, owner, Owner, "/api/v1/platform-users/owners", "/api/v1/platform-users/owners/{id}", "owners";
    students, student, Student, "/api/v1/platform-users/students", "/api/v1/platform-users/students/{id}", "students";
    parents, parent, Parent, "/api/v1/platform-users/parents", "/api/v1/platform-users/parents/{id}", "parents";
    staff, staff_member, Staff, "/api/v1/platform-users/staff", "/api/v1/platform-users/staff/{id}", "staff";
}
