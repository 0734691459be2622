//! The user-data of a Windows worker (`osFamily: windows`): a PowerShell
//! script in a `<powershell>` block that EC2Launch v2 runs at every boot
//! (`<persist>true</persist>`) until the node has joined.
//!
//! It follows the setup guide's §3 for a Windows Server node joining a Linux
//! control plane: the Containers feature (one restart), containerd as the CRI
//! (`npipe:////./pipe/containerd-containerd`) with the version's pause image
//! and the CNI folders, the reference CNI plugins for Windows, the kubelet,
//! kubeadm and kube-proxy of exactly the cluster's version (each checked
//! against the SHA-256 its release publishes), the kubelet as a Windows
//! service, and `kubeadm join` with the worker token and the CA pin. Like
//! a Linux worker, it reads the token and the CA certificate from the state
//! store with the instance's IAM role (AWS Tools for PowerShell, which
//! Amazon's Windows images carry) and computes the pin from the certificate
//! on the node: the user-data holds no secret.
//!
//! EC2 does not decompress a Windows instance's user-data, so it is plain
//! text ([`crate::encode_user_data`] only base64-encodes it) and must stay
//! under EC2's 16 KB; no loader fetches a larger script.

use std::sync::OnceLock;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use skiff_api::InstanceGroupRole;

use crate::config::{NodeBootstrap, INSTANCE_GROUP_LABEL};
use crate::error::TemplateError;
use crate::render::{render, yaml_string};
use crate::state_store;

/// The first line of every Windows user-data.
pub const POWERSHELL_OPENING: &str = "<powershell>";

/// containerd for Windows, from containerd's release archives.
pub const CONTAINERD_VERSION: &str = "2.1.4";
/// The reference CNI plugins for Windows (`win-bridge`, `win-overlay`,
/// `host-local`, ...), from containernetworking/plugins' release archives.
pub const CNI_PLUGINS_VERSION: &str = "1.7.1";
/// crictl (cri-tools) follows the Kubernetes minor: `v<major>.<minor>.0`.
fn cri_tools_version(version: skiff_api::KubernetesVersion) -> String {
    format!("{}.{}.0", version.major, version.minor)
}

/// The CRI endpoint of containerd on Windows.
pub const CRI_SOCKET: &str = "npipe:////./pipe/containerd-containerd";

const TEMPLATE: &str = "windows-user-data.ps1.j2";

#[derive(Debug, Serialize)]
struct TaintView {
    key: String,
    value: String,
    effect: String,
}

#[derive(Debug, Serialize)]
struct Context {
    cluster_name: String,
    instance_group: String,
    kubernetes_version: String,
    containerd_version: &'static str,
    cni_plugins_version: &'static str,
    cri_tools_version: String,
    pause_image: &'static str,
    kubeadm_api_version: &'static str,
    kubeadm_v1beta4: bool,
    api_server: String,
    bucket: String,
    prefix: String,
    store_region: String,
    store_endpoint: String,
    region: String,
    aws_endpoint: String,
    cni: String,
    node_labels: String,
    taints: String,
    taint_list: Vec<TaintView>,
    ca_certificate_key: &'static str,
    bootstrap_token_key: &'static str,
    external_cloud_provider: bool,
}

