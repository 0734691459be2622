//! The cluster lock: one operation at a time may change a cluster's cloud
//! resources.
//!
//! The lock is an object (`<cluster>/lock.json`) created with
//! `If-None-Match: *`, so exactly one of many concurrent takers wins. The
//! holder keeps it alive by renewing a lease with conditional writes; a
//! holder that cannot renew is told to stop (see [`LockGuard::lost`]). A
//! holder that dies (even with SIGKILL) stops renewing, and once its lease
//! has run out the next operation takes the lock over with a warning, so no
//! lock stays stuck and no one has to clean up by hand.
//!
//! Expiry compares the holder's last renewal time with the taker's clock, so
//! the machines sharing a store need roughly synchronised clocks (as AWS
//! request signing does anyway); the lease is long compared with usual skew.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::{watch, Mutex};

use crate::error::{Result, StoreError};
use crate::identity::Actor;
use crate::layout;
use crate::objects::{ObjectStore, Precondition, PutOptions, Version};

/// The lease when none is configured.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// The environment variable that overrides the lease (e.g. `20s`, `5m`).
pub const LEASE_ENV: &str = "SKIFF_LOCK_LEASE";

/// What the lock object holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockInfo {
    /// A unique ID, needed to unlock by hand.
    pub id: String,
    /// The cluster.
    pub cluster: String,
    /// What the holder is doing, e.g. `update cluster`.
    pub operation: String,
    /// Who holds it.
    pub holder: Actor,
    /// When it was taken (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the holder last renewed it (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub renewed_at: OffsetDateTime,
    /// How long after the last renewal the lock counts as abandoned.
    pub lease_seconds: u64,
    /// The holder's skiff version.
    pub skiff_version: String,
}

impl LockInfo {
    /// When the lease runs out.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.renewed_at + Duration::from_secs(self.lease_seconds)
    }

    /// Whether the lease has run out.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now > self.expires_at()
    }
}

/// The error of a lock that another operation holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHeld {
    /// The current holder's lock.
    pub info: LockInfo,
    /// How long the taker waited for it (zero: it did not wait).
    pub waited: Duration,
}

impl fmt::Display for LockHeld {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = &self.info;
        write!(
            formatter,
            "cluster {:?} is locked by {} for {:?} since {} (lock ID {}, lease renewed {}, expires {} unless renewed). \
             Wait for it to finish; if that process is gone, the lock frees itself when the lease expires, \
             or run `skiff state unlock {} --lock-id {}`",
            info.cluster,
            info.holder,
            info.operation,
            rfc3339(info.created_at),
            info.id,
            rfc3339(info.renewed_at),
            rfc3339(info.expires_at()),
            info.cluster,
            info.id
        )?;
        if self.waited.is_zero() {
            write!(formatter, ", or wait for it with --lock-timeout (e.g. 5m)")
        } else {
            write!(
                formatter,
                "; waited {} for it (--lock-timeout)",
                humantime::format_duration(Duration::from_secs(self.waited.as_secs()))
            )
        }
    }
}

/// A time as RFC 3339 text (`2026-12-02T00:56:08Z`), to the second.
pub fn rfc3339(time: OffsetDateTime) -> String {
    let time = time.replace_nanosecond(0).unwrap_or(time);
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| time.to_string())
}

/// The lease to use: `SKIFF_LOCK_LEASE` or the default.
pub fn configured_lease() -> Duration {
    std::env::var(LEASE_ENV)
        .ok()
        .and_then(|text| parse_duration(&text))
        .filter(|lease| *lease >= Duration::from_secs(1))
        .unwrap_or(DEFAULT_LEASE)
}

fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|character: char| !character.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let value: u64 = number.parse().ok()?;
    let seconds = match unit {
        "" | "s" => value,
        "m" => value * 60,
        "h" => value * 3600,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

/// Reads the lock of a cluster, if any.
pub async fn read(store: &dyn ObjectStore, cluster: &str) -> Result<Option<(LockInfo, Version)>> {
    let key = layout::lock(cluster);
    let Some(object) = store.get(&key).await? else {
        return Ok(None);
    };
    let info: LockInfo =
        serde_json::from_slice(&object.bytes).map_err(|error| StoreError::Corrupt {
            key: key.clone(),
            message: error.to_string(),
        })?;
    Ok(Some((info, object.version)))
}

/// A held lock. Renews itself in the background until released or dropped.
#[derive(Debug)]
pub struct LockGuard {
    store: Arc<dyn ObjectStore>,
    info: LockInfo,
    version: Arc<Mutex<Version>>,
    lost: watch::Receiver<Option<String>>,
    renewer: tokio::task::JoinHandle<()>,
    /// Set once [`LockGuard::release`] has removed the lock.
    released: std::sync::atomic::AtomicBool,
    /// The lock this one took over because its lease had expired.
    pub took_over: Option<LockInfo>,
    /// The lock hint this holder writes ([`layout::lock_hint`]) in the
    /// background, so that taking the lock costs one round trip; removed
    /// with the lock if nobody replaced it since.
    hint: Mutex<HintWrite>,
}

/// The lock hint's write: in flight, then its version (`None`: it failed).
#[derive(Debug)]
enum HintWrite {
    Pending(tokio::task::JoinHandle<Option<Version>>),
    Done(Option<Version>),
}

impl LockGuard {
    /// The lock's content.
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// Fails with [`StoreError::LockLost`] if the lock can no longer be
    /// trusted. Call it before every change to the cloud.
    pub fn ensure_held(&self) -> Result<()> {
        match self.lost.borrow().as_ref() {
            None => Ok(()),
            Some(reason) => Err(StoreError::LockLost {
                cluster: self.info.cluster.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// Resolves when the lock is lost, with the reason; never resolves while
    /// it is held. Select on it in long operations.
    pub async fn lost(&self) -> String {
        let mut receiver = self.lost.clone();
        loop {
            if let Some(reason) = receiver.borrow().clone() {
                return reason;
            }
            if receiver.changed().await.is_err() {
                return "the lock renewal stopped".to_string();
            }
        }
    }

    /// Releases the lock (a conditional delete, so a lock that was taken
    /// over by someone else is left alone). Once it has succeeded, later
    /// calls do nothing: whoever finishes first may release.
    pub async fn release(&self) -> Result<()> {
        // Taking the version waits for a renewal in flight (the renewer holds
        // it across its write), so the renewer is never cancelled halfway
        // through a write whose new version would then be unknown here.
        let version = self.version.lock().await;
        if self.released.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        self.renewer.abort();
        let result = self.remove(&version).await;
        if result.is_ok() {
            self.released
                .store(true, std::sync::atomic::Ordering::SeqCst);
            if let Some(hint) = self.hint_version().await {
                remove_hint(self.store.as_ref(), &self.info.cluster, hint).await;
            }
        }
        result
    }

    /// The version of the lock hint this holder wrote, once its write is
    /// over (`None`: it failed).
    pub async fn hint_version(&self) -> Option<Version> {
        let mut hint = self.hint.lock().await;
        if let HintWrite::Pending(write) = &mut *hint {
            *hint = HintWrite::Done(write.await.ok().flatten());
        }
        match &*hint {
            HintWrite::Done(version) => version.clone(),
            HintWrite::Pending(_) => None,
        }
    }

    async fn remove(&self, version: &Version) -> Result<()> {
        let key = layout::lock(&self.info.cluster);
        match self
            .store
            .delete(&key, Precondition::Matches(version.clone()))
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict { .. }) => {
                // Changed since our last write: remove it only if it is
                // still ours; someone else's lock stays.
                match read(self.store.as_ref(), &self.info.cluster).await? {
                    Some((held, current)) if held.id == self.info.id => {
                        match self
                            .store
                            .delete(&key, Precondition::Matches(current))
                            .await
                        {
                            Ok(()) | Err(StoreError::Conflict { .. }) => Ok(()),
                            Err(error) => Err(error),
                        }
                    }
                    _ => Ok(()),
                }
            }
            Err(error) => Err(error),
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Without an explicit release the lease simply runs out.
        self.renewer.abort();
    }
}

/// Takes the lock of `cluster` for `operation`, failing fast with
/// [`StoreError::Locked`] when another live operation holds it.
pub async fn acquire(
    store: Arc<dyn ObjectStore>,
    cluster: &str,
    operation: &str,
    actor: &Actor,
    lease: Duration,
) -> Result<LockGuard> {
    let key = layout::lock(cluster);
    let created = now();
    let info = LockInfo {
        id: uuid::Uuid::new_v4().to_string(),
        cluster: cluster.to_string(),
        operation: operation.to_string(),
        holder: actor.clone(),
        created_at: created,
        renewed_at: created,
        lease_seconds: lease.as_secs().max(1),
        skiff_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let body = serde_json::to_vec_pretty(&info).map_err(|error| StoreError::Corrupt {
        key: key.clone(),
        message: error.to_string(),
    })?;
    // A few rounds: the holder may release between our create and our read.
    for _ in 0..5 {
        match store
            .put(
                &key,
                body.clone(),
                Precondition::DoesNotExist,
                PutOptions::default(),
            )
            .await
        {
            Ok(version) => {
                return Ok(start(store, info, version, None));
            }
            Err(StoreError::Conflict { .. }) => {}
            Err(error) => return Err(error),
        }
        let Some((held, version)) = read(store.as_ref(), cluster).await? else {
            continue;
        };
        if !held.is_expired(now()) {
            return Err(StoreError::Locked(Box::new(LockHeld {
                info: held,
                waited: Duration::ZERO,
            })));
        }
        // The lease ran out: take over, conditionally, so that of several
        // takers exactly one wins.
        match store
            .put(
                &key,
                body.clone(),
                Precondition::Matches(version),
                PutOptions::default(),
            )
            .await
        {
            Ok(version) => {
                tracing::info!(
                    "took over the lock of cluster {cluster:?}: {} held it for {:?} and its lease expired at {}",
                    held.holder,
                    held.operation,
                    held.expires_at()
                );
                return Ok(start(store, info, version, Some(held)));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(error) => return Err(error),
        }
    }
    match read(store.as_ref(), cluster).await? {
        Some((held, _)) => Err(StoreError::Locked(Box::new(LockHeld {
            info: held,
            waited: Duration::ZERO,
        }))),
        None => Err(StoreError::Conflict {
            what: format!("the lock of cluster {cluster:?}"),
            key,
        }),
    }
}

/// How often a waiting taker looks at a held lock again: a released lock is
/// taken within this long (one read and one conditional create per look).
pub const WAIT_POLL: Duration = Duration::from_millis(500);

/// Takes the lock of `cluster` like [`acquire`], but while another live
/// operation holds it, waits up to `timeout` (Terraform's `-lock-timeout`):
/// it looks again every [`WAIT_POLL`] and at the moment the holder's lease
/// runs out, so a released lock is taken at once and a killed holder's as
/// soon as its lease expires. `waiting` is called with the holder's lock
/// when the wait starts and each time the holder changes. A zero timeout
/// fails at once, as [`acquire`] does; after the timeout the error is
/// [`StoreError::Locked`] with how long it waited.
pub async fn acquire_waiting(
    store: Arc<dyn ObjectStore>,
    cluster: &str,
    operation: &str,
    actor: &Actor,
    lease: Duration,
    timeout: Duration,
    waiting: &(dyn Fn(&LockInfo) + Send + Sync),
) -> Result<LockGuard> {
    let started = tokio::time::Instant::now();
    let mut last_holder: Option<String> = None;
    loop {
        let held = match acquire(store.clone(), cluster, operation, actor, lease).await {
            Err(StoreError::Locked(held)) => held,
            other => return other,
        };
        let waited = started.elapsed();
        if waited >= timeout {
            return Err(StoreError::Locked(Box::new(LockHeld {
                info: held.info,
                // Zero says "did not wait" (the error then names the flag).
                waited: if timeout.is_zero() {
                    Duration::ZERO
                } else {
                    waited
                },
            })));
        }
        if last_holder.as_deref() != Some(held.info.id.as_str()) {
            waiting(&held.info);
            last_holder = Some(held.info.id.clone());
        }
        // Expiry is judged to the second (`now() > expires_at`): look again
        // just after the second in which it runs out.
        let until_expiry = (held.info.expires_at() + Duration::from_secs(1)
            - OffsetDateTime::now_utc())
        .try_into()
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_millis(50));
        let pause = WAIT_POLL.min(until_expiry).min(timeout - waited);
        tokio::time::sleep(pause).await;
    }
}

fn start(
    store: Arc<dyn ObjectStore>,
    info: LockInfo,
    version: Version,
    took_over: Option<LockInfo>,
) -> LockGuard {
    let version = Arc::new(Mutex::new(version));
    let (sender, receiver) = watch::channel(None);
    let renewer = tokio::spawn(renew(store.clone(), info.clone(), version.clone(), sender));
    let (hint_store, hint_info) = (store.clone(), info.clone());
    LockGuard {
        store,
        info,
        version,
        lost: receiver,
        renewer,
        released: std::sync::atomic::AtomicBool::new(false),
        took_over,
        hint: Mutex::new(HintWrite::Pending(tokio::spawn(async move {
            write_hint(hint_store.as_ref(), &hint_info).await
        }))),
    }
}

/// Writes the hint that `info`'s cluster is locked, once the lock is held.
/// Best effort: without it only `get clusters` misses the lock, so a
/// failure is a warning, never a failed operation.
async fn write_hint(store: &dyn ObjectStore, info: &LockInfo) -> Option<Version> {
    let key = layout::lock_hint(&info.cluster);
    match store
        .put(
            &key,
            info.id.clone().into_bytes(),
            Precondition::None,
            PutOptions::default(),
        )
        .await
    {
        Ok(version) => Some(version),
        Err(error) => {
            tracing::warn!(
                "could not write the lock hint {key:?} (`get clusters` will not show this lock): {error}"
            );
            None
        }
    }
}

/// Removes a lock hint if it is still the version given (a holder that
/// took the lock since has replaced it, and its hint stays).
async fn remove_hint(store: &dyn ObjectStore, cluster: &str, version: Version) {
    let key = layout::lock_hint(cluster);
    match store.delete(&key, Precondition::Matches(version)).await {
        Ok(()) | Err(StoreError::Conflict { .. }) => {}
        Err(error) => tracing::warn!("could not remove the lock hint {key:?}: {error}"),
    }
}

/// The clusters whose lock may be held: those with a lock hint.
pub async fn hinted(store: &dyn ObjectStore) -> Result<Vec<String>> {
    let keys = store.list(layout::LOCK_HINTS_FOLDER).await?;
    Ok(keys
        .into_iter()
        .filter_map(|key| {
            key.strip_prefix(layout::LOCK_HINTS_FOLDER)
                .map(str::to_string)
        })
        .filter(|cluster| !cluster.is_empty() && !cluster.contains('/'))
        .collect())
}

/// Renews the lease every third of it. A renewal that finds the lock
/// changed means someone took it over: stop at once. Failures to reach the
/// store are retried until the lease would run out, then the lock counts as
/// lost, because another operation may take it from then on.
async fn renew(
    store: Arc<dyn ObjectStore>,
    mut info: LockInfo,
    version: Arc<Mutex<Version>>,
    lost: watch::Sender<Option<String>>,
) {
    let lease = Duration::from_secs(info.lease_seconds);
    let interval = (lease / 3).max(Duration::from_millis(300));
    let key = layout::lock(&info.cluster);
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(interval).await;
        info.renewed_at = now();
        let Ok(body) = serde_json::to_vec_pretty(&info) else {
            let _ = lost.send(Some("the lock could not be serialized".to_string()));
            return;
        };
        // Held across the write: `release` waits for it, so a renewal is
        // never cut off after reaching the store but before its new version
        // is known.
        let mut current = version.lock().await;
        match store
            .put(
                &key,
                body,
                Precondition::Matches(current.clone()),
                PutOptions::default(),
            )
            .await
        {
            Ok(new_version) => {
                *current = new_version;
                drop(current);
                last_renewed = tokio::time::Instant::now();
            }
            Err(StoreError::Conflict { .. }) => {
                let _ = lost.send(Some("someone else took it over or removed it".to_string()));
                return;
            }
            Err(error) => {
                tracing::warn!(
                    "renewing the lock of cluster {:?} failed: {error}",
                    info.cluster
                );
                if last_renewed.elapsed() + interval >= lease {
                    let _ = lost.send(Some(format!(
                        "its lease could not be renewed in time: {error}"
                    )));
                    return;
                }
            }
        }
    }
}

/// Removes the lock of `cluster` if its ID is `id`.
pub async fn unlock(store: &dyn ObjectStore, cluster: &str, id: &str) -> Result<LockInfo> {
    let key = layout::lock(cluster);
    let Some((held, version)) = read(store, cluster).await? else {
        return Err(StoreError::NotFound {
            what: format!("a lock on cluster {cluster:?}"),
            key,
        });
    };
    if held.id != id {
        return Err(StoreError::WrongLockId {
            cluster: cluster.to_string(),
            held: held.id,
            given: id.to_string(),
        });
    }
    store.delete(&key, Precondition::Matches(version)).await?;
    // The holder's hint goes too, if it is still that holder's.
    if let Some(hint) = store.get(&layout::lock_hint(cluster)).await.ok().flatten() {
        if hint.bytes == held.id.as_bytes() {
            remove_hint(store, cluster, hint.version).await;
        }
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::file::FileStore;

    fn actor(user: &str) -> Actor {
        Actor {
            user: user.to_string(),
            host: "test".to_string(),
            aws_identity: None,
        }
    }

    #[tokio::test]
    async fn one_holder_then_takeover_after_expiry() {
        let folder = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn ObjectStore> = Arc::new(FileStore::open(folder.path()).expect("opens"));
        let first = acquire(
            store.clone(),
            "c1",
            "update cluster",
            &actor("alice"),
            Duration::from_secs(1),
        )
        .await
        .expect("takes");
        let refused = acquire(
            store.clone(),
            "c1",
            "update cluster",
            &actor("bob"),
            Duration::from_secs(1),
        )
        .await;
        match refused {
            Err(StoreError::Locked(held)) => {
                assert_eq!(held.info.holder.user, "alice");
                assert!(held.to_string().contains("alice@test"));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        // Simulate a killed holder: stop renewing without releasing.
        first.renewer.abort();
        tokio::time::sleep(Duration::from_millis(2200)).await;
        let second = acquire(
            store.clone(),
            "c1",
            "update cluster",
            &actor("bob"),
            Duration::from_secs(5),
        )
        .await
        .expect("takes over");
        assert_eq!(
            second
                .took_over
                .as_ref()
                .map(|info| info.holder.user.as_str()),
            Some("alice")
        );
        assert!(
            first.ensure_held().is_ok(),
            "the aborted holder never saw the loss; its next renewal would"
        );
        second.release().await.expect("releases");
        assert!(read(store.as_ref(), "c1").await.expect("reads").is_none());
    }

    async fn hint(store: &dyn ObjectStore, cluster: &str) -> Option<String> {
        store
            .get(&layout::lock_hint(cluster))
            .await
            .expect("reads")
            .map(|object| String::from_utf8(object.bytes).expect("UTF-8"))
    }

    #[tokio::test]
    async fn the_hint_follows_the_holder_through_takeover_release_and_unlock() {
        let folder = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn ObjectStore> = Arc::new(FileStore::open(folder.path()).expect("opens"));
        let first = acquire(
            store.clone(),
            "c1",
            "update cluster",
            &actor("alice"),
            Duration::from_secs(1),
        )
        .await
        .expect("takes");
        assert!(first.hint_version().await.is_some(), "written");
        assert_eq!(
            hint(store.as_ref(), "c1").await,
            Some(first.info().id.clone())
        );
        assert_eq!(hinted(store.as_ref()).await.expect("lists"), ["c1"]);
        // A killed holder leaves its hint; the next holder's replaces it,
        // and the dead holder's late release leaves the new one alone.
        first.renewer.abort();
        tokio::time::sleep(Duration::from_millis(2200)).await;
        let second = acquire(
            store.clone(),
            "c1",
            "update cluster",
            &actor("bob"),
            Duration::from_secs(5),
        )
        .await
        .expect("takes over");
        assert!(second.hint_version().await.is_some(), "written");
        assert_eq!(
            hint(store.as_ref(), "c1").await,
            Some(second.info().id.clone())
        );
        first.release().await.expect("a lost lock releases nothing");
        assert_eq!(
            hint(store.as_ref(), "c1").await,
            Some(second.info().id.clone())
        );
        second.release().await.expect("releases");
        assert_eq!(hint(store.as_ref(), "c1").await, None, "gone with the lock");
        assert!(hinted(store.as_ref()).await.expect("lists").is_empty());
        // `state unlock` removes the holder's hint with its lock.
        let third = acquire(
            store.clone(),
            "c1",
            "update cluster",
            &actor("carol"),
            DEFAULT_LEASE,
        )
        .await
        .expect("takes");
        third.hint_version().await;
        unlock(store.as_ref(), "c1", &third.info().id)
            .await
            .expect("unlocks");
        assert_eq!(hint(store.as_ref(), "c1").await, None);
    }

    #[tokio::test]
    async fn unlock_refuses_a_wrong_id() {
        let folder = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn ObjectStore> = Arc::new(FileStore::open(folder.path()).expect("opens"));
        let guard = acquire(
            store.clone(),
            "c1",
            "update cluster",
            &actor("alice"),
            DEFAULT_LEASE,
        )
        .await
        .expect("takes");
        let wrong = unlock(store.as_ref(), "c1", "not-the-id").await;
        assert!(matches!(wrong, Err(StoreError::WrongLockId { .. })));
        let removed = unlock(store.as_ref(), "c1", &guard.info().id)
            .await
            .expect("unlocks");
        assert_eq!(removed.id, guard.info().id);
    }

    #[tokio::test]
    async fn a_holder_whose_lock_was_taken_learns_it() {
        let folder = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn ObjectStore> = Arc::new(FileStore::open(folder.path()).expect("opens"));
        let guard = acquire(
            store.clone(),
            "c1",
            "update cluster",
            &actor("alice"),
            Duration::from_secs(1),
        )
        .await
        .expect("takes");
        unlock(store.as_ref(), "c1", &guard.info().id.clone())
            .await
            .expect("unlocks");
        let reason = tokio::time::timeout(Duration::from_secs(3), guard.lost())
            .await
            .expect("notices");
        assert!(reason.contains("took it over or removed it"), "{reason}");
        assert!(guard.ensure_held().is_err());
    }

    #[tokio::test]
    async fn a_waiter_takes_a_dead_holders_lock_when_its_lease_runs_out() {
        let folder = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn ObjectStore> = Arc::new(FileStore::open(folder.path()).expect("opens"));
        let dead = acquire(
            store.clone(),
            "c1",
            "update cluster",
            &actor("alice"),
            Duration::from_secs(1),
        )
        .await
        .expect("takes");
        dead.renewer.abort();
        let seen = std::sync::Mutex::new(Vec::new());
        let waiting = |held: &LockInfo| seen.lock().expect("seen").push(held.holder.user.clone());
        let started = std::time::Instant::now();
        let taken = acquire_waiting(
            store.clone(),
            "c1",
            "update cluster",
            &actor("bob"),
            DEFAULT_LEASE,
            Duration::from_secs(30),
            &waiting,
        )
        .await
        .expect("takes over once the lease ran out");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(*seen.lock().expect("seen"), vec!["alice".to_string()]);
        assert_eq!(
            taken
                .took_over
                .as_ref()
                .map(|info| info.holder.user.as_str()),
            Some("alice")
        );

        // A live holder: the timeout passes and the error says how long.
        let refused = acquire_waiting(
            store.clone(),
            "c1",
            "update cluster",
            &actor("carol"),
            DEFAULT_LEASE,
            Duration::from_millis(1200),
            &|_| {},
        )
        .await;
        match refused {
            Err(StoreError::Locked(held)) => {
                assert_eq!(held.info.holder.user, "bob");
                assert!(held.waited >= Duration::from_millis(1200));
                assert!(held.to_string().contains("waited 1s for it"), "{held}");
            }
            other => panic!("expected Locked, got {other:?}"),
        }
    }

    #[test]
    fn lease_durations_parse() {
        assert_eq!(parse_duration("20s"), Some(Duration::from_secs(20)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("soon"), None);
    }
}
