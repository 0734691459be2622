//! The plan as people read it: a summary line, then every resource with its
//! changed fields (`old -> new`); long and multi-line values (user-data,
//! policy documents) as unified diffs; and which instance groups will need
//! a rolling update, and why; what each instance group runs (machine type,
//! architecture, image).

use serde_json::Value;
use similar::TextDiff;
use skiff_plans::plan::{Action, FieldChange, Plan, ResourceChange};
use skiff_plans::user_data::FileChangeKind;

use crate::printer::{Color, Printer};

/// Fields whose values are never shown.
pub(crate) fn is_sensitive(field: &str) -> bool {
    let lower = field.to_ascii_lowercase();
    // IMDS settings (`httpTokensRequired`) are about tokens, not tokens themselves.
    if lower.starts_with("http") {
        return false;
    }
    ["secret", "password", "privatekey", "token"]
        .iter()
        .any(|word| lower.contains(word))
}

/// The one-line summary, e.g. `Plan: 3 to create, 1 to change, 0 to replace, 1 to delete.`
pub fn summary_line(plan: &Plan) -> String {
    let summary = plan.summary;
    format!(
        "Plan: {} to create, {} to change, {} to replace, {} to delete.",
        summary.create, summary.update, summary.replace, summary.delete
    )
}

/// Renders the whole preview.
pub fn render(plan: &Plan, printer: &Printer) -> String {
    let mut text = String::new();
    // What no change shows, e.g. a cluster that keeps a known gap.
    for warning in &plan.warnings {
        text.push_str(&format!(
            "{} {warning}\n\n",
            printer.paint("warning:", Color::Yellow)
        ));
    }
    if plan.is_empty() {
        text.push_str(&format!(
            "No changes: the AWS resources of cluster {} match its spec (revision {}).\n",
            plan.cluster, plan.spec_revision
        ));
        return text;
    }
    text.push_str(&format!(
        "Cluster {} in {}: changes to match spec revision {}{}.\n\n",
        plan.cluster,
        plan.region,
        plan.spec_revision,
        if plan.state.has_state() {
            format!(" (recorded state serial {})", plan.state.serial)
        } else {
            " (nothing recorded yet)".to_string()
        }
    ));
    for line in version_headlines(plan) {
        text.push_str(&printer.bold(&line));
        text.push_str("\n\n");
    }
    for change in &plan.changes {
        text.push_str(&render_change(change, printer));
    }
    text.push('\n');
    text.push_str(&printer.bold(&summary_line(plan)));
    text.push('\n');
    text.push_str(&group_lines(plan));
    if !plan.rolling_updates.is_empty() {
        text.push_str(
            "\nInstance groups whose running instances will be out of date after this apply:\n",
        );
        for need in &plan.rolling_updates {
            text.push_str(&format!("  {}: {}\n", need.group, need.reasons.join("; ")));
        }
        text.push_str(&format!(
            "Replace them with `skiff rolling-update cluster {}` after applying.\n",
            plan.cluster
        ));
    }
    text
}

/// What each instance group runs: machine type, architecture, image.
fn group_lines(plan: &Plan) -> String {
    if plan.instance_groups.is_empty() {
        return String::new();
    }
    let width = |field: fn(&skiff_plans::GroupImage) -> usize| {
        plan.instance_groups.iter().map(field).max().unwrap_or(0)
    };
    let group_width = width(|group| group.group.len());
    let type_width = width(|group| group.machine_type.len());
    let mut text = String::from("\nInstance groups (machine type, architecture, image):\n");
    for group in &plan.instance_groups {
        text.push_str(&format!(
            "  {:group_width$}  {:type_width$}  {:5}  {} ({})\n",
            group.group,
            group.machine_type,
            group.architecture.to_string(),
            group.image_id,
            group.image_name
        ));
    }
    text
}

fn render_change(change: &ResourceChange, printer: &Printer) -> String {
    let (color, verb) = match change.action {
        Action::Create => (Color::Green, "create".to_string()),
        Action::Update => (Color::Yellow, "update in place".to_string()),
        Action::Replace => (
            Color::Red,
            format!("replace: {}", change.reason.clone().unwrap_or_default()),
        ),
        Action::Delete => (
            Color::Red,
            format!("delete: {}", change.reason.clone().unwrap_or_default()),
        ),
    };
    let id = change
        .id
        .as_ref()
        .map(|id| format!(" ({id})"))
        .unwrap_or_default();
    let verb = match change.addon_release() {
        Some(release) if change.action == Action::Delete => format!("{verb} (was {release})"),
        Some(release) => format!("{verb} {release}"),
        None => verb,
    };
    let mut text = format!(
        "{} {}{id}  {}\n",
        printer.paint(&format!("{:>3}", change.action.symbol()), color),
        printer.bold(change.key.as_str()),
        verb
    );
    for field in &change.fields {
        text.push_str(&render_field(change.action, field));
    }
    text
}

