//! Consumption figures a tenant (or the platform) reads.

use chrono::NaiveDate;
use serde::Serialize;

use crate::Channel;

/// Credits spent on one channel on one day (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DailyConsumption {
    /// The day.
    pub day: NaiveDate,
    /// The channel.
    pub channel: Channel,
    /// Credits spent (debits and captures).
    pub credits: i64,
}

/// A tenant that spent many credits (platform view).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TopConsumer {
    /// The tenant.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub tenant_id: portico_kernel::TenantId,
    /// The channel.
    pub channel: Channel,
    /// Credits spent in the period.
    pub credits: i64,
}

/// How long one wallet lasts at its recent pace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Projection {
    /// The channel.
    pub channel: Channel,
    /// Credits available now.
    pub available: i64,
    /// Credits spent in the period.
    pub consumed: i64,
    /// Whole days until empty at that pace; `null` when nothing was spent.
    pub days_until_empty: Option<i64>,
}

/// Whole days until `available` credits run out if `consumed` credits
/// are spent every `days` days; `None` when nothing is being spent.
#[must_use]
pub fn days_until_empty(available: i64, consumed: i64, days: i64) -> Option<i64> {
    if consumed <= 0 || days <= 0 {
        return None;
    }
    // available / (consumed / days), in integers: never a float.
    Some(
        i64::try_from(i128::from(available.max(0)) * i128::from(days) / i128::from(consumed))
            .unwrap_or(i64::MAX),
    )
}

/// What `GET /api/v1/credits/analytics` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "days": 30, "daily": [{"day": "2026-11-23", "channel": "sms", "credits": 412}],
    "topConsumers": [{"tenantId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e00", "channel": "sms", "credits": 12000}],
    "projections": [{"channel": "sms", "available": 600, "consumed": 12000, "daysUntilEmpty": 1}]
})))]
#[serde(rename_all = "camelCase")]
pub struct CreditAnalytics {
    /// The period, in days up to today.
    pub days: i64,
    /// Consumption per channel per day (days without any are left out).
    pub daily: Vec<DailyConsumption>,
    /// The biggest spenders (the platform's view; only the tenant itself otherwise).
    pub top_consumers: Vec<TopConsumer>,
    /// How long each wallet lasts at the period's pace.
    pub projections: Vec<Projection>,
}

/// Credits spent on one channel in a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ChannelConsumption {
    /// The channel.
    pub channel: Channel,
    /// Credits spent (debits and captures).
    pub credits: i64,
}

/// What `GET /api/v1/credits/dashboard` answers: the tenant's wallets at a glance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "wallets": [{"id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f", "channel": "sms", "balance": 640, "held": 40,
                 "available": 600, "lowBalanceThreshold": 100, "lowBalance": false,
                 "createdAt": "2026-11-23T09:00:00Z", "updatedAt": "2026-11-24T10:30:00Z"}],
    "consumedLast30Days": [{"channel": "sms", "credits": 1200}],
    "openReservations": 2, "recent": []
})))]
#[serde(rename_all = "camelCase")]
pub struct CreditDashboard {
    /// Every wallet the tenant has.
    pub wallets: Vec<crate::Wallet>,
    /// Credits spent per channel in the last 30 days.
    pub consumed_last_30_days: Vec<ChannelConsumption>,
    /// Holds not yet captured or released.
    pub open_reservations: i64,
    /// The 10 latest ledger entries.
    pub recent: Vec<crate::Entry>,
}

/// What `GET /api/v1/credits/master-wallet` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "wallets": [{"channel": "sms", "balance": 982000, "soldLast30Days": 18000, "updatedAt": "2026-11-24T10:30:00Z"}],
    "recent": []
})))]
#[serde(rename_all = "camelCase")]
pub struct MasterOverview {
    /// The stock of every channel.
    pub wallets: Vec<crate::MasterWallet>,
    /// The 20 latest movements of the stock.
    pub recent: Vec<crate::MasterEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_until_empty_follows_the_recent_pace() {
        assert_eq!(days_until_empty(600, 300, 30), Some(60), "10 a day");
        assert_eq!(days_until_empty(5, 300, 30), Some(0), "less than a day left");
        assert_eq!(days_until_empty(600, 0, 30), None, "nothing spent");
        assert_eq!(days_until_empty(-1, 10, 30), Some(0));
        assert_eq!(days_until_empty(i64::MAX, 1, 30), Some(i64::MAX));
    }
}
