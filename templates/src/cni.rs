//! The pinned CNI releases the first control-plane node installs.
//!
//! A pod network must never change under a running cluster because a
//! project published a new "latest": every download is a tagged release
//! URL, and changing a version here changes every control-plane node's
//! user-data, so the upgrade shows up in `skiff update cluster` and rolls
//! like any other change. Bump versions here, deliberately, with a test run.
//!
//! Integrity: the Cilium CLI archive is checked against the `.sha256sum`
//! file published with the same release (catches truncation and mirror
//! corruption, not a compromised release). The manifests carry an optional
//! pinned SHA-256 that the node verifies when set; they are unset because
//! the digests could not be computed on the machine that wrote this (no
//! network). Fill them with `curl -fsSL <url> | sha256sum`.

use skiff_api::Cni;

/// Calico, installed from its single-file manifest.
pub const CALICO_VERSION: &str = "3.30.3";
/// Flannel, installed from its single-file manifest.
pub const FLANNEL_VERSION: &str = "0.27.4";
/// Cilium, installed with the Cilium CLI (Cilium publishes no plain manifest).
pub const CILIUM_VERSION: &str = "1.18.5";
/// The Cilium CLI release that installs [`CILIUM_VERSION`].
pub const CILIUM_CLI_VERSION: &str = "0.18.7";

/// What the node downloads to install the pod network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniRelease {
    /// Which plugin.
    pub cni: Cni,
    /// The plugin's release, e.g. `3.30.3`.
    pub version: &'static str,
    /// The manifest (Calico, Flannel), or the Cilium CLI archive with the
    /// literal `ARCH` where the node puts `amd64` or `arm64`.
    pub download_url: String,
    /// The SHA-256 of the manifest, verified on the node when set.
    pub sha256: Option<&'static str>,
}

/// The pinned release of `cni`.
pub fn release(cni: Cni) -> CniRelease {
    match cni {
        Cni::Calico => CniRelease {
            cni,
            version: CALICO_VERSION,
            download_url: format!(
                "https://raw.githubusercontent.com/projectcalico/calico/v{CALICO_VERSION}/manifests/calico.yaml"
            ),
            sha256: None,
        },
        Cni::Flannel => CniRelease {
            cni,
            version: FLANNEL_VERSION,
            download_url: format!(
                "https://github.com/flannel-io/flannel/releases/download/v{FLANNEL_VERSION}/kube-flannel.yml"
            ),
            sha256: None,
        },
        Cni::Cilium => CniRelease {
            cni,
            version: CILIUM_VERSION,
            download_url: format!(
                "https://github.com/cilium/cilium-cli/releases/download/v{CILIUM_CLI_VERSION}/cilium-linux-ARCH.tar.gz"
            ),
            sha256: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_download_is_a_tagged_release() {
        for cni in [Cni::Calico, Cni::Flannel, Cni::Cilium] {
            let pinned = release(cni);
            assert!(!pinned.download_url.contains("latest"), "{pinned:?}");
            assert!(!pinned.download_url.contains("/master/"), "{pinned:?}");
            assert!(!pinned.download_url.contains("/main/"), "{pinned:?}");
            assert!(pinned.download_url.contains("/v"), "{pinned:?}");
        }
    }
}
