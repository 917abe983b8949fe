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
