//! The state-store objects a booting node reads or writes, relative to the
//! cluster's prefix.
//!
//! This is the contract between three places that must agree: the state
//! crate writes these objects, the providers crate grants each node role
//! access to exactly these keys, and the bootstrap script reads them. Keeping
//! the names here (and rendering the script from them) means a rename
//! cannot silently leave one of the three behind.

use skiff_api::InstanceGroupRole;

/// The cluster CA certificate (PEM). Workers hash it to pin the API server.
pub const CA_CERTIFICATE: &str = "pki/ca.crt";
/// The cluster CA private key (PEM).
pub const CA_KEY: &str = "pki/ca.key";
/// The etcd CA certificate (PEM).
pub const ETCD_CA_CERTIFICATE: &str = "pki/etcd-ca.crt";
/// The etcd CA private key (PEM).
pub const ETCD_CA_KEY: &str = "pki/etcd-ca.key";
/// The front-proxy CA certificate (PEM).
pub const FRONT_PROXY_CA_CERTIFICATE: &str = "pki/front-proxy-ca.crt";
/// The front-proxy CA private key (PEM).
pub const FRONT_PROXY_CA_KEY: &str = "pki/front-proxy-ca.key";
/// The service-account signing key (PEM).
pub const SERVICE_ACCOUNT_KEY: &str = "pki/sa.key";
/// The service-account verification key (PEM).
pub const SERVICE_ACCOUNT_PUBLIC_KEY: &str = "pki/sa.pub";
/// The kubeadm bootstrap token, one line such as `abcdef.0123456789abcdef`.
pub const BOOTSTRAP_TOKEN: &str = "secrets/bootstrap-token";
/// The API server's `EncryptionConfiguration` (`apiserver.config.k8s.io/v1`):
/// Secrets are written with the first `secretbox` key and read with any
/// listed key, or as plain text (`identity`, for Secrets written before
/// encryption). Generated with the PKI; read by control-plane nodes, which
/// keep `/etc/kubernetes/encryption/config.yaml` equal to it
/// (`sync-encryption-config`); changed only by `skiff rotate encryption-key`.
pub const ENCRYPTION_CONFIG: &str = "secrets/encryption-config.yaml";
/// Where skiff versions before the etcd prefix kept [`INIT_LOCK`]. A node
/// still reads it: a cluster initialized then must never be initialized again.
pub const LEGACY_INIT_LOCK: &str = "bootstrap/init-lock";
/// The folder of bootstrap scripts, `<folder><sha256>`: the script a node's
/// user-data loader fetches, checks against the SHA-256 in its user-data and
/// runs (`skiff_templates::ec2_user_data`). Written by skiff before any
/// instance launches; never overwritten (the name is the content's hash).
pub const SCRIPTS_FOLDER: &str = "scripts/";
/// Every object of [`SCRIPTS_FOLDER`], as an IAM resource pattern.
pub const SCRIPTS: &str = "scripts/*";
/// The only folder control-plane nodes write: the init lock, the leases,
/// the etcd backups, the restore request and the nodes' status objects.
pub const ETCD_FOLDER: &str = "etcd/";
/// Created (never overwritten) by the one control-plane instance that runs
/// the cluster's first `kubeadm init`; holds that instance's ID. Its
/// existence means "this cluster has data": a control-plane node that finds
/// no live etcd member then restores a backup instead of initializing.
pub const INIT_LOCK: &str = "etcd/init-lock";
/// The lease that lets one control-plane node at a time initialize,
/// restore or join etcd.
pub const MEMBERS_LEASE: &str = "etcd/leases/members";
/// The lease held by the control-plane node that writes the backups.
pub const BACKUP_LEASE: &str = "etcd/leases/backup";
/// The lease that lets one control-plane node at a time renew its certificates.
pub const CERTIFICATES_LEASE: &str = "etcd/leases/certificates";
/// The lease that lets one external etcd member at a time renew its
/// certificates and restart (the control plane's lease is separate: an API
/// server restarting never costs etcd a vote).
pub const MEMBER_CERTIFICATES_LEASE: &str = "etcd/leases/member-certificates";
/// The folder of the external etcd members' health reports, one JSON object
/// per member (`<member name>`): `{"member", "instance", "healthy" (its
/// `etcdctl endpoint health`, which needs the cluster's quorum),
/// "votingMembers" (how many voting members its member list has), "checked"
/// (RFC 3339 UTC)}`. Written every minute by `report-health`; `skiff
/// rolling-update` reads them before it takes a member down.
pub const HEALTH_FOLDER: &str = "etcd/health/";
/// The folder of etcd snapshots: `<time>-rev<revision>-<instance>.db`.
pub const BACKUPS_FOLDER: &str = "etcd/backups/";
/// The folder of the control-plane nodes' certificate reports: one JSON
/// object per instance (`<instance-id>`), written after the bootstrap and by
/// each daily certificate check, listing every certificate kubeadm manages
/// on that node and when it expires. `skiff validate cluster` reads them.
pub const CERTIFICATES_FOLDER: &str = "etcd/certificates/";
/// The folder of the control-plane nodes' encryption reports, one JSON object
/// per instance (`<instance-id>`): `{"instance", "sha256" (lowercase hex of
/// the bytes of the node's `/etc/kubernetes/encryption/config.yaml`),
/// "loaded" (whether the node's API server reported running exactly those
/// bytes), "checked" (RFC 3339 UTC)}`. Written every minute by
/// `sync-encryption-config`; `skiff rotate encryption-key` waits on them.
pub const ENCRYPTION_REPORTS_FOLDER: &str = "etcd/encryption/";
/// Written by `skiff restore cluster`: the ID of the backup the next control
/// plane that starts with no live member restores (then deletes this object).
/// With external etcd, every member restores it (each member's replacement
/// finds no restored cluster to join); the last to start deletes it.
pub const RESTORE_REQUEST: &str = "etcd/restore-request";
/// The lease held by the one control-plane node that performs a cluster-wide
/// upgrade step: raising the cluster's stored ClusterConfiguration
/// (`kubernetesVersion` in `kube-system/kubeadm-config`) before it joins at
/// the new version.
pub const UPGRADE_LEASE: &str = "etcd/leases/upgrade";
/// The lease held by the one control-plane node whose node termination
/// processor reads the queue.
pub const NODE_TERMINATION_LEASE: &str = "etcd/leases/node-termination";
/// The folder of the control-plane nodes' status objects,
/// `<folder><instance-id>`: JSON naming the instance, its node, its
/// Kubernetes version, the bootstrap phase (`bootstrapping`, `upgrading`,
/// `upgraded`, `joined`, `initialized`, `restored`, `failed`), a sentence
/// (why, when it failed) and the time. Written at each phase change.
pub const STATUS_FOLDER: &str = "etcd/status/";

