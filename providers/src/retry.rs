//! Retrying AWS calls that fail for reasons that pass: eventual consistency
//! right after a create, dependencies still being torn down during a delete,
//! and throttling beyond what the SDK's own retries absorbed. Backoff is
//! exponential with jitter and bounded in total time, so a real failure
//! still surfaces.
//!
//! Every ID an apply names was created by this run or read by its refresh
//! a moment ago, so "no such resource" from a call naming it
//! ([`ErrorClass::NotYetVisible`]) means AWS has not propagated it yet
//! ("Eventual consistency in the Amazon EC2 API"; IAM instance profiles take
//! seconds to reach EC2's launches): such a call is retried for
//! [`RetryPolicy::propagation`], as Terraform's AWS provider retries for its
//! `PropagationTimeout` (two minutes). A resource still not found after
//! that is missing for real (deleted outside skiff): the error then counts
//! as [`ErrorClass::NotFound`] and says so, naming the resource and the
//! call.

use std::future::Future;
use std::time::Duration;

use crate::error::{ErrorClass, ProviderError};

/// How long to keep retrying each class of error.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// For throttling and transient failures.
    pub transient: Duration,
    /// For a resource this run created or read that AWS does not show yet.
    pub propagation: Duration,
    /// How long a refresh keeps looking for a recorded resource its
    /// listing left out before counting it as deleted.
    pub absence: Duration,
    /// For dependency violations during deletes.
    pub dependencies: Duration,
    /// The first wait.
    pub first_delay: Duration,
    /// The longest single wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            transient: Duration::from_secs(120),
            propagation: Duration::from_secs(120),
            absence: Duration::from_secs(4),
            dependencies: Duration::from_secs(600),
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

/// A little randomness without a random-number dependency: the low bits of
/// the clock are random enough to spread retries apart.
fn jitter(delay: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    let fraction = f64::from(nanos % 1000) / 1000.0;
    delay.mul_f64(0.5 + fraction / 2.0)
}

/// A resource not found for the whole propagation time: missing for real.
fn missing(error: ProviderError, waited: Duration) -> ProviderError {
    ProviderError {
        message: format!(
            "{} (still not found after {}s of waiting for AWS to propagate it: check that it \
             exists in this account, region and VPC; if it was deleted outside skiff, run the \
             command again to plan it anew)",
            error.message,
            waited.as_secs()
        ),
        class: ErrorClass::NotFound,
        ..error
    }
}

/// Runs `call` until it succeeds, fails for good, or its class's time runs out.
pub async fn retry<T, F, Fut>(policy: &RetryPolicy, mut call: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let started = tokio::time::Instant::now();
    let mut delay = policy.first_delay;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(error) => {
                let budget = match error.class {
                    ErrorClass::Transient => policy.transient,
                    ErrorClass::NotYetVisible => policy.propagation,
                    ErrorClass::DependencyViolation => policy.dependencies,
                    _ => return Err(error),
                };
                if started.elapsed() + delay > budget {
                    return Err(if error.class == ErrorClass::NotYetVisible {
                        missing(error, started.elapsed())
                    } else {
                        error
                    });
                }
                tracing::debug!(
                    "{} for {}: {}; retrying in {:?}",
                    error.operation,
                    error.resource,
                    error.message,
                    delay
                );
                tokio::time::sleep(jitter(delay)).await;
                delay = (delay * 2).min(policy.max_delay);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn not_visible() -> ProviderError {
        ProviderError {
            operation: "ec2:CreateRoute".to_string(),
            resource: "route-table/public".to_string(),
            code: Some("InvalidRouteTableID.NotFound".to_string()),
            message: "InvalidRouteTableID.NotFound: The routeTable ID 'rtb-1' does not exist"
                .to_string(),
            class: ErrorClass::NotYetVisible,
        }
    }

    fn quick(propagation: Duration) -> RetryPolicy {
        RetryPolicy {
            propagation,
            first_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            ..RetryPolicy::default()
        }
    }

    #[tokio::test]
    async fn a_resource_that_becomes_visible_is_retried_until_it_is() {
        let calls = AtomicUsize::new(0);
        let result = retry(&quick(Duration::from_secs(5)), || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 3 {
                Err(not_visible())
            } else {
                Ok("done")
            }
        })
        .await;
        assert_eq!(result.expect("visible at the fourth call"), "done");
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_resource_missing_for_the_whole_propagation_time_is_missing() {
        let error = retry(&quick(Duration::from_millis(100)), || async {
            Err::<(), _>(not_visible())
        })
        .await
        .expect_err("never visible");
        assert_eq!(error.class, ErrorClass::NotFound);
        let text = error.to_string();
        assert!(
            text.contains("ec2:CreateRoute for route-table/public failed")
                && text.contains("rtb-1")
                && text.contains("deleted outside skiff"),
            "{text}"
        );
    }
}
