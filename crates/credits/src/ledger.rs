//! The ledger: append-only entries, one per grant touched by an operation.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use portico_kernel::{EntryId, GrantId, ReservationId, WalletId};
use serde::{Deserialize, Serialize};

use crate::Channel;

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Credits arrived (a purchase, package, promotion, refund or adjustment up).
    Grant,
    /// Credits spent directly.
    Debit,
    /// Held credits spent (a reservation captured).
    Capture,
    /// The unused part of an expired grant.
    Expiry,
    /// Credits taken by the platform's staff, with a reason.
    Adjustment,
}

impl EntryKind {
    /// Every kind.
    pub const ALL: [Self; 5] = [Self::Grant, Self::Debit, Self::Capture, Self::Expiry, Self::Adjustment];

    /// The name stored and sent.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Debit => "debit",
            Self::Capture => "capture",
            Self::Expiry => "expiry",
            Self::Adjustment => "adjustment",
        }
    }

    /// Whether entries of this kind spend credits (what consumption counts).
    #[must_use]
    pub const fn is_consumption(self) -> bool {
        matches!(self, Self::Debit | Self::Capture)
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EntryKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| format!("unknown entry kind `{text}`"))
    }
}

/// One ledger line. Entries are never changed or deleted: a wallet's balance
/// is the sum of its entries' amounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e61", "walletId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f",
    "channel": "sms", "grantId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e60", "kind": "capture", "amount": -3,
    "balanceAfter": 637, "reference": "msg-2026-11-24-0001", "reservationId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e62",
    "actor": "api_key:01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e63", "note": null, "createdAt": "2026-11-24T10:30:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The entry.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: EntryId,
    /// The wallet it changes.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub wallet_id: WalletId,
    /// The wallet's channel.
    pub channel: Channel,
    /// The grant it adds to or draws from.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub grant_id: GrantId,
    /// What it records.
    pub kind: EntryKind,
    /// Credits in (positive) or out (negative).
    pub amount: i64,
    /// The wallet's balance right after it.
    pub balance_after: i64,
    /// The reference key of the operation that wrote it.
    pub reference: String,
    /// The reservation it captures, if any.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub reservation_id: Option<ReservationId>,
    /// Who acted (`user:…`, `api_key:…`, `system:…`).
    pub actor: String,
    /// Why (adjustments carry their reason).
    pub note: Option<String>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

/// Which entries a ledger listing shows (`GET /api/v1/credits/transactions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryFilter {
    /// Only this channel.
    pub channel: Option<Channel>,
    /// Only this kind.
    pub kind: Option<EntryKind>,
    /// From this instant (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Before this instant.
    pub to: Option<DateTime<Utc>>,
}
