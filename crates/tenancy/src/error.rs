//! Everything that can go wrong in the tenancy domain, each with a stable code.

use portico_kernel::{DomainError, ErrorKind, InfraError, ValidationErrors};

use crate::{TenantStatus, TenantTransition};

/// A failed tenancy operation.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    /// The command's fields break the rules; each failing field is named.
    #[error("invalid tenant: {0}")]
    Invalid(ValidationErrors),
    /// No such tenant in the caller's scope (or it was deleted).
    #[error("tenant not found")]
    NotFound,
    /// Another tenant already uses this slug (deleted tenants keep theirs).
    #[error("the slug `{0}` is taken")]
    SlugTaken(String),
    /// The lifecycle does not allow this transition from the current status.
    #[error("cannot {action} a tenant that is {from}")]
    InvalidTransition {
        /// The tenant's current status.
        from: TenantStatus,
        /// What was asked.
        action: TenantTransition,
    },
    /// The platform tenant cannot be suspended, deactivated or deleted.
    #[error("the platform tenant cannot be suspended, deactivated or deleted")]
    PlatformTenantProtected,
    /// Settings break the rules; each failing field is named.
    #[error("invalid settings: {0}")]
    InvalidSettings(ValidationErrors),
    /// Branding breaks the rules; each failing field is named.
    #[error("invalid branding: {0}")]
    InvalidBranding(ValidationErrors),
    /// An onboarding or sign-up breaks the rules; each failing field is named.
    #[error("invalid onboarding: {0}")]
    InvalidOnboarding(ValidationErrors),
    /// No industry profile has this key.
    #[error("no industry profile `{0}`")]
    UnknownIndustry(String),
    /// No feature has this key.
    #[error("no feature `{0}`")]
    UnknownFeature(String),
    /// The route belongs to a feature the tenant does not have.
    #[error("the feature `{0}` is not enabled for this tenant")]
    FeatureDisabled(String),
    /// A tenant out of service (suspended, inactive) cannot be onboarded.
    #[error("the tenant is {0}, not in service")]
    NotInService(TenantStatus),
    /// The tenant was onboarded already, with other details.
    #[error("the tenant was onboarded already")]
    AlreadyOnboarded,
    /// Only the platform's staff change a tenant's industry.
    #[error("only the platform's staff change a tenant's industry")]
    IndustryLocked,
    /// Another tenant uses this custom domain.
    #[error("the domain is used by another tenant")]
    DomainTaken,
    /// No logo was uploaded.
    #[error("no logo")]
    LogoNotFound,
    /// The uploaded logo is refused.
    #[error(transparent)]
    Logo(#[from] crate::logo::LogoError),
    /// The owner could not be invited (their address, an existing membership, ...).
    #[error("the owner cannot be invited: {0}")]
    Owner(IdentityError),
    /// The platform's stock of a channel cannot cover the welcome credits.
    #[error("the platform has too few {0} credits for the welcome credits")]
    WelcomeCreditsUnavailable(String),
    /// The industry catalogue in the repository is broken (a fault, not the caller's).
    #[error("industry catalogue: {0}")]
    Catalogue(String),
    /// The store failed; details go to the logs, not the caller.
    #[error(transparent)]
    Store(#[from] InfraError),
}

impl DomainError for TenancyError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_)
            | Self::InvalidSettings(_)
            | Self::InvalidBranding(_)
            | Self::InvalidOnboarding(_)
            | Self::UnknownIndustry(_)
            | Self::UnknownFeature(_)
            | Self::Logo(_) => ErrorKind::Validation,
            Self::NotFound | Self::LogoNotFound => ErrorKind::NotFound,
            Self::SlugTaken(_)
            | Self::InvalidTransition { .. }
            | Self::NotInService(_)
            | Self::AlreadyOnboarded
            | Self::DomainTaken => ErrorKind::Conflict,
            Self::PlatformTenantProtected | Self::FeatureDisabled(_) | Self::IndustryLocked => {
                ErrorKind::Forbidden
            }
            Self::Catalogue(_) => ErrorKind::Internal,
            Self::Owner(error) => error.kind(),
            Self::WelcomeCreditsUnavailable(_) => ErrorKind::Conflict,
            Self::Store(infra) => infra.kind(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "tenancy.invalid_tenant",
            Self::NotFound => "tenancy.tenant_not_found",
            Self::SlugTaken(_) => "tenancy.slug_taken",
            Self::InvalidTransition { .. } => "tenancy.invalid_transition",
            Self::PlatformTenantProtected => "tenancy.platform_tenant_protected",
            Self::InvalidSettings(_) => "tenancy.invalid_settings",
            Self::InvalidBranding(_) => "tenancy.invalid_branding",
            Self::InvalidOnboarding(_) => "tenancy.invalid_onboarding",
            Self::UnknownIndustry(_) => "tenancy.unknown_industry",
            Self::UnknownFeature(_) => "tenancy.unknown_feature",
            Self::FeatureDisabled(_) => "tenancy.feature_disabled",
            Self::NotInService(_) => "tenancy.not_in_service",
            Self::AlreadyOnboarded => "tenancy.already_onboarded",
            Self::DomainTaken => "tenancy.domain_taken",
            Self::IndustryLocked => "tenancy.industry_locked",
            Self::LogoNotFound => "tenancy.logo_not_found",
            Self::Logo(error) => error.code(),
            Self::Catalogue(_) => "internal",
            Self::Owner(error) => error.code(),
            Self::WelcomeCreditsUnavailable(_) => "tenancy.welcome_credits_unavailable",
            Self::Store(infra) if infra.kind() == ErrorKind::Unavailable => "store.unavailable",
            Self::Store(_) => "internal",
        }
    }
}

