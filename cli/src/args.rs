//! The command line, as clap definitions only; what each command does lives
//! in `commands/`, one file per command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::printer::{OutputFormat, PlanFormat};

const ABOUT: &str = "skiff builds and runs Kubernetes clusters on AWS.

A cluster is a spec (a Cluster and its InstanceGroups, in YAML) kept in a shared
state store. skiff plans the AWS resources the spec needs, shows the plan, and
applies it; then it keeps nodes up to date with rolling updates.";

const AFTER_HELP: &str = "Getting started:
  skiff create cluster c1.example.com --zones us-east-1a,us-east-1b,us-east-1c --control-plane-count 3
  skiff get clusters
  skiff edit cluster c1.example.com
  skiff update cluster c1.example.com          # preview
  skiff update cluster c1.example.com --yes    # build

The state store is chosen by --state, else SKIFF_STATE_STORE, else a folder in
your home directory (~/.local/share/skiff/store). Team stores live in S3:
  export SKIFF_STATE_STORE=s3://my-team-skiff-state/prod";

/// The `skiff` command.
#[derive(Debug, Parser)]
#[command(name = "skiff", version, about = ABOUT, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    /// The state store: s3://BUCKET[/PREFIX], file:///PATH or a folder
    #[arg(
        long,
        global = true,
        env = "SKIFF_STATE_STORE",
        value_name = "STORE",
        hide_env_values = true
    )]
    pub state: Option<String>,

    /// More log output (-v info, -vv debug with seconds since start, -vvv trace), on stderr; SKIFF_LOG or RUST_LOG (e.g. skiff_providers=debug) take precedence
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only data and errors: no progress or hints
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Write cluster secrets even to a state store that `skiff state check` refuses (public access not blocked, a public policy or ACL, no default encryption), with a warning; for stores you cannot change and have judged yourself
    #[arg(long, global = true, env = "SKIFF_ALLOW_INSECURE_STORE")]
    pub allow_insecure_store: bool,

    /// What to do
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a cluster, an instance group, or everything in a file
    Create(CreateArgs),
    /// Replace specs in the store with the documents of a file
    #[command(after_help = "Examples:
  skiff get cluster c1.example.com -o yaml > c1.yaml
  $EDITOR c1.yaml
  skiff replace -f c1.yaml

The write fails, changing nothing, if anyone changed the cluster after you read it.")]
    Replace(ReplaceArgs),
    /// Show clusters and instance groups
    #[command(subcommand)]
    Get(GetCommand),
    /// Edit a spec in $EDITOR; an invalid edit is refused and nothing is stored
    #[command(subcommand)]
    Edit(EditCommand),
    /// Delete an instance group, or a cluster
    #[command(subcommand)]
    Delete(DeleteCommand),
    /// Preview, and with --yes apply, the AWS changes a cluster's spec needs
    #[command(subcommand)]
    Update(UpdateCommand),
    /// Apply a plan saved with `skiff update cluster NAME --out FILE`
    #[command(
        after_help = "The plan is applied exactly as saved. It is refused, changing nothing, when the
cluster's recorded state or spec changed after it was made: review a new plan then.

Examples:
  skiff update cluster c1.example.com --out c1.plan
  skiff apply c1.plan"
    )]
    Apply(ApplyArgs),
    /// Replace instances that run an out-of-date configuration
    #[command(subcommand, name = "rolling-update")]
    RollingUpdate(RollingUpdateCommand),
    /// Check that a cluster is healthy
    #[command(subcommand)]
    Validate(ValidateCommand),
    /// Write a cluster's access details to a kubeconfig file
    #[command(subcommand)]
    Export(ExportCommand),
    /// Who changed a cluster's spec and recorded state, when and how; compare or prune versions
    #[command(after_help = "Examples:
  skiff history c1.example.com                        # every spec revision: who, when, command, summary
  skiff history c1.example.com -o json                # the same for scripts
  skiff history c1.example.com --kind all             # spec revisions and recorded-state snapshots
  skiff history c1.example.com --diff 3 4             # what revision 4 changed, as a unified diff
  skiff history c1.example.com --prune --keep 50      # remove all but the newest 50 of each history
  skiff history c1.example.com --prune --older-than 90d --dry-run

Every change to a spec (create, replace, edit, rollback...) is a new revision,
claimed in the store so that none is lost; every operation that changes the
recorded cloud state (update cluster --yes, apply, rolling-update, delete)
keeps a snapshot of it. Each entry records the local user@host, the AWS caller
identity, the time (UTC), the command line and a one-line summary.

Nothing is pruned unless you ask: --prune removes an entry only when every rule
given (--keep, --older-than) lets go of it, and never the revision the cluster
is at now. To prune after every write instead, set SKIFF_HISTORY_KEEP=N and/or
SKIFF_HISTORY_MAX_AGE=AGE (see docs/history.md).")]
    History(HistoryArgs),
    /// Restore an earlier revision of a cluster's spec, as a new revision
    #[command(after_help = "Examples:
  skiff history c1.example.com                        # find the revision to go back to
  skiff rollback c1.example.com --to 3 --dry-run      # show what would change in the spec
  skiff rollback c1.example.com --to 3
  skiff update cluster c1.example.com                 # preview the AWS changes that undo the later edits
  skiff update cluster c1.example.com --yes

