//! The API server's network load balancer: a TCP listener on 443 forwarding
//! to a target group on 6443 that the control-plane groups register with.
//!
//! The target group does not preserve client addresses: with preservation
//! on, a control-plane node that reaches the API through the load balancer
//! and lands on itself drops the packets (NLB hairpinning), which breaks
//! `kubeadm init --control-plane-endpoint`. Client filtering happens on the
//! load balancer's own security group instead.
//!
//! # How the cluster's own nodes reach the API
//!
//! From inside the VPC an internet-facing load balancer's name resolves to
//! public addresses, so a node's traffic to it leaves through a NAT gateway
//! or the instance's public address, and a security group rule naming the
//! cluster's own groups never matches it: with `kubernetesAPIAccess`
//! restricted, `kubeadm init`, every join and every kubelet would be
//! refused. So an internet-facing API load balancer gets an internal one
//! beside it, with its own target group and listener, whose security group
//! admits the cluster's groups and `kubernetesAPIAccess` (operators inside
//! the VPC or on a VPN); the public one admits only `kubernetesAPIAccess`.
//! Cluster API for AWS does the same with a second, internal load balancer
//! (`AWSCluster.spec.secondaryControlPlaneLoadBalancer`). How nodes are
//! pointed at it depends on the cluster ([`api_endpoint`]):
//!
//! - **A DNS cluster keeps its name** (split horizon, see `dns`): nodes
//!   keep `api.<cluster>` as their endpoint, and a private hosted zone named
//!   exactly `api.<cluster>`, associated with the cluster's VPC, answers it
//!   inside the VPC with the internal load balancer. Nothing a node was
//!   given changes: its user-data, the API server's certificate and the
//!   `kube-public/cluster-info` ConfigMap (whose server kubeadm's TLS
//!   bootstrap and every kubelet's kubeconfig use after discovery:
//!   kubernetes/kubernetes `cmd/kubeadm/app/discovery/discovery.go`, `For`)
//!   all keep `api.<cluster>`, so a cluster built before the internal
//!   endpoint is fixed by the apply alone, with no roll. kops instead gives
//!   nodes a second name, `api.internal.<cluster>` (`APIInternalName` in
//!   kops `pkg/apis/kops/cluster.go`), which every certificate must then
//!   hold: a change an existing cluster's running API servers cannot take
//!   without a roll.
//! - **A new gossip cluster** (`.k8s.local`: no name of its own, no Route53)
//!   gives its nodes the internal load balancer's own DNS name, filled into
//!   the user-data once it is known; the API server's certificate names
//!   both load balancers.
//! - **An existing gossip cluster** (its API load balancer exists and no
//!   internal one does) is left as it is: its API servers' certificates
//!   and its `cluster-info` name the public load balancer only, so moving
//!   its nodes would break every join. The plan warns when its
//!   `kubernetesAPIAccess` is restricted ([`gossip_warning`]). The decision
//!   rests on which load balancers exist ([`Lookups::api_load_balancers`]),
//!   so once applied it plans the same again.
//!
//! An internal API load balancer already is inside the VPC: it gets no
//! second one.

use std::collections::BTreeSet;

use skiff_api::{Cluster, LoadBalancerType, SubnetType, Topology};

use crate::lookups::Lookups;

use super::security::{API_INTERNAL_LOAD_BALANCER, API_LOAD_BALANCER};
use super::{security_group_key, Builder};
use crate::error::PlanError;
use crate::names;
use crate::resource::{
    Attributes, DesiredResource, ListenerAttributes, LoadBalancerAttributes, Output, ResourceKey,
    ResourceKind, TargetGroupAttributes,
};

/// The port clients use.
pub const API_PORT: u16 = 443;
/// The port the API server listens on.
pub const API_SERVER_PORT: u16 = 6443;

/// The key of the API load balancer.
pub fn load_balancer_key() -> ResourceKey {
    ResourceKey::new(ResourceKind::LoadBalancer, "api")
}

/// The key of the API target group.
pub fn target_group_key() -> ResourceKey {
    ResourceKey::new(ResourceKind::TargetGroup, "api")
}

/// The name of the internal endpoint's load balancer, target group and
/// listener keys.
pub const INTERNAL: &str = "api-internal";

/// The key of the internal API load balancer nodes use (see the module doc).
pub fn internal_load_balancer_key() -> ResourceKey {
    ResourceKey::new(ResourceKind::LoadBalancer, INTERNAL)
}

