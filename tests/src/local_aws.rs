//! The local AWS endpoint: `harness/local_aws.py` (the moto server behind a
//! small middleware) run as a child process of the test.
//!
//! Integration tests talk to a real HTTP endpoint rather than a mocked SDK so
//! that the `skiff` binary under test goes through exactly the code it runs
//! in production: SDK serialization, retries, error parsing. The Python side
//! adds what moto lacks (atomic S3 conditional writes, throttling, latency,
//! call accounting); this side starts it, finds its port and cleans it up.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::http::{self, fake_authorization, HttpResponse};

/// How long the server may take to import moto and bind its port. Generous:
/// the test machine may be busy compiling on both cores.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// The User-Agent marker that makes the endpoint treat a request as the
/// harness's own (no latency, no throttling, not in `calls`).
pub const HARNESS_USER_AGENT: &str = "skiff-harness";

/// The region every test runs in.
pub const TEST_REGION: &str = "us-east-1";

/// How to run the local endpoint. `Default` is a fast, reliable endpoint that
/// knows the AMIs in `tests/harness/amis.json`.
#[derive(Clone, Debug)]
pub struct LocalAwsOptions {
    /// Sleep this long before serving each counted request.
    pub latency_ms: u64,
    /// Share (0.0..=1.0) of mutating calls answered with a throttling error.
    pub throttle_rate: f64,
    /// Seed for the throttling dice, so a failing run can be replayed.
    pub seed: u64,
    /// AMI catalogue in moto's `amis.json` format; `None` keeps moto's own
    /// (2017-era images without creation dates).
    pub amis: Option<PathBuf>,
    /// Python interpreter; default `$SKIFF_TEST_PYTHON`, else `python3`.
    pub python: Option<PathBuf>,
    /// Auto scaling instances report `Pending` this long after launch before
    /// `InService` (a model of boot time, for benchmarks; 0: at once).
    pub boot_ms: u64,
    /// Make moto's slow first request of every service before the endpoint
    /// reports ready, uncounted (for benchmarks: see `--warm-up` in
    /// `tests/harness/local_aws.py`).
    pub warm_up: bool,
    /// For the harness's own tests: sleep this long inside moto's S3 write,
    /// after its precondition check, to widen the race the write lock closes.
    pub s3_race_window_ms: u64,
    /// For the harness's own tests: `false` turns the S3 write lock off.
    pub s3_write_lock: bool,
    /// The realistic model of AWS (`--time-scale` and the behaviour flags of
    /// `tests/harness/local_aws.py`); all off by default.
    pub realism: Realism,
}

/// How much of production AWS's behaviour the endpoint models: each field a
/// switch of `tests/harness/local_aws.py` (see "Realistic AWS" there).
/// Durations are AWS time in milliseconds (0: off), multiplied by
/// `time_scale` on the endpoint; `boot_ms` of [`LocalAwsOptions`] is scaled
/// the same way.
#[derive(Clone, Debug, PartialEq)]
pub struct Realism {
    /// Multiplies every modelled duration (1.0: real time).
    pub time_scale: f64,
    /// New EC2, load balancing and auto scaling resources stay unknown to
    /// calls that name them this long.
    pub consistency_ms: u64,
    /// New IAM roles and instance profiles cannot be launched with this long.
    pub iam_propagation_ms: u64,
    /// EC2 calls are throttled by its documented token buckets.
    pub token_buckets: bool,
    /// New NAT gateways stay `pending` this long.
    pub nat_ready_ms: u64,
    /// New load balancers stay `provisioning` this long.
    pub lb_ready_ms: u64,
    /// Deleted NAT gateways stay `deleting` this long, holding what they use.
    pub nat_delete_ms: u64,
    /// A deleted load balancer's network interfaces linger this long.
    pub lb_eni_linger_ms: u64,
    /// Terminated instances stay `shutting-down` this long.
    pub terminate_ms: u64,
}

impl Default for Realism {
    fn default() -> Self {
        Realism {
            time_scale: 1.0,
            consistency_ms: 0,
            iam_propagation_ms: 0,
            token_buckets: false,
            nat_ready_ms: 0,
            lb_ready_ms: 0,
            nat_delete_ms: 0,
            lb_eni_linger_ms: 0,
            terminate_ms: 0,
        }
    }
}

