//! The commands that move credits, validated with garde: these are the
//! request bodies of the API.

use chrono::{DateTime, Utc};
use portico_kernel::{Currency, TenantId, ValidationErrors};
use serde::{Deserialize, Serialize};

use crate::pricing::{MAX_PURCHASE, PriceTier, check_tiers};
use crate::reservation::MAX_HOLD_SECS;
use crate::{Channel, CreditsError, GrantSource};

/// The key that makes an operation happen once: repeating an operation with
/// the same key in the same tenant returns the first result and moves
/// nothing. 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Reference(String);

impl Reference {
    /// Longest reference kept.
    pub const MAX_LEN: usize = 255;

    /// Checks `text` as a reference.
    pub fn parse(text: &str) -> Result<Self, CreditsError> {
        if text.is_empty() || text.len() > Self::MAX_LEN || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CreditsError::Invalid(ValidationErrors::field(
                "reference",
                "1 to 255 visible ASCII characters (no spaces)",
            )));
        }
        Ok(Self(text.to_owned()))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub(crate) fn not_blank(value: &str, ctx: &()) -> garde::Result {
    if value.trim().is_empty() { Err(garde::Error::new("must not be blank")) } else { plain_text(value, ctx) }
}

/// Free text kept on the ledger: no control characters (PostgreSQL refuses NUL, and none belong there).
pub(crate) fn plain_text(value: &str, _: &()) -> garde::Result {
    if value.chars().any(|c| c.is_control() && c != '\n') {
        Err(garde::Error::new("must not contain control characters"))
    } else {
        Ok(())
    }
}

fn validated<T: garde::Validate<Context = ()>>(command: T) -> Result<T, CreditsError> {
    command.validate().map_err(|report| CreditsError::Invalid(ValidationErrors::from(report)))?;
    Ok(command)
}

/// Adds credits to a wallet (`POST /api/v1/credits/wallets/{id}/add`).
/// A purchase is priced and paid; other sources are the platform's staff's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "amount": 5000, "source": "purchase", "currency": "EUR", "validityDays": 365
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddCredits {
    /// 1 to 100,000,000 credits.
    #[garde(range(min = 1, max = MAX_PURCHASE))]
    pub amount: i64,
    /// `purchase` (default), `promotional`, `refund` or `adjustment` (`package` comes only from buying one).
    #[serde(default = "purchase")]
    #[garde(custom(not_package))]
    pub source: GrantSource,
    /// The currency a purchase is priced in (default EUR).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "EUR"))]
    #[serde(default)]
    #[garde(skip)]
    pub currency: Option<Currency>,
    /// 0 to 1000, lower drawn first (default 50).
    #[serde(default)]
    #[garde(inner(range(min = 0, max = 1000)))]
    pub priority: Option<i16>,
    /// Days until the credits expire, 1 to 3,650 (never when absent).
    #[serde(default)]
    #[garde(inner(range(min = 1, max = 3650)))]
    pub validity_days: Option<u32>,
    /// Why, for the ledger (up to 500 characters); required for every source but `purchase`.
    #[serde(default)]
    #[garde(inner(length(chars, max = 500), custom(plain_text)))]
    pub note: Option<String>,
}

const fn purchase() -> GrantSource {
    GrantSource::Purchase
}

fn not_package(source: &GrantSource, _: &()) -> garde::Result {
    if *source == GrantSource::Package {
        Err(garde::Error::new("package credits come from buying a package"))
    } else {
        Ok(())
    }
}

impl AddCredits {
    /// The command, checked: credits given rather than bought say why.
    pub fn validated(self) -> Result<Self, CreditsError> {
        let command = validated(self)?;
        if command.source != GrantSource::Purchase
            && command.note.as_deref().is_none_or(|n| n.trim().is_empty())
        {
            return Err(CreditsError::Invalid(ValidationErrors::field(
                "note",
                "say why credits are given (required for every source but purchase)",
            )));
        }
        Ok(command)
    }
}

