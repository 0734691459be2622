//! Checking a cluster bundle before it is stored or planned.
//!
//! Every finding names the field to fix, as a path into the document
//! (`spec.subnets[2].cidr`), prefixed with the instance group for group
//! documents (`instancegroup/nodes: spec.minSize`). All findings are
//! collected, not just the first, so one edit can fix them all.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ipnet::Ipv4Net;

use crate::cidr;
use crate::cluster::{SubnetType, Topology};
use crate::control_plane::{check_audit_policy, AuditSpec, AUDIT_LIMITS};
use crate::defaults::region_of_zone;
use crate::document::ClusterBundle;
use crate::etcd::{
    BackupInterval, EtcdBackupsSpec, MAX_BACKUP_INTERVAL_SECONDS, MIN_BACKUP_INTERVAL_SECONDS,
};
use crate::instance_group::{InstanceGroup, InstanceGroupRole};
use crate::node_labels;
use crate::text::shorten;
use crate::{API_VERSION, CLUSTER_LABEL, GOSSIP_SUFFIX, KIND_CLUSTER, KIND_INSTANCE_GROUP};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Allowed, but probably not what was meant.
    Warning,
    /// The spec cannot be stored or built.
    Error,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where: `spec.subnets[2].cidr` or `instancegroup/nodes: spec.minSize`.
    pub path: String,
    /// What is wrong and, where it helps, how to fix it.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.path, self.message)
    }
}

/// A spec with at least one error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// The cluster the spec describes.
    pub cluster: String,
    /// Every error found (warnings are not included).
    pub errors: Vec<Diagnostic>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.errors.len();
        write!(
            formatter,
            "the spec of cluster {:?} has {count} error{}:",
            self.cluster,
            if count == 1 { "" } else { "s" }
        )?;
        for error in &self.errors {
            write!(formatter, "\n  {error}")?;
        }
        Ok(())
    }
}

/// Validates a bundle. On success returns the warnings (possibly none).
pub fn validate(bundle: &ClusterBundle) -> Result<Vec<Diagnostic>, ValidationError> {
    let mut checker = Checker::default();
    checker.cluster(bundle);
    for (index, group) in bundle.instance_groups.iter().enumerate() {
        checker.instance_group(bundle, index, group);
    }
    checker.instance_groups_together(bundle);
    let (errors, warnings): (Vec<Diagnostic>, Vec<Diagnostic>) = checker
        .findings
        .into_iter()
        .partition(|finding| finding.severity == Severity::Error);
    if errors.is_empty() {
        Ok(warnings)
    } else {
        Err(ValidationError {
            cluster: bundle.name().to_string(),
            errors,
        })
    }
}

#[derive(Default)]
struct Checker {
    findings: Vec<Diagnostic>,
}

/// Tag keys skiff puts on every resource itself; cloud labels may not override them.
const RESERVED_TAG_PREFIXES: [&str; 4] = [
    "aws:",
    "kubernetes.io/cluster/",
    "skiff.dev/",
    "KubernetesCluster",
];

