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
    let instances = fixture.group_instances("control-plane-us-east-1a").await;
    assert_eq!(instances.len(), 1, "{instances:?}");
    let instance = instances[0].clone();
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

    // A node's status object: shown; a failed bootstrap of an instance in
    // service fails validation with the node's own reason, one of an
    // instance gone does not.
    fixture.aws.put_object(
        &fixture.bucket,
        &report_key,
        &certificate_report(&instance, 200, 0),
    );
    let status = |instance: &str, phase: &str, message: &str| {
        serde_json::to_vec(&json!({
            "instance": instance, "node": "ip-10-0-0-1", "role": "control-plane",
            "kubernetesVersion": "1.35.1", "phase": phase, "message": message,
            "time": "2026-12-06T12:00:00Z",
        }))
        .expect("json")
    };
    let status_key = fixture.key(&format!("etcd/status/{instance}"));
    fixture.aws.put_object(
        &fixture.bucket,
        &status_key,
        &status(&instance, "joined", ""),
    );
    fixture.aws.put_object(
        &fixture.bucket,
        &fixture.key("etcd/status/i-0deadbeefdeadbeef"),
        &status("i-0deadbeefdeadbeef", "failed", "long gone"),
    );
    let joined = fixture.skiff(["validate", "cluster", &fixture.cluster, "--cloudonly"]);
    joined.assert_success();
    joined.assert_stdout_contains("Control-plane nodes, as they last reported:");
    joined.assert_stdout_contains("joined");
    assert!(!joined.stdout.contains("long gone"), "{}", joined.stdout);
    fixture.aws.put_object(
        &fixture.bucket,
        &status_key,
        &status(
            &instance,
            "failed",
            "the cluster runs 1.33.4; this node installs 1.35.1: upgrade one minor at a time",
        ),
    );
    let failed = fixture.skiff(["validate", "cluster", &fixture.cluster, "--cloudonly"]);
    failed.assert_exit(2);
    failed.assert_stdout_contains(&format!(
        "control-plane instance {instance} (group control-plane-us-east-1a, Kubernetes 1.35.1) failed its bootstrap"
    ));
    failed.assert_stdout_contains("upgrade one minor at a time");
    let store_before = fixture.aws.list_keys(&fixture.bucket, "");
    assert_eq!(
        fixture.aws.list_keys(&fixture.bucket, ""),
        store_before,
        "validation writes nothing"
    );
}