/// Takes credits from, or gives credits to, a wallet by hand, with a reason
/// (`POST /api/v1/credits/wallets/{id}/adjust`, the platform's staff).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"amount": -120, "reason": "Duplicate top-up on 2026-11-20."})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdjustCredits {
    /// Credits to add (positive) or take (negative), not zero.
    #[garde(range(min = -MAX_PURCHASE, max = MAX_PURCHASE), custom(not_zero))]
    pub amount: i64,
    /// Why: 1 to 500 characters, kept on the ledger.
    #[garde(length(chars, min = 1, max = 500), custom(not_blank))]
    pub reason: String,
}

fn not_zero(amount: &i64, _: &()) -> garde::Result {
    if *amount == 0 { Err(garde::Error::new("must not be zero")) } else { Ok(()) }
}

impl AdjustCredits {
    /// The command, checked.
    pub fn validated(self) -> Result<Self, CreditsError> {
        validated(self)
    }
}

/// Holds credits for a send about to happen (`POST /api/v1/credits/reservations`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"channel": "sms", "amount": 3, "holdSeconds": 900})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reserve {
    /// The wallet's channel (created on first use).
    #[garde(skip)]
    pub channel: Channel,
    /// 1 to 100,000,000 credits.
    #[garde(range(min = 1, max = MAX_PURCHASE))]
    pub amount: i64,
    /// How long the hold lasts unsettled, 1 to 86,400 seconds (default 900).
    #[serde(default)]
    #[garde(inner(range(min = 1, max = MAX_HOLD_SECS)))]
    pub hold_seconds: Option<u32>,
}

impl Reserve {
    /// The command, checked.
    pub fn validated(self) -> Result<Self, CreditsError> {
        validated(self)
    }
}

/// Spends held credits (`POST /api/v1/credits/reservations/{id}/capture`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"amount": 2})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Capture {
    /// How many of the held credits were spent (all when absent); the rest go back.
    #[serde(default)]
    pub amount: Option<i64>,
}

/// Spends credits at once, for a send that needs no hold first
/// (`POST /api/v1/credits/debits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"channel": "sms", "amount": 1})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Debit {
    /// The wallet's channel.
    #[garde(skip)]
    pub channel: Channel,
    /// 1 to 100,000,000 credits.
    #[garde(range(min = 1, max = MAX_PURCHASE))]
    pub amount: i64,
}

impl Debit {
    /// The command, checked.
    pub fn validated(self) -> Result<Self, CreditsError> {
        validated(self)
    }
}

/// Adds what the platform bought from a provider to its master wallet
/// (`POST /api/v1/credits/master-wallet/top-up`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "channel": "sms", "amount": 1000000, "note": "Twilio order 2026-11-23"
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopUp {
    /// The channel.
    #[garde(skip)]
    pub channel: Channel,
    /// 1 to 1,000,000,000 credits.
    #[garde(range(min = 1, max = 1_000_000_000))]
    pub amount: i64,
    /// Where they came from: 1 to 500 characters.
    #[garde(length(chars, min = 1, max = 500), custom(not_blank))]
    pub note: String,
}

impl TopUp {
    /// The command, checked.
    pub fn validated(self) -> Result<Self, CreditsError> {
        validated(self)
    }
}

/// Sets a wallet's low-balance threshold (`PUT /api/v1/credits/wallets/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"lowBalanceThreshold": 100})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WalletSettings {
    /// 1 to 100,000,000; `null` turns the alert off.
    #[garde(inner(range(min = 1, max = MAX_PURCHASE)))]
    pub low_balance_threshold: Option<i64>,
}

impl WalletSettings {
    /// The command, checked.
    pub fn validated(self) -> Result<Self, CreditsError> {
        validated(self)
    }
}

/// A custom plan to create, or the new state of one
/// (`POST`/`PUT /api/v1/credits/custom-plans`, the platform's staff).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "tenantId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e00", "name": "Acme 2027 SMS", "channel": "sms",
    "currency": "EUR", "tiers": [{"fromQuantity": 1, "unitPrice": "0.055"}],
    "validFrom": "2027-01-01T00:00:00Z", "active": true
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanDraft {
    /// The tenant it prices (a plan cannot move to another tenant).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    #[garde(skip)]
    pub tenant_id: TenantId,
    /// 1 to 100 characters.
    #[garde(length(chars, min = 1, max = 100), custom(not_blank))]
    pub name: String,
    /// The channel.
    #[garde(skip)]
    pub channel: Channel,
    /// The currency.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "EUR"))]
    #[garde(skip)]
    pub currency: Currency,
    /// Volume tiers, the first from 1.
    #[garde(skip)]
    pub tiers: Vec<PriceTier>,
    /// From when it applies (now when absent).
    #[serde(default)]
    #[garde(skip)]
    pub valid_from: Option<DateTime<Utc>>,
    /// Until when (never ends when absent); after `validFrom`.
    #[serde(default)]
    #[garde(skip)]
    pub valid_until: Option<DateTime<Utc>>,
    /// Defaults to true.
    #[serde(default = "yes")]
    #[garde(skip)]
    pub active: bool,
}

