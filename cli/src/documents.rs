//! Spec documents from files: reading (a file or standard input, bounded),
//! splitting by kind, merging instance groups into a cluster, and the
//! defaults and validation every stored spec goes through. Shared by
//! `create -f`, `replace -f`, `edit` and `create cluster`/`ig`.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context as _};
use skiff_api::document::{parse_documents, ClusterBundle, Document};
use skiff_api::{Cluster, InstanceGroup, CLUSTER_LABEL};

use crate::context::Context;

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

/// Reads a spec file (or standard input for `-`) and parses its documents.
pub fn read_documents(path: &Path) -> anyhow::Result<Vec<Document>> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .take(skiff_api::document::MAX_DOCUMENT_BYTES as u64 + 1)
            .read_to_string(&mut text)
            .context("cannot read the spec from standard input")?;
        text
    } else {
        let metadata =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if metadata.len() > skiff_api::document::MAX_DOCUMENT_BYTES as u64 {
            bail!(
                "{} is {} bytes; specs larger than {} bytes are refused",
                path.display(),
                metadata.len(),
                skiff_api::document::MAX_DOCUMENT_BYTES
            );
        }
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))?
    };
    parse_documents(&text).with_context(|| format!("{} is not a valid skiff spec", path.display()))
}

/// Fills defaults, validates, and prints warnings. The bundle is ready to
/// store when this succeeds.
pub fn finalize(context: &Context, bundle: &mut ClusterBundle) -> anyhow::Result<()> {
    skiff_api::defaults::apply_defaults(bundle);
    let warnings = skiff_api::validate(bundle)?;
    for warning in warnings {
        context.printer.warn(&warning.to_string());
    }
    Ok(())
}

/// The architecture check of the groups a write adds or changes, before
/// anything is stored (see `skiff_engine::architecture`): AWS is asked only
/// when such a group names an AMI ID or mixes instance types.
pub async fn check_architectures(
    context: &Context,
    previous: Option<&ClusterBundle>,
    bundle: &ClusterBundle,
) -> anyhow::Result<()> {
    if skiff_engine::architecture::groups_to_check(previous, bundle).is_empty() {
        return Ok(());
    }
    let aws = context.aws_config().await?;
    skiff_engine::architecture::check_architectures(aws, previous, bundle).await?;
    Ok(())
}
