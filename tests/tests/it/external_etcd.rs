//! External etcd (`spec.etcd.topology: external`) through the real binary
//! against the local endpoint: member counts and roles refused with their
//! field paths and nothing stored; a valid bundle stored as written (the
//! default topology still left out of a stacked cluster's spec); its plan
//! builds the members' own security group and fixed addresses; applied,
//! `restore cluster` requests the restore and replaces every member's
//! instance, not the control plane's.

use crate::common;

use common::{skiff, Store, ZONES};
use skiff_tests::{LocalAws, SandboxHome, Skiff};

const NAME: &str = "etcd.k8s.local";

/// The spec `create cluster` would store for [`NAME`], as YAML.
fn stacked_bundle(aws: &LocalAws, home: &SandboxHome) -> String {
    let output = Skiff::new(aws, home)
        .args(["create", "cluster", NAME, "--zones", ZONES])
        .args(["--control-plane-count", "3", "--dry-run", "-o", "yaml"])
        .run();
    output.assert_success();
    assert!(
        !output.stdout.contains("topology: stacked"),
        "the default topology is left out of the stored spec\n{output}"
    );
    output.stdout
}

/// The bundle with `spec.etcd.topology: external` and `members` Etcd groups.
fn external_bundle(aws: &LocalAws, home: &SandboxHome, members: usize) -> String {
    let stacked = stacked_bundle(aws, home);
    assert!(stacked.contains("\n  etcd:\n"), "{stacked}");
    let mut text = stacked.replacen("\n  etcd:\n", "\n  etcd:\n    topology: external\n", 1);
    let zones: Vec<&str> = ZONES.split(',').collect();
    for ordinal in 1..=members {
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!(
            "---\napiVersion: skiff.dev/v1alpha1\nkind: InstanceGroup\nmetadata:\n  name: etcd-{ordinal}\n  labels:\n    skiff.dev/cluster: {NAME}\nspec:\n  role: Etcd\n  machineType: t3.small\n  minSize: 1\n  maxSize: 1\n  subnets:\n  - {}\n",
            zones[(ordinal - 1) % zones.len()]
        ));
    }
    text
}

#[test]
fn even_and_out_of_range_member_counts_and_stray_etcd_groups_are_refused_and_nothing_is_stored() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let store = Store::s3(aws, "external-etcd-refusals");
    let before = store.snapshot(aws);

    for (members, why) in [
        (2, "2 is even: etcd needs a majority"),
        (4, "4 is even"),
        (1, "1 is out of range"),
        (0, "the cluster has no instance group of role Etcd"),
    ] {
        let file = home.write(
            format!("external-{members}.yaml"),
            external_bundle(aws, &home, members),
        );
        let created = skiff(
            aws,
            &home,
            &store,
            &["create", "-f", &file.to_string_lossy()],
        )
        .run();
        created
            .assert_exit(1)
            .assert_stderr_contains("spec.etcd.topology: external etcd needs 3 or 5 members")
            .assert_stderr_contains(why);
        before.assert_unchanged(&store.snapshot(aws));
    }

    // An Etcd group in a stacked cluster names the field and the fix.
    let stacked = home.write("stacked.yaml", stacked_bundle(aws, &home));
    skiff(
        aws,
        &home,
        &store,
        &["create", "-f", &stacked.to_string_lossy()],
    )
    .run()
    .assert_success();
    let stored = store.snapshot(aws);
    let added = skiff(
        aws,
        &home,
        &store,
        &[
            "create",
            "ig",
            "--name",
            NAME,
            "etcd-1",
            "--role",
            "Etcd",
            "--subnet",
            "us-east-1a",
        ],
    )
    .run();
    added
        .assert_exit(1)
        .assert_stderr_contains("instancegroup/etcd-1: spec.role")
        .assert_stderr_contains("spec.etcd.topology: external");
    stored.assert_unchanged(&store.snapshot(aws));
}

