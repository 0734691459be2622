//! The AWS resources skiff manages, as typed data.
//!
//! A resource has a stable logical [`ResourceKey`] (`subnet/us-east-1a`),
//! a [`ResourceKind`] and [`Attributes`]: one struct per kind holding every
//! field skiff sets. Fields that point at another resource hold an [`Id`]:
//! in the desired model a reference (`vpc#id`), in what exists a value
//! (`vpc-0abc...`). The same types describe both, so the diff compares like
//! with like, field by field.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The stable logical name of a resource within its cluster, e.g.
/// `vpc`, `subnet/us-east-1a`, `launch-template/nodes-us-east-1a`. Carried
/// on the resource as the `skiff.dev/resource` tag.
///
/// A key is always well formed: a [`ResourceKind::key_prefix`], optionally
/// followed by `/` and a non-empty name, at most [`ResourceKey::MAX_LENGTH`]
/// characters, without control characters. [`ResourceKey::new`] builds one
/// from the planner's own names; [`ResourceKey::parse`] checks text from
/// elsewhere (a tag read from AWS, a plan or state file), and deserializing
/// goes through it, so a file with a bad key is refused when read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct ResourceKey(String);

/// Why a text is not a [`ResourceKey`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidResourceKey {
    /// The text is empty.
    #[error("a resource key must not be empty")]
    Empty,
    /// Longer than an AWS tag value may be.
    #[error(
        "resource key {start:?}... is {length} characters long; a key is at most {} characters",
        ResourceKey::MAX_LENGTH
    )]
    TooLong {
        /// The first characters of the key.
        start: String,
        /// Its length in characters.
        length: usize,
    },
    /// The text holds a control character (a newline, a NUL, an escape...).
    #[error("resource key {key:?} holds a control character")]
    ControlCharacter {
        /// The key given.
        key: String,
    },
    /// The part before the first `/` is no kind's prefix.
    #[error(
        "resource key {key:?} does not start with a resource kind (vpc, subnet/NAME, launch-template/NAME, ...)"
    )]
    UnknownKind {
        /// The key given.
        key: String,
    },
    /// A kind prefix and `/` with nothing after it.
    #[error("resource key {key:?} has an empty name after the {kind}/ prefix")]
    EmptyName {
        /// The key given.
        key: String,
        /// The kind its prefix names.
        kind: ResourceKind,
    },
}

impl ResourceKey {
    /// The longest key, in characters: the limit of an AWS tag value, since
    /// the key is carried as the `skiff.dev/resource` tag.
    pub const MAX_LENGTH: usize = 256;

    /// A key from its kind prefix and a name: `subnet/us-east-1a`, or the
    /// bare prefix (`vpc`) when the name is empty. The name comes from the
    /// planner or a validated spec (group, zone and subnet names, fixed
    /// words), which keeps it within the rules [`ResourceKey::parse`] checks.
    pub fn new(kind: ResourceKind, name: &str) -> ResourceKey {
        let key = if name.is_empty() {
            ResourceKey(kind.key_prefix().to_string())
        } else {
            ResourceKey(format!("{}/{name}", kind.key_prefix()))
        };
        debug_assert!(
            ResourceKey::check(&key.0).is_ok(),
            "resource name {name:?} makes an invalid key"
        );
        key
    }

    /// Checks text from outside the planner: a tag read from AWS, a plan or
    /// state file.
    pub fn parse(text: &str) -> Result<ResourceKey, InvalidResourceKey> {
        ResourceKey::check(text)?;
        Ok(ResourceKey(text.to_string()))
    }

    fn check(text: &str) -> Result<(), InvalidResourceKey> {
        if text.is_empty() {
            return Err(InvalidResourceKey::Empty);
        }
        let length = text.chars().count();
        if length > ResourceKey::MAX_LENGTH {
            return Err(InvalidResourceKey::TooLong {
                start: text.chars().take(40).collect(),
                length,
            });
        }
        if text.chars().any(char::is_control) {
            return Err(InvalidResourceKey::ControlCharacter {
                key: text.to_string(),
            });
        }
        let (prefix, name) = match text.split_once('/') {
            Some((prefix, name)) => (prefix, Some(name)),
            None => (text, None),
        };
        let kind = ResourceKind::ALL
            .into_iter()
            .find(|kind| kind.key_prefix() == prefix)
            .ok_or_else(|| InvalidResourceKey::UnknownKind {
                key: text.to_string(),
            })?;
        if name == Some("") {
            return Err(InvalidResourceKey::EmptyName {
                key: text.to_string(),
                kind,
            });
        }
        Ok(())
    }

    /// The key text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the kind prefix (`us-east-1a` of `subnet/us-east-1a`).
    pub fn name(&self) -> &str {
        self.0
            .split_once('/')
            .map(|(_, name)| name)
            .unwrap_or_default()
    }

