//! The addon manifests as Kubernetes objects: every rendered manifest, for
//! every Kubernetes minor skiff builds and every addon, parses strictly as
//! typed Kubernetes objects (k8s-openapi; an unknown or misspelled field is
//! refused), every image is pinned by digest, and the manifests are
//! snapshotted per minor.

use serde_json::Value;
use skiff_api::version::RELEASES;
use skiff_api::{Addon, AddonsSpec, KubernetesVersion};
use skiff_templates::addons::ADDON_LABEL;
use skiff_templates::{render_addons, AddonContext, RenderedAddon};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::{CSIDriver, StorageClass};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;

/// Every addon on, so every template renders.
fn all_on() -> AddonsSpec {
    serde_norway::from_str(
        "cloudControllerManager: {enabled: true}\nebsCsiDriver: {enabled: true}\n\
         metricsServer: {enabled: true}\nclusterAutoscaler: {enabled: true}\n",
    )
    .expect("parses")
}

/// The newest patch (or .0) of each minor of the version table.
fn versions() -> Vec<KubernetesVersion> {
    RELEASES
        .iter()
        .map(|release| KubernetesVersion {
            major: 1,
            minor: release.minor,
            patch: release.latest_patch.unwrap_or(0),
        })
        .collect()
}

fn render(version: &KubernetesVersion, addons: &AddonsSpec) -> Vec<RenderedAddon> {
    render_addons(&AddonContext {
        cluster_name: "prod.example.com",
        region: "eu-west-1",
        kubernetes_version: version,
        addons,
        control_plane_nodes: 3,
    })
    .unwrap_or_else(|error| panic!("{version}: {error}"))
}

/// Deserializes `document` as the typed object of its kind, serializes it
/// back and compares the two as JSON values: k8s-openapi ignores unknown
/// fields on the way in, so a field it does not know (a misspelling, a
/// field at the wrong level) is missing on the way out.
fn strict<T>(document: &Value) -> Result<(), String>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let typed: T = serde_json::from_value(document.clone()).map_err(|error| error.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|error| error.to_string())?;
    if &back == document {
        return Ok(());
    }
    Err(format!(
        "fields k8s-openapi does not know: {}",
        differences("", document, &back).join(", ")
    ))
}

/// The paths present in `input` but not (equal) in `typed`.
fn differences(path: &str, input: &Value, typed: &Value) -> Vec<String> {
    match (input, typed) {
        (Value::Object(input), Value::Object(typed)) => input
            .iter()
            .flat_map(|(key, value)| match typed.get(key) {
                Some(back) => differences(&format!("{path}.{key}"), value, back),
                None => vec![format!("{path}.{key}")],
            })
            .collect(),
        (Value::Array(input), Value::Array(typed)) if input.len() == typed.len() => input
            .iter()
            .zip(typed)
            .enumerate()
            .flat_map(|(index, (value, back))| {
                differences(&format!("{path}[{index}]"), value, back)
            })
            .collect(),
        _ if input == typed => Vec::new(),
        _ => vec![format!("{path} ({input} became {typed})")],
    }
}

/// Parses every document of `manifest` strictly; returns the documents.
fn parse_strictly(manifest: &str) -> Result<Vec<Value>, String> {
    let mut documents = Vec::new();
    for document in serde_norway::Deserializer::from_str(manifest) {
        let value: Value =
            serde::Deserialize::deserialize(document).map_err(|error| error.to_string())?;
        if value.is_null() {
            // A document of comments only (the header).
            continue;
        }
        let api_version = value["apiVersion"].as_str().unwrap_or_default();
        let kind = value["kind"].as_str().unwrap_or_default();
        let name = value["metadata"]["name"].as_str().unwrap_or_default();
        let checked = match (api_version, kind) {
            ("v1", "ServiceAccount") => strict::<ServiceAccount>(&value),
            ("v1", "Service") => strict::<Service>(&value),
            ("v1", "ConfigMap") => strict::<ConfigMap>(&value),
            ("apps/v1", "Deployment") => strict::<Deployment>(&value),
            ("apps/v1", "DaemonSet") => strict::<DaemonSet>(&value),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => strict::<ClusterRole>(&value),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                strict::<ClusterRoleBinding>(&value)
            }
            ("rbac.authorization.k8s.io/v1", "Role") => strict::<Role>(&value),
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => strict::<RoleBinding>(&value),
            ("storage.k8s.io/v1", "StorageClass") => strict::<StorageClass>(&value),
            ("storage.k8s.io/v1", "CSIDriver") => strict::<CSIDriver>(&value),
            ("policy/v1", "PodDisruptionBudget") => strict::<PodDisruptionBudget>(&value),
            ("apiregistration.k8s.io/v1", "APIService") => strict::<APIService>(&value),
            _ => Err(format!("unknown kind {api_version}/{kind}")),
        };
        checked.map_err(|problem| format!("{kind} {name}: {problem}"))?;
        documents.push(value);
    }
    Ok(documents)
}

