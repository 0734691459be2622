//! The node termination handler's queue, rules and lifecycle hooks. The
//! queue and the rules have names derived from the cluster's alone, so each
//! is read by name (`GetQueueUrl`, `DescribeRule`: one call each, no
//! listing to wait on) and owned only with the cluster's tags; the hooks
//! are read from the cluster's own groups (one `DescribeLifecycleHooks`
//! per group, all at once: hooks have no tags and no call lists them across
//! groups).

use aws_sdk_sqs::types::QueueAttributeName;
use futures::future::try_join_all;
use skiff_plans::canonical::{canonicalize_policy_text, canonicalize_text};
use skiff_plans::desired::node_termination::{self, HOOK_NAME, RULE_KEYS};
use skiff_plans::resource::{
    Attributes, EventRuleAttributes, Id, LifecycleHookAttributes, ResourceKey, ResourceKind,
    SqsQueueAttributes,
};
use skiff_plans::{ObservedResource, Output};

use super::{outputs, RefreshScope};
use crate::error::{aws_error, Result};
use crate::operations::node_termination::hook_id;
use crate::tags::ours;
use crate::AwsProvider;

fn absent(message: &str) -> bool {
    message.contains("NonExistentQueue")
        || message.contains("QueueDoesNotExist")
        || message.contains("ResourceNotFoundException")
}

pub(super) async fn refresh_queue(
    provider: &AwsProvider,
    scope: &RefreshScope,
) -> Result<Vec<ObservedResource>> {
    let name = node_termination::queue_name(&scope.cluster);
    let url = match provider.sqs.get_queue_url().queue_name(&name).send().await {
        Ok(answer) => answer.queue_url().unwrap_or_default().to_string(),
        Err(error) => {
            let error = aws_error("sqs:GetQueueUrl", &name, error);
            if absent(&error.message) {
                return Ok(Vec::new());
            }
            return Err(error);
        }
    };
    let (tags, attributes) = tokio::try_join!(
        async {
            provider
                .sqs
                .list_queue_tags()
                .queue_url(&url)
                .send()
                .await
                .map_err(|error| aws_error("sqs:ListQueueTags", &name, error))
        },
        async {
            provider
                .sqs
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(QueueAttributeName::All)
                .send()
                .await
                .map_err(|error| aws_error("sqs:GetQueueAttributes", &name, error))
        },
    )?;
    let tags = ours(
        tags.tags()
            .into_iter()
            .flatten()
            .map(|(key, value)| (key.as_str(), value.as_str())),
    );
    let Some(key) = scope.key_of(ResourceKind::SqsQueue, &tags) else {
        return Ok(Vec::new());
    };
    let read = |attribute: QueueAttributeName| {
        attributes
            .attributes()
            .and_then(|attributes| attributes.get(&attribute))
            .cloned()
            .unwrap_or_default()
    };
    let arn = read(QueueAttributeName::QueueArn);
    Ok(vec![ObservedResource {
        key,
        id: url.clone(),
        attributes: Attributes::SqsQueue(SqsQueueAttributes {
            name: name.clone(),
            message_retention_seconds: read(QueueAttributeName::MessageRetentionPeriod)
                .parse()
                .unwrap_or(0),
            sqs_managed_sse: read(QueueAttributeName::SqsManagedSseEnabled) == "true",
            policy: canonicalize_policy_text(&read(QueueAttributeName::Policy)),
            tags,
        }),
        outputs: outputs(&[
            (Output::Id, &url),
            (Output::Arn, &arn),
            (Output::Name, &name),
        ]),
    }])
}

