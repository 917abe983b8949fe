//! A tenant's wallet for one channel, and its low-balance alert.

use chrono::{DateTime, Utc};
use portico_kernel::WalletId;
use serde::{Deserialize, Serialize};

use crate::Channel;

/// A wallet as its tenant sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f", "channel": "sms", "balance": 640, "held": 40,
    "available": 600, "lowBalanceThreshold": 100, "lowBalance": false,
    "createdAt": "2026-11-23T09:00:00Z", "updatedAt": "2026-11-24T10:30:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct Wallet {
    /// The wallet.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: WalletId,
    /// What its credits pay for.
    pub channel: Channel,
    /// The sum of its ledger entries: credits granted and not yet spent or expired.
    pub balance: i64,
    /// Credits held by open reservations.
    pub held: i64,
    /// What a debit or reservation can use now: `balance - held`.
    pub available: i64,
    /// Below this, the tenant's owners and admins are emailed once.
    pub low_balance_threshold: Option<i64>,
    /// True once `available` fell below the threshold (until it rises again).
    pub low_balance: bool,
    /// When it was created (its first use).
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What crossing the low-balance threshold asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdCrossing {
    /// Nothing changes.
    None,
    /// It fell below: send one alert and disarm until it rises again.
    Alert,
    /// It is back at or above the threshold: re-arm for the next fall.
    Rearm,
}

/// Whether a change that leaves `available` credits crosses `threshold`,
/// given whether the alert already fired (`alerted`). One alert per fall,
/// however many debits follow; rising to the threshold re-arms it.
#[must_use]
pub fn crossing(threshold: Option<i64>, alerted: bool, available: i64) -> ThresholdCrossing {
    match threshold {
        Some(limit) if !alerted && available < limit => ThresholdCrossing::Alert,
        Some(limit) if alerted && available >= limit => ThresholdCrossing::Rearm,
        None if alerted => ThresholdCrossing::Rearm,
        _ => ThresholdCrossing::None,
    }
}

/// How a path names a wallet: its id, or its channel (`sms`), which also
/// reaches a wallet not created yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalletRef {
    /// By id.
    Id(WalletId),
    /// By channel.
    Channel(Channel),
}

impl std::str::FromStr for WalletRef {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Ok(channel) = text.parse::<Channel>() {
            return Ok(Self::Channel(channel));
        }
        text.parse::<WalletId>()
            .map(Self::Id)
            .map_err(|_| "expected a wallet id or a channel (sms, whatsapp, email)".to_owned())
    }
}

impl<'de> Deserialize<'de> for WalletRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A wallet with the grants it can still draw from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct WalletDetail {
    /// The wallet.
    #[serde(flatten)]
    pub wallet: Wallet,
    /// Its grants with credits left, in the order debits draw from them.
    pub grants: Vec<crate::Grant>,
}

/// The job that emails a tenant's owners and admins when a wallet falls
/// below its threshold (enqueued once per fall).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LowBalanceAlert {
    /// The wallet.
    pub wallet_id: WalletId,
    /// Its channel.
    pub channel: Channel,
    /// Credits available when it fell below.
    pub available: i64,
    /// The threshold.
    pub threshold: i64,
}

impl portico_kernel::JobKind for LowBalanceAlert {
    const KIND: &'static str = "credits.low_balance";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falling_below_alerts_once_and_rising_rearms() {
        assert_eq!(crossing(Some(100), false, 150), ThresholdCrossing::None);
        assert_eq!(crossing(Some(100), false, 99), ThresholdCrossing::Alert);
        assert_eq!(crossing(Some(100), true, 50), ThresholdCrossing::None, "already alerted");
        assert_eq!(crossing(Some(100), true, 100), ThresholdCrossing::Rearm);
        assert_eq!(crossing(Some(100), false, 100), ThresholdCrossing::None, "at the threshold is not below");
    }

    #[test]
    fn no_threshold_never_alerts_and_clears_an_old_alert() {
        assert_eq!(crossing(None, false, 0), ThresholdCrossing::None);
        assert_eq!(crossing(None, true, 0), ThresholdCrossing::Rearm);
    }
}
