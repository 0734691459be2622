//! Acceptance tests of node bootstrap, the cluster PKI and `export
//! kubeconfig`, end to end: the real `skiff` binary applies an HA cluster
//! (three control-plane groups, an `s3://` state store) to the local AWS
//! endpoint, and everything is checked from what skiff really created.
//!
//! - A simulated boot: the user-data is taken from the launch templates in
//!   the endpoint and run in the node sandbox of skiff-test-support (stubs
//!   for the package managers, systemd, kubeadm, ...), whose instance metadata and
//!   state store are the SAME endpoint, so the nodes read the PKI and token
//!   skiff generated. Three control-plane boots at once elect one
//!   `kubeadm init`; a later one and a worker join, pinned to the stored CA.
//! - `export kubeconfig --admin`: kubectl reads it, openssl verifies the
//!   client certificate against the stored CA, mode 0600, other entries
//!   kept, `--admin=2h` lasts two hours.
//! - No secret (a stored private key, the bootstrap token) in user-data,
//!   previews, JSON plans or apply logs (at debug and trace level too).
//! - A Kubernetes version change rolls every group, and applies to a
//!   clean plan.
//!
//! The templates crate's own tests (templates/tests/sandbox_boot.rs) boot
//! user-data rendered from hand-made configurations against made-up PKI;
//! update_cluster.rs checks the AWS resources. What is new here is the
//! chain between them: the planner's rendering, the launch templates as
//! AWS holds them, and the key material `update cluster --yes` generated.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::cluster::ClusterFixture;
use common::{CLUSTER, S3_PREFIX, ZONES};
use skiff_templates::paths;
use skiff_test_support::cloud_config::CloudConfig;
use skiff_test_support::sandbox::{Boot, BootstrapPaths, FakeCloud, Image, NodeSandbox};
use skiff_tests::{LocalAws, SandboxHome, SkiffOutput};

/// What `create cluster` picks, and the patch release the version test moves to.
const DEFAULT_VERSION: &str = "1.34.2";
const NEXT_PATCH_VERSION: &str = "1.34.3";

// --- the applied cluster -------------------------------------------------------

/// One instance group as `get ig -o json` shows it.
#[derive(Clone, Debug)]
struct Group {
    name: String,
    control_plane: bool,
}

/// What only these tests need.
impl ClusterFixture {
    /// The endpoint, the `example.com` zone, the bucket and the cluster's
    /// spec (HA: a control-plane group in each of three zones), in a store
    /// at `s3://<bucket>/team`: nodes must honour the prefix.
    async fn created() -> ClusterFixture {
        let fixture = ClusterFixture::with_prefix(CLUSTER, S3_PREFIX).await;
        fixture.create_zone("example.com").await;
        fixture.create_cluster(&["--zones", ZONES, "--control-plane-count", "3"]);
        fixture
    }

    /// [`ClusterFixture::created`], then `update cluster --yes`.
    async fn applied() -> ClusterFixture {
        let fixture = ClusterFixture::created().await;
        fixture.apply();
        fixture
    }

    /// The same logging at debug level: skiff's filter is `SKIFF_LOG`
    /// (`RUST_LOG` is set too, for any library that reads it).
    fn skiff_debug<I, S>(&self, args: I) -> SkiffOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.command(args)
            .env("RUST_LOG", "debug")
            .env("SKIFF_LOG", "debug")
            .run()
    }

    /// An object of the cluster's folder in the store (`pki/ca.crt`).
    fn object(&self, relative: &str) -> Vec<u8> {
        self.get_object(relative)
            .unwrap_or_else(|| panic!("{} is not in the state store", self.key(relative)))
    }

    fn object_text(&self, relative: &str) -> String {
        String::from_utf8(self.object(relative)).expect("a text object")
    }

    /// The instance groups, from `get ig -o json`.
    fn groups(&self) -> Vec<Group> {
        let output = self.skiff(["get", "ig", "--name", CLUSTER, "-o", "json"]);
        output.assert_success();
        let list = output.stdout_json();
        list["items"]
            .as_array()
            .unwrap_or_else(|| panic!("an item list: {list:#}"))
            .iter()
            .map(|item| {
                assert_eq!(
                    item["spec"]["osFamily"], "debian",
                    "the sandbox boots these as Ubuntu: {item:#}"
                );
                Group {
                    name: item["metadata"]["name"]
                        .as_str()
                        .expect("a name")
                        .to_owned(),
                    control_plane: item["spec"]["role"] == "ControlPlane",
                }
            })
            .collect()
    }

    /// The ID of a group's launch template (`<group>.<cluster>`).
    async fn launch_template_id(&self, group: &str) -> String {
        self.describe_launch_template(group)
            .await
            .launch_template_id()
            .expect("an ID")
            .to_owned()
    }

    /// The user-data of versions of a group's launch template, decoded from
    /// base64, by version number: `versions` empty means every version.
    async fn user_data_versions(&self, group: &str, versions: &[&str]) -> BTreeMap<i64, String> {
        let id = self.launch_template_id(group).await;
        let mut request = self
            .clients
            .ec2
            .describe_launch_template_versions()
            .launch_template_id(&id);
        for version in versions {
            request = request.versions(*version);
        }
        let found = request
            .send()
            .await
            .expect("describe launch template versions");
        let decoded: BTreeMap<i64, String> = found
            .launch_template_versions()
            .iter()
            .map(|version| {
                let encoded = version
                    .launch_template_data()
                    .and_then(|data| data.user_data())
                    .unwrap_or_else(|| panic!("{group}: a version without user-data"));
                (
                    version.version_number().expect("a version number"),
                    // EC2 gets the document gzip-compressed (cloud-init
                    // decompresses it); the bytes must decode back to text.
                    skiff_templates::decode_user_data(encoded)
                        .expect("user-data is base64 of a gzip of the cloud-config"),
                )
            })
            .collect();
        assert!(!decoded.is_empty(), "{group}: no launch template versions");
        decoded
    }

    /// The user-data of the newest version of a group's launch template.
    /// The whole document of the group's latest template: EC2 holds the
    /// loader, the store the script it names.
    async fn whole_user_data(&self, group: &str) -> String {
        let held = self.user_data(group).await;
        match skiff_templates::stored_script_key(&held) {
            Some(key) => skiff_templates::with_stored_script(&held, &self.object_text(&key))
                .expect("the stored script fits its loader"),
            None => held,
        }
    }

    async fn user_data(&self, group: &str) -> String {
        let mut versions = self.user_data_versions(group, &["$Latest"]).await;
        versions
            .pop_last()
            .map(|(_, user_data)| user_data)
            .expect("the latest version")
    }
}

