//! Key pair, launch templates and auto scaling groups.
//!
//! A launch template change is a new version, made the default, and the
//! auto scaling group is pointed at that exact version number: what the
//! group launches is always explicit, and the previous version stays for
//! comparison and rollback. Instances already running keep their version
//! until `skiff rolling-update cluster` replaces them.

use std::time::Duration;

use aws_sdk_autoscaling::types::{
    InstancesDistribution, LaunchTemplate, LaunchTemplateOverrides, LaunchTemplateSpecification,
    MixedInstancesPolicy,
};
use aws_sdk_ec2::primitives::Blob;
use aws_sdk_ec2::types::{
    InstanceType, LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    LaunchTemplateHttpTokensState, LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMarketOptionsRequest, LaunchTemplateInstanceMetadataEndpointState,
    LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateInstanceNetworkInterfaceSpecificationRequest,
    LaunchTemplateSpotMarketOptionsRequest, LaunchTemplateTagSpecificationRequest, MarketType,
    RequestLaunchTemplateData, ResourceType, VolumeType,
};
use skiff_plans::resource::{
    AutoScalingGroupAttributes, KeyPairAttributes, LaunchTemplateAttributes, ResourceKey, Tags,
};
use skiff_plans::Output;

use super::{client_token, value, values, wait_for, Applied};
use crate::error::{aws_error, ProviderError, Result};
use crate::retry::retry;
use crate::tags::{changes, ec2_spec, to_ec2};
use crate::AwsProvider;

pub(crate) async fn create_key_pair(
    provider: &AwsProvider,
    key: &ResourceKey,
    pair: &KeyPairAttributes,
) -> Result<Applied> {
    let output = retry(&provider.retry, || async {
        provider
            .ec2
            .import_key_pair()
            .key_name(&pair.name)
            .public_key_material(Blob::new(pair.public_key.as_bytes()))
            .tag_specifications(ec2_spec(ResourceType::KeyPair, &pair.tags))
            .send()
            .await
            .map_err(|error| aws_error("ec2:ImportKeyPair", key.as_str(), error))
    })
    .await?;
    let id = output.key_pair_id().unwrap_or(&pair.name);
    Ok(Applied::with_id(id).output(Output::Name, &pair.name))
}

pub(crate) async fn update_key_pair(
    provider: &AwsProvider,
    id: &str,
    before: &KeyPairAttributes,
    after: &KeyPairAttributes,
) -> Result<Applied> {
    super::network::update_tags(provider, id, &before.tags, &after.tags).await?;
    Ok(Applied::with_id(id).output(Output::Name, &after.name))
}

pub(crate) async fn delete_key_pair(
    provider: &AwsProvider,
    pair: &KeyPairAttributes,
) -> Result<()> {
    retry(&provider.retry, || async {
        provider
            .ec2
            .delete_key_pair()
            .key_name(&pair.name)
            .send()
            .await
            .map_err(|error| aws_error("ec2:DeleteKeyPair", &pair.name, error))
    })
    .await?;
    Ok(())
}

