//! Windows worker groups: the PowerShell user-data, exact (snapshot), parsed
//! by a real PowerShell grammar (tree-sitter's, from crates.io), within EC2's
//! size limit, without a secret, and joining with the token and the CA pin it
//! reads from the state store as a Linux worker does.

mod support;

use skiff_api::{Cni, InstanceGroupRole, OsFamily, Taint};
use skiff_templates::{
    decode_user_data, ec2_user_data, encode_user_data, render_user_data, state_store,
    NodeBootstrap, StateStoreLocation,
};
use support::examples::example;

/// EC2 refuses larger user-data; a Windows node's is not compressed.
const EC2_USER_DATA_LIMIT: usize = 16 * 1024;

fn windows_worker() -> NodeBootstrap {
    NodeBootstrap {
        cni: Cni::Calico,
        ..example(InstanceGroupRole::Node, OsFamily::Windows)
    }
}

/// The script inside the `<powershell>` block.
fn script_of(user_data: &str) -> &str {
    let body = user_data
        .strip_prefix("<powershell>\n")
        .expect("the user-data opens a <powershell> block");
    let end = body
        .find("</powershell>")
        .expect("the block is closed by </powershell>");
    &body[..end]
}

/// Every node of the tree that is a syntax error or a token the parser
/// had to make up, with its position and text.
fn syntax_errors(script: &str) -> Vec<String> {
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_powershell::LANGUAGE.into())
        .expect("the PowerShell grammar loads");
    let tree = parser
        .parse(script, None)
        .expect("the parser returns a tree");
    let mut errors = Vec::new();
    let mut cursor = tree.walk();
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        if node.is_error() || node.is_missing() {
            let start = node.start_position();
            let text = node.utf8_text(script.as_bytes()).unwrap_or("");
            errors.push(format!(
                "line {}, column {}: {} {:?}",
                start.row + 1,
                start.column + 1,
                if node.is_missing() {
                    "missing"
                } else {
                    "error at"
                },
                text.lines().next().unwrap_or("")
            ));
        }
        if node.has_error() {
            stack.extend(node.children(&mut cursor));
        }
    }
    errors
}

#[test]
fn windows_user_data_snapshot() {
    let user_data = render_user_data(&windows_worker()).expect("renders");
    insta::assert_snapshot!("user_data_Node-windows", user_data);
}

#[test]
fn the_user_data_is_a_powershell_block_run_at_every_boot() {
    let user_data = render_user_data(&windows_worker()).expect("renders");
    assert!(user_data.starts_with("<powershell>\n"), "{user_data}");
    assert!(
        user_data.ends_with("</powershell>\n<persist>true</persist>\n"),
        "{user_data}"
    );
    assert!(!user_data.contains("#cloud-config"), "{user_data}");
    // Logging goes to the host, never to the output stream, where it would
    // become part of what a function returns (the token, the CA pin).
    assert!(!user_data.contains("Write-Output"), "{user_data}");
    // No loader: EC2's form is the user-data itself, and it fits.
    let ec2 = ec2_user_data(&user_data).expect("EC2's form");
    assert_eq!(ec2.text, user_data);
    assert_eq!(ec2.script, None);
    assert!(
        user_data.len() < EC2_USER_DATA_LIMIT,
        "{} bytes; EC2 takes at most {EC2_USER_DATA_LIMIT}",
        user_data.len()
    );
    // EC2Launch does not decompress: the encoded form is plain base64.
    let encoded = encode_user_data(&user_data).expect("encodes");
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&encoded)
        .expect("base64");
    assert_eq!(raw, user_data.as_bytes(), "not compressed");
    assert_eq!(
        decode_user_data(&encoded).as_deref(),
        Some(user_data.as_str())
    );
}

