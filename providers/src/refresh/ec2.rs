//! EC2 resources: one filtered call per type, all at once.

use aws_sdk_ec2::types::{Filter, VpcAttributeName};
use skiff_plans::resource::{
    Attributes, ElasticIpAttributes, Id, IngressRule, InternetGatewayAttributes, KeyPairAttributes,
    LaunchTemplateAttributes, NatGatewayAttributes, ResourceKey, ResourceKind,
    RootVolumeAttributes, Route, RouteTableAttributes, RouteTarget, RuleSource,
    SecurityGroupAttributes, SecurityGroupRulesAttributes, SubnetAttributes, Tags, VpcAttributes,
};
use skiff_plans::{names, ObservedResource, Output};

use super::{outputs, RefreshScope};
use crate::error::{aws_error, Result};
use crate::tags::from_ec2;
use crate::AwsProvider;

pub(super) fn owned_filter(cluster: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{}", names::ownership_tag(cluster)))
        .values("owned")
        .build()
}

fn observed(
    key: ResourceKey,
    id: &str,
    mut attributes: Attributes,
    outputs: std::collections::BTreeMap<Output, String>,
) -> ObservedResource {
    attributes.normalize();
    ObservedResource {
        key,
        id: id.to_string(),
        attributes,
        outputs,
    }
}

pub(super) async fn refresh(
    provider: &AwsProvider,
    scope: &RefreshScope,
) -> Result<Vec<ObservedResource>> {
    let (vpcs, subnets, gateways, addresses, nats, tables, groups, key_pairs, templates) = tokio::try_join!(
        vpcs(provider, scope),
        subnets(provider, scope),
        internet_gateways(provider, scope),
        addresses(provider, scope),
        nat_gateways(provider, scope),
        route_tables(provider, scope),
        security_groups(provider, scope),
        key_pairs(provider, scope),
        launch_templates(provider, scope),
    )?;
    Ok(vpcs
        .into_iter()
        .chain(subnets)
        .chain(gateways)
        .chain(addresses)
        .chain(nats)
        .chain(tables)
        .chain(groups)
        .chain(key_pairs)
        .chain(templates)
        .collect())
}

async fn vpcs(provider: &AwsProvider, scope: &RefreshScope) -> Result<Vec<ObservedResource>> {
    let mut found = Vec::new();
    let mut pages = provider
        .ec2
        .describe_vpcs()
        .filters(owned_filter(&scope.cluster))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| aws_error("ec2:DescribeVpcs", &scope.cluster, error))?;
        for vpc in page.vpcs() {
            let tags = from_ec2(vpc.tags());
            let (Some(key), Some(id)) = (scope.key_of(ResourceKind::Vpc, &tags), vpc.vpc_id())
            else {
                continue;
            };
            let attribute = |name: VpcAttributeName| {
                provider
                    .ec2
                    .describe_vpc_attribute()
                    .vpc_id(id)
                    .attribute(name)
                    .send()
            };
            let (support, hostnames) = tokio::try_join!(
                async {
                    attribute(VpcAttributeName::EnableDnsSupport)
                        .await
                        .map_err(|error| aws_error("ec2:DescribeVpcAttribute", id, error))
                },
                async {
                    attribute(VpcAttributeName::EnableDnsHostnames)
                        .await
                        .map_err(|error| aws_error("ec2:DescribeVpcAttribute", id, error))
                },
            )?;
            found.push(observed(
                key,
                id,
                Attributes::Vpc(VpcAttributes {
                    cidr: vpc.cidr_block().unwrap_or_default().to_string(),
                    enable_dns_support: support
                        .enable_dns_support()
                        .and_then(|value| value.value())
                        .unwrap_or(true),
                    enable_dns_hostnames: hostnames
                        .enable_dns_hostnames()
                        .and_then(|value| value.value())
                        .unwrap_or(false),
                    tags,
                }),
                outputs(&[(Output::Id, id)]),
            ));
        }
    }
    Ok(found)
}

