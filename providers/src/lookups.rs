//! Read-only lookups before planning: the architecture of each machine type
//! (`DescribeInstanceTypes`) and the AMI each group's `spec.image` resolves
//! to for it, the Route53 hosted zone for `api.<cluster>`, and the shared
//! VPC and subnets the spec names (with the shared VPC's DNS attributes, which
//! the API's private hosted zone needs), and which of a gossip cluster's API
//! load balancers exist already (whether its nodes use an internal one depends
//! on it), and the account (STS) while the node termination handler is on.
//! What is not found is left out; the planner turns
//! the gap into an error that names the spec field, before anything changes.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, InstanceType, VpcAttributeName};
use skiff_api::architecture::image_for_architecture;
use skiff_api::document::ClusterBundle;
use skiff_api::Architecture;
use skiff_api::LoadBalancerType;
use skiff_plans::lookups::{
    ExistingApiLoadBalancers, HostedZone, ResolvedImage, SharedSubnet, SharedVpc, StateStoreRef,
};
use skiff_plans::{names, Lookups};

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
        let balancers = self.existing_api_load_balancers(bundle);
        let account = self.account_id(bundle);
        let (
            (images, machine_types),
            hosted_zone,
            (shared_vpc, shared_subnets),
            balancers,
            account_id,
        ) = tokio::try_join!(images, hosted_zone, shared, balancers, account)?;
        Ok(Lookups {
            partition: partition_of(&self.region).to_string(),
            images,
            machine_types,
            hosted_zone,
            shared_vpc,
            shared_subnets,
            state_store,
            api_load_balancers: balancers,
            account_id,
        })
    }

    /// The account the credentials act in (`sts:GetCallerIdentity`, one
    /// call beside the other lookups), which the node termination queue's
    /// policy names. No call while the handler is off: nothing else needs it.
    async fn account_id(&self, bundle: &ClusterBundle) -> Result<Option<String>> {
        if !bundle
            .cluster
            .spec
            .addons
            .node_termination_handler_enabled()
        {
            return Ok(None);
        }
        let identity = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|error| {
                let mut error = aws_error(
                    "sts:GetCallerIdentity",
                    "the AWS account (spec.addons.nodeTerminationHandler's queue policy names it)",
                    error,
                );
                error.message = format!(
                    "{}; check that skiff's AWS credentials are valid (`aws sts get-caller-identity`)",
                    error.message
                );
                error
            })?;
        Ok(identity
            .account()
            .filter(|account| !account.is_empty())
            .map(str::to_string))
    }

    /// Which of a gossip cluster's API load balancers exist, each asked by
    /// its name (a name that does not exist fails the whole call). No call
    /// for a DNS cluster or an internal API load balancer, whose endpoint
    /// does not depend on it.
    async fn existing_api_load_balancers(
        &self,
        bundle: &ClusterBundle,
    ) -> Result<ExistingApiLoadBalancers> {
        let cluster = &bundle.cluster;
        if !cluster.is_gossip()
            || cluster.spec.api.load_balancer.load_balancer_type != LoadBalancerType::Public
        {
            return Ok(ExistingApiLoadBalancers::default());
        }
        let exists = |name: String| async move {
            match self.elb.describe_load_balancers().names(&name).send().await {
                Ok(output) => Ok(!output.load_balancers().is_empty()),
                Err(error) => {
                    let error =
                        aws_error("elasticloadbalancing:DescribeLoadBalancers", &name, error);
                    if error.is_missing() {
                        Ok(false)
                    } else {
                        Err(error)
                    }
                }
            }
        };
        let (public, internal) = tokio::try_join!(
            exists(names::load_balancer(cluster.name())),
            exists(names::internal_load_balancer(cluster.name())),
        )?;
        Ok(ExistingApiLoadBalancers { public, internal })
    }

    /// The architectures of every machine type the groups name, then each
    /// group's image: AMI IDs in one call (beside the types' call), each
    /// distinct (pattern, architecture) with one `DescribeImages` call
    /// filtered by `architecture`, a default pattern first turned into its
    /// variant for that architecture; newest image first.
    pub async fn resolve_images(
        &self,
        bundle: &ClusterBundle,
    ) -> Result<(
        BTreeMap<String, ResolvedImage>,
        BTreeMap<String, Vec<Architecture>>,
    )> {
        let wanted: BTreeSet<String> = bundle
            .instance_groups
            .iter()
            .filter_map(|group| group.spec.image.clone())
            .collect();
        let ids: Vec<String> = wanted
            .iter()
            .filter(|image| image.starts_with("ami-"))
            .cloned()
            .collect();
        let (by_id, machine_types) = tokio::try_join!(
            self.images_by_id(ids),
            self.machine_type_architectures(bundle)
        )?;
        // Each distinct (pattern, architecture) once, for every group that
        // needs it; a group of an unknown type is left for the planner to
        // name.
        let mut by_pattern: BTreeMap<(String, Architecture), Option<ResolvedImage>> =
            BTreeMap::new();
        let mut resolved = BTreeMap::new();
        for group in &bundle.instance_groups {
            let Some(image) = &group.spec.image else {
                continue;
            };
            if image.starts_with("ami-") {
                if let Some(found) = by_id.get(image) {
                    resolved.insert(group.name().to_string(), found.clone());
                }
                continue;
            }
            let Some(architecture) = machine_types
                .get(&group.spec.machine_type)
                .and_then(|supported| Architecture::preferred(supported))
            else {
                continue;
            };
            let pattern = image_for_architecture(image, architecture);
            let key = (pattern, architecture);
            if !by_pattern.contains_key(&key) {
                let found = self.newest_image(&key.0, architecture).await?;
                by_pattern.insert(key.clone(), found);
            }
            if let Some(Some(found)) = by_pattern.get(&key) {
                resolved.insert(group.name().to_string(), found.clone());
            }
        }
        Ok((resolved, machine_types))
    }

    /// The images with these IDs, in one call.
    async fn images_by_id(&self, ids: Vec<String>) -> Result<BTreeMap<String, ResolvedImage>> {
        let mut resolved = BTreeMap::new();
        if ids.is_empty() {
            return Ok(resolved);
        }
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
        Ok(resolved)
    }

    /// The newest image of `OWNER/NAME-PATTERN` built for `architecture`.
    async fn newest_image(
        &self,
        pattern: &str,
        architecture: Architecture,
    ) -> Result<Option<ResolvedImage>> {
        let Some((owner, name)) = pattern.split_once('/') else {
            return Ok(None);
        };
        let found = self
            .ec2
            .describe_images()
            .owners(owner)
            .filters(Filter::builder().name("name").values(name).build())
            .filters(
                Filter::builder()
                    .name("architecture")
                    .values(architecture.ec2_name())
                    .build(),
            )
            .send()
            .await
            .map_err(|error| aws_error("ec2:DescribeImages", pattern, error))?;
        // Newest first; the name breaks ties so the choice is stable.
        let newest = found.images().iter().max_by(|first, second| {
            (first.creation_date(), first.name()).cmp(&(second.creation_date(), second.name()))
        });
        Ok(newest.map(resolved_image))
    }

    /// The architectures (those skiff builds for) of every machine type the
    /// groups name, `machineType` and `mixedInstancesPolicy` alike: one
    /// `DescribeInstanceTypes` call per 100 types. EC2 refuses the whole
    /// call when one type does not exist (`InvalidInstanceType`); then each
    /// type is asked alone, so the planner can name the unknown one.
    async fn machine_type_architectures(
        &self,
        bundle: &ClusterBundle,
    ) -> Result<BTreeMap<String, Vec<Architecture>>> {
        let types: BTreeSet<String> = bundle
            .instance_groups
            .iter()
            .flat_map(|group| group.spec.machine_types())
            .map(str::to_string)
            .collect();
        let types: Vec<String> = types.into_iter().collect();
        let mut found = BTreeMap::new();
        for chunk in types.chunks(100) {
            match self.describe_instance_types(chunk).await {
                Ok(described) => found.extend(described),
                Err(error) if error.code.as_deref() == Some("InvalidInstanceType") => {
                    for machine_type in chunk {
                        match self
                            .describe_instance_types(std::slice::from_ref(machine_type))
                            .await
                        {
                            Ok(described) => found.extend(described),
                            Err(error) if error.code.as_deref() == Some("InvalidInstanceType") => {}
                            Err(error) => return Err(error),
                        }
                    }
                }
                Err(error) => return Err(error),
            }
        }
        Ok(found)
    }

    /// One `DescribeInstanceTypes` call (with its pages) for `types`.
    async fn describe_instance_types(
        &self,
        types: &[String],
    ) -> Result<BTreeMap<String, Vec<Architecture>>> {
        let mut found = BTreeMap::new();
        let mut next_token: Option<String> = None;
        loop {
            let page = self
                .ec2
                .describe_instance_types()
                .set_instance_types(Some(
                    types
                        .iter()
                        .map(|machine_type| InstanceType::from(machine_type.as_str()))
                        .collect(),
                ))
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|error| aws_error("ec2:DescribeInstanceTypes", &types.join(","), error))?;
            for described in page.instance_types() {
                let Some(machine_type) = described.instance_type() else {
                    continue;
                };
                let architectures = described
                    .processor_info()
                    .map(|processor| processor.supported_architectures())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|architecture| Architecture::from_ec2_name(architecture.as_str()))
                    .collect();
                found.insert(machine_type.as_str().to_string(), architectures);
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                _ => break,
            }
        }
        Ok(found)
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
                let attribute = |name: VpcAttributeName| async move {
                    self.ec2
                        .describe_vpc_attribute()
                        .vpc_id(id)
                        .attribute(name)
                        .send()
                        .await
                        .map_err(|error| aws_error("ec2:DescribeVpcAttribute", id, error))
                };
                let (support, hostnames) = tokio::try_join!(
                    attribute(VpcAttributeName::EnableDnsSupport),
                    attribute(VpcAttributeName::EnableDnsHostnames),
                )?;
                shared_vpc = Some(SharedVpc {
                    id: id.clone(),
                    cidr: vpc.cidr_block().unwrap_or_default().to_string(),
                    // EC2's defaults when it does not say: support on,
                    // host names off.
                    dns_support: support
                        .enable_dns_support()
                        .and_then(|value| value.value())
                        .unwrap_or(true),
                    dns_hostnames: hostnames
                        .enable_dns_hostnames()
                        .and_then(|value| value.value())
                        .unwrap_or(false),
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
        architecture: image
            .architecture()
            .and_then(|architecture| Architecture::from_ec2_name(architecture.as_str())),
    }
}
