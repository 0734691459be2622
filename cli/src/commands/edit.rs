//! `skiff edit cluster|ig`: the document in `$EDITOR`; the edited text is
//! parsed and validated before anything is stored, and stored only if the
//! spec did not change meanwhile.

use std::process::ExitCode;

use anyhow::{bail, Context as _};
use skiff_api::document::{parse_one, to_yaml, ClusterBundle};
use skiff_api::{Cluster, InstanceGroup};
use skiff_state::{StateStore, StoredSpec};

use crate::args::{EditClusterArgs, EditInstanceGroupArgs};
use crate::context::{command_line, Context};
use crate::{editor, summary};

fn header(what: &str) -> String {
    format!(
        "# Edit the {what} below and save to store it; save it unchanged to cancel.\n\
         # The spec is validated before it is stored: an invalid edit is refused and nothing changes.\n\
         # Lines starting with '#' at the top are ignored.\n"
    )
}

pub async fn cluster(context: &Context, arguments: &EditClusterArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let previous = store.read_spec(&arguments.name).await?;
    let original = to_yaml(&previous.bundle.cluster);
    let edited = editor::edit(
        &format!(
            "{}{original}",
            header(&format!("cluster {}", arguments.name))
        ),
        "cluster",
    )?;
    let text = editor::strip_header(&edited);
    if text.trim() == original.trim() {
        context.printer.info("Edit cancelled: no changes.");
        return Ok(ExitCode::SUCCESS);
    }
    let cluster: Cluster = parse_or_keep(&text, "cluster")?;
    if cluster.name() != arguments.name {
        return Err(rejected(
            &text,
            "cluster",
            &format!(
                "metadata.name: a cluster cannot be renamed ({} -> {})",
                arguments.name,
                cluster.name()
            ),
        ));
    }
    let mut bundle = previous.bundle.clone();
    bundle.cluster = cluster;
    store_edit(context, &store, &previous, bundle, &text, "cluster").await
}

pub async fn instance_group(
    context: &Context,
    arguments: &EditInstanceGroupArgs,
) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let previous = store.read_spec(&arguments.name).await?;
    let Some(group) = previous.bundle.instance_group(&arguments.group) else {
        let known: Vec<&str> = previous
            .bundle
            .instance_groups
            .iter()
            .map(InstanceGroup::name)
            .collect();
        bail!(
            "instance group {:?} not found in cluster {} (groups: {})",
            arguments.group,
            arguments.name,
            known.join(", ")
        );
    };
    let original = to_yaml(group);
    let edited = editor::edit(
        &format!(
            "{}{original}",
            header(&format!("instance group {}", arguments.group))
        ),
        &arguments.group,
    )?;
    let text = editor::strip_header(&edited);
    if text.trim() == original.trim() {
        context.printer.info("Edit cancelled: no changes.");
        return Ok(ExitCode::SUCCESS);
    }
    let group: InstanceGroup = parse_or_keep(&text, &arguments.group)?;
    if group.name() != arguments.group {
        return Err(rejected(
            &text,
            &arguments.group,
            &format!(
                "metadata.name: an instance group cannot be renamed ({} -> {})",
                arguments.group,
                group.name()
            ),
        ));
    }
    let mut bundle = previous.bundle.clone();
    if let Some(slot) = bundle
        .instance_groups
        .iter_mut()
        .find(|existing| existing.name() == arguments.group)
    {
        *slot = group;
    }
    store_edit(context, &store, &previous, bundle, &text, &arguments.group).await
}

fn parse_or_keep<T: serde::de::DeserializeOwned>(text: &str, hint: &str) -> anyhow::Result<T> {
    parse_one::<T>(text).map_err(|error| rejected(text, hint, &error.to_string()))
}

/// The error for a refused edit, keeping the edited text in a file so the work is not lost.
fn rejected(text: &str, hint: &str, problem: &str) -> anyhow::Error {
    let saved = editor::save_rejected(text, hint)
        .map(|path| {
            format!(
                "\nYour edit was saved to {}; fix it and store it with `skiff replace -f {}`.",
                path.display(),
                path.display()
            )
        })
        .unwrap_or_default();
    anyhow::anyhow!("the edit was not stored: {problem}{saved}")
}

async fn store_edit(
    context: &Context,
    store: &StateStore,
    previous: &StoredSpec,
    mut bundle: ClusterBundle,
    text: &str,
    hint: &str,
) -> anyhow::Result<ExitCode> {
    skiff_api::defaults::apply_defaults(&mut bundle);
    match skiff_api::validate(&bundle) {
        Ok(warnings) => {
            for warning in warnings {
                context.printer.warn(&warning.to_string());
            }
        }
        Err(error) => return Err(rejected(text, hint, &error.to_string())),
    }
    if bundle == previous.bundle {
        context.printer.info("Edit cancelled: no changes.");
        return Ok(ExitCode::SUCCESS);
    }
    // The store refuses it too; checked here so the edit is kept in a file.
    if let Err(error) = skiff_api::version::check_change(
        Some(previous.bundle.cluster.spec.kubernetes_version),
        bundle.cluster.spec.kubernetes_version,
    ) {
        return Err(rejected(text, hint, &error.to_string()));
    }
    if let Err(error) =
        crate::documents::check_architectures(context, Some(&previous.bundle), &bundle).await
    {
        return Err(rejected(text, hint, &format!("{error:#}")));
    }
    let summary = summary::describe(&previous.bundle, &bundle);
    let stored = store
        .update_spec(previous, &bundle, &command_line(), &summary)
        .await
        .with_context(|| {
            format!(
                "cannot store the edit of cluster {}",
                previous.bundle.name()
            )
        })?;
    context.printer.info(&format!(
        "Stored: {summary} (revision {}).\nNext: skiff update cluster {}",
        stored.revision.serial,
        bundle.name()
    ));
    Ok(ExitCode::SUCCESS)
}
