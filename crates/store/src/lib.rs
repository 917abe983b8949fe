//! Portico's store: the only crate that speaks SQL.
//!
//! It implements every domain's store port on PostgreSQL with diesel-async,
//! embeds the migrations, and bootstraps the three database roles
//! (`portico_owner`, `portico_app`, `portico_platform`). Request code runs on
//! the `portico_app` pool in transactions scoped to one tenant, so that
//! row-level security backs up every query's own tenant filter.

mod admin;
mod audit;
mod credits;
mod credits_catalogue;
mod credits_views;
mod crm;
mod crm_activities;
mod crm_contacts;
mod crm_sales;
mod crm_tickets;
mod crm_transfer;
mod error;
mod idempotency;
mod identity;
mod jobs;
mod meter_sources;
mod meters;
mod migrations;
mod onboarding;
mod people;
mod rbac;
mod roles;
mod schedules;
mod schema;
mod store;
mod tenant_profile;
mod tenant_views;
mod tenants;
mod usage;

/// The channel on which every committed change of a cached resource is
/// announced as `resource:tenant_id:id` (a trigger per cached table sends it).
pub const CACHE_CHANNEL: &str = "portico_cache";

pub use admin::{
    Admin, DatabaseInfo, SETUP_REVISION, bootstrap, ensure_platform_tenant, platform_tenant_exists,
};
pub use audit::{AuditFilter, AuditRecord};
pub use crm_contacts::{
    CompanyFilter, CompanySort, ContactFilter, ContactSort, DuplicateKind, Duplicates, MAX_DUPLICATE_GROUPS,
    MAX_GROUP_MEMBERS, MAX_SEARCH_WORDS,
};
pub use crm_sales::{DealFilter, DealSort, LeadConversion, LeadFilter, LeadSort};
pub use crm_transfer::{ExportedContact, ExportedLead};
pub use error::StoreError;
pub use idempotency::{
    Claim, Completion, IdempotencyScope, IdempotencyTimes, StoredResponse, Unit, fingerprint,
};
pub use identity::{
    ApiKey, ApiKeyPrincipal, Credentials, NewApiKey, NewSession, NewUser, OneTimePurpose, OneTimeToken,
    Session,
};
pub use jobs::{
    ClaimedJob, DeadJob, FailOutcome, JOBS_CHANNEL, JobCount, JobLatency, JobNotifications, JobOverview,
    Notifications, enqueue_in,
};
pub use meter_sources::{PullOutcome, PullSource};
pub use meters::{Consumption, FlaggedReading, MeterFilter, ReadingsAdded, Replaced};
pub use migrations::{
    MIGRATIONS_DIGEST, embedded_versions, revert_all_migrations, revert_last_migration, run_migrations,
    run_next_migration,
};
pub use people::{Accepted, PeopleCursor};
pub use roles::{
    APP_ROLE, DatabaseUrls, OWNER_ROLE, PLATFORM_ROLE, RolePasswords, redact_url, with_database,
};
pub use store::{PoolConfig, PoolStatus, Store};
pub use tenant_profile::LogoChange;
pub use usage::{MetricKey, UsageFigure};
pub use {
    crm_activities::ActivityFilter,
    crm_tickets::{TicketFilter, TicketOrder},
};
