//! Portico's tenancy domain: the tenants (businesses) of the platform.
//!
//! This crate owns what a tenant is ([`Tenant`]), the commands that create
//! and change one ([`CreateTenant`], [`UpdateTenant`]), validated with garde,
//! the lifecycle rules ([`TenantStatus::apply`]) and the [`TenantStore`]
//! port that the store crate implements. It is framework-free: other Rust
//! services use it as a plain library.
//!
//! ```
//! use chrono::Utc;
//! use portico_kernel::TenantId;
//! use portico_tenancy::{CreateTenant, Tenant, TenantStatus, TenantTransition};
//!
//! let command: CreateTenant = serde_json::from_str(
//!     r#"{"name": "Acme Property", "slug": "acme", "contactEmail": "ops@acme.example"}"#,
//! )
//! .unwrap();
//! let tenant = Tenant::create(command, TenantId::new(), Utc::now()).unwrap();
//! assert_eq!(tenant.status, TenantStatus::Trial);
//!
//! let suspended = tenant.apply(TenantTransition::Suspend, Utc::now()).unwrap();
//! assert_eq!(suspended.status, TenantStatus::Suspended);
//! ```

mod command;
mod error;
mod identity;
pub mod mfa;
pub mod password;
pub mod people;
pub mod people_import;
pub mod permissions;
pub mod roles;
mod slug;
mod store;
mod tenant;

pub use command::{CreateTenant, UpdateTenant};
pub use error::{IdentityError, TenancyError};
pub use identity::{
    Email, MembershipKind, MembershipStatus, MembershipView, Role, TenantChoice, User, UserStatus,
    choose_tenant, login_delay,
};
pub use people::{InvitationState, MfaAction, NewPerson, PeopleAnalytics, Person, PersonFilter, RoleChoice};
pub use roles::{CustomRole, CustomRoleGrant, RoleDraft};
pub use slug::validate_slug;
pub use store::{TenantFilter, TenantStore};
pub use tenant::{PublicTenant, Tenant, TenantStatus, TenantTransition};
