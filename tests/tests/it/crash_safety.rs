//! Crash safety of `update cluster --yes` (issue 9): whatever happens in the
//! middle of an apply, running the same command again converges, and the
//! endpoint ends up with exactly one of each resource, every one of them
//! known to the recorded state.
//!
//! What each test pins:
//! - SIGKILL at ten points spread over the first apply of an HA private
//!   cluster (after the Nth mutating call to a cloud service), then reruns
//!   until one succeeds (taking over the dead run's lock once its short
//!   lease expires): the next preview is empty, the inventory of the
//!   endpoint equals that of an uninterrupted apply of the same spec (zero
//!   duplicates), and every resource tagged for the cluster is in
//!   `state.json` (zero orphans). The ten points are split over two tests
//!   that run in parallel, each on its own endpoint, reset between points.
//! - SIGINT once in the middle of the apply: a clean non-zero exit, the lock
//!   released, every resource created so far recorded; a rerun converges.
//!   A second SIGINT exits at once (130); the next run still converges.
//! - A fifth of the mutating calls answered with throttling errors: apply
//!   and delete end exactly as on a reliable endpoint.
//! - `delete cluster --yes` killed halfway: a rerun leaves nothing.
//!
//! - Intent before action: at every kill point each resource of the cluster
//!   is either recorded or intended in `state.json`, and no intent is left
//!   once the cluster converged.
//!
//! Everything is checked by describing the endpoint directly through the
//! AWS SDK and by reading the store's bytes, never through skiff.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::cloud::*;

/// Ten kill points spread over an apply of `total` mutating calls: from
/// the 3rd call to a few before the end.
fn kill_points(total: u64) -> Vec<u64> {
    assert!(total >= 20, "an HA apply takes more than {total} calls");
    let first = 3;
    let last = total - 2;
    (0..10)
        .map(|index| first + (last - first) * index / 9)
        .collect()
}

