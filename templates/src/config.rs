//! What a node is told at launch, and the checks those values pass before
//! they are written into a shell script and YAML.
//!
//! The values come from a validated cluster spec, but this crate renders
//! them into code that runs as root on every node, so it checks them again
//! at its own boundary: a value that would break the script's quoting, a
//! kubelet flag or a URL is refused here with the setting's name, instead of
//! failing on a node ten minutes after launch.

use std::collections::BTreeMap;
use std::net::IpAddr;

use skiff_api::{Cni, ContainerRuntime, InstanceGroupRole, KubernetesVersion, OsFamily, Taint};

use crate::error::TemplateError;

/// Everything non-secret a node needs to become part of its cluster. It is
/// rendered into the instance's user-data, which anyone allowed
/// `ec2:DescribeInstanceAttribute` can read, so it must never hold a secret:
/// the node reads those from the state store at boot.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeBootstrap {
    /// The cluster's name, e.g. `c1.example.com`.
    pub cluster_name: String,
    /// The instance group the node belongs to, e.g. `nodes-us-east-1a`.
    pub instance_group: String,
    /// What the node does.
    pub role: InstanceGroupRole,
    /// The image's operating-system family, which picks apt or dnf.
    pub os_family: OsFamily,
    /// The exact Kubernetes release to install.
    pub kubernetes_version: KubernetesVersion,
    /// The container runtime to install and point the kubelet, kubeadm and
    /// `crictl` at (the group's `containerRuntime`, else the cluster's).
    pub container_runtime: ContainerRuntime,
    /// The host clients use for the API: `api.c1.example.com`, or the load
    /// balancer's DNS name for gossip clusters (`*.k8s.local`).
    pub api_endpoint: String,
    /// The API port clients use: 443 on the load balancer, which forwards to
    /// 6443 on the control-plane nodes.
    pub api_port: u16,
    /// Extra names in the API server's certificate (the API name and the load
    /// balancer's DNS name). `api_endpoint` is always the first name; listing
    /// it here too is harmless (it is left out, so that it stays only where a
    /// substitution of the user-data reaches it). One name ending in
    /// `.invalid` may stand for a name known only once the load balancer
    /// exists (the internet-facing load balancer of a gossip cluster whose
    /// nodes use an internal one): it goes to the endpoint file, where the
    /// substitution of the user-data fills it in, and the node puts it in the
    /// certificate.
    pub api_cert_sans: Vec<String>,
    /// The pod address range, e.g. `100.96.0.0/11`.
    pub pod_cidr: String,
    /// The service address range, e.g. `10.96.0.0/12`.
    pub service_cidr: String,
    /// The cluster DNS service address, inside `service_cidr`.
    pub cluster_dns: String,
    /// The CNI plugin the first control-plane node installs.
    pub cni: Cni,
    /// Whether the cluster has Windows worker groups. With Calico, the
    /// first control-plane node then installs Calico through the Tigera
    /// operator with its Windows data plane (VXLAN, strict IPAM affinity)
    /// and kube-proxy for Windows; Linux-only clusters render as before.
    pub windows_nodes: bool,
    /// Labels the node registers with (the group's `nodeLabels`).
    pub node_labels: BTreeMap<String, String>,
    /// Taints the node registers with (the group's `taints`).
    pub taints: Vec<Taint>,
    /// Where the node reads the cluster's secrets.
    pub state_store: StateStoreLocation,
    /// The cluster's AWS region: where the node calls EC2 (which instances of
    /// the cluster run) and Auto Scaling (`SetInstanceHealth`).
    pub region: String,
    /// A custom endpoint for the node's EC2 and Auto Scaling calls, such as
    /// `http://127.0.0.1:5123` (tests); `None` means the regional endpoints
    /// `https://ec2.<region>.amazonaws.com` and `https://autoscaling.<region>.amazonaws.com`.
    pub aws_endpoint: Option<String>,
    /// How often control-plane nodes snapshot etcd to the state store, and
    /// how many snapshots they keep.
    pub etcd_backups: EtcdBackups,
    /// The API server's audit log on control-plane nodes.
    pub audit: AuditLog,
    /// The group's kubelet settings (the cluster's `spec.kubelet` with the
    /// group's merged over it), written as this node's kubeadm patch of
    /// its kubelet configuration (see `kubelet.rs`).
    pub kubelet: skiff_api::KubeletSpec,
    /// The control-plane components' extra flags and host folders.
    pub component_arguments: crate::ComponentArguments,
    /// With `spec.etcd.topology: external`, the etcd cluster: what an
    /// `Etcd` node belongs to (its member is the one named after its
    /// instance group) and what the control plane uses instead of a local
    /// member. `None`: stacked etcd.
    pub external_etcd: Option<crate::ExternalEtcd>,
    /// The AWS cloud-controller-manager is on (`spec.addons`): the kubelet
    /// runs `--cloud-provider=external` and the node registers with the
    /// instance's private DNS name (Linux nodes; a Windows node ignores it).
    pub external_cloud_provider: bool,
}

