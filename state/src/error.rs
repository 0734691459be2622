//! Errors of the state store. Each variant carries what an operator needs to
//! act: the object key, the bucket or folder, the AWS operation.

use std::path::PathBuf;

/// A failed state-store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object changed between our read and our conditional write.
    #[error("{what} changed since you read it (someone else wrote {key}); nothing was overwritten: read it again and redo your change")]
    Conflict {
        /// What the object is, e.g. `cluster "c1.example.com"`.
        what: String,
        /// The object key.
        key: String,
    },

    /// A create found the object already there.
    #[error("{what} already exists ({key})")]
    AlreadyExists {
        /// What the object is.
        what: String,
        /// The object key.
        key: String,
    },

    /// The object does not exist.
    #[error("{what} not found ({key})")]
    NotFound {
        /// What the object is.
        what: String,
        /// The object key.
        key: String,
    },

    /// The S3 bucket does not exist.
    #[error("S3 bucket {bucket:?} does not exist (or is not visible to these credentials): create it with `aws s3 mb s3://{bucket}`, or point --state / SKIFF_STATE_STORE at an existing bucket")]
    BucketNotFound {
        /// The bucket name.
        bucket: String,
    },

    /// The credentials may not perform the operation.
    #[error("access denied: {operation} on s3://{bucket}/{key} was refused; the AWS identity in use needs {permission} on this bucket and prefix (or its access key is unknown or its secret wrong)", permission = iam_action(.operation))]
    AccessDenied {
        /// The S3 operation, e.g. `PutObject`.
        operation: String,
        /// The bucket.
        bucket: String,
        /// The key (may be empty for bucket-level calls).
        key: String,
    },

    /// The S3 endpoint could not be reached at all.
    #[error("cannot reach the S3 endpoint {endpoint} for {operation} (check AWS_ENDPOINT_URL, network and proxy settings)")]
    Unreachable {
        /// The endpoint URL, or `AWS` for the default.
        endpoint: String,
        /// The S3 operation.
        operation: String,
        /// The underlying failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// No usable AWS credentials.
    #[error("no AWS credentials for the state store: set AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or log in with `aws sso login`")]
    NoCredentials {
        /// The underlying failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// Any other S3 failure.
    #[error("S3 {operation} on s3://{bucket}/{key} failed: {message}")]
    S3 {
        /// The S3 operation.
        operation: String,
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// The service's message (code and text).
        message: String,
    },

    /// `skiff state init` could not make one setting of the bucket.
    #[error("could not set the {setting} of bucket {bucket} ({operation}): {fix}")]
    BucketSetting {
        /// The setting, e.g. `default encryption`.
        setting: String,
        /// The S3 operation.
        operation: &'static str,
        /// The bucket.
        bucket: String,
        /// What to do about it.
        fix: String,
        /// The S3 failure.
        #[source]
        source: Box<StoreError>,
    },

    /// A local filesystem failure.
    #[error("{action} {path} failed")]
    Io {
        /// What was being done: `reading`, `writing`, ...
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },

    /// A state-store location that cannot be parsed.
    #[error("{location:?} is not a state store: {reason}")]
    BadLocation {
        /// What was given.
        location: String,
        /// Why it is wrong, and the accepted forms.
        reason: String,
    },

    /// A stored object that skiff cannot read.
    #[error("{key} in the state store is corrupt or was written by a newer skiff: {message}")]
    Corrupt {
        /// The object key.
        key: String,
        /// What is wrong.
        message: String,
    },

    /// The cluster lock is held by another operation.
    #[error("{0}")]
    Locked(Box<crate::lock::LockHeld>),

    /// Our lock was lost (lease expired or taken over) while we held it.
    #[error("the lock on cluster {cluster:?} was lost ({reason}); stopping so that two operations never change the cluster at once")]
    LockLost {
        /// The cluster.
        cluster: String,
        /// Why.
        reason: String,
    },

    /// `unlock` was given an ID that does not match the held lock.
    #[error("the lock on cluster {cluster:?} has ID {held}, not {given}: nothing was unlocked (see `skiff state lock show {cluster}`)")]
    WrongLockId {
        /// The cluster.
        cluster: String,
        /// The ID of the held lock.
        held: String,
        /// The ID given.
        given: String,
    },

    /// A spec whose Kubernetes version may not be stored: a new cluster at a
    /// version outside skiff's table, or a change that skips a minor release
    /// or lowers the version. Nothing was written.
    #[error("cluster {cluster:?} was not stored (nothing changed)")]
    VersionRefused {
        /// The cluster.
        cluster: String,
        /// The rule broken, naming the versions allowed.
        #[source]
        source: skiff_api::VersionChangeError,
    },
    /// The change would move a stored cluster's etcd in a way it cannot
    /// follow ([`skiff_api::etcd::check_change`]). Nothing was written.
    #[error("cluster {cluster:?} was not stored (nothing changed): {field}: {message}")]
    EtcdChangeRefused {
        /// The cluster.
        cluster: String,
        /// The field path.
        field: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The change asks a running cluster for something it cannot follow
    /// ([`skiff_api::windows::check_first_windows_group`]). Nothing was
    /// written.
    #[error("cluster {cluster:?} was not stored (nothing changed): {field}: {message}")]
    RunningClusterRefused {
        /// The cluster.
        cluster: String,
        /// The field path.
        field: String,
        /// What is wrong and what to do.
        message: String,
    },
}

impl StoreError {
    /// Whether retrying the same call may succeed (throttling, timeouts).
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}

/// Results of state-store operations.
pub type Result<T> = std::result::Result<T, StoreError>;

/// The IAM permission an S3 API operation needs (`HeadBucket` and listing
/// are allowed by `s3:ListBucket`; there is no `s3:HeadBucket`).
pub(crate) fn iam_action(operation: &str) -> &'static str {
    match operation {
        "CreateBucket" => "s3:CreateBucket",
        "GetPublicAccessBlock" => "s3:GetBucketPublicAccessBlock",
        "PutPublicAccessBlock" => "s3:PutBucketPublicAccessBlock",
        "GetBucketEncryption" => "s3:GetEncryptionConfiguration",
        "PutBucketEncryption" => "s3:PutEncryptionConfiguration",
        "GetBucketVersioning" => "s3:GetBucketVersioning",
        "PutBucketVersioning" => "s3:PutBucketVersioning",
        "GetBucketPolicy" => "s3:GetBucketPolicy",
        "PutBucketPolicy" => "s3:PutBucketPolicy",
        "GetBucketOwnershipControls" => "s3:GetBucketOwnershipControls",
        "PutBucketOwnershipControls" => "s3:PutBucketOwnershipControls",
        "GetBucketAcl" => "s3:GetBucketAcl",
        "HeadBucket" | "ListObjectsV2" | "ListObjects" | "GetBucketLocation" => "s3:ListBucket",
        "GetObject" | "HeadObject" => "s3:GetObject",
        "PutObject" | "CopyObject" => "s3:PutObject",
        "DeleteObject" | "DeleteObjects" => "s3:DeleteObject",
        _ => "the matching s3: permission",
    }
}