/// SIGKILL after each of `points` (indices into the ten kill points), rerun
/// until success, and check convergence, inventory and orphans.
async fn kill_and_rerun(indices: &[usize]) {
    let mut bench = Bench::new().await;
    let (expected, total) = baseline(&mut bench).await;
    let all_keys = bench.recorded_keys("resources");
    let points = kill_points(total);
    let mut failures = Vec::new();
    for &index in indices {
        let point = points[index];
        bench.fresh_cluster().await;
        let (killed, seen) = bench.interrupted_apply(point, false);
        assert!(
            killed.code.is_none(),
            "the apply was meant to be killed\n{killed}"
        );
        let what =
            format!("SIGKILL after mutating call {seen} (point {index}: {point} of {total})");
        // Intent before action: every create was recorded as intended
        // before the first one started, so each resource of the cluster is
        // either recorded or intended, whatever the kill interrupted.
        let recorded = bench.recorded_keys("resources");
        let intended = bench.recorded_keys("intents");
        let unaccounted: Vec<&String> = all_keys
            .iter()
            .filter(|key| !recorded.contains(*key) && !intended.contains(*key))
            .collect();
        assert!(
            unaccounted.is_empty(),
            "{what}: resources neither recorded nor intended in state.json: {unaccounted:?}\n  recorded: {recorded:?}\n  intended: {intended:?}\n  killed run:\n{killed}"
        );
        assert!(
            intended.iter().all(|key| all_keys.contains(key)),
            "{what}: intents for keys the cluster does not have: {intended:?}"
        );
        // Outcomes are written behind the apply: what the kill left
        // unrecorded (but intended) the rerun adopts by its tags or names.
        let unrecorded = bench.unrecorded(&bench.inventory().await);
        let attempts = bench.rerun_until_success(&what);
        bench.assert_converged(&what);
        let left = bench.recorded_keys("intents");
        assert!(
            left.is_empty(),
            "{what}: intents are left after convergence: {left:?}"
        );
        let inventory = bench.inventory().await;
        bench.assert_no_orphans(&inventory, &what);
        let shape = inventory.shape();
        if shape != expected {
            failures.push(format!(
                "{what}: the endpoint differs from an uninterrupted apply\n  duplicates: {:?}\n  {}",
                inventory.duplicates(),
                shape_difference(&expected, &shape)
            ));
        }
        eprintln!(
            "{what}: {} resource(s) unrecorded at the kill; converged after {attempts} rerun(s)",
            unrecorded.len()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// --- the tests -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_even_points_then_rerun_converges_without_duplicates_or_orphans() {
    kill_and_rerun(&[0, 2, 4, 6, 8]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_odd_points_then_rerun_converges_without_duplicates_or_orphans() {
    kill_and_rerun(&[1, 3, 5, 7, 9]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_releases_the_lock_and_records_everything_created() {
    let mut bench = Bench::new().await;
    let (expected, total) = baseline(&mut bench).await;

    bench.fresh_cluster().await;
    let (output, seen) = bench.interrupted_apply(total / 2, true);
    output.assert_failure();
    eprintln!("SIGINT after mutating call {seen} of {total}");
    assert!(
        output.stderr.contains("stopping"),
        "SIGINT was not noticed\n{output}"
    );
    assert!(
        bench.cloud_mutations() < total,
        "the interrupted apply did everything anyway (interrupted at {seen} of {total})\n{output}"
    );

    // The lock is released.
    assert!(
        bench.lock_object().is_none(),
        "lock.json is still there after SIGINT\n{output}"
    );
    let shown = bench.skiff(["state", "lock", "show", CLUSTER]).run();
    shown.assert_success();
    assert!(
        format!("{}{}", shown.stdout, shown.stderr).contains("not locked"),
        "the lock is not released\n{shown}"
    );

    // Everything created so far is recorded.
    let inventory = bench.inventory().await;
    assert!(
        inventory.count() > 0,
        "nothing was created before the interrupt"
    );
    bench.assert_no_orphans(&inventory, "after SIGINT");

    // The same command again converges on the full inventory, at once: the
    // lock is free.
    bench.apply_command().run().assert_success();
    bench.assert_converged("the rerun after SIGINT");
    let inventory = bench.inventory().await;
    bench.assert_no_orphans(&inventory, "the rerun after SIGINT");
    let shape = inventory.shape();
    assert!(
        shape == expected,
        "after SIGINT and a rerun the endpoint differs from an uninterrupted apply\n  duplicates: {:?}\n  {}",
        inventory.duplicates(),
        shape_difference(&expected, &shape)
    );
}

/// A second resource carrying the same resource key, as a create retried
/// after a lost answer can leave (AllocateAddress takes no client token),
/// is deleted by the next apply, which keeps the one the state records (and
/// everything that refers to it) and records it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_left_by_an_interrupted_run_is_removed_and_the_recorded_one_kept() {
    let mut bench = Bench::new().await;
    let (expected, _) = baseline(&mut bench).await;
    let before = bench.recorded_state();
    let recorded_id = |state: &Value, key: &str| -> String {
        state["resources"][key]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{key} is not recorded: {state:#}"))
            .to_owned()
    };
    let ec2 = &bench.clients.ec2;

    // Duplicates of an Elastic IP (in use by a NAT gateway) and of a
    // security group, tagged exactly like the originals.
    let address_key = "elastic-ip/us-east-1b";
    let address_id = recorded_id(&before, address_key);
    let original = ec2
        .describe_addresses()
        .allocation_ids(&address_id)
        .send()
        .await
        .expect("describe the address");
    let tags = original.addresses()[0].tags().to_vec();
    ec2.allocate_address()
        .domain(aws_sdk_ec2::types::DomainType::Vpc)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::ElasticIp)
                .set_tags(Some(tags))
                .build(),
        )
        .send()
        .await
        .expect("allocate a duplicate address");
    let group_key = "security-group/nodes";
    let group_id = recorded_id(&before, group_key);
    let original = ec2
        .describe_security_groups()
        .group_ids(&group_id)
        .send()
        .await
        .expect("describe the group");
    let group = &original.security_groups()[0];
    ec2.create_security_group()
        .group_name("nodes-duplicate")
        .description("a duplicate")
        .vpc_id(group.vpc_id().expect("a VPC"))
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::SecurityGroup)
                .set_tags(Some(group.tags().to_vec()))
                .build(),
        )
        .send()
        .await
        .expect("create a duplicate group");
    let nat_id = recorded_id(&before, "nat-gateway/us-east-1b");

    bench.apply_command().run().assert_success();
    bench.assert_converged("removing duplicates");
    let inventory = bench.inventory().await;
    bench.assert_no_orphans(&inventory, "removing duplicates");
    let shape = inventory.shape();
    assert!(
        shape == expected,
        "the duplicates were not removed\n  {}",
        shape_difference(&expected, &shape)
    );
    let after = bench.recorded_state();
    assert_eq!(recorded_id(&after, address_key), address_id);
    assert_eq!(recorded_id(&after, group_key), group_id);
    assert_eq!(
        recorded_id(&after, "nat-gateway/us-east-1b"),
        nat_id,
        "the NAT gateway was replaced"
    );
}

/// Latency of the second-SIGINT test's endpoint: a call in flight at the
/// first signal is still in flight at the second.
const SLOW_LATENCY_MS: u64 = 400;

/// Share of mutating calls the throttling test answers with throttling errors.
const THROTTLE_RATE: f64 = 0.2;
/// How long one run may take when a fifth of the calls are throttled
/// (about 5 s for the apply and the delete here with the SDK's standard
/// retries; 45 s and 100 s with its adaptive mode, which skiff used to
/// run), with a wide margin.
const THROTTLED_RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// With a fifth of the mutating calls (to the cloud services and to the S3
/// state store alike) answered by throttling errors, apply and delete end
/// exactly as they do on a reliable endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_of_mutating_calls_throttled_changes_neither_apply_nor_delete() {
    let expected = {
        let mut reliable = Bench::new().await;
        baseline(&mut reliable).await.0
    };

    let mut bench = Bench::with_throttling(THROTTLE_RATE).await;
    bench.fresh_cluster().await;
    let applied = bench.apply_command().timeout(THROTTLED_RUN_TIMEOUT).run();
    applied.assert_success();
    let stats = bench.aws.stats();
    eprintln!(
        "apply under throttling: {} of {} calls answered with a throttling error; {:.1}s",
        stats.throttled,
        stats.total,
        applied.duration.as_secs_f64()
    );
    assert!(
        stats.throttled >= 10,
        "the endpoint throttled only {} calls: the test proves nothing\n{applied}",
        stats.throttled
    );
    bench.assert_converged("the apply under throttling");
    let inventory = bench.inventory().await;
    bench.assert_no_orphans(&inventory, "the apply under throttling");
    let shape = inventory.shape();
    assert!(
        shape == expected,
        "under throttling the endpoint differs from a reliable apply\n  duplicates: {:?}\n  {}",
        inventory.duplicates(),
        shape_difference(&expected, &shape)
    );

    bench.aws.reset_stats();
    let deleted = bench.delete_command().timeout(THROTTLED_RUN_TIMEOUT).run();
    deleted.assert_success();
    let throttled = bench.aws.stats().throttled;
    eprintln!(
        "delete under throttling: {throttled} calls answered with a throttling error; {:.1}s",
        deleted.duration.as_secs_f64()
    );
    assert!(
        throttled >= 5,
        "the delete saw only {throttled} throttling errors: the test proves nothing\n{deleted}"
    );
    let left = bench.inventory().await;
    assert_eq!(
        left.count(),
        0,
        "the delete under throttling left resources behind: {left:#?}\n{deleted}"
    );
}

/// `delete cluster --yes` killed halfway, then run again, leaves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_killed_halfway_then_rerun_leaves_nothing() {
    let mut bench = Bench::new().await;
    // How many mutating calls a whole delete takes.
    baseline(&mut bench).await;
    bench.aws.reset_stats();
    bench.delete_command().run().assert_success();
    let total = bench.cloud_mutations();
    assert!(
        total >= 20,
        "a delete of an HA cluster takes more than {total} calls"
    );

    bench.fresh_cluster().await;
    bench.apply_command().run().assert_success();
    bench.aws.reset_stats();
    let (killed, seen) = bench.interrupted(bench.delete_command(), total / 2, false);
    assert!(
        killed.code.is_none(),
        "the delete was meant to be killed\n{killed}"
    );
    let half_left = bench.inventory().await;
    assert!(
        half_left.count() > 0,
        "the delete was killed after {seen} of {total} calls but nothing was left"
    );
    eprintln!(
        "delete killed after mutating call {seen} of {total}: {} resources left",
        half_left.count()
    );

    let mut finished = None;
    for _ in 0..MAX_RERUNS {
        let output = bench.delete_command().run();
        output.assert_no_panic();
        if output.success() {
            finished = Some(output);
            break;
        }
        assert!(
            output.stderr.contains("is locked by"),
            "the rerun of the delete failed for another reason than the dead run's lock\n{output}"
        );
        thread::sleep(Duration::from_millis(700));
    }
    let finished = finished.expect("a rerun of the delete succeeds");
    let left = bench.inventory().await;
    assert_eq!(
        left.count(),
        0,
        "the rerun of the delete left resources behind: {left:#?}\n{finished}"
    );
    assert!(
        bench
            .aws
            .get_object(&bench.bucket, &format!("{CLUSTER}/spec.yaml"))
            .is_none(),
        "the cluster is still in the store after the delete\n{finished}"
    );
}

