//! The foundation's configuration commands, run as the real binary against
//! the local endpoint's S3, a `file://` folder and the per-user default
//! store: `create cluster` writes a complete spec and its instance groups,
//! every `get` reads it back, `--dry-run` writes nothing, a second create is
//! refused, `edit` stores a new revision or (invalid) nothing at all,
//! instance groups come and go (but not the last control plane),
//! `delete cluster --unregister` forgets every object, and the help and
//! completion texts exist.

use crate::common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use common::{
    at, create_cluster, create_named_cluster, skiff, spec_history, stored_spec, text_at,
    write_script, yaml_documents, Store, CLUSTER, ZONES,
};
use skiff_tests::{LocalAws, SandboxHome, Skiff, StoreSnapshot};

const ZONE_LIST: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

/// Where a flow runs: the arguments and environment that select the store,
/// and the store itself (to inspect).
struct Target {
    store: Store,
    /// `--state ...`, or nothing for the default store.
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Target {
    fn flag(store: Store) -> Target {
        Target {
            args: vec!["--state".to_string(), store.url()],
            store,
            env: Vec::new(),
        }
    }

    fn skiff(&self, aws: &LocalAws, home: &SandboxHome, args: &[&str]) -> Skiff {
        let mut command = Skiff::new(aws, home).args(args).args(&self.args);
        for (name, value) in &self.env {
            command = command.env(name, value);
        }
        command
    }
}

/// `create cluster` then every read: the objects exist, `get clusters`,
/// `get instancegroups -o json` and `get cluster -o yaml --full` show the
/// complete spec.
fn create_and_read_back(aws: &LocalAws, home: &SandboxHome, target: &Target) {
    let store = &target.store;
    let created = target
        .skiff(
            aws,
            home,
            &[
                "create",
                "cluster",
                CLUSTER,
                "--zones",
                ZONES,
                "--control-plane-count",
                "3",
            ],
        )
        .run();
    created
        .assert_success()
        .assert_stderr_contains(&format!("Created cluster {CLUSTER}"));

    // The objects: the head and revision 1, identical, nothing else.
    let snapshot = store.snapshot(aws);
    let head_key = store.key(&format!("{CLUSTER}/spec.yaml"));
    let first_key = store.key(&format!("{CLUSTER}/history/spec/0000000001.yaml"));
    let keys: Vec<&str> = snapshot.keys().collect();
    assert_eq!(
        keys,
        [first_key.as_str(), head_key.as_str()],
        "objects in {} after create\n{created}",
        store.url()
    );
    assert_eq!(
        snapshot.get(&head_key),
        snapshot.get(&first_key),
        "spec.yaml differs from revision 1"
    );
    let stored = stored_spec(store, &snapshot, CLUSTER);
    assert_eq!(stored.serial, 1);
    assert!(
        text_at(&stored.header, &["command"]).contains("create cluster"),
        "revision header: {:?}",
        stored.header
    );

    // get clusters: the table lists it; JSON names it.
    let table = target.skiff(aws, home, &["get", "clusters"]).run();
    table.assert_success();
    let row = table
        .stdout
        .lines()
        .find(|line| line.starts_with(CLUSTER))
        .unwrap_or_else(|| panic!("no row for {CLUSTER}\n{table}"));
    assert!(row.contains(ZONES), "zones missing from the row {row:?}");
    let listed = target
        .skiff(aws, home, &["get", "clusters", "-o", "json"])
        .run();
    let listed_json = listed.assert_success().stdout_json();
    let names: Vec<&str> = listed_json["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items\n{listed}"))
        .iter()
        .filter_map(|item| item["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, [CLUSTER], "{listed}");

    // get instancegroups -o json: three control-plane groups, one per zone,
    // and node groups.
    let groups_output = target
        .skiff(
            aws,
            home,
            &["get", "instancegroups", "--name", CLUSTER, "-o", "json"],
        )
        .run();
    let groups_json = groups_output.assert_success().stdout_json();
    let groups = groups_json["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items\n{groups_output}"));
    let control_planes: Vec<&serde_json::Value> = groups
        .iter()
        .filter(|group| group["spec"]["role"] == "ControlPlane")
        .collect();
    let control_plane_names: BTreeSet<&str> = control_planes
        .iter()
        .filter_map(|group| group["metadata"]["name"].as_str())
        .collect();
    let expected_names: BTreeSet<String> = ZONE_LIST
        .iter()
        .map(|zone| format!("control-plane-{zone}"))
        .collect();
    assert_eq!(
        control_plane_names,
        expected_names.iter().map(String::as_str).collect(),
        "{groups_output}"
    );
    for group in &control_planes {
        assert_eq!(group["spec"]["minSize"], 1, "{group}");
        assert_eq!(group["spec"]["maxSize"], 1, "{group}");
        assert_eq!(
            group["spec"]["subnets"].as_array().map(Vec::len),
            Some(1),
            "{group}"
        );
    }
    let nodes: Vec<&serde_json::Value> = groups
        .iter()
        .filter(|group| group["spec"]["role"] == "Node")
        .collect();
    assert!(!nodes.is_empty(), "no node group\n{groups_output}");
    let node_capacity: u64 = nodes
        .iter()
        .filter_map(|group| group["spec"]["maxSize"].as_u64())
        .sum();
    assert!(
        node_capacity >= 2,
        "default node count is 2\n{groups_output}"
    );
    assert_eq!(
        groups.len(),
        control_planes.len() + nodes.len(),
        "unexpected roles\n{groups_output}"
    );

    // get cluster -o yaml --full: the complete spec, with the defaults.
    let full = target
        .skiff(
            aws,
            home,
            &["get", "cluster", CLUSTER, "-o", "yaml", "--full"],
        )
        .run();
    full.assert_success();
    let documents = yaml_documents(&full.stdout);
    assert_eq!(
        documents.len(),
        1 + groups.len(),
        "expected the Cluster and every group\n{full}"
    );
    let cluster = &documents[0];
    assert_eq!(text_at(cluster, &["kind"]), "Cluster", "{full}");
    assert_eq!(text_at(cluster, &["metadata", "name"]), CLUSTER);
    let spec = &cluster["spec"];
    assert_eq!(text_at(spec, &["region"]), "us-east-1", "{full}");
    assert!(
        !text_at(spec, &["kubernetesVersion"]).is_empty(),
        "no kubernetesVersion\n{full}"
    );
    assert!(
        !text_at(spec, &["networkCIDR"]).is_empty(),
        "no networkCIDR\n{full}"
    );
    assert_eq!(
        text_at(spec, &["networking", "serviceCIDR"]),
        "10.96.0.0/12",
        "{full}"
    );
    assert_eq!(
        text_at(spec, &["networking", "clusterDNS"]),
        "10.96.0.10",
        "{full}"
    );
    assert!(
        !text_at(spec, &["networking", "podCIDR"]).is_empty(),
        "no podCIDR\n{full}"
    );
    assert!(
        !text_at(spec, &["networking", "cni"]).is_empty(),
        "no cni\n{full}"
    );
    let subnets = at(spec, &["subnets"])
        .as_sequence()
        .unwrap_or_else(|| panic!("no subnets\n{full}"));
    let subnet_zones: Vec<&str> = subnets
        .iter()
        .map(|subnet| text_at(subnet, &["zone"]))
        .collect();
    assert_eq!(subnet_zones, ZONE_LIST, "one subnet per zone\n{full}");
    for subnet in subnets {
        assert!(
            !text_at(subnet, &["cidr"]).is_empty(),
            "subnet without cidr\n{full}"
        );
    }
    for group in &documents[1..] {
        assert_eq!(text_at(group, &["kind"]), "InstanceGroup", "{full}");
        assert_eq!(
            text_at(group, &["metadata", "labels", "skiff.dev/cluster"]),
            CLUSTER,
            "{full}"
        );
        for field in ["image", "machineType", "osFamily"] {
            assert!(
                !text_at(group, &["spec", field]).is_empty(),
                "a group without {field}\n{full}"
            );
        }
    }
    // What `get` shows is exactly what is stored.
    assert_eq!(
        documents, stored.documents,
        "get --full differs from the store"
    );
}

#[test]
fn create_cluster_on_s3_stores_the_complete_spec_and_every_get_reads_it() {
    // Its own endpoint, so that the call counts below are this test's only.
    let aws = LocalAws::start();
    let home = SandboxHome::new();
    let target = Target::flag(Store::s3(&aws, "create-s3"));
    create_and_read_back(&aws, &home, &target);

    // Reading never writes.
    aws.reset_stats();
    let before = target.store.snapshot(&aws);
    for args in [
        &["get", "clusters"][..],
        &["get", "cluster", CLUSTER, "-o", "json", "--full"],
        &["get", "instancegroups", "--name", CLUSTER],
    ] {
        target.skiff(&aws, &home, args).run().assert_success();
    }
    let stats = aws.stats();
    assert_eq!(
        stats.mutating_total(),
        0,
        "reads changed something: {:?}",
        stats.mutating_calls
    );
    before.assert_unchanged(&target.store.snapshot(&aws));
}

#[test]
fn create_cluster_on_a_file_store_works_the_same() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let dir = tempfile::tempdir().expect("temporary folder");
    let target = Target::flag(Store::File {
        dir: dir.path().join("skiff-state"),
    });
    create_and_read_back(aws, &home, &target);
}

