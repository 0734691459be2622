//! `delete cluster`: everything of the cluster in AWS (found by its
//! ownership tags and the recorded state) deleted in reverse dependency
//! order, then the cluster removed from the store; or, to unregister, only
//! the cluster forgotten.
//!
//! Only resources tagged `kubernetes.io/cluster/<name>=owned` by skiff (or
//! recorded as created by it) are ever deleted: a shared VPC or subnet, or
//! anything beside the cluster, is never touched.

use std::sync::Arc;

use skiff_plans::desired::dns::record_key;
use skiff_plans::recorded::ManagedBy;
use skiff_plans::resource::Attributes;
use skiff_plans::{Plan, PlanContext};
use skiff_providers::refresh::RefreshScope;
use skiff_providers::AwsProvider;
use skiff_state::LockGuard;

use crate::apply::{apply_locked, ApplyRun};
use crate::cluster::{
    check_account, read_recorded, release, require_s3_store, Operation, Recorded, Session,
};
use crate::error::{EngineError, Refusal, Result};
use crate::notes::Note;

/// A cluster's deletion, planned: what would be deleted, and (when it is
/// to be carried out) the lock that makes it safe.
pub struct Deletion {
    /// The plan: a delete of every resource of the cluster.
    pub plan: Plan,
    provider: AwsProvider,
    scope: RefreshScope,
    recorded: Recorded,
    lock: Option<Arc<LockGuard>>,
}

/// Plans the deletion of a cluster; with `lock`, under the cluster lock,
/// ready for [`Deletion::execute`] (a cluster Terraform manages is then
/// refused).
pub async fn plan(session: &Session<'_>, cluster: &str, lock: bool) -> Result<Deletion> {
    let store = session.store;
    let spec = store.read_spec(cluster).await?;
    let provider = session.provider(&spec.bundle)?;
    let lock = match lock {
        true => Some(session.lock(cluster, Operation::Delete).await?),
        false => None,
    };
    let planned = async {
        // Who is calling (STS) beside the read: the account check costs no
        // round trip of its own.
        let (recorded, _) = tokio::join!(read_recorded(store, cluster), store.actor());
        let recorded = recorded?;
        check_account(store, cluster, &recorded).await?;
        if recorded.state.content.managed_by == ManagedBy::Terraform {
            if lock.is_some() {
                return Err(Refusal::DeleteManagedByTerraform {
                    cluster: cluster.to_string(),
                }
                .into());
            }
            session.note(Note::DeleteOfTerraformCluster {
                cluster: cluster.to_string(),
            });
        }
        // The API record: where the recorded state says it is.
        let dns_record = recorded
            .state
            .content
            .resources
            .get(&record_key())
            .and_then(|resource| match &resource.attributes {
                Some(Attributes::DnsRecord(record)) => record
                    .zone
                    .value()
                    .map(|zone| (zone.to_string(), record.name.clone())),
                _ => None,
            });
        let scope = RefreshScope {
            cluster: cluster.to_string(),
            dns_record,
            recorded: Some(recorded.state.content.clone()),
        };
        let observed = provider
            .refresh(&scope)
            .await
            .map_err(|source| EngineError::Refresh {
                cluster: cluster.to_string(),
                source: Box::new(source),
            })?;
        let plan = skiff_plans::diff::destroy(
            cluster,
            &observed,
            &PlanContext {
                region: provider.region.clone(),
                spec_revision: spec.revision.serial,
                state: recorded.binding(),
            },
        );
        Ok((plan, scope, recorded))
    }
    .await;
    match planned {
        Ok((plan, scope, recorded)) => Ok(Deletion {
            plan,
            provider,
            scope,
            recorded,
            lock,
        }),
        Err(error) => {
            if let Some(lock) = &lock {
                release(lock).await;
            }
            Err(error)
        }
    }
}

/// What a deletion removed.
#[derive(Debug)]
pub struct Deleted {
    /// AWS resources deleted.
    pub resources: usize,
    /// Objects removed from the store.
    pub objects: usize,
}

impl Deletion {
    /// Deletes every resource, checks nothing of the cluster is left, then
    /// removes the cluster from the store; releases the lock. A deletion
    /// planned without the lock only releases nothing and returns.
    pub async fn execute(self, session: &Session<'_>, run: ApplyRun) -> Result<Deleted> {
        let Deletion {
            plan,
            provider,
            scope,
            recorded,
            lock,
        } = self;
        let Some(lock) = lock else {
            return Ok(Deleted {
                resources: 0,
                objects: 0,
            });
        };
        if !plan.is_empty() {
            if let Err(error) = require_s3_store(session.store, &plan.cluster) {
                release(&lock).await;
                return Err(error);
            }
            // The apply releases the lock when it is done (as it always
            // has); the check below only reads, and removing the cluster
            // removes its lock object with it.
            apply_locked(session, &provider, &plan, lock.clone(), recorded, None, run).await?;
        }
        let removed: Result<usize> = async {
            if !plan.is_empty() {
                // Check nothing of the cluster is left before forgetting it.
                let left =
                    provider
                        .refresh(&scope)
                        .await
                        .map_err(|source| EngineError::Refresh {
                            cluster: plan.cluster.clone(),
                            source: Box::new(source),
                        })?;
                let remaining: Vec<String> = left
                    .resources
                    .keys()
                    .map(ToString::to_string)
                    .chain(left.strays.iter().map(|stray| stray.key.to_string()))
                    .collect();
                if !remaining.is_empty() {
                    return Err(Refusal::ResourcesLeft {
                        cluster: plan.cluster.clone(),
                        remaining: remaining.join(", "),
                    }
                    .into());
                }
            }
            Ok(session.store.remove_cluster(&plan.cluster).await?)
        }
        .await;
        release(&lock).await;
        Ok(Deleted {
            resources: plan.changes.len(),
            objects: removed?,
        })
    }

    /// Gives up: releases the lock, if held.
    pub async fn release(self) {
        if let Some(lock) = &self.lock {
            release(lock).await;
        }
    }
}

/// Forgets a cluster (its spec, history, recorded state and secrets),
/// leaving AWS as it is; under the lock, so that no update is halfway
/// through when the spec goes. Returns the number of objects removed.
pub async fn unregister(session: &Session<'_>, cluster: &str) -> Result<usize> {
    session.store.read_spec(cluster).await?;
    let lock = session.lock(cluster, Operation::Unregister).await?;
    let removed = session.store.remove_cluster(cluster).await;
    release(&lock).await;
    Ok(removed?)
}
