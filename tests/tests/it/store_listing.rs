//! `skiff get clusters` over an S3 store shared by many clusters: every
//! cluster listed in order with its last change and lock, at the cost of two
//! listings (the clusters, and the lock hints `_locks/<cluster>` their
//! holders write) plus a spec read per cluster and a lock read per hint,
//! which go out in parallel (`StateStore::cluster_summaries`); the benchmark's
//! `get-clusters-s3` section times it. Tests do not time it: they check the
//! output and the shape of the calls.

use std::time::{Duration, Instant};

use skiff_tests::{LocalAws, SandboxHome, Skiff};

/// Clusters in the bucket.
const CLUSTERS: usize = 40;

/// The cluster created with skiff, whose spec the others copy.
const TEMPLATE: &str = "template.example.com";

fn name(index: usize) -> String {
    format!("c{index:03}.example.com")
}

#[test]
fn get_clusters_lists_a_shared_bucket_with_one_read_per_cluster() {
    // Its own endpoint: the test counts calls.
    let aws = LocalAws::start();
    let home = SandboxHome::new();
    let bucket = aws.create_unique_bucket("listing");
    let store = format!("s3://{bucket}");
    let skiff = |args: &[&str]| Skiff::new(&aws, &home).args(args).args(["--state", &store]);
    skiff(&["create", "cluster", TEMPLATE, "--zones", "us-east-1a"])
        .run()
        .assert_success();
    let template = aws
        .get_object(&bucket, &format!("{TEMPLATE}/spec.yaml"))
        .expect("the template's spec");
    let template = String::from_utf8(template).expect("UTF-8");
    // Copies filled in through the harness, with the template's history
    // and state left behind: only the head spec is listed.
    aws.delete_object(&bucket, &format!("{TEMPLATE}/spec.yaml"));
    for index in 0..CLUSTERS {
        let name = name(index);
        aws.put_object(
            &bucket,
            &format!("{name}/spec.yaml"),
            template.replace(TEMPLATE, &name).as_bytes(),
        );
    }

    // One cluster is locked, by a live holder.
    let locked = name(7);
    let holder = skiff(&[
        "state",
        "lock",
        "hold",
        &locked,
        "--reason",
        "replacing disks",
    ])
    .env("SKIFF_USER", "alice")
    .timeout(Duration::from_secs(120))
    .spawn();
    let deadline = Instant::now() + Duration::from_secs(60);
    while aws
        .get_object(&bucket, &format!("{locked}/lock.json"))
        .is_none()
    {
        assert!(Instant::now() < deadline, "the holder took no lock in 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }

    aws.reset_stats();
    let table = skiff(&["get", "clusters"]).run();
    table.assert_success();
    let stats = aws.stats();
    let rows: Vec<&str> = table.stdout.lines().skip(1).collect();
    let names: Vec<&str> = rows
        .iter()
        .filter_map(|row| row.split_whitespace().next())
        .collect();
    let expected: Vec<String> = (0..CLUSTERS).map(name).collect();
    assert_eq!(
        names, expected,
        "every copy, in order, no template\n{table}"
    );
    let locked_row = rows
        .iter()
        .find(|row| row.starts_with(&locked))
        .expect("the locked cluster's row");
    assert!(
        locked_row.contains("held by alice@") && locked_row.ends_with("(replacing disks)"),
        "{locked_row}"
    );
    assert_eq!(
        rows.iter().filter(|row| row.contains("held by")).count(),
        1,
        "{table}"
    );

    // The shape: two listings (folders and lock hints), then a spec read
    // per folder (the clusters and the template's folder, which has no head
    // spec and is left out) and a lock read for the one hinted cluster;
    // nothing else grows with the number of clusters.
    let folders = CLUSTERS as u64 + 1;
    let s3_calls = stats.count_where(|call| call.starts_with("s3:"));
    let gets = stats.count("s3:GetObject");
    let lists = stats.count("s3:ListObjectsV2") + stats.count("s3:ListObjects");
    assert_eq!(gets, folders + 1, "{:?}", stats.calls);
    assert_eq!(
        lists, 2,
        "one page lists {CLUSTERS} folders, one the lock hints: {:?}",
        stats.calls
    );
    assert!(
        s3_calls <= gets + lists + 2,
        "at most two more calls (opening the store): {:?}",
        stats.calls
    );

    // JSON has the same clusters, with the lock as the holder wrote it.
    let json = skiff(&["get", "clusters", "-o", "json"]).run();
    json.assert_success();
    let json = json.stdout_json();
    let items: Vec<&str> = json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["metadata"]["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(items, expected);
    let status = json["status"].as_array().expect("status");
    assert_eq!(status[7]["lock"]["holder"]["user"], "alice", "{json:#}");
    assert!(status[0]["lock"].is_null());

    // Released (Ctrl-C ends `state lock hold`), the lock takes its hint
    // with it: the listing reads no lock.
    holder.interrupt();
    holder.wait().assert_success();
    assert_eq!(
        aws.get_object(&bucket, &format!("{locked}/lock.json")),
        None,
        "released"
    );
    assert_eq!(
        aws.get_object(&bucket, &format!("_locks/{locked}")),
        None,
        "the hint goes with the lock"
    );
    aws.reset_stats();
    let table = skiff(&["get", "clusters"]).run();
    table.assert_success();
    assert!(!table.stdout.contains("held by"), "{table}");
    assert_eq!(
        aws.stats().count("s3:GetObject"),
        folders,
        "{:?}",
        aws.stats().calls
    );
}