/// The folder of the cluster's addons (`spec.addons`), written by skiff
/// (`update cluster --yes`, the engine's apply) and read by control-plane
/// nodes: one manifest per enabled addon, [`addon_manifest`], and
/// [`ADDONS_INDEX`]. kops's channels model: the control plane applies what
/// the store holds, so an addon change needs no new node.
pub const ADDONS_FOLDER: &str = "addons/";
/// Every object of [`ADDONS_FOLDER`], as an IAM resource pattern.
pub const ADDONS: &str = "addons/*";
/// The addons' index ([`AddonIndex`]): for each enabled addon, its release,
/// the Kubernetes minor it is for and the SHA-256 of its manifest. Written
/// after the manifests it names.
pub const ADDONS_INDEX: &str = "addons/index";
/// The lease one control-plane node at a time holds while it applies or
/// deletes addons, so each manifest is applied once across the nodes.
pub const ADDONS_LEASE: &str = "etcd/leases/addons";
/// The folder of the manifests the control plane last applied,
/// `<folder><name>.yaml`, written by the node that applied them: what a
/// node deletes when an addon is turned off (the store's own copy is gone by
/// then).
pub const APPLIED_ADDONS_FOLDER: &str = "etcd/addons/";

/// What the control plane holds back or could not do with the addons, as
/// the node that last worked on them found it ([`AddonStatus`]): written
/// by the addons lease's holder at every run (empty when all is applied),
/// read by skiff's preview and plan, which show each entry as a warning.
pub const ADDONS_STATUS: &str = "etcd/addons/status";

