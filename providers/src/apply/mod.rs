//! The executor: runs a plan's changes against the cloud.
//!
//! Creates, updates and replaces run as a dependency graph: a change starts
//! as soon as every change it depends on has succeeded, up to
//! `parallelism` at a time, so independent branches (each zone's NAT
//! gateway, each group's launch template) proceed together and the wall
//! time approaches the plan's longest chain; of the changes ready to
//! start, those with the most calls still after them go first. Deletes run
//! afterwards, also as a graph: each as soon as the deletes of what holds
//! it have finished (`skiff_plans::teardown`), so the slow releases of
//! instances, load balancers and NAT gateways overlap.
//!
//! Before anything starts, the [`Journal`] durably records the intent of
//! every create with the token it will carry. Each outcome is then handed
//! to the journal the moment it happens; the journal writes outcomes behind
//! the apply (dependents start as soon as what they need exists, not after
//! a store round trip) and the apply ends with [`Journal::flush`]. A run
//! that dies in between leaves creates that are intended but not recorded:
//! the next run adopts them by their tags and names, or creates them again
//! with the same idempotency tokens, so nothing is lost or duplicated.
//! A failure stops only what depends on the failed change; everything
//! independent still completes, and the result lists what failed and what
//! was skipped. A journal that cannot record (the lock is lost, a write
//! failed) stops the apply from starting anything more: skiff does not go
//! on changing the cloud once it cannot record what it changed.
//!
//! The executor decides only order, waiting and recording; the calls
//! themselves go through [`ResourceOperations`], which [`AwsProvider`]
//! implements. That seam, with the [`Journal`] and the [`Reporter`], is
//! what the unit tests replace with in-memory fakes to check the
//! scheduling in milliseconds; the integration tests against the local
//! endpoint prove the AWS side.
//!
//! [`AwsProvider`]: crate::AwsProvider

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use skiff_plans::plan::{Action, Plan, ResourceChange};
use skiff_plans::resolve::{resolve, KnownOutputs};
use skiff_plans::resource::{Attributes, ResourceKey, ResourceKind};
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;

use crate::operations::Applied;

mod errors;
mod operations;
#[cfg(test)]
mod tests;

pub use errors::{Cause, ChangeError, GateError, JournalError, RecordingError};
pub use operations::ResourceOperations;

/// What happened to one resource, for the journal.
// One short-lived value per change, passed by reference: boxing the large
// variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Created or updated: its ID, outputs and the attributes now applied.
    Applied {
        /// The ID and outputs.
        applied: Applied,
        /// The attributes applied (references resolved).
        attributes: Attributes,
    },
    /// Deleted.
    Deleted,
}

/// Receives every outcome as it happens (the recorded state).
#[async_trait]
pub trait Journal: Send + Sync {
    /// Records, before any of them starts, the creates (and replaces) the
    /// apply is about to make; returns the token of each, by key. A key
    /// with an intent left by an interrupted run keeps that intent's token.
    /// An error stops the apply before it changes anything.
    async fn intend(
        &self,
        changes: &[&ResourceChange],
    ) -> Result<BTreeMap<ResourceKey, String>, JournalError>;

    /// Takes an outcome, to be written soon. An error (an earlier write
    /// failed, the lock was lost) fails this change and stops the apply
    /// from starting anything more: skiff does not go on changing the
    /// cloud once it cannot record.
    async fn record(&self, change: &ResourceChange, outcome: &Outcome) -> Result<(), JournalError>;

    /// Returns once every outcome taken is written.
    async fn flush(&self) -> Result<(), JournalError>;
}

/// Progress callbacks (the CLI turns them into a progress display).
pub trait Reporter: Send + Sync {
    /// A change starts.
    fn started(&self, change: &ResourceChange);
    /// A change ended, well or not.
    fn finished(&self, change: &ResourceChange, error: Option<&ChangeError>);
}

/// Tuning of an apply.
#[derive(Clone)]
pub struct ApplyOptions {
    /// Changes in flight at once.
    pub parallelism: usize,
    /// What must be done before instances can launch, i.e. before an auto
    /// scaling group is created, updated or replaced (everything else
    /// starts meanwhile): the cluster's PKI in the state store, which
    /// booting nodes fetch. If it fails, those changes fail with its
    /// message ([`ChangeError::Launch`]). `None`: nothing to wait for.
    pub before_launch: Option<Gate>,
}

/// A condition changes can wait for, shared by all of them: see
/// [`ApplyOptions::before_launch`] and [`gate`].
pub type Gate = futures::future::Shared<futures::future::BoxFuture<'static, Result<(), GateError>>>;

