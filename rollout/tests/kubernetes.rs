//! `KubernetesApi` against a stand-in API server (skiff-test-support): the
//! requests it really sends, and how it reads the answers.

use std::time::{Duration, Instant};

use serde_json::json;
use skiff_rollout::kubernetes::KubernetesApi;
use skiff_rollout::{ClusterApi, ControlPlaneHealth, InstanceView, Lifecycle, RolloutError};
use skiff_test_support::kubernetes_api::{self as support, Eviction, FakeApiServer};

fn instance(id: &str, private_ip: Option<&str>, private_dns: Option<&str>) -> InstanceView {
    InstanceView {
        id: id.to_string(),
        launch_template: Some("lt-0123".to_string()),
        version: Some("1".to_string()),
        lifecycle: Lifecycle::InService,
        healthy: true,
        private_ip: private_ip.map(str::to_string),
        private_dns: private_dns.map(str::to_string),
        etcd_member: false,
    }
}

/// A `KubernetesApi` reaching `server` with a throwaway client certificate.
fn client(server: &FakeApiServer) -> KubernetesApi {
    let admin = rcgen::generate_simple_self_signed(vec!["skiff-admin".to_string()])
        .expect("a test certificate");
    KubernetesApi::from_parts(
        &server.url(),
        None,
        &admin.cert.pem(),
        &admin.signing_key.serialize_pem(),
    )
    .expect("a client for the stand-in server")
}

fn assert_no_unexpected_requests(server: &FakeApiServer) {
    let unexpected = server.unexpected();
    assert!(
        unexpected.is_empty(),
        "requests to endpoints skiff should not use: {unexpected:?}"
    );
}

// ---------------------------------------------------------------------------
// Cordon

#[tokio::test]
async fn cordon_sends_a_merge_patch_that_sets_unschedulable() {
    let server = FakeApiServer::start().await;
    server.add_node(support::node("worker-a", "10.0.1.5", true));
    server.add_node(support::node("worker-b", "10.0.1.6", true));
    let api = client(&server);

    api.cordon("worker-a").await.expect("cordoning worker-a");

    let patches = server.requests_to("PATCH", "/api/v1/nodes/worker-a");
    assert_eq!(patches.len(), 1, "one PATCH: {:?}", server.requests());
    let patch = &patches[0];
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(patch.json(), json!({ "spec": { "unschedulable": true } }));
    assert_eq!(
        server.node("worker-a").expect("worker-a")["spec"]["unschedulable"],
        json!(true)
    );
    assert_eq!(
        server.node("worker-a").expect("worker-a")["spec"]["podCIDR"],
        json!("100.96.1.0/24"),
        "a merge patch keeps the rest"
    );
    assert_eq!(
        server.node("worker-b").expect("worker-b")["spec"]["unschedulable"],
        json!(null),
        "only worker-a is cordoned"
    );
    assert_no_unexpected_requests(&server);
}

#[tokio::test]
async fn cordoning_a_node_that_is_gone_succeeds() {
    let server = FakeApiServer::start().await;
    let api = client(&server);
    api.cordon("gone")
        .await
        .expect("a node that is gone needs no cordon");
    assert_eq!(
        server.requests_to("PATCH", "/api/v1/nodes/gone").len(),
        1,
        "a 404 is not retried"
    );
}

#[tokio::test]
async fn cordon_reports_a_server_that_keeps_failing() {
    let server = FakeApiServer::start().await;
    server.add_node(support::node("worker-a", "10.0.1.5", true));
    server.fail_next("PATCH", "/api/v1/nodes/worker-a", 503, 10);
    let api = client(&server);
    let error = api
        .cordon("worker-a")
        .await
        .expect_err("the API server answers 503");
    let message = error.to_string();
    assert!(
        message.contains("cordoning node worker-a") && message.contains("503"),
        "{message}"
    );
    assert!(matches!(error, RolloutError::Kubernetes(_)), "{error:?}");
    assert_eq!(
        server.requests_to("PATCH", "/api/v1/nodes/worker-a").len(),
        3,
        "tried three times"
    );
}

