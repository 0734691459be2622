//! Where the state store is: `s3://bucket[/prefix]`, `file://PATH` or a bare
//! path, chosen by `--state`, else `SKIFF_STATE_STORE`, else a per-user
//! folder so that a new user can start without any setup.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::StoreError;

/// The environment variable naming the state store.
pub const STATE_STORE_ENV: &str = "SKIFF_STATE_STORE";

/// A state-store location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// An S3 bucket and an optional key prefix.
    S3 {
        /// The bucket.
        bucket: String,
        /// The prefix inside the bucket, without slashes at either end (may be empty).
        prefix: String,
    },
    /// A local folder.
    File {
        /// The folder.
        path: PathBuf,
    },
}

impl StoreLocation {
    /// The per-user default: `$XDG_DATA_HOME/skiff/store`, else
    /// `~/.local/share/skiff/store`.
    pub fn user_default() -> StoreLocation {
        let base = std::env::var_os("XDG_DATA_HOME")
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|value| !value.is_empty())
                    .map(|home| PathBuf::from(home).join(".local/share"))
            })
            .unwrap_or_else(|| PathBuf::from("."));
        StoreLocation::File {
            path: base.join("skiff").join("store"),
        }
    }

    /// Resolves the location from a flag value, the environment and the default.
    pub fn resolve(flag: Option<&str>) -> Result<(StoreLocation, LocationSource), StoreError> {
        if let Some(text) = flag.filter(|text| !text.trim().is_empty()) {
            return Ok((text.parse()?, LocationSource::Flag));
        }
        if let Ok(text) = std::env::var(STATE_STORE_ENV) {
            if !text.trim().is_empty() {
                return Ok((text.parse()?, LocationSource::Environment));
            }
        }
        Ok((StoreLocation::user_default(), LocationSource::Default))
    }
}

/// Where the location came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocationSource {
    /// `--state`.
    Flag,
    /// `SKIFF_STATE_STORE`.
    Environment,
    /// The per-user default folder.
    Default,
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::S3 { bucket, prefix } if prefix.is_empty() => {
                write!(formatter, "s3://{bucket}")
            }
            StoreLocation::S3 { bucket, prefix } => write!(formatter, "s3://{bucket}/{prefix}"),
            StoreLocation::File { path } => write!(formatter, "file://{}", path.display()),
        }
    }
}

impl FromStr for StoreLocation {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let bad = |reason: &str| StoreError::BadLocation {
            location: text.to_string(),
            reason: format!("{reason}; use s3://BUCKET[/PREFIX], file:///PATH or a folder path"),
        };
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if !is_bucket_name(bucket) {
                return Err(bad(&format!("{bucket:?} is not an S3 bucket name (3-63 lowercase letters, digits, '.', '-')")));
            }
            let prefix = prefix.trim_matches('/');
            if prefix.split('/').any(|part| part == ".." || part == ".") || prefix.contains("//") {
                return Err(bad("the prefix has an empty, `.` or `..` part"));
            }
            return Ok(StoreLocation::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        if let Some(path) = text.strip_prefix("file://") {
            if path.is_empty() {
                return Err(bad("file:// needs a path"));
            }
            return Ok(StoreLocation::File {
                path: PathBuf::from(path),
            });
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(bad(&format!("the scheme {scheme}:// is not supported")));
        }
        if text.is_empty() {
            return Err(bad("empty"));
        }
        Ok(StoreLocation::File {
            path: PathBuf::from(text),
        })
    }
}

fn is_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'.' || byte == b'-'
        })
        && name.starts_with(|character: char| character.is_ascii_alphanumeric())
        && name.ends_with(|character: char| character.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            "s3://ops-state/team-a/"
                .parse::<StoreLocation>()
                .expect("parses"),
            StoreLocation::S3 {
                bucket: "ops-state".into(),
                prefix: "team-a".into()
            }
        );
        assert_eq!(
            "s3://ops-state".parse::<StoreLocation>().expect("parses"),
            StoreLocation::S3 {
                bucket: "ops-state".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            "file:///var/lib/skiff"
                .parse::<StoreLocation>()
                .expect("parses"),
            StoreLocation::File {
                path: "/var/lib/skiff".into()
            }
        );
        assert_eq!(
            "./store".parse::<StoreLocation>().expect("parses"),
            StoreLocation::File {
                path: "./store".into()
            }
        );
    }

    #[test]
    fn refuses_bad_forms() {
        for text in [
            "s3://",
            "s3://UPPER",
            "gs://bucket",
            "s3://ab",
            "s3://bucket/../x",
        ] {
            assert!(text.parse::<StoreLocation>().is_err(), "{text} accepted");
        }
    }
}