impl Realism {
    /// Every behaviour at AWS's typical durations (the `--realistic` preset of
    /// `local_aws.py`, with a boot time of 60 s for [`LocalAwsOptions::boot_ms`]),
    /// run at `time_scale` of real time.
    pub fn realistic(time_scale: f64) -> Realism {
        Realism {
            time_scale,
            consistency_ms: 2_000,
            iam_propagation_ms: 8_000,
            token_buckets: true,
            nat_ready_ms: 90_000,
            lb_ready_ms: 150_000,
            nat_delete_ms: 60_000,
            lb_eni_linger_ms: 120_000,
            terminate_ms: 30_000,
        }
    }

    /// Only the time scale (every behaviour off): start from here and switch
    /// one on.
    pub fn scaled(time_scale: f64) -> Realism {
        Realism {
            time_scale,
            ..Realism::default()
        }
    }

    /// The command-line arguments for `local_aws.py`.
    fn args(&self) -> Vec<String> {
        let mut args = vec!["--time-scale".to_owned(), self.time_scale.to_string()];
        let durations = [
            ("--consistency-ms", self.consistency_ms),
            ("--iam-propagation-ms", self.iam_propagation_ms),
            ("--nat-ready-ms", self.nat_ready_ms),
            ("--lb-ready-ms", self.lb_ready_ms),
            ("--nat-delete-ms", self.nat_delete_ms),
            ("--lb-eni-linger-ms", self.lb_eni_linger_ms),
            ("--terminate-ms", self.terminate_ms),
        ];
        for (flag, milliseconds) in durations {
            if milliseconds > 0 {
                args.push(flag.to_owned());
                args.push(milliseconds.to_string());
            }
        }
        if self.token_buckets {
            args.push("--token-buckets".to_owned());
        }
        args
    }
}

impl LocalAwsOptions {
    /// A reliable endpoint with every realistic behaviour on at `time_scale`
    /// of AWS's durations, instances included (60 s of boot).
    pub fn realistic(time_scale: f64) -> LocalAwsOptions {
        LocalAwsOptions {
            boot_ms: 60_000,
            realism: Realism::realistic(time_scale),
            ..LocalAwsOptions::default()
        }
    }
}

impl Default for LocalAwsOptions {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            throttle_rate: 0.0,
            seed: 1,
            amis: Some(harness_dir().join("amis.json")),
            python: None,
            s3_race_window_ms: 0,
            s3_write_lock: true,
            boot_ms: 0,
            warm_up: false,
            realism: Realism::default(),
        }
    }
}

/// Why the local endpoint did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The interpreter itself could not be run.
    #[error("cannot run {python:?} (set SKIFF_TEST_PYTHON to a Python 3 interpreter)")]
    PythonMissing {
        /// The interpreter that was tried.
        python: PathBuf,
        /// Why spawning it failed.
        #[source]
        source: io::Error,
    },
    /// Python runs but cannot import the moto server.
    #[error(
        "the moto server is not installed for {python:?}: run `pip install 'moto[server]>=5.2.1,<6'` \
         (or .ci/run, which installs everything the tests need)\n--- server log ---\n{log}"
    )]
    MotoMissing {
        /// The interpreter that was tried.
        python: PathBuf,
        /// What the server printed.
        log: String,
    },
    /// The server exited before it reported a port.
    #[error("local AWS endpoint exited before listening ({status})\n--- server log ---\n{log}")]
    Exited {
        /// How it exited.
        status: ExitStatus,
        /// What the server printed.
        log: String,
    },
    /// The server did not report a port in time.
    #[error("local AWS endpoint did not report `LISTENING <port>` within {timeout:?}\n--- server log ---\n{log}")]
    Timeout {
        /// How long we waited.
        timeout: Duration,
        /// What the server printed.
        log: String,
    },
    /// Setting up the log file or pipes failed.
    #[error("cannot set up the local AWS endpoint")]
    Io(#[from] io::Error),
}

