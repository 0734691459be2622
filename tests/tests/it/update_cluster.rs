//! Acceptance tests of "update cluster": the real `skiff` binary builds,
//! changes, repairs and deletes clusters against a local AWS endpoint, and
//! every claim is checked by describing the endpoint directly through the
//! AWS SDK, never through skiff's own state store.
//!
//! Each test starts its own endpoint: Route53 zones and EC2 resources are
//! global to a server, and several tests count the calls skiff makes.
//!
//! What each test pins:
//! - an HA private cluster: the preview lists every resource and changes
//!   nothing; `--yes` builds exactly that (network, security, IAM, compute,
//!   load balancer, DNS); the next plan is empty;
//! - a public single-zone cluster and a gossip cluster: their topology, and
//!   no Route53 call at all for gossip, whose nodes get the internal NLB's
//!   DNS name;
//! - a machine-type change: a new launch-template version the group points
//!   at, and a rolling update named in the plan;
//! - scaling: only the auto scaling group changes;
//! - drift: a revoked rule and a resized group are planned and repaired;
//! - a saved plan made stale by someone else's apply is refused;
//! - delete: nothing tagged for the cluster is left, neighbours untouched;
//! - a missing hosted zone, unknown image or missing shared subnet stops
//!   the apply before any change;
//! - no instance launches before the cluster's PKI is in the store, and a
//!   PKI that cannot be made ready stops only the auto scaling groups.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use aws_sdk_ec2::types::Filter;
use base64::Engine;
use common::cluster::ClusterFixture;
use serde_json::Value;
use skiff_tests::{SkiffOutput, Stats, HA_PRIVATE_CLUSTER};

/// The newest Ubuntu 24.04 amd64 image in `tests/harness/amis.json`: what
/// the default `spec.image` pattern must resolve to.
const NEWEST_NOBLE_AMD64: &str = "ami-0a9f8e7d6c5b40610";
const THREE_ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
/// Services whose mutating calls change the cluster's cloud resources (S3
/// is the state store: its lock and state writes are expected).
const CLOUD_SERVICES: [&str; 5] = [
    "ec2",
    "elasticloadbalancing",
    "autoscaling",
    "iam",
    "route53",
];

// --- fixtures ----------------------------------------------------------------

/// What only these tests read from the endpoint.
impl ClusterFixture {
    /// The filter `tag:kubernetes.io/cluster/<cluster>` = `owned`.
    fn owned(&self) -> Filter {
        Filter::builder()
            .name(format!("tag:kubernetes.io/cluster/{}", self.cluster))
            .values("owned")
            .build()
    }

    /// The cluster's auto scaling groups by name.
    async fn auto_scaling_groups(
        &self,
    ) -> BTreeMap<String, aws_sdk_autoscaling::types::AutoScalingGroup> {
        let tag = format!("kubernetes.io/cluster/{}", self.cluster);
        let found = self
            .clients
            .autoscaling
            .describe_auto_scaling_groups()
            .send()
            .await
            .expect("describe auto scaling groups");
        found
            .auto_scaling_groups()
            .iter()
            .filter(|group| {
                group.tags().iter().any(|candidate| {
                    candidate.key() == Some(tag.as_str()) && candidate.value() == Some("owned")
                })
            })
            .map(|group| {
                (
                    group
                        .auto_scaling_group_name()
                        .unwrap_or_default()
                        .to_owned(),
                    group.clone(),
                )
            })
            .collect()
    }

    async fn auto_scaling_group(
        &self,
        group: &str,
    ) -> aws_sdk_autoscaling::types::AutoScalingGroup {
        let name = self.group_resource(group);
        self.auto_scaling_groups()
            .await
            .remove(&name)
            .unwrap_or_else(|| panic!("no auto scaling group {name}"))
    }

    /// The data of one version of a launch template.
    async fn launch_template_data(
        &self,
        id: &str,
        version: &str,
    ) -> aws_sdk_ec2::types::ResponseLaunchTemplateData {
        let found = self
            .clients
            .ec2
            .describe_launch_template_versions()
            .launch_template_id(id)
            .versions(version)
            .send()
            .await
            .expect("describe launch template versions");
        found
            .launch_template_versions()
            .first()
            .and_then(|version| version.launch_template_data())
            .unwrap_or_else(|| panic!("no data for version {version} of {id}"))
            .clone()
    }

    /// The security group of a role (`control-plane`, `nodes`,
    /// `api-load-balancer`) by its resource tag.
    async fn security_group(&self, role: &str) -> aws_sdk_ec2::types::SecurityGroup {
        let found = self
            .clients
            .ec2
            .describe_security_groups()
            .filters(self.owned())
            .filters(
                Filter::builder()
                    .name("tag:skiff.dev/resource")
                    .values(format!("security-group/{role}"))
                    .build(),
            )
            .send()
            .await
            .expect("describe security groups");
        assert_eq!(
            found.security_groups().len(),
            1,
            "security group {role}: {:?}",
            found.security_groups()
        );
        found.security_groups()[0].clone()
    }
}

// --- small helpers -------------------------------------------------------------

fn ec2_tag<'a>(tags: &'a [aws_sdk_ec2::types::Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|tag| tag.key() == Some(key))
        .and_then(|tag| tag.value())
}

/// The keys of a plan's changes.
fn change_keys(plan: &Value) -> BTreeSet<String> {
    plan["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("a plan has a changes list: {plan:#}"))
        .iter()
        .map(|change| change["key"].as_str().expect("a key").to_owned())
        .collect()
}

/// The change of `key` in a plan.
fn change<'a>(plan: &'a Value, key: &str) -> &'a Value {
    plan["changes"]
        .as_array()
        .and_then(|changes| changes.iter().find(|change| change["key"] == key))
        .unwrap_or_else(|| panic!("no change of {key} in the plan: {:?}", change_keys(plan)))
}

/// The change of `field` within a resource change.
fn field<'a>(change: &'a Value, field: &str) -> &'a Value {
    change["fields"]
        .as_array()
        .and_then(|fields| fields.iter().find(|candidate| candidate["field"] == field))
        .unwrap_or_else(|| panic!("no field {field} in {change:#}"))
}

/// Mutating calls to the services that hold cluster resources.
fn cloud_mutations(stats: &Stats) -> BTreeMap<String, u64> {
    stats
        .mutating_calls
        .iter()
        .filter(|(call, _)| {
            CLOUD_SERVICES
                .iter()
                .any(|service| call.starts_with(&format!("{service}:")))
        })
        .map(|(call, count)| (call.clone(), *count))
        .collect()
}

/// Every `route53:*` call.
fn route53_calls(stats: &Stats) -> BTreeMap<String, u64> {
    stats
        .calls
        .iter()
        .filter(|(call, _)| call.starts_with("route53:"))
        .map(|(call, count)| (call.clone(), *count))
        .collect()
}

/// Decodes IAM's policy documents (URL-encoded on the wire; some SDK paths
/// hand them over already decoded).
fn policy_json(document: &str) -> Value {
    let text = if document.trim_start().starts_with('{') {
        document.to_owned()
    } else {
        let bytes = document.as_bytes();
        let mut decoded = Vec::with_capacity(bytes.len());
        let mut index = 0;
        while index < bytes.len() {
            let escape = (bytes[index] == b'%')
                .then(|| document.get(index + 1..index + 3))
                .flatten()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            match escape {
                Some(byte) => {
                    decoded.push(byte);
                    index += 3;
                }
                None => {
                    decoded.push(if bytes[index] == b'+' {
                        b' '
                    } else {
                        bytes[index]
                    });
                    index += 1;
                }
            }
        }
        String::from_utf8(decoded).expect("UTF-8 policy")
    };
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("policy is not JSON ({error}): {text}"))
}