/// The API server's audit log as the node applies it
/// (`spec.controlPlane.apiServer.audit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLog {
    /// A custom `audit.k8s.io/v1` `Policy` (YAML); `None`: skiff's default,
    /// [`DEFAULT_AUDIT_POLICY`].
    pub policy: Option<String>,
    /// `--audit-log-maxage`: days a rotated file is kept.
    pub max_age_days: u32,
    /// `--audit-log-maxbackup`: rotated files kept.
    pub max_backups: u32,
    /// `--audit-log-maxsize`: megabytes at which the log is rotated.
    pub max_size_megabytes: u32,
}

impl Default for AuditLog {
    fn default() -> Self {
        AuditLog::from(&skiff_api::AuditSpec::default())
    }
}

impl From<&skiff_api::AuditSpec> for AuditLog {
    fn from(spec: &skiff_api::AuditSpec) -> Self {
        AuditLog {
            policy: spec.policy.clone(),
            max_age_days: spec.max_age_days,
            max_backups: spec.max_backups,
            max_size_megabytes: spec.max_size_megabytes,
        }
    }
}

impl AuditLog {
    /// The policy the API server gets: the custom one, else skiff's.
    pub fn policy_text(&self) -> &str {
        self.policy.as_deref().unwrap_or(DEFAULT_AUDIT_POLICY)
    }
}

/// skiff's default audit policy (`templates/audit-policy.yaml`; the reasons
/// for each rule are in the file and in docs/security.md).
pub const DEFAULT_AUDIT_POLICY: &str = include_str!("../templates/audit-policy.yaml");

/// etcd backup settings as the node applies them (`spec.etcd.backups`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EtcdBackups {
    /// Seconds between two snapshots.
    pub interval_seconds: u64,
    /// How many of the newest snapshots to keep (besides one a day for 7 days).
    pub keep: u32,
}

impl Default for EtcdBackups {
    /// Every 15 minutes, the last 96 kept (a day), as kops's etcd-manager.
    fn default() -> Self {
        EtcdBackups {
            interval_seconds: 15 * 60,
            keep: 96,
        }
    }
}

/// Where the cluster's objects live in S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateStoreLocation {
    /// The bucket's name.
    pub bucket: String,
    /// The key prefix of this cluster, without a trailing slash, e.g.
    /// `team-a/c1.example.com` (or `c1.example.com` when the store has no prefix).
    pub cluster_prefix: String,
    /// The bucket's region.
    pub region: String,
    /// A custom S3 endpoint such as `http://127.0.0.1:5123`; `None` means
    /// `https://s3.<region>.amazonaws.com`.
    pub endpoint: Option<String>,
    /// Path-style addressing (always true with a custom endpoint).
    pub path_style: bool,
    /// The KMS key of the bucket's default encryption, when it has one:
    /// what control-plane nodes write etcd backups with (else SSE-S3).
    pub kms_key: Option<String>,
}

