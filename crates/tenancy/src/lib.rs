//! Portico's tenancy domain: the tenants (businesses) of the platform.
//!
//! This crate owns what a tenant is ([`Tenant`]), the commands that create
//! and change one ([`CreateTenant`], [`UpdateTenant`]), validated with garde,
//! the lifecycle rules ([`TenantStatus::apply`]) and the [`TenantStore`]
//! port that the store crate implements; its people, roles and permissions;
//! the industry profiles ([`Catalogue`]) and a tenant's effective
//! configuration ([`effective_config`]: profile defaults, its own
//! [`UpdateSettings`], feature overrides); branding and logo checks
//! ([`logo::inspect`]); and onboarding ([`plan_onboarding`]). It is framework-free: other Rust
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

mod analytics;
mod branding;
mod command;
mod config;
mod error;
mod identity;
mod industry;
pub mod logo;
pub mod mfa;
mod onboarding;
pub mod password;
pub mod people;
pub mod people_import;
pub mod permissions;
pub mod roles;
mod settings;
mod slug;
mod store;
mod tenant;

pub use analytics::{
    ChannelCredits, TRIAL_ENDING_DAYS, TenantAnalytics, TenantsOverview, TrialEnding, WEEKS_SHOWN, WeekCount,
    weekly,
};
pub use branding::{Branding, LogoInfo, UpdateBranding};
pub use command::{CreateTenant, UpdateTenant};
pub use config::{
    EffectiveConfig, FeatureSource, FeatureState, SetFeatures, SettingsView, change_features,
    effective_config,
};
pub use error::{IdentityError, TenancyError};
pub use identity::{
    Email, MembershipKind, MembershipStatus, MembershipView, Role, TenantChoice, User, UserStatus,
    choose_tenant, login_delay,
};
pub use industry::{Catalogue, FeatureInfo, GENERIC_INDUSTRY, IndustryProfile};
pub use onboarding::{
    OnboardTenant, Onboarding, OnboardingPlan, OnboardingSource, OwnerDetails, SignUp, WelcomeCredit,
    plan_onboarding,
};
pub use people::{InvitationState, MfaAction, NewPerson, PeopleAnalytics, Person, PersonFilter, RoleChoice};
pub use roles::{CustomRole, CustomRoleGrant, RoleDraft};
pub use settings::{
    ContactDetails, NotificationOverrides, NotificationPreferences, TenantSettings, UpdateSettings,
};
pub use slug::validate_slug;
pub use store::{TenantFilter, TenantStore};
pub use tenant::{PublicTenant, Tenant, TenantStatus, TenantTransition};