/// A JSON value that may be a string or a list of strings, as a list.
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// The user-data of a launch-template version, decoded from base64.
fn user_data_text(data: &aws_sdk_ec2::types::ResponseLaunchTemplateData) -> String {
    let encoded = data.user_data().expect("the template has user-data");
    skiff_templates::decode_user_data(encoded).expect("user-data is base64 of a gzip")
}

/// The user-data and the decoded text of every file it writes, so that a
/// search also sees inside `gz+b64`-encoded `write_files`.
fn user_data_with_files(user_data: &str) -> String {
    let mut all = user_data.to_owned();
    let document: serde_norway::Value =
        serde_norway::from_str(user_data).expect("the cloud-config is YAML");
    let files = document
        .get("write_files")
        .and_then(|files| files.as_sequence())
        .cloned()
        .unwrap_or_default();
    for file in files {
        let content = file
            .get("content")
            .and_then(|c| c.as_str())
            .unwrap_or_default();
        let encoding = file
            .get("encoding")
            .and_then(|e| e.as_str())
            .unwrap_or_default();
        let text = match encoding {
            "" | "text/plain" => content.to_owned(),
            "b64" | "base64" => String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(content.split_whitespace().collect::<String>())
                    .expect("b64 file"),
            )
            .expect("UTF-8 file"),
            "gz+b64" | "gzip+base64" | "gz+base64" | "gzip+b64" => {
                let compressed = base64::engine::general_purpose::STANDARD
                    .decode(content.split_whitespace().collect::<String>())
                    .expect("gz+b64 file");
                let mut text = String::new();
                flate2::read::GzDecoder::new(compressed.as_slice())
                    .read_to_string(&mut text)
                    .expect("gzip file");
                text
            }
            other => panic!("unexpected write_files encoding {other:?}"),
        };
        all.push('\n');
        all.push_str(&text);
    }
    all
}

// --- 1. the HA private cluster ---------------------------------------------------

