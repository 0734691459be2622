//! IAM: one role, inline policy and instance profile each for the control
//! plane and the nodes (bastions get none).
//!
//! Least privilege: nodes may read only the state-store objects their
//! bootstrap needs (the CA certificate and the join token for workers; the
//! cluster PKI for the control plane), as listed by
//! `skiff_templates::state_store`. The one prefix a node may write is the
//! control plane's `<cluster>/etcd/` (the init lock, the leases, the backups
//! and the restore request): a compromised control-plane node can damage its
//! own cluster's backups but never the spec, the recorded state or the PKI.
//! Cloud permissions that a cloud controller or cluster autoscaler would use
//! are limited by a condition on the cluster tag, so one cluster's nodes
//! cannot touch another cluster's instances.

use serde_json::{json, Value};
use skiff_api::InstanceGroupRole;
use skiff_templates::state_store;

use super::{role_name, Builder};
use crate::canonical::canonical_json;
use crate::error::PlanError;
use crate::names;
use crate::resource::{
    Attributes, DesiredResource, IamRoleAttributes, InstanceProfileAttributes, Output, ResourceKey,
    ResourceKind,
};

/// The name of the inline policy on each role.
pub const POLICY_NAME: &str = "skiff";

/// The folder under the cluster prefix that control-plane nodes own: the
/// init lock, the leases, the etcd backups and the restore request
/// (`skiff_state::layout::etcd_folder` names the same folder; the engine's
/// tests check that the two agree).
pub const ETCD_FOLDER: &str = "etcd";

/// The roles that get IAM resources.
pub const ROLES: [InstanceGroupRole; 2] =
    [InstanceGroupRole::ControlPlane, InstanceGroupRole::Node];

pub(crate) fn build(builder: &mut Builder<'_>) -> Result<(), PlanError> {
    let cluster = builder.cluster_name().to_string();
    let store = builder
        .lookups
        .state_store
        .clone()
        .ok_or(PlanError::StateStoreNotS3)?;
    let partition = if builder.lookups.partition.is_empty() {
        "aws".to_string()
    } else {
        builder.lookups.partition.clone()
    };
    let prefix = store.cluster_prefix(&cluster);
    let assume = canonical_json(&json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": "ec2.amazonaws.com" },
            "Action": "sts:AssumeRole"
        }]
    }));
    for role in ROLES {
        let object_arn = |key: &str| {
            Value::String(format!(
                "arn:{partition}:s3:::{}/{prefix}/{key}",
                store.bucket
            ))
        };
        let reads: Vec<Value> = state_store::objects_read_by(role)
            .into_iter()
            .map(object_arn)
            .collect();
        let mut statements = vec![
            json!({ "Sid": "ReadBootstrapObjects", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": reads }),
            json!({ "Sid": "DescribeCloud", "Effect": "Allow", "Action": ["ec2:DescribeInstances", "ec2:DescribeRegions", "ec2:DescribeAvailabilityZones"], "Resource": "*" }),
            // A bootstrap that keeps failing marks its own instance unhealthy
            // so that the group replaces it; only in this cluster's groups.
            json!({
                "Sid": "ReportOwnHealth",
                "Effect": "Allow",
                "Action": ["autoscaling:SetInstanceHealth"],
                "Resource": "*",
                "Condition": { "StringEquals": { format!("aws:ResourceTag/{}", names::CLUSTER_TAG): cluster.clone() } }
            }),
        ];
        if role == InstanceGroupRole::ControlPlane {
            // Everything a control-plane node writes is under `etcd/` (the
            // init lock, the leases, the backups, the restore request:
            // `skiff_templates::state_store::folder_written_by`).
            let etcd_objects = Value::String(format!(
                "arn:{partition}:s3:::{}/{prefix}/{ETCD_FOLDER}/*",
                store.bucket
            ));
            statements.push(json!({
                "Sid": "ManageEtcdState",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": [etcd_objects]
            }));
            statements.push(json!({
                "Sid": "ListEtcdState",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [format!("arn:{partition}:s3:::{}", store.bucket)],
                "Condition": { "StringLike": { "s3:prefix": [format!("{prefix}/{ETCD_FOLDER}/*")] } }
            }));
            statements.push(json!({
                "Sid": "ManageOwnClusterInstances",
                "Effect": "Allow",
                "Action": ["ec2:CreateTags", "ec2:ModifyInstanceAttribute", "autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
                "Resource": "*",
                "Condition": { "StringEquals": { format!("aws:ResourceTag/{}", names::CLUSTER_TAG): cluster.clone() } }
            }));
        }
        let policy = canonical_json(&json!({ "Version": "2012-10-17", "Statement": statements }));
        let name = role_name(role);
        let role_key = ResourceKey::new(ResourceKind::IamRole, name);
        let role_name_aws = names::iam_role(&cluster, name);
        let tags = builder.tags(&role_key, &role_name_aws);
        builder.add(DesiredResource {
            key: role_key.clone(),
            attributes: Attributes::IamRole(IamRoleAttributes {
                name: role_name_aws.clone(),
                path: names::iam_path(&cluster),
                assume_role_policy: assume.clone(),
                policy_name: POLICY_NAME.to_string(),
                policy,
                tags,
            }),
        });
        builder.add(DesiredResource {
            key: ResourceKey::new(ResourceKind::InstanceProfile, name),
            attributes: Attributes::InstanceProfile(InstanceProfileAttributes {
                name: role_name_aws,
                path: names::iam_path(&cluster),
                role: role_key.output(Output::Name),
            }),
        });
    }
    Ok(())
}

#[cfg(test)]
mod folder_tests {
    #[test]
    fn the_policy_folder_is_the_one_the_nodes_write() {
        assert_eq!(
            format!("{}/", super::ETCD_FOLDER),
            skiff_templates::state_store::ETCD_FOLDER
        );
    }
}
