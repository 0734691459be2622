//! `extraArgs` and `extraVolumes` of the control-plane components
//! (`spec.controlPlane.{apiServer,controllerManager,scheduler,etcd}`), as
//! kubeadm's ClusterConfiguration takes them (the setup guide's §2.1.4;
//! kubernetes/kubernetes cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go
//! `ControlPlaneComponent`, `HostPathMount`).
//!
//! Some flags cannot be given here: the ones kubeadm derives from the
//! cluster's certificates, addresses and kubeconfig files
//! (cmd/kubeadm/app/phases/controlplane/manifests.go `getAPIServerCommand`,
//! `getControllerManagerCommand`, `getSchedulerCommand`;
//! cmd/kubeadm/app/phases/etcd/local.go `getEtcdCommand`), and the ones
//! skiff sets itself (encryption of Secrets, the audit log). Overriding
//! them would break the node's join or skiff's guarantees, so
//! [`check_component`] refuses them and says which setting owns each.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A component's extra flags and host folders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComponentSpec {
    /// Flags, by name without the leading `--` (`oidc-issuer-url`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_args: BTreeMap<String, String>,
    /// Host paths mounted into the component's static pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_volumes: Vec<HostPathMount>,
}

impl ComponentSpec {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.extra_args.is_empty() && self.extra_volumes.is_empty()
    }
}

/// A host path mounted into a control-plane static pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostPathMount {
    /// The volume's name in the pod (a DNS label).
    pub name: String,
    /// The path on the node.
    pub host_path: String,
    /// Where the component sees it.
    pub mount_path: String,
    /// Mounted read-only (default `true`).
    #[serde(default = "default_read_only")]
    pub read_only: bool,
    /// The `hostPath` type: `DirectoryOrCreate` (default), `Directory`,
    /// `File`, `FileOrCreate`, `Socket`, `CharDevice` or `BlockDevice`.
    #[serde(default = "default_path_type")]
    pub path_type: String,
}

fn default_read_only() -> bool {
    true
}

fn default_path_type() -> String {
    "DirectoryOrCreate".to_string()
}

/// The `hostPath` types a volume may have.
pub const PATH_TYPES: [&str; 7] = [
    "DirectoryOrCreate",
    "Directory",
    "File",
    "FileOrCreate",
    "Socket",
    "CharDevice",
    "BlockDevice",
];

/// A control-plane component whose arguments skiff accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// kube-apiserver.
    ApiServer,
    /// kube-controller-manager.
    ControllerManager,
    /// kube-scheduler.
    Scheduler,
    /// The local (stacked) etcd member.
    Etcd,
}

impl Component {
    /// The field under `spec.controlPlane`.
    pub fn field(self) -> &'static str {
        match self {
            Component::ApiServer => "apiServer",
            Component::ControllerManager => "controllerManager",
            Component::Scheduler => "scheduler",
            Component::Etcd => "etcd",
        }
    }

    /// The flags skiff or kubeadm sets, with who owns each.
    pub fn reserved_flags(self) -> &'static [(&'static str, Owner)] {
        match self {
            Component::ApiServer => API_SERVER_RESERVED,
            Component::ControllerManager => CONTROLLER_MANAGER_RESERVED,
            Component::Scheduler => SCHEDULER_RESERVED,
            Component::Etcd => ETCD_RESERVED,
        }
    }

    /// The volume names and container paths skiff mounts itself.
    pub fn reserved_mounts(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Component::ApiServer => &[
                ("skiff-encryption", "/etc/kubernetes/encryption"),
                ("skiff-audit-policy", "/etc/kubernetes/audit"),
                ("skiff-audit-log", "/var/log/kubernetes/audit"),
                ("k8s-certs", "/etc/kubernetes/pki"),
                ("ca-certs", "/etc/ssl/certs"),
            ],
            Component::ControllerManager => &[
                ("k8s-certs", "/etc/kubernetes/pki"),
                ("ca-certs", "/etc/ssl/certs"),
                ("kubeconfig", "/etc/kubernetes/controller-manager.conf"),
                (
                    "flexvolume-dir",
                    "/usr/libexec/kubernetes/kubelet-plugins/volume/exec",
                ),
            ],
            Component::Scheduler => &[("kubeconfig", "/etc/kubernetes/scheduler.conf")],
            Component::Etcd => &[
                ("etcd-data", "/var/lib/etcd"),
                ("etcd-certs", "/etc/kubernetes/pki/etcd"),
            ],
        }
    }
}

