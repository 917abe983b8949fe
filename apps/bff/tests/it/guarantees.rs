//! Request guarantees: idempotency keys, audit rows of every mutation, the
//! cache across instances, rate limits.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use portico_kernel::{TenantId, UserId};
use serde_json::{Value, json};

use crate::http::Response;
use crate::support::TestApp;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// `SELECT count(*) AS n ...` over every tenant (as the platform role).
async fn count(app: &TestApp, sql: &str, bind: &str) -> i64 {
    let mut conn = AsyncPgConnection::establish(&app.db.urls.platform).await.unwrap();
    let row: Count = diesel::sql_query(sql).bind::<Text, _>(bind).get_result(&mut conn).await.unwrap();
    row.n
}

fn tenant_body(slug: &str) -> Value {
    json!({"name": slug, "slug": slug, "contactEmail": format!("ops@{slug}.example")})
}

async fn post_with_key(app: &TestApp, path: &str, token: &str, key: &str, body: Option<&Value>) -> Response {
    app.call_with(
        "POST",
        path,
        Some(token),
        &[("Idempotency-Key", key)],
        body.map(|b| b.to_string().into_bytes()),
    )
    .await
}

#[actix_web::test]
async fn a_retried_request_is_answered_from_its_first_run() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token_of(UserId::new());
    let body = tenant_body("acme");
    let first = post_with_key(&app, "/api/v1/tenants", &admin, "create-acme-1", Some(&body)).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.header("idempotency-replayed"), None);

    let again = post_with_key(&app, "/api/v1/tenants", &admin, "create-acme-1", Some(&body)).await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.body, first.body, "byte for byte");
    assert_eq!(again.header("idempotency-replayed"), Some("true"));
    assert_eq!(again.header("content-type"), Some("application/json"));
    assert_eq!(count(&app, "SELECT count(*) AS n FROM tenants WHERE slug = $1", "acme").await, 1);
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM audit_log WHERE action = $1", "tenant.create").await,
        2,
        "the platform tenant's and acme's, once"
    );

    // The same key for another request is refused; nothing is created.
    let other =
        post_with_key(&app, "/api/v1/tenants", &admin, "create-acme-1", Some(&tenant_body("globex"))).await;
    assert_eq!((other.status, other.json["error"]["code"].clone()), (422, json!("idempotency.key_reused")));
    assert_eq!(count(&app, "SELECT count(*) AS n FROM tenants WHERE slug = $1", "globex").await, 0);

    // Another principal's key of the same name is its own.
    let colleague = app.admin_token_of(UserId::new());
    let theirs =
        post_with_key(&app, "/api/v1/tenants", &colleague, "create-acme-1", Some(&tenant_body("globex")))
            .await;
    assert_eq!(theirs.status, 201, "{}", theirs.body);
}

#[actix_web::test]
async fn an_outcome_pins_its_key_and_a_refusal_does_not() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token_of(UserId::new());
    let created = app.call("POST", "/api/v1/tenants", Some(&admin), Some(tenant_body("acme"))).await;
    let acme = created.json["data"]["id"].as_str().unwrap().to_owned();

    // A suspension replayed is the first answer, not the 409 a second run would give.
    let path = format!("/api/v1/tenants/{acme}/suspend");
    let first = post_with_key(&app, &path, &admin, "suspend-1", None).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let replay = post_with_key(&app, &path, &admin, "suspend-1", None).await;
    assert_eq!((replay.status, replay.body.as_str()), (200, first.body.as_str()));
    let unkeyed = app.call("POST", &path, Some(&admin), None).await;
    assert_eq!(unkeyed.json["error"]["code"], json!("tenancy.invalid_transition"), "without a key it runs");
    // A domain outcome is an outcome: 409 pins too.
    let conflict = post_with_key(&app, &path, &admin, "suspend-2", None).await;
    assert_eq!(conflict.status, 409);
    let replayed = post_with_key(&app, &path, &admin, "suspend-2", None).await;
    assert_eq!((replayed.status, replayed.header("idempotency-replayed")), (409, Some("true")));

    // A refused body (422) does not pin: the corrected request may use the key.
    let bad = post_with_key(&app, "/api/v1/tenants", &admin, "create-2", Some(&json!({"name": ""}))).await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let good = post_with_key(&app, "/api/v1/tenants", &admin, "create-2", Some(&tenant_body("globex"))).await;
    assert_eq!(good.status, 201, "{}", good.body);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM idempotency_keys WHERE key = $1", "create-2").await, 1);

    // Malformed keys, and a missing token: refused before anything runs.
    let long = "k".repeat(256);
    let res = post_with_key(&app, &path, &admin, &long, None).await;
    assert_eq!((res.status, res.json["error"]["code"].clone()), (400, json!("idempotency.invalid_key")));
    let anonymous = app
        .call_with("POST", "/api/v1/tenants", None, &[("Idempotency-Key", "anon")], Some(b"{}".to_vec()))
        .await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM idempotency_keys WHERE key = $1", "anon").await, 0);
}

