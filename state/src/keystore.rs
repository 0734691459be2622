//! The cluster's key material: three certificate authorities, the
//! service-account key pair, the bootstrap token and the API server's
//! encryption configuration (the key Secrets are encrypted with in etcd), generated once per
//! cluster and kept in the state store, where booting nodes fetch them.
//!
//! Why here and not on the first control-plane node: every control-plane
//! member must use the same CAs and service-account key, and an instance
//! launched months later must join a cluster whose CA it can pin. Keeping
//! the material in the store (encrypted at rest, readable by the node roles
//! that need it) makes every join independent of which node came first.
//!
//! The one rule of this module is **nothing is ever regenerated or
//! overwritten**. Every object is created with [`Precondition::DoesNotExist`];
//! whoever loses a race (two `skiff update cluster --yes` at once) reads back
//! the winner's object and carries on with it. A certificate is always issued
//! from the private key *as stored*, and the key is written first, so a crash
//! between the two writes leaves a key without a certificate, which the next
//! run completes by issuing a certificate for that same key. A CA certificate
//! and its key therefore cannot disagree.
//!
//! Algorithms (see `docs/pki.md`):
//! * the CAs use ECDSA P-256 keys; kubeadm signs its own leaf certificates
//!   with them (it accepts RSA and ECDSA CAs);
//! * the service-account key is RSA 2048, as kubeadm generates it:
//!   kube-apiserver accepts RSA and ECDSA for
//!   `--service-account-signing-key-file`, but tokens signed with RS256 are
//!   the ones every OIDC consumer verifies (AWS IAM web identity federation
//!   accepts only RS256), so RSA keeps that door open;
//! * private keys are PKCS#8 PEM (`PRIVATE KEY`), public keys
//!   SubjectPublicKeyInfo PEM (`PUBLIC KEY`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
};
use sha2::{Digest, Sha256};
use skiff_templates::state_store;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::error::StoreError;
use crate::layout;
use crate::objects::{ObjectStore, Precondition, PutOptions};

/// How long a cluster CA is valid: ten years, as kubeadm's own CAs.
pub const AUTHORITY_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// How far in the past a CA's validity starts, so that a node whose clock is
/// a little behind the operator's machine still accepts it (kubeadm
/// backdates by the same amount).
const AUTHORITY_BACKDATE: Duration = Duration::from_secs(5 * 60);

/// How far in the past a client certificate's validity starts, for the
/// same reason.
const CLIENT_BACKDATE: Duration = Duration::from_secs(60);

/// How often a create is retried when S3 reports a concurrent conditional
/// write still in flight (409), after which the object is read again.
const CREATE_ATTEMPTS: u32 = 5;

/// The characters of a kubeadm bootstrap token.
const TOKEN_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// One of the three certificate authorities of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// The cluster CA (`CN=kubernetes`): signs the API server's serving
    /// certificate, kubelet and client certificates. Workers pin it.
    Cluster,
    /// The etcd CA (`CN=etcd-ca`): etcd's serving and peer certificates and
    /// the API server's etcd client certificate.
    Etcd,
    /// The front-proxy CA (`CN=front-proxy-ca`): the aggregation layer's
    /// client certificate.
    FrontProxy,
}

impl Authority {
    /// Every authority, in the order [`ensure`] creates them.
    pub const ALL: [Authority; 3] = [Authority::Cluster, Authority::Etcd, Authority::FrontProxy];

    /// The common name of the authority's certificate, as kubeadm names it.
    pub fn common_name(self) -> &'static str {
        match self {
            Authority::Cluster => "kubernetes",
            Authority::Etcd => "etcd-ca",
            Authority::FrontProxy => "front-proxy-ca",
        }
    }

    /// The certificate's object, relative to the cluster folder.
    pub fn certificate_object(self) -> &'static str {
        match self {
            Authority::Cluster => state_store::CA_CERTIFICATE,
            Authority::Etcd => state_store::ETCD_CA_CERTIFICATE,
            Authority::FrontProxy => state_store::FRONT_PROXY_CA_CERTIFICATE,
        }
    }

    /// The private key's object, relative to the cluster folder.
    pub fn private_key_object(self) -> &'static str {
        match self {
            Authority::Cluster => state_store::CA_KEY,
            Authority::Etcd => state_store::ETCD_CA_KEY,
            Authority::FrontProxy => state_store::FRONT_PROXY_CA_KEY,
        }
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Authority::Cluster => "cluster CA",
            Authority::Etcd => "etcd CA",
            Authority::FrontProxy => "front-proxy CA",
        };
        formatter.write_str(name)
    }
}

