//! A state store in an S3 bucket (`s3://bucket[/prefix]`).
//!
//! Credentials, region and endpoint come from `aws-config`'s standard chain
//! (profiles, environment, SSO, instance roles; `AWS_ENDPOINT_URL`). The
//! bucket's own region is discovered with `HeadBucket`, so a store in
//! another region than the default works without extra flags. A custom
//! endpoint (an S3-compatible server, or the local test endpoint) gets
//! path-style addressing, which such endpoints need.

use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use aws_sdk_s3::Client;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use std::sync::Arc;
use tokio::sync::OnceCell;

use crate::security::DefaultEncryption;

use super::{check_key, ListedObject, Object, ObjectStore, Precondition, PutOptions, Version};
use crate::error::{Result, StoreError};

/// A state store in an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    endpoint: Option<String>,
    region: String,
    /// The bucket's default encryption, read once (by the security check
    /// or the first secret write): secret objects repeat it explicitly.
    encryption: Arc<OnceCell<DefaultEncryption>>,
}

/// The custom S3 endpoint configured in the environment, if any.
pub fn configured_endpoint() -> Option<String> {
    ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.trim().is_empty())
}

impl S3Store {
    /// Connects to the bucket: loads the AWS configuration, finds the
    /// bucket's region and checks that the bucket exists and is reachable.
    pub async fn open(
        sdk_config: &aws_config::SdkConfig,
        bucket: &str,
        prefix: &str,
    ) -> Result<S3Store> {
        let endpoint = configured_endpoint();
        let default_region = sdk_config
            .region()
            .map(ToString::to_string)
            .unwrap_or_else(|| "us-east-1".to_string());
        let client = make_client(sdk_config, &default_region, endpoint.is_some());
        let mut store = S3Store {
            client,
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            endpoint,
            region: default_region.clone(),
            encryption: Arc::new(OnceCell::new()),
        };
        match store.client.head_bucket().bucket(bucket).send().await {
            Ok(output) => {
                if let Some(region) = output.bucket_region() {
                    if region != default_region && store.endpoint.is_none() {
                        store.client = make_client(sdk_config, region, false);
                        store.region = region.to_string();
                    }
                }
                Ok(store)
            }
            Err(error) => {
                let region_header = error
                    .raw_response()
                    .and_then(|response| response.headers().get("x-amz-bucket-region"))
                    .map(str::to_string);
                if let Some(region) = region_header.filter(|region| *region != default_region) {
                    store.client = make_client(sdk_config, &region, store.endpoint.is_some());
                    store.region = region;
                    store
                        .client
                        .head_bucket()
                        .bucket(bucket)
                        .send()
                        .await
                        .map_err(|error| store.error("HeadBucket", "", error))?;
                    return Ok(store);
                }
                Err(store.error("HeadBucket", "", error))
            }
        }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix inside the bucket (no slashes at either end).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The bucket's region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The custom endpoint in use, if any.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The S3 client (for the bucket-level calls of [`crate::security`]).
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The bucket's default encryption, read once per run with
    /// `GetBucketEncryption` (or handed over by the security check).
    pub async fn default_encryption(&self) -> Result<&DefaultEncryption> {
        self.encryption
            .get_or_try_init(|| crate::security::read_default_encryption(self))
            .await
    }

    /// Records the default encryption the security check read, so that
    /// secret writes need no second `GetBucketEncryption`.
    pub(crate) fn remember_encryption(&self, encryption: DefaultEncryption) {
        let _ = self.encryption.set(encryption);
    }

    fn full_key(&self, key: &str) -> Result<String> {
        check_key(key).map_err(|reason| StoreError::BadLocation {
            location: key.to_string(),
            reason: reason.to_string(),
        })?;
        Ok(if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        })
    }

