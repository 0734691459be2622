//! Is the state store safe to hold a cluster's secrets? The bucket's
//! settings read back and judged ([`check`]), and the settings
//! `skiff state init` makes ([`init`]).
//!
//! The store holds the cluster CAs, the service-account signing key and
//! the bootstrap token: whoever reads the bucket owns the cluster. So the
//! commands that write secrets ask [`StateStore::security`] first (once per
//! run) and refuse a [`Severity::Refusal`] finding; the engine's gate
//! (`skiff_engine::store_security`) is where that happens.
//!
//! What is a refusal and what only a warning:
//! * public access not fully blocked, a public policy or ACL grant (while
//!   the block does not neutralise it), no default encryption: refusals,
//!   since each lets someone read or keep readable copies of the keys;
//! * no TLS-only policy, versioning off, ACLs still enabled: warnings.
//!   skiff and its nodes always use HTTPS, and a plain-HTTP request must
//!   still be signed, so the policy guards other clients, not skiff's own
//!   traffic; versioning protects against loss, not disclosure. Refusing
//!   them would block stores whose policy a platform team owns.
//!
//! A folder store is checked for what a folder can get wrong (being
//! readable by other local users: a warning, because applying, the only
//! thing that writes secrets, needs an S3 store anyway).

pub mod init;
pub mod policy;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{BucketVersioningStatus, ServerSideEncryption, Type as GranteeType};
use serde::Serialize;

use crate::error::Result;
use crate::objects::s3::S3Store;
use crate::StoreLocation;

/// A bucket's default encryption, as `GetBucketEncryption` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum DefaultEncryption {
    /// No default encryption configured.
    None,
    /// SSE-S3 (`AES256`).
    S3Managed,
    /// SSE-KMS (`aws:kms` or `aws:kms:dsse`) with this key (`None`: the AWS
    /// managed key `aws/s3`).
    Kms {
        /// The key ID, ARN or alias as configured.
        key: Option<String>,
        /// Whether S3 bucket keys are on.
        bucket_key: bool,
    },
}

impl DefaultEncryption {
    /// The KMS key secret objects are written with, when there is one.
    pub fn kms_key(&self) -> Option<&str> {
        match self {
            DefaultEncryption::Kms { key, .. } => key.as_deref(),
            _ => None,
        }
    }
}

impl std::fmt::Display for DefaultEncryption {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DefaultEncryption::None => write!(formatter, "none"),
            DefaultEncryption::S3Managed => write!(formatter, "SSE-S3 (AES256)"),
            DefaultEncryption::Kms { key, bucket_key } => write!(
                formatter,
                "SSE-KMS (aws:kms, key {}, bucket key {})",
                key.as_deref().unwrap_or("aws/s3"),
                if *bucket_key { "on" } else { "off" }
            ),
        }
    }
}

/// The four Block Public Access settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicAccessBlock {
    /// `BlockPublicAcls`.
    pub block_public_acls: bool,
    /// `IgnorePublicAcls`.
    pub ignore_public_acls: bool,
    /// `BlockPublicPolicy`.
    pub block_public_policy: bool,
    /// `RestrictPublicBuckets`.
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// All four on.
    pub const ALL: PublicAccessBlock = PublicAccessBlock {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };

    /// The names of the settings that are off.
    pub fn off(&self) -> Vec<&'static str> {
        [
            ("BlockPublicAcls", self.block_public_acls),
            ("IgnorePublicAcls", self.ignore_public_acls),
            ("BlockPublicPolicy", self.block_public_policy),
            ("RestrictPublicBuckets", self.restrict_public_buckets),
        ]
        .into_iter()
        .filter(|(_, on)| !on)
        .map(|(name, _)| name)
        .collect()
    }
}

/// A setting read back, or why it could not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read<T> {
    /// The value (`None`: not configured).
    Value(T),
    /// The S3 call was refused or failed: the operation and the error.
    Unreadable {
        /// The S3 operation.
        operation: &'static str,
        /// The error, for the finding.
        error: String,
    },
}

