//! Team workflows on a shared store (issue 7), run as the real binary
//! against the local endpoint:
//!
//! - two users with different AWS identities edit one cluster in turn:
//!   `history` names each with the right identity, `--diff` shows each
//!   change, `rollback` restores the first edit's spec as a new revision,
//!   and `update cluster` then previews exactly the undo of the second edit;
//! - `update cluster -o markdown` is Markdown a parser reads as a summary
//!   table and one `<details>` block per resource, holding no secret;
//! - bad revisions are refused with exit 1 and the store unchanged;
//! - `--prune` keeps the newest revisions and later writes go on;
//! - `get clusters` shows the last change and who holds the lock.
//!
//! The concurrency point (20 writers, one history entry per stored change)
//! is in `store_safety.rs`, next to the concurrent-replace test it extends.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cluster::ClusterFixture;
use common::{create_named_cluster, skiff, Store, CLUSTER};
use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};
use serde_json::Value;
use skiff_tests::{LocalAws, SandboxHome, SkiffOutput};

// --- helpers -----------------------------------------------------------------

/// An IAM user of the endpoint with an access key, and the local user name
/// (`SKIFF_USER`) its skiff runs use.
struct User {
    name: String,
    arn: String,
    access_key_id: String,
    secret_access_key: String,
}

impl User {
    /// Creates the IAM user `name` and an access key for it.
    async fn create(fixture: &ClusterFixture, name: &str) -> User {
        let iam = &fixture.clients.iam;
        let created = iam
            .create_user()
            .user_name(name)
            .send()
            .await
            .expect("create user");
        let arn = created.user().expect("the user").arn().to_owned();
        let key = iam
            .create_access_key()
            .user_name(name)
            .send()
            .await
            .expect("create access key")
            .access_key
            .expect("an access key");
        User {
            name: name.to_owned(),
            arn,
            access_key_id: key.access_key_id().to_owned(),
            secret_access_key: key.secret_access_key().to_owned(),
        }
    }

    /// `skiff ARGS` with this user's credentials and local user name.
    fn run(&self, fixture: &ClusterFixture, args: &[&str]) -> SkiffOutput {
        fixture
            .command(args)
            .env("AWS_ACCESS_KEY_ID", &self.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_access_key)
            .env("SKIFF_USER", &self.name)
            .run()
    }

    /// Edits an instance group as this user: `get ig -o yaml`, `edit`, `replace -f`.
    fn edit_group(
        &self,
        fixture: &ClusterFixture,
        group: &str,
        edit: impl FnOnce(&mut serde_norway::Value),
    ) {
        let cluster = fixture.cluster.as_str();
        let output = self.run(
            fixture,
            &["get", "ig", "--name", cluster, group, "-o", "yaml"],
        );
        output.assert_success();
        let mut document: serde_norway::Value =
            serde_norway::from_str(&output.stdout).expect("one YAML document");
        edit(&mut document);
        let path = fixture.home.write(
            format!("{}-{group}.yaml", self.name),
            serde_norway::to_string(&document).expect("serialize"),
        );
        let path = path.to_str().expect("UTF-8 path");
        self.run(fixture, &["replace", "-f", path, "--name", cluster])
            .assert_success();
    }
}

/// `history CLUSTER -o json [EXTRA...]`: the items.
fn history_items(output: &SkiffOutput) -> Vec<Value> {
    output.assert_success();
    let list = output.stdout_json();
    assert_eq!(list["kind"], "History", "{list:#}");
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {list:#}"))
        .clone()
}

/// The changed lines of a unified diff (`+`/`-`, not the `+++`/`---` header).
fn changed_lines(diff: &str) -> Vec<&str> {
    diff.lines()
        .filter(|line| {
            (line.starts_with('+') || line.starts_with('-'))
                && !line.starts_with("+++")
                && !line.starts_with("---")
        })
        .collect()
}

/// The changes of a JSON plan by resource key.
fn changes_by_key(plan: &Value) -> BTreeMap<String, Value> {
    plan["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no changes array: {plan:#}"))
        .iter()
        .map(|change| {
            (
                change["key"].as_str().expect("a key").to_owned(),
                change.clone(),
            )
        })
        .collect()
}

