//! The API's Route53 alias records, created with `CREATE` (never
//! `UPSERT`), so a record skiff does not own is never overwritten; and the
//! private hosted zone that answers `api.<cluster>` inside the VPC.

use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, HostedZoneConfig, ResourceRecord,
    ResourceRecordSet, RrType, Vpc, VpcRegion,
};
use skiff_plans::resource::{DnsRecordAttributes, HostedZoneAttributes, ResourceKey};
use skiff_plans::Output;

use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::LoadBalancerStateEnum;

use super::{client_token, value, values, wait_for, Applied};
use crate::error::{aws_error, ProviderError, Result};
use crate::retry::retry;
use crate::AwsProvider;

fn change(
    key: &ResourceKey,
    action: ChangeAction,
    record: &DnsRecordAttributes,
) -> Result<ChangeBatch> {
    let build_error = |error: aws_sdk_route53::error::BuildError| {
        ProviderError::other(
            "route53:ChangeResourceRecordSets",
            key.as_str(),
            error.to_string(),
        )
    };
    let alias = AliasTarget::builder()
        .dns_name(value(key, "aliasTarget", &record.alias_target)?)
        .hosted_zone_id(value(key, "aliasZone", &record.alias_zone)?)
        .evaluate_target_health(false)
        .build()
        .map_err(build_error)?;
    let set = ResourceRecordSet::builder()
        .name(&record.name)
        .r#type(RrType::from(record.record_type.as_str()))
        .alias_target(alias)
        .build()
        .map_err(build_error)?;
    let change = Change::builder()
        .action(action)
        .resource_record_set(set)
        .build()
        .map_err(build_error)?;
    ChangeBatch::builder()
        .changes(change)
        .comment(format!("skiff: {}", key.as_str()))
        .build()
        .map_err(build_error)
}

async fn send(
    provider: &AwsProvider,
    key: &ResourceKey,
    record: &DnsRecordAttributes,
    action: ChangeAction,
) -> Result<()> {
    let batch = change(key, action, record)?;
    retry(&provider.retry, || async {
        provider
            .route53
            .change_resource_record_sets()
            .hosted_zone_id(value(key, "zone", &record.zone)?)
            .change_batch(batch.clone())
            .send()
            .await
            .map_err(|error| aws_error("route53:ChangeResourceRecordSets", &record.name, error))
    })
    .await?;
    Ok(())
}

pub(crate) async fn create_record(
    provider: &AwsProvider,
    key: &ResourceKey,
    record: &DnsRecordAttributes,
) -> Result<Applied> {
    send(provider, key, record, ChangeAction::Create).await?;
    Ok(Applied::with_id(&record.name).output(Output::Name, &record.name))
}

pub(crate) async fn upsert_record(
    provider: &AwsProvider,
    key: &ResourceKey,
    record: &DnsRecordAttributes,
) -> Result<Applied> {
    send(provider, key, record, ChangeAction::Upsert).await?;
    Ok(Applied::with_id(&record.name).output(Output::Name, &record.name))
}

pub(crate) async fn delete_record(
    provider: &AwsProvider,
    key: &ResourceKey,
    record: &DnsRecordAttributes,
) -> Result<()> {
    match send(provider, key, record, ChangeAction::Delete).await {
        // Route53 says InvalidChangeBatch when the record is already gone.
        Err(error)
            if error.code.as_deref() == Some("InvalidChangeBatch")
                && error.message.contains("not found") =>
        {
            Ok(())
        }
        other => other,
    }
}

/// How long a resolver may cache "no such name" from the private zone (its
/// SOA's TTL and minimum, RFC 2308), in seconds. Route53 makes a zone with
/// 900 and 86400: a lookup of `api.<cluster>` inside the VPC in the moment
/// between the zone's creation and its record's would then be remembered
/// as NXDOMAIN for fifteen minutes. One minute, like the alias record's TTL.
const NEGATIVE_TTL: i64 = 60;

