//! `update cluster --target terraform`: the cluster's desired model written
//! as Terraform (docs/terraform.md) instead of applied; the PKI nodes read
//! from the state store prepared; the cluster recorded as managed by
//! Terraform, so that a direct apply refuses to fight it.

use std::collections::BTreeSet;
use std::path::Path;

use skiff_plans::terraform::{self, TerraformFiles};
use skiff_plans::ManagedBy;
use skiff_state::recorded;

use crate::cluster::{read_recorded, release, Operation, Session};
use crate::error::{EngineError, Refusal, Result};
use crate::pki;
use crate::planning::desired;

/// What writing the Terraform did.
#[derive(Debug)]
pub struct Written {
    /// Files written or removed (zero: the folder was up to date).
    pub changed: usize,
    /// User-data files among the files.
    pub data_files: usize,
    /// Whether the cluster was recorded as managed by Terraform just now.
    pub recorded_now: bool,
    /// The addons written to (or removed from) the state store.
    pub addons: Vec<String>,
}

/// Writes the cluster's Terraform into `folder`, under the cluster lock.
/// A cluster skiff applied directly is refused (Terraform would create
/// everything again) unless `force_target`.
pub async fn write(
    session: &Session<'_>,
    cluster: &str,
    folder: &Path,
    force_target: bool,
) -> Result<Written> {
    let store = session.store;
    let spec = store.read_spec(cluster).await?;
    let provider = session.provider(&spec.bundle)?;
    session
        .require_secure_store(&format!(
            "write the Terraform of cluster {cluster} (and its PKI into the store)"
        ))
        .await?;
    let (_, model) = desired(&provider, store, &spec).await?;
    let files =
        terraform::generate(&model, &provider.region).map_err(|source| EngineError::Plan {
            cluster: cluster.to_string(),
            source,
        })?;
    let lock = session.lock(cluster, Operation::WriteTerraform).await?;
    let result = async {
        let mut recorded = read_recorded(store, cluster).await?;
        let state = &mut recorded.state;
        let applied_directly =
            state.content.managed_by == ManagedBy::Skiff && !state.content.resources.is_empty();
        if applied_directly && !force_target {
            return Err(Refusal::AppliedDirectly {
                cluster: cluster.to_string(),
                resources: state.content.resources.len(),
            }
            .into());
        }
        let changed = write_files(folder, &files)?;
        let scripts = model
            .bootstrap_scripts()
            .map_err(|source| EngineError::Plan {
                cluster: cluster.to_string(),
                source,
            })?;
        pki::ensure(store, cluster, scripts, session.notes.as_ref()).await?;
        // The addons are state-store objects, like the PKI: skiff writes
        // them here and Terraform never sees them (the index always exists
        // after this: the nodes read it every minute).
        let addons = crate::addons::write_all(store.objects().as_ref(), &spec.bundle).await?;
        let recorded_now = state.content.managed_by != ManagedBy::Terraform;
        if recorded_now {
            state.content.managed_by = ManagedBy::Terraform;
            lock.ensure_held()?;
            recorded::write(
                store.objects().as_ref(),
                cluster,
                recorded.version.as_ref(),
                state,
            )
            .await?;
            session
                .snapshot_state(cluster, state, "recorded as managed by Terraform")
                .await;
        }
        Ok(Written {
            changed,
            data_files: files.files.len() - 1,
            recorded_now,
            addons,
        })
    }
    .await;
    release(&lock).await;
    result
}

/// Writes the files into `folder` (created if missing), each through a
/// temporary file and a rename, so that a file is never half-written;
/// unchanged files are left alone and user-data files of groups that are
/// gone are removed. Everything else in the folder (`.terraform/`, state,
/// the user's own `*.tf` and override files) is never touched. Returns how
/// many files were written or removed.
fn write_files(folder: &Path, files: &TerraformFiles) -> Result<usize> {
    let file_error = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| EngineError::File { what, path, source }
    };
    let data = folder.join(terraform::DATA_DIR);
    std::fs::create_dir_all(&data).map_err(file_error("cannot create the folder", &data))?;
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
        std::fs::write(&temporary, contents).map_err(file_error("cannot write", &temporary))?;
        std::fs::rename(&temporary, &path).map_err(file_error("cannot write", &path))?;
        changed += 1;
    }
    let wanted: BTreeSet<&str> = files.files.keys().map(String::as_str).collect();
    for entry in std::fs::read_dir(&data).map_err(file_error("cannot read", &data))? {
        let entry = entry.map_err(file_error("cannot read", &data))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = format!("{}/{name}", terraform::DATA_DIR);
        if name.ends_with(".user-data") && !wanted.contains(relative.as_str()) {
            std::fs::remove_file(entry.path())
                .map_err(file_error("cannot remove", &entry.path()))?;
            changed += 1;
        }
    }
    Ok(changed)
}
