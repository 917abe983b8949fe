//! A tenant's people: who belongs (a person through a membership), their
//! invitations, deactivation and removal, counts, and bulk import.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Bytea, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_kernel::{
    AuditEntry, MembershipId, Origin, Page, PageRequest, PlatformContext, RequestId, RoleId, TenantContext,
    TenantId, UserId,
};
use portico_tenancy::people::may_give;
use portico_tenancy::people::{InvitationLink, PersonChanges};
use portico_tenancy::people_import::{ImportRefused, ImportReport, ImportRow, ImportSummary, RowError};
use portico_tenancy::roles::check_grant;
use portico_tenancy::{
    Email, IdentityError, InvitationState, MembershipKind, MembershipStatus, NewPerson, PeopleAnalytics,
    Person, PersonFilter, Role, RoleChoice, UserStatus,
};

use crate::error::{Failure, is_unique_violation};
use crate::identity::{notify, scope, token_hash};
use crate::rbac::{check_actor, last_owner, lock_membership};
use crate::{Store, audit};

pub(crate) type PeopleFailure = Failure<IdentityError>;

fn resolve(failure: PeopleFailure) -> IdentityError {
    failure.resolve(|error| {
        is_unique_violation(error, "memberships_tenant_id_user_id_key")
            .then_some(IdentityError::AlreadyMember)
    })
}

fn corrupt(what: &str) -> PeopleFailure {
    Failure::Infra(portico_kernel::InfraError::internal(format!("person row: {what}")))
}

#[derive(QueryableByName)]
struct PersonRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    user_id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    tenant_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<Text>)]
    phone: Option<String>,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    role_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    role_name: Option<String>,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Text)]
    account_status: String,
    #[diesel(sql_type = Bool)]
    email_verified: bool,
    #[diesel(sql_type = Bool)]
    mfa_enabled: bool,
    #[diesel(sql_type = Bool)]
    mfa_required: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_login_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    sent_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Integer>)]
    sent_count: Option<i32>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    expires_at: Option<DateTime<Utc>>,
}

impl PersonRow {
    fn into_person(self) -> Result<Person, PeopleFailure> {
        let invitation = match (self.sent_at, self.sent_count, self.expires_at) {
            (Some(sent_at), Some(count), Some(expires_at)) => {
                Some(InvitationState { sent_at, sent_count: u32::try_from(count).unwrap_or(0), expires_at })
            }
            _ => None,
        };
        Ok(Person {
            id: MembershipId::from_uuid(self.id),
            user_id: UserId::from_uuid(self.user_id),
            tenant_id: TenantId::from_uuid(self.tenant_id),
            email: Email::parse(&self.email).map_err(|_| corrupt("email"))?,
            name: self.name,
            phone: self.phone,
            kind: MembershipKind::from_storage(&self.kind).ok_or_else(|| corrupt("kind"))?,
            role: Role::from_storage(&self.role).ok_or_else(|| corrupt("role"))?,
            role_id: self.role_id.map(RoleId::from_uuid),
            role_name: self.role_name,
            status: MembershipStatus::from_storage(&self.status).ok_or_else(|| corrupt("status"))?,
            account_status: UserStatus::from_storage(&self.account_status)
                .ok_or_else(|| corrupt("account"))?,
            email_verified: self.email_verified,
            mfa_enabled: self.mfa_enabled,
            mfa_required: self.mfa_required,
            last_login_at: self.last_login_at,
            created_at: self.created_at,
            invitation,
        })
    }
}

const PERSON_FROM: &str = "FROM memberships m \
     JOIN users u ON u.id = m.user_id \
     LEFT JOIN roles r ON r.tenant_id = m.tenant_id AND r.id = m.role_id \
     LEFT JOIN invitations i ON i.tenant_id = m.tenant_id AND i.membership_id = m.id AND i.accepted_at IS NULL";

/// A person's columns as the tenant may see them. One account serves several
/// tenants: until the invited person accepts, the tenant sees only what its
/// inviter typed (not whether the address has an account, nor its details),
/// and the last sign-in is the last one *to this tenant*.
const PERSON_COLUMNS: &str = "m.id, m.user_id, m.tenant_id, u.email, \
     CASE WHEN m.status = 'invited' THEN m.invite_name ELSE u.name END AS name, \
     CASE WHEN m.status = 'invited' THEN m.invite_phone ELSE u.phone END AS phone, \
     m.kind, m.role, m.role_id, r.name AS role_name, m.status, \
     CASE WHEN m.status = 'invited' THEN 'pending' ELSE u.status END AS account_status, \
     m.status <> 'invited' AND u.email_verified_at IS NOT NULL AS email_verified, \
     m.status <> 'invited' AND u.mfa_enabled AS mfa_enabled, m.status <> 'invited' AND u.mfa_required AS mfa_required, \
     (SELECT max(s.created_at) FROM sessions s WHERE s.user_id = m.user_id AND s.tenant_id = m.tenant_id) \
         AS last_login_at, \
     m.created_at, i.sent_at, i.sent_count, i.expires_at";

/// `WHERE` conditions of a people query: `$1` the tenant (or all), `$2`..`$5` the filter.
/// Without a tenant, every customer tenant's (the platform's own people are its staff, listed apart).
const PERSON_FILTER: &str = "coalesce(m.tenant_id = $1::uuid, m.tenant_id <> '00000000-0000-7000-8000-000000000001') \
     AND ($2::text IS NULL OR m.kind = $2) AND ($3::text IS NULL OR m.status = $3) \
     AND ($4::text IS NULL OR m.role = $4) \
     AND ($5::text IS NULL OR u.email LIKE '%' || $5 || '%' ESCAPE '\\' \
          OR lower(CASE WHEN m.status = 'invited' THEN m.invite_name ELSE u.name END) LIKE '%' || $5 || '%' ESCAPE '\\')";

/// Where a batch of people starts: after this (creation time, membership) in
/// the list's order (newest first).
pub type PeopleCursor = (DateTime<Utc>, MembershipId);

/// Which part of a list to read.
enum Window {
    Page(PageRequest),
    After(Option<PeopleCursor>, u32),
}

