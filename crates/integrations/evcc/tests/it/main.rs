//! `EvccSource` against a wiremock server standing in for evcc's `GET /api/state`.

// Test helpers outside `#[test]` functions may stop loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cursor;
mod failures;
mod state;
mod support;
