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

/// The Tigera operator of [`CALICO_VERSION`], which installs Calico on a
/// cluster with Windows nodes. Calico removed its HostProcess manifests for
/// Windows (`manifests/calico-windows-vxlan.yaml`, `windows-kube-proxy.yaml`)
/// in commit a75d724add ("Remove tech-preview Windows manifests", first
/// released in v3.27.3 and v3.28.0); at v3.30.3 the operator renders the
/// Windows DaemonSet (`calico-node-windows`, images `calico/node-windows` and
/// `calico/cni-windows`) when the `Installation` sets
/// `calicoNetwork.windowsDataplane: HNS` (`manifests/operator-crds.yaml`:
/// "If not specified, it is disabled and the operator will not render the
/// Calico Windows nodes daemonset"), per Calico's "Install using Operator"
/// page for Windows (tigera/docs
/// `calico_versioned_docs/version-3.30/getting-started/kubernetes/windows-calico/operator.mdx`).
pub fn tigera_operator_url() -> String {
    format!(
        "https://raw.githubusercontent.com/projectcalico/calico/v{CALICO_VERSION}/manifests/tigera-operator.yaml"
    )
}

/// The CRDs the Tigera operator of [`CALICO_VERSION`] and Calico use
/// (`manifests/operator-crds.yaml`; from 3.30 on `tigera-operator.yaml`
/// holds none), applied before the operator.
pub fn operator_crds_url() -> String {
    format!(
        "https://raw.githubusercontent.com/projectcalico/calico/v{CALICO_VERSION}/manifests/operator-crds.yaml"
    )
}

/// The kubernetes-sigs/sig-windows-tools commit whose
/// `hostprocess/calico/kube-proxy/kube-proxy.yml` skiff applies (the last
/// commit that changed that folder, "Verify downloaded kube-proxy.exe against
/// sha256 sum file (#392)"). The repository tags no releases that hold it,
/// so the URL names the commit, which never changes.
pub const SIG_WINDOWS_TOOLS_COMMIT: &str = "bed2bcf8907c83be3065ecce94ff601a3cf665a9";

/// kube-proxy for Windows beside Calico, as a HostProcess DaemonSet
/// (`kube-system/kube-proxy-windows`, ServiceAccount `kube-proxy`, the
/// kubeadm `kube-proxy` ConfigMap): the manifest Calico's operator page for
/// Windows recommends. Its image `sigwindowstools/kube-proxy:` with the
/// literal `KUBE_PROXY_VERSION-calico-hostprocess`, where the node puts
/// `v<cluster version>`; sig-windows-tools' `sync-kube-proxy-images`
/// workflow builds that image every day for each kube-proxy release from
/// 1.33 on.
pub fn windows_kube_proxy_url() -> String {
    format!(
        "https://raw.githubusercontent.com/kubernetes-sigs/sig-windows-tools/{SIG_WINDOWS_TOOLS_COMMIT}/hostprocess/calico/kube-proxy/kube-proxy.yml"
    )
}

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
        assert!(tigera_operator_url().contains(&format!("/v{CALICO_VERSION}/")));
        assert!(operator_crds_url().contains(&format!("/v{CALICO_VERSION}/")));
        assert_eq!(SIG_WINDOWS_TOOLS_COMMIT.len(), 40);
        assert!(windows_kube_proxy_url().contains(&format!("/{SIG_WINDOWS_TOOLS_COMMIT}/")));
    }
}