/// Registers a Ready node (kubelet `kubelet_version`) for every running
/// instance of the endpoint not registered yet, as its kubelet would: by
/// its private IP; control-plane ones with their static pods. Returns the
/// names added.
async fn register_running(
    ec2: &aws_sdk_ec2::Client,
    api: &FakeApiServer,
    kubelet_version: &str,
) -> Vec<String> {
    let instances = ec2
        .describe_instances()
        .send()
        .await
        .expect("describe instances");
    let mut added = Vec::new();
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
        let name = format!("ip-{}", ip.replace('.', "-"));
        if api.node(&name).is_some() {
            continue;
        }
        let control_plane = instance.tags().iter().any(|tag| {
            tag.key() == Some("aws:autoscaling:groupName")
                && tag
                    .value()
                    .is_some_and(|group| group.starts_with("control-plane"))
        });
        if control_plane {
            api.add_node(control_plane_node(&name, ip, true));
            for component in STATIC_COMPONENTS {
                api.add_pod(static_pod(component, &name, true));
            }
        } else {
            api.add_node(node(&name, ip, true));
        }
        api.set_kubelet_version(&name, kubelet_version);
        added.push(name);
    }
    added
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_are_replaced_only_once_the_api_server_runs_their_minor() {
    let fixture = ClusterFixture::new("skew.example.com").await;
    fixture.create_zone("example.com").await;
    let cluster = fixture.cluster.clone();
    fixture.create_cluster(&["--zones", "us-east-1a", "--node-count", "1"]);
    fixture.apply();
    let api = FakeApiServer::start().await;
    let current = skiff_api::version::DEFAULT_VERSION;
    let ec2 = fixture.clients.ec2.clone();
    let registered = register_running(&ec2, &api, &format!("v{current}")).await;
    assert_eq!(registered.len(), 2, "{registered:?}");
    api.add_daemon_set(daemon_set("kube-proxy", 2, 2));
    let valid = validate(&fixture, &api, &[]);
    valid.assert_success();
    valid.assert_stdout_contains(&format!(
        "Kubernetes: API server v{current}; kubelets v{current}"
    ));

    // The next minor, stored and applied: every group is now behind.
    let from: skiff_api::KubernetesVersion = current.parse().expect("a version");
    let next = skiff_api::version::allowed_next(from)
        .into_iter()
        .find(|version| version.minor == from.minor + 1)
        .expect("a next minor in the table");
    fixture.edit_cluster(|document| {
        document["spec"]["kubernetesVersion"] = next.to_string().into();
    });
    fixture.apply();
    let workers_before = fixture.group_instances("nodes-us-east-1a").await;
    assert_eq!(workers_before.len(), 1);
    let roll_workers = |api: &FakeApiServer| {
        fixture
            .command([
                "rolling-update",
                "cluster",
                &cluster,
                "--yes",
                "--instance-group-roles",
                "Node",
                "--validation-interval",
                "100ms",
                "--validation-timeout",
                "60s",
            ])
            .env("SKIFF_KUBERNETES_API", api.url())
            .run()
    };

    // Without the API (--cloudonly), workers alone wait for the control
    // plane's groups: the recorded reasons say the roll raises their minor.
    let blind = fixture
        .command([
            "rolling-update",
            "cluster",
            &cluster,
            "--yes",
            "--cloudonly",
            "--instance-group-roles",
            "Node",
        ])
        .run();
    blind.assert_failure().assert_no_panic();
    blind.assert_stderr_contains("with --cloudonly");
    blind.assert_stderr_contains("control-plane groups control-plane-us-east-1a");
    assert_eq!(
        fixture.group_instances("nodes-us-east-1a").await,
        workers_before
    );

    // The API server still runs the old minor: refused, the versions named,
    // nothing replaced.
    let refused = roll_workers(&api);
    refused.assert_failure().assert_no_panic();
    refused.assert_stderr_contains(&format!("kubelet {next}"));
    refused.assert_stderr_contains(&format!("reports v{current}"));
    refused.assert_stderr_contains("--instance-group-roles ControlPlane");
    assert_eq!(
        fixture.group_instances("nodes-us-east-1a").await,
        workers_before
    );

    // A node whose kubelet is newer than the API server fails validation.
    let worker_ip = ec2
        .describe_instances()
        .instance_ids(&workers_before[0])
        .send()
        .await
        .expect("describe the worker")
        .reservations()[0]
        .instances()[0]
        .private_ip_address()
        .expect("an IP")
        .to_owned();
    let worker = format!("ip-{}", worker_ip.replace('.', "-"));
    assert!(api.node(&worker).is_some(), "{worker} registered");
    api.set_kubelet_version(&worker, &format!("v{next}"));
    let skewed = validate(&fixture, &api, &[]);
    skewed.assert_exit(2);
    skewed.assert_stdout_contains(&format!(
        "node {worker} runs kubelet v{next}, newer than the API server (v{current})"
    ));
    api.set_kubelet_version(&worker, &format!("v{current}"));

    // The control plane was upgraded: the API server reports the new minor.
    // The replacement registers as its kubelet would; the roll proceeds.
    // Meanwhile a control-plane node reports a failed bootstrap (as its
    // status object): the roll names it and its reason.
    api.set_version(&format!("v{next}"));
    // One API server answering at the new minor is not the whole control
    // plane: while a control-plane group is behind, workers still wait.
    let partly = roll_workers(&api);
    partly.assert_failure().assert_no_panic();
    partly.assert_stderr_contains(
        "control-plane groups control-plane-us-east-1a still have instances of an older launch template",
    );
    assert_eq!(
        fixture.group_instances("nodes-us-east-1a").await,
        workers_before
    );
    fixture
        .command([
            "rolling-update",
            "cluster",
            &cluster,
            "--yes",
            "--cloudonly",
            "--instance-group-roles",
            "ControlPlane",
            "--validation-interval",
            "100ms",
            "--validation-timeout",
            "60s",
        ])
        .run()
        .assert_success();
    let control_plane = fixture.group_instances("control-plane-us-east-1a").await;
    // The new control-plane node registers now; what registers during the
    // roll is the workers' replacement.
    register_running(&ec2, &api, &format!("v{next}")).await;
    let s3 = fixture.aws.s3_client().await;
    let status_key = fixture.key(&format!("etcd/status/{}", control_plane[0]));
    let registrar = {
        let api = api.clone();
        let ec2 = ec2.clone();
        let version = format!("v{next}");
        let bucket = fixture.bucket.clone();
        let instance = control_plane[0].clone();
        tokio::spawn(async move {
            let mut reported = false;
            loop {
                let added = register_running(&ec2, &api, &version).await;
                if !added.is_empty() && !reported {
                    let now = time::OffsetDateTime::now_utc()
                        .format(&time::format_description::well_known::Rfc3339)
                        .expect("a time");
                    let body = json!({
                        "instance": instance, "node": "ip-10-0-0-9", "role": "control-plane",
                        "kubernetesVersion": version.trim_start_matches('v'), "phase": "failed",
                        "message": "kubeadm config images pull failed: registry.k8s.io unreachable",
                        "time": now,
                    });
                    s3.put_object()
                        .bucket(&bucket)
                        .key(&status_key)
                        .body(serde_json::to_vec(&body).expect("json").into())
                        .send()
                        .await
                        .expect("put the status object");
                    reported = true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        })
    };
    let rolled = tokio::task::block_in_place(|| roll_workers(&api));
    registrar.abort();
    rolled.assert_success();
    rolled.assert_stderr_contains(&format!(
        "control-plane instance {} (Kubernetes {next}) failed its bootstrap",
        control_plane[0]
    ));
    rolled.assert_stderr_contains("registry.k8s.io unreachable");
    let workers_after = fixture.group_instances("nodes-us-east-1a").await;
    assert_eq!(workers_after.len(), 1);
    assert_ne!(workers_after, workers_before, "the worker was replaced");
}
