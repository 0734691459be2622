//! The API's Route53 record. Records have no tags, so a record counts as the
//! cluster's only when the recorded state says skiff created it, or when it
//! aliases the cluster's own load balancer; anything else under that name is
//! left alone (and the create fails rather than overwrite it).

use aws_sdk_route53::types::RrType;
use skiff_plans::desired::dns::record_key;
use skiff_plans::recorded::RecordedContent;
use skiff_plans::resource::{Attributes, DnsRecordAttributes, Id, ResourceKind};
use skiff_plans::{names, ObservedResource, Output};

use super::{outputs, RefreshScope};
use crate::error::{aws_error, Result};
use crate::AwsProvider;

pub(super) async fn refresh(
    provider: &AwsProvider,
    scope: &RefreshScope,
    dns_record: Option<(String, String)>,
    recorded: Option<&RecordedContent>,
) -> Result<Vec<ObservedResource>> {
    let key = record_key();
    // The zone and name: from the spec, else from the recorded state (a
    // record of a cluster being deleted).
    let recorded = recorded
        .and_then(|recorded| recorded.resources.get(&key))
        .filter(|resource| resource.kind == ResourceKind::DnsRecord);
    let recorded_target = recorded.and_then(|resource| match &resource.attributes {
        Some(Attributes::DnsRecord(record)) => Some((record.zone.clone(), record.name.clone())),
        _ => None,
    });
    let Some((zone, name)) = dns_record.or(recorded_target) else {
        return Ok(Vec::new());
    };
    let output = match provider
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(&zone)
        .start_record_name(&name)
        .start_record_type(RrType::A)
        .max_items(1)
        .send()
        .await
    {
        Ok(output) => output,
        Err(error) => {
            let error = aws_error("route53:ListResourceRecordSets", &name, error);
            if error.is_missing() {
                return Ok(Vec::new());
            }
            return Err(error);
        }
    };
    let Some(record) = output.resource_record_sets().iter().find(|record| {
        record
            .name()
            .trim_end_matches('.')
            .eq_ignore_ascii_case(name.trim_end_matches('.'))
            && record.r#type() == &RrType::A
    }) else {
        return Ok(Vec::new());
    };
    let Some(alias) = record.alias_target() else {
        return Ok(Vec::new());
    };
    let target = alias.dns_name().trim_end_matches('.').to_lowercase();
    let target = target
        .strip_prefix("dualstack.")
        .unwrap_or(&target)
        .to_string();
    let ours_by_record = recorded.is_some();
    let ours_by_target = target.starts_with(&names::load_balancer(&scope.cluster).to_lowercase());
    if !(ours_by_record || ours_by_target) {
        return Ok(Vec::new());
    }
    Ok(vec![ObservedResource {
        key,
        id: name.clone(),
        attributes: Attributes::DnsRecord(DnsRecordAttributes {
            zone: zone.clone(),
            name: name.clone(),
            record_type: "A".to_string(),
            alias_target: Id::Value(target),
            alias_zone: Id::from(alias.hosted_zone_id()),
        }),
        outputs: outputs(&[(Output::Id, &name), (Output::Name, &name)]),
    }])
}
