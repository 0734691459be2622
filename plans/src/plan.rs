//! The plan: what `update cluster` will change, as data. It prints as a
//! preview, serializes as the documented JSON plan (`-o json`, `--out`), and
//! is what the executor runs: applying a saved plan runs exactly the changes
//! it lists.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use skiff_api::KubernetesVersion;

use crate::error::PlanError;
use crate::resolve::KnownOutputs;
use crate::resource::{Attributes, ResourceKey, ResourceKind};
use crate::user_data::UserDataChange;

/// The version of the plan's JSON format. Bumped on incompatible changes.
pub const PLAN_FORMAT: u32 = 1;

/// What happens to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Created.
    Create,
    /// Changed in place.
    Update,
    /// Deleted and created again (a field that cannot change in place changed).
    Replace,
    /// Deleted.
    Delete,
}

impl Action {
    /// The symbol in the preview.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }
}

/// One changed field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    /// The field, e.g. `instanceType`.
    pub field: String,
    /// The current value (none for a create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The new value (none for a delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// Whether the new value is known only once other resources exist.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_unknown: bool,
    /// Whether a change of this field forces a replacement.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forces_replacement: bool,
    /// For a changed user-data: the files of the cloud-config that differ,
    /// decoded (never base64), each with a unified diff of its text,
    /// beside the raw `before` and `after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoded: Option<UserDataChange>,
}

/// The change of one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceChange {
    /// Its key.
    pub key: ResourceKey,
    /// Its kind.
    pub kind: ResourceKind,
    /// What happens.
    pub action: Action,
    /// The existing resource's ID (update, replace, delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Why (replace: which field cannot change in place; delete: why it goes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The changed fields.
    pub fields: Vec<FieldChange>,
    /// The desired attributes (create, update, replace); references to
    /// resources created by this plan are resolved when it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<Attributes>,
    /// The attributes as they are now (update, replace, delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Attributes>,
    /// Other changes of this plan that must happen first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<ResourceKey>,
}

impl ResourceChange {
    /// For an addon, its release in words: `v0.8.0` (create, delete),
    /// `v0.8.0 -> v0.9.0`, or `v0.8.0, manifest changed` (update). Applied by
    /// the control-plane nodes: no node rolls for it.
    pub fn addon_release(&self) -> Option<String> {
        let version = |attributes: &Option<Attributes>| match attributes {
            Some(Attributes::Addon(addon)) => Some(addon.version.clone()),
            _ => None,
        };
        let (before, after) = (version(&self.current), version(&self.desired));
        match (before, after) {
            (Some(before), Some(after)) if before == after => {
                Some(format!("{after}, manifest changed"))
            }
            (Some(before), Some(after)) => Some(format!("{before} -> {after}")),
            (None, Some(version)) | (Some(version), None) => Some(version),
            (None, None) => None,
        }
    }
}

/// An instance group whose running instances are out of date after the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollingUpdateNeed {
    /// The instance group.
    pub group: String,
    /// What changed in its launch template, in words, each naming the
    /// field: `kubernetesVersion 1.34.2 -> 1.35.1`, `image ami-a -> ami-b`,
    /// `machineType m5.large -> m5.xlarge`, or `user-data changed: <files>`
    /// for a change no field explains.
    pub reasons: Vec<String>,
    /// The Kubernetes version its instances run and the one they will run,
    /// when its user-data installs another version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<VersionStep>,
}

/// A change of the Kubernetes version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionStep {
    /// The version now.
    pub from: KubernetesVersion,
    /// The version after the rolling update.
    pub to: KubernetesVersion,
}

impl VersionStep {
    /// The roll reason naming it: `kubernetesVersion 1.34.2 -> 1.35.1`.
    pub fn reason(&self) -> String {
        format!("kubernetesVersion {} -> {}", self.from, self.to)
    }

