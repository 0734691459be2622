//! The rolling update: how long a `--cloudonly` roll of one node group
//! takes, and how many calls it makes, for a given `maxSurge`.
//!
//! With `maxUnavailable: 0`, a group of N instances is replaced in about
//! N / maxSurge rounds (grow, terminate a batch, wait until the group is
//! whole again), so the wall time should fall roughly in proportion to the
//! surge; if it does not, something in the loop is serial per instance.
//! moto puts a launched instance in service at once; `--boot-ms` makes the
//! endpoint report each new instance `Pending` first, the shape of a real
//! roll.

use std::time::Duration;

use serde_json::Value;
use skiff_tests::bench::BenchCloud;
use skiff_tests::{LocalAwsOptions, SkiffOutput, Stats};

use crate::clusters::CLUSTER;
use crate::Settings;

const ZONE: &str = "us-east-1a";
const NODES: &str = "nodes-us-east-1a";
/// The older Ubuntu 24.04 amd64 image in `tests/harness/amis.json` (the
/// default image pattern resolves to the newer one): the image change.
const OLDER_NOBLE_AMD64: &str = "ami-0a9f8e7d6c5b40115";

/// One measured rolling update.
#[derive(Clone, Debug)]
pub struct Rollout {
    /// The group's maxSurge.
    pub surge: u32,
    /// Exit code (`None`: killed).
    pub exit_code: Option<i32>,
    /// Wall time.
    pub wall: Duration,
    /// Batches terminated (`terminated` events grouped by round).
    pub rounds: usize,
    /// Instances terminated.
    pub replaced: usize,
    /// The calls the endpoint received meanwhile.
    pub stats: Stats,
    /// skiff's peak resident memory.
    pub peak_memory_kib: u64,
}

/// Creates a one-zone cluster whose node group has `--instances`
/// instances and the given surge, applies it, changes the group's image,
/// applies again (every instance is now out of date), then times
/// `skiff rolling-update cluster --yes --cloudonly`.
pub async fn measure(surge: u32, settings: &Settings) -> Result<Rollout, String> {
    eprintln!(
        "== rolling update: maxSurge {surge}, {} instances, {} ms per call, {} ms boot",
        settings.instances, settings.latency_ms, settings.boot_ms
    );
    let cloud = BenchCloud::start(LocalAwsOptions {
        latency_ms: settings.latency_ms,
        boot_ms: settings.boot_ms,
        ..LocalAwsOptions::default()
    })
    .await?;
    let instances = settings.instances.to_string();
    cloud.succeed(cloud.skiff(&[
        "create",
        "cluster",
        CLUSTER,
        "--zones",
        ZONE,
        "--node-count",
        &instances,
    ]))?;
    cloud.edit_group(CLUSTER, NODES, &|document| {
        document["spec"]["minSize"] = settings.instances.into();
        document["spec"]["maxSize"] = settings.instances.into();
        document["spec"]["rollingUpdate"] =
            serde_json::json!({ "maxSurge": surge, "maxUnavailable": 0 });
    })?;
    eprintln!("   first apply");
    cloud.succeed(cloud.skiff(&["update", "cluster", CLUSTER, "--yes"]))?;
    cloud.edit_group(CLUSTER, NODES, &|document| {
        document["spec"]["image"] = OLDER_NOBLE_AMD64.into();
    })?;
    eprintln!("   applying the image change");
    cloud.succeed(cloud.skiff(&["update", "cluster", CLUSTER, "--yes"]))?;

    cloud.aws.reset_stats();
    let output = cloud
        .skiff(&[
            "rolling-update",
            "cluster",
            CLUSTER,
            "--yes",
            "--cloudonly",
            "--validation-interval",
            "200ms",
            "--instance-group",
            NODES,
            "-o",
            "json",
        ])
        .run();
    let stats = cloud.aws.stats();
    if !output.success() {
        eprintln!("{output}");
    }
    let (rounds, replaced) = rounds_and_replaced(&output);
    eprintln!(
        "   rolling update: exit {:?}, {:.2} s, {} calls, {replaced} replaced in {rounds} rounds",
        output.code,
        output.duration.as_secs_f64(),
        stats.total
    );
    Ok(Rollout {
        surge,
        exit_code: output.code,
        wall: output.duration,
        rounds,
        replaced,
        stats,
        peak_memory_kib: output.peak_memory_kib,
    })
}

/// From the `-o json` events: the number of batches (runs of `terminated`
/// events between validations) and of instances terminated.
fn rounds_and_replaced(output: &SkiffOutput) -> (usize, usize) {
    let mut rounds = 0;
    let mut replaced = 0;
    let mut in_batch = false;
    for event in output
        .stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
    {
        if event["event"] == "terminated" {
            replaced += 1;
            if !in_batch {
                rounds += 1;
                in_batch = true;
            }
        } else {
            in_batch = false;
        }
    }
    (rounds, replaced)
}
