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

use time::OffsetDateTime;

use crate::error::{Result, StoreError};
use crate::identity::Actor;
use crate::layout;
use crate::objects::{ObjectStore, Precondition, PutOptions, Version};
use crate::specs::Change;

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

/// Who made the recorded state what a snapshot holds, when, with which
/// command, and a one-line summary (e.g. the plan applied). Stored in the
/// snapshot under `change`, so the state history is as auditable as the
/// spec history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateChange {
    /// When (UTC, RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub written_at: OffsetDateTime,
    /// Who.
    pub written_by: Actor,
    /// The command line, e.g. `skiff update cluster c1.example.com --yes`.
    pub command: String,
    /// A one-line summary, e.g. `Applied 3 changes: 2 created, 1 updated`.
    pub summary: String,
}

/// A snapshot as stored: the state (every field of `state.json`, so a
/// snapshot can be read as a state) plus the [`StateChange`] header.
#[derive(Serialize)]
struct SnapshotBody<'state, T> {
    #[serde(flatten)]
    state: &'state RecordedState<T>,
    change: StateChange,
}

/// What the history needs of a snapshot: its serial and header. Snapshots
/// written before headers were kept have none.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotHeader {
    /// The serial of the state the snapshot holds.
    pub serial: u64,
    /// Who, when, how; `None` for snapshots older than the header.
    #[serde(default)]
    pub change: Option<StateChange>,
}

/// Keeps a copy of the state as it is now in the state history, with who
/// made it so (`change.actor`), the command and a summary. A snapshot of
/// this serial that exists already is kept as it is.
pub async fn snapshot<T: Serialize>(
    store: &dyn ObjectStore,
    cluster: &str,
    state: &RecordedState<T>,
    change: &Change,
) -> Result<()> {
    let key = layout::recorded_state_snapshot(cluster, state.serial);
    let header = StateChange {
        written_at: crate::specs::now(),
        written_by: change.actor.clone(),
        command: change.command.clone(),
        summary: change.summary.clone(),
    };
    let body = serde_json::to_vec_pretty(&SnapshotBody {
        state,
        change: header,
    })
    .map_err(|error| StoreError::Corrupt {
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

/// The headers of every snapshot of the recorded state, oldest first.
pub async fn snapshots(store: &dyn ObjectStore, cluster: &str) -> Result<Vec<SnapshotHeader>> {
    let mut headers = Vec::new();
    for key in store.list(&layout::state_history_folder(cluster)).await? {
        let Some(object) = store.get(&key).await? else {
            continue;
        };
        let header: SnapshotHeader =
            serde_json::from_slice(&object.bytes).map_err(|error| StoreError::Corrupt {
                key: key.clone(),
                message: error.to_string(),
            })?;
        headers.push(header);
    }
    headers.sort_by_key(|header| header.serial);
    Ok(headers)
}
