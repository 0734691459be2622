//! `skiff get backups NAME`: the etcd backups of a cluster, newest first.

use std::process::ExitCode;

use serde_json::json;
use skiff_engine::backups::{list, BackupList};
use skiff_state::lock::rfc3339;

use crate::args::GetBackupsArgs;
use crate::context::Context;
use crate::printer::{table, to_json, OutputFormat};

pub async fn run(context: &Context, arguments: &GetBackupsArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let listed = list(&store, &arguments.name).await?;
    match arguments.output {
        OutputFormat::Table => print_table(context, &listed),
        OutputFormat::Json => context.printer.data(&to_json(&document(&listed))?),
        OutputFormat::Yaml => context
            .printer
            .data(&serde_norway::to_string(&document(&listed))?),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(context: &Context, listed: &BackupList) {
    if listed.backups.is_empty() {
        context.printer.info(&format!(
            "No backups of cluster {} yet in {}. A control-plane node writes one every {} (spec.etcd.backups.interval) once the control plane runs.",
            listed.cluster, listed.location, listed.interval
        ));
        return;
    }
    let rows: Vec<Vec<String>> = listed
        .backups
        .iter()
        .map(|backup| {
            vec![
                backup.id.to_string(),
                rfc3339(backup.id.taken_at()),
                backup.id.revision().to_string(),
                backup.id.instance().to_string(),
                human_size(backup.size),
            ]
        })
        .collect();
    context
        .printer
        .data(&table(&["ID", "TIME", "REVISION", "NODE", "SIZE"], &rows));
}

/// The versioned document of `-o json|yaml`.
fn document(listed: &BackupList) -> serde_json::Value {
    let items: Vec<serde_json::Value> = listed
        .backups
        .iter()
        .map(|backup| {
            json!({
                "id": backup.id.to_string(),
                "time": rfc3339(backup.id.taken_at()),
                "revision": backup.id.revision(),
                "node": backup.id.instance(),
                "sizeBytes": backup.size,
                "key": backup.key,
            })
        })
        .collect();
    json!({
        "apiVersion": skiff_api::API_VERSION,
        "kind": "BackupList",
        "cluster": listed.cluster,
        "location": listed.location,
        "interval": listed.interval.to_string(),
        "keep": listed.keep,
        "items": items,
    })
}

/// Bytes for people: `512 B`, `3.2 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
    }
}
