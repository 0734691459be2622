//! What booting nodes fetch from the state store, made ready while other
//! work runs: the cluster's PKI and the bootstrap scripts of the launch
//! templates.
//!
//! Both must exist before any instance launches; nothing else waits for
//! them. Every piece is created only if absent (a script's name is its
//! hash), so two runs agree on one and no lock is needed.

use std::sync::Arc;

use skiff_providers::apply::{gate, Gate, GateError};
use skiff_state::keystore::{self, KeystoreStatus};
use skiff_state::{ObjectStore, StateStore, StoreError};
use skiff_templates::StoredScript;

use crate::error::{EngineError, Result};
use crate::notes::{Note, Notes};

/// The cluster's PKI being made ready on a task of its own: generating
/// keys is CPU work, which would hold up whatever runs beside it on the
/// caller's task (taking the lock, planning).
pub struct Keystore {
    cluster: String,
    objects: Arc<dyn ObjectStore>,
    task: tokio::task::JoinHandle<std::result::Result<KeystoreStatus, StoreError>>,
    scripts: Vec<StoredScript>,
}

impl Keystore {
    /// Starts reading (and, where missing, generating) the PKI.
    pub fn start(store: &StateStore, cluster: &str) -> Keystore {
        let objects = store.objects().clone();
        let name = cluster.to_string();
        Keystore {
            cluster: cluster.to_string(),
            objects: store.objects().clone(),
            task: tokio::spawn(async move { keystore::ensure(objects.as_ref(), &name).await }),
            scripts: Vec::new(),
        }
    }

    /// Also makes `scripts` ready: the bootstrap scripts the launch
    /// templates of the plan name.
    pub fn with_scripts(mut self, scripts: Vec<StoredScript>) -> Keystore {
        self.scripts = scripts;
        self
    }

    /// Waits until the PKI (and the scripts) are in the store; notes what
    /// was generated.
    pub async fn ready(self, notes: &dyn Notes) -> Result<()> {
        let scripts = store_scripts(self.objects.as_ref(), &self.cluster, &self.scripts);
        let status = match self.task.await {
            Ok(status) => status,
            Err(error) => match error.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => {
                    return Err(EngineError::Cancelled {
                        what: "preparing the cluster's PKI",
                    })
                }
            },
        }
        .map_err(|source| EngineError::Pki {
            cluster: self.cluster.clone(),
            source,
        });
        let (status, scripts) = tokio::join!(async { status }, scripts);
        let status = status?;
        scripts?;
        if !status.created.is_empty() {
            notes.note(Note::GeneratedPki {
                pieces: status.created.iter().map(ToString::to_string).collect(),
            });
        }
        Ok(())
    }

    /// [`Keystore::ready`] as a gate for the executor
    /// (`ApplyOptions::before_launch`).
    pub fn into_gate(self, notes: Arc<dyn Notes>) -> Gate {
        gate(async move { self.ready(notes.as_ref()).await.map_err(GateError::new) })
    }
}

/// Generates the cluster's PKI and bootstrap token in the state store if
/// they are missing (never replacing what exists), and writes the
/// bootstrap `scripts` it does not hold yet.
pub async fn ensure(
    store: &StateStore,
    cluster: &str,
    scripts: Vec<StoredScript>,
    notes: &dyn Notes,
) -> Result<()> {
    Keystore::start(store, cluster)
        .with_scripts(scripts)
        .ready(notes)
        .await
}

/// Writes the bootstrap `scripts` the store does not hold yet.
async fn store_scripts(
    objects: &dyn ObjectStore,
    cluster: &str,
    scripts: &[StoredScript],
) -> Result<()> {
    if scripts.is_empty() {
        return Ok(());
    }
    let written = skiff_state::scripts::store(objects, cluster, scripts)
        .await
        .map_err(|source| EngineError::Scripts {
            cluster: cluster.to_string(),
            source,
        })?;
    tracing::info!(
        cluster,
        written,
        of = scripts.len(),
        "bootstrap scripts in the store"
    );
    Ok(())
}