/// Everything the check reads of a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSettings {
    /// The bucket.
    pub bucket: String,
    /// Its region.
    pub region: String,
    /// Block Public Access (`None`: no configuration on the bucket).
    pub public_access_block: Read<Option<PublicAccessBlock>>,
    /// Default encryption.
    pub encryption: Read<DefaultEncryption>,
    /// Whether versioning is `Enabled` (`Suspended` or never set: false).
    pub versioning: Read<bool>,
    /// The bucket policy text (`None`: no policy).
    pub policy: Read<Option<String>>,
    /// The object ownership setting (`None`: no ownership controls).
    pub ownership: Read<Option<String>>,
    /// The public groups the ACL grants something to (`AllUsers`,
    /// `AuthenticatedUsers`), with the permission.
    pub public_grants: Read<Vec<String>>,
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Worth fixing; nothing is refused.
    Warning,
    /// Commands that write secrets refuse the store (unless
    /// `--allow-insecure-store`).
    Refusal,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Severity::Warning => "warning",
            Severity::Refusal => "refusal",
        })
    }
}

/// What is wrong with a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// The bucket has no Block Public Access configuration.
    PublicAccessBlockMissing,
    /// Some of the four Block Public Access settings are off.
    PublicAccessBlockPartial,
    /// The bucket policy grants access to everyone.
    PublicPolicy,
    /// The bucket ACL grants access to AllUsers or AuthenticatedUsers.
    PublicAcl,
    /// No default encryption.
    NoDefaultEncryption,
    /// No policy statement denies requests without TLS.
    NoTlsOnlyPolicy,
    /// Versioning is not enabled.
    VersioningOff,
    /// Object ownership is not `BucketOwnerEnforced` (ACLs are in effect).
    AclsEnabled,
    /// A setting could not be read.
    Unreadable,
    /// A folder store that other local users can read or write.
    FolderOpenToOthers,
}

/// One finding of the check: what is wrong and the exact fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreFinding {
    /// What.
    pub kind: FindingKind,
    /// How serious.
    pub severity: Severity,
    /// What was found, in words.
    pub detail: String,
    /// The command or setting that fixes it.
    pub fix: String,
}

/// The result of checking a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityReport {
    /// The store, as the user wrote it.
    pub store: String,
    /// The bucket's default encryption (`None` for a folder store or when
    /// it could not be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<DefaultEncryption>,
    /// Every finding, refusals first.
    pub findings: Vec<StoreFinding>,
}

impl SecurityReport {
    /// The findings that make commands writing secrets refuse.
    pub fn refusals(&self) -> impl Iterator<Item = &StoreFinding> {
        self.findings
            .iter()
            .filter(|finding| finding.severity == Severity::Refusal)
    }

    /// Whether any finding is a refusal.
    pub fn refuses(&self) -> bool {
        self.refusals().next().is_some()
    }
}

/// Codes S3 answers for a bucket-level setting that was never configured.
const NOT_CONFIGURED: &[&str] = &[
    "NoSuchPublicAccessBlockConfiguration",
    "ServerSideEncryptionConfigurationNotFoundError",
    "NoSuchBucketPolicy",
    "OwnershipControlsNotFoundError",
];

/// The outcome of one bucket-level read: a value, "not configured" (the
/// codes above) or unreadable.
fn read<T, O, E>(
    operation: &'static str,
    result: std::result::Result<
        O,
        aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    >,
    store: &S3Store,
    value: impl FnOnce(O) -> T,
    not_configured: T,
) -> Read<T>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(output) => Read::Value(value(output)),
        Err(error)
            if error
                .code()
                .is_some_and(|code| NOT_CONFIGURED.contains(&code)) =>
        {
            Read::Value(not_configured)
        }
        Err(error) => Read::Unreadable {
            operation,
            error: store.error(operation, "", error).to_string(),
        },
    }
}