/// A [`Gate`] that opens when `ready` completes (`Err`: every change that
/// waits for it fails with this error).
pub fn gate(ready: impl Future<Output = Result<(), GateError>> + Send + 'static) -> Gate {
    use futures::FutureExt as _;
    ready.boxed().shared()
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            parallelism: 16,
            before_launch: None,
        }
    }
}

/// How an apply ended.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Changes that succeeded.
    pub succeeded: Vec<ResourceKey>,
    /// Changes that failed, with why.
    pub failed: Vec<(ResourceKey, ChangeError)>,
    /// Changes not attempted because something they needed failed (or the
    /// apply was stopped).
    pub skipped: Vec<ResourceKey>,
    /// The journal failed outside of any one change: recording the intents
    /// (then nothing was changed) or the last outcomes.
    pub journal: Option<RecordingError>,
}

impl ApplyReport {
    /// Whether everything succeeded and was recorded.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && self.journal.is_none()
    }
}

struct Shared {
    operations: Arc<dyn ResourceOperations>,
    before_launch: Option<Gate>,
    /// The intent token of each create, by key.
    tokens: BTreeMap<ResourceKey, String>,
    known: Mutex<KnownOutputs>,
    journal: Arc<dyn Journal>,
    reporter: Arc<dyn Reporter>,
}

impl Shared {
    /// The intent token of a create (the journal gave one for each).
    fn token(&self, key: &ResourceKey) -> &str {
        self.tokens.get(key).map(String::as_str).unwrap_or_default()
    }
}

/// Changes in flight, each one task, by key.
struct Tasks {
    set: JoinSet<Result<(), ChangeError>>,
    keys: HashMap<tokio::task::Id, ResourceKey>,
}

impl Tasks {
    fn new() -> Tasks {
        Tasks {
            set: JoinSet::new(),
            keys: HashMap::new(),
        }
    }

    fn len(&self) -> usize {
        self.set.len()
    }

    /// Starts `change`. With `limit`, it first waits for a permit (the
    /// deletes of a kind are all spawned at once and share one).
    fn spawn(
        &mut self,
        shared: &Arc<Shared>,
        change: ResourceChange,
        limit: Option<Arc<Semaphore>>,
    ) {
        let shared = shared.clone();
        let key = change.key.clone();
        let handle = self.set.spawn(async move {
            let _permit = match limit {
                Some(semaphore) => semaphore.acquire_owned().await.ok(),
                None => None,
            };
            run_change(&shared, &change).await
        });
        self.keys.insert(handle.id(), key);
    }

    /// The next change to finish, with its result; `None` once none is in
    /// flight. A change that panicked panics here: a panic is a bug, and
    /// hiding it behind a failed change would hide where it happened.
    async fn next(&mut self) -> Option<(ResourceKey, Result<(), ChangeError>)> {
        loop {
            let joined = self.set.join_next_with_id().await?;
            let (id, result) = match joined {
                Ok((id, result)) => (id, result),
                Err(error) => {
                    let id = error.id();
                    match error.try_into_panic() {
                        Ok(payload) => std::panic::resume_unwind(payload),
                        Err(_) => {
                            let Some(key) = self.keys.remove(&id) else {
                                continue;
                            };
                            return Some((key.clone(), Err(ChangeError::Cancelled { key })));
                        }
                    }
                }
            };
            if let Some(key) = self.keys.remove(&id) {
                return Some((key, result));
            }
        }
    }
}

