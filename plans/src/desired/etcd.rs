//! External etcd (`spec.etcd.topology: external`): the members' fixed
//! addresses, the security group that admits only the control plane
//! (client port) and the members themselves, and what ties the control
//! plane's launch to the members'.
//!
//! Each `Etcd` instance group runs one member. Its launch template fixes
//! the instance's primary private IP, so a replaced instance comes back at
//! the address the other members' `--initial-cluster` and every API
//! server's `--etcd-servers` name (docs/external-etcd.md explains the
//! choice against per-member DNS names, as kops's etcd-manager publishes,
//! and against endpoints that follow the instances, as Cluster API's
//! etcdadm provider rolls its control plane for). The address of member
//! number `n` (0-based, by group name) is the `n+1`-th address from the top
//! of its subnet: AWS reserves the last one (and the first four), and
//! instances without a fixed address are handed addresses from the whole
//! range, so the top is where a collision is least likely; the member
//! numbers are unique in the cluster, so two members never share one.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use skiff_api::{EtcdTopology, InstanceGroup, InstanceGroupRole};
use skiff_templates::{EtcdMember, ExternalEtcd};

use super::Builder;
use crate::error::PlanError;

/// The security group of the etcd members.
pub const ETCD: &str = "etcd";

/// Whether the cluster runs etcd on groups of its own.
pub(crate) fn is_external(builder: &Builder<'_>) -> bool {
    builder.bundle.cluster.spec.etcd.topology == EtcdTopology::External
}

/// The `Etcd` groups, by name.
pub(crate) fn member_groups<'spec>(builder: &Builder<'spec>) -> Vec<&'spec InstanceGroup> {
    let mut groups: Vec<&InstanceGroup> = builder
        .bundle
        .instance_groups
        .iter()
        .filter(|group| group.spec.role == InstanceGroupRole::Etcd)
        .collect();
    groups.sort_by(|first, second| first.name().cmp(second.name()));
    groups
}

/// The external etcd cluster: every member with its fixed address; `None`
/// for stacked etcd.
pub(crate) fn external_etcd(builder: &Builder<'_>) -> Result<Option<ExternalEtcd>, PlanError> {
    if !is_external(builder) {
        return Ok(None);
    }
    let mut members = Vec::new();
    for (number, group) in member_groups(builder).into_iter().enumerate() {
        let subnet = group.spec.subnets.first().cloned().unwrap_or_default();
        let range = subnet_range(builder, &subnet).ok_or_else(|| PlanError::EtcdMemberAddress {
            group: group.name().to_string(),
            problem: format!("the range of subnet {subnet:?} is not known"),
        })?;
        let address =
            member_address(range, number).ok_or_else(|| PlanError::EtcdMemberAddress {
                group: group.name().to_string(),
                problem: format!(
                    "subnet {subnet:?} ({range}) is too small for member number {}",
                    number + 1
                ),
            })?;
        members.push(EtcdMember {
            name: group.name().to_string(),
            address,
        });
    }
    Ok(Some(ExternalEtcd { members }))
}

/// The range of a spec subnet: its own `cidr`, or the shared subnet's.
fn subnet_range(builder: &Builder<'_>, name: &str) -> Option<Ipv4Net> {
    let subnet = builder
        .bundle
        .cluster
        .spec
        .subnets
        .iter()
        .find(|subnet| subnet.name == name)?;
    let text = match &subnet.id {
        Some(_) => builder.lookups.shared_subnets.get(name)?.cidr.clone(),
        None => subnet.cidr.clone()?,
    };
    text.parse().ok()
}

