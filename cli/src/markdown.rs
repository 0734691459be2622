//! The plan as Markdown for a pull-request comment (`update cluster -o
//! markdown`), the way Terraform plans are reviewed: a heading naming the
//! cluster and what the plan is bound to, a summary table, one collapsible
//! `<details>` block per resource with its field changes as a `diff` code
//! block, and the instance groups that will need a rolling update.
//!
//! Secrets are redacted twice: fields whose names say they hold one are never
//! shown (as in the terminal preview), and any text that looks like a private
//! key or a kubeadm bootstrap token is replaced, so a comment posted where
//! many people read it can never leak key material.

use skiff_plans::plan::{Action, FieldChange, Plan, ResourceChange};

use crate::preview::{is_sensitive, long_field_diff, short, user_data_lines, version_headlines};

/// What replaces a redacted value.
const REDACTED: &str = "(redacted)";

/// Renders the plan as GitHub-flavoured Markdown.
pub fn render(plan: &Plan) -> String {
    let mut text = format!(
        "### skiff plan for cluster `{}`\n\n",
        inline_code_text(&plan.cluster)
    );
    let bound_to = if plan.state.has_state() {
        format!("recorded state serial {}", plan.state.serial)
    } else {
        "nothing recorded yet".to_string()
    };
    text.push_str(&format!(
        "Region `{}` · spec revision {} · {bound_to}\n\n",
        inline_code_text(&plan.region),
        plan.spec_revision
    ));
    for warning in &plan.warnings {
        text.push_str(&format!("> **Warning:** {}\n\n", escape_inline(warning)));
    }
    if plan.is_empty() {
        text.push_str("**No changes**: the AWS resources match the spec.\n");
        return redact(&text);
    }
    let summary = plan.summary;
    text.push_str("| Action | Resources |\n|:--|--:|\n");
    for (label, count) in [
        ("create", summary.create),
        ("update in place", summary.update),
        ("replace", summary.replace),
        ("delete", summary.delete),
    ] {
        text.push_str(&format!("| {label} | {count} |\n"));
    }
    text.push_str(&format!("| **total** | **{}** |\n\n", plan.changes.len()));
    for line in version_headlines(plan) {
        text.push_str(&format!("**{}**\n\n", escape_inline(&line)));
    }
    for change in &plan.changes {
        text.push_str(&render_change(change));
    }
    if !plan.instance_groups.is_empty() {
        text.push_str("#### Instance groups\n\n| Group | Machine type | Architecture | Image |\n|:--|:--|:--|:--|\n");
        for group in &plan.instance_groups {
            text.push_str(&format!(
                "| `{}` | `{}` | {} | `{}` {} |\n",
                inline_code_text(&group.group),
                inline_code_text(&group.machine_type),
                group.architecture,
                inline_code_text(&group.image_id),
                escape_inline(&group.image_name)
            ));
        }
        text.push('\n');
    }
    if !plan.rolling_updates.is_empty() {
        text.push_str("#### Rolling updates needed after this apply\n\n");
        for need in &plan.rolling_updates {
            text.push_str(&format!(
                "- `{}`: {}\n",
                inline_code_text(&need.group),
                escape_inline(&need.reasons.join("; "))
            ));
        }
        text.push_str(&format!(
            "\nRun `skiff rolling-update cluster {}` after applying.\n",
            inline_code_text(&plan.cluster)
        ));
    }
    redact(&text)
}

