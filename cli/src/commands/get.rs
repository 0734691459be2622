//! `skiff get clusters|cluster|instancegroups`.

use std::process::ExitCode;

use anyhow::bail;
use serde_json::json;
use skiff_api::document::to_yaml;
use skiff_api::InstanceGroup;
use skiff_state::StoredSpec;

use crate::args::{GetClusterArgs, GetClustersArgs, GetInstanceGroupsArgs};
use crate::commands::to_json;
use crate::context::Context;
use crate::printer::{table, OutputFormat};

pub async fn clusters(context: &Context, arguments: &GetClustersArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let names = store.clusters().await?;
    let mut specs: Vec<StoredSpec> = Vec::new();
    for name in &names {
        match store.read_spec(name).await {
            Ok(spec) => specs.push(spec),
            // A folder without a spec (e.g. a cluster being unregistered) is not a cluster.
            Err(skiff_state::StoreError::NotFound { .. }) => {}
            Err(error) => return Err(error.into()),
        }
    }
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
                .map(|spec| {
                    let cluster = &spec.bundle.cluster;
                    vec![
                        cluster.name().to_string(),
                        cluster.spec.kubernetes_version.to_string(),
                        cluster.zones().join(","),
                        cluster.spec.topology.to_string(),
                        spec.bundle.instance_groups.len().to_string(),
                        spec.revision.serial.to_string(),
                        format!(
                            "{} by {}",
                            spec.revision.written_at.date(),
                            spec.revision.written_by.user
                        ),
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
                ],
                &rows,
            ));
        }
        OutputFormat::Yaml => {
            let documents: Vec<String> = specs
                .iter()
                .map(|spec| to_yaml(&spec.bundle.cluster))
                .collect();
            context.printer.data(&documents.join("---\n"));
        }
        OutputFormat::Json => {
            let clusters: Vec<&skiff_api::Cluster> =
                specs.iter().map(|spec| &spec.bundle.cluster).collect();
            context.printer.data(&to_json(&json!({ "apiVersion": skiff_api::API_VERSION, "kind": "ClusterList", "items": clusters }))?);
        }
    }
    Ok(ExitCode::SUCCESS)
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
