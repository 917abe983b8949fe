//! The tenants API through the whole pipeline: tokens, tenant context,
//! permissions, envelope, store, audit.

use diesel::QueryableByName;
use diesel::sql_types::{Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use portico_kernel::{PLATFORM_TENANT_ID, TenantId};
use serde_json::{Value, json};

use crate::support::{TestApp, logs};

fn new_tenant(slug: &str) -> Value {
    json!({"name": format!("Tenant {slug}"), "slug": slug, "contactEmail": format!("ops@{slug}.example")})
}

/// Creates a tenant as the platform admin and returns its id.
async fn create(app: &TestApp, slug: &str) -> TenantId {
    let res = app.call("POST", "/api/v1/tenants", Some(&app.admin_token()), Some(new_tenant(slug))).await;
    assert_eq!(res.status, 201, "{}", res.body);
    res.json["data"]["id"].as_str().unwrap().parse().unwrap()
}

fn assert_envelope(res: &crate::http::Response, status: u16, code: &str) {
    assert_eq!(res.status, status, "{}", res.body);
    assert_eq!(res.json["success"], json!(false), "{}", res.body);
    assert_eq!(res.json["error"]["code"], json!(code), "{}", res.body);
    assert_eq!(res.json["error"]["statusCode"], json!(status));
    assert_eq!(
        res.json["error"]["requestId"].as_str(),
        res.header("x-request-id"),
        "the envelope names the request"
    );
}

#[derive(QueryableByName, Debug)]
struct AuditRow {
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Nullable<Text>)]
    actor_tenant_id: Option<String>,
    #[diesel(sql_type = Text)]
    request_id: String,
}

async fn audit_of(app: &TestApp, tenant: TenantId) -> Vec<AuditRow> {
    let mut conn = AsyncPgConnection::establish(&app.db.urls.platform).await.unwrap();
    diesel::sql_query(
        "SELECT action, actor_tenant_id::text, request_id FROM audit_log WHERE tenant_id = $1::uuid ORDER BY occurred_at, id",
    )
    .bind::<Text, _>(tenant.to_string())
    .load(&mut conn)
    .await
    .unwrap()
}

#[actix_web::test]
async fn a_tenant_token_on_another_tenants_id_is_404_and_shows_nothing() {
    let app = TestApp::spawn().await;
    let a = create(&app, "alpha").await;
    let b = create(&app, "bravo").await;
    let token_a = app.user_token(a, &["tenants:read", "tenants:write"]);

    let own = app.call("GET", &format!("/api/v1/tenants/{a}"), Some(&token_a), None).await;
    assert_eq!(own.status, 200);
    assert_eq!(own.json["data"]["slug"], json!("alpha"));

    let other = app.call("GET", &format!("/api/v1/tenants/{b}"), Some(&token_a), None).await;
    assert_envelope(&other, 404, "tenancy.tenant_not_found");
    assert!(!other.body.contains("bravo"), "nothing of B: {}", other.body);

    let update = json!({"name": "Mine", "contactEmail": "x@y.example"});
    let put = app.call("PUT", &format!("/api/v1/tenants/{b}"), Some(&token_a), Some(update)).await;
    assert_envelope(&put, 404, "tenancy.tenant_not_found");
    assert_eq!(audit_of(&app, b).await.len(), 1, "B's trail has only its creation");
}

#[actix_web::test]
async fn missing_expired_tampered_and_unsigned_tokens_are_401() {
    let app = TestApp::spawn().await;
    let path = "/api/v1/tenants";
    assert_envelope(&app.call("GET", path, None, None).await, 401, "auth.missing_token");

    let expired = app
        .keys
        .mint(
            portico_kernel::UserId::new(),
            "a@b.example",
            "admin",
            PLATFORM_TENANT_ID,
            &["platform:tenants:read"],
            -3600,
        )
        .unwrap();
    assert_envelope(&app.call("GET", path, Some(&expired), None).await, 401, "auth.token_expired");

    let token = app.admin_token();
    let (head, rest) = token.split_once('.').unwrap();
    let (claims, signature) = rest.split_once('.').unwrap();
    let tampered = format!("{head}.{claims}.{}", signature.chars().rev().collect::<String>());
    assert_envelope(&app.call("GET", path, Some(&tampered), None).await, 401, "auth.invalid_token");

    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{claims}.");
    assert_envelope(&app.call("GET", path, Some(&unsigned), None).await, 401, "auth.invalid_token");
    assert_envelope(&app.call("GET", path, Some("not-a-jwt"), None).await, 401, "auth.invalid_token");
}