    /// The step a roll reason names (the inverse of [`VersionStep::reason`]),
    /// as `rolling-update` reads the recorded reasons.
    pub fn from_reason(reason: &str) -> Option<VersionStep> {
        let (from, to) = reason
            .strip_prefix("kubernetesVersion ")?
            .split_once(" -> ")?;
        Some(VersionStep {
            from: from.trim().parse().ok()?,
            to: to.trim().parse().ok()?,
        })
    }

    /// Whether it raises the minor (or major) version.
    pub fn raises_minor(&self) -> bool {
        (self.to.major, self.to.minor) > (self.from.major, self.from.minor)
    }

    /// The plan's headline for it: `Kubernetes 1.34.2 -> 1.35.1: control
    /// plane first, then nodes`.
    pub fn headline(&self) -> String {
        if self.to < self.from {
            format!(
                "Kubernetes {} -> {}: a downgrade, which kubeadm does not support",
                self.from, self.to
            )
        } else if self.to.minor > self.from.minor + 1 {
            format!(
                "Kubernetes {} -> {}: skips a minor release, which kubeadm does not support",
                self.from, self.to
            )
        } else {
            format!(
                "Kubernetes {} -> {}: control plane first, then nodes",
                self.from, self.to
            )
        }
    }
}

/// Counts of changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Resources created.
    pub create: usize,
    /// Resources changed in place.
    pub update: usize,
    /// Resources replaced.
    pub replace: usize,
    /// Resources deleted.
    pub delete: usize,
}

impl Summary {
    /// Whether the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.create + self.update + self.replace + self.delete == 0
    }
}

/// The recorded state a plan is made against, as Terraform binds a plan to
/// its state's lineage and serial: applying a saved plan is refused when the
/// store's state no longer has this lineage and serial (someone applied
/// since). In the plan's JSON its fields sit flat beside the others
/// (`stateLineage`, `stateSerial`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateBinding {
    /// The recorded state's lineage; none when the cluster has no recorded
    /// state yet.
    #[serde(
        rename = "stateLineage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub lineage: Option<String>,
    /// The recorded state's serial; 0 without a recorded state.
    #[serde(rename = "stateSerial")]
    pub serial: u64,
}

impl StateBinding {
    /// Bound to no recorded state: the cluster has none yet.
    pub fn none() -> StateBinding {
        StateBinding::default()
    }

    /// Bound to the recorded state of this lineage at this serial.
    pub fn recorded(lineage: impl Into<String>, serial: u64) -> StateBinding {
        StateBinding {
            lineage: Some(lineage.into()),
            serial,
        }
    }

    /// Whether there is a recorded state.
    pub fn has_state(&self) -> bool {
        self.lineage.is_some()
    }
}

/// What an instance group runs, as planned: its machine type's
/// architecture and the image resolved for it (shown in the preview).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupImage {
    /// The group.
    pub group: String,
    /// Its `spec.machineType`.
    pub machine_type: String,
    /// The architecture of the machine type.
    pub architecture: skiff_api::Architecture,
    /// The AMI ID.
    pub image_id: String,
    /// The AMI's name.
    pub image_name: String,
}

