//! Windows worker groups against the local AWS endpoint: the real `skiff`
//! binary plans, applies, re-plans, validates and rolls a cluster with an
//! `osFamily: windows` group as it does any other group, and refuses a
//! Windows group the cluster's CNI cannot serve, storing nothing.
//!
//! What each test pins:
//! - the Windows group's image is the newest Windows Server 2022 Core base
//!   image of the catalogue, its launch template's user-data is the
//!   uncompressed `<powershell>` block that reads the token and the CA
//!   certificate from the state store, a second plan finds no change, an
//!   image change (to Windows Server 2025) rolls that group only, with the
//!   image as the reason, and `rolling-update` replaces its instances;
//!   `validate cluster` counts a NotReady Windows node like any other;
//! - Cilium with a Windows group, and a Windows control plane, are refused
//!   with the field path, and the store is left as it was.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use skiff_test_support::kubernetes_api::{
    control_plane_node, daemon_set, node, static_pod, FakeApiServer, STATIC_COMPONENTS,
};
use skiff_tests::StoreSnapshot;

use crate::common;
use common::cluster::ClusterFixture;

const WINDOWS: &str = "windows-nodes";
/// The newest `Windows_Server-2022-English-Core-Base-*` image of
/// `tests/harness/amis.json`: what the default pattern resolves to.
const NEWEST_WINDOWS_2022: &str = "ami-0e2f3a4b5c6d71112";
/// The `Windows_Server-2025-English-Core-Base-*` image of the catalogue.
const WINDOWS_2025: &str = "ami-0f2f3a4b5c6d71112";

/// The decoded user-data of the latest version of a group's launch
/// template, and whether EC2 holds it gzip-compressed.
async fn latest_user_data(fixture: &ClusterFixture, group: &str) -> (String, bool, String) {
    let (id, _) = fixture.launch_template(group).await;
    let found = fixture
        .clients
        .ec2
        .describe_launch_template_versions()
        .launch_template_id(&id)
        .versions("$Latest")
        .send()
        .await
        .expect("describe launch template versions");
    let data = found
        .launch_template_versions()
        .first()
        .and_then(|version| version.launch_template_data())
        .expect("a latest version")
        .clone();
    let encoded = data.user_data().expect("user-data");
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    let compressed = raw.starts_with(&[0x1f, 0x8b]);
    (
        skiff_templates::decode_user_data(encoded).expect("decodes"),
        compressed,
        data.image_id().unwrap_or_default().to_string(),
    )
}

