//! The planner on plain data: what an HA private cluster needs, that a
//! cloud matching the model plans to nothing, and how changes show.

mod support;

use support::options;

use std::collections::BTreeMap;

use skiff_api::new_cluster::new_cluster;
use skiff_api::Topology;
use skiff_plans::resolve::resolve;
use skiff_plans::{Action, Lookups, Observed, ObservedResource, Output, PlanContext, ResourceKind};

fn context() -> PlanContext {
    PlanContext {
        region: "us-east-1".into(),
        spec_revision: 1,
        state: skiff_plans::StateBinding::none(),
    }
}

/// A cloud exactly like the model: every resource exists with made-up IDs.
fn cloud_matching(model: &skiff_plans::DesiredModel) -> Observed {
    let order = skiff_plans::graph::order(&model.resources).expect("no cycle");
    let mut observed = Observed::default();
    for key in order {
        let resource = model.get(&key).expect("present");
        let known = observed.outputs();
        let attributes = resolve(&resource.attributes, &known);
        assert!(
            attributes.references().is_empty(),
            "{key} still has references"
        );
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
        observed.insert(ObservedResource {
            key: key.clone(),
            id,
            attributes,
            outputs,
        });
    }
    observed
}

#[test]
fn ha_private_cluster_has_every_resource() {
    let bundle = new_cluster(&options(
        "c1.example.com",
        &["us-east-1a", "us-east-1b", "us-east-1c"],
        Topology::Private,
    ))
    .expect("builds");
    let model = skiff_plans::desired_model(&bundle, &Lookups::stand_in(&bundle)).expect("model");
    let count = |kind: ResourceKind| {
        model
            .resources
            .iter()
            .filter(|resource| resource.kind() == kind)
            .count()
    };
    assert_eq!(count(ResourceKind::Vpc), 1);
    assert_eq!(count(ResourceKind::Subnet), 6);
    assert_eq!(count(ResourceKind::NatGateway), 3);
    assert_eq!(count(ResourceKind::ElasticIp), 3);
    assert_eq!(count(ResourceKind::RouteTable), 4);
    assert_eq!(count(ResourceKind::LaunchTemplate), 6);
    assert_eq!(count(ResourceKind::AutoScalingGroup), 6);
    // The internet-facing API load balancer and the internal one for nodes.
    assert_eq!(count(ResourceKind::LoadBalancer), 2);
    // The public `api.<cluster>` record, and the same name in the private
    // zone that answers it inside the VPC with the internal load balancer.
    assert_eq!(count(ResourceKind::DnsRecord), 2);
    assert_eq!(count(ResourceKind::HostedZone), 1);
    assert_eq!(count(ResourceKind::KeyPair), 1);
    assert_eq!(count(ResourceKind::IamRole), 2);

    let plan = skiff_plans::plan(&model, &Observed::default(), &context()).expect("plans");
    assert_eq!(plan.summary.create, model.resources.len());
    assert!(plan
        .changes
        .iter()
        .all(|change| change.action == Action::Create));
    // Dependencies come first.
    let position = |key: &str| {
        plan.changes
            .iter()
            .position(|change| change.key.as_str() == key)
            .expect("present")
    };
    assert!(position("vpc") < position("subnet/us-east-1a"));
    assert!(position("nat-gateway/us-east-1a") < position("route-table/private-us-east-1a"));
    assert!(
        position("launch-template/nodes-us-east-1a")
            < position("autoscaling-group/nodes-us-east-1a")
    );
}