/// What a [`AddonStatusEntry`] says of its addon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddonState {
    /// Not applied yet, on purpose (the version gate): `held`.
    Held,
    /// Applying or deleting it failed: `failed`.
    Failed,
}

/// One line of [`ADDONS_STATUS`]:
/// `held|failed NAME VERSION MINOR SHA256 REASON...`, with `-` for the
/// release, minor and SHA-256 where none applies (an addon being deleted,
/// the index itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddonStatusEntry {
    /// Held or failed.
    pub state: AddonState,
    /// The addon (or `index`).
    pub name: String,
    /// Its release in the index, or `-`.
    pub version: String,
    /// The Kubernetes minor its manifest is for, or `-`.
    pub kubernetes_minor: String,
    /// The SHA-256 of the manifest the entry is about, or `-`: an entry
    /// about another manifest than the index's is stale.
    pub sha256: String,
    /// Why, in the node's words.
    pub reason: String,
}

/// [`ADDONS_STATUS`]: comment lines (who wrote it, when), then one
/// [`AddonStatusEntry`] a line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddonStatus {
    /// The first comment line, e.g. `written by i-0abc at 2026-12-07T08:00:00Z`.
    pub written: String,
    /// The entries.
    pub entries: Vec<AddonStatusEntry>,
}

impl AddonStatus {
    /// Reads the node's text; an unknown line is an error naming it.
    pub fn parse(text: &str) -> Result<AddonStatus, String> {
        let mut status = AddonStatus::default();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if let Some(comment) = line.strip_prefix('#') {
                if status.written.is_empty() {
                    status.written = comment.trim().to_string();
                }
                continue;
            }
            if line.is_empty() {
                continue;
            }
            let mut words = line.splitn(6, ' ');
            let mut next = || words.next().unwrap_or_default().to_string();
            let (state, name, version, kubernetes_minor, sha256, reason) =
                (next(), next(), next(), next(), next(), next());
            let state = match state.as_str() {
                "held" => AddonState::Held,
                "failed" => AddonState::Failed,
                _ => {
                    return Err(format!(
                        "line {}: expected held|failed NAME VERSION MINOR SHA256 REASON, found {line:?}",
                        number + 1
                    ))
                }
            };
            if reason.is_empty() {
                return Err(format!("line {}: no reason in {line:?}", number + 1));
            }
            status.entries.push(AddonStatusEntry {
                state,
                name,
                version,
                kubernetes_minor,
                sha256,
                reason,
            });
        }
        Ok(status)
    }
}

/// The key of an addon's manifest, e.g. `addons/metrics-server.yaml`.
pub fn addon_manifest(name: &str) -> String {
    format!("{ADDONS_FOLDER}{name}.yaml")
}

/// One line of [`ADDONS_INDEX`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddonIndexEntry {
    /// The addon's name, e.g. `metrics-server` (`skiff_api::Addon::name`).
    pub name: String,
    /// Its release, e.g. `v0.8.0`.
    pub version: String,
    /// The Kubernetes minor its manifest is for, e.g. `1.34`: a node applies
    /// it only once the cluster's stored version has that minor.
    pub kubernetes_minor: String,
    /// The SHA-256 of its manifest, lowercase hex.
    pub sha256: String,
}

/// [`ADDONS_INDEX`]: plain text the bootstrap script reads with `read`, a
/// comment line then `NAME VERSION KUBERNETES-MINOR SHA256` per addon, in
/// apply order ([`skiff_api::Addon::ALL`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddonIndex {
    /// The addons, in apply order.
    pub entries: Vec<AddonIndexEntry>,
}

