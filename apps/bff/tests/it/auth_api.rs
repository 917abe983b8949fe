//! Sign-in, refresh rotation, sign-out and sessions (bearer mode).

use portico_kernel::{PLATFORM_TENANT_ID, TenantId};
use portico_tenancy::Role;
use serde_json::{Value, json};

use crate::support::{PASSWORD, TestApp};

async fn tenant(app: &TestApp, slug: &str) -> TenantId {
    let body =
        json!({"name": slug.to_uppercase(), "slug": slug, "contactEmail": format!("ops@{slug}.example")});
    let res = app.call("POST", "/api/v1/tenants", Some(&app.admin_token()), Some(body)).await;
    res.json["data"]["id"].as_str().unwrap().parse().unwrap()
}

fn data(res: &crate::http::Response, field: &str) -> String {
    res.json["data"][field].as_str().unwrap_or_else(|| panic!("no {field} in {}", res.body)).to_owned()
}

#[actix_web::test]
async fn a_person_signs_in_to_their_tenant_and_the_token_works_there_only() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = tenant(&app, "acme").await;
    let globex = tenant(&app, "globex").await;
    app.person("Owner@Acme.Example", acme, Role::Owner).await;

    let res = app.sign_in("  owner@ACME.example ", PASSWORD, None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"]["tenant"]["slug"], json!("acme"));
    assert_eq!(res.json["data"]["role"], json!("owner"));
    assert_eq!(res.json["data"]["expiresIn"], json!(900));
    assert_eq!(data(&res, "refreshToken").len(), 64, "256 bits");
    let token = data(&res, "accessToken");
    let claims = app.keys.verify(&token).unwrap();
    assert_eq!(claims.exp - claims.iat, 900);
    assert_eq!(claims.sid.map(|s| s.to_string()), Some(data(&res, "sessionId")));
    assert_eq!(
        claims.permissions,
        vec![
            "tenants:read",
            "tenants:write",
            "audit:read",
            "api_keys:manage",
            "roles:read",
            "roles:write",
            "memberships:write",
            "people:read",
            "people:write",
            "credits:read",
            "credits:purchase",
            "credits:spend",
            "metering:read",
            "metering:write",
            "metering:ingest",
            "metering:close",
            "crm:read",
            "crm:write",
            "tickets:read",
            "tickets:write",
            "owners:manage"
        ]
    );

    let own = app.call("GET", &format!("/api/v1/tenants/{acme}"), Some(&token), None).await;
    assert_eq!(own.status, 200);
    let other = app.call("GET", &format!("/api/v1/tenants/{globex}"), Some(&token), None).await;
    assert_eq!(other.status, 404);
    assert!(!other.body.contains("GLOBEX"));

    let me = app.call("GET", "/api/v1/auth/me", Some(&token), None).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json["data"]["user"]["email"], json!("owner@acme.example"), "normalised");
    assert_eq!(me.json["data"]["tenants"].as_array().unwrap().len(), 1);
    assert!(me.json["data"]["user"].get("passwordHash").is_none() && !me.body.contains("argon2"));
}

#[actix_web::test]
async fn wrong_passwords_and_unknown_emails_get_the_same_answer_and_a_growing_delay() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = tenant(&app, "acme").await;
    app.person("owner@acme.example", acme, Role::Owner).await;

    let wrong = app.sign_in("owner@acme.example", "not-the-password", None).await;
    let unknown = app.sign_in("nobody@acme.example", "not-the-password", None).await;
    let strip = |v: &Value| {
        let mut v = v.clone();
        v["error"]["requestId"] = json!(null);
        v
    };
    assert_eq!(wrong.status, 401);
    assert_eq!(strip(&wrong.json), strip(&unknown.json), "nothing tells whether the account exists");
    assert_eq!(wrong.json["error"]["code"], json!("auth.invalid_credentials"));

    for _ in 0..4 {
        app.sign_in("owner@acme.example", "not-the-password", None).await;
    }
    // Five failures in a row: the next attempt waits, even with the right password.
    let blocked = app.sign_in("owner@acme.example", PASSWORD, None).await;
    assert_eq!(
        (blocked.status, blocked.json["error"]["code"].clone()),
        (429, json!("auth.too_many_attempts"))
    );
    assert_eq!(blocked.json["error"]["details"]["retryAfterSeconds"], json!(1));
    assert_eq!(blocked.header("retry-after"), Some("1"));
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let after = app.sign_in("owner@acme.example", PASSWORD, None).await;
    assert_eq!(after.status, 200, "the wait ends: {}", after.body);
    // A success clears the count: four more failures are still plain 401s.
    for _ in 0..4 {
        assert_eq!(app.sign_in("owner@acme.example", "not-the-password", None).await.status, 401);
    }
    // An address without an account is counted the same way: nothing tells them apart.
    for _ in 0..4 {
        // (one failure for this address came first, above)
        assert_eq!(app.sign_in("nobody@acme.example", "not-the-password", None).await.status, 401);
    }
    let unknown_blocked = app.sign_in("nobody@acme.example", "not-the-password", None).await;
    assert_eq!(unknown_blocked.json["error"]["code"], json!("auth.too_many_attempts"));
}

