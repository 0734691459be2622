//! Boots rendered user-data for real: the bootstrap script runs in a
//! sandbox against a private moto server (state store + instance metadata),
//! with stubs standing in for the package managers, systemd and kubeadm.
//! See skiff-test-support's `sandbox` for how the sandbox is built.

mod support;

use skiff_api::{Cni, InstanceGroupRole, OsFamily};
use skiff_templates::{paths, render_user_data, NodeBootstrap};
use skiff_test_support::sandbox::{Boot, FakeCloud, Image, NodeSandbox, TOKEN};
use support::{start_cloud, Sandbox};

fn assert_booted(node: &NodeSandbox, boot: &Boot) {
    assert!(
        boot.success,
        "the bootstrap of {} failed:\n{}\n--- commands\n{}",
        node.instance_id,
        boot.everything(),
        node.commands().join("\n")
    );
    assert!(
        node.exists(paths::BOOTSTRAPPED_MARKER),
        "no bootstrapped marker:\n{}",
        boot.everything()
    );
    assert!(
        !node.exists("/var/lib/skiff/work"),
        "the work directory (token, rendered configurations) must be removed"
    );
}

fn assert_no_secrets(cloud: &FakeCloud, node: &NodeSandbox, boot: &Boot) {
    for secret in cloud.secrets() {
        assert!(
            !node.user_data.contains(&secret),
            "the user-data contains the secret {secret:?}"
        );
        assert!(
            !boot.everything().contains(&secret),
            "{} printed or logged the secret {secret:?}:\n{}",
            node.instance_id,
            boot.everything()
        );
    }
}

/// Checks every node does the same preparation, whatever its role.
fn assert_prepared_like_a_kubernetes_node(node: &NodeSandbox, pause_image: &str) {
    assert_eq!(
        node.read(paths::MODULES_LOAD)
            .lines()
            .filter(|line| !line.starts_with('#'))
            .collect::<Vec<_>>(),
        vec!["overlay", "br_netfilter"]
    );
    let sysctl = node.read(paths::SYSCTL);
    for setting in [
        "net.bridge.bridge-nf-call-iptables = 1",
        "net.bridge.bridge-nf-call-ip6tables = 1",
        "net.ipv4.ip_forward = 1",
    ] {
        assert!(sysctl.contains(setting), "{setting} missing:\n{sysctl}");
    }
    let commands = node.commands();
    for expected in [
        "modprobe overlay",
        "modprobe br_netfilter",
        "sysctl --system",
        "swapoff -a",
        "systemctl restart containerd",
        "systemctl enable kubelet",
    ] {
        assert!(
            commands.iter().any(|line| line == expected),
            "`{expected}` was not run; commands:\n{}",
            commands.join("\n")
        );
    }
    assert!(
        node.read("/etc/fstab")
            .contains("#/swapfile none swap sw 0 0"),
        "the swap entry must be commented out:\n{}",
        node.read("/etc/fstab")
    );
    let containerd = node.read("/etc/containerd/config.toml");
    assert!(containerd.contains("SystemdCgroup = true"), "{containerd}");
    assert!(
        !containerd.contains("SystemdCgroup = false"),
        "{containerd}"
    );
    assert!(containerd.contains(pause_image), "{containerd}");
    // The CNI folders pinned where the CNI plugins are, whatever the
    // package's default (the fixtures carry distribution-patched ones).
    assert!(
        containerd.contains("bin_dir = \"/opt/cni/bin\"")
            || containerd.contains("bin_dirs = ['/opt/cni/bin']"),
        "{containerd}"
    );
    assert!(
        !containerd.contains("/usr/lib/cni") && !containerd.contains("/usr/libexec/cni"),
        "{containerd}"
    );
    assert!(containerd.contains("conf_dir = "), "{containerd}");
    assert!(containerd.contains("/etc/cni/net.d"), "{containerd}");
    assert_eq!(
        node.read("/etc/crictl.yaml"),
        "runtime-endpoint: unix:///run/containerd/containerd.sock\nimage-endpoint: unix:///run/containerd/containerd.sock\ntimeout: 10\n"
    );
}

