//! The store against real PostgreSQL: each test on a database of its own,
//! connecting as the unprivileged `portico_app` role unless it says otherwise.

// Helpers outside `#[test]` functions are test code too: a failed step stops the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bootstrap;
mod credits;
mod crm_activities;
mod crm_contacts;
mod crm_sales;
mod crm_tickets;
mod crm_transfer;
mod harness;
mod idempotency;
mod identity;
mod isolation;
mod jobs;
mod meters;
mod migrations;
mod people;
mod pool;
mod schedules;
mod support;
mod tenant_profile;
mod tenants;
mod usage;
