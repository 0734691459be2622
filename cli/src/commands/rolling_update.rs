//! `skiff rolling-update cluster NAME`: show which instance groups run
//! out-of-date instances and why; with `--yes`, replace them (bastions,
//! then the control plane one instance at a time, then nodes with surge),
//! resumably.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use async_trait::async_trait;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use skiff_api::document::ClusterBundle;
use skiff_api::InstanceGroupRole;
use skiff_plans::names;
use skiff_rollout::roll::{order, status};
use skiff_rollout::{
    ClusterApi, Event, EventSink, GroupPlan, Progress, ProgressStore, RollOptions,
};
use skiff_state::{layout, ObjectStore, Precondition, PutOptions, StateStore, Version};
use tokio::sync::Mutex;

use crate::args::RollingUpdateArgs;
use crate::cloud;
use crate::context::Context;
use crate::printer::{table, OutputFormat};

/// The rolling-update plan of every group of a bundle.
pub fn group_plans(bundle: &ClusterBundle) -> Vec<GroupPlan> {
    let mut plans: Vec<GroupPlan> = bundle
        .instance_groups
        .iter()
        .map(|group| {
            let budget = group
                .spec
                .rolling_update
                .over(&bundle.cluster.spec.rolling_update);
            GroupPlan {
                group: group.name().to_string(),
                auto_scaling_group: names::instance_group_resource(bundle.name(), group.name()),
                role: group.spec.role,
                max_surge: budget.max_surge,
                max_unavailable: budget.max_unavailable,
            }
        })
        .collect();
    order(&mut plans);
    plans
}

