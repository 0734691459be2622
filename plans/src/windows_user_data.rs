//! A change of a Windows node's user-data (a `<powershell>` block, no
//! cloud-config files) explained in words, the way `user_data.rs` explains
//! a Linux node's: the Kubernetes version each side installs
//! (`$KubernetesVersion = '...'`) is read from the two texts and *verified*
//! by substituting every fact that follows from it into the old text; the
//! registration settings (`$NodeLabels`, `$Taints` and the taints of the
//! join configuration) are named as fields; whatever still differs is
//! `user-data changed: (powershell)`.

use std::collections::BTreeSet;

use skiff_api::KubernetesVersion;

use crate::user_data::{set_change, version_facts, Explanation};

/// The name a Windows node's script goes by in the reasons.
pub const SCRIPT: &str = "(powershell)";

/// The value of a `$Name = '...'` line of the script.
fn assignment(text: &str, name: &str) -> Option<String> {
    let prefix = format!("${name} = '");
    text.lines().find_map(|line| {
        line.strip_prefix(&prefix)?
            .strip_suffix('\'')
            .map(|value| value.replace("''", "'"))
    })
}

fn version(text: &str) -> Option<KubernetesVersion> {
    assignment(text, "KubernetesVersion")?.parse().ok()
}

/// The kubelet argument the cloud-controller-manager adds.
const EXTERNAL_CLOUD_PROVIDER: &str = "'--cloud-provider=external',";

/// The lines that registration settings write, which a field explains.
fn is_registration_line(line: &str) -> bool {
    line.trim() == EXTERNAL_CLOUD_PROVIDER
        || line.starts_with("$NodeLabels = ")
        || line.starts_with("$Taints = ")
        || line == "  taints:"
        || line == "  taints: []"
        || line.starts_with("    - key: ")
        || line.starts_with("      value: ")
        || line.starts_with("      effect: ")
}

fn without_registration(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|line| !is_registration_line(line))
        .collect()
}

