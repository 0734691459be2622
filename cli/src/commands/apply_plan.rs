//! `skiff apply FILE`: apply exactly a plan saved by `update cluster --out`,
//! refusing it when the recorded state or the spec changed since it was
//! made (it would no longer describe what it changes).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use skiff_plans::plan::PLAN_FORMAT;
use skiff_plans::{ManagedBy, Plan};

use crate::args::ApplyArgs;
use crate::cloud;
use crate::commands::update_cluster::{ensure_keystore, require_s3_store, run_apply};
use crate::context::Context;

pub async fn run(context: &Context, arguments: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&arguments.plan)
        .with_context(|| format!("cannot read the plan {}", arguments.plan.display()))?;
    let plan: Plan = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a skiff plan file", arguments.plan.display()))?;
    if plan.format != PLAN_FORMAT {
        bail!(
            "{} has plan format {}, this skiff reads format {PLAN_FORMAT}; make a new plan with `skiff update cluster {} --out FILE`",
            arguments.plan.display(),
            plan.format,
            plan.cluster
        );
    }
    let store = context.store().await?;
    require_s3_store(&store, &plan.cluster)?;
    let spec = store.read_spec(&plan.cluster).await?;
    let lock = store
        .lock(&plan.cluster, "apply saved plan")
        .await
        .with_context(|| format!("cannot apply the plan of cluster {}", plan.cluster))?;
    let lock = Arc::new(lock);
    let result = async {
        let (state, version) = cloud::read_recorded(&store, &plan.cluster).await?;
        if state.content.managed_by == ManagedBy::Terraform {
            bail!(cloud::managed_by_terraform(&plan.cluster));
        }
        let current_lineage = version.as_ref().map(|_| state.lineage.clone());
        let current_serial = if version.is_some() { state.serial } else { 0 };
        if current_lineage != plan.state.lineage || current_serial != plan.state.serial {
            bail!(
                "the plan in {} is stale: it was made at recorded state serial {} (lineage {}), but the state of cluster {} is now at serial {} (lineage {}): someone applied changes since. Nothing was changed; make a new plan with `skiff update cluster {} --out {}`",
                arguments.plan.display(),
                plan.state.serial,
                plan.state.lineage.as_deref().unwrap_or("none"),
                plan.cluster,
                current_serial,
                current_lineage.as_deref().unwrap_or("none"),
                plan.cluster,
                arguments.plan.display()
            );
        }
        if spec.revision.serial != plan.spec_revision {
            bail!(
                "the plan in {} is stale: it was made from spec revision {}, but cluster {} is now at revision {}. Nothing was changed; make a new plan",
                arguments.plan.display(),
                plan.spec_revision,
                plan.cluster,
                spec.revision.serial
            );
        }
        if plan.is_empty() {
            context.printer.info("The plan has no changes.");
            return Ok(ExitCode::SUCCESS);
        }
        let provider = cloud::provider(context, &spec.bundle).await?;
        ensure_keystore(context, &store, &plan.cluster).await?;
        run_apply(context, &store, &provider, &plan, None, lock.clone(), state, version, arguments.parallelism).await
    }
    .await;
    if let Err(error) = lock.release().await {
        tracing::warn!("releasing the cluster lock failed (it expires by itself): {error}");
    }
    result
}
