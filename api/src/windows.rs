//! Windows worker groups (`osFamily: windows`): the default image, the taint
//! every Windows node registers with, and the rules a bundle with Windows
//! groups must follow (the setup guide's §3.1 and §3.2).
//!
//! Windows Server nodes are workers only: the control plane (and etcd, and
//! the bastions) run Linux. They join a Linux control plane with the same
//! bootstrap token and CA pin as the Linux workers, and register with the
//! taint [`DEFAULT_TAINT`] beside the kubelet's own `kubernetes.io/os=windows`
//! label, so that a Linux workload lands on them only when it says so.

use crate::cluster::Cni;
use crate::document::ClusterBundle;
use crate::instance_group::{InstanceGroupRole, OsFamily, Taint};

/// The image a Windows group gets by default: Amazon's newest Windows Server
/// 2022 Core base image (owner `801119661308`, Amazon's Windows images).
pub const DEFAULT_IMAGE: &str = "801119661308/Windows_Server-2022-English-Core-Base-*";

/// Amazon's Windows Server 2025 Core base image, the other release a group
/// may name.
pub const WINDOWS_SERVER_2025_IMAGE: &str = "801119661308/Windows_Server-2025-English-Core-Base-*";

/// The Windows Server releases whose images a Windows group may name.
pub const SUPPORTED_RELEASES: [&str; 2] = ["2022", "2025"];

/// The taint key every Windows node registers with unless its group lists
/// a taint of that key itself.
pub const DEFAULT_TAINT_KEY: &str = "os";

/// `os=windows:NoSchedule`: keeps every pod that does not tolerate it off
/// Windows nodes (§3.2, "Taints and Tolerations").
pub fn default_taint() -> Taint {
    Taint {
        key: DEFAULT_TAINT_KEY.to_string(),
        value: "windows".to_string(),
        effect: "NoSchedule".to_string(),
    }
}

/// The taints a node of a group registers with: the group's own, plus
/// [`default_taint`] on Windows nodes whose group lists no `os` taint (so a
/// group can replace it, e.g. with `os=windows:PreferNoSchedule`).
pub fn registered_taints(os_family: OsFamily, group_taints: &[Taint]) -> Vec<Taint> {
    let mut taints = group_taints.to_vec();
    if os_family.is_windows() && !taints.iter().any(|taint| taint.key == DEFAULT_TAINT_KEY) {
        taints.insert(0, default_taint());
    }
    taints
}

/// The CNI plugins whose Windows data plane skiff installs, as
/// `spec.networking.cni` names them: Calico only. Cilium has none; Flannel's
/// pinned release publishes none (see [`windows_data_plane`]), and a Windows
/// node without a pod network is no worker at all.
pub fn cni_supports_windows(cni: Cni) -> bool {
    match cni {
        Cni::Calico => true,
        Cni::Flannel | Cni::Cilium => false,
    }
}

