//! The OpenAPI 3.1 document, generated from the code, and the schemas of
//! the envelopes the API answers with.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use portico_store::{AuditRecord, DeadJob, JobCount, JobLatency, JobOverview};
use portico_tenancy::{CreateTenant, PublicTenant, Tenant, TenantStatus, UpdateTenant};
use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::api;

/// The document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Portico API",
        description = "The multi-tenant SaaS backend's API. Every error answers with the error envelope; \
                       every route names the permission it needs as the scope of its bearer requirement. \
                       Answers of `/api/v1` routes carry `RateLimit-Limit`, `RateLimit-Remaining` and \
                       `RateLimit-Reset` (per instance); changes accept an `Idempotency-Key`: a retry with \
                       the same key and request gets the first answer again, marked \
                       `Idempotency-Replayed: true`.",
    ),
    paths(
        document,
        api::public::tenant,
        api::public::logo,
        api::tenants::list,
        api::tenants::create,
        api::tenants::get,
        api::tenants::update,
        api::tenants::delete,
        api::tenants::suspend,
        api::tenants::activate,
        api::onboarding::onboard,
        api::onboarding::sign_up,
        api::onboarding::industries,
        api::tenant_profile::settings,
        api::tenant_profile::update_settings,
        api::tenant_profile::config,
        api::tenant_profile::set_features,
        api::tenant_profile::branding,
        api::tenant_profile::update_branding,
        api::tenant_profile::upload_logo,
        api::tenant_profile::remove_logo,
        api::tenant_profile::logo,
        api::tenant_views::users,
        api::tenant_views::analytics,
        api::tenant_views::overview,
        api::jobs::overview,
        api::jobs::retry,
        api::dev::mailbox,
        api::audit::trail,
        api::audit::platform_trail,
        api::auth::login,
        api::auth::refresh,
        api::auth::logout,
        api::auth::me,
        api::auth::sessions,
        api::auth::end_session,
        api::auth::forgot_password,
        api::auth::reset_password,
        api::auth::send_verification,
        api::auth::verify_email,
        api::auth::switch_tenant,
        api::auth::mfa_setup,
        api::auth::mfa_verify,
        api::auth::mfa_disable,
        api::api_keys::list,
        api::api_keys::create,
        api::api_keys::revoke,
        api::rbac::permissions,
        api::rbac::roles,
        api::rbac::create_role,
        api::rbac::role,
        api::rbac::update_role,
        api::rbac::delete_role,
        api::memberships::change_role,
        api::people::invitations,
        api::people::invite,
        api::people::resend,
        api::people::revoke,
        api::people::accept,
        api::people::list,
        api::people::create,
        api::people::get,
        api::people::update,
        api::people::remove,
        api::people::activate,
        api::people::deactivate,
        api::people::activity,
        api::people::analytics,
        api::people::bulk_import,
        api::people::bulk_export,
        api::people::owners,
        api::people::owner,
        api::people::students,
        api::people::student,
        api::people::parents,
        api::people::parent,
        api::people::staff,
        api::people::staff_member,
        api::admin_users::list,
        api::admin_users::create,
        api::admin_users::get,
        api::admin_users::update,
        api::admin_users::remove,
        api::admin_users::analytics,
        api::admin_users::permissions,
        api::admin_users::set_permissions,
        api::admin_users::activity,
        api::admin_users::invite,
        api::admin_users::reset_password,
        api::admin_users::toggle_mfa,
        api::admin_users::sessions,
        api::admin_users::end_session,
        api::credits::dashboard,
        api::credits::master_wallet,
        api::credits::top_up,
        api::credits::wallets,
        api::credits::wallet,
        api::credits::update_wallet,
        api::credits::add,
        api::credits::adjust,
        api::credits::packages,
        api::credits::create_package,
        api::credits::package,
        api::credits::update_package,
        api::credits::purchase,
        api::credits::custom_plans,
        api::credits::create_plan,
        api::credits::custom_plan,
        api::credits::update_plan,
        api::credits::transactions,
        api::credits::analytics,
        api::credits::pricing,
        api::credits::set_pricing,
        api::credits::debit,
        api::credits::reserve,
        api::credits::reservation,
        api::credits::capture,
        api::credits::release,
        api::metering::sites,
        api::metering::create_site,
        api::metering::site,
        api::metering::update_site,
        api::metering::delete_site,
        api::metering::meters,
        api::metering::create_meter,
        api::metering::meter,
        api::metering::update_meter,
        api::metering::delete_meter,
        api::metering::replace_meter,
        api::metering::readings,
        api::metering::consumption,
        api::metering::add_readings,
        api::metering::import_readings,
        api::metering::ingest_events,
        api::metering::usage,
        api::metering::close_usage,
        api::metering::metrics,
        api::metering::create_metric,
        api::metering::metric,
        api::metering::update_metric,
        api::metering::delete_metric,
        api::metering::sources,
        api::metering::create_source,
        api::metering::delete_source,
    ),
    components(schemas(
        Tenant, TenantStatus, CreateTenant, UpdateTenant, PublicTenant, TenantEnvelope, TenantPageEnvelope,
        PublicTenantEnvelope, PageMeta, JobOverview, JobCount, JobLatency, DeadJob, JobOverviewEnvelope,
        JobRetried, JobRetriedEnvelope, MailboxEnvelope, AuditRecord, AuditPageEnvelope,
        ErrorEnvelope, ErrorBody, api::auth::LoginRequest, api::auth::RefreshRequest, api::auth::SignedIn,
        api::auth::TenantRef, api::auth::Me, api::auth::SessionItem, portico_store::Session,
        portico_tenancy::User, portico_tenancy::UserStatus, SignedInEnvelope, MeEnvelope, SessionListEnvelope,
        api::api_keys::CreateApiKey, api::api_keys::ApiKeyCreated, portico_store::ApiKey, ApiKeyListEnvelope,
        ApiKeyCreatedEnvelope, api::auth::ForgotPassword, api::auth::ResetPassword, api::auth::VerifyEmail,
        AcceptedEnvelope, Accepted, api::auth::Mode, api::auth::BrowserSignedIn, api::auth::SwitchTenant,
        api::auth::MfaCode, api::auth::MfaSetup, api::auth::DisableMfa, MfaSetupEnvelope,
        portico_tenancy::permissions::Permission, PermissionListEnvelope, portico_tenancy::Role,
        api::memberships::ChangeRole, api::memberships::RoleChanged, RoleChangedEnvelope,
        portico_tenancy::CustomRole, portico_tenancy::RoleDraft, api::rbac::BuiltInRole, api::rbac::RoleList,
        RoleListEnvelope, CustomRoleEnvelope, portico_tenancy::Person, portico_tenancy::InvitationState,
        portico_tenancy::MembershipKind, portico_tenancy::MembershipStatus, portico_tenancy::PeopleAnalytics,
        PersonEnvelope, PersonPageEnvelope, PeopleAnalyticsEnvelope, api::people::Invite,
        api::people::UpdatePerson, api::people::AcceptInvitation, api::people::InvitationAccepted,
        InvitationAcceptedEnvelope, api::people::ExportFilter, portico_tenancy::people_import::ImportSummary, ImportSummaryEnvelope,
        portico_tenancy::people_import::ImportReport, portico_tenancy::people_import::RowError,
        api::admin_users::InviteAdmin, api::admin_users::SetAdminPermissions, api::admin_users::ToggleMfa,
        portico_tenancy::MfaAction, api::admin_users::StaffRole, api::admin_users::AdminPermissions,
        AdminPermissionsEnvelope, StaffSessionsEnvelope, portico_credits::Channel, portico_credits::Wallet,
        portico_credits::WalletDetail, portico_credits::Grant, portico_credits::GrantSource, portico_credits::Entry,
        portico_credits::EntryKind, portico_credits::Reservation, portico_credits::ReservationStatus,
        portico_credits::Movement, portico_credits::PackagePurchase, portico_credits::Package,
        portico_credits::PackageCredits, portico_credits::PackageDraft, portico_credits::PriceList,
        portico_credits::ChannelPrice, portico_credits::PriceTier, portico_credits::CustomPlan,
        portico_credits::PlanDraft, portico_credits::TopUp, portico_credits::AddCredits,
        portico_credits::AdjustCredits, portico_credits::Reserve, portico_credits::Debit, portico_credits::Capture,
        portico_credits::WalletSettings, portico_credits::MasterWallet, portico_credits::MasterEntry,
        portico_credits::MasterOverview, portico_credits::CreditDashboard, portico_credits::ChannelConsumption,
        portico_credits::CreditAnalytics, portico_credits::analytics::DailyConsumption,
        portico_credits::analytics::TopConsumer, portico_credits::analytics::Projection, CreditDashboardEnvelope,
        MasterOverviewEnvelope, MasterWalletEnvelope, WalletListEnvelope, WalletDetailEnvelope, WalletEnvelope,
        MovementEnvelope, PackageListEnvelope, PackageEnvelope, PackagePurchaseEnvelope, CustomPlanListEnvelope,
        CustomPlanEnvelope, EntryPageEnvelope, CreditAnalyticsEnvelope, PriceListEnvelope, ReservationEnvelope,
        portico_tenancy::OnboardTenant, portico_tenancy::SignUp, portico_tenancy::OwnerDetails,
        portico_tenancy::Onboarding, portico_tenancy::OnboardingSource, portico_tenancy::WelcomeCredit,
        portico_tenancy::Catalogue, portico_tenancy::FeatureInfo, portico_tenancy::IndustryProfile,
        portico_tenancy::TenantSettings, portico_tenancy::UpdateSettings, portico_tenancy::ContactDetails,
        portico_tenancy::NotificationPreferences, portico_tenancy::NotificationOverrides,
        portico_tenancy::SettingsView, portico_tenancy::EffectiveConfig, portico_tenancy::FeatureState,
        portico_tenancy::FeatureSource, portico_tenancy::SetFeatures, portico_tenancy::Branding,
        portico_tenancy::LogoInfo, portico_tenancy::UpdateBranding, portico_tenancy::TenantAnalytics,
        portico_tenancy::ChannelCredits, portico_tenancy::WeekCount, portico_tenancy::TenantsOverview,
        portico_tenancy::TrialEnding, OnboardingEnvelope, CatalogueEnvelope, SettingsEnvelope, ConfigEnvelope,
        BrandingEnvelope, TenantAnalyticsEnvelope, TenantsOverviewEnvelope,
        portico_metering::Site, portico_metering::SiteKind, portico_metering::SiteDraft, portico_metering::Meter,
        portico_metering::MeterKind, portico_metering::MeterPlace, portico_metering::ReadingMode,
        portico_metering::MeterDraft, portico_metering::MeterChanges, portico_metering::Replacement,
        portico_metering::Reading, portico_metering::ReadingSource, portico_metering::ReadingStatus,
        portico_metering::NewReading, portico_metering::ReadingBatch, portico_metering::RefusedReading,
        portico_metering::Bucket, portico_metering::Granularity, portico_metering::NewUsageEvent,
        portico_metering::EventBatch, portico_metering::IngestReport, portico_metering::BillableMetric,
        portico_metering::MetricDraft, portico_metering::Aggregation, portico_metering::PropertyFilter,
        portico_metering::MeterSource, portico_metering::SourceKind, portico_metering::SourceDraft,
        portico_store::ReadingsAdded, portico_store::FlaggedReading, portico_store::Replaced,
        portico_store::Consumption, portico_store::UsageFigure, api::metering::GroupBy, api::metering::CloseUsage,
        api::metering::UsageClosed, SiteEnvelope, SitePageEnvelope, MeterEnvelope, MeterPageEnvelope,
        ReplacedEnvelope, ReadingPageEnvelope, ConsumptionEnvelope, ReadingsAddedEnvelope, IngestReportEnvelope,
        UsageFigureEnvelope, UsageClosedEnvelope, MetricListEnvelope, MetricEnvelope, MeterSourceListEnvelope,
        MeterSourceEnvelope
    )),
    modifiers(&BearerScheme),
    tags(
        (name = "tenants", description = "The businesses on the platform."),
        (name = "public", description = "Before sign-in: the tenant named by slug or host."),
        (name = "jobs", description = "The platform's background job queue."),
        (name = "dev", description = "Development only: 404 elsewhere."),
        (name = "audit", description = "Who changed what, when, in which request."),
        (name = "auth", description = "Sign-in, tokens and sessions."),
        (name = "api-keys", description = "A tenant's keys for server-to-server calls."),
        (name = "rbac", description = "Roles and permissions."),
        (name = "people", description = "A tenant's people and their invitations."),
        (name = "admin-users", description = "The platform's own staff."),
        (name = "credits", description = "Per-channel prepaid wallets, their ledger and reservations; packages, prices and the platform's stock."),
        (name = "metering", description = "Sites, meters and their readings, consumption, usage events and billable metrics, and the sources readings are pulled from."),
        (name = "meta", description = "This document."),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the operations refer to.
#[derive(Debug)]
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".to_owned());
        http.description =
            Some("An access token; `X-Tenant-ID` lets platform staff act on a tenant.".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

/// What every route declares in [`api::ROUTES`], written into its operation:
/// the `Idempotency-Key` header and its answers, and the 429 of rate limits.
#[derive(Debug)]
struct Guarantees;

impl Modify for Guarantees {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        for route in api::ROUTES.iter() {
            let Some(item) = openapi.paths.paths.get_mut(route.path) else { continue };
            let operation = match route.method {
                "GET" => item.get.as_mut(),
                "POST" => item.post.as_mut(),
                "PUT" => item.put.as_mut(),
                "PATCH" => item.patch.as_mut(),
                "DELETE" => item.delete.as_mut(),
                _ => None,
            };
            let Some(operation) = operation else { continue };
            let responses = &mut operation.responses.responses;
            responses.entry("429".to_owned()).or_insert_with(|| RefOr::T(too_many_requests()));
            if route.idempotency == api::Idempotency::Exempt {
                continue;
            }
            let required = route.idempotency == api::Idempotency::Required;
            operation.parameters.get_or_insert_with(Vec::new).push(RefOr::T(idempotency_key(required)));
            for (status, text) in IDEMPOTENCY_ANSWERS {
                match responses.get_mut(status) {
                    Some(RefOr::T(response)) => {
                        response.description = format!("{} Or {text}", response.description);
                    }
                    _ => {
                        responses.insert(status.to_owned(), RefOr::T(error_response(text)));
                    }
                }
            }
        }
    }
}

/// The answers `Idempotency-Key` adds to a route.
const IDEMPOTENCY_ANSWERS: [(&str, &str); 3] = [
    ("400", "`idempotency.invalid_key`: the Idempotency-Key is not 1 to 255 visible ASCII characters."),
    (
        "409",
        "`idempotency.in_progress`: a request with this Idempotency-Key is still running; retry after \
         `Retry-After` seconds.",
    ),
    ("422", "`idempotency.key_reused`: this Idempotency-Key was used for another request."),
];

fn error_response(description: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorEnvelope"))).build(),
        )
        .build()
}

