//! `skiff validate cluster NAME`: each group's instances in service against
//! its spec, a Ready node per instance, a healthy control plane. Exit 2 when
//! invalid, naming what is wrong.

use std::process::ExitCode;

use skiff_engine::validate::{validate, ValidateOptions};
use skiff_rollout::validate::Validation;

use crate::args::ValidateClusterArgs;
use crate::context::Context;
use crate::printer::{table, OutputFormat};
use crate::session::session;

pub async fn run(context: &Context, arguments: &ValidateClusterArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let session = session(context, &store).await;
    let options = ValidateOptions {
        cloud_only: arguments.cloudonly,
        kubeconfig: arguments.kubeconfig.clone(),
        wait: arguments.wait.unwrap_or_default(),
    };
    let validation = validate(&session, &arguments.name, &options).await?;
    print(context, arguments, &validation)?;
    if validation.problems.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(2))
    }
}

fn print(
    context: &Context,
    arguments: &ValidateClusterArgs,
    validation: &Validation,
) -> anyhow::Result<()> {
    match arguments.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            let value = serde_json::json!({
                "cluster": arguments.name,
                "valid": validation.problems.is_empty(),
                "groups": validation.groups,
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
