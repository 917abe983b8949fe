//! The tenancy routes over HTTP: onboarding and sign-up, settings, the
//! effective configuration and feature gates, branding and logos, tenant
//! views and the platform's overview.

use std::io::{Read, Write};
use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use portico_kernel::TenantId;
use portico_tenancy::Role;
use portico_tenancy::logo::LOGO_MAX_BYTES;
use serde_json::{Value, json};

use crate::http::Response;
use crate::support::{PASSWORD, TestApp, code, rows};

/// The header of a PNG of `width` x `height` pixels: its signature and IHDR
/// chunk, which is what the logo check reads (no image data follows).
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
    bytes.extend_from_slice(b"IHDR");
    bytes.extend_from_slice(&width.to_be_bytes());
    bytes.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 6 (RGBA), compression, filter, interlace; then a CRC (not checked).
    bytes.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    bytes
}

/// The fields an error names in `details.fields`.
fn fields(res: &Response) -> Vec<String> {
    let named = res.json["error"]["details"]["fields"].as_array().cloned().unwrap_or_default();
    named.iter().map(|f| f["field"].as_str().unwrap().to_owned()).collect()
}

/// `SELECT … AS n` with one text parameter, over every tenant (as the platform role).
async fn number(app: &TestApp, sql: &str, bind: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Number {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = AsyncPgConnection::establish(&app.db.urls.platform).await.unwrap();
    diesel::sql_query(sql).bind::<Text, _>(bind).get_result::<Number>(&mut conn).await.unwrap().n
}

/// `SELECT … AS t` with one text parameter, as the platform role.
async fn text(app: &TestApp, sql: &str, bind: &str) -> String {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        t: String,
    }
    let mut conn = AsyncPgConnection::establish(&app.db.urls.platform).await.unwrap();
    diesel::sql_query(sql).bind::<Text, _>(bind).get_result::<Row>(&mut conn).await.unwrap().t
}

async fn execute(app: &TestApp, sql: &str, bind: &str) {
    let mut conn = AsyncPgConnection::establish(&app.db.urls.platform).await.unwrap();
    diesel::sql_query(sql).bind::<Text, _>(bind).execute(&mut conn).await.unwrap();
}

/// Every row of `table`, as the platform role sees them.
async fn total(app: &TestApp, table: &str) -> i64 {
    number(app, &format!("SELECT count(*) AS n FROM {table} WHERE $1 = ''"), "").await
}

/// The tenant's stored feature overrides (`{}` when it has none).
async fn stored_features(app: &TestApp, tenant: TenantId) -> Value {
    let sql =
        "SELECT coalesce((SELECT features::text FROM tenant_settings WHERE tenant_id = $1::uuid), '{}') AS t";
    serde_json::from_str(&text(app, sql, &tenant.to_string()).await).unwrap()
}

/// The tenant's stored own settings (`{}` when it has none).
async fn stored_settings(app: &TestApp, tenant: TenantId) -> Value {
    let sql =
        "SELECT coalesce((SELECT settings::text FROM tenant_settings WHERE tenant_id = $1::uuid), '{}') AS t";
    serde_json::from_str(&text(app, sql, &tenant.to_string()).await).unwrap()
}

/// Emails queued to `address`.
async fn emails_to(app: &TestApp, address: &str) -> i64 {
    let sql = "SELECT count(*) AS n FROM jobs WHERE kind = 'email.send' \
               AND payload -> 'message' -> 'to' -> 0 ->> 'address' = $1";
    number(app, sql, address).await
}

