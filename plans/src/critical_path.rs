//! The critical path of a plan: the longest chain of AWS calls that must
//! happen one after another, whatever the parallelism.
//!
//! Why: it is the physical limit of an apply. Every call costs a round
//! trip; calls on independent branches of the plan can overlap, calls on
//! one chain cannot (a subnet needs its VPC's ID, a route needs its NAT
//! gateway's). So `calls on the critical path × latency` is a lower bound
//! of an apply's wall time, and the ratio of the measured time to it says
//! how much the executor, the refresh and the state writes add. The
//! benchmark (`tests/src/bin/bench.rs`) prints that ratio.
//!
//! Two parts, both pure:
//! - [`sequential_calls`]: how many calls one change makes one after the
//!   other. **This is the one place these counts live**; they mirror the
//!   operations in `providers/src/operations/*.rs` (named in each arm), and
//!   a change to an operation's calls must change its arm here.
//! - [`critical_path`]: the longest chain through the plan's dependency
//!   graph, weighted by those counts. Creates, updates and replaces follow
//!   `depends_on`; deletes carry no per-resource dependencies in a plan and
//!   run by kind, dependents first ([`crate::diff::kind_rank`]), so each
//!   kind present adds its slowest delete.
//!
//! A waiter (a NAT gateway's creation and deletion, an auto scaling
//! group's deletion) counts as its one unavoidable poll: against the
//! default local endpoint a resource is ready at once. Against AWS (or the
//! endpoint's realistic model) the waits themselves, minutes for a NAT
//! gateway, add to the bound: [`timed_critical_path`] adds them, with the
//! time new IDs take to become visible and what a delete leaves holding its
//! dependencies.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::diff::kind_rank;
use crate::plan::{Action, Plan, ResourceChange};
use crate::resource::{Attributes, ResourceKey, ResourceKind, Tags};

/// The longest chain of sequential calls of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CriticalPath {
    /// Calls on the chain.
    pub calls: u32,
    /// The changes on the chain, first to last.
    pub chain: Vec<ResourceKey>,
}

impl CriticalPath {
    /// The lower bound of an apply's wall time when each call takes
    /// `latency`.
    pub fn bound(&self, latency: Duration) -> Duration {
        latency * self.calls
    }
}

/// The critical path of `plan`: the heaviest chain of changes through
/// `depends_on` (creates, updates, replaces), followed by the deletes, one
/// kind after another, each kind weighing its slowest delete.
pub fn critical_path(plan: &Plan) -> CriticalPath {
    let by_key: BTreeMap<&ResourceKey, &ResourceChange> = plan
        .changes
        .iter()
        .filter(|change| change.action != Action::Delete)
        .map(|change| (&change.key, change))
        .collect();
    // Heaviest chain ending at each change, memoized; the plan has no
    // cycle (the planner checks), and a dependency outside the plan is
    // already there and costs nothing.
    let mut heaviest: BTreeMap<&ResourceKey, (u32, Option<&ResourceKey>)> = BTreeMap::new();
    for key in by_key.keys() {
        chain_to(key, &by_key, &mut heaviest);
    }
    let mut path = CriticalPath::default();
    if let Some((last, (calls, _))) = heaviest
        .iter()
        .max_by_key(|(key, (calls, _))| (*calls, std::cmp::Reverse(**key)))
    {
        path.calls = *calls;
        let mut at = Some(*last);
        while let Some(key) = at {
            path.chain.push(key.clone());
            at = heaviest.get(key).and_then(|(_, previous)| *previous);
        }
        path.chain.reverse();
    }

    let mut slowest_delete: BTreeMap<std::cmp::Reverse<usize>, (u32, &ResourceKey)> =
        BTreeMap::new();
    for change in plan
        .changes
        .iter()
        .filter(|change| change.action == Action::Delete)
    {
        let calls = sequential_calls(change);
        let slot = slowest_delete
            .entry(std::cmp::Reverse(kind_rank(change.kind)))
            .or_insert((calls, &change.key));
        if calls > slot.0 {
            *slot = (calls, &change.key);
        }
    }
    for (calls, key) in slowest_delete.into_values() {
        path.calls += calls;
        path.chain.push(key.clone());
    }
    path
}

/// Whether `load_balancer::create_load_balancer` waits for the new load
/// balancer to be `active` (see its arm in [`sequential_calls`]).
pub const LOAD_BALANCER_CREATE_WAITS_FOR_ACTIVE: bool = false;

