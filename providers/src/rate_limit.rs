//! A client-side rate limit on AWS calls, per service and API category, so
//! that a large apply stays inside the request rates AWS grants an account
//! instead of provoking throttling and then backing off.
//!
//! AWS meters API requests with token buckets per account and region: each
//! request takes a token, a bucket refills at a fixed rate, and an empty
//! bucket answers `RequestLimitExceeded` / `Throttling`. EC2 documents its
//! buckets ("Request throttling for the Amazon EC2 API"): each API action
//! has a bucket of its own, sized by its category (non-mutating actions:
//! 100 tokens, 20 a second; mutating actions: 50 tokens, 5 a second; a few
//! "uncategorized" actions their own, e.g. `CreateTags` 100 and 10 a
//! second, `CreateNatGateway` 10 and 1 a second). Route53 allows five
//! requests a second per account; the other services publish no figures,
//! so they get buckets a little above what a 100-group cluster needs in one
//! burst. skiff keeps a bucket of its own with those sizes and rates for
//! each EC2 action and for each (service, category) of the others, so a
//! burst the size of a whole cluster goes out at once and a longer one is
//! paced at the refill rate rather than failing. The S3 state store is not
//! limited (S3 takes thousands of writes a second per prefix).
//! The local endpoint's `--token-buckets` meters EC2 with the same table
//! (`tests/harness/local_aws.py`), and the integration tests check that
//! the reference cluster's apply, rolling update and delete are never
//! throttled by it.
//!
//! The limit sits in the HTTP client, under the SDK's retry loop, so it
//! paces every attempt of every call, retries included. When AWS throttles
//! anyway (other tools share the account's buckets), the SDK's retries back
//! off per call ([`crate::sdk_config`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::{tls, Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use tokio::time::Instant;

/// Whether a call reads or changes something: AWS meters the two apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// `Describe*`, `Get*`, `List*`, and HTTP `GET`/`HEAD`.
    Read,
    /// Everything else.
    Mutate,
}

/// The size and refill rate of one token bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSize {
    /// Requests that may go out at once.
    pub burst: f64,
    /// Tokens added per second.
    pub per_second: f64,
}

/// The bucket of a service's category; `None` for calls that are not
/// limited (the state store's S3 traffic, unknown services).
pub fn bucket_size(service: &str, category: Category) -> Option<BucketSize> {
    let (burst, per_second) = match (service, category) {
        // Documented: "Request throttling for the Amazon EC2 API" (per
        // action: see `ec2_action_bucket`; these for a call without one).
        ("ec2", Category::Read) => (100.0, 20.0),
        ("ec2", Category::Mutate) => (50.0, 5.0),
        // Documented: five requests per second per account.
        ("route53", _) => (5.0, 5.0),
        // Undocumented: room for a 100-group cluster's burst, then a
        // steady rate well under what these services accept.
        ("autoscaling" | "elasticloadbalancing" | "iam" | "sts", Category::Read) => (100.0, 20.0),
        ("autoscaling" | "elasticloadbalancing" | "iam" | "sts", Category::Mutate) => (150.0, 10.0),
        _ => return None,
    };
    Some(BucketSize { burst, per_second })
}

/// The bucket of one EC2 action: each action is metered on its own, with
/// its category's size ("Request token bucket sizes and refill rates") or,
/// for the "uncategorized actions" skiff calls, its own.
pub fn ec2_action_bucket(action: &str, category: Category) -> BucketSize {
    let (burst, per_second) = match action {
        "CreateTags" | "DeleteTags" => (100.0, 10.0),
        "CreateNatGateway" | "DeleteNatGateway" => (10.0, 1.0),
        "CreateLaunchTemplateVersion"
        | "ModifyLaunchTemplate"
        | "CreateNetworkInterface"
        | "DeleteNetworkInterface"
        | "ModifyNetworkInterfaceAttribute" => (100.0, 5.0),
        _ if category == Category::Read => (100.0, 20.0),
        _ => (50.0, 5.0),
    };
    BucketSize { burst, per_second }
}

/// The EC2 action of a signed query-protocol request, if it is one.
pub fn ec2_action(request: &HttpRequest) -> Option<String> {
    request.body().bytes().and_then(query_action)
}

/// The service (from the SigV4 credential scope) and category of a signed
/// request.
pub fn classify(request: &HttpRequest) -> Option<(String, Category)> {
    let authorization = request.headers().get("authorization")?;
    let scope = authorization.split("Credential=").nth(1)?;
    // `AKID/20261202/us-east-1/ec2/aws4_request, SignedHeaders=...`
    let service = scope.split('/').nth(3)?.to_string();
    let method = request.method();
    let category = if method == "GET" || method == "HEAD" {
        Category::Read
    } else {
        match request.body().bytes().and_then(query_action) {
            Some(action) if is_read_action(&action) => Category::Read,
            _ => Category::Mutate,
        }
    };
    Some((service, category))
}

