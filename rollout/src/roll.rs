//! The rolling-update loop of one group, and the order of groups.
//!
//! Everything here decides; nothing here reaches AWS or Kubernetes except
//! through [`GroupOperations`] and [`ClusterApi`], so the scheduling
//! (order, surge, unavailability, resuming an interrupted run) is tested
//! against in-memory fakes (`roll/tests.rs`).

use std::collections::BTreeSet;
use std::time::Duration;

use skiff_api::{InstanceGroupRole, IntOrPercent, KubernetesVersion};

use crate::{
    ClusterApi, ControlPlaneHealth, Event, EventSink, GroupOperations, GroupView, MemberHealth,
    OriginalSize, Progress, ProgressStore, Result, RolloutError,
};

/// A member's health report older than this counts as no answer (members
/// report every minute).
pub const HEALTH_REPORT_MAX_AGE: Duration = Duration::from_secs(180);

/// One instance group to roll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPlan {
    /// The instance group's name.
    pub group: String,
    /// Its auto scaling group.
    pub auto_scaling_group: String,
    /// Its role (control-plane groups never surge and go one instance at a time).
    pub role: InstanceGroupRole,
    /// Extra instances allowed during the update.
    pub max_surge: IntOrPercent,
    /// Instances that may be missing during the update.
    pub max_unavailable: IntOrPercent,
}

/// How to roll.
#[derive(Debug, Clone)]
pub struct RollOptions {
    /// Replace every instance, up to date or not.
    pub force: bool,
    /// How long draining a node may take.
    pub drain_timeout: Duration,
    /// Whether a node that does not drain fails its group (else: warn and go on).
    pub fail_on_drain_error: bool,
    /// How long a group may take to become valid after a round.
    pub validation_timeout: Duration,
    /// Consecutive successful validations required after a round.
    pub validate_count: u32,
    /// Pause between polls.
    pub poll_interval: Duration,
    /// The Kubernetes version replacement nodes install (the spec's). With
    /// a Kubernetes API, a node group is not replaced while the API server
    /// reports an older minor: a kubelet must never be newer than the API
    /// server (the version-skew policy).
    pub kubernetes_version: Option<KubernetesVersion>,
    /// Node groups whose pending roll raises their Kubernetes minor. With
    /// no Kubernetes API (`--cloudonly`) to ask, they are not replaced while
    /// a control-plane group still has instances of an older template.
    pub minor_upgrades: BTreeSet<String>,
    /// Every control-plane group of the cluster, rolled in this run or not
    /// (what a minor upgrade of nodes waits for without a Kubernetes API).
    pub control_planes: Vec<GroupPlan>,
}

impl Default for RollOptions {
    fn default() -> Self {
        RollOptions {
            force: false,
            drain_timeout: Duration::from_secs(300),
            fail_on_drain_error: true,
            validation_timeout: Duration::from_secs(900),
            validate_count: 2,
            poll_interval: Duration::from_secs(10),
            kubernetes_version: None,
            minor_upgrades: BTreeSet::new(),
            control_planes: Vec::new(),
        }
    }
}

/// The order groups roll in: bastions, external etcd members, control
/// plane, nodes; by name within a role. etcd goes before the API servers
/// that use it, as kubeadm upgrades etcd before the API server.
pub fn order(groups: &mut [GroupPlan]) {
    let rank = |role: InstanceGroupRole| match role {
        InstanceGroupRole::Bastion => 0,
        InstanceGroupRole::Etcd => 1,
        InstanceGroupRole::ControlPlane => 2,
        InstanceGroupRole::Node => 3,
    };
    groups.sort_by(|first, second| {
        (rank(first.role), &first.group).cmp(&(rank(second.role), &second.group))
    });
}

/// What a group's instances will need: out-of-date count and total, for previews.
pub async fn status(cloud: &dyn GroupOperations, groups: &[GroupPlan]) -> Result<Vec<GroupView>> {
    let names: Vec<String> = groups
        .iter()
        .map(|group| group.auto_scaling_group.clone())
        .collect();
    cloud.describe_groups(&names).await
}

