//! The node termination handler's AWS resources: an SQS queue, the
//! EventBridge rules that send it the events announcing an instance's end,
//! and a termination lifecycle hook on every Kubernetes group, so a
//! scale-in waits for the node's drain. The processor on the control-plane
//! nodes (`templates/node-termination.sh.j2`) reads the queue.
//!
//! Modelled on aws-node-termination-handler's queue mode and its
//! "Infrastructure Setup" (NTH `README.md`, `docs/cfn-template.yaml`):
//! the queue keeps messages 300 s with SSE-SQS, and the rules' patterns are
//! the README's, each narrowed to this cluster where the event says whose
//! it is (the lifecycle action names its group; EC2's events name only the
//! instance, so the processor drops instances that are not its cluster's
//! nodes). The queue policy is narrower than NTH's README (which lets
//! `events.amazonaws.com` and `sqs.amazonaws.com` send with no condition):
//! only EventBridge, and only for this cluster's own rules in this account
//! (see [`queue_policy`]), so no other account's rule can put a forged
//! event naming one of the cluster's instances into the queue. Off with
//! `spec.addons.nodeTerminationHandler.enabled: false`, which plans their
//! removal.

use serde_json::{json, Value};
use skiff_api::InstanceGroupRole;

use super::compute::auto_scaling_group_key;
use super::Builder;
use crate::canonical::{canonical_json, canonical_policy};
use crate::error::PlanError;
use crate::names;
use crate::resource::{
    Attributes, DesiredResource, EventRuleAttributes, LifecycleHookAttributes, Output, ResourceKey,
    ResourceKind, SqsQueueAttributes,
};

/// The lifecycle hook's name on every group.
pub const HOOK_NAME: &str = "skiff-node-termination";

/// The hook's transition.
pub const HOOK_TRANSITION: &str = "autoscaling:EC2_INSTANCE_TERMINATING";

/// How long a terminating instance waits for the processor, in seconds:
/// NTH's and kops's 300 (NTH README "Infrastructure Setup" step 2, KOPS
/// `pkg/model/awsmodel/nodeterminationhandler.go`). The drain's own timeout
/// ([`DRAIN_TIMEOUT_SECONDS`]) is below it, so a drained node's action is
/// completed before the hook times out.
pub const HOOK_HEARTBEAT_SECONDS: u32 = 300;

/// What the group does when the heartbeat passes without the action being
/// completed: `CONTINUE`, so a dead or slow handler delays a termination by
/// at most [`HOOK_HEARTBEAT_SECONDS`] but never blocks it (`ABANDON` would
/// also terminate the instance on a terminating hook, AWS's docs say, but
/// skips any further hooks; CONTINUE is what NTH documents).
pub const HOOK_DEFAULT_RESULT: &str = "CONTINUE";

/// How long the processor's drain may take, in seconds (below the hook's
/// heartbeat, leaving a minute to complete the action).
pub const DRAIN_TIMEOUT_SECONDS: u32 = skiff_templates::node_termination::DRAIN_TIMEOUT_SECONDS;

/// The queue's message retention. NTH's setup uses 300 s (an event older
/// than the hook's heartbeat is of no use to *its* handler, which runs
/// replicated); skiff's processor runs on one control-plane node at a time
/// under a lease, and when that node is lost the next one takes the lease
/// only after its time to live (330 s) and finds the messages the lost
/// one held only after their visibility timeout (360 s): 900 s keeps what
/// arrived meanwhile. A stale event costs nothing: its instance has no Node
/// any more and it is dropped.
pub const QUEUE_RETENTION_SECONDS: u32 = 900;

/// The ID of each rule's one target.
pub const RULE_TARGET_ID: &str = "node-termination-queue";

/// The name part of each rule's key (`event-rule/<name>`), in order.
pub const RULE_KEYS: [&str; 4] = [
    "asg-lifecycle",
    "spot-interruption",
    "rebalance-recommendation",
    "instance-state-change",
];

/// The key of the queue.
pub fn queue_key() -> ResourceKey {
    ResourceKey::new(ResourceKind::SqsQueue, "node-termination")
}

/// The key of a group's lifecycle hook.
pub fn hook_key(group: &str) -> ResourceKey {
    ResourceKey::new(ResourceKind::LifecycleHook, group)
}

/// The queue's name (SQS: at most 80 characters of `[A-Za-z0-9_-]`), as
/// the processor on the control-plane nodes derives it.
pub fn queue_name(cluster: &str) -> String {
    skiff_templates::node_termination::queue_name(cluster)
}

