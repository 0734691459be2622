//! `skiff state init`: a bucket set up to hold cluster secrets.
//!
//! [`plan`] reads the bucket (or finds it missing) and lists, setting by
//! setting, what would change; [`apply`] makes exactly those changes. A
//! bucket already set up gives an empty plan, so a second run makes no
//! write call. The settings, in the order they are written (public access
//! is closed before anything else changes):
//!
//! 1. Block Public Access: all four settings on;
//! 2. object ownership `BucketOwnerEnforced` (ACLs off);
//! 3. default encryption: SSE-S3, or SSE-KMS with the given key and S3
//!    bucket keys on (an existing SSE-KMS default is kept when no key is
//!    given: never a downgrade);
//! 4. versioning `Enabled`;
//! 5. a bucket policy statement denying requests without TLS, merged into
//!    the existing policy (every other statement is kept).

use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, ObjectOwnership,
    OwnershipControls, OwnershipControlsRule, PublicAccessBlockConfiguration, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    VersioningConfiguration,
};
use serde::Serialize;

use super::policy;
use super::{read_settings, BucketSettings, DefaultEncryption, PublicAccessBlock, Read};
use crate::error::{iam_action, Result, StoreError};
use crate::objects::s3::{self, S3Store};

/// What `skiff state init` was asked for.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// The region to create a missing bucket in (default: the AWS
    /// configuration's region, else us-east-1). For an existing bucket,
    /// it must be the bucket's region.
    pub region: Option<String>,
    /// SSE-KMS with this key (ID, ARN, alias name or alias ARN) instead of
    /// SSE-S3.
    pub kms_key: Option<String>,
}

/// One setting `state init` manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Setting {
    /// The bucket itself.
    Bucket,
    /// Block Public Access.
    PublicAccessBlock,
    /// Object ownership.
    ObjectOwnership,
    /// Default encryption.
    DefaultEncryption,
    /// Versioning.
    Versioning,
    /// The TLS-only bucket policy statement.
    TlsOnlyPolicy,
}

impl std::fmt::Display for Setting {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Setting::Bucket => "bucket",
            Setting::PublicAccessBlock => "Block Public Access",
            Setting::ObjectOwnership => "object ownership",
            Setting::DefaultEncryption => "default encryption",
            Setting::Versioning => "versioning",
            Setting::TlsOnlyPolicy => "TLS-only policy",
        })
    }
}

/// One setting as it is and as `state init` makes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingState {
    /// Which.
    pub setting: Setting,
    /// As it is now.
    pub current: String,
    /// As `state init` makes it (equal to `current` when nothing changes).
    pub wanted: String,
    /// Whether it changes.
    pub change: bool,
}

/// What `state init` would do to a bucket.
#[derive(Debug, Clone, Serialize)]
pub struct InitPlan {
    /// The bucket.
    pub bucket: String,
    /// Its region (where it is, or where it would be created).
    pub region: String,
    /// Every setting, changed or not, in the order they are written.
    pub settings: Vec<SettingState>,
    #[serde(skip)]
    encryption: Option<ServerSideEncryptionConfiguration>,
    #[serde(skip)]
    policy: Option<String>,
}

impl InitPlan {
    /// Whether anything changes.
    pub fn changes(&self) -> bool {
        self.settings.iter().any(|setting| setting.change)
    }

    fn changes_setting(&self, which: Setting) -> bool {
        self.settings
            .iter()
            .any(|setting| setting.setting == which && setting.change)
    }
}

fn describe_block(block: &Option<PublicAccessBlock>) -> String {
    match block {
        None => "not configured".to_string(),
        Some(block) if block.off().is_empty() => "all four on".to_string(),
        Some(block) => format!("{} off", block.off().join(", ")),
    }
}

fn value<T: Clone>(read: &Read<T>, bucket: &str) -> Result<T> {
    match read {
        Read::Value(value) => Ok(value.clone()),
        Read::Unreadable { operation, error } => Err(StoreError::S3 {
            operation: operation.to_string(),
            bucket: bucket.to_string(),
            key: String::new(),
            message: error.clone(),
        }),
    }
}