fn like_pattern(search: &str) -> String {
    search.trim().to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// People of `tenant` (all tenants for `None`) matching `filter`, newest first.
async fn select_people(
    conn: &mut AsyncPgConnection,
    tenant: Option<TenantId>,
    filter: &PersonFilter,
    window: Window,
) -> Result<(Vec<Person>, u64), PeopleFailure> {
    #[derive(QueryableByName)]
    struct Total {
        #[diesel(sql_type = BigInt)]
        total: i64,
    }
    let search = filter.search.as_deref().map(like_pattern).filter(|s| !s.is_empty());
    let binds = (
        tenant.map(TenantId::into_uuid),
        filter.kind.map(|k| k.as_str()),
        filter.status.map(|s| s.as_str()),
        filter.role.map(|r| r.as_str()),
        search,
    );
    let (window_sql, limit, offset, cursor) = match window {
        Window::Page(page) => {
            ("", i64::from(page.limit()), i64::try_from(page.offset()).unwrap_or(i64::MAX), None)
        }
        Window::After(cursor, limit) => (
            " AND ($8::timestamptz IS NULL OR (m.created_at, m.id) < ($8::timestamptz, $9::uuid))",
            i64::from(limit),
            0,
            cursor,
        ),
    };
    let rows: Vec<PersonRow> = diesel::sql_query(format!(
        "SELECT {PERSON_COLUMNS} {PERSON_FROM} WHERE {PERSON_FILTER}{window_sql} \
         ORDER BY m.created_at DESC, m.id DESC LIMIT $6 OFFSET $7"
    ))
    .bind::<Nullable<SqlUuid>, _>(binds.0)
    .bind::<Nullable<Text>, _>(binds.1)
    .bind::<Nullable<Text>, _>(binds.2)
    .bind::<Nullable<Text>, _>(binds.3)
    .bind::<Nullable<Text>, _>(binds.4.clone())
    .bind::<BigInt, _>(limit)
    .bind::<BigInt, _>(offset)
    .bind::<Nullable<Timestamptz>, _>(cursor.map(|c| c.0))
    .bind::<Nullable<SqlUuid>, _>(cursor.map(|c| c.1.into_uuid()))
    .load(conn)
    .await?;
    let people = rows.into_iter().map(PersonRow::into_person).collect::<Result<Vec<_>, _>>()?;
    if matches!(window, Window::After(..)) {
        return Ok((people, 0));
    }
    let total: Total =
        diesel::sql_query(format!("SELECT count(*) AS total {PERSON_FROM} WHERE {PERSON_FILTER}"))
            .bind::<Nullable<SqlUuid>, _>(binds.0)
            .bind::<Nullable<Text>, _>(binds.1)
            .bind::<Nullable<Text>, _>(binds.2)
            .bind::<Nullable<Text>, _>(binds.3)
            .bind::<Nullable<Text>, _>(binds.4)
            .get_result(conn)
            .await?;
    Ok((people, u64::try_from(total.total).unwrap_or(0)))
}

async fn load_person(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: MembershipId,
) -> Result<Person, PeopleFailure> {
    let row: Option<PersonRow> = diesel::sql_query(format!(
        "SELECT {PERSON_COLUMNS} {PERSON_FROM} WHERE m.tenant_id = $1 AND m.id = $2"
    ))
    .bind::<SqlUuid, _>(tenant.into_uuid())
    .bind::<SqlUuid, _>(id.into_uuid())
    .get_result(conn)
    .await
    .optional()?;
    row.ok_or(Failure::Domain(IdentityError::MembershipNotFound))?.into_person()
}

fn membership_audit(action: &'static str, id: MembershipId, changes: serde_json::Value) -> AuditEntry {
    AuditEntry { action, resource_type: "membership", resource_id: id.to_string(), changes }
}

/// Audits `action` on membership `id` in the context's tenant, by its actor.
async fn audit_membership(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    action: &'static str,
    id: MembershipId,
    changes: serde_json::Value,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    audit::record(conn, ctx.tenant_id, ctx.into(), &membership_audit(action, id, changes), now).await
}

/// Ends `user`'s sessions signed in to `tenant` (they were removed or deactivated there).
async fn end_sessions_in(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    user: uuid::Uuid,
    reason: &str,
    now: DateTime<Utc>,
) -> diesel::QueryResult<usize> {
    diesel::sql_query(
        "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 \
         WHERE user_id = $1 AND tenant_id = $2 AND revoked_at IS NULL",
    )
    .bind::<SqlUuid, _>(user)
    .bind::<SqlUuid, _>(tenant.into_uuid())
    .bind::<Timestamptz, _>(now)
    .bind::<Text, _>(reason)
    .execute(conn)
    .await
}

/// Stores (or replaces) the invitation of membership `id` with `link` and
/// enqueues its email; the connection stays scoped to `tenant`.
pub(crate) async fn send_link(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    id: MembershipId,
    email: &str,
    inviter: Option<UserId>,
    link: InvitationLink,
    now: DateTime<Utc>,
) -> Result<(), PeopleFailure> {
    let expires = now + chrono::TimeDelta::from_std(link.lifetime).unwrap_or(chrono::TimeDelta::MAX);
    diesel::sql_query(
        "INSERT INTO invitations (tenant_id, membership_id, token_hash, email, invited_by, created_at, sent_at, \
                                  expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7) \
         ON CONFLICT (tenant_id, membership_id) DO UPDATE SET token_hash = EXCLUDED.token_hash, \
             email = EXCLUDED.email, invited_by = EXCLUDED.invited_by, sent_at = EXCLUDED.sent_at, \
             expires_at = EXCLUDED.expires_at, sent_count = invitations.sent_count + 1",
    )
    .bind::<SqlUuid, _>(tenant.into_uuid())
    .bind::<SqlUuid, _>(id.into_uuid())
    .bind::<Bytea, _>(token_hash(&link.token))
    .bind::<Text, _>(email)
    .bind::<Nullable<SqlUuid>, _>(inviter.map(UserId::into_uuid))
    .bind::<Timestamptz, _>(now)
    .bind::<Timestamptz, _>(expires)
    .execute(conn)
    .await?;
    notify(conn, link.message, email, now).await?;
    scope(conn, tenant).await?;
    Ok(())
}

/// Invites `new` to the scoped tenant as membership `id` with `role`, in the
/// caller's transaction: their account (created pending if the address is
/// new), the invited membership, the link's invitation and email job (unless
/// `None`) and the audit row.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn invite_in(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    new: &NewPerson,
    (role, role_id): (Role, Option<RoleId>),
    id: MembershipId,
    link: Option<InvitationLink>,
    now: DateTime<Utc>,
) -> Result<(), PeopleFailure> {
    let tenant = ctx.tenant_id;
    let user = account_for(conn, new, now).await?;
    #[derive(QueryableByName)]
    struct Existing {
        #[diesel(sql_type = Text)]
        status: String,
    }
    let existing: Option<Existing> =
        diesel::sql_query("SELECT status FROM memberships WHERE tenant_id = $1 AND user_id = $2")
            .bind::<SqlUuid, _>(tenant.into_uuid())
            .bind::<SqlUuid, _>(user)
            .get_result(conn)
            .await
            .optional()?;
    match existing.map(|e| e.status) {
        Some(status) if status == "invited" => return Err(Failure::Domain(IdentityError::AlreadyInvited)),
        Some(_) => return Err(Failure::Domain(IdentityError::AlreadyMember)),
        None => {}
    }
    diesel::sql_query(
        "INSERT INTO memberships (tenant_id, id, user_id, role, role_id, kind, status, invite_name, \
                                      invite_phone, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'invited', $8, $9, $7, $7)",
    )
    .bind::<SqlUuid, _>(tenant.into_uuid())
    .bind::<SqlUuid, _>(id.into_uuid())
    .bind::<SqlUuid, _>(user)
    .bind::<Text, _>(role.as_str())
    .bind::<Nullable<SqlUuid>, _>(role_id.map(RoleId::into_uuid))
    .bind::<Text, _>(new.kind.as_str())
    .bind::<Timestamptz, _>(now)
    .bind::<Text, _>(&new.name)
    .bind::<Nullable<Text>, _>(new.phone.as_deref())
    .execute(conn)
    .await?;
    let sent = link.is_some();
    if let Some(link) = link {
        send_link(conn, tenant, id, new.email.as_str(), acting_user(ctx), link, now).await?;
    }
    let changes = serde_json::json!({
        "userId": {"before": null, "after": UserId::from_uuid(user)},
        "email": {"before": null, "after": new.email.as_str()},
        "role": {"before": null, "after": role},
        "roleId": {"before": null, "after": role_id},
        "kind": {"before": null, "after": new.kind},
        "invitationSent": {"before": null, "after": sent},
    });
    audit_membership(conn, ctx, "membership.invite", id, changes, now).await?;
    Ok(())
}

