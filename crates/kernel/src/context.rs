//! Who is acting, for which tenant: resolved once at the edge, passed down typed.

use std::collections::BTreeSet;
use std::fmt;

use crate::{ApiKeyId, PLATFORM_TENANT_ID, TenantId, UserId};

/// The id that ties together every log line and audit row of one request.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// Longest id accepted from a caller.
    pub const MAX_LEN: usize = 64;

    /// A fresh id (a UUIDv7: sortable by time).
    #[must_use]
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// Accepts a caller's id if well-formed: 1 to 64 of `A-Z a-z 0-9 - _ .`.
    /// Anything else (which could forge log lines) is refused.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let well_formed = !text.is_empty()
            && text.len() <= Self::MAX_LEN
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        well_formed.then(|| Self(text.to_owned()))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.0)
    }
}

/// Where a request came from, recorded on its audit rows: the client's
/// address (behind trusted proxies, the forwarded one) and user agent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The client's address; `None` for work that no client asked for.
    pub ip: Option<std::net::IpAddr>,
    /// The client's `User-Agent`, cut to [`Origin::MAX_USER_AGENT`] characters.
    pub user_agent: Option<String>,
}

impl Origin {
    /// Longest user agent kept.
    pub const MAX_USER_AGENT: usize = 512;

    /// An origin from a request's address and `User-Agent`.
    #[must_use]
    pub fn new(ip: Option<std::net::IpAddr>, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent
            .map(|ua| ua.chars().filter(|c| !c.is_control()).take(Self::MAX_USER_AGENT).collect::<String>())
            .filter(|ua| !ua.is_empty());
        Self { ip, user_agent }
    }
}

/// Who performs an action: recorded on every audit row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in person, through the membership of `tenant_id` their token carries.
    User {
        /// The person.
        user_id: UserId,
        /// The tenant whose membership the person acts through (the platform
        /// tenant for the platform's own staff).
        tenant_id: TenantId,
    },
    /// A tenant's API key.
    ApiKey {
        /// The key.
        key_id: ApiKeyId,
        /// The tenant that owns the key.
        tenant_id: TenantId,
    },
    /// The platform itself: a background job, a scheduled sweep, bootstrap.
    System {
        /// What is acting (`bootstrap`, `job:send_message`).
        name: String,
    },
}

impl Actor {
    /// The platform acting on its own behalf, named for the audit trail.
    #[must_use]
    pub fn system(name: impl Into<String>) -> Self {
        Self::System { name: name.into() }
    }

    /// The tenant the actor belongs to; `None` for the system.
    #[must_use]
    pub const fn home_tenant(&self) -> Option<TenantId> {
        match self {
            Self::User { tenant_id, .. } | Self::ApiKey { tenant_id, .. } => Some(*tenant_id),
            Self::System { .. } => None,
        }
    }
}

/// Why a context may not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// Only the platform's staff with a platform permission may act across tenants.
    #[error("this action needs a platform permission")]
    NotPlatform,
}

/// The tenant a request acts on, who acts, and what they may do.
///
/// Built once per request at the edge (from a token, a session or an API
/// key) and passed to every store method, which scopes its queries to
/// [`tenant_id`](Self::tenant_id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantContext {
    /// The tenant whose data this request reads and writes.
    pub tenant_id: TenantId,
    /// Who acts.
    pub actor: Actor,
    /// The permissions (`tenants:read`, ...) the actor holds in this tenant.
    pub permissions: BTreeSet<String>,
    /// The request this work belongs to.
    pub request_id: RequestId,
    /// Where the request came from.
    pub origin: Origin,
}

impl TenantContext {
    /// Whether the actor holds `permission`.
    #[must_use]
    pub fn has(&self, permission: &str) -> bool {
        self.permissions.contains(permission)
    }

    /// True when the actor belongs to another tenant than the one acted on:
    /// the platform's staff acting on a customer tenant. Audited as such.
    #[must_use]
    pub fn is_cross_tenant(&self) -> bool {
        self.actor.home_tenant().is_some_and(|home| home != self.tenant_id)
    }

    /// The platform-wide scope, for the platform's staff holding at least one
    /// `platform:` permission; everyone else gets [`ContextError::NotPlatform`].
    pub fn platform(&self) -> Result<PlatformContext, ContextError> {
        let platform_staff = self.actor.home_tenant() == Some(PLATFORM_TENANT_ID);
        let platform_permission = self.permissions.iter().any(|p| p.starts_with("platform:"));
        if platform_staff && platform_permission {
            Ok(PlatformContext {
                actor: self.actor.clone(),
                request_id: self.request_id.clone(),
                origin: self.origin.clone(),
            })
        } else {
            Err(ContextError::NotPlatform)
        }
    }
}

