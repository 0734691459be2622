//! Acceptance test of `validate cluster`: the real `skiff` binary checks a
//! cluster applied against the local AWS endpoint, reaching its Kubernetes
//! API at `SKIFF_KUBERNETES_API` with an admin certificate it issues from
//! the cluster CA in the state store. No API server can run here, so a
//! stand-in (below) answers the reads validation makes, with a node for
//! every instance, matched by private IP as a kubelet would register it.
//!
//! The stand-in is a copy, reduced to reads, of the one in
//! `rollout/tests/support`: this crate cannot use that crate's test code,
//! and it serves over `std::net` so that it needs no HTTP server library.

use crate::common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use common::cluster::ClusterFixture;
use serde_json::{json, Value};
use skiff_tests::SkiffOutput;

const CONTROL_PLANE_LABEL: &str = "node-role.kubernetes.io/control-plane";
const STATIC_COMPONENTS: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

// --- the stand-in API server --------------------------------------------------

/// One request: method and path (query included).
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    target: String,
}

#[derive(Default)]
struct ApiState {
    nodes: Vec<Value>,
    pods: Vec<Value>,
    daemon_sets: Vec<Value>,
    requests: Vec<Recorded>,
}

/// A stand-in Kubernetes API server on 127.0.0.1, plain HTTP, one thread
/// per connection; it lives until the test process ends.
#[derive(Clone)]
struct FakeApiServer {
    port: u16,
    state: Arc<Mutex<ApiState>>,
}

impl FakeApiServer {
    fn start() -> FakeApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("the listener's address")
            .port();
        let state = Arc::new(Mutex::new(ApiState::default()));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        FakeApiServer { port, state }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ApiState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// Sets a node's Ready condition.
    fn set_ready(&self, name: &str, ready: bool) {
        let mut state = self.state();
        let node = state
            .nodes
            .iter_mut()
            .find(|node| node["metadata"]["name"] == json!(name))
            .unwrap_or_else(|| panic!("no node {name}"));
        *node = node_object(
            name,
            node["status"]["addresses"][0]["address"]
                .as_str()
                .unwrap_or_default(),
            ready,
            !node["metadata"]["labels"][CONTROL_PLANE_LABEL].is_null(),
        );
    }
}

/// Serves the requests of one connection, one at a time (keep-alive).
fn serve(stream: TcpStream, state: &Mutex<ApiState>) {
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let mut writer = writer;
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (code, answer) = {
            let mut state = state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            state.requests.push(Recorded {
                method: method.clone(),
                target: target.clone(),
            });
            answer(&state, &method, &target)
        };
        let body = answer.to_string();
        let reason = if code == 200 { "OK" } else { "Not Found" };
        let response = format!(
            "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn answer(state: &ApiState, method: &str, target: &str) -> (u16, Value) {
    let path = target.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["api", "v1", "nodes"]) => list("NodeList", "v1", &state.nodes),
        ("GET", ["api", "v1", "nodes", name]) => {
            match state
                .nodes
                .iter()
                .find(|node| node["metadata"]["name"] == json!(name))
            {
                Some(node) => (200, node.clone()),
                None => not_found(&format!("nodes \"{name}\" not found")),
            }
        }
        ("GET", ["api", "v1", "namespaces", namespace, "pods"]) => {
            let pods: Vec<Value> = state
                .pods
                .iter()
                .filter(|pod| pod["metadata"]["namespace"] == json!(namespace))
                .cloned()
                .collect();
            list("PodList", "v1", &pods)
        }
        ("GET", ["apis", "apps", "v1", "namespaces", namespace, "daemonsets"]) => {
            let sets: Vec<Value> = state
                .daemon_sets
                .iter()
                .filter(|set| set["metadata"]["namespace"] == json!(namespace))
                .cloned()
                .collect();
            list("DaemonSetList", "apps/v1", &sets)
        }
        _ => not_found("the server could not find the requested resource"),
    }
}

fn list(kind: &str, api_version: &str, items: &[Value]) -> (u16, Value) {
    // The real server leaves apiVersion and kind out of list items.
    let items: Vec<Value> = items
        .iter()
        .cloned()
        .map(|mut item| {
            if let Some(object) = item.as_object_mut() {
                object.remove("apiVersion");
                object.remove("kind");
            }
            item
        })
        .collect();
    (
        200,
        json!({ "apiVersion": api_version, "kind": kind, "metadata": { "resourceVersion": "7" }, "items": items }),
    )
}

fn not_found(message: &str) -> (u16, Value) {
    (
        404,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": "NotFound", "code": 404,
        }),
    )
}

fn node_object(name: &str, internal_ip: &str, ready: bool, control_plane: bool) -> Value {
    let (status, reason) = if ready {
        ("True", "KubeletReady")
    } else {
        ("False", "KubeletNotReady")
    };
    let mut labels = json!({ "kubernetes.io/hostname": name });
    if control_plane {
        labels[CONTROL_PLANE_LABEL] = json!("");
    }
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": { "name": name, "uid": format!("uid-{name}"), "creationTimestamp": "2024-05-01T10:00:00Z", "labels": labels },
        "spec": {},
        "status": {
            "addresses": [{ "type": "InternalIP", "address": internal_ip }, { "type": "Hostname", "address": name }],
            "conditions": [{ "type": "Ready", "status": status, "reason": reason }],
        },
    })
}

