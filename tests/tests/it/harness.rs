//! Tests of the test harness itself: if these fail, no other integration
//! test result means anything.
//!
//! They pin the properties other tests rely on: the endpoint starts and
//! reports its port, S3 conditional writes are atomic (and would not be
//! without the harness's lock), throttling answers the real error codes,
//! call counting is exact, endpoints are independent, the AMI catalogue
//! supports "pick the newest image", and `skiff` runs are isolated.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::Filter;
use skiff_tests::{
    fake_authorization, HttpResponse, LocalAws, LocalAwsOptions, SandboxHome, Skiff, StartError,
    Stats, StoreSnapshot,
};

const CANONICAL: &str = "099720109477";
const AMAZON: &str = "137112412989";
const NOBLE_AMD64: &str = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*";

/// A signed-looking S3 request as any client would send it (counted, throttled).
fn s3_request(
    aws: &LocalAws,
    method: &str,
    target: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let authorization = fake_authorization("s3");
    let mut headers = vec![("Authorization", authorization.as_str())];
    headers.extend_from_slice(extra);
    aws.request(method, target, &headers, body)
}

/// A query-protocol call (EC2 and friends) as any client would send it.
fn query_request(aws: &LocalAws, service: &str, form: &str) -> HttpResponse {
    let authorization = fake_authorization(service);
    aws.request(
        "POST",
        "/",
        &[
            ("Authorization", &authorization),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        form.as_bytes(),
    )
}

/// Fire `count` requests at once (released together by a barrier) and
/// return the status each writer got, in writer order.
fn race(
    aws: &LocalAws,
    count: usize,
    request: impl Fn(&LocalAws, usize) -> HttpResponse + Sync,
) -> Vec<u16> {
    let barrier = Barrier::new(count);
    thread::scope(|scope| {
        let handles: Vec<_> = (0..count)
            .map(|writer| {
                let barrier = &barrier;
                let request = &request;
                scope.spawn(move || {
                    barrier.wait();
                    request(aws, writer).status
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("writer thread"))
            .collect()
    })
}

fn tally(statuses: &[u16]) -> BTreeMap<u16, usize> {
    let mut tally = BTreeMap::new();
    for status in statuses {
        *tally.entry(*status).or_default() += 1;
    }
    tally
}

/// Options that make moto's check-then-write race easy to hit: it sleeps
/// 50 ms between checking a precondition and writing.
fn wide_race_window(s3_write_lock: bool) -> LocalAwsOptions {
    LocalAwsOptions {
        s3_race_window_ms: 50,
        s3_write_lock,
        ..LocalAwsOptions::default()
    }
}

fn create_if_absent(aws: &LocalAws, bucket: &str, writer: usize) -> HttpResponse {
    s3_request(
        aws,
        "PUT",
        &format!("/{bucket}/state/cluster.yaml"),
        &[("If-None-Match", "*")],
        format!("writer {writer}").as_bytes(),
    )
}

fn process_alive(pid: u32) -> bool {
    // A zombie (state Z) has exited; only its parent has not reaped it yet.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat
                .rsplit(") ")
                .next()
                .and_then(|rest| rest.chars().next());
            state != Some('Z')
        })
        .unwrap_or(false)
}

fn wait_until(timeout: Duration, condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    condition()
}

// --- the endpoint -----------------------------------------------------------

#[test]
fn the_endpoint_starts_and_reports_its_port() {
    let aws = LocalAws::start();
    assert_ne!(aws.port(), 0);
    assert_eq!(aws.endpoint(), format!("http://127.0.0.1:{}", aws.port()));
    let health = aws.request("GET", "/_harness/health", &[], b"");
    assert_eq!(health.status, 200, "{}", health.text());
    let stats = aws.stats();
    assert_eq!(
        stats,
        Stats {
            cpu_ms: stats.cpu_ms,
            ..Stats::default()
        },
        "nothing counted yet"
    );
}

#[test]
fn a_warmed_up_endpoint_made_its_first_requests_uncounted() {
    let aws = LocalAws::start_with(LocalAwsOptions {
        warm_up: true,
        ..LocalAwsOptions::default()
    });
    let stats = aws.stats();
    assert_eq!(stats.total, 0, "the warm-up is not counted: {stats:?}");
    // One request per service in the test region, one per resource kind
    // in the scratch region: all tallied as harness traffic.
    assert!(stats.harness >= 20, "{stats:?}");
    // The scratch region is not the test region: nothing there.
    let vpcs = query_request(&aws, "ec2", "Action=DescribeVpcs&Version=2016-11-15");
    assert_eq!(vpcs.status, 200, "{}", vpcs.text());
    assert!(!vpcs.text().contains("10.99.0.0/16"), "{}", vpcs.text());
}

#[test]
fn the_endpoint_reports_the_cpu_it_used_since_the_last_reset() {
    let aws = LocalAws::start();
    for _ in 0..20 {
        let vpc = query_request(
            &aws,
            "ec2",
            "Action=CreateVpc&Version=2016-11-15&CidrBlock=10.0.0.0%2F16",
        );
        assert_eq!(vpc.status, 200, "{}", vpc.text());
    }
    let busy = aws.stats().cpu_ms;
    assert!(busy > 0, "20 CreateVpc took no CPU?");
    aws.reset_stats();
    let idle = aws.stats().cpu_ms;
    assert!(
        idle < busy,
        "the reset starts the count again: {idle} ms after, {busy} ms before"
    );
}

#[test]
fn two_endpoints_run_side_by_side_with_separate_state() {
    let (first, second) = thread::scope(|scope| {
        let first = scope.spawn(LocalAws::start);
        let second = scope.spawn(LocalAws::start);
        (first.join().expect("start"), second.join().expect("start"))
    });
    assert_ne!(first.port(), second.port());

    let bucket = first.create_unique_bucket("only-in-first");
    assert_eq!(
        s3_request(&first, "HEAD", &format!("/{bucket}"), &[], b"").status,
        200
    );
    assert_eq!(
        s3_request(&second, "HEAD", &format!("/{bucket}"), &[], b"").status,
        404
    );
    assert_eq!(second.stats().count("s3:HeadBucket"), 1);
    assert_eq!(first.stats().count("s3:HeadBucket"), 1);
}

#[test]
fn dropping_the_endpoint_stops_the_server_promptly() {
    let aws = LocalAws::start();
    let pid = aws.pid();
    assert!(process_alive(pid));
    let started = Instant::now();
    drop(aws);
    // Drop closes the server's stdin and only kills after 5 s, so a quick
    // exit proves the stdin-EOF watch (which also covers a crashed test).
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert!(!process_alive(pid));
}

#[test]
fn the_server_exits_when_its_parent_process_dies() {
    let home = SandboxHome::new();
    let pid_file = home.join("server.pid");
    let script = skiff_tests::harness_dir().join("local_aws.py");
    // A shell starts the server in the background (stdin from /dev/null, so
    // only --parent-pid can stop it) and exits a second later.
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"python3 "$1" --parent-pid $$ </dev/null >/dev/null 2>&1 & echo $! > "$2"; sleep 1"#)
        .arg("sh")
        .arg(&script)
        .arg(&pid_file)
        .status()
        .expect("run sh");
    assert!(status.success());
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    let stopped = wait_until(Duration::from_secs(60), || !process_alive(pid));
    assert!(stopped, "server {pid} outlived its parent");
}

#[test]
fn a_python_without_moto_gets_the_pip_install_hint() {
    let home = SandboxHome::new();
    // `-S` skips site-packages, where moto lives.
    let python = home.write("python-without-moto", "#!/bin/sh\nexec python3 -S \"$@\"\n");
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&python)
        .status()
        .expect("chmod");
    let error = LocalAws::try_start_with(LocalAwsOptions {
        python: Some(python),
        ..LocalAwsOptions::default()
    })
    .expect_err("moto cannot be imported");
    assert!(matches!(error, StartError::MotoMissing { .. }), "{error:?}");
    assert!(
        error.to_string().contains("pip install 'moto[server]"),
        "{error}"
    );
}

#[test]
fn instance_metadata_requests_pass_through_uncounted() {
    let aws = LocalAws::start();
    let response = aws.request(
        "GET",
        "/latest/meta-data/instance-id",
        &[("Host", "169.254.169.254")],
        b"",
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "i-fake");
    assert_eq!(aws.stats().total, 0);
}

#[test]
fn latency_delays_every_counted_request() {
    let aws = LocalAws::start_with(LocalAwsOptions {
        latency_ms: 300,
        ..LocalAwsOptions::default()
    });
    let started = Instant::now();
    let response = query_request(&aws, "ec2", "Action=DescribeVpcs&Version=2016-11-15");
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

// --- atomic S3 conditional writes --------------------------------------------

#[test]
fn twenty_concurrent_conditional_creates_have_exactly_one_winner() {
    let aws = LocalAws::start_with(wide_race_window(true));
    let bucket = aws.create_unique_bucket("race");
    let statuses = race(&aws, 20, |aws, writer| {
        create_if_absent(aws, &bucket, writer)
    });
    assert_eq!(tally(&statuses), BTreeMap::from([(200, 1), (412, 19)]));

    let winner = statuses
        .iter()
        .position(|status| *status == 200)
        .expect("a winner");
    let stored = aws
        .get_object(&bucket, "state/cluster.yaml")
        .expect("stored");
    assert_eq!(String::from_utf8_lossy(&stored), format!("writer {winner}"));
}

#[test]
fn without_the_write_lock_moto_lets_several_conditional_creates_win() {
    // The control experiment: proves the test above can fail, i.e. that the
    // race is real in moto and the harness's lock is what closes it.
    let aws = LocalAws::start_with(wide_race_window(false));
    let bucket = aws.create_unique_bucket("race");
    let statuses = race(&aws, 20, |aws, writer| {
        create_if_absent(aws, &bucket, writer)
    });
    let winners = statuses.iter().filter(|status| **status == 200).count();
    assert!(
        winners > 1,
        "expected several winners without the lock: {statuses:?}"
    );
}

#[test]
fn twenty_concurrent_compare_and_swap_updates_have_exactly_one_winner() {
    let aws = LocalAws::start_with(wide_race_window(true));
    let bucket = aws.create_unique_bucket("cas");
    aws.put_object(&bucket, "state/cluster.yaml", b"generation 1");
    let head = s3_request(
        &aws,
        "HEAD",
        &format!("/{bucket}/state/cluster.yaml"),
        &[],
        b"",
    );
    let etag = head.header("ETag").expect("ETag").to_owned();

    let statuses = race(&aws, 20, |aws, writer| {
        s3_request(
            aws,
            "PUT",
            &format!("/{bucket}/state/cluster.yaml"),
            &[("If-Match", &etag)],
            format!("generation 2 by {writer}").as_bytes(),
        )
    });
    assert_eq!(tally(&statuses), BTreeMap::from([(200, 1), (412, 19)]));
}

#[test]
fn twenty_concurrent_conditional_deletes_have_exactly_one_winner() {
    let aws = LocalAws::start_with(wide_race_window(true));
    let bucket = aws.create_unique_bucket("delete");
    aws.put_object(&bucket, "lock", b"held");
    let head = s3_request(&aws, "HEAD", &format!("/{bucket}/lock"), &[], b"");
    let etag = head.header("ETag").expect("ETag").to_owned();

    let statuses = race(&aws, 20, |aws, _| {
        s3_request(
            aws,
            "DELETE",
            &format!("/{bucket}/lock"),
            &[("If-Match", &etag)],
            b"",
        )
    });
    let tally = tally(&statuses);
    assert_eq!(tally.get(&204), Some(&1), "{tally:?}");
    // The losers find the object gone: moto says 404 NoSuchKey, as S3 does.
    assert_eq!(tally.get(&404), Some(&19), "{tally:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_sees_failed_preconditions_as_s3_does() {
    let aws = LocalAws::start();
    let bucket = aws.create_unique_bucket("sdk-conditional");
    let s3 = aws.s3_client().await;
    // ETags are MD5s of the content: each write needs new bytes for a new ETag.
    let put = |body: &str| {
        s3.put_object()
            .bucket(&bucket)
            .key("state")
            .body(body.as_bytes().to_vec().into())
    };

    let first = put("v1")
        .if_none_match("*")
        .send()
        .await
        .expect("first create");
    let etag = first.e_tag().expect("ETag").to_owned();
    let error = put("v1 again")
        .if_none_match("*")
        .send()
        .await
        .expect_err("second create");
    assert_eq!(error.code(), Some("PreconditionFailed"), "{error:?}");
    assert_eq!(
        error.raw_response().map(|raw| raw.status().as_u16()),
        Some(412)
    );

    put("v2")
        .if_match(&etag)
        .send()
        .await
        .expect("update with the current ETag");
    let error = put("v3")
        .if_match(&etag)
        .send()
        .await
        .expect_err("update with a stale ETag");
    assert_eq!(error.code(), Some("PreconditionFailed"), "{error:?}");
    assert_eq!(
        aws.get_object(&bucket, "state").as_deref(),
        Some(&b"v2"[..])
    );
}

// --- throttling -----------------------------------------------------------------

#[test]
fn throttling_at_rate_one_answers_each_service_in_its_wire_format() {
    let aws = LocalAws::start_with(LocalAwsOptions {
        throttle_rate: 1.0,
        ..LocalAwsOptions::default()
    });
    // Harness traffic is never throttled, so setup still works.
    let bucket = aws.create_unique_bucket("throttled");

    let create_vpc = query_request(
        &aws,
        "ec2",
        "Action=CreateVpc&Version=2016-11-15&CidrBlock=10.0.0.0%2F16",
    );
    assert_eq!(create_vpc.status, 503);
    assert!(
        create_vpc
            .text()
            .contains("<Code>RequestLimitExceeded</Code>"),
        "{}",
        create_vpc.text()
    );

    let put = s3_request(&aws, "PUT", &format!("/{bucket}/key"), &[], b"x");
    assert_eq!(put.status, 503);
    assert!(
        put.text().contains("<Code>SlowDown</Code>"),
        "{}",
        put.text()
    );

    let create_role = query_request(
        &aws,
        "iam",
        "Action=CreateRole&Version=2010-05-08&RoleName=r&AssumeRolePolicyDocument=%7B%7D",
    );
    assert_eq!(create_role.status, 400);
    assert!(
        create_role.text().contains("<Code>Throttling</Code>"),
        "{}",
        create_role.text()
    );

    // Reads are never throttled.
    let describe = query_request(&aws, "ec2", "Action=DescribeVpcs&Version=2016-11-15");
    assert_eq!(describe.status, 200, "{}", describe.text());
    let get = s3_request(&aws, "GET", &format!("/{bucket}?list-type=2"), &[], b"");
    assert_eq!(get.status, 200, "{}", get.text());

    let stats = aws.stats();
    assert_eq!(stats.throttled, 3);
    assert_eq!(
        stats.throttled_calls,
        BTreeMap::from([
            ("ec2:CreateVpc".to_owned(), 1),
            ("iam:CreateRole".to_owned(), 1),
            ("s3:PutObject".to_owned(), 1),
        ])
    );
}

#[test]
fn throttling_at_rate_zero_throttles_nothing() {
    let aws = LocalAws::start();
    let bucket = aws.create_unique_bucket("calm");
    let create_vpc = query_request(
        &aws,
        "ec2",
        "Action=CreateVpc&Version=2016-11-15&CidrBlock=10.0.0.0%2F16",
    );
    assert_eq!(create_vpc.status, 200, "{}", create_vpc.text());
    let put = s3_request(&aws, "PUT", &format!("/{bucket}/key"), &[], b"x");
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(aws.stats().throttled, 0);
}

#[test]
fn a_partial_throttle_rate_is_replayable_from_its_seed() {
    let options = LocalAwsOptions {
        throttle_rate: 0.5,
        seed: 7,
        ..LocalAwsOptions::default()
    };
    let statuses = |aws: &LocalAws| -> Vec<u16> {
        (0..20)
            .map(|_| {
                query_request(
                    aws,
                    "ec2",
                    "Action=CreateVpc&Version=2016-11-15&CidrBlock=10.0.0.0%2F16",
                )
                .status
            })
            .collect()
    };
    let (first, second) = thread::scope(|scope| {
        let first = scope.spawn(|| LocalAws::start_with(options.clone()));
        let second = scope.spawn(|| LocalAws::start_with(options.clone()));
        (first.join().expect("start"), second.join().expect("start"))
    });
    let run = statuses(&first);
    assert_eq!(run, statuses(&second), "same seed, same sequence");
    let throttled = run.iter().filter(|status| **status == 503).count();
    assert!((1..20).contains(&throttled), "{run:?}");
    assert_eq!(first.stats().throttled, throttled as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_reads_throttling_errors_as_throttling() {
    let aws = LocalAws::start_with(LocalAwsOptions {
        throttle_rate: 1.0,
        ..LocalAwsOptions::default()
    });
    let bucket = aws.create_unique_bucket("sdk-throttled");
    let counted = aws.sdk_config_counted().await;
    let no_retries = aws_config::retry::RetryConfig::disabled();

    let ec2 = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&counted)
            .retry_config(no_retries.clone())
            .build(),
    );
    let error = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .expect_err("throttled");
    assert_eq!(error.code(), Some("RequestLimitExceeded"), "{error:?}");

    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&counted)
            .force_path_style(true)
            .retry_config(no_retries.clone())
            .build(),
    );
    let error = s3
        .put_object()
        .bucket(&bucket)
        .key("key")
        .body(b"x".to_vec().into())
        .send()
        .await
        .expect_err("throttled");
    assert_eq!(error.code(), Some("SlowDown"), "{error:?}");

    let autoscaling = aws_sdk_autoscaling::Client::from_conf(
        aws_sdk_autoscaling::config::Builder::from(&counted)
            .retry_config(no_retries.clone())
            .build(),
    );
    let error = autoscaling
        .delete_auto_scaling_group()
        .auto_scaling_group_name("nodes")
        .send()
        .await
        .expect_err("throttled");
    assert_eq!(error.code(), Some("Throttling"), "{error:?}");

    let elb = aws_sdk_elasticloadbalancingv2::Client::from_conf(
        aws_sdk_elasticloadbalancingv2::config::Builder::from(&counted)
            .retry_config(no_retries.clone())
            .build(),
    );
    let error = elb
        .create_target_group()
        .name("api")
        .send()
        .await
        .expect_err("throttled");
    assert_eq!(error.code(), Some("Throttling"), "{error:?}");

    let route53 = aws_sdk_route53::Client::from_conf(
        aws_sdk_route53::config::Builder::from(&counted)
            .retry_config(no_retries.clone())
            .build(),
    );
    let error = route53
        .create_hosted_zone()
        .name("example.com")
        .caller_reference("test")
        .send()
        .await
        .expect_err("throttled");
    assert_eq!(error.code(), Some("Throttling"), "{error:?}");

    let iam = aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::config::Builder::from(&counted)
            .retry_config(no_retries)
            .build(),
    );
    let error = iam
        .create_role()
        .role_name("nodes")
        .assume_role_policy_document("{}")
        .send()
        .await
        .expect_err("throttled");
    assert_eq!(error.code(), Some("Throttling"), "{error:?}");

    // The harness's own SDK config is never throttled or counted.
    let harness_ec2 = aws_sdk_ec2::Client::new(&aws.sdk_config().await);
    harness_ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .expect("harness traffic is not throttled");
    let stats = aws.stats();
    assert_eq!(stats.throttled, 6, "{stats:?}");
    assert_eq!(stats.count("ec2:CreateVpc"), 1, "{stats:?}");
    assert!(stats.harness >= 2, "{stats:?}");
}

