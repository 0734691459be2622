//! User-data as a reviewer reads it: the files a `#cloud-config` document
//! writes, decoded (`encoding: gzip+base64`, `b64`, ... as cloud-init
//! accepts them) and compared file by file as unified diffs of their text,
//! and a change explained by the spec field behind it.
//!
//! # Why the explanation comes from the user-data itself
//!
//! The `before` side is what the live launch template holds; it may have
//! been rendered by an older skiff, from a spec revision since pruned, or
//! changed by hand. So the explanation is read from the two texts the plan
//! compares, not from the spec history: the Kubernetes version each side
//! installs is the bootstrap script's `KUBERNETES_VERSION` (a line skiff's
//! template has always written), and a version change is *verified*: every
//! fact that follows from the version in skiff's table (the version, the
//! package channel, the pause image, the kubeadm API, CoreDNS and etcd) is
//! substituted into the old files, and only what still differs afterwards
//! is reported as "user-data changed" with the files' paths. A change the
//! explanation does not cover is never hidden behind a field name.
//! The container runtime is read and verified the same way: the script's
//! `CONTAINER_RUNTIME` line, with the runtime line and the CRI socket as its
//! facts (`containerRuntime containerd -> cri-o`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use similar::TextDiff;
use skiff_api::{ContainerRuntime, KubernetesVersion};

/// The path that stands for the cloud-config document outside its files
/// (its header comments, `runcmd`, ...).
pub const DOCUMENT: &str = "(cloud-config)";

/// What happened to one file of the user-data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileChangeKind {
    /// The new user-data writes a file the old one did not.
    Added,
    /// The new user-data no longer writes the file.
    Removed,
    /// Both write it, with different text, mode or encoding.
    Changed,
}

/// One changed file of the user-data, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDataFileChange {
    /// The file's path on the node, or [`DOCUMENT`].
    pub path: String,
    /// What happened to it.
    pub change: FileChangeKind,
    /// How the old and new user-data encode it (`gzip+base64 -> text`),
    /// when either encodes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// The old text, decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// The new text, decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The unified diff of the decoded texts (three lines of context).
    pub diff: String,
}

/// A changed user-data, decoded: the files that differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserDataChange {
    /// The changed files, in the order the new user-data writes them
    /// (removed files last); the document outside the files first.
    pub files: Vec<UserDataFileChange>,
}

impl UserDataChange {
    /// The paths of the changed files.
    pub fn paths(&self) -> Vec<&str> {
        self.files.iter().map(|file| file.path.as_str()).collect()
    }
}

/// One file of a cloud-config, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedFile {
    /// Its path on the node.
    pub path: String,
    /// Its mode, e.g. `0755`.
    pub permissions: Option<String>,
    /// The encoding the user-data gave it (`None`: plain text).
    pub encoding: Option<String>,
    /// Its text, decoded.
    pub text: String,
}

/// A cloud-config document taken apart: what it says outside its files,
/// and its files decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedUserData {
    /// The document without its files' contents: its leading comments and
    /// every other key, as YAML.
    pub document: String,
    /// The files in the order it writes them.
    pub files: Vec<DecodedFile>,
}

#[derive(Deserialize)]
struct RawFile {
    path: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    permissions: Option<String>,
}

/// Takes a `#cloud-config` document apart; `None` for anything else (a
/// shell script, text that is not YAML).
pub fn decode(text: &str) -> Option<DecodedUserData> {
    if !text.starts_with("#cloud-config") {
        return None;
    }
    let mut value: serde_json::Map<String, Value> = serde_norway::from_str(text).ok()?;
    let raw_files: Vec<RawFile> = match value.remove("write_files") {
        Some(files) => serde_json::from_value(files).ok()?,
        None => Vec::new(),
    };
    let files = raw_files
        .into_iter()
        .map(|file| {
            let content = file.content.unwrap_or_default();
            let text = decode_content(&content, file.encoding.as_deref());
            DecodedFile {
                path: file.path,
                permissions: file.permissions,
                encoding: file
                    .encoding
                    .filter(|encoding| !is_plain(encoding))
                    .map(|encoding| encoding.to_ascii_lowercase()),
                text,
            }
        })
        .collect();
    let mut document: String = text
        .lines()
        .take_while(|line| line.starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    if !value.is_empty() {
        document.push_str(&serde_norway::to_string(&value).unwrap_or_default());
    }
    Some(DecodedUserData { document, files })
}

fn is_plain(encoding: &str) -> bool {
    matches!(
        encoding.to_ascii_lowercase().as_str(),
        "" | "text/plain" | "plain" | "text"
    )
}

/// A file's content as text, whatever cloud-init encoding it has: `b64` and
/// `base64`, `gz` and `gzip`, and their combinations. Content that does not
/// decode, or is not text, is described rather than shown.
fn decode_content(content: &str, encoding: Option<&str>) -> String {
    use base64::Engine;

    let encoding = encoding.unwrap_or("").to_ascii_lowercase();
    if is_plain(&encoding) {
        return content.to_string();
    }
    let base64 = encoding.contains("b64") || encoding.contains("base64");
    let gzip = encoding.starts_with("gz");
    let mut bytes = content.as_bytes().to_vec();
    if base64 {
        let compact: String = content.split_whitespace().collect();
        match base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) {
            Ok(decoded) => bytes = decoded,
            Err(_) => {
                return format!(
                    "({} characters that are not valid {encoding})\n",
                    content.len()
                )
            }
        }
    }
    if gzip {
        let mut inflated = Vec::new();
        if flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut inflated)
            .is_err()
        {
            return format!(
                "({} bytes that are not a valid gzip stream for {encoding})\n",
                bytes.len()
            );
        }
        bytes = inflated;
    }
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => format!("(binary content, {} bytes)\n", error.as_bytes().len()),
    }
}

/// The unified diff of two texts, labelled with the file's path.
pub fn text_diff(path: &str, before: &str, after: &str) -> String {
    let before = with_final_newline(before);
    let after = with_final_newline(after);
    TextDiff::from_lines(&before, &after)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{path} (before)"), &format!("{path} (after)"))
        .to_string()
}

fn with_final_newline(text: &str) -> String {
    if text.is_empty() || text.ends_with('\n') {
        text.to_string()
    } else {
        format!("{text}\n")
    }
}

