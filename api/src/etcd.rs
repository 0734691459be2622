//! `spec.etcd`: how the control plane keeps its etcd data safe.
//!
//! The control-plane nodes snapshot etcd to the state store every
//! `spec.etcd.backups.interval` and keep the newest `keep` snapshots (plus
//! the newest of each day for a week); `skiff restore cluster` rebuilds the
//! control plane from one of them. The interval is a duration text
//! (`15m`, `1h`, `90s`) so the stored spec reads the way people say it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The default time between two backups: 15 minutes, as kops's etcd-manager.
pub const DEFAULT_BACKUP_INTERVAL_SECONDS: u64 = 15 * 60;
/// The shortest allowed interval: a snapshot of a large etcd takes seconds to
/// write and upload, so shorter intervals would overlap.
pub const MIN_BACKUP_INTERVAL_SECONDS: u64 = 60;
/// The longest allowed interval: a day, the most data a restore may lose.
pub const MAX_BACKUP_INTERVAL_SECONDS: u64 = 24 * 60 * 60;
/// The default number of newest backups kept: a day at the default interval.
pub const DEFAULT_BACKUP_KEEP: u32 = 96;

/// etcd settings of the control plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EtcdSpec {
    /// Where etcd runs: `stacked` (default) on the control-plane nodes, or
    /// `external` on instance groups of role `Etcd` (the setup guide's
    /// §2.1.5 and §2.1.7). Left out of the stored spec when `stacked`, so
    /// clusters written before the field existed read back unchanged.
    #[serde(default, skip_serializing_if = "EtcdTopology::is_stacked")]
    pub topology: EtcdTopology,
    /// Snapshots of etcd written to the state store by the control plane.
    #[serde(default)]
    pub backups: EtcdBackupsSpec,
}

/// Where etcd runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EtcdTopology {
    /// A member on every control-plane node, managed by kubeadm.
    #[default]
    Stacked,
    /// A cluster of its own on instance groups of role `Etcd` (3 or 5
    /// members, one instance per group), which the control plane reaches
    /// through `etcd.external` in its kubeadm configuration.
    External,
}

impl EtcdTopology {
    /// Whether etcd runs on the control-plane nodes.
    pub fn is_stacked(&self) -> bool {
        *self == EtcdTopology::Stacked
    }
}

impl fmt::Display for EtcdTopology {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            EtcdTopology::Stacked => "stacked",
            EtcdTopology::External => "external",
        })
    }
}

/// The member counts an external etcd cluster may have: odd (an even count
/// tolerates no more failures than one member less) and at most five (every
/// write waits for a majority; more members make writes slower, which is why
/// etcd's own guidance stops at five or seven and kubeadm's guide at five).
pub const EXTERNAL_ETCD_MEMBER_COUNTS: [u32; 2] = [3, 5];

/// Turns `bundle` into an external-etcd cluster of `members` members: sets
/// `spec.etcd.topology: external` and adds one `Etcd` group per member
/// (`etcd-1`, `etcd-2`, ...) of `machine_type`, taking the subnets the
/// control-plane groups use in turn so the members spread over the zones,
/// with the first control-plane group's image. The caller validates.
pub fn add_external_etcd(bundle: &mut crate::ClusterBundle, members: u32, machine_type: &str) {
    use crate::instance_group::InstanceGroupRole;
    bundle.cluster.spec.etcd.topology = EtcdTopology::External;
    let Some(template) = bundle
        .instance_groups
        .iter()
        .find(|group| group.spec.role == InstanceGroupRole::ControlPlane)
        .cloned()
    else {
        return;
    };
    let mut subnets: Vec<String> = Vec::new();
    for group in &bundle.instance_groups {
        if group.spec.role == InstanceGroupRole::ControlPlane {
            for subnet in &group.spec.subnets {
                if !subnets.contains(subnet) {
                    subnets.push(subnet.clone());
                }
            }
        }
    }
    for ordinal in 1..=members {
        let mut group = template.clone();
        group.metadata.name = format!("etcd-{ordinal}");
        group.spec.role = InstanceGroupRole::Etcd;
        group.spec.machine_type = machine_type.to_string();
        group.spec.min_size = 1;
        group.spec.max_size = 1;
        group.spec.subnets = subnets
            .get((ordinal as usize - 1) % subnets.len().max(1))
            .cloned()
            .into_iter()
            .collect();
        group.spec.node_labels.clear();
        group.spec.taints.clear();
        bundle.instance_groups.push(group);
    }
    bundle.normalize_order();
}