#[actix_web::test]
async fn fifty_concurrent_duplicates_have_one_effect_and_one_answer() {
    let app = TestApp::spawn_with(|settings| settings.rate_limits.enabled = false).await;
    let admin = app.admin_token_of(UserId::new());
    let body = tenant_body("acme");
    let mut calls = Vec::new();
    for _ in 0..50 {
        let (app, admin, body) = (&app, admin.clone(), body.clone());
        calls.push(async move {
            let mut in_progress = 0;
            loop {
                let res = post_with_key(app, "/api/v1/tenants", &admin, "one-acme", Some(&body)).await;
                if res.status != 409 {
                    return (res, in_progress);
                }
                assert_eq!(res.json["error"]["code"], json!("idempotency.in_progress"), "{}", res.body);
                assert_eq!(res.header("retry-after"), Some("1"));
                in_progress += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }
    let answers = futures_util::future::join_all(calls).await;
    let bodies: BTreeMap<&str, usize> = answers.iter().fold(BTreeMap::new(), |mut seen, (res, _)| {
        assert_eq!(res.status, 201, "{}", res.body);
        *seen.entry(res.body.as_str()).or_default() += 1;
        seen
    });
    assert_eq!(bodies.len(), 1, "50 identical answers");
    let replayed = answers.iter().filter(|(res, _)| res.header("idempotency-replayed").is_some()).count();
    assert_eq!(replayed, 49, "one ran, 49 were replayed");
    assert_eq!(count(&app, "SELECT count(*) AS n FROM tenants WHERE slug = $1", "acme").await, 1);
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM audit_log WHERE action = $1", "tenant.create").await,
        2,
        "the platform tenant's and acme's"
    );
}

#[actix_web::test]
async fn a_replay_survives_a_restart() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token_of(UserId::new());
    let body = tenant_body("acme");
    let first = post_with_key(&app, "/api/v1/tenants", &admin, "restart-1", Some(&body)).await;
    assert_eq!(first.status, 201);
    app.stop().await;
    let restarted = app.another_instance().await;
    let again = post_with_key(&restarted, "/api/v1/tenants", &admin, "restart-1", Some(&body)).await;
    assert_eq!((again.status, again.header("idempotency-replayed")), (201, Some("true")));
    assert_eq!(again.body, first.body);
}

/// A request for each mutating route of the OpenAPI document, on resources
/// made for it. A new mutating route must be added here (the test says so).
async fn call_mutation(
    app: &TestApp,
    admin: &str,
    method: &str,
    path: &str,
    request_id: &str,
) -> (Response, &'static str, Replay) {
    let mut headers = vec![
        ("X-Request-ID", request_id),
        ("User-Agent", "guarantees-test/1.0"),
        ("Idempotency-Key", request_id),
    ];
    let fresh = |slug: &'static str| async move {
        let res = app.call("POST", "/api/v1/tenants", Some(admin), Some(tenant_body(slug))).await;
        res.json["data"]["id"].as_str().unwrap().to_owned()
    };
    let with_id = |id: &str| path.replace("{id}", id);
    let mut token = admin.to_owned();
    let mut raw = None;
    let (path, body, action) = match (method, path) {
        ("POST", "/api/v1/tenants/{id}/onboarding") => {
            stock_welcome(app, admin, request_id).await;
            let owner = json!({"name": "Owner", "email": format!("owner-{request_id}@onboarded.example")});
            (with_id(&fresh("to-onboard").await), Some(json!({"owner": owner})), "tenant.onboard")
        }
        ("POST", "/api/v1/onboarding") => {
            stock_welcome(app, admin, request_id).await;
            let owner = json!({"name": "Owner", "email": format!("owner-{request_id}@signed-up.example")});
            (
                path.to_owned(),
                Some(json!({"name": "Signed Up", "slug": "signed-up", "owner": owner})),
                "tenant.onboard",
            )
        }
        ("PUT", "/api/v1/tenants/{id}/settings") => (
            with_id(&fresh("to-set").await),
            Some(json!({"timeZone": "Europe/Vienna"})),
            "tenant.settings.update",
        ),
        ("PUT", "/api/v1/tenants/{id}/features") => (
            with_id(&fresh("to-flag").await),
            Some(json!({"features": {"work_orders": true}})),
            "tenant.features.update",
        ),
        ("PUT", "/api/v1/tenants/{id}/branding") => (
            with_id(&fresh("to-brand").await),
            Some(json!({"primaryColor": "#1a73e8"})),
            "tenant.branding.update",
        ),
        ("PUT", "/api/v1/tenants/{id}/branding/logo") => {
            headers.push(("Content-Type", "image/png"));
            raw = Some(crate::tenant_profile_api::png(64, 32));
            (with_id(&fresh("to-logo").await), None, "tenant.logo.update")
        }
        ("DELETE", "/api/v1/tenants/{id}/branding/logo") => {
            let id = fresh("to-unlogo").await;
            let logo = format!("/api/v1/tenants/{id}/branding/logo");
            let put = app
                .call_with(
                    "PUT",
                    &logo,
                    Some(admin),
                    &[("Content-Type", "image/png")],
                    Some(crate::tenant_profile_api::png(8, 8)),
                )
                .await;
            assert_eq!(put.status, 200, "{}", put.body);
            (logo, None, "tenant.logo.remove")
        }
        ("POST", "/api/v1/tenants") => (path.to_owned(), Some(tenant_body("walked")), "tenant.create"),
        ("PUT", "/api/v1/tenants/{id}") => {
            let id = fresh("to-update").await;
            (
                with_id(&id),
                Some(json!({"name": "Updated", "contactEmail": "new@to-update.example"})),
                "tenant.update",
            )
        }
        ("DELETE", "/api/v1/tenants/{id}") => (with_id(&fresh("to-delete").await), None, "tenant.delete"),
        ("POST", "/api/v1/tenants/{id}/suspend") => {
            (with_id(&fresh("to-suspend").await), None, "tenant.suspend")
        }
        ("POST", "/api/v1/tenants/{id}/activate") => {
            let id = fresh("to-activate").await;
            app.call("POST", &format!("/api/v1/tenants/{id}/suspend"), Some(admin), None).await;
            (with_id(&id), None, "tenant.activate")
        }
        ("POST", "/api/v1/admin/jobs/{id}/retry") => {
            let id = dead_job(app).await;
            (with_id(&id), None, "job.retry")
        }
        ("POST", "/api/v1/auth/login") => {
            let email = app.walk_person().await;
            (
                path.to_owned(),
                Some(json!({"email": email, "password": crate::support::PASSWORD})),
                "session.start",
            )
        }
        ("POST", "/api/v1/auth/refresh") => {
            let signed_in = app.sign_in(&app.walk_person().await, crate::support::PASSWORD, None).await;
            (
                path.to_owned(),
                Some(json!({"refreshToken": signed_in.json["data"]["refreshToken"]})),
                "session.refresh",
            )
        }
        ("POST", "/api/v1/auth/logout") => {
            let signed_in = app.sign_in(&app.walk_person().await, crate::support::PASSWORD, None).await;
            token = signed_in.json["data"]["accessToken"].as_str().unwrap().to_owned();
            (path.to_owned(), None, "session.end")
        }
        ("DELETE", "/api/v1/auth/sessions/{id}") => {
            let signed_in = app.sign_in(&app.walk_person().await, crate::support::PASSWORD, None).await;
            token = signed_in.json["data"]["accessToken"].as_str().unwrap().to_owned();
            (with_id(signed_in.json["data"]["sessionId"].as_str().unwrap()), None, "session.end")
        }
        ("POST", "/api/v1/auth/forgot-password") => {
            let email = app.walk_person().await;
            (path.to_owned(), Some(json!({"email": email})), "user.password_reset_requested")
        }
        ("POST", "/api/v1/auth/reset-password") => {
            let email = app.walk_person().await;
            app.call("POST", "/api/v1/auth/forgot-password", None, Some(json!({"email": email}))).await;
            let token = app.emailed_token(&email).await;
            (
                path.to_owned(),
                Some(json!({"token": token, "password": "a-brand-new-passphrase"})),
                "user.password_reset",
            )
        }
        ("POST", "/api/v1/auth/switch-tenant") => {
            let email = app.walk_person().await;
            let signed_in = app.sign_in(&email, crate::support::PASSWORD, None).await;
            token = signed_in.json["data"]["accessToken"].as_str().unwrap().to_owned();
            (
                path.to_owned(),
                Some(json!({"tenant": portico_kernel::PLATFORM_TENANT_ID.to_string()})),
                "session.switch_tenant",
            )
        }
        ("PUT", "/api/v1/memberships/{id}/role") => {
            (with_id(&member(app).await), Some(json!({"role": "PLATFORM_SUPPORT"})), "membership.role_change")
        }
        ("POST", "/api/v1/auth/mfa/setup") => {
            let signed_in = app.sign_in(&app.walk_person().await, crate::support::PASSWORD, None).await;
            token = signed_in.json["data"]["accessToken"].as_str().unwrap().to_owned();
            (path.to_owned(), Some(json!({"password": crate::support::PASSWORD})), "user.mfa_setup_started")
        }
        ("POST", "/api/v1/auth/mfa/verify") => {
            let signed_in = app.sign_in(&app.walk_person().await, crate::support::PASSWORD, None).await;
            token = signed_in.json["data"]["accessToken"].as_str().unwrap().to_owned();
            let password = json!({"password": crate::support::PASSWORD});
            let setup = app.call("POST", "/api/v1/auth/mfa/setup", Some(&token), Some(password)).await;
            let secret = crate::support::base32_decode(setup.json["data"]["secret"].as_str().unwrap());
            (
                path.to_owned(),
                Some(json!({"code": crate::support::code_at(&secret, 0).await})),
                "user.mfa_enabled",
            )
        }
        ("POST", "/api/v1/auth/mfa/disable") => {
            let signed_in = app.sign_in(&app.walk_person().await, crate::support::PASSWORD, None).await;
            token = signed_in.json["data"]["accessToken"].as_str().unwrap().to_owned();
            let (secret, _) = crate::auth_api::enable_mfa(app, &token).await;
            (
                path.to_owned(),
                Some(
                    json!({"code": crate::support::code_at(&secret, 0).await, "password": crate::support::PASSWORD}),
                ),
                "user.mfa_disabled",
            )
        }
        ("POST", "/api/v1/auth/send-verification") => {
            let signed_in = app.sign_in(&app.walk_person().await, crate::support::PASSWORD, None).await;
            token = signed_in.json["data"]["accessToken"].as_str().unwrap().to_owned();
            (path.to_owned(), None, "user.email_verification_sent")
        }
        ("POST", "/api/v1/auth/verify-email") => {
            let email = app.walk_person().await;
            let signed_in = app.sign_in(&email, crate::support::PASSWORD, None).await;
            let access = signed_in.json["data"]["accessToken"].as_str().unwrap().to_owned();
            app.call("POST", "/api/v1/auth/send-verification", Some(&access), None).await;
            (path.to_owned(), Some(json!({"token": app.emailed_token(&email).await})), "user.email_verified")
        }
        ("POST", "/api/v1/api-keys") => (
            path.to_owned(),
            Some(json!({"name": "walked", "permissions": ["tenants:read"]})),
            "api_key.create",
        ),
        ("DELETE", "/api/v1/api-keys/{id}") => {
            let body = json!({"name": "to revoke", "permissions": ["tenants:read"]});
            let created = app.call("POST", "/api/v1/api-keys", Some(admin), Some(body)).await;
            (with_id(created.json["data"]["id"].as_str().unwrap()), None, "api_key.revoke")
        }
        ("POST", "/api/v1/rbac/roles") => {
            token = customer_owner(app, request_id).await.1;
            (path.to_owned(), Some(json!({"name": "Walked", "permissions": ["tenants:read"]})), "role.create")
        }
        ("PUT", "/api/v1/rbac/roles/{id}") => {
            token = customer_owner(app, request_id).await.1;
            let id = custom_role(app, &token, "To update").await;
            (with_id(&id), Some(json!({"name": "Updated", "permissions": ["roles:read"]})), "role.update")
        }
        ("DELETE", "/api/v1/rbac/roles/{id}") => {
            token = customer_owner(app, request_id).await.1;
            (with_id(&custom_role(app, &token, "To delete").await), None, "role.delete")
        }
        ("POST", "/api/v1/invitations") => {
            token = customer_owner(app, request_id).await.1;
            let body = json!({"email": format!("new@{request_id}.example"), "name": "New Person"});
            (path.to_owned(), Some(body), "membership.invite")
        }
        ("POST", "/api/v1/invitations/{id}/resend") => {
            token = customer_owner(app, request_id).await.1;
            (with_id(&invited(app, &token, request_id).await.0), None, "invitation.send")
        }
        ("DELETE", "/api/v1/invitations/{id}") => {
            token = customer_owner(app, request_id).await.1;
            (with_id(&invited(app, &token, request_id).await.0), None, "invitation.revoke")
        }
        ("POST", "/api/v1/invitations/accept") => {
            let owner = customer_owner(app, request_id).await.1;
            let (_, email) = invited(app, &owner, request_id).await;
            let body =
                json!({"token": app.emailed_token(&email).await, "password": "a-brand-new-passphrase"});
            (path.to_owned(), Some(body), "invitation.accept")
        }
        ("POST", "/api/v1/platform-users") => {
            token = customer_owner(app, request_id).await.1;
            let body =
                json!({"email": format!("new@{request_id}.example"), "name": "New Person", "kind": "STAFF"});
            (path.to_owned(), Some(body), "membership.invite")
        }
        ("PUT", "/api/v1/platform-users/{id}") => {
            token = customer_owner(app, request_id).await.1;
            let (id, _) = invited(app, &token, request_id).await;
            (with_id(&id), Some(json!({"kind": "PARENT", "phone": "+49 30 1234567"})), "membership.update")
        }
        ("DELETE", "/api/v1/platform-users/{id}") => {
            let (tenant, owner) = customer_owner(app, request_id).await;
            token = owner;
            (with_id(&member_of(app, tenant).await), None, "membership.remove")
        }
        ("POST", "/api/v1/platform-users/{id}/deactivate") => {
            let (tenant, owner) = customer_owner(app, request_id).await;
            token = owner;
            (with_id(&member_of(app, tenant).await), None, "membership.deactivate")
        }
        ("POST", "/api/v1/platform-users/{id}/activate") => {
            let (tenant, owner) = customer_owner(app, request_id).await;
            token = owner;
            let id = member_of(app, tenant).await;
            app.call("POST", &format!("/api/v1/platform-users/{id}/deactivate"), Some(&token), None).await;
            (with_id(&id), None, "membership.activate")
        }
        ("POST", "/api/v1/platform-users/bulk-import") => {
            token = customer_owner(app, request_id).await.1;
            headers.push(("Content-Type", "text/csv"));
            let csv = format!("email,name,kind\r\none@{request_id}.example,One,student\r\n");
            let res =
                app.call_with(method, path, Some(&token), &headers, Some(csv.clone().into_bytes())).await;
            let replay = Replay { path: path.to_owned(), body: Some(csv.into_bytes()), token };
            return (res, "people.import", replay);
        }
        ("POST", "/api/v1/platform-users/bulk-export") => {
            token = customer_owner(app, request_id).await.1;
            (path.to_owned(), Some(json!({"kind": "STAFF"})), "people.export")
        }
        ("POST", "/api/v1/admin-users") => (
            path.to_owned(),
            Some(json!({"email": format!("staff@{request_id}.example"), "name": "New Staff"})),
            "membership.invite",
        ),
        ("PUT", "/api/v1/admin-users/{id}") => {
            let id = invited_staff(app, admin, request_id).await;
            (with_id(&id), Some(json!({"name": "Renamed"})), "membership.update")
        }
        ("DELETE", "/api/v1/admin-users/{id}") => (with_id(&member(app).await), None, "membership.remove"),
        ("PUT", "/api/v1/admin-users/{id}/permissions") => {
            (with_id(&member(app).await), Some(json!({"role": "PLATFORM_SUPPORT"})), "membership.role_change")
        }
        ("POST", "/api/v1/admin-users/{id}/invite") => {
            (with_id(&invited_staff(app, admin, request_id).await), None, "invitation.send")
        }
        ("POST", "/api/v1/admin-users/{id}/reset-password") => {
            (with_id(&member(app).await), None, "membership.password_reset_sent")
        }
        ("POST", "/api/v1/admin-users/{id}/toggle-mfa") => {
            (with_id(&member(app).await), Some(json!({"action": "REQUIRE"})), "membership.mfa_require")
        }
        ("DELETE", "/api/v1/admin-users/{id}/sessions/{sessionId}") => {
            let email = app.walk_person().await;
            let signed_in = app.sign_in(&email, crate::support::PASSWORD, None).await;
            let session = signed_in.json["data"]["sessionId"].as_str().unwrap().to_owned();
            let id = membership_of(app, &email).await;
            (with_id(&id).replace("{sessionId}", &session), None, "membership.session_end")
        }
        ("POST", "/api/v1/credits/master-wallet/top-up") => (
            path.to_owned(),
            Some(json!({"channel": "sms", "amount": 1000, "note": "Provider order"})),
            "credits.master_top_up",
        ),
        ("PUT", "/api/v1/credits/wallets/{id}") => {
            (with_id("sms"), Some(json!({"lowBalanceThreshold": 10})), "credits.wallet_update")
        }
        ("POST", "/api/v1/credits/wallets/{id}/add") => {
            stock_sms(app, admin, request_id).await;
            (
                with_id("sms"),
                Some(json!({"amount": 100, "source": "promotional", "note": "For the walk"})),
                "credits.add",
            )
        }
        ("POST", "/api/v1/credits/wallets/{id}/adjust") => {
            stock_sms(app, admin, request_id).await;
            (with_id("sms"), Some(json!({"amount": 100, "reason": "Walked."})), "credits.adjust")
        }
        ("POST", "/api/v1/credits/packages") => {
            (path.to_owned(), Some(package_draft(request_id)), "credits.package_create")
        }
        ("PUT", "/api/v1/credits/packages/{id}") => {
            let id = credit_package(app, admin, request_id).await;
            (with_id(&id), Some(package_draft(&format!("{request_id} renamed"))), "credits.package_update")
        }
        ("POST", "/api/v1/credits/packages/{id}/purchase") => {
            stock_sms(app, admin, request_id).await;
            (with_id(&credit_package(app, admin, request_id).await), None, "credits.package_purchase")
        }
        ("POST", "/api/v1/credits/custom-plans") => {
            let tenant = app.tenant(&format!("t-{request_id}")).await;
            (path.to_owned(), Some(plan_draft(tenant)), "credits.plan_create")
        }
        ("PUT", "/api/v1/credits/custom-plans/{id}") => {
            let tenant = app.tenant(&format!("t-{request_id}")).await;
            let created =
                app.call("POST", "/api/v1/credits/custom-plans", Some(admin), Some(plan_draft(tenant))).await;
            assert_eq!(created.status, 201, "{}", created.body);
            let id = created.json["data"]["id"].as_str().unwrap().to_owned();
            (with_id(&id), Some(plan_draft(tenant)), "credits.plan_update")
        }
        ("PUT", "/api/v1/credits/pricing") => (
            path.to_owned(),
            Some(
                json!({"prices": [{"channel": "sms", "currency": "EUR", "tiers": [{"fromQuantity": 1, "unitPrice": "0.08"}]}]}),
            ),
            "credits.pricing_update",
        ),
        ("POST", "/api/v1/credits/debits") => {
            fund_sms(app, admin, request_id).await;
            (path.to_owned(), Some(json!({"channel": "sms", "amount": 1})), "credits.debit")
        }
        ("POST", "/api/v1/credits/reservations") => {
            fund_sms(app, admin, request_id).await;
            (path.to_owned(), Some(json!({"channel": "sms", "amount": 1})), "credits.reserve")
        }
        ("POST", "/api/v1/credits/reservations/{id}/capture") => {
            (with_id(&reservation(app, admin, request_id).await), None, "credits.capture")
        }
        ("POST", "/api/v1/credits/reservations/{id}/release") => {
            (with_id(&reservation(app, admin, request_id).await), None, "credits.release")
        }
        ("POST", "/api/v1/metering/sites") => {
            (path.to_owned(), Some(json!({"kind": "property", "name": request_id})), "metering.site.create")
        }
        ("PUT", "/api/v1/metering/sites/{id}") => {
            let id = metering_site(app, admin, request_id).await;
            (with_id(&id), Some(json!({"kind": "building", "name": "Renamed"})), "metering.site.update")
        }
        ("DELETE", "/api/v1/metering/sites/{id}") => {
            (with_id(&metering_site(app, admin, request_id).await), None, "metering.site.delete")
        }
        ("POST", "/api/v1/metering/meters") => {
            (path.to_owned(), Some(meter_draft(request_id)), "metering.meter.create")
        }
        ("PUT", "/api/v1/metering/meters/{id}") => {
            let id = metering_meter(app, admin, request_id).await;
            let changes = json!({"place": {"type": "subject", "subject": "moved"}, "serialNumber": "S-2"});
            (with_id(&id), Some(changes), "metering.meter.update")
        }
        ("DELETE", "/api/v1/metering/meters/{id}") => {
            (with_id(&metering_meter(app, admin, request_id).await), None, "metering.meter.delete")
        }
        ("POST", "/api/v1/metering/meters/{id}/replace") => {
            let id = metering_meter(app, admin, request_id).await;
            let at = chrono::Utc::now().to_rfc3339();
            let body = json!({"at": at, "closingReading": "10", "startReading": "0"});
            (with_id(&id), Some(body), "metering.meter.replace")
        }
        ("POST", "/api/v1/metering/readings") => {
            let id = metering_meter(app, admin, request_id).await;
            let body = json!({"readings": [{"meterId": id, "at": chrono::Utc::now().to_rfc3339(), "value": "12.5"}]});
            (path.to_owned(), Some(body), "metering.readings.add")
        }
        ("POST", "/api/v1/metering/readings/import") => {
            let id = metering_meter(app, admin, request_id).await;
            headers.push(("Content-Type", "text/csv"));
            let csv = format!("meterId,at,value\r\n{id},{},7\r\n", chrono::Utc::now().to_rfc3339());
            let res =
                app.call_with(method, path, Some(&token), &headers, Some(csv.clone().into_bytes())).await;
            let replay = Replay { path: path.to_owned(), body: Some(csv.into_bytes()), token };
            return (res, "metering.readings.add", replay);
        }
        ("POST", "/api/v1/metering/events") => {
            let event = json!({"id": request_id, "subject": "walker", "metricCode": "walk.steps"});
            (path.to_owned(), Some(json!({"events": [event]})), "metering.events.ingest")
        }
        ("POST", "/api/v1/metering/usage/close") => {
            (path.to_owned(), Some(json!({"through": "2026-01-01T00:00:00Z"})), "metering.usage.close")
        }
        ("POST", "/api/v1/metering/metrics") => {
            (path.to_owned(), Some(metric_draft(request_id)), "metering.metric.create")
        }
        ("PUT", "/api/v1/metering/metrics/{id}") => {
            let id = metering_metric(app, admin, request_id).await;
            (with_id(&id), Some(metric_draft(&format!("{request_id}-renamed"))), "metering.metric.update")
        }
        ("DELETE", "/api/v1/metering/metrics/{id}") => {
            (with_id(&metering_metric(app, admin, request_id).await), None, "metering.metric.delete")
        }
        ("POST", "/api/v1/metering/sources") => {
            let body = json!({"kind": "simulated", "name": request_id});
            (path.to_owned(), Some(body), "metering.source.create")
        }
        ("DELETE", "/api/v1/metering/sources/{id}") => {
            let body = json!({"kind": "simulated", "name": request_id});
            let key = format!("{request_id}-source");
            let res = keyed_setup(app, admin, "/api/v1/metering/sources", key, Some(body)).await;
            (with_id(res.json["data"]["id"].as_str().unwrap()), None, "metering.source.delete")
        }
        ("POST", "/api/v1/crm/contacts/import" | "/api/v1/crm/leads/import") => {
            let (csv, action) = crate::crm_transfer_api::csv_step(method, path, request_id).unwrap();
            headers.push(("Content-Type", "text/csv"));
            let res =
                app.call_with(method, path, Some(&token), &headers, Some(csv.clone().into_bytes())).await;
            let replay = Replay { path: path.to_owned(), body: Some(csv.into_bytes()), token };
            return (res, action, replay);
        }
        _ => {
            // Each area's test module knows its own mutations: a path, a body and the audit action.
            let area = match crate::crm_contacts_api::walk(app, admin, method, path, request_id).await {
                Some(found) => Some(found),
                None => match crate::crm_sales_api::walk(app, admin, method, path, request_id).await {
                    Some(found) => Some(found),
                    None => match crate::crm_activities_api::walk(app, admin, method, path, request_id).await
                    {
                        Some(found) => Some(found),
                        None => {
                            match crate::crm_transfer_api::walk(app, admin, method, path, request_id).await {
                                Some(found) => Some(found),
                                None => crate::tickets_api::walk(app, admin, method, path, request_id).await,
                            }
                        }
                    },
                },
            };
            area.unwrap_or_else(|| {
                panic!("{method} {path}: a mutating route this test does not know; add it to call_mutation")
            })
        }
    };
    let body = raw.or_else(|| body.map(|b| b.to_string().into_bytes()));
    let res = app.call_with(method, &path, Some(&token), &headers, body.clone()).await;
    (res, action, Replay { path, body, token })
}

