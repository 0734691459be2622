//! `rotate encryption-key`: replacing the key the API servers encrypt
//! Secrets at rest with, without a moment when one of them cannot read a
//! Secret.
//!
//! The procedure is the Kubernetes task "Encrypting Confidential Data at
//! Rest", section "Rotate a decryption key"
//! (kubernetes/website content/en/docs/tasks/administer-cluster/encrypt-data.md),
//! with skiff's store in the place of hand edits on each control-plane host:
//!
//! 1. **added**: a new key goes into `<cluster>/secrets/encryption-config.yaml`
//!    as the *second* key, so every API server can decrypt with it while all
//!    still encrypt with the old one;
//! 2. **promoted**: the new key becomes the first, so new writes use it;
//! 3. **rewritten**: every Secret is replaced unchanged through the API (as
//!    `kubectl get secrets -A -o json | kubectl replace -f -`), which stores
//!    it again under the new key;
//! 4. **retired**: the old keys are removed (`identity` stays last).
//!
//! A configuration step is complete only when every control-plane instance
//! in service or still launching (`must_report`) reports (`<cluster>/etcd/encryption/<instance-id>`) that its
//! API server runs exactly the configuration written (its SHA-256, `loaded:
//! true`): the nodes copy the file and the API server reloads it by itself
//! (`--encryption-provider-config-automatic-reload`). Writing step 2 before
//! every server has loaded step 1 would let one server write Secrets the
//! others cannot read; writing step 4 before step 3 would leave Secrets no
//! server can read.
//!
//! Each phase completed is recorded in `<cluster>/secrets/encryption-rotation`
//! (conditional writes, under the cluster lock) and each step is idempotent,
//! so an interrupted rotation continues from its last recorded phase when
//! the command runs again; it never generates a second new key.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use skiff_api::InstanceGroupRole;
use skiff_plans::names;
use skiff_rollout::kubernetes::{SecretsRewritten, SECRETS_PAGE_SIZE};
use skiff_rollout::GroupOperations;
use skiff_state::encryption::{
    self, EncryptionConfiguration, Key, RotationPhase, RotationProgress, StoredConfig,
    StoredProgress,
};
use skiff_state::{LockGuard, Precondition};
use time::OffsetDateTime;

use crate::cluster::{release, Operation, Session};
use crate::error::{EngineError, Refusal, Result};

/// What `rotate encryption-key` was asked.
#[derive(Debug, Clone)]
pub struct RotateOptions {
    /// How long to wait for every control-plane node to load each new
    /// configuration.
    pub timeout: Duration,
    /// Start a new rotation even though the current key is recent.
    pub force: bool,
    /// A kubeconfig to reach the API with (else skiff's own certificate).
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Set (on Ctrl-C) to stop at the next safe point: between phases,
    /// while waiting for the nodes, between two pages of Secrets. What is
    /// complete stays recorded and the lock is released.
    pub stop: Arc<AtomicBool>,
}

