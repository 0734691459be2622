//! The cluster addons in the state store (`spec.addons`, issue 18): what
//! the plan's `addon/<name>` resources are, read back for the refresh and
//! written by the apply.
//!
//! kops's channels model: the apply writes each enabled addon's manifest to
//! `<cluster>/addons/<name>.yaml` and, after it, the line of the addon in
//! `<cluster>/addons/index` (its release, the Kubernetes minor it is for,
//! the manifest's SHA-256); the control-plane nodes apply what the index
//! names (`apply_addons` in the bootstrap script, at boot after the pod
//! network and from a timer), so an addon change needs no new node. An
//! addon turned off leaves the index; its manifest object is removed, and
//! the nodes delete what they last applied of it (their own copy, under
//! `etcd/addons/`).
//!
//! The index is one object, rewritten with a conditional write under a
//! lock within the apply (the cluster lock keeps other runs out), so the
//! changes of several addons applied at once never lose one another.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use skiff_plans::resource::{AddonAttributes, Attributes, ResourceKey, ResourceKind};
use skiff_plans::{Observed, ObservedResource};
use skiff_providers::apply::ResourceOperations;
use skiff_providers::operations::Applied;
use skiff_providers::ProviderError;
use skiff_state::objects::{ObjectStore, Precondition, PutOptions};
use skiff_state::{layout, StoreError};
use skiff_templates::state_store::{
    addon_manifest, AddonIndex, AddonIndexEntry, AddonState, AddonStatus, ADDONS_FOLDER,
    ADDONS_INDEX, ADDONS_STATUS,
};
use skiff_templates::RenderedAddon;
use tokio::sync::Mutex;

use crate::error::{EngineError, Result};

/// The manifests of the addons `bundle` enables, as the plan rendered them.
pub fn render(bundle: &skiff_api::ClusterBundle) -> Result<Vec<RenderedAddon>> {
    skiff_plans::desired::addons::render(bundle).map_err(|source| EngineError::Plan {
        cluster: bundle.name().to_string(),
        source,
    })
}

fn key_of(cluster: &str, relative: &str) -> String {
    format!("{}{relative}", layout::cluster_folder(cluster))
}

/// Reads the store's addon index; an absent one is empty.
async fn read_index(
    objects: &dyn ObjectStore,
    cluster: &str,
) -> std::result::Result<(AddonIndex, Option<skiff_state::objects::Version>), String> {
    let key = key_of(cluster, ADDONS_INDEX);
    match objects.get(&key).await {
        Ok(Some(object)) => {
            let text = String::from_utf8_lossy(&object.bytes);
            let index = AddonIndex::parse(&text).map_err(|error| format!("{key}: {error}"))?;
            Ok((index, Some(object.version)))
        }
        Ok(None) => Ok((AddonIndex::default(), None)),
        Err(error) => Err(format!("{key}: {error}")),
    }
}

/// What [`observe`] found besides the addons.
#[derive(Debug, Clone, Default)]
pub struct ObservedAddons {
    /// What the control plane recorded it holds back or could not do
    /// (`etcd/addons/status`), as warnings for the plan, each naming the
    /// addon, its release and why; an entry about another manifest than the
    /// index's is stale and left out.
    pub warnings: Vec<String>,
    /// Whether the store has `addons/index` (an apply writes an empty one
    /// only when it has not: [`ensure_index`]).
    pub index_exists: bool,
}

/// Adds the addons the store's index names to `observed`: `addon/<name>`
/// with the index's release, minor and SHA-256.
pub async fn observe(
    objects: &dyn ObjectStore,
    cluster: &str,
    observed: &mut Observed,
) -> Result<ObservedAddons> {
    let failed = |message| EngineError::Addons {
        cluster: cluster.to_string(),
        message,
    };
    let (index, index_version) = read_index(objects, cluster).await.map_err(failed)?;
    // The nodes' status only informs: one that cannot be read is a
    // warning of its own, never a reason not to plan.
    let status_key = key_of(cluster, ADDONS_STATUS);
    let status = match objects.get(&status_key).await {
        Ok(Some(object)) => AddonStatus::parse(&String::from_utf8_lossy(&object.bytes)),
        Ok(None) => Ok(AddonStatus::default()),
        Err(error) => Err(error.to_string()),
    };
    let warnings = match status {
        Ok(status) => status_warnings(&index, &status),
        Err(error) => vec![format!(
            "could not read what the control plane holds back of the addons ({status_key}: {error}); the addons may wait unseen: see /var/log/skiff-bootstrap.log on a control-plane node"
        )],
    };
    for entry in index.entries {
        let key = ResourceKey::new(ResourceKind::Addon, &entry.name);
        let mut outputs = BTreeMap::new();
        let id = addon_manifest(&entry.name);
        outputs.insert(skiff_plans::resource::Output::Id, id.clone());
        observed.insert(ObservedResource {
            key,
            id,
            attributes: Attributes::Addon(AddonAttributes {
                version: entry.version,
                kubernetes_minor: entry.kubernetes_minor,
                sha256: entry.sha256,
            }),
            outputs,
        });
    }
    Ok(ObservedAddons {
        warnings,
        index_exists: index_version.is_some(),
    })
}

