//! External etcd (`spec.etcd.topology: external`, §2.1.5 and §2.1.7 of the
//! setup guide) in the sandbox: the members' bootstrap forms a REAL etcd
//! cluster with certificates signed by the etcd CA of the state store; the
//! control plane waits for them, initializes with `etcd.external` listing
//! their endpoints, and runs no etcd of its own; a replaced member (the same
//! fixed address, an empty disk) leaves its old self and joins again.

use std::net::Ipv4Addr;
use std::process::Command;

use skiff_api::{Cni, InstanceGroupRole, OsFamily};
use skiff_templates::{EtcdMember, ExternalEtcd, NodeBootstrap};
use skiff_test_support::etcd::parse_member_list;
use skiff_test_support::sandbox::{FakeCloud, Image, NodeSandbox};

use super::assert_booted;
use crate::support::{start_cloud, Sandbox};

/// Three members at fixed addresses, as the plan gives each `Etcd` group.
fn members(cloud: &FakeCloud) -> ExternalEtcd {
    ExternalEtcd {
        members: (1..=3)
            .map(|ordinal| EtcdMember {
                name: format!("etcd-{ordinal}"),
                address: cloud.next_private_ip(),
            })
            .collect(),
    }
}

fn member_config(cloud: &FakeCloud, etcd: &ExternalEtcd, name: &str) -> NodeBootstrap {
    NodeBootstrap {
        instance_group: name.to_string(),
        external_etcd: Some(etcd.clone()),
        ..cloud.bootstrap(InstanceGroupRole::Etcd, OsFamily::Debian, Cni::Cilium)
    }
}

/// An instance of member `name`'s group, launched at its fixed address.
fn launch_member(cloud: &FakeCloud, etcd: &ExternalEtcd, name: &str, id: &str) -> NodeSandbox {
    let address = etcd.member(name).expect("a member").address;
    cloud.run_instance_with_id(id, name, "etcd", address);
    cloud.node(id, &member_config(cloud, etcd, name), Image::Ubuntu)
}

