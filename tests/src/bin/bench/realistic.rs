//! The realistic model: the reference cluster on an endpoint that behaves
//! like production AWS (`local_aws.py` with every behaviour of its
//! "Realistic AWS" model at AWS's typical durations, run at `--time-scale`
//! of real time): skiff's first apply, a no-op plan and `delete cluster`,
//! each against its **waits-inclusive bound** (the critical path in time:
//! its calls at the latency plus what AWS makes it wait: a NAT gateway's
//! readiness, new IDs becoming visible, a deleted load balancer's
//! interfaces, ...: `skiff_plans::timed_critical_path`), then Terraform's
//! apply and destroy of skiff's Terraform output of the same cluster on
//! another endpoint of the same model, side by side.

use std::time::Duration;

use skiff_plans::plan::Plan;
use skiff_plans::{timed_critical_path, TimedPath, Waits};
use skiff_tests::bench::BenchCloud;
use skiff_tests::terraform::{warn_loudly, write_provider_override, TerraformTools};
use skiff_tests::{LocalAwsOptions, Realism, Stats};

use crate::clusters::{reference_create_arguments, teardown, CLUSTER};
use crate::Settings;

/// How long one terraform command may take.
const TERRAFORM_TIMEOUT: Duration = Duration::from_secs(3600);

/// One timed run under the model.
#[derive(Clone, Debug)]
pub struct Run {
    /// Who ran what: "skiff first apply", "terraform destroy", ...
    pub name: String,
    /// Exit code (`None`: killed).
    pub exit_code: Option<i32>,
    /// Wall time.
    pub wall: Duration,
    /// The calls the endpoint received meanwhile.
    pub stats: Stats,
    /// skiff's applies and delete: the waits-inclusive bound.
    pub bound: Option<TimedPath>,
}

/// What the section measured.
#[derive(Clone, Debug)]
pub struct Measured {
    /// The model's time scale.
    pub time_scale: f64,
    /// What the bound counts as AWS's waits (scaled).
    pub waits: Waits,
    /// skiff's runs, then Terraform's (none when it is missing).
    pub runs: Vec<Run>,
    /// Why Terraform was not run, if it was not.
    pub terraform_skipped: Option<String>,
}

impl Measured {
    /// The run called `name`.
    pub fn run(&self, name: &str) -> Option<&Run> {
        self.runs.iter().find(|run| run.name == name)
    }
}

/// The endpoint options of the model at `time_scale`.
pub fn options(settings: &Settings) -> LocalAwsOptions {
    LocalAwsOptions {
        latency_ms: settings.latency_ms,
        ..LocalAwsOptions::realistic(settings.time_scale)
    }
}

/// What the model makes an apply wait for, in wall time: the bound's
/// [`Waits`]. `boot_ms` is not among them: neither skiff's apply nor its
/// delete waits for instances to boot.
pub fn waits(realism: &Realism) -> Waits {
    let scaled = |milliseconds: u64| {
        Duration::from_secs_f64(milliseconds as f64 * realism.time_scale / 1000.0)
    };
    Waits {
        nat_gateway_ready: scaled(realism.nat_ready_ms),
        load_balancer_ready: scaled(realism.lb_ready_ms),
        nat_gateway_deleting: scaled(realism.nat_delete_ms),
        load_balancer_interfaces: scaled(realism.lb_eni_linger_ms),
        instances_terminating: scaled(realism.terminate_ms),
        new_ids_visible: scaled(realism.consistency_ms),
        iam_propagation: scaled(realism.iam_propagation_ms),
    }
}

