//! Authentication (development form): HS256 bearer tokens carrying the
//! mission's claims, and the one extractor that turns a request into a
//! [`TenantContext`]. Real sign-in replaces how tokens are issued, not this.

use std::future::{Ready, ready};
use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use portico_kernel::{Actor, ErrorKind, PLATFORM_TENANT_ID, TenantContext, TenantId, UserId};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Who the token is for: the platform's staff or a tenant's people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TokenType {
    /// Staff of the platform tenant.
    AdminUser,
    /// A person of a customer tenant (owner, staff, student, parent, ...).
    PlatformUser,
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    /// The user.
    pub sub: UserId,
    /// The user's email (never logged).
    pub email: String,
    /// The membership's role name.
    pub role: String,
    /// The tenant of the membership the token carries.
    pub tenant_id: TenantId,
    /// Staff or tenant user.
    #[serde(rename = "type")]
    pub kind: TokenType,
    /// What the membership may do.
    pub permissions: Vec<String>,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// The session the token was issued to (none for development tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<portico_kernel::SessionId>,
    /// An administrator requires a second factor the person has not set up:
    /// the token carries no permissions until they do (and refresh).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mfa_setup: bool,
}

/// One signing key: its id (`kid`) and both halves.
#[derive(Clone)]
struct Key {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Key {
    /// A key from a shared secret; its id is derived from the secret (the
    /// first 16 hex digits of its SHA-256), so nobody has to name keys.
    fn from_secret(secret: &[u8]) -> Self {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(secret);
        let kid: String = digest.iter().take(8).map(|byte| format!("{byte:02x}")).collect();
        Self { kid, encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret) }
    }
}

/// Signs tokens with the current HS256 key, naming it in the `kid` header,
/// and verifies tokens of the current key and of previous ones (so keys
/// rotate: tokens of the previous key stay valid until they expire). No
/// other algorithm, and no token without a known `kid`, is accepted.
#[derive(Clone)]
pub struct TokenKeys {
    current: Key,
    previous: Vec<Key>,
    validation: Validation,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenKeys(HS256, kid {}, {} previous)", self.current.kid, self.previous.len())
    }
}

