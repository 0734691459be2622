//! The cluster addons (`spec.addons`): the software every workload on AWS
//! needs beside the pod network, installed and kept at the release that
//! matches the cluster's Kubernetes minor.
//!
//! - `cloudControllerManager`: the AWS cloud-controller-manager
//!   (kubernetes/cloud-provider-aws). On by default. Services of type
//!   `LoadBalancer`, Node `providerID` and zone labels, removing the Nodes of
//!   terminated instances. With it on, every kubelet runs with
//!   `--cloud-provider=external` and its node is named by the instance's
//!   private DNS name, as the AWS cloud provider requires.
//! - `ebsCsiDriver`: the Amazon EBS CSI driver and a default, encrypted
//!   `gp3` StorageClass. On by default.
//! - `metricsServer`: metrics-server (`kubectl top`, HorizontalPodAutoscalers).
//!   On by default.
//! - `clusterAutoscaler`: cluster-autoscaler with auto-discovery of the
//!   groups' auto scaling groups. Off by default: it changes group sizes.
//!
//! An absent entry means the addon's default (on or off) at the release the
//! cluster's minor pins. `version` overrides the release; it must be one
//! skiff knows the image digest of.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One addon skiff can install.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Addon {
    /// The AWS cloud-controller-manager.
    CloudControllerManager,
    /// The Amazon EBS CSI driver and its StorageClass.
    EbsCsiDriver,
    /// metrics-server.
    MetricsServer,
    /// cluster-autoscaler.
    ClusterAutoscaler,
}

impl Addon {
    /// Every addon, in the order they are applied.
    pub const ALL: [Addon; 4] = [
        Addon::CloudControllerManager,
        Addon::EbsCsiDriver,
        Addon::MetricsServer,
        Addon::ClusterAutoscaler,
    ];

    /// The addon's key under `spec.addons`, e.g. `cloudControllerManager`.
    pub fn field(self) -> &'static str {
        match self {
            Addon::CloudControllerManager => "cloudControllerManager",
            Addon::EbsCsiDriver => "ebsCsiDriver",
            Addon::MetricsServer => "metricsServer",
            Addon::ClusterAutoscaler => "clusterAutoscaler",
        }
    }

    /// The addon's name in the state store, the plan and on the nodes, e.g.
    /// `cloud-controller-manager`.
    pub fn name(self) -> &'static str {
        match self {
            Addon::CloudControllerManager => "cloud-controller-manager",
            Addon::EbsCsiDriver => "ebs-csi-driver",
            Addon::MetricsServer => "metrics-server",
            Addon::ClusterAutoscaler => "cluster-autoscaler",
        }
    }

    /// Whether a cluster gets the addon when `spec.addons` does not say.
    pub fn enabled_by_default(self) -> bool {
        !matches!(self, Addon::ClusterAutoscaler)
    }
}

impl fmt::Display for Addon {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// One addon's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddonSpec {
    /// On or off; absent means the addon's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The addon's release, e.g. `v1.34.3`; absent means the release the
    /// cluster's Kubernetes minor pins (and follows it on upgrade).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `spec.addons`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddonsSpec {
    /// The AWS cloud-controller-manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_controller_manager: Option<AddonSpec>,
    /// The Amazon EBS CSI driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebs_csi_driver: Option<AddonSpec>,
    /// metrics-server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_server: Option<AddonSpec>,
    /// cluster-autoscaler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_autoscaler: Option<AddonSpec>,
}

impl AddonsSpec {
    /// The settings written for `addon`, if any.
    pub fn get(&self, addon: Addon) -> Option<&AddonSpec> {
        match addon {
            Addon::CloudControllerManager => self.cloud_controller_manager.as_ref(),
            Addon::EbsCsiDriver => self.ebs_csi_driver.as_ref(),
            Addon::MetricsServer => self.metrics_server.as_ref(),
            Addon::ClusterAutoscaler => self.cluster_autoscaler.as_ref(),
        }
    }

    /// Whether the cluster gets `addon`.
    pub fn enabled(&self, addon: Addon) -> bool {
        self.get(addon)
            .and_then(|spec| spec.enabled)
            .unwrap_or_else(|| addon.enabled_by_default())
    }

    /// The release `spec.addons.<addon>.version` asks for, if any.
    pub fn version_override(&self, addon: Addon) -> Option<&str> {
        self.get(addon).and_then(|spec| spec.version.as_deref())
    }

    /// The addons the cluster gets, in apply order.
    pub fn enabled_addons(&self) -> Vec<Addon> {
        Addon::ALL
            .into_iter()
            .filter(|addon| self.enabled(*addon))
            .collect()
    }

    /// Whether nothing is written (every addon at its default).
    pub fn is_empty(&self) -> bool {
        *self == AddonsSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_entries_take_each_addons_default_and_written_ones_win() {
        let none = AddonsSpec::default();
        assert_eq!(
            none.enabled_addons(),
            vec![
                Addon::CloudControllerManager,
                Addon::EbsCsiDriver,
                Addon::MetricsServer
            ]
        );
        let written: AddonsSpec = serde_norway::from_str(
            "clusterAutoscaler: {enabled: true}\nmetricsServer: {enabled: false, version: v0.8.0}\n",
        )
        .expect("parses");
        assert!(written.enabled(Addon::ClusterAutoscaler));
        assert!(!written.enabled(Addon::MetricsServer));
        assert_eq!(
            written.version_override(Addon::MetricsServer),
            Some("v0.8.0")
        );
        assert_eq!(written.version_override(Addon::EbsCsiDriver), None);
    }

    #[test]
    fn unknown_addons_and_fields_are_refused() {
        let unknown = serde_norway::from_str::<AddonsSpec>("nodeTerminationHandler: {}\n")
            .expect_err("unknown addon");
        assert!(
            unknown.to_string().contains("nodeTerminationHandler"),
            "{unknown}"
        );
        let field = serde_norway::from_str::<AddonsSpec>("metricsServer: {replicas: 2}\n")
            .expect_err("unknown field");
        assert!(field.to_string().contains("replicas"), "{field}");
    }
}