/// A change's fields as `name → (before, after)`.
fn fields(change: &Value) -> BTreeMap<String, (Value, Value)> {
    change["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no fields: {change:#}"))
        .iter()
        .map(|field| {
            (
                field["field"].as_str().expect("a field name").to_owned(),
                (field["before"].clone(), field["after"].clone()),
            )
        })
        .collect()
}

// --- 1. two users, diff, rollback ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_edit_in_turn_and_rollback_previews_the_undo_of_the_second_edit() {
    let fixture = ClusterFixture::with_prefix("c7.example.com", "team").await;
    let cluster = fixture.cluster.clone();
    let cluster = cluster.as_str();
    fixture.create_zone("example.com").await;
    let alice = User::create(&fixture, "alice").await;
    let bob = User::create(&fixture, "bob").await;
    assert_ne!(alice.arn, bob.arn);

    // Alice creates and builds the cluster, then changes the nodes' machine type.
    alice
        .run(
            &fixture,
            &[
                "create",
                "cluster",
                cluster,
                "--zones",
                "us-east-1a",
                "--node-count",
                "2",
            ],
        )
        .assert_success();
    alice
        .run(&fixture, &["update", "cluster", cluster, "--yes"])
        .assert_success();
    alice.edit_group(&fixture, "nodes-us-east-1a", |document| {
        document["spec"]["machineType"] = "m5.large".into();
    });
    alice
        .run(&fixture, &["update", "cluster", cluster, "--yes"])
        .assert_success();

    // Bob raises the group's maximum size.
    bob.edit_group(&fixture, "nodes-us-east-1a", |document| {
        document["spec"]["maxSize"] = 4.into();
    });
    let bobs_plan = bob.run(&fixture, &["update", "cluster", cluster, "-o", "json"]);
    bobs_plan.assert_success();
    let bobs_plan = bobs_plan.stdout_json();
    let bobs_changes = changes_by_key(&bobs_plan);
    assert!(!bobs_changes.is_empty(), "bob's edit changes the cloud");
    bob.run(&fixture, &["update", "cluster", cluster, "--yes"])
        .assert_success();

    // The spec history names both, with their AWS identities.
    let items = history_items(&bob.run(&fixture, &["history", cluster, "-o", "json"]));
    let versions: Vec<u64> = items
        .iter()
        .map(|item| item["version"].as_u64().expect("a version"))
        .collect();
    assert_eq!(versions, vec![1, 2, 3], "{items:#?}");
    let expected = [
        (&alice, "create cluster", "created"),
        (&alice, "replace -f", "machineType"),
        (&bob, "replace -f", "maxSize"),
    ];
    for (item, (user, command, summary)) in items.iter().zip(expected) {
        assert_eq!(item["kind"], "spec", "{item:#}");
        assert_eq!(item["writtenBy"]["user"], user.name.as_str(), "{item:#}");
        assert_eq!(
            item["writtenBy"]["awsIdentity"],
            user.arn.as_str(),
            "{item:#}"
        );
        assert!(
            item["command"]
                .as_str()
                .unwrap_or_default()
                .contains(command),
            "{item:#}"
        );
        assert!(
            item["summary"]
                .as_str()
                .unwrap_or_default()
                .contains(summary),
            "{item:#}"
        );
        assert!(item["writtenAt"].is_string(), "{item:#}");
    }
    assert_eq!(items[2]["current"], true);
    assert_eq!(items[1]["current"], false);

    // The table shows the same, readable.
    let table = alice.run(&fixture, &["history", cluster]);
    table.assert_success();
    for needle in [alice.arn.as_str(), bob.arn.as_str(), "alice@", "bob@"] {
        table.assert_stdout_contains(needle);
    }

    // The recorded-state snapshots name who applied: alice twice, then bob.
    let snapshots = history_items(&alice.run(
        &fixture,
        &["history", cluster, "--kind", "state", "-o", "json"],
    ));
    let appliers: Vec<&str> = snapshots
        .iter()
        .map(|item| item["writtenBy"]["awsIdentity"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        appliers,
        vec![alice.arn.as_str(), alice.arn.as_str(), bob.arn.as_str()],
        "{snapshots:#?}"
    );
    for snapshot in &snapshots {
        assert_eq!(snapshot["kind"], "state");
        assert!(
            snapshot["command"]
                .as_str()
                .unwrap_or_default()
                .contains("update cluster"),
            "{snapshot:#}"
        );
        assert!(
            snapshot["summary"]
                .as_str()
                .unwrap_or_default()
                .contains("changes applied"),
            "{snapshot:#}"
        );
    }

    // --diff shows each change, and nothing else.
    let first = alice.run(&fixture, &["history", cluster, "--diff", "1", "2"]);
    first.assert_success();
    assert_eq!(
        changed_lines(&first.stdout),
        vec!["-  machineType: t3.medium", "+  machineType: m5.large"],
        "{first}"
    );
    first.assert_stdout_contains("--- revision 1 (alice@");
    let second = alice.run(&fixture, &["history", cluster, "--diff", "2", "3"]);
    second.assert_success();
    assert_eq!(
        changed_lines(&second.stdout),
        vec!["-  maxSize: 2", "+  maxSize: 4"],
        "{second}"
    );
    second.assert_stdout_contains("+++ revision 3 (bob@");
    second.assert_stdout_contains(&bob.arn);

    // Alice rolls back to her edit: a new revision, history untouched.
    let rollback = alice.run(&fixture, &["rollback", cluster, "--to", "2"]);
    rollback
        .assert_success()
        .assert_stderr_contains("now revision 4");
    let items = history_items(&alice.run(&fixture, &["history", cluster, "-o", "json"]));
    let versions: Vec<u64> = items
        .iter()
        .map(|item| item["version"].as_u64().expect("a version"))
        .collect();
    assert_eq!(versions, vec![1, 2, 3, 4], "{items:#?}");
    assert_eq!(items[3]["writtenBy"]["awsIdentity"], alice.arn.as_str());
    assert!(
        items[3]["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("rollback to revision 2"),
        "{:#}",
        items[3]
    );
    let same = alice.run(&fixture, &["history", cluster, "--diff", "2", "4"]);
    same.assert_success()
        .assert_stderr_contains("hold the same spec");
    assert_eq!(same.stdout.trim(), "", "revision 4 is revision 2's spec");

    // The preview undoes exactly bob's edit: the same resources, the same
    // actions, every field's before and after swapped.
    let undo = alice.run(&fixture, &["update", "cluster", cluster, "-o", "json"]);
    undo.assert_success();
    let undo = undo.stdout_json();
    let undo_changes = changes_by_key(&undo);
    assert_eq!(
        undo_changes.keys().collect::<Vec<_>>(),
        bobs_changes.keys().collect::<Vec<_>>(),
        "{undo:#}"
    );
    for (key, change) in &bobs_changes {
        let reverse = &undo_changes[key];
        assert_eq!(reverse["action"], change["action"], "{key}");
        let swapped: BTreeMap<String, (Value, Value)> = fields(change)
            .into_iter()
            .map(|(name, (before, after))| (name, (after, before)))
            .collect();
        assert_eq!(fields(reverse), swapped, "{key}: {reverse:#}");
    }
    assert_eq!(
        fields(&undo_changes["autoscaling-group/nodes-us-east-1a"])["maxSize"],
        (Value::from(4), Value::from(2))
    );
    assert_eq!(undo["rollingUpdates"], bobs_plan["rollingUpdates"]);
}

// --- 2. the Markdown plan ------------------------------------------------------

/// What must never appear in a plan: the bodies of the private keys in the
/// store, the bootstrap token and the encryption key.
fn stored_secrets(fixture: &ClusterFixture) -> Vec<(String, String)> {
    let mut needles = Vec::new();
    for name in ["ca.key", "etcd-ca.key", "front-proxy-ca.key", "sa.key"] {
        let relative = format!("pki/{name}");
        let bytes = fixture
            .get_object(&relative)
            .unwrap_or_else(|| panic!("{relative} is in the store after an apply"));
        let text = String::from_utf8(bytes).expect("a PEM text");
        assert!(text.contains("PRIVATE KEY-----"), "{relative} is a key");
        for line in text.lines() {
            if !line.starts_with("-----") && line.len() >= 32 {
                needles.push((relative.clone(), line.to_owned()));
            }
        }
    }
    let token = String::from_utf8(
        fixture
            .get_object("secrets/bootstrap-token")
            .expect("the bootstrap token is stored"),
    )
    .expect("a text token")
    .trim()
    .to_owned();
    let (_, secret) = token.split_once('.').expect("id.secret");
    needles.push(("the bootstrap token".to_owned(), token.clone()));
    needles.push(("the token's secret half".to_owned(), secret.to_owned()));
    let encryption = String::from_utf8(
        fixture
            .get_object("secrets/encryption-config.yaml")
            .expect("the encryption configuration is stored"),
    )
    .expect("a YAML text");
    let key = encryption
        .lines()
        .find_map(|line| line.trim().strip_prefix("secret: "))
        .expect("a secretbox key");
    assert_eq!(key.len(), 44, "32 bytes in base64");
    needles.push(("the encryption key".to_owned(), key.to_owned()));
    needles
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_markdown_plan_parses_as_a_table_and_details_and_holds_no_secret() {
    let fixture = ClusterFixture::new("c8.example.com").await;
    let cluster = fixture.cluster.clone();
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a", "--node-count", "2"]);
    fixture.apply();
    let secrets = stored_secrets(&fixture);

    // A change whose plan carries user-data (a node label) and a scaling change.
    fixture.edit_group("nodes-us-east-1a", |document| {
        document["spec"]["nodeLabels"]["example.com/audited"] = "yes".into();
        document["spec"]["maxSize"] = 3.into();
    });
    let plan = fixture.plan_json();
    let keys: Vec<String> = changes_by_key(&plan).into_keys().collect();
    assert!(
        keys.contains(&"launch-template/nodes-us-east-1a".to_owned()),
        "{keys:?}"
    );
    // The roll's reason names the field, and nothing else is hidden in it.
    assert_eq!(
        plan["rollingUpdates"],
        serde_json::json!([{
            "group": "nodes-us-east-1a",
            "reasons": ["nodeLabels +example.com/audited=yes"]
        }]),
        "{plan:#}"
    );
    let output = fixture.skiff(["update", "cluster", &cluster, "-o", "markdown"]);
    output.assert_success();
    let markdown = &output.stdout;

    // Parse it: the summary table (header Action | Resources, a row per
    // action and the total), the instance groups' table (machine type,
    // architecture, image), one <details> per change, diff code blocks.
    let mut header_cells: Vec<Vec<String>> = Vec::new();
    let mut rows: Vec<usize> = Vec::new();
    let mut in_head = false;
    let mut in_cell = false;
    let mut cell = String::new();
    let mut html = String::new();
    let mut code_blocks: Vec<(String, String)> = Vec::new();
    let mut in_code: Option<String> = None;
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Table(_)) => {
                header_cells.push(Vec::new());
                rows.push(0);
            }
            Event::Start(Tag::TableHead) => in_head = true,
            Event::End(TagEnd::TableHead) => in_head = false,
            Event::Start(Tag::TableRow) => {
                if let Some(rows) = rows.last_mut() {
                    *rows += 1;
                }
            }
            Event::Start(Tag::TableCell) => {
                in_cell = true;
                cell.clear();
            }
            Event::End(TagEnd::TableCell) => {
                in_cell = false;
                if in_head {
                    if let Some(header) = header_cells.last_mut() {
                        header.push(cell.trim().to_owned());
                    }
                }
            }
            Event::Text(text) if in_cell => cell.push_str(&text),
            Event::Html(text) | Event::InlineHtml(text) => html.push_str(&text),
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(language))) => {
                in_code = Some(language.to_string());
                code_blocks.push((language.to_string(), String::new()));
            }
            Event::Text(text) if in_code.is_some() => {
                if let Some((_, body)) = code_blocks.last_mut() {
                    body.push_str(&text);
                }
            }
            Event::End(TagEnd::CodeBlock) => in_code = None,
            _ => {}
        }
    }
    assert_eq!(
        header_cells,
        vec![
            vec!["Action", "Resources"],
            vec!["Group", "Machine type", "Architecture", "Image"]
        ],
        "{markdown}"
    );
    assert_eq!(
        rows[0], 5,
        "create, update, replace, delete, total\n{markdown}"
    );
    assert!(rows[1] >= 1, "a row per group\n{markdown}");
    assert_eq!(
        html.matches("<details>").count(),
        keys.len(),
        "one <details> per change\n{markdown}"
    );
    assert_eq!(html.matches("</details>").count(), keys.len(), "{markdown}");
    for key in &keys {
        assert!(
            html.contains(key.as_str()),
            "no <summary> names {key}\n{markdown}"
        );
    }
    assert_eq!(code_blocks.len(), keys.len(), "{markdown}");
    assert!(
        code_blocks.iter().all(|(language, _)| language == "diff"),
        "{markdown}"
    );
    let code = code_blocks
        .iter()
        .map(|(_, body)| body.as_str())
        .collect::<String>();
    assert!(code.contains("+ maxSize: 3"), "{code}");
    assert!(code.contains("- maxSize: 2"), "{code}");
    // The user-data, as a unified diff of the lines of each changed file of
    // its cloud-config (decoded, were it encoded): the changed label is the
    // changed line of the kubeadm join configuration.
    assert!(code.contains("  userData:\n"), "{code}");
    assert!(
        code.contains("\n--- /etc/skiff/kubeadm-join.yaml.template (before)\n+++ /etc/skiff/kubeadm-join.yaml.template (after)\n@@ "),
        "{code}"
    );
    assert!(
        code.lines()
            .any(|line| line.starts_with('+') && line.contains("example.com/audited=yes")),
        "the user-data diff shows the changed line:\n{code}"
    );

    // No secret, in the Markdown or anywhere in the output.
    let everything = format!("{}\n{}", output.stdout, output.stderr);
    assert!(!everything.contains("PRIVATE KEY-----"), "{everything}");
    for (label, needle) in &secrets {
        assert!(
            !everything.contains(needle.as_str()),
            "the Markdown plan holds {label}"
        );
    }
}