/// Runs the section.
pub async fn measure(settings: &Settings) -> Result<Measured, String> {
    let options = options(settings);
    let waits = waits(&options.realism);
    eprintln!(
        "== realistic AWS at {}x real time, reference HA cluster, {} ms per call",
        settings.time_scale, settings.latency_ms
    );
    let mut runs = Vec::new();

    let cloud = BenchCloud::start(options.clone()).await?;
    cloud.succeed(cloud.skiff(&reference_create_arguments()))?;
    cloud.aws.reset_stats();
    let output = cloud
        .skiff(&["update", "cluster", CLUSTER, "--yes", "-o", "json", "-vv"])
        .run();
    keep_log("skiff first apply", &output.stderr);
    let plan: Option<Plan> = serde_json::from_str(&output.stdout).ok();
    let latency = Duration::from_millis(settings.latency_ms);
    runs.push(Run {
        name: "skiff first apply".to_string(),
        exit_code: output.code,
        wall: output.duration,
        stats: cloud.aws.stats(),
        bound: plan
            .as_ref()
            .map(|plan| timed_critical_path(plan, latency, &waits)),
    });
    report(runs.last());
    if !output.success() {
        return Err(format!(
            "skiff's first apply failed under the model:\n{output}"
        ));
    }

    cloud.aws.reset_stats();
    let output = cloud
        .skiff(&["update", "cluster", CLUSTER, "--detailed-exitcode"])
        .run();
    runs.push(Run {
        name: "skiff no-op plan".to_string(),
        exit_code: output.code,
        wall: output.duration,
        stats: cloud.aws.stats(),
        bound: None,
    });
    report(runs.last());

    cloud.aws.reset_stats();
    let output = cloud
        .skiff(&["delete", "cluster", CLUSTER, "--yes", "-vv"])
        .run();
    runs.push(Run {
        name: "skiff delete".to_string(),
        exit_code: output.code,
        wall: output.duration,
        stats: cloud.aws.stats(),
        bound: plan
            .as_ref()
            .map(|plan| timed_critical_path(&teardown(plan), latency, &waits)),
    });
    report(runs.last());
    if !output.success() {
        return Err(format!("skiff's delete failed under the model:\n{output}"));
    }
    drop(cloud);

    let terraform_skipped = match terraform(settings, &options, &mut runs).await {
        Ok(()) => None,
        Err(Skip(why)) => {
            if !settings.without_terraform {
                warn_loudly(&format!(
                    "{why}: skipped Terraform under the realistic model"
                ));
            }
            Some(why)
        }
    };
    Ok(Measured {
        time_scale: settings.time_scale,
        waits,
        runs,
        terraform_skipped,
    })
}

/// Why Terraform's side was not measured.
struct Skip(String);

/// `terraform apply`, then `terraform destroy`, of the reference cluster's
/// Terraform output on a fresh endpoint of the same model.
async fn terraform(
    settings: &Settings,
    options: &LocalAwsOptions,
    runs: &mut Vec<Run>,
) -> Result<(), Skip> {
    if settings.without_terraform {
        return Err(Skip("--without-terraform".to_string()));
    }
    let tools = TerraformTools::find().map_err(Skip)?;
    eprintln!(
        "== Terraform under realistic AWS at {}x real time",
        settings.time_scale
    );
    let cloud = BenchCloud::start(options.clone()).await.map_err(Skip)?;
    cloud
        .succeed(cloud.skiff(&reference_create_arguments()))
        .map_err(Skip)?;
    let folder = cloud.home.join("terraform");
    let folder_text = folder.to_string_lossy().into_owned();
    cloud
        .succeed(cloud.skiff(&[
            "update",
            "cluster",
            CLUSTER,
            "--target",
            "terraform",
            "--out",
            &folder_text,
        ]))
        .map_err(Skip)?;
    write_provider_override(&folder, &cloud.aws.endpoint())
        .map_err(|error| Skip(format!("writing provider_override.tf.json: {error}")))?;
    let init = tools
        .init(&folder, TERRAFORM_TIMEOUT)
        .map_err(|error| Skip(format!("cannot run terraform: {error}")))?;
    if init.code != 0 {
        return Err(Skip(format!("terraform init failed:\n{}", init.output)));
    }
    for (name, arguments) in [
        (
            "terraform apply",
            &["apply", "-auto-approve", "-input=false", "-no-color"][..],
        ),
        (
            "terraform destroy",
            &["destroy", "-auto-approve", "-input=false", "-no-color"][..],
        ),
    ] {
        cloud.aws.reset_stats();
        let run = tools
            .run(&folder, arguments, TERRAFORM_TIMEOUT)
            .map_err(|error| Skip(format!("cannot run terraform: {error}")))?;
        if run.timed_out || run.code != 0 {
            eprintln!("{}", run.output);
        }
        runs.push(Run {
            name: name.to_string(),
            exit_code: Some(run.code),
            wall: run.duration,
            stats: cloud.aws.stats(),
            bound: None,
        });
        report(runs.last());
    }
    Ok(())
}

/// With `SKIFF_BENCH_LOGS=DIR`, keeps a run's standard error (skiff's
/// progress, with `-v` its timings) in DIR, for finding where time went.
fn keep_log(name: &str, stderr: &str) {
    if let Some(folder) = std::env::var_os("SKIFF_BENCH_LOGS") {
        let path = std::path::Path::new(&folder).join(format!("{}.log", name.replace(' ', "-")));
        if let Err(error) = std::fs::write(&path, stderr) {
            eprintln!("cannot keep the log at {}: {error}", path.display());
        }
    }
}

