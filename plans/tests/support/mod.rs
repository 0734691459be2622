//! The spec fixture the planner's integration tests share.

use std::collections::BTreeMap;

use skiff_api::new_cluster::NewClusterOptions;
use skiff_api::{Cni, LoadBalancerType, OsFamily, Topology};

/// `create cluster`'s options for a cluster over `zones`: three control-plane
/// nodes from three zones on, Calico, a public API load balancer.
pub fn options(name: &str, zones: &[&str], topology: Topology) -> NewClusterOptions {
    NewClusterOptions {
        name: name.to_string(),
        zones: zones.iter().map(|zone| zone.to_string()).collect(),
        control_plane_zones: Vec::new(),
        control_plane_count: if zones.len() >= 3 { 3 } else { 1 },
        control_plane_size: "t3.medium".into(),
        node_count: 3,
        node_size: "t3.medium".into(),
        kubernetes_version: "1.34.2".parse().expect("valid"),
        topology,
        cni: Cni::Calico,
        dns_zone: None,
        network_cidr: "10.0.0.0/16".into(),
        network_id: None,
        ssh_public_key: Some("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO2f operator@laptop".into()),
        api_load_balancer_type: LoadBalancerType::Public,
        cloud_labels: BTreeMap::new(),
        image: None,
        os_family: OsFamily::Debian,
        admin_access: vec!["0.0.0.0/0".into()],
        ssh_access: vec!["0.0.0.0/0".into()],
    }
}
