//! Sign-in and sessions (bearer mode): a password sign-in gives a 15-minute
//! access token and a refresh token bound to a session; each refresh spends
//! its token and returns a new one.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use portico_kernel::{ErrorKind, SessionId, TenantId};
use portico_store::{NewSession, Session};
use portico_tenancy::{
    Email, IdentityError, MembershipView, TenantChoice, User, UserStatus, choose_tenant, mfa, password,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{Auth, TokenKeys};
use crate::client::origin;
use crate::db::Db;
use crate::envelope;
use crate::error::ApiError;
use crate::json::Json;
#[allow(unused_imports)] // the OpenAPI attributes name these
use crate::openapi::{
    AcceptedEnvelope, ErrorEnvelope, MeEnvelope, MfaSetupEnvelope, SessionListEnvelope, SignedInEnvelope,
};
use crate::request_id::of as request_id;

/// Lifetime of an access token.
pub const ACCESS_TTL_SECS: i64 = 15 * 60;
/// Absolute lifetime of a session (refreshing does not extend it).
pub const SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

impl From<IdentityError> for ApiError {
    fn from(error: IdentityError) -> Self {
        match &error {
            IdentityError::TenantSelectionRequired(tenants) => {
                let tenants: Vec<_> =
                    tenants.iter().map(|(name, slug)| json!({"name": name, "slug": slug})).collect();
                Self::from_domain(&error).details(json!({ "tenants": tenants }))
            }
            IdentityError::TooManyAttempts { retry_after_secs } => Self::from_domain(&error)
                .details(json!({ "retryAfterSeconds": retry_after_secs }))
                .retry_after(*retry_after_secs),
            _ => Self::from_domain(&error),
        }
    }
}

/// `POST /api/v1/auth/login`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"email": "owner@acme.example", "password": "correct horse battery", "tenant": "acme"}))]
pub struct LoginRequest {
    /// The account's email (any case).
    pub email: String,
    /// The password.
    pub password: String,
    /// The tenant to sign in to, by slug or id; needed when the person belongs to several.
    #[serde(default)]
    pub tenant: Option<String>,
    /// What the client calls itself ("Pixel 8", "portal"), shown in the session list.
    #[serde(default)]
    pub device: Option<String>,
    /// `bearer` (default): tokens in the answer, for apps and services. `cookie`: the portal's
    /// browser mode; tokens go into `__Host-` cookies the page cannot read, and the answer
    /// carries the CSRF token to repeat in `X-CSRF-Token` on every change.
    #[serde(default)]
    pub mode: Mode,
}

/// How a client holds its tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// In the answer, sent back as `Authorization: Bearer`.
    #[default]
    Bearer,
    /// In cookies (browser mode).
    Cookie,
}

/// `POST /api/v1/auth/refresh`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"refreshToken": "5f0c3c1e9b0d4f7a8e2b6c4d1a3f5e7b9c0d2e4f6a8b0c1d3e5f7a9b1c3d5e7f"}))]
pub struct RefreshRequest {
    /// The refresh token of the last sign-in or refresh; absent in browser mode (it is in its
    /// cookie, and `X-CSRF-Token` must be sent).
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// The tenant a token is for.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantRef {
    /// Its id.
    #[schema(value_type = String, format = Uuid)]
    pub id: TenantId,
    /// Its slug.
    pub slug: String,
    /// Its name.
    pub name: String,
}

/// What a sign-in or refresh returns.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "accessToken": "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiIsImtpZCI6IjFhMmIzYzRkNWU2ZjdhOGIifQ.e30.sig",
    "tokenType": "Bearer", "expiresIn": 900,
    "refreshToken": "5f0c3c1e9b0d4f7a8e2b6c4d1a3f5e7b9c0d2e4f6a8b0c1d3e5f7a9b1c3d5e7f",
    "sessionId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f",
    "tenant": {"id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e60", "slug": "acme", "name": "Acme Property"},
    "role": "owner", "permissions": ["tenants:read", "tenants:write", "audit:read"], "mfaSetupRequired": false
}))]
pub struct SignedIn {
    /// A JWT for `Authorization: Bearer`, valid for `expiresIn` seconds.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds the access token is valid.
    pub expires_in: i64,
    /// Single use: exchange it at `/api/v1/auth/refresh` for new tokens.
    pub refresh_token: String,
    /// The session.
    #[schema(value_type = String, format = Uuid)]
    pub session_id: SessionId,
    /// The tenant signed in to.
    pub tenant: TenantRef,
    /// The role in it (`custom` for one of the tenant's own roles).
    pub role: &'static str,
    /// What the role may do there (none while `mfaSetupRequired`).
    pub permissions: Vec<String>,
    /// An administrator requires a second factor: set one up
    /// (`/api/v1/auth/mfa/setup`), then refresh to get the permissions.
    pub mfa_setup_required: bool,
}