fn encryption_of(
    output: aws_sdk_s3::operation::get_bucket_encryption::GetBucketEncryptionOutput,
) -> DefaultEncryption {
    let rule = output
        .server_side_encryption_configuration()
        .and_then(|configuration| configuration.rules().first());
    let Some(rule) = rule else {
        return DefaultEncryption::None;
    };
    let bucket_key = rule.bucket_key_enabled().unwrap_or(false);
    match rule.apply_server_side_encryption_by_default() {
        None => DefaultEncryption::None,
        Some(default) => match default.sse_algorithm() {
            ServerSideEncryption::Aes256 => DefaultEncryption::S3Managed,
            ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse => {
                DefaultEncryption::Kms {
                    key: default
                        .kms_master_key_id()
                        .filter(|key| !key.is_empty())
                        .map(str::to_string),
                    bucket_key,
                }
            }
            // An algorithm this SDK does not know is still encryption at
            // rest; it cannot be repeated on a write, so SSE-S3 is used.
            _ => DefaultEncryption::S3Managed,
        },
    }
}

/// The bucket's default encryption (`GetBucketEncryption`).
pub(crate) async fn read_default_encryption(store: &S3Store) -> Result<DefaultEncryption> {
    match store
        .client()
        .get_bucket_encryption()
        .bucket(store.bucket())
        .send()
        .await
    {
        Ok(output) => Ok(encryption_of(output)),
        Err(error)
            if error
                .code()
                .is_some_and(|code| NOT_CONFIGURED.contains(&code)) =>
        {
            Ok(DefaultEncryption::None)
        }
        Err(error) => Err(store.error("GetBucketEncryption", "", error)),
    }
}

/// Reads every setting the check judges, all at once.
pub async fn read_settings(store: &S3Store) -> BucketSettings {
    let client = store.client();
    let bucket = store.bucket();
    let (public_access_block, encryption, versioning, policy, ownership, acl) = tokio::join!(
        client.get_public_access_block().bucket(bucket).send(),
        client.get_bucket_encryption().bucket(bucket).send(),
        client.get_bucket_versioning().bucket(bucket).send(),
        client.get_bucket_policy().bucket(bucket).send(),
        client.get_bucket_ownership_controls().bucket(bucket).send(),
        client.get_bucket_acl().bucket(bucket).send(),
    );
    let settings = BucketSettings {
        bucket: bucket.to_string(),
        region: store.region().to_string(),
        public_access_block: read(
            "GetPublicAccessBlock",
            public_access_block,
            store,
            |output| {
                output
                    .public_access_block_configuration()
                    .map(|block| PublicAccessBlock {
                        block_public_acls: block.block_public_acls().unwrap_or(false),
                        ignore_public_acls: block.ignore_public_acls().unwrap_or(false),
                        block_public_policy: block.block_public_policy().unwrap_or(false),
                        restrict_public_buckets: block.restrict_public_buckets().unwrap_or(false),
                    })
            },
            None,
        ),
        encryption: read(
            "GetBucketEncryption",
            encryption,
            store,
            encryption_of,
            DefaultEncryption::None,
        ),
        versioning: read(
            "GetBucketVersioning",
            versioning,
            store,
            |output| output.status() == Some(&BucketVersioningStatus::Enabled),
            false,
        ),
        policy: read(
            "GetBucketPolicy",
            policy,
            store,
            |output| output.policy().map(str::to_string),
            None,
        ),
        ownership: read(
            "GetBucketOwnershipControls",
            ownership,
            store,
            |output| {
                output
                    .ownership_controls()
                    .and_then(|controls| controls.rules().first())
                    .map(|rule| rule.object_ownership().as_str().to_string())
            },
            None,
        ),
        public_grants: read(
            "GetBucketAcl",
            acl,
            store,
            |output| {
                output
                    .grants()
                    .iter()
                    .filter_map(|grant| {
                        let grantee = grant.grantee()?;
                        if grantee.r#type() != &GranteeType::Group {
                            return None;
                        }
                        let uri = grantee.uri()?;
                        let group = uri.rsplit('/').next()?;
                        matches!(group, "AllUsers" | "AuthenticatedUsers").then(|| {
                            format!(
                                "{group}: {}",
                                grant
                                    .permission()
                                    .map(|permission| permission.as_str().to_string())
                                    .unwrap_or_default()
                            )
                        })
                    })
                    .collect()
            },
            Vec::new(),
        ),
    };
    if let Read::Value(encryption) = &settings.encryption {
        store.remember_encryption(encryption.clone());
    }
    settings
}

