//! Finds a PostgreSQL server for `cargo run` and `cargo test`, so that a fresh
//! clone needs no manual database set-up.
//!
//! The order is:
//! 1. `DATABASE_URL`, a URL of a role that may create roles and databases;
//! 2. a server on `127.0.0.1:5432` that lets user `postgres` in without a
//!    password (checked with a startup handshake, not assumed);
//! 3. a private cluster under `target/portico-postgres/`, created with the
//!    machine's `initdb`/`pg_ctl` (from `PATH` or `/usr/lib/postgresql/*/bin`)
//!    on first use and started again by later runs. `initdb` refuses to run
//!    as root, so as root the cluster is created and run as the `postgres`
//!    system user.
//!
//! Where none of these is possible, the error says in one line what to
//! install or set.
//!
//! This is for development and tests; production sets `DATABASE_URL`.

mod private_cluster;
mod probe;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use private_cluster::{PgBinaries, PrivateCluster};
pub use probe::{LoginProbe, probe_login};

/// The default local server probed when `DATABASE_URL` is not set.
pub const LOCAL_SERVER: &str = "127.0.0.1:5432";

/// Where the server came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The `DATABASE_URL` environment variable.
    Environment,
    /// A server already listening on [`LOCAL_SERVER`].
    LocalServer,
    /// The private cluster in this directory, created or started for us.
    PrivateCluster(PathBuf),
}

/// A server to use: the URL of a role that may create roles and databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// `postgres://user[:password]@host:port/database`.
    pub admin_url: String,
    /// Where it came from, for the start-up log.
    pub source: Source,
    /// Why an earlier option was passed over, for the start-up log.
    pub note: Option<String>,
}

/// Why no server could be found or started.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// Nothing to connect to and nothing to start one with.
    #[error(
        "no PostgreSQL found: set DATABASE_URL to a URL of a role that can create roles and databases, \
         start a server on 127.0.0.1:5432 accepting user postgres, or install PostgreSQL's server \
         binaries (initdb and pg_ctl; on Debian/Ubuntu: apt-get install postgresql)"
    )]
    NothingFound,
    /// The local server wants a password and no private cluster can be made.
    #[error(
        "the PostgreSQL server on 127.0.0.1:5432 {0}: set DATABASE_URL=postgres://postgres:PASSWORD@127.0.0.1:5432/postgres, \
         or install PostgreSQL's server binaries (initdb, pg_ctl) for a private cluster"
    )]
    LocalServerRefused(String),
    /// `DATABASE_URL` is set but is not a PostgreSQL URL.
    #[error("DATABASE_URL is not a postgres:// URL")]
    BadUrl,
    /// A command that creates or starts the private cluster failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command, without its arguments.
        command: String,
        /// Its exit code, if it exited.
        code: Option<i32>,
        /// Its exit status and the end of its output.
        detail: String,
    },
    /// The private cluster cannot be run (root without a `postgres` user, ...).
    #[error("cannot run a private PostgreSQL cluster: {0}")]
    Unsupported(String),
    /// A file-system error around the private cluster.
    #[error("private PostgreSQL cluster in {path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// What discovery will do, decided from what it observed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    Url(String),
    LocalServer,
    PrivateCluster(PgBinaries, Option<String>),
}

/// The pure decision: the first usable option in the documented order.
fn plan(
    env_url: Option<String>,
    local_server: impl FnOnce() -> LoginProbe,
    binaries: impl FnOnce() -> Option<PgBinaries>,
) -> Result<Plan, DiscoveryError> {
    if let Some(url) = env_url.filter(|url| !url.trim().is_empty()) {
        let parsed = url::Url::parse(&url).map_err(|_| DiscoveryError::BadUrl)?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(DiscoveryError::BadUrl);
        }
        return Ok(Plan::Url(url));
    }
    let passed_over = match local_server() {
        LoginProbe::Trusted => return Ok(Plan::LocalServer),
        LoginProbe::NeedsPassword => Some("wants a password for user postgres".to_owned()),
        LoginProbe::Refused(reason) => Some(format!("refuses user postgres ({reason})")),
        LoginProbe::NoServer | LoginProbe::NotPostgres => None,
    };
    match (binaries(), passed_over) {
        (Some(binaries), note) => Ok(Plan::PrivateCluster(
            binaries,
            note.map(|why| format!("the server on {LOCAL_SERVER} {why}; using a private cluster (set DATABASE_URL to use that server)")),
        )),
        (None, Some(why)) => Err(DiscoveryError::LocalServerRefused(why)),
        (None, None) => Err(DiscoveryError::NothingFound),
    }
}