#[actix_web::test]
async fn a_person_of_several_tenants_chooses_one() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = tenant(&app, "acme").await;
    let globex = tenant(&app, "globex").await;
    let person = app.person("both@example.com", acme, Role::Owner).await;
    let ctx = portico_kernel::TenantContext {
        tenant_id: globex,
        actor: portico_kernel::Actor::system("test"),
        permissions: Default::default(),
        request_id: portico_kernel::RequestId::generate(),
        origin: portico_kernel::Origin::default(),
    };
    let store = app.db.store().await;
    store.add_membership(&ctx, person, Role::Viewer, portico_tenancy::MembershipKind::Viewer).await.unwrap();

    let res = app.sign_in("both@example.com", PASSWORD, None).await;
    assert_eq!(
        (res.status, res.json["error"]["code"].clone()),
        (409, json!("auth.tenant_selection_required"))
    );
    assert_eq!(
        res.json["error"]["details"]["tenants"],
        json!([{"name": "ACME", "slug": "acme"}, {"name": "GLOBEX", "slug": "globex"}])
    );
    let chosen = app.sign_in("both@example.com", PASSWORD, Some("globex")).await;
    assert_eq!(chosen.status, 200, "{}", chosen.body);
    assert_eq!(chosen.json["data"]["role"], json!("viewer"));
    assert_eq!(
        chosen.json["data"]["permissions"],
        json!(["tenants:read", "roles:read", "credits:read", "metering:read", "crm:read", "tickets:read"])
    );
    // Switching moves the session: new tokens for Acme, and the previous refresh token is spent.
    let access = data(&chosen, "accessToken");
    let switched =
        app.call("POST", "/api/v1/auth/switch-tenant", Some(&access), Some(json!({"tenant": "acme"}))).await;
    assert_eq!(switched.status, 200, "{}", switched.body);
    assert_eq!(
        (switched.json["data"]["role"].clone(), data(&switched, "sessionId")),
        (json!("owner"), data(&chosen, "sessionId"))
    );
    let acme_token = data(&switched, "accessToken");
    assert_eq!(
        app.call("GET", &format!("/api/v1/tenants/{acme}"), Some(&acme_token), None).await.status,
        200
    );
    let refreshed = app
        .call(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refreshToken": data(&switched, "refreshToken")})),
        )
        .await;
    assert_eq!(refreshed.json["data"]["tenant"]["slug"], json!("acme"), "the session stays on Acme");
    let elsewhere = app
        .call("POST", "/api/v1/auth/switch-tenant", Some(&acme_token), Some(json!({"tenant": "initech"})))
        .await;
    assert_eq!(elsewhere.status, 403);

    let not_theirs = app.sign_in("both@example.com", PASSWORD, Some("initech")).await;
    assert_eq!(
        (not_theirs.status, not_theirs.json["error"]["code"].clone()),
        (403, json!("auth.no_membership"))
    );
}

#[actix_web::test]
async fn refresh_rotates_and_a_reused_token_ends_the_session() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    app.person("admin@portico.example", PLATFORM_TENANT_ID, Role::PlatformAdmin).await;
    let signed_in = app.sign_in("admin@portico.example", PASSWORD, None).await;
    let first = data(&signed_in, "refreshToken");
    let refresh = |token: String| {
        let app = &app;
        async move { app.call("POST", "/api/v1/auth/refresh", None, Some(json!({"refreshToken": token}))).await }
    };

    let second = refresh(first.clone()).await;
    assert_eq!(second.status, 200, "{}", second.body);
    let second_token = data(&second, "refreshToken");
    assert_ne!(second_token, first);
    assert_eq!(data(&second, "sessionId"), data(&signed_in, "sessionId"), "the same session");
    let staff = app.keys.verify(&data(&second, "accessToken")).unwrap();
    assert!(staff.permissions.contains(&"platform:tenants:write".to_owned()));

    // The spent token again: theft or a broken client. The whole session ends.
    let reused = refresh(first).await;
    assert_eq!(
        (reused.status, reused.json["error"]["code"].clone()),
        (401, json!("auth.refresh_token_reused"))
    );
    let after = refresh(second_token).await;
    assert_eq!(
        (after.status, after.json["error"]["code"].clone()),
        (401, json!("auth.invalid_refresh_token"))
    );
    let unknown = refresh("f".repeat(64)).await;
    assert_eq!(unknown.status, 401);

    let admin = app.admin_token();
    let trail =
        app.call("GET", "/api/v1/admin/audit?action=session.refresh_reused", Some(&admin), None).await;
    assert_eq!(trail.json["meta"]["total"], json!(1), "{}", trail.body);
    assert_eq!(trail.json["data"][0]["resourceId"].as_str().unwrap(), data(&signed_in, "sessionId"));
}

