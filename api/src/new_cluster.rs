//! Building a complete spec from the few choices `create cluster` asks for,
//! the way kops does: one subnet per zone carved from the network, utility
//! subnets for private topology, one control-plane group per control-plane
//! instance (spread over the zones), and one node group per zone.

use std::collections::BTreeMap;

use crate::cidr;
use crate::cluster::{
    ApiSpec, Cluster, ClusterSpec, ClusterSubnet, Cni, LoadBalancerSpec, LoadBalancerType,
    NetworkingSpec, SubnetType, Topology,
};
use crate::defaults::apply_defaults;
use crate::document::ClusterBundle;
use crate::etcd::EtcdSpec;
use crate::instance_group::{
    InstanceGroup, InstanceGroupRole, InstanceGroupSpec, OsFamily, RootVolume,
};
use crate::meta::{ObjectMeta, RollingUpdate, RollingUpdateOverride};
use crate::version::KubernetesVersion;
use crate::{API_VERSION, CLUSTER_LABEL, KIND_CLUSTER, KIND_INSTANCE_GROUP};

/// The instance type for control plane and nodes when none is given.
pub const DEFAULT_MACHINE_TYPE: &str = "t3.medium";
/// The network when none is given.
pub const DEFAULT_NETWORK_CIDR: &str = "10.0.0.0/16";

/// Why [`new_cluster`] cannot build a spec from the choices given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NewClusterError {
    /// No availability zone was named.
    #[error("--zones is required: name at least one availability zone, e.g. --zones us-east-1a")]
    NoZones,
    /// The network is not a usable CIDR.
    #[error("--network-cidr: {0}")]
    NetworkCidr(cidr::InvalidCidr),
    /// The network cannot be carved into one subnet per zone.
    #[error("--network-cidr: {0}")]
    Carve(cidr::CarveError),
}

/// The choices of `skiff create cluster`.
#[derive(Debug, Clone)]
pub struct NewClusterOptions {
    /// The cluster's DNS name.
    pub name: String,
    /// Zones for subnets and node groups.
    pub zones: Vec<String>,
    /// Zones for control-plane groups; defaults to `zones`.
    pub control_plane_zones: Vec<String>,
    /// How many control-plane instances (each its own group).
    pub control_plane_count: u32,
    /// Control-plane instance type.
    pub control_plane_size: String,
    /// How many worker nodes in all, spread over the zones.
    pub node_count: u32,
    /// Worker instance type.
    pub node_size: String,
    /// Kubernetes release.
    pub kubernetes_version: KubernetesVersion,
    /// Public or private topology.
    pub topology: Topology,
    /// CNI plugin.
    pub cni: Cni,
    /// Route53 hosted zone.
    pub dns_zone: Option<String>,
    /// The VPC range.
    pub network_cidr: String,
    /// A shared VPC.
    pub network_id: Option<String>,
    /// SSH public key text.
    pub ssh_public_key: Option<String>,
    /// API load balancer type.
    pub api_load_balancer_type: LoadBalancerType,
    /// Tags for every resource.
    pub cloud_labels: BTreeMap<String, String>,
    /// Image for every group (AMI ID or owner/name pattern).
    pub image: Option<String>,
    /// OS family of the image.
    pub os_family: OsFamily,
    /// CIDRs allowed to reach the API.
    pub admin_access: Vec<String>,
    /// CIDRs allowed to SSH.
    pub ssh_access: Vec<String>,
}

