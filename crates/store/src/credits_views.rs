//! What tenants (and the platform's staff) read of credits: wallets, the
//! ledger, reservations, the dashboard and consumption analytics. The sums
//! run in SQL over indexed rows.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::sql_types::{BigInt, Date, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use portico_credits::analytics::{DailyConsumption, Projection, TopConsumer};
use portico_credits::{
    Channel, ChannelConsumption, CreditAnalytics, CreditDashboard, CreditsError, Entry, EntryFilter,
    Reservation, Wallet, WalletDetail, WalletRef, days_until_empty, draw_order,
};
use portico_kernel::{Page, PageRequest, PlatformContext, ReservationId, TenantContext, TenantId};

use crate::Store;
use crate::credits::{
    CreditsFailure, EntryRow, GRANT_COLUMNS, GrantRow, RESERVATION_COLUMNS, ReservationRow, WALLET_COLUMNS,
    WalletRow, channel_of, domain, resolve,
};
use crate::error::Failure;

const ENTRY_SELECT: &str = "SELECT e.id, e.wallet_id, w.channel, e.grant_id, e.kind, e.amount, e.balance_after, \
            e.reference, e.reservation_id, e.actor, e.note, e.created_at, count(*) OVER () AS total \
       FROM credit_entries e JOIN credit_wallets w ON w.tenant_id = e.tenant_id AND w.id = e.wallet_id";

async fn load_wallets(conn: &mut AsyncPgConnection, tenant: TenantId) -> Result<Vec<Wallet>, CreditsFailure> {
    let rows: Vec<WalletRow> = diesel::sql_query(format!(
        "SELECT {WALLET_COLUMNS} FROM credit_wallets WHERE tenant_id = $1 ORDER BY channel"
    ))
    .bind::<SqlUuid, _>(tenant.into_uuid())
    .load(conn)
    .await?;
    rows.into_iter().map(WalletRow::into_wallet).collect()
}

#[derive(QueryableByName)]
struct ChannelSum {
    #[diesel(sql_type = Text)]
    channel: String,
    #[diesel(sql_type = BigInt)]
    credits: i64,
}

/// Credits spent per channel since `since` (debits and captures).
async fn consumed_since(
    conn: &mut AsyncPgConnection,
    tenant: TenantId,
    since: DateTime<Utc>,
) -> Result<Vec<ChannelConsumption>, CreditsFailure> {
    let rows: Vec<ChannelSum> = diesel::sql_query(
        "SELECT w.channel, (-sum(e.amount))::int8 AS credits \
           FROM credit_entries e JOIN credit_wallets w ON w.tenant_id = e.tenant_id AND w.id = e.wallet_id \
          WHERE e.tenant_id = $1 AND e.kind IN ('debit', 'capture') AND e.created_at >= $2 \
          GROUP BY w.channel ORDER BY w.channel",
    )
    .bind::<SqlUuid, _>(tenant.into_uuid())
    .bind::<Timestamptz, _>(since)
    .load(conn)
    .await?;
    rows.into_iter()
        .map(|r| Ok(ChannelConsumption { channel: channel_of(&r.channel)?, credits: r.credits }))
        .collect()
}

#[derive(QueryableByName)]
struct DayRow {
    #[diesel(sql_type = Date)]
    day: NaiveDate,
    #[diesel(sql_type = Text)]
    channel: String,
    #[diesel(sql_type = BigInt)]
    credits: i64,
}

#[derive(QueryableByName)]
struct ConsumerRow {
    #[diesel(sql_type = SqlUuid)]
    tenant_id: uuid::Uuid,
    #[diesel(sql_type = Text)]
    channel: String,
    #[diesel(sql_type = BigInt)]
    credits: i64,
}

