//! Kubernetes upgrades by replacement, the kubeadm way: the kubeadm
//! stand-in keeps the cluster's ClusterConfiguration in the real etcd
//! (`kube-system/kubeadm-config`), a control-plane join deploys the stored
//! version and refuses a kubelet newer than it; one new control-plane node
//! raises the stored version under the upgrade lease, and the last one to
//! come up at the new version upgrades kube-proxy and CoreDNS.

use skiff_api::{Cni, InstanceGroupRole, OsFamily};
use skiff_templates::{state_store, NodeBootstrap};
use skiff_test_support::etcd::parse_member_list;
use skiff_test_support::sandbox::{FakeCloud, Image, NodeSandbox, BUCKET, CLUSTER_PREFIX};

use super::assert_booted;
use super::durability::{assert_keys, etcdctl_at, put_keys};
use crate::support::{start_cloud, Sandbox};

const OLD: &str = "1.34.2";
const NEW: &str = "1.35.1";
const CONFIG_KEY: &str = "/registry/configmaps/kube-system/kubeadm-config";

fn control_plane_at(cloud: &FakeCloud, version: &str) -> NodeBootstrap {
    NodeBootstrap {
        kubernetes_version: version.parse().expect("version"),
        ..cloud.bootstrap(
            InstanceGroupRole::ControlPlane,
            OsFamily::Debian,
            Cni::Cilium,
        )
    }
}

/// The kubernetesVersion of the ClusterConfiguration stored in etcd.
fn stored_version(cloud: &FakeCloud) -> String {
    let text = cloud.etcd_value(CONFIG_KEY);
    text.lines()
        .find_map(|line| line.strip_prefix("kubernetesVersion: "))
        .unwrap_or_else(|| panic!("no kubernetesVersion in the stored configuration:\n{text}"))
        .trim_matches('"')
        .to_string()
}

fn node_name(node: &NodeSandbox) -> String {
    format!("ip-{}", node.private_ip.to_string().replace('.', "-"))
}

fn status(cloud: &FakeCloud, node: &NodeSandbox) -> serde_json::Value {
    let key = format!(
        "{CLUSTER_PREFIX}/{}{}",
        state_store::STATUS_FOLDER,
        node.instance_id
    );
    serde_json::from_str(&cloud.moto.get_object(BUCKET, &key))
        .unwrap_or_else(|error| panic!("{key} is not JSON: {error}"))
}

fn member_peers(cloud: &FakeCloud, node: &NodeSandbox) -> Vec<String> {
    let mut peers: Vec<String> = parse_member_list(&etcdctl_at(
        cloud,
        node,
        &["member", "list", "-w", "simple"],
    ))
    .into_iter()
    .map(|member| member.peer_url)
    .collect();
    peers.sort();
    peers
}

/// The minor of `1.35.1`.
fn minor(version: &str) -> u32 {
    version
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .and_then(|minor| minor.parse().ok())
        .unwrap_or_else(|| panic!("{version} is no version"))
}

/// The kubelet stand-in's record: no kubelet ever came up newer (a newer
/// minor) than the API server it talks to.
fn assert_no_kubelet_newer_than_its_api_server(cloud: &FakeCloud) {
    let kubelets = cloud.cluster_record("kubelets.log");
    assert!(!kubelets.is_empty());
    for line in &kubelets {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words.len(), 5, "{line}");
        assert!(
            minor(words[2]) <= minor(words[4]),
            "a kubelet newer than its API server: {line}"
        );
    }
}

/// A control-plane node is replaced as a roll does it: terminated by its
/// group (it leaves etcd and deletes its Node), then its replacement boots.
fn replace(cloud: &FakeCloud, old: &NodeSandbox, id: &str, config: &NodeBootstrap) -> NodeSandbox {
    old.set_lifecycle_state(Some("Terminated"));
    let leave = old.run(&["leave"]);
    assert!(leave.success, "{}", leave.everything());
    old.power_off();
    cloud.terminate_instance(&old.instance_id);
    let new = cloud.node(id, config, Image::Ubuntu);
    let boot = new.boot();
    assert_booted(&new, &boot);
    new
}

