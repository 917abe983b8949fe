//! A tenant's custom roles, and giving a membership its role.

use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_kernel::{AuditEntry, MembershipId, RoleId, TenantContext};
use portico_tenancy::people::{RoleChoice, may_give};
use portico_tenancy::roles::check_grant;
use portico_tenancy::{CustomRole, IdentityError, Role, RoleDraft};

use crate::error::{Failure, is_unique_violation};
use crate::{Store, audit};

#[derive(QueryableByName)]
struct RoleRow {
    #[diesel(sql_type = SqlUuid)]
    id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    description: String,
    #[diesel(sql_type = Array<Text>)]
    permissions: Vec<String>,
    #[diesel(sql_type = BigInt)]
    members: i64,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
}

impl From<RoleRow> for CustomRole {
    fn from(row: RoleRow) -> Self {
        Self {
            id: RoleId::from_uuid(row.id),
            name: row.name,
            description: row.description,
            permissions: row.permissions,
            members: u64::try_from(row.members).unwrap_or(0),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const ROLE_SELECT: &str = "SELECT r.id, r.name, r.description, r.permissions, \
            (SELECT count(*) FROM memberships m WHERE m.tenant_id = r.tenant_id AND m.role_id = r.id) AS members, \
            r.created_at, r.updated_at \
     FROM roles r";

type RbacFailure = Failure<IdentityError>;

fn resolve(failure: RbacFailure) -> IdentityError {
    failure.resolve(|error| {
        if is_unique_violation(error, "roles_name_key") {
            Some(IdentityError::RoleNameTaken)
        } else if crate::error::is_foreign_key_violation(error) {
            // The custom role was deleted while it was being given.
            Some(IdentityError::RoleNotFound)
        } else {
            None
        }
    })
}

/// The custom role `id` of `tenant`, locked when `lock`.
pub(crate) async fn load_role(
    conn: &mut AsyncPgConnection,
    tenant: uuid::Uuid,
    id: RoleId,
    lock: bool,
) -> Result<CustomRole, RbacFailure> {
    let lock = if lock { " FOR UPDATE OF r" } else { "" };
    let row: Option<RoleRow> =
        diesel::sql_query(format!("{ROLE_SELECT} WHERE r.tenant_id = $1 AND r.id = $2{lock}"))
            .bind::<SqlUuid, _>(tenant)
            .bind::<SqlUuid, _>(id.into_uuid())
            .get_result(conn)
            .await
            .optional()?;
    row.map(CustomRole::from).ok_or(Failure::Domain(IdentityError::RoleNotFound))
}

fn role_audit(action: &'static str, id: RoleId, changes: serde_json::Value) -> AuditEntry {
    AuditEntry { action, resource_type: "role", resource_id: id.to_string(), changes }
}

impl Store {
    /// The context's tenant's custom roles, by name.
    pub async fn custom_roles(&self, ctx: &TenantContext) -> Result<Vec<CustomRole>, IdentityError> {
        let tenant = ctx.tenant_id;
        let rows: Vec<RoleRow> = self
            .in_tenant(tenant, move |conn| {
                Box::pin(async move {
                    Ok(diesel::sql_query(format!(
                        "{ROLE_SELECT} WHERE r.tenant_id = $1 ORDER BY lower(r.name)"
                    ))
                    .bind::<SqlUuid, _>(tenant.into_uuid())
                    .load(conn)
                    .await?)
                })
            })
            .await
            .map_err(resolve)?;
        Ok(rows.into_iter().map(CustomRole::from).collect())
    }

    /// The context's tenant's custom role `id`.
    pub async fn custom_role(&self, ctx: &TenantContext, id: RoleId) -> Result<CustomRole, IdentityError> {
        let tenant = ctx.tenant_id;
        self.in_tenant(tenant, move |conn| Box::pin(load_role(conn, tenant.into_uuid(), id, false)))
            .await
            .map_err(resolve)
    }

    /// Creates a custom role from a validated draft, audited.
    pub async fn create_role(
        &self,
        ctx: &TenantContext,
        draft: RoleDraft,
    ) -> Result<CustomRole, IdentityError> {
        let (ctx, id, now) = (ctx.clone(), RoleId::new(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                diesel::sql_query(
                    "INSERT INTO roles (tenant_id, id, name, description, permissions, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6)",
                )
                .bind::<SqlUuid, _>(ctx.tenant_id.into_uuid())
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<Text, _>(&draft.name)
                .bind::<Text, _>(&draft.description)
                .bind::<Array<Text>, _>(&draft.permissions)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                let changes = serde_json::json!({
                    "name": {"before": null, "after": draft.name},
                    "permissions": {"before": null, "after": draft.permissions},
                });
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &role_audit("role.create", id, changes), now)
                    .await?;
                load_role(conn, ctx.tenant_id.into_uuid(), id, false).await
            })
        })
        .await
        .map_err(resolve)
    }

