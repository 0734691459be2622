//! `--lock-timeout`: a command that finds the cluster lock held waits for it
//! instead of failing at once, saying who holds it, and takes it as soon as
//! it is free:
//! - a holder killed with SIGKILL stops renewing its lease: the waiter takes
//!   the lock over when the lease runs out, with no manual step;
//! - a holder that finishes releases the lock: the waiter goes on at once;
//! - a timeout that passes fails with the "locked by" error plus how long it
//!   waited; Ctrl-C during the wait stops it cleanly, changing nothing.
//!
//! The waiter is `delete cluster --unregister --yes`, the cheapest command
//! that takes the lock through the engine as every cloud operation does
//! (`Session::lock`), and `state lock hold`.

use crate::common;

use std::time::{Duration, Instant};

use common::{create_cluster, skiff, Store, CLUSTER};
use skiff_tests::{LocalAws, LocalAwsOptions, SandboxHome, Skiff, SkiffOutput};

/// The lease of the holders whose death the tests wait out.
const SHORT_LEASE: &str = "3s";

/// `state lock hold` as `user`, with `lease`.
fn hold(aws: &LocalAws, home: &SandboxHome, store: &Store, user: &str, lease: &str) -> Skiff {
    skiff(
        aws,
        home,
        store,
        &[
            "state",
            "lock",
            "hold",
            CLUSTER,
            "--reason",
            "replacing disks",
        ],
    )
    .env("SKIFF_USER", user)
    .env("SKIFF_LOCK_LEASE", lease)
    .timeout(Duration::from_secs(120))
}

/// `delete cluster --unregister --yes --lock-timeout TIMEOUT` as `waiter`.
fn unregister(aws: &LocalAws, home: &SandboxHome, store: &Store, timeout: &str) -> Skiff {
    skiff(
        aws,
        home,
        store,
        &[
            "delete",
            "cluster",
            CLUSTER,
            "--unregister",
            "--yes",
            "--lock-timeout",
            timeout,
        ],
    )
    .env("SKIFF_USER", "waiter")
    .timeout(Duration::from_secs(120))
}

/// The lock as `state lock show -o json` prints it (`None`: not locked).
fn lock_info(aws: &LocalAws, home: &SandboxHome, store: &Store) -> Option<serde_json::Value> {
    let output = skiff(
        aws,
        home,
        store,
        &["state", "lock", "show", CLUSTER, "-o", "json"],
    )
    .run();
    output.assert_success();
    let info = output.stdout_json();
    (!info.is_null()).then_some(info)
}

