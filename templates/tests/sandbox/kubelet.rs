//! `spec.kubelet` and `spec.controlPlane.*.extraArgs` on booted nodes: the
//! kubeadm stand-in keeps the cluster's kubelet-config ConfigMap from
//! `init` and writes each node's `/var/lib/kubelet/config.yaml` from it with
//! the node's own kubeletconfiguration patch applied, as kubeadm does; a
//! control-plane node that joins later deploys the stored
//! ClusterConfiguration, which it first makes its own.

use std::collections::BTreeMap;

use serde_norway::Value;
use skiff_api::{Cni, ComponentSpec, InstanceGroupRole, KubeletSpec, OsFamily};
use skiff_templates::{ComponentArguments, NodeBootstrap};
use skiff_test_support::sandbox::{FakeCloud, Image, NodeSandbox};

use super::assert_booted;
use crate::support::{start_cloud, Sandbox};

const KUBEADM_CONFIG_KEY: &str = "/registry/configmaps/kube-system/kubeadm-config";

fn kubelet_config(node: &NodeSandbox) -> Value {
    let text = node.read("/var/lib/kubelet/config.yaml");
    serde_norway::from_str(&text)
        .unwrap_or_else(|error| panic!("config.yaml of {}: {error}\n{text}", node.instance_id))
}

fn api_server_arguments(pairs: &[(&str, &str)]) -> ComponentArguments {
    ComponentArguments {
        api_server: ComponentSpec {
            extra_args: pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            extra_volumes: Vec::new(),
        },
        ..ComponentArguments::default()
    }
}

fn control_plane(
    cloud: &FakeCloud,
    kubelet: KubeletSpec,
    arguments: ComponentArguments,
) -> NodeBootstrap {
    NodeBootstrap {
        kubelet,
        component_arguments: arguments,
        ..cloud.bootstrap(
            InstanceGroupRole::ControlPlane,
            OsFamily::Debian,
            Cni::Cilium,
        )
    }
}

#[test]
fn each_node_runs_its_groups_kubelet_settings_and_later_control_planes_get_changed_flags() {
    let cloud = start_cloud();
    let first = cloud.node(
        "i-0b10000000000000a",
        &control_plane(
            &cloud,
            KubeletSpec {
                max_pods: Some(60),
                ..KubeletSpec::default()
            },
            api_server_arguments(&[("oidc-client-id", "first")]),
        ),
        Image::Ubuntu,
    );
    assert_booted(&first, &first.boot());
    let own = kubelet_config(&first);
    assert_eq!(own["maxPods"].as_u64(), Some(60), "{own:?}");
    assert_eq!(own["cgroupDriver"], "systemd", "the base stays: {own:?}");
    assert!(
        first
            .read("/etc/kubernetes/manifests/kube-apiserver.yaml")
            .contains("- --oidc-client-id=first"),
        "{}",
        first.read("/etc/kubernetes/manifests/kube-apiserver.yaml")
    );

    // Workers: one group with settings, one without. Each gets the
    // ConfigMap's base and its own patch only.
    let tuned = NodeBootstrap {
        kubelet: KubeletSpec {
            max_pods: Some(250),
            kube_reserved: BTreeMap::from([("cpu".to_string(), "100m".to_string())]),
            eviction_hard: BTreeMap::from([("memory.available".to_string(), "200Mi".to_string())]),
            ..KubeletSpec::default()
        },
        ..cloud.bootstrap(InstanceGroupRole::Node, OsFamily::Debian, Cni::Cilium)
    };
    let worker = cloud.node("i-0b10000000000000b", &tuned, Image::Ubuntu);
    assert_booted(&worker, &worker.boot());
    let config = kubelet_config(&worker);
    assert_eq!(config["maxPods"].as_u64(), Some(250), "{config:?}");
    assert_eq!(config["kubeReserved"]["cpu"], "100m", "{config:?}");
    assert_eq!(config["evictionHard"]["memory.available"], "200Mi");
    assert_eq!(config["cgroupDriver"], "systemd");
    assert_eq!(config["clusterDNS"][0], "10.96.0.10");

    let plain = cloud.bootstrap(InstanceGroupRole::Node, OsFamily::Debian, Cni::Cilium);
    let other = cloud.node("i-0b10000000000000c", &plain, Image::Ubuntu);
    assert_booted(&other, &other.boot());
    let config = kubelet_config(&other);
    assert_eq!(
        config.get("maxPods"),
        None,
        "neither the first control plane's nor the other group's settings: {config:?}"
    );
    assert!(config.get("kubeReserved").is_none(), "{config:?}");
    assert_eq!(config["cgroupDriver"], "systemd");

    // The flags changed since the first node: a control-plane node that
    // joins now deploys them, and the stored ClusterConfiguration has them.
    let second = cloud.node(
        "i-0b10000000000000d",
        &control_plane(
            &cloud,
            KubeletSpec::default(),
            api_server_arguments(&[("oidc-client-id", "second")]),
        ),
        Image::Ubuntu,
    );
    assert_booted(&second, &second.boot());
    let manifest = second.read("/etc/kubernetes/manifests/kube-apiserver.yaml");
    assert!(manifest.contains("- --oidc-client-id=second"), "{manifest}");
    assert!(!manifest.contains("oidc-client-id=first"), "{manifest}");
    let stored = cloud.etcd_value(KUBEADM_CONFIG_KEY);
    assert!(stored.contains("oidc-client-id"), "{stored}");
    assert!(stored.contains("\"second\""), "{stored}");
    assert_eq!(
        kubelet_config(&second).get("maxPods"),
        None,
        "the second control plane's group sets no kubelet settings"
    );
}
