//! Issue 17's version rules and the plan in words, run as the real binary.
//!
//! 1. Refusals: a skipped minor, a minor downgrade, a patch downgrade and a
//!    version outside skiff's table are refused by `replace -f`, `edit`,
//!    `rollback` and `create cluster`, each naming the versions allowed (as
//!    `skiff_api::version` computes them), with the store byte-for-byte
//!    unchanged; an allowed step is stored, so the refusals are the rule's.
//! 2. The preview of a version change: a headline in words, every group's
//!    reason naming both versions (in the preview, the Markdown plan, the
//!    JSON plan and `rolling-update`'s preview), the bootstrap script's
//!    changed lines as `-`/`+` lines, and no base64 run longer than 100
//!    characters in any line of any of them.
//! 3. A spec stored at a version the table does not offer (by an older
//!    skiff) loads, plans, applies, takes other changes and deletes; its
//!    version moves only up, into the table.

use crate::common;

use common::cluster::ClusterFixture;
use common::{create_cluster, skiff, write_script, Store, CLUSTER};
use serde_json::Value;
use skiff_api::version::{allowed_next, describe_versions, supported_versions};
use skiff_api::KubernetesVersion;
use skiff_tests::{LocalAws, SandboxHome, SkiffOutput, StoreSnapshot};

/// What `create cluster` picks.
const DEFAULT_VERSION: &str = skiff_api::version::DEFAULT_VERSION;

fn version(text: &str) -> KubernetesVersion {
    text.parse().expect("a version")
}

/// A refused change: the version asked for, and words the message must hold.
struct Refusal {
    what: &'static str,
    to: &'static str,
    says: &'static str,
}

/// The four refusals, from a spec at [`DEFAULT_VERSION`] (1.34.2).
fn refusals() -> Vec<Refusal> {
    assert_eq!(
        DEFAULT_VERSION, "1.34.2",
        "the cases below step from 1.34.2"
    );
    vec![
        Refusal {
            what: "a skipped minor",
            to: "1.36.0",
            says: "1.34.2 -> 1.36.0 skips a minor release",
        },
        Refusal {
            what: "a minor downgrade",
            to: "1.33.13",
            says: "1.34.2 -> 1.33.13 is a downgrade",
        },
        Refusal {
            what: "a patch downgrade",
            to: "1.34.1",
            says: "1.34.2 -> 1.34.1 is a downgrade",
        },
        Refusal {
            what: "a version outside the table",
            to: "1.34.99",
            says: "1.34.99 is not a version skiff builds",
        },
    ]
}

/// Asserts a refusal: exit 1 without a panic, the rule's words, the field
/// path and every allowed version named.
#[track_caller]
fn assert_refused(output: &SkiffOutput, refusal: &Refusal, allowed: &str) {
    output.assert_exit(1).assert_no_panic();
    let message = &output.stderr;
    for expected in [refusal.says, "spec.kubernetesVersion", allowed] {
        assert!(
            message.contains(expected),
            "{}: expected {expected:?}\n{output}",
            refusal.what
        );
    }
}

/// `get cluster -o yaml` with `spec.kubernetesVersion` set to `to`, as a file.
fn cluster_file(
    aws: &LocalAws,
    home: &SandboxHome,
    store: &Store,
    name: &str,
    to: &str,
) -> std::path::PathBuf {
    let output = skiff(aws, home, store, &["get", "cluster", CLUSTER, "-o", "yaml"]).run();
    output.assert_success();
    let mut document: serde_norway::Value =
        serde_norway::from_str(&output.stdout).expect("one YAML document");
    document["spec"]["kubernetesVersion"] = to.into();
    home.write(
        format!("{name}.yaml"),
        serde_norway::to_string(&document).expect("YAML"),
    )
}

