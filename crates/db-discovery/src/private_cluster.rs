//! A PostgreSQL cluster of our own under `target/`, for machines that have
//! PostgreSQL's binaries but no running server.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{DiscoveryError, is_listening};

/// First port tried for a new private cluster (away from the default 5432).
const FIRST_PORT: u16 = 54329;

/// Settings appended to a new cluster's `postgresql.conf`: loopback TCP only,
/// and durability traded for speed, since the cluster is disposable.
const CONFIG: &str = "
# Portico private development cluster (disposable: delete the directory to reset).
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
";

/// Where `initdb` and `pg_ctl` live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgBinaries {
    /// The directory holding both programs.
    pub bin_dir: PathBuf,
}

impl PgBinaries {
    /// Looks on `PATH`, then in `/usr/lib/postgresql/<version>/bin` (newest first).
    #[must_use]
    pub fn find() -> Option<Self> {
        let on_path = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>());
        let mut debian: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
                Some((version, entry.path().join("bin")))
            })
            .collect();
        debian.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
        on_path
            .chain(debian.into_iter().map(|(_, dir)| dir))
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
            .map(|bin_dir| Self { bin_dir })
    }

    fn program(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }
}

/// The system user that owns and runs the cluster when we are root.
#[derive(Debug, Clone, Copy)]
struct SystemUser {
    uid: u32,
    gid: u32,
}

/// A cluster in `dir`: `data/` (the cluster), `port`, `postgres.log`.
#[derive(Debug, Clone)]
pub struct PrivateCluster {
    dir: PathBuf,
    binaries: PgBinaries,
    first_port: u16,
}

impl PrivateCluster {
    /// A cluster to live in `dir` (created on first use), on port 54329 or
    /// the next free one.
    #[must_use]
    pub fn new(dir: PathBuf, binaries: PgBinaries) -> Self {
        Self { dir, binaries, first_port: FIRST_PORT }
    }

    /// The same cluster, looking for a free port from `port` up.
    #[must_use]
    pub fn with_first_port(self, port: u16) -> Self {
        Self { first_port: port, ..self }
    }

