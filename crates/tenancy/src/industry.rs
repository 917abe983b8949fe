//! Industry profiles: what a tenant of each industry starts with.
//!
//! The catalogue is data kept in the repository (`data/industries.json`), so
//! a change to a default is reviewed like code. It lists the feature flags
//! the platform knows and, per industry, the default settings, the features
//! on by default (every other known feature is off), the length of a trial
//! and the credits a new tenant is welcomed with.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use crate::{TenancyError, TenantSettings};

/// The industry a tenant without one follows.
pub const GENERIC_INDUSTRY: &str = "generic";

/// A feature flag the platform knows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FeatureInfo {
    /// Its key (`work_orders`).
    pub key: String,
    /// Display name.
    pub name: String,
    /// What it turns on.
    pub description: String,
}

/// An industry and what its tenants start with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "key": "trucking",
    "name": "Trucking and logistics",
    "description": "Hauliers and delivery companies: fleet, routes and drivers.",
    "trialDays": 14,
    "settings": {"timeZone": "Europe/Berlin", "locale": "de-DE", "currency": "EUR", "invoicePrefix": "TR",
                 "contact": {}, "notifications": {"email": true, "sms": true, "whatsapp": true,
                 "lowBalanceAlerts": true, "invoiceEmails": true, "weeklySummary": false}},
    "features": {"credits": true, "crm": true, "fleet": true, "routes": true, "drivers": true},
    "welcomeCredits": {"sms": 100, "whatsapp": 100},
    "welcomeCreditDays": 60
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IndustryProfile {
    /// Its key (`property_management`), stored on the tenant.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Who it is for.
    pub description: String,
    /// Length of a new tenant's trial, in days.
    pub trial_days: u16,
    /// Default settings.
    pub settings: TenantSettings,
    /// Features and whether each is on by default; a known feature not listed is off.
    pub features: BTreeMap<String, bool>,
    /// Credits per channel (`sms`) granted once when a tenant is onboarded.
    pub welcome_credits: BTreeMap<String, i64>,
    /// Days the welcome credits stay usable.
    pub welcome_credit_days: u32,
}

/// Every known feature and industry profile.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "features": [{"key": "fleet", "name": "Fleet", "description": "Vehicles, their documents and maintenance."}],
    "industries": [{
        "key": "trucking", "name": "Trucking and logistics",
        "description": "Hauliers and delivery companies: fleet, routes and drivers.", "trialDays": 14,
        "settings": {"timeZone": "Europe/Berlin", "locale": "de-DE", "currency": "EUR", "invoicePrefix": "TR",
                     "contact": {}, "notifications": {"email": true, "sms": true, "whatsapp": true,
                     "lowBalanceAlerts": true, "invoiceEmails": true, "weeklySummary": false}},
        "features": {"credits": true, "fleet": true}, "welcomeCredits": {"sms": 100}, "welcomeCreditDays": 60
    }]
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Catalogue {
    /// The feature flags, in display order.
    pub features: Vec<FeatureInfo>,
    /// The industries, in display order.
    pub industries: Vec<IndustryProfile>,
}

static BUILTIN: LazyLock<Result<Catalogue, String>> =
    LazyLock::new(|| Catalogue::parse(include_str!("../data/industries.json")));