// --- accounting -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_a_known_sequence_of_calls() {
    let aws = LocalAws::start();
    let config = aws.sdk_config_counted().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let route53 = aws_sdk_route53::Client::new(&config);
    let bucket = skiff_tests::unique_name("stats");

    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    for key in ["a", "b"] {
        s3.put_object()
            .bucket(&bucket)
            .key(key)
            .body(b"x".to_vec().into())
            .send()
            .await
            .expect("put");
    }
    s3.get_object()
        .bucket(&bucket)
        .key("a")
        .send()
        .await
        .expect("get");
    s3.head_object()
        .bucket(&bucket)
        .key("b")
        .send()
        .await
        .expect("head");
    s3.list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .expect("list");
    s3.delete_object()
        .bucket(&bucket)
        .key("b")
        .send()
        .await
        .expect("delete");
    ec2.describe_vpcs().send().await.expect("describe");
    ec2.describe_vpcs().send().await.expect("describe");
    ec2.create_vpc()
        .cidr_block("10.1.0.0/16")
        .send()
        .await
        .expect("create vpc");
    let zone = route53
        .create_hosted_zone()
        .name("stats.example.com")
        .caller_reference("stats")
        .send()
        .await
        .expect("create zone");
    let zone_id = zone.hosted_zone().expect("zone").id().to_owned();
    route53
        .list_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .send()
        .await
        .expect("list records");
    // Harness traffic is tallied apart.
    assert_eq!(aws.get_object(&bucket, "a").as_deref(), Some(&b"x"[..]));

    let stats = aws.stats();
    let expected: BTreeMap<String, u64> = [
        ("ec2:CreateVpc", 1),
        ("ec2:DescribeVpcs", 2),
        ("route53:CreateHostedZone", 1),
        ("route53:ListResourceRecordSets", 1),
        ("s3:CreateBucket", 1),
        ("s3:DeleteObject", 1),
        ("s3:GetObject", 1),
        ("s3:HeadObject", 1),
        ("s3:ListObjectsV2", 1),
        ("s3:PutObject", 2),
    ]
    .into_iter()
    .map(|(call, count)| (call.to_owned(), count))
    .collect();
    assert_eq!(stats.calls, expected);
    assert_eq!(stats.total, 12);
    assert_eq!(stats.harness, 1);
    assert_eq!(stats.throttled, 0);
    assert_eq!(stats.mutating_total(), 6, "{:?}", stats.mutating_calls);

    aws.reset_stats();
    // Every count is back to zero; the endpoint's CPU time since the reset
    // is whatever answering this very request took.
    let reset = aws.stats();
    assert_eq!(
        Stats {
            cpu_ms: 0,
            ..reset.clone()
        },
        Stats::default()
    );
    assert!(reset.cpu_ms < 1000, "{reset:?}");
}

