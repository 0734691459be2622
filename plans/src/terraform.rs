//! The desired model as Terraform: `skiff update cluster NAME --target
//! terraform --out DIR` writes these files instead of applying a plan.
//!
//! Generated from the same [`DesiredModel`] the direct apply uses, so the
//! two targets can never describe different clusters. Pure and
//! deterministic like the rest of the planner: the model and the region in,
//! file contents out (the caller writes them). Every object's keys are
//! sorted and each resource has a stable, readable address derived from its
//! resource key (`launch-template/nodes-us-east-1a` becomes
//! `aws_launch_template.nodes_us_east_1a`), so regenerating after a spec
//! edit gives a small diff that shows exactly what changed.
//!
//! How the model maps to the hashicorp/aws 5.x provider:
//!
//! - a reference (`vpc#id`) becomes an expression (`${aws_vpc.main.id}`);
//!   values the lookups resolved (the AMI, the hosted zone, shared VPCs and
//!   subnets) are literals, fixed when the files are generated;
//! - a route table becomes `aws_route_table` plus one `aws_route` per route
//!   and one `aws_route_table_association` per subnet;
//! - a security group's rule set becomes one
//!   `aws_vpc_security_group_ingress_rule` per rule; every group also gets
//!   an allow-all `aws_vpc_security_group_egress_rule`, because Terraform
//!   removes the default egress rule AWS creates (the direct apply leaves
//!   it in place);
//! - an IAM role becomes `aws_iam_role` plus `aws_iam_role_policy`;
//! - a launch template's user-data is a data file,
//!   `data/<group>.user-data`, read with `filebase64` (the exact bytes the
//!   direct apply sends); for a gossip cluster the load balancer's DNS name
//!   is substituted for the placeholder with Terraform's `replace`.
//!
//! Literal text is escaped (`${` as `$${`, `%{` as `%%{`) so that Terraform
//! never reads a value of the model as a template.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::desired::DesiredModel;
use crate::error::PlanError;
use crate::names;
use crate::resource::{
    Attributes, AutoScalingGroupAttributes, Id, IngressRule, LaunchTemplateAttributes, Output,
    Reference, ResourceKey, ResourceKind, RouteTarget, RuleSource, Tags,
};

/// The file holding the Terraform configuration, in DIR.
pub const MAIN_FILE: &str = "skiff.tf.json";
/// The folder, in DIR, of the data files (user-data) the configuration reads.
pub const DATA_DIR: &str = "data";
/// The provider the configuration is written for.
pub const PROVIDER_SOURCE: &str = "hashicorp/aws";
/// The provider versions it accepts.
pub const PROVIDER_VERSION: &str = "~> 5.0";
/// The Terraform versions it accepts.
pub const TERRAFORM_VERSION: &str = ">= 1.5.0";
/// The local name of resources a cluster has one of (`aws_vpc.main`).
pub const SINGLE_NAME: &str = "main";

/// The generated files: paths relative to the output folder, and contents.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TerraformFiles {
    /// Contents by relative path (`skiff.tf.json`, `data/<group>.user-data`).
    pub files: BTreeMap<String, Vec<u8>>,
}

impl TerraformFiles {
    /// The configuration (the main file), parsed.
    pub fn configuration(&self) -> Value {
        self.files
            .get(MAIN_FILE)
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .unwrap_or(Value::Null)
    }
}

/// The Terraform resource type a kind's (main) resource becomes.
pub fn resource_type(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Vpc => "aws_vpc",
        ResourceKind::Subnet => "aws_subnet",
        ResourceKind::InternetGateway => "aws_internet_gateway",
        ResourceKind::ElasticIp => "aws_eip",
        ResourceKind::NatGateway => "aws_nat_gateway",
        ResourceKind::RouteTable => "aws_route_table",
        ResourceKind::SecurityGroup => "aws_security_group",
        ResourceKind::SecurityGroupRules => "aws_vpc_security_group_ingress_rule",
        ResourceKind::IamRole => "aws_iam_role",
        ResourceKind::InstanceProfile => "aws_iam_instance_profile",
        ResourceKind::KeyPair => "aws_key_pair",
        ResourceKind::LaunchTemplate => "aws_launch_template",
        ResourceKind::AutoScalingGroup => "aws_autoscaling_group",
        ResourceKind::LoadBalancer => "aws_lb",
        ResourceKind::TargetGroup => "aws_lb_target_group",
        ResourceKind::Listener => "aws_lb_listener",
        ResourceKind::DnsRecord => "aws_route53_record",
        ResourceKind::HostedZone => "aws_route53_zone",
        ResourceKind::LifecycleHook => "aws_autoscaling_lifecycle_hook",
        ResourceKind::SqsQueue => "aws_sqs_queue",
        ResourceKind::EventRule => "aws_cloudwatch_event_rule",
        // Not emitted: the addons are state-store objects skiff writes.
        ResourceKind::Addon => "aws_s3_object",
    }
}