#[test]
fn without_flag_or_environment_the_store_is_the_per_user_folder() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let default_dir = home.join(".local/share/skiff/store");
    let target = Target {
        store: Store::File {
            dir: default_dir.clone(),
        },
        args: Vec::new(),
        env: Vec::new(),
    };
    create_and_read_back(aws, &home, &target);
    assert!(
        default_dir.join(CLUSTER).join("spec.yaml").is_file(),
        "no spec under {}",
        default_dir.display()
    );

    // XDG_DATA_HOME moves the default; SKIFF_STATE_STORE beats it; --state
    // beats both.
    let xdg = home.join("xdg-data");
    Skiff::new(aws, &home)
        .env("XDG_DATA_HOME", &xdg)
        .args([
            "create",
            "cluster",
            "xdg.example.com",
            "--zones",
            "us-east-1a",
        ])
        .run()
        .assert_success();
    assert!(
        xdg.join("skiff/store/xdg.example.com/spec.yaml").is_file(),
        "XDG_DATA_HOME was not honoured"
    );
    let from_env = Store::file(&home);
    Skiff::new(aws, &home)
        .env("XDG_DATA_HOME", &xdg)
        .env("SKIFF_STATE_STORE", from_env.url())
        .args([
            "create",
            "cluster",
            "env.example.com",
            "--zones",
            "us-east-1a",
        ])
        .run()
        .assert_success();
    assert_eq!(
        from_env.cluster_keys(aws, "env.example.com").len(),
        2,
        "SKIFF_STATE_STORE was not honoured"
    );
    assert!(!xdg.join("skiff/store/env.example.com").exists());
    let from_flag = Store::s3(aws, "flag-beats-env");
    Skiff::new(aws, &home)
        .env("SKIFF_STATE_STORE", from_env.url())
        .args([
            "create",
            "cluster",
            "flag.example.com",
            "--zones",
            "us-east-1a",
        ])
        .args(["--state", &from_flag.url()])
        .run()
        .assert_success();
    assert_eq!(from_flag.cluster_keys(aws, "flag.example.com").len(), 2);
    assert!(from_env.cluster_keys(aws, "flag.example.com").is_empty());
}