/// The files that differ between two user-data texts, decoded; `None` when
/// either side is not a cloud-config (a reviewer then reads the plain diff
/// of the texts).
pub fn change(before: &str, after: &str) -> Option<UserDataChange> {
    let before = decode(before)?;
    let after = decode(after)?;
    let mut files = Vec::new();
    if before.document != after.document {
        files.push(UserDataFileChange {
            path: DOCUMENT.to_string(),
            change: FileChangeKind::Changed,
            encoding: None,
            diff: text_diff(DOCUMENT, &before.document, &after.document),
            before: Some(before.document.clone()),
            after: Some(after.document.clone()),
        });
    }
    let old: BTreeMap<&str, &DecodedFile> = before
        .files
        .iter()
        .map(|file| (file.path.as_str(), file))
        .collect();
    let new_paths: BTreeSet<&str> = after.files.iter().map(|file| file.path.as_str()).collect();
    for file in &after.files {
        let previous = old.get(file.path.as_str()).copied();
        if previous == Some(file) {
            continue;
        }
        let encoding = encoding_note(
            previous.and_then(|previous| previous.encoding.as_deref()),
            file.encoding.as_deref(),
            previous.is_some(),
        );
        let before_text = previous.map(|previous| previous.text.clone());
        let mut diff = text_diff(&file.path, before_text.as_deref().unwrap_or(""), &file.text);
        if let Some(previous) = previous {
            if previous.permissions != file.permissions {
                diff = format!(
                    "mode {} -> {}\n{diff}",
                    previous.permissions.as_deref().unwrap_or("(default)"),
                    file.permissions.as_deref().unwrap_or("(default)")
                );
            }
        }
        files.push(UserDataFileChange {
            path: file.path.clone(),
            change: if previous.is_some() {
                FileChangeKind::Changed
            } else {
                FileChangeKind::Added
            },
            encoding,
            before: before_text,
            after: Some(file.text.clone()),
            diff,
        });
    }
    for file in &before.files {
        if !new_paths.contains(file.path.as_str()) {
            files.push(UserDataFileChange {
                path: file.path.clone(),
                change: FileChangeKind::Removed,
                encoding: file.encoding.clone(),
                diff: text_diff(&file.path, &file.text, ""),
                before: Some(file.text.clone()),
                after: None,
            });
        }
    }
    Some(UserDataChange { files })
}

fn encoding_note(before: Option<&str>, after: Option<&str>, existed: bool) -> Option<String> {
    match (before, after) {
        (None, None) => None,
        (before, after) if before == after => after.map(str::to_string),
        (before, after) if existed => Some(format!(
            "{} -> {}",
            before.unwrap_or("text"),
            after.unwrap_or("text")
        )),
        (_, after) => after.map(str::to_string),
    }
}

/// The Kubernetes version a node's user-data installs: the bootstrap
/// script's `KUBERNETES_VERSION='x.y.z'` line.
pub fn installed_version(user_data: &DecodedUserData) -> Option<KubernetesVersion> {
    user_data.files.iter().find_map(|file| {
        file.text.lines().find_map(|line| {
            let value = line
                .trim()
                .strip_prefix("readonly KUBERNETES_VERSION=")
                .or_else(|| line.trim().strip_prefix("KUBERNETES_VERSION="))?;
            value
                .trim_matches(|character| character == '\'' || character == '"')
                .parse()
                .ok()
        })
    })
}

/// The container runtime a node's user-data runs: the bootstrap script's
/// `CONTAINER_RUNTIME='containerd'` line (`None` for a script of a skiff
/// before `spec.containerRuntime`, which always ran containerd).
pub fn installed_runtime(user_data: &DecodedUserData) -> Option<ContainerRuntime> {
    user_data.files.iter().find_map(|file| {
        file.text.lines().find_map(|line| {
            let value = line.trim().strip_prefix("readonly CONTAINER_RUNTIME=")?;
            match value.trim_matches(|character| character == '\'' || character == '"') {
                "containerd" => Some(ContainerRuntime::Containerd),
                "cri-o" => Some(ContainerRuntime::CriO),
                _ => None,
            }
        })
    })
}

/// Why the instances of a skiff from before `spec.containerRuntime` roll
/// once: the bootstrap script changed with it (the files stay named).
pub const EARLIER_BOOTSTRAP: &str = "bootstrap of an earlier skiff (containerRuntime; containerd's CNI folders pinned; iptables and openssl on rhel)";

/// Whether a control plane's bootstrap script installs Calico through the
/// Tigera operator with the Windows data plane (the cluster has Windows
/// groups; `install_calico_for_windows` in templates/bootstrap.sh.j2).
fn installs_windows_network(user_data: &DecodedUserData) -> bool {
    user_data.files.iter().any(|file| {
        file.text
            .lines()
            .any(|line| line.trim() == "install_calico_for_windows() {")
    })
}

/// Why a control plane rolls when a cluster gains its first Windows group
/// or loses its last: its script installs Calico for Windows or stops to.
/// The script's file stays named too: the rest of its change is not
/// verified against this reason.
pub const WINDOWS_NETWORK_ADDED: &str =
    "Windows groups: Calico through the Tigera operator with its Windows data plane, and kube-proxy for Windows";
/// The other way round.
pub const WINDOWS_NETWORK_REMOVED: &str =
    "no Windows groups left: Calico's Windows data plane no longer installed";

/// The texts that follow from the runtime: the script's runtime line and
/// the CRI socket (the script's and kubeadm's `criSocket`). The script holds
/// both runtimes' steps, so nothing else differs.
fn runtime_facts(from: ContainerRuntime, to: ContainerRuntime) -> Vec<(String, String)> {
    vec![
        (
            format!("readonly CONTAINER_RUNTIME='{from}'"),
            format!("readonly CONTAINER_RUNTIME='{to}'"),
        ),
        (from.cri_socket().to_string(), to.cri_socket().to_string()),
    ]
}

/// Why a group's instances are out of date because its user-data changed,
/// in words: the Kubernetes version step when there is one, the kubelet's
/// registration settings (`nodeLabels`, `taints`), the control-plane
/// components' extra flags and folders (`controlPlane apiServer.extraArgs
/// ...`) and the kubelet settings of the node's patch (`kubelet maxPods
/// ...`) when they change, and "user-data changed" with the files those do
/// not explain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Explanation {
    /// The version each side installs, when they differ.
    pub kubernetes_version: Option<(KubernetesVersion, KubernetesVersion)>,
    /// Other fields, in words (`nodeLabels +team=payments`).
    pub fields: Vec<String>,
    /// Files whose change the fields do not explain.
    pub unexplained: Vec<String>,
}

impl Explanation {
    /// The reasons as the plan lists them.
    pub fn reasons(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if let Some((from, to)) = self.kubernetes_version {
            reasons.push(crate::plan::VersionStep { from, to }.reason());
        }
        reasons.extend(self.fields.iter().cloned());
        if !self.unexplained.is_empty() || reasons.is_empty() {
            reasons.push(if self.unexplained.is_empty() {
                "user-data changed".to_string()
            } else {
                format!("user-data changed: {}", self.unexplained.join(", "))
            });
        }
        reasons
    }
}