    fn relative<'key>(&self, full: &'key str) -> &'key str {
        if self.prefix.is_empty() {
            full
        } else {
            full.strip_prefix(&self.prefix)
                .map(|rest| rest.trim_start_matches('/'))
                .unwrap_or(full)
        }
    }

    pub(crate) fn error<E>(
        &self,
        operation: &str,
        key: &str,
        error: SdkError<E, HttpResponse>,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = match &error {
            SdkError::ServiceError(context) => Some(status_of(context.raw())),
            _ => None,
        };
        let code = error.code().map(str::to_string);
        let message = error.message().map(str::to_string);
        match (&error, code.as_deref(), status) {
            (SdkError::DispatchFailure(_) | SdkError::TimeoutError(_), _, _) => {
                let text =
                    aws_smithy_types::error::display::DisplayErrorContext(&error).to_string();
                if text.contains("credentials") || text.contains("credential") {
                    StoreError::NoCredentials {
                        source: Box::new(error),
                    }
                } else {
                    StoreError::Unreachable {
                        endpoint: self
                            .endpoint
                            .clone()
                            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", self.region)),
                        operation: operation.to_string(),
                        source: Box::new(error),
                    }
                }
            }
            (_, Some("NoSuchBucket"), _) | (_, _, Some(404))
                if operation == "HeadBucket" || code.as_deref() == Some("NoSuchBucket") =>
            {
                StoreError::BucketNotFound {
                    bucket: self.bucket.clone(),
                }
            }
            (_, Some("PreconditionFailed" | "ConditionalRequestConflict"), _)
            | (_, _, Some(412 | 409)) => StoreError::Conflict {
                what: "the object".to_string(),
                key: key.to_string(),
            },
            (
                _,
                Some("AccessDenied" | "Forbidden" | "InvalidAccessKeyId" | "SignatureDoesNotMatch"),
                _,
            )
            | (_, _, Some(403)) => StoreError::AccessDenied {
                operation: operation.to_string(),
                bucket: self.bucket.clone(),
                key: key.to_string(),
            },
            _ => StoreError::S3 {
                operation: operation.to_string(),
                bucket: self.bucket.clone(),
                key: key.to_string(),
                message: match (code, message) {
                    (Some(code), Some(message)) => format!("{code}: {message}"),
                    (Some(code), None) => code,
                    (None, Some(message)) => message,
                    (None, None) => {
                        aws_smithy_types::error::display::DisplayErrorContext(&error).to_string()
                    }
                },
            },
        }
    }
}

fn status_of(response: &HttpResponse) -> u16 {
    response.status().as_u16()
}

/// Attempts per state-store request before it fails.
const STORE_MAX_ATTEMPTS: u32 = 8;

fn make_client(sdk_config: &aws_config::SdkConfig, region: &str, path_style: bool) -> Client {
    // Standard retries, not the adaptive mode the cloud services get: the
    // store makes few, small, mostly sequential requests, and one throttled
    // answer must not slow all the following ones to a crawl.
    let retries = aws_config::retry::RetryConfig::standard()
        .with_max_attempts(STORE_MAX_ATTEMPTS)
        .with_initial_backoff(std::time::Duration::from_millis(50))
        .with_max_backoff(std::time::Duration::from_secs(5));
    let config = aws_sdk_s3::config::Builder::from(sdk_config)
        .region(aws_sdk_s3::config::Region::new(region.to_string()))
        .force_path_style(path_style)
        .retry_config(retries)
        .build();
    Client::from_conf(config)
}

/// Creates `bucket` in `region` (`skiff state init` on a missing bucket).
pub(crate) async fn create_bucket(
    sdk_config: &aws_config::SdkConfig,
    bucket: &str,
    region: &str,
) -> Result<()> {
    let endpoint = configured_endpoint();
    let store = S3Store {
        client: make_client(sdk_config, region, endpoint.is_some()),
        bucket: bucket.to_string(),
        prefix: String::new(),
        endpoint,
        region: region.to_string(),
        encryption: Arc::new(OnceCell::new()),
    };
    store
        .client
        .create_bucket()
        .bucket(bucket)
        .set_create_bucket_configuration(crate::security::init::bucket_configuration(region))
        .send()
        .await
        .map(|_| ())
        .map_err(|error| store.error("CreateBucket", "", error))
}

fn etag(value: Option<&str>) -> Version {
    Version(value.unwrap_or_default().trim_matches('"').to_string())
}

