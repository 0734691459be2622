//! What every operation on a cluster starts from: the store, the AWS
//! configuration, who is acting, and the cluster's provider and recorded
//! state.

use std::sync::Arc;
use std::time::Duration;

use skiff_api::document::ClusterBundle;
use skiff_plans::lookups::StateStoreRef;
use skiff_plans::recorded::RecordedContent;
use skiff_plans::StateBinding;
use skiff_providers::AwsProvider;
use skiff_state::lock::LockInfo;
use skiff_state::recorded::{self, RecordedState};
use skiff_state::{LockGuard, StateStore, StoredState, Version};

use crate::error::{EngineError, Refusal, Result};
use crate::notes::{Note, Notes};
use crate::signals::Listener;
use crate::store_security::{require_secure_store, InsecureStore};

/// One invocation's access to the world: the state store, the AWS
/// configuration, the command line (for the history) and where notes go.
pub struct Session<'a> {
    /// The state store.
    pub store: &'a StateStore,
    /// The AWS configuration (see `skiff_providers::sdk_config`).
    pub aws: &'a aws_config::SdkConfig,
    /// The command line as typed, recorded in the history.
    pub command_line: String,
    /// Where notes go.
    pub notes: Arc<dyn Notes>,
    /// Whether an insecure store is refused (the default) or allowed with
    /// a warning (`--allow-insecure-store`).
    pub insecure_store: InsecureStore,
    /// How long to wait for a cluster lock another operation holds
    /// (`--lock-timeout`; zero fails at once).
    pub lock_timeout: Duration,
}

impl Session<'_> {
    /// The provider for a cluster's region.
    pub fn provider(&self, bundle: &ClusterBundle) -> Result<AwsProvider> {
        Ok(AwsProvider::new(self.aws, &region(bundle)?))
    }

    /// The state-store gate, before `what` writes secrets (see
    /// [`crate::store_security`]).
    pub async fn require_secure_store(&self, what: &str) -> Result<()> {
        require_secure_store(self.store, what, self.insecure_store, self.notes.as_ref()).await
    }

    /// Tells the operator something.
    pub fn note(&self, note: Note) {
        self.notes.note(note);
    }

    /// Takes the cluster lock for `operation`, saying so when it took over
    /// an expired one. While another operation holds it, waits up to
    /// [`Session::lock_timeout`], saying who holds it when the wait starts
    /// and when the holder changes; Ctrl-C or SIGTERM gives up the wait.
    pub async fn lock(&self, cluster: &str, operation: Operation) -> Result<Arc<LockGuard>> {
        let timeout = self.lock_timeout;
        let waiting = |held: &LockInfo| {
            self.note(Note::WaitingForLock {
                cluster: cluster.to_string(),
                holder: held.holder.to_string(),
                operation: held.operation.clone(),
                since: skiff_state::lock::rfc3339(held.created_at),
                expires: skiff_state::lock::rfc3339(held.expires_at()),
                timeout: humantime::format_duration(timeout).to_string(),
            })
        };
        let name = operation.lock_name();
        let first = self
            .store
            .lock_waiting(cluster, name, Duration::ZERO, &waiting)
            .await;
        let taken = match first {
            Err(skiff_state::StoreError::Locked(_)) if !timeout.is_zero() => {
                // While the wait lasts, a signal gives it up cleanly
                // (`signals::Listener`); before and after, it ends the
                // process as by default (`signals::install`).
                let mut listener = Listener::new();
                let taken = tokio::select! {
                    // A lock taken as the signal arrives is never dropped
                    // unreleased: it is given back below.
                    biased;
                    taken = self.store.lock_waiting(cluster, name, timeout, &waiting) => taken,
                    signal = listener.next() => {
                        return Err(Refusal::LockWaitInterrupted {
                            cluster: cluster.to_string(),
                            signal,
                        }
                        .into());
                    }
                };
                // The signal came with the lock: the user asked to stop.
                if let (Ok(lock), Some(signal)) = (&taken, listener.pending()) {
                    if let Err(error) = lock.release().await {
                        tracing::warn!(
                            "could not release the lock of cluster {cluster:?}: {error}"
                        );
                    }
                    return Err(Refusal::LockWaitInterrupted {
                        cluster: cluster.to_string(),
                        signal,
                    }
                    .into());
                }
                taken
            }
            other => other,
        };
        let lock = taken.map_err(|source| EngineError::Lock {
            operation: operation.verb(),
            cluster: cluster.to_string(),
            source,
        })?;
        if let Some(previous) = &lock.took_over {
            self.note(took_over(previous, operation == Operation::RollingUpdate));
        }
        let lock = Arc::new(lock);
        crate::signals::release_on_exit(&lock);
        Ok(lock)
    }

    /// Keeps a snapshot of a recorded state just written, for the state
    /// history; a failure is a note (the state itself is safe).
    pub async fn snapshot_state(
        &self,
        cluster: &str,
        state: &RecordedState<RecordedContent>,
        summary: &str,
    ) {
        if let Err(error) = self
            .store
            .snapshot_state(cluster, state, &self.command_line, summary)
            .await
        {
            self.note(Note::SnapshotFailed {
                cluster: cluster.to_string(),
                error: error.to_string(),
            });
        }
    }
}