#[actix_web::test]
async fn a_platform_admin_acts_on_a_tenant_through_x_tenant_id_and_the_audit_says_so() {
    let app = TestApp::spawn().await;
    let acme = create(&app, "acme").await;
    let admin = app.admin_token();
    let update = json!({"name": "Acme Homes", "contactEmail": "ops@acme.example"}).to_string().into_bytes();
    let res = app
        .call_with(
            "PUT",
            &format!("/api/v1/tenants/{acme}"),
            Some(&admin),
            &[("X-Tenant-ID", &acme.to_string())],
            Some(update),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"]["name"], json!("Acme Homes"));

    let last = audit_of(&app, acme).await.pop().unwrap();
    assert_eq!(last.action, "tenant.update");
    assert_eq!(last.actor_tenant_id, Some(PLATFORM_TENANT_ID.to_string()));
    assert_eq!(Some(last.request_id.as_str()), res.header("x-request-id"));
}

#[actix_web::test]
async fn a_tenant_token_naming_another_tenant_is_403() {
    let app = TestApp::spawn().await;
    let a = create(&app, "alpha").await;
    let b = create(&app, "bravo").await;
    let token = app.user_token(a, &["tenants:read"]);
    let res = app
        .call_with(
            "GET",
            &format!("/api/v1/tenants/{b}"),
            Some(&token),
            &[("X-Tenant-ID", &b.to_string())],
            None,
        )
        .await;
    assert_envelope(&res, 403, "tenancy.tenant_mismatch");
    let bad = app
        .call_with("GET", &format!("/api/v1/tenants/{a}"), Some(&token), &[("X-Tenant-ID", "nope")], None)
        .await;
    assert_envelope(&bad, 422, "request.invalid_tenant_header");
}

#[actix_web::test]
async fn routes_need_their_permission() {
    let app = TestApp::spawn().await;
    let a = create(&app, "alpha").await;
    let reader = app.user_token(a, &["tenants:read"]);
    let res = app.call("GET", "/api/v1/tenants", Some(&reader), None).await;
    assert_envelope(&res, 403, "auth.permission_denied");
    assert_eq!(res.json["error"]["details"]["permission"], json!("platform:tenants:read"));
    let suspend = app.call("POST", &format!("/api/v1/tenants/{a}/suspend"), Some(&reader), None).await;
    assert_envelope(&suspend, 403, "auth.permission_denied");
    // A tenant's user with a platform permission in its token still cannot cross tenants.
    let forged = app.user_token(a, &["platform:tenants:read"]);
    assert_envelope(
        &app.call("GET", "/api/v1/tenants", Some(&forged), None).await,
        403,
        "auth.permission_denied",
    );
}

#[actix_web::test]
async fn every_bad_field_of_create_tenant_is_422_naming_it() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let cases = [
        ("name", json!("")),
        ("slug", json!("Not A Slug")),
        ("slug", json!("admin")),
        ("contactEmail", json!("nope")),
        ("phone", json!("12345")),
        ("industry", json!("Real Estate")),
        ("status", json!("SUSPENDED")),
        ("metadata", json!([1])),
    ];
    for (field, value) in cases {
        let mut body = new_tenant("valid-slug");
        body[field] = value.clone();
        let res = app.call("POST", "/api/v1/tenants", Some(&admin), Some(body)).await;
        assert_envelope(&res, 422, "tenancy.invalid_tenant");
        let fields: Vec<&str> = res.json["error"]["details"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert!(fields.iter().all(|f| *f == field) && !fields.is_empty(), "{field}={value}: {fields:?}");
    }
    let listed = app.call("GET", "/api/v1/tenants?search=valid-slug", Some(&admin), None).await;
    assert_eq!(listed.json["meta"]["total"], json!(0), "nothing was created");
}

#[actix_web::test]
async fn malformed_requests_get_a_4xx_envelope_never_a_500() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let post = |body: Vec<u8>| app.call_with("POST", "/api/v1/tenants", Some(&admin), &[], Some(body));

    assert_envelope(&post(b"{\"name\": ".to_vec()).await, 400, "request.malformed_json");
    let field_of = |res: &crate::http::Response| res.json["error"]["details"]["fields"][0]["field"].clone();
    let wrong_type = json!({"name": 42, "slug": "x-y-z", "contactEmail": "a@b.example"});
    let res = post(wrong_type.to_string().into_bytes()).await;
    assert_envelope(&res, 422, "request.invalid_body");
    assert_eq!(field_of(&res), json!("name"), "{}", res.body);
    let mut unknown = new_tenant("fine-slug");
    unknown["owner"] = json!("me");
    let res = post(unknown.to_string().into_bytes()).await;
    assert_envelope(&res, 422, "request.invalid_body");
    assert_eq!(field_of(&res), json!("owner"), "{}", res.body);
    let missing = json!({"name": "No slug", "contactEmail": "a@b.example"});
    let res = post(missing.to_string().into_bytes()).await;
    assert_envelope(&res, 422, "request.invalid_body");
    assert_eq!(field_of(&res), json!("slug"), "{}", res.body);

    let mut huge = new_tenant("huge-slug");
    huge["metadata"] = json!({"blob": "x".repeat(2 * 1024 * 1024)});
    assert_envelope(&post(huge.to_string().into_bytes()).await, 413, "request.body_too_large");

    let as_text = app
        .call_with(
            "POST",
            "/api/v1/tenants",
            Some(&admin),
            &[("Content-Type", "text/plain")],
            Some(b"{}".to_vec()),
        )
        .await;
    assert_envelope(&as_text, 415, "request.unsupported_media_type");

    assert_envelope(
        &app.call("GET", "/api/v1/tenants/not-a-uuid", Some(&admin), None).await,
        400,
        "request.invalid_path",
    );
    assert_envelope(
        &app.call("GET", "/api/v1/tenants?limit=1000", Some(&admin), None).await,
        422,
        "request.invalid_page",
    );
    assert_envelope(
        &app.call("GET", "/api/v1/tenants?status=GONE", Some(&admin), None).await,
        400,
        "request.invalid_query",
    );
    assert_envelope(
        &app.call("GET", "/api/v1/nothing-here", Some(&admin), None).await,
        404,
        "http.route_not_found",
    );
    assert_envelope(
        &app.call("PATCH", "/api/v1/tenants", Some(&admin), None).await,
        405,
        "http.method_not_allowed",
    );
}

