//! The object layout of the state store, in one place. `docs/state-store.md`
//! describes the same layout for operators; keep the two in step.
//!
//! ```text
//! <cluster>/spec.yaml                     the current spec: a Revision header, the Cluster, its InstanceGroups
//! <cluster>/history/spec/<serial>.yaml    every revision of the spec, immutable (claimed with If-None-Match: *)
//! <cluster>/state.json                    the recorded cloud state (serial, lineage, resources)
//! <cluster>/history/state/<serial>.json   the recorded state at the end of each operation, with a `change` header (who, when, command, summary)
//! <cluster>/lock.json                     the cluster lock (held while the cloud is being changed)
//! _locks/<cluster>                        a hint that <cluster>/lock.json may exist (written by its holder), so
//!                                         `get clusters` reads only the locks that may be held; not a lock itself
//! <cluster>/rollout.json                  progress of a rolling update, for resuming
//! <cluster>/pki/...                       cluster CAs and the service-account key pair (secret)
//! <cluster>/secrets/bootstrap-token       the token nodes join with (secret)
//! <cluster>/secrets/encryption-config.yaml  the API servers' EncryptionConfiguration for Secrets at rest (secret)
//! <cluster>/secrets/encryption-rotation   progress of `skiff rotate encryption-key` (key names only), for resuming
//! <cluster>/bootstrap/init-lock           legacy init marker (clusters built before etcd/init-lock); nodes still honour it
//! <cluster>/etcd/                         the one folder control-plane nodes write (their IAM role allows nothing else):
//! <cluster>/etcd/init-lock                  claimed (If-None-Match: *) by the control-plane node that ran the first kubeadm init
//! <cluster>/etcd/leases/<name>              leases serializing the nodes' members, backup and certificates work
//! <cluster>/etcd/backups/<ID>.db            etcd snapshots (SSE-S3); ID = <UTC YYYYMMDDTHHMMSSZ>-rev<revision>-<instance-id>
//! <cluster>/etcd/restore-request            the backup ID `skiff restore cluster --yes` asks the next control plane to restore
//! <cluster>/etcd/encryption/<instance-id>   which encryption configuration (sha256) the node's API server runs
//! ```
//!
//! Everything under `<cluster>/` goes with the cluster (`delete cluster`),
//! the `etcd/` folder included.

/// The current spec of a cluster.
pub fn spec(cluster: &str) -> String {
    format!("{cluster}/spec.yaml")
}

/// The folder of spec revisions.
pub fn spec_history_folder(cluster: &str) -> String {
    format!("{cluster}/history/spec/")
}

/// One spec revision. Serials are zero-padded so that keys sort in order.
pub fn spec_revision(cluster: &str, serial: u64) -> String {
    format!("{cluster}/history/spec/{serial:010}.yaml")
}

/// The recorded cloud state.
pub fn recorded_state(cluster: &str) -> String {
    format!("{cluster}/state.json")
}

/// The folder of recorded-state snapshots.
pub fn state_history_folder(cluster: &str) -> String {
    format!("{cluster}/history/state/")
}

/// A snapshot of the recorded state.
pub fn recorded_state_snapshot(cluster: &str, serial: u64) -> String {
    format!("{cluster}/history/state/{serial:010}.json")
}

/// The cluster lock.
pub fn lock(cluster: &str) -> String {
    format!("{cluster}/lock.json")
}

/// The store-wide folder of lock hints (`_locks/<cluster>`). No cluster
/// can be called `_locks`: a cluster's name is a DNS name.
pub const LOCK_HINTS_FOLDER: &str = "_locks/";

/// The hint that `cluster`'s lock may be held: written by a holder once it
/// has the lock, removed when it releases it; its text is the lock's ID.
/// The lock itself is only ever `lock.json`: a hint without a lock (a
/// holder killed before its release) is harmless, and a lock without a
/// hint (taken by a skiff older than the hints) is still a lock; only
/// `get clusters` does not show it.
pub fn lock_hint(cluster: &str) -> String {
    format!("{LOCK_HINTS_FOLDER}{cluster}")
}

/// Rolling-update progress.
pub fn rollout(cluster: &str) -> String {
    format!("{cluster}/rollout.json")
}

/// The folder of cluster key material.
pub fn pki_folder(cluster: &str) -> String {
    format!("{cluster}/pki/")
}

/// One PKI object, e.g. `ca.crt`.
pub fn pki(cluster: &str, name: &str) -> String {
    format!("{cluster}/pki/{name}")
}

/// The bootstrap token nodes join with.
pub fn bootstrap_token(cluster: &str) -> String {
    format!("{cluster}/secrets/bootstrap-token")
}

/// The control-plane init election marker.
pub fn init_lock(cluster: &str) -> String {
    format!("{cluster}/bootstrap/init-lock")
}

/// The folder control-plane nodes own: the init lock, leases, backups and
/// the restore request. The nodes' IAM policy grants writes to this folder
/// only (`skiff_plans::desired::iam::ETCD_FOLDER`).
pub fn etcd_folder(cluster: &str) -> String {
    format!("{cluster}/etcd/")
}

/// The init marker a control-plane node claims when it runs `kubeadm init`.
pub fn etcd_init_lock(cluster: &str) -> String {
    format!("{cluster}/etcd/init-lock")
}

/// The folder of the nodes' leases (members, backup, certificates).
pub fn etcd_leases_folder(cluster: &str) -> String {
    format!("{cluster}/etcd/leases/")
}

/// The folder of etcd backups.
pub fn etcd_backups_folder(cluster: &str) -> String {
    format!("{cluster}/etcd/backups/")
}

/// The folder of the control-plane nodes' certificate reports, one object
/// per instance (`skiff_templates::state_store::CERTIFICATES_FOLDER`).
pub fn etcd_certificates_folder(cluster: &str) -> String {
    format!(
        "{cluster}/{}",
        skiff_templates::state_store::CERTIFICATES_FOLDER
    )
}

/// The folder of the control-plane nodes' status objects, one per instance
/// (`skiff_templates::state_store::STATUS_FOLDER`).
pub fn etcd_status_folder(cluster: &str) -> String {
    format!("{cluster}/{}", skiff_templates::state_store::STATUS_FOLDER)
}

/// The folder of the external etcd members' health reports, one object per
/// member (`skiff_templates::state_store::HEALTH_FOLDER`).
pub fn etcd_health_folder(cluster: &str) -> String {
    format!("{cluster}/{}", skiff_templates::state_store::HEALTH_FOLDER)
}

/// The file-name suffix of an etcd backup.
pub const ETCD_BACKUP_SUFFIX: &str = ".db";

/// One etcd backup, by its ID.
pub fn etcd_backup(cluster: &str, id: &str) -> String {
    format!("{cluster}/etcd/backups/{id}{ETCD_BACKUP_SUFFIX}")
}

/// The backup a new control plane is asked to restore.
pub fn restore_request(cluster: &str) -> String {
    format!("{cluster}/etcd/restore-request")
}

/// Everything of a cluster.
pub fn cluster_folder(cluster: &str) -> String {
    format!("{cluster}/")
}
