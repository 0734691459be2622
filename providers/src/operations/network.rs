//! VPC, subnets, internet gateway, Elastic IPs, NAT gateways, route tables.

use std::time::Duration;

use aws_sdk_ec2::operation::modify_vpc_attribute::builders::ModifyVpcAttributeFluentBuilder;
use aws_sdk_ec2::types::{AttributeBooleanValue, DomainType, NatGatewayState, ResourceType};
use skiff_plans::resource::{
    ElasticIpAttributes, InternetGatewayAttributes, NatGatewayAttributes, ResourceKey,
    RouteTableAttributes, RouteTarget, SubnetAttributes, Tags, VpcAttributes,
};

use super::holders::{delete_when_free, Held};
use super::{client_token, value, values, wait_for, Applied};
use crate::error::{aws_error, ProviderError, Result};
use crate::retry::retry;
use crate::tags::{changes, ec2_spec, to_ec2};
use crate::AwsProvider;

fn flag(value: bool) -> AttributeBooleanValue {
    AttributeBooleanValue::builder().value(value).build()
}

/// Adds and removes tags of any EC2 resource.
pub(crate) async fn update_tags(
    provider: &AwsProvider,
    id: &str,
    before: &Tags,
    after: &Tags,
) -> Result<Applied> {
    let (set, removed) = changes(before, after);
    if !set.is_empty() {
        retry(&provider.retry, || async {
            provider
                .ec2
                .create_tags()
                .resources(id)
                .set_tags(Some(to_ec2(&set)))
                .send()
                .await
                .map_err(|error| aws_error("ec2:CreateTags", id, error))
        })
        .await?;
    }
    if !removed.is_empty() {
        let tags: Vec<aws_sdk_ec2::types::Tag> = removed
            .iter()
            .map(|key| aws_sdk_ec2::types::Tag::builder().key(key).build())
            .collect();
        retry(&provider.retry, || async {
            provider
                .ec2
                .delete_tags()
                .resources(id)
                .set_tags(Some(tags.clone()))
                .send()
                .await
                .map_err(|error| aws_error("ec2:DeleteTags", id, error))
        })
        .await?;
    }
    Ok(Applied::with_id(id))
}

pub(crate) async fn create_vpc(
    provider: &AwsProvider,
    key: &ResourceKey,
    vpc: &VpcAttributes,
) -> Result<Applied> {
    let output = retry(&provider.retry, || async {
        provider
            .ec2
            .create_vpc()
            .cidr_block(&vpc.cidr)
            .tag_specifications(ec2_spec(ResourceType::Vpc, &vpc.tags))
            .send()
            .await
            .map_err(|error| aws_error("ec2:CreateVpc", key.as_str(), error))
    })
    .await?;
    let id = output
        .vpc()
        .and_then(|created| created.vpc_id())
        .ok_or_else(|| {
            ProviderError::other("ec2:CreateVpc", key.as_str(), "no VPC ID in the answer")
        })?
        .to_string();
    // A new VPC has DNS support on and DNS hostnames off: set only what
    // differs.
    set_vpc_dns(
        provider,
        &id,
        (!vpc.enable_dns_support).then_some(false),
        vpc.enable_dns_hostnames.then_some(true),
    )
    .await?;
    Ok(Applied::with_id(&id))
}

/// Sets the DNS attributes given (one attribute per call, as the API
/// requires; the two calls at once).
async fn set_vpc_dns(
    provider: &AwsProvider,
    id: &str,
    support: Option<bool>,
    hostnames: Option<bool>,
) -> Result<()> {
    tokio::try_join!(
        modify_vpc_attribute(
            provider,
            id,
            support,
            ModifyVpcAttributeFluentBuilder::enable_dns_support
        ),
        modify_vpc_attribute(
            provider,
            id,
            hostnames,
            ModifyVpcAttributeFluentBuilder::enable_dns_hostnames
        ),
    )?;
    Ok(())
}