/// What a sign-in or refresh returns in browser mode (the tokens are in cookies).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "csrfToken": "3c1e9b0d4f7a8e2b6c4d1a3f5e7b9c0d2e4f6a8b0c1d3e5f7a9b1c3d5e7f5f0c", "expiresIn": 900,
    "sessionId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f",
    "tenant": {"id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e60", "slug": "acme", "name": "Acme Property"},
    "role": "owner", "permissions": ["tenants:read", "tenants:write", "audit:read"], "mfaSetupRequired": false
}))]
pub struct BrowserSignedIn {
    /// Repeat it in `X-CSRF-Token` on every POST, PUT, PATCH and DELETE (it is also in the
    /// readable `__Host-portico-csrf` cookie).
    pub csrf_token: String,
    /// Seconds the access cookie is valid.
    pub expires_in: i64,
    /// The session.
    #[schema(value_type = String, format = Uuid)]
    pub session_id: SessionId,
    /// The tenant signed in to.
    pub tenant: TenantRef,
    /// The role in it (`custom` for one of the tenant's own roles).
    pub role: &'static str,
    /// What the role may do there (none while `mfaSetupRequired`).
    pub permissions: Vec<String>,
    /// An administrator requires a second factor: set one up
    /// (`/api/v1/auth/mfa/setup`), then refresh to get the permissions.
    pub mfa_setup_required: bool,
}

/// The answer in browser mode: cookies set, no token in the body.
fn browser_answer(signed: SignedIn) -> Result<HttpResponse, ApiError> {
    let csrf = new_refresh_token()?;
    let mut response = HttpResponse::Ok();
    let lifetime = i64::try_from(SESSION_LIFETIME.as_secs()).unwrap_or(i64::MAX);
    crate::browser::set_cookies(
        &mut response,
        signed.access_token,
        signed.expires_in,
        signed.refresh_token,
        lifetime,
        csrf.clone(),
    );
    let body = BrowserSignedIn {
        csrf_token: csrf,
        expires_in: signed.expires_in,
        session_id: signed.session_id,
        tenant: signed.tenant,
        role: signed.role,
        permissions: signed.permissions,
        mfa_setup_required: signed.mfa_setup_required,
    };
    Ok(response.json(json!({"success": true, "data": body})))
}

/// `GET /api/v1/auth/me`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    /// The person.
    pub user: User,
    /// The tenant the token is for.
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    /// The token's permissions there.
    pub permissions: Vec<String>,
    /// Every tenant the person may sign in to.
    pub tenants: Vec<TenantRef>,
}

/// Runs password hashing (19 MiB and tens of milliseconds each) off the
/// async workers, at most one per core at a time: a burst of sign-ins
/// queues instead of exhausting memory and the blocking pool.
pub(crate) async fn hashing<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let permits = PERMITS.get_or_init(|| {
        tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
        )
    });
    let failed = || ApiError::new(ErrorKind::Internal, "internal", "Something went wrong on our side.");
    let _permit = permits.acquire().await.map_err(|_| failed())?;
    web::block(work).await.map_err(|_| failed())
}

/// 256 random bits, as 64 hex digits.
fn new_refresh_token() -> Result<String, ApiError> {
    Ok(mfa::random_hex::<32>()?)
}

