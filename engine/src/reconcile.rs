//! Reconciling the recorded state with what exists: an interrupted run may
//! have created resources it never recorded (they are adopted by their
//! tags and names, and their intents dropped), and resources may have gone
//! (they are forgotten). Only under the lock: a preview never writes.

use skiff_plans::recorded::{RecordedContent, RecordedResource};
use skiff_plans::Observed;
use skiff_state::recorded::RecordedState;

/// Brings the recorded state in line with what the refresh found: the IDs
/// and outputs of resources that exist (adopting what an interrupted run
/// created but never recorded) and nothing for what is gone.
pub fn reconcile(state: &mut RecordedState<RecordedContent>, observed: &Observed) -> bool {
    let mut changed = false;
    for (key, resource) in &observed.resources {
        let entry = state.content.resources.get(key);
        let fresh = RecordedResource {
            kind: resource.kind(),
            id: resource.id.clone(),
            outputs: resource.outputs.clone(),
            attributes: Some(resource.attributes.clone()),
        };
        if entry != Some(&fresh) {
            state.content.resources.insert(key.clone(), fresh);
            changed = true;
        }
        // What an interrupted run meant to create is there: adopted.
        if state.content.intents.remove(key).is_some() {
            changed = true;
        }
    }
    let gone: Vec<_> = state
        .content
        .resources
        .keys()
        .filter(|key| !observed.resources.contains_key(*key))
        .cloned()
        .collect();
    for key in gone {
        state.content.resources.remove(&key);
        changed = true;
    }
    changed
}
