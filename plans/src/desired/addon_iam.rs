//! The AWS permissions of the addons that call AWS (`spec.addons`), on the
//! control-plane role only.
//!
//! How the addons get credentials (the kops model, issue 18 Build 6): every
//! instance keeps IMDSv2 with `httpTokens: required` and a hop limit of 1,
//! so a pod in its own network namespace cannot get a token and therefore
//! never reaches the instance role. The addons that call AWS (the
//! cloud-controller-manager, the EBS CSI *controller*, cluster-autoscaler)
//! run on control-plane nodes with `hostNetwork: true`, one hop from IMDS,
//! and their permissions are here, on the control-plane role; the worker
//! role has none of them (kops: `pkg/model/iam/iam_builder.go`,
//! `NodeRoleMaster.BuildAWSPolicy` adds them when no IRSA is used,
//! `NodeRoleNode.BuildAWSPolicy` never).
//!
//! Scoping: every action whose API supports resource tags is limited by the
//! cluster's ownership tag `kubernetes.io/cluster/<cluster>=owned`, which
//! skiff puts on its instances and auto scaling groups, which the
//! cloud-controller-manager puts on the load balancers and security groups
//! it creates (cloud-provider-aws `pkg/providers/v1/tags.go`, `buildTags`:
//! `TagNameKubernetesClusterPrefix + clusterID = owned`), and which the EBS
//! CSI driver puts on the volumes and snapshots it creates when it runs with
//! `--k8s-tag-cluster-id=<cluster>` (aws-ebs-csi-driver
//! `pkg/driver/controller.go`: `ResourceLifecycleTagPrefix + clusterID =
//! owned`, beside `KubernetesCluster`; skiff's manifest passes it). Creates are allowed only with that tag in the request
//! (`aws:RequestTag`), everything else only on resources carrying it
//! (`aws:ResourceTag`). Describe calls have no resource type: `*`.
//!
//! Which actions: issue 18 asks for "exactly what the upstream
//! documentation lists" and "no action nothing uses". Where the two
//! conflict (research open question 9) skiff takes the documented list and
//! drops what the addon's code never calls in skiff's configuration, adding
//! nothing the documentation omits except where the code needs it and kops
//! grants it; each statement names its source.

use serde_json::{json, Value};
use skiff_api::Addon;

/// The condition every mutating statement carries: the resource has the
/// cluster's ownership tag.
fn owned(cluster: &str) -> Value {
    json!({ "StringEquals": { format!("aws:ResourceTag/kubernetes.io/cluster/{cluster}"): "owned" } })
}

/// The condition of a create: the request puts the ownership tag on it.
fn requested(cluster: &str) -> Value {
    json!({ "StringEquals": { format!("aws:RequestTag/kubernetes.io/cluster/{cluster}"): "owned" } })
}

/// The statements of `addon` on the control-plane role (none for an addon
/// that calls no AWS API).
pub fn statements(addon: Addon, cluster: &str, partition: &str) -> Vec<Value> {
    match addon {
        Addon::CloudControllerManager => cloud_controller_manager(cluster, partition),
        Addon::EbsCsiDriver => ebs_csi_driver(cluster, partition),
        Addon::ClusterAutoscaler => cluster_autoscaler(cluster),
        // metrics-server reads the kubelets only (kubernetes-sigs/metrics-server
        // README: no cloud permissions).
        Addon::MetricsServer => Vec::new(),
    }
}

