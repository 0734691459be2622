//! The cluster runs: first apply, no-op plan, a one-field change planned
//! and applied, and `delete cluster`, each timed and counted on a fresh
//! endpoint, each apply with its critical-path bound.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use skiff_plans::plan::{Action, Plan, ResourceChange};
use skiff_plans::resolve::{resolve, KnownOutputs};
use skiff_plans::{critical_path, CriticalPath};
use skiff_tests::bench::BenchCloud;
use skiff_tests::{LocalAwsOptions, SkiffOutput, Stats, HA_PRIVATE_CLUSTER};

use crate::Settings;

/// The cluster every run builds.
pub const CLUSTER: &str = "bench.example.com";
/// The machine type the one-field change sets (the default is t3.medium).
const CHANGED_MACHINE_TYPE: &str = "t3.large";

/// Which cluster.
#[derive(Clone, Debug)]
pub enum Shape {
    /// The HA private cluster over three zones.
    Reference,
    /// A one-zone public cluster with this many instance groups.
    Groups(usize),
}

impl Shape {
    /// Its name in the tables.
    pub fn label(&self) -> String {
        match self {
            Shape::Reference => "reference HA".to_string(),
            Shape::Groups(1) => "1 group".to_string(),
            Shape::Groups(groups) => format!("{groups} groups"),
        }
    }
}

/// `skiff create cluster` arguments of the reference cluster (also what the
/// Terraform comparison writes Terraform for).
pub fn reference_create_arguments() -> Vec<&'static str> {
    let mut arguments = vec!["create", "cluster", CLUSTER];
    arguments.extend(HA_PRIVATE_CLUSTER);
    arguments
}

/// One timed run of skiff.
#[derive(Clone, Debug)]
pub struct Run {
    /// What it did: "first apply", "no-op plan", ...
    pub name: &'static str,
    /// Its exit code (`None`: killed).
    pub exit_code: Option<i32>,
    /// Wall time.
    pub wall: Duration,
    /// The calls the endpoint received meanwhile.
    pub stats: Stats,
    /// skiff's peak resident memory.
    pub peak_memory_kib: u64,
    /// skiff's largest anonymous memory (heap, stacks), sampled.
    pub peak_anonymous_kib: u64,
    /// skiff's CPU time (user and system).
    pub cpu: Duration,
    /// For an apply: the critical path of what it applied.
    pub critical_path: Option<CriticalPath>,
}

impl Run {
    fn new(name: &'static str, output: &SkiffOutput, stats: Stats) -> Run {
        Run {
            name,
            exit_code: output.code,
            wall: output.duration,
            stats,
            peak_memory_kib: output.peak_memory_kib,
            peak_anonymous_kib: output.peak_anonymous_kib,
            cpu: output.cpu,
            critical_path: None,
        }
    }
}

/// The runs of one cluster.
#[derive(Clone, Debug)]
pub struct ClusterRuns {
    /// Which cluster.
    pub shape: Shape,
    /// Instance groups in its spec.
    pub groups: usize,
    /// In order: first apply, no-op plan, change plan, change apply, delete.
    pub runs: Vec<Run>,
}

impl ClusterRuns {
    /// The run called `name`.
    pub fn run(&self, name: &str) -> Option<&Run> {
        self.runs.iter().find(|run| run.name == name)
    }
}

/// Of several measurements of one cluster, for every run the one with the
/// median wall time (the upper one of an even count): a whole run, so that
/// its calls, memory and path stay its own.
pub fn median(measured: Vec<ClusterRuns>) -> Option<ClusterRuns> {
    let first = measured.first()?;
    let runs = first
        .runs
        .iter()
        .map(|run| {
            let mut same: Vec<&Run> = measured
                .iter()
                .filter_map(|cluster| cluster.run(run.name))
                .collect();
            same.sort_by_key(|run| run.wall);
            same[same.len() / 2].clone()
        })
        .collect();
    Some(ClusterRuns {
        shape: first.shape.clone(),
        groups: first.groups,
        runs,
    })
}