/// What [`ensure`] found and did, object by object. Names are relative to
/// the cluster folder, e.g. `pki/ca.key`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeystoreStatus {
    /// Objects this call wrote: the CAs', the service-account pair's, the
    /// token's, each key before what is derived from it.
    pub created: Vec<&'static str>,
    /// Objects that were already there: from an earlier run, or written
    /// first by a concurrent one (whose object was then used).
    pub present: Vec<&'static str>,
}

impl KeystoreStatus {
    /// Whether everything existed already, so this call wrote nothing.
    pub fn created_nothing(&self) -> bool {
        self.created.is_empty()
    }
}

/// The PEM text of a private key. It has no `Display`, and its `Debug`
/// output is redacted, so that a key cannot reach a log line or an error
/// message by accident; [`PrivateKeyPem::expose`] is the one way to the text.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeyPem(String);

impl PrivateKeyPem {
    /// Wraps PEM text read from elsewhere (a file, another store).
    pub fn new(text: impl Into<String>) -> PrivateKeyPem {
        PrivateKeyPem(text.into())
    }

    /// The PEM text, for writing to a file that only its owner can read.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PrivateKeyPem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("PrivateKeyPem(<redacted>)")
    }
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateAndKey {
    /// The certificate (`-----BEGIN CERTIFICATE-----`).
    pub certificate_pem: String,
    /// The private key (PKCS#8, `-----BEGIN PRIVATE KEY-----`).
    pub private_key: PrivateKeyPem,
}

/// Why key material could not be read or a certificate not issued. Never
/// carries key text.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// Text that should hold a PEM certificate does not.
    #[error("the {what} is not a PEM X.509 certificate: {reason}")]
    BadCertificate {
        /// Which certificate, e.g. `CA certificate`.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// Text that should hold a PEM public key does not.
    #[error("the {what} is not a PEM public key (SubjectPublicKeyInfo): {reason}")]
    BadPublicKey {
        /// Which key.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// Text that should hold a PEM private key does not.
    #[error("the {what} is not a PEM private key (PKCS#8, RSA or EC)")]
    BadPrivateKey {
        /// Which key.
        what: &'static str,
        /// The parser's complaint (it never includes key text).
        #[source]
        source: rcgen::Error,
    },

    /// A certificate or public key does not belong to the private key given
    /// with it.
    #[error("the {what} does not belong to its private key: the two were not generated together")]
    KeyMismatch {
        /// Which certificate or public key.
        what: &'static str,
    },

    /// The certificate meant to sign is not a CA certificate.
    #[error("the certificate {subject} is not a certificate authority (its basic constraints do not say CA:TRUE)")]
    NotAnAuthority {
        /// The certificate's subject.
        subject: String,
    },

    /// A requested client-certificate lifetime is unusable.
    #[error("a client certificate cannot be valid for {requested}: {reason}")]
    BadLifetime {
        /// The lifetime asked for, human-readable.
        requested: String,
        /// Why not, and what is allowed.
        reason: String,
    },

    /// Stored text that is not UTF-8.
    #[error("the {what} is not text")]
    NotText {
        /// Which object.
        what: &'static str,
    },

    /// The work was cancelled before it finished: the process is shutting
    /// down (after another failure, or a signal).
    #[error("{action} was cancelled: skiff is shutting down")]
    Cancelled {
        /// What was being done.
        action: String,
    },

    /// A stored encryption configuration that is not one.
    #[error(
        "the encryption configuration is not an apiserver.config.k8s.io/v1 EncryptionConfiguration"
    )]
    BadEncryptionConfig,

    /// A stored bootstrap token with the wrong shape.
    #[error("the bootstrap token does not look like `abcdef.0123456789abcdef` (6 and 16 lowercase letters or digits joined by a dot)")]
    BadToken,

    /// Key generation or signing failed inside the crypto library.
    #[error("{action} failed")]
    Crypto {
        /// What was being done, e.g. `generating the etcd CA key`.
        action: String,
        /// The library's error.
        #[source]
        source: rcgen::Error,
    },

    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Randomness {
        /// The failure.
        #[source]
        source: getrandom::Error,
    },
}