fn too_many_requests() -> utoipa::openapi::Response {
    use utoipa::openapi::HeaderBuilder;
    use utoipa::openapi::schema::{Object, Type};
    let header = |text: &str| {
        HeaderBuilder::new().schema(Some(Object::with_type(Type::Integer))).description(Some(text)).build()
    };
    let mut response = error_response(
        "`rate_limit.exceeded`: over this route class's limit for the caller (per user or key and per \
         tenant, or per client address on public routes).",
    );
    for (name, text) in [
        ("Retry-After", "Seconds until a request is accepted again."),
        ("RateLimit-Limit", "Requests the bucket holds."),
        ("RateLimit-Remaining", "Requests left now (0)."),
        ("RateLimit-Reset", "Seconds until the bucket is full again."),
    ] {
        response.headers.insert(name.to_owned(), utoipa::openapi::RefOr::T(header(text)));
    }
    response
}

fn idempotency_key(required: bool) -> utoipa::openapi::path::Parameter {
    use utoipa::openapi::Required;
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{Object, Type};
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(if required { Required::True } else { Required::False })
        .description(Some(
            "Makes a retry safe: the same key with the same request within the retention (24 hours by \
             default) answers the first response again (with `Idempotency-Replayed: true`) instead of \
             running twice. Scoped to the caller and the tenant. 1 to 255 visible ASCII characters; a \
             UUID is a good choice.",
        ))
        .schema(Some(Object::with_type(Type::String)))
        .example(Some(serde_json::json!("3f1c2a9e-5b7d-4e2f-9a10-6c8d7e5f4a3b")))
        .build()
}

