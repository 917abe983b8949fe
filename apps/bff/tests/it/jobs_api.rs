//! The jobs admin API and job metrics.

use std::time::Duration;

use portico_kernel::{JobKind, NewJob, PLATFORM_TENANT_ID, PlatformContext};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::support::TestApp;

#[derive(Serialize, Deserialize)]
struct Fragile;

impl JobKind for Fragile {
    const KIND: &'static str = "test.fragile";
    const MAX_ATTEMPTS: i32 = 1;
}

/// The address platform email is sent from in these tests.
pub fn sender_address() -> portico_kernel::Mailbox {
    portico_kernel::Mailbox::named("Portico", "no-reply@portico.localhost")
}

/// A dead job with an error, and a queued one; returns the dead one's id.
async fn dead_and_queued(app: &TestApp) -> portico_kernel::JobId {
    let store = app.db.store().await;
    let platform = PlatformContext::system("test");
    let dead = store.enqueue_platform(&platform, NewJob::of(&Fragile).unwrap()).await.unwrap().unwrap();
    let claimed = store.claim_jobs(1, Duration::from_secs(30)).await.unwrap().pop().unwrap();
    store.fail_job(&claimed, "smtp said no to carol@example.com", Some(Duration::ZERO)).await.unwrap();
    store.enqueue_platform(&platform, NewJob::of(&Fragile).unwrap().unique("second")).await.unwrap();
    dead
}

#[actix_web::test]
async fn platform_staff_see_the_queue_and_its_dead_jobs() {
    let app = TestApp::spawn().await;
    let dead = dead_and_queued(&app).await;
    let res = app.call("GET", "/api/v1/admin/jobs", Some(&app.admin_token()), None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let counts = res.json["data"]["counts"].as_array().unwrap();
    let count = |state: &str| counts.iter().find(|c| c["state"] == state).map(|c| c["jobs"].clone());
    assert_eq!((count("dead"), count("queued")), (Some(json!(1)), Some(json!(1))));
    let dead_jobs = res.json["data"]["dead"].as_array().unwrap();
    assert_eq!(dead_jobs[0]["id"], json!(dead.to_string()));
    assert_eq!(dead_jobs[0]["lastError"], json!("smtp said no to c***@example.com"), "stored masked");
}

#[actix_web::test]
async fn tenants_cannot_see_or_touch_the_queue() {
    let app = TestApp::spawn().await;
    let dead = dead_and_queued(&app).await;
    let created = app
        .call(
            "POST",
            "/api/v1/tenants",
            Some(&app.admin_token()),
            Some(json!({"name": "A", "slug": "acme", "contactEmail": "a@b.example"})),
        )
        .await;
    let acme = created.json["data"]["id"].as_str().unwrap().parse().unwrap();
    let forged = app.user_token(acme, &["platform:jobs:read", "platform:jobs:write"]);
    let list = app.call("GET", "/api/v1/admin/jobs", Some(&forged), None).await;
    assert_eq!((list.status, list.json["error"]["code"].clone()), (403, json!("auth.permission_denied")));
    assert!(!list.body.contains("test.fragile"));
    let retry = app.call("POST", &format!("/api/v1/admin/jobs/{dead}/retry"), Some(&forged), None).await;
    assert_eq!(retry.status, 403);
    assert_eq!(app.call("GET", "/api/v1/admin/jobs", None, None).await.status, 401);
}

#[actix_web::test]
async fn a_dead_job_is_retried_once_and_the_retry_is_audited() {
    let app = TestApp::spawn().await;
    let dead = dead_and_queued(&app).await;
    let admin = app.admin_token();
    let res = app.call("POST", &format!("/api/v1/admin/jobs/{dead}/retry"), Some(&admin), None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.json["data"], json!({"id": dead.to_string(), "state": "queued"}));

    let store = app.db.store().await;
    let claimed = store.claim_jobs(10, Duration::from_secs(30)).await.unwrap();
    let again = claimed.iter().find(|j| j.id() == dead).expect("claimable again");
    assert_eq!(again.attempts, 1, "fresh attempts");

    let twice = app.call("POST", &format!("/api/v1/admin/jobs/{dead}/retry"), Some(&admin), None).await;
    assert_eq!((twice.status, twice.json["error"]["code"].clone()), (409, json!("jobs.not_dead")));
    let unknown = app
        .call(
            "POST",
            &format!("/api/v1/admin/jobs/{}/retry", portico_kernel::JobId::new()),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!((unknown.status, unknown.json["error"]["code"].clone()), (404, json!("jobs.not_found")));
    let malformed = app.call("POST", "/api/v1/admin/jobs/nope/retry", Some(&admin), None).await;
    assert_eq!(malformed.status, 400);

    use diesel_async::{AsyncConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        action: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        actor_tenant_id: Option<String>,
    }
    let mut conn = diesel_async::AsyncPgConnection::establish(&app.db.urls.platform).await.unwrap();
    let rows: Vec<Row> =
        diesel::sql_query("SELECT action, actor_tenant_id::text FROM audit_log WHERE resource_type = 'job'")
            .load(&mut conn)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].action.as_str(), rows[0].actor_tenant_id.clone()),
        ("job.retry", Some(PLATFORM_TENANT_ID.to_string()))
    );
}