/// Every field `immutable_fields` names is a serialized field of that kind's
/// attributes: a misspelt or stale name would never match, so a change that
/// needs a replacement would be planned as an update (the NAT gateway once
/// listed a `connectivity` field its attributes do not have).
#[test]
fn immutable_fields_are_fields_of_their_kind() {
    let bundle = new_cluster(&options(
        "c1.example.com",
        &["us-east-1a", "us-east-1b", "us-east-1c"],
        Topology::Private,
    ))
    .expect("builds");
    let model = skiff_plans::desired_model(&bundle, &Lookups::stand_in(&bundle)).expect("model");
    for kind in ResourceKind::ALL {
        if kind.immutable_fields().is_empty() {
            // Nothing to check (an addon, which the model has only once
            // the addon manifests render).
            continue;
        }
        let example = model
            .resources
            .iter()
            .find(|resource| resource.kind() == kind)
            .unwrap_or_else(|| panic!("the model has no {kind} to check"));
        let fields = example.attributes.fields();
        for field in kind.immutable_fields() {
            assert!(
                fields.contains_key(*field),
                "{kind}: immutable field {field:?} is not one of {:?}",
                fields.keys().collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn a_cloud_that_matches_plans_nothing() {
    for (name, zones, topology) in [
        (
            "c1.example.com",
            vec!["us-east-1a", "us-east-1b", "us-east-1c"],
            Topology::Private,
        ),
        ("single.example.com", vec!["us-east-1a"], Topology::Public),
        ("dev.k8s.local", vec!["us-east-1a"], Topology::Public),
    ] {
        let bundle = new_cluster(&options(name, &zones, topology)).expect("builds");
        let model =
            skiff_plans::desired_model(&bundle, &Lookups::stand_in(&bundle)).expect("model");
        let observed = cloud_matching(&model);
        let plan = skiff_plans::plan(&model, &observed, &context()).expect("plans");
        assert!(plan.is_empty(), "{name}: {:#?}", plan.changes);
    }
}

#[test]
fn gossip_clusters_have_no_dns_record_and_substitute_the_load_balancer_name() {
    let bundle =
        new_cluster(&options("dev.k8s.local", &["us-east-1a"], Topology::Public)).expect("builds");
    let mut no_zone = Lookups::stand_in(&bundle);
    no_zone.hosted_zone = None;
    let model = skiff_plans::desired_model(&bundle, &no_zone).expect("model");
    assert!(model.resources.iter().all(|resource| !matches!(
        resource.kind(),
        ResourceKind::DnsRecord | ResourceKind::HostedZone
    )));
    let observed = cloud_matching(&model);
    let template = observed
        .resources
        .values()
        .find(|resource| resource.kind() == ResourceKind::LaunchTemplate)
        .expect("a template");
    let skiff_plans::Attributes::LaunchTemplate(attributes) = &template.attributes else {
        panic!("kind")
    };
    assert!(
        attributes
            .user_data
            .contains("id-load-balancer-api-internal-DnsName"),
        "the internal NLB's DNS name is substituted"
    );
    assert!(!attributes.user_data.contains("skiff.invalid"));
}

#[test]
fn machine_type_change_updates_the_template_and_needs_a_rolling_update() {
    let bundle = new_cluster(&options(
        "c1.example.com",
        &["us-east-1a"],
        Topology::Public,
    ))
    .expect("builds");
    let model = skiff_plans::desired_model(&bundle, &Lookups::stand_in(&bundle)).expect("model");
    let observed = cloud_matching(&model);
    let mut changed = bundle.clone();
    let nodes = changed
        .instance_groups
        .iter_mut()
        .find(|group| group.name() == "nodes-us-east-1a")
        .expect("nodes");
    nodes.spec.machine_type = "m6i.large".into();
    let model = skiff_plans::desired_model(&changed, &Lookups::stand_in(&changed)).expect("model");
    let plan = skiff_plans::plan(&model, &observed, &context()).expect("plans");
    let keys: Vec<(&str, Action)> = plan
        .changes
        .iter()
        .map(|change| (change.key.as_str(), change.action))
        .collect();
    assert_eq!(
        keys,
        [
            ("launch-template/nodes-us-east-1a", Action::Update),
            ("autoscaling-group/nodes-us-east-1a", Action::Update)
        ]
    );
    let template = &plan.changes[0];
    assert_eq!(template.fields.len(), 1);
    assert_eq!(template.fields[0].field, "instanceType");
    let version = &plan.changes[1].fields[0];
    assert_eq!(version.field, "launchTemplateVersion");
    assert!(version.after_unknown);
    assert_eq!(plan.rolling_updates.len(), 1);
    assert_eq!(plan.rolling_updates[0].group, "nodes-us-east-1a");
    assert_eq!(
        plan.rolling_updates[0].reasons,
        ["machineType t3.medium -> m6i.large"]
    );
}

#[test]
fn scaling_changes_only_the_auto_scaling_group() {
    let bundle = new_cluster(&options(
        "c1.example.com",
        &["us-east-1a"],
        Topology::Public,
    ))
    .expect("builds");
    let model = skiff_plans::desired_model(&bundle, &Lookups::stand_in(&bundle)).expect("model");
    let observed = cloud_matching(&model);
    let mut changed = bundle.clone();
    let nodes = changed
        .instance_groups
        .iter_mut()
        .find(|group| group.name() == "nodes-us-east-1a")
        .expect("nodes");
    nodes.spec.min_size = 5;
    nodes.spec.max_size = 5;
    let model = skiff_plans::desired_model(&changed, &Lookups::stand_in(&changed)).expect("model");
    let plan = skiff_plans::plan(&model, &observed, &context()).expect("plans");
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(
        plan.changes[0].key.as_str(),
        "autoscaling-group/nodes-us-east-1a"
    );
    let fields: Vec<&str> = plan.changes[0]
        .fields
        .iter()
        .map(|field| field.field.as_str())
        .collect();
    assert_eq!(fields, ["maxSize", "minSize"]);
    assert!(plan.rolling_updates.is_empty());
}

#[test]
fn removed_groups_and_strays_are_deleted_dependents_first() {
    let bundle = new_cluster(&options(
        "c1.example.com",
        &["us-east-1a"],
        Topology::Public,
    ))
    .expect("builds");
    let model = skiff_plans::desired_model(&bundle, &Lookups::stand_in(&bundle)).expect("model");
    let mut observed = cloud_matching(&model);
    let mut stray = observed
        .resources
        .values()
        .find(|resource| resource.kind() == ResourceKind::Subnet)
        .expect("subnet")
        .clone();
    stray.id = "subnet-duplicate".into();
    observed.insert(stray);
    let mut changed = bundle.clone();
    changed
        .instance_groups
        .retain(|group| group.name() != "nodes-us-east-1a");
    let model = skiff_plans::desired_model(&changed, &Lookups::stand_in(&changed)).expect("model");
    let plan = skiff_plans::plan(&model, &observed, &context()).expect("plans");
    let deletes: Vec<&str> = plan
        .changes
        .iter()
        .filter(|change| change.action == Action::Delete)
        .map(|change| change.key.as_str())
        .collect();
    assert_eq!(
        deletes,
        [
            // The group's termination lifecycle hook (the node termination
            // handler is on by default) goes with it.
            "lifecycle-hook/nodes-us-east-1a",
            "autoscaling-group/nodes-us-east-1a",
            "launch-template/nodes-us-east-1a",
            "subnet/us-east-1a"
        ]
    );
    assert_eq!(
        plan.changes.last().and_then(|change| change.id.as_deref()),
        Some("subnet-duplicate")
    );
}

/// Control-plane groups replace an instance whose API server never passes
/// the load balancer's health check; the others rely on EC2 status checks.
#[test]
fn control_plane_groups_use_the_load_balancers_health_check() {
    let bundle = new_cluster(&options(
        "c1.example.com",
        &["us-east-1a", "us-east-1b", "us-east-1c"],
        Topology::Private,
    ))
    .expect("builds");
    let model = skiff_plans::desired_model(&bundle, &Lookups::stand_in(&bundle)).expect("model");
    let mut seen = 0;
    for resource in &model.resources {
        let skiff_plans::resource::Attributes::AutoScalingGroup(group) = &resource.attributes
        else {
            continue;
        };
        seen += 1;
        let expected = if group.name.starts_with("control-plane") {
            ("ELB", 1200)
        } else {
            ("EC2", 600)
        };
        assert_eq!(
            (
                group.health_check_type.as_str(),
                group.health_check_grace_period
            ),
            expected,
            "{}",
            group.name
        );
    }
    assert_eq!(seen, 6);
}

/// `spec.containerRuntime` on one group rolls that group only, and the
/// reason names the runtime (plans/src/user_data.rs verifies that nothing
/// but the runtime's lines changed); on the cluster it rolls every group
/// that runs containers, and never the bastions.
#[test]
fn a_runtime_change_rolls_the_groups_that_run_it_with_the_runtime_as_the_reason() {
    use skiff_api::ContainerRuntime;

    let bundle = new_cluster(&options(
        "c1.example.com",
        &["us-east-1a", "us-east-1b", "us-east-1c"],
        Topology::Private,
    ))
    .expect("builds");
    let model = skiff_plans::desired_model(&bundle, &Lookups::stand_in(&bundle)).expect("model");
    let observed = cloud_matching(&model);
    let rolled = |changed: &skiff_api::ClusterBundle| -> Vec<(String, Vec<String>)> {
        let model =
            skiff_plans::desired_model(changed, &Lookups::stand_in(changed)).expect("model");
        let plan = skiff_plans::plan(&model, &observed, &context()).expect("plans");
        assert!(
            plan.changes.iter().all(|change| {
                let key = change.key.as_str();
                key.starts_with("launch-template/") || key.starts_with("autoscaling-group/")
            }),
            "{:?}",
            plan.changes
        );
        plan.rolling_updates
            .iter()
            .map(|update| (update.group.clone(), update.reasons.clone()))
            .collect()
    };

    let mut one_group = bundle.clone();
    one_group
        .instance_groups
        .iter_mut()
        .find(|group| group.name() == "nodes-us-east-1b")
        .expect("nodes")
        .spec
        .container_runtime = Some(ContainerRuntime::CriO);
    assert_eq!(
        rolled(&one_group),
        [(
            "nodes-us-east-1b".to_string(),
            vec!["containerRuntime containerd -> cri-o".to_string()]
        )]
    );

    let mut whole_cluster = bundle.clone();
    whole_cluster.cluster.spec.container_runtime = ContainerRuntime::CriO;
    let rolls = rolled(&whole_cluster);
    let running_containers: Vec<&str> = bundle
        .instance_groups
        .iter()
        .filter(|group| group.spec.role != skiff_api::InstanceGroupRole::Bastion)
        .map(|group| group.name())
        .collect();
    assert_eq!(
        rolls
            .iter()
            .map(|(group, _)| group.as_str())
            .collect::<Vec<_>>(),
        running_containers
    );
    for (group, reasons) in &rolls {
        assert_eq!(
            reasons,
            &["containerRuntime containerd -> cri-o"],
            "{group}"
        );
    }

    // A group that names the cluster's runtime changes nothing.
    let mut same = bundle.clone();
    same.instance_groups[0].spec.container_runtime = Some(ContainerRuntime::Containerd);
    assert!(rolled(&same).is_empty());
}

/// ICMP between every member of the cluster (path MTU discovery, health
/// checks), in both directions between the control plane and the nodes.
#[test]
fn cluster_members_admit_icmp_from_each_other() {
    use skiff_plans::resource::{Attributes, RuleSource};

    let bundle = new_cluster(&options(
        "c1.example.com",
        &["us-east-1a"],
        Topology::Public,
    ))
    .expect("builds");
    let model = skiff_plans::desired_model(&bundle, &Lookups::stand_in(&bundle)).expect("model");
    for role in ["control-plane", "nodes"] {
        let key = skiff_plans::ResourceKey::new(ResourceKind::SecurityGroupRules, role);
        let Some(Attributes::SecurityGroupRules(rules)) =
            model.get(&key).map(|resource| &resource.attributes)
        else {
            panic!("no rules for {role}");
        };
        let icmp: Vec<String> = rules
            .ingress
            .iter()
            .filter(|rule| rule.protocol == "icmp")
            .map(|rule| {
                assert_eq!(
                    (rule.from_port, rule.to_port),
                    (-1, -1),
                    "all types and codes"
                );
                match &rule.source {
                    RuleSource::Group(group) => group
                        .reference()
                        .map(|reference| reference.to_string())
                        .unwrap_or_default(),
                    RuleSource::Cidr(cidr) => cidr.clone(),
                }
            })
            .collect();
        assert_eq!(icmp.len(), 2, "{role}: {icmp:?}");
        assert!(
            icmp.iter().any(|source| source.contains("control-plane")),
            "{icmp:?}"
        );
        assert!(
            icmp.iter().any(|source| source.contains("nodes")),
            "{icmp:?}"
        );
    }
}

/// Turning the cloud-controller-manager on or off (`spec.addons`) rolls
/// every Kubernetes group, and the plan says why: the kubelet's cloud
/// provider and the node's name.
#[test]
fn the_cloud_provider_change_is_named_as_the_reason_groups_roll() {
    let user_data = |enabled: bool| {
        let mut bundle = new_cluster(&options(
            "c1.example.com",
            &["us-east-1a"],
            Topology::Private,
        ))
        .expect("builds");
        bundle.cluster.spec.addons.cloud_controller_manager = Some(skiff_api::AddonSpec {
            enabled: Some(enabled),
            version: None,
        });
        if !enabled {
            // Without the cloud-controller-manager nothing may need it.
            bundle.cluster.spec.addons.ebs_csi_driver = Some(skiff_api::AddonSpec {
                enabled: Some(false),
                version: None,
            });
        }
        let model =
            skiff_plans::desired_model(&bundle, &Lookups::stand_in(&bundle)).expect("model");
        let template = model
            .get(&skiff_plans::ResourceKey::new(
                ResourceKind::LaunchTemplate,
                "nodes-us-east-1a",
            ))
            .expect("the nodes' template");
        let skiff_plans::resource::Attributes::LaunchTemplate(template) = &template.attributes
        else {
            panic!("not a launch template");
        };
        template.user_data.clone()
    };
    let (off, on) = (user_data(false), user_data(true));
    assert!(skiff_plans::user_data::explain(&off, &on)
        .reasons()
        .contains(&"kubelet cloud-provider (unset) -> external, node name host name -> private DNS name (spec.addons.cloudControllerManager)".to_string()));
    assert!(skiff_plans::user_data::explain(&on, &off)
        .reasons()
        .iter()
        .any(|reason| reason.starts_with("kubelet cloud-provider external -> (unset)")));
}
