//! `skiff export kubeconfig`: point kubectl at a cluster.
//!
//! The cluster and context entries come from what skiff keeps anyway: the
//! API address (the Route53 name, or for a gossip cluster the load
//! balancer's DNS name from the recorded state) and the cluster CA from the
//! state store. Credentials are opt-in (`--admin`): a short-lived client
//! certificate in `system:masters`, signed on this machine with the CA key
//! from the store. Such a certificate cannot be revoked before it expires,
//! hence the 18-hour default; nothing about it is recorded anywhere but in
//! the kubeconfig it is written to.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use skiff_state::keystore;

use crate::context::Context;
use crate::kubeconfig::{self, ClusterAccess};

/// The user name (certificate common name) of `--admin` credentials.
const DEFAULT_ADMIN_USER: &str = "skiff-admin";

/// The group of `--admin` credentials: Kubernetes' built-in superusers,
/// allowed everything regardless of RBAC.
const ADMIN_GROUP: &str = "system:masters";

/// Above this, `--admin` warns: the certificate cannot be revoked.
const LONG_ADMIN_LIFETIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// `skiff export kubeconfig`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  # Cluster and context only; add your own credentials (e.g. an exec plugin) to the user entry:
  skiff export kubeconfig c1.example.com

  # With an admin client certificate valid for 18 hours:
  skiff export kubeconfig c1.example.com --admin

  # Valid for 2 hours, under another user name, into a separate file:
  skiff export kubeconfig c1.example.com --admin=2h --user alice --kubeconfig ./c1.kubeconfig

The file is --kubeconfig, else the first file in $KUBECONFIG, else ~/.kube/config.
Entries of other clusters are kept; the cluster and context named after the
cluster (and the user USER@CLUSTER with --admin) are replaced, and the context
becomes the current one. The file is written with mode 0600.

--admin certificates are in the group system:masters, which no RBAC rule can
restrict and which cannot be revoked before the certificate expires: keep the
lifetime short.")]
pub struct ExportKubeconfigArgs {
    /// The cluster
    #[arg(env = "SKIFF_CLUSTER_NAME")]
    pub name: String,

    /// Add a client certificate in system:masters, valid this long (default 18h; e.g. --admin=2h)
    #[arg(
        long,
        value_name = "DURATION",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "18h",
        value_parser = humantime::parse_duration
    )]
    pub admin: Option<Duration>,

    /// The kubeconfig to write (default: the first file of $KUBECONFIG, else ~/.kube/config)
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// The user name in the certificate, and USER@CLUSTER as the kubeconfig user entry
    #[arg(long, value_name = "NAME", default_value = DEFAULT_ADMIN_USER)]
    pub user: String,
}

/// Runs `skiff export kubeconfig`.
pub async fn run(context: &Context, arguments: &ExportKubeconfigArgs) -> anyhow::Result<ExitCode> {
    let name = arguments.name.as_str();
    let user = arguments.user.trim();
    if user.is_empty() || user.chars().any(char::is_control) {
        bail!("--user {:?} is not a usable user name: give a non-empty name without control characters", arguments.user);
    }
    let path = kubeconfig::choose_path(
        arguments.kubeconfig.as_deref(),
        std::env::var_os("KUBECONFIG").as_deref(),
        std::env::var_os("HOME").map(PathBuf::from).as_deref(),
    )?;

    let store = context.store().await?;
    let spec = store.read_spec(name).await?;
    let server = skiff_engine::access::api_server(&store, &spec.bundle).await?;

    // Without --admin only the CA certificate is read: exporting the
    // cluster's address must not need access to the CA's private key.
    let (certificate_authority_pem, credentials) = match arguments.admin {
        None => {
            let certificate = keystore::read_ca_certificate(store.objects().as_ref(), name)
                .await
                .with_context(|| format!("cannot read the CA certificate of cluster {name}"))?;
            (certificate, None)
        }
        Some(lifetime) => {
            let authority = keystore::read_ca(store.objects().as_ref(), name)
                .await
                .with_context(|| format!("cannot read the CA of cluster {name}"))?;
            if lifetime > LONG_ADMIN_LIFETIME {
                context.printer.warn(&format!(
                    "the admin certificate is valid for {}; it is in {ADMIN_GROUP} and cannot be revoked before it expires",
                    humantime::format_duration(lifetime)
                ));
            }
            let credentials = keystore::issue_client_certificate(
                &authority,
                user,
                Some(ADMIN_GROUP),
                lifetime,
            )
            .with_context(|| format!("cannot issue an admin certificate for cluster {name}"))?;
            (authority.certificate_pem, Some(credentials))
        }
    };
    let access = ClusterAccess {
        name: name.to_string(),
        server: server.clone(),
        certificate_authority_pem,
        user: format!("{user}@{name}"),
        credentials,
    };
    let outcome = kubeconfig::merge_into_file(&path, &access)
        .with_context(|| format!("cannot write the kubeconfig {}", path.display()))?;

    let verb = if outcome.replaced { "Updated" } else { "Added" };
    context.printer.info(&format!(
        "{verb} cluster and context {name} ({server}) in {}; it is now the current context.",
        path.display()
    ));
    match arguments.admin {
        Some(lifetime) => context.printer.info(&format!(
            "User {} has an admin certificate (CN={user}, O={ADMIN_GROUP}) valid for {}.",
            access.user,
            humantime::format_duration(lifetime)
        )),
        None if outcome.user_present => context.printer.info(&format!(
            "No credentials exported: the context uses the existing user {}. For an admin certificate, add --admin.",
            access.user
        )),
        None => context.printer.info(&format!(
            "No credentials exported: the context names user {}, which has no entry, so kubectl will connect without credentials. Add --admin for an admin certificate, or add your own credentials under that user.",
            access.user
        )),
    }
    Ok(ExitCode::SUCCESS)
}