/// The platform's stock of every channel, enough for a few welcome grants.
async fn stock(app: &TestApp, admin: &str) {
    for channel in ["sms", "email", "whatsapp"] {
        let body = json!({"channel": channel, "amount": 10_000, "note": "Provider order"});
        let key = format!("stock-{channel}-{}", TenantId::new());
        let res = app
            .call_with(
                "POST",
                "/api/v1/credits/master-wallet/top-up",
                Some(admin),
                &[("Idempotency-Key", &key)],
                Some(body.to_string().into_bytes()),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
    }
}

fn owner(email: &str) -> Value {
    json!({"name": "Ada Owner", "email": email})
}

/// `POST /tenants/{tenant}/onboarding` with `body`, under `key` if given.
async fn onboard(app: &TestApp, token: &str, tenant: TenantId, body: &Value, key: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
    let path = format!("/api/v1/tenants/{tenant}/onboarding");
    app.call_with("POST", &path, Some(token), &headers, Some(body.to_string().into_bytes())).await
}

/// A stocked platform and `slug` onboarded by its staff with `owner_email` as owner.
async fn onboarded(app: &TestApp, admin: &str, slug: &str, owner_email: &str) -> TenantId {
    stock(app, admin).await;
    let tenant = app.tenant(slug).await;
    let res = onboard(app, admin, tenant, &json!({"owner": owner(owner_email)}), None).await;
    assert_eq!(res.status, 201, "{}", res.body);
    tenant
}

/// Accepts the invitation emailed to `email` with a password and signs in to `tenant`: the access token.
async fn accept_and_sign_in(app: &TestApp, email: &str, tenant: TenantId) -> String {
    let token = app.emailed_token(email).await;
    let accept = json!({"token": token, "password": "a-long-owner-passphrase"});
    let res = app.call("POST", "/api/v1/invitations/accept", None, Some(accept)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"]["tenantId"], json!(tenant.to_string()));
    let res = app.sign_in(email, "a-long-owner-passphrase", Some(&tenant.to_string())).await;
    assert_eq!(res.status, 200, "{}", res.body);
    res.json["data"]["accessToken"].as_str().unwrap().to_owned()
}

/// A signed-in person of `tenant` with `role`: their access token.
async fn member(app: &TestApp, email: &str, tenant: TenantId, role: Role) -> String {
    app.person(email, tenant, role).await;
    let res = app.sign_in(email, PASSWORD, Some(&tenant.to_string())).await;
    assert_eq!(res.status, 200, "{}", res.body);
    res.json["data"]["accessToken"].as_str().unwrap().to_owned()
}

/// Channel -> balance of the tenant's wallets, as stored.
async fn stored_balances(app: &TestApp, tenant: TenantId) -> Value {
    let sql = "SELECT coalesce(jsonb_object_agg(channel, balance), '{}')::text AS t FROM credit_wallets \
               WHERE tenant_id = $1::uuid";
    serde_json::from_str(&text(app, sql, &tenant.to_string()).await).unwrap()
}

fn sign_up_body(slug: &str, email: &str) -> Value {
    json!({"name": slug.to_uppercase(), "slug": slug, "owner": owner(email)})
}

async fn sign_up(app: &TestApp, body: &Value) -> Response {
    app.call("POST", "/api/v1/onboarding", None, Some(body.clone())).await
}

#[actix_web::test]
async fn platform_onboarding_invites_an_owner_who_signs_in_to_a_tenant_with_welcome_credits() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let admin = app.admin_token();
    stock(&app, &admin).await;
    let acme = app.tenant("acme").await;
    let body = json!({"owner": owner("ada@acme.example"), "industry": "trucking",
                      "settings": {"invoicePrefix": "ACME"}});
    let before = Utc::now();
    let res = onboard(&app, &admin, acme, &body, None).await;
    assert_eq!(res.status, 201, "{}", res.body);
    let data = &res.json["data"];
    assert_eq!(data["tenantId"], json!(acme.to_string()));
    assert_eq!(
        (&data["industry"], &data["source"], &data["status"]),
        (&json!("trucking"), &json!("platform"), &json!("TRIAL"))
    );
    assert_eq!(data["ownerEmail"], json!("ada@acme.example"));
    let trial_ends: DateTime<Utc> = data["trialEndsAt"].as_str().unwrap().parse().unwrap();
    assert!(trial_ends >= before + Duration::days(14) && trial_ends <= Utc::now() + Duration::days(14));
    let welcome: Vec<(String, i64)> = data["welcomeCredits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["channel"].as_str().unwrap().to_owned(), c["amount"].as_i64().unwrap()))
        .collect();
    assert_eq!(welcome, [("sms".to_owned(), 100), ("whatsapp".to_owned(), 100)]);

    // Stored: the tenant's industry and trial end, its own settings, the owner invited.
    let tenant = app.call("GET", &format!("/api/v1/tenants/{acme}"), Some(&admin), None).await;
    assert_eq!(tenant.json["data"]["industry"], json!("trucking"));
    assert_eq!(tenant.json["data"]["trialEndsAt"], data["trialEndsAt"]);
    assert_eq!(stored_settings(&app, acme).await, json!({"invoicePrefix": "ACME"}));
    let invited = "SELECT count(*) AS n FROM memberships WHERE kind = 'owner' AND status = 'invited' \
                   AND tenant_id = $1::uuid";
    assert_eq!(number(&app, invited, &acme.to_string()).await, 1);
    let email = app.last_email("ada@acme.example").await;
    assert!(email["subject"].as_str().unwrap().contains("ACME"), "{email}");

    // The emailed link makes the owner a member who signs in to acme and sees the welcome credits.
    let owner_token = accept_and_sign_in(&app, "ada@acme.example", acme).await;
    let wallets = app.call("GET", "/api/v1/credits/wallets", Some(&owner_token), None).await;
    assert_eq!(wallets.status, 200, "{}", wallets.body);
    let mut balances: Vec<(String, i64)> = wallets.json["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["channel"].as_str().unwrap().to_owned(), w["balance"].as_i64().unwrap()))
        .collect();
    balances.sort();
    assert_eq!(balances, [("sms".to_owned(), 100), ("whatsapp".to_owned(), 100)]);
    assert_eq!(stored_balances(&app, acme).await, json!({"sms": 100, "whatsapp": 100}));
}

#[actix_web::test]
async fn an_onboarding_sent_again_answers_as_the_first_time_and_writes_nothing_twice() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    stock(&app, &admin).await;
    let acme = app.tenant("acme").await;
    let body = json!({"owner": owner("ada@acme.example")});
    let first = onboard(&app, &admin, acme, &body, Some("onboard-acme")).await;
    assert_eq!(first.status, 201, "{}", first.body);

    let replayed = onboard(&app, &admin, acme, &body, Some("onboard-acme")).await;
    assert_eq!((replayed.status, replayed.header("idempotency-replayed")), (201, Some("true")));
    assert_eq!(replayed.json["data"], first.json["data"]);
    // Without the key, the same details are recognised by the store itself.
    let again = onboard(&app, &admin, acme, &body, None).await;
    assert_eq!((again.status, again.header("idempotency-replayed")), (201, None));
    assert_eq!(again.json["data"], first.json["data"]);

    assert_eq!(rows(&app, "memberships", acme).await, 1);
    assert_eq!(rows(&app, "onboardings", acme).await, 1);
    assert_eq!(rows(&app, "credit_grants", acme).await, 2, "email and sms of the generic profile, once");
    assert_eq!(emails_to(&app, "ada@acme.example").await, 1);
    assert_eq!(stored_balances(&app, acme).await, json!({"email": 500, "sms": 25}));

    // The same key with other details is a mistake of the caller's, not a second onboarding.
    let other = json!({"owner": owner("bob@acme.example")});
    let reused = onboard(&app, &admin, acme, &other, Some("onboard-acme")).await;
    assert_eq!(code(&reused), (422, json!("idempotency.key_reused")), "{}", reused.body);
    assert_eq!(rows(&app, "memberships", acme).await, 1);
}

#[actix_web::test]
async fn the_platform_tenant_is_not_onboarded_and_has_every_feature() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    stock(&app, &admin).await;
    let platform = portico_kernel::PLATFORM_TENANT_ID;
    let res = onboard(&app, &admin, platform, &json!({"owner": owner("ada@portico.example")}), None).await;
    assert_eq!(code(&res), (403, json!("tenancy.platform_tenant_protected")), "{}", res.body);
    let body = json!({"features": {"credits": false}});
    let res =
        app.call("PUT", &format!("/api/v1/tenants/{platform}/features"), Some(&admin), Some(body)).await;
    assert_eq!(code(&res), (403, json!("tenancy.platform_tenant_protected")), "{}", res.body);
    assert_eq!(stored_features(&app, platform).await, json!({}));
    // Staff's platform-wide credit views stay open.
    let res = app.call("GET", "/api/v1/credits/analytics", Some(&admin), None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    // Even an override stored by other means does not close the platform's own routes.
    execute(
        &app,
        "INSERT INTO tenant_settings (tenant_id, features, updated_at) \
         VALUES ($1::uuid, '{\"credits\": false}', now())",
        &platform.to_string(),
    )
    .await;
    let config = app.call("GET", &format!("/api/v1/tenants/{platform}/config"), Some(&admin), None).await;
    assert_eq!(config.json["data"]["features"]["credits"]["enabled"], json!(false), "{}", config.body);
    let res = app.call("GET", "/api/v1/credits/analytics", Some(&admin), None).await;
    assert_eq!(res.status, 200, "{}", res.body);
}

#[actix_web::test]
async fn only_platform_staff_change_a_tenants_industry() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let acme = app.tenant("acme").await;
    let owner_token = app.user_token(acme, Role::Owner.permissions());
    let update =
        |industry: Value| json!({"name": "ACME", "contactEmail": "ops@acme.example", "industry": industry});
    let path = format!("/api/v1/tenants/{acme}");
    let res = app.call("PUT", &path, Some(&owner_token), Some(update(json!("trucking")))).await;
    assert_eq!(code(&res), (403, json!("tenancy.industry_locked")), "{}", res.body);
    let industry = "SELECT coalesce(industry, '-') AS t FROM tenants WHERE id = $1::uuid";
    assert_eq!(text(&app, industry, &acme.to_string()).await, "-");
    // Sending it unchanged is fine; staff change it.
    let res = app.call("PUT", &path, Some(&owner_token), Some(update(json!(null)))).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let res = app.call("PUT", &path, Some(&admin), Some(update(json!("trucking")))).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(text(&app, industry, &acme.to_string()).await, "trucking");
    let config = app.call("GET", &format!("{path}/config"), Some(&owner_token), None).await;
    assert_eq!(
        config.json["data"]["features"]["fleet"]["enabled"],
        json!(true),
        "the profile's features follow"
    );
}

#[actix_web::test]
async fn onboarding_an_onboarded_tenant_with_another_owner_is_refused() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let acme = onboarded(&app, &admin, "acme", "ada@acme.example").await;
    let other = json!({"owner": owner("eve@acme.example")});
    let res = onboard(&app, &admin, acme, &other, None).await;
    assert_eq!(code(&res), (409, json!("tenancy.already_onboarded")), "{}", res.body);
    assert_eq!(rows(&app, "memberships", acme).await, 1);
    assert_eq!(number(&app, "SELECT count(*) AS n FROM users WHERE email = $1", "eve@acme.example").await, 0);
    assert_eq!(emails_to(&app, "eve@acme.example").await, 0);
}

