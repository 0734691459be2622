//! Why a plan could not be made. Each variant names what to fix.

/// A failure to build the desired model or the plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Nodes read their secrets from the state store, so it must be in S3.
    #[error("nodes read their bootstrap secrets from the state store, so a cluster in AWS needs an s3:// state store (this one is a local folder): create the cluster in a bucket with --state s3://BUCKET/PREFIX or SKIFF_STATE_STORE")]
    StateStoreNotS3,

    /// An instance group's image did not resolve.
    #[error("instancegroup/{group}: spec.image: no {architecture} AMI matches {image:?} in this region (ec2:DescribeImages; check the owner and name pattern, or use an AMI ID)")]
    ImageNotResolved {
        /// The group.
        group: String,
        /// Its image, as looked up (a default pattern for the group's
        /// architecture).
        image: String,
        /// The architecture of the group's machine type.
        architecture: skiff_api::Architecture,
    },

    /// A machine type EC2 does not know.
    #[error("instancegroup/{group}: {field}: EC2 has no instance type {machine_type:?} in this region (ec2:DescribeInstanceTypes); use a type `aws ec2 describe-instance-types` lists")]
    UnknownMachineType {
        /// The group.
        group: String,
        /// The field that names the type.
        field: String,
        /// The type.
        machine_type: String,
    },

    /// A machine type of an architecture skiff builds no nodes for.
    #[error("instancegroup/{group}: {field}: {machine_type} runs neither x86_64 nor arm64 (ec2:DescribeInstanceTypes); skiff builds nodes for those two only: choose another type")]
    UnsupportedArchitecture {
        /// The group.
        group: String,
        /// The field that names the type.
        field: String,
        /// The type.
        machine_type: String,
    },

    /// A `mixedInstancesPolicy` with a type of another architecture than
    /// the group's machine type: the group has one image.
    #[error("instancegroup/{group}: {field}: {machine_type} is {other}, but spec.machineType {group_machine_type} is {architecture} (ec2:DescribeInstanceTypes); a group runs one image, so list only {architecture} types here, or put the {other} ones in a group of their own")]
    MixedArchitectures {
        /// The group.
        group: String,
        /// `spec.mixedInstancesPolicy.instanceTypes[N]`.
        field: String,
        /// The type of the other architecture.
        machine_type: String,
        /// Its architectures.
        other: String,
        /// The group's machine type.
        group_machine_type: String,
        /// Its architecture.
        architecture: skiff_api::Architecture,
    },

    /// An AMI built for another architecture than the machine type's.
    #[error("instancegroup/{group}: spec.image: {image} is built for {image_architecture} (ec2:DescribeImages), but spec.machineType {machine_type} is {architecture} (ec2:DescribeInstanceTypes); use an {architecture} image, or a machine type for {image_architecture}")]
    ImageArchitecture {
        /// The group.
        group: String,
        /// The AMI ID.
        image: String,
        /// What the image is built for (`unknown` if EC2 did not say).
        image_architecture: String,
        /// The group's machine type.
        machine_type: String,
        /// Its architecture.
        architecture: skiff_api::Architecture,
    },

    /// No hosted zone for the API name.
    #[error("no Route53 hosted zone found for cluster {cluster}{}: create the zone, set spec.dnsZone (or --dns-zone) to an existing one, or use a gossip name ending in .k8s.local", zone.as_ref().map(|zone| format!(" (spec.dnsZone: {zone})")).unwrap_or_default())]
    HostedZoneMissing {
        /// The cluster.
        cluster: String,
        /// The zone the spec names, if any.
        zone: Option<String>,
    },

    /// The shared VPC cannot hold the private hosted zone that answers
    /// `api.<cluster>` with the internal load balancer.
    #[error("spec.networkID: VPC {vpc} has {attribute} turned off, and the private hosted zone api.{cluster} (how the nodes of an internet-facing API load balancer reach the API inside the VPC) answers only in a VPC with enableDnsSupport and enableDnsHostnames: turn it on (aws ec2 modify-vpc-attribute --vpc-id {vpc} --{flag}), or set spec.api.loadBalancer.type: Internal")]
    SharedVpcDns {
        /// The cluster.
        cluster: String,
        /// The shared VPC.
        vpc: String,
        /// `enableDnsSupport` or `enableDnsHostnames`.
        attribute: &'static str,
        /// The AWS CLI flag that turns it on.
        flag: &'static str,
    },

    /// An external etcd member's fixed address cannot be chosen.
    #[error("instancegroup/{group}: spec.subnets: no fixed address for the etcd member: {problem}; put the member in a subnet with a known, larger range")]
    EtcdMemberAddress {
        /// The `Etcd` group.
        group: String,
        /// Why.
        problem: String,
    },

    /// A shared subnet does not exist.
    #[error("spec.subnets: subnet {subnet:?} names the existing subnet {id}, which does not exist in this region (ec2:DescribeSubnets found nothing)")]
    SharedSubnetMissing {
        /// The spec's subnet name.
        subnet: String,
        /// The missing ID.
        id: String,
    },

    /// The shared VPC does not exist.
    #[error(
        "spec.networkID: VPC {id} does not exist in this region (ec2:DescribeVpcs found nothing)"
    )]
    SharedVpcMissing {
        /// The VPC ID.
        id: String,
    },

    /// A shared VPC without an internet gateway, but public subnets to route.
    #[error("spec.networkID: VPC {vpc} has no internet gateway, which the cluster's public and utility subnets need; attach one (skiff never modifies a shared VPC)")]
    NoInternetGateway {
        /// The VPC.
        vpc: String,
    },

    /// A private subnet's zone has no utility subnet for the NAT gateway.
    #[error(
        "spec.subnets: zone {zone} has private subnets but no Utility subnet for its NAT gateway"
    )]
    NoUtilitySubnet {
        /// The zone.
        zone: String,
    },

    /// No subnet of the kind the API load balancer needs.
    #[error(
        "spec.subnets: the API load balancer needs {subnet_type} subnets and the cluster has none"
    )]
    NoLoadBalancerSubnet {
        /// The subnet type.
        subnet_type: String,
    },

    /// An instance group refers to an unknown subnet.
    #[error("an instance group refers to subnet {subnet:?}, which is not in spec.subnets")]
    UnknownSubnet {
        /// The name.
        subnet: String,
    },

    /// The user-data of a group could not be rendered.
    #[error("instancegroup/{group}: rendering the node bootstrap failed")]
    Template {
        /// The group.
        group: String,
        /// The cause.
        #[source]
        source: skiff_templates::TemplateError,
    },

    /// The addon manifests could not be rendered (`spec.addons`); the
    /// cause names the field.
    #[error("spec.addons: rendering the addon manifests failed")]
    Addons {
        /// The cause.
        #[source]
        source: skiff_templates::TemplateError,
    },

    /// The resources refer to each other in a cycle (a bug in skiff).
    #[error("the desired resources form a dependency cycle through {keys} (this is a bug in skiff; please report it)")]
    Cycle {
        /// Keys on the cycle.
        keys: String,
    },

    /// The node termination handler is on, but the AWS account its queue
    /// policy must name is unknown.
    #[error("spec.addons.nodeTerminationHandler: the policy of the queue sqs-queue/node-termination admits only this AWS account's EventBridge rules, but the account is unknown (sts:GetCallerIdentity gave none): check that the AWS credentials skiff uses are valid and may call sts:GetCallerIdentity (`aws sts get-caller-identity`), or set spec.addons.nodeTerminationHandler.enabled: false")]
    AccountUnknown,

    /// The model cannot be written as Terraform.
    #[error("cannot write cluster as Terraform: {message}")]
    Terraform {
        /// Why.
        message: String,
    },
}
