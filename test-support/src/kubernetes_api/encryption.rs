//! The stand-in API server's encryption of Secrets at rest: given an
//! `EncryptionConfiguration` file (`apiserver.config.k8s.io/v1`), it reads
//! it again before each request, as an API server started with
//! `--encryption-provider-config-automatic-reload` does, and it stores each
//! Secret with the key it was written with; nothing is really encrypted.
//!
//! What it decides, and where the API server decides the same:
//! * a write uses the first provider's first key (`identity`: plain text) —
//!   `prefixTransformers.TransformToStorage` in
//!   staging/src/k8s.io/apiserver/pkg/storage/value/transformer.go;
//! * a read needs a provider of the current configuration with that very
//!   key (same provider, name and secret; plain text needs `identity`),
//!   else it fails with the error `NewPrefixTransformers` was given, `no
//!   matching prefix found` (staging/src/k8s.io/apiserver/pkg/server/options/encryptionconfig/config.go;
//!   `TransformFromStorage` in transformer.go skips the `identity` error on
//!   encrypted data and returns it), which the etcd3 store wraps as `unable
//!   to transform key "/registry/secrets/<namespace>/<name>"`
//!   (staging/src/k8s.io/apiserver/pkg/storage/etcd3/store.go) and the
//!   API answers 500 InternalError. A LIST with one such Secret fails whole;
//! * an update reads the stored object first (so it fails the same way) and
//!   is refused with 409 Conflict when its resourceVersion is not the
//!   stored one (`GuaranteedUpdate` in the same store.go);
//! * a configuration file that does not parse is not loaded: the server
//!   keeps the one it has, as the automatic reload does.
//!
//! For the tests it records, each time it sees a new configuration, the
//! key names in order and which key each Secret is under at that moment;
//! and every read that failed to decrypt.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::{
    name_of, namespace_of, not_found, status_failure, Answer, FakeApiServer, Recorded, State,
};

/// The key a Secret is stored under.
#[derive(Debug, Clone, PartialEq, Eq)]
enum StorageKey {
    /// Plain text.
    Identity,
    /// A keyed provider's key.
    Keyed {
        provider: String,
        name: String,
        secret: String,
    },
}

impl StorageKey {
    fn name(&self) -> String {
        match self {
            StorageKey::Identity => "identity".to_string(),
            StorageKey::Keyed { name, .. } => name.clone(),
        }
    }
}

/// A Secret and the key it is stored under.
#[derive(Debug, Clone)]
struct StoredSecret {
    object: Value,
    key: StorageKey,
}

/// One configuration the server loaded, and the Secrets' keys when it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The readable keys in order, `identity` for the identity provider
    /// (the first writes).
    pub keys: Vec<String>,
    /// `namespace/name` → the name of the key the Secret was under.
    pub secrets: BTreeMap<String, String>,
}

/// The encryption state of the stand-in.
#[derive(Debug, Default)]
pub(super) struct Encryption {
    config_path: Option<PathBuf>,
    loaded_text: Option<String>,
    /// The current configuration's keys, in order; empty: no encryption
    /// configured (everything plain text and readable).
    providers: Vec<StorageKey>,
    secrets: BTreeMap<(String, String), StoredSecret>,
    observations: Vec<Observation>,
    read_failures: Vec<String>,
    /// Secrets another client writes just before the next PUT of them.
    write_before_put: Vec<(String, String)>,
}

impl Encryption {
    fn writer(&self) -> StorageKey {
        self.providers
            .first()
            .cloned()
            .unwrap_or(StorageKey::Identity)
    }

    fn readable(&self, key: &StorageKey) -> bool {
        if self.providers.is_empty() {
            return *key == StorageKey::Identity;
        }
        self.providers.contains(key)
    }
}

