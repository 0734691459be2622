//! The Kubernetes side of rolling updates and validation: [`KubernetesApi`]
//! implements [`ClusterApi`] with the `kube` client.
//!
//! Draining does what kops does through `kubectl drain --ignore-daemonsets
//! --delete-emptydir-data --force`: DaemonSet pods and static (mirror) pods
//! stay, everything else leaves through the Eviction API so that
//! PodDisruptionBudgets are honoured, and the drain waits until the evicted
//! pods are gone ([`drain`]). Validation reads node conditions, the static
//! control-plane pods, CoreDNS and the kube-system DaemonSets ([`health`]).
//!
//! Two choices a reader may wonder about:
//! * the client's own retry layer is off. It retries a 429 up to fifteen
//!   times with growing pauses, which would hide a disruption budget's
//!   refusals from the drain loop and overrun the drain timeout. Reads are
//!   retried here instead, briefly, on transport errors and 5xx answers: a
//!   control-plane rolling update replaces API servers behind the load
//!   balancer, so a refused connection now and then is expected;
//! * the node list is kept for a few seconds. Validation asks for the node of
//!   every instance and then for its readiness on every poll; one LIST
//!   serves all of them instead of one request per question.

mod drain;
mod health;
mod nodes;
mod secrets;

pub use secrets::{SecretsRewritten, SECRETS_PAGE_SIZE};

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::config::Kubeconfig;
use kube::{Api, Client, Config, ResourceExt};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::{
    ClusterApi, ClusterVersions, ControlPlaneHealth, InstanceView, NodeVersion, Result,
    RolloutError,
};

/// How long a listed set of nodes answers `node_of` and `node_ready`.
const NODE_LIST_LIFETIME: Duration = Duration::from_secs(5);

/// How long connecting to the API server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the API server may take to answer a request.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a read (or another idempotent request) is tried when the API
/// server cannot be reached or answers 429/5xx.
const READ_ATTEMPTS: u32 = 3;

/// The pause before the second attempt of a read; it grows with each attempt.
const READ_RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Where skiff's own credentials are named in the in-memory kubeconfig of
/// [`KubernetesApi::from_parts`].
const SKIFF_CONTEXT: &str = "skiff";

/// What an API server's `/readyz` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// It answered with success: the API server and its etcd serve.
    Ready,
    /// It did not answer with success; why, e.g. `unreachable: ...`.
    NotReady(String),
}

/// Access to a cluster's Kubernetes API for rolling updates and validation.
pub struct KubernetesApi {
    client: Client,
    /// The API server's URL, for messages.
    server: String,
    /// The last node list and when it was taken.
    nodes: Mutex<Option<NodeList>>,
}

struct NodeList {
    taken: Instant,
    nodes: Arc<Vec<Node>>,
}

impl fmt::Debug for KubernetesApi {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("KubernetesApi")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl KubernetesApi {
    /// A client configured by a kubeconfig file: the one given, else
    /// `$KUBECONFIG` or `~/.kube/config`, else the in-cluster service
    /// account. The file's current context is used.
    ///
    /// Must be called within a Tokio runtime (the client starts a task).
    pub fn from_kubeconfig(path: Option<&Path>) -> Result<Self> {
        let config = match path {
            Some(path) => {
                let file = path.display();
                let kubeconfig = Kubeconfig::read_from(path)
                    .map_err(|error| RolloutError::Kubernetes(format!("reading kubeconfig {file}: {}", error_chain(&error))))?;
                Config::try_from(kubeconfig)
                    .map_err(|error| RolloutError::Kubernetes(format!("kubeconfig {file}: {}", error_chain(&error))))?
            }
            None => match Kubeconfig::read().and_then(Config::try_from) {
                Ok(config) => config,
                Err(kubeconfig_error) => Config::incluster().map_err(|incluster_error| {
                    RolloutError::Kubernetes(format!(
                        "no Kubernetes credentials: no usable kubeconfig ($KUBECONFIG or ~/.kube/config: {}) and not running in a pod ({})",
                        error_chain(&kubeconfig_error),
                        error_chain(&incluster_error)
                    ))
                })?,
            },
        };
        Self::from_config(config)
    }

