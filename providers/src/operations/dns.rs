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
    for arn in values(key, "serves", &zone.serves)? {
        if arn.contains(":loadbalancer/") {
            wait_until_active(provider, key, &arn, &zone.name).await?;
        }
    }
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
/// that time. The control-plane groups register with its target group in
/// the same apply, and their targets pass its health checks (seconds) well
/// within the balancer's own provisioning.
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