// ---------------------------------------------------------------------------
// Drain

#[tokio::test]
async fn drain_retries_a_budget_refusal_and_leaves_daemon_set_mirror_and_finished_pods() {
    let server = FakeApiServer::start().await;
    server.add_node(support::node("worker-a", "10.0.1.5", true));
    server.add_node(support::node("worker-b", "10.0.1.6", true));
    server.add_pod(support::replica_set_pod("default", "web-1", "worker-a"));
    server.script_evictions(
        "default",
        "web-1",
        &[Eviction::Refuse, Eviction::Refuse, Eviction::Accept],
    );
    server.add_pod(support::pod("team", "bare", "worker-a"));
    server.add_pod(support::daemon_set_pod(
        "kube-system",
        "kube-proxy-abcde",
        "worker-a",
        "kube-proxy",
    ));
    server.add_pod(support::mirror_pod(
        "kube-system",
        "static-web-worker-a",
        "worker-a",
    ));
    server.add_pod(support::with_phase(
        support::pod("default", "job-done", "worker-a"),
        "Succeeded",
    ));
    server.add_pod(support::with_phase(
        support::pod("default", "job-failed", "worker-a"),
        "Failed",
    ));
    server.add_pod(support::replica_set_pod("default", "web-2", "worker-b"));
    let api = client(&server);

    let started = Instant::now();
    api.drain("worker-a", "i-0aaa", Duration::from_secs(30))
        .await
        .expect("the drain finishes");
    let elapsed = started.elapsed();

    // The budget said no twice: three evictions of web-1, a pause between passes.
    let web_evictions =
        server.requests_to("POST", "/api/v1/namespaces/default/pods/web-1/eviction");
    assert_eq!(web_evictions.len(), 3, "{:?}", server.requests());
    for eviction in &web_evictions {
        assert_eq!(eviction.json()["metadata"]["name"], json!("web-1"));
        assert_eq!(eviction.content_type.as_deref(), Some("application/json"));
    }
    assert!(
        elapsed >= Duration::from_secs(3),
        "passes are paused, not a busy loop: {elapsed:?}"
    );
    assert_eq!(
        server
            .requests_to("POST", "/api/v1/namespaces/team/pods/bare/eviction")
            .len(),
        1
    );

    // Nothing else is evicted: not the DaemonSet pod, the mirror pod, the
    // finished pods, nor anything on another node.
    let evicted: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|request| request.path.ends_with("/eviction"))
        .map(|request| request.path)
        .collect();
    assert!(
        evicted
            .iter()
            .all(|path| path.ends_with("/web-1/eviction") || path.ends_with("/bare/eviction")),
        "{evicted:?}"
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|request| request.method != "DELETE"),
        "pods leave only by eviction"
    );
    let mut left = server.pod_names();
    left.sort();
    assert_eq!(
        left,
        [
            "default/job-done",
            "default/job-failed",
            "default/web-2",
            "kube-system/kube-proxy-abcde",
            "kube-system/static-web-worker-a",
        ]
    );

    // The pods are listed across namespaces with the node as field selector.
    let lists = server.requests_to("GET", "/api/v1/pods");
    assert!(lists.len() >= 2, "listed once per pass: {lists:?}");
    for list in &lists {
        assert_eq!(
            list.param("fieldSelector").as_deref(),
            Some("spec.nodeName=worker-a")
        );
    }
    assert_no_unexpected_requests(&server);
}

#[tokio::test]
async fn drain_of_an_empty_node_finishes_at_once() {
    let server = FakeApiServer::start().await;
    server.add_pod(support::daemon_set_pod(
        "kube-system",
        "kube-proxy-abcde",
        "worker-a",
        "kube-proxy",
    ));
    let api = client(&server);
    let started = Instant::now();
    api.drain("worker-a", "i-0aaa", Duration::from_secs(30))
        .await
        .expect("nothing to evict");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no pause when nothing is left: {:?}",
        started.elapsed()
    );
    assert_eq!(server.requests_to("GET", "/api/v1/pods").len(), 1);
    assert!(
        server
            .requests()
            .iter()
            .all(|request| request.method == "GET"),
        "{:?}",
        server.requests()
    );
}

