//! The shared state store: where an operations team keeps cluster specs,
//! the recorded cloud state, locks, history and cluster key material.
//!
//! Two backends ([`objects::s3::S3Store`], [`objects::file::FileStore`])
//! give the same guarantee: every write that could race is conditional, so
//! nothing is ever overwritten unseen. On top of them, [`specs`] keeps a
//! revision log per cluster, [`lock`] serialises operations that change the
//! cloud, and [`recorded`] holds what skiff created, with a snapshot per
//! operation; [`retention`] prunes old history when asked. [`StateStore`]
//! bundles them for the command line.
#![deny(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use skiff_api::document::ClusterBundle;
use tokio::sync::OnceCell;

pub mod encryption;
pub mod error;
pub mod etcd;
pub mod identity;
pub mod keystore;
pub mod layout;
pub mod location;
pub mod lock;
pub mod objects;
pub mod recorded;
pub mod retention;
pub mod scripts;
pub mod security;
pub mod specs;

pub use error::{Result, StoreError};
pub use identity::Actor;
pub use location::{LocationSource, StoreLocation};

use futures::stream::{self, StreamExt, TryStreamExt};

/// Objects removed at once when a cluster is removed from the store.
const REMOVE_PARALLELISM: usize = 16;

/// How many clusters [`StateStore::cluster_summaries`] reads at once: 100
/// clusters in four round trips, well within what one S3 prefix serves.
const LISTING_PARALLELISM: usize = 32;
pub use lock::{LockGuard, LockHeld, LockInfo};
pub use objects::{ListedObject, Object, ObjectStore, Precondition, PutOptions, Version};
pub use recorded::{RecordedState, SnapshotHeader, StateChange, StoredState};
pub use retention::{Pruned, Retention};
pub use specs::{Change, Revision, StoredSpec};

/// Where an S3 store lives, as nodes need to know it to fetch their secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Details {
    /// The bucket.
    pub bucket: String,
    /// The key prefix of the store (no slashes at either end; may be empty).
    pub prefix: String,
    /// The bucket's region.
    pub region: String,
    /// A custom endpoint, if one is configured.
    pub endpoint: Option<String>,
}

/// An open state store.
#[derive(Debug)]
pub struct StateStore {
    objects: Arc<dyn ObjectStore>,
    /// The S3 backend, for the bucket-level reads of the security check.
    s3_store: Option<objects::s3::S3Store>,
    security: OnceCell<security::SecurityReport>,
    location: StoreLocation,
    s3: Option<S3Details>,
    sdk_config: Option<aws_config::SdkConfig>,
    actor: OnceCell<Actor>,
    retention: Retention,
}

impl StateStore {
    /// Opens the store. An S3 store needs the AWS configuration and checks
    /// that its bucket is reachable; a folder is created if missing.
    pub async fn open(
        location: &StoreLocation,
        sdk_config: Option<&aws_config::SdkConfig>,
    ) -> Result<StateStore> {
        match location {
            StoreLocation::File { path } => Ok(StateStore {
                objects: Arc::new(objects::file::FileStore::open(path)?),
                s3_store: None,
                security: OnceCell::new(),
                location: location.clone(),
                s3: None,
                sdk_config: sdk_config.cloned(),
                actor: OnceCell::new(),
                retention: Retention::default(),
            }),
            StoreLocation::S3 { bucket, prefix } => {
                let sdk_config = sdk_config.ok_or_else(|| StoreError::BadLocation {
                    location: location.to_string(),
                    reason: "an S3 store needs the AWS configuration".to_string(),
                })?;
                let store = objects::s3::S3Store::open(sdk_config, bucket, prefix).await?;
                let s3 = S3Details {
                    bucket: store.bucket().to_string(),
                    prefix: store.prefix().to_string(),
                    region: store.region().to_string(),
                    endpoint: store.endpoint().map(str::to_string),
                };
                Ok(StateStore {
                    objects: Arc::new(store.clone()),
                    s3_store: Some(store),
                    security: OnceCell::new(),
                    location: location.clone(),
                    s3: Some(s3),
                    sdk_config: Some(sdk_config.clone()),
                    actor: OnceCell::new(),
                    retention: Retention::default(),
                })
            }
        }
    }