fn assert_debian_packages(node: &NodeSandbox) {
    let installs = node.commands_starting("apt-get");
    assert!(
        installs.iter().any(|line| line
            .contains("install kubelet=1.34.2-1.1 kubeadm=1.34.2-1.1 kubectl=1.34.2-1.1")),
        "kubelet, kubeadm and kubectl must be installed at exactly 1.34.2:\n{}",
        installs.join("\n")
    );
    assert_eq!(
        node.commands_starting("apt-mark"),
        vec!["apt-mark hold kubelet kubeadm kubectl"]
    );
    assert_eq!(
        node.read("/etc/apt/sources.list.d/kubernetes.list"),
        "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.34/deb/ /\n"
    );
}

/// What the node ran after its loader fetched the bootstrap script (once,
/// the first object it reads).
fn commands_after_the_loader(node: &NodeSandbox) -> Vec<String> {
    let commands = node.commands();
    let fetches: Vec<usize> = commands
        .iter()
        .enumerate()
        .filter(|(_, line)| line.contains("/team-a/c1.example.com/scripts/"))
        .map(|(index, _)| index)
        .collect();
    assert_eq!(fetches.len(), 1, "one fetch of the script: {commands:?}");
    commands[fetches[0] + 1..].to_vec()
}

fn object_urls(node: &NodeSandbox, method: &str) -> Vec<String> {
    node.commands_starting(&format!("curl {method} http://127.0.0.1:"))
        .into_iter()
        .map(|line| {
            let url = line.rsplit(' ').next().expect("url");
            url.split_once("/team-a/c1.example.com/")
                .map(|(_, key)| key.to_string())
                .unwrap_or_else(|| url.to_string())
        })
        .collect()
}