// --- the AMI catalogue --------------------------------------------------------

async fn images(
    ec2: &aws_sdk_ec2::Client,
    owner: &str,
    name: &str,
) -> Vec<(String, String, String)> {
    let response = ec2
        .describe_images()
        .owners(owner)
        .filters(Filter::builder().name("name").values(name).build())
        .send()
        .await
        .expect("describe images");
    let mut images: Vec<_> = response
        .images()
        .iter()
        .map(|image| {
            (
                image.creation_date().expect("CreationDate").to_owned(),
                image.image_id().expect("ImageId").to_owned(),
                image.name().expect("Name").to_owned(),
            )
        })
        .collect();
    images.sort();
    images
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_images_offers_ubuntu_and_al2023_with_creation_dates() {
    let aws = LocalAws::start();
    let ec2 = aws_sdk_ec2::Client::new(&aws.sdk_config().await);

    let noble = images(&ec2, CANONICAL, NOBLE_AMD64).await;
    assert_eq!(
        noble,
        [
            (
                "2025-01-15T10:24:31.000Z".to_owned(),
                "ami-0a9f8e7d6c5b40115".to_owned(),
                "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250115".to_owned()
            ),
            (
                "2025-06-10T09:12:05.000Z".to_owned(),
                "ami-0a9f8e7d6c5b40610".to_owned(),
                "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250610".to_owned()
            ),
        ]
    );

    let al2023 = images(&ec2, AMAZON, "al2023-ami-2023.*-kernel-6.1-x86_64").await;
    let names: Vec<_> = al2023.iter().map(|(_, _, name)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "al2023-ami-2023.6.20250115.0-kernel-6.1-x86_64",
            "al2023-ami-2023.7.20250609.0-kernel-6.1-x86_64"
        ]
    );

    // Another region, and the same region after a reset, know them too
    // (moto fails both without the harness's workaround, see local_aws.py).
    let west = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&aws.sdk_config().await)
            .region(aws_sdk_ec2::config::Region::new("us-west-2"))
            .build(),
    );
    assert_eq!(images(&west, CANONICAL, NOBLE_AMD64).await.len(), 2);
    aws.reset_state();
    assert_eq!(images(&ec2, CANONICAL, NOBLE_AMD64).await, noble);
}

// --- skiff runs -----------------------------------------------------------------

#[test]
fn skiff_runs_get_an_isolated_environment() {
    let home = SandboxHome::new();
    let output = Skiff::offline(&home)
        .program("env")
        .env("SKIFF_STATE_STORE", "s3://given")
        .run();
    output.assert_success();
    let env: BTreeMap<&str, &str> = output
        .stdout
        .lines()
        .filter_map(|line| line.split_once('='))
        .collect();
    assert_eq!(env.get("HOME").map(Path::new), Some(home.path()));
    assert_eq!(env.get("AWS_ENDPOINT_URL"), Some(&"http://127.0.0.1:9"));
    assert_eq!(env.get("AWS_ACCESS_KEY_ID"), Some(&"testing"));
    assert_eq!(env.get("AWS_SECRET_ACCESS_KEY"), Some(&"testing"));
    assert_eq!(env.get("AWS_REGION"), Some(&"us-east-1"));
    assert_eq!(env.get("AWS_EC2_METADATA_DISABLED"), Some(&"true"));
    assert_eq!(env.get("NO_COLOR"), Some(&"1"));
    assert_eq!(env.get("SKIFF_STATE_STORE"), Some(&"s3://given"));
    for leaked in [
        "EDITOR",
        "VISUAL",
        "AWS_PROFILE",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "USER",
    ] {
        assert!(
            !env.contains_key(leaked),
            "{leaked} leaked into the run:\n{output}"
        );
    }

    let bare = Skiff::offline(&home).program("env").run();
    assert!(!bare.stdout.contains("SKIFF_STATE_STORE="), "{bare}");

    let aws = LocalAws::shared();
    let online = Skiff::new(aws, &home)
        .program("env")
        .env_remove("NO_COLOR")
        .run();
    assert!(
        online
            .stdout
            .contains(&format!("AWS_ENDPOINT_URL={}\n", aws.endpoint())),
        "{online}"
    );
    assert!(!online.stdout.contains("NO_COLOR="), "{online}");

    let pwd = Skiff::offline(&home).program("pwd").run();
    assert_eq!(Path::new(pwd.stdout.trim()), home.path());
}

