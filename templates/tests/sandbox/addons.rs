//! The cluster addons on control-plane nodes (issue 18): with the AWS
//! cloud-controller-manager on, every kubelet runs with the external cloud
//! provider under the instance's private DNS name (from the sandbox's
//! instance metadata); the first control-plane node applies the manifests
//! the state store's `addons/index` names right after the pod network,
//! exactly once across the control plane (recorded in
//! `kube-system/skiff-addons`, which the kubectl stand-in keeps in the real
//! etcd); the timer (`apply-addons`) applies a changed manifest without a
//! new node, deletes a turned-off addon with the manifest last applied, and
//! leaves a manifest for a newer Kubernetes minor until the control plane
//! runs it.

use skiff_api::{Addon, AddonSpec, AddonsSpec, Cni, InstanceGroupRole, OsFamily};
use skiff_templates::state_store::{
    addon_context, addon_manifest, AddonIndex, AddonIndexEntry, ADDONS_INDEX,
};
use skiff_templates::{render_addons, NodeBootstrap, RenderedAddon};
use skiff_test_support::sandbox::{
    FakeCloud, Image, NodeSandbox, BUCKET, CLUSTER_NAME, CLUSTER_PREFIX,
};

use super::assert_booted;
use crate::support::{start_cloud, Sandbox};

/// The addons of a 1.34 cluster with every addon on (cluster-autoscaler
/// too), as skiff renders them.
fn rendered_addons() -> Vec<RenderedAddon> {
    let on = Some(AddonSpec {
        enabled: Some(true),
        version: None,
    });
    let addons = AddonsSpec {
        cloud_controller_manager: on.clone(),
        ebs_csi_driver: on.clone(),
        metrics_server: on.clone(),
        cluster_autoscaler: on,
        node_termination_handler: None,
    };
    let version = "1.34.2".parse().expect("version");
    let rendered = render_addons(&addon_context(
        CLUSTER_NAME,
        "us-east-1",
        &version,
        &addons,
        3,
    ))
    .expect("the addons render");
    assert_eq!(rendered.len(), Addon::ALL.len(), "every addon renders");
    rendered
}

/// Writes `text` at the cluster's `key` in the sandbox's store, as skiff's
/// apply does (`skiff_engine::addons`).
fn put(cloud: &FakeCloud, key: &str, text: &str) {
    let file = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(file.path(), text).expect("write");
    cloud
        .moto
        .put_object(BUCKET, &format!("{CLUSTER_PREFIX}/{key}"), file.path());
}

fn entry(addon: &RenderedAddon, minor: &str) -> AddonIndexEntry {
    AddonIndexEntry {
        name: addon.addon.name().to_string(),
        version: addon.version.clone(),
        kubernetes_minor: minor.to_string(),
        sha256: addon.sha256(),
    }
}

/// Stores the manifests, then the index naming them (for 1.34).
fn store_addons(cloud: &FakeCloud, addons: &[RenderedAddon]) {
    let mut index = AddonIndex::default();
    for addon in addons {
        put(cloud, &addon_manifest(addon.addon.name()), &addon.manifest);
        index.set(entry(addon, "1.34"));
    }
    put(cloud, ADDONS_INDEX, &index.render());
}

/// The `kubectl apply --server-side` calls of `node`, by addon name.
fn applies(node: &NodeSandbox) -> Vec<String> {
    node.commands()
        .iter()
        .filter(|line| line.starts_with("kubectl ") && line.contains(" apply --server-side"))
        .map(|line| {
            assert!(
                line.contains("--field-manager=skiff-addons") && line.contains("--force-conflicts"),
                "{line}"
            );
            let file = line.rsplit('/').next().expect("a file");
            file.trim_start_matches("addon-")
                .trim_end_matches(".yaml")
                .to_string()
        })
        .collect()
}

fn deletes(node: &NodeSandbox) -> Vec<String> {
    node.commands()
        .into_iter()
        .filter(|line| {
            line.starts_with("kubectl ") && line.contains(" delete --ignore-not-found -f ")
        })
        .collect()
}

/// What the cluster records it applied (`kube-system/skiff-addons`).
fn recorded(cloud: &FakeCloud) -> Vec<(String, String)> {
    cloud
        .etcd_value("/registry/configmaps/kube-system/skiff-addons")
        .lines()
        .filter_map(|line| {
            let (name, sha) = line.split_once(' ')?;
            Some((name.to_string(), sha.to_string()))
        })
        .collect()
}