    /// A reference to one of this resource's outputs.
    pub fn output(&self, output: Output) -> Id {
        Id::Ref(Reference {
            key: self.clone(),
            output,
        })
    }
}

impl TryFrom<String> for ResourceKey {
    type Error = InvalidResourceKey;

    fn try_from(text: String) -> Result<ResourceKey, InvalidResourceKey> {
        ResourceKey::check(&text)?;
        Ok(ResourceKey(text))
    }
}

impl std::str::FromStr for ResourceKey {
    type Err = InvalidResourceKey;

    fn from_str(text: &str) -> Result<ResourceKey, InvalidResourceKey> {
        ResourceKey::parse(text)
    }
}

impl From<ResourceKey> for String {
    fn from(key: ResourceKey) -> String {
        key.0
    }
}

impl Serialize for ResourceKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// What kind of AWS resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceKind {
    /// EC2 VPC.
    Vpc,
    /// EC2 subnet.
    Subnet,
    /// EC2 internet gateway, attached to the VPC.
    InternetGateway,
    /// EC2 Elastic IP for a NAT gateway.
    ElasticIp,
    /// EC2 NAT gateway.
    NatGateway,
    /// EC2 route table with its routes and subnet associations.
    RouteTable,
    /// EC2 security group (without rules, so groups can refer to each other).
    SecurityGroup,
    /// The ingress rules of one security group.
    SecurityGroupRules,
    /// IAM role with its inline policy.
    IamRole,
    /// IAM instance profile.
    InstanceProfile,
    /// EC2 key pair.
    KeyPair,
    /// EC2 launch template (changes are new versions).
    LaunchTemplate,
    /// Auto scaling group.
    AutoScalingGroup,
    /// Network load balancer.
    LoadBalancer,
    /// Load balancer target group.
    TargetGroup,
    /// Load balancer listener.
    Listener,
    /// Route53 record.
    DnsRecord,
    /// Route53 private hosted zone (the in-VPC answer for `api.<cluster>`).
    HostedZone,
    /// An auto scaling group's termination lifecycle hook (the node
    /// termination handler drains the instance's node before it goes).
    LifecycleHook,
    /// The node termination handler's SQS queue, with its queue policy.
    SqsQueue,
    /// An EventBridge rule sending events to the node termination
    /// handler's queue, with that one target.
    EventRule,
    /// A cluster addon's manifest in the state store (`<cluster>/addons/`),
    /// which the control-plane nodes apply (`spec.addons`).
    Addon,
}

