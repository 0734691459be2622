//! `bench_plan`: how many AWS calls, and how much wall time, the first apply
//! and a no-op plan of a cluster take as its number of instance groups grows.
//!
//! Why: every AWS call costs a round trip (tens of milliseconds from a
//! laptop to a region) and counts against the account's API rate limits,
//! which a busy account shares with everything else. A refresh that makes
//! one call per instance group would make `update cluster` slow and
//! throttle-prone on large clusters; one call per resource *type* keeps a
//! no-op plan flat. This benchmark shows which it is.
//!
//! For each size it starts a local AWS endpoint that sleeps `--latency-ms`
//! before every call (50 ms by default: a round trip to a nearby region),
//! creates the cluster `bench.example.com` in one zone with
//! `skiff create cluster` (one control-plane and one node group), removes or
//! adds node groups with `skiff delete ig` / `skiff create ig` until it has
//! the wanted number, then times `skiff update cluster --yes` (the first
//! apply) and `skiff update cluster` (a plan with nothing to do), counting
//! every call the endpoint received. It prints figures and asserts nothing
//! about time.
//!
//! ```text
//! cargo build -p skiff && cargo run -p skiff-tests --bin bench_plan
//! cargo build -p skiff --release && cargo run -p skiff-tests --bin bench_plan --release
//! bench_plan [--groups 1,10,50] [--latency-ms 50]
//! ```
//!
//! The `skiff` binary is `$SKIFF_BIN`, else the one built next to this
//! binary (same profile), else the harness's usual search.

use std::process::ExitCode;
use std::time::Duration;

use skiff_tests::bench::{self, print_rows, use_skiff_of_this_profile};
use skiff_tests::{LocalAws, LocalAwsOptions, SandboxHome, Skiff, SkiffOutput, Stats};

const CLUSTER: &str = "bench.example.com";
const ZONE: &str = "us-east-1a";
/// The services whose calls get a column of their own, in this order.
const SERVICES: [&str; 7] = [
    "ec2",
    "autoscaling",
    "elasticloadbalancing",
    "iam",
    "route53",
    "s3",
    "sts",
];
/// A first apply of 50 groups at 50 ms a call takes minutes, not seconds.
const RUN_TIMEOUT: Duration = Duration::from_secs(3600);

struct Settings {
    groups: Vec<usize>,
    latency_ms: u64,
}

/// One measured run.
struct Measurement {
    groups: usize,
    run: &'static str,
    wall: Duration,
    exit_code: Option<i32>,
    stats: Stats,
}

fn main() -> ExitCode {
    let settings = match parse_arguments() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("error: {message}\nusage: bench_plan [--groups 1,10,50] [--latency-ms 50]");
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
    for &groups in &settings.groups {
        eprintln!(
            "== {groups} instance group(s), {} ms per call",
            settings.latency_ms
        );
        match runtime.block_on(measure(groups, settings.latency_ms)) {
            Ok(mut pair) => measurements.append(&mut pair),
            Err(message) => {
                eprintln!("error: {groups} groups: {message}");
                return ExitCode::FAILURE;
            }
        }
    }
    print_table(&measurements, settings.latency_ms);
    print_calls_by_action(&measurements);
    ExitCode::SUCCESS
}

