//! The network: VPC (or a shared one), subnets, the internet gateway, a NAT
//! gateway with an Elastic IP per zone for private topology, and route
//! tables: one public (default route to the internet gateway) and one
//! private per zone (default route to that zone's NAT gateway, so a zone
//! outage does not cut the others off).

use std::collections::BTreeSet;

use skiff_api::{SubnetType, Topology};

use super::Builder;
use crate::error::PlanError;
use crate::resource::{
    Attributes, DesiredResource, ElasticIpAttributes, Id, InternetGatewayAttributes,
    NatGatewayAttributes, Output, ResourceKey, ResourceKind, Route, RouteTableAttributes,
    RouteTarget, SubnetAttributes, VpcAttributes,
};

/// The tag that lets Kubernetes put internet-facing Service load balancers in a subnet.
const ELB_ROLE_TAG: &str = "kubernetes.io/role/elb";
/// The tag for internal Service load balancers.
const INTERNAL_ELB_ROLE_TAG: &str = "kubernetes.io/role/internal-elb";

pub(crate) fn build(builder: &mut Builder<'_>) -> Result<(), PlanError> {
    let cluster = builder.cluster_name().to_string();
    let spec = &builder.bundle.cluster.spec;

    if builder.lookups.shared_vpc.is_none() {
        if spec.network_id.is_some() {
            return Err(PlanError::SharedVpcMissing {
                id: spec.network_id.clone().unwrap_or_default(),
            });
        }
        let key = ResourceKey::new(ResourceKind::Vpc, "");
        let tags = builder.tags(&key, &cluster);
        builder.add(DesiredResource {
            key,
            attributes: Attributes::Vpc(VpcAttributes {
                cidr: spec.network_cidr.clone(),
                enable_dns_support: true,
                enable_dns_hostnames: true,
                tags,
            }),
        });
    }
    let vpc = builder.vpc_id();

    // Subnets skiff creates (shared ones, with an `id`, are only read).
    for subnet in &spec.subnets {
        if subnet.id.is_some() {
            builder.subnet_id(&subnet.name)?;
            continue;
        }
        let key = ResourceKey::new(ResourceKind::Subnet, &subnet.name);
        let mut tags = builder.tags(&key, &format!("{}.{cluster}", subnet.name));
        tags.insert("SubnetType".to_string(), subnet.subnet_type.to_string());
        match subnet.subnet_type {
            SubnetType::Public | SubnetType::Utility => {
                tags.insert(ELB_ROLE_TAG.to_string(), "1".to_string())
            }
            SubnetType::Private => tags.insert(INTERNAL_ELB_ROLE_TAG.to_string(), "1".to_string()),
        };
        builder.add(DesiredResource {
            key,
            attributes: Attributes::Subnet(SubnetAttributes {
                vpc: vpc.clone(),
                cidr: subnet.cidr.clone().unwrap_or_default(),
                zone: subnet.zone.clone(),
                map_public_ip_on_launch: subnet.subnet_type == SubnetType::Public,
                tags,
            }),
        });
    }

    // The internet gateway: ours, or the shared VPC's.
    let public_subnets: Vec<&skiff_api::ClusterSubnet> = spec
        .subnets
        .iter()
        .filter(|subnet| subnet.subnet_type.is_public_routed() && subnet.id.is_none())
        .collect();
    let internet_gateway: Option<Id> = match &builder.lookups.shared_vpc {
        None => {
            let key = ResourceKey::new(ResourceKind::InternetGateway, "");
            let tags = builder.tags(&key, &cluster);
            builder.add(DesiredResource {
                key: key.clone(),
                attributes: Attributes::InternetGateway(InternetGatewayAttributes {
                    vpc: vpc.clone(),
                    tags,
                }),
            });
            Some(key.output(Output::Id))
        }
        Some(shared) => shared.internet_gateway.clone().map(Id::Value),
    };

    if !public_subnets.is_empty() {
        let Some(gateway) = internet_gateway.clone() else {
            return Err(PlanError::NoInternetGateway {
                vpc: builder
                    .lookups
                    .shared_vpc
                    .as_ref()
                    .map(|shared| shared.id.clone())
                    .unwrap_or_default(),
            });
        };
        let key = ResourceKey::new(ResourceKind::RouteTable, "public");
        let tags = builder.tags(&key, &format!("public.{cluster}"));
        let mut subnets = Vec::new();
        for subnet in &public_subnets {
            subnets.push(builder.subnet_id(&subnet.name)?);
        }
        subnets.sort();
        builder.add(DesiredResource {
            key,
            attributes: Attributes::RouteTable(RouteTableAttributes {
                vpc: vpc.clone(),
                routes: vec![Route {
                    destination: "0.0.0.0/0".to_string(),
                    target: RouteTarget::InternetGateway(gateway),
                }],
                subnets,
                tags,
            }),
        });
    }

    // Private topology: a NAT gateway and a route table per zone.
    if spec.topology == Topology::Private {
        let zones: BTreeSet<&str> = spec
            .subnets
            .iter()
            .filter(|subnet| subnet.subnet_type == SubnetType::Private && subnet.id.is_none())
            .map(|subnet| subnet.zone.as_str())
            .collect();
        for zone in zones {
            let utility = spec
                .subnets
                .iter()
                .find(|subnet| subnet.zone == zone && subnet.subnet_type == SubnetType::Utility)
                .ok_or_else(|| PlanError::NoUtilitySubnet {
                    zone: zone.to_string(),
                })?;
            let address_key = ResourceKey::new(ResourceKind::ElasticIp, zone);
            let address_tags = builder.tags(&address_key, &format!("{zone}.{cluster}"));
            builder.add(DesiredResource {
                key: address_key.clone(),
                attributes: Attributes::ElasticIp(ElasticIpAttributes { tags: address_tags }),
            });
            let nat_key = ResourceKey::new(ResourceKind::NatGateway, zone);
            let nat_tags = builder.tags(&nat_key, &format!("{zone}.{cluster}"));
            let nat_subnet = builder.subnet_id(&utility.name)?;
            builder.add(DesiredResource {
                key: nat_key.clone(),
                attributes: Attributes::NatGateway(NatGatewayAttributes {
                    subnet: nat_subnet,
                    allocation: address_key.output(Output::Id),
                    tags: nat_tags,
                }),
            });
            let table_key = ResourceKey::new(ResourceKind::RouteTable, &format!("private-{zone}"));
            let table_tags = builder.tags(&table_key, &format!("private-{zone}.{cluster}"));
            let mut subnets = Vec::new();
            for subnet in spec.subnets.iter().filter(|subnet| {
                subnet.zone == zone
                    && subnet.subnet_type == SubnetType::Private
                    && subnet.id.is_none()
            }) {
                subnets.push(builder.subnet_id(&subnet.name)?);
            }
            subnets.sort();
            builder.add(DesiredResource {
                key: table_key,
                attributes: Attributes::RouteTable(RouteTableAttributes {
                    vpc: vpc.clone(),
                    routes: vec![Route {
                        destination: "0.0.0.0/0".to_string(),
                        target: RouteTarget::NatGateway(nat_key.output(Output::Id)),
                    }],
                    subnets,
                    tags: table_tags,
                }),
            });
        }
    }
    Ok(())
}