impl ResourceKind {
    /// The key prefix of the kind.
    pub fn key_prefix(self) -> &'static str {
        match self {
            ResourceKind::Vpc => "vpc",
            ResourceKind::Subnet => "subnet",
            ResourceKind::InternetGateway => "internet-gateway",
            ResourceKind::ElasticIp => "elastic-ip",
            ResourceKind::NatGateway => "nat-gateway",
            ResourceKind::RouteTable => "route-table",
            ResourceKind::SecurityGroup => "security-group",
            ResourceKind::SecurityGroupRules => "security-group-rules",
            ResourceKind::IamRole => "iam-role",
            ResourceKind::InstanceProfile => "instance-profile",
            ResourceKind::KeyPair => "key-pair",
            ResourceKind::LaunchTemplate => "launch-template",
            ResourceKind::AutoScalingGroup => "autoscaling-group",
            ResourceKind::LoadBalancer => "load-balancer",
            ResourceKind::TargetGroup => "target-group",
            ResourceKind::Listener => "listener",
            ResourceKind::DnsRecord => "dns-record",
            ResourceKind::HostedZone => "hosted-zone",
            ResourceKind::LifecycleHook => "lifecycle-hook",
            ResourceKind::SqsQueue => "sqs-queue",
            ResourceKind::EventRule => "event-rule",
            ResourceKind::Addon => "addon",
        }
    }

    /// Every kind, in the order a fresh cluster is built.
    pub const ALL: [ResourceKind; 22] = [
        ResourceKind::Vpc,
        ResourceKind::InternetGateway,
        ResourceKind::Subnet,
        ResourceKind::ElasticIp,
        ResourceKind::NatGateway,
        ResourceKind::RouteTable,
        ResourceKind::SecurityGroup,
        ResourceKind::SecurityGroupRules,
        ResourceKind::IamRole,
        ResourceKind::InstanceProfile,
        ResourceKind::KeyPair,
        ResourceKind::LoadBalancer,
        ResourceKind::TargetGroup,
        ResourceKind::Listener,
        ResourceKind::LaunchTemplate,
        ResourceKind::AutoScalingGroup,
        ResourceKind::HostedZone,
        ResourceKind::LifecycleHook,
        ResourceKind::DnsRecord,
        ResourceKind::SqsQueue,
        ResourceKind::EventRule,
        ResourceKind::Addon,
    ];

    /// Fields whose change cannot be made in place: the resource is
    /// replaced (deleted and created again). Everything else is updated.
    /// The names are the serialized (camelCase) field names of the kind's
    /// attributes, as [`Attributes::fields`] gives them; a test in
    /// `plans/tests/planning.rs` holds every name to that.
    pub fn immutable_fields(self) -> &'static [&'static str] {
        match self {
            ResourceKind::Vpc => &["cidr"],
            ResourceKind::Subnet => &["vpc", "cidr", "zone"],
            ResourceKind::InternetGateway => &[],
            ResourceKind::ElasticIp => &[],
            ResourceKind::NatGateway => &["subnet", "allocation"],
            ResourceKind::RouteTable => &["vpc"],
            ResourceKind::SecurityGroup => &["vpc", "name", "description"],
            ResourceKind::SecurityGroupRules => &["group"],
            ResourceKind::IamRole => &["name", "path"],
            ResourceKind::InstanceProfile => &["name", "path"],
            ResourceKind::KeyPair => &["name", "publicKey"],
            ResourceKind::LaunchTemplate => &["name"],
            ResourceKind::AutoScalingGroup => &["name"],
            ResourceKind::LoadBalancer => &["name", "scheme"],
            ResourceKind::TargetGroup => &["name", "port", "protocol", "vpc"],
            ResourceKind::Listener => &["loadBalancer", "port"],
            ResourceKind::DnsRecord => &["zone", "name"],
            ResourceKind::HostedZone => &["name", "vpc", "comment"],
            ResourceKind::LifecycleHook => &["group", "name"],
            ResourceKind::SqsQueue => &["name"],
            ResourceKind::EventRule => &["name"],
            // A new manifest is a new object: written over the old one.
            ResourceKind::Addon => &[],
        }
    }

    /// Whether the kind's resources are AWS resources, which a refresh lists
    /// (the addons are state-store objects, which the engine reads).
    pub fn is_in_aws(self) -> bool {
        !matches!(self, ResourceKind::Addon)
    }

    /// Whether the kind's resources are found by the cluster tag (the rest
    /// by name or path, or by the recorded state).
    pub fn is_tagged(self) -> bool {
        !matches!(
            self,
            ResourceKind::SecurityGroupRules
                | ResourceKind::Listener
                | ResourceKind::DnsRecord
                | ResourceKind::HostedZone
                | ResourceKind::InstanceProfile
                | ResourceKind::LifecycleHook
                | ResourceKind::Addon
        )
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.key_prefix())
    }
}

/// An output of a resource that others refer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Output {
    /// The primary ID (`vpc-...`, a name for IAM, an ARN for load balancers).
    Id,
    /// The ARN.
    Arn,
    /// A load balancer's DNS name.
    DnsName,
    /// A load balancer's canonical hosted zone (for Route53 aliases).
    CanonicalZone,
    /// A launch template's latest version number.
    LatestVersion,
    /// The resource's name.
    Name,
}

impl Output {
    fn as_str(self) -> &'static str {
        match self {
            Output::Id => "id",
            Output::Arn => "arn",
            Output::DnsName => "dnsName",
            Output::CanonicalZone => "canonicalZone",
            Output::LatestVersion => "latestVersion",
            Output::Name => "name",
        }
    }

    fn parse(text: &str) -> Option<Output> {
        [
            Output::Id,
            Output::Arn,
            Output::DnsName,
            Output::CanonicalZone,
            Output::LatestVersion,
            Output::Name,
        ]
        .into_iter()
        .find(|output| output.as_str() == text)
    }
}

/// A reference to another resource's output, written `key#output`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// The resource.
    pub key: ResourceKey,
    /// Which of its outputs.
    pub output: Output,
}

impl fmt::Display for Reference {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}#{}", self.key, self.output.as_str())
    }
}

impl Reference {
    /// Parses `key#output`.
    pub fn parse(text: &str) -> Option<Reference> {
        let (key, output) = text.rsplit_once('#')?;
        Some(Reference {
            key: ResourceKey::parse(key).ok()?,
            output: Output::parse(output)?,
        })
    }
}

/// A value that may be known now or only once another resource exists.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Id {
    /// A known value.
    Value(String),
    /// Another resource's output.
    Ref(Reference),
}

impl Id {
    /// The value, if known.
    pub fn value(&self) -> Option<&str> {
        match self {
            Id::Value(value) => Some(value),
            Id::Ref(_) => None,
        }
    }

    /// The referenced resource, if a reference.
    pub fn reference(&self) -> Option<&Reference> {
        match self {
            Id::Value(_) => None,
            Id::Ref(reference) => Some(reference),
        }
    }
}

impl From<&str> for Id {
    fn from(value: &str) -> Id {
        Id::Value(value.to_string())
    }
}

