//! Merging into kubeconfig files others wrote.

use super::*;
use skiff_state::keystore::PrivateKeyPem;

const FOREIGN: &str = r#"apiVersion: v1
kind: Config
preferences:
  colors: true
clusters:
- name: other
  cluster:
    server: https://other.example.com
    certificate-authority-data: T1RIRVI=
    proxy-url: http://proxy:3128
- name: c1.example.com
  cluster:
    server: https://stale.example.com
    insecure-skip-tls-verify: true
contexts:
- name: other
  context:
    cluster: other
    user: other-user
- name: c1.example.com
  context:
    cluster: c1.example.com
    user: someone
    namespace: team-a
users:
- name: other-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [eks, get-token, --cluster-name, other]
- name: skiff-admin@c1.example.com
  user:
    token: stale-token
current-context: other
extensions:
- name: some-tool
  extension:
    setting: 1
"#;

fn credentials() -> CertificateAndKey {
    // Only the merge is under test: the texts need not be real PEM.
    CertificateAndKey {
        certificate_pem: "CERTIFICATE TEXT".to_string(),
        private_key: PrivateKeyPem::new(
            "-----BEGIN PRIVATE KEY-----\nS0VZIFRFWFQ=\n-----END PRIVATE KEY-----\n",
        ),
    }
}

fn access(credentials: Option<CertificateAndKey>) -> ClusterAccess {
    ClusterAccess {
        name: "c1.example.com".to_string(),
        server: "https://api.c1.example.com:443".to_string(),
        certificate_authority_pem: "CA TEXT".to_string(),
        user: "skiff-admin@c1.example.com".to_string(),
        credentials,
    }
}

fn decode(text: &str) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .expect("base64"),
    )
    .expect("utf-8")
}

#[test]
fn merge_replaces_only_the_clusters_entries_and_keeps_foreign_content() {
    let mut config: Kubeconfig = serde_norway::from_str(FOREIGN).expect("parses");
    let credentials = credentials();
    let outcome = merge(&mut config, &access(Some(credentials.clone())));
    assert!(outcome.replaced);
    assert!(outcome.user_present);

    // Round trip through text, as the file would.
    let text = serde_norway::to_string(&config).expect("renders");
    let config: Kubeconfig = serde_norway::from_str(&text).expect("parses again");
    let value: serde_norway::Value = serde_norway::from_str(&text).expect("yaml");

    assert_eq!(config.current_context, "c1.example.com");
    let names = |entries: Vec<&String>| entries.into_iter().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(config.clusters.iter().map(|entry| &entry.name).collect()),
        ["other", "c1.example.com"],
        "order kept, replaced in place"
    );
    assert_eq!(
        names(config.users.iter().map(|entry| &entry.name).collect()),
        ["other-user", "skiff-admin@c1.example.com"]
    );

    // The foreign entries, byte for byte in meaning.
    let foreign: serde_norway::Value = serde_norway::from_str(FOREIGN).expect("yaml");
    assert_eq!(value["clusters"][0], foreign["clusters"][0]);
    assert_eq!(value["contexts"][0], foreign["contexts"][0]);
    assert_eq!(value["users"][0], foreign["users"][0]);
    assert_eq!(value["preferences"], foreign["preferences"]);
    assert_eq!(value["extensions"], foreign["extensions"]);

    // The cluster's own entries, replaced (no stale field survives).
    let cluster = &config.clusters[1].cluster;
    assert_eq!(
        cluster.server.as_deref(),
        Some("https://api.c1.example.com:443")
    );
    assert_eq!(
        decode(cluster.certificate_authority_data.as_deref().expect("ca")),
        "CA TEXT"
    );
    assert!(cluster.extra.is_empty(), "{:?}", cluster.extra);
    let context = &config.contexts[1].context;
    assert_eq!(context.cluster.as_deref(), Some("c1.example.com"));
    assert_eq!(context.user.as_deref(), Some("skiff-admin@c1.example.com"));
    assert_eq!(
        context.namespace.as_deref(),
        Some("team-a"),
        "namespace kept"
    );
    let user = &config.users[1].user;
    assert_eq!(
        decode(user.client_certificate_data.as_deref().expect("cert")),
        "CERTIFICATE TEXT"
    );
    assert_eq!(
        decode(user.client_key_data.as_deref().expect("key")),
        credentials.private_key.expose()
    );
    assert!(user.extra.is_empty(), "the stale token is gone");
}

#[test]
fn without_credentials_the_users_are_untouched() {
    let mut config: Kubeconfig = serde_norway::from_str(FOREIGN).expect("parses");
    let users_before = config.users.clone();
    let outcome = merge(&mut config, &access(None));
    assert_eq!(config.users, users_before);
    assert!(
        outcome.user_present,
        "the earlier users entry is still there"
    );
    assert_eq!(config.current_context, "c1.example.com");

    let mut empty = Kubeconfig::default();
    let outcome = merge(&mut empty, &access(None));
    assert!(!outcome.replaced);
    assert!(!outcome.user_present);
    assert!(empty.users.is_empty());
    assert_eq!(empty.clusters.len(), 1);
    assert_eq!(empty.contexts.len(), 1);
}

