//! `rolling-update cluster`: which instance groups run out-of-date
//! instances and why ([`preview`]), and replacing them under the cluster
//! lock, resumably ([`run`]). The order and the surge arithmetic are
//! `skiff_rollout`'s; this module adds the cluster: the groups of its
//! spec, the reasons the recorded state keeps, the progress object in the
//! store, and the lock.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use skiff_api::document::ClusterBundle;
use skiff_api::{InstanceGroupRole, KubernetesVersion};
use skiff_plans::names;
use skiff_plans::plan::VersionStep;
use skiff_providers::AwsProvider;
use skiff_rollout::roll::{order, status};
use skiff_rollout::{
    ClusterApi, EventSink, GroupPlan, MemberHealth, OriginalSize, Progress, ProgressStore,
    RollOptions, RolloutError,
};
use skiff_state::{layout, LockGuard, ObjectStore, Precondition, PutOptions, StateStore, Version};
use tokio::sync::Mutex;

use crate::cluster::{read_recorded, release, Operation, Session};
use crate::error::{EngineError, Refusal, Result};

/// The rolling-update plan of every group of a bundle, in rolling order.
pub fn group_plans(bundle: &ClusterBundle) -> Vec<GroupPlan> {
    let mut plans: Vec<GroupPlan> = bundle
        .instance_groups
        .iter()
        .map(|group| {
            let budget = group
                .spec
                .rolling_update
                .over(&bundle.cluster.spec.rolling_update);
            GroupPlan {
                group: group.name().to_string(),
                auto_scaling_group: names::instance_group_resource(bundle.name(), group.name()),
                role: group.spec.role,
                max_surge: budget.max_surge,
                max_unavailable: budget.max_unavailable,
            }
        })
        .collect();
    order(&mut plans);
    plans
}

/// Which groups a rolling update looks at, and how.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only these groups (empty: all).
    pub groups: Vec<String>,
    /// Only groups of these roles (empty: all).
    pub roles: Vec<InstanceGroupRole>,
    /// Replace every instance, up to date or not.
    pub force: bool,
}

/// One group as the preview shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    /// The instance group.
    pub group: String,
    /// Its auto scaling group's state: `None` when it does not exist.
    pub live: Option<LiveGroup>,
    /// Minimum size in the spec.
    pub min: u32,
    /// Maximum size in the spec.
    pub max: u32,
}

/// What a group's auto scaling group has now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveGroup {
    /// Instances to replace.
    pub outdated: usize,
    /// Up-to-date instances in service.
    pub ready: usize,
    /// Desired capacity.
    pub desired: u32,
    /// Instances.
    pub instances: usize,
}

/// A group the rolling update will work on.
#[derive(Debug, Clone)]
pub struct Step {
    /// The group and its budget.
    pub plan: GroupPlan,
    /// What is to be done.
    pub work: Work,
}

/// What a rolling update does to one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Replace this many instances, for these reasons.
    Replace {
        /// Instances to replace.
        outdated: usize,
        /// Why (from the recorded state, `--force`, or an older version).
        reason: String,
    },
    /// Only restore the sizes an interrupted rolling update grew it from.
    Restore(OriginalSize),
}

/// What a rolling update would do.
pub struct RollPreview {
    /// The cluster.
    pub cluster: String,
    /// Every selected group, in rolling order.
    pub rows: Vec<GroupRow>,
    /// The groups that need work, in rolling order.
    pub steps: Vec<Step>,
    /// The Kubernetes version the replacements install (the spec's).
    pub kubernetes_version: KubernetesVersion,
    /// Node groups whose pending roll raises their Kubernetes minor (from
    /// the recorded reasons `kubernetesVersion A -> B`).
    pub minor_upgrades: BTreeSet<String>,
    /// Every control-plane group of the cluster.
    pub control_planes: Vec<GroupPlan>,
    provider: AwsProvider,
}

