//! A tenant's settings, feature overrides and branding, and the effective
//! configuration computed from them and its industry profile.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_kernel::{AuditEntry, FileKey, FileStore, InfraError, TenantContext, TenantId};
use portico_tenancy::logo::Logo;
use portico_tenancy::{
    Branding, Catalogue, EffectiveConfig, LogoInfo, SetFeatures, TenancyError, UpdateBranding,
    UpdateSettings, change_features, effective_config,
};
use serde_json::json;

use crate::error::{Failure, is_unique_violation};
use crate::{Store, audit};

pub(crate) type ProfileFailure = Failure<TenancyError>;

fn resolve(failure: ProfileFailure) -> TenancyError {
    failure.resolve(|error| {
        is_unique_violation(error, "tenant_branding_domain_key").then_some(TenancyError::DomainTaken)
    })
}

pub(crate) fn corrupt(what: impl std::fmt::Display) -> ProfileFailure {
    Failure::Infra(InfraError::internal(format!("tenant profile: {what}")))
}

/// What is stored of a tenant's configuration.
#[derive(QueryableByName)]
struct ProfileRow {
    #[diesel(sql_type = Nullable<Text>)]
    industry: Option<String>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    settings: Option<serde_json::Value>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    features: Option<serde_json::Value>,
}

/// A tenant's stored configuration: industry, own settings, feature overrides.
pub(crate) struct Profile {
    pub(crate) industry: Option<String>,
    pub(crate) settings: UpdateSettings,
    pub(crate) features: BTreeMap<String, bool>,
}

impl Profile {
    pub(crate) fn effective(&self) -> Result<EffectiveConfig, TenancyError> {
        effective_config(Catalogue::builtin()?, self.industry.as_deref(), &self.settings, &self.features)
    }
}

/// The live tenant `tenant`'s stored configuration (locked for change with
/// `lock`), or `NotFound`.
pub(crate) async fn load_profile(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    lock: bool,
) -> Result<Profile, ProfileFailure> {
    let row: Option<ProfileRow> = diesel::sql_query(format!(
        "SELECT t.industry, s.settings, s.features FROM tenants t \
         LEFT JOIN tenant_settings s ON s.tenant_id = t.id \
         WHERE t.id = $1 AND t.deleted_at IS NULL{}",
        if lock { " FOR UPDATE OF t" } else { "" }
    ))
    .bind::<SqlUuid, _>(tenant.into_uuid())
    .get_result(conn)
    .await
    .optional()?;
    let row = row.ok_or(Failure::Domain(TenancyError::NotFound))?;
    let settings = match row.settings {
        Some(value) => serde_json::from_value(value).map_err(corrupt)?,
        None => UpdateSettings::default(),
    };
    let features = match row.features {
        Some(value) => serde_json::from_value(value).map_err(corrupt)?,
        None => BTreeMap::new(),
    };
    Ok(Profile { industry: row.industry, settings, features })
}

/// Writes a tenant's own settings and feature overrides.
pub(crate) async fn save_profile(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    settings: &UpdateSettings,
    features: &BTreeMap<String, bool>,
    now: DateTime<Utc>,
) -> Result<(), ProfileFailure> {
    diesel::sql_query(
        "INSERT INTO tenant_settings (tenant_id, settings, features, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id) DO UPDATE SET settings = EXCLUDED.settings, features = EXCLUDED.features, \
                                               updated_at = EXCLUDED.updated_at",
    )
    .bind::<SqlUuid, _>(tenant.into_uuid())
    .bind::<Jsonb, _>(serde_json::to_value(settings).map_err(corrupt)?)
    .bind::<Jsonb, _>(serde_json::to_value(features).map_err(corrupt)?)
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await?;
    Ok(())
}

fn audit_entry(action: &'static str, tenant: TenantId, changes: serde_json::Value) -> AuditEntry {
    AuditEntry { action, resource_type: "tenant", resource_id: tenant.to_string(), changes }
}

#[derive(QueryableByName)]
struct BrandingRow {
    #[diesel(sql_type = Nullable<Text>)]
    display_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    primary_color: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    accent_color: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    custom_domain: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    logo_key: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    logo_content_type: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    logo_size: Option<i64>,
    #[diesel(sql_type = Nullable<Integer>)]
    logo_width: Option<i32>,
    #[diesel(sql_type = Nullable<Integer>)]
    logo_height: Option<i32>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    logo_updated_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
}

