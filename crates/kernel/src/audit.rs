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
    /// `{"field": {"before": .., "after": ..}}` for each changed field.
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
    fn no_change_records_an_empty_object() {
        let thing = Thing { name: "a", size: 2 };
        let entry = AuditEntry::between("thing.touch", "thing", "x", Some(&thing), Some(&thing));
        assert_eq!(entry.changes, json!({}));
    }
}
