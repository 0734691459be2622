//! What skiff records about a cluster's cloud resources in the state store
//! (the content of `state.json`, inside the store's serial/lineage
//! envelope): each resource's ID, outputs and last-applied attributes.
//!
//! The cloud itself, found by tags, is the source of truth for what exists;
//! the record adds what tags cannot say (a Route53 record has no tags, so
//! only the record proves skiff created it) and what was applied last (why
//! a group needs a rolling update).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::resource::{Attributes, Output, ResourceKey, ResourceKind};

/// Who changes the cluster's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ManagedBy {
    /// skiff applies plans directly.
    #[default]
    Skiff,
    /// The cluster is applied through Terraform output.
    Terraform,
}

/// One recorded resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedResource {
    /// The kind.
    pub kind: ResourceKind,
    /// The primary ID.
    pub id: String,
    /// Outputs.
    #[serde(default)]
    pub outputs: BTreeMap<Output, String>,
    /// The attributes last applied (references resolved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Attributes>,
}

/// The recorded state of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RecordedContent {
    /// The cluster.
    pub cluster: String,
    /// Who applies changes.
    #[serde(default)]
    pub managed_by: ManagedBy,
    /// Resources by key.
    #[serde(default)]
    pub resources: BTreeMap<ResourceKey, RecordedResource>,
    /// Instance groups whose launch templates changed since their instances
    /// were last replaced, with what changed (from each apply's plan); a
    /// rolling update clears a group's entry once it is done.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pending_rollouts: BTreeMap<String, Vec<String>>,
    /// Creates an apply is about to make, recorded before any of them
    /// starts, each with the client token it carries; an entry goes when the
    /// created resource is recorded. Entries left by an interrupted apply
    /// tell the next run what may exist without being recorded yet: it
    /// adopts what its refresh finds (every resource carries its key as a
    /// tag or in its unique name) and creates the rest again with the same
    /// token, which EC2 answers with the resource the first attempt made
    /// when it did make one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub intents: BTreeMap<ResourceKey, Intent>,
}

/// A create about to happen (see [`RecordedContent::intents`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    /// `create`, or `replace` (a delete, then a create).
    pub action: crate::plan::Action,
    /// The idempotency token the create carries where the API takes one
    /// (EC2 `ClientToken`), unique to this intent: a later create of the
    /// same key (after a delete or a replace) gets a new one, so it can
    /// never be answered with the resource an old token made.
    pub token: String,
}