/// Waits until `user` holds the lock.
fn wait_until_held_by(aws: &LocalAws, home: &SandboxHome, store: &Store, user: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(info) = lock_info(aws, home, store) {
            if info["holder"]["user"] == user {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{user} does not hold the lock after 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether the lock object is in the bucket (also once the cluster is gone).
fn lock_object_exists(aws: &LocalAws, store: &Store) -> bool {
    let Store::S3 { bucket } = store else {
        unreachable!("an S3 store")
    };
    aws.get_object(bucket, &store.key(&format!("{CLUSTER}/lock.json")))
        .is_some()
}

/// Whether the cluster is still in the store.
fn cluster_exists(aws: &LocalAws, home: &SandboxHome, store: &Store) -> bool {
    let output = skiff(aws, home, store, &["get", "clusters", "-o", "json"]).run();
    output.assert_success();
    output.stdout.contains(CLUSTER)
}

/// How often `text` occurs in the run's stderr.
fn count(output: &SkiffOutput, text: &str) -> usize {
    output.stderr.matches(text).count()
}

/// The case: the holder is SIGKILLed; `--lock-timeout 2m` waits for
/// its lease (3 s) to run out, takes the lock over and proceeds.
#[test]
fn a_killed_holders_lock_is_waited_for_and_taken_over() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let store = Store::s3(aws, "lock-wait-killed");
    create_cluster(aws, &home, &store);
    let mut holder = hold(aws, &home, &store, "alice", SHORT_LEASE).spawn();
    wait_until_held_by(aws, &home, &store, "alice");
    holder.kill();
    let killed_at = Instant::now();
    let killed = holder.wait();
    assert_eq!(killed.code, None, "the holder was killed\n{killed}");
    assert!(
        lock_info(aws, &home, &store).is_some(),
        "a killed holder leaves its lock"
    );

    let output = unregister(aws, &home, &store, "2m").run();
    let waited = killed_at.elapsed();
    output
        .assert_success()
        .assert_stderr_contains(&format!(
            "Waiting up to 2m for the lock of cluster {CLUSTER}"
        ))
        .assert_stderr_contains("held by alice@")
        .assert_stderr_contains("\"replacing disks\"")
        .assert_stderr_contains("lease expires")
        .assert_stderr_contains("took over the expired lock of alice@");
    assert_eq!(
        count(&output, "Waiting up to"),
        1,
        "the holder is named once, not at every look\n{output}"
    );
    // The lease is 3 s and expiry is judged to the second: the takeover
    // comes within a few seconds of it, not at the 2 minutes' timeout.
    assert!(
        waited < Duration::from_secs(20),
        "took {waited:?} after the kill to take over a 3 s lease\n{output}"
    );
    assert!(
        !cluster_exists(aws, &home, &store),
        "the waiter went on and unregistered the cluster"
    );
    assert!(!lock_object_exists(aws, &store), "the lock was released");
}

/// A holder that finishes releases the lock; the waiter, which found it
/// held (with a long lease, so expiry cannot be what frees it), proceeds
/// within a look or two.
#[test]
fn a_released_lock_is_taken_at_once() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let store = Store::s3(aws, "lock-wait-released");
    create_cluster(aws, &home, &store);
    let holder = hold(aws, &home, &store, "bob", "10m")
        .args(["--duration", "4s"])
        .spawn();
    wait_until_held_by(aws, &home, &store, "bob");
    let waiter = unregister(aws, &home, &store, "2m").spawn();
    let held = holder.wait();
    held.assert_success()
        .assert_stderr_contains(&format!("Released the lock of cluster {CLUSTER}"));
    let released_at = Instant::now();
    let output = waiter.wait();
    let after_release = released_at.elapsed();
    output
        .assert_success()
        .assert_stderr_contains("held by bob@")
        .assert_stderr_contains("Waiting up to 2m");
    assert!(
        !output.stderr.contains("took over"),
        "a released lock is taken, not taken over\n{output}"
    );
    assert!(
        after_release < Duration::from_secs(3),
        "the waiter went on {after_release:?} after the release (it looks every 0.5 s)\n{output}"
    );
    assert!(!cluster_exists(aws, &home, &store));
}

/// The timeout passes: exit 1 with today's "locked by" error (holder, lock
/// ID, how to unlock) and how long it waited; without `--lock-timeout` the
/// error fails at once and names the flag.
#[test]
fn a_timeout_fails_naming_the_holder_and_the_wait() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let store = Store::s3(aws, "lock-wait-timeout");
    create_cluster(aws, &home, &store);
    let holder = hold(aws, &home, &store, "carol", "10m").spawn();
    wait_until_held_by(aws, &home, &store, "carol");
    let id = lock_info(aws, &home, &store).expect("held")["id"]
        .as_str()
        .expect("an ID")
        .to_string();

    let output = unregister(aws, &home, &store, "2s").run();
    output
        .assert_exit(1)
        .assert_stderr_contains("is locked by carol@")
        .assert_stderr_contains(&id)
        .assert_stderr_contains("skiff state unlock")
        .assert_stderr_contains("waited 2s for it (--lock-timeout)");
    assert!(
        output.duration >= Duration::from_secs(2) && output.duration < Duration::from_secs(15),
        "waited {:?} for a 2 s timeout\n{output}",
        output.duration
    );

    let at_once = unregister(aws, &home, &store, "0s").run();
    at_once
        .assert_exit(1)
        .assert_stderr_contains("is locked by carol@")
        .assert_stderr_contains("or wait for it with --lock-timeout");
    assert!(
        !at_once.stderr.contains("Waiting up to"),
        "0s does not wait\n{at_once}"
    );
    assert!(cluster_exists(aws, &home, &store), "nothing was changed");
    drop(holder);
}

/// Ctrl-C while waiting: a clear message, exit 1, the holder's lock and the
/// cluster untouched.
#[test]
fn ctrl_c_stops_the_wait_cleanly() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let store = Store::s3(aws, "lock-wait-interrupt");
    create_cluster(aws, &home, &store);
    let holder = hold(aws, &home, &store, "dave", "10m").spawn();
    wait_until_held_by(aws, &home, &store, "dave");
    let id = lock_info(aws, &home, &store).expect("held")["id"].clone();

    let waiter = unregister(aws, &home, &store, "10m").spawn();
    // Long enough for the waiter to start and find the lock held.
    std::thread::sleep(Duration::from_secs(3));
    waiter.interrupt();
    let output = waiter.wait();
    output
        .assert_exit(1)
        .assert_no_panic()
        .assert_stderr_contains("held by dave@")
        .assert_stderr_contains(&format!(
            "stopped waiting for the lock of cluster {CLUSTER} (Ctrl-C); nothing was changed"
        ));
    assert!(
        output.stderr.lines().count() <= 3,
        "a clean stop, not a wall of text\n{output}"
    );
    assert_eq!(
        lock_info(aws, &home, &store).expect("still held")["id"],
        id,
        "the holder's lock is untouched"
    );
    assert!(cluster_exists(aws, &home, &store));
    drop(holder);
}

