//! `skiff validate cluster NAME`: each group's instances in service against
//! its spec, a Ready node per instance, a healthy control plane, and the
//! control-plane certificates' earliest expiry. Exit 2 when invalid, naming
//! what is wrong.

use std::process::ExitCode;

use skiff_engine::validate::{
    validate, ClusterValidation, ValidateOptions, CERTIFICATE_FAILURE_DAYS,
};

use crate::args::ValidateClusterArgs;
use crate::context::Context;
use crate::printer::{table, OutputFormat};
use crate::session::session;

pub async fn run(context: &Context, arguments: &ValidateClusterArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let session = session(context, &store).await?;
    let options = ValidateOptions {
        cloud_only: arguments.cloudonly,
        kubeconfig: arguments.kubeconfig.clone(),
        wait: arguments.wait.unwrap_or_default(),
    };
    let validation = validate(&session, &arguments.name, &options).await?;
    print(context, arguments, &validation)?;
    if validation.validation.problems.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(2))
    }
}

fn print(
    context: &Context,
    arguments: &ValidateClusterArgs,
    found: &ClusterValidation,
) -> anyhow::Result<()> {
    let validation = &found.validation;
    match arguments.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            let value = serde_json::json!({
                "cluster": arguments.name,
                "valid": validation.problems.is_empty(),
                "groups": validation.groups,
                "versions": validation.versions,
                "certificates": found.certificates,
                "nodes": found.nodes,
                "problems": validation.problems,
            });
            context.printer.data(&serde_json::to_string_pretty(&value)?);
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = validation
                .groups
                .iter()
                .map(|group| {
                    vec![
                        group.group.clone(),
                        group.role.clone(),
                        group.min.to_string(),
                        group.max.to_string(),
                        group.in_service.to_string(),
                        group.outdated.to_string(),
                    ]
                })
                .collect();
            let mut text = table(
                &[
                    "INSTANCE GROUP",
                    "ROLE",
                    "MIN",
                    "MAX",
                    "IN SERVICE",
                    "OUTDATED",
                ],
                &rows,
            );
            text.push('\n');
            if let Some(versions) = &validation.versions {
                text.push_str(&kubernetes_versions(versions));
            }
            text.push_str(&certificates(found));
            if !found.nodes.is_empty() {
                let rows: Vec<Vec<String>> = found
                    .nodes
                    .iter()
                    .map(|status| {
                        vec![
                            status.instance.clone(),
                            status.kubernetes_version.clone(),
                            status.phase.clone(),
                            skiff_state::lock::rfc3339(status.time),
                            status.message.clone(),
                        ]
                    })
                    .collect();
                text.push_str("\nControl-plane nodes, as they last reported:\n");
                text.push_str(&table(
                    &["INSTANCE", "KUBERNETES", "PHASE", "SINCE", "MESSAGE"],
                    &rows,
                ));
            }
            if validation.problems.is_empty() {
                text.push_str(&format!("\nCluster {} is valid.\n", arguments.name));
            } else {
                text.push_str("\nProblems:\n");
                let problems: Vec<Vec<String>> = validation
                    .problems
                    .iter()
                    .map(|problem| {
                        vec![
                            problem.kind.clone(),
                            problem.name.clone(),
                            problem.message.clone(),
                        ]
                    })
                    .collect();
                text.push_str(&table(&["KIND", "NAME", "MESSAGE"], &problems));
                text.push_str(&format!("\nCluster {} is not valid.\n", arguments.name));
            }
            context.printer.data(&text);
        }
    }
    Ok(())
}

/// `Kubernetes: API server v1.35.1; kubelets v1.35.1 (4 nodes), v1.34.2 (2 nodes: a, b)`.
fn kubernetes_versions(versions: &skiff_rollout::ClusterVersions) -> String {
    let mut by_version: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for node in &versions.kubelets {
        let kubelet = if node.kubelet.is_empty() {
            "unknown"
        } else {
            node.kubelet.as_str()
        };
        by_version.entry(kubelet).or_default().push(&node.node);
    }
    let kubelets: Vec<String> = by_version
        .iter()
        .rev()
        .map(|(version, nodes)| {
            if nodes.len() <= 3 {
                format!("{version} ({})", nodes.join(", "))
            } else {
                format!("{version} ({} nodes)", nodes.len())
            }
        })
        .collect();
    format!(
        "Kubernetes: API server {}; kubelets {}.\n",
        versions.api_server,
        if kubelets.is_empty() {
            "none registered".to_string()
        } else {
            kubelets.join(", ")
        }
    )
}

/// The earliest certificate expiry, then each control-plane node's.
fn certificates(found: &ClusterValidation) -> String {
    let Some(earliest) = found.certificates.first() else {
        return "Certificates: no control-plane node has reported its certificates yet \
                (each does after its bootstrap, then daily).\n"
            .to_string();
    };
    let date = |time: time::OffsetDateTime| {
        time.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| time.to_string())
    };
    let mut text = format!(
        "Earliest certificate expiry: {} on {} ({}), {}, in {} days (validation fails under {CERTIFICATE_FAILURE_DAYS}).\n",
        earliest.name,
        earliest.instance,
        earliest.group,
        date(earliest.not_after),
        earliest.days_left,
    );
    let rows: Vec<Vec<String>> = found
        .certificates
        .iter()
        .map(|node| {
            vec![
                node.instance.clone(),
                node.group.clone(),
                node.name.clone(),
                date(node.not_after),
                node.days_left.to_string(),
                date(node.checked),
            ]
        })
        .collect();
    text.push_str(&table(
        &[
            "INSTANCE",
            "GROUP",
            "EARLIEST CERTIFICATE",
            "EXPIRES",
            "DAYS LEFT",
            "CHECKED",
        ],
        &rows,
    ));
    text
}