fn parse_arguments() -> Result<Settings, String> {
    let mut settings = Settings {
        groups: vec![1, 10, 50],
        latency_ms: 50,
    };
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        let mut value = |name: &str| {
            arguments
                .next()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match argument.as_str() {
            "--groups" => {
                settings.groups = bench::parse_counts("--groups", &value("--groups")?)?;
            }
            "--latency-ms" => {
                let text = value("--latency-ms")?;
                settings.latency_ms = text
                    .parse()
                    .map_err(|_| format!("--latency-ms: {text:?} is not a number"))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(settings)
}

async fn measure(groups: usize, latency_ms: u64) -> Result<Vec<Measurement>, String> {
    let aws = LocalAws::start_with(LocalAwsOptions {
        latency_ms,
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
    let skiff = |arguments: &[&str]| -> SkiffOutput {
        Skiff::new(&aws, &home)
            .args(arguments)
            .args(["--state", &store])
            .timeout(RUN_TIMEOUT)
            .run()
    };
    let succeed = |arguments: &[&str]| -> Result<SkiffOutput, String> {
        let output = skiff(arguments);
        if output.success() {
            Ok(output)
        } else {
            Err(output.to_string())
        }
    };

    // The spec: one control-plane group and one node group, then as many
    // node groups more (or fewer) as wanted.
    succeed(&["create", "cluster", CLUSTER, "--zones", ZONE])?;
    if groups == 1 {
        succeed(&[
            "delete",
            "ig",
            "--name",
            CLUSTER,
            &format!("nodes-{ZONE}"),
            "--yes",
        ])?;
    }
    for index in 2..groups {
        let name = format!("workers-{index:02}");
        succeed(&[
            "create", "ig", "--name", CLUSTER, &name, "--min", "1", "--max", "1",
        ])?;
    }
    let listed = succeed(&["get", "ig", "--name", CLUSTER, "-o", "json"])?;
    let count = serde_json::from_str::<serde_json::Value>(&listed.stdout)
        .ok()
        .and_then(|list| list["items"].as_array().map(Vec::len))
        .unwrap_or(0);
    if count != groups {
        eprintln!("   note: the spec lists {count} instance groups, wanted {groups}");
    }

    let mut measured = Vec::new();
    for (run, arguments) in [
        ("first apply", vec!["update", "cluster", CLUSTER, "--yes"]),
        (
            "no-op plan",
            vec!["update", "cluster", CLUSTER, "--detailed-exitcode"],
        ),
    ] {
        aws.reset_stats();
        let output = skiff(&arguments);
        let stats = aws.stats();
        eprintln!(
            "   {run}: exit {:?}, {:.2} s, {} calls",
            output.code,
            output.duration.as_secs_f64(),
            stats.total
        );
        if !output.success() {
            eprintln!("{output}");
        }
        measured.push(Measurement {
            groups,
            run,
            wall: output.duration,
            exit_code: output.code,
            stats,
        });
    }
    Ok(measured)
}

fn service_total(stats: &Stats, service: &str) -> u64 {
    stats.count_where(|call| call.split(':').next() == Some(service))
}

fn print_table(measurements: &[Measurement], latency_ms: u64) {
    println!("bench_plan: {latency_ms} ms injected per AWS call; calls counted by the endpoint");
    println!();
    let mut header = vec![
        "groups".to_string(),
        "run".to_string(),
        "exit".to_string(),
        "wall s".to_string(),
        "calls".to_string(),
    ];
    header.extend(SERVICES.iter().map(|service| (*service).to_string()));
    let mut rows = vec![header];
    for measurement in measurements {
        let mut row = vec![
            measurement.groups.to_string(),
            measurement.run.to_string(),
            measurement
                .exit_code
                .map(|code| code.to_string())
                .unwrap_or_else(|| "killed".to_string()),
            format!("{:.2}", measurement.wall.as_secs_f64()),
            measurement.stats.total.to_string(),
        ];
        row.extend(
            SERVICES
                .iter()
                .map(|service| service_total(&measurement.stats, service).to_string()),
        );
        rows.push(row);
    }
    print_rows(&rows);
}

/// The no-op plan's calls by action, one column per size: where the counts
/// differ between sizes, the refresh does per-group work.
fn print_calls_by_action(measurements: &[Measurement]) {
    let plans: Vec<(String, &Stats)> = measurements
        .iter()
        .filter(|measurement| measurement.run == "no-op plan")
        .map(|measurement| (format!("{} groups", measurement.groups), &measurement.stats))
        .collect();
    bench::print_calls_by_action("no-op plan: calls by action", &plans);
}
