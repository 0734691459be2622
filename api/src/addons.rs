//! The cluster addons (`spec.addons`): the software every workload on AWS
//! needs beside the pod network, installed and kept at the release that
//! matches the cluster's Kubernetes minor.
//!
//! - `cloudControllerManager`: the AWS cloud-controller-manager
//!   (kubernetes/cloud-provider-aws). On by default. Services of type
//!   `LoadBalancer`, Node `providerID` and zone labels, removing the Nodes of
//!   terminated instances. With it on, every kubelet runs with
//!   `--cloud-provider=external` and its node is named by the instance's
//!   private DNS name, as the AWS cloud provider requires.
//! - `ebsCsiDriver`: the Amazon EBS CSI driver and a default, encrypted
//!   `gp3` StorageClass. On by default.
//! - `metricsServer`: metrics-server (`kubectl top`, HorizontalPodAutoscalers).
//!   On by default.
//! - `clusterAutoscaler`: cluster-autoscaler with auto-discovery of the
//!   groups' auto scaling groups. Off by default: it changes group sizes.
//!
//! An absent entry means the addon's default (on or off) at the release the
//! cluster's minor pins. `version` overrides the release; it must be one
//! skiff knows the image digest of.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One addon skiff can install.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Addon {
    /// The AWS cloud-controller-manager.
    CloudControllerManager,
    /// The Amazon EBS CSI driver and its StorageClass.
    EbsCsiDriver,
    /// metrics-server.
    MetricsServer,
    /// cluster-autoscaler.
    ClusterAutoscaler,
}

impl Addon {
    /// Every addon, in the order they are applied.
    pub const ALL: [Addon; 4] = [
        Addon::CloudControllerManager,
        Addon::EbsCsiDriver,
        Addon::MetricsServer,
        Addon::ClusterAutoscaler,
    ];

    /// The addon's key under `spec.addons`, e.g. `cloudControllerManager`.
    pub fn field(self) -> &'static str {
        match self {
            Addon::CloudControllerManager => "cloudControllerManager",
            Addon::EbsCsiDriver => "ebsCsiDriver",
            Addon::MetricsServer => "metricsServer",
            Addon::ClusterAutoscaler => "clusterAutoscaler",
        }
    }

    /// The addon's name in the state store, the plan and on the nodes, e.g.
    /// `cloud-controller-manager`.
    pub fn name(self) -> &'static str {
        match self {
            Addon::CloudControllerManager => "cloud-controller-manager",
            Addon::EbsCsiDriver => "ebs-csi-driver",
            Addon::MetricsServer => "metrics-server",
            Addon::ClusterAutoscaler => "cluster-autoscaler",
        }
    }

    /// Whether a cluster gets the addon when `spec.addons` does not say.
    pub fn enabled_by_default(self) -> bool {
        !matches!(self, Addon::ClusterAutoscaler)
    }
}

impl fmt::Display for Addon {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// One addon's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddonSpec {
    /// On or off; absent means the addon's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The addon's release, e.g. `v1.34.3`; absent means the release the
    /// cluster's Kubernetes minor pins (and follows it on upgrade).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `spec.addons`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddonsSpec {
    /// The AWS cloud-controller-manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_controller_manager: Option<AddonSpec>,
    /// The Amazon EBS CSI driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebs_csi_driver: Option<AddonSpec>,
    /// metrics-server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_server: Option<AddonSpec>,
    /// cluster-autoscaler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_autoscaler: Option<AddonSpec>,
}

impl AddonsSpec {
    /// The settings written for `addon`, if any.
    pub fn get(&self, addon: Addon) -> Option<&AddonSpec> {
        match addon {
            Addon::CloudControllerManager => self.cloud_controller_manager.as_ref(),
            Addon::EbsCsiDriver => self.ebs_csi_driver.as_ref(),
            Addon::MetricsServer => self.metrics_server.as_ref(),
            Addon::ClusterAutoscaler => self.cluster_autoscaler.as_ref(),
        }
    }

    /// Whether the cluster gets `addon`.
    pub fn enabled(&self, addon: Addon) -> bool {
        self.get(addon)
            .and_then(|spec| spec.enabled)
            .unwrap_or_else(|| addon.enabled_by_default())
    }