    /// Replaces custom role `id` with a validated draft, audited; its holders
    /// get the new permissions from their next token refresh.
    pub async fn update_role(
        &self,
        ctx: &TenantContext,
        id: RoleId,
        draft: RoleDraft,
    ) -> Result<CustomRole, IdentityError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let tenant = ctx.tenant_id.into_uuid();
                let before = load_role(conn, tenant, id, true).await?;
                diesel::sql_query(
                    "UPDATE roles SET name = $3, description = $4, permissions = $5, updated_at = $6 \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind::<SqlUuid, _>(tenant)
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<Text, _>(&draft.name)
                .bind::<Text, _>(&draft.description)
                .bind::<Array<Text>, _>(&draft.permissions)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                let changes = serde_json::json!({
                    "name": {"before": before.name, "after": draft.name},
                    "description": {"before": before.description, "after": draft.description},
                    "permissions": {"before": before.permissions, "after": draft.permissions},
                });
                audit::record(
                    conn,
                    ctx.tenant_id,
                    (&ctx).into(),
                    &role_audit("role.update", id, changes),
                    now,
                )
                .await?;
                load_role(conn, tenant, id, false).await
            })
        })
        .await
        .map_err(resolve)
    }

    /// Deletes custom role `id`, audited; refused while anyone holds it.
    pub async fn delete_role(&self, ctx: &TenantContext, id: RoleId) -> Result<(), IdentityError> {
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let tenant = ctx.tenant_id.into_uuid();
                let role = load_role(conn, tenant, id, true).await?;
                if role.members > 0 {
                    return Err(Failure::Domain(IdentityError::RoleInUse(role.members)));
                }
                diesel::sql_query("DELETE FROM roles WHERE tenant_id = $1 AND id = $2")
                    .bind::<SqlUuid, _>(tenant)
                    .bind::<SqlUuid, _>(id.into_uuid())
                    .execute(conn)
                    .await?;
                let changes = serde_json::json!({
                    "name": {"before": role.name, "after": null},
                    "permissions": {"before": role.permissions, "after": null},
                });
                audit::record(
                    conn,
                    ctx.tenant_id,
                    (&ctx).into(),
                    &role_audit("role.delete", id, changes),
                    now,
                )
                .await?;
                Ok(())
            })
        })
        .await
        .map_err(resolve)
    }

    /// Gives membership `id` of the context's tenant the role `choice`,
    /// audited; it applies from the person's next token refresh. The giver
    /// must hold every permission the role carries (`holds`), platform roles
    /// exist only in the platform tenant, and the last active owner keeps
    /// the role (the owners are locked while counted, so two demotions at
    /// once cannot both pass).
    pub async fn change_role(
        &self,
        ctx: &TenantContext,
        id: MembershipId,
        choice: RoleChoice,
        holds: impl Fn(&str) -> bool + Send + 'static,
    ) -> Result<(Role, Option<CustomRole>), IdentityError> {
        if let RoleChoice::BuiltIn(role) = choice {
            may_give(role, ctx.tenant_id == portico_kernel::PLATFORM_TENANT_ID, &holds)?;
        }
        let (ctx, now) = (ctx.clone(), self.now());
        self.in_tenant(ctx.tenant_id, move |conn| {
            Box::pin(async move {
                let tenant = ctx.tenant_id.into_uuid();
                let (role, custom) = match choice {
                    RoleChoice::BuiltIn(role) => (role, None),
                    RoleChoice::Custom(role_id) => {
                        let custom = load_role(conn, tenant, role_id, false).await?;
                        check_grant(&custom.permissions, &holds).map_err(Failure::Domain)?;
                        (Role::Custom, Some(custom))
                    }
                };
                let before = lock_membership(conn, tenant, id).await?;
                check_actor(&ctx, &before, true, &holds)?;
                let active_owner = before.role.is_owner() && before.status == "active";
                if active_owner && !role.is_owner() && last_owner(conn, tenant, id).await? {
                    return Err(Failure::Domain(IdentityError::LastOwner));
                }
                diesel::sql_query(
                    "UPDATE memberships SET role = $3, role_id = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2",
                )
                .bind::<SqlUuid, _>(tenant)
                .bind::<SqlUuid, _>(id.into_uuid())
                .bind::<Text, _>(role.as_str())
                .bind::<diesel::sql_types::Nullable<SqlUuid>, _>(custom.as_ref().map(|c| c.id.into_uuid()))
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                let changes = serde_json::json!({
                    "role": {"before": before.role, "after": role},
                    "roleId": {"before": before.role_id, "after": custom.as_ref().map(|c| c.id)},
                });
                let entry = AuditEntry {
                    action: "membership.role_change",
                    resource_type: "membership",
                    resource_id: id.to_string(),
                    changes,
                };
                audit::record(conn, ctx.tenant_id, (&ctx).into(), &entry, now).await?;
                Ok((role, custom))
            })
        })
        .await
        .map_err(resolve)
    }
}

