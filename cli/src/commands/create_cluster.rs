//! `skiff create cluster`: a complete spec from a few choices, stored as
//! revision 1 of a new cluster.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use skiff_api::new_cluster::{new_cluster, NewClusterOptions};
use skiff_api::{Cni, InstanceGroup, KubernetesVersion, LoadBalancerType, Topology};

use crate::args::CreateClusterArgs;
use crate::context::{command_line, Context};
use crate::documents::{check_architectures, finalize};
use crate::printer::to_json;
use crate::printer::OutputFormat;

pub async fn run(context: &Context, arguments: &CreateClusterArgs) -> anyhow::Result<ExitCode> {
    let options = options(arguments)?;
    let mut bundle = new_cluster(&options).map_err(anyhow::Error::msg)?;
    finalize(context, &mut bundle)?;

    if arguments.dry_run {
        let text = match arguments.output {
            OutputFormat::Json => {
                let mut documents = vec![serde_json::to_value(&bundle.cluster)?];
                for group in &bundle.instance_groups {
                    documents.push(serde_json::to_value(group)?);
                }
                to_json(&documents)?
            }
            OutputFormat::Yaml | OutputFormat::Table => bundle.to_yaml(),
        };
        context.printer.data(&text);
        return Ok(ExitCode::SUCCESS);
    }

    check_architectures(context, None, &bundle).await?;
    let store = context.store().await?;
    context
        .require_secure_store(&store, &format!("create cluster {}", bundle.name()))
        .await?;
    let stored = store
        .create_spec(&bundle, &command_line(), "created")
        .await
        .with_context(|| {
            format!(
                "cannot create cluster {:?} in {}",
                bundle.name(),
                store.location()
            )
        })?;
    let name = bundle.name();
    let groups: Vec<String> = bundle
        .instance_groups
        .iter()
        .map(|group: &InstanceGroup| {
            format!(
                "{} ({}, {})",
                group.name(),
                group.spec.role,
                group.spec.machine_type
            )
        })
        .collect();
    context.printer.info(&format!(
        "Created cluster {name} in {} (revision {}).\nInstance groups:\n  {}\n\nNothing exists in AWS yet. Next:\n  skiff get cluster {name} -o yaml --full    # review the complete spec\n  skiff edit cluster {name}                  # change it\n  skiff update cluster {name}                # preview what will be built\n  skiff update cluster {name} --yes          # build it",
        store.location(),
        stored.revision.serial,
        groups.join("\n  ")
    ));
    Ok(ExitCode::SUCCESS)
}

fn options(arguments: &CreateClusterArgs) -> anyhow::Result<NewClusterOptions> {
    let kubernetes_version: KubernetesVersion = arguments
        .kubernetes_version
        .parse()
        .map_err(|error| anyhow::anyhow!("--kubernetes-version: {error}"))?;
    if !kubernetes_version.is_offered() {
        bail!(
            "--kubernetes-version: {kubernetes_version} is not a version skiff builds; choose one of {}",
            skiff_api::version::describe_versions(&skiff_api::version::supported_versions())
        );
    }
    let zones: Vec<String> = arguments
        .zones
        .iter()
        .map(|zone| zone.trim().to_string())
        .filter(|zone| !zone.is_empty())
        .collect();
    if zones.is_empty() {
        bail!("--zones: name at least one availability zone, e.g. --zones us-east-1a");
    }
    for control_plane_zone in &arguments.control_plane_zones {
        if !zones.contains(control_plane_zone) {
            bail!(
                "--control-plane-zones: {control_plane_zone} is not one of --zones ({})",
                zones.join(",")
            );
        }
    }
    if arguments.control_plane_count == 0 {
        bail!("--control-plane-count: a cluster needs at least one control-plane node");
    }
    let ssh_public_key = match &arguments.ssh_public_key {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--ssh-public-key: cannot read {}", path.display()))?;
            Some(text.trim().to_string())
        }
    };
    let mut cloud_labels = BTreeMap::new();
    for pair in &arguments.cloud_labels {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--cloud-labels: {pair:?} is not KEY=VALUE"))?;
        cloud_labels.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(NewClusterOptions {
        name: arguments.name.trim().to_string(),
        zones,
        control_plane_zones: arguments.control_plane_zones.clone(),
        control_plane_count: arguments.control_plane_count,
        control_plane_size: arguments.control_plane_size.clone(),
        node_count: arguments.node_count,
        node_size: arguments.node_size.clone(),
        kubernetes_version,
        topology: if arguments.topology == "private" {
            Topology::Private
        } else {
            Topology::Public
        },
        cni: match arguments.networking.as_str() {
            "calico" => Cni::Calico,
            "flannel" => Cni::Flannel,
            _ => Cni::Cilium,
        },
        dns_zone: arguments.dns_zone.clone(),
        network_cidr: arguments.network_cidr.clone(),
        network_id: arguments.vpc.clone(),
        ssh_public_key,
        api_load_balancer_type: if arguments.api_loadbalancer_type == "internal" {
            LoadBalancerType::Internal
        } else {
            LoadBalancerType::Public
        },
        cloud_labels,
        image: arguments.image.clone(),
        os_family: arguments.os_family,
        admin_access: arguments.admin_access.clone(),
        ssh_access: arguments.ssh_access.clone(),
    })
}