impl Checker {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Diagnostic {
            severity: Severity::Error,
            path: shorten(&path.into()),
            message: shorten(&message.into()),
        });
    }

    fn warning(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.findings.push(Diagnostic {
            severity: Severity::Warning,
            path: shorten(&path.into()),
            message: shorten(&message.into()),
        });
    }

    fn cidr(&mut self, path: &str, text: &str) -> Option<Ipv4Net> {
        match cidr::parse(text) {
            Ok(network) => Some(network),
            Err(error) => {
                self.error(path, error.to_string());
                None
            }
        }
    }

    fn cluster(&mut self, bundle: &ClusterBundle) {
        let cluster = &bundle.cluster;
        let spec = &cluster.spec;
        if cluster.api_version != API_VERSION {
            self.error(
                "apiVersion",
                format!(
                    "{:?} is not supported; use {API_VERSION}",
                    cluster.api_version
                ),
            );
        }
        if cluster.kind != KIND_CLUSTER {
            self.error("kind", format!("{:?} must be {KIND_CLUSTER}", cluster.kind));
        }
        if let Err(error) = check_cluster_name(&cluster.metadata.name) {
            self.error("metadata.name", error.to_string());
        }

        if !spec.kubernetes_version.is_supported() {
            self.error(
                "spec.kubernetesVersion",
                format!(
                    "{} is not supported; skiff builds {}",
                    spec.kubernetes_version,
                    crate::KubernetesVersion::supported_range()
                ),
            );
        }

        // Region and zones.
        let region = spec.region.clone().or_else(|| {
            spec.subnets
                .first()
                .and_then(|subnet| region_of_zone(&subnet.zone))
        });
        if let Some(region) = &spec.region {
            if !looks_like_region(region) {
                self.error(
                    "spec.region",
                    format!("{region:?} is not an AWS region like us-east-1"),
                );
            }
        }
        if spec.subnets.is_empty() {
            self.error(
                "spec.subnets",
                "at least one subnet is needed (one per zone)",
            );
        }
        let mut names = BTreeSet::new();
        for (index, subnet) in spec.subnets.iter().enumerate() {
            let path = format!("spec.subnets[{index}]");
            if subnet.name.is_empty() {
                self.error(format!("{path}.name"), "must not be empty");
            } else if !names.insert(subnet.name.as_str()) {
                self.error(
                    format!("{path}.name"),
                    format!(
                        "{:?} is used by another subnet; names must be unique",
                        subnet.name
                    ),
                );
            }
            match region_of_zone(&subnet.zone) {
                None => self.error(
                    format!("{path}.zone"),
                    format!(
                        "{:?} is not an availability zone like us-east-1a",
                        subnet.zone
                    ),
                ),
                Some(zone_region) => {
                    if let Some(region) = &region {
                        if &zone_region != region {
                            self.error(
                                format!("{path}.zone"),
                                format!("{} is in region {zone_region}, but the cluster is in {region}; all zones must be in one region", subnet.zone),
                            );
                        }
                    }
                }
            }
            if let Some(id) = &subnet.id {
                if !is_aws_id(id, "subnet-") {
                    self.error(
                        format!("{path}.id"),
                        format!("{id:?} is not a subnet ID like subnet-0123456789abcdef0"),
                    );
                }
            }
        }

        // Network ranges.
        let network = self.cidr("spec.networkCIDR", &spec.network_cidr);
        if let Some(network) = &network {
            if network.prefix_len() < 16 || network.prefix_len() > 28 {
                self.error(
                    "spec.networkCIDR",
                    format!(
                        "{network} has a /{} prefix; an AWS VPC takes /16 to /28",
                        network.prefix_len()
                    ),
                );
            }
        }
        if let Some(id) = &spec.network_id {
            if !is_aws_id(id, "vpc-") {
                self.error(
                    "spec.networkID",
                    format!("{id:?} is not a VPC ID like vpc-0123456789abcdef0"),
                );
            }
        }
        let mut parsed_subnets: Vec<(usize, Ipv4Net)> = Vec::new();
        for (index, subnet) in spec.subnets.iter().enumerate() {
            let path = format!("spec.subnets[{index}].cidr");
            match (&subnet.cidr, &subnet.id) {
                (None, None) => self.error(
                    path,
                    "a subnet needs a cidr, or the id of an existing subnet",
                ),
                (None, Some(_)) => {}
                (Some(text), _) => {
                    if let Some(parsed) = self.cidr(&path, text) {
                        if let Some(network) = &network {
                            if !cidr::contains(network, &parsed) {
                                self.error(
                                    &path,
                                    format!("{parsed} is outside networkCIDR {network}"),
                                );
                            }
                        }
                        if parsed.prefix_len() > 28 {
                            self.error(
                                &path,
                                format!("{parsed} is smaller than /28, the smallest AWS subnet"),
                            );
                        }
                        for (other_index, other) in &parsed_subnets {
                            if cidr::overlaps(other, &parsed) {
                                self.error(&path, format!("{parsed} overlaps spec.subnets[{other_index}].cidr {other}"));
                            }
                        }
                        parsed_subnets.push((index, parsed));
                    }
                }
            }
        }

        // Topology.
        match spec.topology {
            Topology::Public => {
                for (index, subnet) in spec.subnets.iter().enumerate() {
                    if subnet.subnet_type == SubnetType::Private {
                        self.error(
                            format!("spec.subnets[{index}].type"),
                            "Private subnets need topology: private (public topology has no NAT gateways)",
                        );
                    }
                }
            }
            Topology::Private => {
                for (index, subnet) in spec.subnets.iter().enumerate() {
                    if subnet.subnet_type == SubnetType::Private
                        && subnet.id.is_none()
                        && !spec.subnets.iter().any(|other| {
                            other.zone == subnet.zone && other.subnet_type == SubnetType::Utility
                        })
                    {
                        self.error(
                            format!("spec.subnets[{index}]"),
                            format!(
                                "private subnet {:?} in {} has no Utility subnet in its zone for the NAT gateway and load balancer",
                                subnet.name, subnet.zone
                            ),
                        );
                    }
                }
            }
        }

        // Pod and service ranges.
        let networking = &spec.networking;
        let pods = self.cidr("spec.networking.podCIDR", &networking.pod_cidr);
        let services = self.cidr("spec.networking.serviceCIDR", &networking.service_cidr);
        if let (Some(pods), Some(network)) = (&pods, &network) {
            if cidr::overlaps(pods, network) {
                self.error(
                    "spec.networking.podCIDR",
                    format!("{pods} overlaps networkCIDR {network}"),
                );
            }
        }
        if let (Some(services), Some(network)) = (&services, &network) {
            if cidr::overlaps(services, network) {
                self.error(
                    "spec.networking.serviceCIDR",
                    format!("{services} overlaps networkCIDR {network}"),
                );
            }
        }
        if let (Some(pods), Some(services)) = (&pods, &services) {
            if cidr::overlaps(pods, services) {
                self.error(
                    "spec.networking.serviceCIDR",
                    format!("{services} overlaps podCIDR {pods}"),
                );
            }
        }
        match networking.cluster_dns.parse::<std::net::Ipv4Addr>() {
            Err(_) => self.error(
                "spec.networking.clusterDNS",
                format!("{:?} is not an IPv4 address", networking.cluster_dns),
            ),
            Ok(address) => {
                if let Some(services) = &services {
                    if !services.contains(&address)
                        || address == services.network()
                        || address == services.broadcast()
                    {
                        self.error(
                            "spec.networking.clusterDNS",
                            format!("{address} is not a usable address of serviceCIDR {services}"),
                        );
                    } else if let Some(dns_service) = kubeadm_dns_address(services) {
                        if address != dns_service {
                            self.error(
                                "spec.networking.clusterDNS",
                                format!(
                                    "{address} is not where the DNS service is: kubeadm gives it the tenth address of serviceCIDR {services}, {dns_service}, and the kubelets must point there; set clusterDNS to {dns_service}"
                                ),
                            );
                        }
                    }
                }
            }
        }

        // Access.
        for (index, text) in spec.kubernetes_api_access.iter().enumerate() {
            self.cidr(&format!("spec.kubernetesAPIAccess[{index}]"), text);
        }
        for (index, text) in spec.ssh_access.iter().enumerate() {
            self.cidr(&format!("spec.sshAccess[{index}]"), text);
        }
        if let Some(key) = &spec.ssh_public_key {
            let kind = key.split_whitespace().next().unwrap_or_default();
            if !(kind.starts_with("ssh-")
                || kind.starts_with("ecdsa-sha2-")
                || kind.starts_with("sk-"))
                || key.split_whitespace().count() < 2
            {
                self.error(
                    "spec.sshPublicKey",
                    "is not an OpenSSH public key like \"ssh-ed25519 AAAA... user@host\"",
                );
            }
        }

        // DNS.
        if let Some(zone) = &spec.dns_zone {
            let zone_name = zone.trim_end_matches('.');
            if cluster.is_gossip() {
                self.warning(
                    "spec.dnsZone",
                    format!(
                        "is ignored: {} is a gossip cluster (its name ends in {GOSSIP_SUFFIX})",
                        cluster.name()
                    ),
                );
            } else if check_dns_name(zone_name).is_err() {
                self.error("spec.dnsZone", format!("{zone:?} is not a DNS name"));
            } else if !(cluster.name() == zone_name
                || cluster.name().ends_with(&format!(".{zone_name}")))
            {
                self.error(
                    "spec.dnsZone",
                    format!("{zone_name} does not contain the cluster name {}; api.{} must be a name inside the zone", cluster.name(), cluster.name()),
                );
            }
        }

        // Tags.
        for (key, value) in &spec.cloud_labels {
            self.tag(&format!("spec.cloudLabels[{key:?}]"), key, value);
        }

        self.etcd_backups(&spec.etcd.backups);
        for (path, message) in crate::etcd::check_topology(bundle) {
            self.error(path, message);
        }
        self.audit(&spec.control_plane.api_server.audit);
        self.report(crate::component_arguments::findings(&spec.control_plane));
        self.report(crate::addons::findings(&spec.addons));
        for (path, message) in crate::addons::warnings(&spec.addons, spec.kubernetes_version.minor)
        {
            self.warning(path, message);
        }
        self.report(crate::kubelet::findings(
            "spec.kubelet",
            &spec.kubelet,
            None,
        ));
    }

    fn report(&mut self, findings: Vec<(String, String)>) {
        for (path, message) in findings {
            self.error(path, message);
        }
    }

    fn audit(&mut self, audit: &AuditSpec) {
        const PATH: &str = "spec.controlPlane.apiServer.audit";
        for (field, lowest, highest) in AUDIT_LIMITS {
            let value = audit.limit_value(field);
            if !(lowest..=highest).contains(&value) {
                self.error(
                    format!("{PATH}.{field}"),
                    format!("{value} is outside the allowed range; use {lowest} to {highest}"),
                );
            }
        }
        if let Some(policy) = &audit.policy {
            if let Err(error) = check_audit_policy(policy) {
                self.error(format!("{PATH}.policy"), error.to_string());
            }
        }
    }

    fn etcd_backups(&mut self, backups: &EtcdBackupsSpec) {
        let interval = backups.interval.seconds();
        if !(MIN_BACKUP_INTERVAL_SECONDS..=MAX_BACKUP_INTERVAL_SECONDS).contains(&interval) {
            self.error(
                "spec.etcd.backups.interval",
                format!(
                    "{} is outside the allowed range; use a duration between {} and {}",
                    backups.interval,
                    BackupInterval::from_seconds(MIN_BACKUP_INTERVAL_SECONDS),
                    BackupInterval::from_seconds(MAX_BACKUP_INTERVAL_SECONDS),
                ),
            );
        }
        if backups.keep == 0 {
            self.error(
                "spec.etcd.backups.keep",
                "0 would delete every backup; keep at least 1",
            );
        }
    }

    fn tag(&mut self, path: &str, key: &str, value: &str) {
        if key.is_empty() || key.chars().count() > 128 {
            self.error(path, "tag keys must be 1 to 128 characters");
        }
        if value.chars().count() > 256 {
            self.error(path, "tag values must be at most 256 characters");
        }
        if let Some(prefix) = RESERVED_TAG_PREFIXES
            .iter()
            .find(|prefix| key.starts_with(**prefix))
        {
            self.error(
                path,
                format!("tag keys starting with {prefix:?} are reserved for AWS and skiff"),
            );
        }
    }

    fn instance_group(&mut self, bundle: &ClusterBundle, index: usize, group: &InstanceGroup) {
        let name = group.name();
        let prefix = if name.is_empty() {
            format!("instancegroup[{index}]")
        } else {
            format!("instancegroup/{name}")
        };
        let at = |field: &str| format!("{prefix}: {field}");
        let spec = &group.spec;

        if group.api_version != API_VERSION {
            self.error(
                at("apiVersion"),
                format!(
                    "{:?} is not supported; use {API_VERSION}",
                    group.api_version
                ),
            );
        }
        if group.kind != KIND_INSTANCE_GROUP {
            self.error(
                at("kind"),
                format!("{:?} must be {KIND_INSTANCE_GROUP}", group.kind),
            );
        }
        if let Err(error) = check_dns_label(name) {
            self.error(at("metadata.name"), error.to_string());
        }
        if let Some(owner) = group.metadata.labels.get(CLUSTER_LABEL) {
            if owner != bundle.name() {
                self.error(
                    at(&format!("metadata.labels[{CLUSTER_LABEL:?}]")),
                    format!(
                        "names cluster {owner:?}, but the group belongs to {:?}",
                        bundle.name()
                    ),
                );
            }
        }

        if !is_instance_type(&spec.machine_type) {
            self.error(
                at("spec.machineType"),
                format!(
                    "{:?} is not an EC2 instance type like t3.medium",
                    spec.machine_type
                ),
            );
        }
        match &spec.image {
            None => self.error(
                at("spec.image"),
                "an AMI ID (ami-...) or OWNER/NAME pattern is needed",
            ),
            Some(image) => {
                if let Err(error) = check_image(image) {
                    self.error(at("spec.image"), error.to_string());
                }
            }
        }

        if spec.min_size > spec.max_size {
            self.error(
                at("spec.minSize"),
                format!(
                    "{} is greater than maxSize {}",
                    spec.min_size, spec.max_size
                ),
            );
        }
        if spec.max_size > 1000 {
            self.error(
                at("spec.maxSize"),
                format!(
                    "{} is more than the 1000 instances an auto scaling group can hold",
                    spec.max_size
                ),
            );
        }
        if spec.role == InstanceGroupRole::ControlPlane {
            if spec.min_size != 1 || spec.max_size != 1 {
                self.error(
                    at("spec.maxSize"),
                    "a control-plane group runs exactly one instance (minSize: 1, maxSize: 1); add groups for more control-plane nodes",
                );
            }
            if spec.subnets.len() > 1 {
                self.error(
                    at("spec.subnets"),
                    "a control-plane group lives in exactly one subnet (one zone)",
                );
            }
        }

        // Subnets must exist in the cluster.
        if spec.subnets.is_empty() {
            self.error(
                at("spec.subnets"),
                "no subnet: name at least one of the cluster's subnets",
            );
        }
        let known: Vec<&str> = bundle
            .cluster
            .spec
            .subnets
            .iter()
            .map(|subnet| subnet.name.as_str())
            .collect();
        for (subnet_index, subnet) in spec.subnets.iter().enumerate() {
            match bundle
                .cluster
                .spec
                .subnets
                .iter()
                .find(|candidate| &candidate.name == subnet)
            {
                None => self.error(
                    at(&format!("spec.subnets[{subnet_index}]")),
                    format!(
                        "subnet {subnet:?} is not one of the cluster's subnets ({})",
                        known.join(", ")
                    ),
                ),
                Some(found) => {
                    if found.subnet_type == SubnetType::Utility
                        && spec.role != InstanceGroupRole::Bastion
                    {
                        self.error(
                            at(&format!("spec.subnets[{subnet_index}]")),
                            format!("{subnet:?} is a Utility subnet; only bastions run there"),
                        );
                    }
                }
            }
        }

        // Disk.
        let volume = &spec.root_volume;
        if !(8..=16384).contains(&volume.size) {
            self.error(
                at("spec.rootVolume.size"),
                format!("{} GiB is outside 8 to 16384", volume.size),
            );
        }
        if !["gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"]
            .contains(&volume.volume_type.as_str())
        {
            self.error(
                at("spec.rootVolume.type"),
                format!(
                    "{:?} is not an EBS volume type (gp3, gp2, io1, io2, st1, sc1, standard)",
                    volume.volume_type
                ),
            );
        }
        if volume.iops.is_some() && !["gp3", "io1", "io2"].contains(&volume.volume_type.as_str()) {
            self.error(
                at("spec.rootVolume.iops"),
                format!("{} volumes take no provisioned IOPS", volume.volume_type),
            );
        }
        if volume.throughput.is_some() && volume.volume_type != "gp3" {
            self.error(
                at("spec.rootVolume.throughput"),
                "only gp3 volumes take a throughput",
            );
        }

        // Capacity.
        if spec.spot.is_some() && spec.mixed_instances_policy.is_some() {
            self.error(
                at("spec.spot"),
                "use either spot or mixedInstancesPolicy, not both",
            );
        }
        if let Some(spot) = &spec.spot {
            if let Some(price) = &spot.max_price {
                if price
                    .parse::<f64>()
                    .map(|value| value <= 0.0 || !value.is_finite())
                    .unwrap_or(true)
                {
                    self.error(
                        at("spec.spot.maxPrice"),
                        format!("{price:?} is not a price in USD like \"0.05\""),
                    );
                }
            }
        }
        if let Some(policy) = &spec.mixed_instances_policy {
            if policy.instance_types.is_empty() {
                self.error(
                    at("spec.mixedInstancesPolicy.instanceTypes"),
                    "name at least one instance type",
                );
            }
            for (type_index, instance_type) in policy.instance_types.iter().enumerate() {
                if !is_instance_type(instance_type) {
                    self.error(
                        at(&format!(
                            "spec.mixedInstancesPolicy.instanceTypes[{type_index}]"
                        )),
                        format!("{instance_type:?} is not an EC2 instance type"),
                    );
                }
            }
            if policy.on_demand_percentage_above_base > 100 {
                self.error(
                    at("spec.mixedInstancesPolicy.onDemandPercentageAboveBase"),
                    "must be 0 to 100",
                );
            }
            if ![
                "price-capacity-optimized",
                "capacity-optimized",
                "lowest-price",
                "capacity-optimized-prioritized",
            ]
            .contains(&policy.spot_allocation_strategy.as_str())
            {
                self.error(
                    at("spec.mixedInstancesPolicy.spotAllocationStrategy"),
                    format!(
                        "{:?} is not price-capacity-optimized, capacity-optimized or lowest-price",
                        policy.spot_allocation_strategy
                    ),
                );
            }
        }

        // Kubernetes registration.
        for (key, value) in &spec.node_labels {
            if let Err(error) = check_label_key(key) {
                self.error(at(&format!("spec.nodeLabels[{key:?}]")), error.to_string());
            } else if node_labels::kubelet_refuses(key) {
                self.error(
                    at(&format!("spec.nodeLabels[{key:?}]")),
                    format!(
                        "the kubelet refuses to register with a kubernetes.io or k8s.io label outside its own set, so every node of the group would fail to start; use a label of your own domain, or one under {} or of {}",
                        node_labels::KUBELET_LABEL_NAMESPACES.join(", "),
                        node_labels::KUBELET_LABELS.join(", ")
                    ),
                );
            }
            if value.len() > 63
                || !value
                    .chars()
                    .all(|character| character.is_ascii_alphanumeric() || "-_.".contains(character))
            {
                self.error(
                    at(&format!("spec.nodeLabels[{key:?}]")),
                    format!("value {value:?} is not a valid label value"),
                );
            }
        }
        for (taint_index, taint) in spec.taints.iter().enumerate() {
            if let Err(error) = check_label_key(&taint.key) {
                self.error(
                    at(&format!("spec.taints[{taint_index}]")),
                    error.to_string(),
                );
            }
        }
        for (key, value) in &spec.cloud_labels {
            self.tag(&at(&format!("spec.cloudLabels[{key:?}]")), key, value);
        }
        if spec.role == InstanceGroupRole::Bastion && !spec.kubelet.is_empty() {
            self.error(
                at("spec.kubelet"),
                "bastions run no kubelet; remove spec.kubelet",
            );
        }
        self.report(crate::kubelet::findings(
            &at("spec.kubelet"),
            &spec.kubelet,
            Some(&bundle.cluster.spec.kubelet),
        ));
        if spec.container_runtime.is_some() && spec.role == InstanceGroupRole::Bastion {
            self.warning(
                at("spec.containerRuntime"),
                "is ignored: bastions run no container runtime",
            );
        }
        let rolling = spec
            .rolling_update
            .over(&bundle.cluster.spec.rolling_update);
        if rolling.max_surge.is_zero()
            && rolling.max_unavailable.is_zero()
            && !matches!(
                spec.role,
                InstanceGroupRole::ControlPlane | InstanceGroupRole::Etcd
            )
        {
            self.error(
                at("spec.rollingUpdate"),
                "maxSurge and maxUnavailable are both 0, so a rolling update could never replace an instance",
            );
        }
    }

    fn instance_groups_together(&mut self, bundle: &ClusterBundle) {
        for (path, message) in crate::windows::problems(bundle) {
            self.error(path, message);
        }
        for (path, message) in crate::windows::warnings(bundle) {
            self.warning(path, message);
        }
        let mut seen = BTreeMap::new();
        for group in &bundle.instance_groups {
            *seen.entry(group.name()).or_insert(0) += 1;
        }
        for (name, count) in seen {
            if count > 1 {
                self.error(
                    format!("instancegroup/{name}"),
                    format!("defined {count} times; group names must be unique"),
                );
            }
        }
        let control_planes: u32 = bundle
            .instance_groups
            .iter()
            .filter(|group| group.spec.role == InstanceGroupRole::ControlPlane)
            .map(|group| group.spec.max_size)
            .sum();
        if control_planes == 0 {
            self.error("instancegroups", "the cluster has no ControlPlane instance group; create one with `skiff create ig --role ControlPlane`");
        } else if control_planes.is_multiple_of(2) {
            self.warning(
                "instancegroups",
                format!("{control_planes} control-plane nodes: etcd needs a majority, so an even count tolerates no more failures than {}", control_planes - 1),
            );
        }
    }
}

