//! What an audit row says about a change: the action, the resource and the changed fields.

use serde_json::{Map, Value};

/// One entry of the audit trail, as a domain describes it; the store adds
/// the tenant, the actor, the request id and the time.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// What happened, `domain.verb` (`tenant.suspend`).
    pub action: &'static str,
    /// The kind of thing changed (`tenant`).
    pub resource_type: &'static str,
    /// Its id.
    pub resource_id: String,
    /// `{"field": {"before": .., "after": ..}}` for each changed field, as
    /// the domain describes it; what is stored is [`AuditEntry::masked`].
    pub changes: Value,
}

impl AuditEntry {
    /// An entry whose changes are the fields that differ between `before`
    /// and `after` (each serialised to a JSON object); `None` on either side
    /// records a creation or a removal.
    pub fn between<T: serde::Serialize>(
        action: &'static str,
        resource_type: &'static str,
        resource_id: impl ToString,
        before: Option<&T>,
        after: Option<&T>,
    ) -> Self {
        let to_object = |value: Option<&T>| match value.map(serde_json::to_value) {
            Some(Ok(Value::Object(map))) => map,
            _ => Map::new(),
        };
        Self {
            action,
            resource_type,
            resource_id: resource_id.to_string(),
            changes: changed_fields(&to_object(before), &to_object(after)),
        }
    }

    /// The changes as the trail keeps them: personal data and secrets
    /// masked by field name (the store records only this).
    #[must_use]
    pub fn masked(&self) -> Value {
        mask(self.changes.clone())
    }
}

/// Masks personal data and secrets in recorded changes, by field name: the
/// trail shows that an email or phone number changed, and its domain or
/// country code, not the whole value; secrets leave nothing behind. Nested
/// values (free-form metadata) are masked key by key the same way, and their
/// text has every email, phone number and token in it masked.
fn mask(changes: Value) -> Value {
    let Value::Object(fields) = changes else { return changes };
    let masked = fields
        .into_iter()
        .map(|(name, change)| {
            let class = field_class(&name);
            let change = match change {
                Value::Object(sides) => Value::Object(
                    sides.into_iter().map(|(side, value)| (side, mask_value(class, value, true))).collect(),
                ),
                other => other,
            };
            (name, change)
        })
        .collect();
    Value::Object(masked)
}

/// One recorded value of a field of `class`; `top` for a field of the
/// resource itself (its plain text is kept), else a value nested in one.
fn mask_value(class: FieldClass, value: Value, top: bool) -> Value {
    let text = |value: Value| match value {
        Value::String(text) => text,
        other => other.to_string(),
    };
    match (class, value) {
        (_, Value::Null) => Value::Null,
        (FieldClass::Secret, _) => Value::String(crate::redact::secret("").to_owned()),
        (FieldClass::Email, value) => Value::String(crate::redact::email(&text(value))),
        (FieldClass::Phone, value) => Value::String(crate::redact::phone(&text(value))),
        (FieldClass::Plain, Value::Object(fields)) => Value::Object(
            fields
                .into_iter()
                .map(|(name, value)| {
                    let class = field_class(&name);
                    (name, mask_value(class, value, false))
                })
                .collect(),
        ),
        (FieldClass::Plain, Value::Array(items)) => {
            Value::Array(items.into_iter().map(|item| mask_value(FieldClass::Plain, item, false)).collect())
        }
        (FieldClass::Plain, Value::String(text)) if !top => Value::String(crate::redact::text(&text)),
        (FieldClass::Plain, other) => other,
    }
}

/// How a field's values are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldClass {
    Plain,
    Email,
    Phone,
    Secret,
}

