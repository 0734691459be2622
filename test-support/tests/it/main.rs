//! skiff-test-support's own tests, in one binary: the real etcd harness and
//! the node sandbox's stand-ins, driven by small scripts of their own (the
//! real bootstrap script is skiff-templates' to test).

mod etcd;
mod sandbox;
