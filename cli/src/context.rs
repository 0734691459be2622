//! What every command needs, resolved once: the printer, the AWS
//! configuration (loaded lazily, only by commands that talk to AWS) and the
//! state store.

use anyhow::Context as _;
use skiff_engine::store_security::InsecureStore;
use skiff_state::{LocationSource, Retention, StateStore, StoreLocation};
use tokio::sync::OnceCell;

use crate::printer::Printer;

/// Shared settings of one skiff invocation.
#[derive(Debug)]
pub struct Context {
    /// Output.
    pub printer: Printer,
    state_flag: Option<String>,
    aws: OnceCell<aws_config::SdkConfig>,
    insecure_store: InsecureStore,
}

impl Context {
    /// A context for this invocation.
    pub fn new(printer: Printer, state_flag: Option<String>) -> Context {
        Context {
            printer,
            state_flag,
            aws: OnceCell::new(),
            insecure_store: InsecureStore::Refuse,
        }
    }

    /// `--allow-insecure-store`: commands that write secrets go on in a
    /// store the security check refuses, with a warning.
    pub fn with_allow_insecure_store(mut self, allow: bool) -> Context {
        if allow {
            self.insecure_store = InsecureStore::Allow;
        }
        self
    }

    /// Whether an insecure store is refused or allowed.
    pub fn insecure_store(&self) -> InsecureStore {
        self.insecure_store
    }

    /// The state-store gate before `what` writes to the store (see
    /// `skiff_engine::store_security`), for the commands that run no
    /// engine session.
    pub async fn require_secure_store(&self, store: &StateStore, what: &str) -> anyhow::Result<()> {
        let notes = crate::session::printed_notes(&self.printer);
        skiff_engine::store_security::require_secure_store(
            store,
            what,
            self.insecure_store,
            notes.as_ref(),
        )
        .await?;
        Ok(())
    }

    /// The AWS configuration (`skiff_providers::sdk_config`: the standard
    /// chain, bounded retries and timeouts, the client-side rate limit),
    /// loaded once, by the commands that talk to AWS, with its credentials
    /// resolved once so that a missing or expired login is one clear error
    /// naming what to set or run (`sdk_config::check_credentials`).
    pub async fn aws_config(&self) -> anyhow::Result<&aws_config::SdkConfig> {
        Ok(self
            .aws
            .get_or_try_init(|| async {
                let config = skiff_providers::sdk_config::load().await;
                skiff_providers::sdk_config::check_credentials(&config).await?;
                Ok::<_, skiff_providers::sdk_config::AwsSetupError>(config)
            })
            .await?)
    }

    /// Where the state store is and how that was decided.
    pub fn store_location(&self) -> anyhow::Result<(StoreLocation, LocationSource)> {
        Ok(StoreLocation::resolve(self.state_flag.as_deref())?)
    }

    /// Opens the state store.
    pub async fn store(&self) -> anyhow::Result<StateStore> {
        let (location, source) = self.store_location()?;
        let sdk_config = match location {
            StoreLocation::S3 { .. } => Some(self.aws_config().await?),
            StoreLocation::File { .. } => None,
        };
        let mut store = StateStore::open(&location, sdk_config)
            .await
            .with_context(|| {
                format!(
                    "cannot open the state store {location}{}",
                    source_note(source)
                )
            })?;
        store.set_retention(history_retention()?);
        Ok(store)
    }
}

/// Keep only the newest N entries of each cluster history after every write.
pub const HISTORY_KEEP_ENV: &str = "SKIFF_HISTORY_KEEP";

/// Remove history entries older than this (e.g. `90d`) after every write.
pub const HISTORY_MAX_AGE_ENV: &str = "SKIFF_HISTORY_MAX_AGE";

/// The automatic history retention of this invocation: off unless
/// `SKIFF_HISTORY_KEEP` and/or `SKIFF_HISTORY_MAX_AGE` are set (both set:
/// an entry goes only when both rules let it go).
pub fn history_retention() -> anyhow::Result<Retention> {
    let value = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
    };
    let keep = match value(HISTORY_KEEP_ENV) {
        None => None,
        Some(text) => match text.trim().parse::<usize>() {
            Ok(keep) if keep >= 1 => Some(keep),
            _ => anyhow::bail!(
                "{HISTORY_KEEP_ENV}={text:?} is not a number of history entries to keep (1 or more); fix or unset it"
            ),
        },
    };
    let older_than = match value(HISTORY_MAX_AGE_ENV) {
        None => None,
        Some(text) => Some(humantime::parse_duration(text.trim()).with_context(|| {
            format!(
                "{HISTORY_MAX_AGE_ENV}={text:?} is not an age such as 90d or 12h; fix or unset it"
            )
        })?),
    };
    Ok(Retention { keep, older_than })
}

fn source_note(source: LocationSource) -> &'static str {
    match source {
        LocationSource::Flag => " (from --state)",
        LocationSource::Environment => " (from SKIFF_STATE_STORE)",
        LocationSource::Default => " (the default local store)",
    }
}

/// The command line as typed, for the history of changes.
pub fn command_line() -> String {
    let mut words: Vec<String> = Vec::new();
    for (index, argument) in std::env::args().enumerate() {
        if index == 0 {
            words.push("skiff".to_string());
        } else if argument.contains(char::is_whitespace) || argument.is_empty() {
            words.push(format!("{argument:?}"));
        } else {
            words.push(argument);
        }
    }
    words.join(" ")
}
