//! The API's DNS name: `api.<cluster>` as a Route53 alias of the load
//! balancer. Gossip clusters (`*.k8s.local`) have no record and make no
//! Route53 call at all; their nodes and kubeconfigs use the load balancer's
//! own DNS name.
//!
//! # Split horizon: the same name inside the VPC
//!
//! Beside an internet-facing API load balancer, a DNS cluster gets a
//! Route53 **private hosted zone named exactly `api.<cluster>`**, associated
//! with the cluster's VPC, whose apex is an alias of the internal load
//! balancer (see `load_balancer`). Route53's VPC Resolver answers a query
//! from a VPC associated with a private zone from that zone, and where a
//! public and a private zone overlap it takes the most specific match: the
//! private `api.<cluster>` zone beats the public `<zone>` that holds the
//! public record, so inside the VPC the name resolves to the internal load
//! balancer and outside it to the public one ("Considerations when working
//! with a private hosted zone": *Split-view DNS* and *Public and private
//! hosted zones that have overlapping namespaces*,
//! <https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/hosted-zone-private-considerations.html>).
//! A name under the private zone that it does not hold is answered
//! NXDOMAIN, not forwarded to the public zone (same page): the zone is named
//! after the one name it holds, not after the cluster, so nothing else
//! under `<cluster>` is shadowed. The same page requires the VPC's
//! `enableDnsSupport` and `enableDnsHostnames`: skiff's VPCs have both, a
//! shared VPC (`spec.networkID`) without them is refused.
//!
//! Nodes keep naming `api.<cluster>`, so their user-data, the API server's
//! certificate and `kube-public/cluster-info` stay as they are: a cluster
//! built before the private zone is fixed by the apply alone (running nodes
//! follow once the record's TTL has passed), with no roll. kops gives nodes
//! a separate `api.internal.<cluster>` record instead, which every API
//! server certificate must then name.
//!
//! The zone is skiff's own resource (planned, created, recorded, deleted
//! with the cluster after its record: Route53 refuses to delete a zone that
//! still holds records, `HostedZoneNotEmpty`). Zones take no tags at
//! creation; its comment (`skiff: <cluster> hosted-zone/api-internal`) and
//! the VPC it answers in mark it as the cluster's.

use super::load_balancer::{
    api_endpoint, internal_load_balancer_key, internal_target_group_key, load_balancer_key,
    target_group_key, ApiEndpoint, INTERNAL,
};
use super::Builder;
use crate::error::PlanError;
use crate::resource::{
    Attributes, DesiredResource, DnsRecordAttributes, HostedZoneAttributes, Id, Output,
    ResourceKey, ResourceKind,
};

/// The key of the API record.
pub fn record_key() -> ResourceKey {
    ResourceKey::new(ResourceKind::DnsRecord, "api")
}

/// The key of the private hosted zone that answers `api.<cluster>` inside
/// the VPC.
pub fn private_zone_key() -> ResourceKey {
    ResourceKey::new(ResourceKind::HostedZone, INTERNAL)
}

/// The key of the private zone's apex record (the internal load balancer).
pub fn private_record_key() -> ResourceKey {
    ResourceKey::new(ResourceKind::DnsRecord, INTERNAL)
}

/// The comment that marks the private zone as the cluster's.
pub fn private_zone_comment(cluster: &str) -> String {
    format!("skiff: {cluster} {}", private_zone_key())
}

pub(crate) fn build(builder: &mut Builder<'_>) -> Result<(), PlanError> {
    let cluster = &builder.bundle.cluster;
    if cluster.is_gossip() {
        return Ok(());
    }
    let zone = builder
        .lookups
        .hosted_zone
        .clone()
        .ok_or_else(|| PlanError::HostedZoneMissing {
            cluster: cluster.name().to_string(),
            zone: cluster.spec.dns_zone.clone(),
        })?;
    let load_balancer = load_balancer_key();
    let name = format!("{}.", cluster.api_dns_name());
    builder.add(DesiredResource {
        key: record_key(),
        attributes: Attributes::DnsRecord(DnsRecordAttributes {
            zone: Id::Value(zone.id),
            name: name.clone(),
            record_type: "A".to_string(),
            alias_target: load_balancer.output(Output::DnsName),
            alias_zone: load_balancer.output(Output::CanonicalZone),
        }),
    });

    if api_endpoint(cluster, builder.lookups) != ApiEndpoint::SplitHorizon {
        return Ok(());
    }
    if let Some(shared) = &builder.lookups.shared_vpc {
        let off = [
            (shared.dns_support, "enableDnsSupport", "enable-dns-support"),
            (
                shared.dns_hostnames,
                "enableDnsHostnames",
                "enable-dns-hostnames",
            ),
        ]
        .into_iter()
        .find(|(on, _, _)| !on);
        if let Some((_, attribute, flag)) = off {
            return Err(PlanError::SharedVpcDns {
                cluster: cluster.name().to_string(),
                vpc: shared.id.clone(),
                attribute,
                flag,
            });
        }
    }
    let zone_key = private_zone_key();
    builder.add(DesiredResource {
        key: zone_key.clone(),
        attributes: Attributes::HostedZone(HostedZoneAttributes {
            name: cluster.api_dns_name(),
            vpc: builder.vpc_id(),
            comment: private_zone_comment(cluster.name()),
            // What the zone leads to, and what tells whether it may shadow
            // the public record yet: the internal load balancer (`active`),
            // its listener, its target group (a healthy target) and the
            // public target group (whether the API is served today, i.e.
            // whether there is anything to shadow). The apply's wait:
            // `skiff_providers` `operations::dns::create_hosted_zone`.
            serves: vec![
                internal_load_balancer_key().output(Output::Arn),
                ResourceKey::new(ResourceKind::Listener, INTERNAL).output(Output::Arn),
                internal_target_group_key().output(Output::Arn),
                target_group_key().output(Output::Arn),
            ],
        }),
    });
    let internal = internal_load_balancer_key();
    builder.add(DesiredResource {
        key: private_record_key(),
        attributes: Attributes::DnsRecord(DnsRecordAttributes {
            zone: zone_key.output(Output::Id),
            name,
            record_type: "A".to_string(),
            alias_target: internal.output(Output::DnsName),
            alias_zone: internal.output(Output::CanonicalZone),
        }),
    });
    Ok(())
}