/// Explains a user-data change (see the module documentation).
pub fn explain(before: &str, after: &str) -> Explanation {
    if let Some(windows) = crate::windows_user_data::explain(before, after) {
        return windows;
    }
    let (Some(old), Some(new)) = (decode(before), decode(after)) else {
        return Explanation::default();
    };
    let versions = match (installed_version(&old), installed_version(&new)) {
        (Some(from), Some(to)) if from != to => Some((from, to)),
        _ => None,
    };
    let runtimes = match (installed_runtime(&old), installed_runtime(&new)) {
        (Some(from), Some(to)) if from != to => Some((from, to)),
        _ => None,
    };
    let mut facts = Vec::new();
    if let Some((from, to)) = versions {
        facts.extend(version_facts(from, to));
    }
    if let Some((from, to)) = runtimes {
        facts.extend(runtime_facts(from, to));
    }
    let substitute = |text: &str| -> String {
        facts
            .iter()
            .fold(text.to_string(), |text, (old, new)| text.replace(old, new))
    };
    // The API endpoint nodes use (an internal load balancer beside an
    // internet-facing one): named, and its file explained by it.
    let endpoints = match (api_endpoint(&old), api_endpoint(&new)) {
        (Some(from), Some(to)) if from != to => Some((from, to)),
        _ => None,
    };
    let substitute = |text: &str| -> String {
        let text = substitute(text);
        match &endpoints {
            Some((from, to)) => text.replace(
                &format!("{ENDPOINT_LINE}{from}\n"),
                &format!("{ENDPOINT_LINE}{to}\n"),
            ),
            None => text,
        }
    };
    let mut unexplained = Vec::new();
    if substitute(&old.document) != new.document {
        unexplained.push(DOCUMENT.to_string());
    }
    let old_files: BTreeMap<&str, &DecodedFile> = old
        .files
        .iter()
        .map(|file| (file.path.as_str(), file))
        .collect();
    // The kubelet patch (templates/src/kubelet.rs) is read as settings: its
    // change, and the `patches` stanza that names its folder, are the
    // fields it changes.
    let kubelet_change = kubelet_change(&old, &new);
    let grafts = Grafts {
        patches: kubelet_change.is_some(),
    };
    for file in &new.files {
        if file.path == KUBELET_PATCH && kubelet_change.is_some() {
            continue;
        }
        let explained = old_files.get(file.path.as_str()).is_some_and(|previous| {
            let text = substitute(&previous.text);
            previous.permissions == file.permissions
                && previous.encoding == file.encoding
                && (text == file.text || same_but_named_fields(&text, &file.text, grafts))
        });
        if !explained {
            unexplained.push(file.path.clone());
        }
    }
    let new_paths: BTreeSet<&str> = new.files.iter().map(|file| file.path.as_str()).collect();
    let patch_explained = kubelet_change.is_some();
    for file in &old.files {
        let gone = !new_paths.contains(file.path.as_str());
        if gone && !(patch_explained && file.path == KUBELET_PATCH) {
            unexplained.push(file.path.clone());
        }
    }
    let mut fields = Vec::new();
    if let Some((from, to)) = &endpoints {
        fields.push(format!(
            "API endpoint {} -> {}",
            describe_endpoint(from),
            describe_endpoint(to)
        ));
    }
    if let Some((from, to)) = runtimes {
        fields.push(format!("containerRuntime {from} -> {to}"));
    }
    if installed_runtime(&old).is_none() && installed_runtime(&new).is_some() {
        // Instances of a skiff from before the runtime choice: their script
        // changes once, for every group, and the plan says why.
        fields.push(EARLIER_BOOTSTRAP.to_string());
    }
    let (was, is) = (registration(&old), registration(&new));
    if was.labels != is.labels {
        fields.push(format!(
            "nodeLabels {}",
            set_change(was.labels.as_deref(), is.labels.as_deref())
        ));
    }
    if was.taints != is.taints {
        fields.push(format!(
            "taints {} -> {}",
            describe_taints(was.taints.as_ref()),
            describe_taints(is.taints.as_ref())
        ));
    }
    match (
        installs_windows_network(&old),
        installs_windows_network(&new),
    ) {
        (false, true) => fields.push(WINDOWS_NETWORK_ADDED.to_string()),
        (true, false) => fields.push(WINDOWS_NETWORK_REMOVED.to_string()),
        _ => {}
    }
    fields.extend(component_changes(&old, &new));
    fields.extend(kubelet_change);
    match (external_cloud_provider(&old), external_cloud_provider(&new)) {
        (false, true) => fields.push(
            "kubelet cloud-provider (unset) -> external, node name host name -> private DNS name (spec.addons.cloudControllerManager)"
                .to_string(),
        ),
        (true, false) => fields.push(
            "kubelet cloud-provider external -> (unset), node name private DNS name -> host name (spec.addons.cloudControllerManager)"
                .to_string(),
        ),
        _ => {}
    }
    Explanation {
        kubernetes_version: versions,
        fields,
        unexplained,
    }
}

/// The line of [`skiff_templates::paths::API_ENDPOINT_FILE`] that names the
/// host nodes reach the API at.
const ENDPOINT_LINE: &str = "SKIFF_API_ENDPOINT=";

/// The host a node reaches the API at, from its endpoint file.
fn api_endpoint(user_data: &DecodedUserData) -> Option<String> {
    let file = user_data
        .files
        .iter()
        .find(|file| file.path == skiff_templates::paths::API_ENDPOINT_FILE)?;
    file.text
        .lines()
        .find_map(|line| line.strip_prefix(ENDPOINT_LINE))
        .map(str::to_string)
}

/// An endpoint in words: the placeholder a load balancer's DNS name
/// replaces once the load balancer exists says so.
fn describe_endpoint(host: &str) -> String {
    if host == crate::desired::compute::API_ENDPOINT_PLACEHOLDER {
        "a load balancer's DNS name (known after apply)".to_string()
    } else {
        host.to_string()
    }
}

/// Whether a user-data's kubelet runs with the external cloud provider
/// under the instance's private DNS name (its kubeadm join configuration
/// names the node by the placeholder the node fills in from instance
/// metadata: templates/templates/node-registration.yaml.j2).
fn external_cloud_provider(user_data: &DecodedUserData) -> bool {
    user_data.files.iter().any(|file| {
        file.path == skiff_templates::paths::KUBEADM_JOIN_TEMPLATE
            && file.text.contains("@SKIFF_NODE_NAME@")
    })
}

/// Where skiff writes a node's kubelet settings.
const KUBELET_PATCH: &str = skiff_templates::paths::KUBELET_PATCH;