fn template_data(
    key: &ResourceKey,
    template: &LaunchTemplateAttributes,
) -> Result<RequestLaunchTemplateData> {
    let volume = &template.root_volume;
    let mut ebs = LaunchTemplateEbsBlockDeviceRequest::builder()
        .volume_size(i32::try_from(volume.size).unwrap_or(i32::MAX))
        .volume_type(VolumeType::from(volume.volume_type.as_str()))
        .encrypted(volume.encrypted)
        .delete_on_termination(true);
    if let Some(iops) = volume.iops {
        ebs = ebs.iops(i32::try_from(iops).unwrap_or(i32::MAX));
    }
    if let Some(throughput) = volume.throughput {
        ebs = ebs.throughput(i32::try_from(throughput).unwrap_or(i32::MAX));
    }
    let tag_specification = |resource_type: ResourceType, tags: &Tags| {
        LaunchTemplateTagSpecificationRequest::builder()
            .resource_type(resource_type)
            .set_tags(Some(to_ec2(tags)))
            .build()
    };
    let security_groups = values(key, "securityGroups", &template.security_groups)?;
    let mut data = RequestLaunchTemplateData::builder()
        .image_id(&template.image_id)
        .instance_type(InstanceType::from(template.instance_type.as_str()));
    // A fixed address is the primary interface's (the subnet is the auto
    // scaling group's); EC2 then takes the security groups from the
    // interface, not from the template.
    data = match &template.private_ip {
        Some(address) => data.network_interfaces(
            LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                .device_index(0)
                .private_ip_address(address)
                .set_groups(Some(security_groups))
                .delete_on_termination(true)
                .build(),
        ),
        None => data.set_security_group_ids(Some(security_groups)),
    };
    let mut data = data
        .user_data(
            // The document with the script's loader in its place: the engine
            // stores the script before any instance launches.
            skiff_templates::ec2_user_data(&template.user_data)
                .and_then(|ec2| skiff_templates::encode_user_data(&ec2.text))
                .map_err(|error| {
                    ProviderError::other(
                        "ec2:CreateLaunchTemplate",
                        key.as_str(),
                        format!("encoding the user-data: {error}"),
                    )
                })?,
        )
        .block_device_mappings(
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name(&volume.device_name)
                .ebs(ebs.build())
                .build(),
        )
        .metadata_options(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
                .http_tokens(if template.http_tokens_required {
                    LaunchTemplateHttpTokensState::Required
                } else {
                    LaunchTemplateHttpTokensState::Optional
                })
                .http_put_response_hop_limit(
                    i32::try_from(template.http_put_response_hop_limit).unwrap_or(1),
                )
                .build(),
        )
        .tag_specifications(tag_specification(
            ResourceType::Instance,
            &template.instance_tags,
        ))
        .tag_specifications(tag_specification(
            ResourceType::Volume,
            &template.instance_tags,
        ));
    if let Some(key_name) = &template.key_name {
        data = data.key_name(value(key, "keyName", key_name)?);
    }
    if let Some(profile) = &template.instance_profile {
        data = data.iam_instance_profile(
            LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                .arn(value(key, "instanceProfile", profile)?)
                .build(),
        );
    }
    if template.spot {
        let mut spot = LaunchTemplateSpotMarketOptionsRequest::builder();
        if let Some(price) = &template.spot_max_price {
            spot = spot.max_price(price);
        }
        data = data.instance_market_options(
            LaunchTemplateInstanceMarketOptionsRequest::builder()
                .market_type(MarketType::Spot)
                .spot_options(spot.build())
                .build(),
        );
    }
    Ok(data.build())
}

/// A client token from the content, so a create retried after a lost
/// answer is recognised by EC2 instead of making a second template.
pub(crate) async fn create_launch_template(
    provider: &AwsProvider,
    key: &ResourceKey,
    template: &LaunchTemplateAttributes,
    intent: &str,
) -> Result<Applied> {
    let data = template_data(key, template)?;
    let content = serde_json::to_string(template).unwrap_or_default();
    let token = client_token(intent, key, &[&content]);
    let output = retry(&provider.retry, || async {
        provider
            .ec2
            .create_launch_template()
            .launch_template_name(&template.name)
            .launch_template_data(data.clone())
            .client_token(&token)
            .tag_specifications(ec2_spec(ResourceType::LaunchTemplate, &template.tags))
            .send()
            .await
            .map_err(|error| aws_error("ec2:CreateLaunchTemplate", key.as_str(), error))
    })
    .await?;
    let created = output.launch_template().ok_or_else(|| {
        ProviderError::other(
            "ec2:CreateLaunchTemplate",
            key.as_str(),
            "no template in the answer",
        )
    })?;
    let id = created.launch_template_id().unwrap_or_default();
    let version = created.latest_version_number().unwrap_or(1).to_string();
    Ok(Applied::with_id(id)
        .output(Output::Name, &template.name)
        .output(Output::LatestVersion, &version))
}

pub(crate) async fn update_launch_template(
    provider: &AwsProvider,
    key: &ResourceKey,
    id: &str,
    before: &LaunchTemplateAttributes,
    after: &LaunchTemplateAttributes,
) -> Result<Applied> {
    super::network::update_tags(provider, id, &before.tags, &after.tags).await?;
    let mut applied = Applied::with_id(id).output(Output::Name, &after.name);
    if before.data_differs(after) {
        let data = template_data(key, after)?;
        let output = retry(&provider.retry, || async {
            provider
                .ec2
                .create_launch_template_version()
                .launch_template_id(id)
                .launch_template_data(data.clone())
                .send()
                .await
                .map_err(|error| aws_error("ec2:CreateLaunchTemplateVersion", key.as_str(), error))
        })
        .await?;
        let version = output
            .launch_template_version()
            .and_then(|version| version.version_number())
            .ok_or_else(|| {
                ProviderError::other(
                    "ec2:CreateLaunchTemplateVersion",
                    key.as_str(),
                    "no version in the answer",
                )
            })?
            .to_string();
        retry(&provider.retry, || async {
            provider
                .ec2
                .modify_launch_template()
                .launch_template_id(id)
                .default_version(&version)
                .send()
                .await
                .map_err(|error| aws_error("ec2:ModifyLaunchTemplate", key.as_str(), error))
        })
        .await?;
        applied = applied.output(Output::LatestVersion, &version);
    }
    Ok(applied)
}