fn wanted_encryption(current: &DefaultEncryption, kms_key: Option<&str>) -> DefaultEncryption {
    match (kms_key, current) {
        (Some(key), _) => DefaultEncryption::Kms {
            key: Some(key.to_string()),
            bucket_key: true,
        },
        // Already SSE-KMS: kept, never lowered to SSE-S3.
        (None, DefaultEncryption::Kms { .. }) => current.clone(),
        (None, _) => DefaultEncryption::S3Managed,
    }
}

fn encryption_configuration(
    encryption: &DefaultEncryption,
) -> Result<ServerSideEncryptionConfiguration> {
    let (algorithm, key, bucket_key) = match encryption {
        DefaultEncryption::Kms { key, bucket_key } => {
            (ServerSideEncryption::AwsKms, key.clone(), *bucket_key)
        }
        _ => (ServerSideEncryption::Aes256, None, false),
    };
    let default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(algorithm)
        .set_kms_master_key_id(key)
        .build()
        .map_err(|error| StoreError::BadLocation {
            location: "--kms-key".to_string(),
            reason: error.to_string(),
        })?;
    let mut rule =
        ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(default);
    if bucket_key {
        rule = rule.bucket_key_enabled(true);
    }
    ServerSideEncryptionConfiguration::builder()
        .rules(rule.build())
        .build()
        .map_err(|error| StoreError::BadLocation {
            location: "--kms-key".to_string(),
            reason: error.to_string(),
        })
}

/// Refuses a `--kms-key` that is not a key ID, key ARN or alias.
fn check_kms_key(key: &str) -> Result<()> {
    let looks_right = !key.is_empty()
        && !key.contains(char::is_whitespace)
        && (key.starts_with("arn:")
            || key.starts_with("alias/")
            || key
                .chars()
                .all(|character| character.is_ascii_alphanumeric() || character == '-'));
    if looks_right {
        Ok(())
    } else {
        Err(StoreError::BadLocation {
            location: key.to_string(),
            reason: "--kms-key takes a KMS key ID (1234abcd-...), a key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID) or an alias (alias/NAME)".to_string(),
        })
    }
}

fn plan_settings(settings: &BucketSettings, kms_key: Option<&str>) -> Result<InitPlan> {
    let bucket = &settings.bucket;
    let mut states = Vec::new();
    states.push(SettingState {
        setting: Setting::Bucket,
        current: "exists".to_string(),
        wanted: "exists".to_string(),
        change: false,
    });
    let block = value(&settings.public_access_block, bucket)?;
    states.push(SettingState {
        setting: Setting::PublicAccessBlock,
        current: describe_block(&block),
        wanted: "all four on".to_string(),
        change: block != Some(PublicAccessBlock::ALL),
    });
    let ownership = value(&settings.ownership, bucket)?;
    states.push(SettingState {
        setting: Setting::ObjectOwnership,
        current: ownership.clone().unwrap_or_else(|| "not set".to_string()),
        wanted: "BucketOwnerEnforced".to_string(),
        change: ownership.as_deref() != Some("BucketOwnerEnforced"),
    });
    let encryption = value(&settings.encryption, bucket)?;
    let wanted = wanted_encryption(&encryption, kms_key);
    let change_encryption = wanted != encryption;
    states.push(SettingState {
        setting: Setting::DefaultEncryption,
        current: encryption.to_string(),
        wanted: wanted.to_string(),
        change: change_encryption,
    });
    let versioning = value(&settings.versioning, bucket)?;
    states.push(SettingState {
        setting: Setting::Versioning,
        current: if versioning { "Enabled" } else { "off" }.to_string(),
        wanted: "Enabled".to_string(),
        change: !versioning,
    });
    let existing = value(&settings.policy, bucket)?;
    let partition = policy::partition_of(&settings.region);
    let tls_only = existing
        .as_deref()
        .is_some_and(|text| policy::denies_insecure_transport(text, partition, bucket));
    let merged = if tls_only {
        None
    } else {
        Some(
            policy::with_tls_only(existing.as_deref(), partition, bucket).map_err(|reason| {
                StoreError::S3 {
                    operation: "GetBucketPolicy".to_string(),
                    bucket: bucket.to_string(),
                    key: String::new(),
                    message: format!(
                        "{reason}: fix or delete the policy, then run `skiff state init` again"
                    ),
                }
            })?,
        )
    };
    states.push(SettingState {
        setting: Setting::TlsOnlyPolicy,
        current: match (&existing, tls_only) {
            (_, true) => "requests without TLS denied".to_string(),
            (None, false) => "no bucket policy".to_string(),
            (Some(_), false) => "the policy does not deny requests without TLS".to_string(),
        },
        wanted: match existing {
            Some(_) if !tls_only => format!(
                "statement {:?} added (the other statements kept)",
                policy::TLS_ONLY_SID
            ),
            _ => "requests without TLS denied".to_string(),
        },
        change: !tls_only,
    });
    Ok(InitPlan {
        bucket: bucket.clone(),
        region: settings.region.clone(),
        settings: states,
        encryption: change_encryption
            .then(|| encryption_configuration(&wanted))
            .transpose()?,
        policy: merged,
    })
}

