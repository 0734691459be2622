//! The `skiff` binary: parses the command line, runs one command, prints
//! the error chain on failure. Exit codes: 0 success, 1 error (bad input,
//! AWS or store failure), 2 "changes present" / "cluster invalid" for the
//! commands that document it. A panic (101) is always a bug.

mod applying;
mod args;
mod commands;
mod context;
mod documents;
mod editor;
mod kubeconfig;
mod markdown;
mod preview;
mod printer;
mod progress;
mod revisions;
mod rollout_events;
mod session;
mod signals;
mod summary;

use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;
use crate::context::Context;
use crate::printer::Printer;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = match error.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 1,
                _ => 1,
            };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    init_logging(cli.verbose);
    let printer = Printer::new(cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            printer.error(&format!("cannot start the async runtime: {error}"));
            return ExitCode::from(1);
        }
    };
    let context = Context::new(printer.clone(), cli.state.clone())
        .with_allow_insecure_store(cli.allow_insecure_store);
    let result = runtime.block_on(async {
        // Ctrl-C and SIGTERM end the process as by default, except while a
        // part of the command handles them (a lock wait, an apply).
        skiff_engine::signals::install();
        commands::run(&context, cli.command).await
    });
    // Do not wait for background tasks (lock renewal) to notice shutdown.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(code) => code,
        Err(error) => {
            report(&printer, &error);
            ExitCode::from(1)
        }
    }
}

/// Prints an error with its whole chain of causes, each on its own line.
fn report(printer: &Printer, error: &anyhow::Error) {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause_text = cause.to_string();
        // SDK errors often repeat their source in their own message.
        if !text.contains(&cause_text) {
            text.push_str(&format!("\n  caused by: {cause_text}"));
        }
    }
    printer.error(&text);
}

fn init_logging(verbosity: u8) {
    let level = match verbosity {
        // aws-config warns about each provider of the credential chain that
        // failed; skiff says once what to fix instead (`-v` shows them).
        0 => "warn,aws_config=error",
        1 => "info,aws_config=warn,aws_smithy_runtime=warn",
        2 => "debug,hyper=info,aws_smithy_runtime=info",
        _ => "trace",
    };
    // SKIFF_LOG, else the conventional RUST_LOG, else -v/-vv/-vvv.
    let filter = tracing_subscriber::EnvFilter::try_from_env("SKIFF_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(verbosity >= 2)
        .with_ansi(false);
    // From -vv on, every line carries the seconds since start: where a slow
    // run spends its time.
    let _ = if verbosity >= 2 {
        builder
            .with_timer(tracing_subscriber::fmt::time::Uptime::default())
            .try_init()
    } else {
        builder.without_time().try_init()
    };
}
