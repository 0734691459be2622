//! Create, update and delete, per kind of resource. One file per area, like
//! the desired model: [`network`], [`security`], [`iam`], [`compute`],
//! [`load_balancer`], [`dns`].
//!
//! Every call receives attributes whose references are resolved. Creates tag
//! at creation time (EC2 `TagSpecifications`, ELB and IAM tags), so a crash
//! right after a create still leaves a resource the next refresh finds.
//!
//! How many calls each operation makes one after another is written down
//! once, in `skiff_plans::critical_path::sequential_calls` (the benchmark's
//! bound on an apply's wall time): change it there when an operation here
//! gains or loses a call.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use skiff_plans::resource::{Attributes, Id, ResourceKey};
use skiff_plans::Output;

use crate::error::{ProviderError, Result};
use crate::AwsProvider;

pub mod compute;
pub mod dns;
pub mod holders;
pub mod iam;
pub mod load_balancer;
pub mod network;
pub mod node_termination;
pub mod security;

/// What a create or update produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applied {
    /// The primary ID.
    pub id: String,
    /// Outputs others may refer to.
    pub outputs: BTreeMap<Output, String>,
}

impl Applied {
    /// An outcome with just an ID (also its `Id` output).
    pub fn with_id(id: &str) -> Applied {
        let mut outputs = BTreeMap::new();
        outputs.insert(Output::Id, id.to_string());
        Applied {
            id: id.to_string(),
            outputs,
        }
    }

    /// Adds an output.
    pub fn output(mut self, output: Output, value: &str) -> Applied {
        self.outputs.insert(output, value.to_string());
        self
    }
}

/// The value of a resolved reference, or an error naming the field.
pub(crate) fn value<'id>(key: &ResourceKey, field: &str, id: &'id Id) -> Result<&'id str> {
    id.value().ok_or_else(|| {
        ProviderError::other(
            "resolve",
            key.as_str(),
            format!(
                "{field} refers to {} which has no value yet",
                id.reference().map(ToString::to_string).unwrap_or_default()
            ),
        )
    })
}

/// Values of a list of resolved references.
pub(crate) fn values(key: &ResourceKey, field: &str, ids: &[Id]) -> Result<Vec<String>> {
    ids.iter()
        .map(|id| value(key, field, id).map(str::to_string))
        .collect()
}

/// The shortest pause between two polls.
const POLL_FLOOR: Duration = Duration::from_millis(100);
/// The longest pause between two polls.
const POLL_CEILING: Duration = Duration::from_secs(10);
/// Before the expected duration: at most this share of it between polls.
const SHARE_OF_EXPECTED: f64 = 0.05;
/// At any time: at most this share of the time already waited between polls.
const SHARE_OF_WAITED: f64 = 0.1;

/// How long to pause before the next poll of a wait that has lasted
/// `elapsed` and usually lasts `expected`.
///
/// The pause is at most a tenth of the time already waited (so a wait that
/// ends at T is seen by T × 1.1 + 0.1 s, whatever T is: at AWS's own pace or
/// a test's fiftieth of it), and before the expected duration at most a
/// twentieth of it (so at AWS's pace the end is seen within 5 % of the
/// expected time); never under 0.1 s, never over 10 s. The number of polls
/// grows with the logarithm of the wait, not with the wait.
pub fn poll_interval(elapsed: Duration, expected: Duration) -> Duration {
    let mut interval = elapsed.mul_f64(SHARE_OF_WAITED);
    if elapsed < expected {
        interval = interval.min(expected.mul_f64(SHARE_OF_EXPECTED));
    }
    interval.clamp(POLL_FLOOR, POLL_CEILING)
}

/// Polls `check` until it returns `Some`, pausing [`poll_interval`] between
/// polls (`expected`: how long the wait usually takes on AWS), up to `limit`.
pub(crate) async fn wait_for<T, F, Fut>(
    what: &str,
    resource: &str,
    expected: Duration,
    limit: Duration,
    mut check: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let started = tokio::time::Instant::now();
    // What is waited for was just created or changed, so AWS may not show
    // it for a moment (eventual consistency): "not found" means "not ready
    // yet" for the propagation time, then it is an error.
    let propagation = crate::retry::RetryPolicy::default().propagation;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error)
                if error.class == crate::error::ErrorClass::NotYetVisible
                    && started.elapsed() < propagation => {}
            Err(error) => return Err(error),
        }
        let elapsed = started.elapsed();
        if elapsed > limit {
            return Err(ProviderError::other(
                what,
                resource,
                format!("still not ready after {}s", limit.as_secs()),
            ));
        }
        tokio::time::sleep(poll_interval(elapsed, expected)).await;
    }
}