/// Every rule a bundle with Windows groups breaks, as (field path, message),
/// in the form of `validation.rs`'s findings.
pub(crate) fn problems(bundle: &ClusterBundle) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut windows_groups = Vec::new();
    for group in &bundle.instance_groups {
        let at = |field: &str| format!("instancegroup/{}: {field}", group.name());
        let spec = &group.spec;
        if spec.os_family.is_windows() {
            windows_groups.push(group.name().to_string());
            if spec.role != InstanceGroupRole::Node {
                found.push((
                    at("spec.osFamily"),
                    format!(
                        "windows is for worker groups only (role Node); a {} group runs Linux, \
                         since Kubernetes supports Windows as a worker only; use debian or rhel",
                        spec.role
                    ),
                ));
            }
        }
        if spec.os_family.is_windows() {
            if spec.container_runtime == Some(crate::ContainerRuntime::CriO) {
                found.push((
                    at("spec.containerRuntime"),
                    "cri-o has no Windows build: Windows nodes run containerd; remove the field or set containerd".to_string(),
                ));
            }
            if !spec.kubelet.is_empty() {
                found.push((
                    at("spec.kubelet"),
                    "is not applied to Windows nodes yet (their kubelet is configured by the PowerShell user-data, not by kubeadm patches): remove it".to_string(),
                ));
            }
        }
        if let Some(image) = &spec.image {
            if let Some(problem) = image_problem(spec.os_family, image) {
                found.push((at("spec.image"), problem));
            }
        }
    }
    let cni = bundle.cluster.spec.networking.cni;
    if !windows_groups.is_empty() && !cni_supports_windows(cni) {
        found.push((
            "spec.networking.cni".to_string(),
            format!(
                "{cni} has no Windows data plane skiff can install{}, and instance group{} {} run{} osFamily: windows; \
                 use calico, whose Windows data plane the first control-plane node installs, \
                 or give those groups a Linux osFamily",
                if cni == Cni::Flannel {
                    " (the pinned Flannel release publishes no Windows DaemonSet or image, and \
                     sig-windows-tools removed its Flannel HostProcess examples; docs/windows.md)"
                } else {
                    ""
                },
                if windows_groups.len() == 1 { "" } else { "s" },
                windows_groups.join(", "),
                if windows_groups.len() == 1 { "s" } else { "" },
            ),
        ));
    }
    found
}

/// What a bundle with Windows groups should know, as (field path, message):
/// where the Windows nodes' pod network comes from with the cluster's CNI,
/// and when it does not (see [`windows_data_plane`]).
pub(crate) fn warnings(bundle: &ClusterBundle) -> Vec<(String, String)> {
    let cni = bundle.cluster.spec.networking.cni;
    if !cni_supports_windows(cni) {
        return Vec::new();
    }
    let cluster = &bundle.cluster.spec;
    let mut found: Vec<(String, String)> = Vec::new();
    for group in bundle
        .instance_groups
        .iter()
        .filter(|group| group.spec.os_family.is_windows())
    {
        let at = format!("instancegroup/{}: spec.osFamily", group.name());
        if cluster.container_runtime == crate::ContainerRuntime::CriO
            && group.spec.container_runtime.is_none()
        {
            found.push((
                at.clone(),
                "runs containerd: the cluster's containerRuntime cri-o applies to its Linux groups only (cri-o has no Windows build)".to_string(),
            ));
        }
        if !cluster.kubelet.is_empty() {
            found.push((
                at,
                "the cluster's spec.kubelet settings are not applied to Windows nodes yet (their kubelet is configured by the PowerShell user-data)".to_string(),
            ));
        }
    }
    found.extend(
        bundle
            .instance_groups
            .iter()
            .filter(|group| group.spec.os_family.is_windows())
            .map(|group| {
                (
                    format!("instancegroup/{}: spec.osFamily", group.name()),
                    windows_data_plane(cni).to_string(),
                )
            }),
    );
    found
}

/// Whether `next` gives a Calico cluster its first Windows group. Checked
/// (by the state store) only for a cluster whose first control-plane node
/// already ran `kubeadm init`: that node chose how Calico is installed
/// (from its manifest without Windows groups, through the Tigera operator
/// with them, `templates/src/cni.rs`), and skiff does not migrate a running
/// Calico from its manifest to the operator (Calico's "Migrate Calico to an
/// operator-managed installation", plus its IP pool from IP-in-IP to
/// VXLAN, touch every node's data plane). Such Windows nodes would join
/// with no pod network, and the control plane would roll for nothing.
/// `Err` is (field path, what to do).
pub fn check_first_windows_group(
    previous: &ClusterBundle,
    next: &ClusterBundle,
) -> Result<(), (String, String)> {
    let windows = |bundle: &ClusterBundle| -> Vec<String> {
        bundle
            .instance_groups
            .iter()
            .filter(|group| group.spec.os_family.is_windows())
            .map(|group| group.name().to_string())
            .collect()
    };
    let added = windows(next);
    if next.cluster.spec.networking.cni != Cni::Calico
        || !windows(previous).is_empty()
        || added.is_empty()
    {
        return Ok(());
    }
    Err((
        format!("instancegroup/{}: spec.osFamily", added[0]),
        format!(
            "cluster {} was initialized without Windows groups, so its Calico runs from \
             Calico's manifest, and Calico's Windows data plane needs the Tigera operator; \
             skiff does not migrate a running Calico (docs/windows.md, \"Calico on a cluster \
             created without Windows groups\"): migrate Calico to the operator and its IP pool \
             to VXLAN first, or create a new cluster with its Windows groups",
            next.name()
        ),
    ))
}