#[test]
fn three_control_plane_nodes_booting_together_elect_exactly_one_initializer() {
    let cloud = start_cloud();
    let config = cloud.bootstrap(
        InstanceGroupRole::ControlPlane,
        OsFamily::Debian,
        Cni::Cilium,
    );
    let nodes: Vec<NodeSandbox> = [
        "i-0aaaaaaaaaaaaaaa1",
        "i-0bbbbbbbbbbbbbbb2",
        "i-0ccccccccccccccc3",
    ]
    .iter()
    .map(|instance| cloud.node(instance, &config, Image::Ubuntu))
    .collect();

    let running: Vec<_> = nodes.iter().map(NodeSandbox::spawn).collect();
    let boots: Vec<Boot> = running.into_iter().map(|boot| boot.wait()).collect();
    for (node, boot) in nodes.iter().zip(&boots) {
        assert_booted(node, boot);
        assert_no_secrets(&cloud, node, boot);
        assert_prepared_like_a_kubernetes_node(node, "registry.k8s.io/pause:3.10.1");
        assert_debian_packages(node);
    }

    let initializers: Vec<&NodeSandbox> = nodes
        .iter()
        .filter(|node| !node.commands_starting("kubeadm init").is_empty())
        .collect();
    assert_eq!(
        initializers.len(),
        1,
        "exactly one instance must run kubeadm init"
    );
    let initializer = initializers[0];
    assert_eq!(cloud.init_lock(), initializer.instance_id);
    assert_eq!(
        initializer.commands_starting("kubeadm init"),
        vec![
            "kubeadm init --config /var/lib/skiff/work/kubeadm-init.yaml --skip-token-print"
                .replace("/var", &format!("{}/var", initializer.root.display()))
        ]
    );
    // Every node took its etcd tools from the etcd image kubeadm runs.
    for node in &nodes {
        assert!(node.exists(paths::ETCDCTL) && node.exists(paths::ETCDUTL));
    }
    // The joins ran one after the other (the members lease), and etcd has
    // the three members.
    let mut windows: Vec<(u64, u64)> = nodes
        .iter()
        .filter_map(NodeSandbox::control_plane_join_window)
        .collect();
    windows.sort();
    assert_eq!(windows.len(), 2, "two control-plane joins");
    assert!(
        windows[0].1 <= windows[1].0,
        "the joins overlapped: {windows:?}"
    );
    let members = skiff_test_support::etcd::parse_member_list(&String::from_utf8_lossy(
        &cloud.etcdctl(&["member", "list", "-w", "simple"]).stdout,
    ));
    assert_eq!(members.len(), 3, "{members:?}");
    assert!(
        members
            .iter()
            .all(|member| member.status == "started" && !member.is_learner),
        "{members:?}"
    );

    // The initializer's configuration, as kubeadm received it.
    let configs = initializer.kubeadm_configs();
    assert_eq!(configs.len(), 1);
    let init = &configs[0].1;
    for expected in [
        "kind: InitConfiguration",
        &format!("- token: \"{TOKEN}\""),
        "ttl: 0s",
        "controlPlaneEndpoint: \"api.c1.example.com:443\"",
        "kubernetesVersion: \"v1.34.2\"",
        "podSubnet: \"100.96.0.0/11\"",
        "serviceSubnet: \"10.96.0.0/12\"",
        "cgroupDriver: systemd",
        "clusterDNS:\n  - \"10.96.0.10\"",
        "- \"api.c1.example.com\"\n    - \"c1-api-0123456789abcdef.elb.us-east-1.amazonaws.com\"",
        "- key: \"node-role.kubernetes.io/control-plane\"\n      effect: \"NoSchedule\"",
        "local:\n    dataDir: /var/lib/etcd",
    ] {
        assert!(
            init.contains(expected),
            "`{expected}` missing from:\n{init}"
        );
    }
    assert!(!init.contains("@SKIFF_"), "a placeholder was left:\n{init}");

    // The initializer used skiff's CA, not one kubeadm would generate.
    assert_eq!(
        initializer.read("/etc/kubernetes/pki/ca.key"),
        cloud.pki_file("ca.key")
    );
    assert_eq!(
        initializer.read("/etc/kubernetes/pki/etcd/ca.crt"),
        cloud.pki_file("etcd-ca.crt")
    );
    for key in [
        "/etc/kubernetes/pki/ca.key",
        "/etc/kubernetes/pki/etcd/ca.key",
        "/etc/kubernetes/pki/front-proxy-ca.key",
        "/etc/kubernetes/pki/sa.key",
    ] {
        assert_eq!(
            initializer.mode(key),
            0o600,
            "{key} must be readable by root only"
        );
    }

    // It installed the pinned Cilium into the pod CIDR.
    let admin = format!("{}/etc/kubernetes/admin.conf", initializer.root.display());
    assert_eq!(
        initializer.commands_starting("cilium"),
        vec![format!(
            "cilium KUBECONFIG={admin} install --version 1.18.5 --set ipam.mode=kubernetes"
        )]
    );

    // The two others joined as control-plane members, after the API answered.
    for joiner in nodes
        .iter()
        .filter(|node| node.instance_id != initializer.instance_id)
    {
        let commands = joiner.commands();
        let join_index = commands
            .iter()
            .position(|line| line.starts_with("kubeadm join --config "))
            .unwrap_or_else(|| {
                panic!(
                    "{} did not join:\n{}",
                    joiner.instance_id,
                    commands.join("\n")
                )
            });
        let ready_index = commands
            .iter()
            .position(|line| line.ends_with("https://api.c1.example.com:443/readyz"))
            .expect("the joiner waited for the API");
        assert!(ready_index < join_index, "joined before the API answered");
        assert!(joiner.commands_starting("kubeadm init").is_empty());
        assert!(joiner.commands_starting("cilium").is_empty());

        let configs = joiner.kubeadm_configs();
        assert_eq!(configs.len(), 1);
        let join = &configs[0].1;
        for expected in [
            "kind: JoinConfiguration",
            "apiServerEndpoint: \"api.c1.example.com:443\"",
            &format!("token: \"{TOKEN}\""),
            &format!("- \"{}\"", cloud.ca_cert_hash),
            "controlPlane: {}",
        ] {
            assert!(
                join.contains(expected),
                "`{expected}` missing from:\n{join}"
            );
        }
        // Joining members hold the same CAs as the initializer.
        assert_eq!(
            joiner.read("/etc/kubernetes/pki/sa.key"),
            cloud.pki_file("sa.key")
        );
    }

    // Every control-plane node leaves etcd when it is terminated, and backs
    // it up and renews its certificates on timers.
    for node in &nodes {
        assert!(node.commands().contains(
            &"systemctl enable --now skiff-leave-etcd.service skiff-etcd-backup.timer skiff-renew-certificates.timer skiff-sync-encryption-config.timer skiff-node-termination.service"
                .to_string()
        ));
        assert!(node
            .read(paths::LEAVE_ETCD_UNIT)
            .contains(&format!("ExecStop={} leave", paths::BOOTSTRAP_SCRIPT)));
        assert!(node
            .read(paths::BACKUP_TIMER)
            .contains("OnUnitActiveSec=900s"));
    }

    // A replacement launched later finds the lock taken and joins.
    let replacement = cloud.node("i-0ddddddddddddddd4", &config, Image::Ubuntu);
    let boot = replacement.boot();
    assert_booted(&replacement, &boot);
    assert_no_secrets(&cloud, &replacement, &boot);
    assert!(replacement.commands_starting("kubeadm init").is_empty());
    assert_eq!(replacement.commands_starting("kubeadm join").len(), 1);
    assert!(replacement.kubeadm_configs()[0]
        .1
        .contains("controlPlane: {}"));
    assert_eq!(
        cloud.init_lock(),
        initializer.instance_id,
        "the lock never moves"
    );
}

