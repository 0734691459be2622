//! Applying under the lock with a fake cloud and a real (folder) store:
//! intents are in the store before the first create, outcomes after, the
//! lock is released, and a lock lost mid-apply stops what is left.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use skiff_engine::apply::{apply_locked, ApplyRun};
use skiff_engine::cluster::{read_recorded, Session};
use skiff_engine::{EngineError, Note, Notes};
use skiff_plans::plan::ResourceChange;
use skiff_plans::resource::{Attributes, ResourceKey};
use skiff_providers::apply::{ChangeError, ResourceOperations};
use skiff_providers::operations::Applied;
use skiff_providers::ProviderError;
use skiff_state::StateStore;

use crate::support::{create, folder_store, gateway_key, plan, CLUSTER};

/// Notes are collected, not printed.
#[derive(Default)]
struct Collected(Mutex<Vec<Note>>);

impl Notes for Collected {
    fn note(&self, note: Note) {
        self.0.lock().expect("notes").push(note);
    }
}

/// What the fake cloud saw of the store when a create started.
#[derive(Clone)]
struct FakeCloud {
    store: Arc<StateStore>,
    /// Keys intended in the store when each create started, by key.
    intended_at_create: Arc<Mutex<BTreeMap<ResourceKey, Vec<ResourceKey>>>>,
    /// Breaks the cluster lock (as `skiff state unlock` would) when this
    /// key is created, then waits for the holder to notice.
    break_lock_at: Option<(ResourceKey, String)>,
}

#[async_trait]
impl ResourceOperations for FakeCloud {
    async fn create(
        &self,
        key: &ResourceKey,
        _attributes: &Attributes,
        _intent: &str,
    ) -> Result<Applied, ProviderError> {
        let recorded = read_recorded(&self.store, CLUSTER)
            .await
            .expect("the state reads");
        self.intended_at_create.lock().expect("log").insert(
            key.clone(),
            recorded.state.content.intents.keys().cloned().collect(),
        );
        if let Some((at, lock_id)) = &self.break_lock_at {
            if at == key {
                self.store.unlock(CLUSTER, lock_id).await.expect("unlocked");
                // The holder's renewal (a third of its 1 s lease) notices.
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
        }
        Ok(Applied {
            id: format!("igw-{}", key.name()),
            outputs: Default::default(),
        })
    }

    async fn update(
        &self,
        key: &ResourceKey,
        id: &str,
        _current: &Attributes,
        _desired: &Attributes,
    ) -> Result<Applied, ProviderError> {
        Ok(Applied {
            id: id.to_string(),
            outputs: BTreeMap::from([(skiff_plans::Output::Id, key.to_string())]),
        })
    }

    async fn delete(
        &self,
        _key: &ResourceKey,
        _id: &str,
        _current: &Attributes,
    ) -> Result<(), ProviderError> {
        Ok(())
    }
}

struct Quiet;

impl skiff_providers::apply::Reporter for Quiet {
    fn started(&self, _change: &ResourceChange) {}
    fn finished(&self, _change: &ResourceChange, _error: Option<&ChangeError>) {}
}

fn session<'a>(store: &'a StateStore, aws: &'a aws_config::SdkConfig) -> Session<'a> {
    Session {
        store,
        aws,
        command_line: "skiff test".to_string(),
        notes: Arc::new(Collected::default()),
        insecure_store: Default::default(),
        lock_timeout: std::time::Duration::ZERO,
    }
}

fn run() -> ApplyRun {
    ApplyRun {
        parallelism: 4,
        stop: Arc::new(AtomicBool::new(false)),
        reporter: Arc::new(Quiet),
    }
}

/// `b` depends on `a`; `c` stands alone.
fn chain() -> Vec<ResourceChange> {
    let mut b = create("b");
    b.depends_on = vec![gateway_key("a")];
    vec![create("a"), b, create("c")]
}

#[tokio::test]
async fn intents_come_before_the_first_create_and_outcomes_after_the_last() {
    let (store, _folder) = folder_store().await;
    let store = Arc::new(store);
    let aws = aws_config::SdkConfig::builder().build();
    let session = session(&store, &aws);
    let cloud = FakeCloud {
        store: store.clone(),
        intended_at_create: Default::default(),
        break_lock_at: None,
    };
    let lock = Arc::new(store.lock(CLUSTER, "test").await.expect("the lock"));
    let recorded = read_recorded(&store, CLUSTER).await.expect("no state yet");
    let plan = plan(chain());

    let applied = apply_locked(&session, &cloud, &plan, lock, recorded, None, run())
        .await
        .expect("the apply completes");
    assert_eq!(applied.report.succeeded.len(), 3);

    let seen = cloud.intended_at_create.lock().expect("log").clone();
    assert_eq!(seen.len(), 3, "every create reached the cloud");
    for (key, intended) in &seen {
        assert!(
            intended.contains(key),
            "{key} was created before its intent was in the store (intended then: {intended:?})"
        );
    }
    let recorded = read_recorded(&store, CLUSTER)
        .await
        .expect("the state reads");
    assert!(
        recorded.state.content.intents.is_empty(),
        "every intent settled"
    );
    let ids: Vec<&str> = recorded
        .state
        .content
        .resources
        .values()
        .map(|resource| resource.id.as_str())
        .collect();
    assert_eq!(ids, vec!["igw-a", "igw-b", "igw-c"]);
    assert!(
        store.lock_info(CLUSTER).await.expect("lock read").is_none(),
        "the lock is released"
    );
}

#[tokio::test]
async fn a_lock_lost_mid_apply_stops_what_is_left_and_says_why() {
    let (store, _folder) = folder_store().await;
    let store = Arc::new(store);
    let aws = aws_config::SdkConfig::builder().build();
    let session = session(&store, &aws);
    let lock = Arc::new(
        store
            .lock_with_lease(CLUSTER, "test", Duration::from_secs(1))
            .await
            .expect("the lock"),
    );
    let cloud = FakeCloud {
        store: store.clone(),
        intended_at_create: Default::default(),
        break_lock_at: Some((gateway_key("a"), lock.info().id.clone())),
    };
    let recorded = read_recorded(&store, CLUSTER).await.expect("no state yet");
    // Only `a` at first, so that nothing else is in flight when it breaks
    // the lock: `b` waits for `a`.
    let mut changes = chain();
    changes.truncate(2);
    let plan = plan(changes);

    let error = apply_locked(&session, &cloud, &plan, lock, recorded, None, run())
        .await
        .expect_err("the apply cannot finish without the lock");
    let EngineError::ApplyIncomplete(failure) = &error else {
        panic!("not an incomplete apply: {error}");
    };
    assert!(failure.lock_lost.is_some(), "it says the lock was lost");
    assert_eq!(
        failure.report.skipped,
        vec![gateway_key("b")],
        "b never started"
    );
    assert!(
        !cloud
            .intended_at_create
            .lock()
            .expect("log")
            .contains_key(&gateway_key("b")),
        "nothing reached the cloud after the lock was lost"
    );
    assert!(
        error.to_string().contains("the cluster lock was lost"),
        "{error}"
    );
    // `a` was created but could not be recorded: it stays intended, so the
    // next run adopts it.
    let recorded = read_recorded(&store, CLUSTER)
        .await
        .expect("the state reads");
    assert!(recorded
        .state
        .content
        .intents
        .contains_key(&gateway_key("a")));
}
