//! The skiff cluster spec: what an operations team writes down and keeps in
//! the state store.
//!
//! A cluster is described by one [`Cluster`] document and any number of
//! [`InstanceGroup`] documents (`apiVersion: skiff.dev/v1alpha1`). This crate
//! is the bottom of the dependency graph: it knows how to parse, default,
//! validate and print those documents, and nothing about AWS or the store.
//!
//! The stored form of a spec is always *complete*: [`defaults`] fills in
//! every value skiff would otherwise choose silently, so that reading the
//! stored YAML tells an operator exactly what will be built.
#![deny(missing_docs)]

pub mod addons;
pub mod architecture;
pub mod cidr;
pub mod cluster;
pub mod component_arguments;
pub mod control_plane;
pub mod defaults;
pub mod document;
pub mod etcd;
pub mod instance_group;
pub mod kubelet;
pub mod meta;
pub mod new_cluster;
pub mod node_labels;
pub mod runtime;
pub mod text;
pub mod validation;
pub mod version;
pub mod windows;

pub use addons::{Addon, AddonRelease, AddonSpec, AddonsSpec, PinnedImage};
pub use architecture::Architecture;
pub use cluster::{
    ApiSpec, Cluster, ClusterSpec, ClusterSubnet, Cni, LoadBalancerSpec, LoadBalancerType,
    NetworkingSpec, SubnetType, Topology,
};
pub use component_arguments::{Component, ComponentSpec, HostPathMount};
pub use control_plane::{
    check_audit_policy, ApiServerSpec, AuditPolicyError, AuditSpec, ControlPlaneSpec,
};
pub use document::{ClusterBundle, DocumentError};
pub use etcd::{
    BackupInterval, EtcdBackupsSpec, EtcdSpec, EtcdTopology, InvalidDuration,
    EXTERNAL_ETCD_MEMBER_COUNTS,
};
pub use instance_group::{
    InstanceGroup, InstanceGroupRole, InstanceGroupSpec, MixedInstancesPolicy, OsFamily,
    RootVolume, SpotSpec, Taint,
};
pub use kubelet::KubeletSpec;
pub use meta::{IntOrPercent, ObjectMeta, RollingUpdate};
pub use runtime::ContainerRuntime;
pub use validation::{
    validate, ClusterNameError, Diagnostic, DnsLabelError, DnsNameError, Severity, ValidationError,
};
pub use version::{InvalidKubernetesVersion, KubernetesVersion, VersionChangeError};

/// The `apiVersion` every skiff document carries.
pub const API_VERSION: &str = "skiff.dev/v1alpha1";

/// The `kind` of a cluster document.
pub const KIND_CLUSTER: &str = "Cluster";

/// The `kind` of an instance-group document.
pub const KIND_INSTANCE_GROUP: &str = "InstanceGroup";

/// The suffix that selects gossip mode: such a cluster uses no Route53 at all
/// and addresses its API through the load balancer's own DNS name.
pub const GOSSIP_SUFFIX: &str = ".k8s.local";

/// The label that ties an instance group to its cluster.
pub const CLUSTER_LABEL: &str = "skiff.dev/cluster";