fn finding(kind: FindingKind, severity: Severity, detail: String, fix: String) -> StoreFinding {
    StoreFinding {
        kind,
        severity,
        detail,
        fix,
    }
}

/// Judges a bucket's settings (pure: see the module doc for the rules).
/// `init` is the `skiff state init` command for this store.
pub fn judge(settings: &BucketSettings, init: &str) -> Vec<StoreFinding> {
    let bucket = &settings.bucket;
    let mut findings = Vec::new();
    let unreadable = |setting: &str, operation: &str, error: &str, severity: Severity| {
        finding(
            FindingKind::Unreadable,
            severity,
            format!("the {setting} could not be read ({operation}: {error})"),
            format!(
                "allow the AWS identity in use {} on arn:aws:s3:::{bucket}, or run with --allow-insecure-store if you have checked the bucket yourself",
                crate::error::iam_action(operation)
            ),
        )
    };
    let block = match &settings.public_access_block {
        Read::Value(None) => {
            findings.push(finding(
                FindingKind::PublicAccessBlockMissing,
                Severity::Refusal,
                "Block Public Access is not configured on the bucket: a policy or ACL can make the keys public".to_string(),
                format!("run `{init} --yes`, or `aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true`"),
            ));
            PublicAccessBlock::default()
        }
        Read::Value(Some(block)) => {
            let off = block.off();
            if !off.is_empty() {
                findings.push(finding(
                    FindingKind::PublicAccessBlockPartial,
                    Severity::Refusal,
                    format!("Block Public Access is only partly on: {} off", off.join(", ")),
                    format!("run `{init} --yes`, or turn on {} in the bucket's Block Public Access settings", off.join(", ")),
                ));
            }
            *block
        }
        Read::Unreadable { operation, error } => {
            findings.push(unreadable(
                "Block Public Access settings",
                operation,
                error,
                Severity::Refusal,
            ));
            PublicAccessBlock::default()
        }
    };
    match &settings.policy {
        Read::Value(Some(policy)) => {
            let public = policy::public_statements(policy);
            if !public.is_empty() {
                let described: Vec<String> = public.iter().map(ToString::to_string).collect();
                let (severity, detail) = if block.restrict_public_buckets {
                    (Severity::Warning, format!("the bucket policy is public ({}); RestrictPublicBuckets neutralises it for now", described.join("; ")))
                } else {
                    (
                        Severity::Refusal,
                        format!("the bucket policy is public: {}", described.join("; ")),
                    )
                };
                findings.push(finding(
                    FindingKind::PublicPolicy,
                    severity,
                    detail,
                    format!("remove those statements or add a condition that names your account or organisation (`aws s3api get-bucket-policy --bucket {bucket}`), then run `{init} --yes`"),
                ));
            }
            if !policy::denies_insecure_transport(
                policy,
                policy::partition_of(&settings.region),
                bucket,
            ) {
                findings.push(tls_finding(init));
            }
        }
        Read::Value(None) => findings.push(tls_finding(init)),
        Read::Unreadable { operation, error } => findings.push(unreadable(
            "bucket policy",
            operation,
            error,
            if block.block_public_policy && block.restrict_public_buckets {
                Severity::Warning
            } else {
                Severity::Refusal
            },
        )),
    }
    match &settings.public_grants {
        Read::Value(grants) if !grants.is_empty() => {
            let severity = if block.ignore_public_acls {
                Severity::Warning
            } else {
                Severity::Refusal
            };
            findings.push(finding(
                FindingKind::PublicAcl,
                severity,
                format!(
                    "the bucket ACL grants {}{}",
                    grants.join(", "),
                    if block.ignore_public_acls { " (ignored while IgnorePublicAcls is on)" } else { "" }
                ),
                format!("run `{init} --yes` (object ownership BucketOwnerEnforced disables ACLs), or `aws s3api put-bucket-acl --bucket {bucket} --acl private`"),
            ));
        }
        Read::Value(_) => {}
        Read::Unreadable { operation, error } => findings.push(unreadable(
            "bucket ACL",
            operation,
            error,
            if block.ignore_public_acls {
                Severity::Warning
            } else {
                Severity::Refusal
            },
        )),
    }
    match &settings.encryption {
        Read::Value(DefaultEncryption::None) => findings.push(finding(
            FindingKind::NoDefaultEncryption,
            Severity::Refusal,
            "the bucket has no default encryption".to_string(),
            format!("run `{init} --yes` (SSE-S3; add --kms-key KEY for SSE-KMS), or `aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration '{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"AES256\"}}}}]}}'`"),
        )),
        Read::Value(_) => {}
        Read::Unreadable { operation, error } => {
            findings.push(unreadable("default encryption", operation, error, Severity::Refusal))
        }
    }
    match &settings.versioning {
        Read::Value(true) => {}
        Read::Value(false) => findings.push(finding(
            FindingKind::VersioningOff,
            Severity::Warning,
            "versioning is off: an overwritten or deleted object (a spec, the recorded state) cannot be recovered".to_string(),
            format!("run `{init} --yes`, or `aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled`"),
        )),
        Read::Unreadable { operation, error } => {
            findings.push(unreadable("versioning setting", operation, error, Severity::Warning))
        }
    }
    match &settings.ownership {
        Read::Value(Some(ownership)) if ownership == "BucketOwnerEnforced" => {}
        Read::Value(ownership) => findings.push(finding(
            FindingKind::AclsEnabled,
            Severity::Warning,
            format!(
                "object ownership is {}: ACLs are in effect, so an object can be shared by its ACL",
                ownership.as_deref().unwrap_or("not set")
            ),
            format!("run `{init} --yes`, or `aws s3api put-bucket-ownership-controls --bucket {bucket} --ownership-controls 'Rules=[{{ObjectOwnership=BucketOwnerEnforced}}]'`"),
        )),
        Read::Unreadable { operation, error } => {
            findings.push(unreadable("object ownership", operation, error, Severity::Warning))
        }
    }
    findings.sort_by_key(|finding| std::cmp::Reverse(finding.severity));
    findings
}

