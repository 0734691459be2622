//! The API's network load balancer, target group and listener.

use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, LoadBalancerSchemeEnum, LoadBalancerStateEnum, LoadBalancerTypeEnum,
    ProtocolEnum, TargetGroupAttribute, TargetTypeEnum,
};
use skiff_plans::resource::{
    ListenerAttributes, LoadBalancerAttributes, ResourceKey, TargetGroupAttributes,
};
use skiff_plans::Output;

use super::{value, values, wait_for, Applied};
use crate::error::{aws_error, ProviderError, Result};
use crate::retry::retry;
use crate::tags::{changes, to_elb};
use crate::AwsProvider;

async fn update_elb_tags(
    provider: &AwsProvider,
    arn: &str,
    before: &skiff_plans::resource::Tags,
    after: &skiff_plans::resource::Tags,
) -> Result<()> {
    let (set, removed) = changes(before, after);
    if !set.is_empty() {
        retry(&provider.retry, || async {
            provider
                .elb
                .add_tags()
                .resource_arns(arn)
                .set_tags(Some(to_elb(&set)))
                .send()
                .await
                .map_err(|error| aws_error("elasticloadbalancing:AddTags", arn, error))
        })
        .await?;
    }
    if !removed.is_empty() {
        retry(&provider.retry, || async {
            provider
                .elb
                .remove_tags()
                .resource_arns(arn)
                .set_tag_keys(Some(removed.clone()))
                .send()
                .await
                .map_err(|error| aws_error("elasticloadbalancing:RemoveTags", arn, error))
        })
        .await?;
    }
    Ok(())
}

pub(crate) async fn create_load_balancer(
    provider: &AwsProvider,
    key: &ResourceKey,
    balancer: &LoadBalancerAttributes,
) -> Result<Applied> {
    let subnets = values(key, "subnets", &balancer.subnets)?;
    let groups = values(key, "securityGroups", &balancer.security_groups)?;
    let output = retry(&provider.retry, || async {
        provider
            .elb
            .create_load_balancer()
            .name(&balancer.name)
            .r#type(LoadBalancerTypeEnum::Network)
            .scheme(LoadBalancerSchemeEnum::from(balancer.scheme.as_str()))
            .set_subnets(Some(subnets.clone()))
            .set_security_groups(Some(groups.clone()))
            .set_tags(Some(to_elb(&balancer.tags)))
            .send()
            .await
            .map_err(|error| {
                aws_error(
                    "elasticloadbalancing:CreateLoadBalancer",
                    key.as_str(),
                    error,
                )
            })
    })
    .await?;
    let created = output.load_balancers().first().ok_or_else(|| {
        ProviderError::other(
            "elasticloadbalancing:CreateLoadBalancer",
            key.as_str(),
            "no load balancer in the answer",
        )
    })?;
    let arn = created.load_balancer_arn().unwrap_or_default().to_string();
    let dns_name = created.dns_name().unwrap_or_default().to_lowercase();
    let zone = created
        .canonical_hosted_zone_id()
        .unwrap_or_default()
        .to_string();
    wait_for(
        "elasticloadbalancing:DescribeLoadBalancers",
        &arn,
        Duration::from_secs(900),
        || async {
            let output = provider
                .elb
                .describe_load_balancers()
                .load_balancer_arns(&arn)
                .send()
                .await
                .map_err(|error| {
                    aws_error("elasticloadbalancing:DescribeLoadBalancers", &arn, error)
                })?;
            let state = output
                .load_balancers()
                .first()
                .and_then(|balancer| balancer.state())
                .and_then(|state| state.code())
                .cloned();
            match state {
                Some(LoadBalancerStateEnum::Active) | None => Ok(Some(())),
                Some(LoadBalancerStateEnum::Failed) => Err(ProviderError::other(
                    "elasticloadbalancing:CreateLoadBalancer",
                    &arn,
                    "the load balancer failed to provision",
                )),
                _ => Ok(None),
            }
        },
    )
    .await?;
    Ok(Applied::with_id(&arn)
        .output(Output::Arn, &arn)
        .output(Output::DnsName, &dns_name)
        .output(Output::CanonicalZone, &zone))
}

