//! Reconcile: what the refresh found replaces what the state recorded.

use skiff_engine::reconcile::reconcile;
use skiff_plans::recorded::{Intent, RecordedContent, RecordedResource};
use skiff_plans::Observed;
use skiff_state::recorded::RecordedState;

use crate::support::{gateway, gateway_key, observed, CLUSTER};

fn empty_state() -> RecordedState<RecordedContent> {
    RecordedState::new(RecordedContent {
        cluster: CLUSTER.to_string(),
        ..RecordedContent::default()
    })
}

#[test]
fn adopts_what_an_interrupted_run_created_but_never_recorded() {
    let mut state = empty_state();
    state.content.intents.insert(
        gateway_key("main"),
        Intent {
            action: skiff_plans::plan::Action::Create,
            token: "skiff-token".to_string(),
        },
    );
    let mut found = Observed::default();
    found
        .resources
        .insert(gateway_key("main"), observed("main", "igw-1"));

    assert!(reconcile(&mut state, &found), "adopting is a change");
    let adopted = &state.content.resources[&gateway_key("main")];
    assert_eq!(adopted.id, "igw-1");
    assert_eq!(adopted.attributes.as_ref(), Some(&gateway()));
    assert!(
        state.content.intents.is_empty(),
        "the intent is settled once its resource is adopted"
    );
}

#[test]
fn keeps_intents_whose_resource_is_not_there() {
    let mut state = empty_state();
    state.content.intents.insert(
        gateway_key("main"),
        Intent {
            action: skiff_plans::plan::Action::Create,
            token: "skiff-token".to_string(),
        },
    );
    assert!(!reconcile(&mut state, &Observed::default()));
    assert_eq!(
        state.content.intents.len(),
        1,
        "the next apply creates it again with the same token"
    );
}

#[test]
fn forgets_what_is_gone_and_takes_new_ids() {
    let mut state = empty_state();
    for (name, id) in [("gone", "igw-0"), ("kept", "igw-old")] {
        state.content.resources.insert(
            gateway_key(name),
            RecordedResource {
                kind: skiff_plans::resource::ResourceKind::InternetGateway,
                id: id.to_string(),
                outputs: Default::default(),
                attributes: Some(gateway()),
            },
        );
    }
    let mut found = Observed::default();
    found
        .resources
        .insert(gateway_key("kept"), observed("kept", "igw-new"));

    assert!(reconcile(&mut state, &found));
    assert!(!state.content.resources.contains_key(&gateway_key("gone")));
    assert_eq!(state.content.resources[&gateway_key("kept")].id, "igw-new");
    // Reconciling again with the same findings changes nothing.
    assert!(!reconcile(&mut state, &found));
}
