//! `spec.kubelet` on the cluster and on an instance group: a typed subset of
//! the kubelet's `KubeletConfiguration` (`kubelet.config.k8s.io/v1beta1`,
//! kubernetes/kubernetes staging/src/k8s.io/kubelet/config/v1beta1/types.go),
//! with the same field names.
//!
//! A group's block is merged over the cluster's ([`KubeletSpec::merged_over`]):
//! a field the group sets wins, a map (`kubeReserved`, `evictionHard`, ...)
//! is merged key by key. Unknown fields are refused when the document is
//! read, so a typo never reaches a node whose kubelet would then not start;
//! [`check`] refuses values the kubelet would refuse, with the field's path.
//!
//! Each node gets its group's merged settings in its own user-data, as a
//! kubeadm patch of its kubelet configuration (templates/src/kubelet.rs
//! explains why a patch and not the cluster's `kubelet-config` ConfigMap).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The kubelet settings skiff offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeletSpec {
    /// The most pods the node runs (`maxPods`, kubelet default 110).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pods: Option<u32>,
    /// Resources kept for Kubernetes daemons (`cpu`, `memory`,
    /// `ephemeral-storage`, `pid`), e.g. `{cpu: 100m, memory: 256Mi}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kube_reserved: BTreeMap<String, String>,
    /// Resources kept for the operating system's daemons (same keys).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub system_reserved: BTreeMap<String, String>,
    /// Signals that evict pods at once, e.g. `{memory.available: 200Mi,
    /// nodefs.available: 10%}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub eviction_hard: BTreeMap<String, String>,
    /// Signals that evict pods after their grace period.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub eviction_soft: BTreeMap<String, String>,
    /// How long each `evictionSoft` signal must hold before pods are
    /// evicted, e.g. `{memory.available: 1m30s}`; every soft signal needs one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub eviction_soft_grace_period: BTreeMap<String, String>,
    /// The longest termination grace period, in seconds, a soft eviction
    /// gives a pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eviction_max_pod_grace_period: Option<u32>,
    /// Disk use in percent above which image garbage collection always runs.
    #[serde(
        rename = "imageGCHighThresholdPercent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub image_gc_high_threshold_percent: Option<u32>,
    /// Disk use in percent below which image garbage collection never runs.
    #[serde(
        rename = "imageGCLowThresholdPercent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub image_gc_low_threshold_percent: Option<u32>,
    /// Pull images one at a time (kubelet default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serialize_image_pulls: Option<bool>,
    /// The size at which a container's log file is rotated, e.g. `10Mi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_log_max_size: Option<String>,
    /// Log files kept per container (at least 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_log_max_files: Option<u32>,
    /// How long the node delays its shutdown for pods to stop, e.g. `30s`
    /// (graceful node shutdown; `0s` turns it off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_grace_period: Option<String>,
    /// The part of `shutdownGracePeriod` kept for critical pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_grace_period_critical_pods: Option<String>,
}

/// The resources `kubeReserved` and `systemReserved` take
/// (kubelet: pkg/kubelet/cm/node_container_manager_linux.go).
pub const RESERVABLE_RESOURCES: [&str; 4] = ["cpu", "memory", "ephemeral-storage", "pid"];

/// The eviction signals the kubelet knows on Linux
/// (pkg/kubelet/eviction/api/types.go, `Signal*`).
pub const EVICTION_SIGNALS: [&str; 8] = [
    "memory.available",
    "nodefs.available",
    "nodefs.inodesFree",
    "imagefs.available",
    "imagefs.inodesFree",
    "containerfs.available",
    "containerfs.inodesFree",
    "pid.available",
];

impl KubeletSpec {
    /// Whether no setting is given.
    pub fn is_empty(&self) -> bool {
        *self == KubeletSpec::default()
    }