/// What `state init` would do to `bucket`: reads it (or finds it missing).
pub async fn plan(
    sdk_config: &aws_config::SdkConfig,
    bucket: &str,
    options: &InitOptions,
) -> Result<InitPlan> {
    if let Some(key) = &options.kms_key {
        check_kms_key(key)?;
    }
    match S3Store::open(sdk_config, bucket, "").await {
        Ok(store) => {
            if let Some(region) = &options.region {
                if region != store.region() && store.endpoint().is_none() {
                    return Err(StoreError::BadLocation {
                        location: format!("s3://{bucket}"),
                        reason: format!(
                            "the bucket is in {}, not {region}: drop --region or give --region {}",
                            store.region(),
                            store.region()
                        ),
                    });
                }
            }
            let settings = read_settings(&store).await;
            plan_settings(&settings, options.kms_key.as_deref())
        }
        Err(StoreError::BucketNotFound { .. }) => {
            let region = options
                .region
                .clone()
                .or_else(|| sdk_config.region().map(ToString::to_string))
                .unwrap_or_else(|| "us-east-1".to_string());
            let wanted = wanted_encryption(&DefaultEncryption::None, options.kms_key.as_deref());
            let change = |setting, current: &str, wanted: String| SettingState {
                setting,
                current: current.to_string(),
                wanted,
                change: true,
            };
            Ok(InitPlan {
                bucket: bucket.to_string(),
                region: region.clone(),
                settings: vec![
                    change(Setting::Bucket, "missing", format!("created in {region}")),
                    change(Setting::PublicAccessBlock, "-", "all four on".to_string()),
                    change(
                        Setting::ObjectOwnership,
                        "-",
                        "BucketOwnerEnforced".to_string(),
                    ),
                    change(Setting::DefaultEncryption, "-", wanted.to_string()),
                    change(Setting::Versioning, "-", "Enabled".to_string()),
                    change(
                        Setting::TlsOnlyPolicy,
                        "-",
                        "requests without TLS denied".to_string(),
                    ),
                ],
                encryption: Some(encryption_configuration(&wanted)?),
                policy: Some(
                    policy::with_tls_only(None, policy::partition_of(&region), bucket).map_err(
                        |message| StoreError::Corrupt {
                            key: "the TLS-only policy".to_string(),
                            message,
                        },
                    )?,
                ),
            })
        }
        Err(error) => Err(error),
    }
}

