//! Issue 18, "an internal API endpoint": a cluster whose API load balancer
//! is internet-facing and whose `kubernetesAPIAccess` is restricted still
//! reaches its own API, and the world still does not.
//!
//! From inside the VPC the public load balancer's name resolves to public
//! addresses, so a node's traffic to it leaves through a NAT gateway (or
//! the instance's public address) and arrives from an address no rule of
//! the cluster admits. skiff therefore puts an internal load balancer
//! beside the public one. A DNS cluster's nodes keep naming `api.<cluster>`,
//! which a private hosted zone of exactly that name, associated with the
//! cluster's VPC, answers with the internal load balancer (split horizon);
//! a new gossip cluster's nodes name the internal load balancer itself.
//! These tests follow each node's path to the API hop by hop on what the
//! local endpoint holds after `update cluster --yes` (the endpoint the
//! user-data names, what Route53 answers for it inside the node's VPC and
//! outside, the load balancer it is, its listener, its security group, the
//! target group, the control plane's security group), and check the public
//! listener's rules still refuse an address outside the range.
//!
//! Clusters built before the internal endpoint: a DNS cluster gets the
//! private zone and the internal load balancer from the apply alone, with
//! no launch template change and no roll; a gossip cluster is left as it is,
//! and its plan warns while `kubernetesAPIAccess` is restricted. A gossip
//! control-plane node booted in the node sandbox from skiff's user-data
//! shows the certificate names both load balancers, so operators'
//! kubeconfigs (the public name) verify.
//!
//! Route53 refuses to delete a hosted zone that still holds records
//! (`HostedZoneNotEmpty`, "DeleteHostedZone", Amazon Route 53 API
//! Reference); moto 5 models that already, so `delete cluster` leaving no
//! zone proves the record went first.

use crate::common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use aws_sdk_ec2::types::SecurityGroup;
use aws_sdk_elasticloadbalancingv2::types::LoadBalancer;
use common::cluster::ClusterFixture;

/// The operators' range (documentation addresses, RFC 5737).
const ADMIN_RANGE: &str = "203.0.113.0/24";
/// An operator inside it.
const ADMIN: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
/// An address outside it.
const OUTSIDER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

/// Where a connection comes from, as a security group rule sees it.
#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    /// An instance or load balancer of this security group, inside the VPC.
    Group(&'a str),
    /// An address.
    Address(Ipv4Addr),
}

/// Whether `cidr` (`a.b.c.d/n`) holds `address`.
fn contains(cidr: &str, address: Ipv4Addr) -> bool {
    let Some((network, length)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(network), Ok(length)) = (network.parse::<Ipv4Addr>(), length.parse::<u32>()) else {
        return false;
    };
    let mask = if length == 0 {
        0
    } else {
        u32::MAX << (32 - length.min(32))
    };
    u32::from(network) & mask == u32::from(address) & mask
}

/// Whether a security group's ingress rules admit TCP to `port` from `source`.
fn admits(group: &SecurityGroup, port: i32, source: Source<'_>) -> bool {
    group.ip_permissions().iter().any(|permission| {
        let protocol = permission.ip_protocol().unwrap_or_default();
        let ports = protocol == "-1"
            || (protocol == "tcp"
                && permission.from_port().unwrap_or(-1) <= port
                && permission.to_port().unwrap_or(-1) >= port);
        ports
            && match source {
                Source::Group(id) => permission
                    .user_id_group_pairs()
                    .iter()
                    .any(|pair| pair.group_id() == Some(id)),
                Source::Address(address) => permission
                    .ip_ranges()
                    .iter()
                    .any(|range| contains(range.cidr_ip().unwrap_or_default(), address)),
            }
    })
}

/// One node group as the endpoint holds it: its instances' security group,
/// subnets and the API endpoint its user-data names.
#[derive(Debug)]
struct NodeGroup {
    security_group: String,
    subnets: Vec<String>,
    target_groups: Vec<String>,
    /// `/etc/skiff/api-endpoint.env`, decoded.
    endpoint_file: String,
    /// Every file of the user-data, decoded, by path.
    files: BTreeMap<String, String>,
    /// The user-data as EC2 holds it (decompressed): what an instance gets.
    user_data: String,
}

impl NodeGroup {
    fn endpoint_value(&self, name: &str) -> Option<String> {
        self.endpoint_file
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}=")))
            .map(str::to_lowercase)
    }
}

