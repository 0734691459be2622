//! `skiff delete cluster NAME`: list everything of the cluster in AWS (found
//! by its ownership tags and the recorded state) and, with `--yes`, delete
//! it in reverse dependency order, then remove the cluster from the store.
//! With `--unregister`, only forget the cluster and leave AWS alone.

use std::process::ExitCode;

use skiff_engine::delete;

use crate::applying::Display;
use crate::args::DeleteClusterArgs;
use crate::context::Context;
use crate::preview;
use crate::session::locking_session;

pub async fn run(context: &Context, arguments: &DeleteClusterArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let session = locking_session(context, &store, &arguments.lock).await?;
    let name = &arguments.name;
    if arguments.unregister {
        if !arguments.yes {
            let spec = store.read_spec(name).await?;
            context.printer.info(&format!(
                "Would remove cluster {name} ({} instance groups, revision {}) and its history, recorded state and secrets from {}.\n\
                 AWS resources are left as they are. Run again with --yes to remove it.",
                spec.bundle.instance_groups.len(),
                spec.revision.serial,
                store.location()
            ));
            return Ok(ExitCode::SUCCESS);
        }
        let removed = delete::unregister(&session, name).await?;
        context.printer.info(&format!(
            "Removed cluster {name} from {} ({removed} objects). AWS resources were not touched.",
            store.location()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let deletion = delete::plan(&session, name, arguments.yes).await?;
    let plan = deletion.plan.clone();
    if plan.is_empty() {
        context
            .printer
            .info(&format!("Cluster {name} has no AWS resources."));
    } else {
        let mut text = format!(
            "Deleting cluster {name} removes these {} AWS resources:\n",
            plan.changes.len()
        );
        for change in &plan.changes {
            text.push_str(&format!(
                "  - {} ({})\n",
                change.key,
                change.id.as_deref().unwrap_or("?")
            ));
        }
        context.printer.data(&text);
    }
    // The etcd backups go with the cluster's folder: say so before it is too late.
    if store.s3().is_some() {
        let listed = skiff_engine::backups::list(&store, name).await?;
        if let Some(newest) = listed.backups.first() {
            let bytes: u64 = listed.backups.iter().map(|backup| backup.size).sum();
            context.printer.data(&format!(
                "It also deletes the cluster's {} etcd backups ({} bytes, newest {}) in {}: \
                 copy any you want to keep first (`skiff get backups {name}` lists them).\n",
                listed.backups.len(),
                bytes,
                newest.id,
                listed.location
            ));
        }
    }
    if !arguments.yes {
        context.printer.info(&format!(
            "Run `skiff delete cluster {name} --yes` to delete them and remove the cluster from {}.",
            store.location()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let (display, run) = Display::start(context, &plan, arguments.parallelism);
    let deleted = deletion.execute(&session, run).await;
    display.finish();
    let deleted = deleted?;
    context.printer.info(&format!(
        "{}\nDeleted cluster {name}: {} AWS resources and {} objects in {}.",
        preview::summary_line(&plan).replace("Plan:", "Done:"),
        deleted.resources,
        deleted.objects,
        store.location()
    ));
    Ok(ExitCode::SUCCESS)
}
