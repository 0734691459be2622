//! Which `kubernetes.io` and `k8s.io` labels a kubelet may register its node
//! with.
//!
//! The kubelet refuses to start when `--node-labels` holds a label in those
//! namespaces outside the set it sets itself (the NodeRestriction admission
//! plugin would refuse them anyway), so such a label in a group's
//! `nodeLabels` would leave every instance of the group failing at boot.
//! The rule and the lists are upstream's: kubernetes/kubernetes
//! cmd/kubelet/app/options/options.go (`ValidateKubeletFlags`,
//! `isKubernetesLabel`) and pkg/kubelet/apis/well_known_labels.go
//! (`kubeletLabels`, `kubeletLabelNamespaces`, `IsKubeletLabel`).

/// The labels in the Kubernetes namespaces a kubelet may set itself.
pub const KUBELET_LABELS: [&str; 11] = [
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/instance-type",
    "beta.kubernetes.io/os",
    "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "kubernetes.io/arch",
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
];

/// The namespaces (and their subdomains) a kubelet may set any label in.
pub const KUBELET_LABEL_NAMESPACES: [&str; 2] = ["kubelet.kubernetes.io", "node.kubernetes.io"];

fn in_domain(namespace: &str, domain: &str) -> bool {
    namespace == domain || namespace.ends_with(&format!(".{domain}"))
}

/// Whether the kubelet refuses to register with label `key`: a key in the
/// `kubernetes.io` or `k8s.io` namespaces (or a subdomain of them) that is
/// neither in [`KUBELET_LABELS`] nor under [`KUBELET_LABEL_NAMESPACES`].
pub fn kubelet_refuses(key: &str) -> bool {
    let Some((namespace, _)) = key.split_once('/') else {
        return false;
    };
    let kubernetes = in_domain(namespace, "kubernetes.io") || in_domain(namespace, "k8s.io");
    kubernetes
        && !KUBELET_LABELS.contains(&key)
        && !KUBELET_LABEL_NAMESPACES
            .iter()
            .any(|allowed| in_domain(namespace, allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubelets_own_labels_and_namespaces_pass_the_rest_of_kubernetes_io_does_not() {
        for allowed in [
            "team",
            "example.com/team",
            "kubernetes.io/os",
            "topology.kubernetes.io/zone",
            "node.kubernetes.io/pool",
            "kubelet.kubernetes.io/anything",
            "x.node.kubernetes.io/pool",
            "notkubernetes.io/role",
        ] {
            assert!(!kubelet_refuses(allowed), "{allowed}");
        }
        for refused in [
            "node-role.kubernetes.io/worker",
            "kubernetes.io/role",
            "app.kubernetes.io/name",
            "k8s.io/team",
            "example.k8s.io/team",
        ] {
            assert!(kubelet_refuses(refused), "{refused}");
        }
    }
}