/// `state lock hold` waits too, and names the holder again when it
/// changes during the wait. The change is made by rewriting the lock object
/// in the bucket (as a takeover by another operator would): a new ID, holder
/// `frank`, a 3 s lease from now, which the waiter then takes over.
#[test]
fn hold_waits_and_names_each_holder() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let store = Store::s3(aws, "lock-wait-hold");
    create_cluster(aws, &home, &store);
    let first = hold(aws, &home, &store, "erin", "10m").spawn();
    wait_until_held_by(aws, &home, &store, "erin");
    let waiter = hold(aws, &home, &store, "grace", "10m")
        .args(["--duration", "1s", "--lock-timeout", "1m"])
        .spawn();
    std::thread::sleep(Duration::from_secs(2));

    let Store::S3 { bucket } = &store else {
        unreachable!("an S3 store")
    };
    let key = store.key(&format!("{CLUSTER}/lock.json"));
    let held = aws.get_object(bucket, &key).expect("erin's lock object");
    let mut lock: serde_json::Value = serde_json::from_slice(&held).expect("lock JSON");
    lock["id"] = "00000000-0000-4000-8000-00000000f4a1".into();
    lock["holder"]["user"] = "frank".into();
    lock["renewedAt"] = utc_now().into();
    lock["leaseSeconds"] = 3.into();
    aws.put_object(bucket, &key, &serde_json::to_vec(&lock).expect("JSON"));

    let output = waiter.wait();
    output
        .assert_success()
        .assert_stderr_contains("took over an expired lock of frank@")
        .assert_stderr_contains(&format!("Released the lock of cluster {CLUSTER}"));
    assert_eq!(
        count(&output, "held by erin@"),
        1,
        "erin named once\n{output}"
    );
    assert_eq!(
        count(&output, "held by frank@"),
        1,
        "frank named once\n{output}"
    );
    assert!(
        output.stderr.find("held by erin@") < output.stderr.find("held by frank@"),
        "erin, then frank\n{output}"
    );
    drop(first);
}

/// The time now as RFC 3339 (UTC, to the second), as the lock stores it.
fn utc_now() -> String {
    let output = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .expect("date(1) runs");
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .trim()
        .to_string()
}

/// After the wait, Ctrl-C works as it does without one: the waiter takes
/// the lock and plans (slowly: every call takes 500 ms here), and a Ctrl-C
/// while it plans ends it at once, exit 130, with the lock released rather
/// than left to its lease; nothing was created. (A signal handler, once
/// made for the wait, used to swallow every later Ctrl-C.)
#[test]
fn ctrl_c_after_the_wait_ends_the_command_and_releases_the_lock() {
    let aws = LocalAws::start_with(LocalAwsOptions {
        latency_ms: 500,
        ..LocalAwsOptions::default()
    });
    let home = SandboxHome::new();
    let store = Store::s3(&aws, "lock-wait-then-plan");
    create_cluster(&aws, &home, &store);
    // The lock's holder, read through the harness (no latency).
    let holder_of = |store: &Store| -> Option<String> {
        let Store::S3 { bucket } = store else {
            unreachable!("an S3 store")
        };
        let lock = aws.get_object(bucket, &store.key(&format!("{CLUSTER}/lock.json")))?;
        let lock: serde_json::Value = serde_json::from_slice(&lock).ok()?;
        lock["holder"]["user"].as_str().map(str::to_string)
    };
    let mut holder = hold(&aws, &home, &store, "heidi", "10m")
        .args(["--duration", "3s"])
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(60);
    while holder_of(&store).as_deref() != Some("heidi") {
        assert!(
            holder.is_running(),
            "the holder ended before taking the lock"
        );
        assert!(Instant::now() < deadline, "heidi took no lock in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut waiter = skiff(
        &aws,
        &home,
        &store,
        &[
            "update",
            "cluster",
            CLUSTER,
            "--yes",
            "--lock-timeout",
            "1m",
        ],
    )
    .env("SKIFF_USER", "waiter")
    .timeout(Duration::from_secs(120))
    .spawn();
    holder.wait().assert_success();

    // The waiter holds the lock: it is planning now.
    let Store::S3 { bucket } = &store else {
        unreachable!("an S3 store")
    };
    let key = store.key(&format!("{CLUSTER}/lock.json"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while holder_of(&store).as_deref() != Some("waiter") {
        assert!(
            waiter.is_running(),
            "the waiter ended before taking the lock"
        );
        assert!(Instant::now() < deadline, "the waiter took no lock in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Its lock request has been answered; it plans for seconds from here.
    std::thread::sleep(Duration::from_millis(300));
    aws.reset_stats();
    waiter.interrupt();
    let interrupted_at = Instant::now();
    let output = waiter.wait();
    let took = interrupted_at.elapsed();
    output
        .assert_exit(130)
        .assert_no_panic()
        .assert_stderr_contains("Ctrl-C: releasing the cluster lock and exiting");
    assert!(
        took < Duration::from_secs(5),
        "ended {took:?} after Ctrl-C\n{output}"
    );
    assert!(
        aws.get_object(bucket, &key).is_none(),
        "the lock is released, not left to its lease\n{output}"
    );
    let created = aws
        .stats()
        .count_where(|call| call.starts_with("ec2:Create") || call.starts_with("ec2:Run"));
    assert_eq!(created, 0, "nothing was created\n{output}");
}