    /// The release `spec.addons.<addon>.version` asks for, if any.
    pub fn version_override(&self, addon: Addon) -> Option<&str> {
        self.get(addon).and_then(|spec| spec.version.as_deref())
    }

    /// The addons the cluster gets, in apply order.
    pub fn enabled_addons(&self) -> Vec<Addon> {
        Addon::ALL
            .into_iter()
            .filter(|addon| self.enabled(*addon))
            .collect()
    }

    /// Whether nothing is written (every addon at its default).
    pub fn is_empty(&self) -> bool {
        *self == AddonsSpec::default()
    }
}

/// A container image pinned by digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedImage {
    /// The image's name without tag, e.g.
    /// `registry.k8s.io/metrics-server/metrics-server`.
    pub repository: &'static str,
    /// The release tag, e.g. `v0.8.0`.
    pub tag: &'static str,
    /// The multi-arch manifest-list digest, `sha256:` and 64 hex digits.
    pub digest: &'static str,
}

impl PinnedImage {
    /// `repository:tag@sha256:…`, what a manifest's `image:` holds.
    pub fn reference(&self) -> String {
        format!("{}:{}@{}", self.repository, self.tag, self.digest)
    }
}

/// One release of an addon skiff can install: its version and every image
/// it runs, pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddonRelease {
    /// Which addon.
    pub addon: Addon,
    /// The release, as `spec.addons.<addon>.version` names it, e.g. `v0.8.0`.
    pub version: &'static str,
    /// The images of the release, the addon's own first.
    pub images: &'static [PinnedImage],
}

impl AddonRelease {
    /// The image whose repository ends with `/name`, e.g. `csi-provisioner`.
    pub fn image(&self, name: &str) -> Option<&'static PinnedImage> {
        self.images.iter().find(|image| {
            image
                .repository
                .rsplit('/')
                .next()
                .is_some_and(|last| last == name)
        })
    }
}

const CCM: &str = "registry.k8s.io/provider-aws/cloud-controller-manager";
const EBS: &str = "registry.k8s.io/provider-aws/aws-ebs-csi-driver";
const METRICS_SERVER: &str = "registry.k8s.io/metrics-server/metrics-server";
const CLUSTER_AUTOSCALER: &str = "registry.k8s.io/autoscaling/cluster-autoscaler";

const fn image(repository: &'static str, tag: &'static str, digest: &'static str) -> PinnedImage {
    PinnedImage {
        repository,
        tag,
        digest,
    }
}

/// aws-ebs-csi-driver v1.63.1 and its CSI sidecars, as
/// `deploy/kubernetes/base/controller.yaml` and `node.yaml` at tag v1.64.0
/// name them (that tree's manifests run driver v1.63.1; v1.64.0 has no
/// promoted digest here), with the registry.k8s.io names and tags of
/// `deploy/kubernetes/overlays/stable/gcr/kustomization.yaml`.
/// Digests: the image promoter's `registry.k8s.io/images/k8s-staging-sig-storage/images.yaml`
/// (kubernetes/k8s.io, as copied at geewynn/k8s.io@1f3817736fa4c6852fc23c46bff54486f0a0ff8c;
/// its entries shared with the older upstream copy agree).
const EBS_V1_63_1_IMAGES: &[PinnedImage] = &[
    image(
        EBS,
        "v1.63.1",
        "sha256:150de06f37bd1bc2ae09e311029edb4a14889b215f59ca3d4ba4e37f4668e867",
    ),
    image(
        "registry.k8s.io/sig-storage/csi-provisioner",
        "v6.3.0",
        "sha256:a4b0b1a37605b7b04a293e136edf7006ec1786a8eb3f4e5a945f81d667dcc371",
    ),
    image(
        "registry.k8s.io/sig-storage/csi-attacher",
        "v4.12.0",
        "sha256:b9dc9a714a484ccdeeb6f86d88d4db9b7a5ecfc5a55da6db3a60bb3fa33c278a",
    ),
    image(
        "registry.k8s.io/sig-storage/csi-snapshotter",
        "v8.6.0",
        "sha256:42af0929bcd60a43499825c078a60ff0534e08af8fbeb283aa391be40feb9f3e",
    ),
    image(
        "registry.k8s.io/sig-storage/csi-resizer",
        "v2.2.1",
        "sha256:ea1d25e23479000c7e8eeb92d827df66258df4e482ca054c5e7ce3fc0f5c41a5",
    ),
    image(
        "registry.k8s.io/sig-storage/livenessprobe",
        "v2.19.0",
        "sha256:06da0d5b8908072f2e4522692aee8dc119fba7247a9658497e1153992cd777e9",
    ),
    image(
        "registry.k8s.io/sig-storage/csi-node-driver-registrar",
        "v2.17.0",
        "sha256:f9de845b170155199f2a2a3f9531cf13d78e31235e9db6b6582a8b0db0a50dad",
    ),
];

