//! The master wallet: the platform's own inventory of credits per channel,
//! bought from providers and sold on to tenants.

use chrono::{DateTime, Utc};
use portico_kernel::{EntryId, TenantId};
use serde::{Deserialize, Serialize};

use crate::Channel;

/// The platform's stock of one channel's credits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "channel": "sms", "balance": 982000, "soldLast30Days": 18000, "updatedAt": "2026-11-24T10:30:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct MasterWallet {
    /// The channel.
    pub channel: Channel,
    /// Credits in stock: the sum of its entries.
    pub balance: i64,
    /// Credits that went to tenants in the last 30 days.
    pub sold_last_30_days: i64,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// One line of the master wallet's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MasterEntry {
    /// The entry.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: EntryId,
    /// The channel.
    pub channel: Channel,
    /// `top_up` (bought from a provider) or `sale` (moved to a tenant's wallet).
    pub kind: String,
    /// Credits in (positive) or out (negative).
    pub amount: i64,
    /// The stock right after it.
    pub balance_after: i64,
    /// The tenant the credits went to (sales).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub tenant_id: Option<TenantId>,
    /// The reference key of the operation.
    pub reference: String,
    /// What the top-up was, or which sale.
    pub note: Option<String>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}