#[actix_web::test]
async fn metrics_show_the_queue() {
    let app = TestApp::spawn().await;
    dead_and_queued(&app).await;
    let text = app.call("GET", "/metrics", None, None).await.body;
    assert!(text.contains(r#"portico_jobs{kind="test.fragile",state="queued"} 1"#), "{text}");
    assert!(text.contains(r#"portico_jobs{kind="test.fragile",state="dead"} 1"#), "{text}");
    assert!(text.contains(r#"portico_jobs_failed{kind="test.fragile",state="dead"} 1"#), "{text}");
    assert!(text.contains(r#"portico_jobs_oldest_due_seconds{kind="test.fragile"}"#), "{text}");
}

#[actix_web::test]
async fn an_email_job_goes_through_a_worker_into_the_development_mailbox() {
    use std::sync::Arc;
    let app = TestApp::spawn().await;
    let store = app.db.store().await;
    let message = portico_kernel::EmailMessage {
        from: portico_kernel::Mailbox::named("Portico", "no-reply@portico.localhost"),
        to: vec![portico_kernel::Mailbox::address("owner@acme.example")],
        reply_to: None,
        subject: "Your invitation".into(),
        html: "<p>Welcome</p>".into(),
        text: "Welcome".into(),
        message_id: None,
    };
    let job = NewJob::of(&portico_kernel::SendEmail { message }).unwrap();
    store.enqueue_platform(&PlatformContext::system("test"), job).await.unwrap();

    let sender = Arc::new(portico_smtp::FileMailbox::new(&app.mailbox));
    let registry = portico_bff::jobs::registry(&store, sender, sender_address());
    let config =
        portico_worker::WorkerConfig { poll_interval: Duration::from_millis(100), ..Default::default() };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker =
        actix_web::rt::spawn(portico_worker::Worker::new(store.clone(), registry, config).run(async {
            let _ = stopped.await;
        }));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let inbox = loop {
        let res = app.call("GET", "/api/v1/dev/mailbox", None, None).await;
        if res.json["data"].as_array().is_some_and(|m| !m.is_empty()) {
            break res;
        }
        assert!(std::time::Instant::now() < deadline, "no email arrived: {}", res.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.send(()).unwrap();
    worker.await.unwrap();
    assert_eq!(inbox.json["data"][0]["message"]["subject"], json!("Your invitation"));
    let id = inbox.json["data"][0]["message"]["messageId"].as_str().unwrap().to_owned();
    assert!(id.starts_with('<') && id.ends_with("@portico>"), "named after the job: {id}");
    assert_eq!(inbox.json["data"][0]["message"]["to"][0]["address"], json!("owner@acme.example"));
}

#[actix_web::test]
async fn the_development_mailbox_is_404_when_not_enabled() {
    use portico_bff::server::{self, Settings};
    let db = portico_testkit::TestDb::new().await;
    let settings = Settings::local(portico_bff::auth::TokenKeys::new(crate::support::SECRET));
    let running = server::start(db.store().await, &settings).unwrap();
    let (addr, handle) = (running.addr, running.handle.clone());
    actix_web::rt::spawn(running.server);
    let res =
        tokio::task::spawn_blocking(move || crate::http::get(addr, "/api/v1/dev/mailbox")).await.unwrap();
    assert_eq!((res.status, res.json["error"]["code"].clone()), (404, json!("http.route_not_found")));
    handle.stop(false).await;
}

#[actix_web::test]
async fn pruning_is_refused_outside_the_platform_tenant() {
    let app = TestApp::spawn().await;
    let store = app.db.store().await;
    let created = app
        .call(
            "POST",
            "/api/v1/tenants",
            Some(&app.admin_token()),
            Some(json!({"name": "A", "slug": "acme", "contactEmail": "a@b.example"})),
        )
        .await;
    let acme: portico_kernel::TenantId = created.json["data"]["id"].as_str().unwrap().parse().unwrap();
    let ctx = portico_kernel::TenantContext {
        tenant_id: acme,
        actor: portico_kernel::Actor::system("test"),
        permissions: Default::default(),
        request_id: portico_kernel::RequestId::generate(),
        origin: portico_kernel::Origin::default(),
    };
    let prune = portico_bff::jobs::PruneJobs { succeeded_days: 0, dead_days: 0 };
    store.enqueue(&ctx, NewJob::of(&prune).unwrap()).await.unwrap();
    let registry = portico_bff::jobs::registry(
        &store,
        std::sync::Arc::new(portico_smtp::FileMailbox::new(&app.mailbox)),
        sender_address(),
    );
    let config =
        portico_worker::WorkerConfig { poll_interval: Duration::from_millis(50), ..Default::default() };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker =
        actix_web::rt::spawn(portico_worker::Worker::new(store.clone(), registry, config).run(async {
            let _ = stopped.await;
        }));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let dead = loop {
        let res = app.call("GET", "/api/v1/admin/jobs", Some(&app.admin_token()), None).await;
        if let Some(dead) = res.json["data"]["dead"].as_array().and_then(|d| d.first()).cloned() {
            break dead;
        }
        assert!(std::time::Instant::now() < deadline, "the job never died: {}", res.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.send(()).unwrap();
    worker.await.unwrap();
    assert_eq!(dead["kind"], json!("jobs.prune"));
    assert_eq!(dead["attempts"], json!(1), "refused for good, not retried");
    assert_eq!(dead["lastError"], json!("jobs.prune runs only as a platform job"));
}
