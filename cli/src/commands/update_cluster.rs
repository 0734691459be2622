//! `skiff update cluster NAME`: preview the AWS changes the spec needs; with
//! `--yes`, apply them under the cluster lock; with `--out FILE`, save the
//! plan for `skiff apply FILE`.

use std::process::ExitCode;

use skiff_engine::{saved_plan, update};
use skiff_plans::Plan;

use crate::applying::{self, Display};
use crate::args::UpdateClusterArgs;
use crate::context::Context;
use crate::markdown;
use crate::preview;
use crate::printer::PlanFormat;
use crate::session::locking_session;

pub async fn run(context: &Context, arguments: &UpdateClusterArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let session = locking_session(context, &store, &arguments.lock).await?;
    if !arguments.yes {
        let plan = update::preview(&session, &arguments.name).await?;
        show(context, arguments, &plan)?;
        if !plan.is_empty() && arguments.out.is_none() && arguments.output == PlanFormat::Table {
            context.printer.info(&format!(
                "Run `skiff update cluster {} --yes` to apply these changes.",
                arguments.name
            ));
        }
        return Ok(if arguments.detailed_exitcode && !plan.is_empty() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        });
    }
    // Applying: lock first, so that the plan is made from a state no one
    // else is changing.
    let update = update::prepare(&session, &arguments.name, arguments.force_target).await?;
    if let Err(error) = show(context, arguments, &update.plan) {
        update.release().await;
        return Err(error);
    }
    let plan = update.plan.clone();
    let (display, run) = Display::start(context, &plan, arguments.parallelism);
    let applied = update.apply(&session, run).await;
    display.finish();
    if let Some(applied) = applied? {
        applying::report_applied(context, &plan, &applied);
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the plan in the format asked for, and saves it with `--out`.
fn show(context: &Context, arguments: &UpdateClusterArgs, plan: &Plan) -> anyhow::Result<()> {
    match arguments.output {
        PlanFormat::Json => context.printer.data(&serde_json::to_string_pretty(plan)?),
        PlanFormat::Yaml => context.printer.data(&skiff_api::document::to_yaml(plan)),
        PlanFormat::Table => context
            .printer
            .data(&preview::render(plan, &context.printer)),
        PlanFormat::Markdown => context.printer.data(&markdown::render(plan)),
    }
    if let Some(path) = &arguments.out {
        saved_plan::save(plan, path)?;
        context.printer.info(&format!(
            "Saved the plan to {}; apply exactly this plan with `skiff apply {}`.",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}
