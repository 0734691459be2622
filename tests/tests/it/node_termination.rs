//! Node termination (issue 18, Build 4; Must show: "the termination
//! handler's resources created, recorded and removed by `delete
//! cluster`"), against the local endpoint: the cluster's SQS queue with its
//! policy, the EventBridge rules with the queue as their target, and a
//! termination lifecycle hook on each group, all skiff-owned: planned,
//! created, recorded, unchanged on a re-plan, planned away (without a roll)
//! when `spec.addons.nodeTerminationHandler.enabled` is false, and gone
//! after `delete cluster`.
//!
//! SQS and EventBridge are read with signed curl calls (SQS's Query
//! protocol, EventBridge's JSON protocol) tagged as harness traffic: the
//! SDK crates of those services are used by `skiff-providers` only.

use std::process::Command;

use serde_json::Value;

use crate::common;
use common::cluster::ClusterFixture;

const REGION: &str = "us-east-1";
const RULES: [&str; 4] = [
    "asg-lifecycle",
    "spot-interruption",
    "rebalance-recommendation",
    "instance-state-change",
];
const GROUPS: [&str; 2] = ["control-plane-us-east-1a", "nodes-us-east-1a"];

impl ClusterFixture {
    /// One signed call of `service` (curl's SigV4), as harness traffic.
    fn signed_call(&self, service: &str, extra: &[&str]) -> (bool, String) {
        let output = Command::new("curl")
            .args(["--silent", "--show-error", "-A", "skiff-harness"])
            .args(["--aws-sigv4", &format!("aws:amz:{REGION}:{service}")])
            .args(["--user", "testing:testing"])
            .args(["-w", "\n%{http_code}"])
            .args(extra)
            .arg(format!("{}/", self.aws.endpoint().trim_end_matches('/')))
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or((&text, ""));
        (status == "200", body.to_owned())
    }