/// `POST path` under its own `Idempotency-Key` (derived from the walked request's), answered 2xx.
async fn keyed_setup(app: &TestApp, admin: &str, path: &str, key: String, body: Option<Value>) -> Response {
    let res = post_with_key(app, path, admin, &key, body.as_ref()).await;
    assert!(res.status < 300, "{path}: {}", res.body);
    res
}

/// The platform's stock of every channel, raised for the welcome credits of one walked onboarding.
async fn stock_welcome(app: &TestApp, admin: &str, request_id: &str) {
    for channel in ["sms", "email", "whatsapp"] {
        let body = json!({"channel": channel, "amount": 5000, "note": "Stock for the walk"});
        let key = format!("{request_id}-stock-{channel}");
        keyed_setup(app, admin, "/api/v1/credits/master-wallet/top-up", key, Some(body)).await;
    }
}

/// The platform's stock of SMS credits, raised for one walked request.
async fn stock_sms(app: &TestApp, admin: &str, request_id: &str) {
    let body = json!({"channel": "sms", "amount": 1000, "note": "Stock for the walk"});
    keyed_setup(
        app,
        admin,
        "/api/v1/credits/master-wallet/top-up",
        format!("{request_id}-stock"),
        Some(body),
    )
    .await;
}

/// The platform tenant's own SMS wallet, given credits for one walked request.
async fn fund_sms(app: &TestApp, admin: &str, request_id: &str) {
    stock_sms(app, admin, request_id).await;
    let body = json!({"amount": 100, "source": "promotional", "note": "For the walk"});
    keyed_setup(app, admin, "/api/v1/credits/wallets/sms/add", format!("{request_id}-fund"), Some(body))
        .await;
}