Rollback changes only the spec in the store (history is never rewritten: the
restored spec becomes a new revision); the cloud follows with `update cluster`.
It fails, changing nothing, if anyone changed the spec meanwhile.")]
    Rollback(RollbackArgs),
    /// Rebuild a cluster's control plane from an etcd backup
    #[command(subcommand)]
    Restore(RestoreCommand),
    /// Rotate a cluster's keys
    #[command(subcommand)]
    Rotate(RotateCommand),
    /// Set up, check, inspect and repair the state store (bucket settings, locks)
    #[command(subcommand)]
    State(StateCommand),
    /// Print a shell completion script
    #[command(after_help = "Examples:
  skiff completion bash > /etc/bash_completion.d/skiff
  skiff completion zsh > \"${fpath[1]}/_skiff\"
  skiff completion fish > ~/.config/fish/completions/skiff.fish")]
    Completion(CompletionArgs),
}

/// `skiff export`.
#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Add the cluster (and with --admin, credentials) to a kubeconfig and make it the current context
    Kubeconfig(crate::commands::export_kubeconfig::ExportKubeconfigArgs),
}

/// `skiff create`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:
  skiff create cluster c1.example.com --zones us-east-1a
  skiff create -f c1.yaml
  skiff create ig --name c1.example.com gpu --role Node --machine-type g5.xlarge --min 0 --max 4"
)]
pub struct CreateArgs {
    /// A YAML file with a Cluster and its InstanceGroups (or InstanceGroups
    /// of an existing cluster); `-` reads standard input
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub filename: Option<PathBuf>,

    /// The cluster the instance groups of the file belong to (when the file has no Cluster)
    #[arg(long, env = "SKIFF_CLUSTER_NAME")]
    pub name: Option<String>,

    /// What to create
    #[command(subcommand)]
    pub command: Option<CreateCommand>,
}

/// `skiff create cluster|ig`.
#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// Create a cluster spec (no cloud resources yet: see `skiff update cluster`)
    Cluster(Box<CreateClusterArgs>),
    /// Add an instance group to a cluster spec
    #[command(visible_alias = "ig", visible_alias = "instancegroups")]
    Instancegroup(Box<CreateInstanceGroupArgs>),
}

/// `skiff create cluster`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  # One control-plane node and two nodes in one zone, public topology:
  skiff create cluster c1.example.com --zones us-east-1a

  # HA control plane over three zones, private nodes behind NAT gateways:
  skiff create cluster c1.example.com --zones us-east-1a,us-east-1b,us-east-1c \\
      --control-plane-count 3 --topology private --node-count 6

  # No Route53 needed: a gossip cluster (name ends in .k8s.local):
  skiff create cluster dev.k8s.local --zones eu-west-1a

  # See the spec without storing it:
  skiff create cluster c1.example.com --zones us-east-1a --dry-run -o yaml

The spec is written complete (every default filled in) so it says exactly what
will be built. Nothing is created in AWS until `skiff update cluster --yes`.")]
pub struct CreateClusterArgs {
    /// The cluster's DNS name, e.g. c1.example.com (or NAME.k8s.local for gossip mode)
    pub name: String,

    /// Availability zones for subnets and nodes (comma-separated), e.g. us-east-1a,us-east-1b
    #[arg(long, value_delimiter = ',', required = true)]
    pub zones: Vec<String>,

    /// Zones for the control plane (default: --zones)
    #[arg(long, value_delimiter = ',')]
    pub control_plane_zones: Vec<String>,

    /// Control-plane nodes; use an odd number (1, 3, 5) so etcd keeps a majority
    #[arg(long, default_value_t = 1)]
    pub control_plane_count: u32,

    /// Control-plane instance type
    #[arg(long, default_value = skiff_api::new_cluster::DEFAULT_MACHINE_TYPE)]
    pub control_plane_size: String,

    /// Worker nodes in all, spread over the zones
    #[arg(long, default_value_t = 2)]
    pub node_count: u32,

    /// Worker instance type (an arm64 type such as m7g.large gets the image's arm64 variant)
    #[arg(long, default_value = skiff_api::new_cluster::DEFAULT_MACHINE_TYPE)]
    pub node_size: String,

    /// Kubernetes version, one of the releases skiff knows (an error lists them)
    #[arg(long, default_value = skiff_api::version::DEFAULT_VERSION)]
    pub kubernetes_version: String,

    /// public: nodes in public subnets; private: nodes in private subnets behind a NAT gateway per zone
    #[arg(long, default_value = "public", value_parser = ["public", "private"])]
    pub topology: String,

    /// The CNI plugin
    #[arg(long, default_value = "cilium", value_parser = ["cilium", "calico", "flannel"])]
    pub networking: String,

    /// The Route53 hosted zone for api.<name> (default: the zone that is the longest suffix of the name)
    #[arg(long)]
    pub dns_zone: Option<String>,

    /// The VPC's address range
    #[arg(long, default_value = skiff_api::new_cluster::DEFAULT_NETWORK_CIDR)]
    pub network_cidr: String,

    /// Build in an existing VPC (shared: never modified or deleted)
    #[arg(long, value_name = "VPC_ID")]
    pub vpc: Option<String>,

    /// An SSH public key file to install on every node
    #[arg(long, value_name = "FILE")]
    pub ssh_public_key: Option<PathBuf>,

    /// Whether the API load balancer faces the internet (public: nodes use an internal one beside it)
    #[arg(long, default_value = "public", value_parser = ["public", "internal"])]
    pub api_loadbalancer_type: String,

