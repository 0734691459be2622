//! Read-only lookups before planning: the AMI each `spec.image` resolves to,
//! the Route53 hosted zone for `api.<cluster>`, and the shared VPC and
//! subnets the spec names. What is not found is left out; the planner turns
//! the gap into an error that names the spec field, before anything changes.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::Filter;
use skiff_api::document::ClusterBundle;
use skiff_plans::lookups::{HostedZone, ResolvedImage, SharedSubnet, SharedVpc, StateStoreRef};
use skiff_plans::Lookups;

use crate::error::{aws_error, Result};
use crate::AwsProvider;

/// The partition of a region.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

impl AwsProvider {
    /// Looks up everything the planner needs to know about a cluster's spec.
    pub async fn lookups(
        &self,
        bundle: &ClusterBundle,
        state_store: Option<StateStoreRef>,
    ) -> Result<Lookups> {
        let images = self.resolve_images(bundle);
        let hosted_zone = self.hosted_zone(bundle);
        let shared = self.shared_network(bundle);
        let (images, hosted_zone, (shared_vpc, shared_subnets)) =
            tokio::try_join!(images, hosted_zone, shared)?;
        Ok(Lookups {
            partition: partition_of(&self.region).to_string(),
            images,
            hosted_zone,
            shared_vpc,
            shared_subnets,
            state_store,
        })
    }

    /// Resolves every distinct image: AMI IDs in one call, each
    /// `OWNER/NAME-PATTERN` with one filtered call, newest image first.
    async fn resolve_images(
        &self,
        bundle: &ClusterBundle,
    ) -> Result<BTreeMap<String, ResolvedImage>> {
        let wanted: BTreeSet<String> = bundle
            .instance_groups
            .iter()
            .filter_map(|group| group.spec.image.clone())
            .collect();
        let mut resolved = BTreeMap::new();
        let ids: Vec<String> = wanted
            .iter()
            .filter(|image| image.starts_with("ami-"))
            .cloned()
            .collect();
        if !ids.is_empty() {
            let found = self
                .ec2
                .describe_images()
                .filters(
                    Filter::builder()
                        .name("image-id")
                        .set_values(Some(ids.clone()))
                        .build(),
                )
                .send()
                .await
                .map_err(|error| aws_error("ec2:DescribeImages", &ids.join(","), error))?;
            for image in found.images() {
                if let Some(id) = image.image_id() {
                    resolved.insert(id.to_string(), resolved_image(image));
                }
            }
        }
        for pattern in wanted.iter().filter(|image| !image.starts_with("ami-")) {
            let Some((owner, name)) = pattern.split_once('/') else {
                continue;
            };
            let found = self
                .ec2
                .describe_images()
                .owners(owner)
                .filters(Filter::builder().name("name").values(name).build())
                .send()
                .await
                .map_err(|error| aws_error("ec2:DescribeImages", pattern, error))?;
            // Newest first; the name breaks ties so the choice is stable.
            let newest = found.images().iter().max_by(|first, second| {
                (first.creation_date(), first.name()).cmp(&(second.creation_date(), second.name()))
            });
            if let Some(image) = newest {
                resolved.insert(pattern.clone(), resolved_image(image));
            }
        }
        Ok(resolved)
    }