impl TokenKeys {
    /// Keys from the shared secret.
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        Self { current: Key::from_secret(secret), previous: Vec::new(), validation }
    }

    /// These keys, still verifying tokens signed with `secrets` (rotated out).
    #[must_use]
    pub fn with_previous<'a>(mut self, secrets: impl IntoIterator<Item = &'a [u8]>) -> Self {
        self.previous.extend(secrets.into_iter().map(Key::from_secret));
        self
    }

    /// The id of the key tokens are signed with.
    #[must_use]
    pub fn current_kid(&self) -> &str {
        &self.current.kid
    }

    /// A signed token for `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.current.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.current.encoding)
    }

    /// Mints a token valid for `ttl_secs` from now.
    #[allow(clippy::too_many_arguments)]
    pub fn mint(
        &self,
        user: UserId,
        email: &str,
        role: &str,
        tenant: TenantId,
        permissions: &[&str],
        ttl_secs: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = Utc::now().timestamp();
        let kind = if tenant == PLATFORM_TENANT_ID { TokenType::AdminUser } else { TokenType::PlatformUser };
        self.sign(&Claims {
            sub: user,
            email: email.to_owned(),
            role: role.to_owned(),
            tenant_id: tenant,
            kind,
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            iat: now,
            exp: now + ttl_secs,
            sid: None,
            mfa_setup: false,
        })
    }

    /// An access token for `user` acting through `membership`, on
    /// `session`, with `permissions` (none while `mfa_setup`).
    pub fn mint_for_session(
        &self,
        user: &portico_tenancy::User,
        membership: &portico_tenancy::MembershipView,
        permissions: &[String],
        session: portico_kernel::SessionId,
        ttl_secs: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = Utc::now().timestamp();
        let tenant = membership.tenant_id;
        let kind = if tenant == PLATFORM_TENANT_ID { TokenType::AdminUser } else { TokenType::PlatformUser };
        self.sign(&Claims {
            sub: user.id,
            email: user.email.as_str().to_owned(),
            role: membership.role.as_str().to_owned(),
            tenant_id: tenant,
            kind,
            permissions: permissions.to_vec(),
            iat: now,
            exp: now + ttl_secs,
            sid: Some(session),
            mfa_setup: user.mfa_required && !user.mfa_enabled,
        })
    }

    /// The claims of a valid token, or why it is not.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let claims: Claims = self.decode(token)?;
        // A staff token must belong to the platform tenant, and only a staff token may.
        if (claims.kind == TokenType::AdminUser) != (claims.tenant_id == PLATFORM_TENANT_ID) {
            return Err(ApiError::new(
                ErrorKind::Unauthorized,
                "auth.invalid_token",
                "The token is not valid.",
            ));
        }
        Ok(claims)
    }

    /// The payload of a token signed by one of these keys (named by `kid`).
    fn decode<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<T, ApiError> {
        use jsonwebtoken::errors::ErrorKind as Jwt;
        let invalid =
            || ApiError::new(ErrorKind::Unauthorized, "auth.invalid_token", "The token is not valid.");
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        let kid = header.kid.ok_or_else(invalid)?;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.kid == kid)
            .ok_or_else(invalid)?;
        jsonwebtoken::decode::<T>(token, &key.decoding, &self.validation).map(|data| data.claims).map_err(
            |e| match e.kind() {
                Jwt::ExpiredSignature => {
                    ApiError::new(ErrorKind::Unauthorized, "auth.token_expired", "The token has expired.")
                }
                _ => invalid(),
            },
        )
    }

    /// A signed MFA challenge (it is no access token: its fields differ).
    pub fn sign_challenge(&self, challenge: &Challenge) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.current.kid.clone());
        jsonwebtoken::encode(&header, challenge, &self.current.encoding)
    }

    /// A valid MFA challenge, or 401.
    pub fn verify_challenge(&self, token: &str) -> Result<Challenge, ApiError> {
        let challenge: Challenge = self.decode(token)?;
        if challenge.purpose == Challenge::PURPOSE {
            Ok(challenge)
        } else {
            Err(ApiError::new(ErrorKind::Unauthorized, "auth.invalid_token", "The token is not valid."))
        }
    }
}

/// What a sign-in that needs a second factor carries to its completion:
/// who proved their password, and what they asked for. Short-lived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Challenge {
    /// The challenge (it completes one sign-in only).
    pub jti: uuid::Uuid,
    /// The person.
    pub sub: UserId,
    /// Always [`Challenge::PURPOSE`].
    pub purpose: String,
    /// The tenant asked for at sign-in.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The device name given at sign-in.
    #[serde(default)]
    pub device: Option<String>,
    /// Browser mode was asked for.
    pub cookie: bool,
    /// Issued at.
    pub iat: i64,
    /// Expires at.
    pub exp: i64,
}

impl Challenge {
    /// The purpose of an MFA challenge.
    pub const PURPOSE: &'static str = "mfa_challenge";
}

/// The bearer credential of a request, if any.
pub(crate) fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// The header a platform admin names a customer tenant with.
pub const TENANT_HEADER: &str = "x-tenant-id";

/// An authenticated request: its tenant context and the token's claims.
#[derive(Debug, Clone)]
pub struct Auth {
    /// The tenant acted on, who acts, what they may do.
    pub ctx: TenantContext,
    /// The token's claims; `None` for an API key.
    pub claims: Option<Claims>,
}