/// The one control-plane node leaves (a final backup), and a replacement at
/// `version` fails to restore it: a skipped minor.
fn replace_failing(cloud: &FakeCloud, old: &NodeSandbox, id: &str, version: &str) -> NodeSandbox {
    old.set_lifecycle_state(Some("Terminated"));
    let leave = old.run(&["leave"]);
    assert!(leave.success, "{}", leave.everything());
    old.power_off();
    cloud.terminate_instance(&old.instance_id);
    let new = cloud.node(id, &control_plane_at(cloud, version), Image::Ubuntu);
    let boot = new.boot();
    assert!(!boot.success, "{}", boot.everything());
    assert!(
        boot.log.contains(&format!(
            "cannot upgrade c1.example.com from Kubernetes {OLD} to {version}: kubeadm upgrades one minor version at a time"
        )),
        "{}",
        boot.log
    );
    new
}

fn assert_runs(cloud: &FakeCloud, nodes: &[&NodeSandbox], version: &str) {
    let static_pods = cloud.cluster_record("static-pods.log");
    for node in nodes {
        let name = node_name(node);
        let mine: Vec<&String> = static_pods
            .iter()
            .filter(|line| line.starts_with(&format!("{name} ")))
            .collect();
        for component in [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
        ] {
            assert!(
                mine.contains(&&format!("{name} {component} {version}")),
                "{name} has no {component} {version}: {mine:?}"
            );
        }
        assert!(
            mine.contains(&&format!("{name} etcd 3.6.6-0")),
            "{name} runs etcd 3.6.6-0 (kubeadm 1.35's): {mine:?}"
        );
        assert!(
            node.commands().iter().any(|line| line.contains(&format!(
                "install kubelet={version}-1.1 kubeadm={version}-1.1"
            ))),
            "{name}'s kubelet is not {version}"
        );
    }
    let mut expected: Vec<(String, String)> = nodes
        .iter()
        .map(|node| (node_name(node), version.to_string()))
        .collect();
    expected.sort();
    assert_eq!(cloud.api_servers(), expected);
    assert_eq!(stored_version(cloud), format!("v{version}"));
    assert_eq!(
        cloud.etcd_value("/registry/daemonsets/kube-system/kube-proxy"),
        format!("registry.k8s.io/kube-proxy:v{version}")
    );
    assert_eq!(
        cloud.etcd_value("/registry/deployments/kube-system/coredns"),
        "registry.k8s.io/coredns/coredns:v1.13.1"
    );
}

/// Whether a node raised the stored version (the cluster-wide step).
fn raised(node: &NodeSandbox) -> bool {
    node.commands()
        .iter()
        .any(|line| line.starts_with("kubectl") && line.contains(" replace -f "))
}

