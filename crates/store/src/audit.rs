//! Writing the audit trail, inside the transaction of the change it records.

use chrono::{DateTime, Utc};
use diesel::Insertable;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_kernel::{
    Actor, AuditEntry, AuditId, Origin, PlatformContext, RequestId, TenantContext, TenantId,
};

use crate::schema::audit_log;

#[derive(Insertable)]
#[diesel(table_name = audit_log)]
struct NewAuditRow<'a> {
    tenant_id: uuid::Uuid,
    id: uuid::Uuid,
    actor_type: &'a str,
    actor_id: Option<uuid::Uuid>,
    actor_tenant_id: Option<uuid::Uuid>,
    actor_name: Option<&'a str>,
    action: &'a str,
    resource_type: &'a str,
    resource_id: &'a str,
    changes: &'a serde_json::Value,
    request_id: &'a str,
    ip: Option<ipnet::IpNet>,
    user_agent: Option<&'a str>,
    occurred_at: DateTime<Utc>,
}

/// Who did a change, in which request, from where: what every audit row carries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct By<'a> {
    pub(crate) actor: &'a Actor,
    pub(crate) request_id: &'a RequestId,
    pub(crate) origin: &'a Origin,
}

impl<'a> From<&'a TenantContext> for By<'a> {
    fn from(ctx: &'a TenantContext) -> Self {
        Self { actor: &ctx.actor, request_id: &ctx.request_id, origin: &ctx.origin }
    }
}

impl<'a> From<&'a PlatformContext> for By<'a> {
    fn from(ctx: &'a PlatformContext) -> Self {
        Self { actor: &ctx.actor, request_id: &ctx.request_id, origin: &ctx.origin }
    }
}

/// Appends `entry` to `tenant`'s audit trail on `conn` (which must be inside
/// the transaction of the change, scoped to `tenant`).
pub(crate) async fn record(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    by: By<'_>,
    entry: &AuditEntry,
    at: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    let (actor_type, actor_id, actor_tenant_id, actor_name) = match by.actor {
        Actor::User { user_id, tenant_id } => {
            ("user", Some(user_id.into_uuid()), Some(tenant_id.into_uuid()), None)
        }
        Actor::ApiKey { key_id, tenant_id } => {
            ("api_key", Some(key_id.into_uuid()), Some(tenant_id.into_uuid()), None)
        }
        Actor::System { name } => ("system", None, None, Some(name.as_str())),
    };
    diesel::insert_into(audit_log::table)
        .values(NewAuditRow {
            tenant_id: tenant.into_uuid(),
            id: AuditId::new().into_uuid(),
            actor_type,
            actor_id,
            actor_tenant_id,
            actor_name,
            action: entry.action,
            resource_type: entry.resource_type,
            resource_id: &entry.resource_id,
            changes: &entry.masked(),
            request_id: by.request_id.as_str(),
            ip: by.origin.ip.map(ipnet::IpNet::from),
            user_agent: by.origin.user_agent.as_deref(),
            occurred_at: at,
        })
        .execute(conn)
        .await?;
    Ok(())
}

/// One row of the audit trail, as the API shows it.
#[derive(Debug, Clone, PartialEq, diesel::QueryableByName, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f", "tenantId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e60",
    "actorType": "user", "actorId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e61",
    "actorTenantId": "00000000-0000-7000-8000-000000000001", "actorName": null,
    "action": "tenant.suspend", "resourceType": "tenant", "resourceId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e60",
    "changes": {"status": {"before": "ACTIVE", "after": "SUSPENDED"}},
    "requestId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e62", "ip": "203.0.113.7",
    "userAgent": "portico-portal/1.0", "occurredAt": "2026-11-23T09:00:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// The row.
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: uuid::Uuid,
    /// The tenant whose trail it is in.
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub tenant_id: uuid::Uuid,
    /// `user`, `api_key` or `system`.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub actor_type: String,
    /// The user or key.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    pub actor_id: Option<uuid::Uuid>,
    /// The actor's own tenant (the platform's for its staff).
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    pub actor_tenant_id: Option<uuid::Uuid>,
    /// The system actor's name (`job:email.send`).
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub actor_name: Option<String>,
    /// What happened (`tenant.suspend`).
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub action: String,
    /// The kind of thing changed.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub resource_type: String,
    /// Its id.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub resource_id: String,
    /// The changed fields, before and after.
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub changes: serde_json::Value,
    /// The request (or job run) that did it.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub request_id: String,
    /// The client's address, for a request.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub ip: Option<String>,
    /// The client's user agent, for a request.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub user_agent: Option<String>,
    /// When.
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub occurred_at: DateTime<Utc>,
}