/// The person acting, when a person acts.
fn acting_user(ctx: &TenantContext) -> Option<UserId> {
    match ctx.actor {
        portico_kernel::Actor::User { user_id, .. } => Some(user_id),
        _ => None,
    }
}

/// Who accepted an invitation, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The person.
    pub user: UserId,
    /// The tenant they joined.
    pub tenant: TenantId,
    /// Whether the acceptance created their account (set its password).
    pub new_account: bool,
}

/// Rows per statement of a bulk import.
const IMPORT_BATCH: usize = 5_000;

impl Store {
    /// A page of the context's tenant's people matching `filter`, newest first.
    pub async fn people(
        &self,
        ctx: &TenantContext,
        filter: &PersonFilter,
        page: PageRequest,
    ) -> Result<Page<Person>, IdentityError> {
        let (tenant, filter) = (ctx.tenant_id, filter.clone());
        let (items, total) = self
            .in_tenant(tenant, move |conn| {
                Box::pin(async move { select_people(conn, Some(tenant), &filter, Window::Page(page)).await })
            })
            .await
            .map_err(resolve)?;
        Ok(Page::new(items, page, total))
    }

    /// A page of every tenant's people (or `tenant`'s) for platform staff.
    pub async fn platform_people(
        &self,
        _ctx: &PlatformContext,
        tenant: Option<TenantId>,
        filter: &PersonFilter,
        page: PageRequest,
    ) -> Result<Page<Person>, IdentityError> {
        let filter = filter.clone();
        let (items, total) = self
            .as_platform(move |conn| {
                Box::pin(async move { select_people(conn, tenant, &filter, Window::Page(page)).await })
            })
            .await
            .map_err(resolve)?;
        Ok(Page::new(items, page, total))
    }

    /// Up to `limit` of the context's tenant's people after `cursor`, newest
    /// first (for streaming an export in batches).
    pub async fn people_batch(
        &self,
        ctx: &TenantContext,
        filter: &PersonFilter,
        cursor: Option<PeopleCursor>,
        limit: u32,
    ) -> Result<Vec<Person>, IdentityError> {
        let (tenant, filter) = (ctx.tenant_id, filter.clone());
        let (items, _) = self
            .in_tenant(tenant, move |conn| {
                Box::pin(async move {
                    select_people(conn, Some(tenant), &filter, Window::After(cursor, limit)).await
                })
            })
            .await
            .map_err(resolve)?;
        Ok(items)
    }

    /// Up to `limit` of every customer tenant's people (or `tenant`'s) after
    /// `cursor`, for platform staff streaming an export.
    pub async fn platform_people_batch(
        &self,
        _ctx: &PlatformContext,
        tenant: Option<TenantId>,
        filter: &PersonFilter,
        cursor: Option<PeopleCursor>,
        limit: u32,
    ) -> Result<Vec<Person>, IdentityError> {
        let filter = filter.clone();
        let (items, _) = self
            .as_platform(move |conn| {
                Box::pin(
                    async move { select_people(conn, tenant, &filter, Window::After(cursor, limit)).await },
                )
            })
            .await
            .map_err(resolve)?;
        Ok(items)
    }

    /// The context's tenant's person `id` (a membership id).
    pub async fn person(&self, ctx: &TenantContext, id: MembershipId) -> Result<Person, IdentityError> {
        let tenant = ctx.tenant_id;
        self.in_tenant(tenant, move |conn| Box::pin(load_person(conn, tenant, id))).await.map_err(resolve)
    }

