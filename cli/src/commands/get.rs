//! `skiff get clusters|cluster|instancegroups`.

use std::process::ExitCode;

use anyhow::bail;
use serde_json::json;
use skiff_api::document::to_yaml;
use skiff_api::InstanceGroup;
use skiff_state::lock::rfc3339;
use skiff_state::{LockInfo, StoredSpec};
use time::OffsetDateTime;

use crate::args::{GetClusterArgs, GetClustersArgs, GetInstanceGroupsArgs};
use crate::context::Context;
use crate::printer::to_json;
use crate::printer::{table, OutputFormat};

/// `get clusters` reads only each cluster's head spec and lock object (no
/// history listing), so that it stays fast on any store.
pub async fn clusters(context: &Context, arguments: &GetClustersArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let specs: Vec<(StoredSpec, Option<LockInfo>)> = store.cluster_summaries().await?;
    let now = OffsetDateTime::now_utc();
    match arguments.output {
        OutputFormat::Table => {
            if specs.is_empty() {
                context.printer.info(&format!(
                    "No clusters in {}. Create one with `skiff create cluster NAME --zones ZONE`.",
                    store.location()
                ));
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = specs
                .iter()
                .map(|(spec, lock)| {
                    let cluster = &spec.bundle.cluster;
                    let actor = &spec.revision.written_by;
                    vec![
                        cluster.name().to_string(),
                        cluster.spec.kubernetes_version.to_string(),
                        cluster.zones().join(","),
                        cluster.spec.topology.to_string(),
                        spec.bundle.instance_groups.len().to_string(),
                        spec.revision.serial.to_string(),
                        format!(
                            "{} by {}@{}",
                            rfc3339(spec.revision.written_at),
                            actor.user,
                            actor.host
                        ),
                        lock_column(lock.as_ref(), now),
                    ]
                })
                .collect();
            context.printer.data(&table(
                &[
                    "NAME",
                    "KUBERNETES",
                    "ZONES",
                    "TOPOLOGY",
                    "GROUPS",
                    "REVISION",
                    "CHANGED",
                    "LOCK",
                ],
                &rows,
            ));
        }
        OutputFormat::Yaml => {
            let documents: Vec<String> = specs
                .iter()
                .map(|(spec, _)| to_yaml(&spec.bundle.cluster))
                .collect();
            context.printer.data(&documents.join("---\n"));
        }
        OutputFormat::Json => {
            let clusters: Vec<&skiff_api::Cluster> =
                specs.iter().map(|(spec, _)| &spec.bundle.cluster).collect();
            // Per cluster, in the order of `items`: the last change and the lock.
            let status: Vec<serde_json::Value> = specs
                .iter()
                .map(|(spec, lock)| {
                    json!({
                        "name": spec.bundle.name(),
                        "revision": spec.revision.serial,
                        "changedAt": rfc3339(spec.revision.written_at),
                        "changedBy": spec.revision.written_by,
                        "command": spec.revision.command,
                        "lock": lock,
                    })
                })
                .collect();
            context.printer.data(&to_json(&json!({ "apiVersion": skiff_api::API_VERSION, "kind": "ClusterList", "items": clusters, "status": status }))?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The LOCK column: `-`, or who holds it for what (or that it expired).
fn lock_column(lock: Option<&LockInfo>, now: OffsetDateTime) -> String {
    match lock {
        None => "-".to_string(),
        Some(info) if info.is_expired(now) => format!(
            "expired ({}@{}, {})",
            info.holder.user, info.holder.host, info.operation
        ),
        Some(info) => format!(
            "held by {}@{} ({})",
            info.holder.user, info.holder.host, info.operation
        ),
    }
}

pub async fn cluster(context: &Context, arguments: &GetClusterArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let spec = store.read_spec(&arguments.name).await?;
    let bundle = &spec.bundle;
    match arguments.output {
        OutputFormat::Table => {
            let cluster = &bundle.cluster;
            let rows = vec![vec![
                cluster.name().to_string(),
                cluster.spec.kubernetes_version.to_string(),
                cluster.region().to_string(),
                cluster.zones().join(","),
                cluster.spec.topology.to_string(),
                cluster.spec.networking.cni.to_string(),
                bundle.instance_groups.len().to_string(),
                spec.revision.serial.to_string(),
            ]];
            context.printer.data(&table(
                &[
                    "NAME",
                    "KUBERNETES",
                    "REGION",
                    "ZONES",
                    "TOPOLOGY",
                    "CNI",
                    "GROUPS",
                    "REVISION",
                ],
                &rows,
            ));
        }
        OutputFormat::Yaml => {
            if arguments.full {
                context.printer.data(&bundle.to_yaml());
            } else {
                context.printer.data(&to_yaml(&bundle.cluster));
            }
        }
        OutputFormat::Json => {
            if arguments.full {
                let mut items = vec![serde_json::to_value(&bundle.cluster)?];
                for group in &bundle.instance_groups {
                    items.push(serde_json::to_value(group)?);
                }
                context.printer.data(&to_json(&json!({ "apiVersion": skiff_api::API_VERSION, "kind": "List", "items": items }))?);
            } else {
                context.printer.data(&to_json(&bundle.cluster)?);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn instance_groups(
    context: &Context,
    arguments: &GetInstanceGroupsArgs,
) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let spec = store.read_spec(&arguments.name).await?;
    let mut groups: Vec<&InstanceGroup> = spec.bundle.instance_groups.iter().collect();
    if !arguments.groups.is_empty() {
        for wanted in &arguments.groups {
            if spec.bundle.instance_group(wanted).is_none() {
                let known: Vec<&str> = spec
                    .bundle
                    .instance_groups
                    .iter()
                    .map(InstanceGroup::name)
                    .collect();
                bail!(
                    "instance group {wanted:?} not found in cluster {} (groups: {})",
                    arguments.name,
                    known.join(", ")
                );
            }
        }
        groups.retain(|group| arguments.groups.iter().any(|wanted| wanted == group.name()));
    }
    match arguments.output {
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = groups
                .iter()
                .map(|group| {
                    vec![
                        group.name().to_string(),
                        group.spec.role.to_string(),
                        group.spec.machine_type.clone(),
                        group.spec.min_size.to_string(),
                        group.spec.max_size.to_string(),
                        group.spec.subnets.join(","),
                    ]
                })
                .collect();
            context.printer.data(&table(
                &["NAME", "ROLE", "MACHINETYPE", "MIN", "MAX", "SUBNETS"],
                &rows,
            ));
        }
        OutputFormat::Yaml => {
            let documents: Vec<String> = groups.iter().map(to_yaml).collect();
            context.printer.data(&documents.join("---\n"));
        }
        OutputFormat::Json => {
            context.printer.data(&to_json(
                &json!({ "apiVersion": skiff_api::API_VERSION, "kind": "List", "items": groups }),
            )?);
        }
    }
    Ok(ExitCode::SUCCESS)
}