// --- secrets ----------------------------------------------------------------------

/// What must never leave the state store, each with a label for messages.
struct Secrets {
    token: String,
    needles: Vec<(String, String)>,
}

impl Secrets {
    /// Reads every private key under `pki/` and the bootstrap token.
    fn read(fixture: &ClusterFixture) -> Secrets {
        let folder = fixture.key("");
        let keys = fixture.aws.list_keys(&fixture.bucket, &folder);
        let mut needles = Vec::new();
        let mut private_keys = BTreeSet::new();
        for key in &keys {
            let relative = &key[folder.len()..];
            if !relative.starts_with("pki/") {
                continue;
            }
            let text = fixture.object_text(relative);
            if !text.contains("PRIVATE KEY-----") {
                continue;
            }
            private_keys.insert(relative.to_owned());
            let body: Vec<&str> = text
                .lines()
                .filter(|line| !line.starts_with("-----") && !line.is_empty())
                .collect();
            needles.push((format!("{relative} (whole body)"), body.concat()));
            for (number, line) in body.iter().enumerate() {
                if line.len() >= 32 {
                    needles.push((
                        format!("{relative} (line {})", number + 2),
                        (*line).to_owned(),
                    ));
                }
            }
        }
        assert_eq!(
            private_keys,
            [
                "pki/ca.key",
                "pki/etcd-ca.key",
                "pki/front-proxy-ca.key",
                "pki/sa.key"
            ]
            .into_iter()
            .map(str::to_owned)
            .collect::<BTreeSet<_>>(),
            "the private keys skiff stores (objects: {keys:?})"
        );
        let token = fixture
            .object_text("secrets/bootstrap-token")
            .trim()
            .to_owned();
        let (id, secret) = token
            .split_once('.')
            .unwrap_or_else(|| panic!("the stored token {token:?} has no dot"));
        assert_eq!((id.len(), secret.len()), (6, 16), "kubeadm's token shape");
        needles.push(("the bootstrap token".to_owned(), token.clone()));
        needles.push((
            "the bootstrap token's secret half".to_owned(),
            secret.to_owned(),
        ));
        // The key Secrets are encrypted with in etcd.
        let encryption = fixture.object_text("secrets/encryption-config.yaml");
        let keys: Vec<&str> = encryption
            .lines()
            .filter_map(|line| line.trim().strip_prefix("secret: "))
            .collect();
        assert_eq!(keys.len(), 1, "one secretbox key: {}", keys.len());
        assert_eq!(keys[0].len(), 44, "32 bytes in base64");
        needles.push(("the encryption key".to_owned(), keys[0].to_owned()));
        Secrets { token, needles }
    }

    /// Fails the test if `text` (named by `what`) holds a stored secret or
    /// any private key at all.
    #[track_caller]
    fn assert_absent(&self, what: &str, text: &str) {
        self.assert_not_stored(what, text);
        assert!(
            !text.contains("PRIVATE KEY-----"),
            "{what} contains a private key:\n{}",
            excerpt(text, "PRIVATE KEY-----")
        );
    }

    /// Fails the test if `text` holds one of the stored private keys or the token.
    #[track_caller]
    fn assert_not_stored(&self, what: &str, text: &str) {
        for (label, needle) in &self.needles {
            assert!(
                !text.contains(needle.as_str()),
                "{what} contains {label}:\n{}",
                excerpt(text, needle)
            );
        }
    }
}

/// A few lines around `needle` in `text`, for a readable failure.
fn excerpt(text: &str, needle: &str) -> String {
    let at = text.find(needle).unwrap_or(0);
    let start = text[..at].rfind('\n').map_or(0, |index| index + 1);
    let end = text[at..].find('\n').map_or(text.len(), |index| at + index);
    text[start..end].chars().take(400).collect()
}

/// User-data with every `write_files` entry decoded (as cloud-init would),
/// so a search also sees inside the `gz+b64` files.
fn user_data_with_files(user_data: &str) -> String {
    let mut everything = user_data.to_owned();
    for file in CloudConfig::parse(user_data).files {
        everything.push_str(&format!("\n--- {}\n", file.path));
        everything.push_str(&file.content);
    }
    everything
}

// --- tools ------------------------------------------------------------------------

/// Runs `program args` with `input` on stdin; panics unless it succeeds.
fn run_tool(program: &str, args: &[&str], input: &[u8]) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// kubeadm's discovery hash of a CA certificate, computed the way kubeadm's
/// documentation does: `sha256:` and the SHA-256 of its DER SubjectPublicKeyInfo.
fn discovery_hash(ca_certificate: &[u8]) -> String {
    let output = run_tool(
        "bash",
        &[
            "-c",
            "set -o pipefail; openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | sha256sum",
        ],
        ca_certificate,
    );
    let hex = output.split_whitespace().next().expect("a digest");
    assert_eq!(hex.len(), 64, "sha256sum printed {output:?}");
    format!("sha256:{hex}")
}

/// Seconds since the epoch of an `openssl x509 -enddate` value.
fn not_after(certificate: &[u8]) -> i64 {
    let line = run_tool("openssl", &["x509", "-noout", "-enddate"], certificate);
    let date = line
        .trim()
        .strip_prefix("notAfter=")
        .unwrap_or_else(|| panic!("openssl x509 -enddate printed {line:?}"));
    run_tool("date", &["-u", "-d", date, "+%s"], b"")
        .trim()
        .parse()
        .unwrap_or_else(|error| panic!("date of {date:?}: {error}"))
}