/// One resource: a `<details>` block whose summary line names it and what
/// happens, holding its field changes as a diff.
fn render_change(change: &ResourceChange) -> String {
    let verb = match change.action {
        Action::Create => "create".to_string(),
        Action::Update => "update in place".to_string(),
        Action::Replace => format!("replace: {}", change.reason.clone().unwrap_or_default()),
        Action::Delete => format!("delete: {}", change.reason.clone().unwrap_or_default()),
    };
    let verb = match change.addon_release() {
        Some(release) if change.action == Action::Delete => format!("{verb} (was {release})"),
        Some(release) => format!("{verb} {release}"),
        None => verb,
    };
    let id = change
        .id
        .as_ref()
        .map(|id| format!(" ({})", escape_html(id)))
        .unwrap_or_default();
    let mut body = String::new();
    for field in &change.fields {
        body.push_str(&render_field(change.action, field));
    }
    if body.is_empty() {
        body.push_str("  (no field changes)\n");
    }
    let fence = fence_for(&body);
    format!(
        "<details><summary><code>{} {}</code>{id} {}</summary>\n\n{fence}diff\n{body}{fence}\n\n</details>\n\n",
        escape_html(change.action.symbol()),
        escape_html(change.key.as_str()),
        escape_html(&verb)
    )
}

/// The lines of one field in a `diff` block: `-` for the value before,
/// `+` for the value after; long values as a unified diff.
fn render_field(action: Action, field: &FieldChange) -> String {
    let name = &field.field;
    if is_sensitive(name) {
        return format!("  {name}: (sensitive value)\n");
    }
    let marker = if field.forces_replacement {
        "  # forces replacement"
    } else {
        ""
    };
    let after = field
        .after
        .as_ref()
        .map(|value| short(value, field.after_unknown))
        .unwrap_or_else(|| "(none)".to_string());
    if action == Action::Create {
        return format!("+ {name}: {after}\n");
    }
    if let Some(lines) = user_data_lines(field) {
        let mut text = format!("  {name}:{marker}\n");
        for line in lines {
            // Only the diffs' own lines start with -, + or @.
            if line.starts_with(['-', '+', '@', ' ']) {
                text.push_str(&line);
            } else {
                text.push_str("  ");
                text.push_str(&line);
            }
            text.push('\n');
        }
        return text;
    }
    if let Some(diff) = long_field_diff(field) {
        let mut text = format!("  {name}:{marker}\n");
        for line in diff.lines() {
            text.push_str(line);
            text.push('\n');
        }
        return text;
    }
    let before = field
        .before
        .as_ref()
        .map(|value| short(value, false))
        .unwrap_or_else(|| "(none)".to_string());
    let mut text = String::new();
    if action != Action::Create {
        text.push_str(&format!("- {name}: {before}\n"));
    }
    if action != Action::Delete || field.after.is_some() {
        text.push_str(&format!("+ {name}: {after}{marker}\n"));
    }
    text
}

