//! What the platform charges tenants for credits: a price list per channel
//! and currency with volume tiers, and custom plans with negotiated prices.

use chrono::{DateTime, Utc};
use portico_kernel::{Currency, CustomPlanId, Money, TenantId, ValidationErrors};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{Channel, CreditsError};

/// From `fromQuantity` credits on (in one purchase), each credit costs
/// `unitPrice` (major units, e.g. `0.075` EUR). Volume pricing: the tier a
/// purchase's quantity falls in prices all its credits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriceTier {
    /// The smallest quantity this tier applies to (the first tier starts at 1).
    pub from_quantity: i64,
    /// The price of one credit in major units, as a decimal string.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "0.075"))]
    pub unit_price: Decimal,
}

/// The price of one channel's credits in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChannelPrice {
    /// The channel.
    pub channel: Channel,
    /// The currency.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "EUR"))]
    pub currency: Currency,
    /// Tiers by ascending `fromQuantity`, the first from 1.
    pub tiers: Vec<PriceTier>,
}

/// The platform's whole price list (`GET`/`PUT /api/v1/credits/pricing`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"prices": [
    {"channel": "sms", "currency": "EUR", "tiers": [
        {"fromQuantity": 1, "unitPrice": "0.08"}, {"fromQuantity": 10000, "unitPrice": "0.065"}]},
    {"channel": "email", "currency": "EUR", "tiers": [{"fromQuantity": 1, "unitPrice": "0.001"}]}
]})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriceList {
    /// One entry per channel and currency.
    pub prices: Vec<ChannelPrice>,
}

/// The most credits one purchase may buy.
pub const MAX_PURCHASE: i64 = 100_000_000;

