//! Planning a cluster: validate the stored spec, look up what it names,
//! build the desired model, read the recorded state and what exists, diff.
//!
//! Everything starts at once: the lookups, the recorded state's read and
//! the refresh; only the API's DNS record waits for its hosted zone (from
//! the lookups), and only the choice between two resources with one key
//! waits for the recorded state. Under the lock ([`plan_locked`]), the
//! spec read before the lock is checked again meanwhile, what an
//! interrupted run left is adopted, and the plan is bound to the recorded
//! state as it is now.

use skiff_plans::recorded::ManagedBy;
use skiff_plans::{DesiredModel, Lookups, Observed, Plan, PlanContext};
use skiff_providers::refresh::Later;
use skiff_providers::AwsProvider;
use skiff_state::recorded;
use skiff_state::{StateStore, StoredSpec};

use crate::cluster::{check_account, read_recorded, region, state_store_ref, Recorded, Session};
use crate::error::{EngineError, Refusal, Result};
use crate::notes::Note;
use crate::reconcile::reconcile;

/// Everything a plan was made from.
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// What exists.
    pub observed: Observed,
    /// The recorded state it was made against.
    pub recorded: Recorded,
    /// Whether the store has the addons' index (see
    /// [`crate::addons::ensure_index`]).
    pub addons_index_exists: bool,
}

/// A plan made under the lock, ready to apply.
pub struct LockedPlan {
    /// The plan, bound to the recorded state as it is now.
    pub plan: Plan,
    /// The recorded state, reconciled with what exists (not written yet).
    pub recorded: Recorded,
    /// Whether reconciling changed the recorded state.
    pub reconciled: bool,
    /// Whether the store has the addons' index.
    pub addons_index_exists: bool,
}

/// The desired model of a cluster (what both targets build): validate the
/// stored spec, look up what it names (read-only), build the model.
pub async fn desired(
    provider: &AwsProvider,
    store: &StateStore,
    spec: &StoredSpec,
) -> Result<(Lookups, DesiredModel)> {
    let lookups = lookups(provider, store, spec).await?;
    let desired = desired_model(spec, &lookups)?;
    Ok((lookups, desired))
}

/// Validates the stored spec and looks up what it names (read-only).
async fn lookups(provider: &AwsProvider, store: &StateStore, spec: &StoredSpec) -> Result<Lookups> {
    let bundle = &spec.bundle;
    let cluster = bundle.name();
    skiff_api::validate(bundle).map_err(|source| EngineError::InvalidSpec {
        cluster: cluster.to_string(),
        source,
    })?;
    provider
        .lookups(bundle, state_store_ref(store).await?)
        .await
        .map_err(|source| EngineError::Lookups {
            cluster: cluster.to_string(),
            source: Box::new(source),
        })
}

/// The desired model from the spec and its lookups.
fn desired_model(spec: &StoredSpec, lookups: &Lookups) -> Result<DesiredModel> {
    skiff_plans::desired_model(&spec.bundle, lookups).map_err(|source| EngineError::Plan {
        cluster: spec.bundle.name().to_string(),
        source,
    })
}

