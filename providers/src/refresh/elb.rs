//! The API load balancers (the API's and, beside an internet-facing one, the
//! internal one nodes use), their target groups and listeners, found by the names
//! skiff derives from the cluster name (ELB cannot filter by tag), then
//! checked for the ownership tag.

use std::collections::BTreeMap;

use skiff_plans::resource::{
    Attributes, Id, ListenerAttributes, LoadBalancerAttributes, ResourceKind, Tags,
    TargetGroupAttributes,
};
use skiff_plans::{names, ObservedResource, Output};

use super::{outputs, RefreshScope};
use crate::error::{aws_error, Result};
use crate::tags::from_elb;
use crate::AwsProvider;

pub(super) async fn refresh(
    provider: &AwsProvider,
    scope: &RefreshScope,
) -> Result<Vec<ObservedResource>> {
    // The API load balancer and the internal one nodes use beside an
    // internet-facing one, each asked by its own name: a name that does
    // not exist fails the whole call.
    let balancer_names = [
        names::load_balancer(&scope.cluster),
        names::internal_load_balancer(&scope.cluster),
    ];
    let target_names = [
        names::target_group(&scope.cluster),
        names::internal_target_group(&scope.cluster),
    ];
    let balancers = futures::future::try_join_all(balancer_names.iter().map(|name| async move {
        match provider
            .elb
            .describe_load_balancers()
            .names(name)
            .send()
            .await
        {
            Ok(output) => Ok(output.load_balancers().to_vec()),
            Err(error) => {
                let error = aws_error("elasticloadbalancing:DescribeLoadBalancers", name, error);
                if error.is_missing() {
                    Ok(Vec::new())
                } else {
                    Err(error)
                }
            }
        }
    }));
    let targets = futures::future::try_join_all(target_names.iter().map(|name| async move {
        match provider
            .elb
            .describe_target_groups()
            .names(name)
            .send()
            .await
        {
            Ok(output) => Ok(output.target_groups().to_vec()),
            Err(error) => {
                let error = aws_error("elasticloadbalancing:DescribeTargetGroups", name, error);
                if error.is_missing() {
                    Ok(Vec::new())
                } else {
                    Err(error)
                }
            }
        }
    }));
    let (balancers, targets) = tokio::try_join!(balancers, targets)?;
    let balancers: Vec<_> = balancers.into_iter().flatten().collect();
    let targets: Vec<_> = targets.into_iter().flatten().collect();
    let arns: Vec<String> = balancers
        .iter()
        .filter_map(|balancer| balancer.load_balancer_arn())
        .chain(
            targets
                .iter()
                .filter_map(|target| target.target_group_arn()),
        )
        .map(str::to_string)
        .collect();
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    // The tags, each balancer's listeners and each target group's
    // attributes, all at once.
    let tags = async {
        provider
            .elb
            .describe_tags()
            .set_resource_arns(Some(arns.clone()))
            .send()
            .await
            .map_err(|error| aws_error("elasticloadbalancing:DescribeTags", &arns.join(","), error))
    };
    let listeners = futures::future::try_join_all(
        balancers
            .iter()
            .filter_map(|balancer| balancer.load_balancer_arn())
            .map(|arn| async move {
                let output = provider
                    .elb
                    .describe_listeners()
                    .load_balancer_arn(arn)
                    .send()
                    .await
                    .map_err(|error| {
                        aws_error("elasticloadbalancing:DescribeListeners", arn, error)
                    })?;
                Ok::<_, crate::ProviderError>((arn.to_string(), output.listeners().to_vec()))
            }),
    );
    let target_attributes = futures::future::try_join_all(
        targets
            .iter()
            .filter_map(|target| target.target_group_arn())
            .map(|arn| async move {
                let output = provider
                    .elb
                    .describe_target_group_attributes()
                    .target_group_arn(arn)
                    .send()
                    .await
                    .map_err(|error| {
                        aws_error(
                            "elasticloadbalancing:DescribeTargetGroupAttributes",
                            arn,
                            error,
                        )
                    })?;
                Ok::<_, crate::ProviderError>((arn.to_string(), output.attributes().to_vec()))
            }),
    );
    let (tag_output, listeners, target_attributes) =
        tokio::try_join!(tags, listeners, target_attributes)?;
    let listeners: BTreeMap<String, Vec<_>> = listeners.into_iter().collect();
    let target_attributes: BTreeMap<String, Vec<_>> = target_attributes.into_iter().collect();
    let tags_by_arn: BTreeMap<String, Tags> = tag_output
        .tag_descriptions()
        .iter()
        .filter_map(|description| {
            Some((
                description.resource_arn()?.to_string(),
                from_elb(description.tags()),
            ))
        })
        .collect();

    let mut found = Vec::new();
    for balancer in &balancers {
        let Some(arn) = balancer.load_balancer_arn() else {
            continue;
        };
        let tags = tags_by_arn.get(arn).cloned().unwrap_or_default();
        let Some(key) = scope.key_of(ResourceKind::LoadBalancer, &tags) else {
            continue;
        };
        let mut subnets: Vec<Id> = balancer
            .availability_zones()
            .iter()
            .filter_map(|zone| zone.subnet_id())
            .map(Id::from)
            .collect();
        subnets.sort();
        let mut security_groups: Vec<Id> = balancer
            .security_groups()
            .iter()
            .map(|group| Id::from(group.as_str()))
            .collect();
        security_groups.sort();
        let dns_name = balancer.dns_name().unwrap_or_default().to_lowercase();
        found.push(ObservedResource {
            key: key.clone(),
            id: arn.to_string(),
            attributes: Attributes::LoadBalancer(LoadBalancerAttributes {
                name: balancer
                    .load_balancer_name()
                    .unwrap_or_default()
                    .to_string(),
                scheme: balancer
                    .scheme()
                    .map(|scheme| scheme.as_str().to_string())
                    .unwrap_or_default(),
                subnets,
                security_groups,
                tags,
            }),
            outputs: outputs(&[
                (Output::Id, arn),
                (Output::Arn, arn),
                (Output::DnsName, &dns_name),
                (
                    Output::CanonicalZone,
                    balancer.canonical_hosted_zone_id().unwrap_or_default(),
                ),
            ]),
        });
        // The listener on the API port.
        for listener in listeners.get(arn).into_iter().flatten() {
            let (Some(listener_arn), Some(port)) = (listener.listener_arn(), listener.port())
            else {
                continue;
            };
            // Only the API listener is skiff's; others on the balancer are left alone.
            if port != i32::from(skiff_plans::desired::load_balancer::API_PORT) {
                continue;
            }
            let target_group = listener
                .default_actions()
                .first()
                .and_then(|action| action.target_group_arn())
                .unwrap_or_default();
            found.push(ObservedResource {
                key: skiff_plans::ResourceKey::new(ResourceKind::Listener, key.name()),
                id: listener_arn.to_string(),
                attributes: Attributes::Listener(ListenerAttributes {
                    load_balancer: Id::from(arn),
                    port: u16::try_from(port).unwrap_or_default(),
                    protocol: listener
                        .protocol()
                        .map(|protocol| protocol.as_str().to_string())
                        .unwrap_or_default(),
                    target_group: Id::from(target_group),
                }),
                outputs: outputs(&[(Output::Id, listener_arn), (Output::Arn, listener_arn)]),
            });
        }
    }
    for target in &targets {
        let Some(arn) = target.target_group_arn() else {
            continue;
        };
        let tags = tags_by_arn.get(arn).cloned().unwrap_or_default();
        let Some(key) = scope.key_of(ResourceKind::TargetGroup, &tags) else {
            continue;
        };
        let attribute = |name: &str| {
            target_attributes
                .get(arn)
                .into_iter()
                .flatten()
                .find(|attribute| attribute.key() == Some(name))
                .and_then(|attribute| attribute.value())
                .map(str::to_string)
        };
        found.push(ObservedResource {
            key,
            id: arn.to_string(),
            attributes: Attributes::TargetGroup(TargetGroupAttributes {
                name: target.target_group_name().unwrap_or_default().to_string(),
                vpc: Id::from(target.vpc_id().unwrap_or_default()),
                protocol: target
                    .protocol()
                    .map(|protocol| protocol.as_str().to_string())
                    .unwrap_or_default(),
                port: target
                    .port()
                    .and_then(|port| u16::try_from(port).ok())
                    .unwrap_or_default(),
                health_check_protocol: target
                    .health_check_protocol()
                    .map(|protocol| protocol.as_str().to_string())
                    .unwrap_or_default(),
                health_check_path: target.health_check_path().unwrap_or_default().to_string(),
                // AWS's default for instance targets is to preserve addresses.
                preserve_client_ip: attribute("preserve_client_ip.enabled")
                    .is_none_or(|value| value == "true"),
                deregistration_delay_seconds: attribute("deregistration_delay.timeout_seconds")
                    .and_then(|value| value.parse().ok())
                    .unwrap_or(300),
                tags,
            }),
            outputs: outputs(&[
                (Output::Id, arn),
                (Output::Arn, arn),
                (Output::Name, target.target_group_name().unwrap_or_default()),
            ]),
        });
    }
    Ok(found)
}
