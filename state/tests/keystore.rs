//! The cluster PKI in a file store: generated once, never overwritten,
//! consistent under concurrent creation and after a crash between a key and
//! its certificate, and accepted by OpenSSL. These tests need the `openssl`
//! command; they fail, not skip, without it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use skiff_state::keystore::{
    self, Authority, CertificateAndKey, KeystoreError, KeystoreStatus, PrivateKeyPem,
};
use skiff_state::objects::file::FileStore;
use skiff_state::{ObjectStore, Precondition, PutOptions, StoreError};
use skiff_templates::state_store;

const CLUSTER: &str = "c1.example.com";

/// Every object `ensure` manages, relative to the cluster folder.
const ALL_OBJECTS: [&str; 10] = [
    state_store::CA_KEY,
    state_store::CA_CERTIFICATE,
    state_store::ETCD_CA_KEY,
    state_store::ETCD_CA_CERTIFICATE,
    state_store::FRONT_PROXY_CA_KEY,
    state_store::FRONT_PROXY_CA_CERTIFICATE,
    state_store::SERVICE_ACCOUNT_KEY,
    state_store::SERVICE_ACCOUNT_PUBLIC_KEY,
    state_store::BOOTSTRAP_TOKEN,
    state_store::ENCRYPTION_CONFIG,
];

fn key(object: &str) -> String {
    format!("{CLUSTER}/{object}")
}

fn new_store() -> (tempfile::TempDir, FileStore) {
    let folder = tempfile::tempdir().expect("tempdir");
    let store = FileStore::open(folder.path().join("store")).expect("opens");
    (folder, store)
}

async fn read_text(store: &dyn ObjectStore, object: &str) -> String {
    let stored = store
        .get(&key(object))
        .await
        .expect("reads")
        .unwrap_or_else(|| panic!("{object} missing"));
    String::from_utf8(stored.bytes).expect("text")
}

async fn snapshot(store: &dyn ObjectStore) -> BTreeMap<String, Vec<u8>> {
    let mut objects = BTreeMap::new();
    for stored_key in store.list(&format!("{CLUSTER}/")).await.expect("lists") {
        let stored = store
            .get(&stored_key)
            .await
            .expect("reads")
            .expect("exists");
        objects.insert(stored_key, stored.bytes);
    }
    objects
}