/// Reads the groups' auto scaling groups and says what a rolling update
/// would do; changes nothing.
pub async fn preview(
    session: &Session<'_>,
    cluster: &str,
    selection: &Selection,
) -> Result<RollPreview> {
    let store = session.store;
    let spec = store.read_spec(cluster).await?;
    let bundle = &spec.bundle;
    let provider = session.provider(bundle)?;
    let plans = selected(selection, bundle)?;
    let recorded = read_recorded(store, cluster).await?;
    let views = status(&provider, &plans)
        .await
        .map_err(|source| EngineError::Cluster {
            what: "reading the instance groups' auto scaling groups".to_string(),
            source,
        })?;
    let mut rows = Vec::new();
    let mut steps = Vec::new();
    for plan in &plans {
        let (min, max) = bundle
            .instance_group(&plan.group)
            .map(|group| (group.spec.min_size, group.spec.max_size))
            .unwrap_or_default();
        let view = views
            .iter()
            .find(|view| view.name == plan.auto_scaling_group);
        let live = view.map(|view| {
            let outdated = if selection.force {
                view.instances
                    .iter()
                    .filter(|instance| !instance.leaving())
                    .count()
            } else {
                view.outdated().len()
            };
            LiveGroup {
                outdated,
                ready: view
                    .instances
                    .iter()
                    .filter(|instance| view.is_current(instance) && instance.in_service())
                    .count(),
                desired: view.desired,
                instances: view.instances.len(),
            }
        });
        if let Some(live) = &live {
            if live.outdated > 0 {
                let reason = recorded
                    .state
                    .content
                    .pending_rollouts
                    .get(&plan.group)
                    .map(|reasons| reasons.join("; "))
                    .unwrap_or_else(|| match selection.force {
                        true => "--force".to_string(),
                        false => "launched from an older launch-template version".to_string(),
                    });
                steps.push(Step {
                    plan: plan.clone(),
                    work: Work::Replace {
                        outdated: live.outdated,
                        reason,
                    },
                });
            }
        }
        rows.push(GroupRow {
            group: plan.group.clone(),
            live,
            min,
            max,
        });
    }
    // A group an interrupted run grew and did not restore yet needs a run
    // too, even when every instance is up to date (killed after the last
    // replacement): it continues, restoring the group's sizes.
    let interrupted = interrupted_progress(store, cluster).await?;
    for plan in &plans {
        if let Some(original) = interrupted.grown.get(&plan.group) {
            if !steps.iter().any(|step| step.plan.group == plan.group) {
                steps.push(Step {
                    plan: plan.clone(),
                    work: Work::Restore(*original),
                });
            }
        }
    }
    steps.sort_by_key(|step| plans.iter().position(|plan| plan.group == step.plan.group));
    let minor_upgrades = recorded
        .state
        .content
        .pending_rollouts
        .iter()
        .filter(|(_, reasons)| {
            reasons.iter().any(|reason| {
                VersionStep::from_reason(reason).is_some_and(|step| step.raises_minor())
            })
        })
        .map(|(group, _)| group.clone())
        .collect();
    Ok(RollPreview {
        cluster: cluster.to_string(),
        rows,
        steps,
        kubernetes_version: bundle.cluster.spec.kubernetes_version,
        minor_upgrades,
        control_planes: group_plans(bundle)
            .into_iter()
            .filter(|plan| plan.role == InstanceGroupRole::ControlPlane)
            .collect(),
        provider,
    })
}

fn selected(selection: &Selection, bundle: &ClusterBundle) -> Result<Vec<GroupPlan>> {
    for wanted in &selection.groups {
        if bundle.instance_group(wanted).is_none() {
            let known: Vec<&str> = bundle
                .instance_groups
                .iter()
                .map(|group| group.name())
                .collect();
            return Err(Refusal::UnknownGroup {
                group: wanted.clone(),
                cluster: bundle.name().to_string(),
                known: known.join(", "),
            }
            .into());
        }
    }
    Ok(group_plans(bundle)
        .into_iter()
        .filter(|plan| selection.groups.is_empty() || selection.groups.contains(&plan.group))
        .filter(|plan| selection.roles.is_empty() || selection.roles.contains(&plan.role))
        .collect())
}

/// A finished rolling update.
#[derive(Debug)]
pub struct Rolled {
    /// Instances replaced.
    pub replaced: usize,
    /// How long it took.
    pub elapsed: Duration,
}

/// Replaces what the preview found, under the cluster lock, recording
/// progress before each step (`rollout.json`), so a run stopped at any
/// point continues where it stopped. `stop` stops after the current step.
pub async fn run(
    session: &Session<'_>,
    preview: &RollPreview,
    cluster_api: Option<&dyn ClusterApi>,
    options: &RollOptions,
    events: &dyn EventSink,
    stop: Arc<AtomicBool>,
) -> Result<Rolled> {
    let store = session.store;
    let cluster = &preview.cluster;
    let lock = session.lock(cluster, Operation::RollingUpdate).await?;
    let progress = StateProgress {
        objects: store.objects().clone(),
        cluster: cluster.clone(),
        lock: lock.clone(),
        version: Mutex::new(None),
    };
    let plans: Vec<GroupPlan> = preview.steps.iter().map(|step| step.plan.clone()).collect();
    let stop_check = {
        let lock = lock.clone();
        move || stop.load(Ordering::SeqCst) || lock.ensure_held().is_err()
    };
    let started = std::time::Instant::now();
    // Kubelets never newer than the API server: what the nodes will run,
    // and what the control plane must run first.
    let options = RollOptions {
        kubernetes_version: Some(preview.kubernetes_version),
        minor_upgrades: preview.minor_upgrades.clone(),
        control_planes: preview.control_planes.clone(),
        ..options.clone()
    };
    let result = skiff_rollout::roll_groups(
        &preview.provider,
        &plans,
        cluster_api,
        &options,
        &progress,
        events,
        &stop_check,
    )
    .await;
    let outcome = match result {
        Ok(replaced) => clear_pending(session, cluster, &plans, &lock)
            .await
            .map(|()| Rolled {
                replaced,
                elapsed: started.elapsed(),
            }),
        Err(source) => Err(EngineError::Rollout {
            cluster: cluster.clone(),
            source,
        }),
    };
    release(&lock).await;
    outcome
}