/// A hold on the platform tenant's SMS wallet made for the walk; its id.
async fn reservation(app: &TestApp, admin: &str, request_id: &str) -> String {
    fund_sms(app, admin, request_id).await;
    let body = json!({"channel": "sms", "amount": 1});
    let res =
        keyed_setup(app, admin, "/api/v1/credits/reservations", format!("{request_id}-hold"), Some(body))
            .await;
    res.json["data"]["reservation"]["id"].as_str().unwrap().to_owned()
}

/// A site of the platform tenant, made for one walked request.
async fn metering_site(app: &TestApp, admin: &str, request_id: &str) -> String {
    let body = json!({"kind": "property", "name": request_id});
    let res =
        keyed_setup(app, admin, "/api/v1/metering/sites", format!("{request_id}-site"), Some(body)).await;
    res.json["data"]["id"].as_str().unwrap().to_owned()
}

fn meter_draft(subject: &str) -> Value {
    json!({"place": {"type": "subject", "subject": subject}, "kind": "electricity", "unit": "kWh",
           "mode": {"mode": "register", "digits": 6}, "activeFrom": "2026-01-01T00:00:00Z"})
}

/// A meter of the platform tenant, made for one walked request.
async fn metering_meter(app: &TestApp, admin: &str, request_id: &str) -> String {
    let key = format!("{request_id}-meter");
    let res = keyed_setup(app, admin, "/api/v1/metering/meters", key, Some(meter_draft(request_id))).await;
    res.json["data"]["id"].as_str().unwrap().to_owned()
}