/// The JSON key marking a reference: `{"$ref": "vpc#id"}`.
pub const REF_KEY: &str = "$ref";

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Id::Value(value) => serializer.serialize_str(value),
            Id::Ref(reference) => {
                let mut map = BTreeMap::new();
                map.insert(REF_KEY, reference.to_string());
                map.serialize(serializer)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Value(String),
            Ref(BTreeMap<String, String>),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Value(value) => Ok(Id::Value(value)),
            Raw::Ref(map) => {
                let text = map
                    .get(REF_KEY)
                    .ok_or_else(|| serde::de::Error::custom("a reference needs a $ref key"))?;
                Reference::parse(text).map(Id::Ref).ok_or_else(|| {
                    serde::de::Error::custom(format!("{text:?} is not a reference like vpc#id"))
                })
            }
        }
    }
}

/// AWS tags, sorted by key.
pub type Tags = BTreeMap<String, String>;

/// The attributes of a resource, one variant per kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Attributes {
    /// A VPC.
    Vpc(VpcAttributes),
    /// A subnet.
    Subnet(SubnetAttributes),
    /// An internet gateway.
    InternetGateway(InternetGatewayAttributes),
    /// An Elastic IP.
    ElasticIp(ElasticIpAttributes),
    /// A NAT gateway.
    NatGateway(NatGatewayAttributes),
    /// A route table.
    RouteTable(RouteTableAttributes),
    /// A security group.
    SecurityGroup(SecurityGroupAttributes),
    /// The ingress rules of a security group.
    SecurityGroupRules(SecurityGroupRulesAttributes),
    /// An IAM role.
    IamRole(IamRoleAttributes),
    /// An instance profile.
    InstanceProfile(InstanceProfileAttributes),
    /// A key pair.
    KeyPair(KeyPairAttributes),
    /// A launch template.
    LaunchTemplate(Box<LaunchTemplateAttributes>),
    /// An auto scaling group.
    AutoScalingGroup(AutoScalingGroupAttributes),
    /// A load balancer.
    LoadBalancer(LoadBalancerAttributes),
    /// A target group.
    TargetGroup(TargetGroupAttributes),
    /// A listener.
    Listener(ListenerAttributes),
    /// A DNS record.
    DnsRecord(DnsRecordAttributes),
    /// A private hosted zone.
    HostedZone(HostedZoneAttributes),
    /// A lifecycle hook.
    LifecycleHook(LifecycleHookAttributes),
    /// An SQS queue.
    SqsQueue(SqsQueueAttributes),
    /// An EventBridge rule.
    EventRule(EventRuleAttributes),
    /// A cluster addon.
    Addon(AddonAttributes),
}

impl Attributes {
    /// The kind of these attributes.
    pub fn kind(&self) -> ResourceKind {
        match self {
            Attributes::Vpc(_) => ResourceKind::Vpc,
            Attributes::Subnet(_) => ResourceKind::Subnet,
            Attributes::InternetGateway(_) => ResourceKind::InternetGateway,
            Attributes::ElasticIp(_) => ResourceKind::ElasticIp,
            Attributes::NatGateway(_) => ResourceKind::NatGateway,
            Attributes::RouteTable(_) => ResourceKind::RouteTable,
            Attributes::SecurityGroup(_) => ResourceKind::SecurityGroup,
            Attributes::SecurityGroupRules(_) => ResourceKind::SecurityGroupRules,
            Attributes::IamRole(_) => ResourceKind::IamRole,
            Attributes::InstanceProfile(_) => ResourceKind::InstanceProfile,
            Attributes::KeyPair(_) => ResourceKind::KeyPair,
            Attributes::LaunchTemplate(_) => ResourceKind::LaunchTemplate,
            Attributes::AutoScalingGroup(_) => ResourceKind::AutoScalingGroup,
            Attributes::LoadBalancer(_) => ResourceKind::LoadBalancer,
            Attributes::TargetGroup(_) => ResourceKind::TargetGroup,
            Attributes::Listener(_) => ResourceKind::Listener,
            Attributes::DnsRecord(_) => ResourceKind::DnsRecord,
            Attributes::HostedZone(_) => ResourceKind::HostedZone,
            Attributes::LifecycleHook(_) => ResourceKind::LifecycleHook,
            Attributes::SqsQueue(_) => ResourceKind::SqsQueue,
            Attributes::EventRule(_) => ResourceKind::EventRule,
            Attributes::Addon(_) => ResourceKind::Addon,
        }
    }