/// Where a Windows node's pod network comes from with `cni`, as upstream
/// stands at the releases `templates/src/cni.rs` pins (docs/windows.md):
/// - Calico publishes no Windows manifest since projectcalico/calico commit
///   a75d724add ("Remove tech-preview Windows manifests"; first released in
///   v3.27.3 and v3.28.0); at v3.30.3 its Tigera operator renders
///   `calico-node-windows` (tigera/docs
///   `calico_versioned_docs/version-3.30/getting-started/kubernetes/windows-calico/operator.mdx`).
///   The first control-plane node of a cluster with Windows groups installs
///   Calico that way; a cluster whose first control plane ran without them
///   runs Calico from its manifest, which skiff does not migrate.
/// - Flannel v0.27.4 publishes no Windows DaemonSet, manifest or image, and
///   kubernetes-sigs/sig-windows-tools removed its Flannel HostProcess
///   examples (`hostprocess/flannel/`) in commit 729ae7cd69ad ("Remove
///   Flannel HPC examples", #385, April 2025).
fn windows_data_plane(cni: Cni) -> &'static str {
    match cni {
        Cni::Calico => {
            "the Windows nodes' pod network is Calico's Windows data plane, which the first \
             control-plane node installs through the Tigera operator when the cluster has \
             Windows groups; a cluster whose first control plane ran without them runs Calico \
             from its manifest, which skiff does not migrate (see docs/windows.md, \
             \"Calico on a cluster created without Windows groups\")"
        }
        Cni::Flannel => {
            "flannel has no Windows data plane skiff can install (refused with Windows groups)"
        }
        Cni::Cilium => "cilium has no Windows data plane",
    }
}

