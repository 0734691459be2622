//! Kubernetes versions: parsing, the range skiff supports, and the facts that
//! follow from a version (package repository channel, pause image, kubeadm
//! configuration API).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The oldest minor version skiff builds clusters for.
pub const MIN_SUPPORTED_MINOR: u32 = 30;
/// The newest minor version skiff builds clusters for.
pub const MAX_SUPPORTED_MINOR: u32 = 37;
/// The version `create cluster` uses when none is given.
pub const DEFAULT_VERSION: &str = "1.34.2";

/// A text that is not a full Kubernetes version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a Kubernetes version like 1.34.2")]
pub struct InvalidKubernetesVersion {
    /// What was given.
    pub text: String,
}

/// A full Kubernetes release version such as `1.34.2` (a leading `v` is accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubernetesVersion {
    /// Always 1.
    pub major: u32,
    /// The minor release, which picks the package channel.
    pub minor: u32,
    /// The patch release.
    pub patch: u32,
}

impl KubernetesVersion {
    /// Whether skiff knows how to bootstrap this version.
    pub fn is_supported(&self) -> bool {
        self.major == 1 && (MIN_SUPPORTED_MINOR..=MAX_SUPPORTED_MINOR).contains(&self.minor)
    }

    /// The supported range, for error messages.
    pub fn supported_range() -> String {
        format!("1.{MIN_SUPPORTED_MINOR}.x to 1.{MAX_SUPPORTED_MINOR}.x")
    }

    /// `v1.34`: the channel of the community package repository (pkgs.k8s.io).
    pub fn package_channel(&self) -> String {
        format!("v{}.{}", self.major, self.minor)
    }

    /// The sandbox (pause) image that kubeadm of this version expects, so that
    /// containerd and kubeadm agree and the image is not pulled twice.
    pub fn pause_image(&self) -> &'static str {
        match self.minor {
            0..=30 => "registry.k8s.io/pause:3.9",
            31..=33 => "registry.k8s.io/pause:3.10",
            _ => "registry.k8s.io/pause:3.10.1",
        }
    }

    /// The kubeadm configuration API this version reads: `v1beta4` from 1.31 on.
    pub fn kubeadm_api_version(&self) -> &'static str {
        if self.minor >= 31 {
            "kubeadm.k8s.io/v1beta4"
        } else {
            "kubeadm.k8s.io/v1beta3"
        }
    }
}

impl fmt::Display for KubernetesVersion {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for KubernetesVersion {
    type Err = InvalidKubernetesVersion;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bare = text.trim().strip_prefix('v').unwrap_or(text.trim());
        let parts: Vec<&str> = bare.split('.').collect();
        let invalid = || InvalidKubernetesVersion {
            text: text.to_string(),
        };
        if parts.len() != 3 {
            return Err(invalid());
        }
        let number = |part: &str| -> Result<u32, InvalidKubernetesVersion> {
            if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_digit()) || part.len() > 6
            {
                return Err(invalid());
            }
            part.parse().map_err(|_| invalid())
        };
        Ok(KubernetesVersion {
            major: number(parts[0])?,
            minor: number(parts[1])?,
            patch: number(parts[2])?,
        })
    }
}

impl Serialize for KubernetesVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KubernetesVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A YAML author may write 1.34 unquoted, which parses as a float; ask
        // for the full version rather than guessing a patch release.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(f64),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
            Raw::Number(number) => Err(serde::de::Error::custom(format!(
                "{number} is not a full Kubernetes version; write it quoted with a patch release, like \"1.34.2\""
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_and_without_v() {
        let version: KubernetesVersion = "v1.31.4".parse().expect("parses");
        assert_eq!(version.to_string(), "1.31.4");
        assert_eq!(version.package_channel(), "v1.31");
        assert_eq!(version.kubeadm_api_version(), "kubeadm.k8s.io/v1beta4");
        assert!(version.is_supported());
    }

    #[test]
    fn rejects_partial_and_garbage() {
        for text in ["1.31", "1.x.0", "", "1.31.0-rc1", "one.two.three"] {
            assert!(
                text.parse::<KubernetesVersion>().is_err(),
                "{text} accepted"
            );
        }
        assert_eq!(
            "1.31"
                .parse::<KubernetesVersion>()
                .map_err(|error| error.to_string()),
            Err("\"1.31\" is not a Kubernetes version like 1.34.2".to_string())
        );
    }

    #[test]
    fn supported_range_is_enforced() {
        let old: KubernetesVersion = "1.20.0".parse().expect("parses");
        assert!(!old.is_supported());
        let default: KubernetesVersion = DEFAULT_VERSION.parse().expect("parses");
        assert!(default.is_supported());
    }

    #[test]
    fn older_versions_use_v1beta3() {
        let version: KubernetesVersion = "1.30.2".parse().expect("parses");
        assert_eq!(version.kubeadm_api_version(), "kubeadm.k8s.io/v1beta3");
        assert_eq!(version.pause_image(), "registry.k8s.io/pause:3.9");
    }
}
