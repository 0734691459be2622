//! The intent journal: what an apply is about to create is written into
//! the recorded state before it starts, and every outcome after it
//! happens, conditionally on the version last written, under the cluster
//! lock (see docs/reliability.md).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use skiff_plans::plan::ResourceChange;
use skiff_plans::recorded::{Intent, RecordedContent, RecordedResource};
use skiff_plans::{Plan, ResourceKey};
use skiff_providers::apply::{Journal, JournalError, Outcome};
use skiff_state::recorded::{self, RecordedState};
use skiff_state::{LockGuard, ObjectStore, StateStore, StoreError, Version};
use tokio::sync::{Mutex, Notify};

/// Writes apply outcomes into `state.json`, conditionally on the version
/// last written, under the cluster lock.
///
/// Intents are written before [`Journal::intend`] returns. Outcomes are
/// written behind the apply: [`Journal::record`] adds an outcome to the
/// state in memory and wakes the writer, which writes whatever has
/// accumulated (group commits: a wave of parallel changes costs one write,
/// not one each), at most once per [`PERSIST_INTERVAL`], so the store's
/// round trip stays off the apply's critical path; [`Journal::flush`]
/// writes what is left. A write that fails makes every later `record`
/// fail, which stops the apply.
pub struct StateJournal {
    objects: Arc<dyn ObjectStore>,
    cluster: String,
    lock: Arc<LockGuard>,
    /// Why each group's running instances go out of date when its launch
    /// template changes: noted in the state with the template's outcome.
    rollouts: BTreeMap<ResourceKey, skiff_plans::RollingUpdateNeed>,
    /// The state as it should be, and how many changes it has had.
    pending: Mutex<Pending>,
    /// The writer's side: the version last written and how many changes
    /// it held. Taken by one writer at a time.
    written: Mutex<Written>,
    /// Wakes the background writer.
    wake: Notify,
    /// The first failed background write.
    failure: std::sync::Mutex<Option<String>>,
    /// Set when the background writer is to stop.
    closed: std::sync::atomic::AtomicBool,
    /// Interrupts the background writer's wait between two writes.
    stopping: Notify,
}

/// The least time between two background writes of an apply's outcomes.
///
/// An outcome need not be in the store the moment it happens: its intent
/// is, so a run killed before the outcome is written leaves a resource the
/// next run adopts by its tags (or creates again with the same token). The
/// writes in between are for the next run's convenience and for whoever
/// watches the state, not for safety; writing at most once a second keeps
/// them from costing a large cluster's state (a megabyte at 100 groups) a
/// few dozen times over, and an apply of a second or less from waiting for
/// a write in flight before its last one. (Terraform writes its state at
/// most every 20 s during an apply, for the same reason.)
pub const PERSIST_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

struct Pending {
    state: RecordedState<RecordedContent>,
    changes: u64,
}

struct Written {
    version: Option<Version>,
    changes: u64,
}

impl StateJournal {
    /// A journal continuing from the state read, for applying `plan`.
    pub fn new(
        store: &StateStore,
        plan: &Plan,
        lock: Arc<LockGuard>,
        state: RecordedState<RecordedContent>,
        version: Option<Version>,
    ) -> StateJournal {
        let rollouts = plan
            .rolling_updates
            .iter()
            .map(|need| {
                (
                    skiff_plans::desired::compute::launch_template_key(&need.group),
                    need.clone(),
                )
            })
            .collect();
        StateJournal {
            objects: store.objects().clone(),
            cluster: plan.cluster.clone(),
            lock,
            rollouts,
            pending: Mutex::new(Pending { state, changes: 0 }),
            written: Mutex::new(Written {
                version,
                changes: 0,
            }),
            wake: Notify::new(),
            failure: std::sync::Mutex::new(None),
            closed: std::sync::atomic::AtomicBool::new(false),
            stopping: Notify::new(),
        }
    }

    /// Starts the background writer of outcomes; stop it with
    /// [`StateJournal::stop_writer`] once the apply is done.
    pub fn start_writer(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let journal = self.clone();
        tokio::spawn(async move {
            let mut last_write: Option<tokio::time::Instant> = None;
            loop {
                journal.wake.notified().await;
                if journal.closed.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                if let Some(last) = last_write {
                    tokio::select! {
                        () = tokio::time::sleep_until(last + PERSIST_INTERVAL) => {}
                        () = journal.stopping.notified() => return,
                    }
                }
                last_write = Some(tokio::time::Instant::now());
                let latest = journal.pending.lock().await.changes;
                if let Err(error) = journal.commit(latest).await {
                    journal.fail(error.to_string());
                }
            }
        })
    }

