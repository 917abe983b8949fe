//! Field-level validation failures, named as the caller wrote the fields.

use std::fmt;

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The field's path as it appears in the JSON body (`contactEmail`, `items[0].name`).
    pub field: String,
    /// What is wrong with it, in plain words.
    pub message: String,
}

/// Every field that failed validation in one request.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
#[serde(transparent)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// A single failing field.
    #[must_use]
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldError { field: field.into(), message: message.into() }])
    }

    /// The names of the failing fields, in order.
    #[must_use]
    pub fn fields(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.field.as_str()).collect()
    }

    /// True when nothing failed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for error in &self.0 {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{}: {}", error.field, error.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl From<garde::Report> for ValidationErrors {
    /// Converts garde's report; Rust field names become the camelCase names of the JSON body.
    fn from(report: garde::Report) -> Self {
        Self(
            report
                .iter()
                .map(|(path, error)| FieldError {
                    field: camel_case_path(&path.to_string()),
                    message: error.message().to_owned(),
                })
                .collect(),
        )
    }
}

/// `contact_email` -> `contactEmail`, `line_items[0].unit_price` -> `lineItems[0].unitPrice`.
fn camel_case_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut upper_next = false;
    for c in path.chars() {
        match c {
            '_' => upper_next = true,
            '.' | '[' | ']' => {
                upper_next = false;
                out.push(c);
            }
            _ if upper_next => {
                upper_next = false;
                out.extend(c.to_uppercase());
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_camel_case() {
        assert_eq!(camel_case_path("contact_email"), "contactEmail");
        assert_eq!(camel_case_path("name"), "name");
        assert_eq!(camel_case_path("line_items[0].unit_price"), "lineItems[0].unitPrice");
        assert_eq!(camel_case_path("metadata.some_key"), "metadata.someKey");
    }

    #[test]
    fn garde_reports_name_each_failing_field() {
        #[derive(garde::Validate)]
        struct Command {
            #[garde(length(min = 1))]
            display_name: String,
            #[garde(range(max = 10))]
            seat_count: u32,
        }
        let report =
            garde::Validate::validate(&Command { display_name: String::new(), seat_count: 11 }).unwrap_err();
        let errors = ValidationErrors::from(report);
        let mut fields = errors.fields();
        fields.sort_unstable();
        assert_eq!(fields, vec!["displayName", "seatCount"]);
        assert!(errors.0.iter().all(|e| !e.message.is_empty()));
    }

    #[test]
    fn display_lists_every_field() {
        let mut errors = ValidationErrors::field("name", "too short");
        errors.0.push(FieldError { field: "slug".into(), message: "taken".into() });
        assert_eq!(errors.to_string(), "name: too short; slug: taken");
        assert!(!errors.is_empty());
        assert!(ValidationErrors::default().is_empty());
    }
}
