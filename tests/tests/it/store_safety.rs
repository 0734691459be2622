//! The state store stays safe under concurrency and bad input, run as the
//! real binary against the local endpoint:
//!
//! - twenty `skiff replace -f` runs on one cluster at once: each one either
//!   stores its change or is refused with the conflict error; the head is
//!   the last stored change and the history (in the store and as `skiff
//!   history` lists it) has exactly one revision per stored change, in
//!   order, each complete;
//! - ten takers of the cluster lock at once: exactly one holds it, nine fail
//!   fast naming the holder; a SIGKILLed holder's lock is taken over (with a
//!   warning) once its lease runs out; `state unlock` needs the right ID;
//! - a corpus of bad inputs (broken YAML, unknown fields, invalid values,
//!   absent clusters and buckets, an unreachable endpoint, a YAML bomb):
//!   each exits 1 with a message naming the field or the cause, and the
//!   store is byte-for-byte unchanged;
//! - credentials that may read but not write the bucket: refused with
//!   "access denied", nothing written.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{
    at, create_cluster, skiff, spec_history, stored_spec, text_at, yaml_documents, Store,
    StoredSpec, CLUSTER,
};
use serde_norway::Value;
use skiff_tests::{
    fake_authorization, LocalAws, RunningSkiff, SandboxHome, Skiff, SkiffOutput, StoreSnapshot,
    HARNESS_USER_AGENT,
};

/// The cloud label each concurrent writer sets to its own name.
const WRITER_LABEL: &str = "skiff-test/writer";

/// The lease every process of the lock test uses.
const SHORT_LEASE: &str = "3s";

// --- helpers -----------------------------------------------------------------

/// The stored spec of [`CLUSTER`] as `get cluster -o yaml --full` prints it:
/// the Cluster, then its InstanceGroups.
fn full_spec(aws: &LocalAws, home: &SandboxHome, store: &Store) -> (String, Vec<Value>) {
    let output = skiff(
        aws,
        home,
        store,
        &["get", "cluster", CLUSTER, "-o", "yaml", "--full"],
    )
    .run();
    output.assert_success();
    let documents = yaml_documents(&output.stdout);
    assert!(
        documents.len() >= 2,
        "expected the Cluster and its groups\n{output}"
    );
    (output.stdout.clone(), documents)
}

/// A path as an argument.
fn path_text(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// `skiff replace -f FILE --state STORE`.
fn replace(aws: &LocalAws, home: &SandboxHome, store: &Store, file: &Path) -> Skiff {
    skiff(aws, home, store, &["replace", "-f", path_text(file)])
}

/// Documents as one multi-document YAML text.
fn to_text(documents: &[Value]) -> String {
    documents
        .iter()
        .map(|document| serde_norway::to_string(document).expect("YAML values serialize"))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// A mutable reference to the value at `path` (mapping keys, or sequence
/// indexes), which must exist.
#[track_caller]
fn at_mut<'value>(value: &'value mut Value, path: &[&str]) -> &'value mut Value {
    let mut current = value;
    for step in path {
        current = match step.parse::<usize>() {
            Ok(index) => current
                .get_mut(index)
                .unwrap_or_else(|| panic!("no index {index} on the way to {path:?}")),
            Err(_) => current
                .get_mut(*step)
                .unwrap_or_else(|| panic!("no field {step:?} on the way to {path:?}")),
        };
    }
    current
}

/// Sets `path` (whose parent must exist) to `value`.
#[track_caller]
fn set(document: &mut Value, path: &[&str], value: Value) {
    let (last, parent) = path.split_last().expect("a non-empty path");
    let parent = at_mut(document, parent);
    match last.parse::<usize>() {
        Ok(index) => parent[index] = value,
        Err(_) => {
            parent
                .as_mapping_mut()
                .unwrap_or_else(|| panic!("{path:?}: the parent is not a mapping"))
                .insert(Value::from(*last), value);
        }
    }
}

/// The index of the first Node group among `documents`.
#[track_caller]
fn first_node_group(documents: &[Value]) -> usize {
    documents
        .iter()
        .position(|document| {
            text_at(document, &["kind"]) == "InstanceGroup"
                && text_at(document, &["spec", "role"]) == "Node"
        })
        .expect("the spec has a Node group")
}

/// The cloud label [`WRITER_LABEL`] of a Cluster document, if set.
fn writer_of(cluster: &Value) -> Option<String> {
    at(cluster, &["spec", "cloudLabels", WRITER_LABEL])
        .as_str()
        .map(str::to_string)
}

/// Every object of the store parses: spec objects as a Revision header plus
/// a bundle, JSON objects as JSON.
#[track_caller]
fn assert_every_object_parses(snapshot: &StoreSnapshot) {
    for key in snapshot.keys() {
        let bytes = snapshot.get(key).expect("listed");
        if key.ends_with(".yaml") {
            StoredSpec::parse(key, bytes);
        } else if key.ends_with(".json") {
            if let Err(error) = serde_json::from_slice::<serde_json::Value>(bytes) {
                panic!(
                    "{key} is not JSON ({error}):\n{}",
                    String::from_utf8_lossy(bytes)
                );
            }
        }
    }
}

