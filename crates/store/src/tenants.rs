//! The tenancy domain's `TenantStore`, on the `tenants` table.

use chrono::{DateTime, Utc};
use diesel::{
    AsChangeset, BoolExpressionMethods, ExpressionMethods, Insertable, OptionalExtension,
    PgTextExpressionMethods, QueryDsl, Queryable, Selectable, SelectableHelper,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_kernel::{AuditEntry, InfraError, Page, PageRequest, PlatformContext, TenantContext, TenantId};
use portico_tenancy::{
    CreateTenant, PublicTenant, TenancyError, Tenant, TenantFilter, TenantStatus, TenantStore,
    TenantTransition, UpdateTenant,
};

use crate::error::{Failure, is_unique_violation};
use crate::schema::tenants;
use crate::{Store, audit};

/// A `tenants` row; converted to and from the domain's [`Tenant`] here only.
#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = tenants, check_for_backend(diesel::pg::Pg), treat_none_as_null = true)]
pub(crate) struct TenantRow {
    id: uuid::Uuid,
    name: String,
    slug: String,
    contact_email: String,
    phone: Option<String>,
    industry: Option<String>,
    status: String,
    metadata: serde_json::Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
    trial_ends_at: Option<DateTime<Utc>>,
}

impl From<&Tenant> for TenantRow {
    fn from(tenant: &Tenant) -> Self {
        Self {
            id: tenant.id.into_uuid(),
            name: tenant.name.clone(),
            slug: tenant.slug.clone(),
            contact_email: tenant.contact_email.clone(),
            phone: tenant.phone.clone(),
            industry: tenant.industry.clone(),
            status: tenant.status.as_str().to_owned(),
            metadata: tenant.metadata.clone(),
            created_at: tenant.created_at,
            updated_at: tenant.updated_at,
            deleted_at: tenant.deleted_at,
            trial_ends_at: tenant.trial_ends_at,
        }
    }
}

impl TryFrom<TenantRow> for Tenant {
    type Error = InfraError;

    fn try_from(row: TenantRow) -> Result<Self, Self::Error> {
        let status = TenantStatus::from_storage(&row.status).ok_or_else(|| {
            InfraError::internal(format!("tenant {} has unknown status {:?}", row.id, row.status))
        })?;
        Ok(Self {
            id: TenantId::from_uuid(row.id),
            name: row.name,
            slug: row.slug,
            contact_email: row.contact_email,
            phone: row.phone,
            industry: row.industry,
            status,
            trial_ends_at: row.trial_ends_at,
            metadata: row.metadata,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
        })
    }
}

pub(crate) type TenantFailure = Failure<TenancyError>;

fn resolve(failure: TenantFailure) -> TenancyError {
    failure.resolve(|error| {
        is_unique_violation(error, "tenants_slug_key").then(|| TenancyError::SlugTaken(String::new()))
    })
}

/// Loads the live tenant `id` for change, or `NotFound`. The explicit tenant
/// filter is the application's wall; row-level security is the second.
pub(crate) async fn load_for_update(
    conn: &mut AsyncPgConnection,
    scope: TenantId,
    id: TenantId,
) -> Result<Tenant, TenantFailure> {
    if id != scope {
        return Err(Failure::Domain(TenancyError::NotFound));
    }
    let row: Option<TenantRow> = tenants::table
        .filter(tenants::id.eq(scope.into_uuid()))
        .filter(tenants::deleted_at.is_null())
        .select(TenantRow::as_select())
        .for_update()
        .get_result(conn)
        .await
        .optional()?;
    let row = row.ok_or(Failure::Domain(TenancyError::NotFound))?;
    Tenant::try_from(row).map_err(Failure::Infra)
}

/// Writes `after` over its row and audits the change, in the caller's transaction.
pub(crate) async fn save_change(
    conn: &mut AsyncPgConnection,
    ctx: &TenantContext,
    action: &'static str,
    before: &Tenant,
    after: &Tenant,
) -> Result<(), TenantFailure> {
    diesel::update(tenants::table.filter(tenants::id.eq(after.id.into_uuid())))
        .set(TenantRow::from(after))
        .execute(conn)
        .await?;
    if before.deleted_at.is_none() && after.deleted_at.is_some() {
        // A deleted tenant serves no portal: its custom domain is free for another.
        diesel::sql_query("UPDATE tenant_branding SET custom_domain = NULL WHERE tenant_id = $1")
            .bind::<diesel::sql_types::Uuid, _>(after.id.into_uuid())
            .execute(conn)
            .await?;
    }
    let entry = AuditEntry::between(action, "tenant", after.id, Some(before), Some(after));
    audit::record(conn, ctx.tenant_id, ctx.into(), &entry, after.updated_at).await?;
    Ok(())
}

/// `%`, `_` and `\` match themselves in a search, not as wildcards.
fn like_pattern(search: &str) -> String {
    let escaped = search.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

impl TenantStore for Store {
    async fn create(&self, ctx: &PlatformContext, command: CreateTenant) -> Result<Tenant, TenancyError> {
        let slug = command.slug.clone();
        let tenant = Tenant::create(command, TenantId::new(), self.now())?;
        let ctx = ctx.clone();
        self.in_tenant(tenant.id, move |conn| {
            Box::pin(async move {
                diesel::insert_into(tenants::table).values(TenantRow::from(&tenant)).execute(conn).await?;
                let entry = AuditEntry::between("tenant.create", "tenant", tenant.id, None, Some(&tenant));
                audit::record(conn, tenant.id, (&ctx).into(), &entry, tenant.created_at).await?;
                Ok(tenant)
            })
        })
        .await
        .map_err(|failure| match resolve(failure) {
            TenancyError::SlugTaken(_) => TenancyError::SlugTaken(slug),
            other => other,
        })
    }

    async fn get(&self, ctx: &TenantContext, id: TenantId) -> Result<Tenant, TenancyError> {
        if id != ctx.tenant_id {
            return Err(TenancyError::NotFound);
        }
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let row: Option<TenantRow> = tenants::table
                    .filter(tenants::id.eq(id.into_uuid()))
                    .filter(tenants::deleted_at.is_null())
                    .select(TenantRow::as_select())
                    .get_result(conn)
                    .await
                    .optional()?;
                let row = row.ok_or(Failure::Domain(TenancyError::NotFound))?;
                Tenant::try_from(row).map_err(Failure::Infra)
            })
        })
        .await
        .map_err(resolve)
    }

    async fn list(
        &self,
        _ctx: &PlatformContext,
        filter: &TenantFilter,
        page: PageRequest,
    ) -> Result<Page<Tenant>, TenancyError> {
        let filter = filter.clone();
        self.as_platform(move |conn| {
            Box::pin(async move {
                let query = || {
                    let mut query = tenants::table.filter(tenants::deleted_at.is_null()).into_boxed();
                    if let Some(status) = filter.status {
                        query = query.filter(tenants::status.eq(status.as_str()));
                    }
                    if let Some(search) = filter.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                        let pattern = like_pattern(search);
                        query = query
                            .filter(tenants::name.ilike(pattern.clone()).or(tenants::slug.ilike(pattern)));
                    }
                    query
                };
                let total: i64 = query().count().get_result(conn).await?;
                let rows: Vec<TenantRow> = query()
                    .order((tenants::created_at.desc(), tenants::id.desc()))
                    .limit(i64::from(page.limit()))
                    .offset(i64::try_from(page.offset()).unwrap_or(i64::MAX))
                    .select(TenantRow::as_select())
                    .load(conn)
                    .await?;
                let items = rows.into_iter().map(Tenant::try_from).collect::<Result<Vec<_>, _>>();
                Ok(Page::new(items.map_err(Failure::Infra)?, page, u64::try_from(total).unwrap_or(0)))
            })
        })
        .await
        .map_err(resolve)
    }

    async fn find_public(&self, slug: &str) -> Result<PublicTenant, TenancyError> {
        let id = self.in_service(slug).await?;
        // Step 2, scoped to that tenant: row-level security applies to the read.
        self.in_tenant(id, move |conn| {
            Box::pin(async move {
                #[derive(diesel::QueryableByName)]
                struct Face {
                    #[diesel(sql_type = diesel::sql_types::Text)]
                    name: String,
                    #[diesel(sql_type = diesel::sql_types::Text)]
                    slug: String,
                    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
                    display_name: Option<String>,
                    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
                    primary_color: Option<String>,
                    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
                    accent_color: Option<String>,
                    #[diesel(sql_type = diesel::sql_types::Bool)]
                    has_logo: bool,
                }
                let face: Face = diesel::sql_query(
                    "SELECT t.name, t.slug, b.display_name, b.primary_color, b.accent_color, \
                            b.logo_key IS NOT NULL AS has_logo \
                     FROM tenants t LEFT JOIN tenant_branding b ON b.tenant_id = t.id WHERE t.id = $1",
                )
                .bind::<diesel::sql_types::Uuid, _>(id.into_uuid())
                .get_result(conn)
                .await?;
                Ok(PublicTenant {
                    id,
                    name: face.name,
                    slug: face.slug,
                    display_name: face.display_name,
                    primary_color: face.primary_color,
                    accent_color: face.accent_color,
                    has_logo: face.has_logo,
                })
            })
        })
        .await
        .map_err(resolve)
    }

    async fn update(
        &self,
        ctx: &TenantContext,
        id: TenantId,
        command: UpdateTenant,
    ) -> Result<Tenant, TenancyError> {
        let command = command.validated()?;
        let platform = ctx.platform().is_ok() || matches!(ctx.actor, portico_kernel::Actor::System { .. });
        self.change(ctx, id, "tenant.update", move |tenant, now| tenant.update(command, platform, now)).await
    }

    async fn transition(
        &self,
        ctx: &TenantContext,
        id: TenantId,
        action: TenantTransition,
    ) -> Result<Tenant, TenancyError> {
        self.change(ctx, id, action.audit_action(), move |tenant, now| tenant.apply(action, now)).await
    }

    async fn delete(&self, ctx: &TenantContext, id: TenantId) -> Result<(), TenancyError> {
        self.change(ctx, id, "tenant.delete", |tenant, now| tenant.delete(now)).await.map(|_| ())
    }
}

