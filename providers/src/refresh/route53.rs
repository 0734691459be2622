//! The API's Route53 records and the private hosted zone that answers
//! `api.<cluster>` inside the VPC (see `skiff_plans::desired::dns`).
//!
//! Records have no tags, so a record counts as the cluster's only when the
//! recorded state says skiff created it, or when it aliases the cluster's
//! own load balancer; anything else under that name is left alone (and the
//! create fails rather than overwrite it). Hosted zones take no tags at
//! creation either: the private zone counts as the cluster's when the
//! recorded state names it, or when it is a private zone named
//! `api.<cluster>` carrying the cluster's comment. Gossip clusters make no
//! Route53 call at all.

use aws_sdk_route53::types::RrType;
use skiff_plans::desired::dns::{
    private_record_key, private_zone_comment, private_zone_key, record_key,
};
use skiff_plans::recorded::{RecordedContent, RecordedResource};
use skiff_plans::resource::{
    Attributes, DnsRecordAttributes, HostedZoneAttributes, Id, ResourceKey, ResourceKind,
};
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
    let recorded_of = |key: &ResourceKey, kind: ResourceKind| {
        recorded
            .and_then(|recorded| recorded.resources.get(key))
            .filter(|resource| resource.kind == kind)
    };
    let public = async {
        let key = record_key();
        let recorded = recorded_of(&key, ResourceKind::DnsRecord);
        // The zone and name: from the spec, else from the recorded state
        // (a record of a cluster being deleted).
        let Some((zone, name)) = dns_record.or_else(|| recorded_target(recorded)) else {
            return Ok(None);
        };
        find_record(
            provider,
            key,
            &zone,
            &name,
            recorded.is_some(),
            &names::load_balancer(&scope.cluster),
        )
        .await
    };
    let private = async {
        if scope.cluster.ends_with(skiff_api::GOSSIP_SUFFIX) {
            return Ok(Vec::new());
        }
        let Some(zone) = private_zone(
            provider,
            scope,
            recorded_of(&private_zone_key(), ResourceKind::HostedZone),
        )
        .await?
        else {
            return Ok(Vec::new());
        };
        let key = private_record_key();
        let recorded = recorded_of(&key, ResourceKind::DnsRecord);
        let name = format!("api.{}.", scope.cluster);
        let record = find_record(
            provider,
            key,
            &zone.id,
            &name,
            recorded.is_some(),
            &names::internal_load_balancer(&scope.cluster),
        )
        .await?;
        Ok([Some(zone), record].into_iter().flatten().collect())
    };
    let (public, private) = tokio::try_join!(public, private)?;
    Ok(public.into_iter().chain(private).collect())
}

/// Where the recorded state says a record is.
fn recorded_target(recorded: Option<&RecordedResource>) -> Option<(String, String)> {
    match recorded.and_then(|resource| resource.attributes.as_ref()) {
        Some(Attributes::DnsRecord(record)) => record
            .zone
            .value()
            .map(|zone| (zone.to_string(), record.name.clone())),
        _ => None,
    }
}

/// The alias A record `name` in `zone`, when it is the cluster's: recorded,
/// or aliasing the load balancer named `load_balancer`.
async fn find_record(
    provider: &AwsProvider,
    key: ResourceKey,
    zone: &str,
    name: &str,
    ours_by_record: bool,
    load_balancer: &str,
) -> Result<Option<ObservedResource>> {
    let output = match provider
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .start_record_name(name)
        .start_record_type(RrType::A)
        .max_items(1)
        .send()
        .await
    {
        Ok(output) => output,
        Err(error) => {
            let error = aws_error("route53:ListResourceRecordSets", name, error);
            if error.is_missing() {
                return Ok(None);
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
        return Ok(None);
    };
    let Some(alias) = record.alias_target() else {
        return Ok(None);
    };
    let target = alias.dns_name().trim_end_matches('.').to_lowercase();
    let target = target
        .strip_prefix("dualstack.")
        .unwrap_or(&target)
        .to_string();
    // An internal load balancer's DNS name starts with `internal-`.
    let bare = target.strip_prefix("internal-").unwrap_or(&target);
    let ours_by_target = bare.starts_with(&load_balancer.to_lowercase());
    if !(ours_by_record || ours_by_target) {
        return Ok(None);
    }
    Ok(Some(ObservedResource {
        key,
        id: name.to_string(),
        attributes: Attributes::DnsRecord(DnsRecordAttributes {
            zone: Id::Value(zone.to_string()),
            name: name.to_string(),
            record_type: "A".to_string(),
            alias_target: Id::Value(target),
            alias_zone: Id::from(alias.hosted_zone_id()),
        }),
        outputs: outputs(&[(Output::Id, name), (Output::Name, name)]),
    }))
}

/// The cluster's private zone `api.<cluster>`: the recorded one, else a
/// private zone of that name carrying the cluster's comment.
async fn private_zone(
    provider: &AwsProvider,
    scope: &RefreshScope,
    recorded: Option<&RecordedResource>,
) -> Result<Option<ObservedResource>> {
    let name = format!("api.{}", scope.cluster);
    let comment = private_zone_comment(&scope.cluster);
    let mut id = recorded.map(|resource| resource.id.clone());
    if id.is_none() {
        let listed = provider
            .route53
            .list_hosted_zones_by_name()
            .dns_name(&name)
            .send()
            .await
            .map_err(|error| aws_error("route53:ListHostedZonesByName", &name, error))?;
        // The listing starts at the name, in order: only exact names count.
        id = listed
            .hosted_zones()
            .iter()
            .find(|zone| {
                zone.name()
                    .trim_end_matches('.')
                    .eq_ignore_ascii_case(&name)
                    && zone.config().is_some_and(|config| {
                        config.private_zone() && config.comment() == Some(comment.as_str())
                    })
            })
            .map(|zone| zone.id().trim_start_matches("/hostedzone/").to_string());
    }
    let Some(id) = id else {
        return Ok(None);
    };
    let found = match provider.route53.get_hosted_zone().id(&id).send().await {
        Ok(found) => found,
        Err(error) => {
            let error = aws_error("route53:GetHostedZone", &id, error);
            if error.is_missing() {
                return Ok(None);
            }
            return Err(error);
        }
    };
    let Some(zone) = found.hosted_zone() else {
        return Ok(None);
    };
    let vpc = found
        .vpcs()
        .iter()
        .find(|vpc| {
            vpc.vpc_region()
                .is_none_or(|region| region.as_str() == provider.region)
        })
        .and_then(|vpc| vpc.vpc_id())
        .unwrap_or_default();
    Ok(Some(ObservedResource {
        key: private_zone_key(),
        id: id.clone(),
        attributes: Attributes::HostedZone(HostedZoneAttributes {
            name: zone.name().trim_end_matches('.').to_lowercase(),
            vpc: Id::Value(vpc.to_string()),
            comment: zone
                .config()
                .and_then(|config| config.comment())
                .unwrap_or_default()
                .to_string(),
            serves: Vec::new(),
        }),
        outputs: outputs(&[(Output::Id, &id)]),
    }))
}
