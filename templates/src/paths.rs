//! Where the bootstrap puts things on a node.
//!
//! Operators debugging a node, and tools that check on one (for example a
//! rolling update waiting for the marker), need these paths; they are
//! rendered into the script from here so the two cannot drift.

/// What cloud-init runs once, and the systemd units run with a subcommand.
/// In the user-data EC2 gets, this is a small loader that fetches the
/// bootstrap script from the state store by its SHA-256, checks it and runs
/// it (keeping the verified copy under `/var/lib/skiff/`); the script itself
/// is too large for EC2's 16 KB of user-data.
pub const BOOTSTRAP_SCRIPT: &str = "/usr/local/sbin/skiff-bootstrap";
/// The state store's URL and region and the AWS endpoints, as
/// `SKIFF_…=value` lines: what the loader at [`BOOTSTRAP_SCRIPT`] needs to
/// fetch the script.
pub const STATE_STORE_ENV: &str = "/etc/skiff/state-store.env";
/// The bootstrap's progress log (mode 0600; never holds a secret).
pub const BOOTSTRAP_LOG: &str = "/var/log/skiff-bootstrap.log";
/// Exists once the node has joined (or initialized) the cluster; a re-run
/// of the script then does nothing.
pub const BOOTSTRAPPED_MARKER: &str = "/var/lib/skiff/bootstrapped";
/// The API endpoint, as `SKIFF_API_ENDPOINT=<host>` and `SKIFF_API_PORT=<port>`
/// lines the bootstrap script reads at boot. The only file of the user-data
/// that names the endpoint, and written in plain text, so that the host can
/// be replaced in the rendered user-data: for a gossip cluster the load
/// balancer's DNS name is known only after rendering.
pub const API_ENDPOINT_FILE: &str = "/etc/skiff/api-endpoint.env";
/// The kubeadm `init` configuration with placeholders for the token and the
/// API endpoint.
pub const KUBEADM_INIT_TEMPLATE: &str = "/etc/skiff/kubeadm-init.yaml.template";
/// The folder kubeadm reads patches from (`patches.directory` of the
/// Init- and JoinConfiguration); only on nodes whose group sets kubelet
/// settings.
pub const KUBEADM_PATCHES_DIRECTORY: &str = "/etc/skiff/kubeadm-patches";
/// The node's kubelet settings as a JSON merge patch of target
/// `kubeletconfiguration` (kubeadm's file name: `target[+patchtype].yaml`).
pub const KUBELET_PATCH: &str = "/etc/skiff/kubeadm-patches/kubeletconfiguration+merge.yaml";
/// An external etcd member's kubeadm configuration (§2.1.7 of the setup
/// guide: `etcd.local` with the member's certificate names and flags), with
/// a placeholder for the initial cluster state the node decides at boot.
pub const KUBEADM_ETCD_MEMBER_TEMPLATE: &str = "/etc/skiff/kubeadm-etcd-member.yaml.template";
/// The kubelet drop-in that makes the kubelet etcd's service manager on an
/// external etcd member (§2.1.7 step 1).
pub const ETCD_SERVICE_MANAGER_DROP_IN: &str =
    "/etc/systemd/system/kubelet.service.d/20-etcd-service-manager.conf";
/// The client certificate the API servers present to an external etcd
/// (kubeadm's `apiserver-etcd-client`, signed with the etcd CA).
pub const API_SERVER_ETCD_CLIENT_CERTIFICATE: &str =
    "/etc/kubernetes/pki/apiserver-etcd-client.crt";
