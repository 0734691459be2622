//! Canonical JSON: object keys sorted, no insignificant whitespace. IAM
//! returns policy documents reformatted (and URL-encoded); comparing
//! canonical forms means a policy that did not change never shows as a diff.

use serde_json::Value;

/// The canonical text of a JSON value.
pub fn canonical_json(value: &Value) -> String {
    sorted(value).to_string()
}

/// Parses JSON text and returns its canonical form; text that is not JSON
/// is returned unchanged (so that a diff still shows it).
pub fn canonicalize_text(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => canonical_json(&value),
        Err(_) => text.to_string(),
    }
}

/// The canonical text of a policy document: [`canonical_json`], with every
/// list of strings (actions, resources, principals, condition values)
/// sorted, as a policy's lists are sets. A service that hands a policy back
/// with such a list in another order then shows no change.
pub fn canonical_policy(value: &Value) -> String {
    sorted_sets(&sorted(value)).to_string()
}

/// [`canonical_policy`] of JSON text; text that is not JSON is returned
/// unchanged.
pub fn canonicalize_policy_text(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => canonical_policy(&value),
        Err(_) => text.to_string(),
    }
}

fn sorted_sets(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| (key.clone(), sorted_sets(item)))
                .collect(),
        ),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let mut strings: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            strings.sort_unstable();
            Value::Array(strings.into_iter().map(Value::from).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted_sets).collect()),
        other => other.clone(),
    }
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for key in keys {
                out.insert(key.clone(), sorted(&map[key]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_and_spacing_do_not_matter() {
        let first = canonicalize_text(r#"{"b": 1, "a": {"y": [1, 2], "x": "z"}}"#);
        let second = canonicalize_text("{\n  \"a\": {\"x\": \"z\", \"y\": [1,2]},\n  \"b\": 1\n}");
        assert_eq!(first, second);
        assert_eq!(first, r#"{"a":{"x":"z","y":[1,2]},"b":1}"#);
    }

    #[test]
    fn a_policys_string_lists_are_sets() {
        let first = canonicalize_policy_text(
            r#"{"Statement":[{"Condition":{"ArnEquals":{"aws:SourceArn":["b","a"]}},"Action":"x"}]}"#,
        );
        let second = canonicalize_policy_text(
            r#"{"Statement":[{"Action":"x","Condition":{"ArnEquals":{"aws:SourceArn":["a","b"]}}}]}"#,
        );
        assert_eq!(first, second);
        // Statements keep their order; a list that is not all strings too.
        assert_ne!(
            canonicalize_policy_text(r#"{"Statement":[{"Sid":"1"},{"Sid":"2"}]}"#),
            canonicalize_policy_text(r#"{"Statement":[{"Sid":"2"},{"Sid":"1"}]}"#)
        );
    }
}
