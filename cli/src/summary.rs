//! A one-line description of a spec change, kept with every revision so
//! that the history says what changed without opening each version.

use serde_json::Value;
use skiff_api::document::ClusterBundle;

/// How many changed fields a summary names before it says "and N more".
const MAX_NAMED: usize = 4;

/// Describes the difference between two bundles, e.g.
/// `cluster: spec.kubernetesVersion; nodes-us-east-1a: spec.maxSize; added gpu`.
pub fn describe(old: &ClusterBundle, new: &ClusterBundle) -> String {
    let mut changes = Vec::new();
    let mut paths = Vec::new();
    changed_paths(
        &to_value(&old.cluster),
        &to_value(&new.cluster),
        "",
        &mut paths,
    );
    if !paths.is_empty() {
        changes.push(format!("cluster: {}", paths.join(", ")));
    }
    for group in &new.instance_groups {
        match old.instance_group(group.name()) {
            None => changes.push(format!("added instance group {}", group.name())),
            Some(previous) => {
                let mut group_paths = Vec::new();
                changed_paths(&to_value(previous), &to_value(group), "", &mut group_paths);
                if !group_paths.is_empty() {
                    changes.push(format!("{}: {}", group.name(), group_paths.join(", ")));
                }
            }
        }
    }
    for group in &old.instance_groups {
        if new.instance_group(group.name()).is_none() {
            changes.push(format!("removed instance group {}", group.name()));
        }
    }
    if changes.is_empty() {
        return "no changes".to_string();
    }
    let total = changes.len();
    if total > MAX_NAMED {
        changes.truncate(MAX_NAMED);
        changes.push(format!("and {} more", total - MAX_NAMED));
    }
    changes.join("; ")
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn changed_paths(old: &Value, new: &Value, path: &str, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(old_map), Value::Object(new_map)) => {
            let mut keys: Vec<&String> = old_map.keys().chain(new_map.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match (old_map.get(key), new_map.get(key)) {
                    (Some(before), Some(after)) => changed_paths(before, after, &child, out),
                    _ => out.push(child),
                }
            }
        }
        _ if old != new => out.push(if path.is_empty() {
            "(document)".to_string()
        } else {
            path.to_string()
        }),
        _ => {}
    }
}
