//! Rolling updates and cluster validation.
//!
//! After `update cluster --yes` gives a group a new launch-template version,
//! its running instances are still the old ones. A rolling update replaces
//! exactly the out-of-date instances (launched from another version than the
//! group's current one), group by group: bastions, then control-plane groups
//! strictly one instance at a time, then node groups with surge.
//!
//! With `maxSurge` S the group first grows by S so replacements launch
//! before anything is removed; each round then drains and terminates up to
//! `S + maxUnavailable` old instances, letting the group launch their
//! replacements, and the last round terminates the rest while shrinking the
//! group back. A group of N instances takes about N / S rounds, never has
//! more than S extra instances, and never fewer in service than its desired
//! size minus `maxUnavailable`.
//!
//! Every step is recorded through [`ProgressStore`] before it is taken, so a
//! rolling update killed at any point and run again continues where it
//! stopped, restores the sizes of a group it had grown, and never replaces
//! an instance twice (an instance launched from the current version is up
//! to date by definition).
//!
//! The roller decides; it acts through three seams, each a small trait
//! with one real implementation and in-memory fakes in the tests:
//! * [`GroupOperations`]: describe groups, set their capacity, terminate an
//!   instance. [`skiff_providers::AwsProvider`] implements it ([`aws`]).
//! * [`ClusterApi`]: the cluster's Kubernetes API. The real implementation
//!   ([`kubernetes`]) cordons, drains with the eviction API and checks
//!   readiness; `--cloudonly` runs without it.
//! * [`ProgressStore`] and [`EventSink`]: where progress is recorded and
//!   where events go (the CLI keeps progress in the state store).
#![deny(missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub mod aws;
pub mod groups;
pub mod kubernetes;
pub mod roll;
pub mod validate;

pub use groups::{GroupOperations, GroupView, InstanceView, Lifecycle};
pub use roll::{roll_groups, GroupPlan, RollOptions};

/// A failure of a rolling update or validation.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] skiff_providers::ProviderError),
    /// A Kubernetes call failed.
    #[error("Kubernetes API: {0}")]
    Kubernetes(String),
    /// Draining a node did not finish.
    #[error("draining node {node} (instance {instance}) did not finish within {timeout:?}; pods that would not leave: {pods}")]
    DrainTimeout {
        /// The node.
        node: String,
        /// Its instance.
        instance: String,
        /// How long we waited.
        timeout: Duration,
        /// The pods still there, `namespace/name`.
        pods: String,
    },
    /// Validation did not succeed in time.
    #[error("instance group {group}: {what} did not happen within {timeout:?}: {detail}")]
    ValidationTimeout {
        /// The group.
        group: String,
        /// What was awaited.
        what: String,
        /// How long we waited.
        timeout: Duration,
        /// The last thing seen.
        detail: String,
    },
    /// An instance group's auto scaling group does not exist.
    #[error("auto scaling group {auto_scaling_group} of instance group {group} does not exist; run `skiff update cluster --yes` first")]
    GroupNotFound {
        /// The instance group.
        group: String,
        /// Its auto scaling group.
        auto_scaling_group: String,
    },
    /// Replacing a group's nodes would break the Kubernetes version-skew
    /// policy (a kubelet newer than the API server).
    #[error("{0}")]
    VersionSkew(String),
    /// Recording progress failed.
    #[error("recording rolling-update progress failed: {0}")]
    Progress(String),
    /// The operation was interrupted.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// Taking an external etcd member down would cost the cluster its quorum.
    #[error("not taking etcd member {member} (instance {instance}) down: {detail}")]
    EtcdQuorum {
        /// The member (its instance group's name).
        member: String,
        /// Its instance.
        instance: String,
        /// What the other members reported, and what to do.
        detail: String,
    },
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, RolloutError>;

/// Access to the cluster's Kubernetes API, for draining and validating.
#[async_trait]
pub trait ClusterApi: Send + Sync {
    /// The node of an instance (matched by private IP or DNS name), if registered.
    async fn node_of(&self, instance: &InstanceView) -> Result<Option<String>>;
    /// Marks a node unschedulable.
    async fn cordon(&self, node: &str) -> Result<()>;
    /// Evicts every pod that may be evicted (DaemonSet pods stay), honouring
    /// PodDisruptionBudgets (a 429 is retried until `timeout`).
    async fn drain(&self, node: &str, instance: &str, timeout: Duration) -> Result<()>;
    /// Whether the node is Ready.
    async fn node_ready(&self, node: &str) -> Result<bool>;
    /// Whether the control plane is healthy: every control-plane node Ready
    /// and its static pods running (an `Err` is a failure to find out).
    async fn control_plane_healthy(&self) -> Result<ControlPlaneHealth>;
    /// The API server's version (`/version`) and each node's kubelet
    /// version (`status.nodeInfo.kubeletVersion`).
    async fn versions(&self) -> Result<ClusterVersions>;
}

/// What [`ClusterApi::versions`] found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterVersions {
    /// The API server's `gitVersion`, e.g. `v1.35.1`.
    pub api_server: String,
    /// Each node's kubelet version, by node name.
    pub kubelets: Vec<NodeVersion>,
}

