//! The rendered user-data as data: exact snapshots, determinism, size,
//! secrecy, and the kubeadm configuration it carries.

mod support;

use std::collections::BTreeMap;

use serde_norway::Value;
use skiff_api::{InstanceGroupRole, OsFamily, Taint};
use skiff_templates::{
    bootstrap_script, node_files, paths, render_user_data, AuditLog, NodeBootstrap, TemplateError,
    DEFAULT_AUDIT_POLICY,
};
use skiff_test_support::cloud_config::CloudConfig;
use support::examples::{all_roles_and_families, example};

/// EC2 refuses larger user-data (RunInstances, launch templates).
const EC2_USER_DATA_LIMIT: usize = 16 * 1024;

#[test]
fn user_data_snapshots() {
    for (name, config) in all_roles_and_families() {
        let user_data = render_user_data(&config).expect("renders");
        insta::assert_snapshot!(format!("user_data_{name}"), user_data);
    }
}

/// The user-data EC2 gets: the loader in the script's place (the script's
/// hash changes with any change of the script, so this snapshot moves with
/// `user_data_snapshots`, by one line).
#[test]
fn ec2_user_data_snapshots() {
    for (name, config) in all_roles_and_families() {
        let whole = render_user_data(&config).expect("renders");
        let ec2 = skiff_templates::ec2_user_data(&whole).expect("EC2's form");
        insta::assert_snapshot!(format!("ec2_user_data_{name}"), ec2.text);
    }
}

/// The same files in plain text, so a reviewer can read what the compressed
/// entries of the user-data hold.
#[test]
fn node_file_snapshots() {
    for (name, config) in all_roles_and_families() {
        if config.role == InstanceGroupRole::Bastion {
            continue;
        }
        let mut text = String::new();
        for file in node_files(&config).expect("renders") {
            text.push_str(&format!(
                "===== {} ({})\n{}",
                file.path, file.permissions, file.content
            ));
        }
        insta::assert_snapshot!(format!("node_files_{name}"), text);
    }
}

#[test]
fn rendering_is_deterministic_and_follows_the_version() {
    for (name, config) in all_roles_and_families() {
        let first = render_user_data(&config).expect("renders");
        let second = render_user_data(&config.clone()).expect("renders");
        assert_eq!(first, second, "{name}: two renders differ");

        if config.role == InstanceGroupRole::Bastion {
            continue;
        }
        let upgraded = NodeBootstrap {
            kubernetes_version: "1.34.3".parse().expect("version"),
            ..config.clone()
        };
        let changed = render_user_data(&upgraded).expect("renders");
        assert_ne!(
            first, changed,
            "{name}: a new version must change the user-data"
        );
        let script = bootstrap_script(&upgraded)
            .expect("renders")
            .expect("script");
        assert!(script.contains("readonly KUBERNETES_VERSION='1.34.3'"));
    }
}

#[test]
fn label_order_does_not_matter() {
    let mut forward = example(InstanceGroupRole::Node, OsFamily::Debian);
    let mut backward = forward.clone();
    forward.node_labels = BTreeMap::new();
    backward.node_labels = BTreeMap::new();
    for (key, value) in [("a", "1"), ("b", "2"), ("c", "3")] {
        forward
            .node_labels
            .insert(key.to_string(), value.to_string());
    }
    for (key, value) in [("c", "3"), ("b", "2"), ("a", "1")] {
        backward
            .node_labels
            .insert(key.to_string(), value.to_string());
    }
    assert_eq!(
        render_user_data(&forward).expect("renders"),
        render_user_data(&backward).expect("renders")
    );
}