/// The EC2 `ClientToken` of a create: derived from the intent's token, the
/// resource key and the parameters that make the resource what it is. A
/// create retried after a lost answer or a crash (same intent, same
/// parameters) gets the same token, so EC2 answers with the resource the
/// first attempt made instead of making a second; a new intent (the
/// resource was deleted or replaced since) gets a new token, so it can
/// never be answered with a resource that no longer exists.
pub(crate) fn client_token(intent: &str, key: &ResourceKey, parts: &[&str]) -> String {
    let mut text = format!("{intent}|{}", key.as_str());
    for part in parts {
        text.push('|');
        text.push_str(part);
    }
    format!("skiff-{}", skiff_plans::names::short_hash(&text))
}

impl AwsProvider {
    /// Creates a resource. `intent` is the token of the recorded intent
    /// (see [`skiff_plans::recorded::Intent`]): creates whose API takes an
    /// idempotency token derive theirs from it.
    pub async fn create(
        &self,
        key: &ResourceKey,
        attributes: &Attributes,
        intent: &str,
    ) -> Result<Applied> {
        match attributes {
            Attributes::Vpc(vpc) => network::create_vpc(self, key, vpc).await,
            Attributes::Subnet(subnet) => network::create_subnet(self, key, subnet).await,
            Attributes::InternetGateway(gateway) => {
                network::create_internet_gateway(self, key, gateway).await
            }
            Attributes::ElasticIp(address) => network::create_elastic_ip(self, key, address).await,
            Attributes::NatGateway(gateway) => {
                network::create_nat_gateway(self, key, gateway, intent).await
            }
            Attributes::RouteTable(table) => {
                network::create_route_table(self, key, table, intent).await
            }
            Attributes::SecurityGroup(group) => security::create_group(self, key, group).await,
            Attributes::SecurityGroupRules(rules) => security::create_rules(self, key, rules).await,
            Attributes::IamRole(role) => iam::create_role(self, key, role).await,
            Attributes::InstanceProfile(profile) => {
                iam::create_instance_profile(self, key, profile).await
            }
            Attributes::KeyPair(pair) => compute::create_key_pair(self, key, pair).await,
            Attributes::LaunchTemplate(template) => {
                compute::create_launch_template(self, key, template, intent).await
            }
            Attributes::AutoScalingGroup(group) => {
                compute::create_auto_scaling_group(self, key, group).await
            }
            Attributes::LoadBalancer(balancer) => {
                load_balancer::create_load_balancer(self, key, balancer).await
            }
            Attributes::TargetGroup(target) => {
                load_balancer::create_target_group(self, key, target).await
            }
            Attributes::Listener(listener) => {
                load_balancer::create_listener(self, key, listener).await
            }
            Attributes::DnsRecord(record) => dns::create_record(self, key, record).await,
            Attributes::HostedZone(zone) => dns::create_hosted_zone(self, key, zone, intent).await,
            Attributes::LifecycleHook(hook) => {
                node_termination::put_lifecycle_hook(self, key, hook).await
            }
            Attributes::SqsQueue(queue) => node_termination::create_queue(self, key, queue).await,
            Attributes::EventRule(rule) => node_termination::create_rule(self, key, rule).await,
            // A state-store object: the engine's addon operations write it
            // (skiff_engine::addons) before the cloud sees the change.
            Attributes::Addon(_) => Err(ProviderError::other(
                "create",
                key.as_str(),
                "an addon is written to the state store by the engine, not by the AWS provider",
            )),
        }
    }

