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
