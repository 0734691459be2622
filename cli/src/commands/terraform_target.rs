//! `skiff update cluster NAME --target terraform --out DIR`: write the
//! cluster's desired model as Terraform (docs/terraform.md) instead of
//! applying it, prepare the PKI nodes read from the state store, and record
//! the cluster as managed by Terraform so that a direct apply refuses to
//! fight it.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use skiff_plans::terraform::{self, TerraformFiles};
use skiff_plans::ManagedBy;
use skiff_state::recorded;

use crate::args::UpdateClusterArgs;
use crate::cloud;
use crate::commands::update_cluster::ensure_keystore;
use crate::context::Context;

pub async fn run(context: &Context, arguments: &UpdateClusterArgs) -> anyhow::Result<ExitCode> {
    let cluster = &arguments.name;
    let Some(folder) = &arguments.out else {
        bail!("--target terraform writes files: say where with --out DIR, e.g. `skiff update cluster {cluster} --target terraform --out {}`", default_folder(cluster));
    };
    if arguments.yes {
        bail!("--target terraform does not apply anything itself, so it takes no --yes: run `terraform apply` in the --out folder");
    }
    let store = context.store().await?;
    let spec = store.read_spec(cluster).await?;
    let provider = cloud::provider(context, &spec.bundle).await?;
    let (_, model) = cloud::desired(&provider, &store, &spec).await?;
    let files = terraform::generate(&model, &provider.region)
        .with_context(|| format!("cannot write cluster {cluster} as Terraform"))?;

    let lock = store
        .lock(cluster, "update cluster --target terraform")
        .await
        .with_context(|| format!("cannot update cluster {cluster}"))?;
    let result = async {
        let (mut state, version) = cloud::read_recorded(&store, cluster).await?;
        let applied_directly = state.content.managed_by == ManagedBy::Skiff
            && !state.content.resources.is_empty();
        if applied_directly && !arguments.force_target {
            bail!(
                "cluster {cluster} has {} AWS resources that skiff applied directly, and Terraform would try to create them again. Nothing was written. Delete the cluster first (`skiff delete cluster {cluster} --yes`), or run again with --force-target and `terraform import` every resource before `terraform apply`",
                state.content.resources.len()
            );
        }
        let written = write_files(folder, &files)?;
        ensure_keystore(context, &store, cluster).await?;
        if state.content.managed_by != ManagedBy::Terraform {
            state.content.managed_by = ManagedBy::Terraform;
            lock.ensure_held()?;
            recorded::write(store.objects().as_ref(), cluster, version.as_ref(), &mut state)
                .await
                .with_context(|| format!("cannot record cluster {cluster} as managed by Terraform"))?;
            cloud::snapshot_state(context, &store, cluster, &state, "recorded as managed by Terraform").await;
            context.printer.info(&format!(
                "Recorded cluster {cluster} as managed by Terraform: `skiff update cluster {cluster} --yes` now refuses to apply directly (switch back with `--target direct --force-target --yes`)."
            ));
        }
        Ok(written)
    }
    .await;
    if let Err(error) = lock.release().await {
        tracing::warn!("releasing the cluster lock failed (it expires by itself): {error}");
    }
    let written = result?;
    let data_files = files.files.len() - 1;
    context.printer.info(&format!(
        "Wrote the Terraform of cluster {cluster} to {} ({}, {data_files} user-data files in {}/; {}).",
        folder.display(),
        terraform::MAIN_FILE,
        terraform::DATA_DIR,
        if written == 0 {
            "nothing changed".to_string()
        } else {
            format!("{written} files changed")
        }
    ));
    context.printer.info(&format!(
        "Next: cd {} && terraform init && terraform apply",
        folder.display()
    ));
    Ok(ExitCode::SUCCESS)
}

fn default_folder(cluster: &str) -> String {
    format!("{}-terraform", cluster.replace('.', "-"))
}

/// Writes the files into `folder` (created if missing), each through a
/// temporary file and a rename, so that a file is never half-written;
/// unchanged files are left alone and user-data files of groups that are
/// gone are removed. Everything else in the folder (`.terraform/`, state,
/// the user's own `*.tf` and override files) is never touched. Returns how
/// many files were written or removed.
fn write_files(folder: &Path, files: &TerraformFiles) -> anyhow::Result<usize> {
    let data = folder.join(terraform::DATA_DIR);
    std::fs::create_dir_all(&data)
        .with_context(|| format!("cannot create the folder {}", data.display()))?;
    let mut changed = 0;
    for (relative, contents) in &files.files {
        let path = folder.join(relative);
        if std::fs::read(&path).ok().as_deref() == Some(contents.as_slice()) {
            continue;
        }
        let file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary = path.with_file_name(format!(".{file_name}.skiff-tmp"));
        std::fs::write(&temporary, contents)
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        std::fs::rename(&temporary, &path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        changed += 1;
    }
    let wanted: BTreeSet<&str> = files.files.keys().map(String::as_str).collect();
    for entry in
        std::fs::read_dir(&data).with_context(|| format!("cannot read {}", data.display()))?
    {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = format!("{}/{name}", terraform::DATA_DIR);
        if name.ends_with(".user-data") && !wanted.contains(relative.as_str()) {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("cannot remove {}", entry.path().display()))?;
            changed += 1;
        }
    }
    Ok(changed)
}
