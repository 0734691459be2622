//! The addon manifests (`spec.addons`): what the control plane applies
//! beside the pod network, rendered here, pinned by image digest, for the
//! cluster's Kubernetes minor.
//!
//! Rendering is pure (no I/O, no time): [`render_addons`] turns the spec's
//! choices into one multi-document manifest per enabled addon. Who stores
//! them and who applies them is not this module's business (the engine
//! writes them to the state store; the control plane applies them).

use sha2::{Digest, Sha256};
use skiff_api::{Addon, AddonsSpec, KubernetesVersion};

use crate::TemplateError;

/// What an addon's manifest depends on.
#[derive(Debug, Clone)]
pub struct AddonContext<'a> {
    /// The cluster's name (cluster-autoscaler's auto-discovery tag, the
    /// cloud-controller-manager's cluster ID).
    pub cluster_name: &'a str,
    /// The cluster's region.
    pub region: &'a str,
    /// The Kubernetes version the manifests are for: each addon's release
    /// follows its minor unless `spec.addons.<addon>.version` overrides it.
    pub kubernetes_version: &'a KubernetesVersion,
    /// `spec.addons`.
    pub addons: &'a AddonsSpec,
}

/// One enabled addon, ready to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedAddon {
    /// Which addon.
    pub addon: Addon,
    /// The addon's release, e.g. `v1.34.3`.
    pub version: String,
    /// Multi-document YAML, every image pinned by digest, applied as is
    /// (`kubectl apply --server-side`).
    pub manifest: String,
}

impl RenderedAddon {
    /// The SHA-256 of the manifest, hex: what a control-plane node compares
    /// to know whether it has applied this exact manifest.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(self.manifest.as_bytes()))
    }
}

/// The manifests of every addon `context.addons` enables, in apply order.
///
/// Errors name the field to fix, e.g. a `spec.addons.metricsServer.version`
/// skiff has no pinned digest for.
pub fn render_addons(context: &AddonContext<'_>) -> Result<Vec<RenderedAddon>, TemplateError> {
    let _ = context;
    // Filled in by the addon manifests work (issue 18).
    Ok(Vec::new())
}