#[actix_web::test]
async fn the_request_id_is_echoed_and_logged() {
    let app = TestApp::spawn().await;
    let res = app.call_with("GET", "/health/live", None, &[("X-Request-Id", "trace-me-1234")], None).await;
    assert_eq!(res.header("x-request-id"), Some("trace-me-1234"));
    let forged =
        app.call_with("GET", "/health/live", None, &[("X-Request-Id", "bad id\twith tab")], None).await;
    let generated = forged.header("x-request-id").unwrap();
    assert_ne!(generated, "bad id\twith tab");
    assert!(portico_kernel::RequestId::parse(generated).is_some());

    let logged = logs();
    assert!(
        logged.lines().any(|l| l.contains("request_id=trace-me-1234") && l.contains("request served")),
        "no log line carries the request id"
    );
}

#[actix_web::test]
async fn the_platform_manages_the_tenant_lifecycle() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let acme = create(&app, "acme").await;
    create(&app, "globex").await;

    let page = app.call("GET", "/api/v1/tenants?limit=2&page=1", Some(&admin), None).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.json["meta"], json!({"page": 1, "limit": 2, "total": 3, "totalPages": 2}));
    assert_eq!(page.json["data"][0]["slug"], json!("globex"), "newest first");

    let suspended = app.call("POST", &format!("/api/v1/tenants/{acme}/suspend"), Some(&admin), None).await;
    assert_eq!(suspended.json["data"]["status"], json!("SUSPENDED"), "{}", suspended.body);
    let again = app.call("POST", &format!("/api/v1/tenants/{acme}/suspend"), Some(&admin), None).await;
    assert_envelope(&again, 409, "tenancy.invalid_transition");
    let filtered = app.call("GET", "/api/v1/tenants?status=SUSPENDED", Some(&admin), None).await;
    assert_eq!(filtered.json["meta"]["total"], json!(1));
    let active = app.call("POST", &format!("/api/v1/tenants/{acme}/activate"), Some(&admin), None).await;
    assert_eq!(active.json["data"]["status"], json!("ACTIVE"));

    let deleted = app.call("DELETE", &format!("/api/v1/tenants/{acme}"), Some(&admin), None).await;
    assert_eq!(deleted.status, 204);
    assert_envelope(
        &app.call("GET", &format!("/api/v1/tenants/{acme}"), Some(&admin), None).await,
        404,
        "tenancy.tenant_not_found",
    );
    let actions: Vec<String> = audit_of(&app, acme).await.into_iter().map(|r| r.action).collect();
    assert_eq!(actions, vec!["tenant.create", "tenant.suspend", "tenant.activate", "tenant.delete"]);

    let duplicate = app.call("POST", "/api/v1/tenants", Some(&admin), Some(new_tenant("globex"))).await;
    assert_envelope(&duplicate, 409, "tenancy.slug_taken");
    let platform =
        app.call("POST", &format!("/api/v1/tenants/{PLATFORM_TENANT_ID}/suspend"), Some(&admin), None).await;
    assert_envelope(&platform, 403, "tenancy.platform_tenant_protected");
}