/// Makes the plan of a cluster from `spec` (see the module doc).
pub async fn plan(
    provider: &AwsProvider,
    store: &StateStore,
    spec: &StoredSpec,
) -> Result<Planned> {
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
            Err(error) => match error.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(_) => Err(EngineError::Cancelled {
                    what: "building the desired model",
                }),
            },
        }
    };
    let (state_read, state) = tokio::sync::oneshot::channel();
    let reading = async {
        let result = read_recorded(store, cluster).await;
        let content = result
            .as_ref()
            .ok()
            .map(|recorded| recorded.state.content.clone());
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
        let mut observed = provider
            .refresh_with(cluster, later)
            .await
            .map_err(|source| EngineError::Refresh {
                cluster: cluster.to_string(),
                source: Box::new(source),
            })?;
        let addons =
            crate::addons::observe(store.objects().as_ref(), cluster, &mut observed).await?;
        Ok::<_, EngineError>((observed, addons))
    };
    // Who is calling (STS, once per run) beside the rest: the account check
    // below then costs no round trip of its own.
    let (desired, recorded, observed, _) =
        tokio::join!(looking_up, reading, refreshing, store.actor());
    let recorded = recorded?;
    check_account(store, cluster, &recorded).await?;
    let desired = desired?;
    let (mut observed, addons) = observed?;
    // The scripts the desired model has need no read: a stored script's
    // key is its SHA-256, so a launch template naming one of them holds
    // exactly that text. Only a changed script is read, for the plan's
    // explanation: a plan without changes reads no script, whatever the
    // number of groups.
    let known = desired
        .bootstrap_scripts()
        .map_err(|source| EngineError::Plan {
            cluster: cluster.to_string(),
            source,
        })?;
    with_stored_scripts(store, cluster, &mut observed, &known).await?;
    let context = PlanContext {
        region: provider.region.clone(),
        spec_revision: spec.revision.serial,
        state: recorded.binding(),
    };
    let mut plan =
        skiff_plans::plan(&desired, &observed, &context).map_err(|source| EngineError::Plan {
            cluster: cluster.to_string(),
            source,
        })?;
    // What the control plane holds back or could not apply of the addons
    // (etcd/addons/status): no change shows it.
    plan.warnings.extend(addons.warnings);
    Ok(Planned {
        plan,
        observed,
        recorded,
        addons_index_exists: addons.index_exists,
    })
}

/// Makes the plan for a preview: nothing is written; a cluster Terraform
/// manages is noted.
pub async fn preview(
    session: &Session<'_>,
    provider: &AwsProvider,
    spec: &StoredSpec,
) -> Result<Planned> {
    let planned = plan(provider, session.store, spec).await?;
    if planned.recorded.state.content.managed_by == ManagedBy::Terraform {
        session.note(Note::PreviewOfTerraformCluster {
            cluster: spec.bundle.name().to_string(),
        });
    }
    note_intents(session, &planned.recorded, spec.bundle.name());
    Ok(planned)
}

/// Makes the plan under the held lock from `spec`, which was read before
/// the lock: checks meanwhile that the spec is still the same (and plans
/// again in the rare case it changed), refuses a cluster Terraform manages
/// unless `switch_from_terraform` (then records the switch), adopts what an
/// interrupted run left behind and binds the plan to the state as it is
/// now.
pub async fn plan_locked(
    session: &Session<'_>,
    provider: &AwsProvider,
    spec: StoredSpec,
    switch_from_terraform: bool,
) -> Result<LockedPlan> {
    let store = session.store;
    let cluster = spec.bundle.name().to_string();
    let (current, planned) = tokio::join!(store.read_spec(&cluster), plan(provider, store, &spec));
    let current = current?;
    let Planned {
        mut plan,
        observed,
        recorded: Recorded {
            mut state,
            mut version,
        },
        addons_index_exists,
    } = if current.version == spec.version {
        planned?
    } else {
        tracing::info!("the spec changed while waiting for the lock: planning again");
        if region(&current.bundle)? != provider.region {
            return Err(Refusal::RegionMoved { cluster }.into());
        }
        self::plan(provider, store, &current).await?
    };
    if state.content.managed_by == ManagedBy::Terraform {
        if !switch_from_terraform {
            return Err(Refusal::ManagedByTerraform { cluster }.into());
        }
        // Switching back to direct applies: from now on skiff owns the
        // resources (it finds what Terraform created by their tags).
        state.content.managed_by = ManagedBy::Skiff;
        version = Some(
            recorded::write(
                store.objects().as_ref(),
                &cluster,
                version.as_ref(),
                &mut state,
            )
            .await?,
        );
        session
            .snapshot_state(
                &cluster,
                &state,
                "switched from Terraform to direct applies",
            )
            .await;
        session.note(Note::SwitchedToDirect {
            cluster: cluster.clone(),
        });
    }
    let mut recorded = Recorded { state, version };
    note_intents(session, &recorded, &cluster);
    // Adopt what an interrupted run created but never recorded, and take
    // what AWS says of the rest. Written with the apply's first write (the
    // intents), not on its own: it is what the refresh found, which the
    // next run would find again.
    let reconciled = reconcile(&mut recorded.state, &observed);
    // The plan is bound to the state as it is now.
    plan.state = recorded.binding();
    Ok(LockedPlan {
        plan,
        recorded,
        reconciled,
        addons_index_exists,
    })
}

