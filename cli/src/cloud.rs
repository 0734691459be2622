//! What the commands that touch AWS share: building the provider for a
//! cluster, planning (lookups, desired model, refresh, diff), and the
//! journal that writes every apply outcome into the recorded state as it
//! happens.

use std::sync::Arc;

use anyhow::{bail, Context as _};
use async_trait::async_trait;
use skiff_api::document::ClusterBundle;
use skiff_plans::lookups::StateStoreRef;
use skiff_plans::plan::ResourceChange;
use skiff_plans::recorded::{RecordedContent, RecordedResource};
use skiff_plans::{DesiredModel, Lookups, Observed, Plan, PlanContext};
use skiff_providers::apply::{Journal, Outcome};
use skiff_providers::refresh::RefreshScope;
use skiff_providers::AwsProvider;
use skiff_state::recorded::{self, RecordedState};
use skiff_state::{LockGuard, ObjectStore, StateStore, StoredSpec, StoredState, Version};
use tokio::sync::Mutex;

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
    let bundle = &spec.bundle;
    let cluster = bundle.name();
    skiff_api::validate(bundle).with_context(|| format!("the stored spec of cluster {cluster} is not valid; fix it with `skiff edit cluster {cluster}`"))?;
    let lookups = provider
        .lookups(bundle, state_store_ref(store))
        .await
        .with_context(|| format!("looking up what the spec of cluster {cluster} refers to"))?;
    let desired = skiff_plans::desired_model(bundle, &lookups)
        .with_context(|| format!("cannot plan cluster {cluster}"))?;
    Ok((lookups, desired))
}

/// Makes the plan of a cluster: validate the stored spec, look up what it
/// names, build the desired model, read what exists, diff.
pub async fn plan(
    provider: &AwsProvider,
    store: &StateStore,
    spec: &StoredSpec,
    recorded: &RecordedState<RecordedContent>,
    has_state: bool,
) -> anyhow::Result<Planned> {
    let bundle = &spec.bundle;
    let cluster = bundle.name();
    let (lookups, desired) = desired(provider, store, spec).await?;
    let dns_record = lookups.hosted_zone.as_ref().map(|zone| {
        (
            zone.id.clone(),
            format!("{}.", bundle.cluster.api_dns_name()),
        )
    });
    let scope = RefreshScope {
        cluster: cluster.to_string(),
        dns_record,
        recorded: Some(recorded.content.clone()),
    };
    let observed = provider
        .refresh(&scope)
        .await
        .with_context(|| format!("reading the AWS resources of cluster {cluster}"))?;
    let context = PlanContext {
        region: provider.region.clone(),
        spec_revision: spec.revision.serial,
        state_lineage: has_state.then(|| recorded.lineage.clone()),
        state_serial: if has_state { recorded.serial } else { 0 },
    };
    let plan = skiff_plans::plan(&desired, &observed, &context)?;
    Ok(Planned { plan, observed })
}

/// Writes each apply outcome into `state.json` at once, conditionally on
/// the version last written, under the cluster lock.
pub struct StateJournal {
    objects: Arc<dyn ObjectStore>,
    cluster: String,
    lock: Arc<LockGuard>,
    inner: Mutex<(RecordedState<RecordedContent>, Option<Version>)>,
}

impl StateJournal {
    /// A journal continuing from the state read.
    pub fn new(
        store: &StateStore,
        cluster: &str,
        lock: Arc<LockGuard>,
        state: RecordedState<RecordedContent>,
        version: Option<Version>,
    ) -> StateJournal {
        StateJournal {
            objects: store.objects().clone(),
            cluster: cluster.to_string(),
            lock,
            inner: Mutex::new((state, version)),
        }
    }

    /// Remembers which groups' running instances are now out of date and
    /// why, for `rolling-update cluster` to explain.
    pub async fn note_rollouts(
        &self,
        needs: &[skiff_plans::RollingUpdateNeed],
        succeeded: &[skiff_plans::ResourceKey],
    ) -> anyhow::Result<()> {
        let mut inner = self.inner.lock().await;
        let (state, version) = &mut *inner;
        let mut changed = false;
        for need in needs {
            let template = skiff_plans::desired::compute::launch_template_key(&need.group);
            if !succeeded.contains(&template) {
                continue;
            }
            let reasons = state
                .content
                .pending_rollouts
                .entry(need.group.clone())
                .or_default();
            for reason in &need.reasons {
                if !reasons.contains(reason) {
                    reasons.push(reason.clone());
                    changed = true;
                }
            }
        }
        if changed {
            self.lock.ensure_held()?;
            *version = Some(
                recorded::write(
                    self.objects.as_ref(),
                    &self.cluster,
                    version.as_ref(),
                    state,
                )
                .await?,
            );
        }
        Ok(())
    }

    /// Keeps a copy of the current state in the state history, with who
    /// is acting, the command line and `summary`.
    pub async fn snapshot(&self, store: &StateStore, summary: &str) -> anyhow::Result<()> {
        let inner = self.inner.lock().await;
        if inner.1.is_some() {
            store
                .snapshot_state(&self.cluster, &inner.0, &command_line(), summary)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Journal for StateJournal {
    async fn record(&self, change: &ResourceChange, outcome: &Outcome) -> Result<(), String> {
        self.lock.ensure_held().map_err(|error| error.to_string())?;
        let mut inner = self.inner.lock().await;
        let (state, version) = &mut *inner;
        match outcome {
            Outcome::Deleted => {
                // A stray (a second resource with the same key, left by an
                // interrupted run) is deleted under the key of the resource
                // that stays: forget the key only if it recorded this one.
                let recorded_here = match (&change.id, state.content.resources.get(&change.key)) {
                    (Some(id), Some(recorded)) => recorded.id == *id,
                    _ => true,
                };
                if recorded_here {
                    state.content.resources.remove(&change.key);
                }
            }
            Outcome::Applied {
                applied,
                attributes,
            } => {
                state.content.resources.insert(
                    change.key.clone(),
                    RecordedResource {
                        kind: change.kind,
                        id: applied.id.clone(),
                        outputs: applied.outputs.clone(),
                        attributes: Some(attributes.clone()),
                    },
                );
            }
        }
        let new_version = recorded::write(
            self.objects.as_ref(),
            &self.cluster,
            version.as_ref(),
            state,
        )
        .await
        .map_err(|error| error.to_string())?;
        *version = Some(new_version);
        Ok(())
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