/// The document as pretty JSON (what `/api/v1/openapi.json` serves and
/// `just openapi` writes to `docs/openapi.json`).
#[must_use]
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        for part in api::documents() {
            doc.merge(part);
        }
        // After the merge, so that every area's routes get their guarantees.
        Guarantees.modify(&mut doc);
        doc.to_pretty_json().unwrap_or_else(|_| "{}".to_owned())
    })
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.", content_type = "application/json"))
)]
pub async fn document() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(json())
}

/// `{"success": true, "data": SignedIn}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedInEnvelope {
    /// Always true.
    pub success: bool,
    /// The tokens.
    pub data: api::auth::SignedIn,
}

/// `{"success": true, "data": Me}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeEnvelope {
    /// Always true.
    pub success: bool,
    /// Who is signed in.
    pub data: api::auth::Me,
}

/// `{"success": true, "data": [SessionItem]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionListEnvelope {
    /// Always true.
    pub success: bool,
    /// The sessions.
    pub data: Vec<api::auth::SessionItem>,
}

/// What an accepted request says will happen.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"message": "A link to confirm your address is on its way."}))]
pub struct Accepted {
    /// For people.
    pub message: String,
}

/// `{"success": true, "data": Accepted}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedEnvelope {
    /// Always true.
    pub success: bool,
    /// What will happen.
    pub data: Accepted,
}

