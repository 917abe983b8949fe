//! Demo data for development: two tenants to try the API with, a demo
//! platform admin and each tenant's owner, all signing in with one password,
//! and credits to buy and spend.

use portico_kernel::{
    Actor, Origin, PLATFORM_TENANT_ID, PageRequest, PlatformContext, RequestId, TenantContext,
};
use portico_store::{NewUser, Store};
use portico_tenancy::{
    CreateTenant, Email, MembershipKind, Role, TenancyError, Tenant, TenantFilter, TenantStore, UserStatus,
    password,
};

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

/// The password of every demo person (development only: demo data is
/// refused in production).
pub const DEMO_PASSWORD: &str = "portico-demo-2026";

/// The demo people: email, name, tenant slug (`None`: the platform tenant), role and kind.
const DEMO_PEOPLE: [(&str, &str, Option<&str>, Role, MembershipKind); 5] = [
    ("admin@portico.example", "Demo Platform Admin", None, Role::PlatformAdmin, MembershipKind::Admin),
    ("owner@acme-property.example", "Acme Owner", Some("acme-property"), Role::Owner, MembershipKind::Owner),
    (
        "owner@globex-academy.example",
        "Globex Owner",
        Some("globex-academy"),
        Role::Owner,
        MembershipKind::Owner,
    ),
    (
        "student@globex-academy.example",
        "Globex Student",
        Some("globex-academy"),
        Role::Viewer,
        MembershipKind::Student,
    ),
    (
        "parent@globex-academy.example",
        "Globex Parent",
        Some("globex-academy"),
        Role::Viewer,
        MembershipKind::Parent,
    ),
];

/// Creates the demo people that are missing, each with [`DEMO_PASSWORD`] and
/// a membership of their tenant. Idempotent. Returns who can sign in.
pub async fn demo_people(
    store: &Store,
    tenants: &[Tenant],
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let hash = tokio::task::spawn_blocking(|| password::hash(DEMO_PASSWORD)).await??;
    let mut lines = Vec::new();
    for (email, name, slug, role, kind) in DEMO_PEOPLE {
        let tenant = match slug {
            None => PLATFORM_TENANT_ID,
            Some(slug) => match tenants.iter().find(|t| t.slug == slug) {
                Some(tenant) => tenant.id,
                None => continue,
            },
        };
        let address = Email::parse(email)?;
        let user = match store.credentials(&address).await? {
            Some(existing) => existing.user.id,
            None => {
                let new = NewUser {
                    email: address,
                    name: name.to_owned(),
                    phone: None,
                    status: UserStatus::Active,
                    password_hash: Some(hash.clone()),
                    email_verified: true,
                };
                store.create_user(new).await?.id
            }
        };
        if !store.memberships_of(user).await?.iter().any(|m| m.tenant_id == tenant) {
            let ctx = TenantContext {
                tenant_id: tenant,
                actor: Actor::system("seed"),
                permissions: std::collections::BTreeSet::new(),
                request_id: RequestId::generate(),
                origin: Origin::default(),
            };
            store.add_membership(&ctx, user, role, kind).await?;
        }
        let what =
            slug.map_or_else(|| "platform admin".to_owned(), |slug| format!("{slug}, {}", kind.as_str()));
        lines.push(format!("{email} ({what})"));
    }
    Ok(lines)
}

