//! Portico's backend-for-frontend: the HTTP API of the platform.
//!
//! A library with a thin `main`, so tests start it in process. For now it
//! serves health only; the request pipeline and the API come next.

pub mod cli;
pub mod config;
pub mod seed;
pub mod server;
