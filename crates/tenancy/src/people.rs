//! A tenant's people as its administrators manage them: a person (global)
//! seen through their membership of the tenant, invitations, and the rules
//! for granting roles.

use chrono::{DateTime, Utc};
use portico_kernel::{MembershipId, RoleId, TenantId, UserId};
use serde::Serialize;

use crate::roles::check_grant;
use crate::{Email, IdentityError, MembershipKind, MembershipStatus, Role, UserStatus};

/// A role to give: a built-in one, or one of the tenant's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChoice {
    /// A built-in role.
    BuiltIn(Role),
    /// The tenant's custom role.
    Custom(RoleId),
}

impl RoleChoice {
    /// The choice a request names: `role` (not `CUSTOM`) or `roleId`, exactly one.
    pub fn from_request(role: Option<Role>, role_id: Option<RoleId>) -> Result<Self, IdentityError> {
        match (role, role_id) {
            (Some(Role::Custom) | None, Some(id)) => Ok(Self::Custom(id)),
            (Some(role), None) if role != Role::Custom => Ok(Self::BuiltIn(role)),
            _ => Err(IdentityError::InvalidRole("name either a built-in `role` or a custom `roleId`")),
        }
    }
}

/// Whether someone holding what `holds` says may give built-in `role` in
/// the platform tenant (`platform`) or another: platform roles only there
/// and only by who holds all they carry; other roles anywhere but their
/// permissions must be held by the giver (nobody grants what they lack).
pub fn may_give(role: Role, platform: bool, holds: impl Fn(&str) -> bool) -> Result<(), IdentityError> {
    if role.is_platform() != platform {
        return Err(IdentityError::RoleNotAllowed);
    }
    if role.is_platform() {
        return match role.permissions().iter().find(|p| !holds(p)) {
            Some(missing) => Err(IdentityError::GrantNotHeld((*missing).to_owned())),
            None => Ok(()),
        };
    }
    check_grant(role.permissions(), holds)
}

/// Whether someone holding what `holds` says may act on a membership whose
/// permissions are `target` (change its role, deactivate or remove it, reset
/// its password or second factor): only who holds all of them, so an
/// administrator does not act on an owner, nor staff on an administrator.
pub fn may_act_on<S: AsRef<str>>(target: &[S], holds: impl Fn(&str) -> bool) -> Result<(), IdentityError> {
    match target.iter().map(AsRef::as_ref).find(|p| !holds(p)) {
        Some(missing) => Err(IdentityError::GrantNotHeld(missing.to_owned())),
        None => Ok(()),
    }
}

/// The built-in role a kind of person gets when none is named.
#[must_use]
pub const fn default_role(kind: MembershipKind) -> Role {
    match kind {
        MembershipKind::Owner => Role::Owner,
        MembershipKind::Admin => Role::Admin,
        MembershipKind::Staff => Role::Staff,
        MembershipKind::Student | MembershipKind::Parent | MembershipKind::Viewer => Role::Viewer,
    }
}

/// An open invitation, as administrators see it (never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "sentAt": "2026-11-23T09:00:00Z", "sentCount": 1, "expiresAt": "2026-11-30T09:00:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct InvitationState {
    /// When it was last sent.
    pub sent_at: DateTime<Utc>,
    /// How many times it was sent.
    pub sent_count: u32,
    /// When its link stops working.
    pub expires_at: DateTime<Utc>,
}