/// `{"success": true, "data": RoleChanged}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleChangedEnvelope {
    /// Always true.
    pub success: bool,
    /// The membership's new role.
    pub data: api::memberships::RoleChanged,
}

/// Declares `{"success": true, "data": T}` envelopes.
macro_rules! envelopes {
    ($($(#[$doc:meta])* $name:ident => $data:ty;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, ::serde::Serialize, ::utoipa::ToSchema)]
        pub struct $name {
            /// Always true.
            pub success: bool,
            /// The answer.
            pub data: $data,
        }
    )*};
}
pub(crate) use envelopes;

envelopes! {
    /// `{"success": true, "data": RoleList}`.
    RoleListEnvelope => api::rbac::RoleList;
    /// `{"success": true, "data": CustomRole}`.
    CustomRoleEnvelope => portico_tenancy::CustomRole;
    /// `{"success": true, "data": Person}`.
    PersonEnvelope => portico_tenancy::Person;
    /// `{"success": true, "data": PeopleAnalytics}`.
    PeopleAnalyticsEnvelope => portico_tenancy::PeopleAnalytics;
    /// `{"success": true, "data": InvitationAccepted}`.
    InvitationAcceptedEnvelope => api::people::InvitationAccepted;
    /// `{"success": true, "data": ImportSummary}`.
    ImportSummaryEnvelope => portico_tenancy::people_import::ImportSummary;
    /// `{"success": true, "data": AdminPermissions}`.
    AdminPermissionsEnvelope => api::admin_users::AdminPermissions;
    /// `{"success": true, "data": [Session]}`.
    StaffSessionsEnvelope => Vec<portico_store::Session>;
    /// `{"success": true, "data": CreditDashboard}`.
    CreditDashboardEnvelope => portico_credits::CreditDashboard;
    /// `{"success": true, "data": MasterOverview}`.
    MasterOverviewEnvelope => portico_credits::MasterOverview;
    /// `{"success": true, "data": MasterWallet}`.
    MasterWalletEnvelope => portico_credits::MasterWallet;
    /// `{"success": true, "data": [Wallet]}`.
    WalletListEnvelope => Vec<portico_credits::Wallet>;
    /// `{"success": true, "data": WalletDetail}`.
    WalletDetailEnvelope => portico_credits::WalletDetail;
    /// `{"success": true, "data": Wallet}`.
    WalletEnvelope => portico_credits::Wallet;
    /// `{"success": true, "data": Movement}`.
    MovementEnvelope => portico_credits::Movement;
    /// `{"success": true, "data": [Package]}`.
    PackageListEnvelope => Vec<portico_credits::Package>;
    /// `{"success": true, "data": Package}`.
    PackageEnvelope => portico_credits::Package;
    /// `{"success": true, "data": PackagePurchase}`.
    PackagePurchaseEnvelope => portico_credits::PackagePurchase;
    /// `{"success": true, "data": [CustomPlan]}`.
    CustomPlanListEnvelope => Vec<portico_credits::CustomPlan>;
    /// `{"success": true, "data": CustomPlan}`.
    CustomPlanEnvelope => portico_credits::CustomPlan;
    /// `{"success": true, "data": CreditAnalytics}`.
    CreditAnalyticsEnvelope => portico_credits::CreditAnalytics;
    /// `{"success": true, "data": PriceList}`.
    PriceListEnvelope => portico_credits::PriceList;
    /// `{"success": true, "data": Reservation}`.
    ReservationEnvelope => portico_credits::Reservation;
    /// `{"success": true, "data": Onboarding}`.
    OnboardingEnvelope => portico_tenancy::Onboarding;
    /// `{"success": true, "data": Catalogue}`.
    CatalogueEnvelope => portico_tenancy::Catalogue;
    /// `{"success": true, "data": SettingsView}`.
    SettingsEnvelope => portico_tenancy::SettingsView;
    /// `{"success": true, "data": EffectiveConfig}`.
    ConfigEnvelope => portico_tenancy::EffectiveConfig;
    /// `{"success": true, "data": Branding}`.
    BrandingEnvelope => portico_tenancy::Branding;
    /// `{"success": true, "data": TenantAnalytics}`.
    TenantAnalyticsEnvelope => portico_tenancy::TenantAnalytics;
    /// `{"success": true, "data": TenantsOverview}`.
    TenantsOverviewEnvelope => portico_tenancy::TenantsOverview;
    /// `{"success": true, "data": Site}`.
    SiteEnvelope => portico_metering::Site;
    /// `{"success": true, "data": Meter}`.
    MeterEnvelope => portico_metering::Meter;
    /// `{"success": true, "data": Replaced}`.
    ReplacedEnvelope => portico_store::Replaced;
    /// `{"success": true, "data": Consumption}`.
    ConsumptionEnvelope => portico_store::Consumption;
    /// `{"success": true, "data": ReadingsAdded}`.
    ReadingsAddedEnvelope => portico_store::ReadingsAdded;
    /// `{"success": true, "data": IngestReport}`.
    IngestReportEnvelope => portico_metering::IngestReport;
    /// `{"success": true, "data": UsageFigure}`.
    UsageFigureEnvelope => portico_store::UsageFigure;
    /// `{"success": true, "data": UsageClosed}`.
    UsageClosedEnvelope => api::metering::UsageClosed;
    /// `{"success": true, "data": [BillableMetric]}`.
    MetricListEnvelope => Vec<portico_metering::BillableMetric>;
    /// `{"success": true, "data": BillableMetric}`.
    MetricEnvelope => portico_metering::BillableMetric;
    /// `{"success": true, "data": [MeterSource]}`.
    MeterSourceListEnvelope => Vec<portico_metering::MeterSource>;
    /// `{"success": true, "data": MeterSource}`.
    MeterSourceEnvelope => portico_metering::MeterSource;
}

/// Declares `{"success": true, "data": [T], "meta": PageMeta}` envelopes.
macro_rules! page_envelopes {
    ($($(#[$doc:meta])* $name:ident => $item:ty;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, ::serde::Serialize, ::utoipa::ToSchema)]
        pub struct $name {
            /// Always true.
            pub success: bool,
            /// This page's items.
            pub data: Vec<$item>,
            /// The numbers to page on.
            pub meta: $crate::openapi::PageMeta,
        }
    )*};
}
pub(crate) use page_envelopes;

page_envelopes! {
    /// `{"success": true, "data": [Site], "meta": PageMeta}`.
    SitePageEnvelope => portico_metering::Site;
    /// `{"success": true, "data": [Meter], "meta": PageMeta}`.
    MeterPageEnvelope => portico_metering::Meter;
    /// `{"success": true, "data": [Reading], "meta": PageMeta}`.
    ReadingPageEnvelope => portico_metering::Reading;
}

/// `{"success": true, "data": [Entry], "meta": PageMeta}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryPageEnvelope {
    /// Always true.
    pub success: bool,
    /// This page's entries, newest first.
    pub data: Vec<portico_credits::Entry>,
    /// The numbers to page on.
    pub meta: PageMeta,
}

/// `{"success": true, "data": [Person], "meta": PageMeta}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonPageEnvelope {
    /// Always true.
    pub success: bool,
    /// This page's people.
    pub data: Vec<portico_tenancy::Person>,
    /// The numbers to page on.
    pub meta: PageMeta,
}