/// `ModifyVpcAttribute` with the one attribute `set` sets to `value`;
/// nothing when `value` is `None`.
async fn modify_vpc_attribute(
    provider: &AwsProvider,
    id: &str,
    value: Option<bool>,
    set: fn(
        ModifyVpcAttributeFluentBuilder,
        AttributeBooleanValue,
    ) -> ModifyVpcAttributeFluentBuilder,
) -> Result<()> {
    let Some(value) = value else {
        return Ok(());
    };
    retry(&provider.retry, || async {
        set(provider.ec2.modify_vpc_attribute().vpc_id(id), flag(value))
            .send()
            .await
            .map_err(|error| aws_error("ec2:ModifyVpcAttribute", id, error))
    })
    .await?;
    Ok(())
}

pub(crate) async fn update_vpc(
    provider: &AwsProvider,
    id: &str,
    before: &VpcAttributes,
    after: &VpcAttributes,
) -> Result<Applied> {
    let changed = |before: bool, after: bool| (before != after).then_some(after);
    set_vpc_dns(
        provider,
        id,
        changed(before.enable_dns_support, after.enable_dns_support),
        changed(before.enable_dns_hostnames, after.enable_dns_hostnames),
    )
    .await?;
    update_tags(provider, id, &before.tags, &after.tags).await
}

pub(crate) async fn delete_vpc(provider: &AwsProvider, id: &str) -> Result<()> {
    delete_when_free(provider, Held::Vpc(id), || async {
        provider
            .ec2
            .delete_vpc()
            .vpc_id(id)
            .send()
            .await
            .map_err(|error| aws_error("ec2:DeleteVpc", id, error))
    })
    .await?;
    Ok(())
}

pub(crate) async fn create_subnet(
    provider: &AwsProvider,
    key: &ResourceKey,
    subnet: &SubnetAttributes,
) -> Result<Applied> {
    let vpc = value(key, "vpc", &subnet.vpc)?;
    let output = retry(&provider.retry, || async {
        provider
            .ec2
            .create_subnet()
            .vpc_id(vpc)
            .cidr_block(&subnet.cidr)
            .availability_zone(&subnet.zone)
            .tag_specifications(ec2_spec(ResourceType::Subnet, &subnet.tags))
            .send()
            .await
            .map_err(|error| aws_error("ec2:CreateSubnet", key.as_str(), error))
    })
    .await?;
    let id = output
        .subnet()
        .and_then(|created| created.subnet_id())
        .ok_or_else(|| {
            ProviderError::other(
                "ec2:CreateSubnet",
                key.as_str(),
                "no subnet ID in the answer",
            )
        })?
        .to_string();
    if subnet.map_public_ip_on_launch {
        set_map_public_ip(provider, &id, true).await?;
    }
    Ok(Applied::with_id(&id))
}

async fn set_map_public_ip(provider: &AwsProvider, id: &str, enabled: bool) -> Result<()> {
    retry(&provider.retry, || async {
        provider
            .ec2
            .modify_subnet_attribute()
            .subnet_id(id)
            .map_public_ip_on_launch(flag(enabled))
            .send()
            .await
            .map_err(|error| aws_error("ec2:ModifySubnetAttribute", id, error))
    })
    .await?;
    Ok(())
}

pub(crate) async fn update_subnet(
    provider: &AwsProvider,
    id: &str,
    before: &SubnetAttributes,
    after: &SubnetAttributes,
) -> Result<Applied> {
    if before.map_public_ip_on_launch != after.map_public_ip_on_launch {
        set_map_public_ip(provider, id, after.map_public_ip_on_launch).await?;
    }
    update_tags(provider, id, &before.tags, &after.tags).await
}

pub(crate) async fn delete_subnet(provider: &AwsProvider, id: &str) -> Result<()> {
    // A deleting NAT gateway, a deleted load balancer's interfaces and
    // terminating instances keep network interfaces here for a while.
    delete_when_free(provider, Held::Subnet(id), || async {
        provider
            .ec2
            .delete_subnet()
            .subnet_id(id)
            .send()
            .await
            .map_err(|error| aws_error("ec2:DeleteSubnet", id, error))
    })
    .await?;
    Ok(())
}

