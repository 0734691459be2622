//! Instances: the EC2 key pair (when the spec has an SSH key), and per
//! instance group a launch template (image, type, disk, IMDSv2, profile,
//! security group, the bootstrap user-data) and an auto scaling group.

use std::collections::BTreeMap;

use skiff_api::architecture::image_for_architecture;
use skiff_api::{Architecture, InstanceGroup, InstanceGroupRole};
use skiff_templates::{EtcdBackups, NodeBootstrap, StateStoreLocation};

use super::load_balancer::API_PORT;
use super::{role_name, security, Builder};
use crate::error::PlanError;
use crate::lookups::Lookups;
use crate::names;
use crate::resource::{
    Attributes, AutoScalingGroupAttributes, DesiredResource, Id, KeyPairAttributes,
    LaunchTemplateAttributes, MixedInstancesAttributes, Output, ResourceKey, ResourceKind,
    RootVolumeAttributes,
};

/// Stands in a gossip cluster's user-data for the DNS name of the load
/// balancer its nodes use (the internal one beside an internet-facing API
/// load balancer, else the only one) until it is known. `.invalid` can
/// never resolve, so a placeholder that leaked would fail loudly rather
/// than reach a wrong host.
pub const API_ENDPOINT_PLACEHOLDER: &str = "api-endpoint.skiff.invalid";

/// Stands in the user-data for the DNS name of a gossip cluster's
/// internet-facing load balancer when its nodes use the internal one: the
/// name operators' kubeconfigs use, which the API server's certificate must
/// hold (`NodeBootstrap::api_cert_sans`).
pub const API_PUBLIC_ENDPOINT_PLACEHOLDER: &str = "api-public-endpoint.skiff.invalid";

/// The key of an instance group's launch template.
pub fn launch_template_key(group: &str) -> ResourceKey {
    ResourceKey::new(ResourceKind::LaunchTemplate, group)
}

/// The key of an instance group's auto scaling group.
pub fn auto_scaling_group_key(group: &str) -> ResourceKey {
    ResourceKey::new(ResourceKind::AutoScalingGroup, group)
}

/// The key of the key pair.
pub fn key_pair_key() -> ResourceKey {
    ResourceKey::new(ResourceKind::KeyPair, "")
}

