//! Reading and writing spec documents.
//!
//! A file may hold several YAML documents (or JSON, which is YAML too):
//! a `Cluster` and its `InstanceGroup`s. Every parse error names the
//! document and the field path (`spec.subnets[2].cidr`), not just a line.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::cluster::Cluster;
use crate::instance_group::InstanceGroup;
use crate::{API_VERSION, KIND_CLUSTER, KIND_INSTANCE_GROUP};

/// The largest spec file skiff reads. Real specs are a few kilobytes; the
/// limit keeps a hostile file from costing unbounded memory.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// The deepest flow nesting (`[` and `{`) skiff reads: the YAML
/// deserializer refuses anything deeper than 128 levels anyway, but only after
/// its parser has scanned the whole text at a cost of (tokens x depth), which
/// for a hostile file under [`MAX_DOCUMENT_BYTES`] is minutes of CPU.
pub const MAX_FLOW_DEPTH: usize = 128;

/// A spec document that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DocumentError {
    /// Which document of the file (1-based), when the file has several.
    pub document: Option<usize>,
    /// The field path inside the document, e.g. `spec.subnets[2].cidr`.
    pub path: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(document) = self.document {
            write!(formatter, "document {document}: ")?;
        }
        if let Some(path) = &self.path {
            write!(formatter, "{path}: ")?;
        }
        formatter.write_str(&self.message)
    }
}

impl DocumentError {
    fn new(document: Option<usize>, path: Option<&str>, message: impl Into<String>) -> Self {
        DocumentError {
            document,
            path: path.map(crate::text::shorten),
            message: crate::text::shorten(&message.into()),
        }
    }
}

/// One parsed document.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    /// A `Cluster`.
    Cluster(Box<Cluster>),
    /// An `InstanceGroup`.
    InstanceGroup(Box<InstanceGroup>),
}

/// A cluster with all its instance groups: the unit skiff stores, validates
/// and plans.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterBundle {
    /// The cluster.
    pub cluster: Cluster,
    /// Its instance groups, sorted by name.
    pub instance_groups: Vec<InstanceGroup>,
}

impl ClusterBundle {
    /// The cluster's name.
    pub fn name(&self) -> &str {
        self.cluster.name()
    }

    /// The instance group of that name.
    pub fn instance_group(&self, name: &str) -> Option<&InstanceGroup> {
        self.instance_groups
            .iter()
            .find(|group| group.name() == name)
    }

    /// Sorts the groups by name so that the stored form does not depend on
    /// the order they were added in.
    pub fn normalize_order(&mut self) {
        self.instance_groups
            .sort_by(|first, second| first.name().cmp(second.name()));
    }

    /// The bundle as one multi-document YAML text: the cluster, then each
    /// group by name. This is the stored form.
    pub fn to_yaml(&self) -> String {
        let mut text = to_yaml(&self.cluster);
        let mut groups: Vec<&InstanceGroup> = self.instance_groups.iter().collect();
        groups.sort_by(|first, second| first.name().cmp(second.name()));
        for group in groups {
            text.push_str("---\n");
            text.push_str(&to_yaml(group));
        }
        text
    }

    /// Reads a bundle: exactly one `Cluster` and any number of `InstanceGroup`s.
    pub fn from_yaml(text: &str) -> Result<ClusterBundle, DocumentError> {
        let documents = parse_documents(text)?;
        ClusterBundle::from_documents(documents)
    }

    /// Groups parsed documents into a bundle.
    pub fn from_documents(documents: Vec<Document>) -> Result<ClusterBundle, DocumentError> {
        let mut cluster = None;
        let mut instance_groups = Vec::new();
        for (index, document) in documents.into_iter().enumerate() {
            match document {
                Document::Cluster(found) => {
                    if cluster.is_some() {
                        return Err(DocumentError::new(
                            Some(index + 1),
                            Some("kind"),
                            "a second Cluster; a file describes one cluster",
                        ));
                    }
                    cluster = Some(*found);
                }
                Document::InstanceGroup(group) => instance_groups.push(*group),
            }
        }
        let cluster = cluster.ok_or_else(|| {
            DocumentError::new(
                None,
                None,
                "no Cluster document; the file needs `kind: Cluster`",
            )
        })?;
        let mut bundle = ClusterBundle {
            cluster,
            instance_groups,
        };
        bundle.normalize_order();
        Ok(bundle)
    }
}

/// Serializes one value as YAML.
pub fn to_yaml<T: Serialize>(value: &T) -> String {
    // Serializing these plain data types cannot fail: no maps with non-string
    // keys, no non-finite floats.
    serde_norway::to_string(value).unwrap_or_else(|error| format!("# not serializable: {error}\n"))
}