/// Creates the private zone, associated with the VPC at once, and lowers
/// its negative TTL ([`NEGATIVE_TTL`]). The caller reference comes from
/// the recorded intent: a create that was interrupted and runs again is
/// answered `HostedZoneAlreadyExists`, and the zone it made is then found
/// by its name and comment.
pub(crate) async fn create_hosted_zone(
    provider: &AwsProvider,
    key: &ResourceKey,
    zone: &HostedZoneAttributes,
    intent: &str,
) -> Result<Applied> {
    let vpc_id = value(key, "vpc", &zone.vpc)?;
    let serves = values(key, "serves", &zone.serves)?;
    for arn in &serves {
        if arn.contains(":loadbalancer/") {
            wait_until_active(provider, key, arn, &zone.name).await?;
        }
    }
    wait_for_a_healthy_target(provider, key, &serves, &zone.name).await?;
    let reference = client_token(intent, key, &[&zone.name, vpc_id]);
    let build_error = |error: aws_sdk_route53::error::BuildError| {
        ProviderError::other("route53:CreateHostedZone", key.as_str(), error.to_string())
    };
    let created = retry(&provider.retry, || async {
        provider
            .route53
            .create_hosted_zone()
            .name(&zone.name)
            .caller_reference(&reference)
            .vpc(
                Vpc::builder()
                    .vpc_id(vpc_id)
                    .vpc_region(VpcRegion::from(provider.region.as_str()))
                    .build(),
            )
            .hosted_zone_config(
                HostedZoneConfig::builder()
                    .comment(&zone.comment)
                    .private_zone(true)
                    .build(),
            )
            .send()
            .await
            .map_err(|error| aws_error("route53:CreateHostedZone", &zone.name, error))
    })
    .await;
    let id = match created {
        Ok(output) => output
            .hosted_zone()
            .map(|created| created.id().trim_start_matches("/hostedzone/").to_string())
            .ok_or_else(|| {
                build_error(aws_sdk_route53::error::BuildError::missing_field(
                    "hosted_zone",
                    "CreateHostedZone answered no zone",
                ))
            })?,
        Err(error) if error.code.as_deref() == Some("HostedZoneAlreadyExists") => {
            existing_zone(provider, zone).await?.ok_or(error)?
        }
        Err(error) => return Err(error),
    };
    shorten_negative_ttl(provider, key, &id, &zone.name).await?;
    Ok(Applied::with_id(&id))
}

/// Waits until the load balancer the zone will lead to is `active`. From
/// its creation the zone answers `api.<cluster>` inside the VPC, in place of
/// the public record (Route53 Developer Guide, "Considerations when working
/// with a private hosted zone": a private zone's answers win for the VPCs
/// it is associated with); a network load balancer serves nothing while
/// `provisioning` (minutes, ELBv2 API reference, LoadBalancerState). On a
/// running cluster the nodes' new connections to the API would fail all
/// that time. An `active` balancer still forwards only to healthy targets:
/// that is [`wait_for_a_healthy_target`], next.
async fn wait_until_active(
    provider: &AwsProvider,
    key: &ResourceKey,
    arn: &str,
    name: &str,
) -> Result<()> {
    wait_for(
        "elasticloadbalancing:DescribeLoadBalancers",
        arn,
        Duration::from_secs(180),
        Duration::from_secs(900),
        || async {
            let output = provider
                .elb
                .describe_load_balancers()
                .load_balancer_arns(arn)
                .send()
                .await
                .map_err(|error| {
                    aws_error("elasticloadbalancing:DescribeLoadBalancers", arn, error)
                })?;
            let state = output
                .load_balancers()
                .first()
                .and_then(|balancer| balancer.state())
                .and_then(|state| state.code())
                .cloned();
            match state {
                Some(LoadBalancerStateEnum::Active) => Ok(Some(())),
                Some(LoadBalancerStateEnum::Failed) => Err(ProviderError::other(
                    "elasticloadbalancing:CreateLoadBalancer",
                    key.as_str(),
                    format!(
                        "the load balancer {arn} that {name} would lead to failed to provision; \
                         the private zone is not created, so the nodes keep the public endpoint: \
                         see its state in the EC2 console, then run the apply again"
                    ),
                )),
                _ => Ok(None),
            }
        },
    )
    .await
}

/// How long the control plane's targets usually take to become healthy in
/// a target group they were just registered with: the registration, then
/// the initial health checks (ELB's "Health checks for Network Load
/// Balancer target groups": "It can take a few minutes for the
/// registration process to complete and health checks to start").
const HEALTHY_EXPECTED: Duration = Duration::from_secs(90);
/// How long the zone waits for a healthy target before it gives up.
const HEALTHY_LIMIT: Duration = Duration::from_secs(600);

/// What a target group's targets are doing, from `DescribeTargetHealth`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TargetStates {
    /// Target ID and state (`initial`, `healthy`, `unhealthy`, ...), in
    /// the order ELB lists them.
    targets: Vec<(String, String)>,
}

impl TargetStates {
    fn healthy(&self) -> bool {
        self.targets.iter().any(|(_, state)| state == "healthy")
    }