/// The user-data of a Windows worker.
pub(crate) fn user_data(config: &NodeBootstrap) -> Result<String, TemplateError> {
    config.validate()?;
    if config.role != InstanceGroupRole::Node {
        return Err(TemplateError::invalid(
            "os_family",
            "windows",
            format!(
                "Windows nodes are workers only; a {} node runs Linux",
                config.role
            ),
        ));
    }
    let version = config.kubernetes_version;
    let mut labels = config.node_labels.clone();
    labels.insert(
        INSTANCE_GROUP_LABEL.to_string(),
        config.instance_group.clone(),
    );
    let node_labels = labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(",");
    let taints = skiff_api::windows::registered_taints(config.os_family, &config.taints);
    let context = Context {
        cluster_name: config.cluster_name.clone(),
        instance_group: config.instance_group.clone(),
        kubernetes_version: version.to_string(),
        containerd_version: CONTAINERD_VERSION,
        cni_plugins_version: CNI_PLUGINS_VERSION,
        cri_tools_version: cri_tools_version(version),
        pause_image: version.pause_image(),
        kubeadm_api_version: version.kubeadm_api_version(),
        kubeadm_v1beta4: version.kubeadm_api_version().ends_with("/v1beta4"),
        api_server: format!("{}:{}", config.api_endpoint, config.api_port),
        bucket: config.state_store.bucket.clone(),
        prefix: config.state_store.cluster_prefix.clone(),
        store_region: config.state_store.region.clone(),
        store_endpoint: config
            .state_store
            .endpoint
            .as_deref()
            .map(|endpoint| endpoint.trim_end_matches('/').to_string())
            .unwrap_or_default(),
        region: config.region.clone(),
        aws_endpoint: config
            .aws_endpoint
            .as_deref()
            .map(|endpoint| endpoint.trim_end_matches('/').to_string())
            .unwrap_or_default(),
        cni: config.cni.to_string(),
        node_labels,
        taints: taints
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        taint_list: taints
            .into_iter()
            .map(|taint| TaintView {
                key: taint.key,
                value: taint.value,
                effect: taint.effect,
            })
            .collect(),
        ca_certificate_key: state_store::CA_CERTIFICATE,
        bootstrap_token_key: state_store::BOOTSTRAP_TOKEN,
        external_cloud_provider: config.external_cloud_provider,
    };
    render(environment()?, TEMPLATE, &context)
}

/// Whether `user_data` is a Windows node's (a `<powershell>` block), which
/// EC2 gets uncompressed.
pub fn is_powershell(user_data: &str) -> bool {
    user_data.starts_with(POWERSHELL_OPENING)
}

fn environment() -> Result<&'static Environment<'static>, TemplateError> {
    static SHARED: OnceLock<Environment<'static>> = OnceLock::new();
    if let Some(environment) = SHARED.get() {
        return Ok(environment);
    }
    let mut environment = Environment::new();
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    environment.set_trim_blocks(true);
    environment.set_lstrip_blocks(true);
    environment.set_keep_trailing_newline(true);
    environment.set_auto_escape_callback(|_| AutoEscape::None);
    environment.add_filter("ps", powershell_quote);
    environment.add_filter("yaml", yaml_string);
    environment
        .add_template(
            TEMPLATE,
            include_str!("../templates/windows-user-data.ps1.j2"),
        )
        .map_err(|source| TemplateError::Render {
            template: TEMPLATE.to_string(),
            source,
        })?;
    Ok(SHARED.get_or_init(|| environment))
}

/// A single-quoted PowerShell string: nothing inside is expanded; a quote
/// (any of the four PowerShell takes for one) is doubled.
fn powershell_quote(value: String) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for character in value.chars() {
        if matches!(
            character,
            '\'' | '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}'
        ) {
            quoted.push(character);
        }
        quoted.push(character);
    }
    quoted.push('\'');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::OsFamily;

    #[test]
    fn powershell_quotes_are_doubled() {
        assert_eq!(powershell_quote("plain".to_string()), "'plain'");
        assert_eq!(powershell_quote("it's $x".to_string()), "'it''s $x'");
        assert_eq!(
            powershell_quote("a\u{2019}b".to_string()),
            "'a\u{2019}\u{2019}b'"
        );
    }

    #[test]
    fn only_workers_run_windows() {
        let config = NodeBootstrap {
            os_family: OsFamily::Windows,
            ..crate::tests::example(InstanceGroupRole::ControlPlane, OsFamily::Windows)
        };
        let error = user_data(&config).expect_err("refused");
        assert!(error.to_string().contains("workers only"), "{error}");
    }

    #[test]
    fn the_default_taint_and_the_group_label_are_registered() {
        let config = crate::tests::example(InstanceGroupRole::Node, OsFamily::Windows);
        let text = user_data(&config).expect("renders");
        assert!(text.starts_with("<powershell>\n"), "{text}");
        assert!(text.contains("$Taints = 'os=windows:NoSchedule'"), "{text}");
        assert!(
            text.contains("$NodeLabels = 'skiff.dev/instance-group=control-plane-us-east-1a'"),
            "{text}"
        );
        assert!(
            text.trim_end().ends_with("<persist>true</persist>"),
            "{text}"
        );
    }
}
