//! `skiff replace -f FILE`: the documents of the file replace the stored
//! objects of the same name (the Cluster, and each InstanceGroup named in
//! the file; groups not in the file are kept). The write is conditional on
//! the revision read, so a concurrent change is never overwritten.

use std::process::ExitCode;

use anyhow::Context as _;
use skiff_api::document::ClusterBundle;
use skiff_state::StoreError;

use crate::args::ReplaceArgs;
use crate::context::{command_line, Context};
use crate::documents::{check_architectures, finalize, read_documents};
use crate::documents::{merge_groups, FileDocuments};
use crate::summary;

pub async fn run(context: &Context, arguments: &ReplaceArgs) -> anyhow::Result<ExitCode> {
    let documents = FileDocuments::from(read_documents(&arguments.filename)?)?;
    let cluster_name = documents.cluster_name(arguments.name.as_deref())?;
    let store = context.store().await?;

    let previous = match store.read_spec(&cluster_name).await {
        Ok(previous) => previous,
        Err(StoreError::NotFound { .. }) if arguments.force && documents.cluster.is_some() => {
            let mut bundle = ClusterBundle {
                cluster: documents.cluster.clone().context("checked above")?,
                instance_groups: Vec::new(),
            };
            merge_groups(&mut bundle, documents.groups, false, false)?;
            finalize(context, &mut bundle)?;
            check_architectures(context, None, &bundle).await?;
            let stored = store
                .create_spec(&bundle, &command_line(), "created by replace --force")
                .await
                .with_context(|| format!("cannot create cluster {cluster_name}"))?;
            context.printer.info(&format!(
                "Created cluster {cluster_name} (revision {}).",
                stored.revision.serial
            ));
            return Ok(ExitCode::SUCCESS);
        }
        Err(error) => return Err(error.into()),
    };

    let mut bundle = previous.bundle.clone();
    if let Some(cluster) = documents.cluster {
        bundle.cluster = cluster;
    }
    let must_exist = !arguments.force;
    merge_groups(&mut bundle, documents.groups, false, must_exist)?;
    finalize(context, &mut bundle)?;

    if bundle == previous.bundle {
        context.printer.info(&format!(
            "No changes: cluster {cluster_name} already matches {} (revision {}).",
            arguments.filename.display(),
            previous.revision.serial
        ));
        return Ok(ExitCode::SUCCESS);
    }
    check_architectures(context, Some(&previous.bundle), &bundle).await?;
    let summary = summary::describe(&previous.bundle, &bundle);
    let stored = store
        .update_spec(&previous, &bundle, &command_line(), &summary)
        .await
        .with_context(|| format!("cannot replace cluster {cluster_name}"))?;
    context.printer.info(&format!(
        "Replaced cluster {cluster_name}: {summary} (revision {}).\nNext: skiff update cluster {cluster_name}",
        stored.revision.serial
    ));
    Ok(ExitCode::SUCCESS)
}