/// Every resource key an HA private cluster over three zones needs.
fn ha_private_keys(groups: &[String]) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = [
        "vpc",
        "internet-gateway",
        "route-table/public",
        "security-group/control-plane",
        "security-group/nodes",
        "security-group/api-load-balancer",
        "security-group-rules/control-plane",
        "security-group-rules/nodes",
        "security-group-rules/api-load-balancer",
        "security-group/api-internal-load-balancer",
        "security-group-rules/api-internal-load-balancer",
        "iam-role/control-plane",
        "iam-role/nodes",
        "instance-profile/control-plane",
        "instance-profile/nodes",
        "load-balancer/api",
        "target-group/api",
        "listener/api",
        "load-balancer/api-internal",
        "target-group/api-internal",
        "listener/api-internal",
        "dns-record/api",
        // `api.<cluster>` inside the VPC: the internal load balancer.
        "hosted-zone/api-internal",
        "dns-record/api-internal",
        // The node termination handler (on by default).
        "sqs-queue/node-termination",
        "event-rule/asg-lifecycle",
        "event-rule/spot-interruption",
        "event-rule/rebalance-recommendation",
        "event-rule/instance-state-change",
        // The addons a cluster gets by default (spec.addons).
        "addon/cloud-controller-manager",
        "addon/ebs-csi-driver",
        "addon/metrics-server",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for zone in THREE_ZONES {
        keys.insert(format!("subnet/{zone}"));
        keys.insert(format!("subnet/utility-{zone}"));
        keys.insert(format!("elastic-ip/{zone}"));
        keys.insert(format!("nat-gateway/{zone}"));
        keys.insert(format!("route-table/private-{zone}"));
    }
    for group in groups {
        keys.insert(format!("launch-template/{group}"));
        keys.insert(format!("autoscaling-group/{group}"));
        keys.insert(format!("lifecycle-hook/{group}"));
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_private_cluster_is_previewed_without_changes_then_built_completely() {
    let fixture = ClusterFixture::new("c1.example.com").await;
    let zone_id = fixture.create_zone("example.com").await;
    fixture.create_cluster(&HA_PRIVATE_CLUSTER);
    let control_plane_groups: Vec<String> = THREE_ZONES
        .iter()
        .map(|zone| format!("control-plane-{zone}"))
        .collect();
    let node_groups: Vec<String> = THREE_ZONES
        .iter()
        .map(|zone| format!("nodes-{zone}"))
        .collect();
    let groups: Vec<String> = control_plane_groups
        .iter()
        .chain(&node_groups)
        .cloned()
        .collect();

    // The preview: every resource, and not one mutating call.
    fixture.aws.reset_stats();
    let plan = fixture.plan_json();
    let table = fixture.skiff(["update", "cluster", &fixture.cluster]);
    table.assert_success();
    let stats = fixture.aws.stats();
    assert_eq!(
        stats.mutating_total(),
        0,
        "a preview changed something: {:?}",
        stats.mutating_calls
    );
    assert!(
        stats.total > 0,
        "the preview read nothing from AWS: {stats:?}"
    );

    let expected = ha_private_keys(&groups);
    assert_eq!(change_keys(&plan), expected, "the plan's resources");
    assert_eq!(plan["cluster"], "c1.example.com");
    assert_eq!(plan["format"], 1);
    assert_eq!(plan["summary"]["create"], expected.len());
    for key in ["update", "replace", "delete"] {
        assert_eq!(plan["summary"][key], 0, "summary.{key}");
    }
    for change in plan["changes"].as_array().expect("changes") {
        assert_eq!(change["action"], "create", "{change:#}");
    }
    for key in &expected {
        assert!(
            table.stdout.contains(key.as_str()),
            "the table preview lacks {key}\n{table}"
        );
    }

    // Apply.
    fixture.apply();
    let ec2 = &fixture.clients.ec2;
    let cluster = fixture.cluster.as_str();

    // VPC.
    let vpcs = ec2
        .describe_vpcs()
        .filters(fixture.owned())
        .send()
        .await
        .expect("describe vpcs");
    assert_eq!(vpcs.vpcs().len(), 1, "{:?}", vpcs.vpcs());
    let vpc = &vpcs.vpcs()[0];
    let vpc_id = vpc.vpc_id().expect("vpc id").to_owned();
    assert_eq!(vpc.cidr_block(), Some("10.0.0.0/16"));
    assert_eq!(ec2_tag(vpc.tags(), "KubernetesCluster"), Some(cluster));
    assert_eq!(ec2_tag(vpc.tags(), "skiff.dev/resource"), Some("vpc"));

    // Subnets: as the spec says (zone, range), tagged with their keys.
    let spec = fixture.skiff(["get", "cluster", cluster, "-o", "json"]);
    spec.assert_success();
    let spec = spec.stdout_json();
    let wanted: BTreeMap<String, (String, String)> = spec["spec"]["subnets"]
        .as_array()
        .expect("spec.subnets")
        .iter()
        .map(|subnet| {
            (
                subnet["name"].as_str().expect("name").to_owned(),
                (
                    subnet["zone"].as_str().expect("zone").to_owned(),
                    subnet["cidr"].as_str().expect("cidr").to_owned(),
                ),
            )
        })
        .collect();
    assert_eq!(wanted.len(), 6, "{spec:#}");
    let subnets = ec2
        .describe_subnets()
        .filters(Filter::builder().name("vpc-id").values(&vpc_id).build())
        .send()
        .await
        .expect("describe subnets");
    let mut subnet_ids: BTreeMap<String, String> = BTreeMap::new();
    let mut found: BTreeMap<String, (String, String)> = BTreeMap::new();
    for subnet in subnets.subnets() {
        let key = ec2_tag(subnet.tags(), "skiff.dev/resource").expect("subnet resource tag");
        let name = key
            .strip_prefix("subnet/")
            .expect("a subnet key")
            .to_owned();
        assert_eq!(ec2_tag(subnet.tags(), "KubernetesCluster"), Some(cluster));
        subnet_ids.insert(name.clone(), subnet.subnet_id().expect("id").to_owned());
        found.insert(
            name,
            (
                subnet.availability_zone().expect("zone").to_owned(),
                subnet.cidr_block().expect("cidr").to_owned(),
            ),
        );
    }
    assert_eq!(found, wanted, "subnets: (zone, cidr) by name");
    for zone in THREE_ZONES {
        assert_eq!(wanted[zone].0, zone);
        assert_eq!(wanted[&format!("utility-{zone}")].0, zone);
    }
    let utility_ids: BTreeSet<String> = THREE_ZONES
        .iter()
        .map(|zone| subnet_ids[&format!("utility-{zone}")].clone())
        .collect();

    // Internet gateway attached to the VPC.
    let gateways = ec2
        .describe_internet_gateways()
        .filters(fixture.owned())
        .send()
        .await
        .expect("describe internet gateways");
    assert_eq!(gateways.internet_gateways().len(), 1);
    let gateway = &gateways.internet_gateways()[0];
    let gateway_id = gateway.internet_gateway_id().expect("igw id").to_owned();
    assert_eq!(
        gateway
            .attachments()
            .first()
            .and_then(|attachment| attachment.vpc_id()),
        Some(vpc_id.as_str())
    );

    // NAT gateways: one per zone, available, in that zone's utility subnet,
    // each with one of the cluster's Elastic IPs.
    let addresses = ec2
        .describe_addresses()
        .filters(fixture.owned())
        .send()
        .await
        .expect("describe addresses");
    let allocations: BTreeSet<String> = addresses
        .addresses()
        .iter()
        .filter_map(|address| address.allocation_id().map(str::to_owned))
        .collect();
    assert_eq!(allocations.len(), 3, "{:?}", addresses.addresses());
    let nats = ec2
        .describe_nat_gateways()
        .filter(Filter::builder().name("vpc-id").values(&vpc_id).build())
        .send()
        .await
        .expect("describe nat gateways");
    assert_eq!(nats.nat_gateways().len(), 3, "{:?}", nats.nat_gateways());
    let mut nat_by_zone: BTreeMap<String, String> = BTreeMap::new();
    for nat in nats.nat_gateways() {
        assert_eq!(
            nat.state(),
            Some(&aws_sdk_ec2::types::NatGatewayState::Available),
            "{nat:?}"
        );
        let subnet = nat.subnet_id().expect("nat subnet");
        let zone = THREE_ZONES
            .iter()
            .find(|zone| subnet_ids[&format!("utility-{zone}")] == subnet)
            .unwrap_or_else(|| panic!("NAT gateway {nat:?} is not in a utility subnet"));
        let allocation = nat
            .nat_gateway_addresses()
            .first()
            .and_then(|address| address.allocation_id())
            .expect("an Elastic IP");
        assert!(
            allocations.contains(allocation),
            "{allocation} is not the cluster's"
        );
        nat_by_zone.insert(
            (*zone).to_owned(),
            nat.nat_gateway_id().expect("id").to_owned(),
        );
    }
    assert_eq!(
        nat_by_zone.len(),
        3,
        "one NAT gateway per zone: {nat_by_zone:?}"
    );

    // Route tables: public (to the IGW, utility subnets), one private per
    // zone (to that zone's NAT, that zone's private subnet).
    let tables = ec2
        .describe_route_tables()
        .filters(fixture.owned())
        .send()
        .await
        .expect("describe route tables");
    assert_eq!(
        tables.route_tables().len(),
        4,
        "{:?}",
        tables.route_tables()
    );
    let mut associated: Vec<String> = Vec::new();
    for table in tables.route_tables() {
        let key = ec2_tag(table.tags(), "skiff.dev/resource").expect("route table key");
        let default_route = table
            .routes()
            .iter()
            .find(|route| route.destination_cidr_block() == Some("0.0.0.0/0"))
            .unwrap_or_else(|| panic!("{key} has no default route: {table:?}"));
        let subnets: BTreeSet<String> = table
            .associations()
            .iter()
            .filter(|association| !association.main().unwrap_or(false))
            .filter_map(|association| association.subnet_id().map(str::to_owned))
            .collect();
        associated.extend(subnets.iter().cloned());
        if key == "route-table/public" {
            assert_eq!(
                default_route.gateway_id(),
                Some(gateway_id.as_str()),
                "{key}"
            );
            assert_eq!(subnets, utility_ids, "{key} associations");
        } else {
            let zone = key
                .strip_prefix("route-table/private-")
                .unwrap_or_else(|| panic!("unexpected route table {key}"));
            assert_eq!(
                default_route.nat_gateway_id(),
                Some(nat_by_zone[zone].as_str()),
                "{key} routes through its zone's NAT gateway"
            );
            assert_eq!(
                subnets,
                BTreeSet::from([subnet_ids[zone].clone()]),
                "{key} associations"
            );
        }
    }
    associated.sort();
    let mut all_subnets: Vec<String> = subnet_ids.values().cloned().collect();
    all_subnets.sort();
    assert_eq!(associated, all_subnets, "every subnet in exactly one table");

    // Security groups and their rules.
    let control_plane = fixture.security_group("control-plane").await;
    let nodes = fixture.security_group("nodes").await;
    let balancer_group = fixture.security_group("api-load-balancer").await;
    let allows = |group: &aws_sdk_ec2::types::SecurityGroup, port: i32, source: &str| {
        group.ip_permissions().iter().any(|permission| {
            permission.ip_protocol() == Some("tcp")
                && permission.from_port().unwrap_or(-1) <= port
                && permission.to_port().unwrap_or(-1) >= port
                && (permission
                    .user_id_group_pairs()
                    .iter()
                    .any(|pair| pair.group_id() == Some(source))
                    || permission
                        .ip_ranges()
                        .iter()
                        .any(|range| range.cidr_ip() == Some(source)))
        })
    };
    let node_group_id = nodes.group_id().expect("id");
    let control_plane_id = control_plane.group_id().expect("id");
    let balancer_group_id = balancer_group.group_id().expect("id");
    assert!(
        allows(&control_plane, 6443, node_group_id),
        "6443 from nodes: {control_plane:?}"
    );
    assert!(
        allows(&control_plane, 6443, balancer_group_id),
        "6443 from the NLB: {control_plane:?}"
    );
    assert!(
        allows(&control_plane, 2379, control_plane_id),
        "etcd between members"
    );
    assert!(
        allows(&nodes, 10250, control_plane_id),
        "kubelet from the control plane: {nodes:?}"
    );
    assert!(
        allows(&balancer_group, 443, "0.0.0.0/0"),
        "443 to the NLB: {balancer_group:?}"
    );
    assert!(
        !allows(&nodes, 6443, "0.0.0.0/0"),
        "nodes do not serve the API to the world"
    );
    for group in [&control_plane, &nodes, &balancer_group] {
        assert_eq!(group.vpc_id(), Some(vpc_id.as_str()));
    }

    // IAM: roles and profiles under the cluster's path; S3 limited to the
    // cluster's prefix in the state store.
    let path = format!("/skiff/{cluster}/");
    let roles = fixture
        .clients
        .iam
        .list_roles()
        .path_prefix(&path)
        .send()
        .await
        .expect("list roles");
    let role_names: BTreeSet<String> = roles
        .roles()
        .iter()
        .map(|role| role.role_name().to_owned())
        .collect();
    assert_eq!(
        role_names,
        BTreeSet::from([
            format!("control-plane.{cluster}"),
            format!("nodes.{cluster}")
        ])
    );
    let object_prefix = format!("arn:aws:s3:::{}/{cluster}/", fixture.bucket);
    for role in roles.roles() {
        assert_eq!(role.path(), path);
        let policy = fixture
            .clients
            .iam
            .get_role_policy()
            .role_name(role.role_name())
            .policy_name("skiff")
            .send()
            .await
            .expect("get role policy");
        let document = policy_json(policy.policy_document());
        let statements = document["Statement"].as_array().expect("statements");
        let mut s3_statements = 0;
        for statement in statements {
            let actions = strings(&statement["Action"]);
            if !actions
                .iter()
                .any(|action| action.to_lowercase().starts_with("s3:"))
            {
                continue;
            }
            s3_statements += 1;
            assert!(
                !actions.iter().any(|action| action == "s3:*"),
                "{}: {statement}",
                role.role_name()
            );
            let resources = strings(&statement["Resource"]);
            assert!(!resources.is_empty(), "{statement}");
            // Exact objects, except the control plane's own etcd/ folder
            // (issue 16: leases and backups have names only the nodes
            // choose) and listing that folder and the keys it probes
            // (so that S3 answers 404 for a missing one), conditioned on
            // their prefixes.
            let etcd_objects = format!("{object_prefix}etcd/*");
            let control_plane = role.role_name().starts_with("control-plane.");
            for resource in resources {
                if actions == ["s3:ListBucket"] {
                    assert!(control_plane, "workers list nothing: {statement}");
                    assert_eq!(resource, format!("arn:aws:s3:::{}", fixture.bucket));
                    assert_eq!(
                        strings(&statement["Condition"]["StringLike"]["s3:prefix"]),
                        [
                            format!("{cluster}/etcd/*"),
                            format!("{cluster}/bootstrap/init-lock"),
                            format!("{cluster}/addons/*")
                        ],
                        "{statement}"
                    );
                    continue;
                }
                let exact = resource.starts_with(&object_prefix) && !resource.contains('*');
                let own_folder = control_plane && resource == etcd_objects;
                // Every node reads the bootstrap scripts (named by hash).
                let scripts =
                    resource == format!("{object_prefix}scripts/*") && actions == ["s3:GetObject"];
                // The control plane reads the addons' manifests and index
                // (named by addon), which it applies.
                let addons = control_plane
                    && resource == format!("{object_prefix}addons/*")
                    && actions == ["s3:GetObject"];
                assert!(
                    exact || own_folder || scripts || addons,
                    "{}: S3 access to {resource} outside {object_prefix}",
                    role.role_name()
                );
                if actions
                    .iter()
                    .any(|action| action == "s3:PutObject" || action == "s3:DeleteObject")
                {
                    assert_eq!(
                        resource,
                        etcd_objects,
                        "{}: writes outside etcd/",
                        role.role_name()
                    );
                }
            }
        }
        assert!(
            s3_statements > 0,
            "{}: no S3 statement: {document}",
            role.role_name()
        );
    }
    let profiles = fixture
        .clients
        .iam
        .list_instance_profiles()
        .path_prefix(&path)
        .send()
        .await
        .expect("list instance profiles");
    let mut profile_arns: BTreeMap<String, String> = BTreeMap::new();
    for profile in profiles.instance_profiles() {
        let roles: Vec<&str> = profile
            .roles()
            .iter()
            .map(|role| role.role_name())
            .collect();
        assert_eq!(
            roles,
            [profile.instance_profile_name()],
            "a profile wraps its role"
        );
        profile_arns.insert(
            profile.instance_profile_name().to_owned(),
            profile.arn().to_owned(),
        );
    }
    assert_eq!(
        profile_arns.keys().cloned().collect::<BTreeSet<_>>(),
        role_names
    );

    // Load balancer, target group, listener.
    let balancers = fixture
        .clients
        .elb
        .describe_load_balancers()
        .names("api-c1-example-com")
        .send()
        .await
        .expect("describe load balancers");
    assert_eq!(balancers.load_balancers().len(), 1);
    let balancer = &balancers.load_balancers()[0];
    let balancer_arn = balancer.load_balancer_arn().expect("arn");
    assert_eq!(
        balancer.scheme().map(|scheme| scheme.as_str()),
        Some("internet-facing")
    );
    assert_eq!(balancer.r#type().map(|kind| kind.as_str()), Some("network"));
    let balancer_subnets: BTreeSet<String> = balancer
        .availability_zones()
        .iter()
        .filter_map(|zone| zone.subnet_id().map(str::to_owned))
        .collect();
    assert_eq!(
        balancer_subnets, utility_ids,
        "a public NLB lives in the utility subnets"
    );
    let targets = fixture
        .clients
        .elb
        .describe_target_groups()
        .names("tcp-c1-example-com")
        .send()
        .await
        .expect("describe target groups");
    assert_eq!(targets.target_groups().len(), 1);
    let target = &targets.target_groups()[0];
    let target_arn = target.target_group_arn().expect("arn").to_owned();
    // The internal load balancer's target group, which nodes reach the
    // API through (tests/it/api_access.rs checks that path).
    let internal_target_arn = fixture
        .clients
        .elb
        .describe_target_groups()
        .names("tcp-int-c1-example-com")
        .send()
        .await
        .expect("describe the internal target group")
        .target_groups()[0]
        .target_group_arn()
        .expect("arn")
        .to_owned();
    assert_eq!(target.port(), Some(6443));
    assert_eq!(
        target.protocol().map(|protocol| protocol.as_str()),
        Some("TCP")
    );
    assert_eq!(target.vpc_id(), Some(vpc_id.as_str()));
    let listeners = fixture
        .clients
        .elb
        .describe_listeners()
        .load_balancer_arn(balancer_arn)
        .send()
        .await
        .expect("describe listeners");
    assert_eq!(
        listeners.listeners().len(),
        1,
        "{:?}",
        listeners.listeners()
    );
    let listener = &listeners.listeners()[0];
    assert_eq!(listener.port(), Some(443));
    assert_eq!(
        listener.protocol().map(|protocol| protocol.as_str()),
        Some("TCP")
    );
    let forward = listener
        .default_actions()
        .first()
        .expect("a default action");
    assert_eq!(forward.target_group_arn(), Some(target_arn.as_str()));

    // Launch templates and auto scaling groups, per group.
    let scaling_groups = fixture.auto_scaling_groups().await;
    assert_eq!(
        scaling_groups.keys().cloned().collect::<BTreeSet<_>>(),
        groups
            .iter()
            .map(|group| fixture.group_resource(group))
            .collect(),
    );
    for group in &groups {
        let is_control_plane = control_plane_groups.contains(group);
        let zone = group.rsplit('-').take(3).collect::<Vec<_>>();
        let zone = format!("{}-{}-{}", zone[2], zone[1], zone[0]);
        let (template_id, latest) = fixture.launch_template(group).await;
        let data = fixture
            .launch_template_data(&template_id, &latest.to_string())
            .await;
        let metadata = data.metadata_options().expect("metadata options");
        assert_eq!(
            metadata.http_tokens().map(|tokens| tokens.as_str()),
            Some("required"),
            "{group}: IMDSv2"
        );
        let user_data = user_data_text(&data);
        assert!(
            user_data.starts_with("#cloud-config"),
            "{group}: {}",
            &user_data[..user_data.len().min(200)]
        );
        assert_eq!(data.image_id(), Some(NEWEST_NOBLE_AMD64), "{group}");
        assert_eq!(
            data.instance_type().map(|kind| kind.as_str()),
            Some("t3.medium"),
            "{group}"
        );
        let role_group = if is_control_plane {
            control_plane_id
        } else {
            node_group_id
        };
        assert_eq!(
            data.security_group_ids(),
            [role_group.to_owned()],
            "{group}"
        );
        let profile = if is_control_plane {
            "control-plane"
        } else {
            "nodes"
        };
        assert_eq!(
            data.iam_instance_profile()
                .and_then(|profile| profile.arn()),
            Some(profile_arns[&format!("{profile}.{cluster}")].as_str()),
            "{group}"
        );

        let scaling_group = &scaling_groups[&fixture.group_resource(group)];
        let specification = scaling_group.launch_template().expect("a launch template");
        assert_eq!(
            specification.launch_template_id(),
            Some(template_id.as_str()),
            "{group}"
        );
        assert_eq!(
            specification.version(),
            Some(latest.to_string().as_str()),
            "{group}: an explicit version"
        );
        assert_eq!(scaling_group.min_size(), Some(1), "{group}");
        assert_eq!(scaling_group.max_size(), Some(1), "{group}");
        let subnet_name = zone.clone();
        assert_eq!(
            scaling_group.vpc_zone_identifier(),
            Some(subnet_ids[&subnet_name].as_str()),
            "{group} runs in its zone's private subnet"
        );
        let expected_targets: BTreeSet<String> = if is_control_plane {
            [target_arn.clone(), internal_target_arn.clone()].into()
        } else {
            BTreeSet::new()
        };
        assert_eq!(
            scaling_group
                .target_group_arns()
                .iter()
                .cloned()
                .collect::<BTreeSet<_>>(),
            expected_targets,
            "{group}"
        );
    }

    // The API record: an alias of the NLB.
    let records = fixture
        .clients
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .send()
        .await
        .expect("list records");
    let record = records
        .resource_record_sets()
        .iter()
        .find(|record| record.name().trim_end_matches('.') == "api.c1.example.com")
        .unwrap_or_else(|| panic!("no api record: {:?}", records.resource_record_sets()));
    assert_eq!(record.r#type().as_str(), "A");
    let alias = record.alias_target().expect("an alias record");
    assert_eq!(
        alias.dns_name().trim_end_matches('.').to_lowercase(),
        balancer.dns_name().expect("dns name").to_lowercase()
    );

    fixture.assert_no_changes();
}

// --- 2. public single zone, and gossip -------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_single_zone_cluster_puts_nodes_in_a_public_subnet_without_nat() {
    let fixture = ClusterFixture::new("c2.example.com").await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a"]);
    let plan = fixture.plan_json();
    let keys = change_keys(&plan);
    assert!(
        keys.contains("subnet/us-east-1a") && keys.contains("dns-record/api"),
        "{keys:?}"
    );
    assert!(
        !keys
            .iter()
            .any(|key| key.starts_with("nat-gateway/") || key.starts_with("elastic-ip/")),
        "a public cluster needs no NAT: {keys:?}"
    );
    fixture.apply();

    let ec2 = &fixture.clients.ec2;
    let subnets = ec2
        .describe_subnets()
        .filters(fixture.owned())
        .send()
        .await
        .expect("describe subnets");
    assert_eq!(subnets.subnets().len(), 1, "{:?}", subnets.subnets());
    let subnet = &subnets.subnets()[0];
    let subnet_id = subnet.subnet_id().expect("id");
    assert_eq!(subnet.availability_zone(), Some("us-east-1a"));
    assert_eq!(
        subnet.map_public_ip_on_launch(),
        Some(true),
        "nodes get public addresses"
    );
    let nats = ec2
        .describe_nat_gateways()
        .filter(fixture.owned())
        .send()
        .await
        .expect("describe nat gateways");
    assert!(nats.nat_gateways().is_empty(), "{:?}", nats.nat_gateways());
    let tables = ec2
        .describe_route_tables()
        .filters(fixture.owned())
        .send()
        .await
        .expect("describe route tables");
    assert_eq!(tables.route_tables().len(), 1);
    let table = &tables.route_tables()[0];
    assert!(table.routes().iter().any(|route| {
        route.destination_cidr_block() == Some("0.0.0.0/0")
            && route
                .gateway_id()
                .is_some_and(|gateway| gateway.starts_with("igw-"))
    }));
    assert!(table
        .associations()
        .iter()
        .any(|association| association.subnet_id() == Some(subnet_id)));
    for (name, group) in fixture.auto_scaling_groups().await {
        assert_eq!(group.vpc_zone_identifier(), Some(subnet_id), "{name}");
    }
    let balancers = fixture
        .clients
        .elb
        .describe_load_balancers()
        .names("api-c2-example-com")
        .send()
        .await
        .expect("describe load balancers");
    let balancer = &balancers.load_balancers()[0];
    assert_eq!(balancer.availability_zones().len(), 1);
    assert_eq!(
        balancer.availability_zones()[0].subnet_id(),
        Some(subnet_id)
    );
    // A DNS cluster's nodes reach the API by its Route53 name.
    let (template_id, latest) = fixture.launch_template("nodes-us-east-1a").await;
    let user_data = user_data_with_files(&user_data_text(
        &fixture
            .launch_template_data(&template_id, &latest.to_string())
            .await,
    ));
    assert!(user_data.contains("api.c2.example.com"), "{user_data}");
    fixture.assert_no_changes();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_cluster_never_calls_route53_and_its_nodes_get_the_internal_load_balancer_name() {
    let fixture = ClusterFixture::new("dev.k8s.local").await;
    // A zone the gossip cluster must ignore, even though it exists.
    fixture.create_zone("k8s.local").await;
    fixture.create_cluster(&["--zones", "us-east-1a"]);

    fixture.aws.reset_stats();
    let plan = fixture.plan_json();
    assert!(
        !change_keys(&plan).contains("dns-record/api"),
        "{:?}",
        change_keys(&plan)
    );
    fixture.apply();
    fixture.assert_no_changes();
    let stats = fixture.aws.stats();
    assert!(stats.count("ec2:CreateLaunchTemplate") > 0, "{stats:?}");
    assert_eq!(
        route53_calls(&stats),
        BTreeMap::new(),
        "a gossip cluster called Route53"
    );

    let balancers = fixture
        .clients
        .elb
        .describe_load_balancers()
        // The internal load balancer nodes use beside the public one
        // (tests/it/api_access.rs follows the whole path).
        .names("api-int-dev-k8s-local")
        .send()
        .await
        .expect("describe load balancers");
    let dns_name = balancers.load_balancers()[0]
        .dns_name()
        .expect("a DNS name")
        .to_lowercase();
    for group in ["control-plane-us-east-1a", "nodes-us-east-1a"] {
        let (template_id, latest) = fixture.launch_template(group).await;
        let user_data = user_data_with_files(&user_data_text(
            &fixture
                .launch_template_data(&template_id, &latest.to_string())
                .await,
        ));
        assert!(
            !user_data.contains("skiff.invalid"),
            "{group}: the API endpoint placeholder reached the node:\n{user_data}"
        );
        assert!(
            user_data.to_lowercase().contains(&dns_name),
            "{group}: the user-data does not name the NLB {dns_name}:\n{user_data}"
        );
    }
}

// --- 3. a machine type change ---------------------------------------------------

/// A public single-zone cluster (control-plane-us-east-1a, nodes-us-east-1a
/// with 2 nodes), built.
async fn applied_cluster(name: &str) -> ClusterFixture {
    let fixture = ClusterFixture::new(name).await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a", "--node-count", "2"]);
    fixture.apply();
    fixture
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_type_change_makes_a_new_template_version_the_group_uses() {
    let fixture = applied_cluster("c3.example.com").await;
    let (template_id, first_version) = fixture.launch_template("nodes-us-east-1a").await;

    fixture.edit_group("nodes-us-east-1a", |document| {
        document["spec"]["machineType"] = "m5.large".into();
    });
    let plan = fixture.plan_json();
    let template = change(&plan, "launch-template/nodes-us-east-1a");
    assert_eq!(template["action"], "update", "{template:#}");
    let instance_type = field(template, "instanceType");
    assert_eq!(instance_type["before"], "t3.medium");
    assert_eq!(instance_type["after"], "m5.large");
    let rolling: Vec<&Value> = plan["rollingUpdates"]
        .as_array()
        .expect("rollingUpdates")
        .iter()
        .collect();
    assert_eq!(rolling.len(), 1, "{rolling:?}");
    assert_eq!(rolling[0]["group"], "nodes-us-east-1a");
    assert!(
        strings(&rolling[0]["reasons"])
            .iter()
            .any(|reason| reason.contains("m5.large")),
        "{rolling:?}"
    );
    assert!(
        !change_keys(&plan)
            .iter()
            .any(|key| key.contains("control-plane")),
        "the control plane is untouched: {:?}",
        change_keys(&plan)
    );

    fixture.apply();
    let (same_id, latest) = fixture.launch_template("nodes-us-east-1a").await;
    assert_eq!(same_id, template_id, "a new version, not a new template");
    assert!(latest > first_version, "{latest} > {first_version}");
    let group = fixture.auto_scaling_group("nodes-us-east-1a").await;
    let specification = group.launch_template().expect("launch template");
    assert_eq!(
        specification.launch_template_id(),
        Some(template_id.as_str())
    );
    assert_eq!(specification.version(), Some(latest.to_string().as_str()));
    let data = fixture
        .launch_template_data(&template_id, &latest.to_string())
        .await;
    assert_eq!(
        data.instance_type().map(|kind| kind.as_str()),
        Some("m5.large")
    );
    let previous = fixture
        .launch_template_data(&template_id, &first_version.to_string())
        .await;
    assert_eq!(
        previous.instance_type().map(|kind| kind.as_str()),
        Some("t3.medium"),
        "the old version stays"
    );
    fixture.assert_no_changes();
}

// --- 4. scaling ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_a_group_changes_only_its_auto_scaling_group() {
    let fixture = applied_cluster("c4.example.com").await;
    let before = fixture.auto_scaling_group("nodes-us-east-1a").await;
    assert_eq!((before.min_size(), before.max_size()), (Some(2), Some(2)));

    fixture.edit_group("nodes-us-east-1a", |document| {
        document["spec"]["minSize"] = 5.into();
        document["spec"]["maxSize"] = 5.into();
    });
    let plan = fixture.plan_json();
    assert_eq!(
        change_keys(&plan),
        BTreeSet::from(["autoscaling-group/nodes-us-east-1a".to_owned()]),
        "{plan:#}"
    );
    let scaling = change(&plan, "autoscaling-group/nodes-us-east-1a");
    assert_eq!(scaling["action"], "update");
    assert_eq!(field(scaling, "minSize")["after"], 5);
    assert_eq!(field(scaling, "maxSize")["after"], 5);
    assert_eq!(
        plan["rollingUpdates"],
        Value::Array(Vec::new()),
        "scaling rolls nothing"
    );

    fixture.aws.reset_stats();
    fixture.apply();
    let stats = fixture.aws.stats();
    assert_eq!(
        cloud_mutations(&stats),
        BTreeMap::from([("autoscaling:UpdateAutoScalingGroup".to_owned(), 1)]),
        "one call changes the group and nothing else"
    );
    let after = fixture.auto_scaling_group("nodes-us-east-1a").await;
    assert_eq!((after.min_size(), after.max_size()), (Some(5), Some(5)));
    assert_eq!(
        after
            .launch_template()
            .and_then(|template| template.version()),
        before
            .launch_template()
            .and_then(|template| template.version()),
        "the same launch template version"
    );
    fixture.assert_no_changes();
}

// --- 5. drift -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_in_rules_and_group_size_is_planned_and_repaired() {
    let fixture = applied_cluster("c5.example.com").await;
    let control_plane = fixture.security_group("control-plane").await;
    let nodes = fixture.security_group("nodes").await;
    let control_plane_id = control_plane.group_id().expect("id").to_owned();
    let node_group_id = nodes.group_id().expect("id").to_owned();
    let has_api_rule = |group: &aws_sdk_ec2::types::SecurityGroup| {
        group.ip_permissions().iter().any(|permission| {
            permission.from_port() == Some(6443)
                && permission
                    .user_id_group_pairs()
                    .iter()
                    .any(|pair| pair.group_id() == Some(node_group_id.as_str()))
        })
    };
    assert!(has_api_rule(&control_plane));

    // Someone removes "6443 from nodes" and resizes the node group by hand.
    fixture
        .clients
        .ec2
        .revoke_security_group_ingress()
        .group_id(&control_plane_id)
        .ip_permissions(
            aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(6443)
                .to_port(6443)
                .user_id_group_pairs(
                    aws_sdk_ec2::types::UserIdGroupPair::builder()
                        .group_id(&node_group_id)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("revoke ingress");
    assert!(
        !has_api_rule(&fixture.security_group("control-plane").await),
        "the rule is gone"
    );
    fixture
        .clients
        .autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name(fixture.group_resource("nodes-us-east-1a"))
        .min_size(0)
        .max_size(7)
        .desired_capacity(0)
        .send()
        .await
        .expect("resize");

    let plan = fixture.plan_json();
    assert_eq!(
        change_keys(&plan),
        BTreeSet::from([
            "autoscaling-group/nodes-us-east-1a".to_owned(),
            "security-group-rules/control-plane".to_owned(),
        ]),
        "{plan:#}"
    );
    let scaling = change(&plan, "autoscaling-group/nodes-us-east-1a");
    assert_eq!(field(scaling, "minSize")["before"], 0);
    assert_eq!(field(scaling, "minSize")["after"], 2);
    assert_eq!(field(scaling, "maxSize")["before"], 7);
    assert_eq!(field(scaling, "maxSize")["after"], 2);
    let rules = change(&plan, "security-group-rules/control-plane");
    assert_eq!(rules["action"], "update");
    let ingress = field(rules, "ingress");
    let before = ingress["before"].as_array().expect("before").len();
    let after = ingress["after"].as_array().expect("after").len();
    assert_eq!(
        after,
        before + 1,
        "exactly the revoked rule comes back: {ingress:#}"
    );

    fixture.apply();
    assert!(
        has_api_rule(&fixture.security_group("control-plane").await),
        "the rule is back"
    );
    let group = fixture.auto_scaling_group("nodes-us-east-1a").await;
    assert_eq!((group.min_size(), group.max_size()), (Some(2), Some(2)));
    fixture.assert_no_changes();
}

// --- 6. a stale saved plan -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_is_refused_after_someone_else_applied() {
    let fixture = applied_cluster("c6.example.com").await;
    fixture.edit_group("nodes-us-east-1a", |document| {
        document["spec"]["minSize"] = 3.into();
        document["spec"]["maxSize"] = 3.into();
    });
    let plan_file = fixture.home.join("c6.plan");
    fixture
        .skiff([
            "update".as_ref(),
            "cluster".as_ref(),
            fixture.cluster.as_ref(),
            "--out".as_ref(),
            plan_file.as_os_str(),
        ])
        .assert_success();
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).expect("the plan file"))
            .expect("JSON plan");
    assert_eq!(
        change_keys(&saved),
        BTreeSet::from(["autoscaling-group/nodes-us-east-1a".to_owned()])
    );

    // Meanwhile a colleague changes the spec again and applies it. (Not a
    // launch-template change: moto 5.2.1 fails to launch instances from a
    // version made by CreateLaunchTemplateVersion when a group grows.)
    fixture.edit_group("nodes-us-east-1a", |document| {
        document["spec"]["minSize"] = 4.into();
        document["spec"]["maxSize"] = 4.into();
    });
    fixture.apply();
    let group_before = fixture.auto_scaling_group("nodes-us-east-1a").await;
    assert_eq!(
        (group_before.min_size(), group_before.max_size()),
        (Some(4), Some(4))
    );
    let template_before = fixture.launch_template("nodes-us-east-1a").await;
    let state_before = fixture
        .aws
        .get_object(&fixture.bucket, "c6.example.com/state.json")
        .expect("a recorded state");

    fixture.aws.reset_stats();
    let refused = fixture.skiff(["apply".as_ref(), plan_file.as_os_str()]);
    refused.assert_exit(1).assert_stderr_contains("stale");
    let stats = fixture.aws.stats();
    assert_eq!(
        cloud_mutations(&stats),
        BTreeMap::new(),
        "the refused apply changed AWS"
    );
    assert_eq!(
        fixture
            .aws
            .get_object(&fixture.bucket, "c6.example.com/state.json")
            .as_deref(),
        Some(state_before.as_slice()),
        "the refused apply wrote the recorded state"
    );
    // The saved plan would have set 3; the colleague's 4 stays.
    let group_after = fixture.auto_scaling_group("nodes-us-east-1a").await;
    assert_eq!(
        (
            group_after.min_size(),
            group_after.max_size(),
            group_after.launch_template().cloned()
        ),
        (Some(4), Some(4), group_before.launch_template().cloned())
    );
    assert_eq!(
        fixture.launch_template("nodes-us-east-1a").await,
        template_before
    );
}

// --- 7. delete -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_cluster_leaves_nothing_of_it_and_spares_its_neighbours() {
    let fixture = ClusterFixture::new("c7.example.com").await;
    let zone_id = fixture.create_zone("example.com").await;
    let ec2 = &fixture.clients.ec2;

    // Neighbours: a VPC with a subnet and a security group, made beforehand.
    // The subnet is even marked as shared with the cluster (never owned).
    let neighbour = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .expect("create vpc");
    let neighbour_vpc = neighbour
        .vpc()
        .and_then(|vpc| vpc.vpc_id())
        .expect("id")
        .to_owned();
    let neighbour_subnet = ec2
        .create_subnet()
        .vpc_id(&neighbour_vpc)
        .cidr_block("10.0.0.0/24")
        .availability_zone("us-east-1a")
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Subnet)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key("kubernetes.io/cluster/c7.example.com")
                        .value("shared")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("create subnet")
        .subnet()
        .and_then(|subnet| subnet.subnet_id())
        .expect("id")
        .to_owned();
    let neighbour_group = ec2
        .create_security_group()
        .vpc_id(&neighbour_vpc)
        .group_name("neighbour")
        .description("not the cluster's")
        .send()
        .await
        .expect("create security group")
        .group_id()
        .expect("id")
        .to_owned();

    let key_file = fixture.home.write(
        "id_ed25519.pub",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO8LekZ3DHNkzY7IZ0O8fzPHZ9/Pl4Ulk7Yplr3Ap4ug test@skiff\n",
    );
    fixture.create_cluster(&[
        "--zones",
        "us-east-1a,us-east-1b",
        "--topology",
        "private",
        "--ssh-public-key",
        key_file.to_str().expect("UTF-8 path"),
    ]);
    fixture.apply();
    // Everything is there before the delete (so "nothing after" means something).
    let key_pairs = ec2
        .describe_key_pairs()
        .filters(fixture.owned())
        .send()
        .await
        .expect("key pairs");
    assert_eq!(key_pairs.key_pairs().len(), 1, "the SSH key pair");
    let tagged_vpcs = ec2
        .describe_vpcs()
        .filters(fixture.owned())
        .send()
        .await
        .expect("vpcs");
    assert_eq!(tagged_vpcs.vpcs().len(), 1);
    assert!(!fixture
        .aws
        .list_keys(&fixture.bucket, "c7.example.com/")
        .is_empty());

    let deleted = fixture.skiff(["delete", "cluster", "c7.example.com", "--yes"]);
    deleted.assert_success();

    let owned = || fixture.owned();
    assert!(
        ec2.describe_vpcs()
            .filters(owned())
            .send()
            .await
            .expect("vpcs")
            .vpcs()
            .is_empty(),
        "VPCs left"
    );
    assert!(
        ec2.describe_subnets()
            .filters(owned())
            .send()
            .await
            .expect("subnets")
            .subnets()
            .is_empty(),
        "subnets left"
    );
    assert!(
        ec2.describe_security_groups()
            .filters(owned())
            .send()
            .await
            .expect("groups")
            .security_groups()
            .is_empty(),
        "security groups left"
    );
    assert!(
        ec2.describe_internet_gateways()
            .filters(owned())
            .send()
            .await
            .expect("igws")
            .internet_gateways()
            .is_empty(),
        "internet gateways left"
    );
    let nats = ec2
        .describe_nat_gateways()
        .filter(owned())
        .send()
        .await
        .expect("nats");
    for nat in nats.nat_gateways() {
        assert_eq!(
            nat.state(),
            Some(&aws_sdk_ec2::types::NatGatewayState::Deleted),
            "NAT gateway left: {nat:?}"
        );
    }
    assert!(
        ec2.describe_addresses()
            .filters(owned())
            .send()
            .await
            .expect("eips")
            .addresses()
            .is_empty(),
        "EIPs left"
    );
    assert!(
        ec2.describe_route_tables()
            .filters(owned())
            .send()
            .await
            .expect("tables")
            .route_tables()
            .is_empty(),
        "route tables left"
    );
    assert!(
        ec2.describe_launch_templates()
            .filters(owned())
            .send()
            .await
            .expect("lts")
            .launch_templates()
            .is_empty(),
        "launch templates left"
    );
    assert!(
        ec2.describe_key_pairs()
            .filters(owned())
            .send()
            .await
            .expect("keys")
            .key_pairs()
            .is_empty(),
        "key pairs left"
    );
    assert_eq!(
        fixture.auto_scaling_groups().await.len(),
        0,
        "auto scaling groups left"
    );
    let balancers = fixture
        .clients
        .elb
        .describe_load_balancers()
        .send()
        .await
        .expect("load balancers");
    assert!(
        balancers.load_balancers().is_empty(),
        "load balancers left: {:?}",
        balancers.load_balancers()
    );
    let targets = fixture
        .clients
        .elb
        .describe_target_groups()
        .send()
        .await
        .expect("target groups");
    assert!(
        targets.target_groups().is_empty(),
        "target groups left: {:?}",
        targets.target_groups()
    );
    let path = "/skiff/c7.example.com/";
    let roles = fixture
        .clients
        .iam
        .list_roles()
        .path_prefix(path)
        .send()
        .await
        .expect("roles");
    assert!(
        roles.roles().is_empty(),
        "IAM roles left: {:?}",
        roles.roles()
    );
    let profiles = fixture
        .clients
        .iam
        .list_instance_profiles()
        .path_prefix(path)
        .send()
        .await
        .expect("profiles");
    assert!(
        profiles.instance_profiles().is_empty(),
        "instance profiles left"
    );
    let records = fixture
        .clients
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .send()
        .await
        .expect("records");
    assert!(
        !records
            .resource_record_sets()
            .iter()
            .any(|record| record.name().starts_with("api.c7.example.com")),
        "the API record is left: {:?}",
        records.resource_record_sets()
    );

    // The neighbours are untouched.
    let vpc = ec2
        .describe_vpcs()
        .vpc_ids(&neighbour_vpc)
        .send()
        .await
        .expect("neighbour vpc");
    assert_eq!(vpc.vpcs().len(), 1);
    let subnet = ec2
        .describe_subnets()
        .subnet_ids(&neighbour_subnet)
        .send()
        .await
        .expect("neighbour subnet");
    assert_eq!(subnet.subnets().len(), 1);
    let group = ec2
        .describe_security_groups()
        .group_ids(&neighbour_group)
        .send()
        .await
        .expect("neighbour group");
    assert_eq!(group.security_groups().len(), 1);

    // And the cluster is gone from the store.
    assert_eq!(
        fixture.aws.list_keys(&fixture.bucket, "c7.example.com/"),
        Vec::<String>::new()
    );
    let clusters = fixture.skiff(["get", "clusters"]);
    assert!(!clusters.stdout.contains("c7.example.com"), "{clusters}");
}