/// `{"success": true, "data": [Permission]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PermissionListEnvelope {
    /// Always true.
    pub success: bool,
    /// The catalogue.
    pub data: Vec<portico_tenancy::permissions::Permission>,
}

/// `{"success": true, "data": MfaSetup}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaSetupEnvelope {
    /// Always true.
    pub success: bool,
    /// The authenticator's secret.
    pub data: api::auth::MfaSetup,
}

/// `{"success": true, "data": [ApiKey]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyListEnvelope {
    /// Always true.
    pub success: bool,
    /// The keys.
    pub data: Vec<portico_store::ApiKey>,
}

/// `{"success": true, "data": ApiKeyCreated}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyCreatedEnvelope {
    /// Always true.
    pub success: bool,
    /// The key and its secret.
    pub data: api::api_keys::ApiKeyCreated,
}

/// `{"success": true, "data": Tenant}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantEnvelope {
    /// Always true.
    pub success: bool,
    /// The tenant.
    pub data: Tenant,
}

/// `{"success": true, "data": PublicTenant}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicTenantEnvelope {
    /// Always true.
    pub success: bool,
    /// The tenant's public face.
    pub data: PublicTenant,
}

/// `{"success": true, "data": JobOverview}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobOverviewEnvelope {
    /// Always true.
    pub success: bool,
    /// The queue.
    pub data: JobOverview,
}