/// What only these tests read from the endpoint.
impl ClusterFixture {
    /// Every auto scaling group of the endpoint (the fixture's own) by name,
    /// with what its launch template gives its instances.
    async fn node_groups(&self) -> BTreeMap<String, NodeGroup> {
        let groups = self
            .clients
            .autoscaling
            .describe_auto_scaling_groups()
            .send()
            .await
            .expect("describe auto scaling groups");
        let mut found = BTreeMap::new();
        for group in groups.auto_scaling_groups() {
            let name = group.auto_scaling_group_name().expect("a name").to_owned();
            let template = group.launch_template().expect("a launch template");
            let versions = self
                .clients
                .ec2
                .describe_launch_template_versions()
                .launch_template_id(template.launch_template_id().expect("an ID"))
                .versions(template.version().expect("a version"))
                .send()
                .await
                .expect("describe launch template versions");
            let data = versions.launch_template_versions()[0]
                .launch_template_data()
                .expect("template data");
            let text = skiff_templates::decode_user_data(data.user_data().expect("user-data"))
                .expect("user-data is base64 of a gzip");
            let decoded = skiff_plans::user_data::decode(&text).expect("a cloud-config");
            let files: BTreeMap<String, String> = decoded
                .files
                .into_iter()
                .map(|file| (file.path, file.text))
                .collect();
            let security_group = data
                .security_group_ids()
                .first()
                .cloned()
                .or_else(|| {
                    data.network_interfaces()
                        .first()
                        .and_then(|interface| interface.groups().first().cloned())
                })
                .expect("a security group");
            found.insert(
                name,
                NodeGroup {
                    security_group,
                    subnets: group
                        .vpc_zone_identifier()
                        .unwrap_or_default()
                        .split(',')
                        .map(str::to_owned)
                        .collect(),
                    target_groups: group.target_group_arns().to_vec(),
                    endpoint_file: files
                        .get(skiff_templates::paths::API_ENDPOINT_FILE)
                        .cloned()
                        .unwrap_or_default(),
                    files,
                    user_data: text,
                },
            );
        }
        found
    }

    /// The load balancer of this name.
    async fn load_balancer(&self, name: &str) -> LoadBalancer {
        self.clients
            .elb
            .describe_load_balancers()
            .names(name)
            .send()
            .await
            .unwrap_or_else(|error| panic!("describe load balancer {name}: {error:?}"))
            .load_balancers()[0]
            .clone()
    }

    /// The target group a load balancer's listener on `port` forwards to.
    async fn forwards_to(&self, balancer: &LoadBalancer, port: i32) -> Option<String> {
        let listeners = self
            .clients
            .elb
            .describe_listeners()
            .load_balancer_arn(balancer.load_balancer_arn().expect("an ARN"))
            .send()
            .await
            .expect("describe listeners");
        listeners
            .listeners()
            .iter()
            .find(|listener| listener.port() == Some(port))
            .and_then(|listener| listener.default_actions().first())
            .and_then(|action| action.target_group_arn())
            .map(str::to_owned)
    }

    async fn security_group_by_id(&self, id: &str) -> SecurityGroup {
        self.clients
            .ec2
            .describe_security_groups()
            .group_ids(id)
            .send()
            .await
            .expect("describe security groups")
            .security_groups()[0]
            .clone()
    }

    /// The VPC of a subnet.
    async fn vpc_of_subnet(&self, subnet: &str) -> String {
        self.clients
            .ec2
            .describe_subnets()
            .subnet_ids(subnet)
            .send()
            .await
            .expect("describe subnets")
            .subnets()[0]
            .vpc_id()
            .expect("a VPC")
            .to_owned()
    }

    /// The public addresses of the NAT gateways: where a node's traffic to a
    /// public address comes from in a private topology.
    async fn nat_addresses(&self) -> Vec<Ipv4Addr> {
        let gateways = self
            .clients
            .ec2
            .describe_nat_gateways()
            .send()
            .await
            .expect("describe NAT gateways");
        gateways
            .nat_gateways()
            .iter()
            .flat_map(|gateway| gateway.nat_gateway_addresses())
            .filter_map(|address| address.public_ip()?.parse().ok())
            .collect()
    }

    /// What Route53 answers for `name` (the target of its alias A record)
    /// to a client inside `vpc`, or on the internet (`None`), the way its
    /// VPC Resolver does: a private zone associated with the VPC whose name
    /// is the longest suffix of `name` answers (NXDOMAIN when it lacks the
    /// record: the query is not forwarded), else the public zone whose name
    /// is the longest suffix ("Public and private hosted zones that have
    /// overlapping namespaces", Amazon Route 53 Developer Guide).
    async fn resolve(&self, name: &str, vpc: Option<&str>) -> Option<String> {
        let name = name.trim_end_matches('.').to_lowercase();
        let zones = self
            .clients
            .route53
            .list_hosted_zones()
            .send()
            .await
            .expect("list hosted zones");
        let mut private = Vec::new();
        let mut public = Vec::new();
        for zone in zones.hosted_zones() {
            let zone_name = zone.name().trim_end_matches('.').to_lowercase();
            if !(name == zone_name || name.ends_with(&format!(".{zone_name}"))) {
                continue;
            }
            let id = zone.id().trim_start_matches("/hostedzone/").to_owned();
            if zone.config().is_some_and(|config| config.private_zone()) {
                let detail = self
                    .clients
                    .route53
                    .get_hosted_zone()
                    .id(&id)
                    .send()
                    .await
                    .expect("get hosted zone");
                let associated = detail
                    .vpcs()
                    .iter()
                    .any(|associated| vpc.is_some() && associated.vpc_id() == vpc);
                if associated {
                    private.push((zone_name, id));
                }
            } else {
                public.push((zone_name, id));
            }
        }
        let longest = |zones: &mut Vec<(String, String)>| {
            zones.sort_by_key(|(zone_name, _)| std::cmp::Reverse(zone_name.len()));
            zones.first().map(|(_, id)| id.clone())
        };
        let zone = match longest(&mut private) {
            Some(zone) => zone,
            None => longest(&mut public)?,
        };
        let records = self
            .clients
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(&zone)
            .send()
            .await
            .expect("list resource record sets");
        records
            .resource_record_sets()
            .iter()
            .find(|record| {
                record
                    .name()
                    .trim_end_matches('.')
                    .eq_ignore_ascii_case(&name)
                    && record.r#type().as_str() == "A"
            })
            .and_then(|record| record.alias_target())
            .map(|alias| {
                let target = alias.dns_name().trim_end_matches('.').to_lowercase();
                target
                    .strip_prefix("dualstack.")
                    .map(str::to_owned)
                    .unwrap_or(target)
            })
    }