/// Rolls every group in order, stopping at the first that fails.
#[allow(clippy::too_many_arguments)]
pub async fn roll_groups(
    cloud: &dyn GroupOperations,
    groups: &[GroupPlan],
    cluster: Option<&dyn ClusterApi>,
    options: &RollOptions,
    store: &dyn ProgressStore,
    events: &dyn EventSink,
    stop: &(dyn Fn() -> bool + Send + Sync),
) -> Result<usize> {
    let mut progress = store.load().await?;
    let mut replaced = 0;
    for group in groups {
        if stop() {
            return Err(RolloutError::Interrupted(
                "stopped before instance group ".to_string() + &group.group,
            ));
        }
        replaced += roll_group(
            cloud,
            group,
            groups,
            cluster,
            options,
            store,
            &mut progress,
            events,
            stop,
        )
        .await?;
    }
    // Done: nothing to resume.
    progress = Progress::default();
    store.save(&progress).await?;
    Ok(replaced)
}

#[allow(clippy::too_many_arguments)]
async fn roll_group(
    cloud: &dyn GroupOperations,
    plan: &GroupPlan,
    all: &[GroupPlan],
    cluster: Option<&dyn ClusterApi>,
    options: &RollOptions,
    store: &dyn ProgressStore,
    progress: &mut Progress,
    events: &dyn EventSink,
    stop: &(dyn Fn() -> bool + Send + Sync),
) -> Result<usize> {
    let name = &plan.auto_scaling_group;
    let mut view = describe_one(cloud, plan).await?;
    // The group's own size: before any growth of an interrupted earlier run.
    let original = progress
        .grown
        .get(&plan.group)
        .copied()
        .unwrap_or(OriginalSize {
            desired: view.desired,
            max: view.max,
        });
    // With `--force` the instances present at the start of the first run
    // are the ones to replace; a resumed run goes by that record, else it
    // would replace the replacements the first run launched (they are
    // current and have new IDs) and every group it had finished.
    let forced = progress.forced.get(&plan.group).cloned();
    let targets: BTreeSet<String> = view
        .instances
        .iter()
        .filter(|instance| !instance.leaving())
        .filter(|instance| {
            !view.is_current(instance)
                || (options.force
                    && forced
                        .as_ref()
                        .is_none_or(|forced| forced.contains(&instance.id)))
        })
        .map(|instance| instance.id.clone())
        .collect();
    if options.force && forced.is_none() && !targets.is_empty() {
        progress.forced.insert(plan.group.clone(), targets.clone());
        store.save(progress).await?;
    }
    if targets.is_empty() && !progress.grown.contains_key(&plan.group) {
        return Ok(0);
    }
    if plan.role == InstanceGroupRole::Node && !targets.is_empty() {
        check_version_skew(cloud, plan, all, cluster, options).await?;
    }

    let desired = original.desired;
    let (surge, unavailable) = match plan.role {
        // etcd keeps quorum only if members leave one at a time; an
        // external member's replacement takes its fixed address, so it
        // cannot launch before the old instance is gone either.
        InstanceGroupRole::ControlPlane | InstanceGroupRole::Etcd => (0, 1),
        _ => {
            let surge = plan
                .max_surge
                .resolve(desired, true)
                .min(u32::try_from(targets.len()).unwrap_or(u32::MAX));
            let unavailable = plan.max_unavailable.resolve(desired, false);
            if surge == 0 && unavailable == 0 {
                (0, 1)
            } else {
                (surge, unavailable)
            }
        }
    };
    events.event(&Event::GroupStarted {
        group: plan.group.clone(),
        outdated: targets.len(),
        total: view.instances.len(),
        surge,
        unavailable,
    });

    // Grow first, so replacements launch before anything is removed.
    if surge > 0 && view.desired < desired + surge && !targets.is_empty() {
        progress.grown.insert(plan.group.clone(), original);
        store.save(progress).await?;
        let grown = desired + surge;
        cloud
            .set_capacity(name, grown, original.max.max(grown))
            .await?;
        events.event(&Event::Grown {
            group: plan.group.clone(),
            desired: grown,
        });
    }

    let mut replaced_now = 0;
    let mut last_batch: Vec<String> = Vec::new();
    loop {
        view = wait_until_valid(cloud, plan, cluster, options, &last_batch, events).await?;
        let remaining: Vec<String> = view
            .instances
            .iter()
            .filter(|instance| !instance.leaving() && targets.contains(&instance.id))
            .map(|instance| instance.id.clone())
            .collect();
        if remaining.is_empty() {
            break;
        }
        if stop() {
            return Err(RolloutError::Interrupted(format!(
                "stopped in instance group {} with {} instances left to replace; run again to continue",
                plan.group,
                remaining.len()
            )));
        }
        let excess = view.desired.saturating_sub(desired);
        let budget = usize::try_from(excess + unavailable)
            .unwrap_or(usize::MAX)
            .max(1);
        let batch: Vec<String> = remaining.iter().take(budget).cloned().collect();

        // Drain the batch's nodes together (an external etcd member has none).
        if let Some(cluster) = cluster.filter(|_| plan.role != InstanceGroupRole::Etcd) {
            let instances = &view.instances;
            let drains = batch.iter().map(|instance_id| async move {
                let instance = instances
                    .iter()
                    .find(|instance| &instance.id == instance_id);
                let Some(instance) = instance else {
                    return Ok(());
                };
                let Some(node) = cluster.node_of(instance).await? else {
                    return Ok(());
                };
                cluster.cordon(&node).await?;
                match cluster
                    .drain(&node, instance_id, options.drain_timeout)
                    .await
                {
                    Ok(()) => {}
                    Err(error @ RolloutError::DrainTimeout { .. })
                        if !options.fail_on_drain_error =>
                    {
                        tracing::warn!(
                            "{error}; terminating it anyway (--fail-on-drain-error=false)"
                        );
                    }
                    Err(error) => return Err(error),
                }
                events.event(&Event::Drained {
                    group: plan.group.clone(),
                    instance: instance_id.clone(),
                    node,
                });
                Ok(())
            });
            for result in futures::future::join_all(drains).await {
                result?;
            }
        }

        // The last instances shrink the group back instead of being replaced.
        let mut excess_left = excess;
        for (index, instance) in batch.iter().enumerate() {
            let left_after_this = remaining.len() - index;
            let shrink = excess_left > 0
                && u32::try_from(left_after_this).unwrap_or(u32::MAX) <= excess_left;
            if shrink {
                excess_left -= 1;
            }
            if plan.role == InstanceGroupRole::Etcd {
                wait_for_etcd_quorum(plan, instance, all, store, options).await?;
            }
            progress
                .replaced
                .entry(plan.group.clone())
                .or_default()
                .insert(instance.clone());
            store.save(progress).await?;
            cloud.terminate(instance, shrink).await?;
            replaced_now += 1;
            events.event(&Event::Terminated {
                group: plan.group.clone(),
                instance: instance.clone(),
                shrink,
            });
        }
        last_batch = batch;
    }

    // Restore the sizes the group had before it was grown.
    if progress.grown.remove(&plan.group).is_some() {
        let current = describe_one(cloud, plan).await?;
        if current.desired != original.desired || current.max != original.max {
            cloud
                .set_capacity(name, original.desired, original.max)
                .await?;
        }
        store.save(progress).await?;
        wait_until_valid(cloud, plan, cluster, options, &[], events).await?;
    }
    events.event(&Event::GroupDone {
        group: plan.group.clone(),
        replaced: replaced_now,
    });
    Ok(replaced_now)
}

