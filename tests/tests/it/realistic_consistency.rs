//! skiff converges on an endpoint that is as inconsistent as AWS: the HA
//! private reference cluster is applied, re-planned (zero changes), rolled
//! and deleted with each of the local endpoint's consistency behaviours on
//! (see "Realistic AWS" in `tests/harness/local_aws.py`):
//! - eventual consistency: what a create returns stays unknown (NotFound in
//!   each service's wire format, left out of listings) for a while;
//! - IAM propagation: a new instance profile cannot be launched with for a
//!   while;
//! - EC2's token buckets: `RequestLimitExceeded` once an action's bucket is
//!   empty.
//!
//! Each run ends with the same resources as a run on a consistent endpoint
//! (the inventories' shapes are equal), no duplicates, no orphans, and
//! nothing left after the delete. Durations run at a twentieth of AWS time.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cloud::{Bench, Inventory};
use skiff_tests::{LocalAwsOptions, Realism};
use tokio::sync::OnceCell;

/// Wall time per unit of AWS time.
const TIME_SCALE: f64 = 0.05;
/// The older Ubuntu 24.04 amd64 image in `tests/harness/amis.json`: the
/// rolling update's image change.
const OLDER_NOBLE_AMD64: &str = "ami-0a9f8e7d6c5b40115";
/// The node group the rolling update replaces.
const NODES: &str = "nodes-us-east-1a";

type Shape = BTreeMap<String, Vec<String>>;

/// What a consistent endpoint holds: before anything (the region's
/// defaults) and after the first apply.
struct Baseline {
    empty: Shape,
    applied: Shape,
}

static BASELINE: OnceCell<Baseline> = OnceCell::const_new();

/// The reference cluster applied once on a consistent endpoint (computed
/// once per test process).
async fn baseline() -> &'static Baseline {
    BASELINE
        .get_or_init(|| async {
            let mut bench = Bench::start_with(options(Realism::scaled(TIME_SCALE))).await;
            bench.fresh_cluster().await;
            let empty = bench.inventory().await.shape();
            bench.apply_command().run().assert_success();
            let applied = bench.inventory().await.shape();
            Baseline { empty, applied }
        })
        .await
}

fn options(realism: Realism) -> LocalAwsOptions {
    LocalAwsOptions {
        realism,
        ..LocalAwsOptions::default()
    }
}

/// How long each step took.
#[derive(Debug, Default)]
struct Timings {
    apply: Duration,
    replan: Duration,
    roll: Duration,
    delete: Duration,
}

fn timed(step: &str, command: skiff_tests::Skiff, took: &mut Duration) -> skiff_tests::SkiffOutput {
    let started = Instant::now();
    let output = command.run();
    *took = started.elapsed();
    output.assert_no_panic();
    assert!(output.success(), "{step} failed\n{output}");
    output
}

fn assert_same_resources(what: &str, actual: &Inventory, expected: &Shape) {
    let duplicates = actual.duplicates();
    assert!(
        duplicates.is_empty(),
        "{what}: duplicated resources:\n  {}",
        duplicates.join("\n  ")
    );
    let shape = actual.shape();
    if &shape != expected {
        let mut differences = Vec::new();
        for category in shape.keys().chain(expected.keys()) {
            let (got, want) = (shape.get(category), expected.get(category));
            if got != want && !differences.iter().any(|line: &String| line.starts_with(category)) {
                differences.push(format!("{category}: got {got:?}\n    expected {want:?}"));
            }
        }
        panic!(
            "{what}: the endpoint holds other resources than after a run on a consistent endpoint:\n  {}",
            differences.join("\n  ")
        );
    }
}

/// Apply, zero-diff re-plan, an image change rolled out, delete: each must
/// succeed, and the endpoint must hold what a consistent one would.
async fn converges_under(realism: Realism, behaviour: &str) -> Timings {
    let baseline = baseline().await;
    let mut bench = Bench::start_with(options(realism)).await;
    bench.fresh_cluster().await;
    let mut timings = Timings::default();

    timed(
        &format!("apply under {behaviour}"),
        bench.apply_command(),
        &mut timings.apply,
    );
    let applied = bench.inventory().await;
    assert_same_resources(&format!("after the apply under {behaviour}"), &applied, &baseline.applied);
    bench.assert_no_orphans(&applied, behaviour);

    let started = Instant::now();
    bench.assert_converged(&format!("re-plan under {behaviour}"));
    timings.replan = started.elapsed();

    bench.edit_group(NODES, |document| {
        document["spec"]["image"] = OLDER_NOBLE_AMD64.into();
    });
    let mut changed = Duration::ZERO;
    timed(
        &format!("apply of the image change under {behaviour}"),
        bench.apply_command(),
        &mut changed,
    );
    timed(
        &format!("rolling update under {behaviour}"),
        bench.rolling_update_command(),
        &mut timings.roll,
    );
    bench.assert_converged(&format!("re-plan after the rolling update under {behaviour}"));
    let rolled = bench.inventory().await;
    assert_same_resources(&format!("after the rolling update under {behaviour}"), &rolled, &baseline.applied);
    bench.assert_no_orphans(&rolled, behaviour);

    timed(
        &format!("delete under {behaviour}"),
        bench.delete_command(),
        &mut timings.delete,
    );
    let left = bench.inventory().await;
    assert_eq!(
        left.count(),
        0,
        "after the delete under {behaviour}, resources of the cluster are left: {:#?}",
        left.items
    );
    assert_same_resources(&format!("after the delete under {behaviour}"), &left, &baseline.empty);
    eprintln!("{behaviour}: {timings:?}");
    timings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_cluster_converges_under_eventual_consistency() {
    // Two seconds of AWS time, what the EC2 API reference's examples and
    // Terraform's retries on "not found" after a create allow for.
    converges_under(
        Realism {
            consistency_ms: 2_000,
            ..Realism::scaled(TIME_SCALE)
        },
        "eventual consistency",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_cluster_converges_under_iam_propagation() {
    converges_under(
        Realism {
            iam_propagation_ms: 8_000,
            ..Realism::scaled(TIME_SCALE)
        },
        "IAM propagation",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_cluster_converges_under_ec2_token_buckets() {
    converges_under(
        Realism {
            token_buckets: true,
            ..Realism::scaled(TIME_SCALE)
        },
        "EC2 token buckets",
    )
    .await;
}
