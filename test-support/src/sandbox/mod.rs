//! Runs a rendered bootstrap script for real, in a sandbox.
//!
//! A [`FakeCloud`] is one test cluster: a private moto server holding the
//! state store (real PKI generated with openssl, a bootstrap token) and
//! serving instance metadata, plus a shared directory with the command stubs
//! and download fixtures. Each [`NodeSandbox`] is one instance: a temporary
//! root that cloud-init's `write_files` are unpacked into (decoded from the
//! user-data itself), and in which `runcmd` is executed with
//! `SKIFF_ROOT` pointing at it.
//!
//! The script runs with a PATH of only stubs (`stubs/` here, which record
//! their arguments) and an allowlist of harmless real tools, so a command
//! nobody planned for fails loudly. When the tests run as root the script
//! runs as `nobody`, so a write outside `SKIFF_ROOT` fails too.
//!
//! The sandbox knows nothing of skiff's types (see the crate documentation):
//! it takes the user-data as text, and where the bootstrap script and its
//! log are as [`BootstrapPaths`].

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::cloud_config::CloudConfig;
use crate::tools;

mod moto;

pub use moto::Moto;

/// The stubs' sources (shell scripts), for checks of the scripts themselves.
pub const STUBS_DIRECTORY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/sandbox/stubs");

/// The bucket of the fake state store.
pub const BUCKET: &str = "skiff-state";
/// The cluster's folder in [`BUCKET`].
pub const CLUSTER_PREFIX: &str = "team-a/c1.example.com";
/// The bootstrap token stored in the fake state store.
pub const TOKEN: &str = "k7t2qx.9fz0c3m1a8b4d6e2";

/// The real tools the script (and the stubs) may use besides the stubs.
const ALLOWED_TOOLS: [&str; 26] = [
    "awk",
    "basename",
    "cat",
    "chmod",
    "cp",
    "cut",
    "date",
    "env",
    "find",
    "grep",
    "gzip",
    "head",
    "install",
    "mkdir",
    "mv",
    "openssl",
    "rm",
    "sed",
    "seq",
    "sha256sum",
    "tar",
    "tee",
    "touch",
    "tr",
    "uname",
    "wc",
];

/// Commands replaced by a stub that only records its arguments.
const RECORDING_STUBS: [&str; 8] = [
    "apt-get",
    "apt-mark",
    "dnf",
    "systemctl",
    "modprobe",
    "sysctl",
    "swapoff",
    "setenforce",
];

/// The state-store objects and the PEM files they come from.
const PKI: [(&str, &str); 8] = [
    ("pki/ca.crt", "ca.crt"),
    ("pki/ca.key", "ca.key"),
    ("pki/etcd-ca.crt", "etcd-ca.crt"),
    ("pki/etcd-ca.key", "etcd-ca.key"),
    ("pki/front-proxy-ca.crt", "front-proxy-ca.crt"),
    ("pki/front-proxy-ca.key", "front-proxy-ca.key"),
    ("pki/sa.key", "sa.key"),
    ("pki/sa.pub", "sa.pub"),
];

/// Where a node's bootstrap script and its log are, as the user-data
/// writes them: skiff-templates' `paths::BOOTSTRAP_SCRIPT` and
/// `paths::BOOTSTRAP_LOG`, given by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootstrapPaths {
    /// The script `runcmd` must run, and nothing else.
    pub script: &'static str,
    /// Its progress log, read back into [`Boot::log`].
    pub log: &'static str,
}

/// Which image a sandbox pretends to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Image {
    /// Ubuntu (Debian family, containerd 1.x).
    Ubuntu,
    /// Amazon Linux (RHEL family, containerd 2.x).
    AmazonLinux,
    /// Rocky Linux (RHEL family, containerd 2.x).
    Rocky,
}

impl Image {
    fn os_release(self) -> &'static str {
        match self {
            Image::Ubuntu => include_str!("fixtures/os-release-ubuntu"),
            Image::AmazonLinux => include_str!("fixtures/os-release-amazon-linux"),
            Image::Rocky => include_str!("fixtures/os-release-rocky"),
        }
    }
}