impl Default for RotateOptions {
    fn default() -> Self {
        RotateOptions {
            timeout: Duration::from_secs(600),
            force: false,
            kubeconfig: None,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// A key younger than this is taken for the result of a rotation that just
/// completed: rotating again needs `--force`. The command run twice by
/// mistake (a terminal lost at the end of a rotation) then does nothing.
pub const RECENT_KEY: Duration = Duration::from_secs(3600);

/// The pause between two looks at the nodes' reports.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// What a rotation would do.
#[derive(Debug, Clone)]
pub struct RotatePreview {
    /// The cluster.
    pub cluster: String,
    /// The key names in the stored configuration, in order (the first encrypts).
    pub keys: Vec<String>,
    /// The rotation under way, if any.
    pub under_way: Option<RotationProgress>,
    /// Why `--yes` would refuse, if it would.
    pub refusal: Option<String>,
}

/// What the operator hears while a rotation runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotationEvent {
    /// A rotation under way continues from its last recorded phase.
    Resuming {
        /// The phase recorded.
        phase: RotationPhase,
        /// The key rotated to.
        new_key: String,
        /// Who started it.
        who: String,
    },
    /// A new key was generated (its name; never its material).
    Generated {
        /// The key's name.
        key: String,
    },
    /// A configuration was written to the store.
    ConfigWritten {
        /// The key names, in order.
        keys: Vec<String>,
        /// Its SHA-256.
        sha256: String,
    },
    /// Waiting for control-plane instances to load it.
    Waiting {
        /// The instances not there yet.
        instances: Vec<String>,
    },
    /// Secrets rewritten so far.
    Rewriting(SecretsRewritten),
    /// A phase is complete and recorded.
    PhaseDone(RotationPhase),
}

/// What a completed rotation did.
#[derive(Debug, Clone)]
pub struct Rotated {
    /// The key now in use.
    pub new_key: String,
    /// The keys removed.
    pub old_keys: Vec<String>,
    /// What the rewrite did (zero when it was complete before this run).
    pub secrets: SecretsRewritten,
    /// The phases this run completed (an interrupted run's are not repeated).
    pub phases: Vec<RotationPhase>,
    /// The control-plane instances that loaded the final configuration.
    pub instances: Vec<String>,
    /// How long this run took.
    pub elapsed: Duration,
}

/// Reads the configuration and any rotation under way; changes nothing.
pub async fn preview(
    session: &Session<'_>,
    cluster: &str,
    options: &RotateOptions,
) -> Result<RotatePreview> {
    // The spec must exist: a cluster that is not there has no key.
    session.store.read_spec(cluster).await?;
    let objects = session.store.objects().as_ref();
    let config = read_config(objects, cluster).await?;
    let under_way = read_progress(objects, cluster)
        .await?
        .map(|stored| stored.progress);
    let refusal = match &under_way {
        Some(_) => None,
        None => recent_key_refusal(
            cluster,
            &config.config,
            options.force,
            OffsetDateTime::now_utc(),
        )
        .map(|refusal| refusal.to_string()),
    };
    Ok(RotatePreview {
        cluster: cluster.to_string(),
        keys: config.config.key_names(),
        under_way,
        refusal,
    })
}

/// Runs the rotation under the cluster lock, from its recorded phase (or
/// from the start), to its end.
pub async fn run(
    session: &Session<'_>,
    cluster: &str,
    options: &RotateOptions,
    events: &(dyn Fn(RotationEvent) + Send + Sync),
) -> Result<Rotated> {
    let started = Instant::now();
    let spec = session.store.read_spec(cluster).await?;
    let bundle = &spec.bundle;
    let provider = session.provider(bundle)?;
    // A new key is written to the store: never to a store others can read.
    session
        .require_secure_store(&format!("rotate the encryption key of cluster {cluster}"))
        .await?;
    let lock = session
        .lock(cluster, Operation::RotateEncryptionKey)
        .await?;
    let outcome = async {
        let objects = session.store.objects().as_ref();
        let mut stored = match read_progress(objects, cluster).await? {
            Some(stored) => {
                events(RotationEvent::Resuming {
                    phase: stored.progress.phase,
                    new_key: stored.progress.new_key.clone(),
                    who: stored.progress.who.clone(),
                });
                stored
            }
            None => {
                let config = read_config(objects, cluster).await?;
                let now = OffsetDateTime::now_utc();
                if let Some(refusal) =
                    recent_key_refusal(cluster, &config.config, options.force, now)
                {
                    return Err(refusal.into());
                }
                let mut new_key = encryption::key_name(now);
                if config.config.key(&new_key).is_some() {
                    // Two rotations within a second (with --force): keep names unique.
                    new_key.push_str("-2");
                }
                let progress = RotationProgress {
                    phase: RotationPhase::Started,
                    new_key,
                    old_keys: config.config.key_names(),
                    started: now,
                    who: session.store.actor().await.to_string(),
                    updated: now,
                };
                lock.ensure_held()?;
                encryption::write_progress(objects, cluster, &progress, Precondition::DoesNotExist)
                    .await?
            }
        };
        let rotation = Rotation {
            session,
            cluster,
            bundle,
            lock: &lock,
            control_plane: ControlPlane {
                provider: &provider,
                groups: bundle
                    .instance_groups
                    .iter()
                    .filter(|group| group.spec.role == InstanceGroupRole::ControlPlane)
                    .map(|group| names::instance_group_resource(cluster, group.name()))
                    .collect(),
            },
            options,
            events,
        };
        let mut done = Rotated {
            new_key: stored.progress.new_key.clone(),
            old_keys: stored.progress.old_keys.clone(),
            secrets: SecretsRewritten::default(),
            phases: Vec::new(),
            instances: Vec::new(),
            elapsed: Duration::ZERO,
        };
        while stored.progress.phase != RotationPhase::Retired {
            stop_requested(cluster, &stored.progress, options)?;
            let next = rotation
                .complete_next_phase(&stored.progress, &mut done)
                .await?;
            let recorded = RotationProgress {
                phase: next,
                updated: OffsetDateTime::now_utc(),
                ..stored.progress.clone()
            };
            lock.ensure_held()?;
            stored = encryption::write_progress(
                objects,
                cluster,
                &recorded,
                Precondition::Matches(stored.version.clone()),
            )
            .await?;
            done.phases.push(next);
            events(RotationEvent::PhaseDone(next));
        }
        lock.ensure_held()?;
        encryption::delete_progress(objects, cluster, &stored.version).await?;
        done.elapsed = started.elapsed();
        Ok(done)
    }
    .await;
    release(&lock).await;
    outcome
}

/// What every phase of one run needs.
struct Rotation<'a, 's> {
    session: &'a Session<'s>,
    cluster: &'a str,
    bundle: &'a skiff_api::document::ClusterBundle,
    lock: &'a LockGuard,
    control_plane: ControlPlane<'a>,
    options: &'a RotateOptions,
    events: &'a (dyn Fn(RotationEvent) + Send + Sync),
}

impl Rotation<'_, '_> {
    /// Does the phase after `progress.phase` (idempotently: a step an
    /// interrupted run already made is not made again) and returns it, for
    /// the caller to record.
    async fn complete_next_phase(
        &self,
        progress: &RotationProgress,
        done: &mut Rotated,
    ) -> Result<RotationPhase> {
        let (step, next) = match progress.phase {
            RotationPhase::Started => (Step::Add, RotationPhase::Added),
            RotationPhase::Added => (Step::Promote, RotationPhase::Promoted),
            RotationPhase::Promoted => {
                done.secrets = self.rewrite(progress).await?;
                return Ok(RotationPhase::Rewritten);
            }
            RotationPhase::Rewritten => (Step::Retire, RotationPhase::Retired),
            RotationPhase::Retired => return Ok(RotationPhase::Retired),
        };
        let config = ensure_config(
            self.session,
            self.cluster,
            self.lock,
            progress,
            step,
            self.events,
        )
        .await?;
        done.instances = wait_loaded(
            self.session,
            self.cluster,
            &self.control_plane,
            &config,
            progress,
            self.options,
            self.events,
        )
        .await?;
        Ok(next)
    }

    /// Rewrites every Secret, once every API server encrypts with the new key.
    async fn rewrite(&self, progress: &RotationProgress) -> Result<SecretsRewritten> {
        let cluster = self.cluster;
        // The configuration the servers were confirmed to run must still be
        // the promoted one: after a hand edit the rewrite would encrypt with
        // something else.
        let config = read_config(self.session.store.objects().as_ref(), cluster).await?;
        if config.config.key_names().first() != Some(&progress.new_key) {
            return Err(Refusal::EncryptionConfigChanged {
                cluster: cluster.to_string(),
                key: progress.new_key.clone(),
                phase: progress.phase.to_string(),
            }
            .into());
        }
        let api = crate::access::kubernetes_api(
            self.session.store,
            self.bundle,
            self.options.kubeconfig.as_deref(),
        )
        .await?;
        let report = |done: SecretsRewritten| (self.events)(RotationEvent::Rewriting(done));
        api.rewrite_secrets(SECRETS_PAGE_SIZE, &self.options.stop, &report)
            .await
            .map_err(|source| EngineError::Cluster {
                what: format!(
                    "rewriting the Secrets of cluster {cluster} under encryption key {} did not finish (phase {} is recorded: run the same command again to rewrite them all again and continue)",
                    progress.new_key, progress.phase
                ),
                source,
            })
    }
}

/// The configuration change of a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The new key second (generated if the configuration lacks it).
    Add,
    /// The new key first.
    Promote,
    /// The new key alone.
    Retire,
}

/// Makes the stored configuration what `step` needs, writing it only when
/// it is not already; returns what is stored.
async fn ensure_config(
    session: &Session<'_>,
    cluster: &str,
    lock: &LockGuard,
    progress: &RotationProgress,
    step: Step,
    events: &(dyn Fn(RotationEvent) + Send + Sync),
) -> Result<StoredConfig> {
    let objects = session.store.objects().as_ref();
    let stored = read_config(objects, cluster).await?;
    let current = stored.config.keys();
    let others: Vec<Key> = current
        .iter()
        .filter(|key| key.name != progress.new_key)
        .cloned()
        .collect();
    let new_key = match current.iter().find(|key| key.name == progress.new_key) {
        Some(key) => key.clone(),
        // Only adding may make the key: after that, a configuration without
        // it was changed by someone else, and Secrets may already be under it.
        None if step == Step::Add => {
            let key = Key::generate(OffsetDateTime::now_utc()).map_err(|source| {
                EngineError::Keystore {
                    what: format!("cannot generate a new encryption key for cluster {cluster}"),
                    source: skiff_state::keystore::KeystoreError::Randomness { source },
                }
            })?;
            events(RotationEvent::Generated {
                key: progress.new_key.clone(),
            });
            Key {
                name: progress.new_key.clone(),
                secret: key.secret,
            }
        }
        None => {
            return Err(Refusal::EncryptionConfigChanged {
                cluster: cluster.to_string(),
                key: progress.new_key.clone(),
                phase: progress.phase.to_string(),
            }
            .into())
        }
    };
    let wanted: Vec<Key> = match step {
        Step::Add => others.into_iter().chain([new_key]).collect(),
        Step::Promote => std::iter::once(new_key).chain(others).collect(),
        Step::Retire => vec![new_key],
    };
    if wanted == current {
        return Ok(stored);
    }
    let mut config = stored.config.clone();
    config.set_keys(wanted);
    lock.ensure_held()?;
    let written = encryption::write_config(
        objects,
        cluster,
        &config,
        Precondition::Matches(stored.version.clone()),
    )
    .await?;
    events(RotationEvent::ConfigWritten {
        keys: written.config.key_names(),
        sha256: encryption::sha256_hex(&written.bytes),
    });
    Ok(written)
}

/// The control-plane auto scaling groups of a cluster.
struct ControlPlane<'a> {
    provider: &'a skiff_providers::AwsProvider,
    groups: Vec<String>,
}