    /// Invites `new` to the context's tenant: their account (created, not
    /// yet able to sign in, if the address is new to the platform) gets an
    /// invited membership with the role, and `link` is sent (unless `None`).
    /// The inviter must be able to give the role (`holds`). Audited.
    pub async fn invite(
        &self,
        ctx: &TenantContext,
        new: NewPerson,
        link: Option<InvitationLink>,
        holds: impl Fn(&str) -> bool + Send + 'static,
    ) -> Result<Person, IdentityError> {
        if let RoleChoice::BuiltIn(role) = new.role {
            may_give(role, ctx.tenant_id == portico_kernel::PLATFORM_TENANT_ID, &holds)?;
        }
        let (ctx, id, now) = (ctx.clone(), MembershipId::new(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let tenant = ctx.tenant_id;
                let (role, role_id) = match new.role {
                    RoleChoice::BuiltIn(role) => (role, None),
                    RoleChoice::Custom(role_id) => {
                        let custom = crate::rbac::load_role(conn, tenant.into_uuid(), role_id, false).await?;
                        check_grant(&custom.permissions, &holds).map_err(Failure::Domain)?;
                        (Role::Custom, Some(role_id))
                    }
                };
                invite_in(conn, &ctx, &new, (role, role_id), id, link, now).await?;
                load_person(conn, tenant, id).await
            })
        })
        .await
        .map_err(resolve)
    }

    /// Sends (again) the invitation of invited membership `id` with a new
    /// link: earlier links stop working. Audited.
    pub async fn send_invitation(
        &self,
        ctx: &TenantContext,
        id: MembershipId,
        link: InvitationLink,
    ) -> Result<Person, IdentityError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let tenant = ctx.tenant_id;
                let person = match load_person(conn, tenant, id).await {
                    Err(Failure::Domain(IdentityError::MembershipNotFound)) => {
                        return Err(Failure::Domain(IdentityError::InvitationNotFound));
                    }
                    other => other?,
                };
                if person.status != MembershipStatus::Invited {
                    return Err(Failure::Domain(IdentityError::AlreadyMember));
                }
                send_link(conn, tenant, id, person.email.as_str(), acting_user(&ctx), link, now).await?;
                let sent = person.invitation.as_ref().map_or(0, |i| i.sent_count) + 1;
                let changes = serde_json::json!({"sentCount": {"before": sent - 1, "after": sent}});
                audit_membership(conn, &ctx, "invitation.send", id, changes, now).await?;
                load_person(conn, tenant, id).await
            })
        })
        .await
        .map_err(resolve)
    }

    /// Revokes the invitation of invited membership `id`: the membership
    /// goes, and its link stops working. Audited.
    pub async fn revoke_invitation(
        &self,
        ctx: &TenantContext,
        id: MembershipId,
    ) -> Result<(), IdentityError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let tenant = ctx.tenant_id;
                let removed = diesel::sql_query(
                    "DELETE FROM memberships WHERE tenant_id = $1 AND id = $2 AND status = 'invited'",
                )
                .bind::<SqlUuid, _>(tenant.into_uuid())
                .bind::<SqlUuid, _>(id.into_uuid())
                .execute(conn)
                .await?;
                if removed == 0 {
                    return Err(Failure::Domain(IdentityError::InvitationNotFound));
                }
                let changes = serde_json::json!({"status": {"before": "invited", "after": null}});
                audit_membership(conn, &ctx, "invitation.revoke", id, changes, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }

    /// Accepts the invitation whose link carries `token`, once: the
    /// membership comes into force and the address counts as confirmed. A
    /// person without an account yet sets it up with `password_hash`
    /// (required then); an existing account's password is never changed
    /// here. An unknown, accepted, revoked or expired token is refused alike.
    pub async fn accept_invitation(
        &self,
        token: &str,
        password_hash: Option<String>,
        request_id: &RequestId,
        origin: &Origin,
    ) -> Result<Accepted, IdentityError> {
        #[derive(QueryableByName)]
        struct Found {
            #[diesel(sql_type = Nullable<SqlUuid>)]
            tenant: Option<uuid::Uuid>,
        }
        #[derive(QueryableByName)]
        struct Open {
            #[diesel(sql_type = SqlUuid)]
            membership_id: uuid::Uuid,
            #[diesel(sql_type = SqlUuid)]
            user_id: uuid::Uuid,
            #[diesel(sql_type = Text)]
            account: String,
            #[diesel(sql_type = Nullable<Text>)]
            invite_name: Option<String>,
            #[diesel(sql_type = Nullable<Text>)]
            invite_phone: Option<String>,
        }
        let (hash, now, request_id, origin) =
            (token_hash(token), self.now(), request_id.clone(), origin.clone());
        self.in_unscoped(move |conn| {
            Box::pin(async move {
                let invalid = || Failure::Domain(IdentityError::InvalidInvitation);
                let found: Found = diesel::sql_query("SELECT invitation_tenant($1) AS tenant")
                    .bind::<Bytea, _>(&hash)
                    .get_result(conn)
                    .await?;
                let tenant = TenantId::from_uuid(found.tenant.ok_or_else(invalid)?);
                scope(conn, tenant).await?;
                let open: Option<Open> = diesel::sql_query(
                    "SELECT i.membership_id, m.user_id, u.status AS account, m.invite_name, m.invite_phone \
                     FROM invitations i \
                     JOIN memberships m ON m.tenant_id = i.tenant_id AND m.id = i.membership_id \
                     JOIN users u ON u.id = m.user_id \
                     WHERE i.tenant_id = $1 AND i.token_hash = $2 AND i.accepted_at IS NULL AND i.expires_at > $3 \
                       AND m.status = 'invited' \
                     FOR UPDATE OF i, m",
                )
                .bind::<SqlUuid, _>(tenant.into_uuid())
                .bind::<Bytea, _>(&hash)
                .bind::<Timestamptz, _>(now)
                .get_result(conn)
                .await
                .optional()?;
                let open = open.ok_or_else(invalid)?;
                let mut new_account = open.account == UserStatus::Pending.as_str();
                if new_account {
                    // The account is set up with the name and phone this tenant's inviter typed.
                    let hash = password_hash.ok_or(Failure::Domain(IdentityError::PasswordRequired))?;
                    let set_up = diesel::sql_query(
                        "UPDATE users SET password_hash = $2, status = 'active', name = coalesce($4, name), \
                                          phone = coalesce($5, phone), \
                                          email_verified_at = coalesce(email_verified_at, $3), updated_at = $3 \
                         WHERE id = $1 AND status = 'pending'",
                    )
                    .bind::<SqlUuid, _>(open.user_id)
                    .bind::<Text, _>(hash)
                    .bind::<Timestamptz, _>(now)
                    .bind::<Nullable<Text>, _>(open.invite_name.as_deref())
                    .bind::<Nullable<Text>, _>(open.invite_phone.as_deref())
                    .execute(conn)
                    .await?;
                    // Accepted in another tenant meanwhile: that password stands.
                    new_account = set_up == 1;
                } else {
                    diesel::sql_query(
                        "UPDATE users SET email_verified_at = coalesce(email_verified_at, $2) WHERE id = $1",
                    )
                    .bind::<SqlUuid, _>(open.user_id)
                    .bind::<Timestamptz, _>(now)
                    .execute(conn)
                    .await?;
                }
                diesel::sql_query(
                    "UPDATE memberships SET status = 'active', invite_name = NULL, invite_phone = NULL, updated_at = $3 \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind::<SqlUuid, _>(tenant.into_uuid())
                .bind::<SqlUuid, _>(open.membership_id)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                diesel::sql_query(
                    "UPDATE invitations SET accepted_at = $3 WHERE tenant_id = $1 AND membership_id = $2",
                )
                .bind::<SqlUuid, _>(tenant.into_uuid())
                .bind::<SqlUuid, _>(open.membership_id)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                let user = UserId::from_uuid(open.user_id);
                let actor = portico_kernel::Actor::User { user_id: user, tenant_id: tenant };
                let changes = serde_json::json!({
                    "status": {"before": "invited", "after": "active"},
                    "newAccount": {"before": null, "after": new_account},
                });
                let entry =
                    membership_audit("invitation.accept", MembershipId::from_uuid(open.membership_id), changes);
                let by = audit::By { actor: &actor, request_id: &request_id, origin: &origin };
                audit::record(conn, tenant, by, &entry, now).await?;
                // The owner of a signed-up tenant has now confirmed the address.
                let by = audit::By { actor: &actor, request_id: &request_id, origin: &origin };
                let membership = MembershipId::from_uuid(open.membership_id);
                crate::onboarding::confirm_owner(conn, tenant, membership, by, now).await?;
                Ok(Accepted { user, tenant, new_account })
            })
        })
        .await
        .map_err(resolve)
    }

    /// Changes person `id`'s kind, and the name and phone their inviter
    /// typed while they are invited (afterwards those are the person's own:
    /// `ProfileLocked`; a tenant never changes an account other tenants
    /// share). Audited.
    pub async fn update_person(
        &self,
        ctx: &TenantContext,
        id: MembershipId,
        changes: PersonChanges,
    ) -> Result<Person, IdentityError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let tenant = ctx.tenant_id;
                let before = load_person(conn, tenant, id).await?;
                let profile = changes.name.is_some() || changes.phone.is_some();
                if profile && before.status != MembershipStatus::Invited {
                    return Err(Failure::Domain(IdentityError::ProfileLocked));
                }
                let name = changes.name.unwrap_or_else(|| before.name.clone());
                let phone = changes.phone.unwrap_or_else(|| before.phone.clone());
                let kind = changes.kind.unwrap_or(before.kind);
                diesel::sql_query(
                    "UPDATE memberships SET kind = $3, updated_at = $4, \
                         invite_name = CASE WHEN status = 'invited' THEN $5 END, \
                         invite_phone = CASE WHEN status = 'invited' THEN $6 END \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind::<SqlUuid, _>(tenant.into_uuid())
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<Text, _>(kind.as_str())
                .bind::<Timestamptz, _>(now)
                .bind::<Text, _>(&name)
                .bind::<Nullable<Text>, _>(phone.as_deref())
                .execute(conn)
                .await?;
                let changes = serde_json::json!({
                    "name": {"before": before.name, "after": name},
                    "phone": {"before": before.phone, "after": phone},
                    "kind": {"before": before.kind, "after": kind},
                });
                audit_membership(conn, &ctx, "membership.update", id, changes, now).await?;
                load_person(conn, tenant, id).await
            })
        })
        .await
        .map_err(resolve)
    }

    /// Activates (`active`) or deactivates person `id` in the context's
    /// tenant only. Deactivating ends their sessions there at once and their
    /// refresh tokens stop working; the last active owner and one's own
    /// membership cannot be deactivated. Already so: unchanged, not audited.
    pub async fn set_person_active(
        &self,
        ctx: &TenantContext,
        id: MembershipId,
        active: bool,
        holds: impl Fn(&str) -> bool + Send + 'static,
    ) -> Result<Person, IdentityError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let tenant = ctx.tenant_id;
                let locked = lock_membership(conn, tenant.into_uuid(), id).await?;
                let (from, to) = match (locked.status.as_str(), active) {
                    ("invited", _) => return Err(Failure::Domain(IdentityError::AlreadyInvited)),
                    ("active", true) | ("suspended", false) => return load_person(conn, tenant, id).await,
                    (from, true) => (from.to_owned(), "active"),
                    (from, false) => (from.to_owned(), "suspended"),
                };
                check_actor(&ctx, &locked, false, &holds)?;
                if !active {
                    if locked.role.is_owner() && last_owner(conn, tenant.into_uuid(), id).await? {
                        return Err(Failure::Domain(IdentityError::LastOwner));
                    }
                    end_sessions_in(conn, tenant, locked.user_id, "deactivated", now).await?;
                }
                diesel::sql_query(
                    "UPDATE memberships SET status = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
                )
                .bind::<SqlUuid, _>(tenant.into_uuid())
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<Text, _>(to)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                let action = if active { "membership.activate" } else { "membership.deactivate" };
                let changes = serde_json::json!({"status": {"before": from, "after": to}});
                audit_membership(conn, &ctx, action, id, changes, now).await?;
                load_person(conn, tenant, id).await
            })
        })
        .await
        .map_err(resolve)
    }

    /// Removes person `id` from the context's tenant (their account stays):
    /// their sessions there end; the last active owner and one's own
    /// membership cannot be removed. Audited.
    pub async fn remove_person(
        &self,
        ctx: &TenantContext,
        id: MembershipId,
        holds: impl Fn(&str) -> bool + Send + 'static,
    ) -> Result<(), IdentityError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let tenant = ctx.tenant_id;
                let locked = lock_membership(conn, tenant.into_uuid(), id).await?;
                check_actor(&ctx, &locked, false, &holds)?;
                if locked.role.is_owner()
                    && locked.status == "active"
                    && last_owner(conn, tenant.into_uuid(), id).await?
                {
                    return Err(Failure::Domain(IdentityError::LastOwner));
                }
                end_sessions_in(conn, tenant, locked.user_id, "removed", now).await?;
                diesel::sql_query("DELETE FROM memberships WHERE tenant_id = $1 AND id = $2")
                    .bind::<SqlUuid, _>(tenant.into_uuid())
                    .bind::<SqlUuid, _>(id.into_uuid())
                    .execute(conn)
                    .await?;
                let changes = serde_json::json!({
                    "userId": {"before": UserId::from_uuid(locked.user_id), "after": null},
                    "role": {"before": locked.role, "after": null},
                    "status": {"before": locked.status, "after": null},
                });
                audit_membership(conn, &ctx, "membership.remove", id, changes, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }

    /// Audits an export of the context's tenant's people matching `filter`
    /// (it carries personal data), before it streams.
    pub async fn note_export(
        &self,
        ctx: &TenantContext,
        tenant: Option<TenantId>,
        filter: &PersonFilter,
    ) -> Result<(), IdentityError> {
        let (ctx, now) = (ctx.clone(), self.now());
        let changes = serde_json::json!({
            "filter": {"before": null, "after": {
                "tenantId": tenant, "kind": filter.kind, "status": filter.status, "role": filter.role,
                "search": filter.search.is_some(),
            }},
        });
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let entry = AuditEntry {
                    action: "people.export",
                    resource_type: "tenant",
                    resource_id: ctx.tenant_id.to_string(),
                    changes,
                };
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }

    /// Counts of the context's tenant's people.
    pub async fn people_analytics(&self, ctx: &TenantContext) -> Result<PeopleAnalytics, IdentityError> {
        let (tenant, now) = (ctx.tenant_id, self.now());
        self.in_tenant(tenant, move |conn| Box::pin(analytics(conn, Some(tenant), now)))
            .await
            .map_err(resolve)
    }

    /// Counts of every tenant's people (or `tenant`'s), for platform staff.
    pub async fn platform_people_analytics(
        &self,
        _ctx: &PlatformContext,
        tenant: Option<TenantId>,
    ) -> Result<PeopleAnalytics, IdentityError> {
        let now = self.now();
        self.as_platform(move |conn| Box::pin(analytics(conn, tenant, now))).await.map_err(resolve)
    }

    /// Imports `rows` (checked by [`portico_tenancy::people_import`]) into
    /// the context's tenant, all or nothing: addresses new to the platform
    /// get an account (not yet able to sign in), and everyone an invited
    /// membership. A row whose person already belongs to the tenant refuses
    /// the whole file, reported with its line. Audited as one import.
    pub async fn import_people(
        &self,
        ctx: &TenantContext,
        rows: Vec<ImportRow>,
        holds: impl Fn(&str) -> bool + Send + 'static,
    ) -> Result<ImportSummary, ImportRefused> {
        // Every role given must be one the importer may give.
        let mut roles: Vec<Role> = rows.iter().map(|row| row.role).collect();
        roles.sort_unstable_by_key(|role| role.as_str());
        roles.dedup();
        let platform = ctx.tenant_id == portico_kernel::PLATFORM_TENANT_ID;
        for role in roles {
            may_give(role, platform, &holds).map_err(ImportRefused::Identity)?;
        }
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| Box::pin(import(conn, ctx, rows, now))).await.map_err(
            |failure| match failure {
                Failure::Domain(refused) => refused,
                // Someone was invited while the file was written: refused whole, as a row would be.
                Failure::Db(error) if is_unique_violation(&error, "memberships_tenant_id_user_id_key") => {
                    ImportRefused::Identity(IdentityError::AlreadyMember)
                }
                Failure::Db(error) => {
                    ImportRefused::Identity(IdentityError::Store(crate::error::infra(error)))
                }
                Failure::Infra(error) => ImportRefused::from(error),
            },
        )
    }
}