// --- 3. refusals -----------------------------------------------------------------

#[test]
fn unknown_revisions_are_refused_with_the_store_unchanged() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let store = Store::s3(aws, "history-refusals");
    create_named_cluster(aws, &home, &store, CLUSTER);
    let before = store.snapshot(aws);
    let run = |args: &[&str]| skiff(aws, &home, &store, args).run();

    run(&["rollback", CLUSTER, "--to", "999"])
        .assert_exit(1)
        .assert_no_panic()
        .assert_stderr_contains("has no spec revision 999")
        .assert_stderr_contains("it has only revision 1");
    run(&["rollback", CLUSTER, "--to", "1"])
        .assert_success()
        .assert_stderr_contains("No changes");
    run(&["history", CLUSTER, "--diff", "1", "7"])
        .assert_exit(1)
        .assert_stderr_contains("has no spec revision 7");
    run(&["history", "nope.example.com"])
        .assert_exit(1)
        .assert_stderr_contains("nope.example.com");
    run(&["history", CLUSTER, "--prune"])
        .assert_exit(1)
        .assert_stderr_contains("--keep N");
    run(&["history", CLUSTER, "--prune", "--keep", "0"])
        .assert_exit(1)
        .assert_stderr_contains("keep at least 1");
    run(&["history", CLUSTER, "--keep", "3"])
        .assert_exit(1)
        .assert_stderr_contains("--prune");
    before.assert_unchanged(&store.snapshot(aws));
}

