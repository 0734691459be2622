//! A state store in a local folder (`file://PATH`), with the same guarantees
//! as S3's conditional writes.
//!
//! A conditional write takes an exclusive lock on the store's `.skiff.lock`
//! file (an OS advisory lock, released by the kernel if the process dies),
//! compares the current content's hash with the expected version, writes a
//! temporary file, syncs it and renames it over the object. Readers need no
//! lock: a rename is atomic, so they see the old or the new content, never a
//! mix.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::{check_key, ListedObject, Object, ObjectStore, Precondition, PutOptions, Version};
use crate::error::{Result, StoreError};

/// The lock file in the store's root.
const LOCK_FILE: &str = ".skiff.lock";

/// A state store in a folder.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    /// Opens (and creates if needed) the folder.
    pub fn open(root: impl Into<PathBuf>) -> Result<FileStore> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|source| StoreError::Io {
            action: "creating the state-store folder",
            path: root.clone(),
            source,
        })?;
        Ok(FileStore { root })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, key: &str) -> Result<PathBuf> {
        check_key(key).map_err(|reason| StoreError::BadLocation {
            location: key.to_string(),
            reason: reason.to_string(),
        })?;
        Ok(self.root.join(key))
    }

    fn with_lock<T>(&self, work: impl FnOnce() -> Result<T>) -> Result<T> {
        let lock_path = self.root.join(LOCK_FILE);
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| StoreError::Io {
                action: "opening the store lock",
                path: lock_path.clone(),
                source,
            })?;
        lock.lock().map_err(|source| StoreError::Io {
            action: "locking",
            path: lock_path.clone(),
            source,
        })?;
        let result = work();
        // Unlocking cannot meaningfully fail; the lock also ends with the file.
        let _ = lock.unlock();
        result
    }
}

fn version_of(bytes: &[u8]) -> Version {
    Version(hex::encode(Sha256::digest(bytes)))
}

fn read(path: &Path) -> Result<Option<Object>> {
    match fs::read(path) {
        Ok(bytes) => {
            let version = version_of(&bytes);
            Ok(Some(Object { bytes, version }))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Io {
            action: "reading",
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn check(key: &str, current: Option<&Object>, precondition: &Precondition) -> Result<()> {
    let holds = match (precondition, current) {
        (Precondition::None, _) => true,
        (Precondition::DoesNotExist, current) => current.is_none(),
        (Precondition::Matches(expected), Some(current)) => &current.version == expected,
        (Precondition::Matches(_), None) => false,
    };
    if holds {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            what: "the object".to_string(),
            key: key.to_string(),
        })
    }
}

fn write_atomically(path: &Path, bytes: &[u8], secret: bool) -> Result<()> {
    let parent = path.parent().unwrap_or_else(|| Path::new("."));
    let io_error = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io {
            action,
            path,
            source,
        }
    };
    fs::create_dir_all(parent).map_err(io_error("creating", parent))?;
    let temporary = parent.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(if secret { 0o600 } else { 0o644 });
        }
        let mut file = options
            .open(&temporary)
            .map_err(io_error("creating", &temporary))?;
        file.write_all(bytes)
            .map_err(io_error("writing", &temporary))?;
        file.sync_all().map_err(io_error("syncing", &temporary))?;
        fs::rename(&temporary, path).map_err(io_error("renaming into place", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

fn walk(folder: &Path, root: &Path, keys: &mut Vec<String>) -> Result<()> {
    let entries = match fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StoreError::Io {
                action: "listing",
                path: folder.to_path_buf(),
                source,
            })
        }
    };
    for entry in entries {
        let entry = entry.map_err(|source| StoreError::Io {
            action: "listing",
            path: folder.to_path_buf(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            walk(&path, root, keys)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            keys.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

#[async_trait]
impl ObjectStore for FileStore {
    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    async fn get(&self, key: &str) -> Result<Option<Object>> {
        let path = self.path_of(key)?;
        tokio::task::spawn_blocking(move || read(&path))
            .await
            .map_err(|error| join_error(key, error))?
    }

    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        precondition: Precondition,
        options: PutOptions,
    ) -> Result<Version> {
        let path = self.path_of(key)?;
        let store = self.clone();
        let key_owned = key.to_string();
        tokio::task::spawn_blocking(move || {
            store.with_lock(|| {
                let current = read(&path)?;
                check(&key_owned, current.as_ref(), &precondition)?;
                write_atomically(&path, &bytes, options.secret)?;
                Ok(version_of(&bytes))
            })
        })
        .await
        .map_err(|error| join_error(key, error))?
    }

    async fn delete(&self, key: &str, precondition: Precondition) -> Result<()> {
        let path = self.path_of(key)?;
        let store = self.clone();
        let key_owned = key.to_string();
        tokio::task::spawn_blocking(move || {
            store.with_lock(|| {
                let current = read(&path)?;
                check(&key_owned, current.as_ref(), &precondition)?;
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(StoreError::Io {
                            action: "deleting",
                            path: path.clone(),
                            source,
                        })
                    }
                }
                // Remove folders left empty, up to the root, so that a deleted
                // cluster leaves nothing behind.
                let mut folder = path.parent();
                while let Some(current_folder) = folder {
                    if current_folder == store.root || fs::remove_dir(current_folder).is_err() {
                        break;
                    }
                    folder = current_folder.parent();
                }
                Ok(())
            })
        })
        .await
        .map_err(|error| join_error(key, error))?
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            let start = if prefix.is_empty() {
                root.clone()
            } else {
                root.join(prefix.trim_end_matches('/'))
            };
            walk(&start, &root, &mut keys)?;
            keys.retain(|key| key.starts_with(&prefix));
            keys.sort();
            Ok(keys)
        })
        .await
        .map_err(|error| join_error(prefix_for_error(), error))?
    }

    async fn list_sized(&self, prefix: &str) -> Result<Vec<ListedObject>> {
        let keys = self.list(prefix).await?;
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            let mut objects = Vec::with_capacity(keys.len());
            for key in keys {
                let path = root.join(&key);
                match fs::metadata(&path) {
                    Ok(metadata) => objects.push(ListedObject {
                        key,
                        size: metadata.len(),
                    }),
                    // Deleted since the listing: not there any more.
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(StoreError::Io {
                            action: "reading the size of",
                            path,
                            source,
                        })
                    }
                }
            }
            Ok(objects)
        })
        .await
        .map_err(|error| join_error(prefix_for_error(), error))?
    }

    async fn list_folders(&self, prefix: &str) -> Result<Vec<String>> {
        let folder = if prefix.is_empty() {
            self.root.clone()
        } else {
            self.root.join(prefix.trim_end_matches('/'))
        };
        tokio::task::spawn_blocking(move || {
            let mut names = Vec::new();
            let entries = match fs::read_dir(&folder) {
                Ok(entries) => entries,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(names),
                Err(source) => {
                    return Err(StoreError::Io {
                        action: "listing",
                        path: folder,
                        source,
                    })
                }
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                if !name.starts_with('.') && entry.path().is_dir() {
                    names.push(name);
                }
            }
            names.sort();
            Ok(names)
        })
        .await
        .map_err(|error| join_error(prefix_for_error(), error))?
    }
}

