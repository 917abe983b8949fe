//! A tenant's effective configuration: its industry profile's defaults with
//! the tenant's own settings and the platform's per-tenant feature flags
//! laid over them. One pure function ([`effective_config`]) computes it, for
//! the API and for every route gated by a feature.

use std::collections::BTreeMap;

use crate::{Catalogue, TenancyError, TenantSettings, UpdateSettings};

/// Where a feature's state comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FeatureSource {
    /// The industry profile's default.
    Industry,
    /// Set for this tenant by the platform's staff.
    Override,
}

/// One feature as a tenant has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FeatureState {
    /// On or off.
    pub enabled: bool,
    /// Whether that is the profile's default or an override.
    pub source: FeatureSource,
}

/// Everything a tenant is configured with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "industry": "trucking",
    "settings": {"timeZone": "Europe/Vienna", "locale": "de-DE", "currency": "EUR", "invoicePrefix": "TR",
                 "contact": {}, "notifications": {"email": true, "sms": true, "whatsapp": true,
                 "lowBalanceAlerts": true, "invoiceEmails": true, "weeklySummary": false}},
    "ownSettings": {"timeZone": "Europe/Vienna"},
    "features": {"credits": {"enabled": true, "source": "industry"}, "fleet": {"enabled": true, "source": "industry"},
                 "work_orders": {"enabled": true, "source": "override"}, "meters": {"enabled": false, "source": "industry"}}
})))]
#[serde(rename_all = "camelCase")]
pub struct EffectiveConfig {
    /// The industry profile followed (`generic` when the tenant names none).
    pub industry: String,
    /// The settings in force.
    pub settings: TenantSettings,
    /// The values the tenant set itself (the rest are the profile's).
    pub own_settings: UpdateSettings,
    /// Every known feature and its state.
    pub features: BTreeMap<String, FeatureState>,
}

impl EffectiveConfig {
    /// Whether `feature` is on; an unknown feature is off.
    #[must_use]
    pub fn enabled(&self, feature: &str) -> bool {
        self.features.get(feature).is_some_and(|state| state.enabled)
    }
}

/// A tenant's settings as `GET .../settings` shows them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "industry": "property_management",
    "settings": {"timeZone": "Europe/Vienna", "locale": "de-DE", "currency": "EUR", "invoicePrefix": "PM",
                 "contact": {"city": "Wien"}, "notifications": {"email": true, "sms": true, "whatsapp": false,
                 "lowBalanceAlerts": true, "invoiceEmails": true, "weeklySummary": true}},
    "ownSettings": {"timeZone": "Europe/Vienna", "contact": {"city": "Wien"}}
})))]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    /// The industry profile whose defaults fill in the rest.
    pub industry: String,
    /// The settings in force.
    pub settings: TenantSettings,
    /// The values the tenant set itself.
    pub own_settings: UpdateSettings,
}

impl From<EffectiveConfig> for SettingsView {
    fn from(config: EffectiveConfig) -> Self {
        Self { industry: config.industry, settings: config.settings, own_settings: config.own_settings }
    }
}

/// The configuration of a tenant of `industry` with its own `settings` and
/// the feature `overrides` set for it: each known feature is the override
/// if there is one, else the profile's default (off when the profile does
/// not list it). An override of a feature the catalogue no longer knows
/// plays no part (and can be removed with `null`); an unknown industry is
/// refused (a migration maps industries the catalogue drops).
pub fn effective_config(
    catalogue: &Catalogue,
    industry: Option<&str>,
    settings: &UpdateSettings,
    overrides: &BTreeMap<String, bool>,
) -> Result<EffectiveConfig, TenancyError> {
    let profile = catalogue.profile_of(industry)?;
    let features = catalogue
        .features
        .iter()
        .map(|feature| {
            let state = match overrides.get(&feature.key) {
                Some(&enabled) => FeatureState { enabled, source: FeatureSource::Override },
                None => FeatureState {
                    enabled: profile.features.get(&feature.key).copied().unwrap_or(false),
                    source: FeatureSource::Industry,
                },
            };
            (feature.key.clone(), state)
        })
        .collect();
    Ok(EffectiveConfig {
        industry: profile.key.clone(),
        settings: profile.settings.overridden_by(settings),
        own_settings: settings.clone(),
        features,
    })
}

/// Sets or removes per-tenant feature overrides: `true`/`false` sets one,
/// `null` removes it (the profile's default applies again).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"features": {"work_orders": true, "crm": false, "fleet": null}})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetFeatures {
    /// Feature key to `true`, `false` or `null`.
    pub features: BTreeMap<String, Option<bool>>,
}

