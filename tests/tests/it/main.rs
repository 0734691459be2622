//! skiff's integration tests: the real `skiff` binary against the local AWS
//! endpoint (see the `skiff_tests` library), one module per area.
//!
//! They are one test binary, not one per file (the layout of uv's
//! `crates/uv/tests/it`): the test code and its dependencies (the AWS SDK
//! among them) are linked once instead of once per file, and [`common`] is
//! compiled once. Run one area with its module name as the filter, e.g.
//! `cargo test -p skiff-tests --test it -- validate_cluster::`.
//!
//! Being one process, the modules share what is per process:
//! `LocalAws::shared()` is one endpoint for all of them (no test asserts on
//! its statistics; those that count calls start their own), and
//! `skiff_tests::unique_name` keeps the names they create on it distinct.

mod addons;
mod api_access;
mod backups;
mod bench;
mod common;
mod config_commands;
mod crash_safety;
mod encryption_rotation;
mod external_etcd;
mod first_run;
mod graviton;
mod harness;
mod history;
mod hostile_input;
mod kubelet;
mod lock_wait;
mod node_bootstrap;
mod node_termination;
mod realistic_aws;
mod realistic_consistency;
mod realistic_slowness;
mod rolling_update;
mod runtime;
mod store_listing;
mod store_safety;
mod store_security;
mod terraform;
mod update_cluster;
mod validate_cluster;
mod versions;
mod windows;