/// Says so when an interrupted apply left intents.
fn note_intents(session: &Session<'_>, recorded: &Recorded, cluster: &str) {
    let intents = &recorded.state.content.intents;
    if !intents.is_empty() {
        session.note(Note::ResumingIntents {
            cluster: cluster.to_string(),
            keys: intents.keys().map(ToString::to_string).collect(),
        });
    }
}

/// Puts the stored bootstrap scripts back into the launch templates'
/// user-data, where EC2 holds a loader that names one by its hash: the
/// planner compares, and explains, the whole document with the desired one.
/// A script the store no longer holds is left as the loader, which then
/// differs from the desired document: the plan writes a new template
/// version, and the apply the script. The scripts of `known` (the desired
/// model's) are taken as they are, without a read (see [`plan`]).
async fn with_stored_scripts(
    store: &StateStore,
    cluster: &str,
    observed: &mut Observed,
    known: &[skiff_templates::StoredScript],
) -> Result<()> {
    use skiff_plans::resource::Attributes;

    let known: std::collections::BTreeMap<&str, &str> = known
        .iter()
        .map(|script| (script.key.as_str(), script.content.as_str()))
        .collect();

    let wanted: Vec<(skiff_plans::resource::ResourceKey, String)> = observed
        .resources
        .values()
        .chain(observed.strays.iter())
        .filter_map(|resource| match &resource.attributes {
            Attributes::LaunchTemplate(template) => {
                skiff_templates::stored_script_key(&template.user_data)
                    .map(|key| (resource.key.clone(), key))
            }
            _ => None,
        })
        .filter(|(_, key)| !known.contains_key(key.as_str()))
        .collect();
    let objects = store.objects().clone();
    let reads = futures::future::try_join_all(wanted.iter().map(|(_, key)| {
        let objects = objects.clone();
        async move { skiff_state::scripts::read(objects.as_ref(), cluster, key).await }
    }))
    .await
    .map_err(|source| EngineError::Scripts {
        cluster: cluster.to_string(),
        source,
    })?;
    let scripts: std::collections::BTreeMap<&str, &str> = wanted
        .iter()
        .zip(reads.iter())
        .filter_map(|((_, key), script)| script.as_deref().map(|script| (key.as_str(), script)))
        .chain(known)
        .collect();
    for resource in observed
        .resources
        .values_mut()
        .chain(observed.strays.iter_mut())
    {
        let Attributes::LaunchTemplate(template) = &mut resource.attributes else {
            continue;
        };
        let Some(key) = skiff_templates::stored_script_key(&template.user_data) else {
            continue;
        };
        match scripts.get(key.as_str()) {
            Some(script) => {
                match skiff_templates::with_stored_script(&template.user_data, script) {
                    Ok(whole) => template.user_data = whole,
                    Err(error) => tracing::warn!(
                        template = %resource.key,
                        %error,
                        "the stored bootstrap script does not fit its loader"
                    ),
                }
            }
            None => tracing::warn!(
                template = %resource.key,
                script = %key,
                "the launch template's bootstrap script is missing from the state store"
            ),
        }
    }
    Ok(())
}
