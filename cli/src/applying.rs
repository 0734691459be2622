//! What the commands that apply a plan share on the terminal: the progress
//! of each change, signals, and the closing lines.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use skiff_engine::apply::{Applied, ApplyRun};
use skiff_plans::Plan;

use crate::context::Context;
use crate::progress::ApplyProgress;
use crate::signals;

/// An apply's progress display and signal watch, for one plan.
pub struct Display {
    progress: Arc<ApplyProgress>,
    signals: tokio::task::JoinHandle<()>,
}

impl Display {
    /// Starts watching signals; returns the run settings for the engine.
    pub fn start(context: &Context, plan: &Plan, parallelism: usize) -> (Display, ApplyRun) {
        let progress = Arc::new(ApplyProgress::new(
            plan.changes.len(),
            context.printer.is_terminal(),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let signals = signals::watch(stop.clone(), context.printer.clone());
        let run = ApplyRun {
            parallelism,
            stop,
            reporter: progress.clone(),
        };
        (Display { progress, signals }, run)
    }

    /// Ends the display (whatever the outcome).
    pub fn finish(self) {
        self.progress.finish();
        self.signals.abort();
    }
}

/// Says what a complete apply did and what to do next.
pub fn report_applied(context: &Context, plan: &Plan, applied: &Applied) {
    context.printer.info(&format!(
        "Applied {} changes to cluster {} in {:.1}s.",
        applied.report.succeeded.len(),
        plan.cluster,
        applied.elapsed.as_secs_f64()
    ));
    if !plan.rolling_updates.is_empty() {
        let groups: Vec<&str> = plan
            .rolling_updates
            .iter()
            .map(|need| need.group.as_str())
            .collect();
        context.printer.info(&format!(
            "Instance groups {} now launch new instances with the new configuration; replace the running ones with `skiff rolling-update cluster {}`.",
            groups.join(", "),
            plan.cluster
        ));
        for headline in crate::preview::version_headlines(plan) {
            context.printer.info(&headline);
        }
    }
}
