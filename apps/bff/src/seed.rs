//! Demo data for development: two tenants to try the API with, and tokens
//! for a demo platform admin and for each tenant's owner.

use portico_kernel::{PLATFORM_TENANT_ID, PageRequest, PlatformContext, UserId};
use portico_store::Store;
use portico_tenancy::{CreateTenant, TenancyError, Tenant, TenantFilter, TenantStore};

/// The demo tenants: slug, name, industry, and the fixed id of the demo
/// owner whose token is printed.
pub const DEMO_TENANTS: [(&str, &str, &str, UserId); 2] = [
    ("acme-property", "Acme Property Management", "property_management", demo_user(0xa)),
    ("globex-academy", "Globex Academy", "education", demo_user(0xb)),
];

/// The demo platform admin: the same person on every start (user records
/// arrive with sign-in; until then the id lives in the token only).
pub const DEMO_ADMIN: UserId = demo_user(0x1);

/// Fixed, recognisable UUIDv7-shaped ids for demo people.
const fn demo_user(n: u128) -> UserId {
    UserId::from_uuid(uuid::Uuid::from_u128(0x0000_0000_0000_7000_8000_00d3_4000_0000 | n))
}

/// Creates the demo tenants that are missing and returns all of them. Idempotent.
pub async fn demo_tenants(store: &Store) -> Result<Vec<Tenant>, TenancyError> {
    let ctx = PlatformContext::system("seed");
    let mut tenants = Vec::new();
    for (slug, name, industry, _) in DEMO_TENANTS {
        let command = CreateTenant {
            name: name.to_owned(),
            slug: slug.to_owned(),
            contact_email: format!("hello@{slug}.example"),
            phone: None,
            industry: Some(industry.to_owned()),
            status: None,
            metadata: Some(serde_json::json!({"demo": true})),
        };
        match store.create(&ctx, command).await {
            Ok(tenant) => tenants.push(tenant),
            Err(TenancyError::SlugTaken(_)) => {
                let filter = TenantFilter { search: Some(slug.to_owned()), ..TenantFilter::default() };
                let page = store.list(&ctx, &filter, PageRequest::default()).await?;
                tenants.extend(page.items.into_iter().filter(|t| t.slug == slug));
            }
            Err(other) => return Err(other),
        }
    }
    Ok(tenants)
}

/// What a platform admin's demo token may do.
pub const ADMIN_PERMISSIONS: [&str; 8] = [
    "platform:tenants:read",
    "platform:tenants:write",
    "platform:jobs:read",
    "platform:jobs:write",
    "platform:audit:read",
    "tenants:read",
    "tenants:write",
    "audit:read",
];

/// What a tenant owner's demo token may do.
pub const OWNER_PERMISSIONS: [&str; 3] = ["tenants:read", "tenants:write", "audit:read"];

/// `export NAME=value` lines for the demo tenants' ids and tokens, ready to
/// paste into a shell (the README's examples use them).
pub fn demo_exports(
    keys: &crate::auth::TokenKeys,
    tenants: &[Tenant],
    ttl_secs: i64,
) -> Result<Vec<String>, jsonwebtoken::errors::Error> {
    let admin = keys.mint(
        DEMO_ADMIN,
        "admin@portico.example",
        "platform_admin",
        PLATFORM_TENANT_ID,
        &ADMIN_PERMISSIONS,
        ttl_secs,
    )?;
    let mut lines = vec![format!("export ADMIN_TOKEN={admin}")];
    for tenant in tenants {
        let name = tenant.slug.split('-').next().unwrap_or("tenant").to_ascii_uppercase();
        let email = format!("owner@{}.example", tenant.slug);
        let owner =
            DEMO_TENANTS.iter().find(|(slug, ..)| *slug == tenant.slug).map_or_else(UserId::new, |t| t.3);
        let token = keys.mint(owner, &email, "owner", tenant.id, &OWNER_PERMISSIONS, ttl_secs)?;
        lines.push(format!("export {name}_ID={}", tenant.id));
        lines.push(format!("export {name}_TOKEN={token}"));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::TokenKeys;

    #[test]
    fn demo_tokens_name_the_same_people_every_time() {
        let keys = TokenKeys::new(b"seed-test-secret-0123456789abcdef0123");
        let now = chrono::Utc::now();
        let tenant = |slug: &str| Tenant {
            id: portico_kernel::TenantId::new(),
            name: slug.into(),
            slug: slug.into(),
            contact_email: "a@b.example".into(),
            phone: None,
            industry: None,
            status: portico_tenancy::TenantStatus::Trial,
            metadata: serde_json::json!({}),
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        let tenants = [tenant("acme-property"), tenant("globex-academy")];
        let lines = demo_exports(&keys, &tenants, 600).unwrap();
        let token = |prefix: &str| {
            let line = lines.iter().find(|l| l.starts_with(prefix)).unwrap();
            keys.verify(line.split_once('=').unwrap().1).unwrap()
        };
        let admin = token("export ADMIN_TOKEN=");
        assert_eq!((admin.sub, admin.tenant_id), (DEMO_ADMIN, portico_kernel::PLATFORM_TENANT_ID));
        assert_eq!(token("export ACME_TOKEN=").sub, DEMO_TENANTS[0].3);
        assert_eq!(token("export GLOBEX_TOKEN=").tenant_id, tenants[1].id);
        assert!(lines.contains(&format!("export ACME_ID={}", tenants[0].id)));
    }
}
