//! `skiff update cluster NAME`: preview the AWS changes the spec needs; with
//! `--yes`, apply them under the cluster lock; with `--out FILE`, save the
//! plan for `skiff apply FILE`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use skiff_plans::recorded::RecordedContent;
use skiff_plans::{ManagedBy, Plan};
use skiff_providers::apply::{apply, gate, ApplyOptions, Gate};
use skiff_providers::AwsProvider;
use skiff_state::recorded::{self, RecordedState};
use skiff_state::{keystore, LockGuard, StateStore, StoredSpec, Version};

use crate::args::{UpdateClusterArgs, UpdateTarget};
use crate::cloud::{self, StateJournal};
use crate::context::Context;
use crate::markdown;
use crate::preview;
use crate::printer::{PlanFormat, Printer};
use crate::progress::ApplyProgress;

pub async fn run(context: &Context, arguments: &UpdateClusterArgs) -> anyhow::Result<ExitCode> {
    if arguments.target == UpdateTarget::Terraform {
        return super::terraform_target::run(context, arguments).await;
    }
    let store = context.store().await?;
    let spec = if arguments.yes {
        // The lock names who holds it: look that up while the spec is read.
        let (spec, _) = tokio::join!(store.read_spec(&arguments.name), store.actor());
        spec?
    } else {
        store.read_spec(&arguments.name).await?
    };
    let provider = cloud::provider(context, &spec.bundle).await?;

    // Applying: lock first, so that the plan is made from a state no one
    // else is changing.
    let (lock, keystore) = if arguments.yes {
        require_s3_store(&store, &arguments.name)?;
        // The cluster's PKI is made ready (read, or generated and written
        // once) while the lock is taken and the plan is made: booting
        // nodes need it, it does not depend on the plan, and it needs no
        // lock (every piece is created only if absent, so two runs agree on
        // one).
        let keystore = Keystore::start(&store, &arguments.name);
        let lock = store
            .lock(&arguments.name, "update cluster")
            .await
            .with_context(|| format!("cannot update cluster {}", arguments.name))?;
        if let Some(previous) = &lock.took_over {
            context.printer.warn(&format!(
                "took over the expired lock of {} ({:?} since {}): that operation may have been interrupted; this run picks up where it stopped",
                previous.holder, previous.operation, skiff_state::lock::rfc3339(previous.created_at)
            ));
        }
        (Some(Arc::new(lock)), Some(keystore))
    } else {
        (None, None)
    };
    let result = plan_and_maybe_apply(
        context,
        &store,
        &provider,
        arguments,
        spec,
        lock.clone(),
        keystore,
    )
    .await;
    if let Some(lock) = lock {
        release(lock).await;
    }
    result
}

/// Applying writes the cluster's secrets into the store for nodes to read
/// at boot, so it needs a store nodes can reach: refuse any other before
/// anything is written.
pub fn require_s3_store(store: &StateStore, cluster: &str) -> anyhow::Result<()> {
    if store.s3().is_none() {
        bail!(
            "cannot apply cluster {cluster}: nodes read their bootstrap secrets from the state store at boot, so applying needs an s3:// state store (this one is {}). Nothing was changed; move the cluster with `skiff get cluster {cluster} -o yaml --full` and `skiff create -f` against an s3:// store (--state or SKIFF_STATE_STORE)",
            store.location()
        );
    }
    Ok(())
}

async fn release(lock: Arc<LockGuard>) {
    if let Err(error) = lock.release().await {
        tracing::warn!("releasing the cluster lock failed (it expires by itself): {error}");
    }
}