/// Who sets a reserved flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// kubeadm, from the cluster's certificates, addresses or kubeconfigs.
    Kubeadm,
    /// skiff, from the field it names (`spec.controlPlane.apiServer.audit`).
    Skiff(&'static str),
}

const API_SERVER_RESERVED: &[(&str, Owner)] = &[
    ("advertise-address", Owner::Kubeadm),
    ("secure-port", Owner::Kubeadm),
    (
        "service-cluster-ip-range",
        Owner::Skiff("spec.networking.serviceCIDR"),
    ),
    ("etcd-servers", Owner::Kubeadm),
    ("etcd-cafile", Owner::Kubeadm),
    ("etcd-certfile", Owner::Kubeadm),
    ("etcd-keyfile", Owner::Kubeadm),
    ("client-ca-file", Owner::Kubeadm),
    ("tls-cert-file", Owner::Kubeadm),
    ("tls-private-key-file", Owner::Kubeadm),
    ("kubelet-client-certificate", Owner::Kubeadm),
    ("kubelet-client-key", Owner::Kubeadm),
    ("proxy-client-cert-file", Owner::Kubeadm),
    ("proxy-client-key-file", Owner::Kubeadm),
    ("requestheader-client-ca-file", Owner::Kubeadm),
    ("requestheader-allowed-names", Owner::Kubeadm),
    ("requestheader-username-headers", Owner::Kubeadm),
    ("requestheader-group-headers", Owner::Kubeadm),
    ("requestheader-extra-headers-prefix", Owner::Kubeadm),
    ("service-account-key-file", Owner::Kubeadm),
    ("service-account-signing-key-file", Owner::Kubeadm),
    ("service-account-issuer", Owner::Kubeadm),
    ("enable-bootstrap-token-auth", Owner::Kubeadm),
    ("authorization-mode", Owner::Kubeadm),
    (
        "encryption-provider-config",
        Owner::Skiff("skiff rotate encryption-key"),
    ),
    (
        "encryption-provider-config-automatic-reload",
        Owner::Skiff("skiff rotate encryption-key"),
    ),
    (
        "audit-policy-file",
        Owner::Skiff("spec.controlPlane.apiServer.audit.policy"),
    ),
    (
        "audit-log-path",
        Owner::Skiff("spec.controlPlane.apiServer.audit"),
    ),
    (
        "audit-log-maxage",
        Owner::Skiff("spec.controlPlane.apiServer.audit.maxAgeDays"),
    ),
    (
        "audit-log-maxbackup",
        Owner::Skiff("spec.controlPlane.apiServer.audit.maxBackups"),
    ),
    (
        "audit-log-maxsize",
        Owner::Skiff("spec.controlPlane.apiServer.audit.maxSizeMegabytes"),
    ),
];

const CONTROLLER_MANAGER_RESERVED: &[(&str, Owner)] = &[
    ("kubeconfig", Owner::Kubeadm),
    ("authentication-kubeconfig", Owner::Kubeadm),
    ("authorization-kubeconfig", Owner::Kubeadm),
    ("client-ca-file", Owner::Kubeadm),
    ("requestheader-client-ca-file", Owner::Kubeadm),
    ("root-ca-file", Owner::Kubeadm),
    ("service-account-private-key-file", Owner::Kubeadm),
    ("cluster-signing-cert-file", Owner::Kubeadm),
    ("cluster-signing-key-file", Owner::Kubeadm),
    ("use-service-account-credentials", Owner::Kubeadm),
    ("cluster-name", Owner::Skiff("metadata.name")),
    (
        "allocate-node-cidrs",
        Owner::Skiff("spec.networking.podCIDR"),
    ),
    ("cluster-cidr", Owner::Skiff("spec.networking.podCIDR")),
    (
        "service-cluster-ip-range",
        Owner::Skiff("spec.networking.serviceCIDR"),
    ),
];