impl Store {
    /// Emails person `id` a link to choose a new password (earlier links
    /// stop working); the administrator never sees or sets it. Audited here.
    pub async fn send_password_reset(
        &self,
        ctx: &TenantContext,
        id: MembershipId,
        link: InvitationLink,
        holds: impl Fn(&str) -> bool + Send + 'static,
    ) -> Result<(), IdentityError> {
        let (ctx, now) = (ctx.clone(), self.now());
        let expires = now + chrono::TimeDelta::from_std(link.lifetime).unwrap_or(chrono::TimeDelta::MAX);
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let tenant = ctx.tenant_id;
                check_actor(&ctx, &lock_membership(conn, tenant.into_uuid(), id).await?, false, &holds)?;
                let person = load_person(conn, tenant, id).await?;
                if person.status == MembershipStatus::Invited {
                    return Err(Failure::Domain(IdentityError::AlreadyInvited));
                }
                diesel::sql_query(
                    "UPDATE one_time_tokens SET used_at = $2 \
                     WHERE user_id = $1 AND purpose = 'password_reset' AND used_at IS NULL",
                )
                .bind::<SqlUuid, _>(person.user_id.into_uuid())
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                diesel::sql_query(
                    "INSERT INTO one_time_tokens (token_hash, user_id, purpose, email, created_at, expires_at) \
                     VALUES ($1, $2, 'password_reset', $3, $4, $5)",
                )
                .bind::<Bytea, _>(token_hash(&link.token))
                .bind::<SqlUuid, _>(person.user_id.into_uuid())
                .bind::<Text, _>(person.email.as_str())
                .bind::<Timestamptz, _>(now)
                .bind::<Timestamptz, _>(expires)
                .execute(conn)
                .await?;
                notify(conn, link.message, person.email.as_str(), now).await?;
                scope(conn, tenant).await?;
                audit_membership(conn, &ctx, "membership.password_reset_sent", id, serde_json::json!({}), now).await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }

