//! The `InstanceGroup` document: a set of identical instances (an auto
//! scaling group per zone for the control plane, one group for nodes).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::kubelet::KubeletSpec;
use crate::meta::{ObjectMeta, RollingUpdateOverride};
use crate::runtime::ContainerRuntime;

/// A group of identical instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceGroup {
    /// Always `skiff.dev/v1alpha1`.
    pub api_version: String,
    /// Always `InstanceGroup`.
    pub kind: String,
    /// `metadata.name` names the group inside its cluster; the label
    /// `skiff.dev/cluster` names the cluster.
    pub metadata: ObjectMeta,
    /// What to run.
    pub spec: InstanceGroupSpec,
}

impl InstanceGroup {
    /// The group's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }
}

/// The desired state of an instance group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceGroupSpec {
    /// What the instances do.
    pub role: InstanceGroupRole,
    /// The EC2 instance type, e.g. `t3.medium`.
    pub machine_type: String,
    /// An AMI ID (`ami-...`) or `OWNER/NAME-PATTERN`, resolved to the newest
    /// matching image when the plan is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The operating-system family of the image, which picks the package
    /// manager of the bootstrap (`debian`: apt; `rhel`: dnf), or a Windows
    /// Server worker group (`windows`: PowerShell user-data; `crate::windows`).
    #[serde(default)]
    pub os_family: OsFamily,
    /// The fewest instances.
    pub min_size: u32,
    /// The most instances.
    pub max_size: u32,
    /// Names of cluster subnets to launch into.
    #[serde(default)]
    pub subnets: Vec<String>,
    /// The root disk.
    #[serde(default)]
    pub root_volume: RootVolume,
    /// Run on spot capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot: Option<SpotSpec>,
    /// Mix instance types and on-demand/spot capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixed_instances_policy: Option<MixedInstancesPolicy>,
    /// Labels every node of the group registers with.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_labels: BTreeMap<String, String>,
    /// Taints every node of the group registers with, as `key=value:Effect`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    /// Extra tags on the group's instances (on top of the cluster's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cloud_labels: BTreeMap<String, String>,
    /// Overrides of the cluster's rolling-update budget.
    #[serde(default, skip_serializing_if = "is_default_override")]
    pub rolling_update: RollingUpdateOverride,
    /// Kubelet settings of this group's nodes, merged over the cluster's
    /// `spec.kubelet` (a field set here wins; maps merge key by key).
    #[serde(default, skip_serializing_if = "KubeletSpec::is_empty")]
    pub kubelet: KubeletSpec,
    /// The container runtime of the group's nodes, when not the cluster's
    /// `spec.containerRuntime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_runtime: Option<ContainerRuntime>,
}

impl InstanceGroupSpec {
    /// The runtime the group's nodes run: its own choice, else the cluster's.
    pub fn container_runtime_in(&self, cluster: &crate::cluster::ClusterSpec) -> ContainerRuntime {
        self.container_runtime.unwrap_or(cluster.container_runtime)
    }
}

impl InstanceGroupSpec {
    /// Every instance type the group may launch: `machineType`, then those
    /// of `mixedInstancesPolicy.instanceTypes` (as written).
    pub fn machine_types(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.machine_type.as_str()).chain(
            self.mixed_instances_policy
                .iter()
                .flat_map(|policy| policy.instance_types.iter().map(String::as_str)),
        )
    }
}

fn is_default_override(value: &RollingUpdateOverride) -> bool {
    *value == RollingUpdateOverride::default()
}

/// What an instance group's instances do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum InstanceGroupRole {
    /// Control-plane nodes (API server, etcd, scheduler, controller manager).
    ControlPlane,
    /// Worker nodes.
    Node,
    /// SSH jump hosts.
    Bastion,
    /// Members of an external etcd cluster (`spec.etcd.topology: external`),
    /// one instance per group.
    Etcd,
}

impl fmt::Display for InstanceGroupRole {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            InstanceGroupRole::ControlPlane => "ControlPlane",
            InstanceGroupRole::Node => "Node",
            InstanceGroupRole::Bastion => "Bastion",
            InstanceGroupRole::Etcd => "Etcd",
        })
    }
}

impl FromStr for InstanceGroupRole {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "controlplane" | "master" => Ok(InstanceGroupRole::ControlPlane),
            "node" | "nodes" | "worker" => Ok(InstanceGroupRole::Node),
            "bastion" | "bastions" => Ok(InstanceGroupRole::Bastion),
            "etcd" => Ok(InstanceGroupRole::Etcd),
            _ => Err(format!(
                "{text:?} is not a role; use ControlPlane, Node, Bastion or Etcd"
            )),
        }
    }
}

