//! `spec.containerRuntime`: a node of each runtime boots in the sandbox with
//! its runtime's packages, its CRI socket everywhere (kubeadm's
//! `criSocket`, `crictl`), the systemd cgroup driver on both sides and the
//! pause image kubeadm of the cluster's version uses. The kubeadm stand-in's
//! preflight (ContainerRuntimeCheck) refuses a `criSocket` no started
//! runtime serves. containerd's side of the same checks is in every
//! containerd boot (`assert_prepared_like_a_kubernetes_node`).

use skiff_api::{Cni, ContainerRuntime, InstanceGroupRole, OsFamily};
use skiff_templates::NodeBootstrap;
use skiff_test_support::sandbox::{FakeCloud, Image, NodeSandbox};

use super::assert_booted;
use crate::support::{start_cloud, Sandbox};

const CRIO_SOCKET: &str = "unix:///var/run/crio/crio.sock";
const PAUSE_IMAGE: &str = "registry.k8s.io/pause:3.10.1";

fn crio(cloud: &FakeCloud, role: InstanceGroupRole, family: OsFamily) -> NodeBootstrap {
    NodeBootstrap {
        container_runtime: ContainerRuntime::CriO,
        ..cloud.bootstrap(role, family, Cni::Cilium)
    }
}

/// What every CRI-O node has, whatever its family and role.
fn assert_runs_crio(node: &NodeSandbox) {
    let settings = node.read("/etc/crio/crio.conf.d/20-skiff.conf");
    for expected in [
        "[crio.runtime]\ncgroup_manager = \"systemd\"",
        &format!("[crio.image]\npause_image = \"{PAUSE_IMAGE}\""),
        "network_dir = \"/etc/cni/net.d/\"",
        "plugin_dirs = [\"/opt/cni/bin/\"]",
    ] {
        assert!(
            settings.contains(expected),
            "{expected:?} missing:\n{settings}"
        );
    }
    assert_eq!(
        node.read("/etc/crictl.yaml"),
        format!("runtime-endpoint: {CRIO_SOCKET}\nimage-endpoint: {CRIO_SOCKET}\ntimeout: 10\n")
    );
    let commands = node.commands();
    for expected in [
        "systemctl enable crio",
        "systemctl restart crio",
        "systemctl enable kubelet",
    ] {
        assert!(
            commands.iter().any(|line| line == expected),
            "`{expected}` was not run:\n{}",
            commands.join("\n")
        );
    }
    assert!(
        !commands
            .iter()
            .any(|line| line.starts_with("containerd ") || line.contains("restart containerd")),
        "a CRI-O node must not set up containerd:\n{}",
        commands.join("\n")
    );
    assert!(!node.exists("/etc/containerd/config.toml"));
    let configs = node.kubeadm_configs();
    assert!(!configs.is_empty(), "kubeadm never ran");
    for (name, text) in &configs {
        assert!(
            text.contains(&format!("criSocket: {CRIO_SOCKET}\n")),
            "{name} must name CRI-O's socket:\n{text}"
        );
        assert!(!text.contains("containerd.sock"), "{name}:\n{text}");
    }
}

#[test]
fn a_crio_control_plane_on_debian_installs_crio_and_podman_and_inits_on_crios_socket() {
    let cloud = start_cloud();
    let config = crio(&cloud, InstanceGroupRole::ControlPlane, OsFamily::Debian);
    let node = cloud.node("i-0c0c0c0c0c0c0c0c1", &config, Image::Ubuntu);
    let boot = node.boot();
    assert_booted(&node, &boot);
    assert_runs_crio(&node);

    let installs = node.commands_starting("apt-get");
    for package in ["install cri-o", "install podman", "install cri-tools"] {
        assert!(
            installs.iter().any(|line| line.ends_with(package)),
            "`apt-get {package}` missing:\n{}",
            installs.join("\n")
        );
    }
    assert!(
        !installs.iter().any(|line| line.contains(" containerd")),
        "{installs:?}"
    );
    assert_eq!(
        node.read("/etc/apt/sources.list.d/cri-o.list"),
        "deb [signed-by=/etc/apt/keyrings/cri-o-apt-keyring.gpg] https://download.opensuse.org/repositories/isv:/cri-o:/stable:/v1.34/deb/ /\n"
    );
    // The Kubernetes repository is set up as before, by the same function.
    assert_eq!(
        node.read("/etc/apt/sources.list.d/kubernetes.list"),
        "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.34/deb/ /\n"
    );
    // etcd's tools came out of kubeadm's etcd image through podman (CRI-O's
    // image store), never through containerd's ctr.
    assert!(node.commands_starting("ctr ").is_empty());
    let podman = node.commands_starting("podman ");
    assert!(
        podman
            .first()
            .is_some_and(|line| line.starts_with("podman image mount registry.k8s.io/etcd:")),
        "{podman:?}"
    );
    assert!(node.exists("/usr/local/bin/etcdctl"));
    assert_eq!(node.commands_starting("kubeadm init").len(), 1);
    let init = &node.kubeadm_configs()[0].1;
    assert!(init.contains("cgroupDriver: systemd"), "{init}");
}

