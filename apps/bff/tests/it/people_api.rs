//! People and permissions: custom roles, role changes, invitations, the
//! tenant's people, deactivation, bulk import and export.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use portico_kernel::TenantId;
use portico_tenancy::Role;
use serde_json::{Value, json};

use crate::support::{PASSWORD, TestApp};

/// A person of `tenant` with `role`, signed in: (access token, refresh token, membership id).
async fn signed_in(app: &TestApp, email: &str, tenant: TenantId, role: Role) -> (String, String, String) {
    app.person(email, tenant, role).await;
    let res = app.sign_in(email, PASSWORD, Some(&tenant.to_string())).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let data = &res.json["data"];
    let membership = membership_of(app, email, tenant).await;
    (
        data["accessToken"].as_str().unwrap().to_owned(),
        data["refreshToken"].as_str().unwrap().to_owned(),
        membership,
    )
}

async fn membership_of(app: &TestApp, email: &str, tenant: TenantId) -> String {
    let store = app.db.store().await;
    let person = store.credentials(&portico_tenancy::Email::parse(email).unwrap()).await.unwrap().unwrap();
    let memberships = store.memberships_of(person.user.id).await.unwrap();
    memberships.iter().find(|m| m.tenant_id == tenant).unwrap().id.to_string()
}

async fn count(app: &TestApp, sql: &str, value: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = AsyncPgConnection::establish(&app.db.urls.platform).await.unwrap();
    let row: Count = diesel::sql_query(sql).bind::<Text, _>(value).get_result(&mut conn).await.unwrap();
    row.n
}

async fn execute(app: &TestApp, sql: &str, value: &str) {
    let mut conn = AsyncPgConnection::establish(&app.db.urls.platform).await.unwrap();
    diesel::sql_query(sql).bind::<Text, _>(value).execute(&mut conn).await.unwrap();
}

fn code(res: &crate::http::Response) -> (u16, Value) {
    (res.status, res.json["error"]["code"].clone())
}

async fn refresh(app: &TestApp, refresh_token: &str) -> crate::http::Response {
    app.call("POST", "/api/v1/auth/refresh", None, Some(json!({"refreshToken": refresh_token}))).await
}