#[test]
fn user_data_fits_the_ec2_limit_even_for_a_large_group() {
    for (name, mut config) in all_roles_and_families() {
        for index in 0..30 {
            config.node_labels.insert(
                format!("example.com/label-number-{index:02}"),
                format!("a-fairly-long-label-value-{index:02}"),
            );
        }
        for index in 0..10 {
            config.taints.push(Taint {
                key: format!("example.com/taint-number-{index:02}"),
                value: "a-fairly-long-taint-value".to_string(),
                effect: "NoSchedule".to_string(),
            });
        }
        for index in 0..10 {
            config.api_cert_sans.push(format!(
                "api-alias-{index:02}.a-long-subdomain.of-the-cluster.example.com"
            ));
        }
        // EC2's limit applies to the bytes before the API's base64: the gzip
        // of the document EC2 gets, whose loader fetches the script.
        let ec2 = skiff_templates::ec2_user_data(&render_user_data(&config).expect("renders"))
            .expect("the script moves to the store");
        let encoded = skiff_templates::encode_user_data(&ec2.text).expect("compresses");
        let size = encoded.len() / 4 * 3;
        eprintln!("{name}: {size} bytes of user-data");
        assert!(
            size < EC2_USER_DATA_LIMIT,
            "{name}: {size} bytes of user-data; EC2 accepts at most {EC2_USER_DATA_LIMIT}"
        );
    }
}

#[test]
fn user_data_holds_placeholders_not_secrets() {
    for (name, config) in all_roles_and_families() {
        let user_data = render_user_data(&config).expect("renders");
        let mut everything = user_data.clone();
        for file in CloudConfig::parse(&user_data).files {
            everything.push_str(&file.content);
        }
        assert!(!everything.contains("PRIVATE KEY"), "{name}");
        // The encryption configuration (its key) is read from the store at
        // boot, never carried in the user-data.
        assert!(
            !everything.contains("EncryptionConfiguration")
                && !everything.contains("secretbox")
                && !everything
                    .lines()
                    .any(|line| line.trim().starts_with("secret:")),
            "{name}: the user-data holds an encryption configuration"
        );
        assert!(
            find_token_like(&everything).is_none(),
            "{name}: something shaped like a bootstrap token: {:?}",
            find_token_like(&everything)
        );
        // Bastions and external etcd members join no Kubernetes API.
        if !matches!(
            config.role,
            InstanceGroupRole::Bastion | InstanceGroupRole::Etcd
        ) {
            let join = CloudConfig::parse(&user_data)
                .file(paths::KUBEADM_JOIN_TEMPLATE)
                .content
                .clone();
            assert!(
                join.contains("token: \"@SKIFF_BOOTSTRAP_TOKEN@\""),
                "{join}"
            );
            assert!(join.contains("- \"@SKIFF_CA_CERT_HASH@\""), "{join}");
        }
    }
}

/// A `[a-z0-9]{6}.[a-z0-9]{16}` run, the shape of a kubeadm token.
fn find_token_like(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let token_character = |byte: u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();
    for start in 0..bytes.len().saturating_sub(22) {
        let candidate = &bytes[start..start + 23];
        let boundary_before = start == 0 || !token_character(bytes[start - 1]);
        let boundary_after = bytes
            .get(start + 23)
            .is_none_or(|byte| !token_character(*byte));
        if boundary_before
            && boundary_after
            && candidate[..6].iter().all(|byte| token_character(*byte))
            && candidate[6] == b'.'
            && candidate[7..].iter().all(|byte| token_character(*byte))
        {
            return Some(String::from_utf8_lossy(candidate).into_owned());
        }
    }
    None
}

#[test]
fn token_detector_detects_tokens() {
    assert_eq!(
        find_token_like("token: abcdef.0123456789abcdef\n").as_deref(),
        Some("abcdef.0123456789abcdef")
    );
    assert_eq!(find_token_like("api.c1.example.com"), None);
}

#[test]
fn user_data_files_are_the_node_files_and_survive_compression() {
    for (name, config) in all_roles_and_families() {
        let parsed = CloudConfig::parse(&render_user_data(&config).expect("renders"));
        let files = node_files(&config).expect("renders");
        assert_eq!(parsed.files.len(), files.len(), "{name}");
        for (written, expected) in parsed.files.iter().zip(&files) {
            assert_eq!(written.path, expected.path, "{name}");
            assert_eq!(written.permissions, expected.permissions, "{name}");
            assert_eq!(
                written.content, expected.content,
                "{name}: {}",
                expected.path
            );
        }
        let script = parsed
            .files
            .iter()
            .find(|file| file.path == paths::BOOTSTRAP_SCRIPT);
        if let Some(script) = script {
            assert_eq!(script.encoding, None, "{name}");
            assert_eq!(script.permissions, "0755");
        }
        // The document is compressed as a whole for EC2, and comes back whole.
        let rendered = render_user_data(&config).expect("renders");
        let encoded = skiff_templates::encode_user_data(&rendered).expect("compresses");
        assert_eq!(
            skiff_templates::decode_user_data(&encoded).as_deref(),
            Some(rendered.as_str()),
            "{name}"
        );
    }
}