#[test]
fn a_crio_worker_on_rhel_gets_crio_from_its_project_repository_and_joins_on_its_socket() {
    let cloud = start_cloud();
    cloud.mark_api_server_ready();
    let config = crio(&cloud, InstanceGroupRole::Node, OsFamily::Rhel);
    let node = cloud.node("i-0c0c0c0c0c0c0c0c2", &config, Image::Rocky);
    let boot = node.boot();
    assert_booted(&node, &boot);
    assert_runs_crio(&node);

    let dnf = node.commands_starting("dnf");
    for expected in [
        "dnf install -y conntrack-tools socat iproute-tc tar iptables openssl",
        "dnf install -y cri-o",
        "dnf install -y --disableexcludes=kubernetes cri-tools",
    ] {
        assert!(dnf.contains(&expected.to_string()), "{expected}: {dnf:?}");
    }
    assert!(
        !dnf.iter()
            .any(|line| line.contains("containerd") || line.contains("podman")),
        "a CRI-O worker needs neither containerd nor podman: {dnf:?}"
    );
    assert!(!node.exists("/etc/yum.repos.d/docker-ce.repo"));
    let repository = node.read("/etc/yum.repos.d/cri-o.repo");
    assert!(
        repository.contains(
            "baseurl=https://download.opensuse.org/repositories/isv:/cri-o:/stable:/v1.34/rpm/"
        ),
        "{repository}"
    );
    assert!(repository.contains("gpgcheck=1"), "{repository}");
    assert_eq!(node.commands_starting("kubeadm join").len(), 1);
}

/// The stand-in's preflight is what makes the boots above mean something:
/// a kubeadm configuration naming a socket no started runtime serves fails
/// as kubeadm's ContainerRuntimeCheck does.
#[test]
fn kubeadm_refuses_a_cri_socket_no_started_runtime_serves() {
    let cloud = start_cloud();
    cloud.mark_api_server_ready();
    // A containerd worker: its runtime is containerd, started by its boot.
    let config = cloud.bootstrap(InstanceGroupRole::Node, OsFamily::Debian, Cni::Cilium);
    let node = cloud.node("i-0c0c0c0c0c0c0c0c3", &config, Image::Ubuntu);
    let boot = node.boot();
    assert_booted(&node, &boot);
    let join = node.kubeadm_configs()[0].1.clone();
    assert!(join.contains("criSocket: unix:///run/containerd/containerd.sock\n"));

    let with_crio = join.replace("unix:///run/containerd/containerd.sock", CRIO_SOCKET);
    node.write("/tmp/join-crio.yaml", &with_crio);
    let path = node.root.join("tmp/join-crio.yaml");
    let refused = node.run_stand_in(
        "kubeadm",
        &["join", "--config", path.to_str().expect("UTF-8 path")],
    );
    assert!(!refused.status.success(), "no CRI-O runs on this node");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("[ERROR CRI]") && stderr.contains(CRIO_SOCKET),
        "{stderr}"
    );

    node.write("/tmp/join-containerd.yaml", &join);
    let path = node.root.join("tmp/join-containerd.yaml");
    let accepted = node.run_stand_in(
        "kubeadm",
        &["join", "--config", path.to_str().expect("UTF-8 path")],
    );
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
}
