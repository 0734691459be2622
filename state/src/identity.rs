//! Who is acting: the local user and host, and the AWS caller identity when
//! the store is in S3. Recorded with every change and every lock so that a
//! team can see who did what.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The person (or automation) behind an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// The local user name.
    pub user: String,
    /// The local host name.
    pub host: String,
    /// The AWS caller identity (ARN), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_identity: Option<String>,
}

impl Actor {
    /// The local user and host, without an AWS identity.
    pub fn local() -> Actor {
        let user = ["SKIFF_USER", "USER", "LOGNAME", "USERNAME"]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|value| !value.is_empty())
            .unwrap_or_else(whoami::username);
        let host = whoami::fallible::hostname().unwrap_or_else(|_| "unknown-host".to_string());
        Actor {
            user,
            host,
            aws_identity: None,
        }
    }

    /// The local actor plus the AWS caller identity from STS, looked up with
    /// a short timeout; a failure leaves the identity unknown rather than
    /// failing the operation.
    pub async fn with_aws_identity(sdk_config: &aws_config::SdkConfig) -> Actor {
        let mut actor = Actor::local();
        let client = aws_sdk_sts::Client::new(sdk_config);
        let lookup = client.get_caller_identity().send();
        if let Ok(Ok(output)) = tokio::time::timeout(Duration::from_secs(10), lookup).await {
            actor.aws_identity = output.arn().map(str::to_string);
        }
        actor
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}@{}", self.user, self.host)?;
        if let Some(identity) = &self.aws_identity {
            write!(formatter, " ({identity})")?;
        }
        Ok(())
    }
}
