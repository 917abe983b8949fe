//! The test harness: every test gets a PostgreSQL database of its own.
//!
//! The first test of a run finds a server (see `portico-db-discovery`),
//! bootstraps the roles and builds a migrated template database, named after
//! a digest of the migrations (and the store's set-up revision) and sealed (`IS_TEMPLATE`, `ALLOW_CONNECTIONS
//! false`) so cloning never meets "source database is being accessed by other
//! users". That happens once, under an advisory lock, however many test
//! processes start together; later runs reuse the template until a migration
//! changes. Each test then clones it (`TestDb::new`), and the clone is dropped
//! `WITH (FORCE)` when the `TestDb` goes out of scope, even when the test
//! fails. Clones left by a crashed run are swept by the next one.
//!
//! Like `cargo run`, it reads `DATABASE_URL` and the
//! `PORTICO_DATABASE_*_PASSWORD` variables, for servers that want passwords.
//!
//! ```no_run
//! # async fn example() {
//! let db = portico_testkit::TestDb::new().await;
//! let store = db.store().await; // connects as portico_app / portico_platform
//! # }
//! ```

// A harness that cannot set up its database has nothing better to do than
// stop the test with a clear message.
#![allow(clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portico_db_discovery::{default_state_dir, discover};
use portico_store::{
    Admin, DatabaseUrls, MIGRATIONS_DIGEST, PoolConfig, RolePasswords, SETUP_REVISION, Store,
    ensure_platform_tenant, run_migrations,
};
use tokio::sync::OnceCell;

/// Every per-test database starts with this.
pub const CLONE_PREFIX: &str = "portico_test_";
/// Every template database starts with this.
pub const TEMPLATE_PREFIX: &str = "portico_template_";
/// Advisory-lock key serialising template builds and sweeps ("portico" + 2).
const TEMPLATE_LOCK: i64 = 0x706f_7274_6963_6f02;
/// How a template's comment starts; the build time in seconds follows.
const TEMPLATE_COMMENT: &str = "portico test template, built at ";
/// A clone (or another digest's template) older than this is stale whoever made it.
const MAX_CLONE_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// The server and the template every test clones, found once per process.
#[derive(Debug)]
struct Server {
    admin_url: String,
    template: String,
}

static SERVER: OnceCell<Server> = OnceCell::const_new();
static NEXT_CLONE: AtomicU32 = AtomicU32::new(0);

async fn server() -> &'static Server {
    SERVER
        .get_or_init(|| async {
            let discovered = tokio::task::spawn_blocking(|| discover(&default_state_dir()))
                .await
                .expect("database discovery panicked")
                .unwrap_or_else(|e| panic!("test harness: {e}"));
            let admin_url = discovered.admin_url;
            let template = template_name();
            let mut admin = connect(&admin_url).await;
            admin.lock(TEMPLATE_LOCK).await.expect("taking the template lock");
            admin.ensure_roles(&RolePasswords::from_environment()).await.expect("creating the roles");
            let ready = admin.database(&template).await.expect("looking up the template");
            if !ready.is_some_and(|db| db.is_template && !db.allow_connections) {
                build_template(&mut admin, &admin_url, &template).await;
            }
            sweep(&mut admin, &admin_url, &template).await;
            admin.unlock(TEMPLATE_LOCK).await.expect("releasing the template lock");
            Server { admin_url, template }
        })
        .await
}

/// The template of this build: named by the migrations' digest and the
/// store's set-up revision, so a change to either builds a new one.
#[must_use]
pub fn template_name() -> String {
    format!("{TEMPLATE_PREFIX}{MIGRATIONS_DIGEST}_{SETUP_REVISION}")
}

async fn connect(admin_url: &str) -> Admin {
    Admin::connect(admin_url).await.unwrap_or_else(|e| panic!("test harness: {e}"))
}

