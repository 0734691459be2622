//! The addon manifests (`spec.addons`): what the control plane applies
//! beside the pod network, rendered here, pinned by image digest, for the
//! cluster's Kubernetes minor.
//!
//! Rendering is pure (no I/O, no time): [`render_addons`] turns the spec's
//! choices into one multi-document manifest per enabled addon. Who stores
//! them and who applies them is not this module's business (the engine
//! writes them to the state store; the control plane applies them).
//!
//! The templates are under `templates/addons/`, one per addon, each written
//! from the upstream manifests of the addon's release (named at the top of
//! each template). The releases and their image digests are
//! [`skiff_api::addons::ADDON_RELEASES`]; which release a minor runs is
//! [`skiff_api::addons::default_release`].
//!
//! Every object of every manifest carries the label [`ADDON_LABEL`] with
//! the addon's name, so that what an addon created can be found (and
//! deleted) by label.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use sha2::{Digest, Sha256};
use skiff_api::addons::{release_for, AddonRelease};
use skiff_api::{Addon, AddonsSpec, KubernetesVersion};

use crate::render::yaml_string;
use crate::TemplateError;

/// The label every object of an addon's manifest carries, valued with the
/// addon's name (`metrics-server`).
pub const ADDON_LABEL: &str = "addons.skiff.dev/name";

/// Every addon template, embedded at build time, by file name under
/// `templates/addons/`.
const TEMPLATES: [(Addon, &str, &str); 4] = [
    (
        Addon::CloudControllerManager,
        "cloud-controller-manager.yaml.j2",
        include_str!("../addons/cloud-controller-manager.yaml.j2"),
    ),
    (
        Addon::EbsCsiDriver,
        "ebs-csi-driver.yaml.j2",
        include_str!("../addons/ebs-csi-driver.yaml.j2"),
    ),
    (
        Addon::MetricsServer,
        "metrics-server.yaml.j2",
        include_str!("../addons/metrics-server.yaml.j2"),
    ),
    (
        Addon::ClusterAutoscaler,
        "cluster-autoscaler.yaml.j2",
        include_str!("../addons/cluster-autoscaler.yaml.j2"),
    ),
];

/// The port kube-apiserver listens on, on each control-plane node: kubeadm's
/// default `localAPIEndpoint.bindPort`, which skiff does not change (the
/// load balancer forwards its own port to it). Addons that must work before
/// the pod network talk to the API server of their own node on it.
pub const LOCAL_API_PORT: u16 = 6443;

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
    /// How many control-plane nodes the cluster runs (the control-plane
    /// groups' sizes summed): the addons that run there with host
    /// networking run one replica per node, up to their upstream count.
    pub control_plane_nodes: u32,
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
    context
        .addons
        .enabled_addons()
        .into_iter()
        .map(|addon| render_addon(context, addon))
        .collect()
}

/// The manifest of one addon, enabled or not (a turned-off addon is deleted
/// with the manifest last applied, which the caller keeps).
pub fn render_addon(
    context: &AddonContext<'_>,
    addon: Addon,
) -> Result<RenderedAddon, TemplateError> {
    let release = release_for(context.addons, addon, context.kubernetes_version.minor).map_err(
        |problem| TemplateError::AddonRelease {
            field: format!("spec.addons.{}.version", addon.field()),
            problem,
        },
    )?;
    let template = template_of(addon);
    let values = Values::new(context, release);
    let manifest = environment()?
        .get_template(template)
        .and_then(|loaded| loaded.render(&values))
        .map_err(|source| TemplateError::Render {
            template: format!("addons/{template}"),
            source,
        })?;
    let header = objects_header(addon, &manifest)?;
    Ok(RenderedAddon {
        addon,
        version: release.version.to_string(),
        manifest: format!("{header}{manifest}"),
    })
}

/// The prefix of a manifest's object lines ([`objects_header`]).
pub const OBJECT_LINE: &str = "# skiff-object: ";

/// One object of an addon's manifest, as the API server identifies it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectIdentity {
    /// `apps/v1`.
    pub api_version: String,
    /// `Deployment`.
    pub kind: String,
    /// The namespace, `None` for a cluster-scoped object (no
    /// `metadata.namespace` in the manifest).
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectIdentity {
    /// The header line: `# skiff-object: API-VERSION KIND NAMESPACE|- NAME`.
    pub fn line(&self) -> String {
        format!(
            "{OBJECT_LINE}{} {} {} {}",
            self.api_version,
            self.kind,
            self.namespace.as_deref().unwrap_or("-"),
            self.name
        )
    }
}

