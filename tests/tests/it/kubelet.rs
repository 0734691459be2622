//! `spec.kubelet` and `spec.controlPlane.*.extraArgs` through the real
//! binary against the local endpoint: bad settings are refused with their
//! field path and store nothing; on an applied cluster, a kubelet setting on
//! one group plans a roll of that group only, naming the field, and a
//! control-plane flag plans a roll of the control plane only.

use crate::common::cluster::ClusterFixture;

use serde_norway::Value;
use skiff_tests::StoreSnapshot;

impl ClusterFixture {
    /// `replace -f` of `document` edited by `edit`, which must be refused
    /// (exit 1) with every needle in its output, leaving the store as it was.
    fn assert_replace_refused(
        &self,
        document: &str,
        edit: impl FnOnce(&mut Value),
        needles: &[&str],
    ) {
        let before = StoreSnapshot::of_bucket(&self.aws, &self.bucket);
        let mut parsed: Value = serde_norway::from_str(document).expect("one YAML document");
        edit(&mut parsed);
        let path = self.home.write(
            "refused.yaml",
            serde_norway::to_string(&parsed).expect("serialize"),
        );
        let output = self.skiff([
            "replace".as_ref(),
            "-f".as_ref(),
            path.as_os_str(),
            "--name".as_ref(),
            self.cluster.as_ref(),
        ]);
        output.assert_exit(1).assert_no_panic();
        for needle in needles {
            output.assert_stderr_contains(needle);
        }
        before.assert_unchanged(&StoreSnapshot::of_bucket(&self.aws, &self.bucket));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_and_control_plane_settings_are_refused_by_path_and_roll_only_their_groups() {
    let fixture = ClusterFixture::new("c20.example.com").await;
    let cluster = fixture.cluster.clone();
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a,us-east-1b", "--node-count", "2"]);
    fixture.apply();

    // Refusals: the field's path, nothing stored.
    let group = fixture.skiff([
        "get",
        "ig",
        "--name",
        &cluster,
        "nodes-us-east-1a",
        "-o",
        "yaml",
    ]);
    group.assert_success();
    fixture.assert_replace_refused(
        &group.stdout,
        |document| document["spec"]["kubelet"]["maxPod"] = 200.into(),
        &["spec.kubelet.maxPod", "maxPods"],
    );
    fixture.assert_replace_refused(
        &group.stdout,
        |document| {
            document["spec"]["kubelet"]["evictionSoft"]["memory.available"] = "500Mi".into();
        },
        &[
            "instancegroup/nodes-us-east-1a: spec.kubelet.evictionSoftGracePeriod[\"memory.available\"]",
            "no grace period",
        ],
    );
    let cluster_document = fixture.skiff(["get", "cluster", &cluster, "-o", "yaml"]);
    cluster_document.assert_success();
    fixture.assert_replace_refused(
        &cluster_document.stdout,
        |document| {
            document["spec"]["controlPlane"]["apiServer"]["extraArgs"]
                ["service-cluster-ip-range"] = "10.0.0.0/16".into();
        },
        &[
            "spec.controlPlane.apiServer.extraArgs[\"service-cluster-ip-range\"]",
            "use spec.networking.serviceCIDR",
        ],
    );
    fixture.assert_no_changes();

    // One group's kubelet setting rolls that group only, naming the field.
    fixture.edit_group("nodes-us-east-1a", |document| {
        document["spec"]["kubelet"]["maxPods"] = 250.into();
    });
    let plan = fixture.plan_json();
    assert_eq!(
        plan["rollingUpdates"],
        serde_json::json!([{
            "group": "nodes-us-east-1a",
            "reasons": ["kubelet maxPods (unset) -> 250"]
        }]),
        "{plan:#}"
    );

    // A control-plane flag adds the control plane, and nothing else.
    fixture.edit_cluster(|document| {
        document["spec"]["controlPlane"]["apiServer"]["extraArgs"]["oidc-client-id"] =
            "kubernetes".into();
    });
    let plan = fixture.plan_json();
    let control_plane = plan["rollingUpdates"]
        .as_array()
        .expect("a list")
        .iter()
        .filter(|need| need["group"] != "nodes-us-east-1a")
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(
        control_plane,
        [serde_json::json!({
            "group": "control-plane-us-east-1a",
            "reasons": ["controlPlane apiServer.extraArgs oidc-client-id (unset) -> kubernetes"]
        })],
        "{plan:#}"
    );
    assert_eq!(
        plan["rollingUpdates"].as_array().map(Vec::len),
        Some(2),
        "{plan:#}"
    );
}
