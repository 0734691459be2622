//! Pruning the history of a cluster: old spec revisions and recorded-state
//! snapshots. Off by default: nothing is ever removed unless someone runs
//! `skiff history CLUSTER --prune` with `--keep N` and/or `--older-than AGE`.
//!
//! Pruning is safe for the claim protocol of [`crate::specs`]: a writer
//! claims revision `N+1` (the one after the head) with `If-None-Match`, and
//! pruning never touches the head's revision, anything newer (a claimed
//! revision not yet published), or the newest entries of either history.

use std::time::Duration;

use time::OffsetDateTime;

use crate::error::Result;
use crate::layout;
use crate::objects::{ObjectStore, Precondition};
use crate::recorded;
use crate::specs;

/// Which history entries to keep. An entry is removed only when every rule
/// given says so; with no rule, nothing is removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep the newest N entries of each history (at least 1 is always kept).
    pub keep: Option<usize>,
    /// Keep entries written less than this long ago.
    pub older_than: Option<Duration>,
}

impl Retention {
    /// Whether any rule is set (without one, pruning removes nothing).
    pub fn is_set(&self) -> bool {
        self.keep.is_some() || self.older_than.is_some()
    }
}

/// What pruning removed (or, in a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Serials of the spec revisions.
    pub spec_revisions: Vec<u64>,
    /// Serials of the recorded-state snapshots.
    pub state_snapshots: Vec<u64>,
}

/// The serial a history key names (`.../0000000042.yaml` → 42).
fn serial_of(key: &str) -> Option<u64> {
    let name = key.rsplit('/').next()?;
    let stem = name.split('.').next()?;
    stem.parse().ok()
}

/// The serials in `folder`, oldest first, with their keys.
async fn entries(store: &dyn ObjectStore, folder: &str) -> Result<Vec<(u64, String)>> {
    let mut entries: Vec<(u64, String)> = store
        .list(folder)
        .await?
        .into_iter()
        .filter_map(|key| serial_of(&key).map(|serial| (serial, key)))
        .collect();
    entries.sort();
    Ok(entries)
}

/// The serials `retention` lets go of, among `serials` (oldest first),
/// never the newest `keep` (at least one), nor any at or above `protect_from`.
fn candidates(serials: &[u64], retention: &Retention, protect_from: u64) -> Vec<u64> {
    let keep = retention.keep.unwrap_or(1).max(1);
    let cut = serials.len().saturating_sub(keep);
    serials[..cut]
        .iter()
        .copied()
        .filter(|serial| *serial < protect_from)
        .collect()
}

/// Removes the history entries of `cluster` that `retention` lets go of;
/// with `dry_run`, only says which. The spec revision the head shows
/// (`head_serial`) and anything newer are never removed. An entry's age
/// comes from its header; a snapshot written before snapshots had headers
/// has no known age and is kept by `older_than`.
pub async fn prune(
    store: &dyn ObjectStore,
    cluster: &str,
    retention: &Retention,
    head_serial: u64,
    now: OffsetDateTime,
    dry_run: bool,
) -> Result<Pruned> {
    let mut pruned = Pruned::default();
    if !retention.is_set() {
        return Ok(pruned);
    }
    let cutoff = retention.older_than.map(|age| now - age);

    let spec_entries = entries(store, &layout::spec_history_folder(cluster)).await?;
    let serials: Vec<u64> = spec_entries.iter().map(|(serial, _)| *serial).collect();
    for serial in candidates(&serials, retention, head_serial) {
        if let Some(cutoff) = cutoff {
            match specs::read_revision(store, cluster, serial).await? {
                Some((revision, _)) if revision.written_at < cutoff => {}
                _ => continue,
            }
        }
        if !dry_run {
            store
                .delete(&layout::spec_revision(cluster, serial), Precondition::None)
                .await?;
        }
        pruned.spec_revisions.push(serial);
    }

    let state_entries = entries(store, &layout::state_history_folder(cluster)).await?;
    let serials: Vec<u64> = state_entries.iter().map(|(serial, _)| *serial).collect();
    let headers = if cutoff.is_some() {
        recorded::snapshots(store, cluster).await?
    } else {
        Vec::new()
    };
    for serial in candidates(&serials, retention, u64::MAX) {
        if let Some(cutoff) = cutoff {
            let written_at = headers
                .iter()
                .find(|header| header.serial == serial)
                .and_then(|header| header.change.as_ref())
                .map(|change| change.written_at);
            match written_at {
                Some(written_at) if written_at < cutoff => {}
                _ => continue,
            }
        }
        if !dry_run {
            store
                .delete(
                    &layout::recorded_state_snapshot(cluster, serial),
                    Precondition::None,
                )
                .await?;
        }
        pruned.state_snapshots.push(serial);
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_entries_and_the_head_are_never_candidates() {
        let serials: Vec<u64> = (1..=6).collect();
        let keep_two = Retention {
            keep: Some(2),
            older_than: None,
        };
        assert_eq!(candidates(&serials, &keep_two, 6), vec![1, 2, 3, 4]);
        // A claimed revision 6 not yet published: the head is 5.
        assert_eq!(candidates(&serials, &keep_two, 4), vec![1, 2, 3]);
        let keep_zero = Retention {
            keep: Some(0),
            older_than: None,
        };
        assert_eq!(candidates(&serials, &keep_zero, 6), vec![1, 2, 3, 4, 5]);
        let age_only = Retention {
            keep: None,
            older_than: Some(Duration::from_secs(60)),
        };
        assert_eq!(candidates(&serials, &age_only, 6), vec![1, 2, 3, 4, 5]);
        assert_eq!(candidates(&[], &keep_two, 6), Vec::<u64>::new());
    }

    #[test]
    fn serials_are_read_from_keys() {
        assert_eq!(serial_of("c1/history/spec/0000000042.yaml"), Some(42));
        assert_eq!(serial_of("c1/history/state/0000000007.json"), Some(7));
        assert_eq!(serial_of("c1/history/spec/notes.txt"), None);
    }
}
