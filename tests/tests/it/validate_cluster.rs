//! Acceptance test of `validate cluster`: the real `skiff` binary checks a
//! cluster applied against the local AWS endpoint, reaching its Kubernetes
//! API at `SKIFF_KUBERNETES_API` with an admin certificate it issues from
//! the cluster CA in the state store. No API server can run here, so a
//! stand-in answers the reads validation makes, with a node for
//! every instance, matched by private IP as a kubelet would register it.
//!
//! The stand-in is skiff-test-support's, the one skiff-rollout's tests of
//! `KubernetesApi` use. It serves on this test's runtime, which therefore
//! has worker threads: the test's own thread blocks while skiff runs.

use std::collections::BTreeMap;

use serde_json::json;
use skiff_test_support::kubernetes_api::{
    control_plane_node, daemon_set, node, static_pod, FakeApiServer, STATIC_COMPONENTS,
};
use skiff_tests::SkiffOutput;

use crate::common;
use common::cluster::ClusterFixture;

/// `skiff validate cluster CLUSTER EXTRA... --state STORE` against the
/// stand-in.
fn validate(fixture: &ClusterFixture, api: &FakeApiServer, extra: &[&str]) -> SkiffOutput {
    let mut args = vec!["validate", "cluster", &fixture.cluster];
    args.extend_from_slice(extra);
    fixture
        .command(args)
        .env("SKIFF_KUBERNETES_API", api.url())
        .run()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_cluster_names_a_not_ready_node_and_exits_2() {
    let fixture = ClusterFixture::new("validate.example.com").await;
    fixture.create_zone("example.com").await;
    let cluster = fixture.cluster.as_str();
    fixture.create_cluster(&["--zones", "us-east-1a", "--node-count", "2"]);
    fixture.apply();

    // A node per running instance, registered under a name of its own
    // (not the EC2 DNS name): only the InternalIP links it to its instance.
    let instances = fixture
        .clients
        .ec2
        .describe_instances()
        .send()
        .await
        .expect("describe instances");
    let api = FakeApiServer::start().await;
    let mut nodes: BTreeMap<String, String> = BTreeMap::new();
    {
        for instance in instances
            .reservations()
            .iter()
            .flat_map(|reservation| reservation.instances())
        {
            let running = instance
                .state()
                .and_then(|state| state.name())
                .map(|name| name.as_str())
                == Some("running");
            let Some(ip) = instance.private_ip_address().filter(|_| running) else {
                continue;
            };
            let group = instance
                .tags()
                .iter()
                .find(|tag| tag.key() == Some("aws:autoscaling:groupName"))
                .and_then(|tag| tag.value())
                .unwrap_or_default();
            let control_plane = group.starts_with("control-plane");
            let name = format!(
                "{}-{}",
                if control_plane { "cp" } else { "worker" },
                nodes.len()
            );
            if control_plane {
                api.add_node(control_plane_node(&name, ip, true));
                for component in STATIC_COMPONENTS {
                    api.add_pod(static_pod(component, &name, true));
                }
            } else {
                api.add_node(node(&name, ip, true));
            }
            nodes.insert(name, group.to_string());
        }
        api.add_daemon_set(daemon_set("kube-proxy", 3, 3));
    }
    let workers: Vec<&String> = nodes
        .keys()
        .filter(|name| name.starts_with("worker"))
        .collect();
    assert_eq!(workers.len(), 2, "two worker instances: {nodes:?}");
    assert!(
        nodes.keys().any(|name| name.starts_with("cp")),
        "a control-plane instance: {nodes:?}"
    );

    // Everything Ready: valid.
    let valid = validate(&fixture, &api, &[]);
    valid.assert_success();
    valid.assert_stdout_contains(&format!("Cluster {cluster} is valid."));
    let reads: Vec<String> = api
        .requests()
        .iter()
        .map(|request| format!("{} {}", request.method, request.path))
        .collect();
    assert!(
        reads
            .iter()
            .any(|read| read.starts_with("GET /api/v1/nodes")),
        "{reads:?}"
    );
    assert!(
        reads
            .iter()
            .any(|read| read.starts_with("GET /api/v1/namespaces/kube-system/pods")),
        "{reads:?}"
    );
    assert!(
        reads.iter().all(|read| read.starts_with("GET ")),
        "validation only reads: {reads:?}"
    );

    // One worker NotReady: invalid, exit 2, the node named.
    let sick = workers[1].clone();
    api.set_ready(&sick, false);
    let invalid = validate(&fixture, &api, &[]);
    invalid.assert_exit(2);
    invalid.assert_stdout_contains(&format!("node {sick}"));
    invalid.assert_stdout_contains("is NotReady");
    invalid.assert_stdout_contains(&format!("Cluster {cluster} is not valid."));
    assert!(
        !invalid.stdout.contains(&format!("node {} ", workers[0])),
        "{}",
        invalid.stdout
    );

    // -o json says the same.
    let json_output = validate(&fixture, &api, &["-o", "json"]);
    json_output.assert_exit(2);
    let report = json_output.stdout_json();
    assert_eq!(report["valid"], json!(false));
    let problems = report["problems"].as_array().expect("a problem list");
    assert!(
        problems
            .iter()
            .any(|problem| problem["kind"] == json!("node") && problem["name"] == json!(sick)),
        "{report:#}"
    );
}
