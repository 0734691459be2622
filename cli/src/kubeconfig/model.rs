//! The kubeconfig file's shape: the entries skiff writes, typed, and every
//! field it does not know kept as it was (`extra`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Fields skiff does not know, kept as they were.
pub(super) type Extra = BTreeMap<String, serde_norway::Value>;

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
