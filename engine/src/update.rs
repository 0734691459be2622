//! `update cluster`: the AWS changes a cluster's spec needs, previewed, or
//! applied under the cluster lock.
//!
//! Applying is two steps so that the caller can show the plan in between:
//! [`prepare`] takes the lock and plans (the cluster's PKI is made ready
//! meanwhile, beside the lock and the plan: it needs neither), then
//! [`Update::apply`] applies, or [`Update::release`] gives up. Only what
//! launches instances waits for the PKI: the network, roles and load
//! balancer are built meanwhile.

use std::sync::Arc;

use skiff_plans::plan::VersionStep;
use skiff_plans::Plan;
use skiff_providers::AwsProvider;
use skiff_state::recorded;
use skiff_state::LockGuard;

use crate::apply::{apply_locked, Applied, ApplyRun};
use crate::cluster::{release, require_s3_store, Operation, Recorded, Session};
use crate::error::{EngineError, Refusal, Result};
use crate::pki::Keystore;
use crate::planning::{self, LockedPlan};

/// The plan of a cluster, for a preview: nothing is locked or written.
pub async fn preview(session: &Session<'_>, cluster: &str) -> Result<Plan> {
    let spec = session.store.read_spec(cluster).await?;
    let provider = session.provider(&spec.bundle)?;
    Ok(planning::preview(session, &provider, &spec).await?.plan)
}

/// An update planned under the held lock, not applied yet.
pub struct Update {
    /// The plan, bound to the recorded state.
    pub plan: Plan,
    provider: AwsProvider,
    lock: Arc<LockGuard>,
    keystore: Keystore,
    recorded: Recorded,
    reconciled: bool,
    /// The addons' manifests, rendered from the spec the plan was made from.
    addons: Vec<skiff_templates::RenderedAddon>,
    /// Whether the store has the addons' index (the plan read it).
    addons_index_exists: bool,
}

/// Takes the cluster lock and plans from a state no one else is changing;
/// the cluster's PKI is made ready meanwhile. A cluster Terraform manages
/// is refused unless `switch_from_terraform`.
pub async fn prepare(
    session: &Session<'_>,
    cluster: &str,
    switch_from_terraform: bool,
) -> Result<Update> {
    let store = session.store;
    // The lock names who holds it: look that up while the spec is read.
    let (spec, _) = tokio::join!(store.read_spec(cluster), store.actor());
    let spec = spec?;
    let provider = session.provider(&spec.bundle)?;
    let addons = crate::addons::render(&spec.bundle)?;
    require_s3_store(store, cluster)?;
    session
        .require_secure_store(&format!("update cluster {cluster}"))
        .await?;
    let keystore = Keystore::start(store, cluster);
    let lock = session.lock(cluster, Operation::Update).await?;
    let planned = planning::plan_locked(session, &provider, spec, switch_from_terraform)
        .await
        .and_then(|locked| {
            check_version_steps(
                &locked.plan,
                &locked.recorded.state.content.pending_rollouts,
            )?;
            Ok(locked)
        });
    match planned {
        Ok(LockedPlan {
            plan,
            recorded,
            reconciled,
            addons_index_exists,
        }) => Ok(Update {
            plan,
            provider,
            lock,
            keystore,
            recorded,
            reconciled,
            addons,
            addons_index_exists,
        }),
        Err(error) => {
            release(&lock).await;
            Err(error)
        }
    }
}

impl Update {
    /// Applies the plan (nothing to apply: makes sure the PKI is ready and
    /// settles what an interrupted run left), then releases the lock.
    /// `None`: the plan was empty.
    pub async fn apply(self, session: &Session<'_>, run: ApplyRun) -> Result<Option<Applied>> {
        let Update {
            plan,
            provider,
            lock,
            keystore,
            mut recorded,
            reconciled,
            addons,
            addons_index_exists,
        } = self;
        if plan.is_empty() {
            let settled = async {
                keystore.ready(session.notes.as_ref()).await?;
                if reconciled || !recorded.state.content.intents.is_empty() {
                    // Everything an interrupted run meant to create exists
                    // and was adopted, or is no longer wanted: nothing is
                    // left to intend.
                    recorded.state.content.intents.clear();
                    lock.ensure_held()?;
                    recorded::write(
                        session.store.objects().as_ref(),
                        &plan.cluster,
                        recorded.version.as_ref(),
                        &mut recorded.state,
                    )
                    .await?;
                }
                // The nodes read the index every minute, addons or none.
                if !addons_index_exists {
                    crate::addons::ensure_index(session.store.objects().as_ref(), &plan.cluster)
                        .await?;
                }
                Ok(None)
            }
            .await;
            release(&lock).await;
            return settled;
        }
        let scripts = plan
            .bootstrap_scripts()
            .map_err(|source| EngineError::Plan {
                cluster: plan.cluster.clone(),
                source,
            });
        let scripts = match scripts {
            Ok(scripts) => scripts,
            Err(error) => {
                release(&lock).await;
                return Err(error);
            }
        };
        // The nodes read the index every minute, addons or none (the plan
        // read whether it exists: no write, no round trip when it does).
        if !addons_index_exists {
            if let Err(error) =
                crate::addons::ensure_index(session.store.objects().as_ref(), &plan.cluster).await
            {
                release(&lock).await;
                return Err(error);
            }
        }
        let before_launch = keystore
            .with_scripts(scripts)
            .into_gate(session.notes.clone());
        // Addon changes go to the state store, the rest to AWS.
        let operations = crate::addons::AddonOperations::new(
            provider,
            session.store.objects().clone(),
            &plan.cluster,
            addons,
        );
        apply_locked(
            session,
            &operations,
            &plan,
            lock,
            recorded,
            Some(before_launch),
            run,
        )
        .await
        .map(Some)
    }

    /// Gives up without applying: releases the lock.
    pub async fn release(self) {
        release(&self.lock).await;
    }
}

/// Refuses a plan whose new launch templates would install a Kubernetes
/// version more than one minor above (or below) what a group's instances
/// run: the live template's version, or the `from` of a version step an
/// earlier apply recorded and no rolling update has carried out yet (two
/// edits of one minor each, applied without a roll between them, would
/// otherwise skip one).
pub fn check_version_steps(
    plan: &Plan,
    pending: &std::collections::BTreeMap<String, Vec<String>>,
) -> Result<()> {
    for need in &plan.rolling_updates {
        let Some(step) = need.kubernetes_version else {
            continue;
        };
        let recorded = pending
            .get(&need.group)
            .into_iter()
            .flatten()
            .filter_map(|reason| VersionStep::from_reason(reason))
            .map(|earlier| earlier.from)
            .min();
        let running = recorded.map_or(step.from, |earlier| earlier.min(step.from));
        let what = if step.to < running {
            "is a downgrade"
        } else if step.to.major != running.major || step.to.minor > running.minor + 1 {
            "skips a minor"
        } else {
            continue;
        };
        return Err(Refusal::VersionStepTooLarge {
            cluster: plan.cluster.clone(),
            group: need.group.clone(),
            running: running.to_string(),
            pending: match running < step.from {
                true => format!(" (its rolling update to {} has not run)", step.from),
                false => String::new(),
            },
            to: step.to.to_string(),
            what: what.to_string(),
        }
        .into());
    }
    Ok(())
}
