//! Rendering: builds the one context every template sees and runs minijinja.
//!
//! All decisions are made here, in Rust, where they are typed and unit
//! tested (which taints a control-plane node gets, the S3 URL, the package
//! repository); the templates only lay the values out. Two filters do all
//! quoting, so no value can break out of the shell script or the YAML:
//! `shell` (single-quoted shell word) and `yaml` (double-quoted scalar).
//!
//! Determinism matters: user-data is part of the launch template, and any
//! byte that changes rolls every instance of the group. The context holds
//! no time, no randomness and no map with unspecified order.

use std::sync::OnceLock;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use skiff_api::{InstanceGroupRole, OsFamily, Taint};

use crate::cni::{self, CniRelease};
use crate::config::{is_placeholder, NodeBootstrap, INSTANCE_GROUP_LABEL};
use crate::error::TemplateError;
use crate::paths;
use crate::state_store;
use crate::NodeFile;

/// Every template, embedded at build time, by file name under `templates/templates/`.
const TEMPLATES: [(&str, &str); 26] = [
    (
        "kubeadm-etcd-member.yaml.j2",
        include_str!("../templates/kubeadm-etcd-member.yaml.j2"),
    ),
    (
        "cloud-config.yaml.j2",
        include_str!("../templates/cloud-config.yaml.j2"),
    ),
    (
        "bastion-cloud-config.yaml.j2",
        include_str!("../templates/bastion-cloud-config.yaml.j2"),
    ),
    (
        "api-endpoint.env.j2",
        include_str!("../templates/api-endpoint.env.j2"),
    ),
    (
        "bootstrap.sh.j2",
        include_str!("../templates/bootstrap.sh.j2"),
    ),
    (
        "bootstrap-loader.sh.j2",
        include_str!("../templates/bootstrap-loader.sh.j2"),
    ),
    (
        "state-store.env.j2",
        include_str!("../templates/state-store.env.j2"),
    ),
    (
        "kubeadm-init.yaml.j2",
        include_str!("../templates/kubeadm-init.yaml.j2"),
    ),
    (
        "kubeadm-join.yaml.j2",
        include_str!("../templates/kubeadm-join.yaml.j2"),
    ),
    (
        "kubelet-patch.yaml.j2",
        include_str!("../templates/kubelet-patch.yaml.j2"),
    ),
    (
        "node-registration.yaml.j2",
        include_str!("../templates/node-registration.yaml.j2"),
    ),
    (
        "skiff-leave-etcd.service.j2",
        include_str!("../templates/skiff-leave-etcd.service.j2"),
    ),
    (
        "skiff-etcd-backup.service.j2",
        include_str!("../templates/skiff-etcd-backup.service.j2"),
    ),
    (
        "skiff-etcd-backup.timer.j2",
        include_str!("../templates/skiff-etcd-backup.timer.j2"),
    ),
    (
        "skiff-renew-certificates.service.j2",
        include_str!("../templates/skiff-renew-certificates.service.j2"),
    ),
    (
        "skiff-renew-certificates.timer.j2",
        include_str!("../templates/skiff-renew-certificates.timer.j2"),
    ),
    (
        "skiff-etcd-health.service.j2",
        include_str!("../templates/skiff-etcd-health.service.j2"),
    ),
    (
        "skiff-etcd-health.timer.j2",
        include_str!("../templates/skiff-etcd-health.timer.j2"),
    ),
    (
        "skiff-sync-encryption-config.service.j2",
        include_str!("../templates/skiff-sync-encryption-config.service.j2"),
    ),
    (
        "skiff-sync-encryption-config.timer.j2",
        include_str!("../templates/skiff-sync-encryption-config.timer.j2"),
    ),
    (
        "skiff-node-termination.service.j2",
        include_str!("../templates/skiff-node-termination.service.j2"),
    ),
    (
        "node-termination.sh.j2",
        include_str!("../templates/node-termination.sh.j2"),
    ),
    (
        "skiff-apply-addons.service.j2",
        include_str!("../templates/skiff-apply-addons.service.j2"),
    ),
    (
        "skiff-apply-addons.timer.j2",
        include_str!("../templates/skiff-apply-addons.timer.j2"),
    ),
    (
        "modules-load-k8s.conf.j2",
        include_str!("../templates/modules-load-k8s.conf.j2"),
    ),
    (
        "sysctl-k8s.conf.j2",
        include_str!("../templates/sysctl-k8s.conf.j2"),
    ),
];

/// The template of a `write_files` entry's indented content.
pub(crate) const WRITE_FILES_CONTENT: &str = "write-files-content";

/// The taint kubeadm puts on control-plane nodes by default. Listing taints
/// explicitly replaces kubeadm's default, so skiff adds it back.
const CONTROL_PLANE_TAINT_KEY: &str = "node-role.kubernetes.io/control-plane";