async fn subnets(provider: &AwsProvider, scope: &RefreshScope) -> Result<Vec<ObservedResource>> {
    let mut found = Vec::new();
    let mut pages = provider
        .ec2
        .describe_subnets()
        .filters(owned_filter(&scope.cluster))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| aws_error("ec2:DescribeSubnets", &scope.cluster, error))?;
        for subnet in page.subnets() {
            let tags = from_ec2(subnet.tags());
            let (Some(key), Some(id)) = (
                scope.key_of(ResourceKind::Subnet, &tags),
                subnet.subnet_id(),
            ) else {
                continue;
            };
            found.push(observed(
                key,
                id,
                Attributes::Subnet(SubnetAttributes {
                    vpc: Id::from(subnet.vpc_id().unwrap_or_default()),
                    cidr: subnet.cidr_block().unwrap_or_default().to_string(),
                    zone: subnet.availability_zone().unwrap_or_default().to_string(),
                    map_public_ip_on_launch: subnet.map_public_ip_on_launch().unwrap_or(false),
                    tags,
                }),
                outputs(&[(Output::Id, id)]),
            ));
        }
    }
    Ok(found)
}

async fn internet_gateways(
    provider: &AwsProvider,
    scope: &RefreshScope,
) -> Result<Vec<ObservedResource>> {
    let mut found = Vec::new();
    let mut pages = provider
        .ec2
        .describe_internet_gateways()
        .filters(owned_filter(&scope.cluster))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|error| aws_error("ec2:DescribeInternetGateways", &scope.cluster, error))?;
        for gateway in page.internet_gateways() {
            let tags = from_ec2(gateway.tags());
            let (Some(key), Some(id)) = (
                scope.key_of(ResourceKind::InternetGateway, &tags),
                gateway.internet_gateway_id(),
            ) else {
                continue;
            };
            let vpc = gateway
                .attachments()
                .first()
                .and_then(|attachment| attachment.vpc_id())
                .unwrap_or_default();
            found.push(observed(
                key,
                id,
                Attributes::InternetGateway(InternetGatewayAttributes {
                    vpc: Id::from(vpc),
                    tags,
                }),
                outputs(&[(Output::Id, id)]),
            ));
        }
    }
    Ok(found)
}

async fn addresses(provider: &AwsProvider, scope: &RefreshScope) -> Result<Vec<ObservedResource>> {
    let found = provider
        .ec2
        .describe_addresses()
        .filters(owned_filter(&scope.cluster))
        .send()
        .await
        .map_err(|error| aws_error("ec2:DescribeAddresses", &scope.cluster, error))?;
    let mut resources = Vec::new();
    for address in found.addresses() {
        let tags = from_ec2(address.tags());
        let (Some(key), Some(id)) = (
            scope.key_of(ResourceKind::ElasticIp, &tags),
            address.allocation_id(),
        ) else {
            continue;
        };
        resources.push(observed(
            key,
            id,
            Attributes::ElasticIp(ElasticIpAttributes { tags }),
            outputs(&[(Output::Id, id)]),
        ));
    }
    Ok(resources)
}

async fn nat_gateways(
    provider: &AwsProvider,
    scope: &RefreshScope,
) -> Result<Vec<ObservedResource>> {
    use aws_sdk_ec2::types::NatGatewayState;
    let mut found = Vec::new();
    let mut pages = provider
        .ec2
        .describe_nat_gateways()
        .filter(owned_filter(&scope.cluster))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|error| aws_error("ec2:DescribeNatGateways", &scope.cluster, error))?;
        for gateway in page.nat_gateways() {
            // Deleted gateways stay visible for an hour; they are gone for us.
            if matches!(
                gateway.state(),
                Some(
                    NatGatewayState::Deleted | NatGatewayState::Deleting | NatGatewayState::Failed
                )
            ) {
                continue;
            }
            let tags = from_ec2(gateway.tags());
            let (Some(key), Some(id)) = (
                scope.key_of(ResourceKind::NatGateway, &tags),
                gateway.nat_gateway_id(),
            ) else {
                continue;
            };
            let allocation = gateway
                .nat_gateway_addresses()
                .first()
                .and_then(|address| address.allocation_id())
                .unwrap_or_default();
            found.push(observed(
                key,
                id,
                Attributes::NatGateway(NatGatewayAttributes {
                    subnet: Id::from(gateway.subnet_id().unwrap_or_default()),
                    allocation: Id::from(allocation),
                    tags,
                }),
                outputs(&[(Output::Id, id)]),
            ));
        }
    }
    Ok(found)
}