/// The overrides after `changes`, or the first feature the catalogue does
/// not know that `changes` sets (removing an unknown one is allowed).
pub fn change_features(
    catalogue: &Catalogue,
    current: &BTreeMap<String, bool>,
    changes: &SetFeatures,
) -> Result<BTreeMap<String, bool>, TenancyError> {
    let mut next = current.clone();
    for (key, value) in &changes.features {
        match value {
            Some(_) if catalogue.feature(key).is_none() => {
                return Err(TenancyError::UnknownFeature(key.clone()));
            }
            Some(enabled) => next.insert(key.clone(), *enabled),
            None => next.remove(key),
        };
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> &'static Catalogue {
        Catalogue::builtin().unwrap()
    }

    fn overrides(pairs: &[(&str, bool)]) -> BTreeMap<String, bool> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn defaults_come_from_the_industry_profile() {
        let config =
            effective_config(catalogue(), Some("trucking"), &UpdateSettings::default(), &BTreeMap::new())
                .unwrap();
        assert_eq!(config.industry, "trucking");
        assert_eq!(config.settings, catalogue().industry("trucking").unwrap().settings);
        assert!(config.enabled("fleet") && config.enabled("routes") && config.enabled("drivers"));
        assert!(!config.enabled("work_orders"), "a known feature the profile does not list is off");
        assert_eq!(config.features.len(), catalogue().features.len(), "every known feature is listed");
        assert!(config.features.values().all(|s| s.source == FeatureSource::Industry));
    }

    #[test]
    fn a_tenant_without_an_industry_gets_the_generic_profile() {
        let config =
            effective_config(catalogue(), None, &UpdateSettings::default(), &BTreeMap::new()).unwrap();
        assert_eq!(config.industry, "generic");
        assert!(config.enabled("credits"));
        assert!(!config.enabled("fleet"));
    }

    #[test]
    fn overrides_win_over_defaults_in_both_directions() {
        let own = UpdateSettings { time_zone: Some("Europe/Vienna".into()), ..UpdateSettings::default() };
        let config = effective_config(
            catalogue(),
            Some("trucking"),
            &own,
            &overrides(&[("work_orders", true), ("fleet", false)]),
        )
        .unwrap();
        assert_eq!(config.settings.time_zone, "Europe/Vienna");
        assert_eq!(config.settings.invoice_prefix, "TR", "what the tenant did not set stays the profile's");
        assert_eq!(
            config.features["work_orders"],
            FeatureState { enabled: true, source: FeatureSource::Override }
        );
        assert_eq!(
            config.features["fleet"],
            FeatureState { enabled: false, source: FeatureSource::Override }
        );
        assert_eq!(config.features["routes"].source, FeatureSource::Industry);
        assert_eq!(config.own_settings, own);
    }

    #[test]
    fn removing_an_override_brings_back_the_default() {
        let current = overrides(&[("fleet", false), ("work_orders", true)]);
        let changes: SetFeatures =
            serde_json::from_value(serde_json::json!({"features": {"fleet": null}})).unwrap();
        let next = change_features(catalogue(), &current, &changes).unwrap();
        assert_eq!(next, overrides(&[("work_orders", true)]));
        let config =
            effective_config(catalogue(), Some("trucking"), &UpdateSettings::default(), &next).unwrap();
        assert_eq!(config.features["fleet"], FeatureState { enabled: true, source: FeatureSource::Industry });
    }

    #[test]
    fn an_unknown_flag_is_refused_and_changes_nothing() {
        let current = overrides(&[("fleet", false)]);
        let changes: SetFeatures =
            serde_json::from_value(serde_json::json!({"features": {"crm": false, "teleportation": true}}))
                .unwrap();
        let err = change_features(catalogue(), &current, &changes).unwrap_err();
        assert!(matches!(err, TenancyError::UnknownFeature(ref key) if key == "teleportation"), "{err:?}");
    }

    #[test]
    fn a_stored_override_of_a_feature_no_longer_known_plays_no_part_and_can_be_removed() {
        let stored = overrides(&[("teleportation", true), ("fleet", true)]);
        let config = effective_config(catalogue(), None, &UpdateSettings::default(), &stored).unwrap();
        assert!(!config.features.contains_key("teleportation"));
        assert!(config.enabled("fleet"));
        let changes: SetFeatures =
            serde_json::from_value(serde_json::json!({"features": {"teleportation": null}})).unwrap();
        assert_eq!(change_features(catalogue(), &stored, &changes).unwrap(), overrides(&[("fleet", true)]));
    }

    #[test]
    fn an_unknown_industry_is_refused() {
        let err =
            effective_config(catalogue(), Some("alchemy"), &UpdateSettings::default(), &BTreeMap::new());
        assert!(matches!(err, Err(TenancyError::UnknownIndustry(ref key)) if key == "alchemy"));
    }
}
