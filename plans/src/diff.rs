//! The diff: desired model against what exists, into a [`Plan`].
//!
//! Explicit and typed: both sides are the same [`Attributes`] types, the
//! provider has already normalized what AWS returned (tags without `aws:`
//! keys, canonical policy JSON, decoded user-data, sorted lists), and each
//! kind declares which fields cannot change in place. A field whose new
//! value depends on a resource this plan creates is "known after apply".

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::desired::DesiredModel;
use crate::error::PlanError;
use crate::graph;
use crate::observed::Observed;
use crate::plan::{
    Action, FieldChange, Plan, ResourceChange, RollingUpdateNeed, StateBinding, Summary,
    VersionStep, PLAN_FORMAT,
};
use crate::resolve::{has_reference, resolve};
use crate::resource::{Output, ResourceKey, ResourceKind};
use crate::user_data;

/// Where the plan starts from.
#[derive(Debug, Clone)]
pub struct PlanContext {
    /// The AWS region.
    pub region: String,
    /// The spec revision.
    pub spec_revision: u64,
    /// The recorded state the plan is bound to.
    pub state: StateBinding,
}

/// Computes the plan that makes `observed` look like `desired`.
pub fn plan(
    desired: &DesiredModel,
    observed: &Observed,
    context: &PlanContext,
) -> Result<Plan, PlanError> {
    let order = graph::order(&desired.resources)?;
    let mut known = observed.outputs();
    let mut changes: Vec<ResourceChange> = Vec::new();

    for key in &order {
        let Some(resource) = desired.get(key) else {
            continue;
        };
        let resolved = resolve(&resource.attributes, &known);
        let after_fields = resolved.fields();
        match observed.resources.get(key) {
            None => {
                let fields = after_fields
                    .into_iter()
                    .map(|(field, after)| FieldChange {
                        after_unknown: has_reference(&after),
                        field,
                        before: None,
                        after: Some(after),
                        forces_replacement: false,
                        decoded: None,
                    })
                    .collect();
                known.remove(key);
                changes.push(ResourceChange {
                    key: key.clone(),
                    kind: resource.kind(),
                    action: Action::Create,
                    id: None,
                    reason: None,
                    fields,
                    desired: Some(resource.attributes.clone()),
                    current: None,
                    depends_on: Vec::new(),
                });
            }
            Some(existing) => {
                let before_fields = existing.attributes.fields();
                let immutable = resource.kind().immutable_fields();
                let mut fields = Vec::new();
                let names: BTreeSet<&String> =
                    before_fields.keys().chain(after_fields.keys()).collect();
                for name in names {
                    let before = before_fields.get(name);
                    let after = after_fields.get(name);
                    let unknown = after.is_some_and(has_reference);
                    if unknown || before != after {
                        let decoded = match (name.as_str(), before, after) {
                            (
                                "userData",
                                Some(Value::String(before)),
                                Some(Value::String(after)),
                            ) => user_data::change(before, after),
                            _ => None,
                        };
                        fields.push(FieldChange {
                            field: name.clone(),
                            before: before.cloned(),
                            after: after.cloned(),
                            after_unknown: unknown,
                            forces_replacement: immutable.contains(&name.as_str()),
                            decoded,
                        });
                    }
                }
                if fields.is_empty() {
                    continue;
                }
                let forcing: Vec<&FieldChange> = fields
                    .iter()
                    .filter(|field| field.forces_replacement)
                    .collect();
                let (action, reason) = if forcing.is_empty() {
                    (Action::Update, None)
                } else {
                    let names: Vec<&str> =
                        forcing.iter().map(|field| field.field.as_str()).collect();
                    (
                        Action::Replace,
                        Some(format!("{} cannot change in place", names.join(", "))),
                    )
                };
                match action {
                    Action::Replace => {
                        known.remove(key);
                    }
                    _ => {
                        if resource.kind() == ResourceKind::LaunchTemplate {
                            // A changed template gets a new version number.
                            if let Some(outputs) = known.get_mut(key) {
                                outputs.remove(&Output::LatestVersion);
                            }
                        }
                    }
                }
                changes.push(ResourceChange {
                    key: key.clone(),
                    kind: resource.kind(),
                    action,
                    id: Some(existing.id.clone()),
                    reason,
                    fields,
                    desired: Some(resource.attributes.clone()),
                    current: Some(existing.attributes.clone()),
                    depends_on: Vec::new(),
                });
            }
        }
    }

    // Dependencies among the changes, for the executor.
    let changed: BTreeSet<ResourceKey> = changes.iter().map(|change| change.key.clone()).collect();
    for change in &mut changes {
        if let Some(resource) = desired.get(&change.key) {
            change.depends_on = resource
                .dependencies()
                .into_iter()
                .filter(|dependency| changed.contains(dependency))
                .collect();
        }
    }

    // Deletes: owned resources no longer wanted, and strays; dependents first.
    let mut deletes: Vec<ResourceChange> = Vec::new();
    for (key, existing) in &observed.resources {
        if desired.get(key).is_none() {
            deletes.push(delete_change(
                key,
                existing,
                "no longer in the spec".to_string(),
            ));
        }
    }
    for stray in &observed.strays {
        deletes.push(delete_change(
            &stray.key,
            stray,
            format!(
                "a second {} tagged {} (left by an interrupted run)",
                stray.kind(),
                stray.key
            ),
        ));
    }
    deletes.sort_by_key(|change| std::cmp::Reverse(kind_rank(change.kind)));
    changes.extend(deletes);

    let rolling_updates = rolling_updates(&changes, observed);
    let mut summary = Summary::default();
    for change in &changes {
        match change.action {
            Action::Create => summary.create += 1,
            Action::Update => summary.update += 1,
            Action::Replace => summary.replace += 1,
            Action::Delete => summary.delete += 1,
        }
    }
    // Outputs of resources that stay, so a saved plan can resolve references.
    let known_outputs = known
        .into_iter()
        .filter(|(key, _)| desired.get(key).is_some())
        .collect();

    Ok(Plan {
        format: PLAN_FORMAT,
        cluster: desired.cluster.clone(),
        region: context.region.clone(),
        spec_revision: context.spec_revision,
        state: context.state.clone(),
        summary,
        changes,
        rolling_updates,
        known_outputs,
        instance_groups: desired.instance_groups.clone(),
        warnings: desired.warnings.clone(),
    })
}