    /// Changes a resource in place from `current` to `desired`.
    pub async fn update(
        &self,
        key: &ResourceKey,
        id: &str,
        current: &Attributes,
        desired: &Attributes,
    ) -> Result<Applied> {
        match (current, desired) {
            (Attributes::Vpc(before), Attributes::Vpc(after)) => {
                network::update_vpc(self, id, before, after).await
            }
            (Attributes::Subnet(before), Attributes::Subnet(after)) => {
                network::update_subnet(self, id, before, after).await
            }
            (Attributes::InternetGateway(before), Attributes::InternetGateway(after)) => {
                network::update_internet_gateway(self, key, id, before, after).await
            }
            (Attributes::ElasticIp(before), Attributes::ElasticIp(after)) => {
                network::update_tags(self, id, &before.tags, &after.tags).await
            }
            (Attributes::NatGateway(before), Attributes::NatGateway(after)) => {
                network::update_tags(self, id, &before.tags, &after.tags).await
            }
            (Attributes::RouteTable(before), Attributes::RouteTable(after)) => {
                network::update_route_table(self, key, id, before, after).await
            }
            (Attributes::SecurityGroup(before), Attributes::SecurityGroup(after)) => {
                network::update_tags(self, id, &before.tags, &after.tags).await
            }
            (Attributes::SecurityGroupRules(before), Attributes::SecurityGroupRules(after)) => {
                security::update_rules(self, key, id, before, after).await
            }
            (Attributes::IamRole(before), Attributes::IamRole(after)) => {
                iam::update_role(self, before, after).await
            }
            (Attributes::InstanceProfile(before), Attributes::InstanceProfile(after)) => {
                iam::update_instance_profile(self, key, before, after).await
            }
            (Attributes::KeyPair(before), Attributes::KeyPair(after)) => {
                compute::update_key_pair(self, id, before, after).await
            }
            (Attributes::LaunchTemplate(before), Attributes::LaunchTemplate(after)) => {
                compute::update_launch_template(self, key, id, before, after).await
            }
            (Attributes::AutoScalingGroup(before), Attributes::AutoScalingGroup(after)) => {
                compute::update_auto_scaling_group(self, key, before, after).await
            }
            (Attributes::LoadBalancer(before), Attributes::LoadBalancer(after)) => {
                load_balancer::update_load_balancer(self, key, id, before, after).await
            }
            (Attributes::TargetGroup(before), Attributes::TargetGroup(after)) => {
                load_balancer::update_target_group(self, id, before, after).await
            }
            (Attributes::Listener(_), Attributes::Listener(after)) => {
                load_balancer::update_listener(self, key, id, after).await
            }
            (Attributes::DnsRecord(_), Attributes::DnsRecord(after)) => {
                dns::upsert_record(self, key, after).await
            }
            (Attributes::LifecycleHook(_), Attributes::LifecycleHook(after)) => {
                node_termination::put_lifecycle_hook(self, key, after).await
            }
            (Attributes::SqsQueue(before), Attributes::SqsQueue(after)) => {
                node_termination::update_queue(self, id, before, after).await
            }
            (Attributes::EventRule(before), Attributes::EventRule(after)) => {
                node_termination::update_rule(self, key, id, before, after).await
            }
            (Attributes::Addon(_), Attributes::Addon(_)) => Err(ProviderError::other(
                "update",
                key.as_str(),
                "an addon is written to the state store by the engine, not by the AWS provider",
            )),
            _ => Err(ProviderError::other(
                "update",
                key.as_str(),
                "the current and desired kinds differ",
            )),
        }
    }

