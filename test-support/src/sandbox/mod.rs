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
//! # The cloud around a node
//!
//! Each node is a real moto EC2 instance (tags `KubernetesCluster`,
//! `skiff.dev/role`, `skiff.dev/instance-group`) in an auto scaling group
//! named after its instance group, at a private IP that is a loopback
//! address of the cloud's reserved `127.A.B.0/24` block
//! ([`crate::etcd::AddressBlock`]); see [`FakeCloud::run_instance`] and
//! [`FakeCloud::launch`]. The node's EC2 and Auto Scaling Query calls go
//! to its AWS endpoint, which in tests is the moto URL.
//!
//! # What the stand-ins decide, and after what
//!
//! Stand-ins that only record: apt-get, apt-mark, dnf, modprobe, sysctl,
//! swapoff, setenforce, crictl (its `pull` is what `ctr` checks), gpg,
//! cilium. Those that decide, each citing its upstream source in
//! its header (`stubs/*.sh`):
//! - `kubeadm` (kubernetes/kubernetes cmd/kubeadm): preflight's
//!   DirAvailable--var-lib-etcd on `init` and control-plane `join`
//!   (app/preflight/checks.go, app/cmd/phases/join/preflight.go) with
//!   `--ignore-preflight-errors`; `init` runs a REAL etcd member (certs as
//!   app/phases/certs/certlist.go, flags as app/phases/etcd/local.go);
//!   a control-plane `join` checks every member's health
//!   (app/cmd/phases/join/checketcd.go, app/util/etcd/etcd.go) and fails
//!   with "etcd cluster is not healthy", then adds itself as a learner and
//!   promotes itself (app/phases/etcd/local.go, app/util/etcd/etcd.go),
//!   logging `kubeadm-join start|end <epoch ms>`; `reset` stops the member
//!   and wipes its data dir; `config images list`, `certs check-expiration`
//!   and `certs renew all` answer as kubeadm does. It keeps the cluster's
//!   ClusterConfiguration in the real etcd
//!   (`/registry/configmaps/kube-system/kubeadm-config`, uploaded by
//!   `init`, app/phases/uploadconfig), which a control-plane `join` deploys
//!   (app/util/config/cluster.go); `init` and a control-plane `join` refuse
//!   a kubelet of a newer minor than that version and a version newer than
//!   kubeadm (app/preflight/checks.go KubeletVersionCheck,
//!   KubernetesVersionCheck); `upgrade node phase addon all` upgrades
//!   kube-proxy and CoreDNS only when every kube-apiserver runs this node's
//!   version (app/phases/upgrade/postupgrade.go). What it deploys is
//!   recorded in the shared `cluster/` folder ([`FakeCloud::cluster_record`],
//!   [`FakeCloud::api_servers`]).
//! - `kubectl`: reads and replaces the kubeadm-config ConfigMap (with its
//!   resourceVersion check), reads kube-proxy's image, deletes a Node (its
//!   kube-apiserver mirror pod goes with it), all in the real etcd; copies
//!   the manifests it applies.
//! - `uname -n`: the EC2 host name `ip-A-B-C-D` of the node's private IP.
//! - `systemctl`: starting the kubelet runs the static pods kubeadm wrote
//!   (the etcd member), as the kubelet would.
//! - `ctr images mount|unmount`: refuses an image never pulled; the etcd
//!   image holds the real `etcdctl` and an `etcdutl` wrapper (etcd 3.4 has
//!   none; `snapshot restore|status` map onto etcdctl's).
//! - `podman image mount|unmount` (a CRI-O node's way to the same image,
//!   as podman reads CRI-O's image store): likewise.
//! - `kubeadm init|join` first run preflight's ContainerRuntimeCheck: the
//!   config's `criSocket` must be served by a runtime the node started
//!   (`systemctl restart containerd|crio`), else `[ERROR CRI]`.
//! - `curl`: IMDS answers per node (instance ID, `local-ipv4`,
//!   `autoscaling/target-lifecycle-state`, 404 when unset); moto answers the
//!   rest of IMDS, the state store and EC2/Auto Scaling; the API server's
//!   `/version` is the oldest kube-apiserver the kubeadm stand-in runs; the
//!   node's local API server's `/metrics` is the stand-in Kubernetes API a
//!   test named ([`NodeSandbox::serve_local_api_server`]), else nothing
//!   listens. The kubeadm stand-in writes the ClusterConfiguration's
//!   `apiServer.extraArgs` and `extraVolumes` into the kube-apiserver
//!   manifest (from `--config` on init, from the stored copy on a join).
//!
//! Every etcd process a stand-in starts is recorded in the shared
//! `etcd-pids/<IP>`, and dropping the [`FakeCloud`] kills them all.
//!
//! The sandbox knows nothing of skiff's types (see the crate documentation):
//! it takes the user-data as text, and where the bootstrap script and its
//! log are as [`BootstrapPaths`].

