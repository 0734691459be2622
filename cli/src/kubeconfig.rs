//! Kubeconfig files: merging one cluster's entries into the file kubectl
//! reads, the way `kubectl config set-*` would.
//!
//! A kubeconfig is the user's file, full of other clusters and tools'
//! settings. So the merge replaces only the entries named after the
//! cluster, keeps every other entry in its place and every field skiff does
//! not know (`preferences`, `extensions`, exec plugins, ...), and writes the
//! result atomically (a temporary file renamed over the old one) with mode
//! 0600: the file may hold a private key, and a crash must never leave it
//! half-written. While writing, it holds `<file>.lock` as kubectl does, so
//! a concurrent `kubectl config` waits or fails instead of losing a change.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize};
use skiff_state::keystore::CertificateAndKey;

/// Fields skiff does not know, kept as they were.
type Extra = BTreeMap<String, serde_norway::Value>;

/// A kubeconfig file (`apiVersion: v1`, `kind: Config`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kubeconfig {
    /// Always `v1`.
    #[serde(rename = "apiVersion", default = "api_version")]
    pub api_version: String,
    /// Always `Config`.
    #[serde(default = "config_kind")]
    pub kind: String,
    /// Named API servers.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub clusters: Vec<NamedCluster>,
    /// Named credentials.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub users: Vec<NamedUser>,
    /// Named (cluster, user, namespace) triples.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub contexts: Vec<NamedContext>,
    /// The context kubectl uses when none is given.
    #[serde(
        rename = "current-context",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub current_context: String,
    /// Everything else (`preferences`, `extensions`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

impl Default for Kubeconfig {
    fn default() -> Kubeconfig {
        Kubeconfig {
            api_version: api_version(),
            kind: config_kind(),
            clusters: Vec::new(),
            users: Vec::new(),
            contexts: Vec::new(),
            current_context: String::new(),
            extra: Extra::new(),
        }
    }
}

fn api_version() -> String {
    "v1".to_string()
}

fn config_kind() -> String {
    "Config".to_string()
}