/// What the planner renders a gossip cluster's user-data with, and replaces
/// by plain string substitution once the API load balancer exists.
const ENDPOINT_PLACEHOLDER: &str = "api-endpoint.skiff.invalid";
/// The load balancer's DNS name that replaces [`ENDPOINT_PLACEHOLDER`].
const LOAD_BALANCER: &str = "dev-api-0123456789abcdef.elb.eu-west-1.amazonaws.com";

/// A gossip cluster's node, as the planner renders it before the load
/// balancer exists; `api_cert_sans` repeats the endpoint, which must be harmless.
fn gossip(config: NodeBootstrap) -> NodeBootstrap {
    NodeBootstrap {
        cluster_name: "dev.k8s.local".to_string(),
        api_endpoint: ENDPOINT_PLACEHOLDER.to_string(),
        api_cert_sans: vec![
            ENDPOINT_PLACEHOLDER.to_string(),
            "api.dev.k8s.local".to_string(),
        ],
        ..config
    }
}

#[test]
fn a_substituted_gossip_endpoint_is_only_in_the_endpoint_file() {
    for (name, config) in all_roles_and_families() {
        if matches!(
            config.role,
            InstanceGroupRole::Bastion | InstanceGroupRole::Etcd
        ) {
            continue;
        }
        let rendered = render_user_data(&gossip(config)).expect("renders");
        assert!(
            rendered.contains(ENDPOINT_PLACEHOLDER),
            "{name}: {rendered}"
        );
        let substituted = rendered.replace(ENDPOINT_PLACEHOLDER, LOAD_BALANCER);
        let parsed = CloudConfig::parse(&substituted);

        // The host is in the plain endpoint file only: the kubeadm
        // templates and the script carry placeholders the node fills in.
        for file in &parsed.files {
            if file.path == paths::API_ENDPOINT_FILE {
                continue;
            }
            for host in [ENDPOINT_PLACEHOLDER, LOAD_BALANCER] {
                assert!(
                    !file.content.contains(host),
                    "{name}: {} names {host}; only the endpoint file may",
                    file.path
                );
            }
        }

        let endpoint = parsed.file(paths::API_ENDPOINT_FILE);
        assert_eq!(endpoint.encoding, None, "{name}");
        assert!(
            endpoint.content.contains(&format!(
                "\nSKIFF_API_ENDPOINT={LOAD_BALANCER}\nSKIFF_API_PORT=443\n"
            )),
            "{name}: {}",
            endpoint.content
        );
        let everything: String = parsed
            .files
            .iter()
            .map(|file| file.content.as_str())
            .collect();
        assert!(
            !everything.contains(ENDPOINT_PLACEHOLDER),
            "{name}: the placeholder survived the substitution"
        );
    }
}

#[test]
fn substituting_the_endpoint_gives_the_user_data_rendered_with_it() {
    for (name, config) in all_roles_and_families() {
        let with_endpoint = |host: &str| NodeBootstrap {
            api_endpoint: host.to_string(),
            api_cert_sans: vec!["api.dev.k8s.local".to_string()],
            ..gossip(config.clone())
        };
        let substituted = render_user_data(&with_endpoint(ENDPOINT_PLACEHOLDER))
            .expect("renders")
            .replace(ENDPOINT_PLACEHOLDER, LOAD_BALANCER);
        let direct = render_user_data(&with_endpoint(LOAD_BALANCER)).expect("renders");
        assert_eq!(substituted, direct, "{name}");
    }
}

