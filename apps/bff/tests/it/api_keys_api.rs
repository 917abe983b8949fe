//! API keys: a subset of the creator's permissions, shown once, revocable, walled by tenant.

use portico_tenancy::Role;
use serde_json::json;

use crate::support::{PASSWORD, TestApp};

async fn tenant(app: &TestApp, slug: &str) -> portico_kernel::TenantId {
    let body = json!({"name": slug, "slug": slug, "contactEmail": format!("ops@{slug}.example")});
    let res = app.call("POST", "/api/v1/tenants", Some(&app.admin_token()), Some(body)).await;
    res.json["data"]["id"].as_str().unwrap().parse().unwrap()
}

async fn owner_token(app: &TestApp, email: &str, tenant: portico_kernel::TenantId, role: Role) -> String {
    app.person(email, tenant, role).await;
    let res = app.sign_in(email, PASSWORD, None).await;
    res.json["data"]["accessToken"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn a_key_does_what_it_was_given_and_no_more() {
    let app = TestApp::spawn().await;
    let acme = tenant(&app, "acme").await;
    let owner = owner_token(&app, "owner@acme.example", acme, Role::Owner).await;

    let body = json!({"name": "reporting", "permissions": ["tenants:read"]});
    let created = app.call("POST", "/api/v1/api-keys", Some(&owner), Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.json["data"]["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with(created.json["data"]["prefix"].as_str().unwrap()));

    let read = app.call("GET", &format!("/api/v1/tenants/{acme}"), Some(&secret), None).await;
    assert_eq!(read.status, 200, "{}", read.body);
    let rename = json!({"name": "Renamed", "contactEmail": "ops@acme.example"});
    let write = app.call("PUT", &format!("/api/v1/tenants/{acme}"), Some(&secret), Some(rename)).await;
    assert_eq!((write.status, write.json["error"]["code"].clone()), (403, json!("auth.permission_denied")));
    let me = app.call("GET", "/api/v1/auth/me", Some(&secret), None).await;
    assert_eq!((me.status, me.json["error"]["code"].clone()), (403, json!("auth.person_required")));

    let list = app.call("GET", "/api/v1/api-keys", Some(&owner), None).await;
    assert_eq!(list.json["data"].as_array().unwrap().len(), 1);
    assert!(list.json["data"][0]["lastUsedAt"].is_string(), "its use is recorded");
    assert!(!list.body.contains(&secret[17..]), "the secret is shown once only");

    // More than the creator holds is refused, and so is a key from someone without the permission.
    let platform = json!({"name": "escalate", "permissions": ["platform:tenants:write"]});
    let refused = app.call("POST", "/api/v1/api-keys", Some(&owner), Some(platform)).await;
    assert_eq!((refused.status, refused.json["error"]["code"].clone()), (422, json!("api_keys.invalid_key")));
    let manager = json!({"name": "manager", "permissions": ["api_keys:manage"]});
    let manager = app.call("POST", "/api/v1/api-keys", Some(&owner), Some(manager)).await;
    let manager = manager.json["data"]["secret"].as_str().unwrap().to_owned();
    let by_key = json!({"name": "child", "permissions": []});
    let child = app.call("POST", "/api/v1/api-keys", Some(&manager), Some(by_key)).await;
    assert_eq!(
        (child.status, child.json["error"]["code"].clone()),
        (403, json!("auth.person_required")),
        "keys are made by people"
    );
    let too_much = json!({"name": "escalate", "permissions": ["tenants:read", "billing:manage"]});
    let refused = app.call("POST", "/api/v1/api-keys", Some(&owner), Some(too_much)).await;
    assert_eq!(
        (refused.status, refused.json["error"]["code"].clone()),
        (422, json!("api_keys.permission_not_held"))
    );
    let staff = owner_token(&app, "staff@acme.example", acme, Role::Staff).await;
    let body = json!({"name": "x", "permissions": []});
    assert_eq!(app.call("POST", "/api/v1/api-keys", Some(&staff), Some(body)).await.status, 403);
    let bad = app
        .call("POST", "/api/v1/api-keys", Some(&owner), Some(json!({"name": "", "permissions": []})))
        .await;
    assert_eq!(bad.status, 422);
}

#[actix_web::test]
async fn a_changing_key_is_the_audited_actor_and_a_revoked_key_stops_working() {
    let app = TestApp::spawn().await;
    let acme = tenant(&app, "acme").await;
    let globex = tenant(&app, "globex").await;
    let owner = owner_token(&app, "owner@acme.example", acme, Role::Owner).await;
    let body = json!({"name": "sync", "permissions": ["tenants:read", "tenants:write"]});
    let created = app.call("POST", "/api/v1/api-keys", Some(&owner), Some(body)).await;
    let (id, secret) = (
        created.json["data"]["id"].as_str().unwrap().to_owned(),
        created.json["data"]["secret"].as_str().unwrap().to_owned(),
    );

    let rename = json!({"name": "Renamed by key", "contactEmail": "ops@acme.example"});
    let write = app
        .call_with(
            "PUT",
            &format!("/api/v1/tenants/{acme}"),
            Some(&secret),
            &[("X-Request-ID", "by-key")],
            Some(rename.to_string().into_bytes()),
        )
        .await;
    assert_eq!(write.status, 200, "{}", write.body);
    let trail = app.call("GET", "/api/v1/audit?action=tenant.update", Some(&owner), None).await;
    assert_eq!(trail.json["data"][0]["actorType"], json!("api_key"));
    assert_eq!(trail.json["data"][0]["actorId"], json!(id));

    // Another tenant: its id is not found, its header is refused.
    let other = app.call("GET", &format!("/api/v1/tenants/{globex}"), Some(&secret), None).await;
    assert_eq!(other.status, 404);
    let header = app
        .call_with(
            "GET",
            &format!("/api/v1/tenants/{globex}"),
            Some(&secret),
            &[("X-Tenant-ID", &globex.to_string())],
            None,
        )
        .await;
    assert_eq!(header.status, 403);
    let globex_owner = owner_token(&app, "owner@globex.example", globex, Role::Owner).await;
    let theirs = app.call("DELETE", &format!("/api/v1/api-keys/{id}"), Some(&globex_owner), None).await;
    assert_eq!((theirs.status, theirs.json["error"]["code"].clone()), (404, json!("api_keys.not_found")));
    assert_eq!(app.call("GET", &format!("/api/v1/tenants/{acme}"), Some(&secret), None).await.status, 200);

    let revoked = app.call("DELETE", &format!("/api/v1/api-keys/{id}"), Some(&owner), None).await;
    assert_eq!(revoked.status, 204);
    let after = app.call("GET", &format!("/api/v1/tenants/{acme}"), Some(&secret), None).await;
    assert_eq!((after.status, after.json["error"]["code"].clone()), (401, json!("auth.invalid_api_key")));
    let forged = format!("{}{}", &secret[..17], "0".repeat(64));
    assert_eq!(app.call("GET", &format!("/api/v1/tenants/{acme}"), Some(&forged), None).await.status, 401);
}
