//! How skiff talks to AWS at the SDK level: one place for the timeouts,
//! the SDK's own retries and the client-side rate limit, so that every
//! client (the provider's, the state store's) behaves the same and a
//! change of policy is made once.
//!
//! The policy: an unreachable endpoint fails in seconds (connect timeout);
//! throttling and 5xx answers are retried with exponential backoff and
//! jitter (the SDK's standard mode), bounded by [`AWS_MAX_ATTEMPTS`]
//! attempts within [`AWS_OPERATION_TIMEOUT`] per call; requests pass the
//! rate limit per API action or category ([`crate::rate_limit`]). Skiff's
//! own retry of passing failures ([`crate::retry`]) sits above this and may
//! try a call again.
//!
//! Not the SDK's adaptive mode: it slows the whole client (every action of
//! a service) after one throttling answer, while EC2 meters each action in
//! a bucket of its own, and skiff's rate limit already paces each bucket.
//! Started while another client held every EC2 bucket empty for two
//! seconds, the reference cluster's apply took 23 s and its delete 29 s in
//! adaptive mode, 7 s and 8 s in standard mode (3.5 s each without the
//! other client; `realistic_consistency` tests, time scale 0.05).

use std::time::Duration;

/// Attempts per AWS call (the first and the retries) before the SDK gives
/// up; skiff's own retry of passing failures ([`crate::retry`]) may then
/// try the call again, within its own time budget.
pub const AWS_MAX_ATTEMPTS: u32 = 8;

/// The most one AWS call may take, all its attempts and backoffs included.
pub const AWS_OPERATION_TIMEOUT: Duration = Duration::from_secs(180);

/// The AWS configuration from the standard chain (profiles, environment,
/// SSO, instance roles; `AWS_ENDPOINT_URL`) with skiff's timeouts, retries
/// and rate limit (see the module documentation).
pub async fn load() -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(60))
        .operation_timeout(AWS_OPERATION_TIMEOUT)
        .build();
    let retries = aws_config::retry::RetryConfig::standard()
        .with_max_attempts(AWS_MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(100))
        .with_max_backoff(Duration::from_secs(20));
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .retry_config(retries)
        .http_client(crate::rate_limit::rate_limited_https_client())
        .load()
        .await
}
