//! The sandbox's stand-ins, driven by a small node script of this file's
//! own: instance metadata and the EC2/Auto Scaling calls reach the
//! sandbox's moto; kubeadm's stand-in runs real etcd members and enforces
//! what the real kubeadm enforces.

use skiff_test_support::sandbox::{BootstrapPaths, FakeCloud, Image, NodeSandbox};

const PATHS: BootstrapPaths = BootstrapPaths {
    script: "/usr/local/sbin/test-node",
    log: "/var/log/test-node.log",
};

/// A node script: `$1` picks a step; each step prints what it saw.
const SCRIPT: &str = r#"#!/bin/bash
set -uo pipefail
root=$SKIFF_ROOT
imds=http://169.254.169.254/latest/meta-data
endpoint=http://127.0.0.1:$SANDBOX_MOTO_PORT/
aws() {
  local service=$1
  shift
  curl -fsS -X POST --aws-sigv4 "aws:amz:us-east-1:$service" --user test-key:test-secret-key "$@" "$endpoint"
}
case ${1:-} in
  metadata)
    echo "ip=$(curl -fsS "$imds/local-ipv4")"
    echo "state=$(curl -fsS "$imds/autoscaling/target-lifecycle-state" || echo missing)"
    ;;
  describe)
    aws ec2 -d Version=2016-11-15 -d Action=DescribeInstances \
      -d Filter.1.Name=tag:KubernetesCluster -d Filter.1.Value.1=c1.example.com \
      -d Filter.2.Name=tag:skiff.dev/role -d Filter.2.Value.1=control-plane \
      -d Filter.3.Name=instance-state-name -d Filter.3.Value.1=pending -d Filter.3.Value.2=running |
      grep -o '<privateIpAddress>[^<]*' | sed 's/<privateIpAddress>//'
    ;;
  unhealthy)
    aws autoscaling -d Version=2011-01-01 -d Action=SetInstanceHealth \
      -d "InstanceId=$(curl -fsS "$imds/instance-id")" -d HealthStatus=Unhealthy -d ShouldRespectGracePeriod=false >/dev/null
    ;;
  init | join | worker-join)
    mkdir -p "$root/tmp"
    case $1 in
      init) printf 'kind: %sConfiguration\n' Init >"$root/tmp/kubeadm.yaml" ;;
      join) printf 'kind: JoinConfiguration\ncontrolPlane: {}\n' >"$root/tmp/kubeadm.yaml" ;;
      worker-join) printf 'kind: JoinConfiguration\n' >"$root/tmp/kubeadm.yaml" ;;
    esac
    command=${1%-join}
    [ "$command" = worker ] && command=join
    systemctl enable kubelet
    shift
    kubeadm "$command" --config "$root/tmp/kubeadm.yaml" "$@"
    ;;
  snapshot)
    image=$(kubeadm config images list --kubernetes-version v1.34.2 | grep /etcd:)
    crictl pull "$image"
    mount=$root/tmp/etcd-image
    mkdir -p "$mount"
    ctr --namespace k8s.io images mount "$image" "$mount" >/dev/null
    pki=$root/etc/kubernetes/pki/etcd
    "$mount/usr/local/bin/etcdctl" --endpoints="https://$(curl -fsS "$imds/local-ipv4"):2379" \
      --cacert="$pki/ca.crt" --cert="$pki/healthcheck-client.crt" --key="$pki/healthcheck-client.key" \
      snapshot save "$root/tmp/backup.db" >/dev/null
    "$mount/usr/local/bin/etcdutl" snapshot status "$root/tmp/backup.db" -w simple
    "$mount/usr/local/bin/etcdutl" snapshot restore "$root/tmp/backup.db" --data-dir "$root/tmp/restored" \
      --name restored --initial-cluster restored=https://127.0.0.1:2380 \
      --initial-advertise-peer-urls https://127.0.0.1:2380 >/dev/null 2>&1
    ctr --namespace k8s.io images unmount "$mount"
    [ -d "$root/tmp/restored/member" ] && echo restored
    ;;
esac
"#;

fn user_data(marker: &str) -> String {
    let indented: String = SCRIPT
        .lines()
        .map(|line| format!("      {line}\n"))
        .collect();
    format!(
        "#cloud-config\nwrite_files:\n  - path: {}\n    permissions: '0755'\n    content: |\n{indented}  - path: /etc/skiff/role\n    permissions: '0644'\n    content: |\n      {marker}\nruncmd:\n  - {}\n",
        PATHS.script, PATHS.script
    )
}

fn control_plane(cloud: &FakeCloud, instance_id: &str) -> NodeSandbox {
    let ip = cloud.next_private_ip();
    cloud.run_instance_with_id(instance_id, "control-plane-us-east-1a", "control-plane", ip);
    cloud.launch(
        instance_id,
        "1.34.2",
        user_data("control-plane"),
        Image::Ubuntu,
    )
}

