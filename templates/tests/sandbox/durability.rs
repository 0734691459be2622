//! The control plane outlives its instances: rolls, crashes, stop/start,
//! failed bootstraps and backups, with real etcd members started by the
//! kubeadm and kubelet stand-ins, and the state store and EC2/Auto Scaling
//! at the sandbox's moto.

use skiff_api::{Cni, InstanceGroupRole, OsFamily};
use skiff_templates::{EtcdBackups, NodeBootstrap};
use skiff_test_support::etcd::parse_member_list;
use skiff_test_support::sandbox::{FakeCloud, Image, NodeSandbox, BUCKET, CLUSTER_PREFIX};

use super::assert_booted;
use crate::support::{start_cloud, Sandbox};

fn control_plane(cloud: &FakeCloud) -> NodeBootstrap {
    cloud.bootstrap(
        InstanceGroupRole::ControlPlane,
        OsFamily::Debian,
        Cni::Cilium,
    )
}

/// etcdctl at one node's member.
pub(super) fn etcdctl_at(cloud: &FakeCloud, node: &NodeSandbox, arguments: &[&str]) -> String {
    let endpoint = format!("--endpoints=https://{}:2379", node.private_ip);
    let mut all = vec![endpoint.as_str()];
    all.extend_from_slice(arguments);
    let output = cloud.etcdctl(&all);
    assert!(
        output.status.success(),
        "etcdctl {arguments:?} at {}: {}",
        node.instance_id,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(super) fn put_keys(cloud: &FakeCloud, node: &NodeSandbox, count: usize) {
    for index in 0..count {
        etcdctl_at(
            cloud,
            node,
            &[
                "put",
                &format!("/registry/skiff-test/{index}"),
                &format!("value-{index}"),
            ],
        );
    }
}

pub(super) fn assert_keys(cloud: &FakeCloud, node: &NodeSandbox, count: usize) {
    for index in 0..count {
        let value = etcdctl_at(
            cloud,
            node,
            &[
                "get",
                "--print-value-only",
                &format!("/registry/skiff-test/{index}"),
            ],
        );
        assert_eq!(
            value.trim(),
            format!("value-{index}"),
            "key {index} at {}",
            node.instance_id
        );
    }
}

fn member_peers(cloud: &FakeCloud, node: &NodeSandbox) -> Vec<String> {
    let mut peers: Vec<String> = parse_member_list(&etcdctl_at(
        cloud,
        node,
        &["member", "list", "-w", "simple"],
    ))
    .into_iter()
    .map(|member| {
        assert_eq!(member.status, "started", "{member:?}");
        assert!(!member.is_learner, "{member:?}");
        member.peer_url
    })
    .collect();
    peers.sort();
    peers
}

fn backups(cloud: &FakeCloud) -> Vec<String> {
    cloud
        .moto
        .list_keys(BUCKET, &format!("{CLUSTER_PREFIX}/etcd/backups/"))
}

#[test]
fn a_one_node_control_plane_replaced_by_a_roll_comes_back_with_its_data() {
    let cloud = start_cloud();
    let config = control_plane(&cloud);
    let first = cloud.node("i-0100000000000000a", &config, Image::Ubuntu);
    assert_booted(&first, &first.boot());
    put_keys(&cloud, &first, 25);

    // The roll: the group terminates the only control-plane instance, which
    // powers off; as the last member, it writes a final backup.
    first.set_lifecycle_state(Some("Terminated"));
    let leave = first.run(&["leave"]);
    assert!(leave.success, "{}", leave.everything());
    assert!(leave.log.contains("last etcd member"), "{}", leave.log);
    let written = backups(&cloud);
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(
        written[0].contains(&format!("-{}.db", first.instance_id)),
        "{written:?}"
    );
    assert!(first.commands_starting("kubeadm reset").is_empty());
    first.power_off();
    cloud.terminate_instance(&first.instance_id);

    // Its replacement finds no live member and a cluster that exists: it
    // restores the backup instead of initializing an empty etcd.
    let second = cloud.node("i-0200000000000000b", &config, Image::Ubuntu);
    let boot = second.boot();
    assert_booted(&second, &boot);
    assert!(
        boot.log.contains("restoring the newest backup"),
        "{}",
        boot.log
    );
    assert_eq!(
        second.commands_starting("kubeadm init"),
        vec![format!(
            "kubeadm init --config {}/var/lib/skiff/work/kubeadm-init.yaml --skip-token-print --ignore-preflight-errors=DirAvailable--var-lib-etcd",
            second.root.display()
        )]
    );
    assert!(
        second.commands_starting("cilium").is_empty(),
        "the CNI is in the restored data already"
    );
    assert_eq!(
        second.read("/etc/kubernetes/pki/ca.crt"),
        cloud.pki_file("ca.crt"),
        "the same cluster CA"
    );
    assert_keys(&cloud, &second, 25);
    assert_eq!(
        member_peers(&cloud, &second),
        vec![format!("https://{}:2380", second.private_ip)]
    );
}

#[test]
fn a_dead_member_is_removed_and_two_replacements_join_one_at_a_time() {
    let cloud = start_cloud();
    let config = control_plane(&cloud);
    let nodes: Vec<NodeSandbox> = [
        "i-0a0000000000000a1",
        "i-0a0000000000000b2",
        "i-0a0000000000000c3",
    ]
    .iter()
    .map(|id| cloud.node(id, &config, Image::Ubuntu))
    .collect();
    let running: Vec<_> = nodes.iter().map(NodeSandbox::spawn).collect();
    for (node, boot) in nodes.iter().zip(running.into_iter().map(|run| run.wait())) {
        assert_booted(node, &boot);
    }
    put_keys(&cloud, &nodes[0], 10);

    // A crash: the third instance is gone without leaving etcd.
    let dead = &nodes[2];
    dead.power_off();
    cloud.terminate_instance(&dead.instance_id);
    let dead_peer = format!("https://{}:2380", dead.private_ip);
    assert!(member_peers(&cloud, &nodes[0]).contains(&dead_peer));

    // Two replacements boot at once: the first to hold the lease removes the
    // dead member, each joins in turn.
    let replacements: Vec<NodeSandbox> = ["i-0a0000000000000d4", "i-0a0000000000000e5"]
        .iter()
        .map(|id| cloud.node(id, &config, Image::Ubuntu))
        .collect();
    let running: Vec<_> = replacements.iter().map(NodeSandbox::spawn).collect();
    let boots: Vec<_> = running.into_iter().map(|run| run.wait()).collect();
    for (node, boot) in replacements.iter().zip(&boots) {
        assert_booted(node, boot);
    }
    let removals: Vec<&str> = boots
        .iter()
        .flat_map(|boot| boot.log.lines())
        .filter(|line| line.contains("removing etcd member"))
        .collect();
    assert_eq!(removals.len(), 1, "{removals:?}");
    assert!(removals[0].contains(&dead_peer), "{removals:?}");

    let mut windows: Vec<(u64, u64)> = replacements
        .iter()
        .filter_map(NodeSandbox::control_plane_join_window)
        .collect();
    windows.sort();
    assert_eq!(windows.len(), 2);
    assert!(
        windows[0].1 <= windows[1].0,
        "the joins overlapped: {windows:?}"
    );

    let mut expected: Vec<String> = [&nodes[0], &nodes[1], &replacements[0], &replacements[1]]
        .iter()
        .map(|node| format!("https://{}:2380", node.private_ip))
        .collect();
    expected.sort();
    assert_eq!(member_peers(&cloud, &nodes[0]), expected);
    // The live members kept their data throughout.
    assert_keys(&cloud, &replacements[1], 10);
}

#[test]
fn a_stopped_and_started_control_plane_node_comes_back_as_itself() {
    let cloud = start_cloud();
    let config = control_plane(&cloud);
    let node = cloud.node("i-0500000000000000f", &config, Image::Ubuntu);
    assert_booted(&node, &node.boot());
    put_keys(&cloud, &node, 5);
    let before = member_peers(&cloud, &node);

    // A stop: the instance stays in service; the shutdown keeps the member.
    node.set_lifecycle_state(Some("InService"));
    let stop = node.run(&["leave"]);
    assert!(stop.success, "{}", stop.everything());
    assert!(
        stop.log.contains("keeps its etcd membership"),
        "{}",
        stop.log
    );
    assert!(backups(&cloud).is_empty(), "a stop writes no final backup");
    node.power_off();
    assert!(!node.etcd_running());

    node.power_on();
    let commands = node.commands().len();
    let boot = node.boot();
    assert!(boot.success, "{}", boot.everything());
    assert_eq!(
        node.commands()[commands..],
        ["systemctl start kubelet".to_string()]
    );
    assert!(node.commands_starting("kubeadm reset").is_empty());
    assert_eq!(node.commands_starting("kubeadm init").len(), 1);
    assert!(node.etcd_running());
    assert_eq!(member_peers(&cloud, &node), before);
    assert_keys(&cloud, &node, 5);
}

#[test]
fn a_bootstrap_whose_packages_never_install_marks_its_instance_unhealthy() {
    let cloud = start_cloud();
    cloud.mark_api_server_ready();
    let config = cloud.bootstrap(InstanceGroupRole::Node, OsFamily::Debian, Cni::Cilium);
    let worker = cloud.node("i-0600000000000000c", &config, Image::Ubuntu);
    worker.fail_command("apt-get");
    let boot = worker.boot();
    assert!(!boot.success, "{}", boot.everything());
    assert_eq!(
        boot.log
            .matches("installing packages failed (attempt")
            .count(),
        7,
        "{}",
        boot.log
    );
    assert!(boot.log.contains("failed 8 times"), "{}", boot.log);
    assert_eq!(
        cloud.instance_health(&worker.instance_id).as_deref(),
        Some("Unhealthy")
    );
    assert!(worker.commands_starting("kubeadm").is_empty());
}

#[test]
fn a_bootstrap_stopped_by_an_unexpected_error_is_reported_too() {
    let cloud = start_cloud();
    let config = control_plane(&cloud);
    let node = cloud.node("i-0600000000000000d", &config, Image::Ubuntu);
    // Not a failure the script foresees: a file where containerd's
    // configuration folder goes makes `install -d` fail under `set -e`.
    node.write("/etc/containerd", "in the way\n");
    let boot = node.boot();
    assert!(!boot.success, "{}", boot.everything());
    assert!(
        !boot.log.contains("FAILED:"),
        "not through fail: {}",
        boot.log
    );
    assert_eq!(
        cloud.instance_health(&node.instance_id).as_deref(),
        Some("Unhealthy"),
        "{}",
        boot.log
    );
    let status = cloud.moto.get_object(
        BUCKET,
        &format!("{CLUSTER_PREFIX}/etcd/status/{}", node.instance_id),
    );
    let status: serde_json::Value = serde_json::from_str(&status).expect("a status object");
    assert_eq!(status["phase"], "failed", "{status}");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|message| message.contains("bootstrap stopped (exit status")),
        "{status}"
    );
}