impl Auth {
    /// The request's authentication, or why it has none (401) or may not
    /// name the tenant it names (403).
    pub fn resolve(req: &HttpRequest) -> Result<Self, ApiError> {
        // Resolved once per request: rate limiting and idempotency read it before the handler.
        if let Some(auth) = req.extensions().get::<Self>() {
            return Ok(auth.clone());
        }
        let auth = Self::authenticate(req)?;
        req.extensions_mut().insert(auth.clone());
        Ok(auth)
    }

    fn authenticate(req: &HttpRequest) -> Result<Self, ApiError> {
        let keys = req.app_data::<web::Data<TokenKeys>>().ok_or_else(|| {
            ApiError::new(ErrorKind::Internal, "internal", "Authentication is not configured.")
        })?;
        let cookie = crate::browser::cookie_value(req, crate::browser::ACCESS_COOKIE);
        let token = match (bearer(req), cookie.as_deref()) {
            (Some(token), _) => token,
            // Browser mode: the access token rides in its cookie, and a change
            // must repeat the CSRF token in a header (double submit).
            (None, Some(token)) => {
                if crate::browser::is_unsafe(req.method()) {
                    crate::browser::check_csrf(req)?;
                }
                token
            }
            (None, None) => {
                return Err(ApiError::new(
                    ErrorKind::Unauthorized,
                    "auth.missing_token",
                    "Send a bearer token in Authorization (or sign in in browser mode).",
                ));
            }
        };
        if token.starts_with(crate::api_keys::KEY_PREFIX) {
            // A live key was resolved (and kept in the request) by `api_keys::middleware`.
            return Err(ApiError::new(
                ErrorKind::Unauthorized,
                "auth.invalid_api_key",
                "The API key is not valid (unknown, revoked or expired).",
            ));
        }
        let claims = keys.verify(token)?;
        let actor = Actor::User { user_id: claims.sub, tenant_id: claims.tenant_id };
        let ctx = Self::context(req, claims.tenant_id, actor, claims.permissions.iter().cloned().collect())?;
        tracing::Span::current().record("user_id", tracing::field::display(claims.sub));
        Ok(Self { ctx, claims: Some(claims) })
    }

    /// The context of a request by `actor` of `home` holding `permissions`:
    /// `X-Tenant-ID` may name another tenant only for platform staff.
    pub(crate) fn context(
        req: &HttpRequest,
        home: TenantId,
        actor: Actor,
        permissions: std::collections::BTreeSet<String>,
    ) -> Result<TenantContext, ApiError> {
        let named = match req.headers().get(TENANT_HEADER) {
            None => None,
            Some(value) => {
                Some(value.to_str().ok().and_then(|v| v.parse::<TenantId>().ok()).ok_or_else(|| {
                    ApiError::new(
                        ErrorKind::Validation,
                        "request.invalid_tenant_header",
                        "X-Tenant-ID must be a tenant id.",
                    )
                })?)
            }
        };
        let mut ctx = TenantContext {
            tenant_id: home,
            actor,
            permissions,
            request_id: crate::request_id::of(req),
            origin: crate::client::origin(req),
        };
        if let Some(tenant) = named.filter(|t| *t != home) {
            if ctx.platform().is_err() {
                return Err(ApiError::new(
                    ErrorKind::Forbidden,
                    "tenancy.tenant_mismatch",
                    "X-Tenant-ID names another tenant than the token's.",
                ));
            }
            tracing::info!(acting_on = %tenant, "platform staff acting on a tenant");
            ctx.tenant_id = tenant;
        }
        tracing::Span::current().record("tenant_id", tracing::field::display(ctx.tenant_id));
        Ok(ctx)
    }

    /// The claims of a person's token; 403 for an API key (the route is for people).
    pub fn person(&self) -> Result<&Claims, ApiError> {
        self.claims.as_ref().ok_or_else(|| {
            ApiError::new(
                ErrorKind::Forbidden,
                "auth.person_required",
                "This route is for people, not API keys.",
            )
        })
    }

