//! `validate cluster`: each group's instances in service against its
//! spec, a Ready node per instance, a healthy control plane, and the
//! control-plane certificates' expiry as the nodes last reported it;
//! optionally waiting until that holds.

use std::time::{Duration, Instant};

use serde::Serialize;
use skiff_api::InstanceGroupRole;
use skiff_rollout::validate::{validate as check, Problem, Validation};
use skiff_state::etcd::{
    list_certificate_reports, list_node_statuses, CertificateReport, NodeStatus,
};
use time::OffsetDateTime;

use crate::cluster::Session;
use crate::error::{EngineError, Result};
use crate::roll::group_plans;

/// What to validate and how.
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// Skip the Kubernetes API (only what AWS says).
    pub cloud_only: bool,
    /// A kubeconfig to reach the API with (else skiff's own certificate).
    pub kubeconfig: Option<std::path::PathBuf>,
    /// How long to wait for the cluster to become valid (zero: look once).
    pub wait: Duration,
}

/// A certificate closer to its expiry than this fails validation. The nodes
/// renew theirs 30 days ahead, so this leaves two weeks to notice a node
/// whose renewal does not run.
pub const CERTIFICATE_FAILURE_DAYS: i64 = 14;

/// A report older than this means the node's daily check stopped running.
pub const CERTIFICATE_REPORT_STALE_DAYS: i64 = 3;

/// What `validate cluster` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterValidation {
    /// Groups, nodes and the control plane, and every problem (the
    /// certificates' included).
    #[serde(flatten)]
    pub validation: Validation,
    /// The earliest-expiring certificate of each control-plane instance in
    /// service that reported one, earliest first.
    pub certificates: Vec<NodeCertificates>,
    /// The last status each control-plane instance in service wrote.
    pub nodes: Vec<NodeStatus>,
}

/// One control-plane instance's earliest-expiring certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeCertificates {
    /// The instance.
    pub instance: String,
    /// Its instance group.
    pub group: String,
    /// When the node looked.
    #[serde(with = "time::serde::rfc3339")]
    pub checked: OffsetDateTime,
    /// kubeadm's name of the certificate that expires first.
    pub name: String,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Whole days left (negative: expired).
    pub days_left: i64,
}

/// The longest pause between two looks while waiting.
const POLL_INTERVAL: Duration = Duration::from_secs(10);

/// Validates a cluster, looking again until it is valid or `wait` is over.
pub async fn validate(
    session: &Session<'_>,
    cluster: &str,
    options: &ValidateOptions,
) -> Result<ClusterValidation> {
    let spec = session.store.read_spec(cluster).await?;
    let bundle = &spec.bundle;
    let provider = session.provider(bundle)?;
    let groups: Vec<_> = group_plans(bundle)
        .into_iter()
        .filter_map(|plan| {
            let group = bundle.instance_group(&plan.group)?;
            let sizes = (group.spec.min_size, group.spec.max_size);
            Some((plan, sizes.0, sizes.1))
        })
        .collect();
    let cluster_api = match options.cloud_only {
        true => None,
        false => Some(
            crate::access::cluster_api(session.store, bundle, options.kubeconfig.as_deref())
                .await?,
        ),
    };
    let deadline = Instant::now() + options.wait;
    loop {
        let mut validation = check(&provider, &groups, cluster_api.as_deref())
            .await
            .map_err(|source| EngineError::Cluster {
                what: format!("validating cluster {cluster}"),
                source,
            })?;
        let reports = list_certificate_reports(session.store.objects().as_ref(), cluster).await?;
        let certificates = check_certificates(&mut validation, &reports, OffsetDateTime::now_utc());
        let statuses = list_node_statuses(session.store.objects().as_ref(), cluster).await?;
        let nodes = check_node_statuses(&mut validation, statuses);
        if validation.problems.is_empty() || Instant::now() >= deadline {
            return Ok(ClusterValidation {
                validation,
                certificates,
                nodes,
            });
        }
        tokio::time::sleep(
            POLL_INTERVAL
                .min(deadline.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(200)),
        )
        .await;
    }
}