#[test]
fn dry_run_prints_a_parseable_spec_and_writes_nothing() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let store = Store::s3(aws, "dry-run");
    let create = [
        "create",
        "cluster",
        CLUSTER,
        "--zones",
        ZONES,
        "--control-plane-count",
        "3",
    ];
    let home_before = home.snapshot();

    let yaml = skiff(aws, &home, &store, &create)
        .args(["--dry-run", "-o", "yaml"])
        .run();
    yaml.assert_success();
    let documents = yaml_documents(&yaml.stdout);
    assert_eq!(text_at(&documents[0], &["kind"]), "Cluster", "{yaml}");
    assert_eq!(
        documents
            .iter()
            .filter(|document| text_at(document, &["spec", "role"]) == "ControlPlane")
            .count(),
        3,
        "{yaml}"
    );

    let json = skiff(aws, &home, &store, &create)
        .args(["--dry-run", "-o", "json"])
        .run();
    let json_documents = json.assert_success().stdout_json();
    let json_documents = json_documents
        .as_array()
        .unwrap_or_else(|| panic!("expected a JSON array of documents\n{json}"));
    assert_eq!(json_documents.len(), documents.len(), "{json}");
    assert_eq!(json_documents[0]["kind"], "Cluster", "{json}");
    assert_eq!(json_documents[0]["metadata"]["name"], CLUSTER, "{json}");

    // The default store, too, is left alone: nothing under $HOME.
    let default_run = Skiff::new(aws, &home)
        .args(create)
        .args(["--dry-run", "-o", "yaml"])
        .run();
    default_run.assert_success();
    assert!(
        store.snapshot(aws).is_empty(),
        "a dry run wrote to {}",
        store.url()
    );
    home_before.assert_unchanged(&home.snapshot());

    // The printed spec is the one a real create stores.
    create_cluster(aws, &home, &store);
    let stored = stored_spec(&store, &store.snapshot(aws), CLUSTER);
    assert_eq!(
        stored.documents, documents,
        "the dry run printed another spec than create stores"
    );
}