macro_rules! single {
    ($addon:expr, $repository:expr, $version:literal, $digest:literal) => {
        AddonRelease {
            addon: $addon,
            version: $version,
            images: &[image($repository, $version, $digest)],
        }
    };
}

/// Every release skiff knows the images of, by addon, oldest first. Only
/// these may be named in `spec.addons.<addon>.version`.
///
/// Sources of the digests (the multi-arch manifest-list digests
/// registry.k8s.io serves, from the image promoter's manifests in
/// kubernetes/k8s.io, `registry.k8s.io/images/<staging project>/images.yaml`):
/// * cloud-controller-manager and aws-ebs-csi-driver:
///   `k8s-staging-provider-aws/images.yaml` @ 0137eda2cba1d3894c93aa4bd4363eacc2ed7287.
///   There is no promoted digest of v1.36.x there (it ends at v1.35.2).
/// * metrics-server: `k8s-staging-metrics-server/images.yaml` @
///   bc1017d811972e111a18438057aedac90a843198 (ends at v0.8.0).
/// * cluster-autoscaler: `k8s-staging-autoscaling/images.yaml` as copied at
///   soltysh/k8s.io@2d7cc8e89cca59e421813e3ff8aa943400dddd3c (the upstream
///   copy readable here, @ fe84f3f631bc82638db79709f06eadd75b5116c2, ends at
///   v1.33.1; the entries both hold agree).
/// * the EBS CSI sidecars: see [`EBS_V1_63_1_IMAGES`].
pub const ADDON_RELEASES: &[AddonRelease] = &[
    // kubernetes/cloud-provider-aws: one release line per Kubernetes minor
    // (tag vX.Y.Z for Kubernetes X.Y), the newest promoted patch of each.
    single!(
        Addon::CloudControllerManager,
        CCM,
        "v1.30.10",
        "sha256:d24df67308f35fe2c71aa48047170f2eeb3b39d23ede4b79351143f58c7a380e"
    ),
    single!(
        Addon::CloudControllerManager,
        CCM,
        "v1.31.9",
        "sha256:4dc7e514e03ad28fa475153831c1d2bb40f19c65c1afc9caa83fa6025c018bb0"
    ),
    single!(
        Addon::CloudControllerManager,
        CCM,
        "v1.32.8",
        "sha256:1bb79227d3f631d686ee1dfaa36ffcd6780f4d54918b0e54aa5d635a987b3fe5"
    ),
    single!(
        Addon::CloudControllerManager,
        CCM,
        "v1.33.4",
        "sha256:b54bc094711e9d7ace6c9bab3d6f02a598e7570ac1fedd6341940e1de79ea476"
    ),
    single!(
        Addon::CloudControllerManager,
        CCM,
        "v1.34.3",
        "sha256:ab45cec4a1ee68a556d09a362746db8fd66b258101aefcf0542f51e960248810"
    ),
    single!(
        Addon::CloudControllerManager,
        CCM,
        "v1.35.2",
        "sha256:5a5d4e5942ad078a184c12bf5435f8226ccb157ee15e9e1f87c183a4bf4b8f1a"
    ),
    // kubernetes-sigs/aws-ebs-csi-driver: one release for every minor.
    AddonRelease {
        addon: Addon::EbsCsiDriver,
        version: "v1.63.1",
        images: EBS_V1_63_1_IMAGES,
    },
    // kubernetes-sigs/metrics-server: 0.7.x supports Kubernetes 1.27+, 0.8.x
    // 1.31+ (its README's compatibility matrix).
    single!(
        Addon::MetricsServer,
        METRICS_SERVER,
        "v0.7.2",
        "sha256:ffcb2bf004d6aa0a17d90e0247cf94f2865c8901dcab4427034c341951c239f9"
    ),
    single!(
        Addon::MetricsServer,
        METRICS_SERVER,
        "v0.8.0",
        "sha256:89258156d0e9af60403eafd44da9676fd66f600c7934d468ccc17e42b199aee2"
    ),
    // kubernetes/autoscaler: cluster-autoscaler's minor matches Kubernetes's.
    single!(
        Addon::ClusterAutoscaler,
        CLUSTER_AUTOSCALER,
        "v1.30.7",
        "sha256:6da58d668065c33baa4cdff8e984d4f32291c26317b31c25b66ddc11684166fd"
    ),
    single!(
        Addon::ClusterAutoscaler,
        CLUSTER_AUTOSCALER,
        "v1.31.5",
        "sha256:b90105c3470ad5059e8a7c11e2c63117dd8d499ae893d4cc76968e748a886b74"
    ),
    single!(
        Addon::ClusterAutoscaler,
        CLUSTER_AUTOSCALER,
        "v1.32.7",
        "sha256:b3a6d87dbd23b17c6bc8cf8436fc5eeca668f343d3a0fd86202a4ffaa2f8eb06"
    ),
    single!(
        Addon::ClusterAutoscaler,
        CLUSTER_AUTOSCALER,
        "v1.33.5",
        "sha256:24e9f4c5be7a76b4f1722977aa86450886b2efd0bc9edf42aa371ec7ff0aaa3e"
    ),
    single!(
        Addon::ClusterAutoscaler,
        CLUSTER_AUTOSCALER,
        "v1.33.6",
        "sha256:7b44e0f075b2c8f9952e339b6c396cd4d1c3831c24c0fe092a3e708c45e6ec51"
    ),
    single!(
        Addon::ClusterAutoscaler,
        CLUSTER_AUTOSCALER,
        "v1.34.4",
        "sha256:0ce6ef9044817fd4a6dc63bd5eeefbf4cd526634c8c3d3e3222575bda68ccd44"
    ),
    single!(
        Addon::ClusterAutoscaler,
        CLUSTER_AUTOSCALER,
        "v1.34.5",
        "sha256:5c3a56440ffc76eac79e7d7e840153c1fbe7b6e02d415e76a45ba2e0ef99a266"
    ),
    single!(
        Addon::ClusterAutoscaler,
        CLUSTER_AUTOSCALER,
        "v1.35.1",
        "sha256:b661fb3c7cbae8b787ad279d5ff8496fe0ec09f7bf2da46853f7069301b1bfc9"
    ),
    single!(
        Addon::ClusterAutoscaler,
        CLUSTER_AUTOSCALER,
        "v1.35.2",
        "sha256:aac369dc283927a623deb1af54696efcc722ae79255aa07788422e495bab887d"
    ),
    single!(
        Addon::ClusterAutoscaler,
        CLUSTER_AUTOSCALER,
        "v1.36.0",
        "sha256:dc5d62770338c2902f31b01f95c9fc8c456fd88baa5364ca154d6e47069ec885"
    ),
    single!(
        Addon::ClusterAutoscaler,
        CLUSTER_AUTOSCALER,
        "v1.36.1",
        "sha256:461388d03eb5b55db58941ee7a81d9a619dd15302b01cbab9f5a9946715994b4"
    ),
];

