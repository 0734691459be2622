//! The API's DNS name: `api.<cluster>` as a Route53 alias of the load
//! balancer. Gossip clusters (`*.k8s.local`) have no record and make no
//! Route53 call at all; their nodes and kubeconfigs use the load balancer's
//! own DNS name.

use super::load_balancer::load_balancer_key;
use super::Builder;
use crate::error::PlanError;
use crate::resource::{
    Attributes, DesiredResource, DnsRecordAttributes, Output, ResourceKey, ResourceKind,
};

/// The key of the API record.
pub fn record_key() -> ResourceKey {
    ResourceKey::new(ResourceKind::DnsRecord, "api")
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
    builder.add(DesiredResource {
        key: record_key(),
        attributes: Attributes::DnsRecord(DnsRecordAttributes {
            zone: zone.id,
            name: format!("{}.", cluster.api_dns_name()),
            record_type: "A".to_string(),
            alias_target: load_balancer.output(Output::DnsName),
            alias_zone: load_balancer.output(Output::CanonicalZone),
        }),
    });
    Ok(())
}
