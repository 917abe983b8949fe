//! A tenant's branding: how its portal looks (name shown, colours, logo)
//! and the domain it may be served on.

use chrono::{DateTime, Utc};
use garde::Validate;
use portico_kernel::ValidationErrors;

use crate::TenancyError;
use crate::logo::LogoFormat;
use crate::settings::plain_text;

/// How a tenant's portal looks.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "displayName": "Acme Homes",
    "primaryColor": "#1a73e8",
    "accentColor": "#ff9900",
    "customDomain": "portal.acme-homes.example",
    "logo": {"contentType": "image/png", "size": 18342, "width": 256, "height": 64,
             "updatedAt": "2026-12-06T09:00:00Z"},
    "updatedAt": "2026-12-06T09:00:00Z"
})))]
#[serde(rename_all = "camelCase")]
pub struct Branding {
    /// Name shown in the portal (the tenant's name when absent).
    pub display_name: Option<String>,
    /// Main colour, `#rrggbb` in lower case.
    pub primary_color: Option<String>,
    /// Second colour, `#rrggbb` in lower case.
    pub accent_color: Option<String>,
    /// Host name the portal may be served on.
    pub custom_domain: Option<String>,
    /// The logo, if one was uploaded (`GET .../branding/logo` serves it).
    pub logo: Option<LogoInfo>,
    /// When the branding last changed; absent if never set.
    pub updated_at: Option<DateTime<Utc>>,
}

/// What is known of an uploaded logo.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LogoInfo {
    /// `image/png`, `image/jpeg` or `image/svg+xml`.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Width in pixels, when known.
    pub width: Option<u32>,
    /// Height in pixels, when known.
    pub height: Option<u32>,
    /// When it was uploaded.
    pub updated_at: DateTime<Utc>,
}

impl LogoInfo {
    /// The file name of a logo of `format` in its tenant's file space; a new
    /// upload gets a new name, so a cached old logo is never served for the new one.
    #[must_use]
    pub fn path(upload: uuid::Uuid, format: LogoFormat) -> String {
        format!("branding/logo-{}.{}", upload.simple(), format.extension())
    }
}

/// Replaces a tenant's branding (the logo has its own upload).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "displayName": "Acme Homes",
    "primaryColor": "#1A73E8",
    "accentColor": "#ff9900",
    "customDomain": "portal.acme-homes.example"
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateBranding {
    /// Name shown in the portal, 1 to 100 characters.
    #[serde(default)]
    #[garde(inner(length(chars, min = 1, max = 100), custom(plain_text)))]
    pub display_name: Option<String>,
    /// Main colour as `#rrggbb` (hexadecimal, either case).
    #[serde(default)]
    #[garde(pattern(r"^#[0-9A-Fa-f]{6}$"))]
    pub primary_color: Option<String>,
    /// Second colour as `#rrggbb`.
    #[serde(default)]
    #[garde(pattern(r"^#[0-9A-Fa-f]{6}$"))]
    pub accent_color: Option<String>,
    /// A host name of two or more labels (`portal.acme.example`), at most 253 characters.
    #[serde(default)]
    #[garde(inner(length(max = 253), custom(host_name)))]
    pub custom_domain: Option<String>,
}

impl UpdateBranding {
    /// The command if every rule holds (colours and domain in lower case), else each failing field.
    pub fn validated(self) -> Result<Self, TenancyError> {
        self.validate().map_err(|report| TenancyError::InvalidBranding(ValidationErrors::from(report)))?;
        let lower = |value: Option<String>| value.map(|v| v.to_ascii_lowercase());
        Ok(Self {
            display_name: self.display_name.map(|name| name.trim().to_owned()),
            primary_color: lower(self.primary_color),
            accent_color: lower(self.accent_color),
            custom_domain: lower(self.custom_domain),
        })
    }
}

impl Branding {
    /// The branding with its editable fields replaced by a validated `command`; the logo stays.
    #[must_use]
    pub fn update(&self, command: UpdateBranding, now: DateTime<Utc>) -> Self {
        Self {
            display_name: command.display_name,
            primary_color: command.primary_color,
            accent_color: command.accent_color,
            custom_domain: command.custom_domain,
            logo: self.logo.clone(),
            updated_at: Some(now),
        }
    }
}

fn host_name(value: &str, _: &()) -> garde::Result {
    let labels: Vec<&str> = value.split('.').collect();
    let label_ok = |label: &&str| {
        (1..=63).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let top_ok = labels.last().is_some_and(|top| top.bytes().all(|b| b.is_ascii_alphabetic()));
    if labels.len() >= 2 && labels.iter().all(label_ok) && top_ok {
        Ok(())
    } else {
        Err(garde::Error::new("must be a host name such as portal.example.com"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(json: serde_json::Value) -> Vec<String> {
        let command: UpdateBranding = serde_json::from_value(json).unwrap();
        match command.validated() {
            Err(TenancyError::InvalidBranding(errors)) => {
                errors.fields().into_iter().map(str::to_owned).collect()
            }
            other => panic!("expected invalid branding, got {other:?}"),
        }
    }

    #[test]
    fn colours_must_be_six_digit_hex() {
        for bad in ["red", "#12345", "#1234567", "#12345g", "1a73e8", "#fff", "#1a73e8;"] {
            assert_eq!(fields(serde_json::json!({"primaryColor": bad})), ["primaryColor"], "{bad}");
        }
        assert_eq!(fields(serde_json::json!({"accentColor": "rgb(0,0,0)"})), ["accentColor"]);
    }

    #[test]
    fn valid_branding_is_normalised_to_lower_case() {
        let command: UpdateBranding = serde_json::from_value(serde_json::json!({
            "displayName": "  Acme Homes ", "primaryColor": "#1A73E8", "customDomain": "Portal.Acme.Example"
        }))
        .unwrap();
        let command = command.validated().unwrap();
        assert_eq!(command.display_name.as_deref(), Some("Acme Homes"));
        assert_eq!(command.primary_color.as_deref(), Some("#1a73e8"));
        assert_eq!(command.custom_domain.as_deref(), Some("portal.acme.example"));
    }

    #[test]
    fn a_custom_domain_is_a_host_name() {
        for bad in [
            "localhost",
            "http://acme.example",
            "acme..example",
            "-acme.example",
            "acme.example/x",
            "1.2.3.4",
        ] {
            assert_eq!(fields(serde_json::json!({"customDomain": bad})), ["customDomain"], "{bad}");
        }
    }

    #[test]
    fn unknown_fields_and_blank_names_are_refused() {
        assert!(serde_json::from_value::<UpdateBranding>(serde_json::json!({"logo": "x"})).is_err());
        assert_eq!(fields(serde_json::json!({"displayName": "   "})), ["displayName"]);
    }

    #[test]
    fn an_update_keeps_the_logo() {
        let logo = LogoInfo {
            content_type: "image/png".into(),
            size: 10,
            width: Some(1),
            height: Some(1),
            updated_at: DateTime::UNIX_EPOCH,
        };
        let before = Branding { logo: Some(logo.clone()), ..Branding::default() };
        let after = before.update(UpdateBranding::default(), DateTime::UNIX_EPOCH);
        assert_eq!(after.logo, Some(logo));
        assert_eq!(after.updated_at, Some(DateTime::UNIX_EPOCH));
    }
}
