//! The Terraform target on plain data: stable addresses, references as
//! expressions, the same user-data bytes as the direct target, and small
//! diffs when the spec changes.

mod support;

use support::options;

use std::collections::BTreeSet;

use serde_json::Value;
use skiff_api::new_cluster::new_cluster;
use skiff_api::{ClusterBundle, Topology};
use skiff_plans::terraform::{generate, TerraformFiles, MAIN_FILE};
use skiff_plans::{Attributes, Lookups};

const THREE_ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

fn terraform_of(bundle: &ClusterBundle) -> TerraformFiles {
    let model = skiff_plans::desired_model(bundle, &Lookups::stand_in(bundle)).expect("model");
    let files = generate(&model, "us-east-1").expect("generates");
    if let Ok(dump) = std::env::var("SKIFF_TERRAFORM_DUMP") {
        let folder = std::path::Path::new(&dump).join(bundle.name());
        for (path, contents) in &files.files {
            let path = folder.join(path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(path, contents).expect("write");
        }
    }
    files
}

fn cluster(name: &str, zones: &[&str], topology: Topology) -> ClusterBundle {
    new_cluster(&options(name, zones, topology)).expect("builds")
}

/// Every resource address (`type.name`) of a configuration.
fn addresses(configuration: &Value) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (kind, named) in configuration["resource"].as_object().expect("resources") {
        for name in named.as_object().expect("named resources").keys() {
            found.insert(format!("{kind}.{name}"));
        }
    }
    found
}

fn resource<'a>(configuration: &'a Value, address: &str) -> &'a Value {
    let (kind, name) = address.split_once('.').expect("type.name");
    let found = &configuration["resource"][kind][name];
    assert!(!found.is_null(), "no resource {address}");
    found
}

fn count(configuration: &Value, kind: &str) -> usize {
    configuration["resource"][kind]
        .as_object()
        .map_or(0, |named| named.len())
}

