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
        [
            "team/c1.example.com/etcd/*",
            "team/c1.example.com/bootstrap/init-lock",
            "team/c1.example.com/addons/*"
        ]
    );
}

/// Every key the control-plane script probes with `object_exists` (a HEAD
/// whose 404 means "absent") is one S3 may answer 404 for: the role may
/// list it. Without that, S3 answers 403 and the bootstrap fails.
#[test]
fn every_key_the_control_plane_probes_is_listable() {
    let bundle = new_cluster(&options(
        "c1.example.com",
        &["us-east-1a"],
        Topology::Public,
    ))
    .expect("builds");
    let model = skiff_plans::desired_model(&bundle, &Lookups::stand_in(&bundle)).expect("model");
    let scripts = model.bootstrap_scripts().expect("scripts");
    let script = scripts
        .iter()
        .find(|script| {
            script
                .content
                .lines()
                .nth(2)
                .is_some_and(|line| line.starts_with("# (control-plane,"))
        })
        .expect("a control-plane script");
    let listable: Vec<String> = list(
        &statements("control-plane")
            .iter()
            .find(|statement| allows(statement, "s3:ListBucket"))
            .expect("a listing")["Condition"]["StringLike"]["s3:prefix"],
    );
    let matches = |key: &str| {
        listable
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(folder) => key.starts_with(folder),
                None => key == pattern,
            })
    };
    let probed: Vec<String> = script
        .content
        .lines()
        .flat_map(|line| line.split("object_exists ").skip(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(|word| word.trim_matches(|c| c == '"' || c == '\''))
        .filter(|word| !word.starts_with('$') && !word.is_empty() && *word != "KEY:")
        .map(|key| format!("team/c1.example.com/{key}"))
        .collect();
    assert!(
        probed.len() >= 4,
        "the script's probes were not found: {probed:?}"
    );
    for key in probed {
        assert!(
            matches(&key),
            "{key} is probed but not listable: {listable:?}"
        );
    }
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

// ---------------------------------------------------------------------------
// Issue 18, Build 6: least privilege per addon.
//
// The lists below are copied from each addon's upstream documentation, not
// from skiff's code, so the test holds the code to the sources.
// ---------------------------------------------------------------------------

use std::collections::BTreeSet;

use skiff_api::{Addon, AddonSpec, AddonsSpec};

/// kubernetes/cloud-provider-aws `docs/prerequisites.md`, "IAM Policies",
/// the control-plane policy (every action it lists, as listed).
const CCM_DOCUMENTED: &[&str] = &[
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeTags",
    "ec2:DescribeInstances",
    "ec2:DescribeRegions",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVolumes",
    "ec2:DescribeAvailabilityZones",
    "ec2:CreateSecurityGroup",
    "ec2:CreateTags",
    "ec2:CreateVolume",
    "ec2:ModifyInstanceAttribute",
    "ec2:ModifyVolume",
    "ec2:AttachVolume",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:CreateRoute",
    "ec2:DeleteRoute",
    "ec2:DeleteSecurityGroup",
    "ec2:DeleteVolume",
    "ec2:DetachVolume",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:DescribeVpcs",
    "ec2:DescribeInstanceTopology",
    "elasticloadbalancing:AddTags",
    "elasticloadbalancing:AttachLoadBalancerToSubnets",
    "elasticloadbalancing:ApplySecurityGroupsToLoadBalancer",
    "elasticloadbalancing:CreateLoadBalancer",
    "elasticloadbalancing:CreateLoadBalancerPolicy",
    "elasticloadbalancing:CreateLoadBalancerListeners",
    "elasticloadbalancing:ConfigureHealthCheck",
    "elasticloadbalancing:DeleteLoadBalancer",
    "elasticloadbalancing:DeleteLoadBalancerListeners",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DetachLoadBalancerFromSubnets",
    "elasticloadbalancing:DeregisterInstancesFromLoadBalancer",
    "elasticloadbalancing:ModifyLoadBalancerAttributes",
    "elasticloadbalancing:RegisterInstancesWithLoadBalancer",
    "elasticloadbalancing:SetLoadBalancerPoliciesForBackendServer",
    "elasticloadbalancing:CreateListener",
    "elasticloadbalancing:CreateTargetGroup",
    "elasticloadbalancing:DeleteListener",
    "elasticloadbalancing:DeleteTargetGroup",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeLoadBalancerPolicies",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:ModifyListener",
    "elasticloadbalancing:ModifyTargetGroup",
    "elasticloadbalancing:RegisterTargets",
    "elasticloadbalancing:DeregisterTargets",
    "elasticloadbalancing:SetLoadBalancerPoliciesOfListener",
    "elasticloadbalancing:SetSecurityGroups",
    "iam:CreateServiceLinkedRole",
    "kms:DescribeKey",
];

/// Documented actions the cloud-controller-manager never calls as skiff
/// runs it (research open question 9: "no action nothing uses" wins): the
/// in-tree provider's volume and launch-configuration leftovers, and the
/// routes of `--configure-cloud-routes` (off). kops's `AddCCMPermissions`
/// (kubernetes/kops `pkg/model/iam/iam_builder.go`) leaves out the same.
const CCM_UNUSED: &[&str] = &[
    "autoscaling:DescribeLaunchConfigurations",
    "ec2:AttachVolume",
    "ec2:CreateRoute",
    "ec2:CreateVolume",
    "ec2:DeleteRoute",
    "ec2:DeleteVolume",
    "ec2:DescribeVolumes",
    "ec2:DetachVolume",
    "ec2:ModifyVolume",
];

/// Called by the CCM's NLB code but missing from its documentation; kops
/// grants them (`AddCCMPermissions`).
const CCM_UNDOCUMENTED_USED: &[&str] = &[
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:ModifyTargetGroupAttributes",
];

/// kubernetes-sigs/aws-ebs-csi-driver `docs/AmazonEBSCSIDriverPolicyV2.json`
/// (the policy `docs/install.md` points to).
const EBS_DOCUMENTED: &[&str] = &[
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeSnapshots",
    "ec2:DescribeVolumes",
    "ec2:DescribeVolumesModifications",
    "ec2:DescribeVolumeStatus",
    "ec2:CreateVolume",
    "ec2:CopyVolumes",
    "ec2:CreateSnapshot",
    "ec2:ModifyVolume",
    "ec2:AttachVolume",
    "ec2:DetachVolume",
    "ec2:DeleteVolume",
    "ec2:EnableFastSnapshotRestores",
    "ec2:DeleteSnapshot",
    "ec2:LockSnapshot",
    "ec2:CreateTags",
    "ec2:DeleteTags",
];

/// kubernetes/autoscaler `cluster-autoscaler/cloudprovider/aws/README.md`,
/// "Full Cluster Autoscaler Features Policy (Recommended)".
const AUTOSCALER_DOCUMENTED: &[&str] = &[
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
    "eks:DescribeNodegroup",
    "autoscaling:SetDesiredCapacity",
    "autoscaling:TerminateInstanceInAutoScalingGroup",
];

/// Only for EKS managed node groups, which skiff has none of.
const AUTOSCALER_UNUSED: &[&str] = &["eks:DescribeNodegroup"];

/// What each addon's statements should grant: the documented list, less
/// what nothing calls, plus what the code calls beyond it.
fn expected_actions(addon: Addon) -> BTreeSet<String> {
    let (documented, unused, added): (&[&str], &[&str], &[&str]) = match addon {
        Addon::CloudControllerManager => (CCM_DOCUMENTED, CCM_UNUSED, CCM_UNDOCUMENTED_USED),
        Addon::EbsCsiDriver => (EBS_DOCUMENTED, &[], &[]),
        Addon::ClusterAutoscaler => (AUTOSCALER_DOCUMENTED, AUTOSCALER_UNUSED, &[]),
        // metrics-server calls no AWS API (kubernetes-sigs/metrics-server README).
        Addon::MetricsServer => (&[], &[], &[]),
    };
    documented
        .iter()
        .filter(|action| !unused.contains(action))
        .chain(added)
        .map(|action| action.to_string())
        .collect()
}

/// The statement-ID prefix of an addon's statements.
fn sid_prefix(addon: Addon) -> &'static str {
    match addon {
        Addon::CloudControllerManager => "CloudControllerManager",
        Addon::EbsCsiDriver => "EbsCsiDriver",
        Addon::MetricsServer => "MetricsServer",
        Addon::ClusterAutoscaler => "ClusterAutoscaler",
    }
}

fn cluster_with(addons: &[(Addon, bool)]) -> skiff_api::ClusterBundle {
    let mut bundle = new_cluster(&options(
        "c1.example.com",
        &["us-east-1a", "us-east-1b", "us-east-1c"],
        Topology::Private,
    ))
    .expect("builds");
    let mut spec = AddonsSpec::default();
    for (addon, enabled) in addons {
        let setting = Some(AddonSpec {
            enabled: Some(*enabled),
            version: None,
        });
        match addon {
            Addon::CloudControllerManager => spec.cloud_controller_manager = setting,
            Addon::EbsCsiDriver => spec.ebs_csi_driver = setting,
            Addon::MetricsServer => spec.metrics_server = setting,
            Addon::ClusterAutoscaler => spec.cluster_autoscaler = setting,
        }
    }
    bundle.cluster.spec.addons = spec;
    bundle
}

fn role_statements(bundle: &skiff_api::ClusterBundle, role: &str) -> Vec<Value> {
    let model = skiff_plans::desired_model(bundle, &Lookups::stand_in(bundle)).expect("model");
    let resource = model
        .get(&ResourceKey::new(ResourceKind::IamRole, role))
        .unwrap_or_else(|| panic!("no role {role}"));
    let Attributes::IamRole(attributes) = &resource.attributes else {
        panic!("{role} is not a role");
    };
    let policy: Value = serde_json::from_str(&attributes.policy).expect("policy is JSON");
    policy["Statement"].as_array().expect("statements").clone()
}

fn actions_of<'a>(statements: impl IntoIterator<Item = &'a Value>) -> BTreeSet<String> {
    statements
        .into_iter()
        .flat_map(|statement| list(&statement["Action"]))
        .collect()
}