#[test]
fn a_second_create_with_the_same_name_is_refused() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    for store in [Store::s3(aws, "twice"), Store::file(&home)] {
        create_cluster(aws, &home, &store);
        let before = store.snapshot(aws);

        let again = skiff(
            aws,
            &home,
            &store,
            &["create", "cluster", CLUSTER, "--zones", "us-east-1b"],
        )
        .run();
        again
            .assert_exit(1)
            .assert_stderr_contains(CLUSTER)
            .assert_stderr_contains("already exists");
        before.assert_unchanged(&store.snapshot(aws));

        // From a file, too.
        let file = home.write("again.yaml", dry_run_yaml(aws, &home, CLUSTER));
        let file = file.to_string_lossy();
        let from_file = skiff(aws, &home, &store, &["create", "-f", &file]).run();
        from_file
            .assert_exit(1)
            .assert_stderr_contains("already exists");
        before.assert_unchanged(&store.snapshot(aws));
    }
}

/// The spec `create cluster NAME --zones us-east-1a --dry-run -o yaml` prints.
fn dry_run_yaml(aws: &LocalAws, home: &SandboxHome, name: &str) -> String {
    let output = Skiff::new(aws, home)
        .args(["create", "cluster", name, "--zones", "us-east-1a"])
        .args(["--dry-run", "-o", "yaml"])
        .run();
    output.assert_success();
    output.stdout
}

/// `skiff edit ...` with `EDITOR` set to a script whose body is `body`
/// (`$1` is the file to edit), and `TMPDIR` inside the home so that saved
/// rejected edits land where the test can see them.
fn edit_with(
    aws: &LocalAws,
    home: &SandboxHome,
    store: &Store,
    args: &[&str],
    name: &str,
    body: &str,
) -> skiff_tests::SkiffOutput {
    let editor = write_script(home, &format!("editors/{name}"), body);
    let tmp = home.join("tmp");
    std::fs::create_dir_all(&tmp).expect("create tmp");
    skiff(aws, home, store, args)
        .env("EDITOR", &editor)
        .env("TMPDIR", &tmp)
        .run()
}

