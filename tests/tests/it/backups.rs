//! `get backups` and `restore cluster` (issue 16) against the local AWS
//! endpoint: backups put in the local S3 the way the control-plane nodes
//! write them, listed newest first; a restore previewed (nothing changes),
//! refused (an unknown ID, another cluster's backup, a healthy control
//! plane: nothing changes) and run (the request written, every
//! control-plane instance terminated in its group, the restore recorded in
//! the history); and a retention of 0 refused in the spec.

use std::collections::BTreeMap;

use skiff_test_support::kubernetes_api::FakeApiServer;
use skiff_tests::Skiff;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common;
use common::cluster::ClusterFixture;

/// Three backups of the fixture's cluster, oldest first: (ID, size).
const BACKUPS: [(&str, usize); 3] = [
    ("20261206T120000Z-rev100-i-0aaa1111bbbb22223", 3),
    ("20261206T121500Z-rev180-i-0bbb1111bbbb22223", 5),
    ("20261206T123000Z-rev250-i-0ccc1111bbbb22223", 7),
];

/// Every object of the store's bucket with its content: what "nothing
/// changed" compares.
fn store_objects(fixture: &ClusterFixture) -> BTreeMap<String, Vec<u8>> {
    fixture
        .aws
        .list_keys(&fixture.bucket, "")
        .into_iter()
        .map(|key| {
            let body = fixture
                .aws
                .get_object(&fixture.bucket, &key)
                .unwrap_or_default();
            (key, body)
        })
        .collect()
}

