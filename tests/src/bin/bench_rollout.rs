//! `bench_rollout`: how long a `--cloudonly` rolling update of a node group
//! takes, and how many AWS calls it makes, as the group's `maxSurge` grows.
//!
//! Why: `maxSurge` is the knob that trades spare capacity for speed. With
//! `maxUnavailable: 0`, a group of N instances is replaced in about
//! N / maxSurge rounds (grow, terminate a batch, wait until the group is
//! whole again), so the wall time should fall roughly in proportion to the
//! surge. If it does not, something in the loop is serial per instance
//! (one terminate, one progress write, one wait at a time) and a large
//! group rolls no faster with a larger budget. This benchmark shows which
//! it is, and counts the calls, which count against the account's API rate
//! limits.
//!
//! For each surge it starts a local AWS endpoint that sleeps `--latency-ms`
//! before every call (50 ms by default: a round trip to a nearby region),
//! creates the cluster `bench.example.com` in one zone with
//! `skiff create cluster`, sets the node group to `--instances` instances
//! (min = max) with `rollingUpdate: {maxSurge: S, maxUnavailable: 0}`
//! (`skiff get ig -o json`, edit, `skiff replace -f -`), applies it
//! (`skiff update cluster --yes`), changes the group's image, applies again
//! (a new launch-template version; every instance is now out of date), then
//! times
//! `skiff rolling-update cluster bench.example.com --yes --cloudonly
//! --validation-interval 200ms --instance-group nodes-us-east-1a -o json`
//! (the events give the rounds), counting every call the endpoint
//! received. It prints figures and asserts nothing about time.
//!
//! moto puts a launched instance in service at once; a real one boots and
//! joins for minutes, and that wait is what surge saves. `--boot-ms N`
//! makes the endpoint report each new auto scaling instance `Pending` for
//! N ms first (a scaled-down boot), so the figures show the shape of a real
//! roll; with the default 0 they show skiff's own overhead per round.
//!
//! ```text
//! cargo build -p skiff && cargo run -p skiff-tests --bin bench_rollout
//! cargo build -p skiff --release && cargo run -p skiff-tests --bin bench_rollout --release
//! bench_rollout [--surge 1,3,6] [--latency-ms 50] [--instances 12] [--boot-ms 0]
//! ```
//!
//! The `skiff` binary is `$SKIFF_BIN`, else the one built next to this
//! binary (same profile), else the harness's usual search.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;
use skiff_tests::bench::{self, print_rows, use_skiff_of_this_profile};
use skiff_tests::{LocalAws, LocalAwsOptions, SandboxHome, Skiff, SkiffOutput, Stats};

const CLUSTER: &str = "bench.example.com";
const ZONE: &str = "us-east-1a";
const NODES: &str = "nodes-us-east-1a";
/// The older Ubuntu 24.04 amd64 image in `tests/harness/amis.json` (the
/// default image pattern resolves to the newer one): the image change.
const OLDER_NOBLE_AMD64: &str = "ami-0a9f8e7d6c5b40115";
/// The calls that get a column of their own, with their column titles.
const OPERATIONS: [(&str, &str); 6] = [
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
/// Setting up 12 instances at 50 ms a call takes a while; so may a slow roll.
const RUN_TIMEOUT: Duration = Duration::from_secs(3600);

struct Settings {
    surges: Vec<u32>,
    latency_ms: u64,
    instances: u32,
    boot_ms: u64,
}

/// One measured rolling update.
struct Measurement {
    surge: u32,
    wall: Duration,
    exit_code: Option<i32>,
    /// Batches terminated (`terminated` events grouped by round), from `-o json`.
    rounds: usize,
    replaced: usize,
    stats: Stats,
}

fn main() -> ExitCode {
    let settings = match parse_arguments() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!(
                "error: {message}\nusage: bench_rollout [--surge 1,3,6] [--latency-ms 50] [--instances 12] [--boot-ms 0]"
            );
            return ExitCode::from(2);
        }
    };
    use_skiff_of_this_profile();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start a tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };

    let mut measurements = Vec::new();
    for &surge in &settings.surges {
        eprintln!(
            "== maxSurge {surge}, {} instances, {} ms per call, {} ms boot",
            settings.instances, settings.latency_ms, settings.boot_ms
        );
        match runtime.block_on(measure(surge, &settings)) {
            Ok(measurement) => measurements.push(measurement),
            Err(message) => {
                eprintln!("error: maxSurge {surge}: {message}");
                return ExitCode::FAILURE;
            }
        }
    }
    print_table(&measurements, &settings);
    print_calls_by_action(&measurements);
    ExitCode::SUCCESS
}