// --- 8. errors before any change ------------------------------------------------

/// Runs `update cluster --yes`, expects exit 1 with every `needles` in the
/// message, and no mutating call to any cloud service.
fn assert_refused_before_any_change(fixture: &ClusterFixture, needles: &[&str]) -> SkiffOutput {
    fixture.aws.reset_stats();
    let output = fixture.skiff(["update", "cluster", &fixture.cluster, "--yes"]);
    output.assert_exit(1);
    for needle in needles {
        output.assert_stderr_contains(needle);
    }
    let stats = fixture.aws.stats();
    assert_eq!(
        cloud_mutations(&stats),
        BTreeMap::new(),
        "changed AWS before failing\n{output}"
    );
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_hosted_zone_stops_the_apply_before_any_change() {
    let fixture = ClusterFixture::new("c8.example.com").await;
    fixture.create_zone("unrelated.example.org").await;
    fixture.create_cluster(&["--zones", "us-east-1a"]);
    assert_refused_before_any_change(&fixture, &["hosted zone", "c8.example.com"]);

    // With the zone named explicitly, the message names it.
    fixture.edit_cluster(|document| {
        document["spec"]["dnsZone"] = "example.com".into();
    });
    assert_refused_before_any_change(&fixture, &["hosted zone", "example.com"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_image_stops_the_apply_before_any_change() {
    let fixture = ClusterFixture::new("c9.example.com").await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a"]);
    fixture.edit_group("nodes-us-east-1a", |document| {
        document["spec"]["image"] = "ami-0123456789abcdef0".into();
    });
    assert_refused_before_any_change(
        &fixture,
        &["spec.image", "ami-0123456789abcdef0", "nodes-us-east-1a"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_shared_subnet_stops_the_apply_before_any_change() {
    let fixture = ClusterFixture::new("c10.example.com").await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a"]);
    fixture.edit_cluster(|document| {
        let subnets = document["spec"]["subnets"]
            .as_sequence_mut()
            .expect("spec.subnets");
        subnets[0]["id"] = "subnet-0123456789abcdef0".into();
    });
    assert_refused_before_any_change(&fixture, &["subnet-0123456789abcdef0", "spec.subnets"]);
}

// --- 9. instances wait for the PKI ------------------------------------------------

/// Booting nodes fetch the cluster's PKI from the state store, so no
/// instance may launch before it is there. The PKI is made ready beside the
/// plan and the apply; only the auto scaling groups wait for it. A PKI that
/// cannot be made ready (here: a certificate that is not one) stops every
/// group, names the object, and the next run, once it is fixed, finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_launch_only_once_the_pki_is_in_the_store() {
    let fixture = ClusterFixture::new("c11.example.com").await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a"]);
    fixture.aws.put_object(
        &fixture.bucket,
        &fixture.key("pki/ca.crt"),
        b"not a certificate",
    );

    fixture.aws.reset_stats();
    let output = fixture.skiff(["update", "cluster", &fixture.cluster, "--yes"]);
    output
        .assert_exit(1)
        .assert_stderr_contains("did not finish")
        .assert_stderr_contains("cannot prepare the PKI of cluster c11.example.com")
        .assert_stderr_contains("pki/ca.crt")
        .assert_stderr_contains("its instances cannot launch");
    let stats = fixture.aws.stats();
    assert_eq!(
        stats.count("autoscaling:CreateAutoScalingGroup"),
        0,
        "{output}"
    );
    assert_eq!(stats.count("ec2:RunInstances"), 0, "{output}");
    assert!(fixture.auto_scaling_groups().await.is_empty());
    // What launches nothing was built meanwhile, and recorded.
    assert_eq!(stats.count("ec2:CreateVpc"), 1, "{output}");
    assert_eq!(stats.count("ec2:CreateLaunchTemplate"), 2, "{output}");

    fixture
        .aws
        .delete_object(&fixture.bucket, &fixture.key("pki/ca.crt"));
    fixture.aws.reset_stats();
    fixture.apply();
    let stats = fixture.aws.stats();
    assert_eq!(stats.count("ec2:CreateVpc"), 0, "built once");
    assert_eq!(stats.count("autoscaling:CreateAutoScalingGroup"), 2);
    assert_eq!(fixture.auto_scaling_groups().await.len(), 2);
    let certificate = fixture.get_object("pki/ca.crt").expect("pki/ca.crt");
    assert!(
        String::from_utf8_lossy(&certificate).starts_with("-----BEGIN CERTIFICATE-----"),
        "{}",
        String::from_utf8_lossy(&certificate)
    );
    fixture.assert_no_changes();
}

/// More groups than one page of a describe call holds by default (moto, like
/// some AWS APIs, pages at 15 or 50): the refresh must still see every
/// resource, or the next plan would create duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_of_many_groups_plans_no_changes_after_apply() {
    let fixture = applied_cluster("c9.example.com").await;
    for index in 0..20 {
        let name = format!("workers-{index:02}");
        fixture
            .skiff([
                "create",
                "ig",
                "--name",
                &fixture.cluster,
                &name,
                "--min",
                "1",
                "--max",
                "1",
            ])
            .assert_success();
    }
    fixture.aws.reset_stats();
    let applied = fixture.apply();
    // 40 creates (a launch template and an auto scaling group per worker),
    // their outcomes written behind the apply at most once a second (see
    // `PERSIST_INTERVAL`): the lock, the intents, the background writes,
    // the last write, the history's copy; never a write per create.
    // Besides, each new group's bootstrap script, once (beside the apply).
    let scripts = fixture
        .aws
        .list_keys(&fixture.bucket, "")
        .into_iter()
        .filter(|key| key.contains("/scripts/"))
        .count() as u64;
    assert!(scripts > 20, "a script per group: {scripts}");
    let puts = fixture.aws.stats().count("s3:PutObject") - 20;
    let background = 1 + applied.duration.as_secs();
    assert!(
        puts <= 4 + background && puts < 40,
        "{puts} PutObject calls in an apply of 40 creates that took {:?}",
        applied.duration
    );
    fixture.assert_no_changes();
    let templates = fixture
        .clients
        .ec2
        .describe_launch_templates()
        .max_results(200)
        .send()
        .await
        .expect("describe launch templates");
    // The control-plane group, the node group and the 20 workers: no duplicates.
    assert_eq!(templates.launch_templates().len(), 22);
}
