//! Acceptance tests of `rolling-update cluster`: the real `skiff` binary
//! replaces out-of-date instances against a local AWS endpoint, and every
//! claim is checked by describing the endpoint directly (harness-tagged SDK
//! clients, so checking never disturbs the call counts).
//!
//! Each test starts its own endpoint: the tests inspect auto scaling groups
//! and count the calls skiff makes.
//!
//! What each test pins:
//! - a node group of 6 with `maxSurge: 2` after an image change: exactly the
//!   out-of-date instances are replaced, a poller never sees more than 6 + 2
//!   instances nor fewer than 6 in service, and the group ends on the
//!   current launch-template version with its spec sizes;
//! - SIGKILL halfway, then run again: the second run takes over the lock,
//!   finishes, restores the group's sizes, and no instance is terminated
//!   twice;
//! - a group an interrupted run grew, with nothing left out of date, still
//!   gets its sizes restored by the next run;
//! - control-plane groups are replaced one instance at a time, without
//!   surge even when the cluster's budget allows it (the poller and the
//!   `-o json` event order), and `--instance-group-roles` leaves node groups
//!   alone;
//! - the preview (no `--yes`) shows the status table and the reason, and
//!   changes nothing.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::ClusterFixture;
use serde_json::Value;
use skiff_tests::{Skiff, SkiffOutput, StoreSnapshot};

/// The older Ubuntu 24.04 amd64 image in `tests/harness/amis.json` (the
/// default image pattern resolves to the newer one).
const OLDER_NOBLE_AMD64: &str = "ami-0a9f8e7d6c5b40115";
const NEWEST_NOBLE_AMD64: &str = "ami-0a9f8e7d6c5b40610";
const THREE_ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
const NODES: &str = "nodes-us-east-1a";
/// A short lease, so that a run after a killed one can take the lock over
/// within seconds.
const LOCK_LEASE: &str = "3s";
const TERMINATE: &str = "autoscaling:TerminateInstanceInAutoScalingGroup";

// --- fixture -------------------------------------------------------------------

/// What only these tests need.
impl ClusterFixture {
    /// A fixture for `cluster` with the `example.com` zone, whose skiff
    /// commands all run with the short [`LOCK_LEASE`].
    async fn rolling(cluster: &str) -> ClusterFixture {
        let fixture = ClusterFixture::new(cluster)
            .await
            .with_env("SKIFF_LOCK_LEASE", LOCK_LEASE);
        fixture.create_zone("example.com").await;
        fixture
    }

    /// `rolling-update cluster CLUSTER EXTRA...`, not yet run.
    fn rolling_update(&self, extra: &[&str]) -> Skiff {
        let mut args = vec!["rolling-update", "cluster", &self.cluster];
        args.extend_from_slice(extra);
        self.command(args)
    }