/// Where the bootstrap token goes in the kubeadm templates; the node replaces it.
pub(crate) const TOKEN_PLACEHOLDER: &str = "@SKIFF_BOOTSTRAP_TOKEN@";
/// Where the CA public-key hash goes in the join template; the node replaces it.
pub(crate) const CA_CERT_HASH_PLACEHOLDER: &str = "@SKIFF_CA_CERT_HASH@";
/// Where `host:port` of the API goes in the kubeadm templates; the node
/// fills it in from [`paths::API_ENDPOINT_FILE`].
pub(crate) const API_SERVER_PLACEHOLDER: &str = "@SKIFF_API_SERVER@";
/// Where an external etcd member's kubeadm configuration takes the initial
/// cluster state (`new` or `existing`), which the member decides at boot.
pub(crate) const ETCD_STATE_PLACEHOLDER: &str = "@SKIFF_ETCD_INITIAL_CLUSTER_STATE@";
/// Where it takes the initial cluster (every member at its fixed address
/// for `new`; the members etcd lists, with this one, for `existing`).
pub(crate) const ETCD_INITIAL_CLUSTER_PLACEHOLDER: &str = "@SKIFF_ETCD_INITIAL_CLUSTER@";
/// Where the API host goes in the init template's `certSANs`; the node fills
/// it in from [`paths::API_ENDPOINT_FILE`].
pub(crate) const API_ENDPOINT_PLACEHOLDER: &str = "@SKIFF_API_ENDPOINT@";
/// Where the name operators use goes in the init template's `certSANs` when
/// it is known only once the load balancer exists; the node fills it in from
/// [`paths::API_ENDPOINT_FILE`] (see `NodeBootstrap::api_cert_sans`).
pub(crate) const API_PUBLIC_ENDPOINT_PLACEHOLDER: &str = "@SKIFF_API_PUBLIC_ENDPOINT@";
/// Where the node's name goes in the kubeadm templates
/// (`nodeRegistration.name`) with the external cloud provider; the node
/// fills in its private DNS name from instance metadata.
pub(crate) const NODE_NAME_PLACEHOLDER: &str = "@SKIFF_NODE_NAME@";

/// The values every template sees.
#[derive(Debug, Serialize)]
struct Context {
    cluster_name: String,
    instance_group: String,
    control_plane: bool,
    role: &'static str,
    os_family: &'static str,
    kubernetes_version: String,
    package_repository: String,
    pause_image: &'static str,
    /// `containerd` or `cri-o`: the bootstrap script holds both runtimes'
    /// steps and picks by this value, so a runtime change is this line and
    /// the socket's in the user-data (plans/src/user_data.rs names it).
    container_runtime: String,
    /// The CRI endpoint of the runtime (kubeadm's `criSocket`, crictl's).
    cri_socket: &'static str,
    /// CRI-O's package repository of the cluster's minor.
    crio_repository: String,
    kubeadm_api_version: &'static str,
    kubeadm_v1beta4: bool,
    /// Only in the plain [`paths::API_ENDPOINT_FILE`]: never in a
    /// compressed file, where a substitution of the rendered user-data
    /// could not reach it.
    api_endpoint: String,
    api_port: u16,
    /// The certificate names besides `api_endpoint`, which the node puts
    /// first; a name equal to it is left out, or it would reach the
    /// compressed init template.
    api_cert_sans: Vec<String>,
    /// The certificate name filled into the user-data after rendering (a
    /// name of `api_cert_sans` ending in `.invalid`), or empty. Only in the
    /// plain [`paths::API_ENDPOINT_FILE`], like `api_endpoint`.
    api_public_endpoint: String,
    pod_cidr: String,
    service_cidr: String,
    cluster_dns: String,
    node_labels: String,
    taints: Vec<TaintView>,
    state_store: String,
    state_store_url: String,
    state_store_region: String,
    /// The KMS key etcd backups are written with (empty: SSE-S3).
    state_store_kms_key: String,
    /// The bucket's URL, for listing the backups.
    state_store_bucket_url: String,
    /// The cluster's key prefix in the bucket.
    state_store_prefix: String,
    region: String,
    /// The node termination handler's queue and drain timeout
    /// (`node_termination.rs`).
    node_termination_queue: String,
    node_termination_drain_timeout: u32,
    /// Empty for the regional endpoints.
    aws_endpoint: String,
    backup_interval_seconds: u64,
    backup_keep: u32,
    keys: Keys,
    control_plane_pki: Vec<PkiView>,
    cni: CniView,
    paths: Paths,
    token_placeholder: &'static str,
    ca_cert_hash_placeholder: &'static str,
    api_server_placeholder: &'static str,
    api_endpoint_placeholder: &'static str,
    api_public_endpoint_placeholder: &'static str,
    node_name_placeholder: &'static str,
    /// The kubelet runs `--cloud-provider=external` and the node is named
    /// by its private DNS name (the AWS cloud-controller-manager is on).
    external_cloud_provider: bool,
    /// kube-apiserver's extra flags, in order (`extraArgs`).
    api_server_arguments: Vec<ArgumentView>,
    /// kube-apiserver's extra host folders (`extraVolumes`).
    api_server_volumes: Vec<VolumeView>,
    /// The other components' extra flags and folders, by the
    /// ClusterConfiguration's field; absent ones set nothing.
    controller_manager: ComponentView,
    scheduler: ComponentView,
    etcd_local: ComponentView,
    /// The fields of the node's kubelet patch; empty: no patch at all.
    kubelet_patch: Vec<crate::kubelet::KubeletFieldView>,
    /// The files of the node, filled in only for the cloud-config wrapper.
    files: Vec<UserDataFile>,
    /// An external etcd member (role `Etcd`).
    etcd_member: bool,
    /// The external etcd cluster this node belongs to or uses; `None`:
    /// stacked etcd.
    external_etcd: Option<ExternalEtcdView>,
}

