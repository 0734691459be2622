//! Running the real `terraform` CLI, offline, against the local endpoint:
//! for the Terraform acceptance tests (`tests/terraform.rs`) and the
//! benchmark's side-by-side run (`src/bin/bench`).
//!
//! Offline means: the hashicorp/aws provider comes from a local mirror
//! (`terraform init -plugin-dir`), no `~/.terraformrc` is read, and a
//! test-only `provider_override.tf.json` points the provider at the local
//! endpoint, so the generated files stay exactly as generated.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where the hashicorp/aws provider mirror is unless `SKIFF_TF_PLUGIN_DIR` says.
pub const DEFAULT_PLUGIN_DIR: &str = "/opt/tf-plugins";

/// The `terraform` binary and the folder holding the provider mirror.
#[derive(Clone, Debug)]
pub struct TerraformTools {
    /// `$SKIFF_TERRAFORM`, else `terraform` on `PATH`, else
    /// `/usr/local/bin/terraform`.
    pub binary: PathBuf,
    /// `$SKIFF_TF_PLUGIN_DIR`, else [`DEFAULT_PLUGIN_DIR`].
    pub plugins: PathBuf,
}

/// How one terraform command ended.
#[derive(Clone, Debug)]
pub struct TerraformRun {
    /// The exit code; -1 if killed by a signal.
    pub code: i32,
    /// Standard output and error, interleaved.
    pub output: String,
    /// Wall-clock time.
    pub duration: Duration,
    /// Whether it was killed for taking longer than its timeout.
    pub timed_out: bool,
}

impl TerraformTools {
    /// The tools, or why they cannot be used (a sentence starting with
    /// `TERRAFORM NOT FOUND`, with what to install or set).
    pub fn find() -> Result<TerraformTools, String> {
        let binary = std::env::var_os("SKIFF_TERRAFORM")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("PATH").and_then(|paths| {
                    std::env::split_paths(&paths)
                        .map(|folder| folder.join("terraform"))
                        .find(|candidate| candidate.is_file())
                })
            })
            .or_else(|| {
                let fixed = PathBuf::from("/usr/local/bin/terraform");
                fixed.is_file().then_some(fixed)
            })
            .ok_or_else(|| {
                "TERRAFORM NOT FOUND: install terraform >= 1.5 or set SKIFF_TERRAFORM".to_string()
            })?;
        let plugins = std::env::var_os("SKIFF_TF_PLUGIN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PLUGIN_DIR));
        let mirror = plugins.join("registry.terraform.io/hashicorp/aws");
        if !mirror.is_dir() {
            return Err(format!(
                "TERRAFORM NOT FOUND: no hashicorp/aws provider mirror at {} (set SKIFF_TF_PLUGIN_DIR)",
                mirror.display()
            ));
        }
        Ok(TerraformTools { binary, plugins })
    }

    /// Runs `terraform ARGS` in `folder`, offline, killing it after
    /// `timeout`; its output goes to `folder/.terraform-<first arg>.log`
    /// and into the result. An error only if it could not be started.
    pub fn run(
        &self,
        folder: &Path,
        args: &[&str],
        timeout: Duration,
    ) -> std::io::Result<TerraformRun> {
        let log_path = folder.join(format!(
            ".terraform-{}.log",
            args.first().copied().unwrap_or("run")
        ));
        let log = std::fs::File::create(&log_path)?;
        let started = Instant::now();
        let mut child = Command::new(&self.binary)
            .args(args)
            .current_dir(folder)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_CLI_CONFIG_FILE", "/dev/null")
            .env_remove("TF_PLUGIN_CACHE_DIR")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let deadline = started + timeout;
        let (status, timed_out) = loop {
            if let Some(status) = child.try_wait()? {
                break (status, false);
            }
            if Instant::now() > deadline {
                // Best effort: it may exit by itself meanwhile.
                let _ = child.kill();
                break (child.wait()?, true);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let duration = started.elapsed();
        Ok(TerraformRun {
            code: status.code().unwrap_or(-1),
            output: std::fs::read_to_string(&log_path).unwrap_or_default(),
            duration,
            timed_out,
        })
    }

    /// `terraform init` from the mirror: no backend, no network.
    pub fn init(&self, folder: &Path, timeout: Duration) -> std::io::Result<TerraformRun> {
        let plugin_dir = format!("-plugin-dir={}", self.plugins.display());
        self.run(
            folder,
            &[
                "init",
                "-backend=false",
                &plugin_dir,
                "-input=false",
                "-no-color",
            ],
            timeout,
        )
    }
}

/// Points the hashicorp/aws provider at the local endpoint: a test-only
/// `provider_override.tf.json` (Terraform merges `*_override` files into
/// the configuration), so the generated files stay exactly as generated.
/// It does not skip the account ID lookup (STS GetCallerIdentity, which
/// the endpoint answers): without the account the provider reads every
/// rule's referenced group back as `ACCOUNT/sg-...` and plans a change.
pub fn write_provider_override(folder: &Path, endpoint: &str) -> std::io::Result<()> {
    let endpoints: serde_json::Map<String, serde_json::Value> = [
        "autoscaling",
        "ec2",
        "elbv2",
        "events",
        "iam",
        "route53",
        "s3",
        "sqs",
        "sts",
    ]
    .iter()
    .map(|service| ((*service).to_owned(), endpoint.into()))
    .collect();
    let configuration = serde_json::json!({
        "provider": {
            "aws": {
                "access_key": "testing",
                "secret_key": "testing",
                "skip_credentials_validation": true,
                "skip_metadata_api_check": true,
                "s3_use_path_style": true,
                "endpoints": [endpoints],
            }
        }
    });
    let text = serde_json::to_vec_pretty(&configuration).map_err(std::io::Error::other)?;
    std::fs::write(folder.join("provider_override.tf.json"), text)
}

/// Prints `message` between rules of `!` straight to the process's
/// standard error (the test harness captures `eprintln!` of passing tests,
/// and a skip must be seen).
pub fn warn_loudly(message: &str) {
    let rule = "!".repeat(78);
    let _ = write!(std::io::stderr(), "\n{rule}\n!!! {message}\n{rule}\n\n");
}
