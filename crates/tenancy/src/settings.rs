//! A tenant's settings: what it sets for itself (time zone, locale,
//! currency, invoice prefix, contact details, notification preferences).
//!
//! Its industry profile supplies a full set of defaults ([`TenantSettings`]);
//! the tenant stores only what it sets itself ([`UpdateSettings`]), so a
//! value it never set follows the profile, and removing a value of its own
//! falls back to the profile's.

use garde::Validate;
use portico_kernel::{Currency, ValidationErrors};

use crate::TenancyError;

/// A tenant's effective settings: every value present.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "timeZone": "Europe/Berlin",
    "locale": "de-DE",
    "currency": "EUR",
    "invoicePrefix": "PM",
    "contact": {"email": "billing@acme-property.example", "city": "Berlin", "country": "DE"},
    "notifications": {"email": true, "sms": true, "whatsapp": false, "lowBalanceAlerts": true,
                      "invoiceEmails": true, "weeklySummary": true}
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantSettings {
    /// IANA time zone (`Europe/Berlin`): billing periods and reports are cut in it.
    pub time_zone: String,
    /// Language and region of texts and formats (`de-DE`).
    pub locale: String,
    /// ISO 4217 currency of prices and invoices (`EUR`).
    pub currency: String,
    /// Prefix of invoice numbers (`PM` gives `PM-2026-000042`).
    pub invoice_prefix: String,
    /// How customers reach the business.
    pub contact: ContactDetails,
    /// What the platform tells the tenant, and how.
    pub notifications: NotificationPreferences,
}

/// Contact details shown on invoices and messages; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactDetails {
    /// Email address for customers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[garde(inner(email, length(max = 254)))]
    pub email: Option<String>,
    /// Phone in E.164 form (`+4930123456`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[garde(pattern(r"^\+[1-9][0-9]{6,14}$"))]
    pub phone: Option<String>,
    /// Web site, `https://` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[garde(inner(length(max = 200), pattern(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[!-~]*)?$")))]
    pub website: Option<String>,
    /// Street and number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[garde(inner(length(chars, min = 1, max = 200), custom(plain_text)))]
    pub address_line1: Option<String>,
    /// Second address line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[garde(inner(length(chars, min = 1, max = 200), custom(plain_text)))]
    pub address_line2: Option<String>,
    /// Postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[garde(inner(length(chars, min = 1, max = 20), custom(plain_text)))]
    pub postal_code: Option<String>,
    /// City.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[garde(inner(length(chars, min = 1, max = 100), custom(plain_text)))]
    pub city: Option<String>,
    /// ISO 3166-1 alpha-2 country code (`DE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[garde(pattern(r"^[A-Z]{2}$"))]
    pub country: Option<String>,
}

/// Which notifications the tenant receives and on which channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationPreferences {
    /// Notifications by email.
    pub email: bool,
    /// Notifications by SMS.
    pub sms: bool,
    /// Notifications by WhatsApp.
    pub whatsapp: bool,
    /// Alerts when a credit wallet runs low.
    pub low_balance_alerts: bool,
    /// A copy of every invoice issued.
    pub invoice_emails: bool,
    /// A weekly summary of activity.
    pub weekly_summary: bool,
}

/// Notification preferences the tenant sets; absent ones follow the profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationOverrides {
    /// Notifications by email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<bool>,
    /// Notifications by SMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<bool>,
    /// Notifications by WhatsApp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whatsapp: Option<bool>,
    /// Alerts when a credit wallet runs low.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_balance_alerts: Option<bool>,
    /// A copy of every invoice issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_emails: Option<bool>,
    /// A weekly summary of activity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly_summary: Option<bool>,
}

/// The settings a tenant sets itself: `PUT` replaces them all, and a field
/// left out (or `null`) follows the industry profile's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "timeZone": "Europe/Vienna",
    "currency": "EUR",
    "invoicePrefix": "ACME",
    "contact": {"email": "billing@acme-property.example", "phone": "+4930123456", "city": "Berlin", "country": "DE"},
    "notifications": {"sms": false}
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateSettings {
    /// IANA time zone (`Europe/Berlin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[garde(inner(custom(time_zone_rules)))]
    pub time_zone: Option<String>,
    /// Language and region (`de-DE`, `en`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[garde(pattern(r"^[a-z]{2,3}(-[A-Z]{2})?$"))]
    pub locale: Option<String>,
    /// ISO 4217 currency (`EUR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[garde(inner(custom(currency_rules)))]
    pub currency: Option<String>,
    /// Invoice number prefix: 1 to 12 of `A-Z 0-9 -`, starting with a letter or digit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[garde(pattern(r"^[A-Z0-9][A-Z0-9-]{0,11}$"))]
    pub invoice_prefix: Option<String>,
    /// Contact details (replaced as a whole when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[garde(dive)]
    pub contact: Option<ContactDetails>,
    /// Notification preferences; each one left out follows the profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[garde(skip)]
    pub notifications: Option<NotificationOverrides>,
}