#[test]
fn a_worker_joins_with_the_stored_token_and_the_hash_of_the_stored_ca() {
    let cloud = start_cloud();
    cloud.mark_api_server_ready();
    let config = cloud.bootstrap(InstanceGroupRole::Node, OsFamily::Debian, Cni::Cilium);
    let worker = cloud.node("i-0eeeeeeeeeeeeeee5", &config, Image::Ubuntu);
    let boot = worker.boot();
    assert_booted(&worker, &boot);
    assert_no_secrets(&cloud, &worker, &boot);
    assert_prepared_like_a_kubernetes_node(&worker, "registry.k8s.io/pause:3.10.1");
    assert_debian_packages(&worker);

    // Least privilege: a worker reads its script (by the hash in its
    // user-data), the CA certificate and the token, nothing else.
    let script = skiff_templates::ec2_user_data(&render_user_data(&config).expect("renders"))
        .expect("EC2's form")
        .script
        .expect("a script");
    assert_eq!(
        object_urls(&worker, "GET"),
        vec![script.key.as_str(), "secrets/bootstrap-token", "pki/ca.crt"]
    );
    assert!(
        object_urls(&worker, "PUT").is_empty(),
        "a worker never writes"
    );
    assert!(!worker.exists("/etc/kubernetes/pki/ca.key"));

    assert_eq!(
        worker.commands_starting("kubeadm"),
        vec![format!(
            "kubeadm join --config {}/var/lib/skiff/work/kubeadm-join.yaml",
            worker.root.display()
        )]
    );
    let configs = worker.kubeadm_configs();
    let join = &configs[0].1;
    for expected in [
        "apiServerEndpoint: \"api.c1.example.com:443\"",
        &format!("token: \"{TOKEN}\""),
        &format!("caCertHashes:\n      - \"{}\"", cloud.ca_cert_hash),
        "value: \"example.com/accelerator=none,skiff.dev/instance-group=nodes-us-east-1a,team=payments\"",
        "- key: \"dedicated\"\n      value: \"payments\"\n      effect: \"NoSchedule\"",
    ] {
        assert!(join.contains(expected), "`{expected}` missing from:\n{join}");
    }
    assert!(
        !join.contains("controlPlane"),
        "a worker is no control-plane member"
    );
    assert!(!join.contains("node-role.kubernetes.io/control-plane"));
    assert!(worker
        .commands_starting("systemctl enable --now skiff-leave-etcd")
        .is_empty());

    // Running the script again after success (a reboot, a stop/start)
    // changes nothing: it only makes sure the kubelet runs.
    let before = worker.commands();
    let again = worker.boot();
    assert!(again.success, "{}", again.everything());
    assert_eq!(
        worker.commands()[before.len()..],
        ["systemctl start kubelet".to_string()],
        "a second run must only start the kubelet"
    );
    assert!(again.log.contains("already bootstrapped"));
}