/// kubectl writes an empty list as `null`.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// A `clusters` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedCluster {
    /// The entry's name.
    pub name: String,
    /// The server.
    #[serde(default)]
    pub cluster: ClusterEntry,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// How to reach an API server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterEntry {
    /// `https://host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The CA certificate (PEM), base64-encoded.
    #[serde(
        rename = "certificate-authority-data",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub certificate_authority_data: Option<String>,
    /// Unknown fields (`certificate-authority`, `proxy-url`, `extensions`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `users` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedUser {
    /// The entry's name.
    pub name: String,
    /// The credentials.
    #[serde(default)]
    pub user: UserEntry,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Credentials. `Debug` shows which fields are set, never their values.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserEntry {
    /// The client certificate (PEM), base64-encoded.
    #[serde(
        rename = "client-certificate-data",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_certificate_data: Option<String>,
    /// The client key (PEM), base64-encoded.
    #[serde(
        rename = "client-key-data",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_key_data: Option<String>,
    /// Unknown fields (`token`, `exec`, `client-certificate`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

impl fmt::Debug for UserEntry {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |value: &Option<String>| if value.is_some() { "<set>" } else { "<unset>" };
        formatter
            .debug_struct("UserEntry")
            .field(
                "client_certificate_data",
                &set(&self.client_certificate_data),
            )
            .field("client_key_data", &set(&self.client_key_data))
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A `contexts` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedContext {
    /// The entry's name.
    pub name: String,
    /// What it selects.
    #[serde(default)]
    pub context: ContextEntry,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A cluster, a user and a namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextEntry {
    /// The `clusters` entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The `users` entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The default namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: Extra,
}

/// What to write for one cluster.
#[derive(Debug, Clone)]
pub struct ClusterAccess {
    /// The name of the cluster and context entries (the cluster's name).
    pub name: String,
    /// The API server URL.
    pub server: String,
    /// The cluster CA certificate (PEM).
    pub certificate_authority_pem: String,
    /// The name of the users entry the context refers to.
    pub user: String,
    /// A client certificate and key for that user; `None` leaves the users
    /// entry as it is (or absent).
    pub credentials: Option<CertificateAndKey>,
}

/// What [`merge`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeOutcome {
    /// The cluster and context entries existed and were replaced.
    pub replaced: bool,
    /// After the merge, the file has a users entry of the context's user.
    pub user_present: bool,
}

/// Puts `access` into `config`: the cluster and context entries named
/// `access.name` (and with credentials the users entry `access.user`) are
/// replaced in place, or appended; everything else is left alone; the
/// context becomes the current one.
pub fn merge(config: &mut Kubeconfig, access: &ClusterAccess) -> MergeOutcome {
    let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let cluster = NamedCluster {
        name: access.name.clone(),
        cluster: ClusterEntry {
            server: Some(access.server.clone()),
            certificate_authority_data: Some(encode(&access.certificate_authority_pem)),
            extra: Extra::new(),
        },
        extra: Extra::new(),
    };
    let replaced = upsert(&mut config.clusters, cluster, |entry| &entry.name);

    // The context keeps a namespace the user chose earlier.
    let namespace = config
        .contexts
        .iter()
        .find(|entry| entry.name == access.name)
        .and_then(|entry| entry.context.namespace.clone());
    let context = NamedContext {
        name: access.name.clone(),
        context: ContextEntry {
            cluster: Some(access.name.clone()),
            user: Some(access.user.clone()),
            namespace,
            extra: Extra::new(),
        },
        extra: Extra::new(),
    };
    upsert(&mut config.contexts, context, |entry| &entry.name);

    if let Some(credentials) = &access.credentials {
        let user = NamedUser {
            name: access.user.clone(),
            user: UserEntry {
                client_certificate_data: Some(encode(&credentials.certificate_pem)),
                client_key_data: Some(encode(credentials.private_key.expose())),
                extra: Extra::new(),
            },
            extra: Extra::new(),
        };
        upsert(&mut config.users, user, |entry| &entry.name);
    }
    config.current_context = access.name.clone();
    MergeOutcome {
        replaced,
        user_present: config.users.iter().any(|entry| entry.name == access.user),
    }
}

/// Replaces the entry of the same name where it is, or appends; returns
/// whether one was replaced. Duplicates of the name (which kubectl would
/// ignore after the first) are removed.
fn upsert<T>(entries: &mut Vec<T>, entry: T, name: impl Fn(&T) -> &String) -> bool {
    let wanted = name(&entry).clone();
    match entries
        .iter()
        .position(|existing| *name(existing) == wanted)
    {
        Some(index) => {
            entries[index] = entry;
            let mut seen = false;
            entries.retain(|existing| {
                if *name(existing) != wanted {
                    return true;
                }
                let keep = !seen;
                seen = true;
                keep
            });
            true
        }
        None => {
            entries.push(entry);
            false
        }
    }
}

/// The file to write, as kubectl picks it: `flag`, else the first entry of
/// `$KUBECONFIG` (a `:`-separated list), else `~/.kube/config`.
pub fn choose_path(
    flag: Option<&Path>,
    kubeconfig_variable: Option<&OsStr>,
    home: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    if let Some(path) = flag {
        return Ok(path.to_path_buf());
    }
    if let Some(first) = kubeconfig_variable
        .into_iter()
        .flat_map(std::env::split_paths)
        .find(|path| !path.as_os_str().is_empty())
    {
        return Ok(first);
    }
    match home {
        Some(home) => Ok(home.join(".kube").join("config")),
        None => bail!(
            "HOME is not set, so there is no ~/.kube/config: give the file with --kubeconfig PATH"
        ),
    }
}

/// Reads a kubeconfig; a missing or empty file is an empty configuration.
pub fn read(path: &Path) -> anyhow::Result<Kubeconfig> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Kubeconfig::default())
        }
        Err(error) => {
            return Err(error)
                .with_context(|| format!("cannot read the kubeconfig {}", path.display()))
        }
    };
    if text.trim().is_empty() {
        return Ok(Kubeconfig::default());
    }
    serde_norway::from_str(&text).with_context(|| {
        format!(
            "{} is not a kubeconfig skiff can merge into (nothing was changed): fix it, or write to another file with --kubeconfig PATH",
            path.display()
        )
    })
}

