//! Which node is an instance's, and whether a node is Ready.
//!
//! skiff's nodes register under their host name with no cloud controller
//! manager, so the private IP (the kubelet's InternalIP address) is the
//! surest link; the DNS name covers nodes whose address list is not filled
//! in yet, and its first label covers hosts that call themselves
//! `ip-10-0-1-5` while EC2 says `ip-10-0-1-5.eu-west-1.compute.internal`.
//! A provider ID, where a cloud controller set one, names the instance
//! outright. Private IPs are reused, so when a stale node of a terminated
//! instance matches as well as a fresh one, the newer node wins.

use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;

use crate::InstanceView;

/// How well a node matches an instance, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Match {
    /// The first label of the node's name or host name is the first label
    /// of the instance's DNS name.
    ShortName,
    /// The node's name or host name is the instance's DNS name.
    DnsName,
    /// The node's InternalIP is the instance's private IP.
    PrivateIp,
    /// The node's provider ID ends in `/<instance id>`.
    ProviderId,
}

/// The node of an instance, if one is registered.
pub(super) fn node_of<'a>(nodes: &'a [Node], instance: &InstanceView) -> Option<&'a Node> {
    nodes
        .iter()
        .filter_map(|node| strength(node, instance).map(|strength| (strength, node)))
        .max_by(|(first_strength, first), (second_strength, second)| {
            (first_strength, first.metadata.creation_timestamp.as_ref())
                .cmp(&(second_strength, second.metadata.creation_timestamp.as_ref()))
        })
        .map(|(_, node)| node)
}

/// The strongest way `node` matches `instance`, if any.
fn strength(node: &Node, instance: &InstanceView) -> Option<Match> {
    let provider_id = node
        .spec
        .as_ref()
        .and_then(|spec| spec.provider_id.as_deref());
    if let Some(provider_id) = provider_id {
        if provider_id.rsplit('/').next() == Some(instance.id.as_str()) && !instance.id.is_empty() {
            return Some(Match::ProviderId);
        }
    }
    let addresses = node
        .status
        .as_ref()
        .and_then(|status| status.addresses.as_deref())
        .unwrap_or_default();
    let private_ip = instance.private_ip.as_deref().filter(|ip| !ip.is_empty());
    if let Some(private_ip) = private_ip {
        if addresses
            .iter()
            .any(|address| address.type_ == "InternalIP" && address.address == private_ip)
        {
            return Some(Match::PrivateIp);
        }
    }
    let dns_name = instance
        .private_dns
        .as_deref()
        .filter(|name| !name.is_empty())?;
    let node_name = node.name_any();
    let names: Vec<&str> = std::iter::once(node_name.as_str())
        .chain(
            addresses
                .iter()
                .filter(|address| address.type_ == "Hostname")
                .map(|address| address.address.as_str()),
        )
        .collect();
    if names.iter().any(|name| name.eq_ignore_ascii_case(dns_name)) {
        return Some(Match::DnsName);
    }
    let short = first_label(dns_name);
    if names
        .iter()
        .any(|name| first_label(name).eq_ignore_ascii_case(short))
    {
        return Some(Match::ShortName);
    }
    None
}