/// Builds the cluster on a fresh endpoint and measures its runs.
pub async fn measure(shape: &Shape, settings: &Settings) -> Result<ClusterRuns, String> {
    eprintln!("== {}, {} ms per call", shape.label(), settings.latency_ms);
    let cloud = BenchCloud::start(LocalAwsOptions {
        latency_ms: settings.latency_ms,
        ..LocalAwsOptions::default()
    })
    .await?;
    create_spec(&cloud, shape)?;
    let groups = cloud.group_names(CLUSTER)?;
    // The group the change edits: a node group if there is one.
    let changed_group = groups
        .iter()
        .find(|name| name.starts_with("nodes"))
        .or(groups.last())
        .cloned()
        .ok_or("the spec lists no instance group")?;

    let mut runs = Vec::new();
    let apply = ["update", "cluster", CLUSTER, "--yes", "-o", "json"];
    let preview = ["update", "cluster", CLUSTER, "--detailed-exitcode"];

    let (first_apply, first_plan) = timed_apply(&cloud, "first apply", &apply)?;
    runs.push(first_apply);
    runs.push(timed(&cloud, "no-op plan", &preview));

    cloud.edit_group(CLUSTER, &changed_group, &|document| {
        document["spec"]["machineType"] = Value::from(CHANGED_MACHINE_TYPE);
    })?;
    runs.push(timed(&cloud, "change plan", &preview));
    runs.push(timed_apply(&cloud, "change apply", &apply)?.0);

    let mut delete = timed(
        &cloud,
        "delete cluster",
        &["delete", "cluster", CLUSTER, "--yes"],
    );
    delete.critical_path = first_plan
        .as_ref()
        .map(|plan| critical_path(&teardown(plan)));
    runs.push(delete);
    Ok(ClusterRuns {
        shape: shape.clone(),
        groups: groups.len(),
        runs,
    })
}

/// Writes the cluster's spec to the store (nothing in AWS yet).
fn create_spec(cloud: &BenchCloud, shape: &Shape) -> Result<(), String> {
    match shape {
        Shape::Reference => {
            cloud.succeed(cloud.skiff(&reference_create_arguments()))?;
        }
        Shape::Groups(groups) => {
            // One control-plane group and one node group, then as many node
            // groups more (or fewer) as wanted.
            cloud.succeed(cloud.skiff(&["create", "cluster", CLUSTER, "--zones", "us-east-1a"]))?;
            if *groups == 1 {
                cloud.succeed(cloud.skiff(&[
                    "delete",
                    "ig",
                    "--name",
                    CLUSTER,
                    "nodes-us-east-1a",
                    "--yes",
                ]))?;
            }
            for index in 2..*groups {
                let name = format!("workers-{index:03}");
                cloud.succeed(cloud.skiff(&[
                    "create", "ig", "--name", CLUSTER, &name, "--min", "1", "--max", "1",
                ]))?;
            }
        }
    }
    Ok(())
}

/// Runs `skiff ARGUMENTS`, counting the calls it makes.
fn timed(cloud: &BenchCloud, name: &'static str, arguments: &[&str]) -> Run {
    cloud.aws.reset_stats();
    let output = cloud.skiff(arguments).run();
    let run = Run::new(name, &output, cloud.aws.stats());
    eprintln!(
        "   {name}: exit {:?}, {:.2} s, {} calls, {} MiB",
        output.code,
        output.duration.as_secs_f64(),
        run.stats.total,
        run.peak_memory_kib / 1024
    );
    if !output.success() && output.code != Some(2) {
        eprintln!("{output}");
    }
    run
}

/// [`timed`] for `update cluster --yes -o json`, whose standard output is
/// the plan it applied: also returns that plan, and its critical path.
fn timed_apply(
    cloud: &BenchCloud,
    name: &'static str,
    arguments: &[&str],
) -> Result<(Run, Option<Plan>), String> {
    cloud.aws.reset_stats();
    let output = cloud.skiff(arguments).run();
    let mut run = Run::new(name, &output, cloud.aws.stats());
    let plan: Option<Plan> = serde_json::from_str(&output.stdout).ok();
    run.critical_path = plan.as_ref().map(critical_path);
    eprintln!(
        "   {name}: exit {:?}, {:.2} s, {} calls, {} MiB, critical path {} calls",
        output.code,
        output.duration.as_secs_f64(),
        run.stats.total,
        run.peak_memory_kib / 1024,
        run.critical_path
            .as_ref()
            .map_or_else(|| "?".to_string(), |path| path.calls.to_string())
    );
    if !output.success() {
        return Err(output.to_string());
    }
    Ok((run, plan))
}

/// The plan that deletes what `plan` created: its bound stands in for
/// `delete cluster`'s, which prints no plan. References between the
/// resources are given placeholder values, so that what a delete does
/// with them (detach a gateway from its VPC, a role from its profile)
/// counts.
pub fn teardown(plan: &Plan) -> Plan {
    let mut known: KnownOutputs = BTreeMap::new();
    for change in &plan.changes {
        if let Some(desired) = &change.desired {
            for reference in desired.references() {
                known
                    .entry(reference.key)
                    .or_default()
                    .insert(reference.output, "placeholder".to_string());
            }
        }
    }
    let changes: Vec<ResourceChange> = plan
        .changes
        .iter()
        .filter(|change| change.action == Action::Create)
        .map(|change| ResourceChange {
            action: Action::Delete,
            current: change
                .desired
                .as_ref()
                .map(|desired| resolve(desired, &known)),
            desired: None,
            depends_on: Vec::new(),
            ..change.clone()
        })
        .collect();
    Plan {
        changes,
        ..plan.clone()
    }
}
