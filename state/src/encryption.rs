//! Encryption of Kubernetes Secrets at rest: the API server's
//! `EncryptionConfiguration` as skiff keeps it in the state store
//! (`<cluster>/secrets/encryption-config.yaml`), what the control-plane
//! nodes report about the configuration their API server runs
//! (`<cluster>/etcd/encryption/<instance-id>`), and the progress object of
//! a key rotation (`<cluster>/secrets/encryption-rotation`).
//!
//! The configuration is the API server's own format
//! (`apiserver.config.k8s.io/v1`, see the Kubernetes task "Encrypting
//! Confidential Data at Rest"): one resource entry for `secrets` whose
//! providers are `secretbox` (keys named `key-<UTC yyyymmddThhmmssZ>`, 32
//! random bytes in base64) then `identity: {}`, so that Secrets written
//! before encryption was enabled stay readable. The API server writes with
//! the first key of the first provider and reads with any key it lists, so
//! a key is rotated by adding the new key second, promoting it first,
//! rewriting every Secret and removing the old key, each configuration
//! loaded by every API server before the next step.
//!
//! Key material never leaves this module in a `Debug` or `Display`: a
//! [`Key`]'s secret is redacted, and the rotation's progress object names
//! keys, never their secrets.

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::error::Result;
use crate::objects::{Object, ObjectStore, Precondition, PutOptions, Version};

/// The object key of a cluster's encryption configuration.
pub fn config_key(cluster: &str) -> String {
    format!(
        "{cluster}/{}",
        skiff_templates::state_store::ENCRYPTION_CONFIG
    )
}

/// The folder of the control-plane nodes' encryption reports.
pub fn reports_folder(cluster: &str) -> String {
    format!(
        "{cluster}/{}",
        skiff_templates::state_store::ENCRYPTION_REPORTS_FOLDER
    )
}

/// The object key of a cluster's key-rotation progress.
pub fn rotation_key(cluster: &str) -> String {
    format!(
        "{cluster}/{}",
        skiff_templates::state_store::ENCRYPTION_ROTATION
    )
}

/// The `apiVersion` of the configuration.
pub const API_VERSION: &str = "apiserver.config.k8s.io/v1";

/// The `kind` of the configuration.
pub const KIND: &str = "EncryptionConfiguration";

/// The resource skiff encrypts.
pub const SECRETS: &str = "secrets";

/// Why a stored configuration is not one skiff can rotate.
#[derive(Debug, thiserror::Error)]
pub enum EncryptionConfigError {
    /// It is not YAML of the expected shape.
    #[error("it is not an {API_VERSION} {KIND}")]
    Parse {
        /// Why.
        #[source]
        source: serde_norway::Error,
    },
    /// It parses but does not have the shape skiff writes.
    #[error("{reason}")]
    Shape {
        /// What is wrong.
        reason: String,
    },
}

/// An `EncryptionConfiguration` (only the fields skiff writes; `deny_unknown_fields`
/// keeps skiff from silently dropping one it does not know when it rewrites the file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EncryptionConfiguration {
    /// `apiserver.config.k8s.io/v1`.
    pub api_version: String,
    /// `EncryptionConfiguration`.
    pub kind: String,
    /// One entry per group of resources.
    pub resources: Vec<ResourceConfiguration>,
}

/// The providers of a group of resources, in order: the first writes, all read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceConfiguration {
    /// The resources, e.g. `secrets`.
    pub resources: Vec<String>,
    /// The providers, each a one-key map (`- secretbox: {keys: [...]}`), as
    /// the API server reads them.
    #[serde(with = "serde_norway::with::singleton_map_recursive")]
    pub providers: Vec<Provider>,
}

/// One provider. `aescbc` is read so that a configuration using it can be
/// rotated too; skiff writes `secretbox`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// XSalsa20 and Poly1305 with 32-byte keys.
    Secretbox(Keys),
    /// AES-CBC with PKCS#7 padding.
    Aescbc(Keys),
    /// No encryption: reads what was stored in plain text.
    Identity(Empty),
}

/// A provider's keys: the first writes, all read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// The keys.
    pub keys: Vec<Key>,
}

/// `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// One key: a name and its secret (base64). `Debug` shows the name only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Key {
    /// The name the API server prefixes what it encrypts with
    /// (`k8s:enc:secretbox:v1:<name>:`).
    pub name: String,
    /// The key, base64.
    pub secret: String,
}

