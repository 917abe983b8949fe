//! What the admin portal shows of one tenant, and of all tenants.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use portico_kernel::TenantId;

/// Weeks shown in a time series.
pub const WEEKS_SHOWN: usize = 12;

/// A count in one week (weeks start on Monday, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WeekCount {
    /// The Monday the week starts on.
    pub week: NaiveDate,
    /// How many.
    pub count: u64,
}

/// The last [`WEEKS_SHOWN`] weeks up to the one holding `now`, oldest first,
/// each with its count from `counts` (weeks without one count zero).
#[must_use]
pub fn weekly(counts: &BTreeMap<NaiveDate, u64>, now: DateTime<Utc>) -> Vec<WeekCount> {
    let today = now.date_naive();
    let this_week = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    (0..WEEKS_SHOWN)
        .rev()
        .map(|back| {
            let week = this_week - Duration::weeks(i64::try_from(back).unwrap_or(0));
            WeekCount { week, count: counts.get(&week).copied().unwrap_or(0) }
        })
        .collect()
}

/// One channel's credits in a tenant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ChannelCredits {
    /// `sms`, `whatsapp` or `email`.
    pub channel: String,
    /// Credits in the wallet (held ones included).
    pub balance: i64,
    /// Credits held by open reservations.
    pub held: i64,
    /// Credits spent (debits and captures) in the last 30 days.
    pub consumed_30d: i64,
}

/// One tenant at a glance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "tenantId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f",
    "membersByKind": {"owner": 1, "staff": 4, "student": 120},
    "membersByStatus": {"active": 118, "invited": 7},
    "activeSessions": 9,
    "signUps": [{"week": "2026-11-30", "count": 6}],
    "credits": [{"channel": "sms", "balance": 480, "held": 0, "consumed30d": 20}]
})))]
#[serde(rename_all = "camelCase")]
pub struct TenantAnalytics {
    /// The tenant.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub tenant_id: TenantId,
    /// Memberships by kind (`owner`, `staff`, `student`, ...).
    pub members_by_kind: BTreeMap<String, u64>,
    /// Memberships by status (`active`, `invited`, `suspended`).
    pub members_by_status: BTreeMap<String, u64>,
    /// Sessions signed in to the tenant, not ended and not expired.
    pub active_sessions: u64,
    /// New memberships per week, the last 12 weeks.
    pub sign_ups: Vec<WeekCount>,
    /// Credits per channel; `null` for a caller who may not see credits (`credits:read`).
    pub credits: Option<Vec<ChannelCredits>>,
}

/// A trial that ends soon.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TrialEnding {
    /// The tenant.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: TenantId,
    /// Its name.
    pub name: String,
    /// Its slug.
    pub slug: String,
    /// When the trial ends.
    pub trial_ends_at: DateTime<Utc>,
}

/// Days ahead in which an ending trial counts as "soon".
pub const TRIAL_ENDING_DAYS: i64 = 14;

/// All tenants at a glance, for the platform's staff.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "total": 42,
    "byStatus": {"ACTIVE": 30, "TRIAL": 9, "SUSPENDED": 2, "INACTIVE": 1},
    "byIndustry": {"generic": 5, "property_management": 20, "trucking": 17},
    "newPerWeek": [{"week": "2026-11-30", "count": 3}],
    "trialsEndingSoon": [{"id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f", "name": "Speedy Haulage",
                          "slug": "speedy-haulage", "trialEndsAt": "2026-12-10T09:00:00Z"}]
})))]
#[serde(rename_all = "camelCase")]
pub struct TenantsOverview {
    /// Live (not deleted) tenants.
    pub total: u64,
    /// Live tenants by status (`ACTIVE`, `TRIAL`, ...).
    pub by_status: BTreeMap<String, u64>,
    /// Live tenants by industry (`generic` for tenants without one, which follow it).
    pub by_industry: BTreeMap<String, u64>,
    /// Tenants created per week, the last 12 weeks.
    pub new_per_week: Vec<WeekCount>,
    /// Tenants in trial whose trial ends in the next 14 days or has ended, soonest first (at most 50).
    pub trials_ending_soon: Vec<TrialEnding>,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn weeks_start_on_monday_and_empty_ones_count_zero() {
        // Sunday 6 December 2026: its week starts on Monday 30 November.
        let now = Utc.with_ymd_and_hms(2026, 12, 6, 23, 0, 0).unwrap();
        let monday = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let counts = BTreeMap::from([(monday, 3), (monday - Duration::weeks(2), 5)]);
        let weeks = weekly(&counts, now);
        assert_eq!(weeks.len(), WEEKS_SHOWN);
        assert_eq!(weeks.last(), Some(&WeekCount { week: monday, count: 3 }));
        assert_eq!(weeks[WEEKS_SHOWN - 2].count, 0);
        assert_eq!(weeks[WEEKS_SHOWN - 3], WeekCount { week: monday - Duration::weeks(2), count: 5 });
        assert_eq!(weeks[0].week, monday - Duration::weeks(11));
    }
}