#[test]
fn refused_version_changes_name_the_allowed_versions_and_store_nothing() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let allowed = describe_versions(&allowed_next(version(DEFAULT_VERSION)));
    assert!(allowed.contains("1.35."), "{allowed}");
    for store in [Store::s3(aws, "versions"), Store::file(&home)] {
        create_cluster(aws, &home, &store);

        for (index, refusal) in refusals().iter().enumerate() {
            // replace -f
            let file = cluster_file(aws, &home, &store, &format!("refused-{index}"), refusal.to);
            let before = store.snapshot(aws);
            let replaced = skiff(
                aws,
                &home,
                &store,
                &["replace", "-f", file.to_str().expect("a path")],
            )
            .run();
            assert_refused(&replaced, refusal, &allowed);
            before.assert_unchanged(&store.snapshot(aws));

            // edit, with an editor that sets the version
            let editor = write_script(
                &home,
                &format!("editors/version-{index}"),
                &format!(
                    r#"sed -i 's/kubernetesVersion: .*/kubernetesVersion: {}/' "$1""#,
                    refusal.to
                ),
            );
            let tmp = home.join("tmp");
            std::fs::create_dir_all(&tmp).expect("create tmp");
            let edited = skiff(aws, &home, &store, &["edit", "cluster", CLUSTER])
                .env("EDITOR", &editor)
                .env("TMPDIR", &tmp)
                .run();
            assert_refused(&edited, refusal, &allowed);
            assert!(
                edited.stderr.contains("Your edit was saved to"),
                "the refused edit is kept\n{edited}"
            );
            before.assert_unchanged(&store.snapshot(aws));
        }

        // An allowed step is stored: the refusals above are the rule's.
        let next = "1.35.1";
        assert!(allowed_next(version(DEFAULT_VERSION)).contains(&version(next)));
        let file = cluster_file(aws, &home, &store, "allowed", next);
        skiff(
            aws,
            &home,
            &store,
            &["replace", "-f", file.to_str().expect("a path")],
        )
        .run()
        .assert_success();
        let got = skiff(
            aws,
            &home,
            &store,
            &["get", "cluster", CLUSTER, "-o", "json"],
        )
        .run();
        assert_eq!(
            got.assert_success().stdout_json()["spec"]["kubernetesVersion"],
            next,
            "{got}"
        );

        // rollback to revision 1 is a minor downgrade, refused the same way,
        // and --dry-run says so too.
        let from_next = describe_versions(&allowed_next(version(next)));
        let rollback_refusal = Refusal {
            what: "a rollback across a minor",
            to: DEFAULT_VERSION,
            says: "1.35.1 -> 1.34.2 is a downgrade",
        };
        let before = store.snapshot(aws);
        for extra in [&[][..], &["--dry-run"][..]] {
            let mut args = vec!["rollback", CLUSTER, "--to", "1"];
            args.extend_from_slice(extra);
            let rolled_back = skiff(aws, &home, &store, &args).run();
            assert_refused(&rolled_back, &rollback_refusal, &from_next);
            before.assert_unchanged(&store.snapshot(aws));
        }
    }
}

#[test]
fn create_cluster_refuses_a_version_outside_the_table_naming_the_table() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let table = describe_versions(&supported_versions());
    for store in [Store::s3(aws, "versions-create"), Store::file(&home)] {
        let before = store.snapshot(aws);
        for outside in ["1.32.4", "1.34.99", "1.37.0"] {
            assert!(!version(outside).is_offered(), "{outside} is in the table");
            let created = skiff(
                aws,
                &home,
                &store,
                &[
                    "create",
                    "cluster",
                    CLUSTER,
                    "--zones",
                    "us-east-1a",
                    "--kubernetes-version",
                    outside,
                ],
            )
            .run();
            created.assert_exit(1).assert_no_panic();
            for expected in [
                "--kubernetes-version".to_string(),
                format!("{outside} is not a version skiff builds"),
                table.clone(),
            ] {
                assert!(
                    created.stderr.contains(&expected),
                    "{expected:?}\n{created}"
                );
            }
            before.assert_unchanged(&store.snapshot(aws));
        }
        // A row of the table is accepted.
        let newest = *supported_versions().last().expect("a table");
        skiff(
            aws,
            &home,
            &store,
            &[
                "create",
                "cluster",
                CLUSTER,
                "--zones",
                "us-east-1a",
                "--kubernetes-version",
                &newest.to_string(),
            ],
        )
        .run()
        .assert_success();
    }
}

