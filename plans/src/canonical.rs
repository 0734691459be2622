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
}