async fn plan_and_maybe_apply(
    context: &Context,
    store: &StateStore,
    provider: &AwsProvider,
    arguments: &UpdateClusterArgs,
    spec: StoredSpec,
    lock: Option<Arc<LockGuard>>,
    keystore: Option<Keystore>,
) -> anyhow::Result<ExitCode> {
    let Planned {
        plan,
        mut state,
        version,
        reconciled,
    } = plan_under(context, store, provider, arguments, spec, lock.is_some()).await?;

    match arguments.output {
        PlanFormat::Json => context.printer.data(&serde_json::to_string_pretty(&plan)?),
        PlanFormat::Yaml => context.printer.data(&skiff_api::document::to_yaml(&plan)),
        PlanFormat::Table => context
            .printer
            .data(&preview::render(&plan, &context.printer)),
        PlanFormat::Markdown => context.printer.data(&markdown::render(&plan)),
    }
    if let Some(path) = &arguments.out {
        save_plan(&plan, path)?;
        context.printer.info(&format!(
            "Saved the plan to {}; apply exactly this plan with `skiff apply {}`.",
            path.display(),
            path.display()
        ));
    }

    let Some(lock) = lock else {
        if !plan.is_empty() && arguments.out.is_none() && arguments.output == PlanFormat::Table {
            context.printer.info(&format!(
                "Run `skiff update cluster {} --yes` to apply these changes.",
                arguments.name
            ));
        }
        return Ok(if arguments.detailed_exitcode && !plan.is_empty() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        });
    };
    // The PKI is being made ready meanwhile (see `run`).
    let keystore = keystore.context("the cluster's PKI was not started")?;
    if plan.is_empty() {
        keystore.ready(&context.printer).await?;
        if reconciled || !state.content.intents.is_empty() {
            // Everything an interrupted run meant to create exists and was
            // adopted, or is no longer wanted: nothing is left to intend.
            state.content.intents.clear();
            recorded::write(
                store.objects().as_ref(),
                &arguments.name,
                version.as_ref(),
                &mut state,
            )
            .await?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Only what launches instances waits for the PKI: the network, roles
    // and load balancer are built meanwhile.
    let before_launch = keystore.into_gate(context.printer.clone());
    run_apply(
        context,
        store,
        provider,
        &plan,
        Some(before_launch),
        lock,
        state,
        version,
        arguments.parallelism,
    )
    .await
}

/// Makes the plan from `spec`; when `locked`, checks that the spec is still
/// the same (it was read before the lock), adopts what an interrupted run
/// left behind and binds the plan to the state as it is now.
async fn plan_under(
    context: &Context,
    store: &StateStore,
    provider: &AwsProvider,
    arguments: &UpdateClusterArgs,
    spec: StoredSpec,
    locked: bool,
) -> anyhow::Result<Planned> {
    let cloud::Planned {
        plan,
        observed,
        mut state,
        mut version,
    } = if locked {
        // The spec was read before the lock, to know where to look: plan
        // from it while it is read again, and plan again in the rare case
        // it changed meanwhile.
        let (current, planned) = tokio::join!(
            store.read_spec(&arguments.name),
            cloud::plan(provider, store, &spec)
        );
        let current = current?;
        if current.version == spec.version {
            planned?
        } else {
            tracing::info!("the spec changed while waiting for the lock: planning again");
            if cloud::region(&current.bundle)? != provider.region {
                bail!(
                    "the spec of cluster {} moved to another region while this command waited for the lock; nothing was changed: run it again",
                    arguments.name
                );
            }
            cloud::plan(provider, store, &current).await?
        }
    } else {
        cloud::plan(provider, store, &spec).await?
    };
    if state.content.managed_by == ManagedBy::Terraform {
        if !locked {
            context.printer.warn(&format!(
                "cluster {} is managed by Terraform: this preview shows what a direct apply would change, but `--yes` refuses to apply it (see docs/terraform.md)",
                arguments.name
            ));
        } else if !arguments.force_target {
            bail!(cloud::managed_by_terraform(&arguments.name));
        } else {
            // Switching back to direct applies: from now on skiff owns the
            // resources (it finds what Terraform created by their tags).
            state.content.managed_by = ManagedBy::Skiff;
            version = Some(
                recorded::write(
                    store.objects().as_ref(),
                    &arguments.name,
                    version.as_ref(),
                    &mut state,
                )
                .await?,
            );
            cloud::snapshot_state(
                context,
                store,
                &arguments.name,
                &state,
                "switched from Terraform to direct applies",
            )
            .await;
            context.printer.warn(&format!(
                "cluster {} is now applied directly by skiff, no longer through Terraform: stop running `terraform apply` for it (remove it from the Terraform state with `terraform state rm`, without destroying anything)",
                arguments.name
            ));
        }
    }
    if !state.content.intents.is_empty() {
        let keys: Vec<&str> = state
            .content
            .intents
            .keys()
            .map(|key| key.as_str())
            .collect();
        context.printer.info(&format!(
            "The last apply of cluster {} stopped with {} create(s) started or about to start ({}): what AWS has of them is adopted, the rest is created again with the same idempotency tokens.",
            arguments.name,
            keys.len(),
            keys.join(", ")
        ));
    }

    // Adopt what an interrupted run created but never recorded, and take
    // what AWS says of the rest (only under the lock: a preview never
    // writes). Written with the apply's first write (the intents), not on
    // its own: it is what the refresh found, which the next run would find
    // again.
    let reconciled = locked && cloud::reconcile(&mut state, &observed);
    let mut plan = plan;
    if locked {
        // The plan is bound to the state as it is now.
        plan.state = if version.is_some() {
            skiff_plans::StateBinding::recorded(state.lineage.clone(), state.serial)
        } else {
            skiff_plans::StateBinding::none()
        };
    }

    Ok(Planned {
        plan,
        state,
        version,
        reconciled,
    })
}

/// What [`plan_under`] made, and from what.
struct Planned {
    plan: Plan,
    state: RecordedState<RecordedContent>,
    version: Option<Version>,
    /// Whether the state was brought in line with what exists (and is not
    /// written yet).
    reconciled: bool,
}

/// Generates the cluster's PKI and bootstrap token in the state store if
/// they are missing (never replacing what exists): booting nodes fetch them
/// from there, so they must exist before any instance launches.
pub async fn ensure_keystore(
    context: &Context,
    store: &StateStore,
    cluster: &str,
) -> anyhow::Result<()> {
    Keystore::start(store, cluster)
        .ready(&context.printer)
        .await
}

/// The cluster's PKI being made ready ([`ensure_keystore`]) on a task of
/// its own: generating keys is CPU work, which would hold up whatever runs
/// beside it on the caller's task (taking the lock, planning).
pub struct Keystore {
    cluster: String,
    task: tokio::task::JoinHandle<Result<keystore::KeystoreStatus, skiff_state::StoreError>>,
}

impl Keystore {
    /// Starts reading (and, where missing, generating) the PKI.
    pub fn start(store: &StateStore, cluster: &str) -> Keystore {
        let objects = store.objects().clone();
        let name = cluster.to_string();
        Keystore {
            cluster: cluster.to_string(),
            task: tokio::spawn(async move { keystore::ensure(objects.as_ref(), &name).await }),
        }
    }

    /// Waits until the PKI is in the store; says what was generated.
    pub async fn ready(self, printer: &Printer) -> anyhow::Result<()> {
        let status = self
            .task
            .await
            .context("the PKI task stopped")?
            .with_context(|| {
                format!(
                    "cannot prepare the PKI of cluster {} in the state store",
                    self.cluster
                )
            })?;
        if !status.created.is_empty() {
            printer.info(&format!(
                "Generated the cluster's {} in the state store.",
                status.created.join(", ")
            ));
        }
        Ok(())
    }

    /// [`Keystore::ready`] as a gate for the executor
    /// ([`ApplyOptions::before_launch`]).
    pub fn into_gate(self, printer: Printer) -> Gate {
        gate(async move {
            self.ready(&printer)
                .await
                .map_err(|error| format!("{error:#}"))
        })
    }
}

/// Writes a plan file (JSON, documented in docs/plan-format.md).
pub fn save_plan(plan: &Plan, path: &Path) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(plan)?;
    std::fs::write(path, text + "\n")
        .with_context(|| format!("cannot write the plan to {}", path.display()))
}