    /// This (a group's) block merged over the cluster's: a field set here
    /// wins; maps are merged key by key, this block's value winning.
    pub fn merged_over(&self, cluster: &KubeletSpec) -> KubeletSpec {
        fn map(
            group: &BTreeMap<String, String>,
            cluster: &BTreeMap<String, String>,
        ) -> BTreeMap<String, String> {
            let mut merged = cluster.clone();
            merged.extend(
                group
                    .iter()
                    .map(|(key, value)| (key.clone(), value.clone())),
            );
            merged
        }
        KubeletSpec {
            max_pods: self.max_pods.or(cluster.max_pods),
            kube_reserved: map(&self.kube_reserved, &cluster.kube_reserved),
            system_reserved: map(&self.system_reserved, &cluster.system_reserved),
            eviction_hard: map(&self.eviction_hard, &cluster.eviction_hard),
            eviction_soft: map(&self.eviction_soft, &cluster.eviction_soft),
            eviction_soft_grace_period: map(
                &self.eviction_soft_grace_period,
                &cluster.eviction_soft_grace_period,
            ),
            eviction_max_pod_grace_period: self
                .eviction_max_pod_grace_period
                .or(cluster.eviction_max_pod_grace_period),
            image_gc_high_threshold_percent: self
                .image_gc_high_threshold_percent
                .or(cluster.image_gc_high_threshold_percent),
            image_gc_low_threshold_percent: self
                .image_gc_low_threshold_percent
                .or(cluster.image_gc_low_threshold_percent),
            serialize_image_pulls: self.serialize_image_pulls.or(cluster.serialize_image_pulls),
            container_log_max_size: self
                .container_log_max_size
                .clone()
                .or_else(|| cluster.container_log_max_size.clone()),
            container_log_max_files: self
                .container_log_max_files
                .or(cluster.container_log_max_files),
            shutdown_grace_period: self
                .shutdown_grace_period
                .clone()
                .or_else(|| cluster.shutdown_grace_period.clone()),
            shutdown_grace_period_critical_pods: self
                .shutdown_grace_period_critical_pods
                .clone()
                .or_else(|| cluster.shutdown_grace_period_critical_pods.clone()),
        }
    }
}

/// One problem with a kubelet block: the field's path below `spec.kubelet`
/// (`evictionHard["memory.available"]`) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletProblem {
    /// The field, relative to `spec.kubelet`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Which checks [`check`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checks {
    /// Each field on its own (ranges, syntax, known keys).
    Fields,
    /// Only what ties fields together (low below high threshold, a grace
    /// period for every soft signal, the critical pods' part of the
    /// shutdown period): for a group's block merged over the cluster's.
    Together,
    /// Both.
    All,
}

