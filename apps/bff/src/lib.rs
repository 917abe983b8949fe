//! Portico's backend-for-frontend: the HTTP API of the platform.
//!
//! A library with a thin `main`, so tests start it in process. The request
//! pipeline: request id and span -> authentication and tenant context ->
//! permission check -> handler -> store -> envelope.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod envelope;
pub mod error;
pub mod jobs;
pub mod json;
pub mod metrics;
pub mod openapi;
pub mod request_id;
pub mod seed;
pub mod server;