/// One test cluster's world: state store, metadata, stubs, fixtures.
pub struct FakeCloud {
    /// The state store and instance metadata. Its `port` is what the nodes
    /// of this cloud reach; a test may point it at another endpoint.
    pub moto: Moto,
    bootstrap: BootstrapPaths,
    shared: TempDir,
    pki: TempDir,
    /// `sha256:<hex>` of the CA's SubjectPublicKeyInfo, computed here in Rust.
    pub ca_cert_hash: String,
}

impl FakeCloud {
    /// Starts the moto server, stores the PKI and token in it, and prepares
    /// the stubs and fixtures; nodes run the script at `bootstrap.script`.
    pub fn start(bootstrap: BootstrapPaths) -> FakeCloud {
        tools::require("openssl", "apt-get install -y openssl");
        tools::require("curl", "apt-get install -y curl");
        let moto = Moto::start();
        let shared = TempDir::new().expect("shared directory");
        let pki = TempDir::new().expect("pki directory");

        generate_pki(pki.path());
        let ca_cert_hash = spki_sha256(&pki.path().join("ca.crt"));
        fs::write(pki.path().join("bootstrap-token"), format!("{TOKEN}\n")).expect("token");
        moto.create_bucket(BUCKET);
        for (key, file) in PKI {
            moto.put_object(
                BUCKET,
                &format!("{CLUSTER_PREFIX}/{key}"),
                &pki.path().join(file),
            );
        }
        moto.put_object(
            BUCKET,
            &format!("{CLUSTER_PREFIX}/secrets/bootstrap-token"),
            &pki.path().join("bootstrap-token"),
        );

        install_stubs_and_tools(shared.path());
        install_fixtures(shared.path());
        FakeCloud {
            moto,
            bootstrap,
            shared,
            pki,
            ca_cert_hash,
        }
    }

    /// Strings that must never appear in user-data, console output or logs.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![
            TOKEN.to_string(),
            "PRIVATE KEY".to_string(),
            // The instance role's credentials, as moto's metadata serves them.
            "test-secret-key".to_string(),
            "test-session-token".to_string(),
        ];
        for (_, file) in PKI.iter().filter(|(key, _)| key.ends_with(".key")) {
            let pem = fs::read_to_string(self.pki.path().join(file)).expect("key");
            let longest = pem
                .lines()
                .filter(|line| !line.starts_with("-----"))
                .max_by_key(|line| line.len())
                .expect("a PEM body");
            secrets.push(longest.to_string());
        }
        secrets
    }

    /// The PEM text of a generated PKI file, e.g. `ca.key`.
    pub fn pki_file(&self, name: &str) -> String {
        fs::read_to_string(self.pki.path().join(name)).expect("pki file")
    }

    /// Who holds the init lock.
    pub fn init_lock(&self) -> String {
        self.moto
            .get_object(BUCKET, &format!("{CLUSTER_PREFIX}/bootstrap/init-lock"))
            .trim()
            .to_string()
    }

    /// Makes the API "answer" for every node, as if a control plane were up.
    pub fn mark_api_server_ready(&self) {
        fs::write(self.shared.path().join("api-server-ready"), "").expect("marker");
        give_to_sandbox_user(self.shared.path());
    }

    /// A new instance launched with `user_data`, with its own root. The
    /// image's package repositories offer `kubernetes_version` (what the
    /// `apt-cache` stub answers).
    pub fn launch(
        &self,
        instance_id: &str,
        kubernetes_version: &str,
        user_data: String,
        image: Image,
    ) -> NodeSandbox {
        let cloud_config = CloudConfig::parse(&user_data);
        let directory = TempDir::new().expect("node directory");
        let root = directory.path().join("root");
        for file in &cloud_config.files {
            let path = under(&root, &file.path);
            fs::create_dir_all(path.parent().expect("parent")).expect("directories");
            fs::write(&path, &file.content).expect("write_files entry");
            let mode = u32::from_str_radix(&file.permissions, 8).expect("octal permissions");
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("mode");
        }
        fs::create_dir_all(root.join("etc")).expect("etc");
        fs::write(root.join("etc/os-release"), image.os_release()).expect("os-release");
        fs::write(root.join("etc/fstab"), include_str!("fixtures/fstab")).expect("fstab");
        if image != Image::Ubuntu {
            fs::create_dir_all(root.join("etc/yum.repos.d")).expect("yum.repos.d");
            fs::create_dir_all(root.join("etc/selinux")).expect("selinux");
            fs::write(root.join("etc/selinux/config"), "SELINUX=enforcing\n").expect("selinux");
        }
        for folder in ["kubeadm-configs", "applied"] {
            fs::create_dir_all(directory.path().join(folder)).expect("capture folder");
        }
        fs::write(directory.path().join("commands.log"), "").expect("commands log");
        give_to_sandbox_user(directory.path());

        assert_eq!(
            cloud_config.commands,
            vec![self.bootstrap.script.to_string()],
            "runcmd must run the bootstrap script and nothing else"
        );
        NodeSandbox {
            instance_id: instance_id.to_string(),
            kubernetes_version: kubernetes_version.to_string(),
            containerd_series: match image {
                Image::Ubuntu => "1.x",
                Image::AmazonLinux | Image::Rocky => "2.x",
            },
            shared: self.shared.path().to_path_buf(),
            moto_port: self.moto.port,
            bootstrap: self.bootstrap,
            directory,
            root,
            user_data,
        }
    }
}

