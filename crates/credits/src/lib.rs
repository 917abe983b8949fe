//! Portico's credits domain: prepaid, per-channel wallets (SMS, WhatsApp,
//! email) on an append-only ledger.
//!
//! Credits arrive as [`Grant`]s (purchase, package, promotion, refund,
//! adjustment) and are spent by debits and by reservations that are later
//! captured or released; [`allocate`] is the one rule that decides which
//! grants a debit draws from. The crate also owns the price list with volume
//! tiers, packages, tenants' custom plans, the platform's master wallet,
//! the low-balance rule and the [`CreditsLedger`] port. It is framework-free.
//!
//! ```
//! use chrono::{Duration, Utc};
//! use portico_credits::{Drawable, allocate};
//! use portico_kernel::GrantId;
//!
//! let now = Utc::now();
//! let promo = Drawable { id: GrantId::new(), priority: 50, expires_at: Some(now + Duration::days(7)),
//!                        paid: false, created_at: now, remaining: 100 };
//! let bought = Drawable { id: GrantId::new(), priority: 50, expires_at: None,
//!                         paid: true, created_at: now, remaining: 1000 };
//! // The grant that expires first is drawn first; the rest comes from the next one.
//! let draws = allocate(&[bought, promo], 150, now).unwrap();
//! assert_eq!((draws[0].grant, draws[0].amount), (promo.id, 100));
//! assert_eq!((draws[1].grant, draws[1].amount), (bought.id, 50));
//! ```

pub mod analytics;
mod book;
mod channel;
mod command;
mod error;
mod grant;
mod ledger;
mod master;
mod movement;
mod package;
pub mod pricing;
mod reservation;
mod store;
mod wallet;

pub use analytics::{ChannelConsumption, CreditAnalytics, CreditDashboard, MasterOverview, days_until_empty};
pub use book::{Book, EntryDraft, NewGrant};
pub use channel::{Channel, UnknownChannel};
pub use command::{
    AddCredits, AdjustCredits, Capture, Debit, PlanDraft, Reference, Reserve, TopUp, WalletSettings,
};
pub use error::CreditsError;
pub use grant::{
    DEFAULT_PRIORITY, Draw, Drawable, Grant, GrantSource, Shortfall, allocate, draw_order, split_draws,
};
pub use ledger::{Entry, EntryFilter, EntryKind};
pub use master::{MasterEntry, MasterWallet};
pub use movement::{Movement, PackagePurchase};
pub use package::{Package, PackageCredits, PackageDraft};
pub use pricing::{ChannelPrice, CustomPlan, PriceList, PriceTier, Quote, quote};
pub use reservation::{DEFAULT_HOLD_SECS, MAX_HOLD_SECS, Reservation, ReservationStatus};
pub use store::CreditsLedger;
pub use wallet::{LowBalanceAlert, ThresholdCrossing, Wallet, WalletDetail, WalletRef, crossing};