    /// Stops the background writer after the write in progress, if any
    /// (what it has not written, [`Journal::flush`] writes).
    pub async fn stop_writer(&self, writer: tokio::task::JoinHandle<()>) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_one();
        self.stopping.notify_one();
        let _ = writer.await;
    }

    fn fail(&self, message: String) {
        let mut failure = self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failure.get_or_insert(message);
    }

    fn failed(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Changes the state in memory; returns the change's number, for
    /// [`StateJournal::commit`]. `change` says whether it changed anything.
    async fn change(&self, change: impl FnOnce(&mut RecordedContent) -> bool) -> Option<u64> {
        let mut pending = self.pending.lock().await;
        if !change(&mut pending.state.content) {
            return None;
        }
        pending.changes += 1;
        Some(pending.changes)
    }

    /// Returns once change number `change` is in the store: written by
    /// this call, together with whatever else is pending, or already by
    /// another.
    async fn commit(&self, change: u64) -> Result<(), StoreError> {
        let mut written = self.written.lock().await;
        if written.changes >= change {
            return Ok(());
        }
        self.lock.ensure_held()?;
        let (mut state, changes) = {
            let pending = self.pending.lock().await;
            (pending.state.clone(), pending.changes)
        };
        let version = recorded::write(
            self.objects.as_ref(),
            &self.cluster,
            written.version.as_ref(),
            &mut state,
        )
        .await?;
        written.version = Some(version);
        written.changes = changes;
        // Only writers change the serial, one at a time.
        self.pending.lock().await.state.serial = state.serial;
        Ok(())
    }

    /// Keeps a copy of the current state in the state history, with who
    /// is acting, the command line and `summary`.
    pub async fn snapshot(
        &self,
        store: &StateStore,
        command_line: &str,
        summary: &str,
    ) -> Result<(), StoreError> {
        let written = self.written.lock().await;
        if written.version.is_some() {
            let pending = self.pending.lock().await;
            store
                .snapshot_state(&self.cluster, &pending.state, command_line, summary)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Journal for StateJournal {
    async fn intend(
        &self,
        changes: &[&ResourceChange],
    ) -> Result<BTreeMap<ResourceKey, String>, JournalError> {
        let mut tokens = BTreeMap::new();
        let change = {
            let mut pending = self.pending.lock().await;
            let state = &mut pending.state;
            // A token unique to this state and write: the lineage names the
            // state, the serial grows with every write.
            let seed = format!("{}|{}", state.lineage, state.serial + 1);
            let before = state.content.intents.clone();
            let mut intents = BTreeMap::new();
            for change in changes {
                let intent = match before.get(&change.key) {
                    // Left by an interrupted run: create again with the
                    // same token, so EC2 answers with what it made then.
                    Some(intent) => intent.clone(),
                    None => Intent {
                        action: change.action,
                        token: format!(
                            "skiff-{}",
                            skiff_plans::names::short_hash(&format!("{seed}|{}", change.key))
                        ),
                    },
                };
                tokens.insert(change.key.clone(), intent.token.clone());
                intents.insert(change.key.clone(), intent);
            }
            // Intents this plan does not repeat are settled: the refresh
            // found their resources (adopted) or they are no longer wanted.
            if intents == before {
                None
            } else {
                state.content.intents = intents;
                pending.changes += 1;
                Some(pending.changes)
            }
        };
        if let Some(change) = change {
            self.commit(change).await.map_err(journal_error)?;
        }
        Ok(tokens)
    }

    async fn record(&self, change: &ResourceChange, outcome: &Outcome) -> Result<(), JournalError> {
        self.lock.ensure_held().map_err(JournalError::lock_lost)?;
        if let Some(failure) = self.failed() {
            return Err(JournalError::write(format!(
                "an earlier write failed: {failure}"
            )));
        }
        let number = self
            .change(|content| {
                match outcome {
                    Outcome::Deleted => {
                        // A stray (a second resource with the same key, left
                        // by an interrupted run) is deleted under the key of
                        // the resource that stays: forget the key only if it
                        // recorded this one.
                        let recorded_here = match (&change.id, content.resources.get(&change.key)) {
                            (Some(id), Some(recorded)) => recorded.id == *id,
                            _ => true,
                        };
                        if recorded_here {
                            content.resources.remove(&change.key);
                        }
                    }
                    Outcome::Applied {
                        applied,
                        attributes,
                    } => {
                        content.resources.insert(
                            change.key.clone(),
                            RecordedResource {
                                kind: change.kind,
                                id: applied.id.clone(),
                                outputs: applied.outputs.clone(),
                                attributes: Some(attributes.clone()),
                            },
                        );
                        content.intents.remove(&change.key);
                        // Which groups' running instances are now out of
                        // date and why, for `rolling-update cluster`.
                        if let Some(need) = self.rollouts.get(&change.key) {
                            let reasons = content
                                .pending_rollouts
                                .entry(need.group.clone())
                                .or_default();
                            for reason in &need.reasons {
                                if !reasons.contains(reason) {
                                    reasons.push(reason.clone());
                                }
                            }
                        }
                    }
                }
                true
            })
            .await;
        if number.is_some() {
            self.wake.notify_one();
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), JournalError> {
        // Everything taken so far, in one last write (or none, when the
        // background writer got there first).
        let latest = self.pending.lock().await.changes;
        self.commit(latest).await.map_err(journal_error)
    }
}

/// A failed [`StateJournal::commit`], for the executor: a lost lock says so.
fn journal_error(error: StoreError) -> JournalError {
    match error {
        StoreError::LockLost { .. } => JournalError::lock_lost(error),
        error => JournalError::write(error),
    }
}