/// The kubelet's checks of these fields, as it would refuse them at start
/// (pkg/kubelet/apis/config/validation/validation.go, the eviction
/// threshold parser pkg/kubelet/eviction/helpers.go ParseThresholdConfig).
pub fn check(spec: &KubeletSpec, checks: Checks) -> Vec<KubeletProblem> {
    let mut problems = Vec::new();
    let mut problem = |field: String, message: String| {
        problems.push(KubeletProblem { field, message });
    };
    let fields = checks != Checks::Together;
    let together = checks != Checks::Fields;
    if fields {
        if let Some(pods) = spec.max_pods {
            if !(1..=1024).contains(&pods) {
                problem(
                    "maxPods".into(),
                    format!("{pods} is outside the allowed range; use 1 to 1024"),
                );
            }
        }
        for (name, reserved) in [
            ("kubeReserved", &spec.kube_reserved),
            ("systemReserved", &spec.system_reserved),
        ] {
            for (resource, quantity) in reserved {
                let field = format!("{name}[{resource:?}]");
                if !RESERVABLE_RESOURCES.contains(&resource.as_str()) {
                    problem(
                        field,
                        format!(
                            "{resource:?} is not a resource the kubelet reserves; use one of {}",
                            RESERVABLE_RESOURCES.join(", ")
                        ),
                    );
                } else if !is_quantity(quantity) {
                    problem(
                        field,
                        format!("{quantity:?} is not a quantity like 100m, 512Mi or 1Gi"),
                    );
                }
            }
        }
        for (name, thresholds) in [
            ("evictionHard", &spec.eviction_hard),
            ("evictionSoft", &spec.eviction_soft),
        ] {
            for (signal, threshold) in thresholds {
                let field = format!("{name}[{signal:?}]");
                if !EVICTION_SIGNALS.contains(&signal.as_str()) {
                    problem(
                        field,
                        format!(
                            "{signal:?} is not an eviction signal; use one of {}",
                            EVICTION_SIGNALS.join(", ")
                        ),
                    );
                } else if !is_threshold(threshold) {
                    problem(
                        field,
                        format!(
                            "{threshold:?} is not a threshold: a quantity like 200Mi or a percentage like 10%"
                        ),
                    );
                }
            }
        }
        for (signal, period) in &spec.eviction_soft_grace_period {
            let field = format!("evictionSoftGracePeriod[{signal:?}]");
            if !EVICTION_SIGNALS.contains(&signal.as_str()) {
                problem(
                    field,
                    format!(
                        "{signal:?} is not an eviction signal; use one of {}",
                        EVICTION_SIGNALS.join(", ")
                    ),
                );
            } else if go_duration_nanoseconds(period).is_none_or(|nanoseconds| nanoseconds <= 0) {
                problem(
                    field,
                    format!("{period:?} is not a positive duration like 30s or 1m30s"),
                );
            }
        }
        for (name, percent) in [
            (
                "imageGCHighThresholdPercent",
                spec.image_gc_high_threshold_percent,
            ),
            (
                "imageGCLowThresholdPercent",
                spec.image_gc_low_threshold_percent,
            ),
        ] {
            if let Some(percent) = percent {
                if percent > 100 {
                    problem(
                        name.into(),
                        format!("{percent} is not a percentage; use 0 to 100"),
                    );
                }
            }
        }
        if let Some(size) = &spec.container_log_max_size {
            if !is_quantity(size) || size.starts_with('0') {
                problem(
                    "containerLogMaxSize".into(),
                    format!("{size:?} is not a size like 10Mi or 50Mi"),
                );
            }
        }
        if let Some(files) = spec.container_log_max_files {
            if files < 2 {
                problem(
                    "containerLogMaxFiles".into(),
                    format!(
                        "{files}: the kubelet keeps the current log and at least one rotated file; use 2 or more"
                    ),
                );
            }
        }
        for (name, period) in [
            ("shutdownGracePeriod", &spec.shutdown_grace_period),
            (
                "shutdownGracePeriodCriticalPods",
                &spec.shutdown_grace_period_critical_pods,
            ),
        ] {
            if let Some(period) = period {
                if go_duration_nanoseconds(period).is_none_or(|nanoseconds| nanoseconds < 0) {
                    problem(
                        name.into(),
                        format!("{period:?} is not a duration like 30s or 2m"),
                    );
                }
            }
        }
    }
    if together {
        if let (Some(high), Some(low)) = (
            spec.image_gc_high_threshold_percent,
            spec.image_gc_low_threshold_percent,
        ) {
            if low >= high {
                problem(
                    "imageGCLowThresholdPercent".into(),
                    format!(
                        "{low} must be below imageGCHighThresholdPercent ({high}): garbage collection runs from the high mark down to the low one"
                    ),
                );
            }
        }
        for signal in spec.eviction_soft.keys() {
            if !spec.eviction_soft_grace_period.contains_key(signal) {
                problem(
                    format!("evictionSoftGracePeriod[{signal:?}]"),
                    format!(
                        "evictionSoft[{signal:?}] has no grace period; the kubelet refuses a soft threshold without one (e.g. {signal}: 1m30s)"
                    ),
                );
            }
        }
        for signal in spec.eviction_soft_grace_period.keys() {
            if !spec.eviction_soft.contains_key(signal) {
                problem(
                    format!("evictionSoftGracePeriod[{signal:?}]"),
                    format!("names {signal}, which evictionSoft does not set; remove it or add the threshold"),
                );
            }
        }
        if let Some(critical) = &spec.shutdown_grace_period_critical_pods {
            let total = spec
                .shutdown_grace_period
                .as_deref()
                .and_then(go_duration_nanoseconds)
                .unwrap_or(0);
            if let Some(critical_nanoseconds) = go_duration_nanoseconds(critical) {
                if critical_nanoseconds > total {
                    problem(
                        "shutdownGracePeriodCriticalPods".into(),
                        format!(
                            "{critical} is longer than shutdownGracePeriod ({}); it is the part of that period kept for critical pods",
                            spec.shutdown_grace_period.as_deref().unwrap_or("unset")
                        ),
                    );
                }
            }
        }
    }
    problems
}