/// Prints a banner straight to the process's standard error: the test
/// harness captures `eprintln!` of passing tests, and a skipped check must
/// be seen.
fn warn_uncaptured(message: &str) {
    let rule = "!".repeat(78);
    let body: String = message
        .lines()
        .map(|line| format!("!!! {}\n", line.trim()))
        .collect();
    let _ = write!(std::io::stderr(), "\n{rule}\n{body}{rule}\n\n");
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

// --- 1. simulated boot -------------------------------------------------------------

/// The node sandbox, pointed at the endpoint holding skiff's state store.
/// `FakeCloud` starts a private moto with made-up PKI for the templates'
/// own tests; the sandbox's stubs send instance-metadata and state-store
/// requests to `moto.port`, so pointing that at the shared endpoint makes
/// the nodes read what skiff generated (the private server then just idles
/// until the test ends).
fn sandbox_on(aws: &LocalAws) -> FakeCloud {
    let mut cloud = FakeCloud::start(BootstrapPaths {
        script: paths::BOOTSTRAP_SCRIPT,
        log: paths::BOOTSTRAP_LOG,
    });
    cloud.moto.port = aws.port();
    cloud
}

/// A node launched with skiff's `user_data`. Besides the user-data the
/// sandbox needs only the cluster's Kubernetes version (its `apt-cache`
/// stub offers packages of that version).
fn launch(cloud: &FakeCloud, number: u32, user_data: String) -> NodeSandbox {
    cloud.launch(
        &instance_id(number),
        DEFAULT_VERSION,
        user_data,
        Image::Ubuntu,
    )
}

fn instance_id(number: u32) -> String {
    format!("i-0{number:016x}")
}

#[track_caller]
fn assert_booted(node: &NodeSandbox, boot: &Boot, secrets: &Secrets) {
    assert!(
        boot.success,
        "the bootstrap of {} failed:\n{}\n--- commands\n{}",
        node.instance_id,
        boot.everything(),
        node.commands().join("\n")
    );
    assert!(
        node.exists(paths::BOOTSTRAPPED_MARKER),
        "{}: no marker",
        node.instance_id
    );
    assert!(
        !node.exists("/var/lib/skiff/work"),
        "{}: the work directory (token, configurations) must be removed",
        node.instance_id
    );
    secrets.assert_absent(
        &format!("what {} printed or logged", node.instance_id),
        &boot.everything(),
    );
}

/// The kubeadm configuration a node ran `kubeadm` with (exactly one).
#[track_caller]
fn only_kubeadm_config(node: &NodeSandbox) -> String {
    let configs = node.kubeadm_configs();
    assert_eq!(configs.len(), 1, "{}: {configs:?}", node.instance_id);
    configs[0].1.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_boot_from_the_launch_templates_and_the_key_material_skiff_created() {
    let fixture = ClusterFixture::applied().await;
    let secrets = Secrets::read(&fixture);
    let ca_certificate = fixture.object("pki/ca.crt");
    let ca_hash = discovery_hash(&ca_certificate);

    let groups = fixture.groups();
    let control_plane: Vec<&Group> = groups.iter().filter(|group| group.control_plane).collect();
    let worker_group = groups
        .iter()
        .find(|group| !group.control_plane)
        .expect("a worker group");
    assert_eq!(control_plane.len(), 3, "{groups:?}");
    let mut user_data = BTreeMap::new();
    for group in &groups {
        let text = fixture.user_data(&group.name).await;
        // EC2 holds the loader; the script it names is in skiff's store,
        // and is the one the launch template was planned with.
        let key = skiff_templates::stored_script_key(&text)
            .unwrap_or_else(|| panic!("{}: no bootstrap loader in:\n{text}", group.name));
        let script = fixture.object_text(&key);
        let whole = skiff_templates::with_stored_script(&text, &script)
            .unwrap_or_else(|error| panic!("{}: {key}: {error}", group.name));
        assert!(whole.contains("# skiff node bootstrap"), "{}", group.name);
        user_data.insert(group.name.clone(), text);
    }

    let cloud = sandbox_on(&fixture.aws);
    let store_url = format!(
        "http://127.0.0.1:{}/{}/{S3_PREFIX}/{CLUSTER}/",
        fixture.aws.port(),
        fixture.bucket
    );

    // Three control-plane instances, one per group, boot at once, as the
    // instances their groups launched at the endpoint.
    let mut members: Vec<NodeSandbox> = Vec::new();
    for group in &control_plane {
        let instances = fixture.group_instances(&group.name).await;
        assert_eq!(instances.len(), 1, "{}: {instances:?}", group.name);
        members.push(cloud.launch(
            &instances[0],
            DEFAULT_VERSION,
            user_data[&group.name].clone(),
            Image::Ubuntu,
        ));
    }
    let running: Vec<_> = members.iter().map(NodeSandbox::spawn).collect();
    let boots: Vec<Boot> = running.into_iter().map(|boot| boot.wait()).collect();
    for (node, boot) in members.iter().zip(&boots) {
        assert_booted(node, boot, &secrets);
        // They read skiff's state store on the shared endpoint, under its prefix.
        assert!(
            node.commands()
                .contains(&format!("curl GET {store_url}pki/ca.key")),
            "{} did not read the CA key from {store_url}:\n{}",
            node.instance_id,
            node.commands().join("\n")
        );
    }

    let initializers: Vec<&NodeSandbox> = members
        .iter()
        .filter(|node| !node.commands_starting("kubeadm init").is_empty())
        .collect();
    assert_eq!(
        initializers.len(),
        1,
        "exactly one instance must run kubeadm init: {:?}",
        members
            .iter()
            .map(|node| (node.instance_id.clone(), node.commands_starting("kubeadm")))
            .collect::<Vec<_>>()
    );
    let initializer = initializers[0];
    assert!(
        initializer.commands_starting("kubeadm join").is_empty(),
        "the initializer does not also join: {:?}",
        initializer.commands_starting("kubeadm")
    );
    assert_eq!(
        fixture.object_text("etcd/init-lock").trim(),
        initializer.instance_id,
        "the init lock in skiff's store names the initializer"
    );
    let init = only_kubeadm_config(initializer);
    for expected in [
        "kind: InitConfiguration".to_owned(),
        format!("- token: \"{}\"", secrets.token),
        "ttl: 0s".to_owned(),
        format!("controlPlaneEndpoint: \"api.{CLUSTER}:443\""),
        format!("kubernetesVersion: \"v{DEFAULT_VERSION}\""),
    ] {
        assert!(
            init.contains(&expected),
            "`{expected}` missing from:\n{init}"
        );
    }
    // Every member holds skiff's CAs and service-account key, byte for byte.
    for node in &members {
        for (on_node, stored) in [
            ("/etc/kubernetes/pki/ca.crt", "pki/ca.crt"),
            ("/etc/kubernetes/pki/ca.key", "pki/ca.key"),
            ("/etc/kubernetes/pki/etcd/ca.key", "pki/etcd-ca.key"),
            (
                "/etc/kubernetes/pki/front-proxy-ca.key",
                "pki/front-proxy-ca.key",
            ),
            ("/etc/kubernetes/pki/sa.key", "pki/sa.key"),
            ("/etc/kubernetes/pki/sa.pub", "pki/sa.pub"),
            (
                "/etc/kubernetes/encryption/config.yaml",
                "secrets/encryption-config.yaml",
            ),
        ] {
            assert_eq!(
                node.read(on_node),
                fixture.object_text(stored),
                "{}: {on_node} is not the stored {stored}",
                node.instance_id
            );
        }
    }

    for node in &members {
        assert_eq!(
            node.mode("/etc/kubernetes/encryption/config.yaml"),
            0o600,
            "{}: the encryption configuration is root's only",
            node.instance_id
        );
    }

    // The other two joined the control plane with the stored token, pinned
    // to the stored CA.
    let control_plane_join = |node: &NodeSandbox| {
        assert!(node.commands_starting("kubeadm init").is_empty());
        assert_eq!(
            node.commands_starting("kubeadm join"),
            vec![format!(
                "kubeadm join --config {}/var/lib/skiff/work/kubeadm-join.yaml",
                node.root.display()
            )],
            "{}",
            node.instance_id
        );
        let join = only_kubeadm_config(node);
        for expected in [
            "kind: JoinConfiguration".to_owned(),
            format!("apiServerEndpoint: \"api.{CLUSTER}:443\""),
            format!("token: \"{}\"", secrets.token),
            format!("- \"{ca_hash}\""),
            "controlPlane: {}".to_owned(),
        ] {
            assert!(
                join.contains(&expected),
                "{}: `{expected}` missing from:\n{join}",
                node.instance_id
            );
        }
    };
    let joiners: Vec<&NodeSandbox> = members
        .iter()
        .filter(|node| node.instance_id != initializer.instance_id)
        .collect();
    assert_eq!(joiners.len(), 2);
    for joiner in joiners {
        control_plane_join(joiner);
    }

    // A fourth control-plane instance, launched later (a replacement), joins.
    let replacement = launch(&cloud, 4, user_data[&control_plane[0].name].clone());
    let boot = replacement.boot();
    assert_booted(&replacement, &boot, &secrets);
    control_plane_join(&replacement);
    assert_eq!(
        fixture.object_text("etcd/init-lock").trim(),
        initializer.instance_id,
        "the init lock never moves"
    );

    // A worker joins with the stored token and the stored CA's hash, and
    // reads nothing but those two objects.
    let worker = launch(&cloud, 5, user_data[&worker_group.name].clone());
    let boot = worker.boot();
    assert_booted(&worker, &boot, &secrets);
    assert_eq!(
        worker.commands_starting("kubeadm"),
        vec![format!(
            "kubeadm join --config {}/var/lib/skiff/work/kubeadm-join.yaml",
            worker.root.display()
        )]
    );
    let join = only_kubeadm_config(&worker);
    for expected in [
        format!("apiServerEndpoint: \"api.{CLUSTER}:443\""),
        format!("token: \"{}\"", secrets.token),
        format!("caCertHashes:\n      - \"{ca_hash}\""),
        format!("skiff.dev/instance-group={}", worker_group.name),
    ] {
        assert!(
            join.contains(&expected),
            "`{expected}` missing from:\n{join}"
        );
    }
    assert!(
        !join.contains("controlPlane"),
        "a worker is no control-plane member:\n{join}"
    );
    let store_reads: Vec<String> = worker
        .commands_starting(&format!("curl GET {store_url}"))
        .into_iter()
        .map(|line| line[format!("curl GET {store_url}").len()..].to_owned())
        .collect();
    let script = skiff_templates::stored_script_key(&user_data[&worker_group.name])
        .expect("the worker's loader");
    assert_eq!(
        store_reads,
        [script.as_str(), "secrets/bootstrap-token", "pki/ca.crt"],
        "a worker reads its script, the token and the CA certificate only"
    );
    assert!(!worker.exists("/etc/kubernetes/pki/ca.key"));

    // The backup unit of a control-plane node writes an etcd snapshot into
    // skiff's store; `skiff get backups` lists it and `skiff restore
    // cluster` previews restoring it, changing nothing.
    let backup = members[0].run(&["backup"]);
    assert!(backup.success, "{}", backup.everything());
    let keys = fixture.aws.list_keys(
        &fixture.bucket,
        &format!("{S3_PREFIX}/{CLUSTER}/etcd/backups/"),
    );
    assert_eq!(keys.len(), 1, "{keys:?}");
    let id = keys[0]
        .rsplit('/')
        .next()
        .and_then(|name| name.strip_suffix(".db"))
        .expect("a backup object")
        .to_owned();
    assert!(id.ends_with(&members[0].instance_id), "{id}");
    let listed = fixture.skiff(["get", "backups", CLUSTER]);
    listed.assert_success();
    listed.assert_stdout_contains(&id);
    listed.assert_stdout_contains(&members[0].instance_id);
    let preview = fixture.skiff(["restore", "cluster", CLUSTER, "--backup", &id]);
    preview.assert_success();
    preview.assert_stdout_contains(&id);
    preview.assert_stdout_contains("The first replacement restores the backup");
    assert!(fixture.get_object("etcd/restore-request").is_none());

    // Each control-plane node reported its certificates after its boot;
    // `validate cluster` shows the earliest expiry of the instances in
    // service (the replacement launched outside the groups is not one).
    let validation = fixture.skiff(["validate", "cluster", CLUSTER, "--cloudonly", "-o", "json"]);
    validation.assert_success();
    let report = validation.stdout_json();
    let reported: BTreeSet<String> = report["certificates"]
        .as_array()
        .unwrap_or_else(|| panic!("certificates: {report:#}"))
        .iter()
        .map(|node| {
            let days = node["daysLeft"].as_i64().expect("days left");
            assert!((360..=366).contains(&days), "{node:#}");
            node["instance"].as_str().expect("an instance").to_owned()
        })
        .collect();
    let expected: BTreeSet<String> = members
        .iter()
        .map(|node| node.instance_id.clone())
        .collect();
    assert_eq!(reported, expected, "{report:#}");
    assert!(fixture
        .get_object(&format!("etcd/certificates/{}", replacement.instance_id))
        .is_some());
}

// --- 1b. a one-node control plane rolled by `rolling-update --force` ------------------

/// The real etcdctl against a sandbox node's member, with the etcd
/// healthcheck client certificate kubeadm gave that node.
fn etcdctl_on(node: &NodeSandbox, arguments: &[&str]) -> String {
    let pki = node.root.join("etc/kubernetes/pki/etcd");
    let output = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints=https://{}:2379", node.private_ip))
        .arg(format!("--cacert={}", pki.join("ca.crt").display()))
        .arg(format!(
            "--cert={}",
            pki.join("healthcheck-client.crt").display()
        ))
        .arg(format!(
            "--key={}",
            pki.join("healthcheck-client.key").display()
        ))
        .args(["--dial-timeout=2s", "--command-timeout=5s"])
        .args(arguments)
        .output()
        .expect("etcdctl runs");
    assert!(
        output.status.success(),
        "etcdctl {arguments:?} at {}: {}",
        node.private_ip,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_node_control_plane_rolled_with_rolling_update_force_keeps_its_data() {
    // The sandbox tags its instances with this cluster name.
    let cluster = CLUSTER;
    let group = "control-plane-us-east-1a";
    let fixture = ClusterFixture::with_prefix(cluster, S3_PREFIX).await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a", "--node-count", "1"]);
    fixture.apply();
    let user_data = fixture.user_data(group).await;
    let cloud = sandbox_on(&fixture.aws);

    // The group's instance boots and initializes the cluster.
    let before = fixture.group_instances(group).await;
    assert_eq!(before.len(), 1, "one control-plane instance: {before:?}");
    let first = cloud.launch(
        &before[0],
        DEFAULT_VERSION,
        user_data.clone(),
        Image::Ubuntu,
    );
    let boot = first.boot();
    assert!(boot.success, "{}", boot.everything());
    assert_eq!(first.commands_starting("kubeadm init").len(), 1);
    // Objects written before the last periodic backup, and after it.
    for index in 0..10 {
        etcdctl_on(
            &first,
            &[
                "put",
                &format!("/registry/configmaps/default/early-{index}"),
                "v",
            ],
        );
    }
    let periodic = first.run(&["backup"]);
    assert!(periodic.success, "{}", periodic.everything());
    for index in 0..10 {
        etcdctl_on(
            &first,
            &[
                "put",
                &format!("/registry/configmaps/default/late-{index}"),
                "v",
            ],
        );
    }

    // skiff replaces the instance (nothing changed: --force).
    let roll = fixture.skiff([
        "rolling-update",
        "cluster",
        cluster,
        "--yes",
        "--force",
        "--cloudonly",
        "--instance-group-roles",
        "ControlPlane",
        "--validation-interval",
        "100ms",
        "--validation-timeout",
        "60s",
    ]);
    roll.assert_success();
    let after = fixture.group_instances(group).await;
    assert_eq!(after.len(), 1, "the group keeps its size: {after:?}");
    assert_ne!(after, before, "the instance was replaced");

    // What AWS does next, mirrored in the sandbox: the old instance is
    // shutting down (its leave unit about to run) while the group's
    // replacement boots from the same launch template.
    cloud.set_instance_state(&first.instance_id, "shutting-down");
    let second = cloud.launch(&after[0], DEFAULT_VERSION, user_data, Image::Ubuntu);
    let running = second.spawn();
    let waiting = "to write their final backup";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let log_of = |node: &NodeSandbox| {
        if node.exists(paths::BOOTSTRAP_LOG) {
            node.read(paths::BOOTSTRAP_LOG)
        } else {
            String::new()
        }
    };
    while !log_of(&second).contains(waiting) {
        assert!(
            std::time::Instant::now() < deadline,
            "the replacement never waited for the old member's final backup:\n{}",
            second.read(paths::BOOTSTRAP_LOG)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // The old node's OS shuts down: its leave unit, as the last member,
    // writes a final backup; then the instance is gone.
    first.set_lifecycle_state(Some("Terminated"));
    let leave = first.run(&["leave"]);
    assert!(leave.success, "{}", leave.everything());
    assert!(
        leave.log.contains("this is the last etcd member"),
        "{}",
        leave.log
    );
    first.power_off();
    cloud.terminate_instance(&first.instance_id);

    let boot = running.wait();
    assert!(
        boot.success,
        "{}\n--- commands\n{}",
        boot.everything(),
        second.commands().join("\n")
    );
    // Restored from the final backup, with kubeadm's restore procedure,
    // never an empty init; the same CA; every object back.
    let backups = fixture.aws.list_keys(
        &fixture.bucket,
        &format!("{S3_PREFIX}/{cluster}/etcd/backups/"),
    );
    assert_eq!(
        backups.len(),
        2,
        "the periodic and the final backup: {backups:?}"
    );
    let newest = backups.iter().max().expect("a backup");
    let newest_id = newest
        .rsplit('/')
        .next()
        .and_then(|name| name.strip_suffix(".db"))
        .expect("a backup ID");
    assert!(
        boot.log
            .contains(&format!("restored {cluster} from backup {newest_id}")),
        "{}",
        boot.log
    );
    let inits = second.commands_starting("kubeadm init");
    assert_eq!(inits.len(), 1, "{inits:?}");
    assert!(
        inits[0].ends_with("--ignore-preflight-errors=DirAvailable--var-lib-etcd"),
        "{inits:?}"
    );
    assert_eq!(
        second.read("/etc/kubernetes/pki/ca.crt"),
        first.read("/etc/kubernetes/pki/ca.crt"),
        "the same cluster CA"
    );
    let keys = etcdctl_on(
        &second,
        &[
            "get",
            "/registry/configmaps/default/",
            "--prefix",
            "--keys-only",
        ],
    );
    for index in 0..10 {
        for name in ["early", "late"] {
            assert!(
                keys.contains(&format!("/registry/configmaps/default/{name}-{index}")),
                "{name}-{index} lost:\n{keys}"
            );
        }
    }
}

// --- 2. export kubeconfig ----------------------------------------------------------

/// A kubeconfig an operator already has, for another cluster.
const EXISTING_KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: other.example.org
  cluster:
    server: https://other.example.org:6443
    insecure-skip-tls-verify: true
contexts:
- name: other
  context:
    cluster: other.example.org
    user: other-user
    namespace: payments
current-context: other
users:
- name: other-user
  user:
    token: not-a-real-token
preferences: {}
";

/// The entry named `name` of a kubeconfig list (`clusters`, `contexts`, `users`).
fn entry<'a>(
    kubeconfig: &'a serde_norway::Value,
    list: &str,
    name: &str,
) -> &'a serde_norway::Value {
    kubeconfig[list]
        .as_sequence()
        .and_then(|entries| {
            entries
                .iter()
                .find(|entry| entry["name"].as_str() == Some(name))
        })
        .unwrap_or_else(|| panic!("no {list} entry {name}: {kubeconfig:?}"))
}

fn names(kubeconfig: &serde_norway::Value, list: &str) -> BTreeSet<String> {
    kubeconfig[list]
        .as_sequence()
        .unwrap_or_else(|| panic!("no {list} list: {kubeconfig:?}"))
        .iter()
        .map(|entry| entry["name"].as_str().expect("a name").to_owned())
        .collect()
}

fn base64_field(value: &serde_norway::Value, field: &str) -> Vec<u8> {
    let text = value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {value:?}"));
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|error| panic!("{field} is not base64: {error}"))
}

fn read_kubeconfig(path: &Path) -> serde_norway::Value {
    let text = std::fs::read_to_string(path).expect("the kubeconfig");
    serde_norway::from_str(&text).unwrap_or_else(|error| panic!("not YAML ({error}):\n{text}"))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("the kubeconfig")
        .permissions()
        .mode()
        & 0o7777
}

/// `kubectl ARGS --kubeconfig PATH`, or `None` when kubectl is not installed.
fn kubectl(home: &SandboxHome, path: &Path, args: &[&str]) -> Option<String> {
    let output = match Command::new("kubectl")
        .args(args)
        .arg("--kubeconfig")
        .arg(path)
        .env("HOME", home.path())
        .env_remove("KUBECONFIG")
        .output()
    {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => panic!("cannot run kubectl: {error}"),
    };
    assert!(
        output.status.success(),
        "kubectl {args:?} refused {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8(output.stdout).expect("UTF-8"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_kubeconfig_writes_an_admin_certificate_signed_by_the_stored_ca() {
    let fixture = ClusterFixture::applied().await;
    let secrets = Secrets::read(&fixture);
    let ca_certificate = fixture.object("pki/ca.crt");
    let ca_file = fixture.home.write("ca.crt", &ca_certificate);
    let user = format!("skiff-admin@{CLUSTER}");
    let server = format!("https://api.{CLUSTER}:443");

    // An operator's kubeconfig, readable by others, with another cluster.
    let path = fixture.home.write("kube/config", EXISTING_KUBECONFIG);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let export = fixture.skiff([
        "export".as_ref(),
        "kubeconfig".as_ref(),
        CLUSTER.as_ref(),
        "--admin".as_ref(),
        "--kubeconfig".as_ref(),
        path.as_os_str(),
    ]);
    export.assert_success();
    secrets.assert_absent(
        "the output of export kubeconfig",
        &format!("{}{}", export.stdout, export.stderr),
    );
    assert_eq!(
        mode(&path),
        0o600,
        "the kubeconfig holds a private key: mode 0600"
    );

    let kubeconfig = read_kubeconfig(&path);
    assert_eq!(kubeconfig["current-context"].as_str(), Some(CLUSTER));
    assert_eq!(
        names(&kubeconfig, "clusters"),
        BTreeSet::from(["other.example.org".to_owned(), CLUSTER.to_owned()])
    );
    assert_eq!(
        names(&kubeconfig, "contexts"),
        BTreeSet::from(["other".to_owned(), CLUSTER.to_owned()])
    );
    assert_eq!(
        names(&kubeconfig, "users"),
        BTreeSet::from(["other-user".to_owned(), user.clone()])
    );
    // The other cluster's entries are kept as they were.
    let other_context = &entry(&kubeconfig, "contexts", "other")["context"];
    assert_eq!(other_context["namespace"].as_str(), Some("payments"));
    assert_eq!(other_context["user"].as_str(), Some("other-user"));
    assert_eq!(
        entry(&kubeconfig, "users", "other-user")["user"]["token"].as_str(),
        Some("not-a-real-token")
    );
    assert_eq!(
        entry(&kubeconfig, "clusters", "other.example.org")["cluster"]["server"].as_str(),
        Some("https://other.example.org:6443")
    );
    // This cluster's entries.
    let cluster = &entry(&kubeconfig, "clusters", CLUSTER)["cluster"];
    assert_eq!(cluster["server"].as_str(), Some(server.as_str()));
    assert_eq!(
        base64_field(cluster, "certificate-authority-data"),
        ca_certificate
    );
    let context = &entry(&kubeconfig, "contexts", CLUSTER)["context"];
    assert_eq!(context["cluster"].as_str(), Some(CLUSTER));
    assert_eq!(context["user"].as_str(), Some(user.as_str()));

    // The client certificate: signed by the stored CA, CN=skiff-admin in
    // system:masters, 18 hours by default; its key is a new one.
    let credentials = &entry(&kubeconfig, "users", &user)["user"];
    let certificate = base64_field(credentials, "client-certificate-data");
    let key = String::from_utf8(base64_field(credentials, "client-key-data")).expect("a PEM key");
    assert!(
        key.contains("PRIVATE KEY-----"),
        "client-key-data is a private key"
    );
    secrets.assert_not_stored("the exported client key (a new key)", &key);
    let certificate_file = fixture.home.write("client.crt", &certificate);
    let verified = run_tool(
        "openssl",
        &[
            "verify",
            "-CAfile",
            ca_file.to_str().expect("a UTF-8 path"),
            certificate_file.to_str().expect("a UTF-8 path"),
        ],
        b"",
    );
    assert!(
        verified.trim().ends_with(": OK"),
        "openssl verify: {verified}"
    );
    let subject = run_tool(
        "openssl",
        &["x509", "-noout", "-subject", "-nameopt", "RFC2253"],
        &certificate,
    );
    assert!(
        subject.contains("CN=skiff-admin") && subject.contains("O=system:masters"),
        "{subject}"
    );
    let lifetime = not_after(&certificate) - now();
    assert!(
        (18 * 3600 - 300..=18 * 3600 + 60).contains(&lifetime),
        "--admin lasts 18 hours; this one {lifetime} s"
    );

    // kubectl reads it (when installed).
    match kubectl(&fixture.home, &path, &["config", "view"]) {
        None => warn_uncaptured(
            "SKIPPED: `kubectl` is not installed, so the kubectl checks of the exported\n\
             kubeconfig (config view, --raw -o jsonpath server) did NOT run.\n\
             Everything else was checked. Install it (Debian: apt-get install kubernetes-client).",
        ),
        Some(view) => {
            assert!(
                view.contains(CLUSTER) && view.contains("other.example.org"),
                "{view}"
            );
            assert!(
                view.contains("client-certificate-data: DATA+OMITTED"),
                "kubectl sees the client certificate:\n{view}"
            );
            let jsonpath =
                format!("jsonpath={{.clusters[?(@.name==\"{CLUSTER}\")].cluster.server}}");
            let shown = kubectl(
                &fixture.home,
                &path,
                &["config", "view", "--raw", "-o", &jsonpath],
            )
            .expect("kubectl ran before");
            assert_eq!(shown.trim(), server);
            let current = kubectl(&fixture.home, &path, &["config", "current-context"])
                .expect("kubectl ran before");
            assert_eq!(current.trim(), CLUSTER);
        }
    }

    // --admin=2h: the same entries, now with a two-hour certificate.
    let export = fixture.skiff([
        "export".as_ref(),
        "kubeconfig".as_ref(),
        CLUSTER.as_ref(),
        "--admin=2h".as_ref(),
        "--kubeconfig".as_ref(),
        path.as_os_str(),
    ]);
    export.assert_success();
    assert_eq!(mode(&path), 0o600);
    let kubeconfig = read_kubeconfig(&path);
    assert_eq!(
        names(&kubeconfig, "users"),
        BTreeSet::from(["other-user".to_owned(), user.clone()])
    );
    let renewed = base64_field(
        &entry(&kubeconfig, "users", &user)["user"],
        "client-certificate-data",
    );
    assert_ne!(renewed, certificate, "a new certificate");
    let lifetime = not_after(&renewed) - now();
    assert!(
        (2 * 3600 - 300..=2 * 3600 + 60).contains(&lifetime),
        "--admin=2h must end about two hours from now; it ends in {lifetime} s"
    );

    // A new file is created owner-only too.
    let fresh = fixture.home.join("fresh/kubeconfig");
    fixture
        .skiff([
            "export".as_ref(),
            "kubeconfig".as_ref(),
            CLUSTER.as_ref(),
            "--admin".as_ref(),
            "--kubeconfig".as_ref(),
            fresh.as_os_str(),
        ])
        .assert_success();
    assert_eq!(mode(&fresh), 0o600, "a new kubeconfig is owner-only");
    assert_eq!(
        names(&read_kubeconfig(&fresh), "clusters"),
        BTreeSet::from([CLUSTER.to_owned()])
    );
}

// --- 3. no secrets leak -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_or_token_in_user_data_previews_plans_or_logs() {
    let fixture = ClusterFixture::created().await;
    let mut outputs: Vec<(String, SkiffOutput)> = Vec::new();

    // The first apply generates the key material (logging at debug level).
    let apply = fixture.skiff_debug(["update", "cluster", CLUSTER, "--yes"]);
    apply.assert_success();
    assert!(
        apply.stderr.contains("DEBUG"),
        "no debug log lines: {apply}"
    );
    outputs.push(("the first apply (debug log)".to_owned(), apply));
    let secrets = Secrets::read(&fixture);

    // A change whose plan carries every node group's user-data in full: a
    // label on each group changes its user-data.
    let groups = fixture.groups();
    for group in &groups {
        fixture.edit_group(&group.name, |document| {
            document["spec"]["nodeLabels"]["example.com/audited"] = "yes".into();
        });
    }
    let preview = fixture.skiff_debug(["update", "cluster", CLUSTER]);
    preview.assert_success();
    for group in &groups {
        assert!(
            preview
                .stdout
                .contains(&format!("launch-template/{}", group.name)),
            "the preview shows the change of {}:\n{preview}",
            group.name
        );
    }
    outputs.push(("the preview (debug log)".to_owned(), preview));
    let json = fixture.skiff_debug(["update", "cluster", CLUSTER, "-o", "json"]);
    json.assert_success();
    let plan = json.stdout_json();
    let with_user_data = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|change| change["desired"]["userData"].is_string())
        .count();
    assert_eq!(
        with_user_data,
        groups.len(),
        "the JSON plan holds every group's user-data: {plan:#}"
    );
    outputs.push(("the -o json plan (debug log)".to_owned(), json));
    let plan_file = fixture.home.join("c1.plan");
    let saved = fixture.skiff_debug([
        "update".as_ref(),
        "cluster".as_ref(),
        CLUSTER.as_ref(),
        "--out".as_ref(),
        plan_file.as_os_str(),
    ]);
    saved.assert_success();
    outputs.push(("update cluster --out (debug log)".to_owned(), saved));
    secrets.assert_absent(
        "the saved plan file",
        &std::fs::read_to_string(&plan_file).expect("the plan file"),
    );

    // Applying the saved plan, then `update --yes` with nothing to do.
    let apply_saved = fixture.skiff_debug(["apply".as_ref(), plan_file.as_os_str()]);
    apply_saved.assert_success();
    outputs.push((
        "apply of the saved plan (debug log)".to_owned(),
        apply_saved,
    ));
    // Nothing to do, logging everything (SDK requests and responses
    // included): this run reads and checks every stored key and the token.
    let again = fixture
        .command(["update", "cluster", CLUSTER, "--yes"])
        .env("SKIFF_LOG", "trace")
        .run();
    again.assert_success();
    assert!(
        again.stderr.contains("TRACE"),
        "no trace log lines: {again}"
    );
    outputs.push((
        "update cluster --yes without changes (trace log)".to_owned(),
        again,
    ));

    for (what, output) in &outputs {
        secrets.assert_absent(&format!("stdout of {what}"), &output.stdout);
        secrets.assert_absent(&format!("stderr of {what}"), &output.stderr);
    }

    // Every version of every launch template, the encoded files decoded.
    for group in &groups {
        let versions = fixture.user_data_versions(&group.name, &[]).await;
        assert!(
            versions.len() >= 2,
            "{}: versions {:?}",
            group.name,
            versions.keys()
        );
        for (version, user_data) in versions {
            secrets.assert_absent(
                &format!("the user-data of {} version {version}", group.name),
                &user_data_with_files(&user_data),
            );
        }
    }
    // And every bootstrap script those versions' loaders fetch.
    let scripts = fixture
        .aws
        .list_keys(&fixture.bucket, &format!("{S3_PREFIX}/{CLUSTER}/scripts/"));
    assert!(scripts.len() >= groups.len(), "{scripts:?}");
    for key in scripts {
        let script = fixture
            .aws
            .get_object(&fixture.bucket, &key)
            .expect("a listed script");
        secrets.assert_absent(&key, &String::from_utf8_lossy(&script));
    }
}

// --- 4. Kubernetes version change ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_version_change_rolls_every_group_and_applies_cleanly() {
    let fixture = ClusterFixture::applied().await;
    let groups = fixture.groups();
    assert_eq!(groups.len(), 5, "{groups:?}");
    let mut before = BTreeMap::new();
    for group in &groups {
        before.insert(
            group.name.clone(),
            fixture.whole_user_data(&group.name).await,
        );
    }

    fixture.edit_cluster(|document| {
        assert_eq!(
            document["spec"]["kubernetesVersion"].as_str(),
            Some(DEFAULT_VERSION),
            "{document:?}"
        );
        document["spec"]["kubernetesVersion"] = NEXT_PATCH_VERSION.into();
    });

    let plan = fixture.plan_json();
    let changes = plan["changes"].as_array().expect("changes");
    let changed: BTreeSet<String> = changes
        .iter()
        .map(|change| change["key"].as_str().expect("a key").to_owned())
        .collect();
    for group in &groups {
        let key = format!("launch-template/{}", group.name);
        let change = changes
            .iter()
            .find(|change| change["key"] == key.as_str())
            .unwrap_or_else(|| panic!("no change of {key}: {changed:?}"));
        assert_eq!(change["action"], "update", "{change:#}");
        let user_data = change["fields"]
            .as_array()
            .and_then(|fields| fields.iter().find(|field| field["field"] == "userData"))
            .unwrap_or_else(|| panic!("{key}: no userData change: {change:#}"));
        assert_eq!(
            user_data["before"].as_str(),
            Some(before[&group.name].as_str()),
            "{key}: `before` is the user-data the launch template holds"
        );
        let after = user_data_with_files(user_data["after"].as_str().expect("the new user-data"));
        assert_installs(&key, &after, NEXT_PATCH_VERSION, group.control_plane);
    }
    assert!(
        changed.iter().all(|key| key.starts_with("launch-template/") || key.starts_with("autoscaling-group/")),
        "only the groups change: {changed:?}"
    );
    let rolling: BTreeMap<String, Vec<String>> = plan["rollingUpdates"]
        .as_array()
        .expect("rollingUpdates")
        .iter()
        .map(|entry| {
            (
                entry["group"].as_str().expect("a group").to_owned(),
                entry["reasons"]
                    .as_array()
                    .expect("reasons")
                    .iter()
                    .map(|reason| reason.as_str().expect("text").to_owned())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        rolling.keys().cloned().collect::<BTreeSet<_>>(),
        groups
            .iter()
            .map(|group| group.name.clone())
            .collect::<BTreeSet<_>>(),
        "every group needs a rolling update: {rolling:?}"
    );
    for (group, reasons) in &rolling {
        assert_eq!(
            reasons,
            &[format!(
                "kubernetesVersion {DEFAULT_VERSION} -> {NEXT_PATCH_VERSION}"
            )],
            "{group}: the reason names the field and both versions"
        );
    }

    fixture.apply();
    let clean = fixture.skiff(["update", "cluster", CLUSTER, "--detailed-exitcode"]);
    clean.assert_exit(0);
    assert!(
        format!("{}{}", clean.stdout, clean.stderr).contains("No changes"),
        "expected \"No changes\"\n{clean}"
    );
    for group in &groups {
        let user_data = user_data_with_files(&fixture.whole_user_data(&group.name).await);
        assert_installs(
            &group.name,
            &user_data,
            NEXT_PATCH_VERSION,
            group.control_plane,
        );
    }
}

/// Asserts that decoded user-data bootstraps Kubernetes `version`, and no other.
#[track_caller]
fn assert_installs(what: &str, user_data: &str, version: &str, control_plane: bool) {
    let installed: Vec<&str> = user_data
        .lines()
        .filter(|line| line.starts_with("readonly KUBERNETES_VERSION="))
        .collect();
    assert_eq!(
        installed,
        [format!("readonly KUBERNETES_VERSION='{version}'")],
        "{what}"
    );
    let initialized: Vec<&str> = user_data
        .lines()
        .filter(|line| line.starts_with("kubernetesVersion:"))
        .collect();
    let expected: Vec<String> = if control_plane {
        vec![format!("kubernetesVersion: \"v{version}\"")]
    } else {
        Vec::new()
    };
    assert_eq!(
        initialized, expected,
        "{what}: the ClusterConfiguration's version"
    );
}
