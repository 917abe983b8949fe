//! People and what they may do where: users are global (one per email), and
//! a membership gives a user a role in one tenant.

use chrono::{DateTime, Utc};
use portico_kernel::{MembershipId, TenantId, UserId};
use serde::{Deserialize, Serialize};

use crate::IdentityError;

/// An email address as Portico keeps it: trimmed and lower-cased, so one
/// person has one account whatever case they type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// The normalised address, or why `text` is not one.
    pub fn parse(text: &str) -> Result<Self, IdentityError> {
        let normalised = text.trim().to_lowercase();
        let well_formed = (3..=254).contains(&normalised.len())
            && !normalised.chars().any(|c| c.is_whitespace() || c.is_control())
            && normalised.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if well_formed { Ok(Self(normalised)) } else { Err(IdentityError::InvalidEmail) }
    }

    /// The address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = IdentityError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.0
    }
}

impl std::fmt::Display for Email {
    /// Masked: an email shown in a log keeps its domain only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&portico_kernel::redact::email(&self.0))
    }
}

/// Declares a closed set of values with its JSON (SCREAMING) and storage (lower case) names.
macro_rules! closed_set {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $stored:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            /// The name stored in the database.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $stored,)*
                }
            }

            /// The value of a stored name.
            #[must_use]
            pub fn from_storage(stored: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|value| value.as_str() == stored)
            }
        }
    };
}

closed_set!(
    /// Whether a person may sign in.
    UserStatus {
        /// May sign in.
        Active = "active",
        /// Switched off by an administrator; may not sign in.
        Inactive = "inactive",
        /// Barred (abuse, a security concern); may not sign in.
        Suspended = "suspended",
        /// Invited, no password set yet; may not sign in.
        Pending = "pending",
    }
);

closed_set!(
    /// What a person is to a tenant.
    MembershipKind {
        /// Runs the tenant.
        Owner = "owner",
        /// Administers it.
        Admin = "admin",
        /// Works there.
        Staff = "staff",
        /// Learns there (education tenants).
        Student = "student",
        /// A student's parent (education tenants).
        Parent = "parent",
        /// Reads only.
        Viewer = "viewer",
    }
);

closed_set!(
    /// Whether a membership is in force.
    MembershipStatus {
        /// In force.
        Active = "active",
        /// Invited, not accepted yet.
        Invited = "invited",
        /// Suspended by the tenant.
        Suspended = "suspended",
    }
);

closed_set!(
    /// A built-in role: a fixed set of permissions. Platform roles are held
    /// only through a membership of the platform tenant.
    Role {
        /// Everything, on every tenant.
        PlatformOwner = "platform_owner",
        /// Manages tenants and operations.
        PlatformAdmin = "platform_admin",
        /// Reads everything, changes nothing.
        PlatformSupport = "platform_support",
        /// Everything in one's own tenant.
        Owner = "owner",
        /// Administers one's own tenant.
        Admin = "admin",
        /// Works in one's own tenant.
        Staff = "staff",
        /// Reads one's own tenant.
        Viewer = "viewer",
        /// One of the tenant's own roles (its permissions come with the membership).
        Custom = "custom",
    }
);

/// A tenant's owner: everything an administrator may do, and acting on
/// owners (`owners:manage`, last, so the administrator's set is a prefix).
const TENANT_OWNER: &[&str] = &[
    "tenants:read",
    "tenants:write",
    "audit:read",
    "api_keys:manage",
    "roles:read",
    "roles:write",
    "memberships:write",
    "people:read",
    "people:write",
    "credits:read",
    "credits:purchase",
    "credits:spend",
    "metering:read",
    "metering:write",
    "metering:ingest",
    "metering:close",
    "crm:read",
    "crm:write",
    "tickets:read",
    "tickets:write",
    "owners:manage",
];

/// A tenant's administrator: an owner but for `owners:manage`.
const TENANT_ADMIN: &[&str] = TENANT_OWNER.split_at(TENANT_OWNER.len() - 1).0;

/// The platform's owner: everything, `owners:manage` last (as above).
const PLATFORM_OWNER: &[&str] = &[
    "platform:tenants:read",
    "platform:tenants:write",
    "platform:jobs:read",
    "platform:jobs:write",
    "platform:audit:read",
    "platform:people:read",
    "platform:people:write",
    "platform:admin_users:read",
    "platform:admin_users:write",
    "platform:credits:read",
    "platform:credits:write",
    "platform:credits:purchase",
    "tenants:read",
    "tenants:write",
    "audit:read",
    "api_keys:manage",
    "roles:read",
    "roles:write",
    "memberships:write",
    "people:read",
    "people:write",
    "credits:read",
    "credits:purchase",
    "credits:spend",
    "metering:read",
    "metering:write",
    "metering:ingest",
    "metering:close",
    "crm:read",
    "crm:write",
    "tickets:read",
    "tickets:write",
    "owners:manage",
];

