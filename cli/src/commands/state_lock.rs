//! `skiff state lock show|hold` and `skiff state unlock`.

use std::process::ExitCode;

use anyhow::Context as _;
use skiff_state::lock::rfc3339;
use time::OffsetDateTime;

use crate::args::{LockHoldArgs, LockShowArgs, UnlockArgs};
use crate::context::Context;
use crate::printer::to_json;
use crate::printer::{table, OutputFormat};

pub async fn show(context: &Context, arguments: &LockShowArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    // Make sure the cluster exists, so a typo is not reported as "unlocked".
    store.read_spec(&arguments.name).await?;
    let info = store.lock_info(&arguments.name).await?;
    match (arguments.output, info) {
        (OutputFormat::Json, info) => context.printer.data(&to_json(&info)?),
        (OutputFormat::Yaml, info) => context.printer.data(&skiff_api::document::to_yaml(&info)),
        (OutputFormat::Table, None) => context
            .printer
            .info(&format!("Cluster {} is not locked.", arguments.name)),
        (OutputFormat::Table, Some(info)) => {
            let state = if info.is_expired(OffsetDateTime::now_utc()) {
                "expired (the next operation takes it over)"
            } else {
                "held"
            };
            let rows = vec![
                vec!["ID".to_string(), info.id.clone()],
                vec!["OPERATION".to_string(), info.operation.clone()],
                vec!["HOLDER".to_string(), info.holder.to_string()],
                vec!["SINCE".to_string(), rfc3339(info.created_at)],
                vec!["RENEWED".to_string(), rfc3339(info.renewed_at)],
                vec!["EXPIRES".to_string(), rfc3339(info.expires_at())],
                vec!["STATE".to_string(), state.to_string()],
                vec!["SKIFF".to_string(), info.skiff_version.clone()],
            ];
            context
                .printer
                .data(&table(&["LOCK", arguments.name.as_str()], &rows));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn hold(context: &Context, arguments: &LockHoldArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    store.read_spec(&arguments.name).await?;
    let timeout = arguments.lock.lock_timeout;
    let waiting = |held: &skiff_state::LockInfo| {
        context.printer.info(&format!(
            "Waiting up to {} for the lock of cluster {}: held by {} for {:?} since {}, lease expires {} unless renewed (Ctrl-C to give up)",
            humantime::format_duration(timeout),
            arguments.name,
            held.holder,
            held.operation,
            rfc3339(held.created_at),
            rfc3339(held.expires_at())
        ));
    };
    let taking = store.lock_waiting(&arguments.name, &arguments.reason, timeout, &waiting);
    let lock = tokio::select! {
        // A lock taken as the signal arrives is kept and released below.
        biased;
        lock = taking => lock.with_context(|| format!("cannot lock cluster {}", arguments.name))?,
        _ = skiff_engine::signals::interrupted() => anyhow::bail!(
            "stopped waiting for the lock of cluster {}; nothing was changed",
            arguments.name
        ),
    };
    if let Some(previous) = &lock.took_over {
        context.printer.warn(&format!(
            "took over an expired lock of {} ({:?}, lease expired at {})",
            previous.holder,
            previous.operation,
            rfc3339(previous.expires_at())
        ));
    }
    // The ID on stdout so scripts can capture it; the explanation on stderr.
    context.printer.data(&lock.info().id);
    context.printer.info(&format!(
        "Holding the lock of cluster {} for {:?}; press Ctrl-C to release it.",
        arguments.name, arguments.reason
    ));
    let until = async {
        match arguments.duration {
            Some(duration) => tokio::time::sleep(duration).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = until => {}
        _ = skiff_engine::signals::interrupted() => {}
        reason = lock.lost() => {
            anyhow::bail!("lost the lock of cluster {}: {reason}", arguments.name);
        }
    }
    lock.release().await?;
    context
        .printer
        .info(&format!("Released the lock of cluster {}.", arguments.name));
    Ok(ExitCode::SUCCESS)
}

pub async fn unlock(context: &Context, arguments: &UnlockArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let removed = store
        .unlock(&arguments.name, &arguments.lock_id)
        .await
        .with_context(|| format!("cannot unlock cluster {}", arguments.name))?;
    context.printer.info(&format!(
        "Removed the lock of cluster {} held by {} for {:?} since {}.",
        arguments.name,
        removed.holder,
        removed.operation,
        rfc3339(removed.created_at)
    ));
    Ok(ExitCode::SUCCESS)
}
