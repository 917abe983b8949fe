//! Packages: named bundles of credits the platform sells at a fixed price.

use chrono::{DateTime, Utc};
use portico_kernel::{Money, PackageId, ValidationErrors};
use serde::{Deserialize, Serialize};

use crate::{Channel, CreditsError};

/// Some credits of one channel in a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackageCredits {
    /// The channel.
    pub channel: Channel,
    /// How many credits (1 to 100,000,000).
    pub amount: i64,
}

/// A package as the catalogue shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01938f5e-8a1b-7c3d-9e2f-0a1b2c3d4e65", "name": "Starter", "description": "1,000 SMS and 5,000 emails.",
    "credits": [{"channel": "sms", "amount": 1000}, {"channel": "email", "amount": 5000}],
    "price": {"amountMinor": 8900, "currency": "EUR"}, "validityDays": 365, "active": true,
    "createdAt": "2026-11-23T09:00:00Z", "updatedAt": "2026-11-23T09:00:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct Package {
    /// The package.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: PackageId,
    /// Unique in the catalogue.
    pub name: String,
    /// What it is, for buyers.
    pub description: String,
    /// Its credits, one entry per channel.
    pub credits: Vec<PackageCredits>,
    /// What it costs.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub price: Money,
    /// Days its credits last after purchase (never expire when absent).
    pub validity_days: Option<u32>,
    /// Only active packages can be bought.
    pub active: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A package to create, or the new state of one (`POST`/`PUT /api/v1/credits/packages`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "name": "Starter", "description": "1,000 SMS and 5,000 emails.",
    "credits": [{"channel": "sms", "amount": 1000}, {"channel": "email", "amount": 5000}],
    "price": {"amountMinor": 8900, "currency": "EUR"}, "validityDays": 365, "active": true
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackageDraft {
    /// 1 to 100 characters, unique in the catalogue.
    #[garde(length(chars, min = 1, max = 100), custom(crate::command::not_blank))]
    pub name: String,
    /// Up to 1,000 characters.
    #[serde(default)]
    #[garde(length(chars, max = 1000), custom(crate::command::plain_text))]
    pub description: String,
    /// 1 to 3 entries, one per channel.
    #[garde(length(min = 1, max = 3), custom(one_per_channel))]
    pub credits: Vec<PackageCredits>,
    /// Not negative.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    #[garde(custom(not_negative))]
    pub price: Money,
    /// 1 to 3,650 days; never expire when absent.
    #[serde(default)]
    #[garde(inner(range(min = 1, max = 3650)))]
    pub validity_days: Option<u32>,
    /// Defaults to true.
    #[serde(default = "yes")]
    #[garde(skip)]
    pub active: bool,
}

const fn yes() -> bool {
    true
}

fn one_per_channel(credits: &[PackageCredits], _: &()) -> garde::Result {
    for (i, entry) in credits.iter().enumerate() {
        if !(1..=crate::pricing::MAX_PURCHASE).contains(&entry.amount) {
            return Err(garde::Error::new("each amount is 1 to 100000000"));
        }
        if credits[..i].iter().any(|other| other.channel == entry.channel) {
            return Err(garde::Error::new("each channel appears once"));
        }
    }
    Ok(())
}

fn not_negative(price: &Money, _: &()) -> garde::Result {
    if price.is_negative() { Err(garde::Error::new("must not be negative")) } else { Ok(()) }
}

impl PackageDraft {
    /// The draft, checked.
    pub fn validated(self) -> Result<Self, CreditsError> {
        garde::Validate::validate(&self)
            .map_err(|report| CreditsError::Invalid(ValidationErrors::from(report)))?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(json: serde_json::Value) -> Result<PackageDraft, CreditsError> {
        serde_json::from_value::<PackageDraft>(json).unwrap().validated()
    }

    #[test]
    fn a_package_has_one_entry_per_channel_and_a_price_not_below_zero() {
        let ok = draft(serde_json::json!({"name": "Starter", "credits": [{"channel": "sms", "amount": 10}],
            "price": {"amountMinor": 100, "currency": "EUR"}}))
        .unwrap();
        assert!(ok.active && ok.validity_days.is_none());
        let bad = draft(serde_json::json!({"name": " ", "credits": [{"channel": "sms", "amount": 10},
            {"channel": "sms", "amount": 5}], "price": {"amountMinor": -1, "currency": "EUR"}, "validityDays": 0}));
        let Err(CreditsError::Invalid(errors)) = bad else { panic!("refused") };
        assert_eq!(errors.fields(), ["credits", "name", "price", "validityDays"]);
    }
}