/// The explanation when both texts are Windows user-data; `None` otherwise.
pub(crate) fn explain(before: &str, after: &str) -> Option<Explanation> {
    let is_windows = skiff_templates::windows::is_powershell;
    if !is_windows(before) || !is_windows(after) {
        return None;
    }
    let versions = match (version(before), version(after)) {
        (Some(from), Some(to)) if from != to => Some((from, to)),
        _ => None,
    };
    let old = match versions {
        Some((from, to)) => version_facts(from, to)
            .iter()
            .fold(before.to_string(), |text, (old, new)| {
                text.replace(old, new)
            }),
        None => before.to_string(),
    };
    let mut fields = Vec::new();
    let (was, is) = (
        assignment(before, "NodeLabels"),
        assignment(after, "NodeLabels"),
    );
    if was != is {
        fields.push(format!(
            "nodeLabels {}",
            set_change(was.as_deref(), is.as_deref())
        ));
    }
    let taints = |text: &str| -> BTreeSet<String> {
        assignment(text, "Taints")
            .unwrap_or_default()
            .split(',')
            .filter(|taint| !taint.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (was, is) = (taints(before), taints(after));
    if was != is {
        let describe = |set: &BTreeSet<String>| {
            if set.is_empty() {
                "(none)".to_string()
            } else {
                set.iter().cloned().collect::<Vec<_>>().join(",")
            }
        };
        fields.push(format!("taints {} -> {}", describe(&was), describe(&is)));
    }
    let external = |text: &str| text.contains(EXTERNAL_CLOUD_PROVIDER);
    match (external(before), external(after)) {
        (false, true) => fields.push(
            "kubelet cloud-provider (unset) -> external (spec.addons.cloudControllerManager)"
                .to_string(),
        ),
        (true, false) => fields.push(
            "kubelet cloud-provider external -> (unset) (spec.addons.cloudControllerManager)"
                .to_string(),
        ),
        _ => {}
    }
    let unexplained = if without_registration(&old) == without_registration(after) {
        Vec::new()
    } else {
        vec![SCRIPT.to_string()]
    };
    Some(Explanation {
        kubernetes_version: versions,
        fields,
        unexplained,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use skiff_api::{Cni, InstanceGroupRole, OsFamily};
    use skiff_templates::{EtcdBackups, NodeBootstrap, StateStoreLocation};

    use super::*;

    fn windows(version: &str, labels: &[(&str, &str)], taints: &[&str]) -> String {
        skiff_templates::render_user_data(&bootstrap(version, labels, taints)).expect("renders")
    }

    fn bootstrap(version: &str, labels: &[(&str, &str)], taints: &[&str]) -> NodeBootstrap {
        NodeBootstrap {
            cluster_name: "c1.example.com".to_string(),
            instance_group: "windows-nodes".to_string(),
            role: InstanceGroupRole::Node,
            os_family: OsFamily::Windows,
            kubernetes_version: version.parse().expect("version"),
            container_runtime: Default::default(),
            api_endpoint: "api.c1.example.com".to_string(),
            api_port: 443,
            api_cert_sans: Vec::new(),
            pod_cidr: "100.96.0.0/11".to_string(),
            service_cidr: "10.96.0.0/12".to_string(),
            cluster_dns: "10.96.0.10".to_string(),
            cni: Cni::Calico,
            windows_nodes: false,
            node_labels: labels
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect::<BTreeMap<_, _>>(),
            taints: taints
                .iter()
                .map(|taint| taint.parse().expect("taint"))
                .collect(),
            state_store: StateStoreLocation {
                bucket: "skiff-state".to_string(),
                cluster_prefix: "c1.example.com".to_string(),
                region: "us-east-1".to_string(),
                endpoint: None,
                path_style: false,
                kms_key: None,
            },
            region: "us-east-1".to_string(),
            aws_endpoint: None,
            etcd_backups: EtcdBackups::default(),
            audit: Default::default(),
            kubelet: Default::default(),
            component_arguments: Default::default(),
            external_etcd: None,
            external_cloud_provider: false,
        }
    }

    #[test]
    fn the_external_cloud_provider_is_named() {
        let before = windows("1.34.2", &[], &[]);
        let after = skiff_templates::render_user_data(&NodeBootstrap {
            external_cloud_provider: true,
            ..bootstrap("1.34.2", &[], &[])
        })
        .expect("renders");
        assert!(after.contains("'--cloud-provider=external',"), "{after}");
        let explanation = explain(&before, &after).expect("Windows");
        assert_eq!(
            explanation.fields,
            vec![
                "kubelet cloud-provider (unset) -> external (spec.addons.cloudControllerManager)"
                    .to_string()
            ]
        );
        assert!(explanation.unexplained.is_empty(), "{explanation:?}");
        let explanation = explain(&after, &before).expect("Windows");
        assert_eq!(
            explanation.fields,
            vec![
                "kubelet cloud-provider external -> (unset) (spec.addons.cloudControllerManager)"
                    .to_string()
            ]
        );
    }

    #[test]
    fn a_patch_step_is_the_version_alone() {
        let explanation = explain(&windows("1.34.1", &[], &[]), &windows("1.34.2", &[], &[]))
            .expect("both are Windows user-data");
        assert_eq!(
            explanation.kubernetes_version,
            Some((
                "1.34.1".parse().expect("version"),
                "1.34.2".parse().expect("version")
            ))
        );
        assert!(explanation.unexplained.is_empty(), "{explanation:?}");
        assert!(explanation.fields.is_empty(), "{explanation:?}");
    }

    #[test]
    fn labels_and_taints_are_named_and_nothing_else_is_hidden() {
        let before = windows("1.34.2", &[], &[]);
        let after = windows(
            "1.34.2",
            &[("team", "payments")],
            &["dedicated=gpu:NoSchedule"],
        );
        let explanation = explain(&before, &after).expect("Windows");
        assert_eq!(
            explanation.fields,
            vec![
                "nodeLabels +team=payments".to_string(),
                "taints os=windows:NoSchedule -> dedicated=gpu:NoSchedule,os=windows:NoSchedule"
                    .to_string()
            ]
        );
        assert!(explanation.unexplained.is_empty(), "{explanation:?}");

        let edited = after.replace("Start-Service -Name containerd", "Start-Service containerd");
        let explanation = explain(&after, &edited).expect("Windows");
        assert_eq!(explanation.unexplained, vec![SCRIPT.to_string()]);
        assert_eq!(
            explanation.reasons(),
            vec!["user-data changed: (powershell)".to_string()]
        );
    }

    #[test]
    fn linux_user_data_is_left_to_the_cloud_config_explanation() {
        assert!(explain("#cloud-config\n", &windows("1.34.2", &[], &[])).is_none());
    }
}
