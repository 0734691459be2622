//! Pieces shared by both kinds of document: object metadata and the
//! rolling-update budget.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Name and labels of a document, in the Kubernetes style.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// The document's name: the cluster's DNS name, or the instance group's name.
    pub name: String,
    /// Free-form labels; instance groups carry `skiff.dev/cluster`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// An absolute count or a percentage of a group's size, as Kubernetes writes
/// `maxSurge: 1` or `maxSurge: 25%`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntOrPercent {
    /// A number of instances.
    Int(u32),
    /// A percentage (0 to 100) of the group's desired size.
    Percent(u32),
}

impl IntOrPercent {
    /// Resolves the value against a group of `total` instances. Percentages
    /// round up for surge (so 25% of 3 is 1, never 0) and down for
    /// unavailability, the way Kubernetes deployments do.
    pub fn resolve(self, total: u32, round_up: bool) -> u32 {
        match self {
            IntOrPercent::Int(count) => count,
            IntOrPercent::Percent(percent) => {
                let scaled = u64::from(total) * u64::from(percent);
                let value = if round_up {
                    scaled.div_ceil(100)
                } else {
                    scaled / 100
                };
                u32::try_from(value).unwrap_or(u32::MAX)
            }
        }
    }

    /// Whether this budget allows nothing at all.
    pub fn is_zero(self) -> bool {
        matches!(self, IntOrPercent::Int(0) | IntOrPercent::Percent(0))
    }
}

impl fmt::Display for IntOrPercent {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrPercent::Int(count) => write!(formatter, "{count}"),
            IntOrPercent::Percent(percent) => write!(formatter, "{percent}%"),
        }
    }
}

impl std::str::FromStr for IntOrPercent {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if let Some(number) = trimmed.strip_suffix('%') {
            let percent: u32 = number
                .trim()
                .parse()
                .map_err(|_| format!("{text:?} is not a percentage like \"25%\""))?;
            if percent > 100 {
                return Err(format!("{text:?} is more than 100%"));
            }
            Ok(IntOrPercent::Percent(percent))
        } else {
            trimmed.parse().map(IntOrPercent::Int).map_err(|_| {
                format!("{text:?} is neither a count like 1 nor a percentage like \"25%\"")
            })
        }
    }
}

impl Serialize for IntOrPercent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            IntOrPercent::Int(count) => serializer.serialize_u32(*count),
            IntOrPercent::Percent(_) => serializer.serialize_str(&self.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for IntOrPercent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u32),
            Text(String),
        }
        match Raw::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom("expected a count like 1 or a percentage like \"25%\"")
        })? {
            Raw::Int(count) => Ok(IntOrPercent::Int(count)),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// How many instances a rolling update may add above, or take below, a
/// group's desired size while it replaces instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollingUpdate {
    /// Extra instances launched before old ones are removed.
    pub max_surge: IntOrPercent,
    /// Instances that may be missing from the desired size at any moment.
    pub max_unavailable: IntOrPercent,
}

impl Default for RollingUpdate {
    fn default() -> Self {
        RollingUpdate {
            max_surge: IntOrPercent::Int(1),
            max_unavailable: IntOrPercent::Int(0),
        }
    }
}

/// A partial rolling-update budget: an instance group overrides only the
/// values it names, the rest come from the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollingUpdateOverride {
    /// Overrides the cluster's `maxSurge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrPercent>,
    /// Overrides the cluster's `maxUnavailable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrPercent>,
}

impl RollingUpdateOverride {
    /// The effective budget given the cluster's defaults.
    pub fn over(&self, cluster: &RollingUpdate) -> RollingUpdate {
        RollingUpdate {
            max_surge: self.max_surge.unwrap_or(cluster.max_surge),
            max_unavailable: self.max_unavailable.unwrap_or(cluster.max_unavailable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counts_and_percentages() {
        assert_eq!("3".parse::<IntOrPercent>(), Ok(IntOrPercent::Int(3)));
        assert_eq!("25%".parse::<IntOrPercent>(), Ok(IntOrPercent::Percent(25)));
        assert!("120%".parse::<IntOrPercent>().is_err());
        assert!("x".parse::<IntOrPercent>().is_err());
    }

    #[test]
    fn percentages_round_like_kubernetes() {
        assert_eq!(IntOrPercent::Percent(25).resolve(3, true), 1);
        assert_eq!(IntOrPercent::Percent(25).resolve(3, false), 0);
        assert_eq!(IntOrPercent::Percent(50).resolve(6, true), 3);
        assert_eq!(IntOrPercent::Int(2).resolve(6, true), 2);
    }

    #[test]
    fn round_trips_through_yaml() {
        let budget = RollingUpdate {
            max_surge: IntOrPercent::Percent(30),
            max_unavailable: IntOrPercent::Int(1),
        };
        let text = serde_norway::to_string(&budget).expect("serializes");
        assert!(text.contains("maxSurge: 30%"), "{text}");
        let back: RollingUpdate = serde_norway::from_str(&text).expect("parses");
        assert_eq!(back, budget);
    }
}