/// Every object [`ensure`] looks after, relative to the cluster folder.
const OBJECTS: [&str; 10] = [
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

/// What [`ensure`] read of each object before anything else (`None`: absent).
type Prefetched = BTreeMap<&'static str, Option<Vec<u8>>>;

/// Creates whatever key material of `cluster` is missing and checks what is
/// there: the three CAs (key first, then certificate), the service-account
/// key pair (`sa.key`, then `sa.pub`) and the bootstrap token. Objects are
/// written as secrets and only if absent, so a second call, or a concurrent
/// one, changes nothing that exists.
///
/// A stored object skiff cannot use (not PEM, a certificate that does not
/// match its key) is reported as [`StoreError::Corrupt`] and left alone.
///
/// Every object is read at once, then the five pieces (three CAs, the
/// service-account pair, the token), which are independent, are made at
/// the same time: a fresh cluster's PKI costs three store round trips
/// (read everything, create the keys, create what derives from them), an
/// existing one's one. Within a piece the key is still written before what
/// is derived from it.
pub async fn ensure(store: &dyn ObjectStore, cluster: &str) -> Result<KeystoreStatus, StoreError> {
    // Everything is read at once first: a cluster that has its PKI costs
    // one round trip, a new one a round trip per generation (keys, then
    // what is derived from them).
    let reads = futures::future::try_join_all(OBJECTS.iter().map(|object| async move {
        let read = store.get(&object_key(cluster, object)).await?;
        Ok::<_, StoreError>((*object, read.map(|found| found.bytes)))
    }))
    .await?;
    let read: Prefetched = reads.into_iter().collect();
    let [mut cluster_ca, mut etcd_ca, mut front_proxy_ca, mut service_account, mut token, mut encryption] =
        std::array::from_fn(|_| KeystoreStatus::default());
    tokio::try_join!(
        ensure_authority(store, &read, cluster, Authority::Cluster, &mut cluster_ca),
        ensure_authority(store, &read, cluster, Authority::Etcd, &mut etcd_ca),
        ensure_authority(
            store,
            &read,
            cluster,
            Authority::FrontProxy,
            &mut front_proxy_ca
        ),
        ensure_service_account_keys(store, &read, cluster, &mut service_account),
        ensure_bootstrap_token(store, &read, cluster, &mut token),
        ensure_encryption_config(store, &read, cluster, &mut encryption),
    )?;
    let mut status = KeystoreStatus::default();
    for piece in [
        cluster_ca,
        etcd_ca,
        front_proxy_ca,
        service_account,
        token,
        encryption,
    ] {
        status.created.extend(piece.created);
        status.present.extend(piece.present);
    }
    Ok(status)
}

/// The cluster CA's certificate and key, as stored; the two are checked to
/// belong together.
pub async fn read_ca(
    store: &dyn ObjectStore,
    cluster: &str,
) -> Result<CertificateAndKey, StoreError> {
    read_authority(store, cluster, Authority::Cluster).await
}

/// The cluster CA's certificate alone (what clients pin), for callers that
/// must not need read access to the CA's private key.
pub async fn read_ca_certificate(
    store: &dyn ObjectStore,
    cluster: &str,
) -> Result<String, StoreError> {
    let key = object_key(cluster, Authority::Cluster.certificate_object());
    let object = store.get(&key).await?.ok_or_else(|| StoreError::NotFound {
        what: format!(
            "the {} of cluster {cluster:?} (run `skiff update cluster {cluster} --yes` first)",
            Authority::Cluster
        ),
        key: key.clone(),
    })?;
    let pem = into_text(object.bytes, "CA certificate").map_err(|error| corrupt(&key, &error))?;
    decode_certificate(&pem, "CA certificate").map_err(|error| corrupt(&key, &error))?;
    Ok(pem)
}

/// One CA's certificate and key, as stored; the two are checked to belong
/// together.
pub async fn read_authority(
    store: &dyn ObjectStore,
    cluster: &str,
    authority: Authority,
) -> Result<CertificateAndKey, StoreError> {
    let certificate_key = object_key(cluster, authority.certificate_object());
    let private_key_key = object_key(cluster, authority.private_key_object());
    let missing = |key: String| {
        StoreError::NotFound {
        what: format!(
            "the {authority} of cluster {cluster:?} (run `skiff update cluster {cluster} --yes` first)"
        ),
        key,
    }
    };
    let certificate = store
        .get(&certificate_key)
        .await?
        .ok_or_else(|| missing(certificate_key.clone()))?;
    let private_key = store
        .get(&private_key_key)
        .await?
        .ok_or_else(|| missing(private_key_key.clone()))?;
    let certificate_pem = into_text(certificate.bytes, "CA certificate")
        .map_err(|error| corrupt(&certificate_key, &error))?;
    let private_key_pem = into_text(private_key.bytes, "CA private key")
        .map_err(|error| corrupt(&private_key_key, &error))?;
    let key_pair = parse_private_key(&private_key_pem, "CA private key")
        .map_err(|error| corrupt(&private_key_key, &error))?;
    check_authority_certificate(&certificate_pem, &key_pair)
        .map_err(|error| corrupt(&certificate_key, &error))?;
    Ok(CertificateAndKey {
        certificate_pem,
        private_key: PrivateKeyPem(private_key_pem),
    })
}

/// The value kubeadm calls `--discovery-token-ca-cert-hash`: `sha256:` and
/// the hex SHA-256 of the CA certificate's DER SubjectPublicKeyInfo, the
/// same as
/// `openssl x509 -pubkey -noout -in ca.crt | openssl pkey -pubin -outform der | sha256sum`.
pub fn discovery_hash(ca_certificate_pem: &str) -> Result<String, KeystoreError> {
    let pem = decode_certificate(ca_certificate_pem, "CA certificate")?;
    let certificate = parse_certificate(&pem, "CA certificate")?;
    let digest = Sha256::digest(certificate.public_key().raw);
    Ok(format!("sha256:{}", hex::encode(digest)))
}

/// Issues a client certificate (extended key usage clientAuth) with a new
/// ECDSA P-256 key, signed by `authority`. Kubernetes reads the common name
/// as the user name and the organization as a group. Valid from a minute
/// ago for `lifetime`, which must end before the CA expires.
///
/// One organization at most: the certificate library keeps one value per
/// name attribute, and skiff needs only one group per credential.
pub fn issue_client_certificate(
    authority: &CertificateAndKey,
    common_name: &str,
    organization: Option<&str>,
    lifetime: Duration,
) -> Result<CertificateAndKey, KeystoreError> {
    let authority_key = parse_private_key(authority.private_key.expose(), "CA private key")?;
    let authority_expiry = check_authority_certificate(&authority.certificate_pem, &authority_key)?;
    let issuer =
        Issuer::from_ca_cert_pem(&authority.certificate_pem, &authority_key).map_err(|source| {
            KeystoreError::Crypto {
                action: "reading the CA certificate for signing".to_string(),
                source,
            }
        })?;

    let requested = humantime::format_duration(lifetime).to_string();
    if lifetime.is_zero() {
        return Err(KeystoreError::BadLifetime {
            requested,
            reason: "it must be longer than zero".to_string(),
        });
    }
    let now = OffsetDateTime::now_utc();
    let not_after = time::Duration::try_from(lifetime)
        .ok()
        .and_then(|lifetime| now.checked_add(lifetime))
        .filter(|not_after| *not_after <= authority_expiry)
        .ok_or_else(|| KeystoreError::BadLifetime {
            requested: requested.clone(),
            reason: format!("the CA that signs it expires at {authority_expiry}; ask for less"),
        })?;

    let mut parameters = CertificateParams::default();
    parameters.distinguished_name = DistinguishedName::new();
    parameters
        .distinguished_name
        .push(DnType::CommonName, common_name);
    if let Some(organization) = organization {
        parameters
            .distinguished_name
            .push(DnType::OrganizationName, organization);
    }
    parameters.is_ca = IsCa::ExplicitNoCa;
    parameters.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    parameters.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    parameters.use_authority_key_identifier_extension = true;
    parameters.serial_number = Some(random_serial_number()?);
    parameters.not_before = now - CLIENT_BACKDATE;
    parameters.not_after = not_after;

    let client_key =
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| KeystoreError::Crypto {
            action: format!("generating a key for the client certificate of {common_name:?}"),
            source,
        })?;
    let certificate = parameters
        .signed_by(&client_key, &issuer)
        .map_err(|source| KeystoreError::Crypto {
            action: format!("signing the client certificate of {common_name:?}"),
            source,
        })?;
    Ok(CertificateAndKey {
        certificate_pem: certificate.pem(),
        private_key: PrivateKeyPem(client_key.serialize_pem()),
    })
}

