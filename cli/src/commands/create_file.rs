//! `skiff create -f FILE`: store a new cluster, or add instance groups to an
//! existing one. Also the document-merging logic shared with `replace`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use skiff_api::document::{ClusterBundle, Document};
use skiff_api::{Cluster, InstanceGroup, CLUSTER_LABEL};
use skiff_state::StoreError;

use crate::commands::{finalize, read_documents};
use crate::context::{command_line, Context};
use crate::summary;

/// The documents of a file, split by kind.
pub struct FileDocuments {
    pub cluster: Option<Cluster>,
    pub groups: Vec<InstanceGroup>,
}

impl FileDocuments {
    pub fn from(documents: Vec<Document>) -> anyhow::Result<FileDocuments> {
        let mut cluster = None;
        let mut groups = Vec::new();
        for document in documents {
            match document {
                Document::Cluster(found) => {
                    if cluster.is_some() {
                        bail!("the file has two Cluster documents; a file describes one cluster");
                    }
                    cluster = Some(*found);
                }
                Document::InstanceGroup(group) => groups.push(*group),
            }
        }
        Ok(FileDocuments { cluster, groups })
    }

    /// The cluster the documents are about: the Cluster's name, else
    /// `--name`, else the groups' `skiff.dev/cluster` label.
    pub fn cluster_name(&self, flag: Option<&str>) -> anyhow::Result<String> {
        if let Some(cluster) = &self.cluster {
            if let Some(flag) = flag {
                if flag != cluster.name() {
                    bail!(
                        "--name {flag} does not match the file's Cluster {}",
                        cluster.name()
                    );
                }
            }
            return Ok(cluster.name().to_string());
        }
        if let Some(flag) = flag {
            return Ok(flag.to_string());
        }
        let mut labels: Vec<&str> = self
            .groups
            .iter()
            .filter_map(|group| group.metadata.labels.get(CLUSTER_LABEL).map(String::as_str))
            .collect();
        labels.sort();
        labels.dedup();
        match labels.as_slice() {
            [one] => Ok((*one).to_string()),
            [] => bail!("the file has only InstanceGroups: say which cluster they belong to with --name CLUSTER"),
            several => bail!("the InstanceGroups name several clusters ({}); use one file per cluster", several.join(", ")),
        }
    }
}

/// Merges groups into a bundle: same-named groups are replaced, new ones
/// added. With `must_be_new`, an existing name is an error; with
/// `must_exist`, a missing one is.
pub fn merge_groups(
    bundle: &mut ClusterBundle,
    groups: Vec<InstanceGroup>,
    must_be_new: bool,
    must_exist: bool,
) -> anyhow::Result<()> {
    for group in groups {
        let position = bundle
            .instance_groups
            .iter()
            .position(|existing| existing.name() == group.name());
        match position {
            Some(_) if must_be_new => bail!(
                "instance group {:?} already exists in cluster {}; use `skiff replace -f` to change it",
                group.name(),
                bundle.name()
            ),
            None if must_exist => bail!(
                "instance group {:?} does not exist in cluster {}; use `skiff create -f` to add it (or --force)",
                group.name(),
                bundle.name()
            ),
            Some(index) => bundle.instance_groups[index] = group,
            None => bundle.instance_groups.push(group),
        }
    }
    Ok(())
}

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