/// The key of the internal API load balancer's target group.
pub fn internal_target_group_key() -> ResourceKey {
    ResourceKey::new(ResourceKind::TargetGroup, INTERNAL)
}

/// How the cluster's nodes reach the API (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiEndpoint {
    /// Through the API load balancer, the only one: it is internal, or
    /// the cluster is a gossip cluster built before the internal endpoint.
    Single,
    /// A DNS cluster with an internet-facing API load balancer: nodes name
    /// `api.<cluster>`, which a private hosted zone answers inside the VPC
    /// with the internal load balancer.
    SplitHorizon,
    /// A gossip cluster with an internet-facing API load balancer, built
    /// with the internal endpoint: nodes name the internal load balancer's
    /// DNS name.
    InternalName,
}

/// How `cluster`'s nodes reach the API, given which of its load balancers
/// exist already.
pub fn api_endpoint(cluster: &Cluster, lookups: &Lookups) -> ApiEndpoint {
    if cluster.spec.api.load_balancer.load_balancer_type != LoadBalancerType::Public {
        return ApiEndpoint::Single;
    }
    if !cluster.is_gossip() {
        return ApiEndpoint::SplitHorizon;
    }
    let existing = lookups.api_load_balancers;
    if existing.public && !existing.internal {
        ApiEndpoint::Single
    } else {
        ApiEndpoint::InternalName
    }
}

/// Whether the cluster gets an internal API load balancer beside its
/// internet-facing one, for its nodes.
pub fn has_internal_endpoint(cluster: &Cluster, lookups: &Lookups) -> bool {
    api_endpoint(cluster, lookups) != ApiEndpoint::Single
}

/// The load balancer whose DNS name a gossip cluster's nodes are given:
/// the internal one when they use it, else the only one.
pub fn node_load_balancer_key(cluster: &Cluster, lookups: &Lookups) -> ResourceKey {
    if api_endpoint(cluster, lookups) == ApiEndpoint::InternalName {
        internal_load_balancer_key()
    } else {
        load_balancer_key()
    }
}

/// The warning a plan of an existing gossip cluster carries when its
/// nodes reach the API through the public load balancer and
/// `kubernetesAPIAccess` does not admit everyone: their traffic arrives
/// from the NAT gateways' or the instances' public addresses.
pub fn gossip_warning(cluster: &Cluster, lookups: &Lookups) -> Option<String> {
    let restricted = !cluster
        .spec
        .kubernetes_api_access
        .iter()
        .any(|cidr| cidr == "0.0.0.0/0");
    let existing_gossip = cluster.is_gossip()
        && cluster.spec.api.load_balancer.load_balancer_type == LoadBalancerType::Public
        && api_endpoint(cluster, lookups) == ApiEndpoint::Single;
    (existing_gossip && restricted).then(|| {
        format!(
            "cluster {}: its nodes reach the API through the internet-facing load balancer \
             (built before skiff gave gossip clusters an internal one, and kept: its API \
             servers' certificates and cluster-info name that load balancer only), so their \
             traffic arrives from the NAT gateways' or the instances' public addresses, which \
             spec.kubernetesAPIAccess ({}) may not admit: joins and kubelets are refused. Add \
             the NAT gateways' Elastic IPs (and the public addresses of instances in public \
             subnets) to spec.kubernetesAPIAccess, or recreate the cluster to get the internal \
             endpoint",
            cluster.name(),
            cluster.spec.kubernetes_api_access.join(", ")
        )
    })
}

/// The target groups the control-plane instances register with.
pub fn control_plane_target_groups(cluster: &Cluster, lookups: &Lookups) -> Vec<ResourceKey> {
    let mut keys = vec![target_group_key()];
    if has_internal_endpoint(cluster, lookups) {
        keys.push(internal_target_group_key());
    }
    keys
}

/// One API load balancer, its target group and its listener.
struct Balancer {
    /// The keys' name: `api` or `api-internal`.
    key_name: &'static str,
    name: String,
    target_name: String,
    internal: bool,
    subnet_type: SubnetType,
    security_group: &'static str,
}

