//! The bff against real PostgreSQL: in process on port 0, and as the real
//! `portico` binary.

// Helpers outside `#[test]` functions are test code too: a failed step stops the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api_keys_api;
mod audit_api;
mod auth_api;
mod binary;
mod credits_api;
mod crm_activities_api;
mod crm_contacts_api;
mod crm_sales_api;
mod crm_transfer_api;
mod guarantees;
mod health;
mod http;
mod hygiene;
mod jobs_api;
mod metering_api;
mod openapi;
mod people_api;
mod seed;
mod support;
mod tenant_profile_api;
mod tenants_api;
mod tickets_api;
