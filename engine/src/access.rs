//! Reaching a cluster's Kubernetes API: its address, and the credentials
//! skiff uses for its own calls (drain, validation).

use std::path::Path;
use std::time::Duration;

use skiff_api::document::ClusterBundle;
use skiff_plans::desired::load_balancer::{load_balancer_key, API_PORT};
use skiff_plans::{Output, RecordedContent};
use skiff_rollout::kubernetes::{KubernetesApi, Readiness};
use skiff_rollout::ClusterApi;
use skiff_state::{keystore, recorded, StateStore};

use crate::error::{EngineError, Result};

/// The user name of the certificate skiff makes for its own API access.
const INTERNAL_ADMIN_USER: &str = "skiff";

/// How long an admin certificate made for skiff's own API access lives. It
/// is kept in memory only, never written, and a rolling update of a large
/// cluster can run for hours: long enough for that, short enough to be
/// worthless soon after the process is gone.
const INTERNAL_ADMIN_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Overrides the API address skiff uses for its own calls (tests, or a
/// tunnel to a private API).
pub const KUBERNETES_API_ENV: &str = "SKIFF_KUBERNETES_API";

/// Access to the cluster's Kubernetes API: a kubeconfig if one is given,
/// else a short-lived admin certificate signed by the cluster's CA.
pub async fn cluster_api(
    store: &StateStore,
    bundle: &ClusterBundle,
    kubeconfig: Option<&Path>,
) -> Result<Box<dyn ClusterApi>> {
    if let Some(path) = kubeconfig {
        let api =
            KubernetesApi::from_kubeconfig(Some(path)).map_err(|source| EngineError::Cluster {
                what: format!("cannot use the kubeconfig {}", path.display()),
                source,
            })?;
        return Ok(Box::new(api));
    }
    Ok(Box::new(internal_api(store, bundle).await?))
}

/// The same access as the `kube` client itself, for what the
/// [`ClusterApi`] seam does not cover (rewriting Secrets).
pub async fn kubernetes_api(
    store: &StateStore,
    bundle: &ClusterBundle,
    kubeconfig: Option<&Path>,
) -> Result<KubernetesApi> {
    match kubeconfig {
        Some(path) => {
            KubernetesApi::from_kubeconfig(Some(path)).map_err(|source| EngineError::Cluster {
                what: format!("cannot use the kubeconfig {}", path.display()),
                source,
            })
        }
        None => internal_api(store, bundle).await,
    }
}

/// A client for the cluster's API that authenticates with a short-lived
/// admin certificate signed by the cluster's CA (kept in memory only), at
/// [`KUBERNETES_API_ENV`] if set, else at the cluster's API address.
async fn internal_api(store: &StateStore, bundle: &ClusterBundle) -> Result<KubernetesApi> {
    let name = bundle.name();
    let authority = keystore::read_ca(store.objects().as_ref(), name)
        .await
        .map_err(|source| EngineError::Pki {
            cluster: name.to_string(),
            source,
        })?;
    let credentials = keystore::issue_client_certificate(
        &authority,
        INTERNAL_ADMIN_USER,
        Some("system:masters"),
        INTERNAL_ADMIN_LIFETIME,
    )
    .map_err(|source| EngineError::Keystore {
        what: format!("cannot issue skiff's own admin certificate for cluster {name}"),
        source,
    })?;
    let server = std::env::var(KUBERNETES_API_ENV)
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
    .map_err(|source| EngineError::Cluster {
        what: format!("cannot reach the Kubernetes API of cluster {name} at {server}"),
        source,
    })?;
    Ok(api)
}

/// The URL clients use for a cluster's API: `https://api.<cluster>:443`,
/// or for a gossip cluster the API load balancer's DNS name, read from the
/// recorded state (AWS names the load balancer when it is created).
pub async fn api_server(store: &StateStore, bundle: &ClusterBundle) -> Result<String> {
    let cluster = bundle.name();
    if !bundle.cluster.is_gossip() {
        return Ok(format!(
            "https://{}:{API_PORT}",
            bundle.cluster.api_dns_name()
        ));
    }
    let not_created = || EngineError::NotCreated {
        cluster: cluster.to_string(),
    };
    let stored = recorded::read::<RecordedContent>(store.objects().as_ref(), cluster)
        .await?
        .ok_or_else(not_created)?;
    let host = stored
        .state
        .content
        .resources
        .get(&load_balancer_key())
        .and_then(|resource| resource.outputs.get(&Output::DnsName))
        .filter(|dns_name| !dns_name.is_empty())
        .ok_or_else(not_created)?;
    Ok(format!("https://{host}:{API_PORT}"))
}

/// Whether a cluster's API server answers `/readyz` now, and at which
/// address it was asked. A cluster whose API cannot even be addressed (a
/// gossip cluster whose load balancer is not recorded) or whose CA is
/// missing has no API to answer: not ready, with the reason.
pub async fn api_readiness(store: &StateStore, bundle: &ClusterBundle) -> (String, Readiness) {
    let server = match std::env::var(KUBERNETES_API_ENV)
        .ok()
        .filter(|url| !url.is_empty())
    {
        Some(server) => server,
        None => match api_server(store, bundle).await {
            Ok(server) => server,
            Err(error) => return (String::from("-"), Readiness::NotReady(error.to_string())),
        },
    };
    match internal_api(store, bundle).await {
        Ok(api) => (server, api.readiness().await),
        Err(error) => (server, Readiness::NotReady(error.to_string())),
    }
}
