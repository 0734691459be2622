//! `skiff create ig` and `skiff delete ig`: add or remove an instance group
//! in a cluster's spec. The cloud follows with `skiff update cluster`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use skiff_api::document::{parse_one, to_yaml};
use skiff_api::instance_group::{InstanceGroupSpec, RootVolume, SpotSpec};
use skiff_api::meta::{ObjectMeta, RollingUpdateOverride};
use skiff_api::{
    InstanceGroup, InstanceGroupRole, Taint, API_VERSION, CLUSTER_LABEL, KIND_INSTANCE_GROUP,
};

use crate::args::{CreateInstanceGroupArgs, DeleteInstanceGroupArgs};
use crate::context::{command_line, Context};
use crate::documents::{check_architectures, finalize};
use crate::printer::to_json;
use crate::printer::OutputFormat;
use crate::{editor, summary};

pub async fn create(
    context: &Context,
    arguments: &CreateInstanceGroupArgs,
) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let previous = store.read_spec(&arguments.name).await?;
    if previous.bundle.instance_group(&arguments.group).is_some() {
        bail!(
            "instance group {:?} already exists in cluster {}; change it with `skiff edit ig --name {} {}`",
            arguments.group,
            arguments.name,
            arguments.name,
            arguments.group
        );
    }
    let mut group = build(arguments)?;
    if arguments.edit {
        let edited = editor::edit(&to_yaml(&group), &arguments.group)?;
        group = parse_one(&editor::strip_header(&edited))
            .context("the edited instance group is not valid; nothing was stored")?;
    }
    let mut bundle = previous.bundle.clone();
    bundle.instance_groups.push(group);
    finalize(context, &mut bundle)?;
    let created = bundle
        .instance_group(&arguments.group)
        .context("the new group is in the bundle")?
        .clone();
    if arguments.dry_run {
        let text = match arguments.output {
            OutputFormat::Json => to_json(&created)?,
            OutputFormat::Yaml | OutputFormat::Table => to_yaml(&created),
        };
        context.printer.data(&text);
        return Ok(ExitCode::SUCCESS);
    }
    check_architectures(context, Some(&previous.bundle), &bundle)
        .await
        .with_context(|| format!("cannot add instance group {}", arguments.group))?;
    let summary = summary::describe(&previous.bundle, &bundle);
    let stored = store
        .update_spec(&previous, &bundle, &command_line(), &summary)
        .await
        .with_context(|| {
            format!(
                "cannot add instance group {} to cluster {}",
                arguments.group, arguments.name
            )
        })?;
    context.printer.info(&format!(
        "Added instance group {} ({}, {} x {}..{}) to cluster {} (revision {}).\nNext: skiff update cluster {}",
        created.name(),
        created.spec.role,
        created.spec.machine_type,
        created.spec.min_size,
        created.spec.max_size,
        arguments.name,
        stored.revision.serial,
        arguments.name
    ));
    Ok(ExitCode::SUCCESS)
}

fn build(arguments: &CreateInstanceGroupArgs) -> anyhow::Result<InstanceGroup> {
    let role = arguments.role;
    let default_size = match role {
        InstanceGroupRole::ControlPlane | InstanceGroupRole::Bastion | InstanceGroupRole::Etcd => 1,
        InstanceGroupRole::Node => 2,
    };
    let min_size = arguments.min.unwrap_or(default_size);
    let max_size = arguments.max.unwrap_or(min_size.max(default_size));
    let mut node_labels = BTreeMap::new();
    for pair in &arguments.node_labels {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--node-label: {pair:?} is not KEY=VALUE"))?;
        node_labels.insert(key.to_string(), value.to_string());
    }
    let taints = arguments
        .taints
        .iter()
        .map(|text| {
            text.parse::<Taint>()
                .map_err(|message| anyhow::anyhow!("--taint: {message}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut labels = BTreeMap::new();
    labels.insert(CLUSTER_LABEL.to_string(), arguments.name.clone());
    Ok(InstanceGroup {
        api_version: API_VERSION.to_string(),
        kind: KIND_INSTANCE_GROUP.to_string(),
        metadata: ObjectMeta {
            name: arguments.group.clone(),
            labels,
        },
        spec: InstanceGroupSpec {
            role,
            machine_type: arguments.machine_type.clone(),
            image: arguments.image.clone(),
            os_family: arguments.os_family,
            min_size,
            max_size,
            subnets: arguments.subnets.clone(),
            root_volume: RootVolume::default(),
            spot: arguments.spot.then(SpotSpec::default),
            mixed_instances_policy: None,
            node_labels,
            taints,
            cloud_labels: BTreeMap::new(),
            rolling_update: RollingUpdateOverride::default(),
            kubelet: Default::default(),
            container_runtime: None,
        },
    })
}

pub async fn delete(
    context: &Context,
    arguments: &DeleteInstanceGroupArgs,
) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let previous = store.read_spec(&arguments.name).await?;
    let Some(group) = previous.bundle.instance_group(&arguments.group) else {
        let known: Vec<&str> = previous
            .bundle
            .instance_groups
            .iter()
            .map(InstanceGroup::name)
            .collect();
        bail!(
            "instance group {:?} not found in cluster {} (groups: {})",
            arguments.group,
            arguments.name,
            known.join(", ")
        );
    };
    let mut bundle = previous.bundle.clone();
    bundle
        .instance_groups
        .retain(|existing| existing.name() != arguments.group);
    // A spec without a control plane is refused here rather than after the fact.
    skiff_api::validate(&bundle)
        .with_context(|| format!("cannot remove instance group {}", arguments.group))?;
    if !arguments.yes {
        context.printer.info(&format!(
            "Would remove instance group {} ({}, {}..{} x {}) from cluster {}.\nRun again with --yes to remove it from the spec; then `skiff update cluster {} --yes` deletes its instances.",
            group.name(),
            group.spec.role,
            group.spec.min_size,
            group.spec.max_size,
            group.spec.machine_type,
            arguments.name,
            arguments.name
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let summary = summary::describe(&previous.bundle, &bundle);
    let stored = store
        .update_spec(&previous, &bundle, &command_line(), &summary)
        .await
        .with_context(|| {
            format!(
                "cannot remove instance group {} from cluster {}",
                arguments.group, arguments.name
            )
        })?;
    context.printer.info(&format!(
        "Removed instance group {} from cluster {} (revision {}).\nIts instances keep running until `skiff update cluster {} --yes` deletes them.",
        arguments.group, arguments.name, stored.revision.serial, arguments.name
    ));
    Ok(ExitCode::SUCCESS)
}