#[actix_web::test]
async fn sessions_are_listed_ended_and_walled_per_person() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = tenant(&app, "acme").await;
    app.person("owner@acme.example", acme, Role::Owner).await;
    app.person("staff@acme.example", acme, Role::Staff).await;
    let phone = app.sign_in("owner@acme.example", PASSWORD, None).await;
    let laptop = app.sign_in("owner@acme.example", PASSWORD, None).await;
    let staff = app.sign_in("staff@acme.example", PASSWORD, None).await;
    let token = data(&laptop, "accessToken");

    let list = app.call("GET", "/api/v1/auth/sessions", Some(&token), None).await;
    let sessions = list.json["data"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{}", list.body);
    let current: Vec<bool> = sessions.iter().map(|s| s["current"].as_bool().unwrap()).collect();
    assert_eq!(current, vec![true, false], "newest first, the caller's own marked");
    assert_eq!(sessions[0]["ip"], json!("127.0.0.1"));

    // Another person's session is not found, and stays alive.
    let theirs = data(&staff, "sessionId");
    let res = app.call("DELETE", &format!("/api/v1/auth/sessions/{theirs}"), Some(&token), None).await;
    assert_eq!((res.status, res.json["error"]["code"].clone()), (404, json!("auth.session_not_found")));
    let still = app
        .call(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refreshToken": data(&staff, "refreshToken")})),
        )
        .await;
    assert_eq!(still.status, 200);

    // Ending the phone's session from the laptop; signing out of the laptop.
    let phone_id = data(&phone, "sessionId");
    let ended = app.call("DELETE", &format!("/api/v1/auth/sessions/{phone_id}"), Some(&token), None).await;
    assert_eq!(ended.status, 204, "{}", ended.body);
    let out = app.call("POST", "/api/v1/auth/logout", Some(&token), None).await;
    assert_eq!(out.status, 204);
    for signed_in in [&phone, &laptop] {
        let body = json!({"refreshToken": data(signed_in, "refreshToken")});
        let res = app.call("POST", "/api/v1/auth/refresh", None, Some(body)).await;
        assert_eq!(res.status, 401, "an ended session's refresh token is dead");
    }
    // A development token belongs to no session.
    let dev = app.call("POST", "/api/v1/auth/logout", Some(&app.admin_token()), None).await;
    assert_eq!((dev.status, dev.json["error"]["code"].clone()), (401, json!("auth.not_a_session")));
}

#[actix_web::test]
async fn bad_sign_in_input_is_refused_and_sign_in_is_limited_per_address() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "3/min".parse().unwrap()).await;
    let res = app.sign_in("not-an-email", PASSWORD, None).await;
    assert_eq!((res.status, res.json["error"]["code"].clone()), (422, json!("auth.invalid_email")));
    let extra = app.call(
        "POST",
        "/api/v1/auth/login",
        None,
        Some(json!({"email": "a@b.example", "password": "x", "admin": true})),
    );
    assert_eq!(extra.await.status, 422, "unknown fields are refused");
    let third = app.sign_in("a@b.example", "whatever-it-is", None).await;
    assert_eq!(third.status, 401);
    let fourth = app.sign_in("a@b.example", "whatever-it-is", None).await;
    assert_eq!((fourth.status, fourth.json["error"]["code"].clone()), (429, json!("rate_limit.exceeded")));
    assert!(fourth.header("retry-after").is_some());
}

#[actix_web::test]
async fn sign_in_refresh_and_reset_leave_no_secret_in_the_logs() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = tenant(&app, "acme").await;
    app.person("secretive.owner@acme.example", acme, Role::Owner).await;
    let signed_in = app.sign_in("secretive.owner@acme.example", PASSWORD, None).await;
    let wrong = app.sign_in("secretive.owner@acme.example", "Wr0ng-and-secret!", None).await;
    assert_eq!(wrong.status, 401);
    let body = json!({"refreshToken": data(&signed_in, "refreshToken")});
    let refreshed = app.call("POST", "/api/v1/auth/refresh", None, Some(body)).await;
    assert_eq!(refreshed.status, 200);
    let forgot = json!({"email": "secretive.owner@acme.example"});
    assert_eq!(app.call("POST", "/api/v1/auth/forgot-password", None, Some(forgot)).await.status, 202);
    let reset_token = app.emailed_token("secretive.owner@acme.example").await;
    let reset = json!({"token": reset_token, "password": "N3w-and-secret-too"});
    assert_eq!(app.call("POST", "/api/v1/auth/reset-password", None, Some(reset)).await.status, 204);
    let logs = crate::support::logs();
    assert!(logs.contains("signed in"), "the sign-in was logged");
    for secret in [
        PASSWORD.to_owned(),
        "Wr0ng-and-secret!".to_owned(),
        "secretive.owner@acme.example".to_owned(),
        data(&signed_in, "refreshToken"),
        data(&signed_in, "accessToken"),
        data(&refreshed, "refreshToken"),
        data(&refreshed, "accessToken"),
        reset_token,
        "N3w-and-secret-too".to_owned(),
    ] {
        assert!(!logs.contains(&secret), "the logs hold a secret or a full email");
    }
}