#[test]
fn a_single_zone_cluster_has_these_addresses() {
    let files = terraform_of(&cluster(
        "c1.example.com",
        &["us-east-1a"],
        Topology::Public,
    ));
    let expected = [
        "aws_autoscaling_group.control_plane_us_east_1a",
        "aws_autoscaling_group.nodes_us_east_1a",
        // The node termination handler's resources (on by default).
        "aws_autoscaling_lifecycle_hook.control_plane_us_east_1a",
        "aws_autoscaling_lifecycle_hook.nodes_us_east_1a",
        "aws_cloudwatch_event_rule.asg_lifecycle",
        "aws_cloudwatch_event_rule.instance_state_change",
        "aws_cloudwatch_event_rule.rebalance_recommendation",
        "aws_cloudwatch_event_rule.spot_interruption",
        "aws_cloudwatch_event_target.asg_lifecycle",
        "aws_cloudwatch_event_target.instance_state_change",
        "aws_cloudwatch_event_target.rebalance_recommendation",
        "aws_cloudwatch_event_target.spot_interruption",
        "aws_sqs_queue.node_termination",
        "aws_iam_instance_profile.control_plane",
        "aws_iam_instance_profile.nodes",
        "aws_iam_role.control_plane",
        "aws_iam_role.nodes",
        "aws_iam_role_policy.control_plane",
        "aws_iam_role_policy.nodes",
        "aws_internet_gateway.main",
        "aws_key_pair.main",
        "aws_launch_template.control_plane_us_east_1a",
        "aws_launch_template.nodes_us_east_1a",
        "aws_lb.api",
        "aws_lb.api_internal",
        "aws_lb_listener.api",
        "aws_lb_listener.api_internal",
        "aws_lb_target_group.api",
        "aws_lb_target_group.api_internal",
        "aws_route.public_default",
        "aws_route53_record.api",
        "aws_route53_record.api_internal",
        "aws_route53_zone.api_internal",
        "aws_route_table.public",
        "aws_route_table_association.public_us_east_1a",
        "aws_security_group.api_internal_load_balancer",
        "aws_security_group.api_load_balancer",
        "aws_security_group.control_plane",
        "aws_security_group.nodes",
        "aws_subnet.us_east_1a",
        "aws_vpc.main",
        "aws_vpc_security_group_egress_rule.api_internal_load_balancer_all",
        "aws_vpc_security_group_egress_rule.api_load_balancer_all",
        "aws_vpc_security_group_egress_rule.control_plane_all",
        "aws_vpc_security_group_egress_rule.nodes_all",
    ];
    let found: BTreeSet<String> = addresses(&files.configuration())
        .into_iter()
        .filter(|address| !address.starts_with("aws_vpc_security_group_ingress_rule."))
        .collect();
    let expected: BTreeSet<String> = expected.iter().map(|text| text.to_string()).collect();
    assert_eq!(found, expected);
    let rules: BTreeSet<String> = addresses(&files.configuration())
        .into_iter()
        .filter(|address| address.starts_with("aws_vpc_security_group_ingress_rule."))
        .collect();
    for rule in [
        "aws_vpc_security_group_ingress_rule.control_plane_tcp_6443_from_nodes",
        "aws_vpc_security_group_ingress_rule.control_plane_tcp_2379_2380_from_control_plane",
        "aws_vpc_security_group_ingress_rule.nodes_proto4_from_control_plane",
        "aws_vpc_security_group_ingress_rule.nodes_tcp_30000_32767_from_10_0_0_0_16",
        "aws_vpc_security_group_ingress_rule.api_load_balancer_tcp_443_from_0_0_0_0_0",
    ] {
        assert!(rules.contains(rule), "{rule} missing from {rules:#?}");
    }
    assert_eq!(files.files.len(), 3, "{:?}", files.files.keys());
    // The private zone answers `api.<cluster>` in the cluster's VPC with the
    // internal load balancer, and is an output.
    let configuration = files.configuration();
    let zone = resource(&configuration, "aws_route53_zone.api_internal");
    assert_eq!(zone["name"], "api.c1.example.com");
    assert_eq!(zone["vpc"][0]["vpc_id"], "${aws_vpc.main.id}");
    let record = resource(&configuration, "aws_route53_record.api_internal");
    assert_eq!(
        record["zone_id"],
        "${aws_route53_zone.api_internal.zone_id}"
    );
    assert_eq!(
        record["alias"][0]["name"],
        "${aws_lb.api_internal.dns_name}"
    );
    assert_eq!(
        configuration["output"]["api_private_zone_id"]["value"],
        "${aws_route53_zone.api_internal.zone_id}"
    );
}