/// The release each addon runs on a Kubernetes minor (1.`minor`) when
/// `spec.addons.<addon>.version` does not say; `None` for a minor outside
/// the table (30 to 36, as `crate::version::RELEASES`).
///
/// The cloud-controller-manager for 1.36 is v1.35.2: no v1.36 image has a
/// promoted digest skiff could pin, and the version-skew policy allows the
/// cloud-controller-manager one minor older than the API server
/// (kubernetes.io, "Version Skew Policy", kube-controller-manager,
/// kube-scheduler, and cloud-controller-manager).
pub fn default_release(addon: Addon, minor: u32) -> Option<&'static AddonRelease> {
    let version = match (addon, minor) {
        (Addon::CloudControllerManager, 30) => "v1.30.10",
        (Addon::CloudControllerManager, 31) => "v1.31.9",
        (Addon::CloudControllerManager, 32) => "v1.32.8",
        (Addon::CloudControllerManager, 33) => "v1.33.4",
        (Addon::CloudControllerManager, 34) => "v1.34.3",
        (Addon::CloudControllerManager, 35 | 36) => "v1.35.2",
        (Addon::EbsCsiDriver, 30..=36) => "v1.63.1",
        (Addon::MetricsServer, 30) => "v0.7.2",
        (Addon::MetricsServer, 31..=36) => "v0.8.0",
        (Addon::ClusterAutoscaler, 30) => "v1.30.7",
        (Addon::ClusterAutoscaler, 31) => "v1.31.5",
        (Addon::ClusterAutoscaler, 32) => "v1.32.7",
        (Addon::ClusterAutoscaler, 33) => "v1.33.6",
        (Addon::ClusterAutoscaler, 34) => "v1.34.5",
        (Addon::ClusterAutoscaler, 35) => "v1.35.2",
        (Addon::ClusterAutoscaler, 36) => "v1.36.1",
        _ => return None,
    };
    find_release(addon, version)
}