/// The class of a field by its (camelCase or snake_case) name.
fn field_class(name: &str) -> FieldClass {
    let lower = name.to_ascii_lowercase();
    let secret_words = ["password", "secret", "token", "apikey", "api_key", "privatekey", "private_key"];
    if secret_words.iter().any(|word| lower.contains(word)) || lower == "key" || lower.ends_with("hash") {
        FieldClass::Secret
    } else if lower.contains("email") {
        FieldClass::Email
    } else if lower.contains("phone") || lower.contains("mobile") {
        FieldClass::Phone
    } else {
        FieldClass::Plain
    }
}

/// The fields whose values differ, each as `{"before": .., "after": ..}`.
fn changed_fields(before: &Map<String, Value>, after: &Map<String, Value>) -> Value {
    let mut changes = Map::new();
    let keys = before.keys().chain(after.keys().filter(|k| !before.contains_key(*k)));
    for key in keys {
        let old = before.get(key).unwrap_or(&Value::Null);
        let new = after.get(key).unwrap_or(&Value::Null);
        if old != new {
            changes.insert(key.clone(), serde_json::json!({ "before": old, "after": new }));
        }
    }
    Value::Object(changes)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(serde::Serialize)]
    struct Thing {
        name: &'static str,
        size: u32,
    }

    #[test]
    fn only_changed_fields_are_recorded() {
        let before = Thing { name: "a", size: 1 };
        let after = Thing { name: "b", size: 1 };
        let entry = AuditEntry::between("thing.update", "thing", 7, Some(&before), Some(&after));
        assert_eq!(entry.changes, json!({"name": {"before": "a", "after": "b"}}));
        assert_eq!(entry.resource_id, "7");
    }

    #[test]
    fn a_creation_records_every_field_as_new() {
        let entry =
            AuditEntry::between("thing.create", "thing", "x", None, Some(&Thing { name: "a", size: 2 }));
        assert_eq!(
            entry.changes,
            json!({"name": {"before": null, "after": "a"}, "size": {"before": null, "after": 2}})
        );
    }

    #[test]
    fn personal_data_and_secrets_are_masked() {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Person {
            contact_email: &'static str,
            phone: Option<&'static str>,
            password_hash: &'static str,
            name: &'static str,
        }
        let before = Person {
            contact_email: "alice@old.example",
            phone: None,
            password_hash: "$argon2id$v=19$abc",
            name: "Alice",
        };
        let after = Person {
            contact_email: "alice@new.example",
            phone: Some("+4930123456"),
            password_hash: "$argon2id$v=19$def",
            name: "Alice B",
        };
        let entry = AuditEntry::between("person.update", "person", "p", Some(&before), Some(&after));
        assert_eq!(
            entry.masked(),
            json!({
                "contactEmail": {"before": "a***@old.example", "after": "a***@new.example"},
                "phone": {"before": null, "after": "+49******56"},
                "passwordHash": {"before": "[redacted]", "after": "[redacted]"},
                "name": {"before": "Alice", "after": "Alice B"},
            })
        );
    }

    #[test]
    fn nested_metadata_is_masked_key_by_key_and_in_its_text() {
        #[derive(serde::Serialize)]
        struct WithMetadata {
            metadata: serde_json::Value,
        }
        let before = WithMetadata { metadata: json!({}) };
        let after = WithMetadata {
            metadata: json!({
                "crm": {"apiKey": "sk_live_123", "owner": "bob@acme.example"},
                "notes": ["call +4930123456 about it"],
                "plan": "gold",
                "seats": 12,
            }),
        };
        let entry = AuditEntry::between("thing.update", "thing", "x", Some(&before), Some(&after));
        assert_eq!(
            entry.masked()["metadata"]["after"],
            json!({
                "crm": {"apiKey": "[redacted]", "owner": "b***@acme.example"},
                "notes": ["call +49******56 about it"],
                "plan": "gold",
                "seats": 12,
            })
        );
    }

    #[test]
    fn no_change_records_an_empty_object() {
        let thing = Thing { name: "a", size: 2 };
        let entry = AuditEntry::between("thing.touch", "thing", "x", Some(&thing), Some(&thing));
        assert_eq!(entry.changes, json!({}));
    }
}