/// Runs the plan through `operations`. `stop` is checked before each
/// change starts: when it says stop, changes in flight finish and are
/// recorded, the rest are skipped. The same happens once the journal
/// fails to record an outcome.
pub async fn apply<O: ResourceOperations + Clone + 'static>(
    operations: &O,
    plan: &Plan,
    options: ApplyOptions,
    journal: Arc<dyn Journal>,
    reporter: Arc<dyn Reporter>,
    stop: Arc<dyn Fn() -> bool + Send + Sync>,
) -> ApplyReport {
    let mut report = ApplyReport::default();

    // Phase one: creates, updates and replaces, as a graph.
    let graph: Vec<&ResourceChange> = plan
        .changes
        .iter()
        .filter(|change| change.action != Action::Delete)
        .collect();
    let creates: Vec<&ResourceChange> = graph
        .iter()
        .filter(|change| matches!(change.action, Action::Create | Action::Replace))
        .copied()
        .collect();
    let tokens = match journal.intend(&creates).await {
        Ok(tokens) => tokens,
        Err(error) => {
            report.journal = Some(RecordingError::Intents(error));
            report
                .skipped
                .extend(plan.changes.iter().map(|change| change.key.clone()));
            return report;
        }
    };
    let shared = Arc::new(Shared {
        operations: Arc::new(operations.clone()),
        before_launch: options.before_launch.clone(),
        tokens,
        known: Mutex::new(plan.known_outputs.clone()),
        journal,
        reporter,
    });
    let parallelism = options.parallelism.max(1);
    // Set once the journal could not record an outcome: nothing more starts.
    let mut unrecorded = false;
    let halted = |unrecorded: bool| unrecorded || stop();
    // Of the changes ready to start, the one with the heaviest chain of
    // calls still after it goes first (then by key, for a stable order):
    // the critical path never queues behind work nothing waits for.
    let remaining = skiff_plans::remaining_calls(plan);
    let priority = |key: &ResourceKey| {
        (
            remaining.get(key).copied().unwrap_or(0),
            std::cmp::Reverse(key.clone()),
        )
    };
    let mut ready = std::collections::BinaryHeap::new();
    let mut waiting: BTreeMap<ResourceKey, BTreeSet<ResourceKey>> = graph
        .iter()
        .map(|change| {
            (
                change.key.clone(),
                change.depends_on.iter().cloned().collect(),
            )
        })
        .collect();
    let by_key: BTreeMap<ResourceKey, &ResourceChange> = graph
        .iter()
        .map(|change| (change.key.clone(), *change))
        .collect();
    let mut running = Tasks::new();
    let mut failed_keys: BTreeSet<ResourceKey> = BTreeSet::new();
    loop {
        // Skip whatever depends on a failure.
        let blocked: Vec<ResourceKey> = waiting
            .iter()
            .filter(|(_, dependencies)| {
                dependencies
                    .iter()
                    .any(|dependency| failed_keys.contains(dependency))
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in blocked {
            waiting.remove(&key);
            failed_keys.insert(key.clone());
            report.skipped.push(key);
        }
        let now_ready: Vec<ResourceKey> = waiting
            .iter()
            .filter(|(_, dependencies)| dependencies.is_empty())
            .map(|(key, _)| key.clone())
            .collect();
        for key in now_ready {
            waiting.remove(&key);
            ready.push(priority(&key));
        }
        while running.len() < parallelism {
            let Some((_, std::cmp::Reverse(key))) = ready.pop() else {
                break;
            };
            if halted(unrecorded) {
                report.skipped.push(key.clone());
                failed_keys.insert(key);
                continue;
            }
            running.spawn(&shared, by_key[&key].clone(), None);
        }
        let Some((key, result)) = running.next().await else {
            break;
        };
        match result {
            Ok(()) => {
                for dependencies in waiting.values_mut() {
                    dependencies.remove(&key);
                }
                report.succeeded.push(key);
            }
            Err(error) => {
                unrecorded |= matches!(error, ChangeError::Journal { .. });
                failed_keys.insert(key.clone());
                report.failed.push((key, error));
            }
        }
    }
    report.skipped.extend(waiting.into_keys());

    // Phase two: deletes, each once what holds it is gone
    // (`skiff_plans::teardown`): what AWS releases slowly (instances, a
    // load balancer's interfaces, NAT gateways) is deleted at once and
    // released side by side.
    let deletes: BTreeMap<ResourceKey, &ResourceChange> = plan
        .changes
        .iter()
        .filter(|change| change.action == Action::Delete)
        .map(|change| (change.key.clone(), change))
        .collect();
    let semaphore = Arc::new(Semaphore::new(parallelism));
    if halted(unrecorded) || !report.failed.is_empty() {
        // Deleting after a failure could remove what the failed part still needs.
        report.skipped.extend(deletes.into_keys());
    } else {
        let mut waiting = skiff_plans::teardown::delete_dependencies(plan);
        let mut running = Tasks::new();
        let mut failed_keys: BTreeSet<ResourceKey> = BTreeSet::new();
        loop {
            // What waits for a failed delete stays: it is still held.
            let blocked: Vec<ResourceKey> = waiting
                .iter()
                .filter(|(_, holders)| holders.iter().any(|holder| failed_keys.contains(holder)))
                .map(|(key, _)| key.clone())
                .collect();
            for key in blocked {
                waiting.remove(&key);
                failed_keys.insert(key.clone());
                report.skipped.push(key);
            }
            let now_ready: Vec<ResourceKey> = waiting
                .iter()
                .filter(|(_, holders)| holders.is_empty())
                .map(|(key, _)| key.clone())
                .collect();
            for key in now_ready {
                waiting.remove(&key);
                if halted(unrecorded) {
                    failed_keys.insert(key.clone());
                    report.skipped.push(key);
                    continue;
                }
                running.spawn(&shared, deletes[&key].clone(), Some(semaphore.clone()));
            }
            let Some((key, result)) = running.next().await else {
                break;
            };
            match result {
                Ok(()) => {
                    for holders in waiting.values_mut() {
                        holders.remove(&key);
                    }
                    report.succeeded.push(key);
                }
                Err(error) => {
                    unrecorded |= matches!(error, ChangeError::Journal { .. });
                    failed_keys.insert(key.clone());
                    report.failed.push((key, error));
                }
            }
        }
        report.skipped.extend(waiting.into_keys());
    }
    if let Err(error) = shared.journal.flush().await {
        report.journal = Some(RecordingError::Outcomes(error));
    }
    report
}

async fn run_change(shared: &Shared, change: &ResourceChange) -> Result<(), ChangeError> {
    shared.reporter.started(change);
    let result = execute(shared, change).await;
    shared.reporter.finished(change, result.as_ref().err());
    result
}

/// The attributes `action` needs, or the error that the plan lacks them.
fn needed<'plan>(
    attributes: &'plan Option<Attributes>,
    change: &ResourceChange,
    operation: &'static str,
    which: &'static str,
) -> Result<&'plan Attributes, ChangeError> {
    attributes
        .as_ref()
        .ok_or_else(|| ChangeError::IncompletePlan {
            key: change.key.clone(),
            operation,
            attributes: which,
        })
}