/// Demo credits: the platform's stock of every channel, a price list and a
/// package when there are none yet, and 500 SMS credits for each demo tenant
/// to spend. Idempotent: each movement has a fixed reference.
pub async fn demo_credits(store: &Store, tenants: &[Tenant]) -> Result<(), Box<dyn std::error::Error>> {
    use portico_credits::{AddCredits, Channel, PackageDraft, PriceList, Reference, TopUp, WalletRef};
    let platform = PlatformContext::system("seed");
    for channel in Channel::ALL {
        let top_up = TopUp { channel, amount: 1_000_000, note: "Demo stock".to_owned() };
        store.top_up_master(&platform, Reference::parse(&format!("demo-stock-{channel}"))?, top_up).await?;
    }
    let reader = TenantContext {
        tenant_id: PLATFORM_TENANT_ID,
        actor: Actor::system("seed"),
        permissions: std::collections::BTreeSet::new(),
        request_id: RequestId::generate(),
        origin: Origin::default(),
    };
    if store.credit_prices(&reader).await?.prices.is_empty() {
        let prices: PriceList = serde_json::from_value(serde_json::json!({"prices": [
            {"channel": "sms", "currency": "EUR", "tiers": [
                {"fromQuantity": 1, "unitPrice": "0.08"}, {"fromQuantity": 10000, "unitPrice": "0.065"}]},
            {"channel": "whatsapp", "currency": "EUR", "tiers": [{"fromQuantity": 1, "unitPrice": "0.05"}]},
            {"channel": "email", "currency": "EUR", "tiers": [{"fromQuantity": 1, "unitPrice": "0.001"}]}
        ]}))?;
        store.set_credit_prices(&platform, prices.validated()?).await?;
    }
    if store.credit_packages(&reader, true).await?.is_empty() {
        let starter: PackageDraft = serde_json::from_value(serde_json::json!({
            "name": "Starter", "description": "1,000 SMS and 5,000 emails, valid for a year.",
            "credits": [{"channel": "sms", "amount": 1000}, {"channel": "email", "amount": 5000}],
            "price": {"amountMinor": 8900, "currency": "EUR"}, "validityDays": 365
        }))?;
        store.save_credit_package(&platform, None, starter.validated()?).await?;
    }
    for tenant in tenants {
        let ctx = TenantContext { tenant_id: tenant.id, request_id: RequestId::generate(), ..reader.clone() };
        let welcome: AddCredits = serde_json::from_value(
            serde_json::json!({"amount": 500, "source": "promotional", "note": "Demo welcome"}),
        )?;
        store
            .add_credits(&ctx, Reference::parse("demo-welcome")?, WalletRef::Channel(Channel::Sms), welcome)
            .await?;
    }
    Ok(())
}

/// Demo branding (display name and colours) for demo tenants that have none yet.
pub async fn demo_branding(store: &Store, tenants: &[Tenant]) -> Result<(), TenancyError> {
    let colours = [("#1a73e8", "#ff9900"), ("#0b8043", "#f4b400")];
    for (tenant, (primary, accent)) in tenants.iter().zip(colours) {
        let ctx = TenantContext {
            tenant_id: tenant.id,
            actor: Actor::system("seed"),
            permissions: std::collections::BTreeSet::new(),
            request_id: RequestId::generate(),
            origin: Origin::default(),
        };
        if store.branding(&ctx, tenant.id).await?.updated_at.is_some() {
            continue;
        }
        let branding = portico_tenancy::UpdateBranding {
            display_name: Some(tenant.name.clone()),
            primary_color: Some(primary.to_owned()),
            accent_color: Some(accent.to_owned()),
            custom_domain: None,
        };
        store.update_branding(&ctx, tenant.id, branding).await?;
    }
    Ok(())
}

