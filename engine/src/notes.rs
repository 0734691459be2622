//! What an operator should hear while an operation runs, as typed notes:
//! the engine decides what happened, the caller how to say it.

use std::fmt;

/// Receives notes as they happen (the binary prints them on stderr).
pub trait Notes: Send + Sync {
    /// One note.
    fn note(&self, note: Note);
}

/// Something worth telling the operator while an operation runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The cluster lock was taken over from a holder whose lease expired.
    TookOverLock {
        /// Who held it.
        holder: String,
        /// What they were doing.
        operation: String,
        /// Since when (RFC 3339).
        since: String,
        /// Whether this is a rolling update (which continues where the
        /// interrupted one stopped).
        rolling_update: bool,
    },
    /// The cluster lock is held by another operation and this one waits for
    /// it (`--lock-timeout`); said when the wait starts and when the holder
    /// changes.
    WaitingForLock {
        /// The cluster.
        cluster: String,
        /// Who holds it.
        holder: String,
        /// What they are doing.
        operation: String,
        /// Since when (RFC 3339).
        since: String,
        /// When its lease runs out unless renewed (RFC 3339).
        expires: String,
        /// How long this operation waits at most, in words (`2m`).
        timeout: String,
    },
    /// Pieces of the cluster PKI were generated into the store.
    GeneratedPki {
        /// What was generated.
        pieces: Vec<String>,
    },
    /// An interrupted apply left intents; this run adopts or repeats them.
    ResumingIntents {
        /// The cluster.
        cluster: String,
        /// The keys intended.
        keys: Vec<String>,
    },
    /// A preview of a cluster that Terraform manages.
    PreviewOfTerraformCluster {
        /// The cluster.
        cluster: String,
    },
    /// A cluster switched from Terraform to direct applies.
    SwitchedToDirect {
        /// The cluster.
        cluster: String,
    },
    /// The delete preview of a cluster Terraform manages.
    DeleteOfTerraformCluster {
        /// The cluster.
        cluster: String,
    },
    /// `--allow-insecure-store`: an operation that writes secrets goes on
    /// in a store the security check refuses.
    InsecureStoreAllowed {
        /// What is being done.
        what: String,
        /// The store.
        store: String,
        /// The refusal-level findings, one a line with its fix.
        findings: String,
    },
    /// Keeping a copy of the recorded state in the history failed (the
    /// state itself is written).
    SnapshotFailed {
        /// The cluster.
        cluster: String,
        /// Why.
        error: String,
    },
}

impl Note {
    /// Whether it is a warning (else information).
    pub fn is_warning(&self) -> bool {
        !matches!(
            self,
            Note::GeneratedPki { .. } | Note::ResumingIntents { .. } | Note::WaitingForLock { .. }
        )
    }
}

impl fmt::Display for Note {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::TookOverLock { holder, operation, since, rolling_update: false } => write!(
                formatter,
                "took over the expired lock of {holder} ({operation:?} since {since}): that operation may have been interrupted; this run picks up where it stopped"
            ),
            Note::TookOverLock { holder, operation, rolling_update: true, .. } => write!(
                formatter,
                "took over the expired lock of {holder} ({operation:?}); an interrupted rolling update continues where it stopped"
            ),
            Note::WaitingForLock { cluster, holder, operation, since, expires, timeout } => write!(
                formatter,
                "Waiting up to {timeout} for the lock of cluster {cluster}: held by {holder} for {operation:?} since {since}, lease expires {expires} unless renewed (Ctrl-C to give up)"
            ),
            Note::GeneratedPki { pieces } => write!(
                formatter,
                "Generated the cluster's {} in the state store.",
                pieces.join(", ")
            ),
            Note::ResumingIntents { cluster, keys } => write!(
                formatter,
                "The last apply of cluster {cluster} stopped with {} create(s) started or about to start ({}): what AWS has of them is adopted, the rest is created again with the same idempotency tokens.",
                keys.len(),
                keys.join(", ")
            ),
            Note::PreviewOfTerraformCluster { cluster } => write!(
                formatter,
                "cluster {cluster} is managed by Terraform: this preview shows what a direct apply would change, but `--yes` refuses to apply it (see docs/terraform.md)"
            ),
            Note::SwitchedToDirect { cluster } => write!(
                formatter,
                "cluster {cluster} is now applied directly by skiff, no longer through Terraform: stop running `terraform apply` for it (remove it from the Terraform state with `terraform state rm`, without destroying anything)"
            ),
            Note::DeleteOfTerraformCluster { cluster } => write!(
                formatter,
                "cluster {cluster} is managed by Terraform: deleting its resources here would leave Terraform's state describing resources that no longer exist. Run `terraform destroy` in the folder `skiff update cluster {cluster} --target terraform --out DIR` wrote, then `skiff delete cluster {cluster} --unregister --yes` to remove it from the store"
            ),
            Note::InsecureStoreAllowed { what, store, findings } => write!(
                formatter,
                "INSECURE STATE STORE: going on to {what} in {store} only because of --allow-insecure-store; the cluster's secrets will be written to a store that is not safe to hold them:{findings}"
            ),
            Note::SnapshotFailed { cluster, error } => write!(
                formatter,
                "keeping a copy of the recorded state of cluster {cluster} in its history failed: {error}"
            ),
        }
    }
}