// --- 2. the preview of a version change ------------------------------------------

/// Every run of base64 characters longer than 100 in `text`, by line.
fn base64_runs(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let mut run = 0usize;
        let mut start = 0usize;
        for (index, character) in line.char_indices() {
            if character.is_ascii_alphanumeric() || matches!(character, '+' | '/' | '=') {
                if run == 0 {
                    start = index;
                }
                run += 1;
            } else {
                if run > 100 {
                    found.push(line[start..index].to_string());
                }
                run = 0;
            }
        }
        if run > 100 {
            found.push(line[start..].to_string());
        }
    }
    found
}

/// Every string of a JSON document.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => out.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|item| strings(item, out)),
        Value::Object(map) => map.values().for_each(|item| strings(item, out)),
        _ => {}
    }
}

#[test]
fn the_base64_scan_finds_long_runs_only() {
    let long = "QUJD".repeat(26);
    assert!(base64_runs(&format!("{}\n", &long[..100])).is_empty());
    assert_eq!(base64_runs(&format!("  content: {long}\n")), [long]);
    assert!(base64_runs("readonly KUBERNETES_VERSION='1.35.1'\n").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_change_previews_in_words_with_the_script_diffed_and_no_base64() {
    let fixture = ClusterFixture::new("v2.example.com").await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a", "--node-count", "1"]);
    fixture.apply();
    let groups: Vec<String> = {
        let output = fixture.skiff(["get", "ig", "--name", &fixture.cluster, "-o", "json"]);
        output.assert_success().stdout_json()["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|item| {
                item["metadata"]["name"]
                    .as_str()
                    .expect("a name")
                    .to_owned()
            })
            .collect()
    };
    assert!(groups.len() >= 2, "{groups:?}");

    let (from, to) = (DEFAULT_VERSION, "1.35.1");
    fixture.edit_cluster(|document| {
        assert_eq!(document["spec"]["kubernetesVersion"].as_str(), Some(from));
        document["spec"]["kubernetesVersion"] = to.into();
    });
    let headline = format!("Kubernetes {from} -> {to}: control plane first, then nodes");
    let reason = format!("kubernetesVersion {from} -> {to}");
    let removed = format!("-readonly KUBERNETES_VERSION='{from}'");
    let added = format!("+readonly KUBERNETES_VERSION='{to}'");

    // The terminal preview.
    let preview = fixture.skiff(["update", "cluster", &fixture.cluster]);
    preview.assert_success();
    let text = &preview.stdout;
    assert!(text.contains(&headline), "{preview}");
    let trimmed: Vec<&str> = text.lines().map(str::trim).collect();
    assert!(trimmed.contains(&removed.as_str()), "{preview}");
    assert!(trimmed.contains(&added.as_str()), "{preview}");
    assert!(
        !text.contains("user-data (node bootstrap) changed"),
        "{preview}"
    );
    for group in &groups {
        let line = text
            .lines()
            .find(|line| line.trim_start().starts_with(&format!("{group}: ")))
            .unwrap_or_else(|| panic!("no rolling-update line for {group}\n{preview}"));
        assert!(line.contains(&reason), "{group}: {line}\n{preview}");
        assert!(!line.contains("user-data changed"), "{group}: {line}");
    }
    assert_eq!(base64_runs(text), Vec::<String>::new(), "{preview}");

    // The Markdown plan (outside code blocks, `>` is escaped as `\>`).
    let escaped = |text: &str| text.replace('>', "\\>");
    let markdown = fixture.skiff(["update", "cluster", &fixture.cluster, "-o", "markdown"]);
    markdown.assert_success();
    let text = &markdown.stdout;
    assert!(text.contains(&escaped(&headline)), "{markdown}");
    assert!(text.lines().any(|line| line == removed), "{markdown}");
    assert!(text.lines().any(|line| line == added), "{markdown}");
    for group in &groups {
        assert!(
            text.lines()
                .any(|line| line.starts_with(&format!("- `{group}`:"))
                    && line.contains(&escaped(&reason))),
            "{group}\n{markdown}"
        );
    }
    assert_eq!(base64_runs(text), Vec::<String>::new(), "{markdown}");

    // The JSON plan: structured versions, decoded files beside the raw text.
    let plan = fixture.plan_json();
    let mut texts = Vec::new();
    strings(&plan, &mut texts);
    let long: Vec<String> = texts.iter().flat_map(|text| base64_runs(text)).collect();
    assert_eq!(long, Vec::<String>::new());
    let needs = plan["rollingUpdates"].as_array().expect("rollingUpdates");
    assert_eq!(needs.len(), groups.len(), "{needs:#?}");
    for need in needs {
        assert_eq!(need["kubernetesVersion"]["from"], from, "{need:#}");
        assert_eq!(need["kubernetesVersion"]["to"], to, "{need:#}");
        assert_eq!(need["reasons"], serde_json::json!([reason]), "{need:#}");
    }
    for group in &groups {
        let key = format!("launch-template/{group}");
        let change = plan["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .find(|change| change["key"] == key.as_str())
            .unwrap_or_else(|| panic!("no change of {key}"));
        let user_data = change["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .find(|field| field["field"] == "userData")
            .unwrap_or_else(|| panic!("{key}: no userData change"));
        assert!(
            user_data["before"].is_string(),
            "the raw value stays: {user_data:#}"
        );
        let files = user_data["decoded"]["files"]
            .as_array()
            .expect("decoded files");
        let script = files
            .iter()
            .find(|file| file["path"] == "/usr/local/sbin/skiff-bootstrap")
            .unwrap_or_else(|| panic!("{key}: the script is not among {files:#?}"));
        let diff = script["diff"].as_str().expect("a diff");
        assert!(diff.lines().any(|line| line == removed), "{diff}");
        assert!(diff.lines().any(|line| line == added), "{diff}");
        assert!(
            script["after"]
                .as_str()
                .expect("the decoded text")
                .contains(&format!("KUBERNETES_VERSION='{to}'")),
            "{script:#}"
        );
    }

    // Applied: the apply says what comes next, and rolling-update's
    // preview gives the same reason per group.
    let applied = fixture.apply();
    assert!(applied.stderr.contains(&headline), "{applied}");
    let rolling = fixture.skiff(["rolling-update", "cluster", &fixture.cluster]);
    rolling.assert_success();
    for group in &groups {
        let line = rolling
            .stderr
            .lines()
            .find(|line| line.contains(&format!("{group}: replace")))
            .unwrap_or_else(|| panic!("no line for {group}\n{rolling}"));
        assert!(line.contains(&reason), "{line}\n{rolling}");
    }
}

// --- 3. a spec stored before its version left the table ---------------------------

/// Rewrites `spec.kubernetesVersion` in an object of the store, as a spec
/// stored by an older skiff holds it.
fn force_stored_version(fixture: &ClusterFixture, relative: &str, from: &str, to: &str) {
    let key = fixture.key(relative);
    let text = String::from_utf8(fixture.get_object(relative).expect("the object"))
        .expect("a text object");
    let rewritten = text.replace(
        &format!("kubernetesVersion: {from}\n"),
        &format!("kubernetesVersion: {to}\n"),
    );
    assert_ne!(
        rewritten, text,
        "no kubernetesVersion: {from} in {key}:\n{text}"
    );
    fixture
        .aws
        .put_object(&fixture.bucket, &key, rewritten.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_stored_outside_the_table_loads_plans_applies_and_deletes_and_moves_only_up() {
    let fixture = ClusterFixture::new("v3.example.com").await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a", "--node-count", "1"]);
    let stored = "1.32.4";
    assert!(!version(stored).is_offered() && version(stored).is_supported());
    for relative in ["spec.yaml", "history/spec/0000000001.yaml"] {
        force_stored_version(&fixture, relative, DEFAULT_VERSION, stored);
    }

    // Loads.
    let got = fixture.skiff(["get", "cluster", &fixture.cluster, "-o", "json"]);
    assert_eq!(
        got.assert_success().stdout_json()["spec"]["kubernetesVersion"],
        stored,
        "{got}"
    );
    // Plans and applies at its version.
    let plan = fixture.plan_json();
    let mut texts = Vec::new();
    strings(&plan, &mut texts);
    assert!(
        texts
            .iter()
            .any(|text| text.contains(&format!("readonly KUBERNETES_VERSION='{stored}'"))),
        "the nodes install {stored}"
    );
    fixture.apply();
    // Any other change is stored: only the version is checked.
    fixture.edit_group("nodes-us-east-1a", |document| {
        document["spec"]["maxSize"] = 3.into();
    });
    // Its version moves only up, into the table.
    let allowed = describe_versions(&allowed_next(version(stored)));
    assert!(allowed.starts_with("1.33.0"), "{allowed}");
    let before = StoreSnapshot::of_bucket(&fixture.aws, &fixture.bucket);
    let output = fixture.skiff(["get", "cluster", &fixture.cluster, "-o", "yaml"]);
    output.assert_success();
    let mut document: serde_norway::Value =
        serde_norway::from_str(&output.stdout).expect("one YAML document");
    document["spec"]["kubernetesVersion"] = "1.34.0".into();
    let file = fixture.home.write(
        "skip.yaml",
        serde_norway::to_string(&document).expect("YAML"),
    );
    let refused = fixture.skiff(["replace", "-f", file.to_str().expect("a path")]);
    assert_refused(
        &refused,
        &Refusal {
            what: "a skipped minor from outside the table",
            to: "1.34.0",
            says: "1.32.4 -> 1.34.0 skips a minor release",
        },
        &allowed,
    );
    before.assert_unchanged(&StoreSnapshot::of_bucket(&fixture.aws, &fixture.bucket));
    // Deletes.
    fixture
        .skiff(["delete", "cluster", &fixture.cluster, "--yes"])
        .assert_success();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_minor_raises_without_a_roll_between_them_are_not_applied() {
    let fixture = ClusterFixture::new("v3.example.com").await;
    fixture.create_zone("example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a", "--node-count", "1"]);
    fixture.apply();
    // One minor up, applied: the groups' rolling update is pending.
    fixture.edit_cluster(|document| {
        document["spec"]["kubernetesVersion"] = "1.35.1".into();
    });
    fixture.apply();
    // Another minor up (each edit is one minor, so the spec takes it), but
    // the instances still run 1.34: applying it would skip 1.35.
    fixture.edit_cluster(|document| {
        document["spec"]["kubernetesVersion"] = "1.36.0".into();
    });
    let before = fixture.aws.list_keys(&fixture.bucket, "");
    let templates_before = fixture.launch_template("control-plane-us-east-1a").await;
    let refused = fixture.skiff(["update", "cluster", &fixture.cluster, "--yes"]);
    refused.assert_failure().assert_no_panic();
    refused.assert_stderr_contains(&format!(
        "runs Kubernetes {DEFAULT_VERSION} (its rolling update to 1.35.1 has not run)"
    ));
    refused.assert_stderr_contains("would install 1.36.0, which skips a minor");
    refused.assert_stderr_contains("Nothing was changed");
    assert_eq!(
        fixture.launch_template("control-plane-us-east-1a").await,
        templates_before,
        "no new launch-template version"
    );
    let after = fixture.aws.list_keys(&fixture.bucket, "");
    assert!(
        after
            .iter()
            .all(|key| before.contains(key) || key.contains("/history/")),
        "nothing written but history: {:?}",
        after
            .iter()
            .filter(|key| !before.contains(key))
            .collect::<Vec<_>>()
    );
}
