//! Auto scaling groups: one filtered, paginated call.

use aws_sdk_autoscaling::types::Filter;
use skiff_plans::resource::{
    Attributes, AutoScalingGroupAttributes, Id, MixedInstancesAttributes, ResourceKind,
};
use skiff_plans::{names, ObservedResource, Output};

use super::{outputs, RefreshScope};
use crate::error::{aws_error, Result};
use crate::tags::ours;
use crate::AwsProvider;

pub(super) async fn refresh(
    provider: &AwsProvider,
    scope: &RefreshScope,
) -> Result<Vec<ObservedResource>> {
    let mut found = Vec::new();
    let mut pages = provider
        .autoscaling
        .describe_auto_scaling_groups()
        .filters(
            Filter::builder()
                .name(format!("tag:{}", names::ownership_tag(&scope.cluster)))
                .values("owned")
                .build(),
        )
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| {
            aws_error(
                "autoscaling:DescribeAutoScalingGroups",
                &scope.cluster,
                error,
            )
        })?;
        for group in page.auto_scaling_groups() {
            // A group being deleted is gone for planning purposes.
            if group
                .status()
                .is_some_and(|status| status.contains("Delete"))
            {
                continue;
            }
            let tags = ours(
                group
                    .tags()
                    .iter()
                    .filter_map(|tag| Some((tag.key()?, tag.value().unwrap_or_default()))),
            );
            let Some(key) = scope.key_of(ResourceKind::AutoScalingGroup, &tags) else {
                continue;
            };
            let name = group.auto_scaling_group_name().unwrap_or_default();
            let mixed = group.mixed_instances_policy();
            let template = group.launch_template().or_else(|| {
                mixed
                    .and_then(|policy| policy.launch_template())
                    .and_then(|template| template.launch_template_specification())
            });
            let mut subnets: Vec<Id> = group
                .vpc_zone_identifier()
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|subnet| !subnet.is_empty())
                .map(Id::from)
                .collect();
            subnets.sort();
            let mut target_groups: Vec<Id> = group
                .target_group_arns()
                .iter()
                .map(|arn| Id::from(arn.as_str()))
                .collect();
            target_groups.sort();
            let mixed_instances = mixed.map(|policy| {
                let distribution = policy.instances_distribution();
                MixedInstancesAttributes {
                    instance_types: policy
                        .launch_template()
                        .map(|template| {
                            template
                                .overrides()
                                .iter()
                                .filter_map(|item| item.instance_type().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                    on_demand_base_capacity: distribution
                        .and_then(|distribution| distribution.on_demand_base_capacity())
                        .and_then(|value| u32::try_from(value).ok())
                        .unwrap_or(0),
                    on_demand_percentage_above_base: distribution
                        .and_then(|distribution| {
                            distribution.on_demand_percentage_above_base_capacity()
                        })
                        .and_then(|value| u32::try_from(value).ok())
                        .unwrap_or(100),
                    spot_allocation_strategy: distribution
                        .and_then(|distribution| distribution.spot_allocation_strategy())
                        .unwrap_or("price-capacity-optimized")
                        .to_string(),
                }
            });
            let mut attributes = Attributes::AutoScalingGroup(AutoScalingGroupAttributes {
                name: name.to_string(),
                launch_template: Id::from(
                    template
                        .and_then(|template| template.launch_template_id())
                        .unwrap_or_default(),
                ),
                launch_template_version: Id::from(
                    template
                        .and_then(|template| template.version())
                        .unwrap_or_default(),
                ),
                min_size: group
                    .min_size()
                    .and_then(|size| u32::try_from(size).ok())
                    .unwrap_or(0),
                max_size: group
                    .max_size()
                    .and_then(|size| u32::try_from(size).ok())
                    .unwrap_or(0),
                subnets,
                target_groups,
                mixed_instances,
                health_check_type: group
                    .health_check_type()
                    .map(str::to_string)
                    .unwrap_or_else(skiff_plans::resource::default_health_check_type),
                health_check_grace_period: group
                    .health_check_grace_period()
                    .and_then(|seconds| u32::try_from(seconds).ok())
                    .unwrap_or_else(skiff_plans::resource::default_health_check_grace_period),
                tags,
            });
            attributes.normalize();
            let arn = group.auto_scaling_group_arn().unwrap_or_default();
            found.push(ObservedResource {
                key,
                id: name.to_string(),
                attributes,
                outputs: outputs(&[(Output::Id, name), (Output::Name, name), (Output::Arn, arn)]),
            });
        }
    }
    Ok(found)
}