/// Runs openssl; panics with its output unless it succeeds.
fn openssl(arguments: &[&str], input: Option<&[u8]>) -> String {
    use std::io::Write;
    let mut command = Command::new("openssl");
    command
        .args(arguments)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command
        .spawn()
        .expect("the openssl command is needed by these tests");
    if let Some(input) = input {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("writes stdin");
    } else {
        drop(child.stdin.take());
    }
    let output = child.wait_with_output().expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {arguments:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

fn write(folder: &Path, name: &str, text: &str) -> String {
    let path = folder.join(name);
    std::fs::write(&path, text).expect("writes");
    path.to_string_lossy().into_owned()
}

/// The public key of a certificate or private key, as DER via openssl.
fn public_key_of_certificate(folder: &Path, certificate_pem: &str) -> String {
    let path = write(folder, "public-of.crt", certificate_pem);
    openssl(&["x509", "-in", &path, "-noout", "-pubkey"], None)
}

fn public_key_of_private_key(folder: &Path, private_key_pem: &str) -> String {
    let path = write(folder, "public-of.key", private_key_pem);
    openssl(&["pkey", "-in", &path, "-pubout"], None)
}

/// Issues a client certificate with the stored CA key and has openssl
/// verify it against the stored CA certificate: proves the two belong
/// together and that the CA signs usable certificates.
fn assert_authority_signs_verifiable_certificates(folder: &Path, authority: &CertificateAndKey) {
    let client = keystore::issue_client_certificate(
        authority,
        "tester",
        Some("testers"),
        Duration::from_secs(3600),
    )
    .expect("issues");
    let ca = write(folder, "verify-ca.crt", &authority.certificate_pem);
    let leaf = write(folder, "verify-leaf.crt", &client.certificate_pem);
    let verdict = openssl(
        &["verify", "-CAfile", &ca, "-purpose", "sslclient", &leaf],
        None,
    );
    assert!(verdict.contains(": OK"), "{verdict}");
}

#[tokio::test]
async fn a_second_ensure_creates_nothing_and_changes_no_byte() {
    let (_folder, store) = new_store();
    let first = keystore::ensure(&store, CLUSTER).await.expect("ensures");
    let mut created = first.created.clone();
    created.sort_unstable();
    let mut expected = ALL_OBJECTS.to_vec();
    expected.sort_unstable();
    assert_eq!(created, expected);
    assert!(first.present.is_empty());
    // Each key is written before its certificate or public key.
    let position = |object| first.created.iter().position(|created| *created == object);
    for authority in Authority::ALL {
        assert!(
            position(authority.private_key_object()) < position(authority.certificate_object())
        );
    }
    assert!(
        position(state_store::SERVICE_ACCOUNT_KEY)
            < position(state_store::SERVICE_ACCOUNT_PUBLIC_KEY)
    );
    let before = snapshot(&store).await;
    assert_eq!(before.len(), ALL_OBJECTS.len());

    let second = keystore::ensure(&store, CLUSTER).await.expect("ensures");
    assert!(second.created_nothing(), "{second:?}");
    assert_eq!(second.present.len(), ALL_OBJECTS.len());
    assert_eq!(snapshot(&store).await, before, "an object changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_ensures_create_exactly_one_consistent_set() {
    let folder = tempfile::tempdir().expect("tempdir");
    let root = folder.path().join("store");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        // A store of its own per task, as separate skiff processes would have.
        let store = FileStore::open(&root).expect("opens");
        tasks.push(tokio::spawn(async move {
            keystore::ensure(&store, CLUSTER).await
        }));
    }
    let mut statuses: Vec<KeystoreStatus> = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("joins").expect("ensures"));
    }
    for object in ALL_OBJECTS {
        let creators = statuses
            .iter()
            .filter(|status| status.created.contains(&object))
            .count();
        assert_eq!(creators, 1, "{object} created by {creators} callers");
        for status in &statuses {
            assert_eq!(
                status.created.contains(&object) as usize
                    + status.present.contains(&object) as usize,
                1,
                "{object} must be either created or present: {status:?}"
            );
        }
    }

    let store = FileStore::open(&root).expect("opens");
    for authority in Authority::ALL {
        let stored = keystore::read_authority(&store, CLUSTER, authority)
            .await
            .expect("reads");
        assert_authority_signs_verifiable_certificates(folder.path(), &stored);
        assert_eq!(
            public_key_of_certificate(folder.path(), &stored.certificate_pem),
            public_key_of_private_key(folder.path(), stored.private_key.expose()),
            "{authority}"
        );
    }
    let service_account_key = read_text(&store, state_store::SERVICE_ACCOUNT_KEY).await;
    let service_account_public = read_text(&store, state_store::SERVICE_ACCOUNT_PUBLIC_KEY).await;
    assert_eq!(
        public_key_of_private_key(folder.path(), &service_account_key),
        service_account_public
    );
}

#[tokio::test]
async fn a_key_without_its_certificate_gets_a_certificate_for_that_key() {
    let folder = tempfile::tempdir().expect("tempdir");
    let store = FileStore::open(folder.path().join("store")).expect("opens");
    keystore::ensure(&store, CLUSTER).await.expect("ensures");
    let key_before = read_text(&store, state_store::ETCD_CA_KEY).await;
    let old_certificate = read_text(&store, state_store::ETCD_CA_CERTIFICATE).await;
    // A crash between writing the key and its certificate.
    store
        .delete(&key(state_store::ETCD_CA_CERTIFICATE), Precondition::None)
        .await
        .expect("deletes");

    let status = keystore::ensure(&store, CLUSTER).await.expect("ensures");
    assert_eq!(status.created, vec![state_store::ETCD_CA_CERTIFICATE]);
    assert_eq!(
        read_text(&store, state_store::ETCD_CA_KEY).await,
        key_before
    );
    let new_certificate = read_text(&store, state_store::ETCD_CA_CERTIFICATE).await;
    assert_ne!(
        new_certificate, old_certificate,
        "a new certificate was issued"
    );
    assert_eq!(
        public_key_of_certificate(folder.path(), &new_certificate),
        public_key_of_private_key(folder.path(), &key_before)
    );
    let text = openssl_text(folder.path(), &new_certificate);
    assert!(
        text.contains("CN=etcd-ca") || text.contains("CN = etcd-ca"),
        "{text}"
    );
}