async fn record(
    shared: &Shared,
    change: &ResourceChange,
    outcome: &Outcome,
) -> Result<(), ChangeError> {
    shared
        .journal
        .record(change, outcome)
        .await
        .map_err(|source| ChangeError::Journal {
            key: change.key.clone(),
            source,
        })
}

async fn execute(shared: &Shared, change: &ResourceChange) -> Result<(), ChangeError> {
    let operations = shared.operations.as_ref();
    match change.action {
        Action::Delete => {
            let current = needed(&change.current, change, "delete", "current")?;
            let id = change.id.clone().unwrap_or_default();
            operations.delete(&change.key, &id, current).await?;
            shared.known.lock().await.remove(&change.key);
            record(shared, change, &Outcome::Deleted).await
        }
        Action::Create | Action::Update | Action::Replace => {
            if let (ResourceKind::AutoScalingGroup, Some(gate)) =
                (change.kind, &shared.before_launch)
            {
                gate.clone().await.map_err(|source| ChangeError::Launch {
                    key: change.key.clone(),
                    source,
                })?;
            }
            let desired = needed(&change.desired, change, "apply", "desired")?;
            let resolved = {
                let known = shared.known.lock().await;
                resolve(desired, &known)
            };
            let references = resolved.references();
            if !references.is_empty() {
                return Err(ChangeError::Unresolved {
                    key: change.key.clone(),
                    references,
                });
            }
            let applied = match change.action {
                Action::Create => {
                    operations
                        .create(&change.key, &resolved, shared.token(&change.key))
                        .await?
                }
                Action::Update => {
                    let current = needed(&change.current, change, "update", "current")?;
                    let id = change.id.clone().unwrap_or_default();
                    let mut applied = operations
                        .update(&change.key, &id, current, &resolved)
                        .await?;
                    // Keep outputs the update did not produce (e.g. a load balancer's DNS name).
                    if let Some(previous) = shared.known.lock().await.get(&change.key) {
                        for (output, value) in previous {
                            applied
                                .outputs
                                .entry(*output)
                                .or_insert_with(|| value.clone());
                        }
                    }
                    applied
                }
                _ => {
                    let current = needed(&change.current, change, "replace", "current")?;
                    let id = change.id.clone().unwrap_or_default();
                    operations.delete(&change.key, &id, current).await?;
                    record(shared, change, &Outcome::Deleted).await?;
                    operations
                        .create(&change.key, &resolved, shared.token(&change.key))
                        .await?
                }
            };
            shared
                .known
                .lock()
                .await
                .insert(change.key.clone(), applied.outputs.clone());
            record(
                shared,
                change,
                &Outcome::Applied {
                    applied,
                    attributes: resolved,
                },
            )
            .await
        }
    }
}