    /// Tags for every AWS resource, e.g. team=infra,env=prod
    #[arg(long, value_delimiter = ',', value_name = "KEY=VALUE")]
    pub cloud_labels: Vec<String>,

    /// Image for every group: an AMI ID or OWNER/NAME-PATTERN, resolved per group for its machine type's architecture (default: Ubuntu 24.04, or Amazon Linux 2023 with --os-family rhel)
    #[arg(long)]
    pub image: Option<String>,

    /// OS family of the image: debian (apt) or rhel (dnf)
    #[arg(long, default_value = "debian", value_parser = parse_os_family)]
    pub os_family: skiff_api::OsFamily,

    /// CIDRs allowed to reach the Kubernetes API at its load balancer (the cluster's own nodes need none: they use an internal endpoint)
    #[arg(long, value_delimiter = ',', default_value = "0.0.0.0/0")]
    pub admin_access: Vec<String>,

    /// CIDRs allowed to reach nodes over SSH
    #[arg(long, value_delimiter = ',', default_value = "0.0.0.0/0")]
    pub ssh_access: Vec<String>,

    /// Print the spec instead of storing it (with -o yaml or -o json)
    #[arg(long)]
    pub dry_run: bool,

    /// Output format for --dry-run
    #[arg(short, long, value_enum, default_value = "yaml")]
    pub output: OutputFormat,
}

/// `skiff create ig`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  skiff create ig --name c1.example.com spot-workers --role Node --machine-type m6i.large --min 0 --max 10 --spot
  skiff create ig --name c1.example.com graviton --machine-type m7g.large   # arm64 image
  skiff create ig --name c1.example.com control-plane-us-east-1d --role ControlPlane --subnet us-east-1d
  skiff create ig --name c1.example.com windows-nodes --os-family windows --machine-type m6i.large --min 1 --max 3
  skiff create ig --name c1.example.com etcd-4 --role Etcd --subnet us-east-1a   (spec.etcd.topology: external; 3 or 5 in all)")]
pub struct CreateInstanceGroupArgs {
    /// The cluster
    #[arg(long, env = "SKIFF_CLUSTER_NAME")]
    pub name: String,

    /// The new group's name (lowercase letters, digits and '-')
    pub group: String,

    /// ControlPlane, Node, Bastion or Etcd (one member of an external etcd cluster)
    #[arg(long, default_value = "Node", value_parser = parse_role)]
    pub role: skiff_api::InstanceGroupRole,

    /// Instance type; its architecture (x86_64 or arm64, e.g. m7g.large: Graviton) picks the image
    #[arg(long, default_value = skiff_api::new_cluster::DEFAULT_MACHINE_TYPE)]
    pub machine_type: String,

    /// Fewest instances
    #[arg(long)]
    pub min: Option<u32>,

    /// Most instances
    #[arg(long)]
    pub max: Option<u32>,

    /// Cluster subnets to launch into (default: every subnet of the role's kind)
    #[arg(long = "subnet", value_delimiter = ',')]
    pub subnets: Vec<String>,

    /// Image: an AMI ID or OWNER/NAME-PATTERN, resolved for the machine type's architecture (default: the OS family's, Windows Server 2022 Core for windows; on arm64 types the arm64 variant)
    #[arg(long)]
    pub image: Option<String>,

    /// OS family of the image: debian, rhel, or windows (a Windows Server worker group: role Node only, with calico; nodes registered with the taint os=windows:NoSchedule)
    #[arg(long, default_value = "debian", value_parser = parse_os_family)]
    pub os_family: skiff_api::OsFamily,

    /// Run on spot capacity
    #[arg(long)]
    pub spot: bool,

    /// Node labels, e.g. workload=batch
    #[arg(long = "node-label", value_delimiter = ',', value_name = "KEY=VALUE")]
    pub node_labels: Vec<String>,

    /// Node taints, e.g. dedicated=gpu:NoSchedule
    #[arg(long = "taint", value_name = "KEY=VALUE:EFFECT")]
    pub taints: Vec<String>,

    /// Open the new group in $EDITOR before storing it
    #[arg(long)]
    pub edit: bool,

    /// Print the group instead of storing it
    #[arg(long)]
    pub dry_run: bool,

    /// Output format for --dry-run
    #[arg(short, long, value_enum, default_value = "yaml")]
    pub output: OutputFormat,
}

/// `skiff replace`.
#[derive(Debug, Args)]
pub struct ReplaceArgs {
    /// The file with the new specs; `-` reads standard input
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
    pub filename: PathBuf,

    /// The cluster of InstanceGroup documents when the file has no Cluster
    #[arg(long, env = "SKIFF_CLUSTER_NAME")]
    pub name: Option<String>,

    /// Create the cluster if it does not exist
    #[arg(long)]
    pub force: bool,
}