/// Reads the kubeconfig at `path`, merges `access` and writes it back
/// atomically with mode 0600 (creating the folder with mode 0700 if
/// needed). A symbolic link is followed, so the file it points to is
/// updated and the link kept.
pub fn merge_into_file(path: &Path, access: &ClusterAccess) -> anyhow::Result<MergeOutcome> {
    let path = resolve_link(path)?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_folder(&folder)?;
    let _lock = FileLock::acquire(&path)?;
    let mut config = read(&path)?;
    let outcome = merge(&mut config, access);
    let text = serde_norway::to_string(&config).context("cannot render the kubeconfig")?;
    write_atomically(&folder, &path, text.as_bytes())?;
    Ok(outcome)
}

/// The file a symbolic link points to (relative targets resolved against
/// the link's folder); other paths unchanged.
fn resolve_link(path: &Path) -> anyhow::Result<PathBuf> {
    let mut current = path.to_path_buf();
    // A bounded walk: a link cycle is an error, not a hang.
    for _ in 0..32 {
        match std::fs::symlink_metadata(&current) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                let target = std::fs::read_link(&current)
                    .with_context(|| format!("cannot read the link {}", current.display()))?;
                current = match current.parent() {
                    Some(parent) if target.is_relative() => parent.join(target),
                    _ => target,
                };
            }
            _ => return Ok(current),
        }
    }
    bail!("{} is a symbolic link that loops", path.display())
}

fn create_private_folder(folder: &Path) -> anyhow::Result<()> {
    if folder.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(folder)
        .with_context(|| format!("cannot create the folder {}", folder.display()))
}