#[actix_web::test]
async fn public_pages_find_their_tenant_by_slug_header_or_host() {
    let app = TestApp::spawn().await;
    let acme = create(&app, "acme").await;
    let by_header =
        app.call_with("GET", "/api/v1/public/tenant", None, &[("X-Tenant-Slug", "acme")], None).await;
    assert_eq!(by_header.status, 200, "{}", by_header.body);
    assert_eq!(
        by_header.json["data"],
        json!({"id": acme.to_string(), "name": "Tenant acme", "slug": "acme", "displayName": null,
               "primaryColor": null, "accentColor": null, "hasLogo": false})
    );

    let by_host =
        app.call_with("GET", "/api/v1/public/tenant", None, &[("Host", "acme.portico.example")], None).await;
    assert_eq!(by_host.json["data"]["id"], json!(acme.to_string()), "{}", by_host.body);

    let unknown =
        app.call_with("GET", "/api/v1/public/tenant", None, &[("X-Tenant-Slug", "nobody")], None).await;
    assert_envelope(&unknown, 404, "tenancy.tenant_not_found");
    let admin = app.admin_token();
    app.call("POST", &format!("/api/v1/tenants/{acme}/suspend"), Some(&admin), None).await;
    let suspended =
        app.call_with("GET", "/api/v1/public/tenant", None, &[("X-Tenant-Slug", "acme")], None).await;
    assert_envelope(&suspended, 404, "tenancy.tenant_not_found");
    let nameless = app.call("GET", "/api/v1/public/tenant", None, None).await;
    assert_envelope(&nameless, 422, "request.missing_tenant_slug");
}