/// Demo metering for the demo tenants whose industry meters (property
/// management): a property with a building, two flats with electricity
/// meters read daily for the last 60 days, a carport charge point pulled
/// from the simulated charger every 15 minutes, and a billable metric with
/// some usage events. Only for a tenant with no sites yet.
pub async fn demo_metering(store: &Store, tenants: &[Tenant]) -> Result<(), Box<dyn std::error::Error>> {
    use chrono::{Duration, DurationRound as _, Utc};
    use portico_metering::{
        EventBatch, MeterDraft, MetricDraft, ReadingRules, ReadingSource, SiteDraft, SourceDraft, candidate,
    };
    use serde_json::json;
    for tenant in tenants.iter().filter(|t| t.industry.as_deref() == Some("property_management")) {
        let ctx = TenantContext {
            tenant_id: tenant.id,
            actor: Actor::system("seed"),
            permissions: std::collections::BTreeSet::new(),
            request_id: RequestId::generate(),
            origin: Origin::default(),
        };
        if store.sites(&ctx, PageRequest::default()).await?.total > 0 {
            continue;
        }
        let site = |parent: Option<portico_kernel::SiteId>,
                    kind: &str,
                    name: &str|
         -> Result<SiteDraft, serde_json::Error> {
            serde_json::from_value(json!({"parentId": parent, "kind": kind, "name": name}))
        };
        let property = store.create_site(&ctx, site(None, "property", "Hauptstraße 12")?).await?;
        let building = store.create_site(&ctx, site(Some(property.id), "building", "Haus A")?).await?;
        let today = Utc::now().duration_trunc(Duration::days(1))?;
        let start = today - Duration::days(61);
        let mut readings = Vec::new();
        for (flat, daily) in [("Flat 1", 7), ("Flat 2", 11)] {
            let unit = store.create_site(&ctx, site(Some(building.id), "unit", flat)?).await?;
            let draft: MeterDraft = serde_json::from_value(json!({
                "place": {"type": "site", "siteId": unit.id}, "kind": "electricity", "unit": "kWh",
                "mode": {"mode": "register", "digits": 6}, "serialNumber": format!("1ESY-{}", flat.replace(' ', "")),
                "activeFrom": start, "startReading": "1000"
            }))?;
            let meter = store.install_meter(&ctx, draft).await?;
            for day in 1..=60_i64 {
                let value = rust_decimal::Decimal::from(1000 + daily * day + day % 3);
                readings.push(candidate(
                    meter.id,
                    start + Duration::days(day),
                    value,
                    false,
                    ReadingSource::Manual,
                ));
            }
        }
        store.add_readings(&ctx, readings, ReadingRules::default()).await?;
        let carport = store.create_site(&ctx, site(Some(property.id), "other", "Carport")?).await?;
        let charger: MeterDraft = serde_json::from_value(json!({
            "place": {"type": "site", "siteId": carport.id}, "kind": "ev_charging", "unit": "kWh",
            "mode": {"mode": "register"}, "activeFrom": start, "startReading": "0"
        }))?;
        let charger = store.install_meter(&ctx, charger).await?;
        let source: SourceDraft = serde_json::from_value(json!({
            "kind": "simulated", "name": "Carport charger (simulated)", "everyMinutes": 15,
            "meters": {crate::jobs::SIMULATED_CHARGE_POINT: charger.id}
        }))?;
        store.create_meter_source(&ctx, source).await?;
        let metric: MetricDraft = serde_json::from_value(json!({
            "code": "portal.logins", "name": "Tenant portal sign-ins", "aggregation": {"type": "count"}
        }))?;
        store.define_metric(&ctx, metric).await?;
        let events: Vec<serde_json::Value> = (0..200_i64)
            .map(|n| json!({
                "id": format!("demo-login-{n}"), "subject": format!("flat-{}", n % 2 + 1), "metricCode": "portal.logins",
                "at": today - Duration::hours(n * 7)
            }))
            .collect();
        let batch: EventBatch = serde_json::from_value(json!({ "events": events }))?;
        store.ingest_usage(&ctx, batch.validated(Utc::now())?, Duration::hours(72)).await?;
    }
    Ok(())
}