fn selected(
    arguments: &RollingUpdateArgs,
    bundle: &ClusterBundle,
) -> anyhow::Result<Vec<GroupPlan>> {
    for wanted in &arguments.instance_groups {
        if bundle.instance_group(wanted).is_none() {
            let known: Vec<&str> = bundle
                .instance_groups
                .iter()
                .map(|group| group.name())
                .collect();
            bail!(
                "--instance-group: {wanted:?} is not a group of cluster {} ({})",
                bundle.name(),
                known.join(", ")
            );
        }
    }
    let roles: Vec<InstanceGroupRole> = arguments
        .instance_group_roles
        .iter()
        .map(|text| {
            text.parse()
                .map_err(|message: String| anyhow::anyhow!("--instance-group-roles: {message}"))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(group_plans(bundle)
        .into_iter()
        .filter(|plan| {
            arguments.instance_groups.is_empty() || arguments.instance_groups.contains(&plan.group)
        })
        .filter(|plan| roles.is_empty() || roles.contains(&plan.role))
        .collect())
}

pub async fn run(context: &Context, arguments: &RollingUpdateArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let spec = store.read_spec(&arguments.name).await?;
    let bundle = &spec.bundle;
    let provider = cloud::provider(context, bundle).await?;
    let plans = selected(arguments, bundle)?;
    let (state, _) = cloud::read_recorded(&store, &arguments.name).await?;

    // The preview: what each group runs and what would happen.
    let views = status(&provider, &plans)
        .await
        .context("reading the instance groups' auto scaling groups")?;
    let mut rows = Vec::new();
    let mut needing = Vec::new();
    for plan in &plans {
        let spec_group = bundle.instance_group(&plan.group);
        let (min, max) = spec_group
            .map(|group| (group.spec.min_size, group.spec.max_size))
            .unwrap_or_default();
        match views
            .iter()
            .find(|view| view.name == plan.auto_scaling_group)
        {
            None => rows.push(vec![
                plan.group.clone(),
                "Missing".to_string(),
                "-".to_string(),
                "-".to_string(),
                min.to_string(),
                "-".to_string(),
                max.to_string(),
                "-".to_string(),
            ]),
            Some(view) => {
                let outdated = if arguments.force {
                    view.instances
                        .iter()
                        .filter(|instance| !instance.leaving())
                        .count()
                } else {
                    view.outdated().len()
                };
                let ready = view
                    .instances
                    .iter()
                    .filter(|instance| view.is_current(instance) && instance.in_service())
                    .count();
                if outdated > 0 {
                    needing.push((plan.clone(), outdated));
                }
                rows.push(vec![
                    plan.group.clone(),
                    if outdated > 0 { "NeedsUpdate" } else { "Ready" }.to_string(),
                    outdated.to_string(),
                    ready.to_string(),
                    min.to_string(),
                    view.desired.to_string(),
                    max.to_string(),
                    view.instances.len().to_string(),
                ]);
            }
        }
    }
    if arguments.output == OutputFormat::Table || !arguments.yes {
        if arguments.output == OutputFormat::Json {
            let groups: Vec<serde_json::Value> = rows
                .iter()
                .map(|row| {
                    serde_json::json!({ "name": row[0], "status": row[1], "needUpdate": row[2], "ready": row[3], "min": row[4], "target": row[5], "max": row[6], "nodes": row[7] })
                })
                .collect();
            context.printer.data(&serde_json::to_string_pretty(
                &serde_json::json!({ "groups": groups }),
            )?);
        } else {
            context.printer.data(&table(
                &[
                    "NAME",
                    "STATUS",
                    "NEEDUPDATE",
                    "READY",
                    "MIN",
                    "TARGET",
                    "MAX",
                    "NODES",
                ],
                &rows,
            ));
        }
    }
    // A group an interrupted run grew and did not restore yet needs a run
    // too, even when every instance is up to date (killed after the last
    // replacement): it continues, restoring the group's sizes.
    let interrupted = interrupted_progress(&store, &arguments.name).await?;
    for plan in &plans {
        if interrupted.grown.contains_key(&plan.group)
            && !needing.iter().any(|(needed, _)| needed.group == plan.group)
        {
            needing.push((plan.clone(), 0));
        }
    }
    needing.sort_by_key(|(needed, _)| plans.iter().position(|plan| plan.group == needed.group));
    if needing.is_empty() {
        context.printer.info(&format!(
            "No rolling update needed: every instance of cluster {} is up to date.",
            arguments.name
        ));
        return Ok(ExitCode::SUCCESS);
    }
    if !arguments.yes || arguments.output == OutputFormat::Table {
        let mut text = String::from("\nWhat the rolling update will do, in this order:\n");
        for (plan, outdated) in &needing {
            if let (0, Some(original)) = (*outdated, interrupted.grown.get(&plan.group)) {
                text.push_str(&format!(
                    "  {}: restore its sizes (desired {}, max {}): an interrupted rolling update grew it\n",
                    plan.group, original.desired, original.max
                ));
                continue;
            }
            let why = state
                .content
                .pending_rollouts
                .get(&plan.group)
                .map(|reasons| reasons.join("; "))
                .unwrap_or_else(|| {
                    if arguments.force {
                        "--force".to_string()
                    } else {
                        "launched from an older launch-template version".to_string()
                    }
                });
            let how = match plan.role {
                InstanceGroupRole::ControlPlane => {
                    "one instance at a time, validating the control plane after each".to_string()
                }
                _ => format!(
                    "maxSurge {}, maxUnavailable {}",
                    plan.max_surge, plan.max_unavailable
                ),
            };
            text.push_str(&format!(
                "  {}: replace {outdated} instance(s) ({how}) because: {why}\n",
                plan.group
            ));
        }
        if !arguments.yes {
            text.push_str(&format!(
                "\nRun `skiff rolling-update cluster {} --yes` to do it.",
                arguments.name
            ));
        }
        context.printer.info(&text);
        if !arguments.yes {
            return Ok(ExitCode::SUCCESS);
        }
    }

    let cluster_api: Option<Box<dyn ClusterApi>> = if arguments.cloudonly {
        None
    } else {
        Some(
            crate::commands::validate_cluster::cluster_api(
                context,
                &store,
                bundle,
                arguments.kubeconfig.as_deref(),
            )
            .await?,
        )
    };

    let lock = Arc::new(
        store
            .lock(&arguments.name, "rolling-update cluster")
            .await
            .with_context(|| {
                format!(
                    "cannot start a rolling update of cluster {}",
                    arguments.name
                )
            })?,
    );
    if let Some(previous) = &lock.took_over {
        context.printer.warn(&format!(
            "took over the expired lock of {} ({:?}); an interrupted rolling update continues where it stopped",
            previous.holder, previous.operation
        ));
    }
    let progress_store = StateProgress {
        objects: store.objects().clone(),
        cluster: arguments.name.clone(),
        lock: lock.clone(),
        version: Mutex::new(None),
    };
    let sink = Sink::new(
        arguments.output == OutputFormat::Json,
        context.printer.is_terminal() && arguments.output != OutputFormat::Json,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        let printer = context.printer.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::SeqCst);
                printer.warn(
                    "stopping after the current step; run the same command again to continue",
                );
            }
        })
    };
    let options = RollOptions {
        force: arguments.force,
        drain_timeout: arguments.drain_timeout,
        fail_on_drain_error: arguments.fail_on_drain_error,
        validation_timeout: arguments.validation_timeout,
        validate_count: arguments.validate_count,
        poll_interval: arguments.validation_interval,
    };
    let plans: Vec<GroupPlan> = needing.iter().map(|(plan, _)| plan.clone()).collect();
    let stop_check = {
        let stop = stop.clone();
        let lock = lock.clone();
        move || stop.load(Ordering::SeqCst) || lock.ensure_held().is_err()
    };
    let started = std::time::Instant::now();
    let result = skiff_rollout::roll_groups(
        &provider,
        &plans,
        cluster_api.as_deref(),
        &options,
        &progress_store,
        &sink,
        &stop_check,
    )
    .await;
    watcher.abort();
    sink.finish();
    let outcome = match result {
        Ok(replaced) => {
            clear_pending(&store, &arguments.name, &plans, &lock).await?;
            context.printer.info(&format!(
                "Rolling update of cluster {} done: {replaced} instance(s) replaced in {:.1}s.",
                arguments.name,
                started.elapsed().as_secs_f64()
            ));
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Err(anyhow::Error::new(error).context(format!(
            "the rolling update of cluster {} stopped; its progress is recorded: run the same command again to continue",
            arguments.name
        ))),
    };
    if let Err(error) = lock.release().await {
        tracing::warn!("releasing the cluster lock failed (it expires by itself): {error}");
    }
    outcome
}