/// One instance being bootstrapped.
pub struct NodeSandbox {
    /// The instance ID the metadata stub answers.
    pub instance_id: String,
    kubernetes_version: String,
    containerd_series: &'static str,
    shared: PathBuf,
    moto_port: u16,
    bootstrap: BootstrapPaths,
    directory: TempDir,
    /// The node's root directory (`SKIFF_ROOT`).
    pub root: PathBuf,
    /// The user-data it was launched with.
    pub user_data: String,
}

/// How a boot ended.
#[derive(Debug)]
pub struct Boot {
    /// Whether the script exited 0.
    pub success: bool,
    /// What it printed.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
    /// The bootstrap log ([`BootstrapPaths::log`]) in the node's root.
    pub log: String,
}

impl Boot {
    /// Everything the node printed or logged, for secret checks and messages.
    pub fn everything(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}\n--- log\n{}",
            self.stdout, self.stderr, self.log
        )
    }
}

/// A boot in progress.
pub struct Running<'a> {
    node: &'a NodeSandbox,
    child: Child,
}

impl Running<'_> {
    /// Waits for the script to end (at most 180 s).
    pub fn wait(mut self) -> Boot {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Some(_status) = self.child.try_wait().expect("wait for the script") {
                break;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the bootstrap of {} did not finish in 180 s:\n{}",
                    self.node.instance_id,
                    self.node.collect(false).everything()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let status = self.child.wait().expect("exit status");
        self.node.collect(status.success())
    }
}