impl fmt::Debug for Key {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Key")
            .field("name", &self.name)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A key's name for a time: `key-<UTC yyyymmddThhmmssZ>`.
pub fn key_name(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "key-{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

impl Key {
    /// A new `secretbox` key named for `at`: 32 bytes from the operating
    /// system's random number generator, base64.
    pub fn generate(at: OffsetDateTime) -> std::result::Result<Key, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Key {
            name: key_name(at),
            secret: base64::engine::general_purpose::STANDARD.encode(bytes),
        })
    }
}

impl EncryptionConfiguration {
    /// The configuration skiff writes: `secretbox` with `keys`, then `identity`.
    pub fn with_secretbox_keys(keys: Vec<Key>) -> EncryptionConfiguration {
        EncryptionConfiguration {
            api_version: API_VERSION.to_string(),
            kind: KIND.to_string(),
            resources: vec![ResourceConfiguration {
                resources: vec![SECRETS.to_string()],
                providers: vec![
                    Provider::Secretbox(Keys { keys }),
                    Provider::Identity(Empty {}),
                ],
            }],
        }
    }

    /// Parses a stored configuration and checks it has skiff's shape: one
    /// resource entry for `secrets`, one keyed provider (`secretbox` or
    /// `aescbc`) with at least one key and unique key names, then `identity`.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Self, EncryptionConfigError> {
        let config: EncryptionConfiguration = serde_norway::from_slice(bytes)
            .map_err(|source| EncryptionConfigError::Parse { source })?;
        let shape = |reason: &str| {
            Err(EncryptionConfigError::Shape {
                reason: reason.to_string(),
            })
        };
        if config.api_version != API_VERSION || config.kind != KIND {
            return shape(&format!(
                "it is {} {}, not {API_VERSION} {KIND}",
                config.api_version, config.kind
            ));
        }
        let [entry] = config.resources.as_slice() else {
            return shape("it has more than one resources entry; skiff writes one, for secrets");
        };
        if entry.resources != [SECRETS] {
            return shape("its resources entry is not for secrets alone");
        }
        match entry.providers.as_slice() {
            [Provider::Secretbox(keys) | Provider::Aescbc(keys), Provider::Identity(_)] => {
                if keys.keys.is_empty() {
                    return shape("its keyed provider has no key");
                }
                let mut names: Vec<&str> = keys.keys.iter().map(|key| key.name.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                if names.len() != keys.keys.len() {
                    return shape("two of its keys have the same name");
                }
            }
            _ => {
                return shape(
                    "its providers are not one keyed provider (secretbox or aescbc) followed by identity",
                )
            }
        }
        Ok(config)
    }

    /// The YAML text the nodes get.
    pub fn render(&self) -> Vec<u8> {
        // Serializing plain strings and lists cannot fail.
        serde_norway::to_string(self)
            .unwrap_or_default()
            .into_bytes()
    }

    fn keyed(&self) -> Option<&Keys> {
        self.resources
            .first()?
            .providers
            .iter()
            .find_map(|provider| match provider {
                Provider::Secretbox(keys) | Provider::Aescbc(keys) => Some(keys),
                Provider::Identity(_) => None,
            })
    }

    fn keyed_mut(&mut self) -> Option<&mut Keys> {
        self.resources
            .first_mut()?
            .providers
            .iter_mut()
            .find_map(|provider| match provider {
                Provider::Secretbox(keys) | Provider::Aescbc(keys) => Some(keys),
                Provider::Identity(_) => None,
            })
    }

    /// The keys in order (the first writes).
    pub fn keys(&self) -> &[Key] {
        self.keyed()
            .map(|keys| keys.keys.as_slice())
            .unwrap_or_default()
    }

    /// The key names in order.
    pub fn key_names(&self) -> Vec<String> {
        self.keys().iter().map(|key| key.name.clone()).collect()
    }

    /// The key a name names.
    pub fn key(&self, name: &str) -> Option<&Key> {
        self.keys().iter().find(|key| key.name == name)
    }

    /// Replaces the keys (the provider and `identity` stay).
    pub fn set_keys(&mut self, keys: Vec<Key>) {
        if let Some(keyed) = self.keyed_mut() {
            keyed.keys = keys;
        }
    }
}

/// The lowercase hex SHA-256 of configuration bytes, as the nodes report it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A cluster's configuration as stored, with the version to write it back at.
/// `Debug` leaves the bytes out: they hold the keys.
#[derive(Clone)]
pub struct StoredConfig {
    /// The parsed configuration.
    pub config: EncryptionConfiguration,
    /// The bytes as stored (what the nodes hash).
    pub bytes: Vec<u8>,
    /// The object's version.
    pub version: Version,
}