#[async_trait]
impl ObjectStore for S3Store {
    fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Object>> {
        let full = self.full_key(key)?;
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(output) => {
                let version = etag(output.e_tag());
                let bytes = output
                    .body
                    .collect()
                    .await
                    .map_err(|error| StoreError::S3 {
                        operation: "GetObject".to_string(),
                        bucket: self.bucket.clone(),
                        key: full.clone(),
                        message: format!("reading the body failed: {error}"),
                    })?;
                Ok(Some(Object {
                    bytes: bytes.into_bytes().to_vec(),
                    version,
                }))
            }
            Err(error) => {
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_no_such_key())
                {
                    return Ok(None);
                }
                Err(self.error("GetObject", &full, error))
            }
        }
    }

    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        precondition: Precondition,
        options: PutOptions,
    ) -> Result<Version> {
        let full = self.full_key(key)?;
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .body(ByteStream::from(bytes));
        request = match &precondition {
            Precondition::None => request,
            Precondition::DoesNotExist => request.if_none_match("*"),
            Precondition::Matches(version) => request.if_match(format!("\"{}\"", version.0)),
        };
        if options.secret {
            // Explicit, whatever the bucket's default: a secret is never
            // stored unencrypted, and with the store's KMS key when it has one.
            request = match self.default_encryption().await? {
                DefaultEncryption::Kms { key: Some(key), .. } => request
                    .server_side_encryption(ServerSideEncryption::AwsKms)
                    .ssekms_key_id(key),
                DefaultEncryption::Kms { key: None, .. } => {
                    request.server_side_encryption(ServerSideEncryption::AwsKms)
                }
                DefaultEncryption::S3Managed | DefaultEncryption::None => {
                    request.server_side_encryption(ServerSideEncryption::Aes256)
                }
            };
        }
        match request.send().await {
            Ok(output) => Ok(etag(output.e_tag())),
            Err(error) => {
                // S3 answers a failed If-Match on a missing object with 404.
                if matches!(precondition, Precondition::Matches(_))
                    && matches!(&error, SdkError::ServiceError(context) if status_of(context.raw()) == 404)
                {
                    return Err(StoreError::Conflict {
                        what: "the object".to_string(),
                        key: full,
                    });
                }
                Err(self.error("PutObject", &full, error))
            }
        }
    }

    async fn delete(&self, key: &str, precondition: Precondition) -> Result<()> {
        let full = self.full_key(key)?;
        let mut request = self.client.delete_object().bucket(&self.bucket).key(&full);
        match &precondition {
            Precondition::None => {}
            Precondition::DoesNotExist => {
                return Err(StoreError::Conflict {
                    what: "the object".to_string(),
                    key: full,
                })
            }
            Precondition::Matches(version) => {
                request = request.if_match(format!("\"{}\"", version.0))
            }
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error) => {
                if matches!(precondition, Precondition::Matches(_))
                    && matches!(&error, SdkError::ServiceError(context) if status_of(context.raw()) == 404)
                {
                    return Err(StoreError::Conflict {
                        what: "the object".to_string(),
                        key: full,
                    });
                }
                Err(self.error("DeleteObject", &full, error))
            }
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        // One listing, sorted by key; the sizes are simply not kept.
        let objects = self.list_sized(prefix).await?;
        Ok(objects.into_iter().map(|object| object.key).collect())
    }

    async fn list_sized(&self, prefix: &str) -> Result<Vec<ListedObject>> {
        let full_prefix = if self.prefix.is_empty() {
            prefix.to_string()
        } else {
            format!("{}/{prefix}", self.prefix)
        };
        let mut objects = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full_prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| self.error("ListObjectsV2", &full_prefix, error))?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    objects.push(ListedObject {
                        key: self.relative(key).to_string(),
                        size: u64::try_from(object.size().unwrap_or_default()).unwrap_or_default(),
                    });
                }
            }
        }
        objects.sort_by(|first, second| first.key.cmp(&second.key));
        Ok(objects)
    }

    async fn list_folders(&self, prefix: &str) -> Result<Vec<String>> {
        let full_prefix = match (self.prefix.is_empty(), prefix.is_empty()) {
            (true, _) => prefix.to_string(),
            (false, true) => format!("{}/", self.prefix),
            (false, false) => format!("{}/{prefix}", self.prefix),
        };
        let mut names = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full_prefix)
            .delimiter("/")
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| self.error("ListObjectsV2", &full_prefix, error))?;
            for common in page.common_prefixes() {
                if let Some(folder) = common.prefix() {
                    let name = folder
                        .strip_prefix(&full_prefix)
                        .unwrap_or(folder)
                        .trim_end_matches('/');
                    if !name.is_empty() {
                        names.push(name.to_string());
                    }
                }
            }
        }
        names.sort();
        Ok(names)
    }
}