    /// Prunes a cluster's history by `retention` after every spec revision
    /// and state snapshot this store writes (off by default: no rule set).
    pub fn set_retention(&mut self, retention: Retention) {
        self.retention = retention;
    }

    /// Applies the automatic retention after a write; the write itself has
    /// succeeded, so a failure here is only logged.
    async fn apply_retention(&self, cluster: &str, head_serial: u64) {
        if !self.retention.is_set() {
            return;
        }
        let result = retention::prune(
            self.objects.as_ref(),
            cluster,
            &self.retention,
            head_serial,
            time::OffsetDateTime::now_utc(),
            false,
        )
        .await;
        match result {
            Ok(pruned) => tracing::debug!(
                "pruned the history of cluster {cluster}: spec revisions {:?}, state snapshots {:?}",
                pruned.spec_revisions,
                pruned.state_snapshots
            ),
            Err(error) => {
                tracing::warn!("pruning the history of cluster {cluster} failed: {error}")
            }
        }
    }

    /// The object layer, for modules that keep their own objects (PKI,
    /// rollout progress).
    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.objects
    }

    /// Where the store is.
    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// The S3 details, for an S3 store.
    pub fn s3(&self) -> Option<&S3Details> {
        self.s3.as_ref()
    }

    /// The store's security check (see [`security`]), made once per run:
    /// every command that writes secrets asks, and only the first asks S3.
    pub async fn security(&self) -> &security::SecurityReport {
        self.security
            .get_or_init(|| security::check(&self.location, self.s3_store.as_ref()))
            .await
    }

    /// The bucket's default encryption, for an S3 store (read once per
    /// run, shared with the security check and the secret writes).
    pub async fn default_encryption(&self) -> Result<Option<security::DefaultEncryption>> {
        match &self.s3_store {
            Some(store) => Ok(Some(store.default_encryption().await?.clone())),
            None => Ok(None),
        }
    }

    /// Who is acting: user, host and (for S3 stores) the AWS caller identity.
    pub async fn actor(&self) -> &Actor {
        self.actor
            .get_or_init(|| async {
                match (&self.s3, &self.sdk_config) {
                    (Some(_), Some(config)) => Actor::with_aws_identity(config).await,
                    _ => Actor::local(),
                }
            })
            .await
    }

    /// The names of every cluster in the store.
    pub async fn clusters(&self) -> Result<Vec<String>> {
        let mut folders = self.objects.list_folders("").await?;
        // Store-wide folders (`_locks/`) are not clusters: a cluster's name
        // is a DNS name, which never starts with an underscore.
        folders.retain(|folder| !folder.starts_with('_'));
        Ok(folders)
    }

    /// Every cluster of the store, in the order [`StateStore::clusters`]
    /// lists them, with its current spec and its lock (if held). Two
    /// listings side by side (the clusters, and the lock hints,
    /// [`layout::lock_hint`]), then the spec of every cluster and the lock
    /// of those with a hint, [`LISTING_PARALLELISM`] clusters at a time: a
    /// store shared by many clusters lists in a few round trips and about
    /// one read per cluster. A folder without a spec (a cluster being
    /// unregistered) is not a cluster and is left out.
    pub async fn cluster_summaries(&self) -> Result<Vec<(StoredSpec, Option<LockInfo>)>> {
        let (names, hinted) = tokio::join!(self.clusters(), lock::hinted(self.objects.as_ref()));
        let names = names?;
        let hinted: std::collections::BTreeSet<String> = hinted?.into_iter().collect();
        let hinted = &hinted;
        let read = |name: String| async move {
            let lock = async {
                if hinted.contains(&name) {
                    lock::read(self.objects.as_ref(), &name).await
                } else {
                    Ok(None)
                }
            };
            let (spec, lock) = tokio::join!(specs::read(self.objects.as_ref(), &name), lock);
            let Some(spec) = spec? else {
                return Ok(None);
            };
            Ok::<_, StoreError>(Some((spec, lock?.map(|(info, _)| info))))
        };
        let summaries: Vec<Option<(StoredSpec, Option<LockInfo>)>> = stream::iter(names)
            .map(read)
            .buffered(LISTING_PARALLELISM)
            .try_collect()
            .await?;
        Ok(summaries.into_iter().flatten().collect())
    }

    /// The current spec of a cluster; a clear error naming the known
    /// clusters when it does not exist.
    pub async fn read_spec(&self, cluster: &str) -> Result<StoredSpec> {
        match specs::read(self.objects.as_ref(), cluster).await? {
            Some(spec) => Ok(spec),
            None => {
                let known = self.clusters().await.unwrap_or_default();
                let hint = if known.is_empty() {
                    format!(
                        "the store {} has no clusters yet; create one with `skiff create cluster`",
                        self.location
                    )
                } else {
                    format!("clusters in {}: {}", self.location, known.join(", "))
                };
                Err(StoreError::NotFound {
                    what: format!("cluster {cluster:?} ({hint})"),
                    key: layout::spec(cluster),
                })
            }
        }
    }

    /// Stores a new cluster. Its Kubernetes version must be in skiff's
    /// table ([`skiff_api::version::check_change`]); nothing is written
    /// otherwise.
    pub async fn create_spec(
        &self,
        bundle: &ClusterBundle,
        command: &str,
        summary: &str,
    ) -> Result<StoredSpec> {
        check_version(None, bundle)?;
        let change = self.change(command, summary).await;
        specs::create(self.objects.as_ref(), bundle, &change).await
    }

    /// Stores a new revision of a spec read earlier. A change of the
    /// Kubernetes version must follow the version rules (one minor up at a
    /// time, never down, to a version of skiff's table); nothing is written
    /// otherwise. Keeping a version, even one no longer in the table, is
    /// always allowed.
    pub async fn update_spec(
        &self,
        previous: &StoredSpec,
        bundle: &ClusterBundle,
        command: &str,
        summary: &str,
    ) -> Result<StoredSpec> {
        check_version(Some(&previous.bundle), bundle)?;
        skiff_api::etcd::check_change(&previous.bundle, bundle).map_err(|(field, message)| {
            StoreError::EtcdChangeRefused {
                cluster: bundle.name().to_string(),
                field,
                message,
            }
        })?;
        if let Err((field, message)) =
            skiff_api::windows::check_first_windows_group(&previous.bundle, bundle)
        {
            if self.initialized(bundle.name()).await? {
                return Err(StoreError::RunningClusterRefused {
                    cluster: bundle.name().to_string(),
                    field,
                    message,
                });
            }
        }
        let change = self.change(command, summary).await;
        let stored = specs::update(self.objects.as_ref(), previous, bundle, &change).await?;
        self.apply_retention(bundle.name(), stored.revision.serial)
            .await;
        Ok(stored)
    }

    /// Whether the cluster's first control-plane node has run `kubeadm
    /// init`: it claimed `etcd/init-lock` (or, before that object, the
    /// legacy `bootstrap/init-lock`).
    pub async fn initialized(&self, cluster: &str) -> Result<bool> {
        for key in [layout::etcd_init_lock(cluster), layout::init_lock(cluster)] {
            if self.objects.get(&key).await?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn change(&self, command: &str, summary: &str) -> Change {
        Change {
            actor: self.actor().await.clone(),
            command: command.to_string(),
            summary: summary.to_string(),
        }
    }

    /// Every revision of a cluster's spec, oldest first.
    pub async fn spec_history(&self, cluster: &str) -> Result<Vec<(Revision, ClusterBundle)>> {
        specs::history(self.objects.as_ref(), cluster).await
    }

    /// One revision of a cluster's spec, if the history has it.
    pub async fn spec_revision(
        &self,
        cluster: &str,
        serial: u64,
    ) -> Result<Option<(Revision, ClusterBundle)>> {
        specs::read_revision(self.objects.as_ref(), cluster, serial).await
    }

    /// The headers of the recorded-state snapshots of a cluster, oldest first.
    pub async fn state_history(&self, cluster: &str) -> Result<Vec<SnapshotHeader>> {
        recorded::snapshots(self.objects.as_ref(), cluster).await
    }

    /// Keeps a snapshot of the recorded state in its history, with who is
    /// acting, the command line and `summary`.
    pub async fn snapshot_state<T: serde::Serialize>(
        &self,
        cluster: &str,
        state: &RecordedState<T>,
        command: &str,
        summary: &str,
    ) -> Result<()> {
        let change = self.change(command, summary).await;
        recorded::snapshot(self.objects.as_ref(), cluster, state, &change).await?;
        if self.retention.is_set() {
            if let Ok(Some(head)) = specs::read(self.objects.as_ref(), cluster).await {
                self.apply_retention(cluster, head.revision.serial).await;
            }
        }
        Ok(())
    }

    /// Removes (with `dry_run`: lists) the history entries of a cluster
    /// that `retention` lets go of; see [`retention::prune`].
    pub async fn prune_history(
        &self,
        cluster: &str,
        retention: &Retention,
        dry_run: bool,
    ) -> Result<Pruned> {
        let head = self.read_spec(cluster).await?;
        retention::prune(
            self.objects.as_ref(),
            cluster,
            retention,
            head.revision.serial,
            time::OffsetDateTime::now_utc(),
            dry_run,
        )
        .await
    }

    /// Removes every object of a cluster (spec, history, state, secrets),
    /// the lock last. Returns how many objects were removed.
    pub async fn remove_cluster(&self, cluster: &str) -> Result<usize> {
        let keys = self.objects.list(&layout::cluster_folder(cluster)).await?;
        let lock_key = layout::lock(cluster);
        let keys: Vec<String> = keys.into_iter().filter(|key| *key != lock_key).collect();
        let removed = keys.len();
        // A few at a time: a long history is many small objects.
        stream::iter(&keys)
            .map(|key| self.objects.delete(key, Precondition::None))
            .buffer_unordered(REMOVE_PARALLELISM)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(removed)
    }

    /// Takes the cluster lock for `operation`.
    pub async fn lock(&self, cluster: &str, operation: &str) -> Result<LockGuard> {
        let actor = self.actor().await.clone();
        lock::acquire(
            self.objects.clone(),
            cluster,
            operation,
            &actor,
            lock::configured_lease(),
        )
        .await
    }

    /// Takes the cluster lock for `operation`, waiting up to `timeout` while
    /// another operation holds it (see [`lock::acquire_waiting`]).
    pub async fn lock_waiting(
        &self,
        cluster: &str,
        operation: &str,
        timeout: Duration,
        waiting: &(dyn Fn(&LockInfo) + Send + Sync),
    ) -> Result<LockGuard> {
        let actor = self.actor().await.clone();
        lock::acquire_waiting(
            self.objects.clone(),
            cluster,
            operation,
            &actor,
            lock::configured_lease(),
            timeout,
            waiting,
        )
        .await
    }

    /// Takes the cluster lock with an explicit lease.
    pub async fn lock_with_lease(
        &self,
        cluster: &str,
        operation: &str,
        lease: Duration,
    ) -> Result<LockGuard> {
        let actor = self.actor().await.clone();
        lock::acquire(self.objects.clone(), cluster, operation, &actor, lease).await
    }

    /// The lock of a cluster, if held.
    pub async fn lock_info(&self, cluster: &str) -> Result<Option<LockInfo>> {
        Ok(lock::read(self.objects.as_ref(), cluster)
            .await?
            .map(|(info, _)| info))
    }

    /// Removes a lock by hand, if its ID matches.
    pub async fn unlock(&self, cluster: &str, id: &str) -> Result<LockInfo> {
        lock::unlock(self.objects.as_ref(), cluster, id).await
    }
}

/// Every path that stores a spec passes here, so the version rules hold for
/// `create`, `edit`, `replace`, `rollback` and whatever comes next alike.
fn check_version(previous: Option<&ClusterBundle>, bundle: &ClusterBundle) -> Result<()> {
    let from = previous.map(|previous| previous.cluster.spec.kubernetes_version);
    skiff_api::version::check_change(from, bundle.cluster.spec.kubernetes_version).map_err(
        |source| StoreError::VersionRefused {
            cluster: bundle.name().to_string(),
            source,
        },
    )
}