/// Whether `text` (surrounding whitespace ignored) has the shape of a
/// kubeadm bootstrap token, `[a-z0-9]{6}.[a-z0-9]{16}`.
pub fn is_bootstrap_token(text: &str) -> bool {
    let allowed = |part: &str| part.bytes().all(|byte| TOKEN_ALPHABET.contains(&byte));
    match text.trim().split_once('.') {
        Some((id, secret)) => id.len() == 6 && secret.len() == 16 && allowed(id) && allowed(secret),
        None => false,
    }
}

async fn ensure_authority(
    store: &dyn ObjectStore,
    read: &Prefetched,
    cluster: &str,
    authority: Authority,
    status: &mut KeystoreStatus,
) -> Result<(), StoreError> {
    let private_key_object = authority.private_key_object();
    let private_key_key = object_key(cluster, private_key_object);
    let private_key_pem = create_or_read(store, read, cluster, private_key_object, status, || {
        std::future::ready(new_private_key(
            &PKCS_ECDSA_P256_SHA256,
            format!("generating the {authority} key"),
        ))
    })
    .await?;
    // The certificate is issued from the key as stored, which may be another
    // writer's if this call lost the race for the key.
    let private_key_pem = into_text(private_key_pem, "CA private key")
        .map_err(|error| corrupt(&private_key_key, &error))?;
    let key_pair = parse_private_key(&private_key_pem, "CA private key")
        .map_err(|error| corrupt(&private_key_key, &error))?;

    let certificate_object = authority.certificate_object();
    let certificate_key = object_key(cluster, certificate_object);
    let certificate_pem = create_or_read(store, read, cluster, certificate_object, status, || {
        std::future::ready(self_signed_authority(authority, &key_pair).map(String::into_bytes))
    })
    .await?;
    let certificate_pem = into_text(certificate_pem, "CA certificate")
        .map_err(|error| corrupt(&certificate_key, &error))?;
    check_authority_certificate(&certificate_pem, &key_pair)
        .map_err(|error| corrupt(&certificate_key, &error))?;
    Ok(())
}

