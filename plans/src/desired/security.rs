//! Security groups and their ingress rules.
//!
//! Groups and rules are separate resources because the rules of the
//! control plane refer to the nodes' group and the other way round; as one
//! resource they would form a dependency cycle. Egress stays AWS's default
//! (everything allowed) and is not managed.
//!
//! What is open, and why:
//! - control plane: 6443 from nodes, itself, the API load balancer and the
//!   admin CIDRs; 2379-2380 (etcd) between control-plane nodes; 10250-10259
//!   (kubelet, scheduler, controller manager) inside the cluster;
//! - nodes: 10250 (kubelet) from the control plane and nodes (metrics);
//!   30000-32767 (NodePorts) from inside the VPC;
//! - both: the CNI's ports between cluster members (8472/udp VXLAN for
//!   cilium and flannel, plus 4240/tcp cilium health; 179/tcp BGP, IP-in-IP
//!   and 5473/tcp Typha for calico; with Windows groups, calico's VXLAN on
//!   4789/udp), and 22 from the SSH CIDRs (or from the bastions when the
//!   cluster has any);
//! - both: ICMP (all types) between cluster members, for path MTU
//!   discovery and health checks;
//! - API load balancer: 443 from the admin CIDRs and the cluster itself;
//! - external etcd members (`spec.etcd.topology: external`, group `etcd`):
//!   2379 (client) from the control plane and from the members (a member
//!   that replaces another adds itself through a peer's client port), 2380
//!   (peer) from the members only, 22 as the other instances; nothing from
//!   the nodes. The control plane then has no etcd port open at all.

use skiff_api::Cni;

use super::{security_group_key, Builder};
use crate::error::PlanError;
use crate::resource::{
    Attributes, DesiredResource, Id, IngressRule, Output, ResourceKey, ResourceKind, RuleSource,
    SecurityGroupAttributes, SecurityGroupRulesAttributes,
};

/// The security groups of a cluster by role name.
pub const CONTROL_PLANE: &str = "control-plane";
/// Nodes' group.
pub const NODES: &str = "nodes";
/// The API load balancer's group.
pub const API_LOAD_BALANCER: &str = "api-load-balancer";
/// Bastions' group.
pub const BASTION: &str = "bastion";

fn rule(protocol: &str, from_port: i32, to_port: i32, source: RuleSource) -> IngressRule {
    IngressRule {
        protocol: protocol.to_string(),
        from_port,
        to_port,
        source,
    }
}

fn group(role: &str) -> RuleSource {
    RuleSource::Group(security_group_key(role).output(Output::Id))
}

