//! The AWS side of a rolling update: what each group's instances run, and
//! the two levers (desired capacity, terminating an instance). This is the
//! real implementation of [`GroupOperations`]; the roller never calls AWS
//! any other way.
//!
//! An instance's launch-template version comes from the
//! `aws:ec2launchtemplate:version` tag EC2 puts on every instance launched
//! from a template; the auto scaling group's own per-instance field is used
//! only when the tag is missing. Groups are described in batches: one Auto
//! Scaling call and one EC2 call for all of them.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::Filter;
use skiff_providers::error::aws_error;
use skiff_providers::AwsProvider;

use crate::{GroupOperations, GroupView, InstanceView, Lifecycle, Result};

const TEMPLATE_ID_TAG: &str = "aws:ec2launchtemplate:id";
const TEMPLATE_VERSION_TAG: &str = "aws:ec2launchtemplate:version";

/// The tag a node sets on its own instance once it runs a voting etcd member.
const ETCD_MEMBER_TAG: &str = "skiff.dev/etcd-member";

/// What DescribeInstances tells about an instance: its launch template ID
/// and version (from the tags auto scaling sets), private IP and DNS name,
/// and whether it runs a voting etcd member.
type InstanceDetails = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
);

#[async_trait]
impl GroupOperations for AwsProvider {
    async fn describe_groups(&self, names: &[String]) -> Result<Vec<GroupView>> {
        describe_groups(self, names).await
    }

    async fn set_capacity(&self, group: &str, desired: u32, max: u32) -> Result<()> {
        set_capacity(self, group, desired, max).await
    }

    async fn terminate(&self, instance: &str, shrink: bool) -> Result<()> {
        terminate(self, instance, shrink).await
    }
}

/// Describes auto scaling groups by name, with each instance's version.
pub async fn describe_groups(provider: &AwsProvider, names: &[String]) -> Result<Vec<GroupView>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut groups = Vec::new();
    let mut pages = provider
        .autoscaling
        .describe_auto_scaling_groups()
        .set_auto_scaling_group_names(Some(names.to_vec()))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| {
            aws_error(
                "autoscaling:DescribeAutoScalingGroups",
                &names.join(","),
                error,
            )
        })?;
        groups.extend(page.auto_scaling_groups().iter().cloned());
    }

    // Versions named `$Latest`/`$Default` resolve through the templates.
    let template_ids: Vec<String> = groups
        .iter()
        .filter_map(|group| template_of(group).0)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut template_versions: BTreeMap<String, (String, String)> = BTreeMap::new();
    if !template_ids.is_empty() {
        let output = provider
            .ec2
            .describe_launch_templates()
            .set_launch_template_ids(Some(template_ids.clone()))
            .send()
            .await
            .map_err(|error| {
                aws_error(
                    "ec2:DescribeLaunchTemplates",
                    &template_ids.join(","),
                    error,
                )
            })?;
        for template in output.launch_templates() {
            if let Some(id) = template.launch_template_id() {
                template_versions.insert(
                    id.to_string(),
                    (
                        template.latest_version_number().unwrap_or(1).to_string(),
                        template.default_version_number().unwrap_or(1).to_string(),
                    ),
                );
            }
        }
    }

    let instance_ids: Vec<String> = groups
        .iter()
        .flat_map(|group| {
            group
                .instances()
                .iter()
                .filter_map(|instance| instance.instance_id().map(str::to_string))
        })
        .collect();
    let mut details: BTreeMap<String, InstanceDetails> = BTreeMap::new();
    if !instance_ids.is_empty() {
        let mut pages = provider
            .ec2
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("instance-id")
                    .set_values(Some(instance_ids.clone()))
                    .build(),
            )
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| {
                aws_error("ec2:DescribeInstances", "rolling-update instances", error)
            })?;
            for reservation in page.reservations() {
                for instance in reservation.instances() {
                    let Some(id) = instance.instance_id() else {
                        continue;
                    };
                    let tag = |key: &str| {
                        instance
                            .tags()
                            .iter()
                            .find(|tag| tag.key() == Some(key))
                            .and_then(|tag| tag.value())
                            .map(str::to_string)
                    };
                    details.insert(
                        id.to_string(),
                        (
                            tag(TEMPLATE_ID_TAG),
                            tag(TEMPLATE_VERSION_TAG),
                            instance.private_ip_address().map(str::to_string),
                            instance
                                .private_dns_name()
                                .filter(|name| !name.is_empty())
                                .map(str::to_string),
                            tag(ETCD_MEMBER_TAG).as_deref() == Some("true"),
                        ),
                    );
                }
            }
        }
    }

    let mut views = Vec::new();
    for group in &groups {
        let (template, version) = template_of(group);
        let version = match (&template, version.as_deref()) {
            (Some(id), Some("$Latest")) => {
                template_versions.get(id).map(|(latest, _)| latest.clone())
            }
            (Some(id), Some("$Default") | None) => template_versions
                .get(id)
                .map(|(_, default)| default.clone()),
            (_, other) => other.map(str::to_string),
        };
        let instances = group
            .instances()
            .iter()
            .filter_map(|instance| {
                let id = instance.instance_id()?.to_string();
                let (tag_template, tag_version, private_ip, private_dns, etcd_member) =
                    details.get(&id).cloned().unwrap_or_default();
                let asg_template = instance
                    .launch_template()
                    .and_then(|template| template.launch_template_id())
                    .map(str::to_string);
                let asg_version = instance
                    .launch_template()
                    .and_then(|template| template.version())
                    .map(str::to_string);
                Some(InstanceView {
                    launch_template: tag_template.or(asg_template),
                    version: tag_version.or(asg_version),
                    lifecycle: instance
                        .lifecycle_state()
                        .map(|state| Lifecycle::from(state.as_str()))
                        .unwrap_or_else(|| Lifecycle::Other(String::new())),
                    healthy: instance
                        .health_status()
                        .is_none_or(|status| status.eq_ignore_ascii_case("healthy")),
                    private_ip,
                    private_dns,
                    etcd_member,
                    id,
                })
            })
            .collect();
        views.push(GroupView {
            name: group
                .auto_scaling_group_name()
                .unwrap_or_default()
                .to_string(),
            desired: group
                .desired_capacity()
                .and_then(|value| u32::try_from(value).ok())
                .unwrap_or(0),
            min: group
                .min_size()
                .and_then(|value| u32::try_from(value).ok())
                .unwrap_or(0),
            max: group
                .max_size()
                .and_then(|value| u32::try_from(value).ok())
                .unwrap_or(0),
            launch_template: template,
            version,
            instances,
        });
    }
    Ok(views)
}