/// Why a cluster name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterNameError {
    /// Not a DNS name at all.
    #[error(transparent)]
    DnsName(#[from] DnsNameError),
    /// A single label: the cluster name must have a dot.
    #[error("{name:?} must be a DNS name with a dot, like c1.example.com (or c1{GOSSIP_SUFFIX} for gossip mode without Route53)")]
    NoDot {
        /// The name given.
        name: String,
    },
}

/// Why a text is not a lowercase DNS name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsNameError {
    /// The name is empty.
    #[error("must not be empty")]
    Empty,
    /// The name is longer than DNS allows.
    #[error("{name:?} is longer than 253 characters")]
    TooLong {
        /// The name given.
        name: String,
    },
    /// One of its labels is invalid. The label's reason is part of the
    /// message (and so not a `source`, which would print it twice).
    #[error("{name:?} is not a valid DNS name: {label}")]
    Label {
        /// The name given.
        name: String,
        /// What is wrong with the label.
        label: DnsLabelError,
    },
}

/// Why a text is not one lowercase DNS label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsLabelError {
    /// The label is empty.
    #[error("empty label (two dots in a row, or a leading or trailing dot)")]
    Empty,
    /// The label is longer than DNS allows.
    #[error("{label:?} is longer than 63 characters")]
    TooLong {
        /// The label given.
        label: String,
    },
    /// The label holds a character other than `a-z`, `0-9` and `-`.
    #[error("{label:?} may hold only lowercase letters, digits and '-'")]
    Characters {
        /// The label given.
        label: String,
    },
    /// The label starts or ends with `-`.
    #[error("{label:?} must start and end with a letter or digit")]
    Edge {
        /// The label given.
        label: String,
    },
}