#[tokio::test]
async fn keys_made_by_openssl_are_used_as_they_are() {
    let folder = tempfile::tempdir().expect("tempdir");
    let store = FileStore::open(folder.path().join("store")).expect("opens");
    let cluster_key = openssl(
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ],
        None,
    );
    let service_account_key = openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        None,
    );
    for (object, text) in [
        (state_store::CA_KEY, &cluster_key),
        (state_store::SERVICE_ACCOUNT_KEY, &service_account_key),
    ] {
        store
            .put(
                &key(object),
                text.clone().into_bytes(),
                Precondition::DoesNotExist,
                PutOptions { secret: true },
            )
            .await
            .expect("puts");
    }
    let status = keystore::ensure(&store, CLUSTER).await.expect("ensures");
    assert_eq!(
        status.present,
        vec![state_store::CA_KEY, state_store::SERVICE_ACCOUNT_KEY]
    );
    let certificate = read_text(&store, state_store::CA_CERTIFICATE).await;
    assert_eq!(
        public_key_of_certificate(folder.path(), &certificate),
        public_key_of_private_key(folder.path(), &cluster_key)
    );
    assert_eq!(
        read_text(&store, state_store::SERVICE_ACCOUNT_PUBLIC_KEY).await,
        public_key_of_private_key(folder.path(), &service_account_key)
    );
}

fn openssl_text(folder: &Path, certificate_pem: &str) -> String {
    let path = write(folder, "text.crt", certificate_pem);
    openssl(&["x509", "-in", &path, "-noout", "-text"], None)
}

#[tokio::test]
async fn certificate_authorities_are_what_kubeadm_expects() {
    let (folder, store) = new_store();
    keystore::ensure(&store, CLUSTER).await.expect("ensures");
    for authority in Authority::ALL {
        let certificate = read_text(&store, authority.certificate_object()).await;
        let text = openssl_text(folder.path(), &certificate);
        assert!(text.contains("CA:TRUE"), "{authority}: {text}");
        assert!(
            text.contains("Certificate Sign, CRL Sign"),
            "{authority}: {text}"
        );
        assert!(text.contains("Digital Signature"), "{authority}: {text}");
        assert!(text.contains("prime256v1"), "{authority}: {text}");
        let common_name = authority.common_name();
        assert!(
            text.contains(&format!("Subject: CN={common_name}\n"))
                || text.contains(&format!("Subject: CN = {common_name}\n")),
            "{authority}: {text}"
        );
        // Valid for ten years: still valid in nine, no longer in eleven.
        let path = write(folder.path(), "validity.crt", &certificate);
        let nine_years = (9 * 365 * 24 * 3600).to_string();
        openssl(
            &["x509", "-in", &path, "-noout", "-checkend", &nine_years],
            None,
        );
        let eleven_years = (11 * 365 * 24 * 3600).to_string();
        let expired = Command::new("openssl")
            .args(["x509", "-in", &path, "-noout", "-checkend", &eleven_years])
            .output()
            .expect("openssl runs");
        assert!(
            !expired.status.success(),
            "{authority} valid for over 11 years"
        );
    }
    let service_account_key = read_text(&store, state_store::SERVICE_ACCOUNT_KEY).await;
    assert!(service_account_key.starts_with("-----BEGIN PRIVATE KEY-----"));
    let path = write(folder.path(), "sa.key", &service_account_key);
    let details = openssl(&["pkey", "-in", &path, "-noout", "-text"], None);
    assert!(details.contains("Private-Key: (2048 bit"), "{details}");
    assert!(details.contains("modulus"), "RSA: {details}");
    let service_account_public = read_text(&store, state_store::SERVICE_ACCOUNT_PUBLIC_KEY).await;
    assert!(service_account_public.starts_with("-----BEGIN PUBLIC KEY-----"));
}

