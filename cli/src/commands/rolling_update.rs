//! `skiff rolling-update cluster NAME`: show which instance groups run
//! out-of-date instances and why; with `--yes`, replace them (bastions,
//! then the control plane one instance at a time, then nodes with surge),
//! resumably.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use skiff_api::InstanceGroupRole;
use skiff_engine::roll::{self, RollPreview, Selection, Work};
use skiff_rollout::{ClusterApi, RollOptions};

use crate::args::RollingUpdateArgs;
use crate::context::Context;
use crate::printer::{table, OutputFormat};
use crate::rollout_events::Sink;
use crate::session::locking_session;

pub async fn run(context: &Context, arguments: &RollingUpdateArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let session = locking_session(context, &store, &arguments.lock).await?;
    let selection = Selection {
        groups: arguments.instance_groups.clone(),
        roles: arguments.instance_group_roles.clone(),
        force: arguments.force,
    };
    let preview = roll::preview(&session, &arguments.name, &selection).await?;
    if arguments.output == OutputFormat::Table || !arguments.yes {
        show_groups(context, arguments, &preview)?;
    }
    if preview.steps.is_empty() {
        context.printer.info(&format!(
            "No rolling update needed: every instance of cluster {} is up to date.",
            arguments.name
        ));
        return Ok(ExitCode::SUCCESS);
    }
    if !arguments.yes || arguments.output == OutputFormat::Table {
        context.printer.info(&steps_text(arguments, &preview));
        if !arguments.yes {
            return Ok(ExitCode::SUCCESS);
        }
    }

    let spec = store.read_spec(&arguments.name).await?;
    let cluster_api: Option<Box<dyn ClusterApi>> = match arguments.cloudonly {
        true => None,
        false => Some(
            skiff_engine::access::cluster_api(
                &store,
                &spec.bundle,
                arguments.kubeconfig.as_deref(),
            )
            .await?,
        ),
    };
    let sink = Sink::new(
        arguments.output == OutputFormat::Json,
        context.printer.is_terminal() && arguments.output != OutputFormat::Json,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        let printer = context.printer.clone();
        let mut listener = skiff_engine::signals::Listener::new();
        tokio::spawn(async move {
            // The first signal stops after the current step; with this
            // listener gone, a second one ends the process at once.
            listener.next().await;
            stop.store(true, Ordering::SeqCst);
            printer.warn(
                "stopping after the current step (interrupt again to exit at once); run the same command again to continue",
            );
        })
    };
    let options = RollOptions {
        force: arguments.force,
        drain_timeout: arguments.drain_timeout,
        fail_on_drain_error: arguments.fail_on_drain_error,
        validation_timeout: arguments.validation_timeout,
        validate_count: arguments.validate_count,
        poll_interval: arguments.validation_interval,
        // The engine fills in the versions from the spec and the recorded reasons.
        ..RollOptions::default()
    };
    let started = time::OffsetDateTime::now_utc();
    let rolled = roll::run(
        &session,
        &preview,
        cluster_api.as_deref(),
        &options,
        &sink,
        stop,
    )
    .await;
    watcher.abort();
    sink.finish();
    // What the control-plane nodes said about their bootstraps during the
    // run: a failed upgrade names its reason there.
    report_failed_nodes(context, &store, &arguments.name, started).await;
    let rolled = rolled?;
    context.printer.info(&format!(
        "Rolling update of cluster {} done: {} instance(s) replaced in {:.1}s.",
        arguments.name,
        rolled.replaced,
        rolled.elapsed.as_secs_f64()
    ));
    Ok(ExitCode::SUCCESS)
}

/// Warns about each control-plane node whose bootstrap failed since
/// `since` (its status object in the store), with its reason.
async fn report_failed_nodes(
    context: &Context,
    store: &skiff_state::StateStore,
    cluster: &str,
    since: time::OffsetDateTime,
) {
    let statuses =
        match skiff_state::etcd::list_node_statuses(store.objects().as_ref(), cluster).await {
            Ok(statuses) => statuses,
            Err(error) => {
                tracing::debug!("reading the control-plane nodes' statuses: {error}");
                return;
            }
        };
    for status in statuses
        .iter()
        .filter(|status| status.failed() && status.time >= since)
    {
        context.printer.warn(&format!(
            "control-plane instance {} (Kubernetes {}) failed its bootstrap at {}: {}",
            status.instance,
            status.kubernetes_version,
            skiff_state::lock::rfc3339(status.time),
            status.message
        ));
    }
}

/// The table (or JSON) of every selected group.
fn show_groups(
    context: &Context,
    arguments: &RollingUpdateArgs,
    preview: &RollPreview,
) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = preview
        .rows
        .iter()
        .map(|row| match &row.live {
            None => vec![
                row.group.clone(),
                "Missing".to_string(),
                "-".to_string(),
                "-".to_string(),
                row.min.to_string(),
                "-".to_string(),
                row.max.to_string(),
                "-".to_string(),
            ],
            Some(live) => vec![
                row.group.clone(),
                if live.outdated > 0 {
                    "NeedsUpdate"
                } else {
                    "Ready"
                }
                .to_string(),
                live.outdated.to_string(),
                live.ready.to_string(),
                row.min.to_string(),
                live.desired.to_string(),
                row.max.to_string(),
                live.instances.to_string(),
            ],
        })
        .collect();
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
    Ok(())
}

/// What the rolling update will do, group by group.
fn steps_text(arguments: &RollingUpdateArgs, preview: &RollPreview) -> String {
    let mut text = String::from("\nWhat the rolling update will do, in this order:\n");
    for step in &preview.steps {
        let group = &step.plan.group;
        match &step.work {
            Work::Restore(original) => text.push_str(&format!(
                "  {group}: restore its sizes (desired {}, max {}): an interrupted rolling update grew it\n",
                original.desired, original.max
            )),
            Work::Replace { outdated, reason } => {
                let how = match step.plan.role {
                    InstanceGroupRole::ControlPlane => {
                        "one instance at a time, validating the control plane after each"
                            .to_string()
                    }
                    InstanceGroupRole::Etcd => {
                        "one etcd member at a time, each replacement a voting member before the next"
                            .to_string()
                    }
                    _ => format!(
                        "maxSurge {}, maxUnavailable {}",
                        step.plan.max_surge, step.plan.max_unavailable
                    ),
                };
                text.push_str(&format!(
                    "  {group}: replace {outdated} instance(s) ({how}) because: {reason}\n"
                ));
            }
        }
    }
    if !arguments.yes {
        text.push_str(&format!(
            "\nRun `skiff rolling-update cluster {} --yes` to do it.",
            arguments.name
        ));
    }
    text
}