/// A rule's name (EventBridge: at most 64 characters).
pub fn rule_name(cluster: &str, rule: &str) -> String {
    names::limited(&format!("{cluster}-{rule}"), 64)
}

/// The queue's ARN as the control-plane role's policy names it: any
/// account, as the role is the cluster's own and the queue's name is unique
/// to the cluster in the account and region it lives in.
pub fn queue_arn(partition: &str, region: &str, cluster: &str) -> String {
    format!("arn:{partition}:sqs:{region}:*:{}", queue_name(cluster))
}

/// The queue's full ARN in `account` (`arn:<partition>:sqs:<region>:<account>:<name>`),
/// the Resource of its own policy.
pub fn queue_arn_in(partition: &str, region: &str, account: &str, cluster: &str) -> String {
    format!(
        "arn:{partition}:sqs:{region}:{account}:{}",
        queue_name(cluster)
    )
}

/// A rule's ARN: rules on the default event bus are
/// `arn:<partition>:events:<region>:<account>:rule/<name>` (EventBridge
/// User Guide, "Managing access permissions to your Amazon EventBridge
/// resources", the resource table).
pub fn rule_arn(partition: &str, region: &str, account: &str, cluster: &str, rule: &str) -> String {
    format!(
        "arn:{partition}:events:{region}:{account}:rule/{}",
        rule_name(cluster, rule)
    )
}

/// The queue's policy: `sqs:SendMessage` for the EventBridge service
/// principal only, on the queue's own ARN, and only when the sender acts
/// for one of this cluster's rules (`aws:SourceArn`, each rule's ARN) in
/// this account (`aws:SourceAccount`). This is the EventBridge User Guide's
/// SQS target policy ("Using resource-based policies for Amazon
/// EventBridge", section "Amazon SQS permissions": Principal
/// `events.amazonaws.com`, `Condition: {"ArnEquals": {"aws:SourceArn":
/// <rule ARN>}}`), with the account condition the IAM User Guide
/// recommends against the confused deputy ("The confused deputy problem",
/// cross-service: use `aws:SourceArn` and `aws:SourceAccount` in resource
/// policies that grant a service access). Without them any account's rule
/// could target the queue. No `sqs.amazonaws.com` principal: nothing but
/// the rules sends to the queue.
pub fn queue_policy(partition: &str, region: &str, account: &str, cluster: &str) -> String {
    let rules: Vec<String> = RULE_KEYS
        .iter()
        .map(|rule| rule_arn(partition, region, account, cluster, rule))
        .collect();
    canonical_policy(&json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ClusterRulesSendInterruptions",
            "Effect": "Allow",
            "Principal": { "Service": "events.amazonaws.com" },
            "Action": "sqs:SendMessage",
            "Resource": queue_arn_in(partition, region, account, cluster),
            "Condition": {
                "ArnEquals": { "aws:SourceArn": rules },
                "StringEquals": { "aws:SourceAccount": account },
            },
        }]
    }))
}

/// The groups that get the hook: those whose instances are Kubernetes
/// nodes (a bastion or an external etcd member has nothing to drain; a
/// hook would only delay its termination).
fn drained(role: InstanceGroupRole) -> bool {
    matches!(
        role,
        InstanceGroupRole::ControlPlane | InstanceGroupRole::Node
    )
}

/// The rules: (key name, description, pattern). Patterns from NTH's README
/// "Infrastructure Setup" step 4; the states of the state-change rule are
/// those NTH drains on (NTH `pkg/monitor/sqsevent/ec2-state-change-event.go`,
/// `instanceStatesToDrain`), so the others never reach the queue.
fn rules(group_names: &[String]) -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "asg-lifecycle",
            "Termination lifecycle actions of the cluster's groups, for the node termination handler",
            json!({
                "source": ["aws.autoscaling"],
                "detail-type": ["EC2 Instance-terminate Lifecycle Action"],
                "detail": { "AutoScalingGroupName": group_names },
            }),
        ),
        (
            "spot-interruption",
            "Spot interruption warnings, for the node termination handler",
            json!({
                "source": ["aws.ec2"],
                "detail-type": ["EC2 Spot Instance Interruption Warning"],
            }),
        ),
        (
            "rebalance-recommendation",
            "Rebalance recommendations, for the node termination handler",
            json!({
                "source": ["aws.ec2"],
                "detail-type": ["EC2 Instance Rebalance Recommendation"],
            }),
        ),
        (
            "instance-state-change",
            "Instances stopping or terminating, for the node termination handler",
            json!({
                "source": ["aws.ec2"],
                "detail-type": ["EC2 Instance State-change Notification"],
                "detail": { "state": ["stopping", "stopped", "shutting-down", "terminated"] },
            }),
        ),
    ]
}