const fn yes() -> bool {
    true
}

impl PlanDraft {
    /// The draft, checked: its fields, its tiers, and an end after its start.
    pub fn validated(self) -> Result<Self, CreditsError> {
        let mut errors = match garde::Validate::validate(&self) {
            Ok(()) => ValidationErrors::default(),
            Err(report) => ValidationErrors::from(report),
        };
        if let Err(found) = check_tiers(&self.tiers, "plan") {
            errors.0.extend(found.0.into_iter().map(|mut e| {
                e.field = e.field.trim_start_matches("plan.").to_owned();
                e
            }));
        }
        if let (Some(from), Some(until)) = (self.valid_from, self.valid_until)
            && until <= from
        {
            errors.0.extend(ValidationErrors::field("validUntil", "must be after validFrom").0);
        }
        if errors.is_empty() { Ok(self) } else { Err(CreditsError::Invalid(errors)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_visible_ascii_up_to_255() {
        assert!(Reference::parse("msg-2026-11-24:0001").is_ok());
        for bad in ["", "with space", "tab\t", "ünïcode", &"x".repeat(256)] {
            assert!(Reference::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn add_credits_defaults_to_a_purchase_and_refuses_package_and_bad_amounts() {
        let add: AddCredits = serde_json::from_value(serde_json::json!({"amount": 10})).unwrap();
        assert_eq!(add.validated().unwrap().source, GrantSource::Purchase);
        let bad: AddCredits =
            serde_json::from_value(serde_json::json!({"amount": 0, "source": "package", "priority": 1001}))
                .unwrap();
        let Err(CreditsError::Invalid(errors)) = bad.validated() else { panic!("refused") };
        assert_eq!(errors.fields(), ["amount", "priority", "source"]);
        assert!(serde_json::from_value::<AddCredits>(serde_json::json!({"amount": 1, "extra": 1})).is_err());
    }

    #[test]
    fn credits_given_rather_than_bought_say_why_in_plain_text() {
        let given: AddCredits =
            serde_json::from_value(serde_json::json!({"amount": 10, "source": "promotional"})).unwrap();
        let Err(CreditsError::Invalid(errors)) = given.validated() else { panic!("refused") };
        assert_eq!(errors.fields(), ["note"]);
        let nul: AddCredits =
            serde_json::from_value(serde_json::json!({"amount": 10, "note": "a\u{0}b"})).unwrap();
        let Err(CreditsError::Invalid(errors)) = nul.validated() else { panic!("refused") };
        assert_eq!(errors.fields(), ["note"]);
        let bought: AddCredits = serde_json::from_value(serde_json::json!({"amount": 10})).unwrap();
        assert!(bought.validated().is_ok(), "a purchase needs no note");
    }

    #[test]
    fn an_adjustment_needs_a_reason_and_a_non_zero_amount() {
        let bad: AdjustCredits =
            serde_json::from_value(serde_json::json!({"amount": 0, "reason": " "})).unwrap();
        let Err(CreditsError::Invalid(errors)) = bad.validated() else { panic!("refused") };
        assert_eq!(errors.fields(), ["amount", "reason"]);
    }

    #[test]
    fn a_plan_ends_after_it_starts_and_has_sane_tiers() {
        let bad: PlanDraft = serde_json::from_value(serde_json::json!({
            "tenantId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e00", "name": "x", "channel": "sms", "currency": "EUR",
            "tiers": [{"fromQuantity": 5, "unitPrice": "0.05"}],
            "validFrom": "2027-01-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        let Err(CreditsError::Invalid(errors)) = bad.validated() else { panic!("refused") };
        assert_eq!(errors.fields(), ["tiers[0].fromQuantity", "validUntil"]);
    }
}