/// A code fence longer than any run of backticks in `body`, so that no
/// value can close the block early.
fn fence_for(body: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for character in body.chars() {
        if character == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat((longest + 1).max(3))
}

/// Text for HTML (the `<summary>` line).
fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Text inside a single-backtick code span (which cannot hold a backtick).
fn inline_code_text(text: &str) -> String {
    text.replace('`', "'")
}

/// Text in a list item or table cell.
fn escape_inline(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(
            character,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#'
        ) {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

/// Replaces whatever looks like key material: PEM private-key blocks (or a
/// lone BEGIN line of one) and kubeadm bootstrap tokens (`[a-z0-9]{6}.[a-z0-9]{16}`).
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_key = false;
    for line in text.split_inclusive('\n') {
        if line.contains("PRIVATE KEY-----") {
            if !in_key {
                out.push_str(REDACTED);
                out.push_str(" private key\n");
            }
            let begins = line.contains("-----BEGIN");
            let ends = line.contains("-----END");
            // An unterminated block hides everything after it: safer than
            // showing part of a key.
            in_key = if in_key { !ends } else { begins && !ends };
            continue;
        }
        if in_key {
            continue;
        }
        out.push_str(&redact_tokens(line));
    }
    out
}

/// Replaces kubeadm bootstrap tokens in one line.
fn redact_tokens(line: &str) -> String {
    let bytes = line.as_bytes();
    let token_char = |byte: u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();
    let mut out = String::with_capacity(line.len());
    let mut start = 0;
    let mut index = 0;
    while index < bytes.len() {
        let is_token = bytes[index] == b'.'
            && index >= 6
            && index + 17 <= bytes.len()
            && bytes[index - 6..index].iter().all(|byte| token_char(*byte))
            && bytes[index + 1..index + 17]
                .iter()
                .all(|byte| token_char(*byte))
            && (index == 6 || !token_char(bytes[index - 7]))
            && bytes.get(index + 17).is_none_or(|byte| !token_char(*byte));
        if is_token {
            out.push_str(&line[start..index - 6]);
            out.push_str(REDACTED);
            index += 17;
            start = index;
        } else {
            index += 1;
        }
    }
    out.push_str(&line[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_private_keys_are_redacted() {
        let text = "token: abcdef.0123456789abcdef end\n-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\nafter\n";
        let redacted = redact(text);
        assert!(!redacted.contains("abcdef.0123456789abcdef"), "{redacted}");
        assert!(!redacted.contains("MIIB"), "{redacted}");
        assert!(redacted.contains("token: (redacted) end"), "{redacted}");
        assert!(redacted.contains("after"), "{redacted}");
        // Host names and versions are not tokens.
        let plain = "api.c1.example.com v1.31.2 nodes-us-east-1a.c1.example.com\n";
        assert_eq!(redact(plain), plain);
    }

    #[test]
    fn a_plan_renders_a_table_and_one_details_block_per_change_without_secrets() {
        let plan: Plan = serde_json::from_value(serde_json::json!({
            "format": 1,
            "cluster": "c1.example.com",
            "region": "us-east-1",
            "specRevision": 7,
            "stateLineage": "lineage",
            "stateSerial": 41,
            "summary": { "create": 1, "update": 1, "replace": 0, "delete": 0 },
            "changes": [
                {
                    "key": "launch-template/nodes",
                    "kind": "launch-template",
                    "action": "update",
                    "id": "lt-1",
                    "fields": [
                        { "field": "instanceType", "before": "t3.medium", "after": "m5.large" },
                        { "field": "bootstrapToken", "before": "abcdef.0123456789abcdef", "after": "ghijkl.0123456789abcdef" }
                    ]
                },
                {
                    "key": "subnet/us-east-1a",
                    "kind": "subnet",
                    "action": "create",
                    "fields": [
                        { "field": "cidrBlock", "after": "10.0.0.0/24" },
                        { "field": "note", "after": "pipe | and ``` fence" }
                    ]
                }
            ],
            "rollingUpdates": [ { "group": "nodes", "reasons": ["machineType t3.medium -> m5.large"] } ],
            "knownOutputs": {}
        }))
        .expect("a plan");
        let text = render(&plan);
        assert!(text.contains("| update in place | 1 |"), "{text}");
        assert!(text.contains("| create | 1 |"), "{text}");
        assert_eq!(text.matches("<details>").count(), 2, "{text}");
        assert!(
            text.contains("- instanceType: \"t3.medium\"\n+ instanceType: \"m5.large\""),
            "{text}"
        );
        assert!(
            text.contains("  bootstrapToken: (sensitive value)"),
            "{text}"
        );
        assert!(!text.contains("0123456789abcdef"), "{text}");
        assert!(text.contains("+ cidrBlock: \"10.0.0.0/24\""), "{text}");
        // A value with a fence inside gets a longer fence around it.
        assert!(text.contains("````diff"), "{text}");
        assert!(
            text.contains("spec revision 7 · recorded state serial 41"),
            "{text}"
        );
        assert!(
            text.contains("- `nodes`: machineType t3.medium -\\> m5.large"),
            "{text}"
        );
    }

    #[test]
    fn a_fence_is_longer_than_any_backtick_run() {
        assert_eq!(fence_for("plain"), "```");
        assert_eq!(fence_for("a ```` b"), "`````");
    }
}
