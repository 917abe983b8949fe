//! The audit trail API: a tenant reads its own trail only; the platform reads all.

use serde_json::json;

use crate::support::TestApp;

async fn create(app: &TestApp, slug: &str) -> portico_kernel::TenantId {
    let body = json!({"name": slug, "slug": slug, "contactEmail": format!("ops@{slug}.example")});
    let res = app.call("POST", "/api/v1/tenants", Some(&app.admin_token()), Some(body)).await;
    res.json["data"]["id"].as_str().unwrap().parse().unwrap()
}

#[actix_web::test]
async fn a_tenant_reads_its_own_trail_newest_first_and_filtered() {
    let app = TestApp::spawn().await;
    let acme = create(&app, "acme").await;
    let globex = create(&app, "globex").await;
    let admin = app.admin_token();
    let rename = json!({"name": "Acme Renamed", "contactEmail": "ops@acme.example"});
    let renamed = app.call("PUT", &format!("/api/v1/tenants/{acme}"), Some(&admin), Some(rename)).await;
    app.call("POST", &format!("/api/v1/tenants/{globex}/suspend"), Some(&admin), None).await;
    let owner = app.user_token(acme, &["audit:read"]);

    let trail = app.call("GET", "/api/v1/audit", Some(&owner), None).await;
    assert_eq!(trail.status, 200, "{}", trail.body);
    let actions: Vec<&str> =
        trail.json["data"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["tenant.update", "tenant.create"], "newest first, Acme's only");
    assert!(!trail.body.contains(&globex.to_string()), "nothing of Globex");
    assert_eq!(trail.json["data"][0]["requestId"].as_str(), renamed.header("x-request-id"));
    assert_eq!(trail.json["meta"]["total"], json!(2));

    let filtered = app.call("GET", "/api/v1/audit?action=tenant.create&limit=1", Some(&owner), None).await;
    assert_eq!(filtered.json["meta"], json!({"page": 1, "limit": 1, "total": 1, "totalPages": 1}));
    let future = app.call("GET", "/api/v1/audit?from=2999-01-01T00:00:00Z", Some(&owner), None).await;
    assert_eq!(future.json["meta"]["total"], json!(0));
}

#[actix_web::test]
async fn the_audit_routes_need_their_permissions_and_good_filters() {
    let app = TestApp::spawn().await;
    let acme = create(&app, "acme").await;
    let reader = app.user_token(acme, &["tenants:read"]);
    let res = app.call("GET", "/api/v1/audit", Some(&reader), None).await;
    assert_eq!((res.status, res.json["error"]["code"].clone()), (403, json!("auth.permission_denied")));
    let forged = app.user_token(acme, &["platform:audit:read", "audit:read"]);
    let res = app.call("GET", "/api/v1/admin/audit", Some(&forged), None).await;
    assert_eq!(res.status, 403, "a tenant's token cannot read every trail");
    let owner = app.user_token(acme, &["audit:read"]);
    let bad = app.call("GET", "/api/v1/audit?from=yesterday", Some(&owner), None).await;
    assert_eq!((bad.status, bad.json["error"]["code"].clone()), (400, json!("request.invalid_query")));
    let other = app
        .call(
            "GET",
            &format!("/api/v1/audit?tenantId={}", portico_kernel::TenantId::new()),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(other.status, 422, "a tenant cannot name another trail");
}

#[actix_web::test]
async fn the_platform_reads_every_trail_or_one_tenants() {
    let app = TestApp::spawn().await;
    let acme = create(&app, "acme").await;
    create(&app, "globex").await;
    let admin = app.admin_token();
    let all = app.call("GET", "/api/v1/admin/audit?resourceType=tenant", Some(&admin), None).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(
        all.json["meta"]["total"],
        json!(3),
        "both creations and the platform tenant's own, from bootstrap"
    );
    let one = app.call("GET", &format!("/api/v1/admin/audit?tenantId={acme}"), Some(&admin), None).await;
    let tenants: Vec<&str> =
        one.json["data"].as_array().unwrap().iter().map(|r| r["tenantId"].as_str().unwrap()).collect();
    assert_eq!(tenants, vec![acme.to_string().as_str()]);
}
