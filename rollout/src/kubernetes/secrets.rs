//! Rewriting every Secret through the API, so that the API server stores
//! each again with the first key of its encryption configuration: what the
//! Kubernetes task "Encrypting Confidential Data at Rest" does with
//! `kubectl get secrets --all-namespaces -o json | kubectl replace -f -`.
//!
//! The list is read a page at a time and each page's Secrets are replaced
//! unchanged, with the resourceVersion they were read at. A conflict (409)
//! means someone wrote the Secret after it was listed: that write went
//! through the same API servers, under the key they encrypt with now, so
//! it counts as rewritten. A Secret gone (404) was deleted meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};

use super::{error_chain, is_transient, KubernetesApi, READ_ATTEMPTS, READ_RETRY_PAUSE};
use crate::{Result, RolloutError};

/// How many Secrets one LIST asks for (`kubectl`'s default chunk size).
pub const SECRETS_PAGE_SIZE: u32 = 500;

/// What rewriting every Secret did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecretsRewritten {
    /// Secrets replaced.
    pub replaced: usize,
    /// Secrets someone else wrote after they were listed (409): already
    /// under the key the API servers write with.
    pub conflicts: usize,
    /// Secrets deleted after they were listed (404).
    pub gone: usize,
}

impl SecretsRewritten {
    /// Every Secret listed.
    pub fn total(&self) -> usize {
        self.replaced + self.conflicts + self.gone
    }
}

/// How one replace ended.
enum Replaced {
    Written,
    Conflict,
    Gone,
}

impl KubernetesApi {
    /// Reads every Secret in every namespace, `page_size` at a time, and
    /// replaces each unchanged; `progress` hears the running count after
    /// each page. `stop` set ends it between two pages
    /// ([`RolloutError::Interrupted`]).
    pub async fn rewrite_secrets(
        &self,
        page_size: u32,
        stop: &AtomicBool,
        progress: &(dyn Fn(SecretsRewritten) + Send + Sync),
    ) -> Result<SecretsRewritten> {
        let all: Api<Secret> = Api::all(self.client.clone());
        let mut done = SecretsRewritten::default();
        let mut token: Option<String> = None;
        loop {
            if stop.load(Ordering::SeqCst) {
                return Err(RolloutError::Interrupted(format!(
                    "stopped on request after rewriting {} Secret(s)",
                    done.total()
                )));
            }
            let mut parameters = ListParams::default().limit(page_size.max(1));
            if let Some(token) = &token {
                parameters = parameters.continue_token(token);
            }
            let page = self
                .read("listing the Secrets of every namespace", || {
                    all.list(&parameters)
                })
                .await?;
            for secret in &page.items {
                match self.replace_secret(secret).await? {
                    Replaced::Written => done.replaced += 1,
                    Replaced::Conflict => done.conflicts += 1,
                    Replaced::Gone => done.gone += 1,
                }
            }
            progress(done);
            token = page.metadata.continue_.filter(|token| !token.is_empty());
            if token.is_none() {
                return Ok(done);
            }
        }
    }

    /// Replaces one Secret with itself, at the resourceVersion it was read
    /// at; tried again when the API server cannot be reached or fails on
    /// its side (a replace that did land makes the next attempt a 409).
    async fn replace_secret(&self, secret: &Secret) -> Result<Replaced> {
        let namespace = secret.namespace().unwrap_or_default();
        let name = secret.name_any();
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        let action = format!("rewriting Secret {namespace}/{name}");
        let parameters = PostParams::default();
        let mut attempt = 1;
        loop {
            match api.replace(&name, &parameters, secret).await {
                Ok(_) => return Ok(Replaced::Written),
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    return Ok(Replaced::Conflict)
                }
                Err(kube::Error::Api(status)) if status.code == 404 => return Ok(Replaced::Gone),
                Err(error) if attempt < READ_ATTEMPTS && is_transient(&error) => {
                    tracing::debug!("{action}: {}; trying again", error_chain(&error));
                    tokio::time::sleep(READ_RETRY_PAUSE * attempt).await;
                    attempt += 1;
                }
                Err(error) => return Err(self.error(&action, &error)),
            }
        }
    }
}