fn etcdctl(cloud: &FakeCloud, address: Ipv4Addr, arguments: &[&str]) -> String {
    let endpoint = format!("--endpoints=https://{address}:2379");
    let mut all = vec![endpoint.as_str()];
    all.extend_from_slice(arguments);
    let output = cloud.etcdctl(&all);
    assert!(
        output.status.success(),
        "etcdctl {arguments:?} at {address}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// (name, peer URL) of every member, all started voters.
fn voting_members(cloud: &FakeCloud, address: Ipv4Addr) -> Vec<(String, String)> {
    let mut members: Vec<(String, String)> = parse_member_list(&etcdctl(
        cloud,
        address,
        &["member", "list", "-w", "simple"],
    ))
    .into_iter()
    .map(|member| {
        assert_eq!(member.status, "started", "{member:?}");
        assert!(!member.is_learner, "{member:?}");
        (member.name, member.peer_url)
    })
    .collect();
    members.sort();
    members
}

fn expected_members(etcd: &ExternalEtcd) -> Vec<(String, String)> {
    etcd.members
        .iter()
        .map(|member| (member.name.clone(), member.peer_url()))
        .collect()
}

/// The member's server certificate verifies against the state store's etcd CA.
fn assert_signed_by_the_stored_etcd_ca(cloud: &FakeCloud, member: &NodeSandbox) {
    assert_eq!(
        member.read("/etc/kubernetes/pki/etcd/ca.crt"),
        cloud.pki_file("etcd-ca.crt"),
        "{}: the etcd CA is the state store's",
        member.instance_id
    );
    let directory = tempfile::tempdir().expect("directory");
    let ca = directory.path().join("ca.crt");
    std::fs::write(&ca, cloud.pki_file("etcd-ca.crt")).expect("ca");
    for certificate in ["server.crt", "peer.crt"] {
        let file = directory.path().join(certificate);
        std::fs::write(
            &file,
            member.read(&format!("/etc/kubernetes/pki/etcd/{certificate}")),
        )
        .expect("certificate");
        let verify = Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(&ca)
            .arg(&file)
            .output()
            .expect("openssl runs");
        assert!(
            verify.status.success(),
            "{} {certificate}: {}",
            member.instance_id,
            String::from_utf8_lossy(&verify.stderr)
        );
    }
}

#[test]
fn members_form_a_cluster_first_and_the_control_plane_uses_it_with_no_local_etcd() {
    let cloud = start_cloud();
    let etcd = members(&cloud);

    // The control plane is launched too, at the same moment: it waits for a
    // majority of the members before kubeadm init (the plan launches the
    // members first; the bootstrap does not rely on it).
    let control_plane_config = NodeBootstrap {
        external_etcd: Some(etcd.clone()),
        ..cloud.bootstrap(
            InstanceGroupRole::ControlPlane,
            OsFamily::Debian,
            Cni::Cilium,
        )
    };
    let control_plane = cloud.node("i-0c00000000000000a", &control_plane_config, Image::Ubuntu);
    let waiting = control_plane.spawn();

    let nodes: Vec<NodeSandbox> = [
        "i-0e10000000000000a",
        "i-0e20000000000000b",
        "i-0e30000000000000c",
    ]
    .iter()
    .zip(&etcd.members)
    .map(|(id, member)| launch_member(&cloud, &etcd, &member.name, id))
    .collect();
    let running: Vec<_> = nodes.iter().map(NodeSandbox::spawn).collect();
    for (node, boot) in nodes.iter().zip(running.into_iter().map(|run| run.wait())) {
        assert_booted(node, &boot);
        assert!(
            node.commands_starting("kubeadm init phase etcd local")
                .len()
                == 1,
            "{}",
            node.commands().join("\n")
        );
        assert!(node.commands_starting("kubeadm join").is_empty());
        assert!(
            node.exists("/etc/systemd/system/kubelet.service.d/20-etcd-service-manager.conf"),
            "the kubelet is etcd's service manager"
        );
        assert!(node.etcd_running(), "{}: its member runs", node.instance_id);
        assert_signed_by_the_stored_etcd_ca(&cloud, node);
    }
    for member in &etcd.members {
        assert_eq!(
            voting_members(&cloud, member.address),
            expected_members(&etcd)
        );
    }

    let boot = waiting.wait();
    assert_booted(&control_plane, &boot);
    assert!(
        boot.log.contains("external etcd: 3 of 3 members answer")
            || boot.log.contains("external etcd: 2 of 3 members answer"),
        "{}",
        boot.log
    );
    // kubeadm init got etcd.external with the members' endpoints and no
    // local etcd; no member runs on the control-plane node.
    let configs = control_plane.kubeadm_configs();
    let init = configs
        .iter()
        .find(|(name, _)| name.ends_with("-init.yaml"))
        .map(|(_, text)| text.clone())
        .unwrap_or_else(|| panic!("no kubeadm init config: {configs:?}"));
    assert!(!init.contains("  local:"), "{init}");
    let endpoints: Vec<String> = etcd.endpoints();
    let listed = format!(
        "  external:\n    endpoints:\n{}",
        endpoints
            .iter()
            .map(|endpoint| format!("      - \"{endpoint}\"\n"))
            .collect::<String>()
    );
    assert!(init.contains(&listed), "{init}");
    assert!(
        !control_plane.etcd_running(),
        "no etcd on the control plane"
    );
    assert!(!control_plane.exists("/etc/kubernetes/manifests/etcd.yaml"));
    let static_pods = cloud.cluster_record("static-pods.log");
    let control_plane_name = format!(
        "ip-{}",
        control_plane.private_ip.to_string().replace('.', "-")
    );
    assert!(
        static_pods
            .iter()
            .any(|line| line.starts_with(&format!("{control_plane_name} kube-apiserver"))),
        "{static_pods:?}"
    );
    assert!(
        !static_pods
            .iter()
            .any(|line| line.starts_with(&format!("{control_plane_name} etcd"))),
        "{static_pods:?}"
    );
    // The API server's client certificate is the etcd CA's, and the
    // cluster's state (kubeadm's ClusterConfiguration) is in the members.
    assert_signed_client(&cloud, &control_plane);
    let stored = etcdctl(
        &cloud,
        etcd.members[1].address,
        &[
            "get",
            "--print-value-only",
            "/registry/configmaps/kube-system/kubeadm-config",
        ],
    );
    assert!(stored.contains(&listed), "{stored}");
}

fn assert_signed_client(cloud: &FakeCloud, control_plane: &NodeSandbox) {
    let directory = tempfile::tempdir().expect("directory");
    let ca = directory.path().join("ca.crt");
    std::fs::write(&ca, cloud.pki_file("etcd-ca.crt")).expect("ca");
    let file = directory.path().join("client.crt");
    std::fs::write(
        &file,
        control_plane.read("/etc/kubernetes/pki/apiserver-etcd-client.crt"),
    )
    .expect("certificate");
    let verify = Command::new("openssl")
        .args(["verify", "-purpose", "sslclient", "-CAfile"])
        .arg(&ca)
        .arg(&file)
        .output()
        .expect("openssl runs");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn a_replaced_member_leaves_its_old_self_and_joins_at_the_same_address_with_the_data() {
    let cloud = start_cloud();
    let etcd = members(&cloud);
    let nodes: Vec<NodeSandbox> = [
        "i-0f10000000000000a",
        "i-0f20000000000000b",
        "i-0f30000000000000c",
    ]
    .iter()
    .zip(&etcd.members)
    .map(|(id, member)| launch_member(&cloud, &etcd, &member.name, id))
    .collect();
    let running: Vec<_> = nodes.iter().map(NodeSandbox::spawn).collect();
    for (node, boot) in nodes.iter().zip(running.into_iter().map(|run| run.wait())) {
        assert_booted(node, &boot);
    }
    let first = etcd.members[0].address;
    for index in 0..10 {
        etcdctl(
            &cloud,
            first,
            &["put", &format!("/registry/skiff-test/{index}"), "kept"],
        );
    }
    let old_id = parse_member_list(&etcdctl(&cloud, first, &["member", "list", "-w", "simple"]))
        .into_iter()
        .find(|member| member.name == "etcd-2")
        .expect("etcd-2")
        .id;

    // The roll replaces etcd-2's instance: the old one goes with its disk,
    // the new one launches from the same template, at the same address.
    nodes[1].power_off();
    cloud.terminate_instance(&nodes[1].instance_id);
    let replacement = launch_member(&cloud, &etcd, "etcd-2", "i-0f40000000000000d");
    assert_eq!(replacement.private_ip, etcd.members[1].address);
    let boot = replacement.boot();
    assert_booted(&replacement, &boot);
    assert!(
        boot.log
            .contains(&format!("removing etcd member {old_id} (etcd-2")),
        "{}",
        boot.log
    );
    assert!(boot.log.contains("is a voting member"), "{}", boot.log);
    // What a rolling update of the group waits for before the next member.
    assert!(
        boot.log
            .contains("tagged i-0f40000000000000d as a voting etcd member"),
        "{}",
        boot.log
    );

    for member in &etcd.members {
        assert_eq!(
            voting_members(&cloud, member.address),
            expected_members(&etcd)
        );
    }
    let new_id = parse_member_list(&etcdctl(&cloud, first, &["member", "list", "-w", "simple"]))
        .into_iter()
        .find(|member| member.name == "etcd-2")
        .expect("etcd-2")
        .id;
    assert_ne!(new_id, old_id, "a new member, not the old one's identity");
    // The replacement serves the data it never saw written.
    for index in 0..10 {
        let value = etcdctl(
            &cloud,
            etcd.members[1].address,
            &[
                "get",
                "--print-value-only",
                "--consistency=s",
                &format!("/registry/skiff-test/{index}"),
            ],
        );
        assert_eq!(value.trim(), "kept", "key {index}");
    }
    assert_signed_by_the_stored_etcd_ca(&cloud, &replacement);
}

#[test]
fn a_replacement_that_finds_no_quorum_never_forms_a_new_cluster_beside_the_old_members() {
    let cloud = start_cloud();
    let etcd = members(&cloud);
    let nodes: Vec<NodeSandbox> = [
        "i-0d10000000000000a",
        "i-0d20000000000000b",
        "i-0d30000000000000c",
    ]
    .iter()
    .zip(&etcd.members)
    .map(|(id, member)| launch_member(&cloud, &etcd, &member.name, id))
    .collect();
    let running: Vec<_> = nodes.iter().map(NodeSandbox::spawn).collect();
    for (node, boot) in nodes.iter().zip(running.into_iter().map(|run| run.wait())) {
        assert_booted(node, &boot);
    }
    // Quorum is lost: two members hang (their instances still run), and the
    // third's instance is replaced.
    nodes[1].power_off();
    nodes[2].power_off();
    nodes[0].power_off();
    cloud.terminate_instance(&nodes[0].instance_id);
    let replacement = launch_member(&cloud, &etcd, "etcd-1", "i-0d40000000000000d");
    let boot = replacement.boot();
    assert!(!boot.success, "{}", boot.everything());
    assert!(
        boot.log
            .contains("not forming a new etcd cluster beside them"),
        "{}",
        boot.log
    );
    assert!(
        replacement
            .commands_starting("kubeadm init phase etcd local")
            .is_empty(),
        "{}",
        replacement.commands().join("\n")
    );
    assert!(!replacement.etcd_running());
}

/// Three members formed from the same launch, each at its fixed address.
fn formed(cloud: &FakeCloud, etcd: &ExternalEtcd, ids: [&str; 3]) -> Vec<NodeSandbox> {
    let nodes: Vec<NodeSandbox> = ids
        .iter()
        .zip(&etcd.members)
        .map(|(id, member)| launch_member(cloud, etcd, &member.name, id))
        .collect();
    let running: Vec<_> = nodes.iter().map(NodeSandbox::spawn).collect();
    for (node, boot) in nodes.iter().zip(running.into_iter().map(|run| run.wait())) {
        assert_booted(node, &boot);
    }
    nodes
}

fn backup_keys(cloud: &FakeCloud) -> Vec<String> {
    cloud.moto.list_keys(
        skiff_test_support::sandbox::BUCKET,
        &format!(
            "{}/etcd/backups/",
            skiff_test_support::sandbox::CLUSTER_PREFIX
        ),
    )
}

fn put(cloud: &FakeCloud, address: Ipv4Addr, key: &str, value: &str) {
    etcdctl(cloud, address, &["put", key, value]);
}

fn get(cloud: &FakeCloud, address: Ipv4Addr, key: &str) -> String {
    etcdctl(
        cloud,
        address,
        &["get", "--print-value-only", "--consistency=s", key],
    )
    .trim()
    .to_string()
}

#[test]
fn members_back_up_one_at_a_time_and_a_restore_brings_every_member_back_from_one_snapshot() {
    use skiff_test_support::sandbox::{BUCKET, CLUSTER_PREFIX};
    let cloud = start_cloud();
    let etcd = members(&cloud);
    let nodes = formed(
        &cloud,
        &etcd,
        [
            "i-0b10000000000000a",
            "i-0b20000000000000b",
            "i-0b30000000000000c",
        ],
    );
    // The members' timers: a backup per spec.etcd.backups, the daily check.
    for node in &nodes {
        assert!(
            node.exists("/etc/systemd/system/skiff-etcd-backup.timer"),
            "{}",
            node.instance_id
        );
        assert!(node.commands().iter().any(|command| command.starts_with(
            "systemctl enable --now skiff-etcd-backup.timer skiff-renew-certificates.timer"
        )));
    }
    // Each member reported its health for skiff rolling-update.
    for (node, member) in nodes.iter().zip(&etcd.members) {
        let report: serde_json::Value = serde_json::from_str(&cloud.moto.get_object(
            BUCKET,
            &format!("{CLUSTER_PREFIX}/etcd/health/{}", member.name),
        ))
        .expect("a JSON health report");
        assert_eq!(report["member"], member.name.as_str(), "{report}");
        assert_eq!(report["instance"], node.instance_id.as_str(), "{report}");
        assert_eq!(report["votingMembers"], 3, "{report}");
    }
    // A minute later, with one member down: the others report it.
    nodes[2].power_off();
    let reported = nodes[0].run(&["report-health"]);
    assert!(reported.success, "{}", reported.everything());
    let report: serde_json::Value = serde_json::from_str(
        &cloud
            .moto
            .get_object(BUCKET, &format!("{CLUSTER_PREFIX}/etcd/health/etcd-1")),
    )
    .expect("a JSON health report");
    assert_eq!(
        report["healthy"], true,
        "two of three keep the quorum: {report}"
    );
    let boot = nodes[2].boot();
    assert!(boot.success, "{}", boot.everything());
    let first = etcd.members[0].address;
    for index in 0..10 {
        put(
            &cloud,
            first,
            &format!("/registry/skiff-test/{index}"),
            "kept",
        );
    }

    // The second member's timer fires first: it takes the backup lease and
    // writes; the first member's timer then finds the lease held.
    let written = nodes[1].run(&["backup"]);
    assert!(written.success, "{}", written.everything());
    let skipped = nodes[0].run(&["backup"]);
    assert!(skipped.success, "{}", skipped.everything());
    assert!(
        skipped
            .log
            .contains(&format!("{} writes the backups", nodes[1].instance_id)),
        "{}",
        skipped.log
    );
    let backups = backup_keys(&cloud);
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert!(
        backups[0].ends_with(&format!("-{}.db", nodes[1].instance_id)),
        "{backups:?}"
    );
    let id = backups[0]
        .rsplit('/')
        .next()
        .and_then(|name| name.strip_suffix(".db"))
        .expect("a backup name")
        .to_string();
    // Written after the backup: a restore loses it.
    put(&cloud, first, "/registry/skiff-test/after", "lost");

    // skiff restore cluster: the request names the backup, and every
    // member's instance is terminated.
    let request = tempfile::NamedTempFile::new().expect("request file");
    std::fs::write(request.path(), format!("{id}\n")).expect("request");
    let request_key = format!("{CLUSTER_PREFIX}/etcd/restore-request");
    cloud.moto.put_object(BUCKET, &request_key, request.path());
    for node in &nodes {
        node.power_off();
        cloud.terminate_instance(&node.instance_id);
    }

    // Two replacements come up together and restore; the third comes later
    // and joins the restored cluster (not a cluster of its own).
    let early: Vec<NodeSandbox> = [
        ("etcd-1", "i-0b40000000000000d"),
        ("etcd-2", "i-0b50000000000000e"),
    ]
    .iter()
    .map(|(name, id)| launch_member(&cloud, &etcd, name, id))
    .collect();
    let running: Vec<_> = early.iter().map(NodeSandbox::spawn).collect();
    for (node, boot) in early.iter().zip(running.into_iter().map(|run| run.wait())) {
        assert_booted(node, &boot);
        assert!(
            boot.log
                .contains(&format!("restore requested: backup {id}")),
            "{}",
            boot.log
        );
        assert!(boot.log.contains("restored etcd member"), "{}", boot.log);
        let restores = node.commands_starting("etcdutl snapshot restore");
        assert_eq!(restores.len(), 1, "{restores:?}");
        assert!(
            restores[0].contains(&format!("--initial-cluster-token skiff-restore-{id}"))
                && restores[0].contains(&format!("--initial-cluster {}", etcd.initial_cluster())),
            "{restores:?}"
        );
    }
    assert!(
        cloud
            .moto
            .list_keys(BUCKET, &request_key)
            .contains(&request_key),
        "the request stays while a member is missing"
    );
    let late = launch_member(&cloud, &etcd, "etcd-3", "i-0b60000000000000f");
    let boot = late.boot();
    assert_booted(&late, &boot);
    assert!(
        boot.log.contains("joining the running cluster"),
        "{}",
        boot.log
    );
    assert!(
        late.commands_starting("etcdutl snapshot restore")
            .is_empty(),
        "{}",
        boot.log
    );
    assert!(
        boot.log.contains("cleared"),
        "the last member clears the request: {}",
        boot.log
    );
    assert!(!cloud
        .moto
        .list_keys(BUCKET, &request_key)
        .contains(&request_key));

    for member in &etcd.members {
        assert_eq!(
            voting_members(&cloud, member.address),
            expected_members(&etcd)
        );
        for index in 0..10 {
            assert_eq!(
                get(
                    &cloud,
                    member.address,
                    &format!("/registry/skiff-test/{index}")
                ),
                "kept"
            );
        }
        assert_eq!(
            get(&cloud, member.address, "/registry/skiff-test/after"),
            "",
            "written after the backup"
        );
    }
}

#[test]
fn members_that_all_lost_their_disks_restore_the_newest_backup_and_never_form_an_empty_cluster() {
    use skiff_test_support::sandbox::{BUCKET, CLUSTER_PREFIX};
    let cloud = start_cloud();
    let etcd = members(&cloud);
    let nodes = formed(
        &cloud,
        &etcd,
        [
            "i-0c10000000000000a",
            "i-0c20000000000000b",
            "i-0c30000000000000c",
        ],
    );
    let first = etcd.members[0].address;
    put(&cloud, first, "/registry/skiff-test/kept", "kept");
    let written = nodes[2].run(&["backup"]);
    assert!(written.success, "{}", written.everything());
    // The control plane was initialized on this etcd.
    let lock = tempfile::NamedTempFile::new().expect("lock file");
    std::fs::write(lock.path(), "i-0c00000000000000a\n").expect("lock");
    cloud.moto.put_object(
        BUCKET,
        &format!("{CLUSTER_PREFIX}/etcd/init-lock"),
        lock.path(),
    );
    // Every member is lost at once (no restore request).
    for node in &nodes {
        node.power_off();
        cloud.terminate_instance(&node.instance_id);
    }
    let replacements: Vec<NodeSandbox> = [
        "i-0c40000000000000d",
        "i-0c50000000000000e",
        "i-0c60000000000000f",
    ]
    .iter()
    .zip(&etcd.members)
    .map(|(id, member)| launch_member(&cloud, &etcd, &member.name, id))
    .collect();
    let running: Vec<_> = replacements.iter().map(NodeSandbox::spawn).collect();
    let boots: Vec<_> = running.into_iter().map(|run| run.wait()).collect();
    for (node, boot) in replacements.iter().zip(&boots) {
        assert_booted(node, boot);
    }
    let restored = boots
        .iter()
        .filter(|boot| boot.log.contains("restoring the newest backup"))
        .count();
    assert!(restored >= 2, "a majority restored");
    assert!(boots
        .iter()
        .all(|boot| !boot.log.contains("forming c1.example.com's etcd cluster")));
    for member in &etcd.members {
        assert_eq!(
            voting_members(&cloud, member.address),
            expected_members(&etcd)
        );
        assert_eq!(
            get(&cloud, member.address, "/registry/skiff-test/kept"),
            "kept"
        );
    }
}

/// Re-signs a member's certificate with the etcd CA, keeping its names, to
/// expire in `days` days.
fn expire_in(cloud: &FakeCloud, node: &NodeSandbox, certificate: &str, days: u32) {
    let directory = tempfile::tempdir().expect("directory");
    let path = |name: &str| directory.path().join(name);
    std::fs::write(path("ca.crt"), cloud.pki_file("etcd-ca.crt")).expect("ca");
    std::fs::write(path("ca.key"), cloud.pki_file("etcd-ca.key")).expect("ca key");
    let pem = format!("/etc/kubernetes/pki/etcd/{certificate}.crt");
    std::fs::write(path("old.crt"), node.read(&pem)).expect("old");
    std::fs::write(
        path("old.key"),
        node.read(&format!("/etc/kubernetes/pki/etcd/{certificate}.key")),
    )
    .expect("key");
    for arguments in [
        vec![
            "x509",
            "-x509toreq",
            "-copy_extensions",
            "copyall",
            "-in",
            "old.crt",
            "-signkey",
            "old.key",
            "-out",
            "old.csr",
        ],
        vec![
            "x509",
            "-req",
            "-copy_extensions",
            "copyall",
            "-in",
            "old.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-days",
            &days.to_string(),
            "-out",
            "new.crt",
        ],
    ] {
        let output = Command::new("openssl")
            .args(&arguments)
            .current_dir(directory.path())
            .output()
            .expect("openssl runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    node.write(
        &pem,
        &std::fs::read_to_string(path("new.crt")).expect("new"),
    );
}

fn days_left(node: &NodeSandbox, certificate: &str) -> i64 {
    let directory = tempfile::tempdir().expect("directory");
    let file = directory.path().join("c.crt");
    std::fs::write(
        &file,
        node.read(&format!("/etc/kubernetes/pki/etcd/{certificate}.crt")),
    )
    .expect("certificate");
    let output = Command::new("openssl")
        .args(["x509", "-enddate", "-noout", "-in"])
        .arg(&file)
        .output()
        .expect("openssl runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let when = text.trim().trim_start_matches("notAfter=");
    let seconds = Command::new("date")
        .args(["-u", "-d", when, "+%s"])
        .output()
        .expect("date runs");
    let seconds: i64 = String::from_utf8_lossy(&seconds.stdout)
        .trim()
        .parse()
        .expect("seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    (seconds - now) / 86400
}

#[test]
fn a_member_renews_its_certificates_only_while_the_others_are_healthy() {
    use skiff_test_support::sandbox::{BUCKET, CLUSTER_PREFIX};
    let cloud = start_cloud();
    let etcd = members(&cloud);
    let nodes = formed(
        &cloud,
        &etcd,
        [
            "i-0a10000000000000a",
            "i-0a20000000000000b",
            "i-0a30000000000000c",
        ],
    );
    let quiet = nodes[0].run(&["renew-certificates"]);
    assert!(quiet.success, "{}", quiet.everything());
    assert!(
        quiet.log.contains("no certificate expires within 30 days"),
        "{}",
        quiet.log
    );
    assert!(nodes[0].commands_starting("kubeadm certs renew").is_empty());

    // Ten days left on the server certificate, but another member is down:
    // restarting this one could cost the quorum. Nothing is renewed.
    expire_in(&cloud, &nodes[0], "server", 10);
    nodes[2].power_off();
    let refused = nodes[0].run(&["renew-certificates"]);
    assert!(!refused.success, "{}", refused.everything());
    assert!(
        refused.log.contains(&format!(
            "etcd members that do not answer healthy: https://{}:2379",
            etcd.members[2].address
        )),
        "{}",
        refused.log
    );
    assert!(
        refused.log.contains("not restarting etcd member etcd-1"),
        "{}",
        refused.log
    );
    assert!(nodes[0].commands_starting("kubeadm certs renew").is_empty());
    assert!(days_left(&nodes[0], "server") <= 10);

    // The member is back: the renewal goes ahead under the members' lease.
    let boot = nodes[2].boot();
    assert!(boot.success, "{}", boot.everything());
    assert!(nodes[2].etcd_running());
    let renewed = nodes[0].run(&["renew-certificates"]);
    assert!(renewed.success, "{}", renewed.everything());
    assert!(
        renewed.log.contains("expiring within 30 days: etcd-server"),
        "{}",
        renewed.log
    );
    let commands = nodes[0].commands_starting("kubeadm certs renew");
    assert_eq!(commands.len(), 3, "{commands:?}");
    for (command, name) in
        commands
            .iter()
            .zip(["etcd-server", "etcd-peer", "etcd-healthcheck-client"])
    {
        assert!(
            command.starts_with(&format!("kubeadm certs renew {name} --config ")),
            "{command}"
        );
    }
    for certificate in ["server", "peer", "healthcheck-client"] {
        assert!(days_left(&nodes[0], certificate) >= 364, "{certificate}");
    }
    assert_signed_by_the_stored_etcd_ca(&cloud, &nodes[0]);
    assert!(nodes[0].exists("/etc/kubernetes/manifests/etcd.yaml"));
    assert!(renewed.log.contains("it answers again"), "{}", renewed.log);
    let lease = format!("{CLUSTER_PREFIX}/etcd/leases/member-certificates");
    assert!(!cloud.moto.list_keys(BUCKET, &lease).contains(&lease));
    assert_eq!(
        voting_members(&cloud, etcd.members[1].address),
        expected_members(&etcd)
    );
}

#[test]
fn a_control_plane_of_an_external_etcd_renews_its_apiserver_etcd_client_certificate() {
    let cloud = start_cloud();
    let etcd = members(&cloud);
    let _members = formed(
        &cloud,
        &etcd,
        [
            "i-0e50000000000000a",
            "i-0e60000000000000b",
            "i-0e70000000000000c",
        ],
    );
    let config = NodeBootstrap {
        external_etcd: Some(etcd.clone()),
        ..cloud.bootstrap(
            InstanceGroupRole::ControlPlane,
            OsFamily::Debian,
            Cni::Cilium,
        )
    };
    let control_plane = cloud.node("i-0c50000000000000a", &config, Image::Ubuntu);
    assert_booted(&control_plane, &control_plane.boot());

    // Ten days left on the API server's etcd client certificate (re-signed
    // by the etcd CA with its own names): the daily check renews it.
    let directory = tempfile::tempdir().expect("directory");
    let path = |name: &str| directory.path().join(name);
    std::fs::write(path("ca.crt"), cloud.pki_file("etcd-ca.crt")).expect("ca");
    std::fs::write(path("ca.key"), cloud.pki_file("etcd-ca.key")).expect("ca key");
    std::fs::write(
        path("old.crt"),
        control_plane.read("/etc/kubernetes/pki/apiserver-etcd-client.crt"),
    )
    .expect("old");
    std::fs::write(
        path("old.key"),
        control_plane.read("/etc/kubernetes/pki/apiserver-etcd-client.key"),
    )
    .expect("key");
    for arguments in [
        vec![
            "x509",
            "-x509toreq",
            "-copy_extensions",
            "copyall",
            "-in",
            "old.crt",
            "-signkey",
            "old.key",
            "-out",
            "old.csr",
        ],
        vec![
            "x509",
            "-req",
            "-copy_extensions",
            "copyall",
            "-in",
            "old.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-days",
            "10",
            "-out",
            "new.crt",
        ],
    ] {
        let output = Command::new("openssl")
            .args(&arguments)
            .current_dir(directory.path())
            .output()
            .expect("openssl runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let expiring = std::fs::read_to_string(path("new.crt")).expect("new");
    control_plane.write("/etc/kubernetes/pki/apiserver-etcd-client.crt", &expiring);

    let renewed = control_plane.run(&["renew-certificates"]);
    assert!(renewed.success, "{}", renewed.everything());
    assert!(
        renewed
            .log
            .contains("expiring within 30 days: apiserver-etcd-client.crt"),
        "{}",
        renewed.log
    );
    // kubeadm renews no etcd certificate with etcd.external: skiff does.
    assert!(
        renewed
            .log
            .contains("renewed apiserver-etcd-client with the etcd CA"),
        "{}",
        renewed.log
    );
    assert!(
        renewed.log.contains("restarted kube-apiserver"),
        "{}",
        renewed.log
    );
    let certificate = control_plane.read("/etc/kubernetes/pki/apiserver-etcd-client.crt");
    assert_ne!(certificate, expiring);
    assert_signed_client(&cloud, &control_plane);
    let file = directory.path().join("renewed.crt");
    std::fs::write(&file, &certificate).expect("renewed");
    let check = Command::new("openssl")
        .args([
            "x509",
            "-checkend",
            &(360 * 86400).to_string(),
            "-noout",
            "-in",
        ])
        .arg(&file)
        .output()
        .expect("openssl runs");
    assert!(check.status.success(), "valid for about a year again");
    // The members accept it.
    let key = directory.path().join("renewed.key");
    std::fs::write(
        &key,
        control_plane.read("/etc/kubernetes/pki/apiserver-etcd-client.key"),
    )
    .expect("key");
    let cert_argument = format!("--cert={}", file.display());
    let key_argument = format!("--key={}", key.display());
    let endpoint = format!("--endpoints=https://{}:2379", etcd.members[0].address);
    let output = cloud.etcdctl(&[
        &endpoint,
        &cert_argument,
        &key_argument,
        "endpoint",
        "health",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_requested_restore_is_fenced_while_members_of_the_old_cluster_still_run() {
    use skiff_test_support::sandbox::{BUCKET, CLUSTER_PREFIX};
    let cloud = start_cloud();
    let etcd = members(&cloud);
    let nodes = formed(
        &cloud,
        &etcd,
        [
            "i-0f50000000000000a",
            "i-0f60000000000000b",
            "i-0f70000000000000c",
        ],
    );
    let written = nodes[0].run(&["backup"]);
    assert!(written.success, "{}", written.everything());
    let backups = backup_keys(&cloud);
    let id = backups[0]
        .rsplit('/')
        .next()
        .and_then(|name| name.strip_suffix(".db"))
        .expect("a backup name")
        .to_string();
    let request = tempfile::NamedTempFile::new().expect("request file");
    std::fs::write(request.path(), format!("{id}\n")).expect("request");
    cloud.moto.put_object(
        BUCKET,
        &format!("{CLUSTER_PREFIX}/etcd/restore-request"),
        request.path(),
    );
    // Two members hang (a partition): their instances still run. Only the
    // first one's instance is replaced.
    for node in &nodes {
        node.power_off();
    }
    cloud.terminate_instance(&nodes[0].instance_id);
    let replacement = launch_member(&cloud, &etcd, "etcd-1", "i-0f80000000000000d");
    let boot = replacement.boot();
    assert!(!boot.success, "{}", boot.everything());
    assert!(
        boot.log
            .contains(&format!("restore requested: backup {id}")),
        "{}",
        boot.log
    );
    assert!(
        boot.log
            .contains("not forming a new etcd cluster beside them"),
        "{}",
        boot.log
    );
    assert!(
        replacement
            .commands_starting("etcdutl snapshot restore")
            .is_empty(),
        "{}",
        boot.log
    );
    assert!(!replacement.etcd_running());
    assert_eq!(
        cloud.instance_health(&replacement.instance_id).as_deref(),
        Some("Unhealthy")
    );
}
