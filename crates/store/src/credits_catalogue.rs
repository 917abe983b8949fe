//! The platform's side of credits: its stock (the master wallet), its
//! price list, its packages, and tenants' custom plans.

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_credits::{
    Channel, CreditsError, CustomPlan, MasterEntry, MasterOverview, MasterWallet, Package, PackageDraft,
    PlanDraft, PriceList, Reference, TopUp,
};
use portico_kernel::{
    AuditEntry, CustomPlanId, EntryId, PLATFORM_TENANT_ID, PackageId, PlatformContext, TenantContext,
    TenantId, ValidationErrors,
};
use serde_json::json;

use crate::credits::{
    CreditsFailure, PACKAGE_COLUMNS, PLAN_COLUMNS, PackageRow, PlanRow, actor_text, channel_of, corrupt,
    domain, load_package, load_plans, load_prices, remember, replayed, resolve,
};
use crate::error::{Failure, is_foreign_key_violation};
use crate::{Store, audit};

#[derive(QueryableByName)]
struct MasterRow {
    #[diesel(sql_type = Text)]
    channel: String,
    #[diesel(sql_type = BigInt)]
    balance: i64,
    #[diesel(sql_type = BigInt)]
    sold: i64,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct MasterEntryRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    channel: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = BigInt)]
    amount: i64,
    #[diesel(sql_type = BigInt)]
    balance_after: i64,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    buyer_tenant_id: Option<uuid::Uuid>,
    #[diesel(sql_type = Text)]
    reference: String,
    #[diesel(sql_type = Nullable<Text>)]
    note: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

async fn master_wallets(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
) -> Result<Vec<MasterWallet>, CreditsFailure> {
    let rows: Vec<MasterRow> = diesel::sql_query(
        "SELECT w.channel, w.balance, w.updated_at, \
                coalesce((SELECT -sum(e.amount) FROM credit_master_entries e \
                           WHERE e.tenant_id = w.tenant_id AND e.channel = w.channel AND e.kind = 'sale' \
                             AND e.created_at >= $2), 0)::int8 AS sold \
           FROM credit_master_wallets w WHERE w.tenant_id = $1",
    )
    .bind::<SqlUuid, _>(PLATFORM_TENANT_ID.into_uuid())
    .bind::<Timestamptz, _>(now - chrono::Duration::days(30))
    .load(conn)
    .await?;
    // Every channel is shown, stocked or not.
    Channel::ALL
        .into_iter()
        .map(|channel| {
            let row = rows.iter().find(|r| r.channel == channel.as_str());
            Ok(MasterWallet {
                channel,
                balance: row.map_or(0, |r| r.balance),
                sold_last_30_days: row.map_or(0, |r| r.sold),
                updated_at: row.map_or(now, |r| r.updated_at),
            })
        })
        .collect()
}

fn plan_audit(action: &'static str, id: CustomPlanId, changes: serde_json::Value) -> AuditEntry {
    AuditEntry { action, resource_type: "credit_custom_plan", resource_id: id.to_string(), changes }
}

fn package_audit(action: &'static str, id: PackageId, changes: serde_json::Value) -> AuditEntry {
    AuditEntry { action, resource_type: "credit_package", resource_id: id.to_string(), changes }
}

fn unknown_tenant(failure: CreditsFailure) -> CreditsError {
    match failure {
        Failure::Db(ref error) if is_foreign_key_violation(error) => {
            CreditsError::Invalid(ValidationErrors::field("tenantId", "no such tenant"))
        }
        other => resolve(other),
    }
}

impl Store {
    /// The platform's stock per channel and its latest movements.
    pub async fn master_overview(&self, _ctx: &PlatformContext) -> Result<MasterOverview, CreditsError> {
        let now = self.now();
        self.in_tenant(PLATFORM_TENANT_ID, move |conn| {
            Box::pin(async move {
                let wallets = master_wallets(conn, now).await?;
                let rows: Vec<MasterEntryRow> = diesel::sql_query(
                    "SELECT id, channel, kind, amount, balance_after, buyer_tenant_id, reference, note, created_at \
                       FROM credit_master_entries WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT 20",
                )
                .bind::<SqlUuid, _>(PLATFORM_TENANT_ID.into_uuid())
                .load(conn)
                .await?;
                let recent = rows
                    .into_iter()
                    .map(|r| {
                        Ok(MasterEntry {
                            id: EntryId::from_uuid(r.id),
                            channel: channel_of(&r.channel)?,
                            kind: r.kind,
                            amount: r.amount,
                            balance_after: r.balance_after,
                            tenant_id: r.buyer_tenant_id.map(TenantId::from_uuid),
                            reference: r.reference,
                            note: r.note,
                            created_at: r.created_at,
                        })
                    })
                    .collect::<Result<_, CreditsFailure>>()?;
                Ok(MasterOverview { wallets, recent })
            })
        })
        .await
        .map_err(resolve)
    }

