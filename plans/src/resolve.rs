//! Resolving references: replacing `{"$ref": "vpc#id"}` with the value once
//! the resource exists, and applying user-data substitutions once their
//! values are known.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::resource::{Attributes, Output, Reference, ResourceKey, REF_KEY};

/// Known outputs by resource.
pub type KnownOutputs = BTreeMap<ResourceKey, BTreeMap<Output, String>>;

/// The attributes with every reference whose value is known replaced by the
/// value, and user-data substitutions applied when all are known.
pub fn resolve(attributes: &Attributes, known: &KnownOutputs) -> Attributes {
    let mut value = serde_json::to_value(attributes).unwrap_or(Value::Null);
    replace_references(&mut value, known);
    materialize_user_data(&mut value);
    let mut resolved: Attributes =
        serde_json::from_value(value).unwrap_or_else(|_| attributes.clone());
    resolved.normalize();
    resolved
}

fn replace_references(value: &mut Value, known: &KnownOutputs) {
    match value {
        Value::Object(map) => {
            if let (1, Some(Value::String(text))) = (map.len(), map.get(REF_KEY)) {
                if let Some(reference) = Reference::parse(text) {
                    if let Some(found) = known
                        .get(&reference.key)
                        .and_then(|outputs| outputs.get(&reference.output))
                    {
                        *value = Value::String(found.clone());
                    }
                }
                return;
            }
            for child in map.values_mut() {
                replace_references(child, known);
            }
        }
        Value::Array(items) => {
            for item in items {
                replace_references(item, known);
            }
        }
        _ => {}
    }
}

fn materialize_user_data(value: &mut Value) {
    let Value::Object(map) = value else { return };
    let Some(Value::Object(substitutions)) = map.get("userDataSubstitutions").cloned() else {
        return;
    };
    if !substitutions.values().all(Value::is_string) {
        return;
    }
    if let Some(Value::String(user_data)) = map.get_mut("userData") {
        for (placeholder, replacement) in &substitutions {
            if let Value::String(replacement) = replacement {
                *user_data = user_data.replace(placeholder.as_str(), replacement);
            }
        }
    }
    map.remove("userDataSubstitutions");
}

/// Whether a JSON value still holds a reference (a value known only after apply).
pub fn has_reference(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.contains_key(REF_KEY) || map.values().any(has_reference),
        Value::Array(items) => items.iter().any(has_reference),
        _ => false,
    }
}