pub(crate) async fn create_internet_gateway(
    provider: &AwsProvider,
    key: &ResourceKey,
    gateway: &InternetGatewayAttributes,
) -> Result<Applied> {
    let vpc = value(key, "vpc", &gateway.vpc)?;
    let output = retry(&provider.retry, || async {
        provider
            .ec2
            .create_internet_gateway()
            .tag_specifications(ec2_spec(ResourceType::InternetGateway, &gateway.tags))
            .send()
            .await
            .map_err(|error| aws_error("ec2:CreateInternetGateway", key.as_str(), error))
    })
    .await?;
    let id = output
        .internet_gateway()
        .and_then(|created| created.internet_gateway_id())
        .ok_or_else(|| {
            ProviderError::other(
                "ec2:CreateInternetGateway",
                key.as_str(),
                "no gateway ID in the answer",
            )
        })?
        .to_string();
    attach_internet_gateway(provider, &id, vpc).await?;
    Ok(Applied::with_id(&id))
}

async fn attach_internet_gateway(provider: &AwsProvider, id: &str, vpc: &str) -> Result<()> {
    retry(&provider.retry, || async {
        provider
            .ec2
            .attach_internet_gateway()
            .internet_gateway_id(id)
            .vpc_id(vpc)
            .send()
            .await
            .map_err(|error| aws_error("ec2:AttachInternetGateway", id, error))
    })
    .await?;
    Ok(())
}

pub(crate) async fn update_internet_gateway(
    provider: &AwsProvider,
    key: &ResourceKey,
    id: &str,
    before: &InternetGatewayAttributes,
    after: &InternetGatewayAttributes,
) -> Result<Applied> {
    if before.vpc != after.vpc {
        if let Some(old) = before.vpc.value().filter(|old| !old.is_empty()) {
            detach_internet_gateway(provider, id, old).await?;
        }
        attach_internet_gateway(provider, id, value(key, "vpc", &after.vpc)?).await?;
    }
    update_tags(provider, id, &before.tags, &after.tags).await
}

async fn detach_internet_gateway(provider: &AwsProvider, id: &str, vpc: &str) -> Result<()> {
    // Refused while a NAT gateway (even a deleting one) maps a public
    // address in the VPC: "Network vpc-… has some mapped public
    // address(es)" (terraform-provider-aws retries it the same way).
    let result = delete_when_free(provider, Held::PublicAddressesOf(vpc), || async {
        provider
            .ec2
            .detach_internet_gateway()
            .internet_gateway_id(id)
            .vpc_id(vpc)
            .send()
            .await
            .map_err(|error| aws_error("ec2:DetachInternetGateway", id, error))
    })
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(error) if error.code.as_deref() == Some("Gateway.NotAttached") => Ok(()),
        Err(error) => Err(error),
    }
}

pub(crate) async fn delete_internet_gateway(
    provider: &AwsProvider,
    id: &str,
    gateway: &InternetGatewayAttributes,
) -> Result<()> {
    if let Some(vpc) = gateway.vpc.value().filter(|vpc| !vpc.is_empty()) {
        detach_internet_gateway(provider, id, vpc).await?;
    }
    retry(&provider.retry, || async {
        provider
            .ec2
            .delete_internet_gateway()
            .internet_gateway_id(id)
            .send()
            .await
            .map_err(|error| aws_error("ec2:DeleteInternetGateway", id, error))
    })
    .await?;
    Ok(())
}