/// What AWS makes an apply wait for besides its calls: how long a new
/// resource takes to become ready, and how long a deleted one keeps
/// holding what it used. All zero against the local endpoint by default;
/// the benchmark sets them to the endpoint's realistic model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Waits {
    /// A new NAT gateway is `pending` this long; its create waits for
    /// `available` (a route to a pending gateway is refused:
    /// `InvalidNatGatewayID.NotFound`, kops#944).
    pub nat_gateway_ready: Duration,
    /// A new load balancer is `provisioning` this long (counted when its
    /// create waits for `active`: [`LOAD_BALANCER_CREATE_WAITS_FOR_ACTIVE`]).
    pub load_balancer_ready: Duration,
    /// A deleted NAT gateway stays `deleting` this long, holding its
    /// elastic IP, its subnet and the VPC's public mapping.
    pub nat_gateway_deleting: Duration,
    /// A deleted load balancer's network interfaces stay this long in its
    /// subnets and security groups.
    pub load_balancer_interfaces: Duration,
    /// A deleted auto scaling group's instances take this long to
    /// terminate, holding their interfaces.
    pub instances_terminating: Duration,
    /// A resource just created stays unknown this long to calls that name
    /// it (eventual consistency): what depends on it cannot start sooner.
    pub new_ids_visible: Duration,
    /// A new instance profile cannot be launched with for this long (IAM
    /// propagation): an auto scaling group whose template names one waits.
    pub iam_propagation: Duration,
}

impl Waits {
    /// What a create of this kind waits for after its calls.
    fn ready(&self, change: &ResourceChange) -> Duration {
        match (change.action, change.kind) {
            (Action::Create | Action::Replace, ResourceKind::NatGateway) => self.nat_gateway_ready,
            (Action::Create | Action::Replace, ResourceKind::LoadBalancer)
                if LOAD_BALANCER_CREATE_WAITS_FOR_ACTIVE =>
            {
                self.load_balancer_ready
            }
            _ => Duration::ZERO,
        }
    }

    /// How long a deleted resource of `kind` still holds what it used.
    fn held(&self, kind: ResourceKind) -> Duration {
        match kind {
            ResourceKind::NatGateway => self.nat_gateway_deleting,
            ResourceKind::LoadBalancer => self.load_balancer_interfaces,
            ResourceKind::AutoScalingGroup => self.instances_terminating,
            _ => Duration::ZERO,
        }
    }
}

/// The critical path in time: the least wall time of an apply whose calls
/// each take `latency` and which waits what [`Waits`] says AWS makes it
/// wait. Creates, updates and replaces follow `depends_on`, each ending
/// its calls (and its readiness wait) after the end of what it depends on;
/// then the deletes, each starting once every delete that holds it
/// ([`crate::teardown::delete_dependencies`]) has ended and released what
/// it held.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TimedPath {
    /// The least wall time.
    pub duration: Duration,
    /// The changes on the longest chain, first to last.
    pub chain: Vec<ResourceKey>,
}