impl StateStoreLocation {
    /// The URL of the cluster's folder, without a trailing slash: the object
    /// `pki/ca.crt` is at `<url>/pki/ca.crt`.
    ///
    /// Virtual-hosted addressing is used unless asked otherwise, except for
    /// bucket names with dots: their virtual host would not match the
    /// `*.s3.<region>.amazonaws.com` certificate.
    pub fn cluster_url(&self) -> Result<String, TemplateError> {
        self.validate()?;
        let prefix = encode_key(&self.cluster_prefix);
        if let Some(endpoint) = &self.endpoint {
            let endpoint = endpoint.trim_end_matches('/');
            return Ok(format!("{endpoint}/{}/{prefix}", self.bucket));
        }
        let domain = if self.region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        if self.path_style || self.bucket.contains('.') {
            Ok(format!(
                "https://s3.{}.{domain}/{}/{prefix}",
                self.region, self.bucket
            ))
        } else {
            Ok(format!(
                "https://{}.s3.{}.{domain}/{prefix}",
                self.bucket, self.region
            ))
        }
    }

    /// The URL of the bucket itself, without a trailing slash, for listing
    /// (`?list-type=2&prefix=...`): the cluster URL without its prefix.
    pub fn bucket_url(&self) -> Result<String, TemplateError> {
        let cluster_url = self.cluster_url()?;
        let prefix = encode_key(&self.cluster_prefix);
        Ok(cluster_url
            .strip_suffix(&format!("/{prefix}"))
            .unwrap_or(&cluster_url)
            .to_string())
    }

    /// `s3://<bucket>/<prefix>`, for messages that tell an operator where to look.
    pub fn display_url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.cluster_prefix)
    }

    fn validate(&self) -> Result<(), TemplateError> {
        let bucket = &self.bucket;
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|byte| {
                byte.is_ascii_lowercase() || byte.is_ascii_digit() || b".-".contains(&byte)
            })
            && !bucket.starts_with(['.', '-'])
            && !bucket.ends_with(['.', '-']);
        if !bucket_ok {
            return Err(TemplateError::invalid(
                "state_store.bucket",
                bucket,
                "an S3 bucket name has 3 to 63 lowercase letters, digits, dots and hyphens",
            ));
        }
        check_region("state_store.region", &self.region)?;
        let prefix = &self.cluster_prefix;
        if prefix.is_empty()
            || prefix.starts_with('/')
            || prefix.ends_with('/')
            || prefix.contains("//")
            || prefix.chars().any(char::is_control)
        {
            return Err(TemplateError::invalid(
                "state_store.cluster_prefix",
                prefix,
                "expected a key prefix such as team-a/c1.example.com: not empty, \
                 no leading, trailing or doubled slash",
            ));
        }
        if let Some(endpoint) = &self.endpoint {
            let scheme_ok = endpoint.starts_with("http://") || endpoint.starts_with("https://");
            if !scheme_ok || endpoint.contains(['?', '#']) || endpoint.contains(char::is_whitespace)
            {
                return Err(TemplateError::invalid(
                    "state_store.endpoint",
                    endpoint,
                    "expected an http:// or https:// URL without query, such as http://127.0.0.1:5123",
                ));
            }
            if !self.path_style {
                return Err(TemplateError::invalid(
                    "state_store.path_style",
                    "false",
                    "a custom S3 endpoint is addressed path-style; set path_style to true",
                ));
            }
        }
        Ok(())
    }
}

/// An AWS region name as the script and the URLs take it: lowercase
/// letters, digits and hyphens.
fn check_region(setting: &str, region: &str) -> Result<(), TemplateError> {
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    if region_ok {
        Ok(())
    } else {
        Err(TemplateError::invalid(
            setting,
            region,
            "expected an AWS region such as us-east-1",
        ))
    }
}

