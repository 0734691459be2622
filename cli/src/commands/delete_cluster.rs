//! `skiff delete cluster`: with `--unregister`, forget the cluster (remove
//! every object of it from the state store) and leave AWS alone.

use std::process::ExitCode;

use anyhow::{bail, Context as _};

use crate::args::DeleteClusterArgs;
use crate::context::Context;

pub async fn run(context: &Context, arguments: &DeleteClusterArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let spec = store.read_spec(&arguments.name).await?;
    if !arguments.unregister {
        bail!(
            "deleting the AWS resources of a cluster is not available in this build; \
             to forget cluster {} and leave its AWS resources alone, run `skiff delete cluster {} --unregister --yes`",
            arguments.name,
            arguments.name
        );
    }
    if !arguments.yes {
        context.printer.info(&format!(
            "Would remove cluster {} ({} instance groups, revision {}) and its history, recorded state and secrets from {}.\n\
             AWS resources are left as they are. Run again with --yes to remove it.",
            arguments.name,
            spec.bundle.instance_groups.len(),
            spec.revision.serial,
            store.location()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    // Under the lock, so that no update is halfway through when the spec goes.
    let lock = store
        .lock(&arguments.name, "delete cluster --unregister")
        .await
        .with_context(|| format!("cannot unregister cluster {}", arguments.name))?;
    let removed = store.remove_cluster(&arguments.name).await?;
    lock.release().await?;
    context.printer.info(&format!(
        "Removed cluster {} from {} ({removed} objects). AWS resources were not touched.",
        arguments.name,
        store.location()
    ));
    Ok(ExitCode::SUCCESS)
}
