//! `skiff delete cluster NAME`: list everything of the cluster in AWS (found
//! by its ownership tags and the recorded state) and, with `--yes`, delete
//! it in reverse dependency order, then remove the cluster from the store.
//! With `--unregister`, only forget the cluster and leave AWS alone.
//!
//! Only resources tagged `kubernetes.io/cluster/<name>=owned` by skiff (or
//! recorded as created by it) are ever deleted: a shared VPC or subnet, or
//! anything beside the cluster, is never touched.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use skiff_plans::desired::dns::record_key;
use skiff_plans::recorded::ManagedBy;
use skiff_plans::resource::Attributes;
use skiff_plans::PlanContext;
use skiff_providers::refresh::RefreshScope;

use crate::args::DeleteClusterArgs;
use crate::cloud;
use crate::commands::update_cluster::run_apply;
use crate::context::Context;
use crate::preview;

pub async fn run(context: &Context, arguments: &DeleteClusterArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let spec = store.read_spec(&arguments.name).await?;
    if arguments.unregister {
        return unregister(context, &store, arguments, &spec).await;
    }
    let provider = cloud::provider(context, &spec.bundle).await?;
    let lock = if arguments.yes {
        Some(Arc::new(
            store
                .lock(&arguments.name, "delete cluster")
                .await
                .with_context(|| format!("cannot delete cluster {}", arguments.name))?,
        ))
    } else {
        None
    };
    let result = async {
        let (state, version) = cloud::read_recorded(&store, &arguments.name).await?;
        if state.content.managed_by == ManagedBy::Terraform {
            let name = &arguments.name;
            let message = format!(
                "cluster {name} is managed by Terraform: deleting its resources here would leave Terraform's state describing resources that no longer exist. Run `terraform destroy` in the folder `skiff update cluster {name} --target terraform --out DIR` wrote, then `skiff delete cluster {name} --unregister --yes` to remove it from the store"
            );
            if arguments.yes {
                bail!("{message}. Nothing was deleted");
            }
            context.printer.warn(&message);
        }
        // The API record: where the recorded state says it is.
        let dns_record = state.content.resources.get(&record_key()).and_then(|resource| match &resource.attributes {
            Some(Attributes::DnsRecord(record)) => Some((record.zone.clone(), record.name.clone())),
            _ => None,
        });
        let scope = RefreshScope {
            cluster: arguments.name.clone(),
            dns_record,
            recorded: Some(state.content.clone()),
        };
        let observed = provider
            .refresh(&scope)
            .await
            .with_context(|| format!("reading the AWS resources of cluster {}", arguments.name))?;
        let plan = skiff_plans::diff::destroy(
            &arguments.name,
            &observed,
            &PlanContext {
                region: provider.region.clone(),
                spec_revision: spec.revision.serial,
                state: if version.is_some() {
                    skiff_plans::StateBinding::recorded(state.lineage.clone(), state.serial)
                } else {
                    skiff_plans::StateBinding::none()
                },
            },
        );
        if plan.is_empty() {
            context.printer.info(&format!("Cluster {} has no AWS resources.", arguments.name));
        } else {
            let mut text = format!("Deleting cluster {} removes these {} AWS resources:\n", arguments.name, plan.changes.len());
            for change in &plan.changes {
                text.push_str(&format!("  - {} ({})\n", change.key, change.id.as_deref().unwrap_or("?")));
            }
            context.printer.data(&text);
        }
        let Some(lock) = &lock else {
            context.printer.info(&format!(
                "Run `skiff delete cluster {} --yes` to delete them and remove the cluster from {}.",
                arguments.name,
                store.location()
            ));
            return Ok(ExitCode::SUCCESS);
        };
        if !plan.is_empty() {
            run_apply(context, &store, &provider, &plan, None, lock.clone(), state, version, arguments.parallelism).await?;
            // Check nothing of the cluster is left before forgetting it.
            let left = provider.refresh(&scope).await?;
            let remaining: Vec<String> = left
                .resources
                .keys()
                .map(ToString::to_string)
                .chain(left.strays.iter().map(|stray| stray.key.to_string()))
                .collect();
            if !remaining.is_empty() {
                bail!(
                    "cluster {} still has AWS resources after the delete: {}; run `skiff delete cluster {} --yes` again",
                    arguments.name,
                    remaining.join(", "),
                    arguments.name
                );
            }
        }
        let removed = store.remove_cluster(&arguments.name).await?;
        context.printer.info(&format!(
            "{}Deleted cluster {}: {} AWS resources and {removed} objects in {}.",
            preview::summary_line(&plan).replace("Plan:", "Done:") + "\n",
            arguments.name,
            plan.changes.len(),
            store.location()
        ));
        Ok(ExitCode::SUCCESS)
    }
    .await;
    if let Some(lock) = lock {
        if let Err(error) = lock.release().await {
            tracing::warn!("releasing the cluster lock failed (it expires by itself): {error}");
        }
    }
    result
}

async fn unregister(
    context: &Context,
    store: &skiff_state::StateStore,
    arguments: &DeleteClusterArgs,
    spec: &skiff_state::StoredSpec,
) -> anyhow::Result<ExitCode> {
    if !arguments.yes {
        context.printer.info(&format!(
            "Would remove cluster {} ({} instance groups, revision {}) and its history, recorded state and secrets from {}.\n\
             AWS resources are left as they are. Run again with --yes to remove it.",
            arguments.name,
            spec.bundle.instance_groups.len(),
            spec.revision.serial,
            store.location()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    // Under the lock, so that no update is halfway through when the spec goes.
    let lock = store
        .lock(&arguments.name, "delete cluster --unregister")
        .await
        .with_context(|| format!("cannot unregister cluster {}", arguments.name))?;
    let removed = store.remove_cluster(&arguments.name).await;
    let _ = lock.release().await;
    let removed = removed?;
    context.printer.info(&format!(
        "Removed cluster {} from {} ({removed} objects). AWS resources were not touched.",
        arguments.name,
        store.location()
    ));
    Ok(ExitCode::SUCCESS)
}
