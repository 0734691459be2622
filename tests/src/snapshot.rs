//! Byte-for-byte snapshots of a state store.
//!
//! Many of skiff's promises are about what it does *not* do: a failed plan,
//! a refused stale write, an interrupted run, a dry run must leave the store
//! exactly as it was. A snapshot before and after makes that one assertion.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::LocalAws;

/// Every object of a store (an S3 bucket, or files under a folder), key to bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreSnapshot {
    source: String,
    objects: BTreeMap<String, Vec<u8>>,
}

/// How two snapshots differ, by key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotDiff {
    /// Keys only in the later snapshot.
    pub added: Vec<String>,
    /// Keys only in the earlier snapshot.
    pub removed: Vec<String>,
    /// Keys in both whose bytes differ.
    pub changed: Vec<String>,
}

impl SnapshotDiff {
    /// No differences at all.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

impl StoreSnapshot {
    /// Every object in `bucket`, read through the harness (not counted in stats).
    pub fn of_bucket(aws: &LocalAws, bucket: &str) -> Self {
        Self::of_bucket_prefix(aws, bucket, "")
    }

    /// Every object in `bucket` under `prefix` (keys stay full keys).
    pub fn of_bucket_prefix(aws: &LocalAws, bucket: &str, prefix: &str) -> Self {
        let objects = aws
            .list_keys(bucket, prefix)
            .into_iter()
            .map(|key| {
                let bytes = aws
                    .get_object(bucket, &key)
                    .unwrap_or_else(|| panic!("s3://{bucket}/{key} vanished while snapshotting"));
                (key, bytes)
            })
            .collect();
        Self {
            source: format!("s3://{bucket}/{prefix}"),
            objects,
        }
    }

    /// Every file under `dir`, keyed by `/`-separated relative path. A
    /// missing directory is an empty store.
    pub fn of_dir(dir: &Path) -> Self {
        let mut objects = BTreeMap::new();
        if dir.exists() {
            collect_files(dir, dir, &mut objects);
        }
        Self {
            source: dir.display().to_string(),
            objects,
        }
    }

    /// Where it was taken from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.objects.keys().map(String::as_str)
    }

    /// The bytes of one object.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.objects.get(key).map(Vec::as_slice)
    }

    /// Whether `key` exists.
    pub fn contains(&self, key: &str) -> bool {
        self.objects.contains_key(key)
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// No objects at all.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The same snapshot without the keys `ignore` matches (lock files, say).
    pub fn without(mut self, ignore: impl Fn(&str) -> bool) -> Self {
        self.objects.retain(|key, _| !ignore(key));
        self
    }

    /// What changed from `self` (earlier) to `later`.
    pub fn diff(&self, later: &StoreSnapshot) -> SnapshotDiff {
        let mut diff = SnapshotDiff::default();
        for (key, bytes) in &self.objects {
            match later.objects.get(key) {
                None => diff.removed.push(key.clone()),
                Some(other) if other != bytes => diff.changed.push(key.clone()),
                Some(_) => {}
            }
        }
        diff.added = later
            .objects
            .keys()
            .filter(|key| !self.objects.contains_key(*key))
            .cloned()
            .collect();
        diff
    }

    /// Fail the test unless `later` holds exactly the same keys and bytes.
    #[track_caller]
    pub fn assert_unchanged(&self, later: &StoreSnapshot) {
        let diff = self.diff(later);
        if !diff.is_empty() {
            let mut message = format!("store {} changed:\n", self.source);
            for key in &diff.added {
                message.push_str(&format!("  added    {key}\n"));
            }
            for key in &diff.removed {
                message.push_str(&format!("  removed  {key}\n"));
            }
            for key in &diff.changed {
                message.push_str(&format!(
                    "  changed  {key}\n--- before ---\n{}\n--- after ---\n{}\n",
                    preview(&self.objects[key]),
                    preview(&later.objects[key]),
                ));
            }
            panic!("{message}");
        }
    }
}

impl fmt::Debug for StoreSnapshot {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sizes: BTreeMap<&str, usize> = self
            .objects
            .iter()
            .map(|(key, bytes)| (key.as_str(), bytes.len()))
            .collect();
        formatter
            .debug_struct("StoreSnapshot")
            .field("source", &self.source)
            .field("object_sizes", &sizes)
            .finish()
    }
}

fn collect_files(root: &Path, dir: &Path, objects: &mut BTreeMap<String, Vec<u8>>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|error| panic!("list {}: {error}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|error| panic!("list {}: {error}", dir.display()))
            .path();
        if path.is_dir() {
            collect_files(root, &path, objects);
        } else {
            let key = path
                .strip_prefix(root)
                .expect("walked from root")
                .components()
                .map(|part| part.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|error| panic!("read {}: {error}", path.display()));
            objects.insert(key, bytes);
        }
    }
}

/// The start of an object, as text if it is text.
fn preview(bytes: &[u8]) -> String {
    const LIMIT: usize = 2000;
    let shown = &bytes[..bytes.len().min(LIMIT)];
    let mut text = match std::str::from_utf8(shown) {
        Ok(text) => text.to_owned(),
        Err(_) => format!("<{} bytes of binary>", bytes.len()),
    };
    if bytes.len() > LIMIT {
        text.push_str(&format!("\n... ({} bytes in all)", bytes.len()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(objects: &[(&str, &str)]) -> StoreSnapshot {
        StoreSnapshot {
            source: "test".to_owned(),
            objects: objects
                .iter()
                .map(|(key, value)| (key.to_string(), value.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[test]
    fn diff_names_added_removed_and_changed_keys() {
        let before = snapshot(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let after = snapshot(&[("a", "1"), ("b", "two"), ("d", "4")]);
        let diff = before.diff(&after);
        assert_eq!(diff.added, ["d"]);
        assert_eq!(diff.removed, ["c"]);
        assert_eq!(diff.changed, ["b"]);
        assert!(before.diff(&before.clone()).is_empty());
    }

    #[test]
    #[should_panic(expected = "changed  b")]
    fn assert_unchanged_reports_the_changed_key() {
        snapshot(&[("b", "2")]).assert_unchanged(&snapshot(&[("b", "3")]));
    }
}