impl ControlPlane<'_> {
    /// The control-plane instances that run, or are about to run, an API
    /// server, sorted: each must report a configuration before a step
    /// counts as done (see [`must_report`]).
    async fn serving(&self, cluster: &str) -> Result<Vec<(String, skiff_rollout::Lifecycle)>> {
        let views = self
            .provider
            .describe_groups(&self.groups)
            .await
            .map_err(|source| EngineError::Cluster {
                what: format!("reading the control-plane auto scaling groups of cluster {cluster}"),
                source,
            })?;
        let mut instances: Vec<(String, skiff_rollout::Lifecycle)> = views
            .iter()
            .flat_map(|view| view.instances.iter())
            .filter(|instance| must_report(instance))
            .map(|instance| (instance.id.clone(), instance.lifecycle.clone()))
            .collect();
        instances.sort_by(|left, right| left.0.cmp(&right.0));
        Ok(instances)
    }
}

/// Whether a control-plane instance must report that its API server loaded
/// a configuration before the next step may be written. Not only those in
/// service: an instance still launching (`Pending`, held by a launch hook)
/// read the configuration of the moment it booted, and would serve with it
/// once in service, so a step written meanwhile (a promoted key, retired
/// keys) could leave it unable to read Secrets the others write; it must
/// catch up first (the node's sync timer copies every new configuration).
/// One in standby still runs its API server for its own node's
/// components. Left out: instances on their way out, those auto scaling
/// marked unhealthy (it replaces them), and states skiff does not know
/// (warm-pool instances, stopped, cannot report; they read the
/// configuration when they start).
fn must_report(instance: &skiff_rollout::InstanceView) -> bool {
    use skiff_rollout::Lifecycle;
    instance.healthy
        && matches!(
            instance.lifecycle,
            Lifecycle::Pending
                | Lifecycle::PendingWait
                | Lifecycle::PendingProceed
                | Lifecycle::InService
                | Lifecycle::EnteringStandby
                | Lifecycle::Standby
        )
}