#[test]
fn a_three_node_control_plane_is_upgraded_one_minor_by_replacing_its_nodes_one_at_a_time() {
    let cloud = start_cloud();
    let old_config = control_plane_at(&cloud, OLD);
    let old: Vec<NodeSandbox> = [
        "i-0d00000000000000a",
        "i-0d00000000000000b",
        "i-0d00000000000000c",
    ]
    .iter()
    .map(|id| cloud.node(id, &old_config, Image::Ubuntu))
    .collect();
    let running: Vec<_> = old.iter().map(NodeSandbox::spawn).collect();
    for (node, boot) in old.iter().zip(running.into_iter().map(|run| run.wait())) {
        assert_booted(node, &boot);
    }
    put_keys(&cloud, &old[0], 10);
    assert_eq!(stored_version(&cloud), format!("v{OLD}"));
    assert_eq!(
        cloud.etcd_value("/registry/deployments/kube-system/coredns"),
        "registry.k8s.io/coredns/coredns:v1.12.1"
    );

    let new_config = control_plane_at(&cloud, NEW);
    let mut new = Vec::new();
    for (old_node, id) in old.iter().zip([
        "i-0e00000000000000a",
        "i-0e00000000000000b",
        "i-0e00000000000000c",
    ]) {
        new.push(replace(&cloud, old_node, id, &new_config));
        // Every replacement sees the raised version: no kubelet runs ahead
        // of the stored ClusterConfiguration.
        assert_eq!(stored_version(&cloud), format!("v{NEW}"));
    }

    // Exactly one node ran the cluster-wide step: the first replacement,
    // under the upgrade lease; the others joined at the raised version.
    let raisers: Vec<&NodeSandbox> = new.iter().filter(|node| raised(node)).collect();
    assert_eq!(raisers.len(), 1, "one node raises the stored version");
    assert_eq!(raisers[0].instance_id, new[0].instance_id);
    let log = raisers[0].read("/var/log/skiff-bootstrap.log");
    assert!(
        log.contains(
            "/etcd/leases/upgrade (one control-plane node performs the cluster-wide upgrade step)"
        ),
        "{log}"
    );
    for node in &new[1..] {
        assert!(
            !node
                .read("/var/log/skiff-bootstrap.log")
                .contains("/etcd/leases/upgrade"),
            "{} took the upgrade lease although the cluster was raised already",
            node.instance_id
        );
    }
    assert!(
        log.contains(&format!(
            "raised the cluster's ClusterConfiguration from Kubernetes {OLD} to {NEW}"
        )),
        "{log}"
    );
    assert!(raisers[0].commands().contains(&format!(
        "kubeadm config images pull --kubernetes-version v{NEW}"
    )));
    assert_eq!(status(&cloud, &new[0])["phase"], "upgraded");
    for node in &new[1..] {
        assert_eq!(status(&cloud, node)["phase"], "joined");
        assert_eq!(status(&cloud, node)["kubernetesVersion"], NEW);
    }
    assert!(
        !cloud
            .moto
            .list_keys(BUCKET, CLUSTER_PREFIX)
            .iter()
            .any(|key| key.ends_with("etcd/leases/upgrade")),
        "the upgrade lease is released"
    );

    // kube-proxy and CoreDNS moved once, by the last node to come up at the
    // new version; the two before it skipped them (old API servers left).
    let addons = cloud.cluster_record("addons.log");
    let upgraded: Vec<&String> = addons
        .iter()
        .filter(|line| line.contains(&format!("kube-proxy:v{NEW}")))
        .collect();
    assert_eq!(
        upgraded,
        vec![&format!(
            "{} kube-proxy registry.k8s.io/kube-proxy:v{NEW}",
            node_name(&new[2])
        )]
    );
    for node in &new[..2] {
        assert!(
            node.read("/var/log/skiff-bootstrap.log")
                .contains("Skipping upgrade of addons because control plane instances"),
            "{} should have skipped the addons",
            node.instance_id
        );
    }

    assert_runs(&cloud, &[&new[0], &new[1], &new[2]], NEW);
    assert_no_kubelet_newer_than_its_api_server(&cloud);
    let mut expected: Vec<String> = new
        .iter()
        .map(|node| format!("https://{}:2380", node.private_ip))
        .collect();
    expected.sort();
    assert_eq!(member_peers(&cloud, &new[2]), expected);
    assert_keys(&cloud, &new[2], 10);

    // A worker at the new version joins now: the API server runs 1.35.
    let worker_config = NodeBootstrap {
        kubernetes_version: NEW.parse().expect("version"),
        ..cloud.bootstrap(InstanceGroupRole::Node, OsFamily::Debian, Cni::Cilium)
    };
    let worker = cloud.node("i-0e0000000000000f1", &worker_config, Image::Ubuntu);
    let boot = worker.boot();
    assert_booted(&worker, &boot);
    assert!(
        boot.log.contains(&format!(
            "the API server runs Kubernetes {NEW}; this kubelet is {NEW}"
        )),
        "{}",
        boot.log
    );
    assert_no_kubelet_newer_than_its_api_server(&cloud);
}

#[test]
fn a_one_node_control_plane_is_upgraded_by_its_roll_and_keeps_every_key() {
    let cloud = start_cloud();
    let first = cloud.node(
        "i-0f00000000000000a",
        &control_plane_at(&cloud, OLD),
        Image::Ubuntu,
    );
    assert_booted(&first, &first.boot());
    assert_eq!(status(&cloud, &first)["phase"], "initialized");
    put_keys(&cloud, &first, 25);

    // Rolled to a version two minors up: the replacement refuses to restore
    // the final backup at it, and initializes nothing.
    let skipping = replace_failing(&cloud, &first, "i-0f00000000000000c", "1.36.0");
    assert!(skipping.commands_starting("kubeadm init").is_empty());
    assert_eq!(status(&cloud, &skipping)["phase"], "failed");
    skipping.power_off();
    cloud.terminate_instance(&skipping.instance_id);

    let second = cloud.node(
        "i-0f00000000000000b",
        &control_plane_at(&cloud, NEW),
        Image::Ubuntu,
    );
    assert_booted(&second, &second.boot());
    let log = second.read("/var/log/skiff-bootstrap.log");
    assert!(
        log.contains(&format!(
            "was written at Kubernetes {OLD}: restoring upgrades c1.example.com to {NEW}"
        )),
        "{log}"
    );
    assert_keys(&cloud, &second, 25);
    assert_eq!(status(&cloud, &second)["phase"], "upgraded");
    assert_runs(&cloud, &[&second], NEW);
    assert_no_kubelet_newer_than_its_api_server(&cloud);
    assert_eq!(
        member_peers(&cloud, &second),
        vec![format!("https://{}:2380", second.private_ip)]
    );
}