#[test]
fn kubectl_nulls_and_empty_files_read_as_empty() {
    let config: Kubeconfig = serde_norway::from_str(
            "apiVersion: v1\nkind: Config\nclusters: null\nusers: null\ncontexts: null\ncurrent-context: \"\"\npreferences: {}\n",
        )
        .expect("parses");
    assert!(config.clusters.is_empty() && config.users.is_empty() && config.contexts.is_empty());
    let folder = tempfile::tempdir().expect("tempdir");
    let path = folder.path().join("config");
    std::fs::write(&path, "\n").expect("writes");
    assert_eq!(read(&path).expect("reads"), Kubeconfig::default());
    assert_eq!(
        read(&folder.path().join("missing")).expect("reads"),
        Kubeconfig::default()
    );
}

#[test]
fn a_file_that_is_not_a_kubeconfig_is_left_alone() {
    let folder = tempfile::tempdir().expect("tempdir");
    let path = folder.path().join("config");
    std::fs::write(&path, "clusters: [unclosed\n").expect("writes");
    let error = merge_into_file(&path, &access(None)).expect_err("refused");
    assert!(
        format!("{error:#}").contains("nothing was changed"),
        "{error:#}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).expect("reads"),
        "clusters: [unclosed\n"
    );
    assert!(!folder.path().join("config.lock").exists(), "lock released");
}

#[cfg(unix)]
#[test]
fn the_file_is_private_and_its_folder_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let folder = tempfile::tempdir().expect("tempdir");
    let path = folder.path().join("home/.kube/config");
    merge_into_file(&path, &access(Some(credentials()))).expect("writes");
    let mode = |path: &Path| {
        std::fs::metadata(path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&folder.path().join("home/.kube")), 0o700);

    // An existing, too open file becomes private too.
    let open = folder.path().join("open-config");
    std::fs::write(&open, FOREIGN).expect("writes");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    merge_into_file(&open, &access(None)).expect("writes");
    assert_eq!(mode(&open), 0o600);
    let leftovers: Vec<_> = std::fs::read_dir(folder.path())
        .expect("lists")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.') || name.ends_with(".lock"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[cfg(unix)]
#[test]
fn a_linked_kubeconfig_is_updated_through_the_link() {
    let folder = tempfile::tempdir().expect("tempdir");
    let target = folder.path().join("real-config");
    std::fs::write(&target, FOREIGN).expect("writes");
    let link = folder.path().join("config");
    std::os::unix::fs::symlink("real-config", &link).expect("links");
    merge_into_file(&link, &access(None)).expect("writes");
    assert!(std::fs::symlink_metadata(&link)
        .expect("exists")
        .file_type()
        .is_symlink());
    assert_eq!(
        read(&target).expect("reads").current_context,
        "c1.example.com"
    );
}

#[test]
fn a_held_lock_stops_the_write() {
    let folder = tempfile::tempdir().expect("tempdir");
    let path = folder.path().join("config");
    std::fs::write(folder.path().join("config.lock"), "").expect("writes");
    let error = merge_into_file(&path, &access(None)).expect_err("refused");
    assert!(error.to_string().contains("config.lock exists"), "{error}");
    assert!(!path.exists());
}

#[test]
fn the_path_is_chosen_like_kubectl() {
    let home = Path::new("/home/someone");
    let flag = Path::new("/tmp/flag-config");
    assert_eq!(
        choose_path(Some(flag), Some(OsStr::new("/a:/b")), Some(home)).expect("path"),
        flag
    );
    assert_eq!(
        choose_path(None, Some(OsStr::new(":/first:/second")), Some(home)).expect("path"),
        Path::new("/first")
    );
    assert_eq!(
        choose_path(None, Some(OsStr::new("")), Some(home)).expect("path"),
        Path::new("/home/someone/.kube/config")
    );
    assert_eq!(
        choose_path(None, None, Some(home)).expect("path"),
        Path::new("/home/someone/.kube/config")
    );
    assert!(choose_path(None, None, None).is_err());
}

#[test]
fn debug_shows_no_credentials() {
    let mut config = Kubeconfig::default();
    let credentials = credentials();
    merge(&mut config, &access(Some(credentials.clone())));
    let rendering = format!("{config:?} {:?}", access(Some(credentials.clone())));
    let encoded_key = config.users[0].user.client_key_data.clone().expect("key");
    assert!(!rendering.contains(&encoded_key));
    assert!(!rendering.contains("PRIVATE KEY"), "{rendering}");
}
