//! The intent journal against a real folder store and a real lock: intents
//! are in the store before `intend` returns, outcomes after `flush`, and
//! nothing is written once the lock is lost.

use std::sync::Arc;
use std::time::Duration;

use skiff_engine::journal::StateJournal;
use skiff_plans::recorded::RecordedContent;
use skiff_providers::apply::{Journal, Outcome};
use skiff_providers::operations::Applied;
use skiff_state::recorded::{self, RecordedState};
use skiff_state::StateStore;

use crate::support::{create, folder_store, gateway, gateway_key, plan, CLUSTER};

async fn stored(store: &StateStore) -> RecordedState<RecordedContent> {
    recorded::read::<RecordedContent>(store.objects().as_ref(), CLUSTER)
        .await
        .expect("the state reads")
        .expect("a state was written")
        .state
}

fn fresh_state() -> RecordedState<RecordedContent> {
    RecordedState::new(RecordedContent {
        cluster: CLUSTER.to_string(),
        ..RecordedContent::default()
    })
}

#[tokio::test]
async fn intents_are_in_the_store_before_intend_returns_and_outcomes_after_flush() {
    let (store, _folder) = folder_store().await;
    let lock = Arc::new(store.lock(CLUSTER, "test").await.expect("the lock"));
    let changes = vec![create("a"), create("b")];
    let plan = plan(changes.clone());
    let journal = Arc::new(StateJournal::new(
        &store,
        &plan,
        lock.clone(),
        fresh_state(),
        None,
    ));
    let writer = journal.start_writer();

    let planned: Vec<&_> = changes.iter().collect();
    let tokens = journal.intend(&planned).await.expect("intents are written");
    let state = stored(&store).await;
    assert_eq!(
        state.content.intents.keys().cloned().collect::<Vec<_>>(),
        vec![gateway_key("a"), gateway_key("b")],
        "every create is intended in the store before anything starts"
    );
    assert_eq!(
        tokens[&gateway_key("a")],
        state.content.intents[&gateway_key("a")].token
    );
    assert_ne!(tokens[&gateway_key("a")], tokens[&gateway_key("b")]);

    let outcome = Outcome::Applied {
        applied: Applied {
            id: "igw-a".to_string(),
            outputs: Default::default(),
        },
        attributes: gateway(),
    };
    journal
        .record(&changes[0], &outcome)
        .await
        .expect("recorded");
    journal.flush().await.expect("flushed");
    journal.stop_writer(writer).await;
    let state = stored(&store).await;
    assert_eq!(state.content.resources[&gateway_key("a")].id, "igw-a");
    assert!(!state.content.intents.contains_key(&gateway_key("a")));
    assert!(
        state.content.intents.contains_key(&gateway_key("b")),
        "b is still intended: a run killed now adopts or creates it with its token"
    );
    lock.release().await.expect("released");
}

#[tokio::test]
async fn an_interrupted_runs_intent_keeps_its_token() {
    let (store, _folder) = folder_store().await;
    let lock = Arc::new(store.lock(CLUSTER, "test").await.expect("the lock"));
    let changes = vec![create("a")];
    let plan = plan(changes.clone());
    let planned: Vec<&_> = changes.iter().collect();
    let first = {
        let journal = StateJournal::new(&store, &plan, lock.clone(), fresh_state(), None);
        journal.intend(&planned).await.expect("intents are written")
    };
    // The run died; the next one starts from what it left.
    let stored = recorded::read::<RecordedContent>(store.objects().as_ref(), CLUSTER)
        .await
        .expect("the state reads")
        .expect("a state was written");
    let journal = StateJournal::new(
        &store,
        &plan,
        lock.clone(),
        stored.state,
        Some(stored.version),
    );
    let second = journal.intend(&planned).await.expect("intents are written");
    assert_eq!(
        first, second,
        "the same token, so EC2 answers with what the first run made"
    );
    lock.release().await.expect("released");
}

#[tokio::test]
async fn nothing_is_recorded_once_the_lock_is_lost() {
    let (store, _folder) = folder_store().await;
    let lock = Arc::new(
        store
            .lock_with_lease(CLUSTER, "test", Duration::from_secs(1))
            .await
            .expect("the lock"),
    );
    let changes = vec![create("a")];
    let plan = plan(changes.clone());
    let journal = StateJournal::new(&store, &plan, lock.clone(), fresh_state(), None);
    let planned: Vec<&_> = changes.iter().collect();
    journal.intend(&planned).await.expect("intents are written");

    // Someone breaks the lock (`skiff state unlock`); the renewal notices.
    store
        .unlock(CLUSTER, &lock.info().id)
        .await
        .expect("unlocked");
    tokio::time::timeout(Duration::from_secs(10), lock.lost())
        .await
        .expect("the lock's loss is noticed within its lease");

    let outcome = Outcome::Applied {
        applied: Applied {
            id: "igw-a".to_string(),
            outputs: Default::default(),
        },
        attributes: gateway(),
    };
    let refused = journal.record(&changes[0], &outcome).await;
    assert!(
        refused.is_err(),
        "an outcome is refused once the lock is lost"
    );
    let state = stored(&store).await;
    assert!(
        state.content.resources.is_empty(),
        "nothing was written without the lock"
    );
}