/// Builds the full spec. Fails when the zones are empty or the network is
/// too small to carve; everything else is left to validation so that every
/// problem is reported with its field path.
pub fn new_cluster(options: &NewClusterOptions) -> Result<ClusterBundle, NewClusterError> {
    if options.zones.is_empty() {
        return Err(NewClusterError::NoZones);
    }
    let network = cidr::parse(&options.network_cidr).map_err(NewClusterError::NetworkCidr)?;
    let carved = cidr::carve(&network, options.zones.len()).map_err(NewClusterError::Carve)?;

    let mut subnets = Vec::new();
    for (index, zone) in options.zones.iter().enumerate() {
        let (subnet_type, name) = match options.topology {
            Topology::Public => (SubnetType::Public, zone.clone()),
            Topology::Private => (SubnetType::Private, zone.clone()),
        };
        subnets.push(ClusterSubnet {
            name,
            zone: zone.clone(),
            cidr: Some(carved.zone_subnets[index].to_string()),
            subnet_type,
            id: None,
        });
    }
    if options.topology == Topology::Private {
        for (index, zone) in options.zones.iter().enumerate() {
            subnets.push(ClusterSubnet {
                name: format!("utility-{zone}"),
                zone: zone.clone(),
                cidr: Some(carved.utility_subnets[index].to_string()),
                subnet_type: SubnetType::Utility,
                id: None,
            });
        }
    }

    let cluster = Cluster {
        api_version: API_VERSION.to_string(),
        kind: KIND_CLUSTER.to_string(),
        metadata: ObjectMeta {
            name: options.name.clone(),
            labels: BTreeMap::new(),
        },
        spec: ClusterSpec {
            kubernetes_version: options.kubernetes_version,
            region: None,
            network_cidr: options.network_cidr.clone(),
            network_id: options.network_id.clone(),
            topology: options.topology,
            subnets,
            api: ApiSpec {
                load_balancer: LoadBalancerSpec {
                    load_balancer_type: options.api_load_balancer_type,
                },
            },
            dns_zone: options.dns_zone.clone(),
            networking: NetworkingSpec {
                cni: options.cni,
                ..NetworkingSpec::default()
            },
            ssh_public_key: options.ssh_public_key.clone(),
            kubernetes_api_access: options.admin_access.clone(),
            ssh_access: options.ssh_access.clone(),
            cloud_labels: options.cloud_labels.clone(),
            rolling_update: RollingUpdate::default(),
            etcd: EtcdSpec::default(),
            control_plane: Default::default(),
            kubelet: Default::default(),
            container_runtime: Default::default(),
            addons: Default::default(),
        },
    };

    let mut instance_groups = Vec::new();
    let control_plane_zones = if options.control_plane_zones.is_empty() {
        &options.zones
    } else {
        &options.control_plane_zones
    };
    let control_plane_per_zone = spread(options.control_plane_count, control_plane_zones.len());
    for (zone, count) in control_plane_zones.iter().zip(control_plane_per_zone) {
        for ordinal in 1..=count {
            let name = if count == 1 {
                format!("control-plane-{zone}")
            } else {
                format!("control-plane-{zone}-{ordinal}")
            };
            instance_groups.push(instance_group(
                options,
                &name,
                InstanceGroupRole::ControlPlane,
                &options.control_plane_size,
                1,
                zone,
            ));
        }
    }
    let nodes_per_zone = spread(options.node_count, options.zones.len());
    for (zone, count) in options.zones.iter().zip(nodes_per_zone) {
        if count > 0 {
            instance_groups.push(instance_group(
                options,
                &format!("nodes-{zone}"),
                InstanceGroupRole::Node,
                &options.node_size,
                count,
                zone,
            ));
        }
    }

    let mut bundle = ClusterBundle {
        cluster,
        instance_groups,
    };
    apply_defaults(&mut bundle);
    Ok(bundle)
}

/// Builds one instance group in the subnet of `zone` that the topology puts
/// nodes in (the subnet named after the zone).
fn instance_group(
    options: &NewClusterOptions,
    name: &str,
    role: InstanceGroupRole,
    machine_type: &str,
    size: u32,
    zone: &str,
) -> InstanceGroup {
    let mut labels = BTreeMap::new();
    labels.insert(CLUSTER_LABEL.to_string(), options.name.clone());
    InstanceGroup {
        api_version: API_VERSION.to_string(),
        kind: KIND_INSTANCE_GROUP.to_string(),
        metadata: ObjectMeta {
            name: name.to_string(),
            labels,
        },
        spec: InstanceGroupSpec {
            role,
            machine_type: machine_type.to_string(),
            image: options.image.clone(),
            os_family: options.os_family,
            min_size: size,
            max_size: size,
            subnets: vec![zone.to_string()],
            root_volume: RootVolume::default(),
            spot: None,
            mixed_instances_policy: None,
            node_labels: BTreeMap::new(),
            taints: Vec::new(),
            cloud_labels: BTreeMap::new(),
            rolling_update: RollingUpdateOverride::default(),
            kubelet: Default::default(),
            container_runtime: None,
        },
    }
}

