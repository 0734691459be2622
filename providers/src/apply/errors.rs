//! Why a change, the journal or the launch gate failed, as types.
//!
//! The CLI prints these with their `Display`, one line per failed change,
//! so each message names the change and includes its cause; the cause is
//! also kept as a value (`source`) for whoever needs to tell one failure
//! from another (a lost lock from a failed write, say).

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use skiff_plans::resource::{Reference, ResourceKey};

use crate::error::ProviderError;

/// A cause of any type, shared: journal and gate errors are cloned to every
/// change they stop.
pub type Cause = Arc<dyn Error + Send + Sync + 'static>;

/// Why the journal could not record: the executor does not go on changing
/// the cloud once it cannot record what it did.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    /// The cluster lock is no longer held: another run may be changing the
    /// cluster, so nothing more may be written or changed.
    #[error("the cluster lock is no longer held: {cause}")]
    LockLost {
        /// Why the lock was lost.
        #[source]
        cause: Cause,
    },
    /// Writing the recorded state failed, this time or an earlier write
    /// (after which every later record fails too).
    #[error("writing the recorded state failed: {cause}")]
    Write {
        /// Why the write failed.
        #[source]
        cause: Cause,
    },
}

impl JournalError {
    /// The lock was lost, because of `cause`.
    pub fn lock_lost(cause: impl Into<Box<dyn Error + Send + Sync>>) -> JournalError {
        JournalError::LockLost {
            cause: Arc::from(cause.into()),
        }
    }

    /// A write failed, because of `cause`.
    pub fn write(cause: impl Into<Box<dyn Error + Send + Sync>>) -> JournalError {
        JournalError::Write {
            cause: Arc::from(cause.into()),
        }
    }
}

/// Why a launch gate ([`super::Gate`]) did not open.
///
/// Cloned to every change that waited for it. Its `Display` is the whole
/// chain of causes joined by ": " (what `anyhow` prints with `{:#}`), so a
/// message with context is not cut to its outermost line wherever it is
/// printed; for the same reason it reports no `source` of its own (a
/// chain printer would say every cause twice). [`GateError::cause`] is the
/// original error.
#[derive(Debug, Clone)]
pub struct GateError(Cause);

impl GateError {
    /// A gate failure because of `cause` (any error, e.g. an
    /// `anyhow::Error` with context).
    pub fn new(cause: impl Into<Box<dyn Error + Send + Sync>>) -> GateError {
        GateError(Arc::from(cause.into()))
    }

    /// The error the gate failed with.
    pub fn cause(&self) -> &(dyn Error + Send + Sync + 'static) {
        self.0.as_ref()
    }
}

impl fmt::Display for GateError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(cause) = next {
            write!(formatter, ": {cause}")?;
            next = cause.source();
        }
        Ok(())
    }
}

impl Error for GateError {}

/// Why one change of the plan failed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// An AWS call failed (its message names the call and the resource).
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The change was made but its outcome could not be recorded: what
    /// depends on it does not start.
    #[error("recording the outcome of {key} failed: {source}")]
    Journal {
        /// The change.
        key: ResourceKey,
        /// Why the journal refused it.
        #[source]
        source: JournalError,
    },
    /// An auto scaling group could not start: what its instances need at
    /// boot ([`super::ApplyOptions::before_launch`]) is not ready.
    #[error("launch for {key} failed: its instances cannot launch: {source}")]
    Launch {
        /// The auto scaling group.
        key: ResourceKey,
        /// Why the gate did not open.
        #[source]
        source: GateError,
    },
    /// References in the desired attributes got no value from the changes
    /// they name (a plan whose dependencies miss an edge).
    #[error("apply for {key} failed: needs {} which did not get a value", joined(.references))]
    Unresolved {
        /// The change.
        key: ResourceKey,
        /// What it refers to without a value.
        references: Vec<Reference>,
    },
    /// The plan lacks the attributes this action needs (a plan not made
    /// by the planner, or damaged).
    #[error("{operation} for {key} failed: the plan has no {attributes} attributes")]
    IncompletePlan {
        /// The change.
        key: ResourceKey,
        /// The action: `apply`, `update`, `replace` or `delete`.
        operation: &'static str,
        /// Which attributes are missing: `current` or `desired`.
        attributes: &'static str,
    },
    /// The change's task was cancelled before it finished (the runtime is
    /// shutting down): whether the cloud changed is unknown until the next
    /// refresh.
    #[error("{key} did not finish: its task was cancelled")]
    Cancelled {
        /// The change.
        key: ResourceKey,
    },
}

fn joined(references: &[Reference]) -> String {
    let names: Vec<String> = references.iter().map(ToString::to_string).collect();
    names.join(", ")
}

/// Why the journal failed outside of any one change: the apply's intents
/// before it starts, or its last outcomes at the end.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RecordingError {
    /// [`super::Journal::intend`] failed: the apply changed nothing.
    #[error("recording what the apply is about to create failed: {0}")]
    Intents(#[source] JournalError),
    /// [`super::Journal::flush`] failed: outcomes may be missing from the
    /// recorded state (the next run adopts their resources by their tags).
    #[error("recording the outcomes failed: {0}")]
    Outcomes(#[source] JournalError),
}

impl RecordingError {
    /// The journal's error.
    pub fn journal_error(&self) -> &JournalError {
        match self {
            RecordingError::Intents(error) | RecordingError::Outcomes(error) => error,
        }
    }
}