#[test]
fn an_ha_private_cluster_maps_every_resource_and_reference() {
    let bundle = cluster("c1.example.com", &THREE_ZONES, Topology::Private);
    let model = skiff_plans::desired_model(&bundle, &Lookups::stand_in(&bundle)).expect("model");
    let files = terraform_of(&bundle);
    let configuration = files.configuration();

    assert_eq!(
        configuration["terraform"]["required_providers"]["aws"],
        serde_json::json!({ "source": "hashicorp/aws", "version": "~> 5.0" })
    );
    assert_eq!(configuration["provider"]["aws"]["region"], "us-east-1");
    assert_eq!(
        configuration["provider"]["aws"]["default_tags"][0]["tags"],
        serde_json::json!({
            "KubernetesCluster": "c1.example.com",
            "kubernetes.io/cluster/c1.example.com": "owned"
        })
    );
    for (kind, expected) in [
        ("aws_vpc", 1),
        ("aws_subnet", 6),
        ("aws_eip", 3),
        ("aws_nat_gateway", 3),
        ("aws_route_table", 4),
        ("aws_route", 4),
        ("aws_route_table_association", 6),
        ("aws_launch_template", 6),
        ("aws_autoscaling_group", 6),
        // The public record, and the private zone's alias to the internal
        // load balancer.
        ("aws_route53_record", 2),
        ("aws_route53_zone", 1),
        ("aws_security_group", 4),
        ("aws_vpc_security_group_egress_rule", 4),
    ] {
        assert_eq!(count(&configuration, kind), expected, "{kind}");
    }

    // The private zone answers api.<cluster> inside the VPC as soon as it
    // exists: it waits for the internal load balancer it leads to, its
    // listener, the target groups, and the control-plane groups that
    // register the instances with them (the wait for a healthy target is
    // skiff's apply's alone).
    let zone = resource(&configuration, "aws_route53_zone.api_internal");
    assert_eq!(
        zone["depends_on"],
        serde_json::json!([
            "aws_lb.api_internal",
            "aws_lb_listener.api_internal",
            "aws_lb_target_group.api_internal",
            "aws_lb_target_group.api",
            "aws_autoscaling_group.control_plane_us_east_1a",
            "aws_autoscaling_group.control_plane_us_east_1b",
            "aws_autoscaling_group.control_plane_us_east_1c",
        ])
    );

    // References are expressions; nothing of the planner's notation is left.
    let text = String::from_utf8(files.files[MAIN_FILE].clone()).expect("UTF-8");
    assert!(!text.contains("$ref"), "a reference was left unresolved");
    let nat = resource(&configuration, "aws_nat_gateway.us_east_1b");
    assert_eq!(nat["subnet_id"], "${aws_subnet.utility_us_east_1b.id}");
    assert_eq!(nat["allocation_id"], "${aws_eip.us_east_1b.allocation_id}");
    assert_eq!(nat["depends_on"][0], "aws_internet_gateway.main");
    let route = resource(&configuration, "aws_route.private_us_east_1b_default");
    assert_eq!(route["nat_gateway_id"], "${aws_nat_gateway.us_east_1b.id}");
    assert_eq!(
        route["route_table_id"],
        "${aws_route_table.private_us_east_1b.id}"
    );
    let group = resource(
        &configuration,
        "aws_autoscaling_group.control_plane_us_east_1c",
    );
    assert_eq!(
        group["launch_template"][0],
        serde_json::json!({
            "id": "${aws_launch_template.control_plane_us_east_1c.id}",
            "version": "${aws_launch_template.control_plane_us_east_1c.latest_version}"
        })
    );
    assert_eq!(
        group["target_group_arns"][0],
        "${aws_lb_target_group.api.arn}"
    );
    assert_eq!(
        group["vpc_zone_identifier"][0],
        "${aws_subnet.us_east_1c.id}"
    );
    let record = resource(&configuration, "aws_route53_record.api");
    assert_eq!(record["zone_id"], "Z123");
    assert_eq!(record["name"], "api.c1.example.com");
    assert_eq!(record["alias"][0]["name"], "${aws_lb.api.dns_name}");
    assert_eq!(record["alias"][0]["zone_id"], "${aws_lb.api.zone_id}");
    let template = resource(&configuration, "aws_launch_template.nodes_us_east_1a");
    assert_eq!(
        template["iam_instance_profile"][0]["arn"],
        "${aws_iam_instance_profile.nodes.arn}"
    );
    assert_eq!(template["key_name"], "${aws_key_pair.main.key_name}");
    assert_eq!(
        template["user_data"],
        "${base64gzip(file(\"${path.module}/data/nodes-us-east-1a.user-data\"))}"
    );
    let profile = resource(&configuration, "aws_iam_instance_profile.control_plane");
    assert_eq!(profile["role"], "${aws_iam_role.control_plane.name}");

    // Each launch template's user-data file holds exactly the text the
    // direct target compresses and sends: the loader of the script skiff
    // stores.
    for desired in &model.resources {
        if let Attributes::LaunchTemplate(template) = &desired.attributes {
            let path = format!("data/{}.user-data", desired.key.name());
            let ec2 = skiff_templates::ec2_user_data(&template.user_data).expect("EC2's form");
            assert!(
                files.files.get(&path) == Some(&ec2.text.as_bytes().to_vec()),
                "{path} is not the user-data EC2 gets"
            );
            assert_eq!(
                ec2.script.is_some(),
                template
                    .user_data
                    .contains(skiff_templates::paths::BOOTSTRAP_SCRIPT),
                "{path}: a node's user-data names a stored script"
            );
        }
    }
}