    /// Deletes a resource; a resource already gone counts as deleted.
    pub async fn delete(&self, key: &ResourceKey, id: &str, current: &Attributes) -> Result<()> {
        let result = match current {
            Attributes::Vpc(_) => network::delete_vpc(self, id).await,
            Attributes::Subnet(_) => network::delete_subnet(self, id).await,
            Attributes::InternetGateway(gateway) => {
                network::delete_internet_gateway(self, id, gateway).await
            }
            Attributes::ElasticIp(_) => network::delete_elastic_ip(self, id).await,
            Attributes::NatGateway(_) => network::delete_nat_gateway(self, id).await,
            Attributes::RouteTable(_) => network::delete_route_table(self, id).await,
            Attributes::SecurityGroup(_) => security::delete_group(self, id).await,
            Attributes::SecurityGroupRules(rules) => {
                security::delete_rules(self, key, id, rules).await
            }
            Attributes::IamRole(role) => iam::delete_role(self, role).await,
            Attributes::InstanceProfile(profile) => {
                iam::delete_instance_profile(self, profile).await
            }
            Attributes::KeyPair(pair) => compute::delete_key_pair(self, pair).await,
            Attributes::LaunchTemplate(_) => compute::delete_launch_template(self, id).await,
            Attributes::AutoScalingGroup(group) => {
                compute::delete_auto_scaling_group(self, group).await
            }
            Attributes::LoadBalancer(_) => load_balancer::delete_load_balancer(self, id).await,
            Attributes::TargetGroup(_) => load_balancer::delete_target_group(self, id).await,
            Attributes::Listener(_) => load_balancer::delete_listener(self, id).await,
            Attributes::DnsRecord(record) => dns::delete_record(self, key, record).await,
            Attributes::HostedZone(_) => dns::delete_hosted_zone(self, id).await,
            Attributes::LifecycleHook(hook) => {
                node_termination::delete_lifecycle_hook(self, key, id, hook).await
            }
            Attributes::SqsQueue(_) => node_termination::delete_queue(self, id).await,
            Attributes::EventRule(rule) => node_termination::delete_rule(self, &rule.name).await,
            // Nothing in AWS: `delete cluster` removes the store's addons/
            // folder with the rest of the cluster's objects.
            Attributes::Addon(_) => Ok(()),
        };
        match result {
            Err(error) if error.is_missing() => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// When a wait that ends at `ready` is seen, and after how many polls.
    fn simulate(ready: Duration, expected: Duration) -> (Duration, u32) {
        let mut now = Duration::ZERO;
        let mut polls = 1;
        while now < ready {
            now += poll_interval(now, expected);
            polls += 1;
        }
        (now, polls)
    }

    #[test]
    fn the_pause_is_a_share_of_the_time_waited_within_floor_and_ceiling() {
        let expected = Duration::from_secs(90);
        assert_eq!(poll_interval(Duration::ZERO, expected), POLL_FLOOR);
        assert_eq!(
            poll_interval(Duration::from_secs(20), expected),
            Duration::from_secs(2)
        );
        // Before the expected time, at most a twentieth of it.
        assert_eq!(
            poll_interval(Duration::from_secs(80), expected),
            Duration::from_millis(4500)
        );
        // After it, a tenth of the time waited, up to the ceiling.
        assert_eq!(
            poll_interval(Duration::from_secs(95), expected),
            Duration::from_millis(9500)
        );
        assert_eq!(
            poll_interval(Duration::from_secs(3600), expected),
            POLL_CEILING
        );
    }

    #[test]
    fn polling_adds_little_to_a_wait_at_any_time_scale() {
        // AWS's durations (NAT gateway 90 s, load balancer 150 s, deletes 60
        // s) at real time and at the test suite's time scales.
        for expected_secs in [60.0, 90.0, 150.0] {
            let expected = Duration::from_secs_f64(expected_secs);
            for scale in [1.0, 0.5, 0.1, 0.05, 0.02, 0.01] {
                for share in [0.5, 1.0, 1.5] {
                    let ready = Duration::from_secs_f64(expected_secs * scale * share);
                    let (seen, polls) = simulate(ready, expected);
                    let late = seen - ready;
                    assert!(
                        late <= ready.mul_f64(0.1) + POLL_FLOOR,
                        "ready at {ready:?} (expected {expected:?}): seen at {seen:?}, {late:?} late"
                    );
                    assert!(
                        polls <= 80,
                        "ready at {ready:?} (expected {expected:?}): {polls} polls"
                    );
                }
            }
        }
    }

    #[test]
    fn at_aws_pace_the_end_is_seen_within_five_percent_of_the_expected_time() {
        for expected_secs in [60, 90, 150] {
            let expected = Duration::from_secs(expected_secs);
            let (seen, _) = simulate(expected, expected);
            assert!(
                seen <= expected.mul_f64(1.05),
                "expected {expected:?}: seen at {seen:?}"
            );
        }
    }
}