async fn ensure_service_account_keys(
    store: &dyn ObjectStore,
    read: &Prefetched,
    cluster: &str,
    status: &mut KeystoreStatus,
) -> Result<(), StoreError> {
    let private_key_object = state_store::SERVICE_ACCOUNT_KEY;
    let private_key_key = object_key(cluster, private_key_object);
    let private_key_pem =
        create_or_read(store, read, cluster, private_key_object, status, || async {
            // An RSA key takes long enough to make (a tenth of a second or more
            // in a debug build) to hold up the pieces made beside it: made on a
            // thread of its own.
            let generated = tokio::task::spawn_blocking(|| {
                new_private_key(
                    &PKCS_RSA_SHA256,
                    "generating the service-account key".to_string(),
                )
            })
            .await;
            match generated {
                Ok(result) => result,
                // A cancelled task (the runtime shutting down as the
                // process exits) is no panic: say so instead.
                Err(error) => match error.try_into_panic() {
                    Ok(panic) => std::panic::resume_unwind(panic),
                    Err(_) => Err(KeystoreError::Cancelled {
                        action: "generating the service-account key".to_string(),
                    }),
                },
            }
        })
        .await?;
    let private_key_pem = into_text(private_key_pem, "service-account key")
        .map_err(|error| corrupt(&private_key_key, &error))?;
    let key_pair = parse_private_key(&private_key_pem, "service-account key")
        .map_err(|error| corrupt(&private_key_key, &error))?;

    // The public key is derived from the stored private key, so a crash
    // between the two writes is completed with the matching half.
    let public_key_object = state_store::SERVICE_ACCOUNT_PUBLIC_KEY;
    let public_key_key = object_key(cluster, public_key_object);
    let public_key_pem = create_or_read(store, read, cluster, public_key_object, status, || {
        std::future::ready(Ok(key_pair.public_key_pem().into_bytes()))
    })
    .await?;
    let public_key_pem = into_text(public_key_pem, "service-account public key")
        .map_err(|error| corrupt(&public_key_key, &error))?;
    check_public_key(&public_key_pem, &key_pair)
        .map_err(|error| corrupt(&public_key_key, &error))?;
    Ok(())
}

async fn ensure_bootstrap_token(
    store: &dyn ObjectStore,
    read: &Prefetched,
    cluster: &str,
    status: &mut KeystoreStatus,
) -> Result<(), StoreError> {
    let object = state_store::BOOTSTRAP_TOKEN;
    let key = object_key(cluster, object);
    let token = create_or_read(store, read, cluster, object, status, || {
        std::future::ready(
            generate_bootstrap_token().map(|token| format!("{token}\n").into_bytes()),
        )
    })
    .await?;
    let token = into_text(token, "bootstrap token").map_err(|error| corrupt(&key, &error))?;
    if !is_bootstrap_token(&token) {
        return Err(corrupt(&key, &KeystoreError::BadToken));
    }
    Ok(())
}