/// Consumption per day and channel, and the top consumers, since `since`;
/// of one tenant, or of every tenant when `tenant` is `None` (platform pool).
async fn consumption(
    conn: &mut AsyncPgConnection,
    tenant: Option<TenantId>,
    since: DateTime<Utc>,
) -> Result<(Vec<DailyConsumption>, Vec<TopConsumer>), CreditsFailure> {
    let tenant = tenant.map(TenantId::into_uuid);
    let days: Vec<DayRow> = diesel::sql_query(
        "SELECT (e.created_at AT TIME ZONE 'UTC')::date AS day, w.channel, (-sum(e.amount))::int8 AS credits \
           FROM credit_entries e JOIN credit_wallets w ON w.tenant_id = e.tenant_id AND w.id = e.wallet_id \
          WHERE ($1::uuid IS NULL OR e.tenant_id = $1) AND e.kind IN ('debit', 'capture') AND e.created_at >= $2 \
          GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind::<Nullable<SqlUuid>, _>(tenant)
    .bind::<Timestamptz, _>(since)
    .load(conn)
    .await?;
    let top: Vec<ConsumerRow> = diesel::sql_query(
        "SELECT e.tenant_id, w.channel, (-sum(e.amount))::int8 AS credits \
           FROM credit_entries e JOIN credit_wallets w ON w.tenant_id = e.tenant_id AND w.id = e.wallet_id \
          WHERE ($1::uuid IS NULL OR e.tenant_id = $1) AND e.kind IN ('debit', 'capture') AND e.created_at >= $2 \
          GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 10",
    )
    .bind::<Nullable<SqlUuid>, _>(tenant)
    .bind::<Timestamptz, _>(since)
    .load(conn)
    .await?;
    let daily = days
        .into_iter()
        .map(|r| Ok(DailyConsumption { day: r.day, channel: channel_of(&r.channel)?, credits: r.credits }))
        .collect::<Result<_, CreditsFailure>>()?;
    let top = top
        .into_iter()
        .map(|r| {
            Ok(TopConsumer {
                tenant_id: TenantId::from_uuid(r.tenant_id),
                channel: channel_of(&r.channel)?,
                credits: r.credits,
            })
        })
        .collect::<Result<_, CreditsFailure>>()?;
    Ok((daily, top))
}

/// How long each of `stock` lasts at the pace of `daily` over `days` days.
fn projections(stock: &[(Channel, i64)], daily: &[DailyConsumption], days: i64) -> Vec<Projection> {
    stock
        .iter()
        .map(|&(channel, available)| {
            let consumed = daily.iter().filter(|d| d.channel == channel).map(|d| d.credits).sum();
            Projection {
                channel,
                available,
                consumed,
                days_until_empty: days_until_empty(available, consumed, days),
            }
        })
        .collect()
}

impl Store {
    /// The context's tenant's wallets, by channel.
    pub async fn wallets(&self, ctx: &TenantContext) -> Result<Vec<Wallet>, CreditsError> {
        let tenant = ctx.tenant_id;
        self.in_tenant(tenant, move |conn| Box::pin(load_wallets(conn, tenant))).await.map_err(resolve)
    }

    /// One wallet with its open grants in draw order.
    pub async fn wallet(&self, ctx: &TenantContext, wallet: WalletRef) -> Result<WalletDetail, CreditsError> {
        let tenant = ctx.tenant_id;
        self.in_tenant(tenant, move |conn| {
            Box::pin(async move {
                let (column, value) = match wallet {
                    WalletRef::Id(id) => ("id::text", id.to_string()),
                    WalletRef::Channel(channel) => ("channel", channel.as_str().to_owned()),
                };
                let row: Option<WalletRow> = diesel::sql_query(format!(
                    "SELECT {WALLET_COLUMNS} FROM credit_wallets WHERE tenant_id = $1 AND {column} = $2"
                ))
                .bind::<SqlUuid, _>(tenant.into_uuid())
                .bind::<Text, _>(value)
                .get_result(conn)
                .await
                .optional()?;
                let Some(row) = row else { return domain(CreditsError::WalletNotFound) };
                let wallet = row.into_wallet()?;
                let rows: Vec<GrantRow> = diesel::sql_query(format!(
                    "SELECT {GRANT_COLUMNS} FROM credit_grants WHERE tenant_id = $1 AND wallet_id = $2 AND remaining > 0"
                ))
                .bind::<SqlUuid, _>(tenant.into_uuid())
                .bind::<SqlUuid, _>(wallet.id.into_uuid())
                .load(conn)
                .await?;
                let mut grants = rows.into_iter().map(|g| g.into_grant(wallet.channel)).collect::<Result<Vec<_>, _>>()?;
                grants.sort_by(|a, b| draw_order(&a.into(), &b.into()));
                Ok(WalletDetail { wallet, grants })
            })
        })
        .await
        .map_err(resolve)
    }

    /// A page of the ledger, newest first.
    pub async fn credit_entries(
        &self,
        ctx: &TenantContext,
        filter: EntryFilter,
        page: PageRequest,
    ) -> Result<Page<Entry>, CreditsError> {
        let tenant = ctx.tenant_id;
        let rows: Vec<EntryRow> = self
            .in_tenant(tenant, move |conn| {
                Box::pin(async move {
                    Ok(diesel::sql_query(format!(
                        "{ENTRY_SELECT} WHERE e.tenant_id = $1 AND ($2::text IS NULL OR w.channel = $2) \
                           AND ($3::text IS NULL OR e.kind = $3) AND ($4::timestamptz IS NULL OR e.created_at >= $4) \
                           AND ($5::timestamptz IS NULL OR e.created_at < $5) \
                         ORDER BY e.created_at DESC, e.id DESC LIMIT $6 OFFSET $7"
                    ))
                    .bind::<SqlUuid, _>(tenant.into_uuid())
                    .bind::<Nullable<Text>, _>(filter.channel.map(Channel::as_str))
                    .bind::<Nullable<Text>, _>(filter.kind.map(|k| k.as_str()))
                    .bind::<Nullable<Timestamptz>, _>(filter.from)
                    .bind::<Nullable<Timestamptz>, _>(filter.to)
                    .bind::<BigInt, _>(i64::from(page.limit()))
                    .bind::<BigInt, _>(i64::try_from(page.offset()).unwrap_or(i64::MAX))
                    .load(conn)
                    .await?)
                })
            })
            .await
            .map_err(resolve)?;
        let total = <[EntryRow]>::first(&rows).map_or(0, |r| u64::try_from(r.total).unwrap_or(0));
        let items =
            rows.into_iter().map(EntryRow::into_entry).collect::<Result<Vec<_>, _>>().map_err(resolve)?;
        Ok(Page::new(items, page, total))
    }

    /// Reservation `id` of the context's tenant.
    pub async fn reservation(
        &self,
        ctx: &TenantContext,
        id: ReservationId,
    ) -> Result<Reservation, CreditsError> {
        let tenant = ctx.tenant_id;
        self.in_tenant(tenant, move |conn| {
            Box::pin(async move {
                #[derive(QueryableByName)]
                struct Row {
                    #[diesel(embed)]
                    reservation: ReservationRow,
                    #[diesel(sql_type = Text)]
                    channel: String,
                }
                let columns =
                    RESERVATION_COLUMNS.split(", ").map(|c| format!("r.{c}")).collect::<Vec<_>>().join(", ");
                let row: Option<Row> = diesel::sql_query(format!(
                    "SELECT {columns}, w.channel FROM credit_reservations r \
                       JOIN credit_wallets w ON w.tenant_id = r.tenant_id AND w.id = r.wallet_id \
                      WHERE r.tenant_id = $1 AND r.id = $2"
                ))
                .bind::<SqlUuid, _>(tenant.into_uuid())
                .bind::<SqlUuid, _>(id.into_uuid())
                .get_result(conn)
                .await
                .optional()?;
                let Some(row) = row else { return domain(CreditsError::ReservationNotFound) };
                let channel = channel_of(&row.channel)?;
                row.reservation.into_reservation(channel)
            })
        })
        .await
        .map_err(resolve)
    }

    /// The tenant's wallets, last 30 days' consumption, open holds and latest entries.
    pub async fn credit_dashboard(&self, ctx: &TenantContext) -> Result<CreditDashboard, CreditsError> {
        let (tenant, now) = (ctx.tenant_id, self.now());
        self.in_tenant(tenant, move |conn| {
            Box::pin(async move {
                let wallets = load_wallets(conn, tenant).await?;
                let consumed_last_30_days = consumed_since(conn, tenant, now - Duration::days(30)).await?;
                #[derive(QueryableByName)]
                struct Open {
                    #[diesel(sql_type = BigInt)]
                    n: i64,
                }
                let open: Open = diesel::sql_query(
                    "SELECT count(*) AS n FROM credit_reservations WHERE tenant_id = $1 AND status = 'held'",
                )
                .bind::<SqlUuid, _>(tenant.into_uuid())
                .get_result(conn)
                .await?;
                let rows: Vec<EntryRow> = diesel::sql_query(format!(
                    "{ENTRY_SELECT} WHERE e.tenant_id = $1 ORDER BY e.created_at DESC, e.id DESC LIMIT 10"
                ))
                .bind::<SqlUuid, _>(tenant.into_uuid())
                .load(conn)
                .await?;
                let recent = rows.into_iter().map(EntryRow::into_entry).collect::<Result<_, _>>()?;
                Ok(CreditDashboard { wallets, consumed_last_30_days, open_reservations: open.n, recent })
            })
        })
        .await
        .map_err(resolve)
    }

    /// The tenant's consumption per channel per day over the last `days`
    /// days, and how long each wallet lasts at that pace.
    pub async fn credit_analytics(
        &self,
        ctx: &TenantContext,
        days: i64,
    ) -> Result<CreditAnalytics, CreditsError> {
        let (tenant, now) = (ctx.tenant_id, self.now());
        self.in_tenant(tenant, move |conn| {
            Box::pin(async move {
                let (daily, top_consumers) =
                    consumption(conn, Some(tenant), now - Duration::days(days)).await?;
                let stock: Vec<(Channel, i64)> =
                    load_wallets(conn, tenant).await?.iter().map(|w| (w.channel, w.available)).collect();
                let projections = projections(&stock, &daily, days);
                Ok(CreditAnalytics { days, daily, top_consumers, projections })
            })
        })
        .await
        .map_err(resolve)
    }

    /// Every tenant's consumption, the top consumers, and how long the
    /// platform's stock lasts at that pace.
    pub async fn platform_credit_analytics(
        &self,
        _ctx: &PlatformContext,
        days: i64,
    ) -> Result<CreditAnalytics, CreditsError> {
        let now = self.now();
        self.as_platform(move |conn| {
            Box::pin(async move {
                let (daily, top_consumers) = consumption(conn, None, now - Duration::days(days)).await?;
                #[derive(QueryableByName)]
                struct Stock {
                    #[diesel(sql_type = Text)]
                    channel: String,
                    #[diesel(sql_type = BigInt)]
                    balance: i64,
                }
                let rows: Vec<Stock> =
                    diesel::sql_query("SELECT channel, balance FROM credit_master_wallets ORDER BY channel")
                        .load(conn)
                        .await?;
                let stock =
                    rows.iter()
                        .map(|r| Ok((channel_of(&r.channel)?, r.balance)))
                        .collect::<Result<Vec<_>, CreditsFailure>>()?;
                let projections = projections(&stock, &daily, days);
                Ok(CreditAnalytics { days, daily, top_consumers, projections })
            })
        })
        .await
        .map_err(resolve)
    }

    /// The addresses of the tenant's active owners and admins (who hear of a low balance).
    pub async fn credit_alert_recipients(&self, ctx: &TenantContext) -> Result<Vec<String>, CreditsError> {
        let tenant = ctx.tenant_id;
        self.in_tenant(tenant, move |conn| {
            Box::pin(async move {
                #[derive(QueryableByName)]
                struct Address {
                    #[diesel(sql_type = Text)]
                    email: String,
                }
                let rows: Vec<Address> = diesel::sql_query(
                    "SELECT u.email FROM memberships m JOIN users u ON u.id = m.user_id \
                      WHERE m.tenant_id = $1 AND m.status = 'active' AND m.role IN ('owner', 'admin') \
                        AND u.status = 'active' ORDER BY u.email",
                )
                .bind::<SqlUuid, _>(tenant.into_uuid())
                .load(conn)
                .await?;
                Ok(rows.into_iter().map(|r| r.email).collect())
            })
        })
        .await
        .map_err(|failure: Failure<CreditsError>| resolve(failure))
    }
}