/// `ssh-ed25519 AAAA...` without the comment: EC2 drops it too.
pub fn public_key_material(text: &str) -> String {
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn build(builder: &mut Builder<'_>) -> Result<(), PlanError> {
    let cluster = builder.cluster_name().to_string();
    let spec = &builder.bundle.cluster.spec;

    let key_name = match &spec.ssh_public_key {
        Some(public_key) => {
            let key = key_pair_key();
            let material = public_key_material(public_key);
            let name = names::key_pair(&cluster, &material);
            let tags = builder.tags(&key, &name);
            builder.add(DesiredResource {
                key: key.clone(),
                attributes: Attributes::KeyPair(KeyPairAttributes {
                    name,
                    public_key: material,
                    tags,
                }),
            });
            Some(key.output(Output::Name))
        }
        None => None,
    };

    for group in &builder.bundle.instance_groups {
        let template = launch_template(builder, group, key_name.clone())?;
        builder.add(template);
        let scaling_group = auto_scaling_group(builder, group)?;
        builder.add(scaling_group);
    }
    Ok(())
}

/// Seconds a control-plane instance has to pass the load balancer's health
/// check after launch before its group replaces it.
pub const CONTROL_PLANE_HEALTH_GRACE_SECONDS: u32 = 1200;
/// Seconds a worker or bastion instance has before its EC2 status checks count.
pub const NODE_HEALTH_GRACE_SECONDS: u32 = 600;

/// Whether nodes name the API by a load balancer's DNS name, filled into
/// the user-data when it is known: in a gossip cluster (a DNS cluster's
/// nodes name `api.<cluster>`, whichever load balancer answers it).
fn uses_placeholder(cluster: &skiff_api::Cluster) -> bool {
    cluster.is_gossip()
}

/// The names besides the nodes' endpoint in the API server's certificate:
/// `api.<cluster>`, and on control-plane nodes (which make the certificate)
/// a gossip cluster's internet-facing load balancer when the nodes use the
/// internal one (filled in like the endpoint).
fn api_cert_sans(
    cluster: &skiff_api::Cluster,
    lookups: &Lookups,
    role: InstanceGroupRole,
) -> Vec<String> {
    let mut names = vec![cluster.api_dns_name()];
    if role == InstanceGroupRole::ControlPlane
        && super::load_balancer::api_endpoint(cluster, lookups)
            == super::load_balancer::ApiEndpoint::InternalName
    {
        names.push(API_PUBLIC_ENDPOINT_PLACEHOLDER.to_string());
    }
    names
}

fn bootstrap_config(
    builder: &Builder<'_>,
    group: &InstanceGroup,
) -> Result<NodeBootstrap, PlanError> {
    let cluster = &builder.bundle.cluster;
    let store = builder
        .lookups
        .state_store
        .as_ref()
        .ok_or(PlanError::StateStoreNotS3)?;
    let api_endpoint = if uses_placeholder(cluster) {
        API_ENDPOINT_PLACEHOLDER.to_string()
    } else {
        cluster.api_dns_name()
    };
    Ok(NodeBootstrap {
        cluster_name: cluster.name().to_string(),
        instance_group: group.name().to_string(),
        role: group.spec.role,
        os_family: group.spec.os_family,
        kubernetes_version: cluster.spec.kubernetes_version,
        container_runtime: group.spec.container_runtime_in(&cluster.spec),
        api_endpoint,
        api_port: API_PORT,
        api_cert_sans: api_cert_sans(cluster, builder.lookups, group.spec.role),
        pod_cidr: cluster.spec.networking.pod_cidr.clone(),
        service_cidr: cluster.spec.networking.service_cidr.clone(),
        cluster_dns: cluster.spec.networking.cluster_dns.clone(),
        cni: cluster.spec.networking.cni,
        // Only control-plane nodes act on it (they install the CNI); a
        // worker's user-data stays the same when a Windows group comes or goes.
        windows_nodes: group.spec.role == InstanceGroupRole::ControlPlane
            && builder
                .bundle
                .instance_groups
                .iter()
                .any(|other| other.spec.os_family.is_windows()),
        node_labels: group.spec.node_labels.clone(),
        taints: group.spec.taints.clone(),
        state_store: StateStoreLocation {
            bucket: store.bucket.clone(),
            cluster_prefix: store.cluster_prefix(cluster.name()),
            region: store.region.clone(),
            endpoint: store.endpoint.clone(),
            path_style: store.endpoint.is_some(),
            kms_key: store.kms_key.clone(),
        },
        region: cluster.region().to_string(),
        // The node calls EC2 and Auto Scaling where skiff does (the local
        // endpoint in tests); a real store has no custom endpoint.
        aws_endpoint: store.endpoint.clone(),
        etcd_backups: EtcdBackups {
            interval_seconds: cluster.spec.etcd.backups.interval.seconds(),
            keep: cluster.spec.etcd.backups.keep,
        },
        audit: skiff_templates::AuditLog::from(&cluster.spec.control_plane.api_server.audit),
        kubelet: group.spec.kubelet.merged_over(&cluster.spec.kubelet),
        component_arguments: skiff_templates::ComponentArguments::from(&cluster.spec.control_plane),
        // Workers never talk to etcd; members and API servers do.
        external_etcd: match group.spec.role {
            InstanceGroupRole::ControlPlane | InstanceGroupRole::Etcd => {
                super::etcd::external_etcd(builder)?
            }
            InstanceGroupRole::Node | InstanceGroupRole::Bastion => None,
        },
        // The AWS cloud-controller-manager initializes the Nodes of the
        // cluster's Kubernetes nodes (etcd members and bastions are none).
        external_cloud_provider: cluster
            .spec
            .addons
            .enabled(skiff_api::Addon::CloudControllerManager)
            && matches!(
                group.spec.role,
                InstanceGroupRole::ControlPlane | InstanceGroupRole::Node
            ),
    })
}

fn launch_template(
    builder: &Builder<'_>,
    group: &InstanceGroup,
    key_name: Option<Id>,
) -> Result<DesiredResource, PlanError> {
    let cluster = builder.cluster_name();
    let spec = &group.spec;
    let architecture = check_architecture(group, builder.lookups)?;
    let image_text = spec.image.clone().unwrap_or_default();
    let image =
        builder
            .lookups
            .images
            .get(group.name())
            .ok_or_else(|| PlanError::ImageNotResolved {
                group: group.name().to_string(),
                image: image_for_architecture(&image_text, architecture),
                architecture,
            })?;
    let user_data = skiff_templates::render_user_data(&bootstrap_config(builder, group)?).map_err(
        |source| PlanError::Template {
            group: group.name().to_string(),
            source,
        },
    )?;
    let mut user_data_substitutions = BTreeMap::new();
    if uses_placeholder(&builder.bundle.cluster) {
        user_data_substitutions.insert(
            API_ENDPOINT_PLACEHOLDER.to_string(),
            super::load_balancer::node_load_balancer_key(&builder.bundle.cluster, builder.lookups)
                .output(Output::DnsName),
        );
    }
    if api_cert_sans(&builder.bundle.cluster, builder.lookups, spec.role)
        .iter()
        .any(|name| name == API_PUBLIC_ENDPOINT_PLACEHOLDER)
    {
        user_data_substitutions.insert(
            API_PUBLIC_ENDPOINT_PLACEHOLDER.to_string(),
            super::load_balancer::load_balancer_key().output(Output::DnsName),
        );
    }
    // With external etcd the control plane launches after the members: its
    // template refers to every member's auto scaling group. The placeholders
    // are in no user-data, so they change no byte of it; they only order
    // the apply (and Terraform's, which follows the same references).
    if spec.role == InstanceGroupRole::ControlPlane {
        for member in super::etcd::member_groups(builder) {
            user_data_substitutions.insert(
                format!("@SKIFF_AFTER_ETCD_MEMBER_{}@", member.name()),
                auto_scaling_group_key(member.name()).output(Output::Id),
            );
        }
    }
    let private_ip = match spec.role {
        InstanceGroupRole::Etcd => super::etcd::external_etcd(builder)?.and_then(|etcd| {
            etcd.member(group.name())
                .map(|member| member.address.to_string())
        }),
        _ => None,
    };
    let key = launch_template_key(group.name());
    let name = names::instance_group_resource(cluster, group.name());
    let tags = builder.tags(&key, &name);
    let instance_tags = instance_tags(builder, group);
    let instance_profile = match spec.role {
        InstanceGroupRole::Bastion => None,
        role => Some(
            ResourceKey::new(ResourceKind::InstanceProfile, role_name(role)).output(Output::Arn),
        ),
    };
    Ok(DesiredResource {
        key,
        attributes: Attributes::LaunchTemplate(Box::new(LaunchTemplateAttributes {
            name,
            image_id: image.id.clone(),
            instance_type: spec.machine_type.clone(),
            key_name,
            instance_profile,
            security_groups: security::groups_for(spec.role),
            private_ip,
            user_data,
            user_data_substitutions,
            root_volume: RootVolumeAttributes {
                device_name: image.root_device_name.clone(),
                size: spec.root_volume.size,
                volume_type: spec.root_volume.volume_type.clone(),
                iops: spec.root_volume.iops,
                throughput: spec.root_volume.throughput,
                encrypted: spec.root_volume.encrypted,
            },
            http_tokens_required: true,
            http_put_response_hop_limit: 1,
            spot: spec.spot.is_some() && spec.mixed_instances_policy.is_none(),
            spot_max_price: spec.spot.as_ref().and_then(|spot| spot.max_price.clone()),
            instance_tags,
            tags,
        })),
    })
}

/// The group's architecture ([`group_architecture`]), with its image, when
/// it resolved, built for it. What `update cluster` plans with and what a
/// spec write checks before storing a group that names an AMI or mixes
/// types.
pub fn check_architecture(
    group: &InstanceGroup,
    lookups: &Lookups,
) -> Result<Architecture, PlanError> {
    let architecture = group_architecture(group, lookups)?;
    let image_architecture = lookups
        .images
        .get(group.name())
        .and_then(|image| image.architecture.map(|found| (image, found)));
    if let Some((image, image_architecture)) = image_architecture {
        if image_architecture != architecture {
            return Err(PlanError::ImageArchitecture {
                group: group.name().to_string(),
                image: image.id.clone(),
                image_architecture: image_architecture.to_string(),
                machine_type: group.spec.machine_type.clone(),
                architecture,
            });
        }
    }
    Ok(architecture)
}

/// The architecture a group's instances run: that of its machine type
/// (x86 when it supports both), which every type of its
/// `mixedInstancesPolicy` must support too, since the group has one image.
pub fn group_architecture(
    group: &InstanceGroup,
    lookups: &Lookups,
) -> Result<Architecture, PlanError> {
    let spec = &group.spec;
    let supported = |field: String, machine_type: &str| {
        lookups
            .machine_types
            .get(machine_type)
            .ok_or_else(|| PlanError::UnknownMachineType {
                group: group.name().to_string(),
                field,
                machine_type: machine_type.to_string(),
            })
    };
    let field = "spec.machineType".to_string();
    let architectures = supported(field.clone(), &spec.machine_type)?;
    let architecture = Architecture::preferred(architectures).ok_or_else(|| {
        PlanError::UnsupportedArchitecture {
            group: group.name().to_string(),
            field,
            machine_type: spec.machine_type.clone(),
        }
    })?;
    let others = spec
        .mixed_instances_policy
        .iter()
        .flat_map(|policy| policy.instance_types.iter().enumerate());
    for (index, machine_type) in others {
        let field = format!("spec.mixedInstancesPolicy.instanceTypes[{index}]");
        let architectures = supported(field.clone(), machine_type)?;
        if !architectures.contains(&architecture) {
            let other = architectures
                .iter()
                .map(Architecture::to_string)
                .collect::<Vec<_>>();
            return Err(PlanError::MixedArchitectures {
                group: group.name().to_string(),
                field,
                machine_type: machine_type.clone(),
                other: if other.is_empty() {
                    "neither x86_64 nor arm64".to_string()
                } else {
                    other.join(" or ")
                },
                group_machine_type: spec.machine_type.clone(),
                architecture,
            });
        }
    }
    Ok(architecture)
}

/// Each group's architecture and image, for the preview.
pub(crate) fn group_images(
    bundle: &skiff_api::ClusterBundle,
    lookups: &Lookups,
) -> Result<Vec<crate::plan::GroupImage>, PlanError> {
    let mut groups = Vec::new();
    for group in &bundle.instance_groups {
        let architecture = group_architecture(group, lookups)?;
        let image = lookups.images.get(group.name());
        groups.push(crate::plan::GroupImage {
            group: group.name().to_string(),
            machine_type: group.spec.machine_type.clone(),
            architecture,
            image_id: image.map(|image| image.id.clone()).unwrap_or_default(),
            image_name: image.map(|image| image.name.clone()).unwrap_or_default(),
        });
    }
    Ok(groups)
}

/// Tags every instance of the group carries (through the launch template and
/// the auto scaling group's propagation).
fn instance_tags(builder: &Builder<'_>, group: &InstanceGroup) -> BTreeMap<String, String> {
    let cluster = builder.cluster_name();
    let mut tags = builder.bundle.cluster.spec.cloud_labels.clone();
    tags.extend(group.spec.cloud_labels.clone());
    tags.insert(names::CLUSTER_TAG.to_string(), cluster.to_string());
    tags.insert(names::ownership_tag(cluster), "owned".to_string());
    tags.insert(
        names::INSTANCE_GROUP_TAG.to_string(),
        group.name().to_string(),
    );
    tags.insert(
        names::ROLE_TAG.to_string(),
        role_name(group.spec.role).to_string(),
    );
    tags.insert(
        "Name".to_string(),
        names::instance_group_resource(cluster, group.name()),
    );
    tags
}

fn auto_scaling_group(
    builder: &Builder<'_>,
    group: &InstanceGroup,
) -> Result<DesiredResource, PlanError> {
    let cluster = builder.cluster_name();
    let spec = &group.spec;
    let mut subnets = Vec::new();
    for subnet in &spec.subnets {
        subnets.push(builder.subnet_id(subnet)?);
    }
    subnets.sort();
    let target_groups = if spec.role == InstanceGroupRole::ControlPlane {
        super::load_balancer::control_plane_target_groups(&builder.bundle.cluster, builder.lookups)
            .into_iter()
            .map(|key| key.output(Output::Id))
            .collect()
    } else {
        Vec::new()
    };
    // A control-plane instance whose API server never comes up fails the
    // load balancer's /readyz check and is replaced; the grace period
    // covers a bootstrap (packages, images, kubeadm) with its retries.
    let (health_check_type, health_check_grace_period) = match spec.role {
        InstanceGroupRole::ControlPlane => ("ELB", CONTROL_PLANE_HEALTH_GRACE_SECONDS),
        InstanceGroupRole::Node | InstanceGroupRole::Bastion | InstanceGroupRole::Etcd => {
            ("EC2", NODE_HEALTH_GRACE_SECONDS)
        }
    };
    let template = launch_template_key(group.name());
    let key = auto_scaling_group_key(group.name());
    let name = names::instance_group_resource(cluster, group.name());
    let mut tags = instance_tags(builder, group);
    tags.insert(names::RESOURCE_TAG.to_string(), key.to_string());
    tags.extend(autoscaler_discovery_tags(builder, group));
    Ok(DesiredResource {
        key,
        attributes: Attributes::AutoScalingGroup(AutoScalingGroupAttributes {
            name,
            launch_template: template.output(Output::Id),
            launch_template_version: template.output(Output::LatestVersion),
            min_size: spec.min_size,
            max_size: spec.max_size,
            subnets,
            target_groups,
            mixed_instances: spec.mixed_instances_policy.as_ref().map(|policy| {
                let mut instance_types = vec![spec.machine_type.clone()];
                for instance_type in &policy.instance_types {
                    if !instance_types.contains(instance_type) {
                        instance_types.push(instance_type.clone());
                    }
                }
                MixedInstancesAttributes {
                    instance_types,
                    on_demand_base_capacity: policy.on_demand_base_capacity,
                    on_demand_percentage_above_base: policy.on_demand_percentage_above_base,
                    spot_allocation_strategy: policy.spot_allocation_strategy.clone(),
                }
            }),
            health_check_type: health_check_type.to_string(),
            health_check_grace_period,
            tags,
        }),
    })
}

/// The tag cluster-autoscaler finds any cluster's groups by.
pub const AUTOSCALER_ENABLED_TAG: &str = "k8s.io/cluster-autoscaler/enabled";

/// The tag cluster-autoscaler finds this cluster's groups by.
pub fn autoscaler_cluster_tag(cluster: &str) -> String {
    format!("k8s.io/cluster-autoscaler/{cluster}")
}

/// The auto-discovery tags of a worker group's auto scaling group when
/// cluster-autoscaler is on (`spec.addons.clusterAutoscaler`), none
/// otherwise: its `--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/<cluster>`
/// finds the groups that carry both keys, whatever their values, and
/// "will respect the minimum and maximum values of each Auto Scaling
/// Group" (kubernetes/autoscaler `cluster-autoscaler/cloudprovider/aws/README.md`,
/// "Auto-Discovery Setup"). Only on the group, which is changed in place:
/// no instance rolls for them. Control-plane, etcd and bastion groups are
/// never scaled.
fn autoscaler_discovery_tags(
    builder: &Builder<'_>,
    group: &InstanceGroup,
) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    if group.spec.role == InstanceGroupRole::Node
        && builder
            .bundle
            .cluster
            .spec
            .addons
            .enabled(skiff_api::Addon::ClusterAutoscaler)
    {
        tags.insert(AUTOSCALER_ENABLED_TAG.to_string(), "true".to_string());
        tags.insert(
            autoscaler_cluster_tag(builder.cluster_name()),
            "owned".to_string(),
        );
    }
    tags
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use skiff_api::new_cluster::{new_cluster, NewClusterOptions};
    use skiff_api::{BackupInterval, Cni, LoadBalancerType, OsFamily, Topology};

    use super::*;
    use crate::Lookups;

    fn one_zone_cluster() -> skiff_api::ClusterBundle {
        new_cluster(&NewClusterOptions {
            name: "c1.example.com".into(),
            zones: vec!["us-east-1a".into()],
            control_plane_zones: Vec::new(),
            control_plane_count: 1,
            control_plane_size: "t3.medium".into(),
            node_count: 1,
            node_size: "m7g.large".into(),
            kubernetes_version: "1.34.2".parse().expect("valid"),
            topology: Topology::Public,
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
        .expect("builds")
    }

    /// EC2's answers for the Graviton tests: `m7g.large` and `m6g.large`
    /// arm64, `t3.medium` and `m7i.large` x86_64, `t2.micro` both.
    fn graviton_lookups(bundle: &skiff_api::ClusterBundle) -> Lookups {
        let mut lookups = Lookups::stand_in(bundle);
        lookups.machine_types = [
            ("m7g.large", vec![Architecture::Arm64]),
            ("m6g.large", vec![Architecture::Arm64]),
            ("t3.medium", vec![Architecture::Amd64]),
            ("m7i.large", vec![Architecture::Amd64]),
            ("t2.micro", vec![Architecture::Amd64, Architecture::Arm64]),
        ]
        .into_iter()
        .map(|(name, architectures)| (name.to_string(), architectures))
        .collect();
        lookups
            .images
            .get_mut("nodes-us-east-1a")
            .expect("the nodes' image")
            .architecture = Some(Architecture::Arm64);
        lookups
    }

    fn nodes(bundle: &mut skiff_api::ClusterBundle) -> &mut InstanceGroup {
        bundle
            .instance_groups
            .iter_mut()
            .find(|group| group.name() == "nodes-us-east-1a")
            .expect("nodes")
    }

    #[test]
    fn each_group_runs_its_machine_types_architecture_and_the_preview_says_so() {
        let bundle = one_zone_cluster();
        let lookups = graviton_lookups(&bundle);
        let groups = group_images(&bundle, &lookups).expect("plans");
        let architectures: Vec<(&str, Architecture)> = groups
            .iter()
            .map(|group| (group.group.as_str(), group.architecture))
            .collect();
        assert_eq!(
            architectures,
            [
                ("control-plane-us-east-1a", Architecture::Amd64),
                ("nodes-us-east-1a", Architecture::Arm64)
            ]
        );
        crate::desired::build(&bundle, &lookups).expect("a Graviton group plans");
    }

    #[test]
    fn a_mixed_instances_policy_of_two_architectures_is_refused_by_field_path() {
        let mut bundle = one_zone_cluster();
        nodes(&mut bundle).spec.mixed_instances_policy = Some(skiff_api::MixedInstancesPolicy {
            instance_types: vec!["m6g.large".into(), "m7i.large".into()],
            on_demand_base_capacity: 0,
            on_demand_percentage_above_base: 100,
            spot_allocation_strategy: "price-capacity-optimized".into(),
        });
        let lookups = graviton_lookups(&bundle);
        let error = crate::desired::build(&bundle, &lookups)
            .expect_err("refused")
            .to_string();
        for needle in [
            "instancegroup/nodes-us-east-1a",
            "spec.mixedInstancesPolicy.instanceTypes[1]",
            "m7i.large is amd64",
            "m7g.large is arm64",
            "ec2:DescribeInstanceTypes",
        ] {
            assert!(error.contains(needle), "{needle:?} not in {error}");
        }
        // A type that runs both architectures fits either group.
        nodes(&mut bundle)
            .spec
            .mixed_instances_policy
            .as_mut()
            .expect("policy")
            .instance_types = vec!["m6g.large".into(), "t2.micro".into()];
        crate::desired::build(&bundle, &lookups).expect("one architecture plans");
    }

    #[test]
    fn an_ami_of_the_other_architecture_and_an_unknown_type_are_refused() {
        let mut bundle = one_zone_cluster();
        nodes(&mut bundle).spec.image = Some("ami-0123456789abcdef0".into());
        let mut lookups = graviton_lookups(&bundle);
        lookups
            .images
            .get_mut("nodes-us-east-1a")
            .expect("the nodes' image")
            .architecture = Some(Architecture::Amd64);
        let error = crate::desired::build(&bundle, &lookups)
            .expect_err("refused")
            .to_string();
        for needle in [
            "instancegroup/nodes-us-east-1a: spec.image",
            "ami-0123456789abcdef0 is built for amd64",
            "m7g.large is arm64",
            "ec2:DescribeImages",
        ] {
            assert!(error.contains(needle), "{needle:?} not in {error}");
        }

        nodes(&mut bundle).spec.machine_type = "m9z.huge".into();
        let error = crate::desired::build(&bundle, &lookups)
            .expect_err("refused")
            .to_string();
        assert!(
            error.contains("spec.machineType") && error.contains("\"m9z.huge\""),
            "{error}"
        );
    }

    /// The nodes back etcd up on the spec's schedule, not a built-in one.
    /// With a Windows group, the control plane (which installs the CNI)
    /// knows it and Calico's VXLAN port opens between members; the Linux
    /// workers' user-data does not change, and a Linux-only cluster opens
    /// no such port.
    #[test]
    fn a_windows_group_reaches_the_control_plane_and_opens_calicos_vxlan_port() {
        use crate::resource::{Attributes, IngressRule, ResourceKind};
        fn vxlan_rules(bundle: &skiff_api::ClusterBundle) -> Vec<IngressRule> {
            let lookups = Lookups::stand_in(bundle);
            let mut builder = Builder {
                bundle,
                lookups: &lookups,
                resources: BTreeMap::new(),
            };
            crate::desired::security::build(&mut builder).expect("security groups");
            builder
                .resources
                .values()
                .filter(|resource| resource.kind() == ResourceKind::SecurityGroupRules)
                .flat_map(|resource| match &resource.attributes {
                    Attributes::SecurityGroupRules(rules) => rules.ingress.clone(),
                    _ => Vec::new(),
                })
                .filter(|rule| rule.protocol == "udp" && rule.from_port == 4789)
                .collect()
        }
        fn flags(bundle: &skiff_api::ClusterBundle) -> Vec<(String, bool)> {
            let lookups = Lookups::stand_in(bundle);
            let builder = Builder {
                bundle,
                lookups: &lookups,
                resources: BTreeMap::new(),
            };
            bundle
                .instance_groups
                .iter()
                .map(|group| {
                    let config = bootstrap_config(&builder, group).expect("configured");
                    (group.name().to_string(), config.windows_nodes)
                })
                .collect()
        }
        let mut bundle = one_zone_cluster();
        assert!(flags(&bundle).iter().all(|(_, windows)| !windows));
        assert!(vxlan_rules(&bundle).is_empty());

        let mut windows = nodes(&mut bundle).clone();
        windows.metadata.name = "windows-nodes".to_string();
        windows.spec.os_family = OsFamily::Windows;
        windows.spec.image = Some(skiff_api::windows::DEFAULT_IMAGE.to_string());
        bundle.instance_groups.push(windows);
        for (group, windows) in flags(&bundle) {
            assert_eq!(windows, group.starts_with("control-plane"), "{group}");
        }
        // From the control plane and the nodes, into both.
        assert_eq!(vxlan_rules(&bundle).len(), 4, "{:?}", vxlan_rules(&bundle));

        bundle.cluster.spec.networking.cni = Cni::Flannel;
        assert!(vxlan_rules(&bundle).is_empty());
    }

    #[test]
    fn the_nodes_get_the_specs_backup_schedule() {
        let mut bundle = new_cluster(&NewClusterOptions {
            name: "c1.example.com".into(),
            zones: vec!["us-east-1a".into()],
            control_plane_zones: Vec::new(),
            control_plane_count: 1,
            control_plane_size: "t3.medium".into(),
            node_count: 1,
            node_size: "t3.medium".into(),
            kubernetes_version: "1.34.2".parse().expect("valid"),
            topology: Topology::Public,
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
        bundle.cluster.spec.etcd.backups.interval = BackupInterval::from_seconds(3600);
        bundle.cluster.spec.etcd.backups.keep = 24;
        let lookups = Lookups::stand_in(&bundle);
        let builder = Builder {
            bundle: &bundle,
            lookups: &lookups,
            resources: BTreeMap::new(),
        };
        for group in &bundle.instance_groups {
            let config = bootstrap_config(&builder, group).expect("configured");
            assert_eq!(
                config.etcd_backups,
                EtcdBackups {
                    interval_seconds: 3600,
                    keep: 24
                },
                "{}",
                group.name()
            );
        }
    }
}