    /// Its directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the cluster if it does not exist, starts it if it is not
    /// running, and returns its port. Safe to call from several processes at
    /// once: they take turns on a lock file beside the directory.
    pub fn ensure_running(&self) -> Result<u16, DiscoveryError> {
        let parent = self.dir.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(io_at(parent))?;
        let lock_path = self.dir.with_extension("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_at(&lock_path))?;
        lock.lock().map_err(io_at(&lock_path))?;

        let owner = system_user()?;
        let data = self.dir.join("data");
        if !data.join("PG_VERSION").is_file() {
            self.initialise(owner, &data)?;
        }
        let port_file = self.dir.join("port");
        let mut port: u16 =
            fs::read_to_string(&port_file).map_err(io_at(&port_file))?.trim().parse().map_err(|_| {
                DiscoveryError::Unsupported(format!("{} does not hold a port number", port_file.display()))
            })?;
        if !self.is_running(owner)? {
            if is_listening(SocketAddr::from(([127, 0, 0, 1], port))) {
                // Someone else took our port while the cluster was stopped: move.
                port = self.move_to_free_port(&data)?;
            }
            let log = self.dir.join("postgres.log");
            let args = [
                os("-D"),
                data.as_os_str(),
                os("-l"),
                log.as_os_str(),
                os("-w"),
                os("-t"),
                os("60"),
                os("start"),
            ];
            self.run(owner, "pg_ctl", &args)?;
        }
        drop(lock);
        Ok(port)
    }

    /// Whether this cluster's postmaster runs (`pg_ctl status`), whatever
    /// listens on its port.
    fn is_running(&self, owner: Option<SystemUser>) -> Result<bool, DiscoveryError> {
        let data = self.dir.join("data");
        match self.run(owner, "pg_ctl", &[os("-D"), data.as_os_str(), os("status")]) {
            Ok(()) => Ok(true),
            // pg_ctl status: 3 = not running, 4 = no accessible data directory.
            Err(DiscoveryError::Command { code: Some(3 | 4), .. }) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Records a free port in `postgresql.conf` (a later `port` line wins)
    /// and in the `port` file.
    fn move_to_free_port(&self, data: &Path) -> Result<u16, DiscoveryError> {
        let port = free_port(self.first_port)
            .ok_or_else(|| DiscoveryError::Unsupported("no free TCP port on 127.0.0.1".into()))?;
        let conf = data.join("postgresql.conf");
        let mut file = OpenOptions::new().append(true).open(&conf).map_err(io_at(&conf))?;
        writeln!(file, "port = {port}").map_err(io_at(&conf))?;
        let port_file = self.dir.join("port");
        fs::write(&port_file, format!("{port}\n")).map_err(io_at(&port_file))?;
        Ok(port)
    }

    /// Stops the cluster (fast shutdown), if it runs.
    pub fn stop(&self) -> Result<(), DiscoveryError> {
        let data = self.dir.join("data");
        let args = [os("-D"), data.as_os_str(), os("-m"), os("fast"), os("-w"), os("stop")];
        self.run(system_user()?, "pg_ctl", &args)
    }

    fn initialise(&self, owner: Option<SystemUser>, data: &Path) -> Result<(), DiscoveryError> {
        if self.dir.exists() {
            // A half-made cluster from an interrupted run: start over.
            fs::remove_dir_all(&self.dir).map_err(io_at(&self.dir))?;
        }
        fs::create_dir_all(&self.dir).map_err(io_at(&self.dir))?;
        if let Some(user) = owner {
            std::os::unix::fs::chown(&self.dir, Some(user.uid), Some(user.gid)).map_err(io_at(&self.dir))?;
            // The directory may sit below one only root can enter (a checkout under /root).
            let reachable = Command::new("runuser")
                .args(["-u", "postgres", "--", "test", "-w"])
                .arg(&self.dir)
                .status()
                .is_ok_and(|status| status.success());
            if !reachable {
                return Err(DiscoveryError::Unsupported(format!(
                    "the postgres system user cannot write to {}: put the checkout (or CARGO_TARGET_DIR) where \
                     that user can reach it, or set DATABASE_URL",
                    self.dir.display()
                )));
            }
        }
        self.run(
            owner,
            "initdb",
            &[
                os("-D"),
                data.as_os_str(),
                os("-U"),
                os("postgres"),
                os("--auth=trust"),
                os("--encoding=UTF8"),
                os("--locale=C"),
                os("--no-instructions"),
            ],
        )?;
        let port = free_port(self.first_port)
            .ok_or_else(|| DiscoveryError::Unsupported("no free TCP port on 127.0.0.1".into()))?;
        let conf = data.join("postgresql.conf");
        let mut file = OpenOptions::new().append(true).open(&conf).map_err(io_at(&conf))?;
        writeln!(file, "{CONFIG}port = {port}").map_err(io_at(&conf))?;
        let port_file = self.dir.join("port");
        let mut file = File::create(&port_file).map_err(io_at(&port_file))?;
        writeln!(file, "{port}").map_err(io_at(&port_file))?;
        Ok(())
    }

    /// Runs one of PostgreSQL's programs, as `owner` when we are root.
    fn run(&self, owner: Option<SystemUser>, program: &str, args: &[&OsStr]) -> Result<(), DiscoveryError> {
        let path = self.binaries.program(program);
        let mut command = match owner {
            Some(_) => {
                let mut command = Command::new("runuser");
                command.args(["-u", "postgres", "--"]).arg(&path);
                command
            }
            None => Command::new(&path),
        };
        command.args(args).current_dir(&self.dir);
        let output = command.output().map_err(|source| DiscoveryError::Io { path: path.clone(), source })?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        Err(DiscoveryError::Command {
            command: program.to_owned(),
            code: output.status.code(),
            detail: format!("{}: {}", output.status, tail.into_iter().rev().collect::<Vec<_>>().join(" | ")),
        })
    }
}

/// Wraps an I/O error with the path it happened at.
fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> DiscoveryError {
    let path = path.to_owned();
    move |source| DiscoveryError::Io { path, source }
}

fn os(text: &str) -> &OsStr {
    OsStr::new(text)
}

/// `None` when we are not root (run the programs as ourselves); else the
/// `postgres` system user, since `initdb` refuses to run as root.
fn system_user() -> Result<Option<SystemUser>, DiscoveryError> {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let is_root = status
        .lines()
        .any(|line| line.strip_prefix("Uid:").and_then(|ids| ids.split_whitespace().nth(1)) == Some("0"));
    if !is_root {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.as_slice() {
                ["postgres", _, uid, gid, ..] => {
                    Some(SystemUser { uid: uid.parse().ok()?, gid: gid.parse().ok()? })
                }
                _ => None,
            }
        })
        .map(Some)
        .ok_or_else(|| {
            DiscoveryError::Unsupported(
                "initdb refuses to run as root and there is no `postgres` system user: \
                 run as an ordinary user, create a `postgres` user, or set DATABASE_URL"
                    .into(),
            )
        })
}

/// The first port from `first` up that nothing listens on.
fn free_port(first: u16) -> Option<u16> {
    (first..first.saturating_add(100)).find(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Creates, starts, reuses and stops a real cluster from the machine's binaries.
    #[test]
    fn a_private_cluster_is_created_then_reused() {
        let Some(binaries) = PgBinaries::find() else {
            // CI machines have the binaries: there, their absence is a failure.
            assert!(
                std::env::var_os("CI").is_none(),
                "CI has no initdb/pg_ctl: the fallback cannot be tested"
            );
            eprintln!(
                "SKIPPED: no initdb/pg_ctl on this machine; the private-cluster fallback is untested here"
            );
            return;
        };
        let dir = crate::default_state_dir().join(format!("portico-postgres-test-{}", std::process::id()));
        // Its own port range, away from the development cluster's.
        let cluster = PrivateCluster::new(dir.clone(), binaries).with_first_port(55329);
        let _cleanup = Removed(cluster.clone());

        let port = cluster.ensure_running().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        assert!(port >= 55329);
        assert_eq!(crate::probe_login(addr, "postgres"), crate::LoginProbe::Trusted);
        let stranger = crate::probe_login(addr, "nobody");
        assert!(
            matches!(&stranger, crate::LoginProbe::Refused(why) if why.contains("nobody")),
            "{stranger:?}"
        );
        assert!(dir.join("data/PG_VERSION").is_file());
        let conf = fs::read_to_string(dir.join("data/postgresql.conf")).unwrap();
        assert!(conf.contains(&format!("port = {port}")) && conf.contains("listen_addresses = '127.0.0.1'"));

        cluster.stop().unwrap();
        assert!(!is_listening(addr));
        let again = cluster.ensure_running().unwrap();
        assert_eq!(again, port, "a later run starts the same cluster");
        assert!(is_listening(addr));
        assert_eq!(cluster.ensure_running().unwrap(), port, "a running cluster is left as it is");

        // While it is stopped, something else takes its port: it moves.
        cluster.stop().unwrap();
        let squatter = TcpListener::bind(addr).unwrap();
        let moved = cluster.ensure_running().unwrap();
        assert_ne!(moved, port);
        assert_eq!(
            crate::probe_login(SocketAddr::from(([127, 0, 0, 1], moved)), "postgres"),
            crate::LoginProbe::Trusted
        );
        drop(squatter);
    }

    /// Stops and deletes a test cluster however its test ends.
    struct Removed(PrivateCluster);

    impl Drop for Removed {
        fn drop(&mut self) {
            let _ = self.0.stop();
            let _ = fs::remove_dir_all(&self.0.dir);
            let _ = fs::remove_file(self.0.dir.with_extension("lock"));
        }
    }

    #[test]
    fn free_port_skips_a_taken_port() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        assert_ne!(free_port(port), Some(port));
    }
}