fn metric_draft(code: &str) -> Value {
    json!({"code": format!("walk.{}", code.replace('-', "_")), "name": "Walked", "aggregation": {"type": "count"}})
}

/// A billable metric of the platform tenant, made for one walked request.
async fn metering_metric(app: &TestApp, admin: &str, request_id: &str) -> String {
    let key = format!("{request_id}-metric");
    let res = keyed_setup(app, admin, "/api/v1/metering/metrics", key, Some(metric_draft(request_id))).await;
    res.json["data"]["id"].as_str().unwrap().to_owned()
}

fn package_draft(name: &str) -> Value {
    json!({"name": name, "credits": [{"channel": "sms", "amount": 10}],
           "price": {"amountMinor": 100, "currency": "EUR"}})
}

/// A credit package made for the walk; its id.
async fn credit_package(app: &TestApp, admin: &str, request_id: &str) -> String {
    let res =
        app.call("POST", "/api/v1/credits/packages", Some(admin), Some(package_draft(request_id))).await;
    assert_eq!(res.status, 201, "{}", res.body);
    res.json["data"]["id"].as_str().unwrap().to_owned()
}

fn plan_draft(tenant: TenantId) -> Value {
    json!({"tenantId": tenant.to_string(), "name": "Walked plan", "channel": "sms", "currency": "EUR",
           "tiers": [{"fromQuantity": 1, "unitPrice": "0.05"}]})
}

