//! Applying a plan under the held cluster lock: the intent journal, the
//! executor, the outcomes written behind it, the history's copy of the
//! state, the lock released.
//!
//! The executor (`skiff_providers::apply`) stops starting changes when the
//! caller's stop flag is set (a signal) or the lock is lost; what is in
//! flight finishes and is recorded. Whatever the apply did, the lock is
//! released before this returns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use skiff_plans::Plan;
use skiff_providers::apply::{
    apply as execute, ApplyOptions, ApplyReport, Gate, Reporter, ResourceOperations,
};
use skiff_state::LockGuard;

use crate::cluster::{release, Recorded, Session};
use crate::error::{ApplyFailure, EngineError, Result};
use crate::journal::StateJournal;
use crate::notes::Note;

/// How an apply is run.
pub struct ApplyRun {
    /// Changes in flight at once.
    pub parallelism: usize,
    /// Set by the caller to stop starting changes (those in flight finish
    /// and are recorded).
    pub stop: Arc<AtomicBool>,
    /// Progress of each change.
    pub reporter: Arc<dyn Reporter>,
}

/// A complete apply.
#[derive(Debug)]
pub struct Applied {
    /// What the executor did (everything succeeded).
    pub report: ApplyReport,
    /// How long it took.
    pub elapsed: Duration,
}

/// Applies `plan` under `lock` (held; released before this returns),
/// recording every intent and outcome into `recorded`; `operations` is the
/// cloud (`AwsProvider`, or a fake in tests). Auto scaling groups
/// wait for `before_launch` (the PKI), if given.
pub async fn apply_locked<O: ResourceOperations + Clone + 'static>(
    session: &Session<'_>,
    operations: &O,
    plan: &Plan,
    lock: Arc<LockGuard>,
    recorded: Recorded,
    before_launch: Option<Gate>,
    run: ApplyRun,
) -> Result<Applied> {
    let store = session.store;
    let journal = Arc::new(StateJournal::new(
        store,
        plan,
        lock.clone(),
        recorded.state,
        recorded.version,
    ));
    let writer = journal.start_writer();
    let stop = run.stop.clone();
    let lost = {
        let lock = lock.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let reason = lock.lost().await;
            stop.store(true, Ordering::SeqCst);
            reason
        })
    };
    let stop_check = {
        let stop = stop.clone();
        Arc::new(move || stop.load(Ordering::SeqCst)) as Arc<dyn Fn() -> bool + Send + Sync>
    };
    let started = std::time::Instant::now();
    let report = execute(
        operations,
        plan,
        ApplyOptions {
            parallelism: run.parallelism.max(1),
            before_launch: before_launch.clone(),
        },
        journal.clone(),
        run.reporter.clone(),
        stop_check,
    )
    .await;
    // What the apply waited for, or would have had it launched anything,
    // must be done before the run counts as complete.
    let before_launch = match before_launch {
        Some(gate) => gate.await.err(),
        None => None,
    };
    journal.stop_writer(writer).await;
    let lock_lost = if lost.is_finished() {
        lost.await.ok()
    } else {
        lost.abort();
        None
    };
    let summary = format!(
        "{} of {} changes applied ({})",
        report.succeeded.len(),
        plan.changes.len(),
        counts(plan)
    );
    // Every outcome is written: the history's copy of the state (named by
    // its serial, so it needs no lock) is kept while the lock is released.
    let (snapshot, ()) = tokio::join!(
        journal.snapshot(store, &session.command_line, &summary),
        release(&lock)
    );
    if let Err(error) = snapshot {
        session.note(Note::SnapshotFailed {
            cluster: plan.cluster.clone(),
            error: error.to_string(),
        });
    }
    let elapsed = started.elapsed();
    if report.is_complete() && before_launch.is_none() {
        return Ok(Applied { report, elapsed });
    }
    Err(EngineError::ApplyIncomplete(Box::new(ApplyFailure {
        cluster: plan.cluster.clone(),
        report,
        before_launch,
        lock_lost,
        stopped: stop.load(Ordering::SeqCst),
    })))
}

/// "N to create, N to change, N to replace, N to delete".
pub fn counts(plan: &Plan) -> String {
    let summary = plan.summary;
    format!(
        "{} to create, {} to change, {} to replace, {} to delete",
        summary.create, summary.update, summary.replace, summary.delete
    )
}
