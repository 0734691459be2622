//! Spec revisions as `history` and `rollback` show them: one read by its
//! number (naming the numbers there are when it is missing), and the
//! unified diff of two.

use anyhow::bail;
use similar::TextDiff;
use skiff_api::document::ClusterBundle;
use skiff_state::lock::rfc3339;
use skiff_state::{Revision, StateStore};

/// Reads a spec revision, or fails naming the revisions there are.
pub async fn revision(
    store: &StateStore,
    cluster: &str,
    serial: u64,
) -> anyhow::Result<(Revision, ClusterBundle)> {
    if let Some(found) = store.spec_revision(cluster, serial).await? {
        return Ok(found);
    }
    let serials: Vec<u64> = store
        .spec_history(cluster)
        .await?
        .iter()
        .map(|(revision, _)| revision.serial)
        .collect();
    let known = match (serials.first(), serials.last()) {
        (Some(first), Some(last)) if first == last => format!("it has only revision {first}"),
        (Some(first), Some(last)) if (last - first + 1) as usize == serials.len() => {
            format!("it has revisions {first} to {last}")
        }
        (Some(_), Some(_)) => format!(
            "it has revisions {}",
            serials
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => "its history is empty".to_string(),
    };
    bail!(
        "cluster {cluster} has no spec revision {serial} ({known}; see `skiff history {cluster}`)"
    )
}

/// A unified diff of two specs as YAML, labelled with their revisions.
pub fn spec_diff(from: (&Revision, &ClusterBundle), to_label: &str, to: &ClusterBundle) -> String {
    let (from_revision, from_bundle) = from;
    let before = from_bundle.to_yaml();
    let after = to.to_yaml();
    let from_label = format!(
        "revision {} ({}, {})",
        from_revision.serial,
        from_revision.written_by,
        rfc3339(from_revision.written_at)
    );
    TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header(&from_label, to_label)
        .to_string()
}
