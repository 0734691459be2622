//! The executor's scheduling and recording, against in-memory fakes of
//! the cloud ([`FakeOperations`]) and of the recorded state
//! ([`FakeJournal`]). Both stamp every event with one shared counter
//! ([`Clock`]), so "started after that finished" is a comparison of two
//! numbers, whatever the threads did.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use skiff_plans::plan::Summary;
use skiff_plans::resource::{
    AutoScalingGroupAttributes, IamRoleAttributes, Id, Reference, SubnetAttributes, Tags,
    VpcAttributes,
};
use skiff_plans::Output;

use super::*;
use crate::error::ProviderError;

// --- fakes ---------------------------------------------------------------

/// One counter for every event of a test, the fakes' alike.
#[derive(Clone, Default)]
struct Clock(Arc<AtomicU64>);

impl Clock {
    fn tick(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Create,
    Update,
    Delete,
}

/// One call the executor made on the fake cloud.
#[derive(Debug, Clone)]
struct Call {
    verb: Verb,
    key: ResourceKey,
    /// The ID passed (update, delete).
    id: Option<String>,
    /// The intent token passed (create).
    token: Option<String>,
    /// The attributes passed (create, update: desired).
    attributes: Option<Attributes>,
    started: u64,
    finished: u64,
}

/// The cloud, in memory: every call takes a couple of milliseconds (so
/// that independent calls overlap) and is logged with its start and end.
#[derive(Clone)]
struct FakeOperations {
    clock: Clock,
    calls: Arc<StdMutex<Vec<Call>>>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
    /// Calls on these keys fail.
    failing: Arc<BTreeSet<ResourceKey>>,
    /// A call on this key panics.
    panicking: Option<ResourceKey>,
    /// Set once any call finished (to play a stop request).
    after_first_call: Option<Arc<AtomicBool>>,
}

impl FakeOperations {
    fn new(clock: &Clock) -> FakeOperations {
        FakeOperations {
            clock: clock.clone(),
            calls: Arc::default(),
            in_flight: Arc::default(),
            most_in_flight: Arc::default(),
            failing: Arc::default(),
            panicking: None,
            after_first_call: None,
        }
    }

    fn failing(mut self, keys: &[&str]) -> FakeOperations {
        self.failing = Arc::new(keys.iter().map(|key| key_of(key)).collect());
        self
    }

    fn calls(&self) -> Vec<Call> {
        let mut calls = self.calls.lock().expect("calls").clone();
        calls.sort_by_key(|call| call.started);
        calls
    }

    /// The calls on `key`, in order.
    fn calls_on(&self, key: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|call| call.key == key_of(key))
            .collect()
    }

    /// The only call on `key`.
    fn call_on(&self, key: &str) -> Call {
        let calls = self.calls_on(key);
        assert_eq!(calls.len(), 1, "calls on {key}: {calls:?}");
        calls[0].clone()
    }

