//! Liveness and readiness, with the server in process on port 0.

use portico_bff::server;
use portico_store::{Admin, revert_all_migrations};
use portico_testkit::TestDb;
use serde_json::json;

use crate::http::get;

async fn get_async(addr: std::net::SocketAddr, path: &'static str) -> crate::http::Response {
    tokio::task::spawn_blocking(move || get(addr, path)).await.unwrap()
}

#[actix_web::test]
async fn live_and_ready_answer_200_on_a_migrated_database() {
    let db = TestDb::new().await;
    let running = server::start("127.0.0.1:0".parse().unwrap(), db.store().await).unwrap();
    let stop = running.handle.clone();
    actix_web::rt::spawn(running.server);

    let live = get_async(running.addr, "/health/live").await;
    assert_eq!((live.status, live.json), (200, json!({"success": true, "data": {"status": "live"}})));
    let ready = get_async(running.addr, "/health/ready").await;
    assert_eq!(ready.status, 200);
    assert_eq!(
        ready.json["data"],
        json!({"status": "ready", "database": "reachable", "migrations": "current"})
    );
    stop.stop(true).await;
}

#[actix_web::test]
async fn ready_answers_503_when_the_schema_is_behind() {
    let db = TestDb::new().await;
    let running = server::start("127.0.0.1:0".parse().unwrap(), db.store().await).unwrap();
    let stop = running.handle.clone();
    actix_web::rt::spawn(running.server);
    revert_all_migrations(&db.urls.owner).await.unwrap();

    let ready = get_async(running.addr, "/health/ready").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json["success"], json!(false));
    assert_eq!(ready.json["error"]["statusCode"], json!(503));
    assert_eq!(ready.json["error"]["code"], json!("health.migrations_pending"), "{}", ready.json);
    assert!(ready.json["error"]["requestId"].is_string());
    stop.stop(true).await;
}

#[actix_web::test]
async fn ready_answers_503_when_the_database_is_gone() {
    let db = TestDb::new().await;
    let running = server::start("127.0.0.1:0".parse().unwrap(), db.store().await).unwrap();
    let stop = running.handle.clone();
    actix_web::rt::spawn(running.server);
    Admin::connect(db.admin_url()).await.unwrap().drop_database(db.name()).await.unwrap();

    let ready = get_async(running.addr, "/health/ready").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json["error"]["code"], json!("health.database_unreachable"), "{}", ready.json);
    assert!(!ready.json.to_string().contains("portico_app"), "no internals in the body: {}", ready.json);
    let live = get_async(running.addr, "/health/live").await;
    assert_eq!(live.status, 200, "liveness does not depend on the database");
    stop.stop(true).await;
}