#[test]
fn a_failed_upgrade_step_leaves_the_old_control_plane_serving_and_says_why() {
    let cloud = start_cloud();
    let first = cloud.node(
        "i-0a1000000000000aa",
        &control_plane_at(&cloud, OLD),
        Image::Ubuntu,
    );
    assert_booted(&first, &first.boot());
    put_keys(&cloud, &first, 5);
    let members = member_peers(&cloud, &first);

    // A skipped minor: refused before anything changes.
    let skipping = cloud.node(
        "i-0a1000000000000bb",
        &control_plane_at(&cloud, "1.36.0"),
        Image::Ubuntu,
    );
    let boot = skipping.boot();
    assert!(!boot.success, "{}", boot.everything());
    let reason = format!(
        "cannot upgrade c1.example.com from Kubernetes {OLD} to 1.36.0: kubeadm upgrades one minor version at a time; set kubernetesVersion to a 1.35 release"
    );
    assert!(boot.log.contains(&reason), "{}", boot.log);
    let failed = status(&cloud, &skipping);
    assert_eq!(failed["phase"], "failed");
    assert!(
        failed["message"]
            .as_str()
            .expect("a message")
            .contains(&reason),
        "{failed}"
    );
    assert_eq!(
        cloud.instance_health(&skipping.instance_id).as_deref(),
        Some("Unhealthy")
    );

    // The new version's images cannot be pulled: the step stops before the
    // stored version changes.
    let unlucky = cloud.node(
        "i-0a1000000000000cc",
        &control_plane_at(&cloud, NEW),
        Image::Ubuntu,
    );
    unlucky.fail_command("kubeadm-images-pull");
    let boot = unlucky.boot();
    assert!(!boot.success, "{}", boot.everything());
    assert!(
        boot.log.contains(&format!(
            "upgrading c1.example.com from Kubernetes {OLD} to {NEW}"
        )),
        "{}",
        boot.log
    );
    let failed = status(&cloud, &unlucky);
    assert_eq!(failed["phase"], "failed");
    assert!(
        failed["message"]
            .as_str()
            .expect("a message")
            .contains("kubeadm config images pull"),
        "{failed}"
    );
    assert_eq!(
        cloud.instance_health(&unlucky.instance_id).as_deref(),
        Some("Unhealthy")
    );

    // The join after the raise fails: the node puts the old version back.
    let reverted = cloud.node(
        "i-0a1000000000000dd",
        &control_plane_at(&cloud, NEW),
        Image::Ubuntu,
    );
    reverted.fail_command("kubeadm-join");
    let boot = reverted.boot();
    assert!(!boot.success, "{}", boot.everything());
    assert!(raised(&reverted), "it raised the version before its join");
    assert!(
        boot.log.contains(&format!(
            "put the cluster's ClusterConfiguration back to Kubernetes {OLD}"
        )),
        "{}",
        boot.log
    );
    let failed = status(&cloud, &reverted);
    assert_eq!(failed["phase"], "failed");
    assert!(
        failed["message"]
            .as_str()
            .expect("a message")
            .contains(&format!(
                "kubeadm join failed; the control plane keeps running Kubernetes {OLD}"
            )),
        "{failed}"
    );
    assert_eq!(
        cloud.instance_health(&reverted.instance_id).as_deref(),
        Some("Unhealthy")
    );

    // The old control plane serves on, unchanged.
    for node in [&skipping, &unlucky] {
        assert!(!raised(node));
        assert!(node.commands_starting("kubeadm join").is_empty());
    }
    assert_eq!(stored_version(&cloud), format!("v{OLD}"));
    assert_eq!(member_peers(&cloud, &first), members);
    assert!(first.etcd_running());
    assert_keys(&cloud, &first, 5);
    assert_eq!(
        cloud.api_servers(),
        vec![(node_name(&first), OLD.to_string())]
    );
    assert!(
        !cloud
            .moto
            .list_keys(BUCKET, CLUSTER_PREFIX)
            .iter()
            .any(|key| key.ends_with("etcd/leases/upgrade")),
        "the upgrade lease is released after a failure"
    );
}