/// A plan for one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// [`PLAN_FORMAT`].
    pub format: u32,
    /// The cluster.
    pub cluster: String,
    /// The AWS region.
    pub region: String,
    /// The spec revision planned from.
    pub spec_revision: u64,
    /// The recorded state when planned.
    #[serde(flatten)]
    pub state: StateBinding,
    /// Counts.
    pub summary: Summary,
    /// The changes, in an order where dependencies come first (deletes last).
    pub changes: Vec<ResourceChange>,
    /// Groups that need a rolling update once the plan is applied.
    pub rolling_updates: Vec<RollingUpdateNeed>,
    /// Outputs of resources that exist and stay, for resolving references.
    pub known_outputs: KnownOutputs,
    /// Each instance group's architecture and image (none in a plan that
    /// deletes the cluster).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_groups: Vec<GroupImage>,
    /// What the operator should know about the cluster as planned, which
    /// no change shows (the desired model's warnings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Plan {
    /// The bootstrap scripts of the launch templates this plan creates or
    /// changes, each once: the state store must hold them before the
    /// executor's auto scaling groups launch anything.
    pub fn bootstrap_scripts(&self) -> Result<Vec<skiff_templates::StoredScript>, PlanError> {
        bootstrap_scripts(
            self.changes
                .iter()
                .filter_map(|change| match change.desired.as_ref() {
                    Some(Attributes::LaunchTemplate(template)) => {
                        Some((change.key.name(), template.as_ref()))
                    }
                    _ => None,
                }),
        )
    }

    /// Whether the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The changes by key.
    pub fn change(&self, key: &ResourceKey) -> Option<&ResourceChange> {
        self.changes.iter().find(|change| &change.key == key)
    }

    /// The Kubernetes version steps the rolling updates after this plan
    /// make, each with the groups it concerns (one, unless groups run
    /// different versions now).
    pub fn version_steps(&self) -> Vec<(VersionStep, Vec<&str>)> {
        let mut steps: Vec<(VersionStep, Vec<&str>)> = Vec::new();
        for need in &self.rolling_updates {
            let Some(step) = need.kubernetes_version else {
                continue;
            };
            match steps.iter_mut().find(|(known, _)| *known == step) {
                Some((_, groups)) => groups.push(&need.group),
                None => steps.push((step, vec![&need.group])),
            }
        }
        steps
    }

    /// Counts by kind, for summaries.
    pub fn counts_by_kind(&self) -> BTreeMap<ResourceKind, usize> {
        let mut counts = BTreeMap::new();
        for change in &self.changes {
            *counts.entry(change.kind).or_insert(0) += 1;
        }
        counts
    }
}

/// The distinct bootstrap scripts of `templates` (name, attributes).
pub(crate) fn bootstrap_scripts<'a>(
    templates: impl Iterator<Item = (&'a str, &'a crate::resource::LaunchTemplateAttributes)>,
) -> Result<Vec<skiff_templates::StoredScript>, PlanError> {
    let mut scripts: Vec<skiff_templates::StoredScript> = Vec::new();
    for (name, template) in templates {
        let script = template
            .stored_script()
            .map_err(|source| PlanError::Template {
                group: name.to_string(),
                source,
            })?;
        if let Some(script) = script {
            if !scripts.iter().any(|known| known.key == script.key) {
                scripts.push(script);
            }
        }
    }
    Ok(scripts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(state: StateBinding) -> Plan {
        Plan {
            format: PLAN_FORMAT,
            cluster: "c1.example.com".into(),
            region: "us-east-1".into(),
            spec_revision: 3,
            state,
            summary: Summary::default(),
            changes: Vec::new(),
            rolling_updates: Vec::new(),
            known_outputs: KnownOutputs::default(),
            instance_groups: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The binding is flattened: the JSON is what it was when the plan had
    /// `stateLineage` and `stateSerial` fields of its own, in that place.
    #[test]
    fn the_state_binding_sits_flat_in_the_json() {
        let bound = plan(StateBinding::recorded("f00d", 7));
        let json = serde_json::to_string(&bound).expect("serializes");
        assert_eq!(
            json,
            r#"{"format":1,"cluster":"c1.example.com","region":"us-east-1","specRevision":3,"stateLineage":"f00d","stateSerial":7,"summary":{"create":0,"update":0,"replace":0,"delete":0},"changes":[],"rollingUpdates":[],"knownOutputs":{}}"#
        );
        assert_eq!(serde_json::from_str::<Plan>(&json).expect("parses"), bound);

        let unbound = plan(StateBinding::none());
        let json = serde_json::to_string(&unbound).expect("serializes");
        assert!(
            json.contains(r#""specRevision":3,"stateSerial":0,"summary""#),
            "{json}"
        );
        let back = serde_json::from_str::<Plan>(&json).expect("parses");
        assert!(!back.state.has_state());
        assert_eq!(back, unbound);
    }
}
