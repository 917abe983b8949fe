//! The one catalogue of permissions (`domain:action`), each described.
//! Platform permissions (`platform:…`) are held only through a membership of
//! the platform tenant; every role's permissions come from here.

use serde::Serialize;

/// One permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "name": "tenants:write", "description": "Change one's own tenant's profile.", "platform": false
})))]
pub struct Permission {
    /// `domain:action`.
    pub name: &'static str,
    /// What it allows, for people choosing roles.
    pub description: &'static str,
    /// Held only by the platform's staff.
    pub platform: bool,
}

const fn tenant(name: &'static str, description: &'static str) -> Permission {
    Permission { name, description, platform: false }
}

const fn platform(name: &'static str, description: &'static str) -> Permission {
    Permission { name, description, platform: true }
}

/// Every permission there is.
pub const CATALOGUE: &[Permission] = &[
    tenant("tenants:read", "Read one's own tenant."),
    tenant("tenants:write", "Change one's own tenant's profile."),
    tenant("audit:read", "Read one's own tenant's audit trail."),
    tenant("api_keys:manage", "Create, list and revoke one's tenant's API keys."),
    tenant("roles:read", "Read the permission catalogue and the roles."),
    tenant("roles:write", "Create, change and delete one's tenant's custom roles."),
    tenant("memberships:write", "Change the role of one's tenant's people."),
    tenant(
        "owners:manage",
        "Give and take the owner role, and act on owners (owners hold it, administrators do not).",
    ),
    tenant("people:read", "List and read one's tenant's people, their activity and invitations."),
    tenant(
        "people:write",
        "Invite, change, activate, deactivate, remove, import and export one's tenant's people.",
    ),
    tenant("credits:read", "See one's tenant's wallets, ledger, reservations, packages, prices and plans."),
    tenant("credits:purchase", "Buy credits and packages, and set wallets' low-balance alerts."),
    tenant("credits:spend", "Reserve, capture and release credits (services sending messages)."),
    tenant("metering:read", "See one's tenant's sites, meters, readings, consumption, metrics and usage."),
    tenant(
        "metering:write",
        "Set up sites, meters (install, change, replace), billable metrics and meter data sources.",
    ),
    tenant("metering:ingest", "Send usage events and meter readings, and import readings."),
    tenant(
        "metering:close",
        "Close a period's usage, after which late events are refused once the grace has passed.",
    ),
    tenant(
        "crm:read",
        "See one's tenant's leads, contacts, companies, deals, pipelines, activities, timelines and CRM analytics.",
    ),
    tenant(
        "crm:write",
        "Create, change, delete, convert, move, merge, import and export one's tenant's CRM records.",
    ),
    tenant("tickets:read", "See one's tenant's support tickets and their comments."),
    tenant(
        "tickets:write",
        "Open, change, assign, comment on, change the status of and delete support tickets.",
    ),
    platform("platform:tenants:read", "List and read every tenant."),
    platform("platform:tenants:write", "Create, change, suspend, activate and delete tenants."),
    platform("platform:jobs:read", "See the background job queue."),
    platform("platform:jobs:write", "Retry dead background jobs."),
    platform("platform:audit:read", "Read every tenant's audit trail."),
    platform("platform:people:read", "List and read every tenant's people."),
    platform("platform:people:write", "Manage every tenant's people."),
    platform(
        "platform:credits:read",
        "See the master wallet, every tenant's plans and the platform's credit analytics.",
    ),
    platform(
        "platform:credits:write",
        "Top up the master wallet, set prices, packages and custom plans, grant and adjust tenants' credits.",
    ),
    platform("platform:credits:purchase", "Buy credits for a tenant, acting on it."),
    platform("platform:admin_users:read", "List and read the platform's staff, their sessions and activity."),
    platform(
        "platform:admin_users:write",
        "Invite, change and remove the platform's staff, reset their password and MFA.",
    ),
];

/// The catalogue entry of `name`.
#[must_use]
pub fn describe(name: &str) -> Option<&'static Permission> {
    CATALOGUE.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;

    #[test]
    fn names_are_unique_well_formed_and_marked_platform_by_prefix() {
        let mut names: Vec<&str> = CATALOGUE.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len(), "no name twice");
        for permission in CATALOGUE {
            assert_eq!(permission.platform, permission.name.starts_with("platform:"), "{}", permission.name);
            let parts: Vec<&str> = permission.name.split(':').collect();
            assert!((2..=3).contains(&parts.len()), "{}", permission.name);
            assert!(
                parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            );
            assert!(permission.description.ends_with('.'), "{}", permission.name);
        }
    }

    #[test]
    fn every_role_holds_catalogued_permissions_only() {
        for role in Role::ALL {
            for name in role.permissions() {
                let entry = describe(name).unwrap_or_else(|| panic!("{role:?}: {name} is not catalogued"));
                assert!(!entry.platform || role.is_platform(), "{role:?} holds {name}");
            }
        }
    }
}
