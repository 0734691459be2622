//! Kubernetes versions: parsing, the table of releases skiff builds, the
//! facts that follow from a version (package repository channel, kubeadm
//! configuration API, the pause, CoreDNS and etcd images kubeadm of that
//! minor uses), and the rules for changing a cluster's version.
//!
//! # Why a table and not a range
//!
//! A version skiff has never heard of may not exist (no packages, so every
//! node fails at boot), and a version whose kubeadm defaults skiff does not
//! know cannot be upgraded to safely. So a *new* cluster, and a *change* of
//! a cluster's version, may only name a version of [`supported_versions`].
//! A spec stored earlier with a version outside the table still loads,
//! plans, rolls and deletes: its facts are those of its minor's row, or of
//! the nearest row (kubeadm falls back to the nearest etcd version the same
//! way, `EtcdSupportedVersion` in `cmd/kubeadm/app/constants/constants.go`).
//!
//! # The rules for a change ([`check_change`])
//!
//! kubeadm upgrades one minor at a time and never downgrades (`kubeadm
//! upgrade apply` refuses to skip a minor, and the version-skew policy
//! forbids a kubelet newer than the API server). So a stored spec may move
//! to a later patch of its minor or to any patch of the next minor that is
//! in the table; anything else is refused, naming the versions allowed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The version `create cluster` uses when none is given; a row of the table.
pub const DEFAULT_VERSION: &str = "1.34.2";

/// What kubeadm of one minor release uses, and which of its patch releases
/// skiff offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinorRelease {
    /// The minor version (1.`minor`).
    pub minor: u32,
    /// The newest patch release skiff knows of; `None` for a minor kept only
    /// so that clusters stored at it still render (new clusters and version
    /// changes cannot pick it).
    pub latest_patch: Option<u32>,
    /// The kubeadm configuration API (`kubeadm.k8s.io/v1beta4` from 1.31 on).
    pub kubeadm_api_version: &'static str,
    /// The sandbox (pause) image: kubeadm's `PauseVersion`.
    pub pause_image: &'static str,
    /// The CoreDNS version kubeadm deploys: kubeadm's `CoreDNSVersion`.
    pub coredns_version: &'static str,
    /// The etcd image version kubeadm runs: kubeadm's `SupportedEtcdVersion`
    /// for this minor (in the newest patch release of the minor).
    pub etcd_version: &'static str,
}

