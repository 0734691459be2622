//! The executor: runs a plan's changes against AWS.
//!
//! Creates, updates and replaces run as a dependency graph: a change starts
//! as soon as every change it depends on has succeeded, up to
//! `parallelism` at a time, so independent branches (each zone's NAT
//! gateway, each group's launch template) proceed together and the wall
//! time approaches the plan's longest chain; of the changes ready to
//! start, those with the most calls still after them go first. Deletes run
//! afterwards, in reverse build order by kind (dependents first), each
//! kind's deletes in parallel.
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
//! was skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use skiff_plans::diff::kind_rank;
use skiff_plans::plan::{Action, Plan, ResourceChange};
use skiff_plans::resolve::{resolve, KnownOutputs};
use skiff_plans::resource::{Attributes, ResourceKey, ResourceKind};
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;

use crate::error::ProviderError;
use crate::operations::Applied;
use crate::AwsProvider;

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
    ) -> Result<BTreeMap<ResourceKey, String>, String>;

    /// Takes an outcome, to be written soon. An error (an earlier write
    /// failed, the lock was lost) stops what depends on this change: skiff
    /// does not go on changing the cloud once it cannot record.
    async fn record(&self, change: &ResourceChange, outcome: &Outcome) -> Result<(), String>;

    /// Returns once every outcome taken is written.
    async fn flush(&self) -> Result<(), String>;
}

/// Progress callbacks (the CLI turns them into a progress display).
pub trait Reporter: Send + Sync {
    /// A change starts.
    fn started(&self, change: &ResourceChange);
    /// A change ended, well or not.
    fn finished(&self, change: &ResourceChange, error: Option<&ProviderError>);
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
    /// message. `None`: nothing to wait for.
    pub before_launch: Option<Gate>,
}

/// A condition changes can wait for, shared by all of them: see
/// [`ApplyOptions::before_launch`] and [`gate`].
pub type Gate = futures::future::Shared<futures::future::BoxFuture<'static, Result<(), String>>>;

/// A [`Gate`] that opens when `ready` completes (`Err`: with this message).
pub fn gate(ready: impl std::future::Future<Output = Result<(), String>> + Send + 'static) -> Gate {
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
    pub failed: Vec<(ResourceKey, String)>,
    /// Changes not attempted because something they needed failed (or the
    /// apply was stopped).
    pub skipped: Vec<ResourceKey>,
}

impl ApplyReport {
    /// Whether everything succeeded.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty()
    }
}

struct Shared {
    provider: AwsProvider,
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

/// Runs the plan. `stop` is checked before each change starts: when it says
/// stop, changes in flight finish and are recorded, the rest are skipped.
pub async fn apply(
    provider: &AwsProvider,
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
        Err(message) => {
            report.failed.push((
                ResourceKey("(journal)".to_string()),
                format!("recording what the apply is about to create failed: {message}"),
            ));
            report
                .skipped
                .extend(plan.changes.iter().map(|change| change.key.clone()));
            return report;
        }
    };
    let shared = Arc::new(Shared {
        provider: provider.clone(),
        before_launch: options.before_launch.clone(),
        tokens,
        known: Mutex::new(plan.known_outputs.clone()),
        journal,
        reporter,
    });
    let parallelism = options.parallelism.max(1);
    let semaphore = Arc::new(Semaphore::new(parallelism));
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
    let by_key: BTreeMap<ResourceKey, ResourceChange> = graph
        .iter()
        .map(|change| (change.key.clone(), (*change).clone()))
        .collect();
    let mut running = JoinSet::new();
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
            if stop() {
                report.skipped.push(key.clone());
                failed_keys.insert(key);
                continue;
            }
            let change = by_key[&key].clone();
            let shared = shared.clone();
            running.spawn(async move {
                let result = run_change(&shared, &change).await;
                (change.key, result)
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        match joined {
            Ok((key, Ok(()))) => {
                for dependencies in waiting.values_mut() {
                    dependencies.remove(&key);
                }
                report.succeeded.push(key);
            }
            Ok((key, Err(message))) => {
                failed_keys.insert(key.clone());
                report.failed.push((key, message));
            }
            Err(join_error) => {
                report
                    .failed
                    .push((ResourceKey("(task)".to_string()), join_error.to_string()));
            }
        }
    }
    for key in waiting.into_keys() {
        report.skipped.push(key);
    }

    // Phase two: deletes, dependents first.
    let mut deletes: Vec<&ResourceChange> = plan
        .changes
        .iter()
        .filter(|change| change.action == Action::Delete)
        .collect();
    deletes.sort_by_key(|change| std::cmp::Reverse(kind_rank(change.kind)));
    let mut rank_groups: BTreeMap<std::cmp::Reverse<usize>, Vec<ResourceChange>> = BTreeMap::new();
    for change in deletes {
        rank_groups
            .entry(std::cmp::Reverse(kind_rank(change.kind)))
            .or_default()
            .push(change.clone());
    }
    let mut delete_failed = false;
    for (_, group) in rank_groups {
        if delete_failed || stop() || !report.failed.is_empty() {
            // Deleting after a failure could remove what the failed part still needs.
            report
                .skipped
                .extend(group.into_iter().map(|change| change.key));
            continue;
        }
        let mut running = JoinSet::new();
        for change in group {
            let shared = shared.clone();
            let semaphore = semaphore.clone();
            running.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let result = run_change(&shared, &change).await;
                (change.key, result)
            });
        }
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok((key, Ok(()))) => report.succeeded.push(key),
                Ok((key, Err(message))) => {
                    delete_failed = true;
                    report.failed.push((key, message));
                }
                Err(join_error) => {
                    delete_failed = true;
                    report
                        .failed
                        .push((ResourceKey("(task)".to_string()), join_error.to_string()));
                }
            }
        }
    }
    if let Err(message) = shared.journal.flush().await {
        report.failed.push((
            ResourceKey("(journal)".to_string()),
            format!("recording the outcomes failed: {message}"),
        ));
    }
    report
}

