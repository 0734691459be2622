//! Helpers shared by the foundation tests (config commands, concurrent
//! replace, the cluster lock, bad inputs): the two kinds of state store, the
//! cluster every test starts from, and readers for what skiff stored; and,
//! in [`cluster`], the fixture of the acceptance tests that apply clusters.

pub mod cloud;
pub mod cluster;

use std::path::PathBuf;

use serde::Deserialize;
use skiff_tests::{LocalAws, SandboxHome, Skiff, SkiffOutput, StoreSnapshot};

/// The cluster most tests create.
pub const CLUSTER: &str = "c1.example.com";

/// Its zones.
pub const ZONES: &str = "us-east-1a,us-east-1b,us-east-1c";

/// The key prefix inside the bucket of S3 stores: a store that is not at the
/// bucket's root proves the prefix is honoured.
pub const S3_PREFIX: &str = "team";

/// A state store the test owns: a fresh bucket (with a prefix) or a folder
/// inside the sandbox home.
#[derive(Clone, Debug)]
pub enum Store {
    /// `s3://BUCKET/team`.
    S3 {
        /// The bucket.
        bucket: String,
    },
    /// `file://DIR`.
    File {
        /// The folder.
        dir: PathBuf,
    },
}

impl Store {
    /// A new bucket on `aws`.
    pub fn s3(aws: &LocalAws, purpose: &str) -> Store {
        Store::S3 {
            bucket: aws.create_unique_bucket(purpose),
        }
    }

    /// A folder `store` in `home` (not created: skiff creates it).
    pub fn file(home: &SandboxHome) -> Store {
        Store::File {
            dir: home.join("store"),
        }
    }

    /// The `--state` value.
    pub fn url(&self) -> String {
        match self {
            Store::S3 { bucket } => format!("s3://{bucket}/{S3_PREFIX}"),
            Store::File { dir } => format!("file://{}", dir.display()),
        }
    }

    /// The key of an object of the store as [`Store::snapshot`] names it.
    pub fn key(&self, relative: &str) -> String {
        match self {
            Store::S3 { .. } => format!("{S3_PREFIX}/{relative}"),
            Store::File { .. } => relative.to_string(),
        }
    }

    /// Every object of the store. The file store's `.skiff.lock` (the OS
    /// lock that serialises its writers, empty and never part of the data)
    /// is left out.
    pub fn snapshot(&self, aws: &LocalAws) -> StoreSnapshot {
        match self {
            Store::S3 { bucket } => StoreSnapshot::of_bucket(aws, bucket),
            Store::File { dir } => {
                StoreSnapshot::of_dir(dir).without(|key| key.ends_with(".skiff.lock"))
            }
        }
    }

    /// The keys of one cluster's objects, relative to the store.
    pub fn cluster_keys(&self, aws: &LocalAws, cluster: &str) -> Vec<String> {
        let folder = self.key(&format!("{cluster}/"));
        let strip = self.key("");
        self.snapshot(aws)
            .keys()
            .filter(|key| key.starts_with(&folder))
            .map(|key| key[strip.len()..].to_string())
            .collect()
    }
}

/// `skiff ARGS --state STORE`.
pub fn skiff(aws: &LocalAws, home: &SandboxHome, store: &Store, args: &[&str]) -> Skiff {
    Skiff::new(aws, home)
        .args(args)
        .args(["--state", &store.url()])
}

/// Creates [`CLUSTER`] with three control-plane groups over [`ZONES`].
pub fn create_cluster(aws: &LocalAws, home: &SandboxHome, store: &Store) -> SkiffOutput {
    create_named_cluster(aws, home, store, CLUSTER)
}

/// Creates `name` with three control-plane groups over [`ZONES`].
pub fn create_named_cluster(
    aws: &LocalAws,
    home: &SandboxHome,
    store: &Store,
    name: &str,
) -> SkiffOutput {
    let output = skiff(
        aws,
        home,
        store,
        &[
            "create",
            "cluster",
            name,
            "--zones",
            ZONES,
            "--control-plane-count",
            "3",
        ],
    )
    .run();
    output.assert_success();
    output
}