    /// The platform-wide scope; 403 for anyone but platform staff with a platform permission.
    pub fn platform(&self) -> Result<portico_kernel::PlatformContext, ApiError> {
        self.ctx
            .platform()
            .map_err(|e| ApiError::new(ErrorKind::Forbidden, "auth.permission_denied", e.to_string()))
    }

    /// The platform-wide scope of a read, when platform staff holding the
    /// platform `permission` ask on their own tenant (no `X-Tenant-ID`);
    /// `None` for everyone else, who see their tenant's own.
    #[must_use]
    pub fn platform_view(&self, permission: &str) -> Option<portico_kernel::PlatformContext> {
        let home = self.ctx.actor.home_tenant() == Some(self.ctx.tenant_id);
        (home && permits(&self.ctx, permission)).then(|| self.ctx.platform().ok()).flatten()
    }

    /// The context for a route that names `tenant` in its path: re-scoped
    /// to it when platform staff hold the route's platform `permission` and
    /// did not already name a tenant with `X-Tenant-ID`; unchanged otherwise
    /// (the store then answers not found for another tenant's id, so a path
    /// that contradicts the header finds nothing).
    #[must_use]
    pub fn on_tenant(&self, tenant: TenantId, permission: &str) -> TenantContext {
        let own = Some(self.ctx.tenant_id) == self.ctx.actor.home_tenant();
        if tenant != self.ctx.tenant_id && own && permits(&self.ctx, permission) {
            tracing::info!(acting_on = %tenant, "platform staff acting on a tenant");
            TenantContext { tenant_id: tenant, ..self.ctx.clone() }
        } else {
            self.ctx.clone()
        }
    }
}

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::resolve(req))
    }
}