/// Refuses to replace a node group's instances when their kubelets would
/// be newer than the API server: asked at `/version` when there is a
/// Kubernetes API; without one, a minor upgrade waits for every
/// control-plane group to be up to date.
async fn check_version_skew(
    cloud: &dyn GroupOperations,
    plan: &GroupPlan,
    all: &[GroupPlan],
    cluster: Option<&dyn ClusterApi>,
    options: &RollOptions,
) -> Result<()> {
    const FIRST: &str = "Upgrade the control plane first (`skiff rolling-update cluster --yes --instance-group-roles ControlPlane`), then run this again";
    if let (Some(cluster), Some(kubelet)) = (cluster, options.kubernetes_version) {
        let reported = cluster.versions().await?.api_server;
        let api_server: KubernetesVersion = reported.parse().map_err(|_| {
            RolloutError::Kubernetes(format!(
                "the API server reports version {reported:?}, which is not a Kubernetes version"
            ))
        })?;
        if (kubelet.major, kubelet.minor) > (api_server.major, api_server.minor) {
            return Err(RolloutError::VersionSkew(format!(
                "instance group {}: not replacing its nodes: they would run kubelet {kubelet} and the API server \
                 reports {reported}; a kubelet must never be newer than the API server (the Kubernetes \
                 version-skew policy, which kubeadm's join preflight enforces). {FIRST}.",
                plan.group
            )));
        }
    }
    // `/version` answers through the load balancer from one API server;
    // during a control-plane roll the others may still be older. A minor
    // upgrade of nodes also waits for every control-plane group to be up
    // to date (and this is all there is to go by with --cloudonly).
    if !options.minor_upgrades.contains(&plan.group) {
        return Ok(());
    }
    let known = || options.control_planes.iter().chain(all.iter());
    let control_planes: BTreeSet<String> = known()
        .filter(|group| group.role == InstanceGroupRole::ControlPlane)
        .map(|group| group.auto_scaling_group.clone())
        .collect();
    let control_planes: Vec<String> = control_planes.into_iter().collect();
    let behind: Vec<String> = cloud
        .describe_groups(&control_planes)
        .await?
        .iter()
        .filter(|view| !view.outdated().is_empty())
        .map(|view| {
            known()
                .find(|group| group.auto_scaling_group == view.name)
                .map_or_else(|| view.name.clone(), |group| group.group.clone())
        })
        .collect();
    if behind.is_empty() {
        return Ok(());
    }
    let how = match cluster {
        None => " with --cloudonly",
        Some(_) => "",
    };
    Err(RolloutError::VersionSkew(format!(
        "instance group {}: not replacing its nodes{how}: they would run a newer Kubernetes minor{}, and \
         control-plane groups {} still have instances of an older launch template, whose API servers may be \
         older (a kubelet must never be newer than the API server). {FIRST}{}.",
        plan.group,
        options
            .kubernetes_version
            .map(|version| format!(" ({version})"))
            .unwrap_or_default(),
        behind.join(", "),
        match cluster {
            None => ", or run without --cloudonly so that skiff also reads the API server's version",
            Some(_) => "",
        }
    )))
}