#[actix_web::test]
async fn a_suspended_tenants_people_can_sign_in_but_reach_nothing_else() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = tenant(&app, "acme").await;
    app.person("owner@acme.example", acme, Role::Owner).await;
    let token = data(&app.sign_in("owner@acme.example", PASSWORD, None).await, "accessToken");
    let read = |token: String| {
        let app = &app;
        async move { app.call("GET", &format!("/api/v1/tenants/{acme}"), Some(&token), None).await }
    };
    assert_eq!(read(token.clone()).await.status, 200);

    let admin = app.admin_token();
    app.call("POST", &format!("/api/v1/tenants/{acme}/suspend"), Some(&admin), None).await;
    let refused = read(token.clone()).await;
    assert_eq!(
        (refused.status, refused.json["error"]["code"].clone()),
        (403, json!("tenancy.tenant_suspended"))
    );
    let signed_in = app.sign_in("owner@acme.example", PASSWORD, None).await;
    assert_eq!(signed_in.status, 200, "signing in still works: {}", signed_in.body);
    assert_eq!(app.call("GET", "/api/v1/auth/me", Some(&token), None).await.status, 200);
    // The platform's staff still reach it, to reactivate it.
    let staff = app.call("GET", &format!("/api/v1/tenants/{acme}"), Some(&admin), None).await;
    assert_eq!(staff.json["data"]["status"], json!("SUSPENDED"));

    app.call("POST", &format!("/api/v1/tenants/{acme}/activate"), Some(&admin), None).await;
    assert_eq!(read(token).await.status, 200, "back in service at once");
}

#[actix_web::test]
async fn a_password_reset_is_single_use_ends_every_session_and_does_not_tell_who_exists() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = tenant(&app, "acme").await;
    app.person("owner@acme.example", acme, Role::Owner).await;
    let session = app.sign_in("owner@acme.example", PASSWORD, None).await;

    let ask = |email: &'static str| {
        let app = &app;
        async move {
            let started = std::time::Instant::now();
            let res =
                app.call("POST", "/api/v1/auth/forgot-password", None, Some(json!({"email": email}))).await;
            (res, started.elapsed())
        }
    };
    let (known, known_time) = ask("owner@acme.example").await;
    let (unknown, unknown_time) = ask("nobody@acme.example").await;
    assert_eq!((known.status, unknown.status), (202, 202));
    assert_eq!(known.body, unknown.body, "the same answer");
    for elapsed in [known_time, unknown_time] {
        assert!(elapsed >= std::time::Duration::from_millis(400), "both take the floor time: {elapsed:?}");
    }

    let token = app.emailed_token("owner@acme.example").await;
    let weak = app
        .call(
            "POST",
            "/api/v1/auth/reset-password",
            None,
            Some(json!({"token": token, "password": "password1"})),
        )
        .await;
    assert_eq!(weak.json["error"]["code"], json!("auth.weak_password"));
    let reset = json!({"token": token, "password": "a-brand-new-passphrase"});
    let done = app.call("POST", "/api/v1/auth/reset-password", None, Some(reset.clone())).await;
    assert_eq!(done.status, 204, "{}", done.body);
    assert_eq!(
        app.last_subject("owner@acme.example").await,
        "Your password was changed",
        "the person is told"
    );
    let again = app.call("POST", "/api/v1/auth/reset-password", None, Some(reset)).await;
    assert_eq!((again.status, again.json["error"]["code"].clone()), (422, json!("auth.invalid_link")));

    let body = json!({"refreshToken": data(&session, "refreshToken")});
    let refresh = app.call("POST", "/api/v1/auth/refresh", None, Some(body)).await;
    assert_eq!(refresh.status, 401, "the reset ended the session");
    assert_eq!(
        app.sign_in("owner@acme.example", PASSWORD, None).await.status,
        401,
        "the old password is gone"
    );
    assert_eq!(app.sign_in("owner@acme.example", "a-brand-new-passphrase", None).await.status, 200);
}

