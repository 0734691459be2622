//! A REAL etcd cluster for tests: Debian's `etcd-server` (3.4) members with
//! TLS and client-certificate authentication on the client and the peer
//! ports, as kubeadm runs a stacked etcd.
//!
//! Why real: the node bootstrap heals etcd membership, takes snapshots and
//! restores them; a stand-in etcd would only echo what the script expects.
//! Each member listens on its own loopback address `127.A.B.C` with the
//! real ports 2379 (client) and 2380 (peer), so a script can match a
//! member's peer URL against an instance's private IP exactly as on AWS.
//! Linux answers on all of 127.0.0.0/8 without configuration.
//!
//! Parallel tests never share addresses: every cluster (and every
//! [`crate::sandbox::FakeCloud`]) reserves an [`AddressBlock`] `127.A.B.0/24`
//! with an exclusive lock on a file in the temporary directory (released
//! when the block is dropped, or by the kernel if the test process dies),
//! and checks that ports 2379 and 2380 of the addresses it hands out are
//! free; otherwise it moves on to another block.
//!
//! Members are started by the same helper the sandbox's kubeadm stand-in
//! uses (`stubs/etcd-member.sh`): kubeadm's certificate layout
//! (`pki/etcd/{ca,server,peer,healthcheck-client}`), kubeadm's etcd flags,
//! members named as kubeadm names them (the node name, `ip-127-A-B-C`).
//! Dropping the cluster kills every process it started.

use std::fs::{self, File};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

use crate::tools;

/// The helper that creates certificates and runs members (also a sandbox stub).
pub(crate) const MEMBER_HELPER: &str = include_str!("sandbox/stubs/etcd-member.sh");

/// The first host number handed out in a block (`127.A.B.10`); lower ones
/// are left alone.
const FIRST_HOST: u8 = 10;
/// The last host number handed out in a block.
const LAST_HOST: u8 = 60;

/// A `127.A.B.0/24` block reserved by this process until dropped.
pub struct AddressBlock {
    a: u8,
    b: u8,
    next_host: AtomicU32,
    _lock: File,
}

impl std::fmt::Debug for AddressBlock {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "AddressBlock({})", self.cidr())
    }
}

impl AddressBlock {
    /// Reserves a block no other test (in this or another process) holds,
    /// whose etcd ports are free.
    pub fn reserve() -> AddressBlock {
        let directory = std::env::temp_dir().join("skiff-test-address-blocks");
        fs::create_dir_all(&directory).expect("address block lock directory");
        // Anyone may lock: tests run as root and as other users.
        let _ = fs::set_permissions(&directory, fs::Permissions::from_mode(0o1777));
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|time| time.subsec_nanos())
            .unwrap_or(0)
            ^ std::process::id().wrapping_mul(2_654_435_761);
        // 127.1.0.0 to 127.254.255.0: never 127.0.0.0/16, where the
        // local servers (moto, the API stand-in) listen on 127.0.0.1.
        let blocks = 254 * 256;
        for attempt in 0..blocks {
            let index = (seed as usize + attempt * 7919) % blocks;
            let a = (index / 256 + 1) as u8;
            let b = (index % 256) as u8;
            let path = directory.join(format!("127.{a}.{b}.lock"));
            let Ok(file) = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
            else {
                continue;
            };
            let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o666));
            if file.try_lock().is_err() {
                continue;
            }
            let block = AddressBlock {
                a,
                b,
                next_host: AtomicU32::new(u32::from(FIRST_HOST)),
                _lock: file,
            };
            if (FIRST_HOST..=LAST_HOST).all(|host| block.ports_free(block.address(host))) {
                return block;
            }
        }
        panic!("no free 127.A.B.0/24 block for etcd ports 2379/2380");
    }

    fn ports_free(&self, address: Ipv4Addr) -> bool {
        [2379, 2380]
            .iter()
            .all(|port| TcpListener::bind((address, *port)).is_ok())
    }

    /// `127.A.B.host`.
    pub fn address(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, self.a, self.b, host)
    }

    /// The next unused address of the block (`127.A.B.10`, `.11`, ...).
    pub fn next_address(&self) -> Ipv4Addr {
        let host = self.next_host.fetch_add(1, Ordering::SeqCst);
        assert!(
            host <= u32::from(LAST_HOST),
            "address block {} is used up",
            self.cidr()
        );
        self.address(host as u8)
    }

    /// `127.A.B.0/24`, the subnet of the block.
    pub fn cidr(&self) -> String {
        format!("127.{}.{}.0/24", self.a, self.b)
    }

    /// `127.A.0.0/16`, a VPC that holds the block (moto accepts /16 to /28).
    pub fn vpc_cidr(&self) -> String {
        format!("127.{}.0.0/16", self.a)
    }
}