/// The findings of a kubelet block as validation reports them: (path,
/// message), the path under `path` (`spec.kubelet` or
/// `instancegroup/x: spec.kubelet`). A group's block (`cluster` given) is
/// checked field by field on its own, and merged over the cluster's for
/// what ties fields together; a problem the cluster's block has alone is
/// reported once, on the cluster.
pub fn findings(
    path: &str,
    spec: &KubeletSpec,
    cluster: Option<&KubeletSpec>,
) -> Vec<(String, String)> {
    let mut problems = check(spec, Checks::Fields);
    match cluster {
        None => problems.extend(check(spec, Checks::Together)),
        Some(cluster) if !spec.is_empty() => {
            let own = check(cluster, Checks::Together);
            problems.extend(
                check(&spec.merged_over(cluster), Checks::Together)
                    .into_iter()
                    .filter(|problem| !own.contains(problem))
                    .map(|problem| KubeletProblem {
                        message: format!(
                            "{} (with the cluster's spec.kubelet merged in)",
                            problem.message
                        ),
                        ..problem
                    }),
            );
        }
        Some(_) => {}
    }
    problems
        .into_iter()
        .map(|problem| (format!("{path}.{}", problem.field), problem.message))
        .collect()
}

/// A Kubernetes resource quantity as the kubelet's fields take it: a
/// decimal number and an optional suffix (`100m`, `1.5Gi`, `512M`, `1000`).
pub fn is_quantity(text: &str) -> bool {
    const SUFFIXES: [&str; 14] = [
        "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
    ];
    let split = text
        .find(|character: char| !(character.is_ascii_digit() || character == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let mut parts = number.split('.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next();
    let number_ok = parts.next().is_none()
        && (!whole.is_empty() || fraction.is_some_and(|fraction| !fraction.is_empty()))
        && fraction.is_none_or(|fraction| !fraction.is_empty());
    number_ok && SUFFIXES.contains(&suffix)
}

/// An eviction threshold: a quantity or a percentage (`10%`, `7.5%`).
fn is_threshold(text: &str) -> bool {
    match text.strip_suffix('%') {
        Some(percent) => {
            percent
                .parse::<f64>()
                .is_ok_and(|value| value > 0.0 && value <= 100.0)
                && percent
                    .bytes()
                    .all(|byte| byte.is_ascii_digit() || byte == b'.')
        }
        None => is_quantity(text),
    }
}

/// A Go duration (`time.ParseDuration`: `300ms`, `1m30s`, `2h`, `0`) in
/// nanoseconds; `None` when it is not one.
pub fn go_duration_nanoseconds(text: &str) -> Option<i128> {
    if text == "0" {
        return Some(0);
    }
    let mut rest = text;
    let mut total: f64 = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|character: char| !(character.is_ascii_digit() || character == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_end);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        let unit_end = after
            .find(|character: char| character.is_ascii_digit() || character == '.')
            .unwrap_or(after.len());
        let (unit, remaining) = after.split_at(unit_end);
        let scale: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += value * scale;
        rest = remaining;
    }
    // Whole nanoseconds are all a duration holds; a day is far below f64's
    // exact integer range.
    Some(total.round() as i128)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn fields(problems: &[KubeletProblem]) -> Vec<&str> {
        problems
            .iter()
            .map(|problem| problem.field.as_str())
            .collect()
    }

    #[test]
    fn a_group_wins_field_by_field_and_maps_merge_key_by_key() {
        let cluster = KubeletSpec {
            max_pods: Some(110),
            serialize_image_pulls: Some(false),
            kube_reserved: BTreeMap::from([
                ("cpu".to_string(), "100m".to_string()),
                ("memory".to_string(), "256Mi".to_string()),
            ]),
            ..KubeletSpec::default()
        };
        let group = KubeletSpec {
            max_pods: Some(250),
            kube_reserved: BTreeMap::from([("memory".to_string(), "1Gi".to_string())]),
            ..KubeletSpec::default()
        };
        let merged = group.merged_over(&cluster);
        assert_eq!(merged.max_pods, Some(250));
        assert_eq!(merged.serialize_image_pulls, Some(false));
        assert_eq!(
            merged.kube_reserved,
            BTreeMap::from([
                ("cpu".to_string(), "100m".to_string()),
                ("memory".to_string(), "1Gi".to_string()),
            ])
        );
        assert!(KubeletSpec::default()
            .merged_over(&KubeletSpec::default())
            .is_empty());
    }

    #[test]
    fn unknown_fields_are_refused_with_their_name() {
        let error = serde_norway::from_str::<KubeletSpec>("maxPod: 10\n").expect_err("refused");
        assert!(error.to_string().contains("maxPod"), "{error}");
    }

    #[test]
    fn values_the_kubelet_would_refuse_are_named() {
        let spec = KubeletSpec {
            max_pods: Some(0),
            kube_reserved: BTreeMap::from([("gpu".to_string(), "1".to_string())]),
            system_reserved: BTreeMap::from([("memory".to_string(), "lots".to_string())]),
            eviction_hard: BTreeMap::from([("memory.available".to_string(), "150%".to_string())]),
            eviction_soft: BTreeMap::from([("nodefs.available".to_string(), "15%".to_string())]),
            image_gc_high_threshold_percent: Some(80),
            image_gc_low_threshold_percent: Some(85),
            container_log_max_size: Some("10 MB".to_string()),
            container_log_max_files: Some(1),
            shutdown_grace_period: Some("30s".to_string()),
            shutdown_grace_period_critical_pods: Some("1m".to_string()),
            ..KubeletSpec::default()
        };
        let problems = check(&spec, Checks::All);
        assert_eq!(
            fields(&problems),
            [
                "maxPods",
                "kubeReserved[\"gpu\"]",
                "systemReserved[\"memory\"]",
                "evictionHard[\"memory.available\"]",
                "containerLogMaxSize",
                "containerLogMaxFiles",
                "imageGCLowThresholdPercent",
                "evictionSoftGracePeriod[\"nodefs.available\"]",
                "shutdownGracePeriodCriticalPods",
            ],
            "{problems:#?}"
        );
        assert!(check(&spec, Checks::Fields).len() < problems.len());
    }

    #[test]
    fn good_values_pass() {
        let spec = KubeletSpec {
            max_pods: Some(250),
            kube_reserved: BTreeMap::from([
                ("cpu".to_string(), "100m".to_string()),
                ("ephemeral-storage".to_string(), "1.5Gi".to_string()),
                ("pid".to_string(), "1000".to_string()),
            ]),
            eviction_hard: BTreeMap::from([
                ("memory.available".to_string(), "200Mi".to_string()),
                ("nodefs.available".to_string(), "7.5%".to_string()),
            ]),
            eviction_soft: BTreeMap::from([("memory.available".to_string(), "500Mi".to_string())]),
            eviction_soft_grace_period: BTreeMap::from([(
                "memory.available".to_string(),
                "1m30s".to_string(),
            )]),
            image_gc_high_threshold_percent: Some(85),
            image_gc_low_threshold_percent: Some(80),
            container_log_max_size: Some("50Mi".to_string()),
            container_log_max_files: Some(5),
            shutdown_grace_period: Some("2m".to_string()),
            shutdown_grace_period_critical_pods: Some("30s".to_string()),
            serialize_image_pulls: Some(false),
            eviction_max_pod_grace_period: Some(60),
            system_reserved: BTreeMap::new(),
        };
        assert_eq!(check(&spec, Checks::All), []);
    }

    /// A valid one-zone cluster with a control-plane and a node group.
    pub(crate) fn bundle() -> crate::ClusterBundle {
        use crate::new_cluster::{new_cluster, NewClusterOptions};
        new_cluster(&NewClusterOptions {
            name: "c1.example.com".to_string(),
            zones: vec!["us-east-1a".into()],
            control_plane_zones: Vec::new(),
            control_plane_count: 1,
            control_plane_size: "t3.medium".into(),
            node_count: 1,
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
        .expect("builds")
    }

    /// Must-show: an unknown kubelet field is refused with its path when the
    /// spec is read; a bad value by validation, with the group's path; a
    /// group's block is checked merged over the cluster's.
    #[test]
    fn refusals_name_the_group_and_the_field() {
        let yaml = bundle().to_yaml();
        let group = yaml
            .split("---\n")
            .position(|document| document.contains("role: Node"))
            .expect("a node group");
        let typo: Vec<String> = yaml
            .split("---\n")
            .enumerate()
            .map(|(index, document)| {
                if index == group {
                    format!("{document}  kubelet:\n    maxPod: 200\n")
                } else {
                    document.to_string()
                }
            })
            .collect();
        let error = crate::ClusterBundle::from_yaml(&typo.join("---\n")).expect_err("refused");
        assert_eq!(
            error.path.as_deref(),
            Some("spec.kubelet.maxPod"),
            "{error}"
        );
        assert!(error.message.contains("maxPods"), "{error}");

        let mut spec = bundle();
        spec.cluster.spec.kubelet.image_gc_high_threshold_percent = Some(70);
        let name = spec.instance_groups[1].name().to_string();
        spec.instance_groups[1].spec.kubelet = KubeletSpec {
            max_pods: Some(5000),
            image_gc_low_threshold_percent: Some(75),
            ..KubeletSpec::default()
        };
        let errors: Vec<String> = match crate::validate(&spec) {
            Ok(_) => Vec::new(),
            Err(error) => error.errors.iter().map(ToString::to_string).collect(),
        };
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(
            errors[0].starts_with(&format!("instancegroup/{name}: spec.kubelet.maxPods: 5000")),
            "{errors:#?}"
        );
        assert!(
            errors[1].starts_with(&format!(
                "instancegroup/{name}: spec.kubelet.imageGCLowThresholdPercent: 75 must be below"
            )) && errors[1].ends_with("(with the cluster's spec.kubelet merged in)"),
            "{errors:#?}"
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration_nanoseconds("1m30s"), Some(90_000_000_000));
        assert_eq!(go_duration_nanoseconds("300ms"), Some(300_000_000));
        assert_eq!(go_duration_nanoseconds("1.5h"), Some(5_400_000_000_000));
        assert_eq!(go_duration_nanoseconds("0"), Some(0));
        for bad in ["", "30", "s", "1d", "1..5s", "-1s"] {
            assert_eq!(go_duration_nanoseconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn quantities() {
        for good in ["100m", "1Gi", "1.5Gi", "1000", "0.5", "512M"] {
            assert!(is_quantity(good), "{good}");
        }
        for bad in ["", "Gi", "1GB", "1.2.3", "1 Gi", "-1"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
