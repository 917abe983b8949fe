//! People, memberships and sessions: the global identity tables (read only
//! here) and the tenant-owned memberships.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::{Bool, Bytea, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_kernel::{
    Actor, AuditEntry, MembershipId, Origin, RequestId, SessionId, TenantContext, TenantId, UserId,
};
use portico_tenancy::{
    Email, IdentityError, MembershipKind, MembershipStatus, MembershipView, Role, TenantStatus, User,
    UserStatus,
};
use sha2::{Digest, Sha256};

use crate::audit::By;
use crate::error::{Failure, is_unique_violation};
use crate::{Store, audit};

/// A person to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Normalised address.
    pub email: Email,
    /// Display name.
    pub name: String,
    /// Phone number.
    pub phone: Option<String>,
    /// Whether they may sign in.
    pub status: UserStatus,
    /// Argon2id PHC string, if a password is set.
    pub password_hash: Option<String>,
    /// Whether the address is confirmed.
    pub email_verified: bool,
}

/// What sign-in needs to know about the person behind an email.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The person.
    pub user: User,
    /// Their password's hash, if they set one.
    pub password_hash: Option<String>,
}

/// A signed-in device, as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f", "tenantId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e60",
    "device": "Pixel 8", "ip": "203.0.113.7", "userAgent": "portico-app/2.1",
    "createdAt": "2026-11-23T09:00:00Z", "lastUsedAt": "2026-11-23T09:15:00Z", "expiresAt": "2026-12-23T09:00:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The session.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: SessionId,
    /// The person.
    #[serde(skip)]
    pub user_id: UserId,
    /// The tenant it is signed in to.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub tenant_id: TenantId,
    /// What the client called itself at sign-in.
    pub device: Option<String>,
    /// The address it signed in from.
    pub ip: Option<String>,
    /// Its user agent at sign-in.
    pub user_agent: Option<String>,
    /// Sign-in time.
    pub created_at: DateTime<Utc>,
    /// Last refresh.
    pub last_used_at: DateTime<Utc>,
    /// The end of its absolute lifetime.
    pub expires_at: DateTime<Utc>,
}

/// A session to start at sign-in.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The person.
    pub user: UserId,
    /// The membership's tenant.
    pub tenant: TenantId,
    /// The client's name for itself.
    pub device: Option<String>,
    /// Where the sign-in came from.
    pub origin: Origin,
    /// The request.
    pub request_id: RequestId,
    /// The first refresh token (only its hash is kept).
    pub refresh_token: String,
    /// Absolute lifetime.
    pub lifetime: Duration,
}

/// The SHA-256 of a refresh token, as stored.
pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[derive(QueryableByName)]
struct UserRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    email: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<Text>)]
    phone: Option<String>,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Text>)]
    password_hash: Option<String>,
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
}

const USER_COLUMNS: &str = "id, email, name, phone, status, password_hash, email_verified_at IS NOT NULL AS email_verified, \
     mfa_enabled, mfa_required, last_login_at, created_at";

impl UserRow {
    fn into_credentials(self) -> Result<Credentials, IdentityError> {
        let corrupt =
            |what: &str| IdentityError::Store(portico_kernel::InfraError::internal(format!("user {what}")));
        let user = User {
            id: UserId::from_uuid(self.id),
            email: Email::parse(&self.email).map_err(|_| corrupt("email"))?,
            name: self.name,
            phone: self.phone,
            status: UserStatus::from_storage(&self.status).ok_or_else(|| corrupt("status"))?,
            email_verified: self.email_verified,
            mfa_enabled: self.mfa_enabled,
            mfa_required: self.mfa_required,
            last_login_at: self.last_login_at,
            created_at: self.created_at,
        };
        Ok(Credentials { user, password_hash: self.password_hash })
    }
}

#[derive(QueryableByName)]
struct SessionRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    user_id: uuid::Uuid,
    #[diesel(sql_type = SqlUuid)]
    tenant_id: uuid::Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    device: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    ip: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    user_agent: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    last_used_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
}

const SESSION_COLUMNS: &str =
    "id, user_id, tenant_id, device, host(ip) AS ip, user_agent, created_at, last_used_at, expires_at";

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Self {
        Self {
            id: SessionId::from_uuid(row.id),
            user_id: UserId::from_uuid(row.user_id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            device: row.device,
            ip: row.ip,
            user_agent: row.user_agent,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
        }
    }
}

type IdentityFailure = Failure<IdentityError>;

fn resolve(failure: IdentityFailure) -> IdentityError {
    failure
        .resolve(|error| is_unique_violation(error, "users_email_key").then_some(IdentityError::EmailTaken))
}

/// Appends an audit row about a session to `tenant`'s trail (the caller's
/// transaction, scoped to it).
#[allow(clippy::too_many_arguments)] // one row's worth of facts, each of a different kind
async fn audit_session(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    user: UserId,
    action: &'static str,
    session: SessionId,
    request_id: &RequestId,
    origin: &Origin,
    at: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    let actor = Actor::User { user_id: user, tenant_id: tenant };
    let entry = AuditEntry {
        action,
        resource_type: "session",
        resource_id: session.to_string(),
        changes: serde_json::json!({}),
    };
    audit::record(conn, tenant, By { actor: &actor, request_id, origin }, &entry, at).await
}

pub(crate) async fn scope(conn: &mut AsyncPgConnection, tenant: TenantId) -> diesel::QueryResult<()> {
    diesel::sql_query("SELECT set_config('app.tenant_id', $1, true)")
        .bind::<Text, _>(tenant.to_string())
        .execute(conn)
        .await
        .map(|_| ())
}

impl Store {
    /// Creates a person.
    pub async fn create_user(&self, new: NewUser) -> Result<User, IdentityError> {
        let (id, now) = (UserId::new(), self.now());
        let created = self
            .in_unscoped(move |conn| {
                Box::pin(async move {
                    let row: UserRow = diesel::sql_query(format!(
                        "INSERT INTO users (id, email, name, phone, status, password_hash, email_verified_at, \
                                            created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7 THEN $8 END, $8, $8) RETURNING {USER_COLUMNS}"
                    ))
                    .bind::<SqlUuid, _>(id.into_uuid())
                    .bind::<Text, _>(new.email.as_str())
                    .bind::<Text, _>(&new.name)
                    .bind::<Nullable<Text>, _>(new.phone.as_deref())
                    .bind::<Text, _>(new.status.as_str())
                    .bind::<Nullable<Text>, _>(new.password_hash.as_deref())
                    .bind::<Bool, _>(new.email_verified)
                    .bind::<Timestamptz, _>(now)
                    .get_result(conn)
                    .await?;
                    Ok(row)
                })
            })
            .await
            .map_err(resolve)?;
        Ok(created.into_credentials()?.user)
    }