#[test]
fn three_members_are_stored_and_planned_with_their_own_group_and_fixed_addresses() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let store = Store::s3(aws, "external-etcd-plan");
    let file = home.write("external-3.yaml", external_bundle(aws, &home, 3));
    skiff(
        aws,
        &home,
        &store,
        &["create", "-f", &file.to_string_lossy()],
    )
    .run()
    .assert_success();
    let spec = skiff(aws, &home, &store, &["get", "cluster", NAME, "-o", "yaml"]).run();
    spec.assert_success();
    assert!(spec.stdout.contains("topology: external"), "{spec}");

    let preview = skiff(
        aws,
        &home,
        &store,
        &["update", "cluster", NAME, "-o", "json"],
    )
    .timeout(std::time::Duration::from_secs(120))
    .run();
    preview.assert_success();
    let plan = preview.stdout;
    for expected in [
        "security-group/etcd",
        "launch-template/etcd-1",
        "autoscaling-group/etcd-3",
        "iam-role/etcd",
        "\"privateIp\"",
    ] {
        assert!(
            plan.contains(expected),
            "{expected} missing from the plan:\n{plan}"
        );
    }
    // One fixed address per member, each its own.
    let addresses: std::collections::BTreeSet<&str> = plan
        .match_indices("\"privateIp\":")
        .map(|(index, found)| {
            let rest = &plan[index + found.len()..];
            let rest = rest.trim_start().trim_start_matches('"');
            &rest[..rest.find('"').unwrap_or(0)]
        })
        .collect();
    assert_eq!(addresses.len(), 3, "{addresses:?}");
}

/// The instances of an auto scaling group that are in service.
async fn in_service(fixture: &common::cluster::ClusterFixture, group: &str) -> Vec<String> {
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
async fn restore_cluster_with_external_etcd_replaces_every_member_and_not_the_control_plane() {
    let fixture = common::cluster::ClusterFixture::new(NAME).await;
    let file = fixture.home.write(
        "external-3.yaml",
        external_bundle(&fixture.aws, &fixture.home, 3),
    );
    fixture
        .skiff(["create", "-f", &file.to_string_lossy()])
        .assert_success();
    fixture.apply();
    let mut members: Vec<Vec<String>> = Vec::new();
    for group in ["etcd-1", "etcd-2", "etcd-3"] {
        members.push(in_service(&fixture, group).await);
    }
    for (group, instances) in members.iter().enumerate() {
        assert_eq!(instances.len(), 1, "etcd-{}: {instances:?}", group + 1);
    }
    let control_plane_groups: Vec<String> = ZONES
        .split(',')
        .map(|zone| format!("control-plane-{zone}"))
        .collect();
    let mut control_plane: Vec<String> = Vec::new();
    for group in &control_plane_groups {
        control_plane.extend(in_service(&fixture, group).await);
    }
    assert_eq!(control_plane.len(), 3, "{control_plane:?}");
    let id = "20261206T121500Z-rev180-i-0bbb1111bbbb22223";
    fixture.aws.put_object(
        &fixture.bucket,
        &format!("{NAME}/etcd/backups/{id}.db"),
        &[b'x'; 5],
    );

    let not_ready = skiff_test_support::kubernetes_api::FakeApiServer::start().await;
    let preview = fixture
        .command(["restore", "cluster", NAME, "--backup", id])
        .env("SKIFF_KUBERNETES_API", not_ready.url())
        .run();
    preview.assert_success();
    preview.assert_stdout_contains("External etcd: every member's instance will be terminated");
    for instances in &members {
        preview.assert_stdout_contains(&instances[0]);
    }
    for instance in &control_plane {
        assert!(
            !preview.stdout.contains(instance.as_str()),
            "the control plane stays: {preview}"
        );
    }
    preview.assert_stdout_contains("Roll the control-plane groups afterwards");

    let restored = fixture
        .command(["restore", "cluster", NAME, "--backup", id, "--yes"])
        .env("SKIFF_KUBERNETES_API", not_ready.url())
        .run();
    restored.assert_success();
    restored.assert_stderr_contains("3 etcd member instance(s) terminated");
    let request = fixture
        .get_object("etcd/restore-request")
        .expect("the restore request is written");
    assert_eq!(String::from_utf8_lossy(&request).trim(), id);
    for (group, instances) in members.iter().enumerate() {
        let now = in_service(&fixture, &format!("etcd-{}", group + 1)).await;
        assert!(
            !now.contains(&instances[0]),
            "etcd-{}'s old instance still serves: {now:?}",
            group + 1
        );
    }
    let mut after: Vec<String> = Vec::new();
    for group in &control_plane_groups {
        after.extend(in_service(&fixture, group).await);
    }
    assert_eq!(after, control_plane, "the control plane is not replaced");
}
