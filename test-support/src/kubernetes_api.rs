//! A stand-in Kubernetes API server, for tests of code that talks to a
//! cluster's API: skiff-rollout's `KubernetesApi` and, through the real
//! binary, `skiff validate cluster`.
//!
//! It speaks plain HTTP/1.1 on 127.0.0.1, keeps nodes, pods and DaemonSets
//! in memory as JSON, records every request it gets, and answers the few
//! endpoints skiff uses the way a real API server does: List objects with
//! `apiVersion`/`kind`/`metadata`/`items` (items without their own
//! `apiVersion`/`kind`, as the real server sends them), `Status` objects
//! with `code`/`reason`/`message` for failures, JSON merge patches applied
//! to the stored node, field and label selectors on pod lists, and the
//! Eviction subresource with scriptable answers per pod; and Secrets
//! (list in chunks, get, update with resourceVersion conflicts) stored
//! under the key of an `EncryptionConfiguration` file the server re-reads
//! on every request, as an API server encrypting at rest does
//! (`kubernetes_api/encryption.rs`).
//!
//! Anything it does not know answers 404 and is recorded, so a test can
//! show that no unexpected request was made.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

mod encryption;

pub use encryption::{secret, Observation};

/// The label kubeadm gives control-plane nodes.
pub const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";