impl UpdateSettings {
    /// The command if every rule holds, else each failing field.
    pub fn validated(self) -> Result<Self, TenancyError> {
        self.validate().map_err(|report| TenancyError::InvalidSettings(ValidationErrors::from(report)))?;
        Ok(self)
    }

    /// These own values with `later` laid over them: each value `later` sets
    /// replaces this one (contact details as a whole, notification
    /// preferences one by one); what it leaves out stays.
    #[must_use]
    pub fn overlaid_by(&self, later: &Self) -> Self {
        let notifications = match (self.notifications, later.notifications) {
            (Some(old), Some(new)) => Some(NotificationOverrides {
                email: new.email.or(old.email),
                sms: new.sms.or(old.sms),
                whatsapp: new.whatsapp.or(old.whatsapp),
                low_balance_alerts: new.low_balance_alerts.or(old.low_balance_alerts),
                invoice_emails: new.invoice_emails.or(old.invoice_emails),
                weekly_summary: new.weekly_summary.or(old.weekly_summary),
            }),
            (old, new) => new.or(old),
        };
        Self {
            time_zone: later.time_zone.clone().or_else(|| self.time_zone.clone()),
            locale: later.locale.clone().or_else(|| self.locale.clone()),
            currency: later.currency.clone().or_else(|| self.currency.clone()),
            invoice_prefix: later.invoice_prefix.clone().or_else(|| self.invoice_prefix.clone()),
            contact: later.contact.clone().or_else(|| self.contact.clone()),
            notifications,
        }
    }

    /// True when the tenant sets nothing of its own.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

impl TenantSettings {
    /// These defaults with the tenant's own values laid over them.
    #[must_use]
    pub fn overridden_by(&self, own: &UpdateSettings) -> Self {
        let n = own.notifications.unwrap_or_default();
        let d = self.notifications;
        Self {
            time_zone: own.time_zone.clone().unwrap_or_else(|| self.time_zone.clone()),
            locale: own.locale.clone().unwrap_or_else(|| self.locale.clone()),
            currency: own.currency.clone().unwrap_or_else(|| self.currency.clone()),
            invoice_prefix: own.invoice_prefix.clone().unwrap_or_else(|| self.invoice_prefix.clone()),
            contact: own.contact.clone().unwrap_or_else(|| self.contact.clone()),
            notifications: NotificationPreferences {
                email: n.email.unwrap_or(d.email),
                sms: n.sms.unwrap_or(d.sms),
                whatsapp: n.whatsapp.unwrap_or(d.whatsapp),
                low_balance_alerts: n.low_balance_alerts.unwrap_or(d.low_balance_alerts),
                invoice_emails: n.invoice_emails.unwrap_or(d.invoice_emails),
                weekly_summary: n.weekly_summary.unwrap_or(d.weekly_summary),
            },
        }
    }

