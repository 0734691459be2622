//! `skiff create -f FILE`: store a new cluster, or add instance groups to an
//! existing one.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use skiff_api::document::ClusterBundle;
use skiff_state::StoreError;

use crate::context::{command_line, Context};
use crate::documents::{
    check_architectures, finalize, merge_groups, read_documents, FileDocuments,
};
use crate::summary;

pub async fn run(context: &Context, path: &Path, name: Option<&str>) -> anyhow::Result<ExitCode> {
    let documents = FileDocuments::from(read_documents(path)?)?;
    let cluster_name = documents.cluster_name(name)?;
    let store = context.store().await?;
    match documents.cluster {
        Some(cluster) => {
            let mut bundle = ClusterBundle {
                cluster,
                instance_groups: Vec::new(),
            };
            merge_groups(&mut bundle, documents.groups, true, false)?;
            finalize(context, &mut bundle)?;
            check_architectures(context, None, &bundle).await?;
            context
                .require_secure_store(&store, &format!("create cluster {cluster_name}"))
                .await?;
            let stored = match store.create_spec(&bundle, &command_line(), "created from a file").await {
                Err(StoreError::AlreadyExists { .. }) => bail!(
                    "cluster {cluster_name} already exists in {}; use `skiff replace -f {}` to change it",
                    store.location(),
                    path.display()
                ),
                other => other.with_context(|| format!("cannot create cluster {cluster_name}"))?,
            };
            context.printer.info(&format!(
                "Created cluster {cluster_name} with {} instance group(s) in {} (revision {}).\nNext: skiff update cluster {cluster_name}",
                bundle.instance_groups.len(),
                store.location(),
                stored.revision.serial
            ));
        }
        None => {
            let previous = store.read_spec(&cluster_name).await?;
            let mut bundle = previous.bundle.clone();
            let names: Vec<String> = documents
                .groups
                .iter()
                .map(|group| group.name().to_string())
                .collect();
            merge_groups(&mut bundle, documents.groups, true, false)?;
            finalize(context, &mut bundle)?;
            check_architectures(context, Some(&previous.bundle), &bundle).await?;
            let summary = summary::describe(&previous.bundle, &bundle);
            let stored = store
                .update_spec(&previous, &bundle, &command_line(), &summary)
                .await
                .with_context(|| format!("cannot add instance groups to cluster {cluster_name}"))?;
            context.printer.info(&format!(
                "Added instance group(s) {} to cluster {cluster_name} (revision {}).\nNext: skiff update cluster {cluster_name}",
                names.join(", "),
                stored.revision.serial
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}