/// The kubelet settings a user-data's patch sets (without `apiVersion` and
/// `kind`), flattened to dotted names (`kubeReserved.cpu`); empty without
/// a patch, `None` when the patch is not a YAML map.
fn kubelet_settings(user_data: &DecodedUserData) -> Option<BTreeMap<String, String>> {
    let Some(file) = user_data
        .files
        .iter()
        .find(|file| file.path == KUBELET_PATCH)
    else {
        return Some(BTreeMap::new());
    };
    let Value::Object(fields) = serde_norway::from_str::<Value>(&file.text).ok()? else {
        return None;
    };
    let mut settings = BTreeMap::new();
    for (name, value) in fields {
        if name == "apiVersion" || name == "kind" {
            continue;
        }
        match value {
            Value::Object(entries) => {
                for (key, value) in entries {
                    settings.insert(format!("{name}.{key}"), scalar_text(&value));
                }
            }
            value => {
                settings.insert(name, scalar_text(&value));
            }
        }
    }
    Some(settings)
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// `kubelet maxPods 110 -> 250, kubeReserved.cpu (unset) -> 100m` when the
/// two sides' kubelet patches differ and both read as settings.
fn kubelet_change(old: &DecodedUserData, new: &DecodedUserData) -> Option<String> {
    let (before, after) = (kubelet_settings(old)?, kubelet_settings(new)?);
    let changes = map_changes(&before, &after);
    (!changes.is_empty()).then(|| format!("kubelet {}", changes.join(", ")))
}

/// `name a -> b` for each key whose value differs, `(unset)` for a missing one.
fn map_changes(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    names
        .into_iter()
        .filter(|name| before.get(*name) != after.get(*name))
        .map(|name| {
            let side = |map: &BTreeMap<String, String>| {
                map.get(name)
                    .cloned()
                    .unwrap_or_else(|| "(unset)".to_string())
            };
            format!("{name} {} -> {}", side(before), side(after))
        })
        .collect()
}

/// The control-plane components' settings a ClusterConfiguration holds:
/// (ClusterConfiguration path, field name as the spec spells it).
const COMPONENT_SETTINGS: [(&[&str], &str); 7] = [
    (&["apiServer", "extraArgs"], "apiServer.extraArgs"),
    (&["apiServer", "extraVolumes"], "apiServer.extraVolumes"),
    (
        &["controllerManager", "extraArgs"],
        "controllerManager.extraArgs",
    ),
    (
        &["controllerManager", "extraVolumes"],
        "controllerManager.extraVolumes",
    ),
    (&["scheduler", "extraArgs"], "scheduler.extraArgs"),
    (&["scheduler", "extraVolumes"], "scheduler.extraVolumes"),
    (&["etcd", "local", "extraArgs"], "etcd.extraArgs"),
];

/// The first ClusterConfiguration of a user-data's kubeadm files.
fn cluster_configuration(user_data: &DecodedUserData) -> Option<Value> {
    user_data
        .files
        .iter()
        .filter_map(|file| kubeadm_documents(&file.text))
        .flatten()
        .find(|document| {
            document.get("kind").and_then(Value::as_str) == Some("ClusterConfiguration")
        })
}

fn value_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |value, key| value.get(*key))
}

/// A component setting as `name -> text`: extraArgs in either kubeadm form
/// (v1beta3 a map, v1beta4 a list of {name, value}), extraVolumes by name.
fn setting_entries(value: Option<&Value>) -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    match value {
        Some(Value::Object(map)) => {
            for (name, value) in map {
                entries.insert(name.clone(), scalar_text(value));
            }
        }
        Some(Value::Array(items)) => {
            for item in items {
                let name = item.get("name").map(scalar_text).unwrap_or_default();
                let text = match item.get("value") {
                    Some(value) => scalar_text(value),
                    None => {
                        let mut volume = item.clone();
                        if let Value::Object(fields) = &mut volume {
                            fields.remove("name");
                        }
                        volume.to_string()
                    }
                };
                entries.insert(name, text);
            }
        }
        _ => {}
    }
    entries
}

/// `controlPlane apiServer.extraArgs oidc-client-id (unset) -> k` for each
/// component setting whose entries differ between the two sides'
/// ClusterConfigurations.
fn component_changes(old: &DecodedUserData, new: &DecodedUserData) -> Vec<String> {
    let (Some(before), Some(after)) = (cluster_configuration(old), cluster_configuration(new))
    else {
        return Vec::new();
    };
    COMPONENT_SETTINGS
        .iter()
        .filter_map(|(path, name)| {
            let changes = map_changes(
                &setting_entries(value_at(&before, path)),
                &setting_entries(value_at(&after, path)),
            );
            (!changes.is_empty()).then(|| format!("controlPlane {name} {}", changes.join(", ")))
        })
        .collect()
}

/// What [`same_but_named_fields`] takes from the new side.
#[derive(Debug, Clone, Copy)]
struct Grafts {
    /// The Init- and JoinConfiguration's `patches` (the kubelet patch changed).
    patches: bool,
}

/// The kubelet's registration settings as the kubeadm configuration files
/// hold them: `nodeRegistration.kubeletExtraArgs` `node-labels`, and
/// `nodeRegistration.taints`.
#[derive(Debug, Default, PartialEq)]
struct Registration {
    labels: Option<String>,
    taints: Option<Value>,
}

/// The YAML documents of a kubeadm configuration file, or `None` when the
/// file is not one.
fn kubeadm_documents(text: &str) -> Option<Vec<Value>> {
    if !text.contains("apiVersion: kubeadm.k8s.io/") {
        return None;
    }
    let mut documents = Vec::new();
    for document in serde_norway::Deserializer::from_str(text) {
        documents.push(Value::deserialize(document).ok()?);
    }
    Some(documents)
}

fn labels_of(registration: &Value) -> Option<String> {
    let arguments = registration.get("kubeletExtraArgs")?;
    let value = match arguments {
        // v1beta4: a list of {name, value}.
        Value::Array(items) => items
            .iter()
            .find(|item| item.get("name").and_then(Value::as_str) == Some("node-labels"))?
            .get("value")?,
        // v1beta3: a map.
        Value::Object(map) => map.get("node-labels")?,
        _ => return None,
    };
    value.as_str().map(str::to_string)
}

/// The registration of the first kubeadm document that has one.
fn registration(user_data: &DecodedUserData) -> Registration {
    user_data
        .files
        .iter()
        .filter_map(|file| kubeadm_documents(&file.text))
        .flatten()
        .find_map(|document| {
            let registration = document.get("nodeRegistration")?;
            Some(Registration {
                labels: labels_of(registration),
                taints: registration.get("taints").cloned(),
            })
        })
        .unwrap_or_default()
}