/// Migrates a fresh template and seals it; a half-built one from a crashed
/// run (still open to connections) is dropped first.
async fn build_template(admin: &mut Admin, admin_url: &str, template: &str) {
    admin.drop_database(template).await.expect("dropping an unfinished template");
    admin.create_database(template, None).await.expect("creating the template");
    let urls =
        DatabaseUrls::derive(admin_url, template, &RolePasswords::from_environment()).expect("template URLs");
    run_migrations(&urls.owner).await.unwrap_or_else(|e| panic!("migrating the template: {e}"));
    ensure_platform_tenant(&urls.owner).await.unwrap_or_else(|e| panic!("seeding the template: {e}"));
    admin.seal_as_template(template).await.expect("sealing the template");
    let comment = format!("{TEMPLATE_COMMENT}{}", now_secs());
    admin.comment_database(template, &comment).await.expect("dating the template");
}

/// Drops clones whose test process is gone (on a loopback server) or that
/// are older than a day, and templates of other migration digests once they
/// are a day old (another checkout on the same server may still use one).
async fn sweep(admin: &mut Admin, admin_url: &str, current_template: &str) {
    for db in admin.databases_with_prefix(TEMPLATE_PREFIX).await.expect("listing templates") {
        if db.name != current_template && template_is_stale(db.comment.as_deref(), now_secs()) {
            let _ = admin.drop_database(&db.name).await;
        }
    }
    let local = is_loopback(admin_url);
    for db in admin.databases_with_prefix(CLONE_PREFIX).await.expect("listing test databases") {
        if is_stale(&db.name, local, std::process::id(), now_secs()) {
            let _ = admin.drop_database(&db.name).await;
        }
    }
}

/// Whether a template built at the time in its comment is over a day old
/// (a template without a readable date is).
fn template_is_stale(comment: Option<&str>, now: u64) -> bool {
    let built =
        comment.and_then(|c| c.strip_prefix(TEMPLATE_COMMENT)).and_then(|secs| secs.parse::<u64>().ok());
    built.is_none_or(|built| now.saturating_sub(built) > MAX_CLONE_AGE.as_secs())
}

/// Whether a clone named `portico_test_<pid>_<created secs>_<n>` is stale.
fn is_stale(name: &str, local_server: bool, own_pid: u32, now: u64) -> bool {
    let mut parts = name.trim_start_matches(CLONE_PREFIX).split('_');
    let (Some(Ok(pid)), Some(Ok(created))) =
        (parts.next().map(str::parse::<u32>), parts.next().map(str::parse::<u64>))
    else {
        return false; // not ours: leave it alone
    };
    let too_old = now.saturating_sub(created) > MAX_CLONE_AGE.as_secs();
    let owner_gone =
        local_server && pid != own_pid && !std::path::Path::new(&format!("/proc/{pid}")).exists();
    too_old || owner_gone
}

