//! One module per command; [`run`] dispatches.

use std::process::ExitCode;

use anyhow::bail;

use crate::args::{
    Command, CreateCommand, DeleteCommand, EditCommand, ExportCommand, GetCommand, LockCommand,
    RestoreCommand, RollingUpdateCommand, RotateCommand, StateCommand, UpdateCommand, UpdateTarget,
    ValidateCommand,
};
use crate::context::Context;

mod apply_plan;
mod backups;
mod completion;
mod create_cluster;
mod create_file;
mod delete_cluster;
mod edit;
pub mod export_kubeconfig;
mod get;
mod history;
mod instance_groups;
mod replace;
mod restore_cluster;
mod rollback;
mod rolling_update;
mod rotate_encryption_key;
mod state_lock;
mod state_security;
mod terraform_target;
mod update_cluster;
mod validate_cluster;

/// Runs one command.
pub async fn run(context: &Context, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Create(create) => match (create.command, create.filename) {
            (Some(CreateCommand::Cluster(arguments)), _) => create_cluster::run(context, &arguments).await,
            (Some(CreateCommand::Instancegroup(arguments)), _) => instance_groups::create(context, &arguments).await,
            (None, Some(file)) => create_file::run(context, &file, create.name.as_deref()).await,
            (None, None) => bail!("say what to create: `skiff create cluster NAME --zones ...`, `skiff create ig ...` or `skiff create -f FILE`"),
        },
        Command::Replace(arguments) => replace::run(context, &arguments).await,
        Command::Get(GetCommand::Clusters(arguments)) => get::clusters(context, &arguments).await,
        Command::Get(GetCommand::Cluster(arguments)) => get::cluster(context, &arguments).await,
        Command::Get(GetCommand::Instancegroups(arguments)) => get::instance_groups(context, &arguments).await,
        Command::Get(GetCommand::Backups(arguments)) => backups::run(context, &arguments).await,
        Command::Edit(EditCommand::Cluster(arguments)) => edit::cluster(context, &arguments).await,
        Command::Edit(EditCommand::Instancegroup(arguments)) => edit::instance_group(context, &arguments).await,
        Command::Delete(DeleteCommand::Instancegroup(arguments)) => instance_groups::delete(context, &arguments).await,
        Command::Delete(DeleteCommand::Cluster(arguments)) => delete_cluster::run(context, &arguments).await,
        Command::State(StateCommand::Init(arguments)) => state_security::init(context, &arguments).await,
        Command::State(StateCommand::Check(arguments)) => state_security::check(context, &arguments).await,
        Command::State(StateCommand::Lock(LockCommand::Show(arguments))) => state_lock::show(context, &arguments).await,
        Command::State(StateCommand::Lock(LockCommand::Hold(arguments))) => state_lock::hold(context, &arguments).await,
        Command::State(StateCommand::Unlock(arguments)) => state_lock::unlock(context, &arguments).await,
        Command::Update(UpdateCommand::Cluster(arguments)) => match arguments.target {
            UpdateTarget::Direct => update_cluster::run(context, &arguments).await,
            UpdateTarget::Terraform => terraform_target::run(context, &arguments).await,
        },
        Command::Apply(arguments) => apply_plan::run(context, &arguments).await,
        Command::RollingUpdate(RollingUpdateCommand::Cluster(arguments)) => rolling_update::run(context, &arguments).await,
        Command::Validate(ValidateCommand::Cluster(arguments)) => validate_cluster::run(context, &arguments).await,
        Command::Export(ExportCommand::Kubeconfig(arguments)) => export_kubeconfig::run(context, &arguments).await,
        Command::History(arguments) => history::run(context, &arguments).await,
        Command::Rollback(arguments) => rollback::run(context, &arguments).await,
        Command::Restore(RestoreCommand::Cluster(arguments)) => restore_cluster::run(context, &arguments).await,
        Command::Rotate(RotateCommand::EncryptionKey(arguments)) => rotate_encryption_key::run(context, &arguments).await,
        Command::Completion(arguments) => completion::run(&arguments),
    }
}