/// Parses every YAML document of a kubeadm configuration file.
fn documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|document| serde::Deserialize::deserialize(document).expect("kubeadm YAML parses"))
        .collect()
}

fn kind<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    documents
        .iter()
        .find(|document| document.get("kind").and_then(Value::as_str) == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} document"))
}

fn file_content(config: &NodeBootstrap, path: &str) -> String {
    node_files(config)
        .expect("renders")
        .into_iter()
        .find(|file| file.path == path)
        .unwrap_or_else(|| panic!("no {path}"))
        .content
}

fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |value, key| {
        value
            .get(*key)
            .unwrap_or_else(|| panic!("no {key} in {value:?}"))
    })
}

#[test]
fn kubeadm_init_configuration_is_valid_yaml_with_the_cluster_settings() {
    let config = example(InstanceGroupRole::ControlPlane, OsFamily::Debian);
    let init = documents(&file_content(&config, paths::KUBEADM_INIT_TEMPLATE));
    assert_eq!(init.len(), 3);

    let cluster = kind(&init, "ClusterConfiguration");
    assert_eq!(
        at(cluster, &["apiVersion"]).as_str(),
        Some("kubeadm.k8s.io/v1beta4")
    );
    assert_eq!(
        at(cluster, &["controlPlaneEndpoint"]).as_str(),
        Some("@SKIFF_API_SERVER@"),
        "the node fills in the endpoint from {}",
        paths::API_ENDPOINT_FILE
    );
    assert_eq!(
        at(cluster, &["kubernetesVersion"]).as_str(),
        Some("v1.34.2")
    );
    assert_eq!(
        at(cluster, &["networking", "podSubnet"]).as_str(),
        Some("100.96.0.0/11")
    );
    assert_eq!(
        at(cluster, &["networking", "serviceSubnet"]).as_str(),
        Some("10.96.0.0/12")
    );
    assert!(at(cluster, &["etcd", "local"]).is_mapping(), "stacked etcd");
    let sans: Vec<&str> = at(cluster, &["apiServer", "certSANs"])
        .as_sequence()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        sans,
        vec![
            "@SKIFF_API_ENDPOINT@",
            "c1-api-0123456789abcdef.elb.us-east-1.amazonaws.com"
        ],
        "the endpoint, filled in on the node, then the other names; \
         the endpoint's duplicate in api_cert_sans is left out"
    );
    assert_eq!(
        file_content(&config, paths::API_ENDPOINT_FILE)
            .lines()
            .filter(|line| !line.starts_with('#'))
            .collect::<Vec<_>>(),
        vec![
            "SKIFF_API_ENDPOINT=api.c1.example.com",
            "SKIFF_API_PORT=443"
        ]
    );

    let initialization = kind(&init, "InitConfiguration");
    let token = &at(initialization, &["bootstrapTokens"])[0];
    assert_eq!(at(token, &["ttl"]).as_str(), Some("0s"));
    assert_eq!(
        at(token, &["token"]).as_str(),
        Some("@SKIFF_BOOTSTRAP_TOKEN@")
    );
    let taints = at(initialization, &["nodeRegistration", "taints"])
        .as_sequence()
        .expect("taints");
    assert_eq!(taints.len(), 1);
    assert_eq!(
        at(&taints[0], &["key"]).as_str(),
        Some("node-role.kubernetes.io/control-plane")
    );

    let kubelet = kind(&init, "KubeletConfiguration");
    assert_eq!(at(kubelet, &["cgroupDriver"]).as_str(), Some("systemd"));
    assert_eq!(at(kubelet, &["clusterDNS"])[0].as_str(), Some("10.96.0.10"));
}