/// The earliest certificate of each control-plane instance in service, from
/// the nodes' reports (a report of an instance no longer in service is
/// ignored: it left or crashed); a problem for each certificate within
/// [`CERTIFICATE_FAILURE_DAYS`] of its expiry and each report older than
/// [`CERTIFICATE_REPORT_STALE_DAYS`].
pub fn check_certificates(
    validation: &mut Validation,
    reports: &[CertificateReport],
    now: OffsetDateTime,
) -> Vec<NodeCertificates> {
    let control_plane = InstanceGroupRole::ControlPlane.to_string();
    let mut found = Vec::new();
    for group in validation
        .groups
        .iter()
        .filter(|group| group.role == control_plane)
    {
        for report in reports
            .iter()
            .filter(|report| group.instances.contains(&report.instance))
        {
            let Some(earliest) = report.earliest() else {
                continue;
            };
            found.push(NodeCertificates {
                instance: report.instance.clone(),
                group: group.group.clone(),
                checked: report.checked,
                name: earliest.name.clone(),
                not_after: earliest.not_after,
                days_left: (earliest.not_after - now).whole_days(),
            });
        }
    }
    found.sort_by_key(|node| (node.not_after, node.instance.clone()));
    let mut problems = Vec::new();
    for node in &found {
        let report = reports
            .iter()
            .find(|report| report.instance == node.instance);
        for certificate in report
            .map(|report| report.certificates.as_slice())
            .unwrap_or_default()
        {
            let days = (certificate.not_after - now).whole_days();
            if days >= CERTIFICATE_FAILURE_DAYS {
                continue;
            }
            let when = match days {
                days if certificate.not_after <= now => format!("expired {} days ago", -days),
                days => format!("expires in {days} days"),
            };
            let fix = if is_authority(&certificate.name) {
                "skiff does not rotate certificate authorities: see docs/pki.md".to_string()
            } else {
                format!(
                    "the node renews its certificates 30 days ahead: read /var/log/skiff-bootstrap.log and \
                     `systemctl status skiff-renew-certificates.timer` on {}, or replace it with \
                     `skiff rolling-update cluster --force --instance-group {}`",
                    node.instance, node.group
                )
            };
            problems.push(Problem {
                kind: "certificate".to_string(),
                name: format!("{}/{}", node.instance, certificate.name),
                message: format!(
                    "certificate {} on control-plane instance {} (group {}) {when} ({}); {fix}",
                    certificate.name,
                    node.instance,
                    node.group,
                    rfc3339(certificate.not_after),
                ),
            });
        }
        let age = (now - node.checked).whole_days();
        if age > CERTIFICATE_REPORT_STALE_DAYS {
            problems.push(Problem {
                kind: "certificate".to_string(),
                name: node.instance.clone(),
                message: format!(
                    "control-plane instance {} (group {}) last checked its certificates {age} days ago \
                     ({}); its daily skiff-renew-certificates.timer is not running",
                    node.instance,
                    node.group,
                    rfc3339(node.checked)
                ),
            });
        }
    }
    validation.problems.extend(problems);
    found
}

/// kubeadm's names of the certificate authorities (`certs check-expiration`'s second table).
fn is_authority(name: &str) -> bool {
    matches!(name, "ca" | "etcd-ca" | "front-proxy-ca")
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| time.to_string())
}

/// The statuses of the control-plane instances in service; a problem for
/// each whose bootstrap failed (an instance replaced since is history).
pub fn check_node_statuses(
    validation: &mut Validation,
    statuses: Vec<NodeStatus>,
) -> Vec<NodeStatus> {
    let control_plane = InstanceGroupRole::ControlPlane.to_string();
    let in_service: Vec<(&str, &str)> = validation
        .groups
        .iter()
        .filter(|group| group.role == control_plane)
        .flat_map(|group| {
            group
                .instances
                .iter()
                .map(move |instance| (instance.as_str(), group.group.as_str()))
        })
        .collect();
    let mut problems = Vec::new();
    let mut kept = Vec::new();
    for status in statuses {
        let Some((_, group)) = in_service
            .iter()
            .find(|(instance, _)| *instance == status.instance)
        else {
            continue;
        };
        if status.failed() {
            problems.push(Problem {
                kind: "bootstrap".to_string(),
                name: status.instance.clone(),
                message: format!(
                    "control-plane instance {} (group {group}, Kubernetes {}) failed its bootstrap at {}: {} \
                     (its group replaces it; the log is /var/log/skiff-bootstrap.log on the node)",
                    status.instance,
                    status.kubernetes_version,
                    rfc3339(status.time),
                    status.message
                ),
            });
        }
        kept.push(status);
    }
    validation.problems.extend(problems);
    kept
}