#[derive(Debug, Serialize)]
struct ExternalEtcdView {
    /// `https://<address>:2379,...`, as `--etcd-servers` takes them.
    endpoints: Vec<String>,
    /// `name=https://<address>:2380,...`.
    initial_cluster: String,
    /// This member's name and address (an `Etcd` node); empty on the
    /// control plane.
    member_name: String,
    member_address: String,
    /// The placeholder of the member's `initial-cluster-state`.
    state_placeholder: &'static str,
    /// The placeholder of the member's `initial-cluster`.
    initial_cluster_placeholder: &'static str,
    client_certificate: &'static str,
    client_key: &'static str,
    etcd_ca_certificate: &'static str,
    etcd_ca_key: &'static str,
    service_manager_drop_in: &'static str,
    member_template: &'static str,
}

/// A `write_files` entry as it appears in the user-data.
#[derive(Debug, Serialize)]
struct UserDataFile {
    path: &'static str,
    permissions: &'static str,
    /// `gz+b64` for compressed content, none for plain text.
    encoding: Option<&'static str>,
    content: String,
}

#[derive(Debug, Serialize)]
struct ArgumentView {
    name: String,
    value: String,
}

#[derive(Debug, Serialize)]
struct VolumeView {
    name: String,
    host_path: String,
    mount_path: String,
    read_only: bool,
    path_type: String,
}

/// A component's extra flags and folders as the template lays them out.
#[derive(Debug, Serialize, Default)]
struct ComponentView {
    arguments: Vec<ArgumentView>,
    volumes: Vec<VolumeView>,
}

