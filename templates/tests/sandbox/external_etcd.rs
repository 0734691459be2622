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