async fn route_tables(
    provider: &AwsProvider,
    scope: &RefreshScope,
) -> Result<Vec<ObservedResource>> {
    let mut found = Vec::new();
    let mut pages = provider
        .ec2
        .describe_route_tables()
        .filters(owned_filter(&scope.cluster))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|error| aws_error("ec2:DescribeRouteTables", &scope.cluster, error))?;
        for table in page.route_tables() {
            let tags = from_ec2(table.tags());
            let (Some(key), Some(id)) = (
                scope.key_of(ResourceKind::RouteTable, &tags),
                table.route_table_id(),
            ) else {
                continue;
            };
            let routes = table
                .routes()
                .iter()
                .filter_map(|route| {
                    let destination = route.destination_cidr_block()?.to_string();
                    let target = match (route.gateway_id(), route.nat_gateway_id()) {
                        (Some(gateway), _) if gateway.starts_with("igw-") => {
                            RouteTarget::InternetGateway(Id::from(gateway))
                        }
                        (_, Some(nat)) => RouteTarget::NatGateway(Id::from(nat)),
                        // The VPC's local route and routes skiff does not manage.
                        _ => return None,
                    };
                    Some(Route {
                        destination,
                        target,
                    })
                })
                .collect();
            let subnets = table
                .associations()
                .iter()
                .filter(|association| !association.main().unwrap_or(false))
                .filter_map(|association| association.subnet_id())
                .map(Id::from)
                .collect();
            found.push(observed(
                key,
                id,
                Attributes::RouteTable(RouteTableAttributes {
                    vpc: Id::from(table.vpc_id().unwrap_or_default()),
                    routes,
                    subnets,
                    tags,
                }),
                outputs(&[(Output::Id, id)]),
            ));
        }
    }
    Ok(found)
}

/// Flattens EC2's grouped permissions into one rule per source.
pub(crate) fn ingress_rules(permissions: &[aws_sdk_ec2::types::IpPermission]) -> Vec<IngressRule> {
    let mut rules = Vec::new();
    for permission in permissions {
        let protocol = permission.ip_protocol().unwrap_or("-1").to_string();
        let from_port = permission.from_port().unwrap_or(-1);
        let to_port = permission.to_port().unwrap_or(-1);
        for range in permission.ip_ranges() {
            if let Some(cidr) = range.cidr_ip() {
                rules.push(IngressRule {
                    protocol: protocol.clone(),
                    from_port,
                    to_port,
                    source: RuleSource::Cidr(cidr.to_string()),
                });
            }
        }
        for pair in permission.user_id_group_pairs() {
            if let Some(group) = pair.group_id() {
                rules.push(IngressRule {
                    protocol: protocol.clone(),
                    from_port,
                    to_port,
                    source: RuleSource::Group(Id::from(group)),
                });
            }
        }
    }
    rules
}

