//! Writing the audit trail, inside the transaction of the change it records.

use chrono::{DateTime, Utc};
use diesel::Insertable;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_kernel::{Actor, AuditEntry, AuditId, RequestId, TenantId};

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
    occurred_at: DateTime<Utc>,
}

/// Appends `entry` to `tenant`'s audit trail on `conn` (which must be inside
/// the transaction of the change, scoped to `tenant`).
pub(crate) async fn record(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    actor: &Actor,
    request_id: &RequestId,
    entry: &AuditEntry,
    at: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    let (actor_type, actor_id, actor_tenant_id, actor_name) = match actor {
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
            changes: &entry.changes,
            request_id: request_id.as_str(),
            occurred_at: at,
        })
        .execute(conn)
        .await?;
    Ok(())
}
