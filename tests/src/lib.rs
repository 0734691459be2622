//! The integration-test harness: run the real `skiff` binary against a real
//! local AWS endpoint.
//!
//! Why this shape: skiff's hard bugs live where it meets AWS (retries,
//! throttling, eventual consistency, conditional writes to the state store).
//! A mocked SDK would test our assumptions about AWS, not skiff. So the tests
//! start the moto server behind `harness/local_aws.py` (which adds atomic S3
//! conditional writes, throttling, latency and call counting), point the
//! `skiff` binary at it through `AWS_ENDPOINT_URL`, and check the outcome by
//! exit code, output, the state store's bytes, and the resources the endpoint
//! now holds.
//!
//! The pieces:
//! - [`LocalAws`]: the endpoint, one per test (or [`LocalAws::shared`]);
//!   [`LocalAws::stats`] counts the calls skiff made.
//! - [`SandboxHome`]: an empty `HOME` per test.
//! - [`Skiff`]: a `skiff` command line in an isolated environment;
//!   [`SkiffOutput`] carries assertions that print everything on failure.
//! - [`StoreSnapshot`]: "the store is byte-for-byte unchanged".
//!
//! A typical test (the skiff subcommand here is illustrative):
//!
//! ```no_run
//! use skiff_tests::{LocalAws, SandboxHome, Skiff, StoreSnapshot};
//!
//! let aws = LocalAws::start();
//! let home = SandboxHome::new();
//! let bucket = aws.create_unique_bucket("state");
//! let store = format!("s3://{bucket}");
//!
//! let before = StoreSnapshot::of_bucket(&aws, &bucket);
//! aws.reset_stats();
//! Skiff::new(&aws, &home)
//!     .args(["delete", "cluster", "missing.example.com", "--state", &store])
//!     .run()
//!     .assert_exit(1)
//!     .assert_stderr_contains("missing.example.com");
//! before.assert_unchanged(&StoreSnapshot::of_bucket(&aws, &bucket));
//! assert_eq!(aws.stats().mutating_total(), 0);
//! ```
//!
//! Requirements: `python3` with `moto[server]` 5.2.x (`.ci/run` installs it),
//! and a built `skiff` binary (`cargo build -p skiff`).

#![deny(missing_docs)]

pub mod bench;
pub mod http;
mod local_aws;
mod sandbox;
mod skiff;
mod snapshot;
pub mod terraform;

use std::sync::atomic::{AtomicU64, Ordering};

pub use http::{fake_authorization, HttpResponse};
pub use local_aws::{
    harness_dir, LocalAws, LocalAwsOptions, Realism, StartError, Stats, HARNESS_USER_AGENT,
    TEST_REGION,
};
pub use sandbox::SandboxHome;
pub use skiff::{skiff_binary, RunningSkiff, Skiff, SkiffOutput, DEFAULT_TIMEOUT};
pub use snapshot::{SnapshotDiff, StoreSnapshot};

/// The options of `skiff create cluster` for the HA private cluster the
/// tests and the benchmark build as their reference: three zones, a
/// control-plane group and a node group in each, private subnets behind
/// three NAT gateways.
pub const HA_PRIVATE_CLUSTER: [&str; 8] = [
    "--zones",
    "us-east-1a,us-east-1b,us-east-1c",
    "--control-plane-count",
    "3",
    "--topology",
    "private",
    "--node-count",
    "3",
];

/// A name unique within this test process and valid as an S3 bucket name or
/// cluster name: `<prefix>-<pid>-<counter>`, lowercase, at most 63 chars.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let number = COUNTER.fetch_add(1, Ordering::Relaxed);
    let suffix = format!("-{}-{number}", std::process::id());
    let mut clean: String = prefix
        .chars()
        .map(|character| character.to_ascii_lowercase())
        .map(|character| {
            if character.is_ascii_alphanumeric() || character == '-' {
                character
            } else {
                '-'
            }
        })
        .collect();
    clean.truncate(63 - suffix.len());
    let clean = clean.trim_matches('-');
    let clean = if clean.is_empty() { "skiff" } else { clean };
    format!("{clean}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_distinct_and_bucket_safe() {
        let first = unique_name("State_Store");
        let second = unique_name("State_Store");
        assert_ne!(first, second);
        assert!(first.starts_with("state-store-"), "{first}");
        let long = unique_name(&"x".repeat(100));
        assert!(long.len() <= 63, "{long}");
        assert!(unique_name("--").starts_with("skiff-"));
    }
}
