//! Credits: a tenant's per-channel wallets, its ledger and reservations, the
//! packages and prices it buys at; and the platform's side of them (the
//! master wallet, the price list, packages, tenants' custom plans).
//!
//! A route that moves credits requires an `Idempotency-Key`, and the key is
//! also the operation's reference in the ledger: references are unique per
//! tenant, so a retry the idempotency record does not answer (another
//! person of the tenant, or a record past its retention) still moves
//! nothing twice.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use portico_credits::{
    AddCredits, AdjustCredits, Capture, Channel, CreditsError, CreditsLedger as _, Debit, EntryFilter,
    EntryKind, GrantSource, PackageDraft, PlanDraft, PriceList, Reference, Reserve, TopUp, WalletRef,
    WalletSettings,
};
use portico_kernel::{CustomPlanId, ErrorKind, PackageId, ReservationId, TenantId};
use serde::Deserialize;

use crate::auth::{
    CreditsPurchase, CreditsRead, CreditsSpend, PlatformCreditsRead, PlatformCreditsWrite, Require, permits,
};
use crate::db::Db;
use crate::envelope;
use crate::error::ApiError;
use crate::json::{Json, OptionalJson};
#[allow(unused_imports)] // the OpenAPI attributes name these
use crate::openapi::{
    CreditAnalyticsEnvelope, CreditDashboardEnvelope, CustomPlanEnvelope, CustomPlanListEnvelope,
    EntryPageEnvelope, ErrorEnvelope, MasterOverviewEnvelope, MasterWalletEnvelope, MovementEnvelope,
    PackageEnvelope, PackageListEnvelope, PackagePurchaseEnvelope, PriceListEnvelope, ReservationEnvelope,
    WalletDetailEnvelope, WalletEnvelope, WalletListEnvelope,
};

/// The platform permission that shows what tenants do not see: packages not
/// on sale, every tenant's plans, the platform's analytics.
const PLATFORM_READ: &str = "platform:credits:read";