pub(crate) fn build(builder: &mut Builder<'_>) -> Result<(), PlanError> {
    let cluster = builder.cluster_name().to_string();
    let spec = &builder.bundle.cluster.spec;
    let load_balancer_type = spec.api.load_balancer.load_balancer_type;
    // An NLB takes one subnet per zone.
    let wanted = match (load_balancer_type, spec.topology) {
        (LoadBalancerType::Public, Topology::Private) => SubnetType::Utility,
        (LoadBalancerType::Internal, Topology::Private) => SubnetType::Private,
        (_, Topology::Public) => SubnetType::Public,
    };
    let mut balancers = vec![Balancer {
        key_name: "api",
        name: names::load_balancer(&cluster),
        target_name: names::target_group(&cluster),
        internal: load_balancer_type == LoadBalancerType::Internal,
        subnet_type: wanted,
        security_group: API_LOAD_BALANCER,
    }];
    if has_internal_endpoint(&builder.bundle.cluster, builder.lookups) {
        balancers.push(Balancer {
            key_name: INTERNAL,
            name: names::internal_load_balancer(&cluster),
            target_name: names::internal_target_group(&cluster),
            internal: true,
            // Where the nodes are: the private subnets of a private
            // topology, the public ones of a public topology.
            subnet_type: match spec.topology {
                Topology::Private => SubnetType::Private,
                Topology::Public => SubnetType::Public,
            },
            security_group: API_INTERNAL_LOAD_BALANCER,
        });
    }
    for balancer in balancers {
        add_balancer(builder, balancer)?;
    }
    Ok(())
}

