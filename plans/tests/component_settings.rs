//! `spec.kubelet` and `spec.controlPlane.*.extraArgs` in the plan: a change
//! rolls exactly the groups whose user-data it changes, and the reason is
//! read from the files the plan compares (`user_data::explain`).

mod support;

use support::options;

use std::collections::BTreeMap;

use skiff_api::new_cluster::new_cluster;
use skiff_api::{ClusterBundle, KubeletSpec, Topology};
use skiff_plans::resolve::resolve;
use skiff_plans::{Lookups, Observed, ObservedResource, Output, Plan, PlanContext};

fn context() -> PlanContext {
    PlanContext {
        region: "us-east-1".into(),
        spec_revision: 1,
        state: skiff_plans::StateBinding::none(),
    }
}

/// A cloud exactly like the model of `bundle`.
fn cloud_of(bundle: &ClusterBundle) -> Observed {
    let model = skiff_plans::desired_model(bundle, &Lookups::stand_in(bundle)).expect("model");
    let order = skiff_plans::graph::order(&model.resources).expect("no cycle");
    let mut observed = Observed::default();
    for key in order {
        let resource = model.get(&key).expect("present");
        let attributes = resolve(&resource.attributes, &observed.outputs());
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

fn plan(bundle: &ClusterBundle, observed: &Observed) -> Plan {
    let model = skiff_plans::desired_model(bundle, &Lookups::stand_in(bundle)).expect("model");
    skiff_plans::plan(&model, observed, &context()).expect("plans")
}

/// (group, reasons) of the plan's rolling updates.
fn rolls(plan: &Plan) -> Vec<(String, Vec<String>)> {
    plan.rolling_updates
        .iter()
        .map(|need| (need.group.clone(), need.reasons.clone()))
        .collect()
}

fn cluster() -> ClusterBundle {
    new_cluster(&options(
        "c1.example.com",
        &["us-east-1a", "us-east-1b"],
        Topology::Public,
    ))
    .expect("builds")
}

/// Must-show: a kubelet setting on one group rolls that group only, and the
/// reason names the field; changing and removing it name it again.
#[test]
fn a_kubelet_setting_on_one_group_rolls_that_group_only_naming_the_field() {
    let bundle = cluster();
    let observed = cloud_of(&bundle);
    assert!(plan(&bundle, &observed).changes.is_empty());
    let nodes: Vec<String> = bundle
        .instance_groups
        .iter()
        .filter(|group| group.spec.role == skiff_api::InstanceGroupRole::Node)
        .map(|group| group.name().to_string())
        .collect();
    assert!(nodes.len() >= 2, "{nodes:?}");

    let mut changed = bundle.clone();
    let group = changed
        .instance_groups
        .iter_mut()
        .find(|group| group.name() == nodes[0])
        .expect("the group");
    group.spec.kubelet = KubeletSpec {
        max_pods: Some(250),
        kube_reserved: BTreeMap::from([("memory".to_string(), "512Mi".to_string())]),
        ..KubeletSpec::default()
    };
    assert_eq!(
        rolls(&plan(&changed, &observed)),
        [(
            nodes[0].clone(),
            vec![
                "kubelet kubeReserved.memory (unset) -> 512Mi, maxPods (unset) -> 250".to_string()
            ]
        )]
    );

    // From that state, a changed value and then none at all.
    let observed = cloud_of(&changed);
    let mut raised = changed.clone();
    raised
        .instance_groups
        .iter_mut()
        .find(|group| group.name() == nodes[0])
        .expect("the group")
        .spec
        .kubelet
        .max_pods = Some(300);
    assert_eq!(
        rolls(&plan(&raised, &observed)),
        [(
            nodes[0].clone(),
            vec!["kubelet maxPods 250 -> 300".to_string()]
        )]
    );
    assert_eq!(
        rolls(&plan(&bundle, &observed)),
        [(
            nodes[0].clone(),
            vec![
                "kubelet kubeReserved.memory 512Mi -> (unset), maxPods 250 -> (unset)".to_string()
            ]
        )]
    );
}

/// A cluster-wide setting reaches every group that runs a kubelet; a
/// group's own value wins over it, so that group does not roll.
#[test]
fn a_cluster_kubelet_setting_rolls_the_groups_whose_merged_settings_change() {
    let mut bundle = cluster();
    let pinned = bundle
        .instance_groups
        .iter()
        .find(|group| group.spec.role == skiff_api::InstanceGroupRole::Node)
        .expect("a node group")
        .name()
        .to_string();
    for group in &mut bundle.instance_groups {
        if group.name() == pinned {
            group.spec.kubelet.max_pods = Some(50);
        }
    }
    let observed = cloud_of(&bundle);
    let mut changed = bundle.clone();
    changed.cluster.spec.kubelet.max_pods = Some(200);
    let rolled = rolls(&plan(&changed, &observed));
    let expected: Vec<(String, Vec<String>)> = bundle
        .instance_groups
        .iter()
        .filter(|group| {
            group.spec.role != skiff_api::InstanceGroupRole::Bastion && group.name() != pinned
        })
        .map(|group| {
            (
                group.name().to_string(),
                vec!["kubelet maxPods (unset) -> 200".to_string()],
            )
        })
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(rolled, expected);
}

/// Must-show: a control-plane `extraArgs` change rolls the control plane
/// only, naming the component's flag.
#[test]
fn a_control_plane_extra_args_change_rolls_the_control_plane_only() {
    let bundle = cluster();
    let observed = cloud_of(&bundle);
    let mut changed = bundle.clone();
    let control_plane = &mut changed.cluster.spec.control_plane;
    control_plane.api_server.extra_args.insert(
        "oidc-issuer-url".to_string(),
        "https://issuer.example.com".to_string(),
    );
    control_plane
        .scheduler
        .extra_args
        .insert("v".to_string(), "2".to_string());
    let rolled = rolls(&plan(&changed, &observed));
    let control_planes: Vec<(String, Vec<String>)> = bundle
        .instance_groups
        .iter()
        .filter(|group| group.spec.role == skiff_api::InstanceGroupRole::ControlPlane)
        .map(|group| {
            (
                group.name().to_string(),
                vec![
                    "controlPlane apiServer.extraArgs oidc-issuer-url (unset) -> https://issuer.example.com"
                        .to_string(),
                    "controlPlane scheduler.extraArgs v (unset) -> 2".to_string(),
                ],
            )
        })
        .collect();
    assert!(!control_planes.is_empty());
    assert_eq!(rolled, control_planes);
}