/// The operation's reference: the request's `Idempotency-Key` (which the
/// route requires).
fn reference(req: &HttpRequest) -> Result<Reference, ApiError> {
    let key = req
        .headers()
        .get(crate::idempotency::KEY_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    Ok(Reference::parse(key)?)
}

fn invalid_query(message: &str) -> ApiError {
    ApiError::new(ErrorKind::Validation, "request.invalid_query", message)
}

#[utoipa::path(
    get,
    path = "/api/v1/credits/dashboard",
    tag = "credits",
    responses(
        (status = 200, description = "The tenant's wallets, what it spent per channel in the last 30 days, its open reservations and latest ledger entries.", body = CreditDashboardEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["credits:read"]))
)]
/// The tenant's credits at a glance.
pub async fn dashboard(auth: Require<CreditsRead>, store: Db) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.credit_dashboard(&auth.ctx).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/credits/master-wallet",
    tag = "credits",
    responses(
        (status = 200, description = "The platform's stock of every channel's credits and its latest movements.", body = MasterOverviewEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:credits:read"]))
)]
/// The master wallet.
pub async fn master_wallet(auth: Require<PlatformCreditsRead>, store: Db) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.master_overview(&auth.platform()?).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/credits/master-wallet/top-up",
    tag = "credits",
    request_body = TopUp,
    responses(
        (status = 200, description = "The channel's stock after the top-up. The `Idempotency-Key` is the top-up's reference.", body = MasterWalletEnvelope),
        (status = 400, description = "No `Idempotency-Key` (`idempotency.key_required`): this route moves credits.", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
        (status = 409, description = "The reference was used for another operation (`credits.reference_reused`).", body = ErrorEnvelope),
        (status = 422, description = "An unknown or mistyped field (`request.invalid_body`), or a bad amount or note (`credits.invalid`, each field named).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:credits:write"]))
)]
/// Adds credits bought from a provider to the platform's stock.
pub async fn top_up(
    req: HttpRequest,
    auth: Require<PlatformCreditsWrite>,
    store: Db,
    body: Json<TopUp>,
) -> Result<HttpResponse, ApiError> {
    let top_up = body.into_inner().validated()?;
    Ok(envelope::ok(store.top_up_master(&auth.platform()?, reference(&req)?, top_up).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/credits/wallets",
    tag = "credits",
    responses(
        (status = 200, description = "The tenant's wallets, by channel (a wallet exists from its first use).", body = WalletListEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["credits:read"]))
)]
/// Lists the tenant's wallets.
pub async fn wallets(auth: Require<CreditsRead>, store: Db) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.wallets(&auth.ctx).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/credits/wallets/{id}",
    tag = "credits",
    params(("id" = String, Path, description = "The wallet's id, or its channel: `sms`, `whatsapp` or `email`.")),
    responses(
        (status = 200, description = "The wallet and the grants it can still draw from, in the order debits draw from them.", body = WalletDetailEnvelope),
        (status = 400, description = "Neither a wallet id nor a channel (`request.invalid_path`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such wallet in this tenant, or none yet for the channel (`credits.wallet_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["credits:read"]))
)]
/// Reads a wallet.
pub async fn wallet(
    auth: Require<CreditsRead>,
    store: Db,
    id: web::Path<WalletRef>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.wallet(&auth.ctx, id.into_inner()).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/credits/wallets/{id}",
    tag = "credits",
    params(("id" = String, Path, description = "The wallet's id, or its channel (which also reaches a wallet not used yet).")),
    request_body = WalletSettings,
    responses(
        (status = 200, description = "The wallet with its new low-balance threshold. A threshold above what is available alerts the tenant's owners and admins at once.", body = WalletEnvelope),
        (status = 400, description = "Neither a wallet id nor a channel (`request.invalid_path`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No wallet with this id in this tenant (`credits.wallet_not_found`).", body = ErrorEnvelope),
        (status = 422, description = "An unknown or mistyped field (`request.invalid_body`), or a threshold out of range (`credits.invalid`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["credits:purchase"]))
)]
/// Sets a wallet's low-balance alert.
pub async fn update_wallet(
    auth: Require<CreditsPurchase>,
    store: Db,
    id: web::Path<WalletRef>,
    body: Json<WalletSettings>,
) -> Result<HttpResponse, ApiError> {
    let settings = body.into_inner().validated()?;
    Ok(envelope::ok(store.set_wallet_settings(&auth.ctx, id.into_inner(), settings).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/credits/wallets/{id}/add",
    tag = "credits",
    params(("id" = String, Path, description = "The wallet's id, or its channel (which also reaches a wallet not used yet).")),
    request_body = AddCredits,
    responses(
        (status = 200, description = "The wallet after the grant and the entry it wrote. A purchase is priced by the tenant's custom plan, else the price list, and moved out of the platform's stock. The `Idempotency-Key` is the operation's reference.", body = MovementEnvelope),
        (status = 400, description = "No `Idempotency-Key` (`idempotency.key_required`): this route moves credits; or neither a wallet id nor a channel (`request.invalid_path`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission, or grants another source than `purchase` without being platform staff holding `platform:credits:write` (`credits.source_not_allowed`).", body = ErrorEnvelope),
        (status = 404, description = "No wallet with this id in this tenant (`credits.wallet_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The platform's stock cannot supply it now (`credits.master_insufficient`), or the reference was used for another operation (`credits.reference_reused`).", body = ErrorEnvelope),
        (status = 422, description = "An unknown or mistyped field (`request.invalid_body`), a bad amount, source, priority or validity (`credits.invalid`), or no price for the channel in the currency (`credits.no_price`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["credits:purchase"]))
)]
/// Buys credits for a wallet (or, for the platform's staff, grants them).
pub async fn add(
    req: HttpRequest,
    auth: Require<CreditsPurchase>,
    store: Db,
    id: web::Path<WalletRef>,
    body: Json<AddCredits>,
) -> Result<HttpResponse, ApiError> {
    let add = body.into_inner().validated()?;
    if add.source != GrantSource::Purchase && !permits(&auth.ctx, "platform:credits:write") {
        return Err(CreditsError::SourceNotAllowed(add.source.as_str()).into());
    }
    Ok(envelope::ok(store.add_credits(&auth.ctx, reference(&req)?, id.into_inner(), add).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/credits/wallets/{id}/adjust",
    tag = "credits",
    params(("id" = String, Path, description = "The wallet's id, or its channel. Name the tenant with `X-Tenant-ID`.")),
    request_body = AdjustCredits,
    responses(
        (status = 200, description = "The wallet after the adjustment and the entries it wrote: credits given come out of the platform's stock, credits taken go back to it. The `Idempotency-Key` is the operation's reference.", body = MovementEnvelope),
        (status = 400, description = "No `Idempotency-Key` (`idempotency.key_required`): this route moves credits; or neither a wallet id nor a channel (`request.invalid_path`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 402, description = "The wallet has fewer credits available than the adjustment takes (`credits.insufficient_balance`).", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
        (status = 404, description = "No wallet with this id in this tenant (`credits.wallet_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The platform's stock cannot supply it now (`credits.master_insufficient`), or the reference was used for another operation (`credits.reference_reused`).", body = ErrorEnvelope),
        (status = 422, description = "An unknown or mistyped field (`request.invalid_body`), a zero or too large amount, or no reason (`credits.invalid`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:credits:write"]))
)]
/// Gives or takes a tenant's credits by hand, with a reason (the platform's staff).
pub async fn adjust(
    req: HttpRequest,
    auth: Require<PlatformCreditsWrite>,
    store: Db,
    id: web::Path<WalletRef>,
    body: Json<AdjustCredits>,
) -> Result<HttpResponse, ApiError> {
    let adjust = body.into_inner().validated()?;
    Ok(envelope::ok(store.adjust_credits(&auth.ctx, reference(&req)?, id.into_inner(), adjust).await?))
}

/// Which packages a listing shows.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackageQuery {
    /// Platform staff holding `platform:credits:read`: packages not on sale too (default false).
    #[serde(default)]
    pub all: Option<bool>,
}

#[utoipa::path(
    get,
    path = "/api/v1/credits/packages",
    tag = "credits",
    params(PackageQuery),
    responses(
        (status = 200, description = "The packages on sale, by name (with `all`, every package).", body = PackageListEnvelope),
        (status = 400, description = "A malformed query (`request.invalid_query`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 422, description = "`all` from someone other than the platform's staff (`request.invalid_query`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["credits:read"]))
)]
/// Lists the credit packages.
pub async fn packages(
    auth: Require<CreditsRead>,
    store: Db,
    query: web::Query<PackageQuery>,
) -> Result<HttpResponse, ApiError> {
    let all = query.all.unwrap_or(false);
    if all && !permits(&auth.ctx, PLATFORM_READ) {
        return Err(invalid_query("all is for the platform's staff."));
    }
    Ok(envelope::ok(store.credit_packages(&auth.ctx, all).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/credits/packages",
    tag = "credits",
    request_body = PackageDraft,
    responses(
        (status = 201, description = "The new package.", body = PackageEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
        (status = 409, description = "Another package has this name (`credits.package_name_taken`).", body = ErrorEnvelope),
        (status = 422, description = "An unknown or mistyped field (`request.invalid_body`), or a bad name, description, credits, price or validity (`credits.invalid`, each field named).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:credits:write"]))
)]
/// Creates a credit package.
pub async fn create_package(
    auth: Require<PlatformCreditsWrite>,
    store: Db,
    body: Json<PackageDraft>,
) -> Result<HttpResponse, ApiError> {
    let draft = body.into_inner().validated()?;
    Ok(envelope::created(store.save_credit_package(&auth.platform()?, None, draft).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/credits/packages/{id}",
    tag = "credits",
    params(("id" = String, Path, format = Uuid, description = "The package's id.")),
    responses(
        (status = 200, description = "The package (one not on sale only for platform staff holding `platform:credits:read`).", body = PackageEnvelope),
        (status = 400, description = "A malformed id (`request.invalid_path`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such package, or not on sale (`credits.package_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["credits:read"]))
)]
/// Reads a credit package.
pub async fn package(
    auth: Require<CreditsRead>,
    store: Db,
    id: web::Path<PackageId>,
) -> Result<HttpResponse, ApiError> {
    let all = permits(&auth.ctx, PLATFORM_READ);
    Ok(envelope::ok(store.credit_package(&auth.ctx, id.into_inner(), all).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/credits/packages/{id}",
    tag = "credits",
    params(("id" = String, Path, format = Uuid, description = "The package's id.")),
    request_body = PackageDraft,
    responses(
        (status = 200, description = "The package as changed (purchases made keep what they bought).", body = PackageEnvelope),
        (status = 400, description = "A malformed id (`request.invalid_path`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such package (`credits.package_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "Another package has this name (`credits.package_name_taken`).", body = ErrorEnvelope),
        (status = 422, description = "An unknown or mistyped field (`request.invalid_body`), or a bad name, description, credits, price or validity (`credits.invalid`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:credits:write"]))
)]
/// Replaces a credit package.
pub async fn update_package(
    auth: Require<PlatformCreditsWrite>,
    store: Db,
    id: web::Path<PackageId>,
    body: Json<PackageDraft>,
) -> Result<HttpResponse, ApiError> {
    let draft = body.into_inner().validated()?;
    Ok(envelope::ok(store.save_credit_package(&auth.platform()?, Some(id.into_inner()), draft).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/credits/packages/{id}/purchase",
    tag = "credits",
    params(("id" = String, Path, format = Uuid, description = "The package's id.")),
    responses(
        (status = 201, description = "Bought: one grant per channel of the package, moved out of the platform's stock, recorded at the package's price. The `Idempotency-Key` is the purchase's reference.", body = PackagePurchaseEnvelope),
        (status = 400, description = "No `Idempotency-Key` (`idempotency.key_required`): this route moves credits; or a malformed id (`request.invalid_path`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such package (`credits.package_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "The package is not on sale (`credits.package_inactive`), the platform's stock cannot supply it now (`credits.master_insufficient`), or the reference was used for another operation (`credits.reference_reused`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["credits:purchase"]))
)]
/// Buys a credit package.
pub async fn purchase(
    req: HttpRequest,
    auth: Require<CreditsPurchase>,
    store: Db,
    id: web::Path<PackageId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::created(store.purchase_package(&auth.ctx, reference(&req)?, id.into_inner()).await?))
}

/// Whose custom plans a listing shows.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanQuery {
    /// Platform staff only: this tenant's plans (default: every tenant's).
    #[serde(default)]
    #[param(value_type = Option<String>, format = Uuid)]
    pub tenant_id: Option<TenantId>,
}

#[utoipa::path(
    get,
    path = "/api/v1/credits/custom-plans",
    tag = "credits",
    params(PlanQuery),
    responses(
        (status = 200, description = "The tenant's custom plans; for platform staff holding `platform:credits:read` on their own tenant, every tenant's (or `tenantId`'s).", body = CustomPlanListEnvelope),
        (status = 400, description = "A malformed query (`request.invalid_query`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 422, description = "`tenantId` from someone other than the platform's staff (`request.invalid_query`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["credits:read"]))
)]
/// Lists custom plans.
pub async fn custom_plans(
    auth: Require<CreditsRead>,
    store: Db,
    query: web::Query<PlanQuery>,
) -> Result<HttpResponse, ApiError> {
    match auth.platform_view(PLATFORM_READ) {
        Some(platform) => Ok(envelope::ok(store.all_custom_plans(&platform, query.tenant_id).await?)),
        None if query.tenant_id.is_some() => Err(invalid_query("tenantId is for the platform's staff.")),
        None => Ok(envelope::ok(store.custom_plans(&auth.ctx).await?)),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/credits/custom-plans",
    tag = "credits",
    request_body = PlanDraft,
    responses(
        (status = 201, description = "The new plan: from `validFrom`, the tenant's purchases of the channel in the currency are priced by it.", body = CustomPlanEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
        (status = 422, description = "An unknown or mistyped field (`request.invalid_body`), or a bad name, tiers, period or tenant (`credits.invalid`, each field named).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:credits:write"]))
)]
/// Creates a tenant's custom plan.
pub async fn create_plan(
    auth: Require<PlatformCreditsWrite>,
    store: Db,
    body: Json<PlanDraft>,
) -> Result<HttpResponse, ApiError> {
    let draft = body.into_inner().validated()?;
    Ok(envelope::created(store.save_custom_plan(&auth.platform()?, None, draft).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/credits/custom-plans/{id}",
    tag = "credits",
    params(("id" = String, Path, format = Uuid, description = "The plan's id.")),
    responses(
        (status = 200, description = "The plan: the tenant's own; any tenant's for platform staff holding `platform:credits:read` on their own tenant.", body = CustomPlanEnvelope),
        (status = 400, description = "A malformed id (`request.invalid_path`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such plan for this tenant (`credits.plan_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["credits:read"]))
)]
/// Reads a custom plan.
pub async fn custom_plan(
    auth: Require<CreditsRead>,
    store: Db,
    id: web::Path<CustomPlanId>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    match auth.platform_view(PLATFORM_READ) {
        Some(platform) => Ok(envelope::ok(store.platform_custom_plan(&platform, id).await?)),
        None => Ok(envelope::ok(store.custom_plan(&auth.ctx, id).await?)),
    }
}

#[utoipa::path(
    put,
    path = "/api/v1/credits/custom-plans/{id}",
    tag = "credits",
    params(("id" = String, Path, format = Uuid, description = "The plan's id.")),
    request_body = PlanDraft,
    responses(
        (status = 200, description = "The plan as changed (it stays with its tenant).", body = CustomPlanEnvelope),
        (status = 400, description = "A malformed id (`request.invalid_path`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such plan for the draft's tenant (`credits.plan_not_found`).", body = ErrorEnvelope),
        (status = 422, description = "An unknown or mistyped field (`request.invalid_body`), or a bad name, tiers, period or tenant (`credits.invalid`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:credits:write"]))
)]
/// Replaces a tenant's custom plan.
pub async fn update_plan(
    auth: Require<PlatformCreditsWrite>,
    store: Db,
    id: web::Path<CustomPlanId>,
    body: Json<PlanDraft>,
) -> Result<HttpResponse, ApiError> {
    let draft = body.into_inner().validated()?;
    Ok(envelope::ok(store.save_custom_plan(&auth.platform()?, Some(id.into_inner()), draft).await?))
}

/// Filters and page of the ledger.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntryQuery {
    /// 1-based page (default 1).
    #[serde(default)]
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only this channel's entries.
    #[serde(default)]
    pub channel: Option<Channel>,
    /// Only entries of this kind.
    #[serde(default)]
    pub kind: Option<EntryKind>,
    /// From this time on (RFC 3339, inclusive).
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// Before this time (RFC 3339).
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
}

#[utoipa::path(
    get,
    path = "/api/v1/credits/transactions",
    tag = "credits",
    params(EntryQuery),
    responses(
        (status = 200, description = "A page of the tenant's ledger, newest first.", body = EntryPageEnvelope),
        (status = 400, description = "A malformed filter: an unknown channel or kind, a time that is not RFC 3339 (`request.invalid_query`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 422, description = "A bad page or limit (`request.invalid_page`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["credits:read"]))
)]
/// Lists the tenant's ledger entries.
pub async fn transactions(
    auth: Require<CreditsRead>,
    store: Db,
    query: web::Query<EntryQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = crate::api::page_request(query.page, query.limit)?;
    let filter = EntryFilter { channel: query.channel, kind: query.kind, from: query.from, to: query.to };
    Ok(envelope::page(&store.credit_entries(&auth.ctx, filter, page).await?))
}

/// The period of the analytics.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AnalyticsQuery {
    /// Days up to today, 1 to 365 (default 30).
    #[serde(default)]
    pub days: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/credits/analytics",
    tag = "credits",
    params(AnalyticsQuery),
    responses(
        (status = 200, description = "Consumption per channel per day, and how long each wallet lasts at that pace; for platform staff holding `platform:credits:read` on their own tenant, every tenant's, the top consumers and the platform's stock.", body = CreditAnalyticsEnvelope),
        (status = 400, description = "A malformed query (`request.invalid_query`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 422, description = "`days` out of 1 to 365 (`request.invalid_query`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["credits:read"]))
)]
/// Credit consumption and projections.
pub async fn analytics(
    auth: Require<CreditsRead>,
    store: Db,
    query: web::Query<AnalyticsQuery>,
) -> Result<HttpResponse, ApiError> {
    let days = query.days.unwrap_or(30);
    if !(1..=365).contains(&days) {
        return Err(invalid_query("days is 1 to 365."));
    }
    match auth.platform_view(PLATFORM_READ) {
        Some(platform) => Ok(envelope::ok(store.platform_credit_analytics(&platform, days).await?)),
        None => Ok(envelope::ok(store.credit_analytics(&auth.ctx, days).await?)),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/credits/pricing",
    tag = "credits",
    responses(
        (status = 200, description = "The platform's price list: per channel and currency, volume tiers.", body = PriceListEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
    ),
    security(("bearer" = ["credits:read"]))
)]
/// The price list.
pub async fn pricing(auth: Require<CreditsRead>, store: Db) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.credit_prices(&auth.ctx).await?))
}

#[utoipa::path(
    put,
    path = "/api/v1/credits/pricing",
    tag = "credits",
    request_body = PriceList,
    responses(
        (status = 200, description = "The new price list (it replaces the whole list; purchases made keep their price).", body = PriceListEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "Not platform staff with the permission.", body = ErrorEnvelope),
        (status = 422, description = "An unknown or mistyped field (`request.invalid_body`), bad tiers, or a channel and currency twice (`credits.invalid`, each field named).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["platform:credits:write"]))
)]
/// Replaces the price list.
pub async fn set_pricing(
    auth: Require<PlatformCreditsWrite>,
    store: Db,
    body: Json<PriceList>,
) -> Result<HttpResponse, ApiError> {
    let list = body.into_inner().validated()?;
    Ok(envelope::ok(store.set_credit_prices(&auth.platform()?, list).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/credits/debits",
    tag = "credits",
    request_body = Debit,
    responses(
        (status = 201, description = "The credits are spent, drawn from the wallet's grants in order (debit entries). The `Idempotency-Key` is the debit's reference.", body = MovementEnvelope),
        (status = 400, description = "No `Idempotency-Key` (`idempotency.key_required`): this route moves credits.", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 402, description = "The wallet has fewer credits available (`credits.insufficient_balance`); nothing is spent.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 409, description = "The reference was used for another operation (`credits.reference_reused`).", body = ErrorEnvelope),
        (status = 422, description = "An unknown or mistyped field (`request.invalid_body`), or a bad amount (`credits.invalid`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["credits:spend"]))
)]
/// Spends credits at once (a send that needs no hold).
pub async fn debit(
    req: HttpRequest,
    auth: Require<CreditsSpend>,
    store: Db,
    body: Json<Debit>,
) -> Result<HttpResponse, ApiError> {
    let debit = body.into_inner().validated()?;
    Ok(envelope::created(store.debit(&auth.ctx, reference(&req)?, debit).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/credits/reservations",
    tag = "credits",
    request_body = Reserve,
    responses(
        (status = 201, description = "The credits are held (the wallet's `held` rises, its `available` falls) until captured, released or the hold runs out. The `Idempotency-Key` is the reservation's reference.", body = MovementEnvelope),
        (status = 400, description = "No `Idempotency-Key` (`idempotency.key_required`): this route moves credits.", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 402, description = "The wallet has fewer credits available (`credits.insufficient_balance`); nothing is held.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 409, description = "The reference was used for another operation (`credits.reference_reused`).", body = ErrorEnvelope),
        (status = 422, description = "An unknown or mistyped field (`request.invalid_body`), or a bad amount or hold (`credits.invalid`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["credits:spend"]))
)]
/// Holds credits for a send about to happen.
pub async fn reserve(
    req: HttpRequest,
    auth: Require<CreditsSpend>,
    store: Db,
    body: Json<Reserve>,
) -> Result<HttpResponse, ApiError> {
    let reserve = body.into_inner().validated()?;
    Ok(envelope::created(store.reserve(&auth.ctx, reference(&req)?, reserve).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/credits/reservations/{id}",
    tag = "credits",
    params(("id" = String, Path, format = Uuid, description = "The reservation's id.")),
    responses(
        (status = 200, description = "The reservation.", body = ReservationEnvelope),
        (status = 400, description = "A malformed id (`request.invalid_path`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such reservation in this tenant (`credits.reservation_not_found`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["credits:read"]))
)]
/// Reads a reservation.
pub async fn reservation(
    auth: Require<CreditsRead>,
    store: Db,
    id: web::Path<ReservationId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.reservation(&auth.ctx, id.into_inner()).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/credits/reservations/{id}/capture",
    tag = "credits",
    params(("id" = String, Path, format = Uuid, description = "The reservation's id.")),
    request_body(content = Option<Capture>, description = "Optional: without a body (or without `amount`) every held credit is spent."),
    responses(
        (status = 200, description = "The held credits are spent (the rest of the hold goes back), with the entries written. The `Idempotency-Key` is the capture's reference.", body = MovementEnvelope),
        (status = 400, description = "No `Idempotency-Key` (`idempotency.key_required`): this route moves credits; or a malformed id (`request.invalid_path`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such reservation in this tenant (`credits.reservation_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "Already captured or released (`credits.reservation_settled`), the hold ran out and its credits went back (`credits.reservation_expired`), or the reference was used for another operation (`credits.reference_reused`).", body = ErrorEnvelope),
        (status = 422, description = "An unknown or mistyped field (`request.invalid_body`), or an amount of none or more than was held (`credits.capture_exceeds_hold`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["credits:spend"]))
)]
/// Spends held credits.
pub async fn capture(
    req: HttpRequest,
    auth: Require<CreditsSpend>,
    store: Db,
    id: web::Path<ReservationId>,
    body: OptionalJson<Capture>,
) -> Result<HttpResponse, ApiError> {
    let capture = body.into_inner().unwrap_or_default();
    Ok(envelope::ok(store.capture(&auth.ctx, reference(&req)?, id.into_inner(), capture).await?))
}

#[utoipa::path(
    post,
    path = "/api/v1/credits/reservations/{id}/release",
    tag = "credits",
    params(("id" = String, Path, format = Uuid, description = "The reservation's id.")),
    responses(
        (status = 200, description = "The held credits are back in the wallet. The `Idempotency-Key` is the release's reference.", body = MovementEnvelope),
        (status = 400, description = "No `Idempotency-Key` (`idempotency.key_required`): this route moves credits; or a malformed id (`request.invalid_path`).", body = ErrorEnvelope),
        (status = 401, description = "No valid credentials.", body = ErrorEnvelope),
        (status = 403, description = "The caller lacks the permission.", body = ErrorEnvelope),
        (status = 404, description = "No such reservation in this tenant (`credits.reservation_not_found`).", body = ErrorEnvelope),
        (status = 409, description = "Already captured or released (`credits.reservation_settled`), lapsed and given back already (`credits.reservation_expired`), or the reference was used for another operation (`credits.reference_reused`).", body = ErrorEnvelope),
    ),
    security(("bearer" = ["credits:spend"]))
)]
/// Gives held credits back (the send failed or was cancelled).
pub async fn release(
    req: HttpRequest,
    auth: Require<CreditsSpend>,
    store: Db,
    id: web::Path<ReservationId>,
) -> Result<HttpResponse, ApiError> {
    Ok(envelope::ok(store.release(&auth.ctx, reference(&req)?, id.into_inner()).await?))
}
