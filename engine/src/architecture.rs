//! The architecture check a spec write makes before it stores anything:
//! a group whose `mixedInstancesPolicy` mixes architectures, or whose AMI
//! ID is built for another architecture than its machine type, is refused
//! by field path, as the plan would refuse it later (kops checks the same
//! at `create ig`: `CrossValidateInstanceGroup`). Only the groups that
//! changed and name an AMI ID or several types are checked, so an ordinary
//! spec write makes no AWS call at all (a folder store needs no
//! credentials); their types' architectures come from one
//! `DescribeInstanceTypes` call.

use skiff_api::document::ClusterBundle;
use skiff_api::InstanceGroup;
use skiff_plans::Lookups;

use crate::cluster::region;
use crate::error::{EngineError, Result};

/// The groups of `bundle` a write must check: new or changed since
/// `previous`, with an AMI ID or a `mixedInstancesPolicy`.
pub fn groups_to_check<'a>(
    previous: Option<&ClusterBundle>,
    bundle: &'a ClusterBundle,
) -> Vec<&'a InstanceGroup> {
    bundle
        .instance_groups
        .iter()
        .filter(|group| {
            group.spec.mixed_instances_policy.is_some()
                || group
                    .spec
                    .image
                    .as_deref()
                    .is_some_and(|image| image.starts_with("ami-"))
        })
        .filter(|group| {
            previous
                .and_then(|previous| previous.instance_group(group.name()))
                .is_none_or(|before| {
                    before.spec.machine_type != group.spec.machine_type
                        || before.spec.image != group.spec.image
                        || before.spec.mixed_instances_policy != group.spec.mixed_instances_policy
                })
        })
        .collect()
}

/// Refuses the first group of [`groups_to_check`] whose types or image do
/// not share one architecture (`skiff_plans::desired::compute::check_architecture`).
pub async fn check_architectures(
    aws: &aws_config::SdkConfig,
    previous: Option<&ClusterBundle>,
    bundle: &ClusterBundle,
) -> Result<()> {
    let groups = groups_to_check(previous, bundle);
    if groups.is_empty() {
        return Ok(());
    }
    let checked = ClusterBundle {
        cluster: bundle.cluster.clone(),
        instance_groups: groups.into_iter().cloned().collect(),
    };
    let provider = skiff_providers::AwsProvider::new(aws, &region(bundle)?);
    let (images, machine_types) =
        provider
            .resolve_images(&checked)
            .await
            .map_err(|source| EngineError::Lookups {
                cluster: bundle.name().to_string(),
                source: Box::new(source),
            })?;
    let lookups = Lookups {
        images,
        machine_types,
        ..Lookups::default()
    };
    for group in &checked.instance_groups {
        skiff_plans::desired::compute::check_architecture(group, &lookups).map_err(|source| {
            EngineError::Architecture {
                cluster: bundle.name().to_string(),
                source,
            }
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use skiff_api::new_cluster::{new_cluster, NewClusterOptions};
    use skiff_api::{Cni, LoadBalancerType, MixedInstancesPolicy, OsFamily, Topology};

    use super::*;

    fn bundle() -> ClusterBundle {
        new_cluster(&NewClusterOptions {
            name: "c1.example.com".into(),
            zones: vec!["us-east-1a".into()],
            control_plane_zones: Vec::new(),
            control_plane_count: 1,
            control_plane_size: "t3.medium".into(),
            node_count: 1,
            node_size: "m7g.large".into(),
            kubernetes_version: "1.34.2".parse().expect("valid"),
            topology: Topology::Public,
            cni: Cni::Calico,
            dns_zone: None,
            network_cidr: "10.0.0.0/16".into(),
            network_id: None,
            ssh_public_key: None,
            api_load_balancer_type: LoadBalancerType::Public,
            cloud_labels: BTreeMap::new(),
            image: None,
            os_family: OsFamily::Debian,
            admin_access: vec!["0.0.0.0/0".into()],
            ssh_access: vec!["0.0.0.0/0".into()],
        })
        .expect("builds")
    }

    fn names(groups: Vec<&InstanceGroup>) -> Vec<&str> {
        groups.into_iter().map(InstanceGroup::name).collect()
    }

    /// A write of default groups asks AWS nothing; a new or changed group
    /// with several types or an AMI ID is checked, an unchanged one not.
    #[test]
    fn only_changed_groups_with_several_types_or_an_ami_are_checked() {
        let plain = bundle();
        assert!(groups_to_check(None, &plain).is_empty());

        let mut mixed = plain.clone();
        mixed.instance_groups[1].spec.mixed_instances_policy = Some(MixedInstancesPolicy {
            instance_types: vec!["m7i.large".into()],
            on_demand_base_capacity: 0,
            on_demand_percentage_above_base: 100,
            spot_allocation_strategy: "price-capacity-optimized".into(),
        });
        let changed = mixed.instance_groups[1].name().to_string();
        assert_eq!(
            names(groups_to_check(Some(&plain), &mixed)),
            [changed.as_str()]
        );
        assert_eq!(names(groups_to_check(None, &mixed)), [changed.as_str()]);
        assert!(groups_to_check(Some(&mixed), &mixed).is_empty());

        let mut ami = plain.clone();
        ami.instance_groups[0].spec.image = Some("ami-0123456789abcdef0".into());
        assert_eq!(
            names(groups_to_check(Some(&plain), &ami)),
            [ami.instance_groups[0].name()]
        );
    }
}
