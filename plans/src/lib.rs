//! The planner: from a cluster spec to the AWS resources it needs, and from
//! those and what exists to a [`Plan`].
//!
//! Pure and deterministic: [`desired::build`] takes the spec and the
//! [`Lookups`] (facts looked up beforehand), [`diff::plan`] takes the desired
//! model and the [`Observed`] resources; neither does I/O. That is what makes
//! the plan previewable, testable with plain data, and safe to save and
//! apply later.
#![deny(missing_docs)]

pub mod canonical;
pub mod critical_path;
pub mod desired;
pub mod diff;
pub mod error;
pub mod graph;
pub mod lookups;
pub mod names;
pub mod observed;
pub mod plan;
pub mod recorded;
pub mod resolve;
pub mod resource;
pub mod teardown;
pub mod terraform;
pub mod user_data;
pub mod windows_user_data;

pub use critical_path::{
    critical_path, remaining_calls, sequential_calls, timed_critical_path, CriticalPath, TimedPath,
    Waits,
};
pub use desired::{build as desired_model, DesiredModel};
pub use diff::{plan, PlanContext};
pub use error::PlanError;
pub use lookups::Lookups;
pub use observed::{Observed, ObservedResource};
pub use plan::{
    Action, FieldChange, GroupImage, Plan, ResourceChange, RollingUpdateNeed, StateBinding, Summary,
};
pub use recorded::{ManagedBy, RecordedContent, RecordedResource};
pub use resource::{
    Attributes, DesiredResource, Id, InvalidResourceKey, Output, ResourceKey, ResourceKind,
};