/// Puts a backup of `cluster` where the nodes write them.
fn put_backup(fixture: &ClusterFixture, cluster: &str, id: &str, size: usize) {
    fixture.aws.put_object(
        &fixture.bucket,
        &format!("{cluster}/etcd/backups/{id}.db"),
        &vec![b'x'; size],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_backups_lists_newest_first_and_bad_restores_change_nothing() {
    let fixture = ClusterFixture::new("backups.example.com").await;
    let cluster = fixture.cluster.clone();
    let other = "other-backups.example.com";
    fixture.create_cluster(&["--zones", "us-east-1a"]);
    fixture
        .skiff(["create", "cluster", other, "--zones", "us-east-1a"])
        .assert_success();

    // None yet: a friendly line naming the interval.
    let empty = fixture.skiff(["get", "backups", &cluster]);
    empty.assert_success();
    empty.assert_stderr_contains("No backups of cluster backups.example.com yet");
    empty.assert_stderr_contains("every 15m");

    for (id, size) in BACKUPS {
        put_backup(&fixture, &cluster, id, size);
    }
    // Not backups: skipped.
    fixture.aws.put_object(
        &fixture.bucket,
        &format!("{cluster}/etcd/backups/upload-in-progress.tmp"),
        b"partial",
    );
    fixture.aws.put_object(
        &fixture.bucket,
        &format!("{cluster}/etcd/leases/backup"),
        b"holder=i-0aaa\nexpires=1\n",
    );
    let other_id = "20261206T124500Z-rev900-i-0ddd1111bbbb22223";
    put_backup(&fixture, other, other_id, 11);

    let table = fixture.skiff(["get", "backups", &cluster]);
    table.assert_success();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("ID"), "{table}");
    assert!(
        lines[0].contains("REVISION") && lines[0].contains("NODE"),
        "{table}"
    );
    let rows: Vec<&str> = lines[1..]
        .iter()
        .copied()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert_eq!(rows.len(), 3, "three backups, the rest skipped:\n{table}");
    assert!(rows[0].starts_with(BACKUPS[2].0), "newest first:\n{table}");
    assert!(rows[0].contains("2026-12-06T12:30:00Z"), "{table}");
    assert!(rows[0].contains(" 250 "), "{table}");
    assert!(rows[0].contains("i-0ccc1111bbbb22223"), "{table}");
    assert!(rows[2].starts_with(BACKUPS[0].0), "oldest last:\n{table}");
    assert!(
        !table.stdout.contains(other_id),
        "another cluster's backup:\n{table}"
    );

    let json = fixture.skiff(["get", "backups", &cluster, "-o", "json"]);
    json.assert_success();
    let document = json.stdout_json();
    assert_eq!(document["kind"], "BackupList");
    assert_eq!(document["interval"], "15m");
    assert_eq!(document["keep"], 96);
    let items = document["items"].as_array().expect("items");
    let listed: Vec<(&str, u64, &str, u64)> = items
        .iter()
        .map(|item| {
            (
                item["id"].as_str().expect("id"),
                item["revision"].as_u64().expect("revision"),
                item["node"].as_str().expect("node"),
                item["sizeBytes"].as_u64().expect("size"),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (BACKUPS[2].0, 250, "i-0ccc1111bbbb22223", 7),
            (BACKUPS[1].0, 180, "i-0bbb1111bbbb22223", 5),
            (BACKUPS[0].0, 100, "i-0aaa1111bbbb22223", 3),
        ]
    );

    // Refusals: nothing in the store changes.
    let before = store_objects(&fixture);
    let unknown = fixture.skiff([
        "restore",
        "cluster",
        &cluster,
        "--backup",
        "20261206T000000Z-rev1-i-0fff1111bbbb22223",
        "--yes",
    ]);
    unknown.assert_exit(1).assert_no_panic();
    unknown.assert_stderr_contains("no backup with that ID");
    unknown.assert_stderr_contains(&format!("skiff get backups {cluster}"));

    let garbage = fixture.skiff([
        "restore", "cluster", &cluster, "--backup", "latest", "--yes",
    ]);
    garbage.assert_exit(1).assert_no_panic();
    garbage.assert_stderr_contains("is not a backup ID");
    garbage.assert_stderr_contains(&format!("skiff get backups {cluster}"));

    // Another cluster's backup, by ID, by key and by URL: named.
    let url = format!("s3://{}/{other}/etcd/backups/{other_id}.db", fixture.bucket);
    let key = format!("{other}/etcd/backups/{other_id}.db");
    for given in [other_id, key.as_str(), url.as_str()] {
        let refused = fixture.skiff(["restore", "cluster", &cluster, "--backup", given, "--yes"]);
        refused.assert_exit(1).assert_no_panic();
        refused
            .assert_stderr_contains(&format!("is a backup of cluster {other}, not of {cluster}"));
    }
    // A URL into another bucket is no backup of this store.
    let elsewhere = fixture.skiff([
        "restore",
        "cluster",
        &cluster,
        "--backup",
        &format!("s3://elsewhere/{cluster}/etcd/backups/{}.db", BACKUPS[0].0),
    ]);
    elsewhere.assert_exit(1);
    elsewhere.assert_stderr_contains("not in this state store");

    // A known backup of a cluster never applied: nothing to restore into.
    let unapplied = fixture.skiff([
        "restore",
        "cluster",
        &cluster,
        "--backup",
        BACKUPS[1].0,
        "--yes",
    ]);
    unapplied.assert_exit(1).assert_no_panic();
    unapplied.assert_stderr_contains("has no control plane to restore");

    // A retention of 0 in the spec: refused, naming the field.
    let yaml = fixture.skiff(["get", "cluster", &cluster, "-o", "yaml"]);
    yaml.assert_success();
    assert!(
        yaml.stdout.contains("keep: 96"),
        "the default is shown:\n{yaml}"
    );
    assert!(
        yaml.stdout.contains("interval: 15m"),
        "the default is shown:\n{yaml}"
    );
    for (edit, message) in [
        (
            yaml.stdout.replace("keep: 96", "keep: 0"),
            "spec.etcd.backups.keep: 0 would delete every backup; keep at least 1",
        ),
        (
            yaml.stdout.replace("interval: 15m", "interval: 30s"),
            "spec.etcd.backups.interval: 30s is outside the allowed range",
        ),
        (
            yaml.stdout.replace("interval: 15m", "interval: often"),
            "spec.etcd.backups.interval",
        ),
    ] {
        let path = fixture.home.write("cluster.yaml", edit);
        let replaced = fixture.skiff(["replace".as_ref(), "-f".as_ref(), path.as_os_str()]);
        replaced.assert_exit(1).assert_no_panic();
        replaced.assert_stderr_contains(message);
    }
    assert_eq!(
        store_objects(&fixture),
        before,
        "a refusal changed the store"
    );

    // A valid change is stored and shown.
    fixture.edit_cluster(|document| {
        document["spec"]["etcd"]["backups"]["interval"] = "1h".into();
        document["spec"]["etcd"]["backups"]["keep"] = 24.into();
    });
    let changed = fixture.skiff(["get", "backups", &cluster, "-o", "json"]);
    changed.assert_success();
    assert_eq!(changed.stdout_json()["interval"], "1h");
    assert_eq!(changed.stdout_json()["keep"], 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_need_an_s3_store() {
    let fixture = ClusterFixture::new("local-backups.example.com").await;
    let folder = fixture.home.path().join("store");
    let folder = folder.to_string_lossy().to_string();
    let skiff = |args: &[&str]| {
        Skiff::new(&fixture.aws, &fixture.home)
            .args(args)
            .args(["--state", folder.as_str()])
            .run()
    };
    skiff(&[
        "create",
        "cluster",
        &fixture.cluster,
        "--zones",
        "us-east-1a",
    ])
    .assert_success();
    for args in [
        vec!["get", "backups", fixture.cluster.as_str()],
        vec![
            "restore",
            "cluster",
            fixture.cluster.as_str(),
            "--backup",
            BACKUPS[0].0,
        ],
    ] {
        let refused = skiff(&args);
        refused.assert_exit(1).assert_no_panic();
        refused.assert_stderr_contains("only an s3:// store allows");
    }
}

/// A server whose every answer is `200 ok`: an API server whose `/readyz`
/// says it is ready (the stand-in API server does not serve `/readyz`).
async fn ready_api_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut connection, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = connection.read(&mut buffer).await;
                let _ = connection
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                    .await;
                let _ = connection.shutdown().await;
            });
        }
    });
    format!("http://{address}")
}

