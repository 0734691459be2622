//! Issue 19: the whole realistic model of AWS at once (eventual
//! consistency, IAM propagation, token buckets, slow readiness of NAT
//! gateways, load balancers and instances, slow deletes that hold subnets,
//! addresses and security groups: `LocalAwsOptions::realistic`), run at a
//! fiftieth of real time. The HA private reference cluster is applied,
//! planned again (zero changes), changed and rolled, and deleted; at each
//! step the endpoint must hold exactly what a reliable endpoint holds after
//! the same step. Each behaviour on its own is tested beside its model
//! (`realistic_consistency`, `realistic_slowness`).

use std::time::Duration;

use serde_norway::Value;
use skiff_tests::LocalAwsOptions;

use crate::common::cloud::*;

/// A fiftieth of AWS's durations: a NAT gateway is ready in 1.8 s, a load
/// balancer in 3 s, instances boot in 1.2 s, a deleted load balancer's
/// interfaces linger 2.4 s.
const TIME_SCALE: f64 = 0.02;
/// One skiff run under the model (the waits are seconds, the retries add a
/// little).
const MODEL_RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// The node group the test changes and rolls.
const ROLLED_GROUP: &str = "nodes-us-east-1a";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_realistic_behaviour_at_once_converges_to_what_a_reliable_endpoint_holds() {
    let expected = {
        let mut reliable = Bench::new().await;
        baseline(&mut reliable).await.0
    };

    let mut bench = Bench::start_with(LocalAwsOptions {
        latency_ms: LATENCY_MS,
        ..LocalAwsOptions::realistic(TIME_SCALE)
    })
    .await;
    bench.fresh_cluster().await;

    // Apply, then a plan with nothing to do.
    let applied = bench.apply_command().timeout(MODEL_RUN_TIMEOUT).run();
    applied.assert_success();
    bench.assert_converged("the apply under the realistic model");
    let inventory = bench.inventory().await;
    bench.assert_no_orphans(&inventory, "the apply under the realistic model");
    let shape = inventory.shape();
    assert!(
        shape == expected,
        "under the realistic model the endpoint differs from a reliable apply\n  duplicates: {:?}\n  {}",
        inventory.duplicates(),
        shape_difference(&expected, &shape)
    );

    // A change that needs new instances, applied and rolled.
    bench.edit_group(ROLLED_GROUP, |document| {
        document["spec"]["machineType"] = Value::from("t3.large");
    });
    bench
        .apply_command()
        .timeout(MODEL_RUN_TIMEOUT)
        .run()
        .assert_success();
    let rolled = bench
        .rolling_update_command()
        .timeout(MODEL_RUN_TIMEOUT)
        .run();
    rolled.assert_success();
    bench.assert_converged("the rolling update under the realistic model");
    let group_name = format!("{ROLLED_GROUP}.{CLUSTER}");
    let groups = bench
        .clients
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&group_name)
        .send()
        .await
        .expect("describe the rolled group");
    let group = groups
        .auto_scaling_groups()
        .first()
        .unwrap_or_else(|| panic!("{group_name} exists after the roll"));
    let wanted = group
        .launch_template()
        .and_then(|template| template.version())
        .expect("the group names its template version")
        .to_owned();
    assert!(
        !group.instances().is_empty(),
        "{group_name} has instances after the roll"
    );
    for instance in group.instances() {
        let version = instance
            .launch_template()
            .and_then(|template| template.version())
            .unwrap_or_default();
        assert!(
            wanted == "$Latest" || version == wanted,
            "{:?} still runs template version {version}, the group wants {wanted}\n{rolled}",
            instance.instance_id()
        );
    }
    let inventory = bench.inventory().await;
    assert!(
        inventory.duplicates().is_empty(),
        "the roll under the realistic model made duplicates: {:?}",
        inventory.duplicates()
    );
    bench.assert_no_orphans(&inventory, "the roll under the realistic model");

    // Delete: nothing of the cluster is left.
    let deleted = bench.delete_command().timeout(MODEL_RUN_TIMEOUT).run();
    deleted.assert_success();
    let left = bench.inventory().await;
    assert_eq!(
        left.count(),
        0,
        "the delete under the realistic model left resources behind: {left:#?}\n{deleted}"
    );
}