fn private_dns_name(cloud: &FakeCloud, instance_id: &str) -> String {
    let response = cloud.moto.ec2(&[
        ("Action", "DescribeInstances"),
        ("InstanceId.1", instance_id),
    ]);
    let start = response
        .find("<privateDnsName>")
        .unwrap_or_else(|| panic!("no privateDnsName:\n{response}"))
        + "<privateDnsName>".len();
    let end = start + response[start..].find('<').expect("the element ends");
    response[start..end].to_string()
}

fn with_cloud_provider(config: NodeBootstrap) -> NodeBootstrap {
    NodeBootstrap {
        external_cloud_provider: true,
        ..config
    }
}

fn flags(node: &NodeSandbox) -> String {
    node.read("/var/lib/kubelet/kubeadm-flags.env")
}

#[test]
fn kubelets_run_the_external_cloud_provider_under_the_private_dns_name() {
    let cloud = start_cloud();
    let control_plane = with_cloud_provider(cloud.bootstrap(
        InstanceGroupRole::ControlPlane,
        OsFamily::Debian,
        Cni::Cilium,
    ));
    let first = cloud.node("i-0aaaaaaaaaaaaaa11", &control_plane, Image::Ubuntu);
    let boot = first.boot();
    assert_booted(&first, &boot);
    let worker = cloud.node(
        "i-0bbbbbbbbbbbbbb12",
        &with_cloud_provider(cloud.bootstrap(
            InstanceGroupRole::Node,
            OsFamily::Debian,
            Cni::Cilium,
        )),
        Image::Ubuntu,
    );
    let boot = worker.boot();
    assert_booted(&worker, &boot);
    for node in [&first, &worker] {
        let dns_name = private_dns_name(&cloud, &node.instance_id);
        assert!(
            dns_name.starts_with("ip-") && dns_name.ends_with(".internal"),
            "{dns_name}"
        );
        let configs = node.kubeadm_configs();
        let config = &configs.last().expect("kubeadm got a configuration").1;
        assert!(
            config.contains(&format!("  name: \"{dns_name}\"")),
            "{}: the node registers as its private DNS name:\n{config}",
            node.instance_id
        );
        assert!(
            !config.contains("@SKIFF_"),
            "a placeholder was left:\n{config}"
        );
        let flags = flags(node);
        assert!(
            flags.contains(&format!("--hostname-override={dns_name}")),
            "{flags}"
        );
        assert!(flags.contains("--cloud-provider=external"), "{flags}");
    }

    // Without the cloud-controller-manager: the host name, no cloud provider.
    let cloud = start_cloud();
    let plain = cloud.node(
        "i-0ccccccccccccccc13",
        &cloud.bootstrap(
            InstanceGroupRole::ControlPlane,
            OsFamily::Debian,
            Cni::Cilium,
        ),
        Image::Ubuntu,
    );
    let boot = plain.boot();
    assert_booted(&plain, &boot);
    let flags = flags(&plain);
    assert!(!flags.contains("--hostname-override"), "{flags}");
    assert!(!flags.contains("cloud-provider"), "{flags}");
}