    /// A client that reaches `server_url` (`https://api.<cluster>:443`, or
    /// plain `http://` for a local stand-in) and authenticates with a client
    /// certificate. `ca_pem` is the CA the API server's certificate must
    /// chain to (the cluster CA); without it the system's roots are used.
    /// All three are PEM text; the key may be PKCS#8, RSA or EC.
    ///
    /// The certificates and key are checked here, so a bad one fails now
    /// rather than at the first request. Must be called within a Tokio
    /// runtime (the client starts a task).
    pub fn from_parts(
        server_url: &str,
        ca_pem: Option<&str>,
        client_cert_pem: &str,
        client_key_pem: &str,
    ) -> Result<Self> {
        let encode = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
        let mut cluster = serde_json::json!({ "server": server_url });
        if let Some(ca_pem) = ca_pem {
            cluster["certificate-authority-data"] = encode(ca_pem).into();
        }
        // Built as a kubeconfig so that kube parses the PEM text exactly as
        // it would from a file.
        let document = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{ "name": SKIFF_CONTEXT, "cluster": cluster }],
            "users": [{
                "name": SKIFF_CONTEXT,
                "user": {
                    "client-certificate-data": encode(client_cert_pem),
                    "client-key-data": encode(client_key_pem),
                },
            }],
            "contexts": [{ "name": SKIFF_CONTEXT, "context": { "cluster": SKIFF_CONTEXT, "user": SKIFF_CONTEXT } }],
            "current-context": SKIFF_CONTEXT,
        });
        let kubeconfig: Kubeconfig = serde_json::from_value(document).map_err(|error| {
            RolloutError::Kubernetes(format!("building credentials for {server_url}: {error}"))
        })?;
        let config = Config::try_from(kubeconfig).map_err(|error| {
            RolloutError::Kubernetes(format!(
                "credentials for {server_url}: {}",
                error_chain(&error)
            ))
        })?;
        Self::from_config(config)
    }

    fn from_config(mut config: Config) -> Result<Self> {
        let server = config.cluster_url.to_string();
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(RolloutError::Kubernetes(format!(
                "the client for {server} must be built within a Tokio runtime"
            )));
        }
        // rustls has two crypto providers compiled into skiff (ring for kube,
        // aws-lc-rs for the AWS SDK) and refuses to choose; an error here
        // means one is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        config.read_timeout = Some(READ_TIMEOUT);
        // Count the read timeout from when a request is sent, not from when
        // its pooled connection went idle.
        config.reset_reader_on_write = true;
        config.default_retry = false;
        let client = Client::try_from(config).map_err(|error| {
            RolloutError::Kubernetes(format!(
                "building a client for {server}: {}",
                error_chain(&error)
            ))
        })?;
        Ok(KubernetesApi {
            client,
            server,
            nodes: Mutex::new(None),
        })
    }

    /// The API server's URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Asks the API server's `/readyz` whether it is ready to serve: the
    /// check kubeadm and load balancers use. Never an error: a server that
    /// cannot be reached, or answers anything but success, is not ready,
    /// and says why.
    pub async fn readiness(&self) -> Readiness {
        let request = match http::Request::get("/readyz").body(Vec::new()) {
            Ok(request) => request,
            Err(error) => return Readiness::NotReady(format!("building the request: {error}")),
        };
        match self.client.request_text(request).await {
            Ok(_) => Readiness::Ready,
            Err(kube::Error::Api(status)) => Readiness::NotReady(format!(
                "/readyz answered {} {}",
                status.code, status.message
            )),
            Err(error) => Readiness::NotReady(format!("unreachable: {}", error_chain(&error))),
        }
    }

    /// Deletes a node object (not its instance), so that a terminated
    /// instance leaves no NotReady node behind: skiff runs no cloud
    /// controller manager to do it. A node already gone is success.
    pub async fn delete_node(&self, node: &str) -> Result<()> {
        let api: Api<Node> = Api::all(self.client.clone());
        let action = format!("deleting node {node}");
        let parameters = DeleteParams::default();
        match self
            .idempotent(&action, || api.delete(node, &parameters))
            .await
        {
            Ok(_) => {}
            Err(Failure::NotFound) => {}
            Err(Failure::Other(error)) => return Err(error),
        }
        if let Some(list) = self.nodes.lock().await.as_mut() {
            list.nodes = Arc::new(
                list.nodes
                    .iter()
                    .filter(|known| known.name_any() != node)
                    .cloned()
                    .collect(),
            );
        }
        Ok(())
    }

    /// The cluster's nodes, as listed at most [`NODE_LIST_LIFETIME`] ago.
    async fn nodes(&self) -> Result<Arc<Vec<Node>>> {
        // Held while listing, so that concurrent callers share one LIST.
        let mut cached = self.nodes.lock().await;
        if let Some(list) = cached.as_ref() {
            if list.taken.elapsed() < NODE_LIST_LIFETIME {
                return Ok(Arc::clone(&list.nodes));
            }
        }
        let api: Api<Node> = Api::all(self.client.clone());
        let parameters = ListParams::default();
        let listed = self.read("listing nodes", || api.list(&parameters)).await?;
        let nodes = Arc::new(listed.items);
        *cached = Some(NodeList {
            taken: Instant::now(),
            nodes: Arc::clone(&nodes),
        });
        Ok(nodes)
    }

    /// The pods of one namespace (or all), restricted by field and label selectors.
    async fn pods(
        &self,
        namespace: Option<&str>,
        fields: Option<&str>,
        labels: Option<&str>,
        action: &str,
    ) -> Result<Vec<Pod>> {
        let api: Api<Pod> = match namespace {
            Some(namespace) => Api::namespaced(self.client.clone(), namespace),
            None => Api::all(self.client.clone()),
        };
        let mut parameters = ListParams::default();
        if let Some(fields) = fields {
            parameters = parameters.fields(fields);
        }
        if let Some(labels) = labels {
            parameters = parameters.labels(labels);
        }
        Ok(self.read(action, || api.list(&parameters)).await?.items)
    }

    /// A read, tried again on transport errors, 429 and 5xx.
    async fn read<T, Call, Answer>(&self, action: &str, call: Call) -> Result<T>
    where
        Call: Fn() -> Answer,
        Answer: Future<Output = kube::Result<T>>,
    {
        self.idempotent(action, call)
            .await
            .map_err(|failure| match failure {
                Failure::NotFound => {
                    RolloutError::Kubernetes(format!("{action}: HTTP 404 NotFound"))
                }
                Failure::Other(error) => error,
            })
    }

    /// An idempotent request, tried again on transport errors, 429 and 5xx;
    /// a 404 is told apart, for callers to whom it means success.
    async fn idempotent<T, Call, Answer>(
        &self,
        action: &str,
        call: Call,
    ) -> std::result::Result<T, Failure>
    where
        Call: Fn() -> Answer,
        Answer: Future<Output = kube::Result<T>>,
    {
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    return Err(Failure::NotFound)
                }
                Err(error) if attempt < READ_ATTEMPTS && is_transient(&error) => {
                    tracing::debug!("{action}: {}; trying again", error_chain(&error));
                    tokio::time::sleep(READ_RETRY_PAUSE * attempt).await;
                    attempt += 1;
                }
                Err(error) => return Err(Failure::Other(self.error(action, &error))),
            }
        }
    }

    /// A failed request as a [`RolloutError`]: what was done, and the HTTP
    /// status or why the server could not be reached.
    fn error(&self, action: &str, error: &kube::Error) -> RolloutError {
        RolloutError::Kubernetes(match error {
            kube::Error::Api(status) => {
                let mut message = format!("{action}: HTTP {}", status.code);
                if !status.reason.is_empty() {
                    message.push(' ');
                    message.push_str(&status.reason);
                }
                if !status.message.is_empty() {
                    message.push_str(": ");
                    message.push_str(&status.message);
                }
                message
            }
            other => format!(
                "{action}: no answer from the API server at {}: {}",
                self.server,
                error_chain(other)
            ),
        })
    }
}