/// The [`TimedPath`] of `plan` (see there).
pub fn timed_critical_path(plan: &Plan, latency: Duration, waits: &Waits) -> TimedPath {
    let calls_time = |change: &ResourceChange| latency * sequential_calls(change);
    // Phase one: earliest end of each create, update and replace.
    let building: BTreeMap<&ResourceKey, &ResourceChange> = plan
        .changes
        .iter()
        .filter(|change| change.action != Action::Delete)
        .map(|change| (&change.key, change))
        .collect();
    let mut ends: BTreeMap<ResourceKey, (Duration, Option<ResourceKey>)> = BTreeMap::new();
    // The plan lists dependencies first; a pass per change in that order
    // would do, but the memoized walk does not rely on it.
    fn end_of(
        key: &ResourceKey,
        building: &BTreeMap<&ResourceKey, &ResourceChange>,
        ends: &mut BTreeMap<ResourceKey, (Duration, Option<ResourceKey>)>,
        waits: &Waits,
        weight: &dyn Fn(&ResourceChange) -> Duration,
    ) -> Duration {
        if let Some((end, _)) = ends.get(key) {
            return *end;
        }
        let Some(change) = building.get(key) else {
            return Duration::ZERO;
        };
        ends.insert(key.clone(), (Duration::ZERO, None));
        let mut start = (Duration::ZERO, None);
        for dependency in &change.depends_on {
            if let Some(before) = building.get(dependency) {
                let end = end_of(dependency, building, ends, waits, weight)
                    + visible_after(before, change, building, waits);
                if end > start.0 {
                    start = (end, Some(dependency.clone()));
                }
            }
        }
        let end = start.0 + weight(change);
        ends.insert(key.clone(), (end, start.1));
        end
    }
    /// How long after `before` ends `change`, which depends on it, can
    /// start: a new ID must be visible first, and a new instance profile
    /// (named by the template an auto scaling group launches from) must
    /// have propagated.
    fn visible_after(
        before: &ResourceChange,
        change: &ResourceChange,
        building: &BTreeMap<&ResourceKey, &ResourceChange>,
        waits: &Waits,
    ) -> Duration {
        let created =
            |change: &ResourceChange| matches!(change.action, Action::Create | Action::Replace);
        let mut wait = if created(before) {
            waits.new_ids_visible
        } else {
            Duration::ZERO
        };
        if change.kind == ResourceKind::AutoScalingGroup
            && before.kind == ResourceKind::LaunchTemplate
            && before.depends_on.iter().any(|key| {
                building.get(key).is_some_and(|profile| {
                    profile.kind == ResourceKind::InstanceProfile && created(profile)
                })
            })
        {
            // The template was made right after the profile; what remains
            // of the propagation is at most all of it.
            wait = wait.max(waits.iam_propagation);
        }
        wait
    }
    let weight = |change: &ResourceChange| calls_time(change) + waits.ready(change);
    for key in building.keys() {
        end_of(key, &building, &mut ends, waits, &weight);
    }
    let built = ends.values().map(|(end, _)| *end).max().unwrap_or_default();
    let last_built = ends
        .iter()
        .max_by_key(|(key, (end, _))| (*end, std::cmp::Reverse((*key).clone())))
        .map(|(key, _)| key.clone());

    // Phase two: the deletes, after the builds.
    let deleting: BTreeMap<&ResourceKey, &ResourceChange> = plan
        .changes
        .iter()
        .filter(|change| change.action == Action::Delete)
        .map(|change| (&change.key, change))
        .collect();
    let holders = crate::teardown::delete_dependencies(plan);
    // (end of its calls, when it released what it held, the holder it waited for)
    let mut released: BTreeMap<ResourceKey, (Duration, Duration, Option<ResourceKey>)> =
        BTreeMap::new();
    fn release_of(
        key: &ResourceKey,
        deleting: &BTreeMap<&ResourceKey, &ResourceChange>,
        holders: &BTreeMap<ResourceKey, std::collections::BTreeSet<ResourceKey>>,
        released: &mut BTreeMap<ResourceKey, (Duration, Duration, Option<ResourceKey>)>,
        from: Duration,
        calls_time: &dyn Fn(&ResourceChange) -> Duration,
        held: &dyn Fn(ResourceKind) -> Duration,
    ) -> Duration {
        if let Some((_, release, _)) = released.get(key) {
            return *release;
        }
        let Some(change) = deleting.get(key) else {
            return from;
        };
        released.insert(key.clone(), (from, from, None));
        let mut start = (from, None);
        for holder in holders.get(key).into_iter().flatten() {
            let release = release_of(holder, deleting, holders, released, from, calls_time, held);
            if release > start.0 {
                start = (release, Some(holder.clone()));
            }
        }
        let end = start.0 + calls_time(change);
        let release = end + held(change.kind);
        released.insert(key.clone(), (end, release, start.1));
        release
    }
    let held = |kind: ResourceKind| waits.held(kind);
    for key in deleting.keys() {
        release_of(
            key,
            &deleting,
            &holders,
            &mut released,
            built,
            &calls_time,
            &held,
        );
    }
    let last_deleted = released
        .iter()
        .max_by_key(|(key, (end, _, _))| (*end, std::cmp::Reverse((*key).clone())))
        .map(|(key, (end, _, _))| (key.clone(), *end));

    let mut path = TimedPath {
        duration: built,
        chain: Vec::new(),
    };
    let mut at = last_built;
    while let Some(key) = at {
        at = ends.get(&key).and_then(|(_, previous)| previous.clone());
        path.chain.push(key);
    }
    path.chain.reverse();
    if let Some((last, end)) = last_deleted {
        path.duration = path.duration.max(end);
        let mut chain = Vec::new();
        let mut at = Some(last);
        while let Some(key) = at {
            at = released
                .get(&key)
                .and_then(|(_, _, previous)| previous.clone());
            chain.push(key);
        }
        chain.reverse();
        path.chain.extend(chain);
    }
    path
}

/// For every create, update and replace of `plan`: the heaviest chain of
/// calls from its start to the end of the graph (its own calls, then the
/// heaviest chain among what depends on it). The executor starts the
/// ready change with the most left first: what lies on the critical path
/// never waits behind a hundred launch templates that nothing waits for.
pub fn remaining_calls(plan: &Plan) -> BTreeMap<ResourceKey, u32> {
    let changes: Vec<&ResourceChange> = plan
        .changes
        .iter()
        .filter(|change| change.action != Action::Delete)
        .collect();
    let mut dependents: BTreeMap<&ResourceKey, Vec<&ResourceChange>> = BTreeMap::new();
    for change in &changes {
        for dependency in &change.depends_on {
            dependents.entry(dependency).or_default().push(change);
        }
    }
    let mut remaining: BTreeMap<ResourceKey, u32> = BTreeMap::new();
    for change in &changes {
        remaining_from(change, &dependents, &mut remaining);
    }
    remaining
}

fn remaining_from(
    change: &ResourceChange,
    dependents: &BTreeMap<&ResourceKey, Vec<&ResourceChange>>,
    remaining: &mut BTreeMap<ResourceKey, u32>,
) -> u32 {
    if let Some(calls) = remaining.get(&change.key) {
        return *calls;
    }
    // Marked first, as in `chain_to`: a cycle ends instead of recursing.
    remaining.insert(change.key.clone(), 0);
    let after = dependents
        .get(&change.key)
        .into_iter()
        .flatten()
        .map(|dependent| remaining_from(dependent, dependents, remaining))
        .max()
        .unwrap_or(0);
    let total = sequential_calls(change) + after;
    remaining.insert(change.key.clone(), total);
    total
}