/// A second SIGINT exits at once (code 130), and the next run still
/// converges on exactly the resources of an uninterrupted apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigint_exits_at_once_and_the_next_run_converges() {
    // Calls slow enough that the first SIGINT's orderly stop (calls in
    // flight finish) is still going on when the second arrives.
    let mut bench = Bench::start(SLOW_LATENCY_MS, 0.0).await;
    let (expected, total) = baseline(&mut bench).await;

    bench.fresh_cluster().await;
    let mut running = bench.apply_command().spawn();
    let started = Instant::now();
    while bench.cloud_mutations() < total / 3 {
        assert!(
            running.is_running(),
            "the apply ended before a third of its calls"
        );
        assert!(
            started.elapsed() < RUN_TIMEOUT,
            "the apply never got a third of the way"
        );
        thread::sleep(Duration::from_millis(3));
    }
    running.interrupt();
    thread::sleep(Duration::from_millis(SLOW_LATENCY_MS / 4));
    let at_second = bench.cloud_mutations();
    running.interrupt();
    let output = running.wait();
    assert_eq!(
        output.code,
        Some(130),
        "a second SIGINT did not exit at once with code 130\n{output}"
    );
    assert!(
        output.stderr.contains("exiting now"),
        "the second SIGINT was not explained\n{output}"
    );
    assert!(
        at_second < total,
        "the apply had finished before the second SIGINT ({at_second} of {total} calls)"
    );

    bench.rerun_until_success("the rerun after a second SIGINT");
    bench.assert_converged("the rerun after a second SIGINT");
    let inventory = bench.inventory().await;
    bench.assert_no_orphans(&inventory, "the rerun after a second SIGINT");
    let shape = inventory.shape();
    assert!(
        shape == expected,
        "after a second SIGINT and a rerun the endpoint differs from an uninterrupted apply\n  duplicates: {:?}\n  {}",
        inventory.duplicates(),
        shape_difference(&expected, &shape)
    );
}