    /// The attributes as a JSON object of fields (without the `kind` tag),
    /// for field-by-field comparison and display.
    pub fn fields(&self) -> BTreeMap<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map
                .into_iter()
                .filter(|(key, _)| key != "kind")
                .filter(|(key, _)| !(matches!(self, Attributes::HostedZone(_)) && key == "serves"))
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    /// Sorts every list that AWS treats as a set (security groups, subnets,
    /// rules, routes, target groups), so that order never shows as a change.
    /// Applied to both sides of the diff: after references are resolved on
    /// the desired side (values sort differently from references), and to
    /// what the provider reads.
    pub fn normalize(&mut self) {
        match self {
            Attributes::RouteTable(table) => {
                table.routes.sort();
                table.routes.dedup();
                table.subnets.sort();
                table.subnets.dedup();
            }
            Attributes::SecurityGroupRules(rules) => {
                rules.ingress.sort();
                rules.ingress.dedup();
            }
            Attributes::LaunchTemplate(template) => template.security_groups.sort(),
            Attributes::AutoScalingGroup(group) => {
                group.subnets.sort();
                group.target_groups.sort();
            }
            Attributes::LoadBalancer(balancer) => {
                balancer.subnets.sort();
                balancer.security_groups.sort();
            }
            _ => {}
        }
    }

    /// Every resource these attributes refer to.
    pub fn references(&self) -> Vec<Reference> {
        let mut found = Vec::new();
        collect_references(&serde_json::to_value(self).unwrap_or_default(), &mut found);
        found.sort();
        found.dedup();
        found
    }
}

fn collect_references(value: &serde_json::Value, found: &mut Vec<Reference>) {
    match value {
        serde_json::Value::Object(map) => {
            if let (1, Some(serde_json::Value::String(text))) = (map.len(), map.get(REF_KEY)) {
                if let Some(reference) = Reference::parse(text) {
                    found.push(reference);
                }
                return;
            }
            for child in map.values() {
                collect_references(child, found);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                collect_references(item, found);
            }
        }
        _ => {}
    }
}

/// A VPC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VpcAttributes {
    /// The address range.
    pub cidr: String,
    /// DNS resolution inside the VPC.
    pub enable_dns_support: bool,
    /// DNS hostnames for instances.
    pub enable_dns_hostnames: bool,
    /// Tags.
    pub tags: Tags,
}

/// A subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetAttributes {
    /// The VPC.
    pub vpc: Id,
    /// The address range.
    pub cidr: String,
    /// The availability zone.
    pub zone: String,
    /// Whether instances get a public address.
    pub map_public_ip_on_launch: bool,
    /// Tags.
    pub tags: Tags,
}

/// An internet gateway attached to a VPC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InternetGatewayAttributes {
    /// The VPC it is attached to.
    pub vpc: Id,
    /// Tags.
    pub tags: Tags,
}

/// An Elastic IP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElasticIpAttributes {
    /// Tags.
    pub tags: Tags,
}

/// A NAT gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NatGatewayAttributes {
    /// The (public) subnet it lives in.
    pub subnet: Id,
    /// Its Elastic IP allocation.
    pub allocation: Id,
    /// Tags.
    pub tags: Tags,
}

/// Where a route sends traffic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RouteTarget {
    /// An internet gateway.
    InternetGateway(Id),
    /// A NAT gateway.
    NatGateway(Id),
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// The destination range.
    pub destination: String,
    /// The target.
    pub target: RouteTarget,
}

/// A route table with its routes (besides the VPC's local route) and the
/// subnets associated with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteTableAttributes {
    /// The VPC.
    pub vpc: Id,
    /// Routes, sorted.
    pub routes: Vec<Route>,
    /// Associated subnets, sorted.
    pub subnets: Vec<Id>,
    /// Tags.
    pub tags: Tags,
}

/// A security group, without its rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupAttributes {
    /// The VPC.
    pub vpc: Id,
    /// The group name.
    pub name: String,
    /// The description.
    pub description: String,
    /// Tags.
    pub tags: Tags,
}

/// Where allowed traffic comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RuleSource {
    /// An IPv4 range.
    Cidr(String),
    /// Members of a security group.
    Group(Id),
}

/// One ingress rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRule {
    /// `tcp`, `udp`, `icmp`, a protocol number (`4` for IP-in-IP), or `-1` for all.
    pub protocol: String,
    /// First port (or -1).
    pub from_port: i32,
    /// Last port (or -1).
    pub to_port: i32,
    /// The source.
    pub source: RuleSource,
}

/// The complete set of ingress rules of a security group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityGroupRulesAttributes {
    /// The group.
    pub group: Id,
    /// The rules, sorted and without duplicates.
    pub ingress: Vec<IngressRule>,
}

/// An IAM role with one inline policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IamRoleAttributes {
    /// The role name.
    pub name: String,
    /// The IAM path (`/skiff/<cluster>/`), which also finds the cluster's roles.
    pub path: String,
    /// Who may assume the role (canonical JSON).
    pub assume_role_policy: String,
    /// The name of the inline policy.
    pub policy_name: String,
    /// The inline policy (canonical JSON).
    pub policy: String,
    /// Tags.
    pub tags: Tags,
}