#[test]
fn rhel_control_plane_installs_flannel_with_containerd_2() {
    let cloud = start_cloud();
    let config = cloud.bootstrap(
        InstanceGroupRole::ControlPlane,
        OsFamily::Rhel,
        Cni::Flannel,
    );
    let node = cloud.node("i-0fffffffffffffff6", &config, Image::AmazonLinux);
    let boot = node.boot();
    assert_booted(&node, &boot);
    assert_no_secrets(&cloud, &node, &boot);
    assert_prepared_like_a_kubernetes_node(&node, "sandbox = 'registry.k8s.io/pause:3.10.1'");
    assert_eq!(cloud.init_lock(), node.instance_id);

    let dnf = node.commands_starting("dnf");
    assert!(
        dnf.contains(&"dnf install -y containerd".to_string()),
        "{dnf:?}"
    );
    assert!(
        dnf.contains(
            &"dnf install -y --disableexcludes=kubernetes kubelet-1.34.2 kubeadm-1.34.2 kubectl-1.34.2"
                .to_string()
        ),
        "{dnf:?}"
    );
    let repository = node.read("/etc/yum.repos.d/kubernetes.repo");
    assert!(repository.contains("baseurl=https://pkgs.k8s.io/core:/stable:/v1.34/rpm/"));
    assert!(repository.contains("exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni"));
    assert!(node
        .read("/etc/selinux/config")
        .contains("SELINUX=permissive"));

    let manifest = node.applied_manifest("flannel.yaml");
    assert!(
        manifest.contains("\"Network\": \"100.96.0.0/11\""),
        "the pod CIDR must be Flannel's network:\n{manifest}"
    );
}

#[test]
fn calico_gets_the_pod_cidr_and_the_lock_holder_initializes_again_after_a_failed_attempt() {
    let cloud = start_cloud();
    let config = cloud.bootstrap(
        InstanceGroupRole::ControlPlane,
        OsFamily::Debian,
        Cni::Calico,
    );
    let first = cloud.node("i-0123456789abcdef7", &config, Image::Ubuntu);
    let boot = first.boot();
    assert_booted(&first, &boot);
    let manifest = first.applied_manifest("calico.yaml");
    assert!(
        manifest.contains("- name: CALICO_IPV4POOL_CIDR\n              value: \"100.96.0.0/11\""),
        "{manifest}"
    );

    // The same instance, starting over on a clean disk (as after a failure
    // before the marker), still holds the lock and initializes.
    let retry = cloud.node("i-0123456789abcdef7", &config, Image::Ubuntu);
    let boot = retry.boot();
    assert_booted(&retry, &boot);
    assert_eq!(retry.commands_starting("kubeadm init").len(), 1);
}