pub(crate) async fn delete_launch_template(provider: &AwsProvider, id: &str) -> Result<()> {
    retry(&provider.retry, || async {
        provider
            .ec2
            .delete_launch_template()
            .launch_template_id(id)
            .send()
            .await
            .map_err(|error| aws_error("ec2:DeleteLaunchTemplate", id, error))
    })
    .await?;
    Ok(())
}

fn template_specification(
    key: &ResourceKey,
    group: &AutoScalingGroupAttributes,
) -> Result<LaunchTemplateSpecification> {
    Ok(LaunchTemplateSpecification::builder()
        .launch_template_id(value(key, "launchTemplate", &group.launch_template)?)
        .version(value(
            key,
            "launchTemplateVersion",
            &group.launch_template_version,
        )?)
        .build())
}

fn mixed_policy(
    key: &ResourceKey,
    group: &AutoScalingGroupAttributes,
) -> Result<Option<MixedInstancesPolicy>> {
    let Some(mixed) = &group.mixed_instances else {
        return Ok(None);
    };
    let overrides: Vec<LaunchTemplateOverrides> = mixed
        .instance_types
        .iter()
        .map(|instance_type| {
            LaunchTemplateOverrides::builder()
                .instance_type(instance_type)
                .build()
        })
        .collect();
    Ok(Some(
        MixedInstancesPolicy::builder()
            .launch_template(
                LaunchTemplate::builder()
                    .launch_template_specification(template_specification(key, group)?)
                    .set_overrides(Some(overrides))
                    .build(),
            )
            .instances_distribution(
                InstancesDistribution::builder()
                    .on_demand_base_capacity(
                        i32::try_from(mixed.on_demand_base_capacity).unwrap_or(0),
                    )
                    .on_demand_percentage_above_base_capacity(
                        i32::try_from(mixed.on_demand_percentage_above_base).unwrap_or(100),
                    )
                    .spot_allocation_strategy(&mixed.spot_allocation_strategy)
                    .build(),
            )
            .build(),
    ))
}

fn group_tags(name: &str, tags: &Tags) -> Vec<aws_sdk_autoscaling::types::Tag> {
    tags.iter()
        .map(|(key, value)| {
            aws_sdk_autoscaling::types::Tag::builder()
                .key(key)
                .value(value)
                .propagate_at_launch(true)
                .resource_id(name)
                .resource_type("auto-scaling-group")
                .build()
        })
        .collect()
}