fn chain_to<'plan>(
    key: &'plan ResourceKey,
    by_key: &BTreeMap<&'plan ResourceKey, &'plan ResourceChange>,
    heaviest: &mut BTreeMap<&'plan ResourceKey, (u32, Option<&'plan ResourceKey>)>,
) -> u32 {
    if let Some((calls, _)) = heaviest.get(key) {
        return *calls;
    }
    let Some(change) = by_key.get(key) else {
        return 0;
    };
    // Mark it first, so that a cycle (which the planner rejects) ends
    // instead of recursing forever.
    heaviest.insert(key, (0, None));
    let mut before: (u32, Option<&ResourceKey>) = (0, None);
    for dependency in &change.depends_on {
        if let Some((dependency, _)) = by_key.get_key_value(dependency) {
            let calls = chain_to(dependency, by_key, heaviest);
            if calls > before.0 {
                before = (calls, Some(*dependency));
            }
        }
    }
    let total = before.0 + sequential_calls(change);
    heaviest.insert(key, (total, before.1));
    total
}

/// How many AWS calls `change` makes one after another, as the operations
/// in `providers/src/operations/` make them (a replace deletes, then
/// creates). A waiter counts its one poll.
pub fn sequential_calls(change: &ResourceChange) -> u32 {
    let desired = change.desired.as_ref();
    let current = change.current.as_ref();
    match (change.action, current, desired) {
        (Action::Create, _, Some(desired)) => create_calls(desired),
        (Action::Update, Some(current), Some(desired)) => update_calls(current, desired),
        (Action::Replace, Some(current), Some(desired)) => {
            delete_calls(current) + create_calls(desired)
        }
        (Action::Delete, Some(current), _) => delete_calls(current),
        // A plan without the attributes its action needs fails to apply
        // before any call.
        _ => 0,
    }
}

/// `create_*` in `providers/src/operations/`.
fn create_calls(desired: &Attributes) -> u32 {
    match desired {
        // network::create_vpc: CreateVpc, then ModifyVpcAttribute for each
        // DNS attribute that differs from a new VPC's (support on,
        // hostnames off), both at once.
        Attributes::Vpc(vpc) => 1 + u32::from(!vpc.enable_dns_support || vpc.enable_dns_hostnames),
        // network::create_subnet: CreateSubnet (+ ModifySubnetAttribute).
        Attributes::Subnet(subnet) => 1 + u32::from(subnet.map_public_ip_on_launch),
        // network::create_internet_gateway: Create, AttachInternetGateway.
        Attributes::InternetGateway(_) => 2,
        // network::create_elastic_ip: AllocateAddress.
        Attributes::ElasticIp(_) => 1,
        // network::create_nat_gateway: CreateNatGateway, then the waiter's
        // DescribeNatGateways until available.
        Attributes::NatGateway(_) => 2,
        // network::create_route_table: CreateRouteTable, then every
        // CreateRoute and AssociateRouteTable at once.
        Attributes::RouteTable(table) => {
            1 + u32::from(!table.routes.is_empty() || !table.subnets.is_empty())
        }
        // security::create_group: CreateSecurityGroup.
        Attributes::SecurityGroup(_) => 1,
        // security::create_rules: one AuthorizeSecurityGroupIngress for all.
        Attributes::SecurityGroupRules(rules) => u32::from(!rules.ingress.is_empty()),
        // iam::create_role: CreateRole, PutRolePolicy.
        Attributes::IamRole(_) => 2,
        // iam::create_instance_profile: Create, AddRoleToInstanceProfile.
        Attributes::InstanceProfile(_) => 2,
        // compute::create_key_pair: ImportKeyPair.
        Attributes::KeyPair(_) => 1,
        // compute::create_launch_template: CreateLaunchTemplate.
        Attributes::LaunchTemplate(_) => 1,
        // compute::create_auto_scaling_group: CreateAutoScalingGroup.
        Attributes::AutoScalingGroup(_) => 1,
        // load_balancer::create_load_balancer: CreateLoadBalancer (nothing
        // waits for it to be active: its listener, target group and alias
        // record can be made while it is provisioning).
        Attributes::LoadBalancer(_) => 1,
        // load_balancer::create_target_group: Create,
        // ModifyTargetGroupAttributes.
        Attributes::TargetGroup(_) => 2,
        // load_balancer::create_listener: CreateListener.
        Attributes::Listener(_) => 1,
        // dns::create_record: ChangeResourceRecordSets.
        Attributes::DnsRecord(_) => 1,
        // dns::create_hosted_zone: DescribeTargetGroups and the public
        // target group's DescribeTargetHealth (is the API served today? if
        // so, the wait for a healthy target, not counted), CreateHostedZone
        // (with the VPC), then its SOA read and rewritten with a short
        // negative TTL.
        Attributes::HostedZone(_) => 5,
        // node_termination::put_lifecycle_hook: PutLifecycleHook.
        Attributes::LifecycleHook(_) => 1,
        // node_termination::create_queue: CreateQueue (attributes, policy
        // and tags at once), GetQueueAttributes for its ARN.
        Attributes::SqsQueue(_) => 2,
        // node_termination::create_rule: PutRule (with its tags), PutTargets.
        Attributes::EventRule(_) => 2,
        // skiff_engine::addons: the manifest's PutObject, then the index's
        // (read, written) in the state store; no AWS service call.
        Attributes::Addon(_) => 3,
    }
}

