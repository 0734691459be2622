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

/// The in-service instance of a one-instance group.
async fn only_instance(fixture: &ClusterFixture, group: &str) -> String {
    let name = fixture.group_resource(group);
    let found = fixture
        .clients
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&name)
        .send()
        .await
        .expect("describe auto scaling groups");
    let instances: Vec<String> = found
        .auto_scaling_groups()
        .iter()
        .flat_map(|group| group.instances())
        .filter_map(|instance| instance.instance_id().map(str::to_owned))
        .collect();
    assert_eq!(instances.len(), 1, "{name}: {instances:?}");
    instances[0].clone()
}

/// A certificate report as a control-plane node writes it
/// (`<cluster>/etcd/certificates/<instance>`; the node sandbox tests check
/// that the bootstrap writes this shape): `apiserver` expires in `days`,
/// everything else in a year.
fn certificate_report(instance: &str, days: i64, checked_days_ago: i64) -> Vec<u8> {
    let now = time::OffsetDateTime::now_utc();
    let at = |offset: time::Duration| {
        (now + offset)
            .format(&time::format_description::well_known::Rfc3339)
            .expect("a time")
    };
    serde_json::to_vec(&json!({
        "instance": instance,
        "checked": at(time::Duration::days(-checked_days_ago)),
        "certificates": [
            {"name": "admin.conf", "notAfter": at(time::Duration::days(365))},
            {"name": "apiserver", "notAfter": at(time::Duration::days(days) + time::Duration::hours(1))},
            {"name": "etcd-peer", "notAfter": at(time::Duration::days(365))},
            {"name": "ca", "notAfter": at(time::Duration::days(3650))},
        ],
    }))
    .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_cluster_shows_the_earliest_certificate_expiry_and_fails_under_14_days() {
    let fixture = ClusterFixture::new("certs.example.com").await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a", "--node-count", "1"]);
    fixture.apply();
    let instance = only_instance(&fixture, "control-plane-us-east-1a").await;
    let report_key = fixture.key(&format!("etcd/certificates/{instance}"));

    // No report yet (the node has not booted): valid, and said so.
    let nothing = fixture.skiff(["validate", "cluster", &fixture.cluster, "--cloudonly"]);
    nothing.assert_success();
    nothing.assert_stdout_contains("no control-plane node has reported its certificates yet");

    // A year left: valid, the earliest shown. A report of an instance that
    // is gone is ignored, however close its expiry.
    fixture.aws.put_object(
        &fixture.bucket,
        &report_key,
        &certificate_report(&instance, 200, 0),
    );
    let gone_key = fixture.key("etcd/certificates/i-0deadbeefdeadbeef");
    fixture.aws.put_object(
        &fixture.bucket,
        &gone_key,
        &certificate_report("i-0deadbeefdeadbeef", 2, 0),
    );
    let valid = fixture.skiff(["validate", "cluster", &fixture.cluster, "--cloudonly"]);
    valid.assert_success();
    valid.assert_stdout_contains(&format!(
        "Earliest certificate expiry: apiserver on {instance} (control-plane-us-east-1a)"
    ));
    valid.assert_stdout_contains("in 200 days");
    assert!(
        !valid.stdout.contains("i-0deadbeefdeadbeef"),
        "{}",
        valid.stdout
    );

    // Ten days left: exit 2, the certificate, instance and fix named.
    let store_before = fixture.aws.list_keys(&fixture.bucket, "");
    fixture.aws.put_object(
        &fixture.bucket,
        &report_key,
        &certificate_report(&instance, 10, 0),
    );
    let failing = fixture.skiff(["validate", "cluster", &fixture.cluster, "--cloudonly"]);
    failing.assert_exit(2);
    failing.assert_stdout_contains(&format!(
        "certificate apiserver on control-plane instance {instance} (group control-plane-us-east-1a) expires in 10 days"
    ));
    failing.assert_stdout_contains("skiff-renew-certificates.timer");
    let json_output = fixture.skiff([
        "validate",
        "cluster",
        &fixture.cluster,
        "--cloudonly",
        "-o",
        "json",
    ]);
    json_output.assert_exit(2);
    let report = json_output.stdout_json();
    assert_eq!(
        report["certificates"][0]["instance"],
        json!(instance),
        "{report:#}"
    );
    assert_eq!(
        report["certificates"][0]["daysLeft"],
        json!(10),
        "{report:#}"
    );
    assert!(
        report["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .any(|problem| problem["kind"] == json!("certificate")
                && problem["name"] == json!(format!("{instance}/apiserver"))),
        "{report:#}"
    );

    // A report the daily check stopped refreshing fails too.
    fixture.aws.put_object(
        &fixture.bucket,
        &report_key,
        &certificate_report(&instance, 200, 5),
    );
    let stale = fixture.skiff(["validate", "cluster", &fixture.cluster, "--cloudonly"]);
    stale.assert_exit(2);
    stale.assert_stdout_contains("last checked its certificates 5 days ago");
    assert_eq!(
        fixture.aws.list_keys(&fixture.bucket, ""),
        store_before,
        "validation writes nothing"
    );
}