/// Why an idempotent request failed.
enum Failure {
    /// HTTP 404.
    NotFound,
    /// Anything else, as reported.
    Other(RolloutError),
}

/// Whether trying again may help: the server could not be reached, is
/// throttling, or failed on its side.
fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => matches!(status.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// An error and its causes, `outer: inner: ...`, without repeating a cause
/// that its wrapper already quotes.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[async_trait]
impl ClusterApi for KubernetesApi {
    async fn node_of(&self, instance: &InstanceView) -> Result<Option<String>> {
        let nodes = self.nodes().await?;
        Ok(nodes::node_of(&nodes, instance).map(|node| node.name_any()))
    }

    async fn cordon(&self, node: &str) -> Result<()> {
        let api: Api<Node> = Api::all(self.client.clone());
        let patch = Patch::Merge(serde_json::json!({ "spec": { "unschedulable": true } }));
        let action = format!("cordoning node {node}");
        let parameters = PatchParams::default();
        match self
            .idempotent(&action, || api.patch(node, &parameters, &patch))
            .await
        {
            Ok(_) => Ok(()),
            // Nothing can be scheduled on a node that is gone.
            Err(Failure::NotFound) => {
                tracing::info!("node {node} is gone; nothing to cordon");
                Ok(())
            }
            Err(Failure::Other(error)) => Err(error),
        }
    }

    async fn drain(&self, node: &str, instance: &str, timeout: Duration) -> Result<()> {
        drain::drain(self, node, instance, timeout).await
    }

    async fn node_ready(&self, node: &str) -> Result<bool> {
        let nodes = self.nodes().await?;
        if let Some(known) = nodes.iter().find(|known| known.name_any() == node) {
            return Ok(nodes::is_ready(known));
        }
        // Registered since the list was taken, or gone.
        let api: Api<Node> = Api::all(self.client.clone());
        match self
            .idempotent(&format!("reading node {node}"), || api.get(node))
            .await
        {
            Ok(fresh) => Ok(nodes::is_ready(&fresh)),
            Err(Failure::NotFound) => Ok(false),
            Err(Failure::Other(error)) => Err(error),
        }
    }

    async fn control_plane_healthy(&self) -> Result<ControlPlaneHealth> {
        let nodes = self.nodes().await?;
        let pods = self
            .pods(
                Some(health::NAMESPACE),
                None,
                None,
                "listing pods in kube-system",
            )
            .await?;
        let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), health::NAMESPACE);
        let parameters = ListParams::default();
        let daemon_sets = self
            .read("listing daemonsets in kube-system", || {
                api.list(&parameters)
            })
            .await?
            .items;
        Ok(health::assess(&nodes, &pods, &daemon_sets))
    }

    async fn versions(&self) -> Result<ClusterVersions> {
        let info = self
            .read("reading the API server's /version", || {
                self.client.apiserver_version()
            })
            .await?;
        // Fresh, not the cached list: a roll asks after replacing nodes.
        let api: Api<Node> = Api::all(self.client.clone());
        let parameters = ListParams::default();
        let listed = self.read("listing nodes", || api.list(&parameters)).await?;
        let kubelets = listed
            .items
            .iter()
            .map(|node| NodeVersion {
                node: node.name_any(),
                kubelet: node
                    .status
                    .as_ref()
                    .and_then(|status| status.node_info.as_ref())
                    .map(|info| info.kubelet_version.clone())
                    .unwrap_or_default(),
            })
            .collect();
        Ok(ClusterVersions {
            api_server: info.git_version,
            kubelets,
        })
    }
}