/// A Terraform name from any text: lowercase letters, digits and `_`,
/// never starting with a digit.
pub fn identifier(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() {
                character.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        return SINGLE_NAME.to_string();
    }
    if name.starts_with(|character: char| character.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// The local name of a resource key's main Terraform resource: its name
/// part (`nodes_us_east_1a`), or `main` for kinds a cluster has one of.
pub fn local_name(key: &ResourceKey) -> String {
    identifier(key.name())
}

/// The address of a key's main Terraform resource:
/// `aws_autoscaling_group.nodes_us_east_1a`.
pub fn address(kind: ResourceKind, key: &ResourceKey) -> String {
    format!("{}.{}", resource_type(kind), local_name(key))
}

/// Literal text, escaped so that Terraform does not read it as a template.
fn literal(text: &str) -> String {
    text.replace("${", "$${").replace("%{", "%%{")
}

/// A quoted string inside an expression (`"text"`).
fn quoted(text: &str) -> String {
    serde_json::to_string(&literal(text)).unwrap_or_default()
}

fn tags_value(tags: &Tags) -> Value {
    Value::Object(
        tags.iter()
            .map(|(key, value)| (literal(key), Value::String(literal(value))))
            .collect(),
    )
}

/// Rebuilds every object with its keys sorted (serde_json keeps insertion
/// order in this workspace), so output never depends on build order.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|left, right| left.0.cmp(&right.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key, sorted(value)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

struct Generator<'model> {
    model: &'model DesiredModel,
    kinds: BTreeMap<&'model ResourceKey, ResourceKind>,
    /// Resource bodies by type, then local name.
    resources: BTreeMap<String, BTreeMap<String, Value>>,
    files: BTreeMap<String, Vec<u8>>,
}

fn error(message: impl Into<String>) -> PlanError {
    PlanError::Terraform {
        message: message.into(),
    }
}

impl<'model> Generator<'model> {
    fn add(&mut self, resource_type: &str, name: String, body: Value) -> Result<(), PlanError> {
        let of_type = self.resources.entry(resource_type.to_string()).or_default();
        if of_type.contains_key(&name) {
            return Err(error(format!(
                "two resources would have the address {resource_type}.{name}; rename one of the instance groups or subnets"
            )));
        }
        of_type.insert(name, body);
        Ok(())
    }

    /// The expression (without `${}`) of a reference.
    fn expression(&self, reference: &Reference) -> Result<String, PlanError> {
        let kind = self.kinds.get(&reference.key).copied().ok_or_else(|| {
            error(format!(
                "{reference} refers to a resource the cluster does not have (a bug in skiff)"
            ))
        })?;
        let attribute = match (kind, reference.output) {
            (
                ResourceKind::LoadBalancer | ResourceKind::TargetGroup | ResourceKind::Listener,
                Output::Id | Output::Arn,
            ) => "arn",
            (ResourceKind::LoadBalancer, Output::DnsName) => "dns_name",
            (ResourceKind::LoadBalancer, Output::CanonicalZone) => "zone_id",
            (ResourceKind::LaunchTemplate, Output::LatestVersion) => "latest_version",
            (ResourceKind::KeyPair, Output::Name) => "key_name",
            (ResourceKind::KeyPair, Output::Id) => "key_pair_id",
            (
                ResourceKind::IamRole
                | ResourceKind::InstanceProfile
                | ResourceKind::AutoScalingGroup,
                Output::Id | Output::Name,
            ) => "name",
            (ResourceKind::ElasticIp, Output::Id) => "allocation_id",
            (ResourceKind::DnsRecord, Output::Id | Output::Name) => "fqdn",
            (ResourceKind::HostedZone, Output::Id) => "zone_id",
            (_, Output::Id) => "id",
            (_, Output::Arn) => "arn",
            (_, Output::Name) => "name",
            (kind, output) => {
                return Err(error(format!(
                    "{reference}: a {kind} has no output {output:?} in Terraform (a bug in skiff)"
                )))
            }
        };
        Ok(format!("{}.{attribute}", address(kind, &reference.key)))
    }

    /// A value: a literal, or an interpolated reference.
    fn id(&self, id: &Id) -> Result<Value, PlanError> {
        Ok(Value::String(match id {
            Id::Value(value) => literal(value),
            Id::Ref(reference) => format!("${{{}}}", self.expression(reference)?),
        }))
    }

    /// An expression (without `${}`) of a value.
    fn id_expression(&self, id: &Id) -> Result<String, PlanError> {
        match id {
            Id::Value(value) => Ok(quoted(value)),
            Id::Ref(reference) => self.expression(reference),
        }
    }

    fn ids(&self, ids: &[Id]) -> Result<Value, PlanError> {
        Ok(Value::Array(
            ids.iter().map(|id| self.id(id)).collect::<Result<_, _>>()?,
        ))
    }

    /// A readable name part for a value: the referenced key's name, or the
    /// literal value (a shared subnet's ID).
    fn name_of(id: &Id) -> String {
        match id {
            Id::Ref(reference) => local_name(&reference.key),
            Id::Value(value) => identifier(value),
        }
    }

    fn resource(&mut self, key: &ResourceKey, attributes: &Attributes) -> Result<(), PlanError> {
        let kind = attributes.kind();
        let name = local_name(key);
        let kind_type = resource_type(kind);
        match attributes {
            // The addons' manifests are state-store objects, not cloud
            // resources Terraform manages; nothing to emit.
            Attributes::Addon(_) => Ok(()),
            Attributes::Vpc(vpc) => self.add(
                kind_type,
                name,
                json!({
                    "cidr_block": literal(&vpc.cidr),
                    "enable_dns_support": vpc.enable_dns_support,
                    "enable_dns_hostnames": vpc.enable_dns_hostnames,
                    "tags": tags_value(&vpc.tags),
                }),
            ),
            Attributes::Subnet(subnet) => self.add(
                kind_type,
                name,
                json!({
                    "vpc_id": self.id(&subnet.vpc)?,
                    "cidr_block": literal(&subnet.cidr),
                    "availability_zone": literal(&subnet.zone),
                    "map_public_ip_on_launch": subnet.map_public_ip_on_launch,
                    "tags": tags_value(&subnet.tags),
                }),
            ),
            Attributes::InternetGateway(gateway) => self.add(
                kind_type,
                name,
                json!({
                    "vpc_id": self.id(&gateway.vpc)?,
                    "tags": tags_value(&gateway.tags),
                }),
            ),
            Attributes::ElasticIp(address) => self.add(
                kind_type,
                name,
                json!({ "domain": "vpc", "tags": tags_value(&address.tags) }),
            ),
            Attributes::NatGateway(gateway) => {
                let mut body = json!({
                    "subnet_id": self.id(&gateway.subnet)?,
                    "allocation_id": self.id(&gateway.allocation)?,
                    "tags": tags_value(&gateway.tags),
                });
                // A public NAT gateway works only once the VPC has its
                // internet gateway, which no attribute refers to.
                let internet_gateway = ResourceKey::new(ResourceKind::InternetGateway, "");
                if self.kinds.contains_key(&internet_gateway) {
                    body["depends_on"] =
                        json!([address(ResourceKind::InternetGateway, &internet_gateway)]);
                }
                self.add(kind_type, name, body)
            }
            Attributes::RouteTable(table) => {
                self.add(
                    kind_type,
                    name.clone(),
                    json!({
                        "vpc_id": self.id(&table.vpc)?,
                        "tags": tags_value(&table.tags),
                    }),
                )?;
                let table_id = format!("${{{}.id}}", address(kind, key));
                for route in &table.routes {
                    let destination = if route.destination == "0.0.0.0/0" {
                        "default".to_string()
                    } else {
                        identifier(&route.destination)
                    };
                    let (target_field, target) = match &route.target {
                        RouteTarget::InternetGateway(gateway) => ("gateway_id", gateway),
                        RouteTarget::NatGateway(gateway) => ("nat_gateway_id", gateway),
                    };
                    let mut body = json!({
                        "route_table_id": table_id,
                        "destination_cidr_block": literal(&route.destination),
                    });
                    body[target_field] = self.id(target)?;
                    self.add("aws_route", format!("{name}_{destination}"), body)?;
                }
                for subnet in &table.subnets {
                    self.add(
                        "aws_route_table_association",
                        format!("{name}_{}", Self::name_of(subnet)),
                        json!({
                            "route_table_id": table_id,
                            "subnet_id": self.id(subnet)?,
                        }),
                    )?;
                }
                Ok(())
            }
            Attributes::SecurityGroup(group) => {
                self.add(
                    kind_type,
                    name.clone(),
                    json!({
                        "name": literal(&group.name),
                        "description": literal(&group.description),
                        "vpc_id": self.id(&group.vpc)?,
                        "tags": tags_value(&group.tags),
                    }),
                )?;
                // Terraform removes the egress rule AWS creates with a
                // group; the direct apply keeps it. Put it back.
                self.add(
                    "aws_vpc_security_group_egress_rule",
                    format!("{name}_all"),
                    json!({
                        "security_group_id": format!("${{{}.id}}", address(kind, key)),
                        "ip_protocol": "-1",
                        "cidr_ipv4": "0.0.0.0/0",
                    }),
                )
            }
            Attributes::SecurityGroupRules(rules) => {
                let group = self.id(&rules.group)?;
                let group_name = Self::name_of(&rules.group);
                for rule in &rules.ingress {
                    let body = self.ingress_rule(&group, rule)?;
                    self.add(kind_type, rule_name(&group_name, rule), body)?;
                }
                Ok(())
            }
            Attributes::IamRole(role) => {
                self.add(
                    kind_type,
                    name.clone(),
                    json!({
                        "name": literal(&role.name),
                        "path": literal(&role.path),
                        "assume_role_policy": literal(&role.assume_role_policy),
                        "tags": tags_value(&role.tags),
                    }),
                )?;
                self.add(
                    "aws_iam_role_policy",
                    name,
                    json!({
                        "name": literal(&role.policy_name),
                        "role": format!("${{{}.name}}", address(kind, key)),
                        "policy": literal(&role.policy),
                    }),
                )
            }
            Attributes::InstanceProfile(profile) => self.add(
                kind_type,
                name,
                json!({
                    "name": literal(&profile.name),
                    "path": literal(&profile.path),
                    "role": self.id(&profile.role)?,
                }),
            ),
            Attributes::KeyPair(pair) => self.add(
                kind_type,
                name,
                json!({
                    "key_name": literal(&pair.name),
                    "public_key": literal(&pair.public_key),
                    "tags": tags_value(&pair.tags),
                }),
            ),
            Attributes::LaunchTemplate(template) => {
                let body = self.launch_template(key, template)?;
                self.add(kind_type, name, body)
            }
            Attributes::AutoScalingGroup(group) => {
                let body = self.auto_scaling_group(group)?;
                self.add(kind_type, name, body)
            }
            Attributes::LoadBalancer(balancer) => self.add(
                kind_type,
                name,
                json!({
                    "name": literal(&balancer.name),
                    "load_balancer_type": "network",
                    "internal": balancer.scheme == "internal",
                    "subnets": self.ids(&balancer.subnets)?,
                    "security_groups": self.ids(&balancer.security_groups)?,
                    "tags": tags_value(&balancer.tags),
                }),
            ),
            Attributes::TargetGroup(target) => self.add(
                kind_type,
                name,
                json!({
                    "name": literal(&target.name),
                    "vpc_id": self.id(&target.vpc)?,
                    "protocol": literal(&target.protocol),
                    "port": target.port,
                    "target_type": "instance",
                    "preserve_client_ip": target.preserve_client_ip.to_string(),
                    "deregistration_delay": target.deregistration_delay_seconds.to_string(),
                    "health_check": [{
                        "protocol": literal(&target.health_check_protocol),
                        "path": literal(&target.health_check_path),
                    }],
                    "tags": tags_value(&target.tags),
                }),
            ),
            Attributes::Listener(listener) => self.add(
                kind_type,
                name,
                json!({
                    "load_balancer_arn": self.id(&listener.load_balancer)?,
                    "port": listener.port,
                    "protocol": literal(&listener.protocol),
                    "default_action": [{
                        "type": "forward",
                        "target_group_arn": self.id(&listener.target_group)?,
                    }],
                }),
            ),
            Attributes::DnsRecord(record) => self.add(
                kind_type,
                name,
                json!({
                    "zone_id": self.id(&record.zone)?,
                    "name": literal(record.name.trim_end_matches('.')),
                    "type": literal(&record.record_type),
                    "alias": [{
                        "name": self.id(&record.alias_target)?,
                        "zone_id": self.id(&record.alias_zone)?,
                        "evaluate_target_health": false,
                    }],
                }),
            ),
            // A private zone: the `vpc` block makes it one (and associates
            // the VPC at creation, as `CreateHostedZone` does).
            // It waits for what it leads to (`serves`: the internal load
            // balancer, which `aws_lb` waits to be active, its listener and
            // target groups), which no attribute refers to, and for the
            // auto scaling groups that register the control plane with
            // those target groups, so on a running cluster the instances
            // are registered before the zone shadows the public record.
            // What Terraform cannot say is skiff's own wait for a healthy
            // target (`operations::dns` in skiff-providers), which waits
            // only when the API is already served: `aws_autoscaling_group`'s
            // `wait_for_elb_capacity` would also hold a new cluster's apply
            // until its first API server is up, and every later change of
            // the group, so the zone may be made while the targets are
            // still `initial` (seconds to minutes).
            Attributes::HostedZone(zone) => {
                let mut body = json!({
                    "name": literal(&zone.name),
                    "comment": literal(&zone.comment),
                    "vpc": [{ "vpc_id": self.id(&zone.vpc)? }],
                });
                let served: Vec<&ResourceKey> = zone
                    .serves
                    .iter()
                    .filter_map(|id| match id {
                        Id::Ref(reference) => Some(&reference.key),
                        _ => None,
                    })
                    .collect();
                let registering = self.model.resources.iter().filter(|resource| {
                    matches!(&resource.attributes, Attributes::AutoScalingGroup(group)
                        if group.target_groups.iter().any(|target| matches!(target,
                            Id::Ref(reference) if served.contains(&&reference.key)
                                && self.kinds.get(&reference.key)
                                    == Some(&ResourceKind::TargetGroup))))
                });
                let after: Vec<String> = served
                    .iter()
                    .copied()
                    .chain(registering.map(|resource| &resource.key))
                    .filter_map(|key| self.kinds.get(key).map(|kind| address(*kind, key)))
                    .collect();
                if !after.is_empty() {
                    body["depends_on"] = json!(after);
                }
                self.add(kind_type, name, body)
            }
            Attributes::LifecycleHook(hook) => self.add(
                kind_type,
                name,
                json!({
                    "name": literal(&hook.name),
                    "autoscaling_group_name": self.id(&hook.group)?,
                    "lifecycle_transition": literal(&hook.transition),
                    "heartbeat_timeout": hook.heartbeat_timeout,
                    "default_result": literal(&hook.default_result),
                }),
            ),
            Attributes::SqsQueue(queue) => self.add(
                kind_type,
                name,
                json!({
                    "name": literal(&queue.name),
                    "message_retention_seconds": queue.message_retention_seconds,
                    "sqs_managed_sse_enabled": queue.sqs_managed_sse,
                    "policy": literal(&queue.policy),
                    "tags": tags_value(&queue.tags),
                }),
            ),
            Attributes::EventRule(rule) => {
                self.add(
                    kind_type,
                    name.clone(),
                    json!({
                        "name": literal(&rule.name),
                        "description": literal(&rule.description),
                        "event_pattern": literal(&rule.event_pattern),
                        "tags": tags_value(&rule.tags),
                    }),
                )?;
                self.add(
                    "aws_cloudwatch_event_target",
                    name,
                    json!({
                        "rule": format!("${{{}.name}}", address(kind, key)),
                        "target_id": crate::desired::node_termination::RULE_TARGET_ID,
                        "arn": self.id(&rule.target)?,
                    }),
                )
            }
        }
    }

    fn ingress_rule(&self, group: &Value, rule: &IngressRule) -> Result<Value, PlanError> {
        let mut body = json!({
            "security_group_id": group,
            "ip_protocol": literal(&rule.protocol),
        });
        // "All traffic" and protocols without ports take none; ICMP's are
        // its type and code (-1: all), which the resource wants given.
        if !(rule.from_port == -1 && rule.to_port == -1) || rule.protocol == "icmp" {
            body["from_port"] = json!(rule.from_port);
            body["to_port"] = json!(rule.to_port);
        }
        match &rule.source {
            RuleSource::Cidr(cidr) => body["cidr_ipv4"] = json!(literal(cidr)),
            RuleSource::Group(source) => body["referenced_security_group_id"] = self.id(source)?,
        }
        Ok(body)
    }

    fn launch_template(
        &mut self,
        key: &ResourceKey,
        template: &LaunchTemplateAttributes,
    ) -> Result<Value, PlanError> {
        let file = format!("{DATA_DIR}/{}.user-data", file_name(key.name()));
        // What EC2 gets: the loader, whose script skiff writes to the state
        // store with the Terraform files (`DesiredModel::bootstrap_scripts`).
        let user_data = skiff_templates::ec2_user_data(&template.user_data)
            .map_err(|source| PlanError::Template {
                group: key.name().to_string(),
                source,
            })?
            .text;
        // EC2Launch reads a Windows node's user-data uncompressed.
        let encode = if skiff_templates::windows::is_powershell(&user_data) {
            "base64encode"
        } else {
            "base64gzip"
        };
        self.files.insert(file.clone(), user_data.into_bytes());
        let path = format!("${{path.module}}/{file}");
        let user_data = if template.user_data_substitutions.is_empty() {
            format!("${{{encode}(file(\"{path}\"))}}")
        } else {
            let mut text = format!("file(\"{path}\")");
            for (placeholder, value) in &template.user_data_substitutions {
                text = format!(
                    "replace({text}, {}, {})",
                    quoted(placeholder),
                    self.id_expression(value)?
                );
            }
            format!("${{{encode}({text})}}")
        };
        let volume = &template.root_volume;
        let mut ebs = json!({
            "volume_size": volume.size,
            "volume_type": literal(&volume.volume_type),
            "encrypted": volume.encrypted.to_string(),
            "delete_on_termination": "true",
        });
        if let Some(iops) = volume.iops {
            ebs["iops"] = json!(iops);
        }
        if let Some(throughput) = volume.throughput {
            ebs["throughput"] = json!(throughput);
        }
        let mut body = json!({
            "name": literal(&template.name),
            "image_id": literal(&template.image_id),
            "instance_type": literal(&template.instance_type),
            "vpc_security_group_ids": self.ids(&template.security_groups)?,
            "user_data": user_data,
            "update_default_version": true,
            "block_device_mappings": [{
                "device_name": literal(&volume.device_name),
                "ebs": [ebs],
            }],
            "metadata_options": [{
                "http_endpoint": "enabled",
                "http_tokens": if template.http_tokens_required { "required" } else { "optional" },
                "http_put_response_hop_limit": template.http_put_response_hop_limit,
            }],
            "tag_specifications": [
                { "resource_type": "instance", "tags": tags_value(&template.instance_tags) },
                { "resource_type": "volume", "tags": tags_value(&template.instance_tags) },
            ],
            "tags": tags_value(&template.tags),
        });
        if let Some(address) = &template.private_ip {
            // As the provider creates it: the fixed address on the primary
            // interface, which then carries the security groups.
            let groups = body["vpc_security_group_ids"].take();
            if let Some(map) = body.as_object_mut() {
                map.remove("vpc_security_group_ids");
            }
            body["network_interfaces"] = json!([{
                "device_index": 0,
                "private_ip_address": literal(address),
                "security_groups": groups,
                "delete_on_termination": "true",
            }]);
        }
        if let Some(key_name) = &template.key_name {
            body["key_name"] = self.id(key_name)?;
        }
        if let Some(profile) = &template.instance_profile {
            body["iam_instance_profile"] = json!([{ "arn": self.id(profile)? }]);
        }
        if template.spot {
            let mut market = json!({ "market_type": "spot" });
            if let Some(price) = &template.spot_max_price {
                market["spot_options"] = json!([{ "max_price": literal(price) }]);
            }
            body["instance_market_options"] = json!([market]);
        }
        Ok(body)
    }

    fn auto_scaling_group(&self, group: &AutoScalingGroupAttributes) -> Result<Value, PlanError> {
        let template = self.id(&group.launch_template)?;
        let version = self.id(&group.launch_template_version)?;
        let tags: Vec<Value> = group
            .tags
            .iter()
            .map(|(key, value)| {
                json!({ "key": literal(key), "value": literal(value), "propagate_at_launch": true })
            })
            .collect();
        let mut body = json!({
            "name": literal(&group.name),
            "min_size": group.min_size,
            "max_size": group.max_size,
            "vpc_zone_identifier": self.ids(&group.subnets)?,
            "tag": tags,
            "health_check_type": literal(&group.health_check_type),
            "health_check_grace_period": group.health_check_grace_period,
            // Like the direct apply: do not wait for instances to come up.
            "wait_for_capacity_timeout": "0",
        });
        if !group.target_groups.is_empty() {
            body["target_group_arns"] = self.ids(&group.target_groups)?;
        }
        match &group.mixed_instances {
            None => {
                body["launch_template"] = json!([{ "id": template, "version": version }]);
            }
            Some(mixed) => {
                let overrides: Vec<Value> = mixed
                    .instance_types
                    .iter()
                    .map(|instance_type| json!({ "instance_type": literal(instance_type) }))
                    .collect();
                body["mixed_instances_policy"] = json!([{
                    "launch_template": [{
                        "launch_template_specification": [{
                            "launch_template_id": template,
                            "version": version,
                        }],
                        "override": overrides,
                    }],
                    "instances_distribution": [{
                        "on_demand_base_capacity": mixed.on_demand_base_capacity,
                        "on_demand_percentage_above_base_capacity": mixed.on_demand_percentage_above_base,
                        "spot_allocation_strategy": literal(&mixed.spot_allocation_strategy),
                    }],
                }]);
            }
        }
        Ok(body)
    }
}

/// A file name from a group name: `[A-Za-z0-9._-]`, anything else as `_`.
fn file_name(text: &str) -> String {
    text.chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || matches!(character, '.' | '_' | '-') {
                character
            } else {
                '_'
            }
        })
        .collect()
}