fn all_addons(enabled: bool) -> Vec<(Addon, bool)> {
    Addon::ALL.iter().map(|addon| (*addon, enabled)).collect()
}

#[test]
fn each_addon_gets_exactly_its_upstream_actions_on_the_control_plane() {
    let statements = role_statements(&cluster_with(&all_addons(true)), "control-plane");
    for addon in Addon::ALL {
        let granted = actions_of(statements.iter().filter(|statement| {
            statement["Sid"]
                .as_str()
                .is_some_and(|sid| sid.starts_with(sid_prefix(addon)))
        }));
        assert_eq!(granted, expected_actions(addon), "{addon}");
    }
}

#[test]
fn only_enabled_addons_get_actions_and_workers_never_do() {
    // The defaults: cloud-controller-manager, EBS CSI and metrics-server on,
    // cluster-autoscaler off.
    let defaults = role_statements(&cluster_with(&[]), "control-plane");
    let sids: Vec<&str> = defaults
        .iter()
        .filter_map(|statement| statement["Sid"].as_str())
        .collect();
    assert!(sids
        .iter()
        .any(|sid| sid.starts_with("CloudControllerManager")));
    assert!(sids.iter().any(|sid| sid.starts_with("EbsCsiDriver")));
    assert!(
        !sids.iter().any(|sid| sid.starts_with("ClusterAutoscaler")),
        "{sids:?}"
    );
    let none = role_statements(&cluster_with(&all_addons(false)), "control-plane");
    for addon in Addon::ALL {
        assert!(
            !none.iter().any(|statement| statement["Sid"]
                .as_str()
                .is_some_and(|sid| sid.starts_with(sid_prefix(addon)))),
            "{addon} is off but has statements"
        );
    }
    // Workers: nothing of any addon, whatever is enabled.
    let workers = actions_of(&role_statements(&cluster_with(&all_addons(true)), "nodes"));
    assert_eq!(
        workers,
        ["autoscaling:SetInstanceHealth", "s3:GetObject"]
            .map(String::from)
            .into_iter()
            .collect()
    );
}