/// Spreads `count` over `slots` as evenly as possible, earlier slots first:
/// 5 over 3 is 2, 2, 1.
pub fn spread(count: u32, slots: usize) -> Vec<u32> {
    if slots == 0 {
        return Vec::new();
    }
    let slots_u32 = u32::try_from(slots).unwrap_or(u32::MAX);
    let base = count / slots_u32;
    let extra = count % slots_u32;
    (0..slots_u32)
        .map(|index| base + u32::from(index < extra))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(topology: Topology) -> NewClusterOptions {
        NewClusterOptions {
            name: "c1.example.com".to_string(),
            zones: vec![
                "us-east-1a".into(),
                "us-east-1b".into(),
                "us-east-1c".into(),
            ],
            control_plane_zones: Vec::new(),
            control_plane_count: 3,
            control_plane_size: DEFAULT_MACHINE_TYPE.to_string(),
            node_count: 2,
            node_size: DEFAULT_MACHINE_TYPE.to_string(),
            kubernetes_version: crate::version::DEFAULT_VERSION.parse().expect("valid"),
            topology,
            cni: Cni::Cilium,
            dns_zone: None,
            network_cidr: DEFAULT_NETWORK_CIDR.to_string(),
            network_id: None,
            ssh_public_key: None,
            api_load_balancer_type: LoadBalancerType::Public,
            cloud_labels: BTreeMap::new(),
            image: None,
            os_family: OsFamily::Debian,
            admin_access: vec!["0.0.0.0/0".into()],
            ssh_access: vec!["0.0.0.0/0".into()],
        }
    }

    #[test]
    fn private_ha_cluster_has_utility_subnets_and_a_group_per_control_plane() {
        let bundle = new_cluster(&options(Topology::Private)).expect("builds");
        let types: Vec<SubnetType> = bundle
            .cluster
            .spec
            .subnets
            .iter()
            .map(|subnet| subnet.subnet_type)
            .collect();
        assert_eq!(
            types
                .iter()
                .filter(|kind| **kind == SubnetType::Private)
                .count(),
            3
        );
        assert_eq!(
            types
                .iter()
                .filter(|kind| **kind == SubnetType::Utility)
                .count(),
            3
        );
        let names: Vec<&str> = bundle
            .instance_groups
            .iter()
            .map(InstanceGroup::name)
            .collect();
        assert_eq!(
            names,
            [
                "control-plane-us-east-1a",
                "control-plane-us-east-1b",
                "control-plane-us-east-1c",
                "nodes-us-east-1a",
                "nodes-us-east-1b"
            ]
        );
        assert_eq!(bundle.cluster.spec.region.as_deref(), Some("us-east-1"));
        let report = crate::validation::validate(&bundle);
        assert!(report.is_ok(), "{report:?}");
    }

    #[test]
    fn spreads_evenly() {
        assert_eq!(spread(5, 3), [2, 2, 1]);
        assert_eq!(spread(2, 3), [1, 1, 0]);
        assert_eq!(spread(0, 2), [0, 0]);
    }

    #[test]
    fn three_control_planes_in_one_zone_get_ordinals() {
        let mut choices = options(Topology::Public);
        choices.zones = vec!["us-east-1a".into()];
        let bundle = new_cluster(&choices).expect("builds");
        let control_planes: Vec<&str> = bundle
            .instance_groups
            .iter()
            .filter(|group| group.spec.role == InstanceGroupRole::ControlPlane)
            .map(InstanceGroup::name)
            .collect();
        assert_eq!(
            control_planes,
            [
                "control-plane-us-east-1a-1",
                "control-plane-us-east-1a-2",
                "control-plane-us-east-1a-3"
            ]
        );
    }
}