fn first_label(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// Whether the node's Ready condition is True.
pub(super) fn is_ready(node: &Node) -> bool {
    ready_condition(node).is_some_and(|(status, _)| status == "True")
}

/// The node's Ready condition: its status and, if given, its reason.
pub(super) fn ready_condition(node: &Node) -> Option<(&str, Option<&str>)> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|condition| condition.type_ == "Ready")
        .map(|condition| (condition.status.as_str(), condition.reason.as_deref()))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{NodeAddress, NodeCondition, NodeSpec, NodeStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::*;

    fn node(name: &str, internal_ip: &str, created_second: i64) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                creation_timestamp: Some(Time(
                    k8s_openapi::jiff::Timestamp::from_second(created_second)
                        .expect("a valid time"),
                )),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                addresses: Some(vec![
                    NodeAddress {
                        type_: "InternalIP".to_string(),
                        address: internal_ip.to_string(),
                    },
                    NodeAddress {
                        type_: "Hostname".to_string(),
                        address: name.to_string(),
                    },
                ]),
                ..NodeStatus::default()
            }),
        }
    }

    fn instance(id: &str, ip: Option<&str>, dns: Option<&str>) -> InstanceView {
        InstanceView {
            id: id.to_string(),
            launch_template: None,
            version: None,
            lifecycle: crate::Lifecycle::InService,
            healthy: true,
            private_ip: ip.map(str::to_string),
            private_dns: dns.map(str::to_string),
            etcd_member: false,
        }
    }

    fn name_of(node: Option<&Node>) -> Option<String> {
        node.map(|node| node.name_any())
    }

    #[test]
    fn matches_by_private_ip_before_names() {
        let nodes = vec![
            node("ip-10-0-1-9", "10.0.1.5", 1),
            node("ip-10-0-1-5", "10.0.1.99", 1),
        ];
        let found = node_of(
            &nodes,
            &instance("i-1", Some("10.0.1.5"), Some("ip-10-0-1-5.ec2.internal")),
        );
        assert_eq!(name_of(found), Some("ip-10-0-1-9".to_string()));
    }

    #[test]
    fn matches_a_short_host_name_to_the_full_dns_name() {
        let nodes = vec![node("ip-10-0-1-5", "10.0.1.5", 1)];
        let found = node_of(
            &nodes,
            &instance("i-1", None, Some("ip-10-0-1-5.eu-west-1.compute.internal")),
        );
        assert_eq!(name_of(found), Some("ip-10-0-1-5".to_string()));
        let other = node_of(
            &nodes,
            &instance("i-2", None, Some("ip-10-0-1-6.eu-west-1.compute.internal")),
        );
        assert_eq!(name_of(other), None);
    }

    #[test]
    fn matches_by_provider_id() {
        let mut with_provider = node("worker-a", "192.168.0.1", 1);
        with_provider.spec = Some(NodeSpec {
            provider_id: Some("aws:///eu-west-1a/i-0abc".to_string()),
            ..NodeSpec::default()
        });
        let nodes = vec![node("worker-b", "10.0.1.5", 1), with_provider];
        let found = node_of(&nodes, &instance("i-0abc", Some("10.0.1.5"), None));
        assert_eq!(name_of(found), Some("worker-a".to_string()));
    }

    #[test]
    fn prefers_the_newer_of_two_nodes_with_the_same_ip() {
        // The stale node of a terminated instance whose IP was reused.
        let nodes = vec![
            node("ip-10-0-1-5-old", "10.0.1.5", 100),
            node("ip-10-0-1-5-new", "10.0.1.5", 200),
        ];
        let found = node_of(&nodes, &instance("i-1", Some("10.0.1.5"), None));
        assert_eq!(name_of(found), Some("ip-10-0-1-5-new".to_string()));
    }

    #[test]
    fn an_empty_address_matches_nothing() {
        let nodes = vec![node("", "", 1)];
        assert_eq!(
            name_of(node_of(&nodes, &instance("", Some(""), Some("")))),
            None
        );
    }

    #[test]
    fn ready_only_when_the_ready_condition_is_true() {
        let mut ready = node("a", "10.0.0.1", 1);
        assert!(!is_ready(&ready), "a node without conditions is not Ready");
        let condition = |status: &str| NodeCondition {
            type_: "Ready".to_string(),
            status: status.to_string(),
            ..NodeCondition::default()
        };
        if let Some(status) = ready.status.as_mut() {
            status.conditions = Some(vec![condition("True")]);
        }
        assert!(is_ready(&ready));
        if let Some(status) = ready.status.as_mut() {
            status.conditions = Some(vec![condition("Unknown")]);
        }
        assert!(!is_ready(&ready));
    }
}
