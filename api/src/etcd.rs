//! `spec.etcd`: how the control plane keeps its etcd data safe.
//!
//! The control-plane nodes snapshot etcd to the state store every
//! `spec.etcd.backups.interval` and keep the newest `keep` snapshots (plus
//! the newest of each day for a week); `skiff restore cluster` rebuilds the
//! control plane from one of them. The interval is a duration text
//! (`15m`, `1h`, `90s`) so the stored spec reads the way people say it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The default time between two backups: 15 minutes, as kops's etcd-manager.
pub const DEFAULT_BACKUP_INTERVAL_SECONDS: u64 = 15 * 60;
/// The shortest allowed interval: a snapshot of a large etcd takes seconds to
/// write and upload, so shorter intervals would overlap.
pub const MIN_BACKUP_INTERVAL_SECONDS: u64 = 60;
/// The longest allowed interval: a day, the most data a restore may lose.
pub const MAX_BACKUP_INTERVAL_SECONDS: u64 = 24 * 60 * 60;
/// The default number of newest backups kept: a day at the default interval.
pub const DEFAULT_BACKUP_KEEP: u32 = 96;

/// etcd settings of the control plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EtcdSpec {
    /// Snapshots of etcd written to the state store by the control plane.
    #[serde(default)]
    pub backups: EtcdBackupsSpec,
}

/// How often etcd is snapshotted to the state store and how many snapshots are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EtcdBackupsSpec {
    /// The time between two backups, e.g. `15m`; between 1m and 24h.
    #[serde(default)]
    pub interval: BackupInterval,
    /// How many of the newest backups are kept (at least 1); the newest of
    /// each day of the last week is kept besides.
    #[serde(default = "default_keep")]
    pub keep: u32,
}

fn default_keep() -> u32 {
    DEFAULT_BACKUP_KEEP
}

impl Default for EtcdBackupsSpec {
    fn default() -> Self {
        EtcdBackupsSpec {
            interval: BackupInterval::default(),
            keep: DEFAULT_BACKUP_KEEP,
        }
    }
}

/// A text that is not a duration like `15m`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration like 15m, 1h or 90s (a whole number of s, m or h, e.g. 1h30m)")]
pub struct InvalidDuration {
    /// What was given.
    pub text: String,
}

/// The time between two etcd backups, in whole seconds. Written as a
/// duration text: one or more `<number><unit>` parts with units `h`, `m`
/// and `s` (`15m`, `1h30m`, `90s`); printed in its shortest exact form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackupInterval {
    seconds: u64,
}

impl BackupInterval {
    /// An interval of that many seconds.
    pub fn from_seconds(seconds: u64) -> Self {
        BackupInterval { seconds }
    }

    /// The interval in seconds.
    pub fn seconds(self) -> u64 {
        self.seconds
    }
}

impl Default for BackupInterval {
    fn default() -> Self {
        BackupInterval::from_seconds(DEFAULT_BACKUP_INTERVAL_SECONDS)
    }
}

impl fmt::Display for BackupInterval {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.seconds;
        if seconds != 0 && seconds.is_multiple_of(3600) {
            write!(formatter, "{}h", seconds / 3600)
        } else if seconds != 0 && seconds.is_multiple_of(60) {
            write!(formatter, "{}m", seconds / 60)
        } else {
            write!(formatter, "{seconds}s")
        }
    }
}

impl FromStr for BackupInterval {
    type Err = InvalidDuration;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidDuration {
            text: text.to_string(),
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(invalid());
        }
        let mut total: u64 = 0;
        let mut number = String::new();
        for character in trimmed.chars() {
            if character.is_ascii_digit() {
                number.push(character);
                continue;
            }
            let unit: u64 = match character {
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => return Err(invalid()),
            };
            if number.is_empty() {
                return Err(invalid());
            }
            let value: u64 = number.parse().map_err(|_| invalid())?;
            total = value
                .checked_mul(unit)
                .and_then(|part| total.checked_add(part))
                .ok_or_else(invalid)?;
            number.clear();
        }
        if !number.is_empty() {
            // A bare number: the unit is what people forget, and seconds
            // versus minutes is too costly a guess.
            return Err(invalid());
        }
        Ok(BackupInterval::from_seconds(total))
    }
}

impl Serialize for BackupInterval {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for BackupInterval {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_in_shortest_form() {
        let parse = |text: &str| text.parse::<BackupInterval>().map(BackupInterval::seconds);
        assert_eq!(parse("15m"), Ok(900));
        assert_eq!(parse("1h"), Ok(3600));
        assert_eq!(parse("90s"), Ok(90));
        assert_eq!(parse("1h30m"), Ok(5400));
        assert_eq!(BackupInterval::from_seconds(5400).to_string(), "90m");
        assert_eq!(BackupInterval::from_seconds(90).to_string(), "90s");
        assert_eq!(BackupInterval::from_seconds(86400).to_string(), "24h");
        assert_eq!(BackupInterval::from_seconds(0).to_string(), "0s");
    }

    #[test]
    fn bad_durations_are_refused() {
        for text in [
            "",
            "15",
            "m",
            "15x",
            "-1m",
            "1.5h",
            "15 m",
            "1d",
            "99999999999999999999h",
        ] {
            assert!(text.parse::<BackupInterval>().is_err(), "{text:?} parsed");
        }
    }

    #[test]
    fn defaults_are_fifteen_minutes_and_ninety_six() {
        let spec: EtcdSpec = serde_norway::from_str("{}").expect("parses");
        assert_eq!(spec.backups.interval.seconds(), 900);
        assert_eq!(spec.backups.keep, 96);
        let backups: EtcdBackupsSpec = serde_norway::from_str("interval: 1h\n").expect("parses");
        assert_eq!(backups.keep, 96);
        assert_eq!(backups.interval.seconds(), 3600);
    }
}