/// Finds (or starts) a server, in the order of the crate documentation.
///
/// `state_dir` is where a private cluster lives (`target/`); see
/// [`default_state_dir`]. Blocking: call it before starting async work or
/// from a blocking task.
pub fn discover(state_dir: &Path) -> Result<Discovered, DiscoveryError> {
    let local: SocketAddr = LOCAL_SERVER.parse().map_err(|_| DiscoveryError::NothingFound)?;
    match plan(std::env::var("DATABASE_URL").ok(), || probe_login(local, "postgres"), PgBinaries::find)? {
        Plan::Url(url) => Ok(Discovered { admin_url: url, source: Source::Environment, note: None }),
        Plan::LocalServer => Ok(Discovered {
            admin_url: format!("postgres://postgres@{LOCAL_SERVER}/postgres"),
            source: Source::LocalServer,
            note: None,
        }),
        Plan::PrivateCluster(binaries, note) => {
            let cluster = PrivateCluster::new(state_dir.join("portico-postgres"), binaries);
            let port = cluster.ensure_running()?;
            Ok(Discovered {
                admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                source: Source::PrivateCluster(cluster.dir().to_owned()),
                note,
            })
        }
    }
}

/// `CARGO_TARGET_DIR` if set, else the workspace's `target/` directory.
#[must_use]
pub fn default_state_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    }
}

/// True when something accepts TCP connections at `addr` within a second.
fn is_listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binaries() -> PgBinaries {
        PgBinaries { bin_dir: PathBuf::from("/usr/lib/postgresql/15/bin") }
    }

    #[test]
    fn database_url_comes_first() {
        let url = "postgres://admin:secret@db.internal:5432/postgres".to_owned();
        let plan = plan(Some(url.clone()), || panic!("not probed"), || panic!("not searched")).unwrap();
        assert_eq!(plan, Plan::Url(url));
    }

    #[test]
    fn a_blank_database_url_is_ignored() {
        assert_eq!(plan(Some("  ".into()), || LoginProbe::Trusted, || None).unwrap(), Plan::LocalServer);
    }

    #[test]
    fn a_database_url_that_is_not_postgres_is_refused() {
        for bad in ["mysql://root@localhost/db", "not a url"] {
            let result = plan(Some(bad.into()), || LoginProbe::Trusted, || None);
            assert!(matches!(result, Err(DiscoveryError::BadUrl)), "{bad}");
        }
        assert!(plan(Some("postgresql://u@h/d".into()), || LoginProbe::NoServer, || None).is_ok());
    }

    #[test]
    fn a_trusting_local_server_comes_before_a_private_cluster() {
        assert_eq!(plan(None, || LoginProbe::Trusted, || panic!("not searched")).unwrap(), Plan::LocalServer);
    }

    #[test]
    fn a_private_cluster_is_the_last_resort() {
        let plan = plan(None, || LoginProbe::NoServer, || Some(binaries())).unwrap();
        assert_eq!(plan, Plan::PrivateCluster(binaries(), None));
    }

    #[test]
    fn a_local_server_wanting_a_password_is_passed_over_with_a_note() {
        let Plan::PrivateCluster(_, Some(note)) =
            plan(None, || LoginProbe::NeedsPassword, || Some(binaries())).unwrap()
        else {
            panic!("expected a private cluster with a note");
        };
        assert!(note.contains("wants a password") && note.contains("DATABASE_URL"), "{note}");
    }

    #[test]
    fn a_local_server_wanting_a_password_and_no_binaries_says_what_to_set() {
        let err = plan(None, || LoginProbe::NeedsPassword, || None).unwrap_err();
        let message = err.to_string();
        assert!(!message.contains('\n'));
        assert!(
            message.contains("wants a password") && message.contains("DATABASE_URL=postgres://"),
            "{message}"
        );
        let refused = plan(None, || LoginProbe::Refused("no pg_hba.conf entry".into()), || None).unwrap_err();
        assert!(refused.to_string().contains("no pg_hba.conf entry"));
    }

    #[test]
    fn nothing_found_says_what_to_do_in_one_line() {
        let err = plan(None, || LoginProbe::NoServer, || None).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, DiscoveryError::NothingFound));
        assert!(!message.contains('\n'));
        assert!(message.contains("DATABASE_URL") && message.contains("initdb"), "{message}");
    }

    #[test]
    fn a_bound_port_is_seen_listening() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(is_listening(listener.local_addr().unwrap()));
    }
}