impl AddonIndex {
    /// The index's text.
    pub fn render(&self) -> String {
        let mut entries = self.entries.clone();
        entries.sort_by_key(|entry| apply_rank(&entry.name));
        let mut text =
            String::from("# skiff addons: name, release, Kubernetes minor, manifest sha256\n");
        for entry in &entries {
            text.push_str(&format!(
                "{} {} {} {}\n",
                entry.name, entry.version, entry.kubernetes_minor, entry.sha256
            ));
        }
        text
    }

    /// Reads an index's text; an error names the line.
    pub fn parse(text: &str) -> Result<AddonIndex, String> {
        let mut entries = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let [name, version, kubernetes_minor, sha256] = words[..] else {
                return Err(format!(
                    "line {}: expected NAME VERSION KUBERNETES-MINOR SHA256, found {line:?}",
                    number + 1
                ));
            };
            if sha256.len() != 64 || !sha256.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                return Err(format!("line {}: {sha256:?} is not a SHA-256", number + 1));
            }
            entries.push(AddonIndexEntry {
                name: name.to_string(),
                version: version.to_string(),
                kubernetes_minor: kubernetes_minor.to_string(),
                sha256: sha256.to_string(),
            });
        }
        Ok(AddonIndex { entries })
    }

    /// The entry of `name`, if any.
    pub fn get(&self, name: &str) -> Option<&AddonIndexEntry> {
        self.entries.iter().find(|entry| entry.name == name)
    }

    /// Sets `entry` (replacing the one of its name).
    pub fn set(&mut self, entry: AddonIndexEntry) {
        self.remove(&entry.name);
        self.entries.push(entry);
        self.entries.sort_by_key(|entry| apply_rank(&entry.name));
    }

    /// Removes the entry of `name`.
    pub fn remove(&mut self, name: &str) {
        self.entries.retain(|entry| entry.name != name);
    }
}

/// The context the addon manifests of a cluster are rendered in, made in
/// this one place for the planner, the engine and the tests.
/// `control_plane_nodes` is the control-plane groups' sizes summed (the
/// addons on control-plane nodes run one replica per node).
pub fn addon_context<'a>(
    cluster_name: &'a str,
    region: &'a str,
    kubernetes_version: &'a skiff_api::KubernetesVersion,
    addons: &'a skiff_api::AddonsSpec,
    control_plane_nodes: u32,
) -> crate::AddonContext<'a> {
    crate::AddonContext {
        cluster_name,
        region,
        kubernetes_version,
        addons,
        control_plane_nodes,
    }
}

/// Where an addon comes in [`skiff_api::Addon::ALL`] (unknown names last).
fn apply_rank(name: &str) -> usize {
    skiff_api::Addon::ALL
        .iter()
        .position(|addon| addon.name() == name)
        .unwrap_or(usize::MAX)
}

/// The progress of `skiff rotate encryption-key` (JSON: the last phase
/// completed, the key names, who started it and when), for resuming.
/// Written by skiff only; nodes never read it.
pub const ENCRYPTION_ROTATION: &str = "secrets/encryption-rotation";

/// One piece of shared control-plane key material and where kubeadm expects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PkiFile {
    /// The object key under the cluster prefix.
    pub key: &'static str,
    /// The absolute path on the node.
    pub path: &'static str,
    /// The file mode: 0600 for private keys, 0644 for certificates and public keys.
    pub mode: &'static str,
}