async fn security_groups(
    provider: &AwsProvider,
    scope: &RefreshScope,
) -> Result<Vec<ObservedResource>> {
    let mut found = Vec::new();
    let mut pages = provider
        .ec2
        .describe_security_groups()
        .filters(owned_filter(&scope.cluster))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|error| aws_error("ec2:DescribeSecurityGroups", &scope.cluster, error))?;
        for group in page.security_groups() {
            let tags = from_ec2(group.tags());
            let (Some(key), Some(id)) = (
                scope.key_of(ResourceKind::SecurityGroup, &tags),
                group.group_id(),
            ) else {
                continue;
            };
            let rules_key = ResourceKey::new(ResourceKind::SecurityGroupRules, key.name());
            found.push(observed(
                key,
                id,
                Attributes::SecurityGroup(SecurityGroupAttributes {
                    vpc: Id::from(group.vpc_id().unwrap_or_default()),
                    name: group.group_name().unwrap_or_default().to_string(),
                    description: group.description().unwrap_or_default().to_string(),
                    tags,
                }),
                outputs(&[(Output::Id, id)]),
            ));
            found.push(observed(
                rules_key,
                id,
                Attributes::SecurityGroupRules(SecurityGroupRulesAttributes {
                    group: Id::from(id),
                    ingress: ingress_rules(group.ip_permissions()),
                }),
                outputs(&[(Output::Id, id)]),
            ));
        }
    }
    Ok(found)
}

async fn key_pairs(provider: &AwsProvider, scope: &RefreshScope) -> Result<Vec<ObservedResource>> {
    let found = provider
        .ec2
        .describe_key_pairs()
        .filters(owned_filter(&scope.cluster))
        .include_public_key(true)
        .send()
        .await
        .map_err(|error| aws_error("ec2:DescribeKeyPairs", &scope.cluster, error))?;
    let mut resources = Vec::new();
    for pair in found.key_pairs() {
        let tags = from_ec2(pair.tags());
        let (Some(key), Some(name)) = (scope.key_of(ResourceKind::KeyPair, &tags), pair.key_name())
        else {
            continue;
        };
        resources.push(observed(
            key,
            pair.key_pair_id().unwrap_or(name),
            Attributes::KeyPair(KeyPairAttributes {
                name: name.to_string(),
                public_key: skiff_plans::desired::compute::public_key_material(
                    pair.public_key().unwrap_or_default(),
                ),
                tags,
            }),
            outputs(&[
                (Output::Id, pair.key_pair_id().unwrap_or(name)),
                (Output::Name, name),
            ]),
        ));
    }
    Ok(resources)
}

async fn launch_templates(
    provider: &AwsProvider,
    scope: &RefreshScope,
) -> Result<Vec<ObservedResource>> {
    let mut templates = Vec::new();
    let mut pages = provider
        .ec2
        .describe_launch_templates()
        .filters(owned_filter(&scope.cluster))
        // The largest page AWS allows: fewer round trips (and moto returns
        // only the first page, without a token, so a smaller one loses templates).
        .max_results(200)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|error| aws_error("ec2:DescribeLaunchTemplates", &scope.cluster, error))?;
        for template in page.launch_templates() {
            let tags = from_ec2(template.tags());
            if let (Some(key), Some(id)) = (
                scope.key_of(ResourceKind::LaunchTemplate, &tags),
                template.launch_template_id(),
            ) {
                templates.push((
                    key,
                    id.to_string(),
                    template
                        .launch_template_name()
                        .unwrap_or_default()
                        .to_string(),
                    tags,
                ));
            }
        }
    }
    if templates.is_empty() {
        return Ok(Vec::new());
    }
    // The latest version of every template, in one paginated call.
    let mut versions = std::collections::BTreeMap::new();
    let mut pages = provider
        .ec2
        .describe_launch_template_versions()
        .versions("$Latest")
        .max_results(200)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|error| {
            aws_error("ec2:DescribeLaunchTemplateVersions", &scope.cluster, error)
        })?;
        for version in page.launch_template_versions() {
            if let Some(id) = version.launch_template_id() {
                versions.insert(id.to_string(), version.clone());
            }
        }
    }
    let mut resources = Vec::new();
    for (key, id, name, tags) in templates {
        let Some(version) = versions.get(&id) else {
            continue;
        };
        let number = version.version_number().unwrap_or(1).to_string();
        let attributes = launch_template_attributes(&name, version.launch_template_data(), tags);
        resources.push(observed(
            key,
            &id,
            Attributes::LaunchTemplate(Box::new(attributes)),
            outputs(&[
                (Output::Id, &id),
                (Output::Name, &name),
                (Output::LatestVersion, &number),
            ]),
        ));
    }
    Ok(resources)
}