/// Why an `OWNER/NAME` image pattern cannot be of the group's family: a
/// Windows group must name a Windows Server 2022 or 2025 image, a Linux
/// group no Windows image. An `ami-...` ID is not checked here.
fn image_problem(os_family: OsFamily, image: &str) -> Option<String> {
    let (_, name) = image.split_once('/')?;
    let lower = name.to_ascii_lowercase();
    let names_windows = lower.contains("windows");
    if !os_family.is_windows() {
        return names_windows.then(|| {
            format!(
                "{image:?} is a Windows image, but the group's osFamily is {os_family}; \
                 set osFamily: windows (worker groups only) or name a Linux image"
            )
        });
    }
    if !names_windows {
        return Some(format!(
            "{image:?} does not name a Windows image, but the group's osFamily is windows; \
             remove spec.image to get {DEFAULT_IMAGE}, or name another Windows Server \
             2022 or 2025 image"
        ));
    }
    let release = lower
        .split("windows_server-")
        .nth(1)
        .map(|rest| rest.chars().take(4).collect::<String>());
    match release {
        Some(year)
            if year.chars().all(|c| c.is_ascii_digit())
                && !SUPPORTED_RELEASES.contains(&year.as_str()) =>
        {
            Some(format!(
                "{image:?} is Windows Server {year}; skiff builds Windows workers on Windows \
                 Server 2022 or 2025 (containerd and HostProcess containers), e.g. \
                 {DEFAULT_IMAGE} or {WINDOWS_SERVER_2025_IMAGE}"
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{LoadBalancerType, Topology};
    use crate::new_cluster::{new_cluster, NewClusterOptions};

    /// A valid cluster whose worker group `nodes` runs `family`, with `cni`.
    fn bundle(cni: Cni, family: OsFamily) -> ClusterBundle {
        let mut bundle = new_cluster(&NewClusterOptions {
            name: "c1.example.com".to_string(),
            zones: vec!["us-east-1a".into()],
            control_plane_zones: Vec::new(),
            control_plane_count: 1,
            control_plane_size: "t3.medium".into(),
            node_count: 1,
            node_size: "t3.medium".into(),
            kubernetes_version: crate::version::DEFAULT_VERSION.parse().expect("valid"),
            topology: Topology::Public,
            cni,
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
        .expect("builds");
        for group in &mut bundle.instance_groups {
            if group.spec.role == InstanceGroupRole::Node {
                group.spec.os_family = family;
                group.spec.image = Some(family.default_image().to_string());
            }
        }
        bundle
    }

    fn errors(bundle: &ClusterBundle) -> Vec<String> {
        match crate::validate(bundle) {
            Ok(_) => Vec::new(),
            Err(error) => error.errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_windows_worker_group_with_calico_is_valid_and_with_flannel_refused() {
        assert_eq!(
            errors(&bundle(Cni::Calico, OsFamily::Windows)),
            Vec::<String>::new()
        );
        let flannel = errors(&bundle(Cni::Flannel, OsFamily::Windows));
        assert_eq!(flannel.len(), 1, "{flannel:?}");
        assert!(
            flannel[0].starts_with("spec.networking.cni: flannel has no Windows data plane skiff can install (the pinned Flannel release"),
            "{flannel:?}"
        );
        assert!(flannel[0].contains("use calico"), "{flannel:?}");
        assert!(errors(&bundle(Cni::Flannel, OsFamily::Debian)).is_empty());
    }

    #[test]
    fn a_windows_group_is_told_where_its_pod_network_comes_from() {
        let calico = crate::validate(&bundle(Cni::Calico, OsFamily::Windows)).expect("valid");
        assert_eq!(calico.len(), 1, "{calico:?}");
        assert!(
            calico[0].message.contains(
                "installs through the Tigera operator when the cluster has Windows groups"
            ),
            "{calico:?}"
        );
        assert!(crate::validate(&bundle(Cni::Flannel, OsFamily::Debian))
            .expect("valid")
            .is_empty());
    }

    #[test]
    fn a_first_windows_group_on_an_initialized_calico_cluster_is_named_and_later_ones_are_not() {
        let linux = bundle(Cni::Calico, OsFamily::Debian);
        let windows = bundle(Cni::Calico, OsFamily::Windows);
        let (field, message) =
            check_first_windows_group(&linux, &windows).expect_err("first Windows group");
        assert_eq!(field, "instancegroup/nodes-us-east-1a: spec.osFamily");
        assert!(message.contains("Tigera operator"), "{message}");
        assert!(message.contains("create a new cluster"), "{message}");
        assert_eq!(check_first_windows_group(&windows, &windows), Ok(()));
        assert_eq!(check_first_windows_group(&windows, &linux), Ok(()));
        assert_eq!(check_first_windows_group(&linux, &linux), Ok(()));
    }

    #[test]
    fn cilium_with_a_windows_group_is_refused_at_the_cni_field() {
        let found = errors(&bundle(Cni::Cilium, OsFamily::Windows));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("spec.networking.cni: cilium has no Windows data plane"),
            "{found:?}"
        );
        assert!(
            found[0].contains("use calico, whose Windows data plane"),
            "{found:?}"
        );
        assert!(errors(&bundle(Cni::Cilium, OsFamily::Debian)).is_empty());
    }

    #[test]
    fn cri_o_and_kubelet_settings_on_a_windows_group_are_refused_and_the_clusters_are_warned_of() {
        let mut bundle = bundle(Cni::Calico, OsFamily::Windows);
        bundle.cluster.spec.container_runtime = crate::ContainerRuntime::CriO;
        bundle.cluster.spec.kubelet.max_pods = Some(200);
        let warned: Vec<String> = warnings(&bundle)
            .into_iter()
            .map(|(path, message)| format!("{path}: {message}"))
            .collect();
        assert!(
            warned.iter().any(|warning| warning
                .contains("containerRuntime cri-o applies to its Linux groups only")),
            "{warned:?}"
        );
        assert!(
            warned.iter().any(|warning| warning
                .contains("spec.kubelet settings are not applied to Windows nodes")),
            "{warned:?}"
        );
        assert!(errors(&bundle).is_empty(), "{:?}", errors(&bundle));
        let group = bundle
            .instance_groups
            .iter_mut()
            .find(|group| group.spec.os_family.is_windows())
            .expect("a Windows group");
        group.spec.container_runtime = Some(crate::ContainerRuntime::CriO);
        group.spec.kubelet.max_pods = Some(100);
        let refused = errors(&bundle);
        assert!(
            refused
                .iter()
                .any(|error| error.contains("spec.containerRuntime")
                    && error.contains("cri-o has no Windows build")),
            "{refused:?}"
        );
        assert!(
            refused.iter().any(|error| error.contains("spec.kubelet")
                && error.contains("not applied to Windows nodes")),
            "{refused:?}"
        );
    }

    #[test]
    fn only_worker_groups_run_windows() {
        let mut spec = bundle(Cni::Calico, OsFamily::Debian);
        let control_plane = spec
            .instance_groups
            .iter_mut()
            .find(|group| group.spec.role == InstanceGroupRole::ControlPlane)
            .expect("a control plane");
        control_plane.spec.os_family = OsFamily::Windows;
        control_plane.spec.image = Some(DEFAULT_IMAGE.to_string());
        let name = control_plane.name().to_string();
        let found = errors(&spec);
        assert_eq!(
            found,
            [format!(
                "instancegroup/{name}: spec.osFamily: windows is for worker groups only (role Node); \
                 a ControlPlane group runs Linux, since Kubernetes supports Windows as a worker \
                 only; use debian or rhel"
            )]
        );
    }

    #[test]
    fn a_linux_image_on_a_windows_group_is_refused_at_the_image() {
        let mut spec = bundle(Cni::Calico, OsFamily::Windows);
        let group = spec
            .instance_groups
            .iter_mut()
            .find(|group| group.spec.role == InstanceGroupRole::Node)
            .expect("a worker group");
        group.spec.image = Some(OsFamily::Debian.default_image().to_string());
        let name = group.name().to_string();
        let found = errors(&spec);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(&format!("instancegroup/{name}: spec.image: ")),
            "{found:?}"
        );
    }

    #[test]
    fn the_default_taint_is_added_once_and_can_be_replaced() {
        assert_eq!(
            registered_taints(OsFamily::Windows, &[])
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            vec!["os=windows:NoSchedule"]
        );
        let own: Taint = "os=windows:PreferNoSchedule".parse().expect("taint");
        assert_eq!(
            registered_taints(OsFamily::Windows, std::slice::from_ref(&own)),
            vec![own]
        );
        assert!(registered_taints(OsFamily::Debian, &[]).is_empty());
    }

    #[test]
    fn images_must_match_the_family() {
        assert_eq!(image_problem(OsFamily::Windows, DEFAULT_IMAGE), None);
        assert_eq!(
            image_problem(OsFamily::Windows, WINDOWS_SERVER_2025_IMAGE),
            None
        );
        assert_eq!(
            image_problem(OsFamily::Windows, "ami-0123456789abcdef0"),
            None
        );
        let old = image_problem(
            OsFamily::Windows,
            "801119661308/Windows_Server-2019-English-Core-Base-*",
        )
        .expect("refused");
        assert!(old.contains("Windows Server 2019"), "{old}");
        let linux =
            image_problem(OsFamily::Windows, OsFamily::Debian.default_image()).expect("refused");
        assert!(linux.contains("does not name a Windows image"), "{linux}");
        let windows_on_linux = image_problem(OsFamily::Debian, DEFAULT_IMAGE).expect("refused");
        assert!(
            windows_on_linux.contains("osFamily: windows"),
            "{windows_on_linux}"
        );
        assert_eq!(
            image_problem(OsFamily::Rhel, OsFamily::Rhel.default_image()),
            None
        );
    }
}
