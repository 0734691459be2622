//! `skiff rotate encryption-key NAME`: show the phases of a rotation of the
//! key Secrets are encrypted with at rest, and any rotation under way; with
//! `--yes`, run it (or continue it) to its end.

use std::process::ExitCode;

use skiff_engine::rotate::{self, RotateOptions, RotatePreview, Rotated, RotationEvent};
use skiff_state::encryption::RotationPhase;
use skiff_state::lock::rfc3339;

use crate::args::RotateEncryptionKeyArgs;
use crate::context::Context;
use crate::printer::Printer;
use crate::session::locking_session;
use crate::signals;

pub async fn run(
    context: &Context,
    arguments: &RotateEncryptionKeyArgs,
) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let session = locking_session(context, &store, &arguments.lock).await?;
    let options = RotateOptions {
        timeout: arguments.timeout,
        force: arguments.force,
        kubeconfig: arguments.kubeconfig.clone(),
        ..RotateOptions::default()
    };
    let cluster = &arguments.name;
    if !arguments.yes {
        let preview = rotate::preview(&session, cluster, &options).await?;
        context.printer.data(&preview_text(&preview));
        match &preview.refusal {
            Some(refusal) => context.printer.warn(refusal),
            None => context.printer.info(&format!(
                "Nothing was changed. To {}, run the same command with --yes.",
                if preview.under_way.is_some() {
                    "continue the rotation"
                } else {
                    "rotate"
                }
            )),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let printer = context.printer.clone();
    let events = move |event: RotationEvent| print_event(&printer, event);
    // The first Ctrl-C stops at the next safe point (what is complete stays
    // recorded, the lock is released); the second exits at once.
    let signals = signals::watch(options.stop.clone(), context.printer.clone());
    let rotated = rotate::run(&session, cluster, &options, &events).await;
    signals.abort();
    let rotated = rotated?;
    context.printer.data(&summary(cluster, &rotated));
    Ok(ExitCode::SUCCESS)
}

const PHASES: [(RotationPhase, &str); 4] = [
    (
        RotationPhase::Added,
        "a new key is added second; every control-plane API server loads it (can decrypt with it)",
    ),
    (
        RotationPhase::Promoted,
        "the new key becomes first; every API server loads it (encrypts with it)",
    ),
    (
        RotationPhase::Rewritten,
        "every Secret in every namespace is replaced unchanged, so it is stored under the new key",
    ),
    (
        RotationPhase::Retired,
        "the old key is removed; every API server loads the configuration without it",
    ),
];

fn preview_text(preview: &RotatePreview) -> String {
    let mut text = format!(
        "Encryption of Secrets at rest in cluster {}: keys {} (the first encrypts).\n",
        preview.cluster,
        preview.keys.join(", ")
    );
    let done = match &preview.under_way {
        Some(progress) => {
            text.push_str(&format!(
                "A rotation to key {} is under way: started {} by {}, last phase completed: {} ({}).\n",
                progress.new_key,
                rfc3339(progress.started),
                progress.who,
                progress.phase,
                rfc3339(progress.updated)
            ));
            Some(progress.phase)
        }
        None => {
            text.push_str("No rotation is under way. A rotation:\n");
            None
        }
    };
    for (index, (phase, what)) in PHASES.iter().enumerate() {
        let mark = match done {
            Some(done) if done >= *phase => " (done)",
            _ => "",
        };
        text.push_str(&format!(
            "  {}. {:<9}  {what}{mark}\n",
            index + 1,
            phase.as_str()
        ));
    }
    text
}

fn print_event(printer: &Printer, event: RotationEvent) {
    let line = match event {
        RotationEvent::Resuming { phase, new_key, who } => format!(
            "Continuing the rotation to key {new_key} started by {who} (last phase completed: {phase})."
        ),
        RotationEvent::Generated { key } => format!("Generated the new key {key}."),
        RotationEvent::ConfigWritten { keys, sha256 } => format!(
            "Wrote the encryption configuration with keys {} (sha256 {}).",
            keys.join(", "),
            sha256.get(..12).unwrap_or(&sha256)
        ),
        RotationEvent::Waiting { instances } => format!(
            "Waiting for the API servers of {} to load it.",
            instances.join(", ")
        ),
        RotationEvent::Rewriting(done) => format!(
            "Rewrote {} Secret(s) so far ({} written by others meanwhile, {} deleted meanwhile).",
            done.replaced, done.conflicts, done.gone
        ),
        RotationEvent::PhaseDone(phase) => format!("Phase {phase} complete."),
    };
    printer.info(&line);
}

fn summary(cluster: &str, rotated: &Rotated) -> String {
    let phases: Vec<&str> = rotated.phases.iter().map(|phase| phase.as_str()).collect();
    let mut text =
        format!(
        "Rotated the encryption key of cluster {cluster} to {} in {:.0?} (phases run now: {}).\n",
        rotated.new_key,
        rotated.elapsed,
        if phases.is_empty() { "none".to_string() } else { phases.join(", ") }
    );
    if rotated.phases.contains(&RotationPhase::Rewritten) {
        text.push_str(&format!(
            "Secrets rewritten: {} ({} written by others after the promotion, {} deleted meanwhile).\n",
            rotated.secrets.replaced, rotated.secrets.conflicts, rotated.secrets.gone
        ));
    }
    text.push_str(&format!(
        "Removed key(s): {}. Control-plane API servers running the final configuration: {}.\n",
        rotated.old_keys.join(", "),
        rotated.instances.join(", ")
    ));
    text
}
