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