/// API call statistics of a [`LocalAws`], from `GET /_harness/stats`.
///
/// Keys are `service:Action` with the SigV4 signing name as service:
/// `ec2:RunInstances`, `s3:PutObject`, `elasticloadbalancing:CreateListener`,
/// `route53:ChangeResourceRecordSets`, `iam:CreateRole`, `sts:GetCallerIdentity`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Stats {
    /// Every counted request (the sum of `calls`).
    pub total: u64,
    /// CPU time the endpoint process used since the last reset, in
    /// milliseconds (moto serves one request at a time under Python's
    /// global interpreter lock: a floor under any client's wall time).
    #[serde(default)]
    pub cpu_ms: u64,
    /// Requests answered with a throttling error (the sum of `throttled_calls`).
    pub throttled: u64,
    /// Requests tagged as the harness's own (not in `calls`).
    pub harness: u64,
    /// Every request that reached the endpoint, throttled or not.
    pub calls: BTreeMap<String, u64>,
    /// The subset of `calls` whose action changes something (Create*,
    /// Delete*, Put*, Run*, ...: the endpoint's own classification).
    pub mutating_calls: BTreeMap<String, u64>,
    /// The subset of `calls` answered with a throttling error.
    pub throttled_calls: BTreeMap<String, u64>,
    /// Calls the realistic model answered itself, by `service:Action CODE`
    /// (`ec2:CreateSubnet InvalidVpcID.NotFound`, `ec2:DescribeVpcs
    /// RequestLimitExceeded`): what eventual consistency, IAM propagation
    /// and the token buckets made the client see.
    #[serde(default)]
    pub modelled_calls: BTreeMap<String, u64>,
    /// Resources eventual consistency left out of describe answers, by
    /// `service:Action`.
    #[serde(default)]
    pub left_out: BTreeMap<String, u64>,
}

impl Stats {
    /// How many calls the realistic model answered with an error whose
    /// code contains `code` (`"NotFound"`, `"RequestLimitExceeded"`).
    pub fn modelled(&self, code: &str) -> u64 {
        self.modelled_calls
            .iter()
            .filter(|(call, _)| call.contains(code))
            .map(|(_, count)| count)
            .sum()
    }

    /// How often `call` (`"ec2:DescribeVpcs"`) was made.
    pub fn count(&self, call: &str) -> u64 {
        self.calls.get(call).copied().unwrap_or(0)
    }

    /// How many calls satisfy `predicate` (given `service:Action`).
    pub fn count_where(&self, predicate: impl Fn(&str) -> bool) -> u64 {
        self.calls
            .iter()
            .filter(|(call, _)| predicate(call))
            .map(|(_, count)| count)
            .sum()
    }

    /// The number of mutating calls: 0 means the run changed nothing in AWS.
    pub fn mutating_total(&self) -> u64 {
        self.mutating_calls.values().sum()
    }
}

/// A running local AWS endpoint; stopped when dropped.
///
/// ```no_run
/// use skiff_tests::LocalAws;
/// let aws = LocalAws::start();
/// let bucket = aws.create_unique_bucket("state");
/// // ... run skiff against aws.endpoint() ...
/// assert_eq!(aws.stats().count("s3:PutObject"), 1);
/// ```
pub struct LocalAws {
    child: Child,
    /// Held open so the server can tell when we are gone: EOF on its stdin
    /// makes it exit, even if this process is killed and never drops us.
    stdin: Option<ChildStdin>,
    port: u16,
    options: LocalAwsOptions,
    log_dir: tempfile::TempDir,
}

impl LocalAws {
    /// Start an endpoint with default options; panics with the reason (for
    /// instance the `pip install` command when moto is missing).
    pub fn start() -> Self {
        Self::start_with(LocalAwsOptions::default())
    }

    /// Start an endpoint with these options; panics on failure.
    pub fn start_with(options: LocalAwsOptions) -> Self {
        Self::try_start_with(options).unwrap_or_else(|error| panic!("{}", error_chain(&error)))
    }