/// The signed-in answer for `user` in `membership` on `session`.
fn signed_in(
    keys: &TokenKeys,
    user: &User,
    membership: &MembershipView,
    session: SessionId,
    refresh_token: String,
) -> Result<SignedIn, ApiError> {
    let mfa_setup_required = user.mfa_required && !user.mfa_enabled;
    let permissions = if mfa_setup_required { Vec::new() } else { membership.permissions() };
    let access_token = keys
        .mint_for_session(user, membership, &permissions, session, ACCESS_TTL_SECS)
        .map_err(|_| ApiError::new(ErrorKind::Internal, "internal", "The token could not be signed."))?;
    Ok(SignedIn {
        access_token,
        token_type: "Bearer",
        expires_in: ACCESS_TTL_SECS,
        refresh_token,
        session_id: session,
        tenant: TenantRef {
            id: membership.tenant_id,
            slug: membership.tenant_slug.clone(),
            name: membership.tenant_name.clone(),
        },
        role: membership.role.as_str(),
        permissions,
        mfa_setup_required,
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in: tokens for the chosen tenant. In browser mode (`\"mode\": \"cookie\"`) the tokens are set as `__Host-` cookies instead and the body is a `BrowserSignedIn` with the CSRF token.", body = SignedInEnvelope),
        (status = 401, description = "Wrong email or password (`auth.invalid_credentials`), the same answer for both.", body = ErrorEnvelope),
        (status = 403, description = "The account cannot sign in (`auth.account_disabled`), or has no membership of the named tenant (`auth.no_membership`).", body = ErrorEnvelope),
        (status = 409, description = "Several tenants and none named (`auth.tenant_selection_required`): `details.tenants` lists their names and slugs.", body = ErrorEnvelope),
        (status = 422, description = "Not an email address, or the body is invalid.", body = ErrorEnvelope),
        (status = 429, description = "Too many failed sign-ins for this account (`auth.too_many_attempts`) or from this address; see `Retry-After`.", body = ErrorEnvelope),
    ),
    security(())
)]
/// Signs in with email and password.
pub async fn login(
    req: HttpRequest,
    store: Db,
    keys: web::Data<TokenKeys>,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest { email, password: secret, tenant, device, mode } = body.into_inner();
    let email = Email::parse(&email)?;
    let client = client_of(&req);
    // Counted before the check, known email or not (parallel guesses count too).
    store.reserve_login_attempt(&email, &client).await?;
    let credentials = store.credentials(&email).await?;
    // An unknown email costs the same time as a wrong password.
    let stored = credentials.as_ref().and_then(|c| c.password_hash.clone());
    let matches =
        hashing(move || password::verify(&secret, stored.as_deref().unwrap_or(password::decoy_hash())))
            .await?;
    let Some(credentials) = credentials else { return Err(IdentityError::InvalidCredentials.into()) };
    let user = credentials.user;
    if !matches || credentials.password_hash.is_none() {
        tracing::info!(user = %user.id, "sign-in refused: wrong password");
        return Err(IdentityError::InvalidCredentials.into());
    }
    store.clear_login_attempts(&email, &client).await?;
    if user.status != UserStatus::Active {
        return Err(IdentityError::AccountDisabled.into());
    }
    let device = device.map(|d| d.chars().filter(|c| !c.is_control()).take(100).collect::<String>());
    // The tenant is settled before a second factor is asked for (no code is
    // spent on a sign-in that would then need a choice).
    let membership = membership_for(&store, &user, tenant.as_deref()).await?;
    let tenant = Some(membership.tenant_id.to_string());
    if user.mfa_enabled {
        // The password was right; the tokens wait for the second factor.
        let now = chrono::Utc::now().timestamp();
        let challenge = crate::auth::Challenge {
            jti: uuid::Uuid::new_v4(),
            sub: user.id,
            purpose: crate::auth::Challenge::PURPOSE.to_owned(),
            tenant,
            device,
            cookie: mode == Mode::Cookie,
            iat: now,
            exp: now + CHALLENGE_TTL_SECS,
        };
        let challenge = keys.sign_challenge(&challenge).map_err(|_| {
            ApiError::new(ErrorKind::Internal, "internal", "The challenge could not be signed.")
        })?;
        return Ok(HttpResponse::Accepted().json(json!({
            "success": true,
            "data": {"mfaRequired": true, "challenge": challenge, "expiresIn": CHALLENGE_TTL_SECS},
        })));
    }
    finish_sign_in(&req, &store, &keys, &user, tenant.as_deref(), device, mode).await
}

/// The membership a sign-in gets, or why none.
async fn membership_for(store: &Db, user: &User, tenant: Option<&str>) -> Result<MembershipView, ApiError> {
    match choose_tenant(store.memberships_of(user.id).await?, tenant) {
        TenantChoice::Chosen(membership) => Ok(membership),
        TenantChoice::SelectionRequired(options) => {
            let names = options.into_iter().map(|m| (m.tenant_name, m.tenant_slug)).collect();
            Err(IdentityError::TenantSelectionRequired(names).into())
        }
        TenantChoice::NoMembership => Err(IdentityError::NoMembership.into()),
    }
}

/// Whose failed sign-ins these are, network-wise (an IPv4 address or an IPv6 /64).
fn client_of(req: &HttpRequest) -> String {
    crate::client::client_key(crate::client::client_address(req))
}

/// Re-authentication for a sensitive change: the person's current password
/// (counted like a sign-in attempt).
async fn confirm_password(
    req: &HttpRequest,
    store: &Db,
    user: &User,
    secret: String,
) -> Result<(), ApiError> {
    let client = client_of(req);
    store.reserve_login_attempt(&user.email, &client).await?;
    let stored = store.credentials(&user.email).await?.and_then(|c| c.password_hash);
    let matches =
        hashing(move || password::verify(&secret, stored.as_deref().unwrap_or(password::decoy_hash())))
            .await?;
    if !matches {
        return Err(IdentityError::InvalidCredentials.into());
    }
    store.clear_login_attempts(&user.email, &client).await?;
    Ok(())
}

/// How long an MFA challenge lasts.
pub const CHALLENGE_TTL_SECS: i64 = 5 * 60;