    /// A group's auto scaling group and its instances' launch templates.
    async fn group(&self, group: &str) -> Group {
        let name = self.group_resource(group);
        let found = self
            .clients
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&name)
            .send()
            .await
            .expect("describe auto scaling groups");
        let asg = found
            .auto_scaling_groups()
            .first()
            .unwrap_or_else(|| panic!("no auto scaling group {name}"))
            .clone();
        let ids: Vec<String> = asg
            .instances()
            .iter()
            .filter_map(|instance| instance.instance_id().map(str::to_owned))
            .collect();
        let details = self.instances(&ids).await;
        let instances = asg
            .instances()
            .iter()
            .map(|instance| {
                let id = instance.instance_id().expect("an instance ID").to_owned();
                let detail = details
                    .get(&id)
                    .unwrap_or_else(|| panic!("instance {id} of {name} is unknown to EC2"));
                Member {
                    lifecycle: instance
                        .lifecycle_state()
                        .map(|state| state.as_str().to_owned())
                        .unwrap_or_default(),
                    template: detail.template.clone(),
                    version: detail.version.clone(),
                    id,
                }
            })
            .collect();
        let specification = asg
            .launch_template()
            .expect("the group uses a launch template");
        Group {
            min: asg.min_size().unwrap_or(-1),
            max: asg.max_size().unwrap_or(-1),
            desired: asg.desired_capacity().unwrap_or(-1),
            template: specification
                .launch_template_id()
                .unwrap_or_default()
                .to_owned(),
            version: specification.version().unwrap_or_default().to_owned(),
            instances,
        }
    }

    /// EC2's view of instances: launch template tags and state.
    async fn instances(&self, ids: &[String]) -> BTreeMap<String, Ec2Instance> {
        let mut found = BTreeMap::new();
        if ids.is_empty() {
            return found;
        }
        let output = self
            .clients
            .ec2
            .describe_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .expect("describe instances");
        for reservation in output.reservations() {
            for instance in reservation.instances() {
                let tag = |key: &str| {
                    instance
                        .tags()
                        .iter()
                        .find(|tag| tag.key() == Some(key))
                        .and_then(|tag| tag.value())
                        .map(str::to_owned)
                };
                found.insert(
                    instance.instance_id().expect("an ID").to_owned(),
                    Ec2Instance {
                        template: tag("aws:ec2launchtemplate:id"),
                        version: tag("aws:ec2launchtemplate:version"),
                        state: instance
                            .state()
                            .and_then(|state| state.name())
                            .map(|name| name.as_str().to_owned())
                            .unwrap_or_default(),
                    },
                );
            }
        }
        found
    }

    /// The IDs of every terminated instance the endpoint knows (the endpoint
    /// is this test's own, so they are all this cluster's).
    async fn terminated_instances(&self) -> BTreeSet<String> {
        let output = self
            .clients
            .ec2
            .describe_instances()
            .send()
            .await
            .expect("describe instances");
        output
            .reservations()
            .iter()
            .flat_map(|reservation| reservation.instances())
            .filter(|instance| {
                instance
                    .state()
                    .and_then(|state| state.name())
                    .map(|name| name.as_str())
                    == Some("terminated")
            })
            .filter_map(|instance| instance.instance_id().map(str::to_owned))
            .collect()
    }

    /// The rolling-update progress object, if any.
    fn progress(&self) -> Option<Value> {
        self.get_object("rollout.json").map(|bytes| {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|error| panic!("rollout.json is not JSON ({error})"))
        })
    }

    /// A poller describing these groups every 50 ms until stopped.
    fn poll(&self, groups: &[&str]) -> Poller {
        let names: Vec<String> = groups
            .iter()
            .map(|group| self.group_resource(group))
            .collect();
        let client = self.clients.autoscaling.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    // A read racing a write in moto may fail: skip that sample.
                    if let Ok(found) = client
                        .describe_auto_scaling_groups()
                        .set_auto_scaling_group_names(Some(names.clone()))
                        .send()
                        .await
                    {
                        let sample: Sample = found
                            .auto_scaling_groups()
                            .iter()
                            .map(|asg| {
                                let instances = asg
                                    .instances()
                                    .iter()
                                    .map(|instance| {
                                        (
                                            instance.instance_id().unwrap_or_default().to_owned(),
                                            instance
                                                .lifecycle_state()
                                                .map(|state| state.as_str().to_owned())
                                                .unwrap_or_default(),
                                            instance.health_status().is_none_or(|health| {
                                                health.eq_ignore_ascii_case("healthy")
                                            }),
                                        )
                                    })
                                    .collect();
                                (
                                    asg.auto_scaling_group_name().unwrap_or_default().to_owned(),
                                    GroupSample {
                                        desired: asg.desired_capacity().unwrap_or(0),
                                        max: asg.max_size().unwrap_or(0),
                                        instances,
                                    },
                                )
                            })
                            .collect();
                        samples.push(sample);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                samples
            })
        };
        Poller { stop, handle }
    }
}

impl Drop for ClusterFixture {
    fn drop(&mut self) {
        // A failing test shows what the endpoint said (moto's tracebacks).
        if std::thread::panicking() {
            let log = self.aws.server_log();
            let lines: Vec<&str> = log.lines().collect();
            let start = lines.len().saturating_sub(80);
            eprintln!(
                "--- local AWS log (last lines) ---\n{}",
                lines[start..].join("\n")
            );
        }
    }
}

