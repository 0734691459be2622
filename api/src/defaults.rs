//! Filling in defaults that depend on other fields (the region from the
//! zones, an instance group's subnets from its role, its image from its OS
//! family), so that the stored spec says everything that will be built.
//!
//! Defaults that depend on nothing are serde defaults on the types
//! themselves; both kinds end up written out in the stored YAML.

use crate::cluster::{SubnetType, Topology};
use crate::document::ClusterBundle;
use crate::instance_group::InstanceGroupRole;
use crate::CLUSTER_LABEL;

/// The region an availability zone belongs to: `us-east-1a` → `us-east-1`,
/// `us-west-2-lax-1a` (a Local Zone) → `us-west-2`. `None` when the text does
/// not look like a zone.
pub fn region_of_zone(zone: &str) -> Option<String> {
    let parts: Vec<&str> = zone.split('-').collect();
    let numbered = parts
        .iter()
        .position(|part| part.starts_with(|character: char| character.is_ascii_digit()))?;
    if numbered < 2 {
        return None;
    }
    let number: String = parts[numbered]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let mut region: Vec<&str> = parts[..numbered].to_vec();
    region.push(&number);
    Some(region.join("-"))
}

/// Fills every context-dependent default in place. Idempotent: applying it
/// to a complete spec changes nothing.
pub fn apply_defaults(bundle: &mut ClusterBundle) {
    let cluster_name = bundle.cluster.metadata.name.clone();
    let spec = &mut bundle.cluster.spec;
    if spec.region.is_none() {
        spec.region = spec
            .subnets
            .first()
            .and_then(|subnet| region_of_zone(&subnet.zone));
    }
    let topology = spec.topology;
    let subnets_of = |wanted: SubnetType| -> Vec<String> {
        spec.subnets
            .iter()
            .filter(|subnet| subnet.subnet_type == wanted)
            .map(|subnet| subnet.name.clone())
            .collect()
    };
    let node_subnets = match topology {
        Topology::Public => subnets_of(SubnetType::Public),
        Topology::Private => subnets_of(SubnetType::Private),
    };
    let bastion_subnets = match topology {
        Topology::Public => subnets_of(SubnetType::Public),
        Topology::Private => subnets_of(SubnetType::Utility),
    };
    let mut etcd_members = 0;
    for group in &mut bundle.instance_groups {
        group
            .metadata
            .labels
            .entry(CLUSTER_LABEL.to_string())
            .or_insert_with(|| cluster_name.clone());
        if group.spec.image.is_none() {
            group.spec.image = Some(group.spec.os_family.default_image().to_string());
        }
        if group.spec.subnets.is_empty() {
            group.spec.subnets = match group.spec.role {
                InstanceGroupRole::Bastion => bastion_subnets.clone(),
                InstanceGroupRole::ControlPlane | InstanceGroupRole::Node => node_subnets.clone(),
                // One subnet per member, taken in turn, so the members
                // spread over the zones.
                InstanceGroupRole::Etcd => node_subnets
                    .get(etcd_members % node_subnets.len().max(1))
                    .cloned()
                    .into_iter()
                    .collect(),
            };
        }
        if group.spec.role == InstanceGroupRole::Etcd {
            etcd_members += 1;
        }
    }
    bundle.normalize_order();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_from_zones() {
        assert_eq!(region_of_zone("us-east-1a").as_deref(), Some("us-east-1"));
        assert_eq!(
            region_of_zone("us-west-2-lax-1a").as_deref(),
            Some("us-west-2")
        );
        assert_eq!(
            region_of_zone("us-gov-west-1b").as_deref(),
            Some("us-gov-west-1")
        );
        assert_eq!(
            region_of_zone("eu-central-1c").as_deref(),
            Some("eu-central-1")
        );
        assert_eq!(region_of_zone("nowhere"), None);
        assert_eq!(region_of_zone("1a"), None);
    }
}