    /// One endpoint shared by every test in this test binary, started on
    /// first use. Its statistics see every test's calls, so use your own
    /// [`LocalAws::start`] when a test asserts on [`LocalAws::stats`].
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<LocalAws> = OnceLock::new();
        SHARED.get_or_init(Self::start)
    }

    /// Start an endpoint with these options.
    pub fn try_start_with(options: LocalAwsOptions) -> Result<Self, StartError> {
        let log_dir = tempfile::Builder::new()
            .prefix("skiff-local-aws-")
            .tempdir()?;
        let log_path = log_dir.path().join("local_aws.log");
        let log = File::create(&log_path)?;
        let python = options.python.clone().unwrap_or_else(default_python);

        let mut command = Command::new(&python);
        command
            .arg(harness_dir().join("local_aws.py"))
            .args(["--port", "0", "--watch-stdin"])
            .args(["--parent-pid", &std::process::id().to_string()])
            .args(["--latency-ms", &options.latency_ms.to_string()])
            .args(["--throttle-rate", &options.throttle_rate.to_string()])
            .args(["--seed", &options.seed.to_string()])
            .env_remove("MOTO_AMIS_PATH")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log);
        if let Some(amis) = &options.amis {
            command.arg("--amis").arg(amis);
        }
        if options.warm_up {
            command.arg("--warm-up");
        }
        // Explicitly 0 when off, so a default never depends on the script's.
        command.args(["--boot-ms", &options.boot_ms.to_string()]);
        command.args(options.realism.args());
        if options.s3_race_window_ms > 0 {
            command.args([
                "--s3-race-window-ms",
                &options.s3_race_window_ms.to_string(),
            ]);
        }
        if !options.s3_write_lock {
            command.arg("--no-s3-write-lock");
        }
        let mut child = command
            .spawn()
            .map_err(|source| StartError::PythonMissing {
                python: python.clone(),
                source,
            })?;
        let stdin = child.stdin.take();
        let port = match wait_for_port(&mut child, &log_path) {
            Ok(port) => port,
            Err(error) => {
                // Best effort: the child may already have exited.
                let _ = child.kill();
                let _ = child.wait();
                return Err(match error {
                    StartError::Exited { log, .. } if log.contains("MOTO_MISSING") => {
                        StartError::MotoMissing { python, log }
                    }
                    other => other,
                });
            }
        };
        Ok(Self {
            child,
            stdin,
            port,
            options,
            log_dir,
        })
    }

    /// `http://127.0.0.1:PORT`: what `AWS_ENDPOINT_URL` should be.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The TCP port the endpoint listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The options it was started with.
    pub fn options(&self) -> &LocalAwsOptions {
        &self.options
    }

    /// Everything the server wrote to stderr so far (one line per request).
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.log_dir.path().join("local_aws.log")).unwrap_or_default()
    }

    /// Calls counted since start or the last [`LocalAws::reset_stats`].
    pub fn stats(&self) -> Stats {
        let response = self.request("GET", "/_harness/stats", &[], b"");
        assert_eq!(
            response.status,
            200,
            "GET /_harness/stats: {}",
            response.text()
        );
        serde_json::from_slice(&response.body)
            .unwrap_or_else(|error| panic!("bad stats JSON ({error}): {}", response.text()))
    }

    /// Zero the call statistics (moto's resources stay).
    pub fn reset_stats(&self) {
        let response = self.request("POST", "/_harness/reset-stats", &[], b"");
        assert_eq!(
            response.status,
            200,
            "POST /_harness/reset-stats: {}",
            response.text()
        );
    }

    /// Targets registered with a load balancer's target group from now on
    /// stay `initial` for `delay` (wall time), then are `healthy`: the
    /// registration and initial health checks AWS runs (see
    /// `model_target_health` in `tests/harness/local_aws.py`). Zero, the
    /// default, makes them healthy at once, as moto does.
    pub fn set_target_health_delay(&self, delay: std::time::Duration) {
        let path = format!("/_harness/target-health?seconds={}", delay.as_secs_f64());
        let response = self.request("POST", &path, &[], b"");
        assert_eq!(
            response.status,
            200,
            "POST /_harness/target-health: {}",
            response.text()
        );
    }

    /// Empties every EC2 token bucket (`--token-buckets`) and keeps them
    /// empty for `hold` (wall time), as another client spending the
    /// account's budget would; then they refill at EC2's documented rates.
    pub fn drain_token_buckets(&self, hold: std::time::Duration) {
        let path = format!("/_harness/drain-buckets?seconds={}", hold.as_secs_f64());
        let response = self.request("POST", &path, &[], b"");
        assert_eq!(
            response.status,
            200,
            "POST /_harness/drain-buckets: {}",
            response.text()
        );
        assert!(
            response.text().contains("true"),
            "the endpoint has no token buckets to drain (start it with token_buckets)"
        );
    }

    /// Forget every resource moto holds (buckets, VPCs, ...), as if restarted.
    pub fn reset_state(&self) {
        let response = self.request("POST", "/moto-api/reset", &[], b"");
        assert_eq!(
            response.status,
            200,
            "POST /moto-api/reset: {}",
            response.text()
        );
    }

    /// Send a raw request exactly as given: counted, delayed and throttled
    /// like any client's. `target` is the percent-encoded path and query.
    /// Add [`fake_authorization`] to address a service other than S3.
    pub fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        http::send(self.port, method, target, headers, body)
            .unwrap_or_else(|error| panic!("{method} {} {target}: {error}", self.endpoint()))
    }

    /// An S3 request tagged as harness traffic (never throttled or counted).
    fn harness_s3_request(&self, method: &str, target: &str, body: &[u8]) -> HttpResponse {
        let authorization = fake_authorization("s3");
        self.request(
            method,
            target,
            &[
                ("User-Agent", HARNESS_USER_AGENT),
                ("Authorization", &authorization),
            ],
            body,
        )
    }

    /// Create an S3 bucket set up to hold cluster secrets, as skiff's
    /// store check wants it (panics if it cannot). Give every test its own.
    ///
    /// The settings are the refusal-level ones of
    /// `skiff_state::security` (all four Block Public Access settings,
    /// SSE-S3 default encryption); `state init` adds the warning-level
    /// ones (versioning, ownership, the TLS-only policy), left out here so
    /// that moto's versioned-bucket paths stay out of every other test.
    /// `store_security.rs` proves `state init` makes the same settings.
    pub fn create_bucket(&self, name: &str) {
        self.create_insecure_bucket(name);
        for (subresource, body) in [
            (
                "publicAccessBlock",
                "<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls>\
                 <IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy>\
                 <RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>",
            ),
            (
                "encryption",
                "<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault>\
                 <SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>\
                 </ServerSideEncryptionConfiguration>",
            ),
        ] {
            let response = self.harness_s3_request(
                "PUT",
                &format!("/{name}?{subresource}"),
                body.as_bytes(),
            );
            assert_eq!(
                response.status,
                200,
                "PUT bucket {name:?} {subresource}: {}",
                response.text()
            );
        }
    }

    /// Create a plain S3 bucket, as `CreateBucket` alone leaves it on the
    /// local endpoint: no public access block, no default encryption (what
    /// skiff's store check refuses).
    pub fn create_insecure_bucket(&self, name: &str) {
        let response = self.harness_s3_request("PUT", &format!("/{name}"), b"");
        assert_eq!(
            response.status,
            200,
            "create bucket {name:?}: {}",
            response.text()
        );
    }

    /// Create a bucket with a name unique to this process and return it.
    pub fn create_unique_bucket(&self, prefix: &str) -> String {
        let name = crate::unique_name(prefix);
        self.create_bucket(&name);
        name
    }

    /// Write an object directly (for tests that seed or tamper with a store).
    pub fn put_object(&self, bucket: &str, key: &str, body: &[u8]) {
        let target = object_target(bucket, key);
        let response = self.harness_s3_request("PUT", &target, body);
        assert_eq!(response.status, 200, "PUT {target}: {}", response.text());
    }

    /// Read an object directly; `None` if it does not exist.
    pub fn get_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let target = object_target(bucket, key);
        let response = self.harness_s3_request("GET", &target, b"");
        match response.status {
            200 => Some(response.body),
            404 => None,
            status => panic!("GET {target}: {status} {}", response.text()),
        }
    }

    /// Delete an object directly.
    pub fn delete_object(&self, bucket: &str, key: &str) {
        let target = object_target(bucket, key);
        let response = self.harness_s3_request("DELETE", &target, b"");
        assert_eq!(response.status, 204, "DELETE {target}: {}", response.text());
    }

    /// Every key in `bucket` under `prefix`, in S3's (lexicographic) order.
    pub fn list_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        self.list_keys_paged(bucket, prefix, 1000)
    }

    /// [`LocalAws::list_keys`] with a chosen page size (to test paging).
    #[doc(hidden)]
    pub fn list_keys_paged(&self, bucket: &str, prefix: &str, page_size: usize) -> Vec<String> {
        let mut keys = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let mut target = format!(
                "/{bucket}?list-type=2&max-keys={page_size}&prefix={}",
                http::percent_encode(prefix, false)
            );
            if let Some(token) = &continuation {
                target.push_str("&continuation-token=");
                target.push_str(&http::percent_encode(token, false));
            }
            let response = self.harness_s3_request("GET", &target, b"");
            assert_eq!(response.status, 200, "GET {target}: {}", response.text());
            let xml = response.text();
            keys.extend(xml_elements(&xml, "Key"));
            let truncated = xml_elements(&xml, "IsTruncated")
                .first()
                .map(String::as_str)
                == Some("true");
            continuation = xml_elements(&xml, "NextContinuationToken")
                .into_iter()
                .next();
            if !truncated || continuation.is_none() {
                return keys;
            }
        }
    }

    /// An SDK configuration pointed at this endpoint: test credentials,
    /// region us-east-1, nothing read from the environment or `~/.aws`.
    ///
    /// Requests made with it are tagged as harness traffic (app name
    /// `skiff-harness` in the User-Agent): never delayed, throttled or
    /// counted in `calls`, so a test can inspect what skiff built without
    /// disturbing what it measures. For S3 use [`LocalAws::s3_client`]
    /// (path-style addressing).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        self.build_sdk_config(true)
    }

    /// Like [`LocalAws::sdk_config`] but untagged: calls are counted,
    /// delayed and throttled exactly like skiff's own.
    pub async fn sdk_config_counted(&self) -> aws_config::SdkConfig {
        self.build_sdk_config(false)
    }

    /// An S3 client from [`LocalAws::sdk_config`] with path-style addressing.
    pub async fn s3_client(&self) -> aws_sdk_s3::Client {
        let config = self.sdk_config().await;
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        )
    }

    fn build_sdk_config(&self, harness: bool) -> aws_config::SdkConfig {
        let credentials =
            aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "skiff-tests");
        let mut builder = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(TEST_REGION))
            .endpoint_url(self.endpoint())
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                credentials,
            ));
        if harness {
            let app_name = aws_config::AppName::new(HARNESS_USER_AGENT)
                .expect("the harness marker is a valid app name");
            builder = builder.app_name(app_name);
        }
        builder.build()
    }
}