fn tls_finding(init: &str) -> StoreFinding {
    finding(
        FindingKind::NoTlsOnlyPolicy,
        Severity::Warning,
        "no bucket policy statement denies requests made without TLS (aws:SecureTransport=false)"
            .to_string(),
        format!("run `{init} --yes` (it adds one Deny statement and keeps the others)"),
    )
}

/// Checks a store: reads an S3 bucket's settings and judges them, or
/// checks a folder's permissions.
pub async fn check(location: &StoreLocation, s3: Option<&S3Store>) -> SecurityReport {
    match (location, s3) {
        (StoreLocation::S3 { bucket, prefix }, Some(store)) => {
            let settings = read_settings(store).await;
            let init = if prefix.is_empty() {
                format!("skiff state init s3://{bucket}")
            } else {
                format!("skiff state init s3://{bucket}/{prefix}")
            };
            SecurityReport {
                store: location.to_string(),
                encryption: match &settings.encryption {
                    Read::Value(value) => Some(value.clone()),
                    Read::Unreadable { .. } => None,
                },
                findings: judge(&settings, &init),
            }
        }
        _ => SecurityReport {
            store: location.to_string(),
            encryption: None,
            findings: folder_findings(location),
        },
    }
}

fn path_of(location: &StoreLocation) -> Option<std::path::PathBuf> {
    match location {
        StoreLocation::File { path } => Some(path.clone()),
        StoreLocation::S3 { .. } => None,
    }
}

