//! The object layer under the state store: get, conditional put, conditional
//! delete and list, over S3 or a local folder.
//!
//! Every write that matters is conditional. A [`Precondition`] says what the
//! writer last saw: nothing ([`Precondition::DoesNotExist`], S3's
//! `If-None-Match: *`) or a particular [`Version`] (S3's `If-Match` on the
//! ETag). A write whose precondition no longer holds fails with
//! [`StoreError::Conflict`](crate::StoreError::Conflict) and changes nothing,
//! which is what makes a shared store safe without a database.

use async_trait::async_trait;

use crate::error::Result;

pub mod file;
pub mod s3;

/// An opaque version of a stored object: the S3 ETag, or a hash of the file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(pub String);

/// What a conditional write requires of the object it replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Write whatever is there (used only for objects no one else writes).
    None,
    /// The object must not exist yet.
    DoesNotExist,
    /// The object must still be at this version.
    Matches(Version),
}

/// A stored object and the version it was read at.
#[derive(Debug, Clone)]
pub struct Object {
    /// The content.
    pub bytes: Vec<u8>,
    /// The version, for a later conditional write.
    pub version: Version,
}

/// A key found by [`ObjectStore::list_sized`], with the object's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// The key, relative to the store's root.
    pub key: String,
    /// The object's size in bytes.
    pub size: u64,
}

/// Options of a write.
#[derive(Debug, Clone, Copy, Default)]
pub struct PutOptions {
    /// The object holds key material: S3 encrypts it at rest explicitly
    /// (SSE-S3) and the file store makes it readable by its owner only.
    pub secret: bool,
}

/// A flat key-value store with conditional writes. Keys are relative to the
/// store's root (`s3://bucket/prefix` or the folder) and use `/`.
#[async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// The store as the user wrote it, e.g. `s3://bucket/prefix`.
    fn describe(&self) -> String;

    /// The object at `key`, or `None`.
    async fn get(&self, key: &str) -> Result<Option<Object>>;

    /// Writes `bytes` at `key` if `precondition` holds; returns the new version.
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        precondition: Precondition,
        options: PutOptions,
    ) -> Result<Version>;

    /// Deletes `key` if `precondition` holds. Deleting a missing object with
    /// no precondition succeeds.
    async fn delete(&self, key: &str, precondition: Precondition) -> Result<()>;

    /// Every key under `prefix` (recursively), sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// Every key under `prefix` (recursively) with its object's size, sorted
    /// by key: what a listing shows without reading every object.
    async fn list_sized(&self, prefix: &str) -> Result<Vec<ListedObject>>;

    /// The names directly under `prefix` that are "folders" (have keys below them), sorted.
    async fn list_folders(&self, prefix: &str) -> Result<Vec<String>>;
}

/// Why a key is refused by [`check_key`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InvalidObjectKey {
    /// Empty, absolute, or holding a backslash or NUL.
    #[error("{key:?} is not a relative key")]
    NotRelative {
        /// The key given.
        key: String,
    },
    /// A path part that is empty, `.` or `..`.
    #[error("{key:?} has an empty, `.` or `..` part")]
    BadPart {
        /// The key given.
        key: String,
    },
}

/// Refuses keys that could escape the store's root or are not plain paths.
pub(crate) fn check_key(key: &str) -> std::result::Result<(), InvalidObjectKey> {
    if key.is_empty() || key.starts_with('/') || key.contains('\\') || key.contains('\0') {
        return Err(InvalidObjectKey::NotRelative {
            key: key.to_string(),
        });
    }
    if key
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(InvalidObjectKey::BadPart {
            key: key.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_keys_that_leave_the_root() {
        assert_eq!(check_key("clusters/c1/spec.yaml"), Ok(()));
        assert_eq!(
            check_key("/etc/passwd").map_err(|error| error.to_string()),
            Err("\"/etc/passwd\" is not a relative key".to_string())
        );
        assert_eq!(
            check_key("a/../b").map_err(|error| error.to_string()),
            Err("\"a/../b\" has an empty, `.` or `..` part".to_string())
        );
        assert!(check_key("a\\b").is_err());
        assert!(check_key("a//b").is_err());
    }
}