/// A customer tenant made for one walked request, and its signed-in owner's token.
async fn customer_owner(app: &TestApp, request_id: &str) -> (portico_kernel::TenantId, String) {
    let tenant = app.tenant(&format!("t-{request_id}")).await;
    let email = format!("owner@{request_id}.example");
    app.person(&email, tenant, portico_tenancy::Role::Owner).await;
    let signed_in = app.sign_in(&email, crate::support::PASSWORD, None).await;
    (tenant, signed_in.json["data"]["accessToken"].as_str().unwrap().to_owned())
}

/// A custom role of the owner's tenant made for the walk; its id.
async fn custom_role(app: &TestApp, owner: &str, name: &str) -> String {
    let body = json!({"name": name, "permissions": ["tenants:read"]});
    let res = app.call("POST", "/api/v1/rbac/roles", Some(owner), Some(body)).await;
    assert_eq!(res.status, 201, "{}", res.body);
    res.json["data"]["id"].as_str().unwrap().to_owned()
}

/// Someone new invited to the owner's tenant for the walk: membership id and address.
async fn invited(app: &TestApp, owner: &str, request_id: &str) -> (String, String) {
    let email = format!("invited@{request_id}.example");
    let body = json!({"email": email, "name": "Invited Person"});
    let res = app.call("POST", "/api/v1/invitations", Some(owner), Some(body)).await;
    assert_eq!(res.status, 201, "{}", res.body);
    (res.json["data"]["id"].as_str().unwrap().to_owned(), email)
}

/// Someone new invited to the platform's staff for the walk; their membership id.
async fn invited_staff(app: &TestApp, admin: &str, request_id: &str) -> String {
    let body = json!({"email": format!("staff-invited@{request_id}.example"), "name": "Invited Staff"});
    let res = app.call("POST", "/api/v1/admin-users", Some(admin), Some(body)).await;
    assert_eq!(res.status, 201, "{}", res.body);
    res.json["data"]["id"].as_str().unwrap().to_owned()
}

/// The membership of a fresh staff member of `tenant`.
async fn member_of(app: &TestApp, tenant: portico_kernel::TenantId) -> String {
    let email = format!("staff-{}@walk.example", portico_kernel::UserId::new());
    app.person(&email, tenant, portico_tenancy::Role::Staff).await;
    let store = app.db.store().await;
    let person = store.credentials(&portico_tenancy::Email::parse(&email).unwrap()).await.unwrap().unwrap();
    store.memberships_of(person.user.id).await.unwrap()[0].id.to_string()
}

/// The membership of a fresh active member of the platform tenant.
async fn member(app: &TestApp) -> String {
    membership_of(app, &app.walk_person().await).await
}

/// The (first) membership of the person with `email`.
async fn membership_of(app: &TestApp, email: &str) -> String {
    let store = app.db.store().await;
    let person = store.credentials(&portico_tenancy::Email::parse(email).unwrap()).await.unwrap().unwrap();
    store.memberships_of(person.user.id).await.unwrap()[0].id.to_string()
}

/// What it takes to send a walked request again.
struct Replay {
    path: String,
    body: Option<Vec<u8>>,
    token: String,
}

/// A dead job of the platform tenant, made directly in the database.
async fn dead_job(app: &TestApp) -> String {
    let mut conn = AsyncPgConnection::establish(&app.db.urls.platform).await.unwrap();
    let id = portico_kernel::JobId::new().to_string();
    diesel::sql_query(
        "INSERT INTO jobs (tenant_id, id, kind, state, run_at, attempts, max_attempts, created_at, updated_at, \
                           finished_at) \
         VALUES ($1::uuid, $2::uuid, 'system.probe', 'dead', now(), 3, 3, now(), now(), now())",
    )
    .bind::<Text, _>(portico_kernel::PLATFORM_TENANT_ID.to_string())
    .bind::<Text, _>(&id)
    .execute(&mut conn)
    .await
    .unwrap();
    id
}

