//! Test support shared by skiff's crates, in one place: stand-ins for what a
//! test cannot run for real, used as a dev-dependency.
//!
//! - [`kubernetes_api`]: a stand-in Kubernetes API server (nodes, pods,
//!   DaemonSets, evictions, in memory), for skiff-rollout's tests of
//!   `KubernetesApi` and for the integration test of `validate cluster`.
//! - [`sandbox`]: runs a node's real bootstrap script from its user-data in
//!   a temporary root, with stubs for the package managers, systemd and
//!   kubeadm and a private moto server as state store and instance metadata;
//!   for skiff-templates' boot tests and the integration test that boots the
//!   user-data skiff applied.
//! - [`etcd`]: a real TLS etcd cluster (Debian's etcd-server) on loopback
//!   addresses of a reserved `127.A.B.0/24` block, for the tests of etcd
//!   membership healing, snapshots and restores; the sandbox's kubeadm
//!   stand-in runs its members the same way.
//! - [`cloud_config`] reads a `#cloud-config` back as cloud-init does;
//!   [`tools`] finds the external tools tests run.
//!
//! This crate depends on no skiff crate. skiff-rollout and skiff-templates
//! use it in their own tests, and a dependency back on them would compile
//! a second copy of their types into their unit tests. So the API is in
//! plain values: the sandbox takes the user-data as text and the bootstrap
//! paths as [`sandbox::BootstrapPaths`], and the API server answers any
//! client (each caller builds its own `KubernetesApi` from
//! [`kubernetes_api::FakeApiServer::url`]). The few lines that give these
//! skiff's types live next to the tests that need them.
//!
//! The local AWS endpoint (moto behind `tests/harness/local_aws.py`) and
//! the `skiff` command-line runner stay in the `skiff-tests` library: they
//! are about running the real binary, the benchmark binary of that crate
//! (not a test) uses them, and no other crate's tests need them.

#![deny(missing_docs)]

pub mod cloud_config;
pub mod etcd;
pub mod kubernetes_api;
pub mod sandbox;
pub mod tools;