impl Catalogue {
    /// The catalogue kept in the repository. It is checked when first read;
    /// the apps read it at start, so a broken catalogue stops them there.
    pub fn builtin() -> Result<&'static Self, TenancyError> {
        BUILTIN.as_ref().map_err(|reason| TenancyError::Catalogue(reason.clone()))
    }

    /// Parses and checks a catalogue: known features only, unique keys, the
    /// generic industry present, defaults that pass the settings rules,
    /// positive welcome credits.
    pub fn parse(json: &str) -> Result<Self, String> {
        let catalogue: Self = serde_json::from_str(json).map_err(|e| format!("industry catalogue: {e}"))?;
        let mut features: Vec<&str> = catalogue.features.iter().map(|f| f.key.as_str()).collect();
        features.sort_unstable();
        if features.windows(2).any(|w| w[0] == w[1]) {
            return Err("industry catalogue: a feature is listed twice".into());
        }
        let mut industries: Vec<&str> = catalogue.industries.iter().map(|i| i.key.as_str()).collect();
        industries.sort_unstable();
        if industries.windows(2).any(|w| w[0] == w[1]) {
            return Err("industry catalogue: an industry is listed twice".into());
        }
        if catalogue.industry(GENERIC_INDUSTRY).is_none() {
            return Err("industry catalogue: the generic industry is missing".into());
        }
        for industry in &catalogue.industries {
            let key = &industry.key;
            if let Some(unknown) = industry.features.keys().find(|f| catalogue.feature(f).is_none()) {
                return Err(format!("industry {key}: unknown feature {unknown}"));
            }
            industry.settings.check().map_err(|e| format!("industry {key}: settings: {e}"))?;
            if industry.welcome_credits.values().any(|amount| *amount <= 0)
                || industry.welcome_credit_days == 0
            {
                return Err(format!("industry {key}: welcome credits must be positive"));
            }
        }
        Ok(catalogue)
    }

    /// The profile of `key`, if the catalogue has it.
    #[must_use]
    pub fn industry(&self, key: &str) -> Option<&IndustryProfile> {
        self.industries.iter().find(|industry| industry.key == key)
    }

    /// The profile a tenant of `industry` follows: its own, or the generic
    /// one when it has none. An industry the catalogue does not know is an error.
    pub fn profile_of(&self, industry: Option<&str>) -> Result<&IndustryProfile, TenancyError> {
        let key = industry.unwrap_or(GENERIC_INDUSTRY);
        self.industry(key).ok_or_else(|| TenancyError::UnknownIndustry(key.to_owned()))
    }

    /// The feature `key`, if known.
    #[must_use]
    pub fn feature(&self, key: &str) -> Option<&FeatureInfo> {
        self.features.iter().find(|feature| feature.key == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_catalogue_is_valid_and_has_the_promised_industries() {
        let catalogue = Catalogue::builtin().unwrap();
        for key in ["property_management", "education", "trucking", "service_repair", "generic"] {
            assert!(catalogue.industry(key).is_some(), "{key} missing");
        }
        let on = |industry: &str, feature: &str| {
            catalogue.industry(industry).unwrap().features.get(feature).copied().unwrap_or(false)
        };
        assert!(on("trucking", "fleet") && on("trucking", "routes") && on("trucking", "drivers"));
        assert!(on("service_repair", "technician_dispatch") && on("service_repair", "work_orders"));
        assert!(on("property_management", "meters") && on("property_management", "contracts"));
        assert!(!on("generic", "fleet"));
    }

    #[test]
    fn a_profile_naming_an_unknown_feature_is_refused() {
        let mut json: serde_json::Value =
            serde_json::from_str(include_str!("../data/industries.json")).unwrap();
        json["industries"][0]["features"]["teleportation"] = serde_json::json!(true);
        let err = Catalogue::parse(&json.to_string()).unwrap_err();
        assert!(err.contains("unknown feature teleportation"), "{err}");
    }

    #[test]
    fn a_profile_with_bad_defaults_is_refused() {
        let mut json: serde_json::Value =
            serde_json::from_str(include_str!("../data/industries.json")).unwrap();
        json["industries"][1]["settings"]["timeZone"] = serde_json::json!("Atlantis/Capital");
        let err = Catalogue::parse(&json.to_string()).unwrap_err();
        assert!(err.contains("industry property_management: settings") && err.contains("time"), "{err}");
        let mut json: serde_json::Value =
            serde_json::from_str(include_str!("../data/industries.json")).unwrap();
        json["industries"][1]["welcomeCredits"]["sms"] = serde_json::json!(0);
        assert!(Catalogue::parse(&json.to_string()).is_err());
    }

    #[test]
    fn a_tenant_without_an_industry_follows_the_generic_profile() {
        let catalogue = Catalogue::builtin().unwrap();
        assert_eq!(catalogue.profile_of(None).unwrap().key, GENERIC_INDUSTRY);
        assert!(
            matches!(catalogue.profile_of(Some("astrology")), Err(TenancyError::UnknownIndustry(k)) if k == "astrology")
        );
    }
}