#[test]
fn rocky_worker_gets_containerd_from_docker_and_the_cluster_packages() {
    let cloud = start_cloud();
    cloud.mark_api_server_ready();
    let config = cloud.bootstrap(InstanceGroupRole::Node, OsFamily::Rhel, Cni::Cilium);
    let worker = cloud.node("i-0abcdefabcdefabc8", &config, Image::Rocky);
    let boot = worker.boot();
    assert_booted(&worker, &boot);
    assert!(worker
        .commands()
        .contains(&"dnf install -y containerd.io".to_string()));
    assert!(worker
        .read("/etc/yum.repos.d/docker-ce.repo")
        .contains("baseurl=https://download.docker.com/linux/centos/$releasever/$basearch/stable"));
    assert_eq!(worker.commands_starting("kubeadm join").len(), 1);
}

#[test]
fn an_image_of_the_wrong_family_stops_before_changing_anything() {
    let cloud = start_cloud();
    let config = cloud.bootstrap(InstanceGroupRole::Node, OsFamily::Debian, Cni::Cilium);
    let node = cloud.node("i-0999999999999999a", &config, Image::Rocky);
    let boot = node.boot();
    assert!(!boot.success, "a Rocky image must not pass as Debian");
    assert!(
        boot.stderr.contains("says osFamily: debian"),
        "the error must name the setting:\n{}",
        boot.stderr
    );
    let commands = commands_after_the_loader(&node);
    assert!(commands.is_empty(), "{commands:?}");
    assert!(!node.exists(paths::BOOTSTRAPPED_MARKER));
}

/// What the planner renders a gossip cluster's user-data with until the API
/// load balancer exists.
const ENDPOINT_PLACEHOLDER: &str = "api-endpoint.skiff.invalid";
/// The load balancer's DNS name the planner then substitutes.
const LOAD_BALANCER: &str = "c1-api-0123456789abcdef.elb.us-east-1.amazonaws.com";

/// A gossip node's user-data: rendered with the placeholder endpoint, then
/// the load balancer's name substituted by plain text replacement.
fn gossip_user_data(config: &mut NodeBootstrap) -> String {
    config.api_endpoint = ENDPOINT_PLACEHOLDER.to_string();
    // The placeholder repeated in api_cert_sans must be harmless.
    config.api_cert_sans = vec![
        ENDPOINT_PLACEHOLDER.to_string(),
        "api.c1.example.com".to_string(),
    ];
    render_user_data(config)
        .expect("renders")
        .replace(ENDPOINT_PLACEHOLDER, LOAD_BALANCER)
}

#[test]
fn a_gossip_endpoint_substituted_into_the_user_data_reaches_kubeadm() {
    let cloud = start_cloud();
    let mut config = cloud.bootstrap(
        InstanceGroupRole::ControlPlane,
        OsFamily::Debian,
        Cni::Cilium,
    );
    let user_data = gossip_user_data(&mut config);
    let node = cloud.node_with_user_data("i-0a1b2c3d4e5f60718", &config, user_data, Image::Ubuntu);
    let boot = node.boot();
    assert_booted(&node, &boot);
    assert_no_secrets(&cloud, &node, &boot);
    assert_eq!(node.commands_starting("kubeadm init").len(), 1);

    let configs = node.kubeadm_configs();
    let init = &configs[0].1;
    for expected in [
        format!("controlPlaneEndpoint: \"{LOAD_BALANCER}:443\""),
        format!("certSANs:\n    - \"{LOAD_BALANCER}\"\n    - \"api.c1.example.com\"\n  extraArgs:"),
    ] {
        assert!(
            init.contains(&expected),
            "`{expected}` missing from:\n{init}"
        );
    }
    assert!(!init.contains(ENDPOINT_PLACEHOLDER), "{init}");
    assert!(!init.contains("@SKIFF_"), "a placeholder was left:\n{init}");

    // A worker of the same cluster joins through the substituted name.
    let mut worker_config = cloud.bootstrap(InstanceGroupRole::Node, OsFamily::Debian, Cni::Cilium);
    let user_data = gossip_user_data(&mut worker_config);
    let worker = cloud.node_with_user_data(
        "i-0a1b2c3d4e5f60719",
        &worker_config,
        user_data,
        Image::Ubuntu,
    );
    let boot = worker.boot();
    assert_booted(&worker, &boot);
    assert!(worker
        .commands()
        .contains(&format!("curl GET https://{LOAD_BALANCER}:443/readyz")));
    let join = &worker.kubeadm_configs()[0].1;
    assert!(
        join.contains(&format!("apiServerEndpoint: \"{LOAD_BALANCER}:443\"")),
        "{join}"
    );
}

