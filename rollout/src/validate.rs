//! `validate cluster`: is every group at its size, with a Ready node per
//! instance, and is the control plane healthy?

use serde::Serialize;

use skiff_api::KubernetesVersion;

use crate::roll::GroupPlan;
use crate::{ClusterApi, ClusterVersions, GroupOperations, Result};

/// How many minors older than the API server a kubelet may be (the
/// Kubernetes version-skew policy, since 1.28).
pub const KUBELET_MAX_MINORS_BEHIND: u32 = 3;

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
    /// The API server's and every node's kubelet version (with a Kubernetes API).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<ClusterVersions>,
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
        versions: None,
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
        if plan.role == skiff_api::InstanceGroupRole::Etcd {
            // An external etcd member is no node: it is valid once its
            // instance reports a voting member.
            for instance in view
                .instances
                .iter()
                .filter(|instance| instance.in_service() && !instance.etcd_member)
            {
                result.problems.push(Problem {
                    kind: "etcd".to_string(),
                    name: instance.id.clone(),
                    message: format!(
                        "instance {} of group {} does not report a voting etcd member (tag skiff.dev/etcd-member=true); see /var/log/skiff-bootstrap.log on it",
                        instance.id, plan.group
                    ),
                });
            }
            continue;
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
        let versions = cluster.versions().await?;
        result.problems.extend(skew_problems(&versions));
        result.versions = Some(versions);
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

/// The nodes whose kubelet the version-skew policy does not allow next to
/// this API server: newer than it, or more than
/// [`KUBELET_MAX_MINORS_BEHIND`] minors older.
pub fn skew_problems(versions: &ClusterVersions) -> Vec<Problem> {
    let Ok(api_server) = versions.api_server.parse::<KubernetesVersion>() else {
        return vec![Problem {
            kind: "controlplane".to_string(),
            name: "version".to_string(),
            message: format!(
                "the API server reports version {:?}, which is not a Kubernetes version",
                versions.api_server
            ),
        }];
    };
    let mut problems = Vec::new();
    for node in &versions.kubelets {
        let Ok(kubelet) = node.kubelet.parse::<KubernetesVersion>() else {
            continue; // not reported yet: the node's own problems say more
        };
        let message = if (kubelet.major, kubelet.minor) > (api_server.major, api_server.minor) {
            format!(
                "node {} runs kubelet {}, newer than the API server ({}): a kubelet must never be newer \
                 than the API server (Kubernetes version-skew policy); roll the control plane to {} first",
                node.node, node.kubelet, versions.api_server, node.kubelet
            )
        } else if kubelet.major == api_server.major
            && api_server.minor > kubelet.minor + KUBELET_MAX_MINORS_BEHIND
        {
            format!(
                "node {} runs kubelet {}, more than {KUBELET_MAX_MINORS_BEHIND} minors older than the API \
                 server ({}), which the version-skew policy does not support; roll its group",
                node.node, node.kubelet, versions.api_server
            )
        } else {
            continue;
        };
        problems.push(Problem {
            kind: "node".to_string(),
            name: node.node.clone(),
            message,
        });
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeVersion;

    fn versions(api_server: &str, kubelets: &[(&str, &str)]) -> ClusterVersions {
        ClusterVersions {
            api_server: api_server.to_string(),
            kubelets: kubelets
                .iter()
                .map(|(node, kubelet)| NodeVersion {
                    node: node.to_string(),
                    kubelet: kubelet.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_kubelet_newer_than_the_api_server_or_four_minors_older_is_a_problem() {
        let problems = skew_problems(&versions(
            "v1.34.2",
            &[
                ("same", "v1.34.2"),
                ("newer-patch", "v1.34.5"),
                ("older", "v1.31.0"),
                ("newer", "v1.35.1"),
                ("too-old", "v1.30.9"),
                ("unknown", ""),
            ],
        ));
        let named: Vec<&str> = problems
            .iter()
            .map(|problem| problem.name.as_str())
            .collect();
        assert_eq!(named, ["newer", "too-old"], "{problems:#?}");
        assert!(problems[0]
            .message
            .contains("newer than the API server (v1.34.2)"));
        assert!(problems[1].message.contains("more than 3 minors older"));
        assert_eq!(skew_problems(&versions("garbage", &[])).len(), 1);
    }
}