/// The encryption configuration: created when absent, never replaced here
/// (`skiff rotate encryption-key` changes it); an existing one must at least
/// be an `EncryptionConfiguration`, or the API servers would not start.
async fn ensure_encryption_config(
    store: &dyn ObjectStore,
    read: &Prefetched,
    cluster: &str,
    status: &mut KeystoreStatus,
) -> Result<(), StoreError> {
    let object = state_store::ENCRYPTION_CONFIG;
    let key = object_key(cluster, object);
    // One model with `skiff rotate encryption-key` (`crate::encryption`).
    let config = create_or_read(store, read, cluster, object, status, || {
        std::future::ready(
            crate::encryption::Key::generate(OffsetDateTime::now_utc())
                .map(|key| {
                    crate::encryption::EncryptionConfiguration::with_secretbox_keys(vec![key])
                        .render()
                })
                .map_err(|source| KeystoreError::Randomness { source }),
        )
    })
    .await?;
    if crate::encryption::EncryptionConfiguration::parse(&config).is_err() {
        return Err(corrupt(&key, &KeystoreError::BadEncryptionConfig));
    }
    Ok(())
}

/// Reads `object` of `cluster` (first from `read`), creating it from
/// `generate` if it does not exist. A lost race (someone created it between our read and our write)
/// reads back theirs; either way the stored bytes are returned and `status`
/// records which happened.
async fn create_or_read<Generated>(
    store: &dyn ObjectStore,
    read: &Prefetched,
    cluster: &str,
    object: &'static str,
    status: &mut KeystoreStatus,
    mut generate: impl FnMut() -> Generated,
) -> Result<Vec<u8>, StoreError>
where
    Generated: std::future::Future<Output = Result<Vec<u8>, KeystoreError>>,
{
    let key = object_key(cluster, object);
    // Generated at most once: kept across retries in case the competing
    // write that made ours fail did not succeed after all.
    let mut generated: Option<Vec<u8>> = None;
    let mut last_conflict = None;
    for attempt in 0..CREATE_ATTEMPTS {
        // The first look is what `ensure` read; after a lost race, again.
        let existing = match (attempt, read.get(object)) {
            (0, Some(first)) => first.clone(),
            _ => store.get(&key).await?.map(|found| found.bytes),
        };
        if let Some(existing) = existing {
            status.present.push(object);
            return Ok(existing);
        }
        let bytes = match generated.take() {
            Some(bytes) => bytes,
            None => generate()
                .await
                .map_err(|error| generation_failed(&key, error))?,
        };
        match store
            .put(
                &key,
                bytes.clone(),
                Precondition::DoesNotExist,
                PutOptions { secret: true },
            )
            .await
        {
            Ok(_) => {
                tracing::info!(key = %key, "created");
                status.created.push(object);
                return Ok(bytes);
            }
            Err(error @ StoreError::Conflict { .. }) => {
                // Someone else's write won, or (S3 409) is still in flight:
                // read again; keep our bytes in case theirs failed.
                tracing::debug!(key = %key, attempt, "lost the race to create; reading back");
                generated = Some(bytes);
                last_conflict = Some(error);
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt + 1))).await;
            }
            Err(error) => return Err(error),
        }
    }
    Err(last_conflict.unwrap_or_else(|| StoreError::Conflict {
        what: "cluster key material".to_string(),
        key,
    }))
}

/// A new private key, PKCS#8 PEM; `action` names it in an error.
fn new_private_key(
    algorithm: &'static rcgen::SignatureAlgorithm,
    action: String,
) -> Result<Vec<u8>, KeystoreError> {
    let key_pair = KeyPair::generate_for(algorithm)
        .map_err(|source| KeystoreError::Crypto { action, source })?;
    Ok(key_pair.serialize_pem().into_bytes())
}

/// A self-signed CA certificate for `key_pair`.
fn self_signed_authority(
    authority: Authority,
    key_pair: &KeyPair,
) -> Result<String, KeystoreError> {
    let now = OffsetDateTime::now_utc();
    let mut parameters = CertificateParams::default();
    parameters.distinguished_name = DistinguishedName::new();
    parameters
        .distinguished_name
        .push(DnType::CommonName, authority.common_name());
    parameters.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    parameters.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    parameters.serial_number = Some(random_serial_number()?);
    parameters.not_before = now - AUTHORITY_BACKDATE;
    parameters.not_after = now + AUTHORITY_LIFETIME;
    let certificate = parameters
        .self_signed(key_pair)
        .map_err(|source| KeystoreError::Crypto {
            action: format!("self-signing the {authority} certificate"),
            source,
        })?;
    Ok(certificate.pem())
}

