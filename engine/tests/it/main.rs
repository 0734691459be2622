//! The engine's tests: its pieces against a real (folder) state store and
//! a real cluster lock, with plain data standing in for AWS.

mod apply;
mod journal;
mod reconcile;
mod support;
