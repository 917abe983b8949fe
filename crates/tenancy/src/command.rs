//! The commands that create and change a tenant. They are the request bodies
//! of the API: unknown fields are refused, and each rule failure names its field.

use garde::Validate;
use portico_kernel::ValidationErrors;

use crate::{TenancyError, TenantStatus};

/// Largest metadata object accepted, serialised.
const METADATA_MAX_BYTES: usize = 16 * 1024;

/// Creates a tenant.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "name": "Acme Property Management",
    "slug": "acme-property",
    "contactEmail": "hello@acme-property.example",
    "phone": "+4930123456",
    "industry": "property_management"
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateTenant {
    /// Display name, 1 to 200 characters.
    #[garde(length(chars, max = 200), custom(not_blank))]
    pub name: String,
    /// Unique short name: 3 to 63 of `a-z 0-9 -`; see [`crate::validate_slug`].
    #[garde(custom(slug_rules))]
    pub slug: String,
    /// Contact email address.
    #[garde(email, length(max = 254))]
    pub contact_email: String,
    /// Contact phone in E.164 form (`+4930123456`).
    #[garde(pattern(r"^\+[1-9][0-9]{6,14}$"))]
    #[serde(default)]
    pub phone: Option<String>,
    /// Industry profile key (`property_management`), one of `GET /api/v1/industries`.
    #[garde(inner(custom(industry_rules)))]
    #[serde(default)]
    pub industry: Option<String>,
    /// `TRIAL` (the default) or `ACTIVE`; a tenant is never created suspended or inactive.
    #[garde(custom(initial_status))]
    #[serde(default)]
    pub status: Option<TenantStatus>,
    /// A JSON object of at most 16 KiB.
    #[garde(custom(metadata_rules))]
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<serde_json::Value>,
}

impl CreateTenant {
    /// The command if every rule holds, else each failing field.
    pub fn validated(self) -> Result<Self, TenancyError> {
        self.validate().map_err(|report| TenancyError::Invalid(ValidationErrors::from(report)))?;
        Ok(self)
    }
}

/// Replaces a tenant's editable fields (the slug and status have their own operations).
#[derive(Debug, Clone, PartialEq, serde::Deserialize, garde::Validate)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "name": "Acme Homes",
    "contactEmail": "hello@acme-homes.example",
    "metadata": {"crmId": 7}
})))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateTenant {
    /// Display name, 1 to 200 characters.
    #[garde(length(chars, max = 200), custom(not_blank))]
    pub name: String,
    /// Contact email address.
    #[garde(email, length(max = 254))]
    pub contact_email: String,
    /// Contact phone in E.164 form; absent clears it.
    #[garde(pattern(r"^\+[1-9][0-9]{6,14}$"))]
    #[serde(default)]
    pub phone: Option<String>,
    /// Industry profile key, one of `GET /api/v1/industries`; absent clears it (the generic profile
    /// applies). Only the platform's staff change it: others send the tenant's own.
    #[garde(inner(custom(industry_rules)))]
    #[serde(default)]
    pub industry: Option<String>,
    /// A JSON object of at most 16 KiB; absent empties it.
    #[garde(custom(metadata_rules))]
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<serde_json::Value>,
}

impl UpdateTenant {
    /// The command if every rule holds, else each failing field.
    pub fn validated(self) -> Result<Self, TenancyError> {
        self.validate().map_err(|report| TenancyError::Invalid(ValidationErrors::from(report)))?;
        Ok(self)
    }
}

fn not_blank(value: &str, _: &()) -> garde::Result {
    if value.trim().is_empty() { Err(garde::Error::new("must not be blank")) } else { Ok(()) }
}

fn industry_rules(value: &str, _: &()) -> garde::Result {
    match crate::Catalogue::builtin() {
        Ok(catalogue) if catalogue.industry(value).is_some() => Ok(()),
        Ok(_) => Err(garde::Error::new("must be an industry of GET /api/v1/industries")),
        Err(error) => Err(garde::Error::new(error.to_string())),
    }
}

pub(crate) fn slug_rules(value: &str, _: &()) -> garde::Result {
    crate::validate_slug(value).map_err(garde::Error::new)
}