/// The plan in words: one line per Kubernetes version step its rolling
/// updates make, e.g. `Kubernetes 1.34.2 -> 1.35.1: control plane first,
/// then nodes` (naming the groups when groups step differently).
pub fn version_headlines(plan: &Plan) -> Vec<String> {
    let steps = plan.version_steps();
    let several = steps.len() > 1;
    steps
        .into_iter()
        .map(|(step, groups)| {
            if several {
                format!("{} (groups {})", step.headline(), groups.join(", "))
            } else {
                step.headline()
            }
        })
        .collect()
}

/// The lines of a changed user-data: one unified diff per changed file of
/// its cloud-config, decoded (never base64); `None` when the field has no
/// decoded view (not a cloud-config), so the caller shows the text diff.
pub fn user_data_lines(field: &FieldChange) -> Option<Vec<String>> {
    let decoded = field.decoded.as_ref()?;
    let mut lines = vec![format!(
        "user-data changed in {} file(s): {}",
        decoded.files.len(),
        decoded.paths().join(", ")
    )];
    for file in &decoded.files {
        let what = match file.change {
            FileChangeKind::Added => "added",
            FileChangeKind::Removed => "removed",
            FileChangeKind::Changed => "changed",
        };
        let encoding = file
            .encoding
            .as_ref()
            .map(|encoding| format!(", {encoding} in the user-data, shown decoded"))
            .unwrap_or_default();
        lines.push(format!("{} ({what}{encoding}):", file.path));
        lines.extend(file.diff.lines().map(str::to_string));
    }
    Some(lines)
}

/// The unified diff (two lines of context) of a field whose old or new
/// value is long (several lines, or over 100 characters), both
/// pretty-printed; `None` when both are short enough to show inline, or the
/// new value is not known until apply.
pub fn long_field_diff(field: &FieldChange) -> Option<String> {
    let before = field.before.as_ref().map(text_of);
    let after = field.after.as_ref().map(text_of);
    let long = |value: &Option<String>| {
        value
            .as_ref()
            .is_some_and(|text| text.contains('\n') || text.len() > 100)
    };
    if field.after_unknown || !(long(&before) || long(&after)) {
        return None;
    }
    let before = pretty(&before.unwrap_or_default());
    let after = pretty(&after.unwrap_or_default());
    let diff = TextDiff::from_lines(&before, &after);
    Some(diff.unified_diff().context_radius(2).to_string())
}

fn render_field(action: Action, field: &FieldChange) -> String {
    let name = &field.field;
    if is_sensitive(name) {
        return format!("      {name}: (sensitive value)\n");
    }
    let marker = if field.forces_replacement {
        "  # forces replacement"
    } else {
        ""
    };
    match action {
        Action::Create => match &field.after {
            // Maps and lists (tags, rules) too long for one line: one entry
            // per line, as Terraform shows them, rather than cut off.
            Some(value @ (Value::Object(_) | Value::Array(_)))
                if !field.after_unknown && value.to_string().len() > 100 =>
            {
                let mut text = format!("      {name}:\n");
                for line in pretty(&value.to_string()).lines() {
                    text.push_str(&format!("        {line}\n"));
                }
                text
            }
            after => {
                let after = after
                    .as_ref()
                    .map(|value| short(value, field.after_unknown))
                    .unwrap_or_default();
                format!("      {name}: {after}\n")
            }
        },
        _ => {
            if let Some(lines) = user_data_lines(field) {
                let mut text = format!("      {name}:{marker}\n");
                for line in lines {
                    text.push_str(&format!("        {line}\n"));
                }
                text
            } else if let Some(diff) = long_field_diff(field) {
                let mut text = format!("      {name}:{marker}\n");
                for line in diff.lines() {
                    text.push_str(&format!("        {line}\n"));
                }
                text
            } else {
                let before = field
                    .before
                    .as_ref()
                    .map(|value| short(value, false))
                    .unwrap_or_else(|| "(none)".to_string());
                let after = match &field.after {
                    Some(value) => short(value, field.after_unknown),
                    None => "(none)".to_string(),
                };
                format!("      {name}: {before} -> {after}{marker}\n")
            }
        }
    }
}

/// A value as text: strings bare, everything else as compact JSON.
pub(crate) fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// JSON documents (policies) pretty-printed so their diff is by statement.
pub(crate) fn pretty(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ (Value::Object(_) | Value::Array(_))) => {
            serde_json::to_string_pretty(&value).unwrap_or_else(|_| text.to_string()) + "\n"
        }
        _ => {
            if text.ends_with('\n') {
                text.to_string()
            } else {
                format!("{text}\n")
            }
        }
    }
}