/// One node's kubelet version.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeVersion {
    /// The node's name.
    pub node: String,
    /// Its kubelet's version, e.g. `v1.35.1`.
    pub kubelet: String,
}

/// What [`ClusterApi::control_plane_healthy`] found.
///
/// Being unhealthy is an answer, not a failure: validation keeps polling
/// until it changes, and reports every problem at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlPlaneHealth {
    /// Every control-plane node is Ready with its static pods running.
    Healthy,
    /// What is wrong, one problem per entry (never empty).
    Unhealthy {
        /// The problems, e.g. `control-plane node cp-a is not Ready (...)`.
        problems: Vec<String>,
    },
}

impl ControlPlaneHealth {
    /// Healthy when nothing is wrong.
    pub fn from_problems(problems: Vec<String>) -> Self {
        if problems.is_empty() {
            ControlPlaneHealth::Healthy
        } else {
            ControlPlaneHealth::Unhealthy { problems }
        }
    }

    /// Whether the control plane is healthy.
    pub fn is_healthy(&self) -> bool {
        matches!(self, ControlPlaneHealth::Healthy)
    }

    /// What is wrong (empty when healthy).
    pub fn problems(&self) -> &[String] {
        match self {
            ControlPlaneHealth::Healthy => &[],
            ControlPlaneHealth::Unhealthy { problems } => problems,
        }
    }
}

/// `healthy`, or the problems one per line.
impl fmt::Display for ControlPlaneHealth {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlPlaneHealth::Healthy => formatter.write_str("healthy"),
            ControlPlaneHealth::Unhealthy { problems } => formatter.write_str(&problems.join("\n")),
        }
    }
}

/// Rolling-update progress, kept in the state store (`rollout.json`) so
/// that an interrupted run continues.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Groups this rolling update grew, with their sizes before it did.
    #[serde(default)]
    pub grown: BTreeMap<String, OriginalSize>,
    /// Instances terminated so far, by group (for the record and reports).
    #[serde(default)]
    pub replaced: BTreeMap<String, BTreeSet<String>>,
    /// With `--force`: the instances each group had when the run reached
    /// it, all to be replaced once (and not the replacements).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub forced: BTreeMap<String, BTreeSet<String>>,
}

/// A group's sizes before a rolling update changed them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OriginalSize {
    /// Desired capacity.
    pub desired: u32,
    /// Maximum size.
    pub max: u32,
}

/// What an external etcd member last reported of itself
/// (`<cluster>/etcd/health/<member>`, written every minute by the member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberHealth {
    /// The member's name (its instance group's).
    pub member: String,
    /// The instance that reported.
    pub instance: String,
    /// Whether `etcdctl endpoint health` succeeded at the member (which
    /// needs the cluster's quorum).
    pub healthy: bool,
    /// How many voting members its member list had.
    pub voting_members: usize,
    /// How long ago it reported.
    pub age: Duration,
}

/// Where progress is kept (and the state store's other records a roll reads).
#[async_trait]
pub trait ProgressStore: Send + Sync {
    /// Loads the progress of an earlier, interrupted run (or nothing).
    async fn load(&self) -> Result<Progress>;
    /// Saves progress; called before each step is taken.
    async fn save(&self, progress: &Progress) -> Result<()>;
    /// The external etcd members' health reports; `None` when there is
    /// nothing to ask (no member has reported: members booted by a skiff
    /// without reports, which their roll replaces).
    async fn etcd_member_health(&self) -> Result<Option<Vec<MemberHealth>>> {
        Ok(None)
    }
}

/// Events of a rolling update, for progress displays and `-o json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum Event {
    /// A group starts.
    #[serde(rename_all = "camelCase")]
    GroupStarted {
        /// The instance group.
        group: String,
        /// Out-of-date instances.
        outdated: usize,
        /// Instances in the group.
        total: usize,
        /// Surge used.
        surge: u32,
        /// Unavailability allowed.
        unavailable: u32,
    },
    /// The group was grown for surge.
    #[serde(rename_all = "camelCase")]
    Grown {
        /// The instance group.
        group: String,
        /// The new desired capacity.
        desired: u32,
    },
    /// A node was drained.
    #[serde(rename_all = "camelCase")]
    Drained {
        /// The instance group.
        group: String,
        /// The instance.
        instance: String,
        /// The node.
        node: String,
    },
    /// An instance was terminated.
    #[serde(rename_all = "camelCase")]
    Terminated {
        /// The instance group.
        group: String,
        /// The instance.
        instance: String,
        /// Whether the group shrank instead of replacing it.
        shrink: bool,
    },
    /// The group validated after a round.
    #[serde(rename_all = "camelCase")]
    Validated {
        /// The instance group.
        group: String,
        /// Up-to-date instances in service.
        current: usize,
        /// Instances in the group.
        total: usize,
    },
    /// A group is done.
    #[serde(rename_all = "camelCase")]
    GroupDone {
        /// The instance group.
        group: String,
        /// Instances replaced in this run.
        replaced: usize,
    },
}

/// Receives events.
pub trait EventSink: Send + Sync {
    /// One event.
    fn event(&self, event: &Event);
}