/// `skiff get`.
#[derive(Debug, Subcommand)]
pub enum GetCommand {
    /// List the clusters of the store, with their last change and lock
    #[command(after_help = "Examples:
  skiff get clusters
  skiff get clusters -o json
  skiff get clusters --state s3://my-team-skiff-state/prod

CHANGED is the newest spec revision: when and by whom (see `skiff history NAME`).
LOCK is `-`, or who holds the cluster lock and for what operation (see
`skiff state lock show NAME`).")]
    Clusters(GetClustersArgs),
    /// Show one cluster
    #[command(after_help = "Examples:
  skiff get cluster c1.example.com
  skiff get cluster c1.example.com -o yaml          # the Cluster document
  skiff get cluster c1.example.com -o yaml --full   # the Cluster and its InstanceGroups")]
    Cluster(GetClusterArgs),
    /// List the instance groups of a cluster
    #[command(
        after_help = "Examples:
  skiff get instancegroups --name c1.example.com
  skiff get ig --name c1.example.com nodes-us-east-1a -o yaml
  skiff get ig --name c1.example.com -o json",
        visible_alias = "ig",
        visible_alias = "instancegroup",
        visible_alias = "igs"
    )]
    Instancegroups(GetInstanceGroupsArgs),
    /// List the etcd backups the control plane wrote to the state store, newest first
    #[command(
        visible_alias = "backup",
        after_help = "Examples:
  skiff get backups c1.example.com
  skiff get backups c1.example.com -o json

The control-plane nodes snapshot etcd every spec.etcd.backups.interval (default
15m) to <cluster>/etcd/backups/ in the s3:// state store, encrypted (SSE-S3),
keeping the newest spec.etcd.backups.keep (default 96) and the newest of each
day of the last 7 days. ID is what `skiff restore cluster --backup` takes;
REVISION is etcd's revision in the snapshot; NODE the instance that took it.
See docs/control-plane.md."
    )]
    Backups(GetBackupsArgs),
}

/// `skiff get backups`.
#[derive(Debug, Args)]
pub struct GetBackupsArgs {
    /// The cluster
    #[arg(env = "SKIFF_CLUSTER_NAME")]
    pub name: String,

    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `skiff get clusters`.
#[derive(Debug, Args)]
pub struct GetClustersArgs {
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `skiff get cluster`.
#[derive(Debug, Args)]
pub struct GetClusterArgs {
    /// The cluster
    #[arg(env = "SKIFF_CLUSTER_NAME")]
    pub name: String,

    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,

    /// With -o yaml|json: include the instance groups
    #[arg(long)]
    pub full: bool,
}

/// `skiff get instancegroups`.
#[derive(Debug, Args)]
pub struct GetInstanceGroupsArgs {
    /// The cluster
    #[arg(long, env = "SKIFF_CLUSTER_NAME")]
    pub name: String,

    /// Only these groups
    pub groups: Vec<String>,

    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `skiff edit`.
#[derive(Debug, Subcommand)]
pub enum EditCommand {
    /// Edit a Cluster document
    #[command(after_help = "Examples:
  skiff edit cluster c1.example.com
  EDITOR=nano skiff edit cluster c1.example.com

The editor is $VISUAL, else $EDITOR, else vi. Saving an unchanged file changes nothing.")]
    Cluster(EditClusterArgs),
    /// Edit an InstanceGroup document
    #[command(
        visible_alias = "ig",
        visible_alias = "instancegroups",
        after_help = "Examples:
  skiff edit ig --name c1.example.com nodes-us-east-1a

The editor is $VISUAL, else $EDITOR, else vi. Saving an unchanged file changes nothing."
    )]
    Instancegroup(EditInstanceGroupArgs),
}

/// `skiff edit cluster`.
#[derive(Debug, Args)]
pub struct EditClusterArgs {
    /// The cluster
    #[arg(env = "SKIFF_CLUSTER_NAME")]
    pub name: String,
}

/// `skiff edit ig`.
#[derive(Debug, Args)]
pub struct EditInstanceGroupArgs {
    /// The cluster
    #[arg(long, env = "SKIFF_CLUSTER_NAME")]
    pub name: String,

    /// The instance group
    pub group: String,
}

/// `skiff delete`.
#[derive(Debug, Subcommand)]
pub enum DeleteCommand {
    /// Remove an instance group from a cluster spec
    #[command(visible_alias = "ig", visible_alias = "instancegroups")]
    Instancegroup(DeleteInstanceGroupArgs),
    /// Delete a cluster
    Cluster(DeleteClusterArgs),
}

/// `skiff delete ig`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  skiff delete ig --name c1.example.com spot-workers          # say what would be removed
  skiff delete ig --name c1.example.com spot-workers --yes    # remove it from the spec

This changes the spec only; `skiff update cluster --yes` then removes the group's
auto scaling group and launch template from AWS.")]
pub struct DeleteInstanceGroupArgs {
    /// The cluster
    #[arg(long, env = "SKIFF_CLUSTER_NAME")]
    pub name: String,

    /// The instance group
    pub group: String,

    /// Really delete (without it, only says what would be deleted)
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// `skiff delete cluster`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  skiff delete cluster c1.example.com                      # list what would be deleted
  skiff delete cluster c1.example.com --yes                # delete it all, then forget the cluster
  skiff delete cluster c1.example.com --unregister --yes   # forget the cluster, leave AWS alone

Only resources tagged as owned by this cluster (kubernetes.io/cluster/NAME=owned)
are deleted; shared VPCs and subnets and anything else are never touched.")]
pub struct DeleteClusterArgs {
    /// The cluster
    #[arg(env = "SKIFF_CLUSTER_NAME")]
    pub name: String,

    /// Remove the cluster from the state store only; AWS resources are left alone
    #[arg(long)]
    pub unregister: bool,