/// A short rendering for one line: long or multi-line text summarized.
pub(crate) fn short(value: &Value, unknown: bool) -> String {
    if unknown {
        return "(known after apply)".to_string();
    }
    match value {
        Value::String(text) if text.contains('\n') => format!("({} lines)", text.lines().count()),
        Value::String(text) if text.len() > 100 => format!("({} characters)", text.len()),
        Value::String(text) => format!("{text:?}"),
        other => {
            let compact = other.to_string();
            if compact.len() > 160 {
                format!(
                    "{}...",
                    &compact[..compact
                        .char_indices()
                        .nth(157)
                        .map(|(index, _)| index)
                        .unwrap_or(compact.len())]
                )
            } else {
                compact
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_maps_of_a_new_resource_are_shown_whole_one_entry_per_line() {
        let tags: serde_json::Map<String, Value> = (0..8)
            .map(|index| {
                (
                    format!("key-{index}"),
                    Value::String(format!("a-long-enough-value-{index}")),
                )
            })
            .collect();
        let field = FieldChange {
            field: "tags".to_string(),
            before: None,
            after: Some(Value::Object(tags)),
            after_unknown: false,
            forces_replacement: false,
            decoded: None,
        };
        let text = render_field(Action::Create, &field);
        assert!(!text.contains("..."), "{text}");
        for index in 0..8 {
            assert!(
                text.contains(&format!("\"key-{index}\": \"a-long-enough-value-{index}\"")),
                "{text}"
            );
        }
        assert_eq!(text.lines().next(), Some("      tags:"), "{text}");
    }

    /// A cloud-config whose script is gzip+base64, as older user-data had it.
    fn encoded_user_data(version: &str) -> String {
        use base64::Engine;
        use std::io::Write;
        let script = format!(
            "#!/bin/bash\n# skiff node bootstrap, Kubernetes {version}\nreadonly KUBERNETES_VERSION='{version}'\nreadonly PACKAGE_REPOSITORY='https://pkgs.k8s.io/core:/stable:/v1/deb'\nmain\n"
        );
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(script.as_bytes()).expect("gzip");
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(encoder.finish().expect("gzip"));
        format!(
            "#cloud-config\nwrite_files:\n- path: /usr/local/sbin/skiff-bootstrap\n  encoding: gzip+base64\n  content: {encoded}\n"
        )
    }

    #[test]
    fn a_user_data_change_shows_decoded_file_diffs_and_the_version_headline() {
        let (before, after) = (encoded_user_data("1.34.2"), encoded_user_data("1.35.1"));
        assert!(before.lines().any(|line| line.len() > 100));
        let field = FieldChange {
            field: "userData".to_string(),
            decoded: skiff_plans::user_data::change(&before, &after),
            before: Some(Value::String(before)),
            after: Some(Value::String(after)),
            after_unknown: false,
            forces_replacement: false,
        };
        let text = render_field(Action::Update, &field);
        assert!(
            text.contains("/usr/local/sbin/skiff-bootstrap (changed, gzip+base64 in the user-data, shown decoded):"),
            "{text}"
        );
        assert!(text.lines().all(|line| line.len() <= 120), "{text}");
        assert!(
            text.lines()
                .any(|line| line.trim() == "-readonly KUBERNETES_VERSION='1.34.2'"),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|line| line.trim() == "+readonly KUBERNETES_VERSION='1.35.1'"),
            "{text}"
        );

        let plan: Plan = serde_json::from_value(serde_json::json!({
            "format": 1, "cluster": "c1", "region": "us-east-1", "specRevision": 2,
            "stateSerial": 1,
            "summary": { "create": 0, "update": 0, "replace": 0, "delete": 0 },
            "changes": [],
            "rollingUpdates": [
                { "group": "control-plane", "reasons": ["kubernetesVersion 1.34.2 -> 1.35.1"],
                  "kubernetesVersion": { "from": "1.34.2", "to": "1.35.1" } },
                { "group": "nodes", "reasons": ["kubernetesVersion 1.34.2 -> 1.35.1"],
                  "kubernetesVersion": { "from": "1.34.2", "to": "1.35.1" } },
                { "group": "bastions", "reasons": ["image ami-a -> ami-b"] }
            ],
            "knownOutputs": {}
        }))
        .expect("a plan");
        assert_eq!(
            version_headlines(&plan),
            ["Kubernetes 1.34.2 -> 1.35.1: control plane first, then nodes"]
        );
    }

    #[test]
    fn secrets_are_hidden_but_imds_settings_are_shown() {
        assert!(is_sensitive("bootstrapToken"));
        assert!(is_sensitive("privateKey"));
        assert!(is_sensitive("clientSecret"));
        assert!(!is_sensitive("httpTokensRequired"));
        assert!(!is_sensitive("httpPutResponseHopLimit"));
        assert!(!is_sensitive("instanceType"));
    }
}
