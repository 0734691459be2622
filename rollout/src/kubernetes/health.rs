//! Whether the control plane is healthy, judged from what the API server
//! lists: the control-plane nodes, the static pods kubeadm runs on each of
//! them, CoreDNS and the kube-system DaemonSets (kube-proxy, the CNI).
//!
//! Every problem found is reported, one per line, so that an operator
//! waiting on a validation sees everything that is still wrong at once.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::ResourceExt;

use super::nodes;
use crate::ControlPlaneHealth;

/// Where the control plane's pods live.
pub(super) const NAMESPACE: &str = "kube-system";

/// The label kubeadm puts on control-plane nodes.
const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";

/// The static pods kubeadm runs on every control-plane node (stacked etcd).
const STATIC_COMPONENTS: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// The label of the cluster DNS pods (CoreDNS keeps kube-dns's label).
const DNS_LABEL: (&str, &str) = ("k8s-app", "kube-dns");

/// Healthy, or every problem found.
pub(super) fn assess(
    nodes: &[Node],
    pods: &[Pod],
    daemon_sets: &[DaemonSet],
) -> ControlPlaneHealth {
    let mut problems = Vec::new();
    let control_plane: Vec<&Node> = nodes
        .iter()
        .filter(|node| node.labels().contains_key(CONTROL_PLANE_LABEL))
        .collect();
    if control_plane.is_empty() {
        problems.push("no control-plane node is registered".to_string());
    }
    for node in &control_plane {
        let name = node.name_any();
        if !nodes::is_ready(node) {
            let detail = match nodes::ready_condition(node) {
                Some((status, Some(message))) => format!("Ready={status}: {message}"),
                Some((status, None)) => format!("Ready={status}"),
                None => "no Ready condition yet".to_string(),
            };
            problems.push(format!("control-plane node {name} is not Ready ({detail})"));
        }
        for component in STATIC_COMPONENTS {
            let pod_name = format!("{component}-{name}");
            match pods.iter().find(|pod| pod.name_any() == pod_name) {
                None => problems.push(format!("static pod {NAMESPACE}/{pod_name} does not exist")),
                Some(pod) if !pod_ready(pod) => problems.push(format!(
                    "static pod {NAMESPACE}/{pod_name} is not ready ({})",
                    phase(pod)
                )),
                Some(_) => {}
            }
        }
    }
    let dns: Vec<&Pod> = pods
        .iter()
        .filter(|pod| pod.labels().get(DNS_LABEL.0).map(String::as_str) == Some(DNS_LABEL.1))
        .collect();
    if !dns.is_empty() && !dns.iter().any(|pod| pod_ready(pod)) {
        problems.push(format!(
            "no cluster DNS pod ({}={}) is ready",
            DNS_LABEL.0, DNS_LABEL.1
        ));
    }
    for daemon_set in daemon_sets {
        if let Some(status) = &daemon_set.status {
            if status.number_ready < status.desired_number_scheduled {
                problems.push(format!(
                    "daemonset {NAMESPACE}/{} has {} of {} pods ready",
                    daemon_set.name_any(),
                    status.number_ready,
                    status.desired_number_scheduled
                ));
            }
        }
    }
    ControlPlaneHealth::from_problems(problems)
}

/// Whether a pod runs and its Ready condition is True.
fn pod_ready(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|condition| condition.type_ == "Ready" && condition.status == "True")
}

fn phase(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|status| status.phase.clone())
        .unwrap_or_else(|| "no status".to_string())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{NodeCondition, NodeStatus, PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn node(name: &str, ready: bool) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                labels: Some([(CONTROL_PLANE_LABEL.to_string(), String::new())].into()),
                ..ObjectMeta::default()
            },
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".to_string(),
                    status: if ready { "True" } else { "False" }.to_string(),
                    ..NodeCondition::default()
                }]),
                ..NodeStatus::default()
            }),
            ..Node::default()
        }
    }

    fn pod(name: &str, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(NAMESPACE.to_string()),
                ..ObjectMeta::default()
            },
            status: Some(PodStatus {
                phase: Some("Running".to_string()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".to_string(),
                    status: if ready { "True" } else { "False" }.to_string(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    fn static_pods(node: &str) -> Vec<Pod> {
        STATIC_COMPONENTS
            .iter()
            .map(|component| pod(&format!("{component}-{node}"), true))
            .collect()
    }

    #[test]
    fn healthy_when_every_control_plane_node_and_static_pod_is_ready() {
        let nodes = [node("cp-a", true), node("cp-b", true)];
        let pods: Vec<Pod> = static_pods("cp-a")
            .into_iter()
            .chain(static_pods("cp-b"))
            .collect();
        assert_eq!(assess(&nodes, &pods, &[]), ControlPlaneHealth::Healthy);
    }

    #[test]
    fn names_every_problem() {
        let nodes = [node("cp-a", false), node("cp-b", true)];
        let mut pods = static_pods("cp-a");
        pods.push(pod("etcd-cp-b", false));
        let problems = assess(&nodes, &pods, &[]).to_string();
        assert!(
            problems.contains("control-plane node cp-a is not Ready"),
            "{problems}"
        );
        assert!(
            problems.contains("static pod kube-system/etcd-cp-b is not ready"),
            "{problems}"
        );
        assert!(
            problems.contains("static pod kube-system/kube-apiserver-cp-b does not exist"),
            "{problems}"
        );
        assert!(!problems.contains("kube-apiserver-cp-a"), "{problems}");
    }

    #[test]
    fn no_control_plane_is_unhealthy() {
        assert_eq!(
            assess(&[], &[], &[]),
            ControlPlaneHealth::Unhealthy {
                problems: vec!["no control-plane node is registered".to_string()]
            }
        );
    }
}
