//! HTTP hygiene: CORS allow-list, security headers, compression.

use crate::support::{PORTAL, TestApp};

#[actix_web::test]
async fn an_allowed_origin_gets_cors_headers_and_others_do_not() {
    let app = TestApp::spawn().await;
    let preflight = app
        .call_with(
            "OPTIONS",
            "/api/v1/tenants",
            None,
            &[
                ("Origin", PORTAL),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "authorization,content-type"),
            ],
            None,
        )
        .await;
    assert_eq!(preflight.status, 200, "{}", preflight.body);
    assert_eq!(preflight.header("access-control-allow-origin"), Some(PORTAL));
    assert_eq!(preflight.header("access-control-allow-credentials"), Some("true"));

    let simple = app.call_with("GET", "/health/live", None, &[("Origin", PORTAL)], None).await;
    assert_eq!(simple.header("access-control-allow-origin"), Some(PORTAL));
    assert!(simple.header("access-control-expose-headers").unwrap_or("").contains("x-request-id"));

    let stranger =
        app.call_with("GET", "/health/live", None, &[("Origin", "https://evil.example")], None).await;
    assert_eq!(stranger.header("access-control-allow-origin"), None);
}

#[actix_web::test]
async fn every_answer_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    for path in ["/health/live", "/api/v1/tenants", "/nowhere"] {
        let res = app.call("GET", path, None, None).await;
        assert_eq!(res.header("x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(res.header("referrer-policy"), Some("no-referrer"), "{path}");
        assert_eq!(res.header("x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            res.header("content-security-policy"),
            Some("default-src 'none'; frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(res.header("strict-transport-security"), None, "HSTS only in production");
    }
}

#[actix_web::test]
async fn answers_are_compressed_when_the_client_accepts_it() {
    let app = TestApp::spawn().await;
    let token = app.admin_token();
    for encoding in ["gzip", "br"] {
        let res = app
            .call_with("GET", "/api/v1/tenants", Some(&token), &[("Accept-Encoding", encoding)], None)
            .await;
        assert_eq!(res.status, 200);
        assert_eq!(res.header("content-encoding"), Some(encoding));
    }
    let plain = app.call("GET", "/api/v1/tenants", Some(&token), None).await;
    assert_eq!(plain.header("content-encoding"), None);
}

#[actix_web::test]
async fn a_refused_preflight_and_a_missing_docs_asset_still_answer_with_the_envelope() {
    let app = TestApp::spawn().await;
    let refused = app
        .call_with(
            "OPTIONS",
            "/api/v1/tenants",
            None,
            &[
                ("Origin", PORTAL),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "x-not-allowed"),
            ],
            None,
        )
        .await;
    assert!(refused.status >= 400, "{}", refused.body);
    assert_eq!(refused.json["success"], serde_json::json!(false), "{}", refused.body);
    assert_eq!(refused.header("x-content-type-options"), Some("nosniff"));

    let preflight = app
        .call_with(
            "OPTIONS",
            "/api/v1/public/tenant",
            None,
            &[
                ("Origin", PORTAL),
                ("Access-Control-Request-Method", "GET"),
                ("Access-Control-Request-Headers", "x-tenant-slug"),
            ],
            None,
        )
        .await;
    assert_eq!(preflight.status, 200, "public pages may send X-Tenant-Slug: {}", preflight.body);

    let missing = app.call("GET", "/docs/no-such-asset.js", None, None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json["error"]["code"], serde_json::json!("http.route_not_found"), "{}", missing.body);
}

#[actix_web::test]
async fn wrong_methods_get_405_with_allow_and_docs_redirects() {
    let app = TestApp::spawn().await;
    let res =
        app.call("PATCH", &format!("/api/v1/tenants/{}", portico_kernel::TenantId::new()), None, None).await;
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("GET, PUT, DELETE"));
    let docs = app.call("GET", "/docs", None, None).await;
    assert_eq!((docs.status, docs.header("location")), (308, Some("/docs/")));
}

#[actix_web::test]
async fn production_answers_carry_hsts() {
    use portico_bff::server::{self, Settings};
    let db = portico_testkit::TestDb::new().await;
    let settings =
        Settings { hsts: true, ..Settings::local(portico_bff::auth::TokenKeys::new(crate::support::SECRET)) };
    let running = server::start(db.store().await, &settings).unwrap();
    let (addr, handle) = (running.addr, running.handle.clone());
    actix_web::rt::spawn(running.server);
    let res = tokio::task::spawn_blocking(move || crate::http::get(addr, "/health/live")).await.unwrap();
    assert_eq!(res.header("strict-transport-security"), Some("max-age=31536000; includeSubDomains"));
    handle.stop(false).await;
}