impl fmt::Debug for StoredConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("StoredConfig")
            .field("config", &self.config)
            .field("sha256", &sha256_hex(&self.bytes))
            .field("version", &self.version)
            .finish()
    }
}

/// Reads a cluster's configuration: `None` when there is none; an error
/// naming the object when it does not parse.
pub async fn read_config(
    objects: &dyn ObjectStore,
    cluster: &str,
) -> Result<Option<std::result::Result<StoredConfig, EncryptionConfigError>>> {
    let Some(Object { bytes, version }) = objects.get(&config_key(cluster)).await? else {
        return Ok(None);
    };
    Ok(Some(EncryptionConfiguration::parse(&bytes).map(|config| {
        StoredConfig {
            config,
            bytes,
            version,
        }
    })))
}

/// Writes a cluster's configuration (as a secret object) if the stored one
/// is still at `precondition`; returns the bytes written and their version.
pub async fn write_config(
    objects: &dyn ObjectStore,
    cluster: &str,
    config: &EncryptionConfiguration,
    precondition: Precondition,
) -> Result<StoredConfig> {
    let bytes = config.render();
    let version = objects
        .put(
            &config_key(cluster),
            bytes.clone(),
            precondition,
            PutOptions { secret: true },
        )
        .await?;
    Ok(StoredConfig {
        config: config.clone(),
        bytes,
        version,
    })
}

/// What a control-plane node last reported about the configuration its API
/// server runs (`<cluster>/etcd/encryption/<instance-id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionReport {
    /// The instance.
    pub instance: String,
    /// The lowercase hex SHA-256 of the configuration file the node holds.
    pub sha256: String,
    /// Whether the local API server runs that configuration.
    pub loaded: bool,
    /// When the node looked.
    #[serde(with = "time::serde::rfc3339")]
    pub checked: OffsetDateTime,
}

/// The nodes' encryption reports, by instance. An object that does not
/// parse is skipped with a warning naming it.
pub async fn list_reports(
    objects: &dyn ObjectStore,
    cluster: &str,
) -> Result<Vec<EncryptionReport>> {
    let folder = reports_folder(cluster);
    let mut reports = Vec::new();
    for key in objects.list(&folder).await? {
        let Some(object) = objects.get(&key).await? else {
            continue; // deleted since the listing: its node left
        };
        match serde_json::from_slice::<EncryptionReport>(&object.bytes) {
            Ok(report) => reports.push(report),
            Err(error) => tracing::warn!("{key}: not an encryption report ({error}); skipped"),
        }
    }
    reports.sort_by(|first, second| first.instance.cmp(&second.instance));
    Ok(reports)
}

/// Where a key rotation is: the last phase it completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RotationPhase {
    /// The rotation is recorded; the new key is not known to be loaded anywhere.
    Started,
    /// Every API server can decrypt with the new key (it is second).
    Added,
    /// Every API server encrypts with the new key (it is first).
    Promoted,
    /// Every Secret was rewritten, so it is under the new key.
    Rewritten,
    /// The old keys are removed and no API server uses them.
    Retired,
}

impl RotationPhase {
    /// The phase's name as recorded.
    pub fn as_str(self) -> &'static str {
        match self {
            RotationPhase::Started => "started",
            RotationPhase::Added => "added",
            RotationPhase::Promoted => "promoted",
            RotationPhase::Rewritten => "rewritten",
            RotationPhase::Retired => "retired",
        }
    }
}

impl fmt::Display for RotationPhase {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The progress of a key rotation (`<cluster>/secrets/encryption-rotation`):
/// key names only, never key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationProgress {
    /// The last phase completed.
    pub phase: RotationPhase,
    /// The name of the key rotated to.
    pub new_key: String,
    /// The names of the keys rotated away from, as the configuration listed
    /// them when the rotation started.
    pub old_keys: Vec<String>,
    /// When the rotation started.
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    /// Who started it (`user@host (aws identity)`).
    pub who: String,
    /// When the phase was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub updated: OffsetDateTime,
}

/// A rotation's progress as stored, with its version.
#[derive(Debug, Clone)]
pub struct StoredProgress {
    /// The progress.
    pub progress: RotationProgress,
    /// Its version.
    pub version: Version,
}

/// Reads a cluster's rotation progress: `None` when no rotation is under way.
pub async fn read_progress(
    objects: &dyn ObjectStore,
    cluster: &str,
) -> Result<Option<std::result::Result<StoredProgress, serde_json::Error>>> {
    let Some(Object { bytes, version }) = objects.get(&rotation_key(cluster)).await? else {
        return Ok(None);
    };
    Ok(Some(
        serde_json::from_slice(&bytes).map(|progress| StoredProgress { progress, version }),
    ))
}