async fn run_change(shared: &Shared, change: &ResourceChange) -> Result<(), String> {
    shared.reporter.started(change);
    let result = execute(shared, change).await;
    match &result {
        Ok(()) => shared.reporter.finished(change, None),
        Err(Failure::Provider(error)) => shared.reporter.finished(change, Some(error)),
        Err(Failure::Journal(message)) => {
            shared.reporter.finished(
                change,
                Some(&ProviderError::other(
                    "record",
                    change.key.as_str(),
                    message.clone(),
                )),
            );
        }
    }
    result.map_err(|failure| match failure {
        Failure::Provider(error) => error.to_string(),
        Failure::Journal(message) => {
            format!("recording the outcome of {} failed: {message}", change.key)
        }
    })
}

enum Failure {
    Provider(ProviderError),
    Journal(String),
}

impl From<ProviderError> for Failure {
    fn from(error: ProviderError) -> Failure {
        Failure::Provider(error)
    }
}

async fn execute(shared: &Shared, change: &ResourceChange) -> Result<(), Failure> {
    let provider = &shared.provider;
    match change.action {
        Action::Delete => {
            let current = change.current.as_ref().ok_or_else(|| {
                ProviderError::other(
                    "delete",
                    change.key.as_str(),
                    "the plan has no current attributes",
                )
            })?;
            let id = change.id.clone().unwrap_or_default();
            provider.delete(&change.key, &id, current).await?;
            shared.known.lock().await.remove(&change.key);
            shared
                .journal
                .record(change, &Outcome::Deleted)
                .await
                .map_err(Failure::Journal)?;
            Ok(())
        }
        Action::Create | Action::Update | Action::Replace => {
            if let (ResourceKind::AutoScalingGroup, Some(gate)) =
                (change.kind, &shared.before_launch)
            {
                gate.clone().await.map_err(|message| {
                    ProviderError::other(
                        "launch",
                        change.key.as_str(),
                        format!("its instances cannot launch: {message}"),
                    )
                })?;
            }
            let desired = change.desired.as_ref().ok_or_else(|| {
                ProviderError::other(
                    "apply",
                    change.key.as_str(),
                    "the plan has no desired attributes",
                )
            })?;
            let resolved = {
                let known = shared.known.lock().await;
                resolve(desired, &known)
            };
            let unresolved = resolved.references();
            if !unresolved.is_empty() {
                let names: Vec<String> = unresolved.iter().map(ToString::to_string).collect();
                return Err(ProviderError::other(
                    "apply",
                    change.key.as_str(),
                    format!("needs {} which did not get a value", names.join(", ")),
                )
                .into());
            }
            let applied = match change.action {
                Action::Create => {
                    provider
                        .create(&change.key, &resolved, shared.token(&change.key))
                        .await?
                }
                Action::Update => {
                    let current = change.current.as_ref().ok_or_else(|| {
                        ProviderError::other(
                            "update",
                            change.key.as_str(),
                            "the plan has no current attributes",
                        )
                    })?;
                    let id = change.id.clone().unwrap_or_default();
                    let mut applied = provider
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
                    let current = change.current.as_ref().ok_or_else(|| {
                        ProviderError::other(
                            "replace",
                            change.key.as_str(),
                            "the plan has no current attributes",
                        )
                    })?;
                    let id = change.id.clone().unwrap_or_default();
                    provider.delete(&change.key, &id, current).await?;
                    shared
                        .journal
                        .record(change, &Outcome::Deleted)
                        .await
                        .map_err(Failure::Journal)?;
                    provider
                        .create(&change.key, &resolved, shared.token(&change.key))
                        .await?
                }
            };
            shared
                .known
                .lock()
                .await
                .insert(change.key.clone(), applied.outputs.clone());
            shared
                .journal
                .record(
                    change,
                    &Outcome::Applied {
                        applied,
                        attributes: resolved,
                    },
                )
                .await
                .map_err(Failure::Journal)?;
            Ok(())
        }
    }
}
