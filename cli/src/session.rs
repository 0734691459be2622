//! The engine's view of this invocation: the store, the AWS configuration,
//! the command line, and notes printed as they come.

use std::sync::Arc;

use skiff_engine::{Note, Notes, Session};
use skiff_state::StateStore;

use crate::args::LockWaitArgs;
use crate::context::{command_line, Context};
use crate::printer::Printer;

/// Notes on stderr: warnings as warnings, the rest as information.
struct PrintedNotes(Printer);

impl Notes for PrintedNotes {
    fn note(&self, note: Note) {
        match note.is_warning() {
            true => self.0.warn(&note.to_string()),
            false => self.0.info(&note.to_string()),
        }
    }
}

/// Where the engine's notes go: stderr.
pub fn printed_notes(printer: &Printer) -> Arc<dyn Notes> {
    Arc::new(PrintedNotes(printer.clone()))
}

/// The engine session of a command that talks to AWS.
pub async fn session<'a>(
    context: &'a Context,
    store: &'a StateStore,
) -> anyhow::Result<Session<'a>> {
    Ok(Session {
        store,
        aws: context.aws_config().await?,
        command_line: command_line(),
        notes: printed_notes(&context.printer),
        insecure_store: context.insecure_store(),
        lock_timeout: std::time::Duration::ZERO,
    })
}

/// The engine session of a command that takes the cluster lock: waits up
/// to `--lock-timeout` for a lock another operation holds.
pub async fn locking_session<'a>(
    context: &'a Context,
    store: &'a StateStore,
    lock: &LockWaitArgs,
) -> anyhow::Result<Session<'a>> {
    Ok(Session {
        lock_timeout: lock.lock_timeout,
        ..session(context, store).await?
    })
}