/// The known release `version` of `addon`, if skiff has it.
pub fn find_release(addon: Addon, version: &str) -> Option<&'static AddonRelease> {
    ADDON_RELEASES
        .iter()
        .find(|release| release.addon == addon && release.version == version)
}

/// Every release of `addon` skiff knows, oldest first.
pub fn known_releases(addon: Addon) -> Vec<&'static str> {
    ADDON_RELEASES
        .iter()
        .filter(|release| release.addon == addon)
        .map(|release| release.version)
        .collect()
}

/// The release `addon` runs for Kubernetes 1.`minor` under `spec`: the
/// override if one is written, else the minor's default. `Err` names what
/// is wrong (an unknown override, or a minor with no release), for the
/// field `spec.addons.<addon>.version`.
pub fn release_for(
    spec: &AddonsSpec,
    addon: Addon,
    minor: u32,
) -> Result<&'static AddonRelease, String> {
    match spec.version_override(addon) {
        Some(version) => {
            find_release(addon, version).ok_or_else(|| unknown_release(addon, version))
        }
        None => default_release(addon, minor).ok_or_else(|| {
            format!(
                "skiff has no {addon} release for Kubernetes 1.{minor}; set \
                 spec.addons.{}.version to one of {} or turn it off with enabled: false",
                addon.field(),
                known_releases(addon).join(", ")
            )
        }),
    }
}

fn unknown_release(addon: Addon, version: &str) -> String {
    format!(
        "skiff does not know the images of {addon} {version:?}; use one of {} \
         (or remove the field to follow the cluster's Kubernetes minor)",
        known_releases(addon).join(", ")
    )
}

/// The problems of `spec.addons` as (field path, message): every version
/// override must be a release skiff knows the image digests of, and the
/// addons that need the cloud-controller-manager may not run without it.
///
/// The EBS CSI node plugin reads its instance's facts from the Node's
/// `providerID` and topology labels, which the cloud-controller-manager sets
/// (it cannot reach the instance metadata from a pod: hop limit 1;
/// aws-ebs-csi-driver docs/install.md, "Metadata"); cluster-autoscaler maps
/// Nodes to auto scaling groups by `providerID` (kubernetes/autoscaler
/// cluster-autoscaler/cloudprovider/aws/README.md, "Common Notes and
/// Gotchas").
pub fn findings(spec: &AddonsSpec) -> Vec<(String, String)> {
    let mut findings: Vec<(String, String)> = Addon::ALL
        .into_iter()
        .filter_map(|addon| {
            let version = spec.version_override(addon)?;
            if find_release(addon, version).is_some() {
                return None;
            }
            Some((
                format!("spec.addons.{}.version", addon.field()),
                unknown_release(addon, version),
            ))
        })
        .collect();
    if !spec.enabled(Addon::CloudControllerManager) {
        for addon in [Addon::EbsCsiDriver, Addon::ClusterAutoscaler] {
            if spec.enabled(addon) {
                findings.push((
                    format!(
                        "spec.addons.{}.enabled",
                        Addon::CloudControllerManager.field()
                    ),
                    format!(
                        "{addon} (spec.addons.{field}) needs the cloud-controller-manager \
                         (the Nodes' providerID and zone labels); turn it back on, or set \
                         spec.addons.{field}.enabled: false too",
                        field = addon.field()
                    ),
                ));
            }
        }
    }
    findings
}

