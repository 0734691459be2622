//! The recorded cloud state of a cluster: what skiff created, with IDs and
//! last-applied attributes, Terraform-style.
//!
//! The content type belongs to the planner; this module only knows the
//! envelope: a `serial` that grows with every write and a `lineage` that
//! names the state's history (a new lineage means a different state, e.g.
//! after a cluster was deleted and created again). A saved plan is bound to
//! both, so applying it after anyone else changed the state is refused.
//! Writes are conditional on the version read; they happen under the
//! cluster lock, so a conflict here means the lock was bypassed or lost.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::layout;
use crate::objects::{ObjectStore, Precondition, PutOptions, Version};

/// The envelope of the recorded state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedState<T> {
    /// The format version of the file.
    pub format: u32,
    /// One more with every write.
    pub serial: u64,
    /// A random ID fixed when the state is first written.
    pub lineage: String,
    /// The planner's content.
    #[serde(flatten)]
    pub content: T,
}

/// The current format of `state.json`.
pub const STATE_FORMAT: u32 = 1;

impl<T> RecordedState<T> {
    /// A first, empty state with a new lineage.
    pub fn new(content: T) -> RecordedState<T> {
        RecordedState {
            format: STATE_FORMAT,
            serial: 0,
            lineage: uuid::Uuid::new_v4().to_string(),
            content,
        }
    }
}

/// A recorded state and the version it was read at.
#[derive(Debug, Clone)]
pub struct StoredState<T> {
    /// The state.
    pub state: RecordedState<T>,
    /// Its version in the store, for the next conditional write.
    pub version: Version,
}

/// Reads the recorded state, if any.
pub async fn read<T: DeserializeOwned>(
    store: &dyn ObjectStore,
    cluster: &str,
) -> Result<Option<StoredState<T>>> {
    let key = layout::recorded_state(cluster);
    let Some(object) = store.get(&key).await? else {
        return Ok(None);
    };
    let state: RecordedState<T> =
        serde_json::from_slice(&object.bytes).map_err(|error| StoreError::Corrupt {
            key: key.clone(),
            message: error.to_string(),
        })?;
    if state.format > STATE_FORMAT {
        return Err(StoreError::Corrupt {
            key,
            message: format!(
                "format {} is newer than this skiff understands ({STATE_FORMAT}); upgrade skiff",
                state.format
            ),
        });
    }
    Ok(Some(StoredState {
        state,
        version: object.version,
    }))
}

/// Writes the state with its serial increased by one, conditional on
/// `previous` (the version read, or `None` when there was no state).
pub async fn write<T: Serialize>(
    store: &dyn ObjectStore,
    cluster: &str,
    previous: Option<&Version>,
    state: &mut RecordedState<T>,
) -> Result<Version> {
    let key = layout::recorded_state(cluster);
    state.serial += 1;
    let body = serde_json::to_vec_pretty(state).map_err(|error| StoreError::Corrupt {
        key: key.clone(),
        message: error.to_string(),
    })?;
    let precondition = match previous {
        Some(version) => Precondition::Matches(version.clone()),
        None => Precondition::DoesNotExist,
    };
    let result = store
        .put(&key, body, precondition, PutOptions::default())
        .await;
    if result.is_err() {
        state.serial -= 1;
    }
    result.map_err(|error| match error {
        StoreError::Conflict { key, .. } => StoreError::Conflict {
            what: format!("the recorded state of cluster {cluster:?}"),
            key,
        },
        other => other,
    })
}

/// Keeps a copy of the state as it is now in the state history.
pub async fn snapshot<T: Serialize>(
    store: &dyn ObjectStore,
    cluster: &str,
    state: &RecordedState<T>,
) -> Result<()> {
    let key = layout::recorded_state_snapshot(cluster, state.serial);
    let body = serde_json::to_vec_pretty(state).map_err(|error| StoreError::Corrupt {
        key: key.clone(),
        message: error.to_string(),
    })?;
    match store
        .put(
            &key,
            body,
            Precondition::DoesNotExist,
            PutOptions::default(),
        )
        .await
    {
        Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(error) => Err(error),
    }
}