#[test]
fn a_gossip_cluster_substitutes_the_load_balancer_name_in_terraform() {
    let files = terraform_of(&cluster("dev.k8s.local", &["us-east-1a"], Topology::Public));
    let configuration = files.configuration();
    assert_eq!(count(&configuration, "aws_route53_record"), 0);
    let template = resource(&configuration, "aws_launch_template.nodes_us_east_1a");
    assert_eq!(
        template["user_data"],
        "${base64gzip(replace(file(\"${path.module}/data/nodes-us-east-1a.user-data\"), \"api-endpoint.skiff.invalid\", aws_lb.api_internal.dns_name))}"
    );
    let user_data =
        String::from_utf8(files.files["data/nodes-us-east-1a.user-data"].clone()).expect("UTF-8");
    assert!(user_data.contains("api-endpoint.skiff.invalid"));
}

#[test]
fn generating_twice_gives_the_same_bytes_with_sorted_keys() {
    let bundle = cluster("c1.example.com", &THREE_ZONES, Topology::Private);
    let first = terraform_of(&bundle);
    assert_eq!(first, terraform_of(&bundle));
    fn assert_sorted(value: &Value, path: &str) {
        match value {
            Value::Object(map) => {
                let keys: Vec<&String> = map.keys().collect();
                let mut sorted = keys.clone();
                sorted.sort();
                assert_eq!(keys, sorted, "keys of {path}");
                for (key, child) in map {
                    assert_sorted(child, &format!("{path}.{key}"));
                }
            }
            Value::Array(items) => items.iter().for_each(|item| assert_sorted(item, path)),
            _ => {}
        }
    }
    assert_sorted(&first.configuration(), "");
}

#[test]
fn a_machine_type_change_changes_only_that_launch_template() {
    let bundle = cluster("c1.example.com", &THREE_ZONES, Topology::Private);
    let before = terraform_of(&bundle);
    let mut changed = bundle.clone();
    changed
        .instance_groups
        .iter_mut()
        .find(|group| group.name() == "nodes-us-east-1b")
        .expect("nodes-us-east-1b")
        .spec
        .machine_type = "m6i.large".into();
    let after = terraform_of(&changed);

    let (old, new) = (before.configuration(), after.configuration());
    let all: BTreeSet<String> = addresses(&old).union(&addresses(&new)).cloned().collect();
    let differing: Vec<&String> = all
        .iter()
        .filter(|address| {
            let (kind, name) = address.split_once('.').expect("type.name");
            old["resource"][kind][name] != new["resource"][kind][name]
        })
        .collect();
    assert_eq!(differing, ["aws_launch_template.nodes_us_east_1b"]);
    assert_eq!(
        resource(&new, "aws_launch_template.nodes_us_east_1b")["instance_type"],
        "m6i.large"
    );
    // Everything else is byte for byte the same: the data files, and the
    // configuration but for one line.
    for (path, contents) in &before.files {
        if path != MAIN_FILE {
            assert_eq!(after.files.get(path), Some(contents), "{path}");
        }
    }
    let old_text = String::from_utf8(before.files[MAIN_FILE].clone()).expect("UTF-8");
    let new_text = String::from_utf8(after.files[MAIN_FILE].clone()).expect("UTF-8");
    let changed_lines: Vec<(&str, &str)> = old_text
        .lines()
        .zip(new_text.lines())
        .filter(|(old, new)| old != new)
        .collect();
    assert_eq!(old_text.lines().count(), new_text.lines().count());
    assert_eq!(
        changed_lines,
        [(
            "        \"instance_type\": \"t3.medium\",",
            "        \"instance_type\": \"m6i.large\","
        )]
    );
}