pub(crate) fn build(builder: &mut Builder<'_>) -> Result<(), PlanError> {
    let cluster = builder.cluster_name().to_string();
    let spec = &builder.bundle.cluster.spec;
    let vpc = builder.vpc_id();
    let bastions = builder.has_bastions();

    let external_etcd = super::etcd::is_external(builder);
    let mut roles = vec![CONTROL_PLANE, NODES, API_LOAD_BALANCER];
    if bastions {
        roles.push(BASTION);
    }
    if external_etcd {
        roles.push(super::etcd::ETCD);
    }
    for role in &roles {
        let key = security_group_key(role);
        let name = format!("{role}.{cluster}");
        let tags = builder.tags(&key, &name);
        builder.add(DesiredResource {
            key,
            attributes: Attributes::SecurityGroup(SecurityGroupAttributes {
                vpc: vpc.clone(),
                name,
                description: format!("skiff: {role} of cluster {cluster}"),
                tags,
            }),
        });
    }

    let members = [CONTROL_PLANE, NODES];
    let mut control_plane = Vec::new();
    let mut nodes = Vec::new();
    let mut load_balancer = Vec::new();

    // The Kubernetes API.
    for source in [group(NODES), group(CONTROL_PLANE), group(API_LOAD_BALANCER)] {
        control_plane.push(rule("tcp", 6443, 6443, source));
    }
    for cidr in &spec.kubernetes_api_access {
        control_plane.push(rule("tcp", 6443, 6443, RuleSource::Cidr(cidr.clone())));
        load_balancer.push(rule("tcp", 443, 443, RuleSource::Cidr(cidr.clone())));
    }
    for member in members {
        load_balancer.push(rule("tcp", 443, 443, group(member)));
    }
    // etcd between control-plane members, or on members of its own.
    let mut etcd = Vec::new();
    if external_etcd {
        let members = super::etcd::ETCD;
        etcd.push(rule("tcp", 2379, 2379, group(CONTROL_PLANE)));
        etcd.push(rule("tcp", 2379, 2379, group(members)));
        etcd.push(rule("tcp", 2380, 2380, group(members)));
    } else {
        control_plane.push(rule("tcp", 2379, 2380, group(CONTROL_PLANE)));
    }
    // Kubelet and the control-plane components.
    for member in members {
        control_plane.push(rule("tcp", 10250, 10259, group(member)));
        nodes.push(rule("tcp", 10250, 10250, group(member)));
    }
    // NodePorts from inside the VPC (internal load balancers, other VPC clients).
    let vpc_cidr = builder
        .lookups
        .shared_vpc
        .as_ref()
        .map(|shared| shared.cidr.clone())
        .unwrap_or_else(|| spec.network_cidr.clone());
    nodes.push(rule(
        "tcp",
        30000,
        32767,
        RuleSource::Cidr(vpc_cidr.clone()),
    ));
    nodes.push(rule("udp", 30000, 32767, RuleSource::Cidr(vpc_cidr)));
    // The CNI between every member.
    for member in members {
        let cni_rules: Vec<IngressRule> = match spec.networking.cni {
            Cni::Cilium => vec![
                rule("udp", 8472, 8472, group(member)),
                rule("tcp", 4240, 4240, group(member)),
            ],
            Cni::Flannel => vec![rule("udp", 8472, 8472, group(member))],
            Cni::Calico => vec![
                rule("tcp", 179, 179, group(member)),
                rule("4", -1, -1, group(member)),
                rule("tcp", 5473, 5473, group(member)),
            ],
        };
        control_plane.extend(cni_rules.iter().cloned());
        nodes.extend(cni_rules);
    }
    // With Windows nodes, Calico runs VXLAN (Windows has no IP-in-IP) on
    // Felix's default VXLAN port, 4789/udp (felix/config/config_params.go:
    // `VXLANPort int config:"int;4789"`), between every member.
    let windows_nodes = builder
        .bundle
        .instance_groups
        .iter()
        .any(|group| group.spec.os_family.is_windows());
    if windows_nodes && spec.networking.cni == Cni::Calico {
        for member in members {
            control_plane.push(rule("udp", 4789, 4789, group(member)));
            nodes.push(rule("udp", 4789, 4789, group(member)));
        }
    }
    // ICMP between every member: path MTU discovery ("fragmentation
    // needed" replies, which an overlay's smaller MTU depends on) and the
    // CNI's and operators' health checks (ping).
    for member in members {
        control_plane.push(rule("icmp", -1, -1, group(member)));
        nodes.push(rule("icmp", -1, -1, group(member)));
    }
    // SSH: through bastions when there are any, else from the SSH CIDRs.
    let mut bastion = Vec::new();
    if bastions {
        for cidr in &spec.ssh_access {
            bastion.push(rule("tcp", 22, 22, RuleSource::Cidr(cidr.clone())));
        }
        control_plane.push(rule("tcp", 22, 22, group(BASTION)));
        nodes.push(rule("tcp", 22, 22, group(BASTION)));
        etcd.push(rule("tcp", 22, 22, group(BASTION)));
    } else {
        for cidr in &spec.ssh_access {
            control_plane.push(rule("tcp", 22, 22, RuleSource::Cidr(cidr.clone())));
            nodes.push(rule("tcp", 22, 22, RuleSource::Cidr(cidr.clone())));
            etcd.push(rule("tcp", 22, 22, RuleSource::Cidr(cidr.clone())));
        }
    }

    let mut rule_sets = vec![
        (CONTROL_PLANE, control_plane),
        (NODES, nodes),
        (API_LOAD_BALANCER, load_balancer),
    ];
    if bastions {
        rule_sets.push((BASTION, bastion));
    }
    if external_etcd {
        rule_sets.push((super::etcd::ETCD, etcd));
    }
    for (role, mut ingress) in rule_sets {
        ingress.sort();
        ingress.dedup();
        builder.add(DesiredResource {
            key: ResourceKey::new(ResourceKind::SecurityGroupRules, role),
            attributes: Attributes::SecurityGroupRules(SecurityGroupRulesAttributes {
                group: security_group_key(role).output(Output::Id),
                ingress,
            }),
        });
    }
    Ok(())
}

/// The security group IDs an instance group's instances get.
pub fn groups_for(role: skiff_api::InstanceGroupRole) -> Vec<Id> {
    let name = super::role_name(role);
    vec![security_group_key(name).output(Output::Id)]
}
