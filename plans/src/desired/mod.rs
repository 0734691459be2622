//! The desired model: every AWS resource a cluster spec calls for, with the
//! references between them. Built from the spec and the [`Lookups`] only;
//! no I/O, and the same input always gives the same model.
//!
//! One file per area, so a reader finds "where is the NAT gateway?" by
//! name: [`network`] (VPC, subnets, gateways, routes), [`security`]
//! (security groups and rules), [`iam`] (roles, policies, profiles),
//! [`compute`] (key pair, launch templates, auto scaling groups),
//! [`load_balancer`] (the API's NLBs) and [`dns`] (the API record, and the
//! private zone that answers it inside the VPC).

use std::collections::BTreeMap;

use skiff_api::document::ClusterBundle;
use skiff_api::{InstanceGroupRole, SubnetType};

use crate::error::PlanError;
use crate::lookups::Lookups;
use crate::names;
use crate::resource::{DesiredResource, Id, Output, ResourceKey, ResourceKind, Tags};

pub mod addon_iam;
pub mod addons;
pub mod compute;
pub mod dns;
pub mod etcd;
pub mod iam;
pub mod load_balancer;
pub mod network;
pub mod node_termination;
pub mod security;

/// The complete desired model of a cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredModel {
    /// The cluster.
    pub cluster: String,
    /// Every resource, sorted by key.
    pub resources: Vec<DesiredResource>,
    /// Each instance group's architecture and image, in the spec's order.
    pub instance_groups: Vec<crate::plan::GroupImage>,
    /// What the operator should know about the cluster as built, which no
    /// change shows (e.g. `load_balancer::gossip_warning`).
    pub warnings: Vec<String>,
}

impl DesiredModel {
    /// The bootstrap scripts of every launch template, each once (for
    /// Terraform's output, whose apply launches instances skiff never sees).
    pub fn bootstrap_scripts(
        &self,
    ) -> Result<Vec<skiff_templates::StoredScript>, crate::PlanError> {
        crate::plan::bootstrap_scripts(self.resources.iter().filter_map(|resource| {
            match &resource.attributes {
                crate::resource::Attributes::LaunchTemplate(template) => {
                    Some((resource.key.name(), template.as_ref()))
                }
                _ => None,
            }
        }))
    }

    /// The resource with this key.
    pub fn get(&self, key: &ResourceKey) -> Option<&DesiredResource> {
        self.resources.iter().find(|resource| &resource.key == key)
    }
}

/// What the builders of each area share.
pub(crate) struct Builder<'spec> {
    pub bundle: &'spec ClusterBundle,
    pub lookups: &'spec Lookups,
    pub resources: BTreeMap<ResourceKey, DesiredResource>,
}

impl<'spec> Builder<'spec> {
    pub fn cluster_name(&self) -> &str {
        self.bundle.name()
    }

    pub fn tags(&self, key: &ResourceKey, name: &str) -> Tags {
        names::tags(
            self.cluster_name(),
            &self.bundle.cluster.spec.cloud_labels,
            key,
            name,
        )
    }

    pub fn add(&mut self, resource: DesiredResource) {
        self.resources.insert(resource.key.clone(), resource);
    }

    /// The VPC's ID: the shared VPC's, or a reference to ours.
    pub fn vpc_id(&self) -> Id {
        match &self.lookups.shared_vpc {
            Some(shared) => Id::Value(shared.id.clone()),
            None => ResourceKey::new(ResourceKind::Vpc, "").output(Output::Id),
        }
    }

    /// A spec subnet's ID: the shared subnet's, or a reference to ours.
    pub fn subnet_id(&self, name: &str) -> Result<Id, PlanError> {
        let subnet = self
            .bundle
            .cluster
            .spec
            .subnets
            .iter()
            .find(|subnet| subnet.name == name)
            .ok_or_else(|| PlanError::UnknownSubnet {
                subnet: name.to_string(),
            })?;
        match &subnet.id {
            Some(id) => match self.lookups.shared_subnets.get(name) {
                Some(shared) => Ok(Id::Value(shared.id.clone())),
                None => Err(PlanError::SharedSubnetMissing {
                    subnet: name.to_string(),
                    id: id.clone(),
                }),
            },
            None => Ok(ResourceKey::new(ResourceKind::Subnet, name).output(Output::Id)),
        }
    }

    /// The names of the spec's subnets of a type, in spec order.
    pub fn subnets_of(&self, wanted: SubnetType) -> Vec<&'spec skiff_api::ClusterSubnet> {
        self.bundle
            .cluster
            .spec
            .subnets
            .iter()
            .filter(|subnet| subnet.subnet_type == wanted)
            .collect()
    }

    /// Whether the cluster has any bastion group.
    pub fn has_bastions(&self) -> bool {
        self.bundle
            .instance_groups
            .iter()
            .any(|group| group.spec.role == InstanceGroupRole::Bastion)
    }
}

/// The key of a role's security group: `security-group/control-plane`.
pub fn security_group_key(role: &str) -> ResourceKey {
    ResourceKey::new(ResourceKind::SecurityGroup, role)
}

/// The resource-name form of a role.
pub fn role_name(role: InstanceGroupRole) -> &'static str {
    match role {
        InstanceGroupRole::ControlPlane => "control-plane",
        InstanceGroupRole::Node => "nodes",
        InstanceGroupRole::Bastion => "bastion",
        InstanceGroupRole::Etcd => "etcd",
    }
}

/// Builds the desired model of a validated spec.
pub fn build(bundle: &ClusterBundle, lookups: &Lookups) -> Result<DesiredModel, PlanError> {
    let mut builder = Builder {
        bundle,
        lookups,
        resources: BTreeMap::new(),
    };
    network::build(&mut builder)?;
    security::build(&mut builder)?;
    iam::build(&mut builder)?;
    load_balancer::build(&mut builder)?;
    dns::build(&mut builder)?;
    compute::build(&mut builder)?;
    node_termination::build(&mut builder)?;
    addons::build(&mut builder)?;
    let resources: Vec<DesiredResource> = builder.resources.into_values().collect();
    let model = DesiredModel {
        cluster: bundle.name().to_string(),
        resources,
        instance_groups: compute::group_images(bundle, lookups)?,
        warnings: load_balancer::gossip_warning(&bundle.cluster, lookups)
            .into_iter()
            .collect(),
    };
    crate::graph::order(&model.resources)?;
    Ok(model)
}