    /// Gives `user` a membership of the context's tenant, audited there.
    pub async fn add_membership(
        &self,
        ctx: &TenantContext,
        user: UserId,
        role: Role,
        kind: MembershipKind,
    ) -> Result<MembershipId, IdentityError> {
        let (ctx, id, now) = (ctx.clone(), MembershipId::new(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                diesel::sql_query(
                    "INSERT INTO memberships (tenant_id, id, user_id, role, kind, status, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 'active', $6, $6)",
                )
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<SqlUuid, _>(user.into_uuid())
                .bind::<Text, _>(role.as_str())
                .bind::<Text, _>(kind.as_str())
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                let changes = serde_json::json!({
                    "userId": {"before": null, "after": user},
                    "role": {"before": null, "after": role},
                    "kind": {"before": null, "after": kind},
                });
                let entry =
                    AuditEntry { action: "membership.create", resource_type: "membership", resource_id: id.to_string(), changes };
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(id)
            })
        })
        .await
        .map_err(resolve)
    }

    /// The person with this email, and what sign-in needs about them.
    pub async fn credentials(&self, email: &Email) -> Result<Option<Credentials>, IdentityError> {
        let email = email.as_str().to_owned();
        let row: Option<UserRow> = self
            .in_unscoped(move |conn| {
                Box::pin(async move {
                    Ok(diesel::sql_query(format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1"))
                        .bind::<Text, _>(email)
                        .get_result(conn)
                        .await
                        .optional()?)
                })
            })
            .await
            .map_err(resolve)?;
        row.map(UserRow::into_credentials).transpose()
    }

    /// The person `id`.
    pub async fn user(&self, id: UserId) -> Result<User, IdentityError> {
        let row: Option<UserRow> = self
            .in_unscoped(move |conn| {
                Box::pin(async move {
                    Ok(diesel::sql_query(format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                        .bind::<SqlUuid, _>(id.into_uuid())
                        .get_result(conn)
                        .await
                        .optional()?)
                })
            })
            .await
            .map_err(resolve)?;
        Ok(row.ok_or(IdentityError::InvalidCredentials)?.into_credentials()?.user)
    }

    /// Reserves a sign-in attempt (password or second factor) for `email`
    /// from `client`: counted as a failure in advance (so parallel guesses
    /// count too), with the next attempts blocked after five in a row for 1 s
    /// doubling up to 15 minutes ([`portico_tenancy::login_delay`]); a count
    /// idle for 15 minutes starts over. While blocked: `TooManyAttempts`.
    /// [`Store::clear_login_attempts`] forgives them after a success. The
    /// same whether or not the email has an account.
    pub async fn reserve_login_attempt(&self, email: &Email, client: &str) -> Result<(), IdentityError> {
        #[derive(QueryableByName)]
        struct Blocked {
            #[diesel(sql_type = Nullable<Timestamptz>)]
            blocked_until: Option<DateTime<Utc>>,
        }
        let (hash, client, now) = (token_hash(email.as_str()), client.to_owned(), self.now());
        let blocked: Option<DateTime<Utc>> = self
            .in_unscoped(move |conn| {
                Box::pin(async move {
                    let counted = diesel::sql_query(
                        "INSERT INTO login_throttle AS t (email_hash, client, failures, last_failed_at) \
                         VALUES ($1, $2, 1, $3) \
                         ON CONFLICT (email_hash, client) DO UPDATE SET \
                             failures = CASE WHEN t.last_failed_at < $3 - interval '15 minutes' THEN 1 \
                                             ELSE t.failures + 1 END, \
                             last_failed_at = $3, \
                             blocked_until = CASE \
                                 WHEN t.last_failed_at < $3 - interval '15 minutes' OR t.failures + 1 < 5 THEN NULL \
                                 ELSE $3 + make_interval(secs => least(power(2, least(t.failures + 1 - 5, 20)), 900)) \
                             END \
                         WHERE t.blocked_until IS NULL OR t.blocked_until <= $3",
                    )
                    .bind::<Bytea, _>(&hash)
                    .bind::<Text, _>(&client)
                    .bind::<Timestamptz, _>(now)
                    .execute(conn)
                    .await?;
                    if counted == 1 {
                        return Ok(None);
                    }
                    let row: Blocked = diesel::sql_query(
                        "SELECT blocked_until FROM login_throttle WHERE email_hash = $1 AND client = $2",
                    )
                    .bind::<Bytea, _>(&hash)
                    .bind::<Text, _>(&client)
                    .get_result(conn)
                    .await?;
                    Ok(row.blocked_until)
                })
            })
            .await
            .map_err(resolve)?;
        match blocked {
            Some(until) if until > now => {
                let secs = u64::try_from((until - now).num_milliseconds()).unwrap_or(0).div_ceil(1000).max(1);
                Err(IdentityError::TooManyAttempts { retry_after_secs: secs })
            }
            _ => Ok(()),
        }
    }

    /// Forgets the failed attempts for `email` from `client` (it succeeded).
    pub async fn clear_login_attempts(&self, email: &Email, client: &str) -> Result<(), IdentityError> {
        let (hash, client) = (token_hash(email.as_str()), client.to_owned());
        self.in_unscoped(move |conn| {
            Box::pin(async move {
                diesel::sql_query("DELETE FROM login_throttle WHERE email_hash = $1 AND client = $2")
                    .bind::<Bytea, _>(&hash)
                    .bind::<Text, _>(&client)
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }

    /// The person's memberships with their tenants' names and states
    /// (through a definer function: no tenant is chosen yet).
    pub async fn memberships_of(&self, user: UserId) -> Result<Vec<MembershipView>, IdentityError> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = SqlUuid)]
            id: uuid::Uuid,
            #[diesel(sql_type = SqlUuid)]
            tenant_id: uuid::Uuid,
            #[diesel(sql_type = Text)]
            tenant_slug: String,
            #[diesel(sql_type = Text)]
            tenant_name: String,
            #[diesel(sql_type = Text)]
            tenant_status: String,
            #[diesel(sql_type = Text)]
            role: String,
            #[diesel(sql_type = Text)]
            kind: String,
            #[diesel(sql_type = Text)]
            status: String,
            #[diesel(sql_type = Nullable<SqlUuid>)]
            role_id: Option<uuid::Uuid>,
            #[diesel(sql_type = Nullable<Text>)]
            role_name: Option<String>,
            #[diesel(sql_type = Nullable<diesel::sql_types::Array<Text>>)]
            role_permissions: Option<Vec<String>>,
        }
        let rows: Vec<Row> = self
            .in_unscoped(move |conn| {
                Box::pin(async move {
                    Ok(diesel::sql_query(
                        "SELECT id, tenant_id, tenant_slug, tenant_name, tenant_status, role, kind, status, \
                                role_id, role_name, role_permissions \
                         FROM memberships_of($1)",
                    )
                    .bind::<SqlUuid, _>(user.into_uuid())
                    .load(conn)
                    .await?)
                })
            })
            .await
            .map_err(resolve)?;
        rows.into_iter()
            .map(|row| {
                let corrupt = || IdentityError::Store(portico_kernel::InfraError::internal("membership row"));
                Ok(MembershipView {
                    id: MembershipId::from_uuid(row.id),
                    tenant_id: TenantId::from_uuid(row.tenant_id),
                    tenant_slug: row.tenant_slug,
                    tenant_name: row.tenant_name,
                    tenant_status: TenantStatus::from_storage(&row.tenant_status).ok_or_else(corrupt)?,
                    role: Role::from_storage(&row.role).ok_or_else(corrupt)?,
                    custom_role: match (row.role_id, row.role_name) {
                        (Some(id), Some(name)) => Some(portico_tenancy::CustomRoleGrant {
                            id: portico_kernel::RoleId::from_uuid(id),
                            name,
                            permissions: row.role_permissions.unwrap_or_default(),
                        }),
                        _ => None,
                    },
                    kind: MembershipKind::from_storage(&row.kind).ok_or_else(corrupt)?,
                    status: MembershipStatus::from_storage(&row.status).ok_or_else(corrupt)?,
                })
            })
            .collect()
    }

    /// A successful sign-in: clears the failure count, starts a session with
    /// its first refresh token, and audits it in the tenant signed in to.
    pub async fn start_session(&self, new: NewSession) -> Result<Session, IdentityError> {
        let (id, now) = (SessionId::new(), self.now());
        let expires = now + chrono::TimeDelta::from_std(new.lifetime).unwrap_or(chrono::TimeDelta::MAX);
        self.in_tenant(new.tenant, move |conn| {
            Box::pin(async move {
                diesel::sql_query(
                    "UPDATE users SET last_login_at = $2, updated_at = $2 WHERE id = $1",
                )
                .bind::<SqlUuid, _>(new.user.into_uuid())
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                let row: SessionRow = diesel::sql_query(format!(
                    "INSERT INTO sessions (id, user_id, tenant_id, device, ip, user_agent, created_at, last_used_at, \
                                           expires_at) \
                     VALUES ($1, $2, $3, $4, $5::inet, $6, $7, $7, $8) RETURNING {SESSION_COLUMNS}"
                ))
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<SqlUuid, _>(new.user.into_uuid())
                .bind::<SqlUuid, _>(new.tenant.into_uuid())
                .bind::<Nullable<Text>, _>(new.device.as_deref())
                .bind::<Nullable<Text>, _>(new.origin.ip.map(|ip| ip.to_string()))
                .bind::<Nullable<Text>, _>(new.origin.user_agent.as_deref())
                .bind::<Timestamptz, _>(now)
                .bind::<Timestamptz, _>(expires)
                .get_result(conn)
                .await?;
                insert_token(conn, id, &new.refresh_token, now).await?;
                audit_session(conn, new.tenant, new.user, "session.start", id, &new.request_id, &new.origin, now)
                    .await?;
                Ok(Session::from(row))
            })
        })
        .await
        .map_err(resolve)
    }

    /// Exchanges a refresh token for `replacement`: the presented one is
    /// spent. A spent token presented again ends its whole session (the
    /// token was stolen, or the client is broken) and is audited; an unknown
    /// token, or one of an ended or expired session, is refused.
    pub async fn refresh_session(
        &self,
        presented: &str,
        replacement: &str,
        request_id: &RequestId,
        origin: &Origin,
    ) -> Result<Session, IdentityError> {
        #[derive(QueryableByName)]
        struct Found {
            #[diesel(sql_type = SqlUuid)]
            session_id: uuid::Uuid,
            #[diesel(sql_type = Nullable<Timestamptz>)]
            used_at: Option<DateTime<Utc>>,
        }
        let (hash, replacement, now) = (token_hash(presented), replacement.to_owned(), self.now());
        let (request_id, origin) = (request_id.clone(), origin.clone());
        let outcome = self
            .in_unscoped(move |conn| {
                Box::pin(async move {
                    let found: Option<Found> = diesel::sql_query(
                        "SELECT session_id, used_at FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
                    )
                    .bind::<Bytea, _>(&hash)
                    .get_result(conn)
                    .await
                    .optional()?;
                    let found = found.ok_or(Failure::Domain(IdentityError::InvalidRefreshToken))?;
                    let session: Option<SessionRow> = diesel::sql_query(format!(
                        "SELECT {SESSION_COLUMNS} FROM sessions \
                         WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2 FOR UPDATE"
                    ))
                    .bind::<SqlUuid, _>(found.session_id)
                    .bind::<Timestamptz, _>(now)
                    .get_result(conn)
                    .await
                    .optional()?;
                    let session = session.ok_or(Failure::Domain(IdentityError::InvalidRefreshToken))?;
                    let (id, user, tenant) = (
                        SessionId::from_uuid(session.id),
                        UserId::from_uuid(session.user_id),
                        TenantId::from_uuid(session.tenant_id),
                    );
                    if found.used_at.is_some() {
                        revoke(conn, id, "refresh_token_reused", now).await?;
                        scope(conn, tenant).await?;
                        audit_session(
                            conn,
                            tenant,
                            user,
                            "session.refresh_reused",
                            id,
                            &request_id,
                            &origin,
                            now,
                        )
                        .await?;
                        return Ok(Err(IdentityError::RefreshTokenReused));
                    }
                    diesel::sql_query("UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1")
                        .bind::<Bytea, _>(&hash)
                        .bind::<Timestamptz, _>(now)
                        .execute(conn)
                        .await?;
                    insert_token(conn, id, &replacement, now).await?;
                    let row: SessionRow = diesel::sql_query(format!(
                        "UPDATE sessions SET last_used_at = $2 WHERE id = $1 RETURNING {SESSION_COLUMNS}"
                    ))
                    .bind::<SqlUuid, _>(id.into_uuid())
                    .bind::<Timestamptz, _>(now)
                    .get_result(conn)
                    .await?;
                    scope(conn, tenant).await?;
                    audit_session(conn, tenant, user, "session.refresh", id, &request_id, &origin, now)
                        .await?;
                    Ok(Ok(Session::from(row)))
                })
            })
            .await
            .map_err(resolve)?;
        // A reuse is committed (the session ended) before it is reported.
        outcome
    }

    /// The person's live sessions, newest first.
    pub async fn sessions_of(&self, user: UserId) -> Result<Vec<Session>, IdentityError> {
        let now = self.now();
        let rows: Vec<SessionRow> = self
            .in_unscoped(move |conn| {
                Box::pin(async move {
                    Ok(diesel::sql_query(format!(
                        "SELECT {SESSION_COLUMNS} FROM sessions \
                         WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC, id DESC"
                    ))
                    .bind::<SqlUuid, _>(user.into_uuid())
                    .bind::<Timestamptz, _>(now)
                    .load(conn)
                    .await?)
                })
            })
            .await
            .map_err(resolve)?;
        Ok(rows.into_iter().map(Session::from).collect())
    }

    /// Ends the person's session `id` (sign-out, or from another device),
    /// audited in the tenant it was signed in to. Another person's session
    /// is not found.
    pub async fn end_session(
        &self,
        user: UserId,
        id: SessionId,
        request_id: &RequestId,
        origin: &Origin,
    ) -> Result<(), IdentityError> {
        let (now, request_id, origin) = (self.now(), request_id.clone(), origin.clone());
        self.in_unscoped(move |conn| {
            Box::pin(async move {
                #[derive(QueryableByName)]
                struct Ended {
                    #[diesel(sql_type = SqlUuid)]
                    tenant_id: uuid::Uuid,
                }
                let ended: Option<Ended> = diesel::sql_query(
                    "UPDATE sessions SET revoked_at = $3, revoked_reason = 'signed_out' \
                     WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING tenant_id",
                )
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<SqlUuid, _>(user.into_uuid())
                .bind::<Timestamptz, _>(now)
                .get_result(conn)
                .await
                .optional()?;
                let tenant = TenantId::from_uuid(
                    ended.ok_or(Failure::Domain(IdentityError::SessionNotFound))?.tenant_id,
                );
                scope(conn, tenant).await?;
                audit_session(conn, tenant, user, "session.end", id, &request_id, &origin, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }

    /// Whether session `id` of `user` is live (not ended, not expired).
    pub async fn session_is_live(&self, user: UserId, id: SessionId) -> Result<bool, IdentityError> {
        let now = self.now();
        self.in_unscoped(move |conn| {
            Box::pin(async move {
                #[derive(QueryableByName)]
                struct Live {
                    #[diesel(sql_type = Bool)]
                    live: bool,
                }
                let row: Live = diesel::sql_query(
                    "SELECT EXISTS (SELECT 1 FROM sessions WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL \
                     AND expires_at > $3) AS live",
                )
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<SqlUuid, _>(user.into_uuid())
                .bind::<Timestamptz, _>(now)
                .get_result(conn)
                .await?;
                Ok(row.live)
            })
        })
        .await
        .map_err(resolve)
    }
}

async fn insert_token(
    conn: &mut AsyncPgConnection,
    session: SessionId,
    token: &str,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    diesel::sql_query("INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)")
        .bind::<Bytea, _>(token_hash(token))
        .bind::<SqlUuid, _>(session.into_uuid())
        .bind::<Timestamptz, _>(now)
        .execute(conn)
        .await
        .map(|_| ())
}

async fn revoke(
    conn: &mut AsyncPgConnection,
    session: SessionId,
    reason: &str,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    diesel::sql_query(
        "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind::<SqlUuid, _>(session.into_uuid())
    .bind::<Timestamptz, _>(now)
    .bind::<Text, _>(reason)
    .execute(conn)
    .await
    .map(|_| ())
}

/// An API key as its tenant's administrators see it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f", "name": "invoicing service", "prefix": "ptk_3f9a1c2b7d4e",
    "permissions": ["tenants:read"], "createdAt": "2026-11-23T09:00:00Z", "expiresAt": null,
    "lastUsedAt": "2026-11-23T09:15:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// The key.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: portico_kernel::ApiKeyId,
    /// What it is for.
    pub name: String,
    /// Its visible beginning, to recognise it by.
    pub prefix: String,
    /// What it may do (a subset of its creator's permissions).
    pub permissions: Vec<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was last used (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A key to create: the caller made the secret and checked the permissions.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// What it is for.
    pub name: String,
    /// The whole key (`ptk_<12 hex>_<64 hex>`); only its hash is kept.
    pub key: String,
    /// What it may do.
    pub permissions: Vec<String>,
    /// When it stops working.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Who a valid API key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyPrincipal {
    /// The key.
    pub id: portico_kernel::ApiKeyId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// What it may do.
    pub permissions: Vec<String>,
}

/// The visible prefix of a key: `ptk_` and the next 12 characters.
fn key_prefix(key: &str) -> Option<&str> {
    let prefix = key.get(..16)?;
    (prefix.starts_with("ptk_") && key.as_bytes().get(16) == Some(&b'_')).then_some(prefix)
}

#[derive(QueryableByName)]
struct ApiKeyRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    prefix: String,
    #[diesel(sql_type = diesel::sql_types::Array<Text>)]
    permissions: Vec<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    expires_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(row: ApiKeyRow) -> Self {
        Self {
            id: portico_kernel::ApiKeyId::from_uuid(row.id),
            name: row.name,
            prefix: row.prefix,
            permissions: row.permissions,
            created_at: row.created_at,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
        }
    }
}

const API_KEY_COLUMNS: &str = "id, name, prefix, permissions, created_at, expires_at, last_used_at";

impl Store {
    /// Creates an API key of the context's tenant, audited there.
    pub async fn create_api_key(&self, ctx: &TenantContext, new: NewApiKey) -> Result<ApiKey, IdentityError> {
        let prefix = key_prefix(&new.key).ok_or(IdentityError::InvalidCredentials)?.to_owned();
        let (ctx, id, now) = (ctx.clone(), portico_kernel::ApiKeyId::new(), self.now());
        let creator = match &ctx.actor {
            Actor::User { user_id, .. } => user_id.into_uuid(),
            Actor::ApiKey { key_id, .. } => key_id.into_uuid(),
            Actor::System { .. } => uuid::Uuid::nil(),
        };
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let row: ApiKeyRow = diesel::sql_query(format!(
                    "INSERT INTO api_keys (id, tenant_id, name, prefix, secret_hash, permissions, created_by, \
                                           created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {API_KEY_COLUMNS}"
                ))
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<Text, _>(&new.name)
                .bind::<Text, _>(&prefix)
                .bind::<Bytea, _>(token_hash(&new.key))
                .bind::<diesel::sql_types::Array<Text>, _>(&new.permissions)
                .bind::<SqlUuid, _>(creator)
                .bind::<Timestamptz, _>(now)
                .bind::<Nullable<Timestamptz>, _>(new.expires_at)
                .get_result(conn)
                .await?;
                let key = ApiKey::from(row);
                let entry = AuditEntry::between("api_key.create", "api_key", id, None, Some(&key));
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(key)
            })
        })
        .await
        .map_err(resolve)
    }

    /// The context's tenant's live API keys, newest first.
    pub async fn api_keys(&self, ctx: &TenantContext) -> Result<Vec<ApiKey>, IdentityError> {
        let tenant = ctx.tenant_id;
        let rows: Vec<ApiKeyRow> = self
            .in_tenant(tenant, move |conn| {
                Box::pin(async move {
                    Ok(diesel::sql_query(format!(
                        "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL \
                         ORDER BY created_at DESC, id DESC"
                    ))
                    .bind::<SqlUuid, _>(tenant.into_uuid())
                    .load(conn)
                    .await?)
                })
            })
            .await
            .map_err(resolve)?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    /// Revokes the context's tenant's key `id` (another tenant's is not
    /// found), audited.
    pub async fn revoke_api_key(
        &self,
        ctx: &TenantContext,
        id: portico_kernel::ApiKeyId,
    ) -> Result<(), IdentityError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let revoked = diesel::sql_query(
                    "UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL",
                )
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                if revoked == 0 {
                    return Err(Failure::Domain(IdentityError::ApiKeyNotFound));
                }
                let changes = serde_json::json!({"revokedAt": {"before": null, "after": now}});
                let entry = AuditEntry { action: "api_key.revoke", resource_type: "api_key", resource_id: id.to_string(), changes };
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }

    /// Who `key` is, if it is a live key; its last use is recorded (at most
    /// once a minute, so a busy key does not write on every request).
    pub async fn authenticate_api_key(&self, key: &str) -> Result<Option<ApiKeyPrincipal>, IdentityError> {
        #[derive(QueryableByName)]
        struct Found {
            #[diesel(sql_type = SqlUuid)]
            id: uuid::Uuid,
            #[diesel(sql_type = SqlUuid)]
            tenant_id: uuid::Uuid,
            #[diesel(sql_type = diesel::sql_types::Array<Text>)]
            permissions: Vec<String>,
            #[diesel(sql_type = Bool)]
            stale: bool,
        }
        let Some(prefix) = key_prefix(key).map(str::to_owned) else { return Ok(None) };
        let (hash, now) = (token_hash(key), self.now());
        let found: Option<Found> = self
            .in_unscoped(move |conn| {
                Box::pin(async move {
                    let found: Option<Found> = diesel::sql_query(
                        "SELECT id, tenant_id, permissions, \
                                (last_used_at IS NULL OR last_used_at < $3 - interval '1 minute') AS stale \
                         FROM api_keys WHERE prefix = $1 AND secret_hash = $2 AND revoked_at IS NULL \
                           AND (expires_at IS NULL OR expires_at > $3)",
                    )
                    .bind::<Text, _>(prefix)
                    .bind::<Bytea, _>(hash)
                    .bind::<Timestamptz, _>(now)
                    .get_result(conn)
                    .await
                    .optional()?;
                    // A busy key writes its last use at most once a minute.
                    if let Some(key) = found.as_ref().filter(|key| key.stale) {
                        diesel::sql_query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                            .bind::<SqlUuid, _>(key.id)
                            .bind::<Timestamptz, _>(now)
                            .execute(conn)
                            .await?;
                    }
                    Ok(found)
                })
            })
            .await
            .map_err(resolve)?;
        Ok(found.map(|f| ApiKeyPrincipal {
            id: portico_kernel::ApiKeyId::from_uuid(f.id),
            tenant_id: TenantId::from_uuid(f.tenant_id),
            permissions: f.permissions,
        }))
    }
}

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

/// What a one-time token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneTimePurpose {
    /// Choosing a new password.
    PasswordReset,
    /// Confirming an email address.
    EmailVerification,
}

impl OneTimePurpose {
    const fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::EmailVerification => "email_verification",
        }
    }
}