/// The key material every control-plane node places in `/etc/kubernetes/pki`
/// before `kubeadm init` or `kubeadm join --control-plane`, so that every
/// member of the control plane uses skiff's CAs (kubeadm's "manual
/// certificate distribution").
pub const CONTROL_PLANE_PKI: [PkiFile; 8] = [
    PkiFile {
        key: CA_CERTIFICATE,
        path: "/etc/kubernetes/pki/ca.crt",
        mode: "0644",
    },
    PkiFile {
        key: CA_KEY,
        path: "/etc/kubernetes/pki/ca.key",
        mode: "0600",
    },
    PkiFile {
        key: ETCD_CA_CERTIFICATE,
        path: "/etc/kubernetes/pki/etcd/ca.crt",
        mode: "0644",
    },
    PkiFile {
        key: ETCD_CA_KEY,
        path: "/etc/kubernetes/pki/etcd/ca.key",
        mode: "0600",
    },
    PkiFile {
        key: FRONT_PROXY_CA_CERTIFICATE,
        path: "/etc/kubernetes/pki/front-proxy-ca.crt",
        mode: "0644",
    },
    PkiFile {
        key: FRONT_PROXY_CA_KEY,
        path: "/etc/kubernetes/pki/front-proxy-ca.key",
        mode: "0600",
    },
    PkiFile {
        key: SERVICE_ACCOUNT_KEY,
        path: "/etc/kubernetes/pki/sa.key",
        mode: "0600",
    },
    PkiFile {
        key: SERVICE_ACCOUNT_PUBLIC_KEY,
        path: "/etc/kubernetes/pki/sa.pub",
        mode: "0644",
    },
];

/// The objects a node of `role` reads (`s3:GetObject`); the IAM policy of the
/// role should allow exactly these keys under the cluster prefix ([`SCRIPTS`]
/// is a pattern: every bootstrap script).
pub fn objects_read_by(role: InstanceGroupRole) -> Vec<&'static str> {
    match role {
        InstanceGroupRole::ControlPlane => CONTROL_PLANE_PKI
            .iter()
            .map(|file| file.key)
            .chain([
                BOOTSTRAP_TOKEN,
                ENCRYPTION_CONFIG,
                LEGACY_INIT_LOCK,
                SCRIPTS,
                ADDONS,
            ])
            .collect(),
        InstanceGroupRole::Node => vec![CA_CERTIFICATE, BOOTSTRAP_TOKEN, SCRIPTS],
        // An external etcd member signs its own server and peer
        // certificates with the etcd CA, as §2.1.7 of the setup guide has
        // each member do with `kubeadm init phase certs`.
        InstanceGroupRole::Etcd => vec![ETCD_CA_CERTIFICATE, ETCD_CA_KEY, SCRIPTS],
        InstanceGroupRole::Bastion => Vec::new(),
    }
}

/// The objects outside its folder ([`folder_written_by`]) that a node of
/// `role` asks for while they may not exist, and must tell "absent" from
/// "forbidden": S3 answers a missing key with 404 only to a caller allowed
/// to list it (`s3:ListBucket` with the key as `s3:prefix`), with 403 to
/// anyone else (S3 API Reference, `HeadObject` and `GetObject`,
/// "Permissions"). A control-plane node probes the init lock of clusters
/// made before it moved under `etcd/` (`cluster_initialized`) and the
/// addons' index and manifests (`sync_addons`).
pub fn objects_probed_by(role: InstanceGroupRole) -> Vec<&'static str> {
    match role {
        InstanceGroupRole::ControlPlane => vec![LEGACY_INIT_LOCK, ADDONS],
        InstanceGroupRole::Node | InstanceGroupRole::Etcd | InstanceGroupRole::Bastion => {
            Vec::new()
        }
    }
}

