//! Helpers shared by the integration tests of skiff-templates: realistic
//! configurations ([`examples`]), and the node sandbox of
//! skiff-test-support given this crate's types ([`Sandbox`]).
//!
//! Each test file is its own crate and uses only part of this module.
#![allow(dead_code)]

pub mod examples;

use skiff_api::{Cni, InstanceGroupRole, OsFamily};
use skiff_templates::{paths, NodeBootstrap, StateStoreLocation};
use skiff_test_support::sandbox::{
    BootstrapPaths, FakeCloud, Image, NodeSandbox, BUCKET, CLUSTER_PREFIX,
};

/// Where the user-data puts the bootstrap script and its log.
pub const BOOTSTRAP_PATHS: BootstrapPaths = BootstrapPaths {
    script: paths::BOOTSTRAP_SCRIPT,
    log: paths::BOOTSTRAP_LOG,
};

/// A fake cloud whose nodes run skiff's bootstrap script.
pub fn start_cloud() -> FakeCloud {
    FakeCloud::start(BOOTSTRAP_PATHS)
}

/// The sandbox's cloud in skiff-templates' terms (the sandbox itself takes
/// plain text, see skiff-test-support).
pub trait Sandbox {
    /// A node configuration of this cluster, pointed at the fake state store.
    fn bootstrap(&self, role: InstanceGroupRole, family: OsFamily, cni: Cni) -> NodeBootstrap;

    /// A new instance with its own root, set up from the user-data of `config`.
    fn node(&self, instance_id: &str, config: &NodeBootstrap, image: Image) -> NodeSandbox;

    /// A new instance launched with `user_data`, which was rendered from
    /// `config` and may have been changed since (as the planner substitutes
    /// a gossip cluster's API endpoint).
    fn node_with_user_data(
        &self,
        instance_id: &str,
        config: &NodeBootstrap,
        user_data: String,
        image: Image,
    ) -> NodeSandbox;
}

impl Sandbox for FakeCloud {
    fn bootstrap(&self, role: InstanceGroupRole, family: OsFamily, cni: Cni) -> NodeBootstrap {
        NodeBootstrap {
            cni,
            state_store: StateStoreLocation {
                bucket: BUCKET.to_string(),
                cluster_prefix: CLUSTER_PREFIX.to_string(),
                region: "us-east-1".to_string(),
                endpoint: Some(self.moto.endpoint()),
                path_style: true,
                kms_key: None,
            },
            aws_endpoint: Some(self.moto.endpoint()),
            ..examples::example(role, family)
        }
    }

    fn node(&self, instance_id: &str, config: &NodeBootstrap, image: Image) -> NodeSandbox {
        let user_data = skiff_templates::render_user_data(config).expect("user-data renders");
        self.node_with_user_data(instance_id, config, user_data, image)
    }

    fn node_with_user_data(
        &self,
        instance_id: &str,
        config: &NodeBootstrap,
        user_data: String,
        image: Image,
    ) -> NodeSandbox {
        // As skiff does: EC2 gets the loader, the state store the script,
        // which the loader fetches, checks and runs on the node.
        let ec2 = skiff_templates::ec2_user_data(&user_data).expect("user-data for EC2");
        if let Some(script) = &ec2.script {
            let file = tempfile::NamedTempFile::new().expect("script file");
            std::fs::write(file.path(), &script.content).expect("script written");
            self.moto.put_object(
                BUCKET,
                &format!("{CLUSTER_PREFIX}/{}", script.key),
                file.path(),
            );
        }
        self.launch(
            instance_id,
            &config.kubernetes_version.to_string(),
            ec2.text,
            image,
        )
    }
}