pub(crate) fn build(builder: &mut Builder<'_>) -> Result<(), PlanError> {
    if !builder
        .bundle
        .cluster
        .spec
        .addons
        .node_termination_handler_enabled()
    {
        return Ok(());
    }
    // The queue policy names the account; never a wildcard in its place.
    let account = match builder.lookups.account_id.as_deref() {
        Some(account) if !account.is_empty() => account.to_string(),
        _ => return Err(PlanError::AccountUnknown),
    };
    let cluster = builder.cluster_name().to_string();
    let partition = if builder.lookups.partition.is_empty() {
        "aws".to_string()
    } else {
        builder.lookups.partition.clone()
    };
    let region = builder.bundle.cluster.region().to_string();

    let queue = queue_key();
    let name = queue_name(&cluster);
    let policy = queue_policy(&partition, &region, &account, &cluster);
    let tags = builder.tags(&queue, &name);
    builder.add(DesiredResource {
        key: queue.clone(),
        attributes: Attributes::SqsQueue(SqsQueueAttributes {
            name,
            message_retention_seconds: QUEUE_RETENTION_SECONDS,
            sqs_managed_sse: true,
            policy,
            tags,
        }),
    });

    let groups: Vec<&str> = builder
        .bundle
        .instance_groups
        .iter()
        .filter(|group| drained(group.spec.role))
        .map(|group| group.name())
        .collect();
    let mut group_names: Vec<String> = groups
        .iter()
        .map(|group| names::instance_group_resource(&cluster, group))
        .collect();
    group_names.sort();
    for (rule, description, pattern) in rules(&group_names) {
        let key = ResourceKey::new(ResourceKind::EventRule, rule);
        let name = rule_name(&cluster, rule);
        let tags = builder.tags(&key, &name);
        builder.add(DesiredResource {
            key,
            attributes: Attributes::EventRule(EventRuleAttributes {
                name,
                description: description.to_string(),
                event_pattern: canonical_json(&pattern),
                target: queue.output(Output::Arn),
                tags,
            }),
        });
    }
    for group in groups {
        builder.add(DesiredResource {
            key: hook_key(group),
            attributes: Attributes::LifecycleHook(LifecycleHookAttributes {
                group: auto_scaling_group_key(group).output(Output::Name),
                name: HOOK_NAME.to_string(),
                transition: HOOK_TRANSITION.to_string(),
                heartbeat_timeout: HOOK_HEARTBEAT_SECONDS,
                default_result: HOOK_DEFAULT_RESULT.to_string(),
            }),
        });
    }
    Ok(())
}

