//! The API server's network load balancer: a TCP listener on 443 forwarding
//! to a target group on 6443 that the control-plane groups register with.
//!
//! The target group does not preserve client addresses: with preservation
//! on, a control-plane node that reaches the API through the load balancer
//! and lands on itself drops the packets (NLB hairpinning), which breaks
//! `kubeadm init --control-plane-endpoint`. Client filtering happens on the
//! load balancer's own security group instead.
//!
//! An internet-facing API load balancer gets an internal one beside it, with
//! its own target group and listener, and every node and join uses that one
//! (`api_endpoint` in the user-data). From inside the VPC the public load
//! balancer's name resolves to public addresses, so a node's traffic to it
//! leaves through a NAT gateway or the instance's public address, and a
//! security group rule naming the cluster's own groups never matches it:
//! with `kubernetesAPIAccess` restricted, `kubeadm init`, every join and every
//! kubelet would be refused. The internal load balancer admits the cluster's
//! security groups, the public one only `kubernetesAPIAccess`. kops solves the
//! same problem with an `api.internal.<cluster>` name for nodes; Cluster API
//! for AWS with a second, internal load balancer
//! (`AWSCluster.spec.secondaryControlPlaneLoadBalancer`). Nodes use the
//! internal load balancer's own DNS name, filled into the user-data as a
//! gossip cluster's is, so DNS and gossip clusters work alike and no private
//! hosted zone is needed. An internal API load balancer already is inside the
//! VPC: it gets no second one.

use std::collections::BTreeSet;

use skiff_api::{Cluster, LoadBalancerType, SubnetType, Topology};

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

/// Whether the cluster gets an internal API load balancer beside its
/// internet-facing one, for its nodes.
pub fn has_internal_endpoint(cluster: &Cluster) -> bool {
    cluster.spec.api.load_balancer.load_balancer_type == LoadBalancerType::Public
}

/// The load balancer nodes reach the API through: the internal one when
/// the cluster has it, else the only one.
pub fn node_load_balancer_key(cluster: &Cluster) -> ResourceKey {
    if has_internal_endpoint(cluster) {
        internal_load_balancer_key()
    } else {
        load_balancer_key()
    }
}