#[test]
fn kubeadm_join_configuration_carries_labels_and_taints() {
    let config = example(InstanceGroupRole::Node, OsFamily::Rhel);
    let join = documents(&file_content(&config, paths::KUBEADM_JOIN_TEMPLATE));
    assert_eq!(join.len(), 1);
    let join = kind(&join, "JoinConfiguration");
    assert!(join.get("controlPlane").is_none());
    assert_eq!(
        at(join, &["discovery", "bootstrapToken", "apiServerEndpoint"]).as_str(),
        Some("@SKIFF_API_SERVER@")
    );
    assert_eq!(
        file_content(&config, paths::API_ENDPOINT_FILE)
            .lines()
            .filter(|line| !line.starts_with('#'))
            .collect::<Vec<_>>(),
        vec![
            "SKIFF_API_ENDPOINT=api.c1.example.com",
            "SKIFF_API_PORT=443"
        ]
    );
    let arguments = at(join, &["nodeRegistration", "kubeletExtraArgs"])
        .as_sequence()
        .expect("v1beta4 lists extra arguments");
    assert_eq!(at(&arguments[0], &["name"]).as_str(), Some("node-labels"));
    assert_eq!(
        at(&arguments[0], &["value"]).as_str(),
        Some(
            "example.com/accelerator=none,skiff.dev/instance-group=nodes-us-east-1a,team=payments"
        )
    );
    let taint = &at(join, &["nodeRegistration", "taints"])[0];
    assert_eq!(at(taint, &["key"]).as_str(), Some("dedicated"));
    assert_eq!(at(taint, &["value"]).as_str(), Some("payments"));
    assert_eq!(at(taint, &["effect"]).as_str(), Some("NoSchedule"));
}

#[test]
fn kubernetes_before_1_31_gets_kubeadm_v1beta3() {
    let config = NodeBootstrap {
        kubernetes_version: "1.30.14".parse().expect("version"),
        ..example(InstanceGroupRole::ControlPlane, OsFamily::Debian)
    };
    let init = documents(&file_content(&config, paths::KUBEADM_INIT_TEMPLATE));
    let cluster = kind(&init, "ClusterConfiguration");
    assert_eq!(
        at(cluster, &["apiVersion"]).as_str(),
        Some("kubeadm.k8s.io/v1beta3")
    );
    assert_eq!(
        at(cluster, &["apiServer", "timeoutForControlPlane"]).as_str(),
        Some("10m0s")
    );
    let initialization = kind(&init, "InitConfiguration");
    assert!(
        initialization.get("timeouts").is_none(),
        "v1beta3 has no timeouts"
    );
    assert_eq!(
        at(
            initialization,
            &["nodeRegistration", "kubeletExtraArgs", "node-labels"]
        )
        .as_str(),
        Some("skiff.dev/instance-group=control-plane-us-east-1a"),
        "v1beta3 takes extra arguments as a map"
    );
    let join = documents(&file_content(&config, paths::KUBEADM_JOIN_TEMPLATE));
    let join = kind(&join, "JoinConfiguration");
    assert_eq!(at(join, &["discovery", "timeout"]).as_str(), Some("10m0s"));
    assert!(at(join, &["controlPlane"]).is_mapping());

    let script = bootstrap_script(&config).expect("renders").expect("script");
    assert!(script.contains("readonly PAUSE_IMAGE='registry.k8s.io/pause:3.9'"));
    assert!(script.contains("https://pkgs.k8s.io/core:/stable:/v1.30/deb"));
}

#[test]
fn the_script_reads_the_state_store_at_the_configured_place() {
    let mut config = example(InstanceGroupRole::Node, OsFamily::Debian);
    config.state_store.endpoint = Some("http://127.0.0.1:5123".to_string());
    config.state_store.path_style = true;
    let script = bootstrap_script(&config).expect("renders").expect("script");
    assert!(script.contains(
        "readonly STATE_STORE_URL='http://127.0.0.1:5123/skiff-state-example/team-a/c1.example.com'"
    ));
    assert!(script.contains("--aws-sigv4 \"aws:amz:$STATE_STORE_REGION:s3\""));
    let shell_options: Vec<&str> = script
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("set -") || line.starts_with("set +"))
        .collect();
    assert_eq!(
        shell_options,
        vec!["set -euo pipefail"],
        "no tracing (it would print secrets), and stop on errors"
    );
}

#[test]
fn bastions_get_no_kubernetes() {
    let config = example(InstanceGroupRole::Bastion, OsFamily::Debian);
    let user_data = render_user_data(&config).expect("renders");
    assert!(user_data.len() < 400, "a bastion's user-data stays tiny");
    assert!(!user_data.contains("kube"));
    assert!(!user_data.contains("s3"));
    let parsed = CloudConfig::parse(&user_data);
    assert!(parsed.files.is_empty() && parsed.commands.is_empty());
}

