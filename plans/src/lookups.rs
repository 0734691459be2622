//! Facts the planner needs from AWS that the spec only names: the AMI an
//! `OWNER/NAME-PATTERN` resolves to, the hosted zone, shared VPCs and
//! subnets, where the state store is. The provider looks them up (read-only,
//! before anything changes) and the planner takes them as plain data, so
//! planning itself does no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use skiff_api::Architecture;

/// An image an instance group's `spec.image` resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedImage {
    /// The AMI ID.
    pub id: String,
    /// The image's name.
    pub name: String,
    /// The root device name, where the root volume mapping goes.
    pub root_device_name: String,
    /// What the image is built for (`None`: an architecture skiff does
    /// not build for, or EC2 did not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<Architecture>,
}

/// A Route53 hosted zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostedZone {
    /// The zone ID without the `/hostedzone/` prefix.
    pub id: String,
    /// The zone's name, without the final dot.
    pub name: String,
    /// Whether the zone is private.
    pub private: bool,
}

/// A VPC that exists already and that skiff must not modify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedVpc {
    /// The VPC ID.
    pub id: String,
    /// Its primary range.
    pub cidr: String,
    /// Its internet gateway, if it has one.
    pub internet_gateway: Option<String>,
    /// Whether the VPC resolves DNS (`enableDnsSupport`): a private hosted
    /// zone answers only in a VPC that does.
    #[serde(default = "yes")]
    pub dns_support: bool,
    /// Whether the VPC gives instances DNS host names
    /// (`enableDnsHostnames`), which private hosted zones also need.
    #[serde(default = "yes")]
    pub dns_hostnames: bool,
}

fn yes() -> bool {
    true
}

/// Which of a cluster's API load balancers exist already, by name. Looked
/// up only for a gossip cluster with an internet-facing API load balancer,
/// whose nodes name a load balancer directly: whether they use an internal
/// one depends on how the cluster was built (see
/// `desired::load_balancer::api_endpoint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ExistingApiLoadBalancers {
    /// The API load balancer (`names::load_balancer`).
    pub public: bool,
    /// The internal one beside it (`names::internal_load_balancer`).
    pub internal: bool,
}

/// A subnet that exists already and that skiff must not modify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedSubnet {
    /// The subnet ID.
    pub id: String,
    /// Its zone.
    pub zone: String,
    /// Its range.
    pub cidr: String,
    /// Its VPC.
    pub vpc: String,
}

/// Where the state store is, for the nodes' IAM policies and bootstrap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateStoreRef {
    /// The bucket.
    pub bucket: String,
    /// The store's key prefix (no slashes at either end; may be empty).
    pub prefix: String,
    /// The bucket's region.
    pub region: String,
    /// A custom S3 endpoint, if any.
    pub endpoint: Option<String>,
    /// The KMS key of the bucket's default encryption (`None`: SSE-S3 or
    /// the AWS managed key), for the node roles and the backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
}

impl StateStoreRef {
    /// The key prefix of a cluster's objects, without a trailing slash.
    pub fn cluster_prefix(&self, cluster: &str) -> String {
        if self.prefix.is_empty() {
            cluster.to_string()
        } else {
            format!("{}/{cluster}", self.prefix)
        }
    }
}

/// Everything looked up for one plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Lookups {
    /// The AWS partition (`aws`, `aws-cn`, `aws-us-gov`).
    pub partition: String,
    /// Each instance group's image, by group name: its AMI ID, or its
    /// pattern resolved for the architecture of its machine type. A group
    /// whose image did not resolve is missing.
    pub images: BTreeMap<String, ResolvedImage>,
    /// The architectures each machine type the groups name supports (EC2
    /// `DescribeInstanceTypes`), those skiff builds for; a type EC2 does
    /// not know is missing.
    #[serde(default)]
    pub machine_types: BTreeMap<String, Vec<Architecture>>,
    /// The hosted zone for `api.<cluster>`; `None` for gossip clusters.
    pub hosted_zone: Option<HostedZone>,
    /// The shared VPC, when `spec.networkID` is set.
    pub shared_vpc: Option<SharedVpc>,
    /// Shared subnets by their spec name.
    pub shared_subnets: BTreeMap<String, SharedSubnet>,
    /// The state store, when it is in S3.
    pub state_store: Option<StateStoreRef>,
    /// Which API load balancers exist already (gossip clusters with an
    /// internet-facing API load balancer only; else none).
    #[serde(default)]
    pub api_load_balancers: ExistingApiLoadBalancers,
    /// The AWS account the plan is for (STS `GetCallerIdentity`), which the
    /// node termination queue's policy names (`None`: not looked up, e.g.
    /// with the handler off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

impl Lookups {
    /// What AWS would answer for `bundle` in an ordinary account: every
    /// group's image resolved to one amd64 Ubuntu AMI, every machine type
    /// amd64, the public
    /// hosted zone `example.com` (none for a gossip cluster), no shared
    /// network, an S3 state store, the account `123456789012` (AWS's
    /// documentation account, and the local endpoint's). For tests, fuzzing and benchmarks, which
    /// plan without AWS.
    pub fn stand_in(bundle: &skiff_api::ClusterBundle) -> Lookups {
        let images = bundle
            .instance_groups
            .iter()
            .filter(|group| group.spec.image.is_some())
            .map(|group| {
                (
                    group.name().to_string(),
                    ResolvedImage {
                        id: "ami-0123456789abcdef0".into(),
                        name: "ubuntu-noble".into(),
                        root_device_name: "/dev/sda1".into(),
                        architecture: Some(Architecture::Amd64),
                    },
                )
            })
            .collect();
        let machine_types = bundle
            .instance_groups
            .iter()
            .flat_map(|group| group.spec.machine_types())
            .map(|machine_type| (machine_type.to_string(), vec![Architecture::Amd64]))
            .collect();
        Lookups {
            partition: "aws".into(),
            images,
            machine_types,
            hosted_zone: (!bundle.cluster.is_gossip()).then(|| HostedZone {
                id: "Z123".into(),
                name: "example.com".into(),
                private: false,
            }),
            shared_vpc: None,
            shared_subnets: BTreeMap::new(),
            state_store: Some(StateStoreRef {
                bucket: "state".into(),
                prefix: "team".into(),
                region: "us-east-1".into(),
                endpoint: None,
                kms_key: None,
            }),
            api_load_balancers: ExistingApiLoadBalancers::default(),
            account_id: Some("123456789012".into()),
        }
    }
}