/// A job queued again.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f", "state": "queued"}))]
pub struct JobRetried {
    /// The job.
    #[schema(format = Uuid)]
    pub id: String,
    /// Always `queued`.
    pub state: String,
}

/// `{"success": true, "data": JobRetried}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobRetriedEnvelope {
    /// Always true.
    pub success: bool,
    /// The job.
    pub data: JobRetried,
}

/// `{"success": true, "data": [StoredEmail]}`: the development mailbox.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"success": true, "data": [{
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f", "sentAt": "2026-11-23T09:00:00Z",
    "message": {"from": {"name": "Portico", "address": "no-reply@portico.localhost"},
                "to": [{"address": "owner@acme.example"}], "subject": "Welcome",
                "html": "<p>Welcome</p>", "text": "Welcome"}
}]}))]
pub struct MailboxEnvelope {
    /// Always true.
    pub success: bool,
    /// The kept emails.
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<serde_json::Value>,
}

/// `{"success": true, "data": [AuditRecord], "meta": PageMeta}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPageEnvelope {
    /// Always true.
    pub success: bool,
    /// This page's rows, newest first.
    pub data: Vec<AuditRecord>,
    /// The numbers to page on.
    pub meta: PageMeta,
}

/// `{"success": true, "data": [Tenant], "meta": PageMeta}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantPageEnvelope {
    /// Always true.
    pub success: bool,
    /// This page's tenants.
    pub data: Vec<Tenant>,
    /// The numbers to page on.
    pub meta: PageMeta,
}

/// Where a page stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"page": 1, "limit": 20, "total": 42, "totalPages": 3}))]
pub struct PageMeta {
    /// 1-based page number.
    pub page: u32,
    /// Page size.
    pub limit: u32,
    /// Rows across all pages.
    pub total: u64,
    /// Pages in all.
    pub total_pages: u64,
}

/// `{"success": false, "error": ErrorBody}`: every error, whatever its status.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always false.
    pub success: bool,
    /// What went wrong.
    pub error: ErrorBody,
}

/// An error's stable code, message, details, status and request id.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "code": "tenancy.tenant_not_found",
    "message": "tenant not found",
    "details": null,
    "statusCode": 404,
    "requestId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f"
}))]
pub struct ErrorBody {
    /// Stable, machine-readable (`tenancy.slug_taken`).
    pub code: String,
    /// For people.
    pub message: String,
    /// Machine-readable details (`{"fields": [{"field", "message"}]}` for invalid bodies).
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    /// The HTTP status.
    pub status_code: u16,
    /// The request's id (also in `X-Request-Id`).
    pub request_id: String,
}
