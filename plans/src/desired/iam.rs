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
//! Cloud permissions: each role may make only the AWS calls its own
//! bootstrap script makes (`templates/templates/bootstrap.sh.j2`, every
//! `aws_query`), and the control-plane role those of the enabled addons
//! that run there (`addon_iam`); everything that supports it is limited by a
//! condition on the cluster tag, so one cluster's nodes cannot touch another
//! cluster's instances.

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

/// The roles that get IAM resources in every cluster; an external etcd
/// cluster's members get theirs only when there are any ([`roles_of`]).
pub const ROLES: [InstanceGroupRole; 2] =
    [InstanceGroupRole::ControlPlane, InstanceGroupRole::Node];

/// The roles of this cluster that get IAM resources: [`ROLES`], and `Etcd`
/// with external etcd (the members read the etcd CA and their script, and
/// report their own health; they write nothing to the store).
pub fn roles_of(bundle: &skiff_api::ClusterBundle) -> Vec<InstanceGroupRole> {
    let mut roles = ROLES.to_vec();
    if bundle.cluster.spec.etcd.topology == skiff_api::EtcdTopology::External {
        roles.push(InstanceGroupRole::Etcd);
    }
    roles
}

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
    for role in roles_of(builder.bundle) {
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
        // The bootstrap's only EC2 read: control-plane nodes find the other
        // control-plane instances (`control_plane_ips`), etcd members the
        // other members (`find_running_cluster`). Workers call nothing.
        if matches!(
            role,
            InstanceGroupRole::ControlPlane | InstanceGroupRole::Etcd
        ) {
            statements.push(json!({ "Sid": "FindClusterInstances", "Effect": "Allow", "Action": ["ec2:DescribeInstances"], "Resource": "*" }));
        }
        if skiff_templates::state_store::folder_written_by(role).is_some() {
            // Everything a control-plane node writes is under `etcd/` (the
            // init lock, the leases, the backups, the restore request:
            // `skiff_templates::state_store::folder_written_by`); an
            // external etcd member writes its backups, leases and
            // certificate reports there and clears the restore request.
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
            // Listing is what lets S3 answer 404 rather than 403 for a key
            // that does not exist: the folder, and the objects outside it
            // that the node probes (`objects_probed_by`).
            let listed: Vec<String> = std::iter::once(format!("{prefix}/{ETCD_FOLDER}/*"))
                .chain(
                    state_store::objects_probed_by(role)
                        .into_iter()
                        .map(|key| format!("{prefix}/{key}")),
                )
                .collect();
            statements.push(json!({
                "Sid": "ListEtcdState",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [format!("arn:{partition}:s3:::{}", store.bucket)],
                "Condition": { "StringLike": { "s3:prefix": listed } }
            }));
        }
        if role == InstanceGroupRole::ControlPlane {
            // The addons that call AWS run here (hostNetwork, one hop from
            // IMDS), and only the enabled ones get their actions.
            for addon in builder.bundle.cluster.spec.addons.enabled_addons() {
                statements.extend(super::addon_iam::statements(addon, &cluster, &partition));
            }
        }
        // A stacked etcd member tags its own instance once it votes
        // (`mark_member`); with external etcd the members do (`mark_etcd_member`).
        let marks_members = match role {
            InstanceGroupRole::ControlPlane => {
                builder.bundle.cluster.spec.etcd.topology != skiff_api::EtcdTopology::External
            }
            InstanceGroupRole::Etcd => true,
            InstanceGroupRole::Node | InstanceGroupRole::Bastion => false,
        };
        if marks_members {
            // The tag a rolling update waits for before it replaces the next
            // member, and a restore's fence reads.
            statements.push(json!({
                "Sid": "MarkOwnEtcdMember",
                "Effect": "Allow",
                "Action": ["ec2:CreateTags"],
                "Resource": format!("arn:{partition}:ec2:*:*:instance/*"),
                "Condition": {
                    "StringEquals": { format!("aws:ResourceTag/{}", names::CLUSTER_TAG): cluster.clone() },
                    "ForAllValues:StringEquals": { "aws:TagKeys": ["skiff.dev/etcd-member"] }
                }
            }));
        }
        if role == InstanceGroupRole::ControlPlane {
            statements.extend(super::node_termination::control_plane_statements(
                builder.bundle,
                &partition,
            ));
        }
        if let Some(statement) = kms_statement(&store, &partition, role) {
            statements.push(statement);
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

/// The use of the store's KMS key a role needs, when the bucket's default
/// encryption names one: every node decrypts what it reads; control-plane
/// nodes also write (the etcd backups, leases and reports), which asks KMS
/// for a data key. Nothing without a key: SSE-S3, or the AWS managed key
/// `aws/s3`, which S3 uses on the caller's behalf.
///
/// The key as the bucket names it decides the statement's form: an ARN is
/// the resource; a bare key ID becomes `arn:…:kms:<store region>:*:key/<ID>`
/// (key IDs are unique, the account is not known to the planner); an alias
/// cannot be an IAM resource for these actions, so it is matched with the
/// `kms:ResourceAliases` condition.
fn kms_statement(
    store: &crate::lookups::StateStoreRef,
    partition: &str,
    role: InstanceGroupRole,
) -> Option<Value> {
    let key = store.kms_key.as_deref()?;
    let actions: Vec<&str> = match role {
        InstanceGroupRole::ControlPlane | InstanceGroupRole::Etcd => {
            vec!["kms:Decrypt", "kms:GenerateDataKey"]
        }
        _ => vec!["kms:Decrypt"],
    };
    let alias = key
        .strip_prefix("alias/")
        .map(|name| format!("alias/{name}"))
        .or_else(|| {
            key.split_once(":alias/")
                .filter(|(head, _)| head.starts_with("arn:"))
                .map(|(_, name)| format!("alias/{name}"))
        });
    Some(match alias {
        Some(alias) => json!({
            "Sid": "UseStateStoreKey",
            "Effect": "Allow",
            "Action": actions,
            "Resource": "*",
            "Condition": { "ForAnyValue:StringEquals": { "kms:ResourceAliases": alias } }
        }),
        None => {
            let resource = if key.starts_with("arn:") {
                key.to_string()
            } else {
                format!("arn:{partition}:kms:{}:*:key/{key}", store.region)
            };
            json!({ "Sid": "UseStateStoreKey", "Effect": "Allow", "Action": actions, "Resource": resource })
        }
    })
}

#[cfg(test)]
mod kms_tests {
    use skiff_api::InstanceGroupRole;

    use super::kms_statement;
    use crate::lookups::StateStoreRef;

    fn store(kms_key: Option<&str>) -> StateStoreRef {
        StateStoreRef {
            bucket: "state".into(),
            prefix: "team".into(),
            region: "eu-west-1".into(),
            endpoint: None,
            kms_key: kms_key.map(str::to_string),
        }
    }

    #[test]
    fn the_key_is_granted_only_when_the_store_uses_one() {
        assert_eq!(
            kms_statement(&store(None), "aws", InstanceGroupRole::ControlPlane),
            None
        );
        let arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let control_plane =
            kms_statement(&store(Some(arn)), "aws", InstanceGroupRole::ControlPlane)
                .expect("a statement");
        assert_eq!(control_plane["Resource"], arn);
        assert_eq!(
            control_plane["Action"],
            serde_json::json!(["kms:Decrypt", "kms:GenerateDataKey"])
        );
        let node = kms_statement(
            &store(Some("1234abcd-12ab-34cd-56ef-1234567890ab")),
            "aws",
            InstanceGroupRole::Node,
        )
        .expect("a statement");
        assert_eq!(node["Action"], serde_json::json!(["kms:Decrypt"]));
        assert_eq!(
            node["Resource"],
            "arn:aws:kms:eu-west-1:*:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        );
        let alias = kms_statement(
            &store(Some("alias/skiff-state")),
            "aws",
            InstanceGroupRole::Node,
        )
        .expect("a statement");
        assert_eq!(alias["Resource"], "*");
        assert_eq!(
            alias["Condition"]["ForAnyValue:StringEquals"]["kms:ResourceAliases"],
            "alias/skiff-state"
        );
    }
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
