//! Node bootstrap: the user-data that turns a freshly launched EC2 instance
//! into a kubeadm Kubernetes node with no human step.
//!
//! An auto scaling group launches instances at any time: at cluster
//! creation, when it replaces an unhealthy node, during a rolling update.
//! Each one must find its way into the cluster alone, so everything it needs
//! travels in its user-data, and everything secret it fetches itself.
//!
//! # What the user-data holds
//!
//! [`render_user_data`] returns a `#cloud-config` document whose
//! `write_files` carry the node's non-secret configuration (kernel modules,
//! sysctls, the API endpoint, kubeadm configuration templates, a systemd
//! unit on control-plane nodes) and one bootstrap script, which `runcmd`
//! runs once.
//!
//! The API endpoint's host appears in one place only, in plain text
//! ([`paths::API_ENDPOINT_FILE`]); the script reads it from there and fills
//! it into the kubeadm configuration. The large files are compressed, and a
//! gossip cluster's endpoint (the load balancer's DNS name) is known only
//! after rendering, so the planner replaces a placeholder host in the
//! finished user-data by plain text substitution. User-data is
//! readable by anyone allowed `ec2:DescribeInstanceAttribute`, so it holds
//! **no secret**: the script reads the CA material and the bootstrap token
//! from the state store with the instance's IAM role (IMDSv2 credentials,
//! SigV4-signed `curl`), and fills them into the kubeadm configuration on the
//! node, in files only root can read.
//!
//! # What the script does
//!
//! Checks `/etc/os-release` against the group's OS family; loads `overlay`
//! and `br_netfilter`, applies the bridge/forwarding sysctls, turns swap off;
//! installs containerd (systemd cgroups, the version's pause image) and
//! exactly the cluster's kubelet, kubeadm and kubectl from pkgs.k8s.io,
//! held at that version. Then:
//!
//! * **control plane**: places the cluster's shared CAs and service-account
//!   keys in `/etc/kubernetes/pki`, and runs an election in the state store:
//!   a conditional create (`If-None-Match: *`) of `bootstrap/init-lock`
//!   succeeds for exactly one instance, which runs `kubeadm init` and
//!   installs the pinned CNI ([`cni`]). Every other instance, including
//!   replacements months later, finds the lock taken, waits until the API
//!   answers and runs `kubeadm join` as a control-plane member. A systemd
//!   unit makes the node leave etcd (`kubeadm reset`) when it powers off,
//!   so members replaced one at a time keep quorum.
//! * **worker**: reads only the CA certificate and the token, computes the
//!   discovery hash from the certificate, waits for the API and joins.
//!
//! A bastion gets a minimal cloud-config and no Kubernetes at all. A
//! Windows worker (`osFamily: windows`) gets a PowerShell script instead of
//! a cloud-config ([`windows`]).
//!
//! The step-by-step account, the state-store objects each role reads and
//! the reasoning behind the non-expiring token are in `docs/bootstrap.md`.
//!
//! # Determinism
//!
//! The user-data is part of the launch template; any changed byte rolls the
//! whole group. Rendering is a pure function of [`NodeBootstrap`]: no time,
//! no randomness, maps sorted.
//!
//! # Testability
//!
//! Every absolute path the script writes is prefixed by `$SKIFF_ROOT`, which
//! is empty on a real node; tests run the real rendered script in a
//! temporary root with recording stubs for system commands and a local
//! S3/instance-metadata server (`tests/sandbox_boot.rs`).
#![deny(missing_docs)]

pub mod addons;
pub mod cni;
mod config;
mod error;
mod etcd;
mod kubelet;
pub mod node_termination;
pub mod paths;
mod render;
pub mod state_store;
mod stored_script;
pub mod windows;

use serde::Serialize;