/// Demo CRM data, for a tenant whose CRM is still empty: for Acme, two
/// companies, four contacts (two of them the same person, written twice:
/// a duplicate to merge), a sales pipeline with two deals, three leads (one
/// qualified, ready to convert), a call and a task, and a support ticket;
/// for the platform, its pipeline of prospective tenants with one lead and
/// one deal. Everything is owned by the tenant's demo owner (the platform's
/// demo admin).
pub async fn demo_crm(store: &Store, tenants: &[Tenant]) -> Result<(), Box<dyn std::error::Error>> {
    use portico_crm::{
        ActivityDraft, CompanyDraft, ContactDraft, DealDraft, LeadDraft, PipelineDraft, TicketDraft,
    };
    use serde_json::json;

    let acme =
        tenants.iter().find(|t| t.slug == "acme-property").map(|t| (t.id, "owner@acme-property.example"));
    let platform = Some((PLATFORM_TENANT_ID, "admin@portico.example"));
    for (tenant, owner_email) in [acme, platform].into_iter().flatten() {
        let Some(owner) = store.credentials(&Email::parse(owner_email)?).await? else { continue };
        let ctx = TenantContext {
            tenant_id: tenant,
            actor: Actor::User { user_id: owner.user.id, tenant_id: tenant },
            permissions: std::collections::BTreeSet::new(),
            request_id: RequestId::generate(),
            origin: Origin::default(),
        };
        if !store.pipelines(&ctx).await?.is_empty() {
            continue;
        }
        if tenant == PLATFORM_TENANT_ID {
            let draft: PipelineDraft =
                serde_json::from_value(json!({"name": "Prospective tenants", "stages": [
                    {"name": "Enquiry", "probability": 10}, {"name": "Demo given", "probability": 40},
                    {"name": "Trial running", "probability": 70}, {"name": "Signed", "kind": "won"},
                    {"name": "Declined", "kind": "lost"}
                ]}))?;
            let pipeline = store.create_pipeline(&ctx, draft).await?;
            let lead: LeadDraft = serde_json::from_value(json!({
                "name": "Initech Facility Services", "email": "info@initech-fs.example", "companyName": "Initech",
                "source": "website", "estimatedValue": {"amountMinor": 480_000, "currency": "EUR"}
            }))?;
            store.create_lead(&ctx, lead).await?;
            let company = store
                .create_company(
                    &ctx,
                    serde_json::from_value(
                        json!({"name": "Hooli Logistics", "domain": "hooli.example", "industry": "trucking"}),
                    )?,
                )
                .await?;
            let deal: DealDraft = serde_json::from_value(json!({
                "title": "Hooli Logistics: Portico plan", "value": {"amountMinor": 1_200_000, "currency": "EUR"},
                "pipelineId": pipeline.id, "stageId": pipeline.stages[2].id, "companyId": company.id,
                "expectedCloseDate": (chrono::Utc::now() + chrono::Duration::days(21)).date_naive()
            }))?;
            store.create_deal(&ctx, deal).await?;
            continue;
        }
        let pipeline = store.create_pipeline(&ctx, serde_json::from_value(json!({"name": "Sales"}))?).await?;
        let company = |name: &str, domain: &str| -> Result<CompanyDraft, serde_json::Error> {
            serde_json::from_value(json!({"name": name, "domain": domain, "industry": "property_management",
                                         "address": {"city": "Berlin", "country": "DE"}}))
        };
        let mueller =
            store.create_company(&ctx, company("Müller Hausverwaltung GmbH", "mueller-hv.example")?).await?;
        let schmidt =
            store.create_company(&ctx, company("Schmidt Immobilien AG", "schmidt-immo.example")?).await?;
        let contact = |first: &str, last: &str, email: &str, phone: &str, company| {
            serde_json::from_value::<ContactDraft>(json!({
                "firstName": first, "lastName": last, "contactType": "customer", "companyId": company,
                "emails": [{"address": email}], "phones": [{"number": phone}], "ownerId": owner.user.id,
                "tags": ["newsletter"]
            }))
        };
        let anna = store
            .create_contact(
                &ctx,
                contact("Anna", "Müller", "anna@mueller-hv.example", "+49 30 1234567", Some(mueller.id))?,
            )
            .await?;
        // The same person again, her number written another way: `GET /crm/duplicates` finds the pair.
        store
            .create_contact(
                &ctx,
                contact("Anna", "Mueller", "a.mueller@mueller-hv.example", "0049 (30) 123-4567", None)?,
            )
            .await?;
        let jonas = store
            .create_contact(
                &ctx,
                contact(
                    "Jonas",
                    "Schmidt",
                    "jonas@schmidt-immo.example",
                    "+49 40 7654321",
                    Some(schmidt.id),
                )?,
            )
            .await?;
        store
            .create_contact(&ctx, contact("Lena", "Weber", "lena.weber@web.de", "+49 171 2345678", None)?)
            .await?;
        for (name, email, company, status) in [
            ("Paul Becker", "paul@becker-verwaltung.example", Some("Becker Verwaltung GmbH"), "qualified"),
            ("Sophie Wagner", "sophie@wagner-wohnen.example", Some("Wagner Wohnen"), "contacted"),
            ("Tom Fischer", "tom.fischer@gmail.com", None, "new"),
        ] {
            let lead: LeadDraft = serde_json::from_value(json!({
                "name": name, "email": email, "companyName": company, "source": "referral",
                "estimatedValue": {"amountMinor": 250_000, "currency": "EUR"}
            }))?;
            let lead = store.create_lead(&ctx, lead).await?;
            if status != "new" {
                store.change_lead_status(&ctx, lead.id, serde_json::from_value(json!("contacted"))?).await?;
            }
            if status == "qualified" {
                store.change_lead_status(&ctx, lead.id, serde_json::from_value(json!("qualified"))?).await?;
            }
        }
        let deal = |title: &str, amount: i64, stage: usize, contact: portico_kernel::ContactId, company| {
            serde_json::from_value::<DealDraft>(json!({
                "title": title, "value": {"amountMinor": amount, "currency": "EUR"}, "pipelineId": pipeline.id,
                "stageId": pipeline.stages[stage].id, "contactId": contact, "companyId": company,
                "expectedCloseDate": (chrono::Utc::now() + chrono::Duration::days(30)).date_naive()
            }))
        };
        let first = store
            .create_deal(&ctx, deal("Tenant portal for 120 flats", 1_440_000, 0, anna.id, mueller.id)?)
            .await?;
        store.create_deal(&ctx, deal("Meter reading service", 600_000, 1, jonas.id, schmidt.id)?).await?;
        let call: ActivityDraft = serde_json::from_value(json!({
            "kind": "call", "subject": "Kick-off call", "body": "Wants the portal live before the annual statement.",
            "links": {"contactId": anna.id, "dealId": first.id}
        }))?;
        store.log_activity(&ctx, call).await?;
        let task: ActivityDraft = serde_json::from_value(json!({
            "kind": "task", "subject": "Send the offer", "links": {"dealId": first.id},
            "dueDate": (chrono::Utc::now() + chrono::Duration::days(3)).date_naive(), "assigneeId": owner.user.id
        }))?;
        store.log_activity(&ctx, task).await?;
        let ticket: TicketDraft = serde_json::from_value(json!({
            "subject": "Meter readings missing for Haus A",
            "description": "The readings of flat 2 stopped arriving last week.",
            "requester": {"type": "contact", "contactId": jonas.id}, "priority": "high"
        }))?;
        store.open_ticket(&ctx, ticket).await?;
    }
    Ok(())
}

