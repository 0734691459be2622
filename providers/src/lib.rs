//! The AWS provider: the only place skiff talks to EC2, Auto Scaling,
//! Elastic Load Balancing, IAM, Route53, SQS and EventBridge.
//!
//! Three jobs, one module each: [`lookups`] resolves what the spec only names
//! (images, the hosted zone, shared VPCs and subnets); [`refresh`] reads what
//! exists with a few filtered, paginated describe calls per resource type
//! (never one per resource); [`apply`] runs a plan's changes as a dependency
//! graph with bounded parallelism, retries and waiters, reporting every
//! outcome as it happens so an interrupted run loses nothing.
//! [`sdk_config`] is how every AWS client skiff makes is configured: its
//! timeouts, the SDK's retries and the client-side rate limit.
#![deny(missing_docs)]

pub mod apply;
pub mod error;
pub mod lookups;
pub mod operations;
pub mod rate_limit;
pub mod refresh;
pub mod retry;
pub mod sdk_config;
pub mod tags;

pub use error::{ErrorClass, ProviderError, Result};

/// Clients for every AWS service skiff uses, in one region.
#[derive(Debug, Clone)]
pub struct AwsProvider {
    /// EC2.
    pub ec2: aws_sdk_ec2::Client,
    /// Auto Scaling.
    pub autoscaling: aws_sdk_autoscaling::Client,
    /// Elastic Load Balancing v2.
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    /// IAM (global).
    pub iam: aws_sdk_iam::Client,
    /// Route53 (global).
    pub route53: aws_sdk_route53::Client,
    /// SQS (the node termination handler's queue).
    pub sqs: aws_sdk_sqs::Client,
    /// EventBridge (the rules that feed that queue).
    pub events: aws_sdk_eventbridge::Client,
    /// STS (the account the queue's policy names).
    pub sts: aws_sdk_sts::Client,
    /// The region.
    pub region: String,
    /// How long to retry passing failures.
    pub retry: retry::RetryPolicy,
}

impl AwsProvider {
    /// Clients from the shared configuration, in `region`.
    pub fn new(sdk_config: &aws_config::SdkConfig, region: &str) -> AwsProvider {
        let config = sdk_config
            .to_builder()
            .region(aws_config::Region::new(region.to_string()))
            .build();
        AwsProvider {
            ec2: aws_sdk_ec2::Client::new(&config),
            autoscaling: aws_sdk_autoscaling::Client::new(&config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
            route53: aws_sdk_route53::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            events: aws_sdk_eventbridge::Client::new(&config),
            sts: aws_sdk_sts::Client::new(&config),
            region: region.to_string(),
            retry: retry::RetryPolicy {
                dependencies: operations::holders::dependency_timeout_from_env()
                    .unwrap_or(retry::RetryPolicy::default().dependencies),
                ..retry::RetryPolicy::default()
            },
        }
    }
}