/// Every `image` value anywhere in `value`.
fn images(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("image", Value::String(image)) => found.push(image.clone()),
                    _ => images(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| images(item, found)),
        _ => {}
    }
}

fn pinned(image: &str) -> bool {
    image.split_once("@sha256:").is_some_and(|(name, hex)| {
        name.contains(':')
            && hex.len() == 64
            && hex
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    })
}

#[test]
fn every_manifest_of_every_minor_parses_strictly_and_pins_every_image() {
    let addons = all_on();
    let mut seen = 0;
    for version in versions() {
        for rendered in render(&version, &addons) {
            let documents = parse_strictly(&rendered.manifest)
                .unwrap_or_else(|problem| panic!("{} for {version}: {problem}", rendered.addon));
            assert!(!documents.is_empty(), "{}: no objects", rendered.addon);
            let mut found = Vec::new();
            for document in &documents {
                images(document, &mut found);
                assert_eq!(
                    document["metadata"]["labels"][ADDON_LABEL].as_str(),
                    Some(rendered.addon.name()),
                    "{} {version}: {} {} lacks the addon label",
                    rendered.addon,
                    document["kind"],
                    document["metadata"]["name"]
                );
            }
            assert!(!found.is_empty(), "{}: no image", rendered.addon);
            for image in &found {
                assert!(
                    pinned(image),
                    "{} {version}: {image} is not pinned by digest",
                    rendered.addon
                );
            }
            // The text too: no `image:` line the walk above could miss.
            for line in rendered.manifest.lines() {
                let line = line.trim_start().trim_start_matches("- ");
                if let Some(image) = line.strip_prefix("image:") {
                    assert!(pinned(image.trim().trim_matches('"')), "{line}");
                }
            }
            seen += 1;
        }
    }
    assert_eq!(
        seen,
        RELEASES.len() * Addon::ALL.len(),
        "every addon of every minor"
    );
}

#[test]
fn a_misspelled_or_misplaced_field_fails_the_strict_parse() {
    let version: KubernetesVersion = "1.34.2".parse().expect("version");
    let manifest = render(&version, &AddonsSpec::default())
        .into_iter()
        .find(|rendered| rendered.addon == Addon::MetricsServer)
        .expect("metrics-server is on by default")
        .manifest;
    parse_strictly(&manifest).expect("the real manifest parses");

    let misspelled = manifest.replacen("imagePullPolicy:", "imagePulPolicy:", 1);
    let problem = parse_strictly(&misspelled).expect_err("a misspelled field");
    assert!(problem.contains("Deployment metrics-server"), "{problem}");
    assert!(problem.contains("imagePulPolicy"), "{problem}");

    // A known field one level too deep is unknown where it stands.
    let misplaced = manifest.replacen(
        "      priorityClassName: system-cluster-critical\n",
        "      securityContext:\n        priorityClassName: system-cluster-critical\n",
        1,
    );
    assert_ne!(misplaced, manifest);
    let problem = parse_strictly(&misplaced).expect_err("a misplaced field");
    assert!(
        problem.contains("securityContext.priorityClassName"),
        "{problem}"
    );

    // A wrong type is refused by the typed parse itself.
    let wrong_type = manifest.replacen("periodSeconds: 10", "periodSeconds: often", 1);
    assert!(parse_strictly(&wrong_type).is_err());

    // A kind the test does not know is refused, not skipped.
    let unknown = format!("{manifest}---\napiVersion: v1\nkind: Secrett\nmetadata: {{name: x}}\n");
    let problem = parse_strictly(&unknown).expect_err("an unknown kind");
    assert!(problem.contains("unknown kind v1/Secrett"), "{problem}");
}

#[test]
fn an_unpinned_image_is_caught() {
    assert!(pinned(
        "registry.k8s.io/metrics-server/metrics-server:v0.8.0@sha256:89258156d0e9af60403eafd44da9676fd66f600c7934d468ccc17e42b199aee2"
    ));
    assert!(!pinned(
        "registry.k8s.io/metrics-server/metrics-server:v0.8.0"
    ));
    assert!(!pinned(
        "registry.k8s.io/metrics-server/metrics-server:v0.8.0@sha256:89258156"
    ));
}

#[test]
fn addon_snapshots_per_minor() {
    let addons = all_on();
    for version in versions() {
        for rendered in render(&version, &addons) {
            insta::assert_snapshot!(
                format!("{}_1.{}", rendered.addon.name(), version.minor),
                format!(
                    "# {} {} sha256 {}\n{}",
                    rendered.addon,
                    rendered.version,
                    rendered.sha256(),
                    rendered.manifest
                )
            );
        }
    }
}