/// A failed write of `state init`, with the fix.
fn step_error(
    bucket: &str,
    setting: Setting,
    operation: &'static str,
    source: StoreError,
) -> StoreError {
    let fix = match &source {
        StoreError::AccessDenied { .. } if operation == "PutBucketPolicy" => format!(
            "the AWS identity in use needs {} on arn:aws:s3:::{bucket}; if it has it, the merged policy may be public while BlockPublicPolicy is on: remove the public statements (`aws s3api get-bucket-policy --bucket {bucket}`)",
            iam_action(operation)
        ),
        StoreError::AccessDenied { .. } => format!(
            "the AWS identity in use needs {} on arn:aws:s3:::{bucket} (or ask whoever owns the bucket to set it)",
            iam_action(operation)
        ),
        _ => "fix the cause below and run the same command again: the settings already made are kept, and only the rest is done".to_string(),
    };
    StoreError::BucketSetting {
        setting: setting.to_string(),
        operation,
        bucket: bucket.to_string(),
        fix,
        source: Box::new(source),
    }
}

/// Makes the changes of `plan` (nothing when it has none), in the order
/// of the module doc; a failure names the setting, the S3 operation and
/// the fix, and a rerun does only what is left.
pub async fn apply(sdk_config: &aws_config::SdkConfig, plan: &InitPlan) -> Result<()> {
    let bucket = plan.bucket.as_str();
    if plan.changes_setting(Setting::Bucket) {
        s3::create_bucket(sdk_config, bucket, &plan.region)
            .await
            .map_err(|source| step_error(bucket, Setting::Bucket, "CreateBucket", source))?;
    }
    if !plan.changes() {
        return Ok(());
    }
    let store = S3Store::open(sdk_config, bucket, "").await?;
    let client = store.client();
    if plan.changes_setting(Setting::PublicAccessBlock) {
        client
            .put_public_access_block()
            .bucket(bucket)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .ignore_public_acls(true)
                    .block_public_policy(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .map_err(|error| {
                step_error(
                    bucket,
                    Setting::PublicAccessBlock,
                    "PutPublicAccessBlock",
                    store.error("PutPublicAccessBlock", "", error),
                )
            })?;
    }
    if plan.changes_setting(Setting::ObjectOwnership) {
        let rule = OwnershipControlsRule::builder()
            .object_ownership(ObjectOwnership::BucketOwnerEnforced)
            .build()
            .map_err(|error| StoreError::Corrupt {
                key: "ownership controls".to_string(),
                message: error.to_string(),
            })?;
        let controls = OwnershipControls::builder()
            .rules(rule)
            .build()
            .map_err(|error| StoreError::Corrupt {
                key: "ownership controls".to_string(),
                message: error.to_string(),
            })?;
        client
            .put_bucket_ownership_controls()
            .bucket(bucket)
            .ownership_controls(controls)
            .send()
            .await
            .map_err(|error| {
                step_error(
                    bucket,
                    Setting::ObjectOwnership,
                    "PutBucketOwnershipControls",
                    store.error("PutBucketOwnershipControls", "", error),
                )
            })?;
    }
    if let Some(encryption) = &plan.encryption {
        client
            .put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(encryption.clone())
            .send()
            .await
            .map_err(|error| {
                step_error(
                    bucket,
                    Setting::DefaultEncryption,
                    "PutBucketEncryption",
                    store.error("PutBucketEncryption", "", error),
                )
            })?;
    }
    if plan.changes_setting(Setting::Versioning) {
        client
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(|error| {
                step_error(
                    bucket,
                    Setting::Versioning,
                    "PutBucketVersioning",
                    store.error("PutBucketVersioning", "", error),
                )
            })?;
    }
    if let Some(policy) = &plan.policy {
        client
            .put_bucket_policy()
            .bucket(bucket)
            .policy(policy)
            .send()
            .await
            .map_err(|error| {
                step_error(
                    bucket,
                    Setting::TlsOnlyPolicy,
                    "PutBucketPolicy",
                    store.error("PutBucketPolicy", "", error),
                )
            })?;
    }
    Ok(())
}

/// The location constraint of a new bucket (none in us-east-1).
pub(crate) fn bucket_configuration(region: &str) -> Option<CreateBucketConfiguration> {
    (region != "us-east-1").then(|| {
        CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(region))
            .build()
    })
}