/// `update_*` in `providers/src/operations/` (and `AwsProvider::update`).
fn update_calls(current: &Attributes, desired: &Attributes) -> u32 {
    match (current, desired) {
        // network::update_vpc: the DNS attributes that changed (at once),
        // tags.
        (Attributes::Vpc(before), Attributes::Vpc(after)) => {
            let dns = before.enable_dns_support != after.enable_dns_support
                || before.enable_dns_hostnames != after.enable_dns_hostnames;
            u32::from(dns) + tag_calls(&before.tags, &after.tags)
        }
        // network::update_subnet.
        (Attributes::Subnet(before), Attributes::Subnet(after)) => {
            u32::from(before.map_public_ip_on_launch != after.map_public_ip_on_launch)
                + tag_calls(&before.tags, &after.tags)
        }
        // network::update_internet_gateway: detach from the old VPC (if
        // any), attach to the new one, tags.
        (Attributes::InternetGateway(before), Attributes::InternetGateway(after)) => {
            let moved = if before.vpc == after.vpc {
                0
            } else {
                1 + u32::from(before.vpc.value().is_some_and(|vpc| !vpc.is_empty()))
            };
            moved + tag_calls(&before.tags, &after.tags)
        }
        // network::update_tags.
        (Attributes::ElasticIp(before), Attributes::ElasticIp(after)) => {
            tag_calls(&before.tags, &after.tags)
        }
        (Attributes::NatGateway(before), Attributes::NatGateway(after)) => {
            tag_calls(&before.tags, &after.tags)
        }
        (Attributes::SecurityGroup(before), Attributes::SecurityGroup(after)) => {
            tag_calls(&before.tags, &after.tags)
        }
        (Attributes::KeyPair(before), Attributes::KeyPair(after)) => {
            tag_calls(&before.tags, &after.tags)
        }
        // network::update_route_table: CreateRoute or ReplaceRoute per
        // changed route, DeleteRoute per removed one, AssociateRouteTable
        // per new subnet, DescribeRouteTables and one Disassociate per
        // stale subnet, tags.
        (Attributes::RouteTable(before), Attributes::RouteTable(after)) => {
            let changed_routes = after
                .routes
                .iter()
                .filter(|route| !before.routes.contains(route))
                .count();
            let removed_routes = before
                .routes
                .iter()
                .filter(|route| {
                    !after
                        .routes
                        .iter()
                        .any(|wanted| wanted.destination == route.destination)
                })
                .count();
            let added_subnets = after
                .subnets
                .iter()
                .filter(|subnet| !before.subnets.contains(subnet))
                .count();
            let stale_subnets = before
                .subnets
                .iter()
                .filter(|subnet| !after.subnets.contains(subnet))
                .count();
            let describe = usize::from(stale_subnets > 0);
            count(changed_routes + removed_routes + added_subnets + describe + stale_subnets)
                + tag_calls(&before.tags, &after.tags)
        }
        // security::update_rules: one Authorize for the missing rules, one
        // Revoke for the extra ones.
        (Attributes::SecurityGroupRules(before), Attributes::SecurityGroupRules(after)) => {
            let missing = after
                .ingress
                .iter()
                .any(|rule| !before.ingress.contains(rule));
            let extra = before
                .ingress
                .iter()
                .any(|rule| !after.ingress.contains(rule));
            u32::from(missing) + u32::from(extra)
        }
        // iam::update_role: UpdateAssumeRolePolicy, PutRolePolicy, TagRole,
        // UntagRole, each only if needed.
        (Attributes::IamRole(before), Attributes::IamRole(after)) => {
            u32::from(before.assume_role_policy != after.assume_role_policy)
                + u32::from(
                    before.policy != after.policy || before.policy_name != after.policy_name,
                )
                + tag_calls(&before.tags, &after.tags)
        }
        // iam::update_instance_profile: remove the old role (if any), add
        // the new one.
        (Attributes::InstanceProfile(before), Attributes::InstanceProfile(after)) => {
            if before.role == after.role {
                0
            } else {
                1 + u32::from(before.role.value().is_some_and(|role| !role.is_empty()))
            }
        }
        // compute::update_launch_template: tags, then a new version
        // (CreateLaunchTemplateVersion) made the default
        // (ModifyLaunchTemplate) if anything but the tags changed.
        (Attributes::LaunchTemplate(before), Attributes::LaunchTemplate(after)) => {
            tag_calls(&before.tags, &after.tags) + 2 * u32::from(before.data_differs(after))
        }
        // compute::update_auto_scaling_group: DescribeAutoScalingGroups and
        // UpdateAutoScalingGroup if the template, sizes, subnets or mix
        // changed; attach and detach target groups; tags.
        (Attributes::AutoScalingGroup(before), Attributes::AutoScalingGroup(after)) => {
            let core_changed = before.core_differs(after);
            let attach = after
                .target_groups
                .iter()
                .any(|group| !before.target_groups.contains(group));
            let detach = before
                .target_groups
                .iter()
                .any(|group| !after.target_groups.contains(group));
            2 * u32::from(core_changed)
                + u32::from(attach)
                + u32::from(detach)
                + tag_calls(&before.tags, &after.tags)
        }
        // load_balancer::update_load_balancer: SetSubnets, SetSecurityGroups,
        // AddTags, RemoveTags, each only if needed.
        (Attributes::LoadBalancer(before), Attributes::LoadBalancer(after)) => {
            u32::from(before.subnets != after.subnets)
                + u32::from(before.security_groups != after.security_groups)
                + tag_calls(&before.tags, &after.tags)
        }
        // load_balancer::update_target_group: ModifyTargetGroup (health
        // check), ModifyTargetGroupAttributes, tags.
        (Attributes::TargetGroup(before), Attributes::TargetGroup(after)) => {
            let health_check = before.health_check_protocol != after.health_check_protocol
                || before.health_check_path != after.health_check_path;
            let attributes = before.preserve_client_ip != after.preserve_client_ip
                || before.deregistration_delay_seconds != after.deregistration_delay_seconds;
            u32::from(health_check) + u32::from(attributes) + tag_calls(&before.tags, &after.tags)
        }
        // load_balancer::update_listener: ModifyListener.
        (Attributes::Listener(_), Attributes::Listener(_)) => 1,
        // dns::upsert_record: ChangeResourceRecordSets.
        (Attributes::DnsRecord(_), Attributes::DnsRecord(_)) => 1,
        // node_termination::put_lifecycle_hook: PutLifecycleHook.
        (Attributes::LifecycleHook(_), Attributes::LifecycleHook(_)) => 1,
        // node_termination::update_queue: SetQueueAttributes if an attribute
        // or the policy changed, tags.
        (Attributes::SqsQueue(before), Attributes::SqsQueue(after)) => {
            let attributes = before.message_retention_seconds != after.message_retention_seconds
                || before.sqs_managed_sse != after.sqs_managed_sse
                || before.policy != after.policy;
            u32::from(attributes) + tag_calls(&before.tags, &after.tags)
        }
        // node_termination::update_rule: PutRule if the pattern or the
        // description changed, PutTargets if the target did, tags.
        (Attributes::EventRule(before), Attributes::EventRule(after)) => {
            let rule = before.event_pattern != after.event_pattern
                || before.description != after.description;
            u32::from(rule)
                + u32::from(before.target != after.target)
                + tag_calls(&before.tags, &after.tags)
        }
        // skiff_engine::addons: as a create.
        (Attributes::Addon(_), Attributes::Addon(_)) => 3,
        // Kinds that differ: the update fails before any call.
        _ => 0,
    }
}

