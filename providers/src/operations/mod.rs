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
pub mod iam;
pub mod load_balancer;
pub mod network;
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

/// Polls `check` until it returns `Some`, with growing intervals, up to `limit`.
pub(crate) async fn wait_for<T, F, Fut>(
    what: &str,
    resource: &str,
    limit: Duration,
    mut check: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let started = tokio::time::Instant::now();
    let mut interval = Duration::from_millis(250);
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
        if started.elapsed() > limit {
            return Err(ProviderError::other(
                what,
                resource,
                format!("still not ready after {}s", limit.as_secs()),
            ));
        }
        tokio::time::sleep(interval).await;
        interval = (interval.mul_f64(1.5)).min(Duration::from_secs(10));
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
        };
        match result {
            Err(error) if error.is_missing() => Ok(()),
            other => other,
        }
    }
}