/// Checks that `certificate_pem` is a CA certificate for `key_pair`;
/// returns when it expires.
fn check_authority_certificate(
    certificate_pem: &str,
    key_pair: &KeyPair,
) -> Result<OffsetDateTime, KeystoreError> {
    let pem = decode_certificate(certificate_pem, "CA certificate")?;
    let certificate = parse_certificate(&pem, "CA certificate")?;
    if !certificate.is_ca() {
        return Err(KeystoreError::NotAnAuthority {
            subject: certificate.subject().to_string(),
        });
    }
    // Compare the key bits, not the whole SubjectPublicKeyInfo, so that an
    // equivalent encoding of the algorithm parameters does not count as a
    // different key.
    if certificate.public_key().subject_public_key.data.as_ref() != key_pair.public_key_raw() {
        return Err(KeystoreError::KeyMismatch {
            what: "CA certificate",
        });
    }
    Ok(certificate.validity().not_after.to_datetime())
}

/// Checks that `public_key_pem` is the public half of `key_pair`.
fn check_public_key(public_key_pem: &str, key_pair: &KeyPair) -> Result<(), KeystoreError> {
    let what = "service-account public key";
    let bad = |reason: String| KeystoreError::BadPublicKey { what, reason };
    let (_, pem) = x509_parser::pem::parse_x509_pem(public_key_pem.as_bytes())
        .map_err(|error| bad(error.to_string()))?;
    if pem.label != "PUBLIC KEY" {
        return Err(bad(format!("its PEM label is {:?}", pem.label)));
    }
    let (_, public_key) =
        SubjectPublicKeyInfo::from_der(&pem.contents).map_err(|error| bad(error.to_string()))?;
    if public_key.subject_public_key.data.as_ref() != key_pair.public_key_raw() {
        return Err(KeystoreError::KeyMismatch { what });
    }
    Ok(())
}

fn decode_certificate(text: &str, what: &'static str) -> Result<Pem, KeystoreError> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(text.as_bytes()).map_err(|error| {
        KeystoreError::BadCertificate {
            what,
            reason: error.to_string(),
        }
    })?;
    if pem.label != "CERTIFICATE" {
        return Err(KeystoreError::BadCertificate {
            what,
            reason: format!("its PEM label is {:?}", pem.label),
        });
    }
    Ok(pem)
}

fn parse_certificate<'pem>(
    pem: &'pem Pem,
    what: &'static str,
) -> Result<X509Certificate<'pem>, KeystoreError> {
    pem.parse_x509()
        .map_err(|error| KeystoreError::BadCertificate {
            what,
            reason: error.to_string(),
        })
}

fn parse_private_key(text: &str, what: &'static str) -> Result<KeyPair, KeystoreError> {
    KeyPair::from_pem(text).map_err(|source| KeystoreError::BadPrivateKey { what, source })
}

fn into_text(bytes: Vec<u8>, what: &'static str) -> Result<String, KeystoreError> {
    String::from_utf8(bytes).map_err(|_| KeystoreError::NotText { what })
}

/// A random, positive 128-bit serial number: RFC 5280 wants serials unique
/// per CA, and rcgen's default (a hash of the public key) would repeat when
/// a CA certificate is issued again for the same key.
fn random_serial_number() -> Result<SerialNumber, KeystoreError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|source| KeystoreError::Randomness { source })?;
    // Positive (top bit clear) and of full length (next bit set).
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

/// A new bootstrap token from the operating system's CSPRNG: 6 + 16
/// characters of `[a-z0-9]`, drawn without modulo bias.
fn generate_bootstrap_token() -> Result<String, KeystoreError> {
    // 252 is the largest multiple of 36 that fits in a byte; bytes at or
    // above it are drawn again so that every character is equally likely.
    const LIMIT: u8 = 252;
    let mut characters = Vec::with_capacity(22);
    let mut buffer = [0u8; 32];
    while characters.len() < 22 {
        getrandom::fill(&mut buffer).map_err(|source| KeystoreError::Randomness { source })?;
        for byte in buffer {
            if byte < LIMIT && characters.len() < 22 {
                characters.push(char::from(TOKEN_ALPHABET[usize::from(byte % 36)]));
            }
        }
    }
    let (id, secret) = characters.split_at(6);
    Ok(format!(
        "{}.{}",
        id.iter().collect::<String>(),
        secret.iter().collect::<String>()
    ))
}