/// Why a text is not a Kubernetes label key (node labels, taint keys).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum LabelKeyError {
    /// The part before `/` is not a DNS name; its reason is part of the message.
    #[error("label key {key:?}: prefix {prefix}")]
    Prefix { key: String, prefix: DnsNameError },
    /// The name part is empty, too long or has other characters.
    #[error("{key:?} is not a valid Kubernetes label key")]
    Name { key: String },
}

/// Why an instance group's image is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ImageError {
    /// Starts with `ami-` but is not an AMI ID.
    #[error("{image:?} is not an AMI ID like ami-0123456789abcdef0")]
    AmiId { image: String },
    /// An OWNER/NAME pattern with an owner AWS does not accept.
    #[error(
        "image owner {owner:?} must be a 12-digit account ID, amazon, self or aws-marketplace"
    )]
    Owner { owner: String },
    /// Neither form.
    #[error("{image:?} is neither an AMI ID (ami-...) nor OWNER/NAME, e.g. 099720109477/ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*")]
    Form { image: String },
}

/// Checks a cluster name: a lowercase DNS name with at least two labels.
pub fn check_cluster_name(name: &str) -> Result<(), ClusterNameError> {
    check_dns_name(name)?;
    if !name.contains('.') {
        return Err(ClusterNameError::NoDot {
            name: name.to_string(),
        });
    }
    Ok(())
}

