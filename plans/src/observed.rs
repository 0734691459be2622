//! What exists in AWS, as the provider's refresh found it: resources
//! normalized into the same [`Attributes`] types as the desired model, keyed
//! by their `skiff.dev/resource` tag (or by name where AWS has no tags).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::resource::{Attributes, Output, ResourceKey, ResourceKind};

/// One existing resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedResource {
    /// Its key.
    pub key: ResourceKey,
    /// Its primary ID (an ARN for load balancers, a name for IAM).
    pub id: String,
    /// Its attributes, normalized.
    pub attributes: Attributes,
    /// Values other resources refer to.
    pub outputs: BTreeMap<Output, String>,
}

impl ObservedResource {
    /// The kind.
    pub fn kind(&self) -> ResourceKind {
        self.attributes.kind()
    }
}

/// Everything the refresh found for one cluster.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observed {
    /// Resources by key.
    pub resources: BTreeMap<ResourceKey, ObservedResource>,
    /// Resources tagged for the cluster that are not the one resource of
    /// their key: duplicates left by an interrupted run, or resources whose
    /// key tag is missing. Owned, so the plan deletes them.
    pub strays: Vec<ObservedResource>,
}

impl Observed {
    /// Adds a resource; a second one with the same key becomes a stray.
    pub fn insert(&mut self, resource: ObservedResource) {
        if self.resources.contains_key(&resource.key) {
            self.strays.push(resource);
        } else {
            self.resources.insert(resource.key.clone(), resource);
        }
    }

    /// The outputs of every resource, for resolving references.
    pub fn outputs(&self) -> BTreeMap<ResourceKey, BTreeMap<Output, String>> {
        self.resources
            .iter()
            .map(|(key, resource)| (key.clone(), resource.outputs.clone()))
            .collect()
    }
}
