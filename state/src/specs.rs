//! Cluster specs in the store, with no lost updates and a full history.
//!
//! The spec of a cluster is a log of revisions. Writing revision `N+1`
//! happens in two steps:
//!
//! 1. **claim**: create `history/spec/<N+1>.yaml` with `If-None-Match: *`.
//!    Exactly one writer can claim a serial, so this is the moment a change
//!    happens. A writer that based its change on `N` and loses the claim gets
//!    a "changed since you read it" error; nothing of theirs is stored.
//! 2. **publish**: replace `spec.yaml` (the head, which readers use) with
//!    `If-Match` on the version read.
//!
//! A writer that dies between the two steps leaves a claimed revision that
//! the head does not show yet; the next writer notices (its claim of `N+1`
//! fails while the head still says `N`) and publishes that revision first,
//! so a crash never wedges the log and never loses an acknowledged change.

use serde::{Deserialize, Serialize};
use skiff_api::document::ClusterBundle;
use skiff_api::API_VERSION;
use time::OffsetDateTime;

use crate::error::{Result, StoreError};
use crate::identity::Actor;
use crate::layout;
use crate::objects::{ObjectStore, Precondition, PutOptions, Version};

/// The `kind` of the header document that opens every stored spec.
pub const REVISION_KIND: &str = "Revision";

/// Who changed a spec, when, how and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Revision {
    /// Always `skiff.dev/v1alpha1`.
    pub api_version: String,
    /// Always `Revision`.
    pub kind: String,
    /// 1 for the first spec of a cluster, then one more per change.
    pub serial: u64,
    /// When (UTC, RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub written_at: OffsetDateTime,
    /// Who.
    pub written_by: Actor,
    /// The command line, e.g. `skiff edit cluster c1.example.com`.
    pub command: String,
    /// A one-line summary of the change.
    pub summary: String,
}

/// Metadata of a change about to be written.
#[derive(Debug, Clone)]
pub struct Change {
    /// Who.
    pub actor: Actor,
    /// The command line.
    pub command: String,
    /// A one-line summary.
    pub summary: String,
}

/// A spec as stored, with the version it was read at.
#[derive(Debug, Clone)]
pub struct StoredSpec {
    /// The cluster and its instance groups.
    pub bundle: ClusterBundle,
    /// The revision header.
    pub revision: Revision,
    /// The head's version, for the next conditional write.
    pub version: Version,
}

/// Renders a stored spec: the revision header, then the bundle.
pub fn render(revision: &Revision, bundle: &ClusterBundle) -> String {
    let mut text = skiff_api::document::to_yaml(revision);
    text.push_str("---\n");
    text.push_str(&bundle.to_yaml());
    text
}

/// Parses a stored spec.
pub fn parse(key: &str, bytes: &[u8]) -> Result<(Revision, ClusterBundle)> {
    let corrupt = |message: String| StoreError::Corrupt {
        key: key.to_string(),
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| corrupt("not UTF-8".to_string()))?;
    let (header, body) = text
        .split_once("\n---\n")
        .ok_or_else(|| corrupt("no revision header".to_string()))?;
    let revision: Revision = serde_norway::from_str(header)
        .map_err(|error| corrupt(format!("revision header: {error}")))?;
    if revision.kind != REVISION_KIND {
        return Err(corrupt(format!(
            "the header kind is {:?}, not {REVISION_KIND}",
            revision.kind
        )));
    }
    let bundle = ClusterBundle::from_yaml(body).map_err(|error| corrupt(error.to_string()))?;
    Ok((revision, bundle))
}

/// The time now (UTC), to the second, as history headers record it.
pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
}

fn revision(serial: u64, change: &Change) -> Revision {
    Revision {
        api_version: API_VERSION.to_string(),
        kind: REVISION_KIND.to_string(),
        serial,
        written_at: now(),
        written_by: change.actor.clone(),
        command: change.command.clone(),
        summary: change.summary.clone(),
    }
}

fn what(cluster: &str) -> String {
    format!("cluster {cluster:?}")
}

/// Reads the current spec of a cluster.
pub async fn read(store: &dyn ObjectStore, cluster: &str) -> Result<Option<StoredSpec>> {
    let key = layout::spec(cluster);
    let Some(object) = store.get(&key).await? else {
        return Ok(None);
    };
    let (revision, bundle) = parse(&key, &object.bytes)?;
    Ok(Some(StoredSpec {
        bundle,
        revision,
        version: object.version,
    }))
}