#[test]
fn the_script_parses_as_powershell() {
    // The negative control first: the parser finds errors where there are.
    let broken = "function Broken( {\n  $x = @(1, 2\n";
    assert!(
        !syntax_errors(broken).is_empty(),
        "the grammar found no error in a broken script"
    );
    for (name, config) in [
        ("calico", windows_worker()),
        (
            "flannel, custom endpoint, v1beta3",
            NodeBootstrap {
                cni: Cni::Flannel,
                kubernetes_version: "1.30.14".parse().expect("version"),
                state_store: StateStoreLocation {
                    endpoint: Some("http://127.0.0.1:5123".to_string()),
                    path_style: true,
                    ..windows_worker().state_store
                },
                aws_endpoint: Some("http://127.0.0.1:5123".to_string()),
                taints: Vec::new(),
                ..windows_worker()
            },
        ),
    ] {
        let user_data = render_user_data(&config).expect("renders");
        let script = script_of(&user_data);
        let errors = syntax_errors(script);
        assert!(
            errors.is_empty(),
            "{name}: the PowerShell script does not parse:\n{}\n\n{script}",
            errors.join("\n")
        );
        println!("{name}: the Windows user-data parsed as PowerShell (tree-sitter-powershell)");
        // And a one-character slip in this very script is found.
        let slipped = script.replacen(
            "Fail \"kubeadm join exited with $joined\" }",
            "Fail \"kubeadm join exited with $joined\"",
            1,
        );
        assert_ne!(slipped, script);
        assert!(
            !syntax_errors(&slipped).is_empty(),
            "{name}: a missing brace went unnoticed"
        );
    }
}

#[test]
fn the_join_uses_the_stored_token_and_ca_pin_and_no_secret_is_in_the_user_data() {
    let user_data = render_user_data(&windows_worker()).expect("renders");
    let script = script_of(&user_data);
    // The CA pin is computed on the node from the CA certificate read from
    // the state store; the token is read from there too.
    assert!(
        script.contains(&format!(
            "$caHash = Get-CaCertHash (Read-StoreObject '{}')",
            state_store::CA_CERTIFICATE
        )),
        "{script}"
    );
    assert!(
        script.contains(&format!(
            "$token = (Read-StoreObject '{}').Trim()",
            state_store::BOOTSTRAP_TOKEN
        )),
        "{script}"
    );
    assert!(script.contains("      - \"$caHash\""), "{script}");
    assert!(script.contains("    token: \"$token\""), "{script}");
    assert!(
        script.contains("$joined = Invoke-Native \"$K\\kubeadm.exe\" @('join', '--config', $join)")
    );
    // Every program runs through Invoke-Native (stderr is text, not an error).
    for line in script.lines().map(str::trim_start) {
        assert!(
            !line.starts_with("& ") || line.starts_with("& $Program @Arguments"),
            "a program run outside Invoke-Native: {line}"
        );
    }
    assert!(script.contains("criSocket: npipe:////./pipe/containerd-containerd"));
    assert!(
        script.contains("$Bucket = 'skiff-state-example'"),
        "{script}"
    );
    assert!(
        script.contains("$Prefix = 'team-a/c1.example.com'"),
        "{script}"
    );
    // Nothing that looks like a token, a key or a pin is in the text.
    for secret_marker in ["PRIVATE KEY", "BEGIN CERTIFICATE", "sha256:0", "abcdef."] {
        assert!(!user_data.contains(secret_marker), "{secret_marker}");
    }
    // Every binary is the cluster's version, checked against its release's SHA-256.
    assert!(script.contains("$KubernetesVersion = '1.34.2'"), "{script}");
    assert!(script.contains(
        "Get-Verified \"https://dl.k8s.io/v$KubernetesVersion/bin/windows/amd64/$binary.exe\""
    ));
    assert!(script.contains("foreach ($binary in 'kubelet', 'kubeadm', 'kube-proxy')"));
}

#[test]
fn windows_nodes_register_the_os_taint_unless_the_group_sets_its_own() {
    let user_data = render_user_data(&windows_worker()).expect("renders");
    assert!(
        user_data.contains("$Taints = 'os=windows:NoSchedule,dedicated=payments:NoSchedule'"),
        "{user_data}"
    );
    assert!(user_data
        .contains("    - key: \"os\"\n      value: \"windows\"\n      effect: \"NoSchedule\"\n"));
    let own: Taint = "os=windows:PreferNoSchedule".parse().expect("taint");
    let replaced = render_user_data(&NodeBootstrap {
        taints: vec![own],
        ..windows_worker()
    })
    .expect("renders");
    assert!(
        replaced.contains("$Taints = 'os=windows:PreferNoSchedule'"),
        "{replaced}"
    );
    assert!(!replaced.contains("os=windows:NoSchedule"), "{replaced}");
}

#[test]
fn a_hostile_label_value_cannot_break_out_of_its_string() {
    // Label values are checked before rendering, so a quote is refused...
    let mut config = windows_worker();
    config
        .node_labels
        .insert("team".to_string(), "pay'; Remove-Item C:\\".to_string());
    assert!(render_user_data(&config).is_err());
    // ...and a cluster name, which is a DNS name, cannot hold one either.
    let hostile_name = NodeBootstrap {
        cluster_name: "c1'.example.com".to_string(),
        ..windows_worker()
    };
    assert!(render_user_data(&hostile_name).is_err());
}