/// Permission to act across tenants: list every tenant, create one, sweep.
///
/// Only [`TenantContext::platform`] (for platform staff) and
/// [`PlatformContext::system`] (for the platform's own jobs) make one, so a
/// store method that takes it cannot be reached by a tenant's user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformContext {
    /// Who acts.
    pub actor: Actor,
    /// The request (or job run) this work belongs to.
    pub request_id: RequestId,
    /// Where the request came from (nowhere, for the platform's own work).
    pub origin: Origin,
}

impl PlatformContext {
    /// The platform acting on its own behalf (bootstrap, jobs, sweeps).
    #[must_use]
    pub fn system(name: impl Into<String>) -> Self {
        Self { actor: Actor::system(name), request_id: RequestId::generate(), origin: Origin::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(actor: Actor, tenant_id: TenantId, permissions: &[&str]) -> TenantContext {
        TenantContext {
            tenant_id,
            actor,
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            request_id: RequestId::generate(),
            origin: Origin::default(),
        }
    }

    #[test]
    fn origins_keep_a_printable_bounded_user_agent() {
        let origin = Origin::new(None, Some("curl/8.5\n\u{7}x"));
        assert_eq!(origin.user_agent.as_deref(), Some("curl/8.5x"));
        assert_eq!(Origin::new(None, Some(&"a".repeat(600))).user_agent.map(|ua| ua.len()), Some(512));
        assert_eq!(Origin::new(None, Some("\n")).user_agent, None);
    }

    #[test]
    fn request_ids_from_callers_must_be_well_formed() {
        assert!(RequestId::parse("abc-123_X.y").is_some());
        assert!(RequestId::parse(&"a".repeat(64)).is_some());
        assert!(RequestId::parse(&"a".repeat(65)).is_none());
        assert!(RequestId::parse("").is_none());
        assert!(RequestId::parse("line\nbreak").is_none());
        assert!(RequestId::parse("spa ce").is_none());
        assert!(RequestId::parse("ünï").is_none());
    }

    #[test]
    fn generated_request_ids_are_accepted_back() {
        let id = RequestId::generate();
        assert_eq!(RequestId::parse(id.as_str()), Some(id));
    }

    #[test]
    fn permissions_are_looked_up_exactly() {
        let ctx = context(Actor::system("test"), TenantId::new(), &["tenants:read"]);
        assert!(ctx.has("tenants:read"));
        assert!(!ctx.has("tenants:write"));
        assert!(!ctx.has("tenants"));
    }

    #[test]
    fn platform_staff_acting_on_a_customer_is_cross_tenant() {
        let customer = TenantId::new();
        let staff = Actor::User { user_id: UserId::new(), tenant_id: PLATFORM_TENANT_ID };
        assert!(context(staff.clone(), customer, &[]).is_cross_tenant());
        assert!(!context(staff, PLATFORM_TENANT_ID, &[]).is_cross_tenant());
        let own_user = Actor::User { user_id: UserId::new(), tenant_id: customer };
        assert!(!context(own_user, customer, &[]).is_cross_tenant());
        assert!(!context(Actor::system("job"), customer, &[]).is_cross_tenant());
    }

    #[test]
    fn platform_scope_needs_platform_staff_with_a_platform_permission() {
        let staff = Actor::User { user_id: UserId::new(), tenant_id: PLATFORM_TENANT_ID };
        let granted = context(staff.clone(), PLATFORM_TENANT_ID, &["platform:tenants:read"]);
        assert_eq!(granted.platform().unwrap().actor, staff);

        let no_permission = context(staff, PLATFORM_TENANT_ID, &["tenants:read"]);
        assert_eq!(no_permission.platform(), Err(ContextError::NotPlatform));

        let customer = TenantId::new();
        let customer_admin = Actor::User { user_id: UserId::new(), tenant_id: customer };
        let forged = context(customer_admin, customer, &["platform:tenants:read"]);
        assert_eq!(forged.platform(), Err(ContextError::NotPlatform));

        let key = Actor::ApiKey { key_id: ApiKeyId::new(), tenant_id: customer };
        assert_eq!(context(key, customer, &["platform:x"]).platform(), Err(ContextError::NotPlatform));
    }

    #[test]
    fn home_tenant_of_each_actor() {
        let tenant = TenantId::new();
        assert_eq!(Actor::User { user_id: UserId::new(), tenant_id: tenant }.home_tenant(), Some(tenant));
        assert_eq!(Actor::ApiKey { key_id: ApiKeyId::new(), tenant_id: tenant }.home_tenant(), Some(tenant));
        assert_eq!(Actor::system("sweep").home_tenant(), None);
    }
}
