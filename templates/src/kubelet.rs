//! A node's own kubelet settings and its control-plane components' extra
//! flags, as the kubeadm configuration files carry them.
//!
//! # Why a kubeadm patch, not the kubelet-config ConfigMap
//!
//! `kubeadm init` uploads the `KubeletConfiguration` of its configuration
//! file to the `kube-system/kubelet-config` ConfigMap, and `kubeadm join`
//! writes the kubelet's `/var/lib/kubelet/config.yaml` from that ConfigMap,
//! never from the join file (kubernetes/kubernetes
//! cmd/kubeadm/app/phases/kubelet/config.go `CreateConfigMap`,
//! `WriteConfigToDisk`). So settings in the init file would reach every node
//! of every group, only as the first control-plane node saw them, and a
//! later change would reach no node at all. kubeadm's upstream way to give
//! one node its own settings is a patch of target `kubeletconfiguration`
//! (v1.25+) in the directory `patches.directory` of the Init- or
//! JoinConfiguration names: kubeadm applies it to the bytes it writes to
//! this node's config.yaml and to nothing else
//! (cmd/kubeadm/app/util/patches/patches.go; `applyKubeletConfigPatches`
//! in phases/kubelet/config.go). skiff writes the group's settings (the
//! cluster's `spec.kubelet` with the group's merged over it) as such a
//! patch into each node's user-data, and leaves the ConfigMap as `kubeadm
//! init` made it from skiff's fixed base. A node's effective settings thus
//! follow from its own user-data: a change rolls exactly the groups whose
//! merged settings changed, and the plan names the fields from the patch
//! files it compares (plans/src/user_data.rs).
//!
//! A group without settings gets no patch and no `patches` stanza, so the
//! user-data of clusters that set none stays byte for byte what it was.

use serde::Serialize;
use serde_json::Value;
use skiff_api::component_arguments::{check_component, Component, ComponentSpec};
use skiff_api::kubelet::{check, Checks};
use skiff_api::KubeletSpec;

use crate::error::TemplateError;

/// The extra flags and host folders of each control-plane component
/// (`spec.controlPlane.*.extraArgs`, `extraVolumes`), rendered into the
/// control plane's ClusterConfiguration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComponentArguments {
    /// kube-apiserver's (after skiff's own encryption and audit flags).
    pub api_server: ComponentSpec,
    /// kube-controller-manager's.
    pub controller_manager: ComponentSpec,
    /// kube-scheduler's.
    pub scheduler: ComponentSpec,
    /// The stacked etcd member's.
    pub etcd: ComponentSpec,
}

impl From<&skiff_api::ControlPlaneSpec> for ComponentArguments {
    fn from(spec: &skiff_api::ControlPlaneSpec) -> Self {
        ComponentArguments {
            api_server: spec.api_server.arguments(),
            controller_manager: spec.controller_manager.clone(),
            scheduler: spec.scheduler.clone(),
            etcd: spec.etcd.clone(),
        }
    }
}

impl ComponentArguments {
    /// The components with their settings, in the ClusterConfiguration's order.
    pub(crate) fn components(&self) -> [(Component, &ComponentSpec); 4] {
        [
            (Component::ApiServer, &self.api_server),
            (Component::ControllerManager, &self.controller_manager),
            (Component::Scheduler, &self.scheduler),
            (Component::Etcd, &self.etcd),
        ]
    }

    /// The spec's checks again, at this crate's boundary.
    pub(crate) fn validate(&self) -> Result<(), TemplateError> {
        for (component, spec) in self.components() {
            if let Some(problem) = check_component(component, spec).into_iter().next() {
                return Err(TemplateError::invalid(
                    format!(
                        "component_arguments.{}.{}",
                        component.field(),
                        problem.field
                    ),
                    "(see the field)",
                    problem.message,
                ));
            }
        }
        Ok(())
    }
}

/// The kubelet settings' checks again, at this crate's boundary.
pub(crate) fn validate_kubelet(spec: &KubeletSpec) -> Result<(), TemplateError> {
    match check(spec, Checks::All).into_iter().next() {
        Some(problem) => Err(TemplateError::invalid(
            format!("kubelet.{}", problem.field),
            "(see the field)",
            problem.message,
        )),
        None => Ok(()),
    }
}

/// One top-level field of the kubelet patch.
#[derive(Debug, Serialize)]
pub(crate) struct KubeletFieldView {
    name: String,
    /// A number or a boolean, written as it is.
    literal: Option<String>,
    /// A string, quoted by the template's `yaml` filter.
    text: Option<String>,
    /// A map's entries, keys and values quoted by the template.
    entries: Vec<EntryView>,
}

/// One entry of a map.
#[derive(Debug, Serialize)]
pub(crate) struct EntryView {
    key: String,
    value: String,
}

/// The fields of the patch, in `KubeletSpec`'s order; empty for no settings.
pub(crate) fn patch_fields(spec: &KubeletSpec) -> Vec<KubeletFieldView> {
    let Ok(Value::Object(fields)) = serde_json::to_value(spec) else {
        return Vec::new();
    };
    // serde_json's map keeps the struct's field order (preserve_order) or
    // sorts it; either way the order depends on the spec alone.
    fields
        .into_iter()
        .map(|(name, value)| {
            let mut view = KubeletFieldView {
                name,
                literal: None,
                text: None,
                entries: Vec::new(),
            };
            match value {
                Value::String(text) => view.text = Some(text),
                Value::Object(map) => {
                    view.entries = map
                        .into_iter()
                        .map(|(key, value)| EntryView {
                            key,
                            value: value.as_str().unwrap_or_default().to_string(),
                        })
                        .collect();
                }
                other => view.literal = Some(other.to_string()),
            }
            view
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn numbers_and_booleans_are_literal_strings_are_text_maps_are_entries() {
        let spec = KubeletSpec {
            max_pods: Some(250),
            serialize_image_pulls: Some(false),
            container_log_max_size: Some("50Mi".to_string()),
            kube_reserved: BTreeMap::from([("cpu".to_string(), "100m".to_string())]),
            ..KubeletSpec::default()
        };
        let fields = patch_fields(&spec);
        let names: Vec<&str> = fields.iter().map(|field| field.name.as_str()).collect();
        assert!(names.contains(&"maxPods") && names.contains(&"kubeReserved"));
        let max_pods = fields
            .iter()
            .find(|field| field.name == "maxPods")
            .expect("maxPods");
        assert_eq!(max_pods.literal.as_deref(), Some("250"));
        let pulls = fields
            .iter()
            .find(|field| field.name == "serializeImagePulls")
            .expect("serializeImagePulls");
        assert_eq!(pulls.literal.as_deref(), Some("false"));
        let size = fields
            .iter()
            .find(|field| field.name == "containerLogMaxSize")
            .expect("containerLogMaxSize");
        assert_eq!(size.text.as_deref(), Some("50Mi"));
        assert!(patch_fields(&KubeletSpec::default()).is_empty());
    }
}
