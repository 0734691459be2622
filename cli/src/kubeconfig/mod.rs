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

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use base64::Engine as _;
use skiff_state::keystore::CertificateAndKey;

mod model;
#[cfg(test)]
mod tests;

use model::Extra;
pub use model::*;

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