#[test]
fn bad_settings_are_refused_with_their_name() {
    let base = example(InstanceGroupRole::Node, OsFamily::Debian);
    let cases: Vec<(&str, NodeBootstrap)> = vec![
        ("node_labels", {
            let mut config = base.clone();
            config
                .node_labels
                .insert("team".to_string(), "a,b=c".to_string());
            config
        }),
        (
            "api_endpoint",
            NodeBootstrap {
                api_endpoint: "https://api.c1.example.com".to_string(),
                ..base.clone()
            },
        ),
        (
            "pod_cidr",
            NodeBootstrap {
                pod_cidr: "100.96.0.0".to_string(),
                ..base.clone()
            },
        ),
        (
            "cluster_dns",
            NodeBootstrap {
                cluster_dns: "ten".to_string(),
                ..base.clone()
            },
        ),
        ("state_store.bucket", {
            let mut config = base.clone();
            config.state_store.bucket = "Bad_Bucket".to_string();
            config
        }),
        (
            "instance_group",
            NodeBootstrap {
                instance_group: "nodes us-east-1a".to_string(),
                ..base.clone()
            },
        ),
    ];
    for (setting, config) in cases {
        let error = render_user_data(&config).expect_err(setting);
        assert!(
            matches!(&error, TemplateError::InvalidSetting { setting: named, .. } if named.starts_with(setting)),
            "expected an error about {setting}, got: {error}"
        );
    }

    let old = NodeBootstrap {
        kubernetes_version: "1.20.0".parse().expect("version"),
        ..base
    };
    let error = render_user_data(&old).expect_err("unsupported");
    assert!(
        error.to_string().contains("spec.kubernetesVersion"),
        "{error}"
    );
}

/// `{#` opens a template comment anywhere, so shell such as `${#text}` would
/// silently swallow the script up to the next `#}`: only whole-line block
/// comments may use it.
#[test]
fn the_script_template_opens_comments_only_at_the_start_of_a_line() {
    let template = include_str!("../templates/bootstrap.sh.j2");
    for (number, line) in template.lines().enumerate() {
        if line.contains("{#") {
            assert_eq!(line.trim(), "{#", "line {}: {line}", number + 1);
        }
    }
}

#[test]
fn backups_are_written_with_the_stores_kms_key_when_it_has_one() {
    let mut config = example(InstanceGroupRole::ControlPlane, OsFamily::Debian);
    let plain = file_content(&config, paths::BOOTSTRAP_SCRIPT);
    assert!(plain.contains("readonly STATE_STORE_KMS_KEY=''"), "{plain}");
    assert!(plain.contains("x-amz-server-side-encryption: AES256"));
    let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    config.state_store.kms_key = Some(key.to_string());
    let script = file_content(&config, paths::BOOTSTRAP_SCRIPT);
    assert!(
        script.contains(&format!("readonly STATE_STORE_KMS_KEY='{key}'")),
        "{script}"
    );
    assert!(script.contains("x-amz-server-side-encryption: aws:kms"));
    assert!(script.contains("x-amz-server-side-encryption-aws-kms-key-id: $STATE_STORE_KMS_KEY"));
}

/// The `apiServer` section of the init template's ClusterConfiguration.
fn api_server_section(config: &NodeBootstrap) -> String {
    let init = file_content(config, paths::KUBEADM_INIT_TEMPLATE);
    let start = init.find("\napiServer:\n").expect("an apiServer section") + 1;
    let end = start
        + init[start..]
            .find("\nnetworking:")
            .expect("networking follows");
    init[start..end].to_string()
}