impl BrandingRow {
    fn into_branding(self) -> (Branding, Option<String>) {
        let logo = match (self.logo_content_type, self.logo_size, self.logo_updated_at) {
            (Some(content_type), Some(size), Some(updated_at)) => Some(LogoInfo {
                content_type,
                size: u64::try_from(size).unwrap_or(0),
                width: self.logo_width.and_then(|w| u32::try_from(w).ok()),
                height: self.logo_height.and_then(|h| u32::try_from(h).ok()),
                updated_at,
            }),
            _ => None,
        };
        let branding = Branding {
            display_name: self.display_name,
            primary_color: self.primary_color,
            accent_color: self.accent_color,
            custom_domain: self.custom_domain,
            logo,
            updated_at: Some(self.updated_at),
        };
        (branding, self.logo_key)
    }
}

/// The tenant's branding and its logo's file key (defaults when never set).
async fn load_branding(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    lock: bool,
) -> Result<(Branding, Option<String>), ProfileFailure> {
    // The tenant row first: a deleted tenant has no branding to show or change.
    load_profile(conn, tenant, lock).await?;
    let row: Option<BrandingRow> = diesel::sql_query(
        "SELECT display_name, primary_color, accent_color, custom_domain, logo_key, logo_content_type, logo_size, \
                logo_width, logo_height, logo_updated_at, updated_at \
         FROM tenant_branding WHERE tenant_id = $1",
    )
    .bind::<SqlUuid, _>(tenant.into_uuid())
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map_or_else(|| (Branding::default(), None), BrandingRow::into_branding))
}