    /// The names of every hosted zone on the endpoint.
    async fn zone_names(&self) -> Vec<String> {
        let zones = self
            .clients
            .route53
            .list_hosted_zones()
            .send()
            .await
            .expect("list hosted zones");
        let mut names: Vec<String> = zones
            .hosted_zones()
            .iter()
            .map(|zone| zone.name().trim_end_matches('.').to_owned())
            .collect();
        names.sort();
        names
    }

    /// Takes away what the internal endpoint added, as a cluster built
    /// before it lacks: the private zone's record and the zone (a DNS
    /// cluster's), the internal listener and load balancer, and its target
    /// group, detached from the control plane's groups first.
    async fn remove_internal_endpoint(&self, internal_name: &str) {
        let route53 = &self.clients.route53;
        let zones = route53
            .list_hosted_zones_by_name()
            .dns_name(format!("api.{}", self.cluster))
            .send()
            .await
            .expect("list hosted zones by name");
        for zone in zones.hosted_zones() {
            if !zone.config().is_some_and(|config| config.private_zone()) {
                continue;
            }
            let id = zone.id().trim_start_matches("/hostedzone/").to_owned();
            let records = route53
                .list_resource_record_sets()
                .hosted_zone_id(&id)
                .send()
                .await
                .expect("list resource record sets");
            for record in records.resource_record_sets() {
                if record.r#type().as_str() != "A" {
                    continue;
                }
                let change = aws_sdk_route53::types::Change::builder()
                    .action(aws_sdk_route53::types::ChangeAction::Delete)
                    .resource_record_set(record.clone())
                    .build()
                    .expect("a change");
                route53
                    .change_resource_record_sets()
                    .hosted_zone_id(&id)
                    .change_batch(
                        aws_sdk_route53::types::ChangeBatch::builder()
                            .changes(change)
                            .build()
                            .expect("a batch"),
                    )
                    .send()
                    .await
                    .expect("delete the private record");
            }
            route53
                .delete_hosted_zone()
                .id(&id)
                .send()
                .await
                .expect("delete the private zone");
        }
        let balancer = self.load_balancer(internal_name).await;
        let target = self
            .forwards_to(&balancer, 443)
            .await
            .expect("a target group");
        let groups = self.node_groups().await;
        for (name, group) in &groups {
            if group.target_groups.contains(&target) {
                self.clients
                    .autoscaling
                    .detach_load_balancer_target_groups()
                    .auto_scaling_group_name(name)
                    .target_group_arns(&target)
                    .send()
                    .await
                    .expect("detach the internal target group");
            }
        }
        let arn = balancer.load_balancer_arn().expect("an ARN");
        let listeners = self
            .clients
            .elb
            .describe_listeners()
            .load_balancer_arn(arn)
            .send()
            .await
            .expect("describe listeners");
        for listener in listeners.listeners() {
            self.clients
                .elb
                .delete_listener()
                .listener_arn(listener.listener_arn().expect("an ARN"))
                .send()
                .await
                .expect("delete the internal listener");
        }
        self.clients
            .elb
            .delete_load_balancer()
            .load_balancer_arn(arn)
            .send()
            .await
            .expect("delete the internal load balancer");
        self.clients
            .elb
            .delete_target_group()
            .target_group_arn(&target)
            .send()
            .await
            .expect("delete the internal target group");
    }

    /// The names of every load balancer and target group on the endpoint.
    async fn balancer_names(&self) -> Vec<String> {
        let balancers = self
            .clients
            .elb
            .describe_load_balancers()
            .send()
            .await
            .expect("describe load balancers");
        let targets = self
            .clients
            .elb
            .describe_target_groups()
            .send()
            .await
            .expect("describe target groups");
        balancers
            .load_balancers()
            .iter()
            .filter_map(|balancer| balancer.load_balancer_name())
            .chain(
                targets
                    .target_groups()
                    .iter()
                    .filter_map(|target| target.target_group_name()),
            )
            .map(str::to_owned)
            .collect()
    }
}

/// What a cluster's nodes name as the API endpoint.
#[derive(Debug, Clone, Copy)]
enum NodesName<'a> {
    /// `api.<cluster>` (a DNS cluster): Route53 answers it with the
    /// internal load balancer inside the VPC, the public one outside.
    Api(&'a str),
    /// The internal load balancer's own DNS name (a new gossip cluster).
    InternalLoadBalancer,
}