#[actix_web::test]
async fn an_address_is_confirmed_by_its_emailed_link_once() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = tenant(&app, "acme").await;
    let store = app.db.store().await;
    let user = store
        .create_user(portico_store::NewUser {
            email: portico_tenancy::Email::parse("new@acme.example").unwrap(),
            name: "New".into(),
            phone: None,
            status: portico_tenancy::UserStatus::Active,
            password_hash: Some(portico_tenancy::password::hash(PASSWORD).unwrap()),
            email_verified: false,
        })
        .await
        .unwrap();
    let ctx = portico_kernel::TenantContext {
        tenant_id: acme,
        actor: portico_kernel::Actor::system("test"),
        permissions: Default::default(),
        request_id: portico_kernel::RequestId::generate(),
        origin: portico_kernel::Origin::default(),
    };
    store.add_membership(&ctx, user.id, Role::Staff, portico_tenancy::MembershipKind::Staff).await.unwrap();
    let token = data(&app.sign_in("new@acme.example", PASSWORD, None).await, "accessToken");
    let me = |token: String| {
        let app = &app;
        async move {
            app.call("GET", "/api/v1/auth/me", Some(&token), None).await.json["data"]["user"]["emailVerified"]
                .clone()
        }
    };
    assert_eq!(me(token.clone()).await, json!(false));

    let sent = app.call("POST", "/api/v1/auth/send-verification", Some(&token), None).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let link = app.emailed_token("new@acme.example").await;
    let verified = app.call("POST", "/api/v1/auth/verify-email", None, Some(json!({"token": link}))).await;
    assert_eq!(verified.status, 204, "{}", verified.body);
    assert_eq!(me(token).await, json!(true));
    let reused = app.call("POST", "/api/v1/auth/verify-email", None, Some(json!({"token": link}))).await;
    assert_eq!((reused.status, reused.json["error"]["code"].clone()), (422, json!("auth.invalid_link")));
}

/// The `name=value` of each `Set-Cookie` of a response.
fn cookies(res: &crate::http::Response) -> Vec<(String, String)> {
    res.headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, value)| value.clone())
        .filter_map(|value| {
            let pair = value.split(';').next()?.to_owned();
            let (name, value) = pair.split_once('=')?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

fn cookie_header(cookies: &[(String, String)]) -> String {
    cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
}

#[actix_web::test]
async fn browser_mode_keeps_tokens_in_cookies_and_wants_the_csrf_header_on_changes() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = tenant(&app, "acme").await;
    app.person("owner@acme.example", acme, Role::Owner).await;
    let body = json!({"email": "owner@acme.example", "password": PASSWORD, "mode": "cookie"});
    let signed_in = app.call("POST", "/api/v1/auth/login", None, Some(body)).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    assert!(!signed_in.body.contains("accessToken") && !signed_in.body.contains("refreshToken"));
    let csrf = data(&signed_in, "csrfToken");
    let jar = cookies(&signed_in);
    let names: Vec<&str> = jar.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["__Host-portico-access", "__Host-portico-refresh", "__Host-portico-csrf"]);
    let raw: Vec<&String> =
        signed_in.headers.iter().filter(|(n, _)| n == "set-cookie").map(|(_, v)| v).collect();
    assert!(raw[0].contains("HttpOnly") && raw[0].contains("Secure") && raw[0].contains("SameSite=Strict"));
    assert_eq!(jar[2].1, csrf, "the CSRF cookie holds the same token");

    let cookie = cookie_header(&jar);
    let read =
        app.call_with("GET", &format!("/api/v1/tenants/{acme}"), None, &[("Cookie", &cookie)], None).await;
    assert_eq!(read.status, 200, "a read needs no CSRF header: {}", read.body);
    let rename = json!({"name": "Acme Renamed", "contactEmail": "ops@acme.example"}).to_string().into_bytes();
    let path = format!("/api/v1/tenants/{acme}");
    let forged = app.call_with("PUT", &path, None, &[("Cookie", &cookie)], Some(rename.clone())).await;
    assert_eq!((forged.status, forged.json["error"]["code"].clone()), (403, json!("auth.csrf_failed")));
    let wrong = [("Cookie", cookie.as_str()), ("X-CSRF-Token", "0000")];
    assert_eq!(app.call_with("PUT", &path, None, &wrong, Some(rename.clone())).await.status, 403);
    let right = [("Cookie", cookie.as_str()), ("X-CSRF-Token", csrf.as_str())];
    let changed = app.call_with("PUT", &path, None, &right, Some(rename)).await;
    assert_eq!(changed.status, 200, "{}", changed.body);

    // Refresh from the cookie (with the CSRF header): new cookies; the old refresh cookie is spent.
    let no_header = app
        .call_with("POST", "/api/v1/auth/refresh", None, &[("Cookie", &cookie)], Some(b"{}".to_vec()))
        .await;
    assert_eq!(no_header.status, 403);
    let refreshed = app.call_with("POST", "/api/v1/auth/refresh", None, &right, Some(b"{}".to_vec())).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let fresh = cookies(&refreshed);
    assert_ne!(fresh[1].1, jar[1].1, "a new refresh token");
    let fresh_csrf = data(&refreshed, "csrfToken");
    // Once the access cookie has expired, signing out still works with the refresh cookie.
    let without_access: Vec<(String, String)> =
        fresh.iter().filter(|(name, _)| name != "__Host-portico-access").cloned().collect();
    let idle = cookie_header(&without_access);
    let no_csrf = app.call_with("POST", "/api/v1/auth/logout", None, &[("Cookie", &idle)], None).await;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.body);
    let idle_out = app
        .call_with(
            "POST",
            "/api/v1/auth/logout",
            None,
            &[("Cookie", &idle), ("X-CSRF-Token", &fresh_csrf)],
            None,
        )
        .await;
    assert_eq!(idle_out.status, 204, "{}", idle_out.body);
    let gone = app
        .call_with(
            "POST",
            "/api/v1/auth/refresh",
            None,
            &[("Cookie", &idle), ("X-CSRF-Token", &fresh_csrf)],
            Some(b"{}".to_vec()),
        )
        .await;
    assert_eq!(gone.status, 401, "the session ended");
    // Signing in again, then out with a live access cookie: the cookies are cleared.
    let body = json!({"email": "owner@acme.example", "password": PASSWORD, "mode": "cookie"});
    let again = app.call("POST", "/api/v1/auth/login", None, Some(body)).await;
    let fresh = cookies(&again);
    let fresh_cookie = cookie_header(&fresh);
    let fresh_csrf = data(&again, "csrfToken");
    let signed_out = app
        .call_with(
            "POST",
            "/api/v1/auth/logout",
            None,
            &[("Cookie", &fresh_cookie), ("X-CSRF-Token", &fresh_csrf)],
            None,
        )
        .await;
    assert_eq!(signed_out.status, 204, "{}", signed_out.body);
    assert!(cookies(&signed_out).iter().all(|(_, v)| v.is_empty()), "the cookies are cleared");
}