/// A folder store: other local users must not be able to read or write it.
fn folder_findings(location: &StoreLocation) -> Vec<StoreFinding> {
    let Some(path) = path_of(location) else {
        return Vec::new();
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(metadata) = std::fs::metadata(&path) {
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return vec![finding(
                    FindingKind::FolderOpenToOthers,
                    Severity::Warning,
                    format!("the folder {} has mode {mode:o}: other local users can list (and read the non-secret objects of) the store", path.display()),
                    format!("chmod 700 {}", path.display()),
                )];
            }
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> BucketSettings {
        BucketSettings {
            bucket: "b".to_string(),
            region: "us-east-1".to_string(),
            public_access_block: Read::Value(Some(PublicAccessBlock::ALL)),
            encryption: Read::Value(DefaultEncryption::S3Managed),
            versioning: Read::Value(true),
            policy: Read::Value(Some(
                policy::with_tls_only(None, "aws", "b").expect("a policy"),
            )),
            ownership: Read::Value(Some("BucketOwnerEnforced".to_string())),
            public_grants: Read::Value(Vec::new()),
        }
    }

    fn kinds(findings: &[StoreFinding]) -> Vec<(FindingKind, Severity)> {
        findings
            .iter()
            .map(|finding| (finding.kind, finding.severity))
            .collect()
    }

    const INIT: &str = "skiff state init s3://b";

    #[test]
    fn a_bucket_set_up_by_init_has_no_findings() {
        assert_eq!(judge(&settings(), INIT), Vec::new());
    }

    #[test]
    fn the_block_decides_whether_a_public_grant_refuses() {
        let public = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}]}"#;
        let mut open = settings();
        open.public_access_block = Read::Value(Some(PublicAccessBlock {
            block_public_acls: true,
            ..PublicAccessBlock::default()
        }));
        open.policy = Read::Value(Some(public.to_string()));
        open.public_grants = Read::Value(vec!["AllUsers: READ".to_string()]);
        let findings = judge(&open, INIT);
        assert_eq!(
            kinds(&findings),
            vec![
                (FindingKind::PublicAccessBlockPartial, Severity::Refusal),
                (FindingKind::PublicPolicy, Severity::Refusal),
                (FindingKind::PublicAcl, Severity::Refusal),
                (FindingKind::NoTlsOnlyPolicy, Severity::Warning),
            ]
        );
        assert!(findings[0]
            .detail
            .contains("IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets off"));
        assert!(findings[0].fix.contains("skiff state init s3://b --yes"));

        // With the whole block on, the same grants are neutralised: warnings.
        let mut blocked = open.clone();
        blocked.public_access_block = Read::Value(Some(PublicAccessBlock::ALL));
        assert_eq!(
            kinds(&judge(&blocked, INIT)),
            vec![
                (FindingKind::PublicPolicy, Severity::Warning),
                (FindingKind::NoTlsOnlyPolicy, Severity::Warning),
                (FindingKind::PublicAcl, Severity::Warning),
            ]
        );
    }

    #[test]
    fn unreadable_essentials_refuse_and_the_rest_warn() {
        let mut hidden = settings();
        hidden.encryption = Read::Unreadable {
            operation: "GetBucketEncryption",
            error: "access denied".to_string(),
        };
        hidden.versioning = Read::Unreadable {
            operation: "GetBucketVersioning",
            error: "access denied".to_string(),
        };
        let findings = judge(&hidden, INIT);
        assert_eq!(
            kinds(&findings),
            vec![
                (FindingKind::Unreadable, Severity::Refusal),
                (FindingKind::Unreadable, Severity::Warning),
            ]
        );
        assert!(findings[0].fix.contains("s3:GetEncryptionConfiguration"));
        let mut missing = settings();
        missing.encryption = Read::Value(DefaultEncryption::None);
        missing.versioning = Read::Value(false);
        missing.ownership = Read::Value(None);
        assert_eq!(
            kinds(&judge(&missing, INIT)),
            vec![
                (FindingKind::NoDefaultEncryption, Severity::Refusal),
                (FindingKind::VersioningOff, Severity::Warning),
                (FindingKind::AclsEnabled, Severity::Warning),
            ]
        );
    }
}