#[test]
fn skiff_runs_take_stdin_and_capture_both_streams() {
    let home = SandboxHome::new();
    let output = Skiff::offline(&home)
        .program("sh")
        .args(["-c", "cat; echo oops >&2; exit 3"])
        .stdin("hello\n")
        .run();
    output.assert_exit(3).assert_failure().assert_no_panic();
    output
        .assert_stdout_contains("hello")
        .assert_stderr_contains("oops");
    assert_eq!(output.stdout, "hello\n");
    assert!(catch_unwind(AssertUnwindSafe(|| output.assert_success())).is_err());
    assert!(catch_unwind(AssertUnwindSafe(|| output.assert_exit(1))).is_err());
}

#[test]
fn panics_are_caught_by_the_assertions() {
    let home = SandboxHome::new();
    let output = Skiff::offline(&home)
        .program("sh")
        .args([
            "-c",
            "echo \"thread 'main' panicked at cli/src/main.rs:1:1:\" >&2; exit 101",
        ])
        .run();
    assert!(output.panicked());
    assert!(catch_unwind(AssertUnwindSafe(|| output.assert_no_panic())).is_err());
    assert!(catch_unwind(AssertUnwindSafe(|| output.assert_exit(101))).is_err());
    assert!(catch_unwind(AssertUnwindSafe(|| output.assert_failure())).is_err());
}

#[test]
fn hung_runs_are_killed_at_the_timeout() {
    let home = SandboxHome::new();
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        Skiff::offline(&home)
            .program("sleep")
            .arg("30")
            .timeout(Duration::from_millis(300))
            .run()
    }));
    let message = *outcome
        .expect_err("the run must time out")
        .downcast::<String>()
        .expect("panic message");
    assert!(message.contains("timed out"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn spawned_runs_can_be_interrupted() {
    let home = SandboxHome::new();
    let mut running = Skiff::offline(&home).program("sleep").arg("30").spawn();
    assert!(running.is_running());
    running.interrupt();
    let output = running.wait();
    assert_eq!(output.code, None, "{output}");
    assert!(
        output.to_string().contains("killed by signal 2"),
        "{output}"
    );
}

#[test]
fn the_skiff_binary_runs() {
    let home = SandboxHome::new();
    let before = home.snapshot();
    Skiff::offline(&home)
        .arg("--help")
        .run()
        .assert_success()
        .assert_no_panic();
    before.assert_unchanged(&home.snapshot());
}

// --- store snapshots ------------------------------------------------------------

#[test]
fn bucket_snapshots_see_every_key_and_byte() {
    let aws = LocalAws::shared();
    let bucket = aws.create_unique_bucket("snapshot");
    let keys = [
        "state/cluster.yaml",
        "state/a b+c.json",
        "pki/ca.crt",
        "ünïcode/κλειδί",
    ];
    for (index, key) in keys.iter().enumerate() {
        aws.put_object(&bucket, key, format!("object {index}").as_bytes());
    }
    let before = StoreSnapshot::of_bucket(aws, &bucket);
    assert_eq!(before.len(), keys.len());
    assert_eq!(before.get("state/a b+c.json"), Some(&b"object 1"[..]));
    assert_eq!(before.get("ünïcode/κλειδί"), Some(&b"object 3"[..]));
    before.assert_unchanged(&StoreSnapshot::of_bucket(aws, &bucket));

    // Paging: one key per page still finds them all.
    let mut paged = aws.list_keys_paged(&bucket, "", 1);
    let mut all: Vec<_> = keys.iter().map(|key| key.to_string()).collect();
    paged.sort();
    all.sort();
    assert_eq!(paged, all);
    assert_eq!(
        StoreSnapshot::of_bucket_prefix(aws, &bucket, "state/").len(),
        2
    );

    aws.put_object(&bucket, "state/cluster.yaml", b"object 0!");
    aws.delete_object(&bucket, "pki/ca.crt");
    aws.put_object(&bucket, "new", b"");
    let diff = before.diff(&StoreSnapshot::of_bucket(aws, &bucket));
    assert_eq!(diff.changed, ["state/cluster.yaml"]);
    assert_eq!(diff.removed, ["pki/ca.crt"]);
    assert_eq!(diff.added, ["new"]);
    let after = StoreSnapshot::of_bucket(aws, &bucket);
    assert!(catch_unwind(AssertUnwindSafe(|| before.assert_unchanged(&after))).is_err());
}

#[test]
fn folder_snapshots_see_every_file_and_byte() {
    let home = SandboxHome::new();
    home.write(".skiff/state/cluster.yaml", "spec");
    home.write(".skiff/state/pki/ca.crt", [0u8, 159, 146, 150]);
    let before = home.snapshot();
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        [".skiff/state/cluster.yaml", ".skiff/state/pki/ca.crt"]
    );
    before.assert_unchanged(&home.snapshot());

    home.write(".skiff/state/cluster.yaml", "spec!");
    home.write(".skiff/state/.skiff.lock", "");
    let after = home.snapshot();
    assert_eq!(before.diff(&after).changed, [".skiff/state/cluster.yaml"]);
    assert_eq!(
        before
            .diff(&after.without(|key| key.ends_with(".skiff.lock")))
            .added,
        Vec::<String>::new()
    );
    assert!(StoreSnapshot::of_dir(&home.join("absent")).is_empty());
}

/// `boot_ms` models boot time: an auto scaling group's new instances are
/// reported Pending, then InService once the time has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modelled_boot_time_reports_new_instances_pending_until_booted() {
    let aws = LocalAws::start_with(LocalAwsOptions {
        boot_ms: 1500,
        ..LocalAwsOptions::default()
    });
    let config = aws.sdk_config().await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let autoscaling = aws_sdk_autoscaling::Client::new(&config);
    let template = ec2
        .create_launch_template()
        .launch_template_name("boot-model")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-0a9f8e7d6c5b40610")
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await
        .expect("create a launch template");
    let template_id = template
        .launch_template()
        .and_then(|template| template.launch_template_id())
        .expect("a template ID")
        .to_owned();
    autoscaling
        .create_auto_scaling_group()
        .auto_scaling_group_name("boot-model")
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_id(&template_id)
                .version("1")
                .build(),
        )
        .min_size(2)
        .max_size(2)
        .availability_zones("us-east-1a")
        .send()
        .await
        .expect("create a group");
    let states = || async {
        let groups = autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names("boot-model")
            .send()
            .await
            .expect("describe the group");
        groups.auto_scaling_groups()[0]
            .instances()
            .iter()
            .map(|instance| {
                instance
                    .lifecycle_state()
                    .map(|state| state.as_str().to_owned())
            })
            .collect::<Vec<_>>()
    };
    let pending = Some("Pending".to_owned());
    let in_service = Some("InService".to_owned());
    assert_eq!(states().await, [pending.clone(), pending]);
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(states().await, [in_service.clone(), in_service]);
}

// --- slow readiness and deletes
//
// Each behaviour of the realistic model is checked through the SDK with
// untagged (counted) clients, as skiff sees it: the state or error inside
// the window, AWS's ordinary answer after it. Windows are AWS durations at a
// time scale of 0.02 (75 s of AWS time: 1.5 s here).

/// The time scale of these tests, and one window of the model in AWS time.
const SLOW_SCALE: f64 = 0.02;
const SLOW_WINDOW_MS: u64 = 75_000;
/// The window in wall time, and a margin past it.
const SLOW_WALL: Duration = Duration::from_millis(1500);
const SLOW_PAST: Duration = Duration::from_millis(1900);

fn slow_endpoint(realism: skiff_tests::Realism) -> LocalAws {
    LocalAws::start_with(LocalAwsOptions {
        realism,
        ..LocalAwsOptions::default()
    })
}

