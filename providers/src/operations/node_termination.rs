//! The node termination handler's resources: the SQS queue (with its
//! attributes, policy and tags in one `CreateQueue`), the EventBridge rules
//! (each with the queue as its one target) and the auto scaling lifecycle
//! hooks. What they are for: `skiff_plans::desired::node_termination`.

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName;
use skiff_plans::desired::node_termination::RULE_TARGET_ID;
use skiff_plans::resource::{
    EventRuleAttributes, LifecycleHookAttributes, ResourceKey, SqsQueueAttributes,
};
use skiff_plans::Output;

use super::{value, Applied};
use crate::error::{aws_error, ErrorClass, ProviderError, Result};
use crate::retry::retry;
use crate::tags::changes;
use crate::AwsProvider;

/// SQS's codes for a queue that does not exist (the Query and the JSON
/// protocol spell them differently).
fn queue_missing(error: ProviderError) -> ProviderError {
    if error.message.contains("NonExistentQueue") || error.message.contains("QueueDoesNotExist") {
        ProviderError {
            class: ErrorClass::NotFound,
            ..error
        }
    } else {
        error
    }
}

/// SQS refuses a queue name deleted less than 60 seconds ago
/// (`QueueDeletedRecently`, SQS `CreateQueue` reference): passing, so
/// retried.
fn deleted_recently(error: ProviderError) -> ProviderError {
    if error.message.contains("QueueDeletedRecently") {
        ProviderError {
            class: ErrorClass::Transient,
            ..error
        }
    } else {
        error
    }
}

fn queue_attributes(queue: &SqsQueueAttributes) -> HashMap<QueueAttributeName, String> {
    HashMap::from([
        (
            QueueAttributeName::MessageRetentionPeriod,
            queue.message_retention_seconds.to_string(),
        ),
        (
            QueueAttributeName::SqsManagedSseEnabled,
            queue.sqs_managed_sse.to_string(),
        ),
        (QueueAttributeName::Policy, queue.policy.clone()),
    ])
}

/// The queue's ARN (its URL is its ID).
pub(crate) async fn queue_arn(provider: &AwsProvider, url: &str) -> Result<String> {
    let answer = retry(&provider.retry, || async {
        provider
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|error| queue_missing(aws_error("sqs:GetQueueAttributes", url, error)))
    })
    .await?;
    answer
        .attributes()
        .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| ProviderError::other("sqs:GetQueueAttributes", url, "no QueueArn"))
}

pub(crate) async fn create_queue(
    provider: &AwsProvider,
    key: &ResourceKey,
    queue: &SqsQueueAttributes,
) -> Result<Applied> {
    let tags: HashMap<String, String> = queue.tags.clone().into_iter().collect();
    // CreateQueue is idempotent for a name with the same attributes: a
    // retried create gets the same queue.
    let created = retry(&provider.retry, || async {
        provider
            .sqs
            .create_queue()
            .queue_name(&queue.name)
            .set_attributes(Some(queue_attributes(queue)))
            .set_tags(Some(tags.clone()))
            .send()
            .await
            .map_err(|error| deleted_recently(aws_error("sqs:CreateQueue", key.as_str(), error)))
    })
    .await?;
    let url = created
        .queue_url()
        .ok_or_else(|| ProviderError::other("sqs:CreateQueue", key.as_str(), "no QueueUrl"))?
        .to_string();
    let arn = queue_arn(provider, &url).await?;
    Ok(Applied::with_id(&url)
        .output(Output::Arn, &arn)
        .output(Output::Name, &queue.name))
}

