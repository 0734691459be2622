//! Processor architectures of machine types and images, and the default
//! image patterns per architecture.
//!
//! An instance group's architecture is that of its machine type, as EC2's
//! `DescribeInstanceTypes` reports it (`ProcessorInfo.SupportedArchitectures`,
//! <https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ProcessorInfo.html>);
//! its image must be built for it (`Image.Architecture`,
//! <https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Image.html>).
//! kops reads the same field and prefers `x86_64` over `arm64` when a type
//! supports both (`MachineArchitecture` in kops'
//! `upup/pkg/fi/cloudup/new_cluster.go`); so does [`Architecture::preferred`].
//!
//! The default image patterns name their architecture (`...-amd64-server-*`,
//! `...-kernel-6.1-x86_64`): [`image_for_architecture`] swaps the token for
//! the group's architecture, so a default spec gets an arm64 image on a
//! Graviton type without a second pattern in the spec.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A processor architecture skiff builds nodes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// 64-bit x86 (EC2 `x86_64`; Kubernetes and Debian call it `amd64`).
    Amd64,
    /// 64-bit ARM, e.g. AWS Graviton (EC2 and Kubernetes `arm64`).
    Arm64,
}

impl Architecture {
    /// Every architecture skiff builds for, in the order of preference when
    /// a machine type supports several (x86 first, as kops does).
    pub const ALL: [Architecture; 2] = [Architecture::Amd64, Architecture::Arm64];

    /// EC2's name (`ArchitectureType`, the `architecture` filter of
    /// `DescribeImages`, `SupportedArchitectures`).
    pub fn ec2_name(self) -> &'static str {
        match self {
            Architecture::Amd64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }

    /// The architecture EC2 names `name`; `None` for those skiff does not
    /// build for (`i386`, `x86_64_mac`, `arm64_mac`).
    pub fn from_ec2_name(name: &str) -> Option<Architecture> {
        Architecture::ALL
            .into_iter()
            .find(|architecture| architecture.ec2_name() == name)
    }

    /// The architecture a machine type supporting `supported` runs nodes
    /// with: the first of [`Architecture::ALL`] it supports.
    pub fn preferred(supported: &[Architecture]) -> Option<Architecture> {
        Architecture::ALL
            .into_iter()
            .find(|architecture| supported.contains(architecture))
    }
}

/// Kubernetes' name (`kubernetes.io/arch`): `amd64` or `arm64`.
impl fmt::Display for Architecture {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Architecture::Amd64 => "amd64",
            Architecture::Arm64 => "arm64",
        })
    }
}

/// The default image patterns, one per architecture in the order of
/// [`Architecture::ALL`]; the first of each is the `OsFamily`'s default.
/// Sources: Canonical's names (kops `channels/stable`), Amazon Linux 2023's
/// (kops `docs/operations/images.md`).
pub const DEFAULT_IMAGES: [[&str; 2]; 2] = [
    [
        "099720109477/ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*",
        "099720109477/ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*",
    ],
    [
        "137112412989/al2023-ami-2023.*-kernel-6.1-x86_64",
        "137112412989/al2023-ami-2023.*-kernel-6.1-arm64",
    ],
];

/// The pattern to look `pattern` up with for `architecture`: a default
/// pattern (of any architecture) becomes the same image's pattern for
/// `architecture`; any other pattern or AMI ID is kept as written (the
/// lookup still filters patterns by architecture).
pub fn image_for_architecture(pattern: &str, architecture: Architecture) -> String {
    let index = Architecture::ALL
        .iter()
        .position(|known| *known == architecture)
        .unwrap_or(0);
    DEFAULT_IMAGES
        .iter()
        .find(|patterns| patterns.contains(&pattern))
        .map(|patterns| patterns[index].to_string())
        .unwrap_or_else(|| pattern.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OsFamily;

    #[test]
    fn the_families_defaults_are_the_amd64_patterns() {
        for family in [OsFamily::Debian, OsFamily::Rhel] {
            assert!(
                DEFAULT_IMAGES
                    .iter()
                    .any(|patterns| patterns[0] == family.default_image()),
                "{family}"
            );
        }
    }

    #[test]
    fn default_patterns_follow_the_architecture_and_others_are_kept() {
        let ubuntu = OsFamily::Debian.default_image();
        let arm = image_for_architecture(ubuntu, Architecture::Arm64);
        assert_eq!(
            arm,
            "099720109477/ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*"
        );
        assert_eq!(image_for_architecture(&arm, Architecture::Amd64), ubuntu);
        assert_eq!(
            image_for_architecture(OsFamily::Rhel.default_image(), Architecture::Arm64),
            "137112412989/al2023-ami-2023.*-kernel-6.1-arm64"
        );
        assert_eq!(
            image_for_architecture("123456789012/my-image-*", Architecture::Arm64),
            "123456789012/my-image-*"
        );
        assert_eq!(
            image_for_architecture("ami-0123456789abcdef0", Architecture::Arm64),
            "ami-0123456789abcdef0"
        );
    }

    #[test]
    fn x86_is_preferred_and_mac_types_have_none() {
        assert_eq!(
            Architecture::preferred(&[Architecture::Arm64, Architecture::Amd64]),
            Some(Architecture::Amd64)
        );
        assert_eq!(
            Architecture::preferred(&[Architecture::Arm64]),
            Some(Architecture::Arm64)
        );
        assert_eq!(Architecture::preferred(&[]), None);
        assert_eq!(Architecture::from_ec2_name("arm64_mac"), None);
        assert_eq!(
            Architecture::from_ec2_name("x86_64"),
            Some(Architecture::Amd64)
        );
    }
}