/// The AWS cloud-controller-manager.
///
/// Source: kubernetes/cloud-provider-aws `docs/prerequisites.md`, "IAM
/// Policies", control-plane policy. Left out, because the CCM's code calls
/// them in no path skiff configures (the in-tree provider's volume plugin and
/// launch-configuration code were removed; `--configure-cloud-routes=false`):
/// `ec2:CreateVolume`, `ec2:AttachVolume`, `ec2:DetachVolume`,
/// `ec2:DeleteVolume`, `ec2:ModifyVolume`, `ec2:DescribeVolumes`,
/// `autoscaling:DescribeLaunchConfigurations`, `ec2:CreateRoute`,
/// `ec2:DeleteRoute` (kops leaves out the same ones: kubernetes/kops
/// `pkg/model/iam/iam_builder.go` `AddCCMPermissions`, routes only for
/// kubenet). Added as kops does, because the NLB code calls them:
/// `elasticloadbalancing:DescribeTargetGroupAttributes` and
/// `elasticloadbalancing:ModifyTargetGroupAttributes`. The tag conditions
/// follow kops's split of the same list.
fn cloud_controller_manager(cluster: &str, partition: &str) -> Vec<Value> {
    vec![
        json!({
            "Sid": "CloudControllerManagerDescribe",
            "Effect": "Allow",
            "Action": [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeTags",
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeInstanceTopology",
                "ec2:DescribeInstances",
                "ec2:DescribeRegions",
                "ec2:DescribeRouteTables",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeVpcs",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeLoadBalancerAttributes",
                "elasticloadbalancing:DescribeLoadBalancerPolicies",
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeTargetGroupAttributes",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetHealth",
                "kms:DescribeKey"
            ],
            "Resource": "*"
        }),
        // The first load balancer of an account creates ELB's service-linked
        // role; only that one (iam:AWSServiceName is the documented key).
        json!({
            "Sid": "CloudControllerManagerLoadBalancerServiceRole",
            "Effect": "Allow",
            "Action": ["iam:CreateServiceLinkedRole"],
            "Resource": "*",
            "Condition": { "StringEquals": { "iam:AWSServiceName": "elasticloadbalancing.amazonaws.com" } }
        }),
        json!({
            "Sid": "CloudControllerManagerOwnedResources",
            "Effect": "Allow",
            "Action": [
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:DeleteSecurityGroup",
                "ec2:ModifyInstanceAttribute",
                "ec2:RevokeSecurityGroupIngress",
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:ApplySecurityGroupsToLoadBalancer",
                "elasticloadbalancing:AttachLoadBalancerToSubnets",
                "elasticloadbalancing:ConfigureHealthCheck",
                "elasticloadbalancing:CreateLoadBalancerListeners",
                "elasticloadbalancing:CreateLoadBalancerPolicy",
                "elasticloadbalancing:DeleteListener",
                "elasticloadbalancing:DeleteLoadBalancer",
                "elasticloadbalancing:DeleteLoadBalancerListeners",
                "elasticloadbalancing:DeleteTargetGroup",
                "elasticloadbalancing:DeregisterInstancesFromLoadBalancer",
                "elasticloadbalancing:DeregisterTargets",
                "elasticloadbalancing:DetachLoadBalancerFromSubnets",
                "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:ModifyTargetGroup",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:RegisterInstancesWithLoadBalancer",
                "elasticloadbalancing:RegisterTargets",
                "elasticloadbalancing:SetLoadBalancerPoliciesForBackendServer",
                "elasticloadbalancing:SetLoadBalancerPoliciesOfListener",
                "elasticloadbalancing:SetSecurityGroups"
            ],
            "Resource": "*",
            "Condition": owned(cluster)
        }),
        json!({
            "Sid": "CloudControllerManagerCreateOwned",
            "Effect": "Allow",
            "Action": [
                "ec2:CreateSecurityGroup",
                "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:CreateLoadBalancer",
                "elasticloadbalancing:CreateTargetGroup"
            ],
            "Resource": "*",
            "Condition": requested(cluster)
        }),
        // ELB authorizes a Create* call that carries tags a second time, as
        // `elasticloadbalancing:AddTags` on the resource being created, which
        // has no tags yet, so the statement above on `owned` resources does
        // not match it; `elasticloadbalancing:CreateAction` names the create.
        // Without this a Service of type LoadBalancer fails with AccessDenied
        // on AddTags (kubernetes-sigs/aws-load-balancer-controller
        // `docs/install/iam_policy.json`, the statement added by PR #3086
        // and explained in issue #3428; ELB user guide, "Tag resources on
        // creation"). The cloud-controller-manager tags its load balancers,
        // target groups and listeners at creation (cloud-provider-aws
        // `pkg/providers/v1/aws_loadbalancer.go`), so all three creates.
        json!({
            "Sid": "CloudControllerManagerTagNewLoadBalancers",
            "Effect": "Allow",
            "Action": ["elasticloadbalancing:AddTags"],
            "Resource": [
                format!("arn:{partition}:elasticloadbalancing:*:*:loadbalancer/*"),
                format!("arn:{partition}:elasticloadbalancing:*:*:targetgroup/*"),
                format!("arn:{partition}:elasticloadbalancing:*:*:listener/*")
            ],
            "Condition": {
                "StringEquals": {
                    format!("aws:RequestTag/kubernetes.io/cluster/{cluster}"): "owned",
                    "elasticloadbalancing:CreateAction": [
                        "CreateListener",
                        "CreateLoadBalancer",
                        "CreateTargetGroup"
                    ]
                }
            }
        }),
        // CreateSecurityGroup also authorizes on the VPC, which has no
        // request tag (kops: "interacts with vpc, which do not support RequestTag").
        json!({
            "Sid": "CloudControllerManagerSecurityGroupVpc",
            "Effect": "Allow",
            "Action": ["ec2:CreateSecurityGroup"],
            "Resource": format!("arn:{partition}:ec2:*:*:vpc/*")
        }),
        // Tags only at the creation of its own security groups.
        json!({
            "Sid": "CloudControllerManagerTagNewSecurityGroups",
            "Effect": "Allow",
            "Action": ["ec2:CreateTags"],
            "Resource": format!("arn:{partition}:ec2:*:*:security-group/*"),
            "Condition": {
                "StringEquals": {
                    format!("aws:RequestTag/kubernetes.io/cluster/{cluster}"): "owned",
                    "ec2:CreateAction": "CreateSecurityGroup"
                }
            }
        }),
    ]
}