fn initial_status(value: &Option<TenantStatus>, _: &()) -> garde::Result {
    match value {
        None | Some(TenantStatus::Trial | TenantStatus::Active) => Ok(()),
        Some(_) => Err(garde::Error::new("a new tenant is TRIAL or ACTIVE")),
    }
}

fn metadata_rules(value: &Option<serde_json::Value>, _: &()) -> garde::Result {
    match value {
        None => Ok(()),
        Some(serde_json::Value::Object(map)) => {
            let size = serde_json::to_vec(map).map(|bytes| bytes.len()).unwrap_or(usize::MAX);
            if size > METADATA_MAX_BYTES { Err(garde::Error::new("must be at most 16 KiB")) } else { Ok(()) }
        }
        Some(_) => Err(garde::Error::new("must be a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn valid() -> serde_json::Value {
        json!({"name": "Acme", "slug": "acme", "contactEmail": "ops@acme.example"})
    }

    fn failing_fields(body: serde_json::Value) -> Vec<String> {
        let command: CreateTenant = serde_json::from_value(body).unwrap();
        match command.validated() {
            Ok(_) => vec![],
            Err(TenancyError::Invalid(errors)) => {
                // A field breaking two rules is reported once per rule; count fields.
                let mut fields: Vec<String> = errors.0.into_iter().map(|e| e.field).collect();
                fields.dedup();
                fields
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    fn with(field: &str, value: serde_json::Value) -> serde_json::Value {
        let mut body = valid();
        body[field] = value;
        body
    }

    #[test]
    fn the_minimal_command_is_valid() {
        assert!(failing_fields(valid()).is_empty());
    }

    #[test]
    fn every_bad_field_is_named_in_camel_case() {
        let cases = [
            ("name", json!("")),
            ("name", json!("   ")),
            ("name", json!("x".repeat(201))),
            ("slug", json!("no")),
            ("slug", json!("UPPER")),
            ("slug", json!("admin")),
            ("contactEmail", json!("not-an-email")),
            ("contactEmail", json!(format!("{}@example.com", "a".repeat(250)))),
            ("phone", json!("0301234")),
            ("phone", json!("+49 30 1234")),
            ("industry", json!("Property Management")),
            ("industry", json!("")),
            ("status", json!("SUSPENDED")),
            ("metadata", json!([1, 2])),
            ("metadata", json!({"blob": "x".repeat(17 * 1024)})),
        ];
        for (field, value) in cases {
            assert_eq!(
                failing_fields(with(field, value.clone())),
                vec![field.to_owned()],
                "{field} = {value}"
            );
        }
    }

    #[test]
    fn several_bad_fields_are_all_reported() {
        let body = json!({"name": "", "slug": "x", "contactEmail": "nope"});
        let mut fields = failing_fields(body);
        fields.sort();
        assert_eq!(fields, vec!["contactEmail", "name", "slug"]);
    }

    #[test]
    fn unknown_fields_and_wrong_types_do_not_parse() {
        assert!(serde_json::from_value::<CreateTenant>(with("owner", json!("me"))).is_err());
        assert!(serde_json::from_value::<CreateTenant>(with("name", json!(42))).is_err());
        assert!(serde_json::from_value::<CreateTenant>(json!({"name": "Acme"})).is_err());
    }

    #[test]
    fn optional_fields_accept_good_values() {
        let body = json!({
            "name": "Acme", "slug": "acme-2", "contactEmail": "ops@acme.example",
            "phone": "+4930123456", "industry": "property_management", "status": "ACTIVE",
            "metadata": {"source": "import"}
        });
        assert!(failing_fields(body).is_empty());
    }

    #[test]
    fn update_rules_match_create() {
        let bad: UpdateTenant =
            serde_json::from_value(json!({"name": " ", "contactEmail": "x", "metadata": "text"})).unwrap();
        let Err(TenancyError::Invalid(errors)) = bad.validated() else { panic!("expected Invalid") };
        let mut fields = errors.fields();
        fields.sort_unstable();
        assert_eq!(fields, vec!["contactEmail", "metadata", "name"]);
        let slug_change = json!({"name": "A", "contactEmail": "a@b.example", "slug": "new"});
        assert!(serde_json::from_value::<UpdateTenant>(slug_change).is_err(), "the slug is immutable");
    }
}
