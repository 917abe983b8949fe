//! `LocalDirectory` against a fresh directory under the system's temp dir.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use portico_files::LocalDirectory;
use portico_kernel::{FileError, FileKey, FileStore, StoredFile, TenantId};

/// A unique directory holding the store's root, removed when dropped. The
/// root is one level down so that writes beside it can be seen.
struct Sandbox {
    parent: PathBuf,
}

impl Sandbox {
    fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let parent = std::env::temp_dir().join(format!(
            "portico-files-it-{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            TenantId::new()
        ));
        std::fs::create_dir_all(&parent).unwrap();
        Self { parent }
    }

    fn root(&self) -> PathBuf {
        self.parent.join("root")
    }

    fn store(&self) -> LocalDirectory {
        LocalDirectory::new(self.root())
    }

    /// Every file below `dir`, relative to it, sorted.
    fn files_under(dir: &Path) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(base, &path, out);
                } else {
                    out.push(path.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let mut out = Vec::new();
        if dir.exists() {
            walk(dir, dir, &mut out);
        }
        out.sort();
        out
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.parent);
    }
}

fn key(tenant: TenantId, path: &str) -> FileKey {
    FileKey::new(tenant, path).unwrap()
}

fn file(content_type: &str, bytes: &[u8]) -> StoredFile {
    StoredFile { content_type: content_type.to_owned(), bytes: bytes.to_vec() }
}

#[tokio::test]
async fn a_stored_file_comes_back_with_its_content_type() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let logo = key(TenantId::new(), "branding/logo.png");

    store.put(&logo, "image/png", b"\x89PNG fake").await.unwrap();

    assert_eq!(store.get(&logo).await.unwrap(), Some(file("image/png", b"\x89PNG fake")));
}

#[tokio::test]
async fn a_second_put_replaces_the_bytes_and_the_content_type() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let logo = key(TenantId::new(), "branding/logo");

    store.put(&logo, "image/png", b"old png").await.unwrap();
    store.put(&logo, "image/svg+xml", b"<svg/>").await.unwrap();

    assert_eq!(store.get(&logo).await.unwrap(), Some(file("image/svg+xml", b"<svg/>")));
}

#[tokio::test]
async fn a_put_leaves_only_the_file_and_its_sidecar() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let tenant = TenantId::new();

    store.put(&key(tenant, "logo.png"), "image/png", b"one").await.unwrap();
    store.put(&key(tenant, "logo.png"), "image/png", b"two").await.unwrap();

    assert_eq!(
        Sandbox::files_under(&sandbox.root()),
        vec![format!("{tenant}/logo.png"), format!("{tenant}/logo.png~meta")],
        "no temporary file may be left behind"
    );
    assert_eq!(std::fs::read(sandbox.root().join(tenant.to_string()).join("logo.png")).unwrap(), b"two");
}

#[tokio::test]
async fn a_deleted_file_is_gone_with_its_sidecar() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let logo = key(TenantId::new(), "branding/logo.png");
    store.put(&logo, "image/png", b"png").await.unwrap();

    store.delete(&logo).await.unwrap();

    assert_eq!(store.get(&logo).await.unwrap(), None);
    assert_eq!(Sandbox::files_under(&sandbox.root()), Vec::<String>::new());
}

#[tokio::test]
async fn a_missing_file_is_none() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let tenant = TenantId::new();

    // Neither the root nor the tenant's directory exists yet.
    assert_eq!(store.get(&key(tenant, "branding/logo.png")).await.unwrap(), None);

    store.put(&key(tenant, "branding/other.png"), "image/png", b"png").await.unwrap();
    assert_eq!(store.get(&key(tenant, "branding/logo.png")).await.unwrap(), None);
}

#[tokio::test]
async fn deleting_a_missing_file_succeeds() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let tenant = TenantId::new();

    store.delete(&key(tenant, "nothing/here.png")).await.unwrap();
    store.put(&key(tenant, "nothing/else.png"), "image/png", b"png").await.unwrap();
    store.delete(&key(tenant, "nothing/here.png")).await.unwrap();

    assert!(store.get(&key(tenant, "nothing/else.png")).await.unwrap().is_some());
}

#[tokio::test]
async fn two_tenants_files_of_the_same_path_live_in_their_own_directories() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let (acme, globex) = (TenantId::new(), TenantId::new());

    store.put(&key(acme, "branding/logo.png"), "image/png", b"acme").await.unwrap();
    store.put(&key(globex, "branding/logo.png"), "image/png", b"globex").await.unwrap();

    let root = sandbox.root();
    assert_eq!(std::fs::read(root.join(acme.to_string()).join("branding/logo.png")).unwrap(), b"acme");
    assert_eq!(std::fs::read(root.join(globex.to_string()).join("branding/logo.png")).unwrap(), b"globex");
    assert_eq!(store.get(&key(acme, "branding/logo.png")).await.unwrap().unwrap().bytes, b"acme");
    assert_eq!(store.get(&key(globex, "branding/logo.png")).await.unwrap().unwrap().bytes, b"globex");
}

#[tokio::test]
async fn nothing_is_written_outside_the_root() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let tenant = TenantId::new();

    store.put(&key(tenant, "a/b/c.txt"), "text/plain", b"c").await.unwrap();
    store.put(&key(tenant, "d.txt"), "text/plain", b"d").await.unwrap();
    store.delete(&key(tenant, "d.txt")).await.unwrap();

    let beside_root: Vec<_> =
        std::fs::read_dir(&sandbox.parent).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(beside_root, vec!["root"]);
    assert_eq!(
        Sandbox::files_under(&sandbox.root()),
        vec![format!("{tenant}/a/b/c.txt"), format!("{tenant}/a/b/c.txt~meta")]
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_symbolic_link_under_the_root_is_not_followed() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let tenant = TenantId::new();
    let outside = sandbox.parent.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), b"not yours").unwrap();
    std::fs::create_dir_all(sandbox.root()).unwrap();
    std::os::unix::fs::symlink(&outside, sandbox.root().join(tenant.to_string())).unwrap();

    let put = store.put(&key(tenant, "logo.png"), "image/png", b"png").await;
    let get = store.get(&key(tenant, "secret.txt")).await;

    assert!(matches!(put, Err(FileError::Unavailable(_))), "{put:?}");
    assert!(matches!(get, Err(FileError::Unavailable(_))), "{get:?}");
    assert_eq!(Sandbox::files_under(&outside), vec!["secret.txt"]);
}

#[tokio::test]
async fn an_io_failure_names_the_key_but_not_the_host_path() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let tenant = TenantId::new();
    // `a` is a file, so `a/b` cannot be stored.
    store.put(&key(tenant, "a"), "text/plain", b"a").await.unwrap();

    let Err(FileError::Unavailable(message)) = store.put(&key(tenant, "a/b"), "text/plain", b"b").await
    else {
        panic!("storing below a file must fail");
    };

    assert!(message.contains(&format!("{tenant}/a/b")), "{message}");
    assert!(!message.contains(&*sandbox.parent.to_string_lossy()), "{message}");
}