#[actix_web::test]
async fn tenant_users_cannot_onboard_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    stock(&app, &admin).await;
    let acme = app.tenant("acme").await;
    let globex = app.tenant("globex").await;
    let acme_owner = app.user_token(acme, Role::Owner.permissions());
    // Even a tenant token that claims the platform's permission is not platform staff.
    let forged = app.user_token(acme, &["platform:tenants:write"]);
    let body = json!({"owner": owner("mallory@evil.example")});
    for (token, tenant) in [(&acme_owner, acme), (&acme_owner, globex), (&forged, acme), (&forged, globex)] {
        let res = onboard(&app, token, tenant, &body, None).await;
        assert_eq!(res.status, 403, "{}", res.body);
    }
    for tenant in [acme, globex] {
        assert_eq!(rows(&app, "onboardings", tenant).await, 0);
        assert_eq!(rows(&app, "memberships", tenant).await, 0);
        assert_eq!(rows(&app, "credit_grants", tenant).await, 0);
    }
    assert_eq!(emails_to(&app, "mallory@evil.example").await, 0);
}

#[actix_web::test]
async fn a_sign_up_creates_a_trial_tenant_and_invites_its_owner_once() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    stock(&app, &app.admin_token()).await;
    let mut body = sign_up_body("speedy", "grace@speedy.example");
    body["industry"] = json!("trucking");
    let before = Utc::now();
    let res = sign_up(&app, &body).await;
    assert_eq!(res.status, 202, "{}", res.body);
    let data = &res.json["data"];
    assert_eq!(
        (&data["source"], &data["status"], &data["industry"]),
        (&json!("self_service"), &json!("TRIAL"), &json!("trucking"))
    );
    let trial_ends: DateTime<Utc> = data["trialEndsAt"].as_str().unwrap().parse().unwrap();
    assert!(trial_ends >= before + Duration::days(14) && trial_ends <= Utc::now() + Duration::days(14));
    let tenant: TenantId = data["tenantId"].as_str().unwrap().parse().unwrap();
    let stored =
        "SELECT status || ' ' || industry || ' ' || contact_email AS t FROM tenants WHERE id = $1::uuid";
    assert_eq!(text(&app, stored, &tenant.to_string()).await, "trial trucking grace@speedy.example");
    assert!(app.last_subject("grace@speedy.example").await.contains("SPEEDY"));
    assert_eq!(data["welcomeCreditsGranted"], json!(false));
    assert_eq!(stored_balances(&app, tenant).await, json!({}), "no credits before the owner confirms");

    let again = sign_up(&app, &body).await;
    assert_eq!(again.status, 202, "{}", again.body);
    assert_eq!(again.json["data"], res.json["data"]);
    assert_eq!(number(&app, "SELECT count(*) AS n FROM tenants WHERE slug = $1", "speedy").await, 1);
    assert_eq!(rows(&app, "memberships", tenant).await, 1);
    assert_eq!(emails_to(&app, "grace@speedy.example").await, 2, "the owner gets a new link");

    // The owner confirms with the (newest) link and runs the new tenant, with its welcome credits.
    let owner_token = accept_and_sign_in(&app, "grace@speedy.example", tenant).await;
    assert_eq!(stored_balances(&app, tenant).await, json!({"sms": 100, "whatsapp": 100}));
    let settings =
        app.call("GET", &format!("/api/v1/tenants/{tenant}/settings"), Some(&owner_token), None).await;
    assert_eq!(settings.json["data"]["industry"], json!("trucking"));
}