    /// Requires, waives or resets person `id`'s second factor (never reads
    /// it); a reset tells them by `notice`. Audited here.
    pub async fn set_person_mfa(
        &self,
        ctx: &TenantContext,
        id: MembershipId,
        action: portico_tenancy::MfaAction,
        notice: portico_kernel::EmailMessage,
        holds: impl Fn(&str) -> bool + Send + 'static,
    ) -> Result<Person, IdentityError> {
        use portico_tenancy::MfaAction;
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let tenant = ctx.tenant_id;
                check_actor(&ctx, &lock_membership(conn, tenant.into_uuid(), id).await?, false, &holds)?;
                let before = load_person(conn, tenant, id).await?;
                if before.status == MembershipStatus::Invited {
                    return Err(Failure::Domain(IdentityError::AlreadyInvited));
                }
                let (sql, name) = match action {
                    MfaAction::Require => (
                        "UPDATE users SET mfa_required = true, updated_at = $2 WHERE id = $1",
                        "membership.mfa_require",
                    ),
                    MfaAction::Waive => (
                        "UPDATE users SET mfa_required = false, updated_at = $2 WHERE id = $1",
                        "membership.mfa_waive",
                    ),
                    MfaAction::Reset => (
                        "UPDATE users SET mfa_enabled = false, mfa_secret = NULL, mfa_pending = NULL, \
                         mfa_recovery = '{}', updated_at = $2 WHERE id = $1",
                        "membership.mfa_reset",
                    ),
                };
                diesel::sql_query(sql)
                    .bind::<SqlUuid, _>(before.user_id.into_uuid())
                    .bind::<Timestamptz, _>(now)
                    .execute(conn)
                    .await?;
                if action == MfaAction::Reset {
                    // Whoever holds a session may be who took the device: every one ends.
                    diesel::sql_query(
                        "UPDATE sessions SET revoked_at = $2, revoked_reason = 'mfa_reset' \
                         WHERE user_id = $1 AND revoked_at IS NULL",
                    )
                    .bind::<SqlUuid, _>(before.user_id.into_uuid())
                    .bind::<Timestamptz, _>(now)
                    .execute(conn)
                    .await?;
                    notify(conn, notice, before.email.as_str(), now).await?;
                    scope(conn, tenant).await?;
                }
                let after = load_person(conn, tenant, id).await?;
                let changes = serde_json::json!({
                    "mfaRequired": {"before": before.mfa_required, "after": after.mfa_required},
                    "mfaEnabled": {"before": before.mfa_enabled, "after": after.mfa_enabled},
                });
                audit_membership(conn, &ctx, name, id, changes, now).await?;
                Ok(after)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Ends session `session` of person `id` (a lost device), audited here.
    pub async fn end_person_session(
        &self,
        ctx: &TenantContext,
        id: MembershipId,
        session: portico_kernel::SessionId,
        holds: impl Fn(&str) -> bool + Send + 'static,
    ) -> Result<(), IdentityError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let tenant = ctx.tenant_id;
                check_actor(&ctx, &lock_membership(conn, tenant.into_uuid(), id).await?, false, &holds)?;
                let person = load_person(conn, tenant, id).await?;
                let ended = diesel::sql_query(
                    "UPDATE sessions SET revoked_at = $3, revoked_reason = 'ended_by_administrator' \
                     WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
                )
                .bind::<SqlUuid, _>(session.into_uuid())
                .bind::<SqlUuid, _>(person.user_id.into_uuid())
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                if ended == 0 {
                    return Err(Failure::Domain(IdentityError::SessionNotFound));
                }
                let changes = serde_json::json!({"sessionId": {"before": session, "after": null}});
                audit_membership(conn, &ctx, "membership.session_end", id, changes, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }
}

/// The account of `new`'s address: the existing one, or a new one (pending).
async fn account_for(
    conn: &mut AsyncPgConnection,
    new: &NewPerson,
    now: DateTime<Utc>,
) -> Result<uuid::Uuid, PeopleFailure> {
    #[derive(QueryableByName)]
    struct Account {
        #[diesel(sql_type = SqlUuid)]
        id: uuid::Uuid,
    }
    diesel::sql_query(
        "INSERT INTO users (id, email, name, phone, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'pending', $5, $5) ON CONFLICT (email) DO NOTHING",
    )
    .bind::<SqlUuid, _>(UserId::new().into_uuid())
    .bind::<Text, _>(new.email.as_str())
    .bind::<Text, _>(&new.name)
    .bind::<Nullable<Text>, _>(new.phone.as_deref())
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await?;
    let account: Account = diesel::sql_query("SELECT id FROM users WHERE email = $1")
        .bind::<Text, _>(new.email.as_str())
        .get_result(conn)
        .await?;
    Ok(account.id)
}

async fn analytics(
    conn: &mut AsyncPgConnection,
    tenant: Option<TenantId>,
    now: DateTime<Utc>,
) -> Result<PeopleAnalytics, PeopleFailure> {
    #[derive(QueryableByName)]
    struct Group {
        #[diesel(sql_type = Text)]
        kind: String,
        #[diesel(sql_type = Text)]
        status: String,
        #[diesel(sql_type = Text)]
        role: String,
        #[diesel(sql_type = Bool)]
        mfa: bool,
        #[diesel(sql_type = Bool)]
        recent: bool,
        #[diesel(sql_type = Bool)]
        joined: bool,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let groups: Vec<Group> = diesel::sql_query(
        "SELECT m.kind, m.status, m.role, m.status <> 'invited' AND u.mfa_enabled AS mfa, \
                EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = m.user_id AND s.tenant_id = m.tenant_id \
                        AND s.created_at > $2 - interval '30 days') AS recent, \
                m.created_at > $2 - interval '30 days' AS joined, count(*) AS n \
         FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE coalesce(m.tenant_id = $1::uuid, m.tenant_id <> '00000000-0000-7000-8000-000000000001') \
         GROUP BY 1, 2, 3, 4, 5, 6",
    )
    .bind::<Nullable<SqlUuid>, _>(tenant.map(TenantId::into_uuid))
    .bind::<Timestamptz, _>(now)
    .load(conn)
    .await?;
    let mut counts = PeopleAnalytics::default();
    for group in groups {
        let n = u64::try_from(group.n).unwrap_or(0);
        counts.total += n;
        *counts.by_kind.entry(group.kind).or_default() += n;
        *counts.by_status.entry(group.status).or_default() += n;
        *counts.by_role.entry(group.role).or_default() += n;
        counts.mfa_enabled += if group.mfa { n } else { 0 };
        counts.signed_in_last30_days += if group.recent { n } else { 0 };
        counts.joined_last30_days += if group.joined { n } else { 0 };
    }
    Ok(counts)
}

async fn import(
    conn: &mut AsyncPgConnection,
    ctx: TenantContext,
    rows: Vec<ImportRow>,
    now: DateTime<Utc>,
) -> Result<ImportSummary, Failure<ImportRefused>> {
    #[derive(QueryableByName)]
    struct Account {
        #[diesel(sql_type = SqlUuid)]
        id: uuid::Uuid,
        #[diesel(sql_type = Text)]
        email: String,
    }
    #[derive(QueryableByName)]
    struct Member {
        #[diesel(sql_type = Text)]
        email: String,
    }
    let tenant = ctx.tenant_id;
    let mut summary = ImportSummary { rows: rows.len() as u64, new_accounts: 0, invited: 0 };
    let mut already: Vec<RowError> = Vec::new();
    let mut already_count = 0u64;
    for batch in rows.chunks(IMPORT_BATCH) {
        let ids: Vec<uuid::Uuid> = batch.iter().map(|_| UserId::new().into_uuid()).collect();
        let emails: Vec<&str> = batch.iter().map(|r| r.email.as_str()).collect();
        let names: Vec<&str> = batch.iter().map(|r| r.name.as_str()).collect();
        let phones: Vec<Option<&str>> = batch.iter().map(|r| r.phone.as_deref()).collect();
        let created = diesel::sql_query(
            "INSERT INTO users (id, email, name, phone, status, created_at, updated_at) \
             SELECT id, email, name, phone, 'pending', $5, $5 \
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS t (id, email, name, phone) \
             ON CONFLICT (email) DO NOTHING",
        )
        .bind::<Array<SqlUuid>, _>(&ids)
        .bind::<Array<Text>, _>(&emails)
        .bind::<Array<Text>, _>(&names)
        .bind::<Array<Nullable<Text>>, _>(&phones)
        .bind::<Timestamptz, _>(now)
        .execute(conn)
        .await?;
        summary.new_accounts += created as u64;
        let members: Vec<Member> = diesel::sql_query(
            "SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.tenant_id = $1 AND u.email = ANY($2)",
        )
        .bind::<SqlUuid, _>(tenant.into_uuid())
        .bind::<Array<Text>, _>(&emails)
        .load(conn)
        .await?;
        if !members.is_empty() {
            let members: std::collections::HashSet<String> = members.into_iter().map(|m| m.email).collect();
            for row in batch.iter().filter(|r| members.contains(r.email.as_str())) {
                already_count += 1;
                if already.len() < portico_tenancy::people_import::MAX_REPORTED {
                    already.push(RowError {
                        line: row.line,
                        code: "import.already_member",
                        reason: "this person already belongs to the tenant".to_owned(),
                    });
                }
            }
            continue;
        }
        if already_count > 0 {
            continue;
        }
        let accounts: Vec<Account> = diesel::sql_query("SELECT id, email FROM users WHERE email = ANY($1)")
            .bind::<Array<Text>, _>(&emails)
            .load(conn)
            .await?;
        let by_email: std::collections::HashMap<String, uuid::Uuid> =
            accounts.into_iter().map(|a| (a.email, a.id)).collect();
        let mut users = Vec::with_capacity(batch.len());
        for row in batch {
            users.push(*by_email.get(row.email.as_str()).ok_or_else(|| {
                Failure::Infra(portico_kernel::InfraError::internal("an imported account is missing"))
            })?);
        }
        let memberships: Vec<uuid::Uuid> = batch.iter().map(|_| MembershipId::new().into_uuid()).collect();
        let roles: Vec<&str> = batch.iter().map(|r| r.role.as_str()).collect();
        let kinds: Vec<&str> = batch.iter().map(|r| r.kind.as_str()).collect();
        let inserted = diesel::sql_query(
            "INSERT INTO memberships (tenant_id, id, user_id, role, kind, status, invite_name, invite_phone, \
                                      created_at, updated_at) \
             SELECT $1, id, user_id, role, kind, 'invited', name, phone, $6, $6 \
             FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], $7::text[], $8::text[]) \
                  AS t (id, user_id, role, kind, name, phone)",
        )
        .bind::<SqlUuid, _>(tenant.into_uuid())
        .bind::<Array<SqlUuid>, _>(&memberships)
        .bind::<Array<SqlUuid>, _>(&users)
        .bind::<Array<Text>, _>(&roles)
        .bind::<Array<Text>, _>(&kinds)
        .bind::<Timestamptz, _>(now)
        .bind::<Array<Text>, _>(&names)
        .bind::<Array<Nullable<Text>>, _>(&phones)
        .execute(conn)
        .await?;
        summary.invited += inserted as u64;
    }
    if already_count > 0 {
        already.sort_by_key(|e| e.line);
        let report = ImportReport { rows: summary.rows, error_count: already_count, errors: already };
        return Err(Failure::Domain(ImportRefused::Rows(report)));
    }
    let changes = serde_json::json!({
        "rows": {"before": null, "after": summary.rows},
        "newAccounts": {"before": null, "after": summary.new_accounts},
    });
    let entry = AuditEntry {
        action: "people.import",
        resource_type: "tenant",
        resource_id: tenant.to_string(),
        changes,
    };
    audit::record(conn, tenant, (&ctx).into(), &entry, now).await?;
    Ok(summary)
}