// --- 4. retention ----------------------------------------------------------------

#[test]
fn pruning_keeps_the_newest_revisions_and_later_writes_go_on() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let store = Store::s3(aws, "history-prune");
    create_named_cluster(aws, &home, &store, CLUSTER);
    let run = |args: &[&str]| skiff(aws, &home, &store, args).run();
    let set_max = |max: u64| {
        let output = run(&[
            "get",
            "ig",
            "--name",
            CLUSTER,
            "nodes-us-east-1a",
            "-o",
            "yaml",
        ]);
        output.assert_success();
        let mut document: serde_norway::Value =
            serde_norway::from_str(&output.stdout).expect("YAML");
        document["spec"]["maxSize"] = max.into();
        let path = home.write(
            format!("max-{max}.yaml"),
            serde_norway::to_string(&document).expect("YAML"),
        );
        run(&[
            "replace",
            "-f",
            path.to_str().expect("UTF-8"),
            "--name",
            CLUSTER,
        ])
        .assert_success();
    };
    let versions = || -> Vec<u64> {
        history_items(&run(&["history", CLUSTER, "-o", "json"]))
            .iter()
            .map(|item| item["version"].as_u64().expect("a version"))
            .collect()
    };
    for max in 3..=6 {
        set_max(max);
    }
    assert_eq!(versions(), vec![1, 2, 3, 4, 5]);

    // Off by default: an age rule no revision meets removes nothing.
    run(&["history", CLUSTER, "--prune", "--older-than", "30d"])
        .assert_success()
        .assert_stdout_contains("spec revisions none");
    let before = store.snapshot(aws);
    run(&["history", CLUSTER, "--prune", "--keep", "2", "--dry-run"])
        .assert_success()
        .assert_stdout_contains("Would remove")
        .assert_stdout_contains("spec revisions 1, 2, 3;");
    before.assert_unchanged(&store.snapshot(aws));
    run(&["history", CLUSTER, "--prune", "--keep", "2"])
        .assert_success()
        .assert_stdout_contains("Removed");
    assert_eq!(versions(), vec![4, 5]);

    // Writing goes on from the head; rollback names what is left.
    set_max(7);
    assert_eq!(versions(), vec![4, 5, 6]);
    run(&["rollback", CLUSTER, "--to", "1"])
        .assert_exit(1)
        .assert_stderr_contains("it has revisions 4 to 6");
    run(&["rollback", CLUSTER, "--to", "4"]).assert_success();
    assert_eq!(versions(), vec![4, 5, 6, 7]);
    // Automatic retention, when configured: every write prunes.
    let output = run(&[
        "get",
        "ig",
        "--name",
        CLUSTER,
        "nodes-us-east-1a",
        "-o",
        "yaml",
    ]);
    let mut document: serde_norway::Value = serde_norway::from_str(&output.stdout).expect("YAML");
    document["spec"]["maxSize"] = 9.into();
    let path = home.write(
        "max-9.yaml",
        serde_norway::to_string(&document).expect("YAML"),
    );
    skiff(
        aws,
        &home,
        &store,
        &["replace", "-f", path.to_str().expect("UTF-8")],
    )
    .env("SKIFF_HISTORY_KEEP", "3")
    .run()
    .assert_success();
    assert_eq!(versions(), vec![6, 7, 8]);
    skiff(aws, &home, &store, &["get", "clusters"])
        .env("SKIFF_HISTORY_KEEP", "none")
        .run()
        .assert_exit(1)
        .assert_stderr_contains("SKIFF_HISTORY_KEEP=\"none\"");
    // Creating the cluster again is still refused (its revision 1 is gone).
    let again = skiff(
        aws,
        &home,
        &store,
        &["create", "cluster", CLUSTER, "--zones", "us-east-1a"],
    )
    .run();
    again.assert_exit(1);
    assert_eq!(versions(), vec![6, 7, 8]);
}

