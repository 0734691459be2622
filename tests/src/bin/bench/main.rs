//! `bench`: how fast skiff is against the physical limit, and against
//! Terraform, measured by running the real `skiff` binary against the local
//! AWS endpoint with an injected latency per call.
//!
//! Why: every AWS call costs a round trip (tens of milliseconds from a
//! laptop to a region) and counts against the account's API rate limits.
//! Two things decide how long an apply takes: how many calls it makes, and
//! how many of them wait for each other. The plan's dependency graph fixes
//! the second: its longest chain of sequential calls times the latency is
//! the bound no executor can beat (`skiff_plans::critical_path`). This
//! benchmark prints each apply's wall time as a ratio to that bound (and a
//! first apply's to its floor: the bound plus the store protocol's round
//! trips), the calls of every run by service, and skiff's peak memory.
//!
//! Sections (`--sections`, all by default):
//! - `reference`: the HA private cluster over three zones (3 control-plane
//!   groups, 3 node groups): first apply, no-op plan, a one-field change
//!   (one node group's `machineType`) planned and applied, `delete cluster`.
//! - `groups`: the same runs for a one-zone public cluster with each
//!   number of instance groups in `--groups`.
//! - `rollout`: a `--cloudonly` rolling update of `--instances` instances
//!   for each `maxSurge` in `--surge`.
//! - `terraform`: the reference cluster's Terraform output applied by
//!   `terraform apply` on a fresh endpoint, and a no-op `terraform plan`,
//!   side by side with the reference section's skiff runs (which it
//!   therefore also runs). Without terraform or the provider mirror it says
//!   `TERRAFORM NOT FOUND` and skips.
//! - `get-clusters`: `skiff get clusters` on a local (`file://`) store.
//! - `get-clusters-s3`: `skiff get clusters` over an S3 store holding 10,
//!   100 and 500 clusters, at `--latency-ms` per call.
//! - `realistic`: the reference cluster's first apply, no-op plan and
//!   delete on an endpoint that models production AWS (readiness, slow
//!   deletes, eventual consistency, IAM propagation, token buckets) at
//!   `--time-scale` of real time, each against its waits-inclusive bound,
//!   and Terraform's apply and destroy on the same model, side by side.
//!
//! Every cluster gets a fresh endpoint. The figures are printed, with a
//! closing list of the targets of issue 8 and whether this run met them;
//! nothing is asserted (tests must not be timed).
//!
//! ```text
//! cargo build -p skiff -p skiff-tests --bins && target/debug/bench
//! bench --sections groups --groups 1,10 --latency-ms 10
//! ```
//!
//! The `skiff` binary is `$SKIFF_BIN`, else the one built next to this
//! binary (same profile), else the harness's usual search.

mod clusters;
mod get_clusters;
mod get_clusters_s3;
mod realistic;
mod report;
mod rollout;
mod terraform;

use std::process::ExitCode;

use skiff_tests::bench::{use_skiff_of_this_profile, Options};

const USAGE: &str = "\
usage: bench [OPTIONS]

Runs the real skiff binary against the local AWS endpoint and prints wall
times, API calls per operation, peak memory, and each apply's ratio to its
critical-path bound (a first apply's also to its floor: the bound plus the
store protocol's round trips). Asserts nothing.

options:
  --sections LIST    which parts to run, comma-separated (default: all):
                     reference, groups, rollout, terraform, get-clusters,
                     get-clusters-s3, realistic
  --groups LIST      instance-group counts of the `groups` section
                     (default: 1,10,50,100)
  --latency-ms N     delay injected before every AWS call (default: 50)
  --instances N      instances of the rolling update (default: 12)
  --surge LIST       maxSurge values of the rolling update (default: 1,3,6)
  --boot-ms N        instances report Pending this long after launch
                     (default: 0)
  --without-terraform
                     leave Terraform out of the realistic section
                     (said in the output)
  --time-scale F     the realistic section's durations (NAT gateway 90 s,
                     load balancer 150 s, ...) times F (default: 0.25)
  --repeat N         measure each cluster N times (each on a fresh
                     endpoint) and report, for every run, the one with
                     the median wall time (default: 1; an odd N is best)
  -h, --help         this text";

/// A part of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    Reference,
    Groups,
    Rollout,
    Terraform,
    GetClusters,
    GetClustersS3,
    Realistic,
}

impl Section {
    const ALL: [Section; 7] = [
        Section::Reference,
        Section::Groups,
        Section::Rollout,
        Section::Terraform,
        Section::GetClusters,
        Section::GetClustersS3,
        Section::Realistic,
    ];

