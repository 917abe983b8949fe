//! What an operation that moves credits answers.

use serde::{Deserialize, Serialize};

use crate::{Entry, Reservation, Wallet};

/// The result of one ledger operation: the wallet after it, the entries it
/// wrote, and the reservation it made or settled. A repeated reference
/// answers the first result again with `replayed` set, and moves nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "reference": "msg-2026-11-24-0001", "replayed": false,
    "wallet": {"id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f", "channel": "sms", "balance": 637, "held": 0,
               "available": 637, "lowBalanceThreshold": 100, "lowBalance": false,
               "createdAt": "2026-11-23T09:00:00Z", "updatedAt": "2026-11-24T10:30:00Z"},
    "entries": [{"id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e61", "walletId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e5f",
                 "channel": "sms", "grantId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e60", "kind": "capture",
                 "amount": -3, "balanceAfter": 637, "reference": "msg-2026-11-24-0001",
                 "reservationId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e62", "actor": "api_key:01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e63",
                 "note": null, "createdAt": "2026-11-24T10:30:00Z"}],
    "reservation": null
})))]
#[serde(rename_all = "camelCase")]
pub struct Movement {
    /// The operation's reference key.
    pub reference: String,
    /// True when this answers a repeated reference (nothing moved this time).
    pub replayed: bool,
    /// The wallet after the operation.
    pub wallet: Wallet,
    /// The ledger entries it wrote (none for a reservation or a release).
    pub entries: Vec<Entry>,
    /// The reservation made, captured or released.
    pub reservation: Option<Reservation>,
}

/// The result of buying a package: one grant per channel in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct PackagePurchase {
    /// The operation's reference key.
    pub reference: String,
    /// True when this answers a repeated reference (nothing moved this time).
    pub replayed: bool,
    /// The package bought.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub package_id: portico_kernel::PackageId,
    /// What it cost.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub price: portico_kernel::Money,
    /// Each wallet it filled, after the purchase.
    pub wallets: Vec<Wallet>,
    /// The grant entries it wrote.
    pub entries: Vec<Entry>,
}