fn static_pod(component: &str, node: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("{component}-{node}"),
            "namespace": "kube-system",
            "labels": { "component": component, "tier": "control-plane" },
            "annotations": { "kubernetes.io/config.mirror": "0123456789abcdef" },
        },
        "spec": { "nodeName": node, "containers": [{ "name": component, "image": format!("registry.k8s.io/{component}:v1.31.0") }] },
        "status": { "phase": "Running", "conditions": [{ "type": "Ready", "status": "True" }] },
    })
}

// --- the test -----------------------------------------------------------------

/// `skiff validate cluster CLUSTER EXTRA... --state STORE` against the
/// stand-in.
fn validate(fixture: &ClusterFixture, api: &FakeApiServer, extra: &[&str]) -> SkiffOutput {
    let mut args = vec!["validate", "cluster", &fixture.cluster];
    args.extend_from_slice(extra);
    fixture
        .command(args)
        .env("SKIFF_KUBERNETES_API", api.url())
        .run()
}

#[tokio::test]
async fn validate_cluster_names_a_not_ready_node_and_exits_2() {
    let fixture = ClusterFixture::new("validate.example.com").await;
    fixture.create_zone("example.com").await;
    let cluster = fixture.cluster.as_str();
    fixture.create_cluster(&["--zones", "us-east-1a", "--node-count", "2"]);
    fixture.apply();

    // A node per running instance, registered under a name of its own
    // (not the EC2 DNS name): only the InternalIP links it to its instance.
    let instances = fixture
        .clients
        .ec2
        .describe_instances()
        .send()
        .await
        .expect("describe instances");
    let api = FakeApiServer::start();
    let mut nodes: BTreeMap<String, String> = BTreeMap::new();
    {
        let mut state = api.state();
        for instance in instances
            .reservations()
            .iter()
            .flat_map(|reservation| reservation.instances())
        {
            let running = instance
                .state()
                .and_then(|state| state.name())
                .map(|name| name.as_str())
                == Some("running");
            let Some(ip) = instance.private_ip_address().filter(|_| running) else {
                continue;
            };
            let group = instance
                .tags()
                .iter()
                .find(|tag| tag.key() == Some("aws:autoscaling:groupName"))
                .and_then(|tag| tag.value())
                .unwrap_or_default();
            let control_plane = group.starts_with("control-plane");
            let name = format!(
                "{}-{}",
                if control_plane { "cp" } else { "worker" },
                nodes.len()
            );
            state
                .nodes
                .push(node_object(&name, ip, true, control_plane));
            if control_plane {
                for component in STATIC_COMPONENTS {
                    state.pods.push(static_pod(component, &name));
                }
            }
            nodes.insert(name, group.to_string());
        }
        state.daemon_sets.push(json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": { "name": "kube-proxy", "namespace": "kube-system" },
            "spec": { "selector": { "matchLabels": { "k8s-app": "kube-proxy" } }, "template": { "spec": { "containers": [] } } },
            "status": { "currentNumberScheduled": 3, "desiredNumberScheduled": 3, "numberMisscheduled": 0, "numberReady": 3 },
        }));
    }
    let workers: Vec<&String> = nodes
        .keys()
        .filter(|name| name.starts_with("worker"))
        .collect();
    assert_eq!(workers.len(), 2, "two worker instances: {nodes:?}");
    assert!(
        nodes.keys().any(|name| name.starts_with("cp")),
        "a control-plane instance: {nodes:?}"
    );

    // Everything Ready: valid.
    let valid = validate(&fixture, &api, &[]);
    valid.assert_success();
    valid.assert_stdout_contains(&format!("Cluster {cluster} is valid."));
    let reads: Vec<String> = api
        .requests()
        .iter()
        .map(|request| format!("{} {}", request.method, request.target))
        .collect();
    assert!(
        reads
            .iter()
            .any(|read| read.starts_with("GET /api/v1/nodes")),
        "{reads:?}"
    );
    assert!(
        reads
            .iter()
            .any(|read| read.starts_with("GET /api/v1/namespaces/kube-system/pods")),
        "{reads:?}"
    );
    assert!(
        reads.iter().all(|read| read.starts_with("GET ")),
        "validation only reads: {reads:?}"
    );

    // One worker NotReady: invalid, exit 2, the node named.
    let sick = workers[1].clone();
    api.set_ready(&sick, false);
    let invalid = validate(&fixture, &api, &[]);
    invalid.assert_exit(2);
    invalid.assert_stdout_contains(&format!("node {sick}"));
    invalid.assert_stdout_contains("is NotReady");
    invalid.assert_stdout_contains(&format!("Cluster {cluster} is not valid."));
    assert!(
        !invalid.stdout.contains(&format!("node {} ", workers[0])),
        "{}",
        invalid.stdout
    );

    // -o json says the same.
    let json_output = validate(&fixture, &api, &["-o", "json"]);
    json_output.assert_exit(2);
    let report = json_output.stdout_json();
    assert_eq!(report["valid"], json!(false));
    let problems = report["problems"].as_array().expect("a problem list");
    assert!(
        problems
            .iter()
            .any(|problem| problem["kind"] == json!("node") && problem["name"] == json!(sick)),
        "{report:#}"
    );
}