/// The revision a successful `replace` reports: "... (revision N)."
fn reported_revision(output: &SkiffOutput) -> u64 {
    let text = &output.stderr;
    let start = text
        .find("(revision ")
        .unwrap_or_else(|| panic!("no \"(revision N)\" in the output\n{output}"))
        + "(revision ".len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no revision number after \"(revision \"\n{output}"))
}

// --- concurrent replace ------------------------------------------------------

/// Twenty concurrent `replace -f`, each with its own valid edit (a cloud
/// label naming the writer, and a different maxSize of a node group).
#[test]
fn concurrent_replaces_store_each_accepted_change_exactly_once() {
    const WRITERS: usize = 20;
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let store = Store::s3(aws, "replace-race");
    create_cluster(aws, &home, &store);
    let (_, base) = full_spec(aws, &home, &store);
    let node_group = first_node_group(&base);

    // One file per writer.
    let mut intended: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for index in 0..WRITERS {
        let writer = format!("w{index:02}");
        let mut documents = base.clone();
        let cluster = &mut documents[0];
        if at(cluster, &["spec", "cloudLabels"]).is_null() {
            set(
                cluster,
                &["spec", "cloudLabels"],
                Value::Mapping(Default::default()),
            );
        }
        set(
            cluster,
            &["spec", "cloudLabels", WRITER_LABEL],
            Value::from(writer.as_str()),
        );
        set(
            &mut documents[node_group],
            &["spec", "maxSize"],
            Value::from(10 + index as u64),
        );
        let path = home.write(format!("edit-{writer}.yaml"), to_text(&documents));
        intended.insert(writer.clone(), documents);
        files.push((writer, path));
    }

    // All at once, then wait for every one.
    let running: Vec<(String, RunningSkiff)> = files
        .iter()
        .map(|(writer, path)| {
            let command = replace(aws, &home, &store, path).timeout(Duration::from_secs(180));
            (writer.clone(), command.spawn())
        })
        .collect();
    let outputs: Vec<(String, SkiffOutput)> = running
        .into_iter()
        .map(|(writer, process)| (writer, process.wait()))
        .collect();

    // Each one stored its change or was refused with the conflict error.
    let mut stored: BTreeMap<u64, String> = BTreeMap::new();
    let mut refused = BTreeSet::new();
    for (writer, output) in &outputs {
        output.assert_no_panic();
        if output.success() {
            output.assert_stderr_contains(&format!("Replaced cluster {CLUSTER}"));
            let revision = reported_revision(output);
            if let Some(other) = stored.insert(revision, writer.clone()) {
                panic!("{writer} and {other} both report revision {revision}\n{output}");
            }
        } else {
            output
                .assert_exit(1)
                .assert_stderr_contains(&format!("cannot replace cluster {CLUSTER}"))
                .assert_stderr_contains("changed since you read it")
                .assert_stderr_contains("nothing was overwritten");
            refused.insert(writer.clone());
        }
    }
    assert!(
        !stored.is_empty(),
        "no writer succeeded:\n{}",
        outputs
            .iter()
            .map(|(_, output)| output.to_string())
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    assert_eq!(stored.len() + refused.len(), WRITERS);
    eprintln!(
        "{} of {WRITERS} writers stored their change ({stored:?}), {} were refused",
        stored.len(),
        refused.len()
    );

    // The history: revision 1 (the create) plus exactly one revision per
    // stored change, numbered 2.., each holding that writer's edit.
    let snapshot = store.snapshot(aws);
    assert_every_object_parses(&snapshot);
    let history = spec_history(&store, &snapshot, CLUSTER);
    let serials: Vec<u64> = history.iter().map(|(_, spec)| spec.serial).collect();
    let expected_serials: Vec<u64> = (1..=1 + stored.len() as u64).collect();
    assert_eq!(
        serials, expected_serials,
        "history serials; stored changes by revision: {stored:?}"
    );
    assert_eq!(
        writer_of(history[0].1.cluster()),
        None,
        "revision 1 is the create"
    );
    for (key, revision) in &history[1..] {
        let writer = writer_of(revision.cluster())
            .unwrap_or_else(|| panic!("{key} carries no writer label: {:?}", revision.cluster()));
        assert_eq!(
            stored.get(&revision.serial),
            Some(&writer),
            "{key} holds {writer}'s edit, but the writers reported {stored:?}"
        );
        assert!(
            text_at(&revision.header, &["command"]).contains(&format!("edit-{writer}.yaml")),
            "{key}: the header's command is not {writer}'s: {:?}",
            revision.header
        );
        assert_eq!(
            revision.documents, intended[&writer],
            "{key} is not exactly {writer}'s edit"
        );
    }

    // `skiff history` lists exactly those revisions, in order, each with
    // its writer's command, the newest as current.
    let listed = skiff(aws, &home, &store, &["history", CLUSTER, "-o", "json"]).run();
    listed.assert_success();
    let listed = listed.stdout_json();
    let items = listed["items"].as_array().expect("history items");
    let listed_versions: Vec<u64> = items
        .iter()
        .map(|item| item["version"].as_u64().expect("a version"))
        .collect();
    assert_eq!(listed_versions, expected_serials, "{listed:#}");
    for (item, (key, revision)) in items.iter().zip(&history) {
        assert_eq!(
            item["command"].as_str(),
            revision.header["command"].as_str(),
            "{key}: {item:#}"
        );
        assert_eq!(
            item["current"],
            revision.serial == expected_serials.len() as u64,
            "{key}: {item:#}"
        );
    }

    // The head is the newest revision, byte for byte, and is the edit of
    // the writer that stored it.
    let head = stored_spec(&store, &snapshot, CLUSTER);
    let (last_key, last) = history.last().expect("revision 1 at least");
    assert_eq!(head.serial, last.serial);
    assert_eq!(
        snapshot.get(&store.key(&format!("{CLUSTER}/spec.yaml"))),
        snapshot.get(last_key),
        "spec.yaml differs from the newest revision {last_key}"
    );
    let winner = writer_of(head.cluster()).expect("the head carries a writer label");
    assert!(
        stored.values().any(|writer| *writer == winner),
        "the head is {winner}'s edit, which was refused"
    );
    assert_eq!(head.documents, intended[&winner]);

    // What an operator reads back is that same edit.
    let (_, read_back) = full_spec(aws, &home, &store);
    assert_eq!(read_back, intended[&winner], "get cluster -o yaml --full");

    // Nothing else was left behind (no lock, no stray object).
    let keys: BTreeSet<String> = store.cluster_keys(aws, CLUSTER).into_iter().collect();
    let mut expected_keys: BTreeSet<String> = history
        .iter()
        .map(|(_, spec)| format!("{CLUSTER}/history/spec/{:010}.yaml", spec.serial))
        .collect();
    expected_keys.insert(format!("{CLUSTER}/spec.yaml"));
    assert_eq!(keys, expected_keys);
}

// --- the cluster lock --------------------------------------------------------

/// `skiff state lock show CLUSTER -o json`: the lock, or `None`.
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

/// `state lock hold` as `user`, with the short lease.
fn hold(aws: &LocalAws, home: &SandboxHome, store: &Store, user: &str, reason: &str) -> Skiff {
    skiff(
        aws,
        home,
        store,
        &["state", "lock", "hold", CLUSTER, "--reason", reason],
    )
    .env("SKIFF_USER", user)
    .env("SKIFF_LOCK_LEASE", SHORT_LEASE)
    .timeout(Duration::from_secs(120))
}

/// Ten takers at once: one holds the lock, nine fail fast naming it. The
/// holder is SIGKILLed; the next taker gets the lock once the lease has run
/// out, with a warning, and no manual step. `state unlock` refuses a wrong
/// ID and removes the lock given the right one.
#[test]
fn one_lock_holder_among_ten_and_a_dead_holder_is_taken_over() {
    const TAKERS: usize = 10;
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let store = Store::s3(aws, "lock-race");
    create_cluster(aws, &home, &store);
    assert!(lock_info(aws, &home, &store).is_none(), "locked at start");

    let mut takers: Vec<(usize, RunningSkiff)> = (0..TAKERS)
        .map(|index| {
            let command = hold(
                aws,
                &home,
                &store,
                &format!("taker{index}"),
                &format!("maintenance {index}"),
            );
            (index, command.spawn())
        })
        .collect();

    // Nine exit; one keeps holding.
    let started = Instant::now();
    while takers
        .iter_mut()
        .map(|(_, process)| process.is_running())
        .filter(|running| *running)
        .count()
        > 1
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "more than one taker still runs after 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let holder_position = takers
        .iter_mut()
        .position(|(_, process)| process.is_running())
        .unwrap_or_else(|| {
            let outputs: Vec<String> = takers
                .drain(..)
                .map(|(_, process)| process.wait().to_string())
                .collect();
            panic!("no taker holds the lock:\n{}", outputs.join("\n\n"))
        });
    let (holder, mut holder_process) = takers.remove(holder_position);
    let holder_user = format!("taker{holder}");
    let holder_reason = format!("maintenance {holder}");

    // The lock names the holder.
    let info = lock_info(aws, &home, &store).expect("the cluster is locked");
    assert_eq!(info["holder"]["user"], holder_user.as_str(), "{info}");
    assert_eq!(info["operation"], holder_reason.as_str(), "{info}");
    assert_eq!(info["leaseSeconds"], 3, "{info}");
    let held_id = info["id"].as_str().expect("a lock ID").to_string();

    // The nine failed fast, naming the holder and what it does.
    for (index, process) in takers {
        let output = process.wait();
        output
            .assert_exit(1)
            .assert_stderr_contains(&format!("cannot lock cluster {CLUSTER}"))
            .assert_stderr_contains(&format!("is locked by {holder_user}@"))
            .assert_stderr_contains(&format!("{holder_reason:?}"))
            .assert_stderr_contains(&held_id);
        assert!(
            output.duration < Duration::from_secs(30),
            "taker{index} took {:?} to give up\n{output}",
            output.duration
        );
    }

    // SIGKILL: no release. The lock stays, held by the dead process.
    holder_process.kill();
    let killed_at = Instant::now();
    let killed = holder_process.wait();
    assert_eq!(killed.code, None, "the holder was killed\n{killed}");
    let stale = lock_info(aws, &home, &store).expect("a killed holder leaves its lock");
    assert_eq!(stale["id"], held_id.as_str());

    // The next taker gets it once the lease ran out: retry as an operator
    // would, with no manual step in between.
    let mut attempts = Vec::new();
    let successor = loop {
        let output = hold(aws, &home, &store, "successor", "after the crash")
            .args(["--duration", "1s"])
            .run();
        output.assert_no_panic();
        if output.success() {
            break output;
        }
        output
            .assert_exit(1)
            .assert_stderr_contains(&format!("is locked by {holder_user}@"));
        attempts.push(output);
        assert!(
            killed_at.elapsed() < Duration::from_secs(45),
            "the dead holder's 3 s lease was still honoured 45 s later:\n{}",
            attempts.last().expect("just pushed")
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    successor
        .assert_stderr_contains(&format!("took over an expired lock of {holder_user}@"))
        .assert_stderr_contains(&format!("{holder_reason:?}"))
        .assert_stderr_contains(&format!("Released the lock of cluster {CLUSTER}"));
    let successor_id = successor.stdout.trim();
    assert!(
        !successor_id.is_empty() && successor_id != held_id,
        "the successor prints its own lock ID\n{successor}"
    );
    assert!(
        lock_info(aws, &home, &store).is_none(),
        "the successor released the lock"
    );

    // A lock left by a dead operator (long lease) is removed only with its ID.
    let mut operator = skiff(
        aws,
        &home,
        &store,
        &[
            "state",
            "lock",
            "hold",
            CLUSTER,
            "--reason",
            "replacing disks",
        ],
    )
    .env("SKIFF_USER", "operator")
    .env("SKIFF_LOCK_LEASE", "10m")
    .spawn();
    let deadline = Instant::now() + Duration::from_secs(60);
    let operator_lock = loop {
        if let Some(info) = lock_info(aws, &home, &store) {
            break info;
        }
        assert!(operator.is_running(), "the operator's hold exited early");
        assert!(Instant::now() < deadline, "the operator never got the lock");
        std::thread::sleep(Duration::from_millis(100));
    };
    operator.kill();
    operator.wait();
    let operator_id = operator_lock["id"].as_str().expect("a lock ID").to_string();
    assert_eq!(operator_lock["holder"]["user"], "operator");

    let before = store.snapshot(aws);
    skiff(
        aws,
        &home,
        &store,
        &["state", "unlock", CLUSTER, "--lock-id", "not-the-id"],
    )
    .run()
    .assert_exit(1)
    .assert_stderr_contains(&format!("has ID {operator_id}, not not-the-id"))
    .assert_stderr_contains("nothing was unlocked");
    skiff(
        aws,
        &home,
        &store,
        &["state", "unlock", CLUSTER, "--lock-id", &held_id],
    )
    .run()
    .assert_exit(1)
    .assert_stderr_contains("nothing was unlocked");
    before.assert_unchanged(&store.snapshot(aws));
    let still = lock_info(aws, &home, &store).expect("a wrong ID leaves the lock");
    assert_eq!(still["id"], operator_id.as_str());

    skiff(
        aws,
        &home,
        &store,
        &["state", "unlock", CLUSTER, "--lock-id", &operator_id],
    )
    .run()
    .assert_success()
    .assert_stderr_contains("held by operator@")
    .assert_stderr_contains("replacing disks");
    assert!(lock_info(aws, &home, &store).is_none(), "unlocked");
    assert!(
        !store
            .cluster_keys(aws, CLUSTER)
            .contains(&format!("{CLUSTER}/lock.json")),
        "lock.json is gone"
    );
}

// --- bad inputs --------------------------------------------------------------

/// One bad input: the arguments (`{file}` stands for the case's file,
/// `--state STORE` is appended unless `state` overrides it), what must
/// appear on stderr, and the environment.
struct Case {
    label: String,
    args: Vec<String>,
    file: Option<Vec<u8>>,
    env: Vec<(String, String)>,
    state: Option<String>,
    expected: Vec<String>,
}

impl Case {
    fn new(label: &str, args: &[&str], expected: &[&str]) -> Case {
        Case {
            label: label.to_string(),
            args: args.iter().map(|arg| arg.to_string()).collect(),
            file: None,
            env: Vec::new(),
            state: None,
            expected: expected.iter().map(|text| text.to_string()).collect(),
        }
    }

    /// `replace -f FILE` with `text`.
    fn replace(label: &str, text: impl Into<Vec<u8>>, expected: &[&str]) -> Case {
        Case::new(label, &["replace", "-f", "{file}"], expected).file(text)
    }

    /// `create -f FILE` with `text`.
    fn create(label: &str, text: impl Into<Vec<u8>>, expected: &[&str]) -> Case {
        Case::new(label, &["create", "-f", "{file}"], expected).file(text)
    }

    fn file(mut self, text: impl Into<Vec<u8>>) -> Case {
        self.file = Some(text.into());
        self
    }

    fn env(mut self, name: &str, value: &str) -> Case {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    fn state(mut self, state: &str) -> Case {
        self.state = Some(state.to_string());
        self
    }
}

/// A good spec changed by `change` (given the documents: the Cluster first).
fn mutated(base: &[Value], change: impl FnOnce(&mut Vec<Value>)) -> String {
    let mut documents = base.to_vec();
    change(&mut documents);
    to_text(&documents)
}

/// The status of a HEAD on `bucket`, asked as the harness (not counted).
fn bucket_status(aws: &LocalAws, bucket: &str) -> u16 {
    let authorization = fake_authorization("s3");
    aws.request(
        "HEAD",
        &format!("/{bucket}"),
        &[
            ("Authorization", authorization.as_str()),
            ("User-Agent", HARNESS_USER_AGENT),
        ],
        b"",
    )
    .status
}

/// An alias bomb: nine levels of nine aliases, a billion strings once
/// expanded, in well under a kilobyte.
fn yaml_bomb() -> String {
    let mut text = format!(
        "apiVersion: skiff.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: {CLUSTER}\nbomb:\n"
    );
    text.push_str(
        "  a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for pair in names.windows(2) {
        let (previous, name) = (pair[0], pair[1]);
        let refs = vec![format!("*{previous}"); 9].join(",");
        text.push_str(&format!("  {name}: &{name} [{refs}]\n"));
    }
    text
}

/// Every bad input exits 1 with a message naming the field or the cause,
/// and leaves the store byte-for-byte as it was.
#[test]
fn bad_inputs_are_refused_with_the_field_named_and_the_store_untouched() {
    let aws = LocalAws::shared();
    let home = SandboxHome::new();
    let store = Store::s3(aws, "bad-inputs");
    create_cluster(aws, &home, &store);
    let (base_text, base) = full_spec(aws, &home, &store);
    let node = first_node_group(&base);
    let node_name = text_at(&base[node], &["metadata", "name"]).to_string();
    let control_plane = base
        .iter()
        .position(|document| text_at(document, &["spec", "role"]) == "ControlPlane")
        .expect("a control-plane group");
    let control_plane_name = text_at(&base[control_plane], &["metadata", "name"]).to_string();
    let network = text_at(&base[0], &["spec", "networkCIDR"]).to_string();
    let first_subnet_cidr = text_at(&base[0], &["spec", "subnets", "0", "cidr"]).to_string();
    let absent = "absent.example.com";
    let missing_bucket = skiff_tests::unique_name("no-such-bucket");

    // The control: the unchanged spec is accepted and changes nothing.
    let before = store.snapshot(aws);
    let good = home.write("good.yaml", &base_text);
    replace(aws, &home, &store, &good)
        .run()
        .assert_success()
        .assert_stderr_contains("No changes");
    before.assert_unchanged(&store.snapshot(aws));

    let node_path = format!("instancegroup/{node_name}");
    let cases = vec![
        // Not YAML, or not a spec at all.
        Case::replace(
            "malformed YAML",
            format!("apiVersion: skiff.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: {CLUSTER}\n"),
            &["document 1: not valid YAML", "line 4"],
        ),
        Case::replace(
            "bad indentation",
            "apiVersion: skiff.dev/v1alpha1\nkind: Cluster\n  metadata:\n name: x\n",
            &["document 1: not valid YAML", "line 3"],
        ),
        Case::replace("empty file", "", &["holds no document"]),
        Case::replace(
            "only comments and separators",
            "# nothing here\n---\n---\n",
            &["holds no document"],
        ),
        Case::replace(
            "a list instead of a mapping",
            "- apiVersion: skiff.dev/v1alpha1\n- kind: Cluster\n",
            &["document 1: expected a mapping"],
        ),
        Case::replace(
            "not UTF-8",
            b"kind: \xff\xfe Cluster\n".to_vec(),
            &["is not UTF-8 text"],
        ),
        Case::replace("YAML bomb", yaml_bomb(), &["repetition limit exceeded"]),
        Case::replace(
            "deeply nested YAML",
            format!(
                "apiVersion: skiff.dev/v1alpha1\nkind: Cluster\nspec: {}{}\n",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
            &["brackets nest more than 128 levels deep (at line 3)"],
        ),
        Case::replace(
            "larger than the size limit",
            format!("{base_text}# {}\n", "x".repeat(1024 * 1024)),
            &["bytes are refused"],
        ),
        // Wrong type information.
        Case::replace(
            "wrong apiVersion",
            mutated(&base, |documents| {
                set(
                    &mut documents[0],
                    &["apiVersion"],
                    Value::from("skiff.dev/v2"),
                )
            }),
            &[
                "document 1: apiVersion",
                "\"skiff.dev/v2\" is not supported",
            ],
        ),
        Case::replace(
            "missing apiVersion",
            mutated(&base, |documents| {
                documents[0]
                    .as_mapping_mut()
                    .expect("a mapping")
                    .remove("apiVersion");
            }),
            &["document 1: apiVersion: missing"],
        ),
        Case::replace(
            "wrong kind",
            mutated(&base, |documents| {
                set(&mut documents[0], &["kind"], Value::from("Clustr"))
            }),
            &["document 1: kind", "\"Clustr\" is not a skiff kind"],
        ),
        Case::replace(
            "two Cluster documents",
            mutated(&base, |documents| {
                let cluster = documents[0].clone();
                documents.push(cluster);
            }),
            &["two Cluster documents"],
        ),
        // Unknown fields.
        Case::replace(
            "unknown top-level field",
            mutated(&base, |documents| {
                set(&mut documents[0], &["colour"], Value::from("blue"))
            }),
            &["document 1: colour: unknown field `colour`"],
        ),
        Case::replace(
            "unknown nested field",
            mutated(&base, |documents| {
                set(
                    &mut documents[0],
                    &["spec", "networking", "podCidr"],
                    Value::from("100.96.0.0/11"),
                )
            }),
            &["document 1: spec.networking.podCidr: unknown field `podCidr`"],
        ),
        Case::replace(
            "unknown field in an instance group",
            mutated(&base, |documents| {
                set(&mut documents[node], &["spec", "maxsize"], Value::from(3))
            }),
            &[&format!(
                "document {}: spec.maxsize: unknown field `maxsize`",
                node + 1
            )],
        ),
        // Invalid values.
        Case::create(
            "invalid cluster name",
            mutated(&base, |documents| {
                set(
                    &mut documents[0],
                    &["metadata", "name"],
                    Value::from("Bad_Name.example.com"),
                )
            }),
            &["metadata.name: \"Bad_Name.example.com\" is not a valid DNS name"],
        ),
        Case::create(
            "cluster name without a dot",
            mutated(&base, |documents| {
                set(&mut documents[0], &["metadata", "name"], Value::from("c1"))
            }),
            &["metadata.name: \"c1\" must be a DNS name with a dot"],
        ),
        Case::replace(
            "zones of two regions",
            mutated(&base, |documents| {
                set(
                    &mut documents[0],
                    &["spec", "subnets", "1", "zone"],
                    Value::from("us-west-2b"),
                )
            }),
            &["spec.subnets[1].zone", "all zones must be in one region"],
        ),
        Case::replace(
            "subnet CIDR outside the network",
            mutated(&base, |documents| {
                set(
                    &mut documents[0],
                    &["spec", "subnets", "0", "cidr"],
                    Value::from("192.168.0.0/24"),
                )
            }),
            &["spec.subnets[0].cidr", "is outside networkCIDR"],
        ),
        Case::replace(
            "overlapping subnet CIDRs",
            mutated(&base, |documents| {
                set(
                    &mut documents[0],
                    &["spec", "subnets", "1", "cidr"],
                    Value::from(first_subnet_cidr.as_str()),
                )
            }),
            &["spec.subnets[1].cidr", "overlaps spec.subnets[0].cidr"],
        ),
        Case::replace(
            "pod CIDR overlapping the network",
            mutated(&base, |documents| {
                set(
                    &mut documents[0],
                    &["spec", "networking", "podCIDR"],
                    Value::from(network.as_str()),
                )
            }),
            &["spec.networking.podCIDR", "overlaps networkCIDR"],
        ),
        Case::replace(
            "not a CIDR",
            mutated(&base, |documents| {
                set(
                    &mut documents[0],
                    &["spec", "networkCIDR"],
                    Value::from("10.0.0.0/33"),
                )
            }),
            &["spec.networkCIDR: \"10.0.0.0/33\" is not an IPv4 CIDR"],
        ),
        Case::replace(
            "cluster DNS outside the service range",
            mutated(&base, |documents| {
                set(
                    &mut documents[0],
                    &["spec", "networking", "clusterDNS"],
                    Value::from("192.168.1.10"),
                )
            }),
            &["spec.networking.clusterDNS", "serviceCIDR"],
        ),
        Case::replace(
            "bad networking value",
            mutated(&base, |documents| {
                set(
                    &mut documents[0],
                    &["spec", "networking", "cni"],
                    Value::from("weave"),
                )
            }),
            &["spec.networking.cni: unknown variant `weave`"],
        ),
        Case::replace(
            "bad topology value",
            mutated(&base, |documents| {
                set(
                    &mut documents[0],
                    &["spec", "topology"],
                    Value::from("hybrid"),
                )
            }),
            &["spec.topology: unknown variant `hybrid`"],
        ),
        Case::replace(
            "bad Kubernetes version",
            mutated(&base, |documents| {
                set(
                    &mut documents[0],
                    &["spec", "kubernetesVersion"],
                    Value::from("1.x.3"),
                )
            }),
            &["spec.kubernetesVersion: \"1.x.3\" is not a Kubernetes version"],
        ),
        Case::replace(
            "unsupported Kubernetes version",
            mutated(&base, |documents| {
                set(
                    &mut documents[0],
                    &["spec", "kubernetesVersion"],
                    Value::from("1.20.0"),
                )
            }),
            &["spec.kubernetesVersion: 1.20.0 is not supported"],
        ),
        Case::replace(
            "minSize greater than maxSize",
            mutated(&base, |documents| {
                set(&mut documents[node], &["spec", "minSize"], Value::from(5));
                set(&mut documents[node], &["spec", "maxSize"], Value::from(2));
            }),
            &[
                &format!("{node_path}: spec.minSize"),
                "greater than maxSize 2",
            ],
        ),
        Case::replace(
            "negative size",
            mutated(&base, |documents| {
                set(&mut documents[node], &["spec", "maxSize"], Value::from(-1))
            }),
            &["spec.maxSize: invalid value: integer `-1`"],
        ),
        Case::replace(
            "size that is not a number",
            mutated(&base, |documents| {
                set(
                    &mut documents[node],
                    &["spec", "minSize"],
                    Value::from("two"),
                )
            }),
            &["spec.minSize: invalid type: string \"two\""],
        ),
        Case::replace(
            "control-plane group of three",
            mutated(&base, |documents| {
                set(
                    &mut documents[control_plane],
                    &["spec", "maxSize"],
                    Value::from(3),
                )
            }),
            &[
                &format!("instancegroup/{control_plane_name}: spec.maxSize"),
                "exactly one instance",
            ],
        ),
        Case::replace(
            "instance group in an unknown subnet",
            mutated(&base, |documents| {
                set(
                    &mut documents[node],
                    &["spec", "subnets"],
                    Value::Sequence(vec![Value::from("nowhere-1z")]),
                )
            }),
            &[
                &format!("{node_path}: spec.subnets[0]"),
                "\"nowhere-1z\" is not one of the cluster's subnets",
            ],
        ),
        Case::replace(
            "bad machine type",
            mutated(&base, |documents| {
                set(
                    &mut documents[node],
                    &["spec", "machineType"],
                    Value::from("huge"),
                )
            }),
            &[&format!("{node_path}: spec.machineType"), "\"huge\""],
        ),
        Case::replace(
            "fractional size",
            mutated(&base, |documents| {
                set(&mut documents[node], &["spec", "maxSize"], Value::from(1.5))
            }),
            &["spec.maxSize: invalid type: floating point `1.5`"],
        ),
        Case::replace(
            "network too large for a VPC",
            mutated(&base, |documents| {
                set(
                    &mut documents[0],
                    &["spec", "networkCIDR"],
                    Value::from("10.0.0.0/8"),
                )
            }),
            &["spec.networkCIDR: 10.0.0.0/8 has a /8 prefix"],
        ),
        Case::replace(
            "no subnets",
            mutated(&base, |documents| {
                set(
                    &mut documents[0],
                    &["spec", "subnets"],
                    Value::Sequence(Vec::new()),
                )
            }),
            &["spec.subnets: at least one subnet is needed"],
        ),
        Case::new(
            "--name contradicting the file",
            &["replace", "-f", "{file}", "--name", "other.example.com"],
            &["--name other.example.com does not match the file's Cluster"],
        )
        .file(base_text.clone()),
        // Absent things.
        Case::new(
            "get an absent cluster",
            &["get", "cluster", absent, "-o", "yaml"],
            &[&format!("cluster {absent:?}"), "not found"],
        ),
        Case::new(
            "edit an absent cluster",
            &["edit", "cluster", absent],
            &[&format!("cluster {absent:?}"), "not found"],
        )
        .env("EDITOR", "true"),
        Case::replace(
            "replace an absent cluster",
            mutated(&base, |documents| {
                set(
                    &mut documents[0],
                    &["metadata", "name"],
                    Value::from(absent),
                );
            }),
            &[&format!("cluster {absent:?}"), "not found"],
        ),
        Case::replace(
            "only an InstanceGroup, for an absent cluster",
            mutated(&base, |documents| {
                let mut group = documents[node].clone();
                set(
                    &mut group,
                    &["metadata", "labels"],
                    Value::Mapping(Default::default()),
                );
                set(
                    &mut group,
                    &["metadata", "labels", "skiff.dev/cluster"],
                    Value::from(absent),
                );
                *documents = vec![group];
            }),
            &[&format!("cluster {absent:?}"), "not found"],
        ),
        Case::replace(
            "only an InstanceGroup, no cluster named",
            mutated(&base, |documents| {
                let mut group = documents[node].clone();
                if let Some(metadata) = group["metadata"].as_mapping_mut() {
                    metadata.remove("labels");
                }
                *documents = vec![group];
            }),
            &["only InstanceGroups", "--name"],
        ),
        Case::new(
            "spec file that does not exist",
            &["replace", "-f", "/nonexistent/c1.yaml"],
            &["cannot read /nonexistent/c1.yaml"],
        ),
        Case::replace(
            "missing bucket",
            base_text.clone(),
            &[&format!("S3 bucket {missing_bucket:?} does not exist")],
        )
        .state(&format!("s3://{missing_bucket}/team")),
        Case::new(
            "missing bucket, create --force",
            &["replace", "--force", "-f", "{file}"],
            &[&format!("S3 bucket {missing_bucket:?} does not exist")],
        )
        .file(base_text.clone())
        .state(&format!("s3://{missing_bucket}")),
        Case::new(
            "not a store location",
            &["get", "clusters"],
            &["ftp://somewhere", "is not a state store"],
        )
        .state("ftp://somewhere"),
        Case::replace(
            "unreachable endpoint",
            base_text.clone(),
            &["cannot reach the S3 endpoint http://127.0.0.1:1"],
        )
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
    ];
    assert!(cases.len() >= 25, "the corpus has {} cases", cases.len());

    let mut failures = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        let mut command = Skiff::new(aws, &home).timeout(Duration::from_secs(60));
        let file = case
            .file
            .as_ref()
            .map(|bytes| home.write(format!("case-{index:02}.yaml"), bytes));
        for arg in &case.args {
            match (&file, arg.as_str()) {
                (Some(path), "{file}") => command = command.arg(path),
                _ => command = command.arg(arg),
            }
        }
        command = command.args([
            "--state",
            &case.state.clone().unwrap_or_else(|| store.url()),
        ]);
        for (name, value) in &case.env {
            command = command.env(name, value);
        }
        let output = command.run();
        let mut problems = Vec::new();
        if output.panicked() {
            problems.push("panicked".to_string());
        }
        if output.code != Some(1) {
            problems.push(format!("exit code {:?}, expected 1", output.code));
        }
        for text in &case.expected {
            if !output.stderr.contains(text.as_str()) {
                problems.push(format!("stderr lacks {text:?}"));
            }
        }
        if output.duration > Duration::from_secs(30) {
            problems.push(format!("took {:?}", output.duration));
        }
        let diff = before.diff(&store.snapshot(aws));
        if !diff.is_empty() {
            problems.push(format!("the store changed: {diff:?}"));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "[{}] {}\n{output}",
                case.label,
                problems.join("; ")
            ));
        }
    }
    // The missing bucket was not created on the way.
    let Store::S3 { bucket } = &store else {
        unreachable!("an S3 store")
    };
    assert_eq!(
        bucket_status(aws, bucket),
        200,
        "HEAD on an existing bucket"
    );
    let status = bucket_status(aws, &missing_bucket);
    if status != 404 {
        failures.push(format!(
            "bucket {missing_bucket} exists after the runs: HEAD answered {status}"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad inputs were not refused cleanly:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
    before.assert_unchanged(&store.snapshot(aws));
}

// --- access denied -----------------------------------------------------------

/// Turns the endpoint's IAM enforcement on (moto's `reset-auth`) until dropped.
pub(crate) struct EnforcedAuth<'aws> {
    aws: &'aws LocalAws,
}

impl<'aws> EnforcedAuth<'aws> {
    pub(crate) fn on(aws: &'aws LocalAws) -> Self {
        let response = aws.request(
            "POST",
            "/moto-api/reset-auth",
            &[("Content-Type", "text/plain")],
            b"0",
        );
        assert_eq!(response.status, 200, "reset-auth: {}", response.text());
        EnforcedAuth { aws }
    }
}

impl Drop for EnforcedAuth<'_> {
    fn drop(&mut self) {
        let response = self.aws.request(
            "POST",
            "/moto-api/reset-auth",
            &[("Content-Type", "text/plain")],
            b"inf",
        );
        assert_eq!(response.status, 200, "reset-auth: {}", response.text());
    }
}

/// Credentials that may read the bucket but not write it, and unknown
/// credentials: both refused with "access denied", nothing written. Its own
/// endpoint, since IAM enforcement is global to a server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_is_reported_and_writes_nothing() {
    let aws = LocalAws::start();
    let home = SandboxHome::new();
    let store = Store::s3(&aws, "denied");
    create_cluster(&aws, &home, &store);
    let (_, mut documents) = full_spec(&aws, &home, &store);
    set(
        &mut documents[0],
        &["spec", "cloudLabels"],
        Value::Mapping(Default::default()),
    );
    set(
        &mut documents[0],
        &["spec", "cloudLabels", "team"],
        Value::from("platform"),
    );
    let edit = home.write("edit.yaml", to_text(&documents));

    // A user who may do everything in S3 except write or delete objects.
    let iam = aws_sdk_iam::Client::new(&aws.sdk_config().await);
    iam.create_user()
        .user_name("reader")
        .send()
        .await
        .expect("create user");
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Deny", "Action": ["s3:PutObject", "s3:DeleteObject"], "Resource": "*"}
        ]
    });
    iam.put_user_policy()
        .user_name("reader")
        .policy_name("read-only-objects")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("put user policy");
    let key = iam
        .create_access_key()
        .user_name("reader")
        .send()
        .await
        .expect("create access key")
        .access_key
        .expect("an access key");

    let before = store.snapshot(&aws);
    let (reader_read, reader_write, stranger) = {
        let _enforced = EnforcedAuth::on(&aws);
        let as_reader = |args: &[&str]| {
            skiff(&aws, &home, &store, args)
                .env("AWS_ACCESS_KEY_ID", key.access_key_id())
                .env("AWS_SECRET_ACCESS_KEY", key.secret_access_key())
                .timeout(Duration::from_secs(120))
        };
        let read = as_reader(&["get", "cluster", CLUSTER, "-o", "yaml"]).run();
        let write = as_reader(&["replace", "-f", path_text(&edit)]).run();
        let stranger = replace(&aws, &home, &store, &edit)
            .env("AWS_ACCESS_KEY_ID", "AKIANOBODYKNOWS00000")
            .timeout(Duration::from_secs(120))
            .run();
        (read, write, stranger)
    };

    // Reading works: the policy is enforced, not a blanket refusal.
    reader_read.assert_success();
    reader_write
        .assert_exit(1)
        .assert_stderr_contains("access denied")
        .assert_stderr_contains("PutObject")
        .assert_stderr_contains(&store.key(&format!("{CLUSTER}/history/spec/")));
    stranger
        .assert_exit(1)
        .assert_stderr_contains("access denied: HeadBucket");
    before.assert_unchanged(&store.snapshot(&aws));
}