#[test]
fn edit_cluster_stores_a_revision_and_an_invalid_edit_stores_nothing() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    for store in [Store::s3(aws, "edit"), Store::file(&home)] {
        create_cluster(aws, &home, &store);
        let edit_cluster = ["edit", "cluster", CLUSTER];
        let original = store.snapshot(aws);

        let edited = edit_with(
            aws,
            &home,
            &store,
            &edit_cluster,
            "set-version",
            r#"sed -i 's/kubernetesVersion: .*/kubernetesVersion: 1.34.3/' "$1""#,
        );
        edited.assert_success().assert_stderr_contains("revision 2");
        let after_edit = store.snapshot(aws);
        let head = stored_spec(&store, &after_edit, CLUSTER);
        assert_eq!(head.serial, 2, "{edited}");
        assert_eq!(
            text_at(head.cluster(), &["spec", "kubernetesVersion"]),
            "1.34.3"
        );
        assert!(
            text_at(&head.header, &["command"]).contains("edit cluster"),
            "{:?}",
            head.header
        );
        let history = spec_history(&store, &after_edit, CLUSTER);
        assert_eq!(
            history
                .iter()
                .map(|(_, revision)| revision.serial)
                .collect::<Vec<_>>(),
            [1, 2]
        );
        let first_key = &history[0].0;
        assert_eq!(
            after_edit.get(first_key),
            original.get(first_key),
            "revision 1 was rewritten"
        );
        assert_eq!(
            history[1].1.documents, head.documents,
            "revision 2 differs from the head"
        );

        // Invalid edits: refused with the field path, nothing stored, the
        // edit kept in a file.
        for (name, body, field) in [
            (
                "bad-cidr",
                r#"sed -i 's|networkCIDR: .*|networkCIDR: banana|' "$1""#,
                "spec.networkCIDR",
            ),
            (
                "unknown-field",
                r#"sed -i 's|^spec:$|spec:\n  colour: red|' "$1""#,
                "spec.colour",
            ),
            (
                "bad-subnet-zone",
                r#"sed -i '0,/zone: us-east-1b/s//zone: eu-west-1b/' "$1""#,
                "spec.subnets[1].zone",
            ),
            (
                "rename",
                r#"sed -i "s/name: c1.example.com/name: c9.example.com/" "$1""#,
                "metadata.name",
            ),
        ] {
            let refused = edit_with(aws, &home, &store, &edit_cluster, name, body);
            refused
                .assert_exit(1)
                .assert_stderr_contains(field)
                .assert_stderr_contains("not stored");
            after_edit.assert_unchanged(&store.snapshot(aws));
            let saved = saved_edit(&refused.stderr)
                .unwrap_or_else(|| panic!("the rejected edit was not saved\n{refused}"));
            assert!(saved.starts_with(home.path()), "saved to {saved:?}");
            assert!(saved.is_file(), "{saved:?} does not exist\n{refused}");
        }

        // Saving unchanged is "no changes"; a failing editor changes nothing.
        edit_with(aws, &home, &store, &edit_cluster, "unchanged", "true")
            .assert_success()
            .assert_stderr_contains("no changes");
        edit_with(aws, &home, &store, &edit_cluster, "fails", "exit 3")
            .assert_exit(1)
            .assert_stderr_contains("nothing was changed");
        after_edit.assert_unchanged(&store.snapshot(aws));

        // An instance group edit is a revision too.
        let group = edit_with(
            aws,
            &home,
            &store,
            &["edit", "ig", "--name", CLUSTER, "nodes-us-east-1a"],
            "node-max",
            r#"sed -i 's/maxSize: .*/maxSize: 7/' "$1""#,
        );
        group.assert_success().assert_stderr_contains("revision 3");
        let head = stored_spec(&store, &store.snapshot(aws), CLUSTER);
        let nodes = head.documents[1..]
            .iter()
            .find(|document| text_at(document, &["metadata", "name"]) == "nodes-us-east-1a")
            .expect("the node group is still there");
        assert_eq!(at(nodes, &["spec", "maxSize"]).as_u64(), Some(7));
    }
}

/// The path in "Your edit was saved to PATH;".
fn saved_edit(stderr: &str) -> Option<PathBuf> {
    let rest = stderr.split("Your edit was saved to ").nth(1)?;
    let path = rest.split(';').next()?;
    Some(PathBuf::from(path.trim()))
}