#[derive(Deserialize)]
struct TypeMeta {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
}

/// Parses every document of a YAML (or JSON) text.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, DocumentError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(DocumentError::new(
            None,
            None,
            format!(
                "the file is {} bytes; specs larger than {MAX_DOCUMENT_BYTES} bytes are refused",
                text.len()
            ),
        ));
    }
    check_flow_depth(text)?;
    let mut documents = Vec::new();
    for (index, deserializer) in serde_norway::Deserializer::from_str(text).enumerate() {
        let number = index + 1;
        let value = serde_norway::Value::deserialize(deserializer).map_err(|error| {
            DocumentError::new(Some(number), None, format!("not valid YAML: {error}"))
        })?;
        if value.is_null() {
            // An empty document, e.g. a trailing `---`.
            continue;
        }
        if !value.is_mapping() {
            return Err(DocumentError::new(
                Some(number),
                None,
                "expected a mapping with apiVersion, kind, metadata and spec",
            ));
        }
        let type_meta: TypeMeta = serde_norway::from_value(value.clone()).map_err(|_| {
            DocumentError::new(Some(number), None, "apiVersion and kind must be strings")
        })?;
        match type_meta.api_version.as_deref() {
            Some(API_VERSION) => {}
            Some(other) => {
                return Err(DocumentError::new(
                    Some(number),
                    Some("apiVersion"),
                    format!("{other:?} is not supported; use {API_VERSION}"),
                ))
            }
            None => {
                return Err(DocumentError::new(
                    Some(number),
                    Some("apiVersion"),
                    format!("missing; use {API_VERSION}"),
                ))
            }
        }
        let document = match type_meta.kind.as_deref() {
            Some(KIND_CLUSTER) => Document::Cluster(Box::new(typed(value, number)?)),
            Some(KIND_INSTANCE_GROUP) => Document::InstanceGroup(Box::new(typed(value, number)?)),
            Some(other) => {
                return Err(DocumentError::new(
                    Some(number),
                    Some("kind"),
                    format!(
                    "{other:?} is not a skiff kind; use {KIND_CLUSTER} or {KIND_INSTANCE_GROUP}"
                ),
                ))
            }
            None => {
                return Err(DocumentError::new(
                    Some(number),
                    Some("kind"),
                    format!("missing; use {KIND_CLUSTER} or {KIND_INSTANCE_GROUP}"),
                ))
            }
        };
        documents.push(document);
    }
    if documents.is_empty() {
        return Err(DocumentError::new(None, None, "the file holds no document"));
    }
    Ok(documents)
}

/// Refuses text whose brackets nest deeper than [`MAX_FLOW_DEPTH`], before
/// the YAML parser sees it. Counts every bracket (quoted or not), so it can
/// only overestimate the depth, and no real spec comes near the limit.
fn check_flow_depth(text: &str) -> Result<(), DocumentError> {
    let mut depth: usize = 0;
    for (offset, byte) in text.bytes().enumerate() {
        match byte {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    let line = text[..offset].matches('\n').count() + 1;
                    return Err(DocumentError::new(
                        None,
                        None,
                        format!(
                            "brackets nest more than {MAX_FLOW_DEPTH} levels deep (at line {line}); a spec is never that deep"
                        ),
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn typed<T: DeserializeOwned>(
    value: serde_norway::Value,
    number: usize,
) -> Result<T, DocumentError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let path = (path != ".").then_some(path);
        DocumentError {
            document: Some(number),
            path: path.map(|path| crate::text::shorten(&path)),
            message: crate::text::shorten(&error.into_inner().to_string()),
        }
    })
}

/// Parses a single document of a known type, e.g. an instance group given on
/// its own to `create ig -f`.
pub fn parse_one<T: DeserializeOwned>(text: &str) -> Result<T, DocumentError> {
    let value: serde_norway::Value = serde_norway::from_str(text)
        .map_err(|error| DocumentError::new(None, None, format!("not valid YAML: {error}")))?;
    typed(value, 1).map_err(|mut error| {
        error.document = None;
        error
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_flow_nesting_is_refused_before_parsing() {
        let deep = format!(
            "kind: Cluster\nspec: {}{}\n",
            "[".repeat(200_000),
            "]".repeat(200_000)
        );
        let error = parse_documents(&deep).expect_err("too deep");
        assert!(
            error.message.contains("nest more than 128 levels"),
            "{error}"
        );
        let shallow = format!(
            "kind: Cluster\nspec: {}{}\n",
            "[".repeat(100),
            "]".repeat(100)
        );
        let error = parse_documents(&shallow).expect_err("not a spec");
        assert!(!error.message.contains("nest more than"), "{error}");
    }
}