/// The findings about `spec.etcd.topology` and the `Etcd` groups, as
/// `(path, message)` pairs; every one is an error.
/// Why a stored cluster may not change its etcd this way: the topology is
/// fixed for the cluster's life (the data lives in that etcd: a switch
/// would start the API servers on an empty one), and with external etcd
/// every member group keeps its name and subnet (a member's fixed address
/// derives from them, and a member that moves or goes away leaves a dead
/// voting member behind). `Err` is (field path, what to do).
pub fn check_change(
    previous: &crate::ClusterBundle,
    next: &crate::ClusterBundle,
) -> Result<(), (String, String)> {
    use crate::instance_group::InstanceGroupRole;
    let (was, is) = (
        previous.cluster.spec.etcd.topology,
        next.cluster.spec.etcd.topology,
    );
    if was != is {
        return Err((
            "spec.etcd.topology".to_string(),
            format!(
                "cannot change from {was} to {is} on a stored cluster: its data lives in its {was} etcd, and the API servers would come up on an empty one; build a new cluster with {is} etcd and restore a backup into it"
            ),
        ));
    }
    if was != EtcdTopology::External {
        return Ok(());
    }
    let members =
        |bundle: &crate::ClusterBundle| -> std::collections::BTreeMap<String, Vec<String>> {
            bundle
                .instance_groups
                .iter()
                .filter(|group| group.spec.role == InstanceGroupRole::Etcd)
                .map(|group| (group.name().to_string(), group.spec.subnets.clone()))
                .collect()
        };
    let (before, after) = (members(previous), members(next));
    for (name, subnets) in &after {
        match before.get(name) {
            None => {
                return Err((
                    format!("instancegroup/{name}: spec.role"),
                    "external etcd members cannot be added to a stored cluster yet (a member's fixed address follows from the member groups; adding one would move the others'): keep the member groups as they are".to_string(),
                ))
            }
            Some(previous) if previous != subnets => {
                return Err((
                    format!("instancegroup/{name}: spec.subnets"),
                    format!(
                        "an external etcd member keeps its subnet for life (its fixed address is in it): keep {}",
                        previous.join(", ")
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(name) = before.keys().find(|name| !after.contains_key(*name)) {
        return Err((
            format!("instancegroup/{name}"),
            "external etcd members cannot be removed from a stored cluster yet (skiff does not remove a member from etcd first; the cluster would keep a dead voting member): keep the group; replace its instance with `skiff rolling-update cluster`".to_string(),
        ));
    }
    Ok(())
}

pub(crate) fn check_topology(bundle: &crate::ClusterBundle) -> Vec<(String, String)> {
    use crate::instance_group::InstanceGroupRole;
    let mut errors = Vec::new();
    let topology = bundle.cluster.spec.etcd.topology;
    let members: Vec<&crate::InstanceGroup> = bundle
        .instance_groups
        .iter()
        .filter(|group| group.spec.role == InstanceGroupRole::Etcd)
        .collect();
    match topology {
        EtcdTopology::Stacked => {
            for group in &members {
                errors.push((
                    format!("instancegroup/{}: spec.role", group.name()),
                    "Etcd groups need spec.etcd.topology: external in the cluster (with stacked etcd the control-plane nodes run etcd); set the topology or change the role".to_string(),
                ));
            }
        }
        EtcdTopology::External => {
            // kubeadm renders `controlPlane.etcd` into `etcd.local` only; an
            // external member's flags come from its own kubeadm
            // configuration (docs/external-etcd.md).
            // The member bootstrap runs etcd's static pod on containerd
            // only (its kubelet drop-in names containerd's socket).
            for group in &members {
                if group.spec.container_runtime_in(&bundle.cluster.spec)
                    == crate::ContainerRuntime::CriO
                {
                    errors.push((
                        format!("instancegroup/{}: spec.containerRuntime", group.name()),
                        "external etcd members run on containerd only (CRI-O is for Kubernetes nodes): set spec.containerRuntime: containerd on this group".to_string(),
                    ));
                }
            }
            let local = &bundle.cluster.spec.control_plane.etcd;
            if !local.extra_args.is_empty() {
                errors.push((
                    "spec.controlPlane.etcd.extraArgs".to_string(),
                    "applies to stacked etcd only (kubeadm's etcd.local); with spec.etcd.topology: external no control-plane node runs etcd: remove it".to_string(),
                ));
            }
            let count = members.len() as u32;
            if !EXTERNAL_ETCD_MEMBER_COUNTS.contains(&count) {
                let why = if count == 0 {
                    "the cluster has no instance group of role Etcd".to_string()
                } else if count.is_multiple_of(2) {
                    format!("{count} is even: etcd needs a majority, so {count} members tolerate no more failures than {}", count - 1)
                } else {
                    format!("{count} is out of range")
                };
                errors.push((
                    "spec.etcd.topology".to_string(),
                    format!("external etcd needs 3 or 5 members (instance groups of role Etcd, one instance each): {why}; add or remove Etcd groups (`skiff create ig --role Etcd`)"),
                ));
            }
        }
    }
    for group in members {
        let at = |field: &str| format!("instancegroup/{}: {field}", group.name());
        let spec = &group.spec;
        if spec.min_size != 1 || spec.max_size != 1 {
            errors.push((
                at("spec.maxSize"),
                "an Etcd group runs exactly one member (minSize: 1, maxSize: 1), whose address stays the same when its instance is replaced; add groups for more members".to_string(),
            ));
        }
        if spec.subnets.len() != 1 {
            errors.push((
                at("spec.subnets"),
                "an Etcd group lives in exactly one subnet: its member's fixed address is one of that subnet's".to_string(),
            ));
        }
        if spec.spot.is_some() || spec.mixed_instances_policy.is_some() {
            errors.push((
                at("spec.spot"),
                "etcd members run on on-demand capacity: a spot interruption takes a member away without its leaving the cluster; remove spot and mixedInstancesPolicy".to_string(),
            ));
        }
        if !spec.node_labels.is_empty() {
            errors.push((
                at("spec.nodeLabels"),
                "etcd members are not Kubernetes nodes, so they take no node labels; remove them"
                    .to_string(),
            ));
        }
        if !spec.taints.is_empty() {
            errors.push((
                at("spec.taints"),
                "etcd members are not Kubernetes nodes, so they take no taints; remove them"
                    .to_string(),
            ));
        }
    }
    errors
}

/// How often etcd is snapshotted to the state store and how many snapshots are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EtcdBackupsSpec {
    /// The time between two backups, e.g. `15m`; between 1m and 24h.
    #[serde(default)]
    pub interval: BackupInterval,
    /// How many of the newest backups are kept (at least 1); the newest of
    /// each day of the last week is kept besides.
    #[serde(default = "default_keep")]
    pub keep: u32,
}

fn default_keep() -> u32 {
    DEFAULT_BACKUP_KEEP
}

impl Default for EtcdBackupsSpec {
    fn default() -> Self {
        EtcdBackupsSpec {
            interval: BackupInterval::default(),
            keep: DEFAULT_BACKUP_KEEP,
        }
    }
}

/// A text that is not a duration like `15m`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration like 15m, 1h or 90s (a whole number of s, m or h, e.g. 1h30m)")]
pub struct InvalidDuration {
    /// What was given.
    pub text: String,
}

/// The time between two etcd backups, in whole seconds. Written as a
/// duration text: one or more `<number><unit>` parts with units `h`, `m`
/// and `s` (`15m`, `1h30m`, `90s`); printed in its shortest exact form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackupInterval {
    seconds: u64,
}

impl BackupInterval {
    /// An interval of that many seconds.
    pub fn from_seconds(seconds: u64) -> Self {
        BackupInterval { seconds }
    }

    /// The interval in seconds.
    pub fn seconds(self) -> u64 {
        self.seconds
    }
}

impl Default for BackupInterval {
    fn default() -> Self {
        BackupInterval::from_seconds(DEFAULT_BACKUP_INTERVAL_SECONDS)
    }
}

impl fmt::Display for BackupInterval {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.seconds;
        if seconds != 0 && seconds.is_multiple_of(3600) {
            write!(formatter, "{}h", seconds / 3600)
        } else if seconds != 0 && seconds.is_multiple_of(60) {
            write!(formatter, "{}m", seconds / 60)
        } else {
            write!(formatter, "{seconds}s")
        }
    }
}

impl FromStr for BackupInterval {
    type Err = InvalidDuration;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidDuration {
            text: text.to_string(),
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(invalid());
        }
        let mut total: u64 = 0;
        let mut number = String::new();
        for character in trimmed.chars() {
            if character.is_ascii_digit() {
                number.push(character);
                continue;
            }
            let unit: u64 = match character {
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => return Err(invalid()),
            };
            if number.is_empty() {
                return Err(invalid());
            }
            let value: u64 = number.parse().map_err(|_| invalid())?;
            total = value
                .checked_mul(unit)
                .and_then(|part| total.checked_add(part))
                .ok_or_else(invalid)?;
            number.clear();
        }
        if !number.is_empty() {
            // A bare number: the unit is what people forget, and seconds
            // versus minutes is too costly a guess.
            return Err(invalid());
        }
        Ok(BackupInterval::from_seconds(total))
    }
}

impl Serialize for BackupInterval {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for BackupInterval {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_in_shortest_form() {
        let parse = |text: &str| text.parse::<BackupInterval>().map(BackupInterval::seconds);
        assert_eq!(parse("15m"), Ok(900));
        assert_eq!(parse("1h"), Ok(3600));
        assert_eq!(parse("90s"), Ok(90));
        assert_eq!(parse("1h30m"), Ok(5400));
        assert_eq!(BackupInterval::from_seconds(5400).to_string(), "90m");
        assert_eq!(BackupInterval::from_seconds(90).to_string(), "90s");
        assert_eq!(BackupInterval::from_seconds(86400).to_string(), "24h");
        assert_eq!(BackupInterval::from_seconds(0).to_string(), "0s");
    }

    #[test]
    fn bad_durations_are_refused() {
        for text in [
            "",
            "15",
            "m",
            "15x",
            "-1m",
            "1.5h",
            "15 m",
            "1d",
            "99999999999999999999h",
        ] {
            assert!(text.parse::<BackupInterval>().is_err(), "{text:?} parsed");
        }
    }

    fn bundle(members: u32) -> crate::ClusterBundle {
        use crate::new_cluster::{new_cluster, NewClusterOptions};
        let mut bundle = new_cluster(&NewClusterOptions {
            name: "c1.example.com".to_string(),
            zones: vec![
                "us-east-1a".into(),
                "us-east-1b".into(),
                "us-east-1c".into(),
            ],
            control_plane_zones: Vec::new(),
            control_plane_count: 3,
            control_plane_size: "t3.medium".into(),
            node_count: 2,
            node_size: "t3.medium".into(),
            kubernetes_version: crate::version::DEFAULT_VERSION.parse().expect("valid"),
            topology: crate::Topology::Public,
            cni: crate::Cni::Calico,
            dns_zone: None,
            network_cidr: "10.1.0.0/16".into(),
            network_id: None,
            ssh_public_key: None,
            api_load_balancer_type: crate::LoadBalancerType::Public,
            cloud_labels: Default::default(),
            image: None,
            os_family: crate::OsFamily::Debian,
            admin_access: vec!["0.0.0.0/0".into()],
            ssh_access: vec!["0.0.0.0/0".into()],
        })
        .expect("builds");
        add_external_etcd(&mut bundle, members, "t3.small");
        bundle
    }

    fn errors(bundle: &crate::ClusterBundle) -> Vec<String> {
        match crate::validate(bundle) {
            Ok(_) => Vec::new(),
            Err(error) => error.errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn three_and_five_members_are_accepted_spread_over_the_zones() {
        for members in [3, 5] {
            let bundle = bundle(members);
            assert_eq!(errors(&bundle), Vec::<String>::new(), "{members} members");
            let subnets: Vec<&str> = bundle
                .instance_groups
                .iter()
                .filter(|group| group.spec.role == crate::InstanceGroupRole::Etcd)
                .map(|group| group.spec.subnets[0].as_str())
                .collect();
            assert_eq!(subnets.len(), members as usize);
            assert_eq!(&subnets[..3], ["us-east-1a", "us-east-1b", "us-east-1c"]);
        }
    }

    #[test]
    fn even_and_out_of_range_member_counts_are_refused_with_the_field_path() {
        for (members, why) in [
            (0, "the cluster has no instance group of role Etcd"),
            (1, "1 is out of range"),
            (
                2,
                "2 is even: etcd needs a majority, so 2 members tolerate no more failures than 1",
            ),
            (4, "4 is even"),
            (7, "7 is out of range"),
        ] {
            let found = errors(&bundle(members));
            assert_eq!(found.len(), 1, "{members}: {found:?}");
            assert!(
                found[0].starts_with("spec.etcd.topology: external etcd needs 3 or 5 members"),
                "{found:?}"
            );
            assert!(found[0].contains(why), "{members}: {found:?}");
        }
    }

    #[test]
    fn etcd_groups_without_the_external_topology_are_refused() {
        let mut bundle = bundle(3);
        bundle.cluster.spec.etcd.topology = EtcdTopology::Stacked;
        let found = errors(&bundle);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0].starts_with(
                "instancegroup/etcd-1: spec.role: Etcd groups need spec.etcd.topology: external"
            ),
            "{found:?}"
        );
    }

    #[test]
    fn members_run_on_containerd_only() {
        let mut bundle = bundle(3);
        bundle.cluster.spec.container_runtime = crate::ContainerRuntime::CriO;
        let found = errors(&bundle);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(
            found[0].starts_with("instancegroup/etcd-1: spec.containerRuntime: external etcd members run on containerd only"),
            "{found:?}"
        );
        for group in &mut bundle.instance_groups {
            if group.spec.role == crate::InstanceGroupRole::Etcd {
                group.spec.container_runtime = Some(crate::ContainerRuntime::Containerd);
            }
        }
        assert!(errors(&bundle).is_empty(), "{:?}", errors(&bundle));
    }

    #[test]
    fn a_stored_clusters_topology_and_members_are_kept() {
        let stored = bundle(3);
        assert_eq!(check_change(&stored, &stored.clone()), Ok(()));
        let mut stacked = stored.clone();
        stacked.cluster.spec.etcd.topology = EtcdTopology::Stacked;
        let (field, message) = check_change(&stored, &stacked).expect_err("refused");
        assert_eq!(field, "spec.etcd.topology");
        assert!(
            message.contains("cannot change from external to stacked"),
            "{message}"
        );
        assert!(check_change(&stacked, &stored).is_err());
        let mut fewer = stored.clone();
        fewer
            .instance_groups
            .retain(|group| group.name() != "etcd-2");
        let (field, _) = check_change(&stored, &fewer).expect_err("refused");
        assert_eq!(field, "instancegroup/etcd-2");
        let mut moved = stored.clone();
        let group = moved
            .instance_groups
            .iter_mut()
            .find(|group| group.name() == "etcd-3")
            .expect("etcd-3");
        group.spec.subnets = vec!["somewhere-else".into()];
        let (field, _) = check_change(&stored, &moved).expect_err("refused");
        assert_eq!(field, "instancegroup/etcd-3: spec.subnets");
        let mut renamed = stored.clone();
        let group = renamed
            .instance_groups
            .iter_mut()
            .find(|group| group.name() == "etcd-3")
            .expect("etcd-3");
        group.metadata.name = "etcd-9".into();
        assert!(check_change(&stored, &renamed).is_err());
        // A change of anything else goes through.
        let mut bigger = stored.clone();
        for group in &mut bigger.instance_groups {
            if group.spec.role == crate::InstanceGroupRole::Etcd {
                group.spec.machine_type = "m7i.large".into();
            }
        }
        assert_eq!(check_change(&stored, &bigger), Ok(()));
    }

    #[test]
    fn local_etcd_flags_are_refused_with_external_members() {
        let mut bundle = bundle(3);
        assert!(errors(&bundle).is_empty(), "{:?}", errors(&bundle));
        bundle
            .cluster
            .spec
            .control_plane
            .etcd
            .extra_args
            .insert("quota-backend-bytes".into(), "8589934592".into());
        let found = errors(&bundle);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("spec.controlPlane.etcd.extraArgs: applies to stacked etcd only"),
            "{found:?}"
        );
    }

    #[test]
    fn a_member_group_runs_one_on_demand_instance_in_one_subnet_and_is_no_node() {
        let mut bundle = bundle(3);
        let group = bundle
            .instance_groups
            .iter_mut()
            .find(|group| group.name() == "etcd-2")
            .expect("etcd-2");
        group.spec.max_size = 2;
        group.spec.subnets.push("us-east-1a".into());
        group.spec.spot = Some(Default::default());
        group.spec.node_labels.insert("team".into(), "db".into());
        group
            .spec
            .taints
            .push("dedicated=etcd:NoSchedule".parse().expect("taint"));
        let found = errors(&bundle);
        let paths: Vec<&str> = found
            .iter()
            .map(|finding| finding.split(": ").take(2).collect::<Vec<_>>()[1])
            .collect();
        assert_eq!(
            paths,
            [
                "spec.maxSize",
                "spec.subnets",
                "spec.spot",
                "spec.nodeLabels",
                "spec.taints"
            ],
            "{found:?}"
        );
        assert!(found
            .iter()
            .all(|finding| finding.starts_with("instancegroup/etcd-2: ")));
    }

    #[test]
    fn the_stacked_topology_is_left_out_of_the_stored_spec() {
        let stacked = serde_norway::to_string(&EtcdSpec::default()).expect("prints");
        assert!(!stacked.contains("topology"), "{stacked}");
        let external = EtcdSpec {
            topology: EtcdTopology::External,
            ..EtcdSpec::default()
        };
        let text = serde_norway::to_string(&external).expect("prints");
        assert!(text.contains("topology: external"), "{text}");
        let read: EtcdSpec = serde_norway::from_str(&text).expect("parses");
        assert_eq!(read, external);
        assert!(serde_norway::from_str::<EtcdSpec>("topology: local\n").is_err());
    }

    #[test]
    fn defaults_are_fifteen_minutes_and_ninety_six() {
        let spec: EtcdSpec = serde_norway::from_str("{}").expect("parses");
        assert_eq!(spec.backups.interval.seconds(), 900);
        assert_eq!(spec.backups.keep, 96);
        let backups: EtcdBackupsSpec = serde_norway::from_str("interval: 1h\n").expect("parses");
        assert_eq!(backups.keep, 96);
        assert_eq!(backups.interval.seconds(), 3600);
    }
}
