//! The nodes' IAM policies, read back as JSON: what each role may write in
//! the state store (issue 16: the control plane writes only its `etcd/`
//! folder; workers write nothing).

mod support;

use serde_json::Value;
use skiff_api::new_cluster::new_cluster;
use skiff_api::Topology;
use skiff_plans::resource::{Attributes, ResourceKey, ResourceKind};
use skiff_plans::Lookups;
use support::options;

/// The statements of a role's inline policy.
fn statements(role: &str) -> Vec<Value> {
    let bundle = new_cluster(&options(
        "c1.example.com",
        &["us-east-1a", "us-east-1b", "us-east-1c"],
        Topology::Private,
    ))
    .expect("builds");
    let model = skiff_plans::desired_model(&bundle, &Lookups::stand_in(&bundle)).expect("model");
    let resource = model
        .get(&ResourceKey::new(ResourceKind::IamRole, role))
        .unwrap_or_else(|| panic!("no role {role}"));
    let Attributes::IamRole(attributes) = &resource.attributes else {
        panic!("{role} is not a role");
    };
    let policy: Value = serde_json::from_str(&attributes.policy).expect("policy is JSON");
    policy["Statement"]
        .as_array()
        .expect("a list of statements")
        .clone()
}

/// A string-or-list field as a list.
fn list(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().expect("strings").to_string())
            .collect(),
        Value::Null => Vec::new(),
        other => panic!("unexpected {other}"),
    }
}

fn allows(statement: &Value, action: &str) -> bool {
    list(&statement["Action"])
        .iter()
        .any(|allowed| allowed == action || allowed == "s3:*" || allowed == "*")
}

const STORE_WRITES: [&str; 2] = ["s3:PutObject", "s3:DeleteObject"];
/// `Lookups::stand_in`'s store: bucket `state`, prefix `team`.
const ETCD_OBJECTS: &str = "arn:aws:s3:::state/team/c1.example.com/etcd/*";

#[test]
fn control_plane_writes_only_its_etcd_folder() {
    let statements = statements("control-plane");
    let mut write_resources = Vec::new();
    for statement in &statements {
        assert_eq!(statement["Effect"], "Allow", "{statement}");
        if STORE_WRITES.iter().any(|action| allows(statement, action)) {
            write_resources.extend(list(&statement["Resource"]));
        }
    }
    assert!(
        !write_resources.is_empty(),
        "the control plane writes backups"
    );
    for resource in &write_resources {
        assert_eq!(resource, ETCD_OBJECTS, "a write outside etcd/");
    }
    // Both actions are granted on the folder, and nothing else is.
    for action in STORE_WRITES {
        assert!(
            statements.iter().any(|statement| allows(statement, action)
                && list(&statement["Resource"]) == [ETCD_OBJECTS]),
            "{action} on {ETCD_OBJECTS}"
        );
    }
    // The folder can be read back (leases, backups, the restore request).
    assert!(statements
        .iter()
        .any(|statement| allows(statement, "s3:GetObject")
            && list(&statement["Resource"]).contains(&ETCD_OBJECTS.to_string())));
}

#[test]
fn control_plane_lists_only_its_etcd_folder() {
    let statements = statements("control-plane");
    let listing: Vec<&Value> = statements
        .iter()
        .filter(|statement| allows(statement, "s3:ListBucket"))
        .collect();
    assert_eq!(listing.len(), 1, "{statements:?}");
    assert_eq!(list(&listing[0]["Resource"]), ["arn:aws:s3:::state"]);
    assert_eq!(
        list(&listing[0]["Condition"]["StringLike"]["s3:prefix"]),
        ["team/c1.example.com/etcd/*"]
    );
}

#[test]
fn workers_write_nothing_to_the_store() {
    let statements = statements("nodes");
    for statement in &statements {
        for action in list(&statement["Action"]) {
            assert!(
                !action.starts_with("s3:") || action == "s3:GetObject",
                "workers may {action}"
            );
        }
    }
}