impl NodeSandbox {
    /// Starts the script as cloud-init's runcmd would.
    pub fn spawn(&self) -> Running<'_> {
        let script = under(&self.root, self.bootstrap.script);
        let stdout = fs::File::create(self.directory.path().join("stdout")).expect("stdout file");
        let stderr = fs::File::create(self.directory.path().join("stderr")).expect("stderr file");
        let mut command = if running_as_root() {
            let setpriv = tools::require("setpriv", "apt-get install -y util-linux");
            let mut command = Command::new(setpriv);
            command
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(&script);
            command
        } else {
            Command::new(&script)
        };
        let path = format!(
            "{}:{}",
            self.shared.join("stubs").display(),
            self.shared.join("tools").display()
        );
        command
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.directory.path())
            .env("LC_ALL", "C")
            .env("SKIFF_ROOT", &self.root)
            .env("SANDBOX_DIR", self.directory.path())
            .env("SANDBOX_LOG", self.directory.path().join("commands.log"))
            .env("SANDBOX_SHARED", &self.shared)
            .env("SANDBOX_INSTANCE_ID", &self.instance_id)
            .env("SANDBOX_MOTO_PORT", self.moto_port.to_string())
            .env(
                "SANDBOX_REAL_CURL",
                tools::require("curl", "apt-get install -y curl"),
            )
            .env("SANDBOX_REAL_SLEEP", tools::require("sleep", "coreutils"))
            .env("SANDBOX_KUBERNETES_VERSION", &self.kubernetes_version)
            .env("SANDBOX_CONTAINERD_SERIES", self.containerd_series)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        Running {
            node: self,
            child: command.spawn().expect("the bootstrap script starts"),
        }
    }

    /// Runs the script to the end.
    pub fn boot(&self) -> Boot {
        self.spawn().wait()
    }

    fn collect(&self, success: bool) -> Boot {
        let read = |path: PathBuf| fs::read_to_string(path).unwrap_or_default();
        Boot {
            success,
            stdout: read(self.directory.path().join("stdout")),
            stderr: read(self.directory.path().join("stderr")),
            log: read(under(&self.root, self.bootstrap.log)),
        }
    }

    /// Every stubbed command the script ran, one line each: `name arguments...`.
    pub fn commands(&self) -> Vec<String> {
        fs::read_to_string(self.directory.path().join("commands.log"))
            .expect("commands log")
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The commands whose line starts with `prefix`.
    pub fn commands_starting(&self, prefix: &str) -> Vec<String> {
        self.commands()
            .into_iter()
            .filter(|line| line.starts_with(prefix))
            .collect()
    }

    /// The --config files kubeadm was given, in call order, as (file name, text).
    pub fn kubeadm_configs(&self) -> Vec<(String, String)> {
        let mut configs: Vec<(String, String)> =
            fs::read_dir(self.directory.path().join("kubeadm-configs"))
                .expect("captured configs")
                .map(|entry| {
                    let entry = entry.expect("entry");
                    (
                        entry.file_name().to_string_lossy().into_owned(),
                        fs::read_to_string(entry.path()).expect("config"),
                    )
                })
                .collect();
        configs.sort();
        configs
    }

    /// A manifest kubectl applied, by file name.
    pub fn applied_manifest(&self, name: &str) -> String {
        fs::read_to_string(self.directory.path().join("applied").join(name))
            .unwrap_or_else(|_| panic!("kubectl applied no {name}"))
    }

    /// A file in the node's root, by its absolute path on a real node.
    pub fn read(&self, path: &str) -> String {
        fs::read_to_string(under(&self.root, path))
            .unwrap_or_else(|error| panic!("cannot read {path} in the sandbox: {error}"))
    }

    /// Whether a file exists in the node's root, by its absolute path on a real node.
    pub fn exists(&self, path: &str) -> bool {
        under(&self.root, path).exists()
    }

    /// The permission bits of a file in the node's root.
    pub fn mode(&self, path: &str) -> u32 {
        fs::metadata(under(&self.root, path))
            .unwrap_or_else(|error| panic!("no {path} in the sandbox: {error}"))
            .permissions()
            .mode()
            & 0o7777
    }
}

/// `path` (absolute on a node) inside `root`.
fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