    /// Checks a profile's defaults with the rules a tenant's own values obey.
    pub(crate) fn check(&self) -> Result<(), String> {
        let as_update = UpdateSettings {
            time_zone: Some(self.time_zone.clone()),
            locale: Some(self.locale.clone()),
            currency: Some(self.currency.clone()),
            invoice_prefix: Some(self.invoice_prefix.clone()),
            contact: Some(self.contact.clone()),
            notifications: None,
        };
        as_update.validate().map_err(|report| report.to_string())
    }
}

fn time_zone_rules(value: &str, _: &()) -> garde::Result {
    value
        .parse::<chrono_tz::Tz>()
        .map(|_| ())
        .map_err(|_| garde::Error::new("must be an IANA time zone such as Europe/Berlin"))
}

fn currency_rules(value: &str, _: &()) -> garde::Result {
    Currency::parse(value).map(|_| ()).map_err(|_| garde::Error::new("must be an ISO 4217 currency code"))
}

/// Text a person typed: not blank, no control characters.
pub(crate) fn plain_text(value: &str, _: &()) -> garde::Result {
    if value.chars().any(char::is_control) {
        Err(garde::Error::new("must not contain control characters"))
    } else if value.trim().is_empty() {
        Err(garde::Error::new("must not be blank"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> TenantSettings {
        TenantSettings {
            time_zone: "Europe/Berlin".into(),
            locale: "de-DE".into(),
            currency: "EUR".into(),
            invoice_prefix: "PM".into(),
            contact: ContactDetails::default(),
            notifications: NotificationPreferences {
                email: true,
                sms: true,
                whatsapp: false,
                low_balance_alerts: true,
                invoice_emails: true,
                weekly_summary: false,
            },
        }
    }

    fn invalid_fields(json: serde_json::Value) -> Vec<String> {
        let command: UpdateSettings = serde_json::from_value(json).unwrap();
        match command.validated() {
            Err(TenancyError::InvalidSettings(errors)) => {
                errors.fields().into_iter().map(str::to_owned).collect()
            }
            other => panic!("expected invalid settings, got {other:?}"),
        }
    }

    #[test]
    fn own_values_replace_defaults_and_the_rest_follow_the_profile() {
        let own: UpdateSettings = serde_json::from_value(serde_json::json!({
            "timeZone": "Europe/Vienna", "contact": {"city": "Wien"}, "notifications": {"sms": false}
        }))
        .unwrap();
        let merged = defaults().overridden_by(&own);
        assert_eq!(merged.time_zone, "Europe/Vienna");
        assert_eq!(merged.locale, "de-DE", "not set: the profile's");
        assert_eq!(merged.contact.city.as_deref(), Some("Wien"));
        assert!(!merged.notifications.sms);
        assert!(merged.notifications.email, "a preference not set follows the profile");
        assert_eq!(defaults().overridden_by(&UpdateSettings::default()), defaults());
    }

    #[test]
    fn later_own_values_are_laid_over_earlier_ones() {
        let earlier: UpdateSettings = serde_json::from_value(serde_json::json!({
            "timeZone": "Europe/Vienna", "notifications": {"sms": false, "email": true}
        }))
        .unwrap();
        let later: UpdateSettings = serde_json::from_value(serde_json::json!({
            "invoicePrefix": "ACME", "notifications": {"email": false}
        }))
        .unwrap();
        let merged = earlier.overlaid_by(&later);
        assert_eq!(merged.time_zone.as_deref(), Some("Europe/Vienna"), "kept");
        assert_eq!(merged.invoice_prefix.as_deref(), Some("ACME"), "added");
        let n = merged.notifications.unwrap();
        assert_eq!((n.sms, n.email), (Some(false), Some(false)));
        assert_eq!(earlier.overlaid_by(&UpdateSettings::default()), earlier);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let unknown = serde_json::from_value::<UpdateSettings>(serde_json::json!({"timezone": "UTC"}));
        assert!(unknown.unwrap_err().to_string().contains("unknown field `timezone`"));
        let nested =
            serde_json::from_value::<UpdateSettings>(serde_json::json!({"notifications": {"fax": true}}));
        assert!(nested.is_err());
    }

    #[test]
    fn each_rule_names_its_field() {
        assert_eq!(invalid_fields(serde_json::json!({"timeZone": "Mars/Olympus"})), ["timeZone"]);
        assert_eq!(invalid_fields(serde_json::json!({"locale": "german"})), ["locale"]);
        assert_eq!(invalid_fields(serde_json::json!({"currency": "EURO"})), ["currency"]);
        assert_eq!(invalid_fields(serde_json::json!({"invoicePrefix": "inv 1"})), ["invoicePrefix"]);
        assert_eq!(
            invalid_fields(
                serde_json::json!({"contact": {"email": "nope", "country": "de", "city": "a\u{0}b"}})
            ),
            ["contact.city", "contact.country", "contact.email"]
        );
        assert_eq!(
            invalid_fields(serde_json::json!({"contact": {"website": "javascript:alert(1)"}})),
            ["contact.website"]
        );
    }

    #[test]
    fn valid_settings_pass() {
        let command: UpdateSettings = serde_json::from_value(serde_json::json!({
            "timeZone": "America/New_York", "locale": "en", "currency": "USD", "invoicePrefix": "A-1",
            "contact": {"email": "a@b.example", "phone": "+12125550100", "website": "https://b.example/x",
                        "country": "US"}
        }))
        .unwrap();
        assert!(command.validated().is_ok());
        assert!(defaults().check().is_ok());
    }
}