use std::collections::HashSet;
use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::cloud_config::CloudConfig;
use crate::etcd::{
    generate_client, AddressBlock, CertificatePair, EtcdCluster, EtcdPlacement, MEMBER_HELPER,
};
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
const ALLOWED_TOOLS: [&str; 32] = [
    "awk",
    "basename",
    "cat",
    "chmod",
    "cp",
    "cut",
    "date",
    "dirname",
    "env",
    "etcdctl",
    "find",
    "grep",
    "gzip",
    "head",
    "install",
    "ln",
    "mkdir",
    "mv",
    "openssl",
    "rm",
    "sed",
    "seq",
    "setsid",
    "sha256sum",
    "sort",
    "tail",
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
    "crictl",
    "dnf",
    "modprobe",
    "sysctl",
    "swapoff",
    "setenforce",
];

/// The encryption configuration's key in the cluster's folder.
const ENCRYPTION_CONFIG_KEY: &str = "secrets/encryption-config.yaml";

/// 32 random bytes, base64: a `secretbox` key.
fn random_key() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .expect("/dev/urandom");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An `EncryptionConfiguration` as skiff's keystore writes it.
fn encryption_config(key: &str) -> String {
    format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources:\n      - secrets\n    providers:\n      - secretbox:\n          keys:\n            - name: key-20261206T120000Z\n              secret: {key}\n      - identity: {{}}\n"
    )
}

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
    /// The loopback block the nodes' private IPs (and their etcd members) use.
    block: AddressBlock,
    subnet_id: String,
    groups: Mutex<HashSet<String>>,
}

/// The cluster tag every sandbox instance carries (`KubernetesCluster`).
pub const CLUSTER_NAME: &str = "c1.example.com";

