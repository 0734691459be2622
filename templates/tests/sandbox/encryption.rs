//! Secrets encrypted in etcd and the API audit log on a control-plane node:
//! the boot places the state store's encryption configuration and the audit
//! policy before kubeadm starts the API server, whose flags come from the
//! ClusterConfiguration (the kubeadm stand-in writes them into the
//! kube-apiserver manifest, from `--config` on init and from the stored
//! copy on a join); `sync-encryption-config` installs a changed
//! configuration and reports what the local API server runs.

use sha2::{Digest, Sha256};
use skiff_api::{Cni, InstanceGroupRole, OsFamily};
use skiff_templates::{paths, AuditLog, NodeBootstrap, DEFAULT_AUDIT_POLICY};
use skiff_test_support::kubernetes_api::FakeApiServer;
use skiff_test_support::sandbox::{FakeCloud, Image, NodeSandbox};

use super::{assert_booted, assert_no_secrets};
use crate::support::{start_cloud, Sandbox};

const API_SERVER_MANIFEST: &str = "/etc/kubernetes/manifests/kube-apiserver.yaml";
const CONFIG_KEY: &str = "/registry/configmaps/kube-system/kubeadm-config";

fn control_plane(cloud: &FakeCloud) -> NodeBootstrap {
    NodeBootstrap {
        audit: AuditLog {
            max_age_days: 7,
            ..AuditLog::default()
        },
        ..cloud.bootstrap(
            InstanceGroupRole::ControlPlane,
            OsFamily::Debian,
            Cni::Cilium,
        )
    }
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The kube-apiserver flags skiff sets, as the stand-in lists them.
fn assert_api_server_flags(node: &NodeSandbox) {
    let manifest = node.read(API_SERVER_MANIFEST);
    for flag in [
        "- --encryption-provider-config=/etc/kubernetes/encryption/config.yaml",
        "- --encryption-provider-config-automatic-reload=true",
        "- --audit-policy-file=/etc/kubernetes/audit/policy.yaml",
        "- --audit-log-path=/var/log/kubernetes/audit/audit.log",
        "- --audit-log-maxage=7",
        "- --audit-log-maxbackup=10",
        "- --audit-log-maxsize=100",
        "# hostPath volume /etc/kubernetes/encryption",
        "# hostPath volume /etc/kubernetes/audit",
        "# hostPath volume /var/log/kubernetes/audit",
    ] {
        assert!(
            manifest.contains(flag),
            "{}: `{flag}` missing from the kube-apiserver manifest:\n{manifest}",
            node.instance_id
        );
    }
}

#[test]
fn the_api_server_runs_the_stored_encryption_config_and_the_audit_policy_even_after_a_join() {
    let cloud = start_cloud();
    let config = control_plane(&cloud);
    let first = cloud.node("i-0e10000000000000a", &config, Image::Ubuntu);
    let boot = first.boot();
    assert_booted(&first, &boot);
    assert_no_secrets(&cloud, &first, &boot);

    // The stored configuration, byte for byte, root's only, in place
    // before kubeadm init started the API server.
    assert_eq!(
        first.read(paths::ENCRYPTION_CONFIG),
        cloud.encryption_config()
    );
    assert_eq!(first.mode(paths::ENCRYPTION_CONFIG), 0o600);
    let commands = first.commands();
    let fetched = commands
        .iter()
        .position(|line| {
            line.starts_with("curl GET") && line.ends_with("/secrets/encryption-config.yaml")
        })
        .expect("the configuration is read from the store");
    let init = commands
        .iter()
        .position(|line| line.starts_with("kubeadm init"))
        .expect("kubeadm init ran");
    assert!(fetched < init, "fetched before kubeadm init");
    assert_eq!(first.read(paths::AUDIT_POLICY), DEFAULT_AUDIT_POLICY);
    assert!(first.exists(paths::AUDIT_LOG_DIRECTORY));
    assert_api_server_flags(&first);
    // The unit that keeps the configuration in sync runs every minute.
    assert!(
        first
            .read(paths::SYNC_ENCRYPTION_TIMER)
            .contains("OnUnitActiveSec=1min"),
        "{}",
        first.read(paths::SYNC_ENCRYPTION_TIMER)
    );
    assert!(first
        .read(paths::SYNC_ENCRYPTION_SERVICE)
        .contains(&format!(
            "ExecStart={} sync-encryption-config",
            paths::BOOTSTRAP_SCRIPT
        )));
    assert!(
        commands
            .iter()
            .any(|line| line.starts_with("systemctl enable --now")
                && line.contains("skiff-sync-encryption-config.timer")),
        "{commands:#?}"
    );

    // A cluster initialized before skiff set these flags: its stored
    // ClusterConfiguration has none. A joining node deploys the stored copy
    // (kubeadm), so it first makes the stored copy its own.
    cloud.store_cluster_configuration("1.34.2");
    assert!(!cloud
        .etcd_value(CONFIG_KEY)
        .contains("encryption-provider-config"));
    let second = cloud.node("i-0e10000000000000b", &config, Image::Ubuntu);
    let boot = second.boot();
    assert_booted(&second, &boot);
    assert_no_secrets(&cloud, &second, &boot);
    assert!(!second.commands_starting("kubeadm join").is_empty());
    assert_eq!(
        second.read(paths::ENCRYPTION_CONFIG),
        cloud.encryption_config()
    );
    assert_api_server_flags(&second);
    let stored = cloud.etcd_value(CONFIG_KEY);
    assert!(
        stored.contains("encryption-provider-config")
            && stored.contains("kubernetesVersion: \"v1.34.2\""),
        "{stored}"
    );
    assert!(
        !stored.contains("@SKIFF_") && !stored.contains("bootstrapTokens"),
        "only the filled-in ClusterConfiguration is stored:\n{stored}"
    );
}

#[test]
fn sync_encryption_config_installs_a_changed_config_and_reports_whether_the_api_server_runs_it() {
    let cloud = start_cloud();
    let config = control_plane(&cloud);
    let node = cloud.node("i-0e20000000000000a", &config, Image::Ubuntu);
    assert_booted(&node, &node.boot());

    // A rotation changed the stored configuration; nothing answers on 6443.
    let rotated = cloud.rotate_encryption_config();
    let sha = sha256_hex(&rotated);
    let run = node.run(&["sync-encryption-config"]);
    assert!(run.success, "{}", run.everything());
    assert_no_secrets(&cloud, &node, &run);
    assert_eq!(node.read(paths::ENCRYPTION_CONFIG), rotated);
    assert_eq!(node.mode(paths::ENCRYPTION_CONFIG), 0o600);
    assert!(!node.exists(&format!("{}.part", paths::ENCRYPTION_CONFIG)));
    let report: serde_norway::Value =
        serde_norway::from_str(&cloud.encryption_report(&node.instance_id)).expect("JSON report");
    assert_eq!(report["instance"].as_str(), Some(node.instance_id.as_str()));
    assert_eq!(report["sha256"].as_str(), Some(sha.as_str()));
    assert_eq!(report["loaded"].as_bool(), Some(false), "{report:?}");
    assert!(report["checked"]
        .as_str()
        .is_some_and(|time| time.ends_with('Z')));

    // The local API server reports it reloaded exactly those bytes
    // (kube-apiserver's label: "k8s:enc:unstable:1:" and the hex SHA-256).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let api = runtime.block_on(FakeApiServer::start());
    node.serve_local_api_server(&api.url());
    let reloaded = |hash: &str| {
        format!(
            "# TYPE apiserver_encryption_config_controller_last_config_info gauge\n\
             apiserver_encryption_config_controller_last_config_info{{apiserver_id_hash=\"sha256:{sha}\",hash=\"{hash}\"}} 1\n\
             process_start_time_seconds 9.9e+09\n"
        )
    };
    api.set_metrics(&reloaded(&format!("k8s:enc:unstable:1:{sha}")));
    let loaded = |node: &NodeSandbox| {
        let run = node.run(&["sync-encryption-config"]);
        assert!(run.success, "{}", run.everything());
        assert_no_secrets(&cloud, node, &run);
        let report: serde_norway::Value =
            serde_norway::from_str(&cloud.encryption_report(&node.instance_id)).expect("JSON");
        assert_eq!(report["sha256"].as_str(), Some(sha.as_str()));
        report["loaded"].as_bool().expect("loaded is a boolean")
    };
    assert!(loaded(&node));
    // Another configuration's hash (the API server still runs the old one;
    // the apiserver_id_hash label, which holds this SHA, does not count).
    api.set_metrics(&reloaded(&format!("k8s:enc:unstable:1:{}", "0".repeat(64))));
    assert!(!loaded(&node));
    // No reload since the API server started: it runs the file only if the
    // file is older than the process.
    api.set_metrics("process_start_time_seconds 9.9e+09\n");
    assert!(loaded(&node));
    api.set_metrics("process_start_time_seconds 1.0e+09\n");
    assert!(!loaded(&node));
    assert!(!loaded(&node), "unchanged");
    assert!(!api.requests().is_empty());
    // The configuration was installed once, by the first run; the state is
    // logged when it changes (false, true, false, true, false), not every
    // minute.
    let log = node.read(paths::BOOTSTRAP_LOG);
    assert_eq!(
        log.matches("installed the encryption configuration")
            .count(),
        1,
        "{log}"
    );
    assert_eq!(log.matches("the API server runs it:").count(), 5, "{log}");

    // Before Kubernetes 1.34 kube-apiserver has no last_config_info series:
    // a successful automatic reload after the file was written counts, a
    // failed one since does not (the process started long before).
    let reload = |success: &str, failure: Option<&str>| {
        let mut text = format!(
            "apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds{{apiserver_id_hash=\"sha256:{sha}\",status=\"success\"}} {success}\n"
        );
        if let Some(failure) = failure {
            text.push_str(&format!(
                "apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds{{apiserver_id_hash=\"sha256:{sha}\",status=\"failure\"}} {failure}\n"
            ));
        }
        text.push_str("process_start_time_seconds 1.0e+09\n");
        text
    };
    api.set_metrics(&reload("9.9e+09", None));
    assert!(loaded(&node), "reloaded after the file was written");
    api.set_metrics(&reload("9.9e+09", Some("9.95e+09")));
    assert!(!loaded(&node), "a failed reload since the success");
    api.set_metrics(&reload("1.5e+09", None));
    assert!(!loaded(&node), "the last reload is older than the file");
}
