//! `validate cluster`: each group's instances in service against its
//! spec, a Ready node per instance, a healthy control plane; optionally
//! waiting until that holds.

use std::time::{Duration, Instant};

use skiff_rollout::validate::{validate as check, Validation};

use crate::cluster::Session;
use crate::error::{EngineError, Result};
use crate::roll::group_plans;

/// What to validate and how.
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {
    /// Skip the Kubernetes API (only what AWS says).
    pub cloud_only: bool,
    /// A kubeconfig to reach the API with (else skiff's own certificate).
    pub kubeconfig: Option<std::path::PathBuf>,
    /// How long to wait for the cluster to become valid (zero: look once).
    pub wait: Duration,
}

/// The longest pause between two looks while waiting.
const POLL_INTERVAL: Duration = Duration::from_secs(10);

/// Validates a cluster, looking again until it is valid or `wait` is over.
pub async fn validate(
    session: &Session<'_>,
    cluster: &str,
    options: &ValidateOptions,
) -> Result<Validation> {
    let spec = session.store.read_spec(cluster).await?;
    let bundle = &spec.bundle;
    let provider = session.provider(bundle)?;
    let groups: Vec<_> = group_plans(bundle)
        .into_iter()
        .filter_map(|plan| {
            let group = bundle.instance_group(&plan.group)?;
            let sizes = (group.spec.min_size, group.spec.max_size);
            Some((plan, sizes.0, sizes.1))
        })
        .collect();
    let cluster_api = match options.cloud_only {
        true => None,
        false => Some(
            crate::access::cluster_api(session.store, bundle, options.kubeconfig.as_deref())
                .await?,
        ),
    };
    let deadline = Instant::now() + options.wait;
    loop {
        let validation = check(&provider, &groups, cluster_api.as_deref())
            .await
            .map_err(|source| EngineError::Cluster {
                what: format!("validating cluster {cluster}"),
                source,
            })?;
        if validation.problems.is_empty() || Instant::now() >= deadline {
            return Ok(validation);
        }
        tokio::time::sleep(
            POLL_INTERVAL
                .min(deadline.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(200)),
        )
        .await;
    }
}