/// The folder a node of `role` reads, lists, writes and deletes in (besides
/// [`objects_read_by`]): [`ETCD_FOLDER`] for control-plane nodes and
/// external etcd members (the backups, their leases, the restore request,
/// the certificate reports), none for the others.
pub fn folder_written_by(role: InstanceGroupRole) -> Option<&'static str> {
    match role {
        InstanceGroupRole::ControlPlane | InstanceGroupRole::Etcd => Some(ETCD_FOLDER),
        InstanceGroupRole::Node | InstanceGroupRole::Bastion => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_read_no_private_key() {
        let reads = objects_read_by(InstanceGroupRole::Node);
        assert_eq!(
            reads,
            vec!["pki/ca.crt", "secrets/bootstrap-token", "scripts/*"]
        );
        assert_eq!(folder_written_by(InstanceGroupRole::Node), None);
    }

    #[test]
    fn control_plane_reads_all_pki_and_writes_only_the_etcd_folder() {
        let reads = objects_read_by(InstanceGroupRole::ControlPlane);
        assert_eq!(reads.len(), 13);
        assert!(reads.contains(&ADDONS));
        assert!(reads.contains(&"pki/etcd-ca.key"));
        assert!(reads.contains(&ENCRYPTION_CONFIG));
        assert_eq!(
            folder_written_by(InstanceGroupRole::ControlPlane),
            Some("etcd/")
        );
        for key in [
            INIT_LOCK,
            MEMBERS_LEASE,
            BACKUP_LEASE,
            CERTIFICATES_LEASE,
            MEMBER_CERTIFICATES_LEASE,
            HEALTH_FOLDER,
            BACKUPS_FOLDER,
            RESTORE_REQUEST,
            UPGRADE_LEASE,
            STATUS_FOLDER,
            ENCRYPTION_REPORTS_FOLDER,
            NODE_TERMINATION_LEASE,
            ADDONS_LEASE,
            APPLIED_ADDONS_FOLDER,
        ] {
            assert!(
                key.starts_with(ETCD_FOLDER),
                "{key} is outside the writable folder"
            );
        }
    }

    #[test]
    fn the_addon_index_reads_back_in_apply_order() {
        let sha = "a".repeat(64);
        let mut index = AddonIndex::default();
        for name in ["metrics-server", "cloud-controller-manager"] {
            index.set(AddonIndexEntry {
                name: name.into(),
                version: "v1".into(),
                kubernetes_minor: "1.34".into(),
                sha256: sha.clone(),
            });
        }
        let text = index.render();
        assert_eq!(
            text,
            format!("# skiff addons: name, release, Kubernetes minor, manifest sha256\ncloud-controller-manager v1 1.34 {sha}\nmetrics-server v1 1.34 {sha}\n")
        );
        assert_eq!(AddonIndex::parse(&text), Ok(index.clone()));
        index.remove("metrics-server");
        assert_eq!(index.entries.len(), 1);
        assert!(AddonIndex::parse("metrics-server v1 1.34 nothex")
            .expect_err("refused")
            .contains("line 1"));
        assert_eq!(
            addon_manifest("metrics-server"),
            "addons/metrics-server.yaml"
        );
    }

    #[test]
    fn the_addons_status_reads_what_the_node_writes() {
        let text = "# written by i-0aaa at 2026-12-07T08:00:00Z\n\
            held ebs-csi-driver v1.63.1 1.35 abc waits for every kube-apiserver to run Kubernetes 1.35: n1 runs v1.34.2\n\
            failed index - - - HTTP 403 on s3:GetObject\n";
        let status = AddonStatus::parse(text).expect("parses");
        assert_eq!(status.written, "written by i-0aaa at 2026-12-07T08:00:00Z");
        assert_eq!(status.entries.len(), 2);
        assert_eq!(status.entries[0].state, AddonState::Held);
        assert_eq!(status.entries[0].kubernetes_minor, "1.35");
        assert_eq!(
            status.entries[0].reason,
            "waits for every kube-apiserver to run Kubernetes 1.35: n1 runs v1.34.2"
        );
        assert_eq!(status.entries[1].state, AddonState::Failed);
        assert_eq!(status.entries[1].sha256, "-");
        assert!(AddonStatus::parse("gone metrics-server - - - x\n")
            .expect_err("refused")
            .contains("line 1"));
        assert!(AddonStatus::parse("held metrics-server v1 1.34 abc\n").is_err());
        assert_eq!(ADDONS_STATUS, format!("{APPLIED_ADDONS_FOLDER}status"));
    }

    #[test]
    fn private_keys_are_owner_only() {
        for file in CONTROL_PLANE_PKI {
            let expected = if file.key.ends_with(".key") {
                "0600"
            } else {
                "0644"
            };
            assert_eq!(file.mode, expected, "{}", file.key);
        }
    }
}
