//! A tenant's custom roles: named bundles of permissions from the catalogue,
//! never platform ones, and never more than their creator holds.

use chrono::{DateTime, Utc};
use portico_kernel::RoleId;
use serde::{Deserialize, Serialize};

use crate::IdentityError;
use crate::permissions::describe;

/// A custom role as its tenant sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f", "name": "Front desk",
    "description": "Reads the tenant and its people.", "permissions": ["people:read", "tenants:read"],
    "members": 3, "createdAt": "2026-11-23T09:00:00Z", "updatedAt": "2026-11-23T09:00:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct CustomRole {
    /// The role.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: RoleId,
    /// Unique in the tenant (case-insensitively).
    pub name: String,
    /// What it is for.
    pub description: String,
    /// What it allows, sorted.
    pub permissions: Vec<String>,
    /// How many people hold it.
    pub members: u64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A custom role as a membership carries it (what sign-in needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomRoleGrant {
    /// The role.
    pub id: RoleId,
    /// Its name.
    pub name: String,
    /// Its permissions as stored.
    pub permissions: Vec<String>,
}

/// A custom role to create, or the new state of one (`POST`/`PUT /api/v1/rbac/roles`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "name": "Front desk", "description": "Reads the tenant and its people.",
    "permissions": ["tenants:read", "people:read"]
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleDraft {
    /// 1 to 100 characters, unique in the tenant.
    pub name: String,
    /// Up to 500 characters.
    #[serde(default)]
    pub description: String,
    /// Catalogued, non-platform permissions the caller holds.
    pub permissions: Vec<String>,
}

impl RoleDraft {
    /// The draft trimmed, its permissions sorted and unique, or why it cannot
    /// be saved by someone for whom `holds` says what they hold: every
    /// permission must be catalogued, not a platform one, and held.
    pub fn validate(mut self, holds: impl Fn(&str) -> bool) -> Result<Self, IdentityError> {
        self.name = self.name.trim().to_owned();
        self.description = self.description.trim().to_owned();
        let name_chars = self.name.chars().count();
        if name_chars == 0 || name_chars > 100 || self.name.chars().any(char::is_control) {
            return Err(IdentityError::InvalidRole("the name must be 1 to 100 printable characters"));
        }
        if self.description.chars().count() > 500 {
            return Err(IdentityError::InvalidRole("the description must be at most 500 characters"));
        }
        if self.permissions.is_empty() {
            return Err(IdentityError::InvalidRole("a role needs at least one permission"));
        }
        self.permissions.sort_unstable();
        self.permissions.dedup();
        check_grant(&self.permissions, holds)?;
        Ok(self)
    }
}

/// Whether someone holding what `holds` says may grant `permissions`: each
/// must be catalogued, not a platform permission, and held by them.
pub fn check_grant<S: AsRef<str>>(
    permissions: &[S],
    holds: impl Fn(&str) -> bool,
) -> Result<(), IdentityError> {
    for permission in permissions.iter().map(AsRef::as_ref) {
        match describe(permission) {
            None => return Err(IdentityError::UnknownPermission(printable(permission))),
            Some(entry) if entry.platform => {
                return Err(IdentityError::PlatformPermission(permission.to_owned()));
            }
            Some(_) if !holds(permission) => return Err(IdentityError::GrantNotHeld(permission.to_owned())),
            Some(_) => {}
        }
    }
    Ok(())
}

/// The permissions of `stored` a custom role can confer: catalogued,
/// non-platform ones (a row changed behind the application's back grants
/// nothing more).
#[must_use]
pub fn grantable(stored: &[String]) -> Vec<String> {
    stored.iter().filter(|p| describe(p).is_some_and(|entry| !entry.platform)).cloned().collect()
}

/// A caller's text, bounded and printable, for an error message.
fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(permissions: &[&str]) -> RoleDraft {
        RoleDraft {
            name: "  Front desk ".into(),
            description: " Reads. ".into(),
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    fn code<T>(result: Result<T, IdentityError>) -> Result<T, &'static str> {
        use portico_kernel::DomainError as _;
        result.map_err(|e| e.code())
    }

    #[test]
    fn a_draft_is_trimmed_sorted_and_deduplicated() {
        let valid = draft(&["tenants:read", "people:read", "tenants:read"]).validate(|_| true).unwrap();
        assert_eq!(valid.name, "Front desk");
        assert_eq!(valid.description, "Reads.");
        assert_eq!(valid.permissions, ["people:read", "tenants:read"]);
    }

    #[test]
    fn nobody_grants_platform_unknown_or_unheld_permissions() {
        let all = |_: &str| true;
        assert_eq!(code(draft(&["platform:tenants:write"]).validate(all)), Err("rbac.platform_permission"));
        assert_eq!(code(draft(&["tenants:fly"]).validate(all)), Err("rbac.unknown_permission"));
        let admin_only = |p: &str| p == "tenants:read";
        let refused = draft(&["tenants:read", "people:write"]).validate(admin_only).unwrap_err();
        assert_eq!(refused.to_string(), "you do not hold `people:write`, so you cannot grant it");
    }

    #[test]
    fn names_and_permissions_are_required() {
        let mut unnamed = draft(&["tenants:read"]);
        unnamed.name = "   ".into();
        assert!(matches!(unnamed.validate(|_| true), Err(IdentityError::InvalidRole(_))));
        assert!(matches!(draft(&[]).validate(|_| true), Err(IdentityError::InvalidRole(_))));
        let mut long = draft(&["tenants:read"]);
        long.name = "x".repeat(101);
        assert!(matches!(long.validate(|_| true), Err(IdentityError::InvalidRole(_))));
    }

    #[test]
    fn stored_platform_or_unknown_permissions_grant_nothing() {
        let stored =
            vec!["tenants:read".to_owned(), "platform:tenants:write".to_owned(), "made:up".to_owned()];
        assert_eq!(grantable(&stored), ["tenants:read"]);
    }
}