/// Writes a rotation's progress if the stored one is at `precondition`.
pub async fn write_progress(
    objects: &dyn ObjectStore,
    cluster: &str,
    progress: &RotationProgress,
    precondition: Precondition,
) -> Result<StoredProgress> {
    // A struct of strings and times always serializes.
    let bytes = serde_json::to_vec_pretty(progress).unwrap_or_default();
    let version = objects
        .put(
            &rotation_key(cluster),
            bytes,
            precondition,
            PutOptions::default(),
        )
        .await?;
    Ok(StoredProgress {
        progress: progress.clone(),
        version,
    })
}

/// Removes a finished rotation's progress if it is still at `version`.
pub async fn delete_progress(
    objects: &dyn ObjectStore,
    cluster: &str,
    version: &Version,
) -> Result<()> {
    objects
        .delete(
            &rotation_key(cluster),
            Precondition::Matches(version.clone()),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Key {
        Key {
            name: name.to_string(),
            secret: format!("c2VjcmV0LW9mLXtuYW1lfQ-{name}"),
        }
    }

    #[test]
    fn renders_the_api_server_format_and_parses_it_back() {
        let config = EncryptionConfiguration::with_secretbox_keys(vec![
            key("key-20261206T120000Z"),
            key("key-20250101T000000Z"),
        ]);
        let text = String::from_utf8(config.render()).expect("text");
        assert_eq!(
            text,
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources:\n  - secrets\n  providers:\n  - secretbox:\n      keys:\n      - name: key-20261206T120000Z\n        secret: c2VjcmV0LW9mLXtuYW1lfQ-key-20261206T120000Z\n      - name: key-20250101T000000Z\n        secret: c2VjcmV0LW9mLXtuYW1lfQ-key-20250101T000000Z\n  - identity: {}\n"
        );
        let parsed = EncryptionConfiguration::parse(text.as_bytes()).expect("parses");
        assert_eq!(parsed, config);
        assert_eq!(
            parsed.key_names(),
            ["key-20261206T120000Z", "key-20250101T000000Z"]
        );
        let stored = StoredConfig {
            bytes: config.render(),
            config,
            version: Version("etag".to_string()),
        };
        let shown = format!("{stored:?}");
        assert!(!shown.contains("c2VjcmV0"), "key material in {shown}");
        assert!(shown.contains("key-20261206T120000Z"), "{shown}");
    }

    #[test]
    fn refuses_shapes_skiff_does_not_write() {
        let no_identity = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - secretbox:\n      keys: [{name: a, secret: b}]\n";
        let error = EncryptionConfiguration::parse(no_identity.as_bytes()).expect_err("refused");
        assert!(
            error.to_string().contains("followed by identity"),
            "{error}"
        );
        let duplicate = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys: [{name: a, secret: b}, {name: a, secret: c}]\n  - identity: {}\n";
        let error = EncryptionConfiguration::parse(duplicate.as_bytes()).expect_err("refused");
        assert!(error.to_string().contains("same name"), "{error}");
        let kms = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - kms: {name: x}\n  - identity: {}\n";
        assert!(EncryptionConfiguration::parse(kms.as_bytes()).is_err());
    }

    #[test]
    fn generated_keys_are_32_random_bytes_named_for_their_time() {
        let at = time::macros::datetime!(2026-12-06 18:30:05 UTC);
        let first = Key::generate(at).expect("random");
        let second = Key::generate(at).expect("random");
        assert_eq!(first.name, "key-20261206T183005Z");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&first.secret)
            .expect("base64");
        assert_eq!(bytes.len(), 32);
        assert_ne!(first.secret, second.secret);
        let shown = format!("{first:?}");
        assert!(!shown.contains(&first.secret), "{shown}");
    }

    #[test]
    fn phases_keep_their_order_and_names() {
        assert!(RotationPhase::Started < RotationPhase::Added);
        assert!(RotationPhase::Rewritten < RotationPhase::Retired);
        let progress = RotationProgress {
            phase: RotationPhase::Promoted,
            new_key: "key-b".to_string(),
            old_keys: vec!["key-a".to_string()],
            started: time::macros::datetime!(2026-12-06 18:30:05 UTC),
            who: "ops@laptop".to_string(),
            updated: time::macros::datetime!(2026-12-06 18:31:00 UTC),
        };
        let json = serde_json::to_value(&progress).expect("json");
        assert_eq!(json["phase"], "promoted");
        assert_eq!(json["newKey"], "key-b");
        assert_eq!(json["started"], "2026-12-06T18:30:05Z");
    }
}
