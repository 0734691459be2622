//! `skiff state init` (a bucket set up to hold cluster secrets) and
//! `skiff state check` (is the store safe to hold them?).

use std::process::ExitCode;

use anyhow::Context as _;
use skiff_state::security::init::{self, InitOptions, InitPlan};
use skiff_state::security::SecurityReport;
use skiff_state::StoreLocation;

use crate::args::{StateCheckArgs, StateInitArgs};
use crate::context::Context;
use crate::printer::{table, to_json, OutputFormat};

/// The exit status of `state check` when a finding refuses the store.
const REFUSED: u8 = 2;

pub async fn init(context: &Context, arguments: &StateInitArgs) -> anyhow::Result<ExitCode> {
    let location = match &arguments.store {
        Some(text) => text.parse::<StoreLocation>()?,
        None => context.store_location()?.0,
    };
    let StoreLocation::S3 { bucket, .. } = &location else {
        anyhow::bail!(
            "{location} is a folder: `skiff state init` sets up S3 buckets (give s3://BUCKET[/PREFIX]); a folder store needs no setup beyond `chmod 700` on the folder"
        );
    };
    let options = InitOptions {
        region: arguments.region.clone(),
        kms_key: arguments.kms_key.clone(),
    };
    let aws = context.aws_config().await?;
    let plan = init::plan(aws, bucket, &options)
        .await
        .with_context(|| format!("cannot read the settings of bucket {bucket}"))?;
    let applied = arguments.yes && plan.changes();
    if applied {
        init::apply(aws, &plan)
            .await
            .with_context(|| format!("`skiff state init` stopped on bucket {bucket}"))?;
    }
    match arguments.output {
        OutputFormat::Json => context.printer.data(&to_json(&InitOutput {
            schema_version: 1,
            store: location.to_string(),
            applied,
            plan: &plan,
        })?),
        OutputFormat::Yaml => context
            .printer
            .data(&skiff_api::document::to_yaml(&InitOutput {
                schema_version: 1,
                store: location.to_string(),
                applied,
                plan: &plan,
            })),
        OutputFormat::Table => print_plan(context, &location, &plan, arguments.yes),
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct InitOutput<'a> {
    schema_version: u32,
    store: String,
    /// Whether the changes were made (false: a preview, or nothing to do).
    applied: bool,
    #[serde(flatten)]
    plan: &'a InitPlan,
}

fn print_plan(context: &Context, location: &StoreLocation, plan: &InitPlan, yes: bool) {
    let rows: Vec<Vec<String>> = plan
        .settings
        .iter()
        .map(|setting| {
            vec![
                setting.setting.to_string(),
                setting.current.clone(),
                if setting.change {
                    setting.wanted.clone()
                } else {
                    "(unchanged)".to_string()
                },
            ]
        })
        .collect();
    let header = if yes && plan.changes() {
        ["SETTING", "WAS", "NOW"]
    } else {
        ["SETTING", "NOW", "WOULD BE"]
    };
    context.printer.data(&table(&header, &rows));
    let message = match (plan.changes(), yes) {
        (false, _) => format!(
            "Bucket {} ({}) is already set up to hold cluster secrets: nothing to change.",
            plan.bucket, plan.region
        ),
        (true, false) => {
            let creates = plan
                .settings
                .iter()
                .any(|setting| setting.setting == init::Setting::Bucket && setting.change);
            let region = if creates {
                format!(" --region {}", plan.region)
            } else {
                String::new()
            };
            format!(
                "Nothing was changed. Run `skiff state init {location} --yes{region}` to make these changes."
            )
        }
        (true, true) => format!(
            "Bucket {} ({}) is set up to hold cluster secrets. Use it with --state {location} or SKIFF_STATE_STORE={location}.",
            plan.bucket, plan.region
        ),
    };
    context.printer.info(&message);
}

pub async fn check(context: &Context, arguments: &StateCheckArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let report = store.security().await;
    match arguments.output {
        OutputFormat::Json => context.printer.data(&to_json(&CheckOutput::of(report))?),
        OutputFormat::Yaml => context
            .printer
            .data(&skiff_api::document::to_yaml(&CheckOutput::of(report))),
        OutputFormat::Table => print_report(context, report),
    }
    Ok(if report.refuses() {
        ExitCode::from(REFUSED)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckOutput<'a> {
    schema_version: u32,
    /// Whether commands that write secrets refuse the store.
    refused: bool,
    #[serde(flatten)]
    report: &'a SecurityReport,
}

impl<'a> CheckOutput<'a> {
    fn of(report: &'a SecurityReport) -> CheckOutput<'a> {
        CheckOutput {
            schema_version: 1,
            refused: report.refuses(),
            report,
        }
    }
}

fn print_report(context: &Context, report: &SecurityReport) {
    if report.findings.is_empty() {
        context.printer.info(&format!(
            "The state store {} is set up to hold cluster secrets: no findings{}.",
            report.store,
            report
                .encryption
                .as_ref()
                .map(|encryption| format!(" (default encryption {encryption})"))
                .unwrap_or_default()
        ));
        return;
    }
    let rows: Vec<Vec<String>> = report
        .findings
        .iter()
        .map(|finding| {
            vec![
                finding.severity.to_string().to_uppercase(),
                serde_json::to_value(finding.kind)
                    .ok()
                    .and_then(|value| value.as_str().map(str::to_string))
                    .unwrap_or_default(),
                finding.detail.clone(),
                finding.fix.clone(),
            ]
        })
        .collect();
    context
        .printer
        .data(&table(&["SEVERITY", "FINDING", "DETAIL", "FIX"], &rows));
    let refusals = report.refusals().count();
    if refusals > 0 {
        context.printer.info(&format!(
            "{refusals} finding(s) make commands that write cluster secrets refuse {} (create cluster, update cluster --yes, apply, restore cluster); fix them, or pass --allow-insecure-store to go on regardless.",
            report.store
        ));
    } else {
        context.printer.info(&format!(
            "Nothing refuses {}; the warnings are worth fixing.",
            report.store
        ));
    }
}