pub(crate) async fn update_load_balancer(
    provider: &AwsProvider,
    key: &ResourceKey,
    arn: &str,
    before: &LoadBalancerAttributes,
    after: &LoadBalancerAttributes,
) -> Result<Applied> {
    if before.subnets != after.subnets {
        let subnets = values(key, "subnets", &after.subnets)?;
        retry(&provider.retry, || async {
            provider
                .elb
                .set_subnets()
                .load_balancer_arn(arn)
                .set_subnets(Some(subnets.clone()))
                .send()
                .await
                .map_err(|error| aws_error("elasticloadbalancing:SetSubnets", arn, error))
        })
        .await?;
    }
    if before.security_groups != after.security_groups {
        let groups = values(key, "securityGroups", &after.security_groups)?;
        retry(&provider.retry, || async {
            provider
                .elb
                .set_security_groups()
                .load_balancer_arn(arn)
                .set_security_groups(Some(groups.clone()))
                .send()
                .await
                .map_err(|error| aws_error("elasticloadbalancing:SetSecurityGroups", arn, error))
        })
        .await?;
    }
    update_elb_tags(provider, arn, &before.tags, &after.tags).await?;
    Ok(Applied::with_id(arn).output(Output::Arn, arn))
}

pub(crate) async fn delete_load_balancer(provider: &AwsProvider, arn: &str) -> Result<()> {
    retry(&provider.retry, || async {
        provider
            .elb
            .delete_load_balancer()
            .load_balancer_arn(arn)
            .send()
            .await
            .map_err(|error| aws_error("elasticloadbalancing:DeleteLoadBalancer", arn, error))
    })
    .await?;
    wait_for(
        "elasticloadbalancing:DescribeLoadBalancers",
        arn,
        Duration::from_secs(600),
        || async {
            match provider
                .elb
                .describe_load_balancers()
                .load_balancer_arns(arn)
                .send()
                .await
            {
                Ok(output) => Ok(output.load_balancers().is_empty().then_some(())),
                Err(error) => {
                    let error = aws_error("elasticloadbalancing:DescribeLoadBalancers", arn, error);
                    if error.is_missing() {
                        Ok(Some(()))
                    } else {
                        Err(error)
                    }
                }
            }
        },
    )
    .await
}

async fn set_target_group_attributes(
    provider: &AwsProvider,
    arn: &str,
    target: &TargetGroupAttributes,
) -> Result<()> {
    let attributes = vec![
        TargetGroupAttribute::builder()
            .key("preserve_client_ip.enabled")
            .value(target.preserve_client_ip.to_string())
            .build(),
        TargetGroupAttribute::builder()
            .key("deregistration_delay.timeout_seconds")
            .value(target.deregistration_delay_seconds.to_string())
            .build(),
    ];
    retry(&provider.retry, || async {
        provider
            .elb
            .modify_target_group_attributes()
            .target_group_arn(arn)
            .set_attributes(Some(attributes.clone()))
            .send()
            .await
            .map_err(|error| {
                aws_error(
                    "elasticloadbalancing:ModifyTargetGroupAttributes",
                    arn,
                    error,
                )
            })
    })
    .await?;
    Ok(())
}

pub(crate) async fn create_target_group(
    provider: &AwsProvider,
    key: &ResourceKey,
    target: &TargetGroupAttributes,
) -> Result<Applied> {
    let vpc = value(key, "vpc", &target.vpc)?;
    let output = retry(&provider.retry, || async {
        provider
            .elb
            .create_target_group()
            .name(&target.name)
            .protocol(ProtocolEnum::from(target.protocol.as_str()))
            .port(i32::from(target.port))
            .vpc_id(vpc)
            .target_type(TargetTypeEnum::Instance)
            .health_check_protocol(ProtocolEnum::from(target.health_check_protocol.as_str()))
            .health_check_path(&target.health_check_path)
            .set_tags(Some(to_elb(&target.tags)))
            .send()
            .await
            .map_err(|error| {
                aws_error(
                    "elasticloadbalancing:CreateTargetGroup",
                    key.as_str(),
                    error,
                )
            })
    })
    .await?;
    let arn = output
        .target_groups()
        .first()
        .and_then(|created| created.target_group_arn())
        .ok_or_else(|| {
            ProviderError::other(
                "elasticloadbalancing:CreateTargetGroup",
                key.as_str(),
                "no target group in the answer",
            )
        })?
        .to_string();
    set_target_group_attributes(provider, &arn, target).await?;
    Ok(Applied::with_id(&arn)
        .output(Output::Arn, &arn)
        .output(Output::Name, &target.name))
}