/// Turns MFA on for the holder of `token` (confirming with the previous
/// step's code); the secret and the recovery codes.
pub async fn enable_mfa(app: &TestApp, token: &str) -> (Vec<u8>, Vec<String>) {
    let wrong = json!({"password": "not-my-password"});
    let refused = app.call("POST", "/api/v1/auth/mfa/setup", Some(token), Some(wrong)).await;
    assert_eq!(refused.status, 401, "setting up MFA takes the password again");
    let setup =
        app.call("POST", "/api/v1/auth/mfa/setup", Some(token), Some(json!({"password": PASSWORD}))).await;
    assert_eq!(setup.status, 200, "{}", setup.body);
    let secret = crate::support::base32_decode(&data(&setup, "secret"));
    assert!(data(&setup, "otpauthUri").starts_with("otpauth://totp/Portico:"));
    let wrong =
        app.call("POST", "/api/v1/auth/mfa/verify", Some(token), Some(json!({"code": "000000"}))).await;
    assert_eq!(wrong.json["error"]["code"], json!("auth.invalid_mfa_code"));
    let code = crate::support::code_at(&secret, -1).await;
    let on = app.call("POST", "/api/v1/auth/mfa/verify", Some(token), Some(json!({"code": code}))).await;
    assert_eq!(on.status, 200, "{}", on.body);
    let codes: Vec<String> = on.json["data"]["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

#[actix_web::test]
async fn with_mfa_on_sign_in_needs_a_code_each_code_works_once_and_reset_does_not_bypass_it() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = tenant(&app, "acme").await;
    app.person("owner@acme.example", acme, Role::Owner).await;
    let token = data(&app.sign_in("owner@acme.example", PASSWORD, None).await, "accessToken");
    let (secret, recovery) = enable_mfa(&app, &token).await;
    let again =
        app.call("POST", "/api/v1/auth/mfa/setup", Some(&token), Some(json!({"password": PASSWORD}))).await;
    assert_eq!(again.json["error"]["code"], json!("auth.mfa_already_enabled"));

    let password_ok = app.sign_in("owner@acme.example", PASSWORD, None).await;
    assert_eq!(password_ok.status, 202, "{}", password_ok.body);
    assert!(!password_ok.body.contains("accessToken"), "no tokens before the second factor");
    let challenge = data(&password_ok, "challenge");
    let verify = |challenge: String, code: String| {
        let app = &app;
        async move {
            app.call(
                "POST",
                "/api/v1/auth/mfa/verify",
                None,
                Some(json!({"challenge": challenge, "code": code})),
            )
            .await
        }
    };
    // The code that confirmed the set-up is spent.
    let spent = verify(challenge.clone(), crate::support::code_at(&secret, -1).await).await;
    assert_eq!((spent.status, spent.json["error"]["code"].clone()), (401, json!("auth.invalid_mfa_code")));
    let code = crate::support::code_at(&secret, 0).await;
    let signed_in = verify(challenge.clone(), code.clone()).await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);
    assert_eq!(signed_in.json["data"]["tenant"]["slug"], json!("acme"));
    assert_eq!(verify(challenge.clone(), code).await.status, 401, "a used code is refused");
    let next = crate::support::code_at(&secret, 1).await;
    let replayed = verify(challenge.clone(), next).await;
    assert_eq!(
        replayed.json["error"]["code"],
        json!("auth.challenge_used"),
        "a challenge completes one sign-in"
    );
    // A challenge is no access token.
    let misuse = app.call("GET", &format!("/api/v1/tenants/{acme}"), Some(&challenge), None).await;
    assert_eq!(misuse.status, 401);

    // A recovery code works once.
    let challenge = data(&app.sign_in("owner@acme.example", PASSWORD, None).await, "challenge");
    let with_recovery = verify(challenge.clone(), recovery[0].to_uppercase()).await;
    assert_eq!(with_recovery.status, 200, "{}", with_recovery.body);
    let challenge = data(&app.sign_in("owner@acme.example", PASSWORD, None).await, "challenge");
    assert_eq!(verify(challenge.clone(), recovery[0].clone()).await.status, 401);

    // A password reset leaves MFA on.
    app.call("POST", "/api/v1/auth/forgot-password", None, Some(json!({"email": "owner@acme.example"})))
        .await;
    let reset =
        json!({"token": app.emailed_token("owner@acme.example").await, "password": "a-brand-new-passphrase"});
    assert_eq!(app.call("POST", "/api/v1/auth/reset-password", None, Some(reset)).await.status, 204);
    let after_reset = app.sign_in("owner@acme.example", "a-brand-new-passphrase", None).await;
    assert_eq!(after_reset.status, 202, "still a second factor: {}", after_reset.body);
}