/// The store key of a cluster object named relative to its folder.
fn object_key(cluster: &str, object: &str) -> String {
    format!("{}{object}", layout::cluster_folder(cluster))
}

fn corrupt(key: &str, error: &KeystoreError) -> StoreError {
    StoreError::Corrupt {
        key: key.to_string(),
        message: error_chain(error),
    }
}

/// The state store's error type has no variant for a failed key
/// generation (which means the crypto library or the OS random source
/// failed); it is reported as a failed local operation on the object.
fn generation_failed(key: &str, error: KeystoreError) -> StoreError {
    StoreError::Io {
        action: "generating the key material for",
        path: PathBuf::from(key),
        source: std::io::Error::other(error),
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_agree_with_the_store_layout() {
        let cluster = "c1.example.com";
        assert_eq!(
            object_key(cluster, state_store::CA_CERTIFICATE),
            layout::pki(cluster, "ca.crt")
        );
        assert_eq!(
            object_key(cluster, state_store::SERVICE_ACCOUNT_KEY),
            layout::pki(cluster, "sa.key")
        );
        assert_eq!(
            object_key(cluster, state_store::BOOTSTRAP_TOKEN),
            layout::bootstrap_token(cluster)
        );
        for authority in Authority::ALL {
            for object in [
                authority.certificate_object(),
                authority.private_key_object(),
            ] {
                assert!(
                    object_key(cluster, object).starts_with(&layout::pki_folder(cluster)),
                    "{object}"
                );
            }
        }
    }

    #[test]
    fn tokens_have_kubeadm_shape_and_differ() {
        let first = generate_bootstrap_token().expect("token");
        let second = generate_bootstrap_token().expect("token");
        assert!(is_bootstrap_token(&first), "{first}");
        assert_ne!(first, second);
        for bad in [
            "",
            "abcdef0123456789abcdef",
            "ABCDEF.0123456789abcdef",
            "abcde.0123456789abcdefg",
            "abcdef.0123456789abcde",
            "abcdef.0123456789abcde!",
        ] {
            assert!(!is_bootstrap_token(bad), "{bad:?} accepted");
        }
        assert!(is_bootstrap_token("abcdef.0123456789abcdef\n"));
    }

    #[test]
    fn encryption_config_has_a_dated_secretbox_key_then_identity() {
        use crate::encryption::{key_name, EncryptionConfiguration, Key};
        let now = OffsetDateTime::from_unix_timestamp(1_796_558_400).expect("time");
        assert_eq!(key_name(now), "key-20261206T120000Z");
        let key = Key::generate(now).expect("key");
        let other = Key::generate(now).expect("key");
        let text =
            String::from_utf8(EncryptionConfiguration::with_secretbox_keys(vec![key]).render())
                .expect("text");
        let again =
            String::from_utf8(EncryptionConfiguration::with_secretbox_keys(vec![other]).render())
                .expect("text");
        assert_ne!(text, again, "two keys differ");
        let document: serde_norway::Value = serde_norway::from_str(&text).expect("YAML");
        assert_eq!(
            document["apiVersion"].as_str(),
            Some("apiserver.config.k8s.io/v1")
        );
        assert_eq!(document["kind"].as_str(), Some("EncryptionConfiguration"));
        let resource = &document["resources"][0];
        assert_eq!(resource["resources"][0].as_str(), Some("secrets"));
        let providers = resource["providers"].as_sequence().expect("providers");
        assert_eq!(providers.len(), 2);
        let keys = &providers[0]["secretbox"]["keys"];
        assert_eq!(keys[0]["name"].as_str(), Some("key-20261206T120000Z"));
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(keys[0]["secret"].as_str().expect("a secret"))
            .expect("base64");
        assert_eq!(bytes.len(), 32);
        assert!(providers[1]["identity"].is_mapping());
        assert!(EncryptionConfiguration::parse(text.as_bytes()).is_ok());
    }

    #[test]
    fn token_characters_cover_the_alphabet() {
        // 200 tokens draw 4400 characters; each of the 36 should appear
        // (the chance one is missing is about 36 * (35/36)^4400, below 1e-50).
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let token = generate_bootstrap_token().expect("token");
            seen.extend(token.chars().filter(|character| *character != '.'));
        }
        assert_eq!(seen.len(), 36);
    }
}
