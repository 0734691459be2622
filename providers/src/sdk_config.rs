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

/// Why the AWS configuration cannot be used, found before the first call,
/// each in words that say what to set or run. The credential chain's own
/// account of every provider it tried is left out: it names what skiff
/// looked at, not what the user should do (`-v` logs it).
#[derive(Debug, thiserror::Error)]
pub enum AwsSetupError {
    /// No provider of the chain had credentials (a new user outside AWS).
    #[error(
        "no AWS credentials found: set AWS_PROFILE to a profile of ~/.aws/config (made by `aws configure` or `aws configure sso`), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY{region}"
    )]
    NoCredentials {
        /// What to set for the region too, when none is configured.
        region: String,
    },
    /// The profile's IAM Identity Center (SSO) session ran out.
    #[error("the AWS SSO session of profile {profile} has expired: run `aws sso login --profile {profile}`, then this command again")]
    SsoSessionExpired {
        /// The profile (`AWS_PROFILE`, else `default`).
        profile: String,
    },
    /// The profile could not give credentials for another reason.
    #[error("the AWS credentials of profile {profile} cannot be loaded ({reason}): fix the profile in ~/.aws/config, or set AWS_PROFILE to another")]
    Profile {
        /// The profile.
        profile: String,
        /// The chain's reason, first line only.
        reason: String,
    },
}

/// The profile the chain reads: `AWS_PROFILE`, else `default`.
fn profile_name() -> String {
    std::env::var("AWS_PROFILE")
        .ok()
        .filter(|profile| !profile.trim().is_empty())
        .unwrap_or_else(|| "default".to_string())
}

/// Resolves the credentials of `config` once, so that a missing or expired
/// login is one clear error before any call, not a wall of provider
/// attempts after the first. (The SDK resolves them again, through its
/// cache, for the calls themselves: for environment or profile keys that
/// costs nothing, for SSO or an assumed role one more request.)
pub async fn check_credentials(config: &aws_config::SdkConfig) -> Result<(), AwsSetupError> {
    use aws_credential_types::provider::ProvideCredentials;

    let region = match config.region() {
        Some(_) => String::new(),
        None => "; and set AWS_REGION (e.g. us-east-1), or `region` in the profile".to_string(),
    };
    let Some(provider) = config.credentials_provider() else {
        return Err(AwsSetupError::NoCredentials { region });
    };
    let error = match provider.provide_credentials().await {
        Ok(_) => return Ok(()),
        Err(error) => error,
    };
    let text = aws_smithy_types::error::display::DisplayErrorContext(&error).to_string();
    tracing::debug!("resolving AWS credentials failed: {text}");
    Err(classify_credentials_error(
        &error,
        &text,
        profile_name(),
        region,
    ))
}

/// An error and its causes, each by its `Display` only (the SDK's
/// `DisplayErrorContext` adds the whole `Debug` form), cut to one line.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    let line = parts.join(": ").replace('\n', " ");
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}

/// Which of [`AwsSetupError`] a failure of the credential chain is.
fn classify_credentials_error(
    error: &aws_credential_types::provider::error::CredentialsError,
    text: &str,
    profile: String,
    region: String,
) -> AwsSetupError {
    use aws_credential_types::provider::error::CredentialsError;
    let lower = text.to_ascii_lowercase();
    // aws-config's SSO token provider: "the SSO token has expired and cannot
    // be refreshed"; the legacy SSO provider and the SSO service itself
    // (GetRoleCredentials' UnauthorizedException: "Session token not found
    // or invalid") say it in their own words.
    if lower.contains("sso")
        && (lower.contains("expired") || lower.contains("session token not found"))
    {
        return AwsSetupError::SsoSessionExpired { profile };
    }
    let profile_set = std::env::var("AWS_PROFILE").is_ok_and(|value| !value.trim().is_empty());
    // Nothing configured, and the chain's last resort, the instance
    // metadata service, failed: outside AWS, where it cannot be reached
    // (or a proxy refuses it), that means no credentials at all.
    let only_instance_metadata = !profile_set && lower.contains("imds");
    match error {
        _ if only_instance_metadata => AwsSetupError::NoCredentials { region },
        CredentialsError::CredentialsNotLoaded(_) if profile_set => AwsSetupError::Profile {
            profile,
            reason: "it is not in ~/.aws/config or ~/.aws/credentials, or gives no keys, SSO login or role".to_string(),
        },
        CredentialsError::CredentialsNotLoaded(_) => AwsSetupError::NoCredentials { region },
        _ => AwsSetupError::Profile {
            profile,
            reason: causes(error),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::error::CredentialsError;

    fn classify(error: CredentialsError) -> AwsSetupError {
        let text = aws_smithy_types::error::display::DisplayErrorContext(&error).to_string();
        classify_credentials_error(&error, &text, "dev".to_string(), String::new())
    }

    #[test]
    fn an_expired_sso_token_says_aws_sso_login() {
        let error = classify(CredentialsError::provider_error(
            "the SSO token has expired and cannot be refreshed",
        ));
        assert!(
            matches!(error, AwsSetupError::SsoSessionExpired { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("aws sso login --profile dev"));
    }

    #[test]
    fn an_empty_chain_says_what_to_set() {
        let error = classify(CredentialsError::not_loaded(
            "no credentials found in chain",
        ));
        let text = error.to_string();
        // Which variant depends on whether the test's environment sets
        // AWS_PROFILE (read by the classification); each names what to set.
        if std::env::var("AWS_PROFILE").is_ok_and(|value| !value.trim().is_empty()) {
            assert!(matches!(error, AwsSetupError::Profile { .. }), "{text}");
            assert!(text.contains("profile dev"), "{text}");
        } else {
            assert!(
                matches!(error, AwsSetupError::NoCredentials { .. }),
                "{text}"
            );
            assert!(text.contains("AWS_PROFILE"), "{text}");
        }
    }
}