#[test]
fn both_roles_may_mark_only_their_own_cluster_unhealthy() {
    for role in ["control-plane", "nodes"] {
        let statements = statements(role);
        let health: Vec<&Value> = statements
            .iter()
            .filter(|statement| allows(statement, "autoscaling:SetInstanceHealth"))
            .collect();
        assert_eq!(health.len(), 1, "{role}: {statements:?}");
        assert_eq!(
            health[0]["Condition"]["StringEquals"]["aws:ResourceTag/KubernetesCluster"],
            "c1.example.com",
            "{role}"
        );
    }
}

/// The statements of a role's inline policy with the node termination
/// handler on or off.
fn statements_with_handler(role: &str, enabled: bool) -> Vec<Value> {
    let mut bundle = new_cluster(&options(
        "c1.example.com",
        &["us-east-1a", "us-east-1b", "us-east-1c"],
        Topology::Private,
    ))
    .expect("builds");
    bundle.cluster.spec.addons.node_termination_handler =
        Some(skiff_api::NodeTerminationHandlerSpec {
            enabled: Some(enabled),
        });
    let model = skiff_plans::desired_model(&bundle, &Lookups::stand_in(&bundle)).expect("model");
    let Attributes::IamRole(attributes) = &model
        .get(&ResourceKey::new(ResourceKind::IamRole, role))
        .expect("role")
        .attributes
    else {
        panic!("{role} is not a role");
    };
    let policy: Value = serde_json::from_str(&attributes.policy).expect("policy is JSON");
    policy["Statement"].as_array().expect("statements").clone()
}

/// The node termination processor's calls, each made by the same NTH
/// source (`pkg/monitor/sqsevent/sqs-monitor.go`: ReceiveMessage,
/// DeleteMessage, DescribeInstances; `asg-lifecycle-event.go`:
/// CompleteLifecycleAction), on the control-plane role only, and only when
/// the handler is on.
#[test]
fn the_termination_processor_gets_its_calls_only_when_enabled() {
    let queue = "arn:aws:sqs:us-east-1:*:c1-example-com-nth";
    let on = statements_with_handler("control-plane", true);
    let sqs: Vec<&Value> = on
        .iter()
        .filter(|statement| allows(statement, "sqs:ReceiveMessage"))
        .collect();
    assert_eq!(sqs.len(), 1, "{on:?}");
    assert_eq!(
        list(&sqs[0]["Action"]),
        ["sqs:DeleteMessage", "sqs:ReceiveMessage"]
    );
    assert_eq!(
        list(&sqs[0]["Resource"]),
        [queue],
        "only the cluster's queue"
    );
    let complete: Vec<&Value> = on
        .iter()
        .filter(|statement| allows(statement, "autoscaling:CompleteLifecycleAction"))
        .collect();
    assert_eq!(complete.len(), 1, "{on:?}");
    assert_eq!(
        complete[0]["Condition"]["StringEquals"]["aws:ResourceTag/KubernetesCluster"],
        "c1.example.com",
        "scoped by the cluster tag"
    );
    assert!(on.iter().any(
        |statement| statement["Sid"] == "FindTerminatingInstanceNode"
            && list(&statement["Action"]) == ["ec2:DescribeInstances"]
    ));

    let off = statements_with_handler("control-plane", false);
    for statement in &off {
        for action in [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "autoscaling:CompleteLifecycleAction",
        ] {
            assert!(
                !allows(statement, action),
                "{action} while off: {statement}"
            );
        }
        assert_ne!(statement["Sid"], "FindTerminatingInstanceNode");
    }
    assert_eq!(on.len(), off.len() + 3);

    for statement in statements_with_handler("nodes", true) {
        for action in [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "autoscaling:CompleteLifecycleAction",
        ] {
            assert!(
                !allows(&statement, action),
                "nodes get {action}: {statement}"
            );
        }
    }
}