#[actix_web::test]
async fn nobody_grants_a_platform_permission_or_one_they_do_not_hold() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = app.tenant("acme").await;
    let (admin, _, _) = signed_in(&app, "admin@acme.example", acme, Role::Admin).await;

    let platform = json!({"name": "Sneaky", "permissions": ["tenants:read", "platform:tenants:write"]});
    let res = app.call("POST", "/api/v1/rbac/roles", Some(&admin), Some(platform)).await;
    assert_eq!(code(&res), (422, json!("rbac.platform_permission")), "{}", res.body);
    let unknown = json!({"name": "Odd", "permissions": ["tenants:fly"]});
    let res = app.call("POST", "/api/v1/rbac/roles", Some(&admin), Some(unknown)).await;
    assert_eq!(code(&res), (422, json!("rbac.unknown_permission")));
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM roles WHERE tenant_id = $1::uuid", &acme.to_string()).await,
        0
    );

    // A custom role that may manage people but not grant: its holder cannot create a role with more.
    let body = json!({"name": "Front desk", "permissions": ["people:read", "people:write", "roles:write"]});
    let res = app.call("POST", "/api/v1/rbac/roles", Some(&admin), Some(body)).await;
    assert_eq!(res.status, 201, "{}", res.body);
    let desk_role = res.json["data"]["id"].as_str().unwrap().to_owned();
    let (_, desk_refresh, desk) = signed_in(&app, "desk@acme.example", acme, Role::Staff).await;
    let res = app
        .call(
            "PUT",
            &format!("/api/v1/memberships/{desk}/role"),
            Some(&admin),
            Some(json!({"roleId": desk_role})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"]["role"], json!("CUSTOM"));
    let refreshed = refresh(&app, &desk_refresh).await;
    assert_eq!(refreshed.json["data"]["role"], json!("custom"));
    let desk_token = refreshed.json["data"]["accessToken"].as_str().unwrap().to_owned();

    let more = json!({"name": "Keys", "permissions": ["api_keys:manage"]});
    let res = app.call("POST", "/api/v1/rbac/roles", Some(&desk_token), Some(more)).await;
    assert_eq!(code(&res), (403, json!("rbac.permission_not_held")), "{}", res.body);
    // ... nor invite someone as an admin (the admin role carries what it lacks).
    let invite = json!({"email": "boss@acme.example", "name": "Boss", "role": "ADMIN"});
    let res = app.call("POST", "/api/v1/invitations", Some(&desk_token), Some(invite)).await;
    assert_eq!(code(&res), (403, json!("rbac.permission_not_held")), "{}", res.body);
    assert_eq!(count(&app, "SELECT count(*) AS n FROM users WHERE email = $1", "boss@acme.example").await, 0);
    // A platform role is refused outside the platform tenant, even to its admin.
    let res = app
        .call(
            "PUT",
            &format!("/api/v1/memberships/{desk}/role"),
            Some(&admin),
            Some(json!({"role": "PLATFORM_ADMIN"})),
        )
        .await;
    assert_eq!(code(&res), (422, json!("memberships.role_not_allowed")));
    // Neither or both of role and roleId.
    let both = json!({"role": "STAFF", "roleId": desk_role});
    let res = app.call("PUT", &format!("/api/v1/memberships/{desk}/role"), Some(&admin), Some(both)).await;
    assert_eq!(code(&res), (422, json!("roles.invalid")));

    // A role in use cannot be deleted; another tenant does not see it.
    let res = app.call("DELETE", &format!("/api/v1/rbac/roles/{desk_role}"), Some(&admin), None).await;
    assert_eq!(code(&res), (409, json!("roles.in_use")));
    let globex = app.tenant("globex").await;
    let (other, _, _) = signed_in(&app, "admin@globex.example", globex, Role::Admin).await;
    let res = app.call("GET", &format!("/api/v1/rbac/roles/{desk_role}"), Some(&other), None).await;
    assert_eq!(code(&res), (404, json!("roles.not_found")));
    let rename = json!({"name": "Mine now", "permissions": ["tenants:read"]});
    let res = app.call("PUT", &format!("/api/v1/rbac/roles/{desk_role}"), Some(&other), Some(rename)).await;
    assert_eq!(code(&res), (404, json!("roles.not_found")));
    let res = app.call("GET", "/api/v1/rbac/roles", Some(&other), None).await;
    assert_eq!(res.json["data"]["custom"], json!([]));
    assert!(res.json["data"]["builtIn"].as_array().unwrap().iter().all(|r| r["platform"] == json!(false)));
    // Another tenant's admin cannot give acme's role to their own people.
    let (_, _, globex_staff) = signed_in(&app, "staff@globex.example", globex, Role::Staff).await;
    let res = app
        .call(
            "PUT",
            &format!("/api/v1/memberships/{globex_staff}/role"),
            Some(&other),
            Some(json!({"roleId": desk_role})),
        )
        .await;
    assert_eq!(code(&res), (404, json!("roles.not_found")));
}

#[actix_web::test]
async fn a_custom_roles_permissions_are_what_its_holders_may_do() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = app.tenant("acme").await;
    let (admin, _, _) = signed_in(&app, "admin@acme.example", acme, Role::Admin).await;
    let body = json!({"name": "Readers", "description": "See people.", "permissions": ["people:read"]});
    let role = app.call("POST", "/api/v1/rbac/roles", Some(&admin), Some(body)).await;
    let role_id = role.json["data"]["id"].as_str().unwrap().to_owned();
    let (_, refresh_token, reader) = signed_in(&app, "reader@acme.example", acme, Role::Staff).await;
    let path = format!("/api/v1/memberships/{reader}/role");
    app.call("PUT", &path, Some(&admin), Some(json!({"roleId": role_id}))).await;

    let token = refresh(&app, &refresh_token).await.json["data"]["accessToken"].as_str().unwrap().to_owned();
    let res = app.call("GET", "/api/v1/platform-users", Some(&token), None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["meta"]["total"], json!(2));
    let invite = json!({"email": "x@acme.example", "name": "X"});
    let res = app.call("POST", "/api/v1/invitations", Some(&token), Some(invite)).await;
    assert_eq!(code(&res), (403, json!("auth.permission_denied")));
    let res = app.call("GET", &format!("/api/v1/tenants/{acme}"), Some(&token), None).await;
    assert_eq!(res.status, 403, "tenants:read is not in the role");

    // Changing the role changes what its holders may do from their next refresh.
    let body = json!({"name": "Readers", "permissions": ["people:read", "tenants:read"]});
    let res = app.call("PUT", &format!("/api/v1/rbac/roles/{role_id}"), Some(&admin), Some(body)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"]["members"], json!(1));
    let audited = "SELECT count(*) AS n FROM audit_log WHERE action = 'role.update' AND resource_id = $1";
    assert_eq!(count(&app, audited, &role_id).await, 1);
}

#[actix_web::test]
async fn only_owners_act_on_owners_and_the_last_owner_is_kept() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = app.tenant("acme").await;
    let (owner, _, first) = signed_in(&app, "owner@acme.example", acme, Role::Owner).await;
    let (admin, _, _) = signed_in(&app, "admin@acme.example", acme, Role::Admin).await;
    let (_, _, colleague) = signed_in(&app, "staff@acme.example", acme, Role::Staff).await;
    let owners = "SELECT count(*) AS n FROM memberships WHERE role = 'owner' AND status = 'active' \
                  AND tenant_id = $1::uuid";

    // An administrator acts on no owner, and makes nobody an owner, themselves included.
    let path = format!("/api/v1/platform-users/{first}");
    for (method, path, body) in [
        ("DELETE", path.clone(), None),
        ("POST", format!("{path}/deactivate"), None),
        ("PUT", format!("/api/v1/memberships/{first}/role"), Some(json!({"role": "STAFF"}))),
        ("PUT", format!("/api/v1/memberships/{colleague}/role"), Some(json!({"role": "OWNER"}))),
    ] {
        let res = app.call(method, &path, Some(&admin), body).await;
        assert_eq!(code(&res), (403, json!("rbac.permission_not_held")), "{method} {path}");
    }
    // The only owner cannot step down, nor remove themselves.
    let own = json!({"role": "ADMIN"});
    let res = app.call("PUT", &format!("/api/v1/memberships/{first}/role"), Some(&owner), Some(own)).await;
    assert_eq!(code(&res), (409, json!("memberships.last_owner")));
    assert_eq!(
        code(&app.call("DELETE", &path, Some(&owner), None).await),
        (409, json!("people.own_membership"))
    );

    // The last owner stays, even against the platform's staff acting on the tenant.
    let staff = app.admin_token();
    let on_acme = [("X-Tenant-ID", acme.to_string())];
    let on_acme: Vec<(&str, &str)> = on_acme.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let res = app.call_with("DELETE", &path, Some(&staff), &on_acme, None).await;
    assert_eq!(code(&res), (409, json!("memberships.last_owner")), "{}", res.body);
    let res = app.call_with("POST", &format!("{path}/deactivate"), Some(&staff), &on_acme, None).await;
    assert_eq!(code(&res), (409, json!("memberships.last_owner")));
    assert_eq!(count(&app, owners, &acme.to_string()).await, 1);

    // The owner makes a second owner, who may then remove the first.
    let res = app
        .call(
            "PUT",
            &format!("/api/v1/memberships/{colleague}/role"),
            Some(&owner),
            Some(json!({"role": "OWNER"})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let second = app.sign_in("staff@acme.example", PASSWORD, None).await.json["data"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.call("DELETE", &path, Some(&second), None).await.status, 204);
    assert_eq!(count(&app, owners, &acme.to_string()).await, 1);
    let audited =
        "SELECT count(*) AS n FROM audit_log WHERE action = 'membership.remove' AND resource_id = $1";
    assert_eq!(count(&app, audited, &first).await, 1);
}

#[actix_web::test]
async fn an_invitation_is_accepted_once_and_never_after_it_expires() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = app.tenant("acme").await;
    let (admin, _, _) = signed_in(&app, "admin@acme.example", acme, Role::Admin).await;

    let invite = json!({"email": " New@Acme.Example ", "name": "New Person", "kind": "STUDENT"});
    let res = app.call("POST", "/api/v1/invitations", Some(&admin), Some(invite.clone())).await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(
        (res.json["data"]["status"].clone(), res.json["data"]["role"].clone()),
        (json!("INVITED"), json!("VIEWER"))
    );
    assert_eq!(res.json["data"]["invitation"]["sentCount"], json!(1));
    let id = res.json["data"]["id"].as_str().unwrap().to_owned();
    let again = app.call("POST", "/api/v1/invitations", Some(&admin), Some(invite)).await;
    assert_eq!(code(&again), (409, json!("invitations.already_invited")));
    assert!(app.last_subject("new@acme.example").await.contains("ACME"));
    let first_token = app.emailed_token("new@acme.example").await;

    // Resent: the earlier link stops working.
    let res = app.call("POST", &format!("/api/v1/invitations/{id}/resend"), Some(&admin), None).await;
    assert_eq!(res.json["data"]["invitation"]["sentCount"], json!(2), "{}", res.body);
    let token = app.emailed_token("new@acme.example").await;
    assert_ne!(token, first_token);
    let res = app
        .call(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({"token": first_token, "password": "a-long-passphrase"})),
        )
        .await;
    assert_eq!(code(&res), (422, json!("invitations.invalid")));
    // A new account needs an acceptable password.
    let res = app.call("POST", "/api/v1/invitations/accept", None, Some(json!({"token": token}))).await;
    assert_eq!(code(&res), (422, json!("invitations.password_required")));
    let res = app
        .call("POST", "/api/v1/invitations/accept", None, Some(json!({"token": token, "password": "short"})))
        .await;
    assert_eq!(code(&res), (422, json!("auth.weak_password")));

    let accept = json!({"token": token, "password": "a-long-passphrase"});
    let res = app.call("POST", "/api/v1/invitations/accept", None, Some(accept.clone())).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"], json!({"tenantId": acme.to_string(), "newAccount": true}));
    let twice = app.call("POST", "/api/v1/invitations/accept", None, Some(accept)).await;
    assert_eq!(code(&twice), (422, json!("invitations.invalid")));
    let signed = app.sign_in("new@acme.example", "a-long-passphrase", None).await;
    assert_eq!(signed.status, 200, "{}", signed.body);
    assert_eq!(
        signed.json["data"]["permissions"],
        json!(["tenants:read", "roles:read", "credits:read", "metering:read", "crm:read", "tickets:read"])
    );

    // An expired link is refused like an unknown one, and accepts nothing.
    let invite = json!({"email": "late@acme.example", "name": "Late"});
    let res = app.call("POST", "/api/v1/invitations", Some(&admin), Some(invite)).await;
    let late = res.json["data"]["id"].as_str().unwrap().to_owned();
    execute(
        &app,
        "UPDATE invitations SET expires_at = now() - interval '1 second' WHERE membership_id = $1::uuid",
        &late,
    )
    .await;
    let token = app.emailed_token("late@acme.example").await;
    let res = app
        .call(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({"token": token, "password": "a-long-passphrase"})),
        )
        .await;
    assert_eq!(code(&res), (422, json!("invitations.invalid")));
    assert_eq!(
        count(
            &app,
            "SELECT count(*) AS n FROM users WHERE email = $1 AND status = 'pending'",
            "late@acme.example"
        )
        .await,
        1
    );

    // Revoked: gone, and another tenant can neither see nor revoke it.
    let globex = app.tenant("globex").await;
    let (other, _, _) = signed_in(&app, "admin@globex.example", globex, Role::Admin).await;
    let res = app.call("DELETE", &format!("/api/v1/invitations/{late}"), Some(&other), None).await;
    assert_eq!(code(&res), (404, json!("invitations.not_found")));
    let res = app.call("POST", &format!("/api/v1/invitations/{late}/resend"), Some(&other), None).await;
    assert_eq!(code(&res), (404, json!("invitations.not_found")));
    assert_eq!(
        app.call("GET", "/api/v1/invitations", Some(&other), None).await.json["meta"]["total"],
        json!(0)
    );
    assert_eq!(
        app.call("DELETE", &format!("/api/v1/invitations/{late}"), Some(&admin), None).await.status,
        204
    );
    assert_eq!(
        app.call("GET", "/api/v1/invitations", Some(&admin), None).await.json["meta"]["total"],
        json!(0)
    );

    // An existing account joins without a password change; until then acme sees only what it typed,
    // not that the address has an account elsewhere, nor its name, phone or sign-ins.
    let (_, _, _) = signed_in(&app, "member@globex.example", globex, Role::Staff).await;
    let invite = json!({"email": "member@globex.example", "name": "Typed By Acme"});
    let res = app.call("POST", "/api/v1/invitations", Some(&admin), Some(invite)).await;
    let seen = &res.json["data"];
    assert_eq!(
        (&seen["name"], &seen["accountStatus"], &seen["lastLoginAt"], &seen["emailVerified"]),
        (&json!("Typed By Acme"), &json!("PENDING"), &Value::Null, &json!(false)),
        "{}",
        res.body
    );
    let member_id = seen["id"].as_str().unwrap().to_owned();
    let token = app.emailed_token("member@globex.example").await;
    let res = app
        .call(
            "POST",
            "/api/v1/invitations/accept",
            None,
            Some(json!({"token": token, "password": "an-attempt-to-take-over"})),
        )
        .await;
    assert_eq!(res.json["data"]["newAccount"], json!(false), "{}", res.body);
    let joined = app.call("GET", &format!("/api/v1/platform-users/{member_id}"), Some(&admin), None).await;
    assert_eq!(joined.json["data"]["name"], json!("Test Person"), "their own name, once they joined");
    assert_eq!(
        joined.json["data"]["lastLoginAt"],
        Value::Null,
        "no sign-in to acme yet: globex's is not shown"
    );
    assert_eq!(
        app.sign_in("member@globex.example", PASSWORD, Some("acme")).await.status,
        200,
        "the password is unchanged"
    );
    // Bad input.
    let res = app
        .call("POST", "/api/v1/invitations", Some(&admin), Some(json!({"email": "nope", "name": "X"})))
        .await;
    assert_eq!(code(&res), (422, json!("auth.invalid_email")));
    let res = app
        .call("POST", "/api/v1/invitations", Some(&admin), Some(json!({"email": "a@b.example", "name": " "})))
        .await;
    assert_eq!(code(&res), (422, json!("people.invalid")));
}