/// The plan's warnings from the control plane's addon status: entries
/// about the manifest the index names now (or about no manifest: a delete,
/// the index itself).
pub fn status_warnings(index: &AddonIndex, status: &AddonStatus) -> Vec<String> {
    let written = if status.written.is_empty() {
        String::new()
    } else {
        format!(", {}", status.written)
    };
    status
        .entries
        .iter()
        .filter(|entry| match index.get(&entry.name) {
            Some(current) => current.sha256 == entry.sha256,
            None => entry.sha256 == "-",
        })
        .map(|entry| {
            let release = if entry.version == "-" {
                String::new()
            } else {
                format!(
                    " {} (for Kubernetes {})",
                    entry.version, entry.kubernetes_minor
                )
            };
            let what = match entry.state {
                AddonState::Held => "is held back by the control plane",
                AddonState::Failed => "failed on the control plane",
            };
            format!(
                "addon/{}{release} {what}: {} ({ADDONS_STATUS}{written})",
                entry.name, entry.reason
            )
        })
        .collect()
}

/// Makes the store's addons those `bundle` enables, outside a plan: for
/// `update cluster --target terraform`, whose Terraform manages the cloud
/// resources only, while the addons, like the PKI, are state-store objects
/// skiff writes (a direct apply does the same through [`AddonOperations`]).
/// Each changed manifest is written before its index line, and a removed
/// addon's manifest is deleted after its line is gone, as the apply does,
/// so a node never reads an index line without its manifest. Returns the
/// names of the addons written or removed.
pub async fn write_all(
    objects: &dyn ObjectStore,
    bundle: &skiff_api::ClusterBundle,
) -> Result<Vec<String>> {
    let cluster = bundle.name();
    let failed = |message: String| EngineError::Addons {
        cluster: cluster.to_string(),
        message,
    };
    let rendered = render(bundle)?;
    let version = bundle.cluster.spec.kubernetes_version;
    let minor = format!("{}.{}", version.major, version.minor);
    let (mut index, index_version) = read_index(objects, cluster).await.map_err(failed)?;
    let mut changed = Vec::new();
    for addon in &rendered {
        let name = addon.addon.name();
        let sha256 = addon.sha256();
        let entry = AddonIndexEntry {
            name: name.to_string(),
            version: addon.version.clone(),
            kubernetes_minor: minor.clone(),
            sha256,
        };
        if index.get(name) == Some(&entry) {
            continue;
        }
        let key = key_of(cluster, &addon_manifest(name));
        objects
            .put(
                &key,
                addon.manifest.clone().into_bytes(),
                Precondition::None,
                PutOptions { secret: false },
            )
            .await
            .map_err(|error| failed(format!("writing {key} (s3:PutObject): {error}")))?;
        index.set(entry);
        changed.push(name.to_string());
    }
    let removed: Vec<String> = index
        .entries
        .iter()
        .map(|entry| entry.name.clone())
        .filter(|name| !rendered.iter().any(|addon| addon.addon.name() == name))
        .collect();
    for name in &removed {
        index.remove(name);
    }
    if changed.is_empty() && removed.is_empty() && index_version.is_some() {
        return Ok(changed);
    }
    let index_key = key_of(cluster, ADDONS_INDEX);
    let precondition = match index_version {
        Some(version) => Precondition::Matches(version),
        None => Precondition::DoesNotExist,
    };
    objects
        .put(
            &index_key,
            index.render().into_bytes(),
            precondition,
            PutOptions { secret: false },
        )
        .await
        .map_err(|error| failed(format!("writing {index_key} (s3:PutObject): {error}")))?;
    for name in removed {
        let key = key_of(cluster, &addon_manifest(&name));
        match objects.delete(&key, Precondition::None).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => {}
            Err(error) => return Err(failed(format!("deleting {key} (s3:DeleteObject): {error}"))),
        }
        changed.push(name);
    }
    Ok(changed)
}