/// The flags and volumes of the API server in both forms kubeadm takes
/// (v1beta3: extraArgs a map; v1beta4: a list of {name, value}), as exact
/// snapshots and parsed.
#[test]
fn the_api_server_gets_encryption_and_audit_flags_in_both_kubeadm_api_versions() {
    let expected = [
        (
            "encryption-provider-config",
            "/etc/kubernetes/encryption/config.yaml",
        ),
        ("encryption-provider-config-automatic-reload", "true"),
        ("audit-policy-file", "/etc/kubernetes/audit/policy.yaml"),
        ("audit-log-path", "/var/log/kubernetes/audit/audit.log"),
        ("audit-log-maxage", "30"),
        ("audit-log-maxbackup", "10"),
        ("audit-log-maxsize", "100"),
    ];
    for version in ["1.30.14", "1.34.2"] {
        let config = NodeBootstrap {
            kubernetes_version: version.parse().expect("version"),
            ..example(InstanceGroupRole::ControlPlane, OsFamily::Debian)
        };
        insta::assert_snapshot!(format!("api_server_{version}"), api_server_section(&config));
        let init = documents(&file_content(&config, paths::KUBEADM_INIT_TEMPLATE));
        let api_server = at(kind(&init, "ClusterConfiguration"), &["apiServer"]);
        let arguments: Vec<(String, String)> = match at(api_server, &["extraArgs"]) {
            Value::Mapping(map) => {
                assert_eq!(version, "1.30.14", "v1beta3 only takes a map");
                map.iter()
                    .map(|(name, value)| {
                        (
                            name.as_str().expect("name").to_string(),
                            value.as_str().expect("a string value").to_string(),
                        )
                    })
                    .collect()
            }
            Value::Sequence(list) => {
                assert_eq!(version, "1.34.2", "v1beta4 only takes a list");
                list.iter()
                    .map(|argument| {
                        (
                            at(argument, &["name"]).as_str().expect("name").to_string(),
                            at(argument, &["value"])
                                .as_str()
                                .expect("value")
                                .to_string(),
                        )
                    })
                    .collect()
            }
            other => panic!("extraArgs is {other:?}"),
        };
        assert_eq!(
            arguments,
            expected
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect::<Vec<_>>(),
            "{version}"
        );
        let volumes: Vec<(&str, &str, bool)> = at(api_server, &["extraVolumes"])
            .as_sequence()
            .expect("a list in both versions")
            .iter()
            .map(|volume| {
                assert_eq!(at(volume, &["hostPath"]), at(volume, &["mountPath"]));
                assert_eq!(
                    at(volume, &["pathType"]).as_str(),
                    Some("DirectoryOrCreate")
                );
                (
                    at(volume, &["name"]).as_str().expect("name"),
                    at(volume, &["hostPath"]).as_str().expect("path"),
                    at(volume, &["readOnly"]).as_bool().expect("a boolean"),
                )
            })
            .collect();
        assert_eq!(
            volumes,
            [
                ("skiff-encryption", "/etc/kubernetes/encryption", true),
                ("skiff-audit-policy", "/etc/kubernetes/audit", true),
                ("skiff-audit-log", "/var/log/kubernetes/audit", false),
            ],
            "{version}: folders, not files: a renamed file stays unseen through a file mount"
        );
    }
}

#[test]
fn audit_settings_reach_the_control_plane_only() {
    let control_plane = example(InstanceGroupRole::ControlPlane, OsFamily::Debian);
    assert_eq!(
        file_content(&control_plane, paths::AUDIT_POLICY),
        DEFAULT_AUDIT_POLICY
    );
    assert!(skiff_api::check_audit_policy(DEFAULT_AUDIT_POLICY).is_ok());
    let custom_policy = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Metadata\n";
    let custom = NodeBootstrap {
        audit: AuditLog {
            policy: Some(custom_policy.to_string()),
            max_age_days: 7,
            max_backups: 3,
            max_size_megabytes: 50,
        },
        ..control_plane.clone()
    };
    assert_eq!(file_content(&custom, paths::AUDIT_POLICY), custom_policy);
    let section = api_server_section(&custom);
    for flag in [
        "name: audit-log-maxage\n      value: \"7\"",
        "name: audit-log-maxbackup\n      value: \"3\"",
        "name: audit-log-maxsize\n      value: \"50\"",
    ] {
        assert!(section.contains(flag), "{flag} missing:\n{section}");
    }
    assert_ne!(
        render_user_data(&custom).expect("renders"),
        render_user_data(&control_plane).expect("renders"),
        "a change of the audit settings rolls the control plane"
    );
    let worker = example(InstanceGroupRole::Node, OsFamily::Debian);
    let custom_worker = NodeBootstrap {
        audit: custom.audit.clone(),
        ..worker.clone()
    };
    assert_eq!(
        render_user_data(&custom_worker).expect("renders"),
        render_user_data(&worker).expect("renders"),
        "workers run no API server"
    );
    assert!(!render_user_data(&worker)
        .expect("renders")
        .contains("audit"));

    // A policy that could log Secret bodies is refused at this boundary too.
    let leaky = NodeBootstrap {
        audit: AuditLog {
            policy: Some(
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Request\n"
                    .to_string(),
            ),
            ..AuditLog::default()
        },
        ..control_plane
    };
    let error = render_user_data(&leaky).expect_err("refused");
    assert!(
        error.to_string().contains("audit.policy") && error.to_string().contains("rules[0]"),
        "{error}"
    );
}

