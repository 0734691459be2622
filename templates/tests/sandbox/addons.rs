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
    addon_context, addon_manifest, AddonIndex, AddonIndexEntry, AddonState, AddonStatus,
    ADDONS_INDEX, ADDONS_STATUS,
};
use skiff_templates::{
    manifest_objects, render_addons, NodeBootstrap, ObjectIdentity, RenderedAddon, OBJECT_LINE,
};
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
        removed[0].ends_with("addon-metrics-server.pruned.yaml"),
        "{removed:?}"
    );
    assert!(
        run.log.contains("addon ebs-csi-driver")
            && run
                .log
                .contains("waits until every kube-apiserver runs Kubernetes 1.35"),
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

/// `addon` with the documents of kind `drop` left out and `extra`
/// documents added, its object lines made again as skiff makes them.
fn remake(addon: &RenderedAddon, drop: Option<&str>, extra: &str) -> RenderedAddon {
    let body: String = addon
        .manifest
        .lines()
        .filter(|line| {
            !line.starts_with(OBJECT_LINE) && !line.starts_with("# skiff: the objects of")
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let mut documents: Vec<&str> = body.split("\n---\n").collect();
    if let Some(kind) = drop {
        let before = documents.len();
        documents.retain(|document| !document.contains(&format!("\nkind: {kind}\n")));
        assert_eq!(documents.len() + 1, before, "one {kind} dropped");
    }
    let mut body = documents.join("\n---\n");
    if !body.ends_with('\n') {
        body.push('\n');
    }
    body.push_str(extra);
    let header: String = manifest_objects(&body)
        .expect("the manifest parses")
        .iter()
        .map(|object| format!("{}\n", object.line()))
        .collect();
    RenderedAddon {
        manifest: format!("{header}{body}"),
        ..addon.clone()
    }
}

fn addon_status(cloud: &FakeCloud) -> AddonStatus {
    let text = cloud
        .moto
        .get_object(BUCKET, &format!("{CLUSTER_PREFIX}/{ADDONS_STATUS}"));
    AddonStatus::parse(&text).expect("the status parses")
}

/// Prune and the version gate, on one control-plane node:
/// - a new release of metrics-server drops its APIService and two
///   Namespaces: the APIService and the Namespace no other addon names are
///   deleted, the Namespace the EBS CSI driver still has a ConfigMap in is
///   kept, and nothing else is deleted (a PodDisruptionBudget moved from
///   policy/v1beta1 to policy/v1 is the same object);
/// - an EBS CSI line made for 1.35 waits while one kube-apiserver pod still
///   runs 1.34, although kubeadm-config already says 1.35 (the first
///   upgraded control plane raises it), as kubeadm's own addons wait
///   (cmd/kubeadm/app/phases/upgrade/postupgrade.go
///   UnupgradedControlPlaneInstances); the hold is recorded in
///   etcd/addons/status, and the line applies once every pod runs 1.35.
#[test]
fn a_new_release_prunes_what_it_dropped_and_a_newer_minor_waits_for_every_api_server() {
    let cloud = start_cloud();
    let addons = rendered_addons();
    let find = |which: Addon| {
        addons
            .iter()
            .find(|addon| addon.addon == which)
            .expect("rendered")
            .clone()
    };
    let namespaces = "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: skiff-shared\n\
        ---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: skiff-alone\n";
    // A PodDisruptionBudget the new release moves to policy/v1: the same
    // object (group, kind, namespace, name), never pruned.
    let budget = |version: &str| {
        format!(
            "---\napiVersion: policy/{version}\nkind: PodDisruptionBudget\nmetadata:\n  name: metrics-server-budget\n  namespace: kube-system\n"
        )
    };
    let old_metrics = remake(
        &find(Addon::MetricsServer),
        None,
        &format!("{namespaces}{}", budget("v1beta1")),
    );
    let ebs = remake(
        &find(Addon::EbsCsiDriver),
        None,
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: uses-shared\n  namespace: skiff-shared\n",
    );
    let first_addons = [old_metrics.clone(), ebs.clone()];
    store_addons(&cloud, &first_addons);
    let config = cloud.bootstrap(
        InstanceGroupRole::ControlPlane,
        OsFamily::Debian,
        Cni::Cilium,
    );
    let node = cloud.node("i-0aaaaaaaaaaaaaa41", &config, Image::Ubuntu);
    let boot = node.boot();
    assert_booted(&node, &boot);
    assert_eq!(applies(&node), ["ebs-csi-driver", "metrics-server"]);
    assert_eq!(addon_status(&cloud).entries, []);

    // The new release: without the APIService and the two Namespaces.
    let new_metrics = remake(
        &find(Addon::MetricsServer),
        Some("APIService"),
        &budget("v1"),
    );
    put(
        &cloud,
        &addon_manifest("metrics-server"),
        &new_metrics.manifest,
    );
    let mut index = AddonIndex::default();
    index.set(entry(&new_metrics, "1.34"));
    index.set(entry(&ebs, "1.34"));
    put(&cloud, ADDONS_INDEX, &index.render());
    let run = node.run(&["apply-addons"]);
    assert!(run.success, "{}", run.everything());
    let removed = deletes(&node);
    assert_eq!(removed.len(), 1, "{removed:?}\n{}", run.log);
    assert!(removed[0].ends_with("addon-metrics-server.pruned.yaml"));
    let pruned = manifest_objects(&node.applied_manifest("addon-metrics-server.pruned.yaml"))
        .expect("the delete's manifest parses");
    let api_service = manifest_objects(&find(Addon::MetricsServer).manifest)
        .expect("parses")
        .into_iter()
        .find(|object| object.kind == "APIService")
        .expect("metrics-server has an APIService");
    assert_eq!(
        pruned,
        [
            api_service,
            ObjectIdentity {
                api_version: "v1".into(),
                kind: "Namespace".into(),
                namespace: None,
                name: "skiff-alone".into(),
            }
        ],
        "only what the release dropped, never a Namespace another addon uses"
    );
    assert!(
        run.log
            .contains("Namespace skiff-shared, but another addon does: kept"),
        "{}",
        run.log
    );
    assert!(recorded(&cloud).contains(&("metrics-server".to_string(), new_metrics.sha256())));

    // kubeadm-config says 1.35 (the first control plane upgraded), one
    // kube-apiserver pod still runs 1.34: the 1.35 line waits.
    let mut newer = ebs.clone();
    newer.manifest.push_str("# for 1.35\n");
    put(&cloud, &addon_manifest("ebs-csi-driver"), &newer.manifest);
    index.set(entry(&newer, "1.35"));
    put(&cloud, ADDONS_INDEX, &index.render());
    cloud.store_cluster_configuration("1.35.0");
    let (own, _) = cloud.api_servers().remove(0);
    let address = cloud
        .instance_private_ip(&node.instance_id)
        .expect("the node's address");
    cloud.write_cluster_file(&format!("apiservers/{own}"), &format!("{address} 1.35.0\n"));
    cloud.write_cluster_file("apiservers/ip-10-0-9-9.ec2.internal", "10.0.9.9 1.34.2\n");
    let run = node.run(&["apply-addons"]);
    assert!(run.success, "{}", run.everything());
    assert_eq!(
        applies(&node),
        ["ebs-csi-driver", "metrics-server", "metrics-server"]
    );
    let status = addon_status(&cloud);
    assert_eq!(status.entries.len(), 1, "{status:?}");
    let held = &status.entries[0];
    assert_eq!(held.state, AddonState::Held);
    assert_eq!(
        (
            held.name.as_str(),
            held.version.as_str(),
            held.kubernetes_minor.as_str()
        ),
        ("ebs-csi-driver", newer.version.as_str(), "1.35")
    );
    assert_eq!(held.sha256, newer.sha256());
    assert!(
        held.reason
            .contains("ip-10-0-9-9.ec2.internal runs v1.34.2")
            && !held.reason.contains(&own),
        "{}",
        held.reason
    );
    assert!(status.written.contains("i-0aaaaaaaaaaaaaa41"), "{status:?}");

    // Every kube-apiserver runs 1.35: it applies, and nothing is held.
    cloud.write_cluster_file("apiservers/ip-10-0-9-9.ec2.internal", "10.0.9.9 1.35.0\n");
    let run = node.run(&["apply-addons"]);
    assert!(run.success, "{}", run.everything());
    assert_eq!(
        applies(&node),
        [
            "ebs-csi-driver",
            "metrics-server",
            "metrics-server",
            "ebs-csi-driver"
        ]
    );
    assert_eq!(addon_status(&cloud).entries, []);
    // The lease is released (its conditional delete matched this node's write).
    assert!(!cloud
        .moto
        .list_keys(BUCKET, &format!("{CLUSTER_PREFIX}/etcd/leases/addons"))
        .iter()
        .any(|key| key.ends_with("leases/addons")));
}

/// Every addon off: skiff writes an empty index; the node applies nothing,
/// deletes nothing and fails nothing, at boot and from the timer.
#[test]
fn an_empty_index_applies_nothing_and_fails_nothing() {
    let cloud = start_cloud();
    put(&cloud, ADDONS_INDEX, &AddonIndex::default().render());
    let config = cloud.bootstrap(
        InstanceGroupRole::ControlPlane,
        OsFamily::Debian,
        Cni::Cilium,
    );
    let node = cloud.node("i-0aaaaaaaaaaaaaa51", &config, Image::Ubuntu);
    let boot = node.boot();
    assert_booted(&node, &boot);
    let run = node.run(&["apply-addons"]);
    assert!(run.success, "{}", run.everything());
    assert!(!run.log.contains("FAILED"), "{}", run.log);
    assert_eq!(applies(&node), Vec::<String>::new());
    assert!(deletes(&node).is_empty());
    assert_eq!(addon_status(&cloud).entries, []);
}

/// skiff writes the index at every apply and never deletes it while the
/// cluster exists: a missing index while the cluster runs addons is a lost
/// or wrong store, not "every addon turned off". Nothing is deleted, and
/// the status says why.
#[test]
fn a_missing_index_while_addons_run_removes_nothing() {
    let cloud = start_cloud();
    let metrics = rendered_addons()
        .into_iter()
        .filter(|addon| addon.addon == Addon::MetricsServer)
        .collect::<Vec<_>>();
    store_addons(&cloud, &metrics);
    let config = cloud.bootstrap(
        InstanceGroupRole::ControlPlane,
        OsFamily::Debian,
        Cni::Cilium,
    );
    let node = cloud.node("i-0aaaaaaaaaaaaaa52", &config, Image::Ubuntu);
    let boot = node.boot();
    assert_booted(&node, &boot);
    assert_eq!(applies(&node), ["metrics-server"]);

    cloud
        .moto
        .delete_object(BUCKET, &format!("{CLUSTER_PREFIX}/{ADDONS_INDEX}"));
    let run = node.run(&["apply-addons"]);
    assert!(
        !run.success,
        "a missing index fails the run: {}",
        run.everything()
    );
    assert!(deletes(&node).is_empty(), "{:?}", deletes(&node));
    assert_eq!(recorded(&cloud).len(), 1, "{:?}", recorded(&cloud));
    let status = addon_status(&cloud);
    assert_eq!(status.entries.len(), 1, "{status:?}");
    assert_eq!(status.entries[0].state, AddonState::Failed);
    assert!(
        status.entries[0]
            .reason
            .contains("is missing (HTTP 404) while the cluster runs addons (metrics-server"),
        "{status:?}"
    );
}