#[test]
fn the_control_plane_applies_each_addon_once_and_the_timer_applies_changes() {
    let cloud = start_cloud();
    let addons = rendered_addons();
    let names: Vec<String> = addons
        .iter()
        .map(|addon| addon.addon.name().to_string())
        .collect();
    assert!(names.contains(&"cloud-controller-manager".to_string()));
    assert!(names.contains(&"ebs-csi-driver".to_string()));
    assert!(names.contains(&"metrics-server".to_string()));
    assert!(names.contains(&"cluster-autoscaler".to_string()));
    store_addons(&cloud, &addons);

    let config = with_cloud_provider(cloud.bootstrap(
        InstanceGroupRole::ControlPlane,
        OsFamily::Debian,
        Cni::Cilium,
    ));
    let first = cloud.node("i-0aaaaaaaaaaaaaa21", &config, Image::Ubuntu);
    let boot = first.boot();
    assert_booted(&first, &boot);
    // Right after the pod network, in apply order, each once.
    assert_eq!(applies(&first), names);
    let commands = first.commands();
    let cilium = commands
        .iter()
        .position(|line| line.starts_with("cilium "))
        .expect("the pod network was installed");
    let apply = commands
        .iter()
        .position(|line| line.contains(" apply --server-side"))
        .expect("an addon was applied");
    assert!(cilium < apply, "the addons before the pod network");
    for addon in &addons {
        let applied = first.applied_manifest(&format!("addon-{}.yaml", addon.addon.name()));
        assert_eq!(
            applied, addon.manifest,
            "{}: applied as stored",
            addon.addon
        );
    }
    let mut expected: Vec<(String, String)> = addons
        .iter()
        .map(|addon| (addon.addon.name().to_string(), addon.sha256()))
        .collect();
    expected.sort();
    let mut record = recorded(&cloud);
    record.sort();
    assert_eq!(record, expected, "the cluster records what it applied");
    assert!(first
        .commands()
        .contains(&"systemctl enable --now skiff-apply-addons.timer".to_string()));
    assert!(first
        .read("/etc/systemd/system/skiff-apply-addons.service")
        .contains("apply-addons"));

    // A second control-plane node and the timer's next run apply nothing.
    let second = cloud.node("i-0bbbbbbbbbbbbbb22", &config, Image::Ubuntu);
    let boot = second.boot();
    assert_booted(&second, &boot);
    let run = second.run(&["apply-addons"]);
    assert!(run.success, "{}", run.everything());
    assert_eq!(applies(&second), Vec::<String>::new());
    let run = first.run(&["apply-addons"]);
    assert!(run.success, "{}", run.everything());
    assert_eq!(applies(&first), names, "the timer applied again");

    // A changed manifest (skiff update cluster --yes) is applied by the
    // timer of whichever node runs first, once; metrics-server turned off
    // is deleted with what was applied; a manifest made for 1.35 waits for
    // the control plane (the cluster runs 1.34).
    let mut changed = addons
        .iter()
        .find(|addon| addon.addon == Addon::CloudControllerManager)
        .expect("the cloud-controller-manager")
        .clone();
    changed.manifest.push_str("# changed\n");
    let newer = addons
        .iter()
        .find(|addon| addon.addon == Addon::EbsCsiDriver)
        .expect("the EBS CSI driver");
    let mut newer = newer.clone();
    newer.manifest.push_str("# for 1.35\n");
    let mut index = AddonIndex::default();
    for addon in &addons {
        match addon.addon {
            Addon::MetricsServer => {}
            Addon::CloudControllerManager => index.set(entry(&changed, "1.34")),
            Addon::EbsCsiDriver => index.set(entry(&newer, "1.35")),
            _ => index.set(entry(addon, "1.34")),
        }
    }
    put(
        &cloud,
        &addon_manifest(changed.addon.name()),
        &changed.manifest,
    );
    put(&cloud, &addon_manifest(newer.addon.name()), &newer.manifest);
    put(&cloud, ADDONS_INDEX, &index.render());
    let run = second.run(&["apply-addons"]);
    assert!(run.success, "{}", run.everything());
    assert_eq!(
        applies(&second),
        vec!["cloud-controller-manager".to_string()]
    );
    assert_eq!(
        second.applied_manifest("addon-cloud-controller-manager.yaml"),
        changed.manifest
    );
    let removed = deletes(&second);
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert!(
        removed[0].ends_with("addon-metrics-server.applied.yaml"),
        "{removed:?}"
    );
    assert!(
        run.log.contains("addon ebs-csi-driver") && run.log.contains("waits for the control plane"),
        "{}",
        run.log
    );
    let record = recorded(&cloud);
    assert!(record.contains(&("cloud-controller-manager".to_string(), changed.sha256())));
    assert!(
        !record.iter().any(|(name, _)| name == "metrics-server"),
        "{record:?}"
    );
    let ebs = addons
        .iter()
        .find(|addon| addon.addon == Addon::EbsCsiDriver)
        .expect("the EBS CSI driver");
    assert!(record.contains(&("ebs-csi-driver".to_string(), ebs.sha256())));
    // And nothing again on the other node.
    let run = first.run(&["apply-addons"]);
    assert!(run.success, "{}", run.everything());
    assert_eq!(applies(&first), names);
    assert!(deletes(&first).is_empty());
}