#[actix_web::test]
async fn a_deactivated_persons_sessions_end_and_their_refresh_fails() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = app.tenant("acme").await;
    let (admin, _, _) = signed_in(&app, "admin@acme.example", acme, Role::Admin).await;
    let (token, refresh_token, staff) = signed_in(&app, "staff@acme.example", acme, Role::Staff).await;

    let globex = app.tenant("globex").await;
    let (other, _, _) = signed_in(&app, "admin@globex.example", globex, Role::Admin).await;
    let res =
        app.call("POST", &format!("/api/v1/platform-users/{staff}/deactivate"), Some(&other), None).await;
    assert_eq!(code(&res), (404, json!("memberships.not_found")), "another tenant's admin");
    assert_eq!(
        app.call("GET", &format!("/api/v1/platform-users/{staff}"), Some(&other), None).await.status,
        404
    );

    let res =
        app.call("POST", &format!("/api/v1/platform-users/{staff}/deactivate"), Some(&admin), None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"]["status"], json!("SUSPENDED"));
    assert_eq!(code(&refresh(&app, &refresh_token).await), (401, json!("auth.invalid_refresh_token")));
    let res = app.call("GET", &format!("/api/v1/tenants/{acme}"), Some(&token), None).await;
    assert_eq!(code(&res), (401, json!("auth.session_ended")));
    let signed = app.sign_in("staff@acme.example", PASSWORD, None).await;
    assert_eq!(code(&signed), (403, json!("auth.no_membership")));

    let res = app.call("POST", &format!("/api/v1/platform-users/{staff}/activate"), Some(&admin), None).await;
    assert_eq!(res.json["data"]["status"], json!("ACTIVE"));
    assert_eq!(app.sign_in("staff@acme.example", PASSWORD, None).await.status, 200);
    let actions = "SELECT count(*) AS n FROM audit_log WHERE resource_id = $1 AND action IN \
                   ('membership.deactivate', 'membership.activate')";
    assert_eq!(count(&app, actions, &staff).await, 2);

    // Their activity is what they did here.
    let res = app.call("GET", &format!("/api/v1/platform-users/{staff}/activity"), Some(&admin), None).await;
    let actions: Vec<&str> =
        res.json["data"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"session.start"), "{actions:?}");
    assert!(!actions.contains(&"membership.deactivate"), "done by the admin, not by them");
}