/// Follows every node's path to the API (the Must-show point of issue 18):
/// the endpoint it names is (or resolves inside its VPC to) the internal
/// load balancer, inside its VPC, whose listener, security group and target
/// group take it to the control plane, whose security group admits the load
/// balancer. The public listener still admits the operators' range only:
/// not an outsider, and not the NAT gateways' addresses nodes would come
/// from if they used it.
async fn check_paths(
    fixture: &ClusterFixture,
    public_name: &str,
    internal_name: &str,
    nodes_name: NodesName<'_>,
) {
    let public = fixture.load_balancer(public_name).await;
    let internal = fixture.load_balancer(internal_name).await;
    assert_eq!(
        public.scheme().map(|scheme| scheme.as_str()),
        Some("internet-facing")
    );
    assert_eq!(
        internal.scheme().map(|scheme| scheme.as_str()),
        Some("internal")
    );
    let internal_dns = internal.dns_name().expect("a DNS name").to_lowercase();
    let public_dns = public.dns_name().expect("a DNS name").to_lowercase();
    assert_ne!(internal_dns, public_dns);
    let internal_target = fixture
        .forwards_to(&internal, 443)
        .await
        .expect("the internal load balancer listens on 443");
    let public_target = fixture
        .forwards_to(&public, 443)
        .await
        .expect("the public load balancer listens on 443");
    let internal_groups = internal.security_groups().to_vec();
    assert_eq!(internal_groups.len(), 1, "{internal:?}");
    let internal_group = fixture.security_group_by_id(&internal_groups[0]).await;
    let public_group = fixture
        .security_group_by_id(&public.security_groups()[0])
        .await;

    let groups = fixture.node_groups().await;
    let control_plane: Vec<&NodeGroup> = groups
        .iter()
        .filter(|(name, _)| name.starts_with("control-plane"))
        .map(|(_, group)| group)
        .collect();
    assert!(!control_plane.is_empty(), "{groups:?}");
    assert!(groups.len() > control_plane.len(), "no worker groups");
    for group in &control_plane {
        // Both load balancers' targets are the control plane's instances.
        for target in [&internal_target, &public_target] {
            assert!(group.target_groups.contains(target), "{group:?}");
        }
    }

    for (name, group) in &groups {
        // 1. The node names the internal load balancer, or a name that
        //    resolves to it inside the node's VPC, on the listener port.
        let node_vpc = fixture.vpc_of_subnet(&group.subnets[0]).await;
        let endpoint = group.endpoint_value("SKIFF_API_ENDPOINT");
        match nodes_name {
            NodesName::Api(api) => {
                assert_eq!(endpoint.as_deref(), Some(api), "{name}");
                assert_eq!(
                    fixture.resolve(api, Some(&node_vpc)).await.as_deref(),
                    Some(internal_dns.as_str()),
                    "{name}: {api} inside the VPC"
                );
                assert_eq!(
                    fixture.resolve(api, None).await.as_deref(),
                    Some(public_dns.as_str()),
                    "{api} outside the VPC"
                );
            }
            NodesName::InternalLoadBalancer => assert_eq!(
                endpoint.as_deref(),
                Some(internal_dns.as_str()),
                "{name}: {}",
                group.endpoint_file
            ),
        }
        assert_eq!(
            group.endpoint_value("SKIFF_API_PORT").as_deref(),
            Some("443")
        );
        // 2. It is in the node's own VPC.
        assert_eq!(internal.vpc_id(), Some(node_vpc.as_str()), "{name}");
        // 3. Its security group admits the node.
        assert!(
            admits(&internal_group, 443, Source::Group(&group.security_group)),
            "{name}: the internal load balancer refuses the node: {internal_group:?}"
        );
    }
    // 4. It forwards to 6443 without client addresses, so the control
    //    plane sees the load balancer, which its security group admits.
    let target = fixture
        .clients
        .elb
        .describe_target_groups()
        .target_group_arns(&internal_target)
        .send()
        .await
        .expect("describe the internal target group");
    assert_eq!(target.target_groups()[0].port(), Some(6443));
    let attributes = fixture
        .clients
        .elb
        .describe_target_group_attributes()
        .target_group_arn(&internal_target)
        .send()
        .await
        .expect("describe target group attributes");
    assert!(
        attributes.attributes().iter().any(|attribute| {
            attribute.key() == Some("preserve_client_ip.enabled")
                && attribute.value() == Some("false")
        }),
        "{attributes:?}"
    );
    for group in &control_plane {
        let control_plane_group = fixture.security_group_by_id(&group.security_group).await;
        assert!(
            admits(
                &control_plane_group,
                6443,
                Source::Group(internal_group.group_id().expect("an ID"))
            ),
            "the control plane refuses the internal load balancer: {control_plane_group:?}"
        );
        assert!(
            !admits(&control_plane_group, 6443, Source::Address(OUTSIDER)),
            "{control_plane_group:?}"
        );
    }

    // Operators inside the VPC (or on a VPN into it) reach the internal
    // listener, which the API's name resolves to there; outsiders do not.
    assert!(admits(&internal_group, 443, Source::Address(ADMIN)));
    assert!(!admits(&internal_group, 443, Source::Address(OUTSIDER)));

    // The public listener: the operators' range, and nobody else.
    assert!(admits(&public_group, 443, Source::Address(ADMIN)));
    assert!(
        !admits(&public_group, 443, Source::Address(OUTSIDER)),
        "{OUTSIDER} is admitted at the public endpoint: {public_group:?}"
    );
    for address in fixture.nat_addresses().await {
        assert!(
            !admits(&public_group, 443, Source::Address(address)),
            "the NAT gateway {address} is admitted at the public endpoint"
        );
    }
    // No rule of the public listener names the cluster's groups: in-VPC
    // traffic to it arrives from public addresses, so such a rule would
    // only pretend to let nodes in.
    for permission in public_group.ip_permissions() {
        assert!(
            permission.user_id_group_pairs().is_empty(),
            "{public_group:?}"
        );
        for range in permission.ip_ranges() {
            assert_eq!(range.cidr_ip(), Some(ADMIN_RANGE));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_public_api_admits_every_nodes_path_and_refuses_outsiders() {
    let fixture = ClusterFixture::new("access.example.com").await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&[
        "--zones",
        "us-east-1a,us-east-1b",
        "--topology",
        "private",
        "--admin-access",
        ADMIN_RANGE,
    ]);
    fixture.apply();
    fixture.assert_no_changes();
    check_paths(
        &fixture,
        "api-access-example-com",
        "api-int-access-example-com",
        NodesName::Api("api.access.example.com"),
    )
    .await;
    assert_eq!(
        fixture.zone_names().await,
        ["api.access.example.com", "example.com"]
    );
    // A lookup in the moment between the zone's creation and its record's
    // is remembered as NXDOMAIN for a minute at most: the SOA's TTL and
    // minimum (RFC 2308), not Route53's 900 s and one day.
    let private_zone = fixture
        .clients
        .route53
        .list_hosted_zones_by_name()
        .dns_name("api.access.example.com")
        .send()
        .await
        .expect("list hosted zones by name")
        .hosted_zones()
        .iter()
        .find(|zone| zone.config().is_some_and(|config| config.private_zone()))
        .expect("the private zone")
        .id()
        .to_owned();
    let records = fixture
        .clients
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(&private_zone)
        .send()
        .await
        .expect("list resource record sets");
    let soa = records
        .resource_record_sets()
        .iter()
        .find(|record| record.r#type().as_str() == "SOA")
        .expect("an SOA");
    assert_eq!(soa.ttl(), Some(60), "{soa:?}");
    let value = soa.resource_records()[0].value();
    assert!(value.ends_with(" 60"), "{value}");

    // Nothing a node is given names a load balancer: the certificate and
    // the endpoint are `api.access.example.com`, as before the internal
    // endpoint; the exported kubeconfig uses that name too.
    let groups = fixture.node_groups().await;
    for (name, group) in &groups {
        assert!(
            !group.user_data.contains(".elb.") && !group.user_data.contains("skiff.invalid"),
            "{name} names a load balancer"
        );
    }
    let init = &groups["control-plane-us-east-1a.access.example.com"].files
        [skiff_templates::paths::KUBEADM_INIT_TEMPLATE];
    assert!(init.contains("- \"@SKIFF_API_ENDPOINT@\""), "{init}");
    assert!(!init.contains("@SKIFF_API_PUBLIC_ENDPOINT@"), "{init}");
    let kubeconfig = fixture.home.path().join("access.kubeconfig");
    fixture
        .skiff([
            "export".as_ref(),
            "kubeconfig".as_ref(),
            "access.example.com".as_ref(),
            "--kubeconfig".as_ref(),
            kubeconfig.as_os_str(),
        ])
        .assert_success();
    let text = std::fs::read_to_string(&kubeconfig).expect("the kubeconfig");
    assert!(
        text.contains("server: https://api.access.example.com:443"),
        "{text}"
    );

    // delete cluster removes both load balancers, their target groups and
    // the private zone (after its record: Route53 refuses a zone that holds
    // one); the public zone is the operator's and stays.
    fixture
        .skiff(["delete", "cluster", "access.example.com", "--yes"])
        .assert_success();
    assert_eq!(fixture.balancer_names().await, Vec::<String>::new());
    assert_eq!(fixture.zone_names().await, ["example.com"]);
}

/// A DNS cluster built before the internal endpoint (no private zone, no
/// internal load balancer: made here by applying and then deleting them)
/// is planned to get them, with no launch template change and no roll, and
/// after the apply every node's path is admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_dns_cluster_gets_the_private_zone_without_a_roll() {
    let fixture = ClusterFixture::new("old.example.com").await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&[
        "--zones",
        "us-east-1a",
        "--topology",
        "private",
        "--admin-access",
        ADMIN_RANGE,
    ]);
    fixture.apply();
    fixture
        .remove_internal_endpoint("api-int-old-example-com")
        .await;
    assert_eq!(fixture.zone_names().await, ["example.com"]);
    let templates_before = fixture.launch_template("nodes-us-east-1a").await;

    let plan = fixture.plan_json();
    let changes = plan["changes"].as_array().expect("changes");
    let keys = |action: &str| -> Vec<String> {
        let mut keys: Vec<String> = changes
            .iter()
            .filter(|change| change["action"] == action)
            .map(|change| change["key"].as_str().expect("a key").to_owned())
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(
        keys("create"),
        [
            "dns-record/api-internal",
            "hosted-zone/api-internal",
            "listener/api-internal",
            "load-balancer/api-internal",
            "target-group/api-internal",
        ],
        "{plan:#}"
    );
    assert_eq!(keys("replace"), Vec::<String>::new());
    assert_eq!(keys("delete"), Vec::<String>::new());
    assert_eq!(
        keys("update"),
        ["autoscaling-group/control-plane-us-east-1a"],
        "{plan:#}"
    );
    assert!(
        plan.get("rollingUpdates")
            .and_then(|needs| needs.as_array())
            .is_none_or(|needs| needs.is_empty()),
        "{plan:#}"
    );

    fixture.apply();
    fixture.assert_no_changes();
    assert_eq!(
        fixture.launch_template("nodes-us-east-1a").await,
        templates_before,
        "the nodes' launch template got a new version"
    );
    check_paths(
        &fixture,
        "api-old-example-com",
        "api-int-old-example-com",
        NodesName::Api("api.old.example.com"),
    )
    .await;
}

/// A gossip cluster built before the internal endpoint keeps its one load
/// balancer: nothing new is planned, its nodes name the public load
/// balancer, and the plan warns, naming the cluster, why and what to do.
/// (Made here by applying and deleting the internal load balancer: the
/// plan after that gives the nodes the public one, as the old code did.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_gossip_cluster_is_left_as_it_is_and_warned_about() {
    let fixture = ClusterFixture::new("old.k8s.local").await;
    fixture.create_cluster(&["--zones", "us-east-1a", "--admin-access", ADMIN_RANGE]);
    fixture.apply();
    fixture
        .remove_internal_endpoint("api-int-old-k8s-local")
        .await;
    fixture.apply();

    let output = fixture.skiff(["update", "cluster", "old.k8s.local", "--detailed-exitcode"]);
    output.assert_exit(0);
    assert!(output.stdout.contains("No changes"), "{output}");
    for words in [
        "warning: cluster old.k8s.local",
        "spec.kubernetesAPIAccess (203.0.113.0/24)",
        "NAT gateways' Elastic IPs",
        "recreate the cluster",
    ] {
        assert!(output.stdout.contains(words), "{words}: {output}");
    }
    let plan = fixture.plan_json();
    assert_eq!(
        plan["changes"].as_array().map(Vec::len),
        Some(0),
        "{plan:#}"
    );
    let warnings = plan["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{plan:#}");

    let public_dns = fixture
        .load_balancer("api-old-k8s-local")
        .await
        .dns_name()
        .expect("a DNS name")
        .to_lowercase();
    assert!(!fixture
        .balancer_names()
        .await
        .iter()
        .any(|name| name.contains("-int-")));
    for (name, group) in fixture.node_groups().await {
        assert_eq!(
            group.endpoint_value("SKIFF_API_ENDPOINT").as_deref(),
            Some(public_dns.as_str()),
            "{name}"
        );
        assert_eq!(group.endpoint_value("SKIFF_API_PUBLIC_ENDPOINT"), None);
    }

    // Open to everyone, nothing to warn about.
    fixture.edit_cluster(|cluster| {
        cluster["spec"]["kubernetesAPIAccess"] =
            serde_norway::Value::Sequence(vec!["0.0.0.0/0".into()]);
    });
    fixture.apply();
    let plan = fixture.plan_json();
    assert_eq!(
        plan["changes"].as_array().map(Vec::len),
        Some(0),
        "{plan:#}"
    );
    assert!(plan.get("warnings").is_none(), "{plan:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gossip_clusters_nodes_use_the_internal_endpoint_and_operators_the_public_one() {
    let fixture = ClusterFixture::new("access.k8s.local").await;
    fixture.create_cluster(&["--zones", "us-east-1a", "--admin-access", ADMIN_RANGE]);
    fixture.apply();
    fixture.assert_no_changes();
    check_paths(
        &fixture,
        "api-access-k8s-local",
        "api-int-access-k8s-local",
        NodesName::InternalLoadBalancer,
    )
    .await;
    // No Route53 at all for a gossip cluster.
    assert_eq!(fixture.zone_names().await, Vec::<String>::new());

    // The public load balancer's name, known once it exists, reaches the
    // control plane's certificate through the endpoint file.
    let public_dns = fixture
        .load_balancer("api-access-k8s-local")
        .await
        .dns_name()
        .expect("a DNS name")
        .to_lowercase();
    let groups = fixture.node_groups().await;
    let control_plane = &groups["control-plane-us-east-1a.access.k8s.local"];
    assert_eq!(
        control_plane
            .endpoint_value("SKIFF_API_PUBLIC_ENDPOINT")
            .as_deref(),
        Some(public_dns.as_str()),
        "{}",
        control_plane.endpoint_file
    );
    let init = &control_plane.files[skiff_templates::paths::KUBEADM_INIT_TEMPLATE];
    assert!(init.contains("- \"@SKIFF_API_PUBLIC_ENDPOINT@\""), "{init}");
    // Workers make no certificate: they are not given the name.
    let workers = &groups["nodes-us-east-1a.access.k8s.local"];
    assert_eq!(
        workers.endpoint_value("SKIFF_API_PUBLIC_ENDPOINT"),
        None,
        "{}",
        workers.endpoint_file
    );
    let kubeconfig = fixture.home.path().join("gossip.kubeconfig");
    fixture
        .skiff([
            "export".as_ref(),
            "kubeconfig".as_ref(),
            "access.k8s.local".as_ref(),
            "--kubeconfig".as_ref(),
            kubeconfig.as_os_str(),
        ])
        .assert_success();
    let text = std::fs::read_to_string(&kubeconfig).expect("the kubeconfig");
    assert!(
        text.to_lowercase()
            .contains(&format!("server: https://{public_dns}:443")),
        "{text}"
    );
}

/// The node sandbox on a gossip cluster's real user-data: the control-plane
/// node that initializes the cluster names the internal load balancer as its
/// endpoint and puts both load balancers' names in the API server's
/// certificate (the public one filled in from the endpoint file), so the
/// operators' kubeconfig, which names the public one, verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gossip_control_plane_certifies_both_load_balancer_names() {
    use skiff_test_support::sandbox::{BootstrapPaths, FakeCloud, Image};
    let fixture = ClusterFixture::new("boot.k8s.local").await;
    fixture.create_cluster(&["--zones", "us-east-1a", "--admin-access", ADMIN_RANGE]);
    fixture.apply();
    let dns_of = |balancer: LoadBalancer| balancer.dns_name().expect("a DNS name").to_owned();
    let internal = dns_of(fixture.load_balancer("api-int-boot-k8s-local").await);
    let public = dns_of(fixture.load_balancer("api-boot-k8s-local").await);

    let groups = fixture.node_groups().await;
    let group = &groups["control-plane-us-east-1a.boot.k8s.local"];
    let instances = fixture.group_instances("control-plane-us-east-1a").await;
    // The sandbox's stubs read instance metadata and the state store from
    // this fixture's endpoint (as node_bootstrap.rs does).
    let mut cloud = FakeCloud::start(BootstrapPaths {
        script: skiff_templates::paths::BOOTSTRAP_SCRIPT,
        log: skiff_templates::paths::BOOTSTRAP_LOG,
    });
    cloud.moto.port = fixture.aws.port();
    let node = cloud.launch(
        &instances[0],
        "1.34.2",
        group.user_data.clone(),
        Image::Ubuntu,
    );
    let boot = node.boot();
    assert!(boot.success, "{}", boot.everything());
    let configs = node.kubeadm_configs();
    assert_eq!(configs.len(), 1, "{configs:?}");
    let init = &configs[0].1;
    assert!(
        init.contains(&format!("controlPlaneEndpoint: \"{internal}:443\"")),
        "{init}"
    );
    for name in [&internal, &public, &"api.boot.k8s.local".to_string()] {
        assert!(
            init.contains(&format!("    - \"{name}\"\n")),
            "{name} missing:\n{init}"
        );
    }
    assert!(!init.contains("@SKIFF_"), "a placeholder was left:\n{init}");
}

/// What the private zone's wait is judged on, seen from outside while an
/// apply runs: the internal target group's target states and whether the
/// private zone exists yet.
impl ClusterFixture {
    /// The states of the internal target group's targets (`None`: no such
    /// target group yet).
    async fn internal_target_states(&self) -> Option<Vec<String>> {
        let groups = self
            .clients
            .elb
            .describe_target_groups()
            .send()
            .await
            .expect("describe target groups");
        let arn = groups
            .target_groups()
            .iter()
            .find(|group| {
                group
                    .target_group_name()
                    .is_some_and(|name| name.starts_with("tcp-int-"))
            })?
            .target_group_arn()?
            .to_owned();
        let health = self
            .clients
            .elb
            .describe_target_health()
            .target_group_arn(&arn)
            .send()
            .await
            .ok()?;
        Some(
            health
                .target_health_descriptions()
                .iter()
                .map(|description| {
                    description
                        .target_health()
                        .and_then(|health| health.state())
                        .map(|state| state.as_str().to_owned())
                        .unwrap_or_default()
                })
                .collect(),
        )
    }

    /// The private zone `api.<cluster>`'s ID, if it exists.
    async fn private_zone_id(&self) -> Option<String> {
        let zones = self
            .clients
            .route53
            .list_hosted_zones_by_name()
            .dns_name(format!("api.{}", self.cluster))
            .send()
            .await
            .expect("list hosted zones by name");
        zones
            .hosted_zones()
            .iter()
            .find(|zone| {
                zone.name().trim_end_matches('.') == format!("api.{}", self.cluster)
                    && zone.config().is_some_and(|config| config.private_zone())
            })
            .map(|zone| zone.id().trim_start_matches("/hostedzone/").to_owned())
    }
}

/// The tracing filter that shows the private zone's progress lines.
const ZONE_PROGRESS: &str = "warn,skiff_providers::operations::dns=info";

/// Review finding 5 (issue 18): on a running DNS cluster the private zone,
/// which shadows the public record inside the VPC the moment it exists, is
/// made only once the internal target group has a healthy target, not as
/// soon as the internal load balancer is `active`. The endpoint keeps newly
/// registered targets `initial` for a few seconds, as AWS does while it
/// registers them and runs the initial health checks; the test watches the
/// endpoint while the apply runs: the zone never exists while the internal
/// targets are all `initial`, and they were seen so. The apply shows its
/// progress, naming the target group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_running_dns_cluster_the_zone_waits_for_a_healthy_internal_target() {
    let fixture = ClusterFixture::new("run.example.com").await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&[
        "--zones",
        "us-east-1a",
        "--topology",
        "private",
        "--admin-access",
        ADMIN_RANGE,
    ]);
    // Built and serving: the public target group's targets are healthy.
    fixture.apply();
    fixture
        .remove_internal_endpoint("api-int-run-example-com")
        .await;
    assert_eq!(fixture.private_zone_id().await, None);

    let delay = std::time::Duration::from_secs(6);
    fixture.aws.set_target_health_delay(delay);
    let started = std::time::Instant::now();
    let mut apply = fixture
        .command(["update", "cluster", "run.example.com", "--yes"])
        .env("SKIFF_LOG", ZONE_PROGRESS)
        .timeout(std::time::Duration::from_secs(120))
        .spawn();
    let mut seen_initial_without_zone = false;
    let mut zone_seen_at = None;
    while apply.is_running() {
        let states = fixture.internal_target_states().await;
        let zone = fixture.private_zone_id().await;
        if let Some(states) = &states {
            let healthy = states.iter().any(|state| state == "healthy");
            if zone.is_some() {
                assert!(
                    healthy,
                    "the private zone exists while the internal targets are {states:?}"
                );
                zone_seen_at.get_or_insert_with(|| started.elapsed());
            } else if !states.is_empty() && !healthy {
                assert!(states.iter().all(|state| state == "initial"), "{states:?}");
                seen_initial_without_zone = true;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    let output = apply.wait();
    output.assert_success();
    assert!(
        seen_initial_without_zone,
        "the internal targets were never seen initial before the zone: {output}"
    );
    assert!(fixture.private_zone_id().await.is_some());
    assert!(
        zone_seen_at.is_none_or(|at| at >= delay),
        "the zone was seen after {zone_seen_at:?}, before the targets could pass"
    );
    output.assert_stderr_contains("waiting for a healthy target in tcp-int-");
    output.assert_stderr_contains("initial");
    fixture.assert_no_changes();
}

/// A new DNS cluster's apply does not wait for a healthy target (nothing
/// serves the API yet, so the zone shadows nothing): with targets that stay
/// `initial` for an hour, the apply still ends at once, and the zone exists
/// while no internal target is healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_dns_clusters_apply_does_not_wait_for_a_healthy_target() {
    let fixture = ClusterFixture::new("fresh.example.com").await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&[
        "--zones",
        "us-east-1a",
        "--topology",
        "private",
        "--admin-access",
        ADMIN_RANGE,
    ]);
    fixture
        .aws
        .set_target_health_delay(std::time::Duration::from_secs(3600));
    // Waiting would take the wait's ten minutes: the timeout ends it first.
    let output = fixture
        .command(["update", "cluster", "fresh.example.com", "--yes"])
        .env("SKIFF_LOG", ZONE_PROGRESS)
        .timeout(std::time::Duration::from_secs(90))
        .run();
    output.assert_success();
    assert!(fixture.private_zone_id().await.is_some());
    let states = fixture
        .internal_target_states()
        .await
        .expect("the internal target group");
    assert!(!states.is_empty(), "no target registered");
    assert!(states.iter().all(|state| state == "initial"), "{states:?}");
    output.assert_stderr_contains("made without waiting");
    assert!(
        !output.stderr.contains("waiting for a healthy target"),
        "{output}"
    );
}

