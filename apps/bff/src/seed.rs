//! Demo data for development: two tenants to try the API with.

use portico_kernel::{PageRequest, PlatformContext};
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