const SCHEDULER_RESERVED: &[(&str, Owner)] = &[
    ("kubeconfig", Owner::Kubeadm),
    ("authentication-kubeconfig", Owner::Kubeadm),
    ("authorization-kubeconfig", Owner::Kubeadm),
];

const ETCD_RESERVED: &[(&str, Owner)] = &[
    ("name", Owner::Kubeadm),
    ("data-dir", Owner::Kubeadm),
    ("listen-client-urls", Owner::Kubeadm),
    ("advertise-client-urls", Owner::Kubeadm),
    ("listen-peer-urls", Owner::Kubeadm),
    ("initial-advertise-peer-urls", Owner::Kubeadm),
    ("initial-cluster", Owner::Kubeadm),
    ("initial-cluster-state", Owner::Kubeadm),
    ("listen-metrics-urls", Owner::Kubeadm),
    ("cert-file", Owner::Kubeadm),
    ("key-file", Owner::Kubeadm),
    ("trusted-ca-file", Owner::Kubeadm),
    ("client-cert-auth", Owner::Kubeadm),
    ("peer-cert-file", Owner::Kubeadm),
    ("peer-key-file", Owner::Kubeadm),
    ("peer-trusted-ca-file", Owner::Kubeadm),
    ("peer-client-cert-auth", Owner::Kubeadm),
];

/// One problem with a component's block: the field below
/// `spec.controlPlane.<component>` and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentProblem {
    /// The field, e.g. `extraArgs["tls-cert-file"]`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// The findings of `spec.controlPlane`'s `extraArgs` and `extraVolumes`,
/// as (path, message).
pub fn findings(control_plane: &crate::ControlPlaneSpec) -> Vec<(String, String)> {
    let components = [
        (Component::ApiServer, control_plane.api_server.arguments()),
        (
            Component::ControllerManager,
            control_plane.controller_manager.clone(),
        ),
        (Component::Scheduler, control_plane.scheduler.clone()),
        (Component::Etcd, control_plane.etcd.clone()),
    ];
    components
        .iter()
        .flat_map(|(component, spec)| {
            check_component(*component, spec)
                .into_iter()
                .map(|problem| {
                    (
                        format!("spec.controlPlane.{}.{}", component.field(), problem.field),
                        problem.message,
                    )
                })
        })
        .collect()
}

