//! Printing: the tables of every section, then the targets of issue 8 with
//! what this run measured against each. Printing only; nothing asserted.

use std::time::Duration;

use skiff_plans::CriticalPath;
use skiff_tests::bench::{print_calls_by_action, print_rows};
use skiff_tests::Stats;

use crate::clusters::{ClusterRuns, Run, Shape};
use crate::get_clusters::GetClusters;
use crate::rollout::Rollout;
use crate::terraform::Comparison;
use crate::Settings;

/// The services whose calls get a column of their own, with their titles.
const SERVICES: [(&str, &str); 7] = [
    ("ec2", "ec2"),
    ("autoscaling", "asg"),
    ("elasticloadbalancing", "elb"),
    ("iam", "iam"),
    ("route53", "r53"),
    ("s3", "s3"),
    ("sts", "sts"),
];

/// Calls of the rolling update that get a column of their own.
const ROLLOUT_OPERATIONS: [(&str, &str); 6] = [
    ("autoscaling:DescribeAutoScalingGroups", "describe asg"),
    ("ec2:DescribeInstances", "describe inst"),
    ("ec2:DescribeLaunchTemplates", "describe lt"),
    ("autoscaling:UpdateAutoScalingGroup", "update asg"),
    (
        "autoscaling:TerminateInstanceInAutoScalingGroup",
        "terminate",
    ),
    ("s3:", "s3"),
];

/// The limits.
const NO_OP_PLAN_CALLS_SLACK: u64 = 3;
const NO_OP_PLAN_WALL: Duration = Duration::from_secs(1);
const APPLY_TO_BOUND: f64 = 1.5;
/// Store and refresh round trips a first apply that keeps skiff's
/// guarantees makes one after another besides the plan's critical path,
/// however fast everything else is: the lock (at best beside the spec's
/// read), the refresh's two levels (the first beside the recorded state's
/// read; the second for what hangs off the first, such as the API's DNS
/// record in its hosted zone), the intents written before the first create,
/// the last write of the outcomes, and the lock's release. The bound plus
/// these is the run's *floor*.
const PROTOCOL_ROUND_TRIPS: u32 = 6;
const TERRAFORM_APPLY_RATIO: f64 = 0.2;
const TERRAFORM_PLAN_RATIO: f64 = 0.1;
const PEAK_MEMORY_KIB: u64 = 64 * 1024;
const GET_CLUSTERS_WALL: Duration = Duration::from_millis(20);

/// Everything measured.
pub struct Report {
    latency_ms: u64,
    /// How many measurements of each cluster its runs are the median of.
    repeat: u32,
    /// The cluster runs, reference first.
    pub clusters: Vec<ClusterRuns>,
    /// The rolling updates.
    pub rollouts: Vec<Rollout>,
    /// The Terraform comparison, if that section ran.
    pub terraform: Option<Comparison>,
    /// `get clusters`, if that section ran.
    pub get_clusters: Option<GetClusters>,
    /// The realistic model, if that section ran.
    pub realistic: Option<crate::realistic::Measured>,
}

impl Report {
    /// An empty report for runs at `latency_ms` per call, each cluster's
    /// the median of `repeat` measurements.
    pub fn new(latency_ms: u64, repeat: u32) -> Report {
        Report {
            latency_ms,
            repeat,
            clusters: Vec::new(),
            rollouts: Vec::new(),
            terraform: None,
            get_clusters: None,
            realistic: None,
        }
    }

    /// Prints every table, then the targets.
    pub fn print(&self, settings: &Settings) {
        println!(
            "bench: {} ms injected before every AWS call; calls counted by the endpoint; \
             peak = skiff's max RSS, anon = its largest anonymous memory (sampled every 10 ms); \
             bound = calls on the plan's critical path x latency",
            self.latency_ms
        );
        if self.repeat > 1 {
            println!(
                "each cluster measured {} times, each on a fresh endpoint: every run shown is the one with the median wall time",
                self.repeat
            );
        }
        if !self.clusters.is_empty() {
            self.print_clusters();
        }
        if !self.rollouts.is_empty() {
            self.print_rollouts(settings);
        }
        match &self.terraform {
            Some(Comparison::Measured { .. }) => self.print_terraform(),
            Some(Comparison::Skipped(why)) => {
                println!();
                println!("Terraform: {why}: not compared");
            }
            None => {}
        }
        if let Some(get) = &self.get_clusters {
            println!();
            println!(
                "skiff get clusters, local store, {} runs: min {:.1} ms, median {:.1} ms, max {:.1} ms",
                get.walls.len(),
                milliseconds(get.walls.first().copied().unwrap_or_default()),
                milliseconds(get.median()),
                milliseconds(get.walls.last().copied().unwrap_or_default()),
            );
        }
        if let Some(measured) = &self.realistic {
            crate::realistic::print(measured);
        }
        self.print_targets();
    }

    fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }

    fn print_clusters(&self) {
        println!();
        let mut header: Vec<String> = [
            "cluster", "groups", "run", "exit", "wall s", "calls", "mutating",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        header.extend(SERVICES.iter().map(|(_, title)| (*title).to_string()));
        header.extend(
            [
                "peak MiB",
                "anon MiB",
                "skiff CPU s",
                "endpoint CPU s",
                "path calls",
                "bound s",
                "wall/bound",
                "after plan/bound",
                "floor s",
                "wall/floor",
            ]
            .iter()
            .map(ToString::to_string),
        );
        let mut rows = vec![header];
        for cluster in &self.clusters {
            let plan_wall = cluster.run("no-op plan").map(|run| run.wall);
            for run in &cluster.runs {
                let mut row = vec![
                    cluster.shape.label(),
                    cluster.groups.to_string(),
                    run.name.to_string(),
                    run.exit_code
                        .map_or_else(|| "killed".to_string(), |code| code.to_string()),
                    format!("{:.2}", run.wall.as_secs_f64()),
                    run.stats.total.to_string(),
                    run.stats.mutating_total().to_string(),
                ];
                row.extend(
                    SERVICES
                        .iter()
                        .map(|(service, _)| service_total(&run.stats, service).to_string()),
                );
                row.push(format!("{:.1}", mebibytes(run.peak_memory_kib)));
                row.push(format!("{:.1}", mebibytes(run.peak_anonymous_kib)));
                row.push(format!("{:.2}", run.cpu.as_secs_f64()));
                row.push(format!("{:.2}", run.stats.cpu_ms as f64 / 1000.0));
                match &run.critical_path {
                    Some(path) => {
                        let bound = path.bound(self.latency());
                        row.push(path.calls.to_string());
                        row.push(format!("{:.2}", bound.as_secs_f64()));
                        row.push(ratio(run.wall, bound));
                        row.push(plan_wall.map_or_else(String::new, |plan| {
                            ratio(run.wall.saturating_sub(plan), bound)
                        }));
                        if run.name == "first apply" {
                            let floor = floor(path, self.latency());
                            row.push(format!("{:.2}", floor.as_secs_f64()));
                            row.push(ratio(run.wall, floor));
                        } else {
                            row.extend(["", ""].map(String::from));
                        }
                    }
                    None => row.extend(["", "", "", "", "", ""].map(String::from)),
                }
                rows.push(row);
            }
        }
        print_rows(&rows);
        println!(
            "(exit 2 of a plan: changes found; delete's bound is that of deleting what the first apply created;\n \
             after plan/bound: the wall time less the no-op plan's, roughly what the apply adds to planning, over the bound;\n \
             floor: the bound plus the {PROTOCOL_ROUND_TRIPS} round trips of the store protocol that a first apply makes one after another\n \
             (lock, two refresh levels, intents, last write, release);\n \
             CPU: skiff's user+system time, and the endpoint's (moto serves one request at a time under Python's lock),\n \
             both on the same cores: where their sum nears cores x wall, the run waits for CPU, not for the network)"
        );

        // Where a count differs between sizes, that run does per-group work.
        for run in ["no-op plan", "first apply"] {
            let columns: Vec<(String, &Stats)> = self
                .clusters
                .iter()
                .filter_map(|cluster| {
                    cluster
                        .run(run)
                        .map(|found| (cluster.shape.label(), &found.stats))
                })
                .collect();
            print_calls_by_action(&format!("{run}: calls by action"), &columns);
        }

        for cluster in &self.clusters {
            if let Some(path) = cluster
                .run("first apply")
                .and_then(|run| run.critical_path.as_ref())
            {
                println!();
                println!(
                    "critical path of the first apply, {} ({} calls): {}",
                    cluster.shape.label(),
                    path.calls,
                    path.chain
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" -> ")
                );
            }
        }
    }

    fn print_rollouts(&self, settings: &Settings) {
        println!();
        println!(
            "rolling update --cloudonly: {} instances, maxUnavailable 0, {} ms boot per instance",
            settings.instances, settings.boot_ms
        );
        println!();
        let baseline = self
            .rollouts
            .iter()
            .find(|rollout| rollout.surge == 1)
            .or(self.rollouts.first())
            .map(|rollout| rollout.wall);
        let mut header: Vec<String> = [
            "surge",
            "exit",
            "replaced",
            "rounds",
            "wall s",
            "vs surge 1",
            "calls",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        header.extend(
            ROLLOUT_OPERATIONS
                .iter()
                .map(|(_, title)| (*title).to_string()),
        );
        header.push("other".to_string());
        header.push("peak MiB".to_string());
        let mut rows = vec![header];
        for rollout in &self.rollouts {
            let mut row = vec![
                rollout.surge.to_string(),
                rollout
                    .exit_code
                    .map_or_else(|| "killed".to_string(), |code| code.to_string()),
                rollout.replaced.to_string(),
                rollout.rounds.to_string(),
                format!("{:.2}", rollout.wall.as_secs_f64()),
                baseline.map_or_else(String::new, |baseline| ratio(rollout.wall, baseline)),
                rollout.stats.total.to_string(),
            ];
            let mut counted = 0;
            for (operation, _) in ROLLOUT_OPERATIONS {
                let count = if operation.ends_with(':') {
                    rollout
                        .stats
                        .count_where(|call| call.starts_with(operation))
                } else {
                    rollout.stats.count(operation)
                };
                counted += count;
                row.push(count.to_string());
            }
            row.push(rollout.stats.total.saturating_sub(counted).to_string());
            row.push(format!("{:.1}", mebibytes(rollout.peak_memory_kib)));
            rows.push(row);
        }
        print_rows(&rows);
    }

    fn print_terraform(&self) {
        let Some(Comparison::Measured { apply, plan }) = &self.terraform else {
            return;
        };
        let Some(reference) = self.reference() else {
            return;
        };
        println!();
        println!("side by side with Terraform, reference HA cluster, same latency, this run");
        println!();
        let mut rows = vec![[
            "run",
            "skiff exit",
            "skiff s",
            "terraform exit",
            "terraform s",
            "skiff/terraform",
            "skiff calls",
            "terraform calls",
            "calls ratio",
        ]
        .map(String::from)
        .to_vec()];
        for (name, skiff, terraform) in [
            ("first apply", reference.run("first apply"), apply),
            ("no-op plan", reference.run("no-op plan"), plan),
        ] {
            let Some(skiff) = skiff else { continue };
            rows.push(vec![
                name.to_string(),
                skiff
                    .exit_code
                    .map_or_else(|| "killed".to_string(), |code| code.to_string()),
                format!("{:.2}", skiff.wall.as_secs_f64()),
                terraform.exit_code.to_string(),
                format!("{:.2}", terraform.wall.as_secs_f64()),
                ratio(skiff.wall, terraform.wall),
                skiff.stats.total.to_string(),
                terraform.stats.total.to_string(),
                format!(
                    "{:.2}",
                    skiff.stats.total as f64 / terraform.stats.total.max(1) as f64
                ),
            ]);
        }
        print_rows(&rows);
        let mut columns: Vec<(String, &Stats)> = Vec::new();
        if let Some(run) = reference.run("first apply") {
            columns.push(("skiff apply".to_string(), &run.stats));
        }
        columns.push(("terraform apply".to_string(), &apply.stats));
        if let Some(run) = reference.run("no-op plan") {
            columns.push(("skiff plan".to_string(), &run.stats));
        }
        columns.push(("terraform plan".to_string(), &plan.stats));
        print_calls_by_action("skiff and Terraform: calls by action", &columns);
    }

    fn reference(&self) -> Option<&ClusterRuns> {
        self.clusters
            .iter()
            .find(|cluster| matches!(cluster.shape, Shape::Reference))
    }

    fn print_targets(&self) {
        println!();
        println!("targets (issues 8 and 19), as measured by this run:");
        let mut lines: Vec<(bool, String)> = Vec::new();

        let by_groups: Vec<(usize, &Run)> = self
            .clusters
            .iter()
            .filter_map(|cluster| match cluster.shape {
                Shape::Groups(groups) => cluster.run("no-op plan").map(|run| (groups, run)),
                Shape::Reference => None,
            })
            .collect();
        if let (Some(smallest), Some(largest)) = (
            by_groups.iter().min_by_key(|(groups, _)| *groups),
            by_groups.iter().max_by_key(|(groups, _)| *groups),
        ) {
            let (low, high) = (smallest.1.stats.total, largest.1.stats.total);
            let mut text = format!(
                "no-op plan calls flat: {low} at {} group(s), {high} at {} groups",
                smallest.0, largest.0
            );
            let mut met = low.abs_diff(high) <= NO_OP_PLAN_CALLS_SLACK;
            if let Some(run) = self
                .reference()
                .and_then(|cluster| cluster.run("no-op plan"))
            {
                text.push_str(&format!(
                    ", {} for the reference (3 zones, private)",
                    run.stats.total
                ));
                met &= run.stats.total.abs_diff(low) <= NO_OP_PLAN_CALLS_SLACK;
            }
            lines.push((met, format!("{text} (within {NO_OP_PLAN_CALLS_SLACK})")));
        }
        if let Some(run) = self
            .reference()
            .and_then(|cluster| cluster.run("no-op plan"))
        {
            lines.push((
                run.wall < NO_OP_PLAN_WALL,
                format!(
                    "no-op plan of the reference under 1 s: {:.2} s",
                    run.wall.as_secs_f64()
                ),
            ));
        }
        for cluster in &self.clusters {
            if let Some(run) = cluster.run("first apply") {
                if let Some(path) = run.critical_path.as_ref().filter(|_| self.latency_ms > 0) {
                    let bound = path.bound(self.latency());
                    lines.push((
                        run.wall.as_secs_f64() <= APPLY_TO_BOUND * bound.as_secs_f64(),
                        format!(
                            "first apply of {} at most {APPLY_TO_BOUND}x its bound: {:.2} s / {:.2} s = {} (its floor, with the store protocol: {:.2} s, {})",
                            cluster.shape.label(),
                            run.wall.as_secs_f64(),
                            bound.as_secs_f64(),
                            ratio(run.wall, bound),
                            floor(path, self.latency()).as_secs_f64(),
                            ratio(run.wall, floor(path, self.latency())),
                        ),
                    ));
                }
            }
        }
        if let (Some(Comparison::Measured { apply, plan }), Some(reference)) =
            (&self.terraform, self.reference())
        {
            for (name, limit, skiff, terraform) in [
                (
                    "first apply",
                    TERRAFORM_APPLY_RATIO,
                    reference.run("first apply"),
                    apply,
                ),
                (
                    "no-op plan",
                    TERRAFORM_PLAN_RATIO,
                    reference.run("no-op plan"),
                    plan,
                ),
            ] {
                let Some(skiff) = skiff else { continue };
                let time = skiff.wall.as_secs_f64() / terraform.wall.as_secs_f64().max(1e-9);
                lines.push((
                    time <= limit,
                    format!("{name} at most {limit}x Terraform's wall time: {time:.3}"),
                ));
                lines.push((
                    skiff.stats.total < terraform.stats.total,
                    format!(
                        "{name} with fewer calls than Terraform: {} vs {}",
                        skiff.stats.total, terraform.stats.total
                    ),
                ));
            }
        }
        if let Some(cluster) = self
            .clusters
            .iter()
            .filter(|cluster| matches!(cluster.shape, Shape::Groups(_)))
            .max_by_key(|cluster| cluster.groups)
        {
            let peak = cluster
                .runs
                .iter()
                .map(|run| run.peak_memory_kib)
                .max()
                .unwrap_or(0);
            let anonymous = cluster
                .runs
                .iter()
                .map(|run| run.peak_anonymous_kib)
                .max()
                .unwrap_or(0);
            lines.push((
                peak < PEAK_MEMORY_KIB,
                format!(
                    "peak memory under 64 MiB at {}: {:.1} MiB max RSS, of which at most {:.1} MiB \
                     anonymous (heap, stacks; the rest is the binary's pages) (largest of its runs)",
                    cluster.shape.label(),
                    mebibytes(peak),
                    mebibytes(anonymous)
                ),
            ));
        }
        if let Some(get) = &self.get_clusters {
            lines.push((
                get.median() < GET_CLUSTERS_WALL,
                format!(
                    "get clusters on a local store under 20 ms: median {:.1} ms",
                    milliseconds(get.median())
                ),
            ));
        }
        if let Some(measured) = &self.realistic {
            for (text, limit, ratio) in crate::realistic::targets(measured) {
                match ratio {
                    Some(ratio) => lines.push((ratio <= limit, format!("{text}: {ratio:.3}"))),
                    None => lines.push((false, format!("{text}: not measured"))),
                }
            }
        }
        if self.latency_ms == 0 {
            println!("  (no latency injected: no bound to compare the applies with)");
        }
        for (met, text) in lines {
            println!("  [{}] {text}", if met { "met" } else { "NOT MET" });
        }
    }
}

fn service_total(stats: &Stats, service: &str) -> u64 {
    stats.count_where(|call| call.split(':').next() == Some(service))
}

fn ratio(part: Duration, whole: Duration) -> String {
    if whole.is_zero() {
        String::new()
    } else {
        format!("{:.2}", part.as_secs_f64() / whole.as_secs_f64())
    }
}

fn mebibytes(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The least wall time of a first apply that keeps skiff's guarantees:
/// the critical-path bound plus [`PROTOCOL_ROUND_TRIPS`] round trips.
fn floor(path: &CriticalPath, latency: Duration) -> Duration {
    path.bound(latency) + latency * PROTOCOL_ROUND_TRIPS
}