fn check_dns_name(name: &str) -> Result<(), DnsNameError> {
    if name.is_empty() {
        return Err(DnsNameError::Empty);
    }
    if name.len() > 253 {
        return Err(DnsNameError::TooLong {
            name: name.to_string(),
        });
    }
    for label in name.split('.') {
        check_dns_label(label).map_err(|label| DnsNameError::Label {
            name: name.to_string(),
            label,
        })?;
    }
    Ok(())
}

/// Checks one DNS label: 1 to 63 lowercase letters, digits or `-`, starting
/// and ending with a letter or digit.
pub fn check_dns_label(label: &str) -> Result<(), DnsLabelError> {
    if label.is_empty() {
        return Err(DnsLabelError::Empty);
    }
    if label.len() > 63 {
        return Err(DnsLabelError::TooLong {
            label: label.to_string(),
        });
    }
    if !label
        .bytes()
        .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
    {
        return Err(DnsLabelError::Characters {
            label: label.to_string(),
        });
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(DnsLabelError::Edge {
            label: label.to_string(),
        });
    }
    Ok(())
}

fn check_label_key(key: &str) -> Result<(), LabelKeyError> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        check_dns_name(prefix).map_err(|prefix| LabelKeyError::Prefix {
            key: key.to_string(),
            prefix,
        })?;
    }
    let valid_name = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-_.".contains(character))
        && name.starts_with(|character: char| character.is_ascii_alphanumeric())
        && name.ends_with(|character: char| character.is_ascii_alphanumeric());
    if valid_name {
        Ok(())
    } else {
        Err(LabelKeyError::Name {
            key: key.to_string(),
        })
    }
}