/// Untagged EC2 and ELBv2 clients (counted, and subject to the model's errors).
async fn counted_clients(
    aws: &LocalAws,
) -> (aws_sdk_ec2::Client, aws_sdk_elasticloadbalancingv2::Client) {
    let config = aws.sdk_config_counted().await;
    (
        aws_sdk_ec2::Client::new(&config),
        aws_sdk_elasticloadbalancingv2::Client::new(&config),
    )
}

/// A VPC with an attached internet gateway, two subnets and a security group.
struct Network {
    vpc: String,
    gateway: String,
    subnets: [String; 2],
    group: String,
}

async fn network(ec2: &aws_sdk_ec2::Client) -> Network {
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .expect("create a VPC")
        .vpc()
        .and_then(|vpc| vpc.vpc_id())
        .expect("a VPC ID")
        .to_owned();
    let mut subnets = Vec::new();
    for (cidr, zone) in [("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")] {
        subnets.push(
            ec2.create_subnet()
                .vpc_id(&vpc)
                .cidr_block(cidr)
                .availability_zone(zone)
                .send()
                .await
                .expect("create a subnet")
                .subnet()
                .and_then(|subnet| subnet.subnet_id())
                .expect("a subnet ID")
                .to_owned(),
        );
    }
    let gateway = ec2
        .create_internet_gateway()
        .send()
        .await
        .expect("create an internet gateway")
        .internet_gateway()
        .and_then(|gateway| gateway.internet_gateway_id())
        .expect("a gateway ID")
        .to_owned();
    ec2.attach_internet_gateway()
        .internet_gateway_id(&gateway)
        .vpc_id(&vpc)
        .send()
        .await
        .expect("attach the gateway");
    let group = ec2
        .create_security_group()
        .group_name("slow")
        .description("slow")
        .vpc_id(&vpc)
        .send()
        .await
        .expect("create a security group")
        .group_id()
        .expect("a group ID")
        .to_owned();
    Network {
        vpc,
        gateway,
        subnets: [subnets[0].clone(), subnets[1].clone()],
        group,
    }
}

/// The (code, message) of a failed call, or a panic naming what succeeded.
fn refusal<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    what: &str,
    result: Result<T, E>,
) -> (String, String) {
    match result {
        Ok(value) => panic!("{what}: expected a refusal, got {value:?}"),
        Err(error) => (
            error.code().unwrap_or_default().to_owned(),
            error.message().unwrap_or_default().to_owned(),
        ),
    }
}

async fn nat_state(ec2: &aws_sdk_ec2::Client, id: &str) -> String {
    ec2.describe_nat_gateways()
        .nat_gateway_ids(id)
        .send()
        .await
        .expect("describe the NAT gateway")
        .nat_gateways()[0]
        .state()
        .map(|state| state.as_str().to_owned())
        .unwrap_or_default()
}

