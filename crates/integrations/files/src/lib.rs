//! File storage for Portico's `FileStore` port (`portico_kernel::FileStore`).
//!
//! - [`LocalDirectory`]: files under a local directory, written atomically,
//!   with the content type in a sidecar. For development and tests.
//! - [`S3Store`]: an S3-compatible object store (AWS S3, MinIO, Ceph, ...)
//!   over HTTP, every request signed with AWS Signature Version 4.
//!
//! Both keep a file at its key, `<tenant id>/<path>`, so each tenant's files
//! sit under their own prefix. Failures are `FileError::Unavailable` with a
//! message naming the key, never a host path or a credential.

mod local;
mod s3;

pub use local::LocalDirectory;
pub use s3::{S3Config, S3Store};