fn parse_arguments() -> Result<Settings, String> {
    let mut settings = Settings {
        surges: vec![1, 3, 6],
        latency_ms: 50,
        instances: 12,
        boot_ms: 0,
    };
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        let mut value = |name: &str| {
            arguments
                .next()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match argument.as_str() {
            "--surge" => {
                settings.surges = bench::parse_counts("--surge", &value("--surge")?)?;
            }
            "--latency-ms" => {
                let text = value("--latency-ms")?;
                settings.latency_ms = text
                    .parse()
                    .map_err(|_| format!("--latency-ms: {text:?} is not a number"))?;
            }
            "--boot-ms" => {
                let text = value("--boot-ms")?;
                settings.boot_ms = text
                    .parse()
                    .map_err(|_| format!("--boot-ms: {text:?} is not a number"))?;
            }
            "--instances" => {
                let text = value("--instances")?;
                settings.instances = text
                    .parse()
                    .ok()
                    .filter(|count| *count >= 1)
                    .ok_or_else(|| format!("--instances: {text:?} is not a count >= 1"))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(settings)
}

async fn measure(surge: u32, settings: &Settings) -> Result<Measurement, String> {
    let aws = LocalAws::start_with(LocalAwsOptions {
        latency_ms: settings.latency_ms,
        boot_ms: settings.boot_ms,
        ..LocalAwsOptions::default()
    });
    let home = SandboxHome::new();
    let bucket = aws.create_unique_bucket("bench");
    let store = format!("s3://{bucket}");
    let route53 = aws_sdk_route53::Client::new(&aws.sdk_config().await);
    route53
        .create_hosted_zone()
        .name("example.com")
        .caller_reference("bench")
        .send()
        .await
        .map_err(|error| format!("creating the hosted zone: {error}"))?;
    let command = |arguments: &[&str]| -> Skiff {
        Skiff::new(&aws, &home)
            .args(arguments)
            .args(["--state", &store])
            .timeout(RUN_TIMEOUT)
    };
    let succeed = |skiff: Skiff| -> Result<SkiffOutput, String> {
        let output = skiff.run();
        if output.success() {
            Ok(output)
        } else {
            Err(output.to_string())
        }
    };
    // `get ig -o json` (a List of one), edit, `replace -f -` (JSON is YAML).
    let edit_nodes = |edit: &dyn Fn(&mut Value)| -> Result<(), String> {
        let listed = succeed(command(&[
            "get", "ig", "--name", CLUSTER, NODES, "-o", "json",
        ]))?;
        let list: Value = serde_json::from_str(&listed.stdout)
            .map_err(|error| format!("`get ig -o json` is not JSON ({error}):\n{listed}"))?;
        let mut document = list["items"]
            .get(0)
            .cloned()
            .ok_or_else(|| format!("`get ig {NODES} -o json` lists no group:\n{listed}"))?;
        edit(&mut document);
        succeed(command(&["replace", "-f", "-", "--name", CLUSTER]).stdin(document.to_string()))?;
        Ok(())
    };

    let instances = settings.instances.to_string();
    succeed(command(&[
        "create",
        "cluster",
        CLUSTER,
        "--zones",
        ZONE,
        "--node-count",
        &instances,
    ]))?;
    edit_nodes(&|document| {
        document["spec"]["minSize"] = settings.instances.into();
        document["spec"]["maxSize"] = settings.instances.into();
        document["spec"]["rollingUpdate"] =
            serde_json::json!({ "maxSurge": surge, "maxUnavailable": 0 });
    })?;
    eprintln!("   first apply");
    succeed(command(&["update", "cluster", CLUSTER, "--yes"]))?;
    edit_nodes(&|document| {
        document["spec"]["image"] = OLDER_NOBLE_AMD64.into();
    })?;
    eprintln!("   applying the image change");
    succeed(command(&["update", "cluster", CLUSTER, "--yes"]))?;

    aws.reset_stats();
    let output = command(&[
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
    let stats = aws.stats();
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
    Ok(Measurement {
        surge,
        wall: output.duration,
        exit_code: output.code,
        rounds,
        replaced,
        stats,
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

fn operation_total(stats: &Stats, operation: &str) -> u64 {
    if operation.ends_with(':') {
        stats.count_where(|call| call.starts_with(operation))
    } else {
        stats.count(operation)
    }
}

fn print_table(measurements: &[Measurement], settings: &Settings) {
    println!(
        "bench_rollout: {} instances, maxUnavailable 0, {} ms injected per AWS call, {} ms boot per instance; calls counted by the endpoint",
        settings.instances, settings.latency_ms, settings.boot_ms
    );
    println!();
    let baseline = measurements
        .iter()
        .find(|measurement| measurement.surge == 1)
        .or(measurements.first())
        .map(|measurement| measurement.wall.as_secs_f64());
    let mut header = vec![
        "surge".to_string(),
        "exit".to_string(),
        "replaced".to_string(),
        "rounds".to_string(),
        "wall s".to_string(),
        "vs surge 1".to_string(),
        "calls".to_string(),
    ];
    header.extend(OPERATIONS.iter().map(|(_, title)| (*title).to_string()));
    header.push("other".to_string());
    let mut rows = vec![header];
    for measurement in measurements {
        let wall = measurement.wall.as_secs_f64();
        let mut row = vec![
            measurement.surge.to_string(),
            measurement
                .exit_code
                .map(|code| code.to_string())
                .unwrap_or_else(|| "killed".to_string()),
            measurement.replaced.to_string(),
            measurement.rounds.to_string(),
            format!("{wall:.2}"),
            baseline
                .filter(|baseline| *baseline > 0.0)
                .map(|baseline| format!("{:.2}", wall / baseline))
                .unwrap_or_default(),
            measurement.stats.total.to_string(),
        ];
        let mut counted = 0;
        for (operation, _) in OPERATIONS {
            let count = operation_total(&measurement.stats, operation);
            counted += count;
            row.push(count.to_string());
        }
        row.push(measurement.stats.total.saturating_sub(counted).to_string());
        rows.push(row);
    }
    print_rows(&rows);
}

/// Every call by action, one column per surge.
fn print_calls_by_action(measurements: &[Measurement]) {
    let columns: Vec<(String, &Stats)> = measurements
        .iter()
        .map(|measurement| (format!("surge {}", measurement.surge), &measurement.stats))
        .collect();
    bench::print_calls_by_action("rolling update: calls by action", &columns);
}