fn prefix_for_error() -> &'static str {
    "(listing)"
}

fn join_error(key: &str, error: tokio::task::JoinError) -> StoreError {
    StoreError::Io {
        action: "running the file operation for",
        path: PathBuf::from(key),
        source: std::io::Error::other(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conditional_writes_follow_s3_semantics() {
        let folder = tempfile::tempdir().expect("tempdir");
        let store = FileStore::open(folder.path()).expect("opens");
        let first = store
            .put(
                "c1/spec.yaml",
                b"one".to_vec(),
                Precondition::DoesNotExist,
                PutOptions::default(),
            )
            .await
            .expect("creates");
        let again = store
            .put(
                "c1/spec.yaml",
                b"two".to_vec(),
                Precondition::DoesNotExist,
                PutOptions::default(),
            )
            .await;
        assert!(matches!(again, Err(StoreError::Conflict { .. })));
        let second = store
            .put(
                "c1/spec.yaml",
                b"two".to_vec(),
                Precondition::Matches(first.clone()),
                PutOptions::default(),
            )
            .await
            .expect("updates");
        let stale = store
            .put(
                "c1/spec.yaml",
                b"three".to_vec(),
                Precondition::Matches(first),
                PutOptions::default(),
            )
            .await;
        assert!(matches!(stale, Err(StoreError::Conflict { .. })));
        let read = store
            .get("c1/spec.yaml")
            .await
            .expect("reads")
            .expect("exists");
        assert_eq!(read.bytes, b"two");
        assert_eq!(read.version, second);
        assert_eq!(store.list("c1/").await.expect("lists"), ["c1/spec.yaml"]);
        assert_eq!(store.list_folders("").await.expect("lists"), ["c1"]);
        store
            .delete("c1/spec.yaml", Precondition::Matches(second))
            .await
            .expect("deletes");
        assert!(store.get("c1/spec.yaml").await.expect("reads").is_none());
        assert!(
            store.list_folders("").await.expect("lists").is_empty(),
            "empty folders are removed"
        );
    }

    #[tokio::test]
    async fn refuses_keys_that_escape_the_root() {
        let folder = tempfile::tempdir().expect("tempdir");
        let store = FileStore::open(folder.path()).expect("opens");
        for key in ["../x", "/etc/passwd", "a//b", "a/./b"] {
            assert!(store.get(key).await.is_err(), "{key} accepted");
        }
    }
}
