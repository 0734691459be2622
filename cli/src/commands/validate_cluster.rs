//! `skiff validate cluster NAME`: each group's instances in service against
//! its spec, a Ready node per instance, a healthy control plane. Exit 2 when
//! invalid, naming what is wrong.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use skiff_api::document::ClusterBundle;
use skiff_rollout::kubernetes::KubernetesApi;
use skiff_rollout::validate::{validate, Validation};
use skiff_rollout::ClusterApi;
use skiff_state::{keystore, StateStore};

use crate::args::ValidateClusterArgs;
use crate::cloud;
use crate::commands::export_kubeconfig::api_server;
use crate::commands::rolling_update::group_plans;
use crate::context::Context;
use crate::printer::{table, OutputFormat};

/// The user name of the certificate skiff makes for its own API access.
const INTERNAL_ADMIN_USER: &str = "skiff";

/// How long an admin certificate made for skiff's own API access lives. It
/// is kept in memory only, never written, and a rolling update of a large
/// cluster can run for hours: long enough for that, short enough to be
/// worthless soon after the process is gone.
const INTERNAL_ADMIN_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Access to the cluster's Kubernetes API: a kubeconfig if one is given,
/// else a short-lived admin certificate signed by the cluster's CA.
pub async fn cluster_api(
    context: &Context,
    store: &StateStore,
    bundle: &ClusterBundle,
    kubeconfig: Option<&Path>,
) -> anyhow::Result<Box<dyn ClusterApi>> {
    let _ = context;
    if let Some(path) = kubeconfig {
        let api = KubernetesApi::from_kubeconfig(Some(path))
            .with_context(|| format!("cannot use the kubeconfig {}", path.display()))?;
        return Ok(Box::new(api));
    }
    let name = bundle.name();
    let authority = keystore::read_ca(store.objects().as_ref(), name)
        .await
        .with_context(|| format!("cannot read the CA of cluster {name}"))?;
    let credentials = keystore::issue_client_certificate(
        &authority,
        INTERNAL_ADMIN_USER,
        Some("system:masters"),
        INTERNAL_ADMIN_LIFETIME,
    )
    .with_context(|| format!("cannot issue skiff's own admin certificate for cluster {name}"))?;
    let server = std::env::var("SKIFF_KUBERNETES_API")
        .ok()
        .filter(|url| !url.is_empty());
    let server = match server {
        Some(server) => server,
        None => api_server(store, bundle).await?,
    };
    let api = KubernetesApi::from_parts(
        &server,
        Some(&authority.certificate_pem),
        &credentials.certificate_pem,
        credentials.private_key.expose(),
    )
    .with_context(|| format!("cannot reach the Kubernetes API of cluster {name} at {server}"))?;
    Ok(Box::new(api))
}

pub async fn run(context: &Context, arguments: &ValidateClusterArgs) -> anyhow::Result<ExitCode> {
    let store = context.store().await?;
    let spec = store.read_spec(&arguments.name).await?;
    let bundle = &spec.bundle;
    let provider = cloud::provider(context, bundle).await?;
    let plans = group_plans(bundle);
    let groups: Vec<_> = plans
        .into_iter()
        .filter_map(|plan| {
            let group = bundle.instance_group(&plan.group)?;
            let sizes = (group.spec.min_size, group.spec.max_size);
            Some((plan, sizes.0, sizes.1))
        })
        .collect();
    let cluster_api = if arguments.cloudonly {
        None
    } else {
        Some(cluster_api(context, &store, bundle, arguments.kubeconfig.as_deref()).await?)
    };
    let deadline = Instant::now() + arguments.wait.unwrap_or_default();
    let validation = loop {
        let validation = validate(&provider, &groups, cluster_api.as_deref()).await?;
        if validation.problems.is_empty() || Instant::now() >= deadline {
            break validation;
        }
        tokio::time::sleep(
            Duration::from_secs(10)
                .min(deadline.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(200)),
        )
        .await;
    };
    print(context, arguments, &validation)?;
    if validation.problems.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(2))
    }
}

fn print(
    context: &Context,
    arguments: &ValidateClusterArgs,
    validation: &Validation,
) -> anyhow::Result<()> {
    match arguments.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            let value = serde_json::json!({
                "cluster": arguments.name,
                "valid": validation.problems.is_empty(),
                "groups": validation.groups,
                "problems": validation.problems,
            });
            context.printer.data(&serde_json::to_string_pretty(&value)?);
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = validation
                .groups
                .iter()
                .map(|group| {
                    vec![
                        group.group.clone(),
                        group.role.clone(),
                        group.min.to_string(),
                        group.max.to_string(),
                        group.in_service.to_string(),
                        group.outdated.to_string(),
                    ]
                })
                .collect();
            let mut text = table(
                &[
                    "INSTANCE GROUP",
                    "ROLE",
                    "MIN",
                    "MAX",
                    "IN SERVICE",
                    "OUTDATED",
                ],
                &rows,
            );
            if validation.problems.is_empty() {
                text.push_str(&format!("\nCluster {} is valid.\n", arguments.name));
            } else {
                text.push_str("\nProblems:\n");
                let problems: Vec<Vec<String>> = validation
                    .problems
                    .iter()
                    .map(|problem| {
                        vec![
                            problem.kind.clone(),
                            problem.name.clone(),
                            problem.message.clone(),
                        ]
                    })
                    .collect();
                text.push_str(&table(&["KIND", "NAME", "MESSAGE"], &problems));
                text.push_str(&format!("\nCluster {} is not valid.\n", arguments.name));
            }
            context.printer.data(&text);
        }
    }
    Ok(())
}