/// An auto scaling group as the test sees it.
#[derive(Debug, Clone)]
struct Group {
    min: i32,
    max: i32,
    desired: i32,
    template: String,
    version: String,
    instances: Vec<Member>,
}

impl Group {
    fn ids(&self) -> BTreeSet<String> {
        self.instances
            .iter()
            .map(|member| member.id.clone())
            .collect()
    }

    /// Instances whose EC2 tags name another template version than the group's.
    fn outdated(&self) -> BTreeSet<String> {
        self.instances
            .iter()
            .filter(|member| !self.is_current(member))
            .map(|member| member.id.clone())
            .collect()
    }

    fn is_current(&self, member: &Member) -> bool {
        member.template.as_deref() == Some(self.template.as_str())
            && member.version.as_deref() == Some(self.version.as_str())
    }

    /// Fails unless the group has its spec sizes and every instance is in
    /// service on the current version.
    #[track_caller]
    fn assert_settled(&self, size: i32, what: &str) {
        assert_eq!(
            (self.min, self.max, self.desired),
            (size, size, size),
            "{what}: min/max/desired as in the spec: {self:#?}"
        );
        assert_eq!(self.instances.len(), size as usize, "{what}: {self:#?}");
        for member in &self.instances {
            assert_eq!(member.lifecycle, "InService", "{what}: {member:?}");
            assert!(
                self.is_current(member),
                "{what}: instance {} runs {:?} version {:?}, the group {} version {}",
                member.id,
                member.template,
                member.version,
                self.template,
                self.version
            );
        }
    }
}

#[derive(Debug, Clone)]
struct Member {
    id: String,
    lifecycle: String,
    template: Option<String>,
    version: Option<String>,
}

#[derive(Debug, Clone)]
struct Ec2Instance {
    template: Option<String>,
    version: Option<String>,
    state: String,
}

/// One observation of the polled groups, by auto scaling group name.
type Sample = BTreeMap<String, GroupSample>;

#[derive(Debug, Clone)]
struct GroupSample {
    desired: i32,
    max: i32,
    /// (ID, lifecycle state, healthy).
    instances: Vec<(String, String, bool)>,
}

impl GroupSample {
    fn in_service(&self) -> usize {
        self.instances
            .iter()
            .filter(|(_, lifecycle, healthy)| lifecycle == "InService" && *healthy)
            .count()
    }
}

struct Poller {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<Vec<Sample>>,
}

impl Poller {
    async fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.await.expect("the poller does not panic")
    }
}

/// Runs a command on a blocking thread, so pollers keep running.
async fn run(command: Skiff) -> SkiffOutput {
    tokio::task::spawn_blocking(move || command.run())
        .await
        .expect("the run thread does not panic")
}

/// The `-o json` event lines of a run.
fn events(output: &SkiffOutput) -> Vec<Value> {
    output
        .stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|error| {
                panic!("event line {line:?} is not JSON ({error})\n{output}")
            })
        })
        .collect()
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|event| event["event"] == kind)
        .collect()
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// A single-zone cluster whose node group has 6 instances and `maxSurge: 2`,
/// built, then given an image change: a new launch-template version the
/// group points at, with its 6 instances still on the old one. Returns the
/// fixture and the out-of-date instance IDs.
async fn six_nodes_behind(cluster: &str) -> (ClusterFixture, BTreeSet<String>) {
    let fixture = ClusterFixture::rolling(cluster).await;
    fixture.create_cluster(&["--zones", "us-east-1a", "--node-count", "6"]);
    fixture.edit_group(NODES, |document| {
        document["spec"]["minSize"] = 6.into();
        document["spec"]["maxSize"] = 6.into();
        let mut budget = serde_norway::Mapping::new();
        budget.insert("maxSurge".into(), 2.into());
        document["spec"]["rollingUpdate"] = serde_norway::Value::Mapping(budget);
    });
    fixture.apply();
    let (template, first) = fixture.launch_template(NODES).await;
    let before = fixture.group(NODES).await;
    before.assert_settled(6, "after the first apply");
    assert_eq!(before.template, template);
    assert_eq!(before.version, first.to_string());

    fixture.edit_group(NODES, |document| {
        document["spec"]["image"] = OLDER_NOBLE_AMD64.into();
    });
    fixture.apply();
    let (same, second) = fixture.launch_template(NODES).await;
    assert_eq!(same, template, "a new version of the same template");
    assert_ne!(second, first, "the image change made a new version");
    let behind = fixture.group(NODES).await;
    assert_eq!(
        behind.version,
        second.to_string(),
        "the group launches from the new version"
    );
    let outdated = behind.outdated();
    assert_eq!(
        outdated,
        behind.ids(),
        "every instance is out of date: {behind:#?}"
    );
    assert_eq!(outdated.len(), 6);
    (fixture, outdated)
}

