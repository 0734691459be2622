//! The Windows nodes' pod network, from the first control-plane node of a
//! cluster with Windows groups and Calico: Calico through the Tigera
//! operator with its Windows data plane, and kube-proxy for Windows, with
//! the cluster's own settings substituted; a control plane that joins
//! later keeps kube-proxy for Windows at the Linux one's version, and does
//! not migrate a Calico installed from its manifest. The kubectl stand-in
//! keeps a copy of each file it applies (and records the operator's CRD and
//! Installation, so that `get installations.operator.tigera.io` answers as
//! kubectl does); the curl stand-in serves excerpts of the upstream files
//! (test-support's `sandbox/fixtures`).

use skiff_api::{Cni, InstanceGroupRole, OsFamily};
use skiff_templates::{paths, NodeBootstrap};
use skiff_test_support::sandbox::Image;

use super::assert_booted;
use crate::support::{start_cloud, Sandbox};

#[test]
fn the_first_control_plane_installs_calico_for_windows_through_the_operator_and_kube_proxy_for_windows(
) {
    let cloud = start_cloud();
    let config = NodeBootstrap {
        windows_nodes: true,
        ..cloud.bootstrap(
            InstanceGroupRole::ControlPlane,
            OsFamily::Debian,
            Cni::Calico,
        )
    };
    let node = cloud.node("i-0a1b2c3d4e5f60718", &config, Image::Ubuntu);
    let boot = node.boot();
    assert_booted(&node, &boot);

    // The operator and its CRDs of the pinned release, server-side, not
    // the manifest install.
    let applies = node.commands_starting("kubectl");
    let crds = applies
        .iter()
        .position(|line| {
            line.contains("apply --server-side --force-conflicts -f")
                && line.ends_with("/calico-operator-crds.yaml")
        })
        .unwrap_or_else(|| {
            panic!(
                "no server-side apply of operator-crds.yaml:\n{}",
                applies.join("\n")
            )
        });
    assert!(node
        .applied_manifest("calico-operator-crds.yaml")
        .contains("name: ipamconfigs.crd.projectcalico.org"));
    assert!(node
        .applied_manifest("tigera-operator.yaml")
        .contains("image: quay.io/tigera/operator:"));
    assert!(
        !applies.iter().any(|line| line.ends_with("/calico.yaml")),
        "the manifest install must not run beside the operator:\n{}",
        applies.join("\n")
    );

    // Strict affinity before the Installation (and so before Calico
    // allocates a block).
    let ipam = node.applied_manifest("calico-ipam-config.yaml");
    assert!(
        ipam.contains("kind: IPAMConfig\nmetadata:\n  name: default\n"),
        "{ipam}"
    );
    assert!(ipam.contains("  strictAffinity: true\n"), "{ipam}");
    let position = |file: &str| {
        applies
            .iter()
            .position(|line| line.ends_with(&format!("/{file}")))
            .unwrap_or_else(|| panic!("{file} was not applied:\n{}", applies.join("\n")))
    };
    assert!(crds < position("calico-ipam-config.yaml"));
    assert!(position("calico-ipam-config.yaml") < position("calico-installation.yaml"));
    assert!(position("tigera-operator.yaml") < position("calico-installation.yaml"));

    // The API server's address, as the node reads it.
    let endpoint_file = node.read(paths::API_ENDPOINT_FILE);
    let host = endpoint_file
        .lines()
        .find_map(|line| line.strip_prefix("SKIFF_API_ENDPOINT="))
        .expect("the endpoint");
    let port = endpoint_file
        .lines()
        .find_map(|line| line.strip_prefix("SKIFF_API_PORT="))
        .expect("the port");
    let services_endpoint = node.applied_manifest("calico-services-endpoint.yaml");
    assert!(
        services_endpoint
            .contains("  name: kubernetes-services-endpoint\n  namespace: tigera-operator\n"),
        "{services_endpoint}"
    );
    assert!(
        services_endpoint.contains(&format!(
            "  KUBERNETES_SERVICE_HOST: \"{host}\"\n  KUBERNETES_SERVICE_PORT: \"{port}\"\n"
        )),
        "{services_endpoint}"
    );

    // VXLAN on the cluster's pod CIDR, the Windows data plane, the
    // service CIDR.
    let installation = node.applied_manifest("calico-installation.yaml");
    for wanted in [
        "    bgp: Disabled\n",
        &format!("        cidr: {}\n", config.pod_cidr),
        "        encapsulation: VXLAN\n",
        "    windowsDataplane: HNS\n",
        &format!("  serviceCIDRs:\n    - {}\n", config.service_cidr),
        "kind: APIServer\n",
    ] {
        assert!(
            installation.contains(wanted),
            "no {wanted:?} in:\n{installation}"
        );
    }

    // kube-proxy for Windows at the cluster's version.
    let kube_proxy = node.applied_manifest("kube-proxy-windows.yaml");
    assert!(
        kube_proxy.contains(&format!(
            "image: sigwindowstools/kube-proxy:v{}-calico-hostprocess",
            config.kubernetes_version
        )),
        "{kube_proxy}"
    );
    assert!(!kube_proxy.contains("KUBE_PROXY_VERSION"), "{kube_proxy}");
    let downloads = node.commands_starting("curl");
    assert!(
        downloads.iter().any(|line| line.contains(&format!(
            "https://raw.githubusercontent.com/projectcalico/calico/v{}/manifests/tigera-operator.yaml",
            skiff_templates::cni::CALICO_VERSION
        ))),
        "{}",
        downloads.join("\n")
    );
}

