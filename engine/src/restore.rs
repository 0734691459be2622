//! `restore cluster --backup ID`: rebuilding a cluster's control plane from
//! an etcd backup.
//!
//! skiff does not restore etcd itself: the nodes do (see
//! docs/control-plane.md). skiff's part is to ask and to clear the way:
//! write `<cluster>/etcd/restore-request` naming the backup, then terminate
//! every control-plane instance in its auto scaling group without lowering
//! the desired capacity. The groups launch replacements; the first that
//! finds no live etcd member restores the requested backup and the others
//! join it. The API is unavailable until then, and every write after the
//! backup was taken is lost, which is why a healthy control plane (its API
//! answers `/readyz`) is refused without `--force`.
//!
//! With an external etcd (`spec.etcd.topology: external`) the members hold
//! the data, not the control plane: the restore terminates every member's
//! instance instead ([`restored_role`]), and each replacement restores the
//! same backup (docs/external-etcd.md). The API servers stay; rolling the
//! control-plane groups afterwards restarts them on the restored data.
//!
//! [`preview`] changes nothing; [`run`] holds the cluster lock while it
//! writes the request and terminates, and records the restore in the
//! cluster's state history.

use std::time::Duration;

use skiff_api::InstanceGroupRole;
use skiff_plans::names;
use skiff_providers::AwsProvider;
use skiff_rollout::kubernetes::Readiness;
use skiff_rollout::GroupOperations;
use skiff_state::etcd::{self, Backup};

use crate::backups::{find, require_backup_store};
use crate::cluster::{read_recorded, release, Operation, Session};
use crate::error::{EngineError, Refusal, Result};

/// What `restore cluster` was asked.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// The backup: an ID as `get backups` lists it, its key or its `s3://` URL.
    pub backup: String,
    /// Restore even though the control plane answers `/readyz`.
    pub force: bool,
}

/// A control-plane group and the instances a restore replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPlaneGroup {
    /// The instance group.
    pub group: String,
    /// Its auto scaling group.
    pub auto_scaling_group: String,
    /// Its desired capacity: how many replacements it launches.
    pub desired: u32,
    /// The instances to terminate (those not already leaving).
    pub instances: Vec<String>,
}

/// What a restore would do.
pub struct RestorePreview {
    /// The cluster.
    pub cluster: String,
    /// The backup to restore.
    pub backup: Backup,
    /// The control-plane groups, by name.
    pub groups: Vec<ControlPlaneGroup>,
    /// The API address asked for `/readyz`.
    pub api_server: String,
    /// What it answered.
    pub readiness: Readiness,
    /// Whether `--force` was given.
    pub force: bool,
    /// The role of the groups replaced: `ControlPlane`, or `Etcd` with an
    /// external etcd.
    pub role: InstanceGroupRole,
    provider: AwsProvider,
}

impl RestorePreview {
    /// Whether `run` would refuse: the control plane answers and no `--force`.
    pub fn refused(&self) -> Option<Refusal> {
        match (&self.readiness, self.force) {
            (Readiness::Ready, false) => Some(Refusal::ControlPlaneHealthy {
                cluster: self.cluster.clone(),
                server: self.api_server.clone(),
            }),
            _ => None,
        }
    }

    /// Every instance that will be terminated.
    pub fn instance_count(&self) -> usize {
        self.groups.iter().map(|group| group.instances.len()).sum()
    }
}

/// Finds the backup, the control-plane instances and whether the API
/// answers; changes nothing. An unknown backup, a backup of another
/// cluster and a cluster never applied are refused here.
pub async fn preview(
    session: &Session<'_>,
    cluster: &str,
    options: &RestoreOptions,
) -> Result<RestorePreview> {
    let store = session.store;
    let spec = store.read_spec(cluster).await?;
    let bundle = &spec.bundle;
    require_backup_store(store, cluster)?;
    let backup = find(store, bundle, &options.backup).await?;
    let recorded = read_recorded(store, cluster).await?;
    if recorded.version.is_none() || recorded.state.content.resources.is_empty() {
        return Err(Refusal::NothingToRestore {
            cluster: cluster.to_string(),
        }
        .into());
    }
    let provider = session.provider(bundle)?;
    let role = restored_role(bundle.cluster.spec.etcd.topology);
    let mut wanted: Vec<(String, String)> = bundle
        .instance_groups
        .iter()
        .filter(|group| group.spec.role == role)
        .map(|group| {
            (
                group.name().to_string(),
                names::instance_group_resource(cluster, group.name()),
            )
        })
        .collect();
    wanted.sort();
    let names: Vec<String> = wanted.iter().map(|(_, name)| name.clone()).collect();
    let (views, (api_server, readiness)) = tokio::join!(
        provider.describe_groups(&names),
        crate::access::api_readiness(store, bundle)
    );
    let views = views.map_err(|source| EngineError::Cluster {
        what: format!(
            "reading the {} auto scaling groups of cluster {cluster}",
            role_text(role)
        ),
        source,
    })?;
    let groups = wanted
        .into_iter()
        .filter_map(|(group, auto_scaling_group)| {
            let view = views.iter().find(|view| view.name == auto_scaling_group)?;
            Some(ControlPlaneGroup {
                group,
                desired: view.desired,
                instances: view
                    .instances
                    .iter()
                    .filter(|instance| !instance.leaving())
                    .map(|instance| instance.id.clone())
                    .collect(),
                auto_scaling_group,
            })
        })
        .collect();
    Ok(RestorePreview {
        cluster: cluster.to_string(),
        backup,
        groups,
        api_server,
        readiness,
        force: options.force,
        role,
        provider,
    })
}

