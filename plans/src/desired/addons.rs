//! The cluster addons (`spec.addons`) as resources of the plan: one
//! `addon/<name>` per enabled addon, naming its release, the Kubernetes
//! minor it is for and the SHA-256 of its manifest. The manifests are
//! rendered here as the engine will write them
//! (`skiff_templates::render_addons`); the engine writes them to the state
//! store, and the control-plane nodes apply them, so an addon change shows
//! in the plan and rolls no node.

use skiff_templates::{render_addons, AddonContext};

use super::Builder;
use crate::error::PlanError;
use crate::resource::{AddonAttributes, Attributes, DesiredResource, ResourceKey, ResourceKind};

/// The key of an addon's resource, e.g. `addon/metrics-server`.
pub fn addon_key(addon: skiff_api::Addon) -> ResourceKey {
    ResourceKey::new(ResourceKind::Addon, addon.name())
}

pub(crate) fn build(builder: &mut Builder<'_>) -> Result<(), PlanError> {
    let cluster = &builder.bundle.cluster;
    let version = cluster.spec.kubernetes_version;
    let rendered = render_addons(&AddonContext {
        cluster_name: cluster.name(),
        region: cluster.region(),
        kubernetes_version: &version,
        addons: &cluster.spec.addons,
    })
    .map_err(|source| PlanError::Addons { source })?;
    for addon in rendered {
        builder.add(DesiredResource {
            key: addon_key(addon.addon),
            attributes: Attributes::Addon(AddonAttributes {
                sha256: addon.sha256(),
                version: addon.version,
                kubernetes_minor: format!("{}.{}", version.major, version.minor),
            }),
        });
    }
    Ok(())
}