async fn describe_one(cloud: &dyn GroupOperations, plan: &GroupPlan) -> Result<GroupView> {
    cloud
        .describe_groups(std::slice::from_ref(&plan.auto_scaling_group))
        .await?
        .into_iter()
        .find(|view| view.name == plan.auto_scaling_group)
        .ok_or_else(|| RolloutError::GroupNotFound {
            group: plan.group.clone(),
            auto_scaling_group: plan.auto_scaling_group.clone(),
        })
}

/// Waits until the group is whole: the instances just terminated are gone,
/// as many instances are in service as desired, their nodes are Ready (and
/// for the control plane, the control plane is healthy) — `validate_count`
/// times in a row.
async fn wait_until_valid(
    cloud: &dyn GroupOperations,
    plan: &GroupPlan,
    cluster: Option<&dyn ClusterApi>,
    options: &RollOptions,
    terminated: &[String],
    events: &dyn EventSink,
) -> Result<GroupView> {
    let started = tokio::time::Instant::now();
    let mut successes = 0;
    loop {
        let view = describe_one(cloud, plan).await?;
        let problem = check(&view, plan, cluster, terminated).await?;
        match problem {
            None => {
                successes += 1;
                if successes >= options.validate_count.max(1) {
                    events.event(&Event::Validated {
                        group: plan.group.clone(),
                        current: view
                            .instances
                            .iter()
                            .filter(|instance| view.is_current(instance) && instance.in_service())
                            .count(),
                        total: view
                            .instances
                            .iter()
                            .filter(|instance| !instance.leaving())
                            .count(),
                    });
                    return Ok(view);
                }
            }
            Some(detail) => {
                successes = 0;
                if started.elapsed() > options.validation_timeout {
                    return Err(RolloutError::ValidationTimeout {
                        group: plan.group.clone(),
                        what: "the group becoming healthy".to_string(),
                        timeout: options.validation_timeout,
                        detail,
                    });
                }
            }
        }
        tokio::time::sleep(options.poll_interval).await;
    }
}

/// Before an external etcd member goes: asks every other member (their
/// health reports) and waits, up to the validation timeout, until enough of
/// them answer healthy that the cluster keeps its quorum without this one;
/// else refuses, naming the members that do not.
async fn wait_for_etcd_quorum(
    plan: &GroupPlan,
    instance: &str,
    all: &[GroupPlan],
    store: &dyn ProgressStore,
    options: &RollOptions,
) -> Result<()> {
    let deadline = std::time::Instant::now() + options.validation_timeout;
    loop {
        let Some(reports) = store.etcd_member_health().await? else {
            tracing::warn!(
                "no etcd member reports its health (members booted by an older skiff); replacing {} without asking the others",
                plan.group
            );
            return Ok(());
        };
        let Err(detail) = etcd_quorum_without(&plan.group, all, &reports) else {
            return Ok(());
        };
        if std::time::Instant::now() >= deadline {
            return Err(RolloutError::EtcdQuorum {
                member: plan.group.clone(),
                instance: instance.to_string(),
                detail,
            });
        }
        tokio::time::sleep(options.poll_interval).await;
    }
}