/// The annotation of a static pod's API copy.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The static pods kubeadm runs on a control-plane node.
pub const STATIC_COMPONENTS: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET`, `PATCH`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string, if the URI had one.
    pub query: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The body, as text.
    pub body: String,
}

impl Recorded {
    /// A query parameter, percent-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        query_param(self.query.as_deref(), name)
    }

    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|error| {
            panic!(
                "{} {} body is not JSON ({error}): {}",
                self.method, self.path, self.body
            )
        })
    }
}

/// How the server answers one eviction request of a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    /// 201 Created: the pod is evicted and disappears.
    Accept,
    /// 201 Created, but the pod stays, terminating (a long grace period).
    AcceptAndStay,
    /// 429 TooManyRequests: a PodDisruptionBudget does not allow it.
    Refuse,
    /// Another failure status.
    Fail(u16),
}

/// What the stand-in's `/version` and nodes' kubelets report unless a test
/// says otherwise: skiff's default Kubernetes version.
pub const DEFAULT_VERSION: &str = "v1.34.2";

struct State {
    /// The API server's `gitVersion`.
    version: String,
    nodes: Vec<Value>,
    pods: Vec<Value>,
    daemon_sets: Vec<Value>,
    /// Answers to evictions per `(namespace, name)`; the last one repeats.
    evictions: HashMap<(String, String), VecDeque<Eviction>>,
    /// Failures to answer the next requests to `(method, path)` with.
    failures: HashMap<(String, String), VecDeque<u16>>,
    requests: Vec<Recorded>,
    resource_version: u64,
    /// Secrets and their encryption at rest.
    encryption: encryption::Encryption,
    /// What `GET /metrics` answers (Prometheus text); 404 while `None`.
    metrics: Option<String>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: DEFAULT_VERSION.to_string(),
            nodes: Vec::new(),
            pods: Vec::new(),
            daemon_sets: Vec::new(),
            evictions: HashMap::new(),
            failures: HashMap::new(),
            requests: Vec::new(),
            resource_version: 0,
            encryption: encryption::Encryption::default(),
            metrics: None,
        }
    }
}

/// A running stand-in API server. It serves on the tokio runtime it was
/// started on and stops with it; a test that blocks its own thread while the
/// server must answer (running the `skiff` binary) needs a multi-thread
/// runtime, whose workers go on serving.
#[derive(Clone)]
pub struct FakeApiServer {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FakeApiServer {
    /// Starts a server with no objects.
    pub async fn start() -> FakeApiServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding 127.0.0.1:0");
        let address = listener.local_addr().expect("the listener's address");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request| handle(Arc::clone(&state), request));
                    // A client hanging up mid-request is no concern of the tests.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeApiServer { address, state }
    }

    /// Serves `text` (Prometheus text format) at `GET /metrics`.
    pub fn set_metrics(&self, text: &str) {
        self.state().metrics = Some(text.to_string());
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a node object.
    pub fn add_node(&self, node: Value) {
        self.state().nodes.push(node);
    }

    /// Adds a pod object.
    pub fn add_pod(&self, pod: Value) {
        self.state().pods.push(pod);
    }

    /// Adds a DaemonSet object.
    pub fn add_daemon_set(&self, daemon_set: Value) {
        self.state().daemon_sets.push(daemon_set);
    }

    /// How the evictions of a pod are answered, in order; the last answer
    /// repeats. Pods without a script are evicted at the first request.
    pub fn script_evictions(&self, namespace: &str, name: &str, answers: &[Eviction]) {
        assert!(!answers.is_empty(), "an eviction script needs an answer");
        self.state().evictions.insert(
            (namespace.to_string(), name.to_string()),
            answers.iter().copied().collect(),
        );
    }

    /// Answers the next `count` requests `method path` with `status` (a Status object).
    pub fn fail_next(&self, method: &str, path: &str, status: u16, count: usize) {
        let mut state = self.state();
        let queue = state
            .failures
            .entry((method.to_string(), path.to_string()))
            .or_default();
        queue.extend(std::iter::repeat_n(status, count));
    }

    /// Sets the Ready condition of a stored node (panics if there is none).
    pub fn set_ready(&self, name: &str, ready: bool) {
        let mut state = self.state();
        let node = state
            .nodes
            .iter_mut()
            .find(|node| name_of(node) == name)
            .unwrap_or_else(|| panic!("no node {name}"));
        let conditions = node["status"]["conditions"]
            .as_array_mut()
            .unwrap_or_else(|| panic!("node {name} has no conditions"));
        conditions.retain(|condition| condition["type"] != "Ready");
        conditions.push(ready_condition(ready));
    }

    /// What `/version` reports from now on (`gitVersion`, e.g. `v1.35.1`).
    pub fn set_version(&self, git_version: &str) {
        self.state().version = git_version.to_string();
    }

    /// Sets the kubelet version a stored node reports (panics if there is none).
    pub fn set_kubelet_version(&self, name: &str, version: &str) {
        let mut state = self.state();
        let node = state
            .nodes
            .iter_mut()
            .find(|node| name_of(node) == name)
            .unwrap_or_else(|| panic!("no node {name}"));
        node["status"]["nodeInfo"]["kubeletVersion"] = json!(version);
        node["status"]["nodeInfo"]["kubeProxyVersion"] = json!(version);
    }

    /// The stored node, if any.
    pub fn node(&self, name: &str) -> Option<Value> {
        self.state()
            .nodes
            .iter()
            .find(|node| name_of(node) == name)
            .cloned()
    }

    /// The stored pods, `namespace/name`.
    pub fn pod_names(&self) -> Vec<String> {
        self.state()
            .pods
            .iter()
            .map(|pod| format!("{}/{}", namespace_of(pod), name_of(pod)))
            .collect()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// The requests with this method and path.
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|request| request.method == method && request.path == path)
            .collect()
    }

    /// Requests that reached no endpoint the server knows.
    pub fn unexpected(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|request| {
                route(&request.method, &request.path).is_none()
                    && encryption::route(&request.method, &request.path).is_none()
            })
            .filter(|request| !(request.method == "GET" && request.path == "/metrics"))
            .map(|request| format!("{} {}", request.method, request.path))
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Objects

/// A node with an InternalIP and a Ready condition that is True or False.
pub fn node(name: &str, internal_ip: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": format!("uid-node-{name}"),
            "resourceVersion": "1",
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux" },
        },
        "spec": { "podCIDR": "100.96.1.0/24" },
        "status": {
            "addresses": [
                { "type": "InternalIP", "address": internal_ip },
                { "type": "Hostname", "address": name },
            ],
            "conditions": [
                {
                    "type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory",
                    "lastHeartbeatTime": "2024-05-01T10:05:00Z", "lastTransitionTime": "2024-05-01T10:00:00Z",
                },
                ready_condition(ready),
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": format!("boot-{name}"),
                "containerRuntimeVersion": "containerd://1.7.24",
                "kernelVersion": "6.8.0-1021-aws",
                "kubeProxyVersion": DEFAULT_VERSION,
                "kubeletVersion": DEFAULT_VERSION,
                "machineID": format!("machine-{name}"),
                "operatingSystem": "linux",
                "osImage": "Ubuntu 24.04.1 LTS",
                "systemUUID": format!("uuid-{name}"),
            },
        },
    })
}

/// A node's Ready condition, True or False as the kubelet reports it.
fn ready_condition(ready: bool) -> Value {
    let (status, reason, message) = if ready {
        ("True", "KubeletReady", "kubelet is posting ready status")
    } else {
        (
            "False",
            "KubeletNotReady",
            "container runtime network not ready: NetworkReady=false",
        )
    };
    json!({
        "type": "Ready", "status": status, "reason": reason, "message": message,
        "lastHeartbeatTime": "2024-05-01T10:05:00Z", "lastTransitionTime": "2024-05-01T10:00:00Z",
    })
}

/// A control-plane node (labelled as kubeadm labels it).
pub fn control_plane_node(name: &str, internal_ip: &str, ready: bool) -> Value {
    let mut node = node(name, internal_ip, ready);
    node["metadata"]["labels"][CONTROL_PLANE_LABEL] = json!("");
    node["spec"]["taints"] = json!([{ "key": CONTROL_PLANE_LABEL, "effect": "NoSchedule" }]);
    node
}

/// A running, ready pod on a node.
pub fn pod(namespace: &str, name: &str, node: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": format!("uid-pod-{namespace}-{name}"),
            "resourceVersion": "1",
            "creationTimestamp": "2024-05-01T10:01:00Z",
            "labels": {},
        },
        "spec": {
            "nodeName": node,
            "containers": [{ "name": "main", "image": "registry.k8s.io/pause:3.9" }],
        },
        "status": {
            "phase": "Running",
            "conditions": [{ "type": "Ready", "status": "True" }],
        },
    })
}

/// A pod of a ReplicaSet.
pub fn replica_set_pod(namespace: &str, name: &str, node: &str) -> Value {
    with_owner(
        pod(namespace, name, node),
        "apps/v1",
        "ReplicaSet",
        "owner-rs",
    )
}

/// A pod of a DaemonSet (controller owner reference).
pub fn daemon_set_pod(namespace: &str, name: &str, node: &str, daemon_set: &str) -> Value {
    with_owner(
        pod(namespace, name, node),
        "apps/v1",
        "DaemonSet",
        daemon_set,
    )
}

/// The API copy of a static pod: mirror annotation, owned by its node.
pub fn mirror_pod(namespace: &str, name: &str, node: &str) -> Value {
    let mut pod = with_owner(pod(namespace, name, node), "v1", "Node", node);
    pod["metadata"]["annotations"] =
        json!({ MIRROR_ANNOTATION: "0123456789abcdef", "kubernetes.io/config.source": "file" });
    pod
}

/// The static pod kubeadm runs for `component` on a control-plane node.
pub fn static_pod(component: &str, node: &str, ready: bool) -> Value {
    let mut pod = mirror_pod("kube-system", &format!("{component}-{node}"), node);
    pod["metadata"]["labels"] = json!({ "component": component, "tier": "control-plane" });
    pod["status"]["conditions"] =
        json!([{ "type": "Ready", "status": if ready { "True" } else { "False" } }]);
    pod
}

/// A pod in a given phase (`Succeeded`, `Failed`, ...).
pub fn with_phase(mut pod: Value, phase: &str) -> Value {
    pod["status"] = json!({ "phase": phase });
    pod
}

/// A pod with a label.
pub fn with_label(mut pod: Value, key: &str, value: &str) -> Value {
    pod["metadata"]["labels"][key] = json!(value);
    pod
}

fn with_owner(mut pod: Value, api_version: &str, kind: &str, name: &str) -> Value {
    pod["metadata"]["ownerReferences"] = json!([{
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": format!("uid-{name}"),
        "controller": true,
        "blockOwnerDeletion": true,
    }]);
    pod
}

/// A kube-system DaemonSet with `ready` of `desired` pods ready.
pub fn daemon_set(name: &str, desired: i32, ready: i32) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": { "name": name, "namespace": "kube-system", "uid": format!("uid-ds-{name}"), "resourceVersion": "1" },
        "spec": {
            "selector": { "matchLabels": { "k8s-app": name } },
            "template": {
                "metadata": { "labels": { "k8s-app": name } },
                "spec": { "containers": [{ "name": name, "image": format!("registry.k8s.io/{name}:v1") }] },
            },
        },
        "status": {
            "currentNumberScheduled": desired,
            "desiredNumberScheduled": desired,
            "numberMisscheduled": 0,
            "numberReady": ready,
            "numberAvailable": ready,
        },
    })
}

/// `/version` as the API server answers it (k8s.io/apimachinery
/// pkg/version `Info`).
fn version_info(git_version: &str) -> Value {
    let numbers: Vec<&str> = git_version.trim_start_matches('v').split('.').collect();
    json!({
        "major": numbers.first().copied().unwrap_or("1"),
        "minor": numbers.get(1).copied().unwrap_or("0"),
        "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-11-12T00:00:00Z",
        "goVersion": "go1.24.9",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn namespace_of(object: &Value) -> &str {
    object["metadata"]["namespace"].as_str().unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Serving

/// The endpoints the server knows.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Version,
    Nodes,
    Node(String),
    AllPods,
    NamespacedPods(String),
    Eviction(String, String),
    DaemonSets(String),
}

fn route(method: &str, path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let route = match segments.as_slice() {
        ["version"] => Route::Version,
        ["api", "v1", "nodes"] => Route::Nodes,
        ["api", "v1", "nodes", name] => Route::Node(name.to_string()),
        ["api", "v1", "pods"] => Route::AllPods,
        ["api", "v1", "namespaces", namespace, "pods"] => {
            Route::NamespacedPods(namespace.to_string())
        }
        ["api", "v1", "namespaces", namespace, "pods", name, "eviction"] => {
            Route::Eviction(namespace.to_string(), name.to_string())
        }
        ["apis", "apps", "v1", "namespaces", namespace, "daemonsets"] => {
            Route::DaemonSets(namespace.to_string())
        }
        _ => return None,
    };
    let allowed: &[&str] = match route {
        Route::Version
        | Route::Nodes
        | Route::AllPods
        | Route::NamespacedPods(_)
        | Route::DaemonSets(_) => &["GET"],
        Route::Node(_) => &["GET", "PATCH", "DELETE"],
        Route::Eviction(..) => &["POST"],
    };
    allowed.contains(&method).then_some(route)
}

type Answer = (StatusCode, Value);

/// `GET /metrics`: the text set with [`FakeApiServer::set_metrics`], in the
/// Prometheus text format the API server serves (not JSON).
fn metrics_answer(
    state: &State,
    method: &Method,
    request: &Recorded,
) -> Option<Response<Full<Bytes>>> {
    if *method != Method::GET || request.path != "/metrics" {
        return None;
    }
    let text = state.metrics.clone()?;
    Some(
        Response::builder()
            .status(StatusCode::OK)
            .header(
                hyper::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )
            .body(Full::new(Bytes::from(text)))
            .expect("a response"),
    )
}

async fn handle(
    state: Arc<Mutex<State>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        content_type: parts
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string),
        body,
    };
    let (status, answer) = {
        let mut state = state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.requests.push(recorded.clone());
        if let Some(text) = metrics_answer(&state, &parts.method, &recorded) {
            return Ok(text);
        }
        answer(&mut state, &parts.method, &recorded)
    };
    let response = Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(answer.to_string())))
        .expect("a response");
    Ok(response)
}

fn answer(state: &mut State, method: &Method, request: &Recorded) -> Answer {
    let key = (request.method.clone(), request.path.clone());
    if let Some(code) = state.failures.get_mut(&key).and_then(VecDeque::pop_front) {
        return status_failure(
            code,
            &format!(
                "the stand-in server was told to fail {} {}",
                request.method, request.path
            ),
        );
    }
    if let Some(answer) = encryption::answer(state, method, request) {
        return answer;
    }
    let Some(route) = route(method.as_str(), &request.path) else {
        return status_failure(404, "the server could not find the requested resource");
    };
    match route {
        Route::Version => (StatusCode::OK, version_info(&state.version)),
        Route::Nodes => list(state, "NodeList", "v1", state.nodes.clone()),
        Route::Node(name) => node_request(state, method, &name, request),
        Route::AllPods | Route::NamespacedPods(_) => {
            let namespace = match &route {
                Route::NamespacedPods(namespace) => Some(namespace.as_str()),
                _ => None,
            };
            match select_pods(&state.pods, namespace, request) {
                Ok(pods) => list(state, "PodList", "v1", pods),
                Err(BadRequest(message)) => status_failure(400, &message),
            }
        }
        Route::DaemonSets(namespace) => {
            let items = state
                .daemon_sets
                .iter()
                .filter(|set| namespace_of(set) == namespace)
                .cloned()
                .collect();
            list(state, "DaemonSetList", "apps/v1", items)
        }
        Route::Eviction(namespace, name) => evict(state, &namespace, &name, request),
    }
}

fn list(state: &mut State, kind: &str, api_version: &str, items: Vec<Value>) -> Answer {
    state.resource_version += 1;
    // The real server leaves apiVersion and kind out of list items.
    let items: Vec<Value> = items
        .into_iter()
        .map(|mut item| {
            if let Some(object) = item.as_object_mut() {
                object.remove("apiVersion");
                object.remove("kind");
            }
            item
        })
        .collect();
    (
        StatusCode::OK,
        json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": { "resourceVersion": state.resource_version.to_string() },
            "items": items,
        }),
    )
}

fn node_request(state: &mut State, method: &Method, name: &str, request: &Recorded) -> Answer {
    let Some(index) = state.nodes.iter().position(|node| name_of(node) == name) else {
        return not_found("nodes", name);
    };
    match *method {
        Method::GET => (StatusCode::OK, state.nodes[index].clone()),
        Method::DELETE => {
            let node = state.nodes.remove(index);
            (StatusCode::OK, node)
        }
        Method::PATCH => {
            if request.content_type.as_deref() != Some("application/merge-patch+json") {
                return status_failure(
                    415,
                    &format!(
                        "the stand-in server only takes merge patches, not {:?}",
                        request.content_type
                    ),
                );
            }
            let patch: Value = match serde_json::from_str(&request.body) {
                Ok(patch) => patch,
                Err(error) => {
                    return status_failure(400, &format!("error decoding patch: {error}"))
                }
            };
            merge_patch(&mut state.nodes[index], &patch);
            state.resource_version += 1;
            state.nodes[index]["metadata"]["resourceVersion"] =
                json!(state.resource_version.to_string());
            (StatusCode::OK, state.nodes[index].clone())
        }
        _ => status_failure(405, "method not allowed"),
    }
}

/// RFC 7386: objects merge key by key, `null` removes, anything else replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(changes) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let Some(object) = target.as_object_mut() else {
        return;
    };
    for (key, change) in changes {
        if change.is_null() {
            object.remove(key);
        } else {
            merge_patch(object.entry(key.clone()).or_insert(Value::Null), change);
        }
    }
}

/// The pods of a namespace (or all) that match the request's field and label selectors.
fn select_pods(
    pods: &[Value],
    namespace: Option<&str>,
    request: &Recorded,
) -> Result<Vec<Value>, BadRequest> {
    let fields = parse_selector(request.param("fieldSelector").as_deref())?;
    let labels = parse_selector(request.param("labelSelector").as_deref())?;
    let mut selected = Vec::new();
    for pod in pods {
        if namespace.is_some_and(|namespace| namespace_of(pod) != namespace) {
            continue;
        }
        let mut matches = true;
        for (field, value) in &fields {
            let actual = match field.as_str() {
                "spec.nodeName" => pod["spec"]["nodeName"].as_str(),
                "metadata.name" => pod["metadata"]["name"].as_str(),
                "metadata.namespace" => pod["metadata"]["namespace"].as_str(),
                "status.phase" => pod["status"]["phase"].as_str(),
                other => return Err(BadRequest(format!("field label not supported: {other}"))),
            };
            matches &= actual.unwrap_or_default() == value;
        }
        for (label, value) in &labels {
            matches &= pod["metadata"]["labels"][label].as_str() == Some(value.as_str());
        }
        if matches {
            selected.push(pod.clone());
        }
    }
    Ok(selected)
}

/// A request the stand-in server answers with 400 and this message, as the
/// API server would.
struct BadRequest(String);

/// `a=b,c==d` as pairs; other operators are refused.
fn parse_selector(selector: Option<&str>) -> Result<Vec<(String, String)>, BadRequest> {
    let Some(selector) = selector.filter(|selector| !selector.is_empty()) else {
        return Ok(Vec::new());
    };
    selector
        .split(',')
        .map(|term| {
            if term.contains("!=") {
                return Err(BadRequest(format!(
                    "the stand-in server supports only equality selectors, not {term:?}"
                )));
            }
            let (key, value) = term
                .split_once("==")
                .or_else(|| term.split_once('='))
                .ok_or_else(|| BadRequest(format!("invalid selector term {term:?}")))?;
            Ok((key.trim().to_string(), value.trim().to_string()))
        })
        .collect()
}

fn evict(state: &mut State, namespace: &str, name: &str, request: &Recorded) -> Answer {
    let body: Value = match serde_json::from_str(&request.body) {
        Ok(body) => body,
        Err(error) => return status_failure(400, &format!("error decoding Eviction: {error}")),
    };
    if body["metadata"]["name"].as_str() != Some(name) {
        return status_failure(
            400,
            &format!(
                "name in URL does not match name in Eviction object: {}",
                body["metadata"]["name"]
            ),
        );
    }
    let Some(index) = state
        .pods
        .iter()
        .position(|pod| namespace_of(pod) == namespace && name_of(pod) == name)
    else {
        return not_found("pods", name);
    };
    let key = (namespace.to_string(), name.to_string());
    let answer = match state.evictions.get_mut(&key) {
        Some(script) if script.len() > 1 => script.pop_front().unwrap_or(Eviction::Accept),
        Some(script) => script.front().copied().unwrap_or(Eviction::Accept),
        None => Eviction::Accept,
    };
    match answer {
        Eviction::Accept => {
            state.pods.remove(index);
            (
                StatusCode::CREATED,
                json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 }),
            )
        }
        Eviction::AcceptAndStay => {
            let pod = &mut state.pods[index];
            if pod["metadata"]["deletionTimestamp"].is_null() {
                pod["metadata"]["deletionTimestamp"] = json!("2024-05-01T11:00:00Z");
                pod["metadata"]["deletionGracePeriodSeconds"] = json!(3600);
            }
            (
                StatusCode::CREATED,
                json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 }),
            )
        }
        Eviction::Refuse => {
            let mut answer = status_failure(
                429,
                "Cannot evict pod as it would violate the pod's disruption budget.",
            );
            answer.1["details"] = json!({
                "causes": [{ "reason": "DisruptionBudget", "message": "The disruption budget pdb needs 1 healthy pods and has 1 currently" }],
            });
            answer
        }
        Eviction::Fail(code) => {
            status_failure(code, "the stand-in server was told to fail this eviction")
        }
    }
}

fn not_found(resource: &str, name: &str) -> Answer {
    let (status, mut body) = status_failure(404, &format!("{resource} \"{name}\" not found"));
    body["details"] = json!({ "name": name, "kind": resource });
    (status, body)
}

/// A failure `Status` object, as the API server sends it.
fn status_failure(code: u16, message: &str) -> Answer {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = match code {
        400 => "BadRequest",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        415 => "UnsupportedMediaType",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        _ => "Unknown",
    };
    (
        status,
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }),
    )
}

/// A query parameter, percent-decoded (`+` is a space, as in forms).
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key) == name).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => decoded.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3])
                    .ok()
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                match hex {
                    Some(byte) => {
                        decoded.push(byte);
                        index += 2;
                    }
                    None => decoded.push(b'%'),
                }
            }
            byte => decoded.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}