/// The Amazon EBS CSI driver's controller.
///
/// Source: kubernetes-sigs/aws-ebs-csi-driver
/// `docs/AmazonEBSCSIDriverPolicyV2.json` (the policy `docs/install.md`
/// points to, = the AWS managed `AmazonEBSCSIDriverPolicyV2`): the same
/// actions, with its conditions on the driver's own tag
/// (`ebs.csi.aws.com/cluster=true`, set by *any* cluster's driver) replaced
/// by this cluster's ownership tag (kops's scoping, `AddAWSEBSCSIDriverPermissions`).
/// Attach and detach authorize on the instance too, which skiff's instances
/// of this cluster carry the tag of.
fn ebs_csi_driver(cluster: &str, partition: &str) -> Vec<Value> {
    let volumes = format!("arn:{partition}:ec2:*:*:volume/*");
    let snapshots = format!("arn:{partition}:ec2:*:*:snapshot/*");
    let instances = format!("arn:{partition}:ec2:*:*:instance/*");
    vec![
        json!({
            "Sid": "EbsCsiDriverDescribe",
            "Effect": "Allow",
            "Action": [
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeInstances",
                "ec2:DescribeSnapshots",
                "ec2:DescribeVolumeStatus",
                "ec2:DescribeVolumes",
                "ec2:DescribeVolumesModifications"
            ],
            "Resource": "*"
        }),
        json!({
            "Sid": "EbsCsiDriverCreateOwned",
            "Effect": "Allow",
            "Action": ["ec2:CopyVolumes", "ec2:CreateSnapshot", "ec2:CreateVolume"],
            "Resource": [volumes.clone(), snapshots.clone()],
            "Condition": requested(cluster)
        }),
        json!({
            "Sid": "EbsCsiDriverOwnedVolumesAndSnapshots",
            "Effect": "Allow",
            "Action": [
                "ec2:AttachVolume",
                "ec2:CopyVolumes",
                "ec2:CreateSnapshot",
                "ec2:CreateVolume",
                "ec2:DeleteSnapshot",
                "ec2:DeleteVolume",
                "ec2:DetachVolume",
                "ec2:EnableFastSnapshotRestores",
                "ec2:LockSnapshot",
                "ec2:ModifyVolume"
            ],
            "Resource": [volumes.clone(), snapshots.clone(), instances],
            "Condition": owned(cluster)
        }),
        json!({
            "Sid": "EbsCsiDriverTagAtCreation",
            "Effect": "Allow",
            "Action": ["ec2:CreateTags"],
            "Resource": [volumes.clone(), snapshots],
            "Condition": { "StringEquals": { "ec2:CreateAction": ["CreateVolume", "CreateSnapshot", "CopyVolumes"] } }
        }),
        // Volume modification tags (VolumeAttributesClass), never the
        // ownership tag itself (V2 protects its own keys the same way).
        json!({
            "Sid": "EbsCsiDriverRetagOwnedVolumes",
            "Effect": "Allow",
            "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
            "Resource": [volumes],
            "Condition": {
                "StringEquals": { format!("aws:ResourceTag/kubernetes.io/cluster/{cluster}"): "owned" },
                "Null": { "aws:TagKeys": "false" },
                "ForAllValues:StringNotEquals": {
                    "aws:TagKeys": [
                        format!("kubernetes.io/cluster/{cluster}"),
                        "KubernetesCluster",
                        "ebs.csi.aws.com/cluster",
                        "ebs.csi.aws.com/cluster-name",
                        "kubernetes.io/created-for/pvc/name"
                    ]
                }
            }
        }),
    ]
}

/// cluster-autoscaler with auto-discovery.
///
/// Source: kubernetes/autoscaler `cluster-autoscaler/cloudprovider/aws/README.md`,
/// "Permissions", "Full Cluster Autoscaler Features Policy (Recommended)".
/// Left out: `eks:DescribeNodegroup` (EKS managed node groups only; kops
/// leaves it out too). The two mutating actions are restricted by tag, as
/// the README recommends ("restrict the target resources for the
/// autoscaling actions ... using tag based conditionals"): only this
/// cluster's groups (`aws:ResourceTag/kubernetes.io/cluster/<cluster>`;
/// condition key: AWS Service Authorization Reference, Amazon EC2 Auto Scaling).
fn cluster_autoscaler(cluster: &str) -> Vec<Value> {
    vec![
        json!({
            "Sid": "ClusterAutoscalerDescribe",
            "Effect": "Allow",
            "Action": [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements"
            ],
            "Resource": "*"
        }),
        json!({
            "Sid": "ClusterAutoscalerOwnedGroups",
            "Effect": "Allow",
            "Action": [
                "autoscaling:SetDesiredCapacity",
                "autoscaling:TerminateInstanceInAutoScalingGroup"
            ],
            "Resource": "*",
            "Condition": owned(cluster)
        }),
    ]
}
