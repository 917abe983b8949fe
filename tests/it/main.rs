//! Workspace-level checks.

// Helpers outside `#[test]` functions are test code too: a failed step stops the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod dependency_rule;
