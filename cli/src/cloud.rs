//! What the commands that touch AWS share: building the provider for a
//! cluster, planning (lookups, desired model, refresh, diff), and the
//! journal that writes every apply outcome into the recorded state as it
//! happens.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use async_trait::async_trait;
use skiff_api::document::ClusterBundle;
use skiff_plans::lookups::StateStoreRef;
use skiff_plans::plan::ResourceChange;
use skiff_plans::recorded::{Intent, RecordedContent, RecordedResource};
use skiff_plans::ResourceKey;
use skiff_plans::{DesiredModel, Lookups, Observed, Plan, PlanContext};
use skiff_providers::apply::{Journal, Outcome};
use skiff_providers::refresh::Later;
use skiff_providers::AwsProvider;
use skiff_state::recorded::{self, RecordedState};
use skiff_state::{LockGuard, ObjectStore, StateStore, StoredSpec, StoredState, Version};
use tokio::sync::{Mutex, Notify};

use crate::context::{command_line, Context};

/// The region of a cluster, from its spec.
pub fn region(bundle: &ClusterBundle) -> anyhow::Result<String> {
    let region = bundle.cluster.region();
    if region.is_empty() {
        bail!(
            "spec.region of cluster {} is empty; set it or give the subnets availability zones",
            bundle.name()
        );
    }
    Ok(region.to_string())
}

/// The provider for a cluster's region.
pub async fn provider(context: &Context, bundle: &ClusterBundle) -> anyhow::Result<AwsProvider> {
    Ok(AwsProvider::new(
        context.aws_config().await,
        &region(bundle)?,
    ))
}

/// Where nodes find the state store, when it is in S3.
pub fn state_store_ref(store: &StateStore) -> Option<StateStoreRef> {
    store.s3().map(|s3| StateStoreRef {
        bucket: s3.bucket.clone(),
        prefix: s3.prefix.clone(),
        region: s3.region.clone(),
        endpoint: s3.endpoint.clone(),
    })
}

/// Reads the recorded state of a cluster (or a new, empty one).
pub async fn read_recorded(
    store: &StateStore,
    cluster: &str,
) -> anyhow::Result<(RecordedState<RecordedContent>, Option<Version>)> {
    match recorded::read::<RecordedContent>(store.objects().as_ref(), cluster).await? {
        Some(StoredState { state, version }) => Ok((state, Some(version))),
        None => Ok((
            RecordedState::new(RecordedContent {
                cluster: cluster.to_string(),
                ..RecordedContent::default()
            }),
            None,
        )),
    }
}

/// Everything a plan was made from.
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// What exists.
    pub observed: Observed,
    /// The recorded state it was made against.
    pub state: RecordedState<RecordedContent>,
    /// That state's version in the store (`None`: no state yet).
    pub version: Option<Version>,
}

/// Why a direct apply refuses a cluster recorded as managed by Terraform,
/// and how to switch back.
pub fn managed_by_terraform(cluster: &str) -> String {
    format!(
        "cluster {cluster} is managed by Terraform (its files were written by `skiff update cluster {cluster} --target terraform --out DIR`), so skiff does not apply changes to it directly. Regenerate the Terraform with that command and run `terraform apply` in DIR; or, to switch back to direct applies (first stop applying it with Terraform), run `skiff update cluster {cluster} --target direct --force-target --yes`. Nothing was changed"
    )
}

/// The desired model of a cluster (what both targets build): validate the
/// stored spec, look up what it names (read-only), build the model.
pub async fn desired(
    provider: &AwsProvider,
    store: &StateStore,
    spec: &StoredSpec,
) -> anyhow::Result<(Lookups, DesiredModel)> {
    let lookups = lookups(provider, store, spec).await?;
    let desired = desired_model(spec, &lookups)?;
    Ok((lookups, desired))
}

/// Validates the stored spec and looks up what it names (read-only).
async fn lookups(
    provider: &AwsProvider,
    store: &StateStore,
    spec: &StoredSpec,
) -> anyhow::Result<Lookups> {
    let bundle = &spec.bundle;
    let cluster = bundle.name();
    skiff_api::validate(bundle).with_context(|| format!("the stored spec of cluster {cluster} is not valid; fix it with `skiff edit cluster {cluster}`"))?;
    provider
        .lookups(bundle, state_store_ref(store))
        .await
        .with_context(|| format!("looking up what the spec of cluster {cluster} refers to"))
}

/// The desired model from the spec and its lookups.
fn desired_model(spec: &StoredSpec, lookups: &Lookups) -> anyhow::Result<DesiredModel> {
    skiff_plans::desired_model(&spec.bundle, lookups)
        .with_context(|| format!("cannot plan cluster {}", spec.bundle.name()))
}