#[derive(QueryableByName, Debug)]
struct Audited {
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Nullable<Text>)]
    ip: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    user_agent: Option<String>,
    #[diesel(sql_type = Text)]
    changes: String,
}

#[actix_web::test]
async fn every_mutating_route_leaves_an_audit_row_with_its_request_id() {
    // The walk signs in many times from one address, and makes over a hundred changes as one admin.
    let app = TestApp::spawn_with(|s| {
        s.rate_limits.auth = "1000/min".parse().unwrap();
        s.rate_limits.write_per_principal = "1000/min".parse().unwrap();
        s.rate_limits.write_per_tenant = "1000/min".parse().unwrap();
    })
    .await;
    let admin = app.admin_token();
    let document = app.call("GET", "/api/v1/openapi.json", None, None).await.json;
    let mut walked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = method.to_ascii_uppercase();
            if !matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
                continue;
            }
            let request_id = format!("walk-{walked}");
            let (res, action, replay) = call_mutation(&app, &admin, &method, path, &request_id).await;
            assert!(res.status < 300, "{method} {path}: {}", res.body);
            let mut conn = AsyncPgConnection::establish(&app.db.urls.platform).await.unwrap();
            let rows: Vec<Audited> = diesel::sql_query(
                "SELECT action, host(ip) AS ip, user_agent, changes::text AS changes FROM audit_log \
                 WHERE request_id = $1",
            )
            .bind::<Text, _>(&request_id)
            .load(&mut conn)
            .await
            .unwrap();
            // Onboarding is one use case across domains: the tenant's own row comes with its owner's
            // invitation and its welcome credits, all under the one request id.
            let expected = if action == "tenant.onboard" { rows.len().max(1) } else { 1 };
            assert_eq!(
                rows.len(),
                expected,
                "{method} {path}: one audit row carrying the request id: {rows:?}"
            );
            assert_eq!(
                rows.iter().filter(|row| row.action == action).count(),
                1,
                "{method} {path}: {rows:?}"
            );
            for row in &rows {
                assert_eq!(row.ip.as_deref(), Some("127.0.0.1"), "{method} {path}");
                assert_eq!(row.user_agent.as_deref(), Some("guarantees-test/1.0"), "{method} {path}");
                let changes = &row.changes;
                assert!(
                    !changes.contains("new@") && !changes.contains("ops@"),
                    "emails are masked: {changes}"
                );
            }

            walked += 1;
            let declared = portico_bff::api::spec(&method, path).unwrap();
            if declared.idempotency == portico_bff::api::Idempotency::Exempt || action == "session.end" {
                // Sign-in and secret-bearing answers keep no key; an ended session's token is refused.
                continue;
            }
            // Sent again with its Idempotency-Key: the first answer, and no second audit row.
            let sql = "SELECT count(*) AS n FROM audit_log WHERE action = $1";
            let before = count(&app, sql, action).await;
            let again = app
                .call_with(
                    &method,
                    &replay.path,
                    Some(&replay.token),
                    &[("Idempotency-Key", &request_id)],
                    replay.body,
                )
                .await;
            assert_eq!((again.status, again.header("idempotency-replayed")), (res.status, Some("true")));
            assert_eq!(again.body, res.body, "{method} {path}");
            assert_eq!(count(&app, sql, action).await, before, "{method} {path}: ran once");
        }
    }
    let mutating = portico_bff::api::ROUTES.iter().filter(|route| route.method != "GET").count();
    assert!(walked >= 80, "the walk reached the routes");
    assert_eq!(walked, mutating, "every mutating route was walked");
}

#[actix_web::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_recorded_and_limited() {
    let app = TestApp::spawn_with(|settings| {
        settings.trusted_proxies = serde_json::from_value(json!(["127.0.0.1/32"])).unwrap();
        settings.rate_limits.public = "2/min".parse().unwrap();
    })
    .await;
    let admin = app.admin_token();
    let res = app
        .call_with(
            "POST",
            "/api/v1/tenants",
            Some(&admin),
            &[("X-Forwarded-For", "198.51.100.4, 203.0.113.9"), ("X-Request-ID", "proxied-1")],
            Some(tenant_body("acme").to_string().into_bytes()),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    let mut conn = AsyncPgConnection::establish(&app.db.urls.platform).await.unwrap();
    let rows: Vec<Audited> = diesel::sql_query(
        "SELECT action, host(ip) AS ip, user_agent, changes::text AS changes FROM audit_log WHERE request_id = $1",
    )
    .bind::<Text, _>("proxied-1")
    .load(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows[0].ip.as_deref(), Some("203.0.113.9"), "the last hop before the trusted proxy");

    // Public routes are limited per forwarded client: two clients, two buckets.
    let public = |client: &'static str| {
        let app = &app;
        async move {
            app.call_with("GET", "/api/v1/openapi.json", None, &[("X-Forwarded-For", client)], None)
                .await
                .status
        }
    };
    assert_eq!((public("203.0.113.1").await, public("203.0.113.1").await), (200, 200));
    assert_eq!(public("203.0.113.1").await, 429);
    assert_eq!(public("203.0.113.2").await, 200, "another client has its own bucket");
}

#[actix_web::test]
async fn over_the_limit_a_caller_gets_429_with_the_standard_headers() {
    let app = TestApp::spawn_with(|settings| {
        settings.rate_limits.write_per_principal = "2/min".parse().unwrap();
    })
    .await;
    let admin = app.admin_token_of(UserId::new());
    let first = app.call("POST", "/api/v1/tenants", Some(&admin), Some(tenant_body("acme"))).await;
    assert_eq!(first.status, 201);
    assert_eq!(
        (
            first.header("ratelimit-limit"),
            first.header("ratelimit-remaining"),
            first.header("ratelimit-reset")
        ),
        (Some("2"), Some("1"), Some("30"))
    );
    let second = app.call("POST", "/api/v1/tenants", Some(&admin), Some(tenant_body("globex"))).await;
    assert_eq!((second.status, second.header("ratelimit-remaining")), (201, Some("0")));
    let third = app.call("POST", "/api/v1/tenants", Some(&admin), Some(tenant_body("initech"))).await;
    assert_eq!(third.status, 429, "{}", third.body);
    assert_eq!(third.json["error"]["code"], json!("rate_limit.exceeded"));
    assert_eq!(third.header("retry-after"), Some("30"), "one token comes back every 30 s");
    assert_eq!(third.json["error"]["requestId"].as_str(), third.header("x-request-id"));
    assert_eq!(count(&app, "SELECT count(*) AS n FROM tenants WHERE slug = $1", "initech").await, 0);

    // Reads are another class, and another principal has its own bucket.
    let read = app.call("GET", "/api/v1/tenants", Some(&admin), None).await;
    assert_eq!(read.status, 200);
    let colleague = app.admin_token_of(UserId::new());
    let theirs = app.call("POST", "/api/v1/tenants", Some(&colleague), Some(tenant_body("initech"))).await;
    assert_eq!(theirs.status, 201);
}