fn succeeded(node: &NodeSandbox, arguments: &[&str]) -> String {
    let boot = node.run(arguments);
    assert!(
        boot.success,
        "{arguments:?} failed on {}:\n{}\n--- commands\n{}",
        node.instance_id,
        boot.everything(),
        node.commands().join("\n")
    );
    boot.stdout
}

fn voting_members(cloud: &FakeCloud) -> Vec<String> {
    let output = cloud.etcdctl(&["member", "list", "-w", "simple"]);
    assert!(output.status.success(), "{output:?}");
    let mut peers: Vec<String> =
        skiff_test_support::etcd::parse_member_list(&String::from_utf8_lossy(&output.stdout))
            .into_iter()
            .filter(|member| !member.is_learner)
            .map(|member| member.peer_url)
            .collect();
    peers.sort();
    peers
}

#[test]
fn metadata_and_the_ec2_and_auto_scaling_calls_reach_the_sandbox_cloud() {
    let cloud = FakeCloud::start(PATHS);
    let first = control_plane(&cloud, "i-0aaaaaaaaaaaaaaa1");
    let second = control_plane(&cloud, "i-0bbbbbbbbbbbbbbb2");
    assert_ne!(first.private_ip, second.private_ip);
    assert_eq!(
        cloud.instance_private_ip(&first.instance_id),
        Some(first.private_ip)
    );

    let metadata = succeeded(&first, &["metadata"]);
    assert!(
        metadata.contains(&format!("ip={}\n", first.private_ip)),
        "{metadata}"
    );
    assert!(metadata.contains("state=InService\n"), "{metadata}");
    first.set_lifecycle_state(Some("Terminated"));
    assert!(succeeded(&first, &["metadata"]).contains("state=Terminated\n"));
    first.set_lifecycle_state(None);
    assert!(succeeded(&first, &["metadata"]).contains("state=missing\n"));

    // DescribeInstances with the node's filters sees both control-plane
    // instances, and no longer the terminated one.
    let mut expected = vec![first.private_ip.to_string(), second.private_ip.to_string()];
    expected.sort();
    let mut seen: Vec<String> = succeeded(&first, &["describe"])
        .lines()
        .map(str::to_string)
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, expected);
    cloud.terminate_instance(&second.instance_id);
    assert_eq!(
        cloud.instance_state(&second.instance_id).as_deref(),
        Some("terminated")
    );
    let remaining: std::collections::BTreeSet<String> = succeeded(&first, &["describe"])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(remaining, [first.private_ip.to_string()].into());

    // SetInstanceHealth of its own instance, as the auto scaling group records it.
    assert_eq!(
        cloud.instance_health(&first.instance_id).as_deref(),
        Some("Healthy")
    );
    succeeded(&first, &["unhealthy"]);
    assert_eq!(
        cloud.instance_health(&first.instance_id).as_deref(),
        Some("Unhealthy")
    );
    assert!(first
        .commands()
        .contains(&"aws autoscaling SetInstanceHealth".to_string()));

    // A worker's join starts no etcd.
    cloud.mark_api_server_ready();
    let worker = cloud.launch(
        "i-0ccccccccccccccc3",
        "1.34.2",
        user_data("nodes"),
        Image::Ubuntu,
    );
    succeeded(&worker, &["worker-join"]);
    assert!(cloud.running_etcd_members().is_empty());
    assert!(worker.control_plane_join_window().is_none());
}