/// Advice about `spec.addons` for a cluster at Kubernetes 1.`minor`, as
/// (field path, message): a pinned release meant for another minor.
///
/// The cloud-controller-manager "must not be newer than the kube-apiserver
/// instances" and "may be up to one minor version older" (kubernetes.io,
/// Version Skew Policy); cluster-autoscaler releases are made per Kubernetes
/// minor (`cluster-autoscaler-1.X.Y`). Both are warnings, not errors: the
/// pin is the operator's choice, and an upgrade must not be blocked by it.
pub fn warnings(spec: &AddonsSpec, minor: u32) -> Vec<(String, String)> {
    let mut warnings = Vec::new();
    for addon in [Addon::CloudControllerManager, Addon::ClusterAutoscaler] {
        if !spec.enabled(addon) {
            continue;
        }
        let Some(release) = spec
            .version_override(addon)
            .and_then(|version| find_release(addon, version))
        else {
            continue;
        };
        let Some(release_minor) = release
            .version
            .split('.')
            .nth(1)
            .and_then(|text| text.parse::<u32>().ok())
        else {
            continue;
        };
        let fits = match addon {
            Addon::CloudControllerManager => release_minor == minor || release_minor + 1 == minor,
            _ => release_minor == minor,
        };
        if !fits {
            let allowed = match addon {
                Addon::CloudControllerManager => format!(
                    "Kubernetes 1.{minor} supports a cloud-controller-manager of 1.{minor} or 1.{} \
                     (the version-skew policy)",
                    minor.saturating_sub(1)
                ),
                _ => format!("cluster-autoscaler is released per Kubernetes minor (1.{minor})"),
            };
            warnings.push((
                format!("spec.addons.{}.version", addon.field()),
                format!(
                    "{addon} {} is meant for Kubernetes 1.{release_minor}; {allowed}; remove \
                     the field to follow the cluster's minor",
                    release.version
                ),
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_entries_take_each_addons_default_and_written_ones_win() {
        let none = AddonsSpec::default();
        assert_eq!(
            none.enabled_addons(),
            vec![
                Addon::CloudControllerManager,
                Addon::EbsCsiDriver,
                Addon::MetricsServer
            ]
        );
        let written: AddonsSpec = serde_norway::from_str(
            "clusterAutoscaler: {enabled: true}\nmetricsServer: {enabled: false, version: v0.8.0}\n",
        )
        .expect("parses");
        assert!(written.enabled(Addon::ClusterAutoscaler));
        assert!(!written.enabled(Addon::MetricsServer));
        assert_eq!(
            written.version_override(Addon::MetricsServer),
            Some("v0.8.0")
        );
        assert_eq!(written.version_override(Addon::EbsCsiDriver), None);
    }

    #[test]
    fn unknown_addons_and_fields_are_refused() {
        let unknown = serde_norway::from_str::<AddonsSpec>("nodeTerminationHandler: {}\n")
            .expect_err("unknown addon");
        assert!(
            unknown.to_string().contains("nodeTerminationHandler"),
            "{unknown}"
        );
        let field = serde_norway::from_str::<AddonsSpec>("metricsServer: {replicas: 2}\n")
            .expect_err("unknown field");
        assert!(field.to_string().contains("replicas"), "{field}");
    }

    #[test]
    fn every_minor_of_the_version_table_has_a_pinned_release_of_every_addon() {
        for release in crate::version::RELEASES {
            for addon in Addon::ALL {
                let pinned = default_release(addon, release.minor)
                    .unwrap_or_else(|| panic!("{addon} for 1.{}", release.minor));
                assert_eq!(pinned.addon, addon);
                for image in pinned.images {
                    let hex = image.digest.strip_prefix("sha256:").expect("sha256");
                    assert_eq!(hex.len(), 64, "{}", image.reference());
                    assert!(hex
                        .bytes()
                        .all(|byte| byte.is_ascii_hexdigit() && !byte.is_ascii_uppercase()));
                    assert!(image.repository.starts_with("registry.k8s.io/"));
                }
            }
        }
        // The cloud-controller-manager and cluster-autoscaler follow the minor.
        assert_eq!(
            default_release(Addon::CloudControllerManager, 34)
                .unwrap()
                .version,
            "v1.34.3"
        );
        assert_eq!(
            default_release(Addon::ClusterAutoscaler, 36)
                .unwrap()
                .version,
            "v1.36.1"
        );
        assert_eq!(
            default_release(Addon::MetricsServer, 30).unwrap().version,
            "v0.7.2"
        );
        assert!(default_release(Addon::MetricsServer, 37).is_none());
    }

    #[test]
    fn an_unknown_version_override_names_the_field_and_the_known_releases() {
        let spec: AddonsSpec = serde_norway::from_str(
            "metricsServer: {version: v0.9.0}\nclusterAutoscaler: {version: v1.34.5}\n",
        )
        .expect("parses");
        let findings = findings(&spec);
        assert_eq!(findings.len(), 1, "{findings:?}");
        let (path, message) = &findings[0];
        assert_eq!(path, "spec.addons.metricsServer.version");
        assert!(message.contains("\"v0.9.0\""), "{message}");
        assert!(message.contains("v0.7.2, v0.8.0"), "{message}");
        assert_eq!(
            release_for(&spec, Addon::ClusterAutoscaler, 30)
                .unwrap()
                .version,
            "v1.34.5"
        );
        assert!(release_for(&spec, Addon::MetricsServer, 34).is_err());
    }

    #[test]
    fn a_pinned_release_for_another_minor_is_a_warning() {
        let spec: AddonsSpec = serde_norway::from_str(
            "cloudControllerManager: {version: v1.34.3}\nclusterAutoscaler: {enabled: true, version: v1.34.5}\n",
        )
        .expect("parses");
        assert!(warnings(&spec, 34).is_empty());
        let on_35 = warnings(&spec, 35);
        assert_eq!(on_35.len(), 1, "{on_35:?}");
        assert_eq!(on_35[0].0, "spec.addons.clusterAutoscaler.version");
        let on_36 = warnings(&spec, 36);
        assert_eq!(on_36.len(), 2, "{on_36:?}");
        assert_eq!(on_36[0].0, "spec.addons.cloudControllerManager.version");
        assert!(on_36[0].1.contains("1.36 or 1.35"), "{on_36:?}");
        assert_eq!(warnings(&spec, 33).len(), 2, "newer than the API server");
    }

    #[test]
    fn the_addons_that_need_the_cloud_controller_manager_are_refused_without_it() {
        let without: AddonsSpec =
            serde_norway::from_str("cloudControllerManager: {enabled: false}\n").expect("parses");
        let findings = findings(&without);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].0, "spec.addons.cloudControllerManager.enabled");
        assert!(findings[0]
            .1
            .contains("spec.addons.ebsCsiDriver.enabled: false"));

        let all_off: AddonsSpec = serde_norway::from_str(
            "cloudControllerManager: {enabled: false}\nebsCsiDriver: {enabled: false}\n",
        )
        .expect("parses");
        assert!(super::findings(&all_off).is_empty());

        let autoscaler: AddonsSpec = serde_norway::from_str(
            "cloudControllerManager: {enabled: false}\nebsCsiDriver: {enabled: false}\n\
             clusterAutoscaler: {enabled: true}\n",
        )
        .expect("parses");
        let findings = super::findings(&autoscaler);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(
            findings[0].1.starts_with("cluster-autoscaler "),
            "{findings:?}"
        );
    }
}
