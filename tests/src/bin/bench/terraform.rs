//! Side by side with Terraform: the reference cluster's Terraform output
//! (`skiff update cluster --target terraform`) applied by `terraform apply`
//! on a fresh endpoint with the same latency, then a `terraform plan` with
//! nothing to do, timed and counted like skiff's own runs.

use std::time::Duration;

use skiff_tests::bench::BenchCloud;
use skiff_tests::terraform::{warn_loudly, write_provider_override, TerraformRun, TerraformTools};
use skiff_tests::{LocalAwsOptions, Stats};

use crate::clusters::{reference_create_arguments, CLUSTER};
use crate::Settings;

/// How long one terraform command may take (the provider's own waiters
/// poll every few seconds whatever the endpoint answers).
const TERRAFORM_TIMEOUT: Duration = Duration::from_secs(1800);

/// One timed terraform command.
#[derive(Clone, Debug)]
pub struct Timed {
    /// Exit code (-1: killed).
    pub exit_code: i32,
    /// Wall time.
    pub wall: Duration,
    /// The calls the endpoint received meanwhile.
    pub stats: Stats,
}

/// What the Terraform section found.
#[derive(Clone, Debug)]
pub enum Comparison {
    /// terraform or its provider mirror is missing: why.
    Skipped(String),
    /// Both commands ran.
    Measured {
        /// `terraform apply` of the reference cluster.
        apply: Box<Timed>,
        /// `terraform plan -detailed-exitcode` right after.
        plan: Box<Timed>,
    },
}

/// Runs the Terraform side; a missing terraform is a skip, said loudly.
pub async fn measure(settings: &Settings) -> Result<Comparison, String> {
    let tools = match TerraformTools::find() {
        Ok(tools) => tools,
        Err(why) => {
            warn_loudly(&format!("{why}: skipped the Terraform comparison"));
            return Ok(Comparison::Skipped(why));
        }
    };
    eprintln!(
        "== Terraform: reference HA cluster, {} ms per call",
        settings.latency_ms
    );
    let cloud = BenchCloud::start(LocalAwsOptions {
        latency_ms: settings.latency_ms,
        ..LocalAwsOptions::default()
    })
    .await?;
    cloud.succeed(cloud.skiff(&reference_create_arguments()))?;
    let folder = cloud.home.join("terraform");
    let folder_text = folder.to_string_lossy().into_owned();
    cloud.succeed(cloud.skiff(&[
        "update",
        "cluster",
        CLUSTER,
        "--target",
        "terraform",
        "--out",
        &folder_text,
    ]))?;
    write_provider_override(&folder, &cloud.aws.endpoint())
        .map_err(|error| format!("writing provider_override.tf.json: {error}"))?;
    let init = tools
        .init(&folder, TERRAFORM_TIMEOUT)
        .map_err(|error| format!("cannot run {}: {error}", tools.binary.display()))?;
    if init.code != 0 {
        return Err(format!("terraform init failed:\n{}", init.output));
    }

    let apply = timed(
        &cloud,
        &tools,
        &folder,
        "terraform apply",
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    )?;
    let plan = timed(
        &cloud,
        &tools,
        &folder,
        "terraform plan",
        &["plan", "-detailed-exitcode", "-input=false", "-no-color"],
    )?;
    Ok(Comparison::Measured {
        apply: Box::new(apply),
        plan: Box::new(plan),
    })
}

fn timed(
    cloud: &BenchCloud,
    tools: &TerraformTools,
    folder: &std::path::Path,
    name: &str,
    arguments: &[&str],
) -> Result<Timed, String> {
    cloud.aws.reset_stats();
    let run: TerraformRun = tools
        .run(folder, arguments, TERRAFORM_TIMEOUT)
        .map_err(|error| format!("cannot run {}: {error}", tools.binary.display()))?;
    let stats = cloud.aws.stats();
    eprintln!(
        "   {name}: exit {}, {:.2} s, {} calls",
        run.code,
        run.duration.as_secs_f64(),
        stats.total
    );
    if run.timed_out || run.code != 0 {
        eprintln!("{}", run.output);
    }
    Ok(Timed {
        exit_code: run.code,
        wall: run.duration,
        stats,
    })
}