#[actix_web::test]
async fn people_are_listed_per_tenant_and_by_kind_and_platform_staff_see_all() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = app.tenant("acme").await;
    let globex = app.tenant("globex").await;
    let (admin, _, _) = signed_in(&app, "admin@acme.example", acme, Role::Admin).await;
    for (email, kind) in
        [("s1@acme.example", "STUDENT"), ("s2@acme.example", "STUDENT"), ("p1@acme.example", "PARENT")]
    {
        let body = json!({"email": email, "name": email, "kind": kind});
        assert_eq!(app.call("POST", "/api/v1/platform-users", Some(&admin), Some(body)).await.status, 201);
    }
    let (other, _, _) = signed_in(&app, "admin@globex.example", globex, Role::Admin).await;

    let students = app.call("GET", "/api/v1/platform-users/students", Some(&admin), None).await;
    assert_eq!(students.json["meta"]["total"], json!(2), "{}", students.body);
    let one = students.json["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.call("GET", &format!("/api/v1/platform-users/students/{one}"), Some(&admin), None).await.status,
        200
    );
    assert_eq!(
        app.call("GET", &format!("/api/v1/platform-users/parents/{one}"), Some(&admin), None).await.status,
        404
    );
    assert_eq!(
        app.call("GET", &format!("/api/v1/platform-users/students/{one}"), Some(&other), None).await.status,
        404
    );
    assert_eq!(
        app.call("GET", "/api/v1/platform-users/students", Some(&other), None).await.json["meta"]["total"],
        json!(0)
    );
    let res = app.call("GET", "/api/v1/platform-users?search=P1%40ACME", Some(&admin), None).await;
    assert_eq!(res.json["meta"]["total"], json!(1), "{}", res.body);
    let res = app.call("GET", &format!("/api/v1/platform-users?tenantId={globex}"), Some(&admin), None).await;
    assert_eq!(code(&res), (422, json!("request.invalid_query")));
    let res = app
        .call("PUT", &format!("/api/v1/platform-users/{one}"), Some(&other), Some(json!({"kind": "PARENT"})))
        .await;
    assert_eq!(code(&res), (404, json!("memberships.not_found")));

    let analytics = app.call("GET", "/api/v1/platform-users/analytics", Some(&admin), None).await;
    assert_eq!(analytics.json["data"]["total"], json!(4), "{}", analytics.body);
    assert_eq!(analytics.json["data"]["byKind"]["student"], json!(2));
    assert_eq!(analytics.json["data"]["byStatus"]["invited"], json!(3));

    // The platform's staff see every customer tenant's people, or one tenant's.
    let staff = app.admin_token();
    let all = app.call("GET", "/api/v1/platform-users", Some(&staff), None).await;
    assert_eq!(all.json["meta"]["total"], json!(5), "{}", all.body);
    let globex_only =
        app.call("GET", &format!("/api/v1/platform-users?tenantId={globex}"), Some(&staff), None).await;
    assert_eq!(globex_only.json["meta"]["total"], json!(1));
    let counts = app
        .call("GET", &format!("/api/v1/platform-users/analytics?tenantId={acme}"), Some(&staff), None)
        .await;
    assert_eq!(counts.json["data"]["total"], json!(4));

    // Name and phone are theirs once they accepted; before, the tenant may fix them.
    let res = app
        .call(
            "PUT",
            &format!("/api/v1/platform-users/{one}"),
            Some(&admin),
            Some(json!({"name": "Fixed", "phone": "+49 30 1234567"})),
        )
        .await;
    assert_eq!(
        (res.json["data"]["name"].clone(), res.json["data"]["phone"].clone()),
        (json!("Fixed"), json!("+49 30 1234567"))
    );
    let admin_membership = membership_of(&app, "admin@acme.example", acme).await;
    let res = app
        .call(
            "PUT",
            &format!("/api/v1/platform-users/{admin_membership}"),
            Some(&admin),
            Some(json!({"name": "Renamed"})),
        )
        .await;
    assert_eq!(code(&res), (409, json!("people.profile_locked")));
    let res = app
        .call(
            "PUT",
            &format!("/api/v1/platform-users/{one}"),
            Some(&admin),
            Some(json!({"phone": "call me"})),
        )
        .await;
    assert_eq!(code(&res), (422, json!("people.invalid")));
}