/// Stores the first spec of a new cluster. Fails with
/// [`StoreError::AlreadyExists`] when the cluster exists.
pub async fn create(
    store: &dyn ObjectStore,
    bundle: &ClusterBundle,
    change: &Change,
) -> Result<StoredSpec> {
    let cluster = bundle.name();
    let header = revision(1, change);
    let text = render(&header, bundle);
    let already = |key: String| StoreError::AlreadyExists {
        what: what(cluster),
        key,
    };
    // The head first: once old revisions are pruned (`skiff history
    // --prune`), revision 1 of a live cluster may be gone, and claiming it
    // again must not happen.
    if store.get(&layout::spec(cluster)).await?.is_some() {
        return Err(already(layout::spec(cluster)));
    }
    let history_key = layout::spec_revision(cluster, 1);
    match store
        .put(
            &history_key,
            text.clone().into_bytes(),
            Precondition::DoesNotExist,
            PutOptions::default(),
        )
        .await
    {
        Ok(_) => {}
        Err(StoreError::Conflict { .. }) => return Err(already(layout::spec(cluster))),
        Err(error) => return Err(error),
    }
    let head_key = layout::spec(cluster);
    match store
        .put(
            &head_key,
            text.into_bytes(),
            Precondition::DoesNotExist,
            PutOptions::default(),
        )
        .await
    {
        Ok(version) => Ok(StoredSpec {
            bundle: bundle.clone(),
            revision: header,
            version,
        }),
        Err(StoreError::Conflict { .. }) => Err(already(head_key)),
        Err(error) => Err(error),
    }
}

/// Stores a new revision of a spec read as `previous`. Fails with
/// [`StoreError::Conflict`] when anyone changed the spec since.
pub async fn update(
    store: &dyn ObjectStore,
    previous: &StoredSpec,
    bundle: &ClusterBundle,
    change: &Change,
) -> Result<StoredSpec> {
    let cluster = previous.bundle.name();
    let serial = previous.revision.serial + 1;
    let header = revision(serial, change);
    let text = render(&header, bundle);
    let history_key = layout::spec_revision(cluster, serial);
    let head_key = layout::spec(cluster);
    match store
        .put(
            &history_key,
            text.clone().into_bytes(),
            Precondition::DoesNotExist,
            PutOptions::default(),
        )
        .await
    {
        Ok(_) => {}
        Err(StoreError::Conflict { .. }) => {
            // Someone claimed this serial first. If their publish has not
            // happened (they may have died), do it for them, then report the
            // conflict: our change was based on an outdated spec.
            publish_claimed(store, cluster, previous).await?;
            return Err(conflict(store, cluster, serial).await);
        }
        Err(error) => return Err(error),
    }
    match store
        .put(
            &head_key,
            text.clone().into_bytes(),
            Precondition::Matches(previous.version.clone()),
            PutOptions::default(),
        )
        .await
    {
        Ok(version) => Ok(StoredSpec {
            bundle: bundle.clone(),
            revision: header,
            version,
        }),
        Err(StoreError::Conflict { .. }) => {
            // Another writer published our claimed revision on our behalf.
            match store.get(&head_key).await? {
                Some(object) if object.bytes == text.as_bytes() => Ok(StoredSpec {
                    bundle: bundle.clone(),
                    revision: header,
                    version: object.version,
                }),
                _ => Err(StoreError::Conflict {
                    what: what(cluster),
                    key: head_key,
                }),
            }
        }
        Err(error) => Err(error),
    }
}

/// Publishes the revision after `previous` if it was claimed but the head
/// still shows `previous`.
async fn publish_claimed(
    store: &dyn ObjectStore,
    cluster: &str,
    previous: &StoredSpec,
) -> Result<()> {
    let head_key = layout::spec(cluster);
    let Some(head) = store.get(&head_key).await? else {
        return Ok(());
    };
    if head.version != previous.version {
        return Ok(());
    }
    let claimed_key = layout::spec_revision(cluster, previous.revision.serial + 1);
    let Some(claimed) = store.get(&claimed_key).await? else {
        return Ok(());
    };
    match store
        .put(
            &head_key,
            claimed.bytes,
            Precondition::Matches(head.version),
            PutOptions::default(),
        )
        .await
    {
        Ok(_) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(error) => Err(error),
    }
}

async fn conflict(store: &dyn ObjectStore, cluster: &str, serial: u64) -> StoreError {
    let key = layout::spec_revision(cluster, serial);
    let by = match store.get(&key).await {
        Ok(Some(object)) => parse(&key, &object.bytes).ok().map(|(revision, _)| {
            format!(
                " by {} at {} ({})",
                revision.written_by, revision.written_at, revision.command
            )
        }),
        _ => None,
    };
    StoreError::Conflict {
        what: format!(
            "{}{}",
            what(cluster),
            by.map(|by| format!(" (revision {serial} was written{by})"))
                .unwrap_or_default()
        ),
        key: layout::spec(cluster),
    }
}

/// One revision of a cluster's spec, if it is in the history (it may never
/// have existed, or have been pruned).
pub async fn read_revision(
    store: &dyn ObjectStore,
    cluster: &str,
    serial: u64,
) -> Result<Option<(Revision, ClusterBundle)>> {
    let key = layout::spec_revision(cluster, serial);
    match store.get(&key).await? {
        Some(object) => parse(&key, &object.bytes).map(Some),
        None => Ok(None),
    }
}

/// Every revision of a cluster's spec, oldest first.
pub async fn history(
    store: &dyn ObjectStore,
    cluster: &str,
) -> Result<Vec<(Revision, ClusterBundle)>> {
    let mut revisions = Vec::new();
    for key in store.list(&layout::spec_history_folder(cluster)).await? {
        if let Some(object) = store.get(&key).await? {
            revisions.push(parse(&key, &object.bytes)?);
        }
    }
    revisions.sort_by_key(|(revision, _)| revision.serial);
    Ok(revisions)
}
