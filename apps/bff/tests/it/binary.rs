//! The real `portico` binary, as `cargo run` starts it, against a database of
//! the test's own: it bootstraps, migrates and serves.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use portico_store::{Admin, platform_tenant_exists};
use portico_testkit::TestDb;

use crate::http::get;

fn portico(db: &TestDb, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portico"));
    command
        .args(args)
        .env("PORTICO_ENV", "test")
        .env("PORTICO_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/../../config"))
        .env("DATABASE_URL", db.admin_url())
        .env("PORTICO__DATABASE__NAME", db.name())
        .env("PORTICO__HTTP__ADDR", "127.0.0.1:0");
    command
}

/// Kills the child when the test ends, pass or fail.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `portico serve` and waits for the line announcing its address.
fn serve(db: &TestDb) -> (Killed, SocketAddr) {
    let mut child = portico(db, &[]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Killed(child);
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("Portico is listening on http://") {
            let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
            return (child, addr);
        }
    }
    panic!("portico exited before listening");
}

#[tokio::test]
async fn portico_bootstraps_an_empty_database_and_answers_ready() {
    let db = TestDb::empty().await;
    // Blocking reads of the child's output: nothing else runs on this test's runtime.
    let (_child, addr) = serve(&db);
    let ready = tokio::task::spawn_blocking(move || get(addr, "/health/ready")).await.unwrap();
    assert_eq!(ready.status, 200, "{}", ready.json);
    assert!(platform_tenant_exists(&db.urls.owner).await.unwrap());
}

#[tokio::test]
async fn portico_db_bootstrap_creates_a_missing_database_and_migrate_then_has_nothing_to_do() {
    let db = TestDb::empty().await;
    let mut admin = Admin::connect(db.admin_url()).await.unwrap();
    admin.drop_database(db.name()).await.unwrap();

    let bootstrap = portico(&db, &["db", "bootstrap"]).output().unwrap();
    assert!(bootstrap.status.success(), "{}", String::from_utf8_lossy(&bootstrap.stderr));
    assert!(admin.database(db.name()).await.unwrap().is_some());
    assert!(platform_tenant_exists(&db.urls.owner).await.unwrap());

    let migrate = portico(&db, &["migrate"]).output().unwrap();
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    assert_eq!(String::from_utf8_lossy(&migrate.stdout).trim(), "applied 0 migration(s)");
}

#[test]
fn an_unknown_command_exits_2_with_usage() {
    let output = Command::new(env!("CARGO_BIN_EXE_portico")).arg("frobnicate").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown command `frobnicate`") && stderr.contains("usage: portico"), "{stderr}");
}

#[test]
fn a_bad_configuration_exits_2_naming_the_key() {
    let output = Command::new(env!("CARGO_BIN_EXE_portico"))
        .env("PORTICO_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/../../config"))
        .env("PORTICO__DATABASE__APP_POOL_SIZE", "0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("database.app_pool_size"));
}

#[tokio::test]
async fn portico_token_mints_a_token_the_api_accepts() {
    let db = TestDb::new().await;
    let output = portico(&db, &["token", "--tenant", "platform"])
        .env("PORTICO_JWT_SECRET", std::str::from_utf8(crate::support::SECRET).unwrap())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout).unwrap();
    let claims = portico_bff::auth::TokenKeys::new(crate::support::SECRET).verify(token.trim()).unwrap();
    assert_eq!(claims.tenant_id, portico_kernel::PLATFORM_TENANT_ID);
    assert_eq!(claims.kind, portico_bff::auth::TokenType::AdminUser);
    assert!(claims.permissions.contains(&"platform:tenants:write".to_owned()));

    let unknown = portico(&db, &["token", "--tenant", "no-such-tenant"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no tenant with slug `no-such-tenant`"));
}

/// The state and attempts of every job, read through the platform role.
async fn job_states(db: &TestDb) -> Vec<(String, i32)> {
    use diesel_async::{AsyncConnection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        state: String,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        attempts: i32,
    }
    let mut conn = diesel_async::AsyncPgConnection::establish(&db.urls.platform).await.unwrap();
    let rows: Vec<Row> = diesel::sql_query("SELECT state, attempts FROM jobs ORDER BY created_at")
        .load(&mut conn)
        .await
        .unwrap();
    rows.into_iter().map(|r| (r.state, r.attempts)).collect()
}

async fn wait_for_state(db: &TestDb, state: &str) -> Vec<(String, i32)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let states = job_states(db).await;
        if states.iter().any(|(s, _)| s == state) {
            return states;
        }
        assert!(std::time::Instant::now() < deadline, "no job reached {state}: {states:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn worker(db: &TestDb, lease_secs: &str) -> Killed {
    let child = portico(db, &["worker"])
        .env("PORTICO__WORKER__LEASE_SECS", lease_secs)
        .env("PORTICO__WORKER__POLL_INTERVAL_MS", "100")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Killed(child)
}

async fn enqueue_probe(db: &TestDb, delay_ms: u64) {
    let store = db.store().await;
    let job = portico_kernel::NewJob::of(&portico_bff::jobs::Probe { delay_ms }).unwrap();
    store.enqueue_platform(&portico_kernel::PlatformContext::system("test"), job).await.unwrap();
}

#[tokio::test]
async fn portico_worker_runs_jobs_and_stops_cleanly_on_sigterm() {
    let db = TestDb::new().await;
    enqueue_probe(&db, 0).await;
    let mut running = worker(&db, "30");
    assert_eq!(wait_for_state(&db, "succeeded").await, vec![("succeeded".to_owned(), 1)]);

    let terminated = Command::new("kill").args(["-TERM", &running.0.id().to_string()]).status().unwrap();
    assert!(terminated.success());
    let status = tokio::task::spawn_blocking(move || running.0.wait()).await.unwrap().unwrap();
    assert!(status.success(), "a clean exit after SIGTERM: {status:?}");
}

#[tokio::test]
async fn a_worker_killed_mid_job_loses_nothing() {
    let db = TestDb::new().await;
    enqueue_probe(&db, 1500).await;
    let mut first = worker(&db, "1");
    wait_for_state(&db, "running").await;
    first.0.kill().unwrap(); // SIGKILL: no chance to release or report
    first.0.wait().unwrap();
    assert_eq!(job_states(&db).await, vec![("running".to_owned(), 1)], "left behind, still leased");

    let _second = worker(&db, "30");
    let states = wait_for_state(&db, "succeeded").await;
    assert_eq!(states, vec![("succeeded".to_owned(), 2)], "taken over after the lease, run to the end");
}

#[test]
fn portico_worker_is_the_same_command_line_as_portico_worker() {
    let output = Command::new(env!("CARGO_BIN_EXE_portico-worker"))
        .env("PORTICO_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/../../config"))
        .env("PORTICO__WORKER__CONCURRENCY", "0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("worker.concurrency"));
}