/// The progress an interrupted rolling update recorded (or none).
async fn interrupted_progress(store: &StateStore, cluster: &str) -> anyhow::Result<Progress> {
    let key = layout::rollout(cluster);
    match store.objects().get(&key).await? {
        None => Ok(Progress::default()),
        Some(object) => {
            serde_json::from_slice(&object.bytes).with_context(|| format!("{key} is corrupt"))
        }
    }
}

/// Forgets the reasons of the groups now fully replaced.
async fn clear_pending(
    store: &StateStore,
    cluster: &str,
    plans: &[GroupPlan],
    lock: &skiff_state::LockGuard,
) -> anyhow::Result<()> {
    let (mut state, version) = cloud::read_recorded(store, cluster).await?;
    let before = state.content.pending_rollouts.len();
    for plan in plans {
        state.content.pending_rollouts.remove(&plan.group);
    }
    if state.content.pending_rollouts.len() != before {
        lock.ensure_held()?;
        skiff_state::recorded::write(
            store.objects().as_ref(),
            cluster,
            version.as_ref(),
            &mut state,
        )
        .await?;
        let groups: Vec<&str> = plans.iter().map(|plan| plan.group.as_str()).collect();
        if let Err(error) = store
            .snapshot_state(
                cluster,
                &state,
                &crate::context::command_line(),
                &format!("rolled instance groups {}", groups.join(", ")),
            )
            .await
        {
            tracing::warn!("keeping a copy of the recorded state of cluster {cluster} in its history failed: {error}");
        }
    }
    Ok(())
}

/// Progress in `<cluster>/rollout.json`, written conditionally under the lock.
struct StateProgress {
    objects: Arc<dyn ObjectStore>,
    cluster: String,
    lock: Arc<skiff_state::LockGuard>,
    version: Mutex<Option<Version>>,
}