impl ComponentView {
    fn of(spec: &skiff_api::ComponentSpec) -> Self {
        ComponentView {
            arguments: spec
                .extra_args
                .iter()
                .map(|(name, value)| ArgumentView {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            volumes: spec.extra_volumes.iter().map(VolumeView::of).collect(),
        }
    }
}

impl VolumeView {
    fn of(volume: &skiff_api::HostPathMount) -> Self {
        VolumeView {
            name: volume.name.clone(),
            host_path: volume.host_path.clone(),
            mount_path: volume.mount_path.clone(),
            read_only: volume.read_only,
            path_type: volume.path_type.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
struct TaintView {
    key: String,
    value: String,
    effect: String,
}

#[derive(Debug, Serialize)]
struct Keys {
    ca_certificate: &'static str,
    bootstrap_token: &'static str,
    init_lock: &'static str,
    legacy_init_lock: &'static str,
    members_lease: &'static str,
    backup_lease: &'static str,
    certificates_lease: &'static str,
    member_certificates_lease: &'static str,
    health_folder: &'static str,
    backups_folder: &'static str,
    certificates_folder: &'static str,
    restore_request: &'static str,
    upgrade_lease: &'static str,
    status_folder: &'static str,
    encryption_config: &'static str,
    encryption_reports_folder: &'static str,
    node_termination_lease: &'static str,
    addons_index: &'static str,
    addons_lease: &'static str,
    applied_addons_folder: &'static str,
    addons_status: &'static str,
}

#[derive(Debug, Serialize)]
struct PkiView {
    key: &'static str,
    path: &'static str,
    mode: &'static str,
}

#[derive(Debug, Serialize)]
struct CniView {
    name: String,
    version: &'static str,
    download_url: String,
    sha256: Option<&'static str>,
    /// Calico on a control-plane node of a cluster with Windows nodes:
    /// installed through the Tigera operator with the Windows data plane.
    windows: Option<WindowsNetworkView>,
}

/// What a control plane downloads for the Windows nodes' pod network
/// (`cni::tigera_operator_url`, `cni::windows_kube_proxy_url`).
#[derive(Debug, Serialize)]
struct WindowsNetworkView {
    operator_crds_url: String,
    tigera_operator_url: String,
    kube_proxy_url: String,
}

#[derive(Debug, Serialize)]
struct Paths {
    bootstrap_script: &'static str,
    api_endpoint_file: &'static str,
    state_store_env: &'static str,
    log: &'static str,
    bootstrapped_marker: &'static str,
    kubeadm_init_template: &'static str,
    kubeadm_join_template: &'static str,
    kubeadm_patches_directory: &'static str,
    leave_etcd_unit: &'static str,
    backup_service: &'static str,
    backup_timer: &'static str,
    renew_certificates_service: &'static str,
    renew_certificates_timer: &'static str,
    etcd_health_service: &'static str,
    etcd_health_timer: &'static str,
    sync_encryption_service: &'static str,
    sync_encryption_timer: &'static str,
    node_termination_service: &'static str,
    apply_addons_service: &'static str,
    apply_addons_timer: &'static str,
    encryption_config_directory: &'static str,
    encryption_config: &'static str,
    audit_log_directory: &'static str,
    etcdctl: &'static str,
    etcdutl: &'static str,
}

/// The files cloud-init writes on a node, in the order it writes them.
pub(crate) fn node_files(config: &NodeBootstrap) -> Result<Vec<NodeFile>, TemplateError> {
    if config.os_family.is_windows() {
        // A Windows node's user-data is one PowerShell script, no cloud-init files.
        crate::windows::user_data(config)?;
        return Ok(Vec::new());
    }
    if config.role == InstanceGroupRole::Bastion {
        config.validate()?;
        return Ok(Vec::new());
    }
    let context = context(config, &cni::release(config.cni))?;
    let environment = shared_environment()?;
    let render = |template: &str| render(environment, template, &context);
    let mut files = vec![
        NodeFile {
            path: paths::MODULES_LOAD,
            permissions: "0644",
            content: render("modules-load-k8s.conf.j2")?,
        },
        NodeFile {
            path: paths::SYSCTL,
            permissions: "0644",
            content: render("sysctl-k8s.conf.j2")?,
        },
        NodeFile {
            path: paths::API_ENDPOINT_FILE,
            permissions: "0644",
            content: render("api-endpoint.env.j2")?,
        },
        NodeFile {
            path: paths::STATE_STORE_ENV,
            permissions: "0644",
            content: render("state-store.env.j2")?,
        },
    ];
    if !context.kubelet_patch.is_empty() {
        files.push(NodeFile {
            path: paths::KUBELET_PATCH,
            permissions: "0644",
            content: render("kubelet-patch.yaml.j2")?,
        });
    }
    if context.etcd_member {
        // An etcd member is no Kubernetes node: its kubeadm only writes
        // etcd's certificates and static pod (§2.1.7).
        files.retain(|file| file.path != paths::API_ENDPOINT_FILE);
        files.push(NodeFile {
            path: paths::KUBEADM_ETCD_MEMBER_TEMPLATE,
            permissions: "0600",
            content: render("kubeadm-etcd-member.yaml.j2")?,
        });
        files.push(NodeFile {
            path: paths::BOOTSTRAP_SCRIPT,
            permissions: "0755",
            content: compact_script(&render("bootstrap.sh.j2")?),
        });
        return Ok(files);
    }
    if context.control_plane {
        files.push(NodeFile {
            path: paths::KUBEADM_INIT_TEMPLATE,
            permissions: "0600",
            content: render("kubeadm-init.yaml.j2")?,
        });
        files.push(NodeFile {
            path: paths::AUDIT_POLICY,
            permissions: "0600",
            content: config.audit.policy_text().to_string(),
        });
    }
    files.push(NodeFile {
        path: paths::KUBEADM_JOIN_TEMPLATE,
        permissions: "0600",
        content: render("kubeadm-join.yaml.j2")?,
    });
    files.push(NodeFile {
        path: paths::BOOTSTRAP_SCRIPT,
        permissions: "0755",
        content: compact_script(&render("bootstrap.sh.j2")?),
    });
    Ok(files)
}

/// The script as the node gets it: without the comment lines and the
/// indentation after its opening comment block. The template is the
/// documented source; EC2's 16 KB user-data limit is what the node gets,
/// and comments are a third of the script (kept: the shebang, the opening
/// block that says what the script is, and shellcheck directives).
fn compact_script(script: &str) -> String {
    let mut compact = String::with_capacity(script.len());
    let mut opening = true;
    // The delimiter of the quoted here-document being copied, if any: its
    // lines (YAML, unit files) are content and stay as they are.
    let mut here_document: Option<&str> = None;
    for line in script.lines() {
        if let Some(delimiter) = here_document {
            compact.push_str(line);
            compact.push('\n');
            if line == delimiter {
                here_document = None;
            }
            continue;
        }
        let trimmed = line.trim_start();
        if opening && line.starts_with('#') {
            compact.push_str(line);
            compact.push('\n');
            continue;
        }
        opening = false;
        if trimmed.is_empty() || (trimmed.starts_with('#') && !trimmed.starts_with("# shellcheck"))
        {
            continue;
        }
        here_document = trimmed
            .split_once("<<'")
            .and_then(|(_, rest)| rest.split_once('\''))
            .map(|(delimiter, _)| delimiter);
        compact.push_str(trimmed);
        compact.push('\n');
    }
    compact
}

/// The complete user-data of a node.
pub(crate) fn user_data(config: &NodeBootstrap) -> Result<String, TemplateError> {
    if config.os_family.is_windows() {
        return crate::windows::user_data(config);
    }
    let environment = shared_environment()?;
    if config.role == InstanceGroupRole::Bastion {
        config.validate()?;
        let bastion = minijinja::context! {
            cluster_name => &config.cluster_name,
            instance_group => &config.instance_group,
        };
        return render(environment, "bastion-cloud-config.yaml.j2", &bastion);
    }
    let mut context = context(config, &cni::release(config.cni))?;
    for file in node_files(config)? {
        context.files.push(UserDataFile {
            path: file.path,
            permissions: file.permissions,
            encoding: None,
            content: file.content,
        });
    }
    render(environment, "cloud-config.yaml.j2", &context)
}

/// The user-data as EC2 gets it: the whole document gzip-compressed (no
/// file name, modification time 0, so the bytes depend on the text alone),
/// then base64 for the API. cloud-init recognizes gzip and decompresses it.
///
/// EC2 refuses user-data over 16 KB before base64; plain, a control-plane
/// node's document takes about 45 KB, compressed about 11 KB. Compressing
/// the whole document, rather than file by file, lets the API endpoint
/// stay in plain text until the last moment: the planner renders a gossip
/// cluster's user-data with a placeholder host, which is replaced in the
/// text once the load balancer's DNS name is known, and only then encoded.
pub(crate) fn encode_user_data(text: &str) -> Result<String, TemplateError> {
    use base64::Engine;
    use std::io::Write;

    // EC2Launch reads a Windows node's user-data as it is: no gzip.
    if crate::windows::is_powershell(text) {
        return Ok(base64::engine::general_purpose::STANDARD.encode(text));
    }
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(text.as_bytes())
        .map_err(|source| TemplateError::Compress { source })?;
    let compressed = encoder
        .finish()
        .map_err(|source| TemplateError::Compress { source })?;
    Ok(base64::engine::general_purpose::STANDARD.encode(compressed))
}

/// The text of user-data as EC2 returns it (base64): gzip is decompressed,
/// anything else (user-data written before compression, or by hand) is
/// taken as it is. `None` when it is not base64 or not a valid gzip stream.
pub(crate) fn decode_user_data(encoded: &str) -> Option<String> {
    use base64::Engine;
    use std::io::Read;

    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_string(&mut text)
            .ok()?;
        Some(text)
    } else {
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// The template environment, compiled once per process: a plan renders
/// every instance group's user-data, and compiling the templates again for
/// each of 100 groups took most of a no-op plan's CPU time.
pub(crate) fn shared_environment() -> Result<&'static Environment<'static>, TemplateError> {
    static SHARED: OnceLock<Environment<'static>> = OnceLock::new();
    if let Some(environment) = SHARED.get() {
        return Ok(environment);
    }
    let compiled = environment()?;
    Ok(SHARED.get_or_init(|| compiled))
}

fn environment() -> Result<Environment<'static>, TemplateError> {
    let mut environment = Environment::new();
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    environment.set_trim_blocks(true);
    environment.set_lstrip_blocks(true);
    environment.set_keep_trailing_newline(true);
    // Quoting is explicit through the two filters; HTML or JSON escaping
    // picked from a file name would corrupt scripts.
    environment.set_auto_escape_callback(|_| AutoEscape::None);
    environment.add_filter("shell", shell_quote);
    environment.add_filter("yaml", yaml_string);
    // One `write_files` entry's content as cloud-config.yaml.j2 lays it
    // out, so that the bootstrap script can be swapped for its loader (and
    // back) in the rendered text (`stored_script.rs`).
    environment
        .add_template(WRITE_FILES_CONTENT, "{{ content | indent(4) }}")
        .map_err(|source| TemplateError::Render {
            template: WRITE_FILES_CONTENT.to_string(),
            source,
        })?;
    for (name, source) in TEMPLATES {
        environment
            .add_template(name, source)
            .map_err(|source| TemplateError::Render {
                template: name.to_string(),
                source,
            })?;
    }
    Ok(environment)
}

pub(crate) fn render<S: Serialize>(
    environment: &Environment<'static>,
    template: &str,
    context: &S,
) -> Result<String, TemplateError> {
    environment
        .get_template(template)
        .and_then(|loaded| loaded.render(context))
        .map_err(|source| TemplateError::Render {
            template: template.to_string(),
            source,
        })
}

fn context(config: &NodeBootstrap, release: &CniRelease) -> Result<Context, TemplateError> {
    config.validate()?;
    let control_plane = config.role == InstanceGroupRole::ControlPlane;
    let version = config.kubernetes_version;
    let package_format = match config.os_family {
        OsFamily::Debian => "deb",
        OsFamily::Rhel | OsFamily::Windows => "rpm",
    };

    // The endpoint is always the first name, filled in on the node; listing
    // it again would put it where a substitution of the user-data cannot
    // reach it.
    let mut api_cert_sans: Vec<String> = Vec::new();
    let mut api_public_endpoint = String::new();
    for name in &config.api_cert_sans {
        if *name == config.api_endpoint {
            // Already the first name (a gossip cluster whose nodes and
            // operators use the same load balancer).
        } else if is_placeholder(name) {
            api_public_endpoint = name.clone();
        } else if !api_cert_sans.contains(name) {
            api_cert_sans.push(name.clone());
        }
    }

    let mut labels = config.node_labels.clone();
    labels.insert(
        INSTANCE_GROUP_LABEL.to_string(),
        config.instance_group.clone(),
    );
    let node_labels = labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(",");

    let etcd_member = config.role == InstanceGroupRole::Etcd;
    let external_etcd = config.external_etcd.as_ref().map(|etcd| {
        let member = etcd.member(&config.instance_group).filter(|_| etcd_member);
        ExternalEtcdView {
            endpoints: etcd.endpoints(),
            initial_cluster: etcd.initial_cluster(),
            member_name: member.map(|member| member.name.clone()).unwrap_or_default(),
            member_address: member
                .map(|member| member.address.to_string())
                .unwrap_or_default(),
            state_placeholder: ETCD_STATE_PLACEHOLDER,
            initial_cluster_placeholder: ETCD_INITIAL_CLUSTER_PLACEHOLDER,
            client_certificate: paths::API_SERVER_ETCD_CLIENT_CERTIFICATE,
            client_key: paths::API_SERVER_ETCD_CLIENT_KEY,
            etcd_ca_certificate: state_store::ETCD_CA_CERTIFICATE,
            etcd_ca_key: state_store::ETCD_CA_KEY,
            service_manager_drop_in: paths::ETCD_SERVICE_MANAGER_DROP_IN,
            member_template: paths::KUBEADM_ETCD_MEMBER_TEMPLATE,
        }
    });
    Ok(Context {
        cluster_name: config.cluster_name.clone(),
        instance_group: config.instance_group.clone(),
        control_plane,
        role: if control_plane {
            "control-plane"
        } else if etcd_member {
            "etcd"
        } else {
            "worker"
        },
        os_family: match config.os_family {
            OsFamily::Debian => "debian",
            OsFamily::Rhel => "rhel",
            OsFamily::Windows => "windows",
        },
        kubernetes_version: version.to_string(),
        package_repository: format!(
            "https://pkgs.k8s.io/core:/stable:/{}/{package_format}",
            version.package_channel()
        ),
        pause_image: version.pause_image(),
        container_runtime: config.container_runtime.to_string(),
        cri_socket: config.container_runtime.cri_socket(),
        // The CRI-O project's packages, one repository per Kubernetes minor
        // (cri-o/packaging README: isv:/cri-o:/stable:/vX.Y/{deb,rpm}).
        crio_repository: format!(
            "https://download.opensuse.org/repositories/isv:/cri-o:/stable:/{}/{package_format}",
            version.package_channel()
        ),
        kubeadm_api_version: version.kubeadm_api_version(),
        kubeadm_v1beta4: version.kubeadm_api_version().ends_with("/v1beta4"),
        api_endpoint: config.api_endpoint.clone(),
        api_port: config.api_port,
        api_cert_sans,
        api_public_endpoint,
        pod_cidr: config.pod_cidr.clone(),
        service_cidr: config.service_cidr.clone(),
        cluster_dns: config.cluster_dns.clone(),
        node_labels,
        taints: registered_taints(config.role, &config.taints),
        state_store: config.state_store.display_url(),
        state_store_url: config.state_store.cluster_url()?,
        state_store_region: config.state_store.region.clone(),
        state_store_kms_key: config.state_store.kms_key.clone().unwrap_or_default(),
        state_store_bucket_url: config.state_store.bucket_url()?,
        state_store_prefix: config.state_store.cluster_prefix.clone(),
        region: config.region.clone(),
        node_termination_queue: crate::node_termination::queue_name(&config.cluster_name),
        node_termination_drain_timeout: crate::node_termination::DRAIN_TIMEOUT_SECONDS,
        aws_endpoint: config
            .aws_endpoint
            .as_deref()
            .map(|endpoint| endpoint.trim_end_matches('/').to_string())
            .unwrap_or_default(),
        backup_interval_seconds: config.etcd_backups.interval_seconds,
        backup_keep: config.etcd_backups.keep,
        keys: Keys {
            ca_certificate: state_store::CA_CERTIFICATE,
            bootstrap_token: state_store::BOOTSTRAP_TOKEN,
            init_lock: state_store::INIT_LOCK,
            legacy_init_lock: state_store::LEGACY_INIT_LOCK,
            members_lease: state_store::MEMBERS_LEASE,
            backup_lease: state_store::BACKUP_LEASE,
            certificates_lease: state_store::CERTIFICATES_LEASE,
            member_certificates_lease: state_store::MEMBER_CERTIFICATES_LEASE,
            health_folder: state_store::HEALTH_FOLDER,
            backups_folder: state_store::BACKUPS_FOLDER,
            certificates_folder: state_store::CERTIFICATES_FOLDER,
            restore_request: state_store::RESTORE_REQUEST,
            upgrade_lease: state_store::UPGRADE_LEASE,
            status_folder: state_store::STATUS_FOLDER,
            encryption_config: state_store::ENCRYPTION_CONFIG,
            encryption_reports_folder: state_store::ENCRYPTION_REPORTS_FOLDER,
            node_termination_lease: state_store::NODE_TERMINATION_LEASE,
            addons_index: state_store::ADDONS_INDEX,
            addons_lease: state_store::ADDONS_LEASE,
            applied_addons_folder: state_store::APPLIED_ADDONS_FOLDER,
            addons_status: state_store::ADDONS_STATUS,
        },
        control_plane_pki: state_store::CONTROL_PLANE_PKI
            .iter()
            .map(|file| PkiView {
                key: file.key,
                path: file.path,
                mode: file.mode,
            })
            .collect(),
        cni: CniView {
            name: release.cni.to_string(),
            version: release.version,
            download_url: release.download_url.clone(),
            sha256: release.sha256,
            windows: (control_plane
                && config.windows_nodes
                && release.cni == skiff_api::Cni::Calico)
                .then(|| WindowsNetworkView {
                    operator_crds_url: cni::operator_crds_url(),
                    tigera_operator_url: cni::tigera_operator_url(),
                    kube_proxy_url: cni::windows_kube_proxy_url(),
                }),
        },
        paths: Paths {
            bootstrap_script: paths::BOOTSTRAP_SCRIPT,
            api_endpoint_file: paths::API_ENDPOINT_FILE,
            state_store_env: paths::STATE_STORE_ENV,
            log: paths::BOOTSTRAP_LOG,
            bootstrapped_marker: paths::BOOTSTRAPPED_MARKER,
            kubeadm_init_template: paths::KUBEADM_INIT_TEMPLATE,
            kubeadm_join_template: paths::KUBEADM_JOIN_TEMPLATE,
            kubeadm_patches_directory: paths::KUBEADM_PATCHES_DIRECTORY,
            leave_etcd_unit: paths::LEAVE_ETCD_UNIT,
            backup_service: paths::BACKUP_SERVICE,
            backup_timer: paths::BACKUP_TIMER,
            renew_certificates_service: paths::RENEW_CERTIFICATES_SERVICE,
            renew_certificates_timer: paths::RENEW_CERTIFICATES_TIMER,
            etcd_health_service: paths::ETCD_HEALTH_SERVICE,
            etcd_health_timer: paths::ETCD_HEALTH_TIMER,
            sync_encryption_service: paths::SYNC_ENCRYPTION_SERVICE,
            sync_encryption_timer: paths::SYNC_ENCRYPTION_TIMER,
            node_termination_service: paths::NODE_TERMINATION_SERVICE,
            apply_addons_service: paths::APPLY_ADDONS_SERVICE,
            apply_addons_timer: paths::APPLY_ADDONS_TIMER,
            encryption_config_directory: paths::ENCRYPTION_CONFIG_DIRECTORY,
            encryption_config: paths::ENCRYPTION_CONFIG,
            audit_log_directory: paths::AUDIT_LOG_DIRECTORY,
            etcdctl: paths::ETCDCTL,
            etcdutl: paths::ETCDUTL,
        },
        token_placeholder: TOKEN_PLACEHOLDER,
        ca_cert_hash_placeholder: CA_CERT_HASH_PLACEHOLDER,
        api_server_placeholder: API_SERVER_PLACEHOLDER,
        api_endpoint_placeholder: API_ENDPOINT_PLACEHOLDER,
        api_public_endpoint_placeholder: API_PUBLIC_ENDPOINT_PLACEHOLDER,
        node_name_placeholder: NODE_NAME_PLACEHOLDER,
        external_cloud_provider: config.external_cloud_provider,
        api_server_arguments: api_server_arguments(config),
        api_server_volumes: API_SERVER_VOLUMES
            .iter()
            .map(|&(name, path, read_only)| VolumeView {
                name: name.to_string(),
                host_path: path.to_string(),
                mount_path: path.to_string(),
                read_only,
                path_type: "DirectoryOrCreate".to_string(),
            })
            .chain(
                config
                    .component_arguments
                    .api_server
                    .extra_volumes
                    .iter()
                    .map(VolumeView::of),
            )
            .collect(),
        controller_manager: ComponentView::of(&config.component_arguments.controller_manager),
        scheduler: ComponentView::of(&config.component_arguments.scheduler),
        etcd_local: ComponentView::of(&config.component_arguments.etcd),
        kubelet_patch: crate::kubelet::patch_fields(&config.kubelet),
        files: Vec::new(),
        etcd_member,
        external_etcd,
    })
}

/// kube-apiserver's host folders: the encryption configuration and the
/// audit policy read-only, the audit log writable.
const API_SERVER_VOLUMES: [(&str, &str, bool); 3] = [
    ("skiff-encryption", paths::ENCRYPTION_CONFIG_DIRECTORY, true),
    ("skiff-audit-policy", paths::AUDIT_POLICY_DIRECTORY, true),
    ("skiff-audit-log", paths::AUDIT_LOG_DIRECTORY, false),
];

/// kube-apiserver's flags for the encryption of Secrets and the audit log,
/// then the spec's `extraArgs` (which may not repeat them).
/// `encryption-provider-config-automatic-reload` makes it read the file
/// again when it changes (every minute, kube-apiserver's
/// EncryptionConfigFileChangePollDuration), so a rotation needs no restart.
fn api_server_arguments(config: &NodeBootstrap) -> Vec<ArgumentView> {
    let audit = &config.audit;
    [
        (
            "encryption-provider-config",
            paths::ENCRYPTION_CONFIG.to_string(),
        ),
        (
            "encryption-provider-config-automatic-reload",
            "true".to_string(),
        ),
        ("audit-policy-file", paths::AUDIT_POLICY.to_string()),
        ("audit-log-path", paths::AUDIT_LOG.to_string()),
        ("audit-log-maxage", audit.max_age_days.to_string()),
        ("audit-log-maxbackup", audit.max_backups.to_string()),
        ("audit-log-maxsize", audit.max_size_megabytes.to_string()),
    ]
    .into_iter()
    .map(|(name, value)| ArgumentView {
        name: name.to_string(),
        value,
    })
    .chain(
        config
            .component_arguments
            .api_server
            .extra_args
            .iter()
            .map(|(name, value)| ArgumentView {
                name: name.clone(),
                value: value.clone(),
            }),
    )
    .collect()
}

/// The taints a node registers with: the group's, plus kubeadm's
/// control-plane taint on control-plane nodes (giving kubeadm an explicit
/// list replaces its default, so the default must be listed too).
fn registered_taints(role: InstanceGroupRole, group_taints: &[Taint]) -> Vec<TaintView> {
    let mut taints = Vec::new();
    let group_has_default = group_taints
        .iter()
        .any(|taint| taint.key == CONTROL_PLANE_TAINT_KEY && taint.effect == "NoSchedule");
    if role == InstanceGroupRole::ControlPlane && !group_has_default {
        taints.push(TaintView {
            key: CONTROL_PLANE_TAINT_KEY.to_string(),
            value: String::new(),
            effect: "NoSchedule".to_string(),
        });
    }
    taints.extend(group_taints.iter().map(|taint| TaintView {
        key: taint.key.clone(),
        value: taint.value.clone(),
        effect: taint.effect.clone(),
    }));
    taints
}

/// A single-quoted shell word: nothing inside is expanded.
fn shell_quote(value: String) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// A double-quoted YAML scalar (JSON string syntax, which YAML accepts).
pub(crate) fn yaml_string(value: String) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for character in value.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            character if character.is_control() => {
                quoted.push_str(&format!("\\u{:04x}", u32::from(character)));
            }
            character => quoted.push(character),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_survives_quotes_and_expansions() {
        assert_eq!(shell_quote("plain".to_string()), "'plain'");
        assert_eq!(shell_quote("it's $HOME".to_string()), r"'it'\''s $HOME'");
    }

    #[test]
    fn yaml_string_escapes_quotes_backslashes_and_controls() {
        assert_eq!(yaml_string(r#"a"b\c"#.to_string()), r#""a\"b\\c""#);
        assert_eq!(
            yaml_string("line\nbreak".to_string()),
            r#""line\u000abreak""#
        );
    }

    #[test]
    fn control_plane_keeps_default_taint_once() {
        let group: Taint = "dedicated=infra:NoExecute".parse().expect("taint");
        let taints = registered_taints(InstanceGroupRole::ControlPlane, &[group]);
        let keys: Vec<&str> = taints.iter().map(|taint| taint.key.as_str()).collect();
        assert_eq!(keys, vec![CONTROL_PLANE_TAINT_KEY, "dedicated"]);

        let explicit: Taint = "node-role.kubernetes.io/control-plane:NoSchedule"
            .parse()
            .expect("taint");
        let taints = registered_taints(InstanceGroupRole::ControlPlane, &[explicit]);
        assert_eq!(taints.len(), 1);
    }

    #[test]
    fn workers_get_only_their_group_taints() {
        assert!(registered_taints(InstanceGroupRole::Node, &[]).is_empty());
    }

    /// Issue 18: a certificate name known only once the load balancer
    /// exists goes to the plain endpoint file (which the user-data's
    /// substitution reaches), and the node puts it in the certificate;
    /// without one, nothing of it is rendered.
    #[test]
    fn a_placeholder_certificate_name_is_filled_in_on_the_node() {
        let plain = crate::tests::example(InstanceGroupRole::ControlPlane, OsFamily::Debian);
        let deferred = NodeBootstrap {
            api_cert_sans: vec![
                "api.c1.example.com".to_string(),
                "api-public-endpoint.skiff.invalid".to_string(),
            ],
            ..plain.clone()
        };
        let file = |config: &NodeBootstrap, path: &str| {
            node_files(config)
                .expect("renders")
                .into_iter()
                .find(|file| file.path == path)
                .map(|file| file.content)
                .unwrap_or_else(|| panic!("{path}"))
        };
        let endpoint = file(&deferred, paths::API_ENDPOINT_FILE);
        assert!(
            endpoint.contains("\nSKIFF_API_PUBLIC_ENDPOINT=api-public-endpoint.skiff.invalid\n"),
            "{endpoint}"
        );
        let init = file(&deferred, paths::KUBEADM_INIT_TEMPLATE);
        assert!(
            init.contains(&format!("    - \"{API_PUBLIC_ENDPOINT_PLACEHOLDER}\"\n")),
            "{init}"
        );
        assert!(!init.contains(".invalid"), "{init}");
        let script = file(&deferred, paths::BOOTSTRAP_SCRIPT);
        assert!(script.contains(&format!(
            "text=${{text//{API_PUBLIC_ENDPOINT_PLACEHOLDER}/$API_PUBLIC_ENDPOINT}}"
        )));

        assert!(!file(&plain, paths::API_ENDPOINT_FILE).contains("PUBLIC"));
        assert!(
            !file(&plain, paths::KUBEADM_INIT_TEMPLATE).contains(API_PUBLIC_ENDPOINT_PLACEHOLDER)
        );
        assert!(!file(&plain, paths::BOOTSTRAP_SCRIPT).contains("API_PUBLIC_ENDPOINT"));

        let two = NodeBootstrap {
            api_cert_sans: vec!["a.skiff.invalid".to_string(), "b.skiff.invalid".to_string()],
            ..plain
        };
        assert!(node_files(&two).is_err());
    }

    #[test]
    fn pinned_manifest_checksum_is_verified_on_the_node() {
        let config = crate::tests::example(InstanceGroupRole::ControlPlane, OsFamily::Debian);
        let mut pinned = cni::release(skiff_api::Cni::Calico);
        pinned.sha256 = Some("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
        let context = context(
            &NodeBootstrap {
                cni: skiff_api::Cni::Calico,
                ..config
            },
            &pinned,
        )
        .expect("context");
        let environment = environment().expect("environment");
        let script = render(&environment, "bootstrap.sh.j2", &context).expect("script");
        assert!(
            script.contains(
                "verify_sha256 \"$manifest\" '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'"
            ),
            "{script}"
        );
    }
}
