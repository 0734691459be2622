//! Signals during an apply: the first Ctrl-C or SIGTERM stops starting new
//! changes (those in flight finish and are recorded); the second exits at
//! once (the recorded state and the resources' tags still let the next run
//! continue safely). Outside such a watch a signal ends the process at once
//! (`skiff_engine::signals`, installed by `main`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use skiff_engine::signals::Listener;

use crate::printer::Printer;

/// Watches for signals until aborted; sets `stop` on the first.
pub fn watch(stop: Arc<AtomicBool>, printer: Printer) -> tokio::task::JoinHandle<()> {
    // Listening from now: a signal from here on is this watcher's.
    let mut listener = Listener::new();
    tokio::spawn(async move {
        let mut interrupts = 0;
        loop {
            listener.next().await;
            interrupts += 1;
            if interrupts == 1 {
                stop.store(true, Ordering::SeqCst);
                printer.warn("stopping: changes in flight finish and are recorded; interrupt again to exit at once");
            } else {
                printer.warn("exiting now; run the same command again to continue");
                std::process::exit(130);
            }
        }
    })
}