/// Checks a set of tiers: at least one, ascending from 1, prices not negative
/// and at most 6 decimal places. `at` names the field in errors.
pub fn check_tiers(tiers: &[PriceTier], at: &str) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    if tiers.is_empty() || tiers.len() > 20 {
        errors.0.extend(ValidationErrors::field(format!("{at}.tiers"), "give 1 to 20 tiers").0);
    }
    if tiers.first().is_some_and(|t| t.from_quantity != 1) {
        errors.0.extend(
            ValidationErrors::field(format!("{at}.tiers[0].fromQuantity"), "the first tier starts at 1").0,
        );
    }
    for (i, pair) in tiers.windows(2).enumerate() {
        if pair[1].from_quantity <= pair[0].from_quantity || pair[1].from_quantity > MAX_PURCHASE {
            let field = format!("{at}.tiers[{}].fromQuantity", i + 1);
            errors.0.extend(ValidationErrors::field(field, "tiers ascend by quantity, up to 100000000").0);
        }
    }
    for (i, tier) in tiers.iter().enumerate() {
        if tier.unit_price.is_sign_negative()
            || tier.unit_price.scale() > 6
            || tier.unit_price > Decimal::from(10_000)
        {
            let field = format!("{at}.tiers[{i}].unitPrice");
            errors.0.extend(ValidationErrors::field(field, "0 to 10000 with at most 6 decimal places").0);
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

impl PriceList {
    /// Checks every entry's tiers, and that no channel and currency appear twice.
    pub fn validated(self) -> Result<Self, CreditsError> {
        let mut errors = ValidationErrors::default();
        for (i, price) in self.prices.iter().enumerate() {
            if let Err(found) = check_tiers(&price.tiers, &format!("prices[{i}]")) {
                errors.0.extend(found.0);
            }
            if self.prices[..i].iter().any(|p| p.channel == price.channel && p.currency == price.currency) {
                errors.0.extend(
                    ValidationErrors::field(format!("prices[{i}]"), "this channel and currency appear twice")
                        .0,
                );
            }
        }
        if errors.is_empty() { Ok(self) } else { Err(CreditsError::Invalid(errors)) }
    }
}

/// The unit price of `quantity` credits under `tiers` (volume pricing).
#[must_use]
pub fn unit_price(tiers: &[PriceTier], quantity: i64) -> Option<Decimal> {
    tiers.iter().rev().find(|tier| tier.from_quantity <= quantity).map(|tier| tier.unit_price)
}

/// A tenant's negotiated price for one channel and currency, for a while.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e64", "tenantId": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e00",
    "name": "Acme 2027 SMS", "channel": "sms", "currency": "EUR",
    "tiers": [{"fromQuantity": 1, "unitPrice": "0.055"}], "validFrom": "2027-01-01T00:00:00Z",
    "validUntil": null, "active": true, "createdAt": "2026-11-23T09:00:00Z", "updatedAt": "2026-11-23T09:00:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct CustomPlan {
    /// The plan.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: CustomPlanId,
    /// The tenant it prices.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub tenant_id: TenantId,
    /// A name for people.
    pub name: String,
    /// The channel.
    pub channel: Channel,
    /// The currency.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "EUR"))]
    pub currency: Currency,
    /// Its tiers (volume pricing, as the price list).
    pub tiers: Vec<PriceTier>,
    /// From when it applies.
    pub valid_from: DateTime<Utc>,
    /// Until when (never ends when absent).
    pub valid_until: Option<DateTime<Utc>>,
    /// Switched off plans do not apply.
    pub active: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl CustomPlan {
    /// Whether it prices `channel` in `currency` at `now`.
    #[must_use]
    pub fn applies(&self, channel: Channel, currency: Currency, now: DateTime<Utc>) -> bool {
        self.active
            && self.channel == channel
            && self.currency == currency
            && self.valid_from <= now
            && self.valid_until.is_none_or(|until| now < until)
    }
}

/// What a purchase of credits costs, and which price set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Quote {
    /// Credits bought.
    pub quantity: i64,
    /// The price of one.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "0.075"))]
    pub unit_price: Decimal,
    /// `quantity × unitPrice`, rounded half to even once.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub total: Money,
    /// The custom plan that priced it, if not the price list.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub plan_id: Option<CustomPlanId>,
}

/// Prices `quantity` credits of `channel` in `currency` at `now`: a custom
/// plan of the tenant that applies wins over the price list (the most
/// recently started one when several do).
pub fn quote(
    list: &[ChannelPrice],
    plans: &[CustomPlan],
    channel: Channel,
    currency: Currency,
    quantity: i64,
    now: DateTime<Utc>,
) -> Result<Quote, CreditsError> {
    let plan = plans.iter().filter(|p| p.applies(channel, currency, now)).max_by_key(|p| p.valid_from);
    let (tiers, plan_id) = match plan {
        Some(plan) => (plan.tiers.as_slice(), Some(plan.id)),
        None => {
            let listed = list.iter().find(|p| p.channel == channel && p.currency == currency);
            (listed.map(|p| p.tiers.as_slice()).unwrap_or_default(), None)
        }
    };
    let no_price = || CreditsError::NoPrice { channel, currency };
    let unit = unit_price(tiers, quantity).ok_or_else(no_price)?;
    let amount = unit.checked_mul(Decimal::from(quantity)).ok_or_else(no_price)?;
    let total = Money::from_decimal(amount, currency).map_err(|_| no_price())?;
    Ok(Quote { quantity, unit_price: unit, total, plan_id })
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    fn tiers(list: &[(i64, &str)]) -> Vec<PriceTier> {
        list.iter()
            .map(|(from, price)| PriceTier { from_quantity: *from, unit_price: price.parse().unwrap() })
            .collect()
    }

    fn sms_list() -> Vec<ChannelPrice> {
        vec![ChannelPrice {
            channel: Channel::Sms,
            currency: eur(),
            tiers: tiers(&[(1, "0.08"), (10_000, "0.065")]),
        }]
    }

    #[test]
    fn the_tier_a_quantity_falls_in_prices_every_credit() {
        let now = Utc::now();
        let small = quote(&sms_list(), &[], Channel::Sms, eur(), 9_999, now).unwrap();
        assert_eq!(small.total, Money::from_minor(79_992, eur()), "9999 × 0.08 = 799.92");
        let large = quote(&sms_list(), &[], Channel::Sms, eur(), 10_000, now).unwrap();
        assert_eq!(large.total, Money::from_minor(65_000, eur()), "10000 × 0.065 = 650.00");
        assert_eq!(large.unit_price, "0.065".parse::<Decimal>().unwrap());
    }

    #[test]
    fn the_total_is_rounded_half_to_even_once() {
        let list =
            vec![ChannelPrice { channel: Channel::Email, currency: eur(), tiers: tiers(&[(1, "0.0125")]) }];
        // 3 × 0.0125 = 0.0375 -> 0.04; 2 × 0.0125 = 0.025 -> 0.02 (half to even).
        assert_eq!(quote(&list, &[], Channel::Email, eur(), 3, Utc::now()).unwrap().total.amount_minor(), 4);
        assert_eq!(quote(&list, &[], Channel::Email, eur(), 2, Utc::now()).unwrap().total.amount_minor(), 2);
    }

    #[test]
    fn an_applicable_custom_plan_wins_over_the_price_list() {
        let now = Utc::now();
        let plan = CustomPlan {
            id: CustomPlanId::new(),
            tenant_id: TenantId::new(),
            name: "negotiated".into(),
            channel: Channel::Sms,
            currency: eur(),
            tiers: tiers(&[(1, "0.05")]),
            valid_from: now - Duration::days(1),
            valid_until: None,
            active: true,
            created_at: now,
            updated_at: now,
        };
        let quoted = quote(&sms_list(), std::slice::from_ref(&plan), Channel::Sms, eur(), 100, now).unwrap();
        assert_eq!((quoted.total.amount_minor(), quoted.plan_id), (500, Some(plan.id)));
        for stale in [
            CustomPlan { active: false, ..plan.clone() },
            CustomPlan { valid_until: Some(now), ..plan.clone() },
            CustomPlan { valid_from: now + Duration::days(1), ..plan.clone() },
            CustomPlan { channel: Channel::Email, ..plan.clone() },
        ] {
            let quoted = quote(&sms_list(), &[stale], Channel::Sms, eur(), 100, now).unwrap();
            assert_eq!((quoted.total.amount_minor(), quoted.plan_id), (800, None));
        }
    }

    #[test]
    fn no_price_for_a_channel_or_currency_is_an_error() {
        let usd = Currency::parse("USD").unwrap();
        assert!(matches!(
            quote(&sms_list(), &[], Channel::Sms, usd, 10, Utc::now()),
            Err(CreditsError::NoPrice { .. })
        ));
        assert!(matches!(
            quote(&sms_list(), &[], Channel::Whatsapp, eur(), 10, Utc::now()),
            Err(CreditsError::NoPrice { .. })
        ));
    }

    #[test]
    fn tiers_must_start_at_one_ascend_and_cost_something_sane() {
        assert!(check_tiers(&tiers(&[(1, "0.08"), (100, "0.07")]), "p").is_ok());
        let fields = |t: &[(i64, &str)]| {
            check_tiers(&tiers(t), "p")
                .unwrap_err()
                .fields()
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(fields(&[]), ["p.tiers"]);
        assert_eq!(fields(&[(2, "0.08")]), ["p.tiers[0].fromQuantity"]);
        assert_eq!(fields(&[(1, "0.08"), (1, "0.07")]), ["p.tiers[1].fromQuantity"]);
        assert_eq!(fields(&[(1, "-0.01")]), ["p.tiers[0].unitPrice"]);
        assert_eq!(fields(&[(1, "0.0000001")]), ["p.tiers[0].unitPrice"]);
        let twice = PriceList { prices: [sms_list(), sms_list()].concat() };
        assert!(matches!(twice.validated(), Err(CreditsError::Invalid(e)) if e.fields() == ["prices[1]"]));
    }
}