pub(crate) async fn update_queue(
    provider: &AwsProvider,
    url: &str,
    before: &SqsQueueAttributes,
    after: &SqsQueueAttributes,
) -> Result<Applied> {
    if before.message_retention_seconds != after.message_retention_seconds
        || before.sqs_managed_sse != after.sqs_managed_sse
        || before.policy != after.policy
    {
        retry(&provider.retry, || async {
            provider
                .sqs
                .set_queue_attributes()
                .queue_url(url)
                .set_attributes(Some(queue_attributes(after)))
                .send()
                .await
                .map_err(|error| queue_missing(aws_error("sqs:SetQueueAttributes", url, error)))
        })
        .await?;
    }
    let (set, removed) = changes(&before.tags, &after.tags);
    if !set.is_empty() {
        let set: HashMap<String, String> = set.into_iter().collect();
        retry(&provider.retry, || async {
            provider
                .sqs
                .tag_queue()
                .queue_url(url)
                .set_tags(Some(set.clone()))
                .send()
                .await
                .map_err(|error| queue_missing(aws_error("sqs:TagQueue", url, error)))
        })
        .await?;
    }
    if !removed.is_empty() {
        retry(&provider.retry, || async {
            provider
                .sqs
                .untag_queue()
                .queue_url(url)
                .set_tag_keys(Some(removed.clone()))
                .send()
                .await
                .map_err(|error| queue_missing(aws_error("sqs:UntagQueue", url, error)))
        })
        .await?;
    }
    let arn = queue_arn(provider, url).await?;
    Ok(Applied::with_id(url)
        .output(Output::Arn, &arn)
        .output(Output::Name, &after.name))
}

pub(crate) async fn delete_queue(provider: &AwsProvider, url: &str) -> Result<()> {
    retry(&provider.retry, || async {
        provider
            .sqs
            .delete_queue()
            .queue_url(url)
            .send()
            .await
            .map_err(|error| queue_missing(aws_error("sqs:DeleteQueue", url, error)))
    })
    .await?;
    Ok(())
}

fn event_tags(tags: &skiff_plans::resource::Tags) -> Result<Vec<aws_sdk_eventbridge::types::Tag>> {
    tags.iter()
        .map(|(key, value)| {
            aws_sdk_eventbridge::types::Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|error| ProviderError::other("events:TagResource", key, error.to_string()))
        })
        .collect()
}

async fn put_rule(
    provider: &AwsProvider,
    rule: &EventRuleAttributes,
    tags: bool,
) -> Result<String> {
    let tags = if tags {
        event_tags(&rule.tags)?
    } else {
        Vec::new()
    };
    let answer = retry(&provider.retry, || async {
        provider
            .events
            .put_rule()
            .name(&rule.name)
            .description(&rule.description)
            .event_pattern(&rule.event_pattern)
            .state(aws_sdk_eventbridge::types::RuleState::Enabled)
            .set_tags((!tags.is_empty()).then(|| tags.clone()))
            .send()
            .await
            .map_err(|error| aws_error("events:PutRule", &rule.name, error))
    })
    .await?;
    Ok(answer.rule_arn().unwrap_or_default().to_string())
}

async fn put_target(
    provider: &AwsProvider,
    key: &ResourceKey,
    rule: &EventRuleAttributes,
) -> Result<()> {
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id(RULE_TARGET_ID)
        .arn(value(key, "target", &rule.target)?)
        .build()
        .map_err(|error| {
            ProviderError::other("events:PutTargets", &rule.name, error.to_string())
        })?;
    let answer = retry(&provider.retry, || async {
        provider
            .events
            .put_targets()
            .rule(&rule.name)
            .targets(target.clone())
            .send()
            .await
            .map_err(|error| aws_error("events:PutTargets", &rule.name, error))
    })
    .await?;
    if answer.failed_entry_count() > 0 {
        let reason = answer
            .failed_entries()
            .iter()
            .filter_map(|entry| entry.error_message())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(ProviderError::other(
            "events:PutTargets",
            &rule.name,
            reason,
        ));
    }
    Ok(())
}

pub(crate) async fn create_rule(
    provider: &AwsProvider,
    key: &ResourceKey,
    rule: &EventRuleAttributes,
) -> Result<Applied> {
    let arn = put_rule(provider, rule, true).await?;
    put_target(provider, key, rule).await?;
    Ok(Applied::with_id(&rule.name)
        .output(Output::Arn, &arn)
        .output(Output::Name, &rule.name))
}