#[test]
fn backups_are_written_by_the_lease_holder_and_pruned_to_keep() {
    let cloud = start_cloud();
    let mut config = NodeBootstrap {
        etcd_backups: EtcdBackups {
            interval_seconds: 900,
            keep: 2,
        },
        ..control_plane(&cloud)
    };
    // A store whose default encryption is SSE-KMS: backups name its key.
    let kms_key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    config.state_store.kms_key = Some(kms_key.to_string());
    let node = cloud.node("i-0700000000000000d", &config, Image::Ubuntu);
    assert_booted(&node, &node.boot());
    put_keys(&cloud, &node, 3);

    // Another live node holds the backup lease: this one writes nothing.
    let lease = tempfile::NamedTempFile::new().expect("lease file");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    std::fs::write(
        lease.path(),
        format!("holder=i-0ffffffffffffffff\nexpires={}\n", now + 600),
    )
    .expect("lease");
    let lease_key = format!("{CLUSTER_PREFIX}/etcd/leases/backup");
    cloud.moto.put_object(BUCKET, &lease_key, lease.path());
    let skipped = node.run(&["backup"]);
    assert!(skipped.success, "{}", skipped.everything());
    assert!(
        skipped
            .log
            .contains("i-0ffffffffffffffff writes the backups"),
        "{}",
        skipped.log
    );
    assert!(backups(&cloud).is_empty());

    // Its lease expired: this node takes it over and writes, three times;
    // two backups are kept.
    std::fs::write(
        lease.path(),
        format!("holder=i-0ffffffffffffffff\nexpires={}\n", now - 1),
    )
    .expect("lease");
    cloud.moto.put_object(BUCKET, &lease_key, lease.path());
    for _ in 0..3 {
        let run = node.run(&["backup"]);
        assert!(run.success, "{}", run.everything());
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert!(cloud
        .moto
        .get_object(BUCKET, &lease_key)
        .contains(&format!("holder={}", node.instance_id)));
    let kept = backups(&cloud);
    assert_eq!(kept.len(), 2, "{kept:?}");
    for key in &kept {
        let id = key
            .rsplit('/')
            .next()
            .and_then(|name| name.strip_suffix(".db"))
            .expect("a backup file name");
        let (time, rest) = id.split_once("-rev").expect("time-rev");
        assert_eq!(time.len(), 16, "{id}");
        let (revision, instance) = rest.split_once('-').expect("rev-instance");
        assert!(revision.parse::<u64>().expect("a revision") > 3, "{id}");
        assert_eq!(instance, node.instance_id);
        let headers = cloud.moto.object_headers(BUCKET, key);
        assert!(
            headers.contains("x-amz-server-side-encryption: aws:kms"),
            "{key}: {headers}"
        );
        assert!(
            headers.contains(&format!(
                "x-amz-server-side-encryption-aws-kms-key-id: {kms_key}"
            )),
            "{key}: {headers}"
        );
    }
}

/// A PEM certificate that expires in `days` days.
fn certificate_expiring_in(days: u32) -> String {
    let directory = tempfile::TempDir::new().expect("temporary directory");
    let output = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(directory.path().join("key.pem"))
        .args(["-subj", "/CN=kube-apiserver", "-days", &days.to_string()])
        .output()
        .expect("openssl runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("PEM")
}

#[test]
fn certificates_near_expiry_are_renewed_under_the_lease_and_the_components_restarted() {
    let cloud = start_cloud();
    let config = control_plane(&cloud);
    let node = cloud.node("i-0800000000000000e", &config, Image::Ubuntu);
    assert_booted(&node, &node.boot());
    let lease_key = format!("{CLUSTER_PREFIX}/etcd/leases/certificates");
    // The bootstrap reports every certificate kubeadm lists, CAs included.
    let booted = certificate_report(&cloud, &node);
    for name in [
        "admin.conf",
        "apiserver",
        "controller-manager.conf",
        "scheduler.conf",
        "etcd-peer",
        "etcd-server",
    ] {
        let days = booted
            .get(name)
            .unwrap_or_else(|| panic!("{name} in the report: {booted:?}"));
        assert!(*days >= 360, "{name} expires in {days} days: {booted:?}");
    }
    // The authorities too (the sandbox's made-up ones last a day).
    for name in ["ca", "etcd-ca", "front-proxy-ca"] {
        assert!(
            booted.contains_key(name),
            "{name} in the report: {booted:?}"
        );
    }

    // Valid for a year: nothing to do.
    node.write(
        "/etc/kubernetes/pki/apiserver.crt",
        &certificate_expiring_in(365),
    );
    let quiet = node.run(&["renew-certificates"]);
    assert!(quiet.success, "{}", quiet.everything());
    assert!(
        quiet.log.contains("no certificate expires within 30 days"),
        "{}",
        quiet.log
    );
    assert!(node.commands_starting("kubeadm certs renew").is_empty());
    assert_eq!(
        certificate_report(&cloud, &node)["apiserver"],
        364,
        "the daily check reports the file's expiry"
    );

    // Ten days left: renewed, etcd's static pod restarted, the lease released.
    node.write(
        "/etc/kubernetes/pki/apiserver.crt",
        &certificate_expiring_in(10),
    );
    let renewed = node.run(&["renew-certificates"]);
    assert!(renewed.success, "{}", renewed.everything());
    assert!(
        renewed
            .log
            .contains("expiring within 30 days: apiserver.crt"),
        "{}",
        renewed.log
    );
    assert_eq!(
        node.commands_starting("kubeadm certs renew"),
        vec!["kubeadm certs renew all".to_string()]
    );
    assert!(renewed.log.contains("restarted etcd"), "{}", renewed.log);
    assert!(
        node.exists("/etc/kubernetes/manifests/etcd.yaml"),
        "the manifest is back"
    );
    assert!(
        !cloud
            .moto
            .list_keys(BUCKET, &lease_key)
            .contains(&lease_key),
        "the certificates lease is released"
    );
    let after = certificate_report(&cloud, &node);
    assert!(
        after["apiserver"] >= 364,
        "the report after the renewal shows the renewed certificate: {after:?}"
    );
}

/// The node's certificate report in the store: each certificate's days
/// left, by kubeadm's name for it.
fn certificate_report(
    cloud: &FakeCloud,
    node: &NodeSandbox,
) -> std::collections::BTreeMap<String, i64> {
    let key = format!("{CLUSTER_PREFIX}/etcd/certificates/{}", node.instance_id);
    let text = cloud.moto.get_object(BUCKET, &key);
    let report: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{key}: {error}\n{text}"));
    assert_eq!(report["instance"], node.instance_id.as_str(), "{text}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    report["certificates"]
        .as_array()
        .unwrap_or_else(|| panic!("a list of certificates: {text}"))
        .iter()
        .map(|entry| {
            let name = entry["name"].as_str().expect("a name").to_string();
            let not_after = entry["notAfter"].as_str().expect("a notAfter");
            let output = std::process::Command::new("date")
                .args(["-u", "-d", not_after, "+%s"])
                .output()
                .expect("date runs");
            let seconds: i64 = String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}: {not_after} is a time"));
            (name, (seconds - now) / 86400)
        })
        .collect()
}

#[test]
fn a_node_that_cannot_reach_members_whose_instances_still_run_does_not_restore() {
    let cloud = start_cloud();
    let config = control_plane(&cloud);
    let first = cloud.node("i-0900000000000000a", &config, Image::Ubuntu);
    assert_booted(&first, &first.boot());
    put_keys(&cloud, &first, 3);
    let backup = first.run(&["backup"]);
    assert!(backup.success, "{}", backup.everything());

    // A partition (or a hung node): its etcd does not answer, its instance
    // still runs. A second etcd with the same identity must not start.
    first.power_off();
    let second = cloud.node("i-0900000000000000b", &config, Image::Ubuntu);
    let boot = second.boot();
    assert!(!boot.success, "{}", boot.everything());
    assert!(
        boot.log
            .contains("not restoring a second etcd next to them"),
        "{}",
        boot.log
    );
    assert!(!boot.log.contains("snapshot restore"), "{}", boot.log);
    assert!(second.commands_starting("kubeadm init").is_empty());
    assert_eq!(
        cloud.instance_health(&second.instance_id).as_deref(),
        Some("Unhealthy")
    );

    // The first instance is gone for good: the next replacement restores.
    cloud.terminate_instance(&first.instance_id);
    cloud.terminate_instance(&second.instance_id);
    let third = cloud.node("i-0900000000000000c", &config, Image::Ubuntu);
    let boot = third.boot();
    assert_booted(&third, &boot);
    assert!(
        boot.log.contains("restoring the newest backup"),
        "{}",
        boot.log
    );
    assert_keys(&cloud, &third, 3);
}