/// An instance profile wrapping a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceProfileAttributes {
    /// The profile name.
    pub name: String,
    /// The IAM path.
    pub path: String,
    /// The role's name.
    pub role: Id,
}

/// An EC2 key pair (public key only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyPairAttributes {
    /// The key pair name.
    pub name: String,
    /// The OpenSSH public key (type and key, without the comment).
    pub public_key: String,
    /// Tags.
    pub tags: Tags,
}

/// The root EBS volume of a launch template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RootVolumeAttributes {
    /// The image's root device name (`/dev/sda1`, `/dev/xvda`).
    pub device_name: String,
    /// Size in GiB.
    pub size: u32,
    /// Volume type.
    pub volume_type: String,
    /// Provisioned IOPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<u32>,
    /// Provisioned throughput.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<u32>,
    /// Encrypted at rest.
    pub encrypted: bool,
}

/// A launch template: what every instance of a group is launched with.
/// A change creates a new version; instances launched earlier keep the
/// old one until a rolling update replaces them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchTemplateAttributes {
    /// The template name.
    pub name: String,
    /// The AMI.
    pub image_id: String,
    /// The instance type.
    pub instance_type: String,
    /// The key pair, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<Id>,
    /// The instance profile's ARN (bastions have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_profile: Option<Id>,
    /// Security groups, sorted.
    pub security_groups: Vec<Id>,
    /// The primary private IP every instance launches with (an external
    /// etcd member's fixed address; its group runs one instance in one
    /// subnet). `None`: the subnet hands out an address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
    /// The user-data, as plain text (sent base64-encoded).
    pub user_data: String,
    /// Placeholders in `user_data` to replace with values known only once
    /// other resources exist (a gossip cluster's load balancer DNS name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_data_substitutions: BTreeMap<String, Id>,
    /// The root volume.
    pub root_volume: RootVolumeAttributes,
    /// IMDSv2 only.
    pub http_tokens_required: bool,
    /// How many network hops an IMDS answer may travel (1 keeps it from pods).
    pub http_put_response_hop_limit: u32,
    /// Spot capacity, with an optional maximum price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_max_price: Option<String>,
    /// Whether the group runs on spot (without mixed instances).
    pub spot: bool,
    /// Tags put on instances and volumes at launch.
    pub instance_tags: Tags,
    /// Tags of the template itself.
    pub tags: Tags,
}

impl LaunchTemplateAttributes {
    /// The bootstrap script the state store must hold before an instance
    /// launches from this template: EC2 gets the user-data with a loader in
    /// the script's place (`skiff_templates::ec2_user_data`). `None` for a
    /// bastion's user-data, which runs no script.
    pub fn stored_script(
        &self,
    ) -> Result<Option<skiff_templates::StoredScript>, skiff_templates::TemplateError> {
        Ok(skiff_templates::ec2_user_data(&self.user_data)?.script)
    }

    /// Whether going from `self` to `after` needs a new template version:
    /// a change of anything but the template's own tags (the substitutions
    /// are references that end up in the user-data, compared there). The
    /// provider's update and the critical path's call count both ask this.
    pub fn data_differs(&self, after: &LaunchTemplateAttributes) -> bool {
        let mut before = self.clone();
        before.tags = after.tags.clone();
        before.user_data_substitutions = after.user_data_substitutions.clone();
        &before != after
    }
}

/// A mixed-instances policy of an auto scaling group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MixedInstancesAttributes {
    /// Instance types (overrides), in order of preference.
    pub instance_types: Vec<String>,
    /// On-demand base capacity.
    pub on_demand_base_capacity: u32,
    /// On-demand percentage above base.
    pub on_demand_percentage_above_base: u32,
    /// Spot allocation strategy.
    pub spot_allocation_strategy: String,
}

/// An auto scaling group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoScalingGroupAttributes {
    /// The group name.
    pub name: String,
    /// The launch template's ID.
    pub launch_template: Id,
    /// The launch template version new instances get.
    pub launch_template_version: Id,
    /// Fewest instances.
    pub min_size: u32,
    /// Most instances.
    pub max_size: u32,
    /// Subnets, sorted.
    pub subnets: Vec<Id>,
    /// Target groups, sorted.
    pub target_groups: Vec<Id>,
    /// Mixed instances, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixed_instances: Option<MixedInstancesAttributes>,
    /// Which health check replaces an instance: `EC2` (the instance's
    /// status checks) or `ELB` (also the load balancer's target health).
    /// States recorded before skiff set it read as AWS's default, `EC2`.
    #[serde(default = "default_health_check_type")]
    pub health_check_type: String,
    /// Seconds after launch before the health check counts (AWS's default: 300).
    #[serde(default = "default_health_check_grace_period")]
    pub health_check_grace_period: u32,
    /// Tags, propagated to instances at launch.
    pub tags: Tags,
}

/// AWS's health check type when none is given.
pub fn default_health_check_type() -> String {
    "EC2".to_string()
}

