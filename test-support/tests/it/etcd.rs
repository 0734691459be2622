//! The real etcd harness: a TLS cluster of Debian's etcd that keeps its
//! quorum when one of three members dies, and whose dead member can be
//! removed.

use skiff_test_support::etcd::{node_name, EtcdCluster};

#[test]
fn three_members_keep_quorum_when_one_dies_and_the_dead_one_can_be_removed() {
    let cluster = EtcdCluster::start(3);
    let mut members = cluster.member_list();
    members.sort_by_key(|member| member.peer_url.clone());
    assert_eq!(members.len(), 3, "{members:?}");
    for (listed, member) in members.iter().zip(sorted_by_peer(&cluster)) {
        assert_eq!(listed.name, member.name);
        assert_eq!(listed.name, node_name(member.address));
        assert_eq!(listed.peer_url, member.peer_url());
        assert_eq!(listed.client_url, member.client_url());
        assert!(!listed.is_learner);
        assert_eq!(listed.status, "started");
    }
    assert!(cluster.etcdctl(&["endpoint", "health"]).status.success());

    cluster.put("/registry/a", "one");
    assert_eq!(cluster.get("/registry/a").as_deref(), Some("one"));
    assert_eq!(cluster.get("/registry/missing"), None);

    // One of three dies: the two others still make a quorum.
    let dead = &cluster.members()[2];
    cluster.kill(2);
    assert!(!cluster.live_endpoints().contains(&dead.client_url()));
    cluster.put("/registry/b", "two");
    assert_eq!(cluster.get("/registry/a").as_deref(), Some("one"));
    assert_eq!(cluster.get("/registry/b").as_deref(), Some("two"));

    // The dead member is still listed until someone removes it.
    let listed = cluster.member_list();
    let entry = listed
        .iter()
        .find(|member| member.peer_url == dead.peer_url())
        .expect("the dead member is still a member");
    let removal = cluster.etcdctl(&["member", "remove", &entry.id]);
    assert!(
        removal.status.success(),
        "{}",
        String::from_utf8_lossy(&removal.stderr)
    );
    let remaining = cluster.member_list();
    assert_eq!(remaining.len(), 2, "{remaining:?}");
    assert!(remaining
        .iter()
        .all(|member| member.peer_url != dead.peer_url()));
    cluster.put("/registry/c", "three");
    assert_eq!(cluster.get("/registry/c").as_deref(), Some("three"));
}

#[test]
fn clients_without_a_certificate_of_the_ca_are_refused() {
    let cluster = EtcdCluster::start(1);
    let endpoint = cluster.endpoints()[0].clone();
    // The CA is trusted but no client certificate is shown.
    let output = std::process::Command::new("etcdctl")
        .arg(format!("--endpoints={endpoint}"))
        .arg(format!("--cacert={}", cluster.ca().certificate.display()))
        .args(["--dial-timeout=2s", "--command-timeout=3s", "get", "x"])
        .output()
        .expect("etcdctl runs");
    assert!(!output.status.success(), "client-cert-auth must refuse");
    assert!(cluster.etcdctl(&["get", "x"]).status.success());
}

#[test]
fn dropping_a_cluster_stops_its_members() {
    let endpoint;
    {
        let cluster = EtcdCluster::start(1);
        endpoint = cluster.members()[0].address;
        assert!(std::net::TcpStream::connect((endpoint, 2379)).is_ok());
    }
    assert!(
        std::net::TcpStream::connect((endpoint, 2379)).is_err(),
        "the member must be gone after the drop"
    );
}

fn sorted_by_peer(cluster: &EtcdCluster) -> Vec<skiff_test_support::etcd::EtcdMember> {
    let mut members = cluster.members().to_vec();
    members.sort_by_key(|member| member.peer_url());
    members
}