/// The objects of a multi-document manifest, in order, parsed strictly:
/// every document must name `apiVersion`, `kind` and `metadata.name` with
/// words a shell `read` keeps whole (no blank, no `-` alone), else the
/// error names the document.
pub fn manifest_objects(manifest: &str) -> Result<Vec<ObjectIdentity>, String> {
    use serde::Deserialize;
    let mut objects = Vec::new();
    for (number, document) in serde_norway::Deserializer::from_str(manifest).enumerate() {
        let value = serde_norway::Value::deserialize(document)
            .map_err(|error| format!("document {}: {error}", number + 1))?;
        if value.is_null() {
            continue;
        }
        let word = |value: &serde_norway::Value, field: &str| -> Result<String, String> {
            let text = value.as_str().ok_or_else(|| {
                format!(
                    "document {}: {field} is missing or not a string",
                    number + 1
                )
            })?;
            if text.is_empty() || text == "-" || text.chars().any(char::is_whitespace) {
                return Err(format!(
                    "document {}: {field} {text:?} is not one word",
                    number + 1
                ));
            }
            Ok(text.to_string())
        };
        let metadata = &value["metadata"];
        let namespace = match &metadata["namespace"] {
            serde_norway::Value::Null => None,
            namespace => Some(word(namespace, "metadata.namespace")?),
        };
        objects.push(ObjectIdentity {
            api_version: word(&value["apiVersion"], "apiVersion")?,
            kind: word(&value["kind"], "kind")?,
            namespace,
            name: word(&metadata["name"], "metadata.name")?,
        });
    }
    Ok(objects)
}

/// The comment lines a manifest starts with: one per object it defines
/// ([`ObjectIdentity::line`]). The node that applies a new release
/// compares them with the copy it applied last and deletes what the new
/// release dropped (prune), without parsing YAML in shell.
fn objects_header(addon: Addon, manifest: &str) -> Result<String, TemplateError> {
    let objects = manifest_objects(manifest).map_err(|problem| TemplateError::AddonManifest {
        template: format!("addons/{}", template_of(addon)),
        problem,
    })?;
    let mut header = String::from(
        "# skiff: the objects of this manifest (apiVersion, kind, namespace, name), pruned when a release drops one\n",
    );
    for object in objects {
        header.push_str(&object.line());
        header.push('\n');
    }
    Ok(header)
}

fn template_of(addon: Addon) -> &'static str {
    match addon {
        Addon::CloudControllerManager => TEMPLATES[0].1,
        Addon::EbsCsiDriver => TEMPLATES[1].1,
        Addon::MetricsServer => TEMPLATES[2].1,
        Addon::ClusterAutoscaler => TEMPLATES[3].1,
    }
}

/// The values every addon template sees.
#[derive(Debug, Serialize)]
struct Values {
    cluster_name: String,
    region: String,
    kubernetes_version: String,
    kubernetes_minor: u32,
    /// The EBS CSI controller's replicas: one per control-plane node, at
    /// least one, at most upstream's two.
    controller_replicas: u32,
    release: ReleaseView,
    /// The release's minor (`33` of `v1.33.6`, `8` of `v0.8.0`): the
    /// templates lay out what changed between releases by it.
    release_minor: u32,
    /// Image references (`repository:tag@sha256:…`) by the last part of the
    /// repository (`metrics-server`, `csi-provisioner`).
    images: BTreeMap<&'static str, String>,
    addon_label: &'static str,
    local_api_port: u16,
}

#[derive(Debug, Serialize)]
struct ReleaseView {
    version: &'static str,
}

