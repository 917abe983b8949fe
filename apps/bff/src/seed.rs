//! Demo data for development: two tenants to try the API with, and tokens
//! for a demo platform admin and for each tenant's owner.

use portico_kernel::{PLATFORM_TENANT_ID, PageRequest, PlatformContext, UserId};
use portico_store::Store;
use portico_tenancy::{CreateTenant, TenancyError, Tenant, TenantFilter, TenantStore};

/// The demo tenants: slug, name, industry.
pub const DEMO_TENANTS: [(&str, &str, &str); 2] = [
    ("acme-property", "Acme Property Management", "property_management"),
    ("globex-academy", "Globex Academy", "education"),
];

/// Creates the demo tenants that are missing and returns all of them. Idempotent.
pub async fn demo_tenants(store: &Store) -> Result<Vec<Tenant>, TenancyError> {
    let ctx = PlatformContext::system("seed");
    let mut tenants = Vec::new();
    for (slug, name, industry) in DEMO_TENANTS {
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
pub const ADMIN_PERMISSIONS: [&str; 4] =
    ["platform:tenants:read", "platform:tenants:write", "tenants:read", "tenants:write"];

/// What a tenant owner's demo token may do.
pub const OWNER_PERMISSIONS: [&str; 2] = ["tenants:read", "tenants:write"];

/// `export NAME=value` lines for the demo tenants' ids and tokens, ready to
/// paste into a shell (the README's examples use them).
pub fn demo_exports(
    keys: &crate::auth::TokenKeys,
    tenants: &[Tenant],
    ttl_secs: i64,
) -> Result<Vec<String>, jsonwebtoken::errors::Error> {
    let admin = keys.mint(
        UserId::new(),
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
        let token = keys.mint(UserId::new(), &email, "owner", tenant.id, &OWNER_PERMISSIONS, ttl_secs)?;
        lines.push(format!("export {name}_ID={}", tenant.id));
        lines.push(format!("export {name}_TOKEN={token}"));
    }
    Ok(lines)
}