#[actix_web::test]
async fn an_import_with_a_bad_row_writes_nothing_and_says_which_line() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = app.tenant("acme").await;
    let (admin, _, _) = signed_in(&app, "admin@acme.example", acme, Role::Admin).await;
    let import = |csv: &str| {
        let (app, admin, csv) = (&app, admin.clone(), csv.to_owned());
        async move {
            app.call_with(
                "POST",
                "/api/v1/platform-users/bulk-import",
                Some(&admin),
                &[("Content-Type", "text/csv")],
                Some(csv.into_bytes()),
            )
            .await
        }
    };
    let people = "SELECT count(*) AS n FROM memberships WHERE tenant_id = $1::uuid";
    let before = count(&app, people, &acme.to_string()).await;

    let bad = "email,name,kind\r\na@acme.example,Ann,student\r\nnot-an-address,Bob,student\r\nc@acme.example,Cy,parent\r\n";
    let res = import(bad).await;
    assert_eq!(code(&res), (422, json!("import.invalid_rows")), "{}", res.body);
    assert_eq!(
        res.json["error"]["details"]["errors"],
        json!([{"line": 3, "code": "import.invalid_email", "reason": res.json["error"]["details"]["errors"][0]["reason"]}])
    );
    assert_eq!(count(&app, people, &acme.to_string()).await, before, "nothing written");
    assert_eq!(count(&app, "SELECT count(*) AS n FROM users WHERE email = $1", "a@acme.example").await, 0);

    let good = "email,name,phone,kind\r\na@acme.example,Ann,,student\r\nb@acme.example,\"Bee, B.\",+49 30 1234567,parent\r\n";
    let res = import(good).await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.json["data"], json!({"rows": 2, "newAccounts": 2, "invited": 2}));
    assert_eq!(count(&app, people, &acme.to_string()).await, before + 2);

    // Sent again: every row is a member already, reported, nothing written twice.
    let res = import(good).await;
    assert_eq!(code(&res), (422, json!("import.invalid_rows")));
    let lines: Vec<u64> = res.json["error"]["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 3]);
    assert_eq!(count(&app, people, &acme.to_string()).await, before + 2);

    // A role the importer may not give.
    let (_, _, _) = signed_in(&app, "viewer@acme.example", acme, Role::Staff).await;
    let owners = "email,name,role\r\nboss@acme.example,Boss,owner\r\n";
    let body = json!({"name": "Importers", "permissions": ["people:write", "tenants:read"]});
    let role = app.call("POST", "/api/v1/rbac/roles", Some(&admin), Some(body)).await.json["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let viewer = membership_of(&app, "viewer@acme.example", acme).await;
    app.call(
        "PUT",
        &format!("/api/v1/memberships/{viewer}/role"),
        Some(&admin),
        Some(json!({"roleId": role})),
    )
    .await;
    let token = app.sign_in("viewer@acme.example", PASSWORD, None).await.json["data"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .call_with(
            "POST",
            "/api/v1/platform-users/bulk-import",
            Some(&token),
            &[("Content-Type", "text/csv")],
            Some(owners.as_bytes().to_vec()),
        )
        .await;
    assert_eq!(code(&res), (403, json!("rbac.permission_not_held")), "{}", res.body);

    // The export streams the filtered list as CSV, guarded against formulas.
    let res = app
        .call("POST", "/api/v1/platform-users/bulk-export", Some(&admin), Some(json!({"kind": "PARENT"})))
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(res.body.starts_with("email,name,phone,kind,role,status,createdAt\r\n"), "{}", res.body);
    assert!(
        res.body.contains("b@acme.example,\"Bee, B.\",'+49 30 1234567,parent,viewer,invited,"),
        "{}",
        res.body
    );
    assert_eq!(res.body.lines().count(), 2, "{}", res.body);
    let globex = app.tenant("globex").await;
    let (other, _, _) = signed_in(&app, "admin@globex.example", globex, Role::Admin).await;
    let theirs = app.call("POST", "/api/v1/platform-users/bulk-export", Some(&other), Some(json!({}))).await;
    assert!(!theirs.body.contains("acme.example"), "{}", theirs.body);
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM audit_log WHERE action = $1", "people.export").await,
        2
    );
}

#[actix_web::test]
async fn the_platforms_staff_are_managed_without_anyone_seeing_their_secrets() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let platform = portico_kernel::PLATFORM_TENANT_ID;
    let (root, _, root_membership) =
        signed_in(&app, "root@portico.example", platform, Role::PlatformOwner).await;
    let (_, ops_refresh, ops) = signed_in(&app, "ops@portico.example", platform, Role::PlatformAdmin).await;
    let admin_path = |rest: &str| format!("/api/v1/admin-users/{ops}{rest}");

    // Required: until they set up a second factor, their tokens carry nothing.
    let res =
        app.call("POST", &admin_path("/toggle-mfa"), Some(&root), Some(json!({"action": "REQUIRE"}))).await;
    assert_eq!(res.json["data"]["mfaRequired"], json!(true), "{}", res.body);
    let refreshed = refresh(&app, &ops_refresh).await;
    assert_eq!(refreshed.json["data"]["permissions"], json!([]), "{}", refreshed.body);
    assert_eq!(refreshed.json["data"]["mfaSetupRequired"], json!(true));
    let bare = refreshed.json["data"]["accessToken"].as_str().unwrap().to_owned();
    let res = app.call("GET", "/api/v1/admin-users", Some(&bare), None).await;
    assert_eq!(code(&res), (403, json!("auth.mfa_setup_required")));
    crate::auth_api::enable_mfa(&app, &bare).await;
    let refreshed = refresh(&app, refreshed.json["data"]["refreshToken"].as_str().unwrap()).await;
    assert_eq!(refreshed.json["data"]["mfaSetupRequired"], json!(false));
    let ops_token = refreshed.json["data"]["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(
        app.call("GET", "/api/v1/admin-users", Some(&ops_token), None).await.json["meta"]["total"],
        json!(2)
    );

    // Reset (a lost phone): forgotten, the person is told; nothing secret in the answer.
    let res =
        app.call("POST", &admin_path("/toggle-mfa"), Some(&root), Some(json!({"action": "RESET"}))).await;
    assert_eq!(res.json["data"]["mfaEnabled"], json!(false), "{}", res.body);
    assert!(!res.body.to_lowercase().contains("secret"), "{}", res.body);
    assert_eq!(app.last_subject("ops@portico.example").await, "Your second factor was reset");
    let res =
        app.call("POST", &admin_path("/toggle-mfa"), Some(&root), Some(json!({"action": "PEEK"}))).await;
    assert_eq!(res.status, 422);

    // A password reset is emailed to them; the administrator gets no link.
    let res = app.call("POST", &admin_path("/reset-password"), Some(&root), None).await;
    assert_eq!(res.status, 202, "{}", res.body);
    let token = app.emailed_token("ops@portico.example").await;
    assert!(!res.body.contains(&token));
    let reset = json!({"token": token, "password": "a-brand-new-passphrase"});
    assert_eq!(app.call("POST", "/api/v1/auth/reset-password", None, Some(reset)).await.status, 204);

    // Sessions: listed and ended one by one; an ended session's token stops at once.
    let signed = app.sign_in("ops@portico.example", "a-brand-new-passphrase", None).await;
    let ops_token = signed.json["data"]["accessToken"].as_str().unwrap().to_owned();
    let sessions = app.call("GET", &admin_path("/sessions"), Some(&root), None).await;
    let live = sessions.json["data"].as_array().unwrap();
    assert_eq!(live.len(), 1, "{}", sessions.body);
    let sid = live[0]["id"].as_str().unwrap();
    assert_eq!(
        app.call("DELETE", &admin_path(&format!("/sessions/{sid}")), Some(&root), None).await.status,
        204
    );
    let res = app.call("GET", "/api/v1/admin-users", Some(&ops_token), None).await;
    assert_eq!(code(&res), (401, json!("auth.session_ended")));
    let again = app.call("DELETE", &admin_path(&format!("/sessions/{sid}")), Some(&root), None).await;
    assert_eq!(code(&again), (404, json!("auth.session_not_found")));

    // Roles: platform ones only; the last platform owner stays; a tenant's admin sees nothing.
    let res = app.call("PUT", &admin_path("/permissions"), Some(&root), Some(json!({"role": "ADMIN"}))).await;
    assert_eq!(code(&res), (422, json!("memberships.role_not_allowed")));
    let res = app
        .call("PUT", &admin_path("/permissions"), Some(&root), Some(json!({"role": "PLATFORM_SUPPORT"})))
        .await;
    assert_eq!(res.json["data"]["role"], json!("PLATFORM_SUPPORT"), "{}", res.body);
    let demote = json!({"role": "PLATFORM_ADMIN"});
    let res = app
        .call("PUT", &format!("/api/v1/admin-users/{root_membership}/permissions"), Some(&root), Some(demote))
        .await;
    assert_eq!(code(&res), (409, json!("memberships.last_owner")));
    // A platform admin acts on no platform owner, and makes nobody one.
    let (admin2, _, _) = signed_in(&app, "admin2@portico.example", platform, Role::PlatformAdmin).await;
    let root_path = format!("/api/v1/admin-users/{root_membership}");
    for (method, path, body) in [
        ("DELETE", root_path.clone(), None),
        ("POST", format!("{root_path}/toggle-mfa"), Some(json!({"action": "RESET"}))),
        ("POST", format!("{root_path}/reset-password"), None),
        ("PUT", admin_path("/permissions"), Some(json!({"role": "PLATFORM_OWNER"}))),
    ] {
        let res = app.call(method, &path, Some(&admin2), body).await;
        assert_eq!(code(&res), (403, json!("rbac.permission_not_held")), "{method} {path}");
    }
    // Their own second factor is managed under /auth, with the code.
    let res = app
        .call("POST", &format!("{root_path}/toggle-mfa"), Some(&root), Some(json!({"action": "WAIVE"})))
        .await;
    assert_eq!(code(&res), (409, json!("people.own_membership")));
    // The platform's staff are not managed as a tenant's people.
    let invite = json!({"email": "x@portico.example", "name": "X", "role": "PLATFORM_OWNER"});
    for (method, path, body) in [
        ("POST", "/api/v1/platform-users".to_owned(), Some(invite)),
        ("DELETE", format!("/api/v1/platform-users/{ops}"), None),
        ("POST", format!("/api/v1/platform-users/{ops}/deactivate"), None),
        (
            "POST",
            "/api/v1/rbac/roles".to_owned(),
            Some(json!({"name": "R", "permissions": ["tenants:read"]})),
        ),
    ] {
        let res = app.call(method, &path, Some(&root), body).await;
        assert_eq!(code(&res), (403, json!("people.platform_staff")), "{method} {path}");
    }
    let res = app
        .call("PUT", &format!("/api/v1/memberships/{ops}/role"), Some(&root), Some(json!({"role": "ADMIN"})))
        .await;
    assert_eq!(code(&res), (422, json!("memberships.role_not_allowed")));
    let acme = app.tenant("acme").await;
    let (tenant_admin, _, acme_admin) = signed_in(&app, "admin@acme.example", acme, Role::Admin).await;
    for path in ["/api/v1/admin-users".to_owned(), admin_path(""), admin_path("/sessions")] {
        let res = app.call("GET", &path, Some(&tenant_admin), None).await;
        assert_eq!(code(&res), (403, json!("auth.permission_denied")), "{path}");
    }
    let res = app.call("GET", &format!("/api/v1/admin-users/{acme_admin}"), Some(&root), None).await;
    assert_eq!(code(&res), (404, json!("memberships.not_found")), "a tenant's person is not staff");

    let counts = app.call("GET", "/api/v1/admin-users/analytics", Some(&root), None).await;
    assert_eq!(
        counts.json["data"]["byRole"],
        json!({"platform_admin": 1, "platform_owner": 1, "platform_support": 1}),
        "{}",
        counts.body
    );
    let catalogue = app.call("GET", "/api/v1/admin-users/permissions", Some(&root), None).await;
    assert_eq!(catalogue.json["data"]["roles"].as_array().unwrap().len(), 3);
    let activity = app.call("GET", &admin_path("/activity"), Some(&root), None).await;
    let actions: Vec<&str> =
        activity.json["data"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"user.mfa_enabled") && actions.contains(&"session.start"), "{actions:?}");
}
