//! Read models of tenants for the admin portal: one tenant's analytics and
//! the platform's overview of all tenants.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Date, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_kernel::{PlatformContext, TenantContext, TenantId};
use portico_tenancy::{
    ChannelCredits, TRIAL_ENDING_DAYS, TenancyError, TenantAnalytics, TenantsOverview, TrialEnding,
    WEEKS_SHOWN, weekly,
};

use crate::Store;
use crate::error::Failure;
use crate::tenants::TenantFailure;

fn resolve(failure: TenantFailure) -> TenancyError {
    failure.resolve(|_| None)
}

#[derive(QueryableByName)]
struct Grouped {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Text)]
    other: String,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct Weekly {
    #[diesel(sql_type = Date)]
    week: NaiveDate,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// The Monday [`WEEKS_SHOWN`] weeks back from `now`, where a series starts.
fn series_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::weeks(i64::try_from(WEEKS_SHOWN).unwrap_or(12)) - Duration::days(7)
}

fn by_week(rows: Vec<Weekly>) -> BTreeMap<NaiveDate, u64> {
    rows.into_iter().map(|row| (row.week, count(row.count))).collect()
}

async fn analytics(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    with_credits: bool,
    now: DateTime<Utc>,
) -> Result<TenantAnalytics, TenantFailure> {
    crate::tenant_profile::load_profile(conn, tenant, false).await?;
    let members: Vec<Grouped> = diesel::sql_query(
        "SELECT kind AS key, status AS other, count(*) AS count FROM memberships WHERE tenant_id = $1 \
         GROUP BY kind, status",
    )
    .bind::<SqlUuid, _>(tenant.into_uuid())
    .load(conn)
    .await?;
    let mut members_by_kind = BTreeMap::new();
    let mut members_by_status = BTreeMap::new();
    for row in members {
        *members_by_kind.entry(row.key).or_insert(0) += count(row.count);
        *members_by_status.entry(row.other).or_insert(0) += count(row.count);
    }
    // Sessions are global rows (looked up before a tenant is known): filtered here by tenant.
    let sessions: Count = diesel::sql_query(
        "SELECT count(*) AS count FROM sessions WHERE tenant_id = $1 AND revoked_at IS NULL AND expires_at > $2",
    )
    .bind::<SqlUuid, _>(tenant.into_uuid())
    .bind::<Timestamptz, _>(now)
    .get_result(conn)
    .await?;
    let sign_ups: Vec<Weekly> = diesel::sql_query(
        "SELECT date_trunc('week', created_at AT TIME ZONE 'UTC')::date AS week, count(*) AS count \
         FROM memberships WHERE tenant_id = $1 AND created_at >= $2 GROUP BY 1",
    )
    .bind::<SqlUuid, _>(tenant.into_uuid())
    .bind::<Timestamptz, _>(series_start(now))
    .load(conn)
    .await?;
    #[derive(QueryableByName)]
    struct Wallet {
        #[diesel(sql_type = Text)]
        channel: String,
        #[diesel(sql_type = BigInt)]
        balance: i64,
        #[diesel(sql_type = BigInt)]
        held: i64,
        #[diesel(sql_type = BigInt)]
        consumed: i64,
    }
    if !with_credits {
        return Ok(TenantAnalytics {
            tenant_id: tenant,
            members_by_kind,
            members_by_status,
            active_sessions: count(sessions.count),
            sign_ups: weekly(&by_week(sign_ups), now),
            credits: None,
        });
    }
    let wallets: Vec<Wallet> = diesel::sql_query(
        "SELECT w.channel, w.balance, w.held, \
                COALESCE(-sum(e.amount) FILTER (WHERE e.kind IN ('debit', 'capture')), 0)::bigint AS consumed \
         FROM credit_wallets w \
         LEFT JOIN credit_entries e ON e.tenant_id = w.tenant_id AND e.wallet_id = w.id AND e.created_at >= $2 \
         WHERE w.tenant_id = $1 GROUP BY w.channel, w.balance, w.held ORDER BY w.channel",
    )
    .bind::<SqlUuid, _>(tenant.into_uuid())
    .bind::<Timestamptz, _>(now - Duration::days(30))
    .load(conn)
    .await?;
    Ok(TenantAnalytics {
        tenant_id: tenant,
        members_by_kind,
        members_by_status,
        active_sessions: count(sessions.count),
        sign_ups: weekly(&by_week(sign_ups), now),
        credits: Some(
            wallets
                .into_iter()
                .map(|w| ChannelCredits {
                    channel: w.channel,
                    balance: w.balance,
                    held: w.held,
                    consumed_30d: w.consumed,
                })
                .collect(),
        ),
    })
}

