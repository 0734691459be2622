//! `skiff restore cluster NAME --backup ID`: show what a restore of the
//! control plane from an etcd backup does; with `--yes`, request it and
//! replace every control-plane instance.

use std::process::ExitCode;

use skiff_engine::restore::{self, RestoreOptions, RestorePreview};
use skiff_rollout::kubernetes::Readiness;
use skiff_state::lock::rfc3339;

use crate::args::RestoreClusterArgs;
use crate::commands::backups::human_size;
use crate::context::Context;
use crate::session::locking_session;

pub async fn run(context: &Context, arguments: &RestoreClusterArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    // Before the AWS configuration is loaded: a folder store has no backups.
    skiff_engine::backups::require_backup_store(&store, &arguments.name)?;
    let session = locking_session(context, &store, &arguments.lock).await?;
    let options = RestoreOptions {
        backup: arguments.backup.clone(),
        force: arguments.force,
    };
    let preview = restore::preview(&session, &arguments.name, &options).await?;
    context.printer.data(&preview_text(&preview));
    if !arguments.yes {
        match preview.refused() {
            Some(refusal) => context.printer.warn(&refusal.to_string()),
            None => context.printer.info(&format!(
                "Nothing was changed. To restore, run the same command with --yes, then `skiff validate cluster {} --wait 30m`.",
                arguments.name
            )),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let restored = restore::run(&session, &preview).await?;
    let count: usize = restored
        .terminated
        .iter()
        .map(|group| group.instances.len())
        .sum();
    context.printer.info(&format!(
        "Restore of {} requested; {count} {} instance(s) terminated in {:.0?}. {} Follow with `skiff validate cluster {} --wait 30m`.",
        restored.backup,
        restore::role_text(preview.role),
        restored.elapsed,
        if preview.role == skiff_api::InstanceGroupRole::Etcd {
            "The groups are launching replacements: each restores the backup (or joins the restored members). Then roll the control-plane groups (`skiff rolling-update cluster --force`) so that the API servers restart on the restored data."
        } else {
            "The groups are launching replacements: the first restores the backup, the others join it."
        },
        arguments.name
    ));
    Ok(ExitCode::SUCCESS)
}

fn preview_text(preview: &RestorePreview) -> String {
    let backup = &preview.backup;
    let mut text = format!(
        "Restore the control plane of cluster {} from etcd backup {}:\n  taken    {}\n  revision {}\n  node     {}\n  size     {}\n\n",
        preview.cluster,
        backup.id,
        rfc3339(backup.id.taken_at()),
        backup.id.revision(),
        backup.id.instance(),
        human_size(backup.size),
    );
    if preview.role == skiff_api::InstanceGroupRole::Etcd {
        text.push_str("External etcd: every member's instance will be terminated; each group keeps its size and launches a replacement at the member's address, which restores the backup (all members from the same snapshot):\n");
        for group in &preview.groups {
            text.push_str(&format!(
                "  {} ({}, desired {}): {}\n",
                group.group,
                group.auto_scaling_group,
                group.desired,
                if group.instances.is_empty() {
                    "no running instance".to_string()
                } else {
                    group.instances.join(", ")
                }
            ));
        }
    } else if preview.groups.is_empty() {
        text.push_str("No control-plane auto scaling group exists: nothing will be terminated. The restore is requested in the state store for the next control plane `skiff update cluster --yes` launches.\n");
    } else {
        text.push_str("Every control-plane instance will be terminated; its group keeps its size and launches a replacement:\n");
        for group in &preview.groups {
            let instances = if group.instances.is_empty() {
                "no running instance".to_string()
            } else {
                group.instances.join(", ")
            };
            text.push_str(&format!(
                "  {} ({}, desired {}): {instances}\n",
                group.group, group.auto_scaling_group, group.desired
            ));
        }
    }
    text.push_str(&format!(
        "\n{}\nEvery change made after {} (etcd revision {}) is lost.\n",
        if preview.role == skiff_api::InstanceGroupRole::Etcd {
            "The replacements restore the backup (a late one joins the restored members); the Kubernetes API fails its writes until a majority of them is up. Roll the control-plane groups afterwards (`skiff rolling-update cluster --force`) so that the API servers restart on the restored data."
        } else {
            "The first replacement restores the backup; the others join it one at a time.\nThe Kubernetes API is unavailable until the restored control plane is up."
        },
        rfc3339(backup.id.taken_at()),
        backup.id.revision()
    ));
    match &preview.readiness {
        Readiness::Ready => text.push_str(&format!(
            "\nThe API at {} answers /readyz: the control plane is healthy.{}\n",
            preview.api_server,
            if preview.force {
                " --force: restoring anyway."
            } else {
                ""
            }
        )),
        Readiness::NotReady(reason) => text.push_str(&format!(
            "\nThe API at {} does not answer /readyz ({reason}).\n",
            preview.api_server
        )),
    }
    text
}
