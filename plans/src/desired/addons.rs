//! The cluster addons (`spec.addons`) as resources of the plan: one
//! `addon/<name>` per enabled addon, naming its release, the Kubernetes
//! minor it is for and the SHA-256 of its manifest. The manifests are
//! rendered here as the engine will write them
//! (`skiff_templates::render_addons`); the engine writes them to the state
//! store, and the control-plane nodes apply them, so an addon change shows
//! in the plan and rolls no node.

use skiff_api::InstanceGroupRole;
use skiff_templates::render_addons;
use skiff_templates::state_store::addon_context;

use super::Builder;
use crate::error::PlanError;
use crate::resource::{AddonAttributes, Attributes, DesiredResource, ResourceKey, ResourceKind};

/// The key of an addon's resource, e.g. `addon/metrics-server`.
pub fn addon_key(addon: skiff_api::Addon) -> ResourceKey {
    ResourceKey::new(ResourceKind::Addon, addon.name())
}

/// The manifests of the addons `bundle` enables, as the engine writes them.
pub fn render(
    bundle: &skiff_api::ClusterBundle,
) -> Result<Vec<skiff_templates::RenderedAddon>, PlanError> {
    let cluster = &bundle.cluster;
    let control_plane_nodes = bundle
        .instance_groups
        .iter()
        .filter(|group| group.spec.role == InstanceGroupRole::ControlPlane)
        .map(|group| group.spec.max_size)
        .sum();
    render_addons(&addon_context(
        cluster.name(),
        cluster.region(),
        &cluster.spec.kubernetes_version,
        &cluster.spec.addons,
        control_plane_nodes,
    ))
    .map_err(|source| PlanError::Addons { source })
}

pub(crate) fn build(builder: &mut Builder<'_>) -> Result<(), PlanError> {
    let version = builder.bundle.cluster.spec.kubernetes_version;
    let rendered = render(builder.bundle)?;
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