/// AWS's grace period when none is given, in seconds.
pub fn default_health_check_grace_period() -> u32 {
    300
}

impl AutoScalingGroupAttributes {
    /// Whether going from `self` to `after` changes what one
    /// UpdateAutoScalingGroup call sets: the template and its version, the
    /// sizes, the subnets, the instance mix, the health check (target groups and tags have
    /// calls of their own). The provider's update and the critical path's
    /// call count both ask this.
    pub fn core_differs(&self, after: &AutoScalingGroupAttributes) -> bool {
        self.launch_template != after.launch_template
            || self.launch_template_version != after.launch_template_version
            || self.min_size != after.min_size
            || self.max_size != after.max_size
            || self.subnets != after.subnets
            || self.mixed_instances != after.mixed_instances
            || self.health_check_type != after.health_check_type
            || self.health_check_grace_period != after.health_check_grace_period
    }
}

/// A network load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerAttributes {
    /// The name (at most 32 characters).
    pub name: String,
    /// `internet-facing` or `internal`.
    pub scheme: String,
    /// Subnets, sorted.
    pub subnets: Vec<Id>,
    /// Security groups, sorted.
    pub security_groups: Vec<Id>,
    /// Tags.
    pub tags: Tags,
}

/// A target group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupAttributes {
    /// The name (at most 32 characters).
    pub name: String,
    /// The VPC.
    pub vpc: Id,
    /// `TCP`.
    pub protocol: String,
    /// The target port.
    pub port: u16,
    /// Health check protocol.
    pub health_check_protocol: String,
    /// Health check path (HTTP/HTTPS).
    pub health_check_path: String,
    /// Whether targets see the client's address (off, so that a control-plane
    /// node can reach the API through the load balancer: no hairpin drop).
    pub preserve_client_ip: bool,
    /// Seconds to drain a deregistered target.
    pub deregistration_delay_seconds: u32,
    /// Tags.
    pub tags: Tags,
}

/// A load balancer listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerAttributes {
    /// The load balancer.
    pub load_balancer: Id,
    /// The port clients connect to.
    pub port: u16,
    /// `TCP`.
    pub protocol: String,
    /// Where connections go.
    pub target_group: Id,
}

/// A Route53 alias record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsRecordAttributes {
    /// The hosted zone ID (the skiff-owned private zone's is known once it
    /// exists).
    pub zone: Id,
    /// The record name, with the final dot.
    pub name: String,
    /// `A`.
    pub record_type: String,
    /// The alias target's DNS name.
    pub alias_target: Id,
    /// The alias target's hosted zone.
    pub alias_zone: Id,
}

/// A Route53 private hosted zone, associated with the cluster's VPC at
/// creation. Hosted zones take no tags at creation (`CreateHostedZone` has
/// none), so skiff finds its own by name, VPC and comment, or by the
/// recorded state, as it finds its records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostedZoneAttributes {
    /// The zone's name, without the final dot (`api.<cluster>`).
    pub name: String,
    /// The VPC it answers in.
    pub vpc: Id,
    /// The zone's comment, which marks it as skiff's
    /// (`skiff: <cluster> <key>`).
    pub comment: String,
    /// What must serve before the zone exists: the internal load balancer
    /// (its ARN), its listener and its target group, and the API's public
    /// target group. Once created, the zone shadows the public record of
    /// its name inside the VPC at once, so on a running cluster a zone made
    /// before the load balancer it leads to is `active` and has a healthy
    /// target would cut the nodes off the API for minutes; the public
    /// target group tells the apply whether the API is served today (a new
    /// cluster's is not, and its apply does not wait). Orders the create
    /// after them and is waited for by it; not a property of the zone, so
    /// never compared ([`Attributes::fields`] leaves it out) and not read
    /// back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub serves: Vec<Id>,
}

/// An auto scaling lifecycle hook: AWS pauses an instance of the group in
/// `Terminating:Wait` until the hook's action is completed or its
/// heartbeat timeout passes, then applies the default result. Found through
/// its group (hooks carry no tags).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleHookAttributes {
    /// The auto scaling group's name.
    pub group: Id,
    /// The hook's name.
    pub name: String,
    /// `autoscaling:EC2_INSTANCE_TERMINATING`.
    pub transition: String,
    /// Seconds an instance waits for the action to be completed.
    pub heartbeat_timeout: u32,
    /// `CONTINUE` or `ABANDON`: what happens when the timeout passes.
    pub default_result: String,
}

/// An SQS queue with its attributes and queue policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsQueueAttributes {
    /// The queue name (at most 80 characters).
    pub name: String,
    /// Seconds a message is kept.
    pub message_retention_seconds: u32,
    /// Server-side encryption with SQS-owned keys (SSE-SQS).
    pub sqs_managed_sse: bool,
    /// The queue policy (canonical JSON).
    pub policy: String,
    /// Tags.
    pub tags: Tags,
}

