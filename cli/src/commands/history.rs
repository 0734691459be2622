//! `skiff history CLUSTER`: who changed a cluster's spec and recorded
//! state, when, with which command; `--diff A B` compares two spec
//! revisions; `--prune` removes old entries by the retention rules given.

use std::process::ExitCode;

use anyhow::{bail, Context as _};
use serde::Serialize;
use skiff_state::lock::rfc3339;
use skiff_state::{Actor, Retention, StateStore};
use time::OffsetDateTime;

use crate::args::{HistoryArgs, HistoryKind};
use crate::context::Context;
use crate::printer::to_json;
use crate::printer::{table, OutputFormat};
use crate::revisions::{revision, spec_diff};

/// One line of the history, as listed (`-o json` items).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    /// `spec` (a spec revision) or `state` (a recorded-state snapshot).
    kind: &'static str,
    /// The revision (spec) or serial (state).
    version: u64,
    /// When, if recorded (snapshots older than their header have none).
    #[serde(with = "time::serde::rfc3339::option")]
    written_at: Option<OffsetDateTime>,
    /// Who.
    written_by: Option<Actor>,
    /// The command line.
    command: Option<String>,
    /// The one-line summary.
    summary: Option<String>,
    /// Whether this is the spec revision the cluster is at now.
    current: bool,
}

/// The `-o json|yaml` document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct HistoryList<'entries> {
    api_version: &'static str,
    kind: &'static str,
    cluster: &'entries str,
    items: &'entries [Entry],
}

pub async fn run(context: &Context, arguments: &HistoryArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let cluster = arguments.name.as_str();
    // A clear "no such cluster" (naming the known ones) before anything else.
    let head = store.read_spec(cluster).await?;
    if arguments.prune {
        return prune(context, &store, arguments).await;
    }
    if let Some(pair) = &arguments.diff {
        let [from, to] = pair.as_slice() else {
            bail!("--diff takes two revisions, e.g. `skiff history {cluster} --diff 3 4`");
        };
        return diff(context, &store, cluster, *from, *to).await;
    }

    let mut entries = Vec::new();
    if arguments.kind != HistoryKind::State {
        for (revision, _) in store.spec_history(cluster).await? {
            entries.push(Entry {
                kind: "spec",
                version: revision.serial,
                written_at: Some(revision.written_at),
                written_by: Some(revision.written_by),
                command: Some(revision.command),
                summary: Some(revision.summary),
                current: revision.serial == head.revision.serial,
            });
        }
    }
    if arguments.kind != HistoryKind::Spec {
        for snapshot in store.state_history(cluster).await? {
            let change = snapshot.change;
            entries.push(Entry {
                kind: "state",
                version: snapshot.serial,
                written_at: change.as_ref().map(|change| change.written_at),
                written_by: change.as_ref().map(|change| change.written_by.clone()),
                command: change.as_ref().map(|change| change.command.clone()),
                summary: change.map(|change| change.summary),
                current: false,
            });
        }
        // Oldest first; entries without a time (old snapshots) by serial among themselves.
        entries.sort_by_key(|entry| (entry.written_at, entry.kind, entry.version));
    }

    match arguments.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            let list = HistoryList {
                api_version: skiff_api::API_VERSION,
                kind: "History",
                cluster,
                items: &entries,
            };
            if arguments.output == OutputFormat::Json {
                context.printer.data(&to_json(&list)?);
            } else {
                context.printer.data(&skiff_api::document::to_yaml(&list));
            }
        }
        OutputFormat::Table => {
            let with_kind = arguments.kind != HistoryKind::Spec;
            let unknown = || "(not recorded)".to_string();
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|entry| {
                    let mut row = Vec::new();
                    if with_kind {
                        row.push(entry.kind.to_string());
                    }
                    row.push(if entry.current {
                        format!("{} (current)", entry.version)
                    } else {
                        entry.version.to_string()
                    });
                    row.push(entry.written_at.map(rfc3339).unwrap_or_else(unknown));
                    row.push(
                        entry
                            .written_by
                            .as_ref()
                            .map(|actor| format!("{}@{}", actor.user, actor.host))
                            .unwrap_or_else(unknown),
                    );
                    row.push(
                        entry
                            .written_by
                            .as_ref()
                            .and_then(|actor| actor.aws_identity.clone())
                            .unwrap_or_else(|| "-".to_string()),
                    );
                    row.push(entry.command.clone().unwrap_or_else(unknown));
                    row.push(entry.summary.clone().unwrap_or_else(unknown));
                    row
                })
                .collect();
            let mut header = Vec::new();
            if with_kind {
                header.push("KIND");
            }
            header.extend([
                "VERSION",
                "WHEN",
                "WHO",
                "AWS IDENTITY",
                "COMMAND",
                "SUMMARY",
            ]);
            context.printer.data(&table(&header, &rows));
            if arguments.kind == HistoryKind::Spec {
                context.printer.info(&format!(
                    "Compare two revisions with `skiff history {cluster} --diff A B`; restore one with `skiff rollback {cluster} --to REVISION`."
                ));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn diff(
    context: &Context,
    store: &StateStore,
    cluster: &str,
    from: u64,
    to: u64,
) -> anyhow::Result<ExitCode> {
    let (from_revision, from_bundle) = revision(store, cluster, from).await?;
    let (to_revision, to_bundle) = revision(store, cluster, to).await?;
    if from_bundle == to_bundle {
        context.printer.info(&format!(
            "Revisions {from} and {to} of cluster {cluster} hold the same spec."
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let to_label = format!(
        "revision {} ({}, {})",
        to_revision.serial,
        to_revision.written_by,
        rfc3339(to_revision.written_at)
    );
    context.printer.data(&spec_diff(
        (&from_revision, &from_bundle),
        &to_label,
        &to_bundle,
    ));
    Ok(ExitCode::SUCCESS)
}

async fn prune(
    context: &Context,
    store: &StateStore,
    arguments: &HistoryArgs,
) -> anyhow::Result<ExitCode> {
    let cluster = arguments.name.as_str();
    let retention = Retention {
        keep: arguments.keep,
        older_than: arguments.older_than,
    };
    if !retention.is_set() {
        bail!("--prune needs a rule: --keep N (keep the newest N entries) and/or --older-than AGE (e.g. 30d); nothing was removed");
    }
    if arguments.keep == Some(0) {
        bail!("--keep 0 would remove the current revision; keep at least 1 (nothing was removed)");
    }
    let pruned = store
        .prune_history(cluster, &retention, arguments.dry_run)
        .await
        .with_context(|| format!("cannot prune the history of cluster {cluster}"))?;
    let list = |serials: &[u64]| {
        if serials.is_empty() {
            "none".to_string()
        } else {
            serials
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let verb = if arguments.dry_run {
        "Would remove"
    } else {
        "Removed"
    };
    context.printer.data(&format!(
        "{verb} from the history of cluster {cluster}: spec revisions {}; recorded-state snapshots {}.",
        list(&pruned.spec_revisions),
        list(&pruned.state_snapshots)
    ));
    Ok(ExitCode::SUCCESS)
}