impl Store {
    /// The id of the in-service tenant with `slug`, for pages shown before
    /// sign-in; `NotFound` for unknown, deleted, suspended or inactive tenants alike.
    pub(crate) async fn in_service(&self, slug: &str) -> Result<TenantId, TenancyError> {
        #[derive(diesel::QueryableByName)]
        struct Found {
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
            id: Option<uuid::Uuid>,
        }
        if portico_tenancy::validate_slug(slug).is_err() {
            return Err(TenancyError::NotFound);
        }
        // Unscoped: the definer function reveals the id of a live slug and nothing else.
        let slug = slug.to_owned();
        let found = self
            .in_unscoped(move |conn| {
                Box::pin(async move {
                    let found: Found = diesel::sql_query("SELECT tenant_id_for_slug($1) AS id")
                        .bind::<diesel::sql_types::Text, _>(slug)
                        .get_result(conn)
                        .await?;
                    Ok(found.id)
                })
            })
            .await
            .map_err(resolve)?;
        Ok(TenantId::from_uuid(found.ok_or(TenancyError::NotFound)?))
    }

    /// One change to a tenant: lock its row, let the domain `decide` the new
    /// state, write it and its audit row, all in one scoped transaction.
    async fn change(
        &self,
        ctx: &TenantContext,
        id: TenantId,
        action: &'static str,
        decide: impl FnOnce(&Tenant, DateTime<Utc>) -> Result<Tenant, TenancyError> + Send + 'static,
    ) -> Result<Tenant, TenancyError> {
        let ctx = ctx.clone();
        let now = self.now();
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let before = load_for_update(conn, ctx.tenant_id, id).await?;
                let after = decide(&before, now).map_err(Failure::Domain)?;
                save_change(conn, &ctx, action, &before, &after).await?;
                Ok(after)
            })
        })
        .await
        .map_err(resolve)
    }
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn search_wildcards_are_taken_literally() {
        assert_eq!(like_pattern("acme"), "%acme%");
        assert_eq!(like_pattern("100%_x\\"), "%100\\%\\_x\\\\%");
    }
}