/// The platform's administrator: its owner but for `owners:manage`.
const PLATFORM_ADMIN: &[&str] = PLATFORM_OWNER.split_at(PLATFORM_OWNER.len() - 1).0;

impl Role {
    /// What the role may do.
    #[must_use]
    pub const fn permissions(self) -> &'static [&'static str] {
        match self {
            Self::PlatformOwner => PLATFORM_OWNER,
            Self::PlatformAdmin => PLATFORM_ADMIN,
            Self::PlatformSupport => &[
                "platform:tenants:read",
                "platform:jobs:read",
                "platform:audit:read",
                "platform:people:read",
                "platform:admin_users:read",
                "platform:credits:read",
                "tenants:read",
                "audit:read",
                "roles:read",
                "people:read",
                "credits:read",
                "metering:read",
                "crm:read",
                "tickets:read",
            ],
            Self::Owner => TENANT_OWNER,
            Self::Admin => TENANT_ADMIN,
            // Staff send messages, which spend credits, read meters, and work the CRM and
            // tickets; viewers only look.
            Self::Staff => &[
                "tenants:read",
                "roles:read",
                "credits:read",
                "credits:spend",
                "metering:read",
                "metering:ingest",
                "crm:read",
                "crm:write",
                "tickets:read",
                "tickets:write",
            ],
            Self::Viewer => {
                &["tenants:read", "roles:read", "credits:read", "metering:read", "crm:read", "tickets:read"]
            }
            // A custom role's permissions are the tenant's, kept with the membership.
            Self::Custom => &[],
        }
    }

    /// Whether the role makes its holder an owner (of whom a tenant keeps one).
    #[must_use]
    pub const fn is_owner(self) -> bool {
        matches!(self, Self::Owner | Self::PlatformOwner)
    }

    /// Whether only members of the platform tenant may hold it.
    #[must_use]
    pub const fn is_platform(self) -> bool {
        matches!(self, Self::PlatformOwner | Self::PlatformAdmin | Self::PlatformSupport)
    }
}

/// A person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The person's id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: UserId,
    /// Normalised (lower case); unique.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Email))]
    pub email: Email,
    /// Display name.
    pub name: String,
    /// Phone number, if given.
    pub phone: Option<String>,
    /// Whether the person may sign in.
    pub status: UserStatus,
    /// Whether the address was confirmed.
    pub email_verified: bool,
    /// Whether sign-in asks for a second factor.
    pub mfa_enabled: bool,
    /// Whether an administrator requires a second factor: until one is set
    /// up, the person's tokens carry no permissions.
    pub mfa_required: bool,
    /// The last successful sign-in.
    pub last_login_at: Option<DateTime<Utc>>,
    /// When the person was created.
    pub created_at: DateTime<Utc>,
}

/// A person's place in one tenant, as sign-in sees it (before any tenant is
/// chosen): the tenant's name and state come with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipView {
    /// The membership.
    pub id: MembershipId,
    /// The tenant.
    pub tenant_id: TenantId,
    /// Its slug (what a person types to choose it).
    pub tenant_slug: String,
    /// Its name.
    pub tenant_name: String,
    /// Whether the tenant is in service (`active`, `trial`, `suspended`, `inactive`).
    pub tenant_status: crate::TenantStatus,
    /// The role.
    pub role: Role,
    /// The tenant's own role, when `role` is [`Role::Custom`].
    pub custom_role: Option<crate::CustomRoleGrant>,
    /// What the person is to the tenant.
    pub kind: MembershipKind,
    /// Whether the membership is in force.
    pub status: MembershipStatus,
}