/// The address kubeadm gives the cluster DNS service: the tenth of the
/// service range (kubernetes/kubernetes cmd/kubeadm/app/constants
/// `GetDNSIP`: `GetIndexedIP(serviceSubnet, 10)`). `None` for a range too
/// small to hold it.
pub fn kubeadm_dns_address(services: &Ipv4Net) -> Option<std::net::Ipv4Addr> {
    let address = u32::from(services.network()).checked_add(10)?;
    let address = std::net::Ipv4Addr::from(address);
    (services.contains(&address) && address != services.broadcast()).then_some(address)
}

fn looks_like_region(region: &str) -> bool {
    region_of_zone(&format!("{region}a")).as_deref() == Some(region)
}

fn is_aws_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| {
        (8..=17).contains(&rest.len()) && rest.bytes().all(|byte| byte.is_ascii_hexdigit())
    })
}

fn is_instance_type(text: &str) -> bool {
    match text.split_once('.') {
        Some((family, size)) => {
            !family.is_empty()
                && !size.is_empty()
                && family
                    .bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
                && size
                    .bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
        }
        None => false,
    }
}

fn check_image(image: &str) -> Result<(), ImageError> {
    if image.starts_with("ami-") {
        return if is_aws_id(image, "ami-") {
            Ok(())
        } else {
            Err(ImageError::AmiId {
                image: image.to_string(),
            })
        };
    }
    match image.split_once('/') {
        Some((owner, name)) if !owner.is_empty() && !name.is_empty() => {
            let owner_ok = (owner.len() == 12 && owner.bytes().all(|byte| byte.is_ascii_digit()))
                || ["amazon", "self", "aws-marketplace"].contains(&owner);
            if owner_ok {
                Ok(())
            } else {
                Err(ImageError::Owner {
                    owner: owner.to_string(),
                })
            }
        }
        _ => Err(ImageError::Form {
            image: image.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::new_cluster::{new_cluster, NewClusterOptions};
    use crate::{Cni, LoadBalancerType, OsFamily};

    fn bundle() -> ClusterBundle {
        new_cluster(&NewClusterOptions {
            name: "c1.example.com".to_string(),
            zones: vec!["us-east-1a".into(), "us-east-1b".into()],
            control_plane_zones: Vec::new(),
            control_plane_count: 1,
            control_plane_size: "t3.medium".into(),
            node_count: 2,
            node_size: "t3.medium".into(),
            kubernetes_version: crate::version::DEFAULT_VERSION.parse().expect("valid"),
            topology: Topology::Public,
            cni: Cni::Calico,
            dns_zone: None,
            network_cidr: "10.1.0.0/16".into(),
            network_id: None,
            ssh_public_key: None,
            api_load_balancer_type: LoadBalancerType::Public,
            cloud_labels: Default::default(),
            image: None,
            os_family: OsFamily::Debian,
            admin_access: vec!["0.0.0.0/0".into()],
            ssh_access: vec!["0.0.0.0/0".into()],
        })
        .expect("builds")
    }

    fn errors(bundle: &ClusterBundle) -> Vec<String> {
        match validate(bundle) {
            Ok(_) => Vec::new(),
            Err(error) => error.errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn etcd_backups_name_their_fields() {
        let mut spec = bundle();
        spec.cluster.spec.etcd.backups.keep = 0;
        spec.cluster.spec.etcd.backups.interval = BackupInterval::from_seconds(30);
        assert_eq!(
            errors(&spec),
            [
                "spec.etcd.backups.interval: 30s is outside the allowed range; use a duration between 1m and 24h",
                "spec.etcd.backups.keep: 0 would delete every backup; keep at least 1",
            ]
        );
        spec.cluster.spec.etcd.backups.keep = 1;
        spec.cluster.spec.etcd.backups.interval = BackupInterval::from_seconds(86_401);
        assert_eq!(
            errors(&spec),
            ["spec.etcd.backups.interval: 86401s is outside the allowed range; use a duration between 1m and 24h"]
        );
        spec.cluster.spec.etcd.backups.interval = BackupInterval::from_seconds(86_400);
        assert!(errors(&spec).is_empty());
    }

    #[test]
    fn an_addon_release_skiff_has_no_digests_for_is_refused_naming_the_field() {
        let mut spec = bundle();
        spec.cluster.spec.addons = serde_norway::from_str(
            "metricsServer: {version: v0.9.0}\nclusterAutoscaler: {enabled: true, version: v1.34.5}\n",
        )
        .expect("parses");
        let errors = errors(&spec);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("spec.addons.metricsServer.version: "),
            "{errors:?}"
        );
        assert!(errors[0].contains("v0.7.2, v0.8.0"), "{errors:?}");
        spec.cluster.spec.addons.metrics_server = None;
        assert!(super::validate(&spec).is_ok());
    }

    #[test]
    fn audit_settings_name_their_fields() {
        let mut spec = bundle();
        let audit = &mut spec.cluster.spec.control_plane.api_server.audit;
        audit.max_age_days = 0;
        audit.max_size_megabytes = 20_000;
        audit.policy = Some(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: RequestResponse\n"
                .to_string(),
        );
        let found = errors(&spec);
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(
            found[0],
            "spec.controlPlane.apiServer.audit.maxAgeDays: 0 is outside the allowed range; use 1 to 3650"
        );
        assert!(found[1].starts_with("spec.controlPlane.apiServer.audit.maxSizeMegabytes: 20000"));
        assert!(
            found[2].starts_with(
                "spec.controlPlane.apiServer.audit.policy: rules[0] has level RequestResponse"
            ),
            "{found:?}"
        );
        let yaml = bundle().to_yaml();
        assert!(yaml.contains("maxAgeDays: 30"), "{yaml}");
        let error = ClusterBundle::from_yaml(&yaml.replace("maxBackups: 10", "maxBackup: 10"))
            .expect_err("refused");
        assert_eq!(
            error.path.as_deref(),
            Some("spec.controlPlane.apiServer.audit.maxBackup")
        );
    }

    #[test]
    fn etcd_backup_interval_parse_errors_name_the_field() {
        let yaml = bundle()
            .to_yaml()
            .replace("interval: 15m", "interval: soon");
        let error = ClusterBundle::from_yaml(&yaml).expect_err("refused");
        assert_eq!(error.path.as_deref(), Some("spec.etcd.backups.interval"));
        assert!(error.message.contains("not a duration like 15m"), "{error}");
    }

    #[test]
    fn subnet_outside_network_names_the_field() {
        let mut spec = bundle();
        spec.cluster.spec.subnets[1].cidr = Some("10.0.9.0/24".into());
        assert_eq!(
            errors(&spec),
            ["spec.subnets[1].cidr: 10.0.9.0/24 is outside networkCIDR 10.1.0.0/16"]
        );
    }

    #[test]
    fn zones_of_two_regions_are_refused() {
        let mut spec = bundle();
        spec.cluster.spec.subnets[1].zone = "us-west-2b".into();
        let found = errors(&spec);
        assert!(
            found.iter().any(|error| error
                .starts_with("spec.subnets[1].zone: us-west-2b is in region us-west-2")),
            "{found:?}"
        );
    }

    #[test]
    fn overlapping_subnets_and_service_range() {
        let mut spec = bundle();
        spec.cluster.spec.subnets[1].cidr = spec.cluster.spec.subnets[0].cidr.clone();
        spec.cluster.spec.networking.service_cidr = "10.1.0.0/20".into();
        spec.cluster.spec.networking.cluster_dns = "10.1.0.10".into();
        let found = errors(&spec);
        assert!(
            found
                .iter()
                .any(|error| error.contains("overlaps spec.subnets[0].cidr")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|error| error
                .starts_with("spec.networking.serviceCIDR: 10.1.0.0/20 overlaps networkCIDR")),
            "{found:?}"
        );
    }

    #[test]
    fn cluster_dns_must_be_where_kubeadm_puts_the_dns_service() {
        let mut spec = bundle();
        spec.cluster.spec.networking.cluster_dns = "10.96.0.53".into();
        assert_eq!(
            errors(&spec),
            ["spec.networking.clusterDNS: 10.96.0.53 is not where the DNS service is: kubeadm gives it the tenth address of serviceCIDR 10.96.0.0/12, 10.96.0.10, and the kubelets must point there; set clusterDNS to 10.96.0.10"]
        );
        spec.cluster.spec.networking.service_cidr = "172.20.0.0/16".into();
        spec.cluster.spec.networking.cluster_dns = "172.20.0.10".into();
        assert_eq!(errors(&spec), Vec::<String>::new());
    }

    #[test]
    fn kubernetes_io_node_labels_outside_the_kubelets_set_are_refused() {
        let mut spec = bundle();
        let nodes = spec
            .instance_groups
            .iter_mut()
            .find(|group| group.spec.role == InstanceGroupRole::Node)
            .expect("nodes");
        let name = nodes.name().to_string();
        for key in [
            "node-role.kubernetes.io/worker",
            "node.kubernetes.io/pool",
            "team",
        ] {
            nodes.spec.node_labels.insert(key.into(), "a".into());
        }
        let found = errors(&spec);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(&format!(
                "instancegroup/{name}: spec.nodeLabels[\"node-role.kubernetes.io/worker\"]: the kubelet refuses"
            )),
            "{found:?}"
        );
        assert!(found[0].contains("node.kubernetes.io"), "{found:?}");
    }

    #[test]
    fn a_bastions_runtime_is_a_warning() {
        let mut spec = bundle();
        let mut bastion = spec.instance_groups[0].clone();
        bastion.metadata.name = "bastions".into();
        bastion.spec.role = InstanceGroupRole::Bastion;
        bastion.spec.container_runtime = Some(crate::ContainerRuntime::CriO);
        spec.instance_groups.push(bastion);
        let warnings = validate(&spec).expect("valid");
        assert_eq!(
            warnings
                .iter()
                .map(ToString::to_string)
                .filter(|warning| warning.contains("containerRuntime"))
                .collect::<Vec<_>>(),
            ["instancegroup/bastions: spec.containerRuntime: is ignored: bastions run no container runtime"]
        );
    }

    #[test]
    fn min_above_max_and_unknown_subnet() {
        let mut spec = bundle();
        let nodes = spec
            .instance_groups
            .iter_mut()
            .find(|group| group.spec.role == InstanceGroupRole::Node)
            .expect("nodes");
        nodes.spec.min_size = 5;
        nodes.spec.max_size = 2;
        nodes.spec.subnets = vec!["us-east-1z".into()];
        let found = errors(&spec);
        assert!(
            found
                .iter()
                .any(|error| error.ends_with("spec.minSize: 5 is greater than maxSize 2")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|error| error.contains(
                "spec.subnets[0]: subnet \"us-east-1z\" is not one of the cluster's subnets"
            )),
            "{found:?}"
        );
    }

    #[test]
    fn even_control_plane_is_a_warning() {
        let mut spec = bundle();
        let mut second = spec.instance_groups[0].clone();
        second.metadata.name = "control-plane-us-east-1b".into();
        second.spec.subnets = vec!["us-east-1b".into()];
        spec.instance_groups.push(second);
        let warnings = validate(&spec).expect("valid");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].message.contains("2 control-plane nodes"));
    }

    #[test]
    fn names_must_be_dns() {
        for name in [
            "C1.example.com",
            "c1",
            "c1..example.com",
            "-c1.example.com",
            "c_1.example.com",
        ] {
            assert!(check_cluster_name(name).is_err(), "{name} accepted");
        }
        assert!(check_cluster_name("c1.k8s.local").is_ok());
    }

    #[test]
    fn name_errors_keep_their_messages() {
        let message = |name: &str| check_cluster_name(name).map_err(|error| error.to_string());
        assert_eq!(
            message("c1"),
            Err("\"c1\" must be a DNS name with a dot, like c1.example.com (or c1.k8s.local for gossip mode without Route53)".to_string())
        );
        assert_eq!(
            message("c1..example.com"),
            Err("\"c1..example.com\" is not a valid DNS name: empty label (two dots in a row, or a leading or trailing dot)".to_string())
        );
        assert_eq!(message(""), Err("must not be empty".to_string()));
        assert_eq!(
            check_label_key("Bad_/x").map_err(|error| error.to_string()),
            Err("label key \"Bad_/x\": prefix \"Bad_\" is not a valid DNS name: \"Bad_\" may hold only lowercase letters, digits and '-'".to_string())
        );
        assert_eq!(
            check_image("ami-xyz").map_err(|error| error.to_string()),
            Err("\"ami-xyz\" is not an AMI ID like ami-0123456789abcdef0".to_string())
        );
    }
}