/// kubeadm's node name for an instance: its private DNS name's host part,
/// `ip-127-0-5-11` for 127.0.5.11.
pub fn node_name(address: Ipv4Addr) -> String {
    format!("ip-{}", address.to_string().replace('.', "-"))
}

/// A certificate and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificatePair {
    /// The PEM certificate.
    pub certificate: PathBuf,
    /// The PEM private key.
    pub key: PathBuf,
}

/// One member of an [`EtcdCluster`].
#[derive(Debug, Clone)]
pub struct EtcdMember {
    /// The member's (and its node's) name, `ip-127-A-B-C`.
    pub name: String,
    /// Its loopback address.
    pub address: Ipv4Addr,
    /// Its node root: `etc/kubernetes/pki/etcd/` and `var/lib/etcd`.
    pub root: PathBuf,
}

impl EtcdMember {
    /// `https://IP:2379`.
    pub fn client_url(&self) -> String {
        format!("https://{}:2379", self.address)
    }

    /// `https://IP:2380`.
    pub fn peer_url(&self) -> String {
        format!("https://{}:2380", self.address)
    }

    /// Its data directory (`<root>/var/lib/etcd`).
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("var/lib/etcd")
    }
}

/// A member as `etcdctl member list` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedMember {
    /// The member ID in hex, as etcdctl prints it and `member remove` takes it.
    pub id: String,
    /// `started` or `unstarted`.
    pub status: String,
    /// Empty until the member started.
    pub name: String,
    /// Its peer URL.
    pub peer_url: String,
    /// Its client URL, empty until it started.
    pub client_url: String,
    /// Whether it is a non-voting learner.
    pub is_learner: bool,
}

/// Parses `etcdctl member list -w simple`.
pub fn parse_member_list(text: &str) -> Vec<ListedMember> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            assert_eq!(fields.len(), 6, "unexpected member list line: {line}");
            ListedMember {
                id: fields[0].to_string(),
                status: fields[1].to_string(),
                name: fields[2].to_string(),
                peer_url: fields[3].to_string(),
                client_url: fields[4].to_string(),
                is_learner: fields[5] == "true",
            }
        })
        .collect()
}

/// Where a cluster's members live and what they trust.
#[derive(Debug, Clone)]
pub struct EtcdPlacement {
    /// The etcd CA (e.g. a fake cloud's `pki/etcd-ca.crt`/`.key`).
    pub ca: CertificatePair,
    /// One address per member.
    pub addresses: Vec<Ipv4Addr>,
    /// Where member PIDs are recorded (`<dir>/<IP>`); whoever owns the
    /// directory may kill them too.
    pub pid_dir: PathBuf,
    /// A file to write the members' client URLs to, one a line (a fake
    /// cloud's `etcd-endpoints`, where kubeadm stand-ins find the cluster).
    pub endpoints_file: Option<PathBuf>,
}

/// A running etcd cluster, killed when dropped.
pub struct EtcdCluster {
    directory: TempDir,
    block: Option<AddressBlock>,
    ca: CertificatePair,
    client: CertificatePair,
    members: Vec<EtcdMember>,
    pid_dir: PathBuf,
    helper: PathBuf,
}

impl EtcdCluster {
    /// `size` members on a block of their own, with a new CA.
    pub fn start(size: usize) -> EtcdCluster {
        let block = AddressBlock::reserve();
        let directory = TempDir::new().expect("etcd directory");
        let ca_directory = directory.path().join("ca");
        fs::create_dir_all(&ca_directory).expect("ca directory");
        let ca = generate_ca(&ca_directory, "etcd-ca");
        let addresses = (0..size).map(|_| block.next_address()).collect();
        let pid_dir = directory.path().join("pids");
        let mut cluster = EtcdCluster::start_in(
            directory,
            EtcdPlacement {
                ca,
                addresses,
                pid_dir,
                endpoints_file: None,
            },
        );
        cluster.block = Some(block);
        cluster
    }

    /// `size` members on a block of their own, trusting an existing CA.
    pub fn start_with_ca(size: usize, ca: CertificatePair) -> EtcdCluster {
        let block = AddressBlock::reserve();
        let directory = TempDir::new().expect("etcd directory");
        let addresses = (0..size).map(|_| block.next_address()).collect();
        let pid_dir = directory.path().join("pids");
        let mut cluster = EtcdCluster::start_in(
            directory,
            EtcdPlacement {
                ca,
                addresses,
                pid_dir,
                endpoints_file: None,
            },
        );
        cluster.block = Some(block);
        cluster
    }

