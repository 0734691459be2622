//! The cloud side of a rolling update as the roller sees it: groups of
//! instances ([`GroupView`], [`InstanceView`], [`Lifecycle`]) and the three
//! things it does to them ([`GroupOperations`]).
//!
//! The roller decides *when* to grow a group, which instance to terminate
//! and whether to shrink; it never talks to AWS itself. Keeping the levers
//! behind a small trait is what lets the scheduling (order, surge,
//! unavailability, resuming) be tested against an in-memory group in
//! milliseconds, while [`crate::aws`] holds the one real implementation and
//! the local AWS endpoint proves that side.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;

/// What the roller does to auto scaling groups.
///
/// Implemented by [`skiff_providers::AwsProvider`] (in [`crate::aws`]);
/// tests use an in-memory fake.
#[async_trait]
pub trait GroupOperations: Send + Sync {
    /// Describes auto scaling groups by name, with each instance's launch
    /// template version resolved. Groups that do not exist are left out.
    async fn describe_groups(&self, names: &[String]) -> Result<Vec<GroupView>>;

    /// Sets a group's desired capacity and maximum size (to grow it for
    /// surge, or to restore its sizes).
    async fn set_capacity(&self, group: &str, desired: u32, max: u32) -> Result<()>;

    /// Terminates an instance. With `shrink` the group's desired capacity
    /// drops by one (no replacement), otherwise the group launches a
    /// replacement. An instance that is already gone is not an error: an
    /// interrupted earlier run may have got that far.
    async fn terminate(&self, instance: &str, shrink: bool) -> Result<()>;
}

/// The auto scaling lifecycle state of an instance.
///
/// Serialized as AWS spells it (`InService`, `Terminating:Wait`, ...), so
/// JSON output and recorded progress read the same as the AWS console; a
/// state this version does not know is kept verbatim in [`Lifecycle::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Lifecycle {
    /// `Pending`: launching.
    Pending,
    /// `Pending:Wait`: held by a launch lifecycle hook.
    PendingWait,
    /// `Pending:Proceed`: a launch lifecycle hook completed.
    PendingProceed,
    /// `Quarantined`: held apart by auto scaling.
    Quarantined,
    /// `InService`: running and counted by the group.
    InService,
    /// `Terminating`: on its way out.
    Terminating,
    /// `Terminating:Wait`: held by a termination lifecycle hook.
    TerminatingWait,
    /// `Terminating:Proceed`: a termination lifecycle hook completed.
    TerminatingProceed,
    /// `Terminated`: gone.
    Terminated,
    /// `Detaching`: leaving the group, still running.
    Detaching,
    /// `Detached`: no longer in the group.
    Detached,
    /// `EnteringStandby`: moving to standby.
    EnteringStandby,
    /// `Standby`: in the group but not counted as in service.
    Standby,
    /// A state this version does not know (warm-pool states among them).
    Other(String),
}

impl Lifecycle {
    /// The state as AWS spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Lifecycle::Pending => "Pending",
            Lifecycle::PendingWait => "Pending:Wait",
            Lifecycle::PendingProceed => "Pending:Proceed",
            Lifecycle::Quarantined => "Quarantined",
            Lifecycle::InService => "InService",
            Lifecycle::Terminating => "Terminating",
            Lifecycle::TerminatingWait => "Terminating:Wait",
            Lifecycle::TerminatingProceed => "Terminating:Proceed",
            Lifecycle::Terminated => "Terminated",
            Lifecycle::Detaching => "Detaching",
            Lifecycle::Detached => "Detached",
            Lifecycle::EnteringStandby => "EnteringStandby",
            Lifecycle::Standby => "Standby",
            Lifecycle::Other(state) => state,
        }
    }

    /// Whether the instance is on its way out of the group (terminating or
    /// detaching): it is neither replaced again nor waited for.
    pub fn is_leaving(&self) -> bool {
        matches!(
            self,
            Lifecycle::Terminating
                | Lifecycle::TerminatingWait
                | Lifecycle::TerminatingProceed
                | Lifecycle::Terminated
                | Lifecycle::Detaching
                | Lifecycle::Detached
        )
    }
}

impl From<&str> for Lifecycle {
    fn from(state: &str) -> Self {
        match state {
            "Pending" => Lifecycle::Pending,
            "Pending:Wait" => Lifecycle::PendingWait,
            "Pending:Proceed" => Lifecycle::PendingProceed,
            "Quarantined" => Lifecycle::Quarantined,
            "InService" => Lifecycle::InService,
            "Terminating" => Lifecycle::Terminating,
            "Terminating:Wait" => Lifecycle::TerminatingWait,
            "Terminating:Proceed" => Lifecycle::TerminatingProceed,
            "Terminated" => Lifecycle::Terminated,
            "Detaching" => Lifecycle::Detaching,
            "Detached" => Lifecycle::Detached,
            "EnteringStandby" => Lifecycle::EnteringStandby,
            "Standby" => Lifecycle::Standby,
            other => Lifecycle::Other(other.to_string()),
        }
    }
}

impl From<String> for Lifecycle {
    fn from(state: String) -> Self {
        match Lifecycle::from(state.as_str()) {
            // Keep the allocation rather than copying it.
            Lifecycle::Other(_) => Lifecycle::Other(state),
            known => known,
        }
    }
}