/// Percent-encodes an object key the way S3 signs it: every byte except
/// unreserved characters and `/`.
fn encode_key(key: &str) -> String {
    let mut encoded = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

impl NodeBootstrap {
    /// Checks every value before it is rendered into the node's script and
    /// configuration files.
    pub fn validate(&self) -> Result<(), TemplateError> {
        if let Some(etcd) = &self.external_etcd {
            etcd.validate()?;
        }
        if self.role == InstanceGroupRole::Etcd
            && self
                .external_etcd
                .as_ref()
                .and_then(|etcd| etcd.member(&self.instance_group))
                .is_none()
        {
            return Err(TemplateError::invalid(
                "external_etcd",
                &self.instance_group,
                "an Etcd node's group must be one of the external etcd cluster's members",
            ));
        }
        if !self.kubernetes_version.is_supported() {
            return Err(TemplateError::UnsupportedVersion {
                version: self.kubernetes_version,
                supported: KubernetesVersion::supported_range(),
            });
        }
        check_region("region", &self.region)?;
        if let Some(endpoint) = &self.aws_endpoint {
            let scheme_ok = endpoint.starts_with("http://") || endpoint.starts_with("https://");
            if !scheme_ok
                || endpoint.contains(['?', '#', '\'', '"', '$', '`'])
                || endpoint.contains(char::is_whitespace)
            {
                return Err(TemplateError::invalid(
                    "aws_endpoint",
                    endpoint,
                    "expected an http:// or https:// URL without query, such as http://127.0.0.1:5123",
                ));
            }
        }
        let audit = &self.audit;
        for (setting, value) in [
            ("audit.max_age_days", audit.max_age_days),
            ("audit.max_backups", audit.max_backups),
            ("audit.max_size_megabytes", audit.max_size_megabytes),
        ] {
            if value == 0 {
                return Err(TemplateError::invalid(
                    setting,
                    "0",
                    "0 turns the API server's rotation limit off; expected at least 1",
                ));
            }
        }
        if let Err(problem) = skiff_api::check_audit_policy(audit.policy_text()) {
            return Err(TemplateError::invalid(
                "audit.policy",
                "(the audit policy)",
                problem.to_string(),
            ));
        }
        crate::kubelet::validate_kubelet(&self.kubelet)?;
        self.component_arguments.validate()?;
        let backups = self.etcd_backups;
        if backups.keep == 0 {
            return Err(TemplateError::invalid(
                "etcd_backups.keep",
                "0",
                "keeping no backup would delete every backup; keep at least 1",
            ));
        }
        if !(60..=86_400).contains(&backups.interval_seconds) {
            return Err(TemplateError::invalid(
                "etcd_backups.interval_seconds",
                backups.interval_seconds.to_string(),
                "expected an interval between 1 minute and 24 hours",
            ));
        }
        if !is_dns_name(&self.cluster_name) {
            return Err(TemplateError::invalid(
                "cluster_name",
                &self.cluster_name,
                "expected a DNS name such as c1.example.com",
            ));
        }
        if let Err(problem) = check_label_value(&self.instance_group) {
            return Err(TemplateError::invalid(
                "instance_group",
                &self.instance_group,
                format!("the name becomes the node label {INSTANCE_GROUP_LABEL}, so {problem}"),
            ));
        }
        if !is_host(&self.api_endpoint) {
            return Err(TemplateError::invalid(
                "api_endpoint",
                &self.api_endpoint,
                "expected a DNS name or IPv4 address without scheme or port, such as api.c1.example.com",
            ));
        }
        if self.api_port == 0 {
            return Err(TemplateError::invalid(
                "api_port",
                "0",
                "expected the load balancer's listener port, usually 443",
            ));
        }
        if self
            .api_cert_sans
            .iter()
            .filter(|name| is_placeholder(name))
            .count()
            > 1
        {
            return Err(TemplateError::invalid(
                "api_cert_sans",
                self.api_cert_sans.join(","),
                "at most one certificate name may be a placeholder (ending in .invalid)",
            ));
        }
        for name in &self.api_cert_sans {
            let wildcard_free = name.strip_prefix("*.").unwrap_or(name);
            if !is_host(wildcard_free) && name.parse::<IpAddr>().is_err() {
                return Err(TemplateError::invalid(
                    "api_cert_sans",
                    name,
                    "every extra certificate name must be a DNS name or an IP address",
                ));
            }
        }
        check_cidr("pod_cidr", &self.pod_cidr)?;
        check_cidr("service_cidr", &self.service_cidr)?;
        if self.cluster_dns.parse::<IpAddr>().is_err() {
            return Err(TemplateError::invalid(
                "cluster_dns",
                &self.cluster_dns,
                "expected an IP address inside the service range, such as 10.96.0.10",
            ));
        }
        for (key, value) in &self.node_labels {
            check_label_key(key).map_err(|problem| {
                TemplateError::invalid("node_labels", key, format!("label key: {problem}"))
            })?;
            check_label_value(value).map_err(|problem| {
                TemplateError::invalid(
                    format!("node_labels.{key}"),
                    value,
                    format!("label value: {problem}"),
                )
            })?;
        }
        for taint in &self.taints {
            let text = taint.to_string();
            check_label_key(&taint.key).map_err(|problem| {
                TemplateError::invalid("taints", &text, format!("taint key: {problem}"))
            })?;
            check_label_value(&taint.value).map_err(|problem| {
                TemplateError::invalid("taints", &text, format!("taint value: {problem}"))
            })?;
            if !matches!(
                taint.effect.as_str(),
                "NoSchedule" | "PreferNoSchedule" | "NoExecute"
            ) {
                return Err(TemplateError::invalid(
                    "taints",
                    &text,
                    "the effect must be NoSchedule, PreferNoSchedule or NoExecute",
                ));
            }
        }
        self.state_store.validate()
    }
}

/// The label every node carries so that tools find the nodes of a group.
pub const INSTANCE_GROUP_LABEL: &str = "skiff.dev/instance-group";

fn is_dns_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|part| {
            !part.is_empty()
                && part.len() <= 63
                && part
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// A DNS name or an IPv4 address: something `host:port` can be built from.
/// Whether a certificate name stands for one filled into the user-data
/// after rendering (`.invalid` never resolves: RFC 6761).
pub(crate) fn is_placeholder(name: &str) -> bool {
    name.ends_with(".invalid")
}

fn is_host(text: &str) -> bool {
    is_dns_name(text) || text.parse::<std::net::Ipv4Addr>().is_ok()
}

fn check_cidr(setting: &str, text: &str) -> Result<(), TemplateError> {
    let valid = text.split_once('/').is_some_and(|(address, length)| {
        let Ok(address) = address.parse::<IpAddr>() else {
            return false;
        };
        let longest = if address.is_ipv4() { 32 } else { 128 };
        length.bytes().all(|byte| byte.is_ascii_digit())
            && length.parse::<u8>().is_ok_and(|length| length <= longest)
    });
    if valid {
        Ok(())
    } else {
        Err(TemplateError::invalid(
            setting,
            text,
            "expected an address range such as 100.96.0.0/11",
        ))
    }
}

/// Why a node label or taint key or value is refused. The message completes
/// a sentence of [`TemplateError::InvalidSetting`] ("label key: ...").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum LabelError {
    /// A value (or the name part of a key) with other characters or too long.
    #[error(
        "it must be at most 63 letters, digits, '-', '_' or '.', \
         beginning and ending with a letter or digit"
    )]
    Segment,
    /// The part of a key before `/` is not a DNS name.
    #[error("the prefix {prefix:?} must be a DNS name")]
    Prefix { prefix: String },
    /// A key ending in `/`.
    #[error("the name part must not be empty")]
    EmptyName,
}