/// Checks a component's `extraArgs` and `extraVolumes`.
pub fn check_component(component: Component, spec: &ComponentSpec) -> Vec<ComponentProblem> {
    let mut problems = Vec::new();
    let mut problem = |field: String, message: String| {
        problems.push(ComponentProblem { field, message });
    };
    for (flag, value) in &spec.extra_args {
        let field = format!("extraArgs[{flag:?}]");
        if let Some(bare) = flag.strip_prefix("--") {
            problem(
                field,
                format!("write the flag without its dashes: {bare:?}"),
            );
            continue;
        }
        let well_formed = !flag.is_empty()
            && flag
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
            && flag.starts_with(|character: char| character.is_ascii_lowercase());
        if !well_formed {
            problem(
                field,
                format!("{flag:?} is not a flag name like oidc-issuer-url (lowercase letters, digits and '-')"),
            );
            continue;
        }
        if let Some((_, owner)) = component
            .reserved_flags()
            .iter()
            .find(|(reserved, _)| reserved == flag)
        {
            let message = match owner {
                Owner::Kubeadm => format!(
                    "--{flag} is set by kubeadm from the cluster's certificates, addresses and \
                     kubeconfig files and cannot be overridden; remove it"
                ),
                Owner::Skiff(setting) => format!(
                    "--{flag} is set by skiff from {setting} and cannot be overridden here; \
                     remove it and use {setting}"
                ),
            };
            problem(field, message);
            continue;
        }
        if value.chars().any(char::is_control) {
            problem(
                field,
                "the value must be one line without control characters".to_string(),
            );
        }
    }
    if component == Component::Etcd && !spec.extra_volumes.is_empty() {
        problem(
            "extraVolumes".to_string(),
            "kubeadm's local etcd takes no extraVolumes (only extraArgs); remove them".to_string(),
        );
        return problems;
    }
    let mut names = BTreeSet::new();
    let mut mount_paths = BTreeSet::new();
    for (index, volume) in spec.extra_volumes.iter().enumerate() {
        let at = |field: &str| format!("extraVolumes[{index}].{field}");
        let name_ok = !volume.name.is_empty()
            && volume.name.len() <= 63
            && volume
                .name
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
            && !volume.name.starts_with('-')
            && !volume.name.ends_with('-');
        if !name_ok {
            problem(
                at("name"),
                format!(
                    "{:?} is not a volume name (a DNS label like oidc-ca)",
                    volume.name
                ),
            );
        } else if !names.insert(volume.name.as_str()) {
            problem(
                at("name"),
                format!(
                    "{:?} is used by another volume; names must be unique",
                    volume.name
                ),
            );
        } else if component
            .reserved_mounts()
            .iter()
            .any(|(name, _)| *name == volume.name)
        {
            problem(
                at("name"),
                format!(
                    "{:?} is a volume skiff or kubeadm mounts itself; choose another name",
                    volume.name
                ),
            );
        }
        for (field, path) in [
            ("hostPath", &volume.host_path),
            ("mountPath", &volume.mount_path),
        ] {
            let path_ok = path.starts_with('/')
                && path.len() > 1
                && !path.split('/').any(|part| part == "..")
                && !path
                    .chars()
                    .any(|character| character.is_control() || character == ':');
            if !path_ok {
                problem(
                    at(field),
                    format!("{path:?} is not an absolute path without '..' or ':'"),
                );
            }
        }
        if let Some((_, reserved)) = component.reserved_mounts().iter().find(|(_, reserved)| {
            let mount = volume.mount_path.trim_end_matches('/');
            mount == *reserved
                || mount.starts_with(&format!("{reserved}/"))
                || reserved.starts_with(&format!("{mount}/"))
        }) {
            problem(
                at("mountPath"),
                format!(
                    "{} overlaps {reserved}, which skiff or kubeadm mounts itself; mount somewhere else",
                    volume.mount_path
                ),
            );
        } else if !mount_paths.insert(volume.mount_path.trim_end_matches('/')) {
            problem(
                at("mountPath"),
                format!("{} is mounted by another volume", volume.mount_path),
            );
        }
        if !PATH_TYPES.contains(&volume.path_type.as_str()) {
            problem(
                at("pathType"),
                format!(
                    "{:?} is not a hostPath type; use one of {}",
                    volume.path_type,
                    PATH_TYPES.join(", ")
                ),
            );
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arguments(pairs: &[(&str, &str)]) -> ComponentSpec {
        ComponentSpec {
            extra_args: pairs
                .iter()
                .map(|(flag, value)| (flag.to_string(), value.to_string()))
                .collect(),
            extra_volumes: Vec::new(),
        }
    }

    #[test]
    fn reserved_flags_are_refused_naming_their_owner() {
        let problems = check_component(
            Component::ApiServer,
            &arguments(&[
                ("oidc-issuer-url", "https://issuer.example.com"),
                ("tls-cert-file", "/tmp/x.crt"),
                ("audit-log-maxage", "3"),
            ]),
        );
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert_eq!(problems[0].field, "extraArgs[\"audit-log-maxage\"]");
        assert!(
            problems[0]
                .message
                .contains("spec.controlPlane.apiServer.audit.maxAgeDays"),
            "{}",
            problems[0].message
        );
        assert_eq!(problems[1].field, "extraArgs[\"tls-cert-file\"]");
        assert!(
            problems[1].message.contains("kubeadm"),
            "{}",
            problems[1].message
        );
        assert!(check_component(Component::Etcd, &arguments(&[("data-dir", "/x")])).len() == 1);
        let etcd_volume = ComponentSpec {
            extra_args: BTreeMap::new(),
            extra_volumes: vec![HostPathMount {
                name: "backup".to_string(),
                host_path: "/backup".to_string(),
                mount_path: "/backup".to_string(),
                read_only: false,
                path_type: "DirectoryOrCreate".to_string(),
            }],
        };
        assert_eq!(
            check_component(Component::Etcd, &etcd_volume)[0].field,
            "extraVolumes"
        );
        assert!(check_component(
            Component::Etcd,
            &arguments(&[("quota-backend-bytes", "8589934592")])
        )
        .is_empty());
        assert!(
            check_component(Component::Scheduler, &arguments(&[("kubeconfig", "/x")])).len() == 1
        );
        assert!(check_component(
            Component::ControllerManager,
            &arguments(&[("cluster-cidr", "10.0.0.0/8")])
        )[0]
        .message
        .contains("spec.networking.podCIDR"));
    }

    /// Must-show: a reserved flag is refused by validation with its path.
    #[test]
    fn validation_refuses_a_reserved_flag_with_its_path() {
        let mut bundle = crate::kubelet::tests::bundle();
        bundle
            .cluster
            .spec
            .control_plane
            .api_server
            .extra_args
            .insert(
                "etcd-servers".to_string(),
                "https://10.0.0.1:2379".to_string(),
            );
        bundle
            .cluster
            .spec
            .control_plane
            .scheduler
            .extra_args
            .insert("v".to_string(), "2".to_string());
        let error = crate::validate(&bundle).expect_err("refused");
        let found: Vec<String> = error.errors.iter().map(ToString::to_string).collect();
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with(
                "spec.controlPlane.apiServer.extraArgs[\"etcd-servers\"]: --etcd-servers is set by kubeadm"
            ),
            "{found:#?}"
        );
    }

    #[test]
    fn flag_names_are_bare_and_lowercase() {
        let problems = check_component(
            Component::Scheduler,
            &arguments(&[("--v", "2"), ("Bad_Flag", "x"), ("v", "line\nbreak")]),
        );
        let fields: Vec<&str> = problems
            .iter()
            .map(|problem| problem.field.as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "extraArgs[\"--v\"]",
                "extraArgs[\"Bad_Flag\"]",
                "extraArgs[\"v\"]"
            ]
        );
    }

    #[test]
    fn volumes_are_checked_against_each_other_and_skiffs_own() {
        let volume = |name: &str, mount: &str, path_type: &str| HostPathMount {
            name: name.to_string(),
            host_path: "/etc/oidc".to_string(),
            mount_path: mount.to_string(),
            read_only: true,
            path_type: path_type.to_string(),
        };
        let spec = ComponentSpec {
            extra_args: BTreeMap::new(),
            extra_volumes: vec![
                volume("oidc", "/etc/oidc", "DirectoryOrCreate"),
                volume("oidc", "/etc/other", "Directory"),
                volume("audit", "/etc/kubernetes/audit/x", "Directory"),
                volume("skiff-audit-log", "relative", "Folder"),
            ],
        };
        let fields: Vec<String> = check_component(Component::ApiServer, &spec)
            .into_iter()
            .map(|problem| problem.field)
            .collect();
        assert_eq!(
            fields,
            [
                "extraVolumes[1].name",
                "extraVolumes[2].mountPath",
                "extraVolumes[3].name",
                "extraVolumes[3].mountPath",
                "extraVolumes[3].pathType",
            ]
        );
    }
}