#[test]
fn init_runs_a_real_etcd_that_survives_a_power_cycle_and_refuses_a_used_data_dir() {
    let cloud = FakeCloud::start(PATHS);
    let node = control_plane(&cloud, "i-0aaaaaaaaaaaaaaa1");
    node.write(
        "/etc/kubernetes/pki/etcd/ca.crt",
        &cloud.pki_file("etcd-ca.crt"),
    );
    node.write(
        "/etc/kubernetes/pki/etcd/ca.key",
        &cloud.pki_file("etcd-ca.key"),
    );
    succeeded(&node, &["init", "--skip-token-print"]);
    assert!(node.etcd_running());
    assert_eq!(
        cloud.etcd_endpoints(),
        vec![format!("https://{}:2379", node.private_ip)]
    );
    assert!(node
        .read("/etc/kubernetes/manifests/etcd.yaml")
        .contains("--data-dir=/var/lib/etcd"));
    assert!(cloud
        .etcdctl(&["put", "/registry/kept", "yes"])
        .status
        .success());

    // Off and on again: the enabled kubelet brings the member back with its data.
    node.power_off();
    assert!(!node.etcd_running());
    node.power_on();
    assert!(node.etcd_running());
    let value = cloud.etcdctl(&["get", "/registry/kept", "--print-value-only"]);
    assert_eq!(String::from_utf8_lossy(&value.stdout).trim(), "yes");

    // kubeadm's preflight refuses a non-empty /var/lib/etcd ...
    let refused = node.run(&["init", "--skip-token-print"]);
    assert!(!refused.success);
    assert!(
        refused
            .stderr
            .contains("[ERROR DirAvailable--var-lib-etcd]: /var/lib/etcd is not empty"),
        "{}",
        refused.stderr
    );
    // ... unless told to ignore it (case-insensitive), and the data is kept.
    succeeded(
        &node,
        &[
            "init",
            "--skip-token-print",
            "--ignore-preflight-errors=dirAvailable--var-lib-etcd",
        ],
    );
    let value = cloud.etcdctl(&["get", "/registry/kept", "--print-value-only"]);
    assert_eq!(String::from_utf8_lossy(&value.stdout).trim(), "yes");

    // The etcd image's tools, mounted with ctr: a snapshot, its status, a restore.
    let output = succeeded(&node, &["snapshot"]);
    assert!(
        output.lines().any(|line| line.split(", ").count() == 4),
        "{output}"
    );
    assert!(output.contains("restored"), "{output}");
    assert!(node
        .commands()
        .contains(&"crictl pull registry.k8s.io/etcd:3.6.4-0".to_string()));
    assert!(
        !node.exists("/tmp/etcd-image/usr/local/bin/etcdctl"),
        "unmounted"
    );
    assert!(node.commands_starting("kubeadm reset").is_empty());

    // Powered off, nothing answers at its address: no member was left
    // behind by the restarts above.
    node.power_off();
    assert!(std::net::TcpStream::connect((node.private_ip, 2379)).is_err());
}

#[test]
fn control_plane_joins_check_etcd_health_and_join_as_learners() {
    let cloud = FakeCloud::start(PATHS);
    let cluster = cloud.start_etcd(3);
    cloud.store_cluster_configuration("1.34.2");
    for (index, member) in cluster.members().iter().enumerate() {
        cloud.run_instance_with_id(
            &format!("i-0000000000000000{index}"),
            "control-plane-us-east-1a",
            "control-plane",
            member.address,
        );
    }
    cloud.mark_api_server_ready();
    // One member crashed: kubeadm's check-etcd refuses the join.
    cluster.kill(2);
    let joiner = control_plane(&cloud, "i-0ddddddddddddddd4");
    joiner.write(
        "/etc/kubernetes/pki/etcd/ca.crt",
        &cloud.pki_file("etcd-ca.crt"),
    );
    joiner.write(
        "/etc/kubernetes/pki/etcd/ca.key",
        &cloud.pki_file("etcd-ca.key"),
    );
    let refused = joiner.run(&["join"]);
    assert!(!refused.success, "{}", refused.everything());
    assert!(
        refused.stderr.contains("etcd cluster is not healthy"),
        "{}",
        refused.stderr
    );
    assert!(!joiner.etcd_running());

    // Once the dead member is removed, two joins at once both succeed: the
    // second waits while the first is a learner (etcd admits one).
    let dead = cluster.members()[2].peer_url();
    let listed = cloud.etcdctl(&["member", "list", "-w", "simple"]);
    let id = skiff_test_support::etcd::parse_member_list(&String::from_utf8_lossy(&listed.stdout))
        .into_iter()
        .find(|member| member.peer_url == dead)
        .expect("dead member listed")
        .id;
    assert!(cloud.etcdctl(&["member", "remove", &id]).status.success());
    let other = control_plane(&cloud, "i-0eeeeeeeeeeeeeee5");
    other.write(
        "/etc/kubernetes/pki/etcd/ca.crt",
        &cloud.pki_file("etcd-ca.crt"),
    );
    other.write(
        "/etc/kubernetes/pki/etcd/ca.key",
        &cloud.pki_file("etcd-ca.key"),
    );
    let running = [joiner.spawn_with(&["join"]), other.spawn_with(&["join"])];
    for boot in running.map(|running| running.wait()) {
        assert!(boot.success, "{}", boot.everything());
    }
    let mut expected: Vec<String> = [
        cluster.members()[0].peer_url(),
        cluster.members()[1].peer_url(),
        format!("https://{}:2380", joiner.private_ip),
        format!("https://{}:2380", other.private_ip),
    ]
    .into();
    expected.sort();
    assert_eq!(voting_members(&cloud), expected);
    let (first_start, first_end) = joiner.control_plane_join_window().expect("logged");
    let (second_start, second_end) = other.control_plane_join_window().expect("logged");
    assert!(first_end - first_start >= 1000 && second_end - second_start >= 1000);
    assert!(
        first_start < second_end && second_start < first_end,
        "unserialized joins overlap, and the log shows it"
    );
}
