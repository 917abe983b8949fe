//! Portico's backend-for-frontend: the HTTP API of the platform.
//!
//! A library with a thin `main`, so tests start it in process. The request
//! pipeline: request id and span -> security headers, CORS, compression ->
//! rate limit -> authentication and tenant context -> idempotency claim ->
//! permission check (the handler's extractor) -> cache (reads) -> handler ->
//! store -> envelope.

pub mod api;
pub mod api_keys;
pub mod auth;
pub mod browser;
pub mod cache;
pub mod cache_sync;
pub mod cli;
pub mod client;
pub mod config;
pub mod db;
pub mod envelope;
pub mod error;
pub mod features;
pub mod idempotency;
pub mod jobs;
pub mod json;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
pub mod request_id;
pub mod seed;
pub mod server;
