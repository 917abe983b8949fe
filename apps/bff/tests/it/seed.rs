//! The demo data `cargo run` seeds (development only), against a real database.

use portico_bff::seed;
use portico_kernel::PLATFORM_TENANT_ID;

use crate::support::{TestApp, number, rows};

#[actix_web::test]
async fn the_demo_crm_is_seeded_once_with_its_duplicate_to_find() {
    let app = TestApp::spawn().await;
    let store =
        portico_store::Store::connect(&app.db.urls, &portico_store::PoolConfig::default()).await.unwrap();
    let tenants = seed::demo_tenants(&store).await.unwrap();
    seed::demo_people(&store, &tenants).await.unwrap();
    seed::demo_crm(&store, &tenants).await.unwrap();
    seed::demo_crm(&store, &tenants).await.unwrap();

    let acme = tenants.iter().find(|t| t.slug == "acme-property").unwrap().id;
    for (table, expected) in [
        ("crm_pipelines", 1),
        ("crm_companies", 2),
        ("crm_contacts", 4),
        ("crm_leads", 3),
        ("crm_deals", 2),
        ("crm_activities", 2),
        ("crm_tickets", 1),
    ] {
        assert_eq!(rows(&app, table, acme).await, expected, "{table}: seeded once");
    }
    let same_phone = "SELECT count(*) AS n FROM crm_contact_keys \
                      WHERE tenant_id = $1::uuid AND kind = 'phone' AND key = '+49301234567'";
    assert_eq!(number(&app, same_phone, &acme.to_string()).await, 2, "the duplicate pair");
    let qualified = "SELECT count(*) AS n FROM crm_leads WHERE tenant_id = $1::uuid AND status = 'qualified'";
    assert_eq!(number(&app, qualified, &acme.to_string()).await, 1);
    assert_eq!(rows(&app, "crm_deals", PLATFORM_TENANT_ID).await, 1, "the platform's prospective tenant");
}