/// An operation that holds the cluster lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `update cluster --yes`.
    Update,
    /// `apply FILE`.
    ApplySavedPlan,
    /// `delete cluster --yes`.
    Delete,
    /// `delete cluster --unregister --yes`.
    Unregister,
    /// `rolling-update cluster --yes`.
    RollingUpdate,
    /// `update cluster --target terraform`.
    WriteTerraform,
    /// `restore cluster --yes`.
    Restore,
    /// `rotate encryption-key --yes`.
    RotateEncryptionKey,
}

impl Operation {
    /// What the lock says its holder is doing.
    pub fn lock_name(self) -> &'static str {
        match self {
            Operation::Update => "update cluster",
            Operation::ApplySavedPlan => "apply saved plan",
            Operation::Delete => "delete cluster",
            Operation::Unregister => "delete cluster --unregister",
            Operation::RollingUpdate => "rolling-update cluster",
            Operation::WriteTerraform => "update cluster --target terraform",
            Operation::Restore => "restore cluster",
            Operation::RotateEncryptionKey => "rotate encryption-key",
        }
    }

    /// What could not be done without the lock: "cannot {verb} cluster X".
    pub fn verb(self) -> &'static str {
        match self {
            Operation::Update => "update",
            Operation::ApplySavedPlan => "apply the plan of",
            Operation::Delete => "delete",
            Operation::Unregister => "unregister",
            Operation::RollingUpdate => "start a rolling update of",
            Operation::WriteTerraform => "update",
            Operation::Restore => "restore",
            Operation::RotateEncryptionKey => "rotate the encryption key of",
        }
    }
}

fn took_over(previous: &LockInfo, rolling_update: bool) -> Note {
    Note::TookOverLock {
        holder: previous.holder.to_string(),
        operation: previous.operation.clone(),
        since: skiff_state::lock::rfc3339(previous.created_at),
        rolling_update,
    }
}

/// Releases a lock; a failure only costs waiting for its lease.
pub async fn release(lock: &LockGuard) {
    if let Err(error) = lock.release().await {
        tracing::warn!("releasing the cluster lock failed (it expires by itself): {error}");
    }
}

/// The region of a cluster, from its spec.
pub fn region(bundle: &ClusterBundle) -> Result<String> {
    let region = bundle.cluster.region();
    if region.is_empty() {
        return Err(Refusal::NoRegion {
            cluster: bundle.name().to_string(),
        }
        .into());
    }
    Ok(region.to_string())
}

/// Where nodes find the state store, when it is in S3, with the KMS key
/// its default encryption uses (nodes then write backups with it, and
/// their roles may use it).
pub async fn state_store_ref(store: &StateStore) -> Result<Option<StateStoreRef>> {
    let Some(s3) = store.s3() else {
        return Ok(None);
    };
    let encryption = store.default_encryption().await?;
    Ok(Some(StateStoreRef {
        bucket: s3.bucket.clone(),
        prefix: s3.prefix.clone(),
        region: s3.region.clone(),
        endpoint: s3.endpoint.clone(),
        kms_key: encryption
            .as_ref()
            .and_then(|encryption| encryption.kms_key())
            .map(str::to_string),
    }))
}

