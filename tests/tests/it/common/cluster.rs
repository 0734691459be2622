//! [`ClusterFixture`]: one endpoint, one state store bucket, one sandboxed
//! home and one cluster, driven the way a user drives skiff (`create
//! cluster`, `update cluster --yes`, `get -o yaml` then `replace -f`), with
//! SDK clients to check what skiff created.
//!
//! The acceptance tests of `update cluster`, `rolling-update cluster`, node
//! bootstrap and `validate cluster` build on it; each adds its own readers
//! of the endpoint in an `impl ClusterFixture` block of its own (an inherent
//! impl may live anywhere in the test binary's crate; a reader two modules
//! need lives here, since two blocks cannot define the same name).

use std::ffi::OsStr;

use serde_json::Value;
use skiff_tests::{LocalAws, SandboxHome, Skiff, SkiffOutput};

/// SDK clients on a [`LocalAws`], tagged as harness traffic so that checking
/// the endpoint never shows up in the statistics a test asserts on.
pub struct Clients {
    /// EC2.
    pub ec2: aws_sdk_ec2::Client,
    /// Auto Scaling.
    pub autoscaling: aws_sdk_autoscaling::Client,
    /// Elastic Load Balancing v2.
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    /// IAM.
    pub iam: aws_sdk_iam::Client,
    /// Route53.
    pub route53: aws_sdk_route53::Client,
}

/// One endpoint, one state store bucket, one sandboxed home, one cluster.
pub struct ClusterFixture {
    /// The endpoint, this fixture's own.
    pub aws: LocalAws,
    /// The `HOME` every skiff command runs in.
    pub home: SandboxHome,
    /// The state store's bucket.
    pub bucket: String,
    /// The key prefix of the store inside the bucket (`""`: the root).
    pub prefix: String,
    /// The `--state` value: `s3://BUCKET` or `s3://BUCKET/PREFIX`.
    pub store: String,
    /// The cluster's name.
    pub cluster: String,
    /// Clients to check the endpoint with.
    pub clients: Clients,
    /// Environment variables set for every skiff command.
    env: Vec<(String, String)>,
}

impl ClusterFixture {
    /// A new endpoint and a state store at the root of a new bucket, for
    /// `cluster` (not created yet).
    pub async fn new(cluster: &str) -> ClusterFixture {
        ClusterFixture::with_prefix(cluster, "").await
    }

    /// The same with the store at `s3://BUCKET/PREFIX` (`""`: the root).
    pub async fn with_prefix(cluster: &str, prefix: &str) -> ClusterFixture {
        let aws = LocalAws::start();
        let config = aws.sdk_config().await;
        let clients = Clients {
            ec2: aws_sdk_ec2::Client::new(&config),
            autoscaling: aws_sdk_autoscaling::Client::new(&config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
            iam: aws_sdk_iam::Client::new(&config),
            route53: aws_sdk_route53::Client::new(&config),
        };
        let bucket = aws.create_unique_bucket("state");
        let store = if prefix.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{prefix}")
        };
        ClusterFixture {
            store,
            bucket,
            prefix: prefix.to_owned(),
            home: SandboxHome::new(),
            cluster: cluster.to_owned(),
            clients,
            aws,
            env: Vec::new(),
        }
    }

    /// Sets `name=value` in the environment of every later skiff command.
    pub fn with_env(mut self, name: &str, value: &str) -> ClusterFixture {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A public hosted zone; returns its ID without `/hostedzone/`.
    pub async fn create_zone(&self, name: &str) -> String {
        let created = self
            .clients
            .route53
            .create_hosted_zone()
            .name(name)
            .caller_reference(format!("zone-{name}"))
            .send()
            .await
            .expect("create hosted zone");
        created
            .hosted_zone()
            .expect("a zone")
            .id()
            .trim_start_matches("/hostedzone/")
            .to_owned()
    }

    /// `skiff ARGS --state STORE`, not yet run.
    pub fn command<I, S>(&self, args: I) -> Skiff
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Skiff::new(&self.aws, &self.home)
            .args(args)
            .args(["--state", &self.store]);
        for (name, value) in &self.env {
            command = command.env(name, value);
        }
        command
    }

