//! The cluster's PKI made ready in the state store while other work runs.
//!
//! Booting nodes fetch their key material from the store, so it must exist
//! before any instance launches; nothing else waits for it. Every piece is
//! created only if absent, so two runs agree on one and no lock is needed.

use std::sync::Arc;

use skiff_providers::apply::{gate, Gate, GateError};
use skiff_state::keystore::{self, KeystoreStatus};
use skiff_state::{StateStore, StoreError};

use crate::error::{EngineError, Result};
use crate::notes::{Note, Notes};

/// The cluster's PKI being made ready on a task of its own: generating
/// keys is CPU work, which would hold up whatever runs beside it on the
/// caller's task (taking the lock, planning).
pub struct Keystore {
    cluster: String,
    task: tokio::task::JoinHandle<std::result::Result<KeystoreStatus, StoreError>>,
}

impl Keystore {
    /// Starts reading (and, where missing, generating) the PKI.
    pub fn start(store: &StateStore, cluster: &str) -> Keystore {
        let objects = store.objects().clone();
        let name = cluster.to_string();
        Keystore {
            cluster: cluster.to_string(),
            task: tokio::spawn(async move { keystore::ensure(objects.as_ref(), &name).await }),
        }
    }

    /// Waits until the PKI is in the store; notes what was generated.
    pub async fn ready(self, notes: &dyn Notes) -> Result<()> {
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
        })?;
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
/// they are missing (never replacing what exists).
pub async fn ensure(store: &StateStore, cluster: &str, notes: &dyn Notes) -> Result<()> {
    Keystore::start(store, cluster).ready(notes).await
}