/// Reads the configuration file again; a change is loaded and observed.
pub(super) fn reload(state: &mut State) {
    let Some(path) = state.encryption.config_path.clone() else {
        return;
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    if state.encryption.loaded_text.as_deref() == Some(text.as_str()) {
        return;
    }
    let Some(providers) = parse_providers(&text) else {
        return;
    };
    let encryption = &mut state.encryption;
    encryption.loaded_text = Some(text);
    encryption.providers = providers;
    let observation = Observation {
        keys: encryption.providers.iter().map(StorageKey::name).collect(),
        secrets: encryption
            .secrets
            .iter()
            .map(|((namespace, name), stored)| (format!("{namespace}/{name}"), stored.key.name()))
            .collect(),
    };
    encryption.observations.push(observation);
}

/// The keys of an EncryptionConfiguration's entry for `secrets`, in order.
fn parse_providers(text: &str) -> Option<Vec<StorageKey>> {
    let document: serde_norway::Value = serde_norway::from_str(text).ok()?;
    if document["kind"].as_str() != Some("EncryptionConfiguration") {
        return None;
    }
    let entry = document["resources"].as_sequence()?.iter().find(|entry| {
        entry["resources"].as_sequence().is_some_and(|resources| {
            resources
                .iter()
                .any(|resource| resource.as_str() == Some("secrets"))
        })
    })?;
    let mut keys = Vec::new();
    for provider in entry["providers"].as_sequence()? {
        let (kind, settings) = provider.as_mapping()?.iter().next()?;
        match kind.as_str()? {
            "identity" => keys.push(StorageKey::Identity),
            provider @ ("secretbox" | "aescbc" | "aesgcm") => {
                for key in settings["keys"].as_sequence()? {
                    keys.push(StorageKey::Keyed {
                        provider: provider.to_string(),
                        name: key["name"].as_str()?.to_string(),
                        secret: key["secret"].as_str()?.to_string(),
                    });
                }
            }
            _ => return None,
        }
    }
    Some(keys)
}

/// The Secret endpoints.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum SecretRoute {
    All,
    Namespaced(String),
    One(String, String),
}

pub(super) fn route(method: &str, path: &str) -> Option<SecretRoute> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let route = match segments.as_slice() {
        ["api", "v1", "secrets"] => SecretRoute::All,
        ["api", "v1", "namespaces", namespace, "secrets"] => {
            SecretRoute::Namespaced(namespace.to_string())
        }
        ["api", "v1", "namespaces", namespace, "secrets", name] => {
            SecretRoute::One(namespace.to_string(), name.to_string())
        }
        _ => return None,
    };
    let allowed: &[&str] = match route {
        SecretRoute::All | SecretRoute::Namespaced(_) => &["GET"],
        SecretRoute::One(..) => &["GET", "PUT"],
    };
    allowed.contains(&method).then_some(route)
}

/// Answers a Secret request, or `None` for other endpoints.
pub(super) fn answer(state: &mut State, method: &Method, request: &Recorded) -> Option<Answer> {
    reload(state);
    let route = route(method.as_str(), &request.path)?;
    Some(match route {
        SecretRoute::All => list(state, None, request),
        SecretRoute::Namespaced(namespace) => list(state, Some(&namespace), request),
        SecretRoute::One(namespace, name) => match *method {
            Method::PUT => update(state, &namespace, &name, request),
            _ => get(state, &namespace, &name),
        },
    })
}

fn transform_failure(state: &mut State, namespace: &str, name: &str) -> Answer {
    let key = format!("/registry/secrets/{namespace}/{name}");
    state.encryption.read_failures.push(key.clone());
    status_failure(
        500,
        &format!(
            "Internal error occurred: unable to transform key {key:?}: no matching prefix found"
        ),
    )
}

fn get(state: &mut State, namespace: &str, name: &str) -> Answer {
    let id = (namespace.to_string(), name.to_string());
    let Some(stored) = state.encryption.secrets.get(&id).cloned() else {
        return not_found("secrets", name);
    };
    if !state.encryption.readable(&stored.key) {
        return transform_failure(state, namespace, name);
    }
    (StatusCode::OK, stored.object)
}