/// Makes the plan of a cluster: validate the stored spec, look up what it
/// names, build the desired model, read the recorded state and what exists,
/// diff.
///
/// Everything starts at once: the lookups, the recorded state's read and
/// the refresh; only the API's DNS record waits for its hosted zone (from
/// the lookups), and only the choice between two resources with one key
/// waits for the recorded state.
pub async fn plan(
    provider: &AwsProvider,
    store: &StateStore,
    spec: &StoredSpec,
) -> anyhow::Result<Planned> {
    let bundle = &spec.bundle;
    let cluster = bundle.name();
    let (zone_found, zone) = tokio::sync::oneshot::channel();
    let looking_up = async {
        let result = lookups(provider, store, spec).await;
        let dns_record = result.as_ref().ok().and_then(|lookups| {
            lookups.hosted_zone.as_ref().map(|zone| {
                (
                    zone.id.clone(),
                    format!("{}.", bundle.cluster.api_dns_name()),
                )
            })
        });
        let _ = zone_found.send(dns_record);
        // The model (every group's user-data rendered and compressed) is
        // CPU work: on a thread of its own, so that the refresh reads on.
        let lookups = result?;
        let spec = spec.clone();
        match tokio::task::spawn_blocking(move || desired_model(&spec, &lookups)).await {
            Ok(model) => model,
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    };
    let (state_read, state) = tokio::sync::oneshot::channel();
    let reading = async {
        let result = read_recorded(store, cluster).await;
        let content = result.as_ref().ok().map(|(state, _)| state.content.clone());
        let _ = state_read.send(content);
        result
    };
    let refreshing = async {
        let later = async {
            let (dns_record, recorded) = tokio::join!(zone, state);
            Later {
                dns_record: dns_record.ok().flatten(),
                recorded: recorded.ok().flatten(),
            }
        };
        provider
            .refresh_with(cluster, later)
            .await
            .with_context(|| format!("reading the AWS resources of cluster {cluster}"))
    };
    let (desired, recorded, observed) = tokio::join!(looking_up, reading, refreshing);
    let desired = desired?;
    let (state, version) = recorded?;
    let observed = observed?;
    let has_state = version.is_some();
    let context = PlanContext {
        region: provider.region.clone(),
        spec_revision: spec.revision.serial,
        state: if has_state {
            skiff_plans::StateBinding::recorded(state.lineage.clone(), state.serial)
        } else {
            skiff_plans::StateBinding::none()
        },
    };
    let plan = skiff_plans::plan(&desired, &observed, &context)?;
    Ok(Planned {
        plan,
        observed,
        state,
        version,
    })
}

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
    async fn commit(&self, change: u64) -> anyhow::Result<()> {
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
    pub async fn snapshot(&self, store: &StateStore, summary: &str) -> anyhow::Result<()> {
        let written = self.written.lock().await;
        if written.version.is_some() {
            let pending = self.pending.lock().await;
            store
                .snapshot_state(&self.cluster, &pending.state, &command_line(), summary)
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
    ) -> Result<BTreeMap<ResourceKey, String>, String> {
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
            self.commit(change)
                .await
                .map_err(|error| error.to_string())?;
        }
        Ok(tokens)
    }

    async fn record(&self, change: &ResourceChange, outcome: &Outcome) -> Result<(), String> {
        self.lock.ensure_held().map_err(|error| error.to_string())?;
        if let Some(failure) = self.failed() {
            return Err(format!(
                "an earlier write of the recorded state failed: {failure}"
            ));
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

    async fn flush(&self) -> Result<(), String> {
        // Everything taken so far, in one last write (or none, when the
        // background writer got there first).
        let latest = self.pending.lock().await.changes;
        self.commit(latest).await.map_err(|error| error.to_string())
    }
}

/// Keeps a snapshot of a recorded state just written, for the state
/// history; a failure is a warning (the state itself is safe).
pub async fn snapshot_state(
    context: &Context,
    store: &StateStore,
    cluster: &str,
    state: &RecordedState<RecordedContent>,
    summary: &str,
) {
    if let Err(error) = store
        .snapshot_state(cluster, state, &command_line(), summary)
        .await
    {
        context.printer.warn(&format!(
            "keeping a copy of the recorded state of cluster {cluster} in its history failed: {error}"
        ));
    }
}

/// Brings the recorded state in line with what the refresh found: the IDs
/// and outputs of resources that exist (adopting what an interrupted run
/// created but never recorded) and nothing for what is gone.
pub fn reconcile(state: &mut RecordedState<RecordedContent>, observed: &Observed) -> bool {
    let mut changed = false;
    for (key, resource) in &observed.resources {
        let entry = state.content.resources.get(key);
        let fresh = RecordedResource {
            kind: resource.kind(),
            id: resource.id.clone(),
            outputs: resource.outputs.clone(),
            attributes: Some(resource.attributes.clone()),
        };
        if entry != Some(&fresh) {
            state.content.resources.insert(key.clone(), fresh);
            changed = true;
        }
        // What an interrupted run meant to create is there: adopted.
        if state.content.intents.remove(key).is_some() {
            changed = true;
        }
    }
    let gone: Vec<_> = state
        .content
        .resources
        .keys()
        .filter(|key| !observed.resources.contains_key(*key))
        .cloned()
        .collect();
    for key in gone {
        state.content.resources.remove(&key);
        changed = true;
    }
    changed
}