impl From<Lifecycle> for String {
    fn from(state: Lifecycle) -> Self {
        match state {
            Lifecycle::Other(state) => state,
            known => known.as_str().to_string(),
        }
    }
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A running instance of a group, as AWS sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    /// The instance ID.
    pub id: String,
    /// Its launch template ID.
    pub launch_template: Option<String>,
    /// Its launch template version.
    pub version: Option<String>,
    /// The auto scaling lifecycle state.
    pub lifecycle: Lifecycle,
    /// Healthy per auto scaling.
    pub healthy: bool,
    /// Its private IPv4 address (how its Kubernetes node is found).
    pub private_ip: Option<String>,
    /// Its private DNS name.
    pub private_dns: Option<String>,
    /// Whether the instance reports running a voting etcd member (the tag
    /// `skiff.dev/etcd-member=true`, which an external etcd member sets
    /// once it is promoted): how a roll of an `Etcd` group knows a
    /// replacement joined before it replaces the next member.
    #[serde(default)]
    pub etcd_member: bool,
}

impl InstanceView {
    /// Whether the instance counts as in service.
    pub fn in_service(&self) -> bool {
        self.lifecycle == Lifecycle::InService && self.healthy
    }

    /// Whether it is on its way out.
    pub fn leaving(&self) -> bool {
        self.lifecycle.is_leaving()
    }
}

/// An auto scaling group as it is now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupView {
    /// The auto scaling group's name.
    pub name: String,
    /// Desired capacity.
    pub desired: u32,
    /// Minimum size.
    pub min: u32,
    /// Maximum size.
    pub max: u32,
    /// The launch template new instances get.
    pub launch_template: Option<String>,
    /// Its version, resolved to a number (`$Latest`/`$Default` looked up).
    pub version: Option<String>,
    /// The instances.
    pub instances: Vec<InstanceView>,
}

impl GroupView {
    /// Whether an instance was launched from the group's current version.
    pub fn is_current(&self, instance: &InstanceView) -> bool {
        instance.launch_template == self.launch_template && instance.version == self.version
    }

    /// Instances launched from another version than the current one (and not leaving).
    pub fn outdated(&self) -> Vec<&InstanceView> {
        self.instances
            .iter()
            .filter(|instance| !instance.leaving() && !self.is_current(instance))
            .collect()
    }

    /// Instances in service.
    pub fn in_service(&self) -> usize {
        self.instances
            .iter()
            .filter(|instance| instance.in_service())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_state_reads_back_as_aws_spells_it() {
        for state in [
            "Pending",
            "Pending:Wait",
            "Pending:Proceed",
            "Quarantined",
            "InService",
            "Terminating",
            "Terminating:Wait",
            "Terminating:Proceed",
            "Terminated",
            "Detaching",
            "Detached",
            "EnteringStandby",
            "Standby",
        ] {
            let lifecycle = Lifecycle::from(state);
            assert!(
                !matches!(lifecycle, Lifecycle::Other(_)),
                "{state} is a known state"
            );
            assert_eq!(lifecycle.as_str(), state);
            assert_eq!(String::from(lifecycle), state);
        }
        assert_eq!(
            Lifecycle::from("Warmed:Running"),
            Lifecycle::Other("Warmed:Running".to_string())
        );
    }

    #[test]
    fn leaving_means_terminating_or_detaching_only() {
        let leaving: Vec<&str> = [
            "Pending",
            "Pending:Wait",
            "InService",
            "Terminating",
            "Terminating:Wait",
            "Terminating:Proceed",
            "Terminated",
            "Detaching",
            "Detached",
            "Standby",
            // Not ours: a warm-pool instance is not leaving the group.
            "Warmed:Terminating",
        ]
        .into_iter()
        .filter(|state| Lifecycle::from(*state).is_leaving())
        .collect();
        assert_eq!(
            leaving,
            [
                "Terminating",
                "Terminating:Wait",
                "Terminating:Proceed",
                "Terminated",
                "Detaching",
                "Detached"
            ]
        );
    }

    #[test]
    fn in_service_needs_the_state_and_health() {
        let instance = |lifecycle: &str, healthy: bool| InstanceView {
            id: "i-1".to_string(),
            launch_template: None,
            version: None,
            lifecycle: Lifecycle::from(lifecycle),
            healthy,
            private_ip: None,
            private_dns: None,
            etcd_member: false,
        };
        assert!(instance("InService", true).in_service());
        assert!(!instance("InService", false).in_service());
        assert!(!instance("Pending:Proceed", true).in_service());
        assert!(!instance("Standby", true).in_service());
    }

    #[test]
    fn serializes_as_the_aws_string() -> serde_json::Result<()> {
        let instance = InstanceView {
            id: "i-1".to_string(),
            launch_template: Some("lt-1".to_string()),
            version: Some("2".to_string()),
            lifecycle: Lifecycle::TerminatingWait,
            healthy: true,
            private_ip: None,
            private_dns: None,
            etcd_member: false,
        };
        let json = serde_json::to_value(&instance)?;
        assert_eq!(json["lifecycle"], "Terminating:Wait");
        assert_eq!(serde_json::from_value::<InstanceView>(json)?, instance);

        let unknown: Lifecycle = serde_json::from_str("\"Warmed:Hibernated\"")?;
        assert_eq!(unknown, Lifecycle::Other("Warmed:Hibernated".to_string()));
        assert_eq!(serde_json::to_string(&unknown)?, "\"Warmed:Hibernated\"");
        Ok(())
    }
}
