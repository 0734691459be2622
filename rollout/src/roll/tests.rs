//! The roller against an in-memory cloud and cluster: order, surge and
//! unavailability, resuming an interrupted run, stopping.
//!
//! [`FakeWorld`] is auto scaling as the roller relies on it: a launch goes
//! through `Pending` for one describe before it is `InService`, a
//! terminated instance shows as `Terminating` for one describe before it is
//! gone, lowering the desired capacity removes out-of-date instances first,
//! and an invalid size is refused the way AWS refuses it. It also plays the
//! Kubernetes side: every instance is a node, Ready once in service.
//! Every change is recorded as a [`Snapshot`], so an invariant is checked at
//! every moment, not only at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use skiff_providers::ProviderError;

use super::*;
use crate::{ClusterVersions, ControlPlaneHealth, InstanceView, Lifecycle};

const TEMPLATE: &str = "lt-0123";

// ---------------------------------------------------------------------------
// The fakes

/// One instance of a fake group.
#[derive(Debug, Clone)]
struct FakeInstance {
    id: String,
    version: u32,
    lifecycle: Lifecycle,
    /// Reports a voting etcd member: one look after it came into service,
    /// as an external etcd member tags its instance once promoted.
    etcd_member: bool,
}

/// One fake auto scaling group.
#[derive(Debug, Clone)]
struct FakeGroup {
    desired: u32,
    min: u32,
    max: u32,
    /// The launch template version new instances get.
    version: u32,
    instances: Vec<FakeInstance>,
}

impl FakeGroup {
    fn running(&self) -> usize {
        self.instances
            .iter()
            .filter(|instance| !instance.lifecycle.is_leaving())
            .count()
    }

    fn in_service(&self) -> usize {
        self.instances
            .iter()
            .filter(|instance| instance.lifecycle == Lifecycle::InService)
            .count()
    }
}

/// A call the roller made.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    SetCapacity {
        group: String,
        desired: u32,
        max: u32,
    },
    Terminate {
        instance: String,
        shrink: bool,
    },
    Drain {
        instance: String,
    },
}

/// A group after a change.
#[derive(Debug, Clone)]
struct Snapshot {
    group: String,
    desired: u32,
    max: u32,
    /// Instances not leaving (pending or in service).
    running: usize,
    in_service: usize,
}

#[derive(Debug, Default)]
struct World {
    groups: BTreeMap<String, FakeGroup>,
    /// Which group every instance ever launched belongs to.
    owner: BTreeMap<String, String>,
    launched: usize,
    calls: Vec<Call>,
    snapshots: Vec<Snapshot>,
    /// What the API server's `/version` reports (`gitVersion`).
    api_server: String,
    /// etcd instances not yet voting members when another was terminated.
    unjoined_at_terminate: Vec<String>,
}

impl World {
    fn launch(&mut self, group: &str) {
        self.launched += 1;
        let id = format!("i-{group}-new{}", self.launched);
        let Some(fake) = self.groups.get_mut(group) else {
            return;
        };
        fake.instances.push(FakeInstance {
            id: id.clone(),
            version: fake.version,
            lifecycle: Lifecycle::Pending,
            etcd_member: false,
        });
        self.owner.insert(id, group.to_string());
    }

    fn snapshot(&mut self, group: &str) {
        if let Some(fake) = self.groups.get(group) {
            self.snapshots.push(Snapshot {
                group: group.to_string(),
                desired: fake.desired,
                max: fake.max,
                running: fake.running(),
                in_service: fake.in_service(),
            });
        }
    }

    /// Time passes for a group: launches finish, terminations finish.
    fn tick(&mut self, group: &str) {
        if let Some(fake) = self.groups.get_mut(group) {
            fake.instances
                .retain(|instance| !instance.lifecycle.is_leaving());
            for instance in &mut fake.instances {
                if instance.lifecycle == Lifecycle::InService {
                    instance.etcd_member = true;
                }
                instance.lifecycle = Lifecycle::InService;
            }
        }
        self.snapshot(group);
    }
}

/// Auto scaling groups and their Kubernetes nodes, in memory.
#[derive(Debug, Default)]
struct FakeWorld {
    world: Mutex<World>,
}

impl FakeWorld {
    /// Adds a group of `size` instances in service: `outdated` of them from
    /// version 1, the rest from the current version 2.
    fn with_group(self, group: &str, size: u32, outdated: u32) -> Self {
        {
            let mut world = self.lock();
            let instances = (0..size)
                .map(|index| FakeInstance {
                    id: format!("i-{group}-{index}"),
                    version: if index < outdated { 1 } else { 2 },
                    lifecycle: Lifecycle::InService,
                    etcd_member: true,
                })
                .collect::<Vec<_>>();
            for instance in &instances {
                world.owner.insert(instance.id.clone(), group.to_string());
            }
            world.groups.insert(
                group.to_string(),
                FakeGroup {
                    desired: size,
                    min: size,
                    max: size,
                    version: 2,
                    instances,
                },
            );
            world.snapshot(group);
        }
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().expect("the fake world's lock")
    }

    fn group(&self, group: &str) -> FakeGroup {
        self.lock()
            .groups
            .get(group)
            .cloned()
            .expect("a fake group")
    }

    fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    fn snapshots(&self, group: &str) -> Vec<Snapshot> {
        self.lock()
            .snapshots
            .iter()
            .filter(|snapshot| snapshot.group == group)
            .cloned()
            .collect()
    }