fn is_loopback(admin_url: &str) -> bool {
    let authority = admin_url.split_once("://").map_or(admin_url, |(_, rest)| rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn fresh_name() -> String {
    let n = NEXT_CLONE.fetch_add(1, Ordering::Relaxed);
    format!("{CLONE_PREFIX}{}_{}_{n}", std::process::id(), now_secs())
}

/// A database of the test's own, dropped when this value is.
#[derive(Debug)]
pub struct TestDb {
    admin_url: String,
    /// Its URLs for each role.
    pub urls: DatabaseUrls,
}

impl TestDb {
    /// A migrated database with the platform tenant, cloned from the template.
    pub async fn new() -> Self {
        let server = server().await;
        let name = fresh_name();
        let mut admin = connect(&server.admin_url).await;
        admin.create_database(&name, Some(&server.template)).await.unwrap_or_else(|e| panic!("cloning: {e}"));
        Self::named(&server.admin_url, &name)
    }

    /// An empty database (no schema, no roles' grants beyond CONNECT): for
    /// tests of bootstrap and migrations themselves.
    pub async fn empty() -> Self {
        let server = server().await;
        let name = fresh_name();
        connect(&server.admin_url).await.create_database(&name, None).await.unwrap_or_else(|e| panic!("{e}"));
        Self::named(&server.admin_url, &name)
    }

    fn named(admin_url: &str, name: &str) -> Self {
        let urls = DatabaseUrls::derive(admin_url, name, &RolePasswords::from_environment())
            .expect("test database URLs");
        Self { admin_url: admin_url.to_owned(), urls }
    }

    /// The database's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.urls.database
    }

    /// The URL of the superuser the harness administers the server with.
    #[must_use]
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// A store on this database, with small pools.
    pub async fn store(&self) -> Store {
        let config = PoolConfig { app_max_size: 4, platform_max_size: 2, ..PoolConfig::default() };
        Store::connect(&self.urls, &config).await.unwrap_or_else(|e| panic!("connecting the store: {e}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs outside any async context we could use (maybe while a
        // test's runtime unwinds), so the DROP gets a thread and runtime of its own.
        let admin_url = self.admin_url.clone();
        let name = self.urls.database.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut admin = Admin::connect(&admin_url).await.map_err(std::io::Error::other)?;
                admin.drop_database(&name).await.map_err(std::io::Error::other)
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("test harness: could not drop {}; the next run sweeps it", self.urls.database);
        }
    }
}

/// Runs the sweep of stale test databases now (normally done once per run).
pub async fn sweep_now() {
    let server = server().await;
    let mut admin = connect(&server.admin_url).await;
    admin.lock(TEMPLATE_LOCK).await.expect("taking the template lock");
    sweep(&mut admin, &server.admin_url, &server.template).await;
    admin.unlock(TEMPLATE_LOCK).await.expect("releasing the template lock");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_of_dead_local_processes_are_stale() {
        let now = 1_800_000_000;
        let dead_pid = u32::MAX - 1;
        let me = std::process::id();
        assert!(is_stale(&format!("portico_test_{dead_pid}_{now}_0"), true, me, now));
        assert!(!is_stale(&format!("portico_test_{dead_pid}_{now}_0"), false, me, now), "remote: age only");
        assert!(!is_stale(&format!("portico_test_{me}_{now}_0"), true, me, now), "our own");
        let parent = std::os::unix::process::parent_id();
        assert!(!is_stale(&format!("portico_test_{parent}_{now}_0"), true, me, now), "a live process");
    }

    #[test]
    fn clones_older_than_a_day_are_stale_anywhere() {
        let now = 1_800_000_000;
        let me = std::process::id();
        let old = now - 25 * 3600;
        assert!(is_stale(&format!("portico_test_{me}_{old}_0"), false, me, now));
        assert!(!is_stale(&format!("portico_test_{me}_{}_0", now - 3600), false, me, now));
    }

    #[test]
    fn other_templates_are_kept_for_a_day() {
        let now = 1_800_000_000;
        assert!(!template_is_stale(Some(&format!("{TEMPLATE_COMMENT}{}", now - 3600)), now));
        assert!(template_is_stale(Some(&format!("{TEMPLATE_COMMENT}{}", now - 25 * 3600)), now));
        assert!(template_is_stale(None, now));
        assert!(template_is_stale(Some("something else"), now));
    }

    #[test]
    fn names_that_are_not_ours_are_left_alone() {
        assert!(!is_stale("portico_test_manual", true, 1, 1_800_000_000));
        assert!(!is_stale("portico_test_", true, 1, 1_800_000_000));
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        assert!(is_loopback("postgres://postgres@127.0.0.1:5432/postgres"));
        assert!(is_loopback("postgres://postgres@localhost/postgres"));
        assert!(is_loopback("postgres://127.0.0.1/postgres"));
        assert!(!is_loopback("postgres://postgres@db.internal:5432/postgres"));
        assert!(!is_loopback("postgres://u:p@ss@db.internal/postgres"));
    }
}