// --- 5. get clusters ---------------------------------------------------------------

#[test]
fn get_clusters_shows_the_last_change_and_who_holds_the_lock() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let store = Store::s3(aws, "history-get");
    let second = "c2.example.com";
    skiff(
        aws,
        &home,
        &store,
        &["create", "cluster", CLUSTER, "--zones", "us-east-1a"],
    )
    .env("SKIFF_USER", "alice")
    .run()
    .assert_success();
    skiff(
        aws,
        &home,
        &store,
        &["create", "cluster", second, "--zones", "us-east-1a"],
    )
    .env("SKIFF_USER", "carol")
    .run()
    .assert_success();

    // Bob holds the lock of the first cluster.
    let mut holder = skiff(
        aws,
        &home,
        &store,
        &[
            "state",
            "lock",
            "hold",
            CLUSTER,
            "--reason",
            "replacing etcd volumes",
            "--duration",
            "60s",
        ],
    )
    .env("SKIFF_USER", "bob")
    .timeout(Duration::from_secs(120))
    .spawn();
    let started = Instant::now();
    loop {
        let shown = skiff(
            aws,
            &home,
            &store,
            &["state", "lock", "show", CLUSTER, "-o", "json"],
        )
        .run();
        shown.assert_success();
        if !shown.stdout_json().is_null() {
            break;
        }
        assert!(holder.is_running(), "the holder exited early");
        assert!(started.elapsed() < Duration::from_secs(30), "never locked");
        std::thread::sleep(Duration::from_millis(100));
    }

    let table = skiff(aws, &home, &store, &["get", "clusters"]).run();
    table.assert_success();
    let line_of = |name: &str| -> String {
        table
            .stdout
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name}\n{table}"))
            .to_owned()
    };
    let first_row = line_of(CLUSTER);
    assert!(first_row.contains("by alice@"), "{first_row}");
    assert!(
        first_row.contains("held by bob@") && first_row.contains("replacing etcd volumes"),
        "{first_row}"
    );
    let second_row = line_of(second);
    assert!(second_row.contains("by carol@"), "{second_row}");
    assert!(
        second_row.trim_end().ends_with(" -"),
        "not locked: {second_row}"
    );
    assert!(table
        .stdout
        .lines()
        .next()
        .unwrap_or_default()
        .contains("LOCK"));

    let json = skiff(aws, &home, &store, &["get", "clusters", "-o", "json"]).run();
    json.assert_success();
    let list = json.stdout_json();
    let status = list["status"].as_array().expect("a status list");
    assert_eq!(status.len(), 2, "{list:#}");
    let first = status
        .iter()
        .find(|entry| entry["name"] == CLUSTER)
        .expect("the first cluster");
    assert_eq!(first["changedBy"]["user"], "alice");
    assert_eq!(first["lock"]["holder"]["user"], "bob");
    let other = status
        .iter()
        .find(|entry| entry["name"] == second)
        .expect("the second cluster");
    assert!(other["lock"].is_null(), "{other:#}");

    holder.interrupt();
    let released = holder.wait();
    released.assert_no_panic();
    let after = skiff(aws, &home, &store, &["get", "clusters"]).run();
    after.assert_success();
    assert!(!after.stdout.contains("held by"), "{after}");
}