#[actix_web::test]
async fn a_sign_up_for_a_taken_slug_is_refused() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    stock(&app, &app.admin_token()).await;
    assert_eq!(sign_up(&app, &sign_up_body("speedy", "grace@speedy.example")).await.status, 202);
    let res = sign_up(&app, &sign_up_body("speedy", "eve@elsewhere.example")).await;
    assert_eq!(code(&res), (409, json!("tenancy.slug_taken")), "{}", res.body);
    assert_eq!(number(&app, "SELECT count(*) AS n FROM tenants WHERE slug = $1", "speedy").await, 1);
    assert_eq!(
        number(&app, "SELECT count(*) AS n FROM users WHERE email = $1", "eve@elsewhere.example").await,
        0
    );
    // A slug of a tenant made by the platform's staff is taken too.
    app.tenant("acme").await;
    let res = sign_up(&app, &sign_up_body("acme", "eve@elsewhere.example")).await;
    assert_eq!(code(&res), (409, json!("tenancy.slug_taken")));
}

#[actix_web::test]
async fn bad_sign_up_input_is_refused_with_stable_codes_and_nothing_is_written() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    stock(&app, &app.admin_token()).await;
    let tenants_before = total(&app, "tenants").await;
    let valid = sign_up_body("speedy", "grace@speedy.example");
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    let cases = [
        (with("slug", json!("Bad Slug")), "tenancy.invalid_onboarding", "slug"),
        (with("owner", owner("not-an-email")), "tenancy.invalid_onboarding", "owner.email"),
        (with("plan", json!("gold")), "request.invalid_body", "plan"),
    ];
    for (body, expected, field) in cases {
        let res = sign_up(&app, &body).await;
        assert_eq!(code(&res), (422, json!(expected)), "{body}: {}", res.body);
        assert!(fields(&res).contains(&field.to_owned()), "{body}: {}", res.body);
    }
    let broken = app.call_with("POST", "/api/v1/onboarding", None, &[], Some(b"{\"name\": ".to_vec())).await;
    assert_eq!(code(&broken), (400, json!("request.malformed_json")));
    assert_eq!(total(&app, "tenants").await, tenants_before);
    assert_eq!(total(&app, "onboardings").await, 0);
    assert_eq!(
        number(&app, "SELECT count(*) AS n FROM users WHERE email = $1", "grace@speedy.example").await,
        0
    );
    assert_eq!(emails_to(&app, "grace@speedy.example").await, 0);
}

#[actix_web::test]
async fn a_sign_up_with_an_unknown_industry_is_refused_as_unknown_industry() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    stock(&app, &app.admin_token()).await;
    let mut body = sign_up_body("speedy", "grace@speedy.example");
    body["industry"] = json!("alchemy");
    let res = sign_up(&app, &body).await;
    assert_eq!(number(&app, "SELECT count(*) AS n FROM tenants WHERE slug = $1", "speedy").await, 0);
    assert_eq!(code(&res), (422, json!("tenancy.unknown_industry")), "{}", res.body);
}

#[actix_web::test]
async fn sign_up_is_limited_per_client_address() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "2/min".parse().unwrap()).await;
    stock(&app, &app.admin_token()).await;
    assert_eq!(sign_up(&app, &sign_up_body("first", "a@first.example")).await.status, 202);
    assert_eq!(sign_up(&app, &sign_up_body("second", "b@second.example")).await.status, 202);
    let third = sign_up(&app, &sign_up_body("third", "c@third.example")).await;
    assert_eq!(code(&third), (429, json!("rate_limit.exceeded")), "{}", third.body);
    assert!(third.header("retry-after").is_some());
    assert_eq!(number(&app, "SELECT count(*) AS n FROM tenants WHERE slug = $1", "third").await, 0);
}