/// The target groups the control-plane instances register with.
pub fn control_plane_target_groups(cluster: &Cluster) -> Vec<ResourceKey> {
    let mut keys = vec![target_group_key()];
    if has_internal_endpoint(cluster) {
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
    if has_internal_endpoint(&builder.bundle.cluster) {
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
    use crate::resource::{IngressRule, RuleSource};
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

    /// Issue 18: with an internet-facing API load balancer and a restricted
    /// `kubernetesAPIAccess`, nodes reach the API through an internal load
    /// balancer that admits the cluster's groups, while the public one
    /// still admits only `kubernetesAPIAccess`.
    #[test]
    fn a_public_api_gets_an_internal_endpoint_for_the_nodes() {
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

            // The public listener: kubernetesAPIAccess only.
            assert_eq!(
                ingress(&model, API_LOAD_BALANCER),
                [https_from(RuleSource::Cidr("203.0.113.0/24".into()))],
                "{name}"
            );
            // The internal one: the cluster's members, forwarded to 6443.
            assert_eq!(
                ingress(&model, API_INTERNAL_LOAD_BALANCER),
                [https_from(group(CONTROL_PLANE)), https_from(group(NODES))],
                "{name}"
            );
            assert!(ingress(&model, CONTROL_PLANE).contains(&IngressRule {
                protocol: "tcp".into(),
                from_port: 6443,
                to_port: 6443,
                source: group(API_INTERNAL_LOAD_BALANCER),
            }));

            // Every node names the internal load balancer; the control plane
            // registers with both target groups.
            let mut templates = 0;
            for resource in &model.resources {
                match &resource.attributes {
                    Attributes::LaunchTemplate(template) => {
                        templates += 1;
                        assert!(template
                            .user_data
                            .contains(&format!("SKIFF_API_ENDPOINT={API_ENDPOINT_PLACEHOLDER}\n")));
                        assert_eq!(
                            template
                                .user_data_substitutions
                                .get(API_ENDPOINT_PLACEHOLDER),
                            Some(&internal_load_balancer_key().output(Output::DnsName)),
                            "{name}: {}",
                            template.name
                        );
                        // A gossip cluster's operators use the public load
                        // balancer's name: filled in, for the certificate.
                        let public_name = template
                            .user_data_substitutions
                            .get(API_PUBLIC_ENDPOINT_PLACEHOLDER);
                        if name.ends_with(".k8s.local")
                            && template.name.starts_with("control-plane")
                        {
                            assert_eq!(
                                public_name,
                                Some(&load_balancer_key().output(Output::DnsName)),
                                "{}",
                                template.name
                            );
                            assert!(template.user_data.contains(&format!(
                                "SKIFF_API_PUBLIC_ENDPOINT={API_PUBLIC_ENDPOINT_PLACEHOLDER}\n"
                            )));
                        } else {
                            assert_eq!(public_name, None, "{}", template.name);
                        }
                    }
                    Attributes::AutoScalingGroup(group) if group.name.starts_with("control") => {
                        assert_eq!(
                            group.target_groups,
                            [
                                target_group_key().output(Output::Id),
                                internal_target_group_key().output(Output::Id)
                            ]
                        );
                    }
                    _ => {}
                }
            }
            assert_eq!(templates, 3, "{name}");
        }
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

    /// Issue 18, existing clusters: a cluster built before the internal
    /// endpoint (no internal load balancer, nodes naming `api.<cluster>`,
    /// the cluster's groups admitted on the public listener) is planned to
    /// get it, every change named, nothing deleted, and each group's roll
    /// says why.
    #[test]
    fn a_cluster_built_before_the_internal_endpoint_is_told_why_it_changes() {
        let bundle = cluster("c1.example.com", LoadBalancerType::Public);
        let model = model(&bundle);
        let new_keys = [
            internal_load_balancer_key(),
            internal_target_group_key(),
            ResourceKey::new(ResourceKind::Listener, INTERNAL),
            security_group_key(API_INTERNAL_LOAD_BALANCER),
            ResourceKey::new(ResourceKind::SecurityGroupRules, API_INTERNAL_LOAD_BALANCER),
        ];
        let mut old = model.clone();
        old.resources
            .retain(|resource| !new_keys.contains(&resource.key));
        for resource in &mut old.resources {
            match &mut resource.attributes {
                Attributes::LaunchTemplate(template) => {
                    template.user_data = template.user_data.replace(
                        &format!("SKIFF_API_ENDPOINT={API_ENDPOINT_PLACEHOLDER}\n"),
                        "SKIFF_API_ENDPOINT=api.c1.example.com\n",
                    );
                    template.user_data_substitutions.clear();
                }
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
        let context = crate::PlanContext {
            region: "us-east-1".into(),
            spec_revision: 2,
            state: crate::StateBinding::none(),
        };
        let plan = crate::plan(&model, &cloud_of(&old), &context).expect("plans");

        let by_action = |action: crate::Action| -> Vec<String> {
            let mut keys: Vec<String> = plan
                .changes
                .iter()
                .filter(|change| change.action == action)
                .map(|change| change.key.to_string())
                .collect();
            keys.sort();
            keys
        };
        let mut created: Vec<String> = new_keys.iter().map(ToString::to_string).collect();
        created.sort();
        assert_eq!(by_action(crate::Action::Create), created);
        assert_eq!(by_action(crate::Action::Delete), Vec::<String>::new());
        assert_eq!(by_action(crate::Action::Replace), Vec::<String>::new());
        let updated = by_action(crate::Action::Update);
        for key in [
            "security-group-rules/api-load-balancer",
            "security-group-rules/control-plane",
            "autoscaling-group/control-plane-us-east-1a",
            "launch-template/control-plane-us-east-1a",
            "launch-template/nodes-us-east-1a",
            "launch-template/nodes-us-east-1b",
        ] {
            assert!(updated.contains(&key.to_string()), "{key}: {updated:?}");
        }
        assert_eq!(plan.rolling_updates.len(), 3, "{:#?}", plan.rolling_updates);
        for need in &plan.rolling_updates {
            assert_eq!(
                need.reasons,
                ["API endpoint api.c1.example.com -> a load balancer's DNS name (known after apply)"],
                "{}",
                need.group
            );
        }
    }

    /// An internal API load balancer is already inside the VPC: no second
    /// one, and the cluster's members are admitted on it.
    #[test]
    fn an_internal_api_has_one_load_balancer() {
        let bundle = cluster("c1.example.com", LoadBalancerType::Internal);
        let model = model(&bundle);
        assert_eq!(balancer(&model, &load_balancer_key()).scheme, "internal");
        assert!(model.get(&internal_load_balancer_key()).is_none());
        assert!(model
            .get(&security_group_key(API_INTERNAL_LOAD_BALANCER))
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