#[test]
fn instance_groups_come_and_go_but_the_last_control_plane_stays() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    for store in [Store::s3(aws, "groups"), Store::file(&home)] {
        create_cluster(aws, &home, &store);
        let original = stored_spec(&store, &store.snapshot(aws), CLUSTER);

        skiff(
            aws,
            &home,
            &store,
            &[
                "create",
                "ig",
                "--name",
                CLUSTER,
                "gpu",
                "--role",
                "Node",
                "--machine-type",
                "g5.xlarge",
                "--min",
                "0",
                "--max",
                "4",
            ],
        )
        .run()
        .assert_success();
        let listed = skiff(
            aws,
            &home,
            &store,
            &["get", "ig", "--name", CLUSTER, "gpu", "-o", "json"],
        )
        .run();
        let listed_json = listed.assert_success().stdout_json();
        let gpu = &listed_json["items"][0];
        assert_eq!(gpu["metadata"]["name"], "gpu", "{listed}");
        assert_eq!(gpu["spec"]["machineType"], "g5.xlarge", "{listed}");
        assert_eq!(gpu["spec"]["minSize"], 0, "{listed}");
        assert_eq!(gpu["spec"]["maxSize"], 4, "{listed}");
        assert!(
            gpu["spec"]["subnets"]
                .as_array()
                .is_some_and(|subnets| subnets.len() == 3),
            "a node group defaults to every node subnet\n{listed}"
        );

        // A second group of the same name is refused.
        let with_gpu = store.snapshot(aws);
        skiff(
            aws,
            &home,
            &store,
            &["create", "ig", "--name", CLUSTER, "gpu"],
        )
        .run()
        .assert_exit(1)
        .assert_stderr_contains("already exists");
        with_gpu.assert_unchanged(&store.snapshot(aws));

        // Without --yes, delete only says what it would do.
        skiff(
            aws,
            &home,
            &store,
            &["delete", "ig", "--name", CLUSTER, "gpu"],
        )
        .run()
        .assert_success()
        .assert_stderr_contains("--yes");
        with_gpu.assert_unchanged(&store.snapshot(aws));

        skiff(
            aws,
            &home,
            &store,
            &["delete", "ig", "--name", CLUSTER, "gpu", "--yes"],
        )
        .run()
        .assert_success();
        let head = stored_spec(&store, &store.snapshot(aws), CLUSTER);
        assert_eq!(head.serial, 3);
        assert_eq!(
            head.documents, original.documents,
            "create ig + delete ig is not a round trip"
        );

        // Control-plane groups may go, except the last one.
        for zone in ["us-east-1a", "us-east-1b"] {
            skiff(
                aws,
                &home,
                &store,
                &[
                    "delete",
                    "ig",
                    "--name",
                    CLUSTER,
                    &format!("control-plane-{zone}"),
                    "--yes",
                ],
            )
            .run()
            .assert_success();
        }
        let one_left = store.snapshot(aws);
        skiff(
            aws,
            &home,
            &store,
            &[
                "delete",
                "ig",
                "--name",
                CLUSTER,
                "control-plane-us-east-1c",
                "--yes",
            ],
        )
        .run()
        .assert_exit(1)
        .assert_stderr_contains("control-plane-us-east-1c")
        .assert_stderr_contains("no ControlPlane instance group");
        one_left.assert_unchanged(&store.snapshot(aws));
        let head = stored_spec(&store, &one_left, CLUSTER);
        assert!(
            head.group_names()
                .contains(&"control-plane-us-east-1c".to_string()),
            "{:?}",
            head.group_names()
        );

        // A group that does not exist cannot be deleted.
        skiff(
            aws,
            &home,
            &store,
            &["delete", "ig", "--name", CLUSTER, "no-such-group", "--yes"],
        )
        .run()
        .assert_exit(1)
        .assert_stderr_contains("no-such-group");
        one_left.assert_unchanged(&store.snapshot(aws));
    }
}