    /// `i-1 initial, i-2 unhealthy`, or `no target registered`.
    fn describe(&self) -> String {
        if self.targets.is_empty() {
            return "no target registered".to_string();
        }
        self.targets
            .iter()
            .map(|(id, state)| format!("{id} {state}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

async fn target_states(provider: &AwsProvider, arn: &str) -> Result<TargetStates> {
    let output = provider
        .elb
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|error| aws_error("elasticloadbalancing:DescribeTargetHealth", arn, error))?;
    Ok(TargetStates {
        targets: output
            .target_health_descriptions()
            .iter()
            .map(|description| {
                (
                    description
                        .target()
                        .and_then(|target| target.id())
                        .unwrap_or_default()
                        .to_string(),
                    description
                        .target_health()
                        .and_then(|health| health.state())
                        .map(|state| state.as_str().to_string())
                        .unwrap_or_default(),
                )
            })
            .collect(),
    })
}

/// Waits, when the API is served today, until the target group the zone
/// leads to has a healthy target.
///
/// An `active` network load balancer forwards only to targets that passed
/// their initial health checks: a target is `initial` from its
/// registration until then (ELBv2 API reference, TargetHealth: reasons
/// `Elb.RegistrationInProgress`, `Elb.InitialHealthChecking`; "Health
/// checks for Network Load Balancer target groups": "The load balancer
/// starts routing requests to a newly registered target as soon as the
/// registration process completes and the targets pass the initial health
/// checks. It can take a few minutes"). On a running cluster the
/// control-plane groups register with the internal target group in this
/// very apply, so the balancer may be `active` with every target still
/// `initial`: a zone made then would send the nodes to a balancer that
/// forwards nowhere, in place of a public path that works.
///
/// Whether to wait is decided once, before waiting, from the target groups
/// in `serves`: the zone's own (the one attached to the internal load
/// balancer, also in `serves`) and the API's public one. It waits when the
/// public one has a healthy target, i.e. the cluster already has a control
/// plane serving the API, which the zone would shadow. It does not wait on
/// a new cluster: its public target group has no healthy target either
/// (nothing to shadow), and waiting would hold the apply until the first
/// control plane is up. Which targets are *registered* does not tell the
/// two apart: on a new cluster the control-plane groups are often created,
/// and their instances registered (`initial`), before the internal load
/// balancer is `active`. When the first control plane of a new cluster does
/// pass its health checks before the zone is made, its targets in both
/// groups pass together, and the wait is short.
async fn wait_for_a_healthy_target(
    provider: &AwsProvider,
    key: &ResourceKey,
    serves: &[String],
    name: &str,
) -> Result<()> {
    let target_groups: Vec<&String> = serves
        .iter()
        .filter(|arn| arn.contains(":targetgroup/"))
        .collect();
    if target_groups.is_empty() {
        return Ok(());
    }
    let balancers: Vec<&String> = serves
        .iter()
        .filter(|arn| arn.contains(":loadbalancer/"))
        .collect();
    // Retried: target groups made moments ago may not be visible yet, and
    // ELB throttles.
    let described = retry(&provider.retry, || async {
        provider
            .elb
            .describe_target_groups()
            .set_target_group_arns(Some(
                target_groups.iter().map(|arn| arn.to_string()).collect(),
            ))
            .send()
            .await
            .map_err(|error| {
                aws_error(
                    "elasticloadbalancing:DescribeTargetGroups",
                    key.as_str(),
                    error,
                )
            })
    })
    .await?;
    let mut own = None;
    let mut public = Vec::new();
    for group in described.target_groups() {
        let Some(arn) = group.target_group_arn() else {
            continue;
        };
        let leads_to = group
            .load_balancer_arns()
            .iter()
            .any(|balancer| balancers.contains(&balancer));
        if leads_to {
            own = Some((
                arn.to_string(),
                group.target_group_name().unwrap_or(arn).to_string(),
            ));
        } else {
            public.push(arn.to_string());
        }
    }
    let Some((own, own_name)) = own else {
        return Ok(());
    };
    let mut served = false;
    for arn in &public {
        served |= retry(&provider.retry, || target_states(provider, arn))
            .await?
            .healthy();
    }
    if !served {
        tracing::info!(
            "{key}: the API's public target group has no healthy target (a new cluster): \
             {name}'s private zone is made without waiting for {own_name}"
        );
        return Ok(());
    }
    // The states last shown (progress is shown when they change).
    let last: std::sync::Mutex<Option<TargetStates>> = std::sync::Mutex::new(None);
    let started = tokio::time::Instant::now();
    wait_for(
        "elasticloadbalancing:DescribeTargetHealth",
        &own,
        HEALTHY_EXPECTED,
        // The check itself gives up at HEALTHY_LIMIT, with what it saw.
        HEALTHY_LIMIT + Duration::from_secs(60),
        || async {
            let states = target_states(provider, &own).await?;
            if states.healthy() {
                return Ok(Some(()));
            }
            let changed = {
                let mut last = last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let changed = last.as_ref() != Some(&states);
                *last = Some(states.clone());
                changed
            };
            if changed {
                tracing::info!(
                    "{key}: waiting for a healthy target in {own_name} before {name} \
                     answers inside the VPC: {}",
                    states.describe()
                );
            }
            if started.elapsed() >= HEALTHY_LIMIT {
                return Err(ProviderError::other(
                    "elasticloadbalancing:DescribeTargetHealth",
                    key.as_str(),
                    format!(
                        "the target group {own_name} ({own}) that {name} would lead to has no \
                         healthy target after {}s ({}); the private zone is not created, so \
                         the nodes keep the public endpoint. See why with `aws elbv2 \
                         describe-target-health --target-group-arn {own}` (`unhealthy`: the \
                         control-plane instances must accept TCP 6443 from the internal load \
                         balancer's security group and their API server must answer; \
                         `unused`: a target in an availability zone the internal load \
                         balancer has no subnet in, or a stopped instance; `initial`: health \
                         checks still running), then run the apply again",
                        HEALTHY_LIMIT.as_secs(),
                        states.describe()
                    ),
                ));
            }
            Ok(None)
        },
    )
    .await
}

/// Rewrites the zone's SOA with [`NEGATIVE_TTL`] as its TTL and its
/// minimum (the last of its fields), keeping the rest as Route53 made it.
async fn shorten_negative_ttl(
    provider: &AwsProvider,
    key: &ResourceKey,
    id: &str,
    name: &str,
) -> Result<()> {
    let listed = provider
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(id)
        .start_record_name(name)
        .start_record_type(RrType::Soa)
        .max_items(1)
        .send()
        .await
        .map_err(|error| aws_error("route53:ListResourceRecordSets", name, error))?;
    let Some(soa) = listed
        .resource_record_sets()
        .iter()
        .find(|record| record.r#type() == &RrType::Soa)
    else {
        return Ok(());
    };
    let Some(value) = soa.resource_records().first().map(ResourceRecord::value) else {
        return Ok(());
    };
    let mut fields: Vec<&str> = value.split_whitespace().collect();
    if fields.len() != 7 {
        return Ok(());
    }
    let minimum = NEGATIVE_TTL.to_string();
    fields[6] = &minimum;
    let build_error = |error: aws_sdk_route53::error::BuildError| {
        ProviderError::other(
            "route53:ChangeResourceRecordSets",
            key.as_str(),
            error.to_string(),
        )
    };
    let record = ResourceRecordSet::builder()
        .name(soa.name())
        .r#type(RrType::Soa)
        .ttl(NEGATIVE_TTL)
        .resource_records(
            ResourceRecord::builder()
                .value(fields.join(" "))
                .build()
                .map_err(build_error)?,
        )
        .build()
        .map_err(build_error)?;
    let batch = ChangeBatch::builder()
        .changes(
            Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(record)
                .build()
                .map_err(build_error)?,
        )
        .comment(format!("skiff: {key}: negative TTL"))
        .build()
        .map_err(build_error)?;
    retry(&provider.retry, || async {
        provider
            .route53
            .change_resource_record_sets()
            .hosted_zone_id(id)
            .change_batch(batch.clone())
            .send()
            .await
            .map_err(|error| aws_error("route53:ChangeResourceRecordSets", name, error))
    })
    .await?;
    Ok(())
}

/// The private zone named `zone.name` with `zone.comment`, if any.
async fn existing_zone(
    provider: &AwsProvider,
    zone: &HostedZoneAttributes,
) -> Result<Option<String>> {
    let listed = provider
        .route53
        .list_hosted_zones_by_name()
        .dns_name(&zone.name)
        .send()
        .await
        .map_err(|error| aws_error("route53:ListHostedZonesByName", &zone.name, error))?;
    Ok(listed
        .hosted_zones()
        .iter()
        .find(|found| {
            found
                .name()
                .trim_end_matches('.')
                .eq_ignore_ascii_case(&zone.name)
                && found.config().is_some_and(|config| {
                    config.private_zone() && config.comment() == Some(zone.comment.as_str())
                })
        })
        .map(|found| found.id().trim_start_matches("/hostedzone/").to_string()))
}

/// Deletes the private zone. Route53 refuses while it holds records other
/// than its SOA and NS (`HostedZoneNotEmpty`): the teardown deletes its
/// record first (`skiff_plans::teardown`), and the error is returned as
/// AWS gives it otherwise.
pub(crate) async fn delete_hosted_zone(provider: &AwsProvider, id: &str) -> Result<()> {
    retry(&provider.retry, || async {
        provider
            .route53
            .delete_hosted_zone()
            .id(id)
            .send()
            .await
            .map_err(|error| aws_error("route53:DeleteHostedZone", id, error))
    })
    .await?;
    Ok(())
}