async fn interfaces_in(ec2: &aws_sdk_ec2::Client, filter: &str, value: &str) -> Vec<String> {
    ec2.describe_network_interfaces()
        .filters(Filter::builder().name(filter).values(value).build())
        .send()
        .await
        .expect("describe network interfaces")
        .network_interfaces()
        .iter()
        .map(|interface| interface.description().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_nat_gateway_is_pending_for_the_scaled_window_then_available() {
    nat_gateway_pending_for_its_window(skiff_tests::Realism {
        nat_ready_ms: SLOW_WINDOW_MS,
        ..skiff_tests::Realism::scaled(SLOW_SCALE)
    })
    .await;
}

/// The slow behaviours keep their time beside the models that see every
/// request first (eventual consistency, token buckets): what is due happens
/// on every request, whichever way it reaches moto.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_nat_gateway_is_available_on_time_beside_the_consistency_and_throttling_models() {
    nat_gateway_pending_for_its_window(skiff_tests::Realism {
        nat_ready_ms: SLOW_WINDOW_MS,
        // On, but too short to hide what the test creates.
        consistency_ms: 1,
        token_buckets: true,
        ..skiff_tests::Realism::scaled(SLOW_SCALE)
    })
    .await;
}

async fn nat_gateway_pending_for_its_window(realism: skiff_tests::Realism) {
    let aws = slow_endpoint(realism);
    let (ec2, _) = counted_clients(&aws).await;
    let net = network(&ec2).await;
    let allocation = ec2
        .allocate_address()
        .domain(aws_sdk_ec2::types::DomainType::Vpc)
        .send()
        .await
        .expect("allocate an address")
        .allocation_id()
        .expect("an allocation")
        .to_owned();
    let started = Instant::now();
    let created = ec2
        .create_nat_gateway()
        .subnet_id(&net.subnets[0])
        .allocation_id(&allocation)
        .send()
        .await
        .expect("create a NAT gateway");
    let gateway = created.nat_gateway().expect("a gateway");
    let id = gateway.nat_gateway_id().expect("an ID").to_owned();
    assert_eq!(
        gateway.state().map(|state| state.as_str()),
        Some("pending"),
        "CreateNatGateway answers pending"
    );
    assert_eq!(nat_state(&ec2, &id).await, "pending");
    tokio::time::sleep(SLOW_WALL / 2).await;
    assert!(started.elapsed() < SLOW_WALL);
    assert_eq!(
        nat_state(&ec2, &id).await,
        "pending",
        "still within the window"
    );
    tokio::time::sleep(SLOW_PAST - started.elapsed()).await;
    assert_eq!(nat_state(&ec2, &id).await, "available", "after the window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_load_balancer_is_provisioning_for_the_scaled_window_then_active() {
    let aws = slow_endpoint(skiff_tests::Realism {
        lb_ready_ms: SLOW_WINDOW_MS,
        ..skiff_tests::Realism::scaled(SLOW_SCALE)
    });
    let (ec2, elb) = counted_clients(&aws).await;
    let net = network(&ec2).await;
    let started = Instant::now();
    let created = elb
        .create_load_balancer()
        .name("slow-api")
        .r#type(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Network)
        .scheme(aws_sdk_elasticloadbalancingv2::types::LoadBalancerSchemeEnum::Internal)
        .subnets(&net.subnets[0])
        .subnets(&net.subnets[1])
        .send()
        .await
        .expect("create a load balancer");
    let arn = created.load_balancers()[0]
        .load_balancer_arn()
        .expect("an ARN")
        .to_owned();
    let state = || async {
        elb.describe_load_balancers()
            .load_balancer_arns(&arn)
            .send()
            .await
            .expect("describe the load balancer")
            .load_balancers()[0]
            .state()
            .and_then(|state| state.code())
            .map(|code| code.as_str().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(state().await, "provisioning");
    tokio::time::sleep(SLOW_WALL / 2).await;
    assert!(started.elapsed() < SLOW_WALL);
    assert_eq!(state().await, "provisioning", "still within the window");
    tokio::time::sleep(SLOW_PAST - started.elapsed()).await;
    assert_eq!(state().await, "active", "after the window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleting_nat_gateway_holds_its_address_subnet_and_gateway_until_deleted() {
    let aws = slow_endpoint(skiff_tests::Realism {
        nat_delete_ms: SLOW_WINDOW_MS,
        ..skiff_tests::Realism::scaled(SLOW_SCALE)
    });
    let (ec2, _) = counted_clients(&aws).await;
    let net = network(&ec2).await;
    let allocated = ec2
        .allocate_address()
        .domain(aws_sdk_ec2::types::DomainType::Vpc)
        .send()
        .await
        .expect("allocate an address");
    let allocation = allocated.allocation_id().expect("an allocation").to_owned();
    let public_ip = allocated.public_ip().expect("an address").to_owned();
    let id = ec2
        .create_nat_gateway()
        .subnet_id(&net.subnets[0])
        .allocation_id(&allocation)
        .send()
        .await
        .expect("create a NAT gateway")
        .nat_gateway()
        .and_then(|gateway| gateway.nat_gateway_id())
        .expect("an ID")
        .to_owned();
    let started = Instant::now();
    ec2.delete_nat_gateway()
        .nat_gateway_id(&id)
        .send()
        .await
        .expect("delete the NAT gateway");
    assert_eq!(nat_state(&ec2, &id).await, "deleting");

    let (code, message) = refusal(
        "ReleaseAddress",
        ec2.release_address()
            .allocation_id(&allocation)
            .send()
            .await,
    );
    assert_eq!(code, "AuthFailure");
    assert_eq!(
        message,
        "You do not have permission to access the specified resource."
    );
    let (code, _) = refusal(
        "DisassociateAddress",
        ec2.disassociate_address()
            .public_ip(&public_ip)
            .send()
            .await,
    );
    assert_eq!(code, "AuthFailure");
    let (code, message) = refusal(
        "DeleteSubnet",
        ec2.delete_subnet().subnet_id(&net.subnets[0]).send().await,
    );
    assert_eq!(code, "DependencyViolation");
    assert_eq!(
        message,
        format!(
            "The subnet '{}' has dependencies and cannot be deleted.",
            net.subnets[0]
        )
    );
    let (code, message) = refusal(
        "DetachInternetGateway",
        ec2.detach_internet_gateway()
            .internet_gateway_id(&net.gateway)
            .vpc_id(&net.vpc)
            .send()
            .await,
    );
    assert_eq!(code, "DependencyViolation");
    assert_eq!(
        message,
        format!(
            "Network {} has some mapped public address(es). Please unmap those public address(es) \
             before detaching the gateway.",
            net.vpc
        )
    );
    assert!(
        started.elapsed() < SLOW_WALL,
        "every refusal came within the window ({:?})",
        started.elapsed()
    );

    tokio::time::sleep(SLOW_PAST.saturating_sub(started.elapsed())).await;
    assert_eq!(nat_state(&ec2, &id).await, "deleted");
    let address = ec2
        .describe_addresses()
        .allocation_ids(&allocation)
        .send()
        .await
        .expect("describe the address");
    assert_eq!(
        address.addresses()[0].association_id(),
        None,
        "a deleted NAT gateway's address is disassociated, not released"
    );
    ec2.release_address()
        .allocation_id(&allocation)
        .send()
        .await
        .expect("the address is released after the window");
    ec2.delete_subnet()
        .subnet_id(&net.subnets[0])
        .send()
        .await
        .expect("the subnet is deleted after the window");
    ec2.detach_internet_gateway()
        .internet_gateway_id(&net.gateway)
        .vpc_id(&net.vpc)
        .send()
        .await
        .expect("the gateway is detached after the window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_load_balancers_interfaces_linger_in_its_subnets_and_groups() {
    let aws = slow_endpoint(skiff_tests::Realism {
        lb_eni_linger_ms: SLOW_WINDOW_MS,
        ..skiff_tests::Realism::scaled(SLOW_SCALE)
    });
    let (ec2, elb) = counted_clients(&aws).await;
    let net = network(&ec2).await;
    let created = elb
        .create_load_balancer()
        .name("linger")
        .r#type(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Network)
        .scheme(aws_sdk_elasticloadbalancingv2::types::LoadBalancerSchemeEnum::Internal)
        .subnets(&net.subnets[0])
        .subnets(&net.subnets[1])
        .security_groups(&net.group)
        .send()
        .await
        .expect("create a load balancer");
    let arn = created.load_balancers()[0]
        .load_balancer_arn()
        .expect("an ARN")
        .to_owned();
    let id = arn.rsplit('/').next().expect("an ID").to_owned();
    let description = format!("ELB net/linger/{id}");
    let described = ec2
        .describe_network_interfaces()
        .filters(
            Filter::builder()
                .name("group-id")
                .values(&net.group)
                .build(),
        )
        .send()
        .await
        .expect("describe interfaces");
    assert_eq!(described.network_interfaces().len(), 2, "one per subnet");
    for interface in described.network_interfaces() {
        assert_eq!(interface.description(), Some(description.as_str()));
        assert_eq!(interface.requester_managed(), Some(true));
        assert_eq!(interface.requester_id(), Some("amazon-elb"));
    }

    elb.delete_load_balancer()
        .load_balancer_arn(&arn)
        .send()
        .await
        .expect("delete the load balancer");
    let started = Instant::now();
    assert!(elb
        .describe_load_balancers()
        .send()
        .await
        .expect("describe")
        .load_balancers()
        .is_empty());
    for subnet in &net.subnets {
        assert_eq!(
            interfaces_in(&ec2, "subnet-id", subnet).await,
            std::slice::from_ref(&description),
            "the interface lingers in {subnet}"
        );
    }
    let (code, message) = refusal(
        "DeleteSecurityGroup",
        ec2.delete_security_group()
            .group_id(&net.group)
            .send()
            .await,
    );
    assert_eq!(code, "DependencyViolation");
    assert_eq!(
        message,
        format!("resource {} has a dependent object", net.group)
    );
    let (code, _) = refusal(
        "DeleteSubnet",
        ec2.delete_subnet().subnet_id(&net.subnets[1]).send().await,
    );
    assert_eq!(code, "DependencyViolation");
    // The harness's own requests never get the model's errors.
    let harness = aws_sdk_ec2::Client::new(&aws.sdk_config().await);
    harness
        .delete_subnet()
        .subnet_id(&net.subnets[1])
        .send()
        .await
        .expect("a harness request is not refused");
    assert!(started.elapsed() < SLOW_WALL, "within the window");

    tokio::time::sleep(SLOW_PAST.saturating_sub(started.elapsed())).await;
    assert!(interfaces_in(&ec2, "subnet-id", &net.subnets[0])
        .await
        .is_empty());
    ec2.delete_security_group()
        .group_id(&net.group)
        .send()
        .await
        .expect("the group is deleted after the window");
    ec2.delete_subnet()
        .subnet_id(&net.subnets[0])
        .send()
        .await
        .expect("the subnet is deleted after the window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_instance_shuts_down_holding_its_interface() {
    let aws = slow_endpoint(skiff_tests::Realism {
        terminate_ms: SLOW_WINDOW_MS,
        ..skiff_tests::Realism::scaled(SLOW_SCALE)
    });
    let (ec2, _) = counted_clients(&aws).await;
    let net = network(&ec2).await;
    let instance = ec2
        .run_instances()
        .image_id("ami-0a9f8e7d6c5b40610")
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .subnet_id(&net.subnets[0])
        .security_group_ids(&net.group)
        .send()
        .await
        .expect("run an instance")
        .instances()[0]
        .instance_id()
        .expect("an instance ID")
        .to_owned();
    let terminated = ec2
        .terminate_instances()
        .instance_ids(&instance)
        .send()
        .await
        .expect("terminate it");
    let started = Instant::now();
    assert_eq!(
        terminated.terminating_instances()[0]
            .previous_state()
            .and_then(|state| state.name())
            .map(|name| name.as_str()),
        Some("running")
    );
    let state = || async {
        ec2.describe_instances()
            .instance_ids(&instance)
            .send()
            .await
            .expect("describe the instance")
            .reservations()[0]
            .instances()[0]
            .state()
            .and_then(|state| state.name())
            .map(|name| name.as_str().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(state().await, "shutting-down");
    assert_eq!(
        interfaces_in(&ec2, "subnet-id", &net.subnets[0])
            .await
            .len(),
        1,
        "its interface is still in the subnet"
    );
    let (code, _) = refusal(
        "DeleteSubnet",
        ec2.delete_subnet().subnet_id(&net.subnets[0]).send().await,
    );
    assert_eq!(code, "DependencyViolation");
    let (code, _) = refusal(
        "DeleteSecurityGroup",
        ec2.delete_security_group()
            .group_id(&net.group)
            .send()
            .await,
    );
    assert_eq!(code, "DependencyViolation");
    assert!(started.elapsed() < SLOW_WALL, "within the window");

    tokio::time::sleep(SLOW_PAST.saturating_sub(started.elapsed())).await;
    assert_eq!(state().await, "terminated");
    assert!(interfaces_in(&ec2, "subnet-id", &net.subnets[0])
        .await
        .is_empty());
    ec2.delete_security_group()
        .group_id(&net.group)
        .send()
        .await
        .expect("the group is deleted after the window");
    ec2.delete_subnet()
        .subnet_id(&net.subnets[0])
        .send()
        .await
        .expect("the subnet is deleted after the window");
}

// --- eventual consistency, IAM propagation, token buckets ----------------------

/// SDK clients of every service the consistency model covers, as skiff's
/// own (counted, modelled) or as the harness's, without retries, so each
/// call shows what the endpoint answered.
struct ModelClients {
    ec2: aws_sdk_ec2::Client,
    elb: aws_sdk_elasticloadbalancingv2::Client,
    autoscaling: aws_sdk_autoscaling::Client,
    iam: aws_sdk_iam::Client,
}

impl ModelClients {
    async fn new(aws: &LocalAws, harness: bool) -> ModelClients {
        let config = if harness {
            aws.sdk_config().await
        } else {
            aws.sdk_config_counted().await
        };
        let once = aws_config::retry::RetryConfig::disabled();
        ModelClients {
            ec2: aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(&config)
                    .retry_config(once.clone())
                    .build(),
            ),
            elb: aws_sdk_elasticloadbalancingv2::Client::from_conf(
                aws_sdk_elasticloadbalancingv2::config::Builder::from(&config)
                    .retry_config(once.clone())
                    .build(),
            ),
            autoscaling: aws_sdk_autoscaling::Client::from_conf(
                aws_sdk_autoscaling::config::Builder::from(&config)
                    .retry_config(once.clone())
                    .build(),
            ),
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(&config)
                    .retry_config(once)
                    .build(),
            ),
        }
    }
}

/// The error code of a failed call, or `ok` when it succeeded.
fn outcome<T, E: ProvideErrorMetadata>(result: &Result<T, E>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(error) => error.code().unwrap_or("(no code)").to_owned(),
    }
}

fn message<T, E: ProvideErrorMetadata>(result: &Result<T, E>) -> String {
    match result {
        Ok(_) => String::new(),
        Err(error) => error.message().unwrap_or_default().to_owned(),
    }
}

/// One second of wall time: the windows below are 2000 ms of AWS time at
/// half speed.
const MODEL_WINDOW: Duration = Duration::from_secs(1);
/// Past the window: it starts when the endpoint answers the create, a
/// little after the client's clock started.
const AFTER_WINDOW: Duration = Duration::from_millis(1300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventual_consistency_answers_each_services_not_found_only_within_the_window() {
    let aws = LocalAws::start_with(LocalAwsOptions {
        realism: skiff_tests::Realism {
            consistency_ms: 2_000,
            ..skiff_tests::Realism::scaled(0.5)
        },
        warm_up: true,
        ..LocalAwsOptions::default()
    });
    let client = ModelClients::new(&aws, false).await;
    let harness = ModelClients::new(&aws, true).await;

    // EC2: the next call naming a new VPC is told it does not exist, and
    // listings leave it out; the harness sees it at once.
    let vpc = client
        .ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .expect("create a VPC");
    // The window starts when the endpoint answers.
    let created = Instant::now();
    let vpc = vpc
        .vpc()
        .and_then(|vpc| vpc.vpc_id())
        .expect("an ID")
        .to_owned();
    let named = client.ec2.describe_vpcs().vpc_ids(&vpc).send().await;
    assert_eq!(outcome(&named), "InvalidVpcID.NotFound", "{named:?}");
    assert!(message(&named).contains(&vpc), "{}", message(&named));
    let listed = client.ec2.describe_vpcs().send().await.expect("list VPCs");
    assert!(
        listed
            .vpcs()
            .iter()
            .all(|listed| listed.vpc_id() != Some(&vpc)),
        "a listing leaves the new VPC out"
    );
    let seen = harness.ec2.describe_vpcs().vpc_ids(&vpc).send().await;
    assert_eq!(outcome(&seen), "ok", "harness traffic sees it at once");
    let subnet = client
        .ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.0.1.0/24")
        .availability_zone("us-east-1a")
        .send()
        .await;
    assert_eq!(outcome(&subnet), "InvalidVpcID.NotFound", "{subnet:?}");
    // The wire format: EC2's query-protocol error document, status 400.
    let raw = query_request(
        &aws,
        "ec2",
        &format!("Action=DescribeVpcs&Version=2016-11-15&VpcId.1={vpc}"),
    );
    if created.elapsed() < MODEL_WINDOW {
        assert_eq!(raw.status, 400, "{}", raw.text());
        assert!(
            raw.text()
                .contains("<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code>"),
            "{}",
            raw.text()
        );
    }

    // Once the window is over, the same calls succeed.
    tokio::time::sleep(AFTER_WINDOW.saturating_sub(created.elapsed())).await;
    let named = client.ec2.describe_vpcs().vpc_ids(&vpc).send().await;
    assert_eq!(outcome(&named), "ok", "visible after the window");
    let subnet = client
        .ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.0.1.0/24")
        .availability_zone("us-east-1a")
        .send()
        .await
        .expect("a subnet in the VPC, now visible");
    let subnet = subnet
        .subnet()
        .and_then(|subnet| subnet.subnet_id())
        .expect("an ID")
        .to_owned();
    let group = client
        .ec2
        .create_security_group()
        .vpc_id(&vpc)
        .group_name("model")
        .description("model")
        .send()
        .await
        .expect("a security group");
    let group = group.group_id().expect("an ID").to_owned();
    let first = Instant::now();
    let template = client
        .ec2
        .create_launch_template()
        .launch_template_name("consistency-model")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-0a9f8e7d6c5b40610")
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .build(),
        )
        .send()
        .await
        .expect("a launch template");
    let template = template
        .launch_template()
        .and_then(|template| template.launch_template_id())
        .expect("an ID")
        .to_owned();
    let target = client
        .elb
        .create_target_group()
        .name("model")
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Tcp)
        .port(443)
        .vpc_id(&vpc)
        .send()
        .await
        .expect("a target group");
    let target = target.target_groups()[0]
        .target_group_arn()
        .expect("an ARN")
        .to_owned();
    let created = Instant::now();

    // Within the window, each service answers its own error.
    let rules = client
        .ec2
        .describe_security_groups()
        .group_ids(&group)
        .send()
        .await;
    assert_eq!(outcome(&rules), "InvalidGroup.NotFound", "{rules:?}");
    let balancer = client
        .elb
        .create_load_balancer()
        .name("model")
        .r#type(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Network)
        .subnets(&subnet)
        .security_groups(&group)
        .send()
        .await;
    assert_eq!(outcome(&balancer), "SubnetNotFound", "{balancer:?}");
    let targets = client
        .elb
        .describe_target_groups()
        .target_group_arns(&target)
        .send()
        .await;
    assert_eq!(outcome(&targets), "TargetGroupNotFound", "{targets:?}");
    let group_launch = client
        .autoscaling
        .create_auto_scaling_group()
        .auto_scaling_group_name("model")
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_id(&template)
                .build(),
        )
        .min_size(0)
        .max_size(0)
        .vpc_zone_identifier(&subnet)
        .send()
        .await;
    assert_eq!(
        outcome(&group_launch),
        "ValidationError",
        "{group_launch:?}"
    );
    assert!(
        message(&group_launch).contains("You must use a valid fully-formed launch template"),
        "{}",
        message(&group_launch)
    );
    assert!(
        first.elapsed() < MODEL_WINDOW,
        "the calls took longer than the window ({:?}): nothing was proven",
        first.elapsed()
    );

    tokio::time::sleep(AFTER_WINDOW.saturating_sub(created.elapsed())).await;
    let balancer = client
        .elb
        .create_load_balancer()
        .name("model")
        .r#type(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Network)
        .subnets(&subnet)
        .security_groups(&group)
        .send()
        .await
        .expect("a load balancer once its subnet and group are visible");
    let balancer = balancer.load_balancers()[0]
        .load_balancer_arn()
        .expect("an ARN")
        .to_owned();
    let created = Instant::now();
    let listeners = client
        .elb
        .describe_listeners()
        .load_balancer_arn(&balancer)
        .send()
        .await;
    assert_eq!(outcome(&listeners), "LoadBalancerNotFound", "{listeners:?}");
    let raw = query_request(
        &aws,
        "elasticloadbalancing",
        &format!(
            "Action=DescribeListeners&Version=2015-12-01&LoadBalancerArn={}",
            balancer.replace(':', "%3A").replace('/', "%2F")
        ),
    );
    assert_eq!(raw.status, 400, "{}", raw.text());
    assert!(
        raw.text().contains("<ErrorResponse xmlns=\"http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/\"><Error><Type>Sender</Type><Code>LoadBalancerNotFound</Code>"),
        "{}",
        raw.text()
    );
    assert!(created.elapsed() < MODEL_WINDOW, "nothing was proven");
    let group_launch = client
        .autoscaling
        .create_auto_scaling_group()
        .auto_scaling_group_name("model")
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_id(&template)
                .build(),
        )
        .min_size(0)
        .max_size(0)
        .vpc_zone_identifier(&subnet)
        .target_group_arns(&target)
        .send()
        .await;
    assert_eq!(outcome(&group_launch), "ok", "{group_launch:?}");

    let stats = aws.stats();
    assert!(stats.modelled("InvalidVpcID.NotFound") >= 3, "{stats:?}");
    assert_eq!(stats.modelled("LoadBalancerNotFound"), 2, "{stats:?}");
    assert!(stats.left_out.contains_key("ec2:DescribeVpcs"), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_propagation_refuses_launches_with_a_new_instance_profile_only_within_the_window() {
    let aws = LocalAws::start_with(LocalAwsOptions {
        realism: skiff_tests::Realism {
            iam_propagation_ms: 2_000,
            ..skiff_tests::Realism::scaled(0.5)
        },
        warm_up: true,
        ..LocalAwsOptions::default()
    });
    let client = ModelClients::new(&aws, false).await;
    let harness = ModelClients::new(&aws, true).await;
    let subnet = {
        let vpc = harness
            .ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .expect("vpc");
        let vpc = vpc
            .vpc()
            .and_then(|vpc| vpc.vpc_id())
            .expect("id")
            .to_owned();
        let subnet = harness
            .ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block("10.0.1.0/24")
            .availability_zone("us-east-1a")
            .send()
            .await
            .expect("subnet");
        subnet
            .subnet()
            .and_then(|subnet| subnet.subnet_id())
            .expect("id")
            .to_owned()
    };
    client
        .iam
        .create_role()
        .role_name("model")
        .assume_role_policy_document("{}")
        .send()
        .await
        .expect("a role");
    let created = Instant::now();
    client
        .iam
        .create_instance_profile()
        .instance_profile_name("model-profile")
        .send()
        .await
        .expect("an instance profile");
    client
        .iam
        .add_role_to_instance_profile()
        .instance_profile_name("model-profile")
        .role_name("model")
        .send()
        .await
        .expect("the role in the profile");
    let template = client
        .ec2
        .create_launch_template()
        .launch_template_name("iam-model")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-0a9f8e7d6c5b40610")
                .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
                .iam_instance_profile(
                    aws_sdk_ec2::types::LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                        .name("model-profile")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("a launch template naming the new profile");
    let template = template
        .launch_template()
        .and_then(|template| template.launch_template_id())
        .expect("an ID")
        .to_owned();
    let create_group = || {
        client
            .autoscaling
            .create_auto_scaling_group()
            .auto_scaling_group_name("iam-model")
            .launch_template(
                aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                    .launch_template_id(&template)
                    .build(),
            )
            .min_size(1)
            .max_size(1)
            .vpc_zone_identifier(&subnet)
            .send()
    };
    let refused = create_group().await;
    assert_eq!(outcome(&refused), "ValidationError", "{refused:?}");
    assert_eq!(
        message(&refused),
        "You must use a valid fully-formed launch template. Value (model-profile) for parameter \
         iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"
    );
    let run = |ec2: aws_sdk_ec2::Client| async move {
        ec2.run_instances()
            .image_id("ami-0a9f8e7d6c5b40610")
            .min_count(1)
            .max_count(1)
            .iam_instance_profile(
                aws_sdk_ec2::types::IamInstanceProfileSpecification::builder()
                    .name("model-profile")
                    .build(),
            )
            .send()
            .await
    };
    let refused = run(client.ec2.clone()).await;
    assert_eq!(outcome(&refused), "InvalidParameterValue", "{refused:?}");
    assert!(
        message(&refused).contains("Invalid IAM Instance Profile name"),
        "{}",
        message(&refused)
    );
    assert_eq!(
        outcome(&run(harness.ec2.clone()).await),
        "ok",
        "harness traffic is never refused"
    );
    assert!(created.elapsed() < MODEL_WINDOW, "nothing was proven");

    tokio::time::sleep(AFTER_WINDOW.saturating_sub(created.elapsed())).await;
    assert_eq!(
        outcome(&create_group().await),
        "ok",
        "launches work once propagated"
    );
    assert_eq!(outcome(&run(client.ec2.clone()).await), "ok");
    let stats = aws.stats();
    assert_eq!(
        stats.modelled_calls,
        BTreeMap::from([
            (
                "autoscaling:CreateAutoScalingGroup ValidationError".to_owned(),
                1
            ),
            ("ec2:RunInstances InvalidParameterValue".to_owned(), 1),
        ])
    );
}

/// Sends `form` until EC2 throttles it (at most `limit` times); returns
/// how many went through and the throttling answer.
fn until_throttled(aws: &LocalAws, form: &str, limit: usize) -> (usize, Option<HttpResponse>) {
    for sent in 0..limit {
        let response = query_request(aws, "ec2", form);
        if response.status == 503 {
            return (sent, Some(response));
        }
    }
    (limit, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_buckets_throttle_each_ec2_action_at_its_documented_size_and_refill_rate() {
    let aws = LocalAws::start_with(LocalAwsOptions {
        realism: skiff_tests::Realism {
            token_buckets: true,
            ..skiff_tests::Realism::scaled(1.0)
        },
        ..LocalAwsOptions::default()
    });
    let harness = ModelClients::new(&aws, true).await;
    // Non-mutating actions: 100 tokens, 20 a second ("Request throttling
    // for the Amazon EC2 API").
    let started = Instant::now();
    let (sent, throttled) = until_throttled(&aws, "Action=DescribeVpcs&Version=2016-11-15", 300);
    let refilled = (started.elapsed().as_secs_f64() * 20.0).ceil() as usize;
    assert!(
        (100..=100 + refilled).contains(&sent),
        "DescribeVpcs went through {sent} times before throttling (bucket 100, {refilled} refilled)"
    );
    let throttled = throttled.expect("throttled");
    assert!(
        throttled
            .text()
            .contains("<Response><Errors><Error><Code>RequestLimitExceeded</Code>"),
        "{}",
        throttled.text()
    );
    // Each action has its own bucket; harness traffic takes no token.
    let other = query_request(&aws, "ec2", "Action=DescribeSubnets&Version=2016-11-15");
    assert_eq!(other.status, 200, "{}", other.text());
    assert!(
        harness.ec2.describe_vpcs().send().await.is_ok(),
        "harness traffic is never throttled"
    );
    // The refill: a fifth of a second brings four tokens.
    let (_, _) = until_throttled(&aws, "Action=DescribeVpcs&Version=2016-11-15", 50);
    let waited = Instant::now();
    thread::sleep(Duration::from_millis(200));
    let (sent, _) = until_throttled(&aws, "Action=DescribeVpcs&Version=2016-11-15", 50);
    let refilled = waited.elapsed().as_secs_f64() * 20.0;
    assert!(
        (3..=refilled.ceil() as usize).contains(&sent),
        "after 200 ms, {sent} DescribeVpcs went through (20 a second: {refilled:.1})"
    );

    // Mutating actions: 50 tokens, 5 a second (a DeleteVpc of nothing still
    // takes one).
    let started = Instant::now();
    let (sent, _) = until_throttled(
        &aws,
        "Action=DeleteVpc&Version=2016-11-15&VpcId=vpc-00000000",
        200,
    );
    let refilled = (started.elapsed().as_secs_f64() * 5.0).ceil() as usize;
    assert!((50..=50 + refilled).contains(&sent), "DeleteVpc: {sent}");
    // Unfiltered and unpaginated DescribeSecurityGroups: 50 tokens; with a
    // filter it takes from the larger non-mutating bucket.
    let started = Instant::now();
    let (sent, _) = until_throttled(
        &aws,
        "Action=DescribeSecurityGroups&Version=2016-11-15",
        200,
    );
    let refilled = (started.elapsed().as_secs_f64() * 10.0).ceil() as usize;
    assert!(
        (50..=50 + refilled).contains(&sent),
        "unfiltered DescribeSecurityGroups: {sent}"
    );
    let filtered = query_request(
        &aws,
        "ec2",
        "Action=DescribeSecurityGroups&Version=2016-11-15&Filter.1.Name=group-name&Filter.1.Value.1=default",
    );
    assert_eq!(filtered.status, 200, "{}", filtered.text());

    let stats = aws.stats();
    assert!(stats.throttled >= 3, "{stats:?}");
    assert_eq!(stats.modelled("RequestLimitExceeded"), stats.throttled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_their_flags_consistency_propagation_and_buckets_change_nothing() {
    let aws = LocalAws::start_with(LocalAwsOptions::default());
    let client = ModelClients::new(&aws, false).await;
    let vpc = client
        .ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .expect("vpc");
    let vpc = vpc
        .vpc()
        .and_then(|vpc| vpc.vpc_id())
        .expect("id")
        .to_owned();
    let named = client.ec2.describe_vpcs().vpc_ids(&vpc).send().await;
    assert_eq!(outcome(&named), "ok", "visible at once");
    client
        .iam
        .create_instance_profile()
        .instance_profile_name("at-once")
        .send()
        .await
        .expect("a profile");
    let run = client
        .ec2
        .run_instances()
        .image_id("ami-0a9f8e7d6c5b40610")
        .min_count(1)
        .max_count(1)
        .iam_instance_profile(
            aws_sdk_ec2::types::IamInstanceProfileSpecification::builder()
                .name("at-once")
                .build(),
        )
        .send()
        .await;
    assert_eq!(outcome(&run), "ok", "usable at once");
    let (sent, _) = until_throttled(&aws, "Action=DescribeVpcs&Version=2016-11-15", 150);
    assert_eq!(sent, 150, "no bucket without --token-buckets");
    let drain = aws.request("POST", "/_harness/drain-buckets", &[], b"");
    assert!(drain.text().contains("false"), "{}", drain.text());
    let stats = aws.stats();
    assert!(
        stats.modelled_calls.is_empty() && stats.left_out.is_empty(),
        "{stats:?}"
    );
}