pub(crate) async fn update_target_group(
    provider: &AwsProvider,
    arn: &str,
    before: &TargetGroupAttributes,
    after: &TargetGroupAttributes,
) -> Result<Applied> {
    if before.health_check_protocol != after.health_check_protocol
        || before.health_check_path != after.health_check_path
    {
        retry(&provider.retry, || async {
            provider
                .elb
                .modify_target_group()
                .target_group_arn(arn)
                .health_check_protocol(ProtocolEnum::from(after.health_check_protocol.as_str()))
                .health_check_path(&after.health_check_path)
                .send()
                .await
                .map_err(|error| aws_error("elasticloadbalancing:ModifyTargetGroup", arn, error))
        })
        .await?;
    }
    if before.preserve_client_ip != after.preserve_client_ip
        || before.deregistration_delay_seconds != after.deregistration_delay_seconds
    {
        set_target_group_attributes(provider, arn, after).await?;
    }
    update_elb_tags(provider, arn, &before.tags, &after.tags).await?;
    Ok(Applied::with_id(arn)
        .output(Output::Arn, arn)
        .output(Output::Name, &after.name))
}

pub(crate) async fn delete_target_group(provider: &AwsProvider, arn: &str) -> Result<()> {
    retry(&provider.retry, || async {
        provider
            .elb
            .delete_target_group()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(|error| aws_error("elasticloadbalancing:DeleteTargetGroup", arn, error))
    })
    .await?;
    Ok(())
}

fn forward(key: &ResourceKey, listener: &ListenerAttributes) -> Result<Action> {
    Ok(Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(value(key, "targetGroup", &listener.target_group)?)
        .build())
}

pub(crate) async fn create_listener(
    provider: &AwsProvider,
    key: &ResourceKey,
    listener: &ListenerAttributes,
) -> Result<Applied> {
    let balancer = value(key, "loadBalancer", &listener.load_balancer)?;
    let action = forward(key, listener)?;
    let output = retry(&provider.retry, || async {
        provider
            .elb
            .create_listener()
            .load_balancer_arn(balancer)
            .protocol(ProtocolEnum::from(listener.protocol.as_str()))
            .port(i32::from(listener.port))
            .default_actions(action.clone())
            .send()
            .await
            .map_err(|error| aws_error("elasticloadbalancing:CreateListener", key.as_str(), error))
    })
    .await?;
    let arn = output
        .listeners()
        .first()
        .and_then(|created| created.listener_arn())
        .ok_or_else(|| {
            ProviderError::other(
                "elasticloadbalancing:CreateListener",
                key.as_str(),
                "no listener in the answer",
            )
        })?
        .to_string();
    Ok(Applied::with_id(&arn).output(Output::Arn, &arn))
}

pub(crate) async fn update_listener(
    provider: &AwsProvider,
    key: &ResourceKey,
    arn: &str,
    after: &ListenerAttributes,
) -> Result<Applied> {
    let action = forward(key, after)?;
    retry(&provider.retry, || async {
        provider
            .elb
            .modify_listener()
            .listener_arn(arn)
            .protocol(ProtocolEnum::from(after.protocol.as_str()))
            .port(i32::from(after.port))
            .default_actions(action.clone())
            .send()
            .await
            .map_err(|error| aws_error("elasticloadbalancing:ModifyListener", key.as_str(), error))
    })
    .await?;
    Ok(Applied::with_id(arn).output(Output::Arn, arn))
}

pub(crate) async fn delete_listener(provider: &AwsProvider, arn: &str) -> Result<()> {
    retry(&provider.retry, || async {
        provider
            .elb
            .delete_listener()
            .listener_arn(arn)
            .send()
            .await
            .map_err(|error| aws_error("elasticloadbalancing:DeleteListener", arn, error))
    })
    .await?;
    Ok(())
}