#[tokio::test]
async fn drain_times_out_naming_the_pod_that_will_not_leave() {
    let server = FakeApiServer::start().await;
    server.add_node(support::node("worker-a", "10.0.1.5", true));
    server.add_pod(support::replica_set_pod("payments", "ledger-0", "worker-a"));
    server.script_evictions("payments", "ledger-0", &[Eviction::Refuse]);
    server.add_pod(support::replica_set_pod("default", "web-1", "worker-a"));
    let api = client(&server);

    let timeout = Duration::from_secs(3);
    let started = Instant::now();
    let error = api
        .drain("worker-a", "i-0aaa", timeout)
        .await
        .expect_err("ledger-0 never leaves");
    let elapsed = started.elapsed();

    let message = error.to_string();
    match &error {
        RolloutError::DrainTimeout {
            node,
            instance,
            timeout: reported,
            pods,
        } => {
            assert_eq!(node, "worker-a");
            assert_eq!(instance, "i-0aaa");
            assert_eq!(*reported, timeout);
            assert!(pods.contains("payments/ledger-0"), "{pods}");
            assert!(
                pods.contains("disruption budget"),
                "the refusal's reason is kept: {pods}"
            );
            assert!(!pods.contains("web-1"), "web-1 left: {pods}");
        }
        other => panic!("expected a DrainTimeout, got {other:?}"),
    }
    assert!(
        message.contains("payments/ledger-0") && message.contains("worker-a"),
        "{message}"
    );
    assert!(
        elapsed >= timeout,
        "gave up after {elapsed:?}, before the timeout"
    );
    assert!(
        elapsed < timeout + Duration::from_secs(3),
        "gave up only after {elapsed:?}"
    );
    let attempts = server
        .requests_to("POST", "/api/v1/namespaces/payments/pods/ledger-0/eviction")
        .len();
    assert!(
        (2..=4).contains(&attempts),
        "tried again each pass, about every 2 s: {attempts} attempts"
    );
    assert_eq!(
        server
            .requests_to("POST", "/api/v1/namespaces/default/pods/web-1/eviction")
            .len(),
        1
    );
    assert_eq!(server.pod_names(), ["payments/ledger-0"]);
}

#[tokio::test]
async fn drain_waits_for_an_evicted_pod_and_names_it_if_it_stays() {
    let server = FakeApiServer::start().await;
    server.add_pod(support::replica_set_pod("default", "slow-0", "worker-a"));
    server.script_evictions("default", "slow-0", &[Eviction::AcceptAndStay]);
    let api = client(&server);

    let error = api
        .drain("worker-a", "i-0aaa", Duration::from_secs(3))
        .await
        .expect_err("slow-0 is still terminating");
    match &error {
        RolloutError::DrainTimeout { pods, .. } => {
            assert!(pods.contains("default/slow-0 (terminating)"), "{pods}")
        }
        other => panic!("expected a DrainTimeout, got {other:?}"),
    }
    assert_eq!(
        server
            .requests_to("POST", "/api/v1/namespaces/default/pods/slow-0/eviction")
            .len(),
        1,
        "an accepted eviction is not sent again"
    );
    assert!(
        server.requests_to("GET", "/api/v1/pods").len() >= 2,
        "the drain kept looking"
    );
}

#[tokio::test]
async fn drain_that_times_out_right_after_an_accepted_eviction_names_the_pod() {
    let server = FakeApiServer::start().await;
    server.add_pod(support::replica_set_pod("default", "late-0", "worker-a"));
    // The budget allows the eviction only at the last pass, at the deadline.
    server.script_evictions(
        "default",
        "late-0",
        &[Eviction::Refuse, Eviction::Refuse, Eviction::AcceptAndStay],
    );
    let api = client(&server);

    let error = api
        .drain("worker-a", "i-0aaa", Duration::from_secs(4))
        .await
        .expect_err("late-0 is still there");
    assert_eq!(
        server
            .requests_to("POST", "/api/v1/namespaces/default/pods/late-0/eviction")
            .len(),
        3
    );
    match &error {
        RolloutError::DrainTimeout { pods, .. } => assert!(
            pods.contains("default/late-0"),
            "the pod still there is named: {pods:?}"
        ),
        other => panic!("expected a DrainTimeout, got {other:?}"),
    }
}

