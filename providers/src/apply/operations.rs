//! The seam between the executor and the cloud: the three calls the
//! executor makes on a resource, and nothing else.
//!
//! The executor decides the order, the parallelism, what waits for what and
//! what is recorded when; the cloud side only creates, updates and deletes.
//! Keeping that boundary a trait lets the scheduling be tested against an
//! in-memory fake in milliseconds, while the integration tests against the
//! local endpoint prove the AWS side ([`AwsProvider`]).

use async_trait::async_trait;
use skiff_plans::resource::{Attributes, ResourceKey};

use crate::error::ProviderError;
use crate::operations::Applied;
use crate::AwsProvider;

/// What the executor asks of the cloud, per resource. Every call receives
/// attributes whose references are resolved.
#[async_trait]
pub trait ResourceOperations: Send + Sync {
    /// Creates a resource. `intent` is the token of the recorded intent:
    /// creates whose API takes an idempotency token derive theirs from it.
    async fn create(
        &self,
        key: &ResourceKey,
        attributes: &Attributes,
        intent: &str,
    ) -> Result<Applied, ProviderError>;

    /// Changes the resource `id` in place from `current` to `desired`.
    async fn update(
        &self,
        key: &ResourceKey,
        id: &str,
        current: &Attributes,
        desired: &Attributes,
    ) -> Result<Applied, ProviderError>;

    /// Deletes the resource `id`, described by `current`.
    async fn delete(
        &self,
        key: &ResourceKey,
        id: &str,
        current: &Attributes,
    ) -> Result<(), ProviderError>;
}

#[async_trait]
impl ResourceOperations for AwsProvider {
    async fn create(
        &self,
        key: &ResourceKey,
        attributes: &Attributes,
        intent: &str,
    ) -> Result<Applied, ProviderError> {
        AwsProvider::create(self, key, attributes, intent).await
    }

    async fn update(
        &self,
        key: &ResourceKey,
        id: &str,
        current: &Attributes,
        desired: &Attributes,
    ) -> Result<Applied, ProviderError> {
        AwsProvider::update(self, key, id, current, desired).await
    }

    async fn delete(
        &self,
        key: &ResourceKey,
        id: &str,
        current: &Attributes,
    ) -> Result<(), ProviderError> {
        AwsProvider::delete(self, key, id, current).await
    }
}