async fn refresh_rule(
    provider: &AwsProvider,
    scope: &RefreshScope,
    rule: &str,
) -> Result<Option<ObservedResource>> {
    let name = node_termination::rule_name(&scope.cluster, rule);
    let described = match provider.events.describe_rule().name(&name).send().await {
        Ok(described) => described,
        Err(error) => {
            let error = aws_error("events:DescribeRule", &name, error);
            if error.is_missing() || absent(&error.message) {
                return Ok(None);
            }
            return Err(error);
        }
    };
    let arn = described.arn().unwrap_or_default().to_string();
    let (tags, targets) = tokio::try_join!(
        async {
            provider
                .events
                .list_tags_for_resource()
                .resource_arn(&arn)
                .send()
                .await
                .map_err(|error| aws_error("events:ListTagsForResource", &name, error))
        },
        async {
            provider
                .events
                .list_targets_by_rule()
                .rule(&name)
                .send()
                .await
                .map_err(|error| aws_error("events:ListTargetsByRule", &name, error))
        },
    )?;
    let tags = ours(tags.tags().iter().map(|tag| (tag.key(), tag.value())));
    let Some(key) = scope.key_of(ResourceKind::EventRule, &tags) else {
        return Ok(None);
    };
    let target = targets
        .targets()
        .iter()
        .find(|target| target.id() == node_termination::RULE_TARGET_ID)
        .map(|target| target.arn().to_string())
        .unwrap_or_default();
    Ok(Some(ObservedResource {
        key,
        id: name.clone(),
        attributes: Attributes::EventRule(EventRuleAttributes {
            name: name.clone(),
            description: described.description().unwrap_or_default().to_string(),
            event_pattern: canonicalize_text(described.event_pattern().unwrap_or_default()),
            target: Id::from(target.as_str()),
            tags,
        }),
        outputs: outputs(&[
            (Output::Id, &name),
            (Output::Arn, &arn),
            (Output::Name, &name),
        ]),
    }))
}

pub(super) async fn refresh_rules(
    provider: &AwsProvider,
    scope: &RefreshScope,
) -> Result<Vec<ObservedResource>> {
    let found = try_join_all(
        RULE_KEYS
            .iter()
            .map(|rule| refresh_rule(provider, scope, rule)),
    )
    .await?;
    Ok(found.into_iter().flatten().collect())
}

/// The hooks of the groups `groups` found (the cluster's own).
pub(super) async fn refresh_hooks(
    provider: &AwsProvider,
    groups: &[ObservedResource],
) -> Result<Vec<ObservedResource>> {
    let groups: Vec<(&str, &str)> = groups
        .iter()
        .filter(|group| group.kind() == ResourceKind::AutoScalingGroup)
        .map(|group| (group.key.name(), group.id.as_str()))
        .collect();
    let found = try_join_all(groups.into_iter().map(|(group, name)| async move {
        let answer = provider
            .autoscaling
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(name)
            .lifecycle_hook_names(HOOK_NAME)
            .send()
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                let error = aws_error("autoscaling:DescribeLifecycleHooks", name, error);
                // A group deleted since it was listed has no hooks.
                if error.is_missing() || error.message.contains("not found") {
                    return Ok(None);
                }
                return Err(error);
            }
        };
        Ok(answer
            .lifecycle_hooks()
            .iter()
            .find(|hook| hook.lifecycle_hook_name() == Some(HOOK_NAME))
            .map(|hook| ObservedResource {
                key: ResourceKey::new(ResourceKind::LifecycleHook, group),
                id: hook_id(name, HOOK_NAME),
                attributes: Attributes::LifecycleHook(LifecycleHookAttributes {
                    group: Id::from(name),
                    name: HOOK_NAME.to_string(),
                    transition: hook.lifecycle_transition().unwrap_or_default().to_string(),
                    heartbeat_timeout: hook
                        .heartbeat_timeout()
                        .and_then(|seconds| u32::try_from(seconds).ok())
                        .unwrap_or(0),
                    default_result: hook.default_result().unwrap_or_default().to_string(),
                }),
                outputs: outputs(&[(Output::Name, HOOK_NAME)]),
            }))
    }))
    .await?;
    Ok(found.into_iter().flatten().collect())
}
