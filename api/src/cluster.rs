//! The `Cluster` document: network, control-plane endpoint, DNS, networking
//! and access settings shared by every instance group.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::addons::AddonsSpec;
use crate::control_plane::ControlPlaneSpec;
use crate::etcd::EtcdSpec;
use crate::kubelet::KubeletSpec;
use crate::meta::{ObjectMeta, RollingUpdate};
use crate::runtime::ContainerRuntime;
use crate::version::KubernetesVersion;
use crate::GOSSIP_SUFFIX;

/// A Kubernetes cluster on AWS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cluster {
    /// Always `skiff.dev/v1alpha1`.
    pub api_version: String,
    /// Always `Cluster`.
    pub kind: String,
    /// `metadata.name` is the cluster's DNS name, e.g. `c1.example.com`.
    pub metadata: ObjectMeta,
    /// What to build.
    pub spec: ClusterSpec,
}

impl Cluster {
    /// The cluster's name (its DNS name).
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// Whether the cluster uses gossip mode (no Route53; name ends in `.k8s.local`).
    pub fn is_gossip(&self) -> bool {
        self.metadata.name.ends_with(GOSSIP_SUFFIX)
    }

    /// The name clients use for the API server: `api.<cluster>`.
    pub fn api_dns_name(&self) -> String {
        format!("api.{}", self.metadata.name)
    }

    /// The region every zone of the cluster lies in.
    pub fn region(&self) -> &str {
        self.spec.region.as_deref().unwrap_or_default()
    }

    /// The zones the cluster's subnets cover, in spec order, without repeats.
    pub fn zones(&self) -> Vec<&str> {
        let mut zones: Vec<&str> = Vec::new();
        for subnet in &self.spec.subnets {
            if !zones.contains(&subnet.zone.as_str()) {
                zones.push(subnet.zone.as_str());
            }
        }
        zones
    }
}

/// The desired state of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSpec {
    /// The Kubernetes release every node runs, e.g. `1.34.2`.
    pub kubernetes_version: KubernetesVersion,
    /// The AWS region; defaults to the region of the subnets' zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The VPC's address range.
    #[serde(rename = "networkCIDR")]
    pub network_cidr: String,
    /// An existing VPC to build in (shared: skiff reads it, never modifies or deletes it).
    #[serde(rename = "networkID", default, skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
    /// `public`: nodes in public subnets; `private`: nodes in private subnets
    /// behind a NAT gateway per zone, with utility subnets for the load balancer.
    pub topology: Topology,
    /// The subnets, one or more per zone.
    pub subnets: Vec<ClusterSubnet>,
    /// How clients reach the Kubernetes API.
    #[serde(default)]
    pub api: ApiSpec,
    /// The Route53 hosted zone holding `api.<cluster>`; when unset, the zone
    /// whose name is the longest suffix of the cluster name is used. Ignored
    /// for gossip clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_zone: Option<String>,
    /// Pod networking.
    #[serde(default)]
    pub networking: NetworkingSpec,
    /// An SSH public key (OpenSSH format) installed on every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_public_key: Option<String>,
    /// CIDRs allowed to reach the Kubernetes API.
    #[serde(rename = "kubernetesAPIAccess", default = "everywhere")]
    pub kubernetes_api_access: Vec<String>,
    /// CIDRs allowed to reach nodes over SSH.
    #[serde(default = "everywhere")]
    pub ssh_access: Vec<String>,
    /// Tags put on every AWS resource of the cluster.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cloud_labels: BTreeMap<String, String>,
    /// The default rolling-update budget of every instance group.
    #[serde(default)]
    pub rolling_update: RollingUpdate,
    /// etcd backups of the control plane.
    #[serde(default)]
    pub etcd: EtcdSpec,
    /// Settings of the control-plane components (the API server's audit
    /// log, each component's extra flags and host folders).
    #[serde(default)]
    pub control_plane: ControlPlaneSpec,
    /// The kubelet settings of every node; a group's `spec.kubelet` is
    /// merged over them.
    #[serde(default, skip_serializing_if = "KubeletSpec::is_empty")]
    pub kubelet: KubeletSpec,
    /// The container runtime of every node (`containerd`, the default, or
    /// `cri-o`); an instance group may choose another.
    #[serde(default, skip_serializing_if = "ContainerRuntime::is_default")]
    pub container_runtime: ContainerRuntime,
    /// The addons installed beside the pod network (cloud-controller-manager,
    /// EBS CSI driver, metrics-server, cluster-autoscaler): each on or off
    /// and its release overridable.
    #[serde(default, skip_serializing_if = "AddonsSpec::is_empty")]
    pub addons: AddonsSpec,
}