    async fn call(
        &self,
        verb: Verb,
        key: &ResourceKey,
        id: Option<&str>,
        token: Option<&str>,
        attributes: Option<&Attributes>,
    ) -> Result<(), ProviderError> {
        let started = self.clock.tick();
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.panicking.as_ref() == Some(key) {
            panic!("the fake provider panics on {key}");
        }
        let finished = self.clock.tick();
        self.calls.lock().expect("calls").push(Call {
            verb,
            key: key.clone(),
            id: id.map(str::to_string),
            token: token.map(str::to_string),
            attributes: attributes.cloned(),
            started,
            finished,
        });
        if let Some(flag) = &self.after_first_call {
            flag.store(true, Ordering::SeqCst);
        }
        if self.failing.contains(key) {
            let operation = format!("fake:{verb:?}");
            return Err(ProviderError::other(
                &operation,
                key.as_str(),
                "the fake fails it",
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl ResourceOperations for FakeOperations {
    async fn create(
        &self,
        key: &ResourceKey,
        attributes: &Attributes,
        intent: &str,
    ) -> Result<Applied, ProviderError> {
        self.call(Verb::Create, key, None, Some(intent), Some(attributes))
            .await?;
        Ok(Applied::with_id(&format!("id-of-{key}")))
    }

    async fn update(
        &self,
        key: &ResourceKey,
        id: &str,
        _current: &Attributes,
        desired: &Attributes,
    ) -> Result<Applied, ProviderError> {
        self.call(Verb::Update, key, Some(id), None, Some(desired))
            .await?;
        Ok(Applied::with_id(id))
    }

    async fn delete(
        &self,
        key: &ResourceKey,
        id: &str,
        _current: &Attributes,
    ) -> Result<(), ProviderError> {
        self.call(Verb::Delete, key, Some(id), None, None).await
    }
}

/// What the fake journal was given to record.
// A test's handful of values: boxing would only make the asserts longer.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
enum Recorded {
    Applied { id: String, attributes: Attributes },
    Deleted,
}

/// The recorded state, in memory.
struct FakeJournal {
    clock: Clock,
    /// What `intend` was given, and when it returned.
    intents: StdMutex<Vec<(ResourceKey, Action)>>,
    intended_at: StdMutex<Option<u64>>,
    /// Tokens left by an interrupted run, by key.
    earlier_tokens: BTreeMap<ResourceKey, String>,
    /// Outcomes accepted, in order, with when.
    records: StdMutex<Vec<(ResourceKey, Recorded, u64)>>,
    /// When `flush` was called.
    flushes: StdMutex<Vec<u64>>,
    fail_intend: bool,
    fail_flush: bool,
    /// After this many outcomes, the lock is lost: every later record fails.
    lock_lost_after: Option<usize>,
}

impl FakeJournal {
    fn new(clock: &Clock) -> FakeJournal {
        FakeJournal {
            clock: clock.clone(),
            intents: StdMutex::default(),
            intended_at: StdMutex::default(),
            earlier_tokens: BTreeMap::new(),
            records: StdMutex::default(),
            flushes: StdMutex::default(),
            fail_intend: false,
            fail_flush: false,
            lock_lost_after: None,
        }
    }

    fn records(&self) -> Vec<(ResourceKey, Recorded, u64)> {
        self.records.lock().expect("records").clone()
    }

    fn records_of(&self, key: &str) -> Vec<Recorded> {
        self.records()
            .into_iter()
            .filter(|(recorded, _, _)| *recorded == key_of(key))
            .map(|(_, outcome, _)| outcome)
            .collect()
    }
}

#[async_trait]
impl Journal for FakeJournal {
    async fn intend(
        &self,
        changes: &[&ResourceChange],
    ) -> Result<BTreeMap<ResourceKey, String>, JournalError> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        if self.fail_intend {
            return Err(JournalError::write("the store refused the write"));
        }
        let mut tokens = BTreeMap::new();
        let mut intents = self.intents.lock().expect("intents");
        for change in changes {
            intents.push((change.key.clone(), change.action));
            let token = self
                .earlier_tokens
                .get(&change.key)
                .cloned()
                .unwrap_or_else(|| format!("token-{}", change.key));
            tokens.insert(change.key.clone(), token);
        }
        *self.intended_at.lock().expect("intended_at") = Some(self.clock.tick());
        Ok(tokens)
    }

    async fn record(&self, change: &ResourceChange, outcome: &Outcome) -> Result<(), JournalError> {
        let mut records = self.records.lock().expect("records");
        if let Some(limit) = self.lock_lost_after {
            if records.len() >= limit {
                return Err(JournalError::lock_lost("the lease expired"));
            }
        }
        let recorded = match outcome {
            Outcome::Applied {
                applied,
                attributes,
            } => Recorded::Applied {
                id: applied.id.clone(),
                attributes: attributes.clone(),
            },
            Outcome::Deleted => Recorded::Deleted,
        };
        records.push((change.key.clone(), recorded, self.clock.tick()));
        Ok(())
    }

    async fn flush(&self) -> Result<(), JournalError> {
        self.flushes
            .lock()
            .expect("flushes")
            .push(self.clock.tick());
        if self.fail_flush {
            return Err(JournalError::write("the store is read-only"));
        }
        Ok(())
    }
}

/// Every `finished` call, with the error's text.
#[derive(Default)]
struct FakeReporter {
    finished: StdMutex<Vec<(ResourceKey, Option<String>)>>,
}

impl Reporter for FakeReporter {
    fn started(&self, _change: &ResourceChange) {}

    fn finished(&self, change: &ResourceChange, error: Option<&ChangeError>) {
        self.finished
            .lock()
            .expect("finished")
            .push((change.key.clone(), error.map(ToString::to_string)));
    }
}

// --- plans ---------------------------------------------------------------

fn key_of(key: &str) -> ResourceKey {
    ResourceKey::parse(key).expect("a valid resource key")
}

fn vpc() -> Attributes {
    Attributes::Vpc(VpcAttributes {
        cidr: "10.0.0.0/16".into(),
        enable_dns_support: true,
        enable_dns_hostnames: false,
        tags: Tags::new(),
    })
}

/// A subnet in the VPC of key `vpc`.
fn subnet(cidr: &str) -> Attributes {
    Attributes::Subnet(SubnetAttributes {
        vpc: key_of("vpc").output(Output::Id),
        cidr: cidr.into(),
        zone: "us-east-1a".into(),
        map_public_ip_on_launch: false,
        tags: Tags::new(),
    })
}

fn role(name: &str) -> Attributes {
    Attributes::IamRole(IamRoleAttributes {
        name: name.into(),
        path: "/".into(),
        assume_role_policy: "{}".into(),
        policy_name: "policy".into(),
        policy: "{}".into(),
        tags: Tags::new(),
    })
}

/// An auto scaling group in the subnet of key `subnet/a`.
fn group(name: &str) -> Attributes {
    Attributes::AutoScalingGroup(AutoScalingGroupAttributes {
        name: name.into(),
        launch_template: Id::Value("lt-0123".into()),
        launch_template_version: Id::Value("1".into()),
        min_size: 1,
        max_size: 1,
        subnets: vec![key_of("subnet/a").output(Output::Id)],
        target_groups: Vec::new(),
        mixed_instances: None,
        health_check_type: "EC2".to_string(),
        health_check_grace_period: 600,
        tags: Tags::new(),
    })
}

/// A change of `key`, after the changes `after`; what exists has the ID
/// `id-old-<key>`.
fn change(key: &str, action: Action, attributes: Attributes, after: &[&str]) -> ResourceChange {
    let (current, desired) = match action {
        Action::Create => (None, Some(attributes.clone())),
        Action::Delete => (Some(attributes.clone()), None),
        Action::Update | Action::Replace => (Some(attributes.clone()), Some(attributes.clone())),
    };
    ResourceChange {
        key: key_of(key),
        kind: attributes.kind(),
        action,
        id: (action != Action::Create).then(|| format!("id-old-{key}")),
        reason: None,
        fields: Vec::new(),
        desired,
        current,
        depends_on: after.iter().map(|key| key_of(key)).collect(),
    }
}

fn plan(changes: Vec<ResourceChange>) -> Plan {
    Plan {
        format: skiff_plans::plan::PLAN_FORMAT,
        cluster: "c.example.com".into(),
        region: "us-east-1".into(),
        spec_revision: 1,
        state: skiff_plans::StateBinding::none(),
        summary: Summary::default(),
        changes,
        rolling_updates: Vec::new(),
        known_outputs: KnownOutputs::default(),
        instance_groups: Vec::new(),
        warnings: Vec::new(),
    }
}

/// A network (a VPC, two subnets), a group in one subnet, and a role
/// nothing depends on.
fn network_and_group() -> Plan {
    plan(vec![
        change("vpc", Action::Create, vpc(), &[]),
        change("subnet/a", Action::Create, subnet("10.0.0.0/24"), &["vpc"]),
        change("subnet/b", Action::Create, subnet("10.0.1.0/24"), &["vpc"]),
        change(
            "autoscaling-group/nodes",
            Action::Create,
            group("nodes"),
            &["subnet/a"],
        ),
        change("iam-role/master", Action::Create, role("master"), &[]),
    ])
}

fn never_stop() -> Arc<dyn Fn() -> bool + Send + Sync> {
    Arc::new(|| false)
}

fn options(parallelism: usize) -> ApplyOptions {
    ApplyOptions {
        parallelism,
        before_launch: None,
    }
}

async fn run(
    operations: &FakeOperations,
    journal: &Arc<FakeJournal>,
    plan: &Plan,
    options: ApplyOptions,
) -> ApplyReport {
    apply(
        operations,
        plan,
        options,
        journal.clone(),
        Arc::new(FakeReporter::default()),
        never_stop(),
    )
    .await
}

fn keys(keys: &[ResourceKey]) -> BTreeSet<String> {
    keys.iter().map(ToString::to_string).collect()
}

fn names(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(ToString::to_string).collect()
}

fn failed_keys(report: &ApplyReport) -> BTreeSet<String> {
    report
        .failed
        .iter()
        .map(|(key, _)| key.to_string())
        .collect()
}

// --- ordering ------------------------------------------------------------

#[tokio::test]
async fn a_change_starts_only_once_everything_it_depends_on_has_finished() {
    let clock = Clock::default();
    let operations = FakeOperations::new(&clock);
    let journal = Arc::new(FakeJournal::new(&clock));
    let plan = network_and_group();

    let report = run(&operations, &journal, &plan, options(16)).await;

    assert!(report.is_complete(), "{report:?}");
    for change in &plan.changes {
        let started = operations.call_on(change.key.as_str()).started;
        for dependency in &change.depends_on {
            let finished = operations.call_on(dependency.as_str()).finished;
            assert!(
                started > finished,
                "{} started at {started}, before {dependency} finished at {finished}",
                change.key
            );
        }
    }
    // What depends on nothing does not wait for the longest chain.
    assert!(
        operations.call_on("iam-role/master").started < operations.call_on("vpc").finished,
        "{:?}",
        operations.calls()
    );
    // The subnets got the VPC's ID as it was created.
    let Some(Attributes::Subnet(subnet)) = operations.call_on("subnet/a").attributes else {
        panic!("the subnet's create got no subnet attributes");
    };
    assert_eq!(subnet.vpc, Id::Value("id-of-vpc".into()));
}

#[tokio::test]
async fn no_more_than_parallelism_changes_are_in_flight() {
    let clock = Clock::default();
    let operations = FakeOperations::new(&clock);
    let journal = Arc::new(FakeJournal::new(&clock));
    let plan = plan(
        (0..6)
            .map(|index| {
                let name = format!("role-{index}");
                change(
                    &format!("iam-role/{name}"),
                    Action::Create,
                    role(&name),
                    &[],
                )
            })
            .collect(),
    );

    let report = run(&operations, &journal, &plan, options(2)).await;

    assert_eq!(report.succeeded.len(), 6, "{report:?}");
    assert_eq!(operations.most_in_flight.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn deletes_run_after_the_creates_dependents_first() {
    let clock = Clock::default();
    let operations = FakeOperations::new(&clock);
    let journal = Arc::new(FakeJournal::new(&clock));
    // Listed in build order, the opposite of the order they must go in.
    let plan = plan(vec![
        change("iam-role/new", Action::Create, role("new"), &[]),
        change("vpc", Action::Delete, vpc(), &[]),
        change("subnet/a", Action::Delete, subnet("10.0.0.0/24"), &[]),
        change("subnet/b", Action::Delete, subnet("10.0.1.0/24"), &[]),
        change(
            "autoscaling-group/nodes",
            Action::Delete,
            group("nodes"),
            &[],
        ),
    ]);

    let report = run(&operations, &journal, &plan, options(16)).await;

    assert!(report.is_complete(), "{report:?}");
    let create = operations.call_on("iam-role/new");
    let group = operations.call_on("autoscaling-group/nodes");
    let subnets = [
        operations.call_on("subnet/a"),
        operations.call_on("subnet/b"),
    ];
    let vpc = operations.call_on("vpc");
    assert!(create.finished < group.started, "{:?}", operations.calls());
    for subnet in &subnets {
        assert_eq!(subnet.verb, Verb::Delete);
        assert!(group.finished < subnet.started, "{:?}", operations.calls());
        assert!(subnet.finished < vpc.started, "{:?}", operations.calls());
    }
    // A kind's deletes run together.
    assert!(subnets[0].started < subnets[1].finished && subnets[1].started < subnets[0].finished);
    assert_eq!(vpc.id.as_deref(), Some("id-old-vpc"));
}

#[tokio::test]
async fn a_delete_waits_only_for_what_holds_it() {
    let clock = Clock::default();
    let operations = FakeOperations::new(&clock);
    let journal = Arc::new(FakeJournal::new(&clock));
    // By kind, the role would go after the group; nothing of the group
    // holds a role, so both go at once, and the subnet still waits for the
    // group whose instances use it.
    let plan = plan(vec![
        change("vpc", Action::Delete, vpc(), &[]),
        change("subnet/a", Action::Delete, subnet("10.0.0.0/24"), &[]),
        change("iam-role/old", Action::Delete, role("old"), &[]),
        change(
            "autoscaling-group/nodes",
            Action::Delete,
            group("nodes"),
            &[],
        ),
    ]);

    let report = run(&operations, &journal, &plan, options(16)).await;

    assert!(report.is_complete(), "{report:?}");
    let group = operations.call_on("autoscaling-group/nodes");
    let role = operations.call_on("iam-role/old");
    let subnet = operations.call_on("subnet/a");
    let vpc = operations.call_on("vpc");
    assert!(
        role.started < group.finished && group.started < role.finished,
        "the role's delete waited for the group's: {:?}",
        operations.calls()
    );
    assert!(group.finished < subnet.started, "{:?}", operations.calls());
    assert!(subnet.finished < vpc.started, "{:?}", operations.calls());
}

#[tokio::test]
async fn a_failed_delete_keeps_what_it_holds() {
    let clock = Clock::default();
    let operations = FakeOperations::new(&clock).failing(&["autoscaling-group/nodes"]);
    let journal = Arc::new(FakeJournal::new(&clock));
    let plan = plan(vec![
        change("vpc", Action::Delete, vpc(), &[]),
        change("subnet/a", Action::Delete, subnet("10.0.0.0/24"), &[]),
        change("iam-role/old", Action::Delete, role("old"), &[]),
        change(
            "autoscaling-group/nodes",
            Action::Delete,
            group("nodes"),
            &[],
        ),
    ]);

    let report = run(&operations, &journal, &plan, options(16)).await;

    assert_eq!(failed_keys(&report), names(&["autoscaling-group/nodes"]));
    // The subnet is still in use by the group, and the VPC by the subnet;
    // the role is independent and goes.
    assert_eq!(keys(&report.skipped), names(&["subnet/a", "vpc"]));
    assert!(
        report.succeeded.contains(&key_of("iam-role/old")),
        "{report:?}"
    );
}

// --- failures ------------------------------------------------------------

#[tokio::test]
async fn a_failed_create_stops_only_what_depends_on_it() {
    let clock = Clock::default();
    let operations = FakeOperations::new(&clock).failing(&["subnet/a"]);
    let journal = Arc::new(FakeJournal::new(&clock));
    let mut plan = network_and_group();
    plan.changes.push(change(
        "iam-role/after-nodes",
        Action::Create,
        role("after-nodes"),
        &["autoscaling-group/nodes"],
    ));
    plan.changes
        .push(change("iam-role/old", Action::Delete, role("old"), &[]));

    let report = run(&operations, &journal, &plan, options(16)).await;

    assert!(!report.is_complete());
    assert_eq!(failed_keys(&report), names(&["subnet/a"]));
    assert!(matches!(report.failed[0].1, ChangeError::Provider(_)));
    assert_eq!(
        report.failed[0].1.to_string(),
        "fake:Create for subnet/a failed: the fake fails it"
    );
    // Its dependants, transitively; and the deletes, which could remove
    // what the failed part still needs.
    assert_eq!(
        keys(&report.skipped),
        names(&[
            "autoscaling-group/nodes",
            "iam-role/after-nodes",
            "iam-role/old"
        ])
    );
    assert_eq!(
        keys(&report.succeeded),
        names(&["vpc", "subnet/b", "iam-role/master"])
    );
    for skipped in &report.skipped {
        assert!(operations.calls_on(skipped.as_str()).is_empty());
    }
    assert!(journal.records_of("subnet/a").is_empty());
    assert_eq!(journal.flushes.lock().expect("flushes").len(), 1);
}

#[tokio::test]
async fn a_reference_without_a_value_fails_its_change_without_a_call() {
    let clock = Clock::default();
    let operations = FakeOperations::new(&clock);
    let journal = Arc::new(FakeJournal::new(&clock));
    // The subnet refers to a VPC that neither exists nor is planned.
    let plan = plan(vec![change(
        "subnet/a",
        Action::Create,
        subnet("10.0.0.0/24"),
        &[],
    )]);

    let report = run(&operations, &journal, &plan, options(16)).await;

    assert_eq!(failed_keys(&report), names(&["subnet/a"]));
    let reference = Reference {
        key: key_of("vpc"),
        output: Output::Id,
    };
    assert_eq!(
        report.failed[0].1.to_string(),
        format!("apply for subnet/a failed: needs {reference} which did not get a value")
    );
    assert!(operations.calls().is_empty());
}

#[tokio::test]
#[should_panic(expected = "the fake provider panics on vpc")]
async fn a_change_that_panics_panics_the_apply() {
    let clock = Clock::default();
    let mut operations = FakeOperations::new(&clock);
    operations.panicking = Some(key_of("vpc"));
    let journal = Arc::new(FakeJournal::new(&clock));

    run(&operations, &journal, &network_and_group(), options(16)).await;
}

// --- the journal ---------------------------------------------------------

#[tokio::test]
async fn every_create_is_intended_before_the_first_change_starts() {
    let clock = Clock::default();
    let operations = FakeOperations::new(&clock);
    let journal = Arc::new(FakeJournal::new(&clock));
    let plan = plan(vec![
        change("vpc", Action::Create, vpc(), &[]),
        change("subnet/a", Action::Create, subnet("10.0.0.0/24"), &["vpc"]),
        change("subnet/b", Action::Replace, subnet("10.0.1.0/24"), &["vpc"]),
        change("iam-role/kept", Action::Update, role("kept"), &[]),
        change("iam-role/old", Action::Delete, role("old"), &[]),
    ]);

    let report = run(&operations, &journal, &plan, options(16)).await;

    assert!(report.is_complete(), "{report:?}");
    let intents: BTreeMap<String, Action> = journal
        .intents
        .lock()
        .expect("intents")
        .iter()
        .map(|(key, action)| (key.to_string(), *action))
        .collect();
    let expected: BTreeMap<String, Action> = [
        ("vpc", Action::Create),
        ("subnet/a", Action::Create),
        ("subnet/b", Action::Replace),
    ]
    .into_iter()
    .map(|(key, action)| (key.to_string(), action))
    .collect();
    assert_eq!(intents, expected);
    let intended_at = journal
        .intended_at
        .lock()
        .expect("intended_at")
        .expect("intend returned");
    let calls = operations.calls();
    assert_eq!(calls.len(), 6, "{calls:?}");
    assert!(
        calls.iter().all(|call| call.started > intended_at),
        "intended at {intended_at}: {calls:?}"
    );
}

#[tokio::test]
async fn the_intent_tokens_reach_the_creates() {
    let clock = Clock::default();
    let operations = FakeOperations::new(&clock);
    let mut journal = FakeJournal::new(&clock);
    journal.earlier_tokens.insert(
        key_of("subnet/a"),
        "token-left-by-an-interrupted-run".into(),
    );
    let journal = Arc::new(journal);

    let report = run(&operations, &journal, &network_and_group(), options(16)).await;

    assert!(report.is_complete(), "{report:?}");
    assert_eq!(
        operations.call_on("subnet/a").token.as_deref(),
        Some("token-left-by-an-interrupted-run")
    );
    for key in [
        "vpc",
        "subnet/b",
        "autoscaling-group/nodes",
        "iam-role/master",
    ] {
        assert_eq!(
            operations.call_on(key).token,
            Some(format!("token-{key}")),
            "{key}"
        );
    }
}

#[tokio::test]
async fn a_replace_deletes_then_creates_with_its_intent_token() {
    let clock = Clock::default();
    let operations = FakeOperations::new(&clock);
    let journal = Arc::new(FakeJournal::new(&clock));
    let mut plan = plan(vec![change(
        "subnet/a",
        Action::Replace,
        subnet("10.0.0.0/24"),
        &[],
    )]);
    plan.known_outputs.insert(
        key_of("vpc"),
        BTreeMap::from([(Output::Id, "vpc-existing".to_string())]),
    );

    let report = run(&operations, &journal, &plan, options(16)).await;

    assert!(report.is_complete(), "{report:?}");
    let calls = operations.calls_on("subnet/a");
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].verb, Verb::Delete);
    assert_eq!(calls[0].id.as_deref(), Some("id-old-subnet/a"));
    assert_eq!(calls[1].verb, Verb::Create);
    assert_eq!(calls[1].token.as_deref(), Some("token-subnet/a"));
    assert!(calls[0].finished < calls[1].started);
    // The delete is recorded before the create starts: a run killed in
    // between does not believe the old subnet still exists.
    let records = journal.records();
    assert_eq!(records[0].1, Recorded::Deleted);
    assert!(records[0].2 < calls[1].started);
    let mut attributes = subnet("10.0.0.0/24");
    if let Attributes::Subnet(subnet) = &mut attributes {
        subnet.vpc = Id::Value("vpc-existing".into());
    }
    assert_eq!(
        journal.records_of("subnet/a"),
        vec![
            Recorded::Deleted,
            Recorded::Applied {
                id: "id-of-subnet/a".into(),
                attributes
            }
        ]
    );
}

#[tokio::test]
async fn a_failed_intend_changes_nothing() {
    let clock = Clock::default();
    let operations = FakeOperations::new(&clock);
    let mut journal = FakeJournal::new(&clock);
    journal.fail_intend = true;
    let journal = Arc::new(journal);
    let plan = network_and_group();

    let report = run(&operations, &journal, &plan, options(16)).await;

    assert!(operations.calls().is_empty());
    assert!(journal.records().is_empty());
    assert!(!report.is_complete());
    assert!(report.succeeded.is_empty() && report.failed.is_empty());
    assert_eq!(report.skipped.len(), plan.changes.len());
    let Some(error) = &report.journal else {
        panic!("the report does not say the intents failed: {report:?}");
    };
    assert!(matches!(
        error,
        RecordingError::Intents(JournalError::Write { .. })
    ));
    assert_eq!(
        error.to_string(),
        "recording what the apply is about to create failed: writing the recorded state failed: the store refused the write"
    );
}

#[tokio::test]
async fn every_outcome_is_recorded_and_the_journal_flushed_last() {
    let clock = Clock::default();
    let operations = FakeOperations::new(&clock);
    let journal = Arc::new(FakeJournal::new(&clock));
    let plan = plan(vec![
        change("vpc", Action::Create, vpc(), &[]),
        change("subnet/a", Action::Create, subnet("10.0.0.0/24"), &["vpc"]),
        change("iam-role/kept", Action::Update, role("kept"), &[]),
        change("iam-role/old", Action::Delete, role("old"), &[]),
    ]);

    let report = run(&operations, &journal, &plan, options(16)).await;

    assert!(report.is_complete(), "{report:?}");
    assert_eq!(
        journal.records_of("vpc"),
        vec![Recorded::Applied {
            id: "id-of-vpc".into(),
            attributes: vpc()
        }]
    );
    // Recorded as applied: with the references resolved.
    let mut resolved = subnet("10.0.0.0/24");
    if let Attributes::Subnet(subnet) = &mut resolved {
        subnet.vpc = Id::Value("id-of-vpc".into());
    }
    assert_eq!(
        journal.records_of("subnet/a"),
        vec![Recorded::Applied {
            id: "id-of-subnet/a".into(),
            attributes: resolved
        }]
    );
    assert_eq!(
        journal.records_of("iam-role/kept"),
        vec![Recorded::Applied {
            id: "id-old-iam-role/kept".into(),
            attributes: role("kept")
        }]
    );
    assert_eq!(journal.records_of("iam-role/old"), vec![Recorded::Deleted]);
    let flushes = journal.flushes.lock().expect("flushes").clone();
    assert_eq!(flushes.len(), 1);
    let last_record = journal.records().iter().map(|(_, _, at)| *at).max();
    assert!(Some(flushes[0]) > last_record);
}

#[tokio::test]
async fn an_update_keeps_the_outputs_it_did_not_produce() {
    let clock = Clock::default();
    let operations = FakeOperations::new(&clock);
    let mut plan = plan(vec![change(
        "iam-role/kept",
        Action::Update,
        role("kept"),
        &[],
    )]);
    plan.known_outputs.insert(
        key_of("iam-role/kept"),
        BTreeMap::from([(Output::Arn, "arn:aws:iam::1:role/kept".to_string())]),
    );
    let recorded = Arc::new(StdMutex::new(None));
    struct Outputs(Arc<StdMutex<Option<Applied>>>);
    #[async_trait]
    impl Journal for Outputs {
        async fn intend(
            &self,
            _changes: &[&ResourceChange],
        ) -> Result<BTreeMap<ResourceKey, String>, JournalError> {
            Ok(BTreeMap::new())
        }
        async fn record(
            &self,
            _change: &ResourceChange,
            outcome: &Outcome,
        ) -> Result<(), JournalError> {
            if let Outcome::Applied { applied, .. } = outcome {
                *self.0.lock().expect("applied") = Some(applied.clone());
            }
            Ok(())
        }
        async fn flush(&self) -> Result<(), JournalError> {
            Ok(())
        }
    }

    let report = apply(
        &operations,
        &plan,
        options(16),
        Arc::new(Outputs(recorded.clone())),
        Arc::new(FakeReporter::default()),
        never_stop(),
    )
    .await;

    assert!(report.is_complete(), "{report:?}");
    let applied = recorded.lock().expect("applied").clone().expect("recorded");
    assert_eq!(
        applied.outputs.get(&Output::Arn).map(String::as_str),
        Some("arn:aws:iam::1:role/kept")
    );
    assert_eq!(
        applied.outputs.get(&Output::Id).map(String::as_str),
        Some("id-old-iam-role/kept")
    );
}

#[tokio::test]
async fn a_failed_flush_is_reported() {
    let clock = Clock::default();
    let operations = FakeOperations::new(&clock);
    let mut journal = FakeJournal::new(&clock);
    journal.fail_flush = true;
    let journal = Arc::new(journal);
    let plan = network_and_group();

    let report = run(&operations, &journal, &plan, options(16)).await;

    assert_eq!(report.succeeded.len(), plan.changes.len());
    assert!(!report.is_complete());
    let Some(error) = &report.journal else {
        panic!("the report does not say the flush failed: {report:?}");
    };
    assert!(matches!(error, RecordingError::Outcomes(_)));
    assert_eq!(
        error.to_string(),
        "recording the outcomes failed: writing the recorded state failed: the store is read-only"
    );
}

#[tokio::test]
async fn a_lost_lock_fails_the_change_it_could_not_record_and_stops_its_dependants() {
    let clock = Clock::default();
    let operations = FakeOperations::new(&clock);
    let mut journal = FakeJournal::new(&clock);
    // The VPC is recorded; the subnet, made next, is not.
    journal.lock_lost_after = Some(1);
    let journal = Arc::new(journal);
    let plan = plan(vec![
        change("vpc", Action::Create, vpc(), &[]),
        change("subnet/a", Action::Create, subnet("10.0.0.0/24"), &["vpc"]),
        change(
            "autoscaling-group/nodes",
            Action::Create,
            group("nodes"),
            &["subnet/a"],
        ),
        change("iam-role/old", Action::Delete, role("old"), &[]),
    ]);

    let report = run(&operations, &journal, &plan, options(1)).await;

    assert_eq!(keys(&report.succeeded), names(&["vpc"]));
    assert_eq!(failed_keys(&report), names(&["subnet/a"]));
    let error = &report.failed[0].1;
    assert!(
        matches!(
            error,
            ChangeError::Journal {
                source: JournalError::LockLost { .. },
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "recording the outcome of subnet/a failed: the cluster lock is no longer held: the lease expired"
    );
    assert_eq!(
        keys(&report.skipped),
        names(&["autoscaling-group/nodes", "iam-role/old"])
    );
    assert!(operations.calls_on("autoscaling-group/nodes").is_empty());
    assert!(operations.calls_on("iam-role/old").is_empty());
}

#[tokio::test]
async fn once_an_outcome_cannot_be_recorded_nothing_more_starts() {
    let clock = Clock::default();
    let operations = FakeOperations::new(&clock);
    let mut journal = FakeJournal::new(&clock);
    journal.lock_lost_after = Some(1);
    let journal = Arc::new(journal);
    // Independent of each other: only the journal's failure stops them.
    let plan = plan(
        ["a", "b", "c", "d"]
            .iter()
            .map(|name| change(&format!("iam-role/{name}"), Action::Create, role(name), &[]))
            .collect(),
    );

    let report = run(&operations, &journal, &plan, options(1)).await;

    assert_eq!(report.succeeded.len(), 1, "{report:?}");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.skipped.len(), 2, "{report:?}");
    assert_eq!(operations.calls().len(), 2);
    let failed = &report.failed[0].0;
    let failed_call = operations.call_on(failed.as_str());
    assert!(operations
        .calls()
        .iter()
        .all(|call| call.started <= failed_call.started));
}

#[tokio::test]
async fn a_stop_request_lets_changes_in_flight_finish_and_skips_the_rest() {
    let clock = Clock::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut operations = FakeOperations::new(&clock);
    operations.after_first_call = Some(stop.clone());
    let journal = Arc::new(FakeJournal::new(&clock));
    let mut plan = network_and_group();
    plan.changes
        .push(change("iam-role/old", Action::Delete, role("old"), &[]));
    let stop_check = {
        let stop = stop.clone();
        Arc::new(move || stop.load(Ordering::SeqCst)) as Arc<dyn Fn() -> bool + Send + Sync>
    };

    let report = apply(
        &operations,
        &plan,
        options(1),
        journal.clone(),
        Arc::new(FakeReporter::default()),
        stop_check,
    )
    .await;

    let calls = operations.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(keys(&report.succeeded), names(&[calls[0].key.as_str()]));
    assert_eq!(
        journal.records().len(),
        1,
        "the change in flight is recorded"
    );
    assert!(report.failed.is_empty());
    assert_eq!(report.skipped.len(), plan.changes.len() - 1, "{report:?}");
    assert!(!report.is_complete());
}

// --- the launch gate -----------------------------------------------------

#[tokio::test]
async fn auto_scaling_groups_wait_for_the_launch_gate_and_nothing_else_does() {
    let clock = Clock::default();
    let operations = FakeOperations::new(&clock);
    let journal = Arc::new(FakeJournal::new(&clock));
    let opened_at = Arc::new(AtomicU64::new(0));
    let before_launch = {
        let clock = clock.clone();
        let opened_at = opened_at.clone();
        gate(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            opened_at.store(clock.tick(), Ordering::SeqCst);
            Ok(())
        })
    };

    let report = run(
        &operations,
        &journal,
        &network_and_group(),
        ApplyOptions {
            parallelism: 16,
            before_launch: Some(before_launch),
        },
    )
    .await;

    assert!(report.is_complete(), "{report:?}");
    let opened_at = opened_at.load(Ordering::SeqCst);
    assert!(opened_at > 0);
    assert!(operations.call_on("autoscaling-group/nodes").started > opened_at);
    for key in ["vpc", "subnet/a", "subnet/b", "iam-role/master"] {
        assert!(operations.call_on(key).started < opened_at, "{key}");
    }
}

#[tokio::test]
async fn a_failed_launch_gate_fails_only_the_auto_scaling_groups() {
    let clock = Clock::default();
    let operations = FakeOperations::new(&clock);
    let journal = Arc::new(FakeJournal::new(&clock));
    let reporter = Arc::new(FakeReporter::default());
    let mut plan = network_and_group();
    plan.changes.push(change(
        "autoscaling-group/masters",
        Action::Create,
        group("masters"),
        &["subnet/a"],
    ));
    plan.changes.push(change(
        "iam-role/after-nodes",
        Action::Create,
        role("after-nodes"),
        &["autoscaling-group/nodes"],
    ));
    // As the CLI makes it: an anyhow error with context, whose whole
    // chain must reach the message.
    let before_launch = gate(async {
        Err(GateError::new(
            anyhow::anyhow!("pki/ca.crt is not a certificate")
                .context("cannot prepare the PKI of cluster c.example.com"),
        ))
    });

    let report = apply(
        &operations,
        &plan,
        ApplyOptions {
            parallelism: 16,
            before_launch: Some(before_launch),
        },
        journal.clone(),
        reporter.clone(),
        never_stop(),
    )
    .await;

    assert_eq!(
        failed_keys(&report),
        names(&["autoscaling-group/masters", "autoscaling-group/nodes"])
    );
    for (key, error) in &report.failed {
        assert!(matches!(error, ChangeError::Launch { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!("launch for {key} failed: its instances cannot launch: cannot prepare the PKI of cluster c.example.com: pki/ca.crt is not a certificate")
        );
        assert!(operations.calls_on(key.as_str()).is_empty());
    }
    assert_eq!(keys(&report.skipped), names(&["iam-role/after-nodes"]));
    assert_eq!(
        keys(&report.succeeded),
        names(&["vpc", "subnet/a", "subnet/b", "iam-role/master"])
    );
    let reported: Vec<(ResourceKey, Option<String>)> =
        reporter.finished.lock().expect("finished").clone();
    let nodes = reported
        .iter()
        .find(|(key, _)| *key == key_of("autoscaling-group/nodes"))
        .and_then(|(_, error)| error.clone())
        .expect("the reporter heard of the group's failure");
    assert!(nodes.contains("its instances cannot launch: cannot prepare the PKI"));
}