/// A one-time token to issue, and the email that carries it.
#[derive(Debug, Clone)]
pub struct OneTimeToken {
    /// The person.
    pub user: UserId,
    /// What for.
    pub purpose: OneTimePurpose,
    /// The token (only its hash is kept).
    pub token: String,
    /// The address it goes to.
    pub email: Email,
    /// How long it works.
    pub lifetime: Duration,
    /// The message, sent by the `email.send` job of the platform tenant.
    pub message: portico_kernel::EmailMessage,
    /// The request that asked for it.
    pub request_id: RequestId,
    /// Where it came from.
    pub origin: Origin,
}

impl Store {
    /// Issues a one-time token and enqueues its email, in one transaction
    /// (no email for a token that was not stored, no token without its email).
    pub async fn issue_one_time_token(&self, issue: OneTimeToken) -> Result<(), IdentityError> {
        let now = self.now();
        let expires = now + chrono::TimeDelta::from_std(issue.lifetime).unwrap_or(chrono::TimeDelta::MAX);
        let job = portico_kernel::NewJob::of(&portico_kernel::SendEmail { message: issue.message })
            .map_err(|e| IdentityError::Store(portico_kernel::InfraError::internal(e)))?;
        self.in_tenant(portico_kernel::PLATFORM_TENANT_ID, move |conn| {
            Box::pin(async move {
                // Only the newest link works.
                diesel::sql_query(
                    "UPDATE one_time_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
                )
                .bind::<SqlUuid, _>(issue.user.into_uuid())
                .bind::<Text, _>(issue.purpose.as_str())
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                diesel::sql_query(
                    "INSERT INTO one_time_tokens (token_hash, user_id, purpose, email, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind::<Bytea, _>(token_hash(&issue.token))
                .bind::<SqlUuid, _>(issue.user.into_uuid())
                .bind::<Text, _>(issue.purpose.as_str())
                .bind::<Text, _>(issue.email.as_str())
                .bind::<Timestamptz, _>(now)
                .bind::<Timestamptz, _>(expires)
                .execute(conn)
                .await?;
                crate::jobs::enqueue_in(conn, portico_kernel::PLATFORM_TENANT_ID, &job, now).await?;
                let action = match issue.purpose {
                    OneTimePurpose::PasswordReset => "user.password_reset_requested",
                    OneTimePurpose::EmailVerification => "user.email_verification_sent",
                };
                audit_person(conn, issue.user, action, &issue.request_id, &issue.origin, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }

    /// Sets a new password with a reset token: the token is spent, every
    /// session of the person ends, the failure count clears, and the change
    /// is audited in each tenant the person belongs to. MFA stays as it was:
    /// the next sign-in still asks for it.
    pub async fn reset_password(
        &self,
        token: &str,
        password_hash: String,
        notice: portico_kernel::EmailMessage,
        request_id: &RequestId,
        origin: &Origin,
    ) -> Result<UserId, IdentityError> {
        let (hash, now, request_id, origin) =
            (token_hash(token), self.now(), request_id.clone(), origin.clone());
        self.in_unscoped(move |conn| {
            Box::pin(async move {
                let (user, email) = spend(conn, &hash, OneTimePurpose::PasswordReset, now).await?;
                // Every other link to reset it dies with this one.
                diesel::sql_query(
                    "UPDATE one_time_tokens SET used_at = $2 \
                     WHERE user_id = $1 AND purpose = 'password_reset' AND used_at IS NULL",
                )
                .bind::<SqlUuid, _>(user.into_uuid())
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                notify(conn, notice, &email, now).await?;
                diesel::sql_query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
                    .bind::<SqlUuid, _>(user.into_uuid())
                    .bind::<Text, _>(&password_hash)
                    .bind::<Timestamptz, _>(now)
                    .execute(conn)
                    .await?;
                diesel::sql_query(
                    "UPDATE sessions SET revoked_at = $2, revoked_reason = 'password_reset' \
                     WHERE user_id = $1 AND revoked_at IS NULL",
                )
                .bind::<SqlUuid, _>(user.into_uuid())
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                audit_person(conn, user, "user.password_reset", &request_id, &origin, now).await?;
                Ok(user)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Confirms an email address with a verification token (spent by it),
    /// if the person's address is still the one it was sent to.
    pub async fn verify_email(
        &self,
        token: &str,
        request_id: &RequestId,
        origin: &Origin,
    ) -> Result<UserId, IdentityError> {
        let (hash, now, request_id, origin) =
            (token_hash(token), self.now(), request_id.clone(), origin.clone());
        self.in_unscoped(move |conn| {
            Box::pin(async move {
                let (user, email) = spend(conn, &hash, OneTimePurpose::EmailVerification, now).await?;
                let verified = diesel::sql_query(
                    "UPDATE users SET email_verified_at = $3, updated_at = $3 WHERE id = $1 AND email = $2",
                )
                .bind::<SqlUuid, _>(user.into_uuid())
                .bind::<Text, _>(&email)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                if verified == 0 {
                    return Err(Failure::Domain(IdentityError::InvalidOneTimeToken));
                }
                audit_person(conn, user, "user.email_verified", &request_id, &origin, now).await?;
                Ok(user)
            })
        })
        .await
        .map_err(resolve)
    }
}

/// Spends a live one-time token of `purpose`: its person and address.
async fn spend(
    conn: &mut AsyncPgConnection,
    hash: &[u8],
    purpose: OneTimePurpose,
    now: DateTime<Utc>,
) -> Result<(UserId, String), IdentityFailure> {
    #[derive(QueryableByName)]
    struct Spent {
        #[diesel(sql_type = SqlUuid)]
        user_id: uuid::Uuid,
        #[diesel(sql_type = Text)]
        email: String,
    }
    let spent: Option<Spent> = diesel::sql_query(
        "UPDATE one_time_tokens SET used_at = $3 \
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 \
         RETURNING user_id, email",
    )
    .bind::<Bytea, _>(hash)
    .bind::<Text, _>(purpose.as_str())
    .bind::<Timestamptz, _>(now)
    .get_result(conn)
    .await
    .optional()?;
    let spent = spent.ok_or(Failure::Domain(IdentityError::InvalidOneTimeToken))?;
    Ok((UserId::from_uuid(spent.user_id), spent.email))
}

/// Enqueues `notice` to `to` (the platform tenant's `email.send` job) in the caller's transaction.
pub(crate) async fn notify(
    conn: &mut AsyncPgConnection,
    mut notice: portico_kernel::EmailMessage,
    to: &str,
    now: DateTime<Utc>,
) -> Result<(), IdentityFailure> {
    notice.to = vec![portico_kernel::Mailbox::address(to)];
    let job = portico_kernel::NewJob::of(&portico_kernel::SendEmail { message: notice })
        .map_err(|e| Failure::Infra(portico_kernel::InfraError::internal(e)))?;
    scope(conn, portico_kernel::PLATFORM_TENANT_ID).await?;
    crate::jobs::enqueue_in(conn, portico_kernel::PLATFORM_TENANT_ID, &job, now).await?;
    Ok(())
}

/// Audits a change to a person in the trail of every tenant they belong to.
async fn audit_person(
    conn: &mut AsyncPgConnection,
    user: UserId,
    action: &'static str,
    request_id: &RequestId,
    origin: &Origin,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    #[derive(QueryableByName)]
    struct Member {
        #[diesel(sql_type = SqlUuid)]
        tenant_id: uuid::Uuid,
    }
    let tenants: Vec<Member> = diesel::sql_query("SELECT tenant_id FROM memberships_of($1)")
        .bind::<SqlUuid, _>(user.into_uuid())
        .load(conn)
        .await?;
    for member in tenants {
        let tenant = TenantId::from_uuid(member.tenant_id);
        scope(conn, tenant).await?;
        let actor = Actor::User { user_id: user, tenant_id: tenant };
        let entry = AuditEntry {
            action,
            resource_type: "user",
            resource_id: user.to_string(),
            changes: serde_json::json!({}),
        };
        audit::record(conn, tenant, By { actor: &actor, request_id, origin }, &entry, now).await?;
    }
    Ok(())
}

impl Store {
    /// Moves the person's live session `id` to `tenant` (a membership the
    /// caller checked) with a new refresh token; the previous ones are spent.
    /// Audited in the tenant switched to.
    pub async fn switch_session(
        &self,
        user: UserId,
        id: SessionId,
        tenant: TenantId,
        replacement: &str,
        request_id: &RequestId,
        origin: &Origin,
    ) -> Result<Session, IdentityError> {
        let (now, replacement, request_id, origin) =
            (self.now(), replacement.to_owned(), request_id.clone(), origin.clone());
        self.in_unscoped(move |conn| {
            Box::pin(async move {
                let row: Option<SessionRow> = diesel::sql_query(format!(
                    "UPDATE sessions SET tenant_id = $3, last_used_at = $4 \
                     WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $4 \
                     RETURNING {SESSION_COLUMNS}"
                ))
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<SqlUuid, _>(user.into_uuid())
                .bind::<SqlUuid, _>(tenant.into_uuid())
                .bind::<Timestamptz, _>(now)
                .get_result(conn)
                .await
                .optional()?;
                let row = row.ok_or(Failure::Domain(IdentityError::SessionNotFound))?;
                diesel::sql_query(
                    "UPDATE refresh_tokens SET used_at = $2 WHERE session_id = $1 AND used_at IS NULL",
                )
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                insert_token(conn, id, &replacement, now).await?;
                scope(conn, tenant).await?;
                audit_session(conn, tenant, user, "session.switch_tenant", id, &request_id, &origin, now)
                    .await?;
                Ok(Session::from(row))
            })
        })
        .await
        .map_err(resolve)
    }
}

/// A person's second factor, as stored (the secrets still sealed).
#[derive(Debug, Clone, Default)]
pub struct MfaState {
    /// Whether sign-in asks for it.
    pub enabled: bool,
    /// The sealed TOTP secret in force.
    pub secret: Option<Vec<u8>>,
    /// A sealed secret set up but not confirmed yet.
    pub pending: Option<Vec<u8>>,
    /// The last step whose code was accepted.
    pub last_step: Option<u64>,
}

impl Store {
    /// The person's second factor.
    pub async fn mfa_state(&self, user: UserId) -> Result<MfaState, IdentityError> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Bool)]
            mfa_enabled: bool,
            #[diesel(sql_type = Nullable<Bytea>)]
            mfa_secret: Option<Vec<u8>>,
            #[diesel(sql_type = Nullable<Bytea>)]
            mfa_pending: Option<Vec<u8>>,
            #[diesel(sql_type = Nullable<diesel::sql_types::BigInt>)]
            mfa_last_step: Option<i64>,
        }
        let row: Option<Row> = self
            .in_unscoped(move |conn| {
                Box::pin(async move {
                    Ok(diesel::sql_query(
                        "SELECT mfa_enabled, mfa_secret, mfa_pending, mfa_last_step FROM users WHERE id = $1",
                    )
                    .bind::<SqlUuid, _>(user.into_uuid())
                    .get_result(conn)
                    .await
                    .optional()?)
                })
            })
            .await
            .map_err(resolve)?;
        let row = row.ok_or(IdentityError::InvalidCredentials)?;
        Ok(MfaState {
            enabled: row.mfa_enabled,
            secret: row.mfa_secret,
            pending: row.mfa_pending,
            last_step: row.mfa_last_step.and_then(|s| u64::try_from(s).ok()),
        })
    }

    /// Keeps a sealed secret being set up (replacing an earlier unconfirmed one), audited.
    pub async fn set_mfa_pending(
        &self,
        user: UserId,
        sealed: Vec<u8>,
        request_id: &RequestId,
        origin: &Origin,
    ) -> Result<(), IdentityError> {
        let (now, request_id, origin) = (self.now(), request_id.clone(), origin.clone());
        self.in_unscoped(move |conn| {
            Box::pin(async move {
                diesel::sql_query("UPDATE users SET mfa_pending = $2, updated_at = $3 WHERE id = $1")
                    .bind::<SqlUuid, _>(user.into_uuid())
                    .bind::<Bytea, _>(&sealed)
                    .bind::<Timestamptz, _>(now)
                    .execute(conn)
                    .await?;
                audit_person(conn, user, "user.mfa_setup_started", &request_id, &origin, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }

    /// Records that the code of `step` was used, if no later or equal step
    /// was: `false` means the code was already spent (each code works once).
    pub async fn accept_mfa_step(&self, user: UserId, step: u64) -> Result<bool, IdentityError> {
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        self.in_unscoped(move |conn| {
            Box::pin(async move {
                let accepted = diesel::sql_query(
                    "UPDATE users SET mfa_last_step = $2 WHERE id = $1 AND (mfa_last_step IS NULL OR mfa_last_step < $2)",
                )
                .bind::<SqlUuid, _>(user.into_uuid())
                .bind::<diesel::sql_types::BigInt, _>(step)
                .execute(conn)
                .await?;
                Ok(accepted == 1)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Spends a recovery code (by its hash): `false` if it is not one of the person's.
    pub async fn use_recovery_code(&self, user: UserId, hash: &str) -> Result<bool, IdentityError> {
        let hash = hash.to_owned();
        self.in_unscoped(move |conn| {
            Box::pin(async move {
                let used = diesel::sql_query(
                    "UPDATE users SET mfa_recovery = array_remove(mfa_recovery, $2) \
                     WHERE id = $1 AND mfa_enabled AND $2 = ANY (mfa_recovery)",
                )
                .bind::<SqlUuid, _>(user.into_uuid())
                .bind::<Text, _>(&hash)
                .execute(conn)
                .await?;
                Ok(used == 1)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Turns MFA on with the pending secret (confirmed by a code of `step`)
    /// and these recovery code hashes; or off (`None`), forgetting the
    /// secret and codes. Audited in every tenant of the person.
    pub async fn set_mfa(
        &self,
        user: UserId,
        on: Option<(u64, Vec<String>)>,
        notice: portico_kernel::EmailMessage,
        request_id: &RequestId,
        origin: &Origin,
    ) -> Result<(), IdentityError> {
        let (now, request_id, origin) = (self.now(), request_id.clone(), origin.clone());
        self.in_unscoped(move |conn| {
            Box::pin(async move {
                let (changed, action) = match on {
                    Some((step, recovery)) => (
                        diesel::sql_query(
                            "UPDATE users SET mfa_enabled = true, mfa_secret = mfa_pending, mfa_pending = NULL, \
                             mfa_last_step = $2, mfa_recovery = $3, updated_at = $4 \
                             WHERE id = $1 AND mfa_pending IS NOT NULL",
                        )
                        .bind::<SqlUuid, _>(user.into_uuid())
                        .bind::<diesel::sql_types::BigInt, _>(i64::try_from(step).unwrap_or(i64::MAX))
                        .bind::<diesel::sql_types::Array<Text>, _>(&recovery)
                        .bind::<Timestamptz, _>(now)
                        .execute(conn)
                        .await?,
                        "user.mfa_enabled",
                    ),
                    None => (
                        diesel::sql_query(
                            "UPDATE users SET mfa_enabled = false, mfa_secret = NULL, mfa_pending = NULL, \
                             mfa_recovery = '{}', updated_at = $2 WHERE id = $1",
                        )
                        .bind::<SqlUuid, _>(user.into_uuid())
                        .bind::<Timestamptz, _>(now)
                        .execute(conn)
                        .await?,
                        "user.mfa_disabled",
                    ),
                };
                if changed != 1 {
                    return Err(Failure::Domain(IdentityError::InvalidCredentials));
                }
                audit_person(conn, user, action, &request_id, &origin, now).await?;
                let email: String = diesel::sql_query("SELECT email AS line FROM users WHERE id = $1")
                    .bind::<SqlUuid, _>(user.into_uuid())
                    .get_result::<Line>(conn)
                    .await?
                    .line;
                notify(conn, notice, &email, now).await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }
}

/// What a sweep of the identity tables removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdentityPruned {
    /// Sessions ended or expired more than 30 days ago (with their refresh tokens).
    pub sessions: usize,
    /// Spent refresh tokens of live sessions, older than a day.
    pub refresh_tokens: usize,
    /// Emailed tokens used or expired more than a day ago.
    pub one_time_tokens: usize,
    /// Failed-attempt counts idle for a day.
    pub login_throttle: usize,
}

impl Store {
    /// Deletes what identity no longer needs: long-ended sessions (their
    /// addresses and user agents go with them), spent refresh tokens
    /// (reuse is recognised within a day; after that an old token is simply
    /// unknown), old emailed tokens and idle failure counts.
    pub async fn prune_identity(&self) -> Result<IdentityPruned, portico_kernel::InfraError> {
        let now = self.now();
        self.as_platform(move |conn| {
            Box::pin(async move {
                let cut = |sql: &'static str| diesel::sql_query(sql).bind::<Timestamptz, _>(now);
                let ended = "SELECT id FROM sessions WHERE coalesce(revoked_at, expires_at) < $1 - interval '30 days'";
                diesel::sql_query(format!("DELETE FROM refresh_tokens WHERE session_id IN ({ended})"))
                    .bind::<Timestamptz, _>(now)
                    .execute(conn)
                    .await?;
                let sessions = diesel::sql_query(format!("DELETE FROM sessions WHERE id IN ({ended})"))
                    .bind::<Timestamptz, _>(now)
                    .execute(conn)
                    .await?;
                let refresh_tokens =
                    cut("DELETE FROM refresh_tokens WHERE used_at < $1 - interval '1 day'").execute(conn).await?;
                let one_time_tokens = cut(
                    "DELETE FROM one_time_tokens WHERE coalesce(used_at, expires_at) < $1 - interval '1 day'",
                )
                .execute(conn)
                .await?;
                let login_throttle =
                    cut("DELETE FROM login_throttle WHERE last_failed_at < $1 - interval '1 day'").execute(conn).await?;
                cut("DELETE FROM spent_challenges WHERE expires_at < $1").execute(conn).await?;
                Ok(IdentityPruned { sessions, refresh_tokens, one_time_tokens, login_throttle })
            })
        })
        .await
        .map_err(Failure::into_infra)
    }
}

impl Store {
    /// Ends the session a refresh token (not yet spent) belongs to: sign-out
    /// when the access token has expired. `InvalidRefreshToken` otherwise.
    pub async fn end_session_by_refresh(
        &self,
        token: &str,
        request_id: &RequestId,
        origin: &Origin,
    ) -> Result<(), IdentityError> {
        #[derive(QueryableByName)]
        struct Owner {
            #[diesel(sql_type = SqlUuid)]
            session_id: uuid::Uuid,
            #[diesel(sql_type = SqlUuid)]
            user_id: uuid::Uuid,
        }
        let (hash, now) = (token_hash(token), self.now());
        let owner: Option<Owner> = self
            .in_unscoped(move |conn| {
                Box::pin(async move {
                    Ok(diesel::sql_query(
                        "SELECT r.session_id, s.user_id FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id \
                         WHERE r.token_hash = $1 AND r.used_at IS NULL AND s.revoked_at IS NULL AND s.expires_at > $2",
                    )
                    .bind::<Bytea, _>(&hash)
                    .bind::<Timestamptz, _>(now)
                    .get_result(conn)
                    .await
                    .optional()?)
                })
            })
            .await
            .map_err(resolve)?;
        let owner = owner.ok_or(IdentityError::InvalidRefreshToken)?;
        self.end_session(
            UserId::from_uuid(owner.user_id),
            SessionId::from_uuid(owner.session_id),
            request_id,
            origin,
        )
        .await
    }
}

impl Store {
    /// Records that challenge `id` (valid until `expires_at`) was used:
    /// `false` if it had been already.
    pub async fn spend_challenge(
        &self,
        id: uuid::Uuid,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, IdentityError> {
        self.in_unscoped(move |conn| {
            Box::pin(async move {
                let inserted = diesel::sql_query(
                    "INSERT INTO spent_challenges (id, expires_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                )
                .bind::<SqlUuid, _>(id)
                .bind::<Timestamptz, _>(expires_at)
                .execute(conn)
                .await?;
                Ok(inserted == 1)
            })
        })
        .await
        .map_err(resolve)
    }
}