fn size(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

pub(crate) async fn create_auto_scaling_group(
    provider: &AwsProvider,
    key: &ResourceKey,
    group: &AutoScalingGroupAttributes,
) -> Result<Applied> {
    let subnets = values(key, "subnets", &group.subnets)?.join(",");
    let target_groups = values(key, "targetGroups", &group.target_groups)?;
    let mixed = mixed_policy(key, group)?;
    let template = if mixed.is_none() {
        Some(template_specification(key, group)?)
    } else {
        None
    };
    let result = retry(&provider.retry, || async {
        provider
            .autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name(&group.name)
            .set_launch_template(template.clone())
            .set_mixed_instances_policy(mixed.clone())
            .min_size(size(group.min_size))
            .max_size(size(group.max_size))
            .desired_capacity(size(group.min_size))
            .health_check_type(&group.health_check_type)
            .health_check_grace_period(size(group.health_check_grace_period))
            .vpc_zone_identifier(&subnets)
            .set_target_group_arns((!target_groups.is_empty()).then(|| target_groups.clone()))
            .set_tags(Some(group_tags(&group.name, &group.tags)))
            .send()
            .await
            .map_err(|error| aws_error("autoscaling:CreateAutoScalingGroup", key.as_str(), error))
    })
    .await;
    match result {
        Ok(_) => {}
        // Created by an earlier, interrupted run: bring it in line instead.
        Err(error) if error.code.as_deref() == Some("AlreadyExists") => {}
        Err(error) => return Err(error),
    }
    Ok(Applied::with_id(&group.name).output(Output::Name, &group.name))
}

pub(crate) async fn update_auto_scaling_group(
    provider: &AwsProvider,
    key: &ResourceKey,
    before: &AutoScalingGroupAttributes,
    after: &AutoScalingGroupAttributes,
) -> Result<Applied> {
    let name = &after.name;
    let core_changed = before.core_differs(after);
    if core_changed {
        // Keep the desired capacity the autoscaler chose, within the new bounds.
        let current = provider
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .map_err(|error| aws_error("autoscaling:DescribeAutoScalingGroups", name, error))?;
        let desired = current
            .auto_scaling_groups()
            .first()
            .and_then(|group| group.desired_capacity())
            .unwrap_or(size(after.min_size))
            .clamp(size(after.min_size), size(after.max_size));
        let mixed = mixed_policy(key, after)?;
        let template = if mixed.is_none() {
            Some(template_specification(key, after)?)
        } else {
            None
        };
        let subnets = values(key, "subnets", &after.subnets)?.join(",");
        retry(&provider.retry, || async {
            provider
                .autoscaling
                .update_auto_scaling_group()
                .auto_scaling_group_name(name)
                .set_launch_template(template.clone())
                .set_mixed_instances_policy(mixed.clone())
                .min_size(size(after.min_size))
                .max_size(size(after.max_size))
                .desired_capacity(desired)
                .health_check_type(&after.health_check_type)
                .health_check_grace_period(size(after.health_check_grace_period))
                .vpc_zone_identifier(&subnets)
                .send()
                .await
                .map_err(|error| {
                    aws_error("autoscaling:UpdateAutoScalingGroup", key.as_str(), error)
                })
        })
        .await?;
    }
    let wanted = values(key, "targetGroups", &after.target_groups)?;
    let current: Vec<String> = before
        .target_groups
        .iter()
        .filter_map(|arn| arn.value().map(str::to_string))
        .collect();
    let attach: Vec<String> = wanted
        .iter()
        .filter(|arn| !current.contains(arn))
        .cloned()
        .collect();
    let detach: Vec<String> = current
        .iter()
        .filter(|arn| !wanted.contains(arn))
        .cloned()
        .collect();
    if !attach.is_empty() {
        retry(&provider.retry, || async {
            provider
                .autoscaling
                .attach_load_balancer_target_groups()
                .auto_scaling_group_name(name)
                .set_target_group_arns(Some(attach.clone()))
                .send()
                .await
                .map_err(|error| {
                    aws_error(
                        "autoscaling:AttachLoadBalancerTargetGroups",
                        key.as_str(),
                        error,
                    )
                })
        })
        .await?;
    }
    if !detach.is_empty() {
        retry(&provider.retry, || async {
            provider
                .autoscaling
                .detach_load_balancer_target_groups()
                .auto_scaling_group_name(name)
                .set_target_group_arns(Some(detach.clone()))
                .send()
                .await
                .map_err(|error| {
                    aws_error(
                        "autoscaling:DetachLoadBalancerTargetGroups",
                        key.as_str(),
                        error,
                    )
                })
        })
        .await?;
    }
    let (set, removed) = changes(&before.tags, &after.tags);
    if !set.is_empty() {
        retry(&provider.retry, || async {
            provider
                .autoscaling
                .create_or_update_tags()
                .set_tags(Some(group_tags(name, &set)))
                .send()
                .await
                .map_err(|error| aws_error("autoscaling:CreateOrUpdateTags", key.as_str(), error))
        })
        .await?;
    }
    if !removed.is_empty() {
        let tags: Vec<aws_sdk_autoscaling::types::Tag> = removed
            .iter()
            .map(|tag| {
                aws_sdk_autoscaling::types::Tag::builder()
                    .key(tag)
                    .resource_id(name)
                    .resource_type("auto-scaling-group")
                    .build()
            })
            .collect();
        retry(&provider.retry, || async {
            provider
                .autoscaling
                .delete_tags()
                .set_tags(Some(tags.clone()))
                .send()
                .await
                .map_err(|error| aws_error("autoscaling:DeleteTags", key.as_str(), error))
        })
        .await?;
    }
    Ok(Applied::with_id(name).output(Output::Name, name))
}

pub(crate) async fn delete_auto_scaling_group(
    provider: &AwsProvider,
    group: &AutoScalingGroupAttributes,
) -> Result<()> {
    let name = &group.name;
    let result = retry(&provider.retry, || async {
        provider
            .autoscaling
            .delete_auto_scaling_group()
            .auto_scaling_group_name(name)
            .force_delete(true)
            .send()
            .await
            .map_err(|error| aws_error("autoscaling:DeleteAutoScalingGroup", name, error))
    })
    .await;
    match result {
        Ok(_) => {}
        Err(error) if error.is_missing() || error.message.contains("not found") => return Ok(()),
        Err(error) => return Err(error),
    }
    // On AWS a force-deleted group stays ("Delete in progress") until its
    // instances are terminated, and they hold network interfaces in the
    // cluster's subnets and security groups: wait until the group is gone
    // (terraform-provider-aws waits the same way, `waitGroupDeleted`).
    // Instances still shutting down after that are waited for by the
    // subnet and security group deletes (`holders`).
    wait_for(
        "autoscaling:DescribeAutoScalingGroups",
        name,
        Duration::from_secs(60),
        Duration::from_secs(1200),
        || async {
            let output = provider
                .autoscaling
                .describe_auto_scaling_groups()
                .auto_scaling_group_names(name)
                .send()
                .await
                .map_err(|error| aws_error("autoscaling:DescribeAutoScalingGroups", name, error))?;
            Ok(output.auto_scaling_groups().is_empty().then_some(()))
        },
    )
    .await
}