    /// The hosted zone for `api.<cluster>`: the one `spec.dnsZone` names, or
    /// the zone whose name is the longest suffix of the cluster name. No call
    /// at all for gossip clusters.
    async fn hosted_zone(&self, bundle: &ClusterBundle) -> Result<Option<HostedZone>> {
        let cluster = &bundle.cluster;
        if cluster.is_gossip() {
            return Ok(None);
        }
        let wanted = cluster
            .spec
            .dns_zone
            .as_ref()
            .map(|zone| zone.trim_end_matches('.').to_lowercase());
        let mut best: Option<HostedZone> = None;
        let mut pages = self.route53.list_hosted_zones().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|error| aws_error("route53:ListHostedZones", cluster.name(), error))?;
            for zone in page.hosted_zones() {
                let name = zone.name().trim_end_matches('.').to_lowercase();
                let private = zone.config().is_some_and(|config| config.private_zone());
                let matches = match &wanted {
                    Some(wanted) => &name == wanted,
                    None => cluster.name() == name || cluster.name().ends_with(&format!(".{name}")),
                };
                if !matches {
                    continue;
                }
                let candidate = HostedZone {
                    id: zone.id().trim_start_matches("/hostedzone/").to_string(),
                    name,
                    private,
                };
                // Longest suffix wins; between equals, a public zone.
                let better = match &best {
                    None => true,
                    Some(current) => {
                        candidate.name.len() > current.name.len()
                            || (candidate.name.len() == current.name.len()
                                && current.private
                                && !candidate.private)
                    }
                };
                if better {
                    best = Some(candidate);
                }
            }
        }
        Ok(best)
    }

    /// The shared VPC (with its internet gateway) and shared subnets, if the
    /// spec names any.
    async fn shared_network(
        &self,
        bundle: &ClusterBundle,
    ) -> Result<(Option<SharedVpc>, BTreeMap<String, SharedSubnet>)> {
        let spec = &bundle.cluster.spec;
        let mut shared_vpc = None;
        if let Some(id) = &spec.network_id {
            let found = self
                .ec2
                .describe_vpcs()
                .filters(Filter::builder().name("vpc-id").values(id).build())
                .send()
                .await
                .map_err(|error| aws_error("ec2:DescribeVpcs", id, error))?;
            if let Some(vpc) = found.vpcs().first() {
                let gateways = self
                    .ec2
                    .describe_internet_gateways()
                    .filters(
                        Filter::builder()
                            .name("attachment.vpc-id")
                            .values(id)
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|error| aws_error("ec2:DescribeInternetGateways", id, error))?;
                shared_vpc = Some(SharedVpc {
                    id: id.clone(),
                    cidr: vpc.cidr_block().unwrap_or_default().to_string(),
                    internet_gateway: gateways
                        .internet_gateways()
                        .first()
                        .and_then(|gateway| gateway.internet_gateway_id())
                        .map(str::to_string),
                });
            }
        }
        let ids: Vec<String> = spec
            .subnets
            .iter()
            .filter_map(|subnet| subnet.id.clone())
            .collect();
        let mut shared_subnets = BTreeMap::new();
        if !ids.is_empty() {
            let found = match self
                .ec2
                .describe_subnets()
                .filters(
                    Filter::builder()
                        .name("subnet-id")
                        .set_values(Some(ids.clone()))
                        .build(),
                )
                .send()
                .await
            {
                Ok(found) => found.subnets().to_vec(),
                Err(error) => {
                    let error = aws_error("ec2:DescribeSubnets", &ids.join(","), error);
                    if !error.is_missing() {
                        return Err(error);
                    }
                    Vec::new()
                }
            };
            for subnet in &spec.subnets {
                let Some(id) = &subnet.id else { continue };
                if let Some(existing) = found
                    .iter()
                    .find(|candidate| candidate.subnet_id() == Some(id.as_str()))
                {
                    shared_subnets.insert(
                        subnet.name.clone(),
                        SharedSubnet {
                            id: id.clone(),
                            zone: existing.availability_zone().unwrap_or_default().to_string(),
                            cidr: existing.cidr_block().unwrap_or_default().to_string(),
                            vpc: existing.vpc_id().unwrap_or_default().to_string(),
                        },
                    );
                }
            }
        }
        Ok((shared_vpc, shared_subnets))
    }
}

fn resolved_image(image: &aws_sdk_ec2::types::Image) -> ResolvedImage {
    ResolvedImage {
        id: image.image_id().unwrap_or_default().to_string(),
        name: image.name().unwrap_or_default().to_string(),
        root_device_name: image.root_device_name().unwrap_or("/dev/xvda").to_string(),
    }
}
