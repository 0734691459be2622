//! Progress of an apply: a live bar on a terminal, one plain line per
//! finished change otherwise (logs, CI).

use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressStyle};
use skiff_plans::plan::{Action, ResourceChange};
use skiff_providers::apply::{ChangeError, Reporter};

/// Reports apply progress.
pub struct ApplyProgress {
    bar: Option<ProgressBar>,
    total: usize,
    done: AtomicUsize,
}

impl ApplyProgress {
    /// A reporter for `total` changes; a bar only when `terminal`.
    pub fn new(total: usize, terminal: bool) -> ApplyProgress {
        let bar = terminal.then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{bar:30}] {pos}/{len} {elapsed_precise} {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        ApplyProgress {
            bar,
            total,
            done: AtomicUsize::new(0),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn verb(action: Action, failed: bool) -> &'static str {
    match (action, failed) {
        (_, true) => "failed",
        (Action::Create, _) => "created",
        (Action::Update, _) => "updated",
        (Action::Replace, _) => "replaced",
        (Action::Delete, _) => "deleted",
    }
}

impl Reporter for ApplyProgress {
    fn started(&self, change: &ResourceChange) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{} {}", change.action.symbol(), change.key));
        }
    }

    fn finished(&self, change: &ResourceChange, error: Option<&ChangeError>) {
        let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        let line = match error {
            None => format!(
                "{} {} [{done}/{}]",
                verb(change.action, false),
                change.key,
                self.total
            ),
            Some(error) => format!("failed {}: {error}", change.key),
        };
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                bar.println(line);
            }
            None => eprintln!("{line}"),
        }
    }
}