/// Writes the whole branding row.
async fn save_branding(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    branding: &Branding,
    logo_key: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), ProfileFailure> {
    let logo = branding.logo.as_ref();
    diesel::sql_query(
        "INSERT INTO tenant_branding (tenant_id, display_name, primary_color, accent_color, custom_domain, logo_key, \
                                      logo_content_type, logo_size, logo_width, logo_height, logo_updated_at, \
                                      updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (tenant_id) DO UPDATE SET display_name = EXCLUDED.display_name, \
             primary_color = EXCLUDED.primary_color, accent_color = EXCLUDED.accent_color, \
             custom_domain = EXCLUDED.custom_domain, logo_key = EXCLUDED.logo_key, \
             logo_content_type = EXCLUDED.logo_content_type, logo_size = EXCLUDED.logo_size, \
             logo_width = EXCLUDED.logo_width, logo_height = EXCLUDED.logo_height, \
             logo_updated_at = EXCLUDED.logo_updated_at, updated_at = EXCLUDED.updated_at",
    )
    .bind::<SqlUuid, _>(tenant.into_uuid())
    .bind::<Nullable<Text>, _>(branding.display_name.as_deref())
    .bind::<Nullable<Text>, _>(branding.primary_color.as_deref())
    .bind::<Nullable<Text>, _>(branding.accent_color.as_deref())
    .bind::<Nullable<Text>, _>(branding.custom_domain.as_deref())
    .bind::<Nullable<Text>, _>(logo_key)
    .bind::<Nullable<Text>, _>(logo.map(|l| l.content_type.as_str()))
    .bind::<Nullable<BigInt>, _>(logo.map(|l| i64::try_from(l.size).unwrap_or(i64::MAX)))
    .bind::<Nullable<Integer>, _>(logo.and_then(|l| l.width).and_then(|w| i32::try_from(w).ok()))
    .bind::<Nullable<Integer>, _>(logo.and_then(|l| l.height).and_then(|h| i32::try_from(h).ok()))
    .bind::<Nullable<Timestamptz>, _>(logo.map(|l| l.updated_at))
    .bind::<Timestamptz, _>(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Where `tenant`'s logo is stored and its media type, or `LogoNotFound`.
async fn logo_of(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
) -> Result<(FileKey, String), ProfileFailure> {
    let (branding, key) = load_branding(conn, tenant, false).await?;
    match (key, branding.logo) {
        (Some(key), Some(logo)) => Ok((FileKey::parse(&key).map_err(corrupt)?, logo.content_type)),
        _ => Err(Failure::Domain(TenancyError::LogoNotFound)),
    }
}

/// The file store failed: unavailable to the caller, the cause in the logs.
fn file_store(error: portico_kernel::FileError) -> TenancyError {
    tracing::error!(%error, "file store");
    TenancyError::Store(InfraError::unavailable(error))
}

/// Deletes a file no longer used; a failure leaves an orphan file, logged, not an error.
async fn forget(files: &dyn FileStore, key: Option<&FileKey>) {
    if let Some(key) = key
        && let Err(error) = files.delete(key).await
    {
        tracing::warn!(%key, %error, "an unused file could not be deleted");
    }
}

/// A logo change: the branding after it, and the file it replaced (the
/// caller removes that file once the change is committed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoChange {
    /// The branding now.
    pub branding: Branding,
    /// The key of the file no longer used, if any.
    pub replaced: Option<FileKey>,
}

fn only_own(ctx: &TenantContext, id: TenantId) -> Result<(), TenancyError> {
    if id == ctx.tenant_id { Ok(()) } else { Err(TenancyError::NotFound) }
}

impl Store {
    /// The effective configuration of tenant `id` (the context's own).
    pub async fn tenant_config(
        &self,
        ctx: &TenantContext,
        id: TenantId,
    ) -> Result<EffectiveConfig, TenancyError> {
        only_own(ctx, id)?;
        self.config_of(id).await
    }

    /// The effective configuration of `tenant`, for the edge's feature
    /// gate: the caller has resolved the tenant from an authenticated request.
    pub async fn config_of(&self, tenant: TenantId) -> Result<EffectiveConfig, TenancyError> {
        self.in_tenant(tenant, move |conn| {
            Box::pin(
                async move { load_profile(conn, tenant, false).await?.effective().map_err(Failure::Domain) },
            )
        })
        .await
        .map_err(resolve)
    }

    /// Replaces tenant `id`'s own settings (validated; keys not given follow
    /// its industry profile again). Audits `tenant.settings.update`.
    pub async fn update_settings(
        &self,
        ctx: &TenantContext,
        id: TenantId,
        settings: UpdateSettings,
    ) -> Result<EffectiveConfig, TenancyError> {
        only_own(ctx, id)?;
        let settings = settings.validated()?;
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(id, move |conn| {
            Box::pin(async move {
                let before = load_profile(conn, id, true).await?;
                let changes = json!({"settings": {"before": before.settings, "after": settings}});
                let after = Profile { settings, ..before };
                let config = after.effective().map_err(Failure::Domain)?;
                save_profile(conn, id, &after.settings, &after.features, now).await?;
                audit::record(
                    conn,
                    id,
                    (&ctx).into(),
                    &audit_entry("tenant.settings.update", id, changes),
                    now,
                )
                .await?;
                Ok(config)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Sets or removes feature overrides of tenant `id` (the platform's
    /// staff only; the caller checks the permission). Unknown features are
    /// refused and nothing changes; the platform tenant has every feature
    /// and takes no overrides. Audits `tenant.features.update`.
    pub async fn set_features(
        &self,
        ctx: &TenantContext,
        id: TenantId,
        changes: SetFeatures,
    ) -> Result<EffectiveConfig, TenancyError> {
        only_own(ctx, id)?;
        if id == portico_kernel::PLATFORM_TENANT_ID {
            // It has every feature, whatever its flags would say.
            return Err(TenancyError::PlatformTenantProtected);
        }
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(id, move |conn| {
            Box::pin(async move {
                let before = load_profile(conn, id, true).await?;
                let features = change_features(
                    Catalogue::builtin().map_err(Failure::Domain)?,
                    &before.features,
                    &changes,
                )
                .map_err(Failure::Domain)?;
                let audit_changes = json!({"features": {"before": before.features, "after": features}});
                let after = Profile { features, ..before };
                let config = after.effective().map_err(Failure::Domain)?;
                save_profile(conn, id, &after.settings, &after.features, now).await?;
                let entry = audit_entry("tenant.features.update", id, audit_changes);
                audit::record(conn, id, (&ctx).into(), &entry, now).await?;
                Ok(config)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Tenant `id`'s branding (empty when never set).
    pub async fn branding(&self, ctx: &TenantContext, id: TenantId) -> Result<Branding, TenancyError> {
        only_own(ctx, id)?;
        self.in_tenant(id, move |conn| Box::pin(async move { Ok(load_branding(conn, id, false).await?.0) }))
            .await
            .map_err(resolve)
    }

    /// Replaces tenant `id`'s branding (the logo stays). A custom domain
    /// another tenant uses is refused. Audits `tenant.branding.update`.
    pub async fn update_branding(
        &self,
        ctx: &TenantContext,
        id: TenantId,
        command: UpdateBranding,
    ) -> Result<Branding, TenancyError> {
        only_own(ctx, id)?;
        let command = command.validated()?;
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(id, move |conn| {
            Box::pin(async move {
                let (before, logo_key) = load_branding(conn, id, true).await?;
                let after = before.update(command, now);
                save_branding(conn, id, &after, logo_key.as_deref(), now).await?;
                let entry =
                    AuditEntry::between("tenant.branding.update", "tenant", id, Some(&before), Some(&after));
                audit::record(conn, id, (&ctx).into(), &entry, now).await?;
                Ok(after)
            })
        })
        .await
        .map_err(resolve)
    }

    /// Uploads tenant `id`'s logo: checks the bytes against the declared
    /// `content_type` (`portico_tenancy::logo::inspect`), writes the file
    /// under a new tenant-prefixed key, records it, then deletes the file it
    /// replaced. When the record fails the new file is deleted; a failed
    /// delete leaves an orphan file (logged), never a record without its file.
    pub async fn upload_logo(
        &self,
        ctx: &TenantContext,
        id: TenantId,
        files: &dyn FileStore,
        bytes: &[u8],
        content_type: &str,
    ) -> Result<Branding, TenancyError> {
        let logo = portico_tenancy::logo::inspect(bytes, content_type)?;
        // Access first, so nothing is written for a caller who may not change this tenant.
        self.branding(ctx, id).await?;
        let path = LogoInfo::path(uuid::Uuid::now_v7(), logo.format);
        let key = FileKey::new(id, &path).map_err(|e| TenancyError::Store(InfraError::internal(e)))?;
        files.put(&key, logo.format.content_type(), bytes).await.map_err(file_store)?;
        match self.set_logo(ctx, id, key.clone(), logo).await {
            Ok(change) => {
                forget(files, change.replaced.as_ref()).await;
                Ok(change.branding)
            }
            Err(error) => {
                forget(files, Some(&key)).await;
                Err(error)
            }
        }
    }

    /// Removes tenant `id`'s logo and then its file.
    pub async fn delete_logo(
        &self,
        ctx: &TenantContext,
        id: TenantId,
        files: &dyn FileStore,
    ) -> Result<Branding, TenancyError> {
        let change = self.remove_logo(ctx, id).await?;
        forget(files, change.replaced.as_ref()).await;
        Ok(change.branding)
    }

    /// Records `logo`, stored under `key`, as tenant `id`'s logo. Audits `tenant.logo.update`.
    pub async fn set_logo(
        &self,
        ctx: &TenantContext,
        id: TenantId,
        key: FileKey,
        logo: Logo,
    ) -> Result<LogoChange, TenancyError> {
        only_own(ctx, id)?;
        if key.tenant() != id {
            return Err(TenancyError::Store(InfraError::internal("a logo key outside its tenant's space")));
        }
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(id, move |conn| {
            Box::pin(async move {
                let (before, old_key) = load_branding(conn, id, true).await?;
                let info = LogoInfo {
                    content_type: logo.format.content_type().to_owned(),
                    size: u64::try_from(logo.size).unwrap_or(u64::MAX),
                    width: logo.width,
                    height: logo.height,
                    updated_at: now,
                };
                let after = Branding { logo: Some(info), updated_at: Some(now), ..before.clone() };
                save_branding(conn, id, &after, Some(key.as_str()), now).await?;
                let entry = AuditEntry::between(
                    "tenant.logo.update",
                    "tenant",
                    id,
                    Some(&before.logo),
                    Some(&after.logo),
                );
                audit::record(conn, id, (&ctx).into(), &entry, now).await?;
                let replaced =
                    old_key.filter(|old| old != key.as_str()).map(|old| FileKey::parse(&old)).transpose();
                Ok(LogoChange { branding: after, replaced: replaced.map_err(corrupt)? })
            })
        })
        .await
        .map_err(resolve)
    }

    /// Removes tenant `id`'s logo. Audits `tenant.logo.remove`.
    pub async fn remove_logo(&self, ctx: &TenantContext, id: TenantId) -> Result<LogoChange, TenancyError> {
        only_own(ctx, id)?;
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(id, move |conn| {
            Box::pin(async move {
                let (before, old_key) = load_branding(conn, id, true).await?;
                let old_key = old_key.ok_or(Failure::Domain(TenancyError::LogoNotFound))?;
                let after = Branding { logo: None, updated_at: Some(now), ..before.clone() };
                save_branding(conn, id, &after, None, now).await?;
                let entry = AuditEntry::between(
                    "tenant.logo.remove",
                    "tenant",
                    id,
                    Some(&before.logo),
                    Some(&after.logo),
                );
                audit::record(conn, id, (&ctx).into(), &entry, now).await?;
                Ok(LogoChange { branding: after, replaced: Some(FileKey::parse(&old_key).map_err(corrupt)?) })
            })
        })
        .await
        .map_err(resolve)
    }

    /// Where the logo of the in-service tenant with `slug` is stored, and
    /// its media type, for pages shown before sign-in.
    pub async fn public_logo(&self, slug: &str) -> Result<(FileKey, String), TenancyError> {
        let id = self.in_service(slug).await?;
        self.in_tenant(id, move |conn| Box::pin(async move { logo_of(conn, id).await }))
            .await
            .map_err(resolve)
    }

    /// Where tenant `id`'s logo is stored, and its media type.
    pub async fn logo(&self, ctx: &TenantContext, id: TenantId) -> Result<(FileKey, String), TenancyError> {
        only_own(ctx, id)?;
        self.in_tenant(id, move |conn| Box::pin(async move { logo_of(conn, id).await }))
            .await
            .map_err(resolve)
    }
}