/// The launch template and version a group launches with.
fn template_of(
    group: &aws_sdk_autoscaling::types::AutoScalingGroup,
) -> (Option<String>, Option<String>) {
    let specification = group.launch_template().or_else(|| {
        group
            .mixed_instances_policy()
            .and_then(|policy| policy.launch_template())
            .and_then(|template| template.launch_template_specification())
    });
    (
        specification
            .and_then(|template| template.launch_template_id())
            .map(str::to_string),
        specification
            .and_then(|template| template.version())
            .map(str::to_string),
    )
}

/// Sets a group's desired capacity, raising (or restoring) its maximum.
pub async fn set_capacity(
    provider: &AwsProvider,
    group: &str,
    desired: u32,
    max: u32,
) -> Result<()> {
    provider
        .autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name(group)
        .max_size(i32::try_from(max).unwrap_or(i32::MAX))
        .desired_capacity(i32::try_from(desired).unwrap_or(i32::MAX))
        .send()
        .await
        .map_err(|error| aws_error("autoscaling:UpdateAutoScalingGroup", group, error))?;
    Ok(())
}

/// Terminates an instance of a group; with `shrink` the group's desired
/// capacity drops by one (no replacement), otherwise the group replaces it.
pub async fn terminate(provider: &AwsProvider, instance: &str, shrink: bool) -> Result<()> {
    let result = provider
        .autoscaling
        .terminate_instance_in_auto_scaling_group()
        .instance_id(instance)
        .should_decrement_desired_capacity(shrink)
        .send()
        .await
        .map_err(|error| {
            aws_error(
                "autoscaling:TerminateInstanceInAutoScalingGroup",
                instance,
                error,
            )
        });
    match result {
        Ok(_) => Ok(()),
        // Already gone (an interrupted earlier run got this far).
        Err(error)
            if error.message.contains("not found")
                || error.class == skiff_providers::ErrorClass::NotFound =>
        {
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}