/// Waits until every control-plane instance that must (`must_report`) reports that its API
/// server runs `config` (its SHA-256, `loaded: true`); returns them.
async fn wait_loaded(
    session: &Session<'_>,
    cluster: &str,
    control_plane: &ControlPlane<'_>,
    config: &StoredConfig,
    progress: &RotationProgress,
    options: &RotateOptions,
    events: &(dyn Fn(RotationEvent) + Send + Sync),
) -> Result<Vec<String>> {
    let (phase, timeout) = (progress.phase, options.timeout);
    let sha256 = encryption::sha256_hex(&config.bytes);
    let deadline = Instant::now() + timeout;
    let mut last_waiting: Option<Vec<String>> = None;
    loop {
        let instances = control_plane.serving(cluster).await?;
        if instances.is_empty() {
            return Err(Refusal::NoControlPlaneInService {
                cluster: cluster.to_string(),
            }
            .into());
        }
        let reports = encryption::list_reports(session.store.objects().as_ref(), cluster).await?;
        let waiting: Vec<String> = instances
            .iter()
            .map(|(instance, _)| instance)
            .filter(|instance| {
                !reports.iter().any(|report| {
                    &report.instance == *instance && report.sha256 == sha256 && report.loaded
                })
            })
            .cloned()
            .collect();
        if waiting.is_empty() {
            return Ok(instances
                .into_iter()
                .map(|(instance, _)| instance)
                .collect());
        }
        // An instance not in service yet is said to be so: it reports once
        // its bootstrap has run.
        let state = |instance: &str| match instances.iter().find(|(id, _)| id == instance) {
            Some((_, lifecycle)) if *lifecycle != skiff_rollout::Lifecycle::InService => format!(
                "; {}: rerun `skiff rotate encryption-key` once it is InService",
                lifecycle.as_str()
            ),
            _ => String::new(),
        };
        if Instant::now() >= deadline {
            let described = waiting
                .iter()
                .map(|instance| {
                    match reports.iter().find(|report| &report.instance == instance) {
                        None => format!("{instance} (no report{})", state(instance)),
                        Some(report) if report.sha256 != sha256 => format!(
                            "{instance} (holds configuration sha256 {}, checked {})",
                            short(&report.sha256),
                            skiff_state::lock::rfc3339(report.checked)
                        ),
                        Some(report) => format!(
                            "{instance} (has the file, its API server has not loaded it; checked {})",
                            skiff_state::lock::rfc3339(report.checked)
                        ),
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            return Err(EngineError::EncryptionNotLoaded {
                cluster: cluster.to_string(),
                sha256: short(&sha256).to_string(),
                phase: phase.to_string(),
                waited: humantime::format_duration(timeout).to_string(),
                instances: described,
            });
        }
        stop_requested(cluster, progress, options)?;
        if last_waiting.as_ref() != Some(&waiting) {
            events(RotationEvent::Waiting {
                instances: waiting.clone(),
            });
            last_waiting = Some(waiting);
        }
        tokio::time::sleep(
            POLL_INTERVAL
                .min(deadline.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(100)),
        )
        .await;
    }
}

/// Fails with [`EngineError::RotationStopped`] once a stop was requested.
fn stop_requested(
    cluster: &str,
    progress: &RotationProgress,
    options: &RotateOptions,
) -> Result<()> {
    match options.stop.load(Ordering::SeqCst) {
        true => Err(EngineError::RotationStopped {
            cluster: cluster.to_string(),
            key: progress.new_key.clone(),
            phase: progress.phase.to_string(),
        }),
        false => Ok(()),
    }
}

fn short(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

/// The stored configuration, or the refusal that says how to get one.
async fn read_config(
    objects: &dyn skiff_state::ObjectStore,
    cluster: &str,
) -> Result<StoredConfig> {
    match encryption::read_config(objects, cluster).await? {
        Some(Ok(stored)) => Ok(stored),
        Some(Err(source)) => Err(EngineError::EncryptionConfig {
            key: encryption::config_key(cluster),
            source,
        }),
        None => Err(Refusal::NoEncryptionConfig {
            cluster: cluster.to_string(),
        }
        .into()),
    }
}

async fn read_progress(
    objects: &dyn skiff_state::ObjectStore,
    cluster: &str,
) -> Result<Option<StoredProgress>> {
    match encryption::read_progress(objects, cluster).await? {
        Some(Ok(stored)) => Ok(Some(stored)),
        Some(Err(source)) => Err(EngineError::Corrupt {
            key: encryption::rotation_key(cluster),
            source,
        }),
        None => Ok(None),
    }
}

/// With no rotation under way: refuses a key younger than [`RECENT_KEY`]
/// unless forced.
fn recent_key_refusal(
    cluster: &str,
    config: &EncryptionConfiguration,
    force: bool,
    now: OffsetDateTime,
) -> Option<Refusal> {
    if force {
        return None;
    }
    let current = config.keys().first()?;
    let made = key_time(&current.name)?;
    let age = now - made;
    if age.is_negative() || age.unsigned_abs() >= RECENT_KEY {
        return None;
    }
    Some(Refusal::RecentEncryptionKey {
        cluster: cluster.to_string(),
        key: current.name.clone(),
        minutes: age.whole_minutes(),
    })
}

/// When a key named `key-<UTC yyyymmddThhmmssZ>` was made.
fn key_time(name: &str) -> Option<OffsetDateTime> {
    let stamp = name.strip_prefix("key-")?.get(..16)?;
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(stamp, &format)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_made_within_the_hour_needs_force() {
        let config = EncryptionConfiguration::with_secretbox_keys(vec![Key {
            name: "key-20261206T180000Z".to_string(),
            secret: "x".to_string(),
        }]);
        let now = time::macros::datetime!(2026-12-06 18:30:00 UTC);
        let refusal = recent_key_refusal("c1", &config, false, now).expect("refused");
        assert!(refusal.to_string().contains("--force"), "{refusal}");
        assert!(refusal.to_string().contains("30 minutes ago"), "{refusal}");
        assert!(recent_key_refusal("c1", &config, true, now).is_none());
        let later = time::macros::datetime!(2026-12-06 19:00:01 UTC);
        assert!(recent_key_refusal("c1", &config, false, later).is_none());
        assert_eq!(
            key_time("key-20261206T180000Z-2"),
            Some(time::macros::datetime!(2026-12-06 18:00:00 UTC))
        );
        assert_eq!(key_time("mykey"), None);
    }

    #[test]
    fn launching_and_standby_instances_must_report_leaving_and_unhealthy_ones_not() {
        use skiff_rollout::{InstanceView, Lifecycle};
        let instance = |state: &str, healthy: bool| InstanceView {
            id: "i-1".to_string(),
            launch_template: None,
            version: None,
            lifecycle: Lifecycle::from(state),
            healthy,
            private_ip: None,
            private_dns: None,
            etcd_member: false,
        };
        for state in [
            "Pending",
            "Pending:Wait",
            "Pending:Proceed",
            "InService",
            "EnteringStandby",
            "Standby",
        ] {
            assert!(must_report(&instance(state, true)), "{state}");
            assert!(!must_report(&instance(state, false)), "{state}, unhealthy");
        }
        for state in [
            "Terminating",
            "Terminating:Wait",
            "Terminating:Proceed",
            "Terminated",
            "Detaching",
            "Detached",
            "Warmed:Stopped",
        ] {
            assert!(!must_report(&instance(state, true)), "{state}");
        }
    }
}