/// What every finished rolling update of the six nodes leaves: the spec's
/// sizes, every instance current and new, exactly the old ones terminated.
async fn assert_nodes_replaced(fixture: &ClusterFixture, outdated: &BTreeSet<String>) {
    let after = fixture.group(NODES).await;
    after.assert_settled(6, "after the rolling update");
    assert!(
        after.ids().is_disjoint(outdated),
        "no out-of-date instance is left: {:?} vs {outdated:?}",
        after.ids()
    );
    let terminated = fixture.terminated_instances().await;
    assert_eq!(
        &terminated, outdated,
        "exactly the out-of-date instances were terminated"
    );
    let states = fixture
        .instances(&after.ids().into_iter().collect::<Vec<_>>())
        .await;
    for (id, instance) in &states {
        assert_eq!(instance.state, "running", "{id}: {instance:?}");
    }
}

// --- 1. surge-bounded replacement of exactly the out-of-date instances --------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_change_replaces_exactly_the_outdated_nodes_within_the_surge_budget() {
    let (fixture, outdated) = six_nodes_behind("r1.example.com").await;
    let control_plane_before = fixture.group("control-plane-us-east-1a").await;

    fixture.aws.reset_stats();
    let poller = fixture.poll(&[NODES]);
    let output = run(fixture.rolling_update(&[
        "--yes",
        "--cloudonly",
        "--validation-interval",
        "100ms",
        "--validation-timeout",
        "60s",
        "-o",
        "json",
    ]))
    .await;
    let samples = poller.finish().await;
    output.assert_success();
    let stats = fixture.aws.stats();

    // What the poller saw while it ran.
    assert!(
        samples.len() >= 3,
        "the poller saw the run: {} samples",
        samples.len()
    );
    let asg = fixture.group_resource(NODES);
    let mut most = 0;
    let mut fewest_in_service = usize::MAX;
    for sample in &samples {
        let group = sample
            .get(&asg)
            .unwrap_or_else(|| panic!("{asg} in every sample"));
        most = most.max(group.instances.len());
        fewest_in_service = fewest_in_service.min(group.in_service());
        assert!(
            group.desired <= 8 && group.max <= 8,
            "never sized above 6 + maxSurge 2: {group:?}"
        );
    }
    assert!(most <= 8, "at most 6 + maxSurge 2 instances, saw {most}");
    assert!(
        most > 6,
        "the group surged before removing anything, saw at most {most}"
    );
    assert!(
        fewest_in_service >= 6,
        "never fewer than 6 in service (maxUnavailable 0), saw {fewest_in_service}"
    );

    assert_nodes_replaced(&fixture, &outdated).await;
    assert_eq!(
        stats.count(TERMINATE),
        6,
        "one termination per out-of-date instance: {:?}",
        stats.calls
    );

    // The event stream tells the same story.
    let events = events(&output);
    let started = of_kind(&events, "groupStarted");
    assert_eq!(started.len(), 1, "only the node group rolls: {events:#?}");
    assert_eq!(started[0]["group"], NODES);
    assert_eq!(started[0]["outdated"], 6);
    assert_eq!(started[0]["surge"], 2);
    assert_eq!(started[0]["unavailable"], 0);
    let grown = of_kind(&events, "grown");
    assert_eq!(grown.len(), 1, "{events:#?}");
    assert_eq!(grown[0]["desired"], 8);
    let terminated: BTreeSet<String> = of_kind(&events, "terminated")
        .iter()
        .map(|event| text(&event["instance"]))
        .collect();
    assert_eq!(
        &terminated, &outdated,
        "the terminated events name the out-of-date instances"
    );
    let done = of_kind(&events, "groupDone");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["replaced"], 6);

    // The control plane was up to date and is untouched.
    let control_plane_after = fixture.group("control-plane-us-east-1a").await;
    assert_eq!(control_plane_after.ids(), control_plane_before.ids());
    // Done: nothing left to resume, nothing left to do.
    if let Some(progress) = fixture.progress() {
        assert!(
            progress["replaced"]
                .as_object()
                .is_none_or(|groups| groups.is_empty())
                && progress["grown"]
                    .as_object()
                    .is_none_or(|groups| groups.is_empty()),
            "a finished rolling update leaves no progress to resume: {progress:#}"
        );
    }
    let again = fixture.rolling_update(&[]).run();
    again.assert_success();
    assert!(
        again.stderr.contains("No rolling update needed"),
        "everything is up to date now\n{again}"
    );
}