fn everywhere() -> Vec<String> {
    vec!["0.0.0.0/0".to_string()]
}

/// Where nodes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    /// Nodes in public subnets with public addresses.
    Public,
    /// Nodes in private subnets; outbound traffic through NAT gateways.
    Private,
}

impl fmt::Display for Topology {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Topology::Public => "public",
            Topology::Private => "private",
        })
    }
}

/// One subnet of the cluster's network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSubnet {
    /// The name instance groups use to refer to this subnet.
    pub name: String,
    /// The availability zone, e.g. `us-east-1a`.
    pub zone: String,
    /// The subnet's address range, inside `networkCIDR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    /// What the subnet is for.
    #[serde(rename = "type")]
    pub subnet_type: SubnetType,
    /// An existing subnet to use instead of creating one (shared: never modified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// The role of a subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubnetType {
    /// Routed to the internet gateway; instances get public addresses.
    Public,
    /// Routed through the zone's NAT gateway; no public addresses.
    Private,
    /// Public subnets of a private cluster, holding NAT gateways, the load
    /// balancer and bastions.
    Utility,
}

impl SubnetType {
    /// Whether the subnet routes to the internet gateway.
    pub fn is_public_routed(self) -> bool {
        matches!(self, SubnetType::Public | SubnetType::Utility)
    }
}

impl fmt::Display for SubnetType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            SubnetType::Public => "Public",
            SubnetType::Private => "Private",
            SubnetType::Utility => "Utility",
        })
    }
}

/// How the Kubernetes API is exposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiSpec {
    /// The network load balancer in front of the control plane.
    #[serde(default)]
    pub load_balancer: LoadBalancerSpec,
}

/// The API server's load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancerSpec {
    /// `Public` (internet-facing) or `Internal` (reachable inside the VPC only).
    #[serde(rename = "type", default)]
    pub load_balancer_type: LoadBalancerType,
}

/// Whether the API load balancer faces the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum LoadBalancerType {
    /// Internet-facing.
    #[default]
    Public,
    /// Internal to the VPC.
    Internal,
}

impl fmt::Display for LoadBalancerType {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            LoadBalancerType::Public => "Public",
            LoadBalancerType::Internal => "Internal",
        })
    }
}

/// Pod networking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkingSpec {
    /// The CNI plugin the first control-plane node installs.
    #[serde(default)]
    pub cni: Cni,
    /// Addresses for pods; must not overlap the network or the services.
    #[serde(rename = "podCIDR", default = "default_pod_cidr")]
    pub pod_cidr: String,
    /// Addresses for services.
    #[serde(rename = "serviceCIDR", default = "default_service_cidr")]
    pub service_cidr: String,
    /// The cluster DNS service address, inside `serviceCIDR`.
    #[serde(rename = "clusterDNS", default = "default_cluster_dns")]
    pub cluster_dns: String,
}

/// The default pod range: outside the usual VPC ranges, as kops chooses it.
pub const DEFAULT_POD_CIDR: &str = "100.96.0.0/11";
/// The default service range, as kubeadm chooses it.
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";
/// The default cluster DNS address: the tenth address of the service range.
pub const DEFAULT_CLUSTER_DNS: &str = "10.96.0.10";

fn default_pod_cidr() -> String {
    DEFAULT_POD_CIDR.to_string()
}

fn default_service_cidr() -> String {
    DEFAULT_SERVICE_CIDR.to_string()
}

fn default_cluster_dns() -> String {
    DEFAULT_CLUSTER_DNS.to_string()
}

impl Default for NetworkingSpec {
    fn default() -> Self {
        NetworkingSpec {
            cni: Cni::default(),
            pod_cidr: default_pod_cidr(),
            service_cidr: default_service_cidr(),
            cluster_dns: default_cluster_dns(),
        }
    }
}

/// The CNI plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Cni {
    /// Cilium, VXLAN overlay (8472/udp).
    #[default]
    Cilium,
    /// Calico, BGP (179/tcp) with IP-in-IP.
    Calico,
    /// Flannel, VXLAN overlay (8472/udp).
    Flannel,
}

impl fmt::Display for Cni {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Cni::Cilium => "cilium",
            Cni::Calico => "calico",
            Cni::Flannel => "flannel",
        })
    }
}