/// Review finding 5 (issue 18): a second VPC someone associated with the
/// private zone, listed first by Route53, is not taken for the cluster's
/// (which would plan a replacement of the zone on every run): the plan has
/// no change, and warns naming the other VPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_vpc_associated_with_the_zone_plans_no_change() {
    let fixture = ClusterFixture::new("two.example.com").await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&[
        "--zones",
        "us-east-1a",
        "--topology",
        "private",
        "--admin-access",
        ADMIN_RANGE,
    ]);
    fixture.apply();
    let zone = fixture.private_zone_id().await.expect("the private zone");
    let route53 = &fixture.clients.route53;
    let vpcs_of = |found: aws_sdk_route53::operation::get_hosted_zone::GetHostedZoneOutput| {
        found
            .vpcs()
            .iter()
            .filter_map(|vpc| vpc.vpc_id().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let cluster_vpc = vpcs_of(
        route53
            .get_hosted_zone()
            .id(&zone)
            .send()
            .await
            .expect("get hosted zone"),
    );
    assert_eq!(cluster_vpc.len(), 1, "{cluster_vpc:?}");
    let cluster_vpc = cluster_vpc[0].clone();
    let other = fixture
        .clients
        .ec2
        .create_vpc()
        .cidr_block("10.99.0.0/16")
        .send()
        .await
        .expect("create a VPC")
        .vpc()
        .and_then(|vpc| vpc.vpc_id())
        .expect("a VPC ID")
        .to_owned();
    let vpc = |id: &str| {
        aws_sdk_route53::types::Vpc::builder()
            .vpc_id(id)
            .vpc_region(aws_sdk_route53::types::VpcRegion::UsEast1)
            .build()
    };
    // Associated second, then the cluster's VPC taken off and put back, so
    // that Route53 lists the other one first.
    route53
        .associate_vpc_with_hosted_zone()
        .hosted_zone_id(&zone)
        .vpc(vpc(&other))
        .send()
        .await
        .expect("associate the other VPC");
    route53
        .disassociate_vpc_from_hosted_zone()
        .hosted_zone_id(&zone)
        .vpc(vpc(&cluster_vpc))
        .send()
        .await
        .expect("disassociate the cluster's VPC");
    route53
        .associate_vpc_with_hosted_zone()
        .hosted_zone_id(&zone)
        .vpc(vpc(&cluster_vpc))
        .send()
        .await
        .expect("associate the cluster's VPC again");
    assert_eq!(
        vpcs_of(
            route53
                .get_hosted_zone()
                .id(&zone)
                .send()
                .await
                .expect("get hosted zone")
        ),
        [other.clone(), cluster_vpc.clone()]
    );

    let output = fixture.skiff([
        "update",
        "cluster",
        "two.example.com",
        "--detailed-exitcode",
    ]);
    output.assert_exit(0);
    assert!(
        format!("{}{}", output.stdout, output.stderr).contains("No changes"),
        "{output}"
    );
    output.assert_stderr_contains(&format!("is also associated with {other}"));
    let plan = fixture.plan_json();
    assert_eq!(
        plan["changes"].as_array().map(Vec::len),
        Some(0),
        "{plan:#}"
    );
}