/// Every document of a multi-document YAML text; fails the test (showing
/// the text) if it does not parse.
#[track_caller]
pub fn yaml_documents(text: &str) -> Vec<serde_norway::Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| {
            serde_norway::Value::deserialize(document)
                .unwrap_or_else(|error| panic!("not YAML ({error}):\n{text}"))
        })
        .filter(|value| !value.is_null())
        .collect()
}

/// Follows a path of mapping keys and sequence indexes through a YAML value.
pub fn at<'value>(
    value: &'value serde_norway::Value,
    path: &[&str],
) -> &'value serde_norway::Value {
    let mut current = value;
    for step in path {
        current = match step.parse::<usize>() {
            Ok(index) => &current[index],
            Err(_) => &current[*step],
        };
    }
    current
}

/// The text at `path`, or `""` when it is missing or not text.
pub fn text_at<'value>(value: &'value serde_norway::Value, path: &[&str]) -> &'value str {
    at(value, path).as_str().unwrap_or_default()
}

/// A stored spec object (`spec.yaml` or a history revision), read the way
/// an operator would: the `kind: Revision` header, then the Cluster and its
/// InstanceGroups.
#[derive(Debug)]
pub struct StoredSpec {
    /// The header's `serial`.
    pub serial: u64,
    /// The header document.
    pub header: serde_norway::Value,
    /// The Cluster and InstanceGroup documents.
    pub documents: Vec<serde_norway::Value>,
}

impl StoredSpec {
    /// Parses a stored spec; fails the test, naming `key`, if it is not one.
    #[track_caller]
    pub fn parse(key: &str, bytes: &[u8]) -> StoredSpec {
        let text = std::str::from_utf8(bytes)
            .unwrap_or_else(|error| panic!("{key} is not UTF-8: {error}"));
        let mut documents = yaml_documents(text);
        assert!(
            documents.len() >= 2,
            "{key} has {} documents, expected a header and a Cluster:\n{text}",
            documents.len()
        );
        let header = documents.remove(0);
        assert_eq!(
            text_at(&header, &["kind"]),
            "Revision",
            "{key} does not open with a Revision header:\n{text}"
        );
        let serial = at(&header, &["serial"])
            .as_u64()
            .unwrap_or_else(|| panic!("{key}: the header has no numeric serial:\n{text}"));
        assert_eq!(
            text_at(&documents[0], &["kind"]),
            "Cluster",
            "{key}: the first document after the header is not the Cluster:\n{text}"
        );
        for group in &documents[1..] {
            assert_eq!(
                text_at(group, &["kind"]),
                "InstanceGroup",
                "{key}: a document after the Cluster is not an InstanceGroup:\n{text}"
            );
        }
        StoredSpec {
            serial,
            header,
            documents,
        }
    }

    /// The Cluster document.
    pub fn cluster(&self) -> &serde_norway::Value {
        &self.documents[0]
    }

    /// The names of the instance groups.
    pub fn group_names(&self) -> Vec<String> {
        self.documents[1..]
            .iter()
            .map(|group| text_at(group, &["metadata", "name"]).to_string())
            .collect()
    }
}

/// The current spec of `cluster` in `snapshot`; fails the test if missing.
#[track_caller]
pub fn stored_spec(store: &Store, snapshot: &StoreSnapshot, cluster: &str) -> StoredSpec {
    let key = store.key(&format!("{cluster}/spec.yaml"));
    let bytes = snapshot
        .get(&key)
        .unwrap_or_else(|| panic!("{key} is missing from {snapshot:?}"));
    StoredSpec::parse(&key, bytes)
}

/// Every revision in the spec history of `cluster`, by key, in key order.
#[track_caller]
pub fn spec_history(
    store: &Store,
    snapshot: &StoreSnapshot,
    cluster: &str,
) -> Vec<(String, StoredSpec)> {
    let folder = store.key(&format!("{cluster}/history/spec/"));
    snapshot
        .keys()
        .filter(|key| key.starts_with(&folder))
        .map(|key| {
            let bytes = snapshot.get(key).expect("listed");
            (key.to_string(), StoredSpec::parse(key, bytes))
        })
        .collect()
}

/// Writes an executable shell script into the sandbox home.
pub fn write_script(home: &SandboxHome, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = home.write(name, format!("#!/bin/sh\n{body}\n"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|error| panic!("chmod {}: {error}", path.display()));
    path
}