/// Every addon action that changes something is scoped: a condition on the
/// cluster's tags (or the request's), or a resource narrower than `*`.
#[test]
fn mutating_addon_actions_are_scoped_to_the_cluster() {
    let statements = role_statements(&cluster_with(&all_addons(true)), "control-plane");
    for statement in &statements {
        let sid = statement["Sid"].as_str().unwrap_or_default();
        if !Addon::ALL
            .iter()
            .any(|addon| sid.starts_with(sid_prefix(*addon)))
        {
            continue;
        }
        let reads_only = list(&statement["Action"]).iter().all(|action| {
            let verb = action.split(':').nth(1).unwrap_or_default();
            verb.starts_with("Describe") || verb.starts_with("Get")
        });
        if reads_only {
            assert_eq!(
                statement["Condition"],
                Value::Null,
                "{sid}: a read needs no condition"
            );
            continue;
        }
        let conditions = statement["Condition"].to_string();
        let scoped = conditions.contains("kubernetes.io/cluster/c1.example.com")
            || conditions.contains("ec2:CreateAction")
            || conditions.contains("iam:AWSServiceName")
            || list(&statement["Resource"])
                .iter()
                .all(|resource| resource != "*");
        assert!(scoped, "{sid} changes things without a scope: {statement}");
    }
}

