//! The file store port: where uploaded files (logos, later invoice PDFs and
//! exports) live, always under their tenant's prefix.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::TenantId;

/// Longest path accepted below a tenant's prefix.
const MAX_PATH_LEN: usize = 512;

/// Where a file lives: `<tenant id>/<path>`. The tenant prefix is part of
/// the type, so no code can name a file outside its tenant's space.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileKey {
    tenant: TenantId,
    key: String,
}

impl FileKey {
    /// The key of `path` in `tenant`'s space. A path is 1 to 512 characters
    /// of `/`-separated segments of `a-z A-Z 0-9 . _ -`; empty, `.` and `..`
    /// segments are refused, so a key never climbs out of its prefix.
    pub fn new(tenant: TenantId, path: &str) -> Result<Self, FileError> {
        let valid_segment = |segment: &str| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        };
        if path.is_empty() || path.len() > MAX_PATH_LEN || !path.split('/').all(valid_segment) {
            return Err(FileError::InvalidKey(path.to_owned()));
        }
        Ok(Self { tenant, key: format!("{tenant}/{path}") })
    }

    /// Reads a stored key back (`<tenant id>/<path>`), checking it as [`FileKey::new`] does.
    pub fn parse(key: &str) -> Result<Self, FileError> {
        let (tenant, path) = key.split_once('/').ok_or_else(|| FileError::InvalidKey(key.to_owned()))?;
        let tenant = tenant.parse::<TenantId>().map_err(|_| FileError::InvalidKey(key.to_owned()))?;
        Self::new(tenant, path)
    }

    /// The tenant whose space holds the file.
    #[must_use]
    pub const fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// The whole key, tenant prefix first.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

/// A file as stored: its bytes and the media type it was stored with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// `image/png`, ...
    pub content_type: String,
    /// The content.
    pub bytes: Vec<u8>,
}

/// Why a file store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// The key is not a valid file key.
    #[error("invalid file key {0:?}")]
    InvalidKey(String),
    /// The store could not be reached, refused the credentials, or failed.
    #[error("file store unavailable: {0}")]
    Unavailable(String),
}

/// A future of a file store operation.
pub type FileFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, FileError>> + Send + 'a>>;

/// Stores files: a local directory in development, an S3-compatible object
/// store in production. Writing a key again replaces the file.
pub trait FileStore: Send + Sync {
    /// Stores `bytes` under `key` with `content_type`.
    fn put<'a>(&'a self, key: &'a FileKey, content_type: &'a str, bytes: &'a [u8]) -> FileFuture<'a, ()>;

    /// The file under `key`, or `None` if there is none.
    fn get<'a>(&'a self, key: &'a FileKey) -> FileFuture<'a, Option<StoredFile>>;

    /// Removes the file under `key`; removing a missing file succeeds.
    fn delete<'a>(&'a self, key: &'a FileKey) -> FileFuture<'a, ()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_starts_with_its_tenant() {
        let tenant = TenantId::new();
        let key = FileKey::new(tenant, "branding/logo-1.png").unwrap();
        assert_eq!(key.as_str(), format!("{tenant}/branding/logo-1.png"));
        assert_eq!(key.tenant(), tenant);
        assert_eq!(FileKey::parse(key.as_str()).unwrap(), key);
    }

    #[test]
    fn a_key_cannot_climb_out_of_its_prefix() {
        let tenant = TenantId::new();
        for path in ["", "/abs", "a//b", "../other", "a/../../b", "a/./b", "a b", "a\\b", "ü.png", "a/"] {
            assert!(FileKey::new(tenant, path).is_err(), "{path:?} accepted");
        }
        assert!(FileKey::new(tenant, &"a".repeat(513)).is_err());
        assert!(FileKey::parse("not-a-uuid/logo.png").is_err());
        assert!(FileKey::parse("logo.png").is_err());
    }
}