/// The instance role tag values (`skiff.dev/role`).
const ROLES: [&str; 3] = ["control-plane", "nodes", "etcd"];

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
        fs::write(
            pki.path().join("encryption-config.yaml"),
            encryption_config(&random_key()),
        )
        .expect("encryption configuration");
        moto.put_object(
            BUCKET,
            &format!("{CLUSTER_PREFIX}/{ENCRYPTION_CONFIG_KEY}"),
            &pki.path().join("encryption-config.yaml"),
        );

        install_stubs_and_tools(shared.path());
        install_fixtures(shared.path());
        for file in ["etcd-endpoints", "etcd-members.log"] {
            fs::write(shared.path().join(file), "").expect("shared etcd file");
        }
        fs::create_dir_all(shared.path().join("etcd-pids")).expect("etcd pid directory");
        fs::create_dir_all(shared.path().join("cluster/apiservers")).expect("cluster directory");
        give_to_sandbox_user(shared.path());

        let block = AddressBlock::reserve();
        let vpc = moto.ec2(&[("Action", "CreateVpc"), ("CidrBlock", &block.vpc_cidr())]);
        let vpc_id = xml_values(&vpc, "vpcId").remove(0);
        let subnet = moto.ec2(&[
            ("Action", "CreateSubnet"),
            ("VpcId", &vpc_id),
            ("CidrBlock", &block.cidr()),
            ("AvailabilityZone", "us-east-1a"),
        ]);
        let subnet_id = xml_values(&subnet, "subnetId").remove(0);
        moto.autoscaling(&[
            ("Action", "CreateLaunchConfiguration"),
            ("LaunchConfigurationName", "sandbox"),
            ("ImageId", "ami-12c6146b"),
            ("InstanceType", "t3.medium"),
        ]);
        FakeCloud {
            moto,
            bootstrap,
            shared,
            pki,
            ca_cert_hash,
            block,
            subnet_id,
            groups: Mutex::new(HashSet::new()),
        }
    }

    /// The next unused private IP of this cloud (`127.A.B.10`, `.11`, ...).
    pub fn next_private_ip(&self) -> Ipv4Addr {
        self.block.next_address()
    }

    /// Launches a moto EC2 instance of instance group `group` (in an auto
    /// scaling group of that name) with `role` `control-plane` or `nodes`,
    /// tagged as skiff tags it (`KubernetesCluster`, `skiff.dev/role`,
    /// `skiff.dev/instance-group`), at `private_ip`. Returns moto's ID.
    pub fn run_instance(&self, group: &str, role: &str, private_ip: Ipv4Addr) -> String {
        assert!(
            ROLES.contains(&role),
            "role {role:?} is not one of {ROLES:?}"
        );
        let response = self.moto.ec2(&[
            ("Action", "RunInstances"),
            ("ImageId", "ami-12c6146b"),
            ("MinCount", "1"),
            ("MaxCount", "1"),
            ("InstanceType", "t3.medium"),
            ("SubnetId", &self.subnet_id),
            ("PrivateIpAddress", &private_ip.to_string()),
            ("TagSpecification.1.ResourceType", "instance"),
            ("TagSpecification.1.Tag.1.Key", "KubernetesCluster"),
            ("TagSpecification.1.Tag.1.Value", CLUSTER_NAME),
            ("TagSpecification.1.Tag.2.Key", "skiff.dev/role"),
            ("TagSpecification.1.Tag.2.Value", role),
            ("TagSpecification.1.Tag.3.Key", "skiff.dev/instance-group"),
            ("TagSpecification.1.Tag.3.Value", group),
        ]);
        let instance_id = xml_values(&response, "instanceId")
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("RunInstances returned no instance:\n{response}"));
        let mut groups = self.groups.lock().expect("groups");
        if groups.insert(group.to_string()) {
            self.moto.autoscaling(&[
                ("Action", "CreateAutoScalingGroup"),
                ("AutoScalingGroupName", group),
                ("LaunchConfigurationName", "sandbox"),
                ("MinSize", "0"),
                ("MaxSize", "10"),
                ("DesiredCapacity", "0"),
                ("VPCZoneIdentifier", &self.subnet_id),
            ]);
        }
        self.moto.autoscaling(&[
            ("Action", "AttachInstances"),
            ("AutoScalingGroupName", group),
            ("InstanceIds.member.1", &instance_id),
        ]);
        instance_id
    }

    /// [`FakeCloud::run_instance`] with an instance ID the test chooses.
    pub fn run_instance_with_id(
        &self,
        instance_id: &str,
        group: &str,
        role: &str,
        private_ip: Ipv4Addr,
    ) -> String {
        self.moto.choose_next_instance_id(instance_id);
        let launched = self.run_instance(group, role, private_ip);
        assert_eq!(launched, instance_id, "moto did not use the chosen ID");
        launched
    }

    /// Terminates an instance (out of its auto scaling group first, as the
    /// group does when it replaces one). Its processes are not touched: a
    /// test kills them with [`NodeSandbox::power_off`].
    pub fn terminate_instance(&self, instance_id: &str) {
        let described = self.moto.autoscaling(&[
            ("Action", "DescribeAutoScalingInstances"),
            ("InstanceIds.member.1", instance_id),
        ]);
        if let Some(group) = xml_values(&described, "AutoScalingGroupName").first() {
            self.moto.autoscaling(&[
                ("Action", "DetachInstances"),
                ("AutoScalingGroupName", group),
                ("InstanceIds.member.1", instance_id),
                ("ShouldDecrementDesiredCapacity", "true"),
            ]);
        }
        self.moto.ec2(&[
            ("Action", "TerminateInstances"),
            ("InstanceId.1", instance_id),
        ]);
    }

    /// Shows an instance in `state` to EC2 calls (`shutting-down`: an
    /// instance its group is terminating, whose OS is shutting down).
    pub fn set_instance_state(&self, instance_id: &str, state: &str) {
        self.moto.set_instance_state(instance_id, state);
    }

    /// The private IP of a (moto) instance, if it exists.
    pub fn instance_private_ip(&self, instance_id: &str) -> Option<Ipv4Addr> {
        let response = self.moto.ec2(&[
            ("Action", "DescribeInstances"),
            ("Filter.1.Name", "instance-id"),
            ("Filter.1.Value.1", instance_id),
        ]);
        xml_values(&response, "privateIpAddress")
            .first()
            .and_then(|address| address.parse().ok())
    }

    /// The instance's state name (`running`, `terminated`, ...).
    pub fn instance_state(&self, instance_id: &str) -> Option<String> {
        let response = self.moto.ec2(&[
            ("Action", "DescribeInstances"),
            ("Filter.1.Name", "instance-id"),
            ("Filter.1.Value.1", instance_id),
        ]);
        let position = response.find("<instanceState>")?;
        xml_values(&response[position..], "name").into_iter().next()
    }

    /// The health its auto scaling group records (`Healthy`, `Unhealthy`),
    /// as DescribeAutoScalingInstances reports it.
    pub fn instance_health(&self, instance_id: &str) -> Option<String> {
        let response = self.moto.autoscaling(&[
            ("Action", "DescribeAutoScalingInstances"),
            ("InstanceIds.member.1", instance_id),
        ]);
        xml_values(&response, "HealthStatus").into_iter().next()
    }

    /// The etcd CA of this cloud's state store (`pki/etcd-ca.crt`/`.key`).
    pub fn etcd_ca(&self) -> CertificatePair {
        CertificatePair {
            certificate: self.pki.path().join("etcd-ca.crt"),
            key: self.pki.path().join("etcd-ca.key"),
        }
    }

    /// A real etcd cluster of `size` members signed by this cloud's etcd CA,
    /// at fresh private IPs of this cloud (give them instances with
    /// [`FakeCloud::run_instance`] to make them live control-plane nodes).
    /// Its client URLs replace the shared `etcd-endpoints`, where the kubeadm
    /// stand-in finds the cluster; the cloud kills its members too.
    pub fn start_etcd(&self, size: usize) -> EtcdCluster {
        let addresses = (0..size).map(|_| self.next_private_ip()).collect();
        let cluster = EtcdCluster::start_placed(EtcdPlacement {
            ca: self.etcd_ca(),
            addresses,
            pid_dir: self.shared.path().join("etcd-pids"),
            endpoints_file: Some(self.shared.path().join("etcd-endpoints")),
        });
        give_to_sandbox_user(&self.shared.path().join("etcd-endpoints"));
        cluster
    }

    /// The real etcdctl against [`FakeCloud::etcd_endpoints`] (or the
    /// `--endpoints` given), with a client certificate of the cloud's etcd CA.
    pub fn etcdctl(&self, arguments: &[&str]) -> std::process::Output {
        let client_directory = self.pki.path().join("etcd-client");
        if !client_directory.join("client.crt").exists() {
            fs::create_dir_all(&client_directory).expect("client directory");
            generate_client(&client_directory, &self.etcd_ca());
        }
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.etcd_endpoints().join(",")))
            .arg(format!(
                "--cacert={}",
                self.pki.path().join("etcd-ca.crt").display()
            ))
            .arg(format!(
                "--cert={}",
                client_directory.join("client.crt").display()
            ))
            .arg(format!(
                "--key={}",
                client_directory.join("client.key").display()
            ))
            .args(["--dial-timeout=2s", "--command-timeout=5s"])
            .args(arguments)
            .output()
            .expect("etcdctl runs")
    }

    /// The client URLs the kubeadm stand-in knows (as the real one reads
    /// them from the etcd pods' annotations through the API), one per
    /// `init`/`join` of a control-plane node or [`FakeCloud::start_etcd`].
    pub fn etcd_endpoints(&self) -> Vec<String> {
        fs::read_to_string(self.shared.path().join("etcd-endpoints"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The IPs whose etcd member a stand-in (or [`FakeCloud::start_etcd`]) runs now.
    pub fn running_etcd_members(&self) -> Vec<Ipv4Addr> {
        let mut addresses: Vec<Ipv4Addr> = fs::read_dir(self.shared.path().join("etcd-pids"))
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        addresses.sort();
        addresses
    }

    /// The encryption configuration in the state store now.
    pub fn encryption_config(&self) -> String {
        self.moto
            .get_object(BUCKET, &format!("{CLUSTER_PREFIX}/{ENCRYPTION_CONFIG_KEY}"))
    }

    /// Replaces the stored encryption configuration with one of a new
    /// random key (as a rotation would); returns its text.
    pub fn rotate_encryption_config(&self) -> String {
        let text = encryption_config(&random_key());
        let file = self.pki.path().join("encryption-config.yaml");
        fs::write(&file, &text).expect("encryption configuration");
        self.moto.put_object(
            BUCKET,
            &format!("{CLUSTER_PREFIX}/{ENCRYPTION_CONFIG_KEY}"),
            &file,
        );
        text
    }

    /// The JSON report a node wrote under `etcd/encryption/`.
    pub fn encryption_report(&self, instance_id: &str) -> String {
        self.moto.get_object(
            BUCKET,
            &format!("{CLUSTER_PREFIX}/etcd/encryption/{instance_id}"),
        )
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
        // The stored encryption key(s).
        secrets.extend(
            self.encryption_config()
                .lines()
                .filter_map(|line| line.trim().strip_prefix("secret: "))
                .map(str::to_string),
        );
        secrets
    }

    /// The PEM text of a generated PKI file, e.g. `ca.key`.
    pub fn pki_file(&self, name: &str) -> String {
        fs::read_to_string(self.pki.path().join(name)).expect("pki file")
    }

    /// Who holds the init lock.
    pub fn init_lock(&self) -> String {
        self.moto
            .get_object(BUCKET, &format!("{CLUSTER_PREFIX}/etcd/init-lock"))
            .trim()
            .to_string()
    }

    /// Makes the API "answer" for every node, as if a control plane were up
    /// (its `/version` is then the asking node's own version).
    pub fn mark_api_server_ready(&self) {
        self.mark_api_server_ready_at("");
    }

    /// Makes the API "answer" for every node, its `/version` saying
    /// `version` (`1.34.2`) while no kubeadm stand-in runs an API server.
    pub fn mark_api_server_ready_at(&self, version: &str) {
        fs::write(self.shared.path().join("api-server-ready"), version).expect("marker");
        give_to_sandbox_user(self.shared.path());
    }

    /// Lines of a record the kubeadm stand-in keeps in the shared
    /// `cluster/` folder: `static-pods.log` (`<node> <component>
    /// <version>`), `addons.log` (`<node> kube-proxy|coredns <image>`),
    /// `kubelets.log` (`<node> kubelet <version> apiserver <version>`).
    pub fn cluster_record(&self, name: &str) -> Vec<String> {
        fs::read_to_string(self.shared.path().join("cluster").join(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Writes a file of the shared `cluster/` folder that the kubectl
    /// stand-in reads: `nodes` (the Nodes it lists, `NAME PROVIDER-ID` a
    /// line), `pdb-blocks/<node>` (a pod whose PodDisruptionBudget refuses
    /// its eviction, so that node's drain times out), `slow-drains/<node>`
    /// (the seconds that node's drain takes).
    pub fn write_cluster_file(&self, name: &str, contents: &str) {
        let path = self.shared.path().join("cluster").join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("cluster folder");
        }
        fs::write(&path, contents).expect("cluster file");
        give_to_sandbox_user(&self.shared.path().join("cluster"));
    }

    /// The kube-apiserver mirror pods the stand-in runs: (node name, version).
    pub fn api_servers(&self) -> Vec<(String, String)> {
        let mut servers: Vec<(String, String)> =
            fs::read_dir(self.shared.path().join("cluster/apiservers"))
                .map(|entries| {
                    entries
                        .filter_map(|entry| {
                            let entry = entry.ok()?;
                            let text = fs::read_to_string(entry.path()).ok()?;
                            let version = text.split_whitespace().nth(1)?.to_string();
                            Some((entry.file_name().to_string_lossy().into_owned(), version))
                        })
                        .collect()
                })
                .unwrap_or_default();
        servers.sort();
        servers
    }

    /// Stores the cluster's ClusterConfiguration at `version` (`1.34.2`) in
    /// the etcd the stand-ins know, as `kubeadm init` would have: for a
    /// cluster started with [`FakeCloud::start_etcd`], which no init made.
    pub fn store_cluster_configuration(&self, version: &str) {
        let document = format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v{version}\n"
        );
        let output = self.etcdctl(&[
            "put",
            "/registry/configmaps/kube-system/kubeadm-config",
            &document,
        ]);
        assert!(
            output.status.success(),
            "etcdctl put: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The value of an etcd key, read at any member the stand-ins know.
    pub fn etcd_value(&self, key: &str) -> String {
        let output = self.etcdctl(&["get", "--print-value-only", key]);
        assert!(
            output.status.success(),
            "etcdctl get {key}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// A new instance launched with `user_data`, with its own root. The
    /// image's package repositories offer `kubernetes_version` (what the
    /// `apt-cache` stub answers).
    ///
    /// The instance is a moto EC2 instance: one the test ran with
    /// [`FakeCloud::run_instance`] (its private IP is used), or else one run
    /// here with this ID at the next private IP, in group
    /// `control-plane-us-east-1a` with role `control-plane` when the
    /// user-data carries a kubeadm `InitConfiguration`, otherwise in
    /// `nodes-us-east-1a` with role `nodes`.
    pub fn launch(
        &self,
        instance_id: &str,
        kubernetes_version: &str,
        user_data: String,
        image: Image,
    ) -> NodeSandbox {
        let cloud_config = CloudConfig::parse(&user_data);
        let private_ip = match self.instance_private_ip(instance_id) {
            Some(address) => address,
            None => {
                let control_plane = cloud_config
                    .files
                    .iter()
                    .any(|file| file.content.contains("kind: InitConfiguration"));
                let (group, role) = if control_plane {
                    ("control-plane-us-east-1a", "control-plane")
                } else {
                    ("nodes-us-east-1a", "nodes")
                };
                let address = self.next_private_ip();
                self.run_instance_with_id(instance_id, group, role, address);
                address
            }
        };
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
        fs::write(directory.path().join("lifecycle-state"), "InService").expect("lifecycle");
        give_to_sandbox_user(directory.path());

        assert_eq!(
            cloud_config.commands,
            vec![self.bootstrap.script.to_string()],
            "runcmd must run the bootstrap script and nothing else"
        );
        NodeSandbox {
            instance_id: instance_id.to_string(),
            private_ip,
            kubernetes_version: kubernetes_version.to_string(),
            containerd_series: match image {
                Image::Ubuntu => "1.x",
                Image::AmazonLinux | Image::Rocky => "2.x",
            },
            shared: self.shared.path().to_path_buf(),
            moto_port: self.moto.port,
            ec2_port: self.moto.server_port(),
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
    /// Its private IP (`local-ipv4`), a loopback address of the cloud's block.
    pub private_ip: Ipv4Addr,
    kubernetes_version: String,
    containerd_series: &'static str,
    shared: PathBuf,
    moto_port: u16,
    ec2_port: u16,
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

    /// Stops a script that runs until stopped (a unit's long-running
    /// subcommand, e.g. `node-termination`), as systemd's final SIGKILL
    /// would, and collects what it printed and logged (`success`: whether
    /// it was still running, i.e. had not failed before).
    pub fn stop(mut self) -> Boot {
        let running = self
            .child
            .try_wait()
            .expect("wait for the script")
            .is_none();
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.node.collect(running)
    }
}

impl NodeSandbox {
    /// Starts the script as cloud-init's runcmd would. Callable again on the
    /// same node: a reboot or a stop/start keeps the root and the instance
    /// (see [`NodeSandbox::power_off`] and [`NodeSandbox::power_on`]).
    pub fn spawn(&self) -> Running<'_> {
        self.spawn_with(&[])
    }

    /// Starts the script with arguments (its subcommands, e.g. `leave`,
    /// `backup`, `renew-certificates`), with the same environment.
    pub fn spawn_with(&self, arguments: &[&str]) -> Running<'_> {
        let script = under(&self.root, self.bootstrap.script);
        let stdout = fs::File::create(self.directory.path().join("stdout")).expect("stdout file");
        let stderr = fs::File::create(self.directory.path().join("stderr")).expect("stderr file");
        let mut command = self.command(&script, arguments);
        command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        Running {
            node: self,
            child: command.spawn().expect("the bootstrap script starts"),
        }
    }

    /// Runs one of the stand-ins (`kubeadm`, `kubectl`, ...) on this node,
    /// as the script would, with the same environment: for tests of a
    /// stand-in's own rules.
    pub fn run_stand_in(&self, name: &str, arguments: &[&str]) -> std::process::Output {
        let mut command = self.command(&self.shared.join("stubs").join(name), arguments);
        command
            .stdin(Stdio::null())
            .output()
            .expect("the stand-in runs")
    }

    /// `program arguments...` as the script's user, in the node's environment.
    fn command(&self, program: &Path, arguments: &[&str]) -> Command {
        let mut command = if running_as_root() {
            let setpriv = tools::require("setpriv", "apt-get install -y util-linux");
            let mut command = Command::new(setpriv);
            command
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(program)
                .args(arguments);
            command
        } else {
            let mut command = Command::new(program);
            command.args(arguments);
            command
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
            .env("SANDBOX_PRIVATE_IP", self.private_ip.to_string())
            .env(
                "SANDBOX_REAL_ETCD",
                tools::require("etcd", "apt-get install -y etcd-server"),
            )
            .env("SANDBOX_MOTO_PORT", self.moto_port.to_string())
            .env("SANDBOX_EC2_PORT", self.ec2_port.to_string())
            .env(
                "SANDBOX_REAL_CURL",
                tools::require("curl", "apt-get install -y curl"),
            )
            .env("SANDBOX_REAL_SLEEP", tools::require("sleep", "coreutils"))
            .env("SANDBOX_KUBERNETES_VERSION", &self.kubernetes_version)
            .env("SANDBOX_CONTAINERD_SERIES", self.containerd_series);
        command
    }

    /// Runs the script to the end.
    pub fn boot(&self) -> Boot {
        self.spawn().wait()
    }

    /// Runs the script with arguments to the end (e.g. `["leave"]`).
    pub fn run(&self, arguments: &[&str]) -> Boot {
        self.spawn_with(arguments).wait()
    }

    /// What IMDS answers for `autoscaling/target-lifecycle-state`
    /// (`InService` at launch; a test sets `Terminated` before powering a
    /// node off for good); `None` answers 404, as for an instance in no
    /// auto scaling group.
    pub fn set_lifecycle_state(&self, state: Option<&str>) {
        let file = self.directory.path().join("lifecycle-state");
        match state {
            Some(state) => fs::write(&file, state).expect("lifecycle state"),
            None => {
                let _ = fs::remove_file(&file);
            }
        }
    }

    /// Powers the instance off: its processes (its etcd member) stop; its
    /// root (disk) stays. The script itself is not run: a test runs the
    /// script's shutdown work (e.g. `run(&["leave"])`) first if it wants it.
    pub fn power_off(&self) {
        let pid_file = self
            .shared
            .join("etcd-pids")
            .join(self.private_ip.to_string());
        if let Ok(pid) = fs::read_to_string(&pid_file) {
            crate::etcd::kill_and_wait(pid.trim());
            let _ = fs::remove_file(pid_file);
        }
    }

    /// Powers the instance on: systemd starts the enabled kubelet (a
    /// `systemctl enable [--now] kubelet` in the commands log), which starts
    /// the static pods in `/etc/kubernetes/manifests` (the etcd member).
    /// Nothing else runs: the test runs the script (`spawn`/`boot`) as the
    /// image's boot would.
    pub fn power_on(&self) {
        let kubelet_enabled = self.commands().iter().any(|line| {
            line == "systemctl enable kubelet" || line == "systemctl enable --now kubelet"
        });
        let manifest = under(&self.root, "/etc/kubernetes/manifests/etcd.yaml");
        if kubelet_enabled && manifest.exists() {
            let helper = self.shared.join("stubs/sandbox-etcd-member");
            // The member runs as the script's user, who must be able to
            // stop it again (kubeadm reset, a later init).
            let mut command = if running_as_root() {
                let mut command =
                    Command::new(tools::require("setpriv", "apt-get install -y util-linux"));
                command
                    .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                    .arg(helper);
                command
            } else {
                Command::new(helper)
            };
            let output = command
                .arg("run")
                .arg(&manifest)
                .arg(&self.root)
                .arg(self.shared.join("etcd-pids"))
                .arg(self.shared.join("etcd-members.log"))
                .env("SANDBOX_REAL_SLEEP", tools::require("sleep", "coreutils"))
                .env(
                    "SANDBOX_REAL_ETCD",
                    tools::require("etcd", "apt-get install -y etcd-server"),
                )
                .output()
                .expect("the kubelet stand-in runs");
            assert!(
                output.status.success(),
                "the etcd static pod of {} did not start: {}",
                self.instance_id,
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    /// When this node's control-plane `kubeadm join` ran, as the kubeadm
    /// stand-in logged it: (start, end) in Unix milliseconds.
    pub fn control_plane_join_window(&self) -> Option<(u64, u64)> {
        let stamp = |prefix: &str| {
            self.commands()
                .iter()
                .find_map(|line| line.strip_prefix(prefix)?.trim().parse::<u64>().ok())
        };
        Some((stamp("kubeadm-join start ")?, stamp("kubeadm-join end ")?))
    }

    /// Makes a recorded command (`apt-get`, `dnf`, ...) fail on this node
    /// from now on, as a package mirror that keeps failing would.
    pub fn fail_command(&self, name: &str) {
        let folder = self.directory.path().join("fail");
        fs::create_dir_all(&folder).expect("fail folder");
        fs::write(folder.join(name), "").expect("fail marker");
        give_to_sandbox_user(self.directory.path());
    }

    /// Whether this node's etcd member runs.
    pub fn etcd_running(&self) -> bool {
        self.shared
            .join("etcd-pids")
            .join(self.private_ip.to_string())
            .exists()
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

    /// Writes a file into the node's root (by its absolute path on a real
    /// node), owned by the user the script runs as.
    pub fn write(&self, path: &str, contents: &str) {
        let file = under(&self.root, path);
        fs::create_dir_all(file.parent().expect("parent")).expect("directories");
        fs::write(&file, contents).expect("write into the sandbox");
        give_to_sandbox_user(&self.root);
    }

    /// Makes the node's local API server (`https://127.0.0.1:6443`, which
    /// the curl stand-in asks for `/metrics`) be the stand-in at `url`
    /// (`http://127.0.0.1:PORT`, [`crate::kubernetes_api::FakeApiServer::url`]).
    pub fn serve_local_api_server(&self, url: &str) {
        fs::write(self.directory.path().join("api-server-url"), url).expect("API server URL");
        give_to_sandbox_user(self.directory.path());
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
        ("ctr".to_string(), include_str!("stubs/ctr.sh")),
        ("podman".to_string(), include_str!("stubs/podman.sh")),
        ("curl".to_string(), include_str!("stubs/curl.sh")),
        ("gpg".to_string(), include_str!("stubs/gpg.sh")),
        ("kubeadm".to_string(), include_str!("stubs/kubeadm.sh")),
        ("kubectl".to_string(), include_str!("stubs/kubectl.sh")),
        ("sleep".to_string(), include_str!("stubs/sleep.sh")),
        ("systemctl".to_string(), include_str!("stubs/systemctl.sh")),
        ("uname".to_string(), include_str!("stubs/uname.sh")),
        ("sandbox-etcd-member".to_string(), MEMBER_HELPER),
    ];
    for name in RECORDING_STUBS {
        stub_files.push((name.to_string(), include_str!("stubs/record.sh")));
    }
    for (name, text) in stub_files {
        let path = stubs.join(name);
        fs::write(&path, text).expect("stub");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("stub mode");
    }
    // What `ctr images mount` of the etcd image puts in usr/local/bin: the
    // real etcdctl and, as etcd 3.4 has no etcdutl, a wrapper for it.
    let image = shared.join("etcd-image");
    fs::create_dir_all(&image).expect("etcd image");
    let etcdutl = image.join("etcdutl");
    fs::write(&etcdutl, include_str!("stubs/etcdutl.sh")).expect("etcdutl");
    fs::set_permissions(&etcdutl, fs::Permissions::from_mode(0o755)).expect("etcdutl mode");
    std::os::unix::fs::symlink(
        tools::require("etcdctl", "apt-get install -y etcd-client"),
        image.join("etcdctl"),
    )
    .expect("etcdctl link");
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
            "operator-crds.yaml",
            include_str!("fixtures/operator-crds.yaml"),
        ),
        (
            "tigera-operator.yaml",
            include_str!("fixtures/tigera-operator.yaml"),
        ),
        (
            "windows-kube-proxy.yml",
            include_str!("fixtures/windows-kube-proxy.yml"),
        ),
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

/// The text of every `<tag>...</tag>` in an XML response, in order.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut values = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        rest = &rest[start + open.len()..];
        let Some(end) = rest.find(&close) else { break };
        values.push(rest[..end].to_string());
        rest = &rest[end..];
    }
    values
}

impl Drop for FakeCloud {
    /// Kills every etcd member the stand-ins (or [`FakeCloud::start_etcd`]) started.
    fn drop(&mut self) {
        if let Ok(entries) = fs::read_dir(self.shared.path().join("etcd-pids")) {
            for entry in entries.flatten() {
                if let Ok(pid) = fs::read_to_string(entry.path()) {
                    crate::etcd::kill_and_wait(pid.trim());
                }
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
