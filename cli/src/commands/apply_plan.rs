//! `skiff apply FILE`: apply exactly a plan saved by `update cluster --out`,
//! refusing it when the recorded state or the spec changed since it was
//! made (it would no longer describe what it changes).

use std::process::ExitCode;

use skiff_engine::saved_plan;

use crate::applying::{self, Display};
use crate::args::ApplyArgs;
use crate::context::Context;
use crate::session::locking_session;

pub async fn run(context: &Context, arguments: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let plan = saved_plan::read(&arguments.plan)?;
    let store = context.store().await?;
    let session = locking_session(context, &store, &arguments.lock).await?;
    let (display, run) = Display::start(context, &plan, arguments.parallelism);
    let file = arguments.plan.display().to_string();
    let applied = saved_plan::apply(&session, &plan, &file, run).await;
    display.finish();
    match applied? {
        Some(applied) => applying::report_applied(context, &plan, &applied),
        None => context.printer.info("The plan has no changes."),
    }
    Ok(ExitCode::SUCCESS)
}