/// Writes an empty `addons/index` when the store has none (a cluster with
/// every addon off, or one made before the addons): the control-plane
/// nodes read it every minute, and on S3 a missing key is a 403 to a role
/// without `s3:ListBucket` on it, not a 404.
pub async fn ensure_index(objects: &dyn ObjectStore, cluster: &str) -> Result<()> {
    let key = key_of(cluster, ADDONS_INDEX);
    match objects
        .put(
            &key,
            AddonIndex::default().render().into_bytes(),
            Precondition::DoesNotExist,
            PutOptions { secret: false },
        )
        .await
    {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) | Err(StoreError::Conflict { .. }) => Ok(()),
        Err(error) => Err(EngineError::Addons {
            cluster: cluster.to_string(),
            message: format!("writing an empty {key} (s3:PutObject): {error}"),
        }),
    }
}

/// The apply's operations: `addon/<name>` changes go to the state store,
/// every other change to `inner` (the cloud).
#[derive(Clone)]
pub struct AddonOperations<O> {
    inner: O,
    objects: Arc<dyn ObjectStore>,
    cluster: String,
    /// The rendered manifests by addon name.
    manifests: Arc<BTreeMap<String, RenderedAddon>>,
    /// Held while the index is read and written.
    index: Arc<Mutex<()>>,
}

impl<O> AddonOperations<O> {
    /// `inner` for the cloud; `manifests` as [`render`] made them from the
    /// spec the plan was made from.
    pub fn new(
        inner: O,
        objects: Arc<dyn ObjectStore>,
        cluster: &str,
        manifests: Vec<RenderedAddon>,
    ) -> AddonOperations<O> {
        AddonOperations {
            inner,
            objects,
            cluster: cluster.to_string(),
            manifests: Arc::new(
                manifests
                    .into_iter()
                    .map(|addon| (addon.addon.name().to_string(), addon))
                    .collect(),
            ),
            index: Arc::new(Mutex::new(())),
        }
    }

    fn failure(
        &self,
        operation: &str,
        key: &ResourceKey,
        message: impl Into<String>,
    ) -> ProviderError {
        ProviderError::other(operation, key.as_str(), message)
    }

    /// Writes the manifest of `key`'s addon, then its index line.
    async fn write(
        &self,
        operation: &str,
        key: &ResourceKey,
        desired: &AddonAttributes,
    ) -> std::result::Result<Applied, ProviderError> {
        let name = key.name();
        let rendered = self.manifests.get(name).ok_or_else(|| {
            self.failure(
                operation,
                key,
                format!("the spec enables no addon {name}: plan again"),
            )
        })?;
        if rendered.sha256() != desired.sha256 || rendered.version != desired.version {
            return Err(self.failure(
                operation,
                key,
                format!(
                    "the plan wants {name} {} (sha256 {}), the spec renders {} (sha256 {}): plan again",
                    desired.version,
                    desired.sha256,
                    rendered.version,
                    rendered.sha256()
                ),
            ));
        }
        let store_error = |error: StoreError| self.failure(operation, key, error.to_string());
        let manifest = key_of(&self.cluster, &addon_manifest(name));
        self.objects
            .put(
                &manifest,
                rendered.manifest.clone().into_bytes(),
                Precondition::None,
                PutOptions { secret: false },
            )
            .await
            .map_err(store_error)?;
        self.change_index(operation, key, |index| {
            index.set(AddonIndexEntry {
                name: name.to_string(),
                version: desired.version.clone(),
                kubernetes_minor: desired.kubernetes_minor.clone(),
                sha256: desired.sha256.clone(),
            })
        })
        .await?;
        Ok(Applied::with_id(&addon_manifest(name)))
    }

    /// Reads the index, changes it, writes it back if it did not change
    /// meanwhile.
    async fn change_index(
        &self,
        operation: &str,
        key: &ResourceKey,
        change: impl FnOnce(&mut AddonIndex),
    ) -> std::result::Result<(), ProviderError> {
        let _held = self.index.lock().await;
        let (mut index, version) = read_index(self.objects.as_ref(), &self.cluster)
            .await
            .map_err(|message| self.failure(operation, key, message))?;
        change(&mut index);
        let precondition = match version {
            Some(version) => Precondition::Matches(version),
            None => Precondition::DoesNotExist,
        };
        self.objects
            .put(
                &key_of(&self.cluster, ADDONS_INDEX),
                index.render().into_bytes(),
                precondition,
                PutOptions { secret: false },
            )
            .await
            .map_err(|error| self.failure(operation, key, error.to_string()))?;
        Ok(())
    }
}