/// The end of every sign-in: the membership, the session and the tokens.
async fn finish_sign_in(
    req: &HttpRequest,
    store: &Db,
    keys: &TokenKeys,
    user: &User,
    tenant: Option<&str>,
    device: Option<String>,
    mode: Mode,
) -> Result<HttpResponse, ApiError> {
    let membership = membership_for(store, user, tenant).await?;
    let refresh_token = new_refresh_token()?;
    let session = store
        .start_session(NewSession {
            user: user.id,
            tenant: membership.tenant_id,
            device,
            origin: origin(req),
            request_id: request_id(req),
            refresh_token: refresh_token.clone(),
            lifetime: SESSION_LIFETIME,
        })
        .await?;
    tracing::info!(user = %user.id, session = %session.id, tenant = %membership.tenant_id, "signed in");
    let signed = signed_in(keys, user, &membership, session.id, refresh_token)?;
    match mode {
        Mode::Bearer => Ok(envelope::ok(signed)),
        Mode::Cookie => browser_answer(signed),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens; the presented refresh token is spent. In browser mode (no `refreshToken`: the cookie is used, with `X-CSRF-Token`) new cookies are set and the body is a `BrowserSignedIn`.", body = SignedInEnvelope),
        (status = 403, description = "Browser mode without the CSRF header matching its cookie (`auth.csrf_failed`).", body = ErrorEnvelope),
        (status = 401, description = "Unknown, spent or expired refresh token (`auth.invalid_refresh_token`); a spent one presented again ends its session (`auth.refresh_token_reused`).", body = ErrorEnvelope),
    ),
    security(())
)]
/// Exchanges a refresh token for new tokens (the account and membership must still be usable: 403 otherwise).
pub async fn refresh(
    req: HttpRequest,
    store: Db,
    keys: web::Data<TokenKeys>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let (presented, browser) = match body.into_inner().refresh_token {
        Some(token) => (token, false),
        None => {
            let token = crate::browser::cookie_value(&req, crate::browser::REFRESH_COOKIE)
                .ok_or(IdentityError::InvalidRefreshToken)?;
            crate::browser::check_csrf(&req)?;
            (token, true)
        }
    };
    let replacement = new_refresh_token()?;
    let session = store.refresh_session(&presented, &replacement, &request_id(&req), &origin(&req)).await?;
    let user = store.user(session.user_id).await?;
    if user.status != UserStatus::Active {
        return Err(IdentityError::AccountDisabled.into());
    }
    let membership = store
        .memberships_of(user.id)
        .await?
        .into_iter()
        .find(|m| m.tenant_id == session.tenant_id && m.usable())
        .ok_or(IdentityError::NoMembership)?;
    let signed = signed_in(&keys, &user, &membership, session.id, replacement)?;
    if browser { browser_answer(signed) } else { Ok(envelope::ok(signed)) }
}