/// Whether the external etcd cluster keeps its quorum without `member`:
/// the members are those the reports and the rolled `Etcd` groups name, or
/// as many as the largest member list reported; a majority of them must be
/// other members whose fresh report says healthy. A member that never
/// reported runs a script from before the reports (its roll installs
/// them): it cannot be asked, and counts as the voting member its tag
/// already said it was, with a warning. The error says who does not answer
/// and what to do.
pub fn etcd_quorum_without(
    member: &str,
    all: &[GroupPlan],
    reports: &[MemberHealth],
) -> std::result::Result<(), String> {
    let mut names: BTreeSet<&str> = reports
        .iter()
        .map(|report| report.member.as_str())
        .collect();
    names.extend(
        all.iter()
            .filter(|plan| plan.role == InstanceGroupRole::Etcd)
            .map(|plan| plan.group.as_str()),
    );
    names.insert(member);
    let total = reports
        .iter()
        .map(|report| report.voting_members)
        .max()
        .unwrap_or(0)
        .max(names.len());
    let quorum = total / 2 + 1;
    let mut healthy = 0;
    let mut silent = Vec::new();
    for name in names.iter().filter(|name| **name != member) {
        match reports.iter().find(|report| report.member == *name) {
            None => {
                tracing::warn!(
                    "etcd member {name} has never reported its health (booted by an older skiff); counting it as healthy"
                );
                healthy += 1;
            }
            Some(report) if report.age > HEALTH_REPORT_MAX_AGE => silent.push(format!(
                "{name} (instance {}) last reported {} s ago",
                report.instance,
                report.age.as_secs()
            )),
            Some(report) if !report.healthy => silent.push(format!(
                "{name} (instance {}) reports itself unhealthy",
                report.instance
            )),
            Some(_) => healthy += 1,
        }
    }
    if healthy >= quorum {
        return Ok(());
    }
    Err(format!(
        "without it {healthy} of the {total} members would answer, short of the quorum of {quorum} ({}); bring {} back first (its /var/log/skiff-bootstrap.log; `etcdctl endpoint health` on the members), then run the roll again",
        silent.join("; "),
        if silent.len() == 1 { "it" } else { "them" }
    ))
}

/// What is not right yet, or `None`.
async fn check(
    view: &GroupView,
    plan: &GroupPlan,
    cluster: Option<&dyn ClusterApi>,
    terminated: &[String],
) -> Result<Option<String>> {
    let lingering: Vec<&str> = view
        .instances
        .iter()
        .filter(|instance| terminated.contains(&instance.id) && !instance.leaving())
        .map(|instance| instance.id.as_str())
        .collect();
    if !lingering.is_empty() {
        return Ok(Some(format!(
            "instances {} are not terminating yet",
            lingering.join(", ")
        )));
    }
    let in_service = view.in_service();
    let staying = view
        .instances
        .iter()
        .filter(|instance| !instance.leaving())
        .count();
    if in_service < usize::try_from(view.desired).unwrap_or(usize::MAX) || staying != in_service {
        return Ok(Some(format!(
            "{in_service} of {} instances in service",
            view.desired
        )));
    }
    if plan.role == InstanceGroupRole::Etcd {
        // An external etcd member is no Kubernetes node; it is up once its
        // instance reports a voting member (the bootstrap tags it after the
        // promotion), and only then may the next member go.
        if let Some(instance) = view
            .instances
            .iter()
            .find(|instance| instance.in_service() && !instance.etcd_member)
        {
            return Ok(Some(format!(
                "instance {} has not joined etcd as a voting member yet",
                instance.id
            )));
        }
        return Ok(None);
    }
    if let Some(cluster) = cluster {
        for instance in view
            .instances
            .iter()
            .filter(|instance| instance.in_service())
        {
            match cluster.node_of(instance).await? {
                None => {
                    return Ok(Some(format!(
                        "instance {} has not registered as a node yet",
                        instance.id
                    )))
                }
                Some(node) => {
                    if !cluster.node_ready(&node).await? {
                        return Ok(Some(format!(
                            "node {node} (instance {}) is not Ready",
                            instance.id
                        )));
                    }
                }
            }
        }
        if plan.role == InstanceGroupRole::ControlPlane {
            if let health @ ControlPlaneHealth::Unhealthy { .. } =
                cluster.control_plane_healthy().await?
            {
                return Ok(Some(format!("the control plane is not healthy: {health}")));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