/// Applies a plan under a held lock, recording every outcome, and reports.
#[allow(clippy::too_many_arguments)]
pub async fn run_apply(
    context: &Context,
    store: &StateStore,
    provider: &AwsProvider,
    plan: &Plan,
    before_launch: Option<Gate>,
    lock: Arc<LockGuard>,
    state: RecordedState<RecordedContent>,
    version: Option<Version>,
    parallelism: usize,
) -> anyhow::Result<ExitCode> {
    require_s3_store(store, &plan.cluster)?;
    let journal = Arc::new(StateJournal::new(store, plan, lock.clone(), state, version));
    let writer = journal.start_writer();
    let progress = Arc::new(ApplyProgress::new(
        plan.changes.len(),
        context.printer.is_terminal(),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let signals = spawn_signal_watch(stop.clone(), context);
    let lost = {
        let lock = lock.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let reason = lock.lost().await;
            stop.store(true, Ordering::SeqCst);
            reason
        })
    };
    let stop_check = {
        let stop = stop.clone();
        Arc::new(move || stop.load(Ordering::SeqCst)) as Arc<dyn Fn() -> bool + Send + Sync>
    };
    let started = std::time::Instant::now();
    let report = apply(
        provider,
        plan,
        ApplyOptions {
            parallelism: parallelism.max(1),
            before_launch: before_launch.clone(),
        },
        journal.clone(),
        progress.clone(),
        stop_check,
    )
    .await;
    progress.finish();
    // What the apply waited for, or would have had it launched anything,
    // must be done before the run counts as complete.
    let before_launch = match before_launch {
        Some(gate) => gate.await.err(),
        None => None,
    };
    journal.stop_writer(writer).await;
    signals.abort();
    let lost_reason = if lost.is_finished() {
        lost.await.ok()
    } else {
        lost.abort();
        None
    };
    let summary = format!(
        "{} of {} changes applied ({})",
        report.succeeded.len(),
        plan.changes.len(),
        preview::summary_line(plan)
            .trim_start_matches("Plan: ")
            .trim_end_matches('.')
    );
    // Every outcome is written: the history's copy of the state (named by
    // its serial, so it needs no lock) is kept while the lock is released.
    let (snapshot, released) = tokio::join!(journal.snapshot(store, &summary), lock.release());
    if let Err(error) = snapshot {
        context.printer.warn(&format!(
            "keeping a copy of the recorded state in its history failed: {error}"
        ));
    }
    if let Err(error) = released {
        tracing::warn!("releasing the cluster lock failed (it expires by itself): {error}");
    }
    let elapsed = started.elapsed();
    if report.is_complete() && before_launch.is_none() {
        context.printer.info(&format!(
            "Applied {} changes to cluster {} in {:.1}s.",
            report.succeeded.len(),
            plan.cluster,
            elapsed.as_secs_f64()
        ));
        if !plan.rolling_updates.is_empty() {
            let groups: Vec<&str> = plan
                .rolling_updates
                .iter()
                .map(|need| need.group.as_str())
                .collect();
            context.printer.info(&format!(
                "Instance groups {} now launch new instances with the new configuration; replace the running ones with `skiff rolling-update cluster {}`.",
                groups.join(", "),
                plan.cluster
            ));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut message = format!(
        "applying the plan of cluster {} did not finish: {} succeeded, {} failed, {} not attempted",
        plan.cluster,
        report.succeeded.len(),
        report.failed.len(),
        report.skipped.len()
    );
    for (key, error) in &report.failed {
        message.push_str(&format!("\n  {key}: {error}"));
    }
    if let Some(error) = before_launch {
        // Said once: with the groups that waited for it, or here.
        if !report
            .failed
            .iter()
            .any(|(_, failed)| failed.contains(&error))
        {
            message.push_str(&format!("\n  {error}"));
        }
    }
    if let Some(reason) = lost_reason {
        message.push_str(&format!(
            "\n  stopped because the cluster lock was lost: {reason}"
        ));
    } else if stop.load(Ordering::SeqCst) {
        message.push_str("\n  stopped on request; everything created so far is recorded");
    }
    message.push_str(&format!(
        "\nEvery outcome so far is recorded; run `skiff update cluster {} --yes` again to continue.",
        plan.cluster
    ));
    bail!(message)
}

/// First Ctrl-C or SIGTERM: stop starting new changes (those in flight
/// finish and are recorded). Second: exit at once; the recorded state and
/// the resources' tags still let the next run continue safely.
fn spawn_signal_watch(stop: Arc<AtomicBool>, context: &Context) -> tokio::task::JoinHandle<()> {
    let printer = context.printer.clone();
    tokio::spawn(async move {
        let mut interrupts = 0;
        loop {
            #[cfg(unix)]
            {
                let mut terminate =
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(signal) => signal,
                        Err(_) => return,
                    };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            #[cfg(not(unix))]
            {
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
            }
            interrupts += 1;
            if interrupts == 1 {
                stop.store(true, Ordering::SeqCst);
                printer.warn("stopping: changes in flight finish and are recorded; interrupt again to exit at once");
            } else {
                printer.warn("exiting now; run the same command again to continue");
                std::process::exit(130);
            }
        }
    })
}