/// Whether two kubeadm configuration files say the same once the old one
/// takes the new one's settings that the explanation names (and their
/// comment lines are equal): the registration (labels, taints), the
/// control-plane components' extra flags and folders, and, when the kubelet
/// patch changed, the `patches` stanza naming its folder.
fn same_but_named_fields(before: &str, after: &str, grafts: Grafts) -> bool {
    let comments = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| line.trim_start().starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    let (Some(mut old), Some(new)) = (kubeadm_documents(before), kubeadm_documents(after)) else {
        return false;
    };
    if comments(before) != comments(after) || old.len() != new.len() {
        return false;
    }
    for (old, new) in old.iter_mut().zip(&new) {
        let mut grafted: Vec<&[&str]> = vec![
            &["nodeRegistration", "taints"],
            &["nodeRegistration", "kubeletExtraArgs"],
        ];
        if new.get("kind").and_then(Value::as_str) == Some("ClusterConfiguration") {
            grafted.extend(COMPONENT_SETTINGS.iter().map(|(path, _)| *path));
            // A component's section exists only with settings: one that
            // holds nothing else comes and goes with them.
            for section in ["controllerManager", "scheduler"] {
                let only_settings = |document: &Value| match document.get(section) {
                    None => true,
                    Some(Value::Object(fields)) => fields
                        .keys()
                        .all(|key| key == "extraArgs" || key == "extraVolumes"),
                    Some(_) => false,
                };
                if only_settings(old) && only_settings(new) {
                    graft(old, new, &[section]);
                }
            }
        }
        if grafts.patches {
            grafted.push(&["patches"]);
        }
        for path in grafted {
            graft(old, new, path);
        }
    }
    old == new
}

/// Makes `old` at `path` what `new` has there (removed when `new` has
/// nothing), where `old` has the parents.
fn graft(old: &mut Value, new: &Value, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let Some(Value::Object(parent)) = parents
        .iter()
        .try_fold(old, |value, key| value.get_mut(*key))
    else {
        return;
    };
    match value_at(new, path) {
        Some(value) => {
            parent.insert(last.to_string(), value.clone());
        }
        None => {
            parent.remove(*last);
        }
    }
}