    /// Adds what the platform bought from a provider to its stock.
    pub async fn top_up_master(
        &self,
        ctx: &PlatformContext,
        reference: Reference,
        top_up: TopUp,
    ) -> Result<MasterWallet, CreditsError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(PLATFORM_TENANT_ID, move |conn| {
            Box::pin(async move {
                let platform = PLATFORM_TENANT_ID.into_uuid();
                // The stock row is locked (or created) first, so a repeated reference waits for the first.
                diesel::sql_query(
                    "INSERT INTO credit_master_wallets (tenant_id, channel, balance, updated_at) VALUES ($1, $2, 0, $3) \
                     ON CONFLICT (tenant_id, channel) DO UPDATE SET updated_at = credit_master_wallets.updated_at",
                )
                .bind::<SqlUuid, _>(platform)
                .bind::<Text, _>(top_up.channel.as_str())
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                let request = json!({"channel": top_up.channel, "amount": top_up.amount, "note": top_up.note});
                if let Some(first) = replayed(conn, PLATFORM_TENANT_ID, &reference, "top_up", &request).await? {
                    return Ok(first);
                }
                #[derive(QueryableByName)]
                struct After {
                    #[diesel(sql_type = BigInt)]
                    balance: i64,
                }
                let after: After = diesel::sql_query(
                    "UPDATE credit_master_wallets SET balance = balance + $3, updated_at = $4 \
                     WHERE tenant_id = $1 AND channel = $2 RETURNING balance",
                )
                .bind::<SqlUuid, _>(platform)
                .bind::<Text, _>(top_up.channel.as_str())
                .bind::<BigInt, _>(top_up.amount)
                .bind::<Timestamptz, _>(now)
                .get_result(conn)
                .await?;
                diesel::sql_query(
                    "INSERT INTO credit_master_entries (tenant_id, id, channel, kind, amount, balance_after, reference, \
                                                        actor, note, created_at) \
                     VALUES ($1, $2, $3, 'top_up', $4, $5, $6, $7, $8, $9)",
                )
                .bind::<SqlUuid, _>(platform)
                .bind::<SqlUuid, _>(EntryId::new().into_uuid())
                .bind::<Text, _>(top_up.channel.as_str())
                .bind::<BigInt, _>(top_up.amount)
                .bind::<BigInt, _>(after.balance)
                .bind::<Text, _>(reference.as_str())
                .bind::<Text, _>(actor_text(&ctx.actor))
                .bind::<Text, _>(&top_up.note)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                let wallet = master_wallets(conn, now)
                    .await?
                    .into_iter()
                    .find(|w| w.channel == top_up.channel)
                    .ok_or_else(|| corrupt("master wallet"))?;
                let entry = AuditEntry {
                    action: "credits.master_top_up",
                    resource_type: "credit_master_wallet",
                    resource_id: top_up.channel.as_str().to_owned(),
                    changes: json!({"amount": top_up.amount, "note": top_up.note, "balance": after.balance}),
                };
                audit::record(conn, PLATFORM_TENANT_ID, (&ctx).into(), &entry, now).await?;
                remember(conn, PLATFORM_TENANT_ID, &reference, "top_up", &request, &wallet, now).await?;
                Ok(wallet)
            })
        })
        .await
        .map_err(resolve)
    }

    /// The platform's price list (every tenant may read it).
    pub async fn credit_prices(&self, ctx: &TenantContext) -> Result<PriceList, CreditsError> {
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move { Ok(PriceList { prices: load_prices(conn).await? }) })
        })
        .await
        .map_err(resolve)
    }

    /// Replaces the price list, audited with what it was before.
    pub async fn set_credit_prices(
        &self,
        ctx: &PlatformContext,
        list: PriceList,
    ) -> Result<PriceList, CreditsError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(PLATFORM_TENANT_ID, move |conn| {
            Box::pin(async move {
                let platform = PLATFORM_TENANT_ID.into_uuid();
                // Two replacements at once take turns (the second's DELETE would miss the first's rows).
                diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext('credit_prices'))").execute(conn).await?;
                let before = load_prices(conn).await?;
                diesel::sql_query("DELETE FROM credit_prices WHERE tenant_id = $1")
                    .bind::<SqlUuid, _>(platform)
                    .execute(conn)
                    .await?;
                for price in &list.prices {
                    diesel::sql_query(
                        "INSERT INTO credit_prices (tenant_id, channel, currency, tiers, updated_at) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind::<SqlUuid, _>(platform)
                    .bind::<Text, _>(price.channel.as_str())
                    .bind::<Text, _>(price.currency.code())
                    .bind::<Jsonb, _>(serde_json::to_value(&price.tiers).map_err(corrupt)?)
                    .bind::<Timestamptz, _>(now)
                    .execute(conn)
                    .await?;
                }
                let entry = AuditEntry {
                    action: "credits.pricing_update",
                    resource_type: "credit_pricing",
                    resource_id: "price_list".to_owned(),
                    changes: json!({"prices": {"before": before, "after": list.prices}}),
                };
                audit::record(conn, PLATFORM_TENANT_ID, (&ctx).into(), &entry, now).await?;
                Ok(PriceList { prices: load_prices(conn).await? })
            })
        })
        .await
        .map_err(resolve)
    }

    /// The packages, by name: only those on sale unless `all`.
    pub async fn credit_packages(
        &self,
        ctx: &TenantContext,
        all: bool,
    ) -> Result<Vec<Package>, CreditsError> {
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let rows: Vec<PackageRow> = diesel::sql_query(format!(
                    "SELECT {PACKAGE_COLUMNS} FROM credit_packages WHERE tenant_id = $1 AND (active OR $2) ORDER BY lower(name)"
                ))
                .bind::<SqlUuid, _>(PLATFORM_TENANT_ID.into_uuid())
                .bind::<Bool, _>(all)
                .load(conn)
                .await?;
                rows.into_iter().map(PackageRow::into_package).collect()
            })
        })
        .await
        .map_err(resolve)
    }

    /// Package `id`; one not on sale is shown only when `all`.
    pub async fn credit_package(
        &self,
        ctx: &TenantContext,
        id: PackageId,
        all: bool,
    ) -> Result<Package, CreditsError> {
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let package = load_package(conn, id).await?;
                if !package.active && !all {
                    return domain(CreditsError::PackageNotFound);
                }
                Ok(package)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Creates or replaces (`id`) a package, audited.
    pub async fn save_credit_package(
        &self,
        ctx: &PlatformContext,
        id: Option<PackageId>,
        draft: PackageDraft,
    ) -> Result<Package, CreditsError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(PLATFORM_TENANT_ID, move |conn| {
            Box::pin(async move {
                let before = match id {
                    Some(id) => Some(load_package(conn, id).await?),
                    None => None,
                };
                let id = id.unwrap_or_default();
                diesel::sql_query(
                    "INSERT INTO credit_packages (tenant_id, id, name, description, credits, price_minor, currency, \
                                                  validity_days, active, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
                     ON CONFLICT (tenant_id, id) DO UPDATE SET name = $3, description = $4, credits = $5, \
                         price_minor = $6, currency = $7, validity_days = $8, active = $9, updated_at = $10",
                )
                .bind::<SqlUuid, _>(PLATFORM_TENANT_ID.into_uuid())
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<Text, _>(draft.name.trim())
                .bind::<Text, _>(&draft.description)
                .bind::<Jsonb, _>(serde_json::to_value(&draft.credits).map_err(corrupt)?)
                .bind::<BigInt, _>(draft.price.amount_minor())
                .bind::<Text, _>(draft.price.currency().code())
                .bind::<Nullable<Integer>, _>(draft.validity_days.and_then(|d| i32::try_from(d).ok()))
                .bind::<Bool, _>(draft.active)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                let after = load_package(conn, id).await?;
                let action = if before.is_some() { "credits.package_update" } else { "credits.package_create" };
                let changes = json!({"before": before, "after": after});
                audit::record(conn, PLATFORM_TENANT_ID, (&ctx).into(), &package_audit(action, id, changes), now).await?;
                Ok(after)
            })
        })
        .await
        .map_err(resolve)
    }

    /// The context's tenant's own custom plans.
    pub async fn custom_plans(&self, ctx: &TenantContext) -> Result<Vec<CustomPlan>, CreditsError> {
        let tenant = ctx.tenant_id;
        self.in_tenant(tenant, move |conn| Box::pin(load_plans(conn, tenant))).await.map_err(resolve)
    }

    /// Every tenant's custom plans (or one tenant's), for the platform's staff.
    pub async fn all_custom_plans(
        &self,
        _ctx: &PlatformContext,
        tenant: Option<TenantId>,
    ) -> Result<Vec<CustomPlan>, CreditsError> {
        self.as_platform(move |conn| {
            Box::pin(async move {
                let rows: Vec<PlanRow> = diesel::sql_query(format!(
                    "SELECT {PLAN_COLUMNS} FROM credit_custom_plans WHERE ($1::uuid IS NULL OR tenant_id = $1) \
                     ORDER BY tenant_id, valid_from DESC, id LIMIT 1000"
                ))
                .bind::<Nullable<SqlUuid>, _>(tenant.map(TenantId::into_uuid))
                .load(conn)
                .await?;
                rows.into_iter().map(PlanRow::into_plan).collect()
            })
        })
        .await
        .map_err(resolve)
    }

    /// Custom plan `id` of the context's tenant.
    pub async fn custom_plan(
        &self,
        ctx: &TenantContext,
        id: CustomPlanId,
    ) -> Result<CustomPlan, CreditsError> {
        let tenant = ctx.tenant_id;
        self.in_tenant(tenant, move |conn| {
            Box::pin(async move {
                load_plans(conn, tenant)
                    .await?
                    .into_iter()
                    .find(|plan| plan.id == id)
                    .ok_or(Failure::Domain(CreditsError::PlanNotFound))
            })
        })
        .await
        .map_err(resolve)
    }

    /// Custom plan `id` of any tenant, for the platform's staff.
    pub async fn platform_custom_plan(
        &self,
        _ctx: &PlatformContext,
        id: CustomPlanId,
    ) -> Result<CustomPlan, CreditsError> {
        self.as_platform(move |conn| Box::pin(plan_by_id(conn, None, id, false))).await.map_err(resolve)
    }

    /// Creates or replaces (`id`) a tenant's custom plan, audited in that tenant's trail.
    /// The draft names the tenant; an `id` of another tenant's plan is not found.
    pub async fn save_custom_plan(
        &self,
        ctx: &PlatformContext,
        id: Option<CustomPlanId>,
        draft: PlanDraft,
    ) -> Result<CustomPlan, CreditsError> {
        // One transaction in the plan's tenant (a plan never moves: updating
        // it under another tenant finds nothing), so it can run under an
        // `Idempotency-Key` on one pool.
        let (ctx, now, tenant) = (ctx.clone(), self.now(), draft.tenant_id);
        self.in_tenant(tenant, move |conn| {
            Box::pin(async move {
                let before = match id {
                    Some(id) => Some(plan_by_id(conn, Some(tenant), id, true).await?),
                    None => None,
                };
                let id = id.unwrap_or_default();
                diesel::sql_query(
                    "INSERT INTO credit_custom_plans (tenant_id, id, name, channel, currency, tiers, valid_from, \
                                                      valid_until, active, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
                     ON CONFLICT (tenant_id, id) DO UPDATE SET name = $3, channel = $4, currency = $5, tiers = $6, \
                         valid_from = $7, valid_until = $8, active = $9, updated_at = $10",
                )
                .bind::<SqlUuid, _>(tenant.into_uuid())
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<Text, _>(draft.name.trim())
                .bind::<Text, _>(draft.channel.as_str())
                .bind::<Text, _>(draft.currency.code())
                .bind::<Jsonb, _>(serde_json::to_value(&draft.tiers).map_err(corrupt)?)
                .bind::<Timestamptz, _>(draft.valid_from.unwrap_or(now))
                .bind::<Nullable<Timestamptz>, _>(draft.valid_until)
                .bind::<Bool, _>(draft.active)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                let after = plan_by_id(conn, Some(tenant), id, true).await?;
                let action = if before.is_some() { "credits.plan_update" } else { "credits.plan_create" };
                let changes = json!({"before": before, "after": after});
                audit::record(conn, tenant, (&ctx).into(), &plan_audit(action, id, changes), now).await?;
                Ok(after)
            })
        })
        .await
        .map_err(unknown_tenant)
    }
}

/// Plan `id` of `tenant` (of any tenant on the platform pool when `None`), locked when `lock`.
async fn plan_by_id(
    conn: &mut AsyncPgConnection,
    tenant: Option<TenantId>,
    id: CustomPlanId,
    lock: bool,
) -> Result<CustomPlan, CreditsFailure> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row: Option<PlanRow> = diesel::sql_query(format!(
        "SELECT {PLAN_COLUMNS} FROM credit_custom_plans WHERE ($1::uuid IS NULL OR tenant_id = $1) AND id = $2{lock}"
    ))
    .bind::<Nullable<SqlUuid>, _>(tenant.map(TenantId::into_uuid))
            .bind::<SqlUuid, _>(id.into_uuid())
            .get_result(conn)
            .await
            .optional()?;
    row.ok_or(Failure::Domain(CreditsError::PlanNotFound))?.into_plan()
}