pub(crate) async fn create_elastic_ip(
    provider: &AwsProvider,
    key: &ResourceKey,
    address: &ElasticIpAttributes,
) -> Result<Applied> {
    let output = retry(&provider.retry, || async {
        provider
            .ec2
            .allocate_address()
            .domain(DomainType::Vpc)
            .tag_specifications(ec2_spec(ResourceType::ElasticIp, &address.tags))
            .send()
            .await
            .map_err(|error| aws_error("ec2:AllocateAddress", key.as_str(), error))
    })
    .await?;
    let id = output.allocation_id().ok_or_else(|| {
        ProviderError::other(
            "ec2:AllocateAddress",
            key.as_str(),
            "no allocation ID in the answer",
        )
    })?;
    Ok(Applied::with_id(id))
}

pub(crate) async fn delete_elastic_ip(provider: &AwsProvider, id: &str) -> Result<()> {
    // A NAT gateway holds its address until it is `deleted`; EC2 answers
    // `AuthFailure` meanwhile (kubernetes/kops#938).
    delete_when_free(provider, Held::Address(id), || async {
        provider
            .ec2
            .release_address()
            .allocation_id(id)
            .send()
            .await
            .map_err(|error| aws_error("ec2:ReleaseAddress", id, error))
    })
    .await?;
    Ok(())
}

pub(crate) async fn create_nat_gateway(
    provider: &AwsProvider,
    key: &ResourceKey,
    gateway: &NatGatewayAttributes,
    intent: &str,
) -> Result<Applied> {
    let subnet = value(key, "subnet", &gateway.subnet)?;
    let allocation = value(key, "allocation", &gateway.allocation)?;
    let token = client_token(intent, key, &[subnet, allocation]);
    let output = retry(&provider.retry, || async {
        provider
            .ec2
            .create_nat_gateway()
            .subnet_id(subnet)
            .allocation_id(allocation)
            .client_token(&token)
            .tag_specifications(ec2_spec(ResourceType::Natgateway, &gateway.tags))
            .send()
            .await
            .map_err(|error| aws_error("ec2:CreateNatGateway", key.as_str(), error))
    })
    .await?;
    let id = output
        .nat_gateway()
        .and_then(|created| created.nat_gateway_id())
        .ok_or_else(|| {
            ProviderError::other(
                "ec2:CreateNatGateway",
                key.as_str(),
                "no NAT gateway ID in the answer",
            )
        })?
        .to_string();
    // Kept: AWS documents a `pending` gateway as "not ready to process
    // traffic", and routes made to a gateway just created failed
    // (InvalidNatGatewayID.NotFound, kubernetes/kops#944, boto/boto3#779);
    // every provisioner (Terraform's `waitNATGatewayCreated`, CloudFormation,
    // kops before its routes) waits for `available`. Only the private route
    // tables wait on it; nothing else in the plan does (docs/reliability.md,
    // "Waiting for AWS").
    wait_for_nat_state(provider, &id, &[NatGatewayState::Available]).await?;
    Ok(Applied::with_id(&id))
}

async fn wait_for_nat_state(
    provider: &AwsProvider,
    id: &str,
    wanted: &[NatGatewayState],
) -> Result<()> {
    // AWS's usual times: about 90 s to become available, 60 s to delete.
    let expected = if wanted.contains(&NatGatewayState::Deleted) {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(90)
    };
    wait_for(
        "ec2:DescribeNatGateways",
        id,
        expected,
        Duration::from_secs(900),
        || async {
            let output = provider
                .ec2
                .describe_nat_gateways()
                .nat_gateway_ids(id)
                .send()
                .await
                .map_err(|error| aws_error("ec2:DescribeNatGateways", id, error));
            let output = match output {
                Ok(output) => output,
                Err(error) if error.is_missing() => {
                    return Ok(wanted.contains(&NatGatewayState::Deleted).then_some(()));
                }
                Err(error) => return Err(error),
            };
            let state = output
                .nat_gateways()
                .first()
                .and_then(|gateway| gateway.state())
                .cloned();
            match state {
                Some(NatGatewayState::Failed) if !wanted.contains(&NatGatewayState::Failed) => {
                    Err(ProviderError::other(
                        "ec2:CreateNatGateway",
                        id,
                        format!(
                            "the NAT gateway failed: {}",
                            output
                                .nat_gateways()
                                .first()
                                .and_then(|gateway| gateway.failure_message())
                                .unwrap_or("no reason given")
                        ),
                    ))
                }
                Some(state) if wanted.contains(&state) => Ok(Some(())),
                None if wanted.contains(&NatGatewayState::Deleted) => Ok(Some(())),
                _ => Ok(None),
            }
        },
    )
    .await
}