/// The session of a signed-in request's token; 401 for a token of no session.
fn session_of(auth: &Auth) -> Result<SessionId, ApiError> {
    auth.person()?.sid.ok_or_else(|| {
        ApiError::new(ErrorKind::Unauthorized, "auth.not_a_session", "This token belongs to no session.")
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    responses(
        (status = 204, description = "The session is ended: its refresh token no longer works."),
        (status = 401, description = "No valid token, or a token of no session.", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
/// Signs out: ends the token's session. In browser mode it also works once
/// the access cookie has expired: the refresh cookie (with `X-CSRF-Token`)
/// names the session; the cookies are cleared either way.
pub async fn logout(req: HttpRequest, store: Db) -> Result<HttpResponse, ApiError> {
    let browser = crate::auth::bearer(&req).is_none();
    match Auth::resolve(&req) {
        Ok(auth) => {
            let session = session_of(&auth)?;
            store.end_session(auth.person()?.sub, session, &auth.ctx.request_id, &origin(&req)).await?;
        }
        Err(error) => {
            let refresh = crate::browser::cookie_value(&req, crate::browser::REFRESH_COOKIE);
            let Some(refresh) = refresh.filter(|_| browser) else { return Err(error) };
            crate::browser::check_csrf(&req)?;
            store.end_session_by_refresh(&refresh, &request_id(&req), &origin(&req)).await?;
        }
    }
    let mut response = HttpResponse::NoContent();
    if browser {
        crate::browser::clear_cookies(&mut response);
    }
    Ok(response.finish())
}

/// One of the person's sessions, marked when it is the caller's own.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionItem {
    /// The session.
    #[serde(flatten)]
    pub session: Session,
    /// Whether the calling token belongs to it.
    pub current: bool,
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/sessions",
    tag = "auth",
    responses(
        (status = 200, description = "The person's live sessions, newest first.", body = SessionListEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
/// Lists the person's live sessions (devices).
pub async fn sessions(auth: Auth, store: Db) -> Result<HttpResponse, ApiError> {
    let claims = auth.person()?;
    let current = claims.sid;
    let items: Vec<SessionItem> = store
        .sessions_of(claims.sub)
        .await?
        .into_iter()
        .map(|session| SessionItem { current: Some(session.id) == current, session })
        .collect();
    Ok(envelope::ok(items))
}

#[utoipa::path(
    delete,
    path = "/api/v1/auth/sessions/{id}",
    tag = "auth",
    params(("id" = String, Path, format = Uuid, description = "The session's id.")),
    responses(
        (status = 204, description = "The session is ended."),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 404, description = "No such live session of this person (another person's included).", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
/// Ends one of the person's sessions (a lost phone).
pub async fn end_session(
    req: HttpRequest,
    auth: Auth,
    store: Db,
    id: web::Path<SessionId>,
) -> Result<HttpResponse, ApiError> {
    store.end_session(auth.person()?.sub, id.into_inner(), &auth.ctx.request_id, &origin(&req)).await?;
    Ok(envelope::no_content())
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/me",
    tag = "auth",
    responses(
        (status = 200, description = "The signed-in person, the token's tenant and permissions, and their tenants.", body = MeEnvelope),
        (status = 401, description = "No valid token, or its person is gone.", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
/// Who is signed in.
pub async fn me(auth: Auth, store: Db) -> Result<HttpResponse, ApiError> {
    let claims = auth.person()?;
    let user = store.user(claims.sub).await.map_err(|_| {
        ApiError::new(ErrorKind::Unauthorized, "auth.invalid_token", "The token is not valid.")
    })?;
    let tenants = store
        .memberships_of(user.id)
        .await?
        .into_iter()
        .filter(MembershipView::usable)
        .map(|m| TenantRef { id: m.tenant_id, slug: m.tenant_slug, name: m.tenant_name })
        .collect();
    Ok(envelope::ok(Me {
        user,
        tenant_id: claims.tenant_id,
        permissions: claims.permissions.clone(),
        tenants,
    }))
}

/// `POST /api/v1/auth/forgot-password`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"email": "owner@acme.example"}))]
pub struct ForgotPassword {
    /// The account's email.
    pub email: String,
}

/// `POST /api/v1/auth/reset-password`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"token": "9c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d", "password": "a new long passphrase"}))]
pub struct ResetPassword {
    /// The token from the emailed link.
    pub token: String,
    /// The new password (8 to 128 characters, not a common one).
    pub password: String,
}

/// `POST /api/v1/auth/verify-email`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"token": "9c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d"}))]
pub struct VerifyEmail {
    /// The token from the emailed link.
    pub token: String,
}

/// How long a reset link works.
pub const RESET_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// How long a verification link works.
pub const VERIFY_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// `forgot-password` answers no sooner than this, so that whether an email
/// was sent cannot be told from the time it took.
const FORGOT_FLOOR: Duration = Duration::from_millis(400);

/// The email carrying a one-time link.
pub(crate) fn link_email(
    links: &crate::server::Links,
    to: &Email,
    subject: &str,
    intro: &str,
    path: &str,
    token: &str,
) -> portico_kernel::EmailMessage {
    let link = format!("{}/{path}?token={token}", links.portal_url);
    portico_kernel::EmailMessage {
        from: links.from.clone(),
        to: vec![portico_kernel::Mailbox::address(to.as_str())],
        reply_to: None,
        subject: subject.to_owned(),
        html: format!(
            "<p>{intro}</p><p><a href=\"{link}\">{link}</a></p><p>If you did not ask for this, ignore this email.</p>"
        ),
        text: format!("{intro}\n\n{link}\n\nIf you did not ask for this, ignore this email.\n"),
        message_id: None,
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/forgot-password",
    tag = "auth",
    request_body = ForgotPassword,
    responses(
        (status = 202, description = "The same answer, in about the same time, whether or not the address has an account; if it has, a link valid for 30 minutes is emailed.", body = AcceptedEnvelope),
        (status = 422, description = "Not an email address.", body = ErrorEnvelope),
    ),
    security(())
)]
/// Asks for a password-reset link.
pub async fn forgot_password(
    req: HttpRequest,
    store: Db,
    links: web::Data<crate::server::Links>,
    body: Json<ForgotPassword>,
) -> Result<HttpResponse, ApiError> {
    let started = std::time::Instant::now();
    let email = Email::parse(&body.into_inner().email)?;
    let outcome = async {
        let Some(credentials) = store.credentials(&email).await? else { return Ok(()) };
        if credentials.user.status != UserStatus::Active {
            return Ok(());
        }
        let token = new_refresh_token()?;
        let message = link_email(
            &links,
            &email,
            "Choose a new password",
            "Follow this link within 30 minutes to choose a new Portico password:",
            "reset-password",
            &token,
        );
        store
            .issue_one_time_token(portico_store::OneTimeToken {
                user: credentials.user.id,
                purpose: portico_store::OneTimePurpose::PasswordReset,
                token,
                email: email.clone(),
                lifetime: RESET_LIFETIME,
                message,
                request_id: request_id(&req),
                origin: origin(&req),
            })
            .await
            .map_err(ApiError::from)
    }
    .await;
    if let Err(error) = outcome {
        // Logged (by ApiError) and not shown: the answer must not differ.
        tracing::warn!(code = error.code(), "a reset link could not be issued");
    }
    tokio::time::sleep(FORGOT_FLOOR.saturating_sub(started.elapsed())).await;
    Ok(accepted("If an account has this address, a link to choose a new password is on its way."))
}

/// An email telling a person that a security setting of theirs changed (the
/// store addresses it), so a change they did not make does not go unnoticed.
pub(crate) fn security_notice(
    links: &crate::server::Links,
    subject: &str,
    what: &str,
) -> portico_kernel::EmailMessage {
    let warning = "If this was not you, reset your password now and tell your administrator.";
    portico_kernel::EmailMessage {
        from: links.from.clone(),
        to: Vec::new(),
        reply_to: None,
        subject: subject.to_owned(),
        html: format!("<p>{what}</p><p>{warning}</p>"),
        text: format!("{what}\n\n{warning}\n"),
        message_id: None,
    }
}

fn accepted(message: &str) -> HttpResponse {
    HttpResponse::Accepted().json(json!({"success": true, "data": {"message": message}}))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/reset-password",
    tag = "auth",
    request_body = ResetPassword,
    responses(
        (status = 204, description = "The password is changed and every session of the person has ended; MFA still applies at the next sign-in."),
        (status = 422, description = "The link is invalid, used or expired (`auth.invalid_link`), or the password is not acceptable (`auth.weak_password`).", body = ErrorEnvelope),
    ),
    security(())
)]
/// Sets a new password with an emailed link's token.
pub async fn reset_password(
    req: HttpRequest,
    store: Db,
    links: web::Data<crate::server::Links>,
    body: Json<ResetPassword>,
) -> Result<HttpResponse, ApiError> {
    let ResetPassword { token, password: secret } = body.into_inner();
    password::check_policy(&secret)?;
    let hash = hashing(move || password::hash(&secret)).await??;
    let notice = security_notice(
        &links,
        "Your password was changed",
        "The password of your Portico account was changed, and every device was signed out.",
    );
    let user = store.reset_password(&token, hash, notice, &request_id(&req), &origin(&req)).await?;
    tracing::info!(user = %user, "password reset; every session ended");
    Ok(envelope::no_content())
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/send-verification",
    tag = "auth",
    responses(
        (status = 202, description = "A link confirming the person's address (valid 24 hours) is on its way.", body = AcceptedEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 403, description = "Not a person (an API key).", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
/// Emails the signed-in person a link confirming their address.
pub async fn send_verification(
    req: HttpRequest,
    auth: Auth,
    store: Db,
    links: web::Data<crate::server::Links>,
) -> Result<HttpResponse, ApiError> {
    let user = store.user(auth.person()?.sub).await?;
    let token = new_refresh_token()?;
    let message = link_email(
        &links,
        &user.email,
        "Confirm your email address",
        "Follow this link within 24 hours to confirm this address for Portico:",
        "verify-email",
        &token,
    );
    store
        .issue_one_time_token(portico_store::OneTimeToken {
            user: user.id,
            purpose: portico_store::OneTimePurpose::EmailVerification,
            token,
            email: user.email.clone(),
            lifetime: VERIFY_LIFETIME,
            message,
            request_id: auth.ctx.request_id.clone(),
            origin: origin(&req),
        })
        .await?;
    Ok(accepted("A link to confirm your address is on its way."))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/verify-email",
    tag = "auth",
    request_body = VerifyEmail,
    responses(
        (status = 204, description = "The address is confirmed."),
        (status = 422, description = "The link is invalid, used, expired, or for an address the person no longer has (`auth.invalid_link`).", body = ErrorEnvelope),
    ),
    security(())
)]
/// Confirms an email address with an emailed link's token.
pub async fn verify_email(
    req: HttpRequest,
    store: Db,
    body: Json<VerifyEmail>,
) -> Result<HttpResponse, ApiError> {
    store.verify_email(&body.into_inner().token, &request_id(&req), &origin(&req)).await?;
    Ok(envelope::no_content())
}

/// `POST /api/v1/auth/switch-tenant`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"tenant": "globex"}))]
pub struct SwitchTenant {
    /// Another tenant of the person, by slug or id.
    pub tenant: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/switch-tenant",
    tag = "auth",
    request_body = SwitchTenant,
    responses(
        (status = 200, description = "Tokens for the other tenant, on the same session (its previous refresh token is spent). In browser mode, new cookies and a `BrowserSignedIn`.", body = SignedInEnvelope),
        (status = 401, description = "No valid token, or a token of no session.", body = ErrorEnvelope),
        (status = 403, description = "No usable membership of that tenant (`auth.no_membership`).", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
/// Moves the session to another of the person's tenants.
pub async fn switch_tenant(
    req: HttpRequest,
    auth: Auth,
    store: Db,
    keys: web::Data<TokenKeys>,
    body: Json<SwitchTenant>,
) -> Result<HttpResponse, ApiError> {
    let session = session_of(&auth)?;
    let claims = auth.person()?;
    let user = store.user(claims.sub).await?;
    let membership =
        match choose_tenant(store.memberships_of(user.id).await?, Some(&body.into_inner().tenant)) {
            TenantChoice::Chosen(membership) => membership,
            TenantChoice::SelectionRequired(_) | TenantChoice::NoMembership => {
                return Err(IdentityError::NoMembership.into());
            }
        };
    let replacement = new_refresh_token()?;
    store
        .switch_session(
            user.id,
            session,
            membership.tenant_id,
            &replacement,
            &auth.ctx.request_id,
            &origin(&req),
        )
        .await?;
    let signed = signed_in(&keys, &user, &membership, session, replacement)?;
    if crate::auth::bearer(&req).is_none() { browser_answer(signed) } else { Ok(envelope::ok(signed)) }
}

/// `POST /api/v1/auth/mfa/verify`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"challenge": "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiIsImtpZCI6IjFhMmIzYzRkNWU2ZjdhOGIifQ.e30.sig", "code": "287082"}))]
pub struct MfaCode {
    /// At sign-in: the challenge the password step answered with. Absent
    /// when a signed-in person confirms a new authenticator.
    #[serde(default)]
    pub challenge: Option<String>,
    /// The authenticator's current 6-digit code, or (at sign-in) a recovery code.
    pub code: String,
}

/// A new authenticator to add.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"secret": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "otpauthUri": "otpauth://totp/Portico:owner%40acme.example?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Portico&algorithm=SHA1&digits=6&period=30"}))]
pub struct MfaSetup {
    /// The secret in base32, to type into an authenticator app.
    pub secret: String,
    /// The same as a URI, to show as a QR code.
    pub otpauth_uri: String,
}

/// Checks `code` against the person's TOTP secret (once per code) or, when
/// `recovery` allows, spends it as a recovery code.
async fn check_code(
    store: &Db,
    sealed: &mfa::SecretBox,
    user: portico_kernel::UserId,
    secret: Option<&[u8]>,
    last_step: Option<u64>,
    code: &str,
    recovery: bool,
) -> Result<Option<u64>, ApiError> {
    let secret = secret.and_then(|s| sealed.open(s)).ok_or(IdentityError::MfaNotSetUp)?;
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    if let Some(step) = mfa::verify_totp(&secret, code, now, last_step) {
        if store.accept_mfa_step(user, step).await? {
            return Ok(Some(step));
        }
    } else if recovery && store.use_recovery_code(user, &mfa::recovery_hash(code)).await? {
        tracing::info!(user = %user, "signed in with a recovery code");
        return Ok(None);
    }
    Err(IdentityError::InvalidMfaCode.into())
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/mfa/setup",
    tag = "auth",
    responses(
        (status = 200, description = "A new authenticator secret, to confirm with `/api/v1/auth/mfa/verify`; MFA is on only after that.", body = MfaSetupEnvelope),
        (status = 401, description = "No valid token.", body = ErrorEnvelope),
        (status = 409, description = "MFA is on already (`auth.mfa_already_enabled`).", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
/// Starts setting up an authenticator.
pub async fn mfa_setup(
    req: HttpRequest,
    auth: Auth,
    store: Db,
    sealed: web::Data<mfa::SecretBox>,
    body: Json<ConfirmPassword>,
) -> Result<HttpResponse, ApiError> {
    let user = store.user(auth.person()?.sub).await?;
    if store.mfa_state(user.id).await?.enabled {
        return Err(IdentityError::MfaAlreadyEnabled.into());
    }
    confirm_password(&req, &store, &user, body.into_inner().password).await?;
    let secret = mfa::new_secret()?;
    store.set_mfa_pending(user.id, sealed.seal(&secret)?, &auth.ctx.request_id, &origin(&req)).await?;
    Ok(envelope::ok(MfaSetup {
        secret: mfa::base32(&secret),
        otpauth_uri: mfa::otpauth_uri("Portico", user.email.as_str(), &secret),
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/mfa/verify",
    tag = "auth",
    request_body = MfaCode,
    responses(
        (status = 200, description = "With a challenge: signed in (as `/api/v1/auth/login` answers). Without one: MFA is on, and the body lists the 10 single-use recovery codes, shown once (`{\"recoveryCodes\": [...]}`).", body = SignedInEnvelope),
        (status = 401, description = "A wrong or used code (`auth.invalid_mfa_code`; at sign-in it counts as a failed attempt), or an invalid challenge.", body = ErrorEnvelope),
        (status = 409, description = "No authenticator is being set up (`auth.mfa_not_set_up`).", body = ErrorEnvelope),
        (status = 429, description = "Too many failed attempts for this account; see `Retry-After`.", body = ErrorEnvelope),
    ),
    security(())
)]
/// Completes a sign-in with a second factor, or confirms a new authenticator.
pub async fn mfa_verify(
    req: HttpRequest,
    store: Db,
    keys: web::Data<TokenKeys>,
    sealed: web::Data<mfa::SecretBox>,
    links: web::Data<crate::server::Links>,
    body: Json<MfaCode>,
) -> Result<HttpResponse, ApiError> {
    let MfaCode { challenge, code } = body.into_inner();
    if let Some(challenge) = challenge {
        let challenge = keys.verify_challenge(&challenge)?;
        let user = store.user(challenge.sub).await?;
        if user.status != UserStatus::Active {
            return Err(IdentityError::AccountDisabled.into());
        }
        let client = client_of(&req);
        store.reserve_login_attempt(&user.email, &client).await?;
        let state = store.mfa_state(user.id).await?;
        check_code(&store, &sealed, user.id, state.secret.as_deref(), state.last_step, &code, true).await?;
        store.clear_login_attempts(&user.email, &client).await?;
        let expires = chrono::DateTime::from_timestamp(challenge.exp, 0).unwrap_or_else(chrono::Utc::now);
        if !store.spend_challenge(challenge.jti, expires).await? {
            return Err(ApiError::new(
                ErrorKind::Unauthorized,
                "auth.challenge_used",
                "This sign-in was completed already. Sign in again.",
            ));
        }
        let mode = if challenge.cookie { Mode::Cookie } else { Mode::Bearer };
        return finish_sign_in(
            &req,
            &store,
            &keys,
            &user,
            challenge.tenant.as_deref(),
            challenge.device,
            mode,
        )
        .await;
    }
    let auth = Auth::resolve(&req)?;
    let user = auth.person()?.sub;
    let state = store.mfa_state(user).await?;
    if state.enabled {
        return Err(IdentityError::MfaAlreadyEnabled.into());
    }
    let secret = state.pending.as_deref().and_then(|p| sealed.open(p)).ok_or(IdentityError::MfaNotSetUp)?;
    let person = store.user(user).await?;
    let client = client_of(&req);
    store.reserve_login_attempt(&person.email, &client).await?;
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    let step = mfa::verify_totp(&secret, &code, now, state.last_step).ok_or(IdentityError::InvalidMfaCode)?;
    store.clear_login_attempts(&person.email, &client).await?;
    let codes = mfa::recovery_codes()?;
    let hashes = codes.iter().map(|c| mfa::recovery_hash(c)).collect();
    let notice = security_notice(
        &links,
        "Two-step sign-in was turned on",
        "Your Portico account now asks for a code from your authenticator app when you sign in.",
    );
    store.set_mfa(user, Some((step, hashes)), notice, &auth.ctx.request_id, &origin(&req)).await?;
    Ok(envelope::ok(json!({ "recoveryCodes": codes })))
}

/// `POST /api/v1/auth/mfa/setup`: the person's password, again.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"password": "correct horse battery"}))]
pub struct ConfirmPassword {
    /// The current password.
    pub password: String,
}

impl std::fmt::Debug for ConfirmPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfirmPassword(<password>)")
    }
}

/// `POST /api/v1/auth/mfa/disable`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"code": "287082", "password": "correct horse battery"}))]
pub struct DisableMfa {
    /// The authenticator's current code.
    pub code: String,
    /// The current password.
    pub password: String,
}

impl std::fmt::Debug for DisableMfa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DisableMfa(<code>, <password>)")
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/mfa/disable",
    tag = "auth",
    request_body = DisableMfa,
    responses(
        (status = 204, description = "MFA is off; its secret and recovery codes are forgotten."),
        (status = 401, description = "No valid token, or a wrong or used code (`auth.invalid_mfa_code`).", body = ErrorEnvelope),
        (status = 409, description = "MFA is not on (`auth.mfa_not_set_up`).", body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
/// Turns MFA off; needs a current code.
pub async fn mfa_disable(
    req: HttpRequest,
    auth: Auth,
    store: Db,
    sealed: web::Data<mfa::SecretBox>,
    links: web::Data<crate::server::Links>,
    body: Json<DisableMfa>,
) -> Result<HttpResponse, ApiError> {
    let user = auth.person()?.sub;
    let state = store.mfa_state(user).await?;
    if !state.enabled {
        return Err(IdentityError::MfaNotSetUp.into());
    }
    let DisableMfa { code, password: secret } = body.into_inner();
    let person = store.user(user).await?;
    confirm_password(&req, &store, &person, secret).await?;
    let client = client_of(&req);
    store.reserve_login_attempt(&person.email, &client).await?;
    check_code(&store, &sealed, user, state.secret.as_deref(), state.last_step, &code, false).await?;
    store.clear_login_attempts(&person.email, &client).await?;
    let notice = security_notice(
        &links,
        "Two-step sign-in was turned off",
        "Your Portico account no longer asks for a code from your authenticator app.",
    );
    store.set_mfa(user, None, notice, &auth.ctx.request_id, &origin(&req)).await?;
    Ok(envelope::no_content())
}

/// Request bodies holding passwords, codes or tokens print nothing of them.
macro_rules! redacted_debug {
    ($($name:ident),*) => {
        $(impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        })*
    };
}

redacted_debug!(LoginRequest, RefreshRequest, ResetPassword, MfaCode, VerifyEmail);
