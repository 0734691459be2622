//! The API server's network load balancer: a TCP listener on 443 forwarding
//! to a target group on 6443 that the control-plane groups register with.
//!
//! The target group does not preserve client addresses: with preservation
//! on, a control-plane node that reaches the API through the load balancer
//! and lands on itself drops the packets (NLB hairpinning), which breaks
//! `kubeadm init --control-plane-endpoint`. Client filtering happens on the
//! load balancer's own security group instead.

use std::collections::BTreeSet;

use skiff_api::{LoadBalancerType, SubnetType, Topology};

use super::security::API_LOAD_BALANCER;
use super::{security_group_key, Builder};
use crate::error::PlanError;
use crate::names;
use crate::resource::{
    Attributes, DesiredResource, ListenerAttributes, LoadBalancerAttributes, Output, ResourceKey,
    ResourceKind, TargetGroupAttributes,
};

/// The port clients use.
pub const API_PORT: u16 = 443;
/// The port the API server listens on.
pub const API_SERVER_PORT: u16 = 6443;

/// The key of the API load balancer.
pub fn load_balancer_key() -> ResourceKey {
    ResourceKey::new(ResourceKind::LoadBalancer, "api")
}

/// The key of the API target group.
pub fn target_group_key() -> ResourceKey {
    ResourceKey::new(ResourceKind::TargetGroup, "api")
}

pub(crate) fn build(builder: &mut Builder<'_>) -> Result<(), PlanError> {
    let cluster = builder.cluster_name().to_string();
    let spec = &builder.bundle.cluster.spec;
    let load_balancer_type = spec.api.load_balancer.load_balancer_type;
    // An NLB takes one subnet per zone.
    let wanted = match (load_balancer_type, spec.topology) {
        (LoadBalancerType::Public, Topology::Private) => SubnetType::Utility,
        (LoadBalancerType::Internal, Topology::Private) => SubnetType::Private,
        (_, Topology::Public) => SubnetType::Public,
    };
    let mut zones = BTreeSet::new();
    let mut subnets = Vec::new();
    for subnet in builder.subnets_of(wanted) {
        if zones.insert(subnet.zone.clone()) {
            subnets.push(builder.subnet_id(&subnet.name)?);
        }
    }
    if subnets.is_empty() {
        return Err(PlanError::NoLoadBalancerSubnet {
            subnet_type: wanted.to_string(),
        });
    }
    subnets.sort();

    let key = load_balancer_key();
    let name = names::load_balancer(&cluster);
    let tags = builder.tags(&key, &name);
    builder.add(DesiredResource {
        key: key.clone(),
        attributes: Attributes::LoadBalancer(LoadBalancerAttributes {
            name,
            scheme: match load_balancer_type {
                LoadBalancerType::Public => "internet-facing".to_string(),
                LoadBalancerType::Internal => "internal".to_string(),
            },
            subnets,
            security_groups: vec![security_group_key(API_LOAD_BALANCER).output(Output::Id)],
            tags,
        }),
    });

    let target_key = target_group_key();
    let target_name = names::target_group(&cluster);
    let target_tags = builder.tags(&target_key, &target_name);
    builder.add(DesiredResource {
        key: target_key.clone(),
        attributes: Attributes::TargetGroup(TargetGroupAttributes {
            name: target_name,
            vpc: builder.vpc_id(),
            protocol: "TCP".to_string(),
            port: API_SERVER_PORT,
            health_check_protocol: "HTTPS".to_string(),
            health_check_path: "/readyz".to_string(),
            preserve_client_ip: false,
            deregistration_delay_seconds: 30,
            tags: target_tags,
        }),
    });

    builder.add(DesiredResource {
        key: ResourceKey::new(ResourceKind::Listener, "api"),
        attributes: Attributes::Listener(ListenerAttributes {
            load_balancer: key.output(Output::Id),
            port: API_PORT,
            protocol: "TCP".to_string(),
            target_group: target_key.output(Output::Id),
        }),
    });
    Ok(())
}