pub(crate) async fn delete_nat_gateway(provider: &AwsProvider, id: &str) -> Result<()> {
    retry(&provider.retry, || async {
        provider
            .ec2
            .delete_nat_gateway()
            .nat_gateway_id(id)
            .send()
            .await
            .map_err(|error| aws_error("ec2:DeleteNatGateway", id, error))
    })
    .await?;
    // Kept: the address, the subnet and the internet gateway's detach can go
    // only once the gateway is `deleted` (see `holders`); waiting here lets
    // them start right then instead of each polling with refused calls.
    wait_for_nat_state(provider, id, &[NatGatewayState::Deleted]).await
}

async fn create_route(
    provider: &AwsProvider,
    table: &str,
    destination: &str,
    target: &RouteTarget,
    key: &ResourceKey,
    replace: bool,
) -> Result<()> {
    let (gateway, nat) = match target {
        RouteTarget::InternetGateway(id) => (Some(value(key, "routes", id)?), None),
        RouteTarget::NatGateway(id) => (None, Some(value(key, "routes", id)?)),
    };
    if replace {
        retry(&provider.retry, || async {
            provider
                .ec2
                .replace_route()
                .route_table_id(table)
                .destination_cidr_block(destination)
                .set_gateway_id(gateway.map(str::to_string))
                .set_nat_gateway_id(nat.map(str::to_string))
                .send()
                .await
                .map_err(|error| aws_error("ec2:ReplaceRoute", table, error))
        })
        .await?;
    } else {
        retry(&provider.retry, || async {
            provider
                .ec2
                .create_route()
                .route_table_id(table)
                .destination_cidr_block(destination)
                .set_gateway_id(gateway.map(str::to_string))
                .set_nat_gateway_id(nat.map(str::to_string))
                .send()
                .await
                .map_err(|error| aws_error("ec2:CreateRoute", table, error))
        })
        .await?;
    }
    Ok(())
}

async fn associate(provider: &AwsProvider, table: &str, subnet: &str) -> Result<()> {
    retry(&provider.retry, || async {
        provider
            .ec2
            .associate_route_table()
            .route_table_id(table)
            .subnet_id(subnet)
            .send()
            .await
            .map_err(|error| aws_error("ec2:AssociateRouteTable", table, error))
    })
    .await?;
    Ok(())
}

pub(crate) async fn create_route_table(
    provider: &AwsProvider,
    key: &ResourceKey,
    table: &RouteTableAttributes,
    intent: &str,
) -> Result<Applied> {
    let vpc = value(key, "vpc", &table.vpc)?;
    let token = client_token(intent, key, &[vpc]);
    let output = retry(&provider.retry, || async {
        provider
            .ec2
            .create_route_table()
            .vpc_id(vpc)
            .client_token(&token)
            .tag_specifications(ec2_spec(ResourceType::RouteTable, &table.tags))
            .send()
            .await
            .map_err(|error| aws_error("ec2:CreateRouteTable", key.as_str(), error))
    })
    .await?;
    let id = output
        .route_table()
        .and_then(|created| created.route_table_id())
        .ok_or_else(|| {
            ProviderError::other(
                "ec2:CreateRouteTable",
                key.as_str(),
                "no route table ID in the answer",
            )
        })?
        .to_string();
    // The routes and the subnet associations are independent of each
    // other: all at once.
    let subnets = values(key, "subnets", &table.subnets)?;
    let routes =
        futures::future::try_join_all(table.routes.iter().map(|route| {
            create_route(provider, &id, &route.destination, &route.target, key, false)
        }));
    let associations = futures::future::try_join_all(
        subnets
            .iter()
            .map(|subnet| associate(provider, &id, subnet)),
    );
    tokio::try_join!(routes, associations)?;
    Ok(Applied::with_id(&id))
}