fn applied_files(node: &skiff_test_support::sandbox::NodeSandbox) -> Vec<String> {
    node.commands_starting("kubectl")
        .into_iter()
        .filter(|line| line.contains(" apply "))
        .filter_map(|line| line.rsplit('/').next().map(str::to_string))
        .collect()
}

#[test]
fn a_joining_control_plane_keeps_kube_proxy_for_windows_at_the_linux_kube_proxys_version() {
    let cloud = start_cloud();
    let config = NodeBootstrap {
        windows_nodes: true,
        ..cloud.bootstrap(
            InstanceGroupRole::ControlPlane,
            OsFamily::Debian,
            Cni::Calico,
        )
    };
    let first = cloud.node("i-0a1b2c3d4e5f60721", &config, Image::Ubuntu);
    let boot = first.boot();
    assert_booted(&first, &boot);
    let second = cloud.node("i-0a1b2c3d4e5f60722", &config, Image::Ubuntu);
    let boot = second.boot();
    assert_booted(&second, &boot);
    assert!(
        second.commands_starting("kubeadm join").len() == 1,
        "{}",
        second.commands().join("\n")
    );

    // It finds the operator's Installation, installs nothing of Calico's
    // again, and applies kube-proxy for Windows at the version of the Linux
    // kube-proxy (kubeadm's, in the cluster).
    assert!(second
        .commands_starting("kubectl")
        .iter()
        .any(|line| line.contains("get installations.operator.tigera.io default")));
    let applied = applied_files(&second);
    assert_eq!(applied, ["kube-proxy-windows.yaml"], "{applied:?}");
    let linux = cloud.etcd_value("/registry/daemonsets/kube-system/kube-proxy");
    let version = linux.rsplit(":v").next().expect("a tag");
    assert!(
        second
            .applied_manifest("kube-proxy-windows.yaml")
            .contains(&format!(
                "sigwindowstools/kube-proxy:v{version}-calico-hostprocess"
            )),
        "{linux}"
    );
}

/// A Calico cluster whose first control plane ran without Windows groups
/// runs Calico from its manifest: a control plane that joins after a
/// Windows group was added does not migrate it, and says so.
#[test]
fn a_calico_cluster_built_without_windows_groups_is_not_migrated_and_the_node_says_so() {
    let cloud = start_cloud();
    let linux_only = cloud.bootstrap(
        InstanceGroupRole::ControlPlane,
        OsFamily::Debian,
        Cni::Calico,
    );
    let first = cloud.node("i-0a1b2c3d4e5f60731", &linux_only, Image::Ubuntu);
    let boot = first.boot();
    assert_booted(&first, &boot);
    assert_eq!(applied_files(&first), ["calico.yaml"]);

    let with_windows = NodeBootstrap {
        windows_nodes: true,
        ..linux_only
    };
    let second = cloud.node("i-0a1b2c3d4e5f60732", &with_windows, Image::Ubuntu);
    let boot = second.boot();
    assert_booted(&second, &boot);
    assert!(
        applied_files(&second).is_empty(),
        "{:?}",
        applied_files(&second)
    );
    let log = second.read("/var/log/skiff-bootstrap.log");
    assert!(
        log.contains("was installed from its manifest, without the Tigera operator: the Windows nodes get no pod network until it is migrated"),
        "{log}"
    );
}