#[tokio::test]
async fn drain_stops_on_an_eviction_the_server_rejects() {
    let server = FakeApiServer::start().await;
    server.add_pod(support::replica_set_pod("default", "web-1", "worker-a"));
    server.script_evictions("default", "web-1", &[Eviction::Fail(403)]);
    let api = client(&server);
    let error = api
        .drain("worker-a", "i-0aaa", Duration::from_secs(30))
        .await
        .expect_err("403 is no reason to wait");
    let message = error.to_string();
    assert!(matches!(error, RolloutError::Kubernetes(_)), "{error:?}");
    assert!(
        message.contains("evicting pod default/web-1") && message.contains("403"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------
// Nodes

#[tokio::test]
async fn node_of_matches_an_instance_by_internal_ip_and_node_ready_reads_the_condition() {
    let server = FakeApiServer::start().await;
    // Named unlike any EC2 DNS name: only the InternalIP links them.
    server.add_node(support::node("worker-blue", "10.0.1.5", true));
    server.add_node(support::node("worker-green", "10.0.1.6", false));
    let api = client(&server);

    let blue = api
        .node_of(&instance(
            "i-0blue",
            Some("10.0.1.5"),
            Some("ip-10-0-1-5.ec2.internal"),
        ))
        .await
        .expect("node_of");
    assert_eq!(blue.as_deref(), Some("worker-blue"));
    let green = api
        .node_of(&instance("i-0green", Some("10.0.1.6"), None))
        .await
        .expect("node_of");
    assert_eq!(green.as_deref(), Some("worker-green"));
    let unregistered = api
        .node_of(&instance(
            "i-0new",
            Some("10.0.1.7"),
            Some("ip-10-0-1-7.ec2.internal"),
        ))
        .await
        .expect("node_of");
    assert_eq!(unregistered, None);

    assert!(api.node_ready("worker-blue").await.expect("node_ready"));
    assert!(
        !api.node_ready("worker-green").await.expect("node_ready"),
        "a NotReady node is not ready"
    );

    // One LIST answered all of that.
    assert_eq!(
        server.requests_to("GET", "/api/v1/nodes").len(),
        1,
        "{:?}",
        server.requests()
    );

    // A node the list does not know is read on its own; missing means not ready.
    assert!(!api.node_ready("worker-missing").await.expect("node_ready"));
    assert_eq!(
        server
            .requests_to("GET", "/api/v1/nodes/worker-missing")
            .len(),
        1
    );
    server.add_node(support::node("worker-late", "10.0.1.8", true));
    assert!(
        api.node_ready("worker-late").await.expect("node_ready"),
        "registered after the list was taken"
    );
    assert_no_unexpected_requests(&server);
}

#[tokio::test]
async fn node_of_tries_a_failed_list_again() {
    let server = FakeApiServer::start().await;
    server.add_node(support::node("worker-a", "10.0.1.5", true));
    server.fail_next("GET", "/api/v1/nodes", 503, 1);
    let api = client(&server);
    let node = api
        .node_of(&instance("i-0a", Some("10.0.1.5"), None))
        .await
        .expect("the second attempt succeeds");
    assert_eq!(node.as_deref(), Some("worker-a"));
    assert_eq!(server.requests_to("GET", "/api/v1/nodes").len(), 2);
}

#[tokio::test]
async fn delete_node_removes_it_and_a_node_already_gone_is_fine() {
    let server = FakeApiServer::start().await;
    server.add_node(support::node("worker-a", "10.0.1.5", false));
    server.add_node(support::node("worker-b", "10.0.1.6", true));
    let api = client(&server);
    assert_eq!(
        api.node_of(&instance("i-0a", Some("10.0.1.5"), None))
            .await
            .expect("node_of")
            .as_deref(),
        Some("worker-a")
    );

    api.delete_node("worker-a")
        .await
        .expect("deleting worker-a");
    assert_eq!(
        server.requests_to("DELETE", "/api/v1/nodes/worker-a").len(),
        1
    );
    assert!(server.node("worker-a").is_none());
    assert!(server.node("worker-b").is_some());
    // The cached list forgets it too.
    assert_eq!(
        api.node_of(&instance("i-0a", Some("10.0.1.5"), None))
            .await
            .expect("node_of"),
        None
    );

    api.delete_node("worker-a")
        .await
        .expect("a node already gone is success");
    assert_eq!(
        server.requests_to("DELETE", "/api/v1/nodes/worker-a").len(),
        2
    );
}

// ---------------------------------------------------------------------------
// Control plane health

fn healthy_control_plane(server: &FakeApiServer, nodes: &[(&str, &str)]) {
    control_plane(server, nodes, true);
}

fn control_plane(server: &FakeApiServer, nodes: &[(&str, &str)], dns_ready: bool) {
    for (name, ip) in nodes {
        server.add_node(support::control_plane_node(name, ip, true));
        for component in support::STATIC_COMPONENTS {
            server.add_pod(support::static_pod(component, name, true));
        }
    }
    server.add_node(support::node("worker-a", "10.0.2.5", true));
    let mut dns = support::with_label(
        support::replica_set_pod("kube-system", "coredns-5d78c9869d-abcde", "worker-a"),
        "k8s-app",
        "kube-dns",
    );
    if !dns_ready {
        dns["status"]["conditions"] = json!([{ "type": "Ready", "status": "False" }]);
    }
    server.add_pod(dns);
    server.add_daemon_set(support::daemon_set("kube-proxy", 4, 4));
}

#[tokio::test]
async fn control_plane_is_healthy_when_its_nodes_and_static_pods_are_ready() {
    let server = FakeApiServer::start().await;
    healthy_control_plane(
        &server,
        &[
            ("cp-a", "10.0.0.5"),
            ("cp-b", "10.0.0.6"),
            ("cp-c", "10.0.0.7"),
        ],
    );
    let api = client(&server);

    assert_eq!(
        api.control_plane_healthy()
            .await
            .expect("reading the control plane"),
        ControlPlaneHealth::Healthy
    );
    assert_eq!(
        server
            .requests_to("GET", "/api/v1/namespaces/kube-system/pods")
            .len(),
        1
    );
    assert_eq!(
        server
            .requests_to("GET", "/apis/apps/v1/namespaces/kube-system/daemonsets")
            .len(),
        1
    );
    assert_no_unexpected_requests(&server);
}

#[tokio::test]
async fn control_plane_is_unhealthy_naming_a_not_ready_node() {
    let server = FakeApiServer::start().await;
    healthy_control_plane(&server, &[("cp-a", "10.0.0.5"), ("cp-c", "10.0.0.7")]);
    server.add_node(support::control_plane_node("cp-b", "10.0.0.6", false));
    for component in support::STATIC_COMPONENTS {
        server.add_pod(support::static_pod(component, "cp-b", true));
    }
    let api = client(&server);

    let health = api
        .control_plane_healthy()
        .await
        .expect("reading the control plane");
    assert!(!health.is_healthy(), "cp-b is NotReady");
    let problems = health.to_string();
    assert!(
        problems.contains("control-plane node cp-b is not Ready"),
        "{problems}"
    );
    assert!(
        problems.contains("KubeletNotReady"),
        "the condition's reason is given: {problems}"
    );
    assert!(
        !problems.contains("cp-a") && !problems.contains("cp-c"),
        "{problems}"
    );
}

#[tokio::test]
async fn control_plane_is_unhealthy_naming_static_pods_dns_and_daemon_sets() {
    let server = FakeApiServer::start().await;
    control_plane(&server, &[("cp-a", "10.0.0.5")], false);
    server.add_node(support::control_plane_node("cp-b", "10.0.0.6", true));
    server.add_pod(support::static_pod("etcd", "cp-b", false));
    server.add_pod(support::static_pod("kube-apiserver", "cp-b", true));
    server.add_pod(support::static_pod("kube-controller-manager", "cp-b", true));
    // No kube-scheduler-cp-b at all.
    server.add_daemon_set(support::daemon_set("calico-node", 4, 3));
    let api = client(&server);

    let health = api
        .control_plane_healthy()
        .await
        .expect("reading the control plane");
    assert!(!health.is_healthy(), "cp-b is incomplete");
    let problems = health.to_string();
    assert!(
        problems.contains("static pod kube-system/etcd-cp-b is not ready"),
        "{problems}"
    );
    assert!(
        problems.contains("static pod kube-system/kube-scheduler-cp-b does not exist"),
        "{problems}"
    );
    assert!(
        problems.contains("daemonset kube-system/calico-node has 3 of 4 pods ready"),
        "{problems}"
    );
    assert!(
        problems.contains("no cluster DNS pod (k8s-app=kube-dns) is ready"),
        "{problems}"
    );
    assert!(
        !problems.contains("cp-a") && !problems.contains("kube-proxy"),
        "{problems}"
    );
}

#[tokio::test]
async fn control_plane_without_registered_nodes_is_unhealthy() {
    let server = FakeApiServer::start().await;
    server.add_node(support::node("worker-a", "10.0.2.5", true));
    let api = client(&server);
    let health = api
        .control_plane_healthy()
        .await
        .expect("reading the control plane");
    assert!(!health.is_healthy(), "no control plane");
    let problems = health.to_string();
    assert!(
        problems.contains("no control-plane node is registered"),
        "{problems}"
    );
}

// ---------------------------------------------------------------------------
// Configuration

#[tokio::test]
async fn a_kubeconfig_file_reaches_the_server_it_names() {
    let server = FakeApiServer::start().await;
    server.add_node(support::node("worker-a", "10.0.1.5", true));
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("kubeconfig");
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: {}\nusers:\n- name: nobody\n  user: {{}}\ncontexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: nobody\ncurrent-context: stand-in\n",
        server.url()
    );
    std::fs::write(&path, kubeconfig).expect("writing the kubeconfig");

    let api = KubernetesApi::from_kubeconfig(Some(&path)).expect("a client from the kubeconfig");
    assert!(api.server().starts_with(&server.url()), "{}", api.server());
    assert!(api.node_ready("worker-a").await.expect("node_ready"));
    assert_eq!(server.requests_to("GET", "/api/v1/nodes").len(), 1);
}

#[tokio::test]
async fn an_unreachable_server_is_reported_with_its_url() {
    // Bound and dropped at once: nothing listens there any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let admin = rcgen::generate_simple_self_signed(vec!["skiff-admin".to_string()])
        .expect("a test certificate");
    let api = KubernetesApi::from_parts(
        &url,
        None,
        &admin.cert.pem(),
        &admin.signing_key.serialize_pem(),
    )
    .expect("a client");
    let started = Instant::now();
    let error = api
        .node_ready("worker-a")
        .await
        .expect_err("nothing answers");
    // Tried three times, 0.5 s and 1 s apart.
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "not tried again: {:?}",
        started.elapsed()
    );
    let message = error.to_string();
    assert!(message.contains(&url), "{message}");
    assert!(
        message.contains("listing nodes") && message.contains("no answer from the API server"),
        "{message}"
    );
}

#[tokio::test]
async fn bad_client_credentials_fail_when_the_client_is_built() {
    let server = FakeApiServer::start().await;
    let error = KubernetesApi::from_parts(&server.url(), None, "not a certificate", "not a key")
        .expect_err("garbage credentials");
    assert!(error.to_string().contains(&server.url()), "{error}");
    assert!(server.requests().is_empty());
}

// ---------------------------------------------------------------------------
// Rewriting Secrets (encryption-key rotation)

/// An EncryptionConfiguration with these secretbox keys, then identity.
fn encryption_config(keys: &[&str]) -> String {
    let keys: String = keys
        .iter()
        .map(|name| format!("      - name: {name}\n        secret: c2VjcmV0LW9mLQ{name}\n"))
        .collect();
    format!("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources:\n  - secrets\n  providers:\n  - secretbox:\n      keys:\n{keys}  - identity: {{}}\n")
}

#[tokio::test]
async fn rewrite_secrets_pages_through_every_namespace_and_counts_conflicts() {
    let server = FakeApiServer::start().await;
    let folder = tempfile::tempdir().expect("a folder");
    let file = folder.path().join("config.yaml");
    std::fs::write(&file, encryption_config(&["key-old"])).expect("write");
    server.encrypt_with(&file);
    for (namespace, name) in [
        ("a", "one"),
        ("a", "two"),
        ("b", "three"),
        ("c", "four"),
        ("c", "five"),
    ] {
        server.add_secret(support::secret(namespace, name, &[("value", name)]));
    }
    // The new key promoted: the server reloads the file by itself.
    std::fs::write(&file, encryption_config(&["key-new", "key-old"])).expect("write");
    server.write_before_next_put("b", "three");
    let api = client(&server);
    let pages = std::sync::Mutex::new(Vec::new());
    let done = api
        .rewrite_secrets(2, &std::sync::atomic::AtomicBool::new(false), &|done| {
            pages.lock().expect("pages").push(done.total())
        })
        .await
        .expect("rewritten");

    assert_eq!((done.replaced, done.conflicts, done.gone), (4, 1, 0));
    assert_eq!(
        *pages.lock().expect("pages"),
        [2, 4, 5],
        "three pages of two"
    );
    let lists = server.requests_to("GET", "/api/v1/secrets");
    assert_eq!(lists.len(), 3, "{lists:?}");
    assert_eq!(lists[0].param("limit").as_deref(), Some("2"));
    assert_eq!(lists[0].param("continue"), None);
    assert!(lists[1].param("continue").is_some());
    let keys = server.secret_keys();
    assert!(keys.values().all(|key| key == "key-new"), "{keys:?}");
    let put = &server.requests_to("PUT", "/api/v1/namespaces/a/secrets/one")[0];
    assert_eq!(
        put.json()["data"],
        json!({ "value": "b25l" }),
        "replaced unchanged"
    );
    assert_eq!(
        put.json()["metadata"]["resourceVersion"],
        json!("1"),
        "at the version listed"
    );
    assert_no_unexpected_requests(&server);
}

#[tokio::test]
async fn a_secret_under_a_removed_key_fails_the_rewrite_with_the_api_servers_error() {
    let server = FakeApiServer::start().await;
    let folder = tempfile::tempdir().expect("a folder");
    let file = folder.path().join("config.yaml");
    std::fs::write(&file, encryption_config(&["key-old"])).expect("write");
    server.encrypt_with(&file);
    server.add_secret(support::secret("a", "one", &[("value", "1")]));
    // The old key removed before the Secret was rewritten.
    std::fs::write(&file, encryption_config(&["key-new"])).expect("write");
    let api = client(&server);
    let error = api
        .rewrite_secrets(500, &std::sync::atomic::AtomicBool::new(false), &|_| {})
        .await
        .expect_err("cannot read a Secret under a removed key");
    let message = error.to_string();
    assert!(
        message.contains("HTTP 500")
            && message.contains(
                "unable to transform key \"/registry/secrets/a/one\": no matching prefix found"
            ),
        "{message}"
    );
    // A 500 is tried again, as every read is: three LISTs, each failing on it.
    assert_eq!(server.decryption_failures(), ["/registry/secrets/a/one"; 3]);
    assert!(server
        .requests_to("PUT", "/api/v1/namespaces/a/secrets/one")
        .is_empty());
}