/// A temporary file in the same folder (so the rename stays on one file
/// system), mode 0600 from creation, synced, then renamed over `path`.
fn write_atomically(folder: &Path, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut temporary = tempfile::Builder::new()
        .prefix(".kubeconfig-")
        .tempfile_in(folder)
        .with_context(|| format!("cannot create a temporary file in {}", folder.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temporary
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", temporary.path().display()))?;
    }
    temporary
        .write_all(bytes)
        .and_then(|()| temporary.as_file().sync_all())
        .with_context(|| format!("cannot write {}", temporary.path().display()))?;
    temporary
        .persist(path)
        .map_err(|error| error.error)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// kubectl's lock on a kubeconfig: `<file>.lock`, created exclusively and
/// removed when done.
struct FileLock {
    path: PathBuf,
}

impl FileLock {
    fn acquire(file: &Path) -> anyhow::Result<FileLock> {
        let mut name = file.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => Ok(FileLock { path }),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => bail!(
                "{} exists: kubectl or skiff is changing the kubeconfig right now; try again, or remove the file if nothing is",
                path.display()
            ),
            Err(error) => Err(error).with_context(|| format!("cannot create {}", path.display())),
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // A leftover lock is reported by the next writer, naming the file.
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_state::keystore::PrivateKeyPem;

    const FOREIGN: &str = r#"apiVersion: v1
kind: Config
preferences:
  colors: true
clusters:
- name: other
  cluster:
    server: https://other.example.com
    certificate-authority-data: T1RIRVI=
    proxy-url: http://proxy:3128
- name: c1.example.com
  cluster:
    server: https://stale.example.com
    insecure-skip-tls-verify: true
contexts:
- name: other
  context:
    cluster: other
    user: other-user
- name: c1.example.com
  context:
    cluster: c1.example.com
    user: someone
    namespace: team-a
users:
- name: other-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [eks, get-token, --cluster-name, other]
- name: skiff-admin@c1.example.com
  user:
    token: stale-token
current-context: other
extensions:
- name: some-tool
  extension:
    setting: 1
"#;

    fn credentials() -> CertificateAndKey {
        // Only the merge is under test: the texts need not be real PEM.
        CertificateAndKey {
            certificate_pem: "CERTIFICATE TEXT".to_string(),
            private_key: PrivateKeyPem::new(
                "-----BEGIN PRIVATE KEY-----\nS0VZIFRFWFQ=\n-----END PRIVATE KEY-----\n",
            ),
        }
    }

    fn access(credentials: Option<CertificateAndKey>) -> ClusterAccess {
        ClusterAccess {
            name: "c1.example.com".to_string(),
            server: "https://api.c1.example.com:443".to_string(),
            certificate_authority_pem: "CA TEXT".to_string(),
            user: "skiff-admin@c1.example.com".to_string(),
            credentials,
        }
    }

    fn decode(text: &str) -> String {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .expect("base64"),
        )
        .expect("utf-8")
    }

    #[test]
    fn merge_replaces_only_the_clusters_entries_and_keeps_foreign_content() {
        let mut config: Kubeconfig = serde_norway::from_str(FOREIGN).expect("parses");
        let credentials = credentials();
        let outcome = merge(&mut config, &access(Some(credentials.clone())));
        assert!(outcome.replaced);
        assert!(outcome.user_present);

        // Round trip through text, as the file would.
        let text = serde_norway::to_string(&config).expect("renders");
        let config: Kubeconfig = serde_norway::from_str(&text).expect("parses again");
        let value: serde_norway::Value = serde_norway::from_str(&text).expect("yaml");

        assert_eq!(config.current_context, "c1.example.com");
        let names = |entries: Vec<&String>| entries.into_iter().cloned().collect::<Vec<_>>();
        assert_eq!(
            names(config.clusters.iter().map(|entry| &entry.name).collect()),
            ["other", "c1.example.com"],
            "order kept, replaced in place"
        );
        assert_eq!(
            names(config.users.iter().map(|entry| &entry.name).collect()),
            ["other-user", "skiff-admin@c1.example.com"]
        );

        // The foreign entries, byte for byte in meaning.
        let foreign: serde_norway::Value = serde_norway::from_str(FOREIGN).expect("yaml");
        assert_eq!(value["clusters"][0], foreign["clusters"][0]);
        assert_eq!(value["contexts"][0], foreign["contexts"][0]);
        assert_eq!(value["users"][0], foreign["users"][0]);
        assert_eq!(value["preferences"], foreign["preferences"]);
        assert_eq!(value["extensions"], foreign["extensions"]);

        // The cluster's own entries, replaced (no stale field survives).
        let cluster = &config.clusters[1].cluster;
        assert_eq!(
            cluster.server.as_deref(),
            Some("https://api.c1.example.com:443")
        );
        assert_eq!(
            decode(cluster.certificate_authority_data.as_deref().expect("ca")),
            "CA TEXT"
        );
        assert!(cluster.extra.is_empty(), "{:?}", cluster.extra);
        let context = &config.contexts[1].context;
        assert_eq!(context.cluster.as_deref(), Some("c1.example.com"));
        assert_eq!(context.user.as_deref(), Some("skiff-admin@c1.example.com"));
        assert_eq!(
            context.namespace.as_deref(),
            Some("team-a"),
            "namespace kept"
        );
        let user = &config.users[1].user;
        assert_eq!(
            decode(user.client_certificate_data.as_deref().expect("cert")),
            "CERTIFICATE TEXT"
        );
        assert_eq!(
            decode(user.client_key_data.as_deref().expect("key")),
            credentials.private_key.expose()
        );
        assert!(user.extra.is_empty(), "the stale token is gone");
    }

    #[test]
    fn without_credentials_the_users_are_untouched() {
        let mut config: Kubeconfig = serde_norway::from_str(FOREIGN).expect("parses");
        let users_before = config.users.clone();
        let outcome = merge(&mut config, &access(None));
        assert_eq!(config.users, users_before);
        assert!(
            outcome.user_present,
            "the earlier users entry is still there"
        );
        assert_eq!(config.current_context, "c1.example.com");

        let mut empty = Kubeconfig::default();
        let outcome = merge(&mut empty, &access(None));
        assert!(!outcome.replaced);
        assert!(!outcome.user_present);
        assert!(empty.users.is_empty());
        assert_eq!(empty.clusters.len(), 1);
        assert_eq!(empty.contexts.len(), 1);
    }

    #[test]
    fn kubectl_nulls_and_empty_files_read_as_empty() {
        let config: Kubeconfig = serde_norway::from_str(
            "apiVersion: v1\nkind: Config\nclusters: null\nusers: null\ncontexts: null\ncurrent-context: \"\"\npreferences: {}\n",
        )
        .expect("parses");
        assert!(
            config.clusters.is_empty() && config.users.is_empty() && config.contexts.is_empty()
        );
        let folder = tempfile::tempdir().expect("tempdir");
        let path = folder.path().join("config");
        std::fs::write(&path, "\n").expect("writes");
        assert_eq!(read(&path).expect("reads"), Kubeconfig::default());
        assert_eq!(
            read(&folder.path().join("missing")).expect("reads"),
            Kubeconfig::default()
        );
    }

    #[test]
    fn a_file_that_is_not_a_kubeconfig_is_left_alone() {
        let folder = tempfile::tempdir().expect("tempdir");
        let path = folder.path().join("config");
        std::fs::write(&path, "clusters: [unclosed\n").expect("writes");
        let error = merge_into_file(&path, &access(None)).expect_err("refused");
        assert!(
            format!("{error:#}").contains("nothing was changed"),
            "{error:#}"
        );
        assert_eq!(
            std::fs::read_to_string(&path).expect("reads"),
            "clusters: [unclosed\n"
        );
        assert!(!folder.path().join("config.lock").exists(), "lock released");
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_private_and_its_folder_created_private() {
        use std::os::unix::fs::PermissionsExt;
        let folder = tempfile::tempdir().expect("tempdir");
        let path = folder.path().join("home/.kube/config");
        merge_into_file(&path, &access(Some(credentials()))).expect("writes");
        let mode = |path: &Path| {
            std::fs::metadata(path)
                .expect("exists")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&folder.path().join("home/.kube")), 0o700);

        // An existing, too open file becomes private too.
        let open = folder.path().join("open-config");
        std::fs::write(&open, FOREIGN).expect("writes");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        merge_into_file(&open, &access(None)).expect("writes");
        assert_eq!(mode(&open), 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(folder.path())
            .expect("lists")
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with('.') || name.ends_with(".lock"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_linked_kubeconfig_is_updated_through_the_link() {
        let folder = tempfile::tempdir().expect("tempdir");
        let target = folder.path().join("real-config");
        std::fs::write(&target, FOREIGN).expect("writes");
        let link = folder.path().join("config");
        std::os::unix::fs::symlink("real-config", &link).expect("links");
        merge_into_file(&link, &access(None)).expect("writes");
        assert!(std::fs::symlink_metadata(&link)
            .expect("exists")
            .file_type()
            .is_symlink());
        assert_eq!(
            read(&target).expect("reads").current_context,
            "c1.example.com"
        );
    }

    #[test]
    fn a_held_lock_stops_the_write() {
        let folder = tempfile::tempdir().expect("tempdir");
        let path = folder.path().join("config");
        std::fs::write(folder.path().join("config.lock"), "").expect("writes");
        let error = merge_into_file(&path, &access(None)).expect_err("refused");
        assert!(error.to_string().contains("config.lock exists"), "{error}");
        assert!(!path.exists());
    }

    #[test]
    fn the_path_is_chosen_like_kubectl() {
        let home = Path::new("/home/someone");
        let flag = Path::new("/tmp/flag-config");
        assert_eq!(
            choose_path(Some(flag), Some(OsStr::new("/a:/b")), Some(home)).expect("path"),
            flag
        );
        assert_eq!(
            choose_path(None, Some(OsStr::new(":/first:/second")), Some(home)).expect("path"),
            Path::new("/first")
        );
        assert_eq!(
            choose_path(None, Some(OsStr::new("")), Some(home)).expect("path"),
            Path::new("/home/someone/.kube/config")
        );
        assert_eq!(
            choose_path(None, None, Some(home)).expect("path"),
            Path::new("/home/someone/.kube/config")
        );
        assert!(choose_path(None, None, None).is_err());
    }

    #[test]
    fn debug_shows_no_credentials() {
        let mut config = Kubeconfig::default();
        let credentials = credentials();
        merge(&mut config, &access(Some(credentials.clone())));
        let rendering = format!("{config:?} {:?}", access(Some(credentials.clone())));
        let encoded_key = config.users[0].user.client_key_data.clone().expect("key");
        assert!(!rendering.contains(&encoded_key));
        assert!(!rendering.contains("PRIVATE KEY"), "{rendering}");
    }
}
