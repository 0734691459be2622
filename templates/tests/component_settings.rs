//! `spec.kubelet` and `spec.controlPlane.*.extraArgs`/`extraVolumes` as the
//! node's files carry them: the kubelet patch kubeadm applies at init and
//! join, and the components' flags in the ClusterConfiguration, in both
//! kubeadm API versions.

mod support;

use std::collections::BTreeMap;

use serde_norway::Value;
use skiff_api::{ComponentSpec, HostPathMount, InstanceGroupRole, KubeletSpec, OsFamily};
use skiff_templates::{node_files, paths, render_user_data, ComponentArguments, NodeBootstrap};
use support::examples::example;

fn documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| serde::Deserialize::deserialize(document).expect("YAML parses"))
        .collect()
}

fn kind<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    documents
        .iter()
        .find(|document| document.get("kind").and_then(Value::as_str) == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} document"))
}

fn file(config: &NodeBootstrap, path: &str) -> Option<String> {
    node_files(config)
        .expect("renders")
        .into_iter()
        .find(|file| file.path == path)
        .map(|file| file.content)
}

fn settings() -> KubeletSpec {
    KubeletSpec {
        max_pods: Some(250),
        serialize_image_pulls: Some(false),
        kube_reserved: BTreeMap::from([
            ("cpu".to_string(), "100m".to_string()),
            ("memory".to_string(), "256Mi".to_string()),
        ]),
        eviction_hard: BTreeMap::from([("memory.available".to_string(), "200Mi".to_string())]),
        eviction_soft: BTreeMap::from([("nodefs.available".to_string(), "15%".to_string())]),
        eviction_soft_grace_period: BTreeMap::from([(
            "nodefs.available".to_string(),
            "1m30s".to_string(),
        )]),
        container_log_max_size: Some("50Mi".to_string()),
        container_log_max_files: Some(3),
        shutdown_grace_period: Some("30s".to_string()),
        ..KubeletSpec::default()
    }
}

/// The patch is a KubeletConfiguration fragment with the kubelet's types
/// (numbers and booleans unquoted), and both kubeadm files of the node name
/// its folder; a node without settings has neither.
#[test]
fn kubelet_settings_become_a_kubeadm_patch_named_by_init_and_join() {
    for role in [InstanceGroupRole::ControlPlane, InstanceGroupRole::Node] {
        let plain = example(role, OsFamily::Debian);
        assert_eq!(file(&plain, paths::KUBELET_PATCH), None);
        let join = file(&plain, paths::KUBEADM_JOIN_TEMPLATE).expect("a join file");
        assert!(!join.contains("patches:"), "{join}");

        let config = NodeBootstrap {
            kubelet: settings(),
            ..example(role, OsFamily::Debian)
        };
        let patch = file(&config, paths::KUBELET_PATCH).expect("a patch");
        assert!(
            paths::KUBELET_PATCH.starts_with(&format!("{}/", paths::KUBEADM_PATCHES_DIRECTORY)),
            "kubeadm reads the patch from its folder"
        );
        let patch: Value = serde_norway::from_str(&patch).expect("the patch parses");
        assert_eq!(patch["apiVersion"], "kubelet.config.k8s.io/v1beta1");
        assert_eq!(patch["kind"], "KubeletConfiguration");
        assert_eq!(patch["maxPods"].as_u64(), Some(250));
        assert_eq!(patch["serializeImagePulls"].as_bool(), Some(false));
        assert_eq!(patch["kubeReserved"]["memory"], "256Mi");
        assert_eq!(patch["evictionHard"]["memory.available"], "200Mi");
        assert_eq!(
            patch["evictionSoftGracePeriod"]["nodefs.available"],
            "1m30s"
        );
        assert_eq!(patch["containerLogMaxFiles"].as_u64(), Some(3));
        assert_eq!(patch["shutdownGracePeriod"], "30s");

        let mut kubeadm_files = vec![paths::KUBEADM_JOIN_TEMPLATE];
        if role == InstanceGroupRole::ControlPlane {
            kubeadm_files.push(paths::KUBEADM_INIT_TEMPLATE);
        }
        for path in kubeadm_files {
            let text = file(&config, path).expect("a kubeadm file");
            let parsed = documents(&text);
            let node = parsed
                .iter()
                .find(|document| document.get("nodeRegistration").is_some())
                .expect("an Init- or JoinConfiguration");
            assert_eq!(
                node["patches"]["directory"].as_str(),
                Some(paths::KUBEADM_PATCHES_DIRECTORY),
                "{path}"
            );
        }
        // The cluster-wide base stays as it was: only the patch carries
        // the group's settings.
        if role == InstanceGroupRole::ControlPlane {
            let init = file(&config, paths::KUBEADM_INIT_TEMPLATE).expect("init");
            let plain_init = file(&plain, paths::KUBEADM_INIT_TEMPLATE).expect("init");
            let base = |text: &str| kind(&documents(text), "KubeletConfiguration").clone();
            assert_eq!(base(&init), base(&plain_init));
        }
    }
}

fn component(arguments: &[(&str, &str)], volumes: Vec<HostPathMount>) -> ComponentSpec {
    ComponentSpec {
        extra_args: arguments
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
        extra_volumes: volumes,
    }
}