/// Middleware: a person's token whose session has ended (signed out, ended
/// from another device, by a password reset or a reused refresh token) is
/// refused at once, not at its expiry: 401 `auth.session_ended`. Whether a
/// session is live is read through the cache, which the sessions trigger
/// keeps current on every instance.
pub async fn live_sessions(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<
    actix_web::dev::ServiceResponse<actix_web::body::EitherBody<impl actix_web::body::MessageBody>>,
    actix_web::Error,
> {
    use actix_web::ResponseError as _;
    let session = Auth::resolve(req.request())
        .ok()
        .and_then(|auth| auth.claims.and_then(|claims| claims.sid.map(|sid| (claims.sub, sid))));
    let services = (
        req.app_data::<web::Data<portico_store::Store>>().cloned(),
        req.app_data::<web::Data<crate::cache::Cache>>().cloned(),
    );
    if let (Some((user, sid)), (Some(store), Some(cache))) = (session, services) {
        match session_live(&store, &cache, user, sid).await {
            Ok(true) => {}
            Ok(false) => {
                let error = ApiError::new(
                    ErrorKind::Unauthorized,
                    "auth.session_ended",
                    "This token's session has ended. Sign in again.",
                );
                return Ok(req.into_response(error.error_response()).map_into_right_body());
            }
            Err(error) => return Ok(req.into_response(error.error_response()).map_into_right_body()),
        }
    }
    next.call(req).await.map(actix_web::dev::ServiceResponse::map_into_left_body)
}

/// The cache tag of a session's liveness.
#[must_use]
pub fn session_tag(sid: portico_kernel::SessionId) -> crate::cache::Tag {
    crate::cache::Tag {
        tenant: PLATFORM_TENANT_ID.into_uuid(),
        resource: "session".to_owned(),
        id: sid.to_string(),
    }
}

async fn session_live(
    store: &portico_store::Store,
    cache: &crate::cache::Cache,
    user: UserId,
    sid: portico_kernel::SessionId,
) -> Result<bool, ApiError> {
    let key = crate::cache::CacheKey::new(session_tag(sid));
    let (live, _) = cache
        .get_or_load(&key, crate::cache::TtlClass::User, || async {
            let live = store.session_is_live(user, sid).await.map_err(ApiError::from)?;
            Ok::<_, ApiError>(web::Bytes::from_static(if live { b"1" } else { b"0" }))
        })
        .await?;
    Ok(live.as_ref() == b"1")
}

/// A permission a route requires, as a type: `Require<TenantsWrite>`.
pub trait Permission {
    /// The permission's name (`tenants:write`).
    const NAME: &'static str;
}

/// Declares permission marker types, and [`DECLARED`] listing their names.
macro_rules! permissions {
    ($($(#[$doc:meta])* $name:ident = $text:literal;)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $name;
            impl Permission for $name {
                const NAME: &'static str = $text;
            }
        )*
        /// Every permission a route can require (each must be catalogued).
        pub const DECLARED: &[&str] = &[$($text),*];
    };
}

permissions! {
    /// Read one's own tenant.
    TenantsRead = "tenants:read";
    /// Change one's own tenant's profile.
    TenantsWrite = "tenants:write";
    /// List and read every tenant.
    PlatformTenantsRead = "platform:tenants:read";
    /// Create, suspend, activate and delete tenants.
    PlatformTenantsWrite = "platform:tenants:write";
    /// See the job queue.
    PlatformJobsRead = "platform:jobs:read";
    /// Read one's own tenant's audit trail.
    AuditRead = "audit:read";
    /// Read every tenant's audit trail.
    PlatformAuditRead = "platform:audit:read";
    /// Retry dead jobs.
    PlatformJobsWrite = "platform:jobs:write";
    /// Create, list and revoke one's tenant's API keys.
    ApiKeysManage = "api_keys:manage";
    /// Read the permission catalogue and the roles.
    RolesRead = "roles:read";
    /// Change the role of one's tenant's people.
    MembershipsWrite = "memberships:write";
    /// Create, change and delete one's tenant's custom roles.
    RolesWrite = "roles:write";
    /// List and read one's tenant's people.
    PeopleRead = "people:read";
    /// Invite, change, deactivate, remove, import and export one's tenant's people.
    PeopleWrite = "people:write";
    /// List and read every tenant's people.
    PlatformPeopleRead = "platform:people:read";
    /// List and read the platform's staff.
    PlatformAdminUsersRead = "platform:admin_users:read";
    /// Manage the platform's staff.
    PlatformAdminUsersWrite = "platform:admin_users:write";
    /// See one's tenant's wallets, ledger, reservations, packages, prices and plans.
    CreditsRead = "credits:read";
    /// Buy credits and packages, and set wallets' low-balance alerts.
    CreditsPurchase = "credits:purchase";
    /// Reserve, capture and release credits.
    CreditsSpend = "credits:spend";
    /// See one's tenant's sites, meters, readings, consumption, metrics and usage.
    MeteringRead = "metering:read";
    /// Set up sites, meters, billable metrics and meter data sources.
    MeteringWrite = "metering:write";
    /// Send usage events and meter readings, and import readings.
    MeteringIngest = "metering:ingest";
    /// Close a period's usage.
    MeteringClose = "metering:close";
    /// See one's tenant's CRM records, timelines and analytics.
    CrmRead = "crm:read";
    /// Change, convert, move, merge, import and export one's tenant's CRM records.
    CrmWrite = "crm:write";
    /// See one's tenant's support tickets.
    TicketsRead = "tickets:read";
    /// Open, change, assign, comment on, change the status of and delete support tickets.
    TicketsWrite = "tickets:write";
    /// See the master wallet, every tenant's plans and the platform's credit analytics.
    PlatformCreditsRead = "platform:credits:read";
    /// Top up the master wallet, set prices, packages and custom plans, grant and adjust credits.
    PlatformCreditsWrite = "platform:credits:write";
    /// Buy credits for a tenant, acting on it.
    PlatformCreditsPurchase = "platform:credits:purchase";
}

/// An authenticated request whose actor holds permission `P`; else 403.
#[derive(Debug, Clone)]
pub struct Require<P: Permission>(pub Auth, PhantomData<P>);

impl<P: Permission> std::ops::Deref for Require<P> {
    type Target = Auth;

    fn deref(&self) -> &Auth {
        &self.0
    }
}

impl<P: Permission> FromRequest for Require<P> {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let checked = Auth::resolve(req).and_then(|auth| {
            if permits(&auth.ctx, P::NAME) {
                Ok(auth)
            } else if auth.claims.as_ref().is_some_and(|claims| claims.mfa_setup) {
                Err(ApiError::new(
                    ErrorKind::Forbidden,
                    "auth.mfa_setup_required",
                    "Your administrator requires a second factor: set one up, then refresh your token.",
                ))
            } else {
                Err(ApiError::new(
                    ErrorKind::Forbidden,
                    "auth.permission_denied",
                    format!("This needs the {} permission.", P::NAME),
                )
                .details(serde_json::json!({ "permission": P::NAME })))
            }
        });
        let services = (
            req.app_data::<web::Data<portico_store::Store>>().cloned(),
            req.app_data::<web::Data<crate::cache::Cache>>().cloned(),
        );
        Box::pin(async move {
            let auth = checked?;
            if let (Some(store), Some(cache)) = services {
                in_service(&auth.ctx, &store, &cache).await?;
            }
            Ok(Self(auth, PhantomData))
        })
    }
}

/// A tenant's own people reach its routes only while it is in service: a
/// suspended tenant's people can still sign in (the auth routes take
/// [`Auth`], not [`Require`]), and everything else answers 403. Platform
/// staff acting on a tenant are not held back (they are who reactivates
/// it). The status is read through the cache, which the tenants table's
/// trigger keeps current on every instance.
async fn in_service(
    ctx: &TenantContext,
    store: &portico_store::Store,
    cache: &crate::cache::Cache,
) -> Result<(), ApiError> {
    use crate::cache::{CacheKey, Tag, TtlClass};
    use portico_tenancy::{TenancyError, TenantStore as _};
    if ctx.actor.home_tenant() != Some(ctx.tenant_id) || ctx.tenant_id == PLATFORM_TENANT_ID {
        return Ok(());
    }
    let tag = Tag {
        tenant: ctx.tenant_id.into_uuid(),
        resource: "tenant".to_owned(),
        id: ctx.tenant_id.to_string(),
    };
    let loaded = cache
        .get_or_load(&CacheKey::new(tag).variant("status"), TtlClass::Tenant, || async {
            match store.get(ctx, ctx.tenant_id).await {
                Ok(tenant) => Ok(actix_web::web::Bytes::from_static(tenant.status.as_str().as_bytes())),
                Err(TenancyError::NotFound) => Ok(actix_web::web::Bytes::from_static(b"deleted")),
                Err(other) => Err(ApiError::from(other)),
            }
        })
        .await?;
    match loaded.0.as_ref() {
        b"suspended" => Err(ApiError::new(
            ErrorKind::Forbidden,
            "tenancy.tenant_suspended",
            "This tenant is suspended: only signing in and out work until it is reactivated.",
        )),
        b"inactive" | b"deleted" => Err(ApiError::new(
            ErrorKind::Forbidden,
            "tenancy.tenant_inactive",
            "This tenant is no longer in service.",
        )),
        _ => Ok(()),
    }
}

/// What the context's actor may grant here: what [`permits`] lets them use
/// (nobody grants more than they hold), except that platform staff holding
/// `platform:people:write` acting on a customer tenant may grant any of its
/// (non-platform) permissions: they set up a tenant's first owner.
pub fn holds(ctx: &TenantContext) -> impl Fn(&str) -> bool + Send + Sync + 'static {
    let ctx = ctx.clone();
    let staff = ctx.is_cross_tenant() && permits(&ctx, "platform:people:write");
    move |permission| permits(&ctx, permission) || (staff && !permission.starts_with("platform:"))
}