/// Applying writes the cluster's secrets into the store for nodes to read
/// at boot, so it needs a store nodes can reach: refuse any other before
/// anything is written.
pub fn require_s3_store(store: &StateStore, cluster: &str) -> Result<()> {
    if store.s3().is_none() {
        return Err(Refusal::NeedsS3Store {
            cluster: cluster.to_string(),
            location: store.location().to_string(),
        }
        .into());
    }
    Ok(())
}

/// The recorded state of a cluster as read from the store.
pub struct Recorded {
    /// The state (a new, empty one when the cluster has none yet).
    pub state: RecordedState<RecordedContent>,
    /// Its version in the store (`None`: no state yet).
    pub version: Option<Version>,
}

impl Recorded {
    /// The lineage and serial a plan made against this state is bound to.
    pub fn binding(&self) -> StateBinding {
        match self.version {
            Some(_) => StateBinding::recorded(self.state.lineage.clone(), self.state.serial),
            None => StateBinding::none(),
        }
    }
}

/// The AWS account of an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:...`),
/// when it names one.
fn arn_account(arn: &str) -> Option<&str> {
    let account = arn.strip_prefix("arn:")?.split(':').nth(3)?;
    (account.len() == 12 && account.bytes().all(|byte| byte.is_ascii_digit())).then_some(account)
}

/// The AWS account a cluster's recorded resources are in (from the first
/// ARN among their IDs and outputs), if any is recorded.
pub fn recorded_account(recorded: &Recorded) -> Option<String> {
    recorded
        .state
        .content
        .resources
        .values()
        .find_map(|resource| {
            std::iter::once(&resource.id)
                .chain(resource.outputs.values())
                .find_map(|value| arn_account(value))
                .map(str::to_string)
        })
}

/// Refuses to plan a cluster whose recorded resources are in another AWS
/// account than the credentials' (a profile of the wrong account would
/// otherwise see nothing and plan to build everything again there). Says
/// nothing when either account is unknown (no resources recorded yet, or
/// the caller identity could not be read).
pub async fn check_account(store: &StateStore, cluster: &str, recorded: &Recorded) -> Result<()> {
    let Some(cluster_account) = recorded_account(recorded) else {
        return Ok(());
    };
    let actor = store.actor().await;
    let Some(identity) = actor.aws_identity.as_deref() else {
        return Ok(());
    };
    match arn_account(identity) {
        Some(caller_account) if caller_account != cluster_account => Err(Refusal::OtherAccount {
            cluster: cluster.to_string(),
            cluster_account,
            caller_account: caller_account.to_string(),
            identity: identity.to_string(),
        }
        .into()),
        _ => Ok(()),
    }
}

/// Reads the recorded state of a cluster (or a new, empty one).
pub async fn read_recorded(store: &StateStore, cluster: &str) -> Result<Recorded> {
    Ok(
        match recorded::read::<RecordedContent>(store.objects().as_ref(), cluster).await? {
            Some(StoredState { state, version }) => Recorded {
                state,
                version: Some(version),
            },
            None => Recorded {
                state: RecordedState::new(RecordedContent {
                    cluster: cluster.to_string(),
                    ..RecordedContent::default()
                }),
                version: None,
            },
        },
    )
}

#[cfg(test)]
mod tests {
    use super::arn_account;

    #[test]
    fn the_account_of_an_arn() {
        assert_eq!(
            arn_account("arn:aws:iam::123456789012:role/c1-nodes"),
            Some("123456789012")
        );
        assert_eq!(
            arn_account("arn:aws:sts::111111111111:assumed-role/other/s"),
            Some("111111111111")
        );
        // S3 and Route53 ARNs name no account; IDs are not ARNs.
        assert_eq!(arn_account("arn:aws:s3:::my-bucket"), None);
        assert_eq!(arn_account("vpc-0123456789abcdef0"), None);
    }
}