#[test]
fn model_text_is_never_read_as_a_template() {
    let mut bundle = cluster("c1.example.com", &["us-east-1a"], Topology::Public);
    bundle
        .cluster
        .spec
        .cloud_labels
        .insert("team".into(), "${oops} %{ if x }".into());
    let configuration = terraform_of(&bundle).configuration();
    assert_eq!(
        resource(&configuration, "aws_vpc.main")["tags"]["team"],
        "$${oops} %%{ if x }"
    );
}

#[test]
fn a_windows_group_user_data_is_base64_without_gzip_in_terraform() {
    let mut bundle = cluster("c1.example.com", &["us-east-1a"], Topology::Public);
    for group in &mut bundle.instance_groups {
        if group.name() == "nodes-us-east-1a" {
            group.spec.os_family = skiff_api::OsFamily::Windows;
            group.spec.image = Some(skiff_api::windows::DEFAULT_IMAGE.to_string());
        }
    }
    let files = terraform_of(&bundle);
    let configuration = files.configuration();
    let template = resource(&configuration, "aws_launch_template.nodes_us_east_1a");
    assert_eq!(
        template["user_data"],
        "${base64encode(file(\"${path.module}/data/nodes-us-east-1a.user-data\"))}"
    );
    let user_data =
        String::from_utf8(files.files["data/nodes-us-east-1a.user-data"].clone()).expect("UTF-8");
    assert!(user_data.starts_with("<powershell>\n"), "{user_data}");
    let control_plane = resource(
        &configuration,
        "aws_launch_template.control_plane_us_east_1a",
    );
    assert!(
        control_plane["user_data"]
            .as_str()
            .is_some_and(|text| text.starts_with("${base64gzip(")),
        "{control_plane:#}"
    );
}

/// The queue policy in the Terraform output is the direct target's: only
/// EventBridge, only this cluster's rules, only the account the plan was
/// made for (issue 18, review finding 2).
#[test]
fn the_termination_queue_policy_names_the_rules_and_the_account_in_terraform() {
    let bundle = cluster("c1.example.com", &["us-east-1a"], Topology::Public);
    let model = skiff_plans::desired_model(&bundle, &Lookups::stand_in(&bundle)).expect("model");
    let files = generate(&model, "us-east-1").expect("generates");
    let configuration: Value = serde_json::from_slice(&files.files[MAIN_FILE]).expect("JSON");
    let queue = resource(&configuration, "aws_sqs_queue.node_termination");
    let policy: Value =
        serde_json::from_str(queue["policy"].as_str().expect("a policy string")).expect("JSON");
    let statement = &policy["Statement"][0];
    assert_eq!(
        statement["Principal"],
        serde_json::json!({ "Service": "events.amazonaws.com" })
    );
    assert_eq!(
        statement["Resource"],
        "arn:aws:sqs:us-east-1:123456789012:c1-example-com-nth"
    );
    let arns = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
        .as_array()
        .expect("rule ARNs");
    assert_eq!(arns.len(), 4, "{policy:#}");
    for rule in [
        "asg-lifecycle",
        "spot-interruption",
        "rebalance-recommendation",
        "instance-state-change",
    ] {
        let arn = format!("arn:aws:events:us-east-1:123456789012:rule/c1-example-com-{rule}");
        assert!(
            arns.iter().any(|named| named == &arn),
            "{arn} not in {policy:#}"
        );
    }
    assert_eq!(
        statement["Condition"]["StringEquals"]["aws:SourceAccount"],
        "123456789012"
    );
}
