//! The file stores against a real directory and a mock S3 server.

// Test helpers outside `#[test]` functions may stop loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod local;
mod s3;
