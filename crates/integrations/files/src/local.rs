//! Files in a local directory: the development store, and a stand-in for
//! object storage in tests.
//!
//! Layout: a file of key `<tenant>/<path>` is `<root>/<tenant>/<path>`; its
//! content type is in the sidecar `<root>/<tenant>/<path>~meta`. The `~`
//! cannot occur in a key, so no key names a sidecar or a temporary file.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use portico_kernel::{FileError, FileFuture, FileKey, FileStore, StoredFile};
use tokio::io::AsyncWriteExt;

/// Suffix of the sidecar that holds a file's content type.
const META_SUFFIX: &str = "~meta";
/// What a file whose sidecar is missing is served as.
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Tells concurrent writes of one key in this process apart.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Stores files under a root directory, one tenant per top-level directory.
#[derive(Debug, Clone)]
pub struct LocalDirectory {
    root: PathBuf,
}

impl LocalDirectory {
    /// A store under `root`, which is created at the first write.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory the files are under.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory that holds `key`'s file and the file's name in it, or
    /// `None` when the directory does not exist and `create` is false.
    ///
    /// Walks down from the root one segment at a time and refuses anything
    /// that is not a real directory, so a symbolic link planted under the
    /// root cannot lead outside it.
    async fn locate<'k>(
        &self,
        key: &'k FileKey,
        create: bool,
    ) -> Result<Option<(PathBuf, &'k str)>, FileError> {
        let segments: Vec<&str> = key.as_str().split('/').collect();
        // FileKey already refuses these; checked again because a path is built from them.
        if segments.iter().any(|s| s.is_empty() || *s == "." || *s == ".." || s.contains('\\')) {
            return Err(FileError::InvalidKey(key.to_string()));
        }
        let Some((name, directories)) = segments.split_last() else {
            return Err(FileError::InvalidKey(key.to_string()));
        };
        if create {
            tokio::fs::create_dir_all(&self.root)
                .await
                .map_err(|err| unavailable("create the directory of", key, &err))?;
        }
        let mut dir = self.root.clone();
        for segment in directories {
            dir.push(segment);
            match tokio::fs::symlink_metadata(&dir).await {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(not_a_directory(key)),
                Err(err) if err.kind() == io::ErrorKind::NotFound && create => {
                    match tokio::fs::create_dir(&dir).await {
                        Ok(()) => {}
                        // Another write created it meanwhile: check what it is.
                        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                            let meta = tokio::fs::symlink_metadata(&dir)
                                .await
                                .map_err(|err| unavailable("create the directory of", key, &err))?;
                            if !meta.is_dir() {
                                return Err(not_a_directory(key));
                            }
                        }
                        Err(err) => return Err(unavailable("create the directory of", key, &err)),
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(err) => return Err(unavailable("read", key, &err)),
            }
        }
        Ok(Some((dir, name)))
    }
}

impl FileStore for LocalDirectory {
    fn put<'a>(&'a self, key: &'a FileKey, content_type: &'a str, bytes: &'a [u8]) -> FileFuture<'a, ()> {
        Box::pin(async move {
            let Some((dir, name)) = self.locate(key, true).await? else {
                return Err(not_a_directory(key));
            };
            // Content type first: a reader never finds a new file without it.
            write_atomically(&dir, &format!("{name}{META_SUFFIX}"), content_type.as_bytes())
                .await
                .map_err(|err| unavailable("write", key, &err))?;
            write_atomically(&dir, name, bytes).await.map_err(|err| unavailable("write", key, &err))
        })
    }

    fn get<'a>(&'a self, key: &'a FileKey) -> FileFuture<'a, Option<StoredFile>> {
        Box::pin(async move {
            let Some((dir, name)) = self.locate(key, false).await? else {
                return Ok(None);
            };
            let Some(bytes) =
                read_regular(&dir.join(name)).await.map_err(|err| unavailable("read", key, &err))?
            else {
                return Ok(None);
            };
            let content_type = read_regular(&dir.join(format!("{name}{META_SUFFIX}")))
                .await
                .map_err(|err| unavailable("read", key, &err))?
                .map(|meta| String::from_utf8_lossy(&meta).into_owned())
                .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned());
            Ok(Some(StoredFile { content_type, bytes }))
        })
    }

    fn delete<'a>(&'a self, key: &'a FileKey) -> FileFuture<'a, ()> {
        Box::pin(async move {
            let Some((dir, name)) = self.locate(key, false).await? else {
                return Ok(());
            };
            remove_if_present(&dir.join(name)).await.map_err(|err| unavailable("delete", key, &err))?;
            remove_if_present(&dir.join(format!("{name}{META_SUFFIX}")))
                .await
                .map_err(|err| unavailable("delete", key, &err))
        })
    }
}

/// Writes `bytes` to a fresh temporary file beside `dir/name`, then renames
/// it over `name`: readers see the old file or the new one, never a part.
async fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let counter = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!("{name}~tmp-{}-{counter}", std::process::id()));
    let written = async {
        // `create_new` never opens an existing file, nor follows a link planted at the name.
        let mut file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&temp).await?;
        file.write_all(bytes).await?;
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&temp, dir.join(name)).await
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&temp).await;
    }
    written
}

/// The content of `path` if it is a regular file (not a link), `None` if nothing is there.
async fn read_regular(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match tokio::fs::symlink_metadata(path).await {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Err(io::Error::new(io::ErrorKind::InvalidData, "not a regular file")),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    }
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(Some(bytes)),
        // Deleted between the two calls.
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

async fn remove_if_present(path: &Path) -> io::Result<()> {
    match tokio::fs::remove_file(path).await {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// An IO failure, named by the key and the error's kind only: no paths of the host.
fn unavailable(action: &str, key: &FileKey, err: &io::Error) -> FileError {
    tracing::warn!(%key, error = %err, "local file store: could not {action} a file");
    FileError::Unavailable(format!("could not {action} {key}: {}", err.kind()))
}

fn not_a_directory(key: &FileKey) -> FileError {
    FileError::Unavailable(format!("could not store {key}: a segment of its path is not a directory"))
}