    /// Members placed by the caller (see [`crate::sandbox::FakeCloud::start_etcd`]).
    pub fn start_placed(placement: EtcdPlacement) -> EtcdCluster {
        EtcdCluster::start_in(TempDir::new().expect("etcd directory"), placement)
    }

    fn start_in(directory: TempDir, placement: EtcdPlacement) -> EtcdCluster {
        tools::require(
            "etcd",
            "apt-get install -y etcd-server (or scripts/install-test-deps)",
        );
        tools::require(
            "etcdctl",
            "apt-get install -y etcd-client (or scripts/install-test-deps)",
        );
        let helper = directory.path().join("sandbox-etcd-member");
        fs::write(&helper, MEMBER_HELPER).expect("helper");
        fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).expect("helper mode");
        fs::create_dir_all(&placement.pid_dir).expect("pid directory");

        let members: Vec<EtcdMember> = placement
            .addresses
            .iter()
            .map(|address| EtcdMember {
                name: node_name(*address),
                address: *address,
                root: directory.path().join(node_name(*address)),
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|member| format!("{}={}", member.name, member.peer_url()))
            .collect::<Vec<_>>()
            .join(",");

        let client_directory = directory.path().join("client");
        fs::create_dir_all(&client_directory).expect("client directory");
        let client = generate_client(&client_directory, &placement.ca);

        let cluster = EtcdCluster {
            directory,
            block: None,
            ca: placement.ca,
            client,
            members,
            pid_dir: placement.pid_dir,
            helper,
        };
        for member in cluster.members.clone() {
            let pki = member.root.join("etc/kubernetes/pki/etcd");
            fs::create_dir_all(&pki).expect("member pki");
            fs::copy(&cluster.ca.certificate, pki.join("ca.crt")).expect("ca.crt");
            fs::copy(&cluster.ca.key, pki.join("ca.key")).expect("ca.key");
            cluster.helper(&[
                "certs",
                &pki.display().to_string(),
                &member.name,
                &member.address.to_string(),
            ]);
            let manifest = member.root.join("etc/kubernetes/manifests/etcd.yaml");
            cluster.helper(&[
                "manifest",
                &manifest.display().to_string(),
                &member.name,
                &member.address.to_string(),
                "/var/lib/etcd",
                &initial_cluster,
                "new",
            ]);
        }
        for member in cluster.members.clone() {
            cluster.run_member(&member);
        }
        cluster.wait_healthy(Duration::from_secs(30));
        if let Some(file) = placement.endpoints_file {
            let text: String = cluster
                .members
                .iter()
                .map(|member| format!("{}\n", member.client_url()))
                .collect();
            fs::write(file, text).expect("endpoints file");
        }
        cluster
    }

    fn run_member(&self, member: &EtcdMember) {
        self.helper(&[
            "run",
            &member
                .root
                .join("etc/kubernetes/manifests/etcd.yaml")
                .display()
                .to_string(),
            &member.root.display().to_string(),
            &self.pid_dir.display().to_string(),
            &self
                .directory
                .path()
                .join(format!("{}.log", member.name))
                .display()
                .to_string(),
        ]);
    }