#[actix_web::test]
async fn the_industry_catalogue_is_public() {
    let app = TestApp::spawn().await;
    let res = app.call("GET", "/api/v1/industries", None, None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let keys = |list: &str, key: &str| -> Vec<String> {
        let items = res.json["data"][list].as_array().unwrap();
        items.iter().map(|i| i[key].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(
        keys("industries", "key"),
        ["generic", "property_management", "education", "trucking", "service_repair"]
    );
    let features = keys("features", "key");
    assert_eq!(features.len(), 14);
    assert!(["credits", "crm", "fleet", "work_orders"].iter().all(|f| features.contains(&(*f).to_owned())));
    let trucking = &res.json["data"]["industries"][3];
    assert_eq!(
        (&trucking["trialDays"], &trucking["welcomeCredits"]),
        (&json!(14), &json!({"sms": 100, "whatsapp": 100}))
    );
}

#[actix_web::test]
async fn settings_follow_the_profile_until_the_tenant_sets_its_own() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("acme").await;
    let owner_token = app.user_token(acme, Role::Owner.permissions());
    let path = format!("/api/v1/tenants/{acme}/settings");
    let res = app.call("GET", &path, Some(&owner_token), None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let defaults = res.json["data"]["settings"].clone();
    assert_eq!(res.json["data"]["industry"], json!("generic"));
    assert_eq!((&defaults["timeZone"], &defaults["invoicePrefix"]), (&json!("Europe/Berlin"), &json!("INV")));
    assert_eq!(res.json["data"]["ownSettings"], json!({}));

    let res = app.call("PUT", &path, Some(&owner_token), Some(json!({"timeZone": "Europe/Vienna"}))).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"]["settings"]["timeZone"], json!("Europe/Vienna"));
    assert_eq!(res.json["data"]["settings"]["locale"], defaults["locale"]);
    assert_eq!(res.json["data"]["ownSettings"], json!({"timeZone": "Europe/Vienna"}));
    assert_eq!(stored_settings(&app, acme).await, json!({"timeZone": "Europe/Vienna"}));

    let res = app.call("PUT", &path, Some(&owner_token), Some(json!({}))).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"]["settings"], defaults);
    assert_eq!(res.json["data"]["ownSettings"], json!({}));
    assert_eq!(stored_settings(&app, acme).await, json!({}));
    let audited = "SELECT count(*) AS n FROM audit_log WHERE action = 'tenant.settings.update' \
                   AND resource_id = $1";
    assert_eq!(number(&app, audited, &acme.to_string()).await, 2);
}

#[actix_web::test]
async fn bad_settings_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("acme").await;
    let owner_token = app.user_token(acme, Role::Owner.permissions());
    let path = format!("/api/v1/tenants/{acme}/settings");
    let set = app.call("PUT", &path, Some(&owner_token), Some(json!({"currency": "USD"}))).await;
    assert_eq!(set.status, 200, "{}", set.body);

    // An unknown key is refused by the body reader, naming it.
    let res = app.call("PUT", &path, Some(&owner_token), Some(json!({"timezone": "UTC"}))).await;
    assert_eq!(code(&res), (422, json!("request.invalid_body")), "{}", res.body);
    assert_eq!(fields(&res), ["timezone"]);
    let bad = json!({"timeZone": "Mars/Olympus", "currency": "EURO", "contact": {"country": "de"}});
    let res = app.call("PUT", &path, Some(&owner_token), Some(bad)).await;
    assert_eq!(code(&res), (422, json!("tenancy.invalid_settings")), "{}", res.body);
    let mut named = fields(&res);
    named.sort();
    assert_eq!(named, ["contact.country", "currency", "timeZone"]);
    assert_eq!(stored_settings(&app, acme).await, json!({"currency": "USD"}));
}

#[actix_web::test]
async fn settings_are_walled_by_tenant_and_permission() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = app.tenant("acme").await;
    let globex = app.tenant("globex").await;
    let acme_owner = app.user_token(acme, Role::Owner.permissions());
    let path = format!("/api/v1/tenants/{acme}/settings");
    app.call("PUT", &path, Some(&acme_owner), Some(json!({"locale": "de-DE"}))).await;

    let globex_owner = member(&app, "owner@globex.example", globex, Role::Owner).await;
    let read = app.call("GET", &path, Some(&globex_owner), None).await;
    assert_eq!(code(&read), (404, json!("tenancy.tenant_not_found")), "{}", read.body);
    assert_eq!(read.json["data"], Value::Null);
    let write = app.call("PUT", &path, Some(&globex_owner), Some(json!({"locale": "fr"}))).await;
    assert_eq!(code(&write), (404, json!("tenancy.tenant_not_found")));
    // Staff of acme may read, not change.
    let staff = member(&app, "staff@acme.example", acme, Role::Staff).await;
    assert_eq!(app.call("GET", &path, Some(&staff), None).await.status, 200);
    let write = app.call("PUT", &path, Some(&staff), Some(json!({"locale": "fr"}))).await;
    assert_eq!(code(&write), (403, json!("auth.permission_denied")));

    assert_eq!(stored_settings(&app, acme).await, json!({"locale": "de-DE"}));
    assert_eq!(rows(&app, "tenant_settings", globex).await, 0);
}

#[actix_web::test]
async fn the_config_shows_each_features_state_and_source() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let acme = app.tenant("acme").await;
    let features = json!({"features": {"work_orders": true, "crm": false}});
    let set =
        app.call("PUT", &format!("/api/v1/tenants/{acme}/features"), Some(&admin), Some(features)).await;
    assert_eq!(set.status, 200, "{}", set.body);
    let owner_token = app.user_token(acme, Role::Owner.permissions());
    let res = app.call("GET", &format!("/api/v1/tenants/{acme}/config"), Some(&owner_token), None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let features = &res.json["data"]["features"];
    assert_eq!(features.as_object().unwrap().len(), 14);
    assert_eq!(features["work_orders"], json!({"enabled": true, "source": "override"}));
    assert_eq!(features["crm"], json!({"enabled": false, "source": "override"}));
    assert_eq!(features["credits"], json!({"enabled": true, "source": "industry"}));
    assert_eq!(features["fleet"], json!({"enabled": false, "source": "industry"}));
    assert_eq!(stored_features(&app, acme).await, json!({"work_orders": true, "crm": false}));
}

#[actix_web::test]
async fn a_disabled_feature_closes_its_routes_until_the_override_is_removed() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let acme = app.tenant("acme").await;
    let globex = app.tenant("globex").await;
    let acme_owner = app.user_token(acme, Role::Owner.permissions());
    let globex_owner = app.user_token(globex, Role::Owner.permissions());
    let wallets = |token: String| {
        let app = &app;
        async move { app.call("GET", "/api/v1/credits/wallets", Some(&token), None).await }
    };
    // Read once, so a cached answer would be there to go stale.
    assert_eq!(wallets(acme_owner.clone()).await.status, 200);
    let features = format!("/api/v1/tenants/{acme}/features");

    let off = app.call("PUT", &features, Some(&admin), Some(json!({"features": {"credits": false}}))).await;
    assert_eq!(off.json["data"]["features"]["credits"], json!({"enabled": false, "source": "override"}));
    let res = wallets(acme_owner.clone()).await;
    assert_eq!(code(&res), (403, json!("tenancy.feature_disabled")), "{}", res.body);
    let buy = json!({"amount": 10});
    let res = app.call("POST", "/api/v1/credits/wallets/sms/add", Some(&acme_owner), Some(buy)).await;
    assert_eq!(code(&res), (403, json!("tenancy.feature_disabled")));
    assert_eq!(wallets(globex_owner.clone()).await.status, 200, "another tenant keeps the feature");

    let on = app.call("PUT", &features, Some(&admin), Some(json!({"features": {"credits": null}}))).await;
    assert_eq!(on.json["data"]["features"]["credits"], json!({"enabled": true, "source": "industry"}));
    assert_eq!(stored_features(&app, acme).await, json!({}));
    let res = wallets(acme_owner).await;
    assert_eq!(res.status, 200, "{}", res.body);
}