fn add_balancer(builder: &mut Builder<'_>, balancer: Balancer) -> Result<(), PlanError> {
    let mut zones = BTreeSet::new();
    let mut subnets = Vec::new();
    for subnet in builder.subnets_of(balancer.subnet_type) {
        if zones.insert(subnet.zone.clone()) {
            subnets.push(builder.subnet_id(&subnet.name)?);
        }
    }
    if subnets.is_empty() {
        return Err(PlanError::NoLoadBalancerSubnet {
            subnet_type: balancer.subnet_type.to_string(),
        });
    }
    subnets.sort();

    let key = ResourceKey::new(ResourceKind::LoadBalancer, balancer.key_name);
    let tags = builder.tags(&key, &balancer.name);
    builder.add(DesiredResource {
        key: key.clone(),
        attributes: Attributes::LoadBalancer(LoadBalancerAttributes {
            name: balancer.name,
            scheme: if balancer.internal {
                "internal".to_string()
            } else {
                "internet-facing".to_string()
            },
            subnets,
            security_groups: vec![security_group_key(balancer.security_group).output(Output::Id)],
            tags,
        }),
    });

    let target_key = ResourceKey::new(ResourceKind::TargetGroup, balancer.key_name);
    let target_tags = builder.tags(&target_key, &balancer.target_name);
    builder.add(DesiredResource {
        key: target_key.clone(),
        attributes: Attributes::TargetGroup(TargetGroupAttributes {
            name: balancer.target_name,
            vpc: builder.vpc_id(),
            protocol: "TCP".to_string(),
            port: API_SERVER_PORT,
            health_check_protocol: "HTTPS".to_string(),
            health_check_path: "/readyz".to_string(),
            preserve_client_ip: false,
            deregistration_delay_seconds: 30,
            tags: target_tags,
        }),
    });

    builder.add(DesiredResource {
        key: ResourceKey::new(ResourceKind::Listener, balancer.key_name),
        attributes: Attributes::Listener(ListenerAttributes {
            load_balancer: key.output(Output::Id),
            port: API_PORT,
            protocol: "TCP".to_string(),
            target_group: target_key.output(Output::Id),
        }),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use skiff_api::new_cluster::{new_cluster, NewClusterOptions};
    use skiff_api::{ClusterBundle, Cni, LoadBalancerType, OsFamily, Topology};

    use super::*;
    use crate::desired::compute::{API_ENDPOINT_PLACEHOLDER, API_PUBLIC_ENDPOINT_PLACEHOLDER};
    use crate::desired::security::{CONTROL_PLANE, NODES};
    use crate::resource::{Id, IngressRule, RuleSource};
    use crate::{DesiredModel, Lookups};

    fn cluster(name: &str, load_balancer_type: LoadBalancerType) -> ClusterBundle {
        new_cluster(&NewClusterOptions {
            name: name.into(),
            zones: vec!["us-east-1a".into(), "us-east-1b".into()],
            control_plane_zones: Vec::new(),
            control_plane_count: 1,
            control_plane_size: "t3.medium".into(),
            node_count: 2,
            node_size: "t3.medium".into(),
            kubernetes_version: "1.34.2".parse().expect("valid"),
            topology: Topology::Private,
            cni: Cni::Calico,
            dns_zone: None,
            network_cidr: "10.0.0.0/16".into(),
            network_id: None,
            ssh_public_key: None,
            api_load_balancer_type: load_balancer_type,
            cloud_labels: BTreeMap::new(),
            image: None,
            os_family: OsFamily::Debian,
            admin_access: vec!["203.0.113.0/24".into()],
            ssh_access: vec!["203.0.113.0/24".into()],
        })
        .expect("builds")
    }

    fn model(bundle: &ClusterBundle) -> DesiredModel {
        crate::desired_model(bundle, &Lookups::stand_in(bundle)).expect("model")
    }

    fn balancer<'a>(model: &'a DesiredModel, key: &ResourceKey) -> &'a LoadBalancerAttributes {
        match model.get(key).map(|resource| &resource.attributes) {
            Some(Attributes::LoadBalancer(balancer)) => balancer,
            other => panic!("{key}: {other:?}"),
        }
    }

    fn ingress(model: &DesiredModel, role: &str) -> Vec<IngressRule> {
        let key = ResourceKey::new(ResourceKind::SecurityGroupRules, role);
        match model.get(&key).map(|resource| &resource.attributes) {
            Some(Attributes::SecurityGroupRules(rules)) => rules.ingress.clone(),
            other => panic!("{key}: {other:?}"),
        }
    }

    fn https_from(source: RuleSource) -> IngressRule {
        IngressRule {
            protocol: "tcp".into(),
            from_port: 443,
            to_port: 443,
            source,
        }
    }

    fn group(role: &str) -> RuleSource {
        RuleSource::Group(security_group_key(role).output(Output::Id))
    }

    fn with_lookups(bundle: &ClusterBundle, lookups: &Lookups) -> DesiredModel {
        crate::desired_model(bundle, lookups).expect("model")
    }

    fn sorted(mut rules: Vec<IngressRule>) -> Vec<IngressRule> {
        rules.sort();
        rules
    }

    /// What `model`'s launch templates give their nodes as the API
    /// endpoint, and what fills each placeholder, by template name.
    fn endpoints(model: &DesiredModel) -> Vec<(String, bool, BTreeMap<String, Id>)> {
        model
            .resources
            .iter()
            .filter_map(|resource| match &resource.attributes {
                Attributes::LaunchTemplate(template) => Some(template),
                _ => None,
            })
            .map(|template| {
                (
                    template.name.clone(),
                    template
                        .user_data
                        .contains(&format!("SKIFF_API_ENDPOINT={API_ENDPOINT_PLACEHOLDER}\n")),
                    template.user_data_substitutions.clone(),
                )
            })
            .collect()
    }

    /// Issue 18: with an internet-facing API load balancer and a restricted
    /// `kubernetesAPIAccess`, nodes reach the API through an internal load
    /// balancer that admits the cluster's groups (and the admin CIDRs),
    /// while the public one still admits only `kubernetesAPIAccess`.
    #[test]
    fn a_public_api_gets_an_internal_load_balancer_for_the_nodes() {
        for name in ["c1.example.com", "dev.k8s.local"] {
            let bundle = cluster(name, LoadBalancerType::Public);
            let model = model(&bundle);

            let public = balancer(&model, &load_balancer_key());
            assert_eq!(public.scheme, "internet-facing", "{name}");
            let internal = balancer(&model, &internal_load_balancer_key());
            assert_eq!(internal.scheme, "internal", "{name}");
            assert_eq!(
                internal.security_groups,
                [security_group_key(API_INTERNAL_LOAD_BALANCER).output(Output::Id)]
            );
            // In the nodes' own (private) subnets, one per zone.
            assert_eq!(internal.subnets.len(), 2, "{name}");
            assert!(internal
                .subnets
                .iter()
                .all(|subnet| !public.subnets.contains(subnet)));
            assert!(model
                .get(&ResourceKey::new(ResourceKind::Listener, INTERNAL))
                .is_some());

            let admins = RuleSource::Cidr("203.0.113.0/24".into());
            assert_eq!(
                ingress(&model, API_LOAD_BALANCER),
                [https_from(admins.clone())],
                "{name}"
            );
            assert_eq!(
                ingress(&model, API_INTERNAL_LOAD_BALANCER),
                sorted(vec![
                    https_from(admins),
                    https_from(group(CONTROL_PLANE)),
                    https_from(group(NODES)),
                ]),
                "{name}"
            );
            assert!(ingress(&model, CONTROL_PLANE).contains(&IngressRule {
                protocol: "tcp".into(),
                from_port: 6443,
                to_port: 6443,
                source: group(API_INTERNAL_LOAD_BALANCER),
            }));
            for resource in &model.resources {
                if let Attributes::AutoScalingGroup(group) = &resource.attributes {
                    if group.name.starts_with("control") {
                        assert_eq!(
                            group.target_groups,
                            [
                                target_group_key().output(Output::Id),
                                internal_target_group_key().output(Output::Id)
                            ]
                        );
                    }
                }
            }
            assert!(model.warnings.is_empty(), "{:?}", model.warnings);
        }
    }

    /// A DNS cluster keeps `api.<cluster>` for its nodes: a private zone of
    /// exactly that name in the cluster's VPC aliases the internal load
    /// balancer, and nothing the nodes are given names a load balancer.
    #[test]
    fn a_dns_cluster_answers_its_own_name_inside_the_vpc() {
        let bundle = cluster("c1.example.com", LoadBalancerType::Public);
        let model = model(&bundle);
        let zone_key = crate::desired::dns::private_zone_key();
        match model.get(&zone_key).map(|resource| &resource.attributes) {
            Some(Attributes::HostedZone(zone)) => {
                assert_eq!(zone.name, "api.c1.example.com");
                assert_eq!(
                    zone.vpc,
                    ResourceKey::new(ResourceKind::Vpc, "").output(Output::Id)
                );
                assert_eq!(
                    zone.comment,
                    "skiff: c1.example.com hosted-zone/api-internal"
                );
            }
            other => panic!("{other:?}"),
        }
        let record = |key: &ResourceKey| match model.get(key).map(|resource| &resource.attributes) {
            Some(Attributes::DnsRecord(record)) => record.clone(),
            other => panic!("{key}: {other:?}"),
        };
        let private = record(&crate::desired::dns::private_record_key());
        assert_eq!(private.name, "api.c1.example.com.");
        assert_eq!(private.zone, zone_key.output(Output::Id));
        assert_eq!(
            private.alias_target,
            internal_load_balancer_key().output(Output::DnsName)
        );
        // The public record: unchanged, in the public zone, the public load balancer.
        let public = record(&crate::desired::dns::record_key());
        assert_eq!(public.name, "api.c1.example.com.");
        assert_eq!(public.zone, Id::Value("Z123".into()));
        assert_eq!(
            public.alias_target,
            load_balancer_key().output(Output::DnsName)
        );
        let endpoints = endpoints(&model);
        assert_eq!(endpoints.len(), 3);
        for (template, placeholder, substitutions) in endpoints {
            assert!(!placeholder, "{template}");
            assert!(substitutions.is_empty(), "{template}: {substitutions:?}");
        }
        for resource in &model.resources {
            if let Attributes::LaunchTemplate(template) = &resource.attributes {
                assert!(template
                    .user_data
                    .contains("SKIFF_API_ENDPOINT=api.c1.example.com\n"));
            }
        }
    }

    /// A new gossip cluster (no API load balancer yet) gives its nodes the
    /// internal load balancer's name and its control plane certifies the
    /// public one too; once both exist it plans the same.
    #[test]
    fn a_new_gossip_cluster_names_the_internal_load_balancer() {
        let bundle = cluster("dev.k8s.local", LoadBalancerType::Public);
        let mut lookups = Lookups::stand_in(&bundle);
        let fresh = with_lookups(&bundle, &lookups);
        lookups.api_load_balancers = crate::lookups::ExistingApiLoadBalancers {
            public: true,
            internal: true,
        };
        let applied = with_lookups(&bundle, &lookups);
        assert_eq!(fresh, applied);
        assert!(fresh
            .resources
            .iter()
            .all(|resource| resource.kind() != ResourceKind::HostedZone));
        for (template, placeholder, substitutions) in endpoints(&fresh) {
            assert!(placeholder, "{template}");
            assert_eq!(
                substitutions.get(API_ENDPOINT_PLACEHOLDER),
                Some(&internal_load_balancer_key().output(Output::DnsName)),
                "{template}"
            );
            let public_name = substitutions.get(API_PUBLIC_ENDPOINT_PLACEHOLDER);
            if template.starts_with("control-plane") {
                assert_eq!(
                    public_name,
                    Some(&load_balancer_key().output(Output::DnsName))
                );
            } else {
                assert_eq!(public_name, None, "{template}");
            }
        }
    }

    /// An existing gossip cluster (its API load balancer exists, no
    /// internal one) is left as main built it: one load balancer, nodes
    /// naming it, its rules admitting the cluster's groups; the plan warns
    /// when `kubernetesAPIAccess` is restricted, and not when it is open.
    #[test]
    fn an_existing_gossip_cluster_is_left_as_it_is_and_warned_about() {
        let mut bundle = cluster("dev.k8s.local", LoadBalancerType::Public);
        let mut lookups = Lookups::stand_in(&bundle);
        lookups.api_load_balancers = crate::lookups::ExistingApiLoadBalancers {
            public: true,
            internal: false,
        };
        assert_eq!(api_endpoint(&bundle.cluster, &lookups), ApiEndpoint::Single);
        let model = with_lookups(&bundle, &lookups);
        assert!(model.get(&internal_load_balancer_key()).is_none());
        assert!(model
            .get(&security_group_key(API_INTERNAL_LOAD_BALANCER))
            .is_none());
        assert_eq!(
            ingress(&model, API_LOAD_BALANCER),
            sorted(vec![
                https_from(RuleSource::Cidr("203.0.113.0/24".into())),
                https_from(group(CONTROL_PLANE)),
                https_from(group(NODES)),
            ])
        );
        for (template, placeholder, substitutions) in endpoints(&model) {
            assert!(placeholder, "{template}");
            assert_eq!(
                substitutions,
                BTreeMap::from([(
                    API_ENDPOINT_PLACEHOLDER.to_string(),
                    load_balancer_key().output(Output::DnsName)
                )]),
                "{template}"
            );
        }
        assert_eq!(model.warnings.len(), 1, "{:?}", model.warnings);
        let warning = &model.warnings[0];
        for words in [
            "cluster dev.k8s.local",
            "spec.kubernetesAPIAccess (203.0.113.0/24)",
            "NAT gateways' Elastic IPs",
            "recreate the cluster",
        ] {
            assert!(warning.contains(words), "{words}: {warning}");
        }

        bundle.cluster.spec.kubernetes_api_access = vec!["0.0.0.0/0".into()];
        assert!(with_lookups(&bundle, &lookups).warnings.is_empty());
    }

    /// The cloud as `model` describes it, every resource made up and its
    /// references resolved (as `plans/tests/planning.rs` does).
    fn cloud_of(model: &DesiredModel) -> crate::Observed {
        let order = crate::graph::order(&model.resources).expect("no cycle");
        let mut observed = crate::Observed::default();
        for key in order {
            let resource = model.get(&key).expect("present");
            let attributes = crate::resolve::resolve(&resource.attributes, &observed.outputs());
            let id = format!("id-{}", key.as_str().replace('/', "-"));
            let mut outputs = BTreeMap::new();
            for output in [
                Output::Id,
                Output::Arn,
                Output::DnsName,
                Output::CanonicalZone,
                Output::Name,
            ] {
                outputs.insert(output, format!("{id}-{output:?}"));
            }
            outputs.insert(Output::LatestVersion, "1".to_string());
            observed.insert(crate::ObservedResource {
                key: key.clone(),
                id,
                attributes,
                outputs,
            });
        }
        observed
    }

    fn plan_against(model: &DesiredModel, cloud: &DesiredModel) -> crate::Plan {
        let context = crate::PlanContext {
            region: "us-east-1".into(),
            spec_revision: 2,
            state: crate::StateBinding::none(),
        };
        crate::plan(model, &cloud_of(cloud), &context).expect("plans")
    }

    fn keys_by_action(plan: &crate::Plan, action: crate::Action) -> Vec<String> {
        let mut keys: Vec<String> = plan
            .changes
            .iter()
            .filter(|change| change.action == action)
            .map(|change| change.key.to_string())
            .collect();
        keys.sort();
        keys
    }

    /// Issue 18, existing clusters: a DNS cluster built before the internal
    /// endpoint (no internal load balancer, no private zone, the cluster's
    /// groups admitted on the public listener) is planned to get them, and
    /// nothing a node runs changes: no launch template, no roll.
    #[test]
    fn an_existing_dns_cluster_gets_the_private_zone_and_no_roll() {
        let bundle = cluster("c1.example.com", LoadBalancerType::Public);
        let model = model(&bundle);
        let new_keys = [
            internal_load_balancer_key(),
            internal_target_group_key(),
            ResourceKey::new(ResourceKind::Listener, INTERNAL),
            security_group_key(API_INTERNAL_LOAD_BALANCER),
            ResourceKey::new(ResourceKind::SecurityGroupRules, API_INTERNAL_LOAD_BALANCER),
            crate::desired::dns::private_zone_key(),
            crate::desired::dns::private_record_key(),
        ];
        let mut old = model.clone();
        old.resources
            .retain(|resource| !new_keys.contains(&resource.key));
        for resource in &mut old.resources {
            match &mut resource.attributes {
                Attributes::AutoScalingGroup(group) => group
                    .target_groups
                    .retain(|target| *target != internal_target_group_key().output(Output::Id)),
                Attributes::SecurityGroupRules(rules)
                    if resource.key.name() == API_LOAD_BALANCER =>
                {
                    rules.ingress.push(https_from(group(CONTROL_PLANE)));
                    rules.ingress.push(https_from(group(NODES)));
                }
                Attributes::SecurityGroupRules(rules) if resource.key.name() == CONTROL_PLANE => {
                    rules
                        .ingress
                        .retain(|rule| rule.source != group(API_INTERNAL_LOAD_BALANCER));
                }
                _ => {}
            }
        }
        let plan = plan_against(&model, &old);

        let mut created: Vec<String> = new_keys.iter().map(ToString::to_string).collect();
        created.sort();
        assert_eq!(keys_by_action(&plan, crate::Action::Create), created);
        assert_eq!(
            keys_by_action(&plan, crate::Action::Delete),
            Vec::<String>::new()
        );
        assert_eq!(
            keys_by_action(&plan, crate::Action::Replace),
            Vec::<String>::new()
        );
        assert_eq!(
            keys_by_action(&plan, crate::Action::Update),
            [
                "autoscaling-group/control-plane-us-east-1a",
                "security-group-rules/api-load-balancer",
                "security-group-rules/control-plane",
            ]
        );
        assert!(
            plan.rolling_updates.is_empty(),
            "{:#?}",
            plan.rolling_updates
        );
        // The record waits for its zone and for the internal load balancer.
        let record = plan
            .change(&crate::desired::dns::private_record_key())
            .expect("planned");
        assert!(record
            .depends_on
            .contains(&crate::desired::dns::private_zone_key()));
        assert!(record.depends_on.contains(&internal_load_balancer_key()));
        // The zone shadows the public record inside the VPC once it exists:
        // it waits for the internal load balancer and its listener, and is
        // not compared on what it waits for (apply then plan stays zero).
        let zone = plan
            .change(&crate::desired::dns::private_zone_key())
            .expect("planned");
        assert!(zone.depends_on.contains(&internal_load_balancer_key()));
        assert!(zone
            .depends_on
            .contains(&ResourceKey::new(ResourceKind::Listener, INTERNAL)));
        assert!(
            zone.fields.iter().all(|field| field.field != "serves"),
            "{:?}",
            zone.fields
        );
        // It also waits for the internal target group (a healthy target
        // before it shadows the public record) and the public one (whether
        // there is anything to shadow).
        assert!(zone.depends_on.contains(&internal_target_group_key()));
    }

    /// Finding 5 of the issue 18 review: the private zone names, in
    /// `serves`, what must serve before it exists (the internal load
    /// balancer, its listener, its target group) and the public target
    /// group the apply asks whether the API is served today; `serves` is
    /// never compared, so a zone read back (with nothing in `serves`, as
    /// AWS has no such property) plans no change, whatever it names.
    #[test]
    fn the_private_zone_serves_its_target_group_and_is_never_compared_on_it() {
        let bundle = cluster("c1.example.com", LoadBalancerType::Public);
        let model = model(&bundle);
        let zone_key = crate::desired::dns::private_zone_key();
        let Some(Attributes::HostedZone(zone)) =
            model.get(&zone_key).map(|resource| &resource.attributes)
        else {
            panic!("no private zone: {:?}", model.get(&zone_key));
        };
        assert_eq!(
            zone.serves,
            [
                internal_load_balancer_key().output(Output::Arn),
                ResourceKey::new(ResourceKind::Listener, INTERNAL).output(Output::Arn),
                internal_target_group_key().output(Output::Arn),
                target_group_key().output(Output::Arn),
            ]
        );
        let dependencies = model.get(&zone_key).expect("the zone").dependencies();
        for key in [internal_target_group_key(), target_group_key()] {
            assert!(dependencies.contains(&key), "{key}: {dependencies:?}");
        }
        assert!(!Attributes::HostedZone(zone.clone())
            .fields()
            .contains_key("serves"));

        // Read back as the refresh reads it: nothing in `serves`.
        let mut cloud = cloud_of(&model);
        let observed = cloud.resources.get_mut(&zone_key).expect("the zone");
        match &mut observed.attributes {
            Attributes::HostedZone(zone) => {
                assert!(!zone.serves.is_empty());
                zone.serves.clear();
            }
            other => panic!("{other:?}"),
        }
        let context = crate::PlanContext {
            region: "us-east-1".into(),
            spec_revision: 2,
            state: crate::StateBinding::none(),
        };
        let plan = crate::plan(&model, &cloud, &context).expect("plans");
        assert!(plan.changes.is_empty(), "{:#?}", plan.changes);
        // And what it serves changing (another target group) is no change
        // either.
        match &mut cloud
            .resources
            .get_mut(&zone_key)
            .expect("the zone")
            .attributes
        {
            Attributes::HostedZone(zone) => {
                zone.serves = vec![Id::Value("arn:aws:elasticloadbalancing:other".into())];
            }
            other => panic!("{other:?}"),
        }
        let plan = crate::plan(&model, &cloud, &context).expect("plans");
        assert!(plan.changes.is_empty(), "{:#?}", plan.changes);
    }

    /// A shared VPC without DNS support or DNS host names cannot hold the
    /// private zone: refused, naming the VPC and the attribute to turn on.
    #[test]
    fn a_shared_vpc_without_dns_host_names_is_refused() {
        let mut bundle = cluster("c1.example.com", LoadBalancerType::Public);
        bundle.cluster.spec.network_id = Some("vpc-0123abcd".into());
        let mut lookups = Lookups::stand_in(&bundle);
        lookups.shared_vpc = Some(crate::lookups::SharedVpc {
            id: "vpc-0123abcd".into(),
            cidr: "10.0.0.0/16".into(),
            internet_gateway: Some("igw-1".into()),
            dns_support: true,
            dns_hostnames: false,
        });
        let error = crate::desired_model(&bundle, &lookups).expect_err("refused");
        let text = error.to_string();
        for words in [
            "spec.networkID",
            "vpc-0123abcd",
            "enableDnsHostnames",
            "--enable-dns-hostnames",
        ] {
            assert!(text.contains(words), "{words}: {text}");
        }
        // With both on, it plans, and an internal API load balancer needs
        // no zone at all.
        if let Some(shared) = lookups.shared_vpc.as_mut() {
            shared.dns_hostnames = true;
        }
        assert!(crate::desired_model(&bundle, &lookups).is_ok());
        let internal = cluster("c1.example.com", LoadBalancerType::Internal);
        let mut off = lookups.clone();
        if let Some(shared) = off.shared_vpc.as_mut() {
            shared.dns_support = false;
        }
        let mut internal = internal;
        internal.cluster.spec.network_id = Some("vpc-0123abcd".into());
        assert!(crate::desired_model(&internal, &off).is_ok());
    }

    /// An internal API load balancer is already inside the VPC: no second
    /// one, no private zone, and the cluster's members are admitted on it.
    #[test]
    fn an_internal_api_has_one_load_balancer() {
        let bundle = cluster("c1.example.com", LoadBalancerType::Internal);
        let model = model(&bundle);
        assert_eq!(balancer(&model, &load_balancer_key()).scheme, "internal");
        assert!(model.get(&internal_load_balancer_key()).is_none());
        assert!(model
            .get(&security_group_key(API_INTERNAL_LOAD_BALANCER))
            .is_none());
        assert!(model
            .get(&crate::desired::dns::private_zone_key())
            .is_none());
        let rules = ingress(&model, API_LOAD_BALANCER);
        for source in [group(CONTROL_PLANE), group(NODES)] {
            assert!(rules.contains(&https_from(source)));
        }
        for resource in &model.resources {
            if let Attributes::LaunchTemplate(template) = &resource.attributes {
                assert!(template.user_data_substitutions.is_empty());
                assert!(template
                    .user_data
                    .contains("SKIFF_API_ENDPOINT=api.c1.example.com\n"));
            }
        }
    }
}