#[test]
fn unregister_removes_every_object_of_the_cluster_and_nothing_else() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let other = "c2.example.com";
    for store in [Store::s3(aws, "unregister"), Store::file(&home)] {
        create_cluster(aws, &home, &store);
        create_named_cluster(aws, &home, &store, other);
        // More objects of the cluster: a second revision, and a lock that
        // was held and released.
        edit_with(
            aws,
            &home,
            &store,
            &["edit", "cluster", CLUSTER],
            "version",
            r#"sed -i 's/kubernetesVersion: .*/kubernetesVersion: 1.34.3/' "$1""#,
        )
        .assert_success();
        skiff(
            aws,
            &home,
            &store,
            &["state", "lock", "hold", CLUSTER, "--duration", "1s"],
        )
        .run()
        .assert_success();
        assert_eq!(
            store.cluster_keys(aws, CLUSTER).len(),
            3,
            "{:?}",
            store.cluster_keys(aws, CLUSTER)
        );
        let other_before = other_objects(aws, &store, other);

        let before = store.snapshot(aws);
        skiff(
            aws,
            &home,
            &store,
            &["delete", "cluster", CLUSTER, "--unregister"],
        )
        .run()
        .assert_success()
        .assert_stderr_contains("--yes");
        before.assert_unchanged(&store.snapshot(aws));

        skiff(
            aws,
            &home,
            &store,
            &["delete", "cluster", CLUSTER, "--unregister", "--yes"],
        )
        .run()
        .assert_success()
        .assert_stderr_contains("AWS resources were not touched");
        assert_eq!(
            store.cluster_keys(aws, CLUSTER),
            Vec::<String>::new(),
            "objects of {CLUSTER} left in {}",
            store.url()
        );
        other_before.assert_unchanged(&other_objects(aws, &store, other));

        skiff(aws, &home, &store, &["get", "cluster", CLUSTER])
            .run()
            .assert_exit(1)
            .assert_stderr_contains("not found");
        let listed = skiff(aws, &home, &store, &["get", "clusters", "-o", "json"]).run();
        let listed_json = listed.assert_success().stdout_json();
        let names: Vec<&str> = listed_json["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item["metadata"]["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(names, [other], "{listed}");

        // The name is free again.
        create_cluster(aws, &home, &store);
        assert_eq!(stored_spec(&store, &store.snapshot(aws), CLUSTER).serial, 1);
    }
}

/// The objects of one cluster only.
fn other_objects(aws: &LocalAws, store: &Store, cluster: &str) -> StoreSnapshot {
    let folder = store.key(&format!("{cluster}/"));
    store.snapshot(aws).without(|key| !key.starts_with(&folder))
}

/// Every leaf command, as typed.
const LEAF_COMMANDS: &[&[&str]] = &[
    &["create", "cluster"],
    &["create", "ig"],
    &["replace"],
    &["get", "clusters"],
    &["get", "cluster"],
    &["get", "instancegroups"],
    &["edit", "cluster"],
    &["edit", "ig"],
    &["delete", "ig"],
    &["delete", "cluster"],
    &["update", "cluster"],
    &["apply"],
    &["state", "lock", "show"],
    &["state", "lock", "hold"],
    &["state", "unlock"],
    &["history"],
    &["rollback"],
    &["completion"],
];

#[test]
fn every_command_has_help_with_examples_and_completion_scripts_exist() {
    let home = SandboxHome::new();
    let before = home.snapshot();
    let mut missing = Vec::new();
    for command in LEAF_COMMANDS {
        let output = Skiff::offline(&home).args(*command).arg("--help").run();
        output.assert_success();
        let examples = output.stdout.split("Examples:").nth(1);
        let shows_itself =
            examples.is_some_and(|text| text.contains(&format!("skiff {}", command[0])));
        if !shows_itself {
            missing.push(format!("skiff {} --help", command.join(" ")));
        }
    }
    assert!(
        missing.is_empty(),
        "help without an Examples: section showing the command: {missing:?}"
    );
    for group in ["create", "get", "edit", "delete", "update", "state"] {
        let output = Skiff::offline(&home).args([group, "--help"]).run();
        output.assert_success().assert_stdout_contains("Commands:");
    }
    let top = Skiff::offline(&home).arg("--help").run();
    top.assert_success()
        .assert_stdout_contains("Getting started:")
        .assert_stdout_contains("skiff create cluster");

    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef skiff"),
        ("fish", "complete -c skiff"),
    ] {
        let script = Skiff::offline(&home).args(["completion", shell]).run();
        script.assert_success().assert_stdout_contains(marker);
        for word in ["create", "replace", "unlock", "control-plane-count"] {
            assert!(
                script.stdout.contains(word),
                "the {shell} completion does not know {word}"
            );
        }
    }
    Skiff::offline(&home)
        .args(["completion", "tcsh"])
        .run()
        .assert_exit(1);
    before.assert_unchanged(&home.snapshot());
}