pub(crate) async fn update_route_table(
    provider: &AwsProvider,
    key: &ResourceKey,
    id: &str,
    before: &RouteTableAttributes,
    after: &RouteTableAttributes,
) -> Result<Applied> {
    for route in &after.routes {
        match before
            .routes
            .iter()
            .find(|existing| existing.destination == route.destination)
        {
            Some(existing) if existing == route => {}
            Some(_) => {
                create_route(provider, id, &route.destination, &route.target, key, true).await?
            }
            None => {
                create_route(provider, id, &route.destination, &route.target, key, false).await?
            }
        }
    }
    for route in &before.routes {
        if !after
            .routes
            .iter()
            .any(|wanted| wanted.destination == route.destination)
        {
            retry(&provider.retry, || async {
                provider
                    .ec2
                    .delete_route()
                    .route_table_id(id)
                    .destination_cidr_block(&route.destination)
                    .send()
                    .await
                    .map_err(|error| aws_error("ec2:DeleteRoute", id, error))
            })
            .await?;
        }
    }
    let wanted = values(key, "subnets", &after.subnets)?;
    let current: Vec<String> = before
        .subnets
        .iter()
        .filter_map(|subnet| subnet.value().map(str::to_string))
        .collect();
    for subnet in wanted.iter().filter(|subnet| !current.contains(subnet)) {
        associate(provider, id, subnet).await?;
    }
    let stale: Vec<&String> = current
        .iter()
        .filter(|subnet| !wanted.contains(subnet))
        .collect();
    if !stale.is_empty() {
        for association in associations(provider, id).await? {
            if stale
                .iter()
                .any(|subnet| Some(subnet.as_str()) == association.1.as_deref())
            {
                disassociate(provider, &association.0).await?;
            }
        }
    }
    update_tags(provider, id, &before.tags, &after.tags).await
}

/// The (association ID, subnet) pairs of a route table.
async fn associations(provider: &AwsProvider, id: &str) -> Result<Vec<(String, Option<String>)>> {
    let output = provider
        .ec2
        .describe_route_tables()
        .route_table_ids(id)
        .send()
        .await
        .map_err(|error| aws_error("ec2:DescribeRouteTables", id, error))?;
    Ok(output
        .route_tables()
        .iter()
        .flat_map(|table| table.associations())
        .filter(|association| !association.main().unwrap_or(false))
        .filter_map(|association| {
            Some((
                association.route_table_association_id()?.to_string(),
                association.subnet_id().map(str::to_string),
            ))
        })
        .collect())
}

async fn disassociate(provider: &AwsProvider, association: &str) -> Result<()> {
    retry(&provider.retry, || async {
        provider
            .ec2
            .disassociate_route_table()
            .association_id(association)
            .send()
            .await
            .map_err(|error| aws_error("ec2:DisassociateRouteTable", association, error))
    })
    .await?;
    Ok(())
}

pub(crate) async fn delete_route_table(provider: &AwsProvider, id: &str) -> Result<()> {
    match associations(provider, id).await {
        Ok(found) => {
            futures::future::try_join_all(
                found
                    .iter()
                    .map(|(association, _)| disassociate(provider, association)),
            )
            .await?;
        }
        Err(error) if error.is_missing() => return Ok(()),
        Err(error) => return Err(error),
    }
    retry(&provider.retry, || async {
        provider
            .ec2
            .delete_route_table()
            .route_table_id(id)
            .send()
            .await
            .map_err(|error| aws_error("ec2:DeleteRouteTable", id, error))
    })
    .await?;
    Ok(())
}
