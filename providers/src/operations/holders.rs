//! Deletes that AWS refuses while something still holds the resource, and
//! the wait for that something to go.
//!
//! AWS lets go of a resource some time after the API said what held it was
//! deleted: a NAT gateway is `deleting` for about a minute and keeps its
//! elastic IP, its network interface in its subnet and the VPC's internet
//! gateway (`AuthFailure` on ReleaseAddress, `DependencyViolation` on
//! DeleteSubnet and DetachInternetGateway: kubernetes/kops#938, #1553); a
//! deleted load balancer's network interfaces stay in its subnets and
//! security groups for minutes ("resource sg-… has a dependent object",
//! kubernetes/kops#3245); a terminating instance holds its interface until it
//! is `terminated`. kops' `delete cluster` and Terraform's destroy retry such
//! deletes until they pass; so does skiff, within a budget
//! ([`crate::retry::RetryPolicy::dependencies`], 10 minutes, or
//! `SKIFF_DEPENDENCY_TIMEOUT`), polling as [`super::poll_interval`] says
//! (a share of the time already waited), and when the budget runs out the
//! error names what still holds the resource, as described by AWS at that
//! moment: the network interfaces in the subnet or security group (with
//! their descriptions: `ELB net/…`, the instance they are attached to), the
//! NAT gateways using the subnet, the address or the VPC.

use std::future::Future;
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, NatGatewayState, NetworkInterface};

use super::poll_interval;
use crate::error::{aws_error, ErrorClass, ProviderError, Result};
use crate::retry::{retry, RetryPolicy};
use crate::AwsProvider;

/// The environment variable that overrides how long a delete waits for what
/// holds its resource (humantime: `30s`, `2m`); default 10 minutes.
pub const DEPENDENCY_TIMEOUT_ENV: &str = "SKIFF_DEPENDENCY_TIMEOUT";

/// How long AWS usually takes to let go (a NAT gateway's delete, a
/// terminating instance): the poll schedule's expected duration.
const USUAL_RELEASE: Duration = Duration::from_secs(60);

/// The dependency budget from `SKIFF_DEPENDENCY_TIMEOUT`, if set and valid.
pub fn dependency_timeout_from_env() -> Option<Duration> {
    let value = std::env::var(DEPENDENCY_TIMEOUT_ENV).ok()?;
    match humantime::parse_duration(value.trim()) {
        Ok(duration) => Some(duration),
        Err(error) => {
            tracing::warn!("ignoring {DEPENDENCY_TIMEOUT_ENV}={value:?}: {error}");
            None
        }
    }
}