    /// The instances terminated, in order.
    fn terminated(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::Terminate { instance, .. } => Some(instance),
                _ => None,
            })
            .collect()
    }

    fn owner(&self, instance: &str) -> String {
        self.lock()
            .owner
            .get(instance)
            .cloned()
            .expect("an instance the fake launched")
    }

    fn terminate_count(&self) -> usize {
        self.terminated().len()
    }
}

fn refused(operation: &str, resource: &str, message: String) -> RolloutError {
    RolloutError::Aws(ProviderError::other(operation, resource, message))
}

#[async_trait]
impl GroupOperations for FakeWorld {
    async fn describe_groups(&self, names: &[String]) -> Result<Vec<GroupView>> {
        let mut world = self.lock();
        let mut views = Vec::new();
        for name in names {
            let Some(group) = world.groups.get(name) else {
                continue;
            };
            views.push(GroupView {
                name: name.clone(),
                desired: group.desired,
                min: group.min,
                max: group.max,
                launch_template: Some(TEMPLATE.to_string()),
                version: Some(group.version.to_string()),
                instances: group
                    .instances
                    .iter()
                    .map(|instance| InstanceView {
                        id: instance.id.clone(),
                        launch_template: Some(TEMPLATE.to_string()),
                        version: Some(instance.version.to_string()),
                        lifecycle: instance.lifecycle.clone(),
                        healthy: true,
                        private_ip: None,
                        private_dns: None,
                        etcd_member: instance.etcd_member,
                    })
                    .collect(),
            });
            // What was just seen as pending or terminating is done by the next look.
            world.tick(name);
        }
        Ok(views)
    }

    async fn set_capacity(&self, group: &str, desired: u32, max: u32) -> Result<()> {
        let mut world = self.lock();
        world.calls.push(Call::SetCapacity {
            group: group.to_string(),
            desired,
            max,
        });
        let operation = "autoscaling:UpdateAutoScalingGroup";
        let Some(fake) = world.groups.get_mut(group) else {
            return Err(refused(operation, group, "no such group".to_string()));
        };
        if desired > max || desired < fake.min {
            return Err(refused(
                operation,
                group,
                format!("desired {desired} outside {}..={max}", fake.min),
            ));
        }
        fake.desired = desired;
        fake.max = max;
        let running = u32::try_from(fake.running()).expect("a small group");
        if running > desired {
            // Like the default termination policy: the oldest version goes first.
            let mut staying: Vec<&mut FakeInstance> = fake
                .instances
                .iter_mut()
                .filter(|instance| !instance.lifecycle.is_leaving())
                .collect();
            staying.sort_by_key(|instance| instance.version);
            for instance in staying.into_iter().take((running - desired) as usize) {
                instance.lifecycle = Lifecycle::Terminating;
            }
        }
        for _ in running..desired {
            world.launch(group);
        }
        world.snapshot(group);
        Ok(())
    }

    async fn terminate(&self, instance: &str, shrink: bool) -> Result<()> {
        let mut world = self.lock();
        // What else is up at this moment: every other instance of an `etcd`
        // group that is not a voting member yet.
        let unjoined: Vec<String> = world
            .groups
            .iter()
            .filter(|(name, _)| name.starts_with("etcd"))
            .flat_map(|(_, fake)| fake.instances.iter())
            .filter(|candidate| candidate.id != instance && !candidate.lifecycle.is_leaving())
            .filter(|candidate| !candidate.etcd_member)
            .map(|candidate| candidate.id.clone())
            .collect();
        world.unjoined_at_terminate.extend(unjoined);
        world.calls.push(Call::Terminate {
            instance: instance.to_string(),
            shrink,
        });
        let Some(group) = world.owner.get(instance).cloned() else {
            return Err(refused(
                "autoscaling:TerminateInstanceInAutoScalingGroup",
                instance,
                "no such instance".to_string(),
            ));
        };
        let Some(fake) = world.groups.get_mut(&group) else {
            return Ok(());
        };
        let Some(found) = fake
            .instances
            .iter_mut()
            .find(|candidate| candidate.id == instance && !candidate.lifecycle.is_leaving())
        else {
            // Already gone: not an error, as with AWS.
            return Ok(());
        };
        found.lifecycle = Lifecycle::Terminating;
        if shrink {
            if fake.desired == 0 {
                return Err(refused(
                    "autoscaling:TerminateInstanceInAutoScalingGroup",
                    instance,
                    "desired capacity would drop below zero".to_string(),
                ));
            }
            fake.desired -= 1;
        } else {
            world.launch(&group);
        }
        world.snapshot(&group);
        Ok(())
    }
}

#[async_trait]
impl ClusterApi for FakeWorld {
    async fn node_of(&self, instance: &InstanceView) -> Result<Option<String>> {
        Ok(Some(format!("node-{}", instance.id)))
    }

    async fn cordon(&self, _node: &str) -> Result<()> {
        Ok(())
    }

    async fn drain(&self, _node: &str, instance: &str, _timeout: Duration) -> Result<()> {
        self.lock().calls.push(Call::Drain {
            instance: instance.to_string(),
        });
        Ok(())
    }

    async fn node_ready(&self, node: &str) -> Result<bool> {
        let world = self.lock();
        Ok(world.groups.values().any(|group| {
            group.instances.iter().any(|instance| {
                format!("node-{}", instance.id) == node
                    && instance.lifecycle == Lifecycle::InService
            })
        }))
    }