/// Whether the context may use `permission`:
/// - a `platform:` permission counts only for the platform's staff (a
///   tenant's token that carries one gains nothing);
/// - acting on another tenant than one's own (platform staff through
///   `X-Tenant-ID`) with a tenant permission `x` takes `platform:x`.
#[must_use]
pub fn permits(ctx: &TenantContext, permission: &str) -> bool {
    if permission.starts_with("platform:") {
        return ctx.platform().is_ok() && ctx.has(permission);
    }
    if ctx.is_cross_tenant() {
        return ctx.platform().is_ok() && ctx.has(&format!("platform:{permission}"));
    }
    ctx.has(permission)
}

#[cfg(test)]
mod tests {
    use portico_kernel::RequestId;

    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(b"test-secret-with-enough-length-0123456789")
    }

    fn claims(kind: TokenType, tenant: TenantId, exp_offset: i64) -> Claims {
        let now = Utc::now().timestamp();
        Claims {
            sub: UserId::new(),
            email: "a@b.example".into(),
            role: "owner".into(),
            tenant_id: tenant,
            kind,
            permissions: vec!["tenants:read".into()],
            iat: now,
            exp: now + exp_offset,
            sid: None,
            mfa_setup: false,
        }
    }

    #[test]
    fn a_signed_token_verifies_to_its_claims() {
        let claims = claims(TokenType::PlatformUser, TenantId::new(), 600);
        let token = keys().sign(&claims).unwrap();
        assert_eq!(keys().verify(&token).unwrap(), claims);
    }

    #[test]
    fn expired_tampered_foreign_and_unsigned_tokens_are_refused() {
        let expired = keys().sign(&claims(TokenType::PlatformUser, TenantId::new(), -120)).unwrap();
        assert_eq!(keys().verify(&expired).unwrap_err().code(), "auth.token_expired");

        let token = keys().sign(&claims(TokenType::PlatformUser, TenantId::new(), 600)).unwrap();
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        parts[2] = keys()
            .sign(&claims(TokenType::PlatformUser, TenantId::new(), 600))
            .unwrap()
            .rsplit('.')
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(
            keys().verify(&parts.join(".")).unwrap_err().code(),
            "auth.invalid_token",
            "another token's signature"
        );

        let foreign = TokenKeys::new(b"another-secret-another-secret-0123456789")
            .sign(&claims(TokenType::PlatformUser, TenantId::new(), 600))
            .unwrap();
        assert_eq!(keys().verify(&foreign).unwrap_err().code(), "auth.invalid_token");

        // alg "none" naming the right key: header {"alg":"none","typ":"JWT","kid":…} and no signature.
        let body = token.split('.').nth(1).unwrap();
        let header = format!(r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#, keys().current_kid());
        use base64::Engine as _;
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header);
        let unsigned = format!("{header}.{body}.");
        assert_eq!(keys().verify(&unsigned).unwrap_err().code(), "auth.invalid_token");
        // HS384 with the right key and kid: still refused (the algorithm is pinned).
        let mut hs384 = jsonwebtoken::Header::new(Algorithm::HS384);
        hs384.kid = Some(keys().current_kid().to_owned());
        let other_alg = jsonwebtoken::encode(
            &hs384,
            &claims(TokenType::PlatformUser, TenantId::new(), 600),
            &EncodingKey::from_secret(b"test-secret-with-enough-length-0123456789"),
        )
        .unwrap();
        assert_eq!(keys().verify(&other_alg).unwrap_err().code(), "auth.invalid_token");
    }

    fn context(home: TenantId, acting_on: TenantId, permissions: &[&str]) -> TenantContext {
        TenantContext {
            tenant_id: acting_on,
            actor: Actor::User { user_id: UserId::new(), tenant_id: home },
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            request_id: RequestId::generate(),
            origin: portico_kernel::Origin::default(),
        }
    }

    #[test]
    fn platform_permissions_count_only_for_platform_staff() {
        let tenant = TenantId::new();
        assert!(!permits(&context(tenant, tenant, &["platform:tenants:write"]), "platform:tenants:write"));
        let staff = context(PLATFORM_TENANT_ID, PLATFORM_TENANT_ID, &["platform:tenants:write"]);
        assert!(permits(&staff, "platform:tenants:write"));
    }

    #[test]
    fn acting_on_another_tenant_takes_the_platform_form_of_the_permission() {
        let customer = TenantId::new();
        let reader = context(PLATFORM_TENANT_ID, customer, &["platform:tenants:read", "tenants:write"]);
        assert!(!permits(&reader, "tenants:write"), "platform read does not grant cross-tenant writes");
        let writer = context(PLATFORM_TENANT_ID, customer, &["platform:tenants:write"]);
        assert!(permits(&writer, "tenants:write"));
        let own = context(customer, customer, &["tenants:write"]);
        assert!(permits(&own, "tenants:write"));
    }

    #[test]
    fn every_route_permission_is_catalogued() {
        for name in DECLARED {
            assert!(portico_tenancy::permissions::describe(name).is_some(), "{name} is not in the catalogue");
        }
    }

    #[test]
    fn keys_rotate_by_kid_and_unknown_kids_are_refused() {
        let old = TokenKeys::new(b"old-secret-old-secret-old-secret-0123");
        let token = old.sign(&claims(TokenType::PlatformUser, TenantId::new(), 600)).unwrap();
        let rotated = TokenKeys::new(b"new-secret-new-secret-new-secret-0123")
            .with_previous([b"old-secret-old-secret-old-secret-0123".as_slice()]);
        assert!(rotated.verify(&token).is_ok(), "a previous key still verifies its tokens");
        let fresh = rotated.sign(&claims(TokenType::PlatformUser, TenantId::new(), 600)).unwrap();
        let kid = jsonwebtoken::decode_header(&fresh).unwrap().kid.unwrap();
        assert_eq!(kid, rotated.current_kid());
        assert_ne!(kid, old.current_kid());
        assert_eq!(old.verify(&fresh).unwrap_err().code(), "auth.invalid_token", "unknown kid");

        // The same signature under another (or no) kid is refused.
        let forged_header = |header: &str| {
            let (_, rest) = token.split_once('.').unwrap();
            format!("{header}.{rest}")
        };
        let no_kid = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9"; // {"typ":"JWT","alg":"HS256"}
        assert_eq!(rotated.verify(&forged_header(no_kid)).unwrap_err().code(), "auth.invalid_token");
    }

    #[test]
    fn staff_tokens_belong_to_the_platform_tenant_only() {
        let forged = keys().sign(&claims(TokenType::AdminUser, TenantId::new(), 600)).unwrap();
        assert!(keys().verify(&forged).is_err());
        let odd = keys().sign(&claims(TokenType::PlatformUser, PLATFORM_TENANT_ID, 600)).unwrap();
        assert!(keys().verify(&odd).is_err());
        let staff = keys().sign(&claims(TokenType::AdminUser, PLATFORM_TENANT_ID, 600)).unwrap();
        assert!(keys().verify(&staff).is_ok());
    }

    #[test]
    fn minted_tokens_pick_the_type_from_the_tenant() {
        let token = keys()
            .mint(UserId::new(), "x@y.example", "admin", PLATFORM_TENANT_ID, &["platform:tenants:read"], 60)
            .unwrap();
        let claims = keys().verify(&token).unwrap();
        assert_eq!(claims.kind, TokenType::AdminUser);
        assert_eq!(claims.exp - claims.iat, 60);
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!(json["type"], "ADMIN_USER");
        assert!(json.get("tenantId").is_some());
    }
}