/// Member `number`'s address in `range`: the `number+1`-th from the top,
/// below the broadcast address AWS reserves; `None` when that would reach
/// the four addresses AWS reserves at the bottom.
pub fn member_address(range: Ipv4Net, number: usize) -> Option<Ipv4Addr> {
    let top = u32::from(range.broadcast()).checked_sub(1 + u32::try_from(number).ok()?)?;
    (top > u32::from(range.network()) + 3).then(|| Ipv4Addr::from(top))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use skiff_api::new_cluster::{new_cluster, NewClusterOptions};
    use skiff_api::{ClusterBundle, Cni, LoadBalancerType, OsFamily, Topology};

    use super::*;
    use crate::desired::{build, security_group_key};
    use crate::resource::{Attributes, IngressRule, ResourceKey, ResourceKind, RuleSource};
    use crate::{Lookups, Output};

    fn cluster(external: bool) -> ClusterBundle {
        let mut bundle = new_cluster(&NewClusterOptions {
            name: "c1.example.com".into(),
            zones: vec![
                "us-east-1a".into(),
                "us-east-1b".into(),
                "us-east-1c".into(),
            ],
            control_plane_zones: Vec::new(),
            control_plane_count: 3,
            control_plane_size: "t3.medium".into(),
            node_count: 3,
            node_size: "t3.medium".into(),
            kubernetes_version: "1.34.2".parse().expect("valid"),
            topology: Topology::Private,
            cni: Cni::Calico,
            dns_zone: None,
            network_cidr: "10.0.0.0/16".into(),
            network_id: None,
            ssh_public_key: None,
            api_load_balancer_type: LoadBalancerType::Public,
            cloud_labels: BTreeMap::new(),
            image: None,
            os_family: OsFamily::Debian,
            admin_access: vec!["0.0.0.0/0".into()],
            ssh_access: vec!["0.0.0.0/0".into()],
        })
        .expect("builds");
        if external {
            skiff_api::etcd::add_external_etcd(&mut bundle, 3, "t3.small");
        }
        skiff_api::validate(&bundle).expect("valid");
        bundle
    }

    fn rules(model: &crate::DesiredModel, role: &str) -> Vec<IngressRule> {
        match model
            .get(&ResourceKey::new(ResourceKind::SecurityGroupRules, role))
            .map(|resource| &resource.attributes)
        {
            Some(Attributes::SecurityGroupRules(rules)) => rules.ingress.clone(),
            other => panic!("no rules of {role}: {other:?}"),
        }
    }

    fn etcd_ports(rules: &[IngressRule]) -> Vec<(i32, i32, RuleSource)> {
        rules
            .iter()
            .filter(|rule| rule.from_port <= 2380 && rule.to_port >= 2379)
            .map(|rule| (rule.from_port, rule.to_port, rule.source.clone()))
            .collect()
    }

    fn group(role: &str) -> RuleSource {
        RuleSource::Group(security_group_key(role).output(Output::Id))
    }

    #[test]
    fn the_members_get_fixed_addresses_their_own_group_and_the_control_plane_waits_for_them() {
        let bundle = cluster(true);
        let lookups = Lookups::stand_in(&bundle);
        let model = build(&bundle, &lookups).expect("model");

        // 2379 from the control plane and the members, 2380 between members;
        // nothing from the nodes, and no etcd port left on the control plane.
        assert_eq!(
            etcd_ports(&rules(&model, ETCD)),
            [
                (2379, 2379, group("control-plane")),
                (2379, 2379, group(ETCD)),
                (2380, 2380, group(ETCD)),
            ]
        );
        assert_eq!(etcd_ports(&rules(&model, "control-plane")), []);
        assert_eq!(etcd_ports(&rules(&model, "nodes")), []);

        // One fixed address per member, from the top of its own subnet.
        let mut addresses = Vec::new();
        for name in ["etcd-1", "etcd-2", "etcd-3"] {
            match &model
                .get(&crate::desired::compute::launch_template_key(name))
                .expect("template")
                .attributes
            {
                Attributes::LaunchTemplate(template) => {
                    addresses.push(template.private_ip.clone().expect("a fixed address"));
                    assert_eq!(
                        template.security_groups,
                        [security_group_key(ETCD).output(Output::Id)]
                    );
                    assert!(template.instance_profile.is_some());
                }
                other => panic!("{other:?}"),
            }
        }
        let ranges: Vec<Ipv4Net> = ["etcd-1", "etcd-2", "etcd-3"]
            .iter()
            .map(|name| {
                let group = bundle
                    .instance_groups
                    .iter()
                    .find(|group| group.name() == *name)
                    .expect("group");
                let subnet = &group.spec.subnets[0];
                bundle
                    .cluster
                    .spec
                    .subnets
                    .iter()
                    .find(|candidate| &candidate.name == subnet)
                    .and_then(|candidate| candidate.cidr.clone())
                    .expect("cidr")
                    .parse()
                    .expect("range")
            })
            .collect();
        for (number, (address, range)) in addresses.iter().zip(&ranges).enumerate() {
            assert_eq!(
                address,
                &member_address(*range, number).expect("address").to_string()
            );
        }
        assert_eq!(
            ranges
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            3,
            "one zone each"
        );

        // The control plane's templates (so its groups) come after every
        // member's group; the workers' do not wait.
        let order = crate::graph::order(&model.resources).expect("no cycle");
        let position = |key: &ResourceKey| {
            order
                .iter()
                .position(|candidate| candidate == key)
                .expect("ordered")
        };
        let last_member = ["etcd-1", "etcd-2", "etcd-3"]
            .iter()
            .map(|name| position(&crate::desired::compute::auto_scaling_group_key(name)))
            .max()
            .expect("members");
        for control_plane in bundle
            .instance_groups
            .iter()
            .filter(|group| group.spec.role == skiff_api::InstanceGroupRole::ControlPlane)
        {
            let template = crate::desired::compute::launch_template_key(control_plane.name());
            assert!(position(&template) > last_member, "{template}");
            let dependencies = model.get(&template).expect("template").dependencies();
            assert!(
                dependencies.contains(&crate::desired::compute::auto_scaling_group_key("etcd-2"))
            );
        }
        let workers = model
            .get(&crate::desired::compute::launch_template_key(
                "nodes-us-east-1a",
            ))
            .expect("workers");
        assert!(!workers
            .dependencies()
            .iter()
            .any(|key| key.as_str().starts_with("autoscaling-group")));

        // The members' role reads the etcd CA and their scripts, and writes
        // only the etcd folder (backups, leases, the restore request).
        match &model
            .get(&ResourceKey::new(ResourceKind::IamRole, ETCD))
            .expect("etcd role")
            .attributes
        {
            Attributes::IamRole(role) => {
                assert!(role.policy.contains("pki/etcd-ca.key"), "{}", role.policy);
                assert!(!role.policy.contains("pki/ca.key"), "{}", role.policy);
                assert!(!role.policy.contains("bootstrap-token"), "{}", role.policy);
                let policy: serde_json::Value =
                    serde_json::from_str(&role.policy).expect("a JSON policy");
                let writes: Vec<&serde_json::Value> = policy["Statement"]
                    .as_array()
                    .expect("statements")
                    .iter()
                    .filter(|statement| statement.to_string().contains("s3:PutObject"))
                    .collect();
                assert_eq!(writes.len(), 1, "{}", role.policy);
                let resources = writes[0]["Resource"].as_array().expect("resources");
                assert_eq!(resources.len(), 1, "{}", role.policy);
                assert!(
                    resources[0].as_str().expect("an ARN").ends_with("/etcd/*"),
                    "{}",
                    role.policy
                );
                assert!(!role
                    .policy
                    .contains("autoscaling:TerminateInstanceInAutoScalingGroup"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stacked_cluster_gets_no_etcd_resources_and_keeps_its_etcd_rule() {
        let bundle = cluster(false);
        let lookups = Lookups::stand_in(&bundle);
        let model = build(&bundle, &lookups).expect("model");
        assert!(model.get(&security_group_key(ETCD)).is_none());
        assert!(model
            .get(&ResourceKey::new(ResourceKind::IamRole, ETCD))
            .is_none());
        assert_eq!(
            etcd_ports(&rules(&model, "control-plane")),
            [(2379, 2380, group("control-plane"))]
        );
        for resource in &model.resources {
            if let Attributes::LaunchTemplate(template) = &resource.attributes {
                assert_eq!(template.private_ip, None);
                assert!(template
                    .user_data_substitutions
                    .keys()
                    .all(|placeholder| !placeholder.contains("ETCD")));
                let stored = serde_json::to_value(template.as_ref()).expect("json");
                assert!(stored.get("privateIp").is_none(), "stored as before");
            }
        }
    }

    #[test]
    fn members_take_addresses_from_the_top_of_their_subnet() {
        let range: Ipv4Net = "10.0.32.0/19".parse().expect("range");
        assert_eq!(
            member_address(range, 0),
            Some(Ipv4Addr::new(10, 0, 63, 254))
        );
        assert_eq!(
            member_address(range, 4),
            Some(Ipv4Addr::new(10, 0, 63, 250))
        );
        let tiny: Ipv4Net = "10.0.0.0/29".parse().expect("range");
        assert_eq!(member_address(tiny, 1), Some(Ipv4Addr::new(10, 0, 0, 5)));
        assert_eq!(member_address(tiny, 2), Some(Ipv4Addr::new(10, 0, 0, 4)));
        assert_eq!(member_address(tiny, 3), None, ".0 to .3 are AWS's");
    }
}
