//! Draining a node: what `kubectl drain --ignore-daemonsets
//! --delete-emptydir-data --force` does, through the Eviction API.
//!
//! Pods owned by a DaemonSet and static (mirror) pods stay: the DaemonSet
//! controller would put the first straight back, and the kubelet owns the
//! second. Every other pod is evicted, so a PodDisruptionBudget that does
//! not allow the disruption yet answers 429 and the eviction is tried again
//! on the next pass, until the drain's deadline. Pods with emptyDir volumes
//! are evicted too: their scratch data dies with the node anyway. The drain
//! ends when no evictable pod is left on the node; a pod that is already
//! finished (Succeeded or Failed) does not hold it up.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::EvictParams;
use kube::{Api, ResourceExt};
use tokio::time::Instant;

use super::KubernetesApi;
use crate::{Result, RolloutError};

/// The pause between two passes over the node's pods.
const PASS_PAUSE: Duration = Duration::from_secs(2);

/// The annotation the kubelet puts on the API copy of a static pod.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Cordoned already by the caller; evicts the node's pods and waits until
/// they are gone or `timeout` passes.
pub(super) async fn drain(
    api: &KubernetesApi,
    node: &str,
    instance: &str,
    timeout: Duration,
) -> Result<()> {
    drain_with_pause(api, node, instance, timeout, PASS_PAUSE).await
}

async fn drain_with_pause(
    api: &KubernetesApi,
    node: &str,
    instance: &str,
    timeout: Duration,
    pause: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let selector = format!("spec.nodeName={node}");
    let action = format!("listing the pods of node {node}");
    // Pods whose eviction was accepted: only waited for from then on.
    let mut evicted: BTreeSet<(String, String)> = BTreeSet::new();
    loop {
        let pods = api.pods(None, Some(&selector), None, &action).await?;
        let remaining: Vec<&Pod> = pods.iter().filter(|pod| must_leave(pod)).collect();
        if remaining.is_empty() {
            tracing::info!("node {node} is drained");
            return Ok(());
        }
        let mut blocked = Vec::new();
        for pod in &remaining {
            let namespace = pod.namespace().unwrap_or_else(|| "default".to_string());
            let name = pod.name_any();
            if evicted.contains(&(namespace.clone(), name.clone())) {
                blocked.push(format!("{namespace}/{name} (terminating)"));
                continue;
            }
            match evict(api, &namespace, &name).await? {
                Eviction::Accepted => {
                    tracing::info!("evicting pod {namespace}/{name} from node {node}");
                    // Still there until it has terminated: if the deadline
                    // has passed too, it is one of the pods that did not leave.
                    blocked.push(format!("{namespace}/{name} (terminating)"));
                    evicted.insert((namespace, name));
                }
                Eviction::Refused(reason) => blocked.push(format!("{namespace}/{name} ({reason})")),
            }
        }
        if Instant::now() >= deadline {
            return Err(RolloutError::DrainTimeout {
                node: node.to_string(),
                instance: instance.to_string(),
                timeout,
                pods: blocked.join(", "),
            });
        }
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

/// What became of one eviction request.
enum Eviction {
    /// The pod is being evicted (or is gone already).
    Accepted,
    /// Not now: a disruption budget does not allow it (429), or the API
    /// server asks to wait (500 with a budget conflict).
    Refused(String),
}

async fn evict(api: &KubernetesApi, namespace: &str, name: &str) -> Result<Eviction> {
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), namespace);
    let action = format!("evicting pod {namespace}/{name}");
    match pods.evict(name, &EvictParams::default()).await {
        Ok(_) => Ok(Eviction::Accepted),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Eviction::Accepted),
        Err(kube::Error::Api(status)) if status.code == 429 => {
            let reason = if status.message.is_empty() {
                "the eviction is refused by a PodDisruptionBudget".to_string()
            } else {
                status.message.clone()
            };
            Ok(Eviction::Refused(reason))
        }
        // Several budgets select the pod, or the API server is busy: try again later.
        Err(kube::Error::Api(status)) if matches!(status.code, 500 | 503) => Ok(Eviction::Refused(
            format!("HTTP {}: {}", status.code, status.message),
        )),
        Err(error) if super::is_transient(&error) => {
            Ok(Eviction::Refused(super::error_chain(&error)))
        }
        Err(error) => Err(api.error(&action, &error)),
    }
}

/// Whether a pod on a node being drained must leave it.
fn must_leave(pod: &Pod) -> bool {
    let owned_by_daemon_set = pod
        .owner_references()
        .iter()
        .any(|owner| owner.kind == "DaemonSet" && owner.controller == Some(true));
    let mirror = pod.annotations().contains_key(MIRROR_ANNOTATION);
    let finished = pod
        .status
        .as_ref()
        .and_then(|status| status.phase.as_deref())
        .is_some_and(|phase| phase == "Succeeded" || phase == "Failed");
    !owned_by_daemon_set && !mirror && !finished
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    use super::*;

    fn pod(owner_kind: Option<&str>, mirror: bool, phase: &str) -> Pod {
        let mut pod = Pod {
            metadata: ObjectMeta {
                name: Some("p".to_string()),
                namespace: Some("default".to_string()),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        };
        if let Some(kind) = owner_kind {
            pod.metadata.owner_references = Some(vec![OwnerReference {
                api_version: "apps/v1".to_string(),
                kind: kind.to_string(),
                name: "owner".to_string(),
                uid: "1".to_string(),
                controller: Some(true),
                ..OwnerReference::default()
            }]);
        }
        if mirror {
            pod.metadata.annotations =
                Some([(MIRROR_ANNOTATION.to_string(), "x".to_string())].into());
        }
        pod.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some(phase.to_string()),
            ..Default::default()
        });
        pod
    }

    #[test]
    fn daemon_set_and_mirror_pods_stay_others_leave() {
        assert!(must_leave(&pod(None, false, "Running")));
        assert!(must_leave(&pod(Some("ReplicaSet"), false, "Running")));
        assert!(!must_leave(&pod(Some("DaemonSet"), false, "Running")));
        assert!(!must_leave(&pod(None, true, "Running")));
        assert!(!must_leave(&pod(Some("Job"), false, "Succeeded")));
        assert!(!must_leave(&pod(None, false, "Failed")));
    }
}