#[actix_web::test]
async fn a_tenant_token_carrying_platform_permissions_gains_nothing() {
    let app = TestApp::spawn().await;
    let acme = create(&app, "acme").await;
    let forged = app.user_token(acme, &["platform:tenants:write", "platform:tenants:read", "tenants:read"]);
    for (method, path) in [
        ("POST", format!("/api/v1/tenants/{acme}/suspend")),
        ("POST", format!("/api/v1/tenants/{acme}/activate")),
        ("DELETE", format!("/api/v1/tenants/{acme}")),
    ] {
        assert_envelope(&app.call(method, &path, Some(&forged), None).await, 403, "auth.permission_denied");
    }
    let own = app.call("GET", &format!("/api/v1/tenants/{acme}"), Some(&forged), None).await;
    assert_eq!(own.json["data"]["status"], json!("TRIAL"), "nothing changed: {}", own.body);
    assert_eq!(audit_of(&app, acme).await.len(), 1);
}

#[actix_web::test]
async fn x_tenant_id_scopes_the_request_and_a_contradicting_path_finds_nothing() {
    let app = TestApp::spawn().await;
    let acme = create(&app, "acme").await;
    let globex = create(&app, "globex").await;
    let admin = app.admin_token();
    let header = |tenant: TenantId| [("X-Tenant-ID", tenant.to_string())];
    let get = |path: String, tenant: TenantId| {
        let headers = header(tenant);
        let app = &app;
        let admin = admin.clone();
        async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            app.call_with("GET", &path, Some(&admin), &headers, None).await
        }
    };
    let matching = get(format!("/api/v1/tenants/{acme}"), acme).await;
    assert_eq!(matching.json["data"]["slug"], json!("acme"), "{}", matching.body);
    let contradicting = get(format!("/api/v1/tenants/{acme}"), globex).await;
    assert_envelope(&contradicting, 404, "tenancy.tenant_not_found");
}

#[actix_web::test]
async fn staff_who_may_only_read_cannot_write_across_tenants() {
    let app = TestApp::spawn().await;
    let acme = create(&app, "acme").await;
    let support = app
        .keys
        .mint(
            portico_kernel::UserId::new(),
            "support@portico.example",
            "platform_support",
            PLATFORM_TENANT_ID,
            &["platform:tenants:read", "tenants:read", "tenants:write"],
            600,
        )
        .unwrap();
    let update =
        json!({"name": "Changed by support", "contactEmail": "x@y.example"}).to_string().into_bytes();
    let via_header = app
        .call_with(
            "PUT",
            &format!("/api/v1/tenants/{acme}"),
            Some(&support),
            &[("X-Tenant-ID", &acme.to_string())],
            Some(update.clone()),
        )
        .await;
    assert_envelope(&via_header, 403, "auth.permission_denied");
    let via_path =
        app.call_with("PUT", &format!("/api/v1/tenants/{acme}"), Some(&support), &[], Some(update)).await;
    assert_envelope(&via_path, 404, "tenancy.tenant_not_found");
    let read = app.call("GET", &format!("/api/v1/tenants/{acme}"), Some(&support), None).await;
    assert_eq!(read.json["data"]["name"], json!("Tenant acme"), "support can read, and nothing changed");
}

#[actix_web::test]
async fn log_lines_of_an_authenticated_request_carry_tenant_and_user() {
    let app = TestApp::spawn().await;
    let acme = create(&app, "acme").await;
    let token = app.user_token(acme, &["tenants:read"]);
    let user = app.keys.verify(&token).unwrap().sub;
    app.call_with(
        "GET",
        &format!("/api/v1/tenants/{acme}"),
        Some(&token),
        &[("X-Request-Id", "span-fields-check")],
        None,
    )
    .await;
    let line = logs()
        .lines()
        .find(|l| l.contains("span-fields-check") && l.contains("request served"))
        .map(String::from);
    let line = line.expect("a log line for the request");
    assert!(
        line.contains(&format!("tenant_id={acme}")) && line.contains(&format!("user_id={user}")),
        "{line}"
    );
    assert!(!line.contains("owner@tenant.example"), "no email in logs: {line}");
}