/// The operating-system family of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OsFamily {
    /// Debian and Ubuntu (apt).
    #[default]
    Debian,
    /// Amazon Linux 2023, RHEL, Rocky, Alma (dnf).
    Rhel,
    /// Windows Server 2022 or 2025 (worker groups only; PowerShell user-data).
    Windows,
}

impl OsFamily {
    /// The image `create` chooses for this family: the newest Ubuntu 24.04 LTS
    /// or Amazon Linux 2023 image of their publishers.
    pub fn default_image(self) -> &'static str {
        match self {
            OsFamily::Debian => {
                "099720109477/ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
            }
            OsFamily::Rhel => "137112412989/al2023-ami-2023.*-kernel-6.1-x86_64",
            OsFamily::Windows => crate::windows::DEFAULT_IMAGE,
        }
    }

    /// Whether the family is Windows (no cloud-init, no shell).
    pub fn is_windows(self) -> bool {
        self == OsFamily::Windows
    }
}

impl fmt::Display for OsFamily {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            OsFamily::Debian => "debian",
            OsFamily::Rhel => "rhel",
            OsFamily::Windows => "windows",
        })
    }
}

/// The root EBS volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RootVolume {
    /// Size in GiB.
    #[serde(default = "default_volume_size")]
    pub size: u32,
    /// EBS volume type.
    #[serde(rename = "type", default = "default_volume_type")]
    pub volume_type: String,
    /// Provisioned IOPS (gp3, io1, io2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<u32>,
    /// Provisioned throughput in MiB/s (gp3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<u32>,
    /// Whether the volume is encrypted.
    #[serde(default = "default_true")]
    pub encrypted: bool,
}

fn default_volume_size() -> u32 {
    64
}

fn default_volume_type() -> String {
    "gp3".to_string()
}

fn default_true() -> bool {
    true
}

impl Default for RootVolume {
    fn default() -> Self {
        RootVolume {
            size: default_volume_size(),
            volume_type: default_volume_type(),
            iops: None,
            throughput: None,
            encrypted: true,
        }
    }
}

/// Spot capacity for every instance of the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpotSpec {
    /// The most to pay per hour, in USD (default: the on-demand price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<String>,
}

/// A mix of instance types and purchase options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MixedInstancesPolicy {
    /// Instance types to choose from, beside `machineType`.
    pub instance_types: Vec<String>,
    /// On-demand instances before any spot instance is used.
    #[serde(default)]
    pub on_demand_base_capacity: u32,
    /// Percentage of on-demand instances above the base.
    #[serde(default = "hundred")]
    pub on_demand_percentage_above_base: u32,
    /// `price-capacity-optimized`, `capacity-optimized` or `lowest-price`.
    #[serde(default = "default_spot_strategy")]
    pub spot_allocation_strategy: String,
}

fn hundred() -> u32 {
    100
}

fn default_spot_strategy() -> String {
    "price-capacity-optimized".to_string()
}

/// A node taint, written `key=value:Effect` or `key:Effect`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Taint {
    /// The taint key.
    pub key: String,
    /// The taint value (may be empty).
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

impl fmt::Display for Taint {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(formatter, "{}:{}", self.key, self.effect)
        } else {
            write!(formatter, "{}={}:{}", self.key, self.value, self.effect)
        }
    }
}

impl FromStr for Taint {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (rest, effect) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("{text:?} is not a taint like key=value:NoSchedule"))?;
        if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            return Err(format!(
                "taint {text:?} has effect {effect:?}; use NoSchedule, PreferNoSchedule or NoExecute"
            ));
        }
        let (key, value) = match rest.split_once('=') {
            Some((key, value)) => (key, value),
            None => (rest, ""),
        };
        if key.is_empty() {
            return Err(format!("taint {text:?} has no key"));
        }
        Ok(Taint {
            key: key.to_string(),
            value: value.to_string(),
            effect: effect.to_string(),
        })
    }
}

impl Serialize for Taint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Taint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taints_parse_both_forms() {
        let full: Taint = "dedicated=gpu:NoSchedule".parse().expect("parses");
        assert_eq!(
            (full.key.as_str(), full.value.as_str()),
            ("dedicated", "gpu")
        );
        let bare: Taint = "spot:PreferNoSchedule".parse().expect("parses");
        assert_eq!(bare.to_string(), "spot:PreferNoSchedule");
        assert!("dedicated=gpu:Sometimes".parse::<Taint>().is_err());
        assert!("=x:NoSchedule".parse::<Taint>().is_err());
    }

    #[test]
    fn roles_accept_common_spellings() {
        assert_eq!(
            "master".parse::<InstanceGroupRole>(),
            Ok(InstanceGroupRole::ControlPlane)
        );
        assert_eq!(
            "control-plane".parse::<InstanceGroupRole>(),
            Ok(InstanceGroupRole::ControlPlane)
        );
        assert!("database".parse::<InstanceGroupRole>().is_err());
    }
}