/// `export NAME=value` lines for the demo tenants' ids, ready to paste into
/// a shell (the README's examples use them).
#[must_use]
pub fn demo_exports(tenants: &[Tenant]) -> Vec<String> {
    tenants
        .iter()
        .map(|tenant| {
            let name = tenant.slug.split('-').next().unwrap_or("tenant").to_ascii_uppercase();
            format!("export {name}_ID={}", tenant.id)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_password_passes_the_policy() {
        assert!(password::check_policy(DEMO_PASSWORD).is_ok());
    }

    #[test]
    fn demo_exports_name_each_tenant_by_its_first_word() {
        let now = chrono::Utc::now();
        let tenant = |slug: &str| Tenant {
            id: portico_kernel::TenantId::new(),
            name: slug.into(),
            slug: slug.into(),
            contact_email: "a@b.example".into(),
            phone: None,
            industry: None,
            status: portico_tenancy::TenantStatus::Trial,
            trial_ends_at: None,
            metadata: serde_json::json!({}),
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        let tenants = [tenant("acme-property"), tenant("globex-academy")];
        assert_eq!(
            demo_exports(&tenants),
            vec![format!("export ACME_ID={}", tenants[0].id), format!("export GLOBEX_ID={}", tenants[1].id)]
        );
    }
}