/// Which rows of an audit trail to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this actor (user or key id).
    pub actor_id: Option<uuid::Uuid>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this kind of resource.
    pub resource_type: Option<String>,
    /// Only this resource.
    pub resource_id: Option<String>,
    /// From this time on (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Before this time.
    pub to: Option<DateTime<Utc>>,
}

/// `WHERE` conditions of `filter` (parameters from `$2` on; `$1` is reserved
/// for the caller) and the values to bind, as text.
fn conditions(filter: &AuditFilter) -> (String, Vec<Option<String>>) {
    let clauses = [
        "($2::uuid IS NULL OR actor_id = $2::uuid)",
        "($3::text IS NULL OR action = $3)",
        "($4::text IS NULL OR resource_type = $4)",
        "($5::text IS NULL OR resource_id = $5)",
        "($6::timestamptz IS NULL OR occurred_at >= $6::timestamptz)",
        "($7::timestamptz IS NULL OR occurred_at < $7::timestamptz)",
    ];
    let values = vec![
        filter.actor_id.map(|id| id.to_string()),
        filter.action.clone(),
        filter.resource_type.clone(),
        filter.resource_id.clone(),
        filter.from.map(|t| t.to_rfc3339()),
        filter.to.map(|t| t.to_rfc3339()),
    ];
    (clauses.join(" AND "), values)
}

/// A page of `audit_log` rows matching `filter`, newest first; `scope` limits
/// them to one tenant (the row-level security of a scoped transaction does too).
pub(crate) async fn page_of(
    conn: &mut AsyncPgConnection,
    scope: Option<TenantId>,
    filter: &AuditFilter,
    page: portico_kernel::PageRequest,
) -> diesel::QueryResult<portico_kernel::Page<AuditRecord>> {
    use diesel::sql_types::{BigInt, Nullable, Text};
    #[derive(diesel::QueryableByName)]
    struct Total {
        #[diesel(sql_type = BigInt)]
        total: i64,
    }
    let (clauses, values) = conditions(filter);
    let scope = scope.map(|t| t.to_string());
    let count_sql = format!(
        "SELECT count(*) AS total FROM audit_log WHERE ($1::uuid IS NULL OR tenant_id = $1::uuid) AND {clauses}"
    );
    let rows_sql = format!(
        "SELECT id, tenant_id, actor_type, actor_id, actor_tenant_id, actor_name, action, resource_type, resource_id, \
                changes, request_id, host(ip) AS ip, user_agent, occurred_at \
         FROM audit_log WHERE ($1::uuid IS NULL OR tenant_id = $1::uuid) AND {clauses} \
         ORDER BY occurred_at DESC, id DESC LIMIT $8 OFFSET $9"
    );
    let mut count = diesel::sql_query(count_sql).into_boxed().bind::<Nullable<Text>, _>(scope.clone());
    let mut rows = diesel::sql_query(rows_sql).into_boxed().bind::<Nullable<Text>, _>(scope);
    for value in &values {
        count = count.bind::<Nullable<Text>, _>(value.clone());
        rows = rows.bind::<Nullable<Text>, _>(value.clone());
    }
    let total: Total = count.get_result(conn).await?;
    let items: Vec<AuditRecord> = rows
        .bind::<BigInt, _>(i64::from(page.limit()))
        .bind::<BigInt, _>(i64::try_from(page.offset()).unwrap_or(i64::MAX))
        .load(conn)
        .await?;
    Ok(portico_kernel::Page::new(items, page, u64::try_from(total.total).unwrap_or(0)))
}

impl crate::Store {
    /// The context's tenant's audit trail, newest first.
    pub async fn audit_trail(
        &self,
        ctx: &portico_kernel::TenantContext,
        filter: &AuditFilter,
        page: portico_kernel::PageRequest,
    ) -> Result<portico_kernel::Page<AuditRecord>, portico_kernel::InfraError> {
        let (tenant, filter) = (ctx.tenant_id, filter.clone());
        self.in_tenant(tenant, move |conn| {
            Box::pin(async move { Ok(page_of(conn, Some(tenant), &filter, page).await?) })
        })
        .await
        .map_err(crate::error::Failure::into_infra)
    }

    /// Every tenant's audit trail together (platform staff), newest first.
    pub async fn platform_audit_trail(
        &self,
        _ctx: &portico_kernel::PlatformContext,
        tenant: Option<TenantId>,
        filter: &AuditFilter,
        page: portico_kernel::PageRequest,
    ) -> Result<portico_kernel::Page<AuditRecord>, portico_kernel::InfraError> {
        let filter = filter.clone();
        self.as_platform(move |conn| Box::pin(async move { Ok(page_of(conn, tenant, &filter, page).await?) }))
            .await
            .map_err(crate::error::Failure::into_infra)
    }
}