/// The `Action` of a query-protocol request body (EC2, Auto Scaling, ELB,
/// IAM, STS): `Action=DescribeVpcs&Version=...`.
fn query_action(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .map(str::to_string)
}

fn is_read_action(action: &str) -> bool {
    ["Describe", "Get", "List"]
        .iter()
        .any(|prefix| action.starts_with(prefix))
}

/// One token bucket.
#[derive(Debug)]
struct Bucket {
    size: BucketSize,
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    fn new(size: BucketSize, now: Instant) -> Bucket {
        Bucket {
            size,
            tokens: size.burst,
            refilled: now,
        }
    }

    /// Takes a token at `now`, or says how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.size.per_second).min(self.size.burst);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.size.per_second,
            ))
        }
    }
}

/// The buckets of one skiff process, created on first use.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<(String, Category), Bucket>>,
}

impl RateLimiter {
    /// Waits until a call of `service`'s `category` (EC2: of `action`) may
    /// go out.
    pub async fn acquire(&self, service: &str, category: Category) {
        self.acquire_action(service, category, None).await;
    }

    /// Like [`RateLimiter::acquire`]; an EC2 call with its `action` takes
    /// from that action's bucket.
    pub async fn acquire_action(&self, service: &str, category: Category, action: Option<&str>) {
        let Some(mut size) = bucket_size(service, category) else {
            return;
        };
        let mut key = service.to_string();
        if let ("ec2", Some(action)) = (service, action) {
            size = ec2_action_bucket(action, category);
            key = format!("ec2:{action}");
        }
        // Route53's limit covers every call of the account, reads included.
        let category = if service == "route53" {
            Category::Mutate
        } else {
            category
        };
        loop {
            let wait = {
                let mut buckets = self
                    .buckets
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let now = Instant::now();
                let bucket = buckets
                    .entry((key.clone(), category))
                    .or_insert_with(|| Bucket::new(size, now));
                match bucket.take(now) {
                    Ok(()) => return,
                    Err(wait) => wait,
                }
            };
            tracing::trace!("{service} {category:?} calls paced: waiting {wait:?}");
            tokio::time::sleep(wait).await;
        }
    }
}

/// The SDK's default HTTPS client (rustls, proxy settings from the
/// environment) with the rate limit in front of it.
pub fn rate_limited_https_client() -> SharedHttpClient {
    let inner = Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    });
    SharedHttpClient::new(RateLimitedClient {
        inner,
        limiter: Arc::new(RateLimiter::default()),
    })
}

#[derive(Debug)]
struct RateLimitedClient {
    inner: SharedHttpClient,
    limiter: Arc<RateLimiter>,
}

impl HttpClient for RateLimitedClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(RateLimitedConnector {
            inner: self.inner.http_connector(settings, components),
            limiter: self.limiter.clone(),
        })
    }
}

#[derive(Debug)]
struct RateLimitedConnector {
    inner: SharedHttpConnector,
    limiter: Arc<RateLimiter>,
}