fn report(run: Option<&Run>) {
    if let Some(run) = run {
        eprintln!(
            "   {}: exit {:?}, {:.2} s, {} calls{}",
            run.name,
            run.exit_code,
            run.wall.as_secs_f64(),
            run.stats.total,
            run.bound.as_ref().map_or_else(String::new, |bound| format!(
                ", bound {:.2} s",
                bound.duration.as_secs_f64()
            ))
        );
    }
}

/// The section's tables.
pub fn print(measured: &Measured) {
    let waits = &measured.waits;
    println!(
        "\n### Realistic AWS ({}x real time; waits in the bound: NAT gateway ready {:.1} s, load balancer ready {:.1} s, new IDs visible {:.2} s, IAM propagation {:.1} s, NAT gateway deleting {:.1} s, load balancer interfaces {:.1} s, instances terminating {:.1} s)\n",
        measured.time_scale,
        waits.nat_gateway_ready.as_secs_f64(),
        waits.load_balancer_ready.as_secs_f64(),
        waits.new_ids_visible.as_secs_f64(),
        waits.iam_propagation.as_secs_f64(),
        waits.nat_gateway_deleting.as_secs_f64(),
        waits.load_balancer_interfaces.as_secs_f64(),
        waits.instances_terminating.as_secs_f64(),
    );
    let mut rows = vec![vec![
        "run".to_string(),
        "exit".to_string(),
        "wall s".to_string(),
        "calls".to_string(),
        "throttled".to_string(),
        "bound s".to_string(),
        "wall/bound".to_string(),
        "chain".to_string(),
    ]];
    for run in &measured.runs {
        let (bound, ratio, chain) = match &run.bound {
            Some(bound) => (
                format!("{:.2}", bound.duration.as_secs_f64()),
                format!(
                    "{:.3}",
                    run.wall.as_secs_f64() / bound.duration.as_secs_f64().max(1e-9)
                ),
                bound
                    .chain
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" -> "),
            ),
            None => (String::new(), String::new(), String::new()),
        };
        rows.push(vec![
            run.name.clone(),
            run.exit_code
                .map_or("killed".to_string(), |code| code.to_string()),
            format!("{:.2}", run.wall.as_secs_f64()),
            run.stats.total.to_string(),
            run.stats.throttled.to_string(),
            bound,
            ratio,
            chain,
        ]);
    }
    skiff_tests::bench::print_rows(&rows);
    let pairs = [
        ("skiff first apply", "terraform apply"),
        ("skiff delete", "terraform destroy"),
    ];
    for (skiff, terraform) in pairs {
        if let (Some(skiff), Some(terraform)) = (measured.run(skiff), measured.run(terraform)) {
            println!(
                "\n{skiff_name} / {terraform_name}: {:.2} ({:.2} s / {:.2} s), calls {} / {}",
                skiff.wall.as_secs_f64() / terraform.wall.as_secs_f64().max(1e-9),
                skiff.wall.as_secs_f64(),
                terraform.wall.as_secs_f64(),
                skiff.stats.total,
                terraform.stats.total,
                skiff_name = skiff.name,
                terraform_name = terraform.name,
            );
        }
    }
    let columns: Vec<(String, &Stats)> = measured
        .runs
        .iter()
        .map(|run| (run.name.clone(), &run.stats))
        .collect();
    skiff_tests::bench::print_calls_by_action(
        "Calls by action under the realistic model",
        &columns,
    );
    if let Some(why) = &measured.terraform_skipped {
        println!("\nTerraform was not measured under the model ({why}).");
    }
    if let Some(noop) = measured.run("skiff no-op plan") {
        println!(
            "\nThe no-op plan after the apply exited {} ({}).",
            noop.exit_code
                .map_or("killed".to_string(), |code| code.to_string()),
            if noop.exit_code == Some(0) {
                "zero changes"
            } else {
                "CHANGES LEFT: the apply did not converge"
            }
        );
    }
}

/// Targets of issue 19 for the section: (what, limit, measured ratio).
pub fn targets(measured: &Measured) -> Vec<(String, f64, Option<f64>)> {
    let ratio = |name: &str| {
        measured.run(name).and_then(|run| {
            run.bound
                .as_ref()
                .map(|bound| run.wall.as_secs_f64() / bound.duration.as_secs_f64().max(1e-9))
        })
    };
    vec![
        (
            "Realistic first apply at most 1.15x its waits-inclusive bound".to_string(),
            1.15,
            ratio("skiff first apply"),
        ),
        (
            "Realistic delete at most 1.3x its waits-inclusive bound".to_string(),
            1.3,
            ratio("skiff delete"),
        ),
    ]
}