// --- 2. killed halfway, then run again -----------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_killed_halfway_finishes_when_run_again_without_replacing_twice() {
    let (fixture, outdated) = six_nodes_behind("r2.example.com").await;
    let arguments = [
        "--yes",
        "--cloudonly",
        "--validation-interval",
        "400ms",
        "--validation-timeout",
        "60s",
        "-o",
        "json",
    ];

    fixture.aws.reset_stats();
    let mut first = fixture.rolling_update(&arguments).spawn();
    let started = Instant::now();
    let kill_state = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the first run never replaced an instance"
        );
        assert!(
            first.is_running(),
            "the first run ended before it could be killed halfway"
        );
        let recorded = fixture
            .progress()
            .map(|progress| progress["replaced"][NODES].as_array().map_or(0, Vec::len))
            .unwrap_or(0);
        if recorded > 0 {
            let group = fixture.group(NODES).await;
            if !group.ids().is_superset(&outdated) {
                break group;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    first.kill();
    let killed = tokio::task::spawn_blocking(move || first.wait())
        .await
        .expect("wait for the killed run");
    assert_eq!(killed.code, None, "killed by SIGKILL\n{killed}");
    let after_kill = fixture.group(NODES).await;
    let left: BTreeSet<String> = after_kill.ids().intersection(&outdated).cloned().collect();
    assert!(
        !left.is_empty() && left.len() < outdated.len(),
        "killed halfway: {} of {} out-of-date instances left (at the kill: {kill_state:#?})",
        left.len(),
        outdated.len()
    );
    assert_eq!(
        after_kill.desired, 8,
        "the killed run left the group grown for surge: {after_kill:#?}"
    );
    let progress = fixture
        .progress()
        .expect("the killed run recorded its progress");
    assert_eq!(progress["grown"][NODES]["desired"], 6, "{progress:#}");
    assert_eq!(progress["grown"][NODES]["max"], 6, "{progress:#}");
    let terminated_first = fixture.aws.stats().count(TERMINATE);
    assert!(terminated_first >= 1, "the first run terminated something");

    // Run again: it takes the lock over once its lease expires, and finishes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let second = loop {
        let output = run(fixture.rolling_update(&arguments)).await;
        if output.success() {
            break output;
        }
        output.assert_no_panic();
        assert!(
            output.stderr.contains("locked") && Instant::now() < deadline,
            "the second run fails only while the dead run's lock is live\n{output}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        second.stderr.contains("took over the expired lock"),
        "the second run says it continues an interrupted one\n{second}"
    );
    let stats = fixture.aws.stats();
    assert_eq!(
        stats.count(TERMINATE),
        6,
        "each out-of-date instance terminated exactly once across both runs: {:?}",
        stats.calls
    );
    let terminated_second: BTreeSet<String> = of_kind(&events(&second), "terminated")
        .iter()
        .map(|event| text(&event["instance"]))
        .collect();
    assert_eq!(
        terminated_second, left,
        "the second run terminated exactly the out-of-date instances the first left"
    );
    assert_nodes_replaced(&fixture, &outdated).await;
    if let Some(progress) = fixture.progress() {
        assert!(
            progress["grown"]
                .as_object()
                .is_none_or(|groups| groups.is_empty()),
            "nothing left to restore: {progress:#}"
        );
    }
}

/// A run killed after its last replacement but before it restored the
/// group's sizes leaves nothing out of date, only a grown group and its
/// recorded original sizes: running again must still restore them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_left_grown_by_an_interrupted_run_is_restored_when_nothing_is_out_of_date() {
    let fixture = ClusterFixture::rolling("r5.example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a", "--node-count", "2"]);
    fixture.apply();
    let before = fixture.group(NODES).await;
    before.assert_settled(2, "after the apply");

    // What the killed run left: the group's maximum still raised for surge,
    // and its progress.
    fixture
        .clients
        .autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name(fixture.group_resource(NODES))
        .max_size(4)
        .send()
        .await
        .expect("raise the maximum");
    let progress = serde_json::json!({
        "grown": { NODES: { "desired": 2, "max": 2 } },
        "replaced": { NODES: ["i-0123456789abcdef0", "i-0123456789abcdef1"] },
    });
    fixture.aws.put_object(
        &fixture.bucket,
        &format!("{}/rollout.json", fixture.cluster),
        progress.to_string().as_bytes(),
    );

    fixture.aws.reset_stats();
    let preview = fixture.rolling_update(&[]).run();
    preview.assert_success();
    assert!(
        !preview.stderr.contains("No rolling update needed")
            && preview
                .stderr
                .contains(&format!("{NODES}: restore its sizes (desired 2, max 2)")),
        "the preview says the group still needs its sizes restored\n{preview}"
    );
    assert_eq!(
        fixture.aws.stats().mutating_total(),
        0,
        "the preview changes nothing"
    );

    let output = run(fixture.rolling_update(&[
        "--yes",
        "--cloudonly",
        "--validation-interval",
        "100ms",
        "--validation-timeout",
        "60s",
    ]))
    .await;
    output.assert_success();
    let stats = fixture.aws.stats();
    let after = fixture.group(NODES).await;
    after.assert_settled(2, "after running again");
    assert_eq!(after.ids(), before.ids(), "nothing was replaced");
    assert_eq!(stats.count(TERMINATE), 0, "{:?}", stats.calls);
    let left = fixture.progress().unwrap_or_default();
    assert!(
        left["grown"]
            .as_object()
            .is_none_or(|groups| groups.is_empty()),
        "nothing left to restore: {left:#}"
    );
}