async fn get_tenant(app: &TestApp, token: &str, id: &str) -> Response {
    app.call("GET", &format!("/api/v1/tenants/{id}"), Some(token), None).await
}

/// Reads until the answer is served from the cache (the instance's
/// notification listener connects in the background at start).
async fn until_hit(app: &TestApp, token: &str, id: &str) -> Response {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = get_tenant(app, token, id).await;
        if res.header("x-cache") == Some("HIT") || Instant::now() > deadline {
            return res;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn a_change_on_one_instance_reaches_the_cache_of_another() {
    let a = TestApp::spawn().await;
    let b = a.another_instance().await;
    let admin = a.admin_token();
    let created = a.call("POST", "/api/v1/tenants", Some(&admin), Some(tenant_body("acme"))).await;
    let id = created.json["data"]["id"].as_str().unwrap().to_owned();
    let owner = b.user_token(id.parse::<TenantId>().unwrap(), &["tenants:read", "tenants:write"]);

    let first = get_tenant(&b, &owner, &id).await;
    assert_eq!((first.status, first.header("x-cache")), (200, Some("MISS")));
    let hit = until_hit(&b, &owner, &id).await;
    assert_eq!(hit.header("x-cache"), Some("HIT"), "served from B's cache");
    assert_eq!(hit.json["data"]["name"], json!("acme"));
    assert_eq!(hit.json, first.json, "a hit is the same answer");

    // Another tenant's token reads nothing of it, cached or not.
    let globex = a.call("POST", "/api/v1/tenants", Some(&admin), Some(tenant_body("globex"))).await;
    let globex: TenantId = globex.json["data"]["id"].as_str().unwrap().parse().unwrap();
    let stranger = b.user_token(globex, &["tenants:read"]);
    let res = get_tenant(&b, &stranger, &id).await;
    assert_eq!(res.status, 404);
    assert!(!res.body.contains("acme"));

    // A has it cached too; its own change (under a key: committed after the
    // handler) must not leave it serving the old name.
    assert_eq!(until_hit(&a, &owner, &id).await.header("x-cache"), Some("HIT"));
    let rename = json!({"name": "Acme Renamed", "contactEmail": "ops@acme.example"});
    let put = a
        .call_with(
            "PUT",
            &format!("/api/v1/tenants/{id}"),
            Some(&owner),
            &[("Idempotency-Key", "rename-1")],
            Some(rename.to_string().into_bytes()),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(get_tenant(&a, &owner, &id).await.json["data"]["name"], json!("Acme Renamed"));
    // B learns through NOTIFY: within a bounded wait, and never the old name after that.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let res = get_tenant(&b, &owner, &id).await;
        if res.json["data"]["name"] == json!("Acme Renamed") {
            break;
        }
        assert!(Instant::now() < deadline, "B still serves the old name: {}", res.body);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..20 {
        assert_eq!(get_tenant(&b, &owner, &id).await.json["data"]["name"], json!("Acme Renamed"));
    }
    assert_eq!(until_hit(&b, &owner, &id).await.json["data"]["name"], json!("Acme Renamed"));
}

#[actix_web::test]
async fn with_the_cache_off_every_read_is_a_miss() {
    let app = TestApp::spawn_with(|settings| settings.cache.enabled = false).await;
    let admin = app.admin_token();
    let created = app.call("POST", "/api/v1/tenants", Some(&admin), Some(tenant_body("acme"))).await;
    let id = created.json["data"]["id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        let res = get_tenant(&app, &admin, &id).await;
        assert_eq!((res.status, res.header("x-cache")), (200, Some("MISS")));
    }
}

#[actix_web::test]
async fn a_refused_request_does_not_pin_its_key_and_an_unknown_tenant_keeps_none() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token();
    let created = app.call("POST", "/api/v1/tenants", Some(&admin), Some(tenant_body("acme"))).await;
    let acme = created.json["data"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/tenants/{acme}/suspend");

    // 403 first; the same person, once granted the permission, uses the same key.
    let person = UserId::new();
    let mint = |permissions: &[&str]| {
        app.keys
            .mint(
                person,
                "staff@portico.example",
                "staff",
                portico_kernel::PLATFORM_TENANT_ID,
                permissions,
                600,
            )
            .unwrap()
    };
    let denied = post_with_key(&app, &path, &mint(&["platform:tenants:read"]), "k", None).await;
    assert_eq!(denied.status, 403);
    let granted = post_with_key(&app, &path, &mint(&["platform:tenants:write"]), "k", None).await;
    assert_eq!((granted.status, granted.header("idempotency-replayed")), (200, None), "{}", granted.body);
    assert_eq!(granted.json["data"]["status"], json!("SUSPENDED"));

    // X-Tenant-ID naming no tenant: no key can be kept for it, so nothing runs.
    let nowhere = TenantId::new().to_string();
    let res = app
        .call_with(
            "POST",
            "/api/v1/tenants",
            Some(&admin),
            &[("Idempotency-Key", "k2"), ("X-Tenant-ID", &nowhere)],
            Some(tenant_body("globex").to_string().into_bytes()),
        )
        .await;
    assert_eq!((res.status, res.json["error"]["code"].clone()), (404, json!("tenancy.tenant_not_found")));
    assert_eq!(count(&app, "SELECT count(*) AS n FROM tenants WHERE slug = $1", "globex").await, 0);
}

#[actix_web::test]
async fn bad_credentials_and_forged_forwarding_do_not_escape_the_address_limit() {
    let app = TestApp::spawn_with(|settings| settings.rate_limits.public = "2/min".parse().unwrap()).await;
    // An invalid token is limited per address like a public request, on any route.
    for (i, expected) in [401, 401, 429].into_iter().enumerate() {
        let res = app.call("GET", "/api/v1/tenants", Some("not-a-token"), None).await;
        assert_eq!(res.status, expected, "request {i}: {}", res.body);
    }
    // Without trusted proxies, X-Forwarded-For from the client is not believed.
    let forged = app
        .call_with("GET", "/api/v1/openapi.json", None, &[("X-Forwarded-For", "198.51.100.77")], None)
        .await;
    assert_eq!(forged.status, 429, "still the peer's bucket");
    // A valid token has buckets of its own.
    assert_eq!(app.call("GET", "/api/v1/tenants", Some(&app.admin_token()), None).await.status, 200);
}