/// The progress an interrupted rolling update recorded (or none).
async fn interrupted_progress(store: &StateStore, cluster: &str) -> Result<Progress> {
    let key = layout::rollout(cluster);
    match store.objects().get(&key).await? {
        None => Ok(Progress::default()),
        Some(object) => serde_json::from_slice(&object.bytes)
            .map_err(|source| EngineError::Corrupt { key, source }),
    }
}

/// Forgets the reasons of the groups now fully replaced.
async fn clear_pending(
    session: &Session<'_>,
    cluster: &str,
    plans: &[GroupPlan],
    lock: &LockGuard,
) -> Result<()> {
    let store = session.store;
    let mut recorded = read_recorded(store, cluster).await?;
    let pending = &mut recorded.state.content.pending_rollouts;
    let before = pending.len();
    for plan in plans {
        pending.remove(&plan.group);
    }
    if pending.len() != before {
        lock.ensure_held()?;
        skiff_state::recorded::write(
            store.objects().as_ref(),
            cluster,
            recorded.version.as_ref(),
            &mut recorded.state,
        )
        .await?;
        let groups: Vec<&str> = plans.iter().map(|plan| plan.group.as_str()).collect();
        session
            .snapshot_state(
                cluster,
                &recorded.state,
                &format!("rolled instance groups {}", groups.join(", ")),
            )
            .await;
    }
    Ok(())
}

/// Progress in `<cluster>/rollout.json`, written conditionally under the lock.
struct StateProgress {
    objects: Arc<dyn ObjectStore>,
    cluster: String,
    lock: Arc<LockGuard>,
    version: Mutex<Option<Version>>,
}

#[async_trait]
impl ProgressStore for StateProgress {
    async fn load(&self) -> skiff_rollout::Result<Progress> {
        let key = layout::rollout(&self.cluster);
        let object = self
            .objects
            .get(&key)
            .await
            .map_err(|error| RolloutError::Progress(error.to_string()))?;
        let Some(object) = object else {
            return Ok(Progress::default());
        };
        *self.version.lock().await = Some(object.version.clone());
        serde_json::from_slice(&object.bytes)
            .map_err(|error| RolloutError::Progress(format!("{key} is corrupt: {error}")))
    }

    async fn save(&self, progress: &Progress) -> skiff_rollout::Result<()> {
        self.lock
            .ensure_held()
            .map_err(|error| RolloutError::Progress(error.to_string()))?;
        let key = layout::rollout(&self.cluster);
        let body = serde_json::to_vec_pretty(progress)
            .map_err(|error| RolloutError::Progress(error.to_string()))?;
        let mut version = self.version.lock().await;
        let precondition = match version.as_ref() {
            Some(current) => Precondition::Matches(current.clone()),
            None => Precondition::None,
        };
        let written = self
            .objects
            .put(&key, body, precondition, PutOptions::default())
            .await
            .map_err(|error| RolloutError::Progress(error.to_string()))?;
        *version = Some(written);
        Ok(())
    }

    async fn etcd_member_health(&self) -> skiff_rollout::Result<Option<Vec<MemberHealth>>> {
        let reports = skiff_state::etcd::list_member_health(self.objects.as_ref(), &self.cluster)
            .await
            .map_err(|error| {
                RolloutError::Progress(format!("reading the etcd members' health reports: {error}"))
            })?;
        if reports.is_empty() {
            return Ok(None);
        }
        let now = time::OffsetDateTime::now_utc();
        Ok(Some(
            reports
                .into_iter()
                .map(|report| MemberHealth {
                    age: Duration::try_from(now - report.checked).unwrap_or(Duration::ZERO),
                    member: report.member,
                    instance: report.instance,
                    healthy: report.healthy,
                    voting_members: report.voting_members,
                })
                .collect(),
        ))
    }
}