#[async_trait]
impl ProgressStore for StateProgress {
    async fn load(&self) -> skiff_rollout::Result<Progress> {
        let key = layout::rollout(&self.cluster);
        let object = self
            .objects
            .get(&key)
            .await
            .map_err(|error| skiff_rollout::RolloutError::Progress(error.to_string()))?;
        let Some(object) = object else {
            return Ok(Progress::default());
        };
        *self.version.lock().await = Some(object.version.clone());
        serde_json::from_slice(&object.bytes).map_err(|error| {
            skiff_rollout::RolloutError::Progress(format!("{key} is corrupt: {error}"))
        })
    }

    async fn save(&self, progress: &Progress) -> skiff_rollout::Result<()> {
        self.lock
            .ensure_held()
            .map_err(|error| skiff_rollout::RolloutError::Progress(error.to_string()))?;
        let key = layout::rollout(&self.cluster);
        let body = serde_json::to_vec_pretty(progress)
            .map_err(|error| skiff_rollout::RolloutError::Progress(error.to_string()))?;
        let mut version = self.version.lock().await;
        let precondition = match version.as_ref() {
            Some(current) => Precondition::Matches(current.clone()),
            None => Precondition::None,
        };
        let written = self
            .objects
            .put(&key, body, precondition, PutOptions::default())
            .await
            .map_err(|error| skiff_rollout::RolloutError::Progress(error.to_string()))?;
        *version = Some(written);
        Ok(())
    }
}

/// Events as progress bars (terminal), plain lines, or JSON lines (`-o json`).
struct Sink {
    json: bool,
    bars: Option<(
        MultiProgress,
        std::sync::Mutex<std::collections::BTreeMap<String, ProgressBar>>,
    )>,
}

impl Sink {
    fn new(json: bool, terminal: bool) -> Sink {
        Sink {
            json,
            bars: terminal.then(|| {
                (
                    MultiProgress::new(),
                    std::sync::Mutex::new(std::collections::BTreeMap::new()),
                )
            }),
        }
    }

    fn finish(&self) {
        if let Some((_, bars)) = &self.bars {
            if let Ok(bars) = bars.lock() {
                for bar in bars.values() {
                    bar.finish();
                }
            }
        }
    }
}

impl EventSink for Sink {
    fn event(&self, event: &Event) {
        if self.json {
            if let Ok(line) = serde_json::to_string(event) {
                println!("{line}");
            }
            return;
        }
        let line = match event {
            Event::GroupStarted {
                group,
                outdated,
                total,
                surge,
                unavailable,
            } => {
                format!("{group}: replacing {outdated} of {total} instances (surge {surge}, unavailable {unavailable})")
            }
            Event::Grown { group, desired } => {
                format!("{group}: grown to {desired} instances for surge")
            }
            Event::Drained {
                group,
                instance,
                node,
            } => format!("{group}: drained node {node} ({instance})"),
            Event::Terminated {
                group,
                instance,
                shrink,
            } => {
                format!(
                    "{group}: terminated {instance}{}",
                    if *shrink {
                        " (group shrinks back)"
                    } else {
                        " (replacement launching)"
                    }
                )
            }
            Event::Validated {
                group,
                current,
                total,
            } => format!("{group}: {current}/{total} instances up to date and healthy"),
            Event::GroupDone { group, replaced } => {
                format!("{group}: done, {replaced} instance(s) replaced")
            }
        };
        match &self.bars {
            None => eprintln!("{line}"),
            Some((multi, bars)) => {
                let Ok(mut bars) = bars.lock() else { return };
                let group = match event {
                    Event::GroupStarted { group, .. }
                    | Event::Grown { group, .. }
                    | Event::Drained { group, .. }
                    | Event::Terminated { group, .. }
                    | Event::Validated { group, .. }
                    | Event::GroupDone { group, .. } => group.clone(),
                };
                let bar = bars.entry(group.clone()).or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new(0));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix:>24} [{bar:25}] {pos}/{len} eta {eta} {wide_msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(group);
                    bar
                });
                match event {
                    Event::GroupStarted { outdated, .. } => bar.set_length(*outdated as u64),
                    Event::Terminated { .. } => bar.inc(1),
                    _ => {}
                }
                bar.set_message(line);
            }
        }
    }
}