impl MembershipView {
    /// What the membership may do: its built-in role's permissions, or its
    /// custom role's (catalogued, non-platform ones only, whatever is stored).
    #[must_use]
    pub fn permissions(&self) -> Vec<String> {
        match (&self.custom_role, self.role) {
            (Some(custom), Role::Custom) => crate::roles::grantable(&custom.permissions),
            (_, Role::Custom) => Vec::new(),
            (_, role) => role.permissions().iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    /// Whether sign-in may use it: an active membership of a tenant that is
    /// not switched off (a suspended tenant's people can still sign in; its
    /// routes other than sign-in refuse them).
    #[must_use]
    pub fn usable(&self) -> bool {
        self.status == MembershipStatus::Active && self.tenant_status != crate::TenantStatus::Inactive
    }
}

/// Which membership a sign-in gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantChoice {
    /// This one.
    Chosen(MembershipView),
    /// The person belongs to several tenants and named none (or none of
    /// theirs): they must choose; these are the names to choose from.
    SelectionRequired(Vec<MembershipView>),
    /// No usable membership (or the named tenant is not one of the person's).
    NoMembership,
}

/// Picks the membership a sign-in gets: the only usable one, or the one
/// whose tenant slug or id is `wanted`.
#[must_use]
pub fn choose_tenant(memberships: Vec<MembershipView>, wanted: Option<&str>) -> TenantChoice {
    let mut usable: Vec<MembershipView> = memberships.into_iter().filter(MembershipView::usable).collect();
    if let Some(wanted) = wanted.map(str::trim).filter(|w| !w.is_empty()) {
        let wanted = wanted.to_ascii_lowercase();
        return match usable.iter().position(|m| m.tenant_slug == wanted || m.tenant_id.to_string() == wanted)
        {
            Some(index) => TenantChoice::Chosen(usable.swap_remove(index)),
            None => TenantChoice::NoMembership,
        };
    }
    match usable.len() {
        0 => TenantChoice::NoMembership,
        1 => usable.pop().map_or(TenantChoice::NoMembership, TenantChoice::Chosen),
        _ => {
            usable.sort_by(|a, b| a.tenant_name.cmp(&b.tenant_name));
            TenantChoice::SelectionRequired(usable)
        }
    }
}

/// How long a person must wait after `failures` failed sign-ins in a row:
/// nothing for the first five, then 1 s doubling per failure up to 15
/// minutes. It never locks anyone out for good: the wait always ends.
#[must_use]
pub fn login_delay(failures: u32) -> std::time::Duration {
    const FREE: u32 = 5;
    const CAP_SECS: u64 = 15 * 60;
    if failures < FREE {
        return std::time::Duration::ZERO;
    }
    let exponent = (failures - FREE).min(20);
    std::time::Duration::from_secs((1u64 << exponent).min(CAP_SECS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TenantStatus;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse("  Alice@Example.COM ").unwrap().as_str(), "alice@example.com");
        for bad in
            ["", "alice", "alice@", "@example.com", "a@b", "a b@example.com", "a@@example.com", "a@.com"]
        {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Email::parse("alice@example.com").unwrap().to_string(), "a***@example.com");
    }

    fn membership(slug: &str, status: MembershipStatus, tenant_status: TenantStatus) -> MembershipView {
        MembershipView {
            id: MembershipId::new(),
            tenant_id: TenantId::new(),
            tenant_slug: slug.to_owned(),
            tenant_name: slug.to_uppercase(),
            tenant_status,
            role: Role::Owner,
            custom_role: None,
            kind: MembershipKind::Owner,
            status,
        }
    }

    #[test]
    fn one_usable_membership_is_chosen_several_need_a_choice() {
        let acme = membership("acme", MembershipStatus::Active, TenantStatus::Active);
        let globex = membership("globex", MembershipStatus::Active, TenantStatus::Suspended);
        let invited = membership("initech", MembershipStatus::Invited, TenantStatus::Active);
        let closed = membership("umbrella", MembershipStatus::Active, TenantStatus::Inactive);

        let only = choose_tenant(vec![acme.clone(), invited.clone(), closed.clone()], None);
        assert_eq!(only, TenantChoice::Chosen(acme.clone()));

        let several = choose_tenant(vec![globex.clone(), acme.clone()], None);
        assert_eq!(several, TenantChoice::SelectionRequired(vec![acme.clone(), globex.clone()]), "by name");

        assert_eq!(
            choose_tenant(vec![acme.clone(), globex.clone()], Some("GLOBEX")),
            TenantChoice::Chosen(globex)
        );
        let by_id = acme.tenant_id.to_string();
        assert_eq!(choose_tenant(vec![acme.clone()], Some(&by_id)), TenantChoice::Chosen(acme.clone()));
        assert_eq!(choose_tenant(vec![acme.clone()], Some("initech")), TenantChoice::NoMembership);
        assert_eq!(choose_tenant(vec![invited, closed], None), TenantChoice::NoMembership);
    }

    #[test]
    fn the_login_delay_grows_and_is_capped() {
        let secs = |n| login_delay(n).as_secs();
        assert_eq!((secs(0), secs(4)), (0, 0));
        assert_eq!((secs(5), secs(6), secs(7), secs(10)), (1, 2, 4, 32));
        assert_eq!((secs(15), secs(100), secs(u32::MAX)), (900, 900, 900));
    }

    #[test]
    fn platform_permissions_belong_to_platform_roles_only() {
        for role in Role::ALL {
            let platform = role.permissions().iter().any(|p| p.starts_with("platform:"));
            assert_eq!(platform, role.is_platform(), "{role:?}");
        }
        assert_eq!(Role::from_storage("platform_support"), Some(Role::PlatformSupport));
        assert!(!Role::PlatformSupport.permissions().iter().any(|p| p.ends_with(":write")));
    }
}