impl Drop for LocalAws {
    fn drop(&mut self) {
        // Closing stdin asks the server to exit cleanly; kill it if it lingers.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl std::fmt::Debug for LocalAws {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LocalAws")
            .field("endpoint", &self.endpoint())
            .field("pid", &self.child.id())
            .field("options", &self.options)
            .finish()
    }
}

/// `tests/harness/`, where the Python endpoint and its data live.
pub fn harness_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("harness")
}

fn default_python() -> PathBuf {
    std::env::var_os("SKIFF_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// Read `LISTENING <port>` from the child's stdout, watching for early exit.
fn wait_for_port(child: &mut Child, log_path: &Path) -> Result<u16, StartError> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        // Keep draining after the port line so the server never blocks on a
        // full pipe.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(port) = line.strip_prefix("LISTENING ") {
                let _ = sender.send(port.trim().parse::<u16>());
            }
        }
    });
    let read_log = || std::fs::read_to_string(log_path).unwrap_or_default();
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        match receiver.recv_timeout(Duration::from_millis(50)) {
            Ok(Ok(port)) => return Ok(port),
            Ok(Err(error)) => {
                return Err(StartError::Io(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad port in LISTENING line: {error}"),
                )))
            }
            Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {}
        }
        if let Some(status) = child.try_wait()? {
            return Err(StartError::Exited {
                status,
                log: read_log(),
            });
        }
        if Instant::now() > deadline {
            return Err(StartError::Timeout {
                timeout: STARTUP_TIMEOUT,
                log: read_log(),
            });
        }
    }
}