/// The table, oldest first.
///
/// Sources (looked up in December 2026). The numbers are kubeadm's constants
/// in `cmd/kubeadm/app/constants/constants.go` of kubernetes/kubernetes:
/// `PauseVersion`, `CoreDNSVersion` and `SupportedEtcdVersion[minor]`.
/// * 1.31: constants.go at commit 3301161c36ac (release-1.31):
///   `PauseVersion = "3.10"`, `CoreDNSVersion = "v1.11.3"`,
///   `SupportedEtcdVersion{31: "3.5.15-0"}`.
/// * 1.32: constants.go at commit 00886ac01fec (release-1.32, late patch):
///   `PauseVersion = "3.10"`, `CoreDNSVersion = "v1.11.3"`,
///   `SupportedEtcdVersion{32: "3.5.24-0"}`.
/// * 1.30: `SupportedEtcdVersion{30: "3.5.15-0"}` in the 1.31 file above;
///   `PauseVersion = "3.9"` as skiff used it before this table;
///   `CoreDNSVersion = "v1.11.1"` is kubeadm 1.30's value as recalled (not
///   found in the index: verify).
/// * 1.33: `SupportedEtcdVersion{33: "3.5.24-0", 34: "3.6.5-0"}` as copied
///   from a release branch's constants.go into a public repository
///   (the index has no 1.33 copy of kubeadm itself); `PauseVersion = "3.10"`
///   (as skiff already used) and `CoreDNSVersion = "v1.12.0"` (kubeadm
///   1.33's bump; not found in the index: verify).
/// * 1.34: `PauseVersion = "3.10.1"` (as skiff already used), etcd
///   `3.6.5-0` (same source as 1.33), `CoreDNSVersion = "v1.12.1"` (not
///   found in the index: verify).
/// * 1.35: `DefaultEtcdVersion = "3.6.6-0"`, `CoreDNSVersion = "v1.13.1"`,
///   `PauseVersion = "3.10.1"`: a test fixture copied from kubeadm's
///   constants.go at tag v1.35.8.
/// * 1.36: etcd's upgrade guide for Kubernetes (the diff of constants.go
///   setting `SupportedEtcdVersion{34,35,36: "3.6.9-0"}`); pause and CoreDNS
///   taken unchanged from 1.35 (not found in the index: verify).
///
/// The newest patch releases are the newest `kubernetesVersion` found in
/// public kubeadm configurations of the search index (1.33.13, 1.34.7,
/// 1.35.8, 1.36.3), not an official release list: add rows as releases
/// appear. A version missing here is refused only when it is *newly*
/// stored; see the module documentation.
pub const RELEASES: &[MinorRelease] = &[
    MinorRelease {
        minor: 30,
        latest_patch: None,
        kubeadm_api_version: "kubeadm.k8s.io/v1beta3",
        pause_image: "registry.k8s.io/pause:3.9",
        coredns_version: "v1.11.1",
        etcd_version: "3.5.15-0",
    },
    MinorRelease {
        minor: 31,
        latest_patch: None,
        kubeadm_api_version: "kubeadm.k8s.io/v1beta4",
        pause_image: "registry.k8s.io/pause:3.10",
        coredns_version: "v1.11.3",
        etcd_version: "3.5.15-0",
    },
    MinorRelease {
        minor: 32,
        latest_patch: None,
        kubeadm_api_version: "kubeadm.k8s.io/v1beta4",
        pause_image: "registry.k8s.io/pause:3.10",
        coredns_version: "v1.11.3",
        etcd_version: "3.5.24-0",
    },
    MinorRelease {
        minor: 33,
        latest_patch: Some(13),
        kubeadm_api_version: "kubeadm.k8s.io/v1beta4",
        pause_image: "registry.k8s.io/pause:3.10",
        coredns_version: "v1.12.0",
        etcd_version: "3.5.24-0",
    },
    MinorRelease {
        minor: 34,
        latest_patch: Some(7),
        kubeadm_api_version: "kubeadm.k8s.io/v1beta4",
        pause_image: "registry.k8s.io/pause:3.10.1",
        coredns_version: "v1.12.1",
        etcd_version: "3.6.5-0",
    },
    MinorRelease {
        minor: 35,
        latest_patch: Some(8),
        kubeadm_api_version: "kubeadm.k8s.io/v1beta4",
        pause_image: "registry.k8s.io/pause:3.10.1",
        coredns_version: "v1.13.1",
        etcd_version: "3.6.6-0",
    },
    MinorRelease {
        minor: 36,
        latest_patch: Some(3),
        kubeadm_api_version: "kubeadm.k8s.io/v1beta4",
        pause_image: "registry.k8s.io/pause:3.10.1",
        coredns_version: "v1.13.1",
        etcd_version: "3.6.9-0",
    },
];

/// Every version a new cluster or a version change may name, oldest first.
pub fn supported_versions() -> Vec<KubernetesVersion> {
    RELEASES
        .iter()
        .filter_map(|release| release.latest_patch.map(|latest| (release.minor, latest)))
        .flat_map(|(minor, latest)| {
            (0..=latest).map(move |patch| KubernetesVersion {
                major: 1,
                minor,
                patch,
            })
        })
        .collect()
}

/// The versions a spec at `from` may be changed to: later patches of its
/// minor and every patch of the next minor, from the table.
pub fn allowed_next(from: KubernetesVersion) -> Vec<KubernetesVersion> {
    supported_versions()
        .into_iter()
        .filter(|version| {
            version.major == from.major && *version > from && version.minor <= from.minor + 1
        })
        .collect()
}