pub(crate) async fn update_rule(
    provider: &AwsProvider,
    key: &ResourceKey,
    id: &str,
    before: &EventRuleAttributes,
    after: &EventRuleAttributes,
) -> Result<Applied> {
    let mut arn = String::new();
    if before.event_pattern != after.event_pattern || before.description != after.description {
        // PutRule on an existing rule changes it; tags are left as they are.
        arn = put_rule(provider, after, false).await?;
    }
    if before.target != after.target {
        put_target(provider, key, after).await?;
    }
    let (set, removed) = changes(&before.tags, &after.tags);
    if !set.is_empty() || !removed.is_empty() || arn.is_empty() {
        let described = retry(&provider.retry, || async {
            provider
                .events
                .describe_rule()
                .name(id)
                .send()
                .await
                .map_err(|error| aws_error("events:DescribeRule", id, error))
        })
        .await?;
        arn = described.arn().unwrap_or_default().to_string();
    }
    if !set.is_empty() {
        let tags = event_tags(&set)?;
        retry(&provider.retry, || async {
            provider
                .events
                .tag_resource()
                .resource_arn(&arn)
                .set_tags(Some(tags.clone()))
                .send()
                .await
                .map_err(|error| aws_error("events:TagResource", id, error))
        })
        .await?;
    }
    if !removed.is_empty() {
        retry(&provider.retry, || async {
            provider
                .events
                .untag_resource()
                .resource_arn(&arn)
                .set_tag_keys(Some(removed.clone()))
                .send()
                .await
                .map_err(|error| aws_error("events:UntagResource", id, error))
        })
        .await?;
    }
    Ok(Applied::with_id(id)
        .output(Output::Arn, &arn)
        .output(Output::Name, &after.name))
}

pub(crate) async fn delete_rule(provider: &AwsProvider, name: &str) -> Result<()> {
    // DeleteRule is refused while the rule has targets.
    retry(&provider.retry, || async {
        provider
            .events
            .remove_targets()
            .rule(name)
            .ids(RULE_TARGET_ID)
            .send()
            .await
            .map_err(|error| aws_error("events:RemoveTargets", name, error))
    })
    .await?;
    retry(&provider.retry, || async {
        provider
            .events
            .delete_rule()
            .name(name)
            .send()
            .await
            .map_err(|error| aws_error("events:DeleteRule", name, error))
    })
    .await?;
    Ok(())
}

/// The ID of a hook: `<group>/<hook>` (hooks have no ID of their own).
pub fn hook_id(group: &str, hook: &str) -> String {
    format!("{group}/{hook}")
}

/// Creates or changes a hook (`PutLifecycleHook` does both).
pub(crate) async fn put_lifecycle_hook(
    provider: &AwsProvider,
    key: &ResourceKey,
    hook: &LifecycleHookAttributes,
) -> Result<Applied> {
    let group = value(key, "group", &hook.group)?;
    let heartbeat = i32::try_from(hook.heartbeat_timeout).unwrap_or(i32::MAX);
    retry(&provider.retry, || async {
        provider
            .autoscaling
            .put_lifecycle_hook()
            .auto_scaling_group_name(group)
            .lifecycle_hook_name(&hook.name)
            .lifecycle_transition(&hook.transition)
            .heartbeat_timeout(heartbeat)
            .default_result(&hook.default_result)
            .send()
            .await
            .map_err(|error| aws_error("autoscaling:PutLifecycleHook", key.as_str(), error))
    })
    .await?;
    Ok(Applied::with_id(&hook_id(group, &hook.name)).output(Output::Name, &hook.name))
}

pub(crate) async fn delete_lifecycle_hook(
    provider: &AwsProvider,
    key: &ResourceKey,
    id: &str,
    hook: &LifecycleHookAttributes,
) -> Result<()> {
    let group = match hook.group.value() {
        Some(group) if !group.is_empty() => group.to_string(),
        _ => id
            .split_once('/')
            .map(|(group, _)| group.to_string())
            .unwrap_or_default(),
    };
    // Once, without skiff's retries: Auto Scaling answers a hook deleted
    // with its group, or already gone, with a ValidationError ("No
    // Lifecycle Hooks found", "AutoScalingGroup name not found") that the
    // retries would wait on as not yet visible.
    let outcome = provider
        .autoscaling
        .delete_lifecycle_hook()
        .auto_scaling_group_name(&group)
        .lifecycle_hook_name(&hook.name)
        .send()
        .await
        .map_err(|error| aws_error("autoscaling:DeleteLifecycleHook", key.as_str(), error));
    match outcome {
        Err(error)
            if error.message.contains("not found")
                || error.message.contains("No Lifecycle Hook") =>
        {
            Ok(())
        }
        other => other.map(|_| ()),
    }
}