/// A person as one tenant sees them: the person and their membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f", "userId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e60",
    "tenantId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e61", "email": "sam@acme.example", "name": "Sam Doe",
    "phone": null, "kind": "STAFF", "role": "STAFF", "roleId": null, "roleName": null, "status": "ACTIVE",
    "accountStatus": "ACTIVE", "emailVerified": true, "mfaEnabled": false, "mfaRequired": false,
    "lastLoginAt": "2026-11-23T09:00:00Z", "createdAt": "2026-11-20T09:00:00Z", "invitation": null
})))]
#[serde(rename_all = "camelCase")]
pub struct Person {
    /// The membership (what the people routes' `{id}` names).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: MembershipId,
    /// The person.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub user_id: UserId,
    /// The tenant.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub tenant_id: TenantId,
    /// Their address.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Email))]
    pub email: Email,
    /// Their name.
    pub name: String,
    /// Their phone number.
    pub phone: Option<String>,
    /// What they are to the tenant.
    pub kind: MembershipKind,
    /// Their role (`CUSTOM`: see `roleId`).
    pub role: Role,
    /// Their custom role.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub role_id: Option<RoleId>,
    /// Its name.
    pub role_name: Option<String>,
    /// Whether the membership is in force (`SUSPENDED`: deactivated here).
    pub status: MembershipStatus,
    /// Whether the person may sign in at all.
    pub account_status: UserStatus,
    /// Whether their address is confirmed.
    pub email_verified: bool,
    /// Whether they sign in with a second factor.
    pub mfa_enabled: bool,
    /// Whether a second factor is required of them.
    pub mfa_required: bool,
    /// Their last sign-in (anywhere).
    pub last_login_at: Option<DateTime<Utc>>,
    /// When they joined the tenant (or were invited).
    pub created_at: DateTime<Utc>,
    /// The open invitation, while invited.
    pub invitation: Option<InvitationState>,
}

/// Which people to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonFilter {
    /// Only this kind.
    pub kind: Option<MembershipKind>,
    /// Only this membership status.
    pub status: Option<MembershipStatus>,
    /// Only this built-in role.
    pub role: Option<Role>,
    /// Only whose email or name contains this (case-insensitive).
    pub search: Option<String>,
}

/// Someone to invite (`POST /api/v1/invitations`, `/platform-users`, `/admin-users`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPerson {
    /// Their address (an existing account is reused).
    pub email: Email,
    /// Their name, for a new account (trimmed, 1 to 200 characters).
    pub name: String,
    /// Their phone number, for a new account.
    pub phone: Option<String>,
    /// What they will be to the tenant.
    pub kind: MembershipKind,
    /// The role they get.
    pub role: RoleChoice,
}

/// A name as kept: trimmed, 1 to 200 printable characters.
pub fn person_name(name: &str) -> Result<String, IdentityError> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > 200 || name.chars().any(char::is_control) {
        return Err(IdentityError::InvalidPerson("the name must be 1 to 200 printable characters"));
    }
    Ok(name.to_owned())
}

/// A phone number as kept (trimmed; empty is none): 5 to 32 characters of
/// digits, spaces and `+ - ( ) .`, a `+` only in front, at least 5 digits.
pub fn person_phone(phone: Option<&str>) -> Result<Option<String>, IdentityError> {
    let Some(phone) = phone.map(str::trim).filter(|p| !p.is_empty()) else { return Ok(None) };
    let allowed = phone
        .char_indices()
        .all(|(i, c)| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '.') || (c == '+' && i == 0));
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    if !allowed || !(5..=32).contains(&phone.len()) || digits < 5 {
        return Err(IdentityError::InvalidPerson(
            "the phone number must be 5 to 32 digits, spaces and + - ( ) .",
        ));
    }
    Ok(Some(phone.to_owned()))
}

/// What an administrator may do about someone's second factor: never read
/// it, only require one, waive the requirement, or reset it (lost device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MfaAction {
    /// Until they set one up, their tokens carry no permissions.
    Require,
    /// No longer required (whatever they set up stays).
    Waive,
    /// Their authenticator and recovery codes are forgotten: they set up a new one.
    Reset,
}

/// What an update may change about a person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersonChanges {
    /// A new name (only while they are invited).
    pub name: Option<String>,
    /// A new phone number, or none (only while they are invited).
    pub phone: Option<Option<String>>,
    /// A new kind.
    pub kind: Option<MembershipKind>,
}

/// An invitation's link to send: the token (only its hash is kept), how
/// long it works, and the email that carries it (its recipient is set here).
#[derive(Debug, Clone)]
pub struct InvitationLink {
    /// The single-use token.
    pub token: String,
    /// How long it works.
    pub lifetime: std::time::Duration,
    /// The email with the link.
    pub message: portico_kernel::EmailMessage,
}