/// The control-plane role's statements for the processor, when the handler
/// is on: exactly the calls `templates/node-termination.sh.j2` makes, each
/// named by the NTH source that makes the same call.
pub fn control_plane_statements(bundle: &skiff_api::ClusterBundle, partition: &str) -> Vec<Value> {
    if !bundle
        .cluster
        .spec
        .addons
        .node_termination_handler_enabled()
    {
        return Vec::new();
    }
    let cluster = bundle.name();
    let queue = queue_arn(partition, bundle.cluster.region(), cluster);
    vec![
        // NTH `pkg/monitor/sqsevent/sqs-monitor.go`: `receiveQueueMessages`
        // (sqs:ReceiveMessage) and `deleteMessages` (sqs:DeleteMessage);
        // and skiff's own sqs:ChangeMessageVisibility, which makes a
        // message whose handling failed visible again within seconds, as
        // the queue keeps it only 300 s (SQS API Reference,
        // `ChangeMessageVisibility`: the new timeout counts from the call,
        // from 0 seconds up). SQS supports no
        // resource-tag condition here; the Resource is the cluster's own
        // queue.
        json!({
            "Sid": "ReadNodeTerminationQueue",
            "Effect": "Allow",
            "Action": ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage"],
            "Resource": [queue],
        }),
        // NTH `pkg/monitor/sqsevent/asg-lifecycle-event.go`:
        // `continueLifecycleAction` (autoscaling:CompleteLifecycleAction),
        // only on this cluster's groups (kops scopes it the same way, KOPS
        // `pkg/model/iam/iam_builder.go` AddNodeTerminationHandlerSQSPermissions).
        json!({
            "Sid": "CompleteOwnLifecycleActions",
            "Effect": "Allow",
            "Action": ["autoscaling:CompleteLifecycleAction"],
            "Resource": "*",
            "Condition": { "StringEquals": { format!("aws:ResourceTag/{}", names::CLUSTER_TAG): cluster } }
        }),
        // NTH `pkg/monitor/sqsevent/sqs-monitor.go` `retrieveNodeName`
        // (ec2:DescribeInstances): the private DNS name of an instance
        // whose Node has no providerID yet. Describe calls take no
        // resource or condition.
        json!({
            "Sid": "FindTerminatingInstanceNode",
            "Effect": "Allow",
            "Action": ["ec2:DescribeInstances"],
            "Resource": "*",
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{Attributes, Id, Reference};
    use crate::Lookups;
    use skiff_api::new_cluster::{new_cluster, NewClusterOptions};

    fn bundle(enabled: Option<bool>) -> skiff_api::ClusterBundle {
        let mut bundle = new_cluster(&NewClusterOptions {
            name: "c1.example.com".into(),
            zones: vec!["us-east-1a".into()],
            control_plane_zones: Vec::new(),
            control_plane_count: 1,
            control_plane_size: "t3.medium".into(),
            node_count: 2,
            node_size: "t3.medium".into(),
            kubernetes_version: "1.34.2".parse().expect("valid"),
            topology: skiff_api::Topology::Public,
            cni: skiff_api::Cni::Calico,
            dns_zone: None,
            network_cidr: "10.0.0.0/16".into(),
            network_id: None,
            ssh_public_key: None,
            api_load_balancer_type: skiff_api::LoadBalancerType::Public,
            cloud_labels: Default::default(),
            image: None,
            os_family: skiff_api::OsFamily::Debian,
            admin_access: vec!["0.0.0.0/0".into()],
            ssh_access: vec!["0.0.0.0/0".into()],
        })
        .expect("builds");
        bundle.cluster.spec.addons.node_termination_handler =
            enabled.map(|enabled| skiff_api::NodeTerminationHandlerSpec {
                enabled: Some(enabled),
            });
        bundle
    }

    fn of_kind(model: &crate::DesiredModel, kind: ResourceKind) -> Vec<&DesiredResource> {
        model
            .resources
            .iter()
            .filter(|resource| resource.kind() == kind)
            .collect()
    }

    #[test]
    fn on_by_default_a_queue_four_rules_and_a_hook_per_kubernetes_group() {
        let bundle = bundle(None);
        let model = crate::desired_model(&bundle, &Lookups::stand_in(&bundle)).expect("model");
        let queues = of_kind(&model, ResourceKind::SqsQueue);
        assert_eq!(queues.len(), 1);
        let Attributes::SqsQueue(queue) = &queues[0].attributes else {
            unreachable!()
        };
        assert_eq!(queue.name, "c1-example-com-nth");
        assert_eq!(queue.message_retention_seconds, 900);
        assert!(queue.sqs_managed_sse);
        let policy: Value = serde_json::from_str(&queue.policy).expect("JSON");
        assert_eq!(policy["Statement"][0]["Action"], "sqs:SendMessage");

        let rules = of_kind(&model, ResourceKind::EventRule);
        assert_eq!(rules.len(), 4);
        for rule in &rules {
            let Attributes::EventRule(attributes) = &rule.attributes else {
                unreachable!()
            };
            assert_eq!(
                attributes.target,
                Id::Ref(Reference {
                    key: queue_key(),
                    output: Output::Arn
                })
            );
        }
        let Attributes::EventRule(lifecycle) = &model
            .get(&ResourceKey::new(ResourceKind::EventRule, "asg-lifecycle"))
            .expect("lifecycle rule")
            .attributes
        else {
            unreachable!()
        };
        let pattern: Value = serde_json::from_str(&lifecycle.event_pattern).expect("JSON");
        let groups: Vec<String> = bundle
            .instance_groups
            .iter()
            .map(|group| names::instance_group_resource("c1.example.com", group.name()))
            .collect();
        let mut expected = groups.clone();
        expected.sort();
        assert_eq!(pattern["detail"]["AutoScalingGroupName"], json!(expected));

        let hooks = of_kind(&model, ResourceKind::LifecycleHook);
        assert_eq!(hooks.len(), bundle.instance_groups.len());
        for hook in hooks {
            let Attributes::LifecycleHook(attributes) = &hook.attributes else {
                unreachable!()
            };
            assert_eq!(attributes.default_result, "CONTINUE");
            assert_eq!(attributes.heartbeat_timeout, 300);
            assert!(DRAIN_TIMEOUT_SECONDS < attributes.heartbeat_timeout);
            assert_eq!(
                attributes.transition,
                "autoscaling:EC2_INSTANCE_TERMINATING"
            );
        }
    }

    #[test]
    fn the_queue_policy_admits_only_this_accounts_rules_of_this_cluster() {
        let bundle = bundle(None);
        let mut lookups = Lookups::stand_in(&bundle);
        lookups.account_id = Some("210987654321".into());
        lookups.partition = "aws-us-gov".into();
        let model = crate::desired_model(&bundle, &lookups).expect("model");
        let Attributes::SqsQueue(queue) = &model.get(&queue_key()).expect("queue").attributes
        else {
            unreachable!()
        };
        let policy: Value = serde_json::from_str(&queue.policy).expect("JSON");
        let statements = policy["Statement"].as_array().expect("statements");
        assert_eq!(statements.len(), 1, "{policy:#}");
        let statement = &statements[0];
        assert_eq!(statement["Effect"], "Allow");
        // EventBridge only: no sqs.amazonaws.com, no account principal.
        assert_eq!(
            statement["Principal"],
            json!({ "Service": "events.amazonaws.com" })
        );
        assert_eq!(statement["Action"], "sqs:SendMessage");
        // The queue's own full ARN, no wildcard.
        assert_eq!(
            statement["Resource"],
            "arn:aws-us-gov:sqs:us-east-1:210987654321:c1-example-com-nth"
        );
        assert!(!queue.policy.contains('*'), "{}", queue.policy);
        // Each of the cluster's rules, by the ARN EventBridge gives it, and
        // nothing else.
        let mut expected: Vec<String> = Vec::new();
        for rule in of_kind(&model, ResourceKind::EventRule) {
            let Attributes::EventRule(rule) = &rule.attributes else {
                unreachable!()
            };
            expected.push(format!(
                "arn:aws-us-gov:events:us-east-1:210987654321:rule/{}",
                rule.name
            ));
        }
        expected.sort();
        assert_eq!(expected.len(), 4);
        let mut named: Vec<String> = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
            .as_array()
            .expect("a list of rule ARNs")
            .iter()
            .map(|arn| arn.as_str().expect("text").to_string())
            .collect();
        named.sort();
        assert_eq!(named, expected, "{policy:#}");
        assert_eq!(
            statement["Condition"]["StringEquals"],
            json!({ "aws:SourceAccount": "210987654321" })
        );
        assert_eq!(
            statement["Condition"].as_object().map(|c| c.len()),
            Some(2),
            "{policy:#}"
        );
    }

    #[test]
    fn no_account_is_an_error_naming_sts_not_a_wildcard_policy() {
        let on = bundle(None);
        let mut lookups = Lookups::stand_in(&on);
        lookups.account_id = None;
        let error = crate::desired_model(&on, &lookups).expect_err("refused");
        assert!(matches!(error, PlanError::AccountUnknown), "{error:?}");
        let text = error.to_string();
        for named in [
            "spec.addons.nodeTerminationHandler",
            "sts:GetCallerIdentity",
            "credentials",
        ] {
            assert!(text.contains(named), "{named} not in: {text}");
        }
        lookups.account_id = Some(String::new());
        assert!(crate::desired_model(&on, &lookups).is_err());

        // Off, nothing needs the account.
        let off = bundle(Some(false));
        let mut lookups = Lookups::stand_in(&off);
        lookups.account_id = None;
        crate::desired_model(&off, &lookups).expect("no account needed while off");
    }

    #[test]
    fn off_plans_none_of_them() {
        let off = bundle(Some(false));
        let model = crate::desired_model(&off, &Lookups::stand_in(&off)).expect("model");
        for kind in [
            ResourceKind::SqsQueue,
            ResourceKind::EventRule,
            ResourceKind::LifecycleHook,
        ] {
            assert!(of_kind(&model, kind).is_empty(), "{kind} while off");
        }
        let on = bundle(Some(true));
        let model = crate::desired_model(&on, &Lookups::stand_in(&on)).expect("model");
        assert_eq!(of_kind(&model, ResourceKind::SqsQueue).len(), 1);
    }
}