    /// How many AWS deletions to make at once
    #[arg(long, default_value_t = 16, value_parser = parse_parallelism)]
    pub parallelism: usize,

    /// Really delete (without it, only says what would be deleted)
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Waiting for the cluster lock
    #[command(flatten)]
    pub lock: LockWaitArgs,
}

/// `skiff update`.
#[derive(Debug, Subcommand)]
pub enum UpdateCommand {
    /// Preview the AWS changes of a cluster; apply them with --yes
    #[command(after_help = "Examples:
  skiff update cluster c1.example.com                       # preview
  skiff update cluster c1.example.com --yes                 # apply
  skiff update cluster c1.example.com --out c1.plan         # save the plan for review
  skiff apply c1.plan                                       # apply exactly that plan
  skiff update cluster c1.example.com -o json               # the plan as JSON (docs/plan-format.md)
  skiff update cluster c1.example.com -o markdown > plan.md # for a pull-request comment
  skiff update cluster c1.example.com --detailed-exitcode   # exit 0: no changes, 2: changes, 1: error
  skiff update cluster c1.example.com --target terraform --out c1-tf   # write Terraform instead (docs/terraform.md)

The preview lists every resource that will be created, changed, replaced or
deleted, with field-level old -> new values and unified diffs of user-data and
policies, and the instance groups whose running instances will need a rolling
update afterwards. Applying takes the cluster lock, records every resource in the
state store as it is created, and can be interrupted and run again safely.

The cluster addons (spec.addons: cloud-controller-manager, EBS CSI driver,
metrics-server, cluster-autoscaler) show as `addon/<name>` with their release,
e.g. `addon/metrics-server  create v0.8.0`. Applying writes their manifests to the
state store's addons/ folder; the control-plane nodes apply them within a minute,
so an addon change rolls no node (docs/addons.md).

--target terraform writes the same resources as Terraform JSON (skiff.tf.json and
data/*.user-data) into the --out folder, prepares the cluster's PKI in the state
store, and records the cluster as managed by Terraform: `--yes` then refuses to
apply directly until you switch back with `--target direct --force-target --yes`.")]
    Cluster(UpdateClusterArgs),
}

/// `skiff update cluster`.
#[derive(Debug, Args)]
pub struct UpdateClusterArgs {
    /// The cluster
    #[arg(env = "SKIFF_CLUSTER_NAME")]
    pub name: String,

    /// Apply the changes (without it, only preview them)
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Save the plan to FILE for `skiff apply FILE`; with --target terraform, the folder to write the Terraform to
    #[arg(long, value_name = "FILE|DIR")]
    pub out: Option<PathBuf>,

    /// Output format of the plan; markdown is for pull-request comments (a summary table, per-resource diffs that fold open, secrets redacted)
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: PlanFormat,

    /// Apply to AWS directly, or write Terraform to --out DIR (docs/terraform.md)
    #[arg(long, value_enum, default_value = "direct")]
    pub target: UpdateTarget,

    /// Switch the cluster between the targets: apply directly a cluster recorded as managed by Terraform, or write Terraform for one skiff applied directly
    #[arg(long)]
    pub force_target: bool,

    /// Exit 0 when there are no changes, 2 when there are, 1 on errors (preview only)
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// How many AWS changes to make at once
    #[arg(long, default_value_t = 16, value_parser = parse_parallelism)]
    pub parallelism: usize,

    /// Waiting for the cluster lock
    #[command(flatten)]
    pub lock: LockWaitArgs,
}

/// Where `update cluster` puts the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UpdateTarget {
    /// Plan and apply against AWS
    Direct,
    /// Write Terraform JSON to --out DIR
    Terraform,
}

/// `skiff apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The plan file
    pub plan: PathBuf,

    /// How many AWS changes to make at once
    #[arg(long, default_value_t = 16, value_parser = parse_parallelism)]
    pub parallelism: usize,

    /// Waiting for the cluster lock
    #[command(flatten)]
    pub lock: LockWaitArgs,
}

/// `skiff rolling-update`.
#[derive(Debug, Subcommand)]
pub enum RollingUpdateCommand {
    /// Replace out-of-date instances, group by group
    #[command(
        after_help = "Without --yes, shows each group's status (NAME STATUS NEEDUPDATE READY MIN TARGET MAX NODES)
and what would be replaced, in which order, and why.

Order: bastions, then control-plane groups strictly one instance at a time (never
surge; the control plane must validate before the next), then node groups. Node
groups use rollingUpdate.maxSurge / maxUnavailable (group, else cluster; default
maxSurge 1, maxUnavailable 0): the group grows first so replacements launch
before anything is removed, then old nodes are cordoned, drained (PodDisruption-
Budgets honoured), terminated, and the group shrinks back.

Interrupted (Ctrl-C, a crash, a lost lock)? Run the same command again: it
continues without replacing an instance twice and restores any group it grew.

Examples:
  skiff rolling-update cluster c1.example.com                       # preview
  skiff rolling-update cluster c1.example.com --yes
  skiff rolling-update cluster c1.example.com --yes --instance-group nodes-us-east-1a
  skiff rolling-update cluster c1.example.com --yes --cloudonly     # no Kubernetes API: terminate and wait for InService
  skiff rolling-update cluster c1.example.com --yes --force         # replace every instance"
    )]
    Cluster(RollingUpdateArgs),
}

/// `skiff rolling-update cluster`.
#[derive(Debug, Args)]
pub struct RollingUpdateArgs {
    /// The cluster
    #[arg(env = "SKIFF_CLUSTER_NAME")]
    pub name: String,

    /// Do it (without it, only show what would happen)
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Only these instance groups
    #[arg(long = "instance-group", value_delimiter = ',', value_name = "NAME")]
    pub instance_groups: Vec<String>,

    /// Only groups of these roles: ControlPlane, Node, Bastion, Etcd
    #[arg(
        long = "instance-group-roles",
        value_delimiter = ',',
        value_name = "ROLE",
        value_parser = parse_role
    )]
    pub instance_group_roles: Vec<skiff_api::InstanceGroupRole>,

    /// Replace every instance, even up-to-date ones
    #[arg(long)]
    pub force: bool,

    /// Do not use the Kubernetes API: no drain, no node validation
    #[arg(long)]
    pub cloudonly: bool,

    /// How long draining a node may take before the group fails
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub drain_timeout: std::time::Duration,

    /// Fail the group when a node does not drain in time (false: terminate it anyway)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub fail_on_drain_error: bool,

    /// How long a group may take to become healthy after each round
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub validation_timeout: std::time::Duration,

    /// Consecutive successful validations required after each round
    #[arg(long, default_value_t = 2)]
    pub validate_count: u32,

    /// Pause between validation checks
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub validation_interval: std::time::Duration,

    /// A kubeconfig for the cluster's API (default: a short-lived admin certificate from the cluster's CA)
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// table: progress for people; json: one event per step
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,

    /// Waiting for the cluster lock
    #[command(flatten)]
    pub lock: LockWaitArgs,
}

/// `skiff validate`.
#[derive(Debug, Subcommand)]
pub enum ValidateCommand {
    /// Check groups, nodes and the control plane; exit 2 when invalid
    #[command(
        after_help = "Checks each instance group's instances in service against its spec, a Ready
Kubernetes node per instance, and the control plane (control-plane nodes Ready,
their static pods running, CoreDNS and the CNI ready). Exit codes: 0 valid,
2 invalid (the problems are listed), 1 error.

Examples:
  skiff validate cluster c1.example.com
  skiff validate cluster c1.example.com --wait 10m -o json"
    )]
    Cluster(ValidateClusterArgs),
}

/// `skiff validate cluster`.
#[derive(Debug, Args)]
pub struct ValidateClusterArgs {
    /// The cluster
    #[arg(env = "SKIFF_CLUSTER_NAME")]
    pub name: String,

    /// Keep checking until valid or this long has passed
    #[arg(long, value_parser = humantime::parse_duration)]
    pub wait: Option<std::time::Duration>,

    /// Only check the cloud side (no Kubernetes API)
    #[arg(long)]
    pub cloudonly: bool,

    /// A kubeconfig for the cluster's API (default: a short-lived admin certificate from the cluster's CA)
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `skiff state`.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Create or fix an S3 bucket so that it can hold cluster secrets
    #[command(after_help = "Examples:
  skiff state init s3://my-team-skiff-state/prod                # preview: what would change
  skiff state init s3://my-team-skiff-state/prod --yes          # create the bucket or fix its settings
  skiff state init s3://my-team-skiff-state --region eu-west-1 --yes
  skiff state init s3://my-team-skiff-state --kms-key arn:aws:kms:eu-west-1:123456789012:key/1234abcd-... --yes

The state store holds each cluster's certificate authorities, service-account
key and bootstrap token: whoever can read the bucket owns the clusters. init
makes the bucket (if missing) and sets, in this order:
  Block Public Access   all four settings on
  object ownership      BucketOwnerEnforced (ACLs off)
  default encryption    SSE-S3 (AES256), or SSE-KMS with --kms-key and S3 bucket keys on
                        (an existing SSE-KMS default is kept: never lowered to SSE-S3)
  versioning            Enabled
  bucket policy         a Deny of every request without TLS (aws:SecureTransport=false),
                        added to the existing policy; its other statements are kept
Without --yes it only shows each setting as it is and as it would be. A
second run finds nothing to change and writes nothing. With --kms-key, the
nodes' IAM roles get kms:Decrypt on the key (control-plane roles also
kms:GenerateDataKey) at the next `skiff update cluster --yes`.

IAM permissions init needs: s3:CreateBucket (new bucket), s3:ListBucket,
s3:Get/PutBucketPublicAccessBlock, s3:Get/PutBucketOwnershipControls,
s3:Get/PutEncryptionConfiguration, s3:Get/PutBucketVersioning,
s3:Get/PutBucketPolicy, s3:GetBucketAcl. See docs/security.md.")]
    Init(StateInitArgs),
    /// Check that the state store is safe to hold cluster secrets
    #[command(after_help = "Examples:
  skiff state check
  skiff state check --state s3://my-team-skiff-state/prod -o json

Refusal-level findings (public access not fully blocked, a public bucket
policy or ACL grant, no default encryption, a setting skiff may not read)
make every command that writes secrets refuse the store: `create cluster`,
`create -f`, `update cluster --yes`, `update cluster --target terraform`,
`apply` and `restore cluster --yes`. Warnings (no TLS-only policy,
versioning off, ACLs enabled) are worth fixing but refuse nothing. Each
finding names its fix; `skiff state init s3://BUCKET --yes` fixes them all.

Exit status: 0 when nothing is refused, 2 when any finding is a refusal
(1: the check itself failed).
A folder store is checked for permissions other local users could use
(a warning: applying a cluster needs an S3 store anyway).")]
    Check(StateCheckArgs),
    /// Show, take or hold the cluster lock
    #[command(subcommand)]
    Lock(LockCommand),
    /// Remove a cluster lock left by an operation that is gone
    #[command(after_help = "Examples:
  skiff state lock show c1.example.com
  skiff state unlock c1.example.com --lock-id 4f1c2d7e-0000-4000-8000-000000000000

A lock whose holder died frees itself when its lease expires (60s by default).
Use unlock only when you are sure the holder is gone; the ID comes from `skiff state lock show`.")]
    Unlock(UnlockArgs),
}

/// `skiff state lock`.
#[derive(Debug, Subcommand)]
pub enum LockCommand {
    /// Who holds the lock of a cluster, since when, for what
    #[command(after_help = "Examples:
  skiff state lock show c1.example.com
  skiff state lock show c1.example.com -o json")]
    Show(LockShowArgs),
    /// Take the lock and hold it until interrupted (Ctrl-C), e.g. during manual maintenance
    #[command(after_help = "Examples:
  skiff state lock hold c1.example.com --reason \"replacing etcd volumes\"
  skiff state lock hold c1.example.com --duration 30m

The lock ID is printed on stdout; the lock is released on Ctrl-C, SIGTERM or
when --duration has passed.")]
    Hold(LockHoldArgs),
}

/// `skiff state lock show`.
#[derive(Debug, Args)]
pub struct LockShowArgs {
    /// The cluster
    #[arg(env = "SKIFF_CLUSTER_NAME")]
    pub name: String,

    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `skiff state lock hold`.
#[derive(Debug, Args)]
pub struct LockHoldArgs {
    /// The cluster
    #[arg(env = "SKIFF_CLUSTER_NAME")]
    pub name: String,

    /// What you are doing, shown to others who find the cluster locked
    #[arg(long, default_value = "manual maintenance")]
    pub reason: String,

    /// Release the lock after this long (e.g. 30m); default: hold until interrupted
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<std::time::Duration>,

    /// Waiting for the cluster lock
    #[command(flatten)]
    pub lock: LockWaitArgs,
}

/// `skiff state init`.
#[derive(Debug, Args)]
pub struct StateInitArgs {
    /// The store: s3://BUCKET[/PREFIX] (default: --state / SKIFF_STATE_STORE); the settings are the bucket's, whatever the prefix
    #[arg(value_name = "s3://BUCKET[/PREFIX]")]
    pub store: Option<String>,

    /// The region a missing bucket is created in (default: the AWS configuration's region); an existing bucket must be in it
    #[arg(long)]
    pub region: Option<String>,

    /// Encrypt with this KMS key (key ID, key ARN or alias/NAME) instead of SSE-S3; the nodes' roles are given kms:Decrypt on it
    #[arg(long, value_name = "KEY-ID-OR-ARN")]
    pub kms_key: Option<String>,

    /// Make the changes (without it: only show them)
    #[arg(short, long)]
    pub yes: bool,

    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `skiff state check`.
#[derive(Debug, Args)]
pub struct StateCheckArgs {
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// `skiff state unlock`.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The cluster
    #[arg(env = "SKIFF_CLUSTER_NAME")]
    pub name: String,

    /// The ID of the lock to remove (refused if it is not the held lock's)
    #[arg(long, required = true)]
    pub lock_id: String,
}

/// `skiff history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The cluster
    #[arg(env = "SKIFF_CLUSTER_NAME")]
    pub name: String,

    /// Output format of the list
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: OutputFormat,

    /// Which history to list: spec revisions, recorded-state snapshots, or both
    #[arg(long, value_enum, default_value = "spec")]
    pub kind: HistoryKind,

    /// Show how the spec changed from revision A to revision B, as a unified diff
    #[arg(long, num_args = 2, value_names = ["A", "B"], conflicts_with = "prune")]
    pub diff: Option<Vec<u64>>,

    /// Remove old history entries by --keep and/or --older-than (never the current revision)
    #[arg(long)]
    pub prune: bool,

    /// With --prune: keep the newest N entries of each history (at least 1)
    #[arg(long, value_name = "N", requires = "prune")]
    pub keep: Option<usize>,

    /// With --prune: remove only entries older than this, e.g. 30d or 12h
    #[arg(long, value_name = "AGE", value_parser = humantime::parse_duration, requires = "prune")]
    pub older_than: Option<std::time::Duration>,

    /// With --prune: only list what would be removed
    #[arg(long, requires = "prune")]
    pub dry_run: bool,
}

/// The histories `skiff history` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HistoryKind {
    /// Spec revisions (what `--diff` and `rollback --to` take)
    Spec,
    /// Recorded-state snapshots, one per operation that changed the cloud state
    State,
    /// Both, oldest first
    All,
}

/// `skiff rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The cluster
    #[arg(env = "SKIFF_CLUSTER_NAME")]
    pub name: String,

    /// The spec revision to restore (see `skiff history CLUSTER`)
    #[arg(long, value_name = "REVISION", required = true)]
    pub to: u64,

    /// Only show how the spec would change (a unified diff); store nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// `skiff restore`.
#[derive(Debug, Subcommand)]
pub enum RestoreCommand {
    /// Replace every control-plane node; the first restores etcd from a backup, the others join it
    #[command(after_help = "Examples:
  # 1. Choose a backup (newest first):
  skiff get backups c1.example.com
  # 2. Preview (changes nothing): the backup, every control-plane instance replaced, what is lost:
  skiff restore cluster c1.example.com --backup 20261206T121500Z-rev48213-i-0abc12345def67890
  # 3. Restore:
  skiff restore cluster c1.example.com --backup 20261206T121500Z-rev48213-i-0abc12345def67890 --yes
  # 4. Wait until the restored control plane serves:
  skiff validate cluster c1.example.com --wait 30m

Without --yes nothing is changed: the preview names the backup (time, etcd
revision, node, size) and every control-plane instance that will be replaced.
With --yes, under the cluster lock, skiff writes <cluster>/etcd/restore-request
naming the backup and terminates every control-plane instance; the groups keep
their size and launch replacements. The first replacement restores the backup,
the others join it. The Kubernetes API is unavailable until then, and every
change made after the backup was taken is lost. The restore is recorded in
`skiff history NAME --kind all`.

Refused, changing nothing: an ID that is not a backup of this cluster, and a
control plane whose API still answers /readyz (add --force when etcd's data is
what is wrong). See docs/control-plane.md.")]
    Cluster(RestoreClusterArgs),
}

/// `skiff restore cluster`.
#[derive(Debug, Args)]
pub struct RestoreClusterArgs {
    /// The cluster
    #[arg(env = "SKIFF_CLUSTER_NAME")]
    pub name: String,

    /// The backup to restore: an ID from `skiff get backups NAME` (its key or s3:// URL also work)
    #[arg(long, value_name = "ID", required = true)]
    pub backup: String,

    /// Restore (without it: only show what would be done)
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// Restore even though the control plane's API answers /readyz
    #[arg(long)]
    pub force: bool,

    /// Waiting for the cluster lock
    #[command(flatten)]
    pub lock: LockWaitArgs,
}

/// `skiff rotate`.
#[derive(Debug, Subcommand)]
pub enum RotateCommand {
    /// Replace the key Kubernetes Secrets are encrypted with in etcd, rewriting every Secret
    #[command(
        name = "encryption-key",
        after_help = "Examples:
  skiff rotate encryption-key c1.example.com          # the phases, the keys, a rotation under way
  skiff rotate encryption-key c1.example.com --yes    # rotate (or continue an interrupted rotation)

The API servers encrypt Secrets with the first key of the cluster's encryption
configuration (<cluster>/secrets/encryption-config.yaml in the state store)
and decrypt with any key it lists. With --yes, under the cluster lock:
  1. added      a new key is added second: every API server can read it;
  2. promoted   the new key becomes first: new writes use it;
  3. rewritten  every Secret is replaced unchanged through the API, so it is
                stored again under the new key;
  4. retired    the old key is removed.
After each configuration change skiff waits (--timeout) until every
control-plane instance in service reports that its API server runs it. Each
completed phase is recorded in <cluster>/secrets/encryption-rotation: if the
command stops (a timeout, an API error, Ctrl-C), run it again to continue from
there; it never makes a second new key. The key material is never printed.
A key made within the last hour is not rotated again without --force. See
docs/security.md."
    )]
    EncryptionKey(RotateEncryptionKeyArgs),
}

/// `skiff rotate encryption-key`.
#[derive(Debug, Args)]
pub struct RotateEncryptionKeyArgs {
    /// The cluster
    #[arg(env = "SKIFF_CLUSTER_NAME")]
    pub name: String,

    /// Rotate, or continue the rotation under way (without it: only show what would be done)
    #[arg(long, short = 'y')]
    pub yes: bool,

    /// How long to wait for every control-plane API server to load each new configuration
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10m")]
    pub timeout: std::time::Duration,

    /// Start a new rotation even though the current key was made within the last hour
    #[arg(long)]
    pub force: bool,

    /// A kubeconfig for the cluster's API (default: a short-lived admin certificate from the cluster's CA)
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Waiting for the cluster lock
    #[command(flatten)]
    pub lock: LockWaitArgs,
}

/// `skiff completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `--lock-timeout`, on every command that takes the cluster lock.
#[derive(Debug, Clone, Copy, Args)]
pub struct LockWaitArgs {
    /// When another operation holds the cluster lock, wait up to this long for it (e.g. 5m, 1h), showing who holds it, instead of failing at once (0s, the default). The lock is taken as soon as it is released, or when a killed holder's lease runs out (SKIFF_LOCK_LEASE, 60s by default)
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub lock_timeout: std::time::Duration,
}

/// Parses `--parallelism`: 1 to 128 changes at once.
fn parse_parallelism(text: &str) -> Result<usize, String> {
    let value: usize = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if (1..=128).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is outside 1 to 128"))
    }
}

fn parse_role(text: &str) -> Result<skiff_api::InstanceGroupRole, String> {
    text.parse()
}

fn parse_os_family(text: &str) -> Result<skiff_api::OsFamily, String> {
    match text {
        "debian" => Ok(skiff_api::OsFamily::Debian),
        "rhel" => Ok(skiff_api::OsFamily::Rhel),
        "windows" => Ok(skiff_api::OsFamily::Windows),
        _ => Err(format!(
            "{text:?} is not an OS family: debian, rhel or windows (worker groups only)"
        )),
    }
}
