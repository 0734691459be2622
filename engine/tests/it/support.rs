//! What the engine's tests share: a folder state store, a cluster's
//! recorded state, small resources and changes.
#![allow(dead_code)]

use std::collections::BTreeMap;

use skiff_plans::plan::{Action, Plan, ResourceChange, PLAN_FORMAT};
use skiff_plans::resource::{Attributes, Id, InternetGatewayAttributes, ResourceKey, ResourceKind};
use skiff_plans::ObservedResource;
use skiff_state::{StateStore, StoreLocation};

/// The cluster of every test.
pub const CLUSTER: &str = "c1.example.com";

/// A state store in a fresh folder (kept alive by the returned guard).
pub async fn folder_store() -> (StateStore, tempfile::TempDir) {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let location = StoreLocation::File {
        path: folder.path().to_path_buf(),
    };
    let store = StateStore::open(&location, None)
        .await
        .expect("the folder store opens");
    (store, folder)
}

/// The key of the internet gateway named `name`.
pub fn gateway_key(name: &str) -> ResourceKey {
    ResourceKey::new(ResourceKind::InternetGateway, name)
}

/// An internet gateway's attributes.
pub fn gateway() -> Attributes {
    Attributes::InternetGateway(InternetGatewayAttributes {
        vpc: Id::Value("vpc-1".to_string()),
        tags: BTreeMap::new(),
    })
}

/// What the refresh would find of an internet gateway.
pub fn observed(name: &str, id: &str) -> ObservedResource {
    ObservedResource {
        key: gateway_key(name),
        id: id.to_string(),
        attributes: gateway(),
        outputs: BTreeMap::new(),
    }
}

/// A create of an internet gateway.
pub fn create(name: &str) -> ResourceChange {
    ResourceChange {
        key: gateway_key(name),
        kind: ResourceKind::InternetGateway,
        action: Action::Create,
        id: None,
        reason: None,
        fields: Vec::new(),
        desired: Some(gateway()),
        current: None,
        depends_on: Vec::new(),
    }
}

/// A plan of these changes for the cluster, made against no recorded state.
pub fn plan(changes: Vec<ResourceChange>) -> Plan {
    Plan {
        format: PLAN_FORMAT,
        cluster: CLUSTER.to_string(),
        region: "us-east-1".to_string(),
        spec_revision: 1,
        state: skiff_plans::StateBinding::none(),
        summary: Default::default(),
        changes,
        rolling_updates: Vec::new(),
        known_outputs: Default::default(),
        instance_groups: Vec::new(),
        warnings: Vec::new(),
    }
}
