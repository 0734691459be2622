//! `skiff update cluster NAME --target terraform --out DIR`: write the
//! cluster's desired model as Terraform (docs/terraform.md) instead of
//! applying it, prepare the PKI nodes read from the state store, and record
//! the cluster as managed by Terraform so that a direct apply refuses to
//! fight it.

use std::process::ExitCode;

use anyhow::bail;
use skiff_plans::terraform;

use crate::args::UpdateClusterArgs;
use crate::context::Context;
use crate::session::locking_session;

pub async fn run(context: &Context, arguments: &UpdateClusterArgs) -> anyhow::Result<ExitCode> {
    let cluster = &arguments.name;
    let Some(folder) = &arguments.out else {
        bail!("--target terraform writes files: say where with --out DIR, e.g. `skiff update cluster {cluster} --target terraform --out {}`", default_folder(cluster));
    };
    if arguments.yes {
        bail!("--target terraform does not apply anything itself, so it takes no --yes: run `terraform apply` in the --out folder");
    }
    let store = context.store().await?;
    let session = locking_session(context, &store, &arguments.lock).await?;
    let written =
        skiff_engine::terraform::write(&session, cluster, folder, arguments.force_target).await?;
    if written.recorded_now {
        context.printer.info(&format!(
            "Recorded cluster {cluster} as managed by Terraform: `skiff update cluster {cluster} --yes` now refuses to apply directly (switch back with `--target direct --force-target --yes`)."
        ));
    }
    context.printer.info(&format!(
        "Wrote the Terraform of cluster {cluster} to {} ({}, {} user-data files in {}/; {}).",
        folder.display(),
        terraform::MAIN_FILE,
        written.data_files,
        terraform::DATA_DIR,
        if written.changed == 0 {
            "nothing changed".to_string()
        } else {
            format!("{} files changed", written.changed)
        }
    ));
    if !written.addons.is_empty() {
        context.printer.info(&format!(
            "Wrote the addons to the state store (addons: {}); the control plane applies them, Terraform never manages them.",
            written.addons.join(", ")
        ));
    }
    context.printer.info(&format!(
        "Next: cd {} && terraform init && terraform apply",
        folder.display()
    ));
    Ok(ExitCode::SUCCESS)
}

fn default_folder(cluster: &str) -> String {
    format!("{}-terraform", cluster.replace('.', "-"))
}