pub use addons::{
    manifest_objects, render_addons, AddonContext, ObjectIdentity, RenderedAddon, OBJECT_LINE,
};
pub use config::{
    AuditLog, EtcdBackups, NodeBootstrap, StateStoreLocation, DEFAULT_AUDIT_POLICY,
    INSTANCE_GROUP_LABEL,
};
pub use error::TemplateError;
pub use etcd::{EtcdMember, ExternalEtcd};
pub use kubelet::ComponentArguments;
pub use stored_script::{
    ec2_user_data, stored_script_key, with_stored_script, Ec2UserData, StoredScript,
};

/// One file cloud-init writes on the node before the bootstrap script runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeFile {
    /// The absolute path on the node.
    pub path: &'static str,
    /// The file mode in octal, e.g. `0755`.
    pub permissions: &'static str,
    /// The file's text.
    pub content: String,
}

/// The exact user-data of an instance of the group: a `#cloud-config`
/// document holding no secret. Byte-identical for identical input.
pub fn render_user_data(config: &NodeBootstrap) -> Result<String, TemplateError> {
    render::user_data(config)
}

/// `text` (rendered user-data) as the EC2 API takes it: gzip, then base64.
/// See [`decode_user_data`] for the way back.
pub fn encode_user_data(text: &str) -> Result<String, TemplateError> {
    render::encode_user_data(text)
}

/// The text of user-data read back from EC2 (base64, gzip or not);
/// `None` when it is not base64 or its gzip stream is damaged.
pub fn decode_user_data(encoded: &str) -> Option<String> {
    render::decode_user_data(encoded)
}

/// The files the user-data writes, in order; empty for a bastion. This is
/// the same data [`render_user_data`] lays out as `write_files`.
pub fn node_files(config: &NodeBootstrap) -> Result<Vec<NodeFile>, TemplateError> {
    render::node_files(config)
}

/// The bootstrap script alone (the file at [`paths::BOOTSTRAP_SCRIPT`]), or
/// `None` for a bastion, which runs none.
pub fn bootstrap_script(config: &NodeBootstrap) -> Result<Option<String>, TemplateError> {
    Ok(render::node_files(config)?
        .into_iter()
        .find(|file| file.path == paths::BOOTSTRAP_SCRIPT)
        .map(|file| file.content))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use skiff_api::{Cni, InstanceGroupRole, OsFamily};

    use crate::{NodeBootstrap, StateStoreLocation};

    /// A small, valid configuration for unit tests.
    pub(crate) fn example(role: InstanceGroupRole, os_family: OsFamily) -> NodeBootstrap {
        NodeBootstrap {
            cluster_name: "c1.example.com".to_string(),
            instance_group: "control-plane-us-east-1a".to_string(),
            role,
            os_family,
            kubernetes_version: "1.34.2".parse().expect("version"),
            container_runtime: Default::default(),
            api_endpoint: "api.c1.example.com".to_string(),
            api_port: 443,
            api_cert_sans: vec!["c1-api-0123.elb.us-east-1.amazonaws.com".to_string()],
            pod_cidr: "100.96.0.0/11".to_string(),
            service_cidr: "10.96.0.0/12".to_string(),
            cluster_dns: "10.96.0.10".to_string(),
            cni: Cni::Cilium,
            windows_nodes: false,
            node_labels: BTreeMap::new(),
            taints: Vec::new(),
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
            etcd_backups: crate::EtcdBackups::default(),
            audit: crate::AuditLog::default(),
            kubelet: Default::default(),
            component_arguments: Default::default(),
            external_etcd: None,
            external_cloud_provider: false,
        }
    }

    #[test]
    fn bastion_has_no_script() {
        let bastion = example(InstanceGroupRole::Bastion, OsFamily::Debian);
        assert_eq!(super::bootstrap_script(&bastion).expect("renders"), None);
        let worker = example(InstanceGroupRole::Node, OsFamily::Debian);
        let script = super::bootstrap_script(&worker)
            .expect("renders")
            .expect("a worker has a script");
        assert!(script.starts_with("#!/bin/bash\n"), "{script}");
    }
}
