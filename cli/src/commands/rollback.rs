//! `skiff rollback CLUSTER --to REVISION`: the spec of an earlier revision
//! becomes the cluster's spec again, as a new revision (the history is never
//! rewritten). Only the store changes; `update cluster` then previews the
//! AWS changes that bring the cloud back.

use std::process::ExitCode;

use anyhow::Context as _;

use crate::args::RollbackArgs;
use crate::context::{command_line, Context};
use crate::revisions::{revision, spec_diff};
use crate::summary;

pub async fn run(context: &Context, arguments: &RollbackArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let cluster = arguments.name.as_str();
    let head = store.read_spec(cluster).await?;
    let (target_revision, target) = revision(&store, cluster, arguments.to).await?;
    if target == head.bundle {
        context.printer.info(&format!(
            "No changes: cluster {cluster} is at revision {}, which already holds the spec of revision {}.",
            head.revision.serial, arguments.to
        ));
        return Ok(ExitCode::SUCCESS);
    }
    // The old spec was valid when it was written; this skiff may check more.
    let warnings = skiff_api::validate(&target).with_context(|| {
        format!(
            "revision {} of cluster {cluster} is not valid for this version of skiff, so it cannot be restored as it is; restore it by hand with `skiff replace -f` after fixing it (nothing was changed)",
            arguments.to
        )
    })?;
    for warning in warnings {
        context.printer.warn(&warning.to_string());
    }
    // Rolling back the version is a downgrade like any other; the store
    // refuses it too, checked here so that --dry-run says so.
    skiff_api::version::check_change(
        Some(head.bundle.cluster.spec.kubernetes_version),
        target.cluster.spec.kubernetes_version,
    )
    .with_context(|| {
        format!(
            "revision {} of cluster {cluster} cannot be restored as it is (nothing was changed); restore the other changes with `skiff replace -f`, keeping spec.kubernetesVersion",
            arguments.to
        )
    })?;
    let change = summary::describe(&head.bundle, &target);
    if arguments.dry_run {
        let label = format!("revision {} restored", arguments.to);
        context
            .printer
            .data(&spec_diff((&head.revision, &head.bundle), &label, &target));
        context.printer.info(&format!(
            "Would restore the spec of revision {} (by {}) as revision {}: {change}. Nothing was changed.",
            arguments.to,
            target_revision.written_by,
            head.revision.serial + 1
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let summary = format!("rollback to revision {}: {change}", arguments.to);
    let stored = store
        .update_spec(&head, &target, &command_line(), &summary)
        .await
        .with_context(|| format!("cannot roll back cluster {cluster}"))?;
    context.printer.info(&format!(
        "Rolled back cluster {cluster} to the spec of revision {} (now revision {}): {change}.\nNext: skiff update cluster {cluster}",
        arguments.to, stored.revision.serial
    ));
    Ok(ExitCode::SUCCESS)
}