/// `control_plane_tcp_6443_from_nodes`, `nodes_udp_30000_32767_from_10_0_0_0_16`,
/// `nodes_proto4_from_control_plane`: unique within a group because its
/// rules are.
fn rule_name(group: &str, rule: &IngressRule) -> String {
    let protocol = match rule.protocol.as_str() {
        "-1" => "all".to_string(),
        text if text.chars().all(|character| character.is_ascii_digit()) => format!("proto{text}"),
        text => identifier(text),
    };
    let ports = match (rule.from_port, rule.to_port) {
        (-1, -1) => String::new(),
        (from, to) if from == to => format!("_{from}"),
        (from, to) => format!("_{from}_{to}").replace('-', "m"),
    };
    let source = match &rule.source {
        RuleSource::Cidr(cidr) => identifier(cidr),
        RuleSource::Group(group) => Generator::name_of(group),
    };
    let source = source.trim_start_matches('_');
    format!("{group}_{protocol}{ports}_from_{source}")
}

/// The Terraform of a cluster's desired model, for a region.
pub fn generate(model: &DesiredModel, region: &str) -> Result<TerraformFiles, PlanError> {
    let mut generator = Generator {
        model,
        kinds: model
            .resources
            .iter()
            .map(|resource| (&resource.key, resource.kind()))
            .collect(),
        resources: BTreeMap::new(),
        files: BTreeMap::new(),
    };
    for resource in &generator.model.resources {
        generator.resource(&resource.key, &resource.attributes)?;
    }

    let cluster = &model.cluster;
    let mut default_tags = Tags::new();
    default_tags.insert(names::CLUSTER_TAG.to_string(), cluster.clone());
    default_tags.insert(names::ownership_tag(cluster), "owned".to_string());

    let mut outputs = Map::new();
    outputs.insert(
        "cluster_name".to_string(),
        json!({ "value": literal(cluster) }),
    );
    // The public API name's target, and the internal endpoint nodes use.
    for (output, load_balancer) in [
        (
            "api_load_balancer_dns_name",
            crate::desired::load_balancer::load_balancer_key(),
        ),
        (
            "api_internal_load_balancer_dns_name",
            crate::desired::load_balancer::internal_load_balancer_key(),
        ),
    ] {
        if generator.kinds.contains_key(&load_balancer) {
            outputs.insert(
                output.to_string(),
                json!({ "value": format!("${{{}.dns_name}}", address(ResourceKind::LoadBalancer, &load_balancer)) }),
            );
        }
    }
    // The private zone that answers `api.<cluster>` inside the VPC.
    let private_zone = crate::desired::dns::private_zone_key();
    if generator.kinds.contains_key(&private_zone) {
        outputs.insert(
            "api_private_zone_id".to_string(),
            json!({ "value": format!("${{{}.zone_id}}", address(ResourceKind::HostedZone, &private_zone)) }),
        );
    }

    let resources: Map<String, Value> = generator
        .resources
        .into_iter()
        .map(|(kind, named)| (kind, Value::Object(named.into_iter().collect())))
        .collect();
    let configuration = json!({
        "//": format!(
            "Generated by skiff from the spec of cluster {cluster}. Do not edit: change the spec and run `skiff update cluster {cluster} --target terraform --out DIR` again."
        ),
        "terraform": {
            "required_version": TERRAFORM_VERSION,
            "required_providers": {
                "aws": { "source": PROVIDER_SOURCE, "version": PROVIDER_VERSION }
            }
        },
        "provider": {
            "aws": {
                "region": literal(region),
                "default_tags": [{ "tags": tags_value(&default_tags) }],
            }
        },
        "resource": resources,
        "output": outputs,
    });
    let mut text = serde_json::to_string_pretty(&sorted(configuration))
        .map_err(|cause| error(cause.to_string()))?;
    text.push('\n');
    let mut files = generator.files;
    files.insert(MAIN_FILE.to_string(), text.into_bytes());
    Ok(TerraformFiles { files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_terraform_names() {
        assert_eq!(identifier("nodes-us-east-1a"), "nodes_us_east_1a");
        assert_eq!(identifier(""), "main");
        assert_eq!(identifier("10.0.0.0/16"), "_10_0_0_0_16");
        assert_eq!(
            address(
                ResourceKind::AutoScalingGroup,
                &ResourceKey::new(ResourceKind::AutoScalingGroup, "nodes-us-east-1a")
            ),
            "aws_autoscaling_group.nodes_us_east_1a"
        );
    }

    #[test]
    fn literals_are_not_templates() {
        assert_eq!(literal("a ${b} %{c}"), "a $${b} %%{c}");
        assert_eq!(quoted("say \"hi\""), "\"say \\\"hi\\\"\"");
    }

    #[test]
    fn rule_names_are_readable() {
        let rule = IngressRule {
            protocol: "tcp".into(),
            from_port: 30000,
            to_port: 32767,
            source: RuleSource::Cidr("10.0.0.0/16".into()),
        };
        assert_eq!(
            rule_name("nodes", &rule),
            "nodes_tcp_30000_32767_from_10_0_0_0_16"
        );
        let ipip = IngressRule {
            protocol: "4".into(),
            from_port: -1,
            to_port: -1,
            source: RuleSource::Group(
                ResourceKey::new(ResourceKind::SecurityGroup, "control-plane").output(Output::Id),
            ),
        };
        assert_eq!(rule_name("nodes", &ipip), "nodes_proto4_from_control_plane");
    }
}
