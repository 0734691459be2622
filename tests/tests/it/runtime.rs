//! `spec.containerRuntime` and the review fixes of issue 20 through the
//! real binary against the local endpoint: a group's runtime change plans a
//! roll of that group only, with the runtime as the reason; an applied
//! cluster (with the ICMP rules between its members) plans nothing again;
//! node labels the kubelet would refuse, an unknown runtime and a clusterDNS
//! kubeadm does not give the DNS service are refused with their field paths,
//! and nothing is stored.

use serde_json::Value;
use skiff_tests::StoreSnapshot;

use crate::common::cluster::ClusterFixture;

const NODES: &str = "nodes-us-east-1a";

async fn fixture(cluster: &str) -> ClusterFixture {
    let fixture = ClusterFixture::new(cluster).await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a", "--node-count", "1"]);
    fixture
}

fn rolling_updates(plan: &Value) -> Vec<(String, Vec<String>)> {
    plan["rollingUpdates"]
        .as_array()
        .expect("rollingUpdates")
        .iter()
        .map(|entry| {
            (
                entry["group"].as_str().expect("a group").to_owned(),
                entry["reasons"]
                    .as_array()
                    .expect("reasons")
                    .iter()
                    .map(|reason| reason.as_str().expect("text").to_owned())
                    .collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_groups_runtime_change_rolls_that_group_only_with_the_runtime_named() {
    let fixture = fixture("rt1.example.com").await;
    fixture.apply();
    // Applied once (ICMP rules included), the cloud matches the spec.
    fixture.assert_no_changes();

    fixture.edit_group(NODES, |document| {
        document["spec"]["containerRuntime"] = "cri-o".into();
    });
    let plan = fixture.plan_json();
    assert_eq!(
        rolling_updates(&plan),
        [(
            NODES.to_string(),
            vec!["containerRuntime containerd -> cri-o".to_string()]
        )],
        "{plan:#}"
    );
    let changed: Vec<&str> = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|change| change["key"].as_str())
        .collect();
    assert!(
        changed
            .iter()
            .all(|key| key.ends_with(NODES) && !key.starts_with("security-group")),
        "only the nodes' launch template and group change: {changed:?}"
    );
    // The stored group says what it runs.
    let group = fixture.skiff(["get", "ig", "--name", &fixture.cluster, NODES, "-o", "yaml"]);
    group.assert_success();
    assert!(group.stdout.contains("containerRuntime: cri-o"), "{group}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_labels_runtimes_and_cluster_dns_name_their_fields_and_store_nothing() {
    let fixture = fixture("rt2.example.com").await;
    let output = fixture.skiff(["get", "ig", "--name", &fixture.cluster, NODES, "-o", "yaml"]);
    output.assert_success();
    let group: serde_norway::Value = serde_norway::from_str(&output.stdout).expect("YAML");
    let output = fixture.skiff(["get", "cluster", &fixture.cluster, "-o", "yaml"]);
    output.assert_success();
    let cluster: serde_norway::Value = serde_norway::from_str(&output.stdout).expect("YAML");

    let with_label = {
        let mut group = group.clone();
        group["spec"]["nodeLabels"]["node-role.kubernetes.io/worker"] = "".into();
        group
    };
    let with_docker = {
        let mut group = group.clone();
        group["spec"]["containerRuntime"] = "docker".into();
        group
    };
    let with_dns = {
        let mut cluster = cluster.clone();
        cluster["spec"]["networking"]["clusterDNS"] = "10.96.0.53".into();
        cluster
    };
    let cases = [
        (
            "label",
            with_label,
            vec![
                format!(
                    "instancegroup/{NODES}: spec.nodeLabels[\"node-role.kubernetes.io/worker\"]"
                ),
                "the kubelet refuses".to_string(),
            ],
        ),
        (
            "runtime",
            with_docker,
            vec![
                "spec.containerRuntime".to_string(),
                "unknown variant `docker`".to_string(),
            ],
        ),
        (
            "clusterDNS",
            with_dns,
            vec![
                "spec.networking.clusterDNS".to_string(),
                "set clusterDNS to 10.96.0.10".to_string(),
            ],
        ),
    ];
    for (name, document, expected) in cases {
        let before = StoreSnapshot::of_bucket(&fixture.aws, &fixture.bucket);
        let path = fixture.home.write(
            format!("{name}.yaml"),
            serde_norway::to_string(&document).expect("YAML"),
        );
        let output = fixture.skiff([
            "replace".as_ref(),
            "-f".as_ref(),
            path.as_os_str(),
            "--name".as_ref(),
            fixture.cluster.as_ref(),
        ]);
        output.assert_exit(1);
        for text in &expected {
            output.assert_stderr_contains(text);
        }
        before.assert_unchanged(&StoreSnapshot::of_bucket(&fixture.aws, &fixture.bucket));
    }
}
