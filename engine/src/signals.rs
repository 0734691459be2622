//! Ctrl-C and SIGTERM for the whole process, through one listener.
//!
//! Once any part of a process asks tokio for a signal, the signal's default
//! action (ending the process) is gone for the rest of its life: a
//! `select!` on `ctrl_c()` that is over leaves Ctrl-C doing nothing at all.
//! So a command that waited for a lock and then planned, restored or wrote
//! Terraform used to ignore Ctrl-C after the wait. Here one task owns both
//! signals from the start ([`install`]), and the parts of a command that
//! handle them (a lock wait, an apply that stops between changes, a held
//! lock) take a [`Listener`] while they run. A signal that arrives while
//! nobody listens does what the default would have done: the process exits
//! at once, 130 after Ctrl-C and 143 after SIGTERM (128 + the signal's
//! number, as a shell reports a process the signal ended). Exiting leaves
//! at most a held lock behind, whose lease then runs out, exactly as
//! before any handler existed.
//!
//!
//! Before it exits, the listener releases the cluster locks the process
//! holds ([`release_on_exit`]), so the next command need not wait for the
//! lease to run out: a signal while nobody listens comes between changes to
//! the cloud (planning, reading, writing Terraform), never in the middle of
//! an apply, whose own listener stops it between changes instead.
//!
//! Without [`install`] (a library caller, a test) a [`Listener`] asks tokio
//! for the signals itself, as before.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use skiff_state::LockGuard;
use tokio::sync::watch;

/// How long releasing the held locks may delay an exit on a signal.
const RELEASE_BUDGET: Duration = Duration::from_secs(5);

/// The locks the process holds, released before a signal ends it.
static HELD: Mutex<Vec<Weak<LockGuard>>> = Mutex::new(Vec::new());

/// Releases `lock` if a signal ends the process while it is held.
pub fn release_on_exit(lock: &Arc<LockGuard>) {
    if let Ok(mut held) = HELD.lock() {
        held.retain(|lock| lock.strong_count() > 0);
        held.push(Arc::downgrade(lock));
    }
}

/// Releases every lock still held, within [`RELEASE_BUDGET`].
async fn release_held(name: &str) {
    let held: Vec<Arc<LockGuard>> = match HELD.lock() {
        Ok(held) => held.iter().filter_map(Weak::upgrade).collect(),
        Err(_) => Vec::new(),
    };
    if held.is_empty() {
        eprintln!("skiff: {name}: exiting");
        return;
    }
    eprintln!("skiff: {name}: releasing the cluster lock and exiting");
    let releases = futures::future::join_all(held.iter().map(|lock| lock.release()));
    match tokio::time::timeout(RELEASE_BUDGET, releases).await {
        Ok(results) => {
            for error in results.into_iter().filter_map(std::result::Result::err) {
                eprintln!("skiff: could not release the lock ({error}); its lease runs out by itself");
            }
        }
        Err(_) => eprintln!(
            "skiff: the lock was not released within {RELEASE_BUDGET:?}; its lease runs out by itself"
        ),
    }
}

/// The process-wide listener's state.
struct Hub {
    /// Signals received while someone listened, and the last one's name.
    received: watch::Sender<(u64, &'static str)>,
    /// Live [`Listener`]s.
    listeners: AtomicUsize,
}

static HUB: OnceLock<Hub> = OnceLock::new();

/// Takes over Ctrl-C and SIGTERM for the process (idempotent). Call it
/// once, early, inside the tokio runtime.
pub fn install() {
    let mut installed_now = false;
    let hub = HUB.get_or_init(|| {
        installed_now = true;
        Hub {
            received: watch::channel((0, "")).0,
            listeners: AtomicUsize::new(0),
        }
    });
    if !installed_now {
        return;
    }
    tokio::spawn(async move {
        loop {
            let (name, code) = next_os_signal().await;
            if hub.listeners.load(Ordering::SeqCst) == 0 {
                release_held(name).await;
                std::process::exit(code);
            }
            hub.received
                .send_modify(|(count, last)| (*count, *last) = (*count + 1, name));
        }
    });
}

/// The next Ctrl-C or SIGTERM from the OS: its name and the exit code the
/// default action would give.
async fn next_os_signal() -> (&'static str, i32) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut terminate) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return ("Ctrl-C", 130);
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => ("Ctrl-C", 130),
            _ = terminate.recv() => ("SIGTERM", 143),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        ("Ctrl-C", 130)
    }
}

/// A part of a command that handles Ctrl-C and SIGTERM while it lives:
/// while any listener exists, a signal wakes the listeners instead of
/// ending the process. Take it before the work it guards starts.
pub struct Listener {
    /// `None` without [`install`]: ask tokio directly.
    receiver: Option<watch::Receiver<(u64, &'static str)>>,
    /// The hub's count of signals this listener has seen.
    seen: u64,
}

impl Listener {
    /// Starts listening; signals received before this are not seen.
    pub fn new() -> Listener {
        let receiver = HUB.get().map(|hub| hub.received.subscribe());
        let seen = receiver.as_ref().map_or(0, |receiver| receiver.borrow().0);
        // Counted only once `seen` is read: a signal from here on either
        // reaches this listener or, counted before it, ends the process.
        if let Some(hub) = HUB.get() {
            hub.listeners.fetch_add(1, Ordering::SeqCst);
        }
        Listener { receiver, seen }
    }

    /// A signal received and not yet seen by [`Listener::next`], without
    /// waiting (always `None` without [`install`]).
    pub fn pending(&mut self) -> Option<&'static str> {
        let receiver = self.receiver.as_mut()?;
        let (count, name) = *receiver.borrow_and_update();
        (count > self.seen).then(|| {
            self.seen += 1;
            name
        })
    }

    /// The next signal's name (`Ctrl-C` or `SIGTERM`); each signal once,
    /// however quickly they follow each other.
    pub async fn next(&mut self) -> &'static str {
        let Some(receiver) = self.receiver.as_mut() else {
            return next_os_signal().await.0;
        };
        loop {
            let (count, name) = *receiver.borrow_and_update();
            if count > self.seen {
                self.seen += 1;
                return name;
            }
            if receiver.changed().await.is_err() {
                // The hub lives as long as the process.
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Default for Listener {
    fn default() -> Self {
        Listener::new()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if self.receiver.is_some() {
            if let Some(hub) = HUB.get() {
                hub.listeners.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

/// Resolves on the next Ctrl-C or SIGTERM, with its name; listens from the
/// moment it is called.
pub async fn interrupted() -> &'static str {
    Listener::new().next().await
}