/// The plan that deletes every resource of the cluster that exists.
pub fn destroy(cluster: &str, observed: &Observed, context: &PlanContext) -> Plan {
    let mut changes: Vec<ResourceChange> = observed
        .resources
        .iter()
        .map(|(key, existing)| {
            delete_change(key, existing, "the cluster is being deleted".to_string())
        })
        .chain(observed.strays.iter().map(|stray| {
            delete_change(
                &stray.key,
                stray,
                "the cluster is being deleted".to_string(),
            )
        }))
        .collect();
    changes.sort_by_key(|change| std::cmp::Reverse(kind_rank(change.kind)));
    Plan {
        format: PLAN_FORMAT,
        cluster: cluster.to_string(),
        region: context.region.clone(),
        spec_revision: context.spec_revision,
        state: context.state.clone(),
        summary: Summary {
            delete: changes.len(),
            ..Summary::default()
        },
        changes,
        rolling_updates: Vec::new(),
        known_outputs: BTreeMap::new(),
        instance_groups: Vec::new(),
        warnings: Vec::new(),
    }
}

fn delete_change(
    key: &ResourceKey,
    existing: &crate::observed::ObservedResource,
    reason: String,
) -> ResourceChange {
    ResourceChange {
        key: key.clone(),
        kind: existing.kind(),
        action: Action::Delete,
        id: Some(existing.id.clone()),
        reason: Some(reason),
        fields: Vec::new(),
        desired: None,
        current: Some(existing.attributes.clone()),
        depends_on: Vec::new(),
    }
}

/// The position of a kind in build order; deletes run in reverse.
pub fn kind_rank(kind: ResourceKind) -> usize {
    ResourceKind::ALL
        .iter()
        .position(|candidate| *candidate == kind)
        .unwrap_or(0)
}

/// Which groups' running instances the plan leaves out of date, and why.
fn rolling_updates(changes: &[ResourceChange], observed: &Observed) -> Vec<RollingUpdateNeed> {
    let mut needs: BTreeMap<String, RollingUpdateNeed> = BTreeMap::new();
    for change in changes {
        if change.kind != ResourceKind::LaunchTemplate {
            continue;
        }
        let group = change.key.name().to_string();
        let scaling_group = ResourceKey::new(ResourceKind::AutoScalingGroup, &group);
        // A group created by this plan launches up-to-date instances.
        if !observed.resources.contains_key(&scaling_group) {
            continue;
        }
        let mut step = None;
        let reasons = match change.action {
            Action::Update => {
                let mut reasons = Vec::new();
                for field in &change.fields {
                    if field.field == "userData" {
                        let explanation = explain_user_data(field);
                        step = explanation
                            .kubernetes_version
                            .map(|(from, to)| VersionStep { from, to });
                        reasons.extend(explanation.reasons());
                    } else if field.field == "userDataSubstitutions" {
                        // References that end up in the user-data (a load
                        // balancer's name not known yet): explained there.
                    } else {
                        reasons.extend(describe_field(field));
                    }
                }
                reasons
            }
            Action::Create | Action::Replace => {
                vec!["its launch template is created anew".to_string()]
            }
            Action::Delete => continue,
        };
        if !reasons.is_empty() {
            let need = needs
                .entry(group.clone())
                .or_insert_with(|| RollingUpdateNeed {
                    group,
                    reasons: Vec::new(),
                    kubernetes_version: None,
                });
            need.reasons.extend(reasons);
            need.kubernetes_version = need.kubernetes_version.or(step);
        }
    }
    needs.into_values().collect()
}

/// Words for a changed user-data: the version step it makes and the files
/// no field explains (see [`user_data::explain`]).
fn explain_user_data(field: &FieldChange) -> user_data::Explanation {
    match (&field.before, &field.after) {
        (Some(Value::String(before)), Some(Value::String(after))) if !field.after_unknown => {
            user_data::explain(before, after)
        }
        _ => user_data::Explanation::default(),
    }
}

fn short(value: &Option<Value>) -> String {
    match value {
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => "(none)".to_string(),
    }
}

/// Words for a launch-template field change, or `None` for changes that do
/// not affect running instances (the template's own tags).
fn describe_field(field: &FieldChange) -> Option<String> {
    let change = || format!("{} -> {}", short(&field.before), short(&field.after));
    Some(match field.field.as_str() {
        "tags" => return None,
        "imageId" => format!("image {}", change()),
        "instanceType" => format!("machineType {}", change()),
        "userData" => "user-data changed".to_string(),
        "rootVolume" => "root volume changed".to_string(),
        "securityGroups" => "security groups changed".to_string(),
        "instanceProfile" => "instance profile changed".to_string(),
        "keyName" => "SSH key changed".to_string(),
        "instanceTags" => "instance tags changed".to_string(),
        "spot" | "spotMaxPrice" => "spot settings changed".to_string(),
        other => format!("{other} changed"),
    })
}