/// `delete_*` in `providers/src/operations/`.
fn delete_calls(current: &Attributes) -> u32 {
    match current {
        // network::delete_internet_gateway: Detach (if attached), Delete.
        Attributes::InternetGateway(gateway) => {
            1 + u32::from(gateway.vpc.value().is_some_and(|vpc| !vpc.is_empty()))
        }
        // network::delete_nat_gateway: Delete, then the waiter's
        // DescribeNatGateways until deleted.
        Attributes::NatGateway(_) => 2,
        // network::delete_route_table: DescribeRouteTables, every
        // DisassociateRouteTable at once, DeleteRouteTable.
        Attributes::RouteTable(table) => 2 + u32::from(!table.subnets.is_empty()),
        // security::delete_rules: one Revoke for all.
        Attributes::SecurityGroupRules(rules) => u32::from(!rules.ingress.is_empty()),
        // iam::delete_role: ListInstanceProfilesForRole,
        // RemoveRoleFromInstanceProfile (skiff gives a role one profile),
        // ListRolePolicies, DeleteRolePolicy (one inline policy), DeleteRole.
        Attributes::IamRole(_) => 5,
        // iam::delete_instance_profile: RemoveRole (if it has one), Delete.
        Attributes::InstanceProfile(profile) => {
            1 + u32::from(profile.role.value().is_some_and(|role| !role.is_empty()))
        }
        // compute::delete_auto_scaling_group: Delete (forced), then the
        // waiter's DescribeAutoScalingGroups until gone.
        Attributes::AutoScalingGroup(_) => 2,
        // load_balancer::delete_load_balancer: DeleteLoadBalancer (its
        // lingering interfaces are waited for by what they hold).
        Attributes::LoadBalancer(_) => 1,
        // One Delete*/Release* call each.
        Attributes::Vpc(_)
        | Attributes::Subnet(_)
        | Attributes::ElasticIp(_)
        | Attributes::SecurityGroup(_)
        | Attributes::KeyPair(_)
        | Attributes::LaunchTemplate(_)
        | Attributes::TargetGroup(_)
        | Attributes::Listener(_)
        | Attributes::DnsRecord(_)
        | Attributes::HostedZone(_)
        | Attributes::LifecycleHook(_)
        | Attributes::SqsQueue(_) => 1,
        // node_termination::delete_rule: RemoveTargets, DeleteRule.
        Attributes::EventRule(_) => 2,
        // skiff_engine::addons: the index read and written (the manifest
        // stays until the nodes have deleted what it made).
        Attributes::Addon(_) => 2,
    }
}

