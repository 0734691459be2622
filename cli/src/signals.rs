//! Signals during an apply: the first Ctrl-C or SIGTERM stops starting new
//! changes (those in flight finish and are recorded); the second exits at
//! once (the recorded state and the resources' tags still let the next run
//! continue safely).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::printer::Printer;

/// Watches for signals until aborted; sets `stop` on the first.
pub fn watch(stop: Arc<AtomicBool>, printer: Printer) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interrupts = 0;
        loop {
            #[cfg(unix)]
            {
                let mut terminate =
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(signal) => signal,
                        Err(_) => return,
                    };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            #[cfg(not(unix))]
            {
                if tokio::signal::ctrl_c().await.is_err() {
                    return;
                }
            }
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