#[test]
fn an_endpoint_placeholder_left_in_the_user_data_stops_before_changing_anything() {
    let cloud = start_cloud();
    let config = NodeBootstrap {
        api_endpoint: ENDPOINT_PLACEHOLDER.to_string(),
        ..cloud.bootstrap(InstanceGroupRole::Node, OsFamily::Debian, Cni::Cilium)
    };
    let node = cloud.node("i-0a1b2c3d4e5f6071a", &config, Image::Ubuntu);
    let boot = node.boot();
    assert!(
        !boot.success,
        "a node must not wait for a host that never resolves"
    );
    assert!(
        boot.stderr
            .contains(&format!("is the placeholder {ENDPOINT_PLACEHOLDER}")),
        "{}",
        boot.stderr
    );
    let commands = commands_after_the_loader(&node);
    assert!(commands.is_empty(), "{commands:?}");
}

#[path = "sandbox/durability.rs"]
mod durability;

#[path = "sandbox/upgrades.rs"]
mod upgrades;

#[path = "sandbox/encryption.rs"]
mod encryption;

#[path = "sandbox/addons.rs"]
mod addons;
#[path = "sandbox/external_etcd.rs"]
mod external_etcd;
#[path = "sandbox/kubelet.rs"]
mod kubelet;
#[path = "sandbox/node_termination.rs"]
mod node_termination;
#[path = "sandbox/runtime.rs"]
mod runtime;
#[path = "sandbox/windows_network.rs"]
mod windows_network;

/// The loader runs only the script its user-data names: a store object
/// whose bytes do not have that SHA-256 (changed by hand, or truncated) is
/// never run, and the instance is marked Unhealthy so its group replaces it.
#[test]
fn a_stored_script_that_is_not_the_one_named_is_never_run() {
    let cloud = start_cloud();
    cloud.mark_api_server_ready();
    let config = cloud.bootstrap(InstanceGroupRole::Node, OsFamily::Debian, Cni::Cilium);
    let node = cloud.node("i-0bbbbbbbbbbbbbbb1", &config, Image::Ubuntu);
    let script = skiff_templates::ec2_user_data(&render_user_data(&config).expect("renders"))
        .expect("EC2's form")
        .script
        .expect("a script");
    let tampered = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(
        tampered.path(),
        format!("{}\ntouch /tmp/owned\n", script.content),
    )
    .expect("tampered script");
    cloud.moto.put_object(
        skiff_test_support::sandbox::BUCKET,
        &format!(
            "{}/{}",
            skiff_test_support::sandbox::CLUSTER_PREFIX,
            script.key
        ),
        tampered.path(),
    );

    let boot = node.boot();
    assert!(!boot.success, "a script of another hash must not run");
    assert!(
        boot.stderr
            .contains(&format!("no script with SHA-256 {}", script.sha256)),
        "{}",
        boot.stderr
    );
    assert_eq!(
        cloud.instance_health(&node.instance_id).as_deref(),
        Some("Unhealthy")
    );
    let commands = node.commands();
    assert!(
        commands
            .iter()
            .all(|line| line.starts_with("curl ") || line == "aws autoscaling SetInstanceHealth"),
        "only the loader's requests ran: {commands:?}"
    );
    assert!(!node.exists(&format!("/var/lib/skiff/bootstrap-{}", script.sha256)));
    assert!(!node.exists(paths::BOOTSTRAPPED_MARKER));
}