/// A tag update: one call to set new or changed tags, one to remove tags
/// no longer wanted (`providers/src/tags.rs`, `changes`).
fn tag_calls(before: &Tags, after: &Tags) -> u32 {
    let set = after
        .iter()
        .any(|(key, value)| before.get(key) != Some(value));
    let removed = before.keys().any(|key| !after.contains_key(key));
    u32::from(set) + u32::from(removed)
}

fn count(items: usize) -> u32 {
    u32::try_from(items).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Summary;
    use crate::resolve::KnownOutputs;
    use crate::resource::{
        IamRoleAttributes, Id, ResourceKind, RouteTableAttributes, SubnetAttributes, VpcAttributes,
    };

    fn key(text: &str) -> ResourceKey {
        ResourceKey::parse(text).expect("a valid key")
    }

    fn vpc() -> Attributes {
        Attributes::Vpc(VpcAttributes {
            cidr: "10.0.0.0/16".into(),
            enable_dns_support: true,
            enable_dns_hostnames: true,
            tags: Tags::new(),
        })
    }

    fn subnet(public: bool) -> Attributes {
        Attributes::Subnet(SubnetAttributes {
            vpc: key("vpc").output(crate::Output::Id),
            cidr: "10.0.0.0/24".into(),
            zone: "us-east-1a".into(),
            map_public_ip_on_launch: public,
            tags: Tags::new(),
        })
    }

    fn role(name: &str) -> Attributes {
        Attributes::IamRole(IamRoleAttributes {
            name: name.into(),
            path: "/".into(),
            assume_role_policy: "{}".into(),
            policy_name: "policy".into(),
            policy: "{}".into(),
            tags: Tags::new(),
        })
    }

    fn change(key: &str, action: Action, attributes: Attributes, after: &[&str]) -> ResourceChange {
        let (current, desired) = match action {
            Action::Create => (None, Some(attributes.clone())),
            Action::Delete => (Some(attributes.clone()), None),
            Action::Update | Action::Replace => {
                (Some(attributes.clone()), Some(attributes.clone()))
            }
        };
        ResourceChange {
            key: self::key(key),
            kind: attributes.kind(),
            action,
            id: None,
            reason: None,
            fields: Vec::new(),
            desired,
            current,
            depends_on: after.iter().map(|after| self::key(after)).collect(),
        }
    }

    fn plan(changes: Vec<ResourceChange>) -> Plan {
        Plan {
            format: crate::plan::PLAN_FORMAT,
            cluster: "c.example.com".into(),
            region: "us-east-1".into(),
            spec_revision: 1,
            state: crate::plan::StateBinding::none(),
            summary: Summary::default(),
            changes,
            rolling_updates: Vec::new(),
            known_outputs: KnownOutputs::default(),
            instance_groups: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn creates_count_the_calls_their_operations_make() {
        let create = |attributes: Attributes| {
            let key = ResourceKey::new(attributes.kind(), "x");
            sequential_calls(&change(key.as_str(), Action::Create, attributes, &[]))
        };
        // DNS hostnames on: one ModifyVpcAttribute after the create.
        assert_eq!(create(vpc()), 2);
        let mut defaults = vpc();
        if let Attributes::Vpc(vpc) = &mut defaults {
            vpc.enable_dns_hostnames = false;
        }
        assert_eq!(create(defaults), 1);
        assert_eq!(create(subnet(false)), 1);
        assert_eq!(create(subnet(true)), 2);
        assert_eq!(create(role("r")), 2);
        let table = Attributes::RouteTable(RouteTableAttributes {
            vpc: Id::Value("vpc-1".into()),
            routes: Vec::new(),
            subnets: vec![Id::Value("subnet-1".into()), Id::Value("subnet-2".into())],
            tags: Tags::new(),
        });
        // The associations at once, after the create.
        assert_eq!(create(table.clone()), 2);
        assert_eq!(
            sequential_calls(&change("route-table/x", Action::Delete, table, &[])),
            3
        );
    }

    #[test]
    fn an_update_counts_only_what_changed() {
        let mut update = change("vpc", Action::Update, vpc(), &[]);
        assert_eq!(sequential_calls(&update), 0);
        if let Some(Attributes::Vpc(after)) = &mut update.desired {
            after.tags.insert("team".into(), "a".into());
            after.enable_dns_hostnames = false;
        }
        assert_eq!(sequential_calls(&update), 2);
        let replace = change("subnet/a", Action::Replace, subnet(true), &[]);
        assert_eq!(sequential_calls(&replace), 1 + 2);
    }

    fn nat_gateway() -> Attributes {
        Attributes::NatGateway(crate::resource::NatGatewayAttributes {
            subnet: key("subnet/a").output(crate::Output::Id),
            allocation: Id::Value("eipalloc-1".into()),
            tags: Tags::new(),
        })
    }

    fn elastic_ip() -> Attributes {
        Attributes::ElasticIp(crate::resource::ElasticIpAttributes { tags: Tags::new() })
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_timed_path_adds_the_readiness_a_create_waits_for() {
        let plan = plan(vec![
            change("vpc", Action::Create, vpc(), &[]),
            change("subnet/a", Action::Create, subnet(false), &["vpc"]),
            change(
                "nat-gateway/a",
                Action::Create,
                nat_gateway(),
                &["subnet/a"],
            ),
            change("iam-role/r", Action::Create, role("r"), &[]),
        ]);
        let waits = Waits {
            nat_gateway_ready: 900 * MS,
            ..Waits::default()
        };
        let path = timed_critical_path(&plan, 10 * MS, &waits);
        // 2 + 1 + 2 calls, and the NAT gateway's 900 ms.
        assert_eq!(path.duration, 50 * MS + 900 * MS);
        assert_eq!(
            path.chain,
            vec![key("vpc"), key("subnet/a"), key("nat-gateway/a")]
        );
        // Each new ID on the chain must become visible before its dependent
        // can name it: two links.
        let consistent = Waits {
            new_ids_visible: 5 * MS,
            ..waits
        };
        assert_eq!(
            timed_critical_path(&plan, 10 * MS, &consistent).duration,
            50 * MS + 900 * MS + 2 * 5 * MS
        );
        // Without waits it is the calls' bound.
        let bare = timed_critical_path(&plan, 10 * MS, &Waits::default());
        assert_eq!(bare.duration, critical_path(&plan).bound(10 * MS));
    }

    #[test]
    fn a_timed_delete_waits_for_what_holds_it_to_be_released() {
        let plan = plan(vec![
            change("vpc", Action::Delete, vpc(), &[]),
            change("subnet/a", Action::Delete, subnet(false), &[]),
            change("elastic-ip/a", Action::Delete, elastic_ip(), &[]),
            change("nat-gateway/a", Action::Delete, nat_gateway(), &[]),
            change("iam-role/r", Action::Delete, role("r"), &[]),
        ]);
        let waits = Waits {
            nat_gateway_deleting: 600 * MS,
            ..Waits::default()
        };
        let path = timed_critical_path(&plan, 10 * MS, &waits);
        let calls = |key: &str| {
            let change = plan
                .changes
                .iter()
                .find(|change| change.key.as_str() == key)
                .unwrap();
            10 * MS * sequential_calls(change)
        };
        // The NAT gateway goes at once and holds its subnet and address for
        // 600 ms; then they go (side by side), then the VPC.
        assert_eq!(
            path.duration,
            calls("nat-gateway/a") + 600 * MS + calls("subnet/a") + calls("vpc")
        );
        assert_eq!(path.chain.first(), Some(&key("nat-gateway/a")));
        assert_eq!(path.chain.last(), Some(&key("vpc")));
        assert_eq!(path.chain.len(), 3, "{:?}", path.chain);
    }

    #[test]
    fn the_path_is_the_heaviest_chain_then_each_kind_of_delete() {
        let plan = plan(vec![
            change("vpc", Action::Create, vpc(), &[]),
            change("subnet/a", Action::Create, subnet(true), &["vpc"]),
            change("subnet/b", Action::Create, subnet(false), &["vpc"]),
            // Independent of the VPC: a parallel branch, shorter.
            change("iam-role/nodes", Action::Create, role("nodes"), &[]),
            // A dependency outside the plan exists already: free.
            change(
                "subnet/c",
                Action::Create,
                subnet(false),
                &["security-group/elsewhere"],
            ),
            change("iam-role/old", Action::Delete, role("old"), &[]),
            change("subnet/old-1", Action::Delete, subnet(false), &[]),
            change("subnet/old-2", Action::Delete, subnet(false), &[]),
        ]);
        let path = critical_path(&plan);
        // vpc (2) + subnet/a (2); then the deletes by kind, dependents
        // first: the roles (5), then the subnets (1, in parallel).
        assert_eq!(path.calls, 2 + 2 + 5 + 1);
        let keys: Vec<&str> = path.chain.iter().map(ResourceKey::as_str).collect();
        assert_eq!(keys, ["vpc", "subnet/a", "iam-role/old", "subnet/old-1"]);
        assert_eq!(
            path.bound(Duration::from_millis(50)),
            Duration::from_millis(500)
        );
        assert!(kind_rank(ResourceKind::IamRole) > kind_rank(ResourceKind::Subnet));
    }

    #[test]
    fn what_remains_after_each_change_is_its_heaviest_way_to_the_end() {
        let plan = plan(vec![
            change("vpc", Action::Create, vpc(), &[]),
            change("subnet/a", Action::Create, subnet(true), &["vpc"]),
            change("iam-role/nodes", Action::Create, role("nodes"), &[]),
        ]);
        let remaining = remaining_calls(&plan);
        let calls = |key: &str| {
            sequential_calls(
                plan.changes
                    .iter()
                    .find(|change| change.key.as_str() == key)
                    .expect("in the plan"),
            )
        };
        assert_eq!(remaining[&key("subnet/a")], calls("subnet/a"));
        assert_eq!(remaining[&key("vpc")], calls("vpc") + calls("subnet/a"));
        assert_eq!(remaining[&key("iam-role/nodes")], calls("iam-role/nodes"));
        // The start of the heaviest chain has the whole path left.
        assert_eq!(
            remaining.values().max().copied(),
            Some(critical_path(&plan).calls)
        );
    }

    #[test]
    fn an_empty_plan_has_an_empty_path() {
        assert_eq!(critical_path(&plan(Vec::new())), CriticalPath::default());
    }
}