    fn name(self) -> &'static str {
        match self {
            Section::Reference => "reference",
            Section::Groups => "groups",
            Section::Rollout => "rollout",
            Section::Terraform => "terraform",
            Section::GetClusters => "get-clusters",
            Section::GetClustersS3 => "get-clusters-s3",
            Section::Realistic => "realistic",
        }
    }
}

/// What to run, from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    sections: Vec<Section>,
    /// Instance-group counts of the `groups` section.
    pub groups: Vec<usize>,
    /// Milliseconds injected before every AWS call.
    pub latency_ms: u64,
    /// Instances of the rolling update.
    pub instances: u32,
    /// maxSurge values of the rolling update.
    pub surges: Vec<u32>,
    /// Modelled boot time of an instance.
    pub boot_ms: u64,
    /// How many times each cluster is measured (its median run reported).
    pub repeat: u32,
    /// The realistic section's time scale.
    pub time_scale: f64,
    /// Leave Terraform out of the realistic section.
    pub without_terraform: bool,
}

impl Settings {
    fn runs(&self, section: Section) -> bool {
        self.sections.contains(&section)
    }
}

/// `Ok(None)`: `--help` was asked for.
fn parse_arguments(mut options: Options) -> Result<Option<Settings>, String> {
    let mut settings = Settings {
        sections: Section::ALL.to_vec(),
        groups: vec![1, 10, 50, 100],
        latency_ms: 50,
        instances: 12,
        surges: vec![1, 3, 6],
        boot_ms: 0,
        repeat: 1,
        time_scale: 0.25,
        without_terraform: false,
    };
    while let Some(name) = options.next_name() {
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "--sections" => {
                settings.sections = options
                    .value(&name)?
                    .split(',')
                    .map(|wanted| {
                        Section::ALL
                            .into_iter()
                            .find(|section| section.name() == wanted.trim())
                            .ok_or_else(|| {
                                let known: Vec<&str> =
                                    Section::ALL.iter().map(|section| section.name()).collect();
                                format!("--sections: {wanted:?} is not one of {}", known.join(", "))
                            })
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--groups" => settings.groups = options.counts(&name)?,
            "--latency-ms" => settings.latency_ms = options.number(&name)?,
            "--instances" => settings.instances = options.count(&name)?,
            "--surge" => settings.surges = options.counts(&name)?,
            "--boot-ms" => settings.boot_ms = options.number(&name)?,
            "--repeat" => settings.repeat = options.count(&name)?,
            "--without-terraform" => settings.without_terraform = true,
            "--time-scale" => {
                settings.time_scale = options.number(&name)?;
                if settings.time_scale.is_nan() || settings.time_scale <= 0.0 {
                    return Err("--time-scale must be positive".to_string());
                }
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    // The side-by-side comparison needs the reference figures of this run.
    if settings.runs(Section::Terraform) && !settings.runs(Section::Reference) {
        settings.sections.push(Section::Reference);
    }
    Ok(Some(settings))
}

fn main() -> ExitCode {
    let settings = match parse_arguments(Options::from_env()) {
        Ok(Some(settings)) => settings,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
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
    match runtime.block_on(run(&settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: &Settings) -> Result<(), String> {
    let mut report = report::Report::new(settings.latency_ms, settings.repeat);
    if settings.runs(Section::Reference) {
        report
            .clusters
            .push(measure_cluster(&clusters::Shape::Reference, settings).await?);
    }
    if settings.runs(Section::Groups) {
        for &groups in &settings.groups {
            report
                .clusters
                .push(measure_cluster(&clusters::Shape::Groups(groups), settings).await?);
        }
    }
    if settings.runs(Section::Rollout) {
        for &surge in &settings.surges {
            report
                .rollouts
                .push(rollout::measure(surge, settings).await?);
        }
    }
    if settings.runs(Section::Terraform) {
        report.terraform = Some(terraform::measure(settings).await?);
    }
    if settings.runs(Section::GetClusters) {
        report.get_clusters = Some(get_clusters::measure()?);
    }
    let listings = match settings.runs(Section::GetClustersS3) {
        true => Some(get_clusters_s3::measure(settings).await?),
        false => None,
    };
    if settings.runs(Section::Realistic) {
        report.realistic = Some(realistic::measure(settings).await?);
    }
    report.print(settings);
    if let Some(listings) = listings {
        listings.print();
    }
    Ok(())
}

/// Measures a cluster `--repeat` times; each run's median.
async fn measure_cluster(
    shape: &clusters::Shape,
    settings: &Settings,
) -> Result<clusters::ClusterRuns, String> {
    let mut measured = Vec::new();
    for _ in 0..settings.repeat.max(1) {
        measured.push(clusters::measure(shape, settings).await?);
    }
    clusters::median(measured).ok_or_else(|| "nothing was measured".to_string())
}