/// A membership's role and status, as locked for a change.
pub(crate) struct Locked {
    pub(crate) role: Role,
    pub(crate) role_id: Option<uuid::Uuid>,
    pub(crate) status: String,
    pub(crate) user_id: uuid::Uuid,
    /// What the membership may do now.
    pub(crate) permissions: Vec<String>,
}

/// Whether the context's actor may act on the locked membership: only
/// holding all it may do ([`portico_tenancy::people::may_act_on`]), and not
/// on their own unless `own_allowed` (stepping down to another role is; a
/// lock-out by deactivating or removing oneself is not).
pub(crate) fn check_actor(
    ctx: &TenantContext,
    target: &Locked,
    own_allowed: bool,
    holds: impl Fn(&str) -> bool,
) -> Result<(), RbacFailure> {
    let own = matches!(ctx.actor, portico_kernel::Actor::User { user_id, .. } if user_id.into_uuid() == target.user_id);
    if own && !own_allowed {
        return Err(Failure::Domain(IdentityError::OwnMembership));
    }
    portico_tenancy::people::may_act_on(&target.permissions, holds).map_err(Failure::Domain)
}

/// Locks every active owner of `tenant` (in one order, so concurrent
/// changes queue instead of deadlocking), then membership `id`.
pub(crate) async fn lock_membership(
    conn: &mut AsyncPgConnection,
    tenant: uuid::Uuid,
    id: MembershipId,
) -> Result<Locked, RbacFailure> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        role: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<SqlUuid>)]
        role_id: Option<uuid::Uuid>,
        #[diesel(sql_type = Text)]
        status: String,
        #[diesel(sql_type = SqlUuid)]
        user_id: uuid::Uuid,
        #[diesel(sql_type = diesel::sql_types::Nullable<Array<Text>>)]
        permissions: Option<Vec<String>>,
    }
    diesel::sql_query(
        "SELECT id FROM memberships WHERE tenant_id = $1 AND role IN ('owner', 'platform_owner') \
         AND status = 'active' ORDER BY id FOR UPDATE",
    )
    .bind::<SqlUuid, _>(tenant)
    .execute(conn)
    .await?;
    let row: Option<Row> = diesel::sql_query(
        "SELECT m.role, m.role_id, m.status, m.user_id, r.permissions FROM memberships m \
         LEFT JOIN roles r ON r.tenant_id = m.tenant_id AND r.id = m.role_id \
         WHERE m.tenant_id = $1 AND m.id = $2 FOR UPDATE OF m",
    )
    .bind::<SqlUuid, _>(tenant)
    .bind::<SqlUuid, _>(id.into_uuid())
    .get_result(conn)
    .await
    .optional()?;
    let row = row.ok_or(Failure::Domain(IdentityError::MembershipNotFound))?;
    let role = Role::from_storage(&row.role)
        .ok_or_else(|| Failure::Infra(portico_kernel::InfraError::internal("membership role")))?;
    let permissions = match row.permissions {
        Some(stored) if role == Role::Custom => portico_tenancy::roles::grantable(&stored),
        _ => role.permissions().iter().map(|p| (*p).to_owned()).collect(),
    };
    Ok(Locked { role, role_id: row.role_id, status: row.status, user_id: row.user_id, permissions })
}

/// Whether membership `id` is the only active owner of `tenant` (call after
/// [`lock_membership`]).
pub(crate) async fn last_owner(
    conn: &mut AsyncPgConnection,
    tenant: uuid::Uuid,
    id: MembershipId,
) -> Result<bool, RbacFailure> {
    #[derive(QueryableByName)]
    struct Others {
        #[diesel(sql_type = BigInt)]
        others: i64,
    }
    let others: Others = diesel::sql_query(
        "SELECT count(*) AS others FROM memberships WHERE tenant_id = $1 AND id <> $2 \
         AND role IN ('owner', 'platform_owner') AND status = 'active'",
    )
    .bind::<SqlUuid, _>(tenant)
    .bind::<SqlUuid, _>(id.into_uuid())
    .get_result(conn)
    .await?;
    Ok(others.others == 0)
}