/// A page of Secrets: `limit` items after the `continue` token (the last
/// `namespace/name` of the previous page), as a chunked LIST.
fn list(state: &mut State, namespace: Option<&str>, request: &Recorded) -> Answer {
    let limit: usize = request
        .param("limit")
        .and_then(|limit| limit.parse().ok())
        .filter(|limit| *limit > 0)
        .unwrap_or(usize::MAX);
    let after = request.param("continue").filter(|token| !token.is_empty());
    let selected: Vec<((String, String), StoredSecret)> = state
        .encryption
        .secrets
        .iter()
        .filter(|((secret_namespace, _), _)| {
            namespace.is_none_or(|namespace| namespace == secret_namespace)
        })
        .filter(|((secret_namespace, name), _)| {
            after
                .as_deref()
                .is_none_or(|after| format!("{secret_namespace}/{name}").as_str() > after)
        })
        .map(|(id, stored)| (id.clone(), stored.clone()))
        .collect();
    let remaining = selected.len().saturating_sub(limit);
    let page: Vec<_> = selected.into_iter().take(limit).collect();
    for ((secret_namespace, name), stored) in &page {
        if !state.encryption.readable(&stored.key) {
            return transform_failure(state, secret_namespace, name);
        }
    }
    let token = match (remaining, page.last()) {
        (0, _) | (_, None) => String::new(),
        (_, Some(((secret_namespace, name), _))) => format!("{secret_namespace}/{name}"),
    };
    state.resource_version += 1;
    let items: Vec<Value> = page
        .into_iter()
        .map(|(_, stored)| {
            let mut item = stored.object;
            if let Some(object) = item.as_object_mut() {
                object.remove("apiVersion");
                object.remove("kind");
            }
            item
        })
        .collect();
    let mut metadata = json!({ "resourceVersion": state.resource_version.to_string() });
    if !token.is_empty() {
        metadata["continue"] = json!(token);
        metadata["remainingItemCount"] = json!(remaining);
    }
    (
        StatusCode::OK,
        json!({ "apiVersion": "v1", "kind": "SecretList", "metadata": metadata, "items": items }),
    )
}

fn update(state: &mut State, namespace: &str, name: &str, request: &Recorded) -> Answer {
    let id = (namespace.to_string(), name.to_string());
    if let Some(index) = state
        .encryption
        .write_before_put
        .iter()
        .position(|pending| *pending == id)
    {
        state.encryption.write_before_put.remove(index);
        write_as_another_client(state, namespace, name);
    }
    let body: Value = match serde_json::from_str(&request.body) {
        Ok(body) => body,
        Err(error) => return status_failure(400, &format!("error decoding Secret: {error}")),
    };
    if name_of(&body) != name || namespace_of(&body).is_empty_or(namespace) {
        return status_failure(
            400,
            &format!(
                "the name or namespace of the object ({}/{}) does not match the URL",
                namespace_of(&body),
                name_of(&body)
            ),
        );
    }
    let Some(stored) = state.encryption.secrets.get(&id).cloned() else {
        return not_found("secrets", name);
    };
    if !state.encryption.readable(&stored.key) {
        return transform_failure(state, namespace, name);
    }
    let given = body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default();
    let current = stored.object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default();
    if !given.is_empty() && given != current {
        return status_failure(
            409,
            &format!("Operation cannot be fulfilled on secrets \"{name}\": the object has been modified; please apply your changes to the latest version and try again"),
        );
    }
    store(state, namespace, name, body);
    let object = state.encryption.secrets[&id].object.clone();
    (StatusCode::OK, object)
}

