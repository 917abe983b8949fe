//! Liveness and readiness, with the server in process on port 0.

use portico_store::{Admin, revert_all_migrations};
use serde_json::json;

use crate::support::TestApp;

#[actix_web::test]
async fn live_and_ready_answer_200_on_a_migrated_database() {
    let app = TestApp::spawn().await;

    let live = app.call("GET", "/health/live", None, None).await;
    assert_eq!((live.status, live.json), (200, json!({"success": true, "data": {"status": "live"}})));
    let ready = app.call("GET", "/health/ready", None, None).await;
    assert_eq!(ready.status, 200);
    assert_eq!(
        ready.json["data"],
        json!({"status": "ready", "database": "reachable", "migrations": "current"})
    );
}

#[actix_web::test]
async fn ready_answers_503_when_the_schema_is_behind() {
    let app = TestApp::spawn().await;
    revert_all_migrations(&app.db.urls.owner).await.unwrap();

    let ready = app.call("GET", "/health/ready", None, None).await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json["success"], json!(false));
    assert_eq!(ready.json["error"]["statusCode"], json!(503));
    assert_eq!(ready.json["error"]["code"], json!("health.migrations_pending"), "{}", ready.json);
    assert!(ready.json["error"]["requestId"].is_string());
}

#[actix_web::test]
async fn ready_answers_503_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    Admin::connect(app.db.admin_url()).await.unwrap().drop_database(app.db.name()).await.unwrap();

    let ready = app.call("GET", "/health/ready", None, None).await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json["error"]["code"], json!("health.database_unreachable"), "{}", ready.json);
    assert!(!ready.json.to_string().contains("portico_app"), "no internals in the body: {}", ready.json);
    let live = app.call("GET", "/health/live", None, None).await;
    assert_eq!(live.status, 200, "liveness does not depend on the database");
}

#[actix_web::test]
async fn metrics_count_requests_by_route_template_and_show_the_pools() {
    let app = TestApp::spawn().await;
    let token = app.admin_token();
    let missing = portico_kernel::TenantId::new();
    app.call("GET", &format!("/api/v1/tenants/{missing}"), Some(&token), None).await;
    app.call("GET", "/api/v1/tenants", Some(&token), None).await;
    app.call("GET", "/no/such/path", None, None).await;

    let scraped = app.call("GET", "/metrics", None, None).await;
    assert_eq!(scraped.status, 200);
    assert!(scraped.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = scraped.body;
    assert!(
        text.contains(
            r#"portico_http_requests_total{method="GET",route="/api/v1/tenants/{id}",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"portico_http_requests_total{method="GET",route="/api/v1/tenants",status="200"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched",status="404"} 1"#), "unknown paths share one series: {text}");
    assert!(!text.contains(&missing.to_string()), "ids never become labels");
    assert!(
        text.contains(
            r#"portico_http_request_duration_seconds_count{method="GET",route="/api/v1/tenants"} 1"#
        )
    );
    assert!(text.contains(r#"portico_db_pool_connections{pool="app",state="idle"}"#));
    assert!(text.contains(r#"portico_db_pool_waiting{pool="platform"} 0"#));
}