#[tokio::test]
async fn the_token_has_kubeadm_shape_and_every_object_is_owner_only() {
    let (folder, store) = new_store();
    keystore::ensure(&store, CLUSTER).await.expect("ensures");
    let token = read_text(&store, state_store::BOOTSTRAP_TOKEN).await;
    assert!(token.ends_with('\n'), "one line");
    let token = token.trim_end();
    let (id, secret) = token.split_once('.').expect("a dot");
    assert_eq!((id.len(), secret.len()), (6, 16), "{token}");
    assert!(token.chars().all(|character| character == '.'
        || character.is_ascii_lowercase()
        || character.is_ascii_digit()));
    assert!(keystore::is_bootstrap_token(token));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for object in ALL_OBJECTS {
            let path = folder.path().join("store").join(CLUSTER).join(object);
            let mode = std::fs::metadata(&path)
                .expect("exists")
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{object} has mode {mode:o}");
        }
    }
}

#[tokio::test]
async fn the_discovery_hash_is_the_one_kubeadm_computes() {
    let (folder, store) = new_store();
    keystore::ensure(&store, CLUSTER).await.expect("ensures");
    let certificate = read_text(&store, state_store::CA_CERTIFICATE).await;
    let path = write(folder.path(), "ca.crt", &certificate);
    let public_key = openssl(&["x509", "-pubkey", "-noout", "-in", &path], None);
    let der = Command::new("openssl")
        .args(["pkey", "-pubin", "-outform", "der"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(public_key.as_bytes())?;
            child.wait_with_output()
        })
        .expect("openssl runs");
    assert!(der.status.success());
    let digest = openssl(&["dgst", "-sha256", "-r"], Some(&der.stdout));
    let expected = format!("sha256:{}", digest.split_whitespace().next().expect("hex"));
    assert_eq!(
        keystore::discovery_hash(&certificate).expect("hashes"),
        expected
    );
    assert_eq!(expected.len(), "sha256:".len() + 64);

    let refused = keystore::discovery_hash("not a certificate");
    assert!(
        matches!(refused, Err(KeystoreError::BadCertificate { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn client_certificates_carry_the_identity_and_a_bounded_lifetime() {
    let (folder, store) = new_store();
    keystore::ensure(&store, CLUSTER).await.expect("ensures");
    let authority = keystore::read_ca(&store, CLUSTER).await.expect("reads");
    let client = keystore::issue_client_certificate(
        &authority,
        "skiff-admin",
        Some("system:masters"),
        Duration::from_secs(18 * 3600),
    )
    .expect("issues");
    let text = openssl_text(folder.path(), &client.certificate_pem);
    assert!(
        text.contains("Subject: CN=skiff-admin, O=system:masters")
            || text.contains("Subject: CN = skiff-admin, O = system:masters"),
        "{text}"
    );
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains("Authority Key Identifier"), "{text}");
    let path = write(folder.path(), "client.crt", &client.certificate_pem);
    // Valid now (not_before is in the past) and for about 18 hours.
    openssl(
        &[
            "x509",
            "-in",
            &path,
            "-noout",
            "-checkend",
            &(17 * 3600).to_string(),
        ],
        None,
    );
    let beyond = Command::new("openssl")
        .args([
            "x509",
            "-in",
            &path,
            "-noout",
            "-checkend",
            &(19 * 3600).to_string(),
        ])
        .output()
        .expect("openssl runs");
    assert!(!beyond.status.success(), "valid for more than 18h");
    assert_eq!(
        public_key_of_certificate(folder.path(), &client.certificate_pem),
        public_key_of_private_key(folder.path(), client.private_key.expose())
    );
    assert_authority_signs_verifiable_certificates(folder.path(), &authority);

    let too_long = keystore::issue_client_certificate(
        &authority,
        "skiff-admin",
        None,
        Duration::from_secs(20 * 365 * 24 * 3600),
    );
    assert!(
        matches!(too_long, Err(KeystoreError::BadLifetime { .. })),
        "{too_long:?}"
    );
    let zero = keystore::issue_client_certificate(&authority, "skiff-admin", None, Duration::ZERO);
    assert!(
        matches!(zero, Err(KeystoreError::BadLifetime { .. })),
        "{zero:?}"
    );

    // A CA certificate with another CA's key is refused, not used.
    let etcd = keystore::read_authority(&store, CLUSTER, Authority::Etcd)
        .await
        .expect("reads");
    let mixed = CertificateAndKey {
        certificate_pem: authority.certificate_pem.clone(),
        private_key: etcd.private_key.clone(),
    };
    let refused = keystore::issue_client_certificate(&mixed, "x", None, Duration::from_secs(60));
    assert!(
        matches!(refused, Err(KeystoreError::KeyMismatch { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn no_private_key_text_in_debug_or_display() {
    let (_folder, store) = new_store();
    let status = keystore::ensure(&store, CLUSTER).await.expect("ensures");
    let authority = keystore::read_ca(&store, CLUSTER).await.expect("reads");
    let client = keystore::issue_client_certificate(
        &authority,
        "skiff-admin",
        Some("system:masters"),
        Duration::from_secs(60),
    )
    .expect("issues");
    let stored_keys = [
        authority.private_key.expose().to_string(),
        client.private_key.expose().to_string(),
        read_text(&store, state_store::SERVICE_ACCOUNT_KEY).await,
    ];
    let broken = PrivateKeyPem::clone(&authority.private_key);
    let mismatch = keystore::issue_client_certificate(
        &CertificateAndKey {
            certificate_pem: "garbage".to_string(),
            private_key: broken,
        },
        "x",
        None,
        Duration::from_secs(60),
    )
    .expect_err("refused");
    let renderings = [
        format!("{authority:?}"),
        format!("{authority:#?}"),
        format!("{client:?}"),
        format!("{status:?}"),
        format!("{:?}", authority.private_key),
        format!("{mismatch}"),
        format!("{mismatch:?}"),
    ];
    for rendering in &renderings {
        assert!(!rendering.contains("PRIVATE KEY"), "{rendering}");
        for stored_key in &stored_keys {
            // Any line of the base64 body would give the key away.
            for line in stored_key.lines().filter(|line| !line.starts_with("-----")) {
                assert!(!rendering.contains(line), "key text in {rendering}");
            }
        }
    }
    assert!(format!("{authority:?}").contains("<redacted>"));
    assert!(
        format!("{authority:?}").contains("BEGIN CERTIFICATE"),
        "the certificate is public"
    );
}

#[tokio::test]
async fn a_corrupt_object_is_reported_and_left_alone() {
    let (_folder, store) = new_store();
    store
        .put(
            &key(state_store::FRONT_PROXY_CA_CERTIFICATE),
            b"not a certificate".to_vec(),
            Precondition::DoesNotExist,
            PutOptions { secret: true },
        )
        .await
        .expect("puts");
    let error = keystore::ensure(&store, CLUSTER)
        .await
        .expect_err("refused");
    match &error {
        StoreError::Corrupt {
            key: corrupt_key,
            message,
        } => {
            assert_eq!(corrupt_key, &key(state_store::FRONT_PROXY_CA_CERTIFICATE));
            assert!(message.contains("not a PEM X.509 certificate"), "{message}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(
        read_text(&store, state_store::FRONT_PROXY_CA_CERTIFICATE).await,
        "not a certificate"
    );

    let (_folder, store) = new_store();
    store
        .put(
            &key(state_store::BOOTSTRAP_TOKEN),
            b"too-short\n".to_vec(),
            Precondition::DoesNotExist,
            PutOptions { secret: true },
        )
        .await
        .expect("puts");
    let error = keystore::ensure(&store, CLUSTER)
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("bootstrap token"), "{error}");
}

#[tokio::test]
async fn reading_the_ca_before_it_exists_says_what_to_run() {
    let (_folder, store) = new_store();
    let error = keystore::read_ca(&store, CLUSTER)
        .await
        .expect_err("missing");
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("skiff update cluster c1.example.com --yes"),
        "{message}"
    );
}