impl Values {
    fn new(context: &AddonContext<'_>, release: &'static AddonRelease) -> Values {
        Values {
            cluster_name: context.cluster_name.to_string(),
            region: context.region.to_string(),
            kubernetes_version: context.kubernetes_version.to_string(),
            kubernetes_minor: context.kubernetes_version.minor,
            controller_replicas: context.control_plane_nodes.clamp(1, 2),
            release: ReleaseView {
                version: release.version,
            },
            release_minor: release
                .version
                .split('.')
                .nth(1)
                .and_then(|minor| minor.parse().ok())
                .unwrap_or(0),
            images: release
                .images
                .iter()
                .map(|image| {
                    let name = image.repository.rsplit('/').next().unwrap_or_default();
                    (name, image.reference())
                })
                .collect(),
            addon_label: ADDON_LABEL,
            local_api_port: LOCAL_API_PORT,
        }
    }
}

fn environment() -> Result<&'static Environment<'static>, TemplateError> {
    static SHARED: OnceLock<Environment<'static>> = OnceLock::new();
    if let Some(environment) = SHARED.get() {
        return Ok(environment);
    }
    let mut environment = Environment::new();
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    environment.set_trim_blocks(true);
    environment.set_lstrip_blocks(true);
    environment.set_keep_trailing_newline(true);
    environment.set_auto_escape_callback(|_| AutoEscape::None);
    environment.add_filter("yaml", yaml_string);
    for (_, name, source) in TEMPLATES {
        environment
            .add_template(name, source)
            .map_err(|source| TemplateError::Render {
                template: format!("addons/{name}"),
                source,
            })?;
    }
    Ok(SHARED.get_or_init(|| environment))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context<'a>(version: &'a KubernetesVersion, addons: &'a AddonsSpec) -> AddonContext<'a> {
        AddonContext {
            cluster_name: "prod.example.com",
            region: "eu-west-1",
            kubernetes_version: version,
            addons,
            control_plane_nodes: 3,
        }
    }

    #[test]
    fn metrics_server_follows_the_minor_and_the_override() {
        let addons = AddonsSpec::default();
        let old: KubernetesVersion = "1.30.14".parse().expect("version");
        let new: KubernetesVersion = "1.34.2".parse().expect("version");
        let find = |rendered: Vec<RenderedAddon>| {
            rendered
                .into_iter()
                .find(|one| one.addon == Addon::MetricsServer)
                .expect("metrics-server is on by default")
        };
        let on_old = find(render_addons(&context(&old, &addons)).expect("renders"));
        let on_new = find(render_addons(&context(&new, &addons)).expect("renders"));
        assert_eq!(on_old.version, "v0.7.2");
        assert_eq!(on_new.version, "v0.8.0");
        assert!(on_new.manifest.contains(
            "registry.k8s.io/metrics-server/metrics-server:v0.8.0@sha256:89258156d0e9af60403eafd44da9676fd66f600c7934d468ccc17e42b199aee2"
        ));
        assert!(!on_old.manifest.contains("appProtocol"));
        assert_ne!(on_old.sha256(), on_new.sha256());

        let pinned: AddonsSpec =
            serde_norway::from_str("metricsServer: {version: v0.7.2}\n").expect("parses");
        assert_eq!(
            find(render_addons(&context(&new, &pinned)).expect("renders")).version,
            "v0.7.2"
        );
    }

    #[test]
    fn every_template_is_its_addons_and_the_defaults_render_in_apply_order() {
        for addon in Addon::ALL {
            assert_eq!(
                template_of(addon),
                format!("{}.yaml.j2", addon.name()),
                "{addon}"
            );
        }
        let version: KubernetesVersion = "1.34.2".parse().expect("version");
        let addons = AddonsSpec::default();
        let rendered = render_addons(&context(&version, &addons)).expect("renders");
        let names: Vec<Addon> = rendered.iter().map(|one| one.addon).collect();
        assert_eq!(
            names,
            [
                Addon::CloudControllerManager,
                Addon::EbsCsiDriver,
                Addon::MetricsServer
            ]
        );
        assert_eq!(rendered[0].version, "v1.34.3");
    }

    #[test]
    fn rendering_is_deterministic_and_follows_the_cluster() {
        let version: KubernetesVersion = "1.35.8".parse().expect("version");
        let addons: AddonsSpec =
            serde_norway::from_str("clusterAutoscaler: {enabled: true}\n").expect("parses");
        let first = render_addons(&context(&version, &addons)).expect("renders");
        let second = render_addons(&context(&version, &addons)).expect("renders");
        assert_eq!(first, second);
        let other = AddonContext {
            cluster_name: "staging.example.com",
            ..context(&version, &addons)
        };
        let renamed = render_addons(&other).expect("renders");
        for (one, two) in first.iter().zip(&renamed) {
            // metrics-server does not name the cluster; the others do.
            assert_eq!(
                one.sha256() == two.sha256(),
                one.addon == Addon::MetricsServer,
                "{}",
                one.addon
            );
        }
    }

    #[test]
    fn the_ebs_controller_runs_one_replica_per_control_plane_node_up_to_two() {
        let version: KubernetesVersion = "1.34.2".parse().expect("version");
        let addons = AddonsSpec::default();
        for (nodes, replicas) in [(0, 1), (1, 1), (2, 2), (3, 2), (5, 2)] {
            let context = AddonContext {
                control_plane_nodes: nodes,
                ..context(&version, &addons)
            };
            let ebs = render_addon(&context, Addon::EbsCsiDriver).expect("renders");
            assert!(
                ebs.manifest
                    .contains(&format!("\nspec:\n  replicas: {replicas}\n")),
                "{nodes} control-plane nodes"
            );
        }
    }

    #[test]
    fn cluster_autoscaler_discovers_this_clusters_groups() {
        let version: KubernetesVersion = "1.33.13".parse().expect("version");
        let addons: AddonsSpec =
            serde_norway::from_str("clusterAutoscaler: {enabled: true}\n").expect("parses");
        let rendered = render_addons(&context(&version, &addons)).expect("renders");
        let autoscaler = rendered.last().expect("rendered");
        assert_eq!(autoscaler.addon, Addon::ClusterAutoscaler);
        assert_eq!(autoscaler.version, "v1.33.6");
        assert!(autoscaler.manifest.contains(
            "- \"--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/prod.example.com\"\n"
        ));
        assert!(autoscaler
            .manifest
            .contains("- --balance-similar-node-groups\n"));
        assert!(autoscaler.manifest.contains("  - volumeattachments\n"));
        assert!(!autoscaler.manifest.contains("resource.k8s.io"));
    }

    #[test]
    fn a_turned_off_addon_is_not_rendered_and_an_unknown_release_names_the_field() {
        let version: KubernetesVersion = "1.34.2".parse().expect("version");
        let off: AddonsSpec =
            serde_norway::from_str("metricsServer: {enabled: false}\n").expect("parses");
        assert!(render_addons(&context(&version, &off))
            .expect("renders")
            .iter()
            .all(|one| one.addon != Addon::MetricsServer));

        let unknown: AddonsSpec =
            serde_norway::from_str("metricsServer: {version: v9.9.9}\n").expect("parses");
        let error = render_addons(&context(&version, &unknown)).expect_err("unknown release");
        let text = error.to_string();
        assert!(
            text.starts_with("spec.addons.metricsServer.version: "),
            "{text}"
        );
        assert!(text.contains("v0.7.2, v0.8.0"), "{text}");
    }

    #[test]
    fn every_manifest_starts_with_the_objects_it_defines() {
        let version: KubernetesVersion = "1.34.2".parse().expect("version");
        let addons: AddonsSpec =
            serde_norway::from_str("clusterAutoscaler: {enabled: true}\n").expect("parses");
        for rendered in render_addons(&context(&version, &addons)).expect("renders") {
            let objects = manifest_objects(&rendered.manifest).expect("parses");
            assert!(objects.len() > 2, "{}", rendered.addon);
            let lines: Vec<&str> = rendered
                .manifest
                .lines()
                .filter(|line| line.starts_with(OBJECT_LINE))
                .collect();
            let expected: Vec<String> = objects.iter().map(ObjectIdentity::line).collect();
            assert_eq!(lines, expected, "{}", rendered.addon);
            assert!(
                expected
                    .iter()
                    .any(|line| line.ends_with(" - system:metrics-server"))
                    || rendered.addon != Addon::MetricsServer,
                "{expected:?}"
            );
        }
        assert_eq!(
            manifest_objects(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: kube-system\n---\n"
            ),
            Err("document 1: metadata.name is missing or not a string".to_string())
        );
        assert_eq!(
            manifest_objects(
                "# only a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"
            ),
            Ok(vec![ObjectIdentity {
                api_version: "v1".into(),
                kind: "Namespace".into(),
                namespace: None,
                name: "x".into()
            }])
        );
    }
}