/// With the AWS cloud-controller-manager (issue 18): in both kubeadm API
/// versions, init and join, the kubelet gets `--cloud-provider=external`
/// and the node registers with the name the node reads from instance
/// metadata (a placeholder here); without it, neither.
#[test]
fn the_external_cloud_provider_names_the_node_and_flags_the_kubelet_in_both_kubeadm_apis() {
    for (version, api) in [("1.30.14", "v1beta3"), ("1.34.2", "v1beta4")] {
        for role in [InstanceGroupRole::ControlPlane, InstanceGroupRole::Node] {
            let config = NodeBootstrap {
                kubernetes_version: version.parse().expect("version"),
                external_cloud_provider: true,
                ..example(role, OsFamily::Debian)
            };
            let mut templates = vec![(paths::KUBEADM_JOIN_TEMPLATE, "JoinConfiguration")];
            if role == InstanceGroupRole::ControlPlane {
                templates.push((paths::KUBEADM_INIT_TEMPLATE, "InitConfiguration"));
            }
            for (path, document_kind) in templates {
                let documents = documents(&file_content(&config, path));
                let document = kind(&documents, document_kind);
                assert_eq!(
                    at(document, &["apiVersion"]).as_str(),
                    Some(format!("kubeadm.k8s.io/{api}").as_str())
                );
                let registration = at(document, &["nodeRegistration"]);
                assert_eq!(
                    at(registration, &["name"]).as_str(),
                    Some("@SKIFF_NODE_NAME@"),
                    "{version} {role:?} {document_kind}"
                );
                let arguments = at(registration, &["kubeletExtraArgs"]);
                let cloud_provider = if api == "v1beta3" {
                    at(arguments, &["cloud-provider"])
                        .as_str()
                        .map(str::to_string)
                } else {
                    arguments
                        .as_sequence()
                        .expect("v1beta4: a list")
                        .iter()
                        .find(|argument| {
                            argument.get("name").and_then(Value::as_str) == Some("cloud-provider")
                        })
                        .and_then(|argument| argument.get("value").and_then(Value::as_str))
                        .map(str::to_string)
                };
                assert_eq!(
                    cloud_provider.as_deref(),
                    Some("external"),
                    "{version} {role:?} {document_kind}"
                );
            }
            let script = bootstrap_script(&config).expect("renders").expect("script");
            assert!(script.contains("NODE_NAME=$(metadata local-hostname)"));
            assert!(script.contains("text=${text//@SKIFF_NODE_NAME@/$NODE_NAME}"));

            let without = NodeBootstrap {
                external_cloud_provider: false,
                ..config.clone()
            };
            let join = file_content(&without, paths::KUBEADM_JOIN_TEMPLATE);
            assert!(!join.contains("cloud-provider"), "{join}");
            assert!(!join.contains("@SKIFF_NODE_NAME@"), "{join}");
            let script = bootstrap_script(&without)
                .expect("renders")
                .expect("script");
            assert!(!script.contains("local-hostname"));
        }
    }
}
