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
    let associated: Vec<String> = found
        .vpcs()
        .iter()
        .filter(|vpc| {
            vpc.vpc_region()
                .is_none_or(|region| region.as_str() == provider.region)
        })
        .filter_map(|vpc| vpc.vpc_id())
        .map(str::to_string)
        .collect();
    let recorded_vpc = recorded.and_then(|resource| match &resource.attributes {
        Some(Attributes::HostedZone(zone)) => zone.vpc.value().map(str::to_string),
        _ => None,
    });
    let owned_vpc = if associated.len() > 1 && recorded_vpc.is_none() {
        owned_vpc(provider, scope).await?
    } else {
        None
    };
    let vpc = cluster_vpc(&associated, [recorded_vpc, owned_vpc]);
    let others: Vec<&String> = associated.iter().filter(|other| **other != vpc).collect();
    if !others.is_empty() {
        tracing::warn!(
            "the private hosted zone {name} ({id}) is also associated with {}: nodes in \
             those VPCs resolve {name} to the cluster's internal load balancer too. skiff \
             leaves that association alone (it answers for {vpc}); remove it with `aws \
             route53 disassociate-vpc-from-hosted-zone --hosted-zone-id {id} --vpc \
             VPCRegion={},VPCId=<vpc>` if it is not wanted",
            others
                .iter()
                .map(|other| other.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            provider.region
        );
    }
    Ok(Some(ObservedResource {
        key: private_zone_key(),
        id: id.clone(),
        attributes: Attributes::HostedZone(HostedZoneAttributes {
            name: zone.name().trim_end_matches('.').to_lowercase(),
            vpc: Id::Value(vpc),
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

/// The cluster's VPC among the VPCs a private zone is associated with (in
/// this region, in the order Route53 lists them, which is not the order
/// they were associated in): the first of `known` (the recorded zone's VPC,
/// then the VPC tagged as the cluster's) that is among them, else the
/// first. Another association, which someone added so that another VPC
/// resolves the API's name too, is then not taken for the cluster's: the
/// zone's VPC cannot change in place, so that would plan a replacement.
/// Empty when the zone has no association here.
fn cluster_vpc(associated: &[String], known: [Option<String>; 2]) -> String {
    known
        .into_iter()
        .flatten()
        .find(|vpc| associated.contains(vpc))
        .or_else(|| associated.first().cloned())
        .unwrap_or_default()
}

/// The ID of the VPC tagged as the cluster's, if any (none for a shared
/// VPC): asked only when a zone the recorded state does not name has more
/// than one association.
async fn owned_vpc(provider: &AwsProvider, scope: &RefreshScope) -> Result<Option<String>> {
    let listed = provider
        .ec2
        .describe_vpcs()
        .filters(super::ec2::owned_filter(&scope.cluster))
        .send()
        .await
        .map_err(|error| aws_error("ec2:DescribeVpcs", &scope.cluster, error))?;
    Ok(listed
        .vpcs()
        .iter()
        .find(|vpc| {
            scope
                .key_of(ResourceKind::Vpc, &crate::tags::from_ec2(vpc.tags()))
                .is_some()
        })
        .and_then(|vpc| vpc.vpc_id())
        .map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::cluster_vpc;

    fn vpcs(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| id.to_string()).collect()
    }

    /// Route53 may list another VPC first: the cluster's is still found,
    /// by the recorded state or by its tags, whatever the order.
    #[test]
    fn the_clusters_vpc_is_found_among_the_associations_in_any_order() {
        let associated = vpcs(&["vpc-other", "vpc-cluster"]);
        assert_eq!(
            cluster_vpc(&associated, [Some("vpc-cluster".into()), None]),
            "vpc-cluster"
        );
        assert_eq!(
            cluster_vpc(&associated, [None, Some("vpc-cluster".into())]),
            "vpc-cluster"
        );
        // A recorded VPC the zone is no longer associated with is not
        // taken: the tagged one is, else the first listed.
        assert_eq!(
            cluster_vpc(
                &associated,
                [Some("vpc-gone".into()), Some("vpc-cluster".into())]
            ),
            "vpc-cluster"
        );
        assert_eq!(cluster_vpc(&associated, [None, None]), "vpc-other");
        assert_eq!(cluster_vpc(&[], [Some("vpc-cluster".into()), None]), "");
    }
}