/// The role whose instances hold etcd's data, which a restore replaces:
/// the control plane's (stacked etcd) or the external members' (`Etcd`).
pub fn restored_role(topology: skiff_api::EtcdTopology) -> InstanceGroupRole {
    match topology {
        skiff_api::EtcdTopology::External => InstanceGroupRole::Etcd,
        skiff_api::EtcdTopology::Stacked => InstanceGroupRole::ControlPlane,
    }
}

/// How messages name the instances of `role`.
pub fn role_text(role: InstanceGroupRole) -> &'static str {
    match role {
        InstanceGroupRole::Etcd => "etcd member",
        _ => "control-plane",
    }
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The backup requested.
    pub backup: String,
    /// The instances terminated, by group.
    pub terminated: Vec<ControlPlaneGroup>,
    /// How long it took.
    pub elapsed: Duration,
}

/// Requests the restore and replaces the control plane, under the cluster
/// lock: writes `<cluster>/etcd/restore-request`, terminates every
/// control-plane instance (the groups keep their desired capacity and
/// launch replacements) and records the restore in the state history.
pub async fn run(session: &Session<'_>, preview: &RestorePreview) -> Result<Restored> {
    if let Some(refusal) = preview.refused() {
        return Err(refusal.into());
    }
    let started = std::time::Instant::now();
    let cluster = &preview.cluster;
    session
        .require_secure_store(&format!(
            "restore cluster {cluster} (its rebuilt control plane writes etcd backups, which hold every Secret)"
        ))
        .await?;
    let lock = session.lock(cluster, Operation::Restore).await?;
    let outcome = async {
        let store = session.store;
        let objects = store.objects().as_ref();
        // The backup may have been pruned by the nodes' retention since
        // the preview: the request would then name nothing.
        let still_there = objects.list(&preview.backup.key).await?;
        if !still_there.contains(&preview.backup.key) {
            return Err(Refusal::UnknownBackup {
                given: preview.backup.id.to_string(),
                cluster: cluster.clone(),
                reason: "it was deleted (the nodes keep only the newest backups) after this command found it".to_string(),
            }
            .into());
        }
        lock.ensure_held()?;
        etcd::write_restore_request(objects, cluster, &preview.backup.id).await?;
        for group in &preview.groups {
            for instance in &group.instances {
                lock.ensure_held()?;
                preview
                    .provider
                    .terminate(instance, false)
                    .await
                    .map_err(|source| EngineError::Cluster {
                        what: format!(
                            "terminating instance {instance} of group {} (the restore of {} is requested in the store; run the same command again to terminate the rest)",
                            group.group, preview.backup.id
                        ),
                        source,
                    })?;
            }
        }
        let mut recorded = read_recorded(store, cluster).await?;
        lock.ensure_held()?;
        skiff_state::recorded::write(
            objects,
            cluster,
            recorded.version.as_ref(),
            &mut recorded.state,
        )
        .await?;
        session
            .snapshot_state(
                cluster,
                &recorded.state,
                &format!(
                    "restore of etcd backup {} requested; terminated {} {} instance(s)",
                    preview.backup.id,
                    preview.instance_count(),
                    role_text(preview.role)
                ),
            )
            .await;
        Ok(Restored {
            backup: preview.backup.id.to_string(),
            terminated: preview.groups.clone(),
            elapsed: started.elapsed(),
        })
    }
    .await;
    release(&lock).await;
    outcome
}

#[cfg(test)]
mod tests {
    use skiff_api::InstanceGroupRole;

    use super::{restored_role, role_text};

    #[test]
    fn an_external_etcd_restore_replaces_the_members_and_a_stacked_one_the_control_plane() {
        let stacked = restored_role(skiff_api::EtcdTopology::Stacked);
        assert_eq!(stacked, InstanceGroupRole::ControlPlane);
        assert_eq!(role_text(stacked), "control-plane");
        let external = restored_role(skiff_api::EtcdTopology::External);
        assert_eq!(external, InstanceGroupRole::Etcd);
        assert_eq!(role_text(external), "etcd member");
    }
}