/// Counts for the people dashboards.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "total": 42, "byKind": {"owner": 1, "staff": 6, "student": 30, "parent": 5},
    "byStatus": {"active": 38, "invited": 3, "suspended": 1}, "byRole": {"owner": 1, "staff": 6, "viewer": 35},
    "mfaEnabled": 4, "signedInLast30Days": 27, "joinedLast30Days": 9
})))]
#[serde(rename_all = "camelCase")]
pub struct PeopleAnalytics {
    /// Memberships counted.
    pub total: u64,
    /// By kind (storage names).
    pub by_kind: std::collections::BTreeMap<String, u64>,
    /// By membership status.
    pub by_status: std::collections::BTreeMap<String, u64>,
    /// By role (`custom` for all custom roles together).
    pub by_role: std::collections::BTreeMap<String, u64>,
    /// People who sign in with a second factor.
    pub mfa_enabled: u64,
    /// People who signed in during the last 30 days.
    pub signed_in_last30_days: u64,
    /// Memberships created during the last 30 days.
    pub joined_last30_days: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code<T>(result: Result<T, IdentityError>) -> Result<T, &'static str> {
        use portico_kernel::DomainError as _;
        result.map_err(|e| e.code())
    }

    #[test]
    fn a_role_choice_is_a_built_in_role_or_a_custom_id_never_both() {
        let id = RoleId::new();
        assert_eq!(
            code(RoleChoice::from_request(Some(Role::Admin), None)),
            Ok(RoleChoice::BuiltIn(Role::Admin))
        );
        assert_eq!(code(RoleChoice::from_request(None, Some(id))), Ok(RoleChoice::Custom(id)));
        assert_eq!(code(RoleChoice::from_request(Some(Role::Custom), Some(id))), Ok(RoleChoice::Custom(id)));
        assert!(RoleChoice::from_request(Some(Role::Custom), None).is_err());
        assert!(RoleChoice::from_request(Some(Role::Admin), Some(id)).is_err());
        assert!(RoleChoice::from_request(None, None).is_err());
    }

    #[test]
    fn platform_roles_only_in_the_platform_tenant_and_only_by_who_holds_them() {
        let everything = |_: &str| true;
        assert_eq!(
            code(may_give(Role::PlatformAdmin, false, everything)),
            Err("memberships.role_not_allowed")
        );
        assert_eq!(code(may_give(Role::PlatformAdmin, true, everything)), Ok(()));
        let support = |p: &str| Role::PlatformSupport.permissions().contains(&p);
        assert_eq!(code(may_give(Role::PlatformAdmin, true, support)), Err("rbac.permission_not_held"));
        assert_eq!(code(may_give(Role::Staff, true, everything)), Err("memberships.role_not_allowed"));
        let staff = |p: &str| Role::Staff.permissions().contains(&p);
        assert_eq!(code(may_give(Role::Admin, false, staff)), Err("rbac.permission_not_held"));
        assert_eq!(code(may_give(Role::Viewer, false, staff)), Ok(()));
    }

    #[test]
    fn administrators_do_not_act_on_owners_and_owners_act_on_everyone() {
        let admin = |p: &str| Role::Admin.permissions().contains(&p);
        let owner = |p: &str| Role::Owner.permissions().contains(&p);
        assert_eq!(code(may_act_on(Role::Owner.permissions(), admin)), Err("rbac.permission_not_held"));
        assert_eq!(code(may_act_on(Role::Admin.permissions(), admin)), Ok(()));
        assert_eq!(code(may_give(Role::Owner, false, admin)), Err("rbac.permission_not_held"));
        for role in [Role::Owner, Role::Admin, Role::Staff, Role::Viewer] {
            assert_eq!(code(may_act_on(role.permissions(), owner)), Ok(()), "{role:?}");
        }
        let platform_admin = |p: &str| Role::PlatformAdmin.permissions().contains(&p);
        assert!(may_act_on(Role::PlatformOwner.permissions(), platform_admin).is_err());
        assert!(may_give(Role::PlatformOwner, true, platform_admin).is_err());
    }

    #[test]
    fn names_and_phones_are_checked() {
        assert_eq!(person_name("  Sam Doe ").unwrap(), "Sam Doe");
        assert!(person_name(" ").is_err());
        assert!(person_name(&"x".repeat(201)).is_err());
        assert_eq!(person_phone(Some(" +49 30 1234-56 ")).unwrap().as_deref(), Some("+49 30 1234-56"));
        assert_eq!(person_phone(Some("  ")).unwrap(), None);
        for bad in ["12", "49+301234", "call me", "+49 30 1234 x"] {
            assert!(person_phone(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_kind_has_a_default_role_that_is_not_a_platform_one() {
        for kind in MembershipKind::ALL {
            assert!(!default_role(*kind).is_platform());
        }
    }
}