/// An EventBridge rule on the default event bus with one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRuleAttributes {
    /// The rule name (at most 64 characters).
    pub name: String,
    /// What the rule is for.
    pub description: String,
    /// The event pattern (canonical JSON).
    pub event_pattern: String,
    /// The target's ARN (the queue).
    pub target: Id,
    /// Tags.
    pub tags: Tags,
}

/// A cluster addon (`spec.addons`) as the state store holds it: its
/// manifest `<cluster>/addons/<name>.yaml` and its line in
/// `<cluster>/addons/index` (`skiff_templates::state_store::AddonIndex`). Not
/// an AWS resource: the engine writes it (`skiff_engine::addons`) and the
/// control-plane nodes apply it, so a change rolls no node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddonAttributes {
    /// The addon's release, e.g. `v0.8.0`.
    pub version: String,
    /// The Kubernetes minor the manifest is for, e.g. `1.34`: nodes apply it
    /// once the control plane runs that minor.
    pub kubernetes_minor: String,
    /// The SHA-256 of the manifest, lowercase hex.
    pub sha256: String,
}

/// One resource of the desired model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredResource {
    /// Its key.
    pub key: ResourceKey,
    /// What it should look like.
    pub attributes: Attributes,
}

impl DesiredResource {
    /// The kind.
    pub fn kind(&self) -> ResourceKind {
        self.attributes.kind()
    }

    /// The resources this one needs first.
    pub fn dependencies(&self) -> Vec<ResourceKey> {
        let mut keys: Vec<ResourceKey> = self
            .attributes
            .references()
            .into_iter()
            .map(|reference| reference.key)
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_the_planner_builds_parse_back() {
        for kind in ResourceKind::ALL {
            for name in ["", "us-east-1a", "nodes-us-east-1a", "private-us-east-1a"] {
                let key = ResourceKey::new(kind, name);
                assert_eq!(ResourceKey::parse(key.as_str()), Ok(key.clone()));
                assert_eq!(key.name(), name);
            }
        }
    }

    #[test]
    fn bad_keys_are_refused_with_the_reason() {
        let refused = |text: &str| ResourceKey::parse(text).expect_err(text).to_string();
        assert_eq!(refused(""), "a resource key must not be empty");
        assert_eq!(
            refused("bucket/x"),
            "resource key \"bucket/x\" does not start with a resource kind (vpc, subnet/NAME, launch-template/NAME, ...)"
        );
        assert!(refused("(journal)").contains("does not start with a resource kind"));
        assert!(refused("vpc2").contains("does not start with a resource kind"));
        assert_eq!(
            refused("subnet/"),
            "resource key \"subnet/\" has an empty name after the subnet/ prefix"
        );
        assert_eq!(
            refused("subnet/a\nb"),
            "resource key \"subnet/a\\nb\" holds a control character"
        );
        let long = format!("subnet/{}", "a".repeat(300));
        assert!(refused(&long).contains("is 307 characters long; a key is at most 256"));
        let longest = format!("subnet/{}", "a".repeat(256 - 7));
        assert!(ResourceKey::parse(&longest).is_ok());
    }

    #[test]
    fn deserializing_checks_the_key() {
        let key: ResourceKey = serde_json::from_str(r#""subnet/us-east-1a""#).expect("valid");
        assert_eq!(
            serde_json::to_string(&key).expect("serializes"),
            r#""subnet/us-east-1a""#
        );
        let error = serde_json::from_str::<ResourceKey>(r#""../../etc""#).expect_err("refused");
        assert!(
            error
                .to_string()
                .contains("does not start with a resource kind"),
            "{error}"
        );
        let map: BTreeMap<ResourceKey, u32> =
            serde_json::from_str(r#"{"vpc": 1, "subnet/a": 2}"#).expect("keys of a map");
        assert_eq!(map.len(), 2);
        assert!(serde_json::from_str::<BTreeMap<ResourceKey, u32>>(r#"{"": 1}"#).is_err());
        assert!(Reference::parse("nonsense#id").is_none());
        assert_eq!(
            Reference::parse("vpc#id").map(|reference| reference.to_string()),
            Some("vpc#id".to_string())
        );
    }

    #[test]
    fn references_round_trip_through_json() {
        let subnet = Attributes::Subnet(SubnetAttributes {
            vpc: ResourceKey::new(ResourceKind::Vpc, "").output(Output::Id),
            cidr: "10.0.0.0/19".into(),
            zone: "us-east-1a".into(),
            map_public_ip_on_launch: false,
            tags: Tags::new(),
        });
        let json = serde_json::to_string(&subnet).expect("serializes");
        assert!(json.contains(r##"{"$ref":"vpc#id"}"##), "{json}");
        let back: Attributes = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, subnet);
        assert_eq!(back.references().len(), 1);
    }
}