    fn helper(&self, arguments: &[&str]) {
        let output = Command::new("bash")
            .arg(&self.helper)
            .args(arguments)
            .env("SANDBOX_REAL_SLEEP", tools::require("sleep", "coreutils"))
            .env(
                "SANDBOX_REAL_ETCD",
                tools::require("etcd", "apt-get install -y etcd-server"),
            )
            .output()
            .expect("the etcd member helper runs");
        assert!(
            output.status.success(),
            "sandbox-etcd-member {arguments:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Waits until every live member answers `endpoint health`.
    pub fn wait_healthy(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let output = self.etcdctl(&["endpoint", "health"]);
            if output.status.success() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "etcd did not become healthy:\n{}{}\n{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The members' logs, for failure messages.
    pub fn logs(&self) -> String {
        self.members
            .iter()
            .map(|member| {
                let log = self.directory.path().join(format!("{}.log", member.name));
                let text = fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                format!(
                    "--- {} (last lines)\n{}",
                    member.name,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The CA every member and client certificate is signed by.
    pub fn ca(&self) -> &CertificatePair {
        &self.ca
    }

    /// A clientAuth certificate signed by the CA (CN `skiff-test-client`).
    pub fn client_cert(&self) -> &CertificatePair {
        &self.client
    }

    /// The members, in start order (killed ones included).
    pub fn members(&self) -> &[EtcdMember] {
        &self.members
    }

    /// The block the cluster reserved, when it has one of its own.
    pub fn block(&self) -> Option<&AddressBlock> {
        self.block.as_ref()
    }

    /// Every member's client URL, in start order (killed ones included).
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(EtcdMember::client_url).collect()
    }

    /// The client URLs of the members whose process runs.
    pub fn live_endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|member| self.pid_dir.join(member.address.to_string()).exists())
            .map(EtcdMember::client_url)
            .collect()
    }

    /// Runs the real etcdctl (v3 API) against the live members with the
    /// client certificate; `--endpoints` may be overridden in `arguments`.
    pub fn etcdctl(&self, arguments: &[&str]) -> Output {
        let endpoints = format!("--endpoints={}", self.live_endpoints().join(","));
        let mut command = Command::new("etcdctl");
        command
            .env("ETCDCTL_API", "3")
            .arg(&endpoints)
            .arg(format!("--cacert={}", self.ca.certificate.display()))
            .arg(format!("--cert={}", self.client.certificate.display()))
            .arg(format!("--key={}", self.client.key.display()))
            .arg("--dial-timeout=2s")
            .arg("--command-timeout=5s")
            .args(arguments);
        command.output().expect("etcdctl runs")
    }

    fn etcdctl_ok(&self, arguments: &[&str]) -> String {
        let output = self.etcdctl(arguments);
        assert!(
            output.status.success(),
            "etcdctl {arguments:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Writes a key.
    pub fn put(&self, key: &str, value: &str) {
        self.etcdctl_ok(&["put", key, value]);
    }

    /// Reads a key (a linearizable read: needs quorum).
    pub fn get(&self, key: &str) -> Option<String> {
        let text = self.etcdctl_ok(&["get", key, "--print-value-only"]);
        let value = text.strip_suffix('\n').unwrap_or(&text);
        (!text.is_empty()).then(|| value.to_string())
    }

    /// The membership as the cluster reports it.
    pub fn member_list(&self) -> Vec<ListedMember> {
        parse_member_list(&self.etcdctl_ok(&["member", "list", "-w", "simple"]))
    }

    /// Kills a member's process (SIGKILL, a crash); its data stays.
    pub fn kill(&self, index: usize) {
        let member = &self.members[index];
        let pid_file = self.pid_dir.join(member.address.to_string());
        if let Ok(pid) = fs::read_to_string(&pid_file) {
            kill_and_wait(pid.trim());
            let _ = fs::remove_file(pid_file);
        }
    }

    /// Starts a killed member again from its data directory.
    pub fn restart(&self, index: usize) {
        let member = self.members[index].clone();
        self.run_member(&member);
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for index in 0..self.members.len() {
            self.kill(index);
        }
    }
}

/// SIGKILLs a process and waits (briefly) until it is gone.
pub(crate) fn kill_and_wait(pid: &str) {
    let _ = Command::new("kill").args(["-9", pid]).status();
    for _ in 0..100 {
        let alive = Command::new("kill")
            .args(["-0", pid])
            .stderr(std::process::Stdio::null())
            .status()
            .map(|status| status.success())
            .unwrap_or(false);
        if !alive {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn openssl(directory: &Path, arguments: &[&str]) {
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
}

/// A self-signed ECDSA P-256 CA, `<name>.crt` and `<name>.key` in `directory`.
pub(crate) fn generate_ca(directory: &Path, name: &str) -> CertificatePair {
    openssl(
        directory,
        &[
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
            &format!("/CN={name}"),
            "-days",
            "2",
        ],
    );
    CertificatePair {
        certificate: directory.join(format!("{name}.crt")),
        key: directory.join(format!("{name}.key")),
    }
}

pub(crate) fn generate_client(directory: &Path, ca: &CertificatePair) -> CertificatePair {
    openssl(
        directory,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
            "-subj",
            "/CN=skiff-test-client",
        ],
    );
    fs::write(
        directory.join("client.ext"),
        "extendedKeyUsage=clientAuth\n",
    )
    .expect("extensions");
    openssl(
        directory,
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            &ca.certificate.display().to_string(),
            "-CAkey",
            &ca.key.display().to_string(),
            "-CAcreateserial",
            "-CAserial",
            "client.srl",
            "-days",
            "2",
            "-extfile",
            "client.ext",
            "-out",
            "client.crt",
        ],
    );
    CertificatePair {
        certificate: directory.join("client.crt"),
        key: directory.join("client.key"),
    }
}