fn running_as_root() -> bool {
    let output = Command::new("id").arg("-u").output().expect("id runs");
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

/// Hands a directory to `nobody`, who runs the script when tests run as root.
fn give_to_sandbox_user(directory: &Path) {
    if running_as_root() {
        let status = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(directory)
            .status()
            .expect("chown runs");
        assert!(status.success(), "chown of {} failed", directory.display());
    }
}

fn install_stubs_and_tools(shared: &Path) {
    let stubs = shared.join("stubs");
    let tools_directory = shared.join("tools");
    fs::create_dir_all(&stubs).expect("stubs");
    fs::create_dir_all(&tools_directory).expect("tools");
    let mut stub_files: Vec<(String, &str)> = vec![
        ("apt-cache".to_string(), include_str!("stubs/apt-cache.sh")),
        (
            "containerd".to_string(),
            include_str!("stubs/containerd.sh"),
        ),
        ("curl".to_string(), include_str!("stubs/curl.sh")),
        ("gpg".to_string(), include_str!("stubs/gpg.sh")),
        ("kubeadm".to_string(), include_str!("stubs/kubeadm.sh")),
        ("kubectl".to_string(), include_str!("stubs/kubectl.sh")),
        ("sleep".to_string(), include_str!("stubs/sleep.sh")),
    ];
    for name in RECORDING_STUBS {
        stub_files.push((name.to_string(), include_str!("stubs/record.sh")));
    }
    for (name, text) in stub_files {
        let path = stubs.join(name);
        fs::write(&path, text).expect("stub");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("stub mode");
    }
    for name in ALLOWED_TOOLS {
        let real = tools::require(
            name,
            "install coreutils, grep, sed, gawk, tar, gzip, openssl",
        );
        std::os::unix::fs::symlink(real, tools_directory.join(name)).expect("tool link");
    }
}

fn install_fixtures(shared: &Path) {
    let fixtures = shared.join("fixtures");
    fs::create_dir_all(&fixtures).expect("fixtures");
    for (name, text) in [
        (
            "containerd-1.x-config.toml",
            include_str!("fixtures/containerd-1.x-config.toml"),
        ),
        (
            "containerd-2.x-config.toml",
            include_str!("fixtures/containerd-2.x-config.toml"),
        ),
        ("calico.yaml", include_str!("fixtures/calico.yaml")),
        (
            "kube-flannel.yml",
            include_str!("fixtures/kube-flannel.yml"),
        ),
        (
            "release.key",
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\nsandbox\n",
        ),
    ] {
        fs::write(fixtures.join(name), text).expect("fixture");
    }

    // The Cilium CLI archive: a tarball holding the recording `cilium` stub,
    // with its checksum file as the release publishes it.
    let staging = TempDir::new().expect("staging");
    let cilium = staging.path().join("cilium");
    fs::write(&cilium, include_str!("stubs/cilium.sh")).expect("cilium stub");
    fs::set_permissions(&cilium, fs::Permissions::from_mode(0o755)).expect("mode");
    let archive = fixtures.join("cilium.tar.gz");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(staging.path())
        .arg("cilium")
        .status()
        .expect("tar runs");
    assert!(status.success(), "could not build the Cilium fixture");
    let digest = hex(&Sha256::digest(fs::read(&archive).expect("archive")));
    fs::write(
        fixtures.join("cilium.tar.gz.sha256sum"),
        format!("{digest}  cilium-linux-amd64.tar.gz\n"),
    )
    .expect("checksum");
    give_to_sandbox_user(shared);
}

fn generate_pki(directory: &Path) {
    let openssl = |arguments: &[&str]| {
        let output = Command::new("openssl")
            .args(arguments)
            .current_dir(directory)
            .output()
            .expect("openssl runs");
        assert!(
            output.status.success(),
            "openssl {arguments:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    for (name, subject) in [
        ("ca", "/CN=kubernetes"),
        ("etcd-ca", "/CN=etcd-ca"),
        ("front-proxy-ca", "/CN=front-proxy-ca"),
    ] {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-subj",
            subject,
            "-days",
            "2",
        ]);
    }
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "sa.key",
    ]);
    openssl(&["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
}

/// kubeadm's discovery hash, computed independently of the script: the
/// SHA-256 of the certificate's DER SubjectPublicKeyInfo.
fn spki_sha256(certificate: &Path) -> String {
    let output = Command::new("openssl")
        .args(["x509", "-pubkey", "-noout", "-in"])
        .arg(certificate)
        .output()
        .expect("openssl runs");
    assert!(output.status.success(), "openssl x509 -pubkey failed");
    let pem = String::from_utf8(output.stdout).expect("PEM is text");
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM body is base64");
    format!("sha256:{}", hex(&Sha256::digest(der)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