// --- 3. the control plane, one instance at a time --------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_instances_are_replaced_strictly_one_at_a_time() {
    let fixture = ClusterFixture::rolling("r3.example.com").await;
    fixture.create_cluster(&[
        "--zones",
        &THREE_ZONES.join(","),
        "--control-plane-count",
        "3",
        "--node-count",
        "3",
    ]);
    // A generous cluster budget that control-plane groups must ignore.
    fixture.edit_cluster(|document| {
        let mut budget = serde_norway::Mapping::new();
        budget.insert("maxSurge".into(), 2.into());
        budget.insert("maxUnavailable".into(), 2.into());
        document["spec"]["rollingUpdate"] = serde_norway::Value::Mapping(budget);
    });
    fixture.apply();
    // skiff runs one instance per control-plane group (etcd members).
    let control_planes: Vec<String> = THREE_ZONES
        .iter()
        .map(|zone| format!("control-plane-{zone}"))
        .collect();
    let sizes: BTreeMap<String, usize> = control_planes
        .iter()
        .map(|group| (group.clone(), 1))
        .collect();

    // Change every control-plane template, and a node group's too.
    for group in &control_planes {
        fixture.edit_group(group, |document| {
            document["spec"]["machineType"] = "m5.large".into();
        });
    }
    fixture.edit_group(NODES, |document| {
        document["spec"]["image"] = OLDER_NOBLE_AMD64.into();
    });
    fixture.apply();
    let mut outdated = BTreeSet::new();
    for group in &control_planes {
        let view = fixture.group(group).await;
        assert_eq!(view.outdated().len(), sizes[group], "{group}: {view:#?}");
        outdated.extend(view.outdated());
    }
    let nodes_before = fixture.group(NODES).await;
    assert_eq!(
        nodes_before.outdated().len(),
        1,
        "the node group is behind too: {nodes_before:#?}"
    );

    fixture.aws.reset_stats();
    let polled: Vec<&str> = control_planes.iter().map(String::as_str).collect();
    let poller = fixture.poll(&polled);
    let output = run(fixture.rolling_update(&[
        "--yes",
        "--cloudonly",
        "--instance-group-roles",
        "ControlPlane",
        "--validation-interval",
        "100ms",
        "--validation-timeout",
        "60s",
        "-o",
        "json",
    ]))
    .await;
    let samples = poller.finish().await;
    output.assert_success();
    let stats = fixture.aws.stats();

    // The poller: no surge in any group, never more than one missing.
    assert!(
        samples.len() >= 3,
        "the poller saw the run: {} samples",
        samples.len()
    );
    let total: usize = sizes.values().sum();
    for sample in &samples {
        let mut instances = 0;
        let mut in_service = 0;
        for group in &control_planes {
            let seen = sample
                .get(&fixture.group_resource(group))
                .unwrap_or_else(|| panic!("{group} in every sample: {sample:?}"));
            assert!(
                seen.instances.len() <= sizes[group] && seen.desired as usize <= sizes[group],
                "{group}: a control-plane group never surges: {seen:?}"
            );
            instances += seen.instances.len();
            in_service += seen.in_service();
        }
        assert!(
            instances <= total,
            "never more than {total} control-plane instances: {sample:?}"
        );
        assert!(
            in_service + 1 >= total,
            "never two control-plane instances out of service at once: {sample:?}"
        );
    }

    // The events: one termination, then validation, then the next.
    let events = events(&output);
    assert!(
        of_kind(&events, "grown").is_empty(),
        "the control plane never grows: {events:#?}"
    );
    let started: Vec<String> = of_kind(&events, "groupStarted")
        .iter()
        .map(|event| {
            assert_eq!(event["surge"], 0, "{event}");
            assert_eq!(event["unavailable"], 1, "{event}");
            text(&event["group"])
        })
        .collect();
    assert_eq!(
        started, control_planes,
        "control-plane groups in order, nodes not rolled"
    );
    let mut awaiting_validation = false;
    let mut terminated = BTreeSet::new();
    for event in &events {
        match event["event"].as_str() {
            Some("terminated") => {
                assert!(
                    !awaiting_validation,
                    "a control-plane instance was terminated before the previous replacement validated: {events:#?}"
                );
                assert_eq!(event["shrink"], false, "{event}");
                awaiting_validation = true;
                terminated.insert(text(&event["instance"]));
            }
            Some("validated") => awaiting_validation = false,
            Some("groupDone") => assert!(
                !awaiting_validation,
                "a group finished unvalidated: {events:#?}"
            ),
            _ => {}
        }
    }
    assert_eq!(
        terminated, outdated,
        "every out-of-date control-plane instance, once"
    );
    assert_eq!(stats.count(TERMINATE), total as u64, "{:?}", stats.calls);

    for group in &control_planes {
        let view = fixture.group(group).await;
        view.assert_settled(sizes[group] as i32, group);
        assert!(view.ids().is_disjoint(&outdated), "{group}: {view:#?}");
    }
    let nodes_after = fixture.group(NODES).await;
    assert_eq!(
        nodes_after.ids(),
        nodes_before.ids(),
        "--instance-group-roles ControlPlane leaves nodes alone"
    );
}

