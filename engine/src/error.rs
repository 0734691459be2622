//! The engine's errors: what failed, on which cluster, and what to do.
//!
//! Each variant names the cluster and the step; the cause is its
//! `#[source]`, never repeated in the message (the binary prints the whole
//! chain). [`Refusal`]s are the operator's to fix: skiff checked something
//! before changing anything and said no.

use skiff_providers::apply::{ApplyReport, ChangeError, GateError};
use skiff_providers::ProviderError;
use skiff_rollout::RolloutError;
use skiff_state::StoreError;

/// Results of the engine.
pub type Result<T> = std::result::Result<T, EngineError>;

/// A failed operation.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),

    /// Something was checked before anything changed, and refused.
    #[error(transparent)]
    Refused(#[from] Refusal),

    /// The stored spec does not pass validation (edited by hand in the
    /// store, or by an older skiff).
    #[error("the stored spec of cluster {cluster} is not valid; fix it with `skiff edit cluster {cluster}`")]
    InvalidSpec {
        /// The cluster.
        cluster: String,
        /// What is wrong, field by field.
        #[source]
        source: skiff_api::ValidationError,
    },

    /// Looking up what the spec names (images, hosted zone, shared
    /// network) failed.
    #[error("looking up what the spec of cluster {cluster} refers to")]
    Lookups {
        /// The cluster.
        cluster: String,
        /// The AWS failure.
        #[source]
        source: Box<ProviderError>,
    },

    /// Reading the cluster's AWS resources failed.
    #[error("reading the AWS resources of cluster {cluster}")]
    Refresh {
        /// The cluster.
        cluster: String,
        /// The AWS failure.
        #[source]
        source: Box<ProviderError>,
    },

    /// A spec write refused: an instance group's types or image do not
    /// share one architecture (see [`crate::architecture`]).
    #[error("nothing was stored: an instance group of cluster {cluster} does not fit its machine type's architecture")]
    Architecture {
        /// The cluster.
        cluster: String,
        /// Which group and field, and why.
        #[source]
        source: skiff_plans::PlanError,
    },

    /// The planner refused the spec and what exists.
    #[error("cannot plan cluster {cluster}")]
    Plan {
        /// The cluster.
        cluster: String,
        /// Why.
        #[source]
        source: skiff_plans::PlanError,
    },

    /// The cluster lock could not be taken.
    #[error("cannot {operation} cluster {cluster}")]
    Lock {
        /// What was to be done, e.g. `update`.
        operation: &'static str,
        /// The cluster.
        cluster: String,
        /// Why (held by someone else, the store failed).
        #[source]
        source: StoreError,
    },

    /// The cluster's PKI could not be read or made.
    #[error("cannot prepare the PKI of cluster {cluster} in the state store")]
    Pki {
        /// The cluster.
        cluster: String,
        /// Why.
        #[source]
        source: StoreError,
    },

    /// The addons' index in the store could not be read.
    #[error("cannot read the addons of cluster {cluster} in the state store: {message}")]
    Addons {
        /// The cluster.
        cluster: String,
        /// What failed, naming the object.
        message: String,
    },

    /// The nodes' bootstrap scripts could not be written to the store.
    #[error("cannot write the bootstrap scripts of cluster {cluster} to the state store (instances would not find them at boot)")]
    Scripts {
        /// The cluster.
        cluster: String,
        /// Why.
        #[source]
        source: StoreError,
    },

    /// An apply did not finish: what succeeded, failed and was not
    /// attempted. Every outcome so far is recorded.
    #[error("{}", incomplete_message(.0))]
    ApplyIncomplete(Box<ApplyFailure>),

    /// A rolling update stopped.
    #[error("the rolling update of cluster {cluster} stopped; its progress is recorded: run the same command again to continue")]
    Rollout {
        /// The cluster.
        cluster: String,
        /// Why.
        #[source]
        source: RolloutError,
    },

    /// Reading instance groups or the cluster's Kubernetes API failed
    /// outside a rolling update.
    #[error("{what}")]
    Cluster {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: RolloutError,
    },

    /// An object of the store holds something this skiff cannot read.
    #[error("{key} in the state store is corrupt")]
    Corrupt {
        /// The object key.
        key: String,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },

    /// The cluster's certificates could not be used for API access.
    #[error("{what}")]
    Keystore {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: skiff_state::keystore::KeystoreError,
    },

    /// A local file could not be read or written.
    #[error("{what} {}", path.display())]
    File {
        /// What was being done, e.g. `cannot write the plan to`.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// Work was cancelled before it finished: the process is shutting down.
    #[error("{what} was cancelled: skiff is shutting down")]
    Cancelled {
        /// What was being done.
        what: &'static str,
    },

    /// The cluster's API load balancer does not exist yet.
    #[error("the cluster's load balancer is not created yet: run `skiff update cluster {cluster} --yes`")]
    NotCreated {
        /// The cluster.
        cluster: String,
    },

    /// The cluster's encryption configuration in the store is not one skiff
    /// can rotate.
    #[error("{key} in the state store is not an encryption configuration skiff can rotate; restore it from the bucket's versions (the store has versioning on) or fix it by hand")]
    EncryptionConfig {
        /// The object key.
        key: String,
        /// What is wrong.
        #[source]
        source: skiff_state::encryption::EncryptionConfigError,
    },

    /// Control-plane instances did not report running a new encryption
    /// configuration in time.
    #[error("cluster {cluster}: not every control-plane API server runs the new encryption configuration (sha256 {sha256}...) after {waited}: {instances}. The rotation is recorded at phase {phase} and nothing else changes until they do. Each control-plane node copies the configuration from the state store and reports at <cluster>/etcd/encryption/<instance-id>: look at the skiff services and /var/log/skiff-bootstrap.log on those instances, or replace them (`skiff rolling-update cluster {cluster} --force --instance-group GROUP --yes`: a new instance boots with the stored configuration); then run the same command again (a longer --timeout waits longer)")]
    EncryptionNotLoaded {
        /// The cluster.
        cluster: String,
        /// The configuration's SHA-256, shortened.
        sha256: String,
        /// The phase recorded.
        phase: String,
        /// How long was waited.
        waited: String,
        /// The instances not there, and what each reported.
        instances: String,
    },

    /// A rotation stopped on request.
    #[error("the rotation of cluster {cluster}'s encryption key to {key} stopped on request; the last phase completed, {phase}, is recorded and the cluster lock is released: run the same command again to continue")]
    RotationStopped {
        /// The cluster.
        cluster: String,
        /// The rotation's new key.
        key: String,
        /// The phase recorded.
        phase: String,
    },

    /// A file that should hold a saved plan does not.
    #[error("{} is not a skiff plan file", path.display())]
    NotAPlan {
        /// The file.
        path: std::path::PathBuf,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
}

/// Why an apply stopped short: the executor's report and what else ended it.
#[derive(Debug)]
pub struct ApplyFailure {
    /// The cluster.
    pub cluster: String,
    /// What the executor did.
    pub report: ApplyReport,
    /// The PKI, when instances could not launch because it was not ready.
    pub before_launch: Option<GateError>,
    /// Why the cluster lock was lost, when it was.
    pub lock_lost: Option<String>,
    /// Whether the operator asked to stop.
    pub stopped: bool,
}

fn incomplete_message(failure: &ApplyFailure) -> String {
    let report = &failure.report;
    let mut message = format!(
        "applying the plan of cluster {} did not finish: {} succeeded, {} failed, {} not attempted",
        failure.cluster,
        report.succeeded.len(),
        report.failed.len(),
        report.skipped.len()
    );
    for (key, error) in &report.failed {
        message.push_str(&format!("\n  {key}: {error}"));
    }
    if let Some(error) = &report.journal {
        message.push_str(&format!("\n  {error}"));
    }
    if let Some(error) = &failure.before_launch {
        // Said once: with the groups that waited for it, or here.
        if !report
            .failed
            .iter()
            .any(|(_, failed)| matches!(failed, ChangeError::Launch { .. }))
        {
            message.push_str(&format!("\n  {error}"));
        }
    }
    if let Some(reason) = &failure.lock_lost {
        message.push_str(&format!(
            "\n  stopped because the cluster lock was lost: {reason}"
        ));
    } else if failure.stopped {
        message.push_str("\n  stopped on request; everything created so far is recorded");
    }
    message.push_str(&format!(
        "\nEvery outcome so far is recorded; run `skiff update cluster {} --yes` again to continue.",
        failure.cluster
    ));
    message
}

/// Something skiff checked before changing anything, and refused: each
/// says what to do instead. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The state store is not safe to hold the cluster's secrets.
    #[error("refusing to {what}: the state store {store} is not safe to hold cluster secrets (whoever reads it owns the cluster). Nothing was written. Fix:{findings}\nThen run the command again; `skiff state check` shows every finding. If you cannot change the bucket and accept the risk, pass --allow-insecure-store")]
    InsecureStore {
        /// What was to be done, e.g. `update cluster c1.example.com`.
        what: String,
        /// The store.
        store: String,
        /// The refusal-level findings, one a line with its fix.
        findings: String,
    },

    /// The wait for the cluster lock (`--lock-timeout`) was interrupted.
    #[error("stopped waiting for the lock of cluster {cluster} ({signal}); nothing was changed")]
    LockWaitInterrupted {
        /// The cluster.
        cluster: String,
        /// The signal, e.g. `Ctrl-C`.
        signal: &'static str,
    },

    /// The credentials are for another AWS account than the cluster's.
    #[error("cluster {cluster} is in AWS account {cluster_account}, but the AWS credentials are for account {caller_account} ({identity}): set AWS_PROFILE to a profile of account {cluster_account} (or its AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY); nothing was changed")]
    OtherAccount {
        /// The cluster.
        cluster: String,
        /// The account its recorded resources are in.
        cluster_account: String,
        /// The credentials' account.
        caller_account: String,
        /// The credentials' identity (ARN).
        identity: String,
    },

    /// The spec has no region.
    #[error(
        "spec.region of cluster {cluster} is empty; set it or give the subnets availability zones"
    )]
    NoRegion {
        /// The cluster.
        cluster: String,
    },

    /// Applying needs a store nodes can read their secrets from.
    #[error("cannot apply cluster {cluster}: nodes read their bootstrap secrets from the state store at boot, so applying needs an s3:// state store (this one is {location}). Nothing was changed; move the cluster with `skiff get cluster {cluster} -o yaml --full` and `skiff create -f` against an s3:// store (--state or SKIFF_STATE_STORE)")]
    NeedsS3Store {
        /// The cluster.
        cluster: String,
        /// The store in use.
        location: String,
    },

    /// Applying would make a group's replacements skip a Kubernetes minor
    /// (or go down) from the version its instances run.
    #[error("cannot apply cluster {cluster}: instance group {group} runs Kubernetes {running}{pending}, and its new launch template would install {to}, which {what}; kubeadm upgrades one minor at a time, never down. Nothing was changed. Finish the rolling update first (`skiff rolling-update cluster {cluster} --yes`), then apply {to}")]
    VersionStepTooLarge {
        /// The cluster.
        cluster: String,
        /// The group.
        group: String,
        /// What its instances run.
        running: String,
        /// `" (its rolling update to X has not run)"` or empty.
        pending: String,
        /// What the new template installs.
        to: String,
        /// `skips a minor` or `is a downgrade`.
        what: String,
    },

    /// The cluster is applied through Terraform.
    #[error("cluster {cluster} is managed by Terraform (its files were written by `skiff update cluster {cluster} --target terraform --out DIR`), so skiff does not apply changes to it directly. Regenerate the Terraform with that command and run `terraform apply` in DIR; or, to switch back to direct applies (first stop applying it with Terraform), run `skiff update cluster {cluster} --target direct --force-target --yes`. Nothing was changed")]
    ManagedByTerraform {
        /// The cluster.
        cluster: String,
    },

    /// Deleting a cluster Terraform manages would leave its state wrong.
    #[error("cluster {cluster} is managed by Terraform: deleting its resources here would leave Terraform's state describing resources that no longer exist. Run `terraform destroy` in the folder `skiff update cluster {cluster} --target terraform --out DIR` wrote, then `skiff delete cluster {cluster} --unregister --yes` to remove it from the store. Nothing was deleted")]
    DeleteManagedByTerraform {
        /// The cluster.
        cluster: String,
    },

    /// The spec moved to another region while waiting for the lock.
    #[error("the spec of cluster {cluster} moved to another region while this command waited for the lock; nothing was changed: run it again")]
    RegionMoved {
        /// The cluster.
        cluster: String,
    },

    /// A saved plan in a format this skiff does not read.
    #[error("{file} has plan format {found}, this skiff reads format {expected}; make a new plan with `skiff update cluster {cluster} --out FILE`")]
    PlanFormat {
        /// The plan file.
        file: String,
        /// Its format.
        found: u32,
        /// The format this skiff reads.
        expected: u32,
        /// The cluster it is for.
        cluster: String,
    },

    /// A saved plan made against another recorded state.
    #[error("the plan in {file} is stale: it was made at recorded state serial {planned_serial} (lineage {planned_lineage}), but the state of cluster {cluster} is now at serial {current_serial} (lineage {current_lineage}): someone applied changes since. Nothing was changed; make a new plan with `skiff update cluster {cluster} --out {file}`")]
    StaleState {
        /// The plan file.
        file: String,
        /// The cluster.
        cluster: String,
        /// The serial the plan was made at.
        planned_serial: u64,
        /// The lineage the plan was made at (`none`: no state).
        planned_lineage: String,
        /// The serial now.
        current_serial: u64,
        /// The lineage now.
        current_lineage: String,
    },

    /// A saved plan made from another spec revision.
    #[error("the plan in {file} is stale: it was made from spec revision {planned}, but cluster {cluster} is now at revision {current}. Nothing was changed; make a new plan")]
    StaleSpec {
        /// The plan file.
        file: String,
        /// The cluster.
        cluster: String,
        /// The revision the plan was made from.
        planned: u64,
        /// The revision now.
        current: u64,
    },

    /// Terraform would create again what skiff applied directly.
    #[error("cluster {cluster} has {resources} AWS resources that skiff applied directly, and Terraform would try to create them again. Nothing was written. Delete the cluster first (`skiff delete cluster {cluster} --yes`), or run again with --force-target and `terraform import` every resource before `terraform apply`")]
    AppliedDirectly {
        /// The cluster.
        cluster: String,
        /// How many resources skiff recorded.
        resources: usize,
    },

    /// A rolling update named a group the cluster does not have.
    #[error("--instance-group: {group:?} is not a group of cluster {cluster} ({known})")]
    UnknownGroup {
        /// The name given.
        group: String,
        /// The cluster.
        cluster: String,
        /// The groups it has, comma-separated.
        known: String,
    },

    /// A delete left resources behind.
    #[error("cluster {cluster} still has AWS resources after the delete: {remaining}; run `skiff delete cluster {cluster} --yes` again")]
    ResourcesLeft {
        /// The cluster.
        cluster: String,
        /// What is left, comma-separated keys.
        remaining: String,
    },

    /// Backups live where the nodes can write them: an S3 store.
    #[error("cluster {cluster} has no etcd backups in {location}: control-plane nodes write their backups to the state store with their instance role, which only an s3:// store allows. Use the cluster's s3:// store (--state or SKIFF_STATE_STORE)")]
    BackupsNeedS3Store {
        /// The cluster.
        cluster: String,
        /// The store in use.
        location: String,
    },

    /// `--backup` names no backup of the cluster.
    #[error("--backup {given:?}: {reason}. Nothing was changed; list the backups with `skiff get backups {cluster}` and give one of their IDs")]
    UnknownBackup {
        /// What was given.
        given: String,
        /// The cluster.
        cluster: String,
        /// Why it is not one, e.g. `no backup with that ID in s3://...`.
        reason: String,
    },

    /// `--backup` names a backup of another cluster.
    #[error("--backup {given:?} is a backup of cluster {owner}, not of {cluster}: restoring it would give {cluster} the other cluster's objects. Nothing was changed; list the backups of {cluster} with `skiff get backups {cluster}`")]
    BackupOfAnotherCluster {
        /// What was given.
        given: String,
        /// The cluster being restored.
        cluster: String,
        /// The cluster the backup belongs to.
        owner: String,
    },

    /// A restore of a control plane that still serves.
    #[error("the control plane of cluster {cluster} is healthy: its API at {server} answers /readyz, and a restore would replace it and lose every change since the backup. Nothing was changed. If etcd's data is what is wrong (objects deleted by mistake, corruption), run again with --force")]
    ControlPlaneHealthy {
        /// The cluster.
        cluster: String,
        /// The API address asked.
        server: String,
    },

    /// No encryption configuration to rotate.
    #[error("cluster {cluster} has no encryption configuration in the state store (secrets/encryption-config.yaml), so there is no key to rotate. `skiff update cluster {cluster} --yes` creates it with the cluster's other secrets; control-plane nodes load it when they boot (`skiff rolling-update cluster {cluster} --instance-group-roles control-plane --force --yes`)")]
    NoEncryptionConfig {
        /// The cluster.
        cluster: String,
    },

    /// The key in use was made within the last hour and no rotation is under way.
    #[error("the encryption key of cluster {cluster}, {key}, was made {minutes} minutes ago, most likely by a rotation that just completed; nothing was changed. To rotate it again anyway, run the same command with --force")]
    RecentEncryptionKey {
        /// The cluster.
        cluster: String,
        /// The key's name.
        key: String,
        /// Its age.
        minutes: i64,
    },

    /// The configuration was changed by someone else during a rotation.
    #[error("the encryption configuration of cluster {cluster} no longer has the rotation's new key {key} where phase {phase} left it: it was changed outside this rotation. Nothing was changed. Compare secrets/encryption-config.yaml with its earlier versions in the bucket, restore the one with {key}, then run the same command again")]
    EncryptionConfigChanged {
        /// The cluster.
        cluster: String,
        /// The rotation's new key.
        key: String,
        /// The phase recorded.
        phase: String,
    },

    /// No control-plane instance to load the configuration.
    #[error("cluster {cluster} has no control-plane instance in service, so no API server can load a new encryption configuration; nothing more was changed. Bring the control plane up (`skiff validate cluster {cluster} --wait 30m`), then run the same command again")]
    NoControlPlaneInService {
        /// The cluster.
        cluster: String,
    },

    /// Nothing to restore into: the cluster was never applied.
    #[error("cluster {cluster} has no control plane to restore: it has no recorded AWS resources. Build it with `skiff update cluster {cluster} --yes`")]
    NothingToRestore {
        /// The cluster.
        cluster: String,
    },
}