#[actix_web::test]
async fn a_feature_switched_off_on_one_instance_closes_its_routes_on_another() {
    let a = TestApp::spawn().await;
    let b = a.another_instance().await;
    let admin = a.admin_token();
    let acme = a.tenant("acme").await;
    let acme_owner = b.user_token(acme, Role::Owner.permissions());
    // B has the tenant's features in its cache.
    assert_eq!(b.call("GET", "/api/v1/credits/wallets", Some(&acme_owner), None).await.status, 200);
    let staff_on_acme = [("X-Tenant-ID", acme.to_string())];
    let staff: Vec<(&str, &str)> = staff_on_acme.iter().map(|(n, v)| (*n, v.as_str())).collect();
    assert_eq!(a.call_with("GET", "/api/v1/credits/wallets", Some(&admin), &staff, None).await.status, 200);

    let off = json!({"features": {"credits": false}});
    let res = a.call("PUT", &format!("/api/v1/tenants/{acme}/features"), Some(&admin), Some(off)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    // B learns through the settings table's NOTIFY, within a bounded wait.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let res = b.call("GET", "/api/v1/credits/wallets", Some(&acme_owner), None).await;
        if res.status == 403 {
            assert_eq!(code(&res), (403, json!("tenancy.feature_disabled")));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "B still serves a disabled feature: {}", res.body);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Staff acting on the tenant meet its gate too.
    let res = a.call_with("GET", "/api/v1/credits/wallets", Some(&admin), &staff, None).await;
    assert_eq!(code(&res), (403, json!("tenancy.feature_disabled")), "{}", res.body);
}

#[actix_web::test]
async fn only_platform_staff_set_features_and_unknown_ones_change_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let acme = app.tenant("acme").await;
    let path = format!("/api/v1/tenants/{acme}/features");
    app.call("PUT", &path, Some(&admin), Some(json!({"features": {"fleet": true}}))).await;

    let owner_token = app.user_token(acme, Role::Owner.permissions());
    let res = app.call("PUT", &path, Some(&owner_token), Some(json!({"features": {"fleet": false}}))).await;
    assert_eq!(code(&res), (403, json!("auth.permission_denied")), "{}", res.body);
    let unknown = json!({"features": {"crm": false, "teleportation": true}});
    let res = app.call("PUT", &path, Some(&admin), Some(unknown)).await;
    assert_eq!(code(&res), (422, json!("tenancy.unknown_feature")), "{}", res.body);
    assert_eq!(stored_features(&app, acme).await, json!({"fleet": true}));
}

async fn put_branding(app: &TestApp, token: &str, tenant: TenantId, body: Value) -> Response {
    app.call("PUT", &format!("/api/v1/tenants/{tenant}/branding"), Some(token), Some(body)).await
}

/// The tenant's stored branding row as `display|primary|accent|domain` (`-` for none).
async fn stored_branding(app: &TestApp, tenant: TenantId) -> String {
    let sql = "SELECT coalesce((SELECT concat_ws('|', coalesce(display_name, '-'), coalesce(primary_color, '-'), \
               coalesce(accent_color, '-'), coalesce(custom_domain, '-')) FROM tenant_branding \
               WHERE tenant_id = $1::uuid), 'none') AS t";
    text(app, sql, &tenant.to_string()).await
}

#[actix_web::test]
async fn branding_colours_are_checked_and_kept_in_lower_case() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("acme").await;
    let owner_token = app.user_token(acme, Role::Owner.permissions());
    for (body, field) in [
        (json!({"primaryColor": "red"}), "primaryColor"),
        (json!({"accentColor": "#12345"}), "accentColor"),
        (json!({"customDomain": "http://acme.example"}), "customDomain"),
    ] {
        let res = put_branding(&app, &owner_token, acme, body).await;
        assert_eq!(code(&res), (422, json!("tenancy.invalid_branding")), "{}", res.body);
        assert_eq!(fields(&res), [field]);
    }
    assert_eq!(stored_branding(&app, acme).await, "none");

    let good = json!({"displayName": "Acme Homes", "primaryColor": "#1A73E8", "accentColor": "#FF9900",
                      "customDomain": "Portal.Acme.Example"});
    let res = put_branding(&app, &owner_token, acme, good).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let data = &res.json["data"];
    assert_eq!((&data["primaryColor"], &data["accentColor"]), (&json!("#1a73e8"), &json!("#ff9900")));
    assert_eq!(data["customDomain"], json!("portal.acme.example"));
    assert_eq!(stored_branding(&app, acme).await, "Acme Homes|#1a73e8|#ff9900|portal.acme.example");
    let read = app.call("GET", &format!("/api/v1/tenants/{acme}/branding"), Some(&owner_token), None).await;
    assert_eq!(read.json["data"], res.json["data"]);
}

#[actix_web::test]
async fn a_custom_domain_belongs_to_one_tenant() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("acme").await;
    let globex = app.tenant("globex").await;
    let acme_owner = app.user_token(acme, Role::Owner.permissions());
    let globex_owner = app.user_token(globex, Role::Owner.permissions());
    let res = put_branding(&app, &acme_owner, acme, json!({"customDomain": "portal.acme.example"})).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let claim = json!({"primaryColor": "#000000", "customDomain": "PORTAL.acme.example"});
    let res = put_branding(&app, &globex_owner, globex, claim).await;
    assert_eq!(code(&res), (409, json!("tenancy.domain_taken")), "{}", res.body);
    assert_eq!(stored_branding(&app, globex).await, "none");
    assert_eq!(stored_branding(&app, acme).await, "-|-|-|portal.acme.example");

    // A deleted tenant serves no portal: its domain is free again.
    let admin = app.admin_token();
    let deleted = app.call("DELETE", &format!("/api/v1/tenants/{acme}"), Some(&admin), None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let claim = json!({"customDomain": "portal.acme.example"});
    let res = put_branding(&app, &globex_owner, globex, claim).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(stored_branding(&app, globex).await, "-|-|-|portal.acme.example");
}

fn logo_path(tenant: TenantId) -> String {
    format!("/api/v1/tenants/{tenant}/branding/logo")
}

async fn put_logo(
    app: &TestApp,
    token: &str,
    tenant: TenantId,
    content_type: &str,
    bytes: Vec<u8>,
) -> Response {
    app.call_with("PUT", &logo_path(tenant), Some(token), &[("Content-Type", content_type)], Some(bytes))
        .await
}

/// `GET` of a logo as raw bytes (the test client reads bodies as text): status, headers, body.
async fn fetch_logo(app: &TestApp, token: &str, tenant: TenantId) -> (u16, Vec<(String, String)>, Vec<u8>) {
    fetch(app, &logo_path(tenant), &format!("Authorization: Bearer {token}\r\n")).await
}

/// `GET path` with `extra` header lines, read as bytes: status, headers (lower-case names), body.
async fn fetch(app: &TestApp, path: &str, extra: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let (addr, request) =
        (app.addr, format!("GET {path} HTTP/1.1\r\nHost: {}\r\n{extra}Connection: close\r\n\r\n", app.addr));
    let raw = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        raw
    })
    .await
    .unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, raw[split + 4..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The logo files in the tenant's space of the test file store (sidecars left out).
fn logo_files(tenant: TenantId) -> Vec<String> {
    let dir: PathBuf =
        std::env::temp_dir().join("portico-test-files").join(tenant.to_string()).join("branding");
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("logo-") && !name.contains('~'))
        .collect();
    names.sort();
    names
}