/// Stores a Secret under the current writer key with a new resourceVersion.
fn store(state: &mut State, namespace: &str, name: &str, mut object: Value) {
    state.resource_version += 1;
    object["apiVersion"] = json!("v1");
    object["kind"] = json!("Secret");
    object["metadata"]["name"] = json!(name);
    object["metadata"]["namespace"] = json!(namespace);
    object["metadata"]["resourceVersion"] = json!(state.resource_version.to_string());
    let key = state.encryption.writer();
    state.encryption.secrets.insert(
        (namespace.to_string(), name.to_string()),
        StoredSecret { object, key },
    );
}

/// Another client's update of a stored Secret (a label changes).
fn write_as_another_client(state: &mut State, namespace: &str, name: &str) {
    let id = (namespace.to_string(), name.to_string());
    if let Some(stored) = state.encryption.secrets.get(&id).cloned() {
        let mut object = stored.object;
        object["metadata"]["labels"]["written-by"] = json!("another-client");
        store(state, namespace, name, object);
    }
}

trait EmptyOr {
    fn is_empty_or(&self, expected: &str) -> bool;
}

impl EmptyOr for &str {
    /// Whether it is neither empty nor `expected` (a mismatch).
    fn is_empty_or(&self, expected: &str) -> bool {
        !self.is_empty() && *self != expected
    }
}

/// A Secret object with string data.
pub fn secret(namespace: &str, name: &str, data: &[(&str, &str)]) -> Value {
    let encode = |value: &str| base64::engine::general_purpose::STANDARD.encode(value);
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(key, value)| (key.to_string(), json!(encode(value))))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": format!("uid-secret-{namespace}-{name}"),
            "creationTimestamp": "2024-05-01T10:00:00Z",
        },
        "type": "Opaque",
        "data": data,
    })
}

impl FakeApiServer {
    /// Encrypts Secrets at rest with the `EncryptionConfiguration` at
    /// `path`, read again before every request (from now on).
    pub fn encrypt_with(&self, path: &Path) {
        let mut state = self.state();
        state.encryption.config_path = Some(path.to_path_buf());
        reload(&mut state);
    }

    /// Creates (or replaces) a Secret as a client would, stored under the
    /// current configuration's writing key.
    pub fn add_secret(&self, object: Value) {
        let mut state = self.state();
        reload(&mut state);
        let namespace = namespace_of(&object).to_string();
        let name = name_of(&object).to_string();
        store(&mut state, &namespace, &name, object);
    }

    /// Another client updates this Secret just before the next PUT of it
    /// arrives, so that PUT carries a stale resourceVersion.
    pub fn write_before_next_put(&self, namespace: &str, name: &str) {
        self.state()
            .encryption
            .write_before_put
            .push((namespace.to_string(), name.to_string()));
    }

    /// `namespace/name` → the key each Secret is stored under now.
    pub fn secret_keys(&self) -> BTreeMap<String, String> {
        self.state()
            .encryption
            .secrets
            .iter()
            .map(|((namespace, name), stored)| (format!("{namespace}/{name}"), stored.key.name()))
            .collect()
    }

    /// A stored Secret, whatever its key.
    pub fn stored_secret(&self, namespace: &str, name: &str) -> Option<Value> {
        self.state()
            .encryption
            .secrets
            .get(&(namespace.to_string(), name.to_string()))
            .map(|stored| stored.object.clone())
    }

    /// The configuration file's text the server runs now (read again
    /// first), as a node asks its API server; `None` before [`Self::encrypt_with`].
    pub fn loaded_encryption_config(&self) -> Option<Vec<u8>> {
        let mut state = self.state();
        reload(&mut state);
        state.encryption.loaded_text.clone().map(String::into_bytes)
    }

    /// Every configuration loaded, in order, with the Secrets' keys then.
    pub fn encryption_observations(&self) -> Vec<Observation> {
        self.state().encryption.observations.clone()
    }

    /// Every read that could not decrypt a Secret (`/registry/secrets/...`).
    pub fn decryption_failures(&self) -> Vec<String> {
        self.state().encryption.read_failures.clone()
    }
}