fn object_target(bucket: &str, key: &str) -> String {
    format!("/{bucket}/{}", http::percent_encode(key, true))
}

/// The text of every `<name>...</name>` element, XML entities decoded.
/// Enough for S3's flat ListObjectsV2 documents; not a general parser.
fn xml_elements(xml: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut values = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        values.push(xml_unescape(&after[..end]));
        rest = &after[end + close.len()..];
    }
    values
}

fn xml_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let Some(semi) = after.find(';') else {
            out.push_str(after);
            return out;
        };
        let entity = &after[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(character) => out.push(character),
            None => out.push_str(&after[..=semi]),
        }
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    out
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(&format!("\ncaused by: {cause}"));
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_elements_are_found_and_unescaped() {
        let xml = "<R><Contents><Key>a &amp; b</Key></Contents><Contents><Key>c&#x2F;d&#60;</Key></Contents>\
                   <IsTruncated>false</IsTruncated></R>";
        assert_eq!(xml_elements(xml, "Key"), ["a & b", "c/d<"]);
        assert_eq!(xml_elements(xml, "IsTruncated"), ["false"]);
        assert!(xml_elements(xml, "NextContinuationToken").is_empty());
    }

    #[test]
    fn stats_sum_by_predicate() {
        let stats = Stats {
            calls: BTreeMap::from([
                ("ec2:CreateVpc".to_owned(), 2),
                ("ec2:DescribeVpcs".to_owned(), 3),
                ("s3:PutObject".to_owned(), 1),
            ]),
            ..Stats::default()
        };
        assert_eq!(stats.count("ec2:DescribeVpcs"), 3);
        assert_eq!(stats.count("ec2:DeleteVpc"), 0);
        assert_eq!(stats.count_where(|call| call.starts_with("ec2:")), 5);
    }
}