/// `+added -removed` entries of a comma-separated list.
pub(crate) fn set_change(before: Option<&str>, after: Option<&str>) -> String {
    let entries = |text: Option<&str>| -> BTreeSet<String> {
        text.unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (before, after) = (entries(before), entries(after));
    let mut words: Vec<String> = after
        .difference(&before)
        .map(|entry| format!("+{entry}"))
        .collect();
    words.extend(before.difference(&after).map(|entry| format!("-{entry}")));
    words.join(" ")
}

/// Taints as `key=value:Effect`, comma-separated; `(none)` for none.
fn describe_taints(taints: Option<&Value>) -> String {
    let described: Vec<String> = taints
        .and_then(Value::as_array)
        .map(|taints| {
            taints
                .iter()
                .map(|taint| {
                    let text = |key: &str| taint.get(key).and_then(Value::as_str).unwrap_or("");
                    let value = text("value");
                    let effect = text("effect");
                    match value.is_empty() {
                        true => format!("{}:{effect}", text("key")),
                        false => format!("{}={value}:{effect}", text("key")),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if described.is_empty() {
        "(none)".to_string()
    } else {
        described.join(",")
    }
}

/// The texts that follow from a version, old and new, longest first so
/// that a longer text is replaced before a shorter one inside it.
pub(crate) fn version_facts(
    from: KubernetesVersion,
    to: KubernetesVersion,
) -> Vec<(String, String)> {
    let mut facts = vec![
        (from.pause_image().to_string(), to.pause_image().to_string()),
        (
            from.kubeadm_api_version().to_string(),
            to.kubeadm_api_version().to_string(),
        ),
        (from.to_string(), to.to_string()),
        (from.package_channel(), to.package_channel()),
        (
            format!("{}.{}", from.major, from.minor),
            format!("{}.{}", to.major, to.minor),
        ),
        (
            from.coredns_version().to_string(),
            to.coredns_version().to_string(),
        ),
        (
            from.etcd_version().to_string(),
            to.etcd_version().to_string(),
        ),
    ];
    facts.retain(|(old, new)| old != new);
    facts.sort_by_key(|(old, _)| std::cmp::Reverse(old.len()));
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip_base64(text: &str) -> String {
        use base64::Engine;
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(text.as_bytes()).expect("gzip");
        base64::engine::general_purpose::STANDARD.encode(encoder.finish().expect("gzip"))
    }

    fn script(version: &str) -> String {
        let channel = version
            .rsplit_once('.')
            .map(|(minor, _)| minor)
            .unwrap_or(version);
        format!(
            "#!/bin/bash\nset -euo pipefail\nreadonly KUBERNETES_VERSION='{version}'\nreadonly PACKAGE_REPOSITORY='https://pkgs.k8s.io/core:/stable:/v{channel}/deb'\ninstall_packages\njoin\n"
        )
    }

    fn cloud_config(version: &str, encoded: bool, extra: &str) -> String {
        let script = script(version);
        let file = if encoded {
            format!(
                "- path: /usr/local/sbin/skiff-bootstrap\n  permissions: '0755'\n  encoding: gzip+base64\n  content: {}\n",
                gzip_base64(&script)
            )
        } else {
            let indented: String = script.lines().map(|line| format!("    {line}\n")).collect();
            format!(
                "- path: /usr/local/sbin/skiff-bootstrap\n  permissions: '0755'\n  content: |\n{indented}"
            )
        };
        format!(
            "#cloud-config\n# Kubernetes {version}.\nwrite_files:\n- path: /etc/skiff/api-endpoint.env\n  permissions: '0644'\n  content: |\n    SKIFF_API_ENDPOINT=api.example.com{extra}\n{file}runcmd:\n- [/usr/local/sbin/skiff-bootstrap]\n"
        )
    }

    #[test]
    fn encoded_files_are_decoded_and_diffed_as_text() {
        let before = cloud_config("1.34.2", true, "");
        let after = cloud_config("1.35.1", true, "");
        assert!(
            before.lines().any(|line| line.len() > 100),
            "the fixture holds base64"
        );
        let change = change(&before, &after).expect("cloud-configs");
        let script = change
            .files
            .iter()
            .find(|file| file.path == "/usr/local/sbin/skiff-bootstrap")
            .expect("the script changed");
        assert_eq!(script.change, FileChangeKind::Changed);
        assert_eq!(script.encoding.as_deref(), Some("gzip+base64"));
        assert!(
            script
                .diff
                .contains("\n-readonly KUBERNETES_VERSION='1.34.2'\n"),
            "{}",
            script.diff
        );
        assert!(
            script
                .diff
                .contains("\n+readonly KUBERNETES_VERSION='1.35.1'\n"),
            "{}",
            script.diff
        );
        assert_eq!(
            script.after.as_deref(),
            Some(super::tests::script("1.35.1").as_str())
        );
        assert!(change.paths().contains(&DOCUMENT), "{:?}", change.paths());
        assert!(!change.paths().contains(&"/etc/skiff/api-endpoint.env"));
        for file in &change.files {
            assert!(
                file.diff.lines().all(|line| line.len() <= 100),
                "{}",
                file.diff
            );
        }
    }

    #[test]
    fn b64_and_gz_alone_decode_and_garbage_is_described() {
        use base64::Engine;
        let plain = base64::engine::general_purpose::STANDARD.encode("hello\n");
        assert_eq!(decode_content(&plain, Some("b64")), "hello\n");
        assert_eq!(decode_content(&plain, Some("base64")), "hello\n");
        assert_eq!(
            decode_content(&gzip_base64("zipped\n"), Some("gz+b64")),
            "zipped\n"
        );
        let garbage = decode_content("!!!not base64!!!", Some("gzip+base64"));
        assert!(garbage.contains("not valid gzip+base64"), "{garbage}");
    }

    #[test]
    fn a_version_change_is_explained_and_nothing_else_is_hidden() {
        let before = cloud_config("1.34.2", false, "");
        let after = cloud_config("1.35.1", false, "");
        let explanation = explain(&before, &after);
        assert_eq!(
            explanation.reasons(),
            ["kubernetesVersion 1.34.2 -> 1.35.1"],
            "{explanation:?}"
        );
        let step = crate::plan::VersionStep::from_reason(&explanation.reasons()[0])
            .expect("the reason parses back");
        assert_eq!(
            (step.from.to_string(), step.to.to_string()),
            ("1.34.2".into(), "1.35.1".into())
        );
        assert!(step.raises_minor());

        // The same step with the endpoint changed too: that file is named.
        let moved = cloud_config("1.35.1", false, "\n    SKIFF_API_PORT=8443");
        let explanation = explain(&before, &moved);
        assert_eq!(
            explanation.reasons(),
            [
                "kubernetesVersion 1.34.2 -> 1.35.1",
                "user-data changed: /etc/skiff/api-endpoint.env"
            ]
        );

        // No version step: the files are named.
        let explanation = explain(&before, &cloud_config("1.34.2", false, "\n    X=1"));
        assert_eq!(
            explanation.reasons(),
            ["user-data changed: /etc/skiff/api-endpoint.env"]
        );
        // Not a cloud-config at all: still says so.
        assert_eq!(
            explain("#!/bin/sh\necho a\n", "#!/bin/sh\necho b\n").reasons(),
            ["user-data changed"]
        );
    }

    /// Issue 18: a node moved to the internal API load balancer says so;
    /// the endpoint file is explained by it, nothing else is hidden.
    #[test]
    fn an_endpoint_change_is_named() {
        let before = cloud_config("1.34.2", false, "");
        let after = before.replace(
            "SKIFF_API_ENDPOINT=api.example.com",
            "SKIFF_API_ENDPOINT=api-endpoint.skiff.invalid",
        );
        assert_eq!(
            explain(&before, &after).reasons(),
            ["API endpoint api.example.com -> a load balancer's DNS name (known after apply)"]
        );
        let known = after.replace("api-endpoint.skiff.invalid", "api-int-c1.elb.amazonaws.com");
        assert_eq!(
            explain(&before, &known).reasons(),
            ["API endpoint api.example.com -> api-int-c1.elb.amazonaws.com"]
        );
        let and_more = cloud_config("1.34.2", false, "\n    X=1").replace(
            "SKIFF_API_ENDPOINT=api.example.com",
            "SKIFF_API_ENDPOINT=api-int-c1.elb.amazonaws.com",
        );
        assert_eq!(
            explain(&before, &and_more).reasons(),
            [
                "API endpoint api.example.com -> api-int-c1.elb.amazonaws.com",
                "user-data changed: /etc/skiff/api-endpoint.env"
            ]
        );
    }

    fn join_configuration(labels: &str, taint: Option<&str>) -> String {
        let taints = taint
            .map(|key| format!("  taints:\n    - key: \"{key}\"\n      value: \"yes\"\n      effect: \"NoSchedule\"\n"))
            .unwrap_or_default();
        let text = format!(
            "# skiff: kubeadm configuration for joining\napiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\nnodeRegistration:\n  criSocket: unix:///run/containerd/containerd.sock\n{taints}  kubeletExtraArgs:\n    - name: node-labels\n      value: \"{labels}\"\n"
        );
        let indented: String = text.lines().map(|line| format!("    {line}\n")).collect();
        format!(
            "#cloud-config\nwrite_files:\n- path: /etc/skiff/kubeadm-join.yaml.template\n  permissions: '0600'\n  content: |\n{indented}"
        )
    }

    #[test]
    fn labels_and_taints_are_named_and_verified() {
        let before = join_configuration("skiff.dev/instance-group=nodes,team=a", None);
        let after = join_configuration(
            "skiff.dev/instance-group=nodes,team=b,gpu=none",
            Some("dedicated"),
        );
        assert_eq!(
            explain(&before, &after).reasons(),
            [
                "nodeLabels +gpu=none +team=b -team=a",
                "taints (none) -> dedicated=yes:NoSchedule"
            ]
        );
        // Anything else in the same file is still named.
        let other = after.replace("containerd.sock", "crio.sock");
        assert_eq!(
            explain(&before, &other)
                .reasons()
                .last()
                .map(String::as_str),
            Some("user-data changed: /etc/skiff/kubeadm-join.yaml.template")
        );
    }

    /// The real templates: a version step between rows of the table is
    /// explained by the version alone, for every role with a script. If
    /// the templates come to derive more from the version than the table's
    /// facts, this says which file is left unexplained.
    #[test]
    fn real_user_data_of_each_step_of_the_table_is_explained_by_the_version() {
        use skiff_api::{Cni, InstanceGroupRole, OsFamily};
        use skiff_templates::{EtcdBackups, NodeBootstrap, StateStoreLocation};

        let render = |role: InstanceGroupRole, version: &str| {
            skiff_templates::render_user_data(&NodeBootstrap {
                cluster_name: "c1.example.com".to_string(),
                instance_group: "group-us-east-1a".to_string(),
                role,
                os_family: OsFamily::Debian,
                kubernetes_version: version.parse().expect("a version"),
                container_runtime: Default::default(),
                api_endpoint: "api.c1.example.com".to_string(),
                api_port: 443,
                api_cert_sans: Vec::new(),
                pod_cidr: "100.96.0.0/11".to_string(),
                service_cidr: "10.96.0.0/12".to_string(),
                cluster_dns: "10.96.0.10".to_string(),
                cni: Cni::Cilium,
                windows_nodes: false,
                node_labels: BTreeMap::from([("team".to_string(), "a".to_string())]),
                taints: Vec::new(),
                state_store: StateStoreLocation {
                    bucket: "skiff-state".to_string(),
                    cluster_prefix: "c1.example.com".to_string(),
                    region: "us-east-1".to_string(),
                    endpoint: None,
                    path_style: false,
                    kms_key: None,
                },
                region: "us-east-1".to_string(),
                aws_endpoint: None,
                etcd_backups: EtcdBackups::default(),
                audit: Default::default(),
                kubelet: Default::default(),
                component_arguments: Default::default(),
                external_etcd: None,
                external_cloud_provider: false,
            })
            .expect("renders")
        };
        let offered = skiff_api::version::supported_versions();
        let mut steps: Vec<(KubernetesVersion, KubernetesVersion)> = offered
            .windows(2)
            .filter(|pair| pair[0].minor != pair[1].minor)
            .map(|pair| (pair[0], pair[1]))
            .collect();
        steps.push(("1.34.2".parse().expect("v"), "1.34.3".parse().expect("v")));
        assert!(steps.len() >= 4, "{steps:?}");
        for role in [InstanceGroupRole::ControlPlane, InstanceGroupRole::Node] {
            for (from, to) in &steps {
                let (before, after) = (
                    render(role, &from.to_string()),
                    render(role, &to.to_string()),
                );
                assert_ne!(before, after);
                assert_eq!(
                    explain(&before, &after).reasons(),
                    [format!("kubernetesVersion {from} -> {to}")],
                    "{role:?} {from} -> {to}"
                );
            }
        }
    }

    /// A cluster's first Windows group (with Calico) rolls its control
    /// plane, whose script then installs Calico for Windows: the plan says
    /// so, and still names the script, whose change is not verified.
    #[test]
    fn a_windows_group_added_to_a_calico_cluster_is_named_as_the_control_planes_reason() {
        use skiff_api::{Cni, InstanceGroupRole, OsFamily};
        use skiff_templates::{AuditLog, EtcdBackups, NodeBootstrap, StateStoreLocation};

        let render = |cni: Cni, windows_nodes: bool| {
            skiff_templates::render_user_data(&NodeBootstrap {
                cluster_name: "c1.example.com".to_string(),
                instance_group: "control-plane-us-east-1a".to_string(),
                role: InstanceGroupRole::ControlPlane,
                os_family: OsFamily::Debian,
                kubernetes_version: "1.34.2".parse().expect("a version"),
                container_runtime: Default::default(),
                api_endpoint: "api.c1.example.com".to_string(),
                api_port: 443,
                api_cert_sans: Vec::new(),
                pod_cidr: "100.96.0.0/11".to_string(),
                service_cidr: "10.96.0.0/12".to_string(),
                cluster_dns: "10.96.0.10".to_string(),
                cni,
                windows_nodes,
                node_labels: BTreeMap::new(),
                taints: Vec::new(),
                state_store: StateStoreLocation {
                    bucket: "skiff-state".to_string(),
                    cluster_prefix: "c1.example.com".to_string(),
                    region: "us-east-1".to_string(),
                    endpoint: None,
                    path_style: false,
                    kms_key: None,
                },
                region: "us-east-1".to_string(),
                aws_endpoint: None,
                etcd_backups: EtcdBackups::default(),
                audit: AuditLog::default(),
                kubelet: Default::default(),
                component_arguments: Default::default(),
                external_etcd: None,
                external_cloud_provider: false,
            })
            .expect("renders")
        };
        let (linux, windows) = (render(Cni::Calico, false), render(Cni::Calico, true));
        assert_ne!(linux, windows);
        let reasons = explain(&linux, &windows).reasons();
        assert_eq!(reasons[0], WINDOWS_NETWORK_ADDED, "{reasons:?}");
        assert!(reasons[1].starts_with("user-data changed: "), "{reasons:?}");
        assert_eq!(
            explain(&windows, &linux).reasons()[0],
            WINDOWS_NETWORK_REMOVED
        );
        // Flannel and Cilium control planes do not change at all.
        for cni in [Cni::Flannel, Cni::Cilium] {
            assert_eq!(render(cni, false), render(cni, true), "{cni}");
        }
    }

    /// `spec.controlPlane.apiServer.audit` changes the control plane's
    /// user-data only; the roll names the flag or the file that changed.
    #[test]
    fn an_audit_change_rolls_the_control_plane_and_names_the_changed_files() {
        use skiff_api::{Cni, InstanceGroupRole, OsFamily};
        use skiff_templates::{AuditLog, EtcdBackups, NodeBootstrap, StateStoreLocation};

        let render = |role: InstanceGroupRole, audit: AuditLog| {
            skiff_templates::render_user_data(&NodeBootstrap {
                cluster_name: "c1.example.com".to_string(),
                instance_group: "group-us-east-1a".to_string(),
                role,
                os_family: OsFamily::Debian,
                kubernetes_version: "1.34.2".parse().expect("a version"),
                container_runtime: Default::default(),
                api_endpoint: "api.c1.example.com".to_string(),
                api_port: 443,
                api_cert_sans: Vec::new(),
                pod_cidr: "100.96.0.0/11".to_string(),
                service_cidr: "10.96.0.0/12".to_string(),
                cluster_dns: "10.96.0.10".to_string(),
                cni: Cni::Cilium,
                windows_nodes: false,
                node_labels: BTreeMap::new(),
                taints: Vec::new(),
                state_store: StateStoreLocation {
                    bucket: "skiff-state".to_string(),
                    cluster_prefix: "c1.example.com".to_string(),
                    region: "us-east-1".to_string(),
                    endpoint: None,
                    path_style: false,
                    kms_key: None,
                },
                region: "us-east-1".to_string(),
                aws_endpoint: None,
                etcd_backups: EtcdBackups::default(),
                audit,
                kubelet: Default::default(),
                component_arguments: Default::default(),
                external_etcd: None,
                external_cloud_provider: false,
            })
            .expect("renders")
        };
        let rotation = AuditLog {
            max_age_days: 7,
            ..AuditLog::default()
        };
        let policy = AuditLog {
            policy: Some(
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Metadata\n"
                    .to_string(),
            ),
            ..AuditLog::default()
        };
        let base = render(InstanceGroupRole::ControlPlane, AuditLog::default());
        assert_eq!(
            explain(
                &base,
                &render(InstanceGroupRole::ControlPlane, rotation.clone())
            )
            .reasons(),
            ["controlPlane apiServer.extraArgs audit-log-maxage 30 -> 7"]
        );
        // Anything else changed in the same file is still named.
        let rotated = render(InstanceGroupRole::ControlPlane, rotation.clone());
        let edited = rotated.replace("dnsDomain: cluster.local", "dnsDomain: cluster.example");
        assert_ne!(rotated, edited);
        assert_eq!(
            explain(&base, &edited).reasons(),
            [
                "controlPlane apiServer.extraArgs audit-log-maxage 30 -> 7",
                "user-data changed: /etc/skiff/kubeadm-init.yaml.template"
            ]
        );
        assert_eq!(
            explain(&base, &render(InstanceGroupRole::ControlPlane, policy)).reasons(),
            ["user-data changed: /etc/kubernetes/audit/policy.yaml"]
        );
        assert_eq!(
            render(InstanceGroupRole::Node, AuditLog::default()),
            render(InstanceGroupRole::Node, rotation),
            "workers run no API server: their user-data stays"
        );
    }

    /// A node's kubelet patch is read as settings and named by field; a
    /// patch that does not read as settings hides nothing.
    #[test]
    fn a_kubelet_patch_change_is_named_and_a_broken_one_is_not_hidden() {
        use skiff_api::{Cni, InstanceGroupRole, KubeletSpec, OsFamily};
        use skiff_templates::{EtcdBackups, NodeBootstrap, StateStoreLocation};

        let render = |kubelet: KubeletSpec| {
            skiff_templates::render_user_data(&NodeBootstrap {
                cluster_name: "c1.example.com".to_string(),
                instance_group: "nodes".to_string(),
                role: InstanceGroupRole::Node,
                os_family: OsFamily::Debian,
                kubernetes_version: "1.34.2".parse().expect("a version"),
                container_runtime: Default::default(),
                api_endpoint: "api.c1.example.com".to_string(),
                api_port: 443,
                api_cert_sans: Vec::new(),
                pod_cidr: "100.96.0.0/11".to_string(),
                service_cidr: "10.96.0.0/12".to_string(),
                cluster_dns: "10.96.0.10".to_string(),
                cni: Cni::Cilium,
                windows_nodes: false,
                node_labels: BTreeMap::new(),
                taints: Vec::new(),
                state_store: StateStoreLocation {
                    bucket: "skiff-state".to_string(),
                    cluster_prefix: "c1.example.com".to_string(),
                    region: "us-east-1".to_string(),
                    endpoint: None,
                    path_style: false,
                    kms_key: None,
                },
                region: "us-east-1".to_string(),
                aws_endpoint: None,
                etcd_backups: EtcdBackups::default(),
                audit: Default::default(),
                kubelet,
                component_arguments: Default::default(),
                external_etcd: None,
                external_cloud_provider: false,
            })
            .expect("renders")
        };
        let base = render(KubeletSpec::default());
        let tuned = render(KubeletSpec {
            max_pods: Some(250),
            ..KubeletSpec::default()
        });
        assert_eq!(
            explain(&base, &tuned).reasons(),
            ["kubelet maxPods (unset) -> 250"]
        );
        assert_eq!(
            explain(&tuned, &base).reasons(),
            ["kubelet maxPods 250 -> (unset)"]
        );
        let broken = tuned.replace("maxPods: 250", "maxPods: [250");
        assert_ne!(broken, tuned);
        assert_eq!(
            explain(&base, &broken).reasons(),
            [format!(
                "user-data changed: {KUBELET_PATCH}, /etc/skiff/kubeadm-join.yaml.template"
            )]
        );
    }

    /// `spec.containerRuntime` (or a group's): the roll names the runtime
    /// and nothing else, for both roles and families, and a runtime change
    /// beside another change still names the other file.
    #[test]
    fn a_runtime_change_is_explained_by_the_runtime_alone() {
        use skiff_api::{Cni, ContainerRuntime, InstanceGroupRole, OsFamily};
        use skiff_templates::{EtcdBackups, NodeBootstrap, StateStoreLocation};

        let render = |role: InstanceGroupRole,
                      os_family: OsFamily,
                      container_runtime: ContainerRuntime,
                      cluster_dns: &str| {
            skiff_templates::render_user_data(&NodeBootstrap {
                cluster_name: "c1.example.com".to_string(),
                instance_group: "group-us-east-1a".to_string(),
                role,
                os_family,
                kubernetes_version: "1.34.2".parse().expect("a version"),
                container_runtime,
                api_endpoint: "api.c1.example.com".to_string(),
                api_port: 443,
                api_cert_sans: Vec::new(),
                pod_cidr: "100.96.0.0/11".to_string(),
                service_cidr: "10.96.0.0/12".to_string(),
                cluster_dns: cluster_dns.to_string(),
                cni: Cni::Cilium,
                windows_nodes: false,
                node_labels: BTreeMap::new(),
                taints: Vec::new(),
                state_store: StateStoreLocation {
                    bucket: "skiff-state".to_string(),
                    cluster_prefix: "c1.example.com".to_string(),
                    region: "us-east-1".to_string(),
                    endpoint: None,
                    path_style: false,
                    kms_key: None,
                },
                region: "us-east-1".to_string(),
                aws_endpoint: None,
                etcd_backups: EtcdBackups::default(),
                audit: Default::default(),
                kubelet: Default::default(),
                component_arguments: Default::default(),
                external_etcd: None,
                external_cloud_provider: false,
            })
            .expect("renders")
        };
        let (containerd, crio) = (ContainerRuntime::Containerd, ContainerRuntime::CriO);
        for role in [InstanceGroupRole::ControlPlane, InstanceGroupRole::Node] {
            for family in [OsFamily::Debian, OsFamily::Rhel] {
                let before = render(role, family, containerd, "10.96.0.10");
                let after = render(role, family, crio, "10.96.0.10");
                // A script from before the runtime choice (no runtime line):
                // the reason says why, and the files stay named.
                let earlier =
                    before.replacen("    readonly CONTAINER_RUNTIME='containerd'\n", "", 1);
                assert_ne!(earlier, before, "the script holds the runtime line");
                let reasons = explain(&earlier, &before).reasons();
                assert_eq!(reasons[0], EARLIER_BOOTSTRAP, "{role:?} {family:?}");
                assert!(
                    reasons[1].starts_with("user-data changed: ")
                        && reasons[1].contains("skiff-bootstrap"),
                    "{reasons:?}"
                );
                assert_ne!(before, after);
                assert_eq!(
                    explain(&before, &after).reasons(),
                    ["containerRuntime containerd -> cri-o"],
                    "{role:?} {family:?}"
                );
                assert_eq!(
                    explain(&after, &before).reasons(),
                    ["containerRuntime cri-o -> containerd"],
                    "{role:?} {family:?}"
                );
            }
        }
        // clusterDNS is in the control plane's kubelet configuration.
        let before = render(
            InstanceGroupRole::ControlPlane,
            OsFamily::Debian,
            containerd,
            "10.96.0.10",
        );
        let both = render(
            InstanceGroupRole::ControlPlane,
            OsFamily::Debian,
            crio,
            "10.96.0.11",
        );
        let reasons = explain(&before, &both).reasons();
        assert_eq!(reasons[0], "containerRuntime containerd -> cri-o");
        assert!(
            reasons
                .last()
                .is_some_and(|reason| reason.starts_with("user-data changed: ")),
            "the other change must still be named: {reasons:?}"
        );
    }

    #[test]
    fn an_encoding_change_alone_is_not_taken_for_a_version_change() {
        let before = cloud_config("1.34.2", true, "");
        let after = cloud_config("1.34.2", false, "");
        let explanation = explain(&before, &after);
        assert_eq!(
            explanation.reasons(),
            ["user-data changed: /usr/local/sbin/skiff-bootstrap"]
        );
        let change = change(&before, &after).expect("cloud-configs");
        assert_eq!(change.files.len(), 1, "{change:?}");
        assert_eq!(
            change.files[0].encoding.as_deref(),
            Some("gzip+base64 -> text")
        );
    }
}
