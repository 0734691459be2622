//! Realistic bootstrap configurations: the inputs of every test.

use std::collections::BTreeMap;

use skiff_api::{Cni, ContainerRuntime, InstanceGroupRole, OsFamily};
use skiff_templates::{EtcdBackups, EtcdMember, ExternalEtcd, NodeBootstrap, StateStoreLocation};

/// Every role, family and container runtime the renderer supports, with a
/// name for messages and files (`Node-rhel`: containerd, the default;
/// `Node-rhel-cri-o`). Bastions run no container runtime.
pub fn all_roles_and_families() -> Vec<(String, NodeBootstrap)> {
    let mut examples = Vec::new();
    for family in [OsFamily::Debian, OsFamily::Rhel] {
        for role in [
            InstanceGroupRole::ControlPlane,
            InstanceGroupRole::Node,
            InstanceGroupRole::Bastion,
        ] {
            examples.push((format!("{role}-{family}"), example(role, family)));
        }
        for role in [InstanceGroupRole::ControlPlane, InstanceGroupRole::Node] {
            let runtime = ContainerRuntime::CriO;
            examples.push((
                format!("{role}-{family}-{runtime}"),
                NodeBootstrap {
                    container_runtime: runtime,
                    ..example(role, family)
                },
            ));
        }
        // spec.etcd.topology: external: a member, and a control plane that
        // uses the members.
        examples.push((
            format!("Etcd-{family}"),
            external_etcd(example(InstanceGroupRole::Etcd, family)),
        ));
        examples.push((
            format!("ControlPlane-external-etcd-{family}"),
            external_etcd(example(InstanceGroupRole::ControlPlane, family)),
        ));
    }
    // A cluster with Windows worker groups and Calico: its control plane
    // installs Calico through the Tigera operator with the Windows data
    // plane (the family does not matter to that part of the script).
    examples.push((
        "ControlPlane-calico-windows-nodes-debian".to_string(),
        NodeBootstrap {
            cni: Cni::Calico,
            windows_nodes: true,
            ..example(InstanceGroupRole::ControlPlane, OsFamily::Debian)
        },
    ));
    examples
}

/// Three external etcd members at the top of their zones' subnets, as the
/// plan places them.
pub fn external_etcd_members() -> ExternalEtcd {
    ExternalEtcd {
        members: [(1, "10.0.31.254"), (2, "10.0.63.253"), (3, "10.0.95.252")]
            .into_iter()
            .map(|(ordinal, address)| EtcdMember {
                name: format!("etcd-{ordinal}"),
                address: address.parse().expect("address"),
            })
            .collect(),
    }
}

/// `config` in a cluster with external etcd.
pub fn external_etcd(config: NodeBootstrap) -> NodeBootstrap {
    NodeBootstrap {
        external_etcd: Some(external_etcd_members()),
        ..config
    }
}

/// A cluster like the ones `skiff create cluster` makes, with labels and
/// taints on the group so every template branch is exercised.
pub fn example(role: InstanceGroupRole, os_family: OsFamily) -> NodeBootstrap {
    let instance_group = match role {
        InstanceGroupRole::ControlPlane => "control-plane-us-east-1a",
        InstanceGroupRole::Node => "nodes-us-east-1a",
        InstanceGroupRole::Bastion => "bastions",
        InstanceGroupRole::Etcd => "etcd-1",
    };
    let (node_labels, taints) = match role {
        InstanceGroupRole::Node => (
            BTreeMap::from([
                ("team".to_string(), "payments".to_string()),
                ("example.com/accelerator".to_string(), "none".to_string()),
            ]),
            vec!["dedicated=payments:NoSchedule".parse().expect("taint")],
        ),
        _ => (BTreeMap::new(), Vec::new()),
    };
    NodeBootstrap {
        cluster_name: "c1.example.com".to_string(),
        instance_group: instance_group.to_string(),
        role,
        os_family,
        kubernetes_version: "1.34.2".parse().expect("version"),
        container_runtime: Default::default(),
        api_endpoint: "api.c1.example.com".to_string(),
        api_port: 443,
        api_cert_sans: vec![
            "api.c1.example.com".to_string(),
            "c1-api-0123456789abcdef.elb.us-east-1.amazonaws.com".to_string(),
        ],
        pod_cidr: "100.96.0.0/11".to_string(),
        service_cidr: "10.96.0.0/12".to_string(),
        cluster_dns: "10.96.0.10".to_string(),
        cni: Cni::Cilium,
        windows_nodes: false,
        node_labels,
        taints,
        state_store: StateStoreLocation {
            bucket: "skiff-state-example".to_string(),
            cluster_prefix: "team-a/c1.example.com".to_string(),
            region: "us-east-1".to_string(),
            endpoint: None,
            path_style: false,
            kms_key: None,
        },
        region: "us-east-1".to_string(),
        aws_endpoint: None,
        etcd_backups: EtcdBackups::default(),
        audit: Default::default(),
        kubelet: Default::default(),
        component_arguments: Default::default(),
        external_etcd: None,
        external_cloud_provider: false,
    }
}
