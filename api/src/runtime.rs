//! The container runtime a node runs (`spec.containerRuntime` on the
//! cluster, overridable per instance group): which packages the bootstrap
//! installs and which CRI socket the kubelet, kubeadm and `crictl` use.
//!
//! Both runtimes run with the systemd cgroup driver (the kubelet's
//! `cgroupDriver: systemd`; the setup guide §1: with systemd as init, the
//! kubelet and the runtime must both use it) and the pause image of the
//! cluster's Kubernetes version.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A CRI implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ContainerRuntime {
    /// containerd, from the distribution (Debian family, Amazon Linux) or
    /// Docker's repository (other RHEL-like systems).
    #[default]
    #[serde(rename = "containerd")]
    Containerd,
    /// CRI-O, from the CRI-O project's packages of the cluster's minor
    /// (`isv:/cri-o:/stable:/vX.Y` on download.opensuse.org).
    #[serde(rename = "cri-o")]
    CriO,
}

impl ContainerRuntime {
    /// The CRI endpoint kubeadm's `nodeRegistration.criSocket` and
    /// `crictl`'s `runtime-endpoint` name.
    pub fn cri_socket(self) -> &'static str {
        match self {
            ContainerRuntime::Containerd => "unix:///run/containerd/containerd.sock",
            ContainerRuntime::CriO => "unix:///var/run/crio/crio.sock",
        }
    }

    /// Whether this is the default (what a spec without the field gets).
    pub fn is_default(&self) -> bool {
        *self == ContainerRuntime::default()
    }
}

impl fmt::Display for ContainerRuntime {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            ContainerRuntime::Containerd => "containerd",
            ContainerRuntime::CriO => "cri-o",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_parse_by_their_spec_names_and_name_their_sockets() {
        let crio: ContainerRuntime = serde_norway::from_str("cri-o").expect("parses");
        assert_eq!(crio, ContainerRuntime::CriO);
        assert_eq!(crio.cri_socket(), "unix:///var/run/crio/crio.sock");
        let containerd: ContainerRuntime = serde_norway::from_str("containerd").expect("parses");
        assert_eq!(containerd, ContainerRuntime::default());
        assert_eq!(
            containerd.cri_socket(),
            "unix:///run/containerd/containerd.sock"
        );
        assert!(serde_norway::from_str::<ContainerRuntime>("docker").is_err());
        assert_eq!(ContainerRuntime::CriO.to_string(), "cri-o");
    }
}