#[test]
fn the_kubeadm_stand_in_refuses_a_control_plane_join_whose_kubelet_is_newer_than_the_stored_version(
) {
    let cloud = start_cloud();
    let first = cloud.node(
        "i-0b1000000000000aa",
        &control_plane_at(&cloud, OLD),
        Image::Ubuntu,
    );
    assert_booted(&first, &first.boot());
    let members = member_peers(&cloud, &first);

    // A node whose packages are 1.35, with the etcd CA, joining as a
    // control-plane member with a configuration that names no version.
    let newer = cloud.node(
        "i-0b1000000000000bb",
        &control_plane_at(&cloud, NEW),
        Image::Ubuntu,
    );
    newer.write(
        "/etc/kubernetes/pki/etcd/ca.crt",
        &cloud.pki_file("etcd-ca.crt"),
    );
    newer.write(
        "/etc/kubernetes/pki/etcd/ca.key",
        &cloud.pki_file("etcd-ca.key"),
    );
    newer.write(
        "/tmp/join.yaml",
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ncontrolPlane: {}\n",
    );
    let config = newer.root.join("tmp/join.yaml");
    let output = newer.run_stand_in(
        "kubeadm",
        &["join", "--config", config.to_str().expect("a path")],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "[ERROR KubeletVersion]: the kubelet version is higher than the control plane version. This is not a supported version skew and may lead to a malfunctional cluster. Kubelet version: \"{NEW}\" Control plane version: \"{OLD}\""
        )),
        "{stderr}"
    );
    assert_eq!(member_peers(&cloud, &first), members, "no member was added");
    assert_eq!(
        cloud.api_servers(),
        vec![(node_name(&first), OLD.to_string())]
    );

    // A 1.34 patch newer than the stored one is no minor skew: it joins, and
    // deploys the stored version, not its own.
    let patch = cloud.node(
        "i-0b1000000000000cc",
        &control_plane_at(&cloud, "1.34.3"),
        Image::Ubuntu,
    );
    patch.write(
        "/etc/kubernetes/pki/etcd/ca.crt",
        &cloud.pki_file("etcd-ca.crt"),
    );
    patch.write(
        "/etc/kubernetes/pki/etcd/ca.key",
        &cloud.pki_file("etcd-ca.key"),
    );
    patch.write(
        "/tmp/join.yaml",
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ncontrolPlane: {}\n",
    );
    let config = patch.root.join("tmp/join.yaml");
    let output = patch.run_stand_in(
        "kubeadm",
        &["join", "--config", config.to_str().expect("a path")],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(cloud
        .cluster_record("static-pods.log")
        .contains(&format!("{} kube-apiserver {OLD}", node_name(&patch))));
}

#[test]
fn a_worker_newer_than_the_api_server_waits_then_fails_without_joining() {
    let cloud = start_cloud();
    cloud.mark_api_server_ready_at(OLD);
    let config = NodeBootstrap {
        kubernetes_version: NEW.parse().expect("version"),
        ..cloud.bootstrap(InstanceGroupRole::Node, OsFamily::Debian, Cni::Cilium)
    };
    let worker = cloud.node("i-0c1000000000000aa", &config, Image::Ubuntu);
    let boot = worker.boot();
    assert!(!boot.success, "{}", boot.everything());
    assert!(
        boot.log.contains(&format!(
            "the API server at https://api.c1.example.com:443 runs Kubernetes {OLD}, older than this node's kubelet {NEW}"
        )),
        "{}",
        boot.log
    );
    assert!(worker.commands_starting("kubeadm join").is_empty());
    assert_eq!(
        cloud.instance_health(&worker.instance_id).as_deref(),
        Some("Unhealthy")
    );
    assert_eq!(
        worker
            .commands()
            .iter()
            .filter(|line| line.ends_with("/version"))
            .count(),
        90,
        "bounded: 90 tries"
    );
}