#[actix_web::test]
async fn mfa_is_turned_off_only_with_a_current_code() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = tenant(&app, "acme").await;
    app.person("owner@acme.example", acme, Role::Owner).await;
    let token = data(&app.sign_in("owner@acme.example", PASSWORD, None).await, "accessToken");
    let (secret, _) = enable_mfa(&app, &token).await;
    let off = |code: &str| {
        let app = &app;
        let token = token.clone();
        let body = json!({"code": code, "password": PASSWORD});
        async move { app.call("POST", "/api/v1/auth/mfa/disable", Some(&token), Some(body)).await }
    };
    assert_eq!(off("123456").await.status, 401);
    assert_eq!(off(&crate::support::code_at(&secret, 0).await).await.status, 204);
    assert_eq!(app.last_subject("owner@acme.example").await, "Two-step sign-in was turned off");
    assert_eq!(
        app.sign_in("owner@acme.example", PASSWORD, None).await.status,
        200,
        "a password is enough again"
    );
    let again = off(&crate::support::code_at(&secret, 1).await).await;
    assert_eq!(again.json["error"]["code"], json!("auth.mfa_not_set_up"));
}

#[actix_web::test]
async fn parallel_guesses_are_counted_and_another_network_is_not_held_back() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limits.auth = "100/min".parse().unwrap();
        s.trusted_proxies = serde_json::from_value(json!(["127.0.0.1/32"])).unwrap();
    })
    .await;
    let acme = tenant(&app, "acme").await;
    app.person("owner@acme.example", acme, Role::Owner).await;
    let guess = |from: &'static str| {
        let app = &app;
        let body =
            json!({"email": "owner@acme.example", "password": "a-wrong-guess"}).to_string().into_bytes();
        async move {
            app.call_with("POST", "/api/v1/auth/login", None, &[("X-Forwarded-For", from)], Some(body))
                .await
                .status
        }
    };
    let statuses = futures_util::future::join_all((0..12).map(|_| guess("198.51.100.7"))).await;
    let tried = statuses.iter().filter(|s| **s == 401).count();
    assert!((1..=5).contains(&tried), "at most five guesses checked before the delay: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 12 - tried);
    // The owner, signing in from elsewhere, is not locked out by the attacker.
    let owner = app
        .call_with(
            "POST",
            "/api/v1/auth/login",
            None,
            &[("X-Forwarded-For", "203.0.113.20")],
            Some(json!({"email": "owner@acme.example", "password": PASSWORD}).to_string().into_bytes()),
        )
        .await;
    assert_eq!(owner.status, 200, "{}", owner.body);
}

