//! The cluster addons (`spec.addons`, issue 18) through the real binary
//! against the local endpoint: the plan lists each enabled addon as an
//! `addon/<name>` resource with its release; the apply writes the manifests
//! and the index to the store's `addons/` folder; planning again finds
//! nothing to change; turning metrics-server off plans its delete and rolls
//! no group; cluster-autoscaler puts its auto-discovery tags on the worker
//! groups only when it is on; `delete cluster` leaves no `addons/` object.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::common::cluster::ClusterFixture;

/// The plan's changes of kind `addon`: key -> (action, release).
fn addon_changes(plan: &serde_json::Value) -> BTreeMap<String, (String, String)> {
    plan["changes"]
        .as_array()
        .expect("a list of changes")
        .iter()
        .filter(|change| change["kind"] == "addon")
        .map(|change| {
            let attributes = if change["desired"].is_null() {
                &change["current"]
            } else {
                &change["desired"]
            };
            (
                change["key"].as_str().expect("a key").to_owned(),
                (
                    change["action"].as_str().expect("an action").to_owned(),
                    attributes["version"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ),
            )
        })
        .collect()
}

/// The store's addon index as (name, release, minor, sha256) lines.
fn index(fixture: &ClusterFixture) -> Vec<Vec<String>> {
    let bytes = fixture
        .get_object("addons/index")
        .expect("addons/index exists");
    String::from_utf8(bytes)
        .expect("text")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The auto-discovery tags of a group's auto scaling group.
async fn autoscaler_tags(fixture: &ClusterFixture, group: &str) -> BTreeMap<String, String> {
    fixture
        .clients
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(fixture.group_resource(group))
        .send()
        .await
        .expect("describe auto scaling groups")
        .auto_scaling_groups()
        .iter()
        .flat_map(|group| group.tags())
        .filter_map(|tag| Some((tag.key()?.to_owned(), tag.value()?.to_owned())))
        .filter(|(key, _)| key.starts_with("k8s.io/cluster-autoscaler/"))
        .collect()
}

fn set_addon(document: &mut serde_norway::Value, field: &str, enabled: bool) {
    document["spec"]["addons"][field]["enabled"] = enabled.into();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addons_are_planned_written_removed_and_deleted_with_the_cluster() {
    let fixture = ClusterFixture::new("c31.example.com").await;
    let cluster = fixture.cluster.clone();
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a", "--node-count", "1"]);

    // The defaults: cloud-controller-manager, EBS CSI, metrics-server.
    let plan = fixture.plan_json();
    let changes = addon_changes(&plan);
    assert_eq!(
        changes.keys().cloned().collect::<Vec<_>>(),
        [
            "addon/cloud-controller-manager",
            "addon/ebs-csi-driver",
            "addon/metrics-server"
        ],
        "{plan:#}"
    );
    assert!(changes
        .values()
        .all(|(action, version)| action == "create" && version.starts_with('v')));
    let (_, metrics_release) = changes["addon/metrics-server"].clone();
    let preview = fixture.skiff(["update", "cluster", &cluster]);
    preview.assert_success();
    assert!(
        preview
            .stdout
            .contains(&format!("addon/metrics-server  create {metrics_release}")),
        "{preview}"
    );

    fixture.apply();
    let lines = index(&fixture);
    assert_eq!(
        lines
            .iter()
            .map(|line| line[0].as_str())
            .collect::<Vec<_>>(),
        [
            "cloud-controller-manager",
            "ebs-csi-driver",
            "metrics-server"
        ]
    );
    for line in &lines {
        let manifest = fixture
            .get_object(&format!("addons/{}.yaml", line[0]))
            .unwrap_or_else(|| panic!("no manifest of {}", line[0]));
        assert_eq!(
            line[3],
            sha256(&manifest),
            "{}: the index names its manifest",
            line[0]
        );
        assert_eq!(line[2], "1.34", "{}: for the cluster's minor", line[0]);
        assert!(String::from_utf8_lossy(&manifest).contains("@sha256:"));
    }
    fixture.assert_no_changes();

    // What a control-plane node recorded it holds back (etcd/addons/status)
    // shows in the preview, naming the addon, its release and why; an entry
    // about another manifest than the index's is stale and not shown.
    let ebs = lines
        .iter()
        .find(|line| line[0] == "ebs-csi-driver")
        .expect("the EBS CSI driver's line");
    let status = format!(
        "# written by i-0aaaaaaaaaaaaaaa1 at 2026-12-07T08:00:00Z\n\
         held ebs-csi-driver {} {} {} waits until every kube-apiserver runs Kubernetes {}: ip-10-0-1-5.ec2.internal runs v1.33.6\n\
         held metrics-server {metrics_release} 1.34 {} a manifest the index no longer names\n",
        ebs[1],
        ebs[2],
        ebs[3],
        ebs[2],
        "0".repeat(64)
    );
    fixture.aws.put_object(
        &fixture.bucket,
        &fixture.key("etcd/addons/status"),
        status.as_bytes(),
    );
    let preview = fixture.skiff(["update", "cluster", &cluster]);
    preview.assert_success();
    let note = format!(
        "addon/ebs-csi-driver {} (for Kubernetes {}) is held back by the control plane: waits until every kube-apiserver runs Kubernetes {}: ip-10-0-1-5.ec2.internal runs v1.33.6 (etcd/addons/status, written by i-0aaaaaaaaaaaaaaa1 at 2026-12-07T08:00:00Z)",
        ebs[1], ebs[2], ebs[2]
    );
    assert!(preview.stdout.contains(&note), "{preview}");
    assert!(
        !preview.stdout.contains("addon/metrics-server"),
        "{preview}"
    );
    fixture.assert_no_changes();
    // cluster-autoscaler is off: no discovery tags on any group.
    assert_eq!(
        autoscaler_tags(&fixture, "nodes-us-east-1a").await,
        BTreeMap::new()
    );

    // metrics-server off: its delete, and no group rolls for it.
    fixture.edit_cluster(|document| set_addon(document, "metricsServer", false));
    let plan = fixture.plan_json();
    assert_eq!(
        addon_changes(&plan),
        BTreeMap::from([(
            "addon/metrics-server".to_owned(),
            ("delete".to_owned(), metrics_release.clone())
        )]),
        "{plan:#}"
    );
    assert_eq!(
        plan["changes"].as_array().map(Vec::len),
        Some(1),
        "{plan:#}"
    );
    assert_eq!(plan["rollingUpdates"], serde_json::json!([]), "{plan:#}");
    fixture.apply();
    assert!(fixture.get_object("addons/metrics-server.yaml").is_none());
    assert!(!index(&fixture)
        .iter()
        .any(|line| line[0] == "metrics-server"));
    fixture.assert_no_changes();

    // delete cluster removes the addons with the rest of the store objects.
    fixture
        .skiff(["delete", "cluster", &cluster, "--yes"])
        .assert_success();
    let left = fixture
        .aws
        .list_keys(&fixture.bucket, &fixture.key("addons/"));
    assert_eq!(left, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_autoscaler_tags_the_worker_groups_only_when_it_is_on() {
    let fixture = ClusterFixture::new("c32.example.com").await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a", "--node-count", "1"]);
    fixture.edit_cluster(|document| set_addon(document, "clusterAutoscaler", true));
    let plan = fixture.plan_json();
    assert!(
        addon_changes(&plan).contains_key("addon/cluster-autoscaler"),
        "{plan:#}"
    );
    fixture.apply();
    assert_eq!(
        autoscaler_tags(&fixture, "nodes-us-east-1a").await,
        BTreeMap::from([
            (
                "k8s.io/cluster-autoscaler/enabled".to_owned(),
                "true".to_owned()
            ),
            (
                "k8s.io/cluster-autoscaler/c32.example.com".to_owned(),
                "owned".to_owned()
            ),
        ])
    );
    assert_eq!(
        autoscaler_tags(&fixture, "control-plane-us-east-1a").await,
        BTreeMap::new(),
        "the control plane is never scaled"
    );
    fixture.assert_no_changes();

    // Off again: the tags go, in place (no group rolls).
    fixture.edit_cluster(|document| set_addon(document, "clusterAutoscaler", false));
    let plan = fixture.plan_json();
    assert_eq!(plan["rollingUpdates"], serde_json::json!([]), "{plan:#}");
    fixture.apply();
    assert_eq!(
        autoscaler_tags(&fixture, "nodes-us-east-1a").await,
        BTreeMap::new()
    );
    fixture.assert_no_changes();
}

/// `--target terraform`: Terraform manages the cloud resources only; the
/// addons, like the PKI, are store objects skiff writes when it writes the
/// Terraform, so a Terraform-managed cluster's control plane applies them
/// too, and turning one off removes it from the index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terraform_output_writes_the_addons_the_spec_enables() {
    let fixture = ClusterFixture::new("c32.k8s.local").await;
    let cluster = fixture.cluster.clone();
    fixture.create_cluster(&["--zones", "us-east-1a", "--node-count", "1"]);
    let folder = fixture.home.join("c32-terraform");
    let write = || {
        let output = fixture.skiff([
            "update".as_ref(),
            "cluster".as_ref(),
            cluster.as_ref(),
            "--target".as_ref(),
            "terraform".as_ref(),
            "--out".as_ref(),
            folder.as_os_str(),
        ]);
        output.assert_success();
        output
    };

    let first = write();
    let names = |lines: &[Vec<String>]| -> Vec<String> {
        lines.iter().map(|line| line[0].clone()).collect()
    };
    let lines = index(&fixture);
    assert_eq!(
        names(&lines),
        [
            "cloud-controller-manager",
            "ebs-csi-driver",
            "metrics-server"
        ],
        "{first}"
    );
    for line in &lines {
        let manifest = fixture
            .get_object(&format!("addons/{}.yaml", line[0]))
            .unwrap_or_else(|| panic!("no manifest of {}", line[0]));
        assert_eq!(
            sha256(&manifest),
            line[3],
            "{} manifest and index line",
            line[0]
        );
    }
    assert!(
        first.stderr.contains("addons") || first.stdout.contains("addons"),
        "the addons written are said: {first}"
    );
    let configuration = std::fs::read_to_string(folder.join("skiff.tf.json")).expect("read");
    assert!(
        !configuration.contains("\"aws_s3_object\""),
        "Terraform never manages the addons' objects"
    );

    // Written again unchanged: the same index, nothing said about addons.
    let again = write();
    assert_eq!(index(&fixture), lines);
    assert!(!again.stderr.contains("addons:"), "{again}");

    // metrics-server off: out of the index, its manifest gone.
    fixture.edit_cluster(|document| set_addon(document, "metricsServer", false));
    write();
    assert_eq!(
        names(&index(&fixture)),
        ["cloud-controller-manager", "ebs-csi-driver"]
    );
    assert!(fixture.get_object("addons/metrics-server.yaml").is_none());
}