#[actix_web::test]
async fn a_logo_is_stored_and_served_byte_for_byte() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("acme").await;
    let owner_token = app.user_token(acme, Role::Owner.permissions());
    let logo = png(64, 32);
    let res = put_logo(&app, &owner_token, acme, "image/png", logo.clone()).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let info = &res.json["data"]["logo"];
    assert_eq!(
        (&info["contentType"], &info["size"], &info["width"], &info["height"]),
        (&json!("image/png"), &json!(logo.len()), &json!(64), &json!(32))
    );
    let (status, headers, body) = fetch_logo(&app, &owner_token, acme).await;
    assert_eq!(status, 200);
    assert_eq!(body, logo);
    assert_eq!(header(&headers, "content-type"), Some("image/png"));
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    let files = logo_files(acme);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with(".png"));
    let key = format!("{acme}/branding/{}", files[0]);
    assert_eq!(
        text(&app, "SELECT logo_key AS t FROM tenant_branding WHERE tenant_id = $1::uuid", &acme.to_string())
            .await,
        key
    );
}

#[actix_web::test]
async fn a_sign_in_page_gets_its_tenants_branding_and_logo_by_slug() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("acme").await;
    let globex = app.tenant("globex").await;
    let owner_token = app.user_token(acme, Role::Owner.permissions());
    let body = json!({"displayName": "Acme Homes", "primaryColor": "#1A73E8", "accentColor": "#ff9900"});
    assert_eq!(put_branding(&app, &owner_token, acme, body).await.status, 200);
    let logo = png(64, 32);
    assert_eq!(put_logo(&app, &owner_token, acme, "image/png", logo.clone()).await.status, 200);

    let face = app.call_with("GET", "/api/v1/public/tenant", None, &[("X-Tenant-Slug", "acme")], None).await;
    assert_eq!(face.status, 200, "{}", face.body);
    let expected = json!({"id": acme.to_string(), "name": "ACME", "slug": "acme", "displayName": "Acme Homes",
                          "primaryColor": "#1a73e8", "accentColor": "#ff9900", "hasLogo": true});
    assert_eq!(face.json["data"], expected);
    let (status, headers, bytes) = fetch(&app, "/api/v1/public/tenant/logo", "X-Tenant-Slug: acme\r\n").await;
    assert_eq!((status, bytes), (200, logo));
    assert_eq!(header(&headers, "content-type"), Some("image/png"));
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    let vary = header(&headers, "vary").unwrap_or_default();
    assert!(vary.starts_with("X-Tenant-Slug, Host"), "one address, a logo per tenant: {vary}");

    // Another tenant's page shows its own (no logo), never Acme's.
    let (status, _, body) = fetch(&app, "/api/v1/public/tenant/logo", "X-Tenant-Slug: globex\r\n").await;
    assert_eq!(status, 404);
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"]["code"], "tenancy.logo_not_found");
    let face =
        app.call_with("GET", "/api/v1/public/tenant", None, &[("X-Tenant-Slug", "globex")], None).await;
    assert_eq!(face.json["data"]["id"], json!(globex.to_string()));
    assert_eq!(face.json["data"]["hasLogo"], json!(false));

    // A tenant out of service shows nothing.
    let admin = app.admin_token();
    app.call("POST", &format!("/api/v1/tenants/{acme}/suspend"), Some(&admin), None).await;
    let (status, _, body) = fetch(&app, "/api/v1/public/tenant/logo", "X-Tenant-Slug: acme\r\n").await;
    assert_eq!(status, 404);
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"]["code"], "tenancy.tenant_not_found");
}

#[actix_web::test]
async fn refused_logos_leave_the_stored_one_unchanged() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("acme").await;
    let owner_token = app.user_token(acme, Role::Owner.permissions());
    let logo = png(64, 32);
    assert_eq!(put_logo(&app, &owner_token, acme, "image/png", logo.clone()).await.status, 200);
    let stored = logo_files(acme);

    let mut oversized = png(64, 32);
    oversized.resize(LOGO_MAX_BYTES + 1, 0);
    let script = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.to_vec();
    for (content_type, bytes, status, expected) in [
        ("image/png", oversized, 413, "tenancy.logo_too_large"),
        (
            "image/png",
            b"just some notes, renamed to logo.png\n".to_vec(),
            422,
            "tenancy.logo_content_mismatch",
        ),
        ("image/svg+xml", script, 422, "tenancy.logo_unsafe_svg"),
        ("image/gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec(), 422, "tenancy.logo_unsupported_type"),
    ] {
        let res = put_logo(&app, &owner_token, acme, content_type, bytes).await;
        assert_eq!(code(&res), (status, json!(expected)), "{}", res.body);
        let (status, _, body) = fetch_logo(&app, &owner_token, acme).await;
        assert_eq!((status, body == logo), (200, true), "after {expected}");
        assert_eq!(logo_files(acme), stored, "after {expected}");
    }
}

#[actix_web::test]
async fn a_new_logo_replaces_the_old_file_and_removal_deletes_it() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("acme").await;
    let owner_token = app.user_token(acme, Role::Owner.permissions());
    assert_eq!(put_logo(&app, &owner_token, acme, "image/png", png(64, 32)).await.status, 200);
    let first = logo_files(acme);
    let res = put_logo(&app, &owner_token, acme, "image/png", png(128, 64)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"]["logo"]["width"], json!(128));
    let second = logo_files(acme);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second, first, "the first file is deleted");
    assert_eq!(fetch_logo(&app, &owner_token, acme).await.2, png(128, 64));

    let res = app.call("DELETE", &logo_path(acme), Some(&owner_token), None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"]["logo"], Value::Null);
    let res = app.call("GET", &logo_path(acme), Some(&owner_token), None).await;
    assert_eq!(code(&res), (404, json!("tenancy.logo_not_found")));
    assert_eq!(logo_files(acme), Vec::<String>::new());
    let again = app.call("DELETE", &logo_path(acme), Some(&owner_token), None).await;
    assert_eq!(code(&again), (404, json!("tenancy.logo_not_found")));
}

