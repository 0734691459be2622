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

use skiff_plans::Plan;
use skiff_providers::AwsProvider;
use skiff_state::recorded;
use skiff_state::LockGuard;

use crate::apply::{apply_locked, Applied, ApplyRun};
use crate::cluster::{release, require_s3_store, Operation, Recorded, Session};
use crate::error::Result;
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
    require_s3_store(store, cluster)?;
    let keystore = Keystore::start(store, cluster);
    let lock = session.lock(cluster, Operation::Update).await?;
    match planning::plan_locked(session, &provider, spec, switch_from_terraform).await {
        Ok(LockedPlan {
            plan,
            recorded,
            reconciled,
        }) => Ok(Update {
            plan,
            provider,
            lock,
            keystore,
            recorded,
            reconciled,
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
                Ok(None)
            }
            .await;
            release(&lock).await;
            return settled;
        }
        let before_launch = keystore.into_gate(session.notes.clone());
        apply_locked(
            session,
            &provider,
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