fn rolling_updates(plan: &Value) -> BTreeMap<String, Vec<String>> {
    plan["rollingUpdates"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|entry| {
                    (
                        entry["group"].as_str().expect("a group").to_string(),
                        entry["reasons"]
                            .as_array()
                            .expect("reasons")
                            .iter()
                            .map(|reason| reason.as_str().expect("text").to_string())
                            .collect(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_windows_worker_group_is_planned_applied_validated_and_rolled_like_any_other() {
    let fixture = ClusterFixture::new("win.example.com")
        .await
        .with_env("SKIFF_LOCK_LEASE", "3s");
    fixture.create_zone("example.com").await;
    let cluster = fixture.cluster.clone();
    fixture.create_cluster(&[
        "--zones",
        "us-east-1a",
        "--node-count",
        "1",
        "--networking",
        "calico",
    ]);
    let created = fixture.skiff([
        "create",
        "ig",
        "--name",
        &cluster,
        WINDOWS,
        "--role",
        "Node",
        "--os-family",
        "windows",
        "--min",
        "1",
        "--max",
        "1",
    ]);
    created.assert_success();
    // Where the Windows nodes' pod network comes from is said.
    created.assert_stderr_contains(&format!(
        "instancegroup/{WINDOWS}: spec.osFamily: the Windows nodes' pod network is Calico's Windows \
         data plane, which the first control-plane node installs through the Tigera operator"
    ));
    let stored = fixture.skiff(["get", "ig", "--name", &cluster, WINDOWS, "-o", "yaml"]);
    stored.assert_success();
    stored.assert_stdout_contains("osFamily: windows");
    stored.assert_stdout_contains("image: 801119661308/Windows_Server-2022-English-Core-Base-*");

    // The plan holds the Windows group's launch template and group beside
    // the others'.
    let plan = fixture.plan_json();
    let keys: Vec<String> = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|change| change["key"].as_str().unwrap_or_default().to_string())
        .collect();
    for key in [
        format!("launch-template/{WINDOWS}"),
        format!("autoscaling-group/{WINDOWS}"),
        "launch-template/nodes-us-east-1a".to_string(),
    ] {
        assert!(keys.contains(&key), "{key} in {keys:?}");
    }
    fixture.apply();

    // EC2 holds the PowerShell block uncompressed (EC2Launch does not
    // decompress), launched from the newest Windows Server 2022 image.
    let (user_data, compressed, image) = latest_user_data(&fixture, WINDOWS).await;
    assert!(!compressed, "a Windows node's user-data is not gzip");
    assert_eq!(image, NEWEST_WINDOWS_2022);
    assert!(user_data.starts_with("<powershell>\n"), "{user_data}");
    assert!(
        user_data.contains("(Read-StoreObject 'pki/ca.crt')"),
        "{user_data}"
    );
    assert!(
        user_data.contains("(Read-StoreObject 'secrets/bootstrap-token')"),
        "{user_data}"
    );
    assert!(user_data.contains(&format!("$Bucket = '{}'", fixture.bucket)));
    assert!(user_data.contains("$Taints = 'os=windows:NoSchedule'"));
    let token = fixture
        .get_object("secrets/bootstrap-token")
        .expect("the token is stored");
    let token = String::from_utf8(token).expect("text");
    assert!(
        !user_data.contains(token.trim()),
        "the token is read on the node, never put in user-data"
    );
    // The Linux groups keep their compressed cloud-config.
    let (linux, linux_compressed, _) = latest_user_data(&fixture, "nodes-us-east-1a").await;
    assert!(linux_compressed && linux.starts_with("#cloud-config"));

    // Refreshed and planned again: nothing to do.
    fixture.assert_no_changes();

    // validate cluster: one node per instance, the Windows one registered as
    // the kubelet does (its EC2 DNS name, kubernetes.io/os=windows, the taint).
    let instances = fixture
        .clients
        .ec2
        .describe_instances()
        .send()
        .await
        .expect("describe instances");
    let api = FakeApiServer::start().await;
    let mut windows_node = None;
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
            .unwrap_or_default()
            .to_string();
        if !group.ends_with(&cluster) {
            continue;
        }
        let name = format!("node-{}", ip.replace('.', "-"));
        if group.starts_with("control-plane") {
            api.add_node(control_plane_node(&name, ip, true));
            for component in STATIC_COMPONENTS {
                api.add_pod(static_pod(component, &name, true));
            }
        } else if group.starts_with(WINDOWS) {
            let mut windows = node(&name, ip, true);
            windows["metadata"]["labels"]["kubernetes.io/os"] = json!("windows");
            windows["spec"]["taints"] =
                json!([{"key": "os", "value": "windows", "effect": "NoSchedule"}]);
            api.add_node(windows);
            windows_node = Some(name);
        } else {
            api.add_node(node(&name, ip, true));
        }
    }
    let windows_node = windows_node.expect("a running Windows instance");
    api.add_daemon_set(daemon_set("kube-proxy", 2, 2));
    let validate = |extra: &[&str]| {
        let mut args = vec!["validate", "cluster", cluster.as_str()];
        args.extend_from_slice(extra);
        fixture
            .command(args)
            .env("SKIFF_KUBERNETES_API", api.url())
            .run()
    };
    let valid = validate(&[]);
    valid.assert_success();
    valid.assert_stdout_contains(&format!("Cluster {cluster} is valid."));
    api.set_ready(&windows_node, false);
    let invalid = validate(&["-o", "json"]);
    invalid.assert_exit(2);
    let report = invalid.stdout_json();
    assert!(
        report["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .any(|problem| problem["kind"] == json!("node")
                && problem["name"] == json!(windows_node)),
        "{report:#}"
    );

    // Windows Server 2025: the Windows group alone rolls, for its image.
    fixture.edit_group(WINDOWS, |document| {
        document["spec"]["image"] = "801119661308/Windows_Server-2025-English-Core-Base-*".into();
    });
    let plan = fixture.plan_json();
    let rolling = rolling_updates(&plan);
    assert_eq!(
        rolling.keys().collect::<Vec<_>>(),
        vec![WINDOWS],
        "{rolling:?}"
    );
    assert!(
        rolling[WINDOWS]
            .iter()
            .any(|reason| reason.contains(WINDOWS_2025)),
        "{rolling:?}"
    );
    fixture.apply();
    let before = fixture.group_instances(WINDOWS).await;
    assert_eq!(before.len(), 1, "{before:?}");
    let rolled = fixture
        .command([
            "rolling-update",
            "cluster",
            cluster.as_str(),
            "--yes",
            "--cloudonly",
            "--validation-interval",
            "100ms",
            "--validation-timeout",
            "30s",
        ])
        .run();
    rolled.assert_success();
    let after = fixture.group_instances(WINDOWS).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before, "the Windows instance was replaced");
    let (_, _, image) = latest_user_data(&fixture, WINDOWS).await;
    assert_eq!(image, WINDOWS_2025);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_windows_group_the_cluster_cannot_serve_is_refused_with_its_field_and_nothing_is_stored()
{
    let fixture = ClusterFixture::new("win-refused.example.com").await;
    fixture.create_zone("example.com").await;
    let cluster = fixture.cluster.clone();
    // Cilium is the default CNI.
    fixture.create_cluster(&["--zones", "us-east-1a", "--node-count", "1"]);
    let before = StoreSnapshot::of_bucket(&fixture.aws, &fixture.bucket);

    let refused = fixture.skiff([
        "create",
        "ig",
        "--name",
        &cluster,
        WINDOWS,
        "--os-family",
        "windows",
    ]);
    refused.assert_failure();
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert!(
        said.contains("spec.networking.cni: cilium has no Windows data plane"),
        "{refused}"
    );
    assert!(
        said.contains("use calico, whose Windows data plane"),
        "{refused}"
    );

    let control_plane = fixture.skiff([
        "create",
        "ig",
        "--name",
        &cluster,
        "control-plane-windows",
        "--role",
        "ControlPlane",
        "--os-family",
        "windows",
    ]);
    control_plane.assert_failure();
    let said = format!("{}{}", control_plane.stdout, control_plane.stderr);
    assert!(
        said.contains(
            "instancegroup/control-plane-windows: spec.osFamily: windows is for worker groups only"
        ),
        "{control_plane}"
    );

    before.assert_unchanged(&StoreSnapshot::of_bucket(&fixture.aws, &fixture.bucket));
    let groups = fixture.skiff(["get", "ig", "--name", &cluster]);
    groups.assert_success();
    assert!(!groups.stdout.contains(WINDOWS), "{groups}");
}

/// A Calico cluster that gains its first Windows group after it was built:
/// the plan rolls the control plane, whose script installs Calico's Windows
/// data plane, and names that as the reason; it opens Calico's VXLAN port
/// between members; the Linux workers do not roll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_windows_group_added_later_rolls_the_control_plane_with_its_reason_and_no_linux_worker() {
    let fixture = ClusterFixture::new("win-later.example.com")
        .await
        .with_env("SKIFF_LOCK_LEASE", "3s");
    fixture.create_zone("example.com").await;
    let cluster = fixture.cluster.clone();
    fixture.create_cluster(&[
        "--zones",
        "us-east-1a",
        "--node-count",
        "1",
        "--networking",
        "calico",
    ]);
    fixture.apply();
    fixture.assert_no_changes();

    fixture
        .skiff([
            "create",
            "ig",
            "--name",
            &cluster,
            WINDOWS,
            "--role",
            "Node",
            "--os-family",
            "windows",
            "--min",
            "1",
            "--max",
            "1",
        ])
        .assert_success();
    let plan = fixture.plan_json();
    let rolling = rolling_updates(&plan);
    assert_eq!(
        rolling.keys().collect::<Vec<_>>(),
        vec!["control-plane-us-east-1a"],
        "{rolling:?}"
    );
    assert_eq!(
        rolling["control-plane-us-east-1a"][0],
        skiff_plans::user_data::WINDOWS_NETWORK_ADDED,
        "{rolling:?}"
    );
    let changes = plan["changes"].as_array().expect("changes");
    let vxlan = changes
        .iter()
        .filter(|change| {
            change["key"]
                .as_str()
                .is_some_and(|key| key.contains("security-group-rules"))
                && change.to_string().contains("4789")
        })
        .count();
    assert!(vxlan >= 1, "no rule for 4789/udp in {plan:#}");
}

/// A Calico cluster whose first control-plane node already ran `kubeadm
/// init` (it claimed `etcd/init-lock`) installed Calico from its manifest:
/// a first Windows group would join with no pod network (skiff does not
/// migrate a running Calico to the Tigera operator), so the spec write is
/// refused, naming the group and what to do, and nothing is stored. Before
/// the cluster is initialized the same group is accepted (the test above).
#[tokio::test]
async fn a_first_windows_group_on_an_initialized_calico_cluster_is_refused_and_nothing_is_stored() {
    let fixture = ClusterFixture::new("win-init.example.com").await;
    fixture.create_zone("example.com").await;
    let cluster = fixture.cluster.clone();
    fixture.create_cluster(&[
        "--zones",
        "us-east-1a",
        "--node-count",
        "1",
        "--networking",
        "calico",
    ]);
    let key = if fixture.prefix.is_empty() {
        format!("{cluster}/etcd/init-lock")
    } else {
        format!("{}/{cluster}/etcd/init-lock", fixture.prefix)
    };
    fixture
        .aws
        .put_object(&fixture.bucket, &key, b"i-0123456789abcdef0\n");
    let groups = |fixture: &ClusterFixture| {
        let listed = fixture.skiff(["get", "ig", "--name", &cluster, "-o", "json"]);
        listed.assert_success();
        listed.stdout_json()["items"]
            .as_array()
            .expect("items")
            .len()
    };
    let before = groups(&fixture);

    let refused = fixture.skiff([
        "create",
        "ig",
        "--name",
        &cluster,
        WINDOWS,
        "--role",
        "Node",
        "--os-family",
        "windows",
    ]);
    refused.assert_failure();
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert!(
        said.contains(&format!("instancegroup/{WINDOWS}: spec.osFamily")),
        "{refused}"
    );
    assert!(
        said.contains("was initialized without Windows groups"),
        "{refused}"
    );
    assert!(said.contains("Tigera operator"), "{refused}");
    assert_eq!(groups(&fixture), before, "nothing stored");
}