/// Calls until the answer is `status` (an ended session reaches every
/// instance's cache within milliseconds), at most two seconds.
async fn until_status(app: &TestApp, token: &str, path: &str, status: u16) -> crate::http::Response {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let res = app.call("GET", path, Some(token), None).await;
        if res.status == status || std::time::Instant::now() > deadline {
            return res;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn an_ended_session_stops_its_access_tokens_at_once() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = tenant(&app, "acme").await;
    app.person("owner@acme.example", acme, Role::Owner).await;
    let path = format!("/api/v1/tenants/{acme}");

    let token = data(&app.sign_in("owner@acme.example", PASSWORD, None).await, "accessToken");
    assert_eq!(app.call("GET", &path, Some(&token), None).await.status, 200);
    assert_eq!(app.call("POST", "/api/v1/auth/logout", Some(&token), None).await.status, 204);
    let after = until_status(&app, &token, &path, 401).await;
    assert_eq!((after.status, after.json["error"]["code"].clone()), (401, json!("auth.session_ended")));

    let other = data(&app.sign_in("owner@acme.example", PASSWORD, None).await, "accessToken");
    assert_eq!(app.call("GET", &path, Some(&other), None).await.status, 200);
    app.call("POST", "/api/v1/auth/forgot-password", None, Some(json!({"email": "owner@acme.example"})))
        .await;
    let reset =
        json!({"token": app.emailed_token("owner@acme.example").await, "password": "a-brand-new-passphrase"});
    assert_eq!(app.call("POST", "/api/v1/auth/reset-password", None, Some(reset)).await.status, 204);
    assert_eq!(
        until_status(&app, &other, &path, 401).await.status,
        401,
        "a reset ends every session's tokens"
    );
}

#[actix_web::test]
async fn the_permission_catalogue_shows_platform_permissions_to_platform_staff_only() {
    let app = TestApp::spawn().await;
    let acme = tenant(&app, "acme").await;
    let names = |res: &crate::http::Response| -> Vec<String> {
        res.json["data"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect()
    };
    let owner = app.user_token(acme, &["roles:read"]);
    let theirs = app.call("GET", "/api/v1/rbac/permissions", Some(&owner), None).await;
    assert_eq!(theirs.status, 200, "{}", theirs.body);
    assert!(names(&theirs).contains(&"tenants:write".to_owned()));
    assert!(!names(&theirs).iter().any(|n| n.starts_with("platform:")), "{}", theirs.body);
    let staff = app.call("GET", "/api/v1/rbac/permissions", Some(&app.admin_token()), None).await;
    assert!(names(&staff).contains(&"platform:tenants:write".to_owned()));
    assert!(staff.json["data"][0]["description"].is_string());
    let without = app.user_token(acme, &["tenants:read"]);
    assert_eq!(app.call("GET", "/api/v1/rbac/permissions", Some(&without), None).await.status, 403);
}

#[actix_web::test]
async fn roles_change_from_the_next_refresh_and_a_tenant_keeps_an_owner() {
    let app = TestApp::spawn_with(|s| s.rate_limits.auth = "100/min".parse().unwrap()).await;
    let acme = tenant(&app, "acme").await;
    let globex = tenant(&app, "globex").await;
    let owner_id = app.person("owner@acme.example", acme, Role::Owner).await;
    let staff_id = app.person("staff@acme.example", acme, Role::Staff).await;
    app.person("owner@globex.example", globex, Role::Owner).await;
    let store = app.db.store().await;
    let membership = |user| {
        let store = store.clone();
        async move { store.memberships_of(user).await.unwrap()[0].id.to_string() }
    };
    let (owner_m, staff_m) = (membership(owner_id).await, membership(staff_id).await);
    let owner = data(&app.sign_in("owner@acme.example", PASSWORD, None).await, "accessToken");
    let staff = app.sign_in("staff@acme.example", PASSWORD, None).await;
    let put = |token: String, id: String, role: &'static str| {
        let app = &app;
        async move {
            app.call(
                "PUT",
                &format!("/api/v1/memberships/{id}/role"),
                Some(&token),
                Some(json!({"role": role})),
            )
            .await
        }
    };

    let promoted = put(owner.clone(), staff_m.clone(), "ADMIN").await;
    assert_eq!(
        (promoted.status, promoted.json["data"]["role"].clone()),
        (200, json!("ADMIN")),
        "{}",
        promoted.body
    );
    let body = json!({"refreshToken": data(&staff, "refreshToken")});
    let refreshed = app.call("POST", "/api/v1/auth/refresh", None, Some(body)).await;
    assert_eq!(refreshed.json["data"]["role"], json!("admin"), "from the next refresh");
    assert!(refreshed.json["data"]["permissions"].as_array().unwrap().contains(&json!("tenants:write")));

    // The only owner cannot step down; once there is another, they can.
    let alone = put(owner.clone(), owner_m.clone(), "ADMIN").await;
    assert_eq!((alone.status, alone.json["error"]["code"].clone()), (409, json!("memberships.last_owner")));
    assert_eq!(put(owner.clone(), staff_m.clone(), "OWNER").await.status, 200);
    assert_eq!(put(owner.clone(), owner_m.clone(), "ADMIN").await.status, 200);

    // Platform roles stay in the platform tenant; another tenant's membership is not found.
    let platform = put(owner.clone(), staff_m.clone(), "PLATFORM_ADMIN").await;
    let new_owner = data(&app.sign_in("staff@acme.example", PASSWORD, None).await, "accessToken");
    let platform_again = put(new_owner.clone(), owner_m.clone(), "PLATFORM_ADMIN").await;
    assert_eq!(
        platform_again.json["error"]["code"],
        json!("memberships.role_not_allowed"),
        "{}",
        platform.body
    );
    let globex_id = store
        .credentials(&portico_tenancy::Email::parse("owner@globex.example").unwrap())
        .await
        .unwrap()
        .unwrap()
        .user
        .id;
    let theirs = put(new_owner.clone(), membership(globex_id).await, "VIEWER").await;
    assert_eq!((theirs.status, theirs.json["error"]["code"].clone()), (404, json!("memberships.not_found")));
    let unknown_role = put(new_owner, owner_m, "EMPEROR").await;
    assert_eq!(unknown_role.status, 422);
}
