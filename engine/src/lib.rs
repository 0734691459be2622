//! skiff's operations on a cluster, as a library: what the commands that
//! touch AWS do, whatever prints their results.
//!
//! The promise skiff makes about a cluster's state lives here, in one
//! place: plan under the lock ([`planning`]), record what an apply intends
//! to create before it starts and every outcome behind it ([`journal`]),
//! adopt what an interrupted run left behind ([`reconcile`]), apply and
//! release ([`apply`]). The operations built on it:
//!
//! - [`update`]: preview or apply the changes a cluster's spec needs;
//! - [`saved_plan`]: apply exactly a plan saved for review;
//! - [`delete`]: delete a cluster's AWS resources and forget it;
//! - [`roll`]: replace out-of-date instances, resumably;
//! - [`validate`]: check a cluster against its spec;
//! - [`terraform`]: the Terraform of a cluster instead of a direct apply;
//! - [`backups`]: the etcd backups the control plane wrote to the store;
//! - [`restore`]: rebuilding the control plane from one of them;
//! - [`rotate`]: rotating the key Secrets are encrypted with in etcd;
//! - [`access`]: reaching a cluster's Kubernetes API;
//! - [`store_security`]: the state-store check every operation that
//!   writes secrets passes first.
//!
//! Each operation returns a typed outcome or an [`EngineError`]; what an
//! operator should hear while it runs reaches the caller as a [`Note`]
//! through [`Notes`], apply progress through
//! [`skiff_providers::apply::Reporter`] and rolling-update progress through
//! [`skiff_rollout::EventSink`]. Nothing here parses flags or prints: the
//! `skiff` binary does that. The layers below do the work: `plans` decides
//! (purely), `providers` calls AWS, `rollout` replaces instances, `state`
//! keeps the store.
#![deny(missing_docs)]
// An operation fails once, at its end: the size of its error (which carries
// its causes: AWS, store, plan) costs nothing worth boxing every variant for.
#![allow(clippy::result_large_err)]

pub mod access;
pub mod addons;
pub mod apply;
pub mod architecture;
pub mod backups;
pub mod cluster;
pub mod delete;
mod error;
pub mod journal;
mod notes;
pub mod pki;
pub mod planning;
pub mod reconcile;
pub mod restore;
pub mod roll;
pub mod rotate;
pub mod saved_plan;
pub mod signals;
pub mod store_security;
pub mod terraform;
pub mod update;
pub mod validate;

pub use cluster::{Operation, Session};
pub use error::{EngineError, Refusal, Result};
pub use notes::{Note, Notes};