/// A component's arguments as (name, value) pairs, from either form.
fn arguments(value: &Value) -> Vec<(String, String)> {
    match value {
        Value::Mapping(map) => map
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().expect("name").to_string(),
                    value.as_str().expect("a string").to_string(),
                )
            })
            .collect(),
        Value::Sequence(list) => list
            .iter()
            .map(|argument| {
                (
                    argument["name"].as_str().expect("name").to_string(),
                    argument["value"].as_str().expect("value").to_string(),
                )
            })
            .collect(),
        other => panic!("extraArgs is {other:?}"),
    }
}

/// The spec's flags follow skiff's own in the API server, and the other
/// components get sections only when they have settings, in v1beta3 (a
/// map) and v1beta4 (a list) alike.
#[test]
fn control_plane_extra_args_and_volumes_reach_the_cluster_configuration() {
    let oidc = HostPathMount {
        name: "oidc-ca".to_string(),
        host_path: "/etc/oidc".to_string(),
        mount_path: "/etc/oidc".to_string(),
        read_only: true,
        path_type: "DirectoryOrCreate".to_string(),
    };
    let components = ComponentArguments {
        api_server: component(
            &[
                ("oidc-issuer-url", "https://issuer.example.com"),
                ("oidc-client-id", "kubernetes"),
            ],
            vec![oidc],
        ),
        controller_manager: component(&[("terminated-pod-gc-threshold", "100")], Vec::new()),
        scheduler: component(&[("v", "2")], Vec::new()),
        etcd: component(&[("quota-backend-bytes", "8589934592")], Vec::new()),
    };
    for version in ["1.30.14", "1.34.2"] {
        let plain = NodeBootstrap {
            kubernetes_version: version.parse().expect("version"),
            ..example(InstanceGroupRole::ControlPlane, OsFamily::Debian)
        };
        let plain_init = documents(&file(&plain, paths::KUBEADM_INIT_TEMPLATE).expect("init"));
        let plain_cluster = kind(&plain_init, "ClusterConfiguration");
        assert!(plain_cluster.get("controllerManager").is_none());
        assert!(plain_cluster.get("scheduler").is_none());
        assert!(plain_cluster["etcd"]["local"].get("extraArgs").is_none());

        let config = NodeBootstrap {
            component_arguments: components.clone(),
            ..plain.clone()
        };
        let init = documents(&file(&config, paths::KUBEADM_INIT_TEMPLATE).expect("init"));
        let cluster = kind(&init, "ClusterConfiguration");
        let api_server = arguments(&cluster["apiServer"]["extraArgs"]);
        let mut expected = arguments(&plain_cluster["apiServer"]["extraArgs"]);
        expected.push(("oidc-client-id".into(), "kubernetes".into()));
        expected.push((
            "oidc-issuer-url".into(),
            "https://issuer.example.com".into(),
        ));
        assert_eq!(api_server, expected, "{version}");
        let volumes = cluster["apiServer"]["extraVolumes"]
            .as_sequence()
            .expect("a list");
        let last = volumes.last().expect("volumes");
        assert_eq!(last["name"], "oidc-ca");
        assert_eq!(last["readOnly"].as_bool(), Some(true));
        assert_eq!(last["pathType"], "DirectoryOrCreate");
        assert_eq!(
            volumes.len(),
            plain_cluster["apiServer"]["extraVolumes"]
                .as_sequence()
                .expect("a list")
                .len()
                + 1
        );
        assert_eq!(
            arguments(&cluster["controllerManager"]["extraArgs"]),
            [("terminated-pod-gc-threshold".into(), "100".into())]
        );
        assert_eq!(
            arguments(&cluster["scheduler"]["extraArgs"]),
            [("v".into(), "2".into())]
        );
        assert_eq!(
            arguments(&cluster["etcd"]["local"]["extraArgs"]),
            [("quota-backend-bytes".into(), "8589934592".into())]
        );
        assert_eq!(cluster["etcd"]["local"]["dataDir"], "/var/lib/etcd");

        // Workers run no control plane: their user-data does not move.
        let worker = NodeBootstrap {
            kubernetes_version: version.parse().expect("version"),
            ..example(InstanceGroupRole::Node, OsFamily::Debian)
        };
        assert_eq!(
            render_user_data(&worker).expect("renders"),
            render_user_data(&NodeBootstrap {
                component_arguments: components.clone(),
                ..worker.clone()
            })
            .expect("renders")
        );
    }
}

/// The render checks the spec's rules again at its own boundary.
#[test]
fn a_reserved_flag_is_refused_at_render_too() {
    let config = NodeBootstrap {
        component_arguments: ComponentArguments {
            api_server: component(&[("service-account-issuer", "https://x")], Vec::new()),
            ..ComponentArguments::default()
        },
        ..example(InstanceGroupRole::ControlPlane, OsFamily::Debian)
    };
    let error = render_user_data(&config).expect_err("refused");
    assert!(
        error
            .to_string()
            .contains("component_arguments.apiServer.extraArgs[\"service-account-issuer\"]"),
        "{error}"
    );
    let config = NodeBootstrap {
        kubelet: KubeletSpec {
            max_pods: Some(0),
            ..KubeletSpec::default()
        },
        ..example(InstanceGroupRole::Node, OsFamily::Debian)
    };
    let error = render_user_data(&config).expect_err("refused");
    assert!(error.to_string().contains("kubelet.maxPods"), "{error}");
}