    async fn control_plane_healthy(&self) -> Result<ControlPlaneHealth> {
        Ok(ControlPlaneHealth::Healthy)
    }

    async fn versions(&self) -> Result<ClusterVersions> {
        let world = self.lock();
        Ok(ClusterVersions {
            api_server: world.api_server.clone(),
            kubelets: Vec::new(),
        })
    }
}

/// Progress in memory; can fail a save to play a crash.
#[derive(Debug, Default)]
struct FakeStore {
    progress: Mutex<Progress>,
    saves: AtomicUsize,
    /// The save (counted from 1) that fails, if any.
    fail_at: Mutex<Option<usize>>,
    /// The external etcd members' health reports, if any.
    health: Mutex<Option<Vec<MemberHealth>>>,
}

impl FakeStore {
    fn failing_at(save: usize) -> Self {
        FakeStore {
            fail_at: Mutex::new(Some(save)),
            ..FakeStore::default()
        }
    }

    /// The process is back: saves succeed again.
    fn heal(&self) {
        *self.fail_at.lock().expect("the store's lock") = None;
    }

    fn progress(&self) -> Progress {
        self.progress.lock().expect("the store's lock").clone()
    }

    fn saves(&self) -> usize {
        self.saves.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ProgressStore for FakeStore {
    async fn load(&self) -> Result<Progress> {
        Ok(self.progress())
    }

    async fn save(&self, progress: &Progress) -> Result<()> {
        let save = self.saves.fetch_add(1, Ordering::SeqCst) + 1;
        if *self.fail_at.lock().expect("the store's lock") == Some(save) {
            return Err(RolloutError::Progress(format!(
                "save {save} fails (a crash)"
            )));
        }
        *self.progress.lock().expect("the store's lock") = progress.clone();
        Ok(())
    }

    async fn etcd_member_health(&self) -> Result<Option<Vec<MemberHealth>>> {
        Ok(self.health.lock().expect("the store's lock").clone())
    }
}

fn report(member: &str, healthy: bool, age_seconds: u64) -> MemberHealth {
    MemberHealth {
        member: member.to_string(),
        instance: format!("i-{member}"),
        healthy,
        voting_members: 3,
        age: Duration::from_secs(age_seconds),
    }
}

#[tokio::test]
async fn an_etcd_member_is_not_taken_down_while_the_others_could_not_keep_the_quorum() {
    let world = FakeWorld::default()
        .with_group("etcd-1", 1, 1)
        .with_group("etcd-2", 1, 1)
        .with_group("etcd-3", 1, 1);
    let plans: Vec<GroupPlan> = ["etcd-1", "etcd-2", "etcd-3"]
        .iter()
        .map(|name| {
            plan(
                name,
                InstanceGroupRole::Etcd,
                IntOrPercent::Int(0),
                IntOrPercent::Int(1),
            )
        })
        .collect();
    // etcd-3 says it is unhealthy: without etcd-1 only etcd-2 would answer.
    let store = FakeStore::default();
    *store.health.lock().expect("lock") = Some(vec![
        report("etcd-1", true, 10),
        report("etcd-2", true, 20),
        report("etcd-3", false, 30),
    ]);
    let short = RollOptions {
        validation_timeout: Duration::from_millis(200),
        ..options()
    };
    let cluster: Option<&dyn ClusterApi> = Some(&world);
    let result = roll_groups(
        &world,
        &plans,
        cluster,
        &short,
        &store,
        &FakeEvents::default(),
        &never,
    )
    .await;
    match result {
        Err(RolloutError::EtcdQuorum {
            member,
            instance,
            detail,
        }) => {
            assert_eq!(member, "etcd-1");
            assert!(instance.starts_with("i-etcd-1"), "{instance}");
            assert!(
                detail.contains(
                    "without it 1 of the 3 members would answer, short of the quorum of 2"
                ),
                "{detail}"
            );
            assert!(
                detail.contains("etcd-3 (instance i-etcd-3) reports itself unhealthy"),
                "{detail}"
            );
            let message = RolloutError::EtcdQuorum {
                member,
                instance,
                detail,
            }
            .to_string();
            assert!(
                message.starts_with("not taking etcd member etcd-1 (instance i-etcd-1"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(world.terminated().is_empty(), "{:?}", world.terminated());

    // A report that stopped coming counts as no answer too; once every
    // member reports healthy, the roll goes ahead.
    *store.health.lock().expect("lock") = Some(vec![
        report("etcd-1", true, 10),
        report("etcd-2", true, 600),
        report("etcd-3", true, 30),
    ]);
    let result = roll_groups(
        &world,
        &plans,
        cluster,
        &short,
        &store,
        &FakeEvents::default(),
        &never,
    )
    .await;
    match result {
        Err(RolloutError::EtcdQuorum { detail, .. }) => {
            assert!(
                detail.contains("etcd-2 (instance i-etcd-2) last reported 600 s ago"),
                "{detail}"
            );
        }
        other => panic!("{other:?}"),
    }
    *store.health.lock().expect("lock") = Some(vec![
        report("etcd-1", true, 10),
        report("etcd-2", true, 20),
        report("etcd-3", true, 30),
    ]);
    let replaced = roll_groups(
        &world,
        &plans,
        cluster,
        &options(),
        &store,
        &FakeEvents::default(),
        &never,
    )
    .await
    .expect("the roll");
    assert_eq!(replaced, 3);
}

#[test]
fn five_members_keep_the_quorum_with_one_silent_but_not_with_two_and_unreported_members_count_as_voters(
) {
    let plans: Vec<GroupPlan> = (1..=5)
        .map(|ordinal| {
            plan(
                &format!("etcd-{ordinal}"),
                InstanceGroupRole::Etcd,
                IntOrPercent::Int(0),
                IntOrPercent::Int(1),
            )
        })
        .collect();
    let mut reports: Vec<MemberHealth> = (1..=5)
        .map(|ordinal| MemberHealth {
            voting_members: 5,
            ..report(&format!("etcd-{ordinal}"), true, 5)
        })
        .collect();
    reports[4].healthy = false;
    assert_eq!(etcd_quorum_without("etcd-1", &plans, &reports), Ok(()));
    // A member that never reported (an older skiff booted it) cannot be
    // asked: it counts as the voter it was; a stale report does not.
    reports.remove(3);
    assert_eq!(etcd_quorum_without("etcd-1", &plans, &reports), Ok(()));
    reports[2].age = Duration::from_secs(400);
    let refused = etcd_quorum_without("etcd-1", &plans, &reports).expect_err("no quorum");
    assert!(
        refused.contains("etcd-3 (instance i-etcd-3) last reported 400 s ago"),
        "{refused}"
    );
    assert!(
        refused.contains("etcd-5 (instance i-etcd-5) reports itself unhealthy"),
        "{refused}"
    );
    assert!(refused.contains("2 of the 5 members"), "{refused}");
}

/// Events in memory.
#[derive(Debug, Default)]
struct FakeEvents {
    events: Mutex<Vec<Event>>,
}

impl FakeEvents {
    fn events(&self) -> Vec<Event> {
        self.events.lock().expect("the events' lock").clone()
    }
}

impl EventSink for FakeEvents {
    fn event(&self, event: &Event) {
        self.events
            .lock()
            .expect("the events' lock")
            .push(event.clone());
    }
}

// ---------------------------------------------------------------------------
// Helpers

fn plan(
    group: &str,
    role: InstanceGroupRole,
    max_surge: IntOrPercent,
    max_unavailable: IntOrPercent,
) -> GroupPlan {
    GroupPlan {
        group: group.to_string(),
        auto_scaling_group: group.to_string(),
        role,
        max_surge,
        max_unavailable,
    }
}

fn node_plan(group: &str, max_surge: IntOrPercent, max_unavailable: IntOrPercent) -> GroupPlan {
    plan(group, InstanceGroupRole::Node, max_surge, max_unavailable)
}

fn options() -> RollOptions {
    RollOptions {
        validation_timeout: Duration::from_secs(10),
        validate_count: 1,
        poll_interval: Duration::ZERO,
        ..RollOptions::default()
    }
}

fn never() -> bool {
    false
}

async fn roll(
    world: &FakeWorld,
    plans: &[GroupPlan],
    cloud_only: bool,
    store: &FakeStore,
    events: &FakeEvents,
    stop: &(dyn Fn() -> bool + Send + Sync),
) -> Result<usize> {
    let cluster: Option<&dyn ClusterApi> = if cloud_only { None } else { Some(world) };
    roll_groups(world, plans, cluster, &options(), store, events, stop).await
}

/// Every instance of the group is current and in service, at the group's
/// own sizes.
fn assert_done(world: &FakeWorld, group: &str, desired: u32, max: u32) {
    let fake = world.group(group);
    assert_eq!((fake.desired, fake.max), (desired, max), "{group}'s sizes");
    assert_eq!(fake.instances.len(), desired as usize, "{group}: {fake:?}");
    assert!(
        fake.instances
            .iter()
            .all(|instance| instance.version == fake.version
                && instance.lifecycle == Lifecycle::InService),
        "{group}: {fake:?}"
    );
}

/// No instance terminated twice, and exactly the expected ones terminated
/// among the group's original instances.
fn assert_terminated_once(world: &FakeWorld, expected: &BTreeSet<String>) {
    let terminated = world.terminated();
    let unique: BTreeSet<String> = terminated.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        terminated.len(),
        "terminated twice: {terminated:?}"
    );
    let original: BTreeSet<String> = unique
        .into_iter()
        .filter(|instance| !instance.contains("-new"))
        .collect();
    assert_eq!(&original, expected);
}

fn outdated_ids(group: &str, outdated: u32) -> BTreeSet<String> {
    (0..outdated)
        .map(|index| format!("i-{group}-{index}"))
        .collect()
}

/// Surge and unavailability held at every recorded moment.
fn assert_within_budget(
    world: &FakeWorld,
    group: &str,
    desired: u32,
    surge: u32,
    unavailable: u32,
) {
    for snapshot in world.snapshots(group) {
        assert!(
            snapshot.desired <= desired + surge && snapshot.running <= (desired + surge) as usize,
            "{group}: more than {surge} extra instances: {snapshot:?}"
        );
        assert!(
            snapshot.in_service + unavailable as usize >= desired as usize,
            "{group}: more than {unavailable} instances unavailable: {snapshot:?}"
        );
        assert!(snapshot.max >= snapshot.desired, "{snapshot:?}");
    }
}

// ---------------------------------------------------------------------------
// Order

#[test]
fn order_puts_bastions_then_the_control_plane_then_nodes_by_name() {
    let one = IntOrPercent::Int(1);
    let mut plans = vec![
        node_plan("nodes-b", one, one),
        plan("control-plane-b", InstanceGroupRole::ControlPlane, one, one),
        node_plan("nodes-a", one, one),
        plan("bastions", InstanceGroupRole::Bastion, one, one),
        plan("control-plane-a", InstanceGroupRole::ControlPlane, one, one),
    ];
    order(&mut plans);
    let names: Vec<&str> = plans.iter().map(|plan| plan.group.as_str()).collect();
    assert_eq!(
        names,
        [
            "bastions",
            "control-plane-a",
            "control-plane-b",
            "nodes-a",
            "nodes-b"
        ]
    );
}

#[tokio::test]
async fn groups_roll_in_order_and_the_control_plane_one_instance_at_a_time() {
    let world = FakeWorld::default()
        .with_group("bastions", 1, 1)
        .with_group("control-plane", 3, 3)
        .with_group("nodes-a", 3, 3)
        .with_group("nodes-b", 2, 2);
    // The control plane's own surge settings are ignored: etcd quorum.
    let two = IntOrPercent::Int(2);
    let mut plans = vec![
        node_plan("nodes-b", two, two),
        plan("control-plane", InstanceGroupRole::ControlPlane, two, two),
        node_plan("nodes-a", two, IntOrPercent::Int(0)),
        plan(
            "bastions",
            InstanceGroupRole::Bastion,
            IntOrPercent::Int(0),
            IntOrPercent::Int(1),
        ),
    ];
    order(&mut plans);
    let store = FakeStore::default();
    let events = FakeEvents::default();

    let replaced = roll(&world, &plans, false, &store, &events, &never)
        .await
        .expect("the rolling update");

    assert_eq!(replaced, 9);
    let groups_in_turn: Vec<String> = world
        .terminated()
        .iter()
        .map(|instance| world.owner(instance))
        .collect();
    let mut turns: Vec<&str> = groups_in_turn.iter().map(String::as_str).collect();
    turns.dedup();
    assert_eq!(
        turns,
        ["bastions", "control-plane", "nodes-a", "nodes-b"],
        "{groups_in_turn:?}"
    );
    // One control-plane instance at a time: never grown, never two missing.
    assert!(!world.calls().iter().any(|call| matches!(
        call,
        Call::SetCapacity { group, .. } if group == "control-plane"
    )));
    assert_within_budget(&world, "control-plane", 3, 0, 1);
    // Every node drained before its instance was terminated.
    let calls = world.calls();
    for (index, call) in calls.iter().enumerate() {
        if let Call::Terminate { instance, .. } = call {
            assert!(
                calls[..index].contains(&Call::Drain {
                    instance: instance.clone()
                }),
                "{instance} terminated undrained: {calls:?}"
            );
        }
    }
    for (group, size) in [
        ("bastions", 1),
        ("control-plane", 3),
        ("nodes-a", 3),
        ("nodes-b", 2),
    ] {
        assert_done(&world, group, size, size);
    }
    assert_eq!(store.progress(), Progress::default());
    let done: Vec<Event> = events
        .events()
        .into_iter()
        .filter(|event| matches!(event, Event::GroupDone { .. }))
        .collect();
    assert_eq!(done.len(), 4, "{done:?}");
}

#[tokio::test]
async fn external_etcd_members_are_replaced_one_at_a_time_each_after_the_last_joined() {
    let world = FakeWorld::default()
        .with_group("etcd-1", 1, 1)
        .with_group("etcd-2", 1, 1)
        .with_group("etcd-3", 1, 1)
        .with_group("control-plane", 1, 1);
    let two = IntOrPercent::Int(2);
    let mut plans = vec![
        plan("control-plane", InstanceGroupRole::ControlPlane, two, two),
        plan("etcd-3", InstanceGroupRole::Etcd, two, two),
        plan("etcd-1", InstanceGroupRole::Etcd, two, two),
        plan("etcd-2", InstanceGroupRole::Etcd, two, two),
    ];
    order(&mut plans);
    let names: Vec<&str> = plans.iter().map(|plan| plan.group.as_str()).collect();
    assert_eq!(names, ["etcd-1", "etcd-2", "etcd-3", "control-plane"]);
    let store = FakeStore::default();
    let events = FakeEvents::default();

    let replaced = roll(&world, &plans, false, &store, &events, &never)
        .await
        .expect("the rolling update");

    assert_eq!(replaced, 4);
    // Never grown (the replacement takes the old instance's fixed address),
    // and never a member terminated while a replacement had not joined.
    assert!(!world.calls().iter().any(|call| matches!(
        call,
        Call::SetCapacity { group, .. } if group.starts_with("etcd")
    )));
    assert_eq!(world.lock().unjoined_at_terminate, Vec::<String>::new());
    for group in ["etcd-1", "etcd-2", "etcd-3"] {
        assert_within_budget(&world, group, 1, 0, 1);
        assert_done(&world, group, 1, 1);
    }
    // No node to drain: an etcd member is no Kubernetes node.
    assert!(!world.calls().iter().any(|call| matches!(
        call,
        Call::Drain { instance } if instance.starts_with("i-etcd")
    )));
}

#[tokio::test]
async fn an_etcd_member_that_never_joins_stops_the_roll_before_the_next_member() {
    let world = FakeWorld::default()
        .with_group("etcd-1", 1, 1)
        .with_group("etcd-2", 1, 1);
    let plans = vec![
        plan(
            "etcd-1",
            InstanceGroupRole::Etcd,
            IntOrPercent::Int(0),
            IntOrPercent::Int(1),
        ),
        plan(
            "etcd-2",
            InstanceGroupRole::Etcd,
            IntOrPercent::Int(0),
            IntOrPercent::Int(1),
        ),
    ];
    // The replacement stays a learner (or its bootstrap hangs): describes
    // never show it as a member.
    let options = RollOptions {
        validation_timeout: Duration::from_millis(200),
        ..options()
    };
    let cluster: Option<&dyn ClusterApi> = Some(&world);
    let stuck = FakeStuck { inner: &world };
    let result = roll_groups(
        &stuck,
        &plans,
        cluster,
        &options,
        &FakeStore::default(),
        &FakeEvents::default(),
        &never,
    )
    .await;
    match result {
        Err(RolloutError::ValidationTimeout { group, detail, .. }) => {
            assert_eq!(group, "etcd-1");
            assert!(
                detail.contains("has not joined etcd as a voting member yet"),
                "{detail}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !world
            .terminated()
            .iter()
            .any(|instance| instance.starts_with("i-etcd-2")),
        "{:?}",
        world.terminated()
    );
}

/// The fake cloud, except that no instance ever reports an etcd member.
struct FakeStuck<'a> {
    inner: &'a FakeWorld,
}

#[async_trait]
impl GroupOperations for FakeStuck<'_> {
    async fn describe_groups(&self, names: &[String]) -> Result<Vec<GroupView>> {
        let mut views = self.inner.describe_groups(names).await?;
        for view in &mut views {
            for instance in &mut view.instances {
                if instance.id.contains("-new") {
                    instance.etcd_member = false;
                }
            }
        }
        Ok(views)
    }

    async fn set_capacity(&self, group: &str, desired: u32, max: u32) -> Result<()> {
        self.inner.set_capacity(group, desired, max).await
    }

    async fn terminate(&self, instance: &str, shrink: bool) -> Result<()> {
        self.inner.terminate(instance, shrink).await
    }
}

// ---------------------------------------------------------------------------
// Surge

#[tokio::test]
async fn surge_and_unavailability_stay_within_the_budget() {
    use IntOrPercent::{Int, Percent};
    // (size, out of date, maxSurge, maxUnavailable, surge and unavailability as resolved)
    let cases = [
        (5, 5, Int(2), Int(0), 2, 0),
        (4, 4, Int(1), Int(1), 1, 1),
        (6, 4, Percent(50), Int(0), 3, 0),
        (3, 3, Int(0), Int(1), 0, 1),
        (10, 7, Percent(25), Percent(10), 3, 1),
        (2, 1, Int(5), Int(0), 5, 0),
        (4, 4, Int(0), Int(0), 0, 1),
    ];
    for (size, outdated, max_surge, max_unavailable, surge, unavailable) in cases {
        let case = format!("{size} instances, {outdated} out of date, surge {max_surge:?}, unavailable {max_unavailable:?}");
        let world = FakeWorld::default().with_group("nodes", size, outdated);
        let store = FakeStore::default();
        let events = FakeEvents::default();
        let plans = [node_plan("nodes", max_surge, max_unavailable)];

        let replaced = roll(&world, &plans, true, &store, &events, &never)
            .await
            .unwrap_or_else(|error| panic!("{case}: {error}"));

        assert_eq!(replaced, outdated as usize, "{case}");
        assert_terminated_once(&world, &outdated_ids("nodes", outdated));
        assert_within_budget(&world, "nodes", size, surge, unavailable);
        assert_done(&world, "nodes", size, size);
        assert_eq!(store.progress(), Progress::default(), "{case}");
        if surge > 0 {
            assert!(
                world.calls().iter().any(
                    |call| matches!(call, Call::SetCapacity { desired, .. } if *desired > size)
                ),
                "{case}: the group grows first"
            );
        }
    }
}

#[tokio::test]
async fn a_group_that_is_current_is_left_alone() {
    let world = FakeWorld::default().with_group("nodes", 3, 0);
    let store = FakeStore::default();
    let events = FakeEvents::default();
    let plans = [node_plan(
        "nodes",
        IntOrPercent::Int(1),
        IntOrPercent::Int(0),
    )];

    let replaced = roll(&world, &plans, false, &store, &events, &never)
        .await
        .expect("the rolling update");

    assert_eq!(replaced, 0);
    assert_eq!(world.calls(), []);
    assert_done(&world, "nodes", 3, 3);
}

#[tokio::test]
async fn a_missing_group_is_named() {
    let world = FakeWorld::default().with_group("nodes", 1, 1);
    let one = IntOrPercent::Int(1);
    let plans = [plan(
        "control-plane",
        InstanceGroupRole::ControlPlane,
        one,
        one,
    )];

    let views = status(&world, &[plans[0].clone(), node_plan("nodes", one, one)])
        .await
        .expect("status");
    let names: Vec<&str> = views.iter().map(|view| view.name.as_str()).collect();
    assert_eq!(names, ["nodes"]);
    assert_eq!(views[0].outdated().len(), 1);

    let error = roll(
        &world,
        &plans,
        true,
        &FakeStore::default(),
        &FakeEvents::default(),
        &never,
    )
    .await
    .expect_err("no such group");
    assert!(
        matches!(&error, RolloutError::GroupNotFound { auto_scaling_group, .. } if auto_scaling_group == "control-plane"),
        "{error:?}"
    );
}

// ---------------------------------------------------------------------------
// Interrupted and resumed

fn resumable_world() -> FakeWorld {
    FakeWorld::default()
        .with_group("control-plane", 2, 2)
        .with_group("nodes", 5, 4)
}

fn resumable_plans() -> Vec<GroupPlan> {
    vec![
        plan(
            "control-plane",
            InstanceGroupRole::ControlPlane,
            IntOrPercent::Int(1),
            IntOrPercent::Int(1),
        ),
        node_plan("nodes", IntOrPercent::Int(2), IntOrPercent::Int(0)),
    ]
}

#[tokio::test]
async fn a_roll_interrupted_at_any_save_resumes_without_replacing_twice() {
    // How many saves an uninterrupted run makes.
    let saves = {
        let world = resumable_world();
        let store = FakeStore::default();
        roll(
            &world,
            &resumable_plans(),
            false,
            &store,
            &FakeEvents::default(),
            &never,
        )
        .await
        .expect("an uninterrupted rolling update");
        store.saves()
    };
    assert!(saves > 6, "{saves} saves");

    let mut crashed_while_grown = 0;
    for crash in 1..=saves {
        let world = resumable_world();
        let store = FakeStore::failing_at(crash);
        let events = FakeEvents::default();

        let error = roll(&world, &resumable_plans(), false, &store, &events, &never)
            .await
            .expect_err("the crash");
        assert!(
            matches!(error, RolloutError::Progress(_)),
            "save {crash}: {error:?}"
        );
        // Recorded as grown while it still is: the next run must shrink it back.
        if !store.progress().grown.is_empty() && world.group("nodes").desired > 5 {
            crashed_while_grown += 1;
        }

        store.heal();
        roll(&world, &resumable_plans(), false, &store, &events, &never)
            .await
            .unwrap_or_else(|error| panic!("resuming after save {crash}: {error}"));

        assert_terminated_once(
            &world,
            &outdated_ids("control-plane", 2)
                .into_iter()
                .chain(outdated_ids("nodes", 4))
                .collect(),
        );
        assert_within_budget(&world, "nodes", 5, 2, 0);
        assert_within_budget(&world, "control-plane", 2, 0, 1);
        assert_done(&world, "control-plane", 2, 2);
        assert_done(&world, "nodes", 5, 5);
        assert_eq!(store.progress(), Progress::default(), "save {crash}");
    }
    assert!(
        crashed_while_grown > 0,
        "some crash happens while the node group is grown"
    );
}

#[tokio::test]
async fn stopping_interrupts_after_the_current_step_and_the_next_run_finishes() {
    let world = FakeWorld::default().with_group("nodes", 4, 4);
    let store = FakeStore::default();
    let events = FakeEvents::default();
    let plans = [node_plan(
        "nodes",
        IntOrPercent::Int(1),
        IntOrPercent::Int(0),
    )];
    let stop_after_first = || world.terminate_count() >= 1;

    let error = roll(&world, &plans, false, &store, &events, &stop_after_first)
        .await
        .expect_err("stopped");

    assert!(matches!(error, RolloutError::Interrupted(_)), "{error:?}");
    assert_eq!(world.terminated(), ["i-nodes-0"]);
    let progress = store.progress();
    assert_eq!(
        progress.grown.get("nodes"),
        Some(&OriginalSize { desired: 4, max: 4 })
    );
    assert_eq!(
        progress.replaced.get("nodes"),
        Some(&BTreeSet::from(["i-nodes-0".to_string()]))
    );
    assert_eq!(world.group("nodes").desired, 5, "still grown");

    let replaced = roll(&world, &plans, false, &store, &events, &never)
        .await
        .expect("the second run");

    assert_eq!(replaced, 3);
    assert_terminated_once(&world, &outdated_ids("nodes", 4));
    assert_within_budget(&world, "nodes", 4, 1, 0);
    assert_done(&world, "nodes", 4, 4);
    // Grown once, by the first run only; restored by the second.
    let grows = world
        .calls()
        .into_iter()
        .filter(|call| matches!(call, Call::SetCapacity { desired: 5, .. }))
        .count();
    assert_eq!(grows, 1);
    assert_eq!(store.progress(), Progress::default());
}

#[tokio::test]
async fn stopping_before_a_group_touches_nothing() {
    let world = FakeWorld::default().with_group("nodes", 2, 2);
    let store = FakeStore::default();
    let plans = [node_plan(
        "nodes",
        IntOrPercent::Int(1),
        IntOrPercent::Int(0),
    )];

    let error = roll(
        &world,
        &plans,
        true,
        &store,
        &FakeEvents::default(),
        &|| true,
    )
    .await
    .expect_err("stopped");

    assert!(matches!(error, RolloutError::Interrupted(_)), "{error:?}");
    assert_eq!(world.calls(), []);
    assert_eq!(store.saves(), 0);
}

#[tokio::test]
async fn a_resumed_forced_roll_replaces_each_original_instance_once() {
    let world = FakeWorld::default()
        .with_group("nodes-a", 3, 0)
        .with_group("nodes-b", 3, 1);
    let store = FakeStore::default();
    let events = FakeEvents::default();
    let plans = [
        node_plan("nodes-a", IntOrPercent::Int(1), IntOrPercent::Int(0)),
        node_plan("nodes-b", IntOrPercent::Int(1), IntOrPercent::Int(0)),
    ];
    let forced = RollOptions {
        force: true,
        ..options()
    };
    let stop_in_second_group = || {
        world
            .terminated()
            .iter()
            .any(|instance| instance.starts_with("i-nodes-b-"))
    };

    let error = roll_groups(
        &world,
        &plans,
        Some(&world),
        &forced,
        &store,
        &events,
        &stop_in_second_group,
    )
    .await
    .expect_err("stopped in nodes-b");
    assert!(matches!(error, RolloutError::Interrupted(_)), "{error:?}");
    assert_eq!(world.terminate_count(), 4);

    let replaced = roll_groups(
        &world,
        &plans,
        Some(&world),
        &forced,
        &store,
        &events,
        &never,
    )
    .await
    .expect("the resumed forced run");

    assert_eq!(replaced, 2, "only nodes-b's two original instances left");
    assert_terminated_once(
        &world,
        &outdated_ids("nodes-a", 3)
            .into_iter()
            .chain(outdated_ids("nodes-b", 3))
            .collect(),
    );
    assert!(
        world
            .terminated()
            .iter()
            .all(|instance| !instance.contains("-new")),
        "a replacement was replaced: {:?}",
        world.terminated()
    );
    assert_done(&world, "nodes-a", 3, 3);
    assert_done(&world, "nodes-b", 3, 3);
    assert_eq!(store.progress(), Progress::default());
}

// --- version skew ----------------------------------------------------------------

fn upgrading_to(version: &str) -> RollOptions {
    RollOptions {
        kubernetes_version: Some(version.parse().expect("a version")),
        minor_upgrades: ["nodes".to_string()].into_iter().collect(),
        ..options()
    }
}

#[tokio::test]
async fn nodes_are_not_replaced_while_the_api_server_reports_an_older_minor() {
    let world = FakeWorld::default()
        .with_group("control-plane", 1, 0)
        .with_group("nodes", 2, 2);
    world.lock().api_server = "v1.34.2".to_string();
    let plans = [
        plan(
            "control-plane",
            InstanceGroupRole::ControlPlane,
            IntOrPercent::Int(0),
            IntOrPercent::Int(1),
        ),
        node_plan("nodes", IntOrPercent::Int(1), IntOrPercent::Int(0)),
    ];
    let options = upgrading_to("1.35.1");
    let refused = roll_groups(
        &world,
        &plans,
        Some(&world),
        &options,
        &FakeStore::default(),
        &FakeEvents::default(),
        &never,
    )
    .await
    .expect_err("a kubelet newer than the API server");
    let message = refused.to_string();
    assert!(matches!(refused, RolloutError::VersionSkew(_)), "{message}");
    for expected in [
        "instance group nodes",
        "kubelet 1.35.1",
        "reports v1.34.2",
        "--instance-group-roles ControlPlane",
    ] {
        assert!(
            message.contains(expected),
            "`{expected}` missing: {message}"
        );
    }
    assert!(
        world.terminated().is_empty(),
        "nothing replaced: {:?}",
        world.terminated()
    );

    // The same patch level's API server, or a newer one: replaced.
    world.lock().api_server = "v1.35.0".to_string();
    roll_groups(
        &world,
        &plans,
        Some(&world),
        &options,
        &FakeStore::default(),
        &FakeEvents::default(),
        &never,
    )
    .await
    .expect("the API server runs the minor");
    assert_done(&world, "nodes", 2, 2);
}

#[tokio::test]
async fn without_an_api_a_minor_upgrade_of_nodes_waits_for_the_control_plane_groups() {
    let world = FakeWorld::default()
        .with_group("control-plane", 1, 1)
        .with_group("nodes", 2, 2);
    let control_plane = plan(
        "control-plane",
        InstanceGroupRole::ControlPlane,
        IntOrPercent::Int(0),
        IntOrPercent::Int(1),
    );
    let nodes = node_plan("nodes", IntOrPercent::Int(1), IntOrPercent::Int(0));
    let options = RollOptions {
        control_planes: vec![control_plane.clone()],
        ..upgrading_to("1.35.1")
    };

    // Only the node group asked for while the control plane is behind: refused.
    let refused = roll_groups(
        &world,
        std::slice::from_ref(&nodes),
        None,
        &options,
        &FakeStore::default(),
        &FakeEvents::default(),
        &never,
    )
    .await
    .expect_err("the control plane is behind");
    let message = refused.to_string();
    assert!(message.contains("with --cloudonly"), "{message}");
    assert!(
        message.contains("control-plane groups control-plane"),
        "{message}"
    );
    assert!(world.terminated().is_empty());

    // A patch-level roll of the nodes is not held back.
    let patch = RollOptions {
        minor_upgrades: BTreeSet::new(),
        ..upgrading_to("1.35.1")
    };
    let world_patch = FakeWorld::default()
        .with_group("control-plane", 1, 1)
        .with_group("nodes", 2, 2);
    roll_groups(
        &world_patch,
        std::slice::from_ref(&nodes),
        None,
        &patch,
        &FakeStore::default(),
        &FakeEvents::default(),
        &never,
    )
    .await
    .expect("not a minor upgrade");

    // Both in one run: the control plane rolls first, then the nodes.
    roll_groups(
        &world,
        &[control_plane, nodes],
        None,
        &options,
        &FakeStore::default(),
        &FakeEvents::default(),
        &never,
    )
    .await
    .expect("control plane first, then nodes");
    assert_done(&world, "control-plane", 1, 1);
    assert_done(&world, "nodes", 2, 2);
}