impl HttpConnector for RateLimitedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let limiter = self.limiter.clone();
        HttpConnectorFuture::new(async move {
            if let Some((service, category)) = classify(&request) {
                let action = (service == "ec2").then(|| ec2_action(&request)).flatten();
                limiter
                    .acquire_action(&service, category, action.as_deref())
                    .await;
            }
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::body::SdkBody;

    fn signed(method: &str, service: &str, body: &str) -> HttpRequest {
        let mut request = HttpRequest::new(SdkBody::from(body.to_string()));
        request.set_method(method).expect("a method");
        request.headers_mut().insert(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261202/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=abc"
            ),
        );
        request
    }

    #[test]
    fn requests_are_classified_by_service_and_action() {
        let describe = signed("POST", "ec2", "Action=DescribeVpcs&Version=2016-11-15");
        assert_eq!(
            classify(&describe),
            Some(("ec2".to_string(), Category::Read))
        );
        let create = signed("POST", "ec2", "Action=CreateVpc&CidrBlock=10.0.0.0%2F16");
        assert_eq!(
            classify(&create),
            Some(("ec2".to_string(), Category::Mutate))
        );
        let list = signed("POST", "iam", "Version=2010-05-08&Action=ListRoles");
        assert_eq!(classify(&list), Some(("iam".to_string(), Category::Read)));
        let zone = signed("GET", "route53", "");
        assert_eq!(
            classify(&zone),
            Some(("route53".to_string(), Category::Read))
        );
        let change = signed("POST", "route53", "<ChangeResourceRecordSetsRequest/>");
        assert_eq!(
            classify(&change),
            Some(("route53".to_string(), Category::Mutate))
        );
        let unsigned = HttpRequest::new(SdkBody::from("Action=DescribeVpcs"));
        assert_eq!(classify(&unsigned), None);
    }

    #[tokio::test]
    async fn each_ec2_action_has_a_bucket_of_its_documented_size() {
        assert_eq!(
            ec2_action_bucket("DescribeVpcs", Category::Read),
            BucketSize {
                burst: 100.0,
                per_second: 20.0
            }
        );
        assert_eq!(
            ec2_action_bucket("CreateSubnet", Category::Mutate),
            BucketSize {
                burst: 50.0,
                per_second: 5.0
            }
        );
        assert_eq!(
            ec2_action_bucket("CreateNatGateway", Category::Mutate),
            BucketSize {
                burst: 10.0,
                per_second: 1.0
            }
        );
        let limiter = RateLimiter::default();
        for _ in 0..50 {
            limiter
                .acquire_action("ec2", Category::Mutate, Some("CreateSubnet"))
                .await;
        }
        // The 51st CreateSubnet waits for the refill, as EC2 would refuse
        // it; another action does not.
        let subnet = tokio::time::timeout(
            Duration::from_millis(50),
            limiter.acquire_action("ec2", Category::Mutate, Some("CreateSubnet")),
        )
        .await;
        assert!(subnet.is_err(), "a 51st CreateSubnet went out at once");
        tokio::time::timeout(
            Duration::from_millis(50),
            limiter.acquire_action("ec2", Category::Mutate, Some("CreateRouteTable")),
        )
        .await
        .expect("another action has its own bucket");
        let request = signed("POST", "ec2", "Action=CreateSubnet&Version=2016-11-15");
        assert_eq!(ec2_action(&request).as_deref(), Some("CreateSubnet"));
    }

    #[test]
    fn the_state_store_is_not_limited() {
        assert_eq!(bucket_size("s3", Category::Mutate), None);
        assert_eq!(bucket_size("s3", Category::Read), None);
        assert!(bucket_size("ec2", Category::Mutate).is_some());
    }

    #[test]
    fn a_burst_goes_out_at_once_and_the_rest_at_the_refill_rate() {
        let size = bucket_size("route53", Category::Mutate).expect("route53 is limited");
        let start = Instant::now();
        let mut bucket = Bucket::new(size, start);
        for call in 0..size.burst as usize {
            assert_eq!(
                bucket.take(start),
                Ok(()),
                "call {call} of the burst waited"
            );
        }
        // Empty: the next token comes after 1/rate seconds.
        let wait = bucket.take(start).expect_err("the bucket is empty");
        assert_eq!(wait, Duration::from_secs_f64(1.0 / size.per_second));
        // Ten seconds later, it has refilled up to its burst, no further.
        let later = start + Duration::from_secs(10);
        for _ in 0..size.burst as usize {
            assert_eq!(bucket.take(later), Ok(()));
        }
        assert!(bucket.take(later).is_err());
        // Half a token's time gives half a token: still a wait, shorter.
        let half = later + Duration::from_secs_f64(0.5 / size.per_second);
        let wait = bucket.take(half).expect_err("half a token");
        assert!(wait < Duration::from_secs_f64(1.0 / size.per_second));
    }

    #[tokio::test]
    async fn services_and_categories_have_buckets_of_their_own() {
        let limiter = RateLimiter::default();
        let size = bucket_size("route53", Category::Mutate).expect("route53 is limited");
        for _ in 0..size.burst as usize {
            limiter.acquire("route53", Category::Mutate).await;
        }
        // Route53's one limit covers reads too: a read now waits.
        let read = tokio::time::timeout(
            Duration::from_millis(50),
            limiter.acquire("route53", Category::Read),
        )
        .await;
        assert!(
            read.is_err(),
            "a Route53 read went out past the account's limit"
        );
        // Other services and categories are not held up; S3 is not limited.
        let others = async {
            limiter.acquire("ec2", Category::Mutate).await;
            limiter.acquire("ec2", Category::Read).await;
            for _ in 0..1000 {
                limiter.acquire("s3", Category::Mutate).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), others)
            .await
            .expect("calls of other buckets went out at once");
    }
}