/// The instances of an auto scaling group that are in service.
async fn in_service(fixture: &ClusterFixture, group: &str) -> Vec<String> {
    let described = fixture
        .clients
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(fixture.group_resource(group))
        .send()
        .await
        .expect("describe auto scaling groups");
    described
        .auto_scaling_groups()
        .iter()
        .flat_map(|group| group.instances())
        .filter(|instance| {
            instance.lifecycle_state().map(|state| state.as_str()) == Some("InService")
        })
        .filter_map(|instance| instance.instance_id().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_replaces_the_control_plane_and_is_recorded() {
    let fixture = ClusterFixture::new("restore.example.com").await;
    fixture.create_zone("example.com").await;
    let cluster = fixture.cluster.clone();
    fixture.create_cluster(&["--zones", "us-east-1a", "--node-count", "1"]);
    fixture.apply();
    for (id, size) in BACKUPS {
        put_backup(&fixture, &cluster, id, size);
    }
    let control_plane = "control-plane-us-east-1a";
    let old = in_service(&fixture, control_plane).await;
    assert_eq!(old.len(), 1, "one control-plane instance");
    let workers_before = in_service(&fixture, "nodes-us-east-1a").await;
    // The groups a restore relies on replace what never becomes healthy:
    // the control plane by the load balancer's health check.
    for (group, kind, grace) in [
        (control_plane, "ELB", 1200),
        ("nodes-us-east-1a", "EC2", 600),
    ] {
        let described = fixture
            .clients
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(fixture.group_resource(group))
            .send()
            .await
            .expect("describe auto scaling groups");
        let found = &described.auto_scaling_groups()[0];
        assert_eq!(found.health_check_type(), Some(kind), "{group}");
        assert_eq!(found.health_check_grace_period(), Some(grace), "{group}");
    }
    fixture.assert_no_changes();
    let chosen = BACKUPS[1].0;

    // The preview says what will happen and changes nothing.
    let not_ready = FakeApiServer::start().await;
    let before = store_objects(&fixture);
    let preview = fixture
        .command(["restore", "cluster", &cluster, "--backup", chosen])
        .env("SKIFF_KUBERNETES_API", not_ready.url())
        .run();
    preview.assert_success();
    for expected in [
        chosen,
        "2026-12-06T12:15:00Z",
        "revision 180",
        "i-0bbb1111bbbb22223",
        control_plane,
        old[0].as_str(),
        "The first replacement restores the backup",
        "unavailable",
        "is lost",
    ] {
        preview.assert_stdout_contains(expected);
    }
    preview.assert_stderr_contains("Nothing was changed");
    assert_eq!(
        store_objects(&fixture),
        before,
        "the preview changed the store"
    );
    assert_eq!(in_service(&fixture, control_plane).await, old);

    // A healthy control plane is not replaced without --force.
    let ready = ready_api_server().await;
    let refused = fixture
        .command(["restore", "cluster", &cluster, "--backup", chosen, "--yes"])
        .env("SKIFF_KUBERNETES_API", &ready)
        .run();
    refused.assert_exit(1).assert_no_panic();
    refused.assert_stderr_contains("is healthy");
    refused.assert_stderr_contains("--force");
    assert_eq!(
        store_objects(&fixture),
        before,
        "the refusal changed the store"
    );
    assert_eq!(in_service(&fixture, control_plane).await, old);

    // With --yes: requested, replaced, recorded.
    let snapshots_before = fixture
        .aws
        .list_keys(&fixture.bucket, &format!("{cluster}/history/state/"));
    let restored = fixture
        .command(["restore", "cluster", &cluster, "--backup", chosen, "--yes"])
        .env("SKIFF_KUBERNETES_API", not_ready.url())
        .run();
    restored.assert_success();
    restored.assert_stderr_contains("1 control-plane instance(s) terminated");
    let request = fixture
        .get_object("etcd/restore-request")
        .expect("the restore request is written");
    assert_eq!(String::from_utf8_lossy(&request).trim(), chosen);

    let states = fixture
        .clients
        .ec2
        .describe_instances()
        .instance_ids(&old[0])
        .send()
        .await
        .expect("describe instances");
    let state = states
        .reservations()
        .iter()
        .flat_map(|reservation| reservation.instances())
        .find_map(|instance| instance.state().and_then(|state| state.name()).cloned())
        .expect("the old instance is described");
    assert!(
        matches!(state.as_str(), "shutting-down" | "terminated"),
        "the old control-plane instance is {state:?}"
    );
    let still = fixture
        .clients
        .autoscaling
        .describe_auto_scaling_instances()
        .instance_ids(&old[0])
        .send()
        .await
        .expect("describe auto scaling instances");
    assert!(
        still
            .auto_scaling_instances()
            .iter()
            .all(|instance| instance.lifecycle_state() != Some("InService")),
        "the old instance still serves: {still:?}"
    );
    // The group keeps its size: a replacement, not a shrink.
    let described = fixture
        .clients
        .autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(fixture.group_resource(control_plane))
        .send()
        .await
        .expect("describe the control-plane group");
    assert_eq!(
        described.auto_scaling_groups()[0].desired_capacity(),
        Some(1)
    );
    // Workers are not touched.
    assert_eq!(
        in_service(&fixture, "nodes-us-east-1a").await,
        workers_before
    );

    let snapshots_after = fixture
        .aws
        .list_keys(&fixture.bucket, &format!("{cluster}/history/state/"));
    assert_eq!(
        snapshots_after.len(),
        snapshots_before.len() + 1,
        "one history entry"
    );
    let newest = snapshots_after.last().expect("a snapshot");
    let snapshot = String::from_utf8(
        fixture
            .aws
            .get_object(&fixture.bucket, newest)
            .expect("the snapshot"),
    )
    .expect("text");
    assert!(
        snapshot.contains(&format!("restore of etcd backup {chosen} requested")),
        "{snapshot}"
    );
    assert!(
        snapshot.contains("restore cluster"),
        "the command line: {snapshot}"
    );
    assert!(
        fixture.get_object("lock.json").is_none(),
        "the lock is released"
    );

    // --force: a control plane that answers is replaced all the same.
    let replacements = in_service(&fixture, control_plane).await;
    assert_eq!(replacements.len(), 1, "the group launched a replacement");
    assert_ne!(replacements, old);
    let newest_backup = BACKUPS[2].0;
    let forced = fixture
        .command([
            "restore",
            "cluster",
            &cluster,
            "--backup",
            newest_backup,
            "--yes",
            "--force",
        ])
        .env("SKIFF_KUBERNETES_API", &ready)
        .run();
    forced.assert_success();
    forced.assert_stdout_contains("--force: restoring anyway");
    forced.assert_stdout_contains(&replacements[0]);
    let request = fixture
        .get_object("etcd/restore-request")
        .expect("the restore request is written");
    assert_eq!(String::from_utf8_lossy(&request).trim(), newest_backup);
    assert!(
        !in_service(&fixture, control_plane)
            .await
            .contains(&replacements[0]),
        "the replacement was terminated too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_cluster_removes_its_etcd_folder_and_nothing_of_its_neighbour() {
    let fixture = ClusterFixture::new("delete-backups.example.com").await;
    let cluster = fixture.cluster.clone();
    let other = "keep-backups.example.com";
    fixture.create_cluster(&["--zones", "us-east-1a"]);
    fixture
        .skiff(["create", "cluster", other, "--zones", "us-east-1a"])
        .assert_success();
    let etcd_objects = [
        format!("etcd/backups/{}.db", BACKUPS[0].0),
        format!("etcd/backups/{}.db", BACKUPS[1].0),
        "etcd/leases/members".to_string(),
        "etcd/leases/backup".to_string(),
        "etcd/leases/certificates".to_string(),
        "etcd/restore-request".to_string(),
        "etcd/init-lock".to_string(),
        "bootstrap/init-lock".to_string(),
    ];
    for object in &etcd_objects {
        for owner in [cluster.as_str(), other] {
            fixture
                .aws
                .put_object(&fixture.bucket, &format!("{owner}/{object}"), b"x");
        }
    }
    let neighbour_before: Vec<String> =
        fixture.aws.list_keys(&fixture.bucket, &format!("{other}/"));
    assert!(neighbour_before.len() > etcd_objects.len());

    // The preview warns that the backups go too, and changes nothing.
    let store_before = fixture.aws.list_keys(&fixture.bucket, "");
    let preview = fixture.skiff(["delete", "cluster", &cluster]);
    preview.assert_success();
    preview.assert_stdout_contains(&format!(
        "It also deletes the cluster's 2 etcd backups (2 bytes, newest {})",
        BACKUPS[0].0.max(BACKUPS[1].0)
    ));
    assert_eq!(fixture.aws.list_keys(&fixture.bucket, ""), store_before);

    let deleted = fixture.skiff(["delete", "cluster", &cluster, "--yes"]);
    deleted.assert_success();
    deleted.assert_stdout_contains("It also deletes the cluster's 2 etcd backups");

    assert_eq!(
        fixture
            .aws
            .list_keys(&fixture.bucket, &format!("{cluster}/")),
        Vec::<String>::new(),
        "objects of the deleted cluster left"
    );
    assert_eq!(
        fixture.aws.list_keys(&fixture.bucket, &format!("{other}/")),
        neighbour_before,
        "the neighbour's objects changed"
    );
}
