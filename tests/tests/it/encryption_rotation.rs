//! Acceptance test of `rotate encryption-key`: the real `skiff` binary
//! rotates the key Secrets are encrypted with at rest, against a cluster
//! applied on the local AWS endpoint (its control-plane instances are
//! moto's) and the stand-in Kubernetes API server, which models encryption
//! at rest: it re-reads its EncryptionConfiguration file on every request
//! and fails to read a Secret stored under a key the file no longer has,
//! as an API server does.
//!
//! A thread plays the control-plane nodes: it copies the configuration
//! from the state store to the stand-in's file, asks the stand-in which
//! configuration it runs, and writes each control-plane instance's report
//! (`<cluster>/etcd/encryption/<instance-id>`) as the contract says. That
//! the real node does this is proven by the node sandbox test of its
//! `sync-encryption-config` command; here it only stands in for it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use skiff_test_support::kubernetes_api::{secret, FakeApiServer};
use skiff_tests::SkiffOutput;

use crate::common;
use common::cluster::ClusterFixture;

/// The store object of the configuration, relative to the cluster.
const CONFIG: &str = "secrets/encryption-config.yaml";
/// The rotation's progress object.
const PROGRESS: &str = "secrets/encryption-rotation";
/// The key the cluster starts with (made long ago: no --force needed).
const OLD_KEY: &str = "key-20250101T000000Z";
/// Its material.
const OLD_SECRET: &str = "b2xkLWtleS0zMi1ieXRlcy1vZi1yYW5kb21uZXNzISE=";

/// The configuration as skiff's keystore writes it: one secretbox key, then identity.
fn initial_config() -> String {
    format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources:\n  - secrets\n  providers:\n  - secretbox:\n      keys:\n      - name: {OLD_KEY}\n        secret: {OLD_SECRET}\n  - identity: {{}}\n"
    )
}

/// The control-plane nodes' side, as a task of the test's runtime.
struct Nodes {
    paused: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Nodes {
    /// Starts syncing: every 100 ms, a new configuration in the store is
    /// written to `file`, the stand-in is asked what it loaded, and a report
    /// per instance says so.
    fn start(
        s3: aws_sdk_s3::Client,
        bucket: String,
        config_key: String,
        report_prefix: String,
        instances: Vec<String>,
        file: PathBuf,
        api: FakeApiServer,
    ) -> Nodes {
        let paused = Arc::new(AtomicBool::new(false));
        let task_paused = Arc::clone(&paused);
        let task = tokio::spawn(async move {
            let mut reported: Option<Vec<u8>> = None;
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if task_paused.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(object) = s3
                    .get_object()
                    .bucket(&bucket)
                    .key(&config_key)
                    .send()
                    .await
                else {
                    continue;
                };
                let Ok(body) = object.body.collect().await else {
                    continue;
                };
                let bytes = body.into_bytes().to_vec();
                if reported.as_ref() == Some(&bytes) {
                    continue;
                }
                // Replaced by rename, as the node does.
                let partial = file.with_extension("partial");
                std::fs::write(&partial, &bytes).expect("write the node's copy");
                std::fs::rename(&partial, &file).expect("rename the node's copy");
                let loaded = api.loaded_encryption_config().as_deref() == Some(bytes.as_slice());
                let sha256 = hex(&Sha256::digest(&bytes));
                let checked = time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .expect("a time");
                for instance in &instances {
                    let report = json!({ "instance": instance, "sha256": sha256, "loaded": loaded, "checked": checked });
                    s3.put_object()
                        .bucket(&bucket)
                        .key(format!("{report_prefix}{instance}"))
                        .body(report.to_string().into_bytes().into())
                        .send()
                        .await
                        .expect("write a report");
                }
                if loaded {
                    reported = Some(bytes);
                }
            }
        });
        Nodes { paused, task }
    }

    fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The secretbox keys of a stored configuration: (name, secret), in order;
/// and whether identity is the last provider.
fn keys_of(yaml: &[u8]) -> (Vec<(String, String)>, bool) {
    let document: serde_norway::Value = serde_norway::from_slice(yaml).expect("YAML");
    let providers = document["resources"][0]["providers"]
        .as_sequence()
        .expect("providers")
        .clone();
    let keys = providers[0]["secretbox"]["keys"]
        .as_sequence()
        .expect("secretbox keys")
        .iter()
        .map(|key| {
            (
                key["name"].as_str().expect("name").to_string(),
                key["secret"].as_str().expect("secret").to_string(),
            )
        })
        .collect();
    let identity_last = providers.len() == 2 && providers[1].get("identity").is_some();
    (keys, identity_last)
}

fn rotate(fixture: &ClusterFixture, api: &FakeApiServer, extra: &[&str]) -> SkiffOutput {
    let mut args = vec!["rotate", "encryption-key", &fixture.cluster];
    args.extend_from_slice(extra);
    fixture
        .command(args)
        .env("SKIFF_KUBERNETES_API", api.url())
        .run()
}

/// No output may show key material.
#[track_caller]
fn assert_no_key_material(output: &SkiffOutput, secrets: &[&str]) {
    for secret in secrets {
        assert!(
            !output.stdout.contains(secret) && !output.stderr.contains(secret),
            "key material in the output:\n{output}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_rewrites_every_secret_before_removing_the_old_key_and_resumes_when_interrupted() {
    let fixture = ClusterFixture::new("rotate.example.com").await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&[
        "--zones",
        "us-east-1a,us-east-1b,us-east-1c",
        "--control-plane-count",
        "3",
        "--node-count",
        "1",
    ]);
    fixture.apply();
    let mut instances = Vec::new();
    for zone in ["us-east-1a", "us-east-1b", "us-east-1c"] {
        instances.extend(
            fixture
                .group_instances(&format!("control-plane-{zone}"))
                .await,
        );
    }
    assert_eq!(
        instances.len(),
        3,
        "three control-plane instances: {instances:?}"
    );
    fixture.aws.put_object(
        &fixture.bucket,
        &fixture.key(CONFIG),
        initial_config().as_bytes(),
    );

    // The API server: two Secrets from before encryption was enabled (plain
    // text), then the cluster's configuration and Secrets under its key.
    let api = FakeApiServer::start().await;
    api.add_secret(secret(
        "kube-system",
        "bootstrap-token-abcdef",
        &[("token-secret", "0123456789abcdef")],
    ));
    api.add_secret(secret("default", "legacy", &[("password", "plain")]));
    let file = fixture
        .home
        .write("control-plane/encryption/config.yaml", initial_config());
    api.encrypt_with(&file);
    for (namespace, name) in [
        ("app", "db"),
        ("app", "token"),
        ("app", "tls"),
        ("monitoring", "grafana"),
        ("kube-system", "sa-token"),
    ] {
        api.add_secret(secret(namespace, name, &[("value", name)]));
    }
    let before = api.secret_keys();
    assert_eq!(before["default/legacy"], "identity");
    assert_eq!(before["app/db"], OLD_KEY);

    let nodes = Nodes::start(
        fixture.aws.s3_client().await,
        fixture.bucket.clone(),
        fixture.key(CONFIG),
        fixture.key("etcd/encryption/"),
        instances.clone(),
        file.clone(),
        api.clone(),
    );

    // The preview changes nothing.
    let preview = rotate(&fixture, &api, &[]);
    preview.assert_success();
    preview.assert_stdout_contains(&format!("keys {OLD_KEY}"));
    preview.assert_stdout_contains("1. added");
    preview.assert_stdout_contains("4. retired");
    assert_eq!(
        fixture.get_object(CONFIG).as_deref(),
        Some(initial_config().as_bytes())
    );
    assert_eq!(fixture.get_object(PROGRESS), None);

    // 1. The nodes do not report: the new key is added, then the wait times
    //    out naming every instance; the phase stays `started`.
    nodes.pause(true);
    let stalled = rotate(&fixture, &api, &["--yes", "--timeout", "3s"]);
    stalled.assert_exit(1);
    for instance in &instances {
        stalled.assert_stderr_contains(instance);
    }
    stalled.assert_stderr_contains("run the same command again");
    let progress: Value =
        serde_json::from_slice(&fixture.get_object(PROGRESS).expect("progress recorded"))
            .expect("JSON");
    assert_eq!(progress["phase"], "started", "{progress:#}");
    let new_key = progress["newKey"].as_str().expect("a new key").to_string();
    assert_ne!(new_key, OLD_KEY);
    let (added, identity_last) = keys_of(&fixture.get_object(CONFIG).expect("config"));
    assert!(identity_last);
    assert_eq!(
        added
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>(),
        [OLD_KEY, new_key.as_str()]
    );
    let new_secret = added[1].1.clone();
    assert_no_key_material(&stalled, &[OLD_SECRET, &new_secret]);

    // Ctrl-C while it waits: it stops, says the phase is recorded, and
    // releases the cluster lock (the next run need not wait for its lease).
    let waiting = fixture
        .command([
            "rotate",
            "encryption-key",
            &fixture.cluster,
            "--yes",
            "--timeout",
            "5m",
        ])
        .env("SKIFF_KUBERNETES_API", api.url())
        .spawn();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        fixture.get_object("lock.json").is_some(),
        "the rotation holds the lock while it waits"
    );
    waiting.interrupt();
    let interrupted = waiting.wait();
    interrupted.assert_exit(1);
    interrupted.assert_stderr_contains("stopped on request");
    interrupted.assert_stderr_contains("last phase completed, started, is recorded");
    assert_eq!(
        fixture.get_object("lock.json"),
        None,
        "the lock is released"
    );
    assert!(
        !interrupted.stderr.contains("Generated the new key"),
        "{interrupted}"
    );
    assert_no_key_material(&interrupted, &[OLD_SECRET, &new_secret]);

    // A preview now shows the rotation under way.
    let under_way = rotate(&fixture, &api, &[]);
    under_way.assert_success();
    under_way.assert_stdout_contains(&format!("A rotation to key {new_key} is under way"));
    under_way.assert_stdout_contains("last phase completed: started");

    // 2. The nodes report again; one Secret's update fails (500, every
    //    attempt): the rerun continues, promotes, and stops in the rewrite.
    nodes.pause(false);
    // skiff tries an update three times when the server fails on its side.
    api.fail_next("PUT", "/api/v1/namespaces/app/secrets/tls", 500, 3);
    let failed = rotate(&fixture, &api, &["--yes", "--timeout", "60s"]);
    failed.assert_exit(1);
    failed.assert_stderr_contains(&format!("Continuing the rotation to key {new_key}"));
    failed.assert_stderr_contains("Secret app/tls");
    failed.assert_stderr_contains("run the same command again");
    assert!(!failed.stderr.contains("Generated the new key"), "{failed}");
    let progress: Value =
        serde_json::from_slice(&fixture.get_object(PROGRESS).expect("progress recorded"))
            .expect("JSON");
    assert_eq!(progress["phase"], "promoted", "{progress:#}");
    let (promoted, _) = keys_of(&fixture.get_object(CONFIG).expect("config"));
    assert_eq!(
        promoted[0],
        (new_key.clone(), new_secret.clone()),
        "the same new key, promoted"
    );
    assert_eq!(promoted[1].0, OLD_KEY);
    assert_no_key_material(&failed, &[OLD_SECRET, &new_secret]);

    // 3. The rerun completes; a Secret written by someone else meanwhile
    //    is a conflict, counted, not a failure.
    api.write_before_next_put("monitoring", "grafana");
    let done = rotate(&fixture, &api, &["--yes", "--timeout", "60s"]);
    done.assert_success();
    done.assert_stdout_contains(&format!(
        "Rotated the encryption key of cluster {} to {new_key}",
        fixture.cluster
    ));
    done.assert_stdout_contains("phases run now: rewritten, retired");
    done.assert_stdout_contains("1 written by others");
    assert!(!done.stderr.contains("Generated the new key"), "{done}");
    assert_no_key_material(&done, &[OLD_SECRET, &new_secret]);
    assert_eq!(
        fixture.get_object(PROGRESS),
        None,
        "the progress object is removed"
    );
    let (retired, identity_last) = keys_of(&fixture.get_object(CONFIG).expect("config"));
    assert_eq!(retired, [(new_key.clone(), new_secret.clone())]);
    assert!(identity_last, "identity stays last");

    // What the API server saw: each configuration in order, and every
    // Secret under the new key before the configuration without the old one.
    let observations = api.encryption_observations();
    let sequence: Vec<Vec<String>> = observations
        .iter()
        .map(|observation| observation.keys.clone())
        .collect();
    let names = |keys: &[&str]| keys.iter().map(|key| key.to_string()).collect::<Vec<_>>();
    assert_eq!(
        sequence,
        [
            names(&[OLD_KEY, "identity"]),
            names(&[OLD_KEY, &new_key, "identity"]),
            names(&[&new_key, OLD_KEY, "identity"]),
            names(&[&new_key, "identity"]),
        ]
    );
    let last = observations.last().expect("observations");
    assert_eq!(last.secrets.len(), 7);
    for (secret, key) in &last.secrets {
        assert_eq!(
            key, &new_key,
            "{secret} was not rewritten before the old key was removed"
        );
    }
    assert_eq!(
        api.decryption_failures(),
        Vec::<String>::new(),
        "a Secret could not be read"
    );
    assert!(api.secret_keys().values().all(|key| key == &new_key));
    assert_eq!(api.unexpected(), Vec::<String>::new());
    // The Secret someone else wrote keeps their change.
    let grafana = api.stored_secret("monitoring", "grafana").expect("grafana");
    assert_eq!(
        grafana["metadata"]["labels"]["written-by"],
        "another-client"
    );

    // 4. Run again right after: no rotation under way and a key made
    //    minutes ago: refused without --force, nothing changed.
    let again = rotate(&fixture, &api, &["--yes", "--timeout", "60s"]);
    again.assert_exit(1);
    again.assert_stderr_contains("--force");
    let (unchanged, _) = keys_of(&fixture.get_object(CONFIG).expect("config"));
    assert_eq!(unchanged, [(new_key.clone(), new_secret.clone())]);
    assert_eq!(fixture.get_object(PROGRESS), None);
    drop(nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_without_an_encryption_configuration_is_refused_with_the_fix() {
    let fixture = ClusterFixture::new("no-encryption.example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a"]);
    let before = fixture.aws.list_keys(&fixture.bucket, "");
    let api = FakeApiServer::start().await;
    for extra in [&[][..], &["--yes"][..]] {
        let refused = rotate(&fixture, &api, extra);
        refused.assert_exit(1);
        refused.assert_stderr_contains("has no encryption configuration in the state store");
        refused.assert_stderr_contains(&format!("skiff update cluster {} --yes", fixture.cluster));
    }
    assert_eq!(
        fixture.aws.list_keys(&fixture.bucket, ""),
        before,
        "nothing written"
    );
    assert!(api.requests().is_empty(), "the API is not asked");
}