/// Normalizes a launch template version's data.
pub(crate) fn launch_template_attributes(
    name: &str,
    data: Option<&aws_sdk_ec2::types::ResponseLaunchTemplateData>,
    tags: Tags,
) -> LaunchTemplateAttributes {
    let user_data = data
        .and_then(|data| data.user_data())
        .and_then(skiff_templates::decode_user_data)
        .unwrap_or_default();
    let root = data.and_then(|data| data.block_device_mappings().first());
    let ebs = root.and_then(|mapping| mapping.ebs());
    let market = data.and_then(|data| data.instance_market_options());
    let mut instance_tags = Tags::new();
    for specification in data
        .map(|data| data.tag_specifications())
        .unwrap_or_default()
    {
        if specification.resource_type() == Some(&aws_sdk_ec2::types::ResourceType::Instance) {
            instance_tags = from_ec2(specification.tags());
        }
    }
    let mut security_groups: Vec<Id> = data
        .map(|data| {
            data.security_group_ids()
                .iter()
                .map(|id| Id::from(id.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let primary_interface = data.and_then(|data| {
        data.network_interfaces()
            .iter()
            .find(|interface| interface.device_index().unwrap_or(0) == 0)
    });
    if security_groups.is_empty() {
        if let Some(interface) = primary_interface {
            security_groups = interface
                .groups()
                .iter()
                .map(|id| Id::from(id.as_str()))
                .collect();
        }
    }
    security_groups.sort();
    let private_ip = primary_interface
        .and_then(|interface| interface.private_ip_address())
        .map(str::to_string);
    LaunchTemplateAttributes {
        name: name.to_string(),
        image_id: data
            .and_then(|data| data.image_id())
            .unwrap_or_default()
            .to_string(),
        instance_type: data
            .and_then(|data| data.instance_type())
            .map(|instance_type| instance_type.as_str().to_string())
            .unwrap_or_default(),
        key_name: data.and_then(|data| data.key_name()).map(Id::from),
        instance_profile: data
            .and_then(|data| data.iam_instance_profile())
            .and_then(|profile| profile.arn())
            .map(Id::from),
        security_groups,
        private_ip,
        user_data,
        user_data_substitutions: Default::default(),
        root_volume: RootVolumeAttributes {
            device_name: root
                .and_then(|mapping| mapping.device_name())
                .unwrap_or_default()
                .to_string(),
            size: ebs
                .and_then(|ebs| ebs.volume_size())
                .and_then(|size| u32::try_from(size).ok())
                .unwrap_or_default(),
            volume_type: ebs
                .and_then(|ebs| ebs.volume_type())
                .map(|volume_type| volume_type.as_str().to_string())
                .unwrap_or_default(),
            iops: ebs
                .and_then(|ebs| ebs.iops())
                .and_then(|iops| u32::try_from(iops).ok()),
            throughput: ebs
                .and_then(|ebs| ebs.throughput())
                .and_then(|throughput| u32::try_from(throughput).ok()),
            encrypted: ebs.and_then(|ebs| ebs.encrypted()).unwrap_or(false),
        },
        http_tokens_required: data
            .and_then(|data| data.metadata_options())
            .and_then(|options| options.http_tokens())
            .is_some_and(|tokens| tokens.as_str() == "required"),
        http_put_response_hop_limit: data
            .and_then(|data| data.metadata_options())
            .and_then(|options| options.http_put_response_hop_limit())
            .and_then(|limit| u32::try_from(limit).ok())
            .unwrap_or(1),
        spot: market
            .and_then(|market| market.market_type())
            .is_some_and(|market| market.as_str() == "spot"),
        spot_max_price: market
            .and_then(|market| market.spot_options())
            .and_then(|spot| spot.max_price())
            .map(str::to_string),
        instance_tags,
        tags,
    }
}