/// Its key.
pub const API_SERVER_ETCD_CLIENT_KEY: &str = "/etc/kubernetes/pki/apiserver-etcd-client.key";
/// The kubeadm `join` configuration with placeholders for the token, the CA
/// hash and the API endpoint.
pub const KUBEADM_JOIN_TEMPLATE: &str = "/etc/skiff/kubeadm-join.yaml.template";
/// The systemd unit whose stop runs `skiff-bootstrap leave` on a
/// control-plane node: it leaves etcd only when its auto scaling group is
/// terminating the instance, never on a reboot or a stop.
pub const LEAVE_ETCD_UNIT: &str = "/etc/systemd/system/skiff-leave-etcd.service";
/// The service that writes one etcd backup (`skiff-bootstrap backup`).
pub const BACKUP_SERVICE: &str = "/etc/systemd/system/skiff-etcd-backup.service";
/// The timer that starts [`BACKUP_SERVICE`] every `spec.etcd.backups.interval`.
pub const BACKUP_TIMER: &str = "/etc/systemd/system/skiff-etcd-backup.timer";
/// The service that renews the control plane's certificates when they near
/// expiry (`skiff-bootstrap renew-certificates`).
pub const RENEW_CERTIFICATES_SERVICE: &str = "/etc/systemd/system/skiff-renew-certificates.service";
/// The daily timer that starts [`RENEW_CERTIFICATES_SERVICE`].
pub const RENEW_CERTIFICATES_TIMER: &str = "/etc/systemd/system/skiff-renew-certificates.timer";
/// The service with which an external etcd member reports its health to
/// the state store (`skiff-bootstrap report-health`).
pub const ETCD_HEALTH_SERVICE: &str = "/etc/systemd/system/skiff-etcd-health.service";
/// The timer that starts [`ETCD_HEALTH_SERVICE`] every minute.
pub const ETCD_HEALTH_TIMER: &str = "/etc/systemd/system/skiff-etcd-health.timer";
/// The service that keeps [`ENCRYPTION_CONFIG`] equal to the state store's
/// copy and reports what the API server runs
/// (`skiff-bootstrap sync-encryption-config`).
pub const SYNC_ENCRYPTION_SERVICE: &str =
    "/etc/systemd/system/skiff-sync-encryption-config.service";
/// The timer that starts [`SYNC_ENCRYPTION_SERVICE`] every minute.
pub const SYNC_ENCRYPTION_TIMER: &str = "/etc/systemd/system/skiff-sync-encryption-config.timer";
/// The node termination handler's queue processor on control-plane nodes
/// (`skiff-bootstrap node-termination`, see `node_termination.rs`).
pub const NODE_TERMINATION_SERVICE: &str = "/etc/systemd/system/skiff-node-termination.service";
/// The service that applies the cluster addons of the state store
/// (`skiff-bootstrap apply-addons`).
pub const APPLY_ADDONS_SERVICE: &str = "/etc/systemd/system/skiff-apply-addons.service";
/// The timer that starts [`APPLY_ADDONS_SERVICE`] every minute.
pub const APPLY_ADDONS_TIMER: &str = "/etc/systemd/system/skiff-apply-addons.timer";
/// The folder of [`ENCRYPTION_CONFIG`], mounted into kube-apiserver as a
/// directory (read-only): a file replaced by a rename is not seen through a
/// single-file mount, which keeps the replaced file's inode.
pub const ENCRYPTION_CONFIG_DIRECTORY: &str = "/etc/kubernetes/encryption";
/// The API server's `EncryptionConfiguration` (mode 0600), a copy of the
/// state store's `secrets/encryption-config.yaml`.
pub const ENCRYPTION_CONFIG: &str = "/etc/kubernetes/encryption/config.yaml";
/// The folder of [`AUDIT_POLICY`], mounted into kube-apiserver read-only.
pub const AUDIT_POLICY_DIRECTORY: &str = "/etc/kubernetes/audit";
/// The API server's audit policy (`spec.controlPlane.apiServer.audit.policy`).
pub const AUDIT_POLICY: &str = "/etc/kubernetes/audit/policy.yaml";
/// The folder of [`AUDIT_LOG`], mounted into kube-apiserver writable.
pub const AUDIT_LOG_DIRECTORY: &str = "/var/log/kubernetes/audit";
/// The audit log; the API server rotates it beside itself.
pub const AUDIT_LOG: &str = "/var/log/kubernetes/audit/audit.log";
/// Where etcd's client tools are installed (copied from kubeadm's etcd image).
pub const ETCDCTL: &str = "/usr/local/bin/etcdctl";
/// etcd's offline tool (snapshot status and restore).
pub const ETCDUTL: &str = "/usr/local/bin/etcdutl";
/// Kernel modules loaded at every boot.
pub const MODULES_LOAD: &str = "/etc/modules-load.d/k8s.conf";
/// Kernel parameters applied at every boot.
pub const SYSCTL: &str = "/etc/sysctl.d/k8s.conf";