/// What a refused delete may be waiting for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Held<'a> {
    /// A subnet: network interfaces in it, NAT gateways in it.
    Subnet(&'a str),
    /// A security group: network interfaces in it.
    SecurityGroup(&'a str),
    /// An elastic IP (allocation ID): the NAT gateway or interface using it.
    Address(&'a str),
    /// The internet gateway of a VPC: the NAT gateways mapping public
    /// addresses in it.
    PublicAddressesOf(&'a str),
    /// A VPC: the network interfaces and subnets still in it.
    Vpc(&'a str),
}

/// Runs the delete `call` until it passes; while AWS refuses it because
/// something still holds the resource, waits for that within the budget,
/// then fails naming what still holds it. Other errors are retried as
/// [`retry`] does (throttling, eventual consistency) or returned.
pub(crate) async fn delete_when_free<T, F, Fut>(
    provider: &AwsProvider,
    held: Held<'_>,
    mut call: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    // Dependency violations are waited for here, not by `retry`.
    let transient_only = RetryPolicy {
        dependencies: Duration::ZERO,
        ..provider.retry
    };
    let budget = provider.retry.dependencies;
    let started = tokio::time::Instant::now();
    loop {
        let error = match retry(&transient_only, &mut call).await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if !is_held(provider, held, &error).await {
            return Err(error);
        }
        let elapsed = started.elapsed();
        let pause = poll_interval(elapsed, USUAL_RELEASE);
        if elapsed + pause > budget {
            let holders = describe_holders(provider, held).await;
            return Err(ProviderError {
                message: format!(
                    "{}; still held after {}s by {holders} (the wait is bounded by {DEPENDENCY_TIMEOUT_ENV}, \
                     default 10m)",
                    error.message,
                    elapsed.as_secs()
                ),
                ..error
            });
        }
        tracing::debug!(
            "{} for {}: {}; waiting {pause:?} for what holds it",
            error.operation,
            error.resource,
            error.message
        );
        tokio::time::sleep(pause).await;
    }
}

/// Whether `error` means the resource is held rather than a real failure.
async fn is_held(provider: &AwsProvider, held: Held<'_>, error: &ProviderError) -> bool {
    if error.class == ErrorClass::DependencyViolation {
        return true;
    }
    let Held::Address(allocation) = held else {
        return false;
    };
    match error.code.as_deref() {
        // "You must use DisassociateAddress ... before you can release it"
        // (EC2 API reference, ReleaseAddress).
        Some("InvalidIPAddress.InUse") => true,
        // What EC2 answers for an address a NAT gateway holds, even while it
        // is deleting (kubernetes/kops#938, #1604): held only if a NAT
        // gateway does hold it, else a real permission error.
        Some("AuthFailure") => matches!(
            nat_gateways_holding(provider, allocation).await,
            Ok(holding) if !holding.is_empty()
        ),
        _ => false,
    }
}

/// NAT gateways not yet `deleted` (or `failed`) that use `allocation`.
async fn nat_gateways_holding(provider: &AwsProvider, allocation: &str) -> Result<Vec<String>> {
    let output = provider
        .ec2
        .describe_nat_gateways()
        .send()
        .await
        .map_err(|error| aws_error("ec2:DescribeNatGateways", allocation, error))?;
    Ok(output
        .nat_gateways()
        .iter()
        .filter(|gateway| live(gateway.state()))
        .filter(|gateway| {
            gateway
                .nat_gateway_addresses()
                .iter()
                .any(|address| address.allocation_id() == Some(allocation))
        })
        .map(describe_nat)
        .collect())
}

fn live(state: Option<&NatGatewayState>) -> bool {
    !matches!(
        state,
        Some(NatGatewayState::Deleted) | Some(NatGatewayState::Failed)
    )
}

fn describe_nat(gateway: &aws_sdk_ec2::types::NatGateway) -> String {
    format!(
        "NAT gateway {} ({})",
        gateway.nat_gateway_id().unwrap_or("?"),
        gateway.state().map(|state| state.as_str()).unwrap_or("?")
    )
}

fn describe_interface(interface: &NetworkInterface) -> String {
    let mut facts = Vec::new();
    if let Some(description) = interface.description().filter(|text| !text.is_empty()) {
        facts.push(format!("\"{description}\""));
    }
    if let Some(instance) = interface
        .attachment()
        .and_then(|attachment| attachment.instance_id())
    {
        facts.push(format!("attached to {instance}"));
    }
    if interface.requester_managed() == Some(true) {
        facts.push(format!(
            "managed by {}",
            interface.requester_id().unwrap_or("AWS")
        ));
    }
    if let Some(status) = interface.status() {
        facts.push(status.as_str().to_string());
    }
    format!(
        "network interface {} ({})",
        interface.network_interface_id().unwrap_or("?"),
        facts.join(", ")
    )
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

async fn interfaces(provider: &AwsProvider, name: &str, value: &str) -> Result<Vec<String>> {
    let output = provider
        .ec2
        .describe_network_interfaces()
        .filters(filter(name, value))
        .send()
        .await
        .map_err(|error| aws_error("ec2:DescribeNetworkInterfaces", value, error))?;
    Ok(output
        .network_interfaces()
        .iter()
        .map(describe_interface)
        .collect())
}

async fn nat_gateways(provider: &AwsProvider, name: &str, value: &str) -> Result<Vec<String>> {
    let output = provider
        .ec2
        .describe_nat_gateways()
        .filter(filter(name, value))
        .send()
        .await
        .map_err(|error| aws_error("ec2:DescribeNatGateways", value, error))?;
    Ok(output
        .nat_gateways()
        .iter()
        .filter(|gateway| live(gateway.state()))
        .map(describe_nat)
        .collect())
}

async fn address_association(provider: &AwsProvider, allocation: &str) -> Result<Vec<String>> {
    let output = provider
        .ec2
        .describe_addresses()
        .allocation_ids(allocation)
        .send()
        .await
        .map_err(|error| aws_error("ec2:DescribeAddresses", allocation, error))?;
    Ok(output
        .addresses()
        .iter()
        .filter_map(|address| {
            address
                .network_interface_id()
                .map(|interface| format!("network interface {interface}"))
                .or_else(|| {
                    address
                        .instance_id()
                        .map(|instance| format!("instance {instance}"))
                })
        })
        .collect())
}

async fn subnets(provider: &AwsProvider, vpc: &str) -> Result<Vec<String>> {
    let output = provider
        .ec2
        .describe_subnets()
        .filters(filter("vpc-id", vpc))
        .send()
        .await
        .map_err(|error| aws_error("ec2:DescribeSubnets", vpc, error))?;
    Ok(output
        .subnets()
        .iter()
        .map(|subnet| format!("subnet {}", subnet.subnet_id().unwrap_or("?")))
        .collect())
}

/// What holds the resource now, in words, as AWS describes it.
pub(crate) async fn describe_holders(provider: &AwsProvider, held: Held<'_>) -> String {
    let found: Vec<Result<Vec<String>>> = match held {
        Held::Subnet(subnet) => vec![
            nat_gateways(provider, "subnet-id", subnet).await,
            interfaces(provider, "subnet-id", subnet).await,
        ],
        Held::SecurityGroup(group) => vec![interfaces(provider, "group-id", group).await],
        Held::Address(allocation) => vec![
            nat_gateways_holding(provider, allocation).await,
            address_association(provider, allocation).await,
        ],
        Held::PublicAddressesOf(vpc) => vec![nat_gateways(provider, "vpc-id", vpc).await],
        Held::Vpc(vpc) => vec![
            subnets(provider, vpc).await,
            interfaces(provider, "vpc-id", vpc).await,
        ],
    };
    let mut holders = Vec::new();
    for result in found {
        match result {
            Ok(items) => holders.extend(items),
            Err(error) => holders.push(format!("(could not describe: {})", error.message)),
        }
    }
    holders.dedup();
    if holders.is_empty() {
        "nothing AWS describes any more (try again)".to_string()
    } else {
        holders.join(", ")
    }
}
