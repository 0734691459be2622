//! Dependency order of resources: a resource comes after everything it
//! refers to. Used to order creates and updates, to check the model has no
//! cycle, and by the executor to run independent steps in parallel.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::PlanError;
use crate::resource::{DesiredResource, ResourceKey};

/// The resources' keys in an order where every dependency comes first;
/// ties broken by key so the order is deterministic.
pub fn order(resources: &[DesiredResource]) -> Result<Vec<ResourceKey>, PlanError> {
    let known: BTreeSet<&ResourceKey> = resources.iter().map(|resource| &resource.key).collect();
    let mut waiting: BTreeMap<ResourceKey, BTreeSet<ResourceKey>> = resources
        .iter()
        .map(|resource| {
            let dependencies = resource
                .dependencies()
                .into_iter()
                .filter(|dependency| known.contains(dependency) && *dependency != resource.key)
                .collect();
            (resource.key.clone(), dependencies)
        })
        .collect();
    let mut ordered = Vec::with_capacity(resources.len());
    while !waiting.is_empty() {
        let ready: Vec<ResourceKey> = waiting
            .iter()
            .filter(|(_, dependencies)| dependencies.is_empty())
            .map(|(key, _)| key.clone())
            .collect();
        if ready.is_empty() {
            let keys: Vec<String> = waiting.keys().map(ToString::to_string).collect();
            return Err(PlanError::Cycle {
                keys: keys.join(", "),
            });
        }
        for key in ready {
            waiting.remove(&key);
            for dependencies in waiting.values_mut() {
                dependencies.remove(&key);
            }
            ordered.push(key);
        }
    }
    Ok(ordered)
}
