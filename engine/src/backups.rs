//! `get backups`: the etcd snapshots the control-plane nodes wrote to the
//! state store, newest first, with the spec's schedule to explain an empty
//! list; and finding the one `restore cluster --backup` names.

use skiff_api::{BackupInterval, ClusterBundle};
use skiff_state::etcd::{self, Backup, BackupId};
use skiff_state::{layout, StateStore};

use crate::error::{Refusal, Result};

/// The backups of a cluster.
#[derive(Debug, Clone)]
pub struct BackupList {
    /// The cluster.
    pub cluster: String,
    /// Where they are: `s3://bucket/prefix/<cluster>/etcd/backups/`.
    pub location: String,
    /// `spec.etcd.backups.interval`.
    pub interval: BackupInterval,
    /// `spec.etcd.backups.keep`.
    pub keep: u32,
    /// Newest first.
    pub backups: Vec<Backup>,
}

/// Lists the etcd backups of a cluster. Only an S3 store holds any: that
/// is where the nodes write. Reads the store only (no AWS configuration).
pub async fn list(store: &StateStore, cluster: &str) -> Result<BackupList> {
    let spec = store.read_spec(cluster).await?;
    require_backup_store(store, cluster)?;
    let backups = etcd::list_backups(store.objects().as_ref(), cluster).await?;
    let settings = &spec.bundle.cluster.spec.etcd.backups;
    Ok(BackupList {
        cluster: cluster.to_string(),
        location: folder_location(store, cluster),
        interval: settings.interval,
        keep: settings.keep,
        backups,
    })
}

/// Refuses a store the nodes cannot write backups to.
pub fn require_backup_store(store: &StateStore, cluster: &str) -> Result<()> {
    if store.s3().is_none() {
        return Err(Refusal::BackupsNeedS3Store {
            cluster: cluster.to_string(),
            location: store.location().to_string(),
        }
        .into());
    }
    Ok(())
}

fn folder_location(store: &StateStore, cluster: &str) -> String {
    format!(
        "{}/{}",
        store.location().to_string().trim_end_matches('/'),
        layout::etcd_backups_folder(cluster)
    )
}

/// The backup of `bundle`'s cluster that `given` names: an ID as `get
/// backups` lists it (with or without `.db`), the object's key, or its
/// `s3://` URL. A backup of another cluster of the store is refused by
/// name, as is anything that is not a backup.
pub(crate) async fn find(
    store: &StateStore,
    bundle: &ClusterBundle,
    given: &str,
) -> Result<Backup> {
    let cluster = bundle.name();
    let unknown = |reason: String| Refusal::UnknownBackup {
        given: given.to_string(),
        cluster: cluster.to_string(),
        reason,
    };
    let (owner, id_text) = match split_reference(store, given) {
        Ok(parts) => parts,
        Err(reason) => return Err(unknown(reason).into()),
    };
    if let Some(owner) = owner {
        if owner != cluster {
            return Err(Refusal::BackupOfAnotherCluster {
                given: given.to_string(),
                cluster: cluster.to_string(),
                owner,
            }
            .into());
        }
    }
    let id: BackupId = id_text
        .parse()
        .map_err(|error: skiff_state::etcd::InvalidBackupId| unknown(error.to_string()))?;
    let backups = etcd::list_backups(store.objects().as_ref(), cluster).await?;
    if let Some(backup) = backups.into_iter().find(|backup| backup.id == id) {
        return Ok(backup);
    }
    // An ID copied from another cluster's listing: say whose it is.
    for other in store.clusters().await? {
        if other == cluster {
            continue;
        }
        let key = layout::etcd_backup(&other, id.as_str());
        if store.objects().list(&key).await?.contains(&key) {
            return Err(Refusal::BackupOfAnotherCluster {
                given: given.to_string(),
                cluster: cluster.to_string(),
                owner: other,
            }
            .into());
        }
    }
    Err(unknown(format!(
        "cluster {cluster} has no backup with that ID in {}",
        folder_location(store, cluster)
    ))
    .into())
}

/// Splits what `--backup` was given into the cluster its path names (if
/// it is a key or URL) and the backup ID.
fn split_reference(
    store: &StateStore,
    given: &str,
) -> std::result::Result<(Option<String>, String), String> {
    let given = given.trim();
    let mut key = given;
    if let Some(rest) = given.strip_prefix("s3://") {
        let (bucket, object) = rest.split_once('/').unwrap_or((rest, ""));
        let store_bucket = store.s3().map(|s3| s3.bucket.as_str()).unwrap_or_default();
        if bucket != store_bucket {
            return Err(format!(
                "it is in bucket {bucket:?}, not in this state store ({})",
                store.location()
            ));
        }
        key = object;
    }
    let marker = "/etcd/backups/";
    let Some(position) = key.rfind(marker) else {
        if key.contains('/') {
            return Err("it is not under a cluster's etcd/backups/ folder".to_string());
        }
        return Ok((None, strip_suffix(key).to_string()));
    };
    let folder = &key[..position];
    let name = &key[position + marker.len()..];
    // The store's prefix, if the key or URL carries it, comes before the
    // cluster's name; cluster names hold no `/`.
    let store_prefix = store.s3().map(|s3| s3.prefix.as_str()).unwrap_or_default();
    let owner = match folder.rsplit_once('/') {
        Some((prefix, owner)) => {
            if prefix != store_prefix {
                return Err(format!(
                    "{prefix:?} is not this state store's prefix ({})",
                    store.location()
                ));
            }
            owner
        }
        None => folder,
    };
    if owner.is_empty() || name.is_empty() || name.contains('/') {
        return Err("it is not a backup's key".to_string());
    }
    Ok((Some(owner.to_string()), strip_suffix(name).to_string()))
}

fn strip_suffix(name: &str) -> &str {
    name.strip_suffix(layout::ETCD_BACKUP_SUFFIX)
        .unwrap_or(name)
}

#[cfg(test)]
mod tests {
    /// The folder the nodes' IAM policy lets them write is the folder the
    /// store's layout puts their objects in.
    #[test]
    fn iam_and_layout_name_the_same_folder() {
        assert_eq!(
            skiff_state::layout::etcd_folder("c1"),
            format!("c1/{}/", skiff_plans::desired::iam::ETCD_FOLDER)
        );
    }
}