// --- 4. the preview changes nothing ----------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_shows_each_group_and_why_and_changes_nothing() {
    let fixture = ClusterFixture::rolling("r4.example.com").await;
    fixture.create_cluster(&["--zones", "us-east-1a", "--node-count", "2"]);
    fixture.apply();
    fixture.edit_group(NODES, |document| {
        document["spec"]["machineType"] = "m5.large".into();
    });
    fixture.edit_group("control-plane-us-east-1a", |document| {
        document["spec"]["image"] = OLDER_NOBLE_AMD64.into();
    });
    fixture.apply();
    let nodes_before = fixture.group(NODES).await;
    let control_plane_before = fixture.group("control-plane-us-east-1a").await;
    assert_eq!(nodes_before.outdated().len(), 2);

    let store_before = StoreSnapshot::of_bucket(&fixture.aws, &fixture.bucket);
    fixture.aws.reset_stats();
    let output = fixture.rolling_update(&[]).run();
    output.assert_success();
    let stats = fixture.aws.stats();
    assert_eq!(
        stats.mutating_total(),
        0,
        "the preview changed something: {:?}",
        stats.mutating_calls
    );
    assert!(
        stats.count("autoscaling:DescribeAutoScalingGroups") > 0,
        "it looked: {:?}",
        stats.calls
    );
    store_before.assert_unchanged(&StoreSnapshot::of_bucket(&fixture.aws, &fixture.bucket));
    assert_eq!(fixture.group(NODES).await.ids(), nodes_before.ids());
    assert_eq!(
        fixture.group("control-plane-us-east-1a").await.ids(),
        control_plane_before.ids()
    );

    // The table.
    let rows: Vec<Vec<&str>> = output
        .stdout
        .lines()
        .map(|line| line.split_whitespace().collect())
        .filter(|cells: &Vec<&str>| !cells.is_empty())
        .collect();
    assert_eq!(
        rows.first().cloned().unwrap_or_default(),
        [
            "NAME",
            "STATUS",
            "NEEDUPDATE",
            "READY",
            "MIN",
            "TARGET",
            "MAX",
            "NODES"
        ],
        "{output}"
    );
    let row = |group: &str| {
        rows.iter()
            .find(|row| row[0] == group)
            .unwrap_or_else(|| panic!("no row for {group}\n{output}"))
            .clone()
    };
    assert_eq!(
        row(NODES),
        [NODES, "NeedsUpdate", "2", "0", "2", "2", "2", "2"],
        "{output}"
    );
    assert_eq!(
        row("control-plane-us-east-1a"),
        [
            "control-plane-us-east-1a",
            "NeedsUpdate",
            "1",
            "0",
            "1",
            "1",
            "1",
            "1"
        ],
        "{output}"
    );

    // Why, in which order, and how to do it.
    let said = &output.stderr;
    let control_plane_line = said
        .lines()
        .find(|line| line.contains("control-plane-us-east-1a: replace 1 instance"))
        .unwrap_or_else(|| panic!("the control plane's line\n{output}"));
    assert!(
        control_plane_line.contains("one instance at a time"),
        "{output}"
    );
    assert!(
        control_plane_line.contains(&format!(
            "image {NEWEST_NOBLE_AMD64} -> {OLDER_NOBLE_AMD64}"
        )),
        "the reason names the image change\n{output}"
    );
    let nodes_line = said
        .lines()
        .find(|line| line.contains(&format!("{NODES}: replace 2 instance")))
        .unwrap_or_else(|| panic!("the node group's line\n{output}"));
    assert!(
        nodes_line.contains("machineType t3.medium -> m5.large"),
        "{output}"
    );
    assert!(
        nodes_line.contains("maxSurge 1, maxUnavailable 0"),
        "{output}"
    );
    assert!(
        said.find("control-plane-us-east-1a: replace") < said.find(&format!("{NODES}: replace")),
        "the control plane goes first\n{output}"
    );
    assert!(
        said.contains("rolling-update cluster r4.example.com --yes"),
        "{output}"
    );

    // The JSON preview says the same and changes nothing either.
    fixture.aws.reset_stats();
    let json = fixture.rolling_update(&["-o", "json"]).run();
    json.assert_success();
    let document = json.stdout_json();
    let groups = document["groups"].as_array().expect("groups");
    let nodes = groups
        .iter()
        .find(|group| group["name"] == NODES)
        .unwrap_or_else(|| panic!("{NODES} in {document:#}"));
    assert_eq!(nodes["status"], "NeedsUpdate");
    assert_eq!(nodes["needUpdate"], "2");
    assert_eq!(fixture.aws.stats().mutating_total(), 0);
    assert!(
        fixture.progress().is_none(),
        "a preview records no progress"
    );
}