impl Store {
    /// Tenant `id` at a glance: members by kind and status, active
    /// sessions, sign-ups per week, credits per channel (for a caller
    /// holding `credits:read`).
    pub async fn tenant_analytics(
        &self,
        ctx: &TenantContext,
        id: TenantId,
    ) -> Result<TenantAnalytics, TenancyError> {
        if id != ctx.tenant_id {
            return Err(TenancyError::NotFound);
        }
        let now = self.now();
        // Credits are shown to those who may see them.
        let with_credits = ctx.has("credits:read") || ctx.has("platform:credits:read");
        self.in_tenant(id, move |conn| Box::pin(async move { analytics(conn, id, with_credits, now).await }))
            .await
            .map_err(resolve)
    }

    /// Every live tenant at a glance: counts by status and industry, new
    /// tenants per week, trials ending in the next two weeks (or ended
    /// already, the tenant still in trial).
    pub async fn tenants_overview(&self, _ctx: &PlatformContext) -> Result<TenantsOverview, TenancyError> {
        let now = self.now();
        self.as_platform(move |conn| {
            Box::pin(async move {
                let groups: Vec<Grouped> = diesel::sql_query(
                    "SELECT upper(status) AS key, COALESCE(industry, 'generic') AS other, count(*) AS count \
                     FROM tenants WHERE deleted_at IS NULL GROUP BY 1, 2",
                )
                .load(conn)
                .await?;
                let (mut by_status, mut by_industry, mut total) = (BTreeMap::new(), BTreeMap::new(), 0);
                for row in groups {
                    *by_status.entry(row.key).or_insert(0) += count(row.count);
                    *by_industry.entry(row.other).or_insert(0) += count(row.count);
                    total += count(row.count);
                }
                let created: Vec<Weekly> = diesel::sql_query(
                    "SELECT date_trunc('week', created_at AT TIME ZONE 'UTC')::date AS week, count(*) AS count \
                     FROM tenants WHERE created_at >= $1 AND deleted_at IS NULL GROUP BY 1",
                )
                .bind::<Timestamptz, _>(series_start(now))
                .load(conn)
                .await?;
                #[derive(QueryableByName)]
                struct Ending {
                    #[diesel(sql_type = SqlUuid)]
                    id: uuid::Uuid,
                    #[diesel(sql_type = Text)]
                    name: String,
                    #[diesel(sql_type = Text)]
                    slug: String,
                    #[diesel(sql_type = Timestamptz)]
                    trial_ends_at: DateTime<Utc>,
                }
                let ending: Vec<Ending> = diesel::sql_query(
                    "SELECT id, name, slug, trial_ends_at FROM tenants \
                     WHERE status = 'trial' AND deleted_at IS NULL AND trial_ends_at < $1 \
                     ORDER BY trial_ends_at, id LIMIT 50",
                )
                .bind::<Timestamptz, _>(now + Duration::days(TRIAL_ENDING_DAYS))
                .load(conn)
                .await?;
                Ok(TenantsOverview {
                    total,
                    by_status,
                    by_industry,
                    new_per_week: weekly(&by_week(created), now),
                    trials_ending_soon: ending
                        .into_iter()
                        .map(|e| TrialEnding {
                            id: TenantId::from_uuid(e.id),
                            name: e.name,
                            slug: e.slug,
                            trial_ends_at: e.trial_ends_at,
                        })
                        .collect(),
                })
            })
        })
        .await
        .map_err(|failure: Failure<TenancyError>| resolve(failure))
    }
}
