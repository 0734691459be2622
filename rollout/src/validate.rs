//! `validate cluster`: is every group at its size, with a Ready node per
//! instance, and is the control plane healthy?

use serde::Serialize;

use crate::roll::GroupPlan;
use crate::{ClusterApi, GroupOperations, Result};

/// One thing wrong with the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// What kind of object: `instancegroup`, `node`, `pod`, `controlplane`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// What is wrong.
    pub message: String,
}

/// The state of one instance group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupStatus {
    /// The instance group.
    pub group: String,
    /// Its role.
    pub role: String,
    /// Minimum size in the spec.
    pub min: u32,
    /// Maximum size in the spec.
    pub max: u32,
    /// Instances in service.
    pub in_service: usize,
    /// Instances launched from an older launch-template version.
    pub outdated: usize,
    /// The IDs of the instances in service.
    pub instances: Vec<String>,
}

/// The result of a validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    /// Per group.
    pub groups: Vec<GroupStatus>,
    /// Everything wrong (empty: valid).
    pub problems: Vec<Problem>,
}

/// Validates the cloud side (and, given a [`ClusterApi`], the Kubernetes side).
pub async fn validate(
    cloud: &dyn GroupOperations,
    groups: &[(GroupPlan, u32, u32)],
    cluster: Option<&dyn ClusterApi>,
) -> Result<Validation> {
    let names: Vec<String> = groups
        .iter()
        .map(|(plan, _, _)| plan.auto_scaling_group.clone())
        .collect();
    let views = cloud.describe_groups(&names).await?;
    let mut result = Validation {
        groups: Vec::new(),
        problems: Vec::new(),
    };
    for (plan, min, max) in groups {
        let Some(view) = views
            .iter()
            .find(|view| view.name == plan.auto_scaling_group)
        else {
            result.problems.push(Problem {
                kind: "instancegroup".to_string(),
                name: plan.group.clone(),
                message: format!(
                    "auto scaling group {} does not exist (run `skiff update cluster --yes`)",
                    plan.auto_scaling_group
                ),
            });
            continue;
        };
        let in_service = view.in_service();
        result.groups.push(GroupStatus {
            group: plan.group.clone(),
            role: plan.role.to_string(),
            min: *min,
            max: *max,
            in_service,
            outdated: view.outdated().len(),
            instances: view
                .instances
                .iter()
                .filter(|instance| instance.in_service())
                .map(|instance| instance.id.clone())
                .collect(),
        });
        if in_service < usize::try_from(*min).unwrap_or(usize::MAX)
            || in_service < usize::try_from(view.desired).unwrap_or(usize::MAX)
        {
            result.problems.push(Problem {
                kind: "instancegroup".to_string(),
                name: plan.group.clone(),
                message: format!(
                    "{in_service} instances in service, {} desired (spec: {min} to {max})",
                    view.desired
                ),
            });
        }
        if let Some(cluster) = cluster {
            for instance in view
                .instances
                .iter()
                .filter(|instance| instance.in_service())
            {
                match cluster.node_of(instance).await? {
                    None => result.problems.push(Problem {
                        kind: "node".to_string(),
                        name: instance.id.clone(),
                        message: format!(
                            "instance {} of group {} has not registered as a Kubernetes node",
                            instance.id, plan.group
                        ),
                    }),
                    Some(node) => {
                        if !cluster.node_ready(&node).await? {
                            result.problems.push(Problem {
                                kind: "node".to_string(),
                                name: node.clone(),
                                message: format!(
                                    "node {node} (instance {}, group {}) is NotReady",
                                    instance.id, plan.group
                                ),
                            });
                        }
                    }
                }
            }
        }
    }
    if let Some(cluster) = cluster {
        let health = cluster.control_plane_healthy().await?;
        if !health.is_healthy() {
            result.problems.push(Problem {
                kind: "controlplane".to_string(),
                name: "control-plane".to_string(),
                message: health.to_string(),
            });
        }
    }
    Ok(result)
}