/// A Kubernetes label name segment: up to 63 characters, alphanumeric at both
/// ends, `-`, `_` and `.` inside. Empty is allowed for values.
fn check_label_value(text: &str) -> Result<(), LabelError> {
    if text.is_empty() {
        return Ok(());
    }
    let valid = text.len() <= 63
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_.".contains(&byte))
        && text.starts_with(|character: char| character.is_ascii_alphanumeric())
        && text.ends_with(|character: char| character.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(LabelError::Segment)
    }
}

/// A Kubernetes label key: an optional DNS-name prefix and `/`, then a name.
fn check_label_key(text: &str) -> Result<(), LabelError> {
    let name = match text.split_once('/') {
        Some((prefix, name)) => {
            if !is_dns_name(prefix) {
                return Err(LabelError::Prefix {
                    prefix: prefix.to_string(),
                });
            }
            name
        }
        None => text,
    };
    if name.is_empty() {
        return Err(LabelError::EmptyName);
    }
    check_label_value(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> StateStoreLocation {
        StateStoreLocation {
            bucket: "skiff-state".to_string(),
            cluster_prefix: "team-a/c1.example.com".to_string(),
            region: "eu-west-1".to_string(),
            endpoint: None,
            path_style: false,
            kms_key: None,
        }
    }

    #[test]
    fn virtual_hosted_url_by_default() {
        assert_eq!(
            store().cluster_url().expect("valid"),
            "https://skiff-state.s3.eu-west-1.amazonaws.com/team-a/c1.example.com"
        );
    }

    #[test]
    fn path_style_for_dotted_buckets_and_when_asked() {
        let dotted = StateStoreLocation {
            bucket: "state.example.com".to_string(),
            ..store()
        };
        assert_eq!(
            dotted.cluster_url().expect("valid"),
            "https://s3.eu-west-1.amazonaws.com/state.example.com/team-a/c1.example.com"
        );
        let asked = StateStoreLocation {
            path_style: true,
            ..store()
        };
        assert!(asked
            .cluster_url()
            .expect("valid")
            .starts_with("https://s3.eu-west-1.amazonaws.com/skiff-state/"));
    }

    #[test]
    fn custom_endpoint_is_path_style_and_requires_it() {
        let local = StateStoreLocation {
            endpoint: Some("http://127.0.0.1:5123/".to_string()),
            path_style: true,
            ..store()
        };
        assert_eq!(
            local.cluster_url().expect("valid"),
            "http://127.0.0.1:5123/skiff-state/team-a/c1.example.com"
        );
        let virtual_hosted = StateStoreLocation {
            path_style: false,
            ..local
        };
        let error = virtual_hosted.cluster_url().expect_err("refused");
        assert!(
            error.to_string().contains("state_store.path_style"),
            "{error}"
        );
    }

    #[test]
    fn china_regions_use_their_own_domain() {
        let china = StateStoreLocation {
            region: "cn-north-1".to_string(),
            ..store()
        };
        assert_eq!(
            china.cluster_url().expect("valid"),
            "https://skiff-state.s3.cn-north-1.amazonaws.com.cn/team-a/c1.example.com"
        );
    }

    #[test]
    fn keys_are_percent_encoded_except_unreserved_and_slash() {
        assert_eq!(encode_key("a b/c+d~e_f.g-h"), "a%20b/c%2Bd~e_f.g-h");
    }

    #[test]
    fn bad_prefixes_are_refused_by_name() {
        for prefix in ["", "/c1", "c1/", "a//b"] {
            let location = StateStoreLocation {
                cluster_prefix: prefix.to_string(),
                ..store()
            };
            let error = location.cluster_url().expect_err(prefix);
            assert!(error.to_string().contains("cluster_prefix"), "{error}");
        }
    }

    #[test]
    fn label_rules() {
        assert!(check_label_key("skiff.dev/instance-group").is_ok());
        assert!(check_label_key("role").is_ok());
        assert!(check_label_key("bad key").is_err());
        assert!(check_label_key("a,b").is_err());
        assert!(check_label_key("prefix/").is_err());
        assert!(check_label_value("").is_ok());
        assert!(check_label_value("gpu-a100").is_ok());
        assert!(check_label_value("a=b").is_err());
        assert!(check_label_value("-edge").is_err());
        assert_eq!(
            check_label_value("a=b").map_err(|error| error.to_string()),
            Err("it must be at most 63 letters, digits, '-', '_' or '.', \
                 beginning and ending with a letter or digit"
                .to_string())
        );
        assert_eq!(
            check_label_key("Bad_Prefix/x").map_err(|error| error.to_string()),
            Err("the prefix \"Bad_Prefix\" must be a DNS name".to_string())
        );
        assert_eq!(
            check_label_key("prefix/").map_err(|error| error.to_string()),
            Err("the name part must not be empty".to_string())
        );
        assert!(check_label_value(&"x".repeat(64)).is_err());
    }

    #[test]
    fn cidr_rules() {
        assert!(check_cidr("pod_cidr", "100.96.0.0/11").is_ok());
        assert!(check_cidr("pod_cidr", "fd00::/48").is_ok());
        assert!(check_cidr("pod_cidr", "10.0.0.0/33").is_err());
        assert!(check_cidr("pod_cidr", "10.0.0.0").is_err());
        assert!(check_cidr("pod_cidr", "10.0.0.0/+8").is_err());
    }
}