    /// An SQS Query API call.
    fn sqs(&self, parameters: &[(&str, &str)]) -> (bool, String) {
        let mut extra = vec![
            "--data-urlencode".to_owned(),
            "Version=2012-11-05".to_owned(),
        ];
        for (name, value) in parameters {
            extra.push("--data-urlencode".to_owned());
            extra.push(format!("{name}={value}"));
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        self.signed_call("sqs", &extra)
    }

    /// An EventBridge JSON call.
    fn events(&self, operation: &str, input: &Value) -> (bool, Value) {
        let target = format!("X-Amz-Target: AWSEvents.{operation}");
        let input = input.to_string();
        let (ok, body) = self.signed_call(
            "events",
            &[
                "-H",
                "Content-Type: application/x-amz-json-1.1",
                "-H",
                &target,
                "--data",
                &input,
            ],
        );
        (ok, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    fn queue_name(&self) -> String {
        format!("{}-nth", self.cluster.replace('.', "-"))
    }

    /// The queue's URL, if it exists.
    fn queue_url(&self) -> Option<String> {
        let (ok, body) = self.sqs(&[("Action", "GetQueueUrl"), ("QueueName", &self.queue_name())]);
        ok.then(|| between(&body, "QueueUrl").to_owned())
    }

    /// The queue's attributes, by name.
    fn queue_attributes(&self, url: &str) -> std::collections::BTreeMap<String, String> {
        let (ok, body) = self.sqs(&[
            ("Action", "GetQueueAttributes"),
            ("QueueUrl", url),
            ("AttributeName.1", "All"),
        ]);
        assert!(ok, "{body}");
        body.split("<Attribute>")
            .skip(1)
            .map(|entry| {
                (
                    between(entry, "Name").to_owned(),
                    unescape(between(entry, "Value")),
                )
            })
            .collect()
    }

    /// The rule named `<cluster>-<rule>`, if it exists, and its targets.
    fn rule(&self, rule: &str) -> Option<(Value, Value)> {
        let name = format!("{}-{rule}", self.cluster.replace('.', "-"));
        let (ok, described) = self.events("DescribeRule", &serde_json::json!({ "Name": name }));
        if !ok {
            return None;
        }
        let (ok, targets) = self.events("ListTargetsByRule", &serde_json::json!({ "Rule": name }));
        assert!(ok, "{targets}");
        Some((described, targets["Targets"].clone()))
    }

    /// The group's lifecycle hooks; `None` when the group does not exist
    /// (Auto Scaling answers ValidationError, and a group's hooks go with it).
    async fn hooks(&self, group: &str) -> Option<Vec<aws_sdk_autoscaling::types::LifecycleHook>> {
        match self
            .clients
            .autoscaling
            .describe_lifecycle_hooks()
            .auto_scaling_group_name(self.group_resource(group))
            .send()
            .await
        {
            Ok(answer) => Some(answer.lifecycle_hooks().to_vec()),
            Err(error) => {
                let text = format!(
                    "{}",
                    aws_sdk_autoscaling::error::DisplayErrorContext(&error)
                );
                assert!(text.contains("AutoScalingGroup name not found"), "{text}");
                None
            }
        }
    }

    fn recorded_resource_keys(&self) -> Vec<String> {
        let state: Value = serde_json::from_slice(
            &self
                .get_object("state.json")
                .expect("the recorded state exists"),
        )
        .expect("JSON");
        state["resources"]
            .as_object()
            .map(|resources| resources.keys().cloned().collect())
            .unwrap_or_default()
    }
}

fn between<'a>(text: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let Some(start) = text.find(&open).map(|at| at + open.len()) else {
        return "";
    };
    let end = text[start..]
        .find(&format!("</{tag}>"))
        .map_or(text.len(), |at| start + at);
    &text[start..end]
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The queue policy as created: EventBridge only, on the queue's own ARN,
/// only for each of the cluster's rules (by the ARN the endpoint gave it)
/// and only from the account (review finding 2).
fn assert_conditioned_policy(fixture: &ClusterFixture, policy: &str, queue_arn: &str) {
    let policy: Value = serde_json::from_str(policy).expect("policy JSON");
    let statements = policy["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 1, "{policy:#}");
    let statement = &statements[0];
    assert_eq!(statement["Action"], "sqs:SendMessage", "{policy:#}");
    assert_eq!(
        statement["Principal"],
        serde_json::json!({ "Service": "events.amazonaws.com" }),
        "{policy:#}"
    );
    assert_eq!(
        statement["Resource"].as_str(),
        Some(queue_arn),
        "{policy:#}"
    );
    assert!(
        queue_arn.starts_with("arn:aws:sqs:us-east-1:123456789012:"),
        "{queue_arn}"
    );
    let mut rule_arns: Vec<String> = RULES
        .iter()
        .map(|rule| {
            let (described, _) = fixture
                .rule(rule)
                .unwrap_or_else(|| panic!("no rule {rule}"));
            described["Arn"].as_str().expect("a rule ARN").to_owned()
        })
        .collect();
    rule_arns.sort();
    let mut named: Vec<String> = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
        .as_array()
        .expect("the rules' ARNs")
        .iter()
        .map(|arn| arn.as_str().expect("text").to_owned())
        .collect();
    named.sort();
    assert_eq!(named, rule_arns, "{policy:#}");
    assert_eq!(
        statement["Condition"]["StringEquals"]["aws:SourceAccount"], "123456789012",
        "{policy:#}"
    );
}

fn handler_keys() -> Vec<String> {
    let mut keys = vec!["sqs-queue/node-termination".to_owned()];
    keys.extend(RULES.iter().map(|rule| format!("event-rule/{rule}")));
    keys.extend(GROUPS.iter().map(|group| format!("lifecycle-hook/{group}")));
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_termination_handlers_resources_are_created_recorded_and_removed_by_delete_cluster() {
    let fixture = ClusterFixture::new("nth1.example.com").await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a"]);

    // Planned, each with its own kind, on by default.
    let plan = fixture.plan_json();
    let planned: Vec<(String, String)> = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|change| {
            (
                change["key"].as_str().expect("key").to_owned(),
                change["action"].as_str().expect("action").to_owned(),
            )
        })
        .collect();
    for key in handler_keys() {
        assert!(
            planned.contains(&(key.clone(), "create".to_owned())),
            "{key} not planned: {planned:?}"
        );
    }

    fixture.apply();
    fixture.assert_no_changes();

    // The queue: SSE-SQS, 900 s retention, a policy that lets only this
    // cluster's EventBridge rules in this account (the local endpoint's,
    // 123456789012, from sts:GetCallerIdentity) send to it.
    let url = fixture.queue_url().expect("the queue exists");
    let attributes = fixture.queue_attributes(&url);
    assert_eq!(
        attributes["MessageRetentionPeriod"], "900",
        "{attributes:?}"
    );
    assert_eq!(attributes["SqsManagedSseEnabled"], "true", "{attributes:?}");
    let queue_arn = &attributes["QueueArn"];
    assert_conditioned_policy(&fixture, &attributes["Policy"], queue_arn);

    // The rules, each with the queue as its one target; the lifecycle
    // rule scoped to the cluster's groups.
    for rule in RULES {
        let (described, targets) = fixture
            .rule(rule)
            .unwrap_or_else(|| panic!("no rule {rule}"));
        assert_eq!(described["State"], "ENABLED", "{described:#}");
        assert_eq!(targets.as_array().map(Vec::len), Some(1), "{targets:#}");
        assert_eq!(targets[0]["Arn"].as_str(), Some(queue_arn.as_str()));
        let pattern: Value =
            serde_json::from_str(described["EventPattern"].as_str().expect("a pattern"))
                .expect("pattern JSON");
        if rule == "asg-lifecycle" {
            let mut groups: Vec<String> = GROUPS
                .iter()
                .map(|group| fixture.group_resource(group))
                .collect();
            groups.sort();
            assert_eq!(
                pattern["detail"]["AutoScalingGroupName"],
                serde_json::json!(groups)
            );
            assert_eq!(
                pattern["detail-type"],
                serde_json::json!(["EC2 Instance-terminate Lifecycle Action"])
            );
        }
    }

    // The hooks: terminating, CONTINUE after 300 s.
    for group in GROUPS {
        let hooks = fixture.hooks(group).await.expect("the group exists");
        assert_eq!(hooks.len(), 1, "{group}: {hooks:?}");
        assert_eq!(
            hooks[0].lifecycle_hook_name(),
            Some("skiff-node-termination")
        );
        assert_eq!(
            hooks[0].lifecycle_transition(),
            Some("autoscaling:EC2_INSTANCE_TERMINATING")
        );
        assert_eq!(hooks[0].default_result(), Some("CONTINUE"));
        assert_eq!(hooks[0].heartbeat_timeout(), Some(300));
    }

    // Recorded, with the queue's URL and ARN.
    let recorded = fixture.recorded_resource_keys();
    for key in handler_keys() {
        assert!(recorded.contains(&key), "{key} not recorded: {recorded:?}");
    }

    // delete cluster removes them all.
    fixture
        .skiff(["delete", "cluster", &fixture.cluster, "--yes"])
        .assert_success();
    assert_eq!(fixture.queue_url(), None, "the queue is left");
    for rule in RULES {
        assert!(fixture.rule(rule).is_none(), "the rule {rule} is left");
    }
    for group in GROUPS {
        assert!(
            fixture.hooks(group).await.is_none(),
            "{group} and its hook are left"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_the_handler_off_plans_its_removal_without_a_roll() {
    let fixture = ClusterFixture::new("nth2.example.com").await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a"]);
    fixture.apply();
    assert!(fixture.queue_url().is_some());

    fixture.edit_cluster(|document| {
        document["spec"]["addons"]["nodeTerminationHandler"]["enabled"] = false.into();
    });
    let plan = fixture.plan_json();
    let changes = plan["changes"].as_array().expect("changes");
    let mut deleted: Vec<String> = changes
        .iter()
        .filter(|change| change["action"] == "delete")
        .map(|change| change["key"].as_str().expect("key").to_owned())
        .collect();
    deleted.sort();
    let mut expected = handler_keys();
    expected.sort();
    assert_eq!(deleted, expected, "{plan:#}");
    // Only the control plane's policy changes beside them (the processor's
    // statements go); no launch template, so no node rolls.
    for change in changes.iter().filter(|change| change["action"] != "delete") {
        assert_eq!(change["key"], "iam-role/control-plane", "{change:#}");
    }
    assert_eq!(plan["rollingUpdates"], serde_json::json!([]), "{plan:#}");

    fixture.apply();
    fixture.assert_no_changes();
    assert_eq!(fixture.queue_url(), None);
    for rule in RULES {
        assert!(fixture.rule(rule).is_none(), "the rule {rule} is left");
    }
    for group in GROUPS {
        assert!(
            fixture.hooks(group).await.map(|hooks| hooks.len()) == Some(0),
            "{group}'s hook is left"
        );
    }
    let recorded = fixture.recorded_resource_keys();
    for key in handler_keys() {
        assert!(!recorded.contains(&key), "{key} still recorded");
    }
}

/// An existing cluster's queue with the policy skiff wrote before (two
/// service principals, no condition, a `*` account): the plan updates the
/// queue's policy in place, and nothing else; the apply keeps the queue
/// (a message in it survives) and a re-plan is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_queue_with_the_old_policy_gets_the_conditioned_one_in_place() {
    let fixture = ClusterFixture::new("nth3.example.com").await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a"]);
    fixture.apply();
    let url = fixture.queue_url().expect("the queue exists");
    let old = format!(
        r#"{{"Statement":[{{"Action":"sqs:SendMessage","Effect":"Allow","Principal":{{"Service":["events.amazonaws.com","sqs.amazonaws.com"]}},"Resource":"arn:aws:sqs:us-east-1:*:{}","Sid":"EventBridgeSendsInterruptions"}}],"Version":"2012-10-17"}}"#,
        fixture.queue_name()
    );
    let (ok, body) = fixture.sqs(&[
        ("Action", "SetQueueAttributes"),
        ("QueueUrl", &url),
        ("Attribute.1.Name", "Policy"),
        ("Attribute.1.Value", &old),
    ]);
    assert!(ok, "{body}");
    let (ok, body) = fixture.sqs(&[
        ("Action", "SendMessage"),
        ("QueueUrl", &url),
        ("MessageBody", r#"{"source":"harness"}"#),
    ]);
    assert!(ok, "{body}");

    let plan = fixture.plan_json();
    let changes = plan["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "{plan:#}");
    let change = &changes[0];
    assert_eq!(change["key"], "sqs-queue/node-termination", "{plan:#}");
    assert_eq!(change["action"], "update", "{plan:#}");
    let fields: Vec<&str> = change["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|field| field["field"].as_str().expect("a field name"))
        .collect();
    assert_eq!(fields, ["policy"], "{change:#}");
    assert_eq!(
        change["fields"][0].get("forcesReplacement"),
        None,
        "{change:#}"
    );
    assert_eq!(plan["rollingUpdates"], serde_json::json!([]), "{plan:#}");

    fixture.apply();
    fixture.assert_no_changes();
    assert_eq!(fixture.queue_url().as_deref(), Some(url.as_str()));
    let attributes = fixture.queue_attributes(&url);
    assert_eq!(
        attributes["ApproximateNumberOfMessages"], "1",
        "the queue was replaced: {attributes:?}"
    );
    assert_conditioned_policy(&fixture, &attributes["Policy"], &attributes["QueueArn"]);
}
