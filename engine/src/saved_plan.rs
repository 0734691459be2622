//! Plans saved for review (`update cluster --out FILE`) and applied later
//! exactly as saved (`apply FILE`), refused when the recorded state or the
//! spec changed since the plan was made: it would no longer describe what
//! it changes. The format is documented in docs/plan-format.md.

use std::path::Path;

use skiff_plans::plan::PLAN_FORMAT;
use skiff_plans::{ManagedBy, Plan};

use crate::apply::{apply_locked, Applied, ApplyRun};
use crate::cluster::{read_recorded, release, require_s3_store, Operation, Session};
use crate::error::{EngineError, Refusal, Result};
use crate::pki;

/// Writes a plan file.
pub fn save(plan: &Plan, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(plan).map_err(|source| EngineError::Corrupt {
        key: path.display().to_string(),
        source,
    })?;
    std::fs::write(path, text + "\n").map_err(|source| EngineError::File {
        what: "cannot write the plan to",
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a plan file, refusing a format this skiff does not read.
pub fn read(path: &Path) -> Result<Plan> {
    let text = std::fs::read_to_string(path).map_err(|source| EngineError::File {
        what: "cannot read the plan",
        path: path.to_path_buf(),
        source,
    })?;
    let plan: Plan = serde_json::from_str(&text).map_err(|source| EngineError::NotAPlan {
        path: path.to_path_buf(),
        source,
    })?;
    if plan.format != PLAN_FORMAT {
        return Err(Refusal::PlanFormat {
            file: path.display().to_string(),
            found: plan.format,
            expected: PLAN_FORMAT,
            cluster: plan.cluster.clone(),
        }
        .into());
    }
    Ok(plan)
}

/// Applies a saved plan under the cluster lock, if it still describes the
/// cluster (`file` names it in messages). `None`: it has no changes.
pub async fn apply(
    session: &Session<'_>,
    plan: &Plan,
    file: &str,
    run: ApplyRun,
) -> Result<Option<Applied>> {
    let store = session.store;
    let cluster = &plan.cluster;
    require_s3_store(store, cluster)?;
    session
        .require_secure_store(&format!("apply the plan {file} to cluster {cluster}"))
        .await?;
    let spec = store.read_spec(cluster).await?;
    let lock = session.lock(cluster, Operation::ApplySavedPlan).await?;
    let checked = async {
        let recorded = read_recorded(store, cluster).await?;
        if recorded.state.content.managed_by == ManagedBy::Terraform {
            return Err(Refusal::ManagedByTerraform {
                cluster: cluster.clone(),
            }
            .into());
        }
        let current = recorded.binding();
        if current != plan.state {
            return Err(Refusal::StaleState {
                file: file.to_string(),
                cluster: cluster.clone(),
                planned_serial: plan.state.serial,
                planned_lineage: plan.state.lineage.clone().unwrap_or_else(|| "none".into()),
                current_serial: current.serial,
                current_lineage: current.lineage.unwrap_or_else(|| "none".into()),
            }
            .into());
        }
        if spec.revision.serial != plan.spec_revision {
            return Err(Refusal::StaleSpec {
                file: file.to_string(),
                cluster: cluster.clone(),
                planned: plan.spec_revision,
                current: spec.revision.serial,
            }
            .into());
        }
        if plan.is_empty() {
            return Ok(None);
        }
        let provider = session.provider(&spec.bundle)?;
        let scripts = plan
            .bootstrap_scripts()
            .map_err(|source| EngineError::Plan {
                cluster: cluster.clone(),
                source,
            })?;
        pki::ensure(store, cluster, scripts, session.notes.as_ref()).await?;
        crate::addons::ensure_index(store.objects().as_ref(), cluster).await?;
        let operations = crate::addons::AddonOperations::new(
            provider,
            store.objects().clone(),
            cluster,
            crate::addons::render(&spec.bundle)?,
        );
        Ok(Some((recorded, operations)))
    }
    .await;
    match checked {
        Ok(Some((recorded, operations))) => {
            apply_locked(session, &operations, plan, lock, recorded, None, run)
                .await
                .map(Some)
        }
        Ok(None) => {
            release(&lock).await;
            Ok(None)
        }
        Err(error) => {
            release(&lock).await;
            Err(error)
        }
    }
}