    /// `skiff ARGS --state STORE`, run to completion.
    pub fn skiff<I, S>(&self, args: I) -> SkiffOutput
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(args).run()
    }

    /// `skiff create cluster CLUSTER EXTRA...`, which must succeed.
    pub fn create_cluster(&self, extra: &[&str]) {
        let mut args = vec!["create", "cluster", &self.cluster];
        args.extend_from_slice(extra);
        self.skiff(args).assert_success();
    }

    /// The plan as `update cluster -o json` prints it (a preview).
    pub fn plan_json(&self) -> Value {
        let output = self.skiff(["update", "cluster", &self.cluster, "-o", "json"]);
        output.assert_success();
        output.stdout_json()
    }

    /// `update cluster --yes`, which must succeed.
    pub fn apply(&self) -> SkiffOutput {
        let output = self.skiff(["update", "cluster", &self.cluster, "--yes"]);
        output.assert_success();
        output
    }

    /// Asserts that a preview finds nothing to change.
    pub fn assert_no_changes(&self) {
        let output = self.skiff(["update", "cluster", &self.cluster, "--detailed-exitcode"]);
        output.assert_exit(0);
        assert!(
            format!("{}{}", output.stdout, output.stderr).contains("No changes"),
            "expected \"No changes\"\n{output}"
        );
    }

    /// Edits one instance group the way a user would: `get ig -o yaml`,
    /// change the document, `replace -f`.
    pub fn edit_group(&self, group: &str, edit: impl FnOnce(&mut serde_norway::Value)) {
        let output = self.skiff(["get", "ig", "--name", &self.cluster, group, "-o", "yaml"]);
        output.assert_success();
        self.replace_with(&output.stdout, &format!("{group}.yaml"), edit);
    }

    /// Edits the cluster document the same way (`get cluster -o yaml`).
    pub fn edit_cluster(&self, edit: impl FnOnce(&mut serde_norway::Value)) {
        let output = self.skiff(["get", "cluster", &self.cluster, "-o", "yaml"]);
        output.assert_success();
        self.replace_with(&output.stdout, "cluster.yaml", edit);
    }

    /// Parses `yaml` (one document), applies `edit`, writes it to `file` in
    /// the home and feeds it to `replace -f`, which must succeed.
    pub fn replace_with(
        &self,
        yaml: &str,
        file: &str,
        edit: impl FnOnce(&mut serde_norway::Value),
    ) {
        let mut document: serde_norway::Value = serde_norway::from_str(yaml)
            .unwrap_or_else(|error| panic!("not one YAML document ({error}):\n{yaml}"));
        edit(&mut document);
        let text = serde_norway::to_string(&document).expect("serialize the edited document");
        let path = self.home.write(file, text);
        self.skiff([
            "replace".as_ref(),
            "-f".as_ref(),
            path.as_os_str(),
            "--name".as_ref(),
            self.cluster.as_ref(),
        ])
        .assert_success();
    }

    /// `<group>.<cluster>`: the name of a group's launch template and ASG.
    pub fn group_resource(&self, group: &str) -> String {
        format!("{group}.{}", self.cluster)
    }

    /// The instances of a group's auto scaling group, as the endpoint lists them.
    pub async fn group_instances(&self, group: &str) -> Vec<String> {
        self.clients
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(self.group_resource(group))
            .send()
            .await
            .expect("describe auto scaling groups")
            .auto_scaling_groups()
            .iter()
            .flat_map(|group| group.instances())
            .filter_map(|instance| instance.instance_id().map(str::to_owned))
            .collect()
    }

    /// A group's launch template (`<group>.<cluster>`) as EC2 describes it.
    pub async fn describe_launch_template(
        &self,
        group: &str,
    ) -> aws_sdk_ec2::types::LaunchTemplate {
        let name = self.group_resource(group);
        let found = self
            .clients
            .ec2
            .describe_launch_templates()
            .launch_template_names(&name)
            .send()
            .await
            .expect("describe launch templates");
        found
            .launch_templates()
            .first()
            .unwrap_or_else(|| panic!("no launch template {name}"))
            .clone()
    }

    /// A group's launch template: (ID, latest version number).
    pub async fn launch_template(&self, group: &str) -> (String, i64) {
        let template = self.describe_launch_template(group).await;
        (
            template.launch_template_id().expect("an ID").to_owned(),
            template.latest_version_number().expect("a latest version"),
        )
    }

    /// The bucket key of an object of the cluster's folder in the store
    /// (`pki/ca.crt` → `[PREFIX/]CLUSTER/pki/ca.crt`).
    pub fn key(&self, relative: &str) -> String {
        if self.prefix.is_empty() {
            format!("{}/{relative}", self.cluster)
        } else {
            format!("{}/{}/{relative}", self.prefix, self.cluster)
        }
    }

    /// An object of the cluster's folder in the store, if it is there.
    pub fn get_object(&self, relative: &str) -> Option<Vec<u8>> {
        self.aws.get_object(&self.bucket, &self.key(relative))
    }
}