#[async_trait]
impl<O: ResourceOperations + Clone + 'static> ResourceOperations for AddonOperations<O> {
    async fn create(
        &self,
        key: &ResourceKey,
        attributes: &Attributes,
        intent: &str,
    ) -> std::result::Result<Applied, ProviderError> {
        match attributes {
            Attributes::Addon(desired) => self.write("create", key, desired).await,
            _ => self.inner.create(key, attributes, intent).await,
        }
    }

    async fn update(
        &self,
        key: &ResourceKey,
        id: &str,
        current: &Attributes,
        desired: &Attributes,
    ) -> std::result::Result<Applied, ProviderError> {
        match desired {
            Attributes::Addon(desired) => self.write("update", key, desired).await,
            _ => self.inner.update(key, id, current, desired).await,
        }
    }

    async fn delete(
        &self,
        key: &ResourceKey,
        id: &str,
        current: &Attributes,
    ) -> std::result::Result<(), ProviderError> {
        let Attributes::Addon(_) = current else {
            return self.inner.delete(key, id, current).await;
        };
        let name = key.name().to_string();
        // The index first: a node that reads it no longer applies the
        // addon, and deletes what it last applied (its own copy).
        self.change_index("delete", key, |index| index.remove(&name))
            .await?;
        match self
            .objects
            .delete(
                &key_of(&self.cluster, &addon_manifest(&name)),
                Precondition::None,
            )
            .await
        {
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(error) => Err(self.failure("delete", key, error.to_string())),
        }
    }
}

/// The folder of the addons in the store (for the docs and tests).
pub fn folder(cluster: &str) -> String {
    key_of(cluster, ADDONS_FOLDER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_state::objects::file::FileStore;

    fn entry(name: &str, sha256: &str) -> AddonIndexEntry {
        AddonIndexEntry {
            name: name.to_string(),
            version: "v1.63.1".to_string(),
            kubernetes_minor: "1.35".to_string(),
            sha256: sha256.to_string(),
        }
    }

    #[tokio::test]
    async fn the_index_always_exists_once_skiff_applies_and_is_never_overwritten() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let store = FileStore::open(folder.path()).expect("store");
        let key = key_of("c1.example.com", ADDONS_INDEX);
        assert!(store.get(&key).await.expect("read").is_none());
        ensure_index(&store, "c1.example.com")
            .await
            .expect("written");
        let written = store.get(&key).await.expect("read").expect("an index");
        assert_eq!(
            AddonIndex::parse(&String::from_utf8_lossy(&written.bytes)),
            Ok(AddonIndex::default())
        );
        let mut index = AddonIndex::default();
        index.set(entry("ebs-csi-driver", &"a".repeat(64)));
        store
            .put(
                &key,
                index.render().into_bytes(),
                Precondition::None,
                PutOptions { secret: false },
            )
            .await
            .expect("put");
        ensure_index(&store, "c1.example.com").await.expect("kept");
        let kept = store.get(&key).await.expect("read").expect("an index");
        assert_eq!(String::from_utf8_lossy(&kept.bytes), index.render());
    }

    #[test]
    fn the_status_names_the_held_addon_its_release_and_why_and_drops_stale_entries() {
        let current = "a".repeat(64);
        let mut index = AddonIndex::default();
        index.set(entry("ebs-csi-driver", &current));
        index.set(entry("metrics-server", &"b".repeat(64)));
        let status = AddonStatus::parse(&format!(
            "# written by i-0aaa at 2026-12-07T08:00:00Z\n\
             held ebs-csi-driver v1.63.1 1.35 {current} waits until every kube-apiserver runs Kubernetes 1.35: n2 runs v1.34.2\n\
             held metrics-server v0.7.2 1.35 {} an older manifest\n\
             failed cluster-autoscaler - - - turned off, but deleting it failed: forbidden\n",
            "c".repeat(64)
        ))
        .expect("parses");
        assert_eq!(
            status_warnings(&index, &status),
            [
                "addon/ebs-csi-driver v1.63.1 (for Kubernetes 1.35) is held back by the control plane: waits until every kube-apiserver runs Kubernetes 1.35: n2 runs v1.34.2 (etcd/addons/status, written by i-0aaa at 2026-12-07T08:00:00Z)",
                "addon/cluster-autoscaler failed on the control plane: turned off, but deleting it failed: forbidden (etcd/addons/status, written by i-0aaa at 2026-12-07T08:00:00Z)",
            ]
        );
    }
}