/// ELB authorizes a tagged Create* a second time as `AddTags` on the
/// resource being created, which carries no tag yet: the
/// cloud-controller-manager needs `AddTags` granted for its creates by
/// `elasticloadbalancing:CreateAction` with its request tag, and for
/// nothing else without the resource tag
/// (kubernetes-sigs/aws-load-balancer-controller `docs/install/iam_policy.json`).
#[test]
fn the_cloud_controller_manager_may_tag_what_it_creates_and_only_that() {
    let statements = role_statements(&cluster_with(&all_addons(true)), "control-plane");
    let add_tags: Vec<&Value> = statements
        .iter()
        .filter(|statement| {
            list(&statement["Action"])
                .iter()
                .any(|action| action == "elasticloadbalancing:AddTags")
        })
        .collect();
    let on_create: Vec<&&Value> = add_tags
        .iter()
        .filter(|statement| {
            !statement["Condition"]["StringEquals"]["elasticloadbalancing:CreateAction"].is_null()
        })
        .collect();
    assert_eq!(on_create.len(), 1, "one tag-on-create grant: {add_tags:?}");
    let grant = on_create[0];
    let creates = list(&grant["Condition"]["StringEquals"]["elasticloadbalancing:CreateAction"]);
    for create in ["CreateLoadBalancer", "CreateTargetGroup", "CreateListener"] {
        assert!(
            creates.iter().any(|named| named == create),
            "{create} missing from {grant}"
        );
        // ...and the create itself is allowed (with the request tag).
        assert!(
            statements.iter().any(|statement| list(&statement["Action"])
                .iter()
                .any(|action| action == &format!("elasticloadbalancing:{create}"))
                && statement["Condition"]
                    .to_string()
                    .contains("aws:RequestTag/kubernetes.io/cluster/c1.example.com")),
            "{create} is not granted with the cluster's request tag"
        );
    }
    assert_eq!(
        grant["Condition"]["StringEquals"]["aws:RequestTag/kubernetes.io/cluster/c1.example.com"],
        "owned",
        "tag-on-create must carry the cluster's ownership tag: {grant}"
    );
    for resource in list(&grant["Resource"]) {
        assert!(
            resource.starts_with("arn:aws:elasticloadbalancing:"),
            "{resource}: tag-on-create is for ELB resources only"
        );
    }
    // Every other AddTags grant needs the resource already owned.
    for statement in add_tags
        .iter()
        .filter(|statement| !on_create.contains(statement))
    {
        assert!(
            statement["Condition"]
                .to_string()
                .contains("aws:ResourceTag/kubernetes.io/cluster/c1.example.com"),
            "AddTags without the ownership condition: {statement}"
        );
    }
}

/// No role keeps an action nothing uses: the AWS calls of each role's own
/// bootstrap script (`Action=...` of its `aws_query`s) are exactly its
/// non-addon, non-S3 actions.
#[test]
fn each_role_may_make_exactly_the_calls_its_bootstrap_makes() {
    {
        let bundle = cluster_with(&all_addons(false));
        let model =
            skiff_plans::desired_model(&bundle, &Lookups::stand_in(&bundle)).expect("model");
        let scripts = model.bootstrap_scripts().expect("scripts");
        for (role, marker) in [("control-plane", "(control-plane,"), ("nodes", "(worker,")] {
            let script = scripts
                .iter()
                .find(|script| {
                    script
                        .content
                        .lines()
                        .nth(2)
                        .is_some_and(|line| line.starts_with(&format!("# {marker}")))
                })
                .unwrap_or_else(|| panic!("no {role} script"));
            let called: BTreeSet<String> = script
                .content
                .match_indices("aws_query ")
                .filter_map(|(at, _)| {
                    // The call with its continuation lines (`\` at the end).
                    let rest = &script.content[at..];
                    let line = rest.replace("\\\n", " ");
                    let line = line.lines().next()?;
                    let service = line.split_whitespace().nth(1)?;
                    let action = line.split("Action=").nth(1)?.split('&').next()?;
                    Some(format!("{service}:{action}"))
                })
                .collect();
            let granted: BTreeSet<String> = actions_of(&role_statements(&bundle, role))
                .into_iter()
                .filter(|action| !action.starts_with("s3:") && !action.starts_with("kms:"))
                .collect();
            assert_eq!(
                granted, called,
                "{role}: granted vs called by its bootstrap"
            );
        }
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
/// CompleteLifecycleAction; skiff's ChangeMessageVisibility for a retry),
/// on the control-plane role only, and only when
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
        [
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:ReceiveMessage"
        ]
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
            "sqs:ChangeMessageVisibility",
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