/// A failed sign-in, session or identity operation.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Not an email address.
    #[error("not a valid email address")]
    InvalidEmail,
    /// A new password breaks the policy.
    #[error("the password is not acceptable: {0}")]
    WeakPassword(&'static str),
    /// Hashing failed (a fault, not the caller's).
    #[error("password hashing failed: {0}")]
    Hashing(String),
    /// Wrong email or password (the same answer for both).
    #[error("the email or password is wrong")]
    InvalidCredentials,
    /// Too many failed sign-ins in a row: wait this long.
    #[error("too many failed sign-ins; try again in {retry_after_secs} s")]
    TooManyAttempts {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// The account may not sign in (inactive, suspended, pending).
    #[error("this account cannot sign in")]
    AccountDisabled,
    /// The person has no usable membership (of the named tenant).
    #[error("no membership of that tenant")]
    NoMembership,
    /// Several tenants: name one. The names and slugs to choose from.
    #[error("choose a tenant to sign in to")]
    TenantSelectionRequired(Vec<(String, String)>),
    /// The refresh token is unknown, expired, or its session ended.
    #[error("the refresh token is not valid")]
    InvalidRefreshToken,
    /// A refresh token already used was presented again: the session was ended.
    #[error("the refresh token was already used; the session has been ended")]
    RefreshTokenReused,
    /// No such session of this person.
    #[error("session not found")]
    SessionNotFound,
    /// The email belongs to another person.
    #[error("the email is taken")]
    EmailTaken,
    /// The emailed token is unknown, used, expired, or for another address.
    #[error("the link is invalid, used or expired")]
    InvalidOneTimeToken,
    /// MFA is on already (turn it off first to set up a new authenticator).
    #[error("MFA is already on")]
    MfaAlreadyEnabled,
    /// There is no authenticator being set up (or MFA is off) for this.
    #[error("MFA is not set up")]
    MfaNotSetUp,
    /// The authenticator or recovery code is wrong or was used already.
    #[error("the code is wrong or was used already")]
    InvalidMfaCode,
    /// No such membership in this tenant.
    #[error("membership not found")]
    MembershipNotFound,
    /// The change would leave the tenant without an owner.
    #[error("a tenant always keeps at least one owner")]
    LastOwner,
    /// Platform roles exist only in the platform tenant (and tenant roles only elsewhere).
    #[error("this role cannot be held in this tenant")]
    RoleNotAllowed,
    /// No such API key in this tenant.
    #[error("API key not found")]
    ApiKeyNotFound,
    /// An API key may only carry permissions its creator holds here.
    #[error("you do not hold the permission `{0}` to give it")]
    PermissionNotHeld(String),
    /// No such custom role in this tenant.
    #[error("role not found")]
    RoleNotFound,
    /// Another of the tenant's roles has this name.
    #[error("a role with this name exists")]
    RoleNameTaken,
    /// People still hold the role: give them another first.
    #[error("{0} people hold this role; give them another role first")]
    RoleInUse(u64),
    /// A role's name or description breaks the rules.
    #[error("the role is not valid: {0}")]
    InvalidRole(&'static str),
    /// Not a permission of the catalogue.
    #[error("`{0}` is not a permission")]
    UnknownPermission(String),
    /// Platform permissions come only with the platform's built-in roles.
    #[error("`{0}` is a platform permission; only the platform's staff roles hold it")]
    PlatformPermission(String),
    /// Nobody grants what they do not hold.
    #[error("you do not hold `{0}`, so you cannot grant it")]
    GrantNotHeld(String),
    /// No open invitation for this membership.
    #[error("invitation not found")]
    InvitationNotFound,
    /// The invitation token is unknown, accepted, revoked or expired.
    #[error("the invitation is invalid, used or expired")]
    InvalidInvitation,
    /// The person already belongs to the tenant.
    #[error("this person is already a member")]
    AlreadyMember,
    /// The person is invited already: resend the invitation instead.
    #[error("this person is invited already; resend the invitation instead")]
    AlreadyInvited,
    /// A person who has signed up manages their own name and phone.
    #[error("this person manages their own name and phone")]
    ProfileLocked,
    /// A person's name or phone number breaks the rules.
    #[error("{0}")]
    InvalidPerson(&'static str),
    /// A new account needs a password to accept its invitation.
    #[error("choose a password to accept the invitation")]
    PasswordRequired,
    /// Nobody removes, deactivates or demotes themselves here.
    #[error("you cannot do this to your own membership")]
    OwnMembership,
    /// The store failed; details go to the logs, not the caller.
    #[error(transparent)]
    Store(#[from] InfraError),
}

impl DomainError for IdentityError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidEmail | Self::WeakPassword(_) => ErrorKind::Validation,
            Self::Hashing(_) => ErrorKind::Internal,
            Self::InvalidCredentials | Self::InvalidRefreshToken | Self::RefreshTokenReused => {
                ErrorKind::Unauthorized
            }
            Self::TooManyAttempts { .. } => ErrorKind::RateLimited,
            Self::AccountDisabled | Self::NoMembership => ErrorKind::Forbidden,
            Self::TenantSelectionRequired(_)
            | Self::EmailTaken
            | Self::MfaAlreadyEnabled
            | Self::MfaNotSetUp => ErrorKind::Conflict,
            Self::InvalidMfaCode => ErrorKind::Unauthorized,
            Self::SessionNotFound | Self::ApiKeyNotFound | Self::MembershipNotFound => ErrorKind::NotFound,
            Self::LastOwner => ErrorKind::Conflict,
            Self::RoleNotAllowed => ErrorKind::Validation,
            Self::PermissionNotHeld(_) | Self::InvalidOneTimeToken => ErrorKind::Validation,
            Self::RoleNotFound | Self::InvitationNotFound => ErrorKind::NotFound,
            Self::RoleNameTaken
            | Self::RoleInUse(_)
            | Self::AlreadyMember
            | Self::AlreadyInvited
            | Self::ProfileLocked
            | Self::OwnMembership => ErrorKind::Conflict,
            Self::InvalidRole(_)
            | Self::UnknownPermission(_)
            | Self::PlatformPermission(_)
            | Self::InvalidInvitation
            | Self::InvalidPerson(_)
            | Self::PasswordRequired => ErrorKind::Validation,
            Self::GrantNotHeld(_) => ErrorKind::Forbidden,
            Self::Store(infra) => infra.kind(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::InvalidEmail => "auth.invalid_email",
            Self::WeakPassword(_) => "auth.weak_password",
            Self::Hashing(_) => "internal",
            Self::InvalidCredentials => "auth.invalid_credentials",
            Self::TooManyAttempts { .. } => "auth.too_many_attempts",
            Self::AccountDisabled => "auth.account_disabled",
            Self::NoMembership => "auth.no_membership",
            Self::TenantSelectionRequired(_) => "auth.tenant_selection_required",
            Self::InvalidRefreshToken => "auth.invalid_refresh_token",
            Self::RefreshTokenReused => "auth.refresh_token_reused",
            Self::SessionNotFound => "auth.session_not_found",
            Self::EmailTaken => "auth.email_taken",
            Self::ApiKeyNotFound => "api_keys.not_found",
            Self::MembershipNotFound => "memberships.not_found",
            Self::LastOwner => "memberships.last_owner",
            Self::RoleNotAllowed => "memberships.role_not_allowed",
            Self::MfaAlreadyEnabled => "auth.mfa_already_enabled",
            Self::MfaNotSetUp => "auth.mfa_not_set_up",
            Self::InvalidMfaCode => "auth.invalid_mfa_code",
            Self::InvalidOneTimeToken => "auth.invalid_link",
            Self::PermissionNotHeld(_) => "api_keys.permission_not_held",
            Self::RoleNotFound => "roles.not_found",
            Self::RoleNameTaken => "roles.name_taken",
            Self::RoleInUse(_) => "roles.in_use",
            Self::InvalidRole(_) => "roles.invalid",
            Self::UnknownPermission(_) => "rbac.unknown_permission",
            Self::PlatformPermission(_) => "rbac.platform_permission",
            Self::GrantNotHeld(_) => "rbac.permission_not_held",
            Self::InvitationNotFound => "invitations.not_found",
            Self::InvalidInvitation => "invitations.invalid",
            Self::AlreadyMember => "people.already_member",
            Self::AlreadyInvited => "invitations.already_invited",
            Self::ProfileLocked => "people.profile_locked",
            Self::OwnMembership => "people.own_membership",
            Self::InvalidPerson(_) => "people.invalid",
            Self::PasswordRequired => "invitations.password_required",
            Self::Store(infra) if infra.kind() == ErrorKind::Unavailable => "store.unavailable",
            Self::Store(_) => "internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_a_kind_and_a_stable_code() {
        let cases = [
            (TenancyError::NotFound, ErrorKind::NotFound, "tenancy.tenant_not_found"),
            (TenancyError::SlugTaken("acme".into()), ErrorKind::Conflict, "tenancy.slug_taken"),
            (
                TenancyError::InvalidTransition {
                    from: TenantStatus::Inactive,
                    action: TenantTransition::Suspend,
                },
                ErrorKind::Conflict,
                "tenancy.invalid_transition",
            ),
            (
                TenancyError::PlatformTenantProtected,
                ErrorKind::Forbidden,
                "tenancy.platform_tenant_protected",
            ),
            (
                TenancyError::Invalid(ValidationErrors::field("slug", "is reserved")),
                ErrorKind::Validation,
                "tenancy.invalid_tenant",
            ),
            (
                TenancyError::Store(InfraError::unavailable("down")),
                ErrorKind::Unavailable,
                "store.unavailable",
            ),
            (TenancyError::Store(InfraError::internal("bug")), ErrorKind::Internal, "internal"),
            (
                TenancyError::InvalidSettings(ValidationErrors::field("timeZone", "unknown")),
                ErrorKind::Validation,
                "tenancy.invalid_settings",
            ),
            (
                TenancyError::InvalidBranding(ValidationErrors::field("primaryColor", "not hex")),
                ErrorKind::Validation,
                "tenancy.invalid_branding",
            ),
            (
                TenancyError::InvalidOnboarding(ValidationErrors::field("slug", "taken")),
                ErrorKind::Validation,
                "tenancy.invalid_onboarding",
            ),
            (TenancyError::UnknownIndustry("x".into()), ErrorKind::Validation, "tenancy.unknown_industry"),
            (TenancyError::UnknownFeature("x".into()), ErrorKind::Validation, "tenancy.unknown_feature"),
            (TenancyError::FeatureDisabled("crm".into()), ErrorKind::Forbidden, "tenancy.feature_disabled"),
            (
                TenancyError::NotInService(TenantStatus::Suspended),
                ErrorKind::Conflict,
                "tenancy.not_in_service",
            ),
            (TenancyError::AlreadyOnboarded, ErrorKind::Conflict, "tenancy.already_onboarded"),
            (TenancyError::DomainTaken, ErrorKind::Conflict, "tenancy.domain_taken"),
            (TenancyError::IndustryLocked, ErrorKind::Forbidden, "tenancy.industry_locked"),
            (TenancyError::LogoNotFound, ErrorKind::NotFound, "tenancy.logo_not_found"),
            (TenancyError::Logo(crate::logo::LogoError::Empty), ErrorKind::Validation, "tenancy.logo_empty"),
            (TenancyError::Catalogue("broken".into()), ErrorKind::Internal, "internal"),
            (TenancyError::Owner(IdentityError::AlreadyMember), ErrorKind::Conflict, "people.already_member"),
            (
                TenancyError::WelcomeCreditsUnavailable("sms".into()),
                ErrorKind::Conflict,
                "tenancy.welcome_credits_unavailable",
            ),
        ];
        for (error, kind, code) in cases {
            assert_eq!((error.kind(), error.code()), (kind, code), "{error}");
        }
    }

    #[test]
    fn transition_errors_read_naturally() {
        let error = TenancyError::InvalidTransition {
            from: TenantStatus::Inactive,
            action: TenantTransition::Suspend,
        };
        assert_eq!(error.to_string(), "cannot suspend a tenant that is inactive");
    }
}