/// Versions for a message, runs of patches folded: `1.34.3 to 1.34.7, 1.35.0 to 1.35.8`.
pub fn describe_versions(versions: &[KubernetesVersion]) -> String {
    let mut runs: Vec<(KubernetesVersion, KubernetesVersion)> = Vec::new();
    for version in versions {
        match runs.last_mut() {
            Some((_, last))
                if last.major == version.major
                    && last.minor == version.minor
                    && last.patch + 1 == version.patch =>
            {
                *last = *version
            }
            _ => runs.push((*version, *version)),
        }
    }
    if runs.is_empty() {
        return "none".to_string();
    }
    runs.iter()
        .map(|(first, last)| {
            if first == last {
                first.to_string()
            } else {
                format!("{first} to {last}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A version that may not be stored, with the versions that may.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionChangeError {
    /// A new cluster, or a change, names a version skiff does not offer.
    #[error("spec.kubernetesVersion: {version} is not a version skiff builds; {}", allowed_sentence(*.from, .allowed))]
    NotInTable {
        /// The version asked for.
        version: KubernetesVersion,
        /// The stored version, for a change.
        from: Option<KubernetesVersion>,
        /// The versions that may be stored instead.
        allowed: Vec<KubernetesVersion>,
    },
    /// A change raises the minor by more than one.
    #[error("spec.kubernetesVersion: {from} -> {to} skips a minor release; Kubernetes upgrades one minor at a time (control plane first, then nodes); {}", allowed_sentence(Some(*.from), .allowed))]
    SkipsMinor {
        /// The stored version.
        from: KubernetesVersion,
        /// The version asked for.
        to: KubernetesVersion,
        /// The versions that may be stored instead.
        allowed: Vec<KubernetesVersion>,
    },
    /// A change lowers the version.
    #[error("spec.kubernetesVersion: {from} -> {to} is a downgrade, which kubeadm does not support (a cluster's etcd data and API objects may not be read by an older release); {}", allowed_sentence(Some(*.from), .allowed))]
    Downgrade {
        /// The stored version.
        from: KubernetesVersion,
        /// The version asked for.
        to: KubernetesVersion,
        /// The versions that may be stored instead.
        allowed: Vec<KubernetesVersion>,
    },
}

impl VersionChangeError {
    /// The versions the message names.
    pub fn allowed(&self) -> &[KubernetesVersion] {
        match self {
            VersionChangeError::NotInTable { allowed, .. }
            | VersionChangeError::SkipsMinor { allowed, .. }
            | VersionChangeError::Downgrade { allowed, .. } => allowed,
        }
    }
}

fn allowed_sentence(from: Option<KubernetesVersion>, allowed: &[KubernetesVersion]) -> String {
    match from {
        None => format!("choose one of {}", describe_versions(allowed)),
        Some(from) if allowed.is_empty() => format!(
            "keep {from}: no version in skiff's table ({}) is a step up from it",
            describe_versions(&supported_versions())
        ),
        Some(from) => format!(
            "from {from} the allowed versions are {} (or keep {from})",
            describe_versions(allowed)
        ),
    }
}

/// Checks that a spec whose stored version is `from` (`None`: a new
/// cluster) may be stored at `to`. Keeping the version is always allowed,
/// even one that is no longer in the table.
pub fn check_change(
    from: Option<KubernetesVersion>,
    to: KubernetesVersion,
) -> Result<(), VersionChangeError> {
    let Some(from) = from else {
        if to.is_offered() {
            return Ok(());
        }
        return Err(VersionChangeError::NotInTable {
            version: to,
            from: None,
            allowed: supported_versions(),
        });
    };
    if from == to {
        return Ok(());
    }
    let allowed = allowed_next(from);
    if to < from {
        return Err(VersionChangeError::Downgrade { from, to, allowed });
    }
    if to.major != from.major || to.minor > from.minor + 1 {
        return Err(VersionChangeError::SkipsMinor { from, to, allowed });
    }
    // A minor kept only for the specs stored at it (a row without offered
    // patches: end of life) is still a step on the way up: a cluster left
    // at 1.30 must be able to reach an offered minor one minor at a time.
    let passing_through = RELEASES
        .iter()
        .any(|release| release.minor == to.minor && release.latest_patch.is_none());
    if !to.is_offered() && !passing_through {
        return Err(VersionChangeError::NotInTable {
            version: to,
            from: Some(from),
            allowed,
        });
    }
    Ok(())
}

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
    /// Parses `1.34.2` or `v1.34.2`.
    pub fn parse(text: &str) -> Result<KubernetesVersion, InvalidKubernetesVersion> {
        text.parse()
    }

    /// Whether skiff knows how to bootstrap this version: its minor has a
    /// row in [`RELEASES`], or is one past the newest row (a spec stored by
    /// an older skiff, whose range reached that far; rendered with the
    /// newest row's facts). Whether a spec may newly be stored at it is
    /// [`check_change`]'s question.
    pub fn is_supported(&self) -> bool {
        let (Some(oldest), Some(newest)) = (RELEASES.first(), RELEASES.last()) else {
            return false;
        };
        self.major == 1 && (oldest.minor..=newest.minor + 1).contains(&self.minor)
    }

    /// Whether the version is in the table a new cluster or a version
    /// change may pick from.
    pub fn is_offered(&self) -> bool {
        self.major == 1
            && RELEASES.iter().any(|release| {
                release.minor == self.minor
                    && release
                        .latest_patch
                        .is_some_and(|latest| self.patch <= latest)
            })
    }

    /// The versions skiff renders, for error messages: `1.30.x to 1.37.x`.
    pub fn supported_range() -> String {
        match (RELEASES.first(), RELEASES.last()) {
            (Some(oldest), Some(newest)) => {
                format!("1.{}.x to 1.{}.x", oldest.minor, newest.minor + 1)
            }
            _ => "no version".to_string(),
        }
    }

    /// The row whose facts apply: this minor's, or the nearest one.
    pub fn release(&self) -> &'static MinorRelease {
        let nearest = RELEASES
            .iter()
            .min_by_key(|release| release.minor.abs_diff(self.minor));
        nearest.unwrap_or(&RELEASES[0])
    }

    /// `v1.34`: the channel of the community package repository (pkgs.k8s.io).
    pub fn package_channel(&self) -> String {
        format!("v{}.{}", self.major, self.minor)
    }

    /// The sandbox (pause) image that kubeadm of this version expects, so that
    /// containerd and kubeadm agree and the image is not pulled twice.
    pub fn pause_image(&self) -> &'static str {
        self.release().pause_image
    }

    /// The kubeadm configuration API this version reads: `v1beta4` from 1.31 on.
    pub fn kubeadm_api_version(&self) -> &'static str {
        self.release().kubeadm_api_version
    }

    /// The CoreDNS version kubeadm of this minor deploys, e.g. `v1.12.1`.
    pub fn coredns_version(&self) -> &'static str {
        self.release().coredns_version
    }

    /// The etcd image version kubeadm of this minor runs, e.g. `3.6.5-0`.
    pub fn etcd_version(&self) -> &'static str {
        self.release().etcd_version
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

    fn version(text: &str) -> KubernetesVersion {
        text.parse().expect("a version")
    }

    #[test]
    fn parses_with_and_without_v() {
        let parsed = version("v1.31.4");
        assert_eq!(parsed.to_string(), "1.31.4");
        assert_eq!(parsed.package_channel(), "v1.31");
        assert_eq!(parsed.kubeadm_api_version(), "kubeadm.k8s.io/v1beta4");
        assert!(parsed.is_supported());
        assert_eq!(KubernetesVersion::parse("1.35.1"), Ok(version("v1.35.1")));
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
        assert!(!version("1.20.0").is_supported());
        assert!(version(DEFAULT_VERSION).is_supported());
        // A spec stored by a skiff whose range reached 1.37 still renders.
        assert!(version("1.37.0").is_supported());
        assert!(!version("1.38.0").is_supported());
        assert_eq!(KubernetesVersion::supported_range(), "1.30.x to 1.37.x");
    }

    #[test]
    fn older_versions_use_v1beta3() {
        let old = version("1.30.2");
        assert_eq!(old.kubeadm_api_version(), "kubeadm.k8s.io/v1beta3");
        assert_eq!(old.pause_image(), "registry.k8s.io/pause:3.9");
    }

    #[test]
    fn the_default_is_a_row_of_the_table_and_rows_are_in_order() {
        assert!(version(DEFAULT_VERSION).is_offered());
        assert!(supported_versions().contains(&version(DEFAULT_VERSION)));
        for pair in RELEASES.windows(2) {
            assert_eq!(pair[0].minor + 1, pair[1].minor, "{pair:?}");
        }
        let offered: Vec<u32> = RELEASES
            .iter()
            .filter(|release| release.latest_patch.is_some())
            .map(|release| release.minor)
            .collect();
        assert_eq!(offered, [33, 34, 35, 36]);
        let versions = supported_versions();
        assert!(versions.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn facts_follow_the_minor_and_fall_back_to_the_nearest_row() {
        assert_eq!(version("1.34.2").coredns_version(), "v1.12.1");
        assert_eq!(version("1.35.1").etcd_version(), "3.6.6-0");
        assert_eq!(
            version("1.33.1").pause_image(),
            "registry.k8s.io/pause:3.10"
        );
        // Beyond the table: the newest row's facts, as kubeadm's nearest etcd.
        assert_eq!(
            version("1.37.1").etcd_version(),
            version("1.36.0").etcd_version()
        );
        assert_eq!(
            version("1.29.0").kubeadm_api_version(),
            "kubeadm.k8s.io/v1beta3"
        );
    }

    #[test]
    fn next_versions_are_later_patches_and_the_next_minor() {
        let allowed = allowed_next(version("1.34.2"));
        assert!(allowed.contains(&version("1.34.3")));
        assert!(allowed.contains(&version("1.35.0")));
        assert!(allowed.contains(&version("1.35.1")));
        assert!(!allowed.contains(&version("1.34.2")));
        assert!(!allowed.contains(&version("1.34.1")));
        assert!(!allowed.iter().any(|next| next.minor == 36));
        assert_eq!(
            describe_versions(&allowed),
            "1.34.3 to 1.34.7, 1.35.0 to 1.35.8"
        );
    }

    #[test]
    fn changes_are_checked_one_minor_up_never_down() {
        let at = |text: &str| Some(version(text));
        assert_eq!(check_change(at("1.34.2"), version("1.34.2")), Ok(()));
        assert_eq!(check_change(at("1.34.2"), version("1.35.1")), Ok(()));
        assert_eq!(check_change(at("1.34.2"), version("1.34.3")), Ok(()));
        assert_eq!(check_change(None, version("1.35.1")), Ok(()));

        let skipped = check_change(at("1.34.2"), version("1.36.0")).expect_err("skips 1.35");
        assert!(matches!(skipped, VersionChangeError::SkipsMinor { .. }));
        let message = skipped.to_string();
        assert!(
            message.starts_with("spec.kubernetesVersion: 1.34.2 -> 1.36.0 skips a minor"),
            "{message}"
        );
        assert!(
            message.contains("1.34.3 to 1.34.7, 1.35.0 to 1.35.8"),
            "{message}"
        );

        for (from, to) in [("1.35.1", "1.34.2"), ("1.34.2", "1.34.1")] {
            let error = check_change(at(from), version(to)).expect_err("a downgrade");
            assert!(
                matches!(error, VersionChangeError::Downgrade { .. }),
                "{error}"
            );
            assert_eq!(error.allowed(), allowed_next(version(from)).as_slice());
            assert!(error.to_string().contains("downgrade"), "{error}");
        }

        let unknown = check_change(at("1.34.2"), version("1.34.99")).expect_err("not released");
        assert!(matches!(unknown, VersionChangeError::NotInTable { .. }));
        assert!(
            unknown.to_string().contains("1.35.0 to 1.35.8"),
            "{unknown}"
        );
        let new = check_change(None, version("1.32.4")).expect_err("not offered");
        let message = new.to_string();
        assert!(
            message.contains(&describe_versions(&supported_versions())),
            "{message}"
        );
        assert!(message.contains("1.33.0 to 1.33.13"), "{message}");
    }

    #[test]
    fn a_stored_version_outside_the_table_may_stay_or_step_up() {
        let stored = Some(version("1.32.4"));
        assert_eq!(check_change(stored, version("1.32.4")), Ok(()));
        assert_eq!(check_change(stored, version("1.33.13")), Ok(()));
        // A later patch of its end-of-life minor is a step on the way too.
        assert_eq!(check_change(stored, version("1.32.5")), Ok(()));
        // A minor skiff has no row for stays refused, naming what is allowed.
        let error = check_change(Some(version("1.36.1")), version("1.37.0")).expect_err("no row");
        assert!(error.to_string().contains("1.36.2 to 1.36.3"), "{error}");
    }

    #[test]
    fn a_cluster_at_an_end_of_life_minor_can_climb_one_minor_at_a_time() {
        let step = |from: &str, to: &str| check_change(Some(version(from)), version(to));
        assert!(
            step("1.30.4", "1.31.2").is_ok(),
            "1.30 -> 1.31 passes through"
        );
        assert!(
            step("1.31.2", "1.32.9").is_ok(),
            "1.31 -> 1.32 passes through"
        );
        assert!(
            step("1.32.9", "1.33.0").is_ok(),
            "and reaches an offered minor"
        );
        assert!(
            step("1.30.4", "1.32.0").is_err(),
            "still one minor at a time"
        );
        assert!(
            check_change(None, version("1.31.2")).is_err(),
            "never for a new cluster"
        );
    }
}