#[test]
fn linux_user_data_is_unchanged_by_windows_support() {
    // The Linux families still render a cloud-config, compressed for EC2.
    for family in [OsFamily::Debian, OsFamily::Rhel] {
        let user_data =
            render_user_data(&example(InstanceGroupRole::Node, family)).expect("renders");
        assert!(user_data.starts_with("#cloud-config"), "{family}");
        let encoded = encode_user_data(&user_data).expect("encodes");
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&encoded)
            .expect("base64");
        assert!(raw.starts_with(&[0x1f, 0x8b]), "{family}: gzip");
    }
}

/// `Get-CaCertHash` and `Read-DerHeader` of the script, step for step.
fn ca_hash_as_the_script_computes_it(pem: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    fn header(der: &[u8], at: usize) -> (usize, usize) {
        let first = usize::from(der[at + 1]);
        if first < 0x80 {
            return (at + 2, first);
        }
        let count = first & 0x7F;
        let mut length = 0;
        for i in 0..count {
            length = length * 256 + usize::from(der[at + 2 + i]);
        }
        (at + 2 + count, length)
    }
    let body: String = pem
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("base64");
    let mut at = header(&der, 0).0;
    at = header(&der, at).0;
    if der[at] == 0xA0 {
        let (start, length) = header(&der, at);
        at = start + length;
    }
    for _ in 0..5 {
        let (start, length) = header(&der, at);
        at = start + length;
    }
    let (start, length) = header(&der, at);
    let digest = Sha256::digest(&der[at..start + length]);
    format!(
        "sha256:{}",
        digest
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    )
}

#[test]
fn the_ca_pin_walk_of_the_script_matches_kubeadms_hash() {
    let openssl = skiff_test_support::tools::require("openssl", "apt-get install -y openssl");
    let user_data = render_user_data(&windows_worker()).expect("renders");
    let script = script_of(&user_data);
    // The steps the Rust walk above mirrors are the script's.
    for line in [
        "  if ($first -lt 0x80) {",
        "  $count = $first -band 0x7F",
        "    $length = $length * 256 + [int]$Der[$At + 2 + $i]",
        "  $at = (Read-DerHeader $der 0)[0]",
        "  $at = (Read-DerHeader $der $at)[0]",
        "  if ($der[$at] -eq 0xA0) {",
        "  for ($field = 0; $field -lt 5; $field++) {",
        "  [byte[]]$spki = $der[$at..($end - 1)]",
    ] {
        assert!(script.contains(line), "the script no longer has {line:?}");
    }
    let folder = tempfile::tempdir().expect("temporary folder");
    // An ECDSA CA (as skiff makes) and an RSA one (long-form DER lengths).
    let keys: [(&str, &[&str]); 2] = [
        (
            "ec",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
        ),
        ("rsa", &["-newkey", "rsa:2048"]),
    ];
    for (name, key) in keys {
        let certificate = folder.path().join(format!("{name}.crt"));
        let mut arguments: Vec<String> = [
            "req",
            "-x509",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=kubernetes",
        ]
        .map(String::from)
        .to_vec();
        arguments.push("-keyout".to_string());
        arguments.push(
            folder
                .path()
                .join(format!("{name}.key"))
                .display()
                .to_string(),
        );
        arguments.push("-out".to_string());
        arguments.push(certificate.display().to_string());
        arguments.extend(key.iter().map(|argument| argument.to_string()));
        let made = std::process::Command::new(&openssl)
            .args(&arguments)
            .output()
            .expect("openssl runs");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        // kubeadm's hash as the Linux bootstrap computes it.
        let public_key = std::process::Command::new(&openssl)
            .args(["x509", "-pubkey", "-noout", "-in"])
            .arg(&certificate)
            .output()
            .expect("openssl runs");
        let key_file = folder.path().join(format!("{name}.pub"));
        std::fs::write(&key_file, &public_key.stdout).expect("write");
        let der = std::process::Command::new(&openssl)
            .args(["pkey", "-pubin", "-outform", "der", "-in"])
            .arg(&key_file)
            .output()
            .expect("openssl runs");
        assert!(der.status.success());
        use sha2::{Digest, Sha256};
        let expected = format!(
            "sha256:{}",
            Sha256::digest(&der.stdout)
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect::<String>()
        );
        let pem = std::fs::read_to_string(&certificate).expect("read");
        assert_eq!(ca_hash_as_the_script_computes_it(&pem), expected, "{name}");
    }
}