#[actix_web::test]
async fn another_tenants_user_cannot_read_or_change_a_logo() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("acme").await;
    let globex = app.tenant("globex").await;
    let acme_owner = app.user_token(acme, Role::Owner.permissions());
    let globex_owner = app.user_token(globex, Role::Owner.permissions());
    assert_eq!(put_logo(&app, &acme_owner, acme, "image/png", png(64, 32)).await.status, 200);
    let stored = logo_files(acme);

    let (status, _, body) = fetch_logo(&app, &globex_owner, acme).await;
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, &error["error"]["code"]), (404, &json!("tenancy.tenant_not_found")));
    let res = put_logo(&app, &globex_owner, acme, "image/png", png(16, 16)).await;
    assert_eq!(code(&res), (404, json!("tenancy.tenant_not_found")), "{}", res.body);
    let res = app.call("DELETE", &logo_path(acme), Some(&globex_owner), None).await;
    assert_eq!(code(&res), (404, json!("tenancy.tenant_not_found")));

    assert_eq!(logo_files(acme), stored);
    assert_eq!(logo_files(globex), Vec::<String>::new());
    assert_eq!(fetch_logo(&app, &acme_owner, acme).await.2, png(64, 32));
    let sql = "SELECT count(*) AS n FROM tenant_branding WHERE logo_key IS NOT NULL AND tenant_id = $1::uuid";
    assert_eq!(number(&app, sql, &globex.to_string()).await, 0);
}

#[actix_web::test]
async fn a_tenants_users_are_listed_to_it_and_to_nobody_else() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let acme = onboarded(&app, &admin, "acme", "ada@acme.example").await;
    let globex = app.tenant("globex").await;
    let path = format!("/api/v1/tenants/{acme}/users");
    let res = app.call("GET", &path, Some(&admin), None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let people = res.json["data"].as_array().unwrap();
    assert_eq!(people.len(), 1, "{}", res.body);
    assert_eq!((&people[0]["email"], &people[0]["kind"]), (&json!("ada@acme.example"), &json!("OWNER")));
    assert_eq!(people[0]["tenantId"], json!(acme.to_string()));

    let globex_owner = app.user_token(globex, Role::Owner.permissions());
    let res = app.call("GET", &path, Some(&globex_owner), None).await;
    assert_eq!(code(&res), (404, json!("tenancy.tenant_not_found")), "{}", res.body);
    assert!(!res.body.contains("ada@acme.example"));
}

#[actix_web::test]
async fn tenant_analytics_count_members_and_credits_as_stored() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let acme = onboarded(&app, &admin, "acme", "ada@acme.example").await;
    let res = app.call("GET", &format!("/api/v1/tenants/{acme}/analytics"), Some(&admin), None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let data = &res.json["data"];
    assert_eq!(data["membersByKind"], json!({"owner": 1}));
    assert_eq!(data["membersByStatus"], json!({"invited": 1}));
    let credits: serde_json::Map<String, Value> = data["credits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["channel"].as_str().unwrap().to_owned(), c["balance"].clone()))
        .collect();
    assert_eq!(Value::Object(credits), stored_balances(&app, acme).await);
    assert_eq!(stored_balances(&app, acme).await, json!({"email": 500, "sms": 25}));

    // Someone who may see people but not credits sees no credits.
    let people_only = app.user_token(acme, &["people:read"]);
    let res = app.call("GET", &format!("/api/v1/tenants/{acme}/analytics"), Some(&people_only), None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"]["credits"], json!(null));
    assert_eq!(res.json["data"]["membersByKind"], json!({"owner": 1}));

    let globex = app.tenant("globex").await;
    let globex_owner = app.user_token(globex, Role::Owner.permissions());
    let res = app.call("GET", &format!("/api/v1/tenants/{acme}/analytics"), Some(&globex_owner), None).await;
    assert_eq!(code(&res), (404, json!("tenancy.tenant_not_found")));
}

#[actix_web::test]
async fn the_overview_counts_tenants_and_lists_trials_ending_within_two_weeks() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let admin = app.admin_token();
    stock(&app, &admin).await;
    let mut ids = Vec::new();
    for (slug, industry) in [("soon", "trucking"), ("later", "education")] {
        let mut body = sign_up_body(slug, &format!("owner@{slug}.example"));
        body["industry"] = json!(industry);
        let res = sign_up(&app, &body).await;
        assert_eq!(res.status, 202, "{}", res.body);
        ids.push(res.json["data"]["tenantId"].as_str().unwrap().to_owned());
    }
    let active = app.tenant("steady").await;
    execute(
        &app,
        "UPDATE tenants SET trial_ends_at = now() + interval '3 days' WHERE id = $1::uuid",
        &ids[0],
    )
    .await;
    execute(
        &app,
        "UPDATE tenants SET trial_ends_at = now() + interval '30 days' WHERE id = $1::uuid",
        &ids[1],
    )
    .await;
    let suspended = app.call("POST", &format!("/api/v1/tenants/{active}/suspend"), Some(&admin), None).await;
    assert_eq!(suspended.status, 200, "{}", suspended.body);

    let res = app.call("GET", "/api/v1/admin/tenants/overview", Some(&admin), None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let data = &res.json["data"];
    assert_eq!(data["total"], json!(total(&app, "tenants").await), "none deleted");
    assert_eq!(data["byStatus"]["TRIAL"], json!(2), "{data}");
    assert_eq!(data["byStatus"]["SUSPENDED"], json!(1), "{data}");
    assert_eq!((&data["byIndustry"]["trucking"], &data["byIndustry"]["education"]), (&json!(1), &json!(1)));
    let ending = data["trialsEndingSoon"].as_array().unwrap();
    assert_eq!(ending.len(), 1, "{data}");
    assert_eq!((&ending[0]["id"], &ending[0]["slug"]), (&json!(ids[0]), &json!("soon")));
    let ends: DateTime<Utc> = ending[0]["trialEndsAt"].as_str().unwrap().parse().unwrap();
    assert!((ends - Utc::now() - Duration::days(3)).num_minutes().abs() < 5);

    let tenant_user = app.user_token(active, Role::Owner.permissions());
    let res = app.call("GET", "/api/v1/admin/tenants/overview", Some(&tenant_user), None).await;
    assert_eq!(res.status, 403, "{}", res.body);
}
