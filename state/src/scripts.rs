//! The nodes' bootstrap scripts in the store (`<cluster>/scripts/<sha256>`).
//!
//! A launch template's user-data carries a loader that fetches the script
//! by its SHA-256 (`skiff_templates::ec2_user_data`), so the script must be
//! in the store before any instance launches from the template, and stay
//! while one may. Objects are named by their content: written only if
//! absent, never replaced, so writing them twice, or from two runs at once,
//! is harmless.

use futures::stream::{self, StreamExt, TryStreamExt};
use skiff_templates::state_store::SCRIPTS_FOLDER;
use skiff_templates::StoredScript;

use crate::layout;
use crate::objects::{ObjectStore, Precondition, PutOptions};
use crate::StoreError;

/// Scripts written or read at once.
const PARALLELISM: usize = 8;

/// The key of a script object of `cluster` (`key` as in
/// [`StoredScript::key`], relative to the cluster's folder).
fn object_key(cluster: &str, key: &str) -> String {
    format!("{}{key}", layout::cluster_folder(cluster))
}

/// Writes each of `scripts` that the store does not hold yet; returns how
/// many it wrote.
pub async fn store(
    objects: &dyn ObjectStore,
    cluster: &str,
    scripts: &[StoredScript],
) -> Result<usize, StoreError> {
    // Futures of a named function, not of a closure: the caller's gate is
    // spawned, and a closure's future here would not be general enough.
    let writes: Vec<_> = scripts
        .iter()
        .map(|script| store_one(objects, cluster, script))
        .collect();
    let written: Vec<bool> = stream::iter(writes)
        .buffer_unordered(PARALLELISM)
        .try_collect()
        .await?;
    Ok(written.into_iter().filter(|written| *written).count())
}

/// Writes `script` unless the store holds it; whether it wrote it.
async fn store_one(
    objects: &dyn ObjectStore,
    cluster: &str,
    script: &StoredScript,
) -> Result<bool, StoreError> {
    let key = object_key(cluster, &script.key);
    if objects.get(&key).await?.is_some() {
        return Ok(false);
    }
    match objects
        .put(
            &key,
            script.content.clone().into_bytes(),
            Precondition::DoesNotExist,
            PutOptions { secret: false },
        )
        .await
    {
        Ok(_) => Ok(true),
        // Another run wrote the same bytes (the name is their hash).
        Err(StoreError::Conflict { .. } | StoreError::AlreadyExists { .. }) => Ok(false),
        Err(error) => Err(error),
    }
}

/// The script at `key` (relative to the cluster's folder, as a loader
/// names it), or `None` when the store does not hold it.
pub async fn read(
    objects: &dyn ObjectStore,
    cluster: &str,
    key: &str,
) -> Result<Option<String>, StoreError> {
    if !key.starts_with(SCRIPTS_FOLDER) {
        return Ok(None);
    }
    Ok(objects
        .get(&object_key(cluster, key))
        .await?
        .map(|object| String::from_utf8_lossy(&object.bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::file::FileStore;

    #[tokio::test]
    async fn a_script_is_written_once_and_read_back_by_its_key() {
        let folder = tempfile::tempdir().expect("folder");
        let objects = FileStore::open(folder.path()).expect("store");
        let script = StoredScript::new("#!/bin/bash\necho hello\n".to_string());
        let written = store(
            &objects,
            "c1.example.com",
            &[script.clone(), script.clone()],
        )
        .await
        .expect("stores");
        assert_eq!(written, 1, "the same script twice is one object");
        assert_eq!(
            store(&objects, "c1.example.com", std::slice::from_ref(&script))
                .await
                .expect("stores"),
            0
        );
        assert_eq!(
            read(&objects, "c1.example.com", &script.key)
                .await
                .expect("reads"),
            Some(script.content.clone())
        );
        assert_eq!(
            read(&objects, "c1.example.com", "scripts/0000")
                .await
                .expect("reads"),
            None
        );
        assert_eq!(
            read(&objects, "c1.example.com", "pki/ca.key")
                .await
                .expect("refuses"),
            None,
            "only scripts are read this way"
        );
    }
}
